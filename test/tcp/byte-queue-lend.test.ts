import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteQueue, CHUNK_BYTES, dropSpareChunks, LEND_MIN_BYTES, spareChunkBytes } from '../../src/tcp/byte-queue.js';

/**
 * The lending rules (byte-queue.ts): under any interleaving of lent reads, copied pushes,
 * ACKs (drop), idle releases and reads into a lend the queue gave up on, the queue holds
 * exactly the bytes pushed, in order, and no read ever lands on queued bytes.
 */
describe('tcp/byte-queue lending', () => {
  it('loses, reorders and overwrites no byte under any interleaving', { timeout: 120_000 }, () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('read' as const), n: fc.integer({ min: 1, max: 300_000 }), lendAgain: fc.boolean() }),
      fc.record({ k: fc.constant('push' as const), n: fc.integer({ min: 0, max: 70_000 }) }),
      fc.record({ k: fc.constant('drop' as const), n: fc.integer({ min: 0, max: 400_000 }) }),
      fc.record({ k: fc.constant('release' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 16 }), (ops) => {
        const q = new ByteQueue();
        const model: number[] = [];
        let next = 0;
        let lent: Uint8Array | undefined;
        const fill = (b: Uint8Array, n: number): void => {
          for (let i = 0; i < n; i++) b[i] = (next + i) & 0xff;
        };
        for (const o of ops) {
          if (o.k === 'read') {
            // A read lands in the buffer the host holds (the lend, or its own), then is pushed.
            const own = lent ?? new Uint8Array(262_144);
            const n = Math.min(o.n, own.length);
            fill(own, n);
            q.push(own.subarray(0, n));
            for (let i = 0; i < n; i++) model.push((next + i) & 0xff);
            next += n;
            lent = o.lendAgain ? q.lend(262_144) : undefined;
            if (lent !== undefined) expect(lent.length).toBeGreaterThanOrEqual(LEND_MIN_BYTES);
          } else if (o.k === 'push') {
            const b = new Uint8Array(o.n);
            fill(b, o.n);
            q.push(b);
            for (let i = 0; i < o.n; i++) model.push((next + i) & 0xff);
            next += o.n;
          } else if (o.k === 'drop') {
            const n = Math.min(o.n, model.length);
            q.drop(n);
            model.splice(0, n);
          } else {
            q.release();
          }
          // A read may still land in the lent region at any time: scribble over it now.
          if (lent !== undefined) lent.fill(0xee);
          expect(q.length).toBe(model.length);
          const out = new Uint8Array(model.length);
          q.copyOut(0, model.length, out, 0);
          expect(Buffer.from(out).equals(Buffer.from(model))).toBe(true);
        }
      }),
      { numRuns: 20 },
    );
  });

  it('counts a read that landed in the lend without copying it', () => {
    const q = new ByteQueue();
    const lent = q.lend(65_536)!;
    lent.fill(7, 0, 1000);
    q.push(lent.subarray(0, 1000));
    expect(q.length).toBe(1000);
    const out = new Uint8Array(1000);
    q.copyOut(0, 1000, out, 0);
    expect(out.every((b) => b === 7)).toBe(true);
    expect(q.lending).toBe(false);
  });

  it('lends a chunk of its own that joins the queue when the read lands, then the rest of it', () => {
    dropSpareChunks();
    const q = new ByteQueue();
    q.push(new Uint8Array(100).fill(1)); // a small reply: its small chunk
    const a = q.lend(CHUNK_BYTES)!;
    expect(a.length).toBe(CHUNK_BYTES); // the small chunk has no room: a chunk of its own
    expect(q.capacity).toBe(2048); // not the queue's until the read lands
    a.fill(2, 0, 100_000);
    q.push(a.subarray(0, 100_000));
    expect(q.capacity).toBe(2048 + CHUNK_BYTES);
    const b = q.lend(CHUNK_BYTES)!;
    expect(b.buffer).toBe(a.buffer); // the rest of the last chunk
    expect(b.byteOffset).toBe(100_000);
    b.fill(3, 0, 500);
    q.push(b.subarray(0, 500));
    const out = new Uint8Array(100_600);
    q.copyOut(0, 100_600, out, 0);
    expect([out[99], out[100], out[100_099], out[100_100], out[100_599]]).toEqual([1, 2, 2, 3, 3]);
    // Less than LEND_MIN_BYTES left in the last chunk: a chunk of its own again, and the rest stays unused.
    const c = q.lend(CHUNK_BYTES)!;
    c.fill(4, 0, CHUNK_BYTES - 100_500 - LEND_MIN_BYTES + 1);
    q.push(c.subarray(0, CHUNK_BYTES - 100_500 - LEND_MIN_BYTES + 1));
    const d = q.lend(CHUNK_BYTES)!;
    expect(d.buffer).not.toBe(a.buffer);
    expect(d.length).toBe(CHUNK_BYTES);
    d.fill(5, 0, 10);
    q.push(d.subarray(0, 10));
    const n = q.length;
    const all = new Uint8Array(n);
    q.copyOut(0, n, all, 0);
    expect([all[n - 11], all[n - 10], all[n - 1]]).toEqual([4, 5, 5]);
  });

  it('keeps the chunk a lend lies in when the queue empties, and never pools a lent chunk', () => {
    dropSpareChunks();
    const q = new ByteQueue();
    const a = q.lend(CHUNK_BYTES)!;
    q.push(a.fill(1).subarray(0, 1000));
    const b = q.lend(CHUNK_BYTES)!; // the rest of the same chunk
    q.drop(1000); // the guest acknowledged everything while the socket waits to read into b
    expect(q.capacity).toBe(CHUNK_BYTES);
    expect(spareChunkBytes()).toBe(0);
    b.fill(2, 0, 10);
    q.push(b.subarray(0, 10)); // the read lands: counted, not copied
    const out = new Uint8Array(10);
    q.copyOut(0, 10, out, 0);
    expect(out.every((v) => v === 2)).toBe(true);
    // The idle release forgets a lend: its chunk goes to the collector, not the pool.
    q.lend(CHUNK_BYTES);
    q.drop(10);
    expect(q.release()).toBe(true);
    expect(spareChunkBytes()).toBe(0);
    // A lend of its own abandoned by a copied push: never pooled either.
    const r = new ByteQueue();
    r.lend(CHUNK_BYTES);
    r.push(new Uint8Array(20_000));
    r.drop(20_000);
    expect(spareChunkBytes()).toBe(CHUNK_BYTES); // the copied push's chunk, not the lent one
    dropSpareChunks();
  });
});
