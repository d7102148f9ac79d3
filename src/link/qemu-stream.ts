/**
 * QEMU `-netdev stream` (QEMU ≥ 7.2), server side: QEMU connects as a client
 * (`server=off`) over a unix socket or TCP, and each frame travels as a 4-byte big-endian
 * length followed by the frame (QEMU net/stream.c; the same framing as the older
 * `-netdev socket`). One connection is one guest.
 *
 *   qemu … -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/run/user/1000/tslirp/tslirp.sock
 *   qemu … -netdev stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=5555
 *
 * A length below 14 (no Ethernet header) or above MAX_FRAME_LEN (65538) cannot come from a
 * well-behaved peer and leaves no way to find the next frame boundary: the connection is
 * closed with a log line ('link.bad-frame-length'), and nothing else is affected.
 *
 * Reads land in slabs of 128 KiB (`ReadSlabs`, through `onread`) rather than in a fresh buffer
 * per read: the listener accepts connections paused and moves each one's handle into the
 * link's own socket, the only way to give an accepted connection an `onread`.
 *
 * Frames emitted in one tick leave in a single `socket.write` (length+frame, concatenated),
 * assembled in reused output buffers where the stack can build them in place (`allocFrame`;
 * see stream-output.ts). Once the socket holds more than TX_QUEUE_LIMIT_BYTES unsent,
 * further frames are dropped and counted ('link.tx-overflow').
 */
import { lstat, mkdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import { ETHERNET_HEADER_LEN } from '../ethernet/wire.js';
import { put32, u32 } from '../util/bytes.js';
import { Counters, type Drop } from '../util/drops.js';
import { LENGTH_PREFIX_LEN, StreamOutput } from './stream-output.js';
import {
  formatHostPort,
  MAX_FRAME_LEN,
  TX_QUEUE_LIMIT_BYTES,
  type AcceptLink,
  type GuestLink,
  type LinkHandler,
  type LinkLog,
  type Listener,
  type ListenerAddress,
} from './link.js';

/**
 * `-netdev stream`: each frame is preceded by its length as a u32, big-endian. A frame that
 * lies in one chunk is delivered as a view of it (the whole chunk when it is exactly one
 * frame); one that spans chunks is copied. Length prefixes are read in place: the only
 * allocation per frame is the frame's view.
 */
export class StreamDeframer {
  #chunks: Uint8Array[] = [];
  /** Where the unread bytes of `#chunks[0]` start. */
  #headAt = 0;
  #buffered = 0;
  /** Length of the frame being assembled; undefined while reading a length prefix. */
  #need: number | undefined;
  #failed = false;
  readonly #onFrame: (frame: Uint8Array) => void;
  readonly #maxFrame: number;

  constructor(onFrame: (frame: Uint8Array) => void, maxFrame = MAX_FRAME_LEN) {
    this.#onFrame = onFrame;
    this.#maxFrame = maxFrame;
  }

  /** Bytes received but not yet delivered as a frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Feeds bytes. A Drop means the stream cannot resynchronise: the caller closes the link;
   * later pushes return the same Drop and deliver nothing.
   */
  push(chunk: Uint8Array): Drop | undefined {
    if (this.#failed) return 'link.bad-frame-length';
    if (chunk.length === 0) return undefined;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need === undefined) {
        if (this.#buffered < LENGTH_PREFIX_LEN) return undefined;
        const n = this.#readLength();
        if (n < ETHERNET_HEADER_LEN || n > this.#maxFrame) {
          this.#failed = true;
          this.#chunks = [];
          this.#headAt = 0;
          this.#buffered = 0;
          return 'link.bad-frame-length';
        }
        this.#need = n;
      }
      if (this.#buffered < this.#need) return undefined;
      const frame = this.#take(this.#need);
      this.#need = undefined;
      this.#onFrame(frame);
    }
  }

  /** The next length prefix (`#buffered` holds one), read in place when it lies in one chunk. */
  #readLength(): number {
    const head = this.#chunks[0]!;
    const at = this.#headAt;
    if (head.length - at < LENGTH_PREFIX_LEN) return u32(this.#take(LENGTH_PREFIX_LEN), 0);
    this.#consumed(head, LENGTH_PREFIX_LEN);
    return u32(head, at);
  }

  /** Marks `n` bytes of the head chunk `head` read. */
  #consumed(head: Uint8Array, n: number): void {
    this.#buffered -= n;
    this.#headAt += n;
    if (this.#headAt === head.length) {
      this.#chunks.shift();
      this.#headAt = 0;
    }
  }

  /** A view when the n bytes lie in one chunk; a copy only when they span chunks. */
  #take(n: number): Uint8Array {
    const head = this.#chunks[0]!; // #buffered >= n guarantees a chunk
    const at = this.#headAt;
    if (head.length - at >= n) {
      const view = at === 0 && head.length === n ? head : head.subarray(at, at + n);
      this.#consumed(head, n);
      return view;
    }
    this.#buffered -= n;
    const out = new Uint8Array(n);
    for (let filled = 0; filled < n; ) {
      const c = this.#chunks[0]!;
      const from = this.#headAt;
      const k = Math.min(c.length - from, n - filled);
      out.set(c.subarray(from, from + k), filled);
      filled += k;
      this.#headAt += k;
      if (this.#headAt === c.length) {
        this.#chunks.shift();
        this.#headAt = 0;
      }
    }
    return out;
  }
}

/** Writes `frames` as length-prefixed records into one new buffer. */
export function frameStream(frames: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const f of frames) total += LENGTH_PREFIX_LEN + f.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const f of frames) {
    put32(out, at, f.length);
    out.set(f, at + LENGTH_PREFIX_LEN);
    at += LENGTH_PREFIX_LEN + f.length;
  }
  return out;
}

/** Bytes of one read slab. */
const SLAB_BYTES = 128 * 1024;
/** A read is offered at least this much room (Node's own read size, so a bulk transfer needs no more reads): a smaller rest of a slab is left unused. */
const MIN_READ_BYTES = 64 * 1024;

/**
 * Read buffers for a stream link's `onread`: each read lands in the unused rest of a 128 KiB
 * slab, and the next read goes on after it; once less than MIN_READ_BYTES (64 KiB) are left, a
 * new slab is started. Bytes once read are never overwritten, so the frames the deframer hands out as
 * views stay valid as long as anyone holds them, as with Node's own reads — which allocate a
 * 64 KiB buffer per read and shrink it to the bytes read (an allocation and a copy for every
 * small read: a request/response exchange is one small read per frame). Here a 70-byte frame
 * costs a view of a slab; a slab is allocated per 64 KiB or more received. A frame someone
 * keeps holds its whole slab.
 */
export class ReadSlabs {
  #slab = new Uint8Array(SLAB_BYTES);
  #used = 0;

  /** The buffer for the next read (onread's `buffer`). */
  readonly next = (): Uint8Array => {
    if (SLAB_BYTES - this.#used < MIN_READ_BYTES) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#used = 0;
    }
    return this.#slab.subarray(this.#used);
  };

  /** `n` bytes were read into `buf` (the last buffer `next` gave): a view of them. */
  took(buf: Uint8Array, n: number): Uint8Array {
    this.#used += n;
    return buf.subarray(0, n);
  }
}

/** Where a stream listener binds. */
export type StreamAddress = { readonly transport: 'unix'; readonly path: string } | { readonly transport: 'tcp'; readonly host: string; readonly port: number };

export interface StreamListenOptions {
  readonly accept: AcceptLink;
  readonly log: LinkLog;
  /** Per-socket unsent-bytes bound (default TX_QUEUE_LIMIT_BYTES). */
  readonly txQueueLimitBytes?: number;
}

/** One QEMU connection. */
class StreamLink implements GuestLink {
  readonly kind = 'stream' as const;
  readonly peer: string;
  readonly counters = new Counters();
  readonly #socket: net.Socket;
  readonly #limit: number;
  /** The connection's socket (for the listener's bookkeeping). */
  get socket(): net.Socket {
    return this.#socket;
  }
  readonly #output: StreamOutput;
  #handler: LinkHandler | undefined;
  /** Where the bytes of each read go, from attach() on. */
  #onChunk: (chunk: Uint8Array) => void = () => undefined;
  #closed = false;
  #closeReason = 'peer closed';

  /**
   * `handle`: an accepted connection's handle, taken out of the socket `net.Server` made for
   * it (paused, nothing read yet): the link's own socket reads into `ReadSlabs` (`onread`),
   * which `net.Server` cannot be asked to do.
   */
  constructor(handle: unknown, peer: string, limit: number) {
    const slabs = new ReadSlabs();
    const socket = new net.Socket({
      handle,
      allowHalfOpen: false,
      pauseOnConnect: true, // reading starts in attach()
      onread: {
        buffer: slabs.next,
        callback: (n: number, buf: Uint8Array) => {
          this.#onChunk(slabs.took(buf, n));
        },
      },
    } as net.SocketConstructorOpts);
    this.#socket = socket;
    this.peer = peer;
    this.#limit = limit;
    this.#output = new StreamOutput((bytes, done) => {
      socket.write(bytes, done);
    });
    // From the start, not from attach(): a peer may reset before the session exists.
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.#closeReason = `socket error ${e.code ?? e.message}`;
    });
  }

  attach(handler: LinkHandler, log: LinkLog): void {
    this.#handler = handler;
    const deframer = new StreamDeframer((f) => {
      if (!this.#closed) handler.frame(f);
    });
    this.#onChunk = (chunk: Uint8Array): void => {
      if (this.#closed) return;
      const drop = deframer.push(chunk);
      if (drop === undefined) return;
      this.counters.count(drop);
      log.warn({ peer: this.peer, drop }, 'stream: bad frame length, closing the connection');
      this.close(drop);
    };
    this.#socket.resume(); // accepted paused (pauseOnConnect): reading starts once someone listens
    this.#socket.on('close', () => {
      this.#finish(this.#closeReason);
    });
  }

  /** GuestLink.allocFrame: the region right where `send` would copy the frame. */
  allocFrame(length: number, zeroed = true): Uint8Array {
    return this.#output.alloc(length, zeroed);
  }

  send(frame: Uint8Array): void {
    if (this.#closed) return this.counters.count('link.tx-closed');
    if (this.#socket.writableLength + this.#output.queued + frame.length > this.#limit) return this.counters.count('link.tx-overflow');
    if (this.#output.queued === 0) queueMicrotask(this.#flush);
    this.#output.append(frame);
  }

  readonly #flush = (): void => {
    if (!this.#closed) this.#output.flush();
  };

  close(reason: string): void {
    if (this.#closed) return;
    this.#closeReason = reason;
    this.#output.flush();
    this.#socket.destroySoon(); // end() now, destroy once the queued bytes are written
    this.#finish(reason);
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#output.discard();
    this.#handler?.closed(reason);
  }

  /** For listener shutdown: drop the connection now. */
  destroy(reason: string): void {
    if (!this.#closed) {
      this.#output.flush();
      this.#finish(reason);
    }
    this.#socket.destroy();
  }
}

async function isSocketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      resolve(false);
    });
  });
}

/**
 * Removes a unix socket file left by a previous run: only when it is a socket and nobody
 * accepts connections on it. Throws when another process serves it, or the path is not a socket.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  if (await isSocketAlive(path)) throw new Error(`${path} is in use by another process`);
  await unlink(path);
}

/**
 * Listens for QEMU `-netdev stream` clients. A unix socket's directory is created (mode
 * 0700) when missing; its file is removed on close.
 */
export async function listenStream(addr: StreamAddress, o: StreamListenOptions): Promise<Listener> {
  const links = new Set<StreamLink>();
  const limit = o.txQueueLimitBytes ?? TX_QUEUE_LIMIT_BYTES;
  // Accepted paused, so nothing is read before the link's own socket takes the handle over.
  const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
    const peer = addr.transport === 'unix' ? `unix:${addr.path}` : formatHostPort(accepted.remoteAddress ?? '?', accepted.remotePort ?? 0);
    const handle = (accepted as unknown as { _handle: unknown })._handle;
    (accepted as unknown as { _handle: unknown })._handle = null;
    accepted.destroy();
    const link = new StreamLink(handle, peer, limit);
    const socket = link.socket;
    links.add(link);
    socket.once('close', () => links.delete(link));
    let handler: LinkHandler;
    try {
      handler = o.accept(link);
    } catch (e) {
      o.log.warn({ peer, err: e }, 'stream: session refused');
      socket.destroy();
      return;
    }
    link.attach(handler, o.log);
  });
  if (addr.transport === 'unix') {
    await mkdir(dirname(addr.path), { recursive: true, mode: 0o700 });
    await removeStaleSocket(addr.path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (addr.transport === 'unix') server.listen(addr.path, resolve);
    else server.listen({ host: addr.host, port: addr.port, exclusive: true }, resolve);
  });
  server.on('error', (e) => {
    o.log.warn({ err: e }, 'stream: listener error');
  });
  let address: ListenerAddress;
  if (addr.transport === 'unix') address = { kind: 'stream', transport: 'unix', path: addr.path };
  else {
    const a = server.address() as net.AddressInfo;
    address = { kind: 'stream', transport: 'tcp', host: a.address, port: a.port };
  }
  let closing: Promise<void> | undefined;
  return {
    address,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const l of links) l.destroy('listener closed');
      }).then(async () => {
        if (addr.transport === 'unix') await unlink(addr.path).catch(() => undefined);
      });
      return closing;
    },
  };
}
