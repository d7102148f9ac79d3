/**
 * `npm run bench`: runs every benchmark in bench/ (each file but this one), one after the
 * other in its own process, or only those named on the command line (`npm run bench -- tcp`).
 * Each benchmark prints its own figures and its ratios against a baseline measured in the
 * same run. Files are found, not listed: a new bench/NAME.ts (networks.ts, guest to guest on
 * one tslirp network against the bridge alone) runs with the others and alone with
 * `npm run bench -- NAME`. The long ones listed in ONLY_WHEN_NAMED run only when named
 * (`npm run bench -- scale`: minutes of setting up tens of thousands of flows).
 *
 * What is measured is tsc's output: dist/ is built first when stale, and each benchmark runs
 * with bench/lib/use-dist.mjs, so its `../src/…` imports load from dist/ (tsx's own transform
 * is slower on closures; see bench/lib/dist-hooks.mjs). Daemons were always started from dist/.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
/** Benchmarks left out of the default set. */
const ONLY_WHEN_NAMED = ['scale.ts'];
const files = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => (wanted.length === 0 ? !ONLY_WHEN_NAMED.includes(f) : wanted.some((w) => f.includes(w))))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(' ')}`);
  process.exit(2);
}
const build = spawnSync(process.execPath, [join(here, '..', 'scripts', 'build-if-stale.mjs')], { stdio: 'inherit' });
if (build.status !== 0) {
  console.error('the build failed: nothing to measure');
  process.exit(1);
}
let failed = 0;
for (const f of files) {
  console.log(`\n=== bench/${f}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', join(here, 'lib', 'use-dist.mjs'), join(here, f)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
