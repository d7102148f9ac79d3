/**
 * A real browser against the daemon's WebSocket listener (issue 17, defect 2): a page served
 * from a loopback HTTP server on one port opens `new WebSocket('ws://127.0.0.1:PORT/')` to the
 * daemon on another, as any web page the user visits could. Chromium sends the page's Origin;
 * the daemon must refuse it by default and accept it with `--ws-allow-origin` naming that
 * page's origin, and then the page's DHCP DISCOVER must get an answer.
 *
 * Needs Debian's `chromium` (/usr/bin/chromium) and the npm `playwright-core` (a
 * devDependency) to drive it. Chromium runs headless, with a fresh profile, with background
 * networking off and every host name unresolvable: its only traffic is to 127.0.0.1.
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DHCP_DISCOVER } from '../daemon/dhcp-frames.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { chromiumRequirement, launchChromium } from '../helpers/browser.js';
import { daemon as daemonReq, missingRequirements, shouldRun, tempDir } from '../helpers/guests.js';

const missing = missingRequirements([daemonReq, chromiumRequirement]);
const enabled = shouldRun('ws-origin-browser.int.test.ts (a Chromium page opening a WebSocket to the daemon)', missing);

/** The page: opens a WebSocket to the daemon given in the query, sends a DISCOVER, reports what happened. */
const PAGE = `<!doctype html><title>tslirp origin test</title><script>
window.result = new Promise((resolve) => {
  const url = new URLSearchParams(location.search).get('ws');
  let ws;
  try { ws = new WebSocket(url); } catch (e) { resolve('throw:' + e); return; }
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => ws.send(new Uint8Array([${Array.from(DHCP_DISCOVER).join(',')}]));
  ws.onmessage = (e) => { resolve('message:' + e.data.byteLength); ws.close(); };
  ws.onerror = () => resolve('error');
  ws.onclose = (e) => resolve('close:' + e.code);
});
</script>`;

describe.skipIf(!enabled)('a browser page against the WebSocket listener', () => {
  let pageServer: http.Server;
  let pageOrigin = '';
  let profile: string;
  let context: BrowserContext | undefined;
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    pageServer = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(PAGE);
    });
    await new Promise<void>((r) => pageServer.listen(0, '127.0.0.1', r));
    pageOrigin = `http://127.0.0.1:${(pageServer.address() as net.AddressInfo).port}`;
    profile = tempDir('tslirp-chromium-');
    context = await launchChromium(profile);
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    for (const d of daemons) await d.stop();
    pageServer?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  });

  /** Opens the page with the daemon's URL and returns what its WebSocket did. */
  async function visit(wsUrl: string): Promise<string> {
    const page = await context!.newPage();
    try {
      await page.goto(`${pageOrigin}/?ws=${encodeURIComponent(wsUrl)}`, { timeout: 30_000 });
      return await page.evaluate(() => (globalThis as unknown as { result: Promise<string> }).result);
    } finally {
      await page.close();
    }
  }

  it('has what it needs (the built daemon, chromium, playwright-core)', () => {
    expect(missing).toEqual([]);
  });

  it('is refused by default: the handshake fails and the daemon logs the page origin', async () => {
    const d = await startDaemon(['--ws', '127.0.0.1:0'], { startTimeoutMs: 30_000 });
    daemons.push(d);
    expect(await visit(d.wsUrl())).toBe('error');
    const refused = d.logs.filter((l) => l['msg'] === 'ws: browser origin refused (allow it with --ws-allow-origin)');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ origin: pageOrigin, path: '/' });
    // The session never started.
    expect(d.logs.filter((l) => l['msg'] === 'session started')).toEqual([]);
  }, 60_000);

  it('is accepted with --ws-allow-origin naming the page origin, and gets an answer to its DISCOVER', async () => {
    const d = await startDaemon(['--ws', '127.0.0.1:0', '--ws-allow-origin', pageOrigin], { startTimeoutMs: 30_000 });
    daemons.push(d);
    expect(await visit(d.wsUrl())).toMatch(/^message:\d+$/);
    expect(d.logs.filter((l) => l['msg'] === 'session started')).toHaveLength(1);
    // A daemon that allows some other origin still refuses this page.
    const other = await startDaemon(['--ws', '127.0.0.1:0', '--ws-allow-origin', 'http://127.0.0.1:1'], { startTimeoutMs: 30_000 });
    daemons.push(other);
    expect(await visit(other.wsUrl())).toBe('error');
  }, 60_000);
});
