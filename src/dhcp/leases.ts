/**
 * The DHCP lease table: a fixed pool of `size` addresses from `start`, one slot each.
 *
 * A client is known by its key: `id:<hex>` of option 61 when it sends one, else
 * `mac:<aa:bb:..>` of chaddr (RFC 2131 §4.2). Each slot remembers the last key that held it,
 * so a client that comes back after its lease expired or was released gets the same
 * address while nobody else took it; new clients get never-used addresses first, then the
 * one freed longest ago (RFC 2131 §4.3.1's order: current binding, previous binding,
 * requested address, any free address). A DECLINEd address is quarantined
 * (RFC 2131 §4.3.3) and forgets its holder. The table never holds more than `size` leases:
 * its memory is the pool, whatever the guest sends.
 *
 * Expiry is lazy: every entry point takes `nowMs` and treats a lease whose `expiresAtMs`
 * has passed as free.
 */
import type { Ipv4Addr } from '../util/bytes.js';

/** A live lease. `state` 'offered' is a reservation held between OFFER and REQUEST. */
export interface Lease {
  /** `id:…` or `mac:…`, see the module comment. */
  readonly key: string;
  /** chaddr as aa:bb:cc:dd:ee:ff. */
  readonly mac: string;
  /** Option 61 as lower-case hex, when the client sent one. */
  readonly clientId: string | undefined;
  readonly ip: Ipv4Addr;
  /** The guest's own name (its option 12), when it sent one. */
  readonly hostname: string | undefined;
  readonly state: 'offered' | 'bound';
  /** The lease (or the offer's hold) ends at this time; strictly greater than its creation time. */
  readonly expiresAtMs: number;
  /** The port (a session's link) the client asked through, when the network said. */
  readonly owner?: number | undefined;
}

/** Who asks for an address. */
export interface LeaseClient {
  readonly key: string;
  readonly mac: string;
  readonly clientId: string | undefined;
  readonly hostname: string | undefined;
  /** The port (a session's link) it asks through, when known: see `countOwned`. */
  readonly owner?: number | undefined;
}

interface Slot {
  lease: Lease | undefined;
  /** Key of the last holder, for stable re-allocation; undefined when never used or declined. */
  lastKey: string | undefined;
  /** When the slot last became free; -Infinity when never used. */
  freedAtMs: number;
  /** Declined: not allocatable before this time. */
  quarantinedUntilMs: number;
}

/** The fixed pool of addresses and their leases. */
export class LeaseTable {
  readonly #start: Ipv4Addr;
  readonly #slots: Slot[];

  constructor(start: Ipv4Addr, size: number) {
    this.#start = start;
    this.#slots = Array.from({ length: size }, () => ({
      lease: undefined,
      lastKey: undefined,
      freedAtMs: -Infinity,
      quarantinedUntilMs: -Infinity,
    }));
  }

  /** Whether `ip` belongs to the pool. */
  inPool(ip: Ipv4Addr): boolean {
    return this.#slotOf(ip) !== undefined;
  }

  #slotOf(ip: Ipv4Addr): Slot | undefined {
    const i = ip - this.#start;
    return i >= 0 && i < this.#slots.length ? this.#slots[i] : undefined;
  }

  /** Frees the slot if its lease expired at or before nowMs. */
  #expire(s: Slot, nowMs: number): void {
    if (s.lease !== undefined && s.lease.expiresAtMs <= nowMs) {
      s.freedAtMs = s.lease.expiresAtMs;
      s.lease = undefined;
    }
  }

  /** The live lease of `key`, if any. */
  find(key: string, nowMs: number): Lease | undefined {
    for (const s of this.#slots) {
      this.#expire(s, nowMs);
      if (s.lease?.key === key) return s.lease;
    }
    return undefined;
  }

  /** The live lease on `ip`, if any. */
  at(ip: Ipv4Addr, nowMs: number): Lease | undefined {
    const s = this.#slotOf(ip);
    if (s === undefined) return undefined;
    this.#expire(s, nowMs);
    return s.lease;
  }

  /** Whether `key` may take `ip` now: in the pool, not quarantined, not leased to another key. */
  availableFor(ip: Ipv4Addr, key: string, nowMs: number): boolean {
    const s = this.#slotOf(ip);
    if (s === undefined) return false;
    this.#expire(s, nowMs);
    if (s.lease !== undefined) return s.lease.key === key;
    return s.quarantinedUntilMs <= nowMs;
  }

  /**
   * Chooses the address for `key` (RFC 2131 §4.3.1): its live lease, else the slot it held
   * last, else `requested` when available, else a never-used slot, else the one freed
   * longest ago. Undefined when the pool is exhausted. Does not change the table.
   */
  choose(key: string, requested: Ipv4Addr | undefined, nowMs: number): Ipv4Addr | undefined {
    const live = this.find(key, nowMs);
    if (live !== undefined) return live.ip;
    const free = (s: Slot): boolean => s.lease === undefined && s.quarantinedUntilMs <= nowMs;
    const previous = this.#slots.findIndex((s) => s.lastKey === key && free(s));
    if (previous >= 0) return this.#start + previous;
    if (requested !== undefined && this.availableFor(requested, key, nowMs)) return requested;
    let best = -1;
    this.#slots.forEach((s, i) => {
      if (free(s) && (best < 0 || s.freedAtMs < this.#slots[best]!.freedAtMs)) best = i;
    });
    return best < 0 ? undefined : this.#start + best;
  }

  /**
   * Records a lease of `ip` for `client` until `expiresAtMs`. The caller checked
   * `availableFor(ip, client.key)` (undefined, and no change, when it is not); any other
   * live lease of the same key is released, so a key holds at most one address.
   */
  put(client: LeaseClient, ip: Ipv4Addr, state: Lease['state'], expiresAtMs: number, nowMs: number): Lease | undefined {
    const s = this.#slotOf(ip);
    if (s === undefined || !this.availableFor(ip, client.key, nowMs)) return undefined;
    const other = this.find(client.key, nowMs);
    if (other !== undefined && other.ip !== ip) this.release(client.key, other.ip, nowMs);
    const hostname = client.hostname ?? (s.lease?.key === client.key ? s.lease.hostname : undefined);
    s.lease = { key: client.key, mac: client.mac, clientId: client.clientId, ip, hostname, state, expiresAtMs, owner: client.owner };
    s.lastKey = client.key;
    return s.lease;
  }

  /** Ends `key`'s lease on `ip` (DHCPRELEASE, or an offer the client turned down). */
  release(key: string, ip: Ipv4Addr, nowMs: number): boolean {
    const s = this.#slotOf(ip);
    if (s === undefined) return false;
    this.#expire(s, nowMs);
    if (s.lease?.key !== key) return false;
    s.lease = undefined;
    s.freedAtMs = nowMs;
    return true;
  }

  /** DHCPDECLINE: the address is in use by someone else; keep it out of the pool until then. */
  quarantine(ip: Ipv4Addr, untilMs: number, nowMs: number): void {
    const s = this.#slotOf(ip);
    if (s === undefined) return;
    s.lease = undefined;
    s.lastKey = undefined;
    s.freedAtMs = nowMs;
    s.quarantinedUntilMs = untilMs;
  }

  /** Live leases (offers included) taken through port `owner`. */
  countOwned(owner: number, nowMs: number): number {
    let n = 0;
    for (const s of this.#slots) {
      this.#expire(s, nowMs);
      if (s.lease?.owner === owner) n++;
    }
    return n;
  }

  /** The live leases, in address order. */
  list(nowMs: number): Lease[] {
    const out: Lease[] = [];
    for (const s of this.#slots) {
      this.#expire(s, nowMs);
      if (s.lease !== undefined) out.push(s.lease);
    }
    return out;
  }
}
