/**
 * A measured proposal, not a link: could the daemon reach a namespace guest without the QEMU
 * hub bridge that bounds bench/tcp.ts at MTU 1500? Node cannot issue TUNSETIFF on
 * /dev/net/tun, but a macvtap device needs no ioctl: the kernel creates /dev/tapN when
 * `ip link add … type macvtap` runs (root once; the node can then be chowned to the daemon's
 * user), every read() returns one frame and every write() sends one, each behind a 10-byte
 * virtio-net header. Node can poll that descriptor through a libuv pipe handle (Node's
 * internal `pipe_wrap` binding: the only non-public API used here).
 *
 * Set-up: namespace guest with a veth; the host end carries a macvtap in passthru mode.
 * Measured for 3 s each:
 *   rx: the guest floods UDP (two senders) towards 10.0.2.2; frames/s Node reads.
 *   tx: Node writes 1514-byte UDP frames to the guest as fast as the device takes them;
 *       frames/s written and received by the guest's IP layer.
 * Baseline in the same run: the bridge path of bench/tcp.ts (TAP ↔ QEMU hub ↔ unix socket),
 * with this script in the daemon's place on the unix socket: the same senders, the same
 * writer, frames length-prefixed as `-netdev stream` wants them.
 *
 * Needs root, python3 and qemu-system-x86_64; prints why and exits 0 (1 under CI) when
 * something is missing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { frameStream, StreamDeframer } from '../src/link/qemu-stream.js';
import { command, missingRequirements, must, NetnsGuest, root, tempDir, uniqueName } from '../test/helpers/guests.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const VNET_HDR = 10;
const GATEWAY_MAC = Buffer.from('52550a000202', 'hex');

const missing = missingRequirements([root, command('python3'), command('ip'), command('qemu-system-x86_64')]);
if (missing.length > 0) {
  console.error(`bench/macvtap.ts: cannot run, missing ${missing.join('; ')}`);
  process.exit(process.env['CI'] === 'true' ? 1 : 0);
}

interface PipeBinding {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

/** A net.Socket over any pollable descriptor (libuv's uv_pipe_open). */
function socketOnFd(fd: number): net.Socket {
  const { Pipe, constants } = (process as unknown as { binding(name: string): PipeBinding }).binding('pipe_wrap');
  const handle = new Pipe(constants.SOCKET);
  const err = handle.open(fd);
  if (err !== 0) throw new Error(`uv_pipe_open failed: ${err}`);
  return new net.Socket({ handle, readable: true, writable: true } as unknown as net.SocketConstructorOpts);
}

/** A guest namespace with a veth whose host end carries a macvtap; its /dev/tapN and the guest MAC. */
function macvtapGuest(): { ns: string; dev: string; guestMac: Buffer; destroy(): void } {
  const ns = uniqueName('tslmv');
  const veth = uniqueName('tslmve');
  const tap = uniqueName('tslmvt');
  must('ip', ['netns', 'add', ns]);
  must('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}g`]);
  must('ip', ['link', 'set', `${veth}g`, 'netns', ns]);
  must('ip', ['netns', 'exec', ns, 'sh', '-c', `ip link set lo up && ip addr add 10.0.2.15/24 dev ${veth}g && ip link set ${veth}g up && ip neigh replace 10.0.2.2 lladdr 52:55:0a:00:02:02 dev ${veth}g`]);
  must('ip', ['link', 'add', 'link', veth, 'name', tap, 'type', 'macvtap', 'mode', 'passthru']);
  must('ip', ['link', 'set', veth, 'up']);
  must('ip', ['link', 'set', tap, 'up']);
  const index = readFileSync(`/sys/class/net/${tap}/ifindex`, 'utf8').trim();
  const dev = `/dev/tap${index}`;
  let made = false;
  if (!existsSync(dev)) {
    const [major, minor] = readFileSync(`/sys/class/net/${tap}/macvtap/tap${index}/dev`, 'utf8').trim().split(':');
    must('mknod', [dev, 'c', major!, minor!]);
    made = true;
  }
  const mac = execFileSync('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${veth}g/address`], { encoding: 'utf8' }).trim();
  return {
    ns, dev, guestMac: Buffer.from(mac.replace(/:/g, ''), 'hex'),
    destroy() {
      execFileSync('ip', ['link', 'del', veth], { stdio: 'ignore' });
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      if (made) rmSync(dev, { force: true });
    },
  };
}

/** Two UDP senders in the namespace, 1472-byte datagrams to 10.0.2.2, for `seconds`. */
function flood(ns: string, seconds: number): Promise<void> {
  const code = `import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nb=b'x'*1472\nend=time.time()+${seconds}\nwhile time.time()<end:\n  for i in range(1000):\n    try: s.sendto(b,('10.0.2.2',9))\n    except OSError: pass\n`;
  const ps = [0, 1].map(() => spawn('ip', ['netns', 'exec', ns, 'python3', '-c', code], { stdio: 'ignore' }));
  return Promise.all(ps.map((p) => new Promise<void>((r) => p.on('exit', () => r())))).then(() => undefined);
}

/** A 1514-byte UDP frame to the guest's discard port, behind a zeroed virtio-net header. */
function udpFrame(guestMac: Buffer): Buffer {
  const f = Buffer.alloc(VNET_HDR + 1514);
  guestMac.copy(f, VNET_HDR);
  GATEWAY_MAC.copy(f, VNET_HDR + 6);
  f.writeUInt16BE(0x0800, VNET_HDR + 12);
  const ip = VNET_HDR + 14;
  f[ip] = 0x45;
  f.writeUInt16BE(1500, ip + 2);
  f[ip + 8] = 64;
  f[ip + 9] = 17;
  f.writeUInt32BE(0x0a000202, ip + 12);
  f.writeUInt32BE(0x0a00020f, ip + 16);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += f.readUInt16BE(ip + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f.writeUInt16BE(~s & 0xffff, ip + 10);
  f.writeUInt16BE(40000, ip + 20);
  f.writeUInt16BE(9, ip + 22);
  f.writeUInt16BE(1480, ip + 24);
  return f;
}

const ipInReceives = (ns: string): number => {
  const rows = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('Ip:'));
  return Number(rows[1]!.split(' ')[3]);
};

/** Frames per second a path moves each way, with the same flood and the same writer. */
interface PathRates {
  readonly rx: number;
  readonly tx: number;
  readonly txReceived: number;
}

/**
 * Measures one path: `counted()` is how many frames it has delivered from the guest so far;
 * `write()` sends one frame to the guest (false: wait for 'drain' on `drainer`).
 */
async function measure(ns: string, counted: () => number, write: () => boolean, drainer: net.Socket): Promise<PathRates> {
  const flooding = flood(ns, SECONDS + 1);
  await new Promise((r) => setTimeout(r, 500));
  const f0 = counted();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const rx = (counted() - f0) / ((performance.now() - t0) / 1000);
  await flooding;
  const in0 = ipInReceives(ns);
  let written = 0;
  let stop = false;
  const pump = (): void => {
    while (!stop) {
      written++;
      if (!write()) return;
      if ((written & 1023) === 0) {
        setImmediate(pump);
        return;
      }
    }
  };
  drainer.on('drain', pump);
  const t1 = performance.now();
  pump();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  drainer.off('drain', pump);
  const dt = (performance.now() - t1) / 1000;
  return { rx, tx: written / dt, txReceived: (ipInReceives(ns) - in0) / dt };
}

async function viaMacvtap(): Promise<PathRates> {
  const g = macvtapGuest();
  const sock = socketOnFd(openSync(g.dev, fsConstants.O_RDWR | fsConstants.O_NONBLOCK));
  sock.on('error', (e) => console.error(`macvtap socket: ${e.message}`));
  try {
    let frames = 0;
    sock.on('data', () => frames++); // one read, one frame
    const frame = udpFrame(g.guestMac);
    return await measure(g.ns, () => frames, () => sock.write(frame), sock);
  } finally {
    sock.destroy();
    g.destroy();
  }
}

async function viaBridge(): Promise<PathRates> {
  const dir = tempDir('tslirp-bench-mvt-');
  const path = join(dir, 'bridge.sock');
  let peer: net.Socket | undefined;
  const server = net.createServer((s) => {
    s.on('error', () => undefined); // the bridge is killed at the end
    peer = s;
  });
  await new Promise<void>((r) => server.listen(path, r));
  const g = await NetnsGuest.create({ kind: 'stream-unix', path });
  try {
    await g.sh('ip addr add 10.0.2.15/24 dev "$1" && ip link set dev "$1" up && ip neigh replace 10.0.2.2 lladdr 52:55:0a:00:02:02 dev "$1"', [g.tap]);
    const mac = Buffer.from((await g.sh('cat /sys/class/net/"$1"/address', [g.tap])).stdout.trim().replace(/:/g, ''), 'hex');
    const s = peer!;
    let frames = 0;
    const d = new StreamDeframer(() => frames++);
    s.on('data', (c: Buffer) => d.push(c));
    const record = frameStream([udpFrame(mac).subarray(VNET_HDR)]);
    return await measure(g.ns, () => frames, () => s.write(record), s);
  } finally {
    await g.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const tap = await viaMacvtap();
  const bridge = await viaBridge();
  const k = (n: number): string => `${(n / 1000).toFixed(0)} k/s`;
  const gbit = (n: number): string => `${((n * 1514 * 8) / 1e9).toFixed(2)} Gbit/s`;
  console.log(`guest → host (frames read, two python senders): macvtap ${k(tap.rx)} (${gbit(tap.rx)}), QEMU hub bridge ${k(bridge.rx)} (${gbit(bridge.rx)}); ratio ${(tap.rx / bridge.rx).toFixed(2)}`);
  console.log(`host → guest (frames reaching the guest's IP layer): macvtap ${k(tap.txReceived)} (${gbit(tap.txReceived)}, ${k(tap.tx)} written), QEMU hub bridge ${k(bridge.txReceived)} (${gbit(bridge.txReceived)}, ${k(bridge.tx)} written); ratio ${(tap.txReceived / bridge.txReceived).toFixed(2)}`);
}

await main();
