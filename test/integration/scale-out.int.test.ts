/**
 * Scale-out as the README ships it (contrib/scale-out/): two daemons behind Debian's nginx
 * running contrib/scale-out/nginx-tslirp.conf (WebSocket proxying, `hash $arg_network
 * consistent`), and Debian's Prometheus running contrib/scale-out/prometheus.yml, scraping
 * both daemons' /metrics; only ports (and the scrape interval) are replaced. Two namespace
 * guests that name network lab land on one daemon (they lease from one pool and ping each
 * other); WebSocket clients naming other networks, and clients naming none, land on both;
 * Prometheus sees both daemons' sessions; `promtool check metrics` finds nothing wrong with
 * either. Then the daemon without lab is stopped: new clients, with and without a network,
 * all land on the survivor, and the lab guests there are untouched (same sessions, still
 * pinging each other), and Prometheus reports the stopped one down.
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, root, shouldRun, tempDir, type RunResult } from '../helpers/guests.js';
import { freeTcpPort } from '../helpers/servers.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('busybox'), command('nginx'), command('prometheus'), command('promtool')]);
const enabled = shouldRun('scale-out.int.test.ts (nginx in front of two daemons, Prometheus scraping them)', missing);

const TOKEN = 'scale-out-token-0123456789abcdef';
/** Clients opened one after another until both daemons hold one (each lands on either with even odds: 2^-15 to miss). */
const MAX_SPREAD_TRIES = 16;
const out = (r: RunResult): string => `${r.stdout}${r.stderr}${r.timedOut ? ' (timed out)' : ''}`;

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(new Error(`${path}: ${(e as Error).message}: ${body.slice(0, 500)}`));
        }
      });
    }).on('error', reject);
  });
}

function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

interface Node {
  readonly d: Daemon;
  readonly ws: number;
  readonly api: number;
}

describe.skipIf(!enabled)('scale-out: nginx in front of two daemons, Prometheus scraping them', () => {
  let dir: string;
  const nodes: Node[] = [];
  let nginx: Proc;
  let prometheus: Proc;
  let proxyPort: number;
  let promPort: number;
  const guests: NetnsGuest[] = [];
  const clients: WebSocket[] = [];

  /** Session ids per daemon, from its API. */
  const sessionsOf = async (n: Node): Promise<{ id: string; network: string }[]> => (await getJson(n.api, '/v1/sessions')) as { id: string; network: string }[];

  /** A WebSocket client through nginx; resolves once open (the daemon made it a session). */
  async function client(network: string | undefined): Promise<WebSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/?token=${TOKEN}${network === undefined ? '' : `&network=${network}`}`);
    clients.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return ws;
  }

  /** Prometheus' answer to an instant query: value by instance. */
  async function query(q: string): Promise<Map<string, number>> {
    const r = (await getJson(promPort, `/api/v1/query?query=${encodeURIComponent(q)}`)) as { data?: { result?: { metric: { instance: string }; value: [number, string] }[] } };
    return new Map((r.data?.result ?? []).map((x) => [x.metric.instance, Number(x.value[1])]));
  }

  beforeAll(async () => {
    dir = tempDir('tslirp-scale-');
    writeFileSync(join(dir, 'tokens'), `${TOKEN}\n`);
    for (let i = 0; i < 2; i++) {
      const d = await startDaemon(['--ws', '127.0.0.1:0,public', '--trusted-proxy', '127.0.0.1', '--ws-token-file', join(dir, 'tokens'), '--api', 'tcp:127.0.0.1:0']);
      const listening = d.logs.find((l) => l['msg'] === 'listening')!;
      const api = (listening['api'] as { kind: string; port?: number }[]).find((a) => a.kind === 'tcp')!.port!;
      nodes.push({ d, ws: Number(new URL(d.wsUrl()).port), api });
    }
    // The shipped nginx file, its ports replaced, inside a minimal main configuration.
    proxyPort = await freeTcpPort();
    let site = readFileSync(join(REPO_ROOT, 'contrib', 'scale-out', 'nginx-tslirp.conf'), 'utf8');
    site = site.replace('server 127.0.0.1:8081 ', `server 127.0.0.1:${nodes[0]!.ws} `).replace('server 127.0.0.1:8082 ', `server 127.0.0.1:${nodes[1]!.ws} `).replace('listen 127.0.0.1:8080;', `listen 127.0.0.1:${proxyPort};`);
    expect(site).toContain(`server 127.0.0.1:${nodes[1]!.ws} `);
    writeFileSync(join(dir, 'site.conf'), site);
    mkdirSync(join(dir, 'tmp'));
    writeFileSync(join(dir, 'nginx.conf'), [
      'worker_processes 1;', `pid ${dir}/nginx.pid;`, 'error_log stderr info;', 'events { worker_connections 512; }',
      'http {', '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/tmp/${t};`),
      `  include ${dir}/site.conf;`, '}', '',
    ].join('\n'));
    const check = spawnSync('nginx', ['-t', '-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
    nginx = new Proc('nginx', 'nginx', ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
    // The shipped Prometheus file, its targets replaced, scraping every second.
    promPort = await freeTcpPort();
    const prom = readFileSync(join(REPO_ROOT, 'contrib', 'scale-out', 'prometheus.yml'), 'utf8')
      .replace('scrape_interval: 15s', 'scrape_interval: 1s')
      .replace('127.0.0.1:9181', `127.0.0.1:${nodes[0]!.api}`)
      .replace('127.0.0.1:9182', `127.0.0.1:${nodes[1]!.api}`);
    writeFileSync(join(dir, 'prometheus.yml'), prom);
    prometheus = new Proc('prometheus', 'prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'prom-data')}`, `--web.listen-address=127.0.0.1:${promPort}`]);
    await prometheus.waitFor(/Server is ready to receive web requests/, 30_000);
    // nginx is up once its port takes a connection (bounded: 10 s).
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = await new Promise<boolean>((resolve) => {
        const c = net.connect(proxyPort, '127.0.0.1', () => { c.destroy(); resolve(true); });
        c.on('error', () => { setTimeout(() => resolve(false), 100); });
      });
    }
    expect(up, nginx.tail()).toBe(true);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.terminate();
    for (const g of guests) await g.destroy();
    await nginx?.stop();
    await prometheus?.stop();
    for (const n of nodes) await n.d.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, busybox, nginx, prometheus, promtool, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('one network lands on one daemon, others spread over both, Prometheus sees both; a stopped daemon\'s new guests go to the survivor', async () => {
    // Two namespace guests on network lab, through nginx.
    for (let i = 0; i < 2; i++) guests.push(await NetnsGuest.create({ kind: 'ws', url: `ws://127.0.0.1:${proxyPort}/?network=lab&token=${TOKEN}` }));
    const [a, b] = guests as [NetnsGuest, NetnsGuest];
    const la = await a.dhcp();
    const lb = await b.dhcp();
    const context = (): string => `${out(la.result)}\n${out(lb.result)}\nbridges:\n${a.bridge.tail(1500)}\n${b.bridge.tail(1500)}\nnginx:\n${nginx.tail(1500)}\ndaemons:\n${nodes.map((n) => n.d.dump().slice(-3000)).join('\n')}`;
    expect([la.lease?.['ip'], lb.lease?.['ip']].sort(), context()).toEqual(['10.0.2.15', '10.0.2.16']);
    const ping = async (): Promise<RunResult> => a.exec(['ping', '-c', '2', '-W', '3', lb.lease!['ip']!], 20_000);
    const first = await ping();
    expect(first.code, out(first)).toBe(0);
    const labNodes = [];
    for (const n of nodes) if ((await sessionsOf(n)).filter((s) => s.network === 'lab').length === 2) labNodes.push(n);
    expect(labNodes).toHaveLength(1);
    const home = labNodes[0]!;
    const other = nodes.find((n) => n !== home)!;
    const labSessions = (await sessionsOf(home)).filter((s) => s.network === 'lab').map((s) => s.id).sort();
    expect((await sessionsOf(other)).filter((s) => s.network === 'lab')).toEqual([]);

    // Other networks, and no network at all, spread over both daemons.
    const spread = async (network: (i: number) => string | undefined): Promise<void> => {
      const before = await Promise.all(nodes.map(async (n) => (await sessionsOf(n)).length));
      for (let i = 0; i < MAX_SPREAD_TRIES; i++) {
        await client(network(i));
        const now = await Promise.all(nodes.map(async (n) => (await sessionsOf(n)).length));
        if (now.every((c, k) => c > before[k]!)) return;
      }
      throw new Error(`${MAX_SPREAD_TRIES} clients all landed on one daemon`);
    };
    await spread((i) => `net${i}`);
    await spread(() => undefined);

    // Prometheus scrapes both: its tslirp_sessions per instance equal each daemon's count.
    const counts = new Map(await Promise.all(nodes.map(async (n): Promise<[string, number]> => [`127.0.0.1:${n.api}`, (await sessionsOf(n)).length])));
    let seen = new Map<string, number>();
    for (let i = 0; i < 60 && !(seen.size === 2 && [...counts].every(([k, v]) => seen.get(k) === v)); i++) {
      seen = await query('tslirp_sessions');
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(counts));
    for (const n of nodes) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: await getText(n.api, '/metrics'), encoding: 'utf8' });
      expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
    }

    // Stop the daemon without lab: new guests land on the survivor, lab's guests go on there.
    await other.d.stop();
    const before = (await sessionsOf(home)).length;
    for (let i = 0; i < 6; i++) await client(i % 2 === 0 ? `fresh${i}` : undefined);
    expect((await sessionsOf(home)).length).toBe(before + 6);
    expect((await sessionsOf(home)).filter((s) => s.network === 'lab').map((s) => s.id).sort()).toEqual(labSessions);
    const again = await ping();
    expect(again.code, out(again)).toBe(0);
    expect(home.d.logs.filter((l) => l['msg'] === 'session ended' && labSessions.includes(String(l['session'])))).toEqual([]);
    let up = new Map<string, number>();
    for (let i = 0; i < 60 && up.get(`127.0.0.1:${other.api}`) !== 0; i++) {
      up = await query('up');
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(Object.fromEntries(up)).toEqual({ [`127.0.0.1:${other.api}`]: 0, [`127.0.0.1:${home.api}`]: 1 });
    expect(home.d.alive(), home.d.dump().slice(-3000)).toBe(true);
  }, 240_000);
});
