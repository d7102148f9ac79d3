/**
 * Reads a WebSocket client's binary frames straight off the connection, for the frames link
 * (`ws-frames.ts`): one Ethernet frame per message, both ways, thousands of messages a second.
 *
 * Why not ws's own reader: for every message ws's `Receiver` (a Writable stream) runs its
 * state machine through several calls per frame, keeps a list of chunks, and emits
 * 'message' through an EventEmitter; on the guest → host path that cost more daemon CPU per
 * GB than the whole stream link. Here a frame that lies in one read (nearly all of them: Node
 * reads 64 KiB at a time) is unmasked in place and handed over as a view of that read, as the
 * stream link's deframer does; one that spans reads is gathered into a new buffer of its size.
 *
 * Only the one shape the fast path needs is read here: a final (FIN) binary frame (opcode 2),
 * masked (RFC 6455 §5.3: every client frame is), no RSV bits, 1 to `maxPayload` bytes. A
 * well-formed ping or pong (FIN, masked, at most 125 bytes) goes to ws's reader byte for
 * byte, which answers it as before; between frames that reader is at a frame boundary and
 * holds no state, so the two interleave frame by frame. Any other frame — close, text, an
 * empty or oversized message, a fragment, an unmasked frame, RSV bits — gives the connection
 * back to ws for good, from that frame's first byte: ws then answers it exactly as it always
 * did (the close handshake, 1003 through the link's 'message' listener, 1009, 1002), and
 * stops reading when it decides to (after a close frame or an error it removes its reader,
 * which it could not do while ours stood in front of it).
 *
 * Taking over: ws reads the socket with one 'data' listener it adds when the upgrade
 * completes, before the route's `accept` runs and before any byte is read (the socket starts
 * flowing on a later tick; bytes that came with the upgrade request are put back into the
 * socket and reach the new listener). `takeOver` swaps that listener for ours and keeps it to pass the
 * bytes ws must see; when the socket does not look like that (another ws version), it
 * leaves ws in charge and returns undefined.
 */
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

/** Unmasks `buffer` in place with the 4-byte `mask` (bufferutil's signature). */
type Unmask = (buffer: Uint8Array, mask: Uint8Array) => void;

/** Below this many bytes a JavaScript loop is cheaper than the call into bufferutil. */
const NATIVE_UNMASK_MIN = 32;

function unmaskJs(buffer: Uint8Array, mask: Uint8Array): void {
  const m0 = mask[0]!;
  const m1 = mask[1]!;
  const m2 = mask[2]!;
  const m3 = mask[3]!;
  const n = buffer.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    buffer[i] = buffer[i]! ^ m0;
    buffer[i + 1] = buffer[i + 1]! ^ m1;
    buffer[i + 2] = buffer[i + 2]! ^ m2;
    buffer[i + 3] = buffer[i + 3]! ^ m3;
  }
  for (; i < n; i++) buffer[i] = buffer[i]! ^ mask[i & 3]!;
}

/** bufferutil's native unmask when it is installed (an optional dependency), else undefined. */
function loadNativeUnmask(): Unmask | undefined {
  try {
    const m = createRequire(import.meta.url)('bufferutil') as { unmask?: Unmask };
    return typeof m.unmask === 'function' ? m.unmask : undefined;
  } catch {
    return undefined;
  }
}
const nativeUnmask = loadNativeUnmask();

/** Unmasks `payload` in place. */
export function unmask(payload: Uint8Array, mask: Uint8Array): void {
  if (nativeUnmask !== undefined && payload.length >= NATIVE_UNMASK_MIN) nativeUnmask(payload, mask);
  else unmaskJs(payload, mask);
}

/** The longest frame header: 2 bytes, 8 of extended length, 4 of mask. */
const MAX_HEADER_LEN = 14;
/** FIN + binary, the first byte of every fast-path frame; FIN + ping, FIN + pong. */
const FIN_BINARY = 0x82;
const FIN_PING = 0x89;
const FIN_PONG = 0x8a;
/** The largest control frame payload (RFC 6455 §5.5). */
const MAX_CONTROL_PAYLOAD = 125;

export class WsClientDeframer {
  readonly #maxPayload: number;
  readonly #onFrame: (frame: Buffer) => void;
  readonly #toWs: (bytes: Buffer) => void;
  readonly #giveBack: (rest: Buffer) => void;
  /** Header bytes of a frame whose header spans reads. */
  readonly #head = Buffer.alloc(MAX_HEADER_LEN);
  #headLen = 0;
  /** A fast-path frame spanning reads: its payload so far (its mask is in `#mask`). */
  #body: Buffer | undefined;
  #bodyLen = 0;
  /**
   * The current frame's mask, copied out of its header: four byte stores instead of a view
   * (an object for the GC) per frame.
   */
  readonly #mask = Buffer.alloc(4);
  /** Payload bytes of the current ping or pong that belong to ws's reader. */
  #owedToWs = 0;
  /** The connection is back on ws's reader: nothing more comes here. */
  #handedOff = false;

  /**
   * @param onFrame gets each binary message's payload, unmasked; the buffer is the caller's.
   * @param toWs passes the bytes of a ping or pong to ws's reader.
   * @param giveBack puts ws's reader back on the connection, in place of this one, and hands
   *   it `rest`, the bytes of this read from the first frame it must read on.
   */
  constructor(maxPayload: number, onFrame: (frame: Buffer) => void, toWs: (bytes: Buffer) => void, giveBack: (rest: Buffer) => void) {
    this.#maxPayload = maxPayload;
    this.#onFrame = onFrame;
    this.#toWs = toWs;
    this.#giveBack = giveBack;
  }

  /** True once the connection is back on ws's reader for good. */
  get handedOff(): boolean {
    return this.#handedOff;
  }

  /** Reads one chunk of the connection. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let at = 0;
    while (at < n) {
      if (this.#handedOff) return;
      if (this.#owedToWs > 0) {
        const k = Math.min(this.#owedToWs, n - at);
        this.#toWs(chunk.subarray(at, at + k));
        this.#owedToWs -= k;
        at += k;
        continue;
      }
      const body = this.#body;
      if (body !== undefined) {
        const k = Math.min(body.length - this.#bodyLen, n - at);
        body.set(chunk.subarray(at, at + k), this.#bodyLen);
        this.#bodyLen += k;
        at += k;
        if (this.#bodyLen === body.length) {
          this.#body = undefined;
          unmask(body, this.#mask);
          this.#onFrame(body);
        }
        continue;
      }
      if (this.#headLen > 0) {
        at = this.#continueHeader(chunk, at);
        continue;
      }
      const avail = n - at;
      const headerLen = avail >= 2 ? headerLength(chunk[at + 1]!) : MAX_HEADER_LEN;
      if (avail < headerLen) {
        chunk.copy(this.#head, 0, at, n);
        this.#headLen = avail;
        return;
      }
      at = this.#frame(chunk, at, headerLen, chunk, at + headerLen);
    }
  }

  /** Adds bytes of `chunk` from `at` to a header begun in an earlier read; returns the new offset. */
  #continueHeader(chunk: Buffer, at: number): number {
    const head = this.#head;
    if (this.#headLen < 2) head[this.#headLen++] = chunk[at++]!;
    if (this.#headLen < 2) return at;
    const headerLen = headerLength(head[1]!);
    const k = Math.min(headerLen - this.#headLen, chunk.length - at);
    chunk.copy(head, this.#headLen, at, at + k);
    this.#headLen += k;
    at += k;
    if (this.#headLen < headerLen) return at;
    this.#headLen = 0;
    return this.#frame(head, 0, headerLen, chunk, at);
  }

  /**
   * Handles a frame whose whole header is at `header[h..h+headerLen)` and whose payload starts
   * at `chunk[at]`; returns the offset in `chunk` after what it consumed.
   */
  #frame(header: Buffer, h: number, headerLen: number, chunk: Buffer, at: number): number {
    const b0 = header[h]!;
    const b1 = header[h + 1]!;
    const len7 = b1 & 0x7f;
    const length = len7 < 126 ? len7 : len7 === 126 ? header.readUInt16BE(h + 2) : header.readUInt32BE(h + 2) * 0x100000000 + header.readUInt32BE(h + 6);
    const masked = (b1 & 0x80) !== 0;
    if (b0 !== FIN_BINARY || !masked || length === 0 || length > this.#maxPayload) {
      const headerBytes = header === chunk ? chunk.subarray(h, h + headerLen) : Buffer.from(header.subarray(h, h + headerLen));
      if ((b0 === FIN_PING || b0 === FIN_PONG) && masked && length <= MAX_CONTROL_PAYLOAD) {
        this.#toWs(headerBytes);
        this.#owedToWs = length;
        return at;
      }
      // Anything else: ws reads on from this frame's first byte.
      this.#handedOff = true;
      this.#giveBack(header === chunk ? chunk.subarray(h) : Buffer.concat([headerBytes, chunk.subarray(at)]));
      return chunk.length;
    }
    const mask = this.#mask;
    const m = h + headerLen - 4;
    mask[0] = header[m]!;
    mask[1] = header[m + 1]!;
    mask[2] = header[m + 2]!;
    mask[3] = header[m + 3]!;
    const end = at + length;
    if (end <= chunk.length) {
      const payload = chunk.subarray(at, end);
      unmask(payload, mask);
      this.#onFrame(payload);
      return end;
    }
    const body = Buffer.allocUnsafe(length);
    chunk.copy(body, 0, at);
    this.#body = body;
    this.#bodyLen = chunk.length - at;
    return chunk.length;
  }
}

/** The header length of a client frame, from its second byte (RFC 6455 §5.2). */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

/**
 * Puts a deframer in front of ws's reader on `socket` (see the theory above); undefined when
 * the socket is not in the state this relies on, and ws keeps reading it alone.
 */
export function takeOver(socket: Duplex, maxPayload: number, onFrame: (frame: Buffer) => void): WsClientDeframer | undefined {
  const listeners = socket.listeners('data');
  if (listeners.length !== 1) return undefined;
  const wsRead = listeners[0] as (this: Duplex, chunk: Buffer) => void;
  const read = (chunk: Buffer): void => deframer.push(chunk);
  const deframer = new WsClientDeframer(
    maxPayload,
    onFrame,
    (bytes) => wsRead.call(socket, bytes),
    (rest) => {
      socket.removeListener('data', read);
      socket.on('data', wsRead);
      if (rest.length > 0) wsRead.call(socket, rest);
    },
  );
  socket.removeListener('data', wsRead);
  socket.on('data', read);
  return deframer;
}
