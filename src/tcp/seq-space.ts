/**
 * The sequence space of one connection, a record per direction (RFC 9293 §3.3.1): what we
 * sent towards the guest, what it acknowledged and what its window allows (`SendSpace`);
 * what the guest sent us and the window we advertised (`ReceiveSpace`).
 *
 * Records, not actors: they hold the variables and the arithmetic that belongs to them; the
 * connection (conn.ts) decides when they move. Every sequence number is a u32 compared with
 * util/seq, never with `<`.
 */
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqSub } from '../util/seq.js';

/** RFC 9293 §3.7.1: the MSS to assume when the SYN carries none. */
export const DEFAULT_MSS = 536;

/**
 * The send sequence variables, towards the guest (RFC 9293 §3.3.1, Figure 4, plus SND.MAX).
 * Invariant: una ≤ nxt ≤ max (modulo 2^32), and max − una never exceeds the queued bytes
 * plus the SYN and the FIN.
 */
export class SendSpace {
  /** ISS: our initial sequence number (from the injected Random); our SYN occupies it. */
  readonly iss: number;
  /** SND.UNA: the oldest sequence number the guest has not acknowledged; only moves right. */
  una: number;
  /**
   * SND.NXT: the next sequence number to send. An RTO moves it back to `una` (go-back-N) and
   * sending skips ranges the guest SACKed, so nxt < max while data is being resent.
   */
  nxt: number;
  /** SND.MAX: the highest sequence number sent + 1; only moves right. */
  max: number;
  /** SND.WND: the guest's window in bytes, scaled by `shift` (a SYN's is never scaled, RFC 7323 §2.2). */
  wnd = 0;
  /** The largest `wnd` the guest offered: sender SWS avoidance compares with half of it (RFC 9293 §3.8.6.2.1). */
  maxWnd = 0;
  /** SND.WL1: the sequence number of the segment that last set `wnd` (RFC 9293 §3.10.7.4). */
  wl1 = 0;
  /** SND.WL2: the acknowledgment number of the segment that last set `wnd`. */
  wl2 = 0;
  /** The guest's MSS in bytes: from its SYN, else DEFAULT_MSS (RFC 9293 §3.7.1); > 0. */
  mss = DEFAULT_MSS;
  /** Snd.Wind.Shift (RFC 7323 §2.3): the guest's window scale, 0..14; 0 unless the guest offered scaling. */
  shift = 0;
  /** The guest acknowledged our SYN: from then on `una` is the sequence number of the first queued byte. */
  synAcked = false;

  constructor(iss: number) {
    this.iss = iss >>> 0;
    this.una = this.iss;
    this.nxt = this.iss;
    this.max = this.iss;
  }

  /** The sequence number of the first byte in the send queue: una, or una + 1 while the SYN is unacknowledged. */
  dataSeq(): number {
    return this.synAcked ? this.una : seqAdd(this.una, 1);
  }

  /** Sequence numbers sent and not acknowledged (SYN and FIN included). */
  outstanding(): number {
    return seqSub(this.max, this.una);
  }

  /** Everything sent is acknowledged. */
  allAcked(): boolean {
    return this.una === this.max;
  }

  /** Records that sequence numbers up to `end` (exclusive) have been sent: max moves right if needed. */
  sentTo(end: number): void {
    if (seqGt(end, this.max)) this.max = end;
  }

  /** A new cumulative ACK: una moves to `ack`, and nxt with it if it was behind (after go-back-N). */
  acked(ack: number): void {
    this.una = ack;
    if (seqLt(this.nxt, ack)) this.nxt = ack;
  }

  /** Whether a segment (`seq`, `ack`) may set the window: it is not older than the last that did (RFC 9293 §3.10.7.4). */
  mayUpdateWindow(seq: number, ack: number): boolean {
    return seqLt(this.wl1, seq) || (this.wl1 === seq && seqLe(this.wl2, ack));
  }

  /** Takes the window `wndBytes` (already scaled) from the segment (`seq`, `ack`). */
  updateWindow(wndBytes: number, seq: number, ack: number): void {
    this.wnd = wndBytes;
    this.wl1 = seq;
    this.wl2 = ack;
    if (wndBytes > this.maxWnd) this.maxWnd = wndBytes;
  }
}

/**
 * The receive sequence variables, from the guest (RFC 9293 §3.3.1, Figure 5). RCV.WND is not
 * stored: it is what `edge` − `nxt` was when last advertised.
 */
export class ReceiveSpace {
  /** IRS: the guest's initial sequence number (its SYN's); 0 before the SYN. */
  irs = 0;
  /** RCV.NXT: the next sequence number expected; everything before it went to the host socket (or was the SYN or the FIN). */
  nxt = 0;
  /**
   * The right edge of the window last advertised (RCV.NXT + RCV.WND when it was sent); never
   * moves left (RFC 9293 §3.8.6.2.2, RFC 7323 §2.4). nxt ≤ edge, except that a FIN ending
   * at the edge takes nxt one past it.
   */
  edge = 0;
  /** Rcv.Wind.Shift (RFC 7323 §2.3): ours, the smallest that fits the receive budget; applies only if the guest offered scaling. */
  readonly shift: number;

  constructor(shift: number) {
    this.shift = shift;
  }

  /** The guest's SYN (or SYN-ACK) at `seq`: it occupies one sequence number; the window is empty until we advertise. */
  synReceived(seq: number): void {
    this.irs = seq;
    this.nxt = seqAdd(seq, 1);
    this.edge = this.nxt;
  }

  /**
   * RFC 9293 §3.10.7.4 "first": the segment [seq, seq + segLen) overlaps the window —
   * lenient at the left edge, like Linux's tcp_sequence: anything ending at or after nxt
   * (so a segment ending exactly at nxt is processed for its ACK) and starting at or before
   * the right edge.
   */
  acceptable(seq: number, segLen: number): boolean {
    return seqGe(seqAdd(seq, segLen), this.nxt) && seqLe(seq, this.edge);
  }

  /** Bytes promised to the guest beyond nxt by the last advertised window (may be −1 after a FIN at the edge). */
  promisedBytes(): number {
    return seqSub(this.edge, this.nxt);
  }

  /**
   * The 16-bit window field offering `windowBytes` (scaled by `shift` when `scaled`), never
   * less than what was already promised; moves `edge` right if the new window reaches further.
   */
  advertise(windowBytes: number, scaled: boolean): number {
    // A multiplier, not `2 ** shift`: this runs for every segment and V8 calls pow() for it.
    const scale = scaled ? 1 << this.shift : 1;
    let field = Math.min(0xffff, Math.floor(windowBytes / scale));
    const promised = seqSub(this.edge, this.nxt);
    if (promised > field * scale) field = Math.min(0xffff, Math.ceil(promised / scale));
    const edge = seqAdd(this.nxt, field * scale);
    if (seqGt(edge, this.edge)) this.edge = edge;
    return field;
  }
}
