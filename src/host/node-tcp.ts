/**
 * The TCP half of the Node host: one `node:net` socket per TCP flow, and the listeners of
 * `--hostfwd tcp:` rules.
 *
 * - Sockets are half-open capable (`allowHalfOpen`): the guest's FIN becomes `end()` while
 *   the host side stays readable, and the host's `'end'` becomes a FIN to the guest.
 * - `noDelay`: segments from the guest were already sized by the guest's own Nagle; adding
 *   ours would only delay request/response traffic.
 * - SO_KEEPALIVE after `keepAliveMs` (default 60 s) of idleness, so a host peer that vanished
 *   is noticed (ETIMEDOUT → RST to the guest). There is no keepalive towards the guest.
 * - The connect timeout is the engine's (`TcpLimits.connectTimeoutMs`, 20 s by default): it
 *   resets the socket through `reset()`.
 * - `write()` returns the socket's `writableLength`: what Node buffers beyond the kernel,
 *   which the engine subtracts from the guest's window; `'drain'` reopens it. Writes are
 *   corked until the microtasks of the current event run (after the session's batch of one
 *   link read), so the segments of one link read leave in one `writev` instead of one system
 *   call each, without waiting for the next event-loop phase.
 * - Connected sockets read into one buffer shared by all of them (`onread`), and `tcpData`
 *   hands out a view of it that is valid only during the call: the stack copies it into the
 *   connection's queue. Node's default (a fresh 64 KiB buffer per read) made V8 run a major
 *   GC many times a second at gigabit rates. Accepted sockets (`adopt`) keep Node's default;
 *   their chunks are copied the same way.
 * - `pause()` stops reading when the guest's window and our queue are full; a read already
 *   in flight may still arrive once (Node delivers it after pause).
 * - Errors are reported once with the Node code (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH,
 *   EACCES, ETIMEDOUT, ECONNRESET, EPIPE, …); the socket is forgotten then. After `close()`
 *   or `reset()`, a flow produces no more events.
 */
import net from 'node:net';
import type { ForwardRule } from '../nat/forwards.js';
import { ForwardRefusals, type ForwardLog } from './forward-refusals.js';
import { formatIpv4Addr, parseIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import { formatEndpoint, formatIpAddr } from '../net/addr.js';
import type { Endpoint, FlowId } from '../net/addr.js';
import type { HostEvents } from '../net/seams.js';

export type NodeTcpEvents = Pick<HostEvents, 'tcpConnected' | 'tcpData' | 'tcpEnd' | 'tcpDrained' | 'tcpError' | 'tcpClosed'>;

export interface NodeTcpOptions {
  /** SO_KEEPALIVE idle time before the first probe, ms (0: off). */
  readonly keepAliveMs?: number;
}

/** Bytes one read of a connected socket may deliver (Node's default read size). */
const READ_BUFFER_BYTES = 64 * 1024;

export class NodeTcp {
  /** Every connected socket reads here; `tcpData` consumes the bytes before the next read. */
  readonly #readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  readonly #sockets = new Map<FlowId, net.Socket>();
  readonly #events: NodeTcpEvents;
  readonly #keepAliveMs: number;
  /** Sockets corked in this event-loop turn. */
  readonly #corked = new Set<net.Socket>();
  #uncorkScheduled = false;

  constructor(events: NodeTcpEvents, options: NodeTcpOptions = {}) {
    this.#events = events;
    this.#keepAliveMs = options.keepAliveMs ?? 60_000;
  }

  /** Open sockets. */
  get size(): number {
    return this.#sockets.size;
  }

  /** Host.tcpConnect. */
  connect(flow: FlowId, to: Endpoint): void {
    const buffer = this.#readBuffer;
    const socket = net.connect({
      host: formatIpAddr(to.addr), port: to.port, allowHalfOpen: true, noDelay: true,
      ...(this.#keepAliveMs > 0 && { keepAlive: true, keepAliveInitialDelay: this.#keepAliveMs }),
      onread: {
        buffer,
        callback: (n: number): boolean => {
          if (this.#sockets.get(flow) === socket) this.#events.tcpData(flow, buffer.subarray(0, n));
          return true;
        },
      },
    });
    this.#attach(flow, socket);
    socket.once('connect', () => {
      if (this.#sockets.get(flow) === socket) this.#events.tcpConnected(flow);
    });
  }

  /**
   * Takes over a socket accepted by a forward listener (created with `pauseOnConnect`): it
   * stays paused until the engine resumes it once the guest completes its handshake.
   */
  adopt(flow: FlowId, socket: net.Socket): void {
    socket.setNoDelay(true);
    if (this.#keepAliveMs > 0) socket.setKeepAlive(true, this.#keepAliveMs);
    this.#attach(flow, socket);
  }

  #attach(flow: FlowId, socket: net.Socket): void {
    this.#sockets.set(flow, socket);
    const mine = (): boolean => this.#sockets.get(flow) === socket;
    socket.on('data', (chunk: Buffer) => {
      if (mine()) this.#events.tcpData(flow, chunk);
    });
    socket.on('end', () => {
      if (mine()) this.#events.tcpEnd(flow);
    });
    socket.on('drain', () => {
      if (mine()) this.#events.tcpDrained(flow);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!mine()) return;
      this.#sockets.delete(flow);
      this.#events.tcpError(flow, err.code ?? 'EIO');
    });
    socket.on('close', (hadError: boolean) => {
      if (!mine()) return;
      this.#sockets.delete(flow);
      // A close without an 'error' event after both FINs is the normal end; a close while
      // the engine still expects the socket (e.g. destroyed under us) reads as a reset.
      if (hadError) this.#events.tcpError(flow, 'ECONNRESET');
      else this.#events.tcpClosed(flow);
    });
  }

  /** Host.tcpWrite: returns the bytes Node still buffers for the socket. */
  write(flow: FlowId, data: Uint8Array): number {
    const socket = this.#sockets.get(flow);
    if (socket === undefined || socket.destroyed || !socket.writable) return 0;
    if (!this.#corked.has(socket)) {
      socket.cork();
      this.#corked.add(socket);
      if (!this.#uncorkScheduled) {
        this.#uncorkScheduled = true;
        queueMicrotask(() => this.#uncorkAll());
      }
    }
    socket.write(data);
    return socket.writableLength;
  }

  #uncorkAll(): void {
    this.#uncorkScheduled = false;
    for (const s of this.#corked) if (!s.destroyed) s.uncork();
    this.#corked.clear();
  }

  /** Host.tcpEnd: FIN to the host peer; reading goes on. */
  end(flow: FlowId): void {
    const socket = this.#sockets.get(flow);
    if (socket !== undefined && !socket.writableEnded) socket.end();
  }

  /** Host.tcpPause. */
  pause(flow: FlowId, paused: boolean): void {
    const socket = this.#sockets.get(flow);
    if (socket === undefined) return;
    if (paused) socket.pause();
    else socket.resume();
  }

  /** Host.tcpReset: RST to the host peer, socket released. */
  reset(flow: FlowId): void {
    const socket = this.#sockets.get(flow);
    if (socket === undefined) return;
    this.#sockets.delete(flow);
    if (socket.connecting || socket.destroyed) socket.destroy();
    else socket.resetAndDestroy();
  }

  /** Host.close: graceful release (both directions have normally ended by now). */
  close(flow: FlowId): void {
    const socket = this.#sockets.get(flow);
    if (socket === undefined) return;
    this.#sockets.delete(flow);
    socket.destroySoon();
  }

  /** Whether a flow has a socket here. */
  has(flow: FlowId): boolean {
    return this.#sockets.has(flow);
  }

  /** Resets every socket (the session ends). */
  closeAll(): void {
    for (const flow of [...this.#sockets.keys()]) this.reset(flow);
  }
}

/** Where a forward listener hands its clients: the session that owns the command-line forwards. */
export interface TcpForwardTarget {
  /** Stack.forwardTcp: a SYN to the guest; undefined refuses the client. */
  forwardTcp(client: Endpoint, guest: Endpoint): FlowId | undefined;
  /** The guest address `rule` delivers to now (its address, its lease host name's, or the first lease's); undefined when there is none yet. */
  forwardGuest(rule: ForwardRule): Ipv4Addr | undefined;
  /** The NodeTcp of the session's host, which adopts the accepted socket. */
  readonly tcp: NodeTcp;
}

/** The client's IPv4 endpoint (IPv4-mapped IPv6 unwrapped); loopback when unknown. */
export function clientEndpoint(socket: net.Socket): Endpoint {
  const text = (socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  return { addr: parseIpv4Addr(text) ?? 0x7f000001, port: socket.remotePort ?? 0 };
}

/**
 * A listening socket for one `tcp:` forward rule. Accepted clients go to the attached target
 * (the first session, by the README's rule); with no target, or when the target refuses
 * (flow table full, no guest address yet), the client is reset at once, counted by reason
 * in `refusals` and logged (rate-limited).
 */
export class TcpForwardListener {
  readonly rule: ForwardRule;
  readonly server: net.Server;
  /** Refused clients by reason, and listening-socket errors. */
  readonly refusals: ForwardRefusals;
  #target: TcpForwardTarget | undefined;

  constructor(rule: ForwardRule, log?: ForwardLog) {
    this.rule = rule;
    this.refusals = new ForwardRefusals(rule, log);
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.#accept(socket));
  }

  /** Clients refused because no session was attached or it refused them. */
  get refused(): number {
    return this.refusals.total;
  }

  /** Starts listening; rejects with the Node error (EADDRINUSE, EACCES, …). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen(this.rule.hostPort, formatIpv4Addr(this.rule.hostAddr), () => {
        this.server.off('error', onError);
        // Once bound, an accept error (EMFILE, …) is counted; the server keeps listening.
        this.server.on('error', () => this.refusals.counters.count('hostfwd.socket-error'));
        resolve();
      });
    });
  }

  /** The port actually bound (useful with tests that bind port 0 through a rule object). */
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : this.rule.hostPort;
  }

  attach(target: TcpForwardTarget | undefined): void {
    this.#target = target;
  }

  get target(): TcpForwardTarget | undefined {
    return this.#target;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    socket.on('error', () => undefined);   // until adopted: a client reset must not crash the daemon
    const t = this.#target;
    const client = clientEndpoint(socket);
    const guestAddr = t?.forwardGuest(this.rule);
    const flow = t === undefined || guestAddr === undefined ? undefined : t.forwardTcp(client, { addr: guestAddr, port: this.rule.guestPort });
    if (t === undefined || flow === undefined) {
      this.refusals.refuse(t === undefined ? 'hostfwd.no-session' : guestAddr === undefined ? 'hostfwd.no-guest-address' : 'hostfwd.refused-by-session', formatEndpoint(client));
      socket.resetAndDestroy();
      return;
    }
    t.tcp.adopt(flow, socket);
  }
}
