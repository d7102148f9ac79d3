import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../../src/util/log-throttle.js';

describe('LogThrottle', () => {
  it('lets the first event through, then one per interval with the count of those held back', () => {
    const t = new LogThrottle(10_000);
    expect(t.hit(1_000)).toEqual({ suppressed: 0 });
    for (let ms = 1_001; ms < 11_000; ms += 1_000) expect(t.hit(ms)).toBeUndefined();
    expect(t.hit(11_000)).toEqual({ suppressed: 10 });
    expect(t.hit(11_001)).toBeUndefined();
    expect(t.hit(50_000)).toEqual({ suppressed: 1 });
  });

  it('lets a burst produce one line however many events it holds', () => {
    const t = new LogThrottle(10_000);
    let lines = 0;
    for (let i = 0; i < 100_000; i++) if (t.hit(5_000 + i / 100) !== undefined) lines++;
    expect(lines).toBe(1);
  });
});
