/**
 * The transmit engine (8254x SDM §3.3 "Packet Transmission", §3.5 "TCP Segmentation"):
 * walks the ring from TDH to TDT, assembles packets from legacy or context + data
 * descriptors, applies checksum offload, TSO and VLAN insertion, writes DD back for RS.
 *
 * Behaviour follows QEMU 7.2's e1000 (the oracle of the differential tests) with one
 * deliberate difference: when a TSO payload is an exact multiple of the MSS, QEMU sends an
 * extra header-only segment at EOP (seq = end, original flags, IP ID + n). The datasheet
 * sends no such segment and a peer sees it as a duplicate ACK (three of them trigger fast
 * retransmit), so this model does not send it unless `qemuCompat` asks for QEMU's behaviour.
 */
import type { E1000 } from './device.js';
import { DESC_SIZE, R, TCTL, TXD } from './regs.js';
import { u16, u32, u16le, u32le, put16, put32, put32le } from '../util/bytes.js';
import { sum16 } from '../util/checksum.js';

/** One offload context (§3.3.6 "TCP/IP Context Descriptor"). */
export interface TxContext {
  ipcss: number;
  ipcso: number;
  ipcse: number;
  tucss: number;
  tucso: number;
  tucse: number;
  paylen: number;
  hdrLen: number;
  mss: number;
  /** TUCMD.IP: IPv4 (else IPv6). */
  ip: boolean;
  /** TUCMD.TCP: TCP (else UDP). */
  tcp: boolean;
}

/** Packet assembly state carried across descriptors (and across TDT writes). */
export interface TxState {
  /** Assembly buffer: `size` valid bytes. QEMU's is 64 KiB; excess data is truncated. */
  data: Uint8Array;
  size: number;
  /** The TSO header template, saved once `hdrLen` bytes have accumulated. */
  header: Uint8Array;
  /** POPTS of the packet's first data descriptor. */
  sumNeeded: number;
  /** Current packet is a TSO packet (DCMD.TSE of the latest data descriptor). */
  cptse: boolean;
  vlanNeeded: boolean;
  /** The 802.1Q tag to insert: TPID (VET) << 16 | TCI. */
  vlanTag: number;
  props: TxContext;
  tsoProps: TxContext;
  /** Segments already sent for the current TSO packet. */
  tsoFrames: number;
  /** Re-entrancy guard: an emit callback that kicks TX again returns at once. */
  busy: boolean;
}

export const TX_BUFFER_SIZE = 0x10000;

const emptyContext = (): TxContext => ({
  ipcss: 0, ipcso: 0, ipcse: 0, tucss: 0, tucso: 0, tucse: 0, paylen: 0, hdrLen: 0, mss: 0, ip: false, tcp: false,
});

export const initialTxState = (): TxState => ({
  data: new Uint8Array(TX_BUFFER_SIZE + 512), // slack so header edits past `size` stay in bounds
  size: 0,
  header: new Uint8Array(256),
  sumNeeded: 0,
  cptse: false,
  vlanNeeded: false,
  vlanTag: 0,
  props: emptyContext(),
  tsoProps: emptyContext(),
  tsoFrames: 0,
  busy: false,
});

const ix = (offset: number): number => offset >>> 2;

/** TDT/TCTL write (§3.3.1): runs the ring until TDH reaches TDT; raises TXQE (and TXDW). */
export function startXmit(d: E1000): void {
  const regs = d.regs;
  if ((regs[ix(R.TCTL)]! & TCTL.EN) === 0) return;
  if (!d.busMaster) {
    d.drops.count('e1000.tx-without-bus-master');
    return;
  }
  const tx = d.tx;
  if (tx.busy) return;
  tx.busy = true;
  const tdhStart = regs[ix(R.TDH)]!;
  let cause = 0x02; // TXQE: the queue is empty once this run ends (QEMU raises it on every run)
  const base = regs[ix(R.TDBAH)]! * 2 ** 32 + ((regs[ix(R.TDBAL)]! & ~0xf) >>> 0);
  while (regs[ix(R.TDH)] !== regs[ix(R.TDT)]) {
    const at = base + DESC_SIZE * regs[ix(R.TDH)]!;
    const desc = d.dmaRead(at, DESC_SIZE).slice();
    processDescriptor(d, tx, desc);
    const lower = u32le(desc, 8);
    if ((lower & (TXD.CMD_RS | TXD.CMD_RPS)) !== 0) {
      // Write back only the status dword (§3.3.3.2): DD set, EC/LC/TU clear.
      const upper = (u32le(desc, 12) | TXD.STAT_DD) & ~(TXD.STAT_EC | TXD.STAT_LC | TXD.STAT_TU);
      const wb = new Uint8Array(4);
      put32le(wb, 0, upper);
      d.dmaWrite(at + 12, wb);
      cause |= 0x01; // TXDW
    }
    let tdh = regs[ix(R.TDH)]! + 1;
    if (tdh * DESC_SIZE >= regs[ix(R.TDLEN)]!) tdh = 0;
    regs[ix(R.TDH)] = tdh;
    // A bogus TDT/TDLEN (e.g. TDT beyond the ring) would loop forever: stop after one lap.
    if (tdh === tdhStart || tdhStart >= regs[ix(R.TDLEN)]! / DESC_SIZE) {
      d.drops.count('e1000.tx-ring-wrap');
      break;
    }
  }
  tx.busy = false;
  d.setCause(regs[ix(R.ICR)]! | cause);
}

function readContext(c: TxContext, desc: Uint8Array): void {
  const op = u32le(desc, 8);
  c.ipcss = desc[0]!;
  c.ipcso = desc[1]!;
  c.ipcse = u16le(desc, 2);
  c.tucss = desc[4]!;
  c.tucso = desc[5]!;
  c.tucse = u16le(desc, 6);
  c.paylen = op & 0xfffff;
  c.hdrLen = desc[13]!;
  c.mss = u16le(desc, 14);
  c.ip = (op & TXD.CMD_IP) !== 0;
  c.tcp = (op & TXD.CMD_TCP) !== 0;
}

function processDescriptor(d: E1000, tx: TxState, desc: Uint8Array): void {
  const lower = u32le(desc, 8);
  const dtype = lower & (TXD.CMD_DEXT | TXD.DTYP_D);
  if ((lower & TXD.CMD_IDE) !== 0) d.mitigation.ide = true;
  if (dtype === TXD.CMD_DEXT) {
    // Context descriptor (§3.3.6): two independent contexts, TSO and plain offload.
    if ((lower & TXD.CMD_TSE) !== 0) {
      readContext(tx.tsoProps, desc);
      tx.tsoFrames = 0;
    } else {
      readContext(tx.props, desc);
    }
    return;
  }
  if (dtype === (TXD.CMD_DEXT | TXD.DTYP_D)) {
    // Data descriptor (§3.3.7): POPTS counts only on the first descriptor of a packet.
    if (tx.size === 0) tx.sumNeeded = desc[13]!;
    tx.cptse = (lower & TXD.CMD_TSE) !== 0;
  } else {
    // Legacy descriptor (§3.3.3): IC/CSO/CSS are not acted upon (as QEMU).
    tx.cptse = false;
  }
  if ((d.regs[ix(R.CTRL)]! & (1 << 30)) !== 0 && (lower & TXD.CMD_VLE) !== 0 && (tx.cptse || (lower & TXD.CMD_EOP) !== 0)) {
    tx.vlanNeeded = true;
    tx.vlanTag = (((d.regs[ix(R.VET)]! & 0xffff) << 16) | u16le(desc, 14)) >>> 0;
  }
  let addr = u32le(desc, 4) * 2 ** 32 + u32le(desc, 0);
  let split = lower & 0xffff;
  if (tx.cptse) {
    const hdrLen = tx.tsoProps.hdrLen;
    const msh = hdrLen + tx.tsoProps.mss;
    let bytes: number;
    do {
      if (tx.size >= msh) break;
      bytes = Math.min(split, msh - tx.size, TX_BUFFER_SIZE - tx.size);
      tx.data.set(d.dmaRead(addr, bytes).subarray(0, bytes), tx.size);
      const sz = tx.size + bytes;
      if (sz >= hdrLen && tx.size < hdrLen) tx.header.set(tx.data.subarray(0, hdrLen));
      tx.size = sz;
      addr += bytes;
      if (sz === msh) {
        transmitSegment(d, tx);
        tx.data.set(tx.header.subarray(0, hdrLen));
        tx.size = hdrLen;
      }
      split -= bytes;
    } while (bytes > 0 && split > 0);
  } else {
    split = Math.min(split, TX_BUFFER_SIZE - tx.size);
    tx.data.set(d.dmaRead(addr, split).subarray(0, split), tx.size);
    tx.size += split;
  }
  if ((lower & TXD.CMD_EOP) === 0) return;
  // QEMU 7.2 sends the restored header template as one more segment (qemuCompat only).
  const headerOnlyTail = tx.cptse && tx.tsoFrames > 0 && tx.size === tx.tsoProps.hdrLen && !d.qemuCompat;
  if (!(tx.cptse && tx.size < tx.tsoProps.hdrLen) && !headerOnlyTail) transmitSegment(d, tx);
  tx.tsoFrames = 0;
  tx.sumNeeded = 0;
  tx.vlanNeeded = false;
  tx.size = 0;
  tx.cptse = false;
}

/**
 * Inserts a checksum (§3.3.6): the one's-complement sum of bytes css..cse inclusive
 * (cse 0 = end of packet), *including* what the field holds (the driver's seed), complemented;
 * 0 is sent as 0xFFFF. Skipped when the field does not fit in the packet.
 */
function putChecksum(data: Uint8Array, size: number, cso: number, css: number, cse: number): void {
  let n = size;
  if (cse !== 0 && cse < n) n = cse + 1;
  if (cso >= n - 1) return;
  const s = css < n ? sum16(data, css, n) : 0;
  const c = ~s & 0xffff;
  put16(data, cso, c === 0 ? 0xffff : c);
}

/** Sends the assembled packet (one TSO segment, or a whole packet). */
function transmitSegment(d: E1000, tx: TxState): void {
  const p = tx.cptse ? tx.tsoProps : tx.props;
  const data = tx.data;
  if (tx.cptse) {
    const frames = tx.tsoFrames;
    let css = p.ipcss;
    if (p.ip) {
      put16(data, css + 2, tx.size - css); // IPv4 total length
      put16(data, css + 4, u16(data, css + 4) + frames); // IP ID + i
    } else {
      put16(data, css + 4, tx.size - css); // IPv6 payload length (QEMU: includes the header)
    }
    css = p.tucss;
    const len = (tx.size - css) & 0xffff;
    if (p.tcp) {
      const sofar = (frames * p.mss) >>> 0;
      put32(data, css + 4, (u32(data, css + 4) + sofar) >>> 0); // sequence number
      if (((p.paylen - sofar) >>> 0) > p.mss) data[css + 13] = data[css + 13]! & ~0x09; // PSH, FIN only on the last
      else if (frames > 0) d.incStat(R.TSCTC);
    } else {
      put16(data, css + 4, len); // UDP length
    }
    if ((tx.sumNeeded & TXD.POPTS_TXSM) !== 0) {
      // The driver's seed is the pseudo-header sum without the length: add this segment's.
      let ph = u16(data, p.tucso) + len;
      ph = (ph >>> 16) + (ph & 0xffff);
      put16(data, p.tucso, ph);
    }
    tx.tsoFrames++;
  }
  if ((tx.sumNeeded & TXD.POPTS_TXSM) !== 0) putChecksum(data, tx.size, p.tucso, p.tucss, p.tucse);
  if ((tx.sumNeeded & TXD.POPTS_IXSM) !== 0) putChecksum(data, tx.size, p.ipcso, p.ipcss, p.ipcse);
  let frame: Uint8Array;
  if (tx.vlanNeeded) {
    frame = new Uint8Array(tx.size + 4);
    frame.set(data.subarray(0, Math.min(12, tx.size)));
    put32(frame, 12, tx.vlanTag);
    if (tx.size > 12) frame.set(data.subarray(12, tx.size), 16);
  } else {
    frame = data.slice(0, tx.size);
  }
  d.sendFrame(frame, tx.size);
}
