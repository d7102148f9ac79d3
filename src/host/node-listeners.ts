/**
 * Listening and bound sockets on Node: a TCP server (node:net, `pauseOnConnect`) or an
 * unconnected UDP socket (node:dgram), for `Host.tcpListen` / `Host.udpBind`, and the pool of
 * them a daemon binds at start.
 *
 * A `BoundListener` hands what arrives — an accepted client, paused; a datagram and its
 * peer; a socket error once bound — to its current `holder`. Holders change: a `NodeHost`
 * holds the listeners it opened, and borrows pre-bound ones from a `ListenerPool`, giving them
 * back on `close`. The pool exists because the daemon binds every `--hostfwd` port at start,
 * before any network may hold it (a port in use stops start-up), and a rule moves from one
 * network to the next as sessions come and go; while no network holds a listener, the pool
 * resets its TCP clients and drops its datagrams, and says so (`PoolEvents.idle`).
 *
 * Binding never throws: `BoundListener.bind` rejects with the Node error (EADDRINUSE,
 * EACCES, EADDRNOTAVAIL, …), whose `code` the host turns into an error event.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { formatIpAddr, isIpv4, parseIpAddr, type Endpoint } from '../net/addr.js';

const LOOPBACK = 0x7f000001;

/** A peer's endpoint from Node's address text (IPv4-mapped IPv6 unwrapped); loopback when unknown. */
export function endpointOf(address: string | undefined, port: number | undefined): Endpoint {
  return { addr: parseIpAddr((address ?? '127.0.0.1').replace(/^::ffff:/, '')) ?? LOOPBACK, port: port ?? 0 };
}

/** Where a listener's arrivals go. */
export interface ListenerHolder {
  /** TCP: a client, paused (`pauseOnConnect`), no error handler yet. */
  accepted(socket: net.Socket): void;
  /** UDP: a datagram from `from`. */
  datagram(data: Buffer, from: Endpoint): void;
  /** An error of the socket once bound (EMFILE on accept, a send's ICMP error, …); it goes on. */
  failed(code: string): void;
}

const codeOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? 'EIO';

export class BoundListener {
  readonly protocol: 'tcp' | 'udp';
  /** The endpoint asked for (what a pool matches on). */
  readonly requested: Endpoint;
  /** The endpoint actually bound (its port chosen by the kernel when 0 was asked). */
  readonly local: Endpoint;
  holder: ListenerHolder;
  readonly #server: net.Server | undefined;
  readonly #socket: dgram.Socket | undefined;
  #closed = false;

  private constructor(protocol: 'tcp' | 'udp', requested: Endpoint, local: Endpoint, holder: ListenerHolder, server: net.Server | undefined, socket: dgram.Socket | undefined) {
    this.protocol = protocol;
    this.requested = requested;
    this.local = local;
    this.holder = holder;
    this.#server = server;
    this.#socket = socket;
    server?.on('connection', (s: net.Socket) => {
      this.holder.accepted(s);
    });
    server?.on('error', (e) => {
      this.holder.failed(codeOf(e));
    });
    socket?.on('message', (msg, rinfo) => {
      this.holder.datagram(msg, endpointOf(rinfo.address, rinfo.port));
    });
    socket?.on('error', (e) => {
      this.holder.failed(codeOf(e));
    });
  }

  /** Binds `local`; rejects with the Node error (its `code`: EADDRINUSE, EACCES, …). */
  static bind(protocol: 'tcp' | 'udp', local: Endpoint, holder: ListenerHolder): Promise<BoundListener> {
    return new Promise((resolve, reject) => {
      const host = formatIpAddr(local.addr);
      try {
        if (protocol === 'tcp') {
          const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
          server.once('error', reject);
          server.listen(local.port, host, () => {
            server.off('error', reject);
            const a = server.address() as net.AddressInfo;
            resolve(new BoundListener('tcp', local, endpointOf(a.address, a.port), holder, server, undefined));
          });
        } else {
          const socket = dgram.createSocket(isIpv4(local.addr) ? 'udp4' : 'udp6');
          socket.once('error', reject);
          socket.bind(local.port, host, () => {
            socket.off('error', reject);
            const a = socket.address();
            resolve(new BoundListener('udp', local, endpointOf(a.address, a.port), holder, undefined, socket));
          });
        }
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e))); // bad arguments (a port out of range) throw before any event
      }
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** UDP: one datagram to `to`; a failure goes to `onError` with its code. */
  sendTo(to: Endpoint, data: Uint8Array, onError: (code: string) => void): void {
    const socket = this.#socket;
    if (socket === undefined || this.#closed) return;
    if (isIpv4(to.addr) !== isIpv4(this.local.addr)) {
      queueMicrotask(() => {
        onError('EAFNOSUPPORT');
      });
      return;
    }
    socket.send(data, to.port, formatIpAddr(to.addr), (err) => {
      if (err !== null) onError(codeOf(err));
    });
  }

  /**
   * Stops listening; accepted connections are not affected (they belong to flows now). A TCP
   * server's 'close' waits for every connection it ever accepted to end, so this resolves once
   * the listening handle is closed instead, which `server.close()` does at once. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#server !== undefined) {
      this.#server.close();
      return Promise.resolve();
    }
    const socket = this.#socket!;
    return new Promise((resolve) => {
      socket.close(() => { resolve(); });
    });
  }
}

/** What a pool reports about listeners nobody holds. */
export interface PoolEvents {
  /** A client arrived while no host held `listener`: reset (TCP) or dropped (UDP). `client` is its address, for logs. */
  idle(listener: BoundListener, client: Endpoint): void;
  /** The socket of `listener` failed while nobody held it. */
  failed(listener: BoundListener, code: string): void;
}

const sameEndpoint = (a: Endpoint, b: Endpoint): boolean => a.addr === b.addr && a.port === b.port;

/** Listeners bound ahead of use, lent to hosts (NodeHost.borrowListenersFrom) one at a time. */
export class ListenerPool {
  readonly #all: BoundListener[] = [];
  readonly #lent = new Set<BoundListener>();
  readonly #idle: ListenerHolder[] = [];
  readonly #events: PoolEvents;

  constructor(events: PoolEvents) {
    this.#events = events;
  }

  /** Binds one more listener; rejects with the Node error. */
  async bind(protocol: 'tcp' | 'udp', local: Endpoint): Promise<BoundListener> {
    const idle = this.#idleHolder(() => l);
    const l: BoundListener = await BoundListener.bind(protocol, local, idle);
    this.#all.push(l);
    this.#idle.push(idle);
    return l;
  }

  /** Lends the free listener bound for `protocol` and `local` to `holder`; undefined when none. */
  take(protocol: 'tcp' | 'udp', local: Endpoint, holder: ListenerHolder): BoundListener | undefined {
    const l = this.#all.find((x) => x.protocol === protocol && !x.closed && !this.#lent.has(x) && sameEndpoint(x.requested, local));
    if (l === undefined) return undefined;
    this.#lent.add(l);
    l.holder = holder;
    return l;
  }

  /** Takes a lent listener back: its clients are refused again until the next `take`. */
  giveBack(l: BoundListener): void {
    const i = this.#all.indexOf(l);
    if (i < 0 || !this.#lent.delete(l)) return;
    l.holder = this.#idle[i]!;
  }

  /** Closes one listener and forgets it (a forward removed at runtime); a lent one should be given back first. */
  async release(l: BoundListener): Promise<void> {
    const i = this.#all.indexOf(l);
    if (i < 0) return;
    this.#all.splice(i, 1);
    this.#idle.splice(i, 1);
    this.#lent.delete(l);
    await l.close();
  }

  /** Closes every listener, lent or not. */
  async close(): Promise<void> {
    await Promise.all(this.#all.map((l) => l.close()));
  }

  #idleHolder(listener: () => BoundListener): ListenerHolder {
    return {
      accepted: (socket) => {
        socket.on('error', () => undefined); // a client reset must not crash the daemon
        const client = endpointOf(socket.remoteAddress, socket.remotePort);
        if (!socket.destroyed) socket.resetAndDestroy();
        this.#events.idle(listener(), client);
      },
      datagram: (_data, from) => {
        this.#events.idle(listener(), from);
      },
      failed: (code) => {
        this.#events.failed(listener(), code);
      },
    };
  }
}
