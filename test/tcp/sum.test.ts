import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sum16Fast } from '../../src/tcp/sum.js';
import { sum16 } from '../../src/util/checksum.js';

describe('tcp/sum', () => {
  it('equals sum16 for every length, offset and initial value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(7), fc.nat(5), fc.nat(0xfffff), (b, lead, trail, initial) => {
        const from = Math.min(lead, b.length);
        const to = Math.max(from, b.length - trail);
        expect(sum16Fast(b, from, to, initial)).toBe(sum16(b, from, to, initial));
        const shifted = new Uint8Array(b.length + 3).subarray(3);
        shifted.set(b);
        expect(sum16Fast(shifted, from, to, initial)).toBe(sum16(b, from, to, initial));
      }),
    );
  });

  it('stays exact on the largest frames of 0xff bytes (the biggest sums)', () => {
    const b = new Uint8Array(65542).fill(0xff);
    for (const [from, to] of [[0, 65542], [1, 65541], [3, 65535]] as const) expect(sum16Fast(b, from, to, 0xfffff)).toBe(sum16(b, from, to, 0xfffff));
  });
});
