/**
 * The stack's neighbour table: guest IPv4 address → MAC, learned from ARP and from the
 * source of the guest's IPv4 packets. Bounded: when full, the least recently refreshed
 * entry is evicted (a guest link has a handful of hosts; the bound only stops a hostile
 * guest from growing it without limit).
 */
import type { Ipv4Addr, Mac } from '../util/bytes.js';

export const DEFAULT_ARP_CACHE_SIZE = 256;

export class ArpCache {
  /** Insertion order is refresh order: the first entry is the stalest. */
  readonly #entries = new Map<Ipv4Addr, Mac>();
  readonly #maxEntries: number;
  /** The last entry of #entries (refreshed or learned last), so refreshing it needs no move. */
  #freshest: Ipv4Addr | undefined;

  constructor(maxEntries = DEFAULT_ARP_CACHE_SIZE) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  lookup(ip: Ipv4Addr): Mac | undefined {
    return this.#entries.get(ip);
  }

  /**
   * Refreshes `ip`'s entry when it already maps to `mac` and says whether it did: the per-packet
   * path, one Map lookup when `ip` is the entry refreshed last (a guest talking), else a move to
   * the fresh end. False means the mapping is new or would change: see `learn`.
   */
  refresh(ip: Ipv4Addr, mac: Uint8Array): boolean {
    const known = this.#entries.get(ip);
    if (known === undefined || known[0] !== mac[0] || known[1] !== mac[1] || known[2] !== mac[2] || known[3] !== mac[3] || known[4] !== mac[4] || known[5] !== mac[5]) return false;
    if (this.#freshest !== ip) {
      this.#entries.delete(ip);
      this.#entries.set(ip, known);
      this.#freshest = ip;
    }
    return true;
  }

  /** Records (or refreshes) a mapping; copies the MAC, which is usually a view into a frame. */
  learn(ip: Ipv4Addr, mac: Uint8Array): void {
    if (this.refresh(ip, mac)) return;
    this.#entries.delete(ip);
    if (this.#entries.size >= this.#maxEntries) {
      const stalest = this.#entries.keys().next();
      if (stalest.done !== true) this.#entries.delete(stalest.value);
    }
    this.#entries.set(ip, mac.slice(0, 6));
    this.#freshest = ip;
  }

  entries(): IterableIterator<[Ipv4Addr, Mac]> {
    return this.#entries.entries();
  }
}
