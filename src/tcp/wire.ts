/**
 * The TCP header (RFC 9293 §3.1). Parsing checks the checksum over the pseudo header,
 * the data offset and the options (src/tcp/options.ts); it interprets no flag
 * combination: that is the connection's job (src/tcp/conn.ts).
 *
 * Flags are the eight bits of byte 13 (CWR ECE URG ACK PSH RST SYN FIN). The four bits
 * between the data offset and CWR (reserved, and AE of RFC 3540/AccECN) are ignored on
 * receive and written as zero: we negotiate neither.
 */
import type { Drop } from '../util/drops.js';
import { put16, put32, u16, u32, u8 } from '../util/bytes.js';
import { finish, sum16 } from '../util/checksum.js';
import { NO_TCP_OPTIONS, parseTcpOptions, tcpOptionsLength, writeTcpOptions, type TcpOptions } from './options.js';

export type { TcpOptions } from './options.js';
export { parseTcpOptions, tcpOptionsLength, writeTcpOptions, NO_TCP_OPTIONS, TCP_MAX_OPTIONS_LEN } from './options.js';

/** The header without options. */
export const TCP_HEADER_LEN = 20;

/** RFC 9293 §3.1 control bits, plus ECE and CWR (RFC 3168 §6.1). */
export const TCP_FLAG = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 } as const;

const OFF = {
  SRC_PORT: 0, DST_PORT: 2, SEQ: 4, ACK: 8, DATA_OFFSET: 12, FLAGS: 13,
  WINDOW: 14, CHECKSUM: 16, URGENT: 18, OPTIONS: 20,
} as const;

/**
 * A TCP header without its payload: what `writeTcpHeader` writes. Data offset and checksum
 * are derived, never stored.
 */
export interface TcpHeader {
  /** 1..0xffff. */
  readonly srcPort: number;
  /** 1..0xffff. */
  readonly dstPort: number;
  /** u32 sequence number; compare with util/seq, never `<`. */
  readonly seq: number;
  /** u32 acknowledgment number; meaningful only with TCP_FLAG.ACK. */
  readonly ack: number;
  /** TCP_FLAG bits, 0..255. */
  readonly flags: number;
  /** The raw 16-bit window field, not scaled. */
  readonly window: number;
  /** The raw urgent pointer, 0..0xffff. */
  readonly urgent: number;
  readonly options: TcpOptions;
}

/** A TCP segment. Data offset and checksum are derived by writeTcp, never stored. */
export interface Tcp extends TcpHeader {
  /** The segment's data: a view, copy it before keeping it past this call. */
  readonly payload: Uint8Array;
}

/**
 * Parses a segment; `b` is exactly the IPv4 payload (TCP has no length field of its own).
 * `pseudo`: folded sum of source, destination and protocol (ipv4.pseudoSum).
 */
export function parseTcp(b: Uint8Array, pseudo: number): Tcp | Drop {
  const len = b.length;
  if (len < TCP_HEADER_LEN) return 'tcp.truncated';
  const headerLen = (u8(b, OFF.DATA_OFFSET) >>> 4) * 4;
  if (headerLen < TCP_HEADER_LEN) return 'tcp.bad-data-offset';
  if (headerLen > len) return 'tcp.truncated';
  if (sum16(b, 0, len, pseudo + len) !== 0xffff) return 'tcp.bad-checksum';
  const srcPort = u16(b, OFF.SRC_PORT);
  const dstPort = u16(b, OFF.DST_PORT);
  // Port 0 is reserved (RFC 6335 §6): nothing can connect to it or answer from it.
  if (srcPort === 0 || dstPort === 0) return 'tcp.zero-port';
  const options = headerLen === TCP_HEADER_LEN ? NO_TCP_OPTIONS : parseTcpOptions(b.subarray(OFF.OPTIONS, headerLen));
  if (typeof options === 'string') return options;
  return {
    srcPort,
    dstPort,
    seq: u32(b, OFF.SEQ),
    ack: u32(b, OFF.ACK),
    flags: u8(b, OFF.FLAGS),
    window: u16(b, OFF.WINDOW),
    urgent: u16(b, OFF.URGENT),
    options,
    payload: b.subarray(headerLen),
  };
}

/** Header and options (padded to 4, at most 40): where the payload starts. */
export const tcpHeaderLength = (h: TcpHeader): number => TCP_HEADER_LEN + tcpOptionsLength(h.options);

/** Header, options (padded to 4, at most 40) and payload. */
export const tcpLength = (t: Tcp): number => tcpHeaderLength(t) + t.payload.length;

/**
 * Writes the header and options at `into[at]`, every byte, with the checksum field zero;
 * returns tcpHeaderLength. For segments whose payload the caller writes in place (a
 * connection copies it straight from its send queue): write the payload after the header,
 * then `writeTcpChecksum`. `writeTcp` is the two together.
 */
export function writeTcpHeader(h: TcpHeader, into: Uint8Array, at = 0): number {
  const headerLen = TCP_HEADER_LEN + writeTcpOptions(h.options, into, at + OFF.OPTIONS);
  put16(into, at + OFF.SRC_PORT, h.srcPort);
  put16(into, at + OFF.DST_PORT, h.dstPort);
  put32(into, at + OFF.SEQ, h.seq);
  put32(into, at + OFF.ACK, h.ack);
  into[at + OFF.DATA_OFFSET] = (headerLen >>> 2) << 4;
  into[at + OFF.FLAGS] = h.flags & 0xff;
  put16(into, at + OFF.WINDOW, h.window);
  put16(into, at + OFF.CHECKSUM, 0);
  put16(into, at + OFF.URGENT, h.urgent);
  return headerLen;
}

/**
 * Fills in the checksum of the `len`-byte segment at `into[at]` (header from writeTcpHeader,
 * checksum field still zero, payload after it). `pseudo` as for parseTcp.
 */
export function writeTcpChecksum(into: Uint8Array, at: number, len: number, pseudo: number): void {
  put16(into, at + OFF.CHECKSUM, finish(sum16(into, at, at + len, pseudo + len)));
}

/** Writes the segment at `into[at]` with its data offset and checksum; returns tcpLength. */
export function writeTcp(t: Tcp, pseudo: number, into: Uint8Array, at = 0): number {
  const headerLen = writeTcpHeader(t, into, at);
  const len = headerLen + t.payload.length;
  into.set(t.payload, at + headerLen);
  writeTcpChecksum(into, at, len, pseudo);
  return len;
}
