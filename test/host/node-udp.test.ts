import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeUdp } from '../../src/host/node-udp.js';
import { parseIpv4Addr } from '../../src/util/bytes.js';

const LOOPBACK = parseIpv4Addr('127.0.0.1')!;

function recorder() {
  const events: [string, number, unknown][] = [];
  let wake: (() => void) | undefined;
  const push = (e: [string, number, unknown]) => {
    events.push(e);
    wake?.();
  };
  return {
    events,
    sink: {
      udpReceived: (flow: number, data: Uint8Array) => push(['data', flow, Buffer.from(data).toString()]),
      udpError: (flow: number, code: string) => push(['error', flow, code]),
    },
    async waitFor(n: number, ms = 2_000): Promise<void> {
      const until = Date.now() + ms;
      while (events.length < n && Date.now() < until) await new Promise<void>((r) => { wake = r; setTimeout(r, 20); });
    },
  };
}

describe('host/node-udp (real sockets on loopback)', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).forEach((f) => f()));

  it('sends through a connected socket and receives the echo, even when sent before connect completes', async () => {
    const server = dgram.createSocket('udp4');
    server.on('message', (msg, rinfo) => server.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    cleanup.push(() => server.close());
    const r = recorder();
    const udp = new NodeUdp(r.sink);
    cleanup.push(() => udp.closeAll());
    udp.open(1, { addr: LOOPBACK, port: server.address().port });
    expect(udp.send(1, Buffer.from('a'))).toBe(true);
    expect(udp.send(1, Buffer.from('b'))).toBe(true);
    await r.waitFor(2);
    expect(r.events).toEqual([['data', 1, 'echo:a'], ['data', 1, 'echo:b']]);
  });

  it('reports a closed port as ECONNREFUSED', async () => {
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
    const closedPort = probe.address().port;
    probe.close();
    const r = recorder();
    const udp = new NodeUdp(r.sink);
    cleanup.push(() => udp.closeAll());
    udp.open(7, { addr: LOOPBACK, port: closedPort });
    udp.send(7, Buffer.from('x'));
    await r.waitFor(1);
    expect(r.events[0]).toEqual(['error', 7, 'ECONNREFUSED']);
  });

  it('bounds the queue before connect and forgets closed flows', () => {
    const r = recorder();
    const udp = new NodeUdp(r.sink);
    udp.open(1, { addr: LOOPBACK, port: 9 });
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (udp.send(1, new Uint8Array(1))) accepted++;
    expect(accepted).toBe(64);
    expect(udp.close(1)).toBe(true);
    expect(udp.send(1, new Uint8Array(1))).toBe(false);
    expect(udp.size).toBe(0);
  });
});
