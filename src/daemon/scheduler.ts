/**
 * One timer per stack (STYLE.md A.3): the shell re-arms it from `nextDeadline()` after every
 * entry into the stack, and calls `advance()` when it fires (cf. smoltcp's `poll_delay`).
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
    return this.#timer !== undefined;
  }

  /**
   * Call after every entry into the stack. Cheap when nothing got earlier: a pending timer
   * armed for the same or an earlier deadline is kept (if it fires before the stack's
   * deadline, it only re-arms), so a busy link does not re-create a timer per frame.
   */
  rearm(): void {
    if (this.#stopped) return;
    const at = this.#stack.nextDeadline();
    if (at === undefined) return this.#cancel();
    if (this.#timer !== undefined && this.#armedAt <= at) return;
    this.#cancel();
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, at - this.#clock.now()));
    this.#armedAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#armedAt = Infinity;
      const due = this.#stack.nextDeadline();
      if (due !== undefined && this.#clock.now() >= due) this.#stack.advance();
      this.#afterAdvance();
      this.rearm();
    }, delay);
  }

  /** Cancels the timer for good. */
  stop(): void {
    this.#stopped = true;
    this.#cancel();
  }

  #cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }
}
