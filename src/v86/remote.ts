/**
 * The emulator side of the daemon-served e1000 (`/e1000`, docs/e1000-protocol.md) for v86:
 * the guest's register accesses go to the daemon, which runs the model, and the daemon's DMA
 * is served from v86's memory.
 *
 * ## Theory of operation
 *
 * v86 calls a device's MMIO and port handlers synchronously and wants the value back at once,
 * but a register read is a round trip to the daemon. So v86 runs in a worker (a Node
 * `worker_threads` Worker or a browser Web Worker) and blocks in `Atomics.wait` during a read,
 * while the thread that created it — never blocked — holds the WebSocket. Two one-way paths
 * join them:
 *
 * - **worker → socket thread**: the worker posts encoded emulator records (writes, reads,
 *   DMA replies) on a MessagePort; the socket thread sends them unchanged. Posted writes are
 *   batched: they leave with the next read, after 64 records, or at the end of v86's current
 *   run slice (a microtask), whichever comes first.
 * - **socket → worker**: the socket thread writes every daemon message into a byte ring in a
 *   SharedArrayBuffer (4-byte length, then the bytes), bumps a sequence word and
 *   `Atomics.notify`s it. A blocked worker wakes, drains the ring and handles every record:
 *   DMA_READ answered from guest memory, DMA_WRITE into guest memory, IRQ to v86's PCI line,
 *   READ_REPLY ending the wait. A worker that is running v86 is not waiting: the socket thread
 *   also posts a `kick` on the port (one per drain, a flag word says whether one is pending),
 *   and the worker drains between v86's run slices. A message longer than the free space is
 *   written in pieces; the worker asks for more (`space`) after a drain when the writer said
 *   it was waiting. Memory on both sides is bounded by the ring (1 MiB) and the daemon's
 *   largest message.
 *
 * DMA_READs are served while a read waits, which is what the protocol's rule 4 asks of an
 * emulator: the daemon may need the guest's descriptors before it can answer. Because the
 * daemon serves records strictly in order, a read's reply arrives after every DMA_WRITE and
 * IRQ its earlier writes caused (rule 3), and the worker applies them in arrival order.
 *
 * **A daemon that does not answer.** A read waits at most `readTimeoutMs` (default 30 s);
 * then the device is dead: the read and every later one return all ones (what a PCI read of
 * a vanished function returns), writes are dropped, both counted. A socket that closes does
 * the same: the guest's driver sees its NIC gone rather than a hung CPU.
 */
import { encodeEmulatorRecords, decodeDaemonMessage, PROTOCOL_VERSION, type EmulatorRecord, type Space } from '../nic-e1000/ws-protocol.js';
import type { GuestMemory } from '../nic-e1000/memory.js';
import { Counters } from '../util/drops.js';

/** The parts of a MessagePort both sides use (Node's worker_threads one and the browser's). */
export interface PortLike {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  close(): void;
}

/**
 * What the worker needs to reach the daemon: handed from the socket thread to the worker
 * (`workerData`, or a `postMessage` with `port` in the transfer list).
 */
export interface E1000Channel {
  readonly sab: SharedArrayBuffer;
  readonly port: PortLike;
}

const RING = 1 << 20;
const HDR_BYTES = 64;
// Int32 words of the header.
const W = 0; // bytes written by the socket thread (wraps at 2^32)
const RD = 1; // bytes read by the worker
const SEQ = 2; // bumped (and notified) after every write
const KICK = 3; // 1 while a 'kick' is posted and not yet drained
const WANT = 4; // 1 while the socket thread holds bytes that did not fit
const CLOSED = 5; // 1 once the socket is gone for good

const KICK_MSG = 'kick';
const SPACE_MSG = 'space';
/** Posted writes leave after this many records even without a read. */
const MAX_BATCH = 64;

/** A WebSocket class (the browser's, Node ≥ 22's, or the `ws` package's). */
export type WebSocketCtor = abstract new (url: string, ...rest: never[]) => object;
interface Sock {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(): void;
}

export interface E1000BridgeOptions {
  /** The daemon's device endpoint, e.g. `ws://127.0.0.1:8080/e1000`. */
  readonly e1000_url: string;
  /** Default `globalThis.WebSocket` (absent in Node 20: pass the `ws` package's). */
  readonly WebSocket?: WebSocketCtor;
}

/** The socket thread's half: give `channel` to the worker, transferring `channel.port`. */
export interface E1000Bridge {
  readonly channel: E1000Channel;
  /** Counts: messages each way, bytes that waited for ring space, the close reason. */
  readonly stats: Counters;
  /** Resolves with the close code and reason when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/**
 * Opens the WebSocket to the daemon's `/e1000` and the channel a v86 worker attaches through
 * (`attachE1000(emulator, { e1000_channel })` in the worker). Call it on a thread that never
 * blocks (Node's main thread, a page's main thread).
 */
export function openE1000Bridge(options: E1000BridgeOptions): E1000Bridge {
  const Ws = (options.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket) as (new (url: string) => Sock) | undefined;
  if (Ws === undefined) throw new TypeError('openE1000Bridge: no WebSocket class: pass options.WebSocket (in Node 20, the ws package\'s)');
  if (typeof SharedArrayBuffer === 'undefined') throw new TypeError('openE1000Bridge: SharedArrayBuffer is unavailable (a browser page needs cross-origin isolation)');
  const sab = new SharedArrayBuffer(HDR_BYTES + RING);
  const hdr = new Int32Array(sab, 0, HDR_BYTES / 4);
  const ring = new Uint8Array(sab, HDR_BYTES, RING);
  const stats = new Counters();
  const { port1, port2 } = new MessageChannel() as unknown as { port1: PortLike; port2: PortLike };
  const pending: Uint8Array[] = [];
  let pendingAt = 0;
  const unsent: Uint8Array[] = [];
  let resolveClosed: (v: { code: number; reason: string }) => void = () => undefined;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  let done = false;

  /** Copies as much of the pending bytes as fits, then wakes the worker. */
  const pump = (): void => {
    let wrote = false;
    while (pending.length > 0) {
      const w = Atomics.load(hdr, W);
      const free = RING - ((w - Atomics.load(hdr, RD)) | 0);
      if (free === 0) break;
      const chunk = pending[0]!;
      const n = Math.min(free, chunk.length - pendingAt);
      const pos = w & (RING - 1);
      const first = Math.min(n, RING - pos);
      ring.set(chunk.subarray(pendingAt, pendingAt + first), pos);
      if (n > first) ring.set(chunk.subarray(pendingAt + first, pendingAt + n), 0);
      Atomics.store(hdr, W, (w + n) | 0);
      wrote = true;
      pendingAt += n;
      if (pendingAt === chunk.length) {
        pending.shift();
        pendingAt = 0;
      }
    }
    Atomics.store(hdr, WANT, pending.length > 0 ? 1 : 0);
    if (pending.length > 0) stats.count('v86.bridge-ring-full');
    if (!wrote) return;
    Atomics.add(hdr, SEQ, 1);
    Atomics.notify(hdr, SEQ);
    if (Atomics.exchange(hdr, KICK, 1) === 0) port1.postMessage(KICK_MSG);
  };
  const toWorker = (msg: Uint8Array): void => {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, msg.length, true);
    pending.push(len, msg);
    pump();
  };

  const ws = new Ws(options.e1000_url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    for (const m of unsent.splice(0)) ws.send(m);
  };
  ws.onmessage = (ev) => {
    const d = ev.data;
    stats.count('v86.bridge-from-daemon');
    if (d instanceof ArrayBuffer) toWorker(new Uint8Array(d));
    else if (ArrayBuffer.isView(d)) toWorker(new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
    else stats.count('v86.bridge-text-message');
  };
  ws.onerror = () => undefined; // onclose follows
  const finish = (code: number, reason: string): void => {
    if (done) return;
    done = true;
    Atomics.store(hdr, CLOSED, 1);
    Atomics.add(hdr, SEQ, 1);
    Atomics.notify(hdr, SEQ);
    port1.postMessage(KICK_MSG);
    resolveClosed({ code, reason });
  };
  ws.onclose = (ev) => {
    finish(ev.code ?? 1006, ev.reason ?? '');
  };
  port1.onmessage = (ev) => {
    const d = ev.data;
    if (d === SPACE_MSG) return pump();
    if (!(d instanceof Uint8Array) || done) return;
    stats.count('v86.bridge-to-daemon');
    if (ws.readyState === 1) ws.send(d);
    else unsent.push(d);
  };
  return {
    channel: { sab, port: port2 },
    stats,
    closed,
    close() {
      ws.close();
      finish(1000, 'closed');
      port1.close();
    },
  };
}

/** What the worker's remote device calls back into v86 for. */
export interface RemoteE1000Hooks {
  readonly memory: GuestMemory;
  setIrq(level: boolean): void;
}

/** Counters of the emulator side (traps as the guest made them, round trips as they cost). */
export interface RemoteE1000Stats {
  /** Register reads (each one a round trip) and posted writes, by space. */
  mmioReads: number;
  mmioWrites: number;
  ioReads: number;
  ioWrites: number;
  configReads: number;
  /** INTA# changes the daemon sent. */
  irqs: number;
  dmaReads: number;
  dmaReadBytes: number;
  dmaWrites: number;
  /** Messages posted towards the daemon. */
  messages: number;
}

/**
 * The e1000 as the worker sees it: the same access methods as the model (`(offset, size[,
 * value])`), a read blocking the thread until the daemon answers. Only for a thread that may
 * block (a worker).
 */
export class RemoteE1000 {
  readonly stats: RemoteE1000Stats = { mmioReads: 0, mmioWrites: 0, ioReads: 0, ioWrites: 0, configReads: 0, irqs: 0, dmaReads: 0, dmaReadBytes: 0, dmaWrites: 0, messages: 0 };
  readonly drops = new Counters();
  /** The station address the daemon uses (after the first read). */
  mac: Uint8Array | undefined;
  readonly #hdr: Int32Array;
  readonly #ring: Uint8Array;
  readonly #port: PortLike;
  readonly #hooks: RemoteE1000Hooks;
  readonly #timeoutMs: number;
  #batch: EmulatorRecord[] = [];
  #flushQueued = false;
  #nextId = 1;
  readonly #replies = new Map<number, number>();
  #dead = false;
  // The message being assembled from the ring.
  #lenBytes = new Uint8Array(4);
  #lenHave = 0;
  #msg: Uint8Array | undefined;
  #msgHave = 0;

  constructor(channel: E1000Channel, hooks: RemoteE1000Hooks, options: { readonly readTimeoutMs?: number; readonly mac?: Uint8Array } = {}) {
    this.#hdr = new Int32Array(channel.sab, 0, HDR_BYTES / 4);
    this.#ring = new Uint8Array(channel.sab, HDR_BYTES, RING);
    this.#port = channel.port;
    this.#hooks = hooks;
    this.#timeoutMs = options.readTimeoutMs ?? 30_000;
    this.#port.onmessage = (ev) => {
      if (ev.data === KICK_MSG) this.#drainAndFlush();
    };
    this.#batch.push({ op: 'hello', version: PROTOCOL_VERSION, mac: options.mac ?? new Uint8Array(6) });
  }

  /** True once the daemon stopped answering or the socket closed. */
  get dead(): boolean {
    return this.#dead;
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    this.stats.configReads++;
    return this.#read('config', offset, size);
  }
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.#write('config', offset, size, value);
  }
  mmioRead(offset: number, size: 1 | 2 | 4): number {
    this.stats.mmioReads++;
    return this.#read('mmio', offset, size);
  }
  mmioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.stats.mmioWrites++;
    this.#write('mmio', offset, size, value);
  }
  ioRead(offset: number, size: 1 | 2 | 4): number {
    this.stats.ioReads++;
    return this.#read('io', offset, size);
  }
  ioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.stats.ioWrites++;
    this.#write('io', offset, size, value);
  }

  /** Stops listening; the port closes. */
  close(): void {
    this.#dead = true;
    this.#port.onmessage = null;
    this.#port.close();
  }

  #write(space: Space, offset: number, size: 1 | 2 | 4, value: number): void {
    if (this.#dead) return this.drops.count('v86.e1000-dead-write');
    this.#batch.push({ op: 'write', space, offset, size, value: value >>> 0 });
    if (this.#batch.length >= MAX_BATCH) this.#flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.#flush();
      });
    }
  }

  #read(space: Space, offset: number, size: 1 | 2 | 4): number {
    const ones = size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    if (this.#dead) {
      this.drops.count('v86.e1000-dead-read');
      return ones;
    }
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    this.#batch.push({ op: 'read', space, id, offset, size });
    this.#flush();
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const seq = Atomics.load(this.#hdr, SEQ);
      this.#drain();
      this.#flush(); // DMA replies the drain produced
      const v = this.#replies.get(id);
      if (v !== undefined) {
        this.#replies.delete(id);
        return v;
      }
      const left = deadline - Date.now();
      if (Atomics.load(this.#hdr, CLOSED) === 1 || left <= 0 || this.#dead) {
        this.drops.count(Atomics.load(this.#hdr, CLOSED) === 1 ? 'v86.e1000-socket-closed' : 'v86.e1000-read-timeout');
        this.#dead = true;
        return ones;
      }
      Atomics.wait(this.#hdr, SEQ, seq, Math.min(left, 1000));
    }
  }

  #flush(): void {
    if (this.#batch.length === 0 || this.#dead) return;
    const bytes = encodeEmulatorRecords(this.#batch);
    this.#batch = [];
    this.stats.messages++;
    this.#port.postMessage(bytes, [bytes.buffer]);
  }

  #drainAndFlush(): void {
    this.#drain();
    this.#flush();
  }

  /** Takes every byte in the ring; handles each complete message. */
  #drain(): void {
    const hdr = this.#hdr;
    Atomics.store(hdr, KICK, 0);
    for (;;) {
      const r = Atomics.load(hdr, RD);
      const avail = (Atomics.load(hdr, W) - r) | 0;
      if (avail === 0) break;
      let used = 0;
      while (used < avail) {
        const pos = (r + used) & (RING - 1);
        const contiguous = Math.min(avail - used, RING - pos);
        if (this.#msg === undefined) {
          const n = Math.min(4 - this.#lenHave, contiguous);
          this.#lenBytes.set(this.#ring.subarray(pos, pos + n), this.#lenHave);
          this.#lenHave += n;
          used += n;
          if (this.#lenHave === 4) {
            this.#lenHave = 0;
            const len = new DataView(this.#lenBytes.buffer).getUint32(0, true);
            this.#msg = new Uint8Array(len);
            this.#msgHave = 0;
            if (len === 0) this.#msg = undefined;
          }
          continue;
        }
        const n = Math.min(this.#msg.length - this.#msgHave, contiguous);
        this.#msg.set(this.#ring.subarray(pos, pos + n), this.#msgHave);
        this.#msgHave += n;
        used += n;
        if (this.#msgHave === this.#msg.length) {
          const m = this.#msg;
          this.#msg = undefined;
          Atomics.store(hdr, RD, (r + used) | 0);
          this.#handle(m);
          break; // re-read the positions: handling may have taken a while
        }
      }
      Atomics.store(hdr, RD, (r + used) | 0);
    }
    if (Atomics.exchange(hdr, WANT, 0) === 1) this.#port.postMessage(SPACE_MSG);
  }

  #handle(message: Uint8Array): void {
    const records = decodeDaemonMessage(message);
    if (typeof records === 'string') {
      this.drops.count(records);
      return;
    }
    for (const r of records) {
      switch (r.op) {
        case 'read-reply':
          this.#replies.set(r.id, r.value);
          break;
        case 'dma-read': {
          this.stats.dmaReads++;
          this.stats.dmaReadBytes += r.len;
          this.#batch.push({ op: 'dma-reply', id: r.id, data: this.#hooks.memory.read(r.addr, r.len).slice() });
          break;
        }
        case 'dma-write':
          this.stats.dmaWrites++;
          this.#hooks.memory.write(r.addr, r.data);
          break;
        case 'irq':
          this.stats.irqs++;
          this.#hooks.setIrq(r.level);
          break;
        case 'hello-ack':
          this.mac = r.mac;
          break;
      }
    }
  }
}
