import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fold, sum16 } from '../../src/util/checksum.js';

/** RFC 1071 as written: 16-bit big-endian words, an odd byte padded with zero, folded. */
function reference(b: Uint8Array, from: number, to: number, initial: number): number {
  let s = initial;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  return fold(s);
}

describe('util/checksum sum16', () => {
  it('equals RFC 1071 word by word for every length, offset and initial value', () => {
    fc.assert(
      // size 'max': fast-check otherwise keeps arrays short, below the 64 bytes where the word path starts.
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000, size: 'max' }), fc.nat(7), fc.nat(5), fc.nat(0xfffff), (b, lead, trail, initial) => {
        const from = Math.min(lead, b.length);
        const to = Math.max(from, b.length - trail);
        expect(sum16(b, from, to, initial)).toBe(reference(b, from, to, initial));
        // The same bytes at an odd offset inside a larger buffer (the word path reads through byteOffset).
        const shifted = new Uint8Array(b.length + 3).subarray(3);
        shifted.set(b);
        expect(sum16(shifted, from, to, initial)).toBe(reference(b, from, to, initial));
      }),
    );
  });

  it('stays exact on the largest frames, of 0xff bytes (the biggest sums) and of varied bytes', () => {
    const ones = new Uint8Array(65542).fill(0xff);
    const varied = Uint8Array.from({ length: 65542 }, (_, i) => (i * 7919 + (i >>> 8)) & 0xff);
    for (const b of [ones, varied]) {
      for (const [from, to] of [[0, 65542], [1, 65541], [3, 65535]] as const) expect(sum16(b, from, to, 0xfffff)).toBe(reference(b, from, to, 0xfffff));
    }
  });
});
