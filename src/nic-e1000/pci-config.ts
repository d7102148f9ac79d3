/**
 * PCI configuration space of an 82540EM function (8254x SDM §4.1 "PCI Configuration",
 * PCI Local Bus Specification 3.0 §6.1), with QEMU 7.2's identity: 8086:100E rev 3,
 * class 020000, subsystem 1AF4:1100, BAR0 128 KiB memory, BAR1 64-byte I/O, pin INTA#.
 * There is no option ROM and no capability list. Cache line size reads 0 after reset (QEMU 7.2).
 */

export const PCI = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION: 0x08,
  CLASS_PROG: 0x09,
  CACHE_LINE: 0x0c,
  LATENCY: 0x0d,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  BAR1: 0x14,
  SUBSYS_VENDOR: 0x2c,
  SUBSYS_ID: 0x2e,
  ROM: 0x30,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
} as const;

/** COMMAND bits (PCI 3.0 §6.2.2). */
export const COMMAND = { IO: 0x1, MEMORY: 0x2, BUS_MASTER: 0x4, INTX_DISABLE: 0x400 } as const;
/** STATUS.Interrupt status (PCI 3.0 §6.2.3): the function's INTx level before INTX_DISABLE. */
export const STATUS_INTERRUPT = 0x8;

/** Identity of the function; defaults are QEMU's. */
export interface PciIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
}

export const QEMU_IDENTITY: PciIdentity = {
  vendorId: 0x8086,
  deviceId: 0x100e,
  revision: 0x03,
  subsystemVendorId: 0x1af4,
  subsystemId: 0x1100,
};

const BAR0_MASK = 0xfffe0000; // 128 KiB, 32-bit, non-prefetchable memory
const BAR1_MASK = 0xffffffc0; // 64 bytes of I/O space

/** Writable bits per byte of the 64-byte header (everything beyond reads 0, ignores writes). */
const WMASK = new Uint8Array(256);
WMASK[PCI.COMMAND] = 0x47; // IO, MEMORY, BUS_MASTER, PARITY
WMASK[PCI.COMMAND + 1] = 0x05; // SERR, INTX_DISABLE
WMASK[PCI.CACHE_LINE] = 0xff;
WMASK[PCI.INTERRUPT_LINE] = 0xff;
for (let i = 0; i < 4; i++) {
  WMASK[PCI.BAR0 + i] = (BAR0_MASK >>> (8 * i)) & 0xff;
  WMASK[PCI.BAR1 + i] = (BAR1_MASK >>> (8 * i)) & 0xff;
}

/** Config space bytes; `write` returns which COMMAND bits changed so the device can react. */
export class PciConfig {
  readonly bytes = new Uint8Array(256);

  constructor(id: PciIdentity = QEMU_IDENTITY) {
    const b = this.bytes;
    const put16 = (at: number, v: number): void => {
      b[at] = v & 0xff;
      b[at + 1] = v >>> 8;
    };
    put16(PCI.VENDOR_ID, id.vendorId);
    put16(PCI.DEVICE_ID, id.deviceId);
    b[PCI.REVISION] = id.revision;
    b[0x0a] = 0x00; // subclass: Ethernet
    b[0x0b] = 0x02; // class: network controller
    b[PCI.BAR1] = 0x01; // I/O space indicator
    put16(PCI.SUBSYS_VENDOR, id.subsystemVendorId);
    put16(PCI.SUBSYS_ID, id.subsystemId);
    b[PCI.INTERRUPT_PIN] = 1; // INTA#
  }

  get command(): number {
    return this.bytes[PCI.COMMAND]! | (this.bytes[PCI.COMMAND + 1]! << 8);
  }

  /** Little-endian read of 1, 2 or 4 bytes; bytes past 255 read as 0. */
  read(offset: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= (this.bytes[(offset + i) & 0x1ff] ?? 0) << (8 * i);
    return v >>> 0;
  }

  /** Stores the writable bits; returns the previous COMMAND value. */
  write(offset: number, size: number, value: number): number {
    const before = this.command;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at < 0 || at > 255) continue;
      const m = WMASK[at]!;
      this.bytes[at] = (this.bytes[at]! & ~m) | ((value >>> (8 * i)) & m);
    }
    return before;
  }

  /** Mirrors the INTx level into STATUS.Interrupt. */
  setInterruptStatus(level: boolean): void {
    const s = this.bytes[PCI.STATUS]!;
    this.bytes[PCI.STATUS] = level ? s | STATUS_INTERRUPT : s & ~STATUS_INTERRUPT;
  }
}
