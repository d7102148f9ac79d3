import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer, forwardRequest, isLoopbackHost, MAX_BODY_BYTES, parseApiSpec } from '../../src/api/server.js';
import openapi from '../../src/api/openapi.json' with { type: 'json' };
import { Daemon } from '../../src/daemon/daemon.js';
import { networkSettings } from '../../src/daemon/networks.js';
import { frameStream } from '../../src/link/qemu-stream.js';
import { parseForwards } from '../../src/nat/forwards.js';
import { readCapture } from '../../src/pcap/reader.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { runCtl } from '../../src/cli/ctl.js';
import { parseCommandLine, UsageError } from '../../src/cli/options.js';
import { memoryLog, until } from '../link/test-log.js';
import { DHCP_DISCOVER } from '../daemon/dhcp-frames.js';
import { isDropReason } from '../../src/util/drop-reasons.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: () => unknown;
}

/** One HTTP request over a unix socket or TCP, with exactly the headers given (plus Host unless given). */
function request(to: { socketPath: string } | { port: number }, method: string, path: string, o: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...('port' in to ? { host: '127.0.0.1', port: to.port } : { socketPath: to.socketPath }), method, path, headers: o.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) as unknown });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const errorCode = (r: Reply): unknown => (r.json() as { error: { code: string } }).error.code;

/** A free TCP port on 127.0.0.1 (bound then released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('control API (a real daemon, loopback and unix sockets)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tslirp-api-'));
  const sock = join(dir, 'run', 'tslirp.sock');
  const apiSock = join(dir, 'run', 'api.sock');
  const logs = memoryLog('info');
  let d: Daemon;
  let api: ApiServer;
  let tcp: { port: number };
  const unix = { socketPath: apiSock };
  let cliPort = 0;

  beforeAll(async () => {
    cliPort = await freePort();
    const base = networkSettings(resolveStackConfig(), { forwards: parseForwards([`tcp::${cliPort}-:22`]) });
    d = await Daemon.start({ listeners: [{ kind: 'stream', transport: 'unix', path: sock }], network: base, defaultNetwork: 'lab', log: logs.log });
    api = await ApiServer.start({ listen: [{ kind: 'unix', path: apiSock }, { kind: 'tcp', host: '127.0.0.1', port: 0 }], control: d, log: logs.log, userAppl: 'tslirp test' });
    const a = api.addresses.find((x) => x.kind === 'tcp')!;
    tcp = { port: a.kind === 'tcp' ? a.port : 0 };
  });
  afterAll(async () => {
    await api.close();
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every route is in the OpenAPI document and every documented operation is answered', () => {
    const documented = Object.entries(openapi.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    expect([...api.routes].sort()).toEqual(documented);
  });

  it('documents every error code the server can answer', () => {
    const codes = openapi.components.schemas.Error.properties.error.properties.code.enum;
    expect([...codes].sort()).toEqual(['bad-field', 'bad-json', 'body-too-large', 'busy', 'conflict', 'forbidden-host', 'forbidden-origin', 'internal', 'method-not-allowed', 'not-found', 'unauthorized', 'unsupported-media-type']);
  });

  it('serves its OpenAPI document', async () => {
    const r = await request(unix, 'GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    expect((r.json() as { openapi: string }).openapi).toBe('3.1.0');
  });

  it('makes the unix socket mode 0600', () => {
    expect(statSync(apiSock).mode & 0o777).toBe(0o600);
  });

  it('lists the declared network and the command-line forward', async () => {
    const nets = (await request(unix, 'GET', '/v1/networks')).json() as { name: string; tftp: unknown }[];
    expect(nets.map((n) => n.name)).toEqual(['lab']);
    expect(nets[0]!.tftp).toBeNull();
    const fwd = (await request(unix, 'GET', '/v1/forwards')).json();
    expect(fwd).toMatchObject([{ id: 'cli-1', source: 'command-line', rule: `tcp::${cliPort}-:22`, bound: [`127.0.0.1:${cliPort}`], network: 'lab' }]);
  });

  it('adds a runtime forward (201), refuses its port a second time (409), removes it, and the port is free again', async () => {
    const port = await freePort();
    const add = await request(unix, 'POST', '/v1/forwards', { headers: JSON_HEADERS, body: JSON.stringify({ protocol: 'tcp', hostPort: port, guestPort: 80, network: 'lab' }) });
    expect(add.status).toBe(201);
    const created = add.json() as { id: string; bound: string[] };
    expect(created).toMatchObject({ source: 'api', bound: [`127.0.0.1:${port}`], network: 'lab', guestPorts: '80' });
    const again = await request(unix, 'POST', '/v1/forwards', { headers: JSON_HEADERS, body: JSON.stringify({ rule: `tcp::${port}-:81` }) });
    expect(again.status).toBe(409);
    expect(errorCode(again)).toBe('conflict');
    expect((again.json() as { error: { message: string } }).error.message).toContain('EADDRINUSE');
    const cli = await request(unix, 'POST', '/v1/forwards', { headers: JSON_HEADERS, body: JSON.stringify({ rule: `tcp::${cliPort}-:81` }) });
    expect(cli.status).toBe(409);
    expect(((await request(unix, 'GET', '/v1/forwards')).json() as unknown[]).length).toBe(2);
    const del = await request(unix, 'DELETE', `/v1/forwards/${created.id}`);
    expect(del.status).toBe(200);
    expect((await request(unix, 'DELETE', `/v1/forwards/${created.id}`)).status).toBe(404);
    expect((await request(unix, 'DELETE', '/v1/forwards/cli-1')).status).toBe(409);
    const s = net.createServer();
    await new Promise<void>((r, j) => { s.once('error', j); s.listen(port, '127.0.0.1', r); });
    await new Promise((r) => s.close(r));
  });

  it('answers a range forward with every port bound', async () => {
    const first = await freePort();
    const r = await request(unix, 'POST', '/v1/forwards', { headers: JSON_HEADERS, body: JSON.stringify({ hostPorts: `${first}-${first}`, guestPorts: '8000', network: 'lab' }) });
    expect(r.status).toBe(201);
    const id = (r.json() as { id: string }).id;
    expect((await request(unix, 'DELETE', `/v1/forwards/${id}`)).status).toBe(200);
  });

  it('refuses bad requests with the error shape and status the spec names', async () => {
    const cases: [string, string, { body?: string; headers?: Record<string, string> }, number, string][] = [
      ['GET', '/v1/nothing', {}, 404, 'not-found'],
      ['GET', '/index.html', {}, 404, 'not-found'],
      ['PUT', '/v1/sessions', {}, 405, 'method-not-allowed'],
      ['GET', '/v1/sessions/nope', {}, 404, 'not-found'],
      ['DELETE', '/v1/sessions/nope', {}, 404, 'not-found'],
      ['GET', '/v1/networks/nope', {}, 404, 'not-found'],
      ['GET', '/v1/flows?protocol=icmp', {}, 400, 'bad-field'],
      ['GET', '/v1/flows?network=nope', {}, 404, 'not-found'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: '{"hostPort":' }, 400, 'bad-json'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: '[]' }, 400, 'bad-field'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: '{"hostPort":99999,"guestPort":1}' }, 400, 'bad-field'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: '{"hostPort":1,"guestPort":1,"colour":"red"}' }, 400, 'bad-field'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: '{"rule":"tcp::1-2-:3"}' }, 400, 'bad-field'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: '{"rule":"tcp::1-:3","network":"nope"}' }, 404, 'not-found'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: '{"rule":"tcp::1-:3","session":"nope"}' }, 404, 'not-found'],
      ['POST', '/v1/forwards', { headers: JSON_HEADERS, body: 'x'.repeat(MAX_BODY_BYTES + 1) }, 413, 'body-too-large'],
    ];
    for (const [method, path, o, status, code] of cases) {
      const r = await request(unix, method, path, o);
      expect([method, path, r.status, errorCode(r)]).toEqual([method, path, status, code]);
    }
    const field = await request(unix, 'POST', '/v1/forwards', { headers: JSON_HEADERS, body: '{"hostPort":"80","guestPort":1}' });
    expect((field.json() as { error: { field: string } }).error.field).toBe('hostPort');
  });

  it('refuses a body sent in chunks past the limit (no Content-Length) and keeps serving', async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: apiSock, method: 'POST', path: '/v1/forwards', headers: { ...JSON_HEADERS, 'Transfer-Encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 40; i++) req.write('x'.repeat(4096));
      req.end();
    });
    expect(r).toBe(413);
    expect((await request(unix, 'GET', '/v1/sessions')).status).toBe(200);
  });

  it('TCP: refuses a foreign Host, a foreign Origin on a change, and a non-JSON body; allows its own origin', async () => {
    expect((await request(tcp, 'GET', '/v1/sessions')).status).toBe(200);
    expect(errorCode(await request(tcp, 'GET', '/v1/sessions', { headers: { Host: 'attacker.example' } }))).toBe('forbidden-host');
    expect(errorCode(await request(tcp, 'GET', '/v1/sessions', { headers: { Host: '10.1.2.3:80' } }))).toBe('forbidden-host');
    expect((await request(tcp, 'GET', '/v1/sessions', { headers: { Host: `localhost:${tcp.port}` } })).status).toBe(200);
    const foreign = await request(tcp, 'DELETE', '/v1/forwards/api-9', { headers: { Origin: 'http://attacker.example' } });
    expect([foreign.status, errorCode(foreign)]).toEqual([403, 'forbidden-origin']);
    const form = await request(tcp, 'POST', '/v1/forwards', { headers: { 'Content-Type': 'text/plain' }, body: '{"rule":"tcp::1-:1"}' });
    expect([form.status, errorCode(form)]).toEqual([415, 'unsupported-media-type']);
    const own = await request(tcp, 'DELETE', '/v1/forwards/api-9', { headers: { Origin: `http://127.0.0.1:${tcp.port}` } });
    expect(own.status).toBe(404);
  });

  it('streams a session as pcapng that the reader decodes, with the guest DHCP frame', async () => {
    const guest = net.connect(sock);
    await new Promise((r) => guest.once('connect', r));
    guest.on('data', () => undefined);
    await until(() => d.sessions.length === 1, 3000, 'session');
    const id = d.sessions[0]!.id;
    const chunks: Buffer[] = [];
    const req = http.request({ socketPath: apiSock, path: `/v1/sessions/${id}/capture` }, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
    });
    req.end();
    await until(() => chunks.length > 0, 3000, 'capture header');
    guest.write(frameStream([DHCP_DISCOVER]));
    await until(() => {
      const cap = readCapture(Buffer.concat(chunks));
      return typeof cap !== 'string' && cap.packets.length >= 2;
    }, 3000, 'captured DISCOVER and OFFER');
    const cap = readCapture(Buffer.concat(chunks));
    if (typeof cap === 'string') throw new Error(cap);
    expect(cap.interfaces.map((i) => i.name)).toEqual([id]);
    expect(Buffer.from(cap.packets[0]!.data).equals(Buffer.from(DHCP_DISCOVER))).toBe(true);
    const sessions = (await request(unix, 'GET', '/v1/sessions')).json();
    expect(sessions).toMatchObject([{ id, network: 'lab', link: { kind: 'stream' }, fromGuestFrames: 1, fromGuestBytes: DHCP_DISCOVER.length, toGuestFrames: 1 }]);
    // Disconnecting through the API ends the session and its capture.
    expect((await request(unix, 'DELETE', `/v1/sessions/${id}`)).status).toBe(200);
    await until(() => d.sessions.length === 0, 3000, 'session gone');
    req.destroy();
    guest.destroy();
  });

  it('exposes Prometheus metrics that count the session that ended, and promtool finds nothing to complain about', async () => {
    const r = await request(unix, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    const text = r.body.toString('utf8');
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    expect(value('tslirp_sessions')).toBe(0);
    expect(value('tslirp_networks')).toBe(1);
    expect(value('tslirp_frames_total{direction="from_guest"}')).toBe(1);
    expect(value('tslirp_bytes_total{direction="from_guest"}')).toBe(DHCP_DISCOVER.length);
    expect(value('tslirp_drops_total{reason="api.not-found"}')).toBeGreaterThan(0);
    expect(value('tslirp_forwards')).toBe(1);
    expect(text).toMatch(/^tslirp_nodejs_eventloop_lag_seconds /m);
    expect(text).toMatch(/^tslirp_process_resident_memory_bytes /m);
    expect(text).toMatch(/^tslirp_nodejs_heap_size_used_bytes /m);
    expect(text).toMatch(/^tslirp_dns_upstream_latency_seconds_bucket\{le="\+Inf"\} 0$/m);
    // No --tftp here: the TFTP series are there, at zero.
    expect(value('tslirp_tftp_requests_total')).toBe(0);
    expect(value('tslirp_tftp_transfers_total{outcome="completed"}')).toBe(0);
    expect(value('tslirp_tftp_data_sent_bytes_total')).toBe(0);
    expect(value('tslirp_gateway_events_total{event="portmap.created"}')).toBe(0);
    // Every drop reason is on the fixed list.
    const reasons = [...text.matchAll(/^tslirp_drops_total\{reason="([^"]+)"\}/gm)].map((m) => m[1]!);
    expect(reasons.length).toBeGreaterThan(0);
    expect(reasons.filter((r) => !isDropReason(r))).toEqual([]);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    if (promtool.error !== undefined && process.env['CI'] !== 'true') {
      console.warn(`SKIPPED promtool check metrics: ${promtool.error.message} (apt-get install prometheus)`);
      return;
    }
    expect({ status: promtool.status, out: promtool.stdout + promtool.stderr }).toEqual({ status: 0, out: '' });
  });

  it('tslirp ctl lists, adds and removes forwards; --json prints the API\'s JSON', async () => {
    const run = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
      const out = new PassThrough();
      const err = new PassThrough();
      let o = '';
      let e = '';
      out.on('data', (c: Buffer) => { o += c.toString(); });
      err.on('data', (c: Buffer) => { e += c.toString(); });
      const code = await runCtl(['--api', `unix:${apiSock}`, ...args], {}, out, err);
      return { code, out: o, err: e };
    };
    const port = await freePort();
    const added = await run('forward', 'add', `tcp::${port}-:80`);
    expect(added.code, added.err).toBe(0);
    expect(added.out).toMatch(new RegExp(`^ID +RULE +BOUND +NETWORK +REFUSED\\napi-\\d+ +tcp::${port}-:80 +127\\.0\\.0\\.1:${port} +lab +0\\n$`));
    const list = await run('--json', 'forwards');
    const forwards = JSON.parse(list.out) as { id: string; rule: string }[];
    expect(forwards.map((f) => f.rule)).toEqual([`tcp::${cliPort}-:22`, `tcp::${port}-:80`]);
    const taken = await run('forward', 'add', `tcp::${port}-:80`);
    expect(taken.code).toBe(1);
    expect(taken.err).toMatch(/^tslirp ctl: cannot listen on tcp 127\.0\.0\.1:\d+: EADDRINUSE \(409 conflict\)\n$/);
    expect((await run('forward', 'rm', forwards[1]!.id)).code).toBe(0);
    expect((await run('networks')).out).toMatch(/^NAME +NET +GATEWAY +SESSIONS +LEASES +TCP +UDP +MTU\nlab +10\.0\.2\.0\/24 +10\.0\.2\.2 +0 +0 +0 +0 +1500\n$/);
    expect(await run('bogus')).toMatchObject({ code: 2 });
    const down = new PassThrough();
    let downErr = '';
    down.on('data', (c: Buffer) => { downErr += c.toString(); });
    expect(await runCtl(['--api', `unix:${join(dir, 'nobody.sock')}`, 'sessions'], {}, new PassThrough(), down)).toBe(1);
    expect(downErr).toMatch(/^tslirp ctl: cannot reach the daemon's API at unix:.*nobody\.sock \(ENOENT\): is 'tslirp serve' running\?.*\n$/);
    // Without --api it looks where serve puts the default socket.
    const none = new PassThrough();
    let noneErr = '';
    none.on('data', (c: Buffer) => { noneErr += c.toString(); });
    expect(await runCtl(['sessions'], { XDG_RUNTIME_DIR: join(dir, 'xdg') }, new PassThrough(), none)).toBe(1);
    expect(noneErr).toContain(`unix:${join(dir, 'xdg', 'tslirp', 'api.sock')}`);
  });

  it('sends session.up and session.down as server-sent events', async () => {
    let text = '';
    const req = http.request({ socketPath: apiSock, path: '/v1/events' }, (res) => {
      expect(res.headers['content-type']).toBe('text/event-stream');
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
    });
    req.end();
    await until(() => text.includes('tslirp events'), 3000, 'stream open');
    const guest = net.connect(sock);
    await until(() => text.includes('event: session.up'), 3000, 'session.up');
    guest.destroy();
    await until(() => text.includes('event: session.down'), 3000, 'session.down');
    const up = /event: session.up\ndata: (.*)\n/.exec(text)![1]!;
    expect(JSON.parse(up)).toMatchObject({ network: 'lab', link: { kind: 'stream' } });
    req.destroy();
    await until(() => api.streamClients === 0, 3000, 'client gone');
  });
});

describe('control API: parsing and rules', () => {
  it('parses --api values', () => {
    expect(parseApiSpec('unix:/run/x/api.sock')).toEqual({ kind: 'unix', path: '/run/x/api.sock' });
    expect(parseApiSpec('tcp:127.0.0.1:8081')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8081 });
    expect(parseApiSpec('tcp:[::1]:0')).toEqual({ kind: 'tcp', host: '::1', port: 0 });
    for (const bad of ['unix:', 'tcp:localhost:80', 'tcp:127.0.0.1', 'tcp:127.0.0.1:70000', 'http://x']) expect(() => parseApiSpec(bad)).toThrow();
  });

  it('knows loopback Host headers', () => {
    for (const ok of ['localhost', 'localhost:8081', '127.0.0.1:1', '127.9.9.9', '[::1]:80', 'app.localhost']) expect(isLoopbackHost(ok)).toBe(true);
    for (const bad of [undefined, '', 'example.com', '10.0.0.1:80', '127.0.0.1.nip.io', 'localhost.evil.com', '[::2]']) expect(isLoopbackHost(bad)).toBe(false);
  });

  it('turns a forward body into a rule', () => {
    expect(forwardRequest({ hostPort: 8080, guestPort: 80 })).toEqual({ rule: 'tcp::8080-:80' });
    expect(forwardRequest({ protocol: 'udp', hostAddr: '127.0.0.2', hostPorts: '5000-5001', guestAddr: 'web', guestPorts: '6000-6001', session: 's1' })).toEqual({ rule: 'udp:127.0.0.2:5000-5001-web:6000-6001', session: 's1' });
    expect(() => forwardRequest({ hostPort: 8080, guestPort: 80, hostPorts: '1-2' })).toThrow(/not both/);
    expect(() => forwardRequest({ hostPort: 8080, guestAddr: '1.2.3.4:5', guestPort: 80 })).toThrow(/guestAddr/);
    expect(forwardRequest({ hostAddr: '::1', hostPort: 8080, guestAddr: '[fd00::15]', guestPort: 80 })).toEqual({ rule: 'tcp:[::1]:8080-[fd00::15]:80' });
    expect(() => forwardRequest({ hostAddr: '::1]', hostPort: 8080, guestPort: 80 })).toThrow(/hostAddr '::1\]' is not an IPv4 or IPv6 address/);
    expect(() => forwardRequest({ hostPort: 8080, guestAddr: 'fd00::1:80', guestPort: 80 })).not.toThrow(); // an address; the rule parser judges it
    expect(() => forwardRequest(null)).toThrow(/object/);
  });

  it('refuses a non-loopback TCP bind without a token', async () => {
    const log = memoryLog('info').log;
    const d = await Daemon.start({ listeners: [], network: networkSettings(resolveStackConfig()), log });
    await expect(ApiServer.start({ listen: [{ kind: 'tcp', host: '0.0.0.0', port: 0 }], control: d, log, userAppl: 'x' })).rejects.toThrow(/api-token-file/);
    await d.close();
  });

  it('with a token, refuses requests without it', async () => {
    const log = memoryLog('info').log;
    const d = await Daemon.start({ listeners: [], network: networkSettings(resolveStackConfig()), log });
    const api = await ApiServer.start({ listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }], control: d, log, userAppl: 'x', token: 'secret-token-0123456789' });
    const a = api.addresses[0]!;
    const port = a.kind === 'tcp' ? a.port : 0;
    try {
      expect((await request({ port }, 'GET', '/v1/sessions')).status).toBe(401);
      expect((await request({ port }, 'GET', '/v1/sessions', { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await request({ port }, 'GET', '/v1/sessions', { headers: { Authorization: 'Bearer secret-token-0123456789' } })).status).toBe(200);
    } finally {
      await api.close();
      await d.close();
    }
  });
});

describe('--api and --api-token-file', () => {
  it('default: api.sock beside the default stream socket; off: none; values parsed; bad ones named', () => {
    const env = { XDG_RUNTIME_DIR: '/run/user/7' };
    const def = parseCommandLine(['serve'], env);
    if (def.command !== 'serve') throw new Error('serve');
    expect(def.api).toEqual({ listen: [{ kind: 'unix', path: '/run/user/7/tslirp/api.sock' }], isDefault: true, tokenFile: undefined });
    expect(def.listeners).toContainEqual({ kind: 'stream', transport: 'unix', path: '/run/user/7/tslirp/tslirp.sock' });
    const off = parseCommandLine(['serve', '--api', 'off'], env);
    expect(off.command === 'serve' && off.api.listen).toEqual([]);
    const two = parseCommandLine(['serve', '--api', 'unix:/tmp/a.sock', '--api', 'tcp:127.0.0.1:8081', '--api-token-file', '/etc/t'], env);
    expect(two.command === 'serve' && two.api).toEqual({ listen: [{ kind: 'unix', path: '/tmp/a.sock' }, { kind: 'tcp', host: '127.0.0.1', port: 8081 }], isDefault: false, tokenFile: '/etc/t' });
    expect(() => parseCommandLine(['serve', '--api', 'tcp:nowhere'], env)).toThrow(UsageError);
    expect(() => parseCommandLine(['serve', '--api', 'off', '--api', 'unix:/x'], env)).toThrow(/off/);
  });
});
