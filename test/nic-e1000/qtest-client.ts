/**
 * Drives QEMU 7.2's own e1000 through the qtest protocol (reference/e1000.md §12, §14):
 * a tiny `cli; hlt` firmware so the vCPU never touches PCI, `-qtest unix:` for register
 * and memory access, `-netdev stream` on a unix socket to capture and inject frames, QMP
 * for `set_link`. Also the `NicTarget` abstraction the differential tests run against
 * both QEMU and the TypeScript model.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E1000, type E1000Options } from '../../src/nic-e1000/device.js';
import { arrayGuestMemory } from '../../src/nic-e1000/memory.js';

export const qemuAvailable = (): boolean =>
  spawnSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' }).status === 0;

/** Where the e1000 sits on QEMU's PCI bus and where the tests map its BARs. */
const SLOT = 3;
const BAR0 = 0xe0000000;
const BAR1 = 0xc000;
/** Guest RAM used for rings and buffers. */
export const MEM_SIZE = 4 * 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A device under test: QEMU's e1000 or ours, with the same operations. */
export interface NicTarget {
  readonly name: string;
  cfgRead(off: number, size: 1 | 2 | 4): Promise<number>;
  cfgWrite(off: number, size: 1 | 2 | 4, v: number): Promise<void>;
  read(off: number): Promise<number>;
  write(off: number, v: number): Promise<void>;
  /** BAR1 (I/O) accesses, 32-bit. */
  ioRead(off: number): Promise<number>;
  ioWrite(off: number, v: number): Promise<void>;
  memWrite(addr: number, bytes: Uint8Array): Promise<void>;
  memRead(addr: number, len: number): Promise<Uint8Array>;
  /** Offers a frame from the network; QEMU delivers it when its queue lets it. */
  inject(frame: Uint8Array): Promise<void>;
  /** Frames transmitted so far (drains the list), after letting them arrive. */
  takeFrames(expected?: number): Promise<Uint8Array[]>;
  irq(): Promise<boolean>;
  setLink(up: boolean): Promise<void>;
  /** Lets device timers run (QEMU: real time; model: its clock). */
  wait(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Framing of `-netdev stream`: 4-byte big-endian length, then the frame. */
function frameStream(onFrame: (f: Uint8Array) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 4) return;
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) return;
      onFrame(new Uint8Array(buf.subarray(4, 4 + n)));
      buf = buf.subarray(4 + n);
    }
  };
}

class LineClient {
  readonly #sock: net.Socket;
  #buf = '';
  readonly #waiters: ((line: string) => void)[] = [];
  readonly #onAsync: (line: string) => void;
  constructor(sock: net.Socket, onAsync: (line: string) => void) {
    this.#sock = sock;
    this.#onAsync = onAsync;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.#buf += d;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl);
        if (process.env['E1000_QTEST_DEBUG'] !== undefined) console.log('<', line.slice(0, 100));
        this.#buf = this.#buf.slice(nl + 1);
        if (line.startsWith('IRQ') || line.startsWith('{"QMP"') || (line.startsWith('{') && line.includes('"event"'))) this.#onAsync(line);
        else this.#waiters.shift()?.(line);
      }
    });
  }
  cmd(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#waiters.push((l) => {
        if (l.startsWith('OK') || l.startsWith('{')) resolve(l);
        else reject(new Error(`qtest ${line} -> ${l}`));
      });
      if (process.env['E1000_QTEST_DEBUG'] !== undefined) console.log('>', line.slice(0, 100));
      this.#sock.write(line + '\n');
    });
  }
}

function listenOnce(path: string): Promise<{ server: net.Server; conn: Promise<net.Socket> }> {
  return new Promise((resolve) => {
    let accept: (s: net.Socket) => void = () => undefined;
    const conn = new Promise<net.Socket>((r) => (accept = r));
    const server = net.createServer((s) => { accept(s); });
    server.listen(path, () => { resolve({ server, conn }); });
  });
}

/** A 64 KiB BIOS whose reset vector is `cli; hlt; jmp .-3`. */
function firmware(dir: string): string {
  const img = new Uint8Array(0x10000);
  img.set([0xfa, 0xf4, 0xeb, 0xfd], 0xfff0);
  const path = join(dir, 'halt.bin');
  writeFileSync(path, img);
  return path;
}

export async function startQemu(mac = '52:54:00:12:34:56'): Promise<NicTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'e1000-qtest-'));
  const qt = await listenOnce(join(dir, 'qtest.sock'));
  const st = await listenOnce(join(dir, 'net.sock'));
  const qmp = await listenOnce(join(dir, 'qmp.sock'));
  const proc: ChildProcess = spawn('qemu-system-x86_64', [
    '-machine', 'pc', '-nodefaults', '-display', 'none', '-accel', 'tcg', '-m', '16',
    '-bios', firmware(dir),
    '-qtest', `unix:${join(dir, 'qtest.sock')}`,
    '-qmp', `unix:${join(dir, 'qmp.sock')}`,
    '-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${join(dir, 'net.sock')}`,
    '-device', `e1000,netdev=n0,mac=${mac},romfile=,addr=${SLOT}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timeout = (p: Promise<net.Socket>, what: string): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`qemu did not connect ${what}: ${stderr}`));
      }, 15_000);
      void p.then((s) => {
        clearTimeout(t);
        resolve(s);
      });
    });
  let irqLevel = false;
  const frames: Uint8Array[] = [];
  const qtSock = await timeout(qt.conn, 'qtest');
  if (process.env['E1000_QTEST_DEBUG'] !== undefined) console.log('qtest connected');
  const q = new LineClient(qtSock, (line) => {
    // PIRQA..D are routed to GSI 11; other lines (the PIT on 0) are not ours.
    if (line === 'IRQ raise 11') irqLevel = true;
    else if (line === 'IRQ lower 11') irqLevel = false;
  });
  const netSock = await timeout(st.conn, 'netdev');
  netSock.on('data', frameStream((f) => frames.push(f)));
  const qmpSock = await timeout(qmp.conn, 'qmp');
  if (process.env['E1000_QTEST_DEBUG'] !== undefined) console.log('qmp connected');
  const qm = new LineClient(qmpSock, () => undefined);
  await qm.cmd('{"execute":"qmp_capabilities"}');

  const cfgAddr = (off: number): number => (0x80000000 | (SLOT << 11) | (off & 0xfc)) >>> 0;
  const hex = (n: number): string => '0x' + (n >>> 0).toString(16);
  const cfgRead = async (off: number, size: 1 | 2 | 4): Promise<number> => {
    await q.cmd(`outl 0xcf8 ${hex(cfgAddr(off))}`);
    const op = size === 1 ? 'inb' : size === 2 ? 'inw' : 'inl';
    return Number((await q.cmd(`${op} ${hex(0xcfc + (off & 3))}`)).slice(3));
  };
  const cfgWrite = async (off: number, size: 1 | 2 | 4, v: number): Promise<void> => {
    await q.cmd(`outl 0xcf8 ${hex(cfgAddr(off))}`);
    const op = size === 1 ? 'outb' : size === 2 ? 'outw' : 'outl';
    await q.cmd(`${op} ${hex(0xcfc + (off & 3))} ${hex(v >>> 0)}`);
  };

  // Platform set-up (not part of any comparison): PIRQA-D → IRQ 11, intercept the IOAPIC,
  // map the BARs. The device's COMMAND register is left to the scenarios.
  for (let p = 0; p < 4; p++) {
    await q.cmd(`outl 0xcf8 ${hex(0x80000000 | (1 << 11) | 0x60)}`);
    await q.cmd(`outb ${hex(0xcfc + p)} 0xb`);
  }
  await q.cmd('irq_intercept_in ioapic');
  await cfgWrite(0x10, 4, BAR0);
  await cfgWrite(0x14, 4, BAR1);

  return {
    name: 'qemu',
    cfgRead,
    cfgWrite,
    read: async (off) => Number((await q.cmd(`readl ${hex(BAR0 + off)}`)).slice(3)),
    write: async (off, v) => { await q.cmd(`writel ${hex(BAR0 + off)} ${hex(v >>> 0)}`); },
    ioRead: async (off) => Number((await q.cmd(`inl ${hex(BAR1 + off)}`)).slice(3)),
    ioWrite: async (off, v) => { await q.cmd(`outl ${hex(BAR1 + off)} ${hex(v >>> 0)}`); },
    memWrite: async (addr, bytes) => {
      if (bytes.length === 0) return;
      await q.cmd(`write ${hex(addr)} ${bytes.length} 0x${Buffer.from(bytes).toString('hex')}`);
    },
    memRead: async (addr, len) => {
      const r = await q.cmd(`read ${hex(addr)} ${len}`);
      return new Uint8Array(Buffer.from(r.slice(5), 'hex'));
    },
    inject: async (frame) => {
      const hdr = Buffer.alloc(4);
      hdr.writeUInt32BE(frame.length);
      netSock.write(Buffer.concat([hdr, frame]));
      await sleep(30);
    },
    takeFrames: async (expected = 0) => {
      for (let t = 0; t < 100 && frames.length < expected; t++) await sleep(10);
      await sleep(expected === 0 ? 30 : 5);
      return frames.splice(0);
    },
    irq: async () => {
      await q.cmd('endianness'); // a round trip: earlier IRQ lines have arrived
      return irqLevel;
    },
    setLink: async (up) => {
      await qm.cmd(`{"execute":"set_link","arguments":{"name":"n0","up":${up}}}`);
    },
    wait: sleep,
    close: async () => {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      for (const s of [qt.server, st.server, qmp.server]) s.close();
      qtSock.destroy();
      netSock.destroy();
      qmpSock.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Our model behind the same interface: guest RAM is a Uint8Array, time a manual clock.
 * `options.qemuCompat` selects QEMU 7.2's quirks (named 'model-compat' then).
 */
export function modelTarget(mac = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56), options: Pick<E1000Options, 'qemuCompat'> = {}): NicTarget & { dev: E1000 } {
  const mem = new Uint8Array(MEM_SIZE);
  let nowMs = 0;
  let level = false;
  const frames: Uint8Array[] = [];
  const pending: Uint8Array[] = [];
  const flush = (): void => {
    while (pending.length > 0) {
      const r = dev.receiveFrame(pending[0]!);
      if (r === 'busy') return;
      pending.shift();
    }
  };
  const dev: E1000 = new E1000(
    {
      memory: arrayGuestMemory(mem),
      clock: { now: () => nowMs },
      setIrq: (l) => (level = l),
      emit: (f) => frames.push(f),
      rxReady: () => { queueMicrotask(flush); },
    },
    { mac, ...options },
  );
  // Every access is 1 ms after the previous one, so mitigation windows (≥ 128 µs) have
  // closed by the next access, as the differential scenarios arrange for QEMU.
  const tick = (): void => {
    nowMs += 1;
    dev.advance();
  };
  dev.configWrite(0x10, 4, BAR0);
  dev.configWrite(0x14, 4, BAR1);
  return {
    name: options.qemuCompat === true ? 'model-compat' : 'model',
    dev,
    cfgRead: (off, size) => { tick(); return Promise.resolve(dev.configRead(off, size)); },
    cfgWrite: (off, size, v) => { tick(); dev.configWrite(off, size, v); return Promise.resolve(); },
    read: (off) => { tick(); return Promise.resolve(dev.mmioRead(off, 4)); },
    write: (off, v) => { tick(); dev.mmioWrite(off, 4, v); return Promise.resolve(); },
    ioRead: (off) => { tick(); return Promise.resolve(dev.ioRead(off, 4)); },
    ioWrite: (off, v) => { tick(); dev.ioWrite(off, 4, v); return Promise.resolve(); },
    memWrite: (addr, bytes) => { mem.set(bytes, addr); return Promise.resolve(); },
    memRead: (addr, len) => Promise.resolve(mem.slice(addr, addr + len)),
    inject: (frame) => {
      pending.push(frame);
      flush();
      return Promise.resolve();
    },
    takeFrames: () => Promise.resolve(frames.splice(0)),
    irq: () => Promise.resolve(level),
    setLink: (up) => { dev.setLinkUp(up); return Promise.resolve(); },
    wait: async (ms) => {
      nowMs += ms;
      dev.advance();
      await Promise.resolve();
      flush();
    },
    close: () => Promise.resolve(),
  };
}
