import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReceiveSpace, SendSpace } from '../../src/tcp/seq-space.js';
import { TcpTimers } from '../../src/tcp/timers.js';
import { seqAdd } from '../../src/util/seq.js';

describe('tcp/seq-space SendSpace', () => {
  it('starts with una = nxt = max = ISS (as a u32), the SYN unacknowledged', () => {
    const s = new SendSpace(-1);
    expect([s.iss, s.una, s.nxt, s.max]).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
    expect(s.dataSeq()).toBe(0);              // the SYN takes ISS; data starts after it, across the wrap
    s.synAcked = true;
    expect(s.dataSeq()).toBe(0xffffffff);      // from then on, una is the first queued byte
  });

  it('max only moves right, across the wrap', () => {
    const s = new SendSpace(0xfffffff0);
    s.sentTo(0x10);
    expect(s.max).toBe(0x10);
    expect(s.outstanding()).toBe(0x20);
    s.sentTo(0xfffffff8);                      // behind max: a retransmission
    expect(s.max).toBe(0x10);
  });

  it('a new ACK moves una, and nxt when go-back-N left it behind', () => {
    const s = new SendSpace(1000);
    s.sentTo(5000);
    s.nxt = 2000;
    s.acked(3000);
    expect([s.una, s.nxt]).toEqual([3000, 3000]);
    s.nxt = 4000;
    s.acked(3500);
    expect([s.una, s.nxt]).toEqual([3500, 4000]);
    expect(s.allAcked()).toBe(false);
    s.acked(5000);
    expect(s.allAcked()).toBe(true);
  });

  it('takes a window only from segments not older than the last that set it (RFC 9293 §3.10.7.4)', () => {
    const s = new SendSpace(0);
    s.updateWindow(1000, 100, 50);
    // [seq, ack, may update]
    const rows: [number, number, boolean][] = [
      [101, 0, true],     // newer sequence number, whatever the ack
      [100, 50, true],    // same segment again
      [100, 51, true],    // same seq, newer ack
      [100, 49, false],   // same seq, older ack
      [99, 60, false],    // older sequence number
    ];
    for (const [seq, ack, ok] of rows) expect([seq, ack, s.mayUpdateWindow(seq, ack)]).toEqual([seq, ack, ok]);
    s.updateWindow(500, 101, 60);
    expect([s.wnd, s.maxWnd, s.wl1, s.wl2]).toEqual([500, 1000, 101, 60]);
  });
});

describe('tcp/seq-space ReceiveSpace', () => {
  it('a SYN takes one sequence number; the window is empty until advertised', () => {
    const r = new ReceiveSpace(5);
    r.synReceived(0xffffffff);
    expect([r.irs, r.nxt, r.edge]).toEqual([0xffffffff, 0, 0]);
  });

  it('acceptability: overlapping the window, lenient at the left edge (RFC 9293 §3.10.7.4, Linux tcp_sequence)', () => {
    const r = new ReceiveSpace(0);
    r.synReceived(999);          // nxt 1000
    r.edge = 2000;
    // [seq, segment length, acceptable]
    const rows: [number, number, boolean][] = [
      [1000, 0, true],      // pure ACK at nxt
      [1000, 100, true],
      [900, 100, true],     // ends exactly at nxt: processed for its ACK
      [899, 100, false],    // wholly old
      [2000, 10, true],     // starts at the right edge (trimmed later)
      [2001, 0, false],     // beyond the edge
      [1500, 1000, true],   // overlaps the edge
    ];
    for (const [seq, len, ok] of rows) expect([seq, len, r.acceptable(seq, len)]).toEqual([seq, len, ok]);
  });

  it('advertises the window scaled, never moving the right edge left (RFC 7323 §2.4)', () => {
    const r = new ReceiveSpace(5);
    r.synReceived(99);           // nxt 100
    expect(r.advertise(1 << 20, true)).toBe(32768);
    expect(r.edge).toBe(100 + (1 << 20));
    // The window shrinks: the field still covers what was promised (rounded up).
    expect(r.advertise(1000, true)).toBe(32768);
    expect(r.edge).toBe(100 + (1 << 20));
    r.nxt = 150;                 // 50 bytes arrived; 2^20 − 50 promised is not a whole number of 32-byte units
    expect(r.advertise(0, true)).toBe(32767);       // ceil(1048526 / 32)
    expect(r.edge).toBe(150 + 32767 * 32);          // rounding up moved the edge right (by 18), never left
    // Without scaling the field is the bytes, at most 0xffff.
    const u = new ReceiveSpace(5);
    u.synReceived(0);
    expect(u.advertise(1 << 20, false)).toBe(0xffff);
    expect(u.promisedBytes()).toBe(0xffff);
  });

  it('the right edge never moves left, whatever the windows offered (property)', () => fc.assert(fc.property(
    fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 14 }), fc.boolean(),
    fc.array(fc.tuple(fc.nat(1 << 22), fc.nat(70_000)), { maxLength: 40 }),
    (irs, shift, scaled, steps) => {
      const r = new ReceiveSpace(shift);
      r.synReceived(irs);
      for (const [window, arrived] of steps) {
        const edgeBefore = r.edge;
        const room = Math.max(0, r.promisedBytes());
        r.nxt = seqAdd(r.nxt, Math.min(arrived, room));   // the guest sends inside the window
        const field = r.advertise(window, scaled);
        expect(field).toBeGreaterThanOrEqual(0);
        expect(field).toBeLessThanOrEqual(0xffff);
        expect(r.promisedBytes()).toBeGreaterThanOrEqual(0);
        expect(((r.edge - edgeBefore) | 0) >= 0).toBe(true);
      }
    })));
});

describe('tcp/timers', () => {
  it('next() is the earliest armed deadline, undefined when none is', () => fc.assert(fc.property(
    fc.array(fc.option(fc.integer({ min: 0, max: 1e9 }), { nil: undefined }), { minLength: 6, maxLength: 6 }),
    (ds) => {
      const t = new TcpTimers();
      [t.connectAt, t.rtoAt, t.persistAt, t.dackAt, t.timeWaitAt, t.recoveryAt] = ds;
      const armed = ds.filter((d) => d !== undefined);
      expect(t.next()).toBe(armed.length === 0 ? undefined : Math.min(...armed));
      t.clear();
      expect(t.next()).toBeUndefined();
    })));
});
