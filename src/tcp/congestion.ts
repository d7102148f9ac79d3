/**
 * Congestion control of one connection, towards the guest: NewReno-style (RFC 5681, RFC 6582)
 * with SACK-driven loss detection and hole retransmission decided by the connection (RFC 6675
 * as implemented there), an RFC 6928 initial window, and a recovery timer (RACK's idea,
 * RFC 8985, reduced to the first hole) whose delay is computed here.
 *
 * Only the window arithmetic lives here; what to retransmit, and when an ACK counts as a
 * duplicate, is the connection's (conn.ts). All sizes are bytes; `smss` is the connection's
 * segment size (payload bytes per full segment).
 */
import { seqGe } from '../util/seq.js';

/** cwnd never grows past this (1 GiB: far above any window the guest can offer). */
export const MAX_CWND = 1 << 30;
/** Floor of the recovery timer, ms (below the RTO's 200 ms: the guest is one link away). */
const MIN_RECOVERY_MS = 10;
/** The most the recovery timer backs off: 2^6 × its base, then the RTO caps it anyway. */
const MAX_RECOVERY_BACKOFF = 6;

/** RFC 6928 §2: IW = min(10 × MSS, max(2 × MSS, 14600)). */
export const initialWindow = (smss: number): number => Math.min(10 * smss, Math.max(2 * smss, 14600));

export class Congestion {
  /**
   * cwnd (RFC 5681 §2), bytes: 0 until the handshake negotiates the segment size (`start`),
   * then at least 1 SMSS and at most MAX_CWND (+ 3 SMSS right after entering recovery).
   */
  cwnd = 0;
  /** ssthresh (RFC 5681 §3.1), bytes: MAX_CWND ("arbitrarily high") until the first loss, then ≥ 2 SMSS. */
  ssthresh = MAX_CWND;
  /** Duplicate ACKs in a row (RFC 5681 §2); 0 after a new ACK or a timeout. */
  dupAcks = 0;
  /** In fast recovery (RFC 5681 §3.2, RFC 6582 §3.2): from fast retransmit until an ACK reaches `recoverSeq` or an RTO. */
  inRecovery = false;
  /** "recover" (RFC 6582 §3.2 step 2): SND.MAX when recovery began; meaningful while `inRecovery`. */
  recoverSeq = 0;
  /** HighRxt (RFC 6675 §2): retransmissions in this recovery (or since the last RTO) cover sequence numbers below it. */
  rexmitHigh = 0;
  /** Exponent of the recovery timer's backoff, 0..6; 0 again whenever recovery makes progress. */
  recoveryBackoff = 0;

  /** The segment size is known (handshake): the initial window (RFC 6928). */
  start(smss: number): void {
    this.cwnd = initialWindow(smss);
  }

  /** A new ACK outside recovery acknowledged `ackedSeqs`: slow start, else congestion avoidance (RFC 5681 §3.1). */
  grow(ackedSeqs: number, smss: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd = Math.min(MAX_CWND, this.cwnd + ackedSeqs);
    } else {
      this.cwnd = Math.min(MAX_CWND, this.cwnd + Math.max(1, Math.floor((smss * ackedSeqs) / this.cwnd)));
    }
  }

  /** Whether `ack` ends fast recovery (RFC 6582 §3.2 step 3: a full acknowledgment). */
  fullyAcks(ack: number): boolean {
    return seqGe(ack, this.recoverSeq);
  }

  /** RFC 6582 §3.2 step 3 "full acknowledgment": leave recovery, deflate to ssthresh. */
  exitRecovery(smss: number): void {
    this.inRecovery = false;
    this.cwnd = Math.max(this.ssthresh, smss);
  }

  /** RFC 6582 §3.2 step 3 "partial acknowledgment": deflate by what was acked, add back one segment. */
  partialAck(ackedSeqs: number, smss: number): void {
    this.cwnd = Math.max(smss, this.cwnd - ackedSeqs + smss);
  }

  /** RFC 5681 §3.2 step 4: a further duplicate ACK in recovery inflates the window by a segment. */
  inflate(smss: number): void {
    this.cwnd = Math.min(MAX_CWND, this.cwnd + smss);
  }

  /**
   * RFC 5681 §3.2 steps 2–3: fast retransmit starts recovery with `flightBytes` outstanding
   * and SND.MAX at `sndMax`. The caller retransmits and sets `rexmitHigh`.
   */
  enterRecovery(flightBytes: number, smss: number, sndMax: number): void {
    this.ssthresh = Math.max(Math.floor(flightBytes / 2), 2 * smss);
    this.cwnd = this.ssthresh + 3 * smss;
    this.inRecovery = true;
    this.recoverSeq = sndMax;
  }

  /** RFC 5681 §3.1 eqn 4 and §3.2 last paragraph: a retransmission timeout; restart from one segment. */
  onTimeout(flightBytes: number, smss: number): void {
    this.ssthresh = Math.max(Math.floor(flightBytes / 2), 2 * smss);
    this.cwnd = smss;
    this.inRecovery = false;
    this.dupAcks = 0;
  }

  /**
   * The recovery timer's delay, ms: about two round trips (at least 10 ms), backed off, never
   * beyond the RTO. `reset`: recovery made progress, start the backoff again.
   */
  recoveryDelayMs(srttMs: number, rtoMs: number, reset: boolean): number {
    if (reset) this.recoveryBackoff = 0;
    const base = Math.max(MIN_RECOVERY_MS, Math.ceil(2 * srttMs + 2));
    return Math.min(rtoMs, base * 2 ** this.recoveryBackoff);
  }

  /** The recovery timer fired: the next delay doubles. */
  backOffRecovery(): void {
    this.recoveryBackoff = Math.min(this.recoveryBackoff + 1, MAX_RECOVERY_BACKOFF);
  }
}
