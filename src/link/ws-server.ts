/**
 * The WebSocket listener: one HTTP server whose upgrade requests are routed by path. The
 * frames protocol (`ws-frames.ts`) serves `/`; other protocols (the e1000 device protocol at
 * `/e1000`) register their own path with `route()`.
 *
 * An upgrade request passes these steps, in this order:
 * 1. its path must be routed, else HTTP 404;
 * 2. `admit(req)` must let it in, else HTTP 403 — the browser Origin check below;
 * 3. with a token file (`--ws-token-file`, `ws-auth.ts`), it must present a token of the
 *    file, else HTTP 401 ('ws.token-missing', 'ws.token-refused'), logged without the token;
 * 4. a network it asks for in the URL (`?network=NAME`, see `networkOf`) must be a valid
 *    name, else HTTP 400 with the reason ('ws.bad-network'); the link carries the name;
 * 5. its token must be allowed on the network it will join (the URL's, else the listener's),
 *    else HTTP 403 ('ws.network-not-allowed');
 * 6. the route's `ws` server completes the handshake (a malformed one gets ws's HTTP 400).
 * With `tls` (a certificate and key), the listener serves HTTPS and `wss://`.
 *
 * Behind a reverse proxy (`trustedProxies`, `--trusted-proxy CIDR`) a request whose connection
 * comes from a trusted address is taken to be from the client its `X-Forwarded-For` names: the
 * rightmost address of the header that is not itself a trusted proxy (proxies append, so
 * what a client wrote at the left cannot be trusted). That address is the session's peer, in
 * logs and for the per-source session limit (`clientPeer`).
 * A plain (non-upgrade) HTTP request to a routed path gets 426 Upgrade Required, to any other
 * path 404; a request that does not parse gets 400.
 *
 * Origins. A browser sends `Origin` with every WebSocket request and lets any page open a
 * socket to any address, 127.0.0.1 included (WebSocket has no CORS). Without a check, any web
 * page the user visits could open a session whose gateway reaches the host's loopback
 * services. So a request that carries an `Origin` (or the older `Sec-WebSocket-Origin`) is
 * refused with 403 unless that origin is in `allowOrigins` (`--ws-allow-origin`); `*` allows
 * any origin, `null` included. Origins compare as serialized origins (RFC 6454 §6.2:
 * scheme and host lower-cased, default port dropped), so `HTTP://LocalHost:80` allows
 * `http://localhost`. Non-browser clients (QEMU bridges, `ws`, v86 under Node) send no Origin
 * and are let in. Refusals are counted ('ws.origin-refused') and logged, at most one line per
 * LOG_THROTTLE_INTERVAL_MS with the count of those not logged.
 *
 * Errors. Every socket this listener touches has an 'error' listener before anything is
 * written to it: Node gives an upgraded socket to the 'upgrade' handler with no listener of
 * its own, and a peer's reset then surfaces as an 'error' event that would kill the daemon
 * (issue 17). Refusals end the socket and destroy it after REFUSE_LINGER_MS if the peer does
 * not close. Every accepted WebSocket has an 'error' listener before its route sees it (ws
 * emits protocol violations — unmasked or oversized frames, bad close codes — there).
 *
 * Every route gets its own `ws` server with permessage-deflate off (frames are mostly
 * incompressible and compression costs CPU per frame; v86 offers it and accepts a refusal)
 * and its own `maxPayload`.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Counters, type Drop } from '../util/drops.js';
import { networkNameProblem } from '../net/network-name.js';
import { LogThrottle } from '../util/log-throttle.js';
import { formatHostPort, type LinkCounters, type LinkLog, type Listener } from './link.js';
import { tokenMayJoin, type WsTokens } from './ws-auth.js';
import { parseIpAddr } from '../net/addr.js';
import { cidrHolds, type Cidr } from '../net/cidr.js';

/** A protocol served at one path. */
export interface WsRoute {
  /** Largest message accepted, in bytes; a larger one closes the socket with 1009. */
  readonly maxPayload: number;
  /**
   * Called for each accepted WebSocket. Must not throw. `socket` is the connection under it:
   * a route may write whole frames of its own there (ws-frames.ts does, for data frames).
   */
  accept(ws: WebSocket, req: http.IncomingMessage, socket: Duplex): void;
}

/** A bound WebSocket listener; more paths can be routed after it is bound. */
export interface WsListener extends Listener {
  readonly address: { readonly kind: 'ws'; readonly host: string; readonly port: number; readonly url: string };
  /** Serves `route` at `path` (e.g. '/e1000'). Replaces an earlier route at the same path. */
  route(path: string, route: WsRoute): void;
  /**
   * Requests refused and connection errors, by name: 'ws.origin-refused' (403),
   * 'ws.unknown-path' (404), 'ws.bad-request' (400 before any route), 'ws.socket-error'
   * (a peer's reset or similar, on any socket of this listener).
   */
  readonly counters: LinkCounters;
}

export interface WsListenOptions {
  readonly host: string;
  readonly port: number;
  readonly log: LinkLog;
  /**
   * Browser origins allowed to open a WebSocket, as `normalizeOrigin` returns them, or '*'
   * for any. Default: none (requests with an Origin header get 403).
   */
  readonly allowOrigins?: readonly string[];
  /**
   * The tokens a client must present, read at each request (a reload can change them);
   * undefined: no authentication.
   */
  readonly tokens?: (() => WsTokens | undefined) | undefined;
  /** The network a session joins when its URL names none (the listener's or the daemon's), for the token's network list. */
  readonly network?: string | undefined;
  /** Proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`); none by default. */
  readonly trustedProxies?: readonly Cidr[] | undefined;
  /** Serve HTTPS (`wss://`) with this certificate chain and key (PEM). */
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string } | undefined;
}

/** How long a refused connection may stay half-open before it is destroyed. */
export const REFUSE_LINGER_MS = 5_000;

/** Longest Origin value quoted in a log line. */
const MAX_LOGGED_ORIGIN = 200;

/**
 * The serialized form of an origin (RFC 6454 §6.2): `scheme://host[:port]`, scheme and host
 * lower-cased, the scheme's default port dropped. Undefined when `text` is not a tuple origin
 * (`null`, a path, credentials, a query, an opaque scheme such as `file:` or `data:`).
 */
export function normalizeOrigin(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return undefined;
  }
  // An origin is scheme, host and port only: anything else means the text was not one.
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || (u.pathname !== '' && u.pathname !== '/')) return undefined;
  if (u.host === '') return undefined; // file:, data:, about: — browsers send these as 'null'
  // WHATWG URL gives non-special schemes (chrome-extension:, moz-extension:) the origin 'null',
  // but browsers send them as scheme://host: serialize those by hand.
  return u.origin !== 'null' ? u.origin : `${u.protocol}//${u.host}`.toLowerCase();
}

/**
 * The network a request asks for in its URL (`?network=NAME`): the name, undefined when the
 * URL names none, or `{ problem }` when the name is not one (the request gets HTTP 400).
 */
export function networkOf(req: http.IncomingMessage): string | undefined | { readonly problem: string } {
  let name: string | null;
  try {
    name = new URL(req.url ?? '/', 'http://x').searchParams.get('network');
  } catch {
    return undefined; // an unparsable URL has no routed path either: refused with 404 before this
  }
  if (name === null) return undefined;
  const problem = networkNameProblem(name);
  return problem === undefined ? name : { problem };
}

/** The checked `?network=` of an admitted request (see `networkOf`). */
export function requestedNetwork(req: http.IncomingMessage): string | undefined {
  const n = networkOf(req);
  return typeof n === 'string' ? n : undefined;
}

/** Longest X-Forwarded-For looked at: a header is not a place to hide an unbounded loop. */
const MAX_FORWARDED_HOPS = 32;

const stripMapped = (a: string): string => a.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');

/**
 * The address a request really comes from: the connection's, or — when the connection comes
 * from a trusted proxy — the rightmost `X-Forwarded-For` entry that is not a trusted proxy
 * (the leftmost when all are). A malformed entry ends the walk at the last trusted hop.
 */
export function clientAddress(req: http.IncomingMessage, trusted: readonly Cidr[]): string {
  const remote = stripMapped(req.socket.remoteAddress ?? '?');
  const isTrusted = (text: string): boolean => {
    const a = parseIpAddr(text);
    return a !== undefined && trusted.some((c) => cidrHolds(c, a));
  };
  const header = req.headers['x-forwarded-for'];
  if (trusted.length === 0 || header === undefined || !isTrusted(remote)) return remote;
  const hops = (Array.isArray(header) ? header.join(',') : header).split(',').slice(-MAX_FORWARDED_HOPS).map((h) => stripMapped(h.trim()));
  let client = remote;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (parseIpAddr(hop) === undefined) break;
    client = hop;
    if (!isTrusted(hop)) break;
  }
  return client;
}

/** The peers of accepted requests, as `clientAddress` found them (set before the route sees the request). */
const CLIENT_PEERS = new WeakMap<http.IncomingMessage, string>();

/** A request's peer for logs and limits: `ADDR:PORT` of the client (behind a trusted proxy, the port is the proxy connection's). */
export function clientPeer(req: http.IncomingMessage): string {
  return CLIENT_PEERS.get(req) ?? formatHostPort(stripMapped(req.socket.remoteAddress ?? '?'), req.socket.remotePort ?? 0);
}

/** Why `admit` refused a request; the value is also the counter label. */
export type WsRefusal = 'ws.origin-refused';

/**
 * Decides whether an upgrade request may open a session: the one place where a request is
 * judged before the handshake (tokens will be checked here too). Returns undefined to let
 * it in. Requests without an Origin header come from non-browser clients and pass.
 */
export function admit(req: http.IncomingMessage, allowOrigins: readonly string[]): WsRefusal | undefined {
  const raw = req.headers.origin ?? req.headers['sec-websocket-origin'];
  if (raw === undefined) return undefined;
  if (allowOrigins.includes('*')) return undefined;
  const origin = normalizeOrigin(String(raw));
  if (origin !== undefined && allowOrigins.includes(origin)) return undefined;
  return 'ws.origin-refused';
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
};

/**
 * Answers a refused request with `status` and closes the connection: written only when the
 * socket can still take it, and destroyed if the peer has not closed after REFUSE_LINGER_MS.
 */
function refuse(socket: Duplex, status: number, text?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const reason = STATUS_TEXT[status] ?? 'Refused';
  text ??= reason;
  const challenge = status === 401 ? 'WWW-Authenticate: Bearer realm="tslirp"\r\n' : '';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n${challenge}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text) + 1}\r\n\r\n${text}\n`);
  const timer = setTimeout(() => socket.destroy(), REFUSE_LINGER_MS);
  timer.unref();
  socket.once('close', () => {
    clearTimeout(timer);
  });
}

const pathOf = (req: http.IncomingMessage): string => {
  try {
    return new URL(req.url ?? '/', 'http://x').pathname;
  } catch {
    return '';
  }
};

/** Binds an HTTP server for WebSocket upgrades on `host:port` (port 0: any free port). */
export async function listenWs(o: WsListenOptions): Promise<WsListener> {
  const routes = new Map<string, { route: WsRoute; wss: WebSocketServer }>();
  const allowOrigins = o.allowOrigins ?? [];
  const counters = new Counters();
  const originLog = new LogThrottle();
  const networkLog = new LogThrottle();
  const tokenLog = new LogThrottle();
  const trusted = o.trustedProxies ?? [];
  const peerOf = (req: http.IncomingMessage): string => {
    let p = CLIENT_PEERS.get(req);
    if (p === undefined) {
      p = formatHostPort(clientAddress(req, trusted), req.socket.remotePort ?? 0);
      CLIENT_PEERS.set(req, p);
    }
    return p;
  };
  /** Counts a refusal and logs it, at most one line per LOG_THROTTLE_INTERVAL_MS per kind. */
  const refused = (log: LogThrottle, reason: Drop, req: http.IncomingMessage, fields: Record<string, unknown>, msg: string): void => {
    counters.count(reason);
    const logNow = log.hit(performance.now());
    if (logNow !== undefined) o.log.warn({ reason, path: pathOf(req), peer: peerOf(req), ...fields, refused: counters.get(reason), suppressed: logNow.suppressed }, msg);
  };
  const onSocketError = (e: NodeJS.ErrnoException): void => {
    counters.count('ws.socket-error');
    o.log.debug({ code: e.code ?? e.message }, 'ws: connection error');
  };
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const known = routes.has(pathOf(req));
    res.writeHead(known ? 426 : 404, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end(known ? 'Upgrade Required: this path speaks WebSocket\n' : 'Not Found\n');
  };
  const server = o.tls === undefined ? http.createServer(onRequest) : https.createServer({ cert: o.tls.cert, key: o.tls.key }, onRequest);
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // First of all: Node hands the socket over with no 'error' listener (see the header).
    socket.on('error', onSocketError);
    const r = routes.get(pathOf(req));
    if (r === undefined) {
      counters.count('ws.unknown-path');
      // The path only: a query may hold a token.
      o.log.debug({ path: pathOf(req).slice(0, MAX_LOGGED_ORIGIN), peer: req.socket.remoteAddress }, 'ws: upgrade for an unknown path refused');
      refuse(socket, 404);
      return;
    }
    const refusal = admit(req, allowOrigins);
    if (refusal !== undefined) {
      counters.count(refusal);
      const logNow = originLog.hit(performance.now());
      if (logNow !== undefined) {
        const origin = String(req.headers.origin ?? req.headers['sec-websocket-origin'] ?? '').slice(0, MAX_LOGGED_ORIGIN);
        o.log.warn(
          { origin, path: pathOf(req), peer: peerOf(req), refused: counters.get(refusal), suppressed: logNow.suppressed },
          'ws: browser origin refused (allow it with --ws-allow-origin)',
        );
      }
      refuse(socket, 403, 'Forbidden: this origin may not open a session (tslirp --ws-allow-origin)');
      return;
    }
    const tokens = o.tokens?.();
    const verdict = tokens?.check(req);
    if (verdict !== undefined && !verdict.ok) {
      refused(tokenLog, verdict.reason, req, {}, verdict.reason === 'ws.token-missing' ? 'ws: no token presented, refused' : 'ws: wrong token, refused');
      refuse(socket, 401, 'Unauthorized: present a token as ?token= or Authorization: Bearer (tslirp --ws-token-file)');
      return;
    }
    const network = networkOf(req);
    if (typeof network === 'object') {
      refused(networkLog, 'ws.bad-network', req, { problem: network.problem }, 'ws: bad ?network= refused');
      refuse(socket, 400, `Bad Request: ?network=: ${network.problem}`);
      return;
    }
    const joins = network ?? o.network;
    if (verdict?.ok === true && !tokenMayJoin(verdict.networks, joins)) {
      refused(tokenLog, 'ws.network-not-allowed', req, { network: joins ?? '(private)', tokenLine: verdict.line }, 'ws: token not allowed on this network, refused');
      refuse(socket, 403, `Forbidden: this token may not join ${joins === undefined ? 'a private network' : `network ${joins}`}`);
      return;
    }
    peerOf(req); // the route's link takes its peer from clientPeer(req)
    r.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', onSocketError); // before the route: ws reports protocol violations here
      r.route.accept(ws, req, socket);
    });
  });
  server.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => {
    counters.count(e.code === 'ECONNRESET' ? 'ws.socket-error' : 'ws.bad-request');
    if (e.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    refuse(socket, e.code === 'HPE_HEADER_OVERFLOW' ? 431 : e.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => {
    o.log.warn({ err: e }, 'ws: listener error');
  });
  const a = server.address() as import('node:net').AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: { kind: 'ws', host: a.address, port: a.port, url: `${o.tls === undefined ? 'ws' : 'wss'}://${formatHostPort(a.address, a.port)}/` },
    counters,
    route(path: string, route: WsRoute): void {
      const old = routes.get(path);
      const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: route.maxPayload, clientTracking: true });
      routes.set(path, { route, wss });
      if (old !== undefined) old.wss.close();
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const { wss } of routes.values()) {
          for (const ws of wss.clients) ws.close(1001, 'server shutting down');
          wss.close();
        }
        server.closeIdleConnections();
        // Peers that do not answer the close handshake promptly are cut off.
        setTimeout(() => {
          for (const { wss } of routes.values()) for (const ws of wss.clients) ws.terminate();
          server.closeAllConnections();
        }, 1000).unref();
      });
      return closing;
    },
  };
}
