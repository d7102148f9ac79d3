import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArpCache } from '../../src/arp/cache.js';

const mac = (last: number): Uint8Array => Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, last);

describe('arp/cache', () => {
  it('refreshes only a mapping it holds', () => {
    const c = new ArpCache();
    expect(c.refresh(1, mac(1))).toBe(false);
    c.learn(1, mac(1));
    expect(c.refresh(1, mac(1))).toBe(true);
    expect(c.refresh(1, mac(2))).toBe(false);
    expect(c.lookup(1)).toEqual(mac(1));
  });

  it('copies the MAC it learns (frames are views into reused buffers)', () => {
    const c = new ArpCache();
    const frame = mac(7);
    c.learn(1, frame);
    frame[5] = 9;
    expect(c.lookup(1)).toEqual(mac(7));
  });

  it('evicts the entry refreshed longest ago', () => {
    const c = new ArpCache(2);
    c.learn(1, mac(1));
    c.learn(2, mac(2));
    expect(c.refresh(1, mac(1))).toBe(true);
    c.learn(3, mac(3));
    expect([...c.entries()].map(([ip]) => ip)).toEqual([1, 3]);
  });

  it('keeps the same entries in the same order as a plain least-recently-refreshed list', () => {
    // Model: an array in refresh order, every refresh or learn moving its address to the end.
    const op = fc.record({ learn: fc.boolean(), ip: fc.integer({ min: 1, max: 6 }), mac: fc.integer({ min: 1, max: 3 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const c = new ArpCache(4);
        let model: [number, number][] = [];
        for (const o of ops) {
          const held = model.find(([ip]) => ip === o.ip);
          const same = held?.[1] === o.mac;
          if (o.learn) c.learn(o.ip, mac(o.mac));
          else expect(c.refresh(o.ip, mac(o.mac))).toBe(same);
          if (!o.learn && !same) continue;
          model = model.filter(([ip]) => ip !== o.ip);
          if (model.length >= 4) model.shift();
          model.push([o.ip, o.mac]);
        }
        expect([...c.entries()].map(([ip, m]) => [ip, m[5]])).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });
});
