/**
 * Reads capture files for the project's own tests and replay: classic pcap in either byte
 * order with microsecond or nanosecond timestamps (draft-ietf-opsawg-pcap §4–§5), and
 * pcapng (draft-ietf-opsawg-pcapng: Section Header, Interface Description, Enhanced Packet
 * and Simple Packet blocks; every other block is skipped; each section may change byte order).
 *
 * Never throws on garbage: anything malformed returns a Problem naming it
 * ('pcap.bad-magic', 'pcap.truncated', …). Packet data are views into the input.
 */
import type { Problem } from '../util/drops.js';
import { LINKTYPE_ETHERNET, PCAP_HEADER_LEN, PCAP_MAGIC_NS, PCAP_MAGIC_US, PCAP_RECORD_HEADER_LEN, PCAP_SNAPLEN } from './writer.js';

/** One packet of a capture. */
export interface CapturedPacket {
  /** Whole seconds since the Unix epoch. */
  readonly seconds: number;
  /** Nanoseconds within the second, 0 ≤ nanos < 1e9 (microsecond files: a multiple of 1000). */
  readonly nanos: number;
  /** The captured bytes: a view into the input. */
  readonly data: Uint8Array;
  /** The packet's length on the wire (≥ data.length when the capture truncated it). */
  readonly originalLength: number;
  /** pcapng interface index within its section; 0 in classic pcap. */
  readonly interfaceId: number;
  readonly linkType: number;
  /** pcapng epb_flags direction (inbound: received on the interface), when given. */
  readonly direction?: 'inbound' | 'outbound';
}

/** One capture interface (classic pcap has exactly one). */
export interface CaptureInterface {
  readonly linkType: number;
  readonly snaplen: number;
  /** pcapng if_name (tslirp: the session id), when given. */
  readonly name?: string;
  /** pcapng if_description (tslirp: link kind and peer), when given. */
  readonly description?: string;
}

/** A pcapng Custom Block (§4.8): its owner's Private Enterprise Number and data. */
export interface CapturedCustomBlock {
  readonly pen: number;
  /** Type 0x00000BAD (may be copied) rather than 0x40000BAD. */
  readonly copy: boolean;
  /** The custom data, padding included (the block does not say where its data ends): a view. */
  readonly data: Uint8Array;
}

/** A packet or a custom block, in file order: what tshark numbers as frames (1, 2, …). */
export type CaptureRecord = { readonly kind: 'packet'; readonly packet: CapturedPacket } | { readonly kind: 'custom'; readonly block: CapturedCustomBlock };

export interface Capture {
  readonly format: 'pcap' | 'pcapng';
  /** Byte order of the file (pcapng: of its first section). */
  readonly littleEndian: boolean;
  readonly interfaces: readonly CaptureInterface[];
  readonly packets: readonly CapturedPacket[];
  /**
   * With `ReadOptions.records`: packets and custom blocks in file order (record i is tshark's
   * frame i + 1), and the blocks skipped as unknown, counted by type (`0x00000005`: ISB).
   */
  readonly records?: readonly CaptureRecord[];
  readonly skippedBlocks?: Readonly<Record<string, number>>;
}

export interface ReadOptions {
  /** Also list packets and custom blocks in file order (`Capture.records`). */
  readonly records?: boolean;
}

const PCAP = { MAGIC: 0, VERSION_MAJOR: 4, SNAPLEN: 16, LINKTYPE: 20 } as const;
const REC = { TS_SEC: 0, TS_FRAC: 4, INCL_LEN: 8, ORIG_LEN: 12 } as const;
/** libpcap refuses records larger than this unless the header's snaplen is larger. */
const MAX_RECORD = PCAP_SNAPLEN;

const BLOCK = { SHB: 0x0a0d0d0a, IDB: 1, SPB: 3, EPB: 6, CB_COPY: 0x00000bad, CB_NOCOPY: 0x40000bad } as const;
/** Blocks this reader knows and skips on purpose: obsolete Packet Block, NRB, ISB, DSB (not counted as unknown). */
const KNOWN_SKIPPED: ReadonlySet<number> = new Set([2, 4, 5, 10]);
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT = { END: 0, IF_NAME: 2, IF_DESCRIPTION: 3, IF_TSRESOL: 9, IF_TSOFFSET: 14, EPB_FLAGS: 2 } as const;

const utf8 = new TextDecoder('utf-8', { fatal: false });

const swap32 = (x: number): number => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

/** Reads a whole capture; empty, truncated or malformed input gives a Problem. */
export function readCapture(bytes: Uint8Array, o: ReadOptions = {}): Capture | Problem {
  if (bytes.length < 4) return 'pcap.truncated';
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) === BLOCK.SHB) return readPcapng(bytes, v, o.records === true);
  const c = readPcap(bytes, v);
  if (typeof c === 'string' || o.records !== true) return c;
  return { ...c, records: c.packets.map((packet) => ({ kind: 'packet', packet })), skippedBlocks: {} };
}

function readPcap(bytes: Uint8Array, v: DataView): Capture | Problem {
  const magicLe = v.getUint32(PCAP.MAGIC, true);
  let le: boolean;
  if (magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS) le = true;
  else if (swap32(magicLe) === PCAP_MAGIC_US || swap32(magicLe) === PCAP_MAGIC_NS) le = false;
  else return 'pcap.bad-magic';
  const nano = (le ? magicLe : swap32(magicLe)) === PCAP_MAGIC_NS;
  if (bytes.length < PCAP_HEADER_LEN) return 'pcap.truncated';
  if (v.getUint16(PCAP.VERSION_MAJOR, le) !== 2) return 'pcap.bad-version';
  const snaplen = v.getUint32(PCAP.SNAPLEN, le);
  const linkType = v.getUint32(PCAP.LINKTYPE, le) & 0xffff; // upper bits: FCS length flags
  const packets: CapturedPacket[] = [];
  const maxIncl = Math.max(snaplen, MAX_RECORD);
  for (let at = PCAP_HEADER_LEN; at < bytes.length; ) {
    if (bytes.length - at < PCAP_RECORD_HEADER_LEN) return 'pcap.truncated';
    const incl = v.getUint32(at + REC.INCL_LEN, le);
    if (incl > maxIncl) return 'pcap.bad-record-length';
    const start = at + PCAP_RECORD_HEADER_LEN;
    if (bytes.length - start < incl) return 'pcap.truncated';
    const frac = v.getUint32(at + REC.TS_FRAC, le);
    if (frac >= (nano ? 1e9 : 1e6)) return 'pcap.bad-timestamp';
    packets.push({
      seconds: v.getUint32(at + REC.TS_SEC, le),
      nanos: nano ? frac : frac * 1000,
      data: bytes.subarray(start, start + incl),
      originalLength: v.getUint32(at + REC.ORIG_LEN, le),
      interfaceId: 0,
      linkType,
    });
    at = start + incl;
  }
  return { format: 'pcap', littleEndian: le, interfaces: [{ linkType, snaplen }], packets };
}

interface NgInterface extends CaptureInterface {
  /** Timestamp units per second. */
  readonly unitsPerSecond: bigint;
  readonly offsetSeconds: bigint;
}

interface IdbOptions {
  unitsPerSecond: bigint;
  offsetSeconds: bigint;
  name?: string;
  description?: string;
}

/** Parses an IDB's options: if_name, if_description, if_tsresol, if_tsoffset; a Problem on malformed options. */
function idbOptions(v: DataView, from: number, to: number, le: boolean): IdbOptions | Problem {
  let unitsPerSecond = 1_000_000n;
  let offsetSeconds = 0n;
  const text: { name?: string; description?: string } = {};
  for (let at = from; at + 4 <= to; ) {
    const code = v.getUint16(at, le);
    const len = v.getUint16(at + 2, le);
    if (code === OPT.END) break;
    if (at + 4 + len > to) return 'pcapng.bad-option';
    if (code === OPT.IF_TSRESOL) {
      if (len !== 1) return 'pcapng.bad-option';
      const r = v.getUint8(at + 4);
      const exp = BigInt(r & 0x7f);
      unitsPerSecond = (r & 0x80) === 0 ? 10n ** exp : 2n ** exp;
    } else if (code === OPT.IF_TSOFFSET) {
      if (len !== 8) return 'pcapng.bad-option';
      offsetSeconds = v.getBigInt64(at + 4, le);
    } else if (code === OPT.IF_NAME || code === OPT.IF_DESCRIPTION) {
      const value = utf8.decode(new Uint8Array(v.buffer, v.byteOffset + at + 4, len)).replace(/\0+$/, '');
      text[code === OPT.IF_NAME ? 'name' : 'description'] = value;
    }
    at += 4 + ((len + 3) & ~3);
  }
  return { unitsPerSecond, offsetSeconds, ...text };
}

/** epb_flags' direction among an EPB's options, if any; malformed options are ignored (the packet is still good). */
function epbDirection(v: DataView, from: number, to: number, le: boolean): 'inbound' | 'outbound' | undefined {
  for (let at = from; at + 4 <= to; ) {
    const code = v.getUint16(at, le);
    const len = v.getUint16(at + 2, le);
    if (code === OPT.END || at + 4 + len > to) return undefined;
    if (code === OPT.EPB_FLAGS && len === 4) {
      const d = v.getUint32(at + 4, le) & 3;
      return d === 1 ? 'inbound' : d === 2 ? 'outbound' : undefined;
    }
    at += 4 + ((len + 3) & ~3);
  }
  return undefined;
}

const TWO_32 = 4294967296;

/**
 * An EPB timestamp in seconds and nanoseconds. A double holds the 64-bit count exactly below
 * 2^53 (microseconds until the year 2255) and the common resolutions then need no BigInt,
 * which costs more than the rest of a packet's parse; other counts take the exact BigInt path.
 */
function timeOf(i: NgInterface, high: number, low: number): { seconds: number; nanos: number } {
  if (high < 0x200000 && i.offsetSeconds === 0n && (i.unitsPerSecond === 1_000_000n || i.unitsPerSecond === 1_000_000_000n)) {
    const t = high * TWO_32 + low;
    const u = i.unitsPerSecond === 1_000_000n ? 1e6 : 1e9;
    const rem = t % u; // exact: both operands are integers below 2^53
    return { seconds: (t - rem) / u, nanos: u === 1e6 ? rem * 1000 : rem };
  }
  const t = (BigInt(high) << 32n) | BigInt(low);
  const whole = t / i.unitsPerSecond;
  const frac = t % i.unitsPerSecond;
  return { seconds: Number(whole + i.offsetSeconds), nanos: Number((frac * 1_000_000_000n) / i.unitsPerSecond) };
}

function readPcapng(bytes: Uint8Array, v: DataView, withRecords: boolean): Capture | Problem {
  const packets: CapturedPacket[] = [];
  const records: CaptureRecord[] = [];
  const skipped: Record<string, number> = {};
  const all: CaptureInterface[] = [];
  let section: NgInterface[] = [];
  let le = true;
  let firstLe: boolean | undefined;
  for (let at = 0; at < bytes.length; ) {
    if (bytes.length - at < 12) return 'pcapng.truncated';
    const type = v.getUint32(at, true);
    if (type === BLOCK.SHB) {
      if (bytes.length - at < 28) return 'pcapng.truncated';
      const bom = v.getUint32(at + 8, true);
      if (bom === BYTE_ORDER_MAGIC) le = true;
      else if (swap32(bom) === BYTE_ORDER_MAGIC) le = false;
      else return 'pcapng.bad-byte-order-magic';
      firstLe ??= le;
      if (v.getUint16(at + 12, le) !== 1) return 'pcapng.bad-version';
      section = [];
    }
    const blockType = v.getUint32(at, le);
    const len = v.getUint32(at + 4, le);
    if (len < 12 || len % 4 !== 0) return 'pcapng.bad-block-length';
    if (len > bytes.length - at) return 'pcapng.truncated';
    if (v.getUint32(at + len - 4, le) !== len) return 'pcapng.bad-block-length';
    const end = at + len - 4; // start of the trailing length
    switch (blockType) {
      case BLOCK.IDB: {
        if (len < 20) return 'pcapng.bad-block-length';
        const opts = idbOptions(v, at + 16, end, le);
        if (typeof opts === 'string') return opts;
        const i: NgInterface = { linkType: v.getUint16(at + 8, le), snaplen: v.getUint32(at + 12, le), ...opts };
        section.push(i);
        all.push({
          linkType: i.linkType,
          snaplen: i.snaplen,
          ...(opts.name !== undefined && { name: opts.name }),
          ...(opts.description !== undefined && { description: opts.description }),
        });
        break;
      }
      case BLOCK.EPB: {
        if (len < 32) return 'pcapng.bad-block-length';
        const id = v.getUint32(at + 8, le);
        const i = section[id];
        if (i === undefined) return 'pcapng.unknown-interface';
        const cap = v.getUint32(at + 20, le);
        if (cap > end - (at + 28)) return 'pcapng.bad-block-length';
        const direction = epbDirection(v, at + 28 + ((cap + 3) & ~3), end, le);
        const { seconds, nanos } = timeOf(i, v.getUint32(at + 12, le), v.getUint32(at + 16, le));
        const data = bytes.subarray(at + 28, at + 28 + cap);
        const originalLength = v.getUint32(at + 24, le);
        // One object shape per kind, no spreads: the parse is a replay's hot path.
        const packet: CapturedPacket = direction === undefined
          ? { seconds, nanos, data, originalLength, interfaceId: id, linkType: i.linkType }
          : { direction, seconds, nanos, data, originalLength, interfaceId: id, linkType: i.linkType };
        packets.push(packet);
        if (withRecords) records.push({ kind: 'packet', packet });
        break;
      }
      case BLOCK.SPB: {
        if (len < 16) return 'pcapng.bad-block-length';
        const i = section[0];
        if (i === undefined) return 'pcapng.unknown-interface';
        const orig = v.getUint32(at + 8, le);
        let cap = Math.min(orig, end - (at + 12));
        if (i.snaplen !== 0) cap = Math.min(cap, i.snaplen);
        // SPBs carry no timestamp.
        const packet: CapturedPacket = { seconds: 0, nanos: 0, data: bytes.subarray(at + 12, at + 12 + cap), originalLength: orig, interfaceId: 0, linkType: i.linkType };
        packets.push(packet);
        if (withRecords) records.push({ kind: 'packet', packet });
        break;
      }
      case BLOCK.CB_COPY:
      case BLOCK.CB_NOCOPY: {
        if (len < 16) return 'pcapng.bad-block-length';
        if (withRecords) records.push({ kind: 'custom', block: { pen: v.getUint32(at + 8, le), copy: blockType === BLOCK.CB_COPY, data: bytes.subarray(at + 12, end) } });
        break;
      }
      default:
        // SHB handled above; NRB, ISB, DSB and obsolete blocks are skipped; others are counted.
        if (blockType !== BLOCK.SHB && !KNOWN_SKIPPED.has(blockType)) {
          const name = `0x${blockType.toString(16).padStart(8, '0')}`;
          skipped[name] = (skipped[name] ?? 0) + 1;
        }
        break;
    }
    at += len;
  }
  return { format: 'pcapng', littleEndian: firstLe ?? true, interfaces: all, packets, ...(withRecords && { records, skippedBlocks: skipped }) };
}

/** Whether every packet of `c` is an Ethernet frame. */
export const isEthernetCapture = (c: Capture): boolean => c.packets.every((p) => p.linkType === LINKTYPE_ETHERNET);
