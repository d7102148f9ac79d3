/**
 * The send budget (ToGuest.sendBudget, src/host/turn-budget.ts): a connection sends data
 * only while the shell's turn has budget, the engine keeps the ones it stopped and flushes
 * them on `resumeSends`, those that sent nothing first.
 */
import { describe, expect, it } from 'vitest';
import type { SendBudget } from '../../src/net/seams.js';
import { ACK, bytes, GUEST_SYN, tcpHarness } from './tcp-harness.js';

/** A budget of `segments` data segments per turn; `refill()` starts the next turn. */
function segmentBudget(segments: number): SendBudget & { refill(): void; taken: number[] } {
  let left = segments;
  const taken: number[] = [];
  return {
    taken,
    take(payloadBytes) {
      if (left <= 0) return false;
      left--;
      taken.push(payloadBytes);
      return true;
    },
    refill() {
      left = segments;
    },
  };
}

const MSS = 1460;

describe('TCP engine: the send budget', () => {
  it('sends only what the turn allows, keeps the rest queued, and sends on after resumeSends', () => {
    const budget = segmentBudget(3);
    const h = tcpHarness({ sendBudget: budget });
    const { iss } = h.open({ window: 65535, options: { ...GUEST_SYN.options, windowScale: 7 } });
    const data = bytes(10 * MSS);
    const first = h.data(data).filter((s) => s.payload.length > 0);
    expect(first.map((s) => s.payload.length)).toEqual([MSS - 12, MSS - 12, MSS - 12]);
    expect(first[0]!.seq).toBe((iss + 1) >>> 0);
    expect(h.engine.sendsDeferred).toBe(true);
    // Still spent: resuming in the same turn sends nothing and keeps waiting.
    h.engine.resumeSends();
    h.engine.flush(h.clock.now());
    expect(h.takeTcp().filter((s) => s.payload.length > 0)).toEqual([]);
    expect(h.engine.sendsDeferred).toBe(true);
    budget.refill();
    h.engine.resumeSends();
    h.engine.flush(h.clock.now());
    const second = h.takeTcp().filter((s) => s.payload.length > 0);
    expect(second.map((s) => s.seq)).toEqual([0, 1, 2].map((i) => (iss + 1 + (3 + i) * (MSS - 12)) >>> 0));
    expect(budget.taken.every((n) => n === MSS - 12)).toBe(true);
  });

  it('still sends ACKs when the budget is spent', () => {
    const budget = segmentBudget(0);
    const h = tcpHarness({ sendBudget: budget });
    const { iss } = h.open();
    h.data(bytes(5000));
    expect(h.engine.sendsDeferred).toBe(true);
    expect(h.guestSends({ flags: ACK, seq: 1001, ack: (iss + 1) >>> 0, payload: bytes(100), options: { timestamp: { value: 5002, echo: 0 } } })).toEqual([]);
    const acks = h.advance(1000); // the delayed ACK
    expect(acks).toHaveLength(1);
    expect(acks[0]!.payload.length).toBe(0);
    expect(acks[0]!.ack).toBe(1101);
  });

  it('resumes the connections that sent nothing before the one the budget stopped midway', () => {
    const budget = segmentBudget(2);
    const h = tcpHarness({ sendBudget: budget });
    h.open();
    // A second connection from another guest port (flow 2).
    expect(h.guestSends({ srcPort: 40001 })).toEqual([]);
    const [synAck] = h.connect(2);
    expect(h.guestSends({ srcPort: 40001, flags: ACK, seq: 1001, ack: (synAck!.seq + 1) >>> 0, options: { timestamp: { value: 5001, echo: 0 } }, window: 502 })).toEqual([]);
    const portOf = (flow: number): number => h.engine.conn(flow)!.guest.port;
    // Flow 1 spends the turn midway; flow 2 gets nothing.
    const one = h.data(bytes(4 * MSS), 1).filter((s) => s.payload.length > 0);
    expect(one.map((s) => s.dstPort)).toEqual([portOf(1), portOf(1)]);
    expect(h.data(bytes(4 * MSS), 2).filter((s) => s.payload.length > 0)).toEqual([]);
    budget.refill();
    h.engine.resumeSends();
    h.engine.flush(h.clock.now());
    expect(h.takeTcp().filter((s) => s.payload.length > 0).map((s) => s.dstPort)).toEqual([portOf(2), portOf(2)]);
    budget.refill();
    h.engine.resumeSends();
    h.engine.flush(h.clock.now());
    // Flow 2 was stopped midway this time: flow 1 (stopped midway a turn earlier) first.
    expect(h.takeTcp().filter((s) => s.payload.length > 0).map((s) => s.dstPort)).toEqual([portOf(1), portOf(1)]);
  });

  it('forgets a connection that closed while it waited', () => {
    const budget = segmentBudget(0);
    const h = tcpHarness({ sendBudget: budget });
    const { iss } = h.open();
    h.data(bytes(3000));
    expect(h.engine.sendsDeferred).toBe(true);
    h.guestSends({ flags: 0x04, seq: 1001, ack: (iss + 1) >>> 0 });
    expect(h.engine.conn(1)).toBeUndefined();
    expect(h.engine.sendsDeferred).toBe(false);
  });

  it('without a budget sends the whole window at once (as before)', () => {
    const h = tcpHarness();
    h.open({ window: 65535, options: { ...GUEST_SYN.options, windowScale: 7 } });
    expect(h.data(bytes(10 * MSS)).filter((s) => s.payload.length > 0).length).toBeGreaterThanOrEqual(10);
    expect(h.engine.sendsDeferred).toBe(false);
  });
});
