/**
 * The e1000 WebSocket device protocol, version 1 (docs/e1000-protocol.md): an emulator
 * forwards PCI configuration, MMIO and I/O accesses of its e1000 slot to the daemon and
 * serves the daemon's DMA; the daemon runs the device model and drives INTA#.
 *
 * Every WebSocket message is binary and holds one or more records back to back. A record is
 * an opcode byte followed by fixed little-endian fields (and, for DMA data, the bytes).
 * Decoding never throws: a malformed message yields a `Drop` and the session closes.
 */
import type { Drop } from '../util/drops.js';

export const PROTOCOL_VERSION = 1;
/** Largest DMA transfer in one record (a TSO buffer is at most 64 KiB). */
export const MAX_DMA_LEN = 0x10000;

/** Opcodes. 0x0_/0x1_: emulator → daemon; 0x8_/0x9_: daemon → emulator. */
export const OP = {
  HELLO: 0x01,
  CFG_READ: 0x10,
  CFG_WRITE: 0x11,
  MMIO_READ: 0x12,
  MMIO_WRITE: 0x13,
  IO_READ: 0x14,
  IO_WRITE: 0x15,
  DMA_READ_REPLY: 0x16,
  RESET: 0x17,
  HELLO_ACK: 0x81,
  READ_REPLY: 0x90,
  DMA_READ: 0x91,
  DMA_WRITE: 0x92,
  IRQ: 0x93,
} as const;

/** Access spaces of the read/write records. */
export type Space = 'config' | 'mmio' | 'io';

/** A decoded emulator → daemon record. */
export type EmulatorRecord =
  | { readonly op: 'hello'; readonly version: number; readonly mac: Uint8Array }
  | { readonly op: 'read'; readonly space: Space; readonly id: number; readonly offset: number; readonly size: 1 | 2 | 4 }
  | { readonly op: 'write'; readonly space: Space; readonly offset: number; readonly size: 1 | 2 | 4; readonly value: number }
  | { readonly op: 'dma-reply'; readonly id: number; readonly data: Uint8Array }
  | { readonly op: 'reset' };

/** A decoded daemon → emulator record (the emulator side, and tests, decode these). */
export type DaemonRecord =
  | { readonly op: 'hello-ack'; readonly version: number; readonly mac: Uint8Array }
  | { readonly op: 'read-reply'; readonly id: number; readonly value: number }
  | { readonly op: 'dma-read'; readonly id: number; readonly addr: number; readonly len: number }
  | { readonly op: 'dma-write'; readonly addr: number; readonly data: Uint8Array }
  | { readonly op: 'irq'; readonly level: boolean };

const u16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
const isSize = (n: number): n is 1 | 2 | 4 => n === 1 || n === 2 || n === 4;

/** Fixed record lengths (opcode byte included); DMA records add their data length. */
export const RECORD_LEN = {
  [OP.HELLO]: 8,
  [OP.CFG_READ]: 8,
  [OP.CFG_WRITE]: 8,
  [OP.MMIO_READ]: 10,
  [OP.MMIO_WRITE]: 10,
  [OP.IO_READ]: 8,
  [OP.IO_WRITE]: 8,
  [OP.DMA_READ_REPLY]: 9,
  [OP.RESET]: 1,
  [OP.HELLO_ACK]: 8,
  [OP.READ_REPLY]: 9,
  [OP.DMA_READ]: 17,
  [OP.DMA_WRITE]: 13,
  [OP.IRQ]: 2,
} as const;

/** Decodes one emulator → daemon message. */
export function decodeEmulatorMessage(b: Uint8Array): EmulatorRecord[] | Drop {
  const out: EmulatorRecord[] = [];
  if (b.length === 0) return 'e1000-ws.empty-message';
  let at = 0;
  while (at < b.length) {
    const op = b[at]!;
    const need = (RECORD_LEN as Record<number, number | undefined>)[op];
    if (need === undefined || op >= 0x80) return 'e1000-ws.bad-opcode';
    if (at + need > b.length) return 'e1000-ws.truncated';
    switch (op) {
      case OP.HELLO:
        out.push({ op: 'hello', version: b[at + 1]!, mac: b.slice(at + 2, at + 8) });
        break;
      case OP.CFG_READ: case OP.IO_READ: {
        const size = b[at + 7]!;
        if (!isSize(size)) return 'e1000-ws.bad-size';
        out.push({ op: 'read', space: op === OP.CFG_READ ? 'config' : 'io', id: u32(b, at + 1), offset: u16(b, at + 5), size });
        break;
      }
      case OP.CFG_WRITE: case OP.IO_WRITE: {
        const size = b[at + 3]!;
        if (!isSize(size)) return 'e1000-ws.bad-size';
        out.push({ op: 'write', space: op === OP.CFG_WRITE ? 'config' : 'io', offset: u16(b, at + 1), size, value: u32(b, at + 4) });
        break;
      }
      case OP.MMIO_READ: {
        const size = b[at + 9]!;
        if (!isSize(size)) return 'e1000-ws.bad-size';
        out.push({ op: 'read', space: 'mmio', id: u32(b, at + 1), offset: u32(b, at + 5), size });
        break;
      }
      case OP.MMIO_WRITE: {
        const size = b[at + 5]!;
        if (!isSize(size)) return 'e1000-ws.bad-size';
        out.push({ op: 'write', space: 'mmio', offset: u32(b, at + 1), size, value: u32(b, at + 6) });
        break;
      }
      case OP.DMA_READ_REPLY: {
        const len = u32(b, at + 5);
        if (len > MAX_DMA_LEN) return 'e1000-ws.dma-too-long';
        if (at + need + len > b.length) return 'e1000-ws.truncated';
        out.push({ op: 'dma-reply', id: u32(b, at + 1), data: b.subarray(at + need, at + need + len) });
        at += len;
        break;
      }
      case OP.RESET:
        out.push({ op: 'reset' });
        break;
      default:
        return 'e1000-ws.bad-opcode';
    }
    at += need;
  }
  return out;
}

/** Accumulates daemon → emulator records into one message. */
export class RecordWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): number {
    if (this.#len + n > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    const at = this.#len;
    this.#len += n;
    return at;
  }

  #u32(at: number, v: number): void {
    const b = this.#buf;
    b[at] = v & 0xff;
    b[at + 1] = (v >>> 8) & 0xff;
    b[at + 2] = (v >>> 16) & 0xff;
    b[at + 3] = (v >>> 24) & 0xff;
  }

  #u64(at: number, v: number): void {
    this.#u32(at, v % 2 ** 32);
    this.#u32(at + 4, Math.floor(v / 2 ** 32));
  }

  helloAck(mac: Uint8Array): void {
    const at = this.#reserve(8);
    this.#buf[at] = OP.HELLO_ACK;
    this.#buf[at + 1] = PROTOCOL_VERSION;
    this.#buf.set(mac.subarray(0, 6), at + 2);
  }

  readReply(id: number, value: number): void {
    const at = this.#reserve(9);
    this.#buf[at] = OP.READ_REPLY;
    this.#u32(at + 1, id);
    this.#u32(at + 5, value >>> 0);
  }

  dmaRead(id: number, addr: number, len: number): void {
    const at = this.#reserve(17);
    this.#buf[at] = OP.DMA_READ;
    this.#u32(at + 1, id);
    this.#u64(at + 5, addr);
    this.#u32(at + 13, len);
  }

  dmaWrite(addr: number, data: Uint8Array): void {
    const at = this.#reserve(13 + data.length);
    this.#buf[at] = OP.DMA_WRITE;
    this.#u64(at + 1, addr);
    this.#u32(at + 9, data.length);
    this.#buf.set(data, at + 13);
  }

  irq(level: boolean): void {
    const at = this.#reserve(2);
    this.#buf[at] = OP.IRQ;
    this.#buf[at + 1] = level ? 1 : 0;
  }

  /** The message so far (a copy), and an empty writer. */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#len);
    this.#len = 0;
    return out;
  }
}

/** Encodes emulator → daemon records (the emulator's side; used by tests and clients). */
export function encodeEmulatorRecords(records: readonly EmulatorRecord[]): Uint8Array {
  let n = 0;
  for (const r of records) n += r.op === 'dma-reply' ? 9 + r.data.length : r.op === 'reset' ? 1 : r.op === 'hello' ? 8 : r.space === 'mmio' ? 10 : 8;
  const b = new Uint8Array(n);
  const dv = new DataView(b.buffer);
  let at = 0;
  for (const r of records) {
    switch (r.op) {
      case 'hello':
        b[at] = OP.HELLO; b[at + 1] = r.version; b.set(r.mac.subarray(0, 6), at + 2); at += 8; break;
      case 'reset':
        b[at] = OP.RESET; at += 1; break;
      case 'dma-reply':
        b[at] = OP.DMA_READ_REPLY; dv.setUint32(at + 1, r.id, true); dv.setUint32(at + 5, r.data.length, true); b.set(r.data, at + 9); at += 9 + r.data.length; break;
      case 'read':
        if (r.space === 'mmio') {
          b[at] = OP.MMIO_READ; dv.setUint32(at + 1, r.id, true); dv.setUint32(at + 5, r.offset, true); b[at + 9] = r.size; at += 10;
        } else {
          b[at] = r.space === 'config' ? OP.CFG_READ : OP.IO_READ; dv.setUint32(at + 1, r.id, true); dv.setUint16(at + 5, r.offset, true); b[at + 7] = r.size; at += 8;
        }
        break;
      case 'write':
        if (r.space === 'mmio') {
          b[at] = OP.MMIO_WRITE; dv.setUint32(at + 1, r.offset, true); b[at + 5] = r.size; dv.setUint32(at + 6, r.value >>> 0, true); at += 10;
        } else {
          b[at] = r.space === 'config' ? OP.CFG_WRITE : OP.IO_WRITE; dv.setUint16(at + 1, r.offset, true); b[at + 3] = r.size; dv.setUint32(at + 4, r.value >>> 0, true); at += 8;
        }
        break;
    }
  }
  return b;
}

/** Decodes one daemon → emulator message (for emulator-side code and tests). */
export function decodeDaemonMessage(b: Uint8Array): DaemonRecord[] | Drop {
  const out: DaemonRecord[] = [];
  let at = 0;
  while (at < b.length) {
    const op = b[at]!;
    const need = (RECORD_LEN as Record<number, number | undefined>)[op];
    if (need === undefined || op < 0x80) return 'e1000-ws.bad-opcode';
    if (at + need > b.length) return 'e1000-ws.truncated';
    const u64 = (o: number): number => u32(b, o) + u32(b, o + 4) * 2 ** 32;
    switch (op) {
      case OP.HELLO_ACK: out.push({ op: 'hello-ack', version: b[at + 1]!, mac: b.slice(at + 2, at + 8) }); break;
      case OP.READ_REPLY: out.push({ op: 'read-reply', id: u32(b, at + 1), value: u32(b, at + 5) }); break;
      case OP.DMA_READ: out.push({ op: 'dma-read', id: u32(b, at + 1), addr: u64(at + 5), len: u32(b, at + 13) }); break;
      case OP.DMA_WRITE: {
        const len = u32(b, at + 9);
        if (at + need + len > b.length) return 'e1000-ws.truncated';
        out.push({ op: 'dma-write', addr: u64(at + 1), data: b.subarray(at + need, at + need + len) });
        at += len;
        break;
      }
      case OP.IRQ: out.push({ op: 'irq', level: b[at + 1] !== 0 }); break;
      default: return 'e1000-ws.bad-opcode';
    }
    at += need;
  }
  return out;
}
