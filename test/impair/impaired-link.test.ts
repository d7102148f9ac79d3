/**
 * The impairment engine with a manual clock and seeded randomness: each impairment alone,
 * the queue's bounds, determinism, and a whole Network whose guest links are impaired.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ImpairedLink, REORDER_HOLD_MS, type ImpairedLinkLimits } from '../../src/impair/impaired-link.js';
import { parseRate, resolveLinkImpairment, type LinkImpairment } from '../../src/impair/spec.js';
import { ARP_OP } from '../../src/arp/wire.js';
import { Network } from '../../src/network/network.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { Counters } from '../../src/util/drops.js';
import { ConfigError } from '../../src/util/config-error.js';
import { arpFrame, decode, ip } from '../helpers/frames.js';
import { runs } from '../helpers/fuzz.js';

const NONE: LinkImpairment = { delayMs: 0, jitterMs: 0, lossPct: 0, duplicatePct: 0, reorderPct: 0, rateBitsPerS: undefined };

/** A frame whose first two bytes number it. */
const frame = (n: number, length = 100): Uint8Array => {
  const f = new Uint8Array(length);
  f[0] = n >> 8;
  f[1] = n & 0xff;
  return f;
};
const numberOf = (f: Uint8Array): number => (f[0]! << 8) | f[1]!;

function link(spec: Partial<LinkImpairment>, seed = 1, limits?: ImpairedLinkLimits) {
  const clock = new ManualClock(0);
  const counters = new Counters();
  const out: { n: number; atMs: number }[] = [];
  const l = new ImpairedLink({ ...NONE, ...spec }, seededRandom(seed), counters, (f, nowMs) => out.push({ n: numberOf(f), atMs: nowMs }), limits);
  /** Advances to each deadline in turn until `untilMs` (bounded). */
  const run = (untilMs: number): void => {
    for (let i = 0; i < 100_000; i++) {
      const at = l.nextDeadline();
      if (at === undefined || at > untilMs) break;
      clock.set(Math.max(clock.now(), at));
      l.advance(clock.now());
    }
    clock.set(Math.max(clock.now(), untilMs));
  };
  return { l, clock, counters, out, run };
}

describe('impair/spec', () => {
  it('asks for nothing when every option is absent or zero', () => {
    expect(resolveLinkImpairment({})).toBeUndefined();
    expect(resolveLinkImpairment({ 'link-delay': '0', 'link-loss': '0' })).toBeUndefined();
  });
  it('reads every option', () => {
    expect(resolveLinkImpairment({ 'link-delay': '50:10', 'link-loss': '2', 'link-duplicate': '0.5', 'link-reorder': '1', 'link-rate': '10M' })).toEqual({
      delayMs: 50, jitterMs: 10, lossPct: 2, duplicatePct: 0.5, reorderPct: 1, rateBitsPerS: 10e6,
    });
  });
  it('reads rates with k, M and G', () => {
    expect(parseRate('64k')).toBe(64_000);
    expect(parseRate('1.5M')).toBe(1_500_000);
    expect(parseRate('1G')).toBe(1e9);
    expect(parseRate('100000')).toBe(100_000);
    expect(parseRate('10Mbit')).toBe(10e6);
    for (const bad of ['', 'fast', '10X', '-1M', '999', '200G', '1e6']) expect(parseRate(bad), bad).toBeTypeOf('string');
  });
  it('refuses bad values, naming the option', () => {
    const cases: [Parameters<typeof resolveLinkImpairment>[0], string][] = [
      [{ 'link-delay': 'x' }, 'link-delay'],
      [{ 'link-delay': '10:20' }, 'link-delay'],
      [{ 'link-delay': '1:2:3' }, 'link-delay'],
      [{ 'link-delay': '60001' }, 'link-delay'],
      [{ 'link-loss': '101' }, 'link-loss'],
      [{ 'link-loss': '-1' }, 'link-loss'],
      [{ 'link-duplicate': 'half' }, 'link-duplicate'],
      [{ 'link-reorder': '1%' }, 'link-reorder'],
      [{ 'link-rate': '0' }, 'link-rate'],
    ];
    for (const [o, option] of cases) {
      let err: unknown;
      try {
        resolveLinkImpairment(o);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(o)).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).option).toBe(option);
    }
  });
  it('never throws anything but ConfigError', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        for (const o of [{ 'link-delay': a }, { 'link-loss': a }, { 'link-rate': a }, { 'link-delay': `${a}:${b}` }]) {
          try {
            resolveLinkImpairment(o);
          } catch (e) {
            expect(e).toBeInstanceOf(ConfigError);
          }
        }
      }),
    );
  });
});

describe('ImpairedLink', () => {
  it('delays every frame by the delay, in order', () => {
    const t = link({ delayMs: 50 });
    t.l.offer(frame(1), 0);
    t.clock.set(5);
    t.l.offer(frame(2), 5);
    expect(t.out).toEqual([]);
    expect(t.l.nextDeadline()).toBe(50);
    t.run(49);
    expect(t.out).toEqual([]);
    t.run(100);
    expect(t.out).toEqual([{ n: 1, atMs: 50 }, { n: 2, atMs: 55 }]);
    expect(t.l.nextDeadline()).toBeUndefined();
  });

  it('jitters within ±jitter and never reorders', () => {
    const t = link({ delayMs: 50, jitterMs: 20 });
    for (let i = 0; i < 500; i++) t.l.offer(frame(i), i);
    t.run(10_000);
    expect(t.out.map((o) => o.n)).toEqual([...Array(500).keys()]);
    const extra = t.out.map((o) => o.atMs - o.n);
    expect(Math.min(...extra)).toBeGreaterThanOrEqual(30);
    expect(Math.max(...extra)).toBeLessThanOrEqual(70 + 1);
    // Jitter is drawn: not every frame takes the same time.
    expect(new Set(extra.map(Math.round)).size).toBeGreaterThan(10);
  });

  it('loses the asked share of frames, counted, and delivers the rest at once', () => {
    const t = link({ lossPct: 10 });
    for (let i = 0; i < 10_000; i++) t.l.offer(frame(i), 0);
    const lost = t.counters.get('impair.loss');
    expect(lost).toBeGreaterThan(850);
    expect(lost).toBeLessThan(1150);
    expect(t.out.length).toBe(10_000 - lost);
    expect(t.l.nextDeadline()).toBeUndefined();
  });

  it('loses everything at 100% and nothing at 0%', () => {
    const all = link({ lossPct: 100 });
    for (let i = 0; i < 1000; i++) all.l.offer(frame(i), 0);
    expect(all.out).toEqual([]);
    const none = link({ lossPct: 0, duplicatePct: 0.0001 });
    for (let i = 0; i < 1000; i++) none.l.offer(frame(i), 0);
    expect(none.counters.get('impair.loss')).toBe(0);
  });

  it('duplicates the asked share, each copy right behind its original', () => {
    const t = link({ duplicatePct: 20 });
    for (let i = 0; i < 5000; i++) t.l.offer(frame(i), 0);
    const dups = t.counters.get('impair.duplicate');
    expect(dups).toBeGreaterThan(850);
    expect(dups).toBeLessThan(1150);
    expect(t.out.length).toBe(5000 + dups);
    const ns = t.out.map((o) => o.n);
    for (let i = 1; i < ns.length; i++) expect(ns[i]! - ns[i - 1]!).toBeGreaterThanOrEqual(0);
  });

  it('reorders: a held frame follows the next one', () => {
    const t = link({ reorderPct: 100 });
    t.l.offer(frame(1), 0); // held
    expect(t.out).toEqual([]);
    t.l.offer(frame(2), 1); // overtakes 1, which follows at once
    expect(t.out.map((o) => o.n)).toEqual([2, 1]);
    expect(t.counters.get('impair.reorder')).toBe(1);
  });

  it('releases a held frame after REORDER_HOLD_MS when nothing follows', () => {
    const t = link({ reorderPct: 100 });
    t.l.offer(frame(7), 0);
    expect(t.l.nextDeadline()).toBe(REORDER_HOLD_MS);
    t.run(REORDER_HOLD_MS);
    expect(t.out).toEqual([{ n: 7, atMs: REORDER_HOLD_MS }]);
  });

  it('reorders the asked share and loses nothing', () => {
    const t = link({ reorderPct: 5, delayMs: 1 });
    for (let i = 0; i < 4000; i++) {
      t.run(i);
      t.l.offer(frame(i), i);
    }
    t.run(10_000);
    expect(t.out.map((o) => o.n).sort((a, b) => a - b)).toEqual([...Array(4000).keys()]);
    let inversions = 0;
    for (let i = 1; i < t.out.length; i++) if (t.out[i]!.n < t.out[i - 1]!.n) inversions++;
    // Every held frame is overtaken, but a held last frame, released alone, has nothing to overtake it.
    expect(t.counters.get('impair.reorder') - inversions).toBeGreaterThanOrEqual(0);
    expect(t.counters.get('impair.reorder') - inversions).toBeLessThanOrEqual(1);
    expect(inversions).toBeGreaterThan(150);
    expect(inversions).toBeLessThan(260);
  });

  it('paces frames at the rate once the burst is spent', () => {
    // 1 Mbit/s: the bucket holds max(one 65553-byte frame, 10 ms) = 524424 bits.
    const t = link({ rateBitsPerS: 1e6 });
    const bytes = 1250; // 10 ms each at 1 Mbit/s
    for (let i = 0; i < 200; i++) t.l.offer(frame(i, bytes), 0);
    t.run(100_000);
    expect(t.out.length).toBe(200);
    const burst = Math.floor((65_553 * 8) / (bytes * 8)); // frames the full bucket lets through at once
    expect(t.out.filter((o) => o.atMs === 0).length).toBe(burst);
    const last = t.out.at(-1)!.atMs;
    // Every bit beyond the bucket at 1 bit/µs.
    expect(last).toBeCloseTo((200 * bytes * 8 - 65_553 * 8) / 1000, 0);
    for (let i = burst + 1; i < 200; i++) expect(t.out[i]!.atMs - t.out[i - 1]!.atMs).toBeCloseTo(10, 6);
  });

  it('lets a slow sender through the rate limit unhindered', () => {
    const t = link({ rateBitsPerS: 1e6 });
    for (let i = 0; i < 100; i++) {
      t.clock.set(i * 20);
      t.l.offer(frame(i, 1250), t.clock.now()); // 0.5 Mbit/s
    }
    expect(t.out.every((o) => o.atMs === o.n * 20)).toBe(true);
  });

  it('bounds its queue in frames and bytes, counting what it drops', () => {
    const t = link({ delayMs: 10 }, 1, { maxFrames: 10, maxBytes: 1_000_000 });
    for (let i = 0; i < 25; i++) t.l.offer(frame(i), 0);
    expect(t.l.queuedFrames).toBe(10);
    expect(t.counters.get('impair.queue-full')).toBe(15);
    const b = link({ delayMs: 10 }, 1, { maxFrames: 1000, maxBytes: 1000 });
    for (let i = 0; i < 25; i++) b.l.offer(frame(i, 300), 0);
    expect(b.l.queuedBytes).toBe(900);
    expect(b.counters.get('impair.queue-full')).toBe(22);
    b.run(10);
    expect(b.l.queuedBytes).toBe(0);
    expect(b.out.length).toBe(3);
  });

  it('is deterministic for a seed', () => {
    const runOnce = (seed: number) => {
      const t = link({ delayMs: 5, jitterMs: 5, lossPct: 10, duplicatePct: 10, reorderPct: 10, rateBitsPerS: 2e6 }, seed);
      for (let i = 0; i < 300; i++) t.l.offer(frame(i, 200 + (i % 7) * 100), i / 2);
      t.run(100_000);
      return t.out;
    };
    expect(runOnce(42)).toEqual(runOnce(42));
    expect(runOnce(42)).not.toEqual(runOnce(43));
  });

  it('forgets waiting frames on clear', () => {
    const t = link({ delayMs: 10, reorderPct: 100 });
    t.l.offer(frame(1), 0);
    t.l.offer(frame(2), 0);
    t.l.offer(frame(3), 0);
    t.l.clear();
    expect(t.l.nextDeadline()).toBeUndefined();
    expect(t.l.queuedFrames).toBe(0);
  });
});

describe('Network with impaired guest links', () => {
  const MAC_A = new Uint8Array([0x52, 0x54, 0, 0, 0, 0x0a]);
  function impairedLan(opts: Parameters<typeof resolveStackConfig>[0]) {
    const clock = new ManualClock(1000);
    const net = new Network('lab', resolveStackConfig(opts), { clock, random: seededRandom(3) });
    const got: { frame: Uint8Array; atMs: number }[] = [];
    const port = net.attach({ send: (f) => got.push({ frame: f, atMs: clock.now() }), allocFrame: () => { throw new Error('an impaired network must not lend'); } });
    return { net, clock, port, got };
  }
  const arpRequest = () => {
    const f = arpFrame({ senderMac: MAC_A, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.2') });
    f.set(MAC_A, 6);
    return f;
  };

  it('delays a guest-to-gateway exchange by the delay each way', () => {
    const { net, clock, port, got } = impairedLan({ linkDelay: '50' });
    port.receive(arpRequest());
    expect(net.nextDeadline()).toBe(1050);
    clock.set(1050);
    net.advance();
    expect(got).toEqual([]); // the gateway answered; the answer is on its way back
    expect(net.nextDeadline()).toBe(1100);
    clock.set(1100);
    net.advance();
    expect(got.length).toBe(1);
    expect(got[0]!.atMs).toBe(1100);
    expect(decode(got[0]!.frame).arp?.op).toBe(ARP_OP.REPLY);
  });

  it('loses frames on the way and counts them in the network counters', () => {
    const { net, port, got } = impairedLan({ linkLoss: '100' });
    port.receive(arpRequest());
    expect(got).toEqual([]);
    expect(net.stack.counters.get('impair.loss')).toBe(1);
    expect(net.nextDeadline()).toBeUndefined();
  });

  it('without impairment the network keeps its plain ports', () => {
    const clock = new ManualClock(0);
    const net = new Network('lab', resolveStackConfig(), { clock, random: seededRandom(3) });
    expect(net.config.impairment).toBeUndefined();
    const got: Uint8Array[] = [];
    const port = net.attach({ send: (f) => got.push(f) });
    port.receive(arpRequest());
    expect(got.length).toBe(1);
  });
});

describe('ImpairedLink: properties', () => {
  const specArb = fc.record({
    delayMs: fc.integer({ min: 0, max: 200 }),
    jitterPart: fc.double({ min: 0, max: 1, noNaN: true }),
    lossPct: fc.constantFrom(0, 1, 10, 50, 100),
    duplicatePct: fc.constantFrom(0, 1, 10, 50),
    reorderPct: fc.constantFrom(0, 1, 10, 50),
    rateBitsPerS: fc.option(fc.constantFrom(1e4, 1e6, 1e9), { nil: undefined }),
  });
  const stepsArb = fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 50 }), bytes: fc.integer({ min: 1, max: 9000 }) }), { maxLength: 200 });

  it('accounts for every frame, keeps its bounds, never delivers early, and keeps order without reordering', () => {
    fc.assert(
      fc.property(specArb, stepsArb, fc.integer(), (s, steps, seed) => {
        const spec: LinkImpairment = { delayMs: s.delayMs, jitterMs: Math.floor(s.delayMs * s.jitterPart), lossPct: s.lossPct, duplicatePct: s.duplicatePct, reorderPct: s.reorderPct, rateBitsPerS: s.rateBitsPerS };
        const limits = { maxFrames: 50, maxBytes: 100_000 };
        const t = link(spec, seed, limits);
        const offeredAt = new Map<number, number>();
        steps.forEach((step, n) => {
          t.run(t.clock.now() + step.gapMs);
          offeredAt.set(n, t.clock.now());
          t.l.offer(frame(n, Math.max(2, step.bytes)), t.clock.now());
          expect(t.l.queuedFrames).toBeLessThanOrEqual(limits.maxFrames);
          expect(t.l.queuedBytes).toBeLessThanOrEqual(limits.maxBytes);
        });
        t.run(t.clock.now() + 10 * 60_000);
        expect(t.l.queuedFrames).toBe(0);
        expect(t.l.nextDeadline()).toBeUndefined();
        const c = t.counters;
        // Every frame is delivered, lost or dropped at the full queue; duplicates add copies.
        expect(t.out.length + c.get('impair.loss') + c.get('impair.queue-full')).toBe(steps.length + c.get('impair.duplicate'));
        for (const o of t.out) expect(o.atMs).toBeGreaterThanOrEqual(offeredAt.get(o.n)! + spec.delayMs - spec.jitterMs);
        if (spec.reorderPct === 0) for (let i = 1; i < t.out.length; i++) expect(t.out[i]!.n).toBeGreaterThanOrEqual(t.out[i - 1]!.n);
      }),
      { numRuns: runs(150) },
    );
  });
});
