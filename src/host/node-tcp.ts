/**
 * The TCP half of the Node host: one `node:net` socket per TCP flow, connected by us
 * (`connect`) or accepted by a listener and adopted (`adopt`, see `node-host.ts`).
 *
 * - Sockets are half-open capable (`allowHalfOpen`): the guest's FIN becomes `end()` while
 *   the host side stays readable, and the host's `'end'` becomes a FIN to the guest.
 * - `noDelay`: segments from the guest were already sized by the guest's own Nagle; adding
 *   ours would only delay request/response traffic.
 * - SO_KEEPALIVE after `keepAliveMs` (default 60 s) of idleness, so a host peer that vanished
 *   is noticed (ETIMEDOUT → RST to the guest). There is no keepalive towards the guest. A
 *   connected socket gets it after the guest's SYN-ACK has left (a microtask queued behind
 *   the link's flush): Node's own `keepAlive` option costs four system calls between the
 *   connect and the 'connect' event, on the path of every new connection.
 * - The connect timeout is the engine's (`TcpLimits.connectTimeoutMs`, 20 s by default): it
 *   resets the socket through `reset()`.
 * - `write()` returns the socket's `writableLength`: what Node buffers beyond the kernel,
 *   which the engine subtracts from the guest's window; `'drain'` reopens it. The writes of
 *   one event (one link read: many guest segments) leave together once the event's callback
 *   has returned: the first write to a socket is held, a second one corks the socket, and a
 *   `process.nextTick` writes the held chunks and uncorks the rest — so the segments of one
 *   link read leave in one `writev` instead of one system call each, a lone segment (a
 *   request, a keystroke) leaves in one plain `write` without the cork's bookkeeping, and
 *   both go before the session's end-of-batch microtask (ACKs to the guest, timers): the
 *   host peer gets the bytes as early as the event allows. Held bytes count as buffered in
 *   what `write()` returns. `end()` and `close()` write a held chunk first; `reset()` drops it.
 * - Connected sockets read into one buffer shared by all of them (`onread`), and `tcpData`
 *   hands out a view of it that is valid only during the call: the stack copies it into the
 *   connection's queue. A socket whose last read was large (≥ LEND_AFTER_BYTES: a bulk
 *   transfer) reads next into the region of its connection's send queue that the stack lends
 *   (`readBuffer`, Stack.tcpReadBuffer), so the stack copies nothing; the lent view comes back
 *   in `tcpData` like any read. Node asks `onread.buffer()` for the next buffer right after each
 *   read's callback and without the socket, so the callback leaves its flow in `#lendFor` for
 *   that call; neither may throw (a read would then land in the previous buffer, queued bytes
 *   by now): both catch, the callback destroys the socket, `buffer()` falls back to the shared
 *   buffer, which is always safe. Node's default (a fresh 64 KiB buffer per read) made V8 run a major
 *   GC many times a second at gigabit rates; the shared buffer is 256 KiB (READ_BUFFER_BYTES). A read that fills it
 *   says so (`tcpData`'s `more`): libuv reads that socket again at once. Accepted sockets (`adopt`) keep Node's default;
 *   their chunks are copied the same way.
 * - The event handlers are shared by every socket (Node calls them with the socket as
 *   `this`; a Map gives its flow), so an idle flow holds no closures of its own.
 * - `pause()` stops reading when the guest's window and our queue are full; a read already
 *   in flight may still arrive once (Node delivers it after pause).
 * - With a read budget (`readBudget`, the process's turn budget for reads): once a turn has
 *   read it, each connected socket that reads stops until a later turn, when the budget
 *   resumes a few of them at a time, in the order they stopped; so a turn does not read 100
 *   busy sockets' megabytes into their queues at once.
 * - A host service's stream (`attachStream`: a command's stdio, a program's handler, see
 *   `node-services.ts`) stands where a socket would: the same writes, half-close, pause and
 *   events; it is "connected" in the next microtask, and a reset destroys it.
 * - Errors are reported once with the Node code (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH,
 *   EACCES, ETIMEDOUT, ECONNRESET, EPIPE, …); the socket is forgotten then. After `close()`
 *   or `reset()`, a flow produces no more events.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { formatIpAddr } from '../net/addr.js';
import type { Endpoint, FlowId } from '../net/addr.js';
import { endpointOf } from './node-listeners.js';
import type { HostEvents } from '../net/seams.js';
import type { TurnBudget } from './turn-budget.js';

export type NodeTcpEvents = Pick<HostEvents, 'tcpConnected' | 'tcpData' | 'tcpEnd' | 'tcpDrained' | 'tcpError' | 'tcpClosed'>;

export interface NodeTcpOptions {
  /** SO_KEEPALIVE idle time before the first probe, ms (0: off). */
  readonly keepAliveMs?: number;
  /**
   * Where a socket's next read may land instead of the shared read buffer (Stack.tcpReadBuffer:
   * a region of the flow's send queue, at most `maxBytes`), asked after each large read;
   * undefined: the shared buffer. Absent: every read goes to the shared buffer.
   */
  readonly readBuffer?: (flow: FlowId, maxBytes: number) => Uint8Array | undefined;
  /**
   * The read budget of the event loop's turn (`turn-budget.ts`), shared with the process's
   * other networks: once a turn has read it, a connected socket that reads stops until a
   * later turn. Absent: sockets read whenever they are readable.
   */
  readonly readBudget?: TurnBudget;
}

/**
 * Sockets the read budget stopped that one refill lets read again: each may read up to 32 ×
 * READ_BUFFER_BYTES in its next event (libuv's reads per event), so resuming all at once
 * would read 100 sockets' worth in one turn again.
 */
const RESUMED_PER_REFILL = 8;

/**
 * Bytes one read of a connected socket may deliver. Four times Node's default (64 KiB): a
 * bulk download then reaches the stack in fewer, larger pushes, so at a large MTU more
 * segments leave full (65 KB) and the per-read costs (event, push, flush) are paid a quarter
 * as often (bench/tcp.ts, MTU 65493 host→guest). Larger reads would hold the event loop
 * longer per read; since full reads are batched (`more`), the read size no longer decides
 * how full the segments are.
 */
const READ_BUFFER_BYTES = 256 * 1024;

/**
 * A read at least this large asks the stack for a lent region for the next read (see the
 * header): a bulk transfer's reads are, a request/response flow's are not, so only bulk flows
 * hold a lend (and with it a chunk of their queue) while waiting for their next read.
 */
const LEND_AFTER_BYTES = 64 * 1024;

type FlowSocket = net.Socket | Duplex;

export class NodeTcp {
  /** Every connected socket reads here; `tcpData` consumes the bytes before the next read. */
  readonly #readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  readonly #sockets = new Map<FlowId, FlowSocket>();
  /**
   * The flow of each socket in `#sockets`, the other way round. The event handlers below are
   * shared by every socket (Node calls them with the socket as `this`) and find their flow
   * here: per-socket closures (one per event, plus the context they close over) were a sixth
   * of an idle flow's JS heap (bench/scale.ts).
   */
  readonly #flowOf = new Map<FlowSocket, FlowId>();
  readonly #events: NodeTcpEvents;
  readonly #keepAliveMs: number;
  /** The first chunk written to a socket in this event, not handed to it yet (see `write`). */
  readonly #held = new Map<FlowSocket, Uint8Array>();
  /** Sockets corked in this event: a second chunk came. */
  readonly #corked = new Set<FlowSocket>();
  #flushScheduled = false;
  readonly #readBudget: TurnBudget | undefined;
  /** Sockets the engine paused (Host.tcpPause): the read budget never resumes them. */
  readonly #enginePaused = new Set<FlowSocket>();
  /** Sockets the read budget stopped, in the order they resume. */
  readonly #budgetStopped = new Set<FlowSocket>();
  readonly #lender: ((flow: FlowId, maxBytes: number) => Uint8Array | undefined) | undefined;
  /** The flow whose read's callback just returned, for the `onread.buffer()` call that follows it (see the header). */
  #lendFor: FlowId | undefined;
  /**
   * `onread` of every connected socket: one object, its callback called with the socket as
   * `this` and the buffer the read landed in (the shared one, or a lend of the stack's).
   */
  readonly #onread: net.OnReadOpts = ((tcp: NodeTcp) => ({
    buffer: (): Uint8Array => {
      const flow = tcp.#lendFor;
      tcp.#lendFor = undefined;
      if (flow === undefined || tcp.#lender === undefined) return tcp.#readBuffer;
      try {
        return tcp.#lender(flow, READ_BUFFER_BYTES) ?? tcp.#readBuffer;
      } catch {
        return tcp.#readBuffer;
      }
    },
    callback(this: FlowSocket, n: number, buffer: Uint8Array): boolean {
      tcp.#lendFor = undefined;
      const flow = tcp.#flowOf.get(this);
      if (flow === undefined) return true;
      try {
        tcp.#events.tcpData(flow, buffer.subarray(0, n), n === buffer.length);
        const budget = tcp.#readBudget;
        if (budget !== undefined && (budget.take(n) ? budget.left <= 0 : true) && tcp.#flowOf.has(this)) tcp.#stopForBudget(this);
      } catch (e) {
        // The next buffer is not asked for after a throw: this socket must not read again.
        this.destroy(e instanceof Error ? e : new Error(String(e)));
        return false;
      }
      if (n >= LEND_AFTER_BYTES && tcp.#flowOf.has(this)) tcp.#lendFor = flow;
      return true;
    },
  }))(this);

  constructor(events: NodeTcpEvents, options: NodeTcpOptions = {}) {
    this.#events = events;
    this.#keepAliveMs = options.keepAliveMs ?? 60_000;
    this.#readBudget = options.readBudget;
    this.#lender = options.readBuffer;
  }

  /** This turn has read its budget: the socket stops (its pending reads end) until a refill. */
  #stopForBudget(socket: FlowSocket): void {
    if (!this.#budgetStopped.has(socket) && !this.#enginePaused.has(socket)) socket.pause();
    this.#budgetStopped.add(socket);
    this.#readBudget!.wait(this.#resumeReads);
  }

  /** A refill: the first RESUMED_PER_REFILL stopped sockets read again (unless the engine paused them); the rest wait on. */
  readonly #resumeReads = (): void => {
    let n = 0;
    for (const socket of this.#budgetStopped) {
      if (n++ >= RESUMED_PER_REFILL) break;
      this.#budgetStopped.delete(socket);
      if (!this.#enginePaused.has(socket) && this.#flowOf.has(socket)) socket.resume();
    }
    if (this.#budgetStopped.size > 0) this.#readBudget!.wait(this.#resumeReads);
  };

  /** Open sockets. */
  get size(): number {
    return this.#sockets.size;
  }

  /** Host.tcpConnect. */
  connect(flow: FlowId, to: Endpoint, local?: Endpoint): void {
    const socket = net.connect({
      host: formatIpAddr(to.addr), port: to.port, allowHalfOpen: true, noDelay: true,
      ...(local !== undefined && { localAddress: formatIpAddr(local.addr), localPort: local.port }),
      onread: this.#onread,
    });
    // Reads go to `onread`: no 'data' listener.
    this.#attach(flow, socket, false);
    socket.once('connect', this.#onConnect);
  }

  /**
   * Takes over a socket accepted by a listener (created with `pauseOnConnect`): it stays paused until the engine resumes it once the guest completes its handshake.
   */
  adopt(flow: FlowId, socket: net.Socket): void {
    socket.setNoDelay(true);
    if (this.#keepAliveMs > 0) socket.setKeepAlive(true, this.#keepAliveMs);
    this.#attach(flow, socket, true);
  }

  /**
   * A host service's stream as the flow's socket (Host.tcpConnectService): tcpConnected follows
   * in a microtask unless `connected` is false (a stream into a guest, `LiveNetwork.connect`,
   * whose flow the engine resumes once the guest's handshake completes: it starts paused).
   */
  attachStream(flow: FlowId, stream: Duplex, connected = true): void {
    this.#attach(flow, stream, true);
    if (!connected) {
      stream.pause();
      return;
    }
    queueMicrotask(() => {
      if (this.#sockets.get(flow) === stream) this.#events.tcpConnected(flow);
    });
  }

  #attach(flow: FlowId, socket: FlowSocket, data: boolean): void {
    this.#sockets.set(flow, socket);
    this.#flowOf.set(socket, flow);
    if (data) socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('drain', this.#onDrain);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  /** Forgets a socket: later events of it are ignored. */
  #forget(flow: FlowId, socket: FlowSocket): void {
    this.#sockets.delete(flow);
    this.#flowOf.delete(socket);
    this.#enginePaused.delete(socket);
    this.#budgetStopped.delete(socket);
  }

  // The shared handlers: `socket` is the emitter (EventEmitter calls listeners with it as `this`).
  readonly #onConnect = ((tcp: NodeTcp) =>
    function onConnect(this: net.Socket): void {
      const flow = tcp.#flowOf.get(this);
      if (flow === undefined) return;
      const local = this.localAddress === undefined || this.localPort === undefined ? undefined : endpointOf(this.localAddress, this.localPort);
      tcp.#events.tcpConnected(flow, local);
      if (tcp.#keepAliveMs > 0) queueMicrotask(() => this.setKeepAlive(true, tcp.#keepAliveMs));
    })(this);

  readonly #onData = ((tcp: NodeTcp) =>
    function onData(this: FlowSocket, chunk: Buffer): void {
      const flow = tcp.#flowOf.get(this);
      if (flow !== undefined) tcp.#events.tcpData(flow, chunk);
    })(this);

  readonly #onEnd = ((tcp: NodeTcp) =>
    function onEnd(this: FlowSocket): void {
      const flow = tcp.#flowOf.get(this);
      if (flow !== undefined) tcp.#events.tcpEnd(flow);
    })(this);

  readonly #onDrain = ((tcp: NodeTcp) =>
    function onDrain(this: FlowSocket): void {
      const flow = tcp.#flowOf.get(this);
      if (flow !== undefined) tcp.#events.tcpDrained(flow);
    })(this);

  readonly #onError = ((tcp: NodeTcp) =>
    function onError(this: FlowSocket, err: NodeJS.ErrnoException): void {
      const flow = tcp.#flowOf.get(this);
      if (flow === undefined) return;
      tcp.#forget(flow, this);
      tcp.#events.tcpError(flow, err.code ?? 'EIO');
    })(this);

  readonly #onClose = ((tcp: NodeTcp) =>
    function onClose(this: FlowSocket, hadError: boolean): void {
      const flow = tcp.#flowOf.get(this);
      if (flow === undefined) return;
      tcp.#forget(flow, this);
      // A close without an 'error' event after both FINs is the normal end; a close while
      // the engine still expects the socket (e.g. destroyed under us) reads as a reset.
      if (hadError) tcp.#events.tcpError(flow, 'ECONNRESET');
      else tcp.#events.tcpClosed(flow);
    })(this);

  /**
   * Host.tcpWrite: returns the bytes Node still buffers for the socket, held ones included.
   * `data` is kept until the event's writes leave (the guest frame's bytes are the stack's to
   * keep, see GuestLink).
   */
  write(flow: FlowId, data: Uint8Array): number {
    const socket = this.#sockets.get(flow);
    if (socket === undefined || socket.destroyed || !socket.writable) return 0;
    if (this.#corked.has(socket)) {
      socket.write(data);
      return socket.writableLength;
    }
    const first = this.#held.get(socket);
    if (first === undefined) {
      this.#held.set(socket, data);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(this.#flushWrites);
      }
      return socket.writableLength + data.length;
    }
    this.#held.delete(socket);
    socket.cork();
    this.#corked.add(socket);
    socket.write(first);
    socket.write(data);
    return socket.writableLength;
  }

  /** The event's writes leave: held chunks written, corked sockets uncorked. */
  readonly #flushWrites = (): void => {
    this.#flushScheduled = false;
    for (const [s, data] of this.#held) {
      if (s.destroyed || !s.writable) continue;
      s.write(data);
      // write() reported these bytes as buffered. Node emits 'drain' only after a write past
      // the high-water mark that had to wait; a large lone chunk the kernel took at once gets
      // none, so report it here as Node does for corked writes.
      if (data.length >= s.writableHighWaterMark && s.writableLength === 0) this.#onDrain.call(s);
    }
    this.#held.clear();
    for (const s of this.#corked) if (!s.destroyed) s.uncork();
    this.#corked.clear();
  };

  /** Writes the chunk held for `socket`, if any (before its FIN). */
  #writeHeld(socket: FlowSocket): void {
    const data = this.#held.get(socket);
    if (data === undefined) return;
    this.#held.delete(socket);
    if (!socket.destroyed && socket.writable) socket.write(data);
  }

  /** Host.tcpEnd: FIN to the host peer; reading goes on. */
  end(flow: FlowId): void {
    const socket = this.#sockets.get(flow);
    if (socket === undefined) return;
    this.#writeHeld(socket);
    if (!socket.writableEnded) socket.end();
  }

  /** Host.tcpPause (a socket the read budget stopped stays so until its turn comes). */
  pause(flow: FlowId, paused: boolean): void {
    const socket = this.#sockets.get(flow);
    if (socket === undefined) return;
    if (paused) {
      this.#enginePaused.add(socket);
      socket.pause();
    } else {
      this.#enginePaused.delete(socket);
      if (!this.#budgetStopped.has(socket)) socket.resume();
    }
  }

  /** Host.tcpReset: RST to the host peer, socket released. */
  reset(flow: FlowId): void {
    const socket = this.#sockets.get(flow);
    if (socket === undefined) return;
    this.#forget(flow, socket);
    this.#held.delete(socket);
    this.#corked.delete(socket);
    if (!(socket instanceof net.Socket) || socket.connecting || socket.destroyed) socket.destroy();
    else socket.resetAndDestroy();
  }

  /** Host.close: graceful release (both directions have normally ended by now). */
  close(flow: FlowId): void {
    const socket = this.#sockets.get(flow);
    if (socket === undefined) return;
    this.#forget(flow, socket);
    this.#writeHeld(socket);
    if (socket instanceof net.Socket) socket.destroySoon();
    else {
      // A stream: end our side, and release it once what was written is flushed.
      if (!socket.writableEnded) socket.end();
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    }
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
