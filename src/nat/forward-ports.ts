/**
 * Port forwards (`--hostfwd`), the network's side: each rule a network holds is a host
 * socket opened through the `Host` seam — a TCP listener (`tcpListen`) or a bound UDP socket
 * (`udpBind`) — whose clients arrive as `HostEvents` and become flows towards the guest.
 *
 * Theory of operation
 * -------------------
 * `open(rule, refusals)` draws an id from the flow table's allocator and asks the host for the
 * socket; the host answers `tcpListening`/`udpBound`, or an error (counted as
 * 'hostfwd.socket-error' and logged by the caller's `onError`; the rule is dropped then).
 * For each client:
 * - TCP (`accepted`): the rule's guest is resolved now (`forwardGuest`: the rule's address,
 *   the bound lease of its DHCP host name, else the first bound lease; for a rule whose
 *   guest is on IPv6, that lease's guest's own IPv6 address, `guest6`); the TCP engine opens
 *   a connection to it (a SYN to the guest) and the host adopts the accepted socket as that
 *   flow's, paused until the guest's handshake completes; otherwise the host refuses
 *   (resets) the client. This happens during the `tcpAccepted` event, as the seam requires.
 * - UDP (`datagram`): the client's flow for this socket is looked up (UdpNat keeps one flow
 *   per bound socket and client address:port); without one, a flow is created towards the
 *   guest resolved now. The datagram goes to the guest on that flow, and the guest's replies
 *   leave through the bound socket to the client (`udpSendTo`).
 * A client that cannot be forwarded is counted by reason in the rule's `ForwardRefusals` and
 * logged, rate-limited ('hostfwd.no-guest-address', 'hostfwd.refused-by-session').
 * 'hostfwd.no-session' is not counted here: it means no network
 * holds the rule, which only the daemon knows.
 *
 * `close(id)` gives the socket back (the daemon lends a rule's socket to whichever network
 * owns it now); flows already forwarded live on until they end.
 */
import type { DhcpLease } from '../dhcp/server.js';
import { formatEndpoint, type Endpoint, type FlowId, type IpAddr, type Ipv6Addr } from '../net/addr.js';
import type { AcceptId, Host } from '../net/seams.js';
import type { ForwardRefusals } from './forward-refusals.js';
import { forwardGuestFamily, type ForwardRule } from './forwards.js';

/**
 * A guest's own IPv6 address on the network: of the guest with MAC `mac` (aa:bb:cc:dd:ee:ff),
 * or of any guest when `mac` is undefined; undefined when none is known (the stack's
 * `Ipv6Gateway.guestAddress`).
 */
export type Guest6 = (mac: string | undefined) => Ipv6Addr | undefined;

/**
 * The guest address a forward delivers to now: the rule's address, else the guest of the
 * bound lease whose DHCP host name is the rule's (case-insensitive), else of the first bound
 * lease — its leased IPv4 address, or for a rule on IPv6 (`forwardGuestFamily`) that guest's
 * IPv6 address (`guest6`; with no lease at all, any guest's).
 */
export function forwardGuest(rule: ForwardRule, leases: readonly DhcpLease[], guest6?: Guest6): IpAddr | undefined {
  if (rule.guestAddr !== undefined) return rule.guestAddr;
  const bound = leases.filter((l) => l.state === 'bound');
  const name = rule.guestName?.toLowerCase();
  const lease = name === undefined ? bound[0] : bound.find((l) => l.hostname?.toLowerCase() === name);
  if (forwardGuestFamily(rule) === 4) return lease?.ip;
  if (lease === undefined && name !== undefined) return undefined;
  return guest6?.(lease?.mac);
}

/** What forwards need of the rest of the stack. */
export interface ForwardPortsDeps {
  readonly host: Host;
  allocateId(): FlowId;
  leases(): readonly DhcpLease[];
  /** Guests' IPv6 addresses, for rules on IPv6; undefined without IPv6. */
  readonly guest6?: Guest6 | undefined;
  /** TcpEngine.forward: a connection towards `guest` for `client`; undefined when refused. */
  forwardTcp(client: Endpoint, guest: Endpoint, nowMs: number, local?: Endpoint): FlowId | undefined;
  /** The UDP flow of `client` on bound socket `via`, if one is live: its datagram goes to the guest. */
  udpDeliver(via: FlowId, client: Endpoint, data: Uint8Array, nowMs: number): boolean;
  /** UdpNat.forward: a flow towards `guest` for `client`, its replies sent through `via`; undefined when refused. */
  forwardUdp(client: Endpoint, guest: Endpoint, nowMs: number, via: FlowId, local?: Endpoint): FlowId | undefined;
}

/** A forward as listed (`ForwardPorts.list`). */
export interface ForwardInfo {
  readonly id: FlowId;
  readonly rule: ForwardRule;
  /** The endpoint the socket is bound to; undefined until the host confirmed it. */
  readonly local: Endpoint | undefined;
}

/** A rule held by this network. */
interface Port {
  readonly rule: ForwardRule;
  readonly refusals: ForwardRefusals;
  /** The endpoint actually bound, once the host said so. */
  local: Endpoint | undefined;
}

export class ForwardPorts {
  readonly #deps: ForwardPortsDeps;
  readonly #ports = new Map<FlowId, Port>();

  constructor(deps: ForwardPortsDeps) {
    this.#deps = deps;
  }

  /** Opens the rule's socket; returns its id (for `close`). */
  open(rule: ForwardRule, refusals: ForwardRefusals): FlowId {
    const id = this.#deps.allocateId();
    this.#ports.set(id, { rule, refusals, local: undefined });
    const local: Endpoint = { addr: rule.hostAddr, port: rule.hostPort };
    if (rule.protocol === 'tcp') this.#deps.host.tcpListen(id, local);
    else this.#deps.host.udpBind(id, local);
    return id;
  }

  /** Releases the rule's socket. Unknown ids are ignored. */
  close(id: FlowId): void {
    if (this.#ports.delete(id)) this.#deps.host.close(id);
  }

  closeAll(): void {
    for (const id of [...this.#ports.keys()]) this.close(id);
  }

  owns(id: FlowId): boolean {
    return this.#ports.has(id);
  }

  /** Every forward the network holds, in the order opened: `--hostfwd` rules and port mappings alike. */
  list(): ForwardInfo[] {
    return [...this.#ports].map(([id, p]) => ({ id, rule: p.rule, local: p.local }));
  }

  /** The endpoint the rule's socket is bound to; undefined until the host confirmed it. */
  local(id: FlowId): Endpoint | undefined {
    return this.#ports.get(id)?.local;
  }

  /** tcpListening / udpBound. */
  opened(id: FlowId, local: Endpoint): void {
    const p = this.#ports.get(id);
    if (p !== undefined) p.local = local;
  }

  /**
   * tcpListenError / udpError of a rule's socket: counted. Before it was bound the rule is
   * gone (the host released the socket); after, the socket goes on.
   */
  failed(id: FlowId): void {
    const p = this.#ports.get(id);
    if (p === undefined) return;
    p.refusals.counters.count('hostfwd.socket-error');
    if (p.local === undefined) this.#ports.delete(id);
  }

  /** tcpAccepted: adopt into a new flow towards the rule's guest, or refuse. */
  accepted(listener: FlowId, conn: AcceptId, client: Endpoint, nowMs: number): void {
    const host = this.#deps.host;
    const p = this.#ports.get(listener);
    if (p === undefined) return host.tcpRefuse(conn);
    const guest = forwardGuest(p.rule, this.#deps.leases(), this.#deps.guest6);
    const flow = guest === undefined ? undefined : this.#deps.forwardTcp(client, { addr: guest, port: p.rule.guestPort }, nowMs, p.local);
    if (flow === undefined) {
      p.refusals.refuse(guest === undefined ? 'hostfwd.no-guest-address' : 'hostfwd.refused-by-session', formatEndpoint(client), nowMs);
      return host.tcpRefuse(conn);
    }
    host.tcpAdopt(conn, flow);
  }

  /** udpReceivedFrom: to the client's flow, created on its first datagram. */
  datagram(socket: FlowId, from: Endpoint, data: Uint8Array, nowMs: number): void {
    const p = this.#ports.get(socket);
    if (p === undefined) return;
    if (this.#deps.udpDeliver(socket, from, data, nowMs)) return;
    const guest = forwardGuest(p.rule, this.#deps.leases(), this.#deps.guest6);
    const flow = guest === undefined ? undefined : this.#deps.forwardUdp(from, { addr: guest, port: p.rule.guestPort }, nowMs, socket, p.local);
    if (flow === undefined)
      return p.refusals.refuse(guest === undefined ? 'hostfwd.no-guest-address' : 'hostfwd.refused-by-session', formatEndpoint(from), nowMs);
    this.#deps.udpDeliver(socket, from, data, nowMs);
  }
}
