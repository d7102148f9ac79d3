import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuestLink, Listener } from '../../src/link/link.js';
import { FRAME_BUFFER_BYTES, FrameBuffer, listenDgram } from '../../src/link/qemu-dgram.js';
import { hex, toHex } from '../helpers/hex.js';
import { memoryLog, until } from './test-log.js';

const FRAME = hex`ffffffffffff 525400123456 0806 0001 0800 0604 0001`;

describe('listenDgram (real UDP sockets on loopback)', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function echo(opts: { idleTimeoutMs?: number; sweepIntervalMs?: number; maxSessions?: number } = {}) {
    const links: GuestLink[] = [];
    const closed: [string, string][] = [];
    const got: [string, string][] = [];
    const logs = memoryLog();
    const l: Listener = await listenDgram({
      host: '127.0.0.1',
      port: 0,
      log: logs.log,
      ...opts,
      accept: (link) => {
        links.push(link);
        return {
          frame: (f) => {
            got.push([link.peer, toHex(f)]);
            link.send(f);
          },
          closed: (r) => closed.push([link.peer, r]),
        };
      },
    });
    cleanup.push(() => l.close());
    const a = l.address;
    if (a.kind !== 'dgram') throw new Error('not dgram');
    return { l, port: a.port, links, closed, got, logs };
  }

  async function udpClient(): Promise<{ s: dgram.Socket; port: number; got: string[] }> {
    const s = dgram.createSocket('udp4');
    const got: string[] = [];
    s.on('message', (m) => got.push(toHex(m)));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => s.close(() => r())));
    return { s, port: s.address().port, got };
  }

  it('is one session per sender address, and answers each sender', async () => {
    const e = await echo();
    const a = await udpClient();
    const b = await udpClient();
    a.s.send(FRAME, e.port, '127.0.0.1');
    a.s.send(FRAME, e.port, '127.0.0.1');
    b.s.send(FRAME.subarray(0, 20), e.port, '127.0.0.1'); // a runt goes to the stack too
    await until(() => a.got.length === 2 && b.got.length === 1, 3000, 'echoes');
    expect(a.got).toEqual([toHex(FRAME), toHex(FRAME)]);
    expect(b.got).toEqual([toHex(FRAME.subarray(0, 20))]);
    expect(e.links.map((l) => l.peer).sort()).toEqual([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort());
    expect(e.links.every((l) => l.kind === 'dgram')).toBe(true);
  });

  it('sends the largest frame UDP carries and counts a larger one as link.tx-error, without an error event', async () => {
    const e = await echo();
    const a = await udpClient();
    a.s.send(FRAME, e.port, '127.0.0.1');
    await until(() => a.got.length === 1, 3000, 'the echo that opens the session');
    const link = e.links[0]!;
    const largest = new Uint8Array(65507).fill(7);
    link.send(largest);
    link.send(new Uint8Array(65508));
    await until(() => a.got.length === 2, 3000, 'the largest datagram');
    expect(a.got[1]!.length).toBe(65507 * 2);
    expect(link.counters.snapshot()).toMatchObject({ 'link.tx-error': 1 });
    expect(e.logs.records.filter((r) => r['msg'] === 'dgram: socket error')).toEqual([]);
  });

  it('sends a burst of frames built in its output buffer, each as it was built', async () => {
    const COUNT = 40;
    const LEN = 60_000;
    let link: GuestLink | undefined;
    const l = await listenDgram({
      host: '127.0.0.1', port: 0, log: memoryLog().log,
      accept: (k) => {
        link = k;
        return {
          frame: () => {
            for (let i = 0; i < COUNT; i++) {
              const f = k.allocFrame!(LEN, i % 2 === 0);
              f.fill(i + 1);
              k.send(f);
            }
          },
          closed: () => undefined,
        };
      },
    });
    cleanup.push(() => l.close());
    if (l.address.kind !== 'dgram') throw new Error('not dgram');
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    const got: Buffer[] = [];
    s.on('message', (m) => got.push(m));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => s.close(() => r())));
    s.send(FRAME, l.address.port, '127.0.0.1');
    await until(() => got.length === COUNT, 5000, 'the burst');
    // Each frame arrives whole and as built: every byte is its own index, in order.
    expect(got.map((m) => (m.length === LEN && m.every((b) => b === m[0]) ? m[0] : -1))).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    expect(link?.counters.snapshot()).toEqual({});
  });

  it('counts an empty datagram without passing it on', async () => {
    const e = await echo();
    const a = await udpClient();
    a.s.send(new Uint8Array(0), e.port, '127.0.0.1');
    await until(() => e.links.length === 1);
    await until(() => e.links[0]!.counters.get('link.bad-frame-length') === 1);
    expect(e.got).toEqual([]);
  });

  it('ends a session after its idle timeout; the peer then starts a new one', async () => {
    const e = await echo({ idleTimeoutMs: 100, sweepIntervalMs: 20 });
    const a = await udpClient();
    a.s.send(FRAME, e.port, '127.0.0.1');
    await until(() => a.got.length === 1);
    await until(() => e.closed.length === 1, 3000, 'idle expiry');
    expect(e.closed[0]).toEqual([`127.0.0.1:${a.port}`, 'idle timeout']);
    a.s.send(FRAME, e.port, '127.0.0.1');
    await until(() => a.got.length === 2);
    expect(e.links).toHaveLength(2);
  });

  it('bounds the number of sessions', async () => {
    const e = await echo({ maxSessions: 2 });
    const cs = [await udpClient(), await udpClient(), await udpClient()];
    for (const c of cs) {
      c.s.send(FRAME, e.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => cs[0]!.got.length === 1 && cs[1]!.got.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(cs[2]!.got).toEqual([]);
    expect(e.links).toHaveLength(2);
    expect(e.logs.withMsg('dgram: session limit reached, datagram dropped')).toHaveLength(1);
  });

  it('ends every session when the listener closes', async () => {
    const e = await echo();
    const a = await udpClient();
    a.s.send(FRAME, e.port, '127.0.0.1');
    await until(() => a.got.length === 1);
    await e.l.close();
    expect(e.closed).toEqual([[`127.0.0.1:${a.port}`, 'listener closed']]);
    e.links[0]!.send(FRAME);
    expect(e.links[0]!.counters.get('link.tx-closed')).toBe(1);
  });
});

describe('FrameBuffer (the dgram link\'s output buffer)', () => {
  it('reuses a region once the send queue is empty and never one a queued datagram may point into', () => {
    let queued = 0;
    const out = new FrameBuffer({ getSendQueueCount: () => queued });
    const a = out.alloc(1000, true);
    a.fill(1);
    const b = out.alloc(1000, true); // the queue is empty: a's bytes were copied by the kernel
    expect(b.byteOffset).toBe(a.byteOffset);
    expect(b.buffer).toBe(a.buffer);
    expect(b.every((x) => x === 0)).toBe(true); // zeroed on request
    b.fill(2);
    queued = 1; // b waits in libuv's queue
    const c = out.alloc(1000, false);
    expect(c.buffer).toBe(b.buffer);
    expect(c.byteOffset).toBeGreaterThanOrEqual(b.byteOffset + b.length);
    c.fill(3);
    // Queued frames until the buffer is full: then a fresh buffer, the old one left to the queue.
    const held: Uint8Array[] = [b, c];
    for (let i = 0; i < FRAME_BUFFER_BYTES / 60_000 + 1; i++) held.push(out.alloc(60_000, false).fill(4 + i));
    expect(held.some((r) => r.buffer !== b.buffer)).toBe(true);
    expect(b.every((x) => x === 2) && c.every((x) => x === 3)).toBe(true);
    held.slice(2).forEach((r, i) => expect(r.every((x) => x === 4 + i)).toBe(true));
    queued = 0;
    const d = out.alloc(100, true);
    expect(d.byteOffset).toBe(0);
    expect(d.length).toBe(100);
  });
});
