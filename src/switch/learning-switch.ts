/**
 * The segment of one network: a transparent learning bridge in the manner of IEEE 802.1D
 * (learning, filtering, forwarding; no spanning tree) whose ports are the network's guest
 * links and its gateway.
 *
 * Theory of operation
 * -------------------
 * A frame enters on a port. Its source MAC is learned on that port (individual addresses
 * only), then its destination decides where it goes: an individual address learned on
 * another port gets the frame on that port alone; a group address (broadcast, multicast) or
 * an individual address not in the table (never seen, aged out, evicted) floods to every
 * other port. A frame never goes back out of the port it came in on, and a unicast frame
 * whose destination was learned on its own ingress port is filtered ('switch.same-port'),
 * as a bridge filters traffic local to one segment.
 *
 * What it deliberately does not do: no spanning tree (ports are links to single guests and
 * the gateway, so there is no loop to break), no VLANs (a tagged frame is switched on its
 * MACs like any other, its tag untouched), no static entries, no per-port MAC limits. Frames
 * whose source is a group address or all zeros are dropped ('switch.bad-source'): no station
 * sends them, and the Linux bridge drops them too (net/bridge/br_input.c,
 * `is_valid_ether_addr`). Frames shorter than an Ethernet header are 'switch.runt'; frames
 * on a port that is not (or no longer) attached are 'switch.unknown-port'.
 *
 * Frames are passed on as they are, never copied: a flooded frame reaches several ports as
 * the same bytes, so receivers must not mutate it, and a receiver that keeps one past its
 * `deliver` call copies it.
 *
 * The MAC table is bounded (`maxMacs`, default 1024), since a guest can send from as many
 * source addresses as it likes. When it is full, a new address replaces the entry unused
 * longest (exact LRU), counted 'switch.mac-table-full' (replacing an aged-out entry is not
 * counted). An address seen on another port than the one it was learned on moves there
 * ('switch.mac-moved', not a drop: a guest that reconnected, or two guests sharing a MAC).
 * Entries unused for `agingMs` (default 300 s: 802.1D's recommended Ageing Time and the
 * Linux bridge's default) are never used to forward and are removed lazily: when looked up,
 * and from the old end of the recency list whenever an address is learned; `expire(nowMs)`
 * sweeps them all.
 *
 * The table's shape is chosen for the per-frame cost. A MAC is split into two 24-bit
 * integers, its OUI half and its NIC half, and the table is a Map from OUI to a Map from NIC
 * half to the entry: every key is a small integer (a V8 Smi), so a lookup allocates nothing.
 * A single Map keyed by the 48-bit integer would allocate a heap number on every Map.get,
 * since 48 bits do not fit a Smi (measured on Node 20: 32 bytes and some 35 ns more per
 * lookup). The inner Maps of the last two OUIs looked up are kept at hand, so on a segment
 * of one or two vendors' MACs (QEMU's 52:54:00 guests and the gateway's 52:55:0a, say) a
 * lookup is one Map.get. Recency is a doubly-linked list through the entries, so a refresh
 * rewrites a few pointers and never touches a Map. Per frame: learning the source is one
 * lookup (and, when the address is known on that port, a time stamp and a move to the
 * list's new end); forwarding a unicast frame is one lookup plus the deliver call; a flood
 * walks an array of the ports. Nothing is allocated per frame once the addresses are learned.
 *
 * Sans-IO: time comes in as `nowMs` on each call; the switch keeps no clock and no timers.
 * Re-entrancy: a `deliver` callback may call `input`, `addPort` or `removePort` (a gateway
 * answering at once, a link closing on a write error): a flood in progress skips a port
 * removed meanwhile and does not reach a port added meanwhile. `deliver` must not throw
 * (an exception is a bug in the receiver and propagates to the caller of `input`).
 */
import { ETHERNET_HEADER_LEN } from '../ethernet/wire.js';
import { formatMac } from '../util/bytes.js';
import type { Counters } from '../util/drops.js';

/** A port of the switch. Ids start at 1 and are never reused within one switch. */
export type PortId = number;

export interface SwitchOptions {
  /** The MAC table's bound, an integer ≥ 1. Default DEFAULT_MAX_MACS. */
  maxMacs?: number;
  /** How long an unused entry stays valid, in ms, > 0. Default DEFAULT_MAC_AGING_MS. */
  agingMs?: number;
}

export const DEFAULT_MAX_MACS = 1024;
/** 802.1D's recommended Ageing Time, 300 s, as the Linux bridge's default. */
export const DEFAULT_MAC_AGING_MS = 300_000;

/** Frames the switch refuses; each is also the counter's name. */
export const SWITCH_DROPS = ['switch.runt', 'switch.bad-source', 'switch.unknown-port', 'switch.same-port'] as const;
/** Table events counted beside the drops (the frame is still switched). */
export const SWITCH_EVENTS = ['switch.mac-table-full', 'switch.mac-moved'] as const;
/** Every counter the switch counts. */
export type SwitchCounter = (typeof SWITCH_DROPS)[number] | (typeof SWITCH_EVENTS)[number];

/** One row of `macs()`: a learned address, where and how long ago it was last seen. */
export interface MacTableRow {
  /** `aa:bb:cc:dd:ee:ff`, lower case. */
  readonly mac: string;
  readonly port: PortId;
  /** ms since a frame from this address last entered, ≥ 0. */
  readonly ageMs: number;
}

class SwitchPort {
  readonly id: PortId;
  readonly deliver: (frame: Uint8Array) => void;
  /** Set by removePort: a flood in progress skips the port from then on. */
  removed = false;

  constructor(id: PortId, deliver: (frame: Uint8Array) => void) {
    this.id = id;
    this.deliver = deliver;
  }
}

class MacEntry {
  /** The address's first three bytes as an integer 0..0xffffff; never changes. */
  readonly oui: number;
  /** The address's last three bytes as an integer 0..0xffffff; never changes. */
  readonly nic: number;
  /** The port the address was last seen on; never a removed port (removePort forgets it). */
  port: SwitchPort;
  /** When a frame from the address last entered; non-decreasing along the recency list. */
  seenMs: number;
  /** The recency list: the entry used just before this one (or the list's sentinel). */
  older: MacEntry;
  /** The recency list: the entry used just after this one (or the list's sentinel). */
  newer: MacEntry;

  constructor(oui: number, nic: number, port: SwitchPort, seenMs: number) {
    this.oui = oui;
    this.nic = nic;
    this.port = port;
    this.seenMs = seenMs;
    this.older = this;
    this.newer = this;
  }
}

/** The first three bytes at `b[at]` as an integer. */
const ouiAt = (b: Uint8Array, at: number): number => (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
/** The last three of the six bytes at `b[at]` as an integer. */
const nicAt = (b: Uint8Array, at: number): number => (b[at + 3]! << 16) | (b[at + 4]! << 8) | b[at + 5]!;

function macOf(e: MacEntry): string {
  const b = new Uint8Array(6);
  b[0] = e.oui >>> 16;
  b[1] = e.oui >>> 8;
  b[2] = e.oui;
  b[3] = e.nic >>> 16;
  b[4] = e.nic >>> 8;
  b[5] = e.nic;
  return formatMac(b);
}

const NO_PORT = new SwitchPort(0, () => undefined);

export class LearningSwitch {
  readonly #counters: Counters;
  readonly #maxMacs: number;
  readonly #agingMs: number;
  /** OUI → NIC half → entry. No inner Map is empty. */
  readonly #table = new Map<number, Map<number, MacEntry>>();
  /** Entries in #table. */
  #size = 0;
  /**
   * The recency list's sentinel: `newer` is the entry unused longest, `older` the entry used
   * last; an empty list points at itself. Never in #table.
   */
  readonly #recency = new MacEntry(-1, -1, NO_PORT, 0);
  /** The inner Maps of the two OUIs looked up last (-1: none): most segments have one or two. */
  #ouiA = -1;
  #innerA: Map<number, MacEntry> | undefined;
  #ouiB = -1;
  #innerB: Map<number, MacEntry> | undefined;
  readonly #ports = new Map<PortId, SwitchPort>();
  /** The attached ports in the order they were added; replaced, never mutated, so a flood can walk it. */
  #portList: readonly SwitchPort[] = [];
  #nextPortId: PortId = 1;

  constructor(counters: Counters, options: SwitchOptions = {}) {
    const maxMacs = options.maxMacs ?? DEFAULT_MAX_MACS;
    const agingMs = options.agingMs ?? DEFAULT_MAC_AGING_MS;
    if (!Number.isSafeInteger(maxMacs) || maxMacs < 1) throw new RangeError(`maxMacs must be an integer ≥ 1, not ${maxMacs}`);
    if (!(agingMs > 0)) throw new RangeError(`agingMs must be > 0, not ${agingMs}`);
    this.#counters = counters;
    this.#maxMacs = maxMacs;
    this.#agingMs = agingMs;
  }

  /** Entries in the MAC table, aged ones not yet removed included (≤ maxMacs). */
  get size(): number {
    return this.#size;
  }

  get portCount(): number {
    return this.#portList.length;
  }

  /** The attached ports, in the order they were added. */
  ports(): PortId[] {
    return this.#portList.map((p) => p.id);
  }

  /** Attaches a port; `deliver` receives every frame the switch sends out of it. */
  addPort(deliver: (frame: Uint8Array) => void): PortId {
    const port = new SwitchPort(this.#nextPortId++, deliver);
    this.#ports.set(port.id, port);
    this.#portList = [...this.#portList, port];
    return port.id;
  }

  /** Detaches a port and forgets the addresses learned on it. An unknown id is ignored. */
  removePort(id: PortId): void {
    const port = this.#ports.get(id);
    if (port === undefined) return;
    port.removed = true;
    this.#ports.delete(id);
    this.#portList = this.#portList.filter((p) => p !== port);
    for (let e = this.#recency.newer; e !== this.#recency;) {
      const next = e.newer;
      if (e.port === port) this.#remove(e);
      e = next;
    }
  }

  /**
   * A frame entering on `from` at `nowMs`: learns its source MAC, forwards unicast to the
   * port its destination was learned on (never back to `from`), floods group and unknown
   * destinations to every other port. Never throws on any frame; refusals are counted.
   */
  input(from: PortId, frame: Uint8Array, nowMs: number): void {
    if (frame.length < ETHERNET_HEADER_LEN) return this.#count('switch.runt');
    if ((frame[6]! & 1) !== 0) return this.#count('switch.bad-source');

    // Learn. The common case, a known address on the port it was learned on, rewrites a
    // time stamp and a few pointers.
    const src = this.#find(frame, 6);
    let ingress: SwitchPort;
    if (src?.port.id === from) {
      ingress = src.port;
      src.seenMs = nowMs;
      this.#touch(src);
    } else {
      const port = this.#ports.get(from);
      if (port === undefined) return this.#count('switch.unknown-port');
      if (src === undefined) {
        if (ouiAt(frame, 6) === 0 && nicAt(frame, 6) === 0) return this.#count('switch.bad-source');
        this.#learn(frame, port, nowMs);
      } else {
        if (nowMs - src.seenMs < this.#agingMs) this.#count('switch.mac-moved');
        src.port = port;
        src.seenMs = nowMs;
        this.#touch(src);
      }
      ingress = port;
    }

    // Forward.
    if ((frame[0]! & 1) === 0) {
      const dst = this.#find(frame, 0);
      if (dst !== undefined) {
        if (nowMs - dst.seenMs < this.#agingMs) {
          if (dst.port === ingress) return this.#count('switch.same-port');
          dst.port.deliver(frame);
          return;
        }
        this.#remove(dst);
      }
    }
    this.#flood(ingress, frame);
  }

  /** The port a unicast MAC was learned on; undefined when unknown or aged out (then removed). */
  lookup(mac: Uint8Array, nowMs: number): PortId | undefined {
    if (mac.length < 6) return undefined;
    const e = this.#find(mac, 0);
    if (e === undefined) return undefined;
    if (nowMs - e.seenMs >= this.#agingMs) {
      this.#remove(e);
      return undefined;
    }
    return e.port.id;
  }

  /** The live entries, unused longest first, for logs and the API. */
  macs(nowMs: number): MacTableRow[] {
    const rows: MacTableRow[] = [];
    for (let e = this.#recency.newer; e !== this.#recency; e = e.newer) {
      const ageMs = Math.max(0, nowMs - e.seenMs);
      if (ageMs < this.#agingMs) rows.push({ mac: macOf(e), port: e.port.id, ageMs });
    }
    return rows;
  }

  /** Removes every aged-out entry now; returns how many. Optional: aging also works lazily. */
  expire(nowMs: number): number {
    let removed = 0;
    for (let e = this.#recency.newer; e !== this.#recency;) {
      const next = e.newer;
      if (nowMs - e.seenMs >= this.#agingMs) {
        this.#remove(e);
        removed++;
      }
      e = next;
    }
    return removed;
  }

  /** Every attached port but the ingress, in the order they were added. */
  #flood(ingress: SwitchPort, frame: Uint8Array): void {
    for (const port of this.#portList) {
      if (port !== ingress && !port.removed) port.deliver(frame);
    }
  }

  /** The entry of the six bytes at `b[at]`, aged or not. */
  #find(b: Uint8Array, at: number): MacEntry | undefined {
    const oui = ouiAt(b, at);
    let inner: Map<number, MacEntry> | undefined;
    if (oui === this.#ouiA) inner = this.#innerA;
    else if (oui === this.#ouiB) inner = this.#innerB;
    else {
      inner = this.#table.get(oui);
      if (inner === undefined) return undefined;
      this.#ouiB = this.#ouiA;
      this.#innerB = this.#innerA;
      this.#ouiA = oui;
      this.#innerA = inner;
    }
    return inner!.get(nicAt(b, at));
  }

  /** Adds the source address of `frame`, which is not in the table, making room first. */
  #learn(frame: Uint8Array, port: SwitchPort, nowMs: number): void {
    // Aged entries sit at the old end of the list (seenMs grows along it): drop them first.
    for (let e = this.#recency.newer; e !== this.#recency && nowMs - e.seenMs >= this.#agingMs; e = this.#recency.newer) this.#remove(e);
    if (this.#size >= this.#maxMacs) {
      this.#count('switch.mac-table-full');
      this.#remove(this.#recency.newer);
    }
    const e = new MacEntry(ouiAt(frame, 6), nicAt(frame, 6), port, nowMs);
    let inner = this.#table.get(e.oui);
    if (inner === undefined) {
      inner = new Map();
      this.#table.set(e.oui, inner);
    }
    inner.set(e.nic, e);
    this.#size++;
    this.#append(e);
  }

  #remove(e: MacEntry): void {
    e.older.newer = e.newer;
    e.newer.older = e.older;
    e.older = e;
    e.newer = e;
    const inner = this.#table.get(e.oui);
    if (inner?.delete(e.nic) !== true) return;
    this.#size--;
    if (inner.size > 0) return;
    this.#table.delete(e.oui);
    if (this.#ouiA === e.oui) {
      this.#ouiA = this.#ouiB;
      this.#innerA = this.#innerB;
      this.#ouiB = -1;
      this.#innerB = undefined;
    } else if (this.#ouiB === e.oui) {
      this.#ouiB = -1;
      this.#innerB = undefined;
    }
  }

  /** Moves an entry in the table to the new end of the recency list. */
  #touch(e: MacEntry): void {
    if (this.#recency.older === e) return;
    e.older.newer = e.newer;
    e.newer.older = e.older;
    this.#append(e);
  }

  #append(e: MacEntry): void {
    const last = this.#recency.older;
    e.older = last;
    e.newer = this.#recency;
    last.newer = e;
    this.#recency.older = e;
  }

  #count(name: SwitchCounter): void {
    this.#counters.count(name);
  }
}
