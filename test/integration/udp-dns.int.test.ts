/**
 * The DNS forwarder and UDP NAT judged by real peers: a Linux network namespace (bridged to
 * the daemon's dgram link by socat) runs dig, busybox nslookup and a small Node UDP client;
 * dnsmasq on the host's loopback is the upstream resolver (never the machine's own: every
 * daemon here names a loopback upstream with --dns-upstream or a test resolv.conf), and a
 * UDP echo server on 127.0.0.1 is reached through the gateway 10.0.2.2.
 *
 * Needs root (namespaces, TAP), socat, busybox, dnsmasq (apt dnsmasq-base) and dig (apt
 * bind9-dnsutils), and the built daemon with --dns-upstream, --resolv-conf, --dns-record,
 * --restrict and --disable-host-loopback.
 */
import dgram from 'node:dgram';
import { readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUERY_DEADLINE_MS } from '../../src/dns/forwarder.js';
import { DEFAULT_FLOW_LIMITS } from '../../src/nat/flow-table.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import {
  command, daemon as daemonReq, freeUdpPort, missingRequirements, NetnsGuest, Proc, root, run, shouldRun, tempDir,
} from '../helpers/guests.js';

const missing = missingRequirements([
  root, daemonReq, command('ip'), command('socat'), command('busybox'), command('dnsmasq'), command('dig'), command('ss'), command('tshark'),
]);
const enabled = shouldRun('udp-dns.int.test.ts (DNS forwarder and UDP NAT with dnsmasq, dig and a namespace guest)', missing);

const MTU = 1500;
const BIG_TXT = ['a', 'b', 'c', 'd'].map((c) => c.repeat(200));

/** The guest-side UDP client, run with the host's node inside the namespace. */
const CLIENT = String.raw`
import dgram from 'node:dgram';
const [mode, host, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (mode === 'echo') {
  // n datagrams of mixed sizes up to max, a window of 8 in flight, retransmitted after 500 ms.
  const n = Number(rest[0]), max = Number(rest[1]);
  const size = (i) => (i % 10 === 0 ? max : i % 10 === 1 ? 4 : 4 + ((i * 7919) % (max - 3)));
  const make = (i) => { const b = Buffer.alloc(size(i)); b.writeUInt32BE(i, 0); for (let j = 4; j < b.length; j++) b[j] = (i * 31 + j) & 0xff; return b; };
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.connect(port, host, r));
  const done = new Map(); const sentAt = new Map(); let next = 0, ok = 0, bad = 0, retries = 0, errors = [];
  s.on('error', (e) => errors.push(e.code));
  s.on('message', (m) => {
    const i = m.length >= 4 ? m.readUInt32BE(0) : -1;
    if (!sentAt.has(i) || done.has(i)) return;
    const good = Buffer.compare(m, make(i)) === 0;
    done.set(i, good); sentAt.delete(i); good ? ok++ : bad++;
  });
  const end = Date.now() + 90000;
  while (done.size < n && Date.now() < end) {
    while (sentAt.size < 8 && next < n) { sentAt.set(next, Date.now()); s.send(make(next)); next++; }
    for (const [i, t] of sentAt) if (Date.now() - t > 500) { sentAt.set(i, Date.now()); s.send(make(i)); retries++; }
    await sleep(1);
  }
  print({ ok, bad, lost: n - done.size, retries, errors: errors.slice(0, 5) });
  s.close();
} else if (mode === 'probe') {
  // A few datagrams; what came back (replies or a socket error) within the wait.
  const s = dgram.createSocket('udp4');
  let replies = 0, error;
  s.on('message', () => replies++);
  s.on('error', (e) => { error = e.code; });
  await new Promise((r) => s.connect(port, host, r));
  for (let i = 0; i < 3; i++) { s.send(Buffer.from('probe ' + i)); await sleep(300); }
  await sleep(Number(rest[0] ?? 2000));
  print({ replies, error });
  s.close();
} else if (mode === 'flood') {
  // sockets x ports datagrams, each a distinct flow (guest port, host port) toward 10.0.2.2.
  const sockets = Number(rest[0]), first = Number(rest[1]), count = Number(rest[2]), pauseMs = Number(rest[3] ?? 5);
  const socks = [];
  for (let k = 0; k < sockets; k++) {
    const s = dgram.createSocket('udp4'); s.on('error', () => {});
    await new Promise((r) => s.bind(0, r)); socks.push(s);
  }
  let sent = 0; const payload = Buffer.from('flood');
  for (let p = 0; p < count; p++) {
    for (const s of socks) { s.send(payload, first + p, host); sent++; }
    await sleep(pauseMs); // paced, so the TAP queue and socat carry the flood instead of dropping it
  }
  await sleep(500);
  print({ sent });
  for (const s of socks) s.close();
}
`;

/** A dnsmasq answering example.test (A and AAAA) and a big TXT, forwarding silent.test to a server that never answers. */
function startDnsmasq(listen: string, port: number, extra: readonly string[]): Proc {
  return new Proc(`dnsmasq ${listen}:${port}`, 'dnsmasq', [
    '--no-daemon', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file=', '--user=root',
    `--port=${port}`, `--listen-address=${listen}`, '--bind-interfaces', '--log-queries', ...extra,
  ]);
}

/** Socket file descriptors the daemon holds (its UDP flows, DNS upstreams, listeners). */
function socketFds(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/** A window of `count` loopback UDP ports with no listener, from `from` upwards. */
async function closedPortRange(from: number, count: number): Promise<number> {
  const ss = await run('ss', ['-Huln'], 10_000);
  const used = new Set([...ss.stdout.matchAll(/:(\d+)\s/g)].map((m) => Number(m[1])));
  for (let start = from; start < 60_000; start += count) {
    let free = true;
    for (let p = start; p < start + count && free; p++) if (used.has(p)) free = false;
    if (free) return start;
  }
  throw new Error('no free port window');
}

describe.skipIf(!enabled)('DNS forwarder and UDP NAT with real peers', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  let work: string;
  let client: string;
  let dnsmasqPort: number;
  let echoPort: number;
  const echoed = { datagrams: 0 };

  /** Starts a daemon with a dgram listener and gets a leased guest namespace on it. */
  async function daemonWithGuest(args: readonly string[]): Promise<{ d: Daemon; g: NetnsGuest }> {
    const d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--mtu', String(MTU), '--log-level', 'info', ...args]);
    cleanups.push(() => d.stop().then(() => undefined));
    const g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    cleanups.push(() => g.destroy());
    const { lease, result } = await g.dhcp();
    expect(lease?.['ip'], `udhcpc:\n${result.stdout}${result.stderr}\ndaemon:\n${d.dump()}`).toBe('10.0.2.15');
    return { d, g };
  }

  const dig = (g: NetnsGuest, args: readonly string[], timeoutMs = 20_000) => g.exec(['dig', '@10.0.2.3', '+time=8', '+tries=1', ...args], timeoutMs);
  const guestClient = (g: NetnsGuest, args: readonly string[], timeoutMs = 120_000) => g.exec([process.execPath, client, ...args], timeoutMs);
  const lastJson = (text: string): Record<string, unknown> => JSON.parse(text.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;

  beforeAll(async () => {
    work = tempDir('tslirp-udpdns-');
    client = join(work, 'client.mjs');
    writeFileSync(client, CLIENT);
    // A server that reads and never answers, for the name the upstream never resolves.
    const blackhole = dgram.createSocket('udp4');
    await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', r));
    cleanups.push(() => {
      blackhole.close();
    });
    dnsmasqPort = await freeUdpPort();
    const dm = startDnsmasq('127.0.0.1', dnsmasqPort, [
      '--address=/example.test/192.0.2.55',
      '--address=/example.test/2001:db8::55',
      `--txt-record=big.example.test,${BIG_TXT.join(',')}`,
      '--mx-host=example.test,mail.example.test,10',
      `--server=/silent.test/127.0.0.1#${blackhole.address().port}`,
    ]);
    cleanups.push(() => dm.stop());
    await dm.waitFor(/started, version/, 10_000);
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, r) => {
      echoed.datagrams++;
      echo.send(m, r.port, r.address);
    });
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
    echoPort = echo.address().port;
    cleanups.push(() => {
      echo.close();
    });
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(work, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, dnsmasq, dig, ss, tshark, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  describe('one daemon with --dns-upstream and --dns-record', () => {
    let d: Daemon;
    let g: NetnsGuest;
    beforeAll(async () => {
      // Symmetric NAT: a connected socket per flow, the mode in which a closed port answers
      // ICMP port unreachable and every guest 5-tuple holds a socket (the flood's subject).
      // The other modes are nat-stun.int.test.ts's.
      ({ d, g } = await daemonWithGuest(['--nat', 'symmetric', '--dns-upstream', `127.0.0.1:${dnsmasqPort}`, '--dns-record', 'db.tslirp.test=192.0.2.77', '--dns-record', 'db.tslirp.test=2001:db8::77']));
    }, 60_000);

    it('dig resolves A, AAAA and MX through dnsmasq', async () => {
      const a = await dig(g, ['example.test', 'A', '+short']);
      expect(a.stdout.trim(), a.stdout + a.stderr + d.dump()).toBe('192.0.2.55');
      const aaaa = await dig(g, ['example.test', 'AAAA', '+short']);
      expect(aaaa.stdout.trim()).toBe('2001:db8::55');
      const mx = await dig(g, ['example.test', 'MX', '+short']);
      expect(mx.stdout.trim()).toBe('10 mail.example.test.');
    }, 60_000);

    it('busybox nslookup resolves through 10.0.2.3', async () => {
      const r = await g.exec(['busybox', 'nslookup', 'example.test', '10.0.2.3'], 20_000);
      expect(r.stdout, r.stdout + r.stderr).toMatch(/Address:?\s+192\.0\.2\.55/);
    }, 30_000);

    it('a large TXT answer comes back truncated over UDP with TC set', async () => {
      const r = await dig(g, ['big.example.test', 'TXT', '+ignore', '+noedns']);
      expect(r.stdout, r.stdout + r.stderr).toMatch(/;; flags: qr[^;]* tc[ ;]/);
      expect(r.stdout).toMatch(/status: NOERROR/);
      // With EDNS (dig's default 1232 bytes) it fits and arrives whole.
      const whole = await dig(g, ['big.example.test', 'TXT', '+short']);
      expect(whole.stdout.replace(/[\s"]/g, '')).toBe(BIG_TXT.join(''));
    }, 60_000);

    it('DNS over TCP: dig +tcp, and dig retrying a truncated answer over TCP, get the whole answer from the upstream', async () => {
      const tcp = await dig(g, ['+tcp', 'big.example.test', 'TXT', '+noedns', '+short']);
      expect(tcp.stdout.replace(/[\s"]/g, ''), tcp.stdout + tcp.stderr).toBe(BIG_TXT.join(''));
      // Without +ignore, dig sees TC over UDP and asks again over TCP by itself.
      const retried = await dig(g, ['big.example.test', 'TXT', '+noedns']);
      expect(retried.stdout, retried.stdout + retried.stderr).toMatch(/Truncated, retrying in TCP mode/);
      expect(retried.stdout).toMatch(/status: NOERROR/);
      expect(retried.stdout).not.toMatch(/;; flags: qr[^;]* tc[ ;]/);
      expect((await dig(g, ['+tcp', 'example.test', 'AAAA', '+short'])).stdout.trim()).toBe('2001:db8::55');
    }, 60_000);

    it('host.tslirp.internal is the gateway; --dns-record answers A and AAAA; other tslirp.internal names are NXDOMAIN', async () => {
      expect((await dig(g, ['host.tslirp.internal', '+short'])).stdout.trim()).toBe('10.0.2.2');
      expect((await dig(g, ['db.tslirp.test', 'A', '+short'])).stdout.trim()).toBe('192.0.2.77');
      expect((await dig(g, ['db.tslirp.test', 'AAAA', '+short'])).stdout.trim()).toBe('2001:db8::77');
      expect((await dig(g, ['nobody.tslirp.internal'])).stdout).toMatch(/status: NXDOMAIN/);
    }, 60_000);

    it('a name the upstream never answers gives SERVFAIL within the documented bound', async () => {
      const start = performance.now();
      const r = await dig(g, ['silent.test', 'A']);
      const ms = performance.now() - start;
      expect(r.stdout, r.stdout + r.stderr).toMatch(/status: SERVFAIL/);
      expect(ms).toBeLessThan(QUERY_DEADLINE_MS + 1_500);
    }, 30_000);

    it('1,000 datagrams of mixed sizes up to the MTU come back byte-exact from an echo server on the host loopback', async () => {
      const r = await guestClient(g, ['echo', '10.0.2.2', String(echoPort), '1000', String(MTU - 28)]);
      const res = lastJson(r.stdout);
      expect(res, r.stdout + r.stderr).toMatchObject({ ok: 1000, bad: 0, lost: 0 });
      expect(res['retries'] as number).toBeLessThan(50);
    }, 150_000);

    it('a datagram to a closed host port makes the guest see connection refused', async () => {
      const closed = await closedPortRange(21_000, 1);
      const r = await guestClient(g, ['probe', '10.0.2.2', String(closed), '1500'], 20_000);
      expect(lastJson(r.stdout), r.stdout + r.stderr).toMatchObject({ replies: 0, error: 'ECONNREFUSED' });
    }, 30_000);

    it('a flood of 100,000 datagrams opening distinct flows keeps the table at its limit and memory bounded; DNS and DHCP still work', async () => {
      const before = d.rssKiB()!;
      const first = await closedPortRange(22_000, 1000);
      const limit = DEFAULT_FLOW_LIMITS.perGuest.udp; // one guest: its own limit is the one it meets
      // The guest kernel counts the ICMP port unreachables the refused flows bring back.
      const unreachables = async (): Promise<number> => {
        const snmp = (await g.exec(['cat', '/proc/net/snmp'], 10_000)).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
        const names = snmp[0]?.split(/\s+/) ?? [];
        const values = snmp[1]?.split(/\s+/) ?? [];
        return Number(values[names.indexOf('InDestUnreachs')] ?? NaN);
      };
      const unreachBefore = await unreachables();
      let maxSockets = 0;
      const sampler = setInterval(() => {
        maxSockets = Math.max(maxSockets, socketFds(d.pid));
      }, 100);
      // Two halves of 50,000 flows each (100 guest ports x 500 host ports): memory may grow in the
      // first (V8's heap finds its size), and must not keep growing in the second.
      const rss: number[] = [];
      try {
        for (const half of [0, 1]) {
          const r = await guestClient(g, ['flood', '10.0.2.2', '0', '100', String(first + 500 * half), '500', '20'], 240_000);
          expect(lastJson(r.stdout), r.stdout + r.stderr).toMatchObject({ sent: 50_000 });
          rss.push(d.rssKiB()!);
        }
      } finally {
        clearInterval(sampler);
      }
      maxSockets = Math.max(maxSockets, socketFds(d.pid));
      const [half, after] = rss as [number, number];
      const refused = (await unreachables()) - unreachBefore;
      console.log(`flood: daemon RSS ${before} KiB -> ${half} KiB (50,000 flows) -> ${after} KiB (100,000), at most ${maxSockets} sockets (flow limit ${limit}), ${refused} port unreachables back`);
      expect(d.alive(), d.dump()).toBe(true);
      expect(maxSockets).toBeGreaterThan(limit / 2); // the flows did reach the daemon
      expect(maxSockets).toBeLessThanOrEqual(limit + 32);
      expect(after - before).toBeLessThan(128 * 1024);
      expect(after - half).toBeLessThan(32 * 1024);
      expect((await dig(g, ['example.test', '+short'])).stdout.trim()).toBe('192.0.2.55');
      const { lease } = await g.dhcp();
      expect(lease?.['ip']).toBe('10.0.2.15');
      // The session's closing summary says how many flows the flood opened: every one past the
      // limit evicted the least recent (host ICMP rate limits make the guest's count a poor measure).
      await d.stop();
      const ended = d.logs.find((l) => l['msg'] === 'session ended');
      const drops = (ended?.['drops'] ?? {}) as Record<string, number>;
      console.log(`flood: session summary ${JSON.stringify({ fromGuestFrames: ended?.['fromGuestFrames'], drops })}`);
      expect(drops['nat.udp-guest-limit'] ?? 0, d.dump().slice(-4000)).toBeGreaterThan(20 * limit);
    }, 300_000);
  });

  it('tshark reads every DNS message of a --pcap capture cleanly: local answers, forwarded ones, TC, NXDOMAIN, SERVFAIL', async () => {
    const pcapDir = join(work, 'pcap');
    const { d, g } = await daemonWithGuest(['--pcap', `${pcapDir}/`, '--dns-upstream', `127.0.0.1:${dnsmasqPort}`, '--dns-record', 'db.tslirp.test=2001:db8::77']);
    await dig(g, ['host.tslirp.internal', 'A']);
    await dig(g, ['host.tslirp.internal', 'AAAA']);
    await dig(g, ['db.tslirp.test', 'AAAA']);
    await dig(g, ['nobody.tslirp.internal']);
    await dig(g, ['example.test', 'AAAA']);
    await dig(g, ['big.example.test', 'TXT', '+ignore', '+noedns']);
    await dig(g, ['silent.test']);
    await g.destroy();
    await d.stop();
    const files = readdirSync(pcapDir).map((f) => join(pcapDir, f));
    expect(files).toHaveLength(1);
    const checks = ['-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'];
    const all = await run('tshark', ['-r', files[0]!, ...checks, '-Y', 'dns.flags.response == 1', '-T', 'fields', '-e', 'dns.qry.name', '-e', 'dns.qry.type', '-e', 'dns.flags.rcode', '-e', 'dns.flags.truncated', '-e', 'dns.count.answers'], 30_000);
    expect(all.code, all.stderr).toBe(0);
    // tshark 4 prints booleans as True/False, older ones as 1/0.
    const rows = all.stdout.trim().split('\n').map((l) => l.split('\t').map((f) => (f === 'True' ? '1' : f === 'False' ? '0' : f)));
    // name, qtype (1 A, 28 AAAA, 16 TXT), rcode (0, 2 SERVFAIL, 3 NXDOMAIN), TC, answers
    expect(rows).toEqual(expect.arrayContaining([
      ['host.tslirp.internal', '1', '0', '0', '1'],
      ['host.tslirp.internal', '28', '0', '0', '1'], // fd00::2: the IPv6 gateway (--ipv6 is on by default)
      ['db.tslirp.test', '28', '0', '0', '1'],
      ['nobody.tslirp.internal', '1', '3', '0', '0'],
      ['example.test', '28', '0', '0', '1'],
      ['big.example.test', '16', '0', '1', '0'],
      ['silent.test', '1', '2', '0', '0'],
    ]));
    const expert = await run('tshark', ['-r', files[0]!, ...checks, '-Y', '_ws.expert.severity >= "Warning" || _ws.malformed'], 30_000);
    expect(expert.code, expert.stderr).toBe(0);
    expect(expert.stdout.trim(), 'packets with expert warnings').toBe('');
  }, 90_000);

  it.each([
    ['--restrict', 'blocks the echo while DHCP and DNS keep working'],
    ['--disable-host-loopback', 'blocks 10.0.2.2 while DNS keeps working'],
  ])('%s %s', async (option) => {
    const { g } = await daemonWithGuest([option, '--dns-upstream', `127.0.0.1:${dnsmasqPort}`]);
    const seen = echoed.datagrams;
    const r = await guestClient(g, ['probe', '10.0.2.2', String(echoPort)], 20_000);
    expect(lastJson(r.stdout)).toMatchObject({ replies: 0 });
    expect(echoed.datagrams).toBe(seen);
    expect((await dig(g, ['example.test', '+short'])).stdout.trim()).toBe('192.0.2.55');
  }, 90_000);

  it('--resolv-conf: a loopback nameserver on port 53 is used, and changing the file switches the upstream', async () => {
    // Two resolvers on other loopback addresses (all of 127/8 is local), port 53 as resolv.conf requires.
    const one = startDnsmasq('127.53.0.1', 53, ['--address=/switch.test/192.0.2.1']);
    const two = startDnsmasq('127.53.0.2', 53, ['--address=/switch.test/192.0.2.2']);
    cleanups.push(() => one.stop(), () => two.stop());
    await one.waitFor(/started, version/, 10_000);
    await two.waitFor(/started, version/, 10_000);
    const conf = join(work, 'resolv.conf');
    writeFileSync(conf, '# test resolv.conf\nnameserver 127.53.0.1\n');
    const { g, d } = await daemonWithGuest(['--resolv-conf', conf]);
    expect((await dig(g, ['switch.test', '+short'])).stdout.trim(), d.dump()).toBe('192.0.2.1');
    // Replaced by rename, as resolvconf and NetworkManager do.
    writeFileSync(join(work, 'resolv.conf.new'), 'nameserver 127.53.0.2\n');
    renameSync(join(work, 'resolv.conf.new'), conf);
    let answer = '';
    const end = Date.now() + 10_000;
    while (Date.now() < end && answer !== '192.0.2.2') {
      answer = (await dig(g, ['switch.test', '+short'])).stdout.trim();
      if (answer !== '192.0.2.2') await new Promise((r) => setTimeout(r, 300));
    }
    expect(answer, d.dump()).toBe('192.0.2.2');
  }, 90_000);
});
