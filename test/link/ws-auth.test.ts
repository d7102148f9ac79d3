import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { presentedToken, tokenMayJoin, WsTokens } from '../../src/link/ws-auth.js';
import { clientAddress, listenWs, type WsListener } from '../../src/link/ws-server.js';
import { parseCidr, type Cidr } from '../../src/net/cidr.js';
import { runs } from '../helpers/fuzz.js';
import { memoryLog, tryOpen, type MemoryLog } from './test-log.js';

const ALICE = 'alice-0123456789abcdef';
const BOB = 'bob-0123456789abcdef-lab';
const FILE = `# tokens\n\n${ALICE}\n  ${BOB}   network=lab,lab2\n`;

const req = (url: string, headers: Record<string, string> = {}): http.IncomingMessage => ({ url, headers }) as unknown as http.IncomingMessage;

describe('WsTokens.parse', () => {
  it('reads tokens, comments, blank lines and network lists', () => {
    const t = WsTokens.parse(FILE);
    expect(t.size).toBe(2);
    expect(t.check(req(`/?token=${ALICE}`))).toEqual({ ok: true, line: 3, networks: undefined });
    const bob = t.check(req('/', { authorization: `Bearer ${BOB}` }));
    expect(bob.ok && [...(bob.networks ?? [])]).toEqual(['lab', 'lab2']);
  });

  it.each([
    ['short-token', /line 1: a token must be 16/],
    [`${ALICE}\n${ALICE}`, /line 2: the same token appears twice/],
    [`${ALICE} lab`, /line 1: after the token only network=/],
    [`${ALICE} network=Bad!`, /line 1: .*network name/i],
    [`${ALICE} network=a network=b`, /line 1: after the token only/],
    ['# only a comment\n', /holds no token/],
    ['x'.repeat(300), /line 1: a token must be/],
    [`${ALICE}é`, /printable ASCII/],
  ])('refuses %j, naming the line', (text, why) => {
    expect(() => WsTokens.parse(text)).toThrow(why);
  });

  it('property: never throws anything but an Error with a reason, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        try {
          WsTokens.parse(text);
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect((e as Error).message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('check and presentedToken', () => {
  const t = WsTokens.parse(FILE);
  it('takes a Bearer header before the URL, and says which failure it was', () => {
    expect(presentedToken(req(`/?token=x`, { authorization: `Bearer ${ALICE}` }))).toBe(ALICE);
    expect(presentedToken(req(`/?network=lab&token=${BOB}`))).toBe(BOB);
    expect(t.check(req('/'))).toEqual({ ok: false, reason: 'ws.token-missing' });
    expect(t.check(req('/', { authorization: 'Basic abc' }))).toEqual({ ok: false, reason: 'ws.token-missing' });
    expect(t.check(req(`/?token=${ALICE}x`))).toEqual({ ok: false, reason: 'ws.token-refused' });
    expect(t.check(req(`/?token=${ALICE.slice(0, -1)}`))).toEqual({ ok: false, reason: 'ws.token-refused' });
  });

  it('a token with a network list joins only those networks, never a private one', () => {
    expect(tokenMayJoin(undefined, undefined)).toBe(true);
    expect(tokenMayJoin(undefined, 'any')).toBe(true);
    expect(tokenMayJoin(new Set(['lab']), 'lab')).toBe(true);
    expect(tokenMayJoin(new Set(['lab']), 'other')).toBe(false);
    expect(tokenMayJoin(new Set(['lab']), undefined)).toBe(false);
  });
});

describe('listenWs with tokens', () => {
  let l: WsListener;
  let logs: MemoryLog;
  let tokens: WsTokens | undefined = WsTokens.parse(FILE);
  beforeAll(async () => {
    logs = memoryLog('debug');
    l = await listenWs({ host: '127.0.0.1', port: 0, log: logs.log, tokens: () => tokens, network: undefined });
    for (const path of ['/', '/e1000']) l.route(path, { maxPayload: 1024, accept: (ws) => ws.close() });
  });
  afterAll(async () => {
    await l.close();
  });

  it('401 without a token or with a wrong one, on every path; 101 with a right one', async () => {
    const base = l.address.url;
    expect(await tryOpen(base)).toBe(401);
    expect(await tryOpen(`${base}e1000`)).toBe(401);
    expect(await tryOpen(`${base}?token=wrong-token-0123456789`)).toBe(401);
    expect(await tryOpen(`${base}?token=${ALICE}`)).toBe(101);
    expect(await tryOpen(`${base}e1000?token=${ALICE}`)).toBe(101);
    expect(await tryOpen(base, { headers: { Authorization: `Bearer ${ALICE}` } })).toBe(101);
    expect(l.counters.get('ws.token-missing')).toBe(2);
    expect(l.counters.get('ws.token-refused')).toBe(1);
  });

  it('a foreign Origin gets 403 before the token is looked at', async () => {
    const before = l.counters.get('ws.token-missing');
    expect(await tryOpen(l.address.url, { origin: 'https://evil.example' })).toBe(403);
    expect(l.counters.get('ws.origin-refused')).toBe(1);
    expect(l.counters.get('ws.token-missing')).toBe(before);
  });

  it("a token's network list decides where it may go: 403 elsewhere, and for a private network", async () => {
    const base = l.address.url;
    expect(await tryOpen(`${base}?network=lab&token=${BOB}`)).toBe(101);
    expect(await tryOpen(`${base}?network=lab2`, { headers: { Authorization: `Bearer ${BOB}` } })).toBe(101);
    expect(await tryOpen(`${base}?network=other&token=${BOB}`)).toBe(403);
    expect(await tryOpen(`${base}?token=${BOB}`)).toBe(403);
    expect(await tryOpen(`${base}?network=other&token=${ALICE}`)).toBe(101);
    expect(l.counters.get('ws.network-not-allowed')).toBe(2);
  });

  it('never writes a token into a log line', () => {
    const text = JSON.stringify(logs.records);
    expect(text).not.toContain(ALICE);
    expect(text).not.toContain(BOB);
    expect(text).not.toContain('wrong-token');
    expect(logs.records.some((r) => String(r['reason']).startsWith('ws.token-'))).toBe(true);
  });

  it('reads the tokens at each request: a reload takes effect at once', async () => {
    const NEW = 'carol-0123456789abcdef';
    tokens = WsTokens.parse(NEW);
    expect(await tryOpen(`${l.address.url}?token=${ALICE}`)).toBe(401);
    expect(await tryOpen(`${l.address.url}?token=${NEW}`)).toBe(101);
    tokens = undefined; // no token file: open again
    expect(await tryOpen(l.address.url)).toBe(101);
  });
});

describe('listenWs over TLS', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tslirp-tls-'));
    // A self-signed certificate for 127.0.0.1 (openssl comes with Debian's ca-certificates).
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore', timeout: 30_000 });
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves wss:// with the certificate, tokens checked the same way; a client that does not trust it fails', async () => {
    const cert = readFileSync(join(dir, 'cert.pem'));
    const logs = memoryLog('debug');
    const tokens = WsTokens.parse(ALICE);
    const l = await listenWs({ host: '127.0.0.1', port: 0, log: logs.log, tokens: () => tokens, tls: { cert, key: readFileSync(join(dir, 'key.pem')) } });
    l.route('/', { maxPayload: 1024, accept: (ws) => ws.close() });
    try {
      expect(l.address.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/$/);
      expect(await tryOpen(`${l.address.url}?token=${ALICE}`, { ca: cert })).toBe(101);
      expect(await tryOpen(l.address.url, { ca: cert })).toBe(401);
      expect(await tryOpen(`${l.address.url}?token=${ALICE}`)).toBe(0); // self-signed, not trusted by default
      expect(await tryOpen(l.address.url.replace('wss:', 'ws:') + `?token=${ALICE}`)).toBe(0); // plain HTTP to a TLS port
    } finally {
      await l.close();
    }
  });
});

describe('clientAddress behind trusted proxies', () => {
  const r = (remote: string, xff?: string): http.IncomingMessage =>
    ({ socket: { remoteAddress: remote }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as http.IncomingMessage;
  const trusted = ['127.0.0.1', '10.9.0.0/16', '::1'].map((t) => parseCidr(t) as Cidr);

  it('takes the rightmost untrusted X-Forwarded-For entry from a trusted proxy only', () => {
    expect(clientAddress(r('127.0.0.1', '203.0.113.7'), trusted)).toBe('203.0.113.7');
    expect(clientAddress(r('::ffff:127.0.0.1', '1.1.1.1, 203.0.113.7, 10.9.1.2'), trusted)).toBe('203.0.113.7'); // the client's own claim (1.1.1.1) is ignored
    expect(clientAddress(r('198.51.100.1', '203.0.113.7'), trusted)).toBe('198.51.100.1'); // not a trusted proxy: header ignored
    expect(clientAddress(r('127.0.0.1'), trusted)).toBe('127.0.0.1');
    expect(clientAddress(r('127.0.0.1', '203.0.113.7'), [])).toBe('127.0.0.1'); // no --trusted-proxy
    expect(clientAddress(r('127.0.0.1', 'garbage, 203.0.113.7'), trusted)).toBe('203.0.113.7');
    expect(clientAddress(r('127.0.0.1', '203.0.113.7, garbage'), trusted)).toBe('127.0.0.1'); // malformed nearest hop: stop at the proxy
    expect(clientAddress(r('::1', '2001:db8::9'), trusted)).toBe('2001:db8::9');
    expect(clientAddress(r('127.0.0.1', '10.9.0.1, 10.9.0.2'), trusted)).toBe('10.9.0.1'); // all trusted: the leftmost
  });

  it('property: never throws, and answers the remote or one of the header entries', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 })), { maxLength: 40 }), (hops) => {
        const a = clientAddress(r('127.0.0.1', hops.join(', ')), trusted);
        expect(a === '127.0.0.1' || hops.map((h) => h.trim().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')).includes(a)).toBe(true);
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('a daemon behind a trusted proxy limits sessions per real client', () => {
  it('counts X-Forwarded-For clients against --max-sessions-per-source', async () => {
    const { Daemon } = await import('../../src/daemon/daemon.js');
    const { networkSettings } = await import('../../src/daemon/networks.js');
    const { resolveStackConfig } = await import('../../src/stack/config.js');
    const logs = memoryLog('info');
    const d = await Daemon.start({
      listeners: [{ kind: 'ws', host: '127.0.0.1', port: 0 }], network: networkSettings(resolveStackConfig()), log: logs.log,
      trustedProxies: [parseCidr('127.0.0.1') as Cidr], maxSessionsPerSource: 2,
    });
    const a = d.addresses[0]!;
    const url = a.kind === 'ws' ? a.url : '';
    const open: WebSocket[] = [];
    const connect = (client: string): Promise<'open' | 'closed'> =>
      new Promise((resolve) => {
        const ws = new WebSocket(url, { headers: { 'X-Forwarded-For': client } });
        open.push(ws);
        ws.on('close', () => resolve('closed'));
        ws.on('open', () => setTimeout(() => resolve(ws.readyState === WebSocket.OPEN ? 'open' : 'closed'), 300));
        ws.on('error', () => resolve('closed'));
      });
    try {
      expect(await connect('203.0.113.7')).toBe('open');
      expect(await connect('203.0.113.7')).toBe('open');
      expect(await connect('203.0.113.7')).toBe('closed');
      expect(await connect('203.0.113.8')).toBe('open');
      expect(logs.withMsg('link refused')[0]).toMatchObject({ reason: 'session.per-source-limit', peer: expect.stringMatching(/^203\.0\.113\.7:\d+$/) as unknown });
    } finally {
      for (const ws of open) ws.terminate();
      await d.close();
    }
  });
});

describe('WebSocket liveness', () => {
  async function route(liveness: { idleTimeoutMs: number; pingIntervalMs: number }) {
    const { wsFramesRoute } = await import('../../src/link/ws-frames.js');
    const logs = memoryLog('info');
    const l = await listenWs({ host: '127.0.0.1', port: 0, log: logs.log });
    const reasons: string[] = [];
    l.route('/', wsFramesRoute(() => ({ frame: () => undefined, closed: (r: string) => reasons.push(r) }), logs.log, undefined, liveness));
    return { l, reasons };
  }

  it('closes a session whose client sends nothing for the idle timeout; one that keeps sending stays', async () => {
    // 1.5 s: the busy client sends every 50 ms, far inside it even on a loaded machine.
    const { l, reasons } = await route({ idleTimeoutMs: 1500, pingIntervalMs: 100 });
    const idle = new WebSocket(l.address.url);
    const busy = new WebSocket(l.address.url);
    await Promise.all([idle, busy].map((ws) => new Promise((r) => ws.once('open', r))));
    const idleClosed = new Promise<number>((r) => idle.once('close', (code) => r(code)));
    const pump = setInterval(() => busy.send(Buffer.alloc(60)), 50);
    try {
      expect(await idleClosed).toBe(1000);
      expect(reasons).toEqual(['idle timeout']);
      expect(busy.readyState).toBe(WebSocket.OPEN);
    } finally {
      clearInterval(pump);
      idle.terminate();
      busy.terminate();
      await l.close();
    }
  });

  it('cuts off a peer that stops answering pings, whatever the idle timeout', async () => {
    const { l, reasons } = await route({ idleTimeoutMs: 0, pingIntervalMs: 100 });
    // autoPong off: the client answers no ping, as a vanished peer would not.
    const mute = new WebSocket(l.address.url, { autoPong: false });
    await new Promise((r) => mute.once('open', r));
    const closed = new Promise<void>((r) => mute.once('close', () => r()));
    try {
      await closed;
      expect(reasons).toEqual(['no pong (peer gone)']);
    } finally {
      mute.terminate();
      await l.close();
    }
  });
});
