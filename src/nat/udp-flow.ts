/**
 * UDP NAT: guest datagrams to the outside leave through host sockets, one per NAT mapping, and
 * what comes back is let in by the network's filtering (RFC 4787; `behaviour.ts`).
 *
 * Theory of operation
 * -------------------
 * A *mapping* is a guest endpoint's public side: one host UDP socket. Which of the guest
 * endpoint's datagrams share a mapping is the mapping behaviour: all of them (`eim`), those to
 * one remote address (`adm`), those to one remote endpoint (`apdm`). A mapping is a flow-table
 * entry whose `remote` is the part of the destination its key depends on: 0.0.0.0:0 for `eim`,
 * ADDR:0 for `adm`, ADDR:PORT for `apdm`; so the table's tuple index finds the mapping of a
 * datagram in one lookup, and its limits bound mappings per guest and per network
 * ('nat.udp-guest-limit', 'udp.flow-evicted': the least recently active mapping goes).
 *
 * Every destination a mapping has sent to is a *peer* of the mapping (at most
 * `MAX_PEERS_PER_MAPPING`, the oldest forgotten first, 'nat.udp-peer-evicted'): its address as
 * the guest wrote it and where it goes on the host after `routeOutbound` (the gateway reaches
 * 127.0.0.1, `--restrict` refuses, …). The filtering decides which inbound datagrams reach
 * the guest: any (`eif`), those from a peer's address (`adf`), those from a peer (`apdf`);
 * the others are counted ('nat.udp-filtered') and dropped. The guest sees a datagram coming
 * from the address it sent to, or for a sender it never addressed from the sender's address
 * (the gateway for the host's loopback, as for forwards).
 *
 * The socket of a mapping:
 * - `apdm` with `apdf` (symmetric NAT): a socket *connected* to the one peer (`Host.udpOpen`),
 *   so the kernel does the filtering and reports ICMP errors: port unreachable comes back to
 *   the guest as ICMP port unreachable (host and net unreachable likewise).
 * - Every other combination: an unconnected socket (`Host.udpBind`) that sends to each peer
 *   (`udpSendTo`) and reports each datagram's sender (`udpReceivedFrom`). Node reports no ICMP
 *   errors for unconnected sockets (no IP_RECVERR), so a closed remote port is silence to the
 *   guest, as with libslirp. Datagrams sent before the socket is bound wait in the mapping (at
 *   most `MAX_PENDING`, 'nat.udp-pending-full').
 * The socket binds to `--outbound` (`--outbound6` for IPv6; else any address) and, with port
 * preservation, to the guest's source port first; when that port is taken (EADDRINUSE,
 * EACCES) it binds again to any port ('nat.udp-port-not-preserved'); a bind that fails
 * otherwise closes the mapping ('nat.udp-bind-failed'), so the guest's next datagram tries
 * afresh.
 *
 * Hairpinning (REQ-9): the host's kernel delivers a datagram sent from one of our sockets to
 * the public endpoint of another (same machine), from the sender's public endpoint, and the
 * receiving mapping's filtering applies as to any sender: that is hairpinning, for free. With
 * `--nat-hairpin off` a guest datagram to a public endpoint of this network's mappings is
 * dropped ('nat.hairpin-refused'). A public endpoint is known once its socket is bound: its
 * `--outbound` address and port; bound to any address, its port on the host's loopback
 * (10.0.2.2:PORT as the guest sees it). Connected sockets report no local endpoint, so
 * symmetric mappings are not hairpin targets for this check (their kernel filter drops a
 * hairpinned datagram anyway, it does not come from their one peer).
 *
 * Timeout (REQ-5, `behaviour.udpTimeoutMs`, 120 s by default): a mapping idle that long is
 * closed. Outbound datagrams refresh it; inbound ones too with `refresh: 'both'` (REQ-6).
 *
 * Errors on a connected socket: ECONNREFUSED (the peer's port is closed) becomes ICMP port
 * unreachable to the guest, EHOSTUNREACH host unreachable, ENETUNREACH network unreachable,
 * EACCES/EPERM administratively prohibited (RFC 1812 §5.2.7.1 codes). A refusal by policy is
 * also answered with "administratively prohibited", so the guest's program fails fast.
 *
 * Port forwards (`--hostfwd udp:`, `forward-ports.ts`): each client of a forward's bound
 * socket becomes a flow with origin 'forward' (`forward()`), the guest seeing it from
 * `forwardedRemote` (the client's address, or the gateway for loopback clients). It has no
 * socket of its own: its `via` is the bound socket, which sends the guest's replies to the
 * client (`Host.udpSendTo`); the client's later datagrams find the flow by socket and client
 * (`deliver`). Such flows are keyed by their full tuple, looked up before the mappings, count
 * against the guest they go to, and age and are evicted like the others.
 *
 * Not forwarded: broadcast and multicast (the stack counts them before they get here).
 */
import type { Endpoint, FlowId, IpAddr, IpPair } from '../net/addr.js';
import type { Host, ToGuest } from '../net/seams.js';
import { ICMP_TYPE } from '../ipv4/icmp-wire.js';
import { IP_PROTO } from '../ipv4/wire.js';
import { LOOPBACK6, pseudoSumIp, UNSPECIFIED6 } from '../ipv6/wire.js';
import { UDP_HEADER_LEN, udpLength, writeUdp, type Udp } from '../udp/wire.js';
import { put16 } from '../util/bytes.js';
import { hostErrno } from '../util/drops.js';
import type { FlowEntry, FlowTable } from './flow-table.js';
import { DEFAULT_NAT, type NatBehaviour } from './behaviour.js';
import { forwardedRemote, routeOutbound } from './policy.js';

/** The default mapping timeout (RFC 4787 REQ-5's minimum); `--nat-udp-timeout` changes it. */
export const UDP_IDLE_TIMEOUT_MS = DEFAULT_NAT.udpTimeoutMs;
/** Peers one mapping remembers for its filtering; the oldest is forgotten first. */
export const MAX_PEERS_PER_MAPPING = 256;
/** Datagrams a mapping keeps while its socket binds. */
export const MAX_PENDING = 64;

/** ICMP destination-unreachable codes (RFC 792, RFC 1812 §5.2.7.1). */
export const UNREACHABLE = { NET: 0, HOST: 1, PORT: 3, ADMIN_PROHIBITED: 13 } as const;

/** The unreachable code a host socket error maps to, if any. */
export function unreachableCodeFor(errorCode: string): number | undefined {
  switch (errorCode) {
    case 'ECONNREFUSED':
      return UNREACHABLE.PORT;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
      return UNREACHABLE.HOST;
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return UNREACHABLE.NET;
    case 'EACCES':
    case 'EPERM':
      return UNREACHABLE.ADMIN_PROHIBITED;
    default:
      return undefined;
  }
}

/** A destination a mapping has sent to. */
export interface UdpPeer {
  /** The peer as the guest addresses it. */
  readonly remote: Endpoint;
  /** Where it is on the host (after `routeOutbound`). */
  readonly host: Endpoint;
  firstMs: number;
  lastOutMs: number;
  packetsOut: number;
  bytesOut: number;
  packetsIn: number;
  bytesIn: number;
}

/** How a flow's datagrams reach the host. */
export type UdpSocketKind = 'connected' | 'bound' | 'forward';

export interface UdpFlow extends FlowEntry {
  readonly protocol: 'udp';
  /** IPv4 or IPv6; `remote` and the peers' `remote` are of the same family. */
  readonly guest: Endpoint;
  /** A mapping's key part of the destination (0.0.0.0:0 for eim, whatever the family; ADDR:0 for adm); a forward's client as the guest sees it. */
  readonly remote: Endpoint;
  readonly stateName: 'open';
  /** A forward's bound socket, which carries the flow to its client; undefined: the flow's own socket. */
  readonly via: FlowId | undefined;
  readonly socket: UdpSocketKind;
  /** The host socket's local endpoint (FlowEntry's): a mapping's once bound, undefined before and for connected sockets; a forward's bound socket. */
  local: Endpoint | undefined;
  /** The port asked for when binding: the guest's (port preservation) or 0. */
  askedPort: number;
  /** Peers by `endpointKey` of their host endpoint, oldest first; at most MAX_PEERS_PER_MAPPING. */
  readonly peers: Map<EndpointKey, UdpPeer>;
  /** The peer of the last outbound datagram (bulk traffic comes in runs). */
  lastPeer: UdpPeer | undefined;
  /** Datagrams waiting for the bind, with their host destination; undefined once bound. */
  pending: { readonly to: Endpoint; readonly data: Uint8Array }[] | undefined;
  packetsFromGuest: number;
  packetsToGuest: number;
}

/** A plain snapshot of a mapping for the control API (`UdpNat.mappings`). */
export interface UdpMappingInfo {
  readonly id: FlowId;
  readonly origin: 'guest' | 'forward';
  readonly guest: Endpoint;
  /** The host socket's endpoint ("ADDR:PORT"); undefined while binding or when the kernel chose it for a connected socket. */
  readonly public: Endpoint | undefined;
  readonly socket: UdpSocketKind;
  /** What the mapping's key holds of the destination: 'any', the address, or the endpoint. */
  readonly remote: Endpoint;
  /** The peers the guest sent to, as it addresses them, with their traffic; the filtering lets these in. */
  readonly peers: readonly { readonly remote: Endpoint; readonly host: Endpoint; readonly packetsOut: number; readonly bytesOut: number; readonly packetsIn: number; readonly bytesIn: number; readonly idleMs: number }[];
  /** Which inbound senders the filtering lets in: 'any', 'peer-addresses' or 'peers'. */
  readonly allows: 'any' | 'peer-addresses' | 'peers';
  readonly ageMs: number;
  /** Ms until it expires unless refreshed. */
  readonly expiresInMs: number;
  readonly packetsFromGuest: number;
  readonly bytesFromGuest: number;
  readonly packetsToGuest: number;
  readonly bytesToGuest: number;
}

/** A forwarded flow's key: its bound socket and its client. */
const forwardKey = (via: FlowId, client: Endpoint): string => `${via} ${client.addr} ${client.port}`;

/** An IPv4 endpoint as one number (48 bits: exact in a double); an IPv6 one as a string. */
type EndpointKey = number | string;
const endpointKey = (e: Endpoint): EndpointKey => (typeof e.addr === 'number' ? e.addr * 65536 + e.port : `${e.addr}:${e.port}`);

/** Whether a flow-table entry is a UDP NAT flow (and so IPv4 on both sides). */
const isUdpFlow = (f: FlowEntry | undefined): f is UdpFlow => f?.protocol === 'udp';

const ANY: Endpoint = Object.freeze({ addr: 0, port: 0 });

export class UdpNat {
  readonly #table: FlowTable;
  readonly #host: Host;
  readonly #guest: ToGuest;
  readonly #nat: NatBehaviour;
  /** Symmetric NAT: connected sockets (see the theory above). */
  readonly #connected: boolean;
  /** Forwarded flows by forwardKey; bounded by the flow table (removed with their flow). */
  readonly #forwarded = new Map<string, UdpFlow>();
  /** Bound mappings by `endpointKey` of their public endpoint (address 0 when bound to any): hairpin targets. */
  readonly #publics = new Map<EndpointKey, UdpFlow>();

  constructor(table: FlowTable, host: Host, guest: ToGuest, nat: NatBehaviour = DEFAULT_NAT) {
    this.#table = table;
    this.#host = host;
    this.#guest = guest;
    this.#nat = nat;
    this.#connected = nat.mapping === 'apdm' && nat.filtering === 'apdf';
  }

  /**
   * A guest datagram `u` (in `p`) to a unicast address outside the virtual hosts. False when
   * the policy refused it (counted): the stack then answers with ICMP "administratively
   * prohibited" about `p`, so the guest's program fails fast.
   */
  input(p: IpPair, u: Udp, nowMs: number): boolean {
    const table = this.#table;
    // Entries of protocol 'udp' are UdpFlows: only this engine adds them. A forward's flow
    // (full tuple) goes first; for apdm the mapping's key is the full tuple too.
    let flow = (this.#forwarded.size > 0 || this.#nat.mapping === 'apdm' ? table.byTuple('udp', p.src, u.srcPort, p.dst, u.dstPort) : undefined) as UdpFlow | undefined;
    if (flow === undefined && this.#nat.mapping !== 'apdm') flow = table.byTuple('udp', p.src, u.srcPort, this.#nat.mapping === 'adm' ? p.dst : 0, 0) as UdpFlow | undefined;
    if (flow?.socket === 'forward') {
      table.touch(flow, nowMs);
      flow.bytesFromGuest += u.payload.length;
      flow.packetsFromGuest++;
      this.#host.udpSendTo(flow.via!, flow.host, u.payload);
      return true;
    }
    let peer = flow?.lastPeer;
    if (peer?.remote.port !== u.dstPort || peer.remote.addr !== p.dst) {
      const remote: Endpoint = { addr: p.dst, port: u.dstPort };
      const route = routeOutbound(this.#guest.config, remote);
      if ('refused' in route) {
        this.#guest.counters.count(route.refused);
        if (route.egress !== undefined)
          this.#guest.egressRefused?.({ protocol: 'udp', guest: { addr: p.src, port: u.srcPort }, remote, to: route.egress.to, drop: route.refused, rule: route.egress.rule });
        return false;
      }
      if (!this.#nat.hairpin && this.#isPublic(route.to)) {
        this.#guest.counters.count('nat.hairpin-refused');
        return true;
      }
      if (flow === undefined) {
        // Past the network's new-flow rate: dropped (flow-table.ts).
        if (!table.admitNew(nowMs)) {
          this.#guest.counters.count('nat.new-flow-rate');
          return true;
        }
        flow = this.#open(p.src, u.srcPort, remote, route.to, nowMs);
        if (flow === undefined) return true;
      }
      peer = flow.peers.get(endpointKey(route.to)) ?? this.#addPeer(flow, remote, route.to, nowMs);
      flow.lastPeer = peer;
    } else if (!this.#nat.hairpin && this.#isPublic(peer.host)) {
      this.#guest.counters.count('nat.hairpin-refused');
      return true;
    }
    // flow is defined here: a lastPeer implies its flow, and the branch above opened one.
    const f = flow!;
    table.touch(f, nowMs);
    f.bytesFromGuest += u.payload.length;
    f.packetsFromGuest++;
    peer.lastOutMs = nowMs;
    peer.packetsOut++;
    peer.bytesOut += u.payload.length;
    if (f.socket === 'connected') this.#host.udpSend(f.id, u.payload);
    else if (f.pending === undefined) this.#host.udpSendTo(f.id, peer.host, u.payload);
    else if (f.pending.length < MAX_PENDING) f.pending.push({ to: peer.host, data: u.payload });
    else this.#guest.counters.count('nat.udp-pending-full');
    return true;
  }

  /** A new mapping for guest `addr:port` whose first datagram goes to `remote` (`host` on the host); undefined when refused (counted). */
  #open(addr: IpAddr, port: number, remote: Endpoint, host: Endpoint, nowMs: number): UdpFlow | undefined {
    this.#makeRoom(addr);
    const mapping = this.#nat.mapping;
    const created: UdpFlow = {
      id: this.#table.allocateId(),
      protocol: 'udp',
      origin: 'guest',
      guest: { addr, port },
      remote: mapping === 'eim' ? ANY : mapping === 'adm' ? { addr: remote.addr, port: 0 } : remote,
      host: mapping === 'apdm' ? host : ANY,
      createdMs: nowMs,
      lastActiveMs: nowMs,
      bytesFromGuest: 0,
      bytesToGuest: 0,
      stateName: 'open',
      via: undefined,
      socket: this.#connected ? 'connected' : 'bound',
      local: undefined,
      askedPort: this.#nat.portPreservation ? port : 0,
      peers: new Map(),
      lastPeer: undefined,
      pending: this.#connected ? undefined : [],
      packetsFromGuest: 0,
      packetsToGuest: 0,
    };
    if (!this.#table.add(created)) {
      this.#guest.counters.count('udp.flow-refused');
      return undefined;
    }
    this.#bind(created);
    return created;
  }

  /** Opens the mapping's socket: from `--outbound` (`--outbound6` for an IPv6 guest, whose peers are IPv6; else any address), on `askedPort`. */
  #bind(f: UdpFlow): void {
    const v4 = typeof f.guest.addr === 'number';
    const outbound = v4 ? this.#guest.config.outbound : this.#guest.config.outbound6;
    const local: Endpoint = { addr: outbound ?? (v4 ? 0 : UNSPECIFIED6), port: f.askedPort };
    if (f.socket === 'bound') this.#host.udpBind(f.id, local);
    else if (outbound === undefined && f.askedPort === 0) this.#host.udpOpen(f.id, f.host);
    else this.#host.udpOpen(f.id, f.host, local);
  }

  #addPeer(f: UdpFlow, remote: Endpoint, host: Endpoint, nowMs: number): UdpPeer {
    if (f.peers.size >= MAX_PEERS_PER_MAPPING) {
      for (const k of f.peers.keys()) {
        f.peers.delete(k);
        break;
      }
      this.#guest.counters.count('nat.udp-peer-evicted');
    }
    const peer: UdpPeer = { remote, host, firstMs: nowMs, lastOutMs: nowMs, packetsOut: 0, bytesOut: 0, packetsIn: 0, bytesIn: 0 };
    f.peers.set(endpointKey(host), peer);
    return peer;
  }

  /** Whether `to` (a host endpoint) is the public endpoint of one of this network's bound mappings. */
  #isPublic(to: Endpoint): boolean {
    if (this.#publics.size === 0) return false;
    if (this.#publics.has(endpointKey(to))) return true;
    if (typeof to.addr === 'number') return to.addr >>> 24 === 127 && this.#publics.has(to.port);
    return to.addr === LOOPBACK6 && this.#publics.has(`${UNSPECIFIED6}:${to.port}`);
  }

  /**
   * A datagram from a new client of a `--hostfwd udp:` socket: a flow whose remote side is
   * the client as the guest sees it (`forwardedRemote`) and whose host side is the client. The
   * bound socket `via` (bound on `local`, when known) carries it (no udpOpen). Undefined when the tuple is taken, or when the
   * client cannot appear on the guest's family ('udp.forward-family', `forwardedRemote`).
   */
  forward(client: Endpoint, to: Endpoint, nowMs: number, via: FlowId, local?: Endpoint): FlowId | undefined {
    const guest = to;
    const remote = forwardedRemote(this.#guest.config, client, typeof guest.addr === 'number' ? 4 : 6);
    if (remote === undefined) {
      this.#guest.counters.count('udp.forward-family');
      return undefined;
    }
    if (this.#table.byTuple('udp', guest.addr, guest.port, remote.addr, remote.port) !== undefined) {
      this.#guest.counters.count('udp.forward-tuple-taken');
      return undefined;
    }
    this.#makeRoom(guest.addr);
    const flow: UdpFlow = {
      id: this.#table.allocateId(), protocol: 'udp', origin: 'forward', guest, remote, host: client,
      createdMs: nowMs, lastActiveMs: nowMs, bytesFromGuest: 0, bytesToGuest: 0, stateName: 'open', via,
      socket: 'forward', local, askedPort: 0, peers: new Map(), lastPeer: undefined, pending: undefined, packetsFromGuest: 0, packetsToGuest: 0,
    };
    if (!this.#table.add(flow)) return undefined;
    this.#forwarded.set(forwardKey(via, client), flow);
    return flow.id;
  }

  /** A datagram from `client` on bound socket `via`: to the guest when the client has a live flow there. */
  deliver(via: FlowId, client: Endpoint, data: Uint8Array, nowMs: number): boolean {
    const flow = this.#forwarded.get(forwardKey(via, client));
    if (flow === undefined) return false;
    this.#toGuest(flow, flow.remote, data, nowMs);
    return true;
  }

  /**
   * Makes room for a new flow of guest `guestAddr`: at the guest's limit evicts its least
   * recently active flow, at the network's the network's (see the theory above).
   */
  #makeRoom(guestAddr: IpAddr): void {
    // One eviction at a limit; more only after a reload lowered it below the flows open (the
    // table's size bounds the loop): the guest (or network) comes down to the new limit here.
    for (let n = this.#table.count('udp'); n >= 0; n--) {
      const hit = this.#table.limitHit('udp', guestAddr);
      if (hit === undefined) return;
      const victim = this.#table.leastRecent('udp', hit === 'guest' ? guestAddr : undefined);
      if (victim === undefined) return;
      this.#close(victim.id);
      this.#guest.counters.count(hit === 'guest' ? 'nat.udp-guest-limit' : 'udp.flow-evicted');
    }
  }

  /** True when the flow (or bound socket) is one of ours. */
  owns(flow: FlowId): boolean {
    return this.#table.get('udp', flow) !== undefined;
  }

  /** A mapping's socket is bound on `local` (udpBound): its public endpoint; waiting datagrams go out. */
  bound(id: FlowId, local: Endpoint): void {
    const f = this.#table.get('udp', id);
    if (!isUdpFlow(f) || f.socket !== 'bound') return;
    if (f.local !== undefined) this.#publics.delete(endpointKey(f.local));
    f.local = local;
    this.#publics.set(endpointKey(local), f);
    const pending = f.pending ?? [];
    f.pending = undefined;
    for (const d of pending) this.#host.udpSendTo(id, d.to, d.data);
  }

  /** A datagram from `from` on a mapping's unconnected socket: to the guest if the filtering lets it in. */
  hostDatagramFrom(id: FlowId, from: Endpoint, data: Uint8Array, nowMs: number): void {
    const f = this.#table.get('udp', id);
    if (!isUdpFlow(f)) return this.#guest.counters.count('udp.unknown-flow');
    const peer = f.peers.get(endpointKey(from));
    if (peer === undefined) {
      const filtering = this.#nat.filtering;
      if (filtering === 'apdf' || (filtering === 'adf' && !this.#knowsAddress(f, from.addr))) return this.#guest.counters.count('nat.udp-filtered');
      const seen = forwardedRemote(this.#guest.config, from, typeof f.guest.addr === 'number' ? 4 : 6);
      if (seen === undefined) return this.#guest.counters.count('udp.from-other-family');
      return this.#toGuest(f, seen, data, nowMs);
    }
    peer.packetsIn++;
    peer.bytesIn += data.length;
    this.#toGuest(f, peer.remote, data, nowMs);
  }

  #knowsAddress(f: UdpFlow, addr: IpAddr): boolean {
    for (const p of f.peers.values()) if (p.host.addr === addr) return true;
    return false;
  }

  /** A datagram on a connected mapping's socket (udpReceived): from its one peer. */
  hostDatagram(id: FlowId, data: Uint8Array, nowMs: number): void {
    const flow = this.#table.get('udp', id);
    if (!isUdpFlow(flow)) return this.#guest.counters.count('udp.unknown-flow');
    const peer = flow.lastPeer;
    if (peer !== undefined) {
      peer.packetsIn++;
      peer.bytesIn += data.length;
    }
    this.#toGuest(flow, flow.remote, data, nowMs);
  }

  /** Sends `data` to the flow's guest from `from` (as the guest sees the sender). */
  #toGuest(flow: UdpFlow, from: Endpoint, data: Uint8Array, nowMs: number): void {
    if (data.length > 0xffff - UDP_HEADER_LEN - 20) return this.#guest.counters.count('udp.host-datagram-too-big');
    if (typeof from.addr !== typeof flow.guest.addr) return this.#guest.counters.count('udp.from-other-family');
    if (this.#nat.refresh === 'both') this.#table.touch(flow, nowMs);
    flow.bytesToGuest += data.length;
    flow.packetsToGuest++;
    const out: Udp = { srcPort: from.port, dstPort: flow.guest.port, payload: data };
    const pseudo = pseudoSumIp(from.addr, flow.guest.addr, IP_PROTO.UDP);
    this.#guest.sendIp(from.addr, flow.guest.addr, IP_PROTO.UDP, udpLength(out), (into, at) => writeUdp(out, pseudo, into, at));
  }

  /**
   * A host socket error. Before a mapping's socket is bound, a preserved port in use makes it
   * bind again to any port. On a connected socket: ICMP unreachable to the guest where one
   * fits; the flow stays (a later datagram may succeed).
   */
  hostError(id: FlowId, code: string): void {
    const flow = this.#table.get('udp', id);
    if (!isUdpFlow(flow)) return;
    this.#guest.counters.count(`udp.host-${hostErrno(code)}`);
    if (flow.askedPort !== 0 && flow.local === undefined && (code === 'EADDRINUSE' || code === 'EACCES')) {
      this.#guest.counters.count('nat.udp-port-not-preserved');
      flow.askedPort = 0;
      this.#host.close(id);
      this.#bind(flow);
      return;
    }
    if (flow.socket === 'bound' && flow.local === undefined) {
      // The bind failed (--outbound not an address of this host, no port free, …): the mapping
      // goes with its waiting datagrams, so the guest's next datagram tries afresh.
      this.#guest.counters.count('nat.udp-bind-failed');
      this.#close(id);
      return;
    }
    if (flow.socket !== 'connected') return;
    const icmpCode = unreachableCodeFor(code);
    if (icmpCode === undefined) return;
    // The guest's datagram is gone: quote a UDP header rebuilt from the tuple (length 8, no
    // checksum); the stack adds the IP header (RFC 792 quotes the IP header + 64 bits).
    const header = new Uint8Array(UDP_HEADER_LEN);
    put16(header, 0, flow.guest.port);
    put16(header, 2, flow.remote.port);
    put16(header, 4, UDP_HEADER_LEN);
    this.#guest.flowIcmpError(flow.guest, flow.remote, IP_PROTO.UDP, header, ICMP_TYPE.DEST_UNREACHABLE, icmpCode);
  }

  /** Closes mappings and flows idle for the timeout. */
  advance(nowMs: number): void {
    const timeout = this.#nat.udpTimeoutMs;
    for (let f = this.#table.leastRecent('udp'); f !== undefined && nowMs - f.lastActiveMs >= timeout; f = this.#table.leastRecent('udp'))
      this.#close(f.id);
  }

  nextDeadline(): number | undefined {
    const f = this.#table.leastRecent('udp');
    return f === undefined ? undefined : f.lastActiveMs + this.#nat.udpTimeoutMs;
  }

  /** Closes every flow (the session ends). */
  closeAll(): void {
    for (let f = this.#table.leastRecent('udp'); f !== undefined; f = this.#table.leastRecent('udp')) this.#close(f.id);
  }

  /** Snapshots of the mappings and forwarded flows, for the control API. */
  mappings(nowMs: number): UdpMappingInfo[] {
    const out: UdpMappingInfo[] = [];
    const allows = this.#nat.filtering === 'eif' ? 'any' : this.#nat.filtering === 'adf' ? 'peer-addresses' : 'peers';
    for (const f of this.#table.flows('udp') as IterableIterator<UdpFlow>) {
      out.push({
        id: f.id,
        origin: f.origin === 'forward' ? 'forward' : 'guest',
        guest: f.guest,
        public: f.local,
        socket: f.socket,
        remote: f.remote,
        peers: [...f.peers.values()].map((p) => ({ remote: p.remote, host: p.host, packetsOut: p.packetsOut, bytesOut: p.bytesOut, packetsIn: p.packetsIn, bytesIn: p.bytesIn, idleMs: nowMs - p.lastOutMs })),
        allows: f.socket === 'forward' ? 'peers' : allows,
        ageMs: nowMs - f.createdMs,
        expiresInMs: f.lastActiveMs + this.#nat.udpTimeoutMs - nowMs,
        packetsFromGuest: f.packetsFromGuest,
        bytesFromGuest: f.bytesFromGuest,
        packetsToGuest: f.packetsToGuest,
        bytesToGuest: f.bytesToGuest,
      });
    }
    return out;
  }

  #close(id: FlowId): void {
    const flow = this.#table.remove(id);
    if (!isUdpFlow(flow)) return;
    if (flow.local !== undefined && this.#publics.get(endpointKey(flow.local)) === flow) this.#publics.delete(endpointKey(flow.local));
    if (flow.via !== undefined) this.#forwarded.delete(forwardKey(flow.via, flow.host));
    else this.#host.close(id);
  }
}
