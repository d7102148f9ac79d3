import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Tcp } from '../../src/tcp/wire.js';
import { ByteQueue, CHUNK_BYTES, dropSpareChunks, SPARE_POOL_BYTES, spareChunkBytes } from '../../src/tcp/byte-queue.js';
import { RING_IDLE_MS, windowShiftFor } from '../../src/tcp/conn.js';
import { seqAdd } from '../../src/util/seq.js';
import { ip } from '../helpers/frames.js';
import { ACK, bytes, concat, FIN, GATEWAY, GUEST, PSH, RST, SYN, tcpHarness } from '../nat/tcp-harness.js';
import { budgetMs, runs } from '../helpers/fuzz.js';

const TS = (value: number, echo = 0) => ({ timestamp: { value, echo } });

describe('tcp/byte-queue', () => {
  it('copies ranges across chunks and drops from the front', () => {
    const q = new ByteQueue();
    const all = bytes(1000);
    q.push(all.slice(0, 100));
    q.push(all.slice(100, 101));
    q.push(all.slice(101, 700));
    q.push(all.slice(700));
    expect(q.length).toBe(1000);
    const out = new Uint8Array(1000);
    q.copyOut(0, 1000, out, 0);
    expect(out).toEqual(all);
    const part = new Uint8Array(50);
    q.copyOut(90, 50, part, 0);
    expect(part).toEqual(all.subarray(90, 140));
    q.drop(150);
    q.copyOut(0, 10, part, 0);
    expect(part.subarray(0, 10)).toEqual(all.subarray(150, 160));
    q.copyOut(600, 250, new Uint8Array(250), 0);
    q.copyOut(0, 850, out, 0);
    expect(out.subarray(0, 850)).toEqual(all.subarray(150));
    q.drop(850);
    expect(q.length).toBe(0);
  });

  it('keeps its own copy: the pushed buffer may be reused at once', () => {
    const q = new ByteQueue();
    const scratch = Uint8Array.of(1, 2, 3);
    q.push(scratch);
    scratch.fill(9);
    const out = new Uint8Array(3);
    q.copyOut(0, 3, out, 0);
    expect([...out]).toEqual([1, 2, 3]);
  });

  it('holds a small reply in a 2 KiB chunk, kept when emptied; larger data in full chunks, released', () => {
    dropSpareChunks();
    const q = new ByteQueue();
    expect(q.capacity).toBe(0); // a connection that never carried host data holds no memory here
    q.push(new Uint8Array(77));
    expect(q.capacity).toBe(2 * 1024);
    q.drop(77);
    expect(q.capacity).toBe(2 * 1024); // request/response: the next reply reuses it
    q.push(new Uint8Array(40_000));
    expect(q.capacity).toBe(CHUNK_BYTES);
    q.drop(40_000);
    expect(q.capacity).toBe(0);
  });

  it('releases the chunk of an empty queue when asked, never one with bytes queued', () => {
    const q = new ByteQueue();
    q.push(new Uint8Array(10));
    expect(q.release()).toBe(false);
    expect(q.capacity).toBe(2 * 1024);
    q.drop(10);
    expect(q.release()).toBe(true);
    expect(q.capacity).toBe(0);
    q.push(Uint8Array.of(7));
    const out = new Uint8Array(1);
    q.copyOut(0, 1, out, 0);
    expect(out[0]).toBe(7);
  });

  it('keeps freed chunks in a bounded process-wide pool that every queue takes from', () => {
    dropSpareChunks();
    const a = new ByteQueue();
    a.push(new Uint8Array(300_000).fill(5));
    expect(a.capacity).toBe(2 * CHUNK_BYTES); // what it holds, rounded up to chunks: no doubling
    a.drop(CHUNK_BYTES + 10);
    expect(a.capacity).toBe(CHUNK_BYTES); // acknowledged chunks go back as the front moves
    expect(spareChunkBytes()).toBe(CHUNK_BYTES);
    a.drop(300_000);
    expect(a.capacity).toBe(0);
    expect(spareChunkBytes()).toBe(2 * CHUNK_BYTES);
    // Another queue's bulk read takes the spares: no allocation.
    const b = new ByteQueue();
    const data = Uint8Array.from({ length: 100_000 }, (_, i) => i & 0xff);
    b.push(data);
    expect(b.capacity).toBe(CHUNK_BYTES);
    expect(spareChunkBytes()).toBe(CHUNK_BYTES);
    const out = new Uint8Array(100_000);
    b.copyOut(0, 100_000, out, 0);
    expect(Buffer.compare(out, data)).toBe(0); // the spares' old bytes never show
    // Bounded: chunks freed past SPARE_POOL_BYTES are left to the garbage collector.
    const qs = Array.from({ length: 24 }, () => new ByteQueue());
    for (const q of qs) q.push(new Uint8Array(1 << 20));
    for (const q of qs) q.drop(1 << 20);
    expect(spareChunkBytes()).toBe(SPARE_POOL_BYTES);
    dropSpareChunks();
  });

  it('keeps a small reply in its small first chunk and appends full chunks after it', () => {
    dropSpareChunks();
    const q = new ByteQueue();
    const all = Uint8Array.from({ length: 200_000 }, (_, i) => Math.imul(i, 0x9e3779b1) >>> 24);
    q.push(all.subarray(0, 1000));
    expect(q.capacity).toBe(2 * 1024);
    q.push(all.subarray(1000));
    expect(q.capacity).toBe(2 * 1024 + CHUNK_BYTES);
    const seg = new Uint8Array(65_000);
    for (const from of [0, 1500, 2048, 70_000, 200_000 - 65_000]) {
      q.copyOut(from, 65_000, seg, 0);
      expect(Buffer.compare(seg, all.subarray(from, from + 65_000)), `a segment at ${from}`).toBe(0);
    }
    q.drop(3000); // past the small chunk: it goes (to the collector, not the pool)
    expect(q.capacity).toBe(CHUNK_BYTES);
    expect(spareChunkBytes()).toBe(0);
    q.copyOut(0, 65_000, seg, 0);
    expect(Buffer.compare(seg, all.subarray(3000, 68_000))).toBe(0);
    dropSpareChunks();
  });

  it('matches a model queue through pushes, drops and reads across chunks', () => {
    // The model is the range [head, tail) of an endless byte stream whose byte i is valueAt(i):
    // pushes extend tail, drops advance head. Values do not repeat with a period of 256, so a
    // read from the wrong place cannot pass by chance. (An earlier model kept a
    // number[] and compared with toEqual: 21 s on a loaded machine against a 20 s budget.)
    const valueAt = (i: number): number => Math.imul(i, 0x9e3779b1) >>> 24;
    const op = fc.oneof(
      fc.record({ push: fc.integer({ min: 0, max: 20_000 }) }),
      fc.record({ drop: fc.integer({ min: 0, max: 25_000 }) }),
      fc.record({ read: fc.tuple(fc.nat(), fc.nat()) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 60 }), (ops) => {
        const q = new ByteQueue();
        let head = 0;
        let tail = 0;
        for (const o of ops) {
          if ('push' in o) {
            const chunk = new Uint8Array(o.push);
            for (let k = 0; k < chunk.length; k++) chunk[k] = valueAt(tail + k);
            q.push(chunk);
            tail += chunk.length;
          } else if ('drop' in o) {
            q.drop(o.drop);
            head += Math.min(o.drop, tail - head);
          } else if (tail > head) {
            const from = o.read[0] % (tail - head);
            const n = o.read[1] % (tail - head - from + 1);
            const out = new Uint8Array(n + 2).fill(0xa5);
            q.copyOut(from, n, out, 1);
            const bad = out.subarray(1, n + 1).findIndex((v, k) => v !== valueAt(head + from + k));
            expect(bad, `byte ${bad} of a ${n}-byte read at ${from}`).toBe(-1);
            expect([out[0], out[n + 1]]).toEqual([0xa5, 0xa5]);
          }
          expect(q.length).toBe(tail - head);
        }
        // An emptied queue keeps at most a small chunk.
        q.drop(q.length);
        expect(q.capacity).toBeLessThanOrEqual(16 * 1024);
      }),
      { numRuns: runs(200) },
    );
  }, budgetMs(30_000));
});

describe('tcp/conn options', () => {
  it('picks the smallest window shift that fits the buffer', () => {
    expect(windowShiftFor(65535)).toBe(0);
    expect(windowShiftFor(65536)).toBe(1);
    expect(windowShiftFor(1 << 20)).toBe(5);
    expect(windowShiftFor(2 ** 40)).toBe(14);
  });
});

describe('tcp/conn handshake', () => {
  it('answers a guest SYN only after the host connects, with negotiated options', () => {
    const t = tcpHarness();
    expect(t.guestSends({})).toEqual([]);
    expect(t.host.calls).toEqual([['tcpConnect', 1, { addr: ip('127.0.0.1'), port: 80 }]]);
    expect(t.table.list(0)).toMatchObject([{ protocol: 'tcp', state: 'host-connecting', guest: { addr: GUEST, port: 40000 }, remote: { addr: GATEWAY, port: 80 } }]);
    const [synAck] = t.connect();
    expect(synAck).toMatchObject({ srcPort: 80, dstPort: 40000, ack: 1001, flags: SYN | ACK });
    expect(synAck!.options).toMatchObject({ mss: 1460, windowScale: 5, sackPermitted: true, timestamp: { echo: 5000 } });
    expect(synAck!.window).toBe(65535);
    // Retransmitted with the same ISN after the initial RTO (1 s).
    expect(t.advance(999)).toEqual([]);
    const [again] = t.advance(1);
    expect(again).toMatchObject({ seq: synAck!.seq, ack: 1001, flags: SYN | ACK });
    // The handshake completes.
    expect(t.guestSends({ flags: ACK, seq: 1001, ack: seqAdd(synAck!.seq, 1), options: TS(5001, 1) })).toEqual([]);
    expect(t.table.list(0)[0]!.state).toBe('established');
  });

  it('uses the MSS of the link MTU, up to 65520-byte MTUs', () => {
    const t = tcpHarness({ network: { mtu: 65520 } });
    t.guestSends({ options: { mss: 65495, windowScale: 7 } });
    const [synAck] = t.connect();
    expect(synAck!.options).toEqual({ mss: 65480, windowScale: 5 });
  });

  it('offers nothing the guest did not offer (no window scale, SACK, timestamps); MSS defaults to 536', () => {
    const t = tcpHarness();
    t.guestSends({ options: {}, window: 8192 });
    const [synAck] = t.connect();
    expect(synAck!.options).toEqual({ mss: 1460 });
    t.guestSends({ flags: ACK, seq: 1001, ack: seqAdd(synAck!.seq, 1), options: {}, window: 8192 });
    const out = t.data(bytes(2000));
    expect(out.map((s) => s.payload.length)).toEqual([536, 536, 536, 392]);
    expect(out.every((s) => Object.keys(s.options).length === 0)).toBe(true);
    // Without window scaling our window field is at most 65535 and unscaled.
    expect(out[0]!.window).toBe(65535);
  });

  it('absorbs SYN retransmissions while the host connects', () => {
    const t = tcpHarness();
    t.guestSends({});
    expect(t.guestSends({})).toEqual([]);
    expect(t.guestSends({})).toEqual([]);
    expect(t.host.callsOf('tcpConnect')).toHaveLength(1);
    expect(t.engine.stats.get('tcp.syn-absorbed')).toBe(2);
    expect(t.connect()).toHaveLength(1);
  });

  it('resends the SYN-ACK when the guest retransmits its SYN', () => {
    const t = tcpHarness();
    t.guestSends({});
    const [synAck] = t.connect();
    const [again] = t.guestSends({});
    expect(again).toEqual(synAck);
  });

  it('answers a refused connect with RST|ACK', () => {
    const t = tcpHarness();
    t.guestSends({});
    const [rst] = t.error('ECONNREFUSED');
    expect(rst).toMatchObject({ seq: 0, ack: 1001, flags: RST | ACK });
    expect(t.table.count('tcp')).toBe(0);
  });

  it.each([['EHOSTUNREACH', 1], ['ENETUNREACH', 0], ['ETIMEDOUT', 1], ['EACCES', 13]])('answers %s with ICMP unreachable code %i', (code, icmp) => {
    const t = tcpHarness();
    t.guestSends({}, ip('192.0.2.9'));
    t.engine.onHostError(1, code, 0);
    const [s] = t.take();
    expect(s).toMatchObject({ kind: 'icmp', type: 3, code: icmp, original: { src: GUEST, dst: ip('192.0.2.9'), protocol: 6 } });
    expect(t.table.count('tcp')).toBe(0);
  });

  it('bounds the host connect with a timeout, then ICMP host unreachable', () => {
    const t = tcpHarness({ limits: { connectTimeoutMs: 5000 } });
    t.guestSends({});
    t.advance(4999);
    expect(t.take()).toEqual([]);
    t.clock.advance(1);
    t.engine.advance(t.clock.now());
    expect(t.take()).toMatchObject([{ kind: 'icmp', type: 3, code: 1 }]);
    expect(t.host.callsOf('tcpReset')).toEqual([[1]]);
    expect(t.table.count('tcp')).toBe(0);
  });

  it('resets the host socket when the guest resets while connecting', () => {
    const t = tcpHarness();
    t.guestSends({});
    t.guestSends({ flags: RST, seq: 1001 });
    expect(t.host.callsOf('tcpReset')).toEqual([[1]]);
    expect(t.connect()).toEqual([]);
  });

  it('gives up the handshake after the SYN-ACK retries', () => {
    const t = tcpHarness({ limits: { synRetries: 2 } });
    t.guestSends({});
    t.connect();
    expect(t.advance(1000)).toHaveLength(1);
    expect(t.advance(2000)).toHaveLength(1);
    expect(t.advance(4000)).toEqual([]);
    expect(t.host.callsOf('tcpReset')).toEqual([[1]]);
    expect(t.table.count('tcp')).toBe(0);
  });

  it('answers a bad ACK in SYN-RECEIVED with RST', () => {
    const t = tcpHarness();
    t.guestSends({});
    t.connect();
    expect(t.guestSends({ flags: ACK, seq: 1001, ack: 12345 })).toMatchObject([{ flags: RST, seq: 12345 }]);
  });
});

describe('tcp/conn data', () => {
  it('writes in-order guest data to the host and ACKs once per flush', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    const payload = bytes(3000);
    t.engine.input(ipv(), seg({ seq: 1001, ack: iss + 1, payload: payload.subarray(0, 1448) }), 0);
    t.engine.input(ipv(), seg({ seq: 1001 + 1448, ack: iss + 1, payload: payload.subarray(1448, 2896) }), 0);
    t.engine.input(ipv(), seg({ seq: 1001 + 2896, ack: iss + 1, payload: payload.subarray(2896) }), 0);
    t.engine.flush(0);
    const acks = t.takeTcp();
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({ flags: ACK, ack: 1001 + 3000, seq: iss + 1 });
    expect(t.written()).toEqual(payload);
    expect(t.table.list(0)[0]!.bytesFromGuest).toBe(3000);
  });

  it('delays the ACK of a lone segment by 40 ms', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    expect(t.guestSends(seg({ seq: 1001, ack: iss + 1, payload: bytes(10) }))).toEqual([]);
    expect(t.advance(39)).toEqual([]);
    expect(t.advance(1)).toMatchObject([{ flags: ACK, ack: 1011 }]);
  });

  it('holds out-of-order segments, SACKs them, and delivers when the hole fills', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    const p = bytes(3000);
    const [dup1] = t.guestSends(seg({ seq: 2001, ack: iss + 1, payload: p.subarray(1000, 2000) }));
    expect(dup1).toMatchObject({ ack: 1001, options: { sack: [[2001, 3001]] } });
    const [dup2] = t.guestSends(seg({ seq: 3501, ack: iss + 1, payload: p.subarray(2500, 3000) }));
    expect(dup2!.options.sack).toEqual([[3501, 4001], [2001, 3001]]);
    // Overlapping and duplicate pieces.
    t.guestSends(seg({ seq: 2501, ack: iss + 1, payload: p.subarray(1500, 2700) }));
    t.guestSends(seg({ seq: 2001, ack: iss + 1, payload: p.subarray(1000, 2000) }));
    expect(t.written()).toEqual(new Uint8Array(0));
    const [ack] = t.guestSends(seg({ seq: 1001, ack: iss + 1, payload: p.subarray(0, 1000) }));
    expect(ack).toMatchObject({ ack: 4001 });
    expect(ack!.options.sack).toBeUndefined();
    expect(t.written()).toEqual(p);
  });

  it('ACKs a duplicate segment at once and does not write it twice', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    t.guestSends(seg({ seq: 1001, ack: iss + 1, payload: bytes(100) }));
    t.advance(40);
    expect(t.guestSends(seg({ seq: 1001, ack: iss + 1, payload: bytes(100) }))).toMatchObject([{ ack: 1101 }]);
    expect(t.written()).toHaveLength(100);
  });

  it('segments host data to the MSS and the guest window, and resumes as ACKs open it', () => {
    const t = tcpHarness();
    const { iss } = t.open({ window: 64240, options: { mss: 1460, windowScale: 0, timestamp: { value: 1, echo: 0 } } });
    const data = bytes(5000);
    // Guest window 2000 bytes (no scaling).
    t.guestSends(seg({ seq: 1001, ack: iss + 1, window: 2000 }));
    const out = t.data(data);
    expect(out.map((s) => s.payload.length)).toEqual([1448]);   // the 552-byte rest waits (sender SWS avoidance)
    const out2 = t.guestSends(seg({ seq: 1001, ack: iss + 1 + 1448, window: 8000 }));
    expect(out2.map((s) => s.payload.length)).toEqual([1448, 1448, 656]);
    expect(concat([...out, ...out2].map((s) => s.payload))).toEqual(data);
    expect(out2[2]!.flags).toBe(ACK | PSH);
  });

  it('releases an idle connection\'s send queue memory RING_IDLE_MS after the guest acknowledged everything', () => {
    const t = tcpHarness();
    const { iss } = t.open({ window: 64240 });
    const out = t.data(bytes(100));
    expect(out.map((s) => s.payload.length)).toEqual([100]);
    const conn = t.engine.conn(1)!;
    expect(conn.vars.queueBytes).toBe(2 * 1024);
    t.guestSends(seg({ seq: 1001, ack: iss + 1 + 100, window: 500 }));
    expect(conn.vars).toMatchObject({ queued: 0, queueBytes: 2 * 1024 }); // request/response: kept a while
    expect(t.advance(RING_IDLE_MS - 1)).toEqual([]);
    expect(conn.vars.queueBytes).toBe(2 * 1024);
    expect(t.advance(1)).toEqual([]);
    expect(conn.vars.queueBytes).toBe(0);
    // The next reply gets a chunk again.
    expect(t.data(bytes(10)).map((s) => s.payload.length)).toEqual([10]);
  });

  it('uses the guest window scale', () => {
    const t = tcpHarness();
    const { iss } = t.open({ window: 64240 });
    t.guestSends(seg({ seq: 1001, ack: iss + 1, window: 100 }));   // 100 << 7 = 12800
    const out = t.data(bytes(20000));
    expect(out.reduce((n, s) => n + s.payload.length, 0)).toBe(12800 - (12800 % 1448) + 0);
  });

  it('advertises the receive budget minus what the host buffers, never shrinks it, and reopens on drain', () => {
    const t = tcpHarness({ limits: { rcvBufferBytes: 256 * 1024 } });    // window shift 3
    const { iss } = t.open();
    t.host.buffered = 200 * 1024;
    const [a1] = t.guestSends(seg({ seq: 1001, ack: iss + 1, payload: bytes(1000), flags: ACK | PSH }), undefined);
    expect(a1).toBeUndefined();
    const [a2] = t.advance(40);
    // 56 KiB free (7168 << 3), but the SYN-ACK promised 65535 bytes past 1001: the edge holds (RFC 9293 §3.8.6.2.2).
    expect(a2).toMatchObject({ ack: 2001, window: Math.ceil((65535 - 1000) / 8) });
    // The host buffers everything: the window would be 0, but the edge already promised stays.
    t.host.buffered = 256 * 1024;
    t.guestSends(seg({ seq: 2001, ack: iss + 1, payload: bytes(1000) }));
    const [a3] = t.guestSends(seg({ seq: 3001, ack: iss + 1, payload: bytes(1000) }));
    expect(a3!.ack + a3!.window * 8).toBe(a2!.ack + a2!.window * 8);
    t.host.buffered = 0;
    const [update] = t.drained();
    expect(update).toMatchObject({ flags: ACK, ack: 4001, window: (256 * 1024) / 8 });
  });

  it('closes the window to zero when the host is slow, and the guest probe is answered', () => {
    const t = tcpHarness({ limits: { rcvBufferBytes: 64 * 1024 } });
    const { iss } = t.open();
    t.host.buffered = 64 * 1024;
    let seq = 1001;
    let lastAck: Tcp | undefined;
    for (let i = 0; i < 60; i++) {
      const out = t.guestSends(seg({ seq, ack: iss + 1, payload: bytes(1448) }));
      if (out.length > 0) lastAck = out[out.length - 1];
      seq += 1448;
      if (lastAck?.window === 0) break;
    }
    expect(lastAck!.window).toBe(0);
    const edge = lastAck!.ack;
    // A zero-window probe (1 byte at the edge) is not accepted, but answered.
    const [probeAck] = t.guestSends(seg({ seq: edge, ack: iss + 1, payload: bytes(1) }));
    expect(probeAck).toMatchObject({ ack: edge, window: 0 });
    t.host.buffered = 0;
    const [update] = t.drained();
    expect(update!.window).toBeGreaterThan(0);
  });
});

describe('tcp/conn retransmission', () => {
  it('retransmits on RTO with exponential backoff (RFC 6298), then resets after the retries', () => {
    const t = tcpHarness({ limits: { maxRetransmits: 3 } });
    const { iss } = t.open();
    const [s] = t.data(bytes(100));
    expect(s).toMatchObject({ seq: iss + 1 });
    // Initial RTO with an RTT sample from the handshake's timestamp: minimum 200 ms.
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      let out: unknown[] = [];
      let waited = 0;
      while (out.length === 0 && waited < 100_000) {
        out = t.advance(10);
        waited += 10;
      }
      times.push(waited);
    }
    expect(times.slice(0, 3)).toEqual([1000, 2000, 4000]);   // no RTT sample yet: initial 1 s, doubled
    expect(t.host.callsOf('tcpReset')).toEqual([[1]]);
    expect(t.table.count('tcp')).toBe(0);
  });

  it('measures the RTT without timestamps (Karn: not on retransmissions) and keeps the RTO at the 200 ms floor', () => {
    const t = tcpHarness();
    const { iss } = t.open({ options: { mss: 1460 } });
    t.data(bytes(100));
    t.advance(5);
    t.guestSends(seg({ seq: 1001, ack: iss + 101, options: {} }));
    expect(t.engine.conn(1)!.vars.srttMs).toBe(5);
    expect(t.engine.conn(1)!.vars.rtoMs).toBe(200);
  });

  it('fast-retransmits on three duplicate ACKs', () => {
    const t = tcpHarness();
    const { iss } = t.open({ options: { mss: 1460, windowScale: 7 } });
    const out = t.data(bytes(1460 * 8));
    expect(out).toHaveLength(8);
    const una = iss + 1 + 1460;
    const dup = () => t.guestSends(seg({ seq: 1001, ack: una, options: {} }));
    dup();
    expect(dup()).toEqual([]);
    expect(dup()).toEqual([]);
    const [re] = dup();
    expect(re).toMatchObject({ seq: una });
    expect(re!.payload).toEqual(out[1]!.payload);
    expect(t.engine.stats.get('tcp.fast-retransmit')).toBe(1);
  });

  it('retransmits the SACK holes, skipping what the guest has', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    const out = t.data(bytes(1448 * 8));
    expect(out).toHaveLength(8);
    const s = (k: number) => (iss + 1 + 1448 * k) >>> 0;
    // Segments 0 and 3 lost; the guest SACKs 1–2 and 4–7.
    const ackTo = (sack: [number, number][]) => t.guestSends(seg({ seq: 1001, ack: s(0), options: { ...TS(6000, 1), sack } }));
    expect(ackTo([[s(1), s(3)]])).toEqual([]);
    // Three segments SACKed above the hole: lost (RFC 6675 IsLost), before a third dupack.
    const re = ackTo([[s(4), s(6)], [s(1), s(3)]]);
    expect(re.map((x) => x.seq)).toEqual([s(0)]);
    // Further dupacks retransmit the next hole (segment 3), not what is SACKed.
    const re2 = ackTo([[s(4), s(8)], [s(1), s(3)]]);
    expect(re2.map((x) => x.seq)).toEqual([s(3)]);
    // The whole lot acknowledged: recovery ends.
    t.guestSends(seg({ seq: 1001, ack: s(8), options: TS(6001, 1) }));
    expect(t.engine.conn(1)!.vars.queued).toBe(0);
  });

  it('counts SACK-bearing ACKs as duplicates even when the window moves (RFC 6675)', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    t.data(bytes(1448 * 6));
    const s = (k: number) => (iss + 1 + 1448 * k) >>> 0;
    // The receiving application reads: every ACK carries a different window.
    t.guestSends(seg({ seq: 1001, ack: s(0), window: 600, options: { ...TS(6000, 1), sack: [[s(1), s(2)]] } }));
    t.guestSends(seg({ seq: 1001, ack: s(0), window: 601, options: { ...TS(6000, 1), sack: [[s(1), s(3)]] } }));
    const re = t.guestSends(seg({ seq: 1001, ack: s(0), window: 602, options: { ...TS(6000, 1), sack: [[s(1), s(4)]] } }));
    expect(re.map((x) => x.seq)).toEqual([s(0)]);
  });

  it('resends a lost retransmission after about two round trips, not after the RTO', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    t.data(bytes(1448 * 6));
    const s = (k: number) => (iss + 1 + 1448 * k) >>> 0;
    const ackTo = (sack: [number, number][]) => t.guestSends(seg({ seq: 1001, ack: s(0), options: { ...TS(6000, 1), sack } }));
    ackTo([[s(1), s(2)]]);
    ackTo([[s(1), s(3)]]);
    expect(ackTo([[s(1), s(4)]]).map((x) => x.seq)).toEqual([s(0)]);
    // That retransmission is lost too: the recovery timer (10 ms floor) resends it.
    expect(t.advance(9)).toEqual([]);
    expect(t.advance(1).map((x) => x.seq)).toEqual([s(0)]);
    expect(t.engine.stats.get('tcp.recovery-retransmit')).toBe(1);
    expect(t.engine.stats.get('tcp.rto')).toBe(0);
  });

  it('starts with RFC 6928\'s initial window: 2 segments of a 65480-byte MSS', () => {
    const t = tcpHarness({ network: { mtu: 65520 } });
    const { iss } = t.open({ options: { mss: 65480, windowScale: 7 }, window: 65535 });
    t.guestSends(seg({ seq: 1001, ack: iss + 1, window: 0xffff, options: {} }));
    expect(t.data(bytes(400_000)).map((x) => x.payload.length)).toEqual([65480, 65480]);
  });

  it('probes a zero window and sends when it opens', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    t.guestSends(seg({ seq: 1001, ack: iss + 1, window: 0 }));
    expect(t.data(bytes(3000))).toEqual([]);
    expect(t.advance(999)).toEqual([]);
    const [probe] = t.advance(1);
    expect(probe).toMatchObject({ seq: iss, flags: ACK });
    expect(probe!.payload.length).toBe(0);
    expect(t.advance(1999)).toEqual([]);
    expect(t.advance(1)).toHaveLength(1);    // backed off: 2 s
    const out = t.guestSends(seg({ seq: 1001, ack: iss + 1, window: 100 }));
    expect(out.reduce((n, x) => n + x.payload.length, 0)).toBe(3000);
  });

  it('pauses the host socket when the send queue is full and resumes at half', () => {
    const t = tcpHarness({ limits: { sndBufferBytes: 10_000 } });
    const { iss } = t.open();
    t.guestSends(seg({ seq: 1001, ack: iss + 1, window: 0 }));
    t.data(bytes(6000));
    t.data(bytes(6000));
    expect(t.host.callsOf('tcpPause')).toEqual([[1, true]]);
    t.guestSends(seg({ seq: 1001, ack: iss + 1, window: 1000 }));
    t.guestSends(seg({ seq: 1001, ack: iss + 1 + 7240, window: 1000 }));
    expect(t.host.callsOf('tcpPause')).toEqual([[1, true], [1, false]]);
  });
});

describe('tcp/conn close', () => {
  it('guest FIN first: host end(), close-wait, then host end → FIN → last-ack → closed', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    const [ack] = t.guestSends(seg({ seq: 1001, ack: iss + 1, flags: ACK | FIN }));
    expect(ack).toMatchObject({ ack: 1002, flags: ACK });
    expect(t.host.callsOf('tcpEnd')).toEqual([[1]]);
    expect(t.table.list(0)[0]!.state).toBe('close-wait');
    // The host still answers (half-close), then ends.
    const out = t.data(bytes(100));
    expect(out[0]!.payload.length).toBe(100);
    const [fin] = t.end();
    expect(fin).toMatchObject({ flags: ACK | FIN, seq: iss + 101 });
    t.guestSends(seg({ seq: 1002, ack: iss + 102 }));
    expect(t.host.callsOf('close')).toEqual([[1]]);
    expect(t.table.count('tcp')).toBe(0);
  });

  it('host end first: FIN with the last data, fin-wait-2, guest FIN → time-wait → gone', () => {
    const t = tcpHarness({ limits: { timeWaitMs: 1000 } });
    const { iss } = t.open();
    t.data(bytes(10));
    const [fin] = t.end();
    expect(fin).toMatchObject({ flags: ACK | FIN, seq: iss + 11, payload: new Uint8Array(0) });
    t.guestSends(seg({ seq: 1001, ack: iss + 12 }));
    expect(t.table.list(0)[0]!.state).toBe('fin-wait-2');
    // Guest data still flows to the host in FIN-WAIT-2 (half-close).
    t.guestSends(seg({ seq: 1001, ack: iss + 12, payload: bytes(5) }));
    expect(t.written()).toHaveLength(5);
    const [ack] = t.guestSends(seg({ seq: 1006, ack: iss + 12, flags: ACK | FIN }));
    expect(ack).toMatchObject({ ack: 1007 });
    expect(t.table.list(0)[0]!.state).toBe('time-wait');
    expect(t.host.callsOf('close')).toEqual([[1]]);
    // A retransmitted FIN is ACKed again.
    expect(t.guestSends(seg({ seq: 1006, ack: iss + 12, flags: ACK | FIN }))).toMatchObject([{ ack: 1007 }]);
    t.advance(1000);
    expect(t.table.count('tcp')).toBe(0);
  });

  it('simultaneous close: closing → time-wait', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    t.end();
    t.guestSends(seg({ seq: 1001, ack: iss + 1, flags: ACK | FIN }));
    expect(t.table.list(0)[0]!.state).toBe('closing');
    t.guestSends(seg({ seq: 1002, ack: iss + 2 }));
    expect(t.table.list(0)[0]!.state).toBe('time-wait');
  });

  it('a new SYN with a higher sequence number reuses a TIME-WAIT tuple', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    t.end();
    t.guestSends(seg({ seq: 1001, ack: iss + 2, flags: ACK | FIN }));
    expect(t.table.list(0)[0]!.state).toBe('time-wait');
    t.guestSends({ seq: 50_000 });
    expect(t.host.callsOf('tcpConnect')).toHaveLength(2);
    expect(t.table.list(0)).toMatchObject([{ id: 2, state: 'host-connecting' }]);
  });

  it('host reset → RST to the guest', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    const [rst] = t.error('ECONNRESET');
    expect(rst).toMatchObject({ flags: RST | ACK, seq: iss + 1, ack: 1001 });
    expect(t.table.count('tcp')).toBe(0);
  });

  it('guest RST → host socket reset; an RST off the exact sequence gets a challenge ACK (RFC 5961)', () => {
    const t = tcpHarness();
    const { iss } = t.open();
    expect(t.guestSends(seg({ seq: 1500, ack: iss + 1, flags: RST }))).toMatchObject([{ flags: ACK, ack: 1001 }]);
    expect(t.host.callsOf('tcpReset')).toEqual([]);
    expect(t.guestSends(seg({ seq: 1001, flags: RST }))).toEqual([]);
    expect(t.host.callsOf('tcpReset')).toEqual([[1]]);
    expect(t.table.count('tcp')).toBe(0);
  });
});

describe('tcp engine', () => {
  it('answers segments without a flow with RST (RFC 9293 §3.10.7.1)', () => {
    const t = tcpHarness();
    expect(t.guestSends({ flags: ACK, seq: 5, ack: 77 })).toMatchObject([{ flags: RST, seq: 77 }]);
    expect(t.guestSends({ flags: RST, seq: 5 })).toEqual([]);
  });

  it('refuses a SYN by policy with RST', () => {
    const t = tcpHarness({ network: { restrict: true } });
    expect(t.guestSends({})).toMatchObject([{ flags: RST | ACK, ack: 1001 }]);
    expect(t.counters.get('nat.restricted')).toBe(1);
  });

  it('refuses connections beyond the network\'s flow limit with RST', () => {
    const t = tcpHarness({ flowLimits: { udp: 1, tcp: 2, perGuest: { udp: 1, tcp: 4 } } });
    t.guestSends({ srcPort: 1 });
    t.guestSends({ srcPort: 2 });
    expect(t.guestSends({ srcPort: 3 })).toMatchObject([{ flags: RST | ACK }]);
    expect(t.counters.get('tcp.flow-limit')).toBe(1);
  });

  it('forwards a host client to the guest: SYN, handshake, unpause, the loopback client seen as the gateway', () => {
    const t = tcpHarness();
    const flow = t.engine.forward({ addr: ip('127.0.0.1'), port: 5555 }, { addr: GUEST, port: 22 }, 0)!;
    t.engine.flush(0);
    const [syn] = t.takeTcp();
    expect(syn).toMatchObject({ srcPort: 5555, dstPort: 22, flags: SYN });
    expect(syn!.options).toMatchObject({ mss: 1460, windowScale: 5, sackPermitted: true });
    expect(t.sent).toEqual([]);
    const [ack] = t.guestSends({ srcPort: 22, dstPort: 5555, flags: SYN | ACK, seq: 9000, ack: syn!.seq + 1, options: { mss: 1460 } });
    expect(ack).toMatchObject({ flags: ACK, ack: 9001 });
    expect(t.host.callsOf('tcpPause')).toEqual([[flow, false]]);
    expect(t.table.list(0)).toMatchObject([{ origin: 'forward', remote: { addr: GATEWAY, port: 5555 }, state: 'established' }]);
    // A non-loopback client keeps its address.
    const f2 = t.engine.forward({ addr: ip('192.168.1.9'), port: 4444 }, { addr: GUEST, port: 22 }, 0)!;
    expect(t.table.byId(f2)!.remote).toEqual({ addr: ip('192.168.1.9'), port: 4444 });
  });

  it('resets the host client when the guest refuses a forward', () => {
    const t = tcpHarness();
    t.engine.forward({ addr: ip('127.0.0.1'), port: 5555 }, { addr: GUEST, port: 22 }, 0);
    t.engine.flush(0);
    const [syn] = t.takeTcp();
    t.guestSends({ srcPort: 22, dstPort: 5555, flags: RST | ACK, seq: 0, ack: syn!.seq + 1 });
    expect(t.host.callsOf('tcpReset')).toEqual([[1]]);
  });
});

function ipv() {
  return { dscpEcn: 0, id: 1, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: 6, src: GUEST, dst: GATEWAY, options: new Uint8Array(0), payload: new Uint8Array(0) };
}

/** A guest segment after the handshake (timestamps on, as the template SYN offered). */
function seg(o: { seq: number; ack?: number; payload?: Uint8Array; flags?: number; window?: number; options?: object }) {
  return {
    srcPort: 40000, dstPort: 80, seq: o.seq >>> 0, ack: (o.ack ?? 0) >>> 0, flags: o.flags ?? ACK, window: o.window ?? 502, urgent: 0,
    options: (o.options ?? TS(5001, 1)) as never, payload: o.payload ?? new Uint8Array(0),
  };
}
