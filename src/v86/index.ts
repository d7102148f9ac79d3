/**
 * `tslirp/v86`: an Intel e1000 for the v86 emulator. v86 has no e1000 of its own (ne2k and
 * virtio-net only); `attachE1000` plugs tslirp's 82540EM model (src/nic-e1000) into a v86
 * instance's PCI bus, so a guest's stock `e1000` driver runs unmodified, and connects its
 * frames either to an in-process network (`createNodeNetwork`, or any `attach(sink)`) or to a
 * tslirp daemon's WebSocket relay (`relay_url`, one Ethernet frame per binary message — the
 * protocol v86's own NICs speak).
 *
 * ## Theory of operation
 *
 * **Plugging in.** v86 exposes its PCI bus and port/memory dispatch on the CPU object
 * (`emulator.v86.cpu`: `devices.pci.register_device`, `io.register_read/write` for ports,
 * `io.mmap_register` for memory ranges, `devices.pci.raise_irq/lower_irq` for INTx;
 * shared/reference/v86.md §4.8). The add-on waits for `emulator-ready`, which v86 sends once
 * its CPU and devices exist and before it restores an `initial_state` or starts the CPU (so
 * before the BIOS enumerates the bus), and registers one function: config space from the model's own (`configRead`), BAR0 (128 KiB
 * MMIO) at a fixed 128 KiB-aligned address because v86 cannot move memory BARs, BAR1 (64
 * I/O ports: IOADDR/IODATA, through which Linux resets an 82540). v86 keeps config space
 * itself and does not forward config writes: the model's COMMAND is set once to memory + I/O
 * + bus master, so DMA works from the start.
 *
 * **DMA.** Guest memory is the CPU's `mem8`: reads are views of it, writes go through
 * `write_blob` so v86 invalidates JIT-compiled code on the written pages. Addresses outside
 * RAM read as zeros and drop writes (counted `v86.dma-outside-ram`), never throw.
 *
 * **Frames.** What the guest transmits goes to the network (`port.receive`) or the relay
 * socket. Frames for the guest wait in a bounded queue (256 frames, overflow counted
 * `v86.rx-queue-full`) while the model says 'busy' and are offered again from `rxReady`,
 * which the model calls at the end of the access that freed its ring — so a waiting frame
 * lands inside the guest's RDT write, as on QEMU. Frames arriving from the network are
 * offered from a microtask, outside whatever the CPU is doing. While the cable is out
 * (`setLinkUp(false)`) the model drops both ways; the add-on does not check the link.
 *
 * **Interrupts.** The model calls `setIrq` when INTA# changes level; the add-on passes that to
 * `raise_irq`/`lower_irq`. v86 0.5.462 loses PCI interrupts under load — its own ne2k too
 * (shared/reference/v86.md §4.7): a download here stalled for good with the model's line high,
 * ICR = 0x93 and the guest never entering its handler again, and asserting the line again
 * (raise, or lower + raise) did not bring it back. Booting the guest with `irqpoll` (Linux
 * then also polls the handlers of a stuck line from the timer interrupt) makes it run.
 *
 * **Time.** The model's timers (interrupt moderation windows, autonegotiation) run on one
 * `setTimeout`, re-armed only when `nextDeadline()` changes; every access also runs the
 * timers due, so a late timer never changes behaviour.
 *
 * **Relay.** The socket opens at once (v86 would open it at the first frame: opening early
 * means DHCP does not wait), frames sent before it is open wait (64 at most, then counted
 * `v86.relay-not-open`), and a closed socket is reopened after a second, as v86's own relay
 * does, until `close()`. In Node 20 pass `WebSocket` (e.g. the `ws` package's); browsers and
 * Node ≥ 22 have a global one.
 *
 * **Snapshots.** v86's state files are what its CPU's `get_state()` returns (a fixed list of
 * slots: registers, memory, v86's own devices), saved by `save_state()` and handed back to
 * `set_state()` by `restore_state()`; there is no list a device outside v86 can join. The
 * add-on wraps those two methods: `get_state` gains an entry (slot 160: [tag, pci_id, JSON of
 * `E1000.snapshot()`]), and `set_state` checks that entry before v86 changes anything (a state
 * without this NIC, or with a malformed one, makes `restore_state` reject), lets v86 restore
 * the CPU, memory, PCI config space and interrupt controllers, then restores the model (its
 * timers as time remaining, so the pause does not count), puts INTA# where the model says
 * and re-arms the timer. DMA needs nothing: it reads `cpu.mem8` at each access. Frames still
 * waiting in the add-on's queue are not saved (TCP resends them). v86 0.5.462 restores the
 * guest's TSC off by the CPU's previous TSC offset, which is 0 only until its first restore;
 * the add-on sets it again (`fixTsc`). The daemon-served device cannot be saved (its state
 * is in the daemon): `save_state()` throws.
 *
 * **Not here.** Config-space writes by the guest (INTx disable, BAR moves) are not seen by
 * the model.
 */
import { E1000, type E1000Options } from '../nic-e1000/device.js';
import { validateSnapshot as validateE1000Snapshot, type E1000Snapshot } from '../nic-e1000/snapshot.js';
import { RemoteE1000, type E1000Channel } from './remote.js';
import type { GuestMemory } from '../nic-e1000/memory.js';
import type { NetworkPort, PortSink } from '../network/network.js';
import { systemClock, type Clock } from '../util/clock.js';
import { Counters } from '../util/drops.js';

export { openE1000Bridge, RemoteE1000, type E1000Bridge, type E1000BridgeOptions, type E1000Channel, type RemoteE1000Stats } from './remote.js';

/** The parts of a v86 `V86` instance the add-on uses (v86 0.5.x; these names survive minification). */
export interface V86Emulator {
  add_listener(event: 'emulator-ready', listener: () => void): void;
  /** v86's state files (`save()`/`restore()` call these; the NIC's state rides inside). */
  save_state?(): Promise<ArrayBuffer>;
  restore_state?(state: ArrayBuffer): Promise<void>;
  readonly v86?: { readonly cpu: V86Cpu } | undefined;
}

/** v86's CPU object, as far as plugging in a PCI device and joining its state files need it. */
export interface V86Cpu {
  readonly mem8: Uint8Array;
  write_blob(blob: Uint8Array, offset: number): void;
  /**
   * v86's state: `save_state()` serialises what this returns, `restore_state()` hands the
   * parsed array to `set_state`. The add-on wraps both (see "Snapshots" above).
   */
  get_state: (this: V86Cpu) => unknown[];
  set_state: (this: V86Cpu, state: unknown[]) => void;
  /** The guest's TSC: `store_current_tsc()` writes it to `current_tsc` ([low, high]); `set_tsc(low, high)` sets it. */
  store_current_tsc?(): void;
  readonly current_tsc?: Uint32Array;
  set_tsc?(low: number, high: number): void;
  readonly devices: {
    readonly pci: {
      register_device(device: { pci_id: number; pci_space: number[]; pci_bars: ({ size: number } | undefined)[]; name: string }): unknown;
      raise_irq(pciId: number): void;
      lower_irq(pciId: number): void;
    };
  };
  readonly io: {
    register_read(port: number, device: object, r8: () => number, r16: () => number, r32: () => number): void;
    register_write(port: number, device: object, w8: (v: number) => void, w16: (v: number) => void, w32: (v: number) => void): void;
    mmap_register(addr: number, size: number, r8: (a: number) => number, w8: (a: number, v: number) => void, r32: (a: number) => number, w32: (a: number, v: number) => void): void;
  };
}

/** The access methods the add-on wires to v86 (the model's, or the daemon-served device's). */
interface Registers {
  configRead(offset: number, size: 1 | 2 | 4): number;
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void;
  mmioRead(offset: number, size: 1 | 2 | 4): number;
  mmioWrite(offset: number, size: 1 | 2 | 4, value: number): void;
  ioRead(offset: number, size: 1 | 2 | 4): number;
  ioWrite(offset: number, size: 1 | 2 | 4, value: number): void;
}

/** An in-process network: `createNodeNetwork(...)`'s result, a `Network`, or anything with the same `attach`. */
export interface AttachableNetwork {
  attach(sink: PortSink): NetworkPort;
}

/** The subset of the WebSocket API the relay uses (browsers, Node ≥ 22, the `ws` package). */
interface RelaySocket {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(): void;
}
type RelaySocketConstructor = new (url: string) => RelaySocket;
/**
 * A WebSocket class: the browser's (or Node ≥ 22's) global, or the `ws` package's. Typed
 * loosely because their event types differ; the relay uses only `binaryType`, `readyState`,
 * `send`, `close` and the `on…` handlers, which all of them have.
 */
export type WebSocketClass = abstract new (url: string, ...rest: never[]) => object;

export interface AttachE1000Options {
  /** Frames to and from an in-process network (exactly one of `network`, `relay_url` and `e1000_channel`). */
  readonly network?: AttachableNetwork;
  /** A tslirp daemon's WebSocket listener (`tslirp serve --ws`), e.g. `ws://127.0.0.1:8080/`. */
  readonly relay_url?: string;
  /**
   * The daemon-served device: the model runs in the daemon, reached through `/e1000`; this
   * thread must be a worker that may block (remote.ts). The channel comes from
   * `openE1000Bridge({ e1000_url })` on the thread that created the worker.
   */
  readonly e1000_channel?: E1000Channel;
  /** With `e1000_channel`: how long a register read waits for the daemon (default 30 s). */
  readonly readTimeoutMs?: number;
  /** The WebSocket class for `relay_url`; default `globalThis.WebSocket` (absent in Node 20: pass the `ws` package's). */
  readonly WebSocket?: WebSocketClass;
  /** Station address; default 52:54:00:12:34:56. */
  readonly mac?: Uint8Array;
  /** Passed to the model (E1000Options): interrupt moderation (default on), QEMU's quirks (default off). */
  readonly mitigation?: boolean;
  readonly qemuCompat?: boolean;
  /** PCI device number on bus 0 (default 5; v86 uses 0, 1, 4, 7, 8, 10 and up for its own devices). */
  readonly pciDevice?: number;
  /** BAR0 (128 KiB, 128 KiB-aligned) and BAR1 (64 I/O ports) addresses; defaults 0xFEB80000 and 0xC200. */
  readonly mmioBase?: number;
  readonly ioBase?: number;
  /** Default: the system's monotonic clock. */
  readonly clock?: Clock;
}

/** The attached NIC. */
export interface AttachedE1000 {
  /** The model (registers, `exits`, `drops`, `snapshot()`); undefined until v86 has loaded. */
  readonly device: E1000 | undefined;
  /** Resolves once the NIC is on v86's PCI bus (in process: never, with `e1000_channel`). */
  readonly ready: Promise<E1000>;
  /** With `e1000_channel`: the daemon-served device (its traps, round trips, drops); undefined until v86 has loaded. */
  readonly remote: RemoteE1000 | undefined;
  /** With `e1000_channel`: resolves once the NIC is on v86's PCI bus. */
  readonly remoteReady: Promise<RemoteE1000>;
  /** The add-on's own drops (queue overflow, DMA outside RAM, relay not open), by name. */
  readonly drops: Counters;
  /**
   * v86's `save_state()`, which holds this NIC's state (the add-on joins v86's state files;
   * calling `emulator.save_state()` directly is the same). For `restore()` into this emulator
   * or a new one with the add-on attached with the same `pciDevice` (in-process model only:
   * the daemon-served device rejects). Frames waiting for the guest are not saved: TCP
   * resends them.
   */
  save(): Promise<ArrayBuffer>;
  /**
   * v86's `restore_state()` (the same as calling it directly, or passing the state as
   * `initial_state` to a `new V86` the add-on is attached to): v86's CPU, memory and devices,
   * then the model's state and INTA# as saved. Call after `ready`. Rejects, leaving emulator
   * and NIC as they were, for a state without an e1000 at this PCI device or with a malformed
   * NIC part.
   */
  restore(state: ArrayBuffer): Promise<void>;
  /** Plugs the cable in or out (the guest sees link state change and LSC). */
  setLinkUp(up: boolean): void;
  /** Detaches from the network or closes the relay, and stops the timer. The guest's NIC stays, silent. */
  close(): void;
}

const MMIO_SIZE = 0x20000;
const IO_SIZE = 0x40;
const MAX_TO_GUEST = 256;
const MAX_UNSENT = 64;
const RELAY_RETRY_MS = 1000;
const WS_OPEN = 1;
/**
 * Where the NIC's state rides in v86's CPU state array: a list of [STATE_TAG, pci_id, JSON of
 * `E1000.snapshot()`], one per add-on. v86 0.5.462 uses indices up to 91 (src/cpu.js get_state).
 */
const STATE_SLOT = 160;
const STATE_TAG = 'tslirp-e1000';
/** v86's slot for the guest's TSC ([low, high] as a Uint32Array). */
const TSC_SLOT = 43;

/**
 * Puts the guest's TSC at `low`/`high` (the value v86 saved). v86 0.5.462's `set_tsc` takes
 * the new offset from the TSC as read, which already has the old offset subtracted, so the
 * result is off by the old offset. A new CPU's offset is 0, so the first restore into a new
 * emulator comes out right; the next one does not (measured in Node: set_tsc(5·10^9) read
 * 5.01·10^9, the same call again 3.79·10^9 — the guest's clock went back 1.2 s). `set_tsc`
 * of the TSC as read makes the offset 0 whatever it was, after which `set_tsc` is exact.
 */
function fixTsc(cpu: V86Cpu, low: number, high: number): void {
  const now = cpu.current_tsc;
  if (cpu.store_current_tsc === undefined || now === undefined || cpu.set_tsc === undefined) return;
  cpu.store_current_tsc();
  cpu.set_tsc(now[0]!, now[1]!);
  cpu.set_tsc(low, high);
}

/**
 * Plugs an e1000 into `emulator`'s PCI bus. Call it right after `new V86(...)`, before the
 * emulator has loaded (with `autostart` true or false). Throws for invalid options.
 */
export function attachE1000(emulator: V86Emulator, options: AttachE1000Options): AttachedE1000 {
  if ([options.network, options.relay_url, options.e1000_channel].filter((x) => x !== undefined).length !== 1) throw new TypeError('attachE1000: give exactly one of network, relay_url and e1000_channel');
  const Ws = (options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket) as RelaySocketConstructor | undefined;
  if (options.relay_url !== undefined && Ws === undefined) throw new TypeError('attachE1000: no WebSocket class: pass options.WebSocket (in Node 20, the ws package\'s)');
  const pciId = (options.pciDevice ?? 5) << 3;
  const bar0 = options.mmioBase ?? 0xfeb80000;
  const bar1 = options.ioBase ?? 0xc200;
  if (bar0 % MMIO_SIZE !== 0 || bar0 <= 0 || bar0 >= 2 ** 32) throw new RangeError('attachE1000: mmioBase must be a 128 KiB-aligned 32-bit address');
  if (bar1 % IO_SIZE !== 0 || bar1 < 0x1000 || bar1 > 0xffc0) throw new RangeError('attachE1000: ioBase must be a 64-byte-aligned port from 0x1000');
  if (pciId < 8 || pciId >= 256) throw new RangeError('attachE1000: pciDevice must be 1..31');
  const clock = options.clock ?? systemClock;
  const drops = new Counters();
  const toGuest: Uint8Array[] = [];
  let nic: E1000 | undefined;
  let closed = false;
  let resolveReady: (d: E1000) => void = () => undefined;
  const ready = new Promise<E1000>((r) => (resolveReady = r));
  let remote: RemoteE1000 | undefined;
  let resolveRemote: (d: RemoteE1000) => void = () => undefined;
  const remoteReady = new Promise<RemoteE1000>((r) => (resolveRemote = r));

  /**
   * Offers waiting frames until the ring says 'busy'. Not re-entered: the model calls rxReady
   * at the end of a receiveFrame that left room, and a nested loop would offer the frame the
   * outer one is offering again (then drop the next one).
   */
  let delivering = false;
  const deliver = (): void => {
    if (nic === undefined || delivering) return;
    delivering = true;
    try {
      while (toGuest.length > 0) {
        if (nic.receiveFrame(toGuest[0]!) === 'busy') return;
        toGuest.shift();
      }
    } finally {
      delivering = false;
    }
  };
  let deliverQueued = false;
  const fromNetwork = (frame: Uint8Array): void => {
    if (closed) return;
    if (toGuest.length >= MAX_TO_GUEST) {
      drops.count('v86.rx-queue-full');
      return;
    }
    toGuest.push(frame);
    if (deliverQueued) return;
    deliverQueued = true;
    queueMicrotask(() => {
      deliverQueued = false;
      deliver();
      rearm();
    });
  };

  // ---- the wire: a network port or the relay socket ----
  let toWire: (frame: Uint8Array) => void;
  let closeWire: () => void;
  if (options.e1000_channel !== undefined) {
    toWire = () => undefined; // the daemon's model transmits
    closeWire = () => { remote?.close(); };
  } else if (options.network !== undefined) {
    const port = options.network.attach({ send: fromNetwork });
    toWire = (f) => { port.receive(f); };
    closeWire = () => { port.detach(); };
  } else {
    const url = options.relay_url!;
    const unsent: Uint8Array[] = [];
    let ws: RelaySocket | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const open = (): void => {
      const s = new Ws!(url);
      ws = s;
      s.binaryType = 'arraybuffer';
      s.onopen = () => {
        for (const f of unsent.splice(0)) s.send(f);
      };
      s.onmessage = (ev) => {
        const d = ev.data;
        if (d instanceof ArrayBuffer) fromNetwork(new Uint8Array(d));
        else if (ArrayBuffer.isView(d)) fromNetwork(new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
        else drops.count('v86.relay-text-message');
      };
      s.onerror = () => undefined; // onclose follows
      s.onclose = () => {
        if (ws !== s || closed) return;
        ws = undefined;
        retry = setTimeout(open, RELAY_RETRY_MS);
      };
    };
    open();
    toWire = (f) => {
      if (ws?.readyState === WS_OPEN) ws.send(f);
      else if (unsent.length < MAX_UNSENT) unsent.push(f.slice());
      else drops.count('v86.relay-not-open');
    };
    closeWire = () => {
      clearTimeout(retry);
      const s = ws;
      ws = undefined;
      s?.close();
    };
  }

  // ---- the model's one timer ----
  let timer: ReturnType<typeof setTimeout> | undefined;
  let armedAt: number | undefined;
  const rearm = (): void => {
    if (nic === undefined || closed) return;
    const at = nic.nextDeadline();
    if (at === armedAt) return;
    clearTimeout(timer);
    armedAt = at;
    if (at === undefined) return;
    timer = setTimeout(() => {
      armedAt = undefined;
      nic?.runUntil(Math.max(at, clock.now()));
      rearm();
    }, Math.max(0, at - clock.now()));
  };

  emulator.add_listener('emulator-ready', () => {
    const cpu = emulator.v86?.cpu;
    if (cpu === undefined || closed) return;
    const ram = (): Uint8Array => cpu.mem8;
    const memory: GuestMemory = {
      read(addr, len) {
        const m = ram();
        if (addr >= 0 && addr + len <= m.length) return m.subarray(addr, addr + len);
        drops.count('v86.dma-outside-ram');
        return new Uint8Array(len);
      },
      write(addr, bytes) {
        if (addr >= 0 && addr + bytes.length <= ram().length) cpu.write_blob(bytes, addr);
        else drops.count('v86.dma-outside-ram');
      },
    };
    const pci = cpu.devices.pci;
    const setIrq = (level: boolean): void => { if (level) pci.raise_irq(pciId); else pci.lower_irq(pciId); };
    if (options.e1000_channel !== undefined) {
      const dev = new RemoteE1000(options.e1000_channel, { memory, setIrq }, {
        ...(options.mac !== undefined && { mac: options.mac }),
        ...(options.readTimeoutMs !== undefined && { readTimeoutMs: options.readTimeoutMs }),
      });
      remote = dev;
      plug(cpu, dev, () => undefined);
      refuseSave(cpu);
      resolveRemote(dev);
      return;
    }
    const model: E1000 = new E1000({
      memory,
      clock,
      setIrq,
      emit: (frame) => { if (!closed) toWire(frame); },
      rxReady: deliver,
    }, {
      ...(options.mac !== undefined && { mac: options.mac }),
      ...(options.mitigation !== undefined && { mitigation: options.mitigation }),
      ...(options.qemuCompat !== undefined && { qemuCompat: options.qemuCompat }),
    } satisfies E1000Options);
    nic = model;
    plug(cpu, model, rearm);
    joinState(cpu, model);
    resolveReady(model);
  });

  /**
   * The NIC joins v86's state files: `get_state` (what `save_state()` serialises) gains an
   * entry with the model's snapshot, and `set_state` (what `restore_state()` calls) checks
   * that entry before v86 changes anything, then restores the model after v86 has restored
   * the CPU, memory, PCI config space and interrupt controllers.
   */
  const joinState = (cpu: V86Cpu, model: E1000): void => {
    const getState = cpu.get_state;
    const setState = cpu.set_state;
    cpu.get_state = function (this: V86Cpu): unknown[] {
      // The model first: taking its snapshot runs its due timers, which may move INTA#, and
      // v86 must then save the interrupt controllers as they are after that.
      const nicJson = JSON.stringify(model.snapshot());
      const state = getState.call(this);
      let list = state[STATE_SLOT];
      if (!Array.isArray(list)) state[STATE_SLOT] = list = [];
      (list as unknown[]).push([STATE_TAG, pciId, nicJson]);
      return state;
    };
    cpu.set_state = function (this: V86Cpu, state: unknown[]): void {
      const snap = nicState(state);
      const tsc = state[TSC_SLOT];
      setState.call(this, state);
      model.restore(snap);
      // v86 restored the interrupt controllers' view of the line; put INTA# where the model says.
      if (model.irqLevel) cpu.devices.pci.raise_irq(pciId);
      else cpu.devices.pci.lower_irq(pciId);
      if (tsc instanceof Uint32Array && tsc.length >= 2) fixTsc(this, tsc[0]!, tsc[1]!);
      clearTimeout(timer);
      armedAt = undefined;
      rearm();
    };
  };

  /** The model's snapshot in a v86 state, parsed and checked; throws an Error naming what is wrong. */
  const nicState = (state: unknown[]): E1000Snapshot => {
    const list = state[STATE_SLOT];
    const entry = Array.isArray(list) ? list.find((e): e is [string, number, string] => Array.isArray(e) && e[0] === STATE_TAG && e[1] === pciId) : undefined;
    if (entry === undefined || typeof entry[2] !== 'string') throw new Error(`attachE1000: this v86 state has no e1000 at PCI device ${pciId >> 3} (saved without the add-on, or with another pciDevice)`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(entry[2]);
    } catch {
      throw new Error('attachE1000: the NIC part of the v86 state is not JSON');
    }
    const snap = validateE1000Snapshot(parsed);
    if (typeof snap === 'string') throw new Error(`attachE1000: bad NIC state in the v86 state (${snap})`);
    return snap;
  };

  /** The daemon-served device's state lives in the daemon: a v86 state without it would desynchronise guest and NIC. */
  const refuseSave = (cpu: V86Cpu): void => {
    cpu.get_state = function (): unknown[] {
      throw new Error('attachE1000: the daemon-served device (e1000_channel) cannot be saved: its state is in the daemon');
    };
  };

  /** Puts `dev` on v86's PCI bus: config space copied once, BAR1 ports, BAR0 memory. */
  const plug = (cpu: V86Cpu, dev: Registers, afterWrite: () => void): void => {
    dev.configWrite(0x10, 4, bar0);
    dev.configWrite(0x14, 4, bar1);
    dev.configWrite(0x04, 2, 0x0007); // memory, I/O, bus master (v86 does not forward config writes)
    const space: number[] = [];
    for (let i = 0; i < 64; i += 4) {
      const v = dev.configRead(i, 4);
      space.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
    }
    // The I/O BAR's ports are registered before register_device, which records them.
    const io = cpu.io;
    for (let p = 0; p < IO_SIZE; p++) {
      io.register_read(bar1 + p, dev, () => dev.ioRead(p, 1), () => dev.ioRead(p, 2), () => dev.ioRead(p, 4));
      io.register_write(bar1 + p, dev,
        (v) => { dev.ioWrite(p, 1, v); afterWrite(); },
        (v) => { dev.ioWrite(p, 2, v); afterWrite(); },
        (v) => { dev.ioWrite(p, 4, v); afterWrite(); });
    }
    cpu.devices.pci.register_device({ pci_id: pciId, pci_space: space, pci_bars: [{ size: MMIO_SIZE }, { size: IO_SIZE }], name: 'e1000 (tslirp)' });
    io.mmap_register(bar0, MMIO_SIZE,
      (a) => dev.mmioRead(a - bar0, 1),
      (a, v) => { dev.mmioWrite(a - bar0, 1, v); afterWrite(); },
      (a) => dev.mmioRead(a - bar0, 4),
      (a, v) => { dev.mmioWrite(a - bar0, 4, v); afterWrite(); });
  };

  return {
    get device() {
      return nic;
    },
    ready,
    get remote() {
      return remote;
    },
    remoteReady,
    drops,
    async save() {
      if (emulator.save_state === undefined || emulator.v86 === undefined) throw new Error('attachE1000: save() needs a loaded emulator with save_state');
      return emulator.save_state();
    },
    async restore(state) {
      if (emulator.restore_state === undefined || nic === undefined) throw new Error('attachE1000: restore() needs the in-process model on a loaded emulator with restore_state');
      await emulator.restore_state(state);
    },
    setLinkUp(up) {
      nic?.setLinkUp(up);
      rearm();
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      toGuest.length = 0;
      closeWire();
    },
  };
}
