import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { GuestLink } from '../../src/link/link.js';
import { MAX_FRAME_LEN } from '../../src/link/link.js';
import { TEXT_REFUSED_REASON, wsFramesRoute } from '../../src/link/ws-frames.js';
import { listenWs, type WsListener } from '../../src/link/ws-server.js';
import { hex, toHex } from '../helpers/hex.js';
import { memoryLog, sendUntilOverflow, until } from './test-log.js';

const ARP_42 = hex`ffffffffffff 525400123456 0806 0001 0800 0604 0001 525400123456 0a00020f 000000000000 0a000202`;

describe('WebSocket frames link (real sockets on loopback)', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function server(): Promise<{ l: WsListener; links: GuestLink[]; got: string[]; closed: string[] }> {
    const { log } = memoryLog();
    const links: GuestLink[] = [];
    const got: string[] = [];
    const closed: string[] = [];
    const l = await listenWs({ host: '127.0.0.1', port: 0, log });
    l.route(
      '/',
      wsFramesRoute((link) => {
        links.push(link);
        return {
          frame: (f) => {
            got.push(toHex(f));
            link.send(f);
          },
          closed: (r) => closed.push(r),
        };
      }, log),
    );
    cleanup.push(() => l.close());
    return { l, links, got, closed };
  }

  async function open(url: string): Promise<{ ws: WebSocket; got: string[]; close: Promise<{ code: number; reason: string }> }> {
    const ws = new WebSocket(url);
    const got: string[] = [];
    ws.on('message', (d: Buffer, isBinary) => {
      if (isBinary) got.push(toHex(d));
    });
    const close = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    cleanup.push(() => {
      ws.terminate();
    });
    return { ws, got, close };
  }

  it('binds a free loopback port and prints its URL', async () => {
    const { l } = await server();
    expect(l.address.host).toBe('127.0.0.1');
    expect(l.address.url).toBe(`ws://127.0.0.1:${l.address.port}/`);
  });

  it('carries one frame per binary message both ways, runts included', async () => {
    const s = await server();
    const c = await open(s.l.address.url);
    c.ws.send(ARP_42);
    c.ws.send(ARP_42.subarray(0, 5));
    await until(() => c.got.length === 2);
    expect(s.got).toEqual([toHex(ARP_42), toHex(ARP_42.subarray(0, 5))]);
    expect(c.got).toEqual(s.got);
    expect(s.links[0]!.kind).toBe('ws');
    expect(s.links[0]!.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('writes its own frame headers: 7-, 16- and 64-bit lengths, in place through allocFrame and copied, in order', async () => {
    const s = await server();
    const c = await open(s.l.address.url);
    c.ws.send(ARP_42);
    await until(() => c.got.length === 1);
    const link = s.links[0]!;
    const sizes = [125, 126, 65535, 65536, MAX_FRAME_LEN];
    const sent: string[] = [];
    sizes.forEach((n, i) => {
      const f = i % 2 === 0 && link.allocFrame !== undefined ? link.allocFrame(n) : new Uint8Array(n);
      for (let k = 0; k < n; k += 97) f[k] = (k + i) & 0xff;
      sent.push(toHex(f));
      link.send(f);
    });
    await until(() => c.got.length === 1 + sizes.length, 10_000);
    expect(c.got.slice(1).map((h) => h.length / 2)).toEqual(sizes);
    expect(c.got.slice(1)).toEqual(sent);
  });

  it('closes with 1003 on a text message', async () => {
    const s = await server();
    const c = await open(s.l.address.url);
    c.ws.send('hello');
    const { code, reason } = await c.close;
    expect(code).toBe(1003);
    expect(reason).toBe(TEXT_REFUSED_REASON);
    expect(s.closed).toHaveLength(1);
    expect(s.links[0]!.counters.get('link.ws-text-message')).toBe(1);
  });

  it('closes with 1009 on a message above the maximum frame', async () => {
    const s = await server();
    const c = await open(s.l.address.url);
    c.ws.send(new Uint8Array(MAX_FRAME_LEN + 1));
    expect((await c.close).code).toBe(1009);
    await until(() => s.closed.length === 1);
    expect(s.got).toEqual([]);
  });

  it('refuses other paths with 404, and serves paths routed later', async () => {
    const s = await server();
    const base = `ws://127.0.0.1:${s.l.address.port}`;
    const refused = new WebSocket(`${base}/e1000`);
    const status = await new Promise<number | undefined>((r) => {
      refused.on('unexpected-response', (_req, res: http.IncomingMessage) => {
        r(res.statusCode);
      });
      refused.on('error', () => r(undefined));
    });
    expect(status).toBe(404);
    const seen: string[] = [];
    s.l.route('/e1000', {
      maxPayload: 1024,
      accept: (ws, req) => {
        seen.push(req.url ?? '');
        ws.close(1000, 'bye');
      },
    });
    const c = await open(`${base}/e1000?x=1`);
    expect((await c.close).code).toBe(1000);
    expect(seen).toEqual(['/e1000?x=1']);
  });

  it('answers a plain HTTP request with 426 on a routed path and 404 elsewhere', async () => {
    const s = await server();
    const get = (path: string): Promise<number | undefined> =>
      new Promise((r) => {
        http.get({ host: '127.0.0.1', port: s.l.address.port, path }, (res) => {
          res.resume();
          r(res.statusCode);
        }).on('error', () => r(undefined));
      });
    expect(await get('/')).toBe(426);
    expect(await get('/nope')).toBe(404);
  });

  it('refuses permessage-deflate', async () => {
    const s = await server();
    const ws = new WebSocket(s.l.address.url, { perMessageDeflate: true });
    cleanup.push(() => {
      ws.terminate();
    });
    await new Promise((r) => ws.once('open', r));
    expect(ws.extensions).toBe('');
  });

  it('drops outgoing frames beyond the send-buffer bound and counts them', async () => {
    const { log } = memoryLog();
    const links: GuestLink[] = [];
    const l = await listenWs({ host: '127.0.0.1', port: 0, log });
    cleanup.push(() => l.close());
    l.route(
      '/',
      wsFramesRoute(
        (link) => {
          links.push(link);
          return { frame: () => undefined, closed: () => undefined };
        },
        log,
        64 * 1024,
      ),
    );
    // A client that completes the handshake and then never reads.
    const s = net.connect(l.address.port, '127.0.0.1');
    cleanup.push(() => {
      s.destroy();
    });
    s.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await until(() => links.length === 1);
    s.pause();
    const link = links[0]!;
    await sendUntilOverflow(link);
    expect(link.counters.get('link.tx-overflow')).toBeGreaterThan(0);
  });

  it('closes its clients with 1001 when the listener closes', async () => {
    const s = await server();
    const c = await open(s.l.address.url);
    await until(() => s.links.length === 1);
    await s.l.close();
    expect((await c.close).code).toBe(1001);
    await until(() => s.closed.length === 1);
  });
});
