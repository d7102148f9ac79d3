import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RtoEstimator } from '../../src/tcp/rto.js';

/** RFC 6298's own bounds (§2.1 initial 1 s, §2.4 floor 1 s, §2.5 a ceiling of at least 60 s). */
const RFC = { initialRtoMs: 1000, minRtoMs: 1000, maxRtoMs: 60_000 };
/** Ours: Linux's 200 ms floor. */
const OURS = { initialRtoMs: 1000, minRtoMs: 200, maxRtoMs: 60_000 };

describe('tcp/rto RtoEstimator (RFC 6298)', () => {
  it('§2.1: 1 s before any sample', () => {
    const r = new RtoEstimator(RFC);
    expect([r.rtoMs, r.srttMs, r.rttvarMs, r.hasSample]).toEqual([1000, 0, 0, false]);
  });

  it('§2.2: the first sample R sets SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4·RTTVAR)', () => {
    const r = new RtoEstimator(OURS);
    r.sample(100);
    expect([r.srttMs, r.rttvarMs, r.rtoMs]).toEqual([100, 50, 300]);
  });

  it('§2.3: later samples with alpha 1/8, beta 1/4 (RTTVAR first, with the old SRTT)', () => {
    const r = new RtoEstimator(OURS);
    r.sample(100);
    r.sample(200);
    // RTTVAR = 3/4·50 + 1/4·|100 − 200| = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5
    expect([r.srttMs, r.rttvarMs]).toEqual([112.5, 62.5]);
    expect(r.rtoMs).toBe(363);                  // ceil(112.5 + 250)
    r.sample(100);
    // RTTVAR = 3/4·62.5 + 1/4·12.5 = 50; SRTT = 7/8·112.5 + 1/8·100 = 110.9375
    expect([r.srttMs, r.rttvarMs, r.rtoMs]).toEqual([110.9375, 50, 311]);
  });

  it('§2.4: the floor (1 s in the RFC, 200 ms ours); G = 1 ms when RTTVAR is tiny', () => {
    const rfc = new RtoEstimator(RFC);
    rfc.sample(10);
    expect(rfc.rtoMs).toBe(1000);
    const ours = new RtoEstimator(OURS);
    for (let i = 0; i < 200; i++) ours.sample(500);
    expect(ours.rttvarMs).toBeLessThan(0.25);
    expect(ours.rtoMs).toBe(501);               // SRTT + G
    ours.sample(1);
    expect(ours.rtoMs).toBeGreaterThanOrEqual(200);
  });

  it('§2.5: the ceiling', () => {
    const r = new RtoEstimator(OURS);
    r.sample(50_000);
    expect(r.rtoMs).toBe(60_000);
  });

  it('§5.5: each timeout doubles the RTO, up to the ceiling', () => {
    const r = new RtoEstimator(OURS);
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      r.backOff();
      seen.push(r.rtoMs);
    }
    expect(seen).toEqual([2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    r.sample(100);                              // §5.7: a new sample recomputes it
    expect(r.rtoMs).toBe(300);
  });

  it('§3 (Karn): one segment timed at a time; an ACK beyond its first byte ends the measurement', () => {
    const r = new RtoEstimator(OURS);
    r.startTiming(0xfffffff0, 100);
    r.startTiming(0x10, 150);                  // ignored: one is already timed
    expect(r.timedSample(0xfffffff0, 160)).toBeUndefined();
    expect(r.timedSample(0x05, 170)).toBe(70);  // across the wrap
    expect(r.timing).toBe(false);
    expect(r.timedSample(0x20, 180)).toBeUndefined();
    r.startTiming(0x20, 200);
    r.stopTiming();                             // a retransmission: the measurement is ambiguous
    expect(r.timedSample(0x30, 210)).toBeUndefined();
  });

  it('persist intervals back off from the RTO (at least the floor) to the ceiling', () => {
    const r = new RtoEstimator(OURS);
    r.sample(100);                              // RTO 300
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      seen.push(r.persistIntervalMs());
      r.backOffPersist();
    }
    expect(seen).toEqual([300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 60000, 60000]);
    for (let i = 0; i < 30; i++) r.backOffPersist();
    expect(r.persistBackoff).toBe(16);
  });

  it('the RTO stays within its bounds whatever the samples and timeouts (property)', () => fc.assert(fc.property(
    fc.array(fc.oneof(fc.double({ min: 0, max: 200_000, noNaN: true }), fc.constant(-1)), { maxLength: 60 }),
    (steps) => {
      const r = new RtoEstimator(OURS);
      for (const s of steps) {
        if (s < 0) r.backOff(); else r.sample(s);
        expect(r.rtoMs).toBeLessThanOrEqual(OURS.maxRtoMs);
        if (r.hasSample) expect(r.rtoMs).toBeGreaterThanOrEqual(OURS.minRtoMs);
        expect(r.rttvarMs).toBeGreaterThanOrEqual(0);
      }
    })));
});
