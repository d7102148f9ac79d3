/**
 * `npm run bench -- v86-wisp`: a v86 guest's download over a WebSocket (issue 15). v86 (Node)
 * boots scripts/build-v86-guest.sh's Debian i386 kernel with v86's virtio-net and the /init of
 * bench/guest/v86-wisp-init.sh, which takes a lease, applies its MTU and downloads BENCH_SIZE_MB
 * (10) MiB from an HTTP server on 127.0.0.1 in this process, through, in turn:
 *   1. tslirp's WebSocket relay, MTU 1500 (the default network);
 *   2. tslirp's WebSocket relay on a network of MTU 65520 (`--net-option jumbo:mtu=65520`,
 *      `?network=jumbo`): the guest learns it from DHCP option 26, and v86's virtio-net is told
 *      to offer it (`net_device.mtu`: v86 puts it in the device's config space under
 *      VIRTIO_NET_F_MTU, and Linux caps the interface's MTU there; v86's default is 1500);
 *   3. the baseline: v86's own wisp adapter (`relay_url: 'wisp://…'`, a TCP/IP stack in the
 *      emulator that turns the guest's connections into wisp streams) to wisp-js's server
 *      (bench/lib/wisp-server.mjs, which maps 192.0.2.1 to 127.0.0.1 and refuses the rest).
 * Each round runs the three (one boot each), the order reversed every other round; BENCH_ROUNDS
 * rounds (2), none started after BENCH_BUDGET_S seconds (1800). Per case: Mbit/s by the wall
 * clock between the guest's marks around the download (and by the guest's clock), the MTU the
 * guest ended up with, and CPU seconds per 10 MiB of the emulator's process and of the relay's
 * (the daemon, or the wisp server), read from /proc at the marks. Ratios are per round (the
 * same round's tslirp case against its wisp case), then their median. v86 runs a guest on
 * most of a core, so each figure is one guest against one relay on a machine with another core.
 */
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startDaemon } from '../test/helpers/daemon.js';
import { CACHE_DIR, daemon as daemonReq, file, missingRequirements, Proc, tempDir } from '../test/helpers/guests.js';
import { downloadGuest } from '../test/nic-e1000/v86-guest.js';
import { cpuSeconds, median } from './lib/measure.js';
import { patternServer } from './lib/pattern-server.js';

const SIZE = Math.round(Number(process.env['BENCH_SIZE_MB'] ?? '10') * 1024 * 1024);
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? '2'));
const BUDGET_S = Number(process.env['BENCH_BUDGET_S'] ?? '1800');
/** One boot and one download: boots took 1–2 min and the slowest 10 MiB (1.19 Mbit/s) 70 s at a load average of 13–18; several times that. */
const LIMIT_S = 900;
const JUMBO = 65520;
const RUNNER = join(REPO_ROOT, 'test', 'nic-e1000', 'v86-run.ts');
const WISP_SERVER = join(REPO_ROOT, 'bench', 'lib', 'wisp-server.mjs');
/** What the wisp server connects to 127.0.0.1 (TEST-NET-1: no host here has it). */
const STAND_IN = '192.0.2.1';

const missing = missingRequirements([
  daemonReq,
  file('/usr/share/seabios/bios.bin', 'apt-get install seabios'),
  file(join(CACHE_DIR, 'v86-guest', 'bzImage'), 'scripts/build-v86-guest.sh'),
  file(join(REPO_ROOT, 'node_modules', '@mercuryworkshop', 'wisp-js', 'package.json'), 'npm ci'),
]);
if (missing.length > 0) {
  console.log(`bench v86-wisp: skipped, missing: ${missing.join('; ')}`);
  process.exit(0);
}

const web = await patternServer(SIZE);
const { port, sha } = web;
const work = tempDir('tslirp-bench-v86-wisp-');
const guest = downloadGuest(join(CACHE_DIR, 'v86-guest'), join(work, 'guest'), readFileSync(join(REPO_ROOT, 'bench', 'guest', 'v86-wisp-init.sh'), 'utf8'));
const d = await startDaemon(['--ws', '127.0.0.1:0', '--net-option', `jumbo:mtu=${JUMBO}`]);
const wispProc = new Proc('wisp-js server', process.execPath, [WISP_SERVER]);
const wispPort = Number((await wispProc.waitFor(/WISP-PORT (\d+)/, 20_000))[1]);

interface Case { readonly name: string; readonly relay: string; readonly relayPid: number; readonly url: string; readonly mtu?: number }
const cases: Case[] = [
  { name: 'tslirp ws, MTU 1500', relay: d.wsUrl(), relayPid: d.pid, url: `http://10.0.2.2:${port}/file` },
  { name: `tslirp ws, MTU ${JUMBO}`, relay: `${d.wsUrl()}?network=jumbo`, relayPid: d.pid, url: `http://10.0.2.2:${port}/file`, mtu: JUMBO },
  { name: 'wisp-js, v86 wisp adapter', relay: `wisp://127.0.0.1:${wispPort}/`, relayPid: wispProc.child.pid ?? -1, url: `http://${STAND_IN}:${port}/file` },
];

interface Result { readonly name: string; readonly round: number; readonly ok: boolean; readonly mtu?: number; readonly mbit?: number; readonly guestMbit?: number; readonly emuCpu?: number; readonly relayCpu?: number; readonly load: number }
const results: Result[] = [];
const per10 = (cpu: number): number => (cpu * 10 * 2 ** 20) / SIZE;

async function runCase(c: Case, round: number): Promise<Result> {
  const p = new Proc(c.name, process.execPath, [
    '--import', 'tsx', RUNNER, '--guest', guest, '--nic', 'virtio', '--relay', c.relay,
    ...(c.mtu !== undefined ? ['--mtu', String(c.mtu)] : []),
    '--append', `url=${c.url}`, '--timeout', String(LIMIT_S),
  ]);
  const pid = p.child.pid ?? -1;
  try {
    await p.waitFor(/TSLIRP-MARK dl-start/, LIMIT_S * 1000);
    const t0 = performance.now();
    const emu0 = cpuSeconds(pid);
    const relay0 = cpuSeconds(c.relayPid);
    await p.waitFor(/TSLIRP-MARK dl-end/, LIMIT_S * 1000);
    const seconds = (performance.now() - t0) / 1000;
    const emuCpu = cpuSeconds(pid) - emu0;
    const relayCpu = cpuSeconds(c.relayPid) - relay0;
    await p.wait(60_000);
    const dl = /TSLIRP-DL (\S+) (\S+) (\S+)/.exec(p.output);
    const mtu = Number(/TSLIRP-MTU (\d+)/.exec(p.output)?.[1] ?? 0);
    const load = loadavg()[0]!;
    if (dl?.[1] !== sha) {
      console.log(`${c.name}: download FAILED (sha ${dl?.[1] ?? 'none'})\n${p.tail(3000)}`);
      return { name: c.name, round, ok: false, load };
    }
    const guestSeconds = Number(dl[3]) - Number(dl[2]);
    return { name: c.name, round, ok: true, mtu, mbit: (SIZE * 8) / seconds / 1e6, guestMbit: (SIZE * 8) / guestSeconds / 1e6, emuCpu, relayCpu, load };
  } catch (e) {
    console.log(`${c.name}: FAILED (${String(e)})\n${p.tail(3000)}`);
    return { name: c.name, round, ok: false, load: loadavg()[0]! };
  } finally {
    await p.stop();
  }
}

const started = Date.now();
try {
  for (let round = 1; round <= ROUNDS; round++) {
    if (round > 1 && (Date.now() - started) / 1000 > BUDGET_S) {
      console.log(`bench v86-wisp: BENCH_BUDGET_S (${BUDGET_S} s) spent, no round ${round}`);
      break;
    }
    for (const c of round % 2 === 1 ? cases : [...cases].reverse()) {
      const r = await runCase(c, round);
      results.push(r);
      if (r.ok) {
        console.log(`round ${round} ${c.name}: guest MTU ${r.mtu}, ${r.mbit!.toFixed(2)} Mbit/s (guest clock ${r.guestMbit!.toFixed(2)}), CPU per 10 MiB: emulator ${per10(r.emuCpu!).toFixed(1)} s + relay ${per10(r.relayCpu!).toFixed(1)} s, load ${r.load.toFixed(1)}`);
      }
    }
  }
} finally {
  await d.stop();
  await wispProc.stop();
  web.close();
  rmSync(work, { recursive: true, force: true });
}

const base = cases[2]!.name;
const f2 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(2));
console.log(`\n${SIZE / 2 ** 20} MiB download into a v86 virtio-net guest; ${results.filter((r) => r.name === base).length} round(s); load average ${f2(Math.min(...results.map((r) => r.load)))}–${f2(Math.max(...results.map((r) => r.load)))}`);
console.log('| path | guest MTU | Mbit/s (median) | × wisp (per round) | CPU s per 10 MiB, emulator + relay (median) | × wisp (per round) |');
console.log('|---|---|---|---|---|---|');
for (const c of cases) {
  const mine = results.filter((r) => r.name === c.name && r.ok);
  const pairs = mine.map((r) => [r, results.find((w) => w.name === base && w.round === r.round && w.ok)] as const).filter(([, w]) => w !== undefined);
  const speed = pairs.map(([r, w]) => r.mbit! / w!.mbit!);
  const cpu = pairs.map(([r, w]) => (r.emuCpu! + r.relayCpu!) / (w!.emuCpu! + w!.relayCpu!));
  const tot = (r: Result): number => per10(r.emuCpu! + r.relayCpu!);
  const list = (xs: readonly number[]): string => (xs.length === 0 ? '–' : `${f2(median(xs))} (${xs.map(f2).join(' ')})`);
  console.log(`| ${c.name} | ${mine.map((r) => r.mtu).join(' ') || '–'} | ${mine.length === 0 ? 'failed' : `${f2(median(mine.map((r) => r.mbit!)))} (${mine.map((r) => f2(r.mbit)).join(' ')})`} | ${c.name === base ? '1' : list(speed)} | ${mine.length === 0 ? '–' : `${f2(median(mine.map(tot)))} (${f2(median(mine.map((r) => per10(r.emuCpu!))))} + ${f2(median(mine.map((r) => per10(r.relayCpu!))))})`} | ${c.name === base ? '1' : list(cpu)} |`);
}
process.exit(results.some((r) => !r.ok) ? 1 : 0);
