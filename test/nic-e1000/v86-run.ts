/**
 * Boots the i386 guest of scripts/e1000-v86-guest.sh in v86 with *our* e1000 model plugged
 * into v86's PCI bus (shared/reference/v86.md §4.8) and the tslirp stack behind it, in one
 * process: the unmodified Linux e1000 driver probes the model, gets a DHCP lease and pings.
 * Echoes the guest's serial console; exits 0 on TSLIRP-DONE, 2 on timeout.
 *
 * Usage: node --import tsx test/nic-e1000/v86-run.ts [--guest DIR] [--timeout S]
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { E1000 } from '../../src/nic-e1000/device.js';
import { R } from '../../src/nic-e1000/regs.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { systemClock, systemRandom } from '../../src/util/clock.js';

const { values } = parseArgs({
  options: {
    guest: { type: 'string', default: '.cache/e1000-v86-guest' },
    bios: { type: 'string', default: '/usr/share/seabios/bios.bin' },
    vgabios: { type: 'string', default: '/usr/share/seabios/vgabios-stdvga.bin' },
    timeout: { type: 'string', default: '150' },
  },
});

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access */
const { V86 } = (await import('v86')) as any;
const require = createRequire(import.meta.url);
const wasmPath = join(dirname(require.resolve('v86')), 'v86.wasm');
const file = (p: string): { buffer: ArrayBuffer } => {
  const b = readFileSync(p);
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
};

/** Slot 5 on bus 0; BAR0 at a 128 KiB-aligned address v86 keeps (it cannot move memory BARs). */
const PCI_ID = 5 << 3;
const BAR0 = 0xfeb80000;
const BAR1 = 0xc200;

const emulator = new V86({
  wasm_path: wasmPath,
  memory_size: 128 << 20,
  vga_memory_size: 2 << 20,
  bios: file(values.bios),
  vga_bios: file(values.vgabios),
  bzimage: file(join(values.guest, 'bzImage')),
  initrd: file(join(values.guest, 'initrd.gz')),
  cmdline: 'console=ttyS0 nic=e1000 tsc=reliable mitigations=off random.trust_cpu=on panic=-1 quiet',
  net_device: { type: 'none' },
  autostart: false,
  disable_keyboard: true,
  disable_mouse: true,
  disable_speaker: true,
});

const started = Date.now();
let finished = false;
function finish(code: number, why: string): void {
  if (finished) return;
  finished = true;
  console.log(`\ne1000-v86: ${why} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  try { emulator.stop(); } catch { /* already stopped */ }
  setTimeout(() => process.exit(code), 100);
}
setTimeout(() => { finish(2, 'timeout'); }, Number(values.timeout) * 1000);

emulator.add_listener('emulator-loaded', () => {
  const cpu = emulator.v86.cpu;
  const pci = cpu.devices.pci;
  const io = cpu.io;
  const toGuest: Uint8Array[] = [];
  let timer: NodeJS.Timeout | undefined;
  const stack: Stack = new Stack(resolveStackConfig(), {
    clock: systemClock,
    random: systemRandom(),
    emit: (f) => { toGuest.push(f); queueMicrotask(deliver); },
  });
  const nic: E1000 = new E1000({
    memory: {
      read: (addr, len) => cpu.read_blob(addr, len) as Uint8Array,
      write: (addr, bytes) => { cpu.write_blob(bytes, addr); },
    },
    clock: systemClock,
    setIrq: (level) => { if (level) pci.raise_irq(PCI_ID); else pci.lower_irq(PCI_ID); },
    emit: (f) => { stack.receiveFrame(f); },
    rxReady: () => { queueMicrotask(deliver); },
  });
  function deliver(): void {
    while (toGuest.length > 0) {
      if (nic.receiveFrame(toGuest[0]!) === 'busy') return;
      toGuest.shift();
    }
  }
  function rearm(): void {
    clearTimeout(timer);
    const at = nic.nextDeadline();
    if (at !== undefined) timer = setTimeout(() => { nic.advance(); rearm(); }, Math.max(0, at - systemClock.now()));
  }
  // v86 keeps PCI config space itself and does not forward config writes: the model's own
  // COMMAND is set once (memory, I/O, bus master) so DMA works.
  nic.configWrite(0x04, 2, 0x0007);
  const space = new Uint8Array(256);
  for (let i = 0; i < 64; i += 4) {
    const v = nic.configRead(i, 4);
    space[i] = v & 0xff; space[i + 1] = (v >>> 8) & 0xff; space[i + 2] = (v >>> 16) & 0xff; space[i + 3] = v >>> 24;
  }
  const put32 = (at: number, v: number): void => { space[at] = v & 0xff; space[at + 1] = (v >>> 8) & 0xff; space[at + 2] = (v >>> 16) & 0xff; space[at + 3] = v >>> 24; };
  put32(0x10, BAR0);
  put32(0x14, BAR1 | 1);
  space[0x04] = 0x07;
  // I/O BAR: IOADDR at +0, IODATA at +4 (registered before register_device, which records them).
  for (let p = 0; p < 0x40; p++) {
    const port = BAR1 + p;
    io.register_read(port, nic,
      () => nic.ioRead(p, 1),
      () => nic.ioRead(p, 2),
      () => nic.ioRead(p, 4));
    io.register_write(port, nic,
      (v: number) => { nic.ioWrite(p, 1, v); rearm(); },
      (v: number) => { nic.ioWrite(p, 2, v); rearm(); },
      (v: number) => { nic.ioWrite(p, 4, v); rearm(); });
  }
  pci.register_device({ pci_id: PCI_ID, pci_space: Array.from(space.subarray(0, 64)), pci_bars: [{ size: 0x20000 }, { size: 0x40 }], name: 'e1000 (tslirp)' });
  io.mmap_register(BAR0, 0x20000,
    (addr: number) => nic.mmioRead(addr - BAR0, 1),
    (addr: number, v: number) => { nic.mmioWrite(addr - BAR0, 1, v); rearm(); },
    (addr: number) => nic.mmioRead(addr - BAR0, 4),
    (addr: number, v: number) => { nic.mmioWrite(addr - BAR0, 4, v); rearm(); deliver(); });
  setInterval(() => {
    if (finished) return;
    const s = `exits mmio=${nic.exits.mmio} io=${nic.exits.io} tx=${nic.exits.txFrames} rx=${nic.exits.rxFrames} status=${nic.regs[R.STATUS >>> 2]!.toString(16)}`;
    if (process.env['E1000_V86_DEBUG'] !== undefined) console.log(`\n[e1000-v86] ${s}`);
  }, 2000).unref();
  process.on('exit', () => {
    console.log(`\ne1000-v86: model exits mmio=${nic.exits.mmio} io=${nic.exits.io} config=${nic.exits.config} txFrames=${nic.exits.txFrames} rxFrames=${nic.exits.rxFrames} drops=${JSON.stringify(nic.drops.snapshot())}`);
  });
  emulator.run();
});

let line = '';
emulator.add_listener('serial0-output-byte', (b: number) => {
  const c = String.fromCharCode(b);
  process.stdout.write(c);
  if (c === '\n') {
    if (line.includes('TSLIRP-DONE')) finish(0, 'guest done');
    line = '';
  } else line += c;
});
