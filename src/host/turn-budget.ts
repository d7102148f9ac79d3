/**
 * The send budget of one event-loop turn (StackDeps.sendBudget), shared by every network of
 * the process: how much TCP data all connections together may send toward guests before the
 * loop gets to run its timers and read its other sockets again.
 *
 * Why: a turn of the daemon's loop read every readable host socket and flushed every
 * connection that had data, each as far as its window went; in the check phase after a poll
 * that found 100 busy sockets, that was thousands of frames in one go. bench/scale.ts saw
 * 17–60 ms of the daemon's own CPU between two ticks of a 1 ms timer (the event-loop lag
 * that a core of its own would show) with 100 bulk flows, dominated by that flush. With
 * the budget a turn sends about PER_TURN_BYTES and yields; the connections it stopped send
 * on in the next turn, after the poll phase has read the guests' ACKs (and the timers ran).
 *
 * Accounting: a data segment costs its payload plus FRAME_COST_BYTES (what building, checksumming
 * and writing one frame costs besides its bytes: about as much as 4 KB of payload on the dgram
 * link). `take` refuses once the turn's budget is spent — the segment that crosses the line
 * still goes, so every turn makes progress however large the MTU.
 *
 * Refills: the charge that spends the budget (or a `wait`) arms a refill for the check phase
 * (setImmediate); a turn that leaves budget over arms nothing, so light traffic — a round
 * trip's one segment — costs no extra callback per turn, and a budget lasts until it is spent
 * (a turn sends at most what was left at its start and one refill's worth). The refill
 * restores the budget and first lets the networks that waited (`wait`) resume, in the order
 * they began to wait; a network the budget stops again waits at the back, so networks take
 * turns. A refill armed in the check phase runs in the next turn's check phase: while
 * networks keep waiting, the poll phase in between finds the budget spent and sends nothing
 * (it reads ACKs and host data, which is cheap), and each turn sends about one budget.
 */
import type { SendBudget } from '../net/seams.js';

/** Bytes-equivalent a turn may send: about 1 ms of the daemon's CPU at MTU 1500 (190 frames), 15 frames of 64 KB. */
export const PER_TURN_BYTES = 1 << 20;
/** What a frame costs besides its payload, in bytes-equivalent. */
export const FRAME_COST_BYTES = 4096;

export interface TurnBudgetOptions {
  /** Budget per turn (default PER_TURN_BYTES). */
  readonly perTurnBytes?: number;
  /** Per-frame cost (default FRAME_COST_BYTES). */
  readonly frameCostBytes?: number;
  /** Runs `fn` in a later phase of the loop (default setImmediate); tests step it by hand. */
  readonly defer?: (fn: () => void) => void;
}

export class TurnBudget implements SendBudget {
  readonly #perTurn: number;
  readonly #frameCost: number;
  readonly #defer: (fn: () => void) => void;
  /** What this turn may still send (may go below zero by the last segment's cost). */
  #left: number;
  #refillArmed = false;
  /** Who waits for budget, in order; each is called once per `wait`. */
  readonly #waiting = new Set<() => void>();

  constructor(o: TurnBudgetOptions = {}) {
    this.#perTurn = o.perTurnBytes ?? PER_TURN_BYTES;
    this.#frameCost = o.frameCostBytes ?? FRAME_COST_BYTES;
    this.#defer = o.defer ?? ((fn) => { setImmediate(fn); });
    this.#left = this.#perTurn;
  }

  /** What this turn may still send, in bytes-equivalent. */
  get left(): number {
    return this.#left;
  }

  /** Callers waiting for a refill. */
  get waiting(): number {
    return this.#waiting.size;
  }

  take(payloadBytes: number): boolean {
    if (this.#left <= 0) return false;
    this.#left -= payloadBytes + this.#frameCost;
    if (this.#left <= 0) this.#armRefill();
    return true;
  }

  /** Calls `resume` once, after a refill (a later phase of the loop). Waiting twice is waiting once. */
  wait(resume: () => void): void {
    this.#waiting.add(resume);
    this.#armRefill();
  }

  /** Forgets a waiter (its network closed). */
  cancel(resume: () => void): void {
    this.#waiting.delete(resume);
  }

  #armRefill(): void {
    if (this.#refillArmed) return;
    this.#refillArmed = true;
    this.#defer(this.#refill);
  }

  readonly #refill = (): void => {
    this.#refillArmed = false;
    this.#left = this.#perTurn;
    // Those waiting now, in order, while the budget lasts; one that waits again goes to the
    // back (a Set re-adds at the end) and is not called twice in this refill.
    const due = [...this.#waiting];
    for (const resume of due) {
      if (this.#left <= 0) break;
      this.#waiting.delete(resume);
      resume();
    }
    if (this.#waiting.size > 0) this.#armRefill();
  };
}

/** The send budget every LiveNetwork of the process shares unless given its own: one event loop, one budget. */
export const processTurnBudget = new TurnBudget();

/**
 * The same for host reads (NodeTcpOptions.readBudget): a turn reads about 4 MiB from host
 * sockets (a read costs its copy plus an event, counted as 16 KB), four times what it may
 * send, so queues stay full while no turn copies 100 sockets' megabytes.
 */
export const processReadBudget = new TurnBudget({ perTurnBytes: 4 << 20, frameCostBytes: 16 << 10 });
