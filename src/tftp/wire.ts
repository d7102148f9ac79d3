/**
 * TFTP packet wire format (RFC 1350 §5, with RFC 2347's option extension).
 *
 * ```
 * RRQ/WRQ  | 01/02 | filename | 0 | mode | 0 | opt1 | 0 | value1 | 0 | …   (RFC 1350, RFC 2347 §2)
 * DATA     | 03 | block | data (0..blksize bytes)                            (RFC 1350)
 * ACK      | 04 | block |
 * ERROR    | 05 | code  | message | 0 |
 * OACK     | 06 | opt1 | 0 | value1 | 0 | …                                   (RFC 2347 §2)
 * ```
 *
 * Strings are bytes up to a NUL; they are read and written as latin1 (one character per
 * byte), so whatever a guest sends round-trips exactly and the server's own checks see every
 * byte (a name with bytes outside printable ASCII is refused there, not here). `data` is a
 * view into the received bytes. The parser never throws: a malformed packet is a `Drop`.
 */
import { put16, u16 } from '../util/bytes.js';
import type { Drop } from '../util/drops.js';

export const TFTP_OPCODE = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 §5 and RFC 2347 §2 (8: option negotiation refused). */
export const TFTP_ERROR = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** The most options one request may carry; RFC 2347 defines five, a request with more than this is refused. */
export const MAX_TFTP_OPTIONS = 16;

/** Every Drop the parser returns (the counter labels). */
export const TFTP_WIRE_DROPS = [
  'tftp.truncated',
  'tftp.unknown-opcode',
  'tftp.unterminated-string',
  'tftp.option-without-value',
  'tftp.too-many-options',
] as const satisfies readonly Drop[];
export type TftpWireDrop = (typeof TFTP_WIRE_DROPS)[number];

/** One option of a request or an OACK, as sent (RFC 2347: names are case-insensitive; the server lower-cases them). */
export interface TftpOption {
  readonly name: string;
  readonly value: string;
}

export interface TftpRequest {
  readonly op: 'rrq' | 'wrq';
  /** As sent, latin1. */
  readonly filename: string;
  readonly mode: string;
  readonly options: readonly TftpOption[];
}

export interface TftpData {
  readonly op: 'data';
  /** 0..65535 (the wire's 16 bits). */
  readonly block: number;
  /** View into the received bytes. */
  readonly data: Uint8Array;
}

export interface TftpAck {
  readonly op: 'ack';
  readonly block: number;
}

export interface TftpError {
  readonly op: 'error';
  readonly code: number;
  readonly message: string;
}

export interface TftpOack {
  readonly op: 'oack';
  readonly options: readonly TftpOption[];
}

export type TftpPacket = TftpRequest | TftpData | TftpAck | TftpError | TftpOack;

/** The NUL-terminated strings from `at` to the end; a Drop when the last is not terminated. */
function strings(b: Uint8Array, at: number, max: number): string[] | TftpWireDrop {
  const out: string[] = [];
  while (at < b.length) {
    if (out.length >= max) return 'tftp.too-many-options';
    const end = b.indexOf(0, at);
    if (end < 0) return 'tftp.unterminated-string';
    out.push(latin1(b, at, end));
    at = end + 1;
  }
  return out;
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function pairs(list: readonly string[]): TftpOption[] | TftpWireDrop {
  if (list.length % 2 !== 0) return 'tftp.option-without-value';
  const out: TftpOption[] = [];
  for (let i = 0; i < list.length; i += 2) out.push({ name: list[i]!, value: list[i + 1]! });
  return out;
}

export function parseTftp(b: Uint8Array): TftpPacket | TftpWireDrop {
  if (b.length < 2) return 'tftp.truncated';
  const op = u16(b, 0);
  switch (op) {
    case TFTP_OPCODE.RRQ:
    case TFTP_OPCODE.WRQ: {
      const s = strings(b, 2, 2 + 2 * MAX_TFTP_OPTIONS);
      if (typeof s === 'string') return s;
      if (s.length < 2) return 'tftp.truncated';
      const options = pairs(s.slice(2));
      if (typeof options === 'string') return options;
      return { op: op === TFTP_OPCODE.RRQ ? 'rrq' : 'wrq', filename: s[0]!, mode: s[1]!, options };
    }
    case TFTP_OPCODE.DATA:
      if (b.length < 4) return 'tftp.truncated';
      return { op: 'data', block: u16(b, 2), data: b.subarray(4) };
    case TFTP_OPCODE.ACK:
      // Some clients pad; the block number is all that counts.
      if (b.length < 4) return 'tftp.truncated';
      return { op: 'ack', block: u16(b, 2) };
    case TFTP_OPCODE.ERROR: {
      if (b.length < 4) return 'tftp.truncated';
      // The message's NUL is often missing in the wild (a bare code): take what is there.
      const end = b.indexOf(0, 4);
      return { op: 'error', code: u16(b, 2), message: latin1(b, 4, end < 0 ? b.length : end) };
    }
    case TFTP_OPCODE.OACK: {
      const s = strings(b, 2, 2 * MAX_TFTP_OPTIONS);
      if (typeof s === 'string') return s;
      const options = pairs(s);
      if (typeof options === 'string') return options;
      return { op: 'oack', options };
    }
    default:
      return 'tftp.unknown-opcode';
  }
}

const strLen = (s: string): number => s.length + 1;

export function tftpLength(p: TftpPacket): number {
  switch (p.op) {
    case 'rrq':
    case 'wrq':
      return 2 + strLen(p.filename) + strLen(p.mode) + p.options.reduce((n, o) => n + strLen(o.name) + strLen(o.value), 0);
    case 'data':
      return 4 + p.data.length;
    case 'ack':
      return 4;
    case 'error':
      return 4 + strLen(p.message);
    case 'oack':
      return 2 + p.options.reduce((n, o) => n + strLen(o.name) + strLen(o.value), 0);
  }
}

function putString(into: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) into[at + i] = s.charCodeAt(i) & 0xff;
  into[at + s.length] = 0;
  return at + s.length + 1;
}

/** Writes `p` at `into[at]`; returns its length (tftpLength). Strings are written as latin1 and must hold no NUL. */
export function writeTftp(p: TftpPacket, into: Uint8Array, at = 0): number {
  let i = at + 2;
  switch (p.op) {
    case 'rrq':
    case 'wrq':
      put16(into, at, p.op === 'rrq' ? TFTP_OPCODE.RRQ : TFTP_OPCODE.WRQ);
      i = putString(into, i, p.filename);
      i = putString(into, i, p.mode);
      for (const o of p.options) i = putString(into, putString(into, i, o.name), o.value);
      break;
    case 'data':
      put16(into, at, TFTP_OPCODE.DATA);
      put16(into, i, p.block);
      into.set(p.data, i + 2);
      i += 2 + p.data.length;
      break;
    case 'ack':
      put16(into, at, TFTP_OPCODE.ACK);
      put16(into, i, p.block);
      i += 2;
      break;
    case 'error':
      put16(into, at, TFTP_OPCODE.ERROR);
      put16(into, i, p.code);
      i = putString(into, i + 2, p.message);
      break;
    case 'oack':
      put16(into, at, TFTP_OPCODE.OACK);
      for (const o of p.options) i = putString(into, putString(into, i, o.name), o.value);
      break;
  }
  return i - at;
}
