/**
 * `npm run bench -- nic`: the cost of full emulation, on one guest. v86 (Node) boots the same
 * Debian i386 kernel and busybox /init (test/nic-e1000/v86-guest.ts) with, in turn:
 *   1. our e1000 in process (`tslirp/v86` + createNodeNetwork), interrupt moderation on
 *      (ITR/RADV/TADV as the Linux driver sets them), and 1b. the same with moderation off,
 *   2. our e1000 served by the daemon over `/e1000` (v86 in a worker blocking on register
 *      reads; the daemon's model, moderation on),
 *   3. our e1000 in process with its frames through the daemon's WebSocket relay,
 *   4. v86's virtio-net and 5. v86's ne2k, both through the daemon's relay,
 * and the guest downloads 10 MB (sha256-checked) from an HTTP server on the host's loopback,
 * then pings the gateway back to back (`ping -A`, FLOOD echoes). For each phase, between the
 * guest's TSLIRP-MARK lines: packets both ways (the guest's eth0 counters), register accesses
 * (traps: the model's MMIO + I/O counts for the e1000, calls of the NIC's port handlers for
 * v86's own), interrupts (PCI interrupt assertions, every NIC alike), and guest time per
 * packet. For the daemon-served e1000 also the round trips: register reads (the vCPU waits)
 * and DMA reads (the daemon waits). Each boot runs in a child process
 * (test/nic-e1000/v86-run.ts). Prints a markdown table and writes docs/nic-bench.svg.
 *
 * `--size MB`, `--flood N` and `--only SUBSTRING` shorten a run. `--from LOG` prints the
 * table and writes the chart from the per-case lines of an earlier run's output (give the
 * same --size and --flood), e.g. when a case did not finish.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, startDaemon } from '../test/helpers/daemon.js';
import { CACHE_DIR, daemon as daemonReq, file, missingRequirements, Proc, tempDir } from '../test/helpers/guests.js';
import { between, downloadGuest, parseMarks, parseRun } from '../test/nic-e1000/v86-guest.js';
import { patternServer } from './lib/pattern-server.js';

const { values: opts } = parseArgs({ options: { size: { type: 'string', default: '10' }, flood: { type: 'string', default: '500' }, only: { type: 'string' }, from: { type: 'string' } } });
const SIZE = Math.round(Number(opts.size) * 1024 * 1024);
const FLOOD = Number(opts.flood);
const LIMIT_S = 1500;
const RUNNER = join(REPO_ROOT, 'test', 'nic-e1000', 'v86-run.ts');
const SVG = join(REPO_ROOT, 'docs', 'nic-bench.svg');
if (opts.from !== undefined) {
  const earlier = [...readFileSync(opts.from, 'utf8').matchAll(/^[^:\n]+: (\{"name".*\})$/gm)].map((m) => JSON.parse(m[1]!) as Row);
  report(earlier);
  process.exit(0);
}
const missing = missingRequirements([
  daemonReq,
  file('/usr/share/seabios/bios.bin', 'apt-get install seabios'),
  file(join(CACHE_DIR, 'e1000-v86-guest', 'bzImage'), 'scripts/e1000-v86-guest.sh'),
  file(join(CACHE_DIR, 'v86-guest', 'bzImage'), 'scripts/build-v86-guest.sh'),
]);
if (missing.length > 0) {
  console.log(`bench nic: skipped, missing: ${missing.join('; ')}`);
  process.exit(0);
}

const web = await patternServer(SIZE);
const { port, sha } = web;
const work = tempDir('tslirp-bench-nic-');
const e1000Guest = downloadGuest(join(CACHE_DIR, 'e1000-v86-guest'), join(work, 'e1000'));
const v86Guest = downloadGuest(join(CACHE_DIR, 'v86-guest'), join(work, 'v86'));
const d = await startDaemon(['--ws', '127.0.0.1:0']);

interface Case { readonly name: string; readonly args: readonly string[] }
const cases: Case[] = [
  { name: 'e1000 in process, moderation on', args: ['--guest', e1000Guest] },
  { name: 'e1000 in process, moderation off', args: ['--guest', e1000Guest, '--no-mitigation'] },
  { name: 'e1000 served by the daemon (/e1000)', args: ['--guest', e1000Guest, '--e1000', `${d.wsUrl()}e1000`] },
  { name: 'e1000, frames through the daemon relay', args: ['--guest', e1000Guest, '--relay', d.wsUrl()] },
  { name: 'virtio-net, daemon relay', args: ['--guest', v86Guest, '--nic', 'virtio', '--relay', d.wsUrl()] },
  { name: 'ne2k, daemon relay', args: ['--guest', v86Guest, '--nic', 'ne2k', '--relay', d.wsUrl()] },
].filter((c) => opts.only === undefined || c.name.includes(opts.only));

/** One phase of one case: per-packet figures. */
interface Phase { packets: number; seconds: number; traps: number; irqs: number; reads?: number; dmaReads?: number }
interface Row { name: string; dl?: Phase & { mbit: number }; flood?: Phase | undefined }

const phase = (marks: ReturnType<typeof parseMarks>, from: string, to: string): Phase | undefined => {
  const a = marks.get(from);
  const b = marks.get(to);
  if (a === undefined || b === undefined) return undefined;
  const r = between(a, b);
  return {
    packets: r.packets, seconds: r.seconds, traps: r.per['traps'] ?? 0, irqs: r.per['irqs'] ?? 0,
    ...(r.per['reads'] !== undefined && { reads: r.per['reads'], dmaReads: r.per['dmaReads'] ?? 0 }),
  };
};

const rows: Row[] = [];
try {
  for (const c of cases) {
    // irqpoll: v86 0.5.462 loses PCI interrupts under load (src/v86/index.ts, "Interrupts").
    const p = new Proc(c.name, process.execPath, ['--import', 'tsx', RUNNER, ...c.args, '--append', `tport=${port} irqpoll flood=${FLOOD}`, '--timeout', String(LIMIT_S)]);
    try {
      await p.wait((LIMIT_S + 10) * 1000);
    } finally {
      await p.stop();
    }
    const run = parseRun(p.output);
    const marks = parseMarks(p.output);
    const row: Row = { name: c.name };
    const dl = phase(marks, 'dl-start', 'dl-end');
    if (run.sha === sha && dl !== undefined) row.dl = { ...dl, mbit: (SIZE * 8) / dl.seconds / 1e6 };
    else console.log(`${c.name}: download FAILED (sha ${run.sha ?? 'none'})\n${p.tail(2000)}`);
    row.flood = phase(marks, 'flood-start', 'flood-end');
    rows.push(row);
    console.log(`${c.name}: ${JSON.stringify(row)}`);
  }
} finally {
  await d.stop();
  web.close();
  rmSync(work, { recursive: true, force: true });
}

report(rows);

function report(rows: readonly Row[]): void {
const f2 = (n: number | undefined): string => (n === undefined ? '–' : n.toFixed(2));
const us = (p: Phase | undefined): string => (p === undefined || p.packets === 0 ? '–' : `${Math.round((p.seconds / p.packets) * 1e6)} µs`);
console.log(`\n| NIC, path | ${SIZE / 2 ** 20} MB download | Mbit/s | traps/pkt | irqs/pkt | time/pkt | ping -A: traps/pkt | irqs/pkt | time/pkt | round trips/pkt (reads + DMA), download / ping |`);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const rt = r.dl?.reads === undefined ? '–' : `${f2(r.dl.reads)} + ${f2(r.dl.dmaReads)} / ${f2(r.flood?.reads)} + ${f2(r.flood?.dmaReads)}`;
  console.log(`| ${r.name} | ${r.dl === undefined ? 'failed' : `${r.dl.seconds.toFixed(1)} s`} | ${f2(r.dl?.mbit)} | ${f2(r.dl?.traps)} | ${f2(r.dl?.irqs)} | ${us(r.dl)} | ${f2(r.flood?.traps)} | ${f2(r.flood?.irqs)} | ${us(r.flood)} | ${rt} |`);
}
writeFileSync(SVG, chart(rows));
console.log(`\nchart: ${SVG}`);
}

/**
 * Three panels of horizontal bars, one bar pair (download, ping) per case: traps per packet,
 * interrupts per packet, guest time per packet (log scale: the cases span orders of magnitude).
 */
function chart(rs: readonly Row[]): string {
  const W = 980;
  const labelW = 290;
  const panelW = (W - labelW - 40) / 3;
  const barH = 9;
  const rowH = 2 * barH + 10;
  const top = 58;
  const H = top + rs.length * rowH + 46;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const panels: { title: string; get: (p: Phase) => number; log: boolean; unit: (v: number) => string }[] = [
    { title: 'register accesses (traps) per packet', get: (p) => p.traps, log: false, unit: (v) => v.toFixed(2) },
    { title: 'interrupts per packet', get: (p) => p.irqs, log: false, unit: (v) => v.toFixed(2) },
    { title: 'guest time per packet (log)', get: (p) => p.seconds / Math.max(1, p.packets) * 1e6, log: true, unit: (v) => `${v < 1000 ? Math.round(v) : (v / 1000).toFixed(1) + 'k'} µs` },
  ];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">The cost of full emulation in v86: ${SIZE / 2 ** 20} MB download and ping -A (${FLOOD} echoes), per packet</text>`,
    `<rect x="10" y="${H - 22}" width="12" height="9" fill="#3b6fb6"/><text x="26" y="${H - 14}">download</text>`,
    `<rect x="100" y="${H - 22}" width="12" height="9" fill="#e08a2c"/><text x="116" y="${H - 14}">ping -A</text>`,
    `<text x="200" y="${H - 14}" fill="#555">generated by bench/nic.ts (npm run bench -- nic); one run on a loaded 2-core machine</text>`,
  ];
  panels.forEach((pn, i) => {
    const x0 = labelW + i * (panelW + 20);
    const vals = rs.flatMap((r) => [r.dl, r.flood]).filter((p): p is Phase => p !== undefined).map(pn.get).filter((v) => v > 0);
    const max = Math.max(1e-9, ...vals);
    const min = pn.log ? Math.min(...vals, max) / 2 : 0;
    const scale = (v: number): number => {
      if (v <= 0) return 0;
      if (!pn.log) return (v / max) * (panelW - 50);
      return (Math.log(v / min) / Math.log(max / min)) * (panelW - 50);
    };
    out.push(`<text x="${x0}" y="${top - 14}" font-weight="bold">${esc(pn.title)}</text>`);
    out.push(`<line x1="${x0}" y1="${top - 6}" x2="${x0}" y2="${top + rs.length * rowH}" stroke="#999"/>`);
    rs.forEach((r, j) => {
      const y = top + j * rowH;
      ([[r.dl, '#3b6fb6'], [r.flood, '#e08a2c']] as const).forEach(([p, color], k) => {
        if (p === undefined) return;
        const v = pn.get(p);
        const w = Math.max(1, scale(v));
        out.push(`<rect x="${x0}" y="${y + k * barH}" width="${w.toFixed(1)}" height="${barH - 1}" fill="${color}"/>`);
        out.push(`<text x="${(x0 + w + 3).toFixed(1)}" y="${y + k * barH + barH - 1}" font-size="9">${esc(pn.unit(v))}</text>`);
      });
    });
  });
  rs.forEach((r, j) => out.push(`<text x="10" y="${top + j * rowH + barH + 4}">${esc(r.name)}</text>`));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
