/**
 * Every capture of pcaps/ replays byte for byte: frames to the guests and host calls are what
 * the network did when the capture was recorded from real guests (pcaps/record.ts). A failure
 * prints the first divergence decoded: fix the change, or re-record the capture on purpose.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatReport, replayRecording } from '../../src/replay/index.js';

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
