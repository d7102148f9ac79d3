/**
 * The WebSocket path (issue 15): what browser emulators (v86 and others) use, measured with a
 * kernel guest so that no emulator limits it. A network-namespace guest's TAP is bridged to a
 * WebSocket, one Ethernet frame per binary message, by test/helpers/ws-tap-bridge.mjs (socat
 * opens the TAP and hands frames over loopback UDP to a node process that relays them: the
 * relay client a browser emulator runs), and the guest runs iperf3 and bench/guest/client.ts
 * against servers on the host's loopback (10.0.2.2 from the guest), MTU 1500 everywhere:
 *
 * - `tslirp ws`: the bridge → tslirp's WebSocket listener (`--ws`). The figure under test.
 * - `tslirp stream`: the same daemon's stream listener (`--stream unix:`) behind QEMU's
 *   guest-less hub bridge (testing.md), the path bench/tcp.ts measures: how QEMU users reach it.
 * - `tslirp stream+shim`: the same WebSocket bridge → bench/lib/ws-stream-shim.ts (a WebSocket
 *   server that forwards each frame to a `-netdev stream` socket with the 4-byte length) → the
 *   same daemon's stream listener. Same frame bridge as `tslirp ws`, other link: the daemon's
 *   CPU per GB here against `tslirp ws` is the "is the WebSocket link as cheap per frame as the
 *   stream link" comparison (throughput is not: the shim is one more hop).
 * - `libslirp ws+shim`: the same bridge → the same shim → QEMU `-M none` with `-netdev user` and
 *   a `-netdev stream` server on one hub (bench/tcp.ts's libslirp): libslirp has no WebSocket
 *   listener, so this is how it serves a WebSocket client. It pays the shim's hop that
 *   `tslirp ws` does not; `tslirp stream+shim` against it is the same path for both.
 *
 * Cells: iperf3 guest→host and host→guest (BENCH_SECONDS each), 1-byte request/response on one
 * connection (2000 round trips) and sequential connections (300: connect, request, reply,
 * close), both from bench/guest/client.ts in the guest. Each round runs every target once, the
 * order rotating from round to round; BENCH_PAIRS rounds (default 5). Every comparison prints
 * figure, baseline and the median of the pairwise (same-round) ratios. CPU seconds per GB moved
 * (user + system from /proc) of the SLIRP process (the tslirp daemon, libslirp's QEMU), of the
 * shim, and of the guest-side frame bridge (ws-tap-bridge's node and its socat, or the QEMU hub).
 *
 * - `tslirp stream+shim tcp` (only when BENCH_TARGETS names `shim-tcp`): the same shim in front of
 *   the daemon's `--stream tcp:` listener, so that the daemon reads and writes TCP loopback as
 *   on `tslirp ws`: the two links over one transport (a unix socket costs the kernel less per
 *   read and write than TCP loopback, whose sender also runs the receiver's side of TCP).
 * - `tslirp ws+shim` (BENCH_TARGETS `ws-shim`): the same shim passing each message on to the
 *   daemon's WebSocket listener. Against `tslirp stream+shim tcp` only the link differs: same
 *   bridge, same hop, same transport. Without the hop the daemon sees its peer's frames
 *   arrive in other batches (the shim's process gathers ACKs while it is busy), so `tslirp ws`
 *   against a shimmed path compares wake-ups as much as links.
 *
 * The SLIRP's CPU per GB is also printed user and system apart, with its read and write system
 * calls and its event loop's sleeps (voluntary context switches) per MB.
 *
 * Needs root, iperf3, qemu-system-x86_64, socat and a built daemon (npm run build).
 * Environment: BENCH_PAIRS (default 5), BENCH_SECONDS (default 3), BENCH_CELLS (default
 * g2h,h2g,rr,crr: the cells to run), BENCH_TARGETS (default ws,stream,shim,libslirp; also
 * shim-tcp and ws-shim: the paths to run), BENCH_CHART (where the throughput chart is written,
 * default $TMPDIR/tslirp-bench-ws.svg).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, root, tempDir, until } from '../test/helpers/guests.js';
import { groupedBars, type BarGroup } from './lib/bars-svg.js';
import { guestClient, iperf } from './lib/iperf.js';
import { cpuTimes, median } from './lib/measure.js';

const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
/** The cells to run (default all): guest→host, host→guest, request/response, connections. */
const CELLS = new Set((process.env['BENCH_CELLS'] ?? 'g2h,h2g,rr,crr').split(','));
/** The paths to run: ws, stream, shim, shim-tcp, ws-shim, libslirp. */
const TARGETS = new Set((process.env['BENCH_TARGETS'] ?? 'ws,stream,shim,libslirp').split(','));
const RR_COUNT = 2000;
const CRR_COUNT = 300;
const SHIM = join(import.meta.dirname, 'lib', 'ws-stream-shim.ts');
/** Where the throughput chart goes (README's copy: docs/ws-bench.svg). */
const CHART = process.env['BENCH_CHART'] ?? join(os.tmpdir(), 'tslirp-bench-ws.svg');
/** Bar colours of the paths, in the order they are set up. */
const COLOURS = ['#3b6ea8', '#9bb7d9', '#6aa36f', '#d9a441', '#a05d9c', '#7f7f7f'];

const missing = missingRequirements([root, daemonReq, command('iperf3'), command('qemu-system-x86_64'), command('socat')]);
if (missing.length > 0) {
  console.error(`bench/ws.ts: cannot run, missing ${missing.join('; ')}`);
  process.exit(process.env['CI'] === 'true' ? 1 : 0);
}

/** Whose CPU a figure counts. */
type Role = 'slirp' | 'shim' | 'bridge';

interface Target {
  readonly name: string;
  readonly guest: NetnsGuest;
  /** Processes whose CPU time is charged to this target, by role. */
  readonly pids: readonly { readonly role: Role; readonly pid: number }[];
  stop(): Promise<void>;
}

/** Every descendant of `pid` (from /proc/PID/stat's ppid field; the kernel here has no /proc/PID/task/TID/children). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [c, pp] of parent) {
      if (pp === p) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

/** CPU seconds of a process, user and system, 0 once it is gone (a target stopped early is reported, not fatal). */
function cpuOf(pid: number): { user: number; system: number } {
  try {
    return cpuTimes(pid);
  } catch {
    return { user: 0, system: 0 };
  }
}

/**
 * Read and write system calls of a process so far (/proc/PID/io: read, readv, write, writev;
 * Node's sockets use those), and the voluntary context switches of its main thread (the event
 * loop going to sleep: about one per wake-up); zeros once it is gone.
 */
function syscallsOf(pid: number): { reads: number; writes: number; sleeps: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const num = (text: string, key: string): number => Number(new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { reads: num(io, 'syscr'), writes: num(io, 'syscw'), sleeps: num(st, 'voluntary_ctxt_switches') };
  } catch {
    return { reads: 0, writes: 0, sleeps: 0 };
  }
}

/** The guest-side bridge's processes: the bridge itself and what it started (socat). */
const bridgePids = (g: NetnsGuest): { role: Role; pid: number }[] => {
  const pid = g.bridge.child.pid;
  return pid === undefined ? [] : [pid, ...descendants(pid)].map((p) => ({ role: 'bridge' as const, pid: p }));
};

async function leased(g: NetnsGuest, what: string): Promise<NetnsGuest> {
  const { lease } = await g.dhcp();
  if (lease === undefined) {
    await g.destroy();
    throw new Error(`${what}: no DHCP lease`);
  }
  return g;
}

/** Starts the WebSocket-to-stream shim in front of unix socket `path`; its URL and process. */
async function startShim(path: string): Promise<{ url: string; proc: Proc }> {
  const proc = new Proc('ws-shim', process.execPath, ['--import', 'tsx', SHIM, path]);
  const m = await proc.waitFor(/ws-shim: listening (\d+)/, 30_000);
  return { url: `ws://127.0.0.1:${m[1]}/`, proc };
}

async function wsGuest(url: string, what: string): Promise<NetnsGuest> {
  return leased(await NetnsGuest.create({ kind: 'ws', url }), what);
}

async function tslirpWs(d: Daemon): Promise<Target> {
  const guest = await wsGuest(d.wsUrl(), 'tslirp ws');
  return { name: 'tslirp ws', guest, pids: [{ role: 'slirp', pid: d.pid }, ...bridgePids(guest)], stop: () => guest.destroy() };
}

async function tslirpStream(d: Daemon): Promise<Target> {
  const guest = await leased(await NetnsGuest.create({ kind: 'stream-unix', path: d.streamPath() }), 'tslirp stream');
  return { name: 'tslirp stream', guest, pids: [{ role: 'slirp', pid: d.pid }, ...bridgePids(guest)], stop: () => guest.destroy() };
}

async function tslirpShim(d: Daemon, via: 'unix' | 'tcp' | 'ws' = 'unix'): Promise<Target> {
  const name = via === 'unix' ? 'tslirp stream+shim' : via === 'tcp' ? 'tslirp stream+shim tcp' : 'tslirp ws+shim';
  const shim = await startShim(via === 'unix' ? d.streamPath() : via === 'tcp' ? `tcp:${d.streamTcp().host}:${d.streamTcp().port}` : d.wsUrl());
  const guest = await wsGuest(shim.url, name);
  return {
    name, guest,
    pids: [{ role: 'slirp', pid: d.pid }, { role: 'shim', pid: shim.proc.child.pid! }, ...bridgePids(guest)],
    async stop() {
      await guest.destroy();
      await shim.proc.stop();
    },
  };
}

async function libslirpShim(dir: string): Promise<Target> {
  const sock = join(dir, 'libslirp.sock');
  const q = new Proc('libslirp-qemu', 'qemu-system-x86_64', [
    '-M', 'none', '-nodefaults', '-display', 'none',
    '-netdev', 'user,id=u0',
    '-netdev', `stream,id=s0,server=on,addr.type=unix,addr.path=${sock}`,
    '-netdev', 'hubport,id=h0,hubid=0,netdev=u0',
    '-netdev', 'hubport,id=h1,hubid=0,netdev=s0',
  ]);
  await until(() => q.exit !== undefined || spawnSync('test', ['-S', sock]).status === 0, 10_000);
  if (q.exit !== undefined) throw new Error(`libslirp QEMU exited: ${q.tail()}`);
  const shim = await startShim(sock);
  const guest = await wsGuest(shim.url, 'libslirp ws+shim');
  return {
    name: 'libslirp ws+shim', guest,
    pids: [{ role: 'slirp', pid: q.child.pid! }, { role: 'shim', pid: shim.proc.child.pid! }, ...bridgePids(guest)],
    async stop() {
      await guest.destroy();
      await shim.proc.stop();
      await q.stop();
    },
  };
}

/** One target's measurements in one cell: a value per round and, for bulk cells, CPU per GB by role per round. */
interface Series {
  readonly values: number[];
  readonly cpuPerGb: Record<Role, number[]>;
  /** The SLIRP's CPU per GB, user and system apart. */
  readonly slirpUser: number[];
  readonly slirpSystem: number[];
  /** The SLIRP's read and write system calls and event-loop sleeps per MB. */
  readonly slirpReads: number[];
  readonly slirpWrites: number[];
  readonly slirpSleeps: number[];
}
const newSeries = (): Series => ({ values: [], cpuPerGb: { slirp: [], shim: [], bridge: [] }, slirpUser: [], slirpSystem: [], slirpReads: [], slirpWrites: [], slirpSleeps: [] });

/** The comparisons printed for every cell: [figure, baseline]. */
const COMPARISONS: readonly (readonly [string, string])[] = [
  ['tslirp ws', 'tslirp stream'],
  ['tslirp ws', 'tslirp stream+shim'],
  ['tslirp ws', 'libslirp ws+shim'],
  ['tslirp stream+shim', 'libslirp ws+shim'],
  ['tslirp ws', 'tslirp stream+shim tcp'],
  ['tslirp ws+shim', 'tslirp stream+shim tcp'],
];

/** Rounds of one cell: every target once per round, the order rotating. */
async function rounds(targets: readonly Target[], one: (t: Target) => Promise<{ value: number; bytes?: number }>): Promise<Map<string, Series>> {
  const out = new Map(targets.map((t) => [t.name, newSeries()]));
  for (let i = 0; i < PAIRS; i++) {
    const order = targets.map((_, k) => targets[(k + i) % targets.length]!);
    for (const t of order) {
      const slirpPid = t.pids.find((p) => p.role === 'slirp')?.pid ?? 0;
      const sys0 = syscallsOf(slirpPid);
      const before = t.pids.map((p) => cpuOf(p.pid));
      const r = await one(t);
      const s = out.get(t.name)!;
      s.values.push(r.value);
      if (r.bytes !== undefined) {
        const gb = r.bytes / 1e9;
        const sys1 = syscallsOf(slirpPid);
        s.slirpReads.push((sys1.reads - sys0.reads) / (gb * 1000));
        s.slirpWrites.push((sys1.writes - sys0.writes) / (gb * 1000));
        s.slirpSleeps.push((sys1.sleeps - sys0.sleeps) / (gb * 1000));
        for (const role of ['slirp', 'shim', 'bridge'] as const) {
          let user = 0;
          let system = 0;
          t.pids.forEach((p, k) => {
            if (p.role !== role) return;
            const c = cpuOf(p.pid);
            user += c.user - before[k]!.user;
            system += c.system - before[k]!.system;
          });
          if (t.pids.some((p) => p.role === role)) s.cpuPerGb[role].push(gb > 0 ? (user + system) / gb : NaN);
          if (role === 'slirp') {
            s.slirpUser.push(gb > 0 ? user / gb : NaN);
            s.slirpSystem.push(gb > 0 ? system / gb : NaN);
          }
        }
      }
    }
  }
  return out;
}

const pairRatios = (a: readonly number[], b: readonly number[], f: (x: number, y: number) => number): number[] =>
  a.map((x, i) => f(x, b[i]!)).filter((r) => Number.isFinite(r) && r > 0);
const fmtPairs = (rs: readonly number[]): string => rs.map((r) => r.toFixed(2)).join(' ');

/** Summary rows for the README: cell, target, figure, daemon CPU per GB. */
const summary: string[] = [];
/**
 * Issue 15's questions, answered per cell: is tslirp's relay at least as fast as libslirp
 * behind the shim (and no dearer per GB), and is the WebSocket link as cheap per GB as the
 * stream link behind the same frame bridge (`tslirp ws` against `tslirp stream+shim`).
 */
const verdicts: string[] = [];
const verdict = (ok: boolean, what: string): void => {
  verdicts.push(`${ok ? 'met   ' : 'MISSED'} ${what}`);
};

/** The throughput chart's groups, one per direction. */
const chart: BarGroup[] = [];

function reportBulk(cell: string, s: Map<string, Series>): void {
  chart.push({
    label: cell,
    bars: [...s.values()].map((x) => ({ value: median(x.values), label: (median(x.values) / 1e9).toFixed(2), note: `${median(x.cpuPerGb.slirp).toFixed(1)} s/GB` })),
  });
  console.log(`\n${cell} (iperf3, ${SECONDS} s, MTU 1500; medians of ${PAIRS} rounds)`);
  for (const [name, x] of s) {
    const cpu = (['slirp', 'shim', 'bridge'] as const)
      .filter((r) => x.cpuPerGb[r].length > 0)
      .map((r) => `${r === 'slirp' ? (name.startsWith('libslirp') ? 'libslirp' : 'daemon') : r} ${median(x.cpuPerGb[r]).toFixed(2)}`)
      .join(', ');
    console.log(`  ${name.padEnd(22)} ${(median(x.values) / 1e9).toFixed(2)} Gbit/s   CPU s/GB: ${cpu} (SLIRP user ${median(x.slirpUser).toFixed(2)}, system ${median(x.slirpSystem).toFixed(2)}; per MB ${median(x.slirpReads).toFixed(0)} reads, ${median(x.slirpWrites).toFixed(0)} writes, ${median(x.slirpSleeps).toFixed(0)} sleeps)`);
    summary.push(`| ${cell} | ${name} | ${(median(x.values) / 1e9).toFixed(2)} Gbit/s | ${median(x.cpuPerGb.slirp).toFixed(2)} s/GB${x.cpuPerGb.shim.length > 0 ? ` (+ shim ${median(x.cpuPerGb.shim).toFixed(2)})` : ''} | ${median(x.cpuPerGb.bridge).toFixed(2)} s/GB |`);
  }
  for (const [a, b] of COMPARISONS) {
    const xa = s.get(a);
    const xb = s.get(b);
    if (xa === undefined || xb === undefined) continue;
    const ratioOf = (rs: readonly number[]): number => (rs.length > 0 ? median(rs) : NaN);
    const tput = pairRatios(xa.values, xb.values, (x, y) => x / y);
    const cpu = pairRatios(xa.cpuPerGb.slirp, xb.cpuPerGb.slirp, (x, y) => x / y);
    console.log(
      `  ${a} ${(median(xa.values) / 1e9).toFixed(2)} Gbit/s vs ${b} ${(median(xb.values) / 1e9).toFixed(2)}: ratio ${tput.length > 0 ? median(tput).toFixed(2) : 'n/a'} (pairs ${fmtPairs(tput)}); ` +
        `SLIRP CPU ${median(xa.cpuPerGb.slirp).toFixed(2)} vs ${median(xb.cpuPerGb.slirp).toFixed(2)} s/GB: ratio ${cpu.length > 0 ? median(cpu).toFixed(2) : 'n/a'} (lower is cheaper; pairs ${fmtPairs(cpu)})`,
    );
    if (a === 'tslirp ws' && b === 'libslirp ws+shim') {
      verdict(ratioOf(tput) >= 1, `${cell}: tslirp ws ≥ 1.0× libslirp ws+shim (${ratioOf(tput).toFixed(2)}×)`);
      verdict(ratioOf(cpu) <= 1, `${cell}: tslirp ws CPU per GB ≤ libslirp's (${ratioOf(cpu).toFixed(2)}×)`);
    }
    if (a.startsWith('tslirp ws') && b.startsWith('tslirp stream+shim')) verdict(ratioOf(cpu) <= 1, `${cell}: WebSocket link as cheap per GB as the stream link, same bridge (${ratioOf(cpu).toFixed(2)}×)`);
  }
}

function reportOps(cell: string, unit: 'µs' | '/s', s: Map<string, Series>): void {
  console.log(`\n${cell} (bench/guest/client.ts in the guest; medians of ${PAIRS} rounds)`);
  const show = (us: number): string => (unit === 'µs' ? `${us.toFixed(0)} µs` : `${(1e6 / us).toFixed(0)}/s`);
  for (const [name, x] of s) {
    console.log(`  ${name.padEnd(19)} ${show(median(x.values))}`);
    summary.push(`| ${cell} | ${name} | ${show(median(x.values))} | | |`);
  }
  for (const [a, b] of COMPARISONS) {
    const xa = s.get(a);
    const xb = s.get(b);
    if (xa === undefined || xb === undefined) continue;
    // Speed ratio: the baseline's time per operation over the figure's (> 1: faster).
    const r = pairRatios(xa.values, xb.values, (x, y) => y / x);
    if (a === 'tslirp ws' && b === 'libslirp ws+shim') verdict(r.length > 0 && median(r) >= 1, `${cell}: tslirp ws ≥ 1.0× libslirp ws+shim (${r.length > 0 ? median(r).toFixed(2) : 'n/a'}×)`);
    console.log(`  ${a} ${show(median(xa.values))} vs ${b} ${show(median(xb.values))}: speed ratio ${r.length > 0 ? median(r).toFixed(2) : 'n/a'} (pairs ${fmtPairs(r)})`);
  }
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function main(): Promise<void> {
  const started = new Date();
  const dir = tempDir('tslirp-bench-ws-');
  const probe = net.createServer();
  const iperfPort = await listen(probe); // a port that was free a moment ago
  await new Promise((r) => probe.close(r));
  const iperfServer = new Proc('iperf3 -s', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', String(iperfPort)]);
  const web = http.createServer((_req, res) => res.end('ok'));
  const webPort = await listen(web);
  const echo = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const echoPort = await listen(echo);
  const targets: Target[] = [];
  let d: Daemon | undefined;
  try {
    d = await startDaemon(['--ws', '127.0.0.1:0', '--stream', `unix:${join(dir, 'tslirp.sock')}`, '--stream', 'tcp:127.0.0.1:0', '--mtu', '1500', '--log-level', 'info'], { startTimeoutMs: 60_000 });
    if (TARGETS.has('ws')) targets.push(await tslirpWs(d));
    if (TARGETS.has('stream')) targets.push(await tslirpStream(d));
    if (TARGETS.has('shim')) targets.push(await tslirpShim(d));
    if (TARGETS.has('shim-tcp')) targets.push(await tslirpShim(d, 'tcp'));
    if (TARGETS.has('ws-shim')) targets.push(await tslirpShim(d, 'ws'));
    if (TARGETS.has('libslirp')) targets.push(await libslirpShim(dir));
    const load0 = os.loadavg();
    // One short warm-up transfer each way per target, unmeasured: the daemon's JIT and the
    // bridges' buffers settle before the first round.
    for (const t of targets) for (const reverse of [false, true]) await iperf(t.guest, '10.0.2.2', iperfPort, 1, reverse, `${t.name} (warm-up)`);
    for (const reverse of [false, true]) {
      if (!CELLS.has(reverse ? 'h2g' : 'g2h')) continue;
      const s = await rounds(targets, async (t) => {
        const bps = await iperf(t.guest, '10.0.2.2', iperfPort, SECONDS, reverse, t.name);
        return { value: bps, bytes: (bps * SECONDS) / 8 };
      });
      reportBulk(reverse ? 'host→guest' : 'guest→host', s);
    }
    if (CELLS.has('rr')) reportOps('1-byte request/response', 'µs', await rounds(targets, async (t) => ({ value: await guestClient(t.guest, t.name, 'rr', '10.0.2.2', echoPort, RR_COUNT) })));
    if (CELLS.has('crr')) reportOps('sequential connections', '/s', await rounds(targets, async (t) => ({ value: await guestClient(t.guest, t.name, 'crr', '10.0.2.2', webPort, CRR_COUNT) })));
    const load1 = os.loadavg();
    console.log(`\n${started.toISOString().slice(0, 16)}Z, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${load1.map((l) => l.toFixed(2)).join(' ')} at the end; ${PAIRS} rounds, ${SECONDS} s per iperf3 run`);
    console.log(verdicts.join('\n'));
    if (chart.length > 0) {
      writeFileSync(CHART, groupedBars(`The WebSocket path, kernel guest, MTU 1500: iperf3 Gbit/s (median of ${PAIRS}); under each bar the SLIRP's CPU per GB`, targets.map((t, i) => ({ name: t.name, colour: COLOURS[i]! })), chart));
      console.log(`chart: ${CHART}`);
    }
    console.log('| cell | path | figure | SLIRP CPU | bridge CPU |\n| --- | --- | --- | --- | --- |\n' + summary.join('\n'));
  } finally {
    for (const t of targets) await t.stop();
    await d?.stop();
    await iperfServer.stop();
    web.close();
    echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
