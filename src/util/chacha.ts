/**
 * A seedable random source of cryptographic quality: the ChaCha20 block function (RFC 8439
 * §2.3) run in counter mode as a keystream, each block's sixteen words handed out in order.
 * What a recorded network draws from (`src/replay`): the recording stores the 32-byte seed,
 * and a replay rebuilds the same sequence from it, while a guest that sees TCP initial
 * sequence numbers or DNS transaction ids still cannot predict the next ones (a linear
 * generator such as `seededRandom` would let it).
 *
 * Written from RFC 8439: §2.1 quarter round, §2.3 block function (state: four constants,
 * eight key words, a 32-bit block counter, three nonce words). The nonce is zero and the
 * counter runs from 0; after 2^32 blocks (256 GiB of randomness) it wraps, far beyond what
 * one network draws.
 */
import type { Random } from './clock.js';

/** "expand 32-byte k" as four little-endian words (RFC 8439 §2.3). */
const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] as const;

/** The length of a seed, in bytes: one ChaCha20 key. */
export const CHACHA_SEED_BYTES = 32;

const rotl = (v: number, n: number): number => ((v << n) | (v >>> (32 - n))) >>> 0;

/** RFC 8439 §2.3: the 64-byte block for `key` (8 words), `counter` and `nonce` (3 words), as 16 words. */
export function chachaBlock(key: Uint32Array, counter: number, nonce: Uint32Array, out: Uint32Array): void {
  const s = new Uint32Array(16);
  s[0] = SIGMA[0];
  s[1] = SIGMA[1];
  s[2] = SIGMA[2];
  s[3] = SIGMA[3];
  s.set(key, 4);
  s[12] = counter >>> 0;
  s.set(nonce, 13);
  const x = s.slice();
  // RFC 8439 §2.1: a += b; d ^= a; d <<<= 16; c += d; b ^= c; b <<<= 12; … 8; … 7.
  const qr = (a: number, b: number, c: number, d: number): void => {
    let va = x[a]!, vb = x[b]!, vc = x[c]!, vd = x[d]!;
    va = (va + vb) >>> 0; vd = rotl(vd ^ va, 16);
    vc = (vc + vd) >>> 0; vb = rotl(vb ^ vc, 12);
    va = (va + vb) >>> 0; vd = rotl(vd ^ va, 8);
    vc = (vc + vd) >>> 0; vb = rotl(vb ^ vc, 7);
    x[a] = va; x[b] = vb; x[c] = vc; x[d] = vd;
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  for (let i = 0; i < 16; i++) out[i] = (x[i]! + s[i]!) >>> 0;
}

/** Random words from the ChaCha20 keystream of a 32-byte `seed` (little-endian key words). */
export function chachaRandom(seed: Uint8Array): Random {
  if (seed.length !== CHACHA_SEED_BYTES) throw new RangeError(`a ChaCha20 seed is ${CHACHA_SEED_BYTES} bytes, not ${seed.length}`);
  const key = new Uint32Array(8);
  for (let i = 0; i < 8; i++) key[i] = (seed[4 * i]! | (seed[4 * i + 1]! << 8) | (seed[4 * i + 2]! << 16) | (seed[4 * i + 3]! << 24)) >>> 0;
  const nonce = new Uint32Array(3);
  const block = new Uint32Array(16);
  let counter = 0;
  let next = block.length;
  return {
    u32(): number {
      if (next === block.length) {
        chachaBlock(key, counter, nonce, block);
        counter = (counter + 1) >>> 0;
        next = 0;
      }
      return block[next++]!;
    },
  };
}

/** A fresh seed from the platform's cryptographic generator. */
export function freshSeed(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(CHACHA_SEED_BYTES));
}
