/**
 * The IPv6 header (RFC 8200 §3) and the walk over its extension headers (§4).
 *
 * `parseIpv6` checks the fixed header (version, payload length within the frame) and walks
 * the extension headers up to the upper-layer protocol, so the caller gets the protocol and
 * its bytes directly:
 * - Hop-by-Hop Options (only first, §4.3) and Destination Options (§4.6): the options are
 *   walked as TLVs (Pad1, PadN and Router Alert known; an unknown option's two high bits say
 *   what to do, §4.2: skip it, or discard the packet, with or without an ICMPv6 Parameter
 *   Problem, code 2, pointing at it).
 * - Routing (§4.4): with Segments Left 0 it is skipped whatever its type; with Segments Left
 *   above 0 the packet is refused with Parameter Problem code 0 pointing at the Routing Type:
 *   we are the last hop and do no source routing. That refuses type 0 (RFC 5095, deprecated
 *   for amplification attacks) and every other type.
 * - Fragment (§4.5): the walk stops there; `fragment` holds the offset, M flag and id and
 *   `payload` the fragmentable part after it, for `reassembly.ts`. An atomic fragment (offset
 *   0, M clear, RFC 6946) is a whole packet and the walk goes on past it.
 * - Authentication Header (RFC 4302) is skipped by its length; ESP and No Next Header (59)
 *   end the walk with that protocol.
 * Anything malformed is a Drop; a refusal that deserves an ICMPv6 error is returned in
 * `problem` (code and pointer into the packet, RFC 4443 §3.4), never thrown.
 */
import { ipv6Bytes, ipv6FromBytes, type IpAddr, type Ipv6Addr } from '../net/addr.js';
import { put16, put32, u16, u32, u8 } from '../util/bytes.js';
import { fold, sum32 } from '../util/checksum.js';
import type { Drop } from '../util/drops.js';

export const IPV6_HEADER_LEN = 40;
/** RFC 8200 §5: every link carries at least 1280 bytes. */
export const IPV6_MIN_MTU = 1280;

/** IANA protocol / next-header numbers the stack handles. */
export const NEXT_HEADER = {
  HOP_BY_HOP: 0, TCP: 6, UDP: 17, ROUTING: 43, FRAGMENT: 44, ESP: 50, AH: 51, ICMPV6: 58, NONE: 59, DEST_OPTIONS: 60,
} as const;

const OFF = { VERSION_CLASS_FLOW: 0, PAYLOAD_LENGTH: 4, NEXT_HEADER: 6, HOP_LIMIT: 7, SRC: 8, DST: 24 } as const;

/** At most this many extension headers are walked (RFC 8200 recommends an order with each at most once, two for Destination Options). */
const MAX_EXTENSION_HEADERS = 8;

/** A fragment header's fields (RFC 8200 §4.5). */
export interface Ipv6Fragment {
  /** In bytes, a multiple of 8. */
  readonly offset: number;
  readonly more: boolean;
  readonly id: number;
}

/** A refusal answered by ICMPv6 Parameter Problem (RFC 4443 §3.4). */
export interface Ipv6Problem {
  /** 0 erroneous header field, 1 unrecognized Next Header, 2 unrecognized option. */
  readonly code: number;
  /** Offset in the packet of the offending byte. */
  readonly pointer: number;
}

/** An IPv6 packet, its extension headers walked. */
export interface Ipv6 {
  /** 0..255. */
  readonly trafficClass: number;
  /** 0..0xfffff. */
  readonly flowLabel: number;
  readonly hopLimit: number;
  readonly src: Ipv6Addr;
  readonly dst: Ipv6Addr;
  /** The upper-layer protocol (NEXT_HEADER or any other), or, for a fragment, the Fragment header's Next Header. */
  readonly protocol: number;
  /** Offset in `packet` of the byte naming `protocol` (for Parameter Problem code 1). */
  readonly protocolAt: number;
  /** The upper-layer bytes (or a fragment's fragmentable part): a view. */
  readonly payload: Uint8Array;
  /** The whole packet, header to the payload length's end (link padding excluded): a view, for ICMPv6 errors to quote. */
  readonly packet: Uint8Array;
  /** Set when the packet is a non-atomic fragment. */
  readonly fragment: Ipv6Fragment | undefined;
  /** Set when the packet must be discarded with an ICMPv6 Parameter Problem; `protocol` and `payload` are then meaningless. */
  readonly problem: Ipv6Problem | undefined;
  /** Whether a Hop-by-Hop Options header with a Router Alert (RFC 2711) was present (MLD messages carry one). */
  readonly routerAlert: boolean;
}

/** Parses an IPv6 packet; bytes beyond the payload length (Ethernet padding) are ignored. */
export function parseIpv6(b: Uint8Array): Ipv6 | Drop {
  if (b.length < IPV6_HEADER_LEN) return 'ipv6.truncated';
  const vcf = u32(b, OFF.VERSION_CLASS_FLOW);
  if (vcf >>> 28 !== 6) return 'ipv6.bad-version';
  const payloadLength = u16(b, OFF.PAYLOAD_LENGTH);
  // A zero payload length with a Jumbo Payload option (RFC 2675) cannot occur below 64 KiB links: refused.
  if (IPV6_HEADER_LEN + payloadLength > b.length) return 'ipv6.truncated';
  const packet = b.subarray(0, IPV6_HEADER_LEN + payloadLength);
  const walked = walkExtensions(packet, u8(b, OFF.NEXT_HEADER), OFF.NEXT_HEADER, IPV6_HEADER_LEN);
  if (typeof walked === 'string') return walked;
  return {
    trafficClass: (vcf >>> 20) & 0xff,
    flowLabel: vcf & 0xfffff,
    hopLimit: u8(b, OFF.HOP_LIMIT),
    src: ipv6FromBytes(b, OFF.SRC),
    dst: ipv6FromBytes(b, OFF.DST),
    packet,
    ...walked,
  };
}

type Walked = Pick<Ipv6, 'protocol' | 'protocolAt' | 'payload' | 'fragment' | 'problem' | 'routerAlert'>;

/**
 * Walks extension headers in `packet` from `at`, where header `next` (named by the byte at
 * `nextAt`) begins, to the upper layer. Also used on a reassembled packet's fragmentable part.
 */
export function walkExtensions(packet: Uint8Array, next: number, nextAt: number, at: number): Walked | Drop {
  let routerAlert = false;
  for (let n = 0; ; n++) {
    const done = (problem?: Ipv6Problem, fragment?: Ipv6Fragment): Walked => ({
      protocol: next, protocolAt: nextAt, payload: packet.subarray(at), fragment, problem, routerAlert,
    });
    switch (next) {
      case NEXT_HEADER.HOP_BY_HOP:
      case NEXT_HEADER.DEST_OPTIONS: {
        if (next === NEXT_HEADER.HOP_BY_HOP && at !== IPV6_HEADER_LEN) return done({ code: 1, pointer: nextAt });
        if (at + 8 > packet.length) return 'ipv6.truncated-extension';
        const len = (packet[at + 1]! + 1) * 8;
        if (at + len > packet.length) return 'ipv6.truncated-extension';
        const opts = walkOptions(packet, at + 2, at + len);
        if (typeof opts === 'string') return opts;
        if (opts.problem !== undefined) return done(opts.problem);
        if (next === NEXT_HEADER.HOP_BY_HOP) routerAlert = opts.routerAlert;
        nextAt = at;
        next = packet[at]!;
        at += len;
        break;
      }
      case NEXT_HEADER.ROUTING: {
        if (at + 8 > packet.length) return 'ipv6.truncated-extension';
        const len = (packet[at + 1]! + 1) * 8;
        if (at + len > packet.length) return 'ipv6.truncated-extension';
        if (packet[at + 3]! !== 0) return done({ code: 0, pointer: at + 2 });
        nextAt = at;
        next = packet[at]!;
        at += len;
        break;
      }
      case NEXT_HEADER.FRAGMENT: {
        if (at + 8 > packet.length) return 'ipv6.truncated-extension';
        const word = u16(packet, at + 2);
        const offset = word & 0xfff8;
        const more = (word & 1) !== 0;
        const id = u32(packet, at + 4);
        nextAt = at;
        next = packet[at]!;
        at += 8;
        if (offset !== 0 || more) return done(undefined, { offset, more, id });
        break; // an atomic fragment: a whole packet (RFC 6946)
      }
      case NEXT_HEADER.AH: {
        if (at + 8 > packet.length) return 'ipv6.truncated-extension';
        const len = (packet[at + 1]! + 2) * 4;
        if (at + len > packet.length) return 'ipv6.truncated-extension';
        nextAt = at;
        next = packet[at]!;
        at += len;
        break;
      }
      default:
        return done();
    }
    if (n + 1 >= MAX_EXTENSION_HEADERS) return 'ipv6.too-many-extensions';
  }
}

/** The TLV options of a Hop-by-Hop or Destination Options header in [from, to) (RFC 8200 §4.2). */
function walkOptions(b: Uint8Array, from: number, to: number): { problem: Ipv6Problem | undefined; routerAlert: boolean } | Drop {
  let routerAlert = false;
  for (let i = from; i < to; ) {
    const type = b[i]!;
    if (type === 0) {
      i++; // Pad1
      continue;
    }
    if (i + 2 > to) return 'ipv6.bad-option';
    const len = b[i + 1]!;
    if (i + 2 + len > to) return 'ipv6.bad-option';
    if (type === 5 && len === 2) routerAlert = true;
    else if (type !== 1) {
      // The two high bits: 00 skip, 01 discard, 10 discard + Parameter Problem, 11 the same unless multicast (the caller judges).
      const action = type >>> 6;
      if (action === 1) return 'ipv6.unknown-option';
      if (action >= 2) return { problem: { code: 2, pointer: i }, routerAlert };
    }
    i += 2 + len;
  }
  return { problem: undefined, routerAlert };
}

/** The fixed header, no extension headers: what the stack sends. */
export interface Ipv6Header {
  readonly trafficClass: number;
  readonly flowLabel: number;
  readonly hopLimit: number;
  readonly src: Ipv6Addr;
  readonly dst: Ipv6Addr;
  /** Next Header: the upper-layer protocol. */
  readonly protocol: number;
}

/** Writes the 40-byte fixed header for a payload of `payloadLength` bytes; returns 40. */
export function writeIpv6Header(h: Ipv6Header, payloadLength: number, into: Uint8Array, at = 0): number {
  put32(into, at + OFF.VERSION_CLASS_FLOW, ((6 << 28) | ((h.trafficClass & 0xff) << 20) | (h.flowLabel & 0xfffff)) >>> 0);
  put16(into, at + OFF.PAYLOAD_LENGTH, payloadLength);
  into[at + OFF.NEXT_HEADER] = h.protocol & 0xff;
  into[at + OFF.HOP_LIMIT] = h.hopLimit & 0xff;
  into.set(bytesOf(h.src), at + OFF.SRC);
  into.set(bytesOf(h.dst), at + OFF.DST);
  return IPV6_HEADER_LEN;
}

/**
 * Per-address caches of the 16 bytes and the word sum: a flow's packets carry the same few
 * addresses, and turning the hex text back into bytes per packet was the IPv6 path's largest
 * extra cost over IPv4 at MTU 1500. Bounded: cleared whole when full (a guest spraying
 * addresses only costs itself the recomputation).
 */
const CACHE_MAX = 4096;
const bytesCache = new Map<Ipv6Addr, Uint8Array>();
const sumCache = new Map<Ipv6Addr, number>();

function bytesOf(a: Ipv6Addr): Uint8Array {
  let b = bytesCache.get(a);
  if (b === undefined) {
    if (bytesCache.size >= CACHE_MAX) bytesCache.clear();
    b = ipv6Bytes(a);
    bytesCache.set(a, b);
  }
  return b;
}

/** Sum of an address's eight 16-bit words. */
function sumAddress(a: Ipv6Addr): number {
  let s = sumCache.get(a);
  if (s === undefined) {
    s = 0;
    for (let i = 0; i < 32; i += 4) s += parseInt(a.slice(i, i + 4), 16);
    if (sumCache.size >= CACHE_MAX) sumCache.clear();
    sumCache.set(a, s);
  }
  return s;
}

/**
 * The folded sum of the IPv6 pseudo header (RFC 8200 §8.1) without its length: source,
 * destination and Next Header. Callers add the upper-layer length as for IPv4
 * (`sum16(b, 0, len, pseudo + len)`): below 64 KiB the 32-bit length field sums the same.
 */
export const pseudoSum6 = (src: Ipv6Addr, dst: Ipv6Addr, protocol: number): number => fold(sumAddress(src) + sumAddress(dst) + protocol);

/**
 * The pseudo-header sum for either family (IPv4's of RFC 9293 §3.1 or IPv6's): what the
 * family-neutral engines (TCP, UDP NAT, DNS) checksum with. `src` and `dst` are of one family.
 */
export const pseudoSumIp = (src: IpAddr, dst: IpAddr, protocol: number): number =>
  fold((typeof src === 'number' ? sum32(src) : sumAddress(src)) + (typeof dst === 'number' ? sum32(dst) : sumAddress(dst)) + protocol);

// --- Address classes (RFC 4291 §2.4).

/** ff00::/8. */
export const isMulticast6 = (a: Ipv6Addr): boolean => a.startsWith('ff');
/** fe80::/10. */
export const isLinkLocal6 = (a: Ipv6Addr): boolean => a.startsWith('fe8') || a.startsWith('fe9') || a.startsWith('fea') || a.startsWith('feb');
/** ::, the unspecified address. */
export const UNSPECIFIED6 = '0'.repeat(32) as Ipv6Addr;
/** ::1. */
export const LOOPBACK6 = `${'0'.repeat(31)}1` as Ipv6Addr;
/** ff02::1, all nodes on the link. */
export const ALL_NODES = `ff02${'0'.repeat(27)}1` as Ipv6Addr;
/** ff02::2, all routers on the link. */
export const ALL_ROUTERS = `ff02${'0'.repeat(27)}2` as Ipv6Addr;

/** The solicited-node multicast address of `a` (ff02::1:ffXX:XXXX, RFC 4291 §2.7.1). */
export const solicitedNode = (a: Ipv6Addr): Ipv6Addr => `ff0200000000000000000001ff${a.slice(26)}` as Ipv6Addr;

/** The Ethernet multicast MAC of an IPv6 multicast address (33:33 + its last 32 bits, RFC 2464 §7). */
export function multicastMac(a: Ipv6Addr): Uint8Array {
  const b = ipv6Bytes(a);
  return new Uint8Array([0x33, 0x33, b[12]!, b[13]!, b[14]!, b[15]!]);
}
