/**
 * `npm run bench -- replay`: frames per second replaying the bulk TCP capture of the corpus
 * (pcaps/tcp-download.pcapng: 1 MB through the NAT, ~1500-byte frames) in process, against
 * merely parsing the same file (readCapture with records) in the same run. Frames counted are
 * the guest frames fed and compared; the file also carries the entries and the host side.
 * Median of 30 runs after 100 warm-ups: the JIT needs them (on this machine the first replay
 * takes ~17 ms, the 20th ~8, and the time settles near the 60th at ~3 ms), so the figure is
 * the steady state of a test suite or a fuzzer replaying many captures in one process; the
 * first replay of a fresh process (what one `tslirp replay FILE` pays) is printed beside it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readCapture } from '../src/pcap/reader.js';
import { replayRecording } from '../src/replay/index.js';
import { median } from './lib/measure.js';

const FILE = resolve(import.meta.dirname, '..', 'pcaps', 'tcp-download.pcapng');
const bytes = new Uint8Array(readFileSync(FILE));

const time = (f: () => void): number => {
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
};

const WARMUPS = 100;
const RUNS = 30;
let frames = 0;
let firstS = 0;
const replayS: number[] = [];
const parseS: number[] = [];
for (let i = 0; i < WARMUPS + RUNS; i++) {
  const p = time(() => {
    const c = readCapture(bytes, { records: true });
    if (typeof c === 'string') throw new Error(c);
  });
  const r = time(() => {
    const report = replayRecording(bytes);
    if (report.exitCode !== 0) throw new Error(`the bulk capture does not replay: ${report.error ?? JSON.stringify(report.divergence)}`);
    frames = report.frames;
  });
  if (i === 0) firstS = r;
  if (i >= WARMUPS) {
    parseS.push(p);
    replayS.push(r);
  }
}
const rs = median(replayS);
const ps = median(parseS);
console.log(`file: ${FILE} (${(bytes.length / 1e6).toFixed(1)} MB, ${frames} guest frames)`);
console.log(`parse only: ${(frames / ps / 1e3).toFixed(0)} k frames/s (${(ps * 1e3).toFixed(1)} ms)`);
console.log(`replay:     ${(frames / rs / 1e3).toFixed(0)} k frames/s (${(rs * 1e3).toFixed(1)} ms)`);
console.log(`replay / parse-only time: ${(rs / ps).toFixed(1)}x`);
console.log(`first replay of the process (cold JIT): ${(frames / firstS / 1e3).toFixed(0)} k frames/s (${(firstS * 1e3).toFixed(1)} ms)`);
