import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { networkSettings } from '../../src/daemon/networks.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { finish, sum16 } from '../../src/util/checksum.js';
import { memoryLog } from '../link/test-log.js';
import { LinuxLikeDriver } from '../nic-e1000/driver.js';
import { arpRequestForGateway, dhcpClient, isArpReply, ethernet, icmpEcho, ip, ipv4, parseDhcpReply, parseFrame } from '../nic-e1000/frames.js';
import { wsTarget } from '../nic-e1000/ws-target.js';

/**
 * The daemon's /e1000 path end to end: a Linux-like e1000 driver in the "emulator" (this test)
 * drives the model in the daemon over the WebSocket device protocol, and the guest gets its
 * lease and its ping answered by the session's stack.
 */
describe('Daemon: e1000 device protocol at /e1000', () => {
  const logs = memoryLog('info');
  let d: Daemon;
  let url = '';
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    d = await Daemon.start({
      listeners: [{ kind: 'ws', host: '127.0.0.1', port: 0 }],
      network: networkSettings(resolveStackConfig()),
      dns: { upstreams: [], resolvConf: '/nonexistent' },
      log: logs.log,
    });
    const a = d.addresses[0]!;
    if (a.kind !== 'ws') throw new Error('expected a ws listener');
    url = `${a.url}e1000`;
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0)) await c();
    await d.close();
  });

  it('gets a DHCP lease and a ping reply through the model and the session stack', async () => {
    const t = await wsTarget(url, [], { push: () => undefined }, cleanups);
    const drv = new LinuxLikeDriver(t, 32, 32);
    expect(await drv.probe()).toBe(0xbaba);
    await drv.open();
    await t.wait(600); // autonegotiation completes
    await drv.interrupt();
    expect(d.sessions.map((s) => s.kind)).toEqual(['ws-e1000']);

    /** Services interrupts until a received frame satisfies `want` (bounded). */
    const receive = async <T>(want: (f: Uint8Array) => T | undefined): Promise<T | undefined> => {
      for (let i = 0; i < 100; i++) {
        await t.wait(10);
        const { frames } = await drv.interrupt();
        for (const r of frames) {
          const got = want(r.bytes.subarray(0, r.bytes.length - 4));
          if (got !== undefined) return got;
        }
      }
      return undefined;
    };
    await drv.transmit(dhcpClient(drv.mac, 0x4321, 1));
    const offer = await receive((f) => { const m = parseDhcpReply(f); return m?.type === 2 ? m : undefined; });
    expect(offer?.yiaddr).toBe(ip('10.0.2.15'));
    await drv.transmit(dhcpClient(drv.mac, 0x4321, 3, offer!.yiaddr, offer!.server));
    const ack = await receive((f) => { const m = parseDhcpReply(f); return m?.type === 5 ? m : undefined; });
    expect(ack?.yiaddr).toBe(ip('10.0.2.15'));

    await drv.transmit(arpRequestForGateway(drv.mac));
    const gwMac = await receive((f) => (isArpReply(f) ? f.slice(6, 12) : undefined));
    expect(gwMac).toBeDefined();
    const data = new Uint8Array(56).map((_, i) => i);
    await drv.transmit(ethernet(gwMac!, drv.mac, 0x0800, ipv4(ip('10.0.2.15'), ip('10.0.2.2'), 1, icmpEcho(0x77, 1, data))));
    const reply = await receive((f) => { const p = parseFrame(f); return p?.proto === 1 && p.l4[0] === 0 ? p : undefined; });
    expect(reply?.src).toBe(ip('10.0.2.2'));
    expect(reply!.l4.subarray(8)).toEqual(data);
    expect(finish(sum16(reply!.l4, 0, reply!.l4.length))).toBe(0);
    expect(d.sessions[0]!.network.leases()).toMatchObject([{ ip: ip('10.0.2.15'), state: 'bound' }]);
  });
});
