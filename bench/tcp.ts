/**
 * TCP throughput benchmark: iperf3 in a network-namespace guest against `iperf3 -s` on the
 * host's loopback (10.0.2.2 from the guest), both directions, at MTU 1500 and 65520, through:
 *
 * - tslirp (the built daemon, `--stream unix:`),
 * - libslirp on exactly the same path: QEMU `-M none` with `-netdev user` and a
 *   `-netdev stream` server on one hub (testing.md), so both sit behind the same guest-less
 *   QEMU hub bridge that carries the namespace's TAP,
 * - slirp4netns (libslirp with its own TAP, no QEMU hub in the path: an upper reference).
 *
 * - the bridge alone: two namespaces joined by the same path with no SLIRP at all (TAP ↔ QEMU
 *   hub ↔ unix socket ↔ QEMU hub ↔ TAP for the stream path; TAP ↔ socat ↔ UDP ↔ socat ↔ TAP
 *   for the dgram path), iperf3 -s in the second one. It crosses the bridge twice (two
 *   hubs or socats, two TAPs), where a SLIRP path crosses it once: a reference, not a ceiling.
 *
 * Runs alternate A B A B with ≥5 pairs per cell; the ratio is the median of pairwise ratios
 * tslirp/libslirp. Floor (issue 4): ≥ 1.0 in every cell. Also reported: CPU seconds per GB
 * moved of each SLIRP process (tslirp's daemon; libslirp's QEMU, which holds the stream server,
 * the hub and libslirp, as the daemon holds its listener and stack; slirp4netns, which also does
 * its TAP's I/O) and of the guest-side bridge, with the floor of issue 15: tslirp's CPU per GB
 * ≤ libslirp's in every cell (median of pairwise ratios); a bar chart of the cells to
 * BENCH_CHART (default in the temporary directory), 1-byte request/response latency on one connection and the rate of sequential
 * short connections (both measured by bench/guest/client.ts inside the guest, alternating
 * tslirp and libslirp), and idle connection memory (daemon RSS growth for 500 idle
 * connections).
 *
 * Observed (issue 12: the data path must not pay for being observed): the same tslirp daemon
 * with an API client polling `GET /v1/flows` every 100 ms and one `tslirp ctl watch` attached,
 * against no client, in the same run. Each pair runs both, in alternating order (observed
 * second, then observed first, …) so drift on a loaded machine does not favour either; the
 * ratio is the median of ≥5 pairwise ratios observed/unobserved. Floor: ≥ 0.95 in every cell.
 *
 * IPv6 (issue 14): the same tslirp guest gets a SLAAC address beside its lease and iperf3 runs
 * to a second `iperf3 -s` on the host's ::1, reached as fd00::2, against libslirp on the same
 * path (QEMU `-netdev user,ipv6-net=fd00::/64`, the guest autoconfigured from libslirp's
 * advertisement) and slirp4netns `--enable-ipv6`, both directions at both MTUs. Each pair runs
 * tslirp v4, tslirp v6, libslirp v6 and slirp4netns v6; floor: tslirp v6 ≥ 0.9× tslirp v4
 * (median of pairwise ratios) in every cell. tslirp v6 / libslirp v6 is reported beside it.
 *
 * Needs root, iperf3, qemu-system-x86_64, slirp4netns, socat, busybox and a built daemon
 * (npm run build). Environment: BENCH_PAIRS (default 5), BENCH_SECONDS (default 3),
 * BENCH_MTUS (default 1500,65520), BENCH_ONLY: a comma-separated list of the cells to run out
 * of bulk (iperf3 both ways, with slirp4netns and the bridge alone), observed, ipv6, rr (1-byte
 * request/response), conn (sequential connections), idle (idle connection memory); all when
 * unset. `BENCH_ONLY=observed` runs tslirp alone, `BENCH_ONLY=ipv6` the IPv6 cells alone; rr,
 * conn and idle run at the first MTU only, BENCH_RR_COUNT round trips (2000) and
 * BENCH_CRR_COUNT connections (300) per run. Each bulk cell also prints the data frames at every
 * guest's TAP (count and mean size). The rr and conn cells also give each SLIRP process's CPU
 * per round trip and per connection, user and system apart (with the load average): on a loaded
 * machine a gain shows there when wall time is noise. BENCH_TRACE=1 prints each conn run to stderr
 * (its start, its rate, and the TIME-WAIT sockets on the host and in its guest before and after):
 * libslirp keeps a closed connection as a socket for its TIME-WAIT (`info usernet` lists all 1000
 * of a 1000-connection run right after it, none 12 s later) and the host's server holds one
 * TIME-WAIT per connection for 60 s, so a run's figure depends on what ran in the last minute.
 * One quiet run (2026-12-04 22:41, load 0.9, libslirp alone, a fresh server port per run, 500
 * connections): 779/s fresh, 723/s straight after with its 500 TIME-WAIT sockets, 335/s after
 * 11 s idle with none left (QEMU user CPU per connection 0.16 → 0.52 ms); a second such run (load
 * 2.4): 574, 565, then 350 after 11 s idle, 363 straight after that, 413 after another 11 s.
 * So libslirp's cost rises once it has sat idle and stays up, leftovers or not: the warm-up run
 * and the idle time between a target's runs (longer with a third target) are not yet held constant.
 *
 * Old build against new in one run (build the other commit into a scratch directory outside the
 * tree's dist): BENCH_TSLIRP_DAEMON=PATH chooses which build is "tslirp" (a CLI entry point,
 * `…/dist/cli/main.js`; this tree's build when unset), and BENCH_BASELINE=PATH runs another
 * tslirp build as a third target beside tslirp and libslirp in every bulk, rr and conn pair
 * (its place in the order alternating per pair), with tslirp/baseline ratios of speed and CPU. libslirp stays the
 * reference of every floor. BENCH_TSLIRP_NODE_ARGS and BENCH_BASELINE_NODE_ARGS add node flags to
 * that daemon alone (after DAEMON_NODE_ARGS, which all get), to A/B a V8 flag with one build.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { DAEMON_ENTRY, startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { dgramGuest } from './lib/dgram-guest.js';
import { guestClient as runGuestClient, iperf as iperfRun } from './lib/iperf.js';
import { groupedBars, type BarGroup } from './lib/bars-svg.js';
import { cpuSeconds, cpuTimes, freeUdp, median, tapCounts, type TapCounts } from './lib/measure.js';
import { slaac } from './lib/slaac.js';
import { inspectorSession } from './lib/inspector.js';
import { missingRequirements, command, daemon as daemonReq, root, NetnsGuest, Proc, tempDir, until, must, uniqueName, run } from '../test/helpers/guests.js';

const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const MTUS = (process.env['BENCH_MTUS'] ?? '1500,65520').split(',').map(Number);
/** The cells BENCH_ONLY names; every cell when it is unset. */
const CELLS = ['bulk', 'observed', 'ipv6', 'rr', 'conn', 'idle'] as const;
type Cell = (typeof CELLS)[number];
const ONLY = new Set((process.env['BENCH_ONLY'] ?? CELLS.join(',')).split(',').map((c) => c.trim()).filter((c) => c !== ''));
for (const c of ONLY) {
  if (!(CELLS as readonly string[]).includes(c)) {
    console.error(`bench/tcp.ts: unknown cell ${c} in BENCH_ONLY (cells: ${CELLS.join(', ')})`);
    process.exit(2);
  }
}
const runs = (c: Cell): boolean => ONLY.has(c);
const ONLY_OBSERVED = ONLY.size === 1 && runs('observed');
const ONLY_IPV6 = ONLY.size === 1 && runs('ipv6');
/** Floor of tslirp's IPv6/IPv4 ratio (issue 14). */
const IPV6_FLOOR = 0.9;
/** The API client's polling period (issue 12). */
const POLL_MS = 100;
/** Round trips per request/response run, connections per connection-rate run (BENCH_RR_COUNT, BENCH_CRR_COUNT). */
const RR_COUNT = Number(process.env['BENCH_RR_COUNT'] ?? 2000);
const CRR_COUNT = Number(process.env['BENCH_CRR_COUNT'] ?? 300);
function nonEmpty(v: string | undefined): string | undefined {
  return v === '' ? undefined : v;
}
/** Another tslirp build's CLI entry point (its dist/cli/main.js) to run as tslirp (BENCH_TSLIRP_DAEMON). */
const TSLIRP_DAEMON = nonEmpty(process.env['BENCH_TSLIRP_DAEMON']);
/** Where the bulk cells' bar chart is written (BENCH_CHART). */
const CHART = process.env['BENCH_CHART'] ?? join(os.tmpdir(), 'tslirp-bench-tcp.svg');
/**
 * BENCH_BASELINE: another tslirp build's CLI entry point (`…/dist/cli/main.js`, e.g. main's built
 * in a scratch directory), run beside tslirp and libslirp in every bulk, rr and conn pair.
 */
const BASELINE = nonEmpty(process.env['BENCH_BASELINE']);
if (process.env['BENCH_BASE_DAEMON'] !== undefined) {
  console.error('bench/tcp.ts: BENCH_BASE_DAEMON is gone; BENCH_BASELINE=PATH now runs that build beside tslirp and libslirp in the rr and conn cells too');
  process.exit(2);
}
/**
 * BENCH_RR_TRACE=DIR: after the rr pairs, one more run per target under each of: `perf record
 * -g` of its SLIRP process (DIR/rr-NAME.perf.data; run with DAEMON_NODE_ARGS=--perf-basic-prof
 * for JS names), `strace -c -f` (DIR/rr-NAME.strace), and a plain run that counts the frames at
 * the guest's TAP and, for a daemon started with DAEMON_NODE_ARGS=--trace-gc, its GCs. Prints
 * each per round trip. The traced runs are not part of the pairs' figures.
 */
const RR_TRACE = nonEmpty(process.env['BENCH_RR_TRACE']);
/** Floor of the observed/unobserved ratio (issue 12). */
const OBSERVED_FLOOR = 0.95;

const missing = missingRequirements([root, daemonReq, command('iperf3'), command('qemu-system-x86_64'), command('slirp4netns'), command('socat')]);
if (missing.length > 0) {
  console.error(`bench/tcp.ts: cannot run, missing ${missing.join('; ')}`);
  process.exit(process.env['CI'] === 'true' ? 1 : 0);
}

async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}


interface Target {
  readonly name: string;
  readonly guest: NetnsGuest;
  /** The address the guest reaches the host's loopback at. */
  readonly server: string;
  readonly pid: number | undefined;
  /** The guest's TAP (namespace and device), whose counters show the frames of each run. */
  readonly tap?: { readonly ns: string; readonly dev: string };
  stop(): Promise<void>;
}

/**
 * The path between the namespace's TAP and the SLIRP under test. 'stream': a guest-less QEMU
 * hub (testing.md). 'dgram': socat TAP <-> UDP, one frame per datagram. QEMU 7.2's stream
 * netdev aborts on frames near 64 KiB when the socket is full (iov_copy assertion in the
 * hub bridge), so the 65520 cell runs on the dgram path, whose MTU ceiling is 65493 (the
 * largest UDP datagram minus the Ethernet header).
 */
type Path = 'stream' | 'dgram';
const pathFor = (mtu: number): Path => (mtu > 1500 ? 'dgram' : 'stream');
const mtuOn = (mtu: number, path: Path): number => (path === 'dgram' ? Math.min(mtu, 65493) : mtu);


/**
 * CPU seconds per GB moved by one process, summed over the runs it was measured in: `begin`
 * before a run, `end(bytes)` after it (a process that is not there, pid undefined, costs nothing).
 */
class CpuPerGb {
  #cpu = 0;
  #bytes = 0;
  begin(pid: number | undefined): { end(bytes: number): void; readonly perGb: number } {
    const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
    let perGb = 0;
    return {
      end: (bytes: number) => {
        const cpu = pid === undefined ? 0 : cpuSeconds(pid) - cpu0;
        this.#cpu += cpu;
        this.#bytes += bytes;
        perGb = bytes > 0 ? cpu / (bytes / 1e9) : 0;
      },
      get perGb() {
        return perGb;
      },
    };
  }
  text(): string {
    return this.#bytes > 0 ? (this.#cpu / (this.#bytes / 1e9)).toFixed(2) : 'n/a';
  }
}

/**
 * The daemon's major (mark-compact) garbage collections so far, count and seconds, from its
 * /metrics (prom-client's nodejs_gc_duration_seconds): what `--initial-old-space-size` changes,
 * so a run with DAEMON_BARE_NODE=1 shows whether the default heap sizing still costs.
 */
async function majorGcs(api: string): Promise<{ count: number; seconds: number }> {
  const text = (await apiCall(api, '/metrics')) ?? '';
  const value = (name: string): number => Number(new RegExp(`^tslirp_nodejs_gc_duration_seconds_${name}\\{kind="major"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { count: value('count'), seconds: value('sum') };
}

/**
 * Frames through a target's TAP in the data's direction, summed over the runs: `begin` before
 * a run, `end` after it. Toward the guest (host→guest) the TAP receives them; from the guest
 * it sends them. The mean frame size shows how full the segments are at a large MTU.
 */
class TapFrames {
  #frames = 0;
  #bytes = 0;
  begin(t: Target, towardGuest: boolean): { end(): void } {
    const tap = t.tap;
    if (tap === undefined) return { end: () => undefined };
    const pick = (c: TapCounts): [number, number] => (towardGuest ? [c.rxFrames, c.rxBytes] : [c.txFrames, c.txBytes]);
    const [f0, b0] = pick(tapCounts(tap.ns, tap.dev));
    return {
      end: () => {
        const [f1, b1] = pick(tapCounts(tap.ns, tap.dev));
        this.#frames += f1 - f0;
        this.#bytes += b1 - b0;
      },
    };
  }
  text(): string {
    return this.#frames > 0 ? `${Math.round(this.#frames / PAIRS)} frames/run of mean ${Math.round(this.#bytes / this.#frames)} B` : 'n/a';
  }
}

/** The guest-side bridge process of a target (the QEMU hub or socat between its TAP and the SLIRP), when it has one. */
const bridgePid = (t: Target): number | undefined => (t.guest instanceof NetnsGuest ? t.guest.bridge.child.pid : undefined);

/**
 * A tslirp daemon and its guest: this tree's build, or the CLI entry point `entry` (another
 * build: BENCH_TSLIRP_DAEMON, BENCH_BASELINE), under `name`.
 */
async function tslirpTarget(mtu: number, dir: string, entry = TSLIRP_DAEMON, name = 'tslirp'): Promise<Target & { daemon: Daemon; api: string }> {
  const path = pathFor(mtu);
  const sock = join(dir, `${name}-${mtu}.sock`);
  const api = join(dir, `${name}-api-${mtu}.sock`);
  // BENCH_TSLIRP_NODE_ARGS / BENCH_BASELINE_NODE_ARGS: node flags for that daemon alone (after DAEMON_NODE_ARGS), to A/B a flag in one run.
  const own = process.env[name === 'baseline' ? 'BENCH_BASELINE_NODE_ARGS' : 'BENCH_TSLIRP_NODE_ARGS'];
  const before = process.env['DAEMON_NODE_ARGS'];
  if (own !== undefined) process.env['DAEMON_NODE_ARGS'] = `${before ?? ''} ${own}`;
  const started = startDaemon([path === 'stream' ? '--stream' : '--dgram', path === 'stream' ? `unix:${sock}` : 'udp:127.0.0.1:0', '--mtu', String(mtuOn(mtu, path)), '--api', `unix:${api}`, '--log-level', 'info'], { startTimeoutMs: 60_000, ...(entry !== undefined && { entry }) });
  if (before === undefined) delete process.env['DAEMON_NODE_ARGS'];
  else process.env['DAEMON_NODE_ARGS'] = before;
  const daemon = await started;
  const guest = path === 'stream' ? await NetnsGuest.create({ kind: 'stream-unix', path: sock }) : await dgramGuest(daemon.dgram().port, await freeUdp());
  const { lease } = await guest.dhcp();
  if (lease === undefined) throw new Error('tslirp: no DHCP lease');
  return {
    name, guest, server: '10.0.2.2', pid: daemon.pid, daemon, api, tap: { ns: guest.ns, dev: guest.tap },
    async stop() {
      await guest.destroy();
      await daemon.stop();
    },
  };
}

async function libslirpTarget(mtu: number, dir: string): Promise<Target> {
  const path = pathFor(mtu);
  const sock = join(dir, `libslirp-${mtu}.sock`);
  const qemuPort = await freeUdp();
  const socatPort = await freeUdp();
  const q = new Proc('libslirp-qemu', 'qemu-system-x86_64', [
    '-M', 'none', '-nodefaults', '-display', 'none',
    // IPv6 in the prefix tslirp and slirp4netns use (QEMU's default is fec0::/64): fd00::2 is the host's ::1.
    '-netdev', 'user,id=u0,ipv6-net=fd00::/64',
    '-netdev', path === 'stream'
      ? `stream,id=s0,server=on,addr.type=unix,addr.path=${sock}`
      : `dgram,id=s0,local.type=inet,local.host=127.0.0.1,local.port=${qemuPort},remote.type=inet,remote.host=127.0.0.1,remote.port=${socatPort}`,
    '-netdev', 'hubport,id=h0,hubid=0,netdev=u0',
    '-netdev', 'hubport,id=h1,hubid=0,netdev=s0',
  ]);
  if (path === 'stream') await until(() => q.exit !== undefined || spawnSync('test', ['-S', sock]).status === 0, 10_000);
  else await new Promise((r) => setTimeout(r, 500));
  if (q.exit !== undefined) throw new Error(`libslirp QEMU exited: ${q.tail()}`);
  const guest = path === 'stream' ? await NetnsGuest.create({ kind: 'stream-unix', path: sock }) : await dgramGuest(qemuPort, socatPort);
  const { lease } = await guest.dhcp();
  if (lease === undefined) throw new Error('libslirp: no DHCP lease');
  // QEMU's -netdev user has no MTU option: libslirp keeps 1500 and says so in its MSS.
  await guest.sh('ip link set dev "$1" mtu "$2"', [guest.tap, String(mtuOn(mtu, path))]);
  return {
    name: 'libslirp', guest, server: '10.0.2.2', pid: q.child.pid, tap: { ns: guest.ns, dev: guest.tap },
    async stop() {
      await guest.destroy();
      await q.stop();
    },
  };
}

/** slirp4netns on its own TAP (tap0) in a new namespace; `ipv6`: with --enable-ipv6 and the namespace autoconfigured from its advertisement. */
async function slirp4netnsTarget(mtu: number, ipv6 = false): Promise<Target | undefined> {
  const ns = uniqueName('tslb4n');
  must('ip', ['netns', 'add', ns]);
  const p = new Proc('slirp4netns', 'slirp4netns', ['--configure', '--mtu', String(mtu), ...(ipv6 ? ['--enable-ipv6'] : []), '--netns-type=path', `/run/netns/${ns}`, 'tap0']);
  const ok = await until(() => p.exit !== undefined || /sent tapfd|Starting slirp/.test(p.output) || spawnSync('ip', ['netns', 'exec', ns, 'ip', 'addr', 'show', 'tap0'], { encoding: 'utf8' }).stdout.includes('10.0.2.100'), 10_000);
  if (!ok || p.exit !== undefined) {
    console.error(`slirp4netns did not start: ${p.tail()}`);
    await p.stop();
    spawnSync('ip', ['netns', 'del', ns]);
    return undefined;
  }
  const guestLike = {
    exec: (args: readonly string[], timeoutMs?: number) => run('ip', ['netns', 'exec', ns, ...args], timeoutMs),
  } as unknown as NetnsGuest;
  if (ipv6 && !(await slaac(guestLike, 'tap0'))) {
    console.error(`slirp4netns --enable-ipv6: no SLAAC address in its namespace: ${p.tail()}`);
    await p.stop();
    spawnSync('ip', ['netns', 'del', ns]);
    return undefined;
  }
  return {
    name: ipv6 ? 'slirp4netns v6' : 'slirp4netns', guest: guestLike, server: ipv6 ? 'fd00::2' : '10.0.2.2', pid: p.child.pid, tap: { ns, dev: 'tap0' },
    async stop() {
      await p.stop();
      spawnSync('ip', ['netns', 'del', ns]);
    },
  };
}

/** Two namespaces joined by the bridge path only; the "server" side answers at 10.0.2.2. */
async function bridgeTarget(mtu: number, dir: string, iperfPort: number): Promise<Target> {
  const path = pathFor(mtu);
  const m = String(mtuOn(mtu, path));
  let a: NetnsGuest;
  let b: NetnsGuest;
  let q: Proc | undefined;
  if (path === 'dgram') {
    const pa = await freeUdp();
    const pb = await freeUdp();
    a = await dgramGuest(pb, pa);
    b = await dgramGuest(pa, pb);
  } else {
    const sock = join(dir, `bridge-${mtu}.sock`);
    const ns = uniqueName('tslbns');
    const tap = uniqueName('tslbtap');
    must('ip', ['netns', 'add', ns]);
    q = new Proc('bridge-qemu', 'qemu-system-x86_64', [
      '-M', 'none', '-nodefaults', '-display', 'none',
      '-netdev', `tap,id=t0,ifname=${tap},script=no,downscript=no`,
      '-netdev', `stream,id=s0,server=on,addr.type=unix,addr.path=${sock}`,
      '-netdev', 'hubport,id=h0,hubid=0,netdev=t0',
      '-netdev', 'hubport,id=h1,hubid=0,netdev=s0',
    ]);
    const qq = q;
    await until(() => qq.exit !== undefined || spawnSync('test', ['-S', sock]).status === 0, 10_000);
    must('ip', ['link', 'set', 'dev', tap, 'netns', ns]);
    must('ip', ['netns', 'exec', ns, 'sh', '-c', `ip link set lo up && ip link set dev ${tap} up`]);
    b = Object.create(NetnsGuest.prototype) as NetnsGuest;
    Object.assign(b, { ns, tap, bridge: q });
    a = await NetnsGuest.create({ kind: 'stream-unix', path: sock });
  }
  await a.sh('ip addr add 10.0.2.15/24 dev "$1" && ip link set dev "$1" mtu "$2"', [a.tap, m]);
  await b.sh('ip addr add 10.0.2.2/24 dev "$1" && ip link set dev "$1" mtu "$2"', [b.tap, m]);
  const server = b.spawn('iperf3 -s (bridge)', ['iperf3', '-s', '-B', '10.0.2.2', '-p', String(iperfPort)]);
  await new Promise((r) => setTimeout(r, 300));
  return {
    name: 'bridge', guest: a, server: '10.0.2.2', pid: undefined,
    async stop() {
      await server.stop();
      await a.destroy();
      await b.destroy();
      await q?.stop();
    },
  };
}

async function main(): Promise<void> {
  const dir = tempDir('tslirp-bench-');
  const iperfPort = await freePort();
  const iperfServer = new Proc('iperf3 -s', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', String(iperfPort)]);
  // The IPv6 cells' server: the host's ::1, which the guests reach as fd00::2.
  const iperfPort6 = await freePort('::1');
  const iperfServer6 = new Proc('iperf3 -s (::1)', 'iperf3', ['-s', '-B', '::1', '-p', String(iperfPort6)]);
  await new Promise((r) => setTimeout(r, 300));
  const rows: string[] = [];
  let floorOk = true;
  /** tslirp's CPU per GB ≤ libslirp's in every bulk cell (issue 15). */
  let cpuOk = true;
  const chartCells: BarGroup[] = [];
  let observedOk = true;
  let ipv6Ok = true;
  try {
    for (const mtu of MTUS) {
      if (ONLY_IPV6) {
        const a = await tslirpTarget(mtu, dir);
        const b = await libslirpTarget(mtu, dir);
        try {
          if (!(await ipv6Cells(a, b, mtu, iperfPort, iperfPort6, rows))) ipv6Ok = false;
        } finally {
          await a.stop();
          await b.stop();
        }
        continue;
      }
      if (ONLY_OBSERVED) {
        const a = await tslirpTarget(mtu, dir);
        try {
          if (!(await observedCells(a, mtu, iperfPort, rows))) floorOk = false;
        } finally {
          await a.stop();
        }
        continue;
      }
      const extrasHere = mtu === MTUS[0] && (runs('rr') || runs('conn') || runs('idle'));
      if (!runs('bulk') && !runs('observed') && !runs('ipv6') && !extrasHere) continue;
      const a = await tslirpTarget(mtu, dir);
      const b = await libslirpTarget(mtu, dir);
      const c = runs('bulk') ? await slirp4netnsTarget(mtu) : undefined;
      const br = runs('bulk') ? await bridgeTarget(mtu, dir, iperfPort) : undefined;
      const base = BASELINE !== undefined && (runs('bulk') || (extrasHere && (runs('rr') || runs('conn')))) ? await tslirpTarget(mtu, dir, BASELINE, 'baseline') : undefined;
      try {
        for (const reverse of br === undefined ? [] : [false, true]) {
          const dirName = reverse ? 'host→guest' : 'guest→host';
          const ratios: number[] = [];
          const as: number[] = [];
          const bs: number[] = [];
          const cs: number[] = [];
          const brs: number[] = [];
          const costA = new CpuPerGb();
          const costB = new CpuPerGb();
          const costC = new CpuPerGb();
          const costBridgeA = new CpuPerGb();
          const costBridgeB = new CpuPerGb();
          const cpuRatios: number[] = [];
          const gc = { count: 0, seconds: 0, bytes: 0 };
          const framesA = new TapFrames();
          const framesB = new TapFrames();
          const framesC = new TapFrames();
          const baseRuns: number[] = [];
          const baseRatios: number[] = [];
          const costBase = new CpuPerGb();
          const framesBase = new TapFrames();
          const baseCpuRatios: number[] = [];
          for (let i = 0; i < PAIRS; i++) {
            // The baseline build, before tslirp in odd pairs and after it in even ones.
            const runBase = async (): Promise<number> => {
              if (base === undefined) return 0;
              const cost = costBase.begin(base.pid);
              const frames = framesBase.begin(base, reverse);
              const v = await iperfRun(base.guest, base.server, iperfPort, SECONDS, reverse, base.name);
              frames.end();
              cost.end(v * SECONDS / 8);
              baseRuns.push(v);
              return cost.perGb;
            };
            const baseCpu0 = i % 2 === 1 ? await runBase() : 0;
            const ca = costA.begin(a.pid);
            const cba = costBridgeA.begin(bridgePid(a));
            const gc0 = await majorGcs(a.api);
            const fa = framesA.begin(a, reverse);
            const x = await iperfRun(a.guest, a.server, iperfPort, SECONDS, reverse, a.name);
            fa.end();
            ca.end(x * SECONDS / 8);
            cba.end(x * SECONDS / 8);
            const gc1 = await majorGcs(a.api);
            gc.count += gc1.count - gc0.count;
            gc.seconds += gc1.seconds - gc0.seconds;
            gc.bytes += x * SECONDS / 8;
            if (base !== undefined) {
              const baseCpu = i % 2 === 1 ? baseCpu0 : await runBase();
              const v = baseRuns[baseRuns.length - 1] ?? 0;
              if (v > 0) baseRatios.push(x / v);
              if (baseCpu > 0 && ca.perGb > 0) baseCpuRatios.push(ca.perGb / baseCpu);
            }
            const cb = costB.begin(b.pid);
            const cbb = costBridgeB.begin(bridgePid(b));
            const fb = framesB.begin(b, reverse);
            const y = await iperfRun(b.guest, b.server, iperfPort, SECONDS, reverse, b.name);
            fb.end();
            cb.end(y * SECONDS / 8);
            cbb.end(y * SECONDS / 8);
            as.push(x);
            bs.push(y);
            if (y > 0) ratios.push(x / y);
            if (ca.perGb > 0 && cb.perGb > 0) cpuRatios.push(ca.perGb / cb.perGb);
            if (c !== undefined) {
              const cc = costC.begin(c.pid);
              const fc = framesC.begin(c, reverse);
              const z = await iperfRun(c.guest, c.server, iperfPort, SECONDS, reverse, c.name);
              fc.end();
              cc.end(z * SECONDS / 8);
              cs.push(z);
            }
            brs.push(await iperfRun(br!.guest, br!.server, iperfPort, SECONDS, reverse, br!.name));
          }
          const ratio = ratios.length > 0 ? median(ratios) : 0;
          if (ratio < 1) floorOk = false;
          const cpuRatio = cpuRatios.length > 0 ? median(cpuRatios) : Infinity;
          if (cpuRatio > 1) cpuOk = false;
          const cell = `MTU ${mtuOn(mtu, pathFor(mtu))} ${dirName}`;
          const bar = (xs: readonly number[], cost?: CpuPerGb): { value: number; label: string; note?: string } => {
            const v = xs.length > 0 ? median(xs) / 1e9 : 0;
            return { value: v, label: xs.length > 0 ? v.toFixed(2) : 'n/a', ...(cost === undefined ? {} : { note: cost.text() }) };
          };
          chartCells.push({ label: cell, bars: [bar(as, costA), bar(bs, costB), bar(cs, costC), bar(brs)] });
          rows.push(
            `MTU ${String(mtuOn(mtu, pathFor(mtu))).padStart(5)} (${pathFor(mtu)} path) ${dirName}: tslirp ${(median(as) / 1e9).toFixed(2)} Gbit/s, libslirp ${(median(bs) / 1e9).toFixed(2)}, ` +
              `slirp4netns ${cs.length > 0 ? (median(cs) / 1e9).toFixed(2) : 'n/a'}, bridge alone ${(median(brs) / 1e9).toFixed(2)}; ratio tslirp/libslirp ${ratio.toFixed(2)} ` +
              `(pairs ${ratios.map((r) => r.toFixed(2)).join(' ')})\n` +
              `    CPU s/GB: tslirp ${costA.text()}, libslirp ${costB.text()} (its QEMU: the stream server, hub and libslirp), slirp4netns ${costC.text()} (its own TAP too); ` +
              `tslirp/libslirp ${Number.isFinite(cpuRatio) ? cpuRatio.toFixed(2) : 'n/a'} (pairs ${cpuRatios.map((r) => r.toFixed(2)).join(' ')}); ` +
              `guest-side bridge: ${costBridgeA.text()} on tslirp's path, ${costBridgeB.text()} on libslirp's; ` +
              `tslirp's major GCs: ${gc.bytes > 0 ? (gc.count / (gc.bytes / 1e9)).toFixed(1) : 'n/a'} per GB, ${gc.bytes > 0 ? ((gc.seconds * 1000) / (gc.bytes / 1e9)).toFixed(0) : 'n/a'} ms per GB` +
              (process.env['DAEMON_BARE_NODE'] === '1' ? ' (DAEMON_BARE_NODE=1: started without its node flags)' : '') +
              `\n    data frames at the guest's TAP: tslirp ${framesA.text()}, libslirp ${framesB.text()}, slirp4netns ${framesC.text()}` +
              (base === undefined ? '' :
                `\n    baseline (BENCH_BASELINE) ${(median(baseRuns) / 1e9).toFixed(2)} Gbit/s, CPU ${costBase.text()} s/GB, frames ${framesBase.text()}; ` +
                `tslirp/baseline ${median(baseRatios).toFixed(2)} (pairs ${baseRatios.map((r) => r.toFixed(2)).join(' ')}), CPU per GB ${median(baseCpuRatios).toFixed(2)} (pairs ${baseCpuRatios.map((r) => r.toFixed(2)).join(' ')})`),
          );
          console.log(rows[rows.length - 1]);
        }
        if (runs('observed') && !(await observedCells(a, mtu, iperfPort, rows))) observedOk = false;
        if (extrasHere) {
          if (!(await extras(a, b, base, rows))) floorOk = false;
        }
        if (runs('ipv6') && !(await ipv6Cells(a, b, mtu, iperfPort, iperfPort6, rows))) ipv6Ok = false;
      } finally {
        await a.stop();
        await b.stop();
        await c?.stop();
        await br?.stop();
        await base?.stop();
      }
    }
  } finally {
    await iperfServer.stop();
    await iperfServer6.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('\n' + rows.join('\n'));
  if (chartCells.length > 0) {
    writeFileSync(CHART, groupedBars(
      `TCP through the daemon, iperf3 Gbit/s (median of ${PAIRS}); under each bar the SLIRP process's CPU s/GB`,
      [{ name: 'tslirp', colour: '#2a7ab0' }, { name: 'libslirp (QEMU hub)', colour: '#d08a2a' }, { name: 'slirp4netns (own TAP)', colour: '#8a8a8a' }, { name: 'bridge alone', colour: '#c8c8c8' }],
      chartCells,
    ));
    console.log(`chart: ${CHART}`);
    console.log(cpuOk ? 'CPU floor met: tslirp CPU per GB ≤ libslirp\'s in every bulk cell' : 'CPU FLOOR MISSED: tslirp CPU per GB > libslirp\'s in some bulk cell');
  }
  if (!ONLY_OBSERVED && !ONLY_IPV6) console.log(floorOk ? 'floor met: tslirp ≥ 1.0× libslirp in every cell' : 'FLOOR MISSED: tslirp < 1.0× libslirp in some cell');
  if (runs('observed')) {
    const observed = ONLY_OBSERVED ? floorOk : observedOk;
    console.log(observed ? `observed floor met: ≥ ${OBSERVED_FLOOR}× unobserved in every cell` : `OBSERVED FLOOR MISSED: < ${OBSERVED_FLOOR}× unobserved in some cell`);
  }
  if (runs('ipv6')) console.log(ipv6Ok ? `IPv6 floor met: tslirp v6 ≥ ${IPV6_FLOOR}× tslirp v4 in every cell` : `IPV6 FLOOR MISSED: tslirp v6 < ${IPV6_FLOOR}× tslirp v4 in some cell`);
}

/**
 * Issue 14's cells for one MTU, both directions: tslirp's guest (`a`) gets a SLAAC address
 * beside its lease, libslirp's (`b`, same path) one from libslirp's advertisement, and a
 * slirp4netns --enable-ipv6 comes up for the cells. Each of PAIRS rounds runs tslirp v4
 * (10.0.2.2 → 127.0.0.1:port4), tslirp v6, libslirp v6 and slirp4netns v6 (fd00::2 →
 * [::1]:port6), the order rotated per round. Appends a row per direction; false when tslirp's
 * v6/v4 median pairwise ratio is below IPV6_FLOOR (or tslirp has no IPv6 address).
 */
async function ipv6Cells(a: Target, b: Target, mtu: number, port4: number, port6: number, rows: string[]): Promise<boolean> {
  const path = pathFor(mtu);
  const cellMtu = `MTU ${String(mtuOn(mtu, path)).padStart(5)} (${path} path)`;
  if (!(await slaac(a.guest, a.guest.tap))) {
    rows.push(`${cellMtu} IPv6: tslirp's guest got no SLAAC address`);
    console.log(rows[rows.length - 1]);
    return false;
  }
  const libslirp6 = await slaac(b.guest, b.guest.tap);
  if (!libslirp6) console.error(`libslirp (QEMU -netdev user): no SLAAC address in its guest; its IPv6 cells are n/a`);
  const s6 = await slirp4netnsTarget(mtu, true);
  let ok = true;
  try {
    for (const reverse of [false, true]) {
      const dirName = reverse ? 'host→guest' : 'guest→host';
      type Key = 'v4' | 'v6' | 'lib' | 's4n';
      const runs: Record<Key, number[]> = { v4: [], v6: [], lib: [], s4n: [] };
      const round: [Key, () => Promise<number>][] = [
        ['v4', () => iperfRun(a.guest, '10.0.2.2', port4, SECONDS, reverse, 'tslirp v4')],
        ['v6', () => iperfRun(a.guest, 'fd00::2', port6, SECONDS, reverse, 'tslirp v6')],
      ];
      if (libslirp6) round.push(['lib', () => iperfRun(b.guest, 'fd00::2', port6, SECONDS, reverse, 'libslirp v6')]);
      if (s6 !== undefined) round.push(['s4n', () => iperfRun(s6.guest, s6.server, port6, SECONDS, reverse, s6.name)]);
      const v6v4: number[] = [];
      const v6lib: number[] = [];
      const v6s4n: number[] = [];
      for (let i = 0; i < PAIRS; i++) {
        const got: Partial<Record<Key, number>> = {};
        for (let k = 0; k < round.length; k++) {
          const [key, go] = round[(i + k) % round.length]!;
          got[key] = await go();
          runs[key].push(got[key]);
        }
        if ((got.v4 ?? 0) > 0) v6v4.push((got.v6 ?? 0) / got.v4!);
        if ((got.lib ?? 0) > 0) v6lib.push((got.v6 ?? 0) / got.lib!);
        if ((got.s4n ?? 0) > 0) v6s4n.push((got.v6 ?? 0) / got.s4n!);
      }
      const ratio = v6v4.length > 0 ? median(v6v4) : 0;
      if (ratio < IPV6_FLOOR) ok = false;
      const g = (xs: number[]): string => (xs.length > 0 ? (median(xs) / 1e9).toFixed(2) : 'n/a');
      const r = (xs: number[]): string => (xs.length > 0 ? median(xs).toFixed(2) : 'n/a');
      rows.push(
        `${cellMtu} ${dirName} IPv6: tslirp v6 ${g(runs.v6)} Gbit/s (v4 ${g(runs.v4)}), libslirp v6 ${g(runs.lib)}, slirp4netns v6 ${g(runs.s4n)}; ` +
          `ratio tslirp v6/v4 ${ratio.toFixed(2)}${ratio < IPV6_FLOOR ? ' BELOW FLOOR' : ''} (pairs ${v6v4.map((x) => x.toFixed(2)).join(' ')}); ` +
          `tslirp v6/libslirp v6 ${r(v6lib)}, tslirp v6/slirp4netns v6 ${r(v6s4n)}`,
      );
      console.log(rows[rows.length - 1]);
    }
  } finally {
    await s6?.stop();
  }
  return ok;
}

/** A request to the API's unix socket; the body of a 2xx answer, undefined otherwise. */
function apiCall(socketPath: string, path: string, method = 'GET', body?: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path, method, timeout: 10_000, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300 ? Buffer.concat(chunks).toString('utf8') : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

/**
 * The observers of issue 12's benchmark on the daemon's API socket: `tslirp ctl watch` (the
 * built CLI, its output read and discarded; attached once it has printed a forward added for
 * the purpose) and a client that asks for `/v1/flows` every POLL_MS (the next request once the
 * period has passed and the last answer came). `stop()` ends both and returns how many polls
 * were answered and how many bytes of events the watcher printed.
 */
async function startObservers(api: string, forwardPort: number): Promise<{ stop(): Promise<{ polls: number; failed: number; watchBytes: number }> }> {
  // The watcher is attached once it prints an event: a forward added (and removed) for that.
  const watch = new Proc('tslirp ctl watch', process.execPath, [DAEMON_ENTRY, 'ctl', '--api', `unix:${api}`, 'watch']);
  const attachBy = Date.now() + 60_000;
  const sessions = JSON.parse((await apiCall(api, '/v1/sessions')) ?? '[]') as { id: string }[];
  if (sessions[0] === undefined) throw new Error('no session on the API');
  while (!watch.output.includes('forward.added') && Date.now() < attachBy) {
    const added = await apiCall(api, '/v1/forwards', 'POST', JSON.stringify({ rule: `tcp:127.0.0.1:${forwardPort}-:9`, session: sessions[0].id }));
    if (added === undefined) throw new Error('POST /v1/forwards failed');
    await new Promise((r) => setTimeout(r, 500));
    await apiCall(api, `/v1/forwards/${(JSON.parse(added) as { id: string }).id}`, 'DELETE');
  }
  if (!watch.output.includes('forward.added')) throw new Error(`tslirp ctl watch did not attach within 60 s: ${watch.tail(500)}`);
  let polls = 0;
  let failed = 0;
  let running = true;
  const poller = (async () => {
    while (running) {
      const t0 = performance.now();
      if ((await apiCall(api, '/v1/flows')) !== undefined) polls++;
      else failed++;
      const wait = POLL_MS - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    async stop() {
      running = false;
      await poller;
      const watchBytes = watch.output.length;
      await watch.stop();
      return { polls, failed, watchBytes };
    },
  };
}

/**
 * Issue 12's cells for one MTU, both directions: iperf3 through tslirp with and without the
 * observers, PAIRS pairs in alternating order; the median pairwise ratio observed/unobserved.
 * Appends a row per direction; false when a cell is below OBSERVED_FLOOR.
 */
async function observedCells(a: Target & { api: string }, mtu: number, iperfPort: number, rows: string[]): Promise<boolean> {
  let ok = true;
  for (const reverse of [false, true]) {
    const dirName = reverse ? 'host→guest' : 'guest→host';
    const plain: number[] = [];
    const watched: number[] = [];
    const ratios: number[] = [];
    let polls = 0;
    let failed = 0;
    let watchBytes = 0;
    for (let i = 0; i < PAIRS; i++) {
      let x = 0;
      let y = 0;
      for (const observed of i % 2 === 0 ? [false, true] : [true, false]) {
        const o = observed ? await startObservers(a.api, await freePort()) : undefined;
        const bps = await iperfRun(a.guest, a.server, iperfPort, SECONDS, reverse, `${a.name}${observed ? ' (observed)' : ''}`);
        if (o !== undefined) {
          const r = await o.stop();
          polls += r.polls;
          failed += r.failed;
          watchBytes += r.watchBytes;
        }
        if (observed) y = bps;
        else x = bps;
      }
      plain.push(x);
      watched.push(y);
      if (x > 0) ratios.push(y / x);
    }
    const ratio = ratios.length > 0 ? median(ratios) : 0;
    if (ratio < OBSERVED_FLOOR) ok = false;
    rows.push(
      `MTU ${String(mtuOn(mtu, pathFor(mtu))).padStart(5)} (${pathFor(mtu)} path) ${dirName}: tslirp ${(median(plain) / 1e9).toFixed(2)} Gbit/s unobserved, ` +
        `${(median(watched) / 1e9).toFixed(2)} observed (/v1/flows every ${POLL_MS} ms: ${polls} polls${failed > 0 ? `, ${failed} failed` : ''}; ctl watch: ${watchBytes} bytes); ` +
        `ratio observed/unobserved ${ratio.toFixed(2)} (pairs ${ratios.map((r) => r.toFixed(2)).join(' ')})`,
    );
    console.log(rows[rows.length - 1]);
  }
  return ok;
}

/** TIME-WAIT sockets on the host (root namespace) and in the target's guest namespace. */
function timeWaits(t: Target): string {
  const count = (args: string[]): number => {
    const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.split('\n').filter((l) => l.trim() !== '').length : -1;
  };
  const ss = ['ss', '-Htan', 'state', 'time-wait'];
  const ns = t.tap?.ns;
  return `host ${count(ss)}, guest ${ns === undefined ? 'n/a' : count(['ip', 'netns', 'exec', ns, ...ss])}`;
}

/** bench/guest/client.ts in the target's guest against its server: microseconds per operation. */
const guestClient = (t: Target, mode: 'rr' | 'crr', port: number, count: number): Promise<number> => runGuestClient(t.guest, t.name, mode, t.server, port, count);

/** Waits for a tracer's exit after SIGINT, at most 10 s (then SIGKILL). */
async function stopTracer(p: Proc): Promise<void> {
  p.child.kill('SIGINT');
  if (!(await until(() => p.exit !== undefined, 10_000))) p.child.kill('SIGKILL');
}

/**
 * The JS heap bytes one rr run allocates per round trip, by allocating function (V8's sampling
 * heap profiler through the daemon's inspector, every 256 bytes, collected objects included); the
 * profile goes to `out` (open it in Chrome's DevTools).
 */
async function allocationsPerRoundTrip(t: Target, inspector: string, echoPort: number, out: string): Promise<string> {
  const { call, close } = await inspectorSession(inspector);
  try {
    await call('HeapProfiler.enable');
    await call('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    await guestClient(t, 'rr', echoPort, RR_COUNT);
    const r = await call('HeapProfiler.stopSampling');
    await call('HeapProfiler.disable');
    writeFileSync(out, JSON.stringify(r['profile']));
    interface Node { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] }
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (n: Node): void => {
      if (n.selfSize > 0) {
        const site = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/dist\//, '').replace(/^node:internal\//, '')}:${n.callFrame.lineNumber + 1}`;
        bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
        total += n.selfSize;
      }
      for (const c of n.children) walk(c);
    };
    walk((r['profile'] as { head: Node }).head);
    const top = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([site, n]) => `${site} ${(n / RR_COUNT).toFixed(0)}`);
    return `JS heap allocated per round trip (sampled) ${(total / RR_COUNT).toFixed(0)} B, by site: ${top.join(', ')}`;
  } finally {
    close();
  }
}

/** BENCH_RR_TRACE: frames, GCs, a perf profile and a syscall count of one rr run each, per round trip. */
async function traceRr(t: Target, echoPort: number): Promise<string> {
  const dir = RR_TRACE!;
  const per = (n: number): string => (n / RR_COUNT).toFixed(2);
  const parts: string[] = [];
  const tap0 = t.tap === undefined ? undefined : tapCounts(t.tap.ns, t.tap.dev);
  const d = 'daemon' in t ? (t as Target & { daemon: Daemon }).daemon : undefined;
  const gcs = (): { scavenge: number; mark: number } => {
    const lines = d?.otherOutput ?? [];
    return { scavenge: lines.filter((l) => l.includes('Scavenge')).length, mark: lines.filter((l) => l.includes('Mark-Compact')).length };
  };
  const gc0 = gcs();
  await guestClient(t, 'rr', echoPort, RR_COUNT);
  if (t.tap !== undefined && tap0 !== undefined) {
    const tap1 = tapCounts(t.tap.ns, t.tap.dev);
    // The TAP's rx is what the guest's kernel receives, its tx what the guest sends.
    parts.push(`frames to the guest ${per(tap1.rxFrames - tap0.rxFrames)}, from it ${per(tap1.txFrames - tap0.txFrames)}`);
  }
  if (d !== undefined) {
    const gc1 = gcs();
    writeFileSync(join(dir, `rr-${t.name}.gc.txt`), d.otherOutput.filter((l) => /Scavenge|Mark-Compact/.test(l)).slice(-200).join('\n') + '\n');
    parts.push(`GCs per 10,000 round trips: scavenge ${(((gc1.scavenge - gc0.scavenge) * 10_000) / RR_COUNT).toFixed(1)}, mark-compact ${(((gc1.mark - gc0.mark) * 10_000) / RR_COUNT).toFixed(1)}`);
  }
  const inspector = d?.otherOutput.map((l) => /Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1]).find((u) => u !== undefined);
  if (inspector !== undefined) parts.push(await allocationsPerRoundTrip(t, inspector, echoPort, join(dir, `rr-${t.name}.heapprofile`)));
  if (t.pid !== undefined) {
    const data = join(dir, `rr-${t.name}.perf.data`);
    const perf = new Proc('perf', 'perf', ['record', '-e', 'cpu-clock', '-F', '4999', '-g', '-p', String(t.pid), '-o', data]);
    await new Promise((r) => setTimeout(r, 500));
    const c0 = cpuTimes(t.pid);
    await guestClient(t, 'rr', echoPort, RR_COUNT);
    const c1 = cpuTimes(t.pid);
    await stopTracer(perf);
    parts.push(`perf: ${data} (CPU during it ${(((c1.user - c0.user) * 1e6) / RR_COUNT).toFixed(0)} user + ${(((c1.system - c0.system) * 1e6) / RR_COUNT).toFixed(0)} system µs per round trip)`);
    const out = join(dir, `rr-${t.name}.strace`);
    const strace = new Proc('strace', 'strace', ['-c', '-f', '-o', out, '-p', String(t.pid)]);
    await new Promise((r) => setTimeout(r, 500));
    await guestClient(t, 'rr', echoPort, RR_COUNT);
    await stopTracer(strace);
    const calls = readFileSync(out, 'utf8').split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 5 && /^\d+$/.test(f[3] ?? '') && f[f.length - 1] !== 'total')
      .map((f) => ({ name: f[f.length - 1]!, calls: Number(f[3]) }))
      .filter((x) => x.calls >= RR_COUNT / 20)
      .map((x) => `${x.name} ${per(x.calls)}`);
    parts.push(`syscalls per round trip (strace -c -f, ≥ 0.05): ${calls.join(', ')}`);
  }
  return `rr trace, ${t.name} (${RR_COUNT} round trips per run): ${parts.join('; ')}`;
}

/**
 * Latency, connection rate and idle-connection memory, tslirp (`a`) vs libslirp (`b`) and, when
 * BENCH_BASELINE is set, another tslirp build (`base`) (the cells BENCH_ONLY names). Pairs
 * rotate their order (tslirp first, then libslirp first, …). Appends the figures to `rows`; false
 * when tslirp is slower than libslirp in a latency or rate cell (issue 15's floors: round trip
 * ≤ libslirp's, connection rate ≥ 1.0×); the baseline's ratios are reported, not judged.
 */
async function extras(a: Target & { daemon: Daemon }, b: Target, base: Target | undefined, rows: string[]): Promise<boolean> {
  const web = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const port = (web.address() as net.AddressInfo).port;
  const echo = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as net.AddressInfo).port;
  let ok = true;
  const report = (row: string): void => {
    rows.push(row);
    console.log(row);
  };
  const targets = base === undefined ? [a, b] : [a, b, base];
  try {
    // Rotating pairs, as for throughput; medians of each and of the pairwise ratios.
    const rr: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
    const crr: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
    // CPU of each SLIRP process over all its runs (user, system seconds): a gain shows here even when wall time is noise on a loaded machine.
    const rrCpu: Record<string, { user: number; system: number }> = Object.fromEntries(targets.map((t) => [t.name, { user: 0, system: 0 }]));
    const crrCpu: Record<string, { user: number; system: number }> = Object.fromEntries(targets.map((t) => [t.name, { user: 0, system: 0 }]));
    const timed = async (t: Target, into: Record<string, { user: number; system: number }>, f: () => Promise<number>): Promise<number> => {
      const before = t.pid === undefined ? undefined : cpuTimes(t.pid);
      const r = await f();
      if (before !== undefined && t.pid !== undefined) {
        const after = cpuTimes(t.pid);
        into[t.name]!.user += after.user - before.user;
        into[t.name]!.system += after.system - before.system;
      }
      return r;
    };
    // One unmeasured run of each first: a daemon in service has its JIT settled (libslirp has none), and the first pairs of a fresh one measured its warm-up.
    for (const t of targets) {
      if (runs('rr')) await guestClient(t, 'rr', echoPort, RR_COUNT);
      if (runs('conn')) await guestClient(t, 'crr', port, CRR_COUNT);
    }
    for (let i = 0; i < PAIRS; i++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(i + k) % targets.length]!;
        if (runs('rr')) rr[t.name]!.push(await timed(t, rrCpu, () => guestClient(t, 'rr', echoPort, RR_COUNT)));
        if (runs('conn')) {
          const tw0 = timeWaits(t);
          const t0 = Date.now();
          const us = await timed(t, crrCpu, () => guestClient(t, 'crr', port, CRR_COUNT));
          crr[t.name]!.push(us);
          if (process.env['BENCH_TRACE'] !== undefined) console.error(`conn pair ${i} ${t.name} at ${new Date(t0).toISOString().slice(11, 23)}: ${(1e6 / us).toFixed(0)}/s; TIME-WAIT before: ${tw0}; after: ${timeWaits(t)}`);
        }
      }
    }
    if (RR_TRACE !== undefined && runs('rr')) for (const t of targets) report(await traceRr(t, echoPort));
    /** CPU per operation of each target in `unit` (1e6: µs, 1e3: ms), user+system (user, system). */
    const cpuPer = (cpu: Record<string, { user: number; system: number }>, ops: number, unit: number, digits: number): string =>
      targets.map((t) => {
        const c = cpu[t.name]!;
        const f = (x: number): string => ((x * unit) / ops).toFixed(digits);
        return `${t.name} ${f(c.user + c.system)} (user ${f(c.user)}, system ${f(c.system)})`;
      }).join(', ');
    const load = os.loadavg()[0]!.toFixed(1);
    /** Pairwise speed ratios a/t (times: t's time over a's). */
    const pairs = (m: Record<string, number[]>, t: Target): number[] => m[t.name]!.map((x, i) => x / m[a.name]![i]!);
    /** CPU per operation, a over t. */
    const cpuRatio = (cpu: Record<string, { user: number; system: number }>, t: Target): string => {
      const x = cpu[a.name]!;
      const y = cpu[t.name]!;
      return y.user + y.system > 0 ? ((x.user + x.system) / (y.user + y.system)).toFixed(2) : 'n/a';
    };
    const versusBase = (m: Record<string, number[]>, cpu: Record<string, { user: number; system: number }>): string => {
      if (base === undefined) return '';
      const r = pairs(m, base);
      return `\n    against ${base.name} (BENCH_BASELINE ${BASELINE}): speed ratio ${a.name}/${base.name} ${median(r).toFixed(2)} (pairs ${r.map((x) => x.toFixed(2)).join(' ')}), CPU per operation ${cpuRatio(cpu, base)}`;
    };
    const times = (m: Record<string, number[]>, f: (x: number) => string): string => targets.slice(1).map((t) => `${t.name} ${f(median(m[t.name]!))}`).join(', ');
    if (runs('rr')) {
      const r = pairs(rr, b);
      if (median(r) < 1) ok = false;
      report(
        `1-byte request/response on one connection: ${a.name} ${median(rr[a.name]!).toFixed(0)} µs per round trip, ${times(rr, (x) => `${x.toFixed(0)} µs`)}; ` +
          `speed ratio ${a.name}/${b.name} ${median(r).toFixed(2)} (pairs ${r.map((x) => x.toFixed(2)).join(' ')}); ` +
          `CPU µs per round trip: ${cpuPer(rrCpu, RR_COUNT * PAIRS, 1e6, 0)}; load ${load}` + versusBase(rr, rrCpu),
      );
    }
    if (runs('conn')) {
      const r = pairs(crr, b);
      if (median(r) < 1) ok = false;
      report(
        `sequential connections (connect, request, reply, close): ${a.name} ${(1e6 / median(crr[a.name]!)).toFixed(0)}/s, ${times(crr, (x) => `${(1e6 / x).toFixed(0)}/s`)}; ` +
          `speed ratio ${a.name}/${b.name} ${median(r).toFixed(2)} (pairs ${r.map((x) => x.toFixed(2)).join(' ')}); ` +
          `CPU ms per connection: ${cpuPer(crrCpu, CRR_COUNT * PAIRS, 1e3, 2)}; load ${load}` + versusBase(crr, crrCpu),
      );
    }
    if (runs('idle')) {
      // Idle connection memory: 500 idle connections through tslirp, daemon RSS growth.
      const rss0 = a.daemon.rssKiB() ?? 0;
      const idle = a.guest.spawn('idle conns', ['sh', '-c', `i=0; while [ $i -lt 500 ]; do (sleep 20 | socat -u - TCP:${a.server}:${echoPort} > /dev/null) & i=$((i+1)); done; wait`]);
      await new Promise((r) => setTimeout(r, 8000));
      const rss1 = a.daemon.rssKiB() ?? 0;
      report(`tslirp: 500 idle connections add ${rss1 - rss0} KiB of daemon RSS (${((rss1 - rss0) / 500).toFixed(1)} KiB each, sockets included)`);
      await idle.stop();
    }
  } finally {
    web.close();
    echo.close();
  }
  return ok;
}

await main();
