/**
 * Classic pcap writer (the libpcap format, draft-ietf-opsawg-pcap §4–§5): a 24-byte file
 * header, then per packet a 16-byte record header and the frame. Written in the host's
 * byte order as libpcap does (readers detect it from the magic), microsecond timestamps,
 * LINKTYPE_ETHERNET (1), snaplen 262144 (tcpdump's default; every frame we carry fits, so
 * nothing is truncated).
 *
 * `encodePcapHeader` and `writePcapRecord` are pure; `PcapFileWriter` adds buffered file
 * output: records collect in a 64 KiB buffer that is written when full, every second, and at
 * `close()`. If the disk falls behind by more than PCAP_QUEUE_LIMIT_BYTES, records are
 * dropped and counted (`dropped`) rather than buffered without limit.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

/** Magic for microsecond-resolution captures (draft-ietf-opsawg-pcap §4). */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
/** Magic for nanosecond-resolution captures. */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** LINKTYPE_ETHERNET: IEEE 802.3 frames without FCS (tcpdump.org/linktypes.html). */
export const LINKTYPE_ETHERNET = 1;
export const PCAP_SNAPLEN = 262_144;
export const PCAP_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;
/** Unwritten bytes a file writer holds before it drops records. */
export const PCAP_QUEUE_LIMIT_BYTES = 16 * 1024 * 1024;

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
const FLUSH_INTERVAL_MS = 1000;

/** A pcap file being written. Never throws from `write`; I/O errors are kept in `error`. */
export class PcapFileWriter {
  readonly path: string;
  /** Records written into the buffer (not necessarily on disk yet). */
  packets = 0;
  /** Records dropped because the disk fell behind or the file failed. */
  dropped = 0;
  /** The first I/O error, if any; once set, records are dropped. */
  error: Error | undefined;
  readonly #out: WriteStream;
  readonly #now: () => number;
  #chunk = new Uint8Array(CHUNK_BYTES);
  #used = 0;
  #closing: Promise<void> | undefined;
  readonly #timer: NodeJS.Timeout;

  /** Opens (truncates) `path`; the header is written at once. `nowUs` is for tests. */
  constructor(path: string, nowUs: () => number = wallClockUs) {
    this.path = path;
    this.#now = nowUs;
    this.#out = createWriteStream(path, { flags: 'w', mode: 0o644 });
    this.#out.on('error', (e) => {
      this.error ??= e;
    });
    this.#out.write(encodePcapHeader());
    this.#timer = setInterval(() => {
      this.flush();
    }, FLUSH_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Appends one frame stamped with the current wall-clock time. */
  write(frame: Uint8Array): void {
    if (this.#closing !== undefined || this.error !== undefined || this.#out.writableLength > PCAP_QUEUE_LIMIT_BYTES) {
      this.dropped++;
      return;
    }
    const len = pcapRecordLength(frame.length);
    if (this.#used + len > this.#chunk.length) {
      this.flush();
      if (len > this.#chunk.length) this.#chunk = new Uint8Array(len);
    }
    this.#used += writePcapRecord(this.#now(), frame, this.#chunk, this.#used);
    this.packets++;
  }

  /** Hands buffered records to the file. */
  flush(): void {
    if (this.#used === 0) return;
    const full = this.#chunk.subarray(0, this.#used);
    this.#chunk = new Uint8Array(CHUNK_BYTES); // the full one now belongs to the stream
    this.#used = 0;
    if (this.error === undefined) this.#out.write(full);
  }

  /** Flushes and closes the file; resolves once it is on disk (or failed: see `error`). */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      clearInterval(this.#timer);
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
