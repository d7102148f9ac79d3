import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { GuestLink } from '../../src/link/link.js';
import { MAX_FRAME_LEN } from '../../src/link/link.js';
import { unmask, WsClientDeframer } from '../../src/link/ws-deframer.js';
import { wsFramesRoute } from '../../src/link/ws-frames.js';
import { listenWs } from '../../src/link/ws-server.js';
import { runs } from '../helpers/fuzz.js';
import { memoryLog, until } from './test-log.js';

/** A client frame as RFC 6455 §5.2 lays it out: masked with `mask`, the length in 7, 16 or 64 bits. */
function clientFrame(firstByte: number, payload: Uint8Array, mask: Uint8Array = randomBytes(4), masked = true): Buffer {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 0x10000 ? 2 : 8;
  const out = Buffer.alloc(2 + ext + (masked ? 4 : 0) + n);
  out[0] = firstByte;
  out[1] = (masked ? 0x80 : 0) | (n < 126 ? n : n < 0x10000 ? 126 : 127);
  if (ext === 2) out.writeUInt16BE(n, 2);
  if (ext === 8) out.writeUInt32BE(n, 6);
  let at = 2 + ext;
  if (masked) {
    out.set(mask, at);
    at += 4;
  }
  for (let i = 0; i < n; i++) out[at + i] = masked ? payload[i]! ^ mask[i & 3]! : payload[i]!;
  return out;
}

/** Cuts `bytes` at the given offsets (sorted, deduplicated) into chunks, as reads would. */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((a) => a % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(Buffer.from(bytes.subarray(from, p)));
    from = p;
  }
  return chunks;
}

/** Runs `chunks` through a deframer; what it gave the link, ws, and what it gave back. */
function deframe(chunks: Buffer[], maxPayload = MAX_FRAME_LEN): { frames: string[]; toWs: Buffer; givenBack: Buffer | undefined } {
  const frames: string[] = [];
  const toWs: Buffer[] = [];
  let givenBack: Buffer[] | undefined;
  const d = new WsClientDeframer(
    maxPayload,
    (f) => frames.push(Buffer.from(f).toString('hex')),
    (b) => toWs.push(Buffer.from(b)),
    (rest) => {
      givenBack = [Buffer.from(rest)];
    },
  );
  for (const c of chunks) {
    // After the hand-back ws's own reader gets the connection's later reads.
    if (givenBack !== undefined) givenBack.push(c);
    else d.push(c);
  }
  return { frames, toWs: Buffer.concat(toWs), givenBack: givenBack && Buffer.concat(givenBack) };
}

describe('WsClientDeframer', () => {
  it('unmasks like the RFC: byte i XOR mask[i mod 4], native and in JavaScript alike', () => {
    for (const n of [0, 1, 3, 4, 5, 31, 32, 33, 1514, 65535]) {
      const plain = randomBytes(n);
      const mask = randomBytes(4);
      const frame = clientFrame(0x82, plain, mask);
      const payload = frame.subarray(frame.length - n);
      unmask(payload, mask);
      expect(payload.equals(plain)).toBe(true);
    }
  });

  it('delivers every binary message whole and in order, pings and pongs to ws byte for byte, however the reads cut them', () => {
    const message = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('binary' as const), length: fc.integer({ min: 1, max: 140 }) }), weight: 5 },
      { arbitrary: fc.record({ kind: fc.constant('binary' as const), length: fc.integer({ min: 60, max: MAX_FRAME_LEN }) }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constantFrom('ping' as const, 'pong' as const), length: fc.integer({ min: 0, max: 125 }) }), weight: 1 },
    );
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (messages, cuts) => {
        const wire: Buffer[] = [];
        const binaries: string[] = [];
        const control: Buffer[] = [];
        for (const m of messages) {
          const payload = randomBytes(m.length);
          const frame = clientFrame(m.kind === 'binary' ? 0x82 : m.kind === 'ping' ? 0x89 : 0x8a, payload);
          wire.push(frame);
          if (m.kind === 'binary') binaries.push(payload.toString('hex'));
          else control.push(frame);
        }
        const out = deframe(cut(Buffer.concat(wire), cuts));
        expect(out.frames).toEqual(binaries);
        expect(out.toWs.equals(Buffer.concat(control))).toBe(true);
        expect(out.givenBack).toBeUndefined();
      }),
      { numRuns: runs(200) },
    );
  });

  it('gives ws the connection back from the first byte of any other frame, its header cut or not', () => {
    const before = clientFrame(0x82, randomBytes(100));
    const others: [string, Buffer][] = [
      ['text', clientFrame(0x81, Buffer.from('hello'))],
      ['close', clientFrame(0x88, Buffer.from([0x03, 0xe8]))],
      ['a first fragment', clientFrame(0x02, randomBytes(10))],
      ['an unmasked frame', clientFrame(0x82, randomBytes(10), undefined, false)],
      ['RSV1 set', clientFrame(0xc2, randomBytes(10))],
      ['an empty binary message', clientFrame(0x82, Buffer.alloc(0))],
      ['a message over the maximum', clientFrame(0x82, Buffer.alloc(MAX_FRAME_LEN + 1))],
      ['a ping over 125 bytes', clientFrame(0x89, randomBytes(126))],
    ];
    const after = clientFrame(0x82, randomBytes(20));
    for (const [what, other] of others) {
      const wire = Buffer.concat([before, other, after]);
      for (const cutAt of [before.length + 1, before.length + 3, before.length + 7, wire.length - 1]) {
        const out = deframe(cut(wire, [cutAt]));
        expect(out.frames, what).toHaveLength(1);
        expect(out.toWs.length, what).toBe(0);
        expect(out.givenBack?.equals(Buffer.concat([other, after])), `${what}, cut at ${cutAt}`).toBe(true);
      }
    }
  });
});

describe('WebSocket frames link reading its own frames (real sockets on loopback)', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function server(): Promise<{ url: string; got: Buffer[]; closed: string[]; links: GuestLink[] }> {
    const { log } = memoryLog();
    const got: Buffer[] = [];
    const closed: string[] = [];
    const links: GuestLink[] = [];
    const l = await listenWs({ host: '127.0.0.1', port: 0, log });
    l.route(
      '/',
      wsFramesRoute((link) => {
        links.push(link);
        return { frame: (f) => got.push(Buffer.from(f)), closed: (r) => closed.push(r) };
      }, log),
    );
    cleanup.push(() => l.close());
    return { url: l.address.url, got, closed, links };
  }

  it('carries messages of every length class between pings, answers the pings, and closes with the handshake', async () => {
    const s = await server();
    const ws = new WebSocket(s.url);
    cleanup.push(() => ws.terminate());
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    const pongs: string[] = [];
    ws.on('pong', (d) => pongs.push(d.toString()));
    const sent: Buffer[] = [];
    for (const n of [1, 42, 125, 126, 1514, 65535, 65536, MAX_FRAME_LEN, 60]) {
      const f = randomBytes(n);
      sent.push(f);
      ws.send(f);
      ws.ping(`p${n}`);
    }
    await until(() => s.got.length === sent.length && pongs.length === sent.length, 10_000, 'every frame and pong');
    expect(s.got.map((g) => g.toString('hex'))).toEqual(sent.map((f) => f.toString('hex')));
    expect(pongs).toEqual([1, 42, 125, 126, 1514, 65535, 65536, MAX_FRAME_LEN, 60].map((n) => `p${n}`));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.close(1000, 'bye');
    expect(await closed).toBe(1000);
    await until(() => s.closed.length === 1, 3000, 'the link closed');
    expect(s.closed[0]).toBe('peer closed (1000)');
  });

  it('still refuses a text message with 1003 after binary frames, and counts an empty message', async () => {
    const s = await server();
    const ws = new WebSocket(s.url);
    cleanup.push(() => ws.terminate());
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(randomBytes(100));
    ws.send(Buffer.alloc(0));
    ws.send('not a frame');
    expect(await closed).toBe(1003);
    expect(s.got).toHaveLength(1);
    expect(s.links[0]!.counters.get('link.bad-frame-length')).toBe(1);
  });
});
