import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OooQueue } from '../../src/tcp/ooo-queue.js';
import { seqAdd, seqGt, seqLe, seqLt, seqSub } from '../../src/util/seq.js';

interface Seg { seq: number; data: Uint8Array; fin: boolean }

const held = (q: OooQueue): { seq: number; data: number[]; fin: boolean }[] => {
  // Reads the queue by draining it.
  const out: { seq: number; data: number[]; fin: boolean }[] = [];
  while (q.length > 0) {
    out.push({ seq: q.headSeq, data: [...q.headData], fin: q.headFin });
    q.shift();
  }
  return out;
};

/** The model: the queue as TcpConn first had it, an array of records spliced per segment. */
class Model {
  q: Seg[] = [];
  latest = 0;
  readonly cap: number;
  constructor(cap: number) {
    this.cap = cap;
  }
  hold(seq: number, data: Uint8Array, fin: boolean): boolean {
    const q = this.q;
    if (q.length >= this.cap) return false;
    let i = q.length;
    while (i > 0 && seqGt(q[i - 1]!.seq, seq)) i--;
    q.splice(i, 0, { seq, data, fin });
    this.latest = seq;
    let end = q[0]!.seq;
    let k = 0;
    while (k < q.length) {
      const e = q[k]!;
      const eEnd = seqAdd(e.seq, e.data.length);
      if (k > 0 && seqLe(eEnd, end) && !(e.fin && eEnd === end)) {
        q.splice(k, 1);
        continue;
      }
      if (k > 0 && seqLt(e.seq, end)) {
        e.data = e.data.subarray(seqSub(end, e.seq));
        e.seq = end;
      }
      if (seqGt(eEnd, end) || k === 0) end = eEnd;
      k++;
    }
    return true;
  }
  sackBlocks(): [number, number][] | undefined {
    const q = this.q;
    if (q.length === 0) return undefined;
    const blocks: [number, number][] = [];
    let first = -1;
    for (const e of q) {
      const end = seqAdd(e.seq, e.data.length);
      const last = blocks[blocks.length - 1];
      if (last?.[1] === e.seq) last[1] = end;
      else blocks.push([e.seq, end]);
      if (e.seq === this.latest) first = blocks.length - 1;
    }
    const nonEmpty = blocks.filter(([l, r]) => l !== r);
    if (first > 0 && blocks[first]![0] !== blocks[first]![1]) {
      const b = blocks[first]!;
      return [b, ...nonEmpty.filter((x) => x !== b)];
    }
    return nonEmpty.length === 0 ? undefined : nonEmpty;
  }
  blockCount(): number {
    let n = 0;
    let end: number | undefined;
    for (const e of this.q) {
      if (e.seq !== end && e.data.length > 0) n++;
      end = seqAdd(e.seq, e.data.length);
    }
    return n;
  }
}

const bytesAt = (off: number, len: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (off + i) & 0xff);

describe('tcp/ooo-queue', () => {
  it('holds in order, trims overlaps, drops what is covered, keeps a bare FIN at the end', () => {
    const q = new OooQueue(8);
    expect(q.sackBlocks()).toBeUndefined();
    q.hold(3000, bytesAt(3000, 1000), false);
    q.hold(1000, bytesAt(1000, 1000), false);
    q.hold(1500, bytesAt(1500, 1000), false);     // overlaps [1000, 2000): trimmed to [2000, 2500)
    q.hold(3200, bytesAt(3200, 100), false);      // inside [3000, 4000): dropped
    q.hold(4000, new Uint8Array(0), true);        // a bare FIN where the data ends
    expect(q.blockCount()).toBe(2);
    // The latest segment (the FIN) joins the block it ends: that block goes first.
    expect(q.sackBlocks()).toEqual([[3000, 4000], [1000, 2500]]);
    q.hold(5000, bytesAt(5000, 10), false);
    expect(q.sackBlocks()).toEqual([[5000, 5010], [1000, 2500], [3000, 4000]]);
    expect(held(q)).toEqual([
      { seq: 1000, data: [...bytesAt(1000, 1000)], fin: false },
      { seq: 2000, data: [...bytesAt(2000, 500)], fin: false },
      { seq: 3000, data: [...bytesAt(3000, 1000)], fin: false },
      { seq: 4000, data: [], fin: true },
      { seq: 5000, data: [...bytesAt(5000, 10)], fin: false },
    ]);
  });

  it('refuses past its capacity; hands out at most 4 SACK blocks', () => {
    const q = new OooQueue(6);
    for (let i = 0; i < 6; i++) expect(q.hold(1000 * (i + 1), bytesAt(0, 10), false)).toBe(true);
    expect(q.hold(9000, bytesAt(0, 10), false)).toBe(false);
    expect(q.blockCount()).toBe(6);
    expect(q.sackBlocks()).toEqual([[6000, 6010], [1000, 1010], [2000, 2010], [3000, 3010]]);
    q.clear();
    expect(q.length).toBe(0);
    expect(new OooQueue(0).hold(1, bytesAt(0, 1), false)).toBe(false);
  });

  it('matches the model: segments, SACK blocks (first 4) and block counts, across the wrap (property)', () => {
    const seg = fc.record({ off: fc.nat(4000), len: fc.nat(700), fin: fc.boolean() });
    fc.assert(fc.property(
      fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 12 }), fc.array(seg, { maxLength: 30 }),
      (base, cap, segs) => {
        const q = new OooQueue(cap);
        const m = new Model(cap);
        for (const s of segs) {
          const seq = seqAdd(base, s.off);
          const data = bytesAt(s.off, s.len);
          expect(q.hold(seq, data, s.fin)).toBe(m.hold(seq, data, s.fin));
          expect(q.length).toBe(m.q.length);
          expect(q.blockCount()).toBe(m.blockCount());
          const want = m.sackBlocks();
          const got = q.sackBlocks();
          expect(got === undefined ? undefined : got.map(([l, r]) => [l, r])).toEqual(want?.slice(0, 4));
        }
        expect(held(q)).toEqual(m.q.map((e) => ({ seq: e.seq, data: [...e.data], fin: e.fin })));
      }));
  });
});
