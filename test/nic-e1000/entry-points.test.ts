/**
 * `tslirp/e1000` and `tslirp/v86` run in browsers: nothing they load at run time may import a
 * Node built-in or a package. Walks the value imports (type-only imports vanish at build)
 * from each entry point through src/.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Specifiers of value imports and re-exports (not `import type` / `export type`). */
function valueImports(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+['"]([^'"]+)['"]/gms)) {
    if (m[2] !== undefined) continue;
    const names = m[3]!;
    // `import { type A, type B } from` is type-only too.
    if (/^\{[^}]*\}$/s.test(names.trim()) && names.replace(/[{}\s]/g, '').split(',').filter((n) => n !== '').every((n) => n.startsWith('type'))) continue;
    out.push(m[4]!);
  }
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  return out;
}

function closure(entry: string): { files: string[]; foreign: string[] } {
  const seen = new Set<string>();
  const foreign: string[] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of valueImports(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) {
        foreign.push(`${relative(SRC, file)} → ${spec}`);
        continue;
      }
      visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    }
  };
  visit(resolve(SRC, entry));
  return { files: [...seen].map((f) => relative(SRC, f)), foreign };
}

describe('browser-safe entry points', () => {
  it('sees value imports and skips type-only ones', () => {
    expect(valueImports("import type { A } from 'ws';\nimport { type B } from './b.js';\nimport { C, type D } from './c.js';\nexport * from './e.js';\nimport 'side';")).toEqual(['./c.js', './e.js', 'side']);
  });

  for (const entry of ['nic-e1000/model.ts', 'v86/index.ts']) {
    it(`${entry} loads no Node built-in and no package`, () => {
      const { files, foreign } = closure(entry);
      expect(files.length).toBeGreaterThan(3);
      expect(foreign).toEqual([]);
      expect(files.filter((f) => f.startsWith('daemon/') || f.startsWith('host/') || f.includes('ws-device'))).toEqual([]);
    });
  }
});
