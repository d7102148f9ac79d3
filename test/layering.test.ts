import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The layer order of README "How it is built": a file may import its own folder and any
 * folder of a lower layer, never one of its own layer or above. Folders on one line share a
 * layer and do not import each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['util'],
  ['net'],
  ['ethernet', 'arp', 'ipv4', 'ipv6'],
  ['udp', 'tcp', 'switch', 'impair'],
  ['dhcp', 'dns', 'tftp'],
  ['nat'],
  ['portmap'],
  ['stack'],
  ['network'],
  ['host'],
  ['nic-e1000'],
  ['link', 'v86'],
  ['pcap'],
  ['replay'],
  ['daemon'],
  ['api'],
  ['cli'],
  ['index.ts'],
];

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../src');
const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function* tsFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

/** The layer a path under src/ belongs to: its first folder, or the file's name at the top. */
const layerOf = (path: string): string => relative(src, path).split(/[\\/]/)[0]!;

/** Relative specifiers of every static import, re-export and dynamic import. */
const importsOf = (text: string): string[] => [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.[^'"]+)['"]/g)].map((m) => m[1]!);

describe('layering: imports go down only', () => {
  const files = [...tsFiles(src)];

  it('every folder of src/ has a layer', () => {
    expect([...new Set(files.map(layerOf))].filter((l) => !rank.has(l))).toEqual([]);
  });

  it('no file imports its own layer (other folder) or a layer above', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        const to = layerOf(resolve(dirname(file), spec));
        if (to !== from && rank.get(to)! >= rank.get(from)!) wrong.push(`${relative(src, file)} → ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('sees imports in every form it checks', () => {
    expect(importsOf("import type { A } from '../net/addr.js';\nexport { b } from './b.js';\nconst c = await import('../x/c.js');\nimport {\n  d,\n} from '../y/d.js';")).toEqual([
      '../net/addr.js', './b.js', '../x/c.js', '../y/d.js',
    ]);
  });
});
