/**
 * The control API with real peers: a namespace guest (a Linux stack on a TAP, bridged by
 * socat over the dgram link) on network lab of the real daemon. Its lease, session and flow
 * appear through the API with the bytes it moved (the TAP's own counters, and the payload a
 * host server counted); a forward added at runtime reaches busybox httpd in the guest and,
 * removed, stops; `curl … | tshark -r -` decodes the guest's DHCP from a live capture;
 * `promtool check metrics` is clean; events arrive as server-sent events; hostile calls (bad
 * JSON, a huge body, unknown ids, a port in use, many event-stream clients at once) leave the
 * daemon serving the guest.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { chromium } from 'playwright-core';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, root, shouldRun, tempDir, until, which } from '../helpers/guests.js';
import { freeTcpPort, httpGet } from '../helpers/servers.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('tshark'), command('promtool'), command('ss'), command('chromium')]);
const enabled = shouldRun('api.int.test.ts (the control API with a namespace guest)', missing);

/** Event-stream clients opened at once in the hostile test (the spec's 1000; each is one socket and a listener). */
const EVENT_CLIENTS = 1000;
const UP_BYTES = 1 << 20;
const DOWN_BYTES = 1 << 20;

interface Reply {
  status: number;
  text: string;
  json: () => unknown;
}

function call(to: { socketPath: string } | { port: number }, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...('port' in to ? { host: '127.0.0.1', port: to.port } : { socketPath: to.socketPath }), method, path, headers, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) as unknown });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const JSON_TYPE = { 'Content-Type': 'application/json' };

describe.skipIf(!enabled)('control API with a namespace guest', () => {
  let d: Daemon;
  let g: NetnsGuest;
  let dir: string;
  let unix: { socketPath: string };
  let tcp: { port: number };
  let events = '';
  let eventsReq: http.ClientRequest | undefined;
  let capture: { curlPid: () => number; tshark: ReturnType<typeof spawn>; out: string; err: string } | undefined;
  const procs: Proc[] = [];
  let mac = '';
  let sessionId = '';

  beforeAll(async () => {
    dir = tempDir('tslirp-api-int-');
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--network', 'lab', '--api', `unix:${join(dir, 'api.sock')}`, '--api', 'tcp:127.0.0.1:0', '--log-level', 'info']);
    unix = { socketPath: join(dir, 'api.sock') };
    const listening = d.logs.find((l) => l['msg'] === 'listening')!;
    const apis = listening['api'] as { kind: string; port?: number }[];
    tcp = { port: apis.find((a) => a.kind === 'tcp')!.port! };
    // The event stream and the live capture start before the guest exists.
    eventsReq = http.request({ socketPath: unix.socketPath, path: '/v1/events' }, (res) => {
      res.setEncoding('utf8').on('data', (c: string) => { events += c; });
    });
    eventsReq.on('error', () => undefined);
    eventsReq.end();
    // A shell pipe, as a user types it (tshark refuses to read a socket, which a Node pipe is); curl's pid in a file to end it.
    const pidFile = join(dir, 'curl.pid');
    const tshark = spawn('sh', ['-c', '(curl -sN --unix-socket "$1" http://localhost/v1/networks/lab/capture & echo $! > "$2"; wait) | tshark -r - -Y dhcp -T fields -e eth.src -e dhcp.option.dhcp', 'sh', unix.socketPath, pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    capture = { curlPid: () => Number(readFileSync(pidFile, 'utf8')), tshark, out: '', err: '' };
    const c = capture;
    tshark.stdout.on('data', (b: Buffer) => { c.out += b.toString(); });
    tshark.stderr.on('data', (b: Buffer) => { c.err += b.toString(); });
    expect(await until(() => events.includes('tslirp events'), 10_000)).toBe(true);
    const l = d.listeners.find((x) => x.kind === 'dgram')!;
    if (!('port' in l)) throw new Error('no dgram listener');
    g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port });
    mac = (await g.sh('cat "/sys/class/net/$1/address"', [g.tap])).stdout.trim();
  }, 60_000);

  afterAll(async () => {
    eventsReq?.destroy();
    if (capture?.tshark.exitCode === null) {
      try { process.kill(capture.curlPid(), 'SIGKILL'); } catch { /* gone already */ }
      capture.tshark.kill('SIGKILL');
    }
    for (const p of procs) await p.stop();
    await g?.destroy();
    await d?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, curl, tshark, promtool, chromium, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('lists the guest\'s lease and session once it has its address', async () => {
    const { lease, result } = await g.dhcp();
    expect(lease, result.stdout + result.stderr).toMatchObject({ ip: '10.0.2.15' });
    const leases = (await call(unix, 'GET', '/v1/leases')).json();
    expect(leases).toMatchObject([{ network: 'lab', mac, address: '10.0.2.15', state: 'bound' }]);
    const sessions = (await call(unix, 'GET', '/v1/sessions')).json() as { id: string }[];
    expect(sessions).toMatchObject([{ network: 'lab', link: { kind: 'dgram' } }]);
    sessionId = sessions[0]!.id;
    expect(await until(() => events.includes('event: lease.granted'), 5_000), events).toBe(true);
    expect(events).toContain('event: session.up');
  }, 60_000);

  it('shows a flow with the bytes the guest moved, and the session\'s traffic matches the TAP\'s counters', async () => {
    let got = 0;
    let conn: net.Socket | undefined;
    const server = net.createServer((s) => {
      conn = s;
      s.on('data', (b) => {
        got += b.length;
        if (got === UP_BYTES) s.write(randomBytes(DOWN_BYTES));
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const up = join(dir, 'up');
    writeFileSync(up, randomBytes(UP_BYTES));
    // stdin stays open after the upload, so nc keeps the connection (and its flow) up.
    const nc = g.spawn('nc', ['sh', '-c', `(cat ${up}; sleep 30) | busybox nc 10.0.2.2 ${port} > /dev/null`]);
    procs.push(nc);
    try {
      interface Flow { session: string; protocol: string; state: string; guest: string; remote: string; host: string; local: string | null; bytesFromGuest: number; bytesToGuest: number; packetsFromGuest: number; packetsToGuest: number }
      let flows: Flow[] = [];
      const done = await until(() => {
        void call(unix, 'GET', `/v1/flows?session=${sessionId}&protocol=tcp`).then((r) => { flows = r.json() as Flow[]; });
        return flows.some((f) => f.bytesToGuest === DOWN_BYTES && f.bytesFromGuest === UP_BYTES);
      }, 30_000);
      expect(done, `${JSON.stringify(flows)}\nall flows: ${(await call(unix, 'GET', '/v1/flows')).text}\nhost got ${got}\nnc: ${nc.output}`).toBe(true);
      const f = flows.find((x) => x.bytesToGuest === DOWN_BYTES)!;
      expect(f).toMatchObject({ session: sessionId, protocol: 'tcp', state: 'established', remote: `10.0.2.2:${port}`, host: `127.0.0.1:${port}` });
      expect(f.guest).toMatch(/^10\.0\.2\.15:\d+$/);
      // The public side of the mapping: the endpoint the host server sees as its peer.
      expect(f.local).toBe(`127.0.0.1:${conn?.remotePort}`);
      expect(got).toBe(UP_BYTES);
      // Ethernet bytes: what the guest's TAP sent and received against what the session counted.
      const tap = async (what: string): Promise<number> => Number((await g.sh(`cat "/sys/class/net/$1/statistics/${what}"`, [g.tap])).stdout);
      const s = (await call(unix, 'GET', `/v1/sessions/${sessionId}`)).json() as { fromGuestBytes: number; toGuestBytes: number };
      const [tx, rx] = [await tap('tx_bytes'), await tap('rx_bytes')];
      expect(s.fromGuestBytes / tx, JSON.stringify({ s, tx, rx })).toBeGreaterThan(0.97);
      expect(s.fromGuestBytes / tx).toBeLessThan(1.03);
      expect(s.toGuestBytes / rx).toBeGreaterThan(0.97);
      expect(s.toGuestBytes / rx).toBeLessThan(1.03);
      // The flow's packets: at least one full segment per MSS each way, at most every frame the TAP counted.
      const [txp, rxp] = [await tap('tx_packets'), await tap('rx_packets')];
      expect(f.packetsFromGuest, JSON.stringify({ f, txp, rxp })).toBeGreaterThanOrEqual(Math.ceil(UP_BYTES / 1460));
      expect(f.packetsFromGuest).toBeLessThanOrEqual(txp);
      expect(f.packetsToGuest).toBeGreaterThanOrEqual(Math.ceil(DOWN_BYTES / 1460));
      expect(f.packetsToGuest).toBeLessThanOrEqual(rxp);
      // And against the payload: Ethernet, IP and TCP headers and the ACKs of the other direction add some 4-9 %.
      expect(s.fromGuestBytes / UP_BYTES).toBeGreaterThan(1);
      expect(s.fromGuestBytes / UP_BYTES).toBeLessThan(1.15);
      expect(s.toGuestBytes / DOWN_BYTES).toBeGreaterThan(1);
      expect(s.toGuestBytes / DOWN_BYTES).toBeLessThan(1.15);
      expect(await until(() => events.includes('event: flow.opened'), 5_000)).toBe(true);
    } finally {
      conn?.destroy();
      await nc.stop();
      await new Promise((r) => server.close(r));
    }
  }, 60_000);

  it('a forward added at runtime reaches busybox httpd in the guest; removed, it stops; a port in use is 409', async () => {
    const www = join(dir, 'www');
    spawnSync('mkdir', ['-p', www]);
    const page = `hello from the guest ${randomBytes(4).toString('hex')}\n`;
    writeFileSync(join(www, 'index.html'), page);
    const httpd = g.spawn('httpd', ['busybox', 'httpd', '-f', '-p', '80', '-h', www]);
    procs.push(httpd);
    expect(await until(() => spawnSync('ip', ['netns', 'exec', g.ns, 'ss', '-Hltn', 'sport = :80'], { encoding: 'utf8' }).stdout.trim() !== '', 10_000)).toBe(true);
    const port = await freeTcpPort();
    const add = await call(tcp, 'POST', '/v1/forwards', JSON.stringify({ protocol: 'tcp', hostAddr: '127.0.0.1', hostPort: port, guestPort: 80, network: 'lab' }), JSON_TYPE);
    expect(add.status, add.text).toBe(201);
    const id = (add.json() as { id: string }).id;
    expect(add.json()).toMatchObject({ id, bound: [`127.0.0.1:${port}`], network: 'lab' });
    expect(await httpGet(port, '/index.html')).toBe(page);
    const inUse = await call(tcp, 'POST', '/v1/forwards', JSON.stringify({ hostPort: port, guestPort: 80, network: 'lab' }), JSON_TYPE);
    expect(inUse.status).toBe(409);
    expect(inUse.text).toContain('EADDRINUSE');
    const del = await call(tcp, 'DELETE', `/v1/forwards/${id}`);
    expect(del.status).toBe(200);
    expect(await httpGet(port, '/index.html')).toBe('ERR ECONNREFUSED');
    expect(await until(() => events.includes('event: forward.removed'), 5_000)).toBe(true);
    expect(events).toContain('event: forward.added');
    await httpd.stop();
  }, 60_000);

  it('the live capture, read by tshark from curl, shows the guest\'s DHCP exchange', async () => {
    const c = capture!;
    process.kill(c.curlPid(), 'SIGTERM');
    const ended = await until(() => c.tshark.exitCode !== null, 20_000);
    expect(ended, c.err).toBe(true);
    const lines = c.out.trim().split('\n').map((l) => l.split('\t'));
    const types = lines.map((l) => l[1]);
    // DISCOVER (1), OFFER (2), REQUEST (3), ACK (5); the guest's frames carry its MAC.
    expect(types, c.out + c.err).toEqual(expect.arrayContaining(['1', '2', '3', '5']));
    expect(lines.filter((l) => l[1] === '1' || l[1] === '3').every((l) => l[0] === mac), c.out).toBe(true);
  }, 30_000);

  it('/metrics passes promtool and counts the guest', async () => {
    const r = await call(tcp, 'GET', '/metrics');
    expect(r.status).toBe(200);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8', timeout: 30_000 });
    expect({ status: check.status, out: check.stdout + check.stderr }).toEqual({ status: 0, out: '' });
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(r.text)?.[1] ?? NaN);
    expect(value('tslirp_sessions')).toBe(1);
    expect(value('tslirp_leases')).toBe(1);
    expect(value('tslirp_bytes_total{direction="from_guest"}')).toBeGreaterThan(UP_BYTES);
    expect(value('tslirp_bytes_total{direction="to_guest"}')).toBeGreaterThan(DOWN_BYTES);
  }, 30_000);

  it('the status page in Chromium shows the lease and flows, updates when a flow opens, and its form adds a working forward', async () => {
    const www = join(dir, 'www2');
    spawnSync('mkdir', ['-p', www]);
    const text = `page-made forward ${randomBytes(4).toString('hex')}\n`;
    writeFileSync(join(www, 'index.html'), text);
    const httpd = g.spawn('httpd2', ['busybox', 'httpd', '-f', '-p', '80', '-h', www]);
    procs.push(httpd);
    const conns: net.Socket[] = [];
    const server = net.createServer((c) => { conns.push(c); c.on('error', () => undefined); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const hold = (): Proc => {
      const p = g.spawn('nc-hold', ['sh', '-c', `(echo hi; sleep 60) | busybox nc 10.0.2.2 ${port} > /dev/null`]);
      procs.push(p);
      return p;
    };
    const first = hold();
    expect(await until(() => conns.length === 1, 10_000)).toBe(true);
    const browser = await chromium.launch({ executablePath: which('chromium')!, args: ['--no-sandbox', '--headless=new'] });
    try {
      const page = await browser.newPage();
      /** Waits (bounded: 15 s) until the text of `selector` satisfies `ok`. */
      const waitText = async (selector: string, ok: (t: string) => boolean, what: string): Promise<void> => {
        const end = Date.now() + 15_000;
        let t = '';
        while (Date.now() < end) {
          t = (await page.textContent(selector)) ?? '';
          if (ok(t)) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`${what}: ${selector} says ${t}`);
      };
      const count = (t: string, part: string): number => t.split(part).length - 1;
      await page.goto(`http://127.0.0.1:${tcp.port}/`);
      await waitText('#leases', (t) => t.includes('10.0.2.15'), 'the lease');
      expect(await page.textContent('#leases')).toContain(mac);
      await waitText('#flows', (t) => count(t, `10.0.2.2:${port}`) === 1, 'the open flow');
      // A second flow opens while the page is open: it shows up.
      const second = hold();
      expect(await until(() => conns.length === 2, 10_000)).toBe(true);
      await waitText('#flows', (t) => count(t, `10.0.2.2:${port}`) === 2, 'the new flow');
      // The form adds a forward that reaches httpd in the guest.
      const fwdPort = await freeTcpPort();
      await page.fill('input[name=hostPort]', String(fwdPort));
      await page.fill('input[name=guestPort]', '80');
      await page.fill('input[name=network]', 'lab');
      await page.click('button[type=submit]');
      await waitText('#form-result', (t) => t.startsWith('added api-'), 'the form\'s answer');
      await waitText('#forwards', (t) => t.includes(`127.0.0.1:${fwdPort}`), 'the new forward');
      expect(await httpGet(fwdPort, '/index.html')).toBe(text);
      await first.stop();
      await second.stop();
    } finally {
      await browser.close();
      for (const c of conns) c.destroy();
      await new Promise((r) => server.close(r));
      await httpd.stop();
    }
  }, 90_000);

  it('hostile calls leave the daemon serving the guest', async () => {
    const cases: [string, string, string | Buffer | undefined, Record<string, string>, number][] = [
      ['POST', '/v1/forwards', '{"hostPort": 80', JSON_TYPE, 400],
      ['POST', '/v1/forwards', Buffer.alloc(8 << 20, 0x61), JSON_TYPE, 413],
      ['POST', '/v1/forwards', '{"hostPort":80,"guestPort":80}', { 'Content-Type': 'application/x-www-form-urlencoded' }, 415],
      ['GET', '/v1/sessions/no-such-session', undefined, {}, 404],
      ['DELETE', '/v1/forwards/api-999', undefined, {}, 404],
      ['GET', '/v1/networks/nope/capture', undefined, {}, 404],
      ['GET', '/v1/sessions', undefined, { Host: 'rebound.example.com' }, 403],
      ['DELETE', `/v1/sessions/${sessionId}`, undefined, { Origin: 'http://evil.example' }, 403],
    ];
    for (const [method, path, body, headers, status] of cases) {
      const r = await call(tcp, method, path, body, headers).catch((e: unknown) => ({ status: -1, text: String(e), json: () => undefined }));
      // A huge body may be answered and the connection closed before it was all sent: EPIPE/ECONNRESET is a refusal too.
      if (status === 413 && r.status === -1) expect(r.text).toMatch(/EPIPE|ECONNRESET/);
      else expect([method, path, r.status], r.text).toEqual([method, path, status]);
    }
    // Many event-stream clients at once; then the guest still reaches the gateway and the API answers.
    const agent = new http.Agent({ maxSockets: Infinity });
    const clients: http.ClientRequest[] = [];
    let open = 0;
    for (let i = 0; i < EVENT_CLIENTS; i++) {
      const req = http.request({ socketPath: unix.socketPath, path: '/v1/events', agent }, (res) => {
        open++;
        res.resume();
      });
      req.on('error', () => undefined);
      req.end();
      clients.push(req);
    }
    try {
      expect(await until(() => open === EVENT_CLIENTS, 30_000), `${open} of ${EVENT_CLIENTS} open`).toBe(true);
      const ping = await g.exec(['busybox', 'ping', '-c', '3', '-i', '0.5', '-W', '3', '10.0.2.2'], 20_000);
      expect(ping.stdout, ping.stdout + ping.stderr).toMatch(/3 packets received/);
      // The guest moves a frame: every client gets a flow event within the bounded queues.
      expect((await call(unix, 'GET', '/v1/sessions')).status).toBe(200);
    } finally {
      for (const c of clients) c.destroy();
      agent.destroy();
    }
    expect(await until(() => d.alive(), 1000)).toBe(true);
    expect(d.logsAtLeast(50), JSON.stringify(d.logsAtLeast(50))).toEqual([]);
    expect(d.otherOutput.join('\n')).not.toMatch(/Warning|Error/);
    expect((await call(unix, 'GET', '/v1/leases')).json()).toMatchObject([{ address: '10.0.2.15' }]);
  }, 90_000);
});
