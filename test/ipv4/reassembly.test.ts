import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Reassembler } from '../../src/ipv4/reassembly.js';
import type { Ipv4 } from '../../src/ipv4/wire.js';
import { Counters, isDrop } from '../../src/util/drops.js';

const BASE: Ipv4 = { dscpEcn: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: 17, src: 0x0a00020f, dst: 0x0a000202, options: new Uint8Array(0), payload: new Uint8Array(0) };
const frag = (id: number, offset: number, data: Uint8Array, more: boolean): Ipv4 => ({ ...BASE, id, fragmentOffset: offset, payload: data, moreFragments: more });
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * seed + 3) & 0xff);

describe('ipv4/reassembly', () => {
  it('reassembles fragments in any order, tolerating exact duplicates', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 100 }), fc.infiniteStream(fc.nat()), (n, tail, order) => {
      const r = new Reassembler(new Counters());
      const data = bytes(8 * 16 * (n - 1) + tail, 5);
      const pieces = Array.from({ length: n }, (_, i) => frag(9, i * 128, data.subarray(i * 128, i === n - 1 ? undefined : (i + 1) * 128), i < n - 1));
      const it = order[Symbol.iterator]();
      const shuffled = [...pieces].sort(() => (it.next().value! % 3) - 1);
      let done: Ipv4 | undefined;
      for (const p of [...shuffled, shuffled[0]!]) {
        const res = r.add(p, 0);
        if (res !== undefined && !isDrop(res)) done = res;
      }
      expect(done?.payload).toEqual(data);
      expect(done?.moreFragments).toBe(false);
    }), { numRuns: 200 });
  });

  it('refuses overlaps, bad lengths and oversize datagrams', () => {
    const c = new Counters();
    const r = new Reassembler(c);
    expect(r.add(frag(1, 0, bytes(16), true), 0)).toBeUndefined();
    expect(r.add(frag(1, 8, bytes(16), true), 0)).toBe('ipv4.frag-overlap');
    expect(r.size).toBe(0);
    expect(r.add(frag(2, 0, bytes(10), true), 0)).toBe('ipv4.frag-bad-length');
    expect(r.add(frag(3, 65528, bytes(16), false), 0)).toBe('ipv4.frag-too-big');
    expect(r.add(frag(4, 16, bytes(16), true), 0)).toBeUndefined();
    expect(r.add(frag(4, 0, bytes(8), false), 0)).toBe('ipv4.frag-overlap'); // ends before data already held
  });

  it('holds at most maxDatagrams and maxBytes, evicting the oldest', () => {
    const c = new Counters();
    const r = new Reassembler(c, { maxDatagrams: 4, maxBytes: 1000, timeoutMs: 30_000 });
    for (let id = 0; id < 10; id++) r.add(frag(id, 0, bytes(200), true), id);
    expect(r.size).toBe(4);
    expect(r.bytes).toBe(800);
    expect(c.get('ipv4.frag-evicted')).toBe(6);
    expect(r.add(frag(9, 200, bytes(400), true), 10)).toBe('ipv4.frag-memory');
    expect(r.bytes).toBeLessThanOrEqual(1000);
  });

  it('expires datagrams after the timeout', () => {
    const c = new Counters();
    const r = new Reassembler(c, { maxDatagrams: 4, maxBytes: 10_000, timeoutMs: 100 });
    r.add(frag(1, 0, bytes(8), true), 0);
    r.add(frag(2, 0, bytes(8), true), 50);
    expect(r.nextDeadline()).toBe(100);
    r.expire(100);
    expect(r.size).toBe(1);
    expect(r.nextDeadline()).toBe(150);
    r.expire(1000);
    expect(r.size).toBe(0);
    expect(c.get('ipv4.frag-timeout')).toBe(2);
  });
});
