/**
 * The daemon's session limits: total sessions, sessions per non-loopback source address
 * (`limitedSource`), and the memory watermark. Per-source limits need a non-loopback source:
 * test/integration/public.int.test.ts has one inside a namespace.
 */
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { Daemon, limitedSource } from '../../src/daemon/daemon.js';
import { networkSettings } from '../../src/daemon/networks.js';
import { resolveStackConfig } from '../../src/stack/config.js';
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
