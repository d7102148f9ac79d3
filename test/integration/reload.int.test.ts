/**
 * SIGHUP with --config, with real peers: a namespace guest (a Linux stack on a TAP, bridged by
 * socat over the dgram link) whose curl to a host server through the gateway is refused by an
 * --egress-deny rule of the config file; the file is edited and the daemon sent SIGHUP, and
 * the same session's curl gets through; a file that does not parse changes nothing; the
 * session limit, the log level, the DNS records, the lease bound and the plain forwards (busybox
 * httpd in the guest reached from the host, then not) change live; an option that needs a
 * restart is named and left as it was; the first session's recording (--record) replays with
 * no difference, its reloads included. The daemon is the built one (dist/).
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_ENTRY, startDaemon, type Daemon, type LogRecord } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, root, run, shouldRun, tempDir, until, type RunResult } from '../helpers/guests.js';
import { freeTcpPort, httpd } from '../helpers/servers.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('ss')]);
const enabled = shouldRun('reload.int.test.ts (SIGHUP reloads the config file, with a namespace guest)', missing);

/**
 * "At once": a refusal answered by RST takes milliseconds; a connection that went out and hung
 * would take curl's whole --connect-timeout (20 s). 8 s leaves a loaded 2-core machine a wide
 * margin while telling the two apart (public.int.test.ts uses the same bound).
 */
const AT_ONCE_MS = 8_000;
const out = (r: RunResult): string => `${r.stdout}${r.stderr}${r.timedOut ? ' (timed out)' : ''}`;

/** GET http://127.0.0.1:PORT/ from the host: the body, or `ERR CODE`. */
function hostGet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(`ERR ${(e as NodeJS.ErrnoException).code ?? e.message}`));
  });
}

async function curl(g: NetnsGuest, url: string): Promise<{ code: number | null; body: string; ms: number; r: RunResult }> {
  const t0 = Date.now();
  const r = await g.exec(['curl', '-sS', '--connect-timeout', '20', '-m', '30', url], 40_000);
  return { code: r.code, body: r.stdout, ms: Date.now() - t0, r };
}

describe.skipIf(!enabled)('SIGHUP reloads the config file (a namespace guest)', () => {
  let dir: string;
  let cfg: string;
  let server: http.Server;
  let port: number;
  let d: Daemon;
  const guests: NetnsGuest[] = [];
  const procs: Proc[] = [];

  /** Writes the config file, sends SIGHUP and returns the log line that answers it. */
  async function reload(config: string | object, answer = /^SIGHUP: configuration (reloaded|not reloaded)/): Promise<LogRecord> {
    writeFileSync(cfg, typeof config === 'string' ? config : JSON.stringify(config));
    const before = d.logs.length;
    process.kill(d.pid, 'SIGHUP');
    let line: LogRecord | undefined;
    await until(() => (line = d.logs.slice(before).find((l) => answer.test(String(l['msg'])))) !== undefined, 10_000);
    expect(line, d.dump().slice(-3000)).toBeDefined();
    return line!;
  }

  beforeAll(async () => {
    dir = tempDir('tslirp-reload-');
    cfg = join(dir, 'tslirp.json');
    server = http.createServer((_req, res) => res.end('hello from the host\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    writeFileSync(cfg, JSON.stringify({ 'egress-deny': [`127.0.0.1,port=${port}`], 'max-sessions': 4 }));
    // No --log-level on the command line: it would win over the file's.
    d = await startDaemon(['--config', cfg, '--dgram', 'udp:127.0.0.1:0', '--ws', '127.0.0.1:0', '--record', join(dir, 'rec')]);
  });
  afterAll(async () => {
    for (const p of procs) await p.stop();
    for (const g of guests) await g.destroy();
    await d?.stop();
    server?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, curl, ss, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('an egress rule of the file refuses, the edited file allows, the session stays up; a bad file changes nothing', async () => {
    const l = d.dgram();
    const g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port });
    guests.push(g);
    const { lease, result } = await g.dhcp();
    expect(lease?.['ip'], out(result)).toBe('10.0.2.15');
    const url = `http://10.0.2.2:${port}/`;

    const refused = await curl(g, url);
    expect(refused.code, out(refused.r)).toBe(7);
    expect(refused.ms).toBeLessThan(AT_ONCE_MS);

    // Allowed now; the MTU changes in the file too, which needs a restart.
    const ok = await reload({ 'egress-allow': [`127.0.0.1,port=${port}`], 'max-sessions': 4, mtu: 9000 });
    expect(ok['msg']).toBe('SIGHUP: configuration reloaded');
    expect(ok['changed']).toEqual(['egress-allow/egress-deny']);
    expect(ok['needRestart']).toEqual(['mtu']);
    expect(d.logs.some((x) => String(x['msg']).includes('--mtu changed in the file but only a restart applies it'))).toBe(true);
    const got = await curl(g, url);
    expect(got.code, `${out(got.r)}\n${d.dump().slice(-3000)}`).toBe(0);
    expect(got.body).toBe('hello from the host\n');
    // The MTU stayed: the guest's lease says 1500.
    expect((await g.dhcp()).lease?.['mtu'] ?? '1500').toBe('1500');

    // A file that does not parse: nothing changes (the rule that allows stays), and the log says why.
    const bad = await reload({ 'egress-deny': [`127.0.0.1/40`] });
    expect(bad['msg']).toBe('SIGHUP: configuration not reloaded, nothing changed');
    expect(String(bad['reason'])).toMatch(/egress-deny/);
    expect(String((await reload('{"egress-deny": '))['reason'])).toMatch(/not JSON/);
    const still = await curl(g, url);
    expect(still.code, out(still.r)).toBe(0);

    // Denied again by the next good file.
    await reload({ 'egress-deny': [`127.0.0.1,port=${port}`], 'max-sessions': 4 });
    const again = await curl(g, url);
    expect(again.code, out(again.r)).toBe(7);
    expect(again.ms).toBeLessThan(AT_ONCE_MS);

    // One session all along.
    expect(d.logs.filter((x) => x['msg'] === 'session started')).toHaveLength(1);
    expect(d.logs.filter((x) => x['msg'] === 'session ended')).toHaveLength(0);
    expect(d.alive(), d.dump()).toBe(true);
  }, 180_000);

  it('--dns-record changes live: the guest\'s resolver gets the new name from the gateway', async () => {
    const g = guests[0]!;
    const lookup = async (): Promise<string> => out(await g.exec(['busybox', 'nslookup', 'web.reload.test', '10.0.2.3'], 20_000));
    expect(await lookup()).not.toMatch(/10\.9\.9\.9/);
    const r = await reload({ 'egress-deny': [`127.0.0.1,port=${port}`], 'max-sessions': 4, 'dns-record': ['web.reload.test=10.9.9.9'] });
    expect(r['changed']).toEqual(['dns-record']);
    expect(await lookup()).toMatch(/Address:? (1: )?10\.9\.9\.9/);
  }, 60_000);

  it('--hostfwd changes live: a rule added reaches busybox httpd in the guest, removed it stops; a port in use changes nothing', async () => {
    const g = guests[0]!;
    const www = join(dir, 'www');
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, 'index.html'), 'served by the guest\n');
    procs.push(await httpd(g, www));
    const hostPort = await freeTcpPort();
    const base = { 'egress-deny': [`127.0.0.1,port=${port}`], 'max-sessions': 4, 'dns-record': ['web.reload.test=10.9.9.9'] };
    const added = await reload({ ...base, hostfwd: [`tcp:127.0.0.1:${hostPort}-:80`] });
    expect(added['changed'], d.dump().slice(-2000)).toEqual(['hostfwd']);
    expect(added['forwardsAdded']).toEqual([`tcp:127.0.0.1:${hostPort}-:80`]);
    expect(await hostGet(hostPort)).toBe('served by the guest\n');
    // A port in use: the reload fails as a whole (the rule in force stays, max-sessions too).
    const busy = http.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const busyPort = (busy.address() as AddressInfo).port;
    const refused = await reload({ ...base, 'max-sessions': 3, hostfwd: [`tcp:127.0.0.1:${busyPort}-:80`] });
    busy.close();
    expect(refused['msg']).toBe('SIGHUP: configuration not reloaded, nothing changed');
    expect(String(refused['reason'])).toMatch(/EADDRINUSE/);
    expect(await hostGet(hostPort)).toBe('served by the guest\n');
    const removed = await reload(base);
    expect(removed['changed']).toEqual(['hostfwd']);
    expect(removed['forwardsRemoved']).toEqual([`tcp:127.0.0.1:${hostPort}-:80`]);
    expect(await hostGet(hostPort)).toMatch(/^ERR ECONNREFUSED/);
  }, 60_000);

  it('--max-sessions and --log-level change live', async () => {
    // One session is up: a limit of 1 refuses the next link.
    const r = await reload({ 'max-sessions': 1, 'log-level': 'debug' });
    expect(r['changed']).toEqual(['egress-allow/egress-deny', 'max-sessions', 'dns-record', 'log-level']);
    const l = d.dgram();
    const g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port });
    guests.push(g);
    const { lease } = await g.dhcp();
    expect(lease).toBeUndefined();
    expect(d.logs.find((x) => x['msg'] === 'link refused'), d.dump().slice(-3000)).toMatchObject({ reason: 'session.limit' });
    // A debug line the daemon writes for a WebSocket upgrade to an unknown path: shown now.
    const ws = new URL(d.wsUrl());
    const upgrade = () =>
      run('curl', ['-s', '-o', '/dev/null', '-m', '10', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `http://${ws.host}/nope`]);
    const unknownPath = (): number => d.logs.filter((x) => x['msg'] === 'ws: upgrade for an unknown path refused').length;
    await upgrade();
    expect(await until(() => unknownPath() === 1, 10_000), d.dump().slice(-3000)).toBe(true);
    // Back to info: not shown any more; and the limit back up, so the waiting guest gets its lease.
    await reload({ 'max-sessions': 4 });
    await upgrade();
    const { lease: later, result } = await g.dhcp();
    expect(later?.['ip'], out(result)).toMatch(/^10\.0\.2\.\d+$/);
    expect(unknownPath()).toBe(1);
  }, 120_000);

  it('--max-session-leases changes live: a guest past the new bound gets no new lease', async () => {
    await reload({ 'max-sessions': 4, 'max-session-leases': 1 });
    const l = d.dgram();
    const g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port });
    guests.push(g);
    expect((await g.dhcp()).lease?.['ip']).toMatch(/^10\.0\.2\.\d+$/);
    // A second client identity (another MAC) behind the same session: over the bound of 1.
    spawnSync('ip', ['-n', g.ns, 'link', 'set', 'dev', g.tap, 'address', '02:00:00:aa:bb:cc']);
    expect((await g.dhcp()).lease).toBeUndefined();
    await reload({ 'max-sessions': 4, 'max-session-leases': 2 });
    expect((await g.dhcp()).lease?.['ip']).toMatch(/^10\.0\.2\.\d+$/);
  }, 120_000);

  it('the recording of the first session holds its reloads: it replays with no difference', async () => {
    for (const g of guests.splice(0)) await g.destroy();
    expect((await d.stop()).code).toBe(0);
    // The first session's private network: its file ends in -1.pcapng.
    const file = readdirSync(join(dir, 'rec')).find((f) => f.endsWith('-1.pcapng'));
    expect(file, readdirSync(join(dir, 'rec')).join(' ')).toBeDefined();
    const replayed = spawnSync(process.execPath, [DAEMON_ENTRY, 'replay', join(dir, 'rec', file!)], { encoding: 'utf8', timeout: 60_000 });
    expect(replayed.stderr).toBe('');
    expect(replayed.stdout).toMatch(/^replay: \d+ frames, 0 differences, \d+\.\d+ s\n$/);
    expect(replayed.status).toBe(0);
  }, 120_000);
});
