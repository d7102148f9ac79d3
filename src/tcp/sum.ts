/**
 * The Internet checksum's folded sum (RFC 1071), as util/checksum's `sum16`, but reading
 * 32-bit words through a DataView: about twice as fast on full-size segments (node-facts
 * §6: 521 ns against 936 ns for 1500 bytes), which matters on the host → guest path where
 * every segment is checksummed once. Same contract: folded, not complemented.
 */
import { fold } from '../util/checksum.js';

export function sum16Fast(b: Uint8Array, from: number, to: number, initial = 0): number {
  const n = to - from;
  if (n < 64) return sumBytes(b, from, to, initial);
  const v = new DataView(b.buffer, b.byteOffset + from, n);
  let s = initial;
  const words = n & ~3;
  // At most 2 × 0xffff per word: no overflow past 2^53 for any frame.
  for (let i = 0; i < words; i += 4) {
    const w = v.getUint32(i);
    s += (w >>> 16) + (w & 0xffff);
  }
  return sumBytes(b, from + words, to, s);
}

function sumBytes(b: Uint8Array, from: number, to: number, initial: number): number {
  let s = initial;
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < to) s += b[i]! << 8;
  return fold(s);
}
