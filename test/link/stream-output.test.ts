import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frameStream } from '../../src/link/qemu-stream.js';
import { StreamOutput } from '../../src/link/stream-output.js';

/** A writer that holds each view until the test completes it, checking nobody touched it meanwhile. */
function heldWriter() {
  const written: Uint8Array[] = [];
  const pending: { view: Uint8Array; copy: Uint8Array; done: () => void }[] = [];
  let touched = 0;
  const output = new StreamOutput((view, done) => {
    const copy = view.slice();
    written.push(copy);
    pending.push({ view, copy, done });
  });
  const complete = (k: number): void => {
    for (const p of pending.splice(0, k)) {
      if (!Buffer.from(p.view.buffer, p.view.byteOffset, p.view.length).equals(p.copy)) touched++;
      p.done();
    }
  };
  return { output, written, complete, pending, touched: () => touched };
}

/** A frame that tells itself apart: its index in the first bytes, then a fill. */
function frameOf(i: number, len: number): Uint8Array {
  const f = new Uint8Array(len).fill((i * 31 + 1) & 0xff);
  new DataView(f.buffer).setUint32(0, i);
  return f;
}

describe('link/stream-output', () => {
  it('writes length-prefixed records, in place or copied, and never reuses a buffer the writer still holds', () => {
    const size = fc.oneof(fc.integer({ min: 14, max: 1600 }), fc.integer({ min: 14, max: 65538 }));
    const op = fc.oneof(
      fc.record({ inPlace: size, zeroed: fc.boolean() }),
      fc.record({ copied: size }),
      fc.record({ abandon: fc.integer({ min: 14, max: 2000 }) }),
      fc.record({ flush: fc.constant(true) }),
      fc.record({ complete: fc.nat(4) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 30, maxLength: 120 }), (ops) => {
        const w = heldWriter();
        const expected: Uint8Array[] = [];
        let dirty = 0;
        ops.forEach((o, i) => {
          if ('inPlace' in o) {
            const f = frameOf(i, o.inPlace);
            const region = w.output.alloc(f.length, o.zeroed);
            if (o.zeroed && !Buffer.from(region.buffer, region.byteOffset, region.length).equals(new Uint8Array(region.length))) dirty++;
            region.set(f);
            w.output.append(region);
            expected.push(f);
          } else if ('copied' in o) {
            const f = frameOf(i, o.copied);
            w.output.append(f);
            expected.push(f);
          } else if ('abandon' in o) {
            w.output.alloc(o.abandon).fill(0xee);
          } else if ('flush' in o) {
            w.output.flush();
          } else {
            w.complete(o.complete);
          }
        });
        w.output.flush();
        w.complete(w.pending.length);
        expect(w.touched()).toBe(0);
        expect(dirty).toBe(0);
        expect(w.output.queued).toBe(0);
        expect(Buffer.concat(w.written).equals(frameStream(expected))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('counts what is queued and not yet handed over', () => {
    const w = heldWriter();
    w.output.append(new Uint8Array(60));
    w.output.append(new Uint8Array(100));
    expect(w.output.queued).toBe(168);
    w.output.flush();
    expect(w.output.queued).toBe(0);
    expect(w.written.map((v) => v.length)).toEqual([168]);
  });
});
