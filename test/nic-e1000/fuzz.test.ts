import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { E1000 } from '../../src/nic-e1000/device.js';
import { arrayGuestMemory } from '../../src/nic-e1000/memory.js';
import { R } from '../../src/nic-e1000/regs.js';
import { bulkArb, bulkBytes } from '../helpers/arbitraries.js';
import { budgetMs, runs } from '../helpers/fuzz.js';

const MEM = 1 << 16;
const INTERESTING = Object.values(R).filter((v) => v < 0x20000);

/** One guest or network action. */
const op = fc.oneof(
  fc.record({ k: fc.constant('w' as const), off: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 0x1ffff })), v: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 2, 0x10, 0x80, 0xffff, 0xffffffff, 0x4000000, MEM - 16, MEM + 16)) }),
  fc.record({ k: fc.constant('r' as const), off: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 0x1ffff })), size: fc.constantFrom(1 as const, 2 as const, 4 as const) }),
  fc.record({ k: fc.constant('io' as const), off: fc.integer({ min: 0, max: 0x3f }), v: fc.integer({ min: 0, max: 0xffffffff }), write: fc.boolean() }),
  fc.record({ k: fc.constant('cfg' as const), off: fc.integer({ min: 0, max: 0x110 }), v: fc.integer({ min: 0, max: 0xffffffff }), size: fc.constantFrom(1 as const, 2 as const, 4 as const) }),
  fc.record({ k: fc.constant('rx' as const), frame: fc.uint8Array({ minLength: 0, maxLength: 3000 }) }),
  fc.record({ k: fc.constant('mem' as const), at: fc.integer({ min: 0, max: MEM - 1 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ k: fc.constant('time' as const), ms: fc.integer({ min: 0, max: 1000 }) }),
  fc.record({ k: fc.constant('link' as const), up: fc.boolean() }),
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

function run(ops: readonly Op[], mem: Uint8Array): void {
  let now = 0;
  const d = new E1000({ memory: arrayGuestMemory(mem), clock: { now: () => now }, setIrq: () => undefined, emit: () => undefined, rxReady: () => undefined });
  d.configWrite(4, 2, 7);
  for (const o of ops) {
    switch (o.k) {
      case 'w': d.mmioWrite(o.off, 4, o.v); break;
      case 'r': d.mmioRead(o.off, o.size); break;
      case 'io': if (o.write) d.ioWrite(o.off, 4, o.v); else d.ioRead(o.off, 4); break;
      case 'cfg': d.configWrite(o.off, o.size, o.v); d.configRead(o.off, o.size); break;
      case 'rx': d.receiveFrame(o.frame); break;
      case 'mem': mem.set(o.bytes.subarray(0, MEM - o.at), o.at); break;
      case 'time': now += o.ms; d.advance(); break;
      case 'link': d.setLinkUp(o.up); break;
    }
  }
  // The state always survives a JSON round trip.
  const e = new E1000({ memory: arrayGuestMemory(mem), clock: { now: () => now }, setIrq: () => undefined, emit: () => undefined });
  expect(e.restore(JSON.parse(JSON.stringify(d.snapshot())))).toBeUndefined();
}

describe('nic-e1000 under hostile input', () => {
  it('random MMIO/IO/config/frame sequences never throw', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), bulkArb(MEM, MEM), (ops, mem) => {
      run(ops, bulkBytes(mem));
    }), { numRuns: runs(300) });
  }, budgetMs(30_000));

  it('hostile rings (random descriptors, lengths, heads, tails, addresses) terminate', () => {
    const ring = fc.record({
      mem: bulkArb(MEM, MEM),
      tdlen: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xfffff })),
      rdlen: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xfffff })),
      tdh: fc.integer({ min: 0, max: 0xffff }), tdt: fc.integer({ min: 0, max: 0xffff }),
      rdh: fc.integer({ min: 0, max: 0xffff }), rdt: fc.integer({ min: 0, max: 0xffff }),
      base: fc.constantFrom(0, 0x100, MEM - 64, 0xfffffff0), bah: fc.constantFrom(0, 1, 0xffffffff),
      rctl: fc.integer({ min: 0, max: 0xffffffff }), ctrl: fc.integer({ min: 0, max: 0xffffffff }),
      frames: fc.array(bulkArb(0, 20000), { maxLength: 4 }),
    });
    fc.assert(fc.property(ring, (r) => {
      // Termination is the property: a ring walk that never ends fails by the test's timeout
      // (there used to be a 2 s wall-clock bound per run here, which a loaded machine can break).
      const memory = arrayGuestMemory(bulkBytes(r.mem));
      const d = new E1000({ memory, clock: { now: () => 0 }, setIrq: () => undefined, emit: () => undefined });
      d.configWrite(4, 2, 7);
      d.mmioWrite(R.CTRL, 4, r.ctrl & ~(1 << 26));
      d.mmioWrite(R.TDBAL, 4, r.base); d.mmioWrite(R.TDBAH, 4, r.bah); d.mmioWrite(R.TDLEN, 4, r.tdlen); d.mmioWrite(R.TDH, 4, r.tdh);
      d.mmioWrite(R.TCTL, 4, 2);
      d.mmioWrite(R.TDT, 4, r.tdt);
      d.mmioWrite(R.RDBAL, 4, r.base); d.mmioWrite(R.RDBAH, 4, r.bah); d.mmioWrite(R.RDLEN, 4, r.rdlen); d.mmioWrite(R.RDH, 4, r.rdh);
      d.mmioWrite(R.RCTL, 4, r.rctl | 2);
      d.mmioWrite(R.RDT, 4, r.rdt);
      for (const f of r.frames) d.receiveFrame(bulkBytes(f));
    }), { numRuns: runs(60) });
  }, budgetMs(60_000));
});
