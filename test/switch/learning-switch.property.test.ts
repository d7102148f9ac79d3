import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LearningSwitch, type PortId } from '../../src/switch/learning-switch.js';
import { Counters } from '../../src/util/drops.js';
import { budgetMs, runs } from '../helpers/fuzz.js';

const BROADCAST_KEY = 2 ** 48 - 1;
/** A few stations with fixed (locally administered, individual) addresses. */
const STATIONS = [0x5254_0000_0001, 0x5254_0000_0002, 0x5254_0000_0003, 0x5254_0000_0004];

function macBytes(key: number): Uint8Array {
  const b = new Uint8Array(6);
  const hi = Math.floor(key / 2 ** 32);
  const lo = key >>> 0;
  b.set([hi >>> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff]);
  return b;
}

function frame(dst: number, src: number): Uint8Array {
  const f = new Uint8Array(14);
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  f[12] = 0x08;
  return f;
}

/** Any individual address other than zero (bit 0 of the first byte clear). */
const randomMacArb = fc.integer({ min: 1, max: 2 ** 48 - 1 }).map((k) => k - (Math.floor(k / 2 ** 40) & 1) * 2 ** 40 || 1);

/** A switch whose ports log which port received each frame. */
function harness(nPorts: number, maxMacs: number, agingMs: number) {
  const counters = new Counters();
  const sw = new LearningSwitch(counters, { maxMacs, agingMs });
  let received: PortId[] = [];
  const ports: PortId[] = [];
  for (let i = 0; i < nPorts; i++) {
    const id: PortId = sw.addPort(() => received.push(id));
    ports.push(id);
  }
  const take = (): PortId[] => {
    const r = received;
    received = [];
    return r;
  };
  return { sw, counters, ports, take };
}

describe('switch/learning-switch properties', () => {
  it('agrees with a model of where each address was last seen, within the table bound', () => {
    const opArb = fc.record({
      port: fc.nat(5), // ≥ nPorts: a port that is not attached
      src: fc.oneof(fc.constantFrom(...STATIONS), randomMacArb),
      dst: fc.oneof({ arbitrary: fc.constantFrom(...STATIONS), weight: 3 }, fc.constant(BROADCAST_KEY), randomMacArb),
      dtMs: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, fc.nat(60)),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 200 }), fc.array(opArb, { maxLength: 300 }), (nPorts, maxMacs, agingMs, ops) => {
        const t = harness(nPorts, maxMacs, agingMs);
        /** New addresses an entry survives after its last frame: the table holds maxMacs (LRU). */
        const survives = maxMacs - 1;
        const model = new Map<number, { port: PortId; seenMs: number; frame: number }>();
        let nowMs = 0;
        let frames = 0;
        for (const op of ops) {
          nowMs += op.dtMs;
          const from = op.port < nPorts ? t.ports[op.port]! : 1000 + op.port;
          const known = op.port < nPorts;
          const sameBefore = t.counters.get('switch.same-port');
          t.sw.input(from, frame(op.dst, op.src), nowMs);
          const got = t.take();
          expect(got).not.toContain(from);
          expect(t.sw.size).toBeLessThanOrEqual(maxMacs);
          if (!known) {
            expect(got).toEqual([]);
            continue;
          }
          frames++;
          model.set(op.src, { port: from, seenMs: nowMs, frame: frames });
          const flood = t.ports.filter((p) => p !== from);
          const m = op.dst === BROADCAST_KEY ? undefined : model.get(op.dst);
          if (m === undefined || nowMs - m.seenMs >= agingMs) {
            expect(got).toEqual(flood); // group, never seen, or aged: never forwarded on a stale entry
          } else {
            const unicast = m.port === from ? [] : [m.port];
            if (frames - m.frame <= survives) expect(got).toEqual(unicast);
            else expect([unicast, flood]).toContainEqual(got); // may have been replaced since
            if (got.length === 0 && flood.length > 0) expect(t.counters.get('switch.same-port')).toBe(sameBefore + 1);
          }
        }
        for (const row of t.sw.macs(nowMs)) {
          const key = Number.parseInt(row.mac.replaceAll(':', ''), 16);
          expect(row.port).toBe(model.get(key)?.port);
          expect(row.ageMs).toBe(nowMs - model.get(key)!.seenMs);
          expect(row.ageMs).toBeLessThan(agingMs);
        }
      }),
      { numRuns: runs(300) },
    );
  }, budgetMs(30_000));

  it('stays bounded under a flood of random source MACs and keeps the stations that talk', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 256 }),
        fc.uniqueArray(randomMacArb.filter((k) => !STATIONS.includes(k)), { minLength: 1, maxLength: 2000 }),
        (maxMacs, flood) => {
          const t = harness(3, maxMacs, 300_000);
          const [guest, attacker, gateway] = t.ports as [PortId, PortId, PortId];
          const [stationA, stationB] = STATIONS as [number, number];
          t.sw.input(guest, frame(BROADCAST_KEY, stationA), 0);
          t.sw.input(gateway, frame(BROADCAST_KEY, stationB), 0);
          t.take();
          // The stations speak once every `every` flood frames, so every time fewer than
          // maxMacs - 2 other addresses came since: least recently used, they stay.
          const every = maxMacs - 3;
          let nowMs = 0;
          for (let i = 0; i < flood.length; i++) {
            nowMs += 1;
            t.sw.input(attacker, frame(BROADCAST_KEY, flood[i]!), nowMs);
            expect(t.sw.size).toBeLessThanOrEqual(maxMacs);
            expect(t.take()).toEqual([guest, gateway]);
            if (i % every === 0) {
              t.sw.input(guest, frame(stationB, stationA), nowMs);
              expect(t.take()).toEqual([gateway]);
              t.sw.input(gateway, frame(stationA, stationB), nowMs);
              expect(t.take()).toEqual([guest]);
            }
          }
          expect(t.sw.lookup(macBytes(stationA), nowMs)).toBe(guest);
          expect(t.sw.lookup(macBytes(stationB), nowMs)).toBe(gateway);
          expect(t.sw.size).toBe(Math.min(maxMacs, flood.length + 2));
          // Every flood address learned beyond the table's room replaced a live entry.
          expect(t.counters.get('switch.mac-table-full')).toBe(Math.max(0, flood.length + 2 - maxMacs));
        },
      ),
      { numRuns: runs(100) },
    );
  }, budgetMs(30_000));

  it('never throws on any bytes from any port', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(4), fc.uint8Array({ maxLength: 40 }), fc.nat(1000)), { maxLength: 100 }), (inputs) => {
        const t = harness(3, 4, 500);
        let nowMs = 0;
        for (const [port, bytes, dt] of inputs) {
          nowMs += dt;
          t.sw.input(port, bytes, nowMs);
          expect(t.sw.size).toBeLessThanOrEqual(4);
        }
        expect(Object.keys(t.counters.snapshot()).every((k) => k.startsWith('switch.'))).toBe(true);
      }),
      { numRuns: runs(300) },
    );
  }, budgetMs(30_000));
});
