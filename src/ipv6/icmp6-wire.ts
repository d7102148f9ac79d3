/**
 * ICMPv6 messages (RFC 4443 §2.1): type, code, checksum over the IPv6 pseudo header and the
 * whole message (§2.3), and four type-specific bytes (`rest`: identifier and sequence number
 * for echo, the MTU for Packet Too Big, the pointer for Parameter Problem, flags and
 * reserved bits for neighbour discovery). What follows is `payload`.
 */
import { put16, put32, u32, u8 } from '../util/bytes.js';
import { finish, sum16 } from '../util/checksum.js';
import type { Drop } from '../util/drops.js';

export const ICMP6_HEADER_LEN = 8;

/** RFC 4443 §2.1 and RFC 4861 §4 message types used by the stack. */
export const ICMP6_TYPE = {
  DEST_UNREACHABLE: 1, PACKET_TOO_BIG: 2, TIME_EXCEEDED: 3, PARAM_PROBLEM: 4,
  ECHO_REQUEST: 128, ECHO_REPLY: 129,
  ROUTER_SOLICITATION: 133, ROUTER_ADVERTISEMENT: 134, NEIGHBOR_SOLICITATION: 135, NEIGHBOR_ADVERTISEMENT: 136, REDIRECT: 137,
} as const;

/** Destination Unreachable codes (RFC 4443 §3.1). */
export const UNREACHABLE6 = { NO_ROUTE: 0, ADMIN_PROHIBITED: 1, ADDRESS: 3, PORT: 4 } as const;

/** Error messages have types 0..127 (RFC 4443 §2.1). */
export const isIcmp6Error = (type: number): boolean => type < 128;

const OFF = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4 } as const;

/** An ICMPv6 message. The checksum is derived by writeIcmp6, never stored. */
export interface Icmp6 {
  readonly type: number;
  readonly code: number;
  /** Bytes 4..8 as an unsigned 32-bit number. */
  readonly rest: number;
  /** Everything after the first 8 bytes: a view. */
  readonly payload: Uint8Array;
}

/** `pseudo`: pseudoSum6(src, dst, 58) of the carrying packet; `b` is exactly the upper-layer bytes. */
export function parseIcmp6(b: Uint8Array, pseudo: number): Icmp6 | Drop {
  if (b.length < ICMP6_HEADER_LEN) return 'icmp6.truncated';
  if (sum16(b, 0, b.length, pseudo + b.length) !== 0xffff) return 'icmp6.bad-checksum';
  return { type: u8(b, OFF.TYPE), code: u8(b, OFF.CODE), rest: u32(b, OFF.REST), payload: b.subarray(ICMP6_HEADER_LEN) };
}

export const icmp6Length = (m: Icmp6): number => ICMP6_HEADER_LEN + m.payload.length;

/** Writes the message at `into[at]` with its checksum (over `pseudo` too) and returns icmp6Length. */
export function writeIcmp6(m: Icmp6, pseudo: number, into: Uint8Array, at = 0): number {
  const len = icmp6Length(m);
  into[at + OFF.TYPE] = m.type & 0xff;
  into[at + OFF.CODE] = m.code & 0xff;
  put16(into, at + OFF.CHECKSUM, 0);
  put32(into, at + OFF.REST, m.rest);
  into.set(m.payload, at + ICMP6_HEADER_LEN);
  put16(into, at + OFF.CHECKSUM, finish(sum16(into, at, at + len, pseudo + len)));
  return len;
}
