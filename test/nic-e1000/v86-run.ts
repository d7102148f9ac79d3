/**
 * Boots the i386 guest of scripts/e1000-v86-guest.sh in v86 with tslirp's e1000 plugged into
 * v86's PCI bus by the public add-on (`attachE1000`, src/v86), its frames going either to an
 * in-process network (`createNodeNetwork`) or, with --relay, to a tslirp daemon's WebSocket
 * relay, or with --e1000 (the daemon-served device, `ws://…/e1000`) v86 runs in a worker
 * thread that blocks on register reads while this thread holds the WebSocket
 * (`openE1000Bridge` + `attachE1000(emulator, { e1000_channel })`). Echoes the guest's serial console; exits 0 on TSLIRP-DONE, 2 on timeout. At exit it
 * prints the model's access and frame counters and both drop tables.
 *
 * Usage: node --import tsx test/nic-e1000/v86-run.ts [--guest DIR] [--relay ws://…/ | wisp://…/] [--mtu N]
 *          [--e1000 ws://…/e1000] [--append 'k=v …'] [--timeout S]
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { WebSocket } from 'ws';
import { V86 } from 'v86';
import { createNodeNetwork } from '../../src/daemon/node-network.js';
import { attachE1000, openE1000Bridge, type AttachedE1000, type E1000Channel } from '../../src/v86/index.js';

const { values } = isMainThread ? parseArgs({
  options: {
    guest: { type: 'string', default: '.cache/e1000-v86-guest' },
    bios: { type: 'string', default: '/usr/share/seabios/bios.bin' },
    vgabios: { type: 'string', default: '/usr/share/seabios/vgabios-stdvga.bin' },
    relay: { type: 'string' },
    /** The daemon-served e1000: v86 in a worker, registers over this `/e1000` URL. */
    e1000: { type: 'string' },
    /** After this many frames to the guest since the download started: save v86 (the NIC's state inside), restore into a new emulator. */
    snapshot: { type: 'string' },
    /** With --snapshot: the new emulator's NIC uses this relay (e.g. a daemon that never saw the guest). */
    'relay-after': { type: 'string' },
    /** v86's own NIC (ne2k, virtio) on the relay instead of our e1000 (benchmarks compare them). */
    nic: { type: 'string', default: 'e1000' },
    /** The model without interrupt moderation (E1000Options.mitigation false). */
    'no-mitigation': { type: 'boolean', default: false },
    append: { type: 'string', default: '' },
    /** v86's virtio-net: the MTU its config space offers (VIRTIO_NET_F_MTU; v86's default 1500 caps the guest's). Also v86's wisp adapter's MTU. */
    mtu: { type: 'string' },
    timeout: { type: 'string', default: '150' },
  },
}) : (workerData as { values: Values });
type Values = Record<'guest' | 'bios' | 'vgabios' | 'nic' | 'append' | 'timeout', string> & { relay?: string; mtu?: string; e1000?: string; snapshot?: string; 'relay-after'?: string; 'no-mitigation': boolean };

if (isMainThread && values.e1000 !== undefined) {
  // This thread holds the socket; the worker (this file again) runs v86 and may block.
  const bridge = openE1000Bridge({ e1000_url: values.e1000, WebSocket });
  const worker = new Worker(new URL('./v86-worker.mjs', import.meta.url), { workerData: { values, channel: bridge.channel }, transferList: [bridge.channel.port as never] });
  void bridge.closed.then(({ code, reason }) => { console.log(`\ne1000-v86: /e1000 socket closed ${code} ${reason}`); });
  worker.on('error', (e) => { console.log(`\ne1000-v86: worker failed: ${String(e)}`); process.exit(3); });
  worker.on('exit', (code) => {
    console.log(`\ne1000-v86: bridge ${JSON.stringify(bridge.stats.snapshot())}`);
    bridge.close();
    setTimeout(() => process.exit(code), 50);
  });
  process.on('SIGTERM', () => { worker.postMessage('stop'); setTimeout(() => process.exit(143), 2000).unref(); });
} else {
  runGuest(values, isMainThread ? undefined : (workerData as { channel: E1000Channel }).channel);
}

function runGuest(values: Values, channel: E1000Channel | undefined): void {

const require = createRequire(import.meta.url);
const wasmPath = join(dirname(require.resolve('v86')), 'v86.wasm');
const file = (p: string): { buffer: ArrayBuffer } => {
  const b = readFileSync(p);
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
};

const newEmulator = (autostart: boolean, initialState?: ArrayBuffer): V86 => new V86({
  wasm_path: wasmPath,
  memory_size: 128 << 20,
  vga_memory_size: 2 << 20,
  bios: file(values.bios),
  vga_bios: file(values.vgabios),
  bzimage: file(join(values.guest, 'bzImage')),
  initrd: file(join(values.guest, 'initrd.gz')),
  cmdline: `console=ttyS0 nic=${values.nic} tsc=reliable mitigations=off random.trust_cpu=on panic=-1 quiet ${values.append}`,
  net_device: values.nic === 'e1000' ? { type: 'none' } : { type: values.nic, relay_url: values.relay, ...(values.mtu !== undefined && { mtu: Number(values.mtu) }) },
  autostart,
  ...(initialState !== undefined && { initial_state: { buffer: initialState } }),
  disable_keyboard: true,
  disable_mouse: true,
  disable_speaker: true,
} as unknown as ConstructorParameters<typeof V86>[0]); // net_device 'none': no NIC of v86's own (not in v86.d.ts)

if (values.nic !== 'e1000' && values.relay === undefined) throw new Error('--nic ne2k|virtio needs --relay');
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket; // v86's own relay needs a global one
// The in-process network answers DNS for host.tslirp.internal itself; no upstream is used.
const network = values.relay === undefined ? createNodeNetwork({ dnsUpstreams: ['127.0.0.1:9'] }) : undefined;
const mitigation = !values['no-mitigation'];
const attach = (em: V86, relay = values.relay): AttachedE1000 | undefined => values.nic !== 'e1000'
  ? undefined
  : attachE1000(em, channel !== undefined ? { e1000_channel: channel } : relay === undefined ? { network: network!, mitigation } : { relay_url: relay, WebSocket, mitigation });
let emulator = newEmulator(true);
let nic = attach(emulator);

// Traps and interrupts for every NIC alike: PCI interrupt assertions (raise_irq; the NIC is
// the only busy PCI device here) and, for v86's own NICs, calls of their port handlers.
const probe = { traps: 0, irqs: 0, ports: 0 };
interface PortEntry { device: unknown; [k: string]: unknown }
const probeIn = (em: V86): void => em.add_listener('emulator-loaded', () => {
  const cpu = (em as unknown as { v86: { cpu: { devices: Record<string, unknown> & { pci: { raise_irq(id: number): void } }; io: { ports: PortEntry[] } } } }).v86.cpu;
  const pci = cpu.devices.pci;
  const raise = pci.raise_irq.bind(pci);
  pci.raise_irq = (id) => { probe.irqs++; raise(id); };
  if (values.nic === 'e1000') return;
  const dev = values.nic === 'ne2k' ? cpu.devices['net'] : (cpu.devices['virtio_net'] as { virtio?: unknown } | undefined)?.virtio;
  for (const entry of cpu.io.ports) {
    if (entry.device !== dev || dev === undefined) continue;
    probe.ports++;
    for (const k of ['read8', 'read16', 'read32', 'write8', 'write16', 'write32']) {
      const f = entry[k] as (...a: unknown[]) => unknown;
      entry[k] = function (this: unknown, ...a: unknown[]) { probe.traps++; return f.apply(this, a); };
    }
  }
});
probeIn(emulator);
/** Traps of the NICs of emulators already left behind by --snapshot (a new model counts from 0). */
let trapsBefore = 0;
const counters = (): Record<string, number> => {
  const d = nic?.device;
  const r = nic?.remote;
  if (d !== undefined) return { traps: trapsBefore + d.exits.mmio + d.exits.io, irqs: probe.irqs };
  if (r !== undefined) {
    const t = r.stats;
    return { traps: t.mmioReads + t.mmioWrites + t.ioReads + t.ioWrites, irqs: probe.irqs, reads: t.mmioReads + t.ioReads, dmaReads: t.dmaReads, dmaReadBytes: t.dmaReadBytes, messages: t.messages };
  }
  return { traps: probe.traps, irqs: probe.irqs, ports: probe.ports };
};

const started = Date.now();
let finished = false;
function finish(code: number, why: string): void {
  if (finished) return;
  finished = true;
  console.log(`\ne1000-v86: ${why} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const r = nic?.remote;
  if (r !== undefined) console.log(`\ne1000-v86: remote exits ${Object.entries(r.stats).map(([k, v]) => `${k}=${v}`).join(' ')} drops=${JSON.stringify(r.drops.snapshot())} addon=${JSON.stringify(nic!.drops.snapshot())}`);
  void emulator.stop().catch(() => undefined);
  nic?.close();
  network?.close();
  setTimeout(() => process.exit(code), 100);
}
setTimeout(() => { finish(2, 'timeout'); }, Number(values.timeout) * 1000);
if (channel === undefined) process.on('SIGTERM', () => { finish(143, 'SIGTERM'); });
else parentPort?.on('message', (m) => { if (m === 'stop') finish(143, 'SIGTERM'); });
process.on('exit', () => {
  const d = nic?.device;
  if (d === undefined || nic === undefined) return;
  console.log(`\ne1000-v86: model exits mmio=${d.exits.mmio} io=${d.exits.io} config=${d.exits.config} txFrames=${d.exits.txFrames} rxFrames=${d.exits.rxFrames} irqs=${d.exits.irqs} drops=${JSON.stringify(d.drops.snapshot())} addon=${JSON.stringify(nic.drops.snapshot())}`);
});

if (process.env['E1000_V86_DEBUG'] !== undefined) {
  setInterval(() => {
    const d = nic?.device;
    if (d !== undefined && nic !== undefined) console.log(`\n[e1000-v86 ${((Date.now() - started) / 1000).toFixed(0)} s] mmio=${d.exits.mmio} tx=${d.exits.txFrames} rx=${d.exits.rxFrames} irqs=${d.exits.irqs} drops=${JSON.stringify(d.drops.snapshot())} addon=${JSON.stringify(nic.drops.snapshot())} icr=${d.regs[0xc0 >>> 2]!.toString(16)} ims=${d.regs[0xd0 >>> 2]!.toString(16)} line=${d.irqLevel} mit=${JSON.stringify(d.mitigation)} now=${d.nowNs} next=${d.nextDeadline()} clock=${performance.now()} rdh=${d.regs[0x2810 >>> 2]} rdt=${d.regs[0x2818 >>> 2]} tdh=${d.regs[0x3810 >>> 2]} tdt=${d.regs[0x3818 >>> 2]}`);
  }, 5000).unref();
}

let line = '';
const onSerial = (b: number): void => {
  const c = String.fromCharCode(b);
  process.stdout.write(c);
  if (c === '\n') {
    if (line.includes('TSLIRP-DONE')) finish(0, 'guest done');
    const mark = /TSLIRP-MARK (\S+)/.exec(line);
    if (mark !== null) console.log(`\ne1000-v86: counters ${mark[1]} ${JSON.stringify(counters())}`);
    if (mark?.[1] === 'dl-start' && values.snapshot !== undefined) snapshotAfter(Number(values.snapshot));
    line = '';
  } else if (c !== '\r') {
    line += c;
    if (line.length > 4096) line = '';
  }
};
emulator.add_listener('serial0-output-byte', onSerial);

/** --snapshot N: moves the guest once N more frames have reached it (polled every 20 ms). */
function snapshotAfter(frames: number): void {
  const rx = (): number => nic?.device?.exits.rxFrames ?? 0;
  const from = rx();
  const poll = setInterval(() => {
    if (finished) clearInterval(poll);
    else if (rx() - from >= frames) {
      clearInterval(poll);
      void moveToNewEmulator(() => rx() - from).catch((e: unknown) => { finish(4, `snapshot failed: ${String(e)}`); });
    }
  }, 20);
}

/**
 * --snapshot N: N frames into the download, stop v86 and save its state with v86's own
 * `save_state()` (the add-on puts the NIC's state inside), throw the emulator away, build a new
 * one from that state (`initial_state`) with a new add-on on the same network (or on
 * --relay-after) and run: the guest goes on where it was.
 */
async function moveToNewEmulator(framesIn: () => number): Promise<void> {
  const old = nic!;
  await emulator.stop();
  const frames = framesIn();
  const tsc = guestTsc(emulator);
  const t0 = Date.now();
  const state = await emulator.save_state();
  trapsBefore += (old.device?.exits.mmio ?? 0) + (old.device?.exits.io ?? 0);
  old.close();
  await emulator.destroy();
  console.log(`\ne1000-v86: saved ${state.byteLength} bytes ${frames} frames into the download (guest TSC ${tsc}); restoring into a new emulator`);
  emulator = newEmulator(true, state);
  nic = attach(emulator, values['relay-after'] ?? values.relay);
  probeIn(emulator);
  emulator.add_listener('serial0-output-byte', onSerial);
  emulator.add_listener('emulator-started', () => {
    console.log(`\ne1000-v86: restored and running ${Date.now() - t0} ms after the save (guest TSC ${guestTsc(emulator)})`);
  });
}

/** The guest's TSC now, for the log (v86's CPU writes it to current_tsc on request). */
function guestTsc(em: V86): string {
  const cpu = (em as unknown as { v86?: { cpu: { store_current_tsc(): void; current_tsc: Uint32Array } } }).v86?.cpu;
  if (cpu === undefined) return '?';
  cpu.store_current_tsc();
  return String(BigInt(cpu.current_tsc[0]!) | (BigInt(cpu.current_tsc[1]!) << 32n));
}
}
