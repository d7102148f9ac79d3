/**
 * `npm run fuzz`: the coverage-guided fuzzer (engine.ts) over every target (targets.ts), each
 * for a given time, with totals and findings. Findings are written to fuzz-findings/ (the
 * input as hex and the error) and make the exit status 1.
 *
 *   npm run fuzz                          # every target, 60 s each
 *   npm run fuzz -- --seconds 600 network # one target, ten minutes
 *   npm run fuzz -- --seed 7 --seconds 5  # another seed
 *
 * `npm run fuzz:props` runs the unit suite's fast-check properties 50 times longer.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from './engine.js';
import { TARGETS } from './targets.js';

const { values, positionals } = parseArgs({ options: { seconds: { type: 'string' }, seed: { type: 'string' }, 'max-inputs': { type: 'string' } }, allowPositionals: true });
const seconds = Number(values.seconds ?? 60);
const seed = Number(values.seed ?? Date.now() % 0x7fffffff);
const maxInputs = values['max-inputs'] === undefined ? undefined : Number(values['max-inputs']);
if (!(seconds > 0) || !Number.isInteger(seed)) {
  console.error('usage: npm run fuzz -- [--seconds N] [--seed N] [--max-inputs N] [target...]');
  process.exit(2);
}
const names = positionals.length > 0 ? positionals : Object.keys(TARGETS);
const unknown = names.filter((n) => !(n in TARGETS));
if (unknown.length > 0) {
  console.error(`unknown target ${unknown.join(', ')}; targets: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
let findings = 0;
console.log(`fuzz: seed ${seed}, ${seconds} s per target`);
for (const name of names) {
  const r = fuzz(TARGETS[name]!(), { seconds, seed, ...(maxInputs !== undefined && { maxInputs }) });
  const unit = name === 'e1000' ? 'device ops' : 'frames';
  console.log(
    `${name.padEnd(8)} ${String(r.inputs).padStart(10)} inputs ${String(r.work).padStart(12)} ${unit} ` +
      `(${Math.round(r.work / r.seconds)}/s)  corpus ${r.corpus}  blocks ${r.blocks}  findings ${r.findings.length}`,
  );
  if (r.findings.length > 0) {
    const dir = 'fuzz-findings';
    mkdirSync(dir, { recursive: true });
    r.findings.forEach((f, i) => {
      const file = join(dir, `${name}-${seed}-${i}.txt`);
      writeFileSync(file, `${f.input}\n\n${f.error}\n`);
      console.log(`  finding ${i}: ${f.error.split('\n')[0] ?? ''} → ${file}`);
    });
    findings += r.findings.length;
  }
}
process.exit(findings === 0 ? 0 : 1);
