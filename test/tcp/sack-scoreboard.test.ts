import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SackScoreboard } from '../../src/tcp/sack-scoreboard.js';
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqSub } from '../../src/util/seq.js';

const ranges = (s: SackScoreboard): [number, number][] =>
  Array.from({ length: s.count }, (_, i) => [s.leftAt(i), s.rightAt(i)]);

/**
 * The model: a sorted list of [left, right) ranges kept the plainest way (the scoreboard as
 * TcpConn first had it, an array of pairs spliced per block), judged also against a set of
 * SACKed offsets.
 */
class Model {
  r: [number, number][] = [];
  readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }
  update(blocks: readonly (readonly [number, number])[], una: number, max: number): void {
    for (const [l0, r] of blocks) {
      if (!seqGt(r, una) || seqGt(r, max) || !seqLt(l0, r)) continue;
      const l = seqLt(l0, una) ? una : l0;
      const s = this.r;
      let i = 0;
      while (i < s.length && seqLt(s[i]![1], l)) i++;
      let nl = l;
      let nr = r;
      let j = i;
      while (j < s.length && seqLe(s[j]![0], nr)) {
        if (seqLt(s[j]![0], nl)) nl = s[j]![0];
        if (seqGt(s[j]![1], nr)) nr = s[j]![1];
        j++;
      }
      s.splice(i, j - i, [nl, nr]);
      if (s.length > this.limit) s.pop();
    }
  }
  ackedTo(ack: number): void {
    while (this.r.length > 0 && seqLe(this.r[0]![1], ack)) this.r.shift();
    if (this.r.length > 0 && seqLt(this.r[0]![0], ack)) this.r[0]![0] = ack;
  }
}

describe('tcp/sack-scoreboard', () => {
  it('merges overlapping and touching blocks, cuts what lies below SND.UNA, ignores the rest', () => {
    const s = new SackScoreboard(16);
    s.update([[3000, 4000]], 1000, 10_000);
    s.update([[5000, 6000], [1500, 2000]], 1000, 10_000);
    expect(ranges(s)).toEqual([[1500, 2000], [3000, 4000], [5000, 6000]]);
    s.update([[4000, 5000]], 1000, 10_000);                  // touches both neighbours
    expect(ranges(s)).toEqual([[1500, 2000], [3000, 6000]]);
    s.update([[500, 1200]], 1000, 10_000);                   // a D-SACK straddling SND.UNA: cut
    expect(ranges(s)).toEqual([[1000, 1200], [1500, 2000], [3000, 6000]]);
    s.update([[500, 900], [9000, 11_000], [7000, 7000]], 1000, 10_000);   // below, beyond SND.MAX, empty
    expect(ranges(s)).toEqual([[1000, 1200], [1500, 2000], [3000, 6000]]);
    expect(s.sackedBytes()).toBe(200 + 500 + 3000);
    expect([s.endContaining(1600), s.endContaining(2000), s.nextStartAfter(2000), s.nextStartAfter(3000)]).toEqual([2000, undefined, 3000, undefined]);
    expect(s.highestEnd()).toBe(6000);
    s.ackedTo(1700);
    expect(ranges(s)).toEqual([[1700, 2000], [3000, 6000]]);
    s.clear();
    expect(s.count).toBe(0);
  });

  it('keeps at most its limit, forgetting the highest', () => {
    const s = new SackScoreboard(2);
    s.update([[100, 200], [300, 400], [500, 600]], 0, 1000);
    expect(ranges(s)).toEqual([[100, 200], [300, 400]]);
    s.update([[10, 20]], 0, 1000);
    expect(ranges(s)).toEqual([[10, 20], [100, 200]]);
    const none = new SackScoreboard(0);
    none.update([[10, 20]], 0, 1000);
    expect(none.count).toBe(0);
  });

  it('matches the model through updates and ACKs, across the sequence wrap (property)', () => {
    const block = fc.tuple(fc.nat(6000), fc.nat(1500));
    const op = fc.oneof(
      { arbitrary: fc.record({ sack: fc.array(block, { minLength: 1, maxLength: 4 }) }), weight: 4 },
      { arbitrary: fc.record({ ack: fc.nat(800) }), weight: 1 },
    );
    fc.assert(fc.property(
      fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 6 }), fc.array(op, { maxLength: 40 }),
      (iss, limit, ops) => {
        const s = new SackScoreboard(limit);
        const m = new Model(limit);
        let una = iss;
        const max = seqAdd(iss, 8000);
        for (const o of ops) {
          if ('sack' in o) {
            const blocks = o.sack.map(([off, len]) => [seqAdd(iss, off), seqAdd(iss, off + len)] as const);
            s.update(blocks, una, max);
            m.update(blocks, una, max);
          } else {
            una = seqAdd(una, Math.min(o.ack, seqSub(max, una)));
            s.ackedTo(una);
            m.ackedTo(una);
          }
          expect(ranges(s)).toEqual(m.r);
          // The invariants: inside [una, max], ascending, disjoint, not touching, non-empty.
          let prev: number | undefined;
          let bytes = 0;
          for (const [l, r] of ranges(s)) {
            expect(seqGe(l, una) && seqLt(l, r) && seqLe(r, max)).toBe(true);
            if (prev !== undefined) expect(seqLt(prev, l)).toBe(true);
            prev = r;
            bytes += seqSub(r, l);
          }
          expect(s.sackedBytes()).toBe(bytes);
          expect(s.count).toBeLessThanOrEqual(limit);
        }
      }));
  });
});
