/**
 * UDP NAT: guest datagrams to the outside go out through one connected host socket per flow.
 *
 * Theory of operation
 * -------------------
 * A flow is the guest's 5-tuple (guest address:port → remote address:port). Its first
 * datagram routes through `routeOutbound` (the gateway reaches 127.0.0.1, `--restrict` refuses
 * everything, …), opens a host UDP socket *connected* to the destination (so the kernel
 * filters replies to that peer and reports ICMP errors as ECONNREFUSED & co.), and every later
 * datagram of the tuple reuses it. Replies come back to the guest from the address and port it
 * sent to, whatever the host-side rewrite was.
 *
 * Errors: ECONNREFUSED (the peer's port is closed) becomes ICMP port unreachable to the guest,
 * EHOSTUNREACH host unreachable, ENETUNREACH network unreachable, EACCES/EPERM
 * administratively prohibited (RFC 1812 §5.2.7.1 codes). A refusal by policy is also
 * answered with "administratively prohibited", so the guest's program fails fast.
 *
 * Limits (FlowTable, `FlowLimits`): a new flow of a guest at its own limit (`perGuest.udp`)
 * evicts that guest's least recently active flow ('nat.udp-guest-limit'), so a guest that
 * opens flows without end only ever recycles its own; a new flow when the network is at its
 * limit (`udp`) evicts the least recently active flow of the network ('udp.flow-evicted').
 * Each eviction is counted once, under the limit that caused it. A flow idle for `UDP_IDLE_TIMEOUT_MS`
 * (120 s: RFC 4787 REQ-5's minimum for a NAT mapping; libslirp uses 240 s) is closed. There is
 * no queue: datagrams go straight to the socket (the kernel's buffer is the only buffer).
 *
 * Port forwards (`--hostfwd udp:`, `forward-ports.ts`): each client of a forward's bound
 * socket becomes a flow with origin 'forward' (`forward()`), the guest seeing it from
 * `forwardedRemote` (the client's address, or the gateway for loopback clients). It has no
 * socket of its own: its `via` is the bound socket, which sends the guest's replies to the
 * client (`Host.udpSendTo`); the client's later datagrams find the flow by socket and client
 * (`deliver`). Such flows count against the guest they go to, and age and are evicted like
 * the others.
 *
 * Not forwarded: broadcast and multicast (the stack counts them before they get here).
 */
import { ipv4Endpoint, type Endpoint, type FlowId, type IpAddr, type Ipv4Endpoint } from '../net/addr.js';
import type { Host, ToGuest } from '../net/seams.js';
import { ICMP_TYPE } from '../ipv4/icmp-wire.js';
import { IP_PROTO, pseudoSum, type Ipv4 } from '../ipv4/wire.js';
import { UDP_HEADER_LEN, udpLength, writeUdp, type Udp } from '../udp/wire.js';
import { put16 } from '../util/bytes.js';
import type { FlowEntry, FlowTable } from './flow-table.js';
import { forwardedRemote, routeOutbound } from './policy.js';

export const UDP_IDLE_TIMEOUT_MS = 120_000;

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

export interface UdpFlow extends FlowEntry {
  readonly protocol: 'udp';
  /** IPv4 until IPv6 comes: guest-originated flows start from an IPv4 datagram, forwards refuse IPv6 clients. */
  readonly guest: Ipv4Endpoint;
  readonly remote: Ipv4Endpoint;
  readonly stateName: 'open';
  /** A forward's bound socket, which carries the flow to its client; undefined: the flow's own connected socket. */
  readonly via: FlowId | undefined;
}

/** A forwarded flow's key: its bound socket and its client. */
const forwardKey = (via: FlowId, client: Endpoint): string => `${via} ${client.addr} ${client.port}`;

/** Whether a flow-table entry is a UDP NAT flow (and so IPv4 on both sides). */
const isUdpFlow = (f: FlowEntry | undefined): f is UdpFlow => f?.protocol === 'udp';

export class UdpNat {
  readonly #table: FlowTable;
  readonly #host: Host;
  readonly #guest: ToGuest;
  /** Forwarded flows by forwardKey; bounded by the flow table (removed with their flow). */
  readonly #forwarded = new Map<string, UdpFlow>();

  constructor(table: FlowTable, host: Host, guest: ToGuest) {
    this.#table = table;
    this.#host = host;
    this.#guest = guest;
  }

  /**
   * A guest datagram `u` (in `p`) to a unicast address outside the virtual hosts. False when
   * the policy refused it (counted): the stack then answers with ICMP "administratively
   * prohibited" about `p`, so the guest's program fails fast.
   */
  input(p: Ipv4, u: Udp, nowMs: number): boolean {
    // Entries of protocol 'udp' are UdpFlows: only this engine adds them.
    let flow = this.#table.byTuple('udp', p.src, u.srcPort, p.dst, u.dstPort) as UdpFlow | undefined;
    if (flow === undefined) {
      const remote: Ipv4Endpoint = { addr: p.dst, port: u.dstPort };
      const route = routeOutbound(this.#guest.config, remote);
      if ('refused' in route) {
        this.#guest.counters.count(route.refused);
        return false;
      }
      this.#makeRoom(p.src);
      const created: UdpFlow = {
        id: this.#table.allocateId(),
        protocol: 'udp',
        origin: 'guest',
        guest: { addr: p.src, port: u.srcPort },
        remote,
        host: route.to,
        createdMs: nowMs,
        lastActiveMs: nowMs,
        bytesFromGuest: 0,
        bytesToGuest: 0,
        stateName: 'open',
        via: undefined,
      };
      if (!this.#table.add(created)) {
        this.#guest.counters.count('udp.flow-refused');
        return true;
      }
      this.#host.udpOpen(created.id, created.host);
      flow = created;
    } else {
      this.#table.touch(flow, nowMs);
    }
    flow.bytesFromGuest += u.payload.length;
    if (flow.via === undefined) this.#host.udpSend(flow.id, u.payload);
    else this.#host.udpSendTo(flow.via, flow.host, u.payload);
    return true;
  }

  /**
   * A datagram from a new client of a `--hostfwd udp:` socket: a flow whose remote side is
   * the client as the guest sees it (`forwardedRemote`) and whose host side is the client. The
   * bound socket `via` carries it (no udpOpen). Undefined when the tuple is taken, or when the
   * client or the guest is not IPv4 ('udp.forward-not-ipv4': the NAT is IPv4 only today).
   */
  forward(client: Endpoint, to: Endpoint, nowMs: number, via: FlowId): FlowId | undefined {
    const remote = forwardedRemote(this.#guest.config, client);
    const guest = ipv4Endpoint(to);
    if (remote === undefined || guest === undefined) {
      this.#guest.counters.count('udp.forward-not-ipv4');
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
    };
    if (!this.#table.add(flow)) return undefined;
    this.#forwarded.set(forwardKey(via, client), flow);
    return flow.id;
  }

  /** A datagram from `client` on bound socket `via`: to the guest when the client has a live flow there. */
  deliver(via: FlowId, client: Endpoint, data: Uint8Array, nowMs: number): boolean {
    const flow = this.#forwarded.get(forwardKey(via, client));
    if (flow === undefined) return false;
    this.hostDatagram(flow.id, data, nowMs);
    return true;
  }

  /**
   * Makes room for a new flow of guest `guestAddr`: at the guest's limit evicts its least
   * recently active flow, at the network's the network's (see the theory above).
   */
  #makeRoom(guestAddr: IpAddr): void {
    const hit = this.#table.limitHit('udp', guestAddr);
    if (hit === undefined) return;
    const victim = this.#table.leastRecent('udp', hit === 'guest' ? guestAddr : undefined);
    if (victim !== undefined) this.#close(victim.id);
    this.#guest.counters.count(hit === 'guest' ? 'nat.udp-guest-limit' : 'udp.flow-evicted');
  }

  /** True when the flow is one of ours. */
  owns(flow: FlowId): boolean {
    return this.#table.byId(flow)?.protocol === 'udp';
  }

  /** A datagram from the host peer: to the guest, from the address it sent to. */
  hostDatagram(id: FlowId, data: Uint8Array, nowMs: number): void {
    const flow = this.#table.byId(id);
    if (!isUdpFlow(flow)) return this.#guest.counters.count('udp.unknown-flow');
    if (data.length > 0xffff - UDP_HEADER_LEN - 20) return this.#guest.counters.count('udp.host-datagram-too-big');
    this.#table.touch(flow, nowMs);
    flow.bytesToGuest += data.length;
    const out: Udp = { srcPort: flow.remote.port, dstPort: flow.guest.port, payload: data };
    const pseudo = pseudoSum(flow.remote.addr, flow.guest.addr, IP_PROTO.UDP);
    this.#guest.sendIpv4(flow.remote.addr, flow.guest.addr, IP_PROTO.UDP, udpLength(out), (into, at) => writeUdp(out, pseudo, into, at));
  }

  /** A host socket error: ICMP unreachable to the guest where one fits; the flow stays (a later datagram may succeed). */
  hostError(id: FlowId, code: string): void {
    const flow = this.#table.byId(id);
    if (!isUdpFlow(flow)) return;
    const icmpCode = unreachableCodeFor(code);
    this.#guest.counters.count(`udp.host-${code.toLowerCase()}`);
    if (icmpCode === undefined) return;
    // The guest's datagram is gone: quote a UDP header rebuilt from the tuple (length 8, no
    // checksum); the stack adds the IP header (RFC 792 quotes the IP header + 64 bits).
    const header = new Uint8Array(UDP_HEADER_LEN);
    put16(header, 0, flow.guest.port);
    put16(header, 2, flow.remote.port);
    put16(header, 4, UDP_HEADER_LEN);
    this.#guest.flowIcmpError(flow.guest, flow.remote, IP_PROTO.UDP, header, ICMP_TYPE.DEST_UNREACHABLE, icmpCode);
  }

  /** Closes flows idle for the timeout. */
  advance(nowMs: number): void {
    for (let f = this.#table.leastRecent('udp'); f !== undefined && nowMs - f.lastActiveMs >= UDP_IDLE_TIMEOUT_MS; f = this.#table.leastRecent('udp'))
      this.#close(f.id);
  }

  nextDeadline(): number | undefined {
    const f = this.#table.leastRecent('udp');
    return f === undefined ? undefined : f.lastActiveMs + UDP_IDLE_TIMEOUT_MS;
  }

  /** Closes every flow (the session ends). */
  closeAll(): void {
    for (let f = this.#table.leastRecent('udp'); f !== undefined; f = this.#table.leastRecent('udp')) this.#close(f.id);
  }

  #close(id: FlowId): void {
    const flow = this.#table.remove(id);
    if (isUdpFlow(flow) && flow.via !== undefined) this.#forwarded.delete(forwardKey(flow.via, flow.host));
    else this.#host.close(id);
  }
}
