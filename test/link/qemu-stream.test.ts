import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuestLink, Listener } from '../../src/link/link.js';
import { MAX_FRAME_LEN } from '../../src/link/link.js';
import { frameStream, listenStream, ReadSlabs, StreamDeframer } from '../../src/link/qemu-stream.js';
import { hex, toHex } from '../helpers/hex.js';
import { memoryLog, sendUntilOverflow, until } from './test-log.js';

// Two frames: a 14-byte header-only frame and a 20-byte one, each behind its BE u32 length.
const F1 = hex`ffffffffffff 525400123456 0806`;
const F2 = hex`525500000202 525400123456 0800 0102 0304 0506`;
const WIRE = hex`0000000e ${toHex(F1)} 00000014 ${toHex(F2)}`;

function collect(): { frames: string[]; d: StreamDeframer } {
  const frames: string[] = [];
  return { frames, d: new StreamDeframer((f) => frames.push(toHex(f))) };
}

describe('StreamDeframer', () => {
  it('frames the literal', () => {
    expect(toHex(frameStream([F1, F2]))).toBe(toHex(WIRE));
    const { frames, d } = collect();
    expect(d.push(WIRE)).toBeUndefined();
    expect(frames).toEqual([toHex(F1), toHex(F2)]);
    expect(d.buffered).toBe(0);
  });

  it('reassembles a stream split at every offset', () => {
    for (let i = 0; i <= WIRE.length; i++) {
      const { frames, d } = collect();
      expect(d.push(WIRE.subarray(0, i))).toBeUndefined();
      expect(d.push(WIRE.subarray(i))).toBeUndefined();
      expect(frames, `split at ${i}`).toEqual([toHex(F1), toHex(F2)]);
    }
  });

  it('reassembles a stream split at every pair of offsets', () => {
    for (let i = 0; i <= WIRE.length; i++)
      for (let j = i; j <= WIRE.length; j++) {
        const { frames, d } = collect();
        d.push(WIRE.subarray(0, i));
        d.push(WIRE.subarray(i, j));
        d.push(WIRE.subarray(j));
        expect(frames, `split at ${i},${j}`).toEqual([toHex(F1), toHex(F2)]);
      }
  });

  it('reassembles one byte at a time', () => {
    const { frames, d } = collect();
    for (const b of WIRE) d.push(Uint8Array.of(b));
    expect(frames).toEqual([toHex(F1), toHex(F2)]);
  });

  it('refuses a length below the Ethernet header, and keeps refusing', () => {
    const { frames, d } = collect();
    expect(d.push(hex`0000000d ${toHex(F1.subarray(0, 13))}`)).toBe('link.bad-frame-length');
    expect(d.push(WIRE)).toBe('link.bad-frame-length');
    expect(frames).toEqual([]);
  });

  it('refuses a length above the maximum frame, before reading the frame', () => {
    const { frames, d } = collect();
    expect(d.push(hex`00010003`)).toBe('link.bad-frame-length'); // 65539 = MAX_FRAME_LEN + 1
    expect(frames).toEqual([]);
    const ok = collect();
    const big = new Uint8Array(MAX_FRAME_LEN);
    ok.d.push(frameStream([big]));
    expect(ok.frames.length).toBe(1);
  });

  it('delivers any frames before a bad length', () => {
    const { frames, d } = collect();
    expect(d.push(hex`${toHex(WIRE)} ffffffff`)).toBe('link.bad-frame-length');
    expect(frames).toEqual([toHex(F1), toHex(F2)]);
  });

  it('round-trips any frames under any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 14, maxLength: 200 }), { maxLength: 8 }),
        fc.array(fc.nat({ max: 2000 }), { maxLength: 10 }),
        (fs, cuts) => {
          const wire = frameStream(fs);
          const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
          const { frames, d } = collect();
          let at = 0;
          for (const p of [...points, wire.length]) {
            expect(d.push(wire.subarray(at, p))).toBeUndefined();
            at = p;
          }
          expect(frames).toEqual(fs.map(toHex));
        },
      ),
    );
  });

  it('never throws on garbage', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
        const { d } = collect();
        for (const c of chunks) {
          const r = d.push(c);
          expect(r === undefined || r === 'link.bad-frame-length').toBe(true);
        }
      }),
    );
  });
});

describe('listenStream (unix socket and TCP, real sockets on loopback)', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  function tempSocketPath(): string {
    const dir = mkdtempSync(join(tmpdir(), 'tslirp-test-'));
    cleanup.push(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    return join(dir, 'sub', 'test.sock');
  }

  /** A listener whose sessions echo every frame back, reversed in payload order of arrival. */
  async function echoListener(
    addr: Parameters<typeof listenStream>[0],
    limit?: number,
  ): Promise<{ l: Listener; links: GuestLink[]; closed: string[]; got: Uint8Array[]; logs: ReturnType<typeof memoryLog> }> {
    const links: GuestLink[] = [];
    const closed: string[] = [];
    const got: Uint8Array[] = [];
    const logs = memoryLog();
    const { log } = logs;
    const l = await listenStream(addr, {
      log,
      ...(limit !== undefined && { txQueueLimitBytes: limit }),
      accept: (link) => {
        links.push(link);
        return {
          frame: (f) => {
            got.push(f);
            link.send(f);
            link.send(f); // two frames in one tick leave in one write
          },
          closed: (r) => closed.push(r),
        };
      },
    });
    cleanup.push(() => l.close());
    return { l, links, closed, got, logs };
  }

  function client(connect: () => net.Socket): Promise<{ s: net.Socket; frames: string[]; ended: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const s = connect();
      const frames: string[] = [];
      const d = new StreamDeframer((f) => frames.push(toHex(f)));
      s.on('data', (c) => d.push(c));
      const ended = new Promise<void>((r) => s.on('close', () => r()));
      s.once('connect', () => resolve({ s, frames, ended }));
      s.once('error', reject);
      cleanup.push(() => {
        s.destroy();
      });
    });
  }

  it('exchanges frames over a unix socket (directory created, file removed on close)', async () => {
    const path = tempSocketPath();
    const { l, links, got, closed } = await echoListener({ transport: 'unix', path });
    expect(l.address).toEqual({ kind: 'stream', transport: 'unix', path });
    expect(existsSync(path)).toBe(true);
    const c = await client(() => net.connect(path));
    // A frame split over two writes still arrives whole.
    c.s.write(WIRE.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 20));
    c.s.write(WIRE.subarray(7));
    await until(() => c.frames.length === 4, 3000, 'four echoed frames');
    expect(got.map(toHex)).toEqual([toHex(F1), toHex(F2)]);
    expect(c.frames).toEqual([toHex(F1), toHex(F1), toHex(F2), toHex(F2)]);
    expect(links[0]!.kind).toBe('stream');
    c.s.end();
    await until(() => closed.length === 1, 3000, 'closed');
    await l.close();
    expect(existsSync(path)).toBe(false);
  });

  it('sends frames built in place (allocFrame) and copied ones in order, reusing written buffers', async () => {
    const path = tempSocketPath();
    const { links } = await echoListener({ transport: 'unix', path });
    const c = await client(() => net.connect(path));
    await until(() => links.length === 1);
    const link = links[0]!;
    const pattern = (i: number, len: number): Uint8Array => Uint8Array.from({ length: len }, (_, k) => (i * 31 + k) & 0xff);
    const expected: string[] = [];
    let dirty = 0;
    // 40 ticks of 60 frames (~3.5 MB in all) while the client does not read: the socket
    // fills, so many output buffers wait in Node's queue before they are written and reused.
    c.s.pause();
    for (let tick = 0; tick < 40; tick++) {
      for (let j = 0; j < 60; j++) {
        const i = tick * 60 + j;
        const len = i % 97 === 0 ? 65538 : 60 + ((i * 7919) % 1455);
        const f = pattern(i, len);
        if (i % 3 === 0) {
          link.send(f); // a frame from elsewhere is copied
        } else {
          if (i % 5 === 0) link.allocFrame!(200).fill(0xee); // lent, never sent: abandoned
          const region = link.allocFrame!(len);
          if (region.some((b) => b !== 0)) dirty++;
          region.set(f);
          link.send(region);
        }
        expected.push(toHex(f));
      }
      await new Promise((r) => setImmediate(r));
    }
    c.s.resume();
    await until(() => c.frames.length === expected.length, 10_000, 'every frame');
    expect(dirty).toBe(0);
    expect(c.frames.length).toBe(expected.length);
    expect(c.frames.every((f, i) => f === expected[i])).toBe(true);
    expect(link.counters.total()).toBe(0);
  });

  it('exchanges frames over TCP on a free port', async () => {
    const { l, closed } = await echoListener({ transport: 'tcp', host: '127.0.0.1', port: 0 });
    const a = l.address;
    if (a.kind !== 'stream' || a.transport !== 'tcp') throw new Error('not a tcp listener');
    expect(a.host).toBe('127.0.0.1');
    expect(a.port).toBeGreaterThan(0);
    const c = await client(() => net.connect(a.port, a.host));
    c.s.write(WIRE);
    await until(() => c.frames.length === 4);
    await l.close();
    await c.ended;
    expect(closed).toEqual(['listener closed']);
  });

  it('closes only the connection that sends a bad length', async () => {
    const path = tempSocketPath();
    const { links, closed, logs } = await echoListener({ transport: 'unix', path });
    const good = await client(() => net.connect(path));
    const bad = await client(() => net.connect(path));
    await until(() => links.length === 2);
    bad.s.write(hex`00000005 0102030405`);
    await bad.ended;
    expect(closed).toEqual(['link.bad-frame-length']);
    expect(links[1]!.counters.get('link.bad-frame-length')).toBe(1);
    expect(logs.records.filter((r) => r['level'] === 40 && String(r['msg']).includes('bad frame length'))).toHaveLength(1);
    good.s.write(WIRE);
    await until(() => good.frames.length === 4, 3000, 'the other connection still works');
  });

  it('removes a stale socket file, refuses a live one and a non-socket', async () => {
    const path = tempSocketPath();
    const first = await echoListener({ transport: 'unix', path });
    const { log } = memoryLog();
    const accept = (): never => {
      throw new Error('unused');
    };
    await expect(listenStream({ transport: 'unix', path }, { log, accept })).rejects.toThrow(/in use/);
    // A stale file: a socket whose server is gone. Node unlinks the file when a server closes,
    // so move the file aside across the close, as a crashed process would have left it.
    await first.l.close();
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(path, r));
    renameSync(path, `${path}.keep`);
    await new Promise<void>((r) => dead.close(() => r()));
    renameSync(`${path}.keep`, path);
    expect(existsSync(path)).toBe(true);
    const again = await echoListener({ transport: 'unix', path });
    const c = await client(() => net.connect(path));
    c.s.write(WIRE);
    await until(() => c.frames.length === 4);
    await again.l.close();
    writeFileSync(path, 'not a socket');
    await expect(listenStream({ transport: 'unix', path }, { log, accept })).rejects.toThrow(/not a socket/);
  });

  it('drops outgoing frames beyond the send-buffer bound and counts them', async () => {
    const path = tempSocketPath();
    const { links } = await echoListener({ transport: 'unix', path }, 64 * 1024);
    const c = await client(() => net.connect(path));
    c.s.pause(); // the guest stops reading
    await until(() => links.length === 1);
    const link = links[0]!;
    await sendUntilOverflow(link);
    expect(link.counters.get('link.tx-overflow')).toBeGreaterThan(0);
  });
});

describe('ReadSlabs', () => {
  it('never hands out bytes already read: each read goes on after the last, in a new slab once the rest is small', () => {
    const slabs = new ReadSlabs();
    const first = slabs.next();
    expect(first.length).toBe(128 * 1024);
    first.set([1, 2, 3]);
    const a = slabs.took(first, 3);
    const second = slabs.next();
    expect(second.buffer).toBe(first.buffer);
    expect(second.byteOffset).toBe(first.byteOffset + 3);
    second.fill(9);
    expect([...a]).toEqual([1, 2, 3]);
    // A read leaving at least 64 KiB: the next one goes on in the same slab; then less than 64 KiB left: a fresh slab.
    slabs.took(second, 1000);
    const more = slabs.next();
    expect(more.buffer).toBe(first.buffer);
    slabs.took(more, more.length - 64 * 1024 + 1);
    const third = slabs.next();
    expect(third.buffer).not.toBe(first.buffer);
    expect(third.length).toBe(128 * 1024);
    expect([...a]).toEqual([1, 2, 3]);
  });
});
