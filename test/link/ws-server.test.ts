import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admit, listenWs, normalizeOrigin, type WsListener } from '../../src/link/ws-server.js';
import { memoryLog, tryOpen, until } from './test-log.js';

async function listener(allowOrigins: readonly string[]): Promise<{ l: WsListener; url: string; logs: ReturnType<typeof memoryLog>; accepted: string[] }> {
  const logs = memoryLog('debug');
  const l = await listenWs({ host: '127.0.0.1', port: 0, log: logs.log, allowOrigins });
  const accepted: string[] = [];
  for (const path of ['/', '/e1000']) l.route(path, { maxPayload: 1024, accept: (ws) => { accepted.push(path); ws.close(); } });
  return { l, url: l.address.url, logs, accepted };
}

describe('normalizeOrigin', () => {
  it.each([
    ['http://localhost:8000', 'http://localhost:8000'],
    ['HTTP://LOCALHOST:8000/', 'http://localhost:8000'],
    ['http://localhost:80', 'http://localhost'],
    ['https://a.example:443', 'https://a.example'],
    ['https://a.example:8443', 'https://a.example:8443'],
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['http://[::1]:3000', 'http://[::1]:3000'],
    ['chrome-extension://ABCDEF', 'chrome-extension://abcdef'],
  ])('%s → %s', (text, origin) => {
    expect(normalizeOrigin(text)).toBe(origin);
  });

  it.each([['null'], [''], ['localhost:8000'], ['http://a.example/page'], ['http://u:p@a.example'], ['http://a.example/?x'], ['http://a.example/#x'], ['file:///tmp/x.html'], ['data:text/html,hi']])(
    'refuses %j',
    (text) => {
      expect(normalizeOrigin(text)).toBeUndefined();
    },
  );
});

describe('admit', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as Parameters<typeof admit>[0];
  it('lets in requests without an Origin, refuses any other unless allowed', () => {
    expect(admit(req({}), [])).toBeUndefined();
    expect(admit(req({ origin: 'https://evil.example' }), [])).toBe('ws.origin-refused');
    expect(admit(req({ origin: 'https://evil.example' }), ['https://good.example'])).toBe('ws.origin-refused');
    expect(admit(req({ origin: 'https://GOOD.example:443' }), ['https://good.example'])).toBeUndefined();
    expect(admit(req({ origin: 'null' }), ['https://good.example'])).toBe('ws.origin-refused');
    expect(admit(req({ origin: 'null' }), ['*'])).toBeUndefined();
    expect(admit(req({ origin: 'garbage' }), ['https://good.example'])).toBe('ws.origin-refused');
    expect(admit(req({ 'sec-websocket-origin': 'https://evil.example' }), [])).toBe('ws.origin-refused');
  });
});

describe('listenWs: browser origins', () => {
  it('refuses a foreign Origin with 403 on / and /e1000 by default, and accepts clients without one', async () => {
    const { l, url, logs, accepted } = await listener([]);
    try {
      expect(await tryOpen(url, { origin: 'https://evil.example' })).toBe(403);
      expect(await tryOpen(`${url}e1000`, { headers: { Origin: 'https://evil.example' } })).toBe(403);
      expect(await tryOpen(url, { headers: { Origin: 'null' } })).toBe(403);
      expect(accepted).toEqual([]);
      expect(await tryOpen(url)).toBe(101);
      expect(await tryOpen(`${url}e1000`)).toBe(101);
      expect(accepted).toEqual(['/', '/e1000']);
      expect(l.counters.get('ws.origin-refused')).toBe(3);
      // Rate-limited: three refusals in a burst make one line, naming the origin and the option.
      const lines = logs.withMsg('ws: browser origin refused (allow it with --ws-allow-origin)');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ origin: 'https://evil.example', path: '/', refused: 1, suppressed: 0, level: 40 });
    } finally {
      await l.close();
    }
  });

  it('accepts an allowed origin however it is spelled, and only that one', async () => {
    const { l, url } = await listener(['http://localhost:8000']);
    try {
      expect(await tryOpen(url, { origin: 'http://localhost:8000' })).toBe(101);
      expect(await tryOpen(`${url}e1000`, { origin: 'HTTP://LOCALHOST:8000' })).toBe(101);
      expect(await tryOpen(url, { origin: 'http://localhost:8001' })).toBe(403);
      expect(await tryOpen(url, { origin: 'https://localhost:8000' })).toBe(403);
      expect(await tryOpen(url, { origin: 'http://localhost' })).toBe(403);
    } finally {
      await l.close();
    }
  });

  it("accepts any origin, 'null' included, with '*'", async () => {
    const { l, url } = await listener(['*']);
    try {
      expect(await tryOpen(url, { origin: 'https://anything.example' })).toBe(101);
      expect(await tryOpen(`${url}e1000`, { headers: { Origin: 'null' } })).toBe(101);
    } finally {
      await l.close();
    }
  });
});

describe('listenWs: peers that reset', () => {
  let l: WsListener;
  let port = 0;
  beforeAll(async () => {
    ({ l } = await listener([]));
    port = l.address.port;
  });
  afterAll(async () => {
    await l.close();
  });

  it('survives a reset right after an upgrade request for an unknown path, and counts it', async () => {
    // Before the fix this raised an unhandled 'error' (write/read ECONNRESET) in this process.
    for (let i = 0; i < 5; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise<void>((r) => s.once('connect', r));
      s.write(`GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      s.resetAndDestroy();
    }
    await until(() => l.counters.get('ws.unknown-path') === 5, 5000, 'five refusals');
    expect(await tryOpen(l.address.url)).toBe(101);
  });

  it('answers 404 to an unknown path and ends the connection', async () => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => undefined);
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    let ended = false;
    s.on('end', () => (ended = true));
    await new Promise<void>((r) => s.once('connect', r));
    s.write(`GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await until(() => ended, 5000, 'the FIN after the 404');
    expect(got).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    s.destroy();
  });
});
