/**
 * --max-new-flows-per-second with real peers: a namespace guest (a Linux stack on a TAP,
 * bridged by socat over the dgram link) opens TCP connections to a host server in a loop as
 * fast as it can; the server accepts no more than the rate allows over the loop's time (a
 * burst of N, then N a second), the refused SYNs are counted in the API (the network's
 * `nat.new-flow-rate`) and in /metrics, and meanwhile a second guest — another session, its
 * own network and its own budget — connects to the same server at once, every time.
 *
 * Reload: a daemon started with `--config FILE` whose file gives the declared network `lab` its
 * rate as `--net-option lab:max-new-flows-per-second=5`; the guest's loop gets 5 a second, the
 * file is edited to 40 and the daemon sent SIGHUP, and the same guest in the same session gets
 * the new rate's burst and rate from then on.
 */
import http from 'node:http';
import net from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, root, shouldRun, tempDir, until, type RunResult } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('python3')]);
const enabled = shouldRun('flow-rate.int.test.ts (--max-new-flows-per-second with namespace guests)', missing);

const RATE = 10;
/** How long the first guest's loop runs, in seconds. */
const LOOP_S = 3;
const out = (r: RunResult): string => `${r.stdout}${r.stderr}${r.timedOut ? ' (timed out)' : ''}`;

/** Non-blocking connects as fast as the guest can (each a new SYN), for `seconds`, at most 3000; then all closed. */
const FLOOD = `
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
socks = []
end = time.time() + seconds
while time.time() < end and len(socks) < 3000:
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    socks.append(s)
    time.sleep(0.002)
for s in socks:
    s.close()
print(len(socks))
`;

/** Five connections one after the other, each timed: "ok MS" or the error, one line each. */
const POLITE = `
import socket, sys, time
for i in range(5):
    t0 = time.time()
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10).close()
        print('ok', int((time.time() - t0) * 1000))
    except OSError as e:
        print('error', e)
    time.sleep(0.2)
`;

function apiGet(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe.skipIf(!enabled)('--max-new-flows-per-second (namespace guests)', () => {
  let dir: string;
  let d: Daemon;
  let server: net.Server;
  /** When the server accepted each connection (Date.now()). */
  const accepted: number[] = [];
  const guests: NetnsGuest[] = [];

  beforeAll(async () => {
    dir = tempDir('tslirp-flowrate-');
    server = net.createServer((c) => {
      accepted.push(Date.now());
      c.on('error', () => undefined);
      c.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--max-new-flows-per-second', String(RATE), '--api', `unix:${join(dir, 'api.sock')}`]);
    const l = d.dgram();
    for (let i = 0; i < 2; i++) guests.push(await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port }));
  });
  afterAll(async () => {
    for (const g of guests) await g.destroy();
    await d?.stop();
    server?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, python3, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('a connection loop gets the rate and no more; another session connects at once meanwhile', async () => {
    const [flooder, polite] = guests as [NetnsGuest, NetnsGuest];
    for (const g of guests) expect((await g.dhcp()).lease?.['ip']).toBe('10.0.2.15');
    const port = (server.address() as net.AddressInfo).port;
    const start = Date.now();
    const [flood, calm] = await Promise.all([
      flooder.exec(['python3', '-c', FLOOD, '10.0.2.2', String(port), String(LOOP_S)], 60_000),
      // A moment into the flood.
      new Promise((r) => setTimeout(r, 500)).then(() => polite.exec(['python3', '-c', POLITE, '10.0.2.2', String(port)], 60_000)),
    ]);
    const tried = Number(flood.stdout.trim());
    expect(tried, out(flood)).toBeGreaterThan(RATE * 4);
    const lines = calm.stdout.trim().split('\n');
    expect(lines, out(calm)).toHaveLength(5);
    // Each at once: a dropped SYN would cost the guest's TCP a second (its first retransmission).
    for (const line of lines) expect(line, out(calm)).toMatch(/^ok \d+$/);
    for (const line of lines) expect(Number(line.split(' ')[1]), out(calm)).toBeLessThan(900);
    const polites = 5;
    // Every connection the server saw up to now: the flooder's are a burst of RATE plus RATE a second.
    await new Promise((r) => setTimeout(r, 300));
    const elapsedS = (Date.now() - start) / 1000;
    const fromFlooder = accepted.length - polites;
    console.log(`flow-rate.int: ${tried} connects tried in ${LOOP_S} s, ${fromFlooder} accepted (rate ${RATE}/s, ${elapsedS.toFixed(1)} s elapsed)`);
    expect(fromFlooder).toBeGreaterThanOrEqual(RATE);
    expect(fromFlooder).toBeLessThanOrEqual(RATE + Math.ceil(RATE * elapsedS));

    // Counted: the flooder's network (named after its session) in the API, and in /metrics.
    const api = join(dir, 'api.sock');
    const networks = JSON.parse(await apiGet(api, '/v1/networks')) as { name: string; counters: Record<string, number> }[];
    const refused = networks.map((n) => n.counters['nat.new-flow-rate'] ?? 0);
    expect(refused.filter((n) => n > 0), JSON.stringify(networks)).toHaveLength(1);
    expect(Math.max(...refused)).toBeGreaterThanOrEqual(tried - fromFlooder);
    const metrics = await apiGet(api, '/metrics');
    const m = /^tslirp_drops_total\{reason="nat\.new-flow-rate"\} (\d+)/m.exec(metrics);
    expect(Number(m?.[1]), metrics.slice(0, 2000)).toBe(Math.max(...refused));
    expect(d.alive(), d.dump()).toBe(true);
  }, 120_000);
});

describe.skipIf(!enabled)('--max-new-flows-per-second reloaded by SIGHUP (a declared network\'s --net-option value)', () => {
  let dir: string;
  let cfg: string;
  let d: Daemon;
  let server: net.Server;
  let accepted = 0;
  let guest: NetnsGuest | undefined;
  const BEFORE = 5;
  const AFTER = 40;

  beforeAll(async () => {
    dir = tempDir('tslirp-flowrate-reload-');
    cfg = join(dir, 'tslirp.json');
    server = net.createServer((c) => {
      accepted++;
      c.on('error', () => undefined);
      c.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    writeFileSync(cfg, JSON.stringify({ network: 'lab', 'net-option': [`lab:max-new-flows-per-second=${BEFORE}`] }));
    d = await startDaemon(['--config', cfg, '--dgram', 'udp:127.0.0.1:0']);
    const l = d.dgram();
    guest = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port });
  });
  afterAll(async () => {
    await guest?.destroy();
    await d?.stop();
    server?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** The guest's connection loop for LOOP_S; how many it tried, how many the server accepted, and the seconds it took. */
  async function loop(g: NetnsGuest): Promise<{ tried: number; got: number; elapsedS: number }> {
    const port = (server.address() as net.AddressInfo).port;
    accepted = 0;
    const start = Date.now();
    const flood = await g.exec(['python3', '-c', FLOOD, '10.0.2.2', String(port), String(LOOP_S)], 60_000);
    await new Promise((r) => setTimeout(r, 300));
    return { tried: Number(flood.stdout.trim()), got: accepted, elapsedS: (Date.now() - start) / 1000 };
  }

  it('a rate changed in the file takes effect on SIGHUP, in the running session', async () => {
    const g = guest!;
    expect((await g.dhcp()).lease?.['ip']).toBe('10.0.2.15');
    const first = await loop(g);
    console.log(`flow-rate.int reload: before, ${first.tried} tried, ${first.got} accepted in ${first.elapsedS.toFixed(1)} s (rate ${BEFORE}/s)`);
    expect(first.tried).toBeGreaterThan(AFTER * 2);
    expect(first.got).toBeGreaterThanOrEqual(BEFORE);
    expect(first.got).toBeLessThanOrEqual(BEFORE + Math.ceil(BEFORE * first.elapsedS));
    // The dropped SYNs' retransmissions are over (the loop closed its sockets); a fresh second for the bucket.
    await new Promise((r) => setTimeout(r, 1500));

    writeFileSync(cfg, JSON.stringify({ network: 'lab', 'net-option': [`lab:max-new-flows-per-second=${AFTER}`] }));
    const before = d.logs.length;
    process.kill(d.pid, 'SIGHUP');
    await until(() => d.logs.slice(before).some((l) => String(l['msg']).startsWith('SIGHUP: configuration')), 10_000);
    const line = d.logs.slice(before).find((l) => String(l['msg']).startsWith('SIGHUP: configuration'));
    expect(line, d.dump().slice(-3000)).toMatchObject({ msg: 'SIGHUP: configuration reloaded', changed: ['net-option'], needRestart: [] });

    const second = await loop(g);
    console.log(`flow-rate.int reload: after, ${second.tried} tried, ${second.got} accepted in ${second.elapsedS.toFixed(1)} s (rate ${AFTER}/s)`);
    expect(second.tried).toBeGreaterThan(AFTER * 2);
    // Past anything the old rate allowed over the loop: the new burst at least.
    expect(second.got).toBeGreaterThanOrEqual(AFTER);
    expect(second.got).toBeGreaterThan(BEFORE + Math.ceil(BEFORE * second.elapsedS));
    expect(second.got).toBeLessThanOrEqual(AFTER + Math.ceil(AFTER * second.elapsedS));
    // One session throughout: the reload dropped nothing.
    expect(d.logs.filter((l) => l['msg'] === 'session started')).toHaveLength(1);
    expect(d.logs.some((l) => l['msg'] === 'session ended')).toBe(false);
    expect(d.alive(), d.dump()).toBe(true);
  }, 120_000);
});
