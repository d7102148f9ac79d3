import { describe, expect, it } from 'vitest';
import { chachaBlock, chachaRandom } from '../src/util/chacha.js';

describe('ChaCha20 random', () => {
  it('computes RFC 8439 §2.3.2 test vector', () => {
    const keyBytes = Uint8Array.from({ length: 32 }, (_, i) => i);
    const key = new Uint32Array(keyBytes.buffer.slice(0));
    const nonce = new Uint32Array(new Uint8Array([0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0]).buffer);
    const out = new Uint32Array(16);
    chachaBlock(key, 1, nonce, out);
    expect([...out].map((w) => w.toString(16).padStart(8, '0'))).toEqual([
      'e4e7f110', '15593bd1', '1fdd0f50', 'c47120a3', 'c7f4d1c7', '0368c033', '9aaa2204', '4e6cd4c3',
      '466482d2', '09aa9f07', '05d7c214', 'a2028bd9', 'd19c12b5', 'b94e16de', 'e883d0cb', '4e3c50a2',
    ]);
  });
  it('gives the same words for the same seed and different words for another', () => {
    const seed = new Uint8Array(32).fill(7);
    const a = chachaRandom(seed);
    const b = chachaRandom(seed);
    const c = chachaRandom(new Uint8Array(32).fill(8));
    const wa = Array.from({ length: 40 }, () => a.u32());
    expect(Array.from({ length: 40 }, () => b.u32())).toEqual(wa);
    expect(Array.from({ length: 40 }, () => c.u32())).not.toEqual(wa);
  });
  it('refuses a seed of the wrong length', () => {
    expect(() => chachaRandom(new Uint8Array(31))).toThrow(RangeError);
  });
});
