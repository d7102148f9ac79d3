// Module resolve hook for the benchmarks (registered by bench/lib/use-dist.mjs): every module
// of src/ that a benchmark reaches is loaded from dist/ instead, tsc's output, which is what
// `npm start` and a library user run. Benchmarks are TypeScript run by tsx, and tsx compiles
// with esbuild's keepNames, which wraps every function it creates in a helper that sets the
// function's name with Object.defineProperty: a closure made per frame then costs that call
// too (the in-process e1000 loop ran at 0.68 M frames/s through tsx, 1.98 M from dist/).
// A module with no counterpart in dist/ (JSON, a file tsc does not emit) loads from src/.
/* global URL */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SRC = new URL('../../src/', import.meta.url).href;
const DIST = new URL('../../dist/', import.meta.url).href;

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (!r.url.startsWith(SRC) || !/\.[cm]?[jt]s$/.test(r.url)) return r;
  const url = DIST + r.url.slice(SRC.length).replace(/\.([cm]?)ts$/, '.$1js');
  return existsSync(fileURLToPath(url)) ? { url, format: 'module', shortCircuit: true } : r;
}
