/**
 * Drop reasons and their counters. A `Drop` is a string literal such as
 * `'ipv4.bad-checksum'`: the parser's return value and the counter's label at once.
 * Anything the guest can send that we refuse is counted here, never thrown.
 */

/** `layer.reason`, lower-case, hyphenated. */
export type Drop = `${string}.${string}`;

export const isDrop = (v: unknown): v is Drop => typeof v === 'string';

/** A bag of named counters; reading an unknown name gives 0. */
export class Counters {
  readonly #counts = new Map<string, number>();

  count(name: string, n = 1): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + n);
  }

  get(name: string): number {
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
