/**
 * The timers of one connection as absolute deadlines on the injected clock (ms), undefined
 * when off — smoltcp's `Timer` with its `poll_at`. The connection arms and clears them; the
 * engine files `next()` in its DeadlineQueue and calls the connection back when it is due.
 */
export class TcpTimers {
  /** The guest's SYN waits for the host connect until then ('host-connecting' only). */
  connectAt: number | undefined = undefined;
  /**
   * Retransmission timeout (RFC 6298 §5): armed while sequence numbers are outstanding,
   * restarted by a new ACK and by a retransmission, off when all is acknowledged. Also
   * retransmits the SYN or SYN-ACK.
   */
  rtoAt: number | undefined = undefined;
  /** Zero-window probe (RFC 9293 §3.8.6.1): armed while data waits behind a zero window with nothing in flight. */
  persistAt: number | undefined = undefined;
  /** Delayed ACK (RFC 9293 §3.8.6.3): armed by a lone in-order segment, off once any segment carries the ACK. */
  dackAt: number | undefined = undefined;
  /** The end of TIME-WAIT (2×MSL; `timeWaitMs`). */
  timeWaitAt: number | undefined = undefined;
  /** In fast recovery: when to resend SND.UNA if it is still unacknowledged (a lost retransmission). */
  recoveryAt: number | undefined = undefined;

  /** When to release the send queue's ring if the queue is still empty (RING_IDLE_MS after it emptied). */
  ringAt: number | undefined = undefined;
  /** The earliest armed deadline, or undefined. */
  next(): number | undefined {
    let d = this.connectAt;
    const rto = this.rtoAt;
    if (rto !== undefined && (d === undefined || rto < d)) d = rto;
    const persist = this.persistAt;
    if (persist !== undefined && (d === undefined || persist < d)) d = persist;
    const dack = this.dackAt;
    if (dack !== undefined && (d === undefined || dack < d)) d = dack;
    const timeWait = this.timeWaitAt;
    if (timeWait !== undefined && (d === undefined || timeWait < d)) d = timeWait;
    const recovery = this.recoveryAt;
    if (recovery !== undefined && (d === undefined || recovery < d)) d = recovery;
    const ring = this.ringAt;
    if (ring !== undefined && (d === undefined || ring < d)) d = ring;
    return d;
  }

  /** Turns every timer off. */
  clear(): void {
    this.connectAt = this.rtoAt = this.persistAt = this.dackAt = this.timeWaitAt = this.recoveryAt = this.ringAt = undefined;
  }
}
