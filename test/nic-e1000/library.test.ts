/**
 * The model as a library: argument order, time (runUntil, integer nanoseconds), rxReady
 * re-entrancy, link state and the qemuCompat switch, each as an emulator author meets it.
 */
import { describe, expect, it } from 'vitest';
import { E1000, type E1000Deps, type E1000Options } from '../../src/nic-e1000/device.js';
import { arrayGuestMemory } from '../../src/nic-e1000/memory.js';
import { R } from '../../src/nic-e1000/regs.js';
import { ManualClock } from '../../src/util/clock.js';
import { RX_RING } from './driver.js';
import { ethernet, GUEST_MAC, PEER_MAC } from './frames.js';
import { MEM_SIZE } from './qtest-client.js';

interface Rig {
  d: E1000;
  mem: Uint8Array;
  clock: ManualClock;
  irq: boolean[];
  frames: Uint8Array[];
}

function rig(startMs: number, options: E1000Options = {}, deps: Partial<E1000Deps> = {}): Rig {
  const mem = new Uint8Array(MEM_SIZE);
  const clock = new ManualClock(startMs);
  const irq: boolean[] = [];
  const frames: Uint8Array[] = [];
  const d = new E1000({ memory: arrayGuestMemory(mem), clock, setIrq: (l) => irq.push(l), emit: (f) => frames.push(f), ...deps }, options);
  d.configWrite(0x04, 2, 0x7);
  return { d, mem, clock, irq, frames };
}

/** An RX ring of 8 descriptors, buffers at 0x200000 + 2048·i, RCTL.EN|BAM, RDT = `rdt`. */
function rxRing(r: Rig, rdt: number): void {
  for (let i = 0; i < 8; i++) new DataView(r.mem.buffer).setUint32(RX_RING + 16 * i, 0x200000 + 2048 * i, true);
  r.d.mmioWrite(R.RDBAL, 4, RX_RING);
  r.d.mmioWrite(R.RDLEN, 4, 128);
  r.d.mmioWrite(R.RCTL, 4, 0x8002);
  r.d.mmioWrite(R.RDT, 4, rdt);
}

const frame = (tag: number): Uint8Array => ethernet(GUEST_MAC, PEER_MAC, 0x0800, new Uint8Array(50).fill(tag));

describe('nic-e1000 as a library', () => {
  it('takes (offset, size[, value]) in every access method, narrow accesses by byte lane', () => {
    const { d } = rig(0);
    d.mmioWrite(R.VET + 1, 1, 0x12); // byte lane 1
    expect(d.mmioRead(R.VET, 4)).toBe(0x1200);
    expect(d.mmioRead(R.VET + 1, 1)).toBe(0x12);
    d.ioWrite(0, 4, R.VET);
    d.ioWrite(4, 2, 0x88a8);
    expect(d.ioRead(4, 4)).toBe(0x88a8);
    expect(d.ioRead(5, 1)).toBe(0x88);
    d.configWrite(0x3c, 1, 0x0b);
    expect(d.configRead(0x3c, 1)).toBe(0x0b);
  });

  it('ends a mitigation window exactly at ITR × 256 ns, whatever the clock\'s float rounding', () => {
    // 0.1 + 0.2 ms is not representable; 1.024 ms later is where the window must end.
    const r = rig(0.1 + 0.2);
    r.d.mmioWrite(R.ITR, 4, 4000);
    r.d.mmioWrite(R.IMS, 4, 0x80);
    r.d.mmioWrite(R.ICS, 4, 0x80);
    r.d.mmioRead(R.ICR, 4);
    r.d.mmioWrite(R.ICS, 4, 0x80); // deferred
    expect(r.irq).toEqual([true, false]);
    expect(r.d.nowNs).toBe(300_000);
    const at = r.d.nextDeadline()!;
    expect(at * 1e6).toBeCloseTo(300_000 + 4000 * 256, 3);
    r.d.runUntil(at - 1e-6); // one nanosecond early: nothing
    expect(r.irq).toEqual([true, false]);
    r.d.runUntil(at); // exactly the deadline nextDeadline() gave
    expect(r.irq).toEqual([true, false, true]);
    expect(r.d.nowNs).toBe(300_000 + 4000 * 256);
    // A shell that waits for the clock to reach nextDeadline() and calls advance() fires it too.
    r.d.mmioRead(R.ICR, 4);
    r.d.mmioWrite(R.ICS, 4, 0x80);
    const again = r.d.nextDeadline()!;
    r.clock.set(again);
    r.d.advance();
    expect(r.irq.at(-1)).toBe(true);
  });

  it('runUntil runs timers at their own deadlines on a virtual clock, in order, and time never goes back', () => {
    const r = rig(0);
    r.d.mmioWrite(R.IMS, 4, 0x04);
    r.d.setLinkUp(false); // LSC: the line rises and a 500 × 256 ns mitigation window opens
    r.d.mmioRead(R.ICR, 4);
    r.d.setLinkUp(true); // autonegotiation: link up 500 ms from now
    expect(r.d.nextDeadline()).toBe(0.128);
    r.d.runUntil(500.1); // the clock still says 0: the emulator's own time rules
    expect(r.d.mmioRead(R.STATUS, 4) & 2).toBe(2);
    expect(r.irq).toEqual([true, false, true]);
    // The window opened by LSC at 500 ms is measured from 500 ms, not from the clock or 500.1.
    expect(r.d.nextDeadline()).toBe(500.128);
    r.d.runUntil(10_000);
    expect(r.d.nextDeadline()).toBeUndefined();
    expect(r.d.nowNs).toBe(10_000_000_000);
    r.d.runUntil(5); // earlier: ignored
    expect(r.d.nowNs).toBe(10_000_000_000);
  });

  it('rxReady may offer frames at once: they land inside the RDT write that freed the ring', () => {
    const waiting = [frame(1), frame(2), frame(3)];
    const results: string[] = [];
    let inside = false;
    let landedInside = 0;
    const r: Rig = rig(0, {}, {
      rxReady: () => {
        while (waiting.length > 0) {
          const res = r.d.receiveFrame(waiting[0]!);
          results.push(res);
          if (res === 'busy') return;
          if (inside) landedInside++;
          waiting.shift();
        }
      },
    });
    rxRing(r, 0); // RDH == RDT: full
    expect(r.d.receiveFrame(waiting[0]!)).toBe('busy');
    inside = true;
    r.d.mmioWrite(R.RDT, 4, 2);
    inside = false;
    expect(landedInside).toBe(2);
    expect(r.d.mmioRead(R.RDH, 4)).toBe(2);
    expect(results).toEqual(['delivered', 'delivered', 'busy']);
    r.d.mmioWrite(R.RDT, 4, 3);
    expect(waiting).toEqual([]);
  });

  it('rxReady that re-enters with register writes is bounded and never runs in the middle of an access', () => {
    let calls = 0;
    const r: Rig = rig(0, {}, {
      rxReady: () => {
        calls++;
        // Hostile: every call frees "another" buffer, which asks for another rxReady.
        r.d.mmioWrite(R.RDT, 4, (r.d.mmioRead(R.RDT, 4) + 1) % 8);
        expect(r.d.mmioRead(R.RDT, 4)).toBeLessThan(8);
      },
    });
    rxRing(r, 1);
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(8);
    const before = calls;
    r.d.mmioRead(R.STATUS, 4); // the next entry serves what is still pending, again bounded
    expect(calls - before).toBeLessThanOrEqual(8);
  });

  it('drops frames both ways while the cable is out, counted in one place; the source is told link-down', () => {
    const r = rig(0);
    rxRing(r, 4);
    r.d.mmioWrite(R.TDLEN, 4, 128);
    r.d.mmioWrite(R.TDBAL, 4, 0x100000);
    r.d.mmioWrite(R.TCTL, 4, 2);
    r.d.setLinkUp(false);
    expect(r.d.receiveFrame(frame(1))).toBe('link-down');
    const desc = new DataView(r.mem.buffer);
    desc.setUint32(0x100000, 0x300000, true);
    desc.setUint32(0x100000 + 8, 60 | (0x0b << 24), true); // EOP|IFCS|RS
    r.d.mmioWrite(R.TDT, 4, 1);
    expect(r.frames).toEqual([]);
    expect(r.d.drops.get('e1000.rx-link-down')).toBe(1);
    expect(r.d.drops.get('e1000.tx-link-down')).toBe(1);
    expect(r.d.mmioRead(R.TDH, 4)).toBe(1); // the guest's descriptor completed: the wire ate it
  });

  describe('qemuCompat', () => {
    it('off (default): CTRL.RST resets, the I/O BAR works, reserved bits of TIPG and RXCSUM read 0', () => {
      const { d } = rig(0);
      d.mmioWrite(R.TIPG, 4, 0xffffffff);
      expect(d.mmioRead(R.TIPG, 4)).toBe(0x3fffffff);
      d.mmioWrite(R.RXCSUM, 4, 0xffffffff);
      expect(d.mmioRead(R.RXCSUM, 4)).toBe(0x3ff);
      d.mmioWrite(R.PBA, 4, 0x30);
      d.ioWrite(0, 4, R.CTRL);
      d.ioWrite(4, 4, d.ioRead(4, 4) | (1 << 26));
      expect(d.mmioRead(R.PBA, 4)).toBe(0x00100030);
      expect(d.qemuCompat).toBe(false);
    });

    it('on: CTRL.RST only clears itself, the I/O BAR reads 0, unimplemented registers read 0', () => {
      const { d } = rig(0, { qemuCompat: true });
      d.mmioWrite(R.PBA, 4, 0x30);
      d.mmioWrite(R.CTRL, 4, d.mmioRead(R.CTRL, 4) | (1 << 26));
      expect(d.mmioRead(R.PBA, 4)).toBe(0x30);
      expect(d.mmioRead(R.CTRL, 4) & (1 << 26)).toBe(0);
      d.ioWrite(0, 4, R.PBA);
      expect(d.ioRead(0, 4)).toBe(0);
      expect(d.ioRead(4, 4)).toBe(0);
      for (const off of [R.CTRL_EXT, R.TIPG, R.TIDV, R.RXCSUM]) {
        d.mmioWrite(off, 4, 0x5a5a);
        expect(d.mmioRead(off, 4)).toBe(0);
      }
    });

    it('on: every RCTL write blocks reception for 1 s, then rxReady fires from the timer', () => {
      let ready = 0;
      const r = rig(0, { qemuCompat: true }, { rxReady: () => { ready++; } });
      rxRing(r, 4);
      expect(r.d.receiveFrame(frame(1))).toBe('busy');
      const readyBefore = ready;
      expect(r.d.nextDeadline()).toBe(1000);
      r.d.runUntil(999.999);
      expect(r.d.receiveFrame(frame(1))).toBe('busy');
      r.d.runUntil(1000);
      expect(ready).toBe(readyBefore + 1);
      expect(r.d.receiveFrame(frame(1))).toBe('delivered');
    });
  });
});
