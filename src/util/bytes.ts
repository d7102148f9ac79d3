/**
 * Byte helpers for wire formats: big-endian reads and writes on a Uint8Array, with no
 * allocation. Callers check lengths first; these never bounds-check (a read past the end
 * yields NaN-free garbage via `| 0`, never a throw).
 */

export const u8 = (b: Uint8Array, at: number): number => b[at]! | 0;

export const u16 = (b: Uint8Array, at: number): number => ((b[at]! << 8) | b[at + 1]!) & 0xffff;

export const u32 = (b: Uint8Array, at: number): number =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

export function put8(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
}

export function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

export function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** Little-endian, for the e1000's descriptors and registers. */
export const u16le = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8)) & 0xffff;
export const u32le = (b: Uint8Array, at: number): number =>
  (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
export function put16le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}
export function put32le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

/** An IPv4 address as an unsigned 32-bit number, the stack's internal form. */
export type Ipv4Addr = number;

/**
 * Parses dotted-quad text; undefined when it is not exactly four decimal octets 0..255 without
 * leading zeros. For text Node formatted (a socket's remoteAddress), on the hot path; user text
 * goes through `util/ip-text`, which accepts exactly the same quads and says why it refuses.
 */
export function parseIpv4Addr(text: string): Ipv4Addr | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export const formatIpv4Addr = (a: Ipv4Addr): string =>
  `${(a >>> 24) & 0xff}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;

/** A 48-bit MAC as six bytes. */
export type Mac = Uint8Array;

export const BROADCAST_MAC: Mac = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export const formatMac = (m: Uint8Array): string =>
  Array.from(m.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':');

export function parseMac(text: string): Mac | undefined {
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A 48-bit MAC as a number (exact in a double), for use as a map key. */
export function macKey(m: Uint8Array, at = 0): number {
  const low = ((m[at + 2]! << 24) | (m[at + 3]! << 16) | (m[at + 4]! << 8) | m[at + 5]!) >>> 0;
  return (m[at]! * 256 + m[at + 1]!) * 2 ** 32 + low;
}
