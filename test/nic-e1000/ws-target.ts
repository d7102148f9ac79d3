/**
 * The emulator side of the e1000 WebSocket device protocol, for tests: guest RAM, DMA
 * service, posted and batched writes, synchronous reads. `toStack`/`toGuest` are the daemon
 * side's frame queues when the test owns them (takeFrames/inject); a test against the real
 * daemon leaves them unused and reads frames through the driver's RX ring.
 */
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { R } from '../../src/nic-e1000/regs.js';
import { decodeDaemonMessage, encodeEmulatorRecords, type EmulatorRecord } from '../../src/nic-e1000/ws-protocol.js';
import { MEM_SIZE, type NicTarget } from './qtest-client.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The emulator side: guest RAM, DMA service, posted+batched writes, synchronous reads. */
export async function wsTarget(
  url: string,
  toStack: Uint8Array[],
  toGuest: { push(f: Uint8Array): void },
  cleanups: (() => Promise<void> | void)[],
): Promise<NicTarget & { stats: { messages: number; dmaReads: number } }> {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  cleanups.push(() => { ws.terminate(); });
  const mem = new Uint8Array(MEM_SIZE);
  let level = false;
  let nextId = 1;
  const replies = new Map<number, (v: number) => void>();
  let batch: EmulatorRecord[] = [];
  const stats = { messages: 0, dmaReads: 0 };
  const flush = (): void => {
    if (batch.length === 0) return;
    ws.send(encodeEmulatorRecords(batch));
    stats.messages++;
    batch = [];
  };
  ws.on('message', (data: Buffer) => {
    const recs = decodeDaemonMessage(new Uint8Array(data));
    if (typeof recs === 'string') throw new Error(recs);
    for (const r of recs) {
      switch (r.op) {
        case 'read-reply': replies.get(r.id)?.(r.value); replies.delete(r.id); break;
        case 'dma-read': {
          stats.dmaReads++;
          const data = new Uint8Array(r.len);
          if (r.addr < MEM_SIZE) data.set(mem.subarray(r.addr, Math.min(MEM_SIZE, r.addr + r.len)));
          batch.push({ op: 'dma-reply', id: r.id, data });
          break;
        }
        case 'dma-write': if (r.addr + r.data.length <= MEM_SIZE) mem.set(r.data, r.addr); break;
        case 'irq': level = r.level; break;
        case 'hello-ack': break;
      }
    }
    flush();
  });
  const read = (space: 'config' | 'mmio' | 'io', offset: number, size: 1 | 2 | 4): Promise<number> => {
    const id = nextId++;
    batch.push({ op: 'read', space, id, offset, size });
    const p = new Promise<number>((r) => replies.set(id, r));
    flush();
    return p;
  };
  const write = (space: 'config' | 'mmio' | 'io', offset: number, size: 1 | 2 | 4, value: number): Promise<void> => {
    batch.push({ op: 'write', space, offset, size, value });
    if (batch.length >= 64) flush();
    return Promise.resolve();
  };
  batch.push({ op: 'hello', version: 1, mac: new Uint8Array(6) });
  return {
    name: 'ws', stats,
    cfgRead: (o, s) => read('config', o, s),
    cfgWrite: (o, s, v) => write('config', o, s, v),
    read: (o) => read('mmio', o, 4),
    write: (o, v) => write('mmio', o, 4, v),
    ioRead: (o) => read('io', o, 4),
    ioWrite: (o, v) => write('io', o, 4, v),
    memWrite: (a, b) => { mem.set(b, a); return Promise.resolve(); },
    memRead: (a, n) => Promise.resolve(mem.slice(a, a + n)),
    inject: async (f) => { toGuest.push(f); await sleep(5); },
    takeFrames: async (n = 0) => {
      flush();
      for (let i = 0; i < 200 && toStack.length < n; i++) await sleep(5);
      await sleep(5);
      return toStack.splice(0);
    },
    irq: async () => { await read('mmio', R.STATUS, 4); return level; },
    setLink: () => Promise.resolve(),
    wait: async (ms) => { flush(); await sleep(ms); },
    close: () => { ws.close(); return Promise.resolve(); },
  };
}
