#!/usr/bin/env node
// Builds dist/ (`tsc -p tsconfig.build.json`) only when something it is built from changed
// since the last build that succeeded: `npm start` (its prestart) used to run tsc on every
// start, about 9 s even for `npm start -- --version`.
//
// Stale when dist/.build-stamp is missing, or when anything below is newer than it: a file or
// directory under src/ (a directory's mtime changes when a file in it is added, removed or
// renamed), tsconfig.json, tsconfig.build.json, package.json (its "type" decides the module
// format) or the installed TypeScript. The stamp gets the time the build *started*, so an
// edit made while tsc runs makes the next start build again. A failed build writes no stamp
// and exits with tsc's status. `--force` builds whatever the mtimes say.
/* global process, console */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = join(ROOT, 'dist', '.build-stamp');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** More entries than src/ will ever hold: the walk stops there and the build runs. */
const MAX_ENTRIES = 20_000;

/** The newest mtime (ms) among `dir` and everything below it; Infinity past MAX_ENTRIES. */
function newestUnder(dir) {
  let newest = statSync(dir).mtimeMs;
  const pending = [dir];
  for (let seen = 0; pending.length > 0; ) {
    const d = pending.pop();
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (++seen > MAX_ENTRIES) return Infinity;
      const p = join(d, e.name);
      newest = Math.max(newest, statSync(p).mtimeMs);
      if (e.isDirectory()) pending.push(p);
    }
  }
  return newest;
}

const mtimeOr0 = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

function staleReason() {
  if (!existsSync(STAMP)) return 'no build stamp';
  const built = statSync(STAMP).mtimeMs;
  if (newestUnder(join(ROOT, 'src')) > built) return 'src/ changed';
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'node_modules/typescript/package.json']) {
    if (mtimeOr0(join(ROOT, f)) > built) return `${f} changed`;
  }
  return undefined;
}

const reason = process.argv.includes('--force') ? '--force' : staleReason();
if (reason !== undefined) {
  const started = new Date();
  console.error(`build-if-stale: building dist/ (${reason})`);
  const r = spawnSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  closeSync(openSync(STAMP, 'w'));
  utimesSync(STAMP, started, started);
}
