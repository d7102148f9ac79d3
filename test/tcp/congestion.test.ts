import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Congestion, initialWindow, MAX_CWND } from '../../src/tcp/congestion.js';

const SMSS = 1448;

describe('tcp/congestion Congestion (RFC 5681, 6582, 6928)', () => {
  it('RFC 6928 §2: IW = min(10·MSS, max(2·MSS, 14600))', () => {
    expect(initialWindow(1460)).toBe(14600);
    expect(initialWindow(536)).toBe(5360);
    expect(initialWindow(8960)).toBe(17920);
    const c = new Congestion();
    expect(c.cwnd).toBe(0);
    c.start(SMSS);
    expect(c.cwnd).toBe(14480);
    expect(c.ssthresh).toBe(MAX_CWND);
  });

  it('RFC 5681 §3.1: slow start adds the bytes acked; congestion avoidance about one SMSS per window', () => {
    const c = new Congestion();
    c.start(SMSS);
    c.grow(2 * SMSS, SMSS);
    expect(c.cwnd).toBe(14480 + 2 * SMSS);
    c.ssthresh = c.cwnd;                         // now in congestion avoidance
    const before = c.cwnd;
    for (let acked = 0; acked < before; acked += SMSS) c.grow(SMSS, SMSS);
    expect(c.cwnd - before).toBeGreaterThan(SMSS * 0.9);
    expect(c.cwnd - before).toBeLessThan(SMSS * 1.1);
    c.grow(1, SMSS);                             // a tiny ACK still grows it by a byte
    expect(c.cwnd).toBeGreaterThan(before);
  });

  it('RFC 5681 §3.2 and RFC 6582 §3.2: enter recovery, inflate, partial ACK, full ACK', () => {
    const c = new Congestion();
    c.start(SMSS);
    c.enterRecovery(20 * SMSS, SMSS, 5000);
    expect([c.ssthresh, c.cwnd, c.inRecovery, c.recoverSeq]).toEqual([10 * SMSS, 13 * SMSS, true, 5000]);
    c.inflate(SMSS);
    expect(c.cwnd).toBe(14 * SMSS);
    c.partialAck(3 * SMSS, SMSS);                // deflate by what was acked, add back one
    expect(c.cwnd).toBe(12 * SMSS);
    expect(c.fullyAcks(4999)).toBe(false);
    expect(c.fullyAcks(5000)).toBe(true);
    c.exitRecovery(SMSS);
    expect([c.inRecovery, c.cwnd]).toEqual([false, 10 * SMSS]);
  });

  it('ssthresh is at least 2·SMSS; a timeout restarts from one segment (RFC 5681 eqn 4)', () => {
    const c = new Congestion();
    c.start(SMSS);
    c.enterRecovery(SMSS, SMSS, 0);
    expect(c.ssthresh).toBe(2 * SMSS);
    c.dupAcks = 5;
    c.onTimeout(8 * SMSS, SMSS);
    expect([c.cwnd, c.ssthresh, c.inRecovery, c.dupAcks]).toEqual([SMSS, 4 * SMSS, false, 0]);
  });

  it('the recovery timer waits about two round trips, at least 10 ms, backs off, never past the RTO', () => {
    const c = new Congestion();
    expect(c.recoveryDelayMs(0, 200, true)).toBe(10);
    expect(c.recoveryDelayMs(20, 200, true)).toBe(42);
    const seen: number[] = [];
    for (let i = 0; i < 9; i++) {
      seen.push(c.recoveryDelayMs(20, 1000, false));
      c.backOffRecovery();
    }
    expect(seen).toEqual([42, 84, 168, 336, 672, 1000, 1000, 1000, 1000]);
    expect(c.recoveryBackoff).toBe(6);
    expect(c.recoveryDelayMs(20, 1000, true)).toBe(42);
  });

  it('cwnd stays within [1 SMSS, MAX_CWND + 3 SMSS] whatever the events (property)', () => fc.assert(fc.property(
    fc.integer({ min: 1, max: 65_000 }),
    fc.array(fc.oneof(
      fc.record({ grow: fc.nat(1 << 24) }),
      fc.record({ partial: fc.nat(1 << 24) }),
      fc.record({ enter: fc.nat(1 << 30) }),
      fc.constantFrom('inflate', 'exit', 'timeout'),
    ), { maxLength: 80 }),
    (smss, events) => {
      const c = new Congestion();
      c.start(smss);
      for (const e of events) {
        if (e === 'inflate') c.inflate(smss);
        else if (e === 'exit') c.exitRecovery(smss);
        else if (e === 'timeout') c.onTimeout(c.cwnd, smss);
        else if ('grow' in e) c.grow(e.grow, smss);
        else if ('partial' in e) c.partialAck(e.partial, smss);
        else c.enterRecovery(e.enter, smss, 0);
        expect(c.cwnd).toBeGreaterThanOrEqual(smss);
        expect(c.cwnd).toBeLessThanOrEqual(MAX_CWND + 3 * smss);
        expect(c.ssthresh).toBeGreaterThanOrEqual(2 * smss);
      }
    })));
});
