/**
 * The sending half of a QEMU stream link, and of the WebSocket frames link: frames are
 * queued as records (a header — `-netdev stream`'s 4-byte big-endian length, or a WebSocket
 * frame header, `FrameHeader` — then the frame) in a reused output buffer and handed to the
 * socket in batches.
 *
 * - `alloc` lends the region where the next frame's bytes go, so the stack can build the
 *   frame in place; `append` of that region only writes its length prefix. Any other frame
 *   is copied there.
 * - `flush` hands the queued records to `write` as one view, and later frames go on filling
 *   the same buffer after them. A full buffer is replaced by a spare one, or a new one; it
 *   becomes a spare again once `write` has reported every view of it done (the socket no
 *   longer reads it). At most SPARE_BUFFERS are kept.
 *
 * Why: a fresh buffer per batch (and a fresh frame per segment before it) cost a 256 KiB
 * memset and an allocation per write; at gigabit rates that was a tenth of the daemon's CPU.
 */
import { put32 } from '../util/bytes.js';

/** Bytes of the length prefix. */
export const LENGTH_PREFIX_LEN = 4;
/** Size of one output buffer: several batches of a bulk transfer. */
const BUFFER_BYTES = 256 * 1024;
/** Written-out buffers kept for reuse; more are left to the GC. */
const SPARE_BUFFERS = 4;

interface OutputBuffer {
  readonly bytes: Uint8Array;
  /** Views handed to `write` and not reported done yet. */
  writes: number;
}

/** How a framing writes the header before each frame (a record's length prefix, a WebSocket frame header). */
export interface FrameHeader {
  /** Header bytes before a frame of `frameLength` bytes. */
  length(frameLength: number): number;
  /** Writes that header at `into[at]`. */
  write(into: Uint8Array, at: number, frameLength: number): void;
}

/** `-netdev stream`'s: the frame's length as a u32, big-endian. */
export const LENGTH_PREFIX: FrameHeader = {
  length: () => LENGTH_PREFIX_LEN,
  write: (into, at, n) => {
    put32(into, at, n);
  },
};

export class StreamOutput {
  readonly #write: (bytes: Uint8Array, done: () => void) => void;
  readonly #header: FrameHeader;
  /** Empty until the first frame: an idle link holds no buffer. */
  #buf: OutputBuffer = { bytes: new Uint8Array(0), writes: 0 };
  /** Queued records are `#buf.bytes[#start, #end)`. */
  #start = 0;
  #end = 0;
  /** The region `alloc` lent last, until the next `alloc` or `append`. */
  #lent: Uint8Array | undefined;
  readonly #spare: OutputBuffer[] = [];
  #discarded = false;

  /** `write(bytes, done)`: send `bytes` and call `done` once they are no longer needed. */
  constructor(write: (bytes: Uint8Array, done: () => void) => void, header: FrameHeader = LENGTH_PREFIX) {
    this.#write = write;
    this.#header = header;
  }

  /** Bytes queued and not yet handed to `write`. */
  get queued(): number {
    return this.#end - this.#start;
  }

  /** A region for the next frame's `length` bytes, zeroed unless `zeroed` is false. */
  alloc(length: number, zeroed = true): Uint8Array {
    const headerLength = this.#header.length(length);
    this.#reserve(headerLength + length);
    const at = this.#end + headerLength;
    const region = this.#buf.bytes.subarray(at, at + length);
    if (zeroed) region.fill(0);
    this.#lent = region;
    return region;
  }

  /** Queues `frame`: in place when it is the region `alloc` just lent, else as a copy. */
  append(frame: Uint8Array): void {
    const lent = this.#lent;
    this.#lent = undefined;
    const headerLength = this.#header.length(frame.length);
    if (frame !== lent) {
      this.#reserve(headerLength + frame.length);
      this.#buf.bytes.set(frame, this.#end + headerLength);
    }
    this.#header.write(this.#buf.bytes, this.#end, frame.length);
    this.#end += headerLength + frame.length;
  }

  /** Hands the queued records to `write`. */
  flush(): void {
    if (this.#end === this.#start) return;
    const buf = this.#buf;
    const view = buf.bytes.subarray(this.#start, this.#end);
    this.#start = this.#end;
    buf.writes++;
    this.#write(view, () => {
      buf.writes--;
      if (buf.writes === 0 && buf !== this.#buf && !this.#discarded && this.#spare.length < SPARE_BUFFERS && buf.bytes.length === BUFFER_BYTES) this.#spare.push(buf);
    });
  }

  /** Forgets queued records and spare buffers (the link is closed). */
  discard(): void {
    this.#discarded = true;
    this.#start = this.#end;
    this.#spare.length = 0;
  }

  /** Makes room for a record of `need` bytes (header and frame) after the queued ones. */
  #reserve(need: number): void {
    if (this.#end + need <= this.#buf.bytes.length) return;
    this.flush();
    if (this.#buf.writes > 0 || need > this.#buf.bytes.length) {
      this.#buf = (need <= BUFFER_BYTES ? this.#spare.pop() : undefined) ?? { bytes: new Uint8Array(Math.max(BUFFER_BYTES, need)), writes: 0 };
    }
    this.#start = 0;
    this.#end = 0;
  }
}
