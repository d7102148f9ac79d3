/**
 * UDP datagrams (RFC 768). The checksum covers the pseudo header (source, destination,
 * protocol, UDP length), the header and the payload; over IPv4 a zero checksum means
 * "not computed" and is accepted (RFC 768, RFC 1122 §4.1.3.4).
 */
import type { Drop } from '../util/drops.js';
import { put16, u16 } from '../util/bytes.js';
import { finish, sum16 } from '../util/checksum.js';

export const UDP_HEADER_LEN = 8;
const OFF = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;

/** A UDP datagram (RFC 768). Length and checksum are derived by writeUdp, never stored. */
export interface Udp {
  /** 0..0xffff (0: "no reply expected", RFC 768). */
  readonly srcPort: number;
  /** 1..0xffff. */
  readonly dstPort: number;
  /** View into the received frame: copy it before keeping it past this call. */
  readonly payload: Uint8Array;
}

/**
 * Parses a datagram; `b` is the IPv4 payload and may be longer than the UDP length.
 * `pseudo`: folded sum of source, destination and protocol (ipv4.pseudoSum).
 */
export function parseUdp(b: Uint8Array, pseudo: number): Udp | Drop {
  if (b.length < UDP_HEADER_LEN) return 'udp.truncated';
  const len = u16(b, OFF.LENGTH);
  if (len < UDP_HEADER_LEN || len > b.length) return 'udp.bad-length';
  // Over IPv4 a zero checksum means "not computed" (RFC 768).
  if (u16(b, OFF.CHECKSUM) !== 0 && sum16(b, 0, len, pseudo + len) !== 0xffff) return 'udp.bad-checksum';
  const dstPort = u16(b, OFF.DST_PORT);
  if (dstPort === 0) return 'udp.zero-port';
  return { srcPort: u16(b, OFF.SRC_PORT), dstPort, payload: b.subarray(UDP_HEADER_LEN, len) };
}

export const udpLength = (u: Udp): number => UDP_HEADER_LEN + u.payload.length;

/** Writes the datagram at `into[at]` with its checksum and returns udpLength. */
export function writeUdp(u: Udp, pseudo: number, into: Uint8Array, at = 0): number {
  const len = udpLength(u);
  put16(into, at + OFF.SRC_PORT, u.srcPort);
  put16(into, at + OFF.DST_PORT, u.dstPort);
  put16(into, at + OFF.LENGTH, len);
  put16(into, at + OFF.CHECKSUM, 0);
  into.set(u.payload, at + UDP_HEADER_LEN);
  const sum = finish(sum16(into, at, at + len, pseudo + len));
  put16(into, at + OFF.CHECKSUM, sum === 0 ? 0xffff : sum);   // 0 would mean "none"
  return len;
}
