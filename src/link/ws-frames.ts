/**
 * Raw Ethernet frames over WebSocket: one frame per binary message, no FCS, both
 * directions. This is v86's relay protocol (`net_device: { relay_url: 'ws://host:port/' }`,
 * see reference/v86.md §4.2); v86 opens the socket at the guest's first frame.
 *
 * Messages of any length up to MAX_FRAME_LEN reach the stack, runts below 60 bytes included
 * (v86's virtio-net does not pad: an ARP request arrives as 42 bytes); the stack counts what
 * it cannot use. A larger message closes the socket with 1009 (ws's maxPayload). A text
 * message is a protocol error: the socket is closed with 1003 (unsupported data, RFC 6455
 * §7.4.1). Once the socket buffers more than TX_QUEUE_LIMIT_BYTES unsent, outgoing frames
 * are dropped ('link.tx-overflow'). Frames towards the guest are written as WebSocket frames
 * by this link itself, batched per tick in a reused buffer (see WsFrameLink); frames from the
 * guest are read by its own reader (ws-deframer.ts), ws reading only the rest (control
 * frames, text, anything malformed), so the link costs about what the stream link does.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { put16, put32 } from '../util/bytes.js';
import { Counters } from '../util/drops.js';
import { StreamOutput, type FrameHeader } from './stream-output.js';
import { takeOver } from './ws-deframer.js';
import { MAX_FRAME_LEN, TX_QUEUE_LIMIT_BYTES, type AcceptLink, type GuestLink, type LinkHandler, type LinkKind, type LinkLog } from './link.js';
import { clientPeer, requestedNetwork, type WsRoute } from './ws-server.js';

/** RFC 6455 §7.4.1 close codes used here. */
export const WS_CLOSE = { NORMAL: 1000, GOING_AWAY: 1001, UNSUPPORTED_DATA: 1003, TOO_BIG: 1009 } as const;

/** The reason sent with 1003 when a text message arrives. */
export const TEXT_REFUSED_REASON = 'text messages are not supported: send one Ethernet frame per binary message';

/** How often an open WebSocket is pinged; a peer that misses two pongs is cut off ('no pong'). */
export const WS_PING_INTERVAL_MS = 30_000;
/** The default of `--ws-idle-timeout`: a session whose peer sent no message for an hour ends. */
export const DEFAULT_WS_IDLE_TIMEOUT_MS = 3_600_000;

/** Liveness of WebSocket sessions: dead peers and idle sessions end. */
export interface WsLiveness {
  /** A session whose peer sent no message for this long is closed ('idle timeout'); 0: never. */
  readonly idleTimeoutMs: number;
  readonly pingIntervalMs?: number;
}

/** What the WebSocket links share: identity, counters, liveness, and ending exactly once. */
export abstract class WsGuestLink implements GuestLink {
  abstract readonly kind: LinkKind;
  readonly peer: string;
  /** The URL's `?network=` (set when accepted). */
  network: string | undefined;
  readonly counters = new Counters();
  protected readonly ws: WebSocket;
  protected handler: LinkHandler | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  /** A message arrived since the liveness timer last looked. */
  #heard = false;

  constructor(ws: WebSocket, peer: string) {
    this.ws = ws;
    this.peer = peer;
  }

  /**
   * Pings the peer every `pingIntervalMs` and cuts it off after two pings without a pong (a
   * peer that vanished without a FIN: a laptop closed, a NAT that forgot the connection), and
   * closes a session whose peer sent no message for `idleTimeoutMs`.
   */
  watch(o: WsLiveness): void {
    const interval = o.pingIntervalMs ?? WS_PING_INTERVAL_MS;
    let lastMessage = performance.now();
    let unanswered = 0;
    this.ws.on('message', this.heard);
    this.ws.on('pong', () => {
      unanswered = 0;
    });
    this.#timer = setInterval(() => {
      if (this.#closed) return;
      const now = performance.now();
      if (this.#heard) {
        this.#heard = false;
        lastMessage = now;
      }
      if (o.idleTimeoutMs > 0 && now - lastMessage >= o.idleTimeoutMs) {
        this.counters.count('link.ws-idle-timeout');
        this.close('idle timeout');
        return;
      }
      if (unanswered >= 2) {
        this.counters.count('link.ws-no-pong');
        this.ws.terminate();
        this.finish('no pong (peer gone)');
        return;
      }
      unanswered++;
      this.ws.ping();
    }, Math.min(interval, o.idleTimeoutMs > 0 ? o.idleTimeoutMs : interval));
    this.#timer.unref();
  }

  /**
   * Marks the peer as heard from. A flag the liveness timer reads and clears, not a clock
   * read per message: the timer's period is the resolution the idle timeout needs.
   */
  protected readonly heard = (): void => {
    this.#heard = true;
  };

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts moving frames between the socket and `handler`. */
  abstract attach(handler: LinkHandler, log: LinkLog): void;

  abstract send(frame: Uint8Array): void;

  close(reason: string): void {
    if (this.#closed) return;
    this.ws.close(WS_CLOSE.NORMAL, reason.slice(0, 120));
    this.finish(reason);
  }

  /** The link is over: tells the handler, once. */
  protected finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.handler?.closed(reason);
  }
}

/**
 * The header of a server's binary message in one frame (RFC 6455 §5.2): FIN and opcode 2,
 * no mask (a server never masks), the payload length in 7 bits, or 126 and 16 bits, or 127
 * and 64 bits (a frame of the largest MTU needs the last: 65538 bytes).
 */
export const WS_BINARY_HEADER: FrameHeader = {
  length: (n) => (n < 126 ? 2 : n < 0x10000 ? 4 : 10),
  write: (into, at, n) => {
    into[at] = 0x82;
    if (n < 126) into[at + 1] = n;
    else if (n < 0x10000) {
      into[at + 1] = 126;
      put16(into, at + 2, n);
    } else {
      into[at + 1] = 127;
      put32(into, at + 2, Math.floor(n / 0x100000000));
      put32(into, at + 6, n >>> 0);
    }
  },
};

/**
 * Frames towards the guest do not go through ws's `send` (an options object, a header
 * buffer, a list and two socket writes per frame): they are written as WebSocket frames
 * straight into a reused output buffer (`StreamOutput` with WS_BINARY_HEADER, where the stack
 * can build them in place through `allocFrame`), and the frames of one tick leave in one
 * write to the connection, as on the stream link. ws still writes its own control frames
 * (pong, close) to the same socket; each write holds whole frames, so they interleave at
 * frame boundaries, and queued frames are written before a close.
 */
class WsFrameLink extends WsGuestLink {
  readonly kind = 'ws' as const;
  readonly #limit: number;
  readonly #socket: Duplex;
  readonly #output: StreamOutput;
  readonly #maxPayload: number;

  constructor(ws: WebSocket, peer: string, limit: number, socket: Duplex, maxPayload: number) {
    super(ws, peer);
    this.#limit = limit;
    this.#socket = socket;
    this.#maxPayload = maxPayload;
    this.#output = new StreamOutput((bytes, done) => {
      socket.write(bytes, done);
    }, WS_BINARY_HEADER);
  }

  attach(handler: LinkHandler, log: LinkLog): void {
    this.handler = handler;
    let closeReason = 'peer closed';
    // Binary messages come from our own reader (ws-deframer.ts); ws reads the rest and
    // emits them below (or all of them, where it could not be taken over).
    takeOver(this.#socket, this.#maxPayload, (frame) => {
      if (this.closed) return;
      this.heard();
      handler.frame(frame);
    });
    this.ws.on('message', (data: RawData, isBinary: boolean) => {
      if (this.closed) return;
      if (!isBinary) {
        this.counters.count('link.ws-text-message');
        log.warn({ peer: this.peer }, 'ws: text message, closing with 1003');
        this.ws.close(WS_CLOSE.UNSUPPORTED_DATA, TEXT_REFUSED_REASON);
        this.finish('text message (closed with 1003)');
        return;
      }
      // binaryType 'nodebuffer' (the default): a whole message is one Buffer.
      const frame = data as Buffer;
      if (frame.length === 0) return this.counters.count('link.bad-frame-length');
      handler.frame(frame);
    });
    this.ws.on('error', (e) => {
      closeReason = `socket error ${(e as NodeJS.ErrnoException).code ?? e.message}`;
    });
    this.ws.on('close', (code: number) => {
      this.finish(code === WS_CLOSE.TOO_BIG ? 'message too big (1009)' : `${closeReason} (${code})`);
    });
  }

  /** GuestLink.allocFrame: the region right where `send` would copy the frame. */
  allocFrame(length: number, zeroed = true): Uint8Array {
    return this.#output.alloc(length, zeroed);
  }

  send(frame: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return this.counters.count('link.tx-closed');
    if (this.ws.bufferedAmount + this.#output.queued + frame.length > this.#limit) return this.counters.count('link.tx-overflow');
    if (this.#output.queued === 0) queueMicrotask(this.#flush);
    this.#output.append(frame);
  }

  readonly #flush = (): void => {
    if (!this.closed && this.ws.readyState === this.ws.OPEN && this.#socket.writable) this.#output.flush();
    else this.#output.discard();
  };

  override close(reason: string): void {
    if (!this.closed && this.ws.readyState === this.ws.OPEN) this.#output.flush();
    super.close(reason);
  }

  protected override finish(reason: string): void {
    this.#output.discard();
    super.finish(reason);
  }
}

/**
 * Accepts a WebSocket as a guest link: builds the link, asks for its session's handler, and
 * refuses the socket (1001, logged) when no session can be had.
 */
export function acceptWsLink(
  ws: WebSocket,
  req: http.IncomingMessage,
  makeLink: (peer: string) => WsGuestLink,
  accept: AcceptLink,
  log: LinkLog,
  liveness: WsLiveness = { idleTimeoutMs: DEFAULT_WS_IDLE_TIMEOUT_MS },
): void {
  const peer = clientPeer(req);
  const link = makeLink(peer);
  link.network = requestedNetwork(req);
  let handler: LinkHandler;
  try {
    handler = accept(link);
  } catch (e) {
    log.warn({ peer, kind: link.kind, err: e }, 'ws: session refused');
    ws.close(WS_CLOSE.GOING_AWAY, 'session refused');
    return;
  }
  link.attach(handler, log);
  link.watch(liveness);
}

/** The route serving raw frames (mount it at '/'). */
export function wsFramesRoute(accept: AcceptLink, log: LinkLog, txQueueLimitBytes = TX_QUEUE_LIMIT_BYTES, liveness?: WsLiveness): WsRoute {
  return {
    maxPayload: MAX_FRAME_LEN,
    accept(ws: WebSocket, req: http.IncomingMessage, socket: Duplex): void {
      acceptWsLink(ws, req, (peer) => new WsFrameLink(ws, peer, txQueueLimitBytes, socket, MAX_FRAME_LEN), accept, log, liveness);
    },
  };
}
