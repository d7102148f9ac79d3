/**
 * The control API: JSON over HTTP (node:http) on unix sockets and loopback TCP, versioned
 * under /v1 and described by openapi.json (served at /v1/openapi.json), so that a running
 * daemon can be seen and steered: its sessions, networks, leases, NAT flows and forwards,
 * live captures and an event stream.
 *
 * Layering: it stands above the daemon and reaches it only through `DaemonControl`
 * (src/daemon/control.ts); it never touches a stack or a host socket, so whatever a client
 * does, the data path has one owner.
 *
 * Robustness: every request runs inside one try/catch that answers 500 and logs, so no
 * request can take the daemon down; bodies are read up to MAX_BODY_BYTES (413 beyond), parsed
 * as JSON (400 naming the problem) and checked field by field (400 naming the field).
 * Streaming clients (events, captures) are bounded: each has a queue limit past which data is
 * dropped and counted, and at most MAX_STREAM_CLIENTS stream at once (503 beyond).
 *
 * Security. A unix socket is created mode 0600 in a 0700 directory: the file system decides
 * who may talk. A TCP listener is reachable by any web page the user's browser opens, so it
 * answers only requests whose Host header is a loopback name or address (no DNS rebinding),
 * refuses state-changing requests (POST, DELETE) that carry a foreign Origin or, with a body,
 * are not application/json (no HTML form can send that), and binds a non-loopback address
 * only with `--api-token-file`: then every request must carry `Authorization: Bearer TOKEN`
 * (and the Host check is left to the token, as the address is not a loopback one).
 *
 * Errors are always `{"error":{"code","message"}}` (and `field` for a bad field); the codes
 * are API_ERROR_CODES, listed in the OpenAPI document too.
 */
import { timingSafeEqual } from 'node:crypto';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ControlError, DAEMON_EVENT_NAMES, type DaemonControl, type DaemonEvents } from '../daemon/control.js';
import type { Session } from '../daemon/session.js';
import { parseIpAddr } from '../net/addr.js';
import { Counters } from '../util/drops.js';
import { LiveCapture, PCAPNG_MEDIA_TYPE } from './capture.js';
import { DaemonMetrics } from './metrics.js';
import { STATUS_PAGE } from './status-page.js';
import openapi from './openapi.json' with { type: 'json' };
import { allLeases, flowsOf, flowView, forwardView, leaseView, mappingView, networkView, sessionView, type Json } from './views.js';

/** Largest request body read. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Event-stream and capture clients at once, all listeners together. */
export const MAX_STREAM_CLIENTS = 2048;
/** Unsent bytes an event-stream client may hold before events are dropped for it. */
export const EVENTS_QUEUE_LIMIT_BYTES = 1024 * 1024;
/** A comment line to every event-stream client this often, so proxies and clients see it alive. */
const EVENTS_HEARTBEAT_MS = 15_000;

export const API_ERROR_CODES = [
  'not-found', 'method-not-allowed', 'bad-json', 'bad-field', 'body-too-large', 'unsupported-media-type',
  'forbidden-host', 'forbidden-origin', 'unauthorized', 'conflict', 'busy', 'internal',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/** Where an API listener listens. */
export type ApiListenSpec = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** `unix:PATH` or `tcp:HOST:PORT` (IPv6 in brackets); throws Error with the reason. */
export function parseApiSpec(text: string): ApiListenSpec {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (path === '') throw new Error(`'${text}' names no socket path`);
    return { kind: 'unix', path };
  }
  const m = /^tcp:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (m === null) throw new Error(`'${text}' must be unix:PATH or tcp:HOST:PORT (e.g. tcp:127.0.0.1:8081)`);
  const host = m[1] ?? m[2]!;
  if (net.isIP(host) === 0) throw new Error(`'${text}': ${host} is not an IP address`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`'${text}': port ${port} is above 65535`);
  return { kind: 'tcp', host, port };
}

export const isLoopbackAddress = (host: string): boolean => (net.isIPv4(host) && host.startsWith('127.')) || host === '::1';

/** A Host header naming this machine's loopback: localhost (and *.localhost), 127.x.y.z, [::1]; with or without a port. */
export function isLoopbackHost(header: string | undefined): boolean {
  if (header === undefined) return false;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d{1,5})?$/.exec(header.trim().toLowerCase());
  if (m === null) return false;
  const host = m[1] ?? m[2]!;
  return host === 'localhost' || host.endsWith('.localhost') || isLoopbackAddress(host);
}

export interface ApiServerOptions {
  readonly listen: readonly ApiListenSpec[];
  readonly control: DaemonControl;
  readonly log: Logger;
  /** The token every request must bear (`--api-token-file`); required to bind a non-loopback address. */
  readonly token?: string | undefined;
  /** shb_userappl of live captures, e.g. `tslirp 0.1.0`. */
  readonly userAppl: string;
}

/** A bound API listener's address: a socket path, or host and port. */
export type ApiAddress = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly url: string };

class ApiError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly field: string | undefined;
  constructor(status: number, code: ApiErrorCode, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** One request as a route sees it. */
export interface ApiRequest {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The parsed JSON body (POST only). */
  readonly body: unknown;
}

/** A route: method and an OpenAPI path template (`/v1/sessions/{id}`); the handler returns [status, JSON] or undefined when it answered itself (streams). */
export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly handle: (r: ApiRequest) => Promise<[number, Json] | undefined> | [number, Json] | undefined;
}

const compiled = (path: string): RegExp => new RegExp(`^${path.replace(/[.*+?^$()|]/g, '\\$&').replace(/\{(\w+)\}/g, '(?<$1>[^/]+)')}$`);

export class ApiServer {
  readonly #o: ApiServerOptions;
  readonly #servers: http.Server[] = [];
  readonly #addresses: ApiAddress[] = [];
  readonly #routes: { route: Route; re: RegExp }[];
  /** Refused requests and dropped stream data, by reason ('api.*', 'events.dropped', 'capture.dropped'). */
  readonly counters = new Counters();
  /** Live event-stream and capture clients. */
  #streams = new Set<http.ServerResponse>();
  readonly #unixPaths: string[] = [];
  #closing: Promise<void> | undefined;
  readonly #metrics: DaemonMetrics;

  private constructor(o: ApiServerOptions) {
    this.#o = o;
    this.#metrics = new DaemonMetrics(o.control, this.counters);
    this.#routes = [...this.#coreRoutes(), this.#metrics.route()].map((route) => ({ route, re: compiled(route.path) }));
  }

  /** Every route answered, as `METHOD path` (the OpenAPI test compares them with the document). */
  get routes(): string[] {
    return this.#routes.map(({ route }) => `${route.method} ${route.path}`);
  }

  get addresses(): readonly ApiAddress[] {
    return this.#addresses;
  }

  /** Stream clients connected now. */
  get streamClients(): number {
    return this.#streams.size;
  }

  /** Binds every listener (all or none); throws Error naming the listener. */
  static async start(o: ApiServerOptions): Promise<ApiServer> {
    const s = new ApiServer(o);
    try {
      for (const spec of o.listen) await s.#listen(spec);
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  async #listen(spec: ApiListenSpec): Promise<void> {
    const name = spec.kind === 'unix' ? `unix:${spec.path}` : `tcp:${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
    if (spec.kind === 'tcp' && !isLoopbackAddress(spec.host) && this.#o.token === undefined)
      throw new Error(`--api ${name}: ${spec.host} is not a loopback address; binding it needs --api-token-file (every request then bears the token)`);
    const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
      void this.#serve(spec, req, res);
    });
    // A client that resets mid-request must not become an uncaught error.
    server.on('clientError', (_e, socket) => {
      this.counters.count('api.client-error');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    if (spec.kind === 'unix') {
      await mkdir(dirname(spec.path), { recursive: true, mode: 0o700 });
      await removeStaleSocket(spec.path);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => {
        reject(new Error(`cannot listen on --api ${name}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      });
      if (spec.kind === 'unix') server.listen(spec.path, resolve);
      else server.listen({ host: spec.host, port: spec.port, exclusive: true }, resolve);
    });
    server.on('error', (e) => {
      this.#o.log.warn({ err: e, api: name }, 'api listener error');
    });
    this.#servers.push(server);
    if (spec.kind === 'unix') {
      this.#unixPaths.push(spec.path);
      await chmod(spec.path, 0o600);
      this.#addresses.push({ kind: 'unix', path: spec.path });
    } else {
      const a = server.address() as net.AddressInfo;
      const host = a.address.includes(':') ? `[${a.address}]` : a.address;
      this.#addresses.push({ kind: 'tcp', host: a.address, port: a.port, url: `http://${host}:${a.port}/` });
    }
  }

  async #serve(spec: ApiListenSpec, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.on('error', () => undefined);
    req.on('error', () => undefined);
    try {
      this.#check(spec, req);
      const url = new URL(req.url ?? '/', 'http://localhost');
      const method = req.method ?? 'GET';
      let found: { route: Route; params: Record<string, string> } | undefined;
      let pathMatched = false;
      for (const { route, re } of this.#routes) {
        const m = re.exec(url.pathname);
        if (m === null) continue;
        pathMatched = true;
        if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
          found = { route, params: Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)])) };
          break;
        }
      }
      if (found === undefined) {
        if (pathMatched) throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${url.pathname}`);
        throw new ApiError(404, 'not-found', `no route ${method} ${url.pathname} (see /v1/openapi.json)`);
      }
      const body = method === 'POST' ? await readJson(req) : undefined;
      const out = await found.route.handle({ req, res, params: found.params, query: url.searchParams, body });
      if (out !== undefined) send(res, out[0], out[1]);
    } catch (thrown) {
      let e = thrown;
      if (e instanceof ControlError) {
        const status = e.kind === 'not-found' ? 404 : e.kind === 'conflict' ? 409 : 400;
        const code: ApiErrorCode = e.kind === 'not-found' ? 'not-found' : e.kind === 'conflict' ? 'conflict' : 'bad-field';
        e = new ApiError(status, code, e.message, e.field);
      }
      if (e instanceof ApiError) {
        this.counters.count(`api.${e.code}`);
        const error: Record<string, string> = { code: e.code, message: e.message };
        if (e.field !== undefined) error['field'] = e.field;
        // A body the client is still sending is not read: close the connection after answering.
        if (e.status === 413) res.setHeader('Connection', 'close');
        send(res, e.status, { error });
        return;
      }
      this.counters.count('api.internal');
      this.#o.log.error({ err: e, url: req.url, method: req.method }, 'api: internal error');
      send(res, 500, { error: { code: 'internal', message: 'internal error (logged by the daemon)' } });
    }
  }

  /** The security rules of a TCP listener (and the token, wherever one is set). */
  #check(spec: ApiListenSpec, req: http.IncomingMessage): void {
    const token = this.#o.token;
    if (token !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      const given = Buffer.from(m?.[1] ?? '');
      const want = Buffer.from(token);
      if (given.length !== want.length || !timingSafeEqual(given, want)) throw new ApiError(401, 'unauthorized', 'this API needs Authorization: Bearer TOKEN (the token of --api-token-file)');
    }
    if (spec.kind !== 'tcp') return;
    const host = req.headers.host;
    if (token === undefined && !isLoopbackHost(host)) throw new ApiError(403, 'forbidden-host', `Host '${host ?? ''}' is not a loopback name or address (DNS rebinding is refused)`);
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') return;
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host ?? ''}`) throw new ApiError(403, 'forbidden-origin', `requests from the page at ${origin} may not change this daemon`);
    if (method === 'POST' && !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? ''))
      throw new ApiError(415, 'unsupported-media-type', 'a request body must be Content-Type: application/json');
  }

  #coreRoutes(): Route[] {
    const c = this.#o.control;
    const wall = (ms: number): Date => new Date(Date.now() + (ms - c.nowMs()));
    const sessionOr404 = (id: string): Session => {
      const s = c.session(id);
      if (s === undefined) throw new ApiError(404, 'not-found', `no session '${id}'`);
      return s;
    };
    return [
      {
        method: 'GET', path: '/', handle: ({ res }) => {
          res.writeHead(200, {
            'Content-Type': 'text/html; charset=utf-8',
            'Cache-Control': 'no-store',
            // Everything the page needs is inline or this API: nothing from elsewhere, no framing.
            'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
            'X-Content-Type-Options': 'nosniff',
          });
          res.end(STATUS_PAGE);
          return undefined;
        },
      },
      { method: 'GET', path: '/v1/openapi.json', handle: () => [200, openapi] },
      { method: 'GET', path: '/v1/networks', handle: () => [200, c.networks.filter((n) => !n.closed).map((n) => networkView(n, c))] },
      {
        method: 'GET', path: '/v1/networks/{name}', handle: ({ params }) => {
          const n = c.network(params['name']!);
          if (n === undefined || n.closed) throw new ApiError(404, 'not-found', `no network '${params['name']!}'`);
          return [200, networkView(n, c)];
        },
      },
      { method: 'GET', path: '/v1/sessions', handle: () => [200, c.sessions.filter((s) => !s.closed).map(sessionView)] },
      { method: 'GET', path: '/v1/sessions/{id}', handle: ({ params }) => [200, sessionView(sessionOr404(params['id']!))] },
      {
        method: 'DELETE', path: '/v1/sessions/{id}', handle: ({ params }) => {
          const s = sessionOr404(params['id']!);
          c.disconnect(s.id, 'disconnected through the control API');
          return [200, sessionView(s)];
        },
      },
      { method: 'GET', path: '/v1/leases', handle: () => [200, allLeases(c).map((l) => leaseView(l, wall))] },
      {
        method: 'GET', path: '/v1/flows', handle: ({ query }) => {
          const network = query.get('network');
          const session = query.get('session');
          const protocol = query.get('protocol');
          if (protocol !== null && protocol !== 'tcp' && protocol !== 'udp') throw new ApiError(400, 'bad-field', `protocol must be tcp or udp, not '${protocol}'`, 'protocol');
          let networks = c.networks;
          if (network !== null) {
            const n = c.network(network);
            if (n === undefined) throw new ApiError(404, 'not-found', `no network '${network}'`, 'network');
            networks = [n];
          }
          if (session !== null) {
            const s = sessionOr404(session);
            networks = networks.filter((n) => c.sessionsOf(n).includes(s));
          }
          const flows = flowsOf(c, networks).filter((f) => (protocol === null || f.protocol === protocol) && (session === null || f.session === session));
          return [200, flows.map(flowView)];
        },
      },
      { method: 'GET', path: '/v1/forwards', handle: () => [200, c.forwards().map(forwardView)] },
      { method: 'POST', path: '/v1/forwards', handle: async ({ body }) => [201, forwardView(await c.addForward(forwardRequest(body)))] },
      { method: 'DELETE', path: '/v1/forwards/{id}', handle: async ({ params }) => [200, forwardView(await c.removeForward(params['id']!))] },
      { method: 'GET', path: '/v1/events', handle: (r) => { this.#events(r); return undefined; } },
      { method: 'GET', path: '/v1/sessions/{id}/capture', handle: (r) => { this.#capture(r, [sessionOr404(r.params['id']!)], undefined); return undefined; } },
      {
        method: 'GET', path: '/v1/networks/{name}/capture', handle: (r) => {
          const n = c.network(r.params['name']!);
          if (n === undefined || n.closed) throw new ApiError(404, 'not-found', `no network '${r.params['name']!}'`);
          this.#capture(r, c.sessionsOf(n), n.name);
          return undefined;
        },
      },
    ];
  }

  #admitStream(): void {
    if (this.#streams.size >= MAX_STREAM_CLIENTS) throw new ApiError(503, 'busy', `${MAX_STREAM_CLIENTS} event and capture clients are connected already`);
  }

  /** GET /v1/events: server-sent events until the client goes away. */
  #events({ req, res }: ApiRequest): void {
    this.#admitStream();
    const c = this.#o.control;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write(': tslirp events\n\n');
    let serial = 0;
    const emit = (name: string, data: Json): void => {
      if (res.writableLength > EVENTS_QUEUE_LIMIT_BYTES) {
        this.counters.count('events.dropped');
        return;
      }
      res.write(`id: ${++serial}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const wall = (ms: number): Date => new Date(Date.now() + (ms - c.nowMs()));
    const handlers: { [K in keyof DaemonEvents]: (...args: DaemonEvents[K]) => void } = {
      'session.up': (s) => { emit('session.up', sessionView(s)); },
      'session.down': (s, reason) => { emit('session.down', { ...(sessionView(s) as Record<string, Json>), reason }); },
      'forward.added': (f) => { emit('forward.added', forwardView(f)); },
      'forward.removed': (f) => { emit('forward.removed', forwardView(f)); },
      'lease.granted': (l) => { emit('lease.granted', leaseView(l, wall)); },
      'lease.released': (l) => { emit('lease.released', leaseView(l, wall)); },
      'flow.opened': (f) => { emit('flow.opened', flowView({ ...f, session: undefined })); },
      'flow.closed': (f) => { emit('flow.closed', flowView({ ...f, session: undefined })); },
      'mapping.created': (m) => { emit('mapping.created', mappingView(m)); },
      'mapping.expired': (m, reason) => { emit('mapping.expired', { ...(mappingView(m) as Record<string, Json>), reason }); },
    };
    for (const name of DAEMON_EVENT_NAMES) c.events.on(name, handlers[name]);
    const unwatch = c.watchChanges();
    const beat = setInterval(() => {
      if (res.writableLength <= EVENTS_QUEUE_LIMIT_BYTES) res.write(': alive\n\n');
    }, EVENTS_HEARTBEAT_MS);
    beat.unref();
    this.#streams.add(res);
    const stop = (): void => {
      if (!this.#streams.delete(res)) return;
      clearInterval(beat);
      unwatch();
      for (const name of DAEMON_EVENT_NAMES) c.events.off(name, handlers[name]);
    };
    req.socket.setTimeout(0);
    res.on('close', stop);
  }

  /** GET …/capture: a pcapng stream of `sessions` (and of `network`'s sessions that join later). */
  #capture({ req, res }: ApiRequest, sessions: readonly Session[], network: string | undefined): void {
    this.#admitStream();
    const c = this.#o.control;
    res.writeHead(200, { 'Content-Type': PCAPNG_MEDIA_TYPE, 'Cache-Control': 'no-store' });
    const capture = new LiveCapture(res, this.counters, this.#o.userAppl);
    for (const s of sessions) capture.add(s);
    const up = (s: Session): void => { if (s.network.name === network) capture.add(s); };
    const down = (s: Session): void => { capture.remove(s); };
    if (network !== undefined) c.events.on('session.up', up);
    c.events.on('session.down', down);
    this.#streams.add(res);
    req.socket.setTimeout(0);
    res.on('close', () => {
      this.#streams.delete(res);
      capture.close();
      c.events.off('session.up', up);
      c.events.off('session.down', down);
    });
    // A session capture ends with its session.
    if (network === undefined && sessions.length === 1) {
      const only = sessions[0]!;
      const end = (s: Session): void => { if (s === only) setImmediate(() => res.end()); };
      c.events.on('session.down', end);
      res.on('close', () => c.events.off('session.down', end));
    }
  }

  /** Closes every listener and stream client; removes the unix socket files. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#metrics.close();
      for (const res of this.#streams) res.destroy();
      await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => {
        s.close(() => { resolve(); });
        s.closeAllConnections();
      })));
      await Promise.all(this.#unixPaths.map((p) => unlink(p).catch(() => undefined)));
    })();
    return this.#closing;
  }
}

function send(res: http.ServerResponse, status: number, body: Json): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body, null, 1) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

/** The request body as JSON: 413 past MAX_BODY_BYTES, 400 when it does not parse. */
function readJson(req: http.IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES) return Promise.reject(new ApiError(413, 'body-too-large', `the body is ${declared} bytes; at most ${MAX_BODY_BYTES}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        failed = true;
        reject(new ApiError(413, 'body-too-large', `the body is larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text === '' ? 'null' : text));
      } catch (e) {
        reject(new ApiError(400, 'bad-json', `the body is not JSON: ${(e as Error).message}`));
      }
    });
    req.on('error', () => {
      if (!failed) reject(new ApiError(400, 'bad-json', 'the request body was cut off'));
    });
  });
}

/** POST /v1/forwards' body → a ForwardRequest; 400 naming the field. */
export function forwardRequest(body: unknown): { rule: string; network?: string; session?: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'bad-field', 'the body must be a JSON object', 'body');
  const b = body as Record<string, unknown>;
  const known = new Set(['rule', 'protocol', 'hostAddr', 'hostPort', 'hostPorts', 'guestAddr', 'guestPort', 'guestPorts', 'network', 'session']);
  for (const k of Object.keys(b)) if (!known.has(k)) throw new ApiError(400, 'bad-field', `unknown field '${k}'`, k);
  const str = (k: string): string | undefined => {
    const v = b[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') throw new ApiError(400, 'bad-field', `${k} must be a non-empty string`, k);
    return v;
  };
  const ports = (single: string, range: string): string | undefined => {
    const one = b[single];
    const many = b[range];
    if (one !== undefined && many !== undefined) throw new ApiError(400, 'bad-field', `give ${single} or ${range}, not both`, range);
    if (one !== undefined) {
      if (typeof one !== 'number' || !Number.isInteger(one) || one < 1 || one > 65535) throw new ApiError(400, 'bad-field', `${single} must be an integer from 1 to 65535`, single);
      return String(one);
    }
    if (many === undefined) return undefined;
    if (typeof many !== 'string' || !/^\d{1,5}(-\d{1,5})?$/.test(many)) throw new ApiError(400, 'bad-field', `${range} must be PORT or FIRST-LAST, e.g. "8000-8010"`, range);
    return many;
  };
  const network = str('network');
  const session = str('session');
  const target = { ...(network !== undefined && { network }), ...(session !== undefined && { session }) };
  const rule = str('rule');
  if (rule !== undefined) {
    for (const k of ['protocol', 'hostAddr', 'hostPort', 'hostPorts', 'guestAddr', 'guestPort', 'guestPorts']) if (b[k] !== undefined) throw new ApiError(400, 'bad-field', `give rule or the rule's fields, not both (${k})`, k);
    return { rule, ...target };
  }
  const protocol = b['protocol'] ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') throw new ApiError(400, 'bad-field', 'protocol must be "tcp" or "udp"', 'protocol');
  const hostAddr = str('hostAddr') ?? '';
  const guestAddr = str('guestAddr') ?? '';
  // An IPv6 address (with or without brackets) goes into the rule in brackets (forwards.ts); anything else must not hold the rule's separators.
  const ruleAddr = (k: 'hostAddr' | 'guestAddr', v: string): string => {
    const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
    if (bare.includes(':') && typeof parseIpAddr(bare) === 'string') return `[${bare}]`;
    if (/[:,\s\-[\]]/.test(v)) throw new ApiError(400, 'bad-field', `${k} '${v}' is not an IPv4 or IPv6 address${k === 'guestAddr' ? ' or a host name' : ''}`, k);
    return v;
  };
  const hostRuleAddr = ruleAddr('hostAddr', hostAddr);
  const guestRuleAddr = ruleAddr('guestAddr', guestAddr);
  const hostPorts = ports('hostPort', 'hostPorts');
  if (hostPorts === undefined) throw new ApiError(400, 'bad-field', 'hostPort (or hostPorts) is required', 'hostPort');
  const guestPorts = ports('guestPort', 'guestPorts');
  if (guestPorts === undefined) throw new ApiError(400, 'bad-field', 'guestPort (or guestPorts) is required', 'guestPort');
  return { rule: `${protocol}:${hostRuleAddr}:${hostPorts}-${guestRuleAddr}:${guestPorts}`, ...target };
}

/** Removes a unix socket file left by a previous run; throws when it is not a socket or someone serves it. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`--api unix:${path}: the path exists and is not a socket; refusing to replace it`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { resolve(false); });
  });
  if (alive) throw new Error(`--api unix:${path}: in use by another process (another tslirp?)`);
  await unlink(path);
}
