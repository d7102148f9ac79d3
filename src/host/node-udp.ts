/**
 * The UDP half of the Node host: the connected socket of each guest flow (Host.udpOpen).
 *
 * A guest-opened flow gets its own `node:dgram` socket, bound first to the local endpoint the
 * stack asks for (`--outbound`, a preserved port) and *connected* to the flow's host endpoint, so the kernel delivers only that peer's replies and reports ICMP errors (port
 * unreachable → ECONNREFUSED on the next receive) as socket errors. `connect()` is
 * asynchronous in Node: datagrams sent before it completes wait in a small per-flow queue (at
 * most `MAX_QUEUED_BEFORE_CONNECT`; further ones are dropped, as `send` returns).
 *
 * A forwarded flow has no socket here: it rides its forward's bound socket (Host.udpBind,
 * `node-listeners.ts`), which sends to any peer.
 */
import dgram from 'node:dgram';
import { formatIpAddr, isIpv4 } from '../net/addr.js';
import type { Endpoint, FlowId } from '../net/addr.js';
import type { HostEvents } from '../net/seams.js';

const MAX_QUEUED_BEFORE_CONNECT = 64;

interface UdpSocket {
  readonly socket: dgram.Socket;
  /** Datagrams waiting for connect(); undefined once connected. */
  queue: Uint8Array[] | undefined;
}

export class NodeUdp {
  readonly #sockets = new Map<FlowId, UdpSocket>();
  readonly #events: Pick<HostEvents, 'udpReceived' | 'udpError'>;

  constructor(events: Pick<HostEvents, 'udpReceived' | 'udpError'>) {
    this.#events = events;
  }

  /** Flows with a socket of their own. */
  get size(): number {
    return this.#sockets.size;
  }

  has(flow: FlowId): boolean {
    return this.#sockets.has(flow);
  }

  /** Host.udpOpen: a socket connected to `to`, bound to `local` first when given. */
  open(flow: FlowId, to: Endpoint, local?: Endpoint): void {
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
    const connect = (): void => {
      socket.connect(to.port, formatIpAddr(to.addr), () => {
        const queued = entry.queue ?? [];
        entry.queue = undefined;
        for (const data of queued) this.#sendNow(flow, entry, data);
      });
    };
    // A failed bind comes as the socket's 'error' event (EADDRINUSE …), the callback never runs.
    if (local === undefined) connect();
    else socket.bind({ address: formatIpAddr(local.addr), port: local.port, exclusive: true }, connect);
  }

  /** False when the datagram was dropped (unknown flow, or the pre-connect queue is full). */
  send(flow: FlowId, data: Uint8Array): boolean {
    const entry = this.#sockets.get(flow);
    if (entry === undefined) return false;
    if (entry.queue !== undefined) {
      if (entry.queue.length >= MAX_QUEUED_BEFORE_CONNECT) return false;
      entry.queue.push(data);
      return true;
    }
    this.#sendNow(flow, entry, data);
    return true;
  }

  close(flow: FlowId): boolean {
    const entry = this.#sockets.get(flow);
    if (entry === undefined) return false;
    this.#sockets.delete(flow);
    entry.socket.close();
    return true;
  }

  closeAll(): void {
    for (const flow of [...this.#sockets.keys()]) this.close(flow);
  }

  #sendNow(flow: FlowId, entry: UdpSocket, data: Uint8Array): void {
    entry.socket.send(data, (err) => {
      if (err !== null && this.#sockets.get(flow) === entry) this.#events.udpError(flow, (err as NodeJS.ErrnoException).code ?? 'EIO');
    });
  }
}
