import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { attachE1000Device, type E1000WsSession, type FramePort } from '../../src/nic-e1000/ws-device.js';
import { decodeDaemonMessage, decodeEmulatorMessage, encodeEmulatorRecords, type EmulatorRecord } from '../../src/nic-e1000/ws-protocol.js';
import { LinuxLikeDriver } from './driver.js';
import { ethernet, GUEST_MAC, PEER_MAC } from './frames.js';
import { wsTarget } from './ws-target.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A daemon on loopback that mounts the e1000 session on every connection. */
async function daemon(): Promise<{ url: string; sessions: E1000WsSession[]; toStack: Uint8Array[]; toGuest: { push(f: Uint8Array): void }; closes: string[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/e1000' });
  await once(wss, 'listening');
  const sessions: E1000WsSession[] = [];
  const toStack: Uint8Array[] = [];
  const closes: string[] = [];
  let handler: (f: Uint8Array) => void = () => undefined;
  wss.on('connection', (ws) => {
    const port: FramePort = { send: (f) => toStack.push(f), onFrame: (h) => { handler = h; } };
    sessions.push(attachE1000Device(ws, port, { onClose: (r) => closes.push(r) }));
  });
  cleanups.push(() => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => { r(); }); }));
  const { port } = wss.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}/e1000`, sessions, toStack, toGuest: { push: (f) => { handler(f); } }, closes };
}

describe('nic-e1000 WebSocket device protocol', () => {
  it('round-trips every record through the codecs', () => {
    const recs: EmulatorRecord[] = [
      { op: 'hello', version: 1, mac: GUEST_MAC },
      { op: 'read', space: 'config', id: 7, offset: 0x3c, size: 1 },
      { op: 'write', space: 'mmio', offset: 0x3818, size: 4, value: 0xdeadbeef },
      { op: 'read', space: 'mmio', id: 0xffffffff, offset: 0x1fffc, size: 2 },
      { op: 'write', space: 'io', offset: 4, size: 4, value: 1 },
      { op: 'dma-reply', id: 3, data: Uint8Array.of(1, 2, 3) },
      { op: 'reset' },
    ];
    expect(decodeEmulatorMessage(encodeEmulatorRecords(recs))).toEqual(recs);
    const bytes = encodeEmulatorRecords(recs);
    for (let n = 1; n < bytes.length; n++) {
      const r = decodeEmulatorMessage(bytes.subarray(0, n));
      if (typeof r !== 'string') expect(r.length).toBeLessThan(recs.length); // a prefix that ends on a record boundary
    }
    expect(decodeEmulatorMessage(Uint8Array.of(0x99))).toBe('e1000-ws.bad-opcode');
    expect(decodeEmulatorMessage(Uint8Array.of(0x12, 0, 0, 0, 0, 0, 0, 0, 0, 3))).toBe('e1000-ws.bad-size');
  });

  it('decodes any bytes without throwing, and re-encodes what it accepts to the same bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const r = decodeEmulatorMessage(b);
      if (typeof r !== 'string') expect(encodeEmulatorRecords(r)).toEqual(b);
      const d = decodeDaemonMessage(b);
      expect(typeof d === 'string' || Array.isArray(d)).toBe(true);
    }), { numRuns: 2000 });
  });

  it('survives random messages from a hostile emulator: closes with a reason, never throws', async () => {
    const d = await daemon();
    for (let i = 0; i < 20; i++) {
      const ws = new WebSocket(d.url);
      await once(ws, 'open');
      const closed = once(ws, 'close');
      const junk = new Uint8Array(1 + ((i * 37) % 50)).map((_, k) => (k * 97 + i * 13) & 0xff);
      ws.send(encodeEmulatorRecords([{ op: 'hello', version: 1, mac: new Uint8Array(6) }]));
      ws.send(junk);
      ws.send(Uint8Array.of(0x16, 9, 0, 0, 0, 1, 0, 0, 0, 0)); // a DMA reply nobody asked for
      await closed;
    }
    expect(d.closes.length).toBe(20);
    for (const c of d.closes) expect(c).toMatch(/^e1000-ws\./);
  });

  it('runs the Linux-like driver through the protocol: probe, link, TX and RX with DMA round trips', async () => {
    const d = await daemon();
    const t = await wsTarget(d.url, d.toStack, d.toGuest, cleanups);
    const drv = new LinuxLikeDriver(t, 16, 16);
    expect(await drv.probe({ eepromWords: 64 })).toBe(0xbaba);
    await drv.open();
    await t.wait(600);
    expect(await t.irq()).toBe(true);
    await drv.interrupt();
    const frame = ethernet(PEER_MAC, GUEST_MAC, 0x0800, new Uint8Array(200).fill(0x42));
    const before = t.stats.dmaReads;
    await drv.transmit(frame);
    expect(await t.takeFrames(1)).toEqual([frame]);
    expect(t.stats.dmaReads - before).toBe(2); // the descriptor block, then the buffer
    const { txDone } = await drv.interrupt();
    expect(txDone).toBe(1);
    const inbound = ethernet(GUEST_MAC, PEER_MAC, 0x0800, new Uint8Array(300).fill(0x24));
    await t.inject(inbound);
    await t.wait(5);
    const { frames } = await drv.interrupt();
    expect(frames.map((f) => f.bytes.subarray(0, f.bytes.length - 4))).toEqual([inbound]);
    expect(d.sessions[0]!.device.exits.rxFrames).toBe(1);
  }, 30_000);

  it('holds frames while the ring is full and delivers them when RDT moves', async () => {
    const d = await daemon();
    const t = await wsTarget(d.url, d.toStack, d.toGuest, cleanups);
    const drv = new LinuxLikeDriver(t, 8, 8);
    await drv.probe({ eepromWords: 3 });
    await drv.open();
    await t.wait(600);
    await drv.interrupt();
    for (let i = 0; i < 12; i++) await t.inject(ethernet(GUEST_MAC, PEER_MAC, 0x0800, new Uint8Array(60).fill(i)));
    const got: number[] = [];
    for (let k = 0; k < 5 && got.length < 12; k++) {
      await t.wait(10);
      const { frames } = await drv.interrupt();
      for (const f of frames) got.push(f.bytes[14]!);
    }
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  }, 30_000);

  it('closes the session with a reason on a bad message', async () => {
    const d = await daemon();
    const ws = new WebSocket(d.url);
    await once(ws, 'open');
    const closed = once(ws, 'close');
    ws.send(Uint8Array.of(0x13, 0, 0, 0, 0, 4, 0, 0, 0, 0)); // a write before HELLO
    const [code, reason] = (await closed) as [number, Buffer];
    expect(code).toBe(1002);
    expect(reason.toString()).toBe('e1000-ws.no-hello');
    expect(d.closes).toEqual(['e1000-ws.no-hello']);
    const ws2 = new WebSocket(d.url);
    await once(ws2, 'open');
    const closed2 = once(ws2, 'close');
    ws2.send(Uint8Array.of(0x01, 1, 0, 0, 0, 0, 0, 0, 0x77));
    expect(((await closed2) as [number, Buffer])[1].toString()).toBe('e1000-ws.bad-opcode');
  });

  it('ends the session, and does not throw, on a frame ws rejects (an unmasked client frame)', async () => {
    // Before the session listened for 'error', ws's RangeError here was an unhandled 'error'
    // event: it killed the daemon (issue 17), and fails this test run.
    const d = await daemon();
    const u = new URL(d.url);
    const s = net.connect(Number(u.port), '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'connect');
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.write(`GET /e1000 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    for (let i = 0; i < 200 && !got.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toMatch(/^HTTP\/1\.1 101 /);
    const closedAt = once(s, 'close');
    s.write(Buffer.from([0x82, 0x02, 0x01, 0x02])); // binary, unmasked: RFC 6455 §5.1 forbids it
    await closedAt;
    for (let i = 0; i < 200 && d.closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(d.closes).toEqual(['closed']);
    expect(d.sessions[0]!.drops.get('e1000-ws.socket-error')).toBe(1);
  });
});
