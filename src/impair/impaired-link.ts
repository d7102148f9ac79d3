/**
 * Link impairment: delay, jitter, loss, duplication, reordering and a rate limit on one
 * direction of a guest link, sans-IO.
 *
 * Theory of operation
 * -------------------
 * A network (`src/network/network.ts`) gives each guest port two `ImpairedLink`s when its
 * configuration asks for impairment (`spec.ts`): one for the frames the guest sends (before
 * they reach the switch) and one for the frames it receives (after the switch). So every frame
 * a guest exchanges — with the gateway, the DNS server, the NAT or another guest — crosses the
 * impaired link, in both directions; a guest-to-guest frame crosses two links (its sender's and
 * its receiver's) and is impaired on each, as on a real switch with two bad cables.
 * Unimpaired networks create none of this: their ports are the plain switch ports.
 *
 * Each frame offered at `nowMs` goes through, in order:
 * 1. loss: dropped with probability `lossPct` ('impair.loss');
 * 2. duplication: with probability `duplicatePct` a second copy follows it through the same
 *    steps ('impair.duplicate');
 * 3. the rate limit (`rateBitsPerS`): a token bucket holding at most BURST_MS worth of bits
 *    (and at least one largest frame). A frame whose bits the bucket holds leaves now; otherwise
 *    the bucket goes into debt and the frame leaves when the debt would be paid. Departures are
 *    therefore in order and spaced by each frame's serialisation time once the bucket is empty;
 * 4. delay: the frame arrives `delayMs` after it departs, ± a jitter drawn uniformly from
 *    [-jitterMs, +jitterMs]. Jitter never reorders: a frame never arrives before the frame
 *    ahead of it (its time is raised to that one's), unlike Linux netem, whose jitter reorders
 *    by default. Reordering is asked for explicitly:
 * 5. reorder: with probability `reorderPct` the frame is held back and released right after
 *    the next frame of this direction (the two swap places), or after REORDER_HOLD_MS when no
 *    next frame comes, so a lone last frame is late but never lost. One frame is held at a time.
 * Frames then wait in a FIFO queue (its arrival times never decrease) until their time, and
 * are delivered by `advance(nowMs)`; the owner asks `nextDeadline()` when to call it. A frame
 * due now with nothing queued ahead of it is delivered at once, inside `offer`, so loss or
 * duplication alone adds no latency and no timer.
 *
 * Bounds: the queue holds at most `maxFrames` frames and `maxBytes` bytes; a frame beyond
 * either is dropped at the tail ('impair.queue-full'), as a router's queue would. A rate limit
 * below what a guest sends fills the queue, so this is also where a saturated link loses
 * frames. Frames are kept, never copied or mutated (the network's contract with its ports).
 *
 * Determinism: every random draw comes from the injected `Random` and is taken only for an
 * impairment that is configured (a loss of 0 draws nothing), and time only from the `nowMs`
 * the owner passes; the same frames at the same times with the same seed give the same output
 * (replay). References: Linux netem (tc-netem(8)) for the vocabulary; RFC 2697 for the token
 * bucket's committed-rate meter.
 */
import type { Random } from '../util/clock.js';
import type { Counters } from '../util/drops.js';
import type { LinkImpairment } from './spec.js';

/** What an impaired link counts, by name. */
export const IMPAIR_DROPS = ['impair.loss', 'impair.queue-full'] as const;
export const IMPAIR_EVENTS = ['impair.duplicate', 'impair.reorder'] as const;

/** The token bucket holds this much time's worth of bits: short bursts pass at line speed. */
export const BURST_MS = 10;
/** A held (reordered) frame waits at most this long for a frame to overtake it. */
export const REORDER_HOLD_MS = 10;

export interface ImpairedLinkLimits {
  /** Frames the queue holds at most (netem's default limit is 1000). */
  readonly maxFrames: number;
  /** Bytes the queue holds at most. */
  readonly maxBytes: number;
}

export const DEFAULT_IMPAIRED_LINK_LIMITS: ImpairedLinkLimits = { maxFrames: 1000, maxBytes: 4 << 20 };

/** The largest frame a link carries (a 65535-byte MTU's frame): the bucket holds at least this. */
const MAX_FRAME_BYTES = 65_535 + 18;

/** `pct` percent as a threshold on a uniform u32: a draw below it happens. */
const threshold = (pct: number): number => Math.round((pct / 100) * 0x1_0000_0000);

export class ImpairedLink {
  readonly #spec: LinkImpairment;
  readonly #random: Random;
  readonly #counters: Counters;
  readonly #deliver: (frame: Uint8Array, nowMs: number) => void;
  readonly #limits: ImpairedLinkLimits;
  readonly #lossBelow: number;
  readonly #duplicateBelow: number;
  readonly #reorderBelow: number;
  /** Bits per millisecond; 0: unlimited. */
  readonly #bitsPerMs: number;
  readonly #bucketBits: number;
  /** Bits in the bucket at #tokensAtMs; negative: debt that frames already queued will pay. */
  #tokens: number;
  #tokensAtMs = -Infinity;
  /** The FIFO queue: frames and their arrival times from #head on; times never decrease. */
  #frames: Uint8Array[] = [];
  #dueMs: number[] = [];
  #head = 0;
  #queuedBytes = 0;
  /** The frame held back for reordering, its arrival time, and when it is released alone. */
  #held: Uint8Array | undefined;
  #heldDueMs = 0;
  #heldUntilMs = 0;

  constructor(spec: LinkImpairment, random: Random, counters: Counters, deliver: (frame: Uint8Array, nowMs: number) => void, limits = DEFAULT_IMPAIRED_LINK_LIMITS) {
    this.#spec = spec;
    this.#random = random;
    this.#counters = counters;
    this.#deliver = deliver;
    this.#limits = limits;
    this.#lossBelow = threshold(spec.lossPct);
    this.#duplicateBelow = threshold(spec.duplicatePct);
    this.#reorderBelow = threshold(spec.reorderPct);
    this.#bitsPerMs = spec.rateBitsPerS === undefined ? 0 : spec.rateBitsPerS / 1000;
    this.#bucketBits = Math.max(MAX_FRAME_BYTES * 8, this.#bitsPerMs * BURST_MS);
    this.#tokens = this.#bucketBits;
  }

  /** Frames waiting (queued or held). */
  get queuedFrames(): number {
    return this.#frames.length - this.#head + (this.#held === undefined ? 0 : 1);
  }

  /** Bytes waiting (queued or held). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** One frame into the link at `nowMs`: delivered now, later (advance) or dropped (counted). */
  offer(frame: Uint8Array, nowMs: number): void {
    if (this.#lossBelow !== 0 && this.#random.u32() < this.#lossBelow) return this.#counters.count('impair.loss');
    this.#pass(frame, nowMs);
    if (this.#duplicateBelow !== 0 && this.#random.u32() < this.#duplicateBelow) {
      this.#counters.count('impair.duplicate');
      this.#pass(frame, nowMs);
    }
  }

  /** When `advance` has something to do; undefined: nothing waits. */
  nextDeadline(): number | undefined {
    const next = this.#head < this.#frames.length ? this.#dueMs[this.#head]! : undefined;
    if (this.#held === undefined) return next;
    return next === undefined || this.#heldUntilMs < next ? this.#heldUntilMs : next;
  }

  /** Delivers every frame due by `nowMs`, in order. */
  advance(nowMs: number): void {
    if (this.#held !== undefined && this.#heldUntilMs <= nowMs) this.#releaseHeld();
    while (this.#head < this.#frames.length && this.#dueMs[this.#head]! <= nowMs) {
      const frame = this.#frames[this.#head]!;
      // Cleared so delivered frames are not kept alive by the queue's arrays.
      this.#frames[this.#head] = EMPTY;
      this.#head++;
      this.#queuedBytes -= frame.length;
      this.#deliver(frame, nowMs);
    }
    this.#compact();
  }

  /** Forgets every waiting frame (the port left). */
  clear(): void {
    this.#frames = [];
    this.#dueMs = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#held = undefined;
  }

  /** Steps 3 to 5 for one copy of a frame. */
  #pass(frame: Uint8Array, nowMs: number): void {
    if (this.queuedFrames >= this.#limits.maxFrames || this.#queuedBytes + frame.length > this.#limits.maxBytes)
      return this.#counters.count('impair.queue-full');
    let dueMs = nowMs;
    if (this.#bitsPerMs !== 0) {
      const refill = (nowMs - this.#tokensAtMs) * this.#bitsPerMs;
      this.#tokens = Math.min(this.#bucketBits, this.#tokens + refill);
      this.#tokensAtMs = nowMs;
      this.#tokens -= frame.length * 8;
      if (this.#tokens < 0) dueMs += -this.#tokens / this.#bitsPerMs;
    }
    const { delayMs, jitterMs } = this.#spec;
    if (delayMs !== 0) dueMs += jitterMs === 0 ? delayMs : delayMs - jitterMs + (this.#random.u32() / 0x1_0000_0000) * 2 * jitterMs;
    if (this.#reorderBelow !== 0) {
      if (this.#held === undefined && this.#random.u32() < this.#reorderBelow) {
        this.#counters.count('impair.reorder');
        this.#held = frame;
        this.#queuedBytes += frame.length;
        this.#heldDueMs = dueMs;
        this.#heldUntilMs = Math.max(dueMs, nowMs + REORDER_HOLD_MS);
        return;
      }
      if (this.#held !== undefined) {
        // This frame overtakes the held one, which follows it at once.
        this.#enqueue(frame, dueMs, nowMs);
        return this.#releaseHeld(nowMs);
      }
    }
    this.#enqueue(frame, dueMs, nowMs);
  }

  #releaseHeld(nowMs?: number): void {
    const held = this.#held!;
    this.#held = undefined;
    this.#enqueue(held, this.#heldDueMs, nowMs, true);
  }

  /**
   * Appends to the FIFO (arrival no earlier than the frame ahead), or delivers now when nothing
   * waits and it is due. `counted`: the frame's bytes are already in #queuedBytes (it was held).
   */
  #enqueue(frame: Uint8Array, dueMs: number, nowMs: number | undefined, counted = false): void {
    const empty = this.#head === this.#frames.length;
    if (empty && nowMs !== undefined && dueMs <= nowMs) {
      if (counted) this.#queuedBytes -= frame.length;
      return this.#deliver(frame, nowMs);
    }
    const last = empty ? -Infinity : this.#dueMs[this.#dueMs.length - 1]!;
    this.#frames.push(frame);
    this.#dueMs.push(dueMs < last ? last : dueMs);
    if (!counted) this.#queuedBytes += frame.length;
  }

  /** Drops delivered slots once they are the larger part of the arrays. */
  #compact(): void {
    if (this.#head === this.#frames.length) {
      this.#frames.length = 0;
      this.#dueMs.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#dueMs = this.#dueMs.slice(this.#head);
      this.#head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
