/**
 * TCP NAT: every guest TCP connection becomes a host socket, every forwarded host
 * connection a connection to the guest. One `TcpConn` (src/tcp/conn.ts) per flow does the
 * TCP; this engine finds flows, applies the address policy, owns the timers and the limits,
 * and carries Host calls and HostEvents between connections and sockets.
 *
 * Theory of operation
 * -------------------
 * - A guest SYN to a new tuple routes through `routeOutbound` (the gateway reaches
 *   127.0.0.1, `--restrict` refuses, DNS over TCP to the DNS address's port 53 goes to the
 *   first upstream resolver, `dnsTcpUpstream()`, …); a refusal is answered with an RST. Otherwise a
 *   TcpConn in 'host-connecting' enters the flow table (protocol 'tcp', entries are the
 *   TcpConn objects themselves) and `Host.tcpConnect` starts the host connection. The
 *   SYN-ACK waits for `tcpConnected`.
 * - Mappings (RFC 5382 REQ-1, `#portKey`): the host connection binds `--outbound`
 *   (`--outbound6`) and, with `eim`/`adm`, the host port of the guest endpoint's live
 *   connections. A peer's SYN to that port is the host kernel's business: it completes a
 *   simultaneous open (TCP hole punching) when our connect is in SYN-SENT, and resets it
 *   otherwise; nothing here listens on a mapping's port (a listener would stop further
 *   connections from it, Node having no SO_REUSEPORT for TCP), so REQ-3 filtering and REQ-4
 *   are not done (README's TCP table).
 * - Segments for an unknown tuple get an RST (RFC 9293 §3.10.7.1), a SYN on a TIME-WAIT
 *   tuple with a higher sequence number replaces the old connection (RFC 6191's rule without
 *   timestamps).
 * - `forward(client, guest)` (`--hostfwd`): a TcpConn in 'syn-sent' whose remote side, as the
 *   guest sees it, is the client's address, or the gateway for loopback clients (libslirp's
 *   `sotranslate_accept`). The host socket stays paused until the guest completes the handshake.
 * - ACK coalescing: connections mark themselves dirty; `flush()` — which the stack calls at
 *   the end of every entry point — lets each dirty connection send its data and at most one
 *   ACK. A batch of frames from the link thus costs one ACK per connection.
 * - Send budget (`ToGuest.sendBudget`, the shell's): a connection sends data only while the
 *   budget of the shell's event-loop turn lasts; one it stops is kept (`sendsDeferred`) and
 *   flushes again when the shell calls `resumeSends` in a later turn, those that sent nothing
 *   before those stopped midway. So one turn never sends a whole window of every busy flow.
 * - Timers: each entry point notes the connections it touched; their earliest timers are
 *   filed in a DeadlineQueue before `nextDeadline()` answers or `advance(nowMs)` runs the
 *   due ones, so neither scans every connection.
 *
 * Limits (the FlowTable's `FlowLimits`): at most `perGuest.tcp` connections per guest
 * address and `tcp` for the network; forwarded connections count against the guest they go
 * to. A SYN (or forwarded client) from a guest at its own limit first evicts that guest's
 * oldest TIME-WAIT connection, else is refused with an RST ('nat.tcp-guest-limit'), so one
 * guest cannot take another's connections; at the network's limit the oldest TIME-WAIT
 * connection of the network goes, else the SYN is refused ('tcp.flow-limit').
 * Buffers: each connection holds at most `sndBufferBytes` of host data (+ one socket read
 * in flight when paused) and lets the host socket buffer at most `rcvBufferBytes` of guest
 * data; all connections together hold at most `totalBufferBytes` (new host reads pause and
 * windows close while it is spent). Out-of-order segments: `oooSegments` per connection.
 *
 * Not done: urgent data (the pointer is ignored, the bytes are delivered in line), keepalive
 * probes towards the guest (an idle established connection lives as long as both ends keep
 * it; the Node side enables SO_KEEPALIVE on host sockets).
 */
import type { Endpoint, FlowId, IpAddr, IpPair } from '../net/addr.js';
import type { Host, ToGuest } from '../net/seams.js';
import { DeadlineQueue } from '../util/deadline-queue.js';
import { IP_PROTO } from '../ipv4/wire.js';
import { pseudoSumIp, UNSPECIFIED6 } from '../ipv6/wire.js';
import { DEFAULT_TCP_LIMITS, TcpConn, type TcpConnIo, type TcpLimits } from '../tcp/conn.js';
import { NO_TCP_OPTIONS, TCP_FLAG, TCP_HEADER_LEN, tcpLength, writeTcp, type Tcp } from '../tcp/wire.js';
import { put16, put32 } from '../util/bytes.js';
import type { Random } from '../util/clock.js';
import { Counters } from '../util/drops.js';
import type { FlowEntry, FlowTable } from './flow-table.js';
import { DEFAULT_NAT, type NatBehaviour } from './behaviour.js';
import { forwardedRemote, routeGuestForward, routeOutbound } from './policy.js';
import { ICMP_TYPE } from '../ipv4/icmp-wire.js';
import { seqAdd } from '../util/seq.js';

/** Engine-wide limits on top of each connection's. */
export interface TcpEngineLimits extends TcpLimits {
  /** Bytes all connections together may hold (queued host data + what host sockets buffer). */
  readonly totalBufferBytes: number;
}

export const DEFAULT_TCP_ENGINE_LIMITS: TcpEngineLimits = { ...DEFAULT_TCP_LIMITS, totalBufferBytes: 64 << 20 };

const EMPTY = new Uint8Array(0);
/** How stale a TCP flow's `lastActiveMs` may be. */
const TOUCH_GRANULARITY_MS = 1000;

export class TcpEngine {
  /** Drops and refusals: the stack's counters. */
  readonly counters: Counters;
  /** TCP events that are not drops (flows opened and closed, retransmissions, resets, …). */
  readonly stats = new Counters<string>();
  readonly #table: FlowTable;
  readonly #host: Host;
  readonly #toGuest: ToGuest;
  readonly #random: Random;
  readonly #limits: TcpEngineLimits;
  /** Connections to flush at the end of this entry. */
  #dirty: TcpConn[] = [];
  /** Connections whose timers may have changed since their deadline was last filed. */
  readonly #touched = new Set<TcpConn>();
  /** Each connection's earliest timer. */
  readonly #deadlines = new DeadlineQueue<TcpConn>();
  /** Connections paused because the shared budget was spent. */
  readonly #budgetPaused = new Set<TcpConn>();
  /**
   * Connections the send budget stopped (ToGuest.sendBudget), in the order they resume:
   * those that had sent nothing in their turn first, then those it stopped midway, so one
   * connection with a large window cannot take every turn's budget.
   */
  readonly #deferredIdle = new Set<TcpConn>();
  readonly #deferredSent = new Set<TcpConn>();
  #held = 0;
  readonly #io: TcpConnIo;

  readonly #nat: NatBehaviour;
  /** Host ports shared by a guest endpoint's connections (RFC 5382 REQ-1), by `#portKey`; removed with their last connection. */
  readonly #ports = new Map<string, { readonly port: number; flows: number }>();

  constructor(table: FlowTable, host: Host, toGuest: ToGuest, random: Random, limits: Partial<TcpEngineLimits> = {}, nat: NatBehaviour = DEFAULT_NAT) {
    this.#nat = nat;
    this.#table = table;
    this.#host = host;
    this.#toGuest = toGuest;
    this.counters = toGuest.counters;
    this.#random = random;
    this.#limits = { ...DEFAULT_TCP_ENGINE_LIMITS, ...limits };
    this.#io = this.#makeIo();
  }

  /** Bytes held by all connections (queued host data + host socket buffers). */
  get heldBytes(): number {
    return this.#held;
  }

  /** The connection of a flow id, if it is a live TCP flow. */
  conn(flow: FlowId): TcpConn | undefined {
    const f = this.#table.get('tcp', flow);
    return f instanceof TcpConn ? f : undefined;
  }

  // ================================================================ guest side

  /** A guest segment `t` (in `p`, IPv4 or IPv6), checksum verified, for any destination the stack routes here. */
  input(p: IpPair, t: Tcp, nowMs: number): void {
    const f = this.#table.byTuple('tcp', p.src, t.srcPort, p.dst, t.dstPort);
    if (f instanceof TcpConn) {
      if ((t.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK | TCP_FLAG.RST)) === TCP_FLAG.SYN && f.acceptsNewSyn(t)) {
        this.stats.count('tcp.time-wait-reused');
        f.abort();
      } else {
        f.input(t, nowMs);
        this.#touch(f, nowMs);
        this.#touched.add(f);
        return;
      }
    }
    if ((t.flags & TCP_FLAG.RST) !== 0) return this.counters.count('tcp.rst-no-flow');
    if ((t.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) !== TCP_FLAG.SYN) {
      this.counters.count('tcp.no-flow');
      return this.#resetFor(p, t);
    }
    const server = { addr: p.dst, port: t.dstPort };
    const route = routeGuestForward(this.#toGuest.config, server) ?? routeOutbound(this.#toGuest.config, server, this.#toGuest.dnsTcpUpstream());
    if ('refused' in route) {
      this.counters.count(route.refused);
      if (route.egress !== undefined)
        this.#toGuest.egressRefused?.({ protocol: 'tcp', guest: { addr: p.src, port: t.srcPort }, remote: server, to: route.egress.to, drop: route.refused, rule: route.egress.rule });
      return this.#resetFor(p, t);
    }
    // Past the network's new-flow rate: dropped unanswered, the guest's TCP sends the SYN again (flow-table.ts).
    if (!this.#table.admitNew(nowMs)) return this.counters.count('nat.new-flow-rate');
    if ('service' in route) return this.#toService(p, t, route.service, nowMs);
    const c = this.#openFromGuest(p, t, route.to, nowMs);
    if (c === undefined) return;
    // The connection's share of a host port lives in its own fields (hostPortAsked,
    // portShare; the key is recomputed from its endpoints), not in an object per flow.
    const key = this.#portKey(c.guest, route.to);
    const shared = key === undefined ? undefined : this.#ports.get(key);
    const asked = shared?.port ?? (this.#nat.portPreservation ? c.guest.port : 0);
    c.hostPortAsked = asked;
    c.portShare = key === undefined ? 'none' : 'asked';
    this.#connect(c.id, route.to, asked);
  }

  /**
   * The flow a guest's SYN opens, its host endpoint `to`, the SYN accepted; undefined (the guest
   * reset, the cause counted) when the guest's or the network's flows are full.
   */
  #openFromGuest(p: IpPair, t: Tcp, to: Endpoint, nowMs: number): TcpConn | undefined {
    if (!this.#makeRoom(p.src)) {
      this.#resetFor(p, t);
      return undefined;
    }
    const c = this.#newConn('guest', { addr: p.src, port: t.srcPort }, { addr: p.dst, port: t.dstPort }, to, nowMs);
    if (!this.#table.add(c)) {
      this.counters.count('tcp.flow-add-failed');
      this.#resetFor(p, t);
      return undefined;
    }
    c.acceptSyn(t, nowMs);
    this.#touched.add(c);
    this.stats.count('tcp.flow-opened');
    return c;
  }

  /**
   * A guest SYN to a guest forward served by a host service (a command, a program's handler):
   * the flow's host side is `Host.tcpConnectService`, answered like a connect. The flow lists
   * the server as its host endpoint; no host port is taken or shared.
   */
  #toService(p: IpPair, t: Tcp, service: string, nowMs: number): void {
    if (this.#host.tcpConnectService === undefined) {
      this.counters.count('nat.no-service-host');
      return this.#resetFor(p, t);
    }
    const c = this.#openFromGuest(p, t, { addr: p.dst, port: t.dstPort }, nowMs);
    if (c === undefined) return;
    this.#host.tcpConnectService(c.id, service);
  }

  /**
   * Which connections share a host port (RFC 5382 §4.1, REQ-1): all of one guest endpoint's
   * with endpoint-independent mapping, those to one address with address-dependent mapping;
   * none with address-and-port-dependent mapping (each connection its own port).
   */
  #portKey(guest: Endpoint, to: Endpoint): string | undefined {
    switch (this.#nat.mapping) {
      case 'eim':
        return `${guest.addr}:${guest.port}`;
      case 'adm':
        return `${guest.addr}:${guest.port}>${to.addr}`;
      case 'apdm':
        return undefined;
    }
  }

  /** Host.tcpConnect from `--outbound` (`--outbound6` to an IPv6 destination; else any address) and `port` (0: any). */
  #connect(id: FlowId, to: Endpoint, port: number): void {
    const outbound = typeof to.addr === 'number' ? this.#toGuest.config.outbound : this.#toGuest.config.outbound6;
    if (outbound === undefined && port === 0) this.#host.tcpConnect(id, to);
    else this.#host.tcpConnect(id, to, { addr: outbound ?? (typeof to.addr === 'number' ? 0 : UNSPECIFIED6), port });
  }

  /**
   * A host client accepted on a forward: a connection to `guest`, whose remote side is the
   * client (the gateway for loopback clients); it counts against `to`'s guest. Undefined
   * when that guest or the network is at its limit, when the tuple is taken, or when the
   * client cannot appear on the guest's family ('tcp.forward-family', `forwardedRemote`);
   * the caller then drops the client. `local`: the listener's endpoint, the flow's public side.
   */
  forward(client: Endpoint, to: Endpoint, nowMs: number, local?: Endpoint): FlowId | undefined {
    const guest = to;
    const remote = forwardedRemote(this.#toGuest.config, client, typeof guest.addr === 'number' ? 4 : 6);
    if (remote === undefined) {
      this.counters.count('tcp.forward-family');
      return undefined;
    }
    if (!this.#makeRoom(guest.addr)) return undefined;
    const c = this.#newConn('forward', guest, remote, client, nowMs);
    if (!this.#table.add(c)) {
      this.counters.count('tcp.forward-tuple-taken');
      return undefined;
    }
    this.stats.count('tcp.forward-opened');
    c.local = local;
    c.startForward(nowMs);
    this.#touched.add(c);
    return c.id;
  }

  #newConn(origin: 'guest' | 'forward', guest: Endpoint, remote: Endpoint, host: Endpoint, nowMs: number): TcpConn {
    return new TcpConn({
      id: this.#table.allocateId(), origin, guest, remote, host, nowMs,
      iss: this.#random.u32(), tsOffset: this.#random.u32(),
      mtu: this.#toGuest.config.mtu, limits: this.#limits, io: this.#io,
    });
  }

  /**
   * Room for a new connection of guest `guestAddr`: true when its guest and the network are
   * under their limits, or a TIME-WAIT connection of the limit's scope (the guest's, or the
   * network's) was evicted; false, counted under the limit hit, when the SYN is refused.
   */
  #makeRoom(guestAddr: IpAddr): boolean {
    // One eviction at a limit; more only after a reload lowered it below the connections open
    // (the table's size bounds the loop): TIME-WAIT ones go first, live ones are never cut.
    for (let n = this.#table.count('tcp'); n >= 0; n--) {
      const hit = this.#table.limitHit('tcp', guestAddr);
      if (hit === undefined) return true;
      if (!this.#evictTimeWait(hit === 'guest' ? guestAddr : undefined)) {
        this.counters.count(hit === 'guest' ? 'nat.tcp-guest-limit' : 'tcp.flow-limit');
        return false;
      }
    }
    return false;
  }

  /** Aborts the oldest TIME-WAIT connection of guest `guestAddr`, or of the network without it. */
  #evictTimeWait(guestAddr: IpAddr | undefined): boolean {
    for (const f of this.#table.flows('tcp', guestAddr)) {
      if (f instanceof TcpConn && f.state === 'time-wait') {
        this.stats.count('tcp.time-wait-evicted');
        f.abort();
        return true;
      }
    }
    return false;
  }

  /** Activity for the flow listing; to within a second, so bulk transfers do not reorder the table per segment. */
  #touch(c: TcpConn, nowMs: number): void {
    if (c.state !== 'closed' && nowMs - c.lastActiveMs >= TOUCH_GRANULARITY_MS) this.#table.touch(c, nowMs);
  }

  /** RST for a segment without a connection (RFC 9293 §3.10.7.1). */
  #resetFor(p: IpPair, t: Tcp): void {
    const syn = (t.flags & TCP_FLAG.SYN) !== 0 ? 1 : 0;
    const fin = (t.flags & TCP_FLAG.FIN) !== 0 ? 1 : 0;
    const hasAck = (t.flags & TCP_FLAG.ACK) !== 0;
    const rst: Tcp = {
      srcPort: t.dstPort,
      dstPort: t.srcPort,
      seq: hasAck ? t.ack : 0,
      ack: hasAck ? 0 : seqAdd(t.seq, t.payload.length + syn + fin),
      flags: hasAck ? TCP_FLAG.RST : TCP_FLAG.RST | TCP_FLAG.ACK,
      window: 0,
      urgent: 0,
      options: NO_TCP_OPTIONS,
      payload: EMPTY,
    };
    const pseudo = pseudoSumIp(p.dst, p.src, IP_PROTO.TCP);
    this.#toGuest.sendIp(p.dst, p.src, IP_PROTO.TCP, tcpLength(rst), (into, at) => writeTcp(rst, pseudo, into, at), true);
  }

  // ================================================================ host events

  onHostConnected(flow: FlowId, nowMs: number, local?: Endpoint): void {
    const c = this.#known(flow);
    if (c === undefined) return;
    const key = c.portShare === 'asked' && local !== undefined ? this.#portKey(c.guest, c.host) : undefined;
    if (key !== undefined && local !== undefined) {
      const shared = this.#ports.get(key);
      if (shared === undefined) this.#ports.set(key, { port: local.port, flows: 1 });
      else if (shared.port === local.port) shared.flows++;
      c.portShare = shared === undefined || shared.port === local.port ? 'counted' : 'none';
    }
    if (local !== undefined) c.local = local;
    c.hostConnected(nowMs);
    this.#touched.add(c);
    this.#io.markDirty(c);
  }

  /** HostEvents' read buffers: where `flow`'s next host read may land (TcpConn.hostReadBuffer); not counted when the flow is gone. */
  hostReadBuffer(flow: FlowId, maxBytes: number): Uint8Array | undefined {
    return this.conn(flow)?.hostReadBuffer(maxBytes);
  }

  onHostData(flow: FlowId, data: Uint8Array, nowMs: number): void {
    const c = this.#known(flow);
    if (c === undefined) return;
    c.hostData(data, nowMs);
    this.#touch(c, nowMs);
    this.#touched.add(c);
  }

  onHostEnd(flow: FlowId, nowMs: number): void {
    const c = this.#known(flow);
    if (c === undefined) return;
    c.hostEnd(nowMs);
    this.#touched.add(c);
  }

  onHostDrained(flow: FlowId, nowMs: number): void {
    const c = this.#known(flow);
    if (c === undefined) return;
    c.hostDrained(nowMs);
    this.#touched.add(c);
  }

  onHostError(flow: FlowId, code: string, nowMs: number): void {
    const c = this.#known(flow);
    if (c === undefined) return;
    // The port asked for (shared or the guest's own) cannot be had for this destination: any port.
    if (c.state === 'host-connecting' && c.hostPortAsked !== 0 && (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL')) {
      this.counters.count('nat.tcp-port-not-kept');
      c.hostPortAsked = 0;
      this.#connect(flow, c.host, 0);
      return;
    }
    c.hostError(code, nowMs);
    this.#touched.add(c);
  }

  /** The socket closed after both directions ended; the connection finishes on its own. */
  onHostClosed(flow: FlowId): void {
    if (this.conn(flow) === undefined) this.counters.count('tcp.closed-unknown-flow');
  }

  /** A connection is gone: its share of a host port with it. */
  #release(c: TcpConn): void {
    if (c.portShare !== 'counted') return;
    c.portShare = 'none';
    const key = this.#portKey(c.guest, c.host);
    const shared = key === undefined ? undefined : this.#ports.get(key);
    if (key !== undefined && shared !== undefined && --shared.flows <= 0) this.#ports.delete(key);
  }

  #known(flow: FlowId): TcpConn | undefined {
    const c = this.conn(flow);
    if (c === undefined) this.counters.count('tcp.unknown-flow');
    return c;
  }

  // ================================================================ output, timers

  /** Sends what every connection touched by this entry owes the guest (one ACK at most each). */
  flush(nowMs: number): void {
    if (this.#budgetPaused.size > 0 && this.#budgetFree() > 0) {
      for (const c of this.#budgetPaused) {
        c.budgetAvailable();
        this.#touched.add(c);
        if (!c.budgetPaused) this.#budgetPaused.delete(c);
      }
    }
    if (this.#dirty.length === 0) return;
    const list = this.#dirty;
    this.#dirty = [];
    for (const c of list) {
      c.flush(nowMs);
      this.#touched.add(c);
    }
  }

  /** Whether connections wait for the send budget (`resumeSends`). */
  get sendsDeferred(): boolean {
    return this.#deferredIdle.size + this.#deferredSent.size > 0;
  }

  /**
   * The shell has budget again: the connections it stopped flush at the end of this entry,
   * in their order, as far as the budget goes (the rest wait again).
   */
  resumeSends(): void {
    const order = [...this.#deferredIdle, ...this.#deferredSent];
    this.#deferredIdle.clear();
    this.#deferredSent.clear();
    for (const c of order) if (c.state !== 'closed') this.#io.markDirty(c);
  }

  advance(nowMs: number): void {
    this.#fileDeadlines();
    for (const c of this.#deadlines.takeDue(nowMs)) {
      if (c.state === 'closed') continue;
      c.onTimer(nowMs);
      this.#touched.add(c);
    }
  }

  nextDeadline(): number | undefined {
    this.#fileDeadlines();
    return this.#deadlines.next();
  }

  /** Files the current earliest timer of every touched connection. */
  #fileDeadlines(): void {
    for (const c of this.#touched) this.#deadlines.set(c, c.state === 'closed' ? undefined : c.nextDeadline());
    this.#touched.clear();
  }

  /** Resets every connection (the session ends). */
  closeAll(): void {
    for (const f of [...this.#table.all()]) if (f instanceof TcpConn) f.abort();
    this.#dirty = [];
    this.#deferredIdle.clear();
    this.#deferredSent.clear();
  }

  // ================================================================ TcpConnIo

  /** What connections see of the world; a private object so the engine's own API stays small. */
  #makeIo(): TcpConnIo {
    const host = this.#host;
    const toGuest = this.#toGuest;
    const budget = toGuest.sendBudget;
    return {
      counters: this.counters,
      stats: this.stats,
      sendSegment: (c, l4Length, write) =>
        typeof c.guest.addr === 'number'
          ? toGuest.sendIpv4(c.remote.addr as number, c.guest.addr, IP_PROTO.TCP, l4Length, write, true)
          : toGuest.sendIp(c.remote.addr, c.guest.addr, IP_PROTO.TCP, l4Length, write, true),
      icmpUnreachable: (c, code) => this.#icmpUnreachable(c, code),
      hostWrite: (c, data) => host.tcpWrite(c.id, data),
      hostEnd: (c) => host.tcpEnd(c.id),
      hostPause: (c, paused) => {
        if (c.budgetPaused) this.#budgetPaused.add(c);
        host.tcpPause(c.id, paused);
      },
      hostReset: (c) => host.tcpReset(c.id),
      hostClose: (c) => host.close(c.id),
      finished: (c) => {
        this.#table.remove(c.id);
        this.#release(c);
        this.#touched.delete(c);
        this.#deadlines.set(c, undefined);
        this.#budgetPaused.delete(c);
        this.#deferredIdle.delete(c);
        this.#deferredSent.delete(c);
        this.stats.count('tcp.flow-closed');
      },
      markDirty: (c) => {
        if (c.dirty) return;
        c.dirty = true;
        this.#dirty.push(c);
      },
      sendAllowed: budget === undefined ? () => true : (bytes) => budget.take(bytes),
      sendDeferred: (c, progressed) => {
        if (progressed) {
          this.#deferredIdle.delete(c);
          this.#deferredSent.delete(c);
          this.#deferredSent.add(c);
        } else if (!this.#deferredSent.has(c)) this.#deferredIdle.add(c);
      },
      budgetFree: () => this.#budgetFree(),
      account: (delta) => {
        this.#held += delta;
      },
    };
  }

  #budgetFree(): number {
    return this.#limits.totalBufferBytes - this.#held;
  }

  /**
   * ICMP unreachable about the guest's SYN, from the flow's tuple: the quoted TCP header is
   * rebuilt (ports, the SYN's sequence number, data offset, SYN; no checksum), the stack adds
   * the IP header. The sequence number matters: Linux ignores an error whose quoted sequence
   * number is not one it has in flight (tcp_v4_err/tcp_v6_err), and the guest would wait out
   * its SYN retries instead of failing at once.
   */
  #icmpUnreachable(c: TcpConn, code: number): void {
    const syn = new Uint8Array(TCP_HEADER_LEN);
    put16(syn, 0, c.guest.port);
    put16(syn, 2, c.remote.port);
    put32(syn, 4, c.guestIss);
    syn[12] = (TCP_HEADER_LEN >>> 2) << 4;
    syn[13] = TCP_FLAG.SYN;
    this.#toGuest.flowIcmpError(c.guest, c.remote, IP_PROTO.TCP, syn, ICMP_TYPE.DEST_UNREACHABLE, code);
  }
}

/** Whether a flow-table entry is a TCP connection. */
export const isTcpFlow = (f: FlowEntry | undefined): f is TcpConn & FlowEntry => f instanceof TcpConn;

