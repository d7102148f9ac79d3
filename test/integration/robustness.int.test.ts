/**
 * The daemon against hostile links: 10,000 random, truncated and mutated frames over a
 * WebSocket, garbage on the length-prefixed stream link and on the dgram link. It must stay
 * up with bounded memory, and a fresh connection must still get a normal DHCP lease.
 * Needs no root: only loopback sockets. Frames are built here by hand (not with the stack's
 * own wire modules) so that a shared misunderstanding cannot hide.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { daemon as daemonReq, missingRequirements, shouldRun, tempDir } from '../helpers/guests.js';

const missing = missingRequirements([daemonReq]);
const enabled = shouldRun('robustness.int.test.ts (hostile frames against the daemon)', missing);

const GUEST_MAC = Buffer.from('020000aabbcc', 'hex');
const BROADCAST = Buffer.from('ffffffffffff', 'hex');

/** RFC 1071 checksum of `b`. */
function inetChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Ethernet + IPv4 + UDP around `payload` (UDP checksum 0: allowed over IPv4, RFC 768). */
function udpFrame(srcIp: string, dstIp: string, srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const ipHdr = Buffer.alloc(20);
  ipHdr[0] = 0x45;
  ipHdr.writeUInt16BE(20 + 8 + payload.length, 2);
  ipHdr.writeUInt16BE(0x1234, 4);
  ipHdr[8] = 64;
  ipHdr[9] = 17;
  Buffer.from(srcIp.split('.').map(Number)).copy(ipHdr, 12);
  Buffer.from(dstIp.split('.').map(Number)).copy(ipHdr, 16);
  ipHdr.writeUInt16BE(inetChecksum(ipHdr), 10);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(srcPort, 0);
  udp.writeUInt16BE(dstPort, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([BROADCAST, GUEST_MAC, Buffer.from([0x08, 0x00]), ipHdr, udp, payload]);
}

/** A BOOTP/DHCP client message (RFC 2131 §2) of the given type, with options. */
function dhcpMessage(type: number, xid: number, extra: Buffer = Buffer.alloc(0)): Buffer {
  const m = Buffer.alloc(240);
  m[0] = 1; // BOOTREQUEST
  m[1] = 1; // Ethernet
  m[2] = 6;
  m.writeUInt32BE(xid, 4);
  m.writeUInt16BE(0x8000, 10); // broadcast flag
  GUEST_MAC.copy(m, 28);
  m.writeUInt32BE(0x63825363, 236); // magic cookie
  const opts = Buffer.concat([Buffer.from([53, 1, type]), extra, Buffer.from([55, 4, 1, 3, 6, 51, 255])]);
  return Buffer.concat([m, opts]);
}

const dhcpFrame = (type: number, xid: number, extra?: Buffer): Buffer => udpFrame('0.0.0.0', '255.255.255.255', 68, 67, dhcpMessage(type, xid, extra));

function arpRequest(targetIp: string, senderIp = '10.0.2.15'): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  GUEST_MAC.copy(a, 8);
  Buffer.from(senderIp.split('.').map(Number)).copy(a, 14);
  Buffer.from(targetIp.split('.').map(Number)).copy(a, 24);
  return Buffer.concat([BROADCAST, GUEST_MAC, Buffer.from([0x08, 0x06]), a]);
}

/** A DHCP reply parsed just enough: message type (option 53), yiaddr, xid. */
function parseDhcpReply(f: Buffer): { type: number; yiaddr: string; xid: number } | undefined {
  if (f.length < 14 + 20 + 8 + 240 || f.readUInt16BE(12) !== 0x0800) return undefined;
  const ihl = (f[14]! & 0x0f) * 4;
  if (f[14 + 9] !== 17) return undefined;
  const udp = 14 + ihl;
  if (f.readUInt16BE(udp) !== 67 || f.readUInt16BE(udp + 2) !== 68) return undefined;
  const b = udp + 8;
  if (f[b] !== 2 || f.readUInt32BE(b + 236) !== 0x63825363) return undefined;
  let i = b + 240;
  let type = 0;
  while (i < f.length && f[i] !== 255) {
    if (f[i] === 0) {
      i++;
      continue;
    }
    if (f[i] === 53) type = f[i + 2]!;
    i += 2 + f[i + 1]!;
  }
  return { type, yiaddr: [...f.subarray(b + 16, b + 20)].join('.'), xid: f.readUInt32BE(b + 4) };
}

/** A WebSocket client that queues received frames. */
async function connectWs(url: string): Promise<{ ws: WebSocket; frames: Buffer[]; closed: () => boolean }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const frames: Buffer[] = [];
  let isClosed = false;
  ws.on('message', (data: Buffer) => {
    if (frames.length < 10_000) frames.push(Buffer.from(data));
  });
  ws.on('close', () => (isClosed = true));
  ws.on('error', () => (isClosed = true));
  await new Promise<void>((res, rej) => {
    ws.once('open', () => {
      res();
    });
    ws.once('error', rej);
  });
  return { ws, frames, closed: () => isClosed };
}

async function waitFrame(frames: Buffer[], pred: (f: Buffer) => boolean, timeoutMs: number): Promise<Buffer | undefined> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const f = frames.find(pred);
    if (f) return f;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** A normal DHCP DORA plus an ARP for the gateway on a fresh WebSocket connection. */
async function dhcpStillWorks(url: string): Promise<void> {
  const c = await connectWs(url);
  try {
    const xid = 0x5a5a0001;
    c.ws.send(dhcpFrame(1, xid));
    const offer = await waitFrame(c.frames, (f) => parseDhcpReply(f)?.type === 2, 5_000);
    expect(offer, 'no DHCPOFFER').toBeDefined();
    expect(parseDhcpReply(offer!)).toMatchObject({ yiaddr: '10.0.2.15', xid });
    // REQUEST with requested IP (50) and server identifier (54), RFC 2131 §4.3.2 SELECTING.
    c.ws.send(dhcpFrame(3, xid, Buffer.from([50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2])));
    const ack = await waitFrame(c.frames, (f) => parseDhcpReply(f)?.type === 5, 5_000);
    expect(ack, 'no DHCPACK').toBeDefined();
    expect(parseDhcpReply(ack!)).toMatchObject({ yiaddr: '10.0.2.15', xid });
    c.ws.send(arpRequest('10.0.2.2'));
    const reply = await waitFrame(c.frames, (f) => f.length >= 42 && f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2, 5_000);
    expect(reply, 'no ARP reply for 10.0.2.2').toBeDefined();
    expect([...reply!.subarray(28, 32)].join('.')).toBe('10.0.2.2');
  } finally {
    c.ws.close();
  }
}

/** Random, truncated, mutated and oversized frames. `i` picks the kind. */
function hostileFrame(i: number): Buffer {
  const valid = [dhcpFrame(1, i), dhcpFrame(3, i), arpRequest('10.0.2.2'), arpRequest('10.0.2.99', '0.0.0.0'), udpFrame('10.0.2.15', '10.0.2.3', 1000 + i, 53, randomBytes(40))];
  const base = valid[i % valid.length]!;
  switch (i % 6) {
    case 0:
      return randomBytes(Math.floor(Math.random() * 1600));
    case 1:
      return base.subarray(0, Math.floor(Math.random() * base.length));
    case 2: {
      const m = Buffer.from(base);
      for (let k = 0; k < 1 + (i % 5); k++) m[Math.floor(Math.random() * m.length)] = Math.floor(Math.random() * 256);
      return m;
    }
    case 3: {
      // A plausible Ethernet/IPv4 header with random lengths and fragment fields.
      const m = Buffer.concat([Buffer.from(base.subarray(0, 34)), randomBytes(Math.floor(Math.random() * 200))]);
      m.writeUInt16BE(Math.floor(Math.random() * 65536), 16);
      m.writeUInt16BE(Math.floor(Math.random() * 65536), 20);
      m[14] = 0x40 | Math.floor(Math.random() * 16);
      return m;
    }
    case 4:
      return i % 60 === 4 ? randomBytes(60_000 + (i % 10_000)) : Buffer.alloc(i % 14);
    default:
      return base;
  }
}

describe.skipIf(!enabled)('daemon robustness against hostile links', () => {
  let d: Daemon;
  let sockDir: string;
  let rssBefore = 0;

  beforeAll(async () => {
    sockDir = tempDir('tslirp-robust-');
    d = await startDaemon(['--ws', '127.0.0.1:0', '--stream', `unix:${join(sockDir, 'tslirp.sock')}`, '--dgram', 'udp:127.0.0.1:0', '--log-level', 'info']);
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(sockDir, { recursive: true, force: true });
  });

  it('has what it needs (the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('serves DHCP before the storm (warm-up, RSS baseline)', async () => {
    await dhcpStillWorks(d.wsUrl());
    await new Promise((r) => setTimeout(r, 300));
    rssBefore = d.rssKiB() ?? 0;
    expect(rssBefore).toBeGreaterThan(0);
  });

  it('survives 10,000 random, truncated and mutated WebSocket frames', async () => {
    const end = Date.now() + 60_000;
    let sent = 0;
    let reconnects = 0;
    let c = await connectWs(d.wsUrl());
    while (sent < 10_000 && Date.now() < end) {
      if (c.closed()) {
        // The daemon may close a connection that misbehaves (oversized or text messages); go on with a new one.
        reconnects++;
        expect(reconnects, 'the daemon closed too many connections').toBeLessThan(2_000);
        c = await connectWs(d.wsUrl());
      }
      if (sent % 500 === 499) c.ws.send(`text frame ${sent}`);
      else c.ws.send(hostileFrame(sent));
      sent++;
      if (c.ws.bufferedAmount > 1 << 20 || sent % 200 === 0) {
        const until = Date.now() + 5_000;
        while (c.ws.bufferedAmount > 0 && !c.closed() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      }
    }
    c.ws.close();
    console.log(`robustness.int: sent ${sent} ws frames, ${reconnects} reconnects, daemon RSS ${rssBefore} -> ${d.rssKiB()} KiB`);
    expect(sent).toBe(10_000);
    expect(d.alive(), d.dump().slice(-5000)).toBe(true);
  }, 90_000);

  it('survives garbage on the stream link (huge, zero and random length prefixes)', async () => {
    for (let conn = 0; conn < 20; conn++) {
      const s = net.connect(d.streamPath());
      await new Promise<void>((res, rej) => s.once('connect', res).once('error', rej));
      s.on('error', () => undefined);
      for (let k = 0; k < 100 && !s.destroyed; k++) {
        const f = hostileFrame(conn * 100 + k);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(k === 99 ? [0xffffffff, 0, 0x7fffffff, 65536 * 4][conn % 4]! : f.length);
        s.write(Buffer.concat([len, f]));
      }
      if (conn % 2 === 0) s.write(randomBytes(3)); // a partial length prefix left hanging
      await new Promise((r) => setTimeout(r, 20));
      s.destroy();
    }
    expect(d.alive(), d.dump().slice(-5000)).toBe(true);
  }, 30_000);

  it('survives garbage datagrams from 50 UDP peers', async () => {
    const { host, port } = d.dgram();
    for (let peer = 0; peer < 50; peer++) {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((res) => s.bind(0, '127.0.0.1', res));
      for (let k = 0; k < 40; k++) {
        const f = hostileFrame(peer * 40 + k).subarray(0, 65_000);
        await new Promise<void>((res) => s.send(f, port, host, () => res()));
      }
      s.close();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(d.alive(), d.dump().slice(-5000)).toBe(true);
  }, 30_000);

  it('stays up with bounded memory and still serves a normal DHCP exchange', async () => {
    await new Promise((r) => setTimeout(r, 500));
    expect(d.alive(), d.dump().slice(-5000)).toBe(true);
    await dhcpStillWorks(d.wsUrl());
    const rssAfter = d.rssKiB() ?? Infinity;
    console.log(`robustness.int: VmRSS before ${rssBefore} KiB, after ${rssAfter} KiB`);
    expect(rssAfter - rssBefore, `VmRSS ${rssBefore} -> ${rssAfter} KiB`).toBeLessThan(64 * 1024);
    expect(d.logsAtLeast(60), 'fatal log lines').toEqual([]);
    expect(d.otherOutput.filter((l) => /Error|Uncaught|at .*\.js:\d+/.test(l)), 'non-JSON error output').toEqual([]);
  }, 30_000);
});
