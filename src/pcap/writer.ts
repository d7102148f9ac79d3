/**
 * Classic pcap writer (the libpcap format, draft-ietf-opsawg-pcap §4–§5): a 24-byte file
 * header, then per packet a 16-byte record header and the frame. Written in the host's
 * byte order as libpcap does (readers detect it from the magic), microsecond timestamps,
 * LINKTYPE_ETHERNET (1), snaplen 262144 (tcpdump's default; every frame we carry fits, so
 * nothing is truncated).
 *
 * `encodePcapHeader` and `writePcapRecord` are pure; `PcapFileWriter` adds file output
 * through `CaptureFile`, the buffering both formats share: records reach the file at the end
 * of the event-loop turn that made them, and while more than PCAP_QUEUE_LIMIT_BYTES wait for
 * the disk, records are dropped and counted (`dropped`) rather than buffered without limit.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Magic for microsecond-resolution captures (draft-ietf-opsawg-pcap §4). */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
/** Magic for nanosecond-resolution captures. */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** LINKTYPE_ETHERNET: IEEE 802.3 frames without FCS (tcpdump.org/linktypes.html). */
export const LINKTYPE_ETHERNET = 1;
/** LINKTYPE_RAW: an IPv4 or IPv6 packet, no link header (tcpdump.org/linktypes.html). */
export const LINKTYPE_RAW = 101;
export const PCAP_SNAPLEN = 262_144;
export const PCAP_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;
/** Unwritten bytes a file writer holds before it drops records. */
export const PCAP_QUEUE_LIMIT_BYTES = 16 * 1024 * 1024;
/**
 * Unwritten bytes all capture files of the process hold together before they drop records:
 * with one file per session, 256 sessions at the per-file bound alone could hold 4 GiB.
 */
export const PCAP_TOTAL_QUEUE_LIMIT_BYTES = 64 * 1024 * 1024;
/** Bytes every CaptureFile holds and the disk has not taken yet (buffered or being written). */
let unwrittenBytesAll = 0;

const FILE = { MAGIC: 0, VERSION_MAJOR: 4, VERSION_MINOR: 6, THISZONE: 8, SIGFIGS: 12, SNAPLEN: 16, LINKTYPE: 20 } as const;
const REC = { TS_SEC: 0, TS_FRAC: 4, INCL_LEN: 8, ORIG_LEN: 12 } as const;

/** The 24-byte file header, little-endian, microsecond magic. */
export function encodePcapHeader(snaplen = PCAP_SNAPLEN, linkType = LINKTYPE_ETHERNET): Uint8Array {
  const b = new Uint8Array(PCAP_HEADER_LEN);
  const v = new DataView(b.buffer);
  v.setUint32(FILE.MAGIC, PCAP_MAGIC_US, true);
  v.setUint16(FILE.VERSION_MAJOR, 2, true);
  v.setUint16(FILE.VERSION_MINOR, 4, true);
  v.setInt32(FILE.THISZONE, 0, true);
  v.setUint32(FILE.SIGFIGS, 0, true);
  v.setUint32(FILE.SNAPLEN, snaplen, true);
  v.setUint32(FILE.LINKTYPE, linkType, true);
  return b;
}

/** Bytes one record takes (header + captured bytes, at most `snaplen`). */
export const pcapRecordLength = (frameLength: number, snaplen = PCAP_SNAPLEN): number => PCAP_RECORD_HEADER_LEN + Math.min(frameLength, snaplen);

/**
 * Writes one record (little-endian) at `at`; `timeUs` is wall-clock microseconds since the
 * Unix epoch. Returns the bytes written. Frames longer than `snaplen` are truncated, with
 * orig_len keeping the true length.
 */
export function writePcapRecord(timeUs: number, frame: Uint8Array, into: Uint8Array, at = 0, snaplen = PCAP_SNAPLEN): number {
  const incl = Math.min(frame.length, snaplen);
  const v = new DataView(into.buffer, into.byteOffset + at, PCAP_RECORD_HEADER_LEN);
  const us = Math.max(0, Math.floor(timeUs));
  v.setUint32(REC.TS_SEC, Math.floor(us / 1e6) >>> 0, true);
  v.setUint32(REC.TS_FRAC, us % 1e6, true);
  v.setUint32(REC.INCL_LEN, incl, true);
  v.setUint32(REC.ORIG_LEN, frame.length, true);
  into.set(frame.subarray(0, incl), at + PCAP_RECORD_HEADER_LEN);
  return PCAP_RECORD_HEADER_LEN + incl;
}

/** Wall-clock microseconds with sub-millisecond resolution (timeOrigin + monotonic now). */
export const wallClockUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

const CHUNK_BYTES = 64 * 1024;

/** Which way a captured frame went, seen from the guest's link: inbound = from the guest. */
export type CaptureDirection = 'inbound' | 'outbound';

/** Where a capture tap writes: a classic file, or one interface of a shared pcapng file. */
export interface CaptureSink {
  /** A path for logs (for a shared pcapng file: the file, plus the interface). */
  readonly path: string;
  /** Records accepted. */
  readonly packets: number;
  /** Records dropped because the disk fell behind or the file failed (the session's `pcap.dropped`). */
  readonly dropped: number;
  /** The file's first I/O error, if any. */
  readonly error: Error | undefined;
  /** Records one frame stamped with the current time. Never throws. */
  write(frame: Uint8Array, direction?: CaptureDirection): void;
  /** Resolves once this sink's records are handed to the file (a file of its own: closed). */
  close(): Promise<void>;
}

export interface CaptureFileOptions {
  /** Wall-clock microseconds, for tests. */
  readonly nowUs?: () => number;
  /** Unwritten bytes held before records are dropped (default PCAP_QUEUE_LIMIT_BYTES). */
  readonly queueLimitBytes?: number;
}

/**
 * A capture file being written: the buffering both formats share. Records are built in a
 * reused 64 KiB buffer and handed to the file at the end of the event-loop turn that made
 * them (a setImmediate armed by the turn's first record) — or, when a write is still on its
 * way, as soon as it completes — and at once when the buffer fills. So a daemon killed with
 * SIGKILL leaves in the file every record but those of its last moment (a turn, or one write).
 * The write queue is bounded: while more than `queueLimitBytes` are waiting for the disk,
 * new records are dropped and counted rather than buffered without limit.
 */
export class CaptureFile {
  readonly path: string;
  /** Records accepted (not necessarily on disk yet). */
  packets = 0;
  /** Records dropped because the disk fell behind or the file failed. */
  dropped = 0;
  /** The first I/O error, if any; once set, records are dropped. */
  error: Error | undefined;
  protected readonly nowUs: () => number;
  readonly #out: WriteStream;
  readonly #limit: number;
  /** Records of the current turn; `#used` bytes of it are filled. */
  #chunk = new Uint8Array(CHUNK_BYTES);
  #used = 0;
  #flushArmed = false;
  /** Writes handed to the stream and not yet completed. */
  #writing = 0;
  /** Bytes of those writes (counted in unwrittenBytesAll until each completes). */
  #writingBytes = 0;
  #closing: Promise<void> | undefined;

  /**
   * Writes `header` first. With `file` the file is already open (see PcapngFileWriter.open;
   * the stream owns the handle from here on — a bare fd number would let the handle be
   * garbage-collected and close the fd under the stream); without it `path` is opened
   * (truncated) asynchronously and an open failure lands in `error`.
   */
  constructor(path: string, header: Uint8Array, o: CaptureFileOptions = {}, file?: FileHandle) {
    this.path = path;
    this.nowUs = o.nowUs ?? wallClockUs;
    this.#limit = o.queueLimitBytes ?? PCAP_QUEUE_LIMIT_BYTES;
    this.#out = file === undefined ? createWriteStream(path, { flags: 'w', mode: 0o644 }) : createWriteStream(path, { fd: file });
    this.#out.on('error', (e) => {
      this.error ??= e;
    });
    this.#out.write(header);
  }

  /**
   * Space for one record of `length` bytes in `buffer`: its offset, or -1 when the record is
   * dropped (closing, failed, or the disk is behind). `force` skips the queue limit, for
   * blocks that must not be lost (a pcapng IDB: the packets after it refer to it by index).
   */
  protected reserve(length: number, force = false): number {
    if (this.#closing !== undefined || this.error !== undefined || (!force && (this.#out.writableLength + this.#used + length > this.#limit || unwrittenBytesAll + length > PCAP_TOTAL_QUEUE_LIMIT_BYTES))) {
      this.dropped++;
      return -1;
    }
    if (this.#used + length > this.#chunk.length) {
      this.flush();
      if (length > this.#chunk.length) this.#chunk = new Uint8Array(length);
    }
    const at = this.#used;
    this.#used += length;
    unwrittenBytesAll += length;
    this.packets++;
    if (!this.#flushArmed) {
      this.#flushArmed = true;
      setImmediate(this.#flushNow);
    }
    return at;
  }

  /** The buffer `reserve` hands out offsets into; valid until the next reserve. */
  protected get buffer(): Uint8Array {
    return this.#chunk;
  }

  readonly #flushNow = (): void => {
    this.#flushArmed = false;
    // While a write is on its way, the records wait for it to complete (#written): under load
    // one write carries many turns' records instead of one write per turn.
    if (this.#writing === 0) this.flush();
  };

  readonly #written = (bytes: number): void => {
    const n = Math.min(bytes, this.#writingBytes); // a callback after close() settled counts nothing
    this.#writingBytes -= n;
    unwrittenBytesAll -= n;
    this.#writing--;
    if (this.#writing === 0 && this.#used > 0 && !this.#flushArmed) this.flush();
  };

  /** Hands buffered records to the file now (a copy: the buffer is reused). */
  flush(): void {
    if (this.#used === 0) return;
    const records = this.#chunk.slice(0, this.#used);
    this.#used = 0;
    if (this.error !== undefined || this.#out.destroyed) {
      unwrittenBytesAll -= records.length;
      return;
    }
    this.#writing++;
    this.#writingBytes += records.length;
    this.#out.write(records, () => {
      this.#written(records.length);
    });
  }

  /** Flushes and closes the file; resolves once it is on disk (or failed: see `error`). */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((settle) => {
      // Whatever the stream did not report written is no longer held by this file.
      const resolve = (): void => {
        unwrittenBytesAll -= this.#writingBytes;
        this.#writingBytes = 0;
        settle();
      };
      this.flush();
      if (this.error !== undefined || this.#out.destroyed) {
        resolve();
        return;
      }
      this.#out.end(() => {
        resolve();
      });
      this.#out.once('error', () => {
        resolve();
      });
    });
    return this.#closing;
  }
}

/** A classic pcap file (one per session). Never throws from `write`; I/O errors are kept in `error`. */
export class PcapFileWriter extends CaptureFile implements CaptureSink {
  /** Opens (truncates) `path`; the header is written at once. `nowUs` is for tests. */
  constructor(path: string, nowUs: (() => number) | CaptureFileOptions = {}) {
    super(path, encodePcapHeader(), typeof nowUs === 'function' ? { nowUs } : nowUs);
  }

  /** Appends one frame stamped with the current wall-clock time (classic pcap has no direction). */
  write(frame: Uint8Array): void {
    const len = pcapRecordLength(frame.length);
    const at = this.reserve(len);
    if (at >= 0) writePcapRecord(this.nowUs(), frame, this.buffer, at);
  }
}
