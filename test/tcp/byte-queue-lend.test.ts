import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteQueue, LEND_MIN_BYTES } from '../../src/tcp/byte-queue.js';

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
});
