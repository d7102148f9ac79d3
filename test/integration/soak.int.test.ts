/**
 * A 2-minute slice of the soak (test/soak/soak.ts; `npm run soak` runs an hour): guests
 * coming and going, thousands of short TCP connections, UDP flows churning and a forward
 * hammered by host clients; the daemon must end where it began (descriptors back to the
 * baseline, RSS not growing from the first half to the second). Writes its chart to
 * $TMPDIR/tslirp-soak-slice.svg.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { command, daemon as daemonReq, missingRequirements, root, shouldRun } from '../helpers/guests.js';
import { describeSoak, soak, writeSoakChart } from '../soak/soak.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('python3')]);
const enabled = shouldRun('soak.int.test.ts (a 2-minute soak)', missing);
const SLICE_S = 120;

describe.skipIf(!enabled)('soak slice', () => {
  it('has what it needs (root, ip, socat, busybox, curl, python3, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it(`ends where it began after ${SLICE_S} s of churn`, async () => {
    const r = await soak(SLICE_S, (line) => console.log(line));
    writeSoakChart(r, join(tmpdir(), 'tslirp-soak-slice.svg'), `tslirp soak slice, ${SLICE_S} s`);
    console.log(describeSoak(r));
    expect(r.problems).toEqual([]);
    expect(r.connections).toBeGreaterThan(100);
    expect(r.guestsCreated).toBeGreaterThan(3);
  }, (SLICE_S + 180) * 1000);
});
