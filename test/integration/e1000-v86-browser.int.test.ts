/**
 * tslirp's e1000 in v86 in a real browser: Debian's `chromium`, headless, driven by
 * playwright-core, opens contrib/v86-e1000/index.html — the example page, unchanged — which
 * imports the browser bundle (dist/browser/tslirp-v86.js, built by scripts/build-browser.mjs)
 * and v86's own ES module, boots the i386 guest of scripts/e1000-v86-guest.sh with our e1000 on
 * v86's PCI bus and its frames on the daemon's WebSocket relay. The guest's stock `e1000.ko`
 * must get a lease, resolve host.tslirp.internal and ping the gateway.
 *
 * A loopback HTTP server serves the page, the bundle, v86's build, SeaBIOS and the guest (the
 * download guest of test/nic-e1000/v86-guest.ts; with no `tport` its download fails, which
 * this test does not look at). The daemon allows exactly the page's origin. Chromium's only
 * traffic is to 127.0.0.1 (every other host name unresolvable).
 */
import { createReadStream, existsSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { downloadGuest } from '../nic-e1000/v86-guest.js';
import { CACHE_DIR, command, daemon as daemonReq, file, missingRequirements, SEABIOS, shouldRun, tempDir, VGABIOS } from '../helpers/guests.js';
import { chromiumRequirement, launchChromium } from '../helpers/browser.js';

const GUEST = join(CACHE_DIR, 'e1000-v86-guest');
const BUNDLE = join(REPO_ROOT, 'dist', 'browser', 'tslirp-v86.js');
const missing = missingRequirements([
  daemonReq,
  command('cpio'),
  chromiumRequirement,
  file(BUNDLE, 'npm run build (scripts/build-browser.mjs)'),
  file(SEABIOS, 'apt-get install seabios'),
  file(VGABIOS, 'apt-get install seabios'),
  file(join(GUEST, 'bzImage'), 'build it with scripts/e1000-v86-guest.sh'),
  file(join(REPO_ROOT, 'node_modules', 'v86', 'build', 'libv86.mjs'), 'npm ci'),
]);
const enabled = shouldRun('e1000-v86-browser.int.test.ts (the e1000 in v86 in Chromium, through the relay)', missing);
// In Node a v86 boot to the guest's /init took 35–41 s unloaded and up to 230 s on the loaded
// 2 cores; the lease, the name and three pings add a few seconds. The limit keeps 3× over that.
const LIMIT_MS = 720_000;

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };

describe.skipIf(!enabled)('the e1000 in v86 in a browser page (bundle + example page)', () => {
  let dir: string;
  let guest: string;
  let server: http.Server;
  let origin = '';
  let d: Daemon;
  let context: import('playwright-core').BrowserContext | undefined;

  beforeAll(async () => {
    dir = tempDir('tslirp-e1000-browser-');
    guest = downloadGuest(GUEST, join(dir, 'guest'));
    // Only these prefixes are served: the page, the bundle, v86's build, SeaBIOS, the guest.
    const roots: [string, string][] = [
      ['/contrib/v86-e1000/', join(REPO_ROOT, 'contrib', 'v86-e1000')],
      ['/dist/browser/', join(REPO_ROOT, 'dist', 'browser')],
      ['/node_modules/v86/build/', join(REPO_ROOT, 'node_modules', 'v86', 'build')],
      ['/bios/', '/usr/share/seabios'],
      ['/guest/', guest],
    ];
    server = http.createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const root = roots.find(([prefix]) => path.startsWith(prefix));
      const target = root === undefined ? undefined : normalize(join(root[1], path.slice(root[0].length)));
      if (root === undefined || target === undefined || !target.startsWith(root[1]) || !existsSync(target) || !statSync(target).isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[/\.[a-z]+$/.exec(target)?.[0] ?? ''] ?? 'application/octet-stream', 'content-length': String(statSync(target).size) });
      createReadStream(target).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    d = await startDaemon(['--ws', '127.0.0.1:0', '--ws-allow-origin', origin], { startTimeoutMs: 30_000 });
    context = await launchChromium(join(dir, 'profile'));
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await d?.stop();
    server?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs', () => {
    expect(missing).toEqual([]);
  });

  it('the example page boots the guest; its e1000.ko gets a lease, a name and pings through the relay', async () => {
    const page = await context!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    try {
      await page.goto(`${origin}/contrib/v86-e1000/index.html?relay=${encodeURIComponent(d.wsUrl())}`, { timeout: 60_000 });
      const serial = async (): Promise<string> => page.evaluate(() => (globalThis as unknown as { serial: string }).serial);
      const started = Date.now();
      let text = '';
      while (Date.now() - started < LIMIT_MS) {
        text = await serial();
        if (/TSLIRP-PING-GW-(OK|FAIL)|TSLIRP-DONE|TSLIRP-NO-ETH0/.test(text)) break;
        const failed = await page.evaluate(() => (globalThis as unknown as { failed?: string }).failed);
        if (failed !== undefined) throw new Error(`the page failed: ${failed}`);
        await new Promise((r) => setTimeout(r, 2000));
      }
      const context = `page errors: ${problems.join('; ')}\nguest console:\n${text.slice(-5000)}\ndaemon:\n${d.dump().slice(-2000)}`;
      expect(text, context).not.toContain('TSLIRP-INSMOD-FAILED');
      expect(/TSLIRP-LEASE ([^\r\n]*)/.exec(text)?.[1], context).toBe('ip=10.0.2.15 subnet=255.255.255.0 router=10.0.2.2 dns=10.0.2.3');
      expect(text, context).toContain('TSLIRP-DNS host.tslirp.internal=10.0.2.2');
      expect(text, context).toContain('TSLIRP-PING-GW-OK');
      expect(problems, context).toEqual([]);
      expect(d.logs.filter((l) => l['msg'] === 'session started' && l['kind'] !== 'ws-e1000'), context).toHaveLength(1);
      console.log(`e1000-v86-browser: lease and pings ${((Date.now() - started) / 1000).toFixed(0)} s after the page loaded`);
    } finally {
      await page.close();
    }
  }, LIMIT_MS + 60_000);
});
