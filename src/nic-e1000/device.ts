/**
 * The 82540EM device: PCI function, register file, EEPROM, PHY, interrupt logic with
 * QEMU-style mitigation, link state and timers. Rings and offloads live in tx.ts and
 * rx.ts; register behaviour is data in register-table.ts. See README.md (Theory of
 * Operation) for what is modelled and every deliberate difference from QEMU 7.2.
 *
 * Sans-IO: memory, the interrupt line, outgoing frames and time are injected. Every entry
 * point first runs the timers that are due by `clock.now()`, so behaviour does not depend
 * on how promptly the shell calls `advance()`.
 */
import type { Clock } from '../util/clock.js';
import { Counters } from '../util/drops.js';
import { buildEeprom, initialMicrowire, type MicrowireState } from './eeprom.js';
import { DMA_ADDRESS_LIMIT, type GuestMemory } from './memory.js';
import { COMMAND, PCI, PciConfig, QEMU_IDENTITY, type PciIdentity } from './pci-config.js';
import { ANLPAR_ACK, BMCR, BMSR, PHY, PHY_ADDRESS, phyReadable, phyResetValues, phyWritable } from './phy.js';
import { registerSpec } from './register-table.js';
import { CTRL, ICR, MDIC, R, RCTL, REG_COUNT, STATUS } from './regs.js';
import { hasRxBuffers, receive, type RxResult } from './rx.js';
import { initialTxState, startXmit, type TxState } from './tx.js';
import { loadE1000, saveE1000, validateSnapshot, type E1000Snapshot } from './snapshot.js';
import type { Drop } from '../util/drops.js';

/** What the device is plugged into. */
export interface E1000Deps {
  /** Guest memory for descriptor and buffer DMA. */
  readonly memory: GuestMemory;
  /** Monotonic milliseconds (timers: mitigation, autonegotiation). */
  readonly clock: Clock;
  /** The INTA# line; called only when the level changes. */
  setIrq(level: boolean): void;
  /** A transmitted frame (no FCS). The array is the caller's to keep. May re-enter the device. */
  emit(frame: Uint8Array): void;
  /**
   * The receiver can take frames again after a 'busy' (RDT moved, RCTL/link/bus master
   * changed, QEMU-compat receive blackout over). Called at the end of the access or call that
   * freed the receiver — never in the middle of a register update — and only while
   * `canReceive()` holds. The callback may offer frames at once with `receiveFrame` (they land
   * inside the guest's RDT write, as on QEMU), may touch any other method, or may defer.
   */
  rxReady?(): void;
}

export interface E1000Options {
  /** Station address, stored in the EEPROM and RAL0/RAH0. Default 52:54:00:12:34:56 (QEMU's). */
  readonly mac?: Uint8Array;
  /** PCI identity; default QEMU's 82540EM (8086:100E, subsystem 1AF4:1100). */
  readonly identity?: PciIdentity;
  /** Interrupt mitigation (ITR/RADV/TADV) as QEMU's `mitigation=on`; default true. */
  readonly mitigation?: boolean;
  /**
   * Reproduce QEMU 7.2's e1000 where it departs from the datasheet (README "Deviations"):
   * CTRL.RST only clears itself, the I/O BAR reads 0 and ignores writes, every RCTL write
   * blocks reception for 1 s, a TSO payload that is an exact multiple of the MSS gets an extra
   * header-only segment, and CTRL_EXT, TIPG, TIDV and RXCSUM read 0. For differential testing
   * against QEMU; default false (datasheet behaviour).
   */
  readonly qemuCompat?: boolean;
}

/** Accesses ("exits" in a hypervisor) and frames, for exits-per-frame measurements. */
export interface ExitCounters {
  mmio: number;
  io: number;
  config: number;
  txFrames: number;
  rxFrames: number;
  /** Interrupts: rising edges of INTA# (what the guest's handler runs for). */
  irqs: number;
}

/** Interrupt mitigation state (QEMU's `mit_*`). */
export interface MitigationState {
  /** When the mitigation window closes (integer nanoseconds of the clock), if open. */
  timerAtNs: number | undefined;
  /** The line level as computed (before PCI INTx disable). */
  irqLevel: boolean;
  /** A descriptor with IDE was processed since the last window opened. */
  ide: boolean;
}

/** Opaque state copy from `checkpoint()`. */
export interface E1000Checkpoint {
  readonly regs: Uint32Array;
  readonly phy: Uint16Array;
  readonly microwire: MicrowireState;
  readonly pci: Uint8Array;
  readonly tx: TxState;
  readonly mitigation: MitigationState;
  readonly autonegAtNs: number | undefined;
  readonly rctlBlockedUntilNs: number | undefined;
  readonly nowNs: number;
  readonly backendLinkUp: boolean;
  readonly ioAddr: number;
  readonly exits: ExitCounters;
  readonly irqOut: boolean;
}

const ix = (offset: number): number => offset >>> 2;
const DEFAULT_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const AUTONEG_NS = 500_000_000;
/** QEMU 7.2's receive blackout after every RCTL write (qemuCompat only). */
const RCTL_BLACKOUT_NS = 1_000_000_000;
/** Milliseconds of the injected clock as integer nanoseconds (exact for any uptime below ~104 days). */
const toNs = (ms: number): number => Math.round(ms * 1e6);
/** Timer passes (each fires one due timer) per entry: the timers cannot chain further (see #runTimersTo). */
const MAX_TIMER_PASSES = 16;
/** rxReady calls per outermost entry: a callback that keeps freeing buffers is served on its next entry. */
const MAX_RX_READY_CALLS = 8;

export class E1000 {
  /** The MAC register file, indexed by offset >>> 2. */
  readonly regs = new Uint32Array(REG_COUNT);
  phy: Uint16Array = phyResetValues();
  readonly eeprom: Uint16Array;
  microwire: MicrowireState = initialMicrowire();
  readonly pci: PciConfig;
  tx: TxState = initialTxState();
  mitigation: MitigationState = { timerAtNs: undefined, irqLevel: false, ide: false };
  /** When autonegotiation completes (ns), if running. */
  autonegAtNs: number | undefined;
  /** qemuCompat: the end of the receive blackout that follows an RCTL write (ns), if running. */
  rctlBlockedUntilNs: number | undefined;
  /**
   * The model's time in integer nanoseconds: the clock at the latest entry, or the deadline of
   * the timer being run. Deadlines are computed from it in integers, so a window of ITR × 256 ns
   * ends exactly where it should whatever the clock's float rounding.
   */
  nowNs = 0;
  /** The backend's link (cable); the guest sees it through STATUS.LU and BMSR. */
  backendLinkUp = true;
  /** IOADDR of the I/O BAR window (§13.2.1). */
  ioAddr = 0;
  /** Refused or odd guest actions, by reason. */
  readonly drops = new Counters();
  readonly exits: ExitCounters = { mmio: 0, io: 0, config: 0, txFrames: 0, rxFrames: 0, irqs: 0 };
  readonly mac: Uint8Array;
  /** QEMU 7.2's quirks instead of the datasheet (E1000Options.qemuCompat). */
  readonly qemuCompat: boolean;
  readonly #deps: E1000Deps;
  readonly #mitigationOn: boolean;
  #irqOut = false;
  /** Nesting of entry points (callbacks may re-enter); rxReady waits for the outermost to end. */
  #depth = 0;
  #rxReadyPending = false;

  constructor(deps: E1000Deps, options: E1000Options = {}) {
    this.#deps = deps;
    this.mac = Uint8Array.from((options.mac ?? DEFAULT_MAC).subarray(0, 6));
    this.#mitigationOn = options.mitigation ?? true;
    this.qemuCompat = options.qemuCompat ?? false;
    this.nowNs = toNs(deps.clock.now());
    this.pci = new PciConfig(options.identity ?? QEMU_IDENTITY);
    this.eeprom = buildEeprom(this.mac, (options.identity ?? QEMU_IDENTITY).deviceId);
    this.#powerOnRegisters();
  }

  // ---- PCI -------------------------------------------------------------------------------

  get busMaster(): boolean {
    return (this.pci.command & COMMAND.BUS_MASTER) !== 0;
  }

  // Every access method takes (offset, size[, value]) in that order, as a PCI bus forwards it.

  /** Config space read of 1, 2 or 4 bytes at `offset`. */
  configRead(offset: number, size: 1 | 2 | 4): number {
    this.exits.config++;
    return this.pci.read(offset, size);
  }

  /** Config space write. Setting bus master lets queued frames in (as QEMU). */
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.exits.config++;
    this.#enter();
    try {
      const before = this.pci.write(offset, size, value);
      const after = this.pci.command;
      if (((before ^ after) & COMMAND.INTX_DISABLE) !== 0) this.#updatePin();
      if (offset <= PCI.COMMAND + 1 && offset + size > PCI.COMMAND && this.busMaster) this.#rxMayBeReady();
    } finally {
      this.#leave();
    }
  }

  // ---- BAR0 (MMIO) and BAR1 (I/O) --------------------------------------------------------

  /**
   * BAR0 read of `size` bytes at byte `offset` (0..0x1FFFF). Registers are 32-bit; a narrower
   * read returns its byte lanes of the 32-bit read (with the register's read side effects).
   */
  mmioRead(offset: number, size: 1 | 2 | 4): number {
    this.exits.mmio++;
    this.#enter();
    try {
      const v = this.readRegister(offset & 0x1fffc);
      if (size === 4) return v;
      return (v >>> (8 * (offset & 3))) & (size === 1 ? 0xff : 0xffff);
    } finally {
      this.#leave();
    }
  }

  /** BAR0 write. A narrower write is widened with zeros in the other byte lanes (as QEMU). */
  mmioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.exits.mmio++;
    this.#enter();
    try {
      const v = size === 4 ? value >>> 0 : ((value & (size === 1 ? 0xff : 0xffff)) << (8 * (offset & 3))) >>> 0;
      this.writeRegister(offset & 0x1fffc, v);
    } finally {
      this.#leave();
    }
  }

  /**
   * BAR1 read (§13.2.1 "IOADDR/IODATA"): offset 0 is IOADDR, offset 4 IODATA, which reads
   * the register IOADDR names. QEMU 7.2 implements no I/O BAR (reads 0, `qemuCompat`); the
   * datasheet's indirection is modelled because Linux resets 82540s through it.
   */
  ioRead(offset: number, size: 1 | 2 | 4): number {
    this.exits.io++;
    if (this.qemuCompat) return 0;
    this.#enter();
    try {
      const base = offset & ~3;
      let v = 0;
      if (base === 0) v = this.ioAddr;
      else if (base === 4) v = this.readRegister(this.ioAddr & 0x1fffc);
      else this.drops.count('e1000.io-reserved');
      if (size === 4) return v >>> 0;
      return (v >>> (8 * (offset & 3))) & (size === 1 ? 0xff : 0xffff);
    } finally {
      this.#leave();
    }
  }

  /** BAR1 write: IOADDR at 0, IODATA at 4 (ignored with `qemuCompat`, as QEMU 7.2). */
  ioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.exits.io++;
    if (this.qemuCompat) return;
    this.#enter();
    try {
      const base = offset & ~3;
      const v = size === 4 ? value >>> 0 : ((value & (size === 1 ? 0xff : 0xffff)) << (8 * (offset & 3))) >>> 0;
      if (base === 0) this.ioAddr = v;
      else if (base === 4) this.writeRegister(this.ioAddr & 0x1fffc, v);
      else this.drops.count('e1000.io-reserved');
    } finally {
      this.#leave();
    }
  }

  /**
   * Every entry point (an access, a frame, a link change, a timer run) starts here: the model's
   * time moves to the clock and the timers due by then run. Callbacks may re-enter.
   */
  #enter(): void {
    this.#depth++;
    this.#runTimersTo(this.#deps.clock.now());
  }

  /** The outermost entry ending tells a waiting frame source that the receiver has room. */
  #leave(): void {
    if (this.#depth > 1 || !this.#rxReadyPending) {
      this.#depth--;
      return;
    }
    try {
      for (let k = 0; k < MAX_RX_READY_CALLS && this.#rxReadyPending; k++) {
        this.#rxReadyPending = false;
        if (this.canReceive()) this.#deps.rxReady?.();
      }
    } finally {
      this.#depth--;
    }
  }

  /** Register read by byte offset, without counting an exit (used by the I/O window). */
  readRegister(offset: number): number {
    const i = offset >>> 2;
    const spec = registerSpec(i);
    if (spec?.read === undefined) {
      this.drops.count('e1000.read-unhandled-reg');
      return 0;
    }
    return spec.read(this, i) >>> 0;
  }

  writeRegister(offset: number, value: number): void {
    const i = offset >>> 2;
    const spec = registerSpec(i);
    if (spec?.write === undefined) {
      this.drops.count(spec?.read === undefined ? 'e1000.write-unhandled-reg' : 'e1000.write-read-only-reg');
      return;
    }
    spec.write(this, i, value >>> 0);
  }

  // ---- register side effects (called from register-table.ts) ----------------------------

  /** CTRL write. RST (§13.4.1) resets the MAC; QEMU 7.2 only clears the bit (see README). */
  writeCtrl(v: number): void {
    if ((v & CTRL.RST) !== 0 && !this.qemuCompat) {
      this.#softwareReset();
      return;
    }
    this.regs[ix(R.CTRL)] = v & ~CTRL.RST;
  }

  /** MDIC write (§13.4.7): the PHY access completes at once with READY. */
  writeMdic(val: number): void {
    let v = val >>> 0;
    const data = v & MDIC.DATA_MASK;
    const reg = (v & MDIC.REG_MASK) >>> MDIC.REG_SHIFT;
    if ((v & MDIC.PHY_MASK) >>> MDIC.PHY_SHIFT !== PHY_ADDRESS) {
      v = this.regs[ix(R.MDIC)]! | MDIC.ERROR;
    } else if ((v & MDIC.OP_READ) !== 0) {
      if (!phyReadable(reg)) v |= MDIC.ERROR;
      else v = ((v ^ data) | this.phy[reg]!) >>> 0;
    } else if ((v & MDIC.OP_WRITE) !== 0) {
      if (!phyWritable(reg)) v |= MDIC.ERROR;
      else if (reg === PHY.BMCR) this.#writeBmcr(data);
      else this.phy[reg] = data;
    }
    this.regs[ix(R.MDIC)] = (v | MDIC.READY) >>> 0;
    if ((v & MDIC.INT_EN) !== 0) this.setCause(this.regs[ix(R.ICR)]! | ICR.MDAC);
  }

  #writeBmcr(v: number): void {
    // RESET and ANRESTART self-clear; bits 0..5 are reserved.
    this.phy[PHY.BMCR] = v & ~(0x3f | BMCR.RESET | BMCR.ANRESTART);
    if ((this.phy[PHY.BMCR]! & BMCR.AUTOEN) !== 0 && (v & BMCR.ANRESTART) !== 0) this.#restartAutoneg();
  }

  /**
   * RCTL write. QEMU 7.2 additionally blocks reception for 1 s after every RCTL write (its
   * flush timer); the datasheet has no such window and a driver would only see late frames,
   * so reception resumes at once here unless `qemuCompat`.
   */
  writeRctl(v: number): void {
    this.regs[ix(R.RCTL)] = v;
    if (this.qemuCompat) this.rctlBlockedUntilNs = this.nowNs + RCTL_BLACKOUT_NS;
    this.#rxMayBeReady();
  }

  /** RDT write: new buffers; a waiting frame source may deliver now. */
  writeRdt(v: number): void {
    this.regs[ix(R.RDT)] = v & 0xffff;
    this.#rxMayBeReady();
  }

  /** TDT or TCTL write: run the transmitter. */
  kickTx(): void {
    startXmit(this);
  }

  /** ICR read: returns and clears every cause, deasserting the line (§13.4.17). */
  readIcr(): number {
    const v = this.regs[ix(R.ICR)]!;
    this.setCause(0);
    return v;
  }

  /**
   * Sets ICR (and its ICS mirror) and recomputes the line: IMS & ICR. A rising edge inside
   * an open mitigation window is deferred until the window closes; lowering is immediate.
   */
  setCause(value: number): void {
    const v = value >>> 0;
    this.regs[ix(R.ICR)] = v;
    this.regs[ix(R.ICS)] = v;
    const pending = (this.regs[ix(R.IMS)]! & v) >>> 0;
    const m = this.mitigation;
    if (!m.irqLevel && pending !== 0) {
      if (m.timerAtNs !== undefined) return;
      if (this.#mitigationOn) {
        // Window length in 256 ns units: min over ITR, RADV·4 (RDTR ≠ 0, RXT0), TADV·4 (IDE,
        // TX causes); at least 500 (the datasheet's 7813 interrupts/s ceiling).
        let delay = 0;
        const consider = (x: number): void => {
          if (x !== 0 && (delay === 0 || x < delay)) delay = x;
        };
        if (m.ide && (pending & (ICR.TXQE | ICR.TXDW)) !== 0) consider(this.regs[ix(R.TADV)]! * 4);
        if (this.regs[ix(R.RDTR)] !== 0 && (pending & ICR.RXT0) !== 0) consider(this.regs[ix(R.RADV)]! * 4);
        consider(this.regs[ix(R.ITR)]!);
        if (delay < 500) delay = 500;
        m.timerAtNs = this.nowNs + delay * 256;
        m.ide = false;
      }
    }
    m.irqLevel = pending !== 0;
    this.#updatePin();
  }

  #updatePin(): void {
    this.pci.setInterruptStatus(this.mitigation.irqLevel);
    const level = this.mitigation.irqLevel && (this.pci.command & COMMAND.INTX_DISABLE) === 0;
    if (level === this.#irqOut) return;
    this.#irqOut = level;
    if (level) this.exits.irqs++;
    this.#deps.setIrq(level);
  }

  /**
   * MMIO and I/O accesses per frame moved in either direction; 0 before the first frame (a
   * NaN there turned every sum or average a caller built from it into NaN, and JSON.stringify
   * wrote it as null).
   */
  get exitsPerFrame(): number {
    const frames = this.exits.txFrames + this.exits.rxFrames;
    return frames === 0 ? 0 : (this.exits.mmio + this.exits.io) / frames;
  }

  /** The INTA# level last signalled. */
  get irqLevel(): boolean {
    return this.#irqOut;
  }

  // ---- statistics -----------------------------------------------------------------------

  /** +1, saturating at 2^32 − 1 (§13.7). */
  incStat(offset: number): void {
    const i = ix(offset);
    if (this.regs[i] !== 0xffffffff) this.regs[i] = this.regs[i]! + 1;
  }

  /** 64-bit counter at (lo, lo+4) += n, saturating. */
  #grow64(loOffset: number, n: number): void {
    const i = ix(loOffset);
    const lo = this.regs[i]! + n;
    let hi = this.regs[i + 1]! + Math.floor(lo / 2 ** 32);
    if (hi > 0xffffffff) {
      this.regs[i] = 0xffffffff;
      hi = 0xffffffff;
    } else {
      this.regs[i] = lo % 2 ** 32;
    }
    this.regs[i + 1] = hi;
  }

  #sizeBucket(first: number, size: number): void {
    const k = size > 1023 ? 5 : size > 511 ? 4 : size > 255 ? 3 : size > 127 ? 2 : size > 64 ? 1 : size === 64 ? 0 : -1;
    if (k >= 0) this.incStat(first + 4 * k);
  }

  /** Statistics for one accepted frame: `size` bytes in memory, `total` with FCS. */
  rxStats(size: number, total: number): void {
    this.#sizeBucket(R.PRC64, total);
    this.incStat(R.TPR);
    this.incStat(R.GPRC);
    this.#grow64(R.TORL, size + 4);
    this.#grow64(R.GORCL, size + 4);
    this.exits.rxFrames++;
  }

  /** Receiver overrun (§13.4.17 RXO): RNBC, MPC and ICR.RXO. */
  receiverOverrun(): void {
    this.incStat(R.RNBC);
    this.incStat(R.MPC);
    this.drops.count('e1000.rx-overrun');
    this.setCause(this.regs[ix(R.ICR)]! | ICR.RXO);
  }

  /** Sends one assembled frame: statistics, then the wire (or PHY loopback). */
  sendFrame(frame: Uint8Array, assembledSize: number): void {
    this.exits.txFrames++;
    this.incStat(R.TPT);
    this.incStat(R.GPTC);
    this.#grow64(R.TOTL, assembledSize + 4);
    this.#grow64(R.GOTCL, assembledSize + 4);
    this.#sizeBucket(R.PTC64, frame.length + 4);
    if (frame.length >= 6) {
      if (frame[0] === 0xff && frame[1] === 0xff && frame[2] === 0xff && frame[3] === 0xff && frame[4] === 0xff && frame[5] === 0xff) this.incStat(R.BPTC);
      else if ((frame[0]! & 1) !== 0) this.incStat(R.MPTC);
    }
    if ((this.phy[PHY.BMCR]! & BMCR.LOOPBACK) !== 0) {
      if (this.canReceive()) receive(this, frame);
      else this.drops.count('e1000.loopback-busy');
      return;
    }
    if (this.#cableDown('tx')) return;
    if (frame.length === 0 && !this.qemuCompat) return this.drops.count('e1000.tx-empty');
    this.#deps.emit(frame);
  }

  // ---- DMA ------------------------------------------------------------------------------

  dmaRead(addr: number, len: number): Uint8Array {
    if (!(addr >= 0 && addr + len <= DMA_ADDRESS_LIMIT)) {
      this.drops.count('e1000.dma-address-too-high');
      return new Uint8Array(len);
    }
    return this.#deps.memory.read(addr, len);
  }

  dmaWrite(addr: number, bytes: Uint8Array): void {
    if (!(addr >= 0 && addr + bytes.length <= DMA_ADDRESS_LIMIT)) {
      this.drops.count('e1000.dma-address-too-high');
      return;
    }
    this.#deps.memory.write(addr, bytes);
  }

  // ---- receive --------------------------------------------------------------------------

  /**
   * The NIC can take a frame now: link up, RCTL.EN, bus master, RDH ≠ RDT (and, with
   * `qemuCompat`, no receive blackout after an RCTL write).
   */
  canReceive(): boolean {
    return (
      (this.regs[ix(R.STATUS)]! & STATUS.LU) !== 0 &&
      (this.regs[ix(R.RCTL)]! & RCTL.EN) !== 0 &&
      this.busMaster &&
      this.rctlBlockedUntilNs === undefined &&
      hasRxBuffers(this.regs, 1)
    );
  }

  /**
   * Offers a frame (without FCS) from the network. 'busy' means the device did not take
   * it: keep it and offer it again after `rxReady` (back-pressure, as QEMU's can_receive).
   * 'link-down' means the cable is unplugged (`setLinkUp(false)`): the frame is gone.
   */
  receiveFrame(frame: Uint8Array): RxResult {
    this.#enter();
    try {
      if (this.#cableDown('rx')) return 'link-down';
      if (!this.canReceive()) return 'busy';
      return receive(this, frame);
    } finally {
      this.#leave();
    }
  }

  /** Asks for an rxReady call when the outermost entry ends, if the receiver can take a frame then. */
  #rxMayBeReady(): void {
    this.#rxReadyPending = true;
  }

  // ---- link and PHY ---------------------------------------------------------------------

  /**
   * The one place frames die for an unplugged cable, both ways and counted. Dropping them is
   * the model's job, not the backend's: the backend only reports the cable (`setLinkUp`) and
   * may keep sending and receiving regardless; like QEMU's net layer with `set_link off`,
   * nothing is queued for later. (While the cable is in but autonegotiation runs, STATUS.LU is
   * clear and received frames are 'busy' — kept by the source — as on QEMU.)
   */
  #cableDown(direction: 'rx' | 'tx'): boolean {
    if (this.backendLinkUp) return false;
    this.drops.count(direction === 'rx' ? 'e1000.rx-link-down' : 'e1000.tx-link-down');
    return true;
  }

  #linkDownRegs(): void {
    this.regs[ix(R.STATUS)] = this.regs[ix(R.STATUS)]! & ~STATUS.LU;
    this.phy[PHY.BMSR] = this.phy[PHY.BMSR]! & ~(BMSR.LINK | BMSR.AN_COMPLETE);
    this.phy[PHY.ANLPAR] = this.phy[PHY.ANLPAR]! & ~ANLPAR_ACK;
  }

  #linkUpRegs(): void {
    this.regs[ix(R.STATUS)] = this.regs[ix(R.STATUS)]! | STATUS.LU;
    this.phy[PHY.BMSR] = this.phy[PHY.BMSR]! | BMSR.LINK;
  }

  #restartAutoneg(): void {
    this.#linkDownRegs();
    this.autonegAtNs = this.nowNs + AUTONEG_NS;
  }

  /**
   * The cable, as the backend sees it: down clears STATUS.LU and BMSR link and from then on
   * drops frames both ways (counted); up completes or restarts autonegotiation. LSC either way.
   */
  setLinkUp(up: boolean): void {
    this.#enter();
    try {
      this.backendLinkUp = up;
      const before = this.regs[ix(R.STATUS)];
      if (!up) {
        this.#linkDownRegs();
      } else if ((this.phy[PHY.BMCR]! & BMCR.AUTOEN) !== 0 && (this.phy[PHY.BMSR]! & BMSR.AN_COMPLETE) === 0) {
        this.#restartAutoneg();
      } else {
        this.#linkUpRegs();
      }
      if (this.regs[ix(R.STATUS)] !== before) this.setCause(this.regs[ix(R.ICR)]! | ICR.LSC);
      this.#rxMayBeReady();
    } finally {
      this.#leave();
    }
  }

  // ---- time -----------------------------------------------------------------------------

  /**
   * The earliest pending timer in the clock's milliseconds, or undefined when idle. Passing
   * this value to `runUntil` (or calling `advance()` once the clock has reached it) always runs
   * that timer: due-ness is decided on the same number.
   */
  nextDeadline(): number | undefined {
    const ns = this.#nextDeadlineNs();
    return ns === undefined ? undefined : ns / 1e6;
  }

  #nextDeadlineNs(): number | undefined {
    let at: number | undefined;
    for (const t of [this.mitigation.timerAtNs, this.autonegAtNs, this.rctlBlockedUntilNs]) if (t !== undefined && (at === undefined || t < at)) at = t;
    return at;
  }

  /** Runs the timers due by `clock.now()`. */
  advance(): void {
    this.runUntil(this.#deps.clock.now());
  }

  /**
   * Runs every timer due by `timeMs` (the clock's milliseconds), each at its own deadline and
   * in deadline order, then leaves the model's time at `timeMs` (it never goes back). For
   * emulators with a virtual clock: call it with the guest's time before each access, or at
   * `nextDeadline()`.
   */
  runUntil(timeMs: number): void {
    this.#depth++;
    this.#runTimersTo(timeMs);
    this.#leave();
  }

  /**
   * Fires the due timers in deadline order with the model's time set to each deadline, so a
   * window opened by a timer is measured from that deadline. Bounded: autonegotiation and the
   * RCTL blackout fire once; the mitigation timer re-arms only on a new rising edge, which
   * needs an ICR read in between.
   */
  #runTimersTo(timeMs: number): void {
    const due = (at: number | undefined): boolean => at !== undefined && (at / 1e6 <= timeMs || at <= toNs(timeMs));
    for (let pass = 0; pass < MAX_TIMER_PASSES; pass++) {
      const at = this.#nextDeadlineNs();
      if (at === undefined || !due(at)) break;
      if (at > this.nowNs) this.nowNs = at;
      if (this.autonegAtNs === at) {
        this.autonegAtNs = undefined;
        if (this.backendLinkUp) {
          this.#linkUpRegs();
          this.phy[PHY.ANLPAR] = this.phy[PHY.ANLPAR]! | ANLPAR_ACK;
          this.phy[PHY.BMSR] = this.phy[PHY.BMSR]! | BMSR.AN_COMPLETE;
          this.setCause(this.regs[ix(R.ICR)]! | ICR.LSC);
          this.#rxMayBeReady();
        }
      } else if (this.rctlBlockedUntilNs === at) {
        this.rctlBlockedUntilNs = undefined;
        this.#rxMayBeReady();
      } else {
        this.mitigation.timerAtNs = undefined;
        this.setCause(this.regs[ix(R.ICR)]!);
      }
    }
    const t = toNs(timeMs);
    if (t > this.nowNs) this.nowNs = t;
  }

  // ---- state ----------------------------------------------------------------------------

  /** The whole device state as plain JSON-able data (timers as time remaining). */
  snapshot(): E1000Snapshot {
    this.advance();
    return saveE1000(this, this.nowNs);
  }

  /**
   * Replaces the state with a snapshot (e.g. `JSON.parse` of a saved one). A malformed or
   * unknown-version snapshot leaves the device untouched and returns the reason.
   */
  restore(snapshot: unknown): Drop | undefined {
    const s = validateSnapshot(snapshot);
    if (typeof s === 'string') {
      this.drops.count(s);
      return s;
    }
    this.advance();
    loadE1000(this, s, this.nowNs);
    this.#updatePin();
    this.#rxMayBeReady();
    this.advance();
    return undefined;
  }

  /**
   * A cheap copy of every mutable field (typed-array copies), for callers that must undo an
   * operation: the WebSocket session re-runs an operation whose DMA reads missed its cache.
   */
  checkpoint(): E1000Checkpoint {
    const tx = this.tx;
    return {
      regs: this.regs.slice(),
      phy: this.phy.slice(),
      microwire: { ...this.microwire },
      pci: this.pci.bytes.slice(),
      tx: { ...tx, data: tx.data.slice(0, tx.size), header: tx.header.slice(), props: { ...tx.props }, tsoProps: { ...tx.tsoProps } },
      mitigation: { ...this.mitigation },
      autonegAtNs: this.autonegAtNs,
      rctlBlockedUntilNs: this.rctlBlockedUntilNs,
      nowNs: this.nowNs,
      backendLinkUp: this.backendLinkUp,
      ioAddr: this.ioAddr,
      exits: { ...this.exits },
      irqOut: this.#irqOut,
    };
  }

  /** Returns to a checkpoint taken on this device (the interrupt callback is not called). */
  rollback(cp: E1000Checkpoint): void {
    this.regs.set(cp.regs);
    this.phy = cp.phy.slice();
    this.microwire = { ...cp.microwire };
    this.pci.bytes.set(cp.pci);
    const tx = initialTxState();
    tx.data.set(cp.tx.data);
    Object.assign(tx, { ...cp.tx, data: tx.data, header: cp.tx.header.slice(), props: { ...cp.tx.props }, tsoProps: { ...cp.tx.tsoProps } });
    this.tx = tx;
    this.mitigation = { ...cp.mitigation };
    this.autonegAtNs = cp.autonegAtNs;
    this.rctlBlockedUntilNs = cp.rctlBlockedUntilNs;
    this.nowNs = cp.nowNs;
    this.backendLinkUp = cp.backendLinkUp;
    this.ioAddr = cp.ioAddr;
    Object.assign(this.exits, cp.exits);
    this.#irqOut = cp.irqOut;
  }

  // ---- reset ----------------------------------------------------------------------------

  #powerOnRegisters(): void {
    const r = this.regs;
    r.fill(0);
    r[ix(R.PBA)] = 0x00100030;
    r[ix(R.LEDCTL)] = 0x602;
    r[ix(R.CTRL)] = CTRL.SWDPIN2 | CTRL.SWDPIN0 | CTRL.SPD_1000 | CTRL.SLU;
    r[ix(R.STATUS)] = (0x80000000 | STATUS.GIO_MASTER_EN | STATUS.ASDV | STATUS.MTXCKOK | STATUS.SPEED_1000 | STATUS.FD | STATUS.LU) >>> 0;
    r[ix(R.MANC)] = 0x00222300;
    r[ix(R.VET)] = 0x8100;
    const m = this.mac;
    r[ix(R.RAL0)] = (m[0]! | (m[1]! << 8) | (m[2]! << 16) | (m[3]! << 24)) >>> 0;
    r[ix(R.RAH0)] = (m[4]! | (m[5]! << 8) | 0x80000000) >>> 0;
  }

  #clearInternalState(): void {
    this.tx = initialTxState();
    this.microwire = initialMicrowire();
    this.mitigation = { timerAtNs: undefined, irqLevel: this.mitigation.irqLevel, ide: false };
    this.rctlBlockedUntilNs = undefined;
  }

  /**
   * CTRL.RST (§13.4.1): MAC registers return to power-on values, the transmit state and
   * mitigation are cleared; PCI config, EEPROM, PHY and the link stay. QEMU 7.2 ignores
   * RST; Linux resets 82540s this way (through the I/O BAR) and expects clean registers.
   */
  #softwareReset(): void {
    this.drops.count('e1000.ctrl-rst');
    this.#powerOnRegisters();
    this.#clearInternalState();
    if (!this.backendLinkUp || (this.phy[PHY.BMSR]! & BMSR.LINK) === 0) this.regs[ix(R.STATUS)] = this.regs[ix(R.STATUS)]! & ~STATUS.LU;
    this.setCause(0);
  }

  /** Power-on / PCI reset: everything but the EEPROM and the backend link. */
  reset(): void {
    this.#powerOnRegisters();
    this.#clearInternalState();
    this.phy = phyResetValues();
    this.autonegAtNs = undefined;
    this.ioAddr = 0;
    if (!this.backendLinkUp) this.#linkDownRegs();
    this.mitigation.irqLevel = false;
    this.setCause(0);
  }
}
