/**
 * pcapng blocks as tslirp writes them (draft-ietf-opsawg-pcapng-02): a Section Header Block
 * (§4.1), one Interface Description Block per guest session (§4.2), one Enhanced Packet
 * Block per frame (§4.3), and the Custom Blocks (§4.8) of a recording (src/replay). Everything is written little-endian (readers take the byte order
 * from the SHB's magic); timestamps are microseconds since the Unix epoch, the default
 * if_tsresol, so IDBs carry no if_tsresol option.
 *
 * Shape as the other wire modules: a small record per block, `xLength(x)` and
 * `writeX(x, into, at)` into the caller's buffer, returning the bytes written. Derived
 * fields (block total lengths, option lengths, padding) are computed there, never stored.
 * Options are padded to 32 bits (§3.5) with zeros and end with opt_endofopt.
 *
 * Reading is src/pcap/reader.ts, which accepts every block written here.
 */
import { put16le, put32le } from '../util/bytes.js';

export const PCAPNG_BLOCK = { SHB: 0x0a0d0d0a, IDB: 1, EPB: 6, CB_COPY: 0x00000bad, CB_NOCOPY: 0x40000bad } as const;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** Option codes (§3.5, §4.1–§4.3). */
export const PCAPNG_OPT = { END: 0, COMMENT: 1, SHB_USERAPPL: 4, IF_NAME: 2, IF_DESCRIPTION: 3, EPB_FLAGS: 2 } as const;
/** epb_flags bits 0–1 (§4.3.1): the packet's direction relative to the interface. */
export const EPB_DIRECTION = { inbound: 1, outbound: 2 } as const;

/** Block type + block total length, and the trailing copy of the length. */
const BLOCK_OVERHEAD = 12;
const SHB_FIXED = 16; // byte-order magic, major, minor, section length
const IDB_FIXED = 8; // link type, reserved, snaplen
const EPB_FIXED = 20; // interface id, timestamp (2 words), captured length, original length
const OPT_HEADER = 4;

const pad4 = (n: number): number => (n + 3) & ~3;

const utf8 = new TextEncoder();

/** Section Header Block: one per file here. */
export interface Shb {
  /** shb_userappl, e.g. `tslirp 0.1.0`. */
  readonly userAppl?: string;
}

/** Interface Description Block: one per guest session. */
export interface Idb {
  /** LINKTYPE_* (1: Ethernet). */
  readonly linkType: number;
  /** Largest captured length; 0 means no limit. */
  readonly snaplen: number;
  /** if_name: tslirp uses the session id. */
  readonly name?: string;
  /** if_description: tslirp uses the link kind and peer (`ws 127.0.0.1:40000`). */
  readonly description?: string;
}

/** Enhanced Packet Block. */
export interface Epb {
  /** Index of the IDB in this section, in the order the IDBs were written. */
  readonly interfaceId: number;
  /** Microseconds since the Unix epoch (negative values are written as 0). */
  readonly timeUs: number;
  /** The captured bytes (all of them: tslirp never truncates). */
  readonly data: Uint8Array;
  /** Length on the wire; defaults to data.length. */
  readonly originalLength?: number | undefined;
  /** Seen from the interface (the guest's link): inbound = from the guest. */
  readonly direction?: keyof typeof EPB_DIRECTION | undefined;
  /** opt_comment (§3.5): text Wireshark shows with the packet (at most 65535 UTF-8 bytes; longer is cut). */
  readonly comment?: string | undefined;
}

/** Bytes of an option carrying `valueLength` bytes, padding included. */
const optionLength = (valueLength: number): number => OPT_HEADER + pad4(valueLength);

function writeOption(code: number, value: Uint8Array, into: Uint8Array, at: number): number {
  put16le(into, at, code);
  put16le(into, at + 2, value.length);
  into.set(value, at + OPT_HEADER);
  into.fill(0, at + OPT_HEADER + value.length, at + optionLength(value.length));
  return optionLength(value.length);
}

/** The options block: the given (code, value) pairs then opt_endofopt; nothing at all when there are none. */
function optionsLength(opts: readonly (readonly [number, Uint8Array])[]): number {
  if (opts.length === 0) return 0;
  return opts.reduce((n, [, v]) => n + optionLength(v.length), 0) + OPT_HEADER;
}

function writeOptions(opts: readonly (readonly [number, Uint8Array])[], into: Uint8Array, at: number): number {
  if (opts.length === 0) return 0;
  let n = 0;
  for (const [code, v] of opts) n += writeOption(code, v, into, at + n);
  put32le(into, at + n, 0); // opt_endofopt, length 0
  return n + OPT_HEADER;
}

function writeBlockFrame(type: number, total: number, into: Uint8Array, at: number): void {
  put32le(into, at, type);
  put32le(into, at + 4, total);
  put32le(into, at + total - 4, total);
}

const shbOptions = (s: Shb): [number, Uint8Array][] => (s.userAppl === undefined ? [] : [[PCAPNG_OPT.SHB_USERAPPL, utf8.encode(s.userAppl)]]);

export const shbLength = (s: Shb): number => BLOCK_OVERHEAD + SHB_FIXED + optionsLength(shbOptions(s));

/** Writes an SHB, version 1.0, section length -1 (unknown: the file grows while written). */
export function writeShb(s: Shb, into: Uint8Array, at = 0): number {
  const opts = shbOptions(s);
  const total = shbLength(s);
  writeBlockFrame(PCAPNG_BLOCK.SHB, total, into, at);
  put32le(into, at + 8, PCAPNG_BYTE_ORDER_MAGIC);
  put16le(into, at + 12, 1);
  put16le(into, at + 14, 0);
  put32le(into, at + 16, 0xffffffff);
  put32le(into, at + 20, 0xffffffff);
  writeOptions(opts, into, at + 24);
  return total;
}

function idbOptions(i: Idb): [number, Uint8Array][] {
  const opts: [number, Uint8Array][] = [];
  // Option values are at most 65535 bytes (a 16-bit length): longer text is cut.
  if (i.name !== undefined) opts.push([PCAPNG_OPT.IF_NAME, utf8.encode(i.name).subarray(0, 0xfff0)]);
  if (i.description !== undefined) opts.push([PCAPNG_OPT.IF_DESCRIPTION, utf8.encode(i.description).subarray(0, 0xfff0)]);
  return opts;
}

export const idbLength = (i: Idb): number => BLOCK_OVERHEAD + IDB_FIXED + optionsLength(idbOptions(i));

export function writeIdb(i: Idb, into: Uint8Array, at = 0): number {
  const total = idbLength(i);
  writeBlockFrame(PCAPNG_BLOCK.IDB, total, into, at);
  put16le(into, at + 8, i.linkType);
  put16le(into, at + 10, 0);
  put32le(into, at + 12, i.snaplen);
  writeOptions(idbOptions(i), into, at + 16);
  return total;
}

/** EPB options: epb_flags when a direction is given (4-byte value), then opt_endofopt. */
const EPB_FLAGS_OPTIONS_LEN = optionLength(4) + OPT_HEADER;

const commentBytes = (e: Epb): Uint8Array | undefined => (e.comment === undefined ? undefined : utf8.encode(e.comment).subarray(0, 0xfff0));

/** Bytes of an EPB's options: epb_flags and opt_comment when given, then opt_endofopt. */
function epbOptionsLength(e: Epb, comment: Uint8Array | undefined): number {
  if (comment === undefined) return e.direction === undefined ? 0 : EPB_FLAGS_OPTIONS_LEN;
  return optionLength(comment.length) + (e.direction === undefined ? 0 : optionLength(4)) + OPT_HEADER;
}

export const epbLength = (e: Epb): number => BLOCK_OVERHEAD + EPB_FIXED + pad4(e.data.length) + epbOptionsLength(e, commentBytes(e));

/** Writes an EPB; without a comment it allocates nothing (the hot path: one per captured frame). */
export function writeEpb(e: Epb, into: Uint8Array, at = 0): number {
  const comment = commentBytes(e);
  const total = BLOCK_OVERHEAD + EPB_FIXED + pad4(e.data.length) + epbOptionsLength(e, comment);
  writeBlockFrame(PCAPNG_BLOCK.EPB, total, into, at);
  const us = Math.max(0, Math.floor(e.timeUs));
  put32le(into, at + 8, e.interfaceId);
  put32le(into, at + 12, Math.floor(us / 0x1_0000_0000));
  put32le(into, at + 16, us % 0x1_0000_0000);
  put32le(into, at + 20, e.data.length);
  put32le(into, at + 24, e.originalLength ?? e.data.length);
  const dataAt = at + 28;
  into.set(e.data, dataAt);
  let o = dataAt + e.data.length;
  const padded = dataAt + pad4(e.data.length);
  into.fill(0, o, padded);
  o = padded;
  if (comment !== undefined) o += writeOption(PCAPNG_OPT.COMMENT, comment, into, o);
  if (e.direction !== undefined) {
    put16le(into, o, PCAPNG_OPT.EPB_FLAGS);
    put16le(into, o + 2, 4);
    put32le(into, o + 4, EPB_DIRECTION[e.direction]);
    o += 8;
  }
  if (comment !== undefined || e.direction !== undefined) put32le(into, o, 0); // opt_endofopt
  return total;
}

/**
 * Custom Block (§4.8): a Private Enterprise Number, then data only its owner reads, no
 * options. `copy: false` is type 0x40000BAD, "should not be copied" by a tool that rewrites
 * the file: the data may depend on the other blocks (a recording's entries do).
 */
export interface CustomBlock {
  readonly pen: number;
  readonly copy: boolean;
  /** The custom data, written in order (their total is the data length). */
  readonly parts: readonly Uint8Array[];
}

const CB_FIXED = 4; // the PEN

export const customBlockLength = (c: CustomBlock): number => BLOCK_OVERHEAD + CB_FIXED + pad4(c.parts.reduce((n, p) => n + p.length, 0));

export function writeCustomBlock(c: CustomBlock, into: Uint8Array, at = 0): number {
  const total = customBlockLength(c);
  writeBlockFrame(c.copy ? PCAPNG_BLOCK.CB_COPY : PCAPNG_BLOCK.CB_NOCOPY, total, into, at);
  put32le(into, at + 8, c.pen);
  let o = at + 12;
  for (const p of c.parts) {
    into.set(p, o);
    o += p.length;
  }
  into.fill(0, o, at + total - 4);
  return total;
}
