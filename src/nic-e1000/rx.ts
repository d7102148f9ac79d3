/**
 * The receive path (8254x SDM §3.2 "Packet Reception"): size checks, address and VLAN
 * filtering (§3.2.1, §13.4.47), VLAN stripping, writing the frame into one or more
 * receive buffers starting at RDH, status write-back, statistics and RXT0/RXDMT0.
 *
 * As QEMU 7.2: frames are padded to 60 bytes; `length` counts 4 FCS bytes that are never
 * written (unless RCTL.SECRC); descriptors with buffer address 0 are skipped but written
 * back with DD; the driver's csum/errors/status bits are preserved; IXSM is set on EOP
 * (no receive checksum offload is offered, so drivers verify checksums themselves).
 */
import type { E1000 } from './device.js';
import { DESC_SIZE, R, RAH_AV, RCTL, RXD } from './regs.js';
import { u16le, put16le } from '../util/bytes.js';

const ix = (offset: number): number => offset >>> 2;

/** What became of a frame offered to the device. */
export type RxResult =
  /** Written into the ring. */
  | 'delivered'
  /** Refused by the address, VLAN or size filter (as the wire would). */
  | 'filtered'
  /** Too few free buffers for this frame: dropped with RXO, RNBC and MPC (§13.4.17). */
  | 'overrun'
  /** The backend link is down: the frame never reaches the NIC. */
  | 'link-down'
  /**
   * The NIC cannot take a frame now (ring full, receiver disabled, link down, no bus
   * master). Keep the frame and offer it again after the device's `rxReady` callback.
   */
  | 'busy';

/** Receive buffer size from RCTL.BSIZE and BSEX (§13.4.22); BSEX with 00 means 2048. */
export function rxBufferSize(rctl: number): number {
  const bsize = (rctl >>> RCTL.BSIZE_SHIFT) & 3;
  if ((rctl & RCTL.BSEX) !== 0) return bsize === 1 ? 16384 : bsize === 2 ? 8192 : bsize === 3 ? 4096 : 2048;
  return bsize === 1 ? 1024 : bsize === 2 ? 512 : bsize === 3 ? 256 : 2048;
}

/** Free descriptors between RDH and RDT (RDH == RDT: none). */
function freeDescriptors(regs: Uint32Array): number {
  const rdh = regs[ix(R.RDH)]!;
  const rdt = regs[ix(R.RDT)]!;
  if (rdh < rdt) return rdt - rdh;
  if (rdh > rdt) return regs[ix(R.RDLEN)]! / DESC_SIZE + rdt - rdh;
  return 0;
}

/** Enough free buffers for `total` bytes (QEMU's `e1000_has_rxbufs`). */
export function hasRxBuffers(regs: Uint32Array, total: number): boolean {
  const bufSize = rxBufferSize(regs[ix(R.RCTL)]!);
  if (total <= bufSize) return regs[ix(R.RDH)] !== regs[ix(R.RDT)];
  return total <= freeDescriptors(regs) * bufSize;
}

const isBroadcast = (f: Uint8Array): boolean =>
  f[0] === 0xff && f[1] === 0xff && f[2] === 0xff && f[3] === 0xff && f[4] === 0xff && f[5] === 0xff;
const isMulticast = (f: Uint8Array): boolean => (f[0]! & 1) !== 0;

/**
 * Destination filter (§3.2.1): BAM / MPE / UPE, then the 16 exact addresses with AV, then
 * the multicast table hash selected by RCTL.MO (applied to any address that got this far).
 * Counts BPRC/MPRC as QEMU 7.2 does (at acceptance, before buffers are checked).
 */
function groupFilter(d: E1000, f: Uint8Array): boolean {
  const regs = d.regs;
  const rctl = regs[ix(R.RCTL)]!;
  if (isBroadcast(f) && (rctl & RCTL.BAM) !== 0) {
    d.incStat(R.BPRC);
    return true;
  }
  if (isMulticast(f) && (rctl & RCTL.MPE) !== 0) {
    d.incStat(R.MPRC);
    return true;
  }
  if (!isMulticast(f) && (rctl & RCTL.UPE) !== 0) return true;
  const lo = (f[0]! | (f[1]! << 8) | (f[2]! << 16) | (f[3]! << 24)) >>> 0;
  const hi = f[4]! | (f[5]! << 8);
  for (let n = 0; n < 16; n++) {
    const rah = regs[ix(R.RAH0) + 2 * n]!;
    if ((rah & RAH_AV) === 0) continue;
    if (regs[ix(R.RAL0) + 2 * n] === lo && (rah & 0xffff) === hi) return true;
  }
  const shift = [4, 3, 2, 0][(rctl >>> RCTL.MO_SHIFT) & 3]!;
  const hash = (((f[5]! << 8) | f[4]!) >>> shift) & 0xfff;
  if ((regs[ix(R.MTA) + (hash >>> 5)]! & (1 << (hash & 31))) !== 0) {
    d.incStat(R.MPRC);
    return true;
  }
  return false;
}

const etherType = (f: Uint8Array): number => (f[12]! << 8) | f[13]!;

/** Receives one frame into the ring. The caller has checked `canReceive()`. */
export function receive(d: E1000, input: Uint8Array): RxResult {
  const regs = d.regs;
  const rctl = regs[ix(R.RCTL)]!;
  let frame = input;
  if (frame.length < 60) {
    frame = new Uint8Array(60);
    frame.set(input);
  }
  // Oversize (§13.4.22 LPE, SBP): > 1522 bytes without LPE, > 16384 with it (QEMU 7.2).
  if ((frame.length > 16384 || (frame.length > 1522 && (rctl & RCTL.LPE) === 0)) && (rctl & RCTL.SBP) === 0) {
    d.incStat(R.ROC);
    return 'filtered';
  }
  const vet = regs[ix(R.VET)]! & 0xffff;
  const tagged = etherType(frame) === vet;
  if (tagged && (rctl & RCTL.VFE) !== 0) {
    const vid = ((frame[14]! << 8) | frame[15]!) & 0xfff;
    if ((regs[ix(R.VFTA) + ((vid >>> 5) & 0x7f)]! & (1 << (vid & 31))) === 0) return 'filtered';
  }
  if (!groupFilter(d, frame)) return 'filtered';

  let special = 0;
  let vlanStatus = 0;
  if (tagged && (regs[ix(R.CTRL)]! & (1 << 30)) !== 0) {
    // VLAN strip (§3.4.2): remove the tag, report it in `special` with VP.
    special = (frame[14]! << 8) | frame[15]!;
    const stripped = new Uint8Array(frame.length - 4);
    stripped.set(frame.subarray(0, 12));
    stripped.set(frame.subarray(16), 12);
    frame = stripped;
    vlanStatus = RXD.STAT_VP;
  }
  const size = frame.length;
  const total = size + ((rctl & RCTL.SECRC) !== 0 ? 0 : 4);
  if (!hasRxBuffers(regs, total)) {
    d.receiverOverrun();
    return 'overrun';
  }
  const bufSize = rxBufferSize(rctl);
  const base = regs[ix(R.RDBAH)]! * 2 ** 32 + ((regs[ix(R.RDBAL)]! & ~0xf) >>> 0);
  const rdhStart = regs[ix(R.RDH)]!;
  let offset = 0;
  do {
    const descSize = Math.min(total - offset, bufSize);
    const at = base + DESC_SIZE * regs[ix(R.RDH)]!;
    const desc = d.dmaRead(at, DESC_SIZE).slice();
    put16le(desc, 14, special);
    let status = desc[12]! & ~RXD.STAT_DD;
    const bufLo = (desc[0]! | (desc[1]! << 8) | (desc[2]! << 16) | (desc[3]! << 24)) >>> 0;
    const bufHi = (desc[4]! | (desc[5]! << 8) | (desc[6]! << 16) | (desc[7]! << 24)) >>> 0;
    if (bufLo !== 0 || bufHi !== 0) {
      if (offset < size) d.dmaWrite(bufHi * 2 ** 32 + bufLo, frame.subarray(offset, offset + Math.min(size - offset, bufSize)));
      offset += descSize;
      put16le(desc, 8, descSize);
      if (offset >= total) status |= RXD.STAT_EOP | RXD.STAT_IXSM;
      else status &= ~RXD.STAT_EOP;
    } else {
      d.drops.count('e1000.rx-null-buffer'); // §3.2.3: skipped, still handed back
    }
    desc[12] = status;
    d.dmaWrite(at, desc);
    d.dmaWrite(at + 12, Uint8Array.of(status | vlanStatus | RXD.STAT_DD));
    let rdh = regs[ix(R.RDH)]! + 1;
    if (rdh * DESC_SIZE >= regs[ix(R.RDLEN)]!) rdh = 0;
    regs[ix(R.RDH)] = rdh;
    if (rdh === rdhStart || rdhStart >= regs[ix(R.RDLEN)]! / DESC_SIZE) {
      d.receiverOverrun();
      return 'overrun';
    }
  } while (offset < total);

  d.rxStats(size, total);
  let cause = 0x80; // RXT0
  // RXDMT0 (§13.4.22 RDMTS): free descriptors at or below the threshold fraction of the ring.
  const rdh = regs[ix(R.RDH)]!;
  let rdt = regs[ix(R.RDT)]!;
  if (rdt < rdh) rdt += regs[ix(R.RDLEN)]! / DESC_SIZE;
  const shift = ((rctl >>> RCTL.RDMTS_SHIFT) & 3) + 1;
  if ((rdt - rdh) * DESC_SIZE <= regs[ix(R.RDLEN)]! >>> shift) cause |= 0x10;
  d.setCause(regs[ix(R.ICR)]! | cause);
  return 'delivered';
}

/** Reads a received descriptor's length field (for tests and drivers). */
export const rxDescLength = (desc: Uint8Array): number => u16le(desc, 8);
