/** Time and randomness are injected into the sans-IO core (DESIGN.md, "Principles"). */

/** Monotonic milliseconds. */
export interface Clock {
  now(): number;
}

/** A source of uniformly random 32-bit unsigned integers. */
export interface Random {
  u32(): number;
}

/** The real clock: performance.now() is monotonic. */
export const systemClock: Clock = { now: () => performance.now() };

/** Crypto-quality randomness, refilled in blocks so one call costs little. */
export function systemRandom(): Random {
  const block = new Uint32Array(256);
  let next = block.length;
  return {
    u32(): number {
      if (next === block.length) {
        crypto.getRandomValues(block);
        next = 0;
      }
      return block[next++]!;
    },
  };
}

/** A clock for tests: time moves only when told to. */
export class ManualClock implements Clock {
  #nowMs: number;
  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }
  now(): number {
    return this.#nowMs;
  }
  advance(ms: number): void {
    this.#nowMs += ms;
  }
  set(ms: number): void {
    this.#nowMs = ms;
  }
}

/** A deterministic generator (xorshift32) for tests and replay. */
export function seededRandom(seed: number): Random {
  let x = seed >>> 0 || 0x9e3779b9;
  return {
    u32(): number {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x;
    },
  };
}
