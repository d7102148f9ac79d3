/**
 * BOOTP/DHCP message wire format (RFC 951, RFC 2131 §2, RFC 2132 §2-3, RFC 3396).
 *
 * `parseDhcp` turns a UDP payload into a readonly record. `chaddr`, `sname` and `file` are
 * views into the received bytes, and so is each option's `data` unless the option was
 * split across several instances (RFC 3396), in which case the parts are concatenated into
 * a fresh array. Option overload (option 52, RFC 2132 §9.3) is resolved here: options found
 * in `file` and `sname` join the list (order: options field, then file, then sname, as
 * RFC 3396 §6 prescribes for concatenation), option 52 itself is not listed, and the
 * overloaded field reads as empty.
 *
 * `writeDhcp` writes the fixed header, the magic cookie, the options (splitting any longer
 * than 255 bytes into consecutive instances, RFC 3396 §7), the End option, and pads with
 * zeros (the Pad option) to the 300-byte BOOTP minimum (RFC 1542 §2.1). It never uses
 * overload: the server keeps its replies small enough not to need it.
 */
import { put16, put32, u16, u32, u8, type Ipv4Addr } from '../util/bytes.js';
import type { Drop } from '../util/drops.js';

/** Offsets of the fixed BOOTP header (RFC 2131 §2, Figure 1). */
const OFF = {
  OP: 0,
  HTYPE: 1,
  HLEN: 2,
  HOPS: 3,
  XID: 4,
  SECS: 8,
  FLAGS: 10,
  CIADDR: 12,
  YIADDR: 16,
  SIADDR: 20,
  GIADDR: 24,
  CHADDR: 28,
  SNAME: 44,
  FILE: 108,
  COOKIE: 236,
  OPTIONS: 240,
} as const;

export const CHADDR_LEN = 16;
export const SNAME_LEN = 64;
export const FILE_LEN = 128;
/** Fixed header plus magic cookie: the smallest message we accept. */
export const DHCP_FIXED_LEN = OFF.OPTIONS;
/** RFC 1542 §2.1: relay agents and old clients expect at least 300 bytes of BOOTP. */
export const BOOTP_MIN_LEN = 300;
/** RFC 2132 §2: 99.130.83.99. */
export const DHCP_MAGIC_COOKIE = 0x63825363;

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** RFC 2131 §2: the leftmost bit of `flags`; the other 15 must be zero and are ignored. */
const FLAG_BROADCAST = 0x8000;

export const OPT_PAD = 0;
export const OPT_OVERLOAD = 52;
export const OPT_END = 255;

/** One option, after RFC 3396 concatenation. `code` is 1..254. */
export interface DhcpOption {
  readonly code: number;
  /** A view into the message, or a fresh array when the option came in several parts. */
  readonly data: Uint8Array;
}

/** A BOOTP/DHCP message (RFC 2131 §2). The magic cookie, End and padding are implicit. */
export interface Dhcp {
  /** 1 BOOTREQUEST, 2 BOOTREPLY. */
  readonly op: number;
  /** Hardware type (1 = Ethernet). */
  readonly htype: number;
  /** Hardware address length, 0..16 for a message we accept. */
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  /** The BROADCAST flag (RFC 2131 §2); the reserved flag bits are not kept. */
  readonly broadcast: boolean;
  readonly ciaddr: Ipv4Addr;
  readonly yiaddr: Ipv4Addr;
  readonly siaddr: Ipv4Addr;
  readonly giaddr: Ipv4Addr;
  /** The 16-byte chaddr field; the hardware address is its first `hlen` bytes. */
  readonly chaddr: Uint8Array;
  /** At most 64 bytes, zero-padded on write; empty when overloaded with options. */
  readonly sname: Uint8Array;
  /** At most 128 bytes, zero-padded on write; empty when overloaded with options. */
  readonly file: Uint8Array;
  /** Options in wire order, each code at most once (RFC 3396 concatenation applied). */
  readonly options: readonly DhcpOption[];
}

/** Raw TLVs of one area, appended to `out`; returns a Drop on a malformed area. */
function scanOptions(
  b: Uint8Array,
  start: number,
  end: number,
  needEnd: boolean,
  out: { code: number; data: Uint8Array }[],
): Drop | undefined {
  let at = start;
  while (at < end) {
    const code = b[at]!;
    if (code === OPT_PAD) {
      at++;
      continue;
    }
    if (code === OPT_END) return undefined;
    if (at + 2 > end) return 'dhcp.truncated-option';
    const len = b[at + 1]!;
    if (at + 2 + len > end) return 'dhcp.truncated-option';
    out.push({ code, data: b.subarray(at + 2, at + 2 + len) });
    at += 2 + len;
  }
  // RFC 2132 §3.2: the End option marks the end of valid data in the options field.
  return needEnd ? 'dhcp.no-end-option' : undefined;
}

/** Parses a BOOTP/DHCP message; a message without the DHCP magic cookie is a Drop. */
export function parseDhcp(b: Uint8Array): Dhcp | Drop {
  if (b.length < DHCP_FIXED_LEN) return 'dhcp.truncated';
  if (u32(b, OFF.COOKIE) !== DHCP_MAGIC_COOKIE) return 'dhcp.no-magic-cookie';
  const hlen = u8(b, OFF.HLEN);
  if (hlen > CHADDR_LEN) return 'dhcp.bad-hlen';
  const raw: { code: number; data: Uint8Array }[] = [];
  const bad = scanOptions(b, OFF.OPTIONS, b.length, true, raw);
  if (bad !== undefined) return bad;
  let sname = b.subarray(OFF.SNAME, OFF.SNAME + SNAME_LEN);
  let file = b.subarray(OFF.FILE, OFF.FILE + FILE_LEN);
  const overloadAt = raw.findIndex((o) => o.code === OPT_OVERLOAD);
  if (overloadAt >= 0) {
    const ov = raw[overloadAt]!.data;
    raw.splice(overloadAt, 1);
    // RFC 2132 §9.3: 1 = file holds options, 2 = sname, 3 = both.
    if (ov.length !== 1 || ov[0]! < 1 || ov[0]! > 3) return 'dhcp.bad-overload';
    if (raw.some((o) => o.code === OPT_OVERLOAD)) return 'dhcp.bad-overload';
    const which = ov[0]!;
    if (which & 1) {
      const e = scanOptions(b, OFF.FILE, OFF.FILE + FILE_LEN, false, raw);
      if (e !== undefined) return e;
      file = b.subarray(OFF.FILE, OFF.FILE);
    }
    if (which & 2) {
      const e = scanOptions(b, OFF.SNAME, OFF.SNAME + SNAME_LEN, false, raw);
      if (e !== undefined) return e;
      sname = b.subarray(OFF.SNAME, OFF.SNAME);
    }
    if (raw.some((o) => o.code === OPT_OVERLOAD)) return 'dhcp.bad-overload';
  }
  return {
    op: u8(b, OFF.OP),
    htype: u8(b, OFF.HTYPE),
    hlen,
    hops: u8(b, OFF.HOPS),
    xid: u32(b, OFF.XID),
    secs: u16(b, OFF.SECS),
    broadcast: (u16(b, OFF.FLAGS) & FLAG_BROADCAST) !== 0,
    ciaddr: u32(b, OFF.CIADDR),
    yiaddr: u32(b, OFF.YIADDR),
    siaddr: u32(b, OFF.SIADDR),
    giaddr: u32(b, OFF.GIADDR),
    chaddr: b.subarray(OFF.CHADDR, OFF.CHADDR + CHADDR_LEN),
    sname,
    file,
    options: concatenate(raw),
  };
}

/** RFC 3396 §5: instances of one code are concatenated, in order, into one option. */
function concatenate(raw: readonly { code: number; data: Uint8Array }[]): DhcpOption[] {
  const out: DhcpOption[] = [];
  const index = new Map<number, number>();
  for (const o of raw) {
    const i = index.get(o.code);
    if (i === undefined) {
      index.set(o.code, out.length);
      out.push(o);
      continue;
    }
    const prev = out[i]!.data;
    const joined = new Uint8Array(prev.length + o.data.length);
    joined.set(prev);
    joined.set(o.data, prev.length);
    out[i] = { code: o.code, data: joined };
  }
  return out;
}

/** Bytes that `options` take on the wire, with RFC 3396 splitting, without End. */
export function optionsLength(options: readonly DhcpOption[]): number {
  let n = 0;
  // A zero-length option still takes one instance (code + length 0).
  for (const o of options) n += o.data.length + 2 * Math.max(1, Math.ceil(o.data.length / 255));
  return n;
}

/** Length of the message `writeDhcp` writes: header, cookie, options, End, padding to 300. */
export const dhcpLength = (m: Dhcp): number =>
  Math.max(BOOTP_MIN_LEN, DHCP_FIXED_LEN + optionsLength(m.options) + 1);

function putField(into: Uint8Array, at: number, field: Uint8Array, size: number): void {
  const n = Math.min(field.length, size);
  into.set(field.subarray(0, n), at);
  into.fill(0, at + n, at + size);
}

/**
 * Writes `m` at `into[at]`; returns the bytes written (`dhcpLength(m)`). Option codes must
 * be 1..254 (the caller's invariant: Pad and End are written here, never listed).
 */
export function writeDhcp(m: Dhcp, into: Uint8Array, at = 0): number {
  into[at + OFF.OP] = m.op;
  into[at + OFF.HTYPE] = m.htype;
  into[at + OFF.HLEN] = m.hlen;
  into[at + OFF.HOPS] = m.hops;
  put32(into, at + OFF.XID, m.xid);
  put16(into, at + OFF.SECS, m.secs);
  put16(into, at + OFF.FLAGS, m.broadcast ? FLAG_BROADCAST : 0);
  put32(into, at + OFF.CIADDR, m.ciaddr);
  put32(into, at + OFF.YIADDR, m.yiaddr);
  put32(into, at + OFF.SIADDR, m.siaddr);
  put32(into, at + OFF.GIADDR, m.giaddr);
  putField(into, at + OFF.CHADDR, m.chaddr, CHADDR_LEN);
  putField(into, at + OFF.SNAME, m.sname, SNAME_LEN);
  putField(into, at + OFF.FILE, m.file, FILE_LEN);
  put32(into, at + OFF.COOKIE, DHCP_MAGIC_COOKIE);
  let p = at + OFF.OPTIONS;
  for (const o of m.options) {
    // RFC 3396 §7: an option longer than 255 bytes goes out as consecutive instances.
    let from = 0;
    do {
      const n = Math.min(255, o.data.length - from);
      into[p] = o.code;
      into[p + 1] = n;
      into.set(o.data.subarray(from, from + n), p + 2);
      p += 2 + n;
      from += n;
    } while (from < o.data.length);
  }
  into[p++] = OPT_END;
  const len = dhcpLength(m);
  into.fill(OPT_PAD, p, at + len);
  return len;
}

/** The first option with `code`, if present. */
export const findOption = (m: Dhcp, code: number): Uint8Array | undefined =>
  m.options.find((o) => o.code === code)?.data;
