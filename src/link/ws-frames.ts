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
 * are dropped ('link.tx-overflow').
 */
import type http from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { Counters } from '../util/drops.js';
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
    this.ws.on('message', () => {
      lastMessage = performance.now();
    });
    this.ws.on('pong', () => {
      unanswered = 0;
    });
    this.#timer = setInterval(() => {
      if (this.#closed) return;
      if (o.idleTimeoutMs > 0 && performance.now() - lastMessage >= o.idleTimeoutMs) {
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

class WsFrameLink extends WsGuestLink {
  readonly kind = 'ws' as const;
  readonly #limit: number;

  constructor(ws: WebSocket, peer: string, limit: number) {
    super(ws, peer);
    this.#limit = limit;
  }

  attach(handler: LinkHandler, log: LinkLog): void {
    this.handler = handler;
    let closeReason = 'peer closed';
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

  send(frame: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return this.counters.count('link.tx-closed');
    if (this.ws.bufferedAmount + frame.length > this.#limit) return this.counters.count('link.tx-overflow');
    this.ws.send(frame, { binary: true });
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
    accept(ws: WebSocket, req: http.IncomingMessage): void {
      acceptWsLink(ws, req, (peer) => new WsFrameLink(ws, peer, txQueueLimitBytes), accept, log, liveness);
    },
  };
}
