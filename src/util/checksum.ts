/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * `sum16` returns a *folded but not complemented* 16-bit sum, so partial sums (a pseudo
 * header, a header, a payload) can be added and folded again; `finish` complements.
 * A received header is valid when `sum16` over it (checksum field included) is 0xffff.
 */

/**
 * Folded one's-complement sum of b[from, to) plus `initial`; an odd tail is padded with 0.
 *
 * Ranges of 64 bytes or more are read as native 32-bit words through a Uint32Array over the
 * buffer, from the first 4-aligned byte on, and added whole into four independent sums:
 * 2^16 ≡ 1 (mod 2^16 - 1), so folding the total gives the same sum as adding 16-bit halves
 * (RFC 1071 §2(B)), with a quarter of the loads; and the one's-complement sum does not depend
 * on byte order (§2(B)), so the little-endian words' folded sum is the big-endian one with its
 * two bytes swapped. A DataView's big-endian reads into one sum took 3× as long: at MTU 65493
 * the checksum of every segment written was 18 % of the daemon's CPU on the host→guest path.
 * Each word adds < 2^32, so a range up to 8 MiB stays below 2^53, exact in a double.
 */
export function sum16(b: Uint8Array, from: number, to: number, initial = 0): number {
  if (to - from < 64) return sumPairs(b, from, to, initial);
  // Bytes up to the first 4-aligned one are summed in place, as pairs from `from`.
  const head = (4 - ((b.byteOffset + from) & 3)) & 3;
  const start = from + head;
  const words = (to - start) >>> 2;
  const u = wordsOf(b.buffer);
  const w0 = (b.byteOffset + start) >>> 2;
  const wEnd = w0 + words;
  const w4 = w0 + (words & ~3);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = w0;
  for (; i < w4; i += 4) {
    s0 += u[i]!;
    s1 += u[i + 1]!;
    s2 += u[i + 2]!;
    s3 += u[i + 3]!;
  }
  for (; i < wEnd; i++) s0 += u[i]!;
  // The words as pairs from `start` (big-endian), then the tail after them.
  let rest = sumPairs(b, start + words * 4, to, LITTLE_ENDIAN ? swap16(fold(s0 + s1 + s2 + s3)) : s0 + s1 + s2 + s3);
  // An odd head shifts every later byte to the other half of its pair, as seen from `from`.
  if ((head & 1) !== 0) rest = swap16(rest);
  return sumPairs(b, from, start, initial + rest);
}

/** Whether this machine stores words little-endian (what a Uint32Array reads). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A 16-bit value with its two bytes exchanged. */
const swap16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);

/** sum16 a 16-bit word at a time: short ranges and the head and tail of long ones. */
function sumPairs(b: Uint8Array, from: number, to: number, initial: number): number {
  let s = initial;
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < to) s += b[i]! << 8;
  return fold(s);
}

/**
 * A Uint32Array over all of `buffer` (its whole words), the last one reused: segments are
 * mostly built in the same few output buffers, and a view per call was a visible share of
 * the TCP path.
 */
let lastWords: Uint32Array = new Uint32Array(0);
function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  if (lastWords.buffer !== buffer) lastWords = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  return lastWords;
}

/** Folds a sum of 16-bit words (any non-negative integer below 2^53) to 16 bits. */
export function fold(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum field's value: the complement of a folded sum. */
export const finish = (sum: number): number => ~fold(sum) & 0xffff;

/** Sum of a 32-bit value as two 16-bit words (for addresses in pseudo headers). */
export const sum32 = (v: number): number => (v >>> 16) + (v & 0xffff);

/** RFC 1624 eqn. 3: the checksum after one 16-bit word changes from `old` to `next`. */
export function adjust16(csum: number, old: number, next: number): number {
  let s = (~csum & 0xffff) + (~old & 0xffff) + next;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
