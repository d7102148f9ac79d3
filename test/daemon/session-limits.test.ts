/**
 * The daemon's session limits: total sessions, sessions per non-loopback source address
 * (`limitedSource`), and the memory watermark. Per-source limits need a non-loopback source:
 * test/integration/public.int.test.ts has one inside a namespace.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Daemon, limitedSource } from '../../src/daemon/daemon.js';
import { networkSettings } from '../../src/daemon/networks.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { parseForwards } from '../../src/nat/forwards.js';
import { freeTcpPort } from '../helpers/servers.js';
import { memoryLog, until } from '../link/test-log.js';
import { DHCP_DISCOVER } from './dhcp-frames.js';

describe('limitedSource', () => {
  it.each([
    ['10.1.2.3:5555', '10.1.2.3'],
    ['[2001:db8::1]:80', '2001:db8::1'],
    ['[::ffff:192.0.2.7]:80', '192.0.2.7'],
    ['127.0.0.1:5555', undefined],
    ['127.9.0.1:1', undefined],
    ['[::1]:80', undefined],
    ['[::ffff:127.0.0.1]:80', undefined],
    ['/run/tslirp/tslirp.sock', undefined],
    ['unix', undefined],
  ])('%s → %s', (peer, source) => {
    expect(limitedSource(peer)).toBe(source);
  });
});

/** Opens `n` dgram sessions (one socket each, one DISCOVER each) to the daemon's listener. */
async function dgramPeers(d: Daemon, n: number): Promise<dgram.Socket[]> {
  const a = d.addresses[0]!;
  const port = a.kind === 'dgram' ? a.port : 0;
  const socks: dgram.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    s.send(DHCP_DISCOVER, port, '127.0.0.1');
    socks.push(s);
  }
  return socks;
}

describe('Daemon session limits', () => {
  it('refuses links past --max-sessions, logs once per interval with the count, and reports them on stop', async () => {
    const logs = memoryLog('info');
    const d = await Daemon.start({ listeners: [{ kind: 'dgram', host: '127.0.0.1', port: 0 }], network: networkSettings(resolveStackConfig()), log: logs.log, maxSessions: 3 });
    const socks = await dgramPeers(d, 8);
    try {
      await until(() => d.sessions.length === 3 && logs.withMsg('link refused').length >= 1, 5000);
      // Loopback peers are not limited per source: all 8 came from 127.0.0.1.
      expect(logs.withMsg('link refused')[0]).toMatchObject({ reason: 'session.limit', sessions: 3 });
      expect(logs.withMsg('link refused')).toHaveLength(1); // throttled
    } finally {
      for (const s of socks) s.close();
      await d.close();
    }
    const stopped = logs.withMsg('daemon stopped')[0]!;
    expect((stopped['sessionsRefused'] as Record<string, number>)['session.limit']).toBeGreaterThanOrEqual(5);
  });

  it('refuses new sessions above the memory watermark', async () => {
    const logs = memoryLog('info');
    const d = await Daemon.start({ listeners: [{ kind: 'dgram', host: '127.0.0.1', port: 0 }], network: networkSettings(resolveStackConfig()), log: logs.log, maxRssBytes: 1 });
    const socks = await dgramPeers(d, 2);
    try {
      await until(() => logs.withMsg('link refused').length >= 1, 5000);
      expect(logs.withMsg('link refused')[0]).toMatchObject({ reason: 'session.memory-watermark' });
      expect(d.sessions).toHaveLength(0);
    } finally {
      for (const s of socks) s.close();
      await d.close();
    }
  });
});

describe('Daemon.reload', () => {
  it('new limits refuse links from then on (sessions above them go on); egress rules, lease bound and DNS records reach live networks and those created later', async () => {
    const logs = memoryLog('info');
    const d = await Daemon.start({ listeners: [{ kind: 'dgram', host: '127.0.0.1', port: 0 }], network: networkSettings(resolveStackConfig()), log: logs.log, maxSessions: 8 });
    const socks = await dgramPeers(d, 2);
    try {
      await until(() => d.sessions.length === 2, 5000);
      const before = d.networks[0]!;
      const deny = resolveStackConfig({ egress: [['deny', '127.0.0.1,port=9']] }).egress!.rules;
      const records = [{ name: 'web.test', type: 1 as const, rdata: new Uint8Array([10, 9, 9, 9]) }];
      d.reload({ limits: { maxSessions: 2, maxSessionsPerSource: 16, maxRssBytes: 1 << 30 }, network: { egress: deny, maxSessionLeases: 1, dnsRecords: records }, networks: new Map() });
      expect(d.limits.maxSessions).toBe(2);
      expect(before.config.egress?.rules).toEqual(deny);
      // Two sessions stay; a third is refused.
      socks.push(...(await dgramPeers(d, 1)));
      await until(() => logs.withMsg('link refused').length >= 1, 5000);
      expect(d.sessions).toHaveLength(2);
      // Room again: the network created now has the reloaded settings.
      d.reload({ limits: { maxSessions: 8, maxSessionsPerSource: 16, maxRssBytes: 1 << 30 }, network: { egress: deny, maxSessionLeases: 1, dnsRecords: records }, networks: new Map() });
      socks.push(...(await dgramPeers(d, 1)));
      await until(() => d.sessions.length === 3, 5000);
      // Private networks are listed in creation order: the last is the new session's.
      const later = d.networks.at(-1)!;
      expect(d.networks).toHaveLength(3);
      expect(later.config.egress?.rules).toEqual(deny);
      expect(later.config.maxLeasesPerPort).toBe(1);
    } finally {
      for (const s of socks) s.close();
      await d.close();
    }
  });
});

describe('Daemon.reloadForwards', () => {
  it('binds new plain rules onto the --network network, closes gone ones, keeps the rest; a port in use changes nothing', async () => {
    const logs = memoryLog('info');
    const d = await Daemon.start({ listeners: [{ kind: 'dgram', host: '127.0.0.1', port: 0 }], network: networkSettings(resolveStackConfig()), defaultNetwork: 'lab', log: logs.log });
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const busyPort = (busy.address() as net.AddressInfo).port;
    try {
      const [a, b] = [await freeTcpPort(), await freeTcpPort()];
      const first = await d.reloadForwards(parseForwards([`tcp:127.0.0.1:${a}-:80`, `tcp:127.0.0.1:${b}-:81`]));
      expect(first).toEqual({ added: [`tcp:127.0.0.1:${a}-:80`, `tcp:127.0.0.1:${b}-:81`], removed: [] });
      expect(d.forwards().map((f) => [f.rule, f.network, f.source])).toEqual([[`tcp:127.0.0.1:${a}-:80`, 'lab', 'command-line'], [`tcp:127.0.0.1:${b}-:81`, 'lab', 'command-line']]);
      await expect(d.reloadForwards(parseForwards([`tcp:127.0.0.1:${a}-:80`, `tcp:127.0.0.1:${busyPort}-:82`]))).rejects.toThrow(/EADDRINUSE/);
      expect(d.forwards()).toHaveLength(2);
      const second = await d.reloadForwards(parseForwards([`tcp:127.0.0.1:${a}-:80`]));
      expect(second).toEqual({ added: [], removed: [`tcp:127.0.0.1:${b}-:81`] });
      expect(d.forwards().map((f) => f.rule)).toEqual([`tcp:127.0.0.1:${a}-:80`]);
      // Its port is free again.
      const again = net.createServer();
      await new Promise<void>((r, j) => { again.once('error', j); again.listen(b, '127.0.0.1', r); });
      again.close();
    } finally {
      busy.close();
      await d.close();
    }
  });
});
