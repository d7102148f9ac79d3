/**
 * `attachE1000` (src/v86) on a stand-in for v86's CPU: what the add-on does with v86's PCI
 * bus, port and memory dispatch, interrupt line and state files, driven by the Linux-like
 * driver of driver.ts. The stand-in keeps only what the add-on touches; its TSC does what
 * v86 0.5.462's does (measured: a new CPU's TSC reads microtick·10^6, i.e. offset 0, and
 * `set_tsc` takes the new offset from the TSC as read, so it is exact only while the offset
 * is 0), so the TSC fix is tested against the real mistake. The real v86 with a real guest
 * is e1000-v86.int.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { attachE1000, type AttachedE1000, type V86Cpu, type V86Emulator } from '../../src/v86/index.js';
import type { PortSink } from '../../src/network/network.js';
import { ManualClock } from '../../src/util/clock.js';
import { R } from '../../src/nic-e1000/regs.js';
import { LinuxLikeDriver } from './driver.js';
import { ethernet, GUEST_MAC, ip, ipv4, PEER_MAC, udp } from './frames.js';
import type { NicTarget } from './qtest-client.js';

const MEM = 4 << 20;
const BAR0 = 0xfeb80000;
const BAR1 = 0xc200;
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** The parts of v86's CPU the add-on uses, with v86's state and TSC arithmetic. */
class FakeCpu implements V86Cpu {
  readonly mem8 = new Uint8Array(MEM);
  readonly current_tsc = new Uint32Array(2);
  line = false;
  space: number[] = [];
  readonly ports = new Map<number, { r32?: () => number; w32?: (v: number) => void }>();
  mmio: { r32: (a: number) => number; w32: (a: number, v: number) => void } | undefined;
  /** v86's microtick (ms) and TSC offset; 10^6 TSC ticks per ms as in v86. */
  microMs: number;
  #tscOffset = 0n;
  readonly devices = {
    pci: {
      register_device: (d: { pci_space: number[] }): unknown => { this.space = d.pci_space; return undefined; },
      raise_irq: (): void => { this.line = true; },
      lower_irq: (): void => { this.line = false; },
    },
  };
  readonly io = {
    register_read: (port: number, _d: object, _r8: () => number, _r16: () => number, r32: () => number): void => {
      this.ports.set(port, { ...this.ports.get(port), r32 });
    },
    register_write: (port: number, _d: object, _w8: (v: number) => void, _w16: (v: number) => void, w32: (v: number) => void): void => {
      this.ports.set(port, { ...this.ports.get(port), w32 });
    },
    mmap_register: (_addr: number, _size: number, _r8: unknown, _w8: unknown, r32: (a: number) => number, w32: (a: number, v: number) => void): void => {
      this.mmio = { r32, w32 };
    },
  };

  constructor(microMs: number) {
    this.microMs = microMs;
  }

  write_blob(blob: Uint8Array, offset: number): void {
    this.mem8.set(blob, offset);
  }
  #readTsc(): bigint {
    return u64(BigInt(Math.round(this.microMs * 1e6)) - this.#tscOffset);
  }
  /** v86 0.5.462 (src/rust/cpu/cpu.rs): `tsc_offset = read_tsc() - new_value`. */
  set_tsc(low: number, high: number): void {
    this.#tscOffset = u64(this.#readTsc() - (BigInt(low) | (BigInt(high) << 32n)));
  }
  store_current_tsc(): void {
    const v = this.#readTsc();
    this.current_tsc[0] = Number(v & 0xffffffffn);
    this.current_tsc[1] = Number(v >> 32n);
  }
  get tsc(): bigint {
    this.store_current_tsc();
    return BigInt(this.current_tsc[0]!) | (BigInt(this.current_tsc[1]!) << 32n);
  }
  get_state(): unknown[] {
    this.store_current_tsc();
    const s: unknown[] = [];
    s[0] = this.mem8.slice();
    s[43] = this.current_tsc.slice();
    s[60] = this.line;
    return s;
  }
  set_state(s: unknown[]): void {
    this.mem8.set(s[0] as Uint8Array);
    const tsc = s[43] as Uint32Array;
    this.set_tsc(tsc[0]!, tsc[1]!);
    this.line = s[60] as boolean;
  }
}

/** Saved states by their (opaque) buffer, as v86's files would hold them. */
const files = new Map<ArrayBuffer, unknown[]>();

class FakeV86 implements V86Emulator {
  readonly v86: { cpu: FakeCpu };
  #ready: (() => void)[] = [];
  constructor(microMs: number) {
    this.v86 = { cpu: new FakeCpu(microMs) };
  }
  add_listener(_event: 'emulator-ready', listener: () => void): void {
    this.#ready.push(listener);
  }
  load(): void {
    for (const l of this.#ready) l();
  }
  save_state(): Promise<ArrayBuffer> {
    const state = structuredClone(this.v86.cpu.get_state());
    const file = new ArrayBuffer(8);
    files.set(file, state);
    return Promise.resolve(file);
  }
  restore_state(file: ArrayBuffer): Promise<void> {
    const state = files.get(file);
    if (state === undefined) return Promise.reject(new Error('not a state'));
    try {
      this.v86.cpu.set_state(structuredClone(state));
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

/** One emulator with the add-on on an in-process "network" that records and injects frames. */
function machine(microMs: number, clock: ManualClock): { em: FakeV86; nic: AttachedE1000; sent: Uint8Array[]; sink: () => PortSink } {
  const em = new FakeV86(microMs);
  const sent: Uint8Array[] = [];
  let sink: PortSink | undefined;
  const nic = attachE1000(em, {
    clock,
    network: { attach: (s) => { sink = s; return { id: 1, receive: (f) => { sent.push(f); }, detach: () => undefined, detached: false }; } },
  });
  em.load();
  return { em, nic, sent, sink: () => sink! };
}

/** driver.ts's target over whichever machine is current: MMIO and ports through what the add-on registered. */
function target(get: () => ReturnType<typeof machine>, clock: ManualClock): NicTarget {
  const cpu = (): FakeCpu => get().em.v86.cpu;
  const tick = (): void => { clock.advance(1); };
  const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
  return {
    name: 'v86-addon',
    cfgRead: (off, size) => Promise.resolve(size === 4 ? cpu().space.slice(off, off + 4).reduce((a, b, i) => a + b * 2 ** (8 * i), 0) : cpu().space[off]!),
    cfgWrite: () => Promise.resolve(), // v86 keeps config space; the add-on set COMMAND itself
    read: (off) => { tick(); return Promise.resolve(cpu().mmio!.r32(BAR0 + off) >>> 0); },
    write: (off, v) => { tick(); cpu().mmio!.w32(BAR0 + off, v); return Promise.resolve(); },
    ioRead: (off) => { tick(); return Promise.resolve(cpu().ports.get(BAR1 + off)!.r32!() >>> 0); },
    ioWrite: (off, v) => { tick(); cpu().ports.get(BAR1 + off)!.w32!(v); return Promise.resolve(); },
    memWrite: (addr, bytes) => { cpu().mem8.set(bytes, addr); return Promise.resolve(); },
    memRead: (addr, len) => Promise.resolve(cpu().mem8.slice(addr, addr + len)),
    inject: async (frame) => { get().sink().send(frame); await settle(); },
    takeFrames: () => Promise.resolve(get().sent.splice(0)),
    irq: () => Promise.resolve(cpu().line),
    setLink: (up) => { get().nic.setLinkUp(up); return Promise.resolve(); },
    wait: async (ms) => { clock.advance(ms); get().nic.device!.advance(); await settle(); },
    close: () => Promise.resolve(),
  };
}

const toGuest = (i: number): Uint8Array => ethernet(GUEST_MAC, PEER_MAC, 0x0800, ipv4(ip('10.0.2.2'), ip('10.0.2.15'), 17,
  udp(ip('10.0.2.2'), ip('10.0.2.15'), 53, 1000 + i, new Uint8Array(64 + i).fill(i))));

async function upDriver(): Promise<{ clock: ManualClock; cur: { m: ReturnType<typeof machine> }; drv: LinuxLikeDriver }> {
  const clock = new ManualClock(0);
  const cur = { m: machine(1000, clock) };
  const drv = new LinuxLikeDriver(target(() => cur.m, clock), 16, 16);
  expect(await drv.probe()).toBe(0xbaba);
  await drv.open();
  await drv.t.wait(600); // autonegotiation, LSC
  await drv.interrupt();
  return { clock, cur, drv };
}

describe('tslirp/v86 add-on on a stand-in for v86', () => {
  it('rides in v86\'s own state files: moved to a new emulator with frames pending, the driver goes on', async () => {
    const { clock, cur, drv } = await upDriver();
    const old = cur.m;
    // 20 frames for a 16-descriptor ring: 15 land, the rest wait in the add-on's queue.
    for (let i = 0; i < 20; i++) await drv.t.inject(toGuest(i));
    expect(await drv.t.irq()).toBe(true);
    const regsBefore = [R.RDH, R.RDT, R.TDH, R.TDT, R.ICR, R.IMS, R.RCTL, R.TCTL].map((r) => old.nic.device!.regs[r >>> 2]);
    old.em.v86.cpu.microMs += 5000;
    const tscSaved = old.em.v86.cpu.tsc;
    const file = await old.nic.save();
    expect(files.get(file)![160]).toEqual([['tslirp-e1000', 5 << 3, expect.any(String) as string]]);
    old.nic.close();
    clock.advance(2000); // the move takes a while; the model's timers resume where they were
    // A new emulator, built 60 s later in v86's clock.
    cur.m = machine(old.em.v86.cpu.microMs + 60_000, clock);
    await cur.m.nic.restore(file);
    expect([R.RDH, R.RDT, R.TDH, R.TDT, R.ICR, R.IMS, R.RCTL, R.TCTL].map((r) => cur.m.nic.device!.regs[r >>> 2])).toEqual(regsBefore);
    expect(cur.m.em.v86.cpu.line).toBe(true); // INTA# as saved
    expect(cur.m.em.v86.cpu.tsc).toBe(tscSaved);
    const got = (await drv.interrupt()).frames;
    expect(got.length).toBe(15);
    // The 5 that waited in the old add-on's queue were not saved (TCP resends); new ones land.
    for (let i = 20; i < 25; i++) await drv.t.inject(toGuest(i));
    await drv.t.wait(1);
    const more = (await drv.interrupt()).frames;
    expect(more.map((f) => f.bytes[14 + 20 + 3])).toEqual([20, 21, 22, 23, 24].map((i) => (1000 + i) & 0xff));
    const frame = ethernet(PEER_MAC, GUEST_MAC, 0x0800, ipv4(ip('10.0.2.15'), ip('10.0.2.2'), 17, udp(ip('10.0.2.15'), ip('10.0.2.2'), 1000, 2000, new Uint8Array(10))));
    await drv.transmit(frame);
    expect(await drv.t.takeFrames()).toEqual([frame]);
    // Restored again into the same emulator: v86's set_tsc alone would put the TSC 61 s off
    // (by the offset the first restore left); the add-on puts it where it was saved.
    const again = await cur.m.nic.save();
    const tscAgain = files.get(again)![43] as Uint32Array;
    cur.m.em.v86.cpu.microMs += 3000;
    await cur.m.nic.restore(again);
    expect(cur.m.em.v86.cpu.tsc).toBe(BigInt(tscAgain[0]!) | (BigInt(tscAgain[1]!) << 32n));
  });

  it('refuses a state without its NIC or with a malformed one before v86 changes anything', async () => {
    const { cur } = await upDriver();
    const { em, nic } = cur.m;
    const bare = new ArrayBuffer(8);
    files.set(bare, FakeCpu.prototype.get_state.call(em.v86.cpu)); // v86's state alone, without the add-on's entry
    em.v86.cpu.mem8[0x1234] = 0x55;
    await expect(nic.restore(bare)).rejects.toThrow(/no e1000 at PCI device 5/);
    const file = await nic.save();
    const state = files.get(file)!;
    (state[160] as [string, number, string][])[0]![2] = '{"version":1';
    await expect(nic.restore(file)).rejects.toThrow(/not JSON/);
    (state[160] as [string, number, string][])[0]![2] = '{"version":99}';
    await expect(nic.restore(file)).rejects.toThrow(/bad NIC state in the v86 state \(e1000\.snapshot-version\)/);
    expect(em.v86.cpu.mem8[0x1234]).toBe(0x55); // v86's part was not restored either
  });

  it('offers a waiting frame once even when rxReady comes from inside the receive that takes it', async () => {
    const clock = new ManualClock(0);
    const m = machine(0, clock);
    const drv = new LinuxLikeDriver(target(() => m, clock), 8, 8);
    await drv.probe();
    await drv.open();
    // Link comes up by the autonegotiation timer, which the next entry runs: a frame offered
    // then is taken, and the timer's rxReady fires inside that same receiveFrame.
    for (let i = 0; i < 3; i++) m.sink().send(toGuest(i));
    await new Promise((r) => setImmediate(r));
    clock.advance(600);
    m.sink().send(toGuest(3));
    await new Promise((r) => setImmediate(r));
    const got = (await drv.interrupt()).frames.map((f) => f.bytes[14 + 20 + 3]);
    expect(got).toEqual([0, 1, 2, 3].map((i) => (1000 + i) & 0xff));
  });
});
