/**
 * Randomized end-to-end property: a simple reference guest TCP (cumulative ACKs, holds
 * out-of-order data, go-back-N retransmission, FIN after its data) talks to the engine over a
 * simulated link that drops, duplicates and reorders segments both ways, while a simulated
 * host socket sends its own data (honouring pause/resume). Both byte streams must arrive
 * exact and both FINs must be seen, within a bounded simulated time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Ipv4 } from '../../src/ipv4/wire.js';
import type { Tcp, TcpOptions } from '../../src/tcp/wire.js';
import { seededRandom, type Random } from '../../src/util/clock.js';
import { seqAdd, seqGe, seqGt, seqLt, seqSub } from '../../src/util/seq.js';
import { ACK, bytes, concat, FIN, GATEWAY, GUEST, SYN, tcpHarness } from './tcp-harness.js';
import { budgetMs, runs } from '../helpers/fuzz.js';

interface LinkParams {
  readonly loss: number;
  readonly dup: number;
  readonly jitterMs: number;
}

/**
 * A one-way lossy link: delay 1 ms + uniform jitter (which reorders), loss, duplication.
 * In flight items wait in buckets by arrival millisecond; the simulation asks for every
 * millisecond in turn, so a bucket comes out whole and in the order it was filled.
 */
class Link<T> {
  readonly #buckets = new Map<number, T[]>();
  #size = 0;
  readonly #p: LinkParams;
  readonly #rnd: () => number;
  constructor(p: LinkParams, rnd: () => number) {
    this.#p = p;
    this.#rnd = rnd;
  }
  send(item: T, now: number): void {
    if (this.#rnd() < this.#p.loss) return;
    const copies = this.#rnd() < this.#p.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = now + 1 + Math.floor(this.#rnd() * (this.#p.jitterMs + 1));
      const bucket = this.#buckets.get(at);
      if (bucket === undefined) this.#buckets.set(at, [item]);
      else bucket.push(item);
      this.#size++;
    }
  }
  /** The items arriving at `now`; call for every millisecond in turn. */
  due(now: number): readonly T[] {
    const bucket = this.#buckets.get(now);
    if (bucket === undefined) return NONE;
    this.#buckets.delete(now);
    this.#size -= bucket.length;
    return bucket;
  }
  get size(): number {
    return this.#size;
  }
}

const NONE: readonly never[] = [];

const unit = (r: Random) => () => r.u32() / 2 ** 32;

/** The reference guest: just enough TCP to be a correct, simple peer. */
class RefGuest {
  readonly mss: number;
  readonly ts: boolean;
  readonly shift: number | undefined;
  readonly data: Uint8Array;
  sndUna = 0;
  sndNxt = 0;
  finAcked = false;
  peerWnd = 0;
  rcvNxt = 0;
  readonly received: Uint8Array[] = [];
  readonly ooo = new Map<number, { data: Uint8Array; fin: boolean }>();
  finReceived = false;
  lastProgress = 0;
  rtoMs = 300;
  peerShift = 0;
  readonly iss = 7000;

  /** Offers SACK; once agreed, ACKs carry SACK blocks and a window that moves on every ACK. */
  readonly sack: boolean;
  sackAgreed = false;
  #acks = 0;

  constructor(data: Uint8Array, mss: number, ts: boolean, shift: number | undefined, sack = false) {
    this.data = data;
    this.mss = mss;
    this.ts = ts;
    this.shift = shift;
    this.sack = sack;
  }

  /** The ACK for what we hold: SACK blocks (at most 3, merged) when agreed (RFC 2018). */
  #ack(): Tcp {
    if (!this.sackAgreed || this.ooo.size === 0) return this.#seg(this.sndNxt, ACK, new Uint8Array(0));
    const ranges = [...this.ooo].map(([seq, e]) => [seq, seqAdd(seq, e.data.length)] as [number, number])
      .filter(([l, r]) => seqGt(l, this.rcvNxt) && l !== r)
      .sort((a, b) => seqSub(a[0], b[0]));
    const blocks: [number, number][] = [];
    for (const [l, r] of ranges) {
      const last = blocks[blocks.length - 1];
      if (last !== undefined && seqGe(last[1], l)) {
        if (seqGt(r, last[1])) last[1] = r;
      } else blocks.push([l, r]);
    }
    const options: TcpOptions = { ...(this.ts && { timestamp: { value: 2, echo: this.tsRecent } }), ...(blocks.length > 0 && { sack: blocks.slice(-3).reverse() }) };
    const t = this.#seg(this.sndNxt, ACK, new Uint8Array(0), options);
    // A reading application moves the window on every ACK.
    return { ...t, window: 0xffff - (this.#acks++ % 5) };
  }

  get end(): number {
    return seqAdd(this.iss + 1, this.data.length);
  }

  syn(): Tcp {
    const options: TcpOptions = {
      mss: this.mss, ...(this.ts && { timestamp: { value: 1, echo: 0 } }), ...(this.shift !== undefined && { windowScale: this.shift }),
      ...(this.sack && { sackPermitted: true }),
    };
    return this.#seg(this.iss, SYN, new Uint8Array(0), options, 0);
  }

  /** The engine's latest TSval, echoed (RFC 7323 §3.2). */
  tsRecent = 0;

  #seg(seq: number, flags: number, payload: Uint8Array, options: TcpOptions = this.ts ? { timestamp: { value: 2, echo: this.tsRecent } } : {}, ack = this.rcvNxt): Tcp {
    return { srcPort: 40000, dstPort: 80, seq: seq >>> 0, ack: ack >>> 0, flags, window: 0xffff >>> 0, urgent: 0, options, payload };
  }

  /** The engine sent `t`; returns the guest's answers. */
  receive(t: Tcp, now: number): Tcp[] {
    const out: Tcp[] = [];
    if (t.options.timestamp !== undefined) this.tsRecent = t.options.timestamp.value;
    if ((t.flags & SYN) !== 0) {
      if (this.rcvNxt === 0) {
        this.rcvNxt = seqAdd(t.seq, 1);
        this.peerShift = this.shift !== undefined ? (t.options.windowScale ?? 0) : 0;
        this.sndUna = this.sndNxt = seqAdd(this.iss, 1);
        this.peerWnd = t.window;
        this.lastProgress = now;
        this.sackAgreed = this.sack && t.options.sackPermitted === true;
      }
      out.push(this.#seg(this.sndNxt, ACK, new Uint8Array(0)));
      return out;
    }
    if ((t.flags & ACK) !== 0 && this.rcvNxt !== 0) {
      if (seqGt(t.ack, this.sndUna)) {
        this.sndUna = t.ack;
        this.lastProgress = now;
        if (seqGt(t.ack, this.end)) this.finAcked = true;
      }
      this.peerWnd = t.window << this.peerShift;
    }
    if (t.payload.length > 0 || (t.flags & FIN) !== 0) {
      this.ooo.set(t.seq, { data: t.payload.slice(), fin: (t.flags & FIN) !== 0 });
      // Deliver what is in order.
      for (let guard = 0; guard < 100_000; guard++) {
        let progressed = false;
        for (const [seq, e] of this.ooo) {
          const endSeq = seqAdd(seq, e.data.length);
          if (seqGt(seq, this.rcvNxt)) continue;
          this.ooo.delete(seq);
          if (seqGt(endSeq, this.rcvNxt)) {
            this.received.push(e.data.subarray(seqSub(this.rcvNxt, seq)));
            this.rcvNxt = endSeq;
            progressed = true;
          }
          if (e.fin && endSeq === this.rcvNxt && !this.finReceived) {
            this.finReceived = true;
            this.rcvNxt = seqAdd(this.rcvNxt, 1);
            progressed = true;
          }
        }
        if (!progressed) break;
      }
      out.push(this.#ack());
    }
    return out;
  }

  /** New data (and FIN) within the peer's window; go-back-N after rtoMs without progress. */
  output(now: number): Tcp[] {
    if (this.rcvNxt === 0) {
      // SYN retransmission (the first SYN is sent by the simulation at time 0).
      if (now > 0 && now % 1000 === 0) return [this.syn()];
      return [];
    }
    const out: Tcp[] = [];
    if (now - this.lastProgress >= this.rtoMs && this.sndUna !== this.sndNxt) {
      this.sndNxt = this.sndUna;
      this.lastProgress = now;
      // One segment even into a zero window: it doubles as the window probe.
      out.push(...this.#sendFrom(1));
    }
    out.push(...this.#sendFrom(0));
    return out;
  }

  #sendFrom(minOne: number): Tcp[] {
    const out: Tcp[] = [];
    const wndEnd = seqAdd(this.sndUna, Math.max(this.peerWnd, minOne));
    for (let n = 0; n < 64; n++) {
      const off = seqSub(this.sndNxt, seqAdd(this.iss, 1));
      if (off < this.data.length) {
        const room = seqSub(wndEnd, this.sndNxt);
        if (room <= 0) break;
        const len = Math.min(this.mss, this.data.length - off, room);
        const fin = off + len === this.data.length;
        out.push(this.#seg(this.sndNxt, ACK | (fin ? FIN : 0), this.data.subarray(off, off + len)));
        this.sndNxt = seqAdd(this.sndNxt, len + (fin ? 1 : 0));
      } else if (off === this.data.length && !this.finAcked && seqLt(this.sndNxt, seqAdd(this.end, 1))) {
        out.push(this.#seg(this.sndNxt, ACK | FIN, new Uint8Array(0)));
        this.sndNxt = seqAdd(this.sndNxt, 1);
      } else {
        break;
      }
      if (seqGe(this.sndNxt, seqAdd(this.end, 1))) break;
    }
    return out;
  }
}

function simulate(p: {
  seed: number; link: LinkParams; guestBytes: number; hostBytes: number; mss: number; ts: boolean; shift: number | undefined; sack?: boolean;
  rcvBufferBytes: number; sndBufferBytes: number; hostBufferedMax: number;
}) {
  const h = tcpHarness({ limits: { rcvBufferBytes: p.rcvBufferBytes, sndBufferBytes: p.sndBufferBytes, oooSegments: 16 }, seed: p.seed });
  const rnd = unit(seededRandom(p.seed ^ 0x5a5a));
  const toGuest = new Link<Tcp>(p.link, rnd);
  const toEngine = new Link<Tcp>(p.link, rnd);
  const guestData = bytes(p.guestBytes, 1);
  const hostData = bytes(p.hostBytes, 2);
  const guest = new RefGuest(guestData, p.mss, p.ts, p.shift, p.sack ?? false);
  const ipv4: Ipv4 = { dscpEcn: 0, id: 0, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: 6, src: GUEST, dst: GATEWAY, options: new Uint8Array(0), payload: new Uint8Array(0) };
  let hostSent = 0;
  let hostEnded = false;
  let connected = false;
  const collect = (now: number) => {
    for (const s of h.take()) {
      if (s.kind !== 'tcp') continue;
      if (trace) console.log(now, 'E>G', s.tcp.flags, s.tcp.seq, s.tcp.ack, s.tcp.window, s.tcp.payload.length, h.engine.conn(1)?.state);
      toGuest.send(s.tcp, now);
    }
  };
  let paused = false;
  let ends = 0;
  const realPause = h.host.tcpPause.bind(h.host);
  h.host.tcpPause = (flow, pause) => {
    paused = pause;
    realPause(flow, pause);
  };
  const realEnd = h.host.tcpEnd.bind(h.host);
  h.host.tcpEnd = (flow) => {
    ends++;
    realEnd(flow);
  };
  const trace = process.env['TCP_TRACE'] === '1';
  // The guest's SYN goes straight in (the handshake itself is also subject to the link below on retries).
  toEngine.send(guest.syn(), 0);
  let now = 0;
  const LIMIT_MS = 600_000;
  for (; now < LIMIT_MS; now++) {
    h.clock.set(now);
    // The slow host reader: buffered bytes shrink over time and drain fires.
    if (h.host.buffered > 0) {
      h.host.buffered = Math.max(0, h.host.buffered - 4096);
      if (h.host.buffered === 0 && h.engine.conn(1) !== undefined) h.engine.onHostDrained(1, now);
    }
    for (const t of toEngine.due(now)) {
      if (trace) console.log(now, 'G>E', t.flags, t.seq, t.ack, t.window, t.payload.length);
      h.engine.input(ipv4, t, now);
    }
    if (!connected && h.engine.conn(1) !== undefined) {
      connected = true;
      h.engine.onHostConnected(1, now);
    }
    if (connected && h.engine.conn(1) !== undefined && !paused && hostSent < hostData.length) {
      const n = Math.min(16384, hostData.length - hostSent);
      h.engine.onHostData(1, hostData.slice(hostSent, hostSent + n), now);
      hostSent += n;
    }
    if (connected && hostSent === hostData.length && !hostEnded && h.engine.conn(1) !== undefined) {
      hostEnded = true;
      h.engine.onHostEnd(1, now);
    }
    h.engine.advance(now);
    h.engine.flush(now);
    collect(now);
    for (const t of toGuest.due(now)) for (const r of guest.receive(t, now)) toEngine.send(r, now);
    for (const r of guest.output(now)) toEngine.send(r, now);
    if (p.hostBufferedMax > 0 && now % 7 === 0) h.host.buffered = Math.min(p.hostBufferedMax, h.host.buffered + 2048);
    const done = guest.finReceived && guest.finAcked && ends > 0;
    if (done && toGuest.size === 0 && toEngine.size === 0) break;
  }
  return { h, guest, guestData, hostData, now };
}

describe('tcp over a lossy, duplicating, reordering link', () => {
  it('transfers both ways byte-exact and closes (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
          link: fc.record({ loss: fc.constantFrom(0, 0.02, 0.1), dup: fc.constantFrom(0, 0.01, 0.05), jitterMs: fc.constantFrom(0, 3, 10) }),
          guestBytes: fc.integer({ min: 0, max: 60_000 }),
          hostBytes: fc.integer({ min: 0, max: 200_000 }),
          mss: fc.constantFrom(536, 1460, 8960),
          ts: fc.boolean(),
          shift: fc.constantFrom(undefined, 0, 7),
          sack: fc.boolean(),
          rcvBufferBytes: fc.constantFrom(16 * 1024, 256 * 1024),
          sndBufferBytes: fc.constantFrom(8 * 1024, 1 << 20),
          hostBufferedMax: fc.constantFrom(0, 0, 40_000),
        }),
        (p) => {
          const r = simulate(p);
          expect(r.h.counters.get('stack.internal-error')).toBe(0);
          expect(diff(concat(r.guest.received), r.hostData)).toBe('same');
          expect(r.guest.finReceived).toBe(true);
          expect(diff(r.h.written(), r.guestData)).toBe('same');
          expect(r.h.host.callsOf('tcpEnd')).toHaveLength(1);
          expect(r.h.host.callsOf('tcpReset')).toEqual([]);
        },
      ),
      { numRuns: runs(60) },
    );
  }, budgetMs(30_000));

  it('recovers from loss with SACK by fast retransmission, mostly without timeouts', () => {
    const r = simulate({ seed: 77, link: { loss: 0.03, dup: 0.01, jitterMs: 2 }, guestBytes: 10_000, hostBytes: 1_500_000, mss: 1460, ts: true, shift: 7, sack: true, rcvBufferBytes: 1 << 20, sndBufferBytes: 1 << 20, hostBufferedMax: 0 });
    expect(diff(concat(r.guest.received), r.hostData)).toBe('same');
    const stats = r.h.engine.stats;
    expect(stats.get('tcp.fast-retransmit')).toBeGreaterThan(0);
    expect(stats.get('tcp.rto')).toBeLessThan(stats.get('tcp.fast-retransmit'));
  });

  it('a clean link moves 2 MB host → guest in few simulated milliseconds, without retransmissions', () => {
    const r = simulate({ seed: 9, link: { loss: 0, dup: 0, jitterMs: 0 }, guestBytes: 1000, hostBytes: 2_000_000, mss: 1460, ts: true, shift: 7, rcvBufferBytes: 1 << 20, sndBufferBytes: 1 << 20, hostBufferedMax: 0 });
    expect(diff(concat(r.guest.received), r.hostData)).toBe('same');
    expect(r.h.engine.stats.get('tcp.retransmit')).toBe(0);
    expect(r.now).toBeLessThan(200);
  });
});

/** 'same', or where two byte strings first differ (cheap on megabytes, unlike toEqual). */
function diff(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `differ at ${i} of ${a.length}/${b.length}`;
  return a.length === b.length ? 'same' : `lengths ${a.length} vs ${b.length}`;
}
