/** The process's turn budget (src/host/turn-budget.ts), stepped by hand: `defer` queues, `phase()` runs what was queued. */
import { describe, expect, it } from 'vitest';
import { TurnBudget } from '../../src/host/turn-budget.js';

function stepped(perTurnBytes: number, frameCostBytes = 0) {
  let queued: (() => void)[] = [];
  const budget = new TurnBudget({ perTurnBytes, frameCostBytes, defer: (fn) => queued.push(fn) });
  /** Runs the callbacks deferred so far (one check phase); what they defer waits for the next. */
  const phase = (): void => {
    const now = queued;
    queued = [];
    for (const fn of now) fn();
  };
  return { budget, phase, queued: () => queued.length };
}

describe('TurnBudget', () => {
  it('lets a turn send its budget (the segment crossing the line included), then refuses until the refill', () => {
    const { budget, phase, queued } = stepped(3500, 100);
    expect(queued()).toBe(0);
    expect(budget.take(1400)).toBe(true);
    expect(queued()).toBe(0); // budget left: no refill armed, no callback this turn
    expect(budget.take(1400)).toBe(true);
    expect(budget.take(1400)).toBe(true); // crosses 3500: still goes, and arms the refill
    expect(queued()).toBe(1);
    expect(budget.left).toBe(3500 - 3 * 1500);
    expect(budget.take(1)).toBe(false);
    expect(queued()).toBe(1);
    phase();
    expect(budget.left).toBe(3500);
    expect(budget.take(60000)).toBe(true); // one segment larger than the whole budget: progress
    expect(budget.take(1)).toBe(false);
  });

  it('arms nothing while the budget lasts: what is left carries over until it is spent', () => {
    const { budget, phase, queued } = stepped(1000);
    budget.take(10);
    expect(queued()).toBe(0);
    phase();
    expect(budget.left).toBe(990);
    expect(budget.take(990)).toBe(true);
    expect(queued()).toBe(1);
    phase();
    expect(budget.left).toBe(1000);
    expect(queued()).toBe(0);
  });

  it('resumes waiters after the refill in the order they waited; one stopped again waits at the back', () => {
    const { budget, phase } = stepped(1000);
    const calls: string[] = [];
    const waiter = (name: string, spend: number) => {
      const w = (): void => {
        calls.push(name);
        if (!budget.take(spend)) budget.wait(w);
        else if (spend >= 1000) budget.wait(w); // took its all and wants more
      };
      return w;
    };
    const a = waiter('a', 1000);
    const b = waiter('b', 1000);
    const c = waiter('c', 10);
    budget.take(1000);
    budget.wait(a);
    budget.wait(b);
    budget.wait(c);
    budget.wait(a); // twice is once
    expect(budget.waiting).toBe(3);
    phase();
    // a spends the refill; b and c stay ahead of a, which waits again.
    expect(calls).toEqual(['a']);
    phase();
    expect(calls).toEqual(['a', 'b']);
    phase();
    expect(calls).toEqual(['a', 'b', 'c', 'a']);
  });

  it('forgets a cancelled waiter', () => {
    const { budget, phase } = stepped(1000);
    let called = 0;
    const w = (): void => { called++; };
    budget.wait(w);
    budget.cancel(w);
    phase();
    expect(called).toBe(0);
    expect(budget.waiting).toBe(0);
  });
});
