/**
 * Round-trip time and the retransmission timeout of one connection (RFC 6298), with the
 * backoff counts of the timers that use it: the retransmission timer (§5.5) and the persist
 * timer (RFC 9293 §3.8.6.1).
 *
 * Samples come from two places, chosen by the connection: echoed timestamps (RFC 7323 §4.1,
 * a sample per ACK, retransmissions included) or, without them, one timed segment at a time,
 * never a retransmitted one (Karn's rule, RFC 6298 §3) — `startTiming` / `timedSample`.
 *
 * Bounds are Linux's rather than the RFC's: a 200 ms floor (TCP_RTO_MIN; RFC 6298 §2.4 says
 * 1 s, which is for the Internet: the guest is one link away) and a 60 s ceiling (§2.5).
 */
import { seqGt } from '../util/seq.js';

/** The RTO bounds, in ms (a subset of TcpLimits). */
export interface RtoLimits {
  /** RFC 6298 §2.1: the RTO before the first sample. */
  readonly initialRtoMs: number;
  readonly minRtoMs: number;
  readonly maxRtoMs: number;
}

/** The most a persist interval backs off: 2^16 × RTO, then maxRtoMs caps it anyway. */
const MAX_PERSIST_BACKOFF = 16;

export class RtoEstimator {
  /** SRTT (RFC 6298 §2), ms; 0 until the first sample. */
  srttMs = 0;
  /** RTTVAR (RFC 6298 §2), ms; 0 until the first sample. */
  rttvarMs = 0;
  /** A sample has been taken: the next one updates SRTT and RTTVAR (§2.3) instead of setting them (§2.2). */
  hasSample = false;
  /**
   * RTO, ms: initialRtoMs until the first sample, then SRTT + max(G, 4·RTTVAR) rounded up
   * (G = 1 ms), doubled by each `backOff` (§5.5); always within [minRtoMs, maxRtoMs] once
   * sampled, and never above maxRtoMs.
   */
  rtoMs: number;
  /** A segment is being timed (Karn): `timedSeq` and `timedStartMs` mean something. */
  timing = false;
  /** The sequence number of the timed segment's first byte; an ACK beyond it ends the measurement. */
  timedSeq = 0;
  /** When the timed segment was sent, clock ms. */
  timedStartMs = 0;
  /** Consecutive timeouts (of the SYN, or of the oldest outstanding segment) since the last new ACK; ≥ 0. */
  retries = 0;
  /** Persist timer backoff exponent, 0..16; reset when the guest's window opens. */
  persistBackoff = 0;
  readonly #limits: RtoLimits;

  constructor(limits: RtoLimits) {
    this.#limits = limits;
    this.rtoMs = limits.initialRtoMs;
  }

  /** Takes a round-trip sample, ms (RFC 6298 §2.2, §2.3: alpha 1/8, beta 1/4, G = 1 ms). */
  sample(rttMs: number): void {
    if (!this.hasSample) {
      this.srttMs = rttMs;
      this.rttvarMs = rttMs / 2;
      this.hasSample = true;
    } else {
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - rttMs);
      this.srttMs = 0.875 * this.srttMs + 0.125 * rttMs;
    }
    const l = this.#limits;
    this.rtoMs = Math.min(l.maxRtoMs, Math.max(l.minRtoMs, Math.ceil(this.srttMs + Math.max(1, 4 * this.rttvarMs))));
  }

  /** RFC 6298 §5.5: the timer expired, double the RTO (up to maxRtoMs). */
  backOff(): void {
    this.rtoMs = Math.min(this.#limits.maxRtoMs, this.rtoMs * 2);
  }

  /** Times the new segment starting at `seq`, sent at `nowMs`, unless one is already timed. */
  startTiming(seq: number, nowMs: number): void {
    if (this.timing) return;
    this.timing = true;
    this.timedSeq = seq;
    this.timedStartMs = nowMs;
  }

  /** Karn: a retransmission makes the running measurement ambiguous; drop it. */
  stopTiming(): void {
    this.timing = false;
  }

  /** If `ack` covers the timed segment: ends the measurement and returns its round trip, ms; else undefined. */
  timedSample(ack: number, nowMs: number): number | undefined {
    if (!this.timing || !seqGt(ack, this.timedSeq)) return undefined;
    this.timing = false;
    return nowMs - this.timedStartMs;
  }

  /** The persist timer's interval (RFC 9293 §3.8.6.1): the RTO (at least minRtoMs), backed off, at most maxRtoMs. */
  persistIntervalMs(): number {
    const l = this.#limits;
    return Math.min(l.maxRtoMs, Math.max(this.rtoMs, l.minRtoMs) * 2 ** this.persistBackoff);
  }

  /** The persist timer fired: the next interval doubles. */
  backOffPersist(): void {
    this.persistBackoff = Math.min(this.persistBackoff + 1, MAX_PERSIST_BACKOFF);
  }
}
