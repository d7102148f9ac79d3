import { describe, expect, it } from 'vitest';
import { E1000 } from '../../src/nic-e1000/device.js';
import { arrayGuestMemory } from '../../src/nic-e1000/memory.js';
import { R } from '../../src/nic-e1000/regs.js';
import { ManualClock } from '../../src/util/clock.js';
import { LinuxLikeDriver, RX_RING, TX_RING } from './driver.js';
import { ethernet, GUEST_MAC, ip, ipv4, PEER_MAC, tcp, udp } from './frames.js';
import { MEM_SIZE, modelTarget } from './qtest-client.js';

function bare(): { d: E1000; mem: Uint8Array; clock: ManualClock; irq: boolean[]; frames: Uint8Array[]; ready: number[] } {
  const mem = new Uint8Array(MEM_SIZE);
  const clock = new ManualClock(1000);
  const irq: boolean[] = [];
  const frames: Uint8Array[] = [];
  const ready: number[] = [];
  const d = new E1000({ memory: arrayGuestMemory(mem), clock, setIrq: (l) => irq.push(l), emit: (f) => frames.push(f), rxReady: () => ready.push(clock.now()) });
  d.configWrite(0x04, 2, 0x7);
  return { d, mem, clock, irq, frames, ready };
}

describe('nic-e1000 device', () => {
  it('reads unknown registers as 0 and counts writes to them, never throws', () => {
    const { d } = bare();
    expect(d.mmioRead(0x1234 * 4, 4)).toBe(0);
    d.mmioWrite(0x1234 * 4, 4, 5);
    d.mmioWrite(R.STATUS, 4, 0);
    expect(d.drops.get('e1000.read-unhandled-reg')).toBe(1);
    expect(d.drops.get('e1000.write-unhandled-reg')).toBe(1);
    expect(d.drops.get('e1000.write-read-only-reg')).toBe(1);
    expect(d.exits.mmio).toBe(3);
  });

  it('exitsPerFrame is 0, not NaN, before the first frame, and counts accesses per frame after it', () => {
    const { d } = bare();
    d.mmioRead(R.STATUS, 4);
    d.mmioRead(R.STATUS, 4);
    expect(d.exits.mmio).toBe(2);
    expect(d.exitsPerFrame).toBe(0);
    d.exits.txFrames = 1;
    expect(d.exitsPerFrame).toBe(2);
  });

  it('EERD returns words with DONE; addresses past 63 read 0', () => {
    const { d } = bare();
    d.mmioWrite(R.EERD, 4, (1 << 8) | 1);
    expect(d.mmioRead(R.EERD, 4)).toBe((0x1200 << 16) | 0x10 | (1 << 8));
    d.mmioWrite(R.EERD, 4, (70 << 8) | 1);
    expect(d.mmioRead(R.EERD, 4)).toBe(0x10 | (70 << 8));
  });

  it('statistics clear on read; the 64-bit high half clears both halves', () => {
    const { d } = bare();
    d.regs[R.GPRC >>> 2] = 5;
    d.regs[R.GORCL >>> 2] = 7;
    d.regs[R.GORCH >>> 2] = 1;
    expect(d.mmioRead(R.GPRC, 4)).toBe(5);
    expect(d.mmioRead(R.GPRC, 4)).toBe(0);
    expect(d.mmioRead(R.GORCL, 4)).toBe(7);
    expect(d.mmioRead(R.GORCL, 4)).toBe(7);
    expect(d.mmioRead(R.GORCH, 4)).toBe(1);
    expect(d.mmioRead(R.GORCL, 4)).toBe(0);
  });

  // Deviation from QEMU 7.2 (README "Deviations" 1): CTRL.RST resets the MAC registers.
  it('CTRL.RST through the I/O BAR window resets the MAC registers (QEMU ignores RST)', () => {
    const { d } = bare();
    d.mmioWrite(R.PBA, 4, 0x30);
    d.mmioWrite(R.RCTL, 4, 0x8002);
    d.ioWrite(0, 4, R.PBA);
    expect(d.ioRead(4, 4)).toBe(0x30);
    d.ioWrite(0, 4, R.CTRL);
    d.ioWrite(4, 4, d.ioRead(4, 4) | (1 << 26));
    expect(d.mmioRead(R.PBA, 4)).toBe(0x00100030);
    expect(d.mmioRead(R.RCTL, 4)).toBe(0);
    expect(d.mmioRead(R.CTRL, 4)).toBe(0x00140240);
    expect(d.mmioRead(R.RAH0, 4)).toBe(0x80005634);
  });

  // Deviation 2: no 1 s reception blackout after RCTL writes.
  it('receives right after an RCTL write and wakes a waiting source on RDT', () => {
    const { d, mem, ready } = bare();
    d.mmioWrite(R.RDBAL, 4, RX_RING);
    d.mmioWrite(R.RDLEN, 4, 128);
    d.mmioWrite(R.RCTL, 4, 0x8002);
    const f = ethernet(GUEST_MAC, PEER_MAC, 0x0800, new Uint8Array(50));
    expect(d.receiveFrame(f)).toBe('busy'); // RDH == RDT: the ring is full
    mem.set([0, 0, 0x20, 0], RX_RING); // buffer at 0x200000
    d.mmioWrite(R.RDT, 4, 1);
    expect(ready.length).toBe(1);
    expect(d.receiveFrame(f)).toBe('delivered');
    expect(mem[RX_RING + 12]! & 3).toBe(3);
  });

  it('defers a rising edge inside the mitigation window (ITR) and raises it when the window closes', () => {
    const { d, clock, irq } = bare();
    d.mmioWrite(R.ITR, 4, 4000); // 4000 × 256 ns = 1.024 ms
    d.mmioWrite(R.IMS, 4, 0x80);
    d.mmioWrite(R.ICS, 4, 0x80);
    expect(irq).toEqual([true]);
    expect(d.nextDeadline()).toBeCloseTo(1001.024, 6);
    d.mmioRead(R.ICR, 4); // lowering is immediate
    d.mmioWrite(R.ICS, 4, 0x80); // a new edge inside the window waits
    expect(irq).toEqual([true, false]);
    clock.advance(2);
    d.advance();
    expect(irq).toEqual([true, false, true]);
  });

  it('link down and up raise LSC; autonegotiation completes after 500 ms', () => {
    const { d, clock } = bare();
    d.setLinkUp(false);
    expect(d.mmioRead(R.STATUS, 4) & 2).toBe(0);
    expect(d.mmioRead(R.ICR, 4) & 4).toBe(4);
    d.setLinkUp(true);
    expect(d.mmioRead(R.STATUS, 4) & 2).toBe(0);
    clock.advance(499);
    d.advance();
    expect(d.mmioRead(R.STATUS, 4) & 2).toBe(0);
    clock.advance(1);
    expect(d.nextDeadline()).toBe(1500);
    d.advance();
    expect(d.mmioRead(R.STATUS, 4) & 2).toBe(2);
    expect(d.mmioRead(R.ICR, 4) & 4).toBe(4);
    expect(d.nextDeadline()).toBeUndefined();
  });

  it('needs bus master for DMA: no TX and no RX without it', () => {
    const { d, frames } = bare();
    d.configWrite(0x04, 2, 0x3);
    d.mmioWrite(R.TDLEN, 4, 128);
    d.mmioWrite(R.TCTL, 4, 2);
    d.mmioWrite(R.TDT, 4, 1);
    expect(frames).toEqual([]);
    expect(d.mmioRead(R.TDH, 4)).toBe(0);
    expect(d.drops.get('e1000.tx-without-bus-master')).toBeGreaterThan(0);
    d.mmioWrite(R.RCTL, 4, 0x8002);
    expect(d.canReceive()).toBe(false);
  });

  it('snapshot → JSON → restore continues exactly where it left off', async () => {
    const a = modelTarget();
    const drv = new LinuxLikeDriver(a, 16, 16);
    await drv.probe({ eepromWords: 3 });
    await drv.open();
    await a.wait(600);
    await drv.interrupt();
    const frame = ethernet(PEER_MAC, GUEST_MAC, 0x0800, ipv4(ip('10.0.2.15'), ip('10.0.2.2'), 17, udp(ip('10.0.2.15'), ip('10.0.2.2'), 1, 2, new Uint8Array(64))));
    await drv.transmit(frame);
    // Freeze with TX causes pending and the interrupt line up.
    const mem = await a.memRead(0, MEM_SIZE);
    const saved = JSON.stringify(a.dev.snapshot());

    const b = modelTarget();
    b.dev.configWrite(0x04, 2, 0); // different state first, to prove restore replaces it
    expect(b.dev.restore(JSON.parse(saved))).toBeUndefined();
    await b.memWrite(0, mem);
    expect(JSON.stringify(b.dev.snapshot())).toBe(saved);
    const drvB = new LinuxLikeDriver(b, 16, 16);
    Object.assign(drvB, { txTail: drv.txTail, txClean: drv.txClean, rxNext: drv.rxNext, mac: drv.mac });
    for (const [t, d] of [[a, drv], [b, drvB]] as const) {
      await d.transmit(frame);
      await t.inject(ethernet(GUEST_MAC, PEER_MAC, 0x0800, new Uint8Array(80).fill(9)));
      await t.wait(1);
    }
    const ra = await drv.interrupt();
    const rb = await drvB.interrupt();
    expect(rb).toEqual(ra);
    expect(await b.takeFrames()).toEqual((await a.takeFrames()).slice(1));
  });

  it('refuses malformed snapshots without touching the device', () => {
    const { d } = bare();
    const good = d.snapshot();
    d.mmioWrite(R.VET, 4, 0x88a8);
    expect(d.restore({ ...good, version: 2 })).toBe('e1000.snapshot-version');
    expect(d.restore({ ...good, regs: [[0x9000, 1]] })).toBe('e1000.snapshot-regs');
    expect(d.restore({ ...good, phy: [1] })).toBe('e1000.snapshot-phy');
    expect(d.restore(null)).toBe('e1000.snapshot-not-object');
    expect(d.mmioRead(R.VET, 4)).toBe(0x88a8);
  });

  // Deviation 3: no header-only segment after a TSO payload that is a multiple of the MSS.
  it('TSO with a payload that is an exact multiple of the MSS sends exactly n segments', async () => {
    const t = modelTarget();
    const drv = new LinuxLikeDriver(t, 16, 16);
    await t.cfgWrite(0x04, 2, 7);
    await t.write(R.TDBAL, TX_RING);
    await t.write(R.TDLEN, 256);
    await t.write(R.TCTL, 2);
    const data = new Uint8Array(3000);
    const seg = ethernet(PEER_MAC, GUEST_MAC, 0x0800, ipv4(ip('10.0.2.15'), ip('10.0.2.2'), 6, tcp(ip('10.0.2.15'), ip('10.0.2.2'), 1, 2, 100, 0x19, data, 'pseudo-nolen'), 7, true));
    await drv.transmit(seg, { ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, tcp: true, ipv4: true, popts: 3, tso: { mss: 1000, hdrLen: 54 } });
    const frames = await t.takeFrames();
    expect(frames.map((f) => f.length)).toEqual([1054, 1054, 1054]);
    expect(frames.map((f) => f[14 + 20 + 13]! & 0x09)).toEqual([0, 0, 0x09]); // PSH|FIN only on the last
    expect(frames.map((f) => (f[18]! << 8) | f[19]!)).toEqual([7, 8, 9]); // IP ID + i
  });
});
