#!/usr/bin/env node
// Boots the v86 test guest (scripts/build-v86-guest.sh) under Node with its NIC relayed to a
// WebSocket, echoes the guest's serial console to stdout, and exits when the guest prints
// TSLIRP-DONE (exit 0) or when the time limit passes (exit 2). Run in a child process so a
// hung emulator can be killed. See the shared reference v86.md for the recipe.
//
// Usage: node scripts/run-v86-guest.mjs --relay ws://127.0.0.1:PORT/ [--nic ne2k|virtio]
//          [--guest .cache/v86-guest] [--bios /usr/share/seabios/bios.bin] [--timeout 120] [--mtu N]
// --mtu: the MTU v86's virtio-net offers in its config space (VIRTIO_NET_F_MTU); Linux caps
// the interface's MTU there, and v86's default is 1500.
/* global process, console, setTimeout */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    relay: { type: 'string' },
    nic: { type: 'string', default: 'ne2k' },
    guest: { type: 'string', default: '.cache/v86-guest' },
    bios: { type: 'string', default: '/usr/share/seabios/bios.bin' },
    vgabios: { type: 'string', default: '/usr/share/seabios/vgabios-stdvga.bin' },
    timeout: { type: 'string', default: '120' },
    memory: { type: 'string', default: '128' },
    mtu: { type: 'string' },
  },
});
if (!values.relay) { console.error('run-v86-guest: --relay is required'); process.exit(64); }
if (values.nic !== 'ne2k' && values.nic !== 'virtio') { console.error('run-v86-guest: --nic must be ne2k or virtio'); process.exit(64); }

const { WebSocket } = await import('ws');
globalThis.WebSocket = WebSocket; // libv86's relay does nothing without a global WebSocket (v86.md 4.2.1)
const { V86 } = await import('v86');
const require = createRequire(import.meta.url);
const wasmPath = join(dirname(require.resolve('v86')), 'v86.wasm');

const file = (p) => { const b = readFileSync(p); return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) }; };
const started = Date.now();
const limitMs = Number(values.timeout) * 1000;

const emulator = new V86({
  wasm_path: wasmPath,
  memory_size: Number(values.memory) << 20,
  vga_memory_size: 2 << 20,
  bios: file(values.bios),
  vga_bios: file(values.vgabios),
  bzimage: file(join(values.guest, 'bzImage')),
  initrd: file(join(values.guest, 'initrd.gz')),
  // ne2k loses transmit-done interrupts in v86 0.5.462; irqpoll avoids watchdog stalls (v86.md 4.7).
  cmdline: `console=ttyS0 nic=${values.nic} tsc=reliable mitigations=off random.trust_cpu=on panic=-1 quiet${values.nic === 'ne2k' ? ' irqpoll' : ''}`,
  net_device: { type: values.nic, relay_url: values.relay, ...(values.mtu !== undefined && { mtu: Number(values.mtu) }) },
  autostart: true,
  disable_keyboard: true,
  disable_mouse: true,
  disable_speaker: true,
});

let line = '';
let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  process.stdout.write(`\nRUN-V86: exit ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  try { emulator.stop(); } catch { /* already stopped */ }
  try { emulator.destroy(); } catch { /* ignore */ }
  // The emulator keeps timers and a socket alive; leave promptly once stdout is flushed.
  process.stdout.write('', () => process.exit(code));
}
emulator.add_listener('serial0-output-byte', (b) => {
  const ch = String.fromCharCode(b);
  process.stdout.write(ch);
  if (ch === '\n') {
    if (line.includes('TSLIRP-DONE')) finish(0);
    line = '';
  } else if (ch !== '\r') {
    line += ch;
    if (line.length > 4096) line = '';
  }
});
setTimeout(() => { process.stdout.write('\nRUN-V86: time limit reached\n'); finish(2); }, limitMs).unref();
setTimeout(() => finish(2), limitMs + 1000);
process.on('SIGTERM', () => finish(143));
