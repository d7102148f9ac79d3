import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Daemon } from '../../src/daemon/daemon.js';
import { networkSettings } from '../../src/daemon/networks.js';
import { frameStream, StreamDeframer } from '../../src/link/qemu-stream.js';
import { readCapture } from '../../src/pcap/reader.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { formatIpv4Addr } from '../../src/util/bytes.js';
import { toHex } from '../helpers/hex.js';
import { memoryLog, until } from '../link/test-log.js';
import { DHCP_DISCOVER, dhcpReplyType, yiaddr } from './dhcp-frames.js';

const OFFER = 2;

describe('Daemon with the real Stack (loopback sockets)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tslirp-daemon-'));
  const sock = join(dir, 'run', 'tslirp.sock');
  const pcapDir = join(dir, 'pcap');
  const logs = memoryLog('info');
  let d: Daemon;
  let wsUrl = '';
  let udpPort = 0;

  beforeAll(async () => {
    d = await Daemon.start({
      listeners: [
        { kind: 'stream', transport: 'unix', path: sock },
        { kind: 'dgram', host: '127.0.0.1', port: 0 },
        { kind: 'ws', host: '127.0.0.1', port: 0 },
      ],
      network: networkSettings(resolveStackConfig()),
      log: logs.log,
      pcapDir,
    });
    for (const a of d.addresses) {
      if (a.kind === 'ws') wsUrl = a.url;
      if (a.kind === 'dgram') udpPort = a.port;
    }
  });
  afterAll(async () => {
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds what it was asked to', () => {
    expect(d.addresses.map((a) => a.kind)).toEqual(['stream', 'dgram', 'ws']);
    expect(wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect(d.wsListeners).toHaveLength(1);
  });

  it('answers a DHCP DISCOVER with an OFFER over a unix-socket stream', async () => {
    const s = net.connect(sock);
    const frames: Uint8Array[] = [];
    const de = new StreamDeframer((f) => frames.push(f));
    s.on('data', (c) => de.push(c));
    await new Promise((r) => s.once('connect', r));
    s.write(frameStream([DHCP_DISCOVER]));
    await until(() => frames.some((f) => dhcpReplyType(f) === OFFER), 3000, 'OFFER');
    expect(yiaddr(frames.find((f) => dhcpReplyType(f) === OFFER)!)).toBe('10.0.2.15');
    s.end();
    await until(() => logs.withMsg('session ended').some((r) => r['kind'] === 'stream'), 3000, 'session end');
    const end = logs.withMsg('session ended').find((r) => r['kind'] === 'stream')!;
    expect(end).toMatchObject({ fromGuestFrames: 1, fromGuestBytes: DHCP_DISCOVER.length, toGuestFrames: 1 });
    expect(end['leases']).toMatchObject([{ mac: '52:54:00:12:34:56', ip: '10.0.2.15', state: 'offered' }]);
  });

  it('answers over UDP, to the sender', async () => {
    const u = dgram.createSocket('udp4');
    const got: Uint8Array[] = [];
    u.on('message', (m) => got.push(m));
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
    u.send(DHCP_DISCOVER, udpPort, '127.0.0.1');
    await until(() => got.some((f) => dhcpReplyType(f) === OFFER), 3000, 'OFFER');
    await new Promise<void>((r) => u.close(() => r()));
  });

  it('answers over WebSocket, and survives 10,000 random and truncated frames with drops counted', async () => {
    const ws = new WebSocket(wsUrl);
    const got: Uint8Array[] = [];
    ws.on('message', (m: Buffer) => got.push(m));
    await new Promise((r) => ws.once('open', r));
    ws.send(DHCP_DISCOVER);
    await until(() => got.some((f) => dhcpReplyType(f) === OFFER), 3000, 'OFFER');
    const session = d.sessions.find((s) => s.kind === 'ws')!;
    const hostile = fc.sample(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 1600 }),
        fc.nat({ max: DHCP_DISCOVER.length - 1 }).map((n) => DHCP_DISCOVER.slice(0, Math.max(1, n))),
        fc.tuple(fc.nat({ max: DHCP_DISCOVER.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([at, v]) => {
          const m = DHCP_DISCOVER.slice();
          m[at] = v;
          return m;
        }),
      ),
      { numRuns: 10_000, seed: 42 },
    );
    for (let i = 0; i < hostile.length; i++) {
      ws.send(hostile[i]!);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => session.traffic.fromGuestFrames >= 10_001, 20_000, 'all frames received');
    const drops = session.drops();
    const dropTotal = Object.values(drops).reduce((a, b) => a + b, 0);
    expect(dropTotal).toBeGreaterThan(5000);
    expect(drops['switch.runt'] ?? 0).toBeGreaterThan(0); // shorter than an Ethernet header: the switch drops it
    expect(drops['stack.internal-error'] ?? 0).toBe(0);
    // Still serving, on the same connection.
    got.length = 0;
    ws.send(DHCP_DISCOVER);
    await until(() => got.some((f) => dhcpReplyType(f) === OFFER), 3000, 'OFFER after the storm');
    ws.close();
    await until(() => d.sessions.every((s) => s.kind !== 'ws'), 3000, 'ws session end');
  }, 60_000);

  it('gives each session without a network name a private network and its own capture file', async () => {
    const a = new WebSocket(wsUrl);
    const b = new WebSocket(wsUrl);
    const ga: Uint8Array[] = [];
    const gb: Uint8Array[] = [];
    a.on('message', (m: Buffer) => ga.push(m));
    b.on('message', (m: Buffer) => gb.push(m));
    await Promise.all([new Promise((r) => a.once('open', r)), new Promise((r) => b.once('open', r))]);
    a.send(DHCP_DISCOVER);
    b.send(DHCP_DISCOVER);
    await until(() => ga.length > 0 && gb.length > 0);
    // Same MAC on two isolated networks: both get the first address.
    expect(yiaddr(ga[0]!)).toBe('10.0.2.15');
    expect(yiaddr(gb[0]!)).toBe('10.0.2.15');
    const ids = d.sessions.filter((s) => s.kind === 'ws').map((s) => s.id);
    expect(ids).toHaveLength(2);
    a.close();
    b.close();
    await until(() => d.sessions.every((s) => s.kind !== 'ws'), 3000, 'ws sessions end');
    for (const id of ids) {
      const file = readdirSync(pcapDir).find((n) => n.endsWith(`-${id}.pcap`));
      expect(file, id).toBeDefined();
      const c = readCapture(readFileSync(join(pcapDir, file!)));
      if (typeof c === 'string') throw new Error(c);
      expect(c.packets.map((p) => toHex(p.data))[0]).toBe(toHex(DHCP_DISCOVER));
      expect(dhcpReplyType(c.packets[1]!.data)).toBe(OFFER);
    }
  });
});

describe('Daemon start and stop', () => {
  it('binds all or nothing: a port in use fails the start and frees the others', async () => {
    const { log } = memoryLog();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'tslirp-daemon-'));
    const sock = join(dir, 'a.sock');
    await expect(
      Daemon.start({
        listeners: [
          { kind: 'stream', transport: 'unix', path: sock },
          { kind: 'ws', host: '127.0.0.1', port },
        ],
        network: networkSettings(resolveStackConfig()),
        log,
      }),
    ).rejects.toThrow(/EADDRINUSE/);
    expect(readdirSync(dir)).toEqual([]); // the unix socket was closed and removed
    await new Promise<void>((r) => blocker.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('closes live sessions on close()', async () => {
    const logs = memoryLog();
    const d = await Daemon.start({ listeners: [{ kind: 'ws', host: '127.0.0.1', port: 0 }], network: networkSettings(resolveStackConfig()), log: logs.log });
    const a = d.addresses[0]!;
    const url = a.kind === 'ws' ? a.url : '';
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    ws.send(DHCP_DISCOVER);
    await until(() => d.sessions.length === 1);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    await d.close();
    expect(await closed).toBe(1001);
    expect(d.sessions).toHaveLength(0);
    expect(logs.withMsg('session ended')).toHaveLength(1);
  });
});

describe('Daemon: networks', () => {
  const logs = memoryLog('info');
  let d: Daemon;
  let wsUrl = '';
  const open: WebSocket[] = [];

  beforeAll(async () => {
    d = await Daemon.start({
      listeners: [
        { kind: 'ws', host: '127.0.0.1', port: 0 },
        { kind: 'ws', host: '127.0.0.1', port: 0, network: 'side' },
      ],
      network: networkSettings(resolveStackConfig()),
      networks: new Map([['lab', networkSettings(resolveStackConfig({ net: '10.9.0.0/24' }))]]),
      dns: { upstreams: [], resolvConf: '/nonexistent' },
      log: logs.log,
    });
    const a = d.addresses[0]!;
    if (a.kind === 'ws') wsUrl = a.url;
  });
  afterAll(async () => {
    for (const ws of open) ws.terminate();
    await d.close();
  });

  /** A WebSocket guest at `url`, collecting what it receives. */
  async function guest(url: string): Promise<{ ws: WebSocket; got: Uint8Array[] }> {
    const ws = new WebSocket(url);
    open.push(ws);
    const got: Uint8Array[] = [];
    ws.on('message', (m: Buffer) => got.push(new Uint8Array(m)));
    await new Promise((r) => ws.once('open', r));
    return { ws, got };
  }

  /** DHCP_DISCOVER from another MAC (chaddr and Ethernet source). */
  const discoverFrom = (last: number): Uint8Array => {
    const f = DHCP_DISCOVER.slice();
    f[11] = last;
    f[14 + 20 + 8 + 28 + 5] = last;
    return f;
  };

  it('puts clients that name a network in their URL on one segment with one DHCP pool', async () => {
    const a = await guest(`${wsUrl}?network=lab`);
    const b = await guest(`${wsUrl}?network=lab`);
    a.ws.send(discoverFrom(0x0a));
    await until(() => a.got.some((f) => dhcpReplyType(f) === OFFER), 3000, 'OFFER to a');
    b.ws.send(discoverFrom(0x0b));
    await until(() => b.got.some((f) => dhcpReplyType(f) === OFFER && yiaddr(f) === '10.9.0.16'), 3000, 'OFFER of the next address to b');
    expect(yiaddr(a.got.find((f) => dhcpReplyType(f) === OFFER)!)).toBe('10.9.0.15');
    // b's broadcast DISCOVER was flooded to a as well: one segment.
    expect(a.got.some((f) => toHex(f) === toHex(discoverFrom(0x0b)))).toBe(true);
    expect(d.sessions.filter((s) => s.network.name === 'lab')).toHaveLength(2);
    expect(logs.withMsg('session started').filter((r) => r['network'] === 'lab')).toHaveLength(2);
    a.ws.close();
    b.ws.close();
    await until(() => d.sessions.length === 0, 3000, 'sessions end');
    // A declared network outlives its sessions, with its leases.
    expect(d.networks.map((n) => n.name)).toEqual(['lab']);
    expect(d.networks[0]!.leases().map((l) => formatIpv4Addr(l.ip))).toEqual(['10.9.0.15', '10.9.0.16']);
  });

  it("joins the listener's network= unless the URL names another; an undeclared network closes with its last session", async () => {
    const side = d.addresses[1]!;
    if (side.kind !== 'ws') throw new Error('expected ws');
    const a = await guest(side.url);
    const b = await guest(`${side.url}?network=other`);
    await until(() => d.sessions.length === 2, 3000, 'two sessions');
    expect(d.sessions.map((s) => s.network.name).sort()).toEqual(['other', 'side']);
    expect(d.networks.map((n) => n.name).sort()).toEqual(['lab', 'other', 'side']);
    a.ws.close();
    b.ws.close();
    await until(() => d.sessions.length === 0, 3000, 'sessions end');
    expect(d.networks.map((n) => n.name)).toEqual(['lab']);
    expect(logs.withMsg('network closed (its last session left)').map((r) => r['network']).sort()).toEqual(['other', 'side']);
  });

  it('refuses a bad ?network= with HTTP 400 and the reason, and keeps serving', async () => {
    for (const bad of ['Lab', '-x', 'a'.repeat(33), 'a b', '']) {
      const ws = new WebSocket(`${wsUrl}?network=${encodeURIComponent(bad)}`);
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
        ws.once('error', () => undefined);
      });
      expect(status, bad).toBe(400);
    }
    expect(d.wsListeners[0]!.counters.get('ws.bad-network')).toBe(5);
    const ok = await guest(`${wsUrl}?network=lab`);
    ok.ws.close();
  });

  it('private networks are not joinable by name: a session id in ?network= makes a new named network', async () => {
    const a = await guest(wsUrl);
    await until(() => d.sessions.length === 1, 3000, 'session');
    const privateName = d.sessions[0]!.network.name;
    expect(d.sessions[0]!.privateNetwork).toBe(true);
    const b = await guest(`${wsUrl}?network=${privateName}`);
    await until(() => d.sessions.length === 2, 3000, 'second session');
    const [na, nb] = d.sessions.map((s) => s.network);
    expect(na).not.toBe(nb);
    a.ws.close();
    b.ws.close();
    await until(() => d.sessions.length === 0, 3000, 'sessions end');
  });
});
