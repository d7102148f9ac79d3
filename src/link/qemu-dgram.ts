/**
 * QEMU `-netdev dgram` over UDP: one Ethernet frame per datagram, no header (QEMU
 * net/dgram.c). QEMU sends from its `local` address to our `remote` one; we answer to the
 * datagram's source address.
 *
 *   qemu … -netdev dgram,id=n0,remote.type=inet,remote.host=127.0.0.1,remote.port=5556,\
 *            local.type=inet,local.host=127.0.0.1,local.port=5557
 *
 * Each distinct source address (host and port) is its own session, with its own stack.
 * UDP has no connection, so a session ends when its peer has sent nothing for
 * DGRAM_IDLE_TIMEOUT_MS (5 minutes: a DHCP client renews well within it, and an idle guest
 * still sends ARP and IPv6 neighbour traffic), checked every DGRAM_SWEEP_INTERVAL_MS.
 * At most DGRAM_MAX_SESSIONS (64) peers are served per listener; datagrams from further
 * peers are dropped ('link.dgram-session-limit') until a session expires.
 *
 * Every non-empty datagram is a frame for the stack, runts included (the stack counts
 * them). Backpressure: once the socket's send queue holds more than TX_QUEUE_LIMIT_BYTES,
 * outgoing frames are dropped ('link.tx-overflow'); a frame UDP cannot carry (over 65507
 * bytes, with a large `--mtu`) fails to send and is counted ('link.tx-error').
 *
 * Frames for the guest are built in place (`allocFrame`) in one output buffer per listener
 * (FrameBuffer), not in a fresh allocation per frame. Node's `send` first tries to send at
 * once (uv_udp_try_send): the kernel copies the datagram and nothing keeps a reference to our
 * bytes, so the next frame reuses the same region. Only when the kernel's send buffer is full
 * is the datagram queued in libuv, holding our buffer until it leaves; while anything is
 * queued, frames are carved further along, and a full buffer is abandoned to the queue (the
 * garbage collector frees it once the last queued datagram is sent) for a fresh one. So no
 * queued datagram is ever overwritten, and no send needs a callback. (On loopback the kernel
 * hands a datagram to the receiver at once and never makes us wait, so the queue is seen only
 * toward a peer behind a real interface.)
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { Counters } from '../util/drops.js';
import {
  formatHostPort,
  MAX_FRAME_LEN,
  TX_QUEUE_LIMIT_BYTES,
  type AcceptLink,
  type GuestLink,
  type LinkHandler,
  type LinkLog,
  type Listener,
} from './link.js';

/** A UDP peer with no datagram for this long is forgotten (its session ends). */
export const DGRAM_IDLE_TIMEOUT_MS = 5 * 60_000;
/** How often idle sessions are looked for. */
export const DGRAM_SWEEP_INTERVAL_MS = 10_000;
/** Sessions per dgram listener. */
export const DGRAM_MAX_SESSIONS = 64;
/**
 * The listener socket's kernel buffers, each way. The default (net.core.rmem_default, about
 * 208 KiB) holds three 64 KiB frames: a guest's TCP burst at a large MTU overflowed it while
 * the event loop was busy, and every lost datagram is a retransmission for the guests. The
 * kernel caps the request at net.core.rmem_max / wmem_max.
 */
export const DGRAM_SOCKET_BUFFER_BYTES = 4 << 20;
/**
 * The output buffer's size: four of the largest frames, so that frames queued behind a full
 * kernel buffer do not cost an allocation each.
 */
export const FRAME_BUFFER_BYTES = 256 * 1024;

/**
 * The region frames for the guest are built in, shared by the links of one listener socket
 * (one frame is built and sent at a time: `allocFrame` then `send`). A region is reused only
 * when the socket's send queue is empty, i.e. when no queued datagram can point into it.
 */
export class FrameBuffer {
  #buffer: Uint8Array = new Uint8Array(0);
  /** Start of the free space: bytes below it may belong to queued datagrams. */
  #at = 0;
  readonly #socket: Pick<dgram.Socket, 'getSendQueueCount'>;

  constructor(socket: Pick<dgram.Socket, 'getSendQueueCount'>) {
    this.#socket = socket;
  }

  alloc(length: number, zeroed: boolean): Uint8Array {
    // Nothing queued: every earlier datagram has been copied by the kernel.
    if (this.#at !== 0 && this.#socket.getSendQueueCount() === 0) this.#at = 0;
    if (this.#at + length > this.#buffer.length) {
      // Queued datagrams (if any) keep the old buffer alive until they are sent.
      this.#buffer = new Uint8Array(Math.max(FRAME_BUFFER_BYTES, length));
      this.#at = 0;
    }
    const region = this.#buffer.subarray(this.#at, this.#at + length);
    // Reserved until the next alloc finds the send queue empty.
    this.#at += (length + 7) & ~7;
    if (zeroed) region.fill(0);
    return region;
  }
}

/** The largest UDP payload over IPv4 (65535 − 20 − 8) and over IPv6 without jumbograms (65535 − 8). */
const MAX_UDP4_PAYLOAD = 65507;
const MAX_UDP6_PAYLOAD = 65527;

/**
 * Peers are always IP literals (a datagram's source): dgram's default lookup would still go
 * through dns.lookup and a process.nextTick for every frame sent.
 */
const literalLookup = (family: 4 | 6): NonNullable<dgram.SocketOptions['lookup']> => (address, _options, callback) => {
  callback(null, address, family);
};

export interface DgramListenOptions {
  readonly host: string;
  readonly port: number;
  readonly accept: AcceptLink;
  readonly log: LinkLog;
  readonly idleTimeoutMs?: number;
  readonly sweepIntervalMs?: number;
  readonly maxSessions?: number;
  readonly txQueueLimitBytes?: number;
}

/** One UDP peer. */
class DgramLink implements GuestLink {
  readonly kind = 'dgram' as const;
  readonly peer: string;
  readonly counters = new Counters();
  lastSeenMs: number;
  handler: LinkHandler | undefined;
  readonly #socket: dgram.Socket;
  readonly #address: string;
  readonly #port: number;
  readonly #limit: number;
  readonly #maxDatagram: number;
  readonly #forget: (l: DgramLink) => void;
  readonly #output: FrameBuffer;
  #closed = false;

  constructor(socket: dgram.Socket, output: FrameBuffer, address: string, port: number, limit: number, nowMs: number, forget: (l: DgramLink) => void) {
    this.#socket = socket;
    this.#output = output;
    this.#address = address;
    this.#port = port;
    this.peer = formatHostPort(address, port);
    this.#maxDatagram = net.isIPv6(address) ? MAX_UDP6_PAYLOAD : MAX_UDP4_PAYLOAD;
    this.#limit = limit;
    this.lastSeenMs = nowMs;
    this.#forget = forget;
  }

  /** GuestLink.allocFrame: a region of the listener's output buffer (FrameBuffer). */
  allocFrame(length: number, zeroed = true): Uint8Array {
    return this.#output.alloc(length, zeroed);
  }

  send(frame: Uint8Array): void {
    if (this.#closed) return this.counters.count('link.tx-closed');
    // What UDP cannot carry fails here rather than in the kernel, so sends need no callback.
    if (frame.length > this.#maxDatagram) return this.counters.count('link.tx-error');
    if (this.#socket.getSendQueueSize() + frame.length > this.#limit) return this.counters.count('link.tx-overflow');
    this.#socket.send(frame, this.#port, this.#address);
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#forget(this);
    this.handler?.closed(reason);
  }
}

/** Listens for QEMU `-netdev dgram` peers on a UDP socket. */
export async function listenDgram(o: DgramListenOptions): Promise<Listener> {
  const idleMs = o.idleTimeoutMs ?? DGRAM_IDLE_TIMEOUT_MS;
  const maxSessions = o.maxSessions ?? DGRAM_MAX_SESSIONS;
  const limit = o.txQueueLimitBytes ?? TX_QUEUE_LIMIT_BYTES;
  const v6 = net.isIPv6(o.host);
  const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', recvBufferSize: DGRAM_SOCKET_BUFFER_BYTES, sendBufferSize: DGRAM_SOCKET_BUFFER_BYTES, lookup: literalLookup(v6 ? 6 : 4) });
  const output = new FrameBuffer(socket);
  const links = new Map<string, DgramLink>();
  let refused = 0;
  const forget = (l: DgramLink): void => {
    links.delete(l.peer);
  };
  socket.on('message', (msg, rinfo) => {
    const key = formatHostPort(rinfo.address, rinfo.port);
    const nowMs = performance.now();
    let link = links.get(key);
    if (link === undefined) {
      if (links.size >= maxSessions) {
        if (refused++ % 1000 === 0) o.log.warn({ peer: key, sessions: links.size, refused }, 'dgram: session limit reached, datagram dropped');
        return;
      }
      link = new DgramLink(socket, output, rinfo.address, rinfo.port, limit, nowMs, forget);
      links.set(key, link);
      try {
        link.handler = o.accept(link);
      } catch (e) {
        o.log.warn({ peer: key, err: e }, 'dgram: session refused');
        link.close('refused');
        return;
      }
    }
    link.lastSeenMs = nowMs;
    if (msg.length === 0 || msg.length > MAX_FRAME_LEN) return link.counters.count('link.bad-frame-length');
    link.handler?.frame(msg);
  });
  socket.on('error', (e) => {
    o.log.warn({ err: e }, 'dgram: socket error');
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: o.host, port: o.port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const sweep = setInterval(() => {
    const nowMs = performance.now();
    for (const l of [...links.values()]) if (nowMs - l.lastSeenMs >= idleMs) l.close('idle timeout');
  }, o.sweepIntervalMs ?? DGRAM_SWEEP_INTERVAL_MS);
  sweep.unref();
  const a = socket.address();
  let closing: Promise<void> | undefined;
  return {
    address: { kind: 'dgram', host: a.address, port: a.port },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(sweep);
        for (const l of [...links.values()]) l.close('listener closed');
        socket.close(() => {
          resolve();
        });
      });
      return closing;
    },
  };
}
