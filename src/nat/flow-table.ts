/**
 * The NAT flow table: one table for every UDP and TCP flow of one stack.
 *
 * Theory of operation
 * -------------------
 * A flow is a guest 5-tuple (protocol, guest address and port, remote address and port as
 * the guest addresses it) bound to one host socket. Guest-originated flows are created by
 * the protocol engines (`src/nat/udp-flow.ts`, `src/nat/tcp-flow.ts`) on the first datagram
 * or SYN; forwarded flows (`--hostfwd`) by an accepted host connection. The table is what the
 * control API lists: every entry carries its endpoints, its state in words, its age and
 * the bytes moved each way.
 *
 * Limits: at most `FlowLimits[protocol]` entries per protocol (the constructor's `limits`).
 * The table itself never evicts: `add` refuses when full and the engine applies its own rule
 * (UDP evicts its least recently active flow with `leastRecent`; TCP evicts its oldest
 * TIME-WAIT connection, else refuses the new one), because only the engine knows how to
 * release a flow's socket.
 *
 * Layering: `src/nat` stands above the protocol folders and below the stack. It names
 * addresses, endpoints and flow ids from `src/net/addr.ts`, reaches the guest and the host
 * through the `ToGuest` and `Host` seams of `src/net/seams.ts`, and takes its slice of the
 * network's configuration as `NatPolicyOptions` (`policy.ts`): it imports neither the stack
 * nor the host. The NAT is IPv4 only today: its engines keep `Ipv4Endpoint`s and count
 * forwards from IPv6 clients ('udp.forward-not-ipv4', 'tcp.forward-not-ipv4').
 *
 * Lookups by tuple cost one string-keyed Map access; the last hit is cached, since bulk
 * traffic comes in runs on one flow. Addresses are `IpAddr` primitives (net/addr.ts), so the
 * key is the same string it always was for IPv4 and an IPv6 key cannot collide with one.
 */
import type { Endpoint, FlowId, IpAddr } from '../net/addr.js';

export type FlowProtocol = 'udp' | 'tcp';

/** Who opened the flow. */
export type FlowOrigin = 'guest' | 'forward';

/** The fields every flow has; engines extend it with their own state. */
export interface FlowEntry {
  readonly id: FlowId;
  readonly protocol: FlowProtocol;
  readonly origin: FlowOrigin;
  /** The guest's side of the flow. */
  readonly guest: Endpoint;
  /** The address and port the guest talks to (e.g. 10.0.2.2:80). */
  readonly remote: Endpoint;
  /** Where the host socket goes after address rewrite (e.g. 127.0.0.1:80), or the client of a forward. */
  readonly host: Endpoint;
  readonly createdMs: number;
  /** Last time data moved either way; engines update it. */
  lastActiveMs: number;
  bytesFromGuest: number;
  bytesToGuest: number;
  /** The engine's state in words (TCP: RFC 9293 state names). */
  readonly stateName: string;
}

/** A plain snapshot of a flow for logs and APIs: its identity, state in words, age and idle time. */
export type FlowInfo = Pick<FlowEntry, 'id' | 'protocol' | 'origin' | 'guest' | 'remote' | 'host' | 'bytesFromGuest' | 'bytesToGuest'> & {
  readonly state: string;
  readonly ageMs: number;
  readonly idleMs: number;
};

export interface FlowLimits {
  readonly udp: number;
  readonly tcp: number;
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = { udp: 1024, tcp: 4096 };

const tupleKey = (protocol: FlowProtocol, guestAddr: IpAddr, guestPort: number, remoteAddr: IpAddr, remotePort: number): string =>
  `${protocol === 'tcp' ? 't' : 'u'}${guestAddr}:${guestPort}>${remoteAddr}:${remotePort}`;

const keyOf = (f: FlowEntry): string => tupleKey(f.protocol, f.guest.addr, f.guest.port, f.remote.addr, f.remote.port);

export class FlowTable<F extends FlowEntry = FlowEntry> {
  readonly #byId = new Map<FlowId, F>();
  readonly #byTuple = new Map<string, F>();
  /** Per protocol, in order of last activity (`touch` moves a flow to the end). */
  readonly #recency = { udp: new Map<FlowId, F>(), tcp: new Map<FlowId, F>() };
  readonly #limits: FlowLimits;
  #nextId: FlowId = 1;
  #last: F | undefined;

  constructor(limits: FlowLimits = DEFAULT_FLOW_LIMITS) {
    this.#limits = limits;
  }

  /** A fresh id for a flow about to be added. */
  allocateId(): FlowId {
    return this.#nextId++;
  }

  count(protocol: FlowProtocol): number {
    return this.#recency[protocol].size;
  }

  isFull(protocol: FlowProtocol): boolean {
    return this.#recency[protocol].size >= this.#limits[protocol];
  }

  /** Adds a flow; false (and nothing added) when its protocol is at its limit or the tuple is taken. */
  add(flow: F): boolean {
    const key = keyOf(flow);
    if (this.isFull(flow.protocol) || this.#byTuple.has(key)) return false;
    this.#byId.set(flow.id, flow);
    this.#byTuple.set(key, flow);
    this.#recency[flow.protocol].set(flow.id, flow);
    return true;
  }

  byId(id: FlowId): F | undefined {
    return this.#byId.get(id);
  }

  byTuple(protocol: FlowProtocol, guestAddr: IpAddr, guestPort: number, remoteAddr: IpAddr, remotePort: number): F | undefined {
    const l = this.#last;
    if (l?.protocol === protocol && l.guest.port === guestPort && l.remote.port === remotePort && l.guest.addr === guestAddr && l.remote.addr === remoteAddr)
      return l;
    const f = this.#byTuple.get(tupleKey(protocol, guestAddr, guestPort, remoteAddr, remotePort));
    if (f !== undefined) this.#last = f;
    return f;
  }

  /** Records activity: the flow becomes the most recent of its protocol. */
  touch(flow: F, nowMs: number): void {
    flow.lastActiveMs = nowMs;
    const order = this.#recency[flow.protocol];
    order.delete(flow.id);
    order.set(flow.id, flow);
  }

  /** The least recently active flow of a protocol (the UDP eviction candidate). */
  leastRecent(protocol: FlowProtocol): F | undefined {
    for (const f of this.#recency[protocol].values()) return f;
    return undefined;
  }

  remove(id: FlowId): F | undefined {
    const f = this.#byId.get(id);
    if (f === undefined) return undefined;
    this.#byId.delete(id);
    this.#byTuple.delete(keyOf(f));
    this.#recency[f.protocol].delete(id);
    if (this.#last === f) this.#last = undefined;
    return f;
  }

  /** Every flow, least recently active first within each protocol. */
  *all(): IterableIterator<F> {
    yield* this.#recency.udp.values();
    yield* this.#recency.tcp.values();
  }

  /** Snapshots for the control API. */
  list(nowMs: number): FlowInfo[] {
    return [...this.all()].map((f) => ({
      id: f.id,
      protocol: f.protocol,
      origin: f.origin,
      guest: f.guest,
      remote: f.remote,
      host: f.host,
      state: f.stateName,
      ageMs: nowMs - f.createdMs,
      idleMs: nowMs - f.lastActiveMs,
      bytesFromGuest: f.bytesFromGuest,
      bytesToGuest: f.bytesToGuest,
    }));
  }
}
