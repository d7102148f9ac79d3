/**
 * `npm run soak`: the soak (soak.ts) for an hour by default (`-- --seconds N` for another
 * length), its samples drawn to an SVG chart (`--chart PATH`, default in the temporary
 * directory). Exit 1 when the daemon did not end where it began. Needs root, socat, busybox,
 * curl, python3 and a built daemon.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeSoak, soak, writeSoakChart } from './soak.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, chart: { type: 'string' } } });
const seconds = Number(values.seconds ?? 3600);
const chart = values.chart ?? join(tmpdir(), 'tslirp-soak.svg');
if (!(seconds >= 10)) {
  console.error('usage: npm run soak -- [--seconds N (at least 10)] [--chart PATH]');
  process.exit(2);
}
const r = await soak(seconds, (line) => console.log(line));
writeSoakChart(r, chart, `tslirp soak, ${seconds} s: RSS and open descriptors each second (${new Date().toISOString().slice(0, 10)})`);
console.log(describeSoak(r));
console.log(`chart: ${chart}`);
process.exit(r.problems.length === 0 ? 0 : 1);
