/**
 * The daemon side of the e1000 WebSocket device protocol (docs/e1000-protocol.md): one
 * session per connection, running an `E1000` whose guest memory lives in the emulator.
 *
 * The model is synchronous but the guest's memory is a round trip away. The session runs
 * each operation that may DMA (a TDT/TCTL write, a received frame) as a transaction: it
 * checkpoints the device, runs the operation against a per-operation cache of guest memory,
 * and if a read missed the cache it rolls the device back, fetches every missed range with
 * DMA_READ records (one round trip for all of them) and runs the operation again. Effects
 * (DMA writes, interrupt changes, transmitted frames) are released only when an attempt
 * completes, in the order the device produced them. A transmit typically takes two round
 * trips (descriptors, then buffers); a receive one (descriptors).
 */
import type { WebSocket } from 'ws';
import { systemClock, type Clock } from '../util/clock.js';
import { Counters, type Drop } from '../util/drops.js';
import { E1000 } from './device.js';
import type { GuestMemory } from './memory.js';
import { R } from './regs.js';
import type { RxResult } from './rx.js';
import { decodeEmulatorMessage, PROTOCOL_VERSION, RecordWriter, type EmulatorRecord } from './ws-protocol.js';

/** Where the session's frames go and come from (the stack, a link, a test). */
export interface FramePort {
  /** A frame the guest transmitted. */
  send(frame: Uint8Array): void;
  /** Registers the handler for frames towards the guest. */
  onFrame(handler: (frame: Uint8Array) => void): void;
}

export interface E1000SessionOptions {
  readonly clock?: Clock;
  /** Station address when the emulator's HELLO carries none (all zeros). */
  readonly mac?: Uint8Array;
  /** Frames waiting for the guest's ring before new ones are dropped (default 256). */
  readonly maxQueuedFrames?: number;
  /** How long to wait for a DMA_READ_REPLY before closing (default 10 s). */
  readonly dmaTimeoutMs?: number;
  /** Called once when the session ends, with the reason (a Drop name or 'closed'). */
  onClose?(reason: string): void;
}

/** WebSocket close code for protocol violations (RFC 6455 §7.4.1). */
export const CLOSE_PROTOCOL_ERROR = 1002;
const MAX_ATTEMPTS = 6;
/** A missed read of up to this many bytes (a descriptor) fetches a whole block of the ring. */
const DESCRIPTOR_PREFETCH = 1024;

type Effect =
  | { readonly k: 'write'; readonly addr: number; readonly data: Uint8Array }
  | { readonly k: 'irq'; readonly level: boolean }
  | { readonly k: 'frame'; readonly frame: Uint8Array }
  | { readonly k: 'rx-ready' };

/** Guest memory as known during one operation: fetched ranges plus the attempt's own writes. */
class DmaCache implements GuestMemory {
  readonly ranges: { addr: number; data: Uint8Array }[] = [];
  missing: { addr: number; len: number }[] = [];
  effects: Effect[] = [];

  read(addr: number, len: number): Uint8Array {
    if (len === 0) return new Uint8Array(0);
    const hit = this.ranges.find((r) => addr >= r.addr && addr + len <= r.addr + r.data.length);
    let out: Uint8Array;
    if (hit === undefined) {
      this.missing.push({ addr, len: len <= 16 ? DESCRIPTOR_PREFETCH : len });
      out = new Uint8Array(len);
    } else {
      out = hit.data.slice(addr - hit.addr, addr - hit.addr + len);
    }
    for (const e of this.effects) {
      if (e.k !== 'write' || e.addr >= addr + len || e.addr + e.data.length <= addr) continue;
      const from = Math.max(addr, e.addr);
      const to = Math.min(addr + len, e.addr + e.data.length);
      out.set(e.data.subarray(from - e.addr, to - e.addr), from - addr);
    }
    return out;
  }

  write(addr: number, bytes: Uint8Array): void {
    this.effects.push({ k: 'write', addr, data: bytes.slice() });
  }
}

/** One emulator connection driving one e1000. */
export class E1000WsSession {
  /** Protocol problems and queue overflows, by Drop name. */
  readonly drops = new Counters();
  #device: E1000;
  readonly #ws: WebSocket;
  readonly #port: FramePort;
  readonly #clock: Clock;
  readonly #options: E1000SessionOptions;
  readonly #maxQueued: number;
  readonly #out = new RecordWriter();
  #cache = new DmaCache();
  #helloDone = false;
  #closed = false;
  readonly #jobs: EmulatorRecord[] = [];
  readonly #rxQueue: Uint8Array[] = [];
  #rxBlocked = false;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #tickDue = false;
  #nextDmaId = 1;
  readonly #pendingDma = new Map<number, (data: Uint8Array) => void>();

  constructor(ws: WebSocket, port: FramePort, options: E1000SessionOptions = {}) {
    this.#ws = ws;
    this.#port = port;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#maxQueued = options.maxQueuedFrames ?? 256;
    this.#device = this.#makeDevice(options.mac);
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.#onMessage(isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined);
    });
    ws.on('close', () => {
      this.#shutdown('closed');
    });
    // ws reports protocol violations (unmasked, oversized frames) and resets here; with no
    // listener they would kill the process. 'close' follows and ends the session.
    ws.on('error', () => {
      this.drops.count('e1000-ws.socket-error');
    });
    port.onFrame((f) => {
      this.#onNetworkFrame(f);
    });
  }

  /** The device model (for metrics and tests). */
  get device(): E1000 {
    return this.#device;
  }

  #makeDevice(mac: Uint8Array | undefined): E1000 {
    return new E1000(
      {
        memory: { read: (a, n) => this.#cache.read(a, n), write: (a, b) => { this.#cache.write(a, b); } },
        clock: this.#clock,
        setIrq: (level) => this.#cache.effects.push({ k: 'irq', level }),
        emit: (frame) => this.#cache.effects.push({ k: 'frame', frame }),
        rxReady: () => this.#cache.effects.push({ k: 'rx-ready' }),
      },
      mac === undefined ? {} : { mac },
    );
  }

  // ---- input -------------------------------------------------------------------------------

  #onMessage(bytes: Uint8Array | undefined): void {
    if (this.#closed) return;
    if (bytes === undefined) return this.#fail('e1000-ws.text-message');
    const records = decodeEmulatorMessage(bytes);
    if (typeof records === 'string') return this.#fail(records);
    for (const r of records) {
      if (r.op === 'dma-reply') {
        const waiter = this.#pendingDma.get(r.id);
        if (waiter === undefined) return this.#fail('e1000-ws.unexpected-dma-reply');
        this.#pendingDma.delete(r.id);
        waiter(r.data);
      } else {
        this.#jobs.push(r);
      }
    }
    this.#kick();
  }

  #onNetworkFrame(frame: Uint8Array): void {
    if (this.#closed) return;
    if (this.#rxQueue.length >= this.#maxQueued) {
      this.drops.count('e1000-ws.rx-queue-full');
      return;
    }
    this.#rxQueue.push(frame);
    this.#kick();
  }

  #kick(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    void this.#run().then(
      () => { this.#running = false; },
      (e: unknown) => {
        this.#running = false;
        this.drops.count('e1000-ws.internal-error');
        this.#fail(e instanceof Error && e.message.startsWith('e1000-ws.') ? (e.message as Drop) : 'e1000-ws.internal-error');
      },
    );
  }

  /** Processes queued records, then queued frames, until both are empty or RX is blocked. */
  async #run(): Promise<void> {
    while (!this.#closed) {
      if (this.#tickDue) {
        this.#tickDue = false;
        this.#direct(() => { this.#device.advance(); });
        continue;
      }
      const r = this.#jobs.shift();
      if (r !== undefined) {
        await this.#record(r);
        continue;
      }
      if (this.#rxQueue.length > 0 && !this.#rxBlocked && this.#helloDone) {
        const frame = this.#rxQueue[0]!;
        const result: RxResult = await this.#transaction(() => this.#device.receiveFrame(frame));
        if (result === 'busy') this.#rxBlocked = true;
        else this.#rxQueue.shift();
        continue;
      }
      break;
    }
    this.#flush();
    this.#rearm();
  }

  async #record(r: EmulatorRecord): Promise<void> {
    if (!this.#helloDone) {
      if (r.op !== 'hello') {
        this.#fail('e1000-ws.no-hello');
        return;
      }
      if (r.version !== PROTOCOL_VERSION) {
        this.#fail('e1000-ws.version');
        return;
      }
      if (r.mac.some((x) => x !== 0)) this.#device = this.#makeDevice(r.mac);
      this.#helloDone = true;
      this.#out.helloAck(this.#device.mac);
      return;
    }
    const d = this.#device;
    switch (r.op) {
      case 'hello':
        this.#fail('e1000-ws.duplicate-hello');
        return;
      case 'reset':
        this.#direct(() => { d.reset(); });
        return;
      case 'dma-reply':
        return; // handled on arrival
      case 'read': {
        const value = this.#direct(() =>
          r.space === 'config' ? d.configRead(r.offset, r.size) : r.space === 'mmio' ? d.mmioRead(r.offset, r.size) : d.ioRead(r.offset, r.size));
        this.#out.readReply(r.id, value);
        return;
      }
      case 'write': {
        const off = r.offset & 0x1fffc;
        const mayDma = (r.space === 'mmio' && (off === R.TDT || off === R.TCTL)) ||
          (r.space === 'io' && (r.offset & ~3) === 4 && ((d.ioAddr & 0x1fffc) === R.TDT || (d.ioAddr & 0x1fffc) === R.TCTL));
        const op = (): void => {
          if (r.space === 'config') d.configWrite(r.offset, r.size, r.value);
          else if (r.space === 'mmio') d.mmioWrite(r.offset, r.size, r.value);
          else d.ioWrite(r.offset, r.size, r.value);
        };
        if (mayDma) await this.#transaction(op);
        else this.#direct(op);
        return;
      }
    }
  }

  /** Runs an operation that cannot DMA: effects are released at once. */
  #direct<T>(fn: () => T): T {
    this.#cache = new DmaCache();
    const v = fn();
    if (this.#cache.missing.length > 0) this.drops.count('e1000-ws.unexpected-dma');
    this.#commit(this.#cache.effects);
    return v;
  }

  /** Runs `fn` until its DMA reads all hit the cache (see the module comment). */
  async #transaction<T>(fn: () => T): Promise<T> {
    const cache = new DmaCache();
    for (let attempt = 1; ; attempt++) {
      const cp = this.#device.checkpoint();
      cache.missing = [];
      cache.effects = [];
      this.#cache = cache;
      const v = fn();
      if (cache.missing.length === 0 || attempt >= MAX_ATTEMPTS || this.#closed) {
        if (cache.missing.length > 0) this.drops.count('e1000-ws.dma-gave-up');
        this.#commit(cache.effects);
        return v;
      }
      this.#device.rollback(cp);
      const fetched = await this.#fetch(cache.missing);
      cache.ranges.push(...fetched);
    }
  }

  #commit(effects: readonly Effect[]): void {
    for (const e of effects) {
      switch (e.k) {
        case 'write': this.#out.dmaWrite(e.addr, e.data); break;
        case 'irq': this.#out.irq(e.level); break;
        case 'frame': this.#port.send(e.frame); break;
        case 'rx-ready': this.#rxBlocked = false; break;
      }
    }
  }

  #fetch(missing: readonly { addr: number; len: number }[]): Promise<{ addr: number; data: Uint8Array }[]> {
    const asks = missing.map(({ addr, len }) => {
      const id = this.#nextDmaId++ >>> 0;
      this.#out.dmaRead(id, addr, len);
      return new Promise<{ addr: number; data: Uint8Array }>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error('e1000-ws.dma-timeout')); }, this.#options.dmaTimeoutMs ?? 10_000);
        this.#pendingDma.set(id, (data) => {
          clearTimeout(timer);
          if (data.length !== len) reject(new Error('e1000-ws.dma-reply-length'));
          else resolve({ addr, data: data.slice() });
        });
      });
    });
    this.#flush();
    return Promise.all(asks);
  }

  #flush(): void {
    if (this.#out.length === 0 || this.#closed) return;
    this.#ws.send(this.#out.take());
  }

  /** One timer per session, re-armed from the device's next deadline. */
  #rearm(): void {
    clearTimeout(this.#timer);
    const at = this.#device.nextDeadline();
    if (at === undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#tickDue = true;
      this.#kick();
    }, Math.max(0, at - this.#clock.now()));
  }

  #fail(reason: Drop): void {
    this.drops.count(reason);
    if (!this.#closed) this.#ws.close(CLOSE_PROTOCOL_ERROR, reason);
    this.#shutdown(reason);
  }

  #shutdown(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#rxQueue.length = 0;
    this.#jobs.length = 0;
    this.#options.onClose?.(reason);
  }
}

/** Mounts an e1000 device session on an accepted WebSocket (path `/e1000`). */
export function attachE1000Device(ws: WebSocket, port: FramePort, options: E1000SessionOptions = {}): E1000WsSession {
  return new E1000WsSession(ws, port, options);
}
