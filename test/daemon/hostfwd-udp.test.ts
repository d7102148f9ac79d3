import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Daemon } from '../../src/daemon/daemon.js';
import { networkSettings } from '../../src/daemon/networks.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { parseForwards } from '../../src/nat/forwards.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { BROADCAST_MAC } from '../../src/util/bytes.js';
import { arpFrame, decode, GATEWAY_MAC, ip, ipv4Frame, udpBytes, type Decoded } from '../helpers/frames.js';
import { memoryLog, until } from '../link/test-log.js';

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => { r(); }));
  return port;
}

/**
 * `--hostfwd udp:`: a host client's datagrams reach the guest (a WebSocket "guest" made of
 * frames here) from the gateway address, and the guest's replies reach the client.
 */
describe('Daemon: --hostfwd udp', () => {
  const logs = memoryLog('info');
  let d: Daemon;
  let port = 0;
  const cleanups: (() => void)[] = [];

  beforeAll(async () => {
    port = await freeUdpPort();
    d = await Daemon.start({
      listeners: [{ kind: 'ws', host: '127.0.0.1', port: 0 }],
      network: networkSettings(resolveStackConfig(), { forwards: parseForwards([`udp:127.0.0.1:${port}-10.0.2.15:7`]) }),
      dns: { upstreams: [], resolvConf: '/nonexistent' },
      log: logs.log,
    });
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0)) c();
    await d.close();
  });

  it('carries datagrams both ways, the guest seeing loopback clients as the gateway', async () => {
    const a = d.addresses[0]!;
    if (a.kind !== 'ws') throw new Error('expected ws');
    const ws = new WebSocket(a.url);
    cleanups.push(() => { ws.terminate(); });
    const toGuest: Decoded[] = [];
    ws.on('message', (m: Buffer) => toGuest.push(decode(new Uint8Array(m))));
    await new Promise((r) => ws.once('open', r));
    // The guest announces itself (gratuitous ARP), as Linux does when it configures an address.
    ws.send(arpFrame({ senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.15') }, BROADCAST_MAC));
    await until(() => d.sessions.length === 1, 2000, 'session');

    const client = dgram.createSocket('udp4');
    cleanups.push(() => { client.close(); });
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    const replies: string[] = [];
    client.on('message', (m) => replies.push(m.toString()));
    client.send('ping-1', port, '127.0.0.1');
    await until(() => toGuest.some((f) => f.udp !== undefined), 2000, 'datagram at the guest');
    const got = toGuest.find((f) => f.udp !== undefined)!;
    expect(got.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') });
    expect(got.udp).toMatchObject({ srcPort: client.address().port, dstPort: 7 });
    expect(Buffer.from(got.udp!.payload).toString()).toBe('ping-1');

    // The guest answers from port 7 to the address it saw.
    const reply = udpBytes({ srcPort: 7, dstPort: client.address().port, payload: Buffer.from('pong-1') }, ip('10.0.2.15'), ip('10.0.2.2'));
    ws.send(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.2'), payload: reply }, GATEWAY_MAC));
    await until(() => replies.length === 1, 2000, 'reply at the client');
    expect(replies).toEqual(['pong-1']);
    expect(d.networks[0]!.network.stack.flows()).toMatchObject([{ protocol: 'udp', origin: 'forward', remote: { addr: ip('10.0.2.2') } }]);
  });
});
