/**
 * What the hostile-world settings cost on the data path: the same namespace guest path as
 * bench/tcp.ts's tslirp cell (stream unix socket, QEMU hub bridge, MTU 1500), through a plain
 * daemon and through a hardened one — its listener public (`,public`: the public egress
 * default for its network), ten egress rules that a new flow walks before the one that lets
 * it reach the host's loopback, and every limit set (flows per guest and network, the new-flow
 * rate bucket, leases, sessions, sessions per source, the memory watermark), each above what
 * the benchmark needs so that it is checked on every flow but never reached.
 *
 * Measured: iperf3 guest→host and host→guest, and sequential short connections (connect,
 * request, reply, close: the egress check and the rate bucket run once per connection) by
 * bench/guest/client.ts. Each cell is measured as pairs, the two daemons one right after the
 * other, the order alternating (plain then hardened, then hardened then plain), so a drift of
 * the machine's load or a warm-up favours neither; the ratio of a cell is the median of its
 * pairwise ratios hardened/plain (at least 5 pairs). Floor: ≥ 0.95 in every cell.
 *
 * Beside each throughput, what the daemon's process spent on it (user + system CPU from
 * /proc, per GB moved or per connection), with its ratio plain/hardened (≥ 1: the hardened
 * daemon costs no more): on a loaded machine the throughputs swing with the scheduler, while
 * CPU per unit of work says what the hardened path itself costs.
 * WebSocket tokens are checked once per session, before the upgrade: not on this path.
 *
 * Needs root, iperf3, qemu-system-x86_64, socat and a built daemon. BENCH_PAIRS (default and
 * minimum 5), BENCH_SECONDS (default 3).
 */
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, root, tempDir } from '../test/helpers/guests.js';
import { guestClient, iperf } from './lib/iperf.js';
import { cpuSeconds, median } from './lib/measure.js';

const PAIRS = Math.max(5, Number(process.env['BENCH_PAIRS'] ?? 5) || 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const FLOOR = 0.95;

const missing = missingRequirements([root, daemonReq, command('iperf3'), command('qemu-system-x86_64')]);
if (missing.length > 0) {
  console.error(`bench/hardened.ts: cannot run, missing ${missing.join('; ')}`);
  process.exit(process.env['CI'] === 'true' ? 1 : 0);
}

/** Nine rules that do not match the benchmark's flows, then the one that lets them through. */
const EGRESS = [
  ...['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '10.20.0.0/16', '172.20.0.0/16', '100.100.0.0/16', '2001:db8::/32', 'fd12::/16'].map((c) => ['--egress-deny', c]),
  ['--egress-deny', '127.0.0.1,port=1-1023'],
  ['--egress-allow', '127.0.0.1'],
].flat();
const HARDENED = [
  '--max-tcp-flows', '512', '--max-udp-flows', '256', '--max-network-tcp-flows', '1024', '--max-network-udp-flows', '512',
  // Above the connection cell's rate (a few hundred a second here): taken from on every SYN, never empty.
  '--max-new-flows-per-second', '20000',
  '--max-session-leases', '2', '--max-sessions', '16', '--max-sessions-per-source', '4', '--max-rss', '512',
  ...EGRESS,
];

interface Target {
  readonly name: string;
  readonly guest: NetnsGuest;
  readonly daemon: Daemon;
  stop(): Promise<void>;
}

async function target(name: string, dir: string, hardened: boolean): Promise<Target> {
  const sock = join(dir, `${name}.sock`);
  const daemon = await startDaemon(['--stream', `unix:${sock}${hardened ? ',public' : ''}`, ...(hardened ? HARDENED : []), '--log-level', 'warn']);
  const guest = await NetnsGuest.create({ kind: 'stream-unix', path: sock });
  const { lease } = await guest.dhcp();
  if (lease === undefined) throw new Error(`${name}: no DHCP lease`);
  return {
    name, guest, daemon,
    async stop() {
      await guest.destroy();
      await daemon.stop();
    },
  };
}

async function main(): Promise<void> {
  const dir = tempDir('tslirp-bench-hardened-');
  const iperfServer = new Proc('iperf3 -s', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', '5211']);
  const web = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const webPort = (web.address() as net.AddressInfo).port;
  await new Promise((r) => setTimeout(r, 500));
  const plain = await target('plain', dir, false);
  const hard = await target('hardened', dir, true);
  try {
    type Cell = 'guest→host Gbit/s' | 'host→guest Gbit/s' | 'connections/s';
    const CONNECTIONS = 300;
    /** The cell's figure, and the daemon's CPU seconds per unit of work (per GB, per connection). */
    const cells: Record<Cell, (t: Target) => Promise<{ figure: number; cpu: number }>> = {
      'guest→host Gbit/s': (t) => timed(t, async () => (await iperf(t.guest, '10.0.2.2', 5211, SECONDS, false, t.name)) / 1e9, (gbps) => (gbps * SECONDS) / 8),
      'host→guest Gbit/s': (t) => timed(t, async () => (await iperf(t.guest, '10.0.2.2', 5211, SECONDS, true, t.name)) / 1e9, (gbps) => (gbps * SECONDS) / 8),
      'connections/s': (t) => timed(t, async () => 1e6 / (await guestClient(t.guest, t.name, 'crr', '10.0.2.2', webPort, CONNECTIONS)), () => CONNECTIONS),
    };
    async function timed(t: Target, run: () => Promise<number>, units: (figure: number) => number): Promise<{ figure: number; cpu: number }> {
      const before = cpuSeconds(t.daemon.pid);
      const figure = await run();
      return { figure, cpu: (cpuSeconds(t.daemon.pid) - before) / Math.max(units(figure), 1e-9) };
    }
    interface Runs { plain: number[]; hard: number[] }
    const figures = Object.fromEntries(Object.keys(cells).map((k) => [k, { plain: [], hard: [] }])) as unknown as Record<Cell, Runs>;
    const cpu = Object.fromEntries(Object.keys(cells).map((k) => [k, { plain: [], hard: [] }])) as unknown as Record<Cell, Runs>;
    for (let i = 0; i < PAIRS; i++) {
      // Alternate which daemon goes first within the pair.
      const order = i % 2 === 0 ? ([[plain, 'plain'], [hard, 'hard']] as const) : ([[hard, 'hard'], [plain, 'plain']] as const);
      for (const [cell, measure] of Object.entries(cells) as [Cell, (t: Target) => Promise<{ figure: number; cpu: number }>][]) {
        for (const [t, key] of order) {
          const m = await measure(t);
          figures[cell][key].push(m.figure);
          cpu[cell][key].push(m.cpu);
        }
      }
      console.log(`pair ${i + 1}/${PAIRS} (${i % 2 === 0 ? 'plain first' : 'hardened first'}): ${Object.entries(figures).map(([c, f]) => `${c} ${f.plain.at(-1)!.toFixed(2)} / ${f.hard.at(-1)!.toFixed(2)}`).join(', ')}`);
    }
    const unit: Record<Cell, [string, number]> = { 'guest→host Gbit/s': ['CPU ms/GB', 1e3], 'host→guest Gbit/s': ['CPU ms/GB', 1e3], 'connections/s': ['CPU µs/conn', 1e6] };
    for (const [name, c] of Object.entries(cpu) as [Cell, Runs][]) {
      const ratios = c.plain.map((p, i) => (c.hard[i]! > 0 ? p / c.hard[i]! : 0));
      const [label, scale] = unit[name];
      console.log(`${name.padEnd(18)} ${label.padEnd(11)} plain ${(median(c.plain) * scale).toFixed(0).padStart(6)}  hardened ${(median(c.hard) * scale).toFixed(0).padStart(6)}  plain/hardened ${median(ratios).toFixed(2)} (pairs ${ratios.map((x) => x.toFixed(2)).join(' ')})`);
    }
    let ok = true;
    for (const [name, f] of Object.entries(figures)) {
      const ratios = f.hard.map((h, i) => (f.plain[i]! > 0 ? h / f.plain[i]! : 0));
      const r = median(ratios);
      ok &&= r >= FLOOR;
      console.log(`${name.padEnd(18)} plain ${median(f.plain).toFixed(2).padStart(8)}  hardened ${median(f.hard).toFixed(2).padStart(8)}  ratio ${r.toFixed(2)} (pairs ${ratios.map((x) => x.toFixed(2)).join(' ')})`);
    }
    const refused = hard.daemon.logs.filter((l) => l['level'] === 50);
    if (refused.length > 0) console.log(`hardened daemon logged errors: ${JSON.stringify(refused).slice(0, 500)}`);
    console.log(ok ? `floor met: hardened ≥ ${FLOOR}× plain in every figure` : `FLOOR MISSED: hardened < ${FLOOR}× plain in some figure`);
  } finally {
    await plain.stop();
    await hard.stop();
    await iperfServer.stop();
    await new Promise((r) => web.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
