/**
 * Every capture of pcaps/ replays byte for byte: frames to the guests and host calls are what
 * the network did when the capture was recorded from real guests (pcaps/record.ts). A failure
 * prints the first divergence decoded: fix the change, or re-record the capture on purpose.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatReport, replayRecording } from '../../src/replay/index.js';
import { corpusTarget, loadRecordings } from '../fuzz/corpus-target.js';

const PCAPS = resolve(import.meta.dirname, '..', '..', 'pcaps');
const captures = readdirSync(PCAPS).filter((f) => f.endsWith('.pcapng')).sort();

describe('the corpus of pcaps/ replays', () => {
  it('has captures', () => {
    expect(captures.length).toBeGreaterThanOrEqual(10);
  });
  for (const name of captures) {
    it(name, () => {
      const report = replayRecording(new Uint8Array(readFileSync(join(PCAPS, name))), name);
      expect(report.exitCode, formatReport(report)).toBe(0);
      expect(report.complete).toBe(true);
      expect(report.frames).toBeGreaterThan(0);
    });
  }
});

describe('the corpus seeds the fuzzer (test/fuzz/corpus-target.ts, `npm run fuzz -- corpus`)', () => {
  it('loads every recording and runs each seed window without a finding', () => {
    const recs = loadRecordings(PCAPS);
    expect(recs.map((r) => r.name)).toEqual(captures);
    expect(recs.every((r) => r.frames.length > 0)).toBe(true);
    expect(recs.find((r) => r.name === 'two-guests.pcapng')?.portCount).toBe(2);
    const target = corpusTarget(recs);
    const seeds = target.seeds();
    expect(seeds.length).toBeGreaterThanOrEqual(recs.length);
    let frames = 0;
    for (const s of seeds) frames += target.run(s);
    target.check?.();
    expect(frames).toBeGreaterThan(seeds.length);
  });
});
