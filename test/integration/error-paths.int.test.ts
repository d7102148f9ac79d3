/**
 * Every listener's error paths against the real daemon (`dist/cli/main.js`): clients that
 * reset (RST, `resetAndDestroy`) or half-close (`end`) at each stage of each handshake —
 * WebSocket (before the request line completes, mid headers, after 404/400/426/403, right
 * after the 101, mid frame, bad frames), `/e1000` (the same, plus mid its own protocol),
 * QEMU stream over unix and TCP (mid length prefix, mid frame, after a frame), QEMU dgram
 * (bogus datagrams, replies to a closed port), `--hostfwd` TCP and UDP (before and after the
 * guest answers), and NAT host sockets whose remote peer resets.
 *
 * After each case, two guests that were attached before any abuse (one WebSocket, one
 * stream) must still get a DHCP OFFER, the daemon must still run, and it must have logged
 * nothing at error level or above and no stack trace. Before the fix, a reset after the 404
 * for an unknown path, and any bad frame on /e1000, killed the daemon (issue 17, defect 1).
 *
 * DNS forwarder sockets meet an upstream that refuses UDP and resets TCP. A second daemon
 * checks that forward clients with no session are logged (rate-limited) and counted (defect
 * 7), and that a resolv.conf directory that vanishes and a capture file that cannot be
 * created are warnings, not crashes.
 *
 * Needs no root: loopback sockets only.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { frameStream, StreamDeframer } from '../../src/link/qemu-stream.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { COMMAND, PCI } from '../../src/nic-e1000/pci-config.js';
import { R, TCTL } from '../../src/nic-e1000/regs.js';
import { decodeDaemonMessage, encodeEmulatorRecords } from '../../src/nic-e1000/ws-protocol.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { BROADCAST_MAC } from '../../src/util/bytes.js';
import { DHCP_DISCOVER, dhcpReplyType } from '../daemon/dhcp-frames.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { arpFrame, decode, GATEWAY_MAC, ip, ipv4Frame, tcpBytes, udpBytes, type Decoded } from '../helpers/frames.js';
import { daemon as daemonReq, missingRequirements, shouldRun, tempDir } from '../helpers/guests.js';

const missing = missingRequirements([daemonReq]);
const enabled = shouldRun('error-paths.int.test.ts (resets and half-closes against every listener)', missing);

const OFFER = 2;
/** Budget of one abuse case, loaded machine included (each takes well under a second alone). */
const CASE_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => { r(); }));
    return port;
  }
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => { r(); }));
  return port;
}

/** A raw client socket that keeps what it receives and never throws on errors. */
interface Raw {
  readonly s: net.Socket;
  readonly received: () => Buffer;
  readonly closed: () => boolean;
}

async function rawConnect(to: { port: number; host?: string } | { path: string }): Promise<Raw> {
  const s = 'path' in to ? net.connect(to.path) : net.connect(to.port, to.host ?? '127.0.0.1');
  const chunks: Buffer[] = [];
  let isClosed = false;
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => undefined);
  s.on('close', () => (isClosed = true));
  await new Promise<void>((res, rej) => s.once('connect', res).once('error', rej));
  return { s, received: () => Buffer.concat(chunks), closed: () => isClosed };
}

/** Waits (bounded) until the raw client got a complete HTTP response head; returns its status. */
async function httpStatus(c: Raw, timeoutMs = 10_000): Promise<number> {
  await until(() => c.received().includes('\r\n\r\n') || c.closed(), timeoutMs, 'an HTTP response');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(c.received().toString('latin1'));
  return m ? Number(m[1]) : 0;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
function upgradeRequest(path: string, extra: Record<string, string> = {}): string {
  const h: Record<string, string> = { Host: '127.0.0.1', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': KEY, 'Sec-WebSocket-Version': '13', ...extra };
  return `GET ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
}

/** A client → server WebSocket frame (RFC 6455 §5.2), masked unless `masked` is false. */
function wsFrame(opcode: number, payload: Buffer, o: { masked?: boolean; fin?: boolean; declaredLength?: number } = {}): Buffer {
  const masked = o.masked ?? true;
  const len = o.declaredLength ?? payload.length;
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | opcode];
  const m = masked ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** Opens a WebSocket by hand on a raw socket: resolves after the 101 (asserted). */
async function rawWebSocket(port: number, path: string): Promise<Raw> {
  const c = await rawConnect({ port });
  c.s.write(upgradeRequest(path));
  expect(await httpStatus(c)).toBe(101);
  return c;
}

/** A guest that was attached before the abuse, and how to check it is still served. */
interface Keeper {
  readonly name: string;
  dhcpOffer(): Promise<boolean>;
  close(): void;
}

async function wsKeeper(url: string, toGuest: Decoded[]): Promise<Keeper & { ws: WebSocket }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const got: Uint8Array[] = [];
  ws.on('message', (m: Buffer) => {
    const f = new Uint8Array(m);
    if (got.length < 10_000) got.push(f);
    if (dhcpReplyType(f) === undefined && toGuest.length < 10_000) toGuest.push(decode(f));
  });
  ws.on('error', () => undefined);
  await new Promise<void>((res, rej) => ws.once('open', res).once('error', rej));
  return {
    name: 'ws keeper',
    ws,
    async dhcpOffer() {
      got.length = 0;
      ws.send(DHCP_DISCOVER);
      try {
        await until(() => got.some((f) => dhcpReplyType(f) === OFFER), 10_000, 'OFFER (ws keeper)');
        return true;
      } catch {
        return false;
      }
    },
    close: () => { ws.terminate(); },
  };
}

async function streamKeeper(path: string): Promise<Keeper> {
  const s = net.connect(path);
  const got: Uint8Array[] = [];
  const de = new StreamDeframer((f) => {
    if (got.length < 10_000) got.push(f);
  });
  s.on('data', (c: Buffer) => de.push(c));
  s.on('error', () => undefined);
  await new Promise<void>((res, rej) => s.once('connect', res).once('error', rej));
  return {
    name: 'stream keeper',
    async dhcpOffer() {
      got.length = 0;
      s.write(frameStream([DHCP_DISCOVER]));
      try {
        await until(() => got.some((f) => dhcpReplyType(f) === OFFER), 10_000, 'OFFER (stream keeper)');
        return true;
      } catch {
        return false;
      }
    },
    close: () => { s.destroy(); },
  };
}

describe.skipIf(!enabled)('daemon error paths: resets and half-closes at every handshake stage', () => {
  let d: Daemon;
  let dir: string;
  let wsPort = 0;
  let tcpStreamPort = 0;
  let dgramPort = 0;
  let fwdTcpPort = 0;
  let fwdUdpPort = 0;
  let hostServer: net.Server;
  let hostPort = 0;
  const keepers: Keeper[] = [];
  /** Frames the ws keeper (the session owning the forwards) received, DHCP replies excluded. */
  const toGuest: Decoded[] = [];
  let wsGuest: WebSocket;

  /** The daemon still runs, both keepers still get an OFFER, and nothing was logged at error level. */
  async function expectStillServing(): Promise<void> {
    await sleep(100); // let the daemon see the abuse before the keepers' round trips
    for (const k of keepers) expect(await k.dhcpOffer(), `${k.name} got no OFFER:\n${d.dump().slice(-4000)}`).toBe(true);
    expect(d.alive(), d.dump().slice(-4000)).toBe(true);
    expect(d.logsAtLeast(50), 'error or fatal log lines').toEqual([]);
    expect(d.otherOutput.filter((l) => /Error|Unhandled|throw/.test(l)), 'non-JSON error output').toEqual([]);
  }

  beforeAll(async () => {
    dir = tempDir('tslirp-errpaths-');
    fwdTcpPort = await freePort('tcp');
    fwdUdpPort = await freePort('udp');
    // A host service for NAT flows: it resets every connection once it has read something.
    hostServer = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.resetAndDestroy());
    });
    await new Promise<void>((r) => hostServer.listen(0, '127.0.0.1', r));
    hostPort = (hostServer.address() as net.AddressInfo).port;
    d = await startDaemon(
      [
        '--ws', '127.0.0.1:0',
        '--stream', `unix:${join(dir, 'tslirp.sock')}`,
        '--stream', 'tcp:127.0.0.1:0',
        '--dgram', 'udp:127.0.0.1:0',
        '--hostfwd', `tcp:127.0.0.1:${fwdTcpPort}-10.0.2.15:80`,
        '--hostfwd', `udp:127.0.0.1:${fwdUdpPort}-10.0.2.15:7`,
        '--pcap', join(dir, 'pcap') + '/', // a directory: one capture file per session
        // The DNS upstream is the resetting host service: UDP queries meet a closed port
        // (ECONNREFUSED), DNS over TCP an upstream that resets mid-query.
        '--dns-upstream', `127.0.0.1:${hostPort}`,
        '--nat', 'symmetric', // connected UDP sockets: the closed port below comes back as ECONNREFUSED
        '--log-level', 'info',
      ],
      { startTimeoutMs: 30_000 },
    );
    wsPort = Number(new URL(d.wsUrl()).port);
    tcpStreamPort = d.streamTcp().port;
    dgramPort = d.dgram().port;
    // The ws keeper connects first: it owns the --hostfwd rules. It announces 10.0.2.15.
    const ws = await wsKeeper(d.wsUrl(), toGuest);
    wsGuest = ws.ws;
    keepers.push(ws);
    ws.ws.send(arpFrame({ senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.15') }, BROADCAST_MAC));
    keepers.push(await streamKeeper(d.streamPath()));
  }, 60_000);

  afterAll(async () => {
    for (const k of keepers) k.close();
    await d?.stop();
    hostServer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (the built daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('serves both keepers before any abuse', async () => {
    await expectStillServing();
  }, CASE_MS);

  describe('WebSocket listener', () => {
    it('survives a reset before the request line completes', async () => {
      const c = await rawConnect({ port: wsPort });
      c.s.write('GET /e10');
      await sleep(50);
      c.s.resetAndDestroy();
      await expectStillServing();
    }, CASE_MS);

    it('survives a half-close before the request line completes', async () => {
      const c = await rawConnect({ port: wsPort });
      c.s.end('GET / HT');
      await until(c.closed, 10_000, 'the daemon to close');
      await expectStillServing();
    }, CASE_MS);

    for (const path of ['/', '/e1000', '/nope']) {
      it(`survives a reset mid headers (${path})`, async () => {
        const c = await rawConnect({ port: wsPort });
        c.s.write(upgradeRequest(path).slice(0, 60));
        await sleep(50);
        c.s.resetAndDestroy();
        await expectStillServing();
      }, CASE_MS);

      it(`survives a half-close mid headers (${path})`, async () => {
        const c = await rawConnect({ port: wsPort });
        c.s.end(upgradeRequest(path).slice(0, 60));
        await until(c.closed, 10_000, 'the daemon to close');
        await expectStillServing();
      }, CASE_MS);
    }

    it('survives a reset right after an upgrade request for an unknown path (the 404 crash)', async () => {
      for (let i = 0; i < 5; i++) {
        const c = await rawConnect({ port: wsPort });
        c.s.write(upgradeRequest('/nope'));
        c.s.resetAndDestroy();
      }
      await expectStillServing();
    }, CASE_MS);

    it('survives a reset after reading the 404', async () => {
      const c = await rawConnect({ port: wsPort });
      c.s.write(upgradeRequest('/nope'));
      expect(await httpStatus(c)).toBe(404);
      c.s.resetAndDestroy();
      await expectStillServing();
    }, CASE_MS);

    it('survives a half-close after the 404, and closes the refused connection', async () => {
      const c = await rawConnect({ port: wsPort });
      c.s.write(upgradeRequest('/nope'));
      expect(await httpStatus(c)).toBe(404);
      c.s.end();
      await until(c.closed, 10_000, 'the daemon to close');
      await expectStillServing();
    }, CASE_MS);

    it('survives a reset after a 400 (bad handshake on a known path, and a malformed request)', async () => {
      const a = await rawConnect({ port: wsPort });
      a.s.write(upgradeRequest('/', { 'Sec-WebSocket-Version': '99' }));
      expect(await httpStatus(a)).toBe(400);
      a.s.resetAndDestroy();
      const b = await rawConnect({ port: wsPort });
      b.s.write('BLAH\x01 / HTTP/9\r\n\r\n');
      expect(await httpStatus(b)).toBe(400);
      b.s.resetAndDestroy();
      const c = await rawConnect({ port: wsPort });
      c.s.write(upgradeRequest('/', { 'Sec-WebSocket-Version': '99' }));
      c.s.resetAndDestroy(); // before the 400 is written
      await expectStillServing();
    }, CASE_MS);

    it('survives resets before and after a 426 and a plain 404', async () => {
      for (const [path, status] of [['/', 426], ['/e1000', 426], ['/nope', 404]] as const) {
        const a = await rawConnect({ port: wsPort });
        a.s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        expect(await httpStatus(a)).toBe(status);
        a.s.resetAndDestroy();
        const b = await rawConnect({ port: wsPort });
        b.s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        b.s.resetAndDestroy();
      }
      await expectStillServing();
    }, CASE_MS);

    it('survives resets before and after a 403 (a refused Origin)', async () => {
      for (const path of ['/', '/e1000']) {
        const a = await rawConnect({ port: wsPort });
        a.s.write(upgradeRequest(path, { Origin: 'https://evil.example' }));
        expect(await httpStatus(a)).toBe(403);
        a.s.resetAndDestroy();
        const b = await rawConnect({ port: wsPort });
        b.s.write(upgradeRequest(path, { Origin: 'https://evil.example' }));
        b.s.resetAndDestroy();
        const c = await rawConnect({ port: wsPort });
        c.s.write(upgradeRequest(path, { Origin: 'https://evil.example' }));
        expect(await httpStatus(c)).toBe(403);
        c.s.end();
        await until(c.closed, 10_000, 'the daemon to close');
      }
      await expectStillServing();
    }, CASE_MS);

    for (const path of ['/', '/e1000']) {
      it(`survives a reset and a half-close right after the 101 (${path})`, async () => {
        const a = await rawWebSocket(wsPort, path);
        a.s.resetAndDestroy();
        const b = await rawWebSocket(wsPort, path);
        b.s.end();
        await until(b.closed, 10_000, 'the daemon to close');
        await expectStillServing();
      }, CASE_MS);

      it(`survives a reset and a half-close mid frame (${path})`, async () => {
        const frame = wsFrame(0x2, Buffer.from(DHCP_DISCOVER));
        const a = await rawWebSocket(wsPort, path);
        a.s.write(frame.subarray(0, 1));
        await sleep(30);
        a.s.resetAndDestroy();
        const b = await rawWebSocket(wsPort, path);
        b.s.write(frame.subarray(0, frame.length - 7));
        await sleep(30);
        b.s.resetAndDestroy();
        const c = await rawWebSocket(wsPort, path);
        c.s.end(frame.subarray(0, 20));
        await until(c.closed, 10_000, 'the daemon to close');
        await expectStillServing();
      }, CASE_MS);

      it(`survives protocol errors: unmasked, reserved opcode, oversized, bad close code (${path})`, async () => {
        const bad = [
          wsFrame(0x2, Buffer.from(DHCP_DISCOVER), { masked: false }),
          wsFrame(0x3, Buffer.from('x')),
          wsFrame(0x2, Buffer.alloc(0), { declaredLength: 2 ** 31 }),
          wsFrame(0x8, Buffer.from([0x03, 0xe7])), // close code 999: invalid (RFC 6455 §7.4)
          wsFrame(0x9, Buffer.alloc(200)), // control frame over 125 bytes
          wsFrame(0x1, Buffer.from([0xff, 0xfe])), // text that is not UTF-8
        ];
        for (const f of bad) {
          const c = await rawWebSocket(wsPort, path);
          c.s.write(f);
          await until(c.closed, 10_000, 'the daemon to close the connection');
          await sleep(50);
          expect(d.alive(), `the daemon died on a bad frame:\n${d.dump().slice(-3000)}`).toBe(true);
        }
        await expectStillServing();
      }, CASE_MS);
    }

    it('survives a reset mid the e1000 protocol (the daemon waiting for a DMA reply)', async () => {
      const c = await rawWebSocket(wsPort, '/e1000');
      const mmio = (offset: number, value: number) => ({ op: 'write', space: 'mmio', offset, size: 4, value }) as const;
      const records = encodeEmulatorRecords([
        { op: 'hello', version: 1, mac: new Uint8Array(6) },
        { op: 'write', space: 'config', offset: PCI.COMMAND, size: 2, value: COMMAND.MEMORY | COMMAND.BUS_MASTER },
        mmio(R.TDBAL, 0x1000),
        mmio(R.TDLEN, 128),
        mmio(R.TCTL, TCTL.EN),
        mmio(R.TDT, 1),
      ]);
      c.s.write(wsFrame(0x2, Buffer.from(records)));
      // Server frames are unmasked binary messages: find a DMA_READ among them.
      const sawDmaRead = (): boolean => {
        const b = c.received();
        const at = b.indexOf('\r\n\r\n') + 4;
        for (let i = at; i + 2 <= b.length; ) {
          let len = b[i + 1]! & 0x7f;
          let h = 2;
          if (len === 126) {
            if (i + 4 > b.length) return false;
            len = b.readUInt16BE(i + 2);
            h = 4;
          }
          if (i + h + len > b.length) return false;
          const recs = decodeDaemonMessage(new Uint8Array(b.subarray(i + h, i + h + len)));
          if (typeof recs !== 'string' && recs.some((r) => r.op === 'dma-read')) return true;
          i += h + len;
        }
        return false;
      };
      await until(sawDmaRead, 10_000, 'a DMA_READ from the daemon');
      c.s.resetAndDestroy();
      // A truncated record inside a well-formed message, then a half-close.
      const e = await rawWebSocket(wsPort, '/e1000');
      e.s.write(wsFrame(0x2, Buffer.from(records.subarray(0, 5))));
      e.s.end();
      await until(e.closed, 10_000, 'the daemon to close');
      await expectStillServing();
    }, CASE_MS);

    it('survives the ws client library resetting an open session while frames flow to it', async () => {
      const ws = new WebSocket(d.wsUrl(), { perMessageDeflate: false });
      ws.on('error', () => undefined);
      await new Promise<void>((res, rej) => ws.once('open', res).once('error', rej));
      for (let i = 0; i < 50; i++) ws.send(DHCP_DISCOVER);
      await sleep(20);
      (ws as unknown as { _socket: net.Socket })._socket.resetAndDestroy();
      await expectStillServing();
    }, CASE_MS);
  });

  describe('QEMU stream listeners', () => {
    it('survives resets mid length prefix, mid frame and after a frame (tcp)', async () => {
      const framed = Buffer.from(frameStream([DHCP_DISCOVER]));
      for (const cut of [2, 4 + 10, framed.length]) {
        const c = await rawConnect({ port: tcpStreamPort });
        c.s.write(framed.subarray(0, cut));
        await sleep(30);
        c.s.resetAndDestroy();
      }
      await expectStillServing();
    }, CASE_MS);

    it('survives half-closes mid length prefix, mid frame and after a frame (tcp and unix)', async () => {
      const framed = Buffer.from(frameStream([DHCP_DISCOVER]));
      for (const to of [{ port: tcpStreamPort }, { path: d.streamPath() }]) {
        for (const cut of [2, 4 + 10, framed.length]) {
          const c = await rawConnect(to);
          c.s.end(framed.subarray(0, cut));
          await until(c.closed, 10_000, 'the daemon to close');
        }
      }
      await expectStillServing();
    }, CASE_MS);

    it('survives abrupt closes of a unix stream mid prefix, mid frame and while the daemon answers', async () => {
      const framed = Buffer.from(frameStream([DHCP_DISCOVER]));
      for (const cut of [2, 4 + 10, framed.length]) {
        const c = await rawConnect({ path: d.streamPath() });
        c.s.write(Buffer.concat([framed, framed, framed.subarray(0, cut)]));
        c.s.destroy();
      }
      await expectStillServing();
    }, CASE_MS);
  });

  describe('QEMU dgram listener', () => {
    it('survives bogus datagrams and replies to a port that has closed (ICMP port unreachable)', async () => {
      const u = dgram.createSocket('udp4');
      u.on('error', () => undefined);
      await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
      for (const m of [Buffer.alloc(0), Buffer.alloc(1), randomBytes(13), randomBytes(1500), randomBytes(65_000), Buffer.from(DHCP_DISCOVER)]) {
        await new Promise<void>((r) => u.send(m, dgramPort, '127.0.0.1', () => { r(); }));
      }
      // The daemon answers the DISCOVERs to a port that is gone.
      for (let i = 0; i < 5; i++) u.send(DHCP_DISCOVER, dgramPort, '127.0.0.1');
      await new Promise<void>((r) => u.close(() => { r(); }));
      await expectStillServing();
    }, CASE_MS);
  });

  describe('--hostfwd listeners (owned by the ws keeper)', () => {
    const synsAtGuest = (): Decoded[] => toGuest.filter((f) => f.tcp !== undefined && (f.tcp.flags & TCP_FLAG.SYN) !== 0 && f.tcp.dstPort === 80);

    it('survives a TCP client that resets before the guest answers', async () => {
      const before = synsAtGuest().length;
      const c = await rawConnect({ port: fwdTcpPort });
      await until(() => synsAtGuest().length > before, 10_000, 'the SYN at the guest');
      c.s.resetAndDestroy();
      const d2 = await rawConnect({ port: fwdTcpPort });
      d2.s.end();
      await expectStillServing();
    }, CASE_MS);

    it('survives a TCP client that resets after the guest answers, mid data', async () => {
      const before = synsAtGuest().length;
      const c = await rawConnect({ port: fwdTcpPort });
      await until(() => synsAtGuest().length > before, 10_000, 'the SYN at the guest');
      const syn = synsAtGuest().at(-1)!;
      const seg = (flags: number, seq: number, ack: number, payload = Buffer.alloc(0)): Uint8Array =>
        ipv4Frame({
          protocol: IP_PROTO.TCP,
          src: ip('10.0.2.15'),
          dst: syn.ip!.src,
          payload: tcpBytes({ srcPort: 80, dstPort: syn.tcp!.srcPort, seq, ack, flags, payload }, ip('10.0.2.15'), syn.ip!.src),
        }, GATEWAY_MAC);
      const iss = 7000;
      wsGuest.send(seg(TCP_FLAG.SYN | TCP_FLAG.ACK, iss, (syn.tcp!.seq + 1) >>> 0));
      await sleep(100);
      wsGuest.send(seg(TCP_FLAG.ACK | TCP_FLAG.PSH, iss + 1, (syn.tcp!.seq + 1) >>> 0, Buffer.from('hello from the guest\n')));
      await until(() => c.received().length > 0, 10_000, 'guest data at the client');
      c.s.write('some data');
      c.s.resetAndDestroy();
      const flowSegments = (): string =>
        toGuest.filter((f) => f.tcp?.dstPort === 80 && f.tcp.srcPort === syn.tcp!.srcPort).map((f) => `flags=${f.tcp!.flags} seq=${f.tcp!.seq} len=${f.tcp!.payload.length}`).join('; ');
      // Linux often reports a peer's RST that follows data as EOF once the data is read, so
      // the guest sees the end of the flow as a FIN or an RST: either shows the daemon noticed.
      const ended = (): boolean => toGuest.some((f) => f.tcp?.srcPort === syn.tcp!.srcPort && (f.tcp.flags & (TCP_FLAG.RST | TCP_FLAG.FIN)) !== 0);
      await until(ended, 10_000, 'a FIN or RST to the guest').catch(() => undefined);
      expect(ended(), `the guest saw no end of the flow; segments to it: ${flowSegments()}`).toBe(true);
      await expectStillServing();
    }, CASE_MS);

    it('survives UDP clients that vanish before the guest replies, and bogus datagrams', async () => {
      const u = dgram.createSocket('udp4');
      u.on('error', () => undefined);
      await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
      const clientPort = u.address().port;
      u.send(Buffer.alloc(0), fwdUdpPort, '127.0.0.1');
      u.send('to the guest', fwdUdpPort, '127.0.0.1');
      await until(() => toGuest.some((f) => f.udp?.dstPort === 7), 10_000, 'the datagram at the guest');
      await new Promise<void>((r) => u.close(() => { r(); }));
      for (let i = 0; i < 3; i++) {
        const reply = udpBytes({ srcPort: 7, dstPort: clientPort, payload: Buffer.from('reply to nobody') }, ip('10.0.2.15'), ip('10.0.2.2'));
        wsGuest.send(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.2'), payload: reply }, GATEWAY_MAC));
      }
      await expectStillServing();
    }, CASE_MS);
  });

  describe('NAT host sockets', () => {
    it('survives a host peer that resets a guest connection, and a refused UDP flow', async () => {
      const sport = 40_000;
      const seg = (flags: number, seq: number, ack: number, payload = Buffer.alloc(0)): Uint8Array =>
        ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip('10.0.2.2'), payload: tcpBytes({ srcPort: sport, dstPort: hostPort, seq, ack, flags, payload }, ip('10.0.2.15'), ip('10.0.2.2')) }, GATEWAY_MAC);
      wsGuest.send(seg(TCP_FLAG.SYN, 100, 0));
      await until(() => toGuest.some((f) => f.tcp?.dstPort === sport && (f.tcp.flags & TCP_FLAG.SYN) !== 0), 10_000, 'the SYN-ACK');
      const synAck = toGuest.find((f) => f.tcp?.dstPort === sport && (f.tcp.flags & TCP_FLAG.SYN) !== 0)!;
      const ack = (synAck.tcp!.seq + 1) >>> 0;
      wsGuest.send(seg(TCP_FLAG.ACK, 101, ack));
      wsGuest.send(seg(TCP_FLAG.ACK | TCP_FLAG.PSH, 101, ack, Buffer.from('GET / HTTP/1.0\r\n\r\n')));
      await until(() => toGuest.some((f) => f.tcp?.dstPort === sport && (f.tcp.flags & TCP_FLAG.RST) !== 0), 10_000, 'the RST after the host reset');
      // UDP to a closed loopback port: the connected host socket gets ECONNREFUSED.
      const closed = await freePort('udp');
      for (let i = 0; i < 3; i++) {
        const dg = udpBytes({ srcPort: 40_001, dstPort: closed, payload: Buffer.from('anyone?') }, ip('10.0.2.15'), ip('10.0.2.2'));
        wsGuest.send(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.2'), payload: dg }, GATEWAY_MAC));
        await sleep(30);
      }
      await expectStillServing();
    }, CASE_MS);
  });

  describe('DNS forwarder sockets', () => {
    it('survives an upstream that refuses UDP queries and resets DNS over TCP', async () => {
      const isDnsReply = (f: Decoded, port: number): boolean => f.udp?.srcPort === 53 && f.udp.dstPort === port;
      // A query for example.com A (RFC 1035 §4.1), ID 0x4242.
      const query = Buffer.from('424201000001000000000000076578616d706c6503636f6d0000010001', 'hex');
      for (let i = 0; i < 3; i++) {
        const dg = udpBytes({ srcPort: 41_000 + i, dstPort: 53, payload: query }, ip('10.0.2.15'), ip('10.0.2.3'));
        wsGuest.send(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.3'), payload: dg }, GATEWAY_MAC));
      }
      // The guest gets SERVFAIL (RCODE 2) once the only upstream failed.
      await until(() => toGuest.some((f) => isDnsReply(f, 41_000) && (f.udp!.payload[3]! & 0x0f) === 2), 15_000, 'SERVFAIL for the UDP query');
      const sport = 41_100;
      const seg = (flags: number, seq: number, ack: number, payload = Buffer.alloc(0)): Uint8Array =>
        ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip('10.0.2.3'), payload: tcpBytes({ srcPort: sport, dstPort: 53, seq, ack, flags, payload }, ip('10.0.2.15'), ip('10.0.2.3')) }, GATEWAY_MAC);
      const fromDns = (flag: number): Decoded | undefined => toGuest.find((f) => f.tcp?.dstPort === sport && f.tcp.srcPort === 53 && (f.tcp.flags & flag) !== 0);
      wsGuest.send(seg(TCP_FLAG.SYN, 500, 0));
      await until(() => fromDns(TCP_FLAG.SYN) !== undefined, 10_000, 'the SYN-ACK from the DNS address');
      const ack = (fromDns(TCP_FLAG.SYN)!.tcp!.seq + 1) >>> 0;
      wsGuest.send(seg(TCP_FLAG.ACK, 501, ack));
      const framed = Buffer.concat([Buffer.from([0, query.length]), query]); // RFC 7766 §8 length prefix
      wsGuest.send(seg(TCP_FLAG.ACK | TCP_FLAG.PSH, 501, ack, framed));
      await until(() => fromDns(TCP_FLAG.RST) !== undefined, 10_000, 'the RST after the upstream reset');
      await expectStillServing();
    }, CASE_MS);
  });

  it('still serves a new guest at the end', async () => {
    const k = await streamKeeper(d.streamPath());
    try {
      expect(await k.dhcpOffer()).toBe(true);
    } finally {
      k.close();
    }
    await expectStillServing();
  }, CASE_MS);
});

describe.skipIf(!enabled)('forward clients with no session, a vanished resolv.conf directory, an uncreatable capture', () => {
  let d: Daemon;
  let tcpPort = 0;
  let udpPort = 0;
  let dir: string;

  beforeAll(async () => {
    tcpPort = await freePort('tcp');
    udpPort = await freePort('udp');
    dir = tempDir('tslirp-errpaths2-');
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc', 'resolv.conf'), 'nameserver 127.0.0.1\n');
    d = await startDaemon(
      [
        '--ws', '127.0.0.1:0',
        '--hostfwd', `tcp:127.0.0.1:${tcpPort}-:22`,
        '--hostfwd', `udp:127.0.0.1:${udpPort}-:53`,
        '--resolv-conf', join(dir, 'etc', 'resolv.conf'),
        '--pcap', join(dir, 'pcap') + '/', // a directory: one capture file per session
      ],
      { startTimeoutMs: 30_000 },
    );
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps running when the watched resolv.conf directory disappears', async () => {
    rmSync(join(dir, 'etc'), { recursive: true, force: true });
    await until(() => d.logs.some((l) => l['msg'] === 'cannot read resolv.conf: DNS queries get SERVFAIL until it is readable'), 15_000, 'the resolv.conf warning');
    expect(d.alive(), d.dump().slice(-3000)).toBe(true);
    expect(d.logsAtLeast(50)).toEqual([]);
  }, CASE_MS);

  it('resets TCP clients and drops UDP datagrams, logging the first of a burst and counting all', async () => {
    expect(d.logs.filter((l) => l['msg'] === 'session started'), 'a session would take the forwards').toEqual([]);
    for (let i = 0; i < 20; i++) {
      // The reset may arrive before 'connect' is reported: wait for 'close' either way.
      const s = net.connect(tcpPort, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise<void>((r) => s.once('close', () => { r(); }));
    }
    const u = dgram.createSocket('udp4');
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
    for (let i = 0; i < 7; i++) await new Promise<void>((r) => u.send('x', udpPort, '127.0.0.1', () => { r(); }));
    await new Promise<void>((r) => u.close(() => { r(); }));
    const refusedLines = (): Record<string, unknown>[] => d.logs.filter((l) => l['msg'] === 'hostfwd: client refused' && l['reason'] === 'hostfwd.no-session');
    await until(() => refusedLines().some((l) => l['protocol'] === 'udp'), 10_000, 'the UDP refusal log line');
    const tcpLines = refusedLines().filter((l) => l['protocol'] === 'tcp');
    // 20 refusals within a few seconds: the first is logged, the rest wait for the 10 s window.
    expect(tcpLines.length).toBeGreaterThanOrEqual(1);
    expect(tcpLines.length).toBeLessThanOrEqual(2);
    expect(tcpLines[0]).toMatchObject({ rule: `tcp:127.0.0.1:${tcpPort}-:22`, refused: 1, suppressed: 0, level: 40 });
    expect(d.alive()).toBe(true);
  }, 60_000);

  it('serves a guest whose capture file cannot be created, and says so', async () => {
    // The capture directory becomes a plain file: opening the session's capture fails (ENOTDIR).
    rmSync(join(dir, 'pcap'), { recursive: true, force: true });
    writeFileSync(join(dir, 'pcap'), 'not a directory');
    const toGuest: Decoded[] = [];
    const k = await wsKeeper(d.wsUrl(), toGuest);
    expect(await k.dhcpOffer()).toBe(true);
    k.close();
    await until(() => d.logs.some((l) => l['msg'] === 'capture file failed'), 10_000, 'the capture failure warning');
    expect(d.alive(), d.dump().slice(-3000)).toBe(true);
    expect(d.logsAtLeast(50)).toEqual([]);
  }, CASE_MS);

  it('reports the refusals in the daemon stopped line', async () => {
    const exit = await d.stop();
    expect(exit.code).toBe(0);
    const stopped = d.logs.find((l) => l['msg'] === 'daemon stopped');
    expect(stopped?.['forwards']).toMatchObject([
      { rule: `tcp:127.0.0.1:${tcpPort}-:22`, counters: { 'hostfwd.no-session': 20 } },
      { rule: `udp:127.0.0.1:${udpPort}-:53`, counters: { 'hostfwd.no-session': 7 } },
    ]);
  }, 60_000);
});
