/**
 * The IPv4 header (RFC 791 §3.1). Parsing checks what a receiver must (RFC 1122 §3.2.1):
 * version, header length, header checksum, total length, and that the options are
 * well-formed TLVs; it interprets no option. Fragments are parsed like any packet: the
 * caller decides what to do with them (`moreFragments` or a non-zero `fragmentOffset`).
 * TTL is not checked here: we do not route, so every TTL is acceptable to the parser.
 */
import type { Drop } from '../util/drops.js';
import { put16, put32, u16, u32, u8, type Ipv4Addr } from '../util/bytes.js';
import { finish, fold, sum16, sum32 } from '../util/checksum.js';

/** The header without options. */
export const IPV4_HEADER_LEN = 20;
/** IHL is four bits of 32-bit words: 60 bytes at most, so 40 bytes of options. */
export const IPV4_MAX_OPTIONS_LEN = 40;

/** IANA protocol numbers used by the stack. */
export const IP_PROTO = { ICMP: 1, TCP: 6, UDP: 17 } as const;

const OFF = {
  VERSION_IHL: 0, DSCP_ECN: 1, TOTAL_LENGTH: 2, ID: 4, FLAGS_FRAGMENT: 6,
  TTL: 8, PROTOCOL: 9, CHECKSUM: 10, SRC: 12, DST: 16, OPTIONS: 20,
} as const;

/** RFC 791 §3.1 "Flags": bit 0 reserved, DF, MF, then the 13-bit offset in 8-byte units. */
const FLAG = { RESERVED: 0x8000, DF: 0x4000, MF: 0x2000 } as const;
const FRAGMENT_MASK = 0x1fff;

/** RFC 791 §3.1 "Options": the two single-byte options. */
const OPT_EOL = 0;
const OPT_NOP = 1;

/** An IPv4 packet. IHL, total length and checksum are derived by writeIpv4, never stored. */
export interface Ipv4 {
  /** The former TOS byte: DSCP (6 bits) and ECN (2 bits), 0..255. */
  readonly dscpEcn: number;
  /** Identification, 0..0xffff. */
  readonly id: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** In bytes: a multiple of 8, 0..65528. */
  readonly fragmentOffset: number;
  /** 0..255. */
  readonly ttl: number;
  /** IP_PROTO or any other 0..255. */
  readonly protocol: number;
  readonly src: Ipv4Addr;
  readonly dst: Ipv4Addr;
  /**
   * Raw option bytes, well-formed TLVs, length a multiple of 4 and at most 40.
   * A view into the received frame; empty when IHL is 5.
   */
  readonly options: Uint8Array;
  /** The bytes the total length covers after the header: a view, link padding excluded. */
  readonly payload: Uint8Array;
}

/** Parses an IPv4 packet; bytes beyond the total length (Ethernet padding) are ignored. */
export function parseIpv4(b: Uint8Array): Ipv4 | Drop {
  if (b.length < IPV4_HEADER_LEN) return 'ipv4.truncated';
  const versionIhl = u8(b, OFF.VERSION_IHL);
  if (versionIhl >>> 4 !== 4) return 'ipv4.bad-version';
  const headerLen = (versionIhl & 0x0f) * 4;
  if (headerLen < IPV4_HEADER_LEN) return 'ipv4.bad-header-length';
  if (headerLen > b.length) return 'ipv4.truncated';
  if (sum16(b, 0, headerLen) !== 0xffff) return 'ipv4.bad-checksum';
  const totalLen = u16(b, OFF.TOTAL_LENGTH);
  if (totalLen < headerLen) return 'ipv4.bad-total-length';
  if (totalLen > b.length) return 'ipv4.truncated';
  const flagsFragment = u16(b, OFF.FLAGS_FRAGMENT);
  if ((flagsFragment & FLAG.RESERVED) !== 0) return 'ipv4.reserved-flag';
  if (!optionsWellFormed(b, OFF.OPTIONS, headerLen)) return 'ipv4.bad-options';
  return {
    dscpEcn: u8(b, OFF.DSCP_ECN),
    id: u16(b, OFF.ID),
    dontFragment: (flagsFragment & FLAG.DF) !== 0,
    moreFragments: (flagsFragment & FLAG.MF) !== 0,
    fragmentOffset: (flagsFragment & FRAGMENT_MASK) * 8,
    ttl: u8(b, OFF.TTL),
    protocol: u8(b, OFF.PROTOCOL),
    src: u32(b, OFF.SRC),
    dst: u32(b, OFF.DST),
    options: b.subarray(OFF.OPTIONS, headerLen),
    payload: b.subarray(headerLen, totalLen),
  };
}

/**
 * RFC 791 §3.1: an option is EOL (ends the list; the rest is padding), NOP, or
 * type, length (≥ 2, counting both), data — and must lie within the header.
 */
function optionsWellFormed(b: Uint8Array, from: number, to: number): boolean {
  let i = from;
  while (i < to) {
    const type = b[i]!;
    if (type === OPT_EOL) return true;
    if (type === OPT_NOP) { i++; continue; }
    if (i + 1 >= to) return false;
    const len = b[i + 1]!;
    if (len < 2 || i + len > to) return false;
    i += len;
  }
  return true;
}

/** Header with options padded to 4 bytes, plus payload. */
export const ipv4Length = (p: Ipv4): number =>
  IPV4_HEADER_LEN + ((p.options.length + 3) & ~3) + p.payload.length;

/**
 * Writes the packet at `into[at]`, computing IHL, total length and header checksum, and
 * returns ipv4Length. Options are copied and padded with EOL bytes to a multiple of 4;
 * the caller keeps them within 40 bytes and the packet within 65535.
 */
export function writeIpv4(p: Ipv4, into: Uint8Array, at = 0): number {
  const headerLen = writeIpv4Header(p, p.payload.length, into, at);
  into.set(p.payload, at + headerLen);
  return headerLen + p.payload.length;
}

/**
 * Writes only the header of `p` (options and checksum included) for a payload of
 * `payloadLength` bytes that is, or will be, at the returned header length after `at`;
 * `p.payload` is not read. Returns the header length.
 */
export function writeIpv4Header(p: Omit<Ipv4, 'payload'>, payloadLength: number, into: Uint8Array, at = 0): number {
  const optionsLen = (p.options.length + 3) & ~3;
  const headerLen = IPV4_HEADER_LEN + optionsLen;
  into[at + OFF.VERSION_IHL] = 0x40 | (headerLen >>> 2);
  into[at + OFF.DSCP_ECN] = p.dscpEcn & 0xff;
  put16(into, at + OFF.TOTAL_LENGTH, headerLen + payloadLength);
  put16(into, at + OFF.ID, p.id);
  put16(into, at + OFF.FLAGS_FRAGMENT,
    (p.dontFragment ? FLAG.DF : 0) | (p.moreFragments ? FLAG.MF : 0) | ((p.fragmentOffset >>> 3) & FRAGMENT_MASK));
  into[at + OFF.TTL] = p.ttl & 0xff;
  into[at + OFF.PROTOCOL] = p.protocol & 0xff;
  put16(into, at + OFF.CHECKSUM, 0);
  put32(into, at + OFF.SRC, p.src);
  put32(into, at + OFF.DST, p.dst);
  if (optionsLen > 0) {
    into.set(p.options, at + OFF.OPTIONS);
    into.fill(OPT_EOL, at + OFF.OPTIONS + p.options.length, at + headerLen);
  }
  put16(into, at + OFF.CHECKSUM, finish(sum16(into, at, at + headerLen)));
  return headerLen;
}

/**
 * The folded sum of the TCP/UDP pseudo header (RFC 9293 §3.1, RFC 768) without its
 * length word: callers add the L4 length, e.g. `sum16(b, 0, len, pseudo + len)`.
 */
export const pseudoSum = (src: Ipv4Addr, dst: Ipv4Addr, protocol: number): number =>
  fold(sum32(src) + sum32(dst) + protocol);
