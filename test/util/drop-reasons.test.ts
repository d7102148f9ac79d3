import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import openapi from '../../src/api/openapi.json' with { type: 'json' };
import { COUNTED_EVENTS, DROP_REASON_GROUPS, DROP_REASONS, HOST_ERRNOS, dropReasonsMarkdown, hostErrno, isDropReason } from '../../src/util/drop-reasons.js';
import { Counters } from '../../src/util/drops.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function* tsFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

/** Every source file but the list itself, by path relative to the repo. */
const sources = new Map([...tsFiles(join(root, 'src'))].filter((p) => !p.endsWith('drop-reasons.ts')).map((p) => [relative(root, p), readFileSync(p, 'utf8')]));
const allSource = [...sources.values()].join('\n');
const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*\.[a-z0-9]+(-[a-z0-9]+)*$/;

describe('the drop-reason list', () => {
  it('holds well-formed, unique names, disjoint from the counted events', () => {
    expect(DROP_REASONS.filter((r) => !NAME.test(r))).toEqual([]);
    expect(new Set(DROP_REASONS).size).toBe(DROP_REASONS.length);
    expect(new Set(COUNTED_EVENTS).size).toBe(COUNTED_EVENTS.length);
    expect(COUNTED_EVENTS.filter((e) => isDropReason(e))).toEqual([]);
    // Each group holds its own layer's names (a prefix of the name), so README's grouping is honest.
    for (const g of DROP_REASON_GROUPS) {
      const base = (name: string): string => name.replace(/-ws$/, '').replace(/\d+$/, '');
      const prefixes = new Set(g.reasons.map((r) => base(r.split('.')[0]!)));
      expect({ layer: g.layer, stray: [...prefixes].filter((p) => ![base(g.layer), 'natpmp', 'capture', 'events'].includes(p)) }).toEqual({ layer: g.layer, stray: [] });
    }
  });

  it('names only what the code counts: every reason and event appears in src as a literal (errno families as their template)', () => {
    const unused = [...DROP_REASONS, ...COUNTED_EVENTS].filter((r) => {
      const family = HOST_ERRNOS.find((e) => r.endsWith(`-${e}`) && /^(udp\.host|dns\.upstream)-/.test(r));
      if (family !== undefined) return !allSource.includes(`\`${r.slice(0, r.length - family.length)}\${hostErrno(`);
      // The API counts its refusals as `api.${code}`, code one of its error codes (ApiErrorCode).
      if (r.startsWith('api.') && allSource.includes('count(`api.${e.code}`)') && sources.get('src/api/server.ts')!.includes(`'${r.slice(4)}'`)) return false;
      return !allSource.includes(`'${r}'`);
    });
    expect(unused).toEqual([]);
  });

  it('covers every name the code counts: each literal given to count() is on the list', () => {
    // tsc already refuses a name off the list (Counters.count takes Drop | CountedEvent); this
    // catches one slipped past the types (a cast). TCP event statistics (`stats`) are not drops,
    // and a flow table's count('tcp') is its size.
    const off: string[] = [];
    for (const [path, text] of sources) {
      for (const m of text.matchAll(/(\w+)\.count\(\s*'([^']+)'/g)) {
        if (m[1] === 'stats' || m[1] === 'table') continue;
        if (!isDropReason(m[2]!) && !(COUNTED_EVENTS as readonly string[]).includes(m[2]!)) off.push(`${path}: ${m[2]}`);
      }
    }
    expect(off).toEqual([]);
    // Only the TCP engine's event statistics may count free-form names.
    const loose = [...sources].filter(([, text]) => text.includes('Counters<string>')).map(([path]) => path).sort();
    expect(loose).toEqual(['src/nat/tcp-flow.ts', 'src/tcp/conn.ts']);
  });

  it('folds host errnos into the fixed set', () => {
    expect(hostErrno('ECONNREFUSED')).toBe('econnrefused');
    expect(hostErrno('EWHATEVER')).toBe('other');
    expect(isDropReason(`udp.host-${hostErrno('EHOSTUNREACH')}`)).toBe(true);
    expect(isDropReason(`dns.upstream-${hostErrno('E2BIG')}`)).toBe(true);
  });

  it('is the OpenAPI document\'s DropReason and CountedEvent enums, and the schemas of drops, counters and refusals use them', () => {
    const s = openapi.components.schemas;
    expect(s.DropReason.enum).toEqual([...DROP_REASONS]);
    expect(s.CountedEvent.enum).toEqual([...COUNTED_EVENTS]);
    expect(s.Session.properties.drops).toEqual({ $ref: '#/components/schemas/Counts' });
    expect(s.Network.properties.counters).toEqual({ $ref: '#/components/schemas/Counts' });
    expect(s.Forward.properties.refusals).toEqual({ $ref: '#/components/schemas/DropCounts' });
  });

  it('is README\'s "Drop reasons" section', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /<!-- drop-reasons:begin[^>]*-->\n([\s\S]*?)<!-- drop-reasons:end -->/.exec(readme);
    expect(block?.[1]).toBe(dropReasonsMarkdown());
  });

  it('a Counters bag counts listed names (the type refuses others)', () => {
    const c = new Counters();
    c.count('ipv4.bad-checksum');
    c.count('portmap.created', 2);
    // @ts-expect-error a name off the list does not compile
    c.count('ipv4.made-up');
    expect(c.snapshot()).toEqual({ 'ipv4.bad-checksum': 1, 'ipv4.made-up': 1, 'portmap.created': 2 });
  });
});
