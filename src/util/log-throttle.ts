/**
 * A rate limit for log lines about events a remote party can repeat at will (a refused
 * WebSocket origin, a forward client with no session): the first event is logged at once,
 * later ones at most once per interval, and each line says how many events it stands for,
 * so a flood costs one line per interval and loses no count. Pure: the caller passes the
 * time.
 */

/** Default interval between two lines about the same kind of event. */
export const LOG_THROTTLE_INTERVAL_MS = 10_000;

export class LogThrottle {
  readonly #intervalMs: number;
  /** When the last line was allowed; -Infinity before the first event. */
  #lastMs = -Infinity;
  /** Events since the last allowed line that were not logged. */
  #suppressed = 0;

  constructor(intervalMs = LOG_THROTTLE_INTERVAL_MS) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Records one event at `nowMs` (a monotonic clock). Returns undefined when no line should be
   * written now, or, when one should, how many earlier events went unlogged since the last
   * line (`suppressed`).
   */
  hit(nowMs: number): { readonly suppressed: number } | undefined {
    if (nowMs - this.#lastMs < this.#intervalMs) {
      this.#suppressed++;
      return undefined;
    }
    this.#lastMs = nowMs;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { suppressed };
  }
}
