/**
 * The UDP half of the Node host, and the listeners of `--hostfwd udp:` rules.
 *
 * A guest-opened flow gets its own `node:dgram` socket, *connected* to the flow's host
 * endpoint, so the kernel delivers only that peer's replies and reports ICMP errors (port
 * unreachable → ECONNREFUSED on the next receive) as socket errors. `connect()` is
 * asynchronous in Node: datagrams sent before it completes wait in a small per-flow queue (at
 * most `MAX_QUEUED_BEFORE_CONNECT`; further ones are dropped, as `send` returns).
 *
 * A forwarded flow shares its listener's socket: one flow per client address and port, the
 * guest's replies sent back to that client.
 */
import dgram from 'node:dgram';
import type { ForwardRule } from '../nat/forwards.js';
import { ForwardRefusals, type ForwardLog } from './forward-refusals.js';
import { formatIpv4Addr, parseIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import { formatIpAddr, isIpv4 } from '../net/addr.js';
import type { Endpoint, FlowId } from '../net/addr.js';
import type { HostEvents } from '../net/seams.js';

const MAX_QUEUED_BEFORE_CONNECT = 64;

interface UdpSocket {
  readonly socket: dgram.Socket;
  /** Datagrams waiting for connect(); undefined once connected. */
  queue: Uint8Array[] | undefined;
}

/** A forwarded flow: the listener's socket, towards one client. */
interface UdpForwarded {
  readonly listener: UdpForwardListener;
  readonly client: Endpoint;
}

export class NodeUdp {
  readonly #sockets = new Map<FlowId, UdpSocket>();
  readonly #forwarded = new Map<FlowId, UdpForwarded>();
  readonly #events: Pick<HostEvents, 'udpReceived' | 'udpError'>;

  constructor(events: Pick<HostEvents, 'udpReceived' | 'udpError'>) {
    this.#events = events;
  }

  /** Flows with a socket of their own. */
  get size(): number {
    return this.#sockets.size;
  }

  /** Takes a forwarded flow: its datagrams go to `client` through the listener's socket. */
  adoptForward(flow: FlowId, listener: UdpForwardListener, client: Endpoint): void {
    this.#forwarded.set(flow, { listener, client });
  }

  /** A datagram a forward listener received for one of our flows. */
  deliver(flow: FlowId, data: Uint8Array): void {
    if (this.#forwarded.has(flow)) this.#events.udpReceived(flow, data);
  }

  has(flow: FlowId): boolean {
    return this.#sockets.has(flow) || this.#forwarded.has(flow);
  }

  open(flow: FlowId, to: Endpoint): void {
    // The socket's family follows the destination's: the seam is address-family neutral.
    const socket = dgram.createSocket({ type: isIpv4(to.addr) ? 'udp4' : 'udp6' });
    const entry: UdpSocket = { socket, queue: [] };
    this.#sockets.set(flow, entry);
    socket.on('message', (msg) => {
      if (this.#sockets.get(flow) === entry) this.#events.udpReceived(flow, msg);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#sockets.get(flow) === entry) this.#events.udpError(flow, err.code ?? 'EIO');
    });
    socket.connect(to.port, formatIpAddr(to.addr), () => {
      const queued = entry.queue ?? [];
      entry.queue = undefined;
      for (const data of queued) this.#sendNow(flow, entry, data);
    });
  }

  /** False when the datagram was dropped (unknown flow, or the pre-connect queue is full). */
  send(flow: FlowId, data: Uint8Array): boolean {
    const entry = this.#sockets.get(flow);
    if (entry === undefined) {
      const fwd = this.#forwarded.get(flow);
      if (fwd === undefined) return false;
      fwd.listener.sendTo(fwd.client, data);
      return true;
    }
    if (entry.queue !== undefined) {
      if (entry.queue.length >= MAX_QUEUED_BEFORE_CONNECT) return false;
      entry.queue.push(data);
      return true;
    }
    this.#sendNow(flow, entry, data);
    return true;
  }

  close(flow: FlowId): boolean {
    const fwd = this.#forwarded.get(flow);
    if (fwd !== undefined) {
      this.#forwarded.delete(flow);
      fwd.listener.forget(fwd.client);
      return true;
    }
    const entry = this.#sockets.get(flow);
    if (entry === undefined) return false;
    this.#sockets.delete(flow);
    entry.socket.close();
    return true;
  }

  closeAll(): void {
    for (const flow of [...this.#sockets.keys(), ...this.#forwarded.keys()]) this.close(flow);
  }

  #sendNow(flow: FlowId, entry: UdpSocket, data: Uint8Array): void {
    entry.socket.send(data, (err) => {
      if (err !== null && this.#sockets.get(flow) === entry) this.#events.udpError(flow, (err as NodeJS.ErrnoException).code ?? 'EIO');
    });
  }
}

/** Where a UDP forward listener hands its clients: the session owning the command-line forwards. */
export interface UdpForwardTarget {
  /** Stack.forwardUdp: a flow towards the guest for a new client; undefined drops the datagram. */
  forwardUdp(client: Endpoint, guest: Endpoint): FlowId | undefined;
  /** The guest address `rule` delivers to now (its address, its lease host name's, or the first lease's); undefined when there is none yet. */
  forwardGuest(rule: ForwardRule): Ipv4Addr | undefined;
  /** The NodeUdp of the session's host, which carries the flows. */
  readonly udp: NodeUdp;
}

/**
 * A UDP socket bound for one `udp:` forward rule. Each client address and port becomes one
 * flow of the attached session (the first session, by the README's rule); the guest's
 * replies on that flow go back to the client. With no session attached, or a refusal (no
 * guest address yet, tuple taken), the datagram is dropped, counted by reason in `refusals`
 * and logged (rate-limited).
 */
export class UdpForwardListener {
  readonly rule: ForwardRule;
  readonly socket: dgram.Socket;
  /** Dropped datagrams by reason (logged, rate-limited), and socket errors. */
  readonly refusals: ForwardRefusals;
  #target: UdpForwardTarget | undefined;
  /** Client `addr:port` → its flow in the attached session; bounded by that session's flow table. */
  readonly #clients = new Map<string, FlowId>();
  #closed = false;

  constructor(rule: ForwardRule, log?: ForwardLog) {
    this.rule = rule;
    this.refusals = new ForwardRefusals(rule, log);
    this.socket = dgram.createSocket('udp4');
    this.socket.on('message', (msg, rinfo) => {
      this.#receive(msg, rinfo);
    });
    // A send to a vanished client must not crash the daemon: counted, nothing else.
    this.socket.on('error', () => this.refusals.counters.count('hostfwd.socket-error'));
  }

  /** Datagrams dropped because no session took them. */
  get refused(): number {
    return this.refusals.total;
  }

  /** Binds; rejects with the Node error (EADDRINUSE, EACCES, …). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        reject(e);
      };
      this.socket.once('error', onError);
      this.socket.bind(this.rule.hostPort, formatIpv4Addr(this.rule.hostAddr), () => {
        this.socket.off('error', onError);
        resolve();
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  get target(): UdpForwardTarget | undefined {
    return this.#target;
  }

  /** Hands future clients to `target`; flows of the previous target are forgotten. */
  attach(target: UdpForwardTarget | undefined): void {
    this.#target = target;
    this.#clients.clear();
  }

  sendTo(client: Endpoint, data: Uint8Array): void {
    if (this.#closed) return; // send() on a closed dgram socket throws
    this.socket.send(data, client.port, formatIpAddr(client.addr));
  }

  /** The client's flow ended (idle, evicted, session over): its next datagram opens a new one. */
  forget(client: Endpoint): void {
    this.#clients.delete(`${client.addr}:${client.port}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closed) {
        resolve();
        return;
      }
      this.#closed = true;
      this.socket.close(() => {
        resolve();
      });
    });
  }

  #receive(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const t = this.#target;
    const addr = parseIpv4Addr(rinfo.address.replace(/^::ffff:/, ''));
    if (t === undefined || addr === undefined) {
      this.refusals.refuse(t === undefined ? 'hostfwd.no-session' : 'hostfwd.client-not-ipv4', `${rinfo.address}:${rinfo.port}`);
      return;
    }
    const client: Endpoint = { addr, port: rinfo.port };
    const key = `${addr}:${rinfo.port}`;
    let flow = this.#clients.get(key);
    if (flow === undefined || !t.udp.has(flow)) {
      const guestAddr = t.forwardGuest(this.rule);
      flow = guestAddr === undefined ? undefined : t.forwardUdp(client, { addr: guestAddr, port: this.rule.guestPort });
      if (flow === undefined) {
        this.refusals.refuse(guestAddr === undefined ? 'hostfwd.no-guest-address' : 'hostfwd.refused-by-session', `${rinfo.address}:${rinfo.port}`);
        return;
      }
      t.udp.adoptForward(flow, this, client);
      this.#clients.set(key, flow);
    }
    t.udp.deliver(flow, msg);
  }
}
