/**
 * Drop reasons and their counters. A `Drop` is a string literal such as
 * `'ipv4.bad-checksum'`: the parser's return value and the counter's label at once. The names
 * are a fixed list (drop-reasons.ts); counting a name not on it does not compile.
 * Anything the guest can send that we refuse is counted here, never thrown.
 */
import type { CountedEvent, Drop } from './drop-reasons.js';

export { COUNTED_EVENTS, DROP_REASON_GROUPS, DROP_REASONS, HOST_ERRNOS, hostErrno, isDropReason, type CountedEvent, type Drop, type HostErrno } from './drop-reasons.js';

/**
 * A named problem that is reported, not counted (a malformed capture file or snapshot):
 * `layer.reason` like a Drop, but not on the drop list.
 */
export type Problem = `${string}.${string}`;

export const isDrop = (v: unknown): v is Drop => typeof v === 'string';

/** A bag of named counters; reading an unknown name gives 0. By default it takes drop reasons and counted events only. */
export class Counters<N extends string = Drop | CountedEvent> {
  readonly #counts = new Map<string, number>();

  count(name: N, n = 1): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + n);
  }

  get(name: N): number {
    return this.#counts.get(name) ?? 0;
  }

  /** Sum of every counter whose name starts with `prefix`. */
  total(prefix = ''): number {
    let t = 0;
    for (const [k, v] of this.#counts) if (k.startsWith(prefix)) t += v;
    return t;
  }

  /** A plain, sorted snapshot for logs and APIs. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}
