/**
 * scripts/build-if-stale.mjs (npm start's prestart) in a scratch tree whose "tsc" is a stand-in
 * that logs each run: it builds when there is no stamp, when a source file or tsconfig is
 * newer than the stamp, when a file is removed from src/, and after a failed build; otherwise
 * it does not run tsc at all.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/guests.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const tree = tempDir('tslirp-build-if-stale-');
const LOG = join(tree, 'tsc.log');

afterAll(() => {
  rmSync(tree, { recursive: true, force: true });
});

/** A stand-in for node_modules/typescript/bin/tsc: logs its arguments, writes dist/, fails when FAIL exists. */
const FAKE_TSC = `
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..', '..', '..');
fs.appendFileSync(path.join(root, 'tsc.log'), process.argv.slice(2).join(' ') + '\\n');
if (fs.existsSync(path.join(root, 'FAIL'))) process.exit(3);
fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
fs.writeFileSync(path.join(root, 'dist', 'index.js'), '');
`;

function setUp(): void {
  for (const d of ['scripts', 'src/sub', 'node_modules/typescript/bin']) mkdirSync(join(tree, d), { recursive: true });
  copyFileSync(join(ROOT, 'scripts', 'build-if-stale.mjs'), join(tree, 'scripts', 'build-if-stale.mjs'));
  writeFileSync(join(tree, 'node_modules', 'typescript', 'bin', 'tsc'), FAKE_TSC);
  writeFileSync(join(tree, 'node_modules', 'typescript', 'package.json'), '{"type":"commonjs"}');
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'src/index.ts', 'src/sub/a.ts', 'src/sub/b.ts']) writeFileSync(join(tree, f), '{}');
  // Every input two hours old: only what a step touches is newer than a build made now.
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'node_modules/typescript/package.json', 'src/index.ts', 'src/sub/a.ts', 'src/sub/b.ts', 'src/sub', 'src'])
    utimesSync(join(tree, f), old, old);
}

/** Runs the script; returns its status and how many times tsc ran so far. */
function run(...args: string[]): { status: number | null; tscRuns: number; stderr: string } {
  const r = spawnSync(process.execPath, [join(tree, 'scripts', 'build-if-stale.mjs'), ...args], { cwd: tree, encoding: 'utf8', timeout: 30_000 });
  const tscRuns = existsSync(LOG) ? readFileSync(LOG, 'utf8').split('\n').filter(Boolean).length : 0;
  return { status: r.status, tscRuns, stderr: r.stderr };
}

/** Now: later than the stamp of any earlier run (the stamp holds when that build started). */
const now = (): Date => new Date();

describe('build-if-stale', { timeout: 60_000 }, () => { // runs node and a fake tsc several times
  it('runs tsc only when an input changed since the last good build', () => {
    setUp();
    expect(run()).toMatchObject({ status: 0, tscRuns: 1 }); // no stamp yet
    expect(readFileSync(LOG, 'utf8')).toBe(`-p ${join(tree, 'tsconfig.build.json')}\n`);
    expect(run()).toMatchObject({ status: 0, tscRuns: 1 }); // nothing changed
    expect(run()).toMatchObject({ status: 0, tscRuns: 1 });

    utimesSync(join(tree, 'src', 'sub', 'a.ts'), now(), now()); // an edit deep in src/
    expect(run()).toMatchObject({ status: 0, tscRuns: 2 });
    expect(run()).toMatchObject({ status: 0, tscRuns: 2 });

    utimesSync(join(tree, 'tsconfig.json'), now(), now());
    expect(run()).toMatchObject({ status: 0, tscRuns: 3 });

    rmSync(join(tree, 'src', 'sub', 'b.ts')); // a removed file: only its directory's mtime tells
    utimesSync(join(tree, 'src', 'sub'), now(), now());
    expect(run()).toMatchObject({ status: 0, tscRuns: 4 });
    expect(run()).toMatchObject({ status: 0, tscRuns: 4 });

    expect(run('--force')).toMatchObject({ status: 0, tscRuns: 5 });
  });

  it('passes a failed build on and keeps no stamp: the next start builds again', () => {
    setUp();
    rmSync(join(tree, 'dist'), { recursive: true, force: true });
    rmSync(LOG, { force: true });
    writeFileSync(join(tree, 'FAIL'), '');
    expect(run()).toMatchObject({ status: 3, tscRuns: 1 });
    expect(run()).toMatchObject({ status: 3, tscRuns: 2 });
    rmSync(join(tree, 'FAIL'));
    expect(run()).toMatchObject({ status: 0, tscRuns: 3 });
    expect(run()).toMatchObject({ status: 0, tscRuns: 3 });
  });
});
