/**
 * The NAT flow table: one table for every UDP and TCP flow of one network, whose guests (one
 * or several, each on a port of the network's switch) share its NAT.
 *
 * Theory of operation
 * -------------------
 * A flow is a guest 5-tuple (protocol, guest address and port, remote address and port as
 * the guest addresses it) with its host side: its own host socket (every TCP connection), or
 * for a forwarded UDP flow the rule's bound socket, which all clients of that rule share
 * (`src/nat/forward-ports.ts`). A guest's UDP NAT *mapping* is an entry too, keyed by the part
 * of the destination its mapping behaviour depends on (0.0.0.0:0 for endpoint-independent,
 * ADDR:0 for address-dependent; `src/nat/udp-flow.ts`), with its own host socket. Guest-originated flows are created by
 * the protocol engines (`src/nat/udp-flow.ts`, `src/nat/tcp-flow.ts`) on the first datagram
 * or SYN of any guest of the network; forwarded flows (`--hostfwd`) by an accepted host
 * connection, and belong to the guest they go to. The table is what the control API lists:
 * every entry carries its endpoints, its state in words, its age and the bytes moved each way.
 *
 * Limits (`FlowLimits`, the constructor's `limits`): per protocol, at most `perGuest[protocol]`
 * flows whose guest side is one guest address, and at most `limits[protocol]` flows for the
 * whole network. The guest limit is what keeps one guest from using up the table that the
 * others share; the network limit bounds the sockets of the network. `limitHit` says which of
 * the two a new flow would exceed (the guest's first), and `add` refuses a flow past either.
 * The table itself never evicts: the engine applies its own rule (UDP closes the least
 * recently active flow, `leastRecent`, of that guest at the guest limit and of the whole
 * network at the network limit; TCP closes the oldest TIME-WAIT connection of the same scope,
 * else refuses the new one), because only the engine knows how to release a flow's socket.
 * Guests are told apart by address, as the NAT sees them: a guest that claims another's
 * address shares that address's budget.
 *
 * New-flow rate (`FlowLimits.newFlowsPerSecond`, `--max-new-flows-per-second`): a token bucket
 * of the whole network, refilled at that rate and holding one second's worth, from which
 * every guest-opened flow (a TCP SYN, a UDP datagram that opens a mapping) takes a token
 * (`admitNew`). It is the network's, not each address's, because a guest can send from any
 * address it likes: a private network (a session's own, the default) gets exactly one
 * session's rate; a shared one's guests share it. Forwarded flows (a host client's) and DNS
 * queries to the forwarder take none. The engines drop what finds the bucket empty, counted
 * as 'nat.new-flow-rate', without an answer: a SYN is sent again by the guest's TCP a second
 * later (when the bucket has refilled, for a guest that is not flooding), where an RST would
 * fail the program at once.
 *
 * Layering: `src/nat` stands above the protocol folders and below the stack. It names
 * addresses, endpoints and flow ids from `src/net/addr.ts`, reaches the guest and the host
 * through the `ToGuest` and `Host` seams of `src/net/seams.ts`, and takes its slice of the
 * network's configuration as `NatPolicyOptions` (`policy.ts`): it imports neither the stack
 * nor the host. Flows are of either family, a flow's guest and remote sides always of the same
 * one; a forward's client that cannot appear on its guest's family is counted and refused
 * ('udp.forward-family', 'tcp.forward-family'; `policy.ts` `forwardedRemote`).
 *
 * Lookups by tuple cost one string-keyed Map access; the last hit is cached, since bulk
 * traffic comes in runs on one flow. Addresses are `IpAddr` primitives (net/addr.ts), so the
 * key is the same string it always was for IPv4 and an IPv6 key cannot collide with one.
 * Recency is kept twice, for the network and per guest (Maps in insertion order, `touch`
 * re-inserting), so both eviction candidates are the first entry of a Map; a guest's Map goes
 * away with its last flow, so the table holds nothing for guests without flows.
 */
import type { Endpoint, FlowId, IpAddr } from '../net/addr.js';
import { ConfigError } from '../util/config-error.js';

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
  /**
   * The host socket's own endpoint — the public side of the NAT mapping, what `host` sees as
   * its peer: a connected socket's local address and port once the host reported it, a UDP
   * mapping's bound socket, a forward's listening or bound socket. Undefined until known.
   */
  readonly local: Endpoint | undefined;
  readonly createdMs: number;
  /** Last time data moved either way; engines update it. */
  lastActiveMs: number;
  bytesFromGuest: number;
  bytesToGuest: number;
  /** IP packets from the guest on this flow (TCP: every segment, pure ACKs too). */
  packetsFromGuest: number;
  /** IP packets to the guest on this flow. */
  packetsToGuest: number;
  /** The engine's state in words (TCP: RFC 9293 state names). */
  readonly stateName: string;
}

/** A plain snapshot of a flow for logs and APIs: its identity, state in words, age and idle time. */
export type FlowInfo = Pick<FlowEntry, 'id' | 'protocol' | 'origin' | 'guest' | 'remote' | 'host' | 'local' | 'bytesFromGuest' | 'bytesToGuest' | 'packetsFromGuest' | 'packetsToGuest'> & {
  readonly state: string;
  readonly ageMs: number;
  readonly idleMs: number;
};

/** Flow limits of one network: per protocol for the whole network, and per guest address. */
export interface FlowLimits {
  /** UDP flows of the whole network (`--max-network-udp-flows`); an integer ≥ 1. */
  readonly udp: number;
  /** TCP connections of the whole network (`--max-network-tcp-flows`); an integer ≥ 1. */
  readonly tcp: number;
  /** Flows whose guest side is one guest address (`--max-udp-flows`, `--max-tcp-flows`); integers ≥ 1. */
  readonly perGuest: { readonly udp: number; readonly tcp: number };
  /** Guest-opened flows per second of the whole network (`--max-new-flows-per-second`); 0 or absent: unlimited. */
  readonly newFlowsPerSecond?: number | undefined;
}

/** A lone guest gets what one session had before networks (1024 UDP, 4096 TCP); a network, four times that. */
export const DEFAULT_FLOW_LIMITS: FlowLimits = Object.freeze({ udp: 4096, tcp: 16384, perGuest: Object.freeze({ udp: 1024, tcp: 4096 }) });

/** The largest limit an option takes: each flow may hold a socket, and a million is past any host's descriptors. */
export const MAX_FLOW_LIMIT = 1 << 20;

/** The flow-limit options as the user writes them (text or numbers), by their long names. */
export interface FlowLimitOptions {
  readonly 'max-tcp-flows'?: string | number | undefined;
  readonly 'max-udp-flows'?: string | number | undefined;
  readonly 'max-network-tcp-flows'?: string | number | undefined;
  readonly 'max-network-udp-flows'?: string | number | undefined;
  readonly 'max-new-flows-per-second'?: string | number | undefined;
}

/**
 * Validated limits from options: defaults where absent. A guest's default limit never exceeds
 * its network's (lowering only the network's lowers both); a guest limit asked above its
 * network's is refused, since it could never be reached. Throws ConfigError naming the option.
 */
export function resolveFlowLimits(o: FlowLimitOptions = {}): FlowLimits {
  const read = (option: keyof FlowLimitOptions): number | undefined => {
    const v = o[option];
    if (v === undefined) return undefined;
    const n = typeof v === 'number' ? v : /^\d{1,8}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_FLOW_LIMIT) throw new ConfigError(option, `'${v}' must be an integer from 1 to ${MAX_FLOW_LIMIT}`);
    return n;
  };
  const limits = { udp: 0, tcp: 0, perGuest: { udp: 0, tcp: 0 } };
  for (const protocol of ['tcp', 'udp'] as const) {
    const network = read(`max-network-${protocol}-flows`) ?? DEFAULT_FLOW_LIMITS[protocol];
    const guest = read(`max-${protocol}-flows`);
    if (guest !== undefined && guest > network)
      throw new ConfigError(`max-${protocol}-flows`, `${guest} flows per guest is above the network's limit of ${network} (--max-network-${protocol}-flows)`);
    limits[protocol] = network;
    limits.perGuest[protocol] = guest ?? Math.min(DEFAULT_FLOW_LIMITS.perGuest[protocol], network);
  }
  const rate = o['max-new-flows-per-second'];
  if (rate !== undefined) {
    const n = typeof rate === 'number' ? rate : /^\d{1,8}$/.test(rate) ? Number(rate) : NaN;
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_FLOW_LIMIT) throw new ConfigError('max-new-flows-per-second', `'${rate}' must be an integer from 0 (unlimited) to ${MAX_FLOW_LIMIT}`);
    return { ...limits, newFlowsPerSecond: n };
  }
  return limits;
}

function checkLimits(limits: FlowLimits): void {
  for (const [name, n] of [['udp', limits.udp], ['tcp', limits.tcp], ['perGuest.udp', limits.perGuest.udp], ['perGuest.tcp', limits.perGuest.tcp]] as const)
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`flow limit ${name} must be an integer >= 1, not ${n}`);
  const rate = limits.newFlowsPerSecond ?? 0;
  if (!Number.isSafeInteger(rate) || rate < 0) throw new RangeError(`new-flow rate must be an integer >= 0, not ${rate}`);
}

/** Which limit a new flow would exceed: its guest's, or the network's. */
export type FlowLimitHit = 'guest' | 'network';

const tupleKey = (protocol: FlowProtocol, guestAddr: IpAddr, guestPort: number, remoteAddr: IpAddr, remotePort: number): string =>
  `${protocol === 'tcp' ? 't' : 'u'}${guestAddr}:${guestPort}>${remoteAddr}:${remotePort}`;

const keyOf = (f: FlowEntry): string => tupleKey(f.protocol, f.guest.addr, f.guest.port, f.remote.addr, f.remote.port);

const NO_FLOWS = new Map<FlowId, never>();

export class FlowTable<F extends FlowEntry = FlowEntry> {
  readonly #byTuple = new Map<string, F>();
  /** Per protocol, every flow in order of last activity (`touch` moves a flow to the end). */
  readonly #recency = { udp: new Map<FlowId, F>(), tcp: new Map<FlowId, F>() };
  /** Per protocol and guest address, that guest's flows in order of last activity; no empty Maps. */
  readonly #byGuest = { udp: new Map<IpAddr, Map<FlowId, F>>(), tcp: new Map<IpAddr, Map<FlowId, F>>() };
  #limits: FlowLimits;
  #nextId: FlowId = 1;
  #last: F | undefined;
  /** The new-flow bucket's tokens, as of `#rateAtMs` (undefined: never used, so full). */
  #rateTokens = 0;
  #rateAtMs: number | undefined;

  /** Throws a RangeError when a limit is not an integer ≥ 1 (a configuration error, caught at start). */
  constructor(limits: FlowLimits = DEFAULT_FLOW_LIMITS) {
    checkLimits(limits);
    this.#limits = limits;
  }

  /** The limits in force. */
  get limits(): FlowLimits {
    return this.#limits;
  }

  /**
   * New limits (a reload): they judge the flows opened from now on. Flows above a lowered
   * limit go on; the engines bring the count down to it as new flows come (see `limitHit`).
   * The new-flow bucket keeps its tokens up to the new rate's one second's worth and refills
   * at the new rate from now on; 0 turns it off, a rate where there was none starts it full.
   * Throws a RangeError as the constructor does (nothing changes).
   */
  setLimits(limits: FlowLimits): void {
    checkLimits(limits);
    const rate = limits.newFlowsPerSecond ?? 0;
    if (rate > 0) this.#rateTokens = Math.min(this.#rateTokens, rate);
    if ((this.#limits.newFlowsPerSecond ?? 0) <= 0) this.#rateAtMs = undefined;
    this.#limits = limits;
  }

  /** A fresh id for a flow about to be added. */
  allocateId(): FlowId {
    return this.#nextId++;
  }

  /** Flows of a protocol in the whole network. */
  count(protocol: FlowProtocol): number {
    return this.#recency[protocol].size;
  }

  /** Flows of a protocol whose guest side is `guestAddr`. */
  guestCount(protocol: FlowProtocol, guestAddr: IpAddr): number {
    return this.#byGuest[protocol].get(guestAddr)?.size ?? 0;
  }

  /** Guest addresses with at least one flow of the protocol. */
  guests(protocol: FlowProtocol): IterableIterator<IpAddr> {
    return this.#byGuest[protocol].keys();
  }

  /**
   * The limit a new flow of `protocol` from `guestAddr` would exceed, the guest's before the
   * network's; undefined when both have room.
   */
  limitHit(protocol: FlowProtocol, guestAddr: IpAddr): FlowLimitHit | undefined {
    if (this.guestCount(protocol, guestAddr) >= this.#limits.perGuest[protocol]) return 'guest';
    if (this.#recency[protocol].size >= this.#limits[protocol]) return 'network';
    return undefined;
  }

  /**
   * Takes a token for a new guest-opened flow at `nowMs` (see the theory above): false when
   * the network's new-flow rate is spent and the flow is to be refused.
   */
  admitNew(nowMs: number): boolean {
    const rate = this.#limits.newFlowsPerSecond ?? 0;
    if (rate <= 0) return true;
    const elapsedMs = this.#rateAtMs === undefined ? Infinity : Math.max(0, nowMs - this.#rateAtMs);
    this.#rateTokens = Math.min(rate, this.#rateTokens + (elapsedMs * rate) / 1000);
    this.#rateAtMs = nowMs;
    if (this.#rateTokens < 1) return false;
    this.#rateTokens -= 1;
    return true;
  }

  /** Adds a flow; false (and nothing added) when its guest or the network is at its limit, or the tuple is taken. */
  add(flow: F): boolean {
    const key = keyOf(flow);
    if (this.limitHit(flow.protocol, flow.guest.addr) !== undefined || this.#byTuple.has(key)) return false;
    this.#byTuple.set(key, flow);
    this.#recency[flow.protocol].set(flow.id, flow);
    const guests = this.#byGuest[flow.protocol];
    const mine = guests.get(flow.guest.addr);
    if (mine === undefined) guests.set(flow.guest.addr, new Map([[flow.id, flow]]));
    else mine.set(flow.id, flow);
    return true;
  }

  /**
   * The flow of an id, of either protocol. There is no Map by id of its own: the per-protocol
   * recency Maps are keyed by id already (one Map entry less per flow, bench/scale.ts); an
   * engine that knows its protocol asks `get`, one lookup.
   */
  byId(id: FlowId): F | undefined {
    return this.#recency.tcp.get(id) ?? this.#recency.udp.get(id);
  }

  /** The flow of an id if it is of `protocol`. */
  get(protocol: FlowProtocol, id: FlowId): F | undefined {
    return this.#recency[protocol].get(id);
  }

  byTuple(protocol: FlowProtocol, guestAddr: IpAddr, guestPort: number, remoteAddr: IpAddr, remotePort: number): F | undefined {
    const l = this.#last;
    if (l?.protocol === protocol && l.guest.port === guestPort && l.remote.port === remotePort && l.guest.addr === guestAddr && l.remote.addr === remoteAddr)
      return l;
    const f = this.#byTuple.get(tupleKey(protocol, guestAddr, guestPort, remoteAddr, remotePort));
    if (f !== undefined) this.#last = f;
    return f;
  }

  /** Records activity: the flow becomes the most recent of its protocol, in the network and for its guest. */
  touch(flow: F, nowMs: number): void {
    flow.lastActiveMs = nowMs;
    const order = this.#recency[flow.protocol];
    order.delete(flow.id);
    order.set(flow.id, flow);
    const mine = this.#byGuest[flow.protocol].get(flow.guest.addr);
    if (mine === undefined) return;
    mine.delete(flow.id);
    mine.set(flow.id, flow);
  }

  /**
   * The least recently active flow of a protocol: of the whole network, or of one guest when
   * `guestAddr` is given (the UDP eviction candidates).
   */
  leastRecent(protocol: FlowProtocol, guestAddr?: IpAddr): F | undefined {
    const order = guestAddr === undefined ? this.#recency[protocol] : this.#byGuest[protocol].get(guestAddr);
    if (order !== undefined) for (const f of order.values()) return f;
    return undefined;
  }

  /**
   * The flows of a protocol, least recently active first: of the whole network, or of one
   * guest when `guestAddr` is given. Removing the flow just yielded is safe.
   */
  flows(protocol: FlowProtocol, guestAddr?: IpAddr): IterableIterator<F> {
    const order = guestAddr === undefined ? this.#recency[protocol] : this.#byGuest[protocol].get(guestAddr);
    return (order ?? NO_FLOWS).values();
  }

  remove(id: FlowId): F | undefined {
    const f = this.byId(id);
    if (f === undefined) return undefined;
    this.#byTuple.delete(keyOf(f));
    this.#recency[f.protocol].delete(id);
    const guests = this.#byGuest[f.protocol];
    const mine = guests.get(f.guest.addr);
    if (mine !== undefined) {
      mine.delete(id);
      if (mine.size === 0) guests.delete(f.guest.addr);
    }
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
      local: f.local,
      state: f.stateName,
      ageMs: nowMs - f.createdMs,
      idleMs: nowMs - f.lastActiveMs,
      bytesFromGuest: f.bytesFromGuest,
      bytesToGuest: f.bytesToGuest,
      packetsFromGuest: f.packetsFromGuest,
      packetsToGuest: f.packetsToGuest,
    }));
  }
}
