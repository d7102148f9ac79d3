/**
 * `npm run bench -- nic`: the cost of full emulation, on one guest. v86 (Node) boots the same
 * Debian i386 kernel and busybox /init (test/nic-e1000/v86-guest.ts) with, in turn:
 *   1. our e1000 in process (`tslirp/v86` + createNodeNetwork), interrupt moderation on
 *      (ITR/RADV/TADV as the Linux driver sets them),
 *   2. the same with moderation off (E1000Options.mitigation false),
 *   3. our e1000 with its frames through the daemon's WebSocket relay,
 *   4. v86's virtio-net and 5. v86's ne2k, both through the daemon's relay,
 * and the guest downloads 10 MB (sha256-checked) from an HTTP server on the host's loopback.
 * Reported: throughput in guest time, and for the e1000 cases register accesses (traps) and
 * interrupts per frame, from the model's counters. v86's own NICs expose no such counters, so
 * their rows have throughput only. Each boot runs in a child process (test/nic-e1000/v86-run.ts).
 *
 * Not measured yet (issue 16): the ping flood, the daemon-served e1000 (`/e1000`: no emulator
 * side exists to drive it from v86), traps of virtio-net and ne2k, the chart.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, startDaemon } from '../test/helpers/daemon.js';
import { CACHE_DIR, daemon as daemonReq, file, missingRequirements, Proc, tempDir } from '../test/helpers/guests.js';
import { downloadGuest, parseRun } from '../test/nic-e1000/v86-guest.js';

const SIZE = 10 * 1024 * 1024;
const LIMIT_S = 600;
const RUNNER = join(REPO_ROOT, 'test', 'nic-e1000', 'v86-run.ts');
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

const data = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) data[i] = (i * 13 + (i >> 12)) & 0xff;
const sha = createHash('sha256').update(data).digest('hex');
const web = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-length': String(SIZE) });
  res.end(data);
});
await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
const port = (web.address() as net.AddressInfo).port;
const work = tempDir('tslirp-bench-nic-');
const e1000Guest = downloadGuest(join(CACHE_DIR, 'e1000-v86-guest'), join(work, 'e1000'));
const v86Guest = downloadGuest(join(CACHE_DIR, 'v86-guest'), join(work, 'v86'));
const d = await startDaemon(['--ws', '127.0.0.1:0']);

interface Case { readonly name: string; readonly args: readonly string[] }
const cases: Case[] = [
  { name: 'e1000 in process, moderation on', args: ['--guest', e1000Guest] },
  { name: 'e1000 in process, moderation off', args: ['--guest', e1000Guest, '--no-mitigation'] },
  { name: 'e1000, daemon relay', args: ['--guest', e1000Guest, '--relay', d.wsUrl()] },
  { name: 'virtio-net, daemon relay', args: ['--guest', v86Guest, '--nic', 'virtio', '--relay', d.wsUrl()] },
  { name: 'ne2k, daemon relay', args: ['--guest', v86Guest, '--nic', 'ne2k', '--relay', d.wsUrl()] },
];

const rows: string[] = [];
try {
  for (const c of cases) {
    // irqpoll: v86 0.5.462 loses PCI interrupts under load (src/v86/index.ts, "Interrupts").
    const p = new Proc(c.name, process.execPath, ['--import', 'tsx', RUNNER, ...c.args, '--append', `tport=${port} irqpoll`, '--timeout', String(LIMIT_S)]);
    try {
      await p.wait((LIMIT_S + 10) * 1000);
    } finally {
      await p.stop();
    }
    const run = parseRun(p.output);
    if (run.sha !== sha || run.seconds === undefined) {
      console.log(`${c.name}: FAILED (sha ${run.sha ?? 'none'})\n${p.tail(2000)}`);
      rows.push(`| ${c.name} | failed | | | |`);
      continue;
    }
    const mbit = (SIZE * 8) / run.seconds / 1e6;
    const e = run.exits;
    const frames = e === undefined ? 0 : e.txFrames + e.rxFrames;
    const per = (n: number): string => (frames === 0 ? '–' : (n / frames).toFixed(2));
    const row = `| ${c.name} | ${run.seconds.toFixed(1)} s | ${mbit.toFixed(1)} | ${e === undefined ? '–' : per(e.mmio + e.io)} | ${e === undefined ? '–' : per(e.irqs)} |`;
    console.log(row);
    rows.push(row);
  }
} finally {
  await d.stop();
  web.close();
  rmSync(work, { recursive: true, force: true });
}
console.log('\n| NIC, path | 10 MB download (guest time) | Mbit/s | traps/frame | interrupts/frame |\n|---|---|---|---|---|');
for (const r of rows) console.log(r);
