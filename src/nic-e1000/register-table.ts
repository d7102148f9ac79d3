/**
 * The MAC register file as data: one entry per 32-bit register index (offset >>> 2) with
 * its read and write behaviour (8254x SDM §13.4; QEMU 7.2's `macreg_readops` /
 * `macreg_writeops` as the oracle). A register without `read` reads 0; one without
 * `write` ignores writes. Both are counted in the device's drops, never thrown.
 *
 * Deliberate differences from QEMU 7.2 (each tested in test/nic-e1000/device.test.ts and
 * listed in the README): CTRL_EXT, TIPG, TIDV and RXCSUM are read/write storage as in the
 * datasheet, their reserved bits reading 0 (QEMU does not implement them: they read 0 and
 * ignore writes, which is what they do here with `qemuCompat`).
 */
import type { E1000 } from './device.js';
import { readEecd, writeEecd } from './eeprom.js';
import { EERD, R, REG_COUNT } from './regs.js';

/** How one register behaves. `i` is the register index (offset >>> 2). */
export interface RegSpec {
  readonly read?: (d: E1000, i: number) => number;
  readonly write?: (d: E1000, i: number, v: number) => void;
}

const ix = (offset: number): number => offset >>> 2;

const plain: RegSpec = {
  read: (d, i) => d.regs[i]!,
  write: (d, i, v) => {
    d.regs[i] = v;
  },
};
const readOnly: RegSpec = { read: (d, i) => d.regs[i]! };
const masked = (mask: number): RegSpec => ({
  read: (d, i) => d.regs[i]!,
  write: (d, i, v) => {
    d.regs[i] = v & mask;
  },
});
/** Statistics that clear when read (§13.7). */
const clearOnRead: RegSpec = {
  read: (d, i) => {
    const v = d.regs[i]!;
    d.regs[i] = 0;
    return v;
  },
};
/** High half of a 64-bit statistic: reading it clears both halves (§13.7). */
const clearPairOnRead: RegSpec = {
  read: (d, i) => {
    const v = d.regs[i]!;
    d.regs[i] = 0;
    d.regs[i - 1] = 0;
    return v;
  },
};

/** A register the datasheet has and QEMU 7.2 does not: reads 0 and ignores writes with `qemuCompat`. */
const notInQemu = (spec: RegSpec): RegSpec => ({
  read: (d, i) => {
    if (!d.qemuCompat) return spec.read!(d, i);
    d.drops.count('e1000.read-unhandled-reg');
    return 0;
  },
  write: (d, i, v) => {
    if (!d.qemuCompat) spec.write!(d, i, v);
    else d.drops.count('e1000.write-unhandled-reg');
  },
});

const TABLE: (RegSpec | undefined)[] = new Array<RegSpec | undefined>(REG_COUNT).fill(undefined);
const set = (offset: number, spec: RegSpec, count = 1): void => {
  for (let k = 0; k < count; k++) TABLE[ix(offset) + k] = spec;
};

set(R.CTRL, { read: plain.read!, write: (d, _i, v) => { d.writeCtrl(v); } });
set(R.STATUS, readOnly);
set(R.EECD, { read: (d) => readEecd(d.microwire, d.eeprom), write: (d, _i, v) => { writeEecd(d.microwire, v); } });
set(R.EERD, {
  // §13.4.5: DONE and the word appear at once; addresses past the 64 words read 0.
  read: (d, i) => {
    const v = d.regs[i]!;
    if ((v & EERD.START) === 0) return v;
    const r = v & ~EERD.START;
    const addr = r >>> EERD.ADDR_SHIFT;
    if (addr > 63) return (r | EERD.DONE) >>> 0;
    return ((d.eeprom[addr]! << EERD.DATA_SHIFT) | EERD.DONE | r) >>> 0;
  },
  write: plain.write!,
});
set(R.CTRL_EXT, notInQemu(plain));
set(R.MDIC, { read: plain.read!, write: (d, _i, v) => { d.writeMdic(v); } });
set(R.VET, plain);
set(R.ICR, { read: (d) => d.readIcr(), write: (d, _i, v) => { d.setCause(d.regs[ix(R.ICR)]! & ~v); } });
set(R.ICS, { read: plain.read!, write: (d, _i, v) => { d.setCause(d.regs[ix(R.ICR)]! | v); } });
set(R.IMS, {
  read: plain.read!,
  write: (d, i, v) => {
    d.regs[i] = d.regs[i]! | v;
    d.setCause(d.regs[ix(R.ICR)]!);
  },
});
set(R.IMC, {
  write: (d, _i, v) => {
    d.regs[ix(R.IMS)] = d.regs[ix(R.IMS)]! & ~v;
    d.setCause(d.regs[ix(R.ICR)]!);
  },
});
set(R.ITR, masked(0xffff));
set(R.RCTL, { read: plain.read!, write: (d, _i, v) => { d.writeRctl(v); } });
set(R.TCTL, { read: plain.read!, write: (d, i, v) => { d.regs[i] = v; d.kickTx(); } });
set(R.TIPG, notInQemu(masked(0x3fffffff))); // SDM TIPG: IPGT 9:0, IPGR1 19:10, IPGR2 29:20; 31:30 reserved, read 0
set(R.AIT, masked(0xffff));
set(R.LEDCTL, plain);
set(R.PBA, plain);
for (const r of [R.RDFH, R.RDFT, R.RDFHS, R.RDFTS, R.RDFPC, R.TDFHS, R.TDFTS, R.TDFPC]) set(r, masked(0x1fff));
set(R.TDFH, masked(0x7ff));
set(R.TDFT, masked(0x7ff));
set(R.RDBAL, plain);
set(R.RDBAH, plain);
set(R.RDLEN, masked(0xfff80));
set(R.RDH, masked(0xffff));
set(R.RDT, { read: plain.read!, write: (d, _i, v) => { d.writeRdt(v); } });
set(R.RDTR, masked(0xffff));
set(R.RADV, masked(0xffff));
set(R.TDBAL, plain);
set(R.TDBAH, plain);
set(R.TDLEN, masked(0xfff80));
set(R.TDH, masked(0xffff));
set(R.TDT, { read: plain.read!, write: (d, i, v) => { d.regs[i] = v & 0xffff; d.kickTx(); } });
set(R.TIDV, notInQemu(masked(0xffff)));
set(R.TXDCTL, plain);
set(R.TADV, masked(0xffff));
set(R.RXCSUM, notInQemu(masked(0x3ff))); // SDM RXCSUM: PCSS 7:0, IPOFLD 8, TUOFLD 9; 31:10 reserved, read 0

// Statistics (§13.7): read-only; some clear on read.
for (let off = R.CRCERRS; off <= R.MPC; off += 4) set(off, readOnly);
for (const r of [R.SCC, R.ECOL, R.MCC, R.LATECOL, R.COLC, R.DC, R.TNCRS, R.SEC, R.CEXTERR, R.RLEC,
  R.XONRXC, R.XONTXC, R.XOFFRXC, R.XOFFTXC, R.RFC, R.RJC, R.RNBC, R.TSCTFC, R.MGTPRC, R.MGTPDC, R.MGTPTC,
  R.GORCL, R.GOTCL, R.TORL, R.TOTL]) set(r, readOnly);
set(R.FCRUC, plain);
for (const r of [R.PRC64, R.PRC127, R.PRC255, R.PRC511, R.PRC1023, R.PRC1522, R.PTC64, R.PTC127, R.PTC255, R.PTC511,
  R.PTC1023, R.PTC1522, R.GPRC, R.GPTC, R.TPT, R.TPR, R.RUC, R.ROC, R.BPRC, R.MPRC, R.TSCTC, R.BPTC, R.MPTC]) set(r, clearOnRead);
for (const r of [R.TOTH, R.TORH, R.GOTCH, R.GORCH]) set(r, clearPairOnRead);

set(R.MTA, plain, 128);
set(R.RAL0, plain, 32);
set(R.VFTA, plain, 128);
for (const r of [R.WUC, R.WUFC, R.WUS, R.IPAV, R.SWSM]) set(r, plain);
set(R.IP4AT, plain, 7);
set(R.IP6AT, plain, 4);
set(R.WUPM, plain, 32);
set(R.FFLT, masked(0x7ff), 7);
set(R.FFMT, masked(0xf), 255);
set(R.FFVT, plain, 255);
set(R.PBM, plain, 16384);
set(R.MANC, readOnly);

/** The spec for a register index, if the register exists. */
export const registerSpec = (index: number): RegSpec | undefined => TABLE[index];
