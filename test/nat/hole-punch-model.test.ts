/**
 * The hole-punching prediction of the NAT grid (test/integration/nat-world.ts) against the
 * classic table of UDP hole punching between the four named NAT types (RFC 4787 §3's names;
 * e.g. RFC 5128 §3.3 and the P2P NAT traversal literature): only a port-restricted cone or a
 * symmetric NAT facing a symmetric NAT fails.
 */
import { describe, expect, it } from 'vitest';
import { NAT_TYPES, type NatType } from '../../src/nat/behaviour.js';
import { predictHolePunch } from '../integration/nat-world.js';

describe('RFC 4787 hole-punching model', () => {
  it('predicts the classic table', () => {
    const types = Object.keys(NAT_TYPES) as NatType[];
    const fails = new Set(['port-restricted-cone/symmetric', 'symmetric/port-restricted-cone', 'symmetric/symmetric']);
    for (const a of types) for (const b of types) expect(predictHolePunch(NAT_TYPES[a], NAT_TYPES[b]), `${a}/${b}`).toBe(!fails.has(`${a}/${b}`));
  });

  it('is symmetric in its two sides, for every mapping x filtering pair', () => {
    const all = (['eim', 'adm', 'apdm'] as const).flatMap((mapping) => (['eif', 'adf', 'apdf'] as const).map((filtering) => ({ mapping, filtering })));
    for (const a of all) for (const b of all) expect(predictHolePunch(a, b)).toBe(predictHolePunch(b, a));
  });
});
