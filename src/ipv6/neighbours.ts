/**
 * The gateway's neighbour cache for IPv6 (RFC 4861 §5.1, reduced): guest address → MAC,
 * learned from the link-layer options of solicitations and advertisements and from the
 * source of guests' packets. Bounded: when full, the least recently refreshed entry goes (a
 * guest inventing addresses cannot grow it). No reachability states: the guests sit on a
 * virtual switch whose ports do not move MACs behind our back, and a guest that changes its
 * MAC announces it (an unsolicited NA with Override, §7.2.6) or sends from it.
 */
import type { Ipv6Addr } from '../net/addr.js';

export const DEFAULT_NEIGHBOUR_CACHE_SIZE = 256;

export class NeighbourCache {
  /** Insertion order is refresh order: the first entry is the stalest. */
  readonly #entries = new Map<Ipv6Addr, Uint8Array>();
  readonly #maxEntries: number;

  constructor(maxEntries = DEFAULT_NEIGHBOUR_CACHE_SIZE) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  lookup(a: Ipv6Addr): Uint8Array | undefined {
    return this.#entries.get(a);
  }

  /** Records or refreshes `a` → `mac` (copied: usually a view into a frame). */
  learn(a: Ipv6Addr, mac: Uint8Array): void {
    const known = this.#entries.get(a);
    this.#entries.delete(a);
    if (known?.every((x, i) => x === mac[i]) === true) {
      this.#entries.set(a, known);
      return;
    }
    if (this.#entries.size >= this.#maxEntries) {
      const stalest = this.#entries.keys().next();
      if (stalest.done !== true) this.#entries.delete(stalest.value);
    }
    this.#entries.set(a, mac.slice(0, 6));
  }

  entries(): IterableIterator<[Ipv6Addr, Uint8Array]> {
    return this.#entries.entries();
  }
}
