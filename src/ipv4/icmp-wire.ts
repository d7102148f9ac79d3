/**
 * ICMP messages (RFC 792). Only the common header is parsed: type, code, checksum and the
 * four type-specific bytes (`rest`: identifier and sequence number for echo, unused or
 * next-hop MTU for errors, RFC 1191 §4). The checksum covers the whole message.
 */
import type { Drop } from '../util/drops.js';
import { put16, put32, u32, u8 } from '../util/bytes.js';
import { finish, sum16 } from '../util/checksum.js';

/** Type, code, checksum and four type-specific bytes. */
export const ICMP_HEADER_LEN = 8;

/** RFC 792 message types used by the stack. */
export const ICMP_TYPE = { ECHO_REPLY: 0, DEST_UNREACHABLE: 3, ECHO_REQUEST: 8, TIME_EXCEEDED: 11 } as const;

const OFF = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4 } as const;

/** An ICMP message. The checksum is derived by writeIcmp, never stored. */
export interface Icmp {
  /** 0..255. */
  readonly type: number;
  /** 0..255. */
  readonly code: number;
  /** Bytes 4..8 of the header as an unsigned 32-bit number (echo: id << 16 | seq). */
  readonly rest: number;
  /** Everything after the header (the IPv4 payload bounds it). A view. */
  readonly payload: Uint8Array;
}

/** Parses an ICMP message; `b` is exactly the IPv4 payload. */
export function parseIcmp(b: Uint8Array): Icmp | Drop {
  if (b.length < ICMP_HEADER_LEN) return 'icmp.truncated';
  if (sum16(b, 0, b.length) !== 0xffff) return 'icmp.bad-checksum';
  return { type: u8(b, OFF.TYPE), code: u8(b, OFF.CODE), rest: u32(b, OFF.REST), payload: b.subarray(ICMP_HEADER_LEN) };
}

/** Echo identifier from `rest` (RFC 792 "Echo or Echo Reply Message"). */
export const icmpEchoId = (m: Icmp): number => m.rest >>> 16;
/** Echo sequence number from `rest`. */
export const icmpEchoSeq = (m: Icmp): number => m.rest & 0xffff;

export const icmpLength = (m: Icmp): number => ICMP_HEADER_LEN + m.payload.length;

/** Writes the message at `into[at]` with its checksum and returns icmpLength. */
export function writeIcmp(m: Icmp, into: Uint8Array, at = 0): number {
  const len = icmpLength(m);
  into[at + OFF.TYPE] = m.type & 0xff;
  into[at + OFF.CODE] = m.code & 0xff;
  put16(into, at + OFF.CHECKSUM, 0);
  put32(into, at + OFF.REST, m.rest);
  into.set(m.payload, at + ICMP_HEADER_LEN);
  put16(into, at + OFF.CHECKSUM, finish(sum16(into, at, at + len)));
  return len;
}
