/**
 * One timer per stack (STYLE.md A.3): the shell re-arms it from `nextDeadline()` after every
 * entry into the stack, and calls `advance()` when it fires (cf. smoltcp's `poll_delay`).
 *
 * The timer's callback does not advance the stack itself: it defers the advance with
 * setImmediate, to the check phase of the same turn of the event loop, after the poll phase
 * has read what the sockets hold. Node runs due timers before it polls, so a daemon that did
 * not get a core for longer than an RTO (a loaded machine, a GC pause) would otherwise fire
 * the retransmission timer while the guest's ACKs for that data sit unread in the link's
 * socket: a spurious RTO, a collapsed congestion window and the whole flight sent again
 * (bench/qemu-path.ts saw this with a slow TCG guest: retransmissions of segments the guest
 * had acknowledged before the timer ran). Reading first is what a kernel does, whose receive
 * processing is not queued behind its timers.
 */
import type { Clock } from '../util/clock.js';

/** What the scheduler needs of a stack. */
export interface Timed {
  advance(): void;
  nextDeadline(): number | undefined;
}

/** setTimeout's largest delay (2^31 - 1 ms); later deadlines are re-armed on the way. */
const MAX_DELAY_MS = 0x7fffffff;

export class Scheduler {
  #timer: NodeJS.Timeout | undefined;
  /** The deferred advance of a timer that fired (see the file comment); rearm waits for it. */
  #immediate: NodeJS.Immediate | undefined;
  /** The deadline the pending timer was armed for. */
  #armedAt = Infinity;
  #stopped = false;
  readonly #stack: Timed;
  readonly #clock: Clock;
  /** Called after each timer-driven advance (the session re-checks its state there). */
  readonly #afterAdvance: () => void;

  constructor(stack: Timed, clock: Clock, afterAdvance: () => void = () => undefined) {
    this.#stack = stack;
    this.#clock = clock;
    this.#afterAdvance = afterAdvance;
  }

  /** Whether a timer is pending. */
  get armed(): boolean {
    return this.#timer !== undefined || this.#immediate !== undefined;
  }

  /**
   * Call after every entry into the stack. Cheap when nothing got earlier: a pending timer
   * armed for the same or an earlier deadline is kept (if it fires before the stack's
   * deadline, it only re-arms), so a busy link does not re-create a timer per frame.
   */
  rearm(): void {
    if (this.#stopped || this.#immediate !== undefined) return;
    const at = this.#stack.nextDeadline();
    if (at === undefined) return this.#cancel();
    if (this.#timer !== undefined && this.#armedAt <= at) return;
    this.#cancel();
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, at - this.#clock.now()));
    this.#armedAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#armedAt = Infinity;
      this.#immediate = setImmediate(() => {
        this.#immediate = undefined;
        const due = this.#stack.nextDeadline();
        if (due !== undefined && this.#clock.now() >= due) this.#stack.advance();
        this.#afterAdvance();
        this.rearm();
      });
    }, delay);
  }

  /** Cancels the timer for good. */
  stop(): void {
    this.#stopped = true;
    this.#cancel();
  }

  #cancel(): void {
    clearImmediate(this.#immediate);
    this.#immediate = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }
}
