/**
 * DNS message header and first question (RFC 1035 §4.1.1, §4.1.2; AD/CD bits RFC 4035
 * §3.2). Enough for a forwarder to match replies to queries and log what was asked; the
 * rest of the message stays an opaque view.
 */
import { put16, u16 } from '../util/bytes.js';
import type { Drop } from '../util/drops.js';

export const DNS_HEADER_LEN = 12;
const OFF = { ID: 0, FLAGS: 2, QDCOUNT: 4, ANCOUNT: 6, NSCOUNT: 8, ARCOUNT: 10 } as const;
/** Bits of the FLAGS word (RFC 1035 §4.1.1). */
const BIT = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080, Z: 0x0040, AD: 0x0020, CD: 0x0010 } as const;
const OPCODE_SHIFT = 11;

/** A DNS message header; the body after it is a view. */
export interface DnsHeader {
  readonly id: number;
  /** true for a response. */
  readonly qr: boolean;
  /** 0..15 (0 QUERY). */
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly ra: boolean;
  /** The reserved bit (RFC 1035 §4.1.1: must be zero; kept, not judged). */
  readonly z: boolean;
  readonly ad: boolean;
  readonly cd: boolean;
  /** 0..15, the header's 4 bits only (EDNS extends it in the OPT record). */
  readonly rcode: number;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
  /** Everything after the header: a view. */
  readonly body: Uint8Array;
}

/** Parses the 12-byte header; anything shorter is a Drop. */
export function parseDnsHeader(b: Uint8Array): DnsHeader | Drop {
  if (b.length < DNS_HEADER_LEN) return 'dns.truncated';
  const f = u16(b, OFF.FLAGS);
  return {
    id: u16(b, OFF.ID),
    qr: (f & BIT.QR) !== 0,
    opcode: (f >>> OPCODE_SHIFT) & 0xf,
    aa: (f & BIT.AA) !== 0,
    tc: (f & BIT.TC) !== 0,
    rd: (f & BIT.RD) !== 0,
    ra: (f & BIT.RA) !== 0,
    z: (f & BIT.Z) !== 0,
    ad: (f & BIT.AD) !== 0,
    cd: (f & BIT.CD) !== 0,
    rcode: f & 0xf,
    qdcount: u16(b, OFF.QDCOUNT),
    ancount: u16(b, OFF.ANCOUNT),
    nscount: u16(b, OFF.NSCOUNT),
    arcount: u16(b, OFF.ARCOUNT),
    body: b.subarray(DNS_HEADER_LEN),
  };
}

export const dnsLength = (h: DnsHeader): number => DNS_HEADER_LEN + h.body.length;

/** Writes header and body at `into[at]`; returns the bytes written. */
export function writeDnsHeader(h: DnsHeader, into: Uint8Array, at = 0): number {
  put16(into, at + OFF.ID, h.id);
  const f =
    (h.qr ? BIT.QR : 0) |
    ((h.opcode & 0xf) << OPCODE_SHIFT) |
    (h.aa ? BIT.AA : 0) |
    (h.tc ? BIT.TC : 0) |
    (h.rd ? BIT.RD : 0) |
    (h.ra ? BIT.RA : 0) |
    (h.z ? BIT.Z : 0) |
    (h.ad ? BIT.AD : 0) |
    (h.cd ? BIT.CD : 0) |
    (h.rcode & 0xf);
  put16(into, at + OFF.FLAGS, f);
  put16(into, at + OFF.QDCOUNT, h.qdcount);
  put16(into, at + OFF.ANCOUNT, h.ancount);
  put16(into, at + OFF.NSCOUNT, h.nscount);
  put16(into, at + OFF.ARCOUNT, h.arcount);
  into.set(h.body, at + DNS_HEADER_LEN);
  return dnsLength(h);
}

/** A question (RFC 1035 §4.1.2). */
export interface DnsQuestion {
  /** Dotted, without the root dot; '' for the root. Label bytes outside printable ASCII, '.' and '\\' are escaped as \DDD (RFC 4343 §2.1). */
  readonly name: string;
  readonly qtype: number;
  readonly qclass: number;
  /** Offset in the message just past the question. */
  readonly end: number;
}

/** RFC 1035 §2.3.4: a name is at most 255 bytes on the wire. */
const MAX_NAME_LEN = 255;

/**
 * Reads the name at `at` in the whole message `msg` (pointers are message offsets,
 * RFC 1035 §4.1.4). A pointer must point strictly backwards, before the label that holds
 * it, so loops are impossible and the walk is bounded by the message length.
 */
export function readDnsName(msg: Uint8Array, at: number): { name: string; end: number } | Drop {
  const labels: string[] = [];
  let p = at;
  let end = -1;
  let wireLen = 1; // the root label
  let limit = at; // pointers must go below this
  for (;;) {
    if (p >= msg.length) return 'dns.truncated-name';
    const len = msg[p]!;
    if (len === 0) {
      if (end < 0) end = p + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (p + 2 > msg.length) return 'dns.truncated-name';
      const target = u16(msg, p) & 0x3fff;
      if (target >= limit) return 'dns.bad-pointer';
      if (end < 0) end = p + 2;
      limit = target;
      p = target;
      continue;
    }
    if (kind !== 0) return 'dns.bad-label-type'; // 0x40, 0x80: RFC 6891 §5 retired them
    if (p + 1 + len > msg.length) return 'dns.truncated-name';
    wireLen += 1 + len;
    if (wireLen > MAX_NAME_LEN) return 'dns.name-too-long';
    let label = '';
    for (let i = p + 1; i <= p + len; i++) {
      const c = msg[i]!;
      label += c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`;
    }
    labels.push(label);
    p += 1 + len;
  }
  return { name: labels.join('.'), end };
}

/** The first question of a message (`msg` is the whole message, header included). */
export function parseDnsQuestion(msg: Uint8Array): DnsQuestion | Drop {
  const h = parseDnsHeader(msg);
  if (typeof h === 'string') return h;
  if (h.qdcount === 0) return 'dns.no-question';
  const n = readDnsName(msg, DNS_HEADER_LEN);
  if (typeof n === 'string') return n;
  if (n.end + 4 > msg.length) return 'dns.truncated-question';
  return { name: n.name, qtype: u16(msg, n.end), qclass: u16(msg, n.end + 2), end: n.end + 4 };
}

