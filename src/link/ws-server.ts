/**
 * The WebSocket listener: one HTTP server whose upgrade requests are routed by path. The
 * frames protocol (`ws-frames.ts`) serves `/`; other protocols (the e1000 device protocol at
 * `/e1000`) register their own path with `route()`. Requests for any other path get HTTP 404;
 * a plain (non-upgrade) HTTP request to a registered path gets 426 Upgrade Required.
 *
 * Every route gets its own `ws` server with permessage-deflate off (frames are mostly
 * incompressible and compression costs CPU per frame; v86 offers it and accepts a refusal)
 * and its own `maxPayload`.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatHostPort, type LinkLog, type Listener } from './link.js';

/** A protocol served at one path. */
export interface WsRoute {
  /** Largest message accepted, in bytes; a larger one closes the socket with 1009. */
  readonly maxPayload: number;
  /** Called for each accepted WebSocket. Must not throw. */
  accept(ws: WebSocket, req: http.IncomingMessage): void;
}

/** A bound WebSocket listener; more paths can be routed after it is bound. */
export interface WsListener extends Listener {
  readonly address: { readonly kind: 'ws'; readonly host: string; readonly port: number; readonly url: string };
  /** Serves `route` at `path` (e.g. '/e1000'). Replaces an earlier route at the same path. */
  route(path: string, route: WsRoute): void;
}

export interface WsListenOptions {
  readonly host: string;
  readonly port: number;
  readonly log: LinkLog;
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length + 1}\r\n\r\n${text}\n`);
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
  const server = http.createServer((req, res) => {
    const known = routes.has(pathOf(req));
    res.writeHead(known ? 426 : 404, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end(known ? 'Upgrade Required: this path speaks WebSocket\n' : 'Not Found\n');
  });
  server.on('upgrade', (req, socket, head) => {
    const r = routes.get(pathOf(req));
    if (r === undefined) {
      o.log.debug({ url: req.url, peer: req.socket.remoteAddress }, 'ws: upgrade for an unknown path refused');
      return refuse(socket, 404, 'Not Found');
    }
    socket.on('error', () => undefined); // an error before the handshake completes is not ours to report
    r.wss.handleUpgrade(req, socket, head, (ws) => {
      r.route.accept(ws, req);
    });
  });
  server.on('clientError', (_e, socket) => {
    refuse(socket, 400, 'Bad Request');
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
    address: { kind: 'ws', host: a.address, port: a.port, url: `ws://${formatHostPort(a.address, a.port)}/` },
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
