/**
 * The Node implementation of `Host`: UDP flows on node:dgram (`node-udp.ts`), TCP flows on
 * node:net (`node-tcp.ts`), listening and bound sockets (`node-listeners.ts`), file reads for
 * the TFTP server (`node-files.ts`), guest forwards' services: commands and a program's
 * handlers (`node-services.ts`). One per
 * network; `closeAll()` releases every socket when the network closes. Events go to the
 * `HostEvents` given at construction (the stack, wrapped by the network's shell so its timer
 * is re-armed after each event).
 *
 * Listeners (`tcpListen`, `udpBind`) answer in a later turn, as the seam requires. Before
 * binding a socket of its own, the host takes a matching free one from the pool it borrows
 * from (`borrowListenersFrom`: the daemon's, which binds every `--hostfwd` port at start) and
 * gives it back on `close`. An accepted client waits, paused, only while `tcpAccepted` runs:
 * adopted (`tcpAdopt`) it becomes a flow's socket in `NodeTcp`, refused (`tcpRefuse`) or
 * unanswered it is reset at once.
 */
import type { Endpoint, FlowId } from '../net/addr.js';
import type { AcceptId, Host, HostEvents } from '../net/seams.js';
import { NodeFiles } from './node-files.js';
import { NodeServices } from './node-services.js';
import { BoundListener, endpointOf, type ListenerHolder, type ListenerPool } from './node-listeners.js';
import { NodeTcp, type NodeTcpOptions } from './node-tcp.js';
import { NodeUdp } from './node-udp.js';
import type net from 'node:net';

/** A listener or bound socket of this host. */
interface Listening {
  readonly protocol: 'tcp' | 'udp';
  /** Undefined while binding. */
  listener: BoundListener | undefined;
  /** Borrowed from the pool: given back, not closed, on release. */
  readonly pool: ListenerPool | undefined;
}

export class NodeHost implements Host {
  readonly udp: NodeUdp;
  readonly tcp: NodeTcp;
  readonly files: NodeFiles;
  /** Guest forwards' host services: commands, and the handlers a program registers (`services.handle`). */
  readonly services = new NodeServices();
  /** Datagrams dropped before their socket connected (its small queue was full), or sent on an unknown socket. */
  udpDropped = 0;
  /** Accepted connections the stack left unanswered during tcpAccepted (reset). */
  unansweredAccepts = 0;
  readonly #events: HostEvents;
  readonly #listening = new Map<FlowId, Listening>();
  /** Accepted connections while their tcpAccepted event runs. */
  readonly #pending = new Map<AcceptId, net.Socket>();
  #nextAccept = 0;
  #pool: ListenerPool | undefined;

  constructor(events: HostEvents, tcpOptions: NodeTcpOptions = {}) {
    this.#events = events;
    this.udp = new NodeUdp(events);
    this.tcp = new NodeTcp(events, tcpOptions);
    this.files = new NodeFiles(events);
  }

  /** Later tcpListen/udpBind calls take a matching free listener of `pool` before binding their own. */
  borrowListenersFrom(pool: ListenerPool): void {
    this.#pool = pool;
  }

  udpOpen(flow: FlowId, to: Endpoint, local?: Endpoint): void {
    this.udp.open(flow, to, local);
  }

  udpSend(flow: FlowId, data: Uint8Array): void {
    if (!this.udp.send(flow, data)) this.udpDropped++;
  }

  tcpConnect(flow: FlowId, to: Endpoint, local?: Endpoint): void {
    this.tcp.connect(flow, to, local);
  }

  tcpConnectService(flow: FlowId, service: string): void {
    const stream = this.services.open(service);
    if (typeof stream === 'string') {
      queueMicrotask(() => this.#events.tcpError(flow, stream));
      return;
    }
    this.tcp.attachStream(flow, stream);
  }

  tcpWrite(flow: FlowId, data: Uint8Array): number {
    return this.tcp.write(flow, data);
  }

  tcpEnd(flow: FlowId): void {
    this.tcp.end(flow);
  }

  tcpPause(flow: FlowId, paused: boolean): void {
    this.tcp.pause(flow, paused);
  }

  tcpReset(flow: FlowId): void {
    this.tcp.reset(flow);
  }

  tcpListen(listener: FlowId, local: Endpoint): void {
    this.#open('tcp', listener, local);
  }

  tcpAdopt(conn: AcceptId, flow: FlowId): void {
    const socket = this.#pending.get(conn);
    if (socket === undefined) return;
    this.#pending.delete(conn);
    this.tcp.adopt(flow, socket);
  }

  tcpRefuse(conn: AcceptId): void {
    const socket = this.#pending.get(conn);
    if (socket === undefined) return;
    this.#pending.delete(conn);
    if (!socket.destroyed) socket.resetAndDestroy();
  }

  udpBind(socket: FlowId, local: Endpoint): void {
    this.#open('udp', socket, local);
  }

  udpSendTo(socket: FlowId, to: Endpoint, data: Uint8Array): void {
    const entry = this.#listening.get(socket);
    if (entry?.listener === undefined || entry.protocol !== 'udp') {
      this.udpDropped++;
      return;
    }
    entry.listener.sendTo(to, data, (code) => {
      if (this.#listening.get(socket) === entry) this.#events.udpError(socket, code);
    });
  }

  fileOpen(file: FlowId, root: string, path: string): void {
    this.files.openFile(file, root, path);
  }

  fileRead(file: FlowId, offset: number, length: number): void {
    this.files.read(file, offset, length);
  }

  close(flow: FlowId): void {
    if (this.files.close(flow)) return;
    if (this.udp.close(flow)) return;
    if (this.#release(flow)) return;
    this.tcp.close(flow);
  }

  /** Listeners and bound sockets held now. */
  get listening(): number {
    return this.#listening.size;
  }

  /** Releases every socket: UDP sockets closed, TCP connections reset, listeners closed or given back. */
  closeAll(): void {
    for (const id of [...this.#listening.keys()]) this.#release(id);
    this.udp.closeAll();
    this.tcp.closeAll();
    this.files.closeAll();
  }

  #open(protocol: 'tcp' | 'udp', id: FlowId, local: Endpoint): void {
    this.#release(id); // an id names one socket: a second open replaces the first
    const lent = this.#pool?.take(protocol, local, this.#holder(protocol, id));
    const entry: Listening = { protocol, listener: lent, pool: lent === undefined ? undefined : this.#pool };
    this.#listening.set(id, entry);
    const mine = (): boolean => this.#listening.get(id) === entry;
    const opened = (l: BoundListener): void => {
      if (protocol === 'tcp') this.#events.tcpListening(id, l.local);
      else this.#events.udpBound(id, l.local);
    };
    if (lent !== undefined) {
      queueMicrotask(() => {
        if (mine()) opened(lent);
      });
      return;
    }
    BoundListener.bind(protocol, local, this.#holder(protocol, id)).then(
      (l) => {
        if (!mine()) {
          void l.close();
          return;
        }
        entry.listener = l;
        opened(l);
      },
      (e: unknown) => {
        if (!mine()) return;
        this.#listening.delete(id);
        const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
        if (protocol === 'tcp') this.#events.tcpListenError(id, code);
        else this.#events.udpError(id, code);
      },
    );
  }

  /** Closes (or gives back) listener `id`; false when it is not one. */
  #release(id: FlowId): boolean {
    const entry = this.#listening.get(id);
    if (entry === undefined) return false;
    this.#listening.delete(id);
    if (entry.listener === undefined) return true; // still binding: closed when the bind ends
    if (entry.pool !== undefined) entry.pool.giveBack(entry.listener);
    else void entry.listener.close();
    return true;
  }

  #holder(protocol: 'tcp' | 'udp', id: FlowId): ListenerHolder {
    return {
      accepted: (socket) => {
        this.#accept(id, socket);
      },
      datagram: (data, from) => {
        if (this.#listening.has(id)) this.#events.udpReceivedFrom(id, from, data);
      },
      failed: (code) => {
        if (!this.#listening.has(id)) return;
        if (protocol === 'tcp') this.#events.tcpListenError(id, code);
        else this.#events.udpError(id, code);
      },
    };
  }

  #accept(listener: FlowId, socket: net.Socket): void {
    socket.on('error', () => undefined); // until adopted: a client reset must not crash the process
    if (!this.#listening.has(listener)) {
      if (!socket.destroyed) socket.resetAndDestroy();
      return;
    }
    const conn = ++this.#nextAccept;
    this.#pending.set(conn, socket);
    this.#events.tcpAccepted(listener, conn, endpointOf(socket.remoteAddress, socket.remotePort));
    if (!this.#pending.has(conn)) return;
    this.unansweredAccepts++;
    this.tcpRefuse(conn);
  }
}
