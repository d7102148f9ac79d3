// Builds the browser bundle of the v86 add-on: dist/browser/tslirp-v86.js, one ES module
// with `attachE1000`, `openE1000Bridge` and the e1000 model (`E1000`), nothing of Node in it.
// A page imports it as is (`<script type="module">`), no build step on the user's side.
// Uses esbuild (installed with the dev tools: tsx and vitest depend on it).
/* global process */
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist', 'browser'), { recursive: true });
await build({
  entryPoints: [join(root, 'src', 'v86', 'browser.ts')],
  outfile: join(root, 'dist', 'browser', 'tslirp-v86.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
process.stdout.write('dist/browser/tslirp-v86.js\n');
