/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * `sum16` returns a *folded but not complemented* 16-bit sum, so partial sums (a pseudo
 * header, a header, a payload) can be added and folded again; `finish` complements.
 * A received header is valid when `sum16` over it (checksum field included) is 0xffff.
 */

/** Folded one's-complement sum of b[from, to) plus `initial`; an odd tail is padded with 0. */
export function sum16(b: Uint8Array, from: number, to: number, initial = 0): number {
  let s = initial;
  let i = from;
  const even = to - ((to - from) & 1);
  for (; i + 8 <= even; i += 8) {
    s += ((b[i]! << 8) | b[i + 1]!) + ((b[i + 2]! << 8) | b[i + 3]!) + ((b[i + 4]! << 8) | b[i + 5]!) + ((b[i + 6]! << 8) | b[i + 7]!);
    if (s > 0x3fffffff) s = (s & 0xffff) + (s >>> 16);
  }
  for (; i < even; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (even < to) s += b[even]! << 8;
  return fold(s);
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
