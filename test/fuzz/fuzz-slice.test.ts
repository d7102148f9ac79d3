/**
 * The short slice of `npm run fuzz` that `npm test` runs: each target for a few seconds from a
 * fixed seed, coverage-guided. A finding fails the test with the input (hex) to reproduce it
 * (`fuzz(target, { seconds, seed })`, or feed the input to the target's `run`).
 */
import { describe, expect, it } from 'vitest';
import { budgetMs } from '../helpers/fuzz.js';
import { fuzz } from './engine.js';
import { decodeFrames, encodeFrames, fixChecksums, guestFrames, TARGETS } from './targets.js';
import { Rng } from './engine.js';
import { mutateFrames } from './targets.js';
import { IP_PROTO, pseudoSum } from '../../src/ipv4/wire.js';
import { parseUdp } from '../../src/udp/wire.js';
import { ip } from '../helpers/frames.js';

/** Seconds per target: time-bounded, so a loaded machine runs fewer inputs, never fails for it. */
const SLICE_S = 3;

describe('fuzz slice (coverage-guided, engine.ts)', () => {
  for (const [name, make] of Object.entries(TARGETS)) {
    it(`${name}: no finding in ${SLICE_S} s`, () => {
      const r = fuzz(make(), { seconds: budgetMs(SLICE_S * 1000) / 1000, seed: 20261203 });
      console.log(`fuzz slice ${name}: ${r.inputs} inputs, ${r.work} units, corpus ${r.corpus}, ${r.blocks} blocks`);
      expect(r.findings.map((f) => `${f.error}\ninput ${f.input.slice(0, 400)}`)).toEqual([]);
      expect(r.inputs).toBeGreaterThan(20);
      expect(r.blocks).toBeGreaterThan(50);
    }, budgetMs(SLICE_S * 1000) + 60_000);
  }

  it('frame sequences round-trip, and mutation keeps them decodable and bounded', () => {
    const seeds = guestFrames();
    for (const frames of seeds) expect(decodeFrames(encodeFrames(frames))).toEqual(frames);
    const rnd = new Rng(5);
    let input = encodeFrames(seeds[6]!);
    for (let i = 0; i < 2000; i++) {
      input = mutateFrames(input, encodeFrames(seeds[i % seeds.length]!), rnd);
      const frames = decodeFrames(input);
      expect(frames.length).toBeLessThanOrEqual(64);
      for (const f of frames) expect(f.length).toBeLessThanOrEqual(4000);
    }
  });

  it('fixChecksums makes a mutated datagram valid again for the parsers', () => {
    const f = guestFrames()[5]![0]!.slice();
    f[50] = f[50]! ^ 0xff; // a payload byte: the UDP checksum no longer matches
    expect(typeof parseUdp(f.subarray(34), pseudoSum(ip('10.0.2.15'), ip('192.0.2.9'), IP_PROTO.UDP))).toBe('string');
    fixChecksums(f);
    expect(typeof parseUdp(f.subarray(34), pseudoSum(ip('10.0.2.15'), ip('192.0.2.9'), IP_PROTO.UDP))).toBe('object');
  });
});
