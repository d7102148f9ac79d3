/**
 * Guest physical memory as the device sees it through PCI bus-master DMA.
 *
 * Addresses are JavaScript numbers: a descriptor's 64-bit address is `hi * 2**32 + lo`,
 * exact up to 2**53 (8 PiB), far beyond any guest we run. Addresses at or above 2**53
 * cannot be represented; the device counts them ('e1000.dma-address-too-high') and
 * treats the access as a bus error (reads as zeros, writes discarded) instead of
 * touching a wrong address.
 */

/** What the device needs from the emulator's memory. Implementations must not throw. */
export interface GuestMemory {
  /**
   * `len` bytes at `addr`. The result may be a view of guest memory valid only until the
   * next call; the device copies what it keeps. Bytes outside guest memory read as 0.
   */
  read(addr: number, len: number): Uint8Array;
  /** Writes `bytes` at `addr`; bytes outside guest memory are discarded. */
  write(addr: number, bytes: Uint8Array): void;
}

/** Largest address the device will use (exclusive). */
export const DMA_ADDRESS_LIMIT = 2 ** 53;

/** A GuestMemory over a plain byte array (tests, benchmarks, in-process emulators). */
export function arrayGuestMemory(mem: Uint8Array): GuestMemory {
  return {
    read(addr, len) {
      if (addr >= 0 && addr + len <= mem.length) return mem.subarray(addr, addr + len);
      const out = new Uint8Array(len);
      if (addr < mem.length && addr + len > 0) {
        const from = Math.max(0, addr);
        const to = Math.min(mem.length, addr + len);
        out.set(mem.subarray(from, to), from - addr);
      }
      return out;
    },
    write(addr, bytes) {
      if (addr >= 0 && addr + bytes.length <= mem.length) {
        mem.set(bytes, addr);
        return;
      }
      if (addr >= mem.length || addr + bytes.length <= 0) return;
      const from = Math.max(0, addr);
      const to = Math.min(mem.length, addr + bytes.length);
      mem.set(bytes.subarray(from - addr, to - addr), from);
    },
  };
}
