/**
 * A test driver that does what Linux's e1000 driver does to an 82540EM
 * (reference/e1000.md §11: `e1000_probe`, `e1000_open`, `e1000_intr`, `e1000_clean`,
 * `e1000_xmit_frame`), written against `NicTarget` so the very same sequence runs against
 * the TypeScript model and against QEMU's e1000 (differential tests). Every register
 * value it reads is appended to `trace`.
 */
import type { NicTarget } from './qtest-client.js';
import { R } from '../../src/nic-e1000/regs.js';

export const TX_RING = 0x10000;
export const RX_RING = 0x20000;
export const TX_BUF = 0x100000;
export const RX_BUF = 0x200000;
export const RX_BUF_SIZE = 2048;

const EECD_SK = 1, EECD_CS = 2, EECD_DI = 4, EECD_DO = 8, EECD_REQ = 0x40;
const MDIC_READ = 0x08000000, MDIC_WRITE = 0x04000000, MDIC_PHY1 = 1 << 21, MDIC_READY = 0x10000000;

/** Transmit offload for one frame, as Linux's `e1000_tx_csum` / `e1000_tso` set it up. */
export interface TxOffload {
  /** Context descriptor fields. */
  ipcss: number; ipcso: number; ipcse: number; tucss: number; tucso: number; tucse: number;
  /** TSO: MSS and header length; absent for plain checksum offload. */
  tso?: { mss: number; hdrLen: number };
  tcp: boolean;
  ipv4: boolean;
  /** POPTS: IXSM 1, TXSM 2. */
  popts: number;
}

export interface ReceivedFrame {
  bytes: Uint8Array;
  status: number;
  errors: number;
  special: number;
  descriptors: number;
}

export class LinuxLikeDriver {
  readonly t: NicTarget;
  readonly trace: [string, number, number][] = [];
  mac = new Uint8Array(6);
  txCount: number;
  rxCount: number;
  txTail = 0;
  txClean = 0;
  rxNext = 0;
  eepromWords: number[] = [];

  constructor(t: NicTarget, txCount = 64, rxCount = 64) {
    this.t = t;
    this.txCount = txCount;
    this.rxCount = rxCount;
  }

  async r(off: number): Promise<number> {
    const v = await this.t.read(off);
    this.trace.push(['r', off, v]);
    return v;
  }
  w(off: number, v: number): Promise<void> {
    return this.t.write(off, v >>> 0);
  }
  flush(): Promise<number> {
    return this.r(R.STATUS); // E1000_WRITE_FLUSH
  }

  // ---- EEPROM by Microwire, exactly as e1000_read_eeprom on an 82540 -------------------

  async #eecd(): Promise<number> {
    return (await this.t.read(R.EECD)) >>> 0;
  }
  async #raiseClock(e: number): Promise<number> { await this.w(R.EECD, e | EECD_SK); return e | EECD_SK; }
  async #lowerClock(e: number): Promise<number> { await this.w(R.EECD, e & ~EECD_SK); return e & ~EECD_SK; }

  async readEepromWord(addr: number): Promise<number> {
    // acquire
    let e = await this.#eecd();
    await this.w(R.EECD, e | EECD_REQ);
    e = await this.#eecd();
    e &= ~(EECD_DI | EECD_SK);
    await this.w(R.EECD, e);
    e |= EECD_CS;
    await this.w(R.EECD, e);
    // shift out opcode 110 then 6 address bits
    const out = (0b110 << 6) | (addr & 0x3f);
    for (let bit = 8; bit >= 0; bit--) {
      e = (out >> bit) & 1 ? e | EECD_DI : e & ~EECD_DI;
      await this.w(R.EECD, e);
      e = await this.#raiseClock(e);
      e = await this.#lowerClock(e);
    }
    e &= ~EECD_DI;
    await this.w(R.EECD, e);
    // shift in 16 bits
    let word = 0;
    for (let i = 0; i < 16; i++) {
      word <<= 1;
      e = await this.#raiseClock(e);
      const v = await this.#eecd();
      if ((v & EECD_DO) !== 0) word |= 1;
      e = await this.#lowerClock(e);
    }
    // standby + release
    e = await this.#eecd();
    e &= ~(EECD_CS | EECD_SK);
    await this.w(R.EECD, e);
    e = await this.#raiseClock(e);
    e |= EECD_CS;
    await this.w(R.EECD, e);
    await this.#lowerClock(e);
    e = await this.#eecd();
    e &= ~(EECD_CS | EECD_DI);
    await this.w(R.EECD, e);
    e = await this.#raiseClock(e);
    e = await this.#lowerClock(e);
    await this.w(R.EECD, e & ~EECD_REQ);
    this.trace.push(['eeprom', addr, word]);
    return word;
  }

  // ---- PHY -------------------------------------------------------------------------------

  async phyRead(reg: number): Promise<number> {
    await this.w(R.MDIC, MDIC_READ | MDIC_PHY1 | (reg << 16));
    const v = await this.r(R.MDIC);
    if ((v & MDIC_READY) === 0) throw new Error('MDIC not ready');
    return v & 0xffff;
  }
  async phyWrite(reg: number, v: number): Promise<void> {
    await this.w(R.MDIC, MDIC_WRITE | MDIC_PHY1 | (reg << 16) | (v & 0xffff));
    await this.r(R.MDIC);
  }

  // ---- probe -------------------------------------------------------------------------------

  async resetHw(viaIo: boolean): Promise<void> {
    await this.w(R.IMC, 0xffffffff);
    await this.w(R.RCTL, 0);
    await this.w(R.TCTL, 0x8);
    await this.flush();
    const ctrl = await this.r(R.CTRL);
    if (viaIo) await this.t.ioWrite(0, R.CTRL).then(() => this.t.ioWrite(4, ctrl | (1 << 26)));
    else await this.w(R.CTRL, ctrl | (1 << 26));
    const manc = await this.r(R.MANC);
    await this.w(R.MANC, manc & ~0x2000);
    await this.w(R.IMC, 0xffffffff);
    await this.r(R.ICR);
  }

  /** `e1000_probe` up to `register_netdev`; returns the EEPROM checksum sum. */
  async probe(opts: { viaIo?: boolean; eepromWords?: number } = {}): Promise<number> {
    await this.t.cfgWrite(0x04, 2, 0x0007); // IO | MEM | BUS_MASTER
    await this.r(R.STATUS);
    await this.w(R.IMC, 0xffffffff);
    await this.r(R.EECD);
    await this.resetHw(opts.viaIo ?? true);
    let sum = 0;
    const n = opts.eepromWords ?? 64;
    for (let i = 0; i < n; i++) {
      const w = await this.readEepromWord(i);
      this.eepromWords[i] = w;
      sum = (sum + w) & 0xffff;
    }
    for (let i = 0; i < 3; i++) {
      const w = await this.readEepromWord(i);
      this.mac[2 * i] = w & 0xff;
      this.mac[2 * i + 1] = w >> 8;
    }
    await this.w(R.PBA, 0x30);
    await this.resetHw(opts.viaIo ?? true);
    await this.w(R.WUC, 0);
    // e1000_init_hw
    await this.r(R.LEDCTL);
    await this.r(R.STATUS);
    await this.w(R.VET, 0);
    for (let i = 0; i < 128; i++) await this.w(R.VFTA + 4 * i, 0);
    const m = this.mac;
    await this.w(R.RAL0, m[0]! | (m[1]! << 8) | (m[2]! << 16) | (m[3]! << 24));
    await this.w(R.RAH0, m[4]! | (m[5]! << 8) | 0x80000000);
    for (let i = 1; i < 16; i++) {
      await this.w(R.RAL0 + 8 * i, 0);
      await this.w(R.RAH0 + 8 * i, 0);
    }
    for (let i = 0; i < 128; i++) await this.w(R.MTA + 4 * i, 0);
    // e1000_setup_link / copper preconfig
    let ctrl = await this.r(R.CTRL);
    ctrl = (ctrl | 0x40) & ~(0x800 | 0x1000);
    await this.w(R.CTRL, ctrl);
    const id1 = await this.phyRead(2);
    const id2 = await this.phyRead(3);
    if (((id1 << 16) | id2) >>> 4 !== 0x01410c2) throw new Error(`unexpected PHY id ${id1.toString(16)}:${id2.toString(16)}`);
    let pscr = await this.phyRead(16);
    pscr = (pscr | 0x0800 | 0x0060) & 0xffff;
    await this.phyWrite(16, pscr);
    await this.phyWrite(20, 0x0170);
    const bmcr = await this.phyRead(0);
    await this.phyWrite(0, bmcr | 0x8000);
    await this.phyWrite(4, 0x0de1);
    await this.phyWrite(9, 0x0e00);
    await this.phyWrite(0, 0x1340); // AUTOEN | ANRESTART: the link drops for ~500 ms
    await this.phyRead(1);
    await this.phyRead(1);
    // e1000_clear_hw_cntrs
    for (let off = R.CRCERRS; off <= R.TSCTFC; off += 4) await this.r(off);
    await this.w(R.VET, 0x8100);
    await this.w(R.AIT, 0);
    ctrl = await this.r(R.CTRL);
    await this.w(R.CTRL, ctrl | (1 << 30)); // VME: hardware VLAN strip on
    return sum;
  }

  // ---- open ------------------------------------------------------------------------------

  async open(): Promise<void> {
    // TX ring
    await this.t.memWrite(TX_RING, new Uint8Array(16 * this.txCount));
    await this.w(R.TDBAL, TX_RING);
    await this.w(R.TDBAH, 0);
    await this.w(R.TDLEN, 16 * this.txCount);
    await this.w(R.TDH, 0);
    await this.w(R.TDT, 0);
    await this.w(R.TIPG, 0x00602008);
    await this.w(R.TIDV, 8);
    await this.w(R.TADV, 32);
    await this.w(R.TCTL, 0x0103f0f8); // PSP | RTLC | CT | COLD, EN on link-up
    // RX ring
    await this.w(R.RCTL, 0x8000); // BAM | 2048
    await this.w(R.RDTR, 0);
    await this.w(R.RADV, 8);
    await this.w(R.ITR, 195);
    await this.w(R.RDLEN, 16 * this.rxCount);
    await this.w(R.RDBAH, 0);
    await this.w(R.RDBAL, RX_RING);
    await this.w(R.RDT, 0);
    await this.w(R.RDH, 0);
    await this.w(R.RCTL, 0x8002); // | EN
    const ring = new Uint8Array(16 * this.rxCount);
    const dv = new DataView(ring.buffer);
    for (let i = 0; i < this.rxCount; i++) dv.setUint32(16 * i, RX_BUF + RX_BUF_SIZE * i, true);
    await this.t.memWrite(RX_RING, ring);
    await this.w(R.RDT, this.rxCount - 1);
    await this.w(R.IMS, 0x9d);
    await this.w(R.ICS, 0x04);
  }

  /** The watchdog after LSC: link state, then TCTL.EN. */
  async watchdog(): Promise<boolean> {
    await this.r(R.CTRL);
    const status = await this.r(R.STATUS);
    await this.phyRead(1);
    await this.phyRead(1);
    const up = (status & 2) !== 0;
    if (up) {
      const tctl = await this.r(R.TCTL);
      await this.w(R.TCTL, tctl | 2);
    }
    return up;
  }

  // ---- datapath --------------------------------------------------------------------------

  /** Queues one frame (legacy descriptors, or context + data with offload) and writes TDT. */
  async transmit(frame: Uint8Array, offload?: TxOffload, opts: { vlan?: number; chunk?: number } = {}): Promise<void> {
    const descs: Uint8Array[] = [];
    const chunk = opts.chunk ?? 4096;
    const bufAt = TX_BUF + (this.txTail % this.txCount) * 0x10000;
    await this.t.memWrite(bufAt, frame);
    if (offload !== undefined) {
      const c = new Uint8Array(16);
      const dv = new DataView(c.buffer);
      c[0] = offload.ipcss; c[1] = offload.ipcso; dv.setUint16(2, offload.ipcse, true);
      c[4] = offload.tucss; c[5] = offload.tucso; dv.setUint16(6, offload.tucse, true);
      const tse = offload.tso !== undefined;
      const paylen = tse ? frame.length - offload.tso!.hdrLen : 0;
      const cmd = 0x20 | (tse ? 0x04 : 0) | (offload.tcp ? 0x01 : 0) | (offload.ipv4 ? 0x02 : 0);
      dv.setUint32(8, (paylen & 0xfffff) | (cmd << 24), true);
      c[13] = offload.tso?.hdrLen ?? 0;
      dv.setUint16(14, offload.tso?.mss ?? 0, true);
      descs.push(c);
    }
    for (let off = 0; off < frame.length; off += chunk) {
      const len = Math.min(chunk, frame.length - off);
      const last = off + len >= frame.length;
      const d = new Uint8Array(16);
      const dv = new DataView(d.buffer);
      dv.setUint32(0, bufAt + off, true);
      let cmd = 0x02; // IFCS
      if (last) cmd |= 0x01 | 0x08 | 0x80; // EOP | RS | IDE
      if (opts.vlan !== undefined) cmd |= 0x40;
      if (offload !== undefined) {
        cmd |= 0x20 | (offload.tso !== undefined ? 0x04 : 0);
        dv.setUint32(8, (len & 0xfffff) | 0x00100000 | (cmd << 24), true);
        d[13] = offload.popts;
      } else {
        dv.setUint32(8, len | (cmd << 24), true);
      }
      if (opts.vlan !== undefined) dv.setUint16(14, opts.vlan, true);
      descs.push(d);
    }
    for (const d of descs) {
      await this.t.memWrite(TX_RING + 16 * this.txTail, d);
      this.txTail = (this.txTail + 1) % this.txCount;
    }
    await this.w(R.TDT, this.txTail);
  }

  /** TX clean: how many descriptors have DD, from txClean up to the tail. */
  async cleanTx(): Promise<number> {
    let n = 0;
    while (this.txClean !== this.txTail) {
      const d = await this.t.memRead(TX_RING + 16 * this.txClean, 16);
      const lower = new DataView(d.buffer, d.byteOffset).getUint32(8, true);
      const rs = (lower & 0x08000000) !== 0;
      if (rs && (d[12]! & 1) === 0) break;
      this.txClean = (this.txClean + 1) % this.txCount;
      n++;
    }
    return n;
  }

  /** RX clean: collects frames with DD (multi-descriptor frames joined), refills, writes RDT. */
  async cleanRx(budget = 64): Promise<ReceivedFrame[]> {
    const out: ReceivedFrame[] = [];
    let parts: Uint8Array[] = [];
    let used = 0;
    for (let k = 0; k < budget * 4; k++) {
      const at = RX_RING + 16 * this.rxNext;
      const d = await this.t.memRead(at, 16);
      if ((d[12]! & 1) === 0) break;
      const dv = new DataView(d.buffer, d.byteOffset);
      const len = dv.getUint16(8, true);
      const addr = dv.getUint32(0, true);
      parts.push(addr === 0 ? new Uint8Array(0) : await this.t.memRead(addr, len));
      used++;
      const status = d[12]!;
      // Refill: give the descriptor back with its buffer and a cleared status.
      const fresh = new Uint8Array(16);
      new DataView(fresh.buffer).setUint32(0, RX_BUF + RX_BUF_SIZE * this.rxNext, true);
      await this.t.memWrite(at, fresh);
      this.rxNext = (this.rxNext + 1) % this.rxCount;
      if ((status & 2) !== 0) {
        const total = parts.reduce((a, p) => a + p.length, 0);
        const bytes = new Uint8Array(total);
        let o = 0;
        for (const p of parts) { bytes.set(p, o); o += p.length; }
        out.push({ bytes, status, errors: d[13]!, special: dv.getUint16(14, true), descriptors: used });
        parts = [];
        used = 0;
        if (out.length >= budget) break;
      }
    }
    if (out.length > 0 || used > 0) await this.w(R.RDT, (this.rxNext + this.rxCount - 1) % this.rxCount);
    return out;
  }

  /** `e1000_intr` + NAPI poll: ICR, mask, clean both rings, unmask. */
  async interrupt(): Promise<{ icr: number; frames: ReceivedFrame[]; txDone: number }> {
    const icr = await this.r(R.ICR);
    if (icr === 0) return { icr, frames: [], txDone: 0 };
    if ((icr & 0x04) !== 0) await this.watchdog();
    await this.w(R.IMC, 0xffffffff);
    const txDone = await this.cleanTx();
    const frames = await this.cleanRx();
    await this.w(R.IMS, 0x9d);
    return { icr, frames, txDone };
  }
}
