/**
 * `--outbound` and `--outbound6`: which host sockets of a network leave from its public
 * addresses, seen by real servers on the test's internet (nat-world.ts, here with IPv6 too).
 * The daemon runs in that namespace; a namespace guest behind a network with `--outbound
 * 203.0.113.2 --outbound6 2001:db8:203::2` reaches servers that tell each client its address:
 * its IPv6 TCP and UDP (over SLAAC), its IPv4 TCP and UDP, its DNS queries (the forwarder's
 * upstream socket: a DNS server answering with the querier's address) and a `--guestfwd`
 * relay all come from the network's addresses. A second network whose addresses are on no
 * interface shows what a failed bind gives the guest (RST, silence, SERVFAIL) and the counters
 * that say why.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon, type LogRecord } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, type Proc, root, shouldRun, until } from '../helpers/guests.js';
import { lastJson, NAT_CLIENT, World, WORLD, WORLD6 } from './nat-world.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('dig')]);
const enabled = shouldRun('nat-outbound.int.test.ts (--outbound, --outbound6: which sockets leave from a network\'s address)', missing);

/** Addresses of the second network: on no interface of the test's internet. */
const NOWHERE = { v4: '203.0.113.99', v6: '2001:db8:dead::1' } as const;
const PORTS = { tcp: 7003, udp: 7004, dns: 5353, guestfwd: 7005 } as const;
/** The guest forward of the first network: this address and port reach the rendezvous host's TCP server. */
const GUESTFWD = { addr: '10.0.2.100', port: 80 } as const;

/** Turns IPv6 on in a leased guest's namespace and waits (20 s at most) for its SLAAC address in fd00::/64. */
async function slaac(g: NetnsGuest): Promise<string | undefined> {
  const r = await g.sh(
    [
      'sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0',
      'for i in $(seq 50); do [ -d /proc/sys/net/ipv6/conf/"$1" ] && break; sleep 0.1; done',
      'sysctl -qw net.ipv6.conf."$1".disable_ipv6=0 net.ipv6.conf."$1".accept_ra=1 net.ipv6.conf."$1".autoconf=1',
      // A fresh link-local address, DAD and a router solicitation without taking the TAP down: a
      // frame written to a downed TAP fails with EIO and its socat bridge exits (ipv6.int's enableIpv6).
      'sysctl -qw net.ipv6.conf."$1".disable_ipv6=1 && sysctl -qw net.ipv6.conf."$1".disable_ipv6=0',
    ].join(' && '),
    [g.tap],
  );
  if (r.code !== 0) throw new Error(r.stderr);
  let found: string | undefined;
  await until(() => {
    const out = spawnSync('ip', ['-n', g.ns, '-6', 'addr', 'show', 'dev', g.tap, 'scope', 'global'], { encoding: 'utf8' }).stdout;
    found = /inet6 (fd00::[0-9a-f:]+)\/64 scope global (?!.*tentative)/.exec(out)?.[1];
    return found !== undefined;
  }, 20_000);
  return found;
}

// Budgets: each guest program ends within 3 s on an idle machine (udpask gives up after 2.5 s,
// dig after its 8 s try); 30 s per step keeps a 3x margin on two loaded cores.
const STEP_MS = 30_000;

describe.skipIf(!enabled)('--outbound and --outbound6 (real servers see the network\'s addresses)', () => {
  let world: World;
  let d: Daemon | undefined;
  const servers: Proc[] = [];
  let good: NetnsGuest;
  let bad: NetnsGuest;

  beforeAll(async () => {
    world = World.create({ ipv6: true });
    const serve = async (name: string, args: readonly string[]): Promise<void> => {
      const p = world.spawn(name, [process.execPath, NAT_CLIENT, ...args]);
      servers.push(p);
      await p.waitFor(/READY/, 10_000);
    };
    await serve('tcpwho4', ['tcpwho', WORLD.rendezvous, String(PORTS.tcp), String(PORTS.guestfwd), '600']);
    await serve('tcpwho6', ['tcpwho', WORLD6.server, String(PORTS.tcp), '600']);
    await serve('udpwho4', ['udpwho', WORLD.rendezvous, String(PORTS.udp), '600']);
    await serve('udpwho6', ['udpwho', WORLD6.server, String(PORTS.udp), '600']);
    await serve('dnswho', ['dnswho', WORLD.rendezvous, String(PORTS.dns), '600']);
    d = await startDaemon(
      [
        '--dgram', 'udp:127.0.0.1:0,network=good',
        '--dgram', 'udp:127.0.0.1:0,network=bad',
        '--dns-upstream', `${WORLD.rendezvous}:${PORTS.dns}`,
        '--net-option', `good:outbound=${WORLD.publicA},outbound6=${WORLD6.publicA},guestfwd=tcp:${GUESTFWD.addr}:${GUESTFWD.port}-${WORLD.rendezvous}:${PORTS.guestfwd}`,
        '--net-option', `bad:outbound=${NOWHERE.v4},outbound6=${NOWHERE.v6}`,
      ],
      { netns: world.ns, startTimeoutMs: 30_000 },
    );
    const [lg, lb] = d.listeners.filter((l) => l.kind === 'dgram');
    if (lg === undefined || lb === undefined || !('port' in lg) || !('port' in lb)) throw new Error('no dgram listeners');
    [good, bad] = await Promise.all([
      NetnsGuest.create({ kind: 'dgram', host: lg.host, port: lg.port }, world.ns),
      NetnsGuest.create({ kind: 'dgram', host: lb.host, port: lb.port }, world.ns),
    ]);
    // DHCP first (its script flushes every address of the TAP, IPv6 ones too), then SLAAC.
    for (const g of [good, bad]) {
      const { lease, result } = await g.dhcp();
      if (lease?.['ip'] !== '10.0.2.15') throw new Error(`no lease:\n${result.stdout}${result.stderr}`);
    }
    const addrs = await Promise.all([slaac(good), slaac(bad)]);
    if (addrs.includes(undefined)) throw new Error(`no SLAAC address:\n${d.dump()}`);
  }, 120_000);

  afterAll(async () => {
    await good?.destroy();
    await bad?.destroy();
    await d?.stop();
    for (const p of servers) await p.stop();
    world?.destroy();
  });

  it('has what it needs (root, ip, socat, busybox, dig, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  const tcpSeen = async (g: NetnsGuest, addr: string, port: number): Promise<string> =>
    String((lastJson((await g.exec([process.execPath, NAT_CLIENT, 'tcpfrom', '0', addr, String(port)], STEP_MS)).stdout)['seen'] as string[] | undefined)?.[0]);
  const udpSeen = async (g: NetnsGuest, addr: string, port: number): Promise<unknown> =>
    lastJson((await g.exec([process.execPath, NAT_CLIENT, 'udpask', addr, String(port)], STEP_MS)).stdout)['reply'];
  /** `addr` as Node prints it, and any port. */
  const from = (addr: string): RegExp => new RegExp(`^${addr.replace(/\./g, '\\.')}:\\d+$`);

  it('IPv6 TCP and UDP flows leave from --outbound6', async () => {
    expect(await tcpSeen(good, WORLD6.server, PORTS.tcp)).toMatch(from(WORLD6.publicA));
    expect(await udpSeen(good, WORLD6.server, PORTS.udp)).toMatch(from(WORLD6.publicA));
  }, 2 * STEP_MS);

  it('IPv4 TCP and UDP flows leave from --outbound', async () => {
    expect(await tcpSeen(good, WORLD.rendezvous, PORTS.tcp)).toMatch(from(WORLD.publicA));
    expect(await udpSeen(good, WORLD.rendezvous, PORTS.udp)).toMatch(from(WORLD.publicA));
  }, 2 * STEP_MS);

  it('DNS queries reach the upstream from --outbound (the forwarder\'s socket), as passt\'s do', async () => {
    const r = await good.exec(['dig', '+short', '+tries=1', '+time=8', `@10.0.2.3`, 'who.outbound.test', 'A'], STEP_MS);
    expect(r.stdout.trim(), r.stderr).toBe(WORLD.publicA);
  }, STEP_MS);

  it('a --guestfwd relay to a host server connects from --outbound', async () => {
    expect(await tcpSeen(good, GUESTFWD.addr, GUESTFWD.port)).toMatch(from(WORLD.publicA));
  }, STEP_MS);

  it('addresses the host does not have: the guest gets an RST (TCP), silence (UDP), SERVFAIL (DNS); counted', async () => {
    expect(await tcpSeen(bad, WORLD6.server, PORTS.tcp)).toBe('error ECONNREFUSED');
    expect(await tcpSeen(bad, WORLD.rendezvous, PORTS.tcp)).toBe('error ECONNREFUSED');
    expect(await udpSeen(bad, WORLD6.server, PORTS.udp)).toBeNull();
    const r = await bad.exec(['dig', '+tries=1', '+time=8', `@10.0.2.3`, 'who.outbound.test', 'A'], STEP_MS);
    expect(r.stdout).toMatch(/status: SERVFAIL/);
    await d!.stop();
    const ended = d!.logs.filter((l) => l['msg'] === 'session ended');
    const counters = (l: LogRecord, key: string): Record<string, number> => (l[key] ?? {}) as Record<string, number>;
    const all = ended.map((l) => ({ ...counters(l, 'drops'), ...counters(l, 'networkDrops'), ...counters(l, 'tcp') }));
    const badCounts = all.find((c) => (c['tcp.host-error-eaddrnotavail'] ?? 0) > 0);
    expect(badCounts, JSON.stringify(ended)).toBeDefined();
    expect(badCounts!['tcp.host-error-eaddrnotavail']).toBe(2);
    expect(badCounts!['nat.udp-bind-failed']).toBeGreaterThanOrEqual(1);
    expect(badCounts!['dns.upstream-eaddrnotavail']).toBeGreaterThanOrEqual(1);
  }, 5 * STEP_MS);
});
