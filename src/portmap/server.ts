/**
 * The gateway's port mapping server: NAT-PMP (RFC 6886) and PCP (RFC 6887: ANNOUNCE, MAP
 * with lifetime, renewal and delete) on UDP port 5351 of the gateway address, when the network
 * has `--nat-pmp on`. Sans-IO: requests come in as calls, answers go out through `deps.send`,
 * time is the `nowMs` each call passes.
 *
 * Theory of operation
 * -------------------
 * A guest application asks for an inbound mapping — "my TCP port 8080, public port 8080 if
 * you can, for 3600 s" — as it would ask its home router. Each mapping is a port forward,
 * opened through the same path as `--hostfwd`'s (`deps.openForward`: `ForwardPorts.open`,
 * Host.tcpListen / Host.udpBind), so its clients become flows towards the guest exactly as a
 * forward's do, and it is listed with the network's forwards. The forward's host address is
 * the mapping's external address (`deps.externalAddr`: `--outbound` when set, else
 * 127.0.0.1, so mappings are reachable from this machine only, like `--hostfwd`'s default);
 * NAT-PMP's public address request answers the same address.
 *
 * A mapping is keyed by guest address, protocol and internal port (RFC 6886 §3.3, RFC 6887
 * §11.3). A request for a new one opens the forward on the suggested port; the answer waits
 * until the host says the socket is bound (`opened`): the assigned port is the one bound. If
 * the suggested port cannot be bound (EADDRINUSE, EACCES) the forward is opened again on any
 * free port — unless a PCP request carries PREFER_FAILURE, which then gets
 * CANNOT_PROVIDE_EXTERNAL. A request for an existing mapping renews it (a new lifetime) and is
 * answered with its port; requests that arrive while it is still opening wait with the first
 * (at most MAX_WAITERS; more are dropped, 'portmap.too-many-waiters': the client retries).
 * A lifetime of 0 deletes (NAT-PMP with internal port 0: every mapping of the guest for that
 * protocol). A granted lifetime is the requested one capped at MAX_LIFETIME_S, answered as
 * it is and counted from when the socket is bound (or from the renewal); at its end the
 * mapping expires (`advance`): the forward's socket closes, and connections it already
 * forwarded live on until they end, as a home router's do.
 *
 * Bounds: MAX_PER_GUEST mappings per guest address ('portmap.guest-limit': NAT-PMP result 4,
 * PCP USER_EX_QUOTA) and MAX_PER_NETWORK in all ('portmap.network-limit': NAT-PMP 4, PCP
 * NO_RESOURCES), so a guest cannot spend the daemon's descriptors. PCP's nonce binds a
 * mapping to its creator: a MAP for it with another nonce gets NOT_AUTHORIZED, as does a
 * NAT-PMP request for a mapping PCP made and the reverse (RFC 6887 §11.3). PCP's client
 * address must be the request's source (ADDRESS_MISMATCH otherwise, §8.1). A MAP for a
 * protocol other than TCP and UDP gets UNSUPP_PROTOCOL; for "all ports" (internal port 0)
 * with a lifetime, NOT_AUTHORIZED (neither can be a port forward).
 *
 * Epoch (RFC 6886 §3.6, RFC 6887 §8.5): seconds since this server started, so a client that
 * sees it go backwards knows mappings were lost.
 *
 * Not done: PEER (outbound mappings; UNSUPP_OPCODE), THIRD_PARTY and FILTER (UNSUPP_OPTION),
 * IPv6, the unsolicited ANNOUNCE a restarted server multicasts (ours never restarts while its
 * network lives), and authentication (RFC 7652).
 */
import type { Endpoint, FlowId, Ipv4Endpoint } from '../net/addr.js';
import type { ForwardRule } from '../nat/forwards.js';
import { formatIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import type { Counters } from '../util/drops.js';
import { isDrop } from '../util/drops.js';
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  NATPMP_RESULT,
  PCP_RESULT,
  parsePortmapRequest,
  writeNatPmpAddressResponse,
  writeNatPmpErrorResponse,
  writeNatPmpMapResponse,
  writePcpAnnounceResponse,
  writePcpErrorResponse,
  writePcpMapResponse,
  type PortmapDrop,
  type PortmapRequest,
} from './wire.js';

/**
 * What the server counts, by name (beside the parser's drops, `PortmapDrop`): requests by
 * protocol, mappings created, renewed, deleted and expired, refusals by reason.
 */
export const PORTMAP_COUNTERS = [
  'portmap.natpmp-requests', 'portmap.pcp-requests', 'portmap.created', 'portmap.renewed', 'portmap.deleted', 'portmap.expired',
  'portmap.guest-limit', 'portmap.network-limit', 'portmap.wrong-owner', 'portmap.too-many-waiters', 'portmap.suggested-port-taken',
  'portmap.socket-error', 'portmap.natpmp-unsupported-opcode', 'portmap.pcp-error',
] as const;
export type PortmapCounter = (typeof PORTMAP_COUNTERS)[number];

export const MAX_PER_GUEST = 16;
export const MAX_PER_NETWORK = 64;
/** One day (RFC 6887 §15 suggests this as the largest lifetime a server grants by default). */
export const MAX_LIFETIME_S = 86_400;
/** Requests waiting on one mapping's socket at most. */
export const MAX_WAITERS = 4;
/** How long a client should wait before retrying after a short-lived error (RFC 6887 §7.4). */
const SHORT_ERROR_LIFETIME_S = 30;
/** … and after a long-lived one (malformed, unsupported). */
const LONG_ERROR_LIFETIME_S = 1800;

/** A mapping's life, for the shell's log: bound (with its port), renewed, deleted, expired, or failed to bind. */
export interface PortMappingEvent {
  readonly event: 'mapped' | 'renewed' | 'deleted' | 'expired' | 'failed';
  readonly origin: 'natpmp' | 'pcp';
  readonly protocol: 'tcp' | 'udp';
  /** The guest's address:port. */
  readonly guest: string;
  /** The external address:port; undefined until bound. */
  readonly external: string | undefined;
  readonly lifetimeS: number;
}

/** What a mapping server needs of its network. */
export interface PortMapperDeps {
  /** The address mappings listen on and NAT-PMP answers as public. */
  readonly externalAddr: Ipv4Addr;
  readonly counters: Counters;
  /** Opens a forward (ForwardPorts.open); `opened`/`failed` report its socket. */
  openForward(rule: ForwardRule): FlowId;
  closeForward(id: FlowId): void;
  /** One UDP datagram from the gateway's port 5351 to the guest. */
  send(to: Ipv4Endpoint, payload: Uint8Array): void;
  /** Optional: each mapping's life, as it happens. */
  onEvent?(e: PortMappingEvent): void;
}

type Origin = 'natpmp' | 'pcp';

/** Who waits for a mapping's answer, and how to write it. */
interface Waiter {
  readonly to: Ipv4Endpoint;
  answer(result: 'ok' | 'failed' | 'cannot-provide', mapping: Mapping, nowMs: number): void;
}

interface Mapping {
  readonly guest: Ipv4Addr;
  readonly protocol: 'tcp' | 'udp';
  readonly internalPort: number;
  readonly origin: Origin;
  /** PCP's mapping nonce (12 octets, a copy); undefined for NAT-PMP. */
  readonly nonce: Uint8Array | undefined;
  /** The forward's id; replaced when it is reopened on any port. */
  id: FlowId;
  /** The port the forward first tried: a suggestion (0: none). */
  triedPort: number;
  preferFailure: boolean;
  /** 0 until the socket is bound. */
  externalPort: number;
  /** The lifetime granted by the last request, in seconds; answered as it is. */
  grantedS: number;
  /** Counted from the bind (an opening mapping cannot expire before it answered). */
  expiresAtMs: number;
  waiters: Waiter[];
}

/** A mapping as listed with the network's forwards. */
export interface MappingInfo {
  readonly id: FlowId;
  readonly origin: Origin;
  readonly protocol: 'tcp' | 'udp';
  readonly guest: Endpoint;
  /** Undefined until the socket is bound. */
  readonly external: Endpoint | undefined;
  readonly expiresAtMs: number;
}

const keyOf = (guest: Ipv4Addr, protocol: 'tcp' | 'udp', internalPort: number): string => `${guest}/${protocol}/${internalPort}`;
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

export class PortMapper {
  readonly #deps: PortMapperDeps;
  readonly #startMs: number;
  readonly #byKey = new Map<string, Mapping>();
  readonly #byId = new Map<FlowId, Mapping>();

  constructor(deps: PortMapperDeps, nowMs: number) {
    this.#deps = deps;
    this.#startMs = nowMs;
  }

  #count(name: PortmapCounter | PortmapDrop): void {
    this.#deps.counters.count(name);
  }

  #epoch(nowMs: number): number {
    return Math.floor((nowMs - this.#startMs) / 1000) >>> 0;
  }

  /** Mappings live now. */
  get size(): number {
    return this.#byKey.size;
  }

  /** One datagram to port 5351 from the guest `from`. */
  request(from: Ipv4Endpoint, payload: Uint8Array, nowMs: number): void {
    const r = parsePortmapRequest(payload);
    if (isDrop(r)) return this.#count(r);
    this.#count(r.kind.startsWith('natpmp') ? 'portmap.natpmp-requests' : 'portmap.pcp-requests');
    this.#handle(from, r, nowMs);
  }

  #handle(from: Ipv4Endpoint, r: PortmapRequest, nowMs: number): void {
    const epochS = this.#epoch(nowMs);
    const send = (b: Uint8Array): void => this.#deps.send(from, b);
    switch (r.kind) {
      case 'natpmp-address':
        return send(writeNatPmpAddressResponse({ result: NATPMP_RESULT.SUCCESS, epochS, externalAddr: this.#deps.externalAddr }));
      case 'natpmp-error':
        this.#count('portmap.natpmp-unsupported-opcode');
        return send(writeNatPmpErrorResponse(r.request, r.result, epochS));
      case 'natpmp-map':
        return this.#natPmpMap(from, r, nowMs);
      case 'pcp-error':
        this.#count('portmap.pcp-error');
        return send(writePcpErrorResponse(r.request, { opcode: r.opcode, result: r.result, lifetimeS: LONG_ERROR_LIFETIME_S, epochS }));
      case 'pcp-announce':
        if (r.clientAddr !== from.addr) {
          this.#count('portmap.pcp-error');
          return send(writePcpAnnounceResponse({ result: PCP_RESULT.ADDRESS_MISMATCH, lifetimeS: LONG_ERROR_LIFETIME_S, epochS }));
        }
        return send(writePcpAnnounceResponse({ result: PCP_RESULT.SUCCESS, lifetimeS: 0, epochS }));
      case 'pcp-map':
        return this.#pcpMap(from, r, nowMs);
    }
  }

  #natPmpMap(from: Ipv4Endpoint, r: Extract<PortmapRequest, { kind: 'natpmp-map' }>, nowMs: number): void {
    const reply = (result: number, externalPort: number, lifetimeS: number): void =>
      this.#deps.send(from, writeNatPmpMapResponse({ protocol: r.protocol, result, epochS: this.#epoch(nowMs), internalPort: r.internalPort, externalPort, lifetimeS }));
    if (r.lifetimeS === 0) {
      // RFC 6886 §3.4: delete one mapping, or with internal port 0 all of this client's for the protocol.
      for (const m of [...this.#byKey.values()])
        if (m.guest === from.addr && m.protocol === r.protocol && m.origin === 'natpmp' && (r.internalPort === 0 || m.internalPort === r.internalPort)) this.#delete(m, 'portmap.deleted');
      return reply(NATPMP_RESULT.SUCCESS, 0, 0);
    }
    if (r.internalPort === 0) return reply(NATPMP_RESULT.REFUSED, 0, 0);
    const waiter: Waiter = {
      to: from,
      answer: (result, m, atMs) => {
        const ok = result === 'ok';
        this.#deps.send(
          from,
          writeNatPmpMapResponse({
            protocol: r.protocol,
            result: ok ? NATPMP_RESULT.SUCCESS : NATPMP_RESULT.NETWORK_FAILURE,
            epochS: this.#epoch(atMs),
            internalPort: r.internalPort,
            externalPort: ok ? m.externalPort : 0,
            lifetimeS: ok ? m.grantedS : 0,
          }),
        );
      },
    };
    const outcome = this.#map(from.addr, r.protocol, r.internalPort, r.suggestedPort, r.lifetimeS, 'natpmp', undefined, false, waiter, nowMs);
    if (outcome === 'wrong-owner') return reply(NATPMP_RESULT.REFUSED, 0, 0);
    if (outcome === 'guest-limit' || outcome === 'network-limit') return reply(NATPMP_RESULT.OUT_OF_RESOURCES, 0, 0);
  }

  #pcpMap(from: Ipv4Endpoint, r: Extract<PortmapRequest, { kind: 'pcp-map' }>, nowMs: number): void {
    const response = (result: number, lifetimeS: number, externalPort: number, atMs: number): Uint8Array =>
      writePcpMapResponse(
        { result, lifetimeS, epochS: this.#epoch(atMs) },
        { nonce: r.nonce, protocol: r.protocol, internalPort: r.internalPort, externalPort, externalAddr: result === PCP_RESULT.SUCCESS ? this.#deps.externalAddr : 0 },
      );
    const fail = (result: number, short: boolean): void => {
      this.#count('portmap.pcp-error');
      this.#deps.send(from, response(result, short ? SHORT_ERROR_LIFETIME_S : LONG_ERROR_LIFETIME_S, 0, nowMs));
    };
    if (r.clientAddr !== from.addr) return fail(PCP_RESULT.ADDRESS_MISMATCH, false);
    const protocol = r.protocol === IPPROTO_TCP ? 'tcp' : r.protocol === IPPROTO_UDP ? 'udp' : undefined;
    if (r.lifetimeS === 0) {
      // RFC 6887 §15: a delete; deleting what does not exist succeeds. Protocol 0 / port 0: all of them.
      for (const m of [...this.#byKey.values()]) {
        if (m.guest !== from.addr || m.origin !== 'pcp') continue;
        if (r.protocol !== 0 && m.protocol !== protocol) continue;
        if (r.internalPort !== 0 && m.internalPort !== r.internalPort) continue;
        if (!sameBytes(m.nonce!, r.nonce)) {
          if (r.internalPort !== 0) return fail(PCP_RESULT.NOT_AUTHORIZED, false);
          continue;
        }
        this.#delete(m, 'portmap.deleted');
      }
      return this.#deps.send(from, response(PCP_RESULT.SUCCESS, 0, 0, nowMs));
    }
    if (protocol === undefined) return fail(PCP_RESULT.UNSUPP_PROTOCOL, false);
    if (r.internalPort === 0) return fail(PCP_RESULT.NOT_AUTHORIZED, false);
    if (r.preferFailure && r.suggestedAddr !== undefined && r.suggestedAddr !== 0 && r.suggestedAddr !== this.#deps.externalAddr)
      return fail(PCP_RESULT.CANNOT_PROVIDE_EXTERNAL, true);
    const waiter: Waiter = {
      to: from,
      answer: (result, m, atMs) => {
        if (result === 'ok') return this.#deps.send(from, response(PCP_RESULT.SUCCESS, m.grantedS, m.externalPort, atMs));
        this.#count('portmap.pcp-error');
        this.#deps.send(from, response(result === 'cannot-provide' ? PCP_RESULT.CANNOT_PROVIDE_EXTERNAL : PCP_RESULT.NETWORK_FAILURE, SHORT_ERROR_LIFETIME_S, 0, atMs));
      },
    };
    const outcome = this.#map(from.addr, protocol, r.internalPort, r.suggestedPort, r.lifetimeS, 'pcp', r.nonce, r.preferFailure, waiter, nowMs);
    if (outcome === 'wrong-owner') return fail(PCP_RESULT.NOT_AUTHORIZED, false);
    if (outcome === 'guest-limit') return fail(PCP_RESULT.USER_EX_QUOTA, true);
    if (outcome === 'network-limit') return fail(PCP_RESULT.NO_RESOURCES, true);
  }

  /** Creates or renews a mapping; the waiter is answered now (renewal of an open one) or once the socket is bound. */
  #map(
    guest: Ipv4Addr,
    protocol: 'tcp' | 'udp',
    internalPort: number,
    suggestedPort: number,
    lifetimeS: number,
    origin: Origin,
    nonce: Uint8Array | undefined,
    preferFailure: boolean,
    waiter: Waiter,
    nowMs: number,
  ): 'pending' | 'answered' | 'wrong-owner' | 'guest-limit' | 'network-limit' {
    const grantedS = Math.min(lifetimeS, MAX_LIFETIME_S);
    const key = keyOf(guest, protocol, internalPort);
    const existing = this.#byKey.get(key);
    if (existing !== undefined) {
      if (existing.origin !== origin || (nonce !== undefined && !sameBytes(existing.nonce!, nonce))) {
        this.#count('portmap.wrong-owner');
        return 'wrong-owner';
      }
      existing.grantedS = grantedS;
      existing.expiresAtMs = nowMs + grantedS * 1000;
      this.#count('portmap.renewed');
      this.#event('renewed', existing);
      if (existing.externalPort !== 0) {
        waiter.answer('ok', existing, nowMs);
        return 'answered';
      }
      if (existing.waiters.length >= MAX_WAITERS) this.#count('portmap.too-many-waiters');
      else existing.waiters.push(waiter);
      return 'pending';
    }
    let ofGuest = 0;
    for (const m of this.#byKey.values()) if (m.guest === guest) ofGuest++;
    if (ofGuest >= MAX_PER_GUEST) {
      this.#count('portmap.guest-limit');
      return 'guest-limit';
    }
    if (this.#byKey.size >= MAX_PER_NETWORK) {
      this.#count('portmap.network-limit');
      return 'network-limit';
    }
    const m: Mapping = {
      guest,
      protocol,
      internalPort,
      origin,
      nonce: nonce?.slice(),
      id: 0,
      triedPort: suggestedPort,
      preferFailure,
      externalPort: 0,
      grantedS,
      expiresAtMs: nowMs + grantedS * 1000,
      waiters: [waiter],
    };
    this.#byKey.set(key, m);
    this.#open(m, suggestedPort);
    this.#count('portmap.created');
    return 'pending';
  }

  #open(m: Mapping, port: number): void {
    m.id = this.#deps.openForward({
      protocol: m.protocol,
      hostAddr: this.#deps.externalAddr,
      hostPort: port,
      guestAddr: m.guest,
      guestPort: m.internalPort,
      text: `${m.origin === 'pcp' ? 'pcp' : 'nat-pmp'} ${m.protocol}:${port === 0 ? 'any' : port}-${formatIpv4Addr(m.guest)}:${m.internalPort}`,
    });
    this.#byId.set(m.id, m);
  }

  /** Whether `id` is one of the mappings' forwards (for the stack's host events). */
  owns(id: FlowId): boolean {
    return this.#byId.has(id);
  }

  /** The mapping's socket is bound to `local`: answer who waits. */
  opened(id: FlowId, local: Endpoint, nowMs: number): void {
    const m = this.#byId.get(id);
    if (m?.externalPort !== 0) return;
    m.externalPort = local.port;
    m.expiresAtMs = nowMs + m.grantedS * 1000;
    this.#event('mapped', m);
    const waiters = m.waiters;
    m.waiters = [];
    for (const w of waiters) w.answer('ok', m, nowMs);
  }

  /** The mapping's socket failed: before it was bound, retry on any port once, else fail who waits. */
  failed(id: FlowId, nowMs: number): void {
    const m = this.#byId.get(id);
    if (m === undefined) return;
    if (m.externalPort !== 0) return; // a bound socket's later error: it goes on (ForwardPorts counts it)
    this.#byId.delete(id);
    this.#deps.closeForward(id);
    if (m.triedPort !== 0 && !m.preferFailure) {
      m.triedPort = 0;
      this.#count('portmap.suggested-port-taken');
      return this.#open(m, 0);
    }
    this.#count('portmap.socket-error');
    this.#event('failed', m);
    this.#byKey.delete(keyOf(m.guest, m.protocol, m.internalPort));
    for (const w of m.waiters) w.answer(m.preferFailure ? 'cannot-provide' : 'failed', m, nowMs);
    m.waiters = [];
  }

  #delete(m: Mapping, why: 'portmap.deleted' | 'portmap.expired'): void {
    this.#byKey.delete(keyOf(m.guest, m.protocol, m.internalPort));
    this.#byId.delete(m.id);
    this.#deps.closeForward(m.id);
    this.#count(why);
    this.#event(why === 'portmap.expired' ? 'expired' : 'deleted', m);
  }

  #event(event: PortMappingEvent['event'], m: Mapping): void {
    this.#deps.onEvent?.({
      event,
      origin: m.origin,
      protocol: m.protocol,
      guest: `${formatIpv4Addr(m.guest)}:${m.internalPort}`,
      external: m.externalPort === 0 ? undefined : `${formatIpv4Addr(this.#deps.externalAddr)}:${m.externalPort}`,
      lifetimeS: m.grantedS,
    });
  }

  /** Expires mappings whose lifetime ended. */
  advance(nowMs: number): void {
    for (const m of [...this.#byKey.values()]) if (m.expiresAtMs <= nowMs) this.#delete(m, 'portmap.expired');
  }

  nextDeadline(): number | undefined {
    let at: number | undefined;
    for (const m of this.#byKey.values()) if (at === undefined || m.expiresAtMs < at) at = m.expiresAtMs;
    return at;
  }

  /** The live mappings. */
  list(): MappingInfo[] {
    return [...this.#byKey.values()].map((m) => ({
      id: m.id,
      origin: m.origin,
      protocol: m.protocol,
      guest: { addr: m.guest, port: m.internalPort },
      external: m.externalPort === 0 ? undefined : { addr: this.#deps.externalAddr, port: m.externalPort },
      expiresAtMs: m.expiresAtMs,
    }));
  }

  /** Closes every mapping's socket. */
  close(): void {
    for (const m of [...this.#byKey.values()]) this.#delete(m, 'portmap.deleted');
  }
}
