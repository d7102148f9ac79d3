import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../../src/util/deadline-queue.js';
import { budgetMs, runs } from '../helpers/fuzz.js';

describe('util/deadline-queue', () => {
  it('agrees with a plain map of deadlines through sets, cancels and takes', () => {
    const op = fc.oneof(
      fc.record({ owner: fc.nat(30), at: fc.option(fc.nat(1000), { nil: undefined }) }),
      fc.record({ take: fc.nat(1000) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 400 }), (ops) => {
        const q = new DeadlineQueue<number>();
        const model = new Map<number, number>();
        for (const o of ops) {
          if ('take' in o) {
            const due = [...model].filter(([, at]) => at <= o.take);
            const got = q.takeDue(o.take);
            expect(new Set(got)).toEqual(new Set(due.map(([owner]) => owner)));
            expect(got).toHaveLength(due.length);
            const ats = got.map((w) => model.get(w)!);
            expect(ats).toEqual([...ats].sort((a, b) => a - b)); // earliest first
            for (const [owner] of due) model.delete(owner);
          } else {
            q.set(o.owner, o.at);
            if (o.at === undefined) model.delete(o.owner);
            else model.set(o.owner, o.at);
          }
          expect(q.size).toBe(model.size);
          expect(q.next()).toBe(model.size === 0 ? undefined : Math.min(...model.values()));
        }
      }),
      { numRuns: runs(200) },
    );
  }, budgetMs(30_000));

  it('stays exact when one owner moves its deadline many times', () => {
    const q = new DeadlineQueue<string>();
    for (let i = 0; i < 100_000; i++) q.set(`c${i % 10}`, 1_000_000 - i);
    expect(q.size).toBe(10);
    expect(q.next()).toBe(1_000_000 - 99_999);
    expect(q.takeDue(Infinity)).toHaveLength(10);
    expect(q.next()).toBeUndefined();
  });
});
