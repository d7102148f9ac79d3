/**
 * The bridge-free path (issue 15): one QEMU guest with two NICs of the same model, NIC 1 on
 * tslirp through `-netdev stream` (the built daemon, `--stream unix:`, started as the tests
 * start it) and NIC 2 on QEMU's own libslirp (`-netdev user,net=10.0.3.0/24`). Nothing sits
 * between the guest's NIC and either SLIRP but QEMU's netdev layer: no TAP, no hub, no
 * namespace — the path a QEMU user gets. bench/tcp.ts measures a namespace guest behind a
 * guest-less QEMU hub bridge instead, where the bridge can be the ceiling.
 *
 * The guest is scripts/build-qemu-guest.sh's (e1000 and virtio-net modules) with an /init
 * appended that gives the tslirp NIC (found by its MAC) 10.0.2.15/24 and the libslirp one
 * 10.0.3.15/24, then runs the commands the benchmark writes on its serial console: a
 * download with busybox wget from a host HTTP server on 127.0.0.1 (reached as 10.0.2.2 or
 * 10.0.3.2), written to /dev/null, or an upload with busybox nc of /dev/zero to a host sink
 * that closes after BENCH_QP_MB MiB. Runs alternate tslirp and libslirp within each pair
 * (the first of a pair alternates too); the ratio is the median of pairwise ratios
 * tslirp/libslirp. Mbit/s is host wall time from the command to the guest's answer.
 *
 * CPU seconds per GB are split: QEMU's vCPU threads ("CPU n/TCG" or "/KVM": the guest,
 * its driver and its TCP), QEMU's other threads (the main loop, where the stream netdev and
 * libslirp run) and the tslirp daemon. Per-thread run-queue wait (schedstat) says how long
 * the vCPU and the daemon were runnable but had no core — on a shared machine a slow guest
 * is often a waiting one. At the end the daemon's TCP retransmission counters (/metrics).
 *
 * KVM when /dev/kvm is there, TCG otherwise (printed). Needs qemu-system-x86_64, cpio, gzip,
 * the guest image and a built daemon. Environment: BENCH_PAIRS (default 3), BENCH_QP_MB
 * (default 48), BENCH_QP_NICS (default e1000,virtio-net-pci), BENCH_QP_DIRS (default
 * down,up: host→guest, guest→host), BENCH_QP_MEM (guest MiB, default 256),
 * BENCH_QEMU_GUEST_DIR (default .cache/qemu-guest), BENCH_QP_PCAP (a directory: a pcap of each NIC's
 * frames through QEMU's filter-dump; it costs QEMU CPU, so not for figures).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { missingRequirements, command, daemon as daemonReq, file, Proc, QEMU_GUEST_DIR, tempDir } from '../test/helpers/guests.js';
import { cpuSeconds, median } from './lib/measure.js';
import { groupDelta, threadsCpu, type ThreadCpu } from './lib/proc-cpu.js';

const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 3);
const MB = Number(process.env['BENCH_QP_MB'] ?? 48);
const NICS = (process.env['BENCH_QP_NICS'] ?? 'e1000,virtio-net-pci').split(',').filter(Boolean);
const DIRS = (process.env['BENCH_QP_DIRS'] ?? 'down,up').split(',').filter(Boolean) as ('down' | 'up')[];
const MEM = Number(process.env['BENCH_QP_MEM'] ?? 256);
const GUEST_DIR = process.env['BENCH_QEMU_GUEST_DIR'] ?? QEMU_GUEST_DIR;
const KERNEL = join(GUEST_DIR, 'bzImage');
const INITRD = join(GUEST_DIR, 'initrd.gz');
const BYTES = MB << 20;
/** Where QEMU's filter-dump writes each NIC's frames (what the guest's NIC sees), for a look at the segments; none when unset. */
const PCAP_DIR = process.env['BENCH_QP_PCAP'];
/** One transfer's limit: 48 MiB at 5 Mbit/s on a starved TCG guest is about 80 s. */
const TRANSFER_MS = Math.max(120_000, BYTES / 40);
const BOOT_MS = 180_000;
/** How long the guest waits, by its own clock, for both NICs and their addresses (well inside BOOT_MS). */
const READY_S = 90;
const TSLIRP_MAC = '52:54:00:12:34:56';
const LIBSLIRP_MAC = '52:54:00:12:34:57';

const missing = missingRequirements([daemonReq, command('qemu-system-x86_64'), command('cpio'), command('gzip'),
  file(KERNEL, 'build it with scripts/build-qemu-guest.sh'), file(INITRD, 'build it with scripts/build-qemu-guest.sh')]);
if (missing.length > 0) {
  console.log(`qemu-path: skipped, missing ${missing.join(', ')}`);
  process.exit(0);
}
const kvm = (() => {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
})();

/** The module list of each NIC model in the guest image (scripts/build-qemu-guest.sh). */
const MODULES: Record<string, string> = { 'e1000': 'e1000', 'virtio-net-pci': 'virtio' };

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
while read -r m; do insmod "/lib/modules/$m" || echo "TSLIRP-QP-INSMOD-FAILED $m"; done < "/lib/modules/$mods.list"
# Bounded by the guest's clock, not by a count of sleeps: under TCG on a loaded host the NICs'
# probe once took longer than a fixed count allowed, and the guest came up with no address.
up() { cut -d. -f1 /proc/uptime; }
deadline=$(( $(up) + ${READY_S} ))
while { [ ! -e /sys/class/net/eth0 ] || [ ! -e /sys/class/net/eth1 ]; } && [ "$(up)" -lt $deadline ]; do sleep 0.2; done
ip link set lo up
set --
for n in eth0 eth1; do
  [ -e /sys/class/net/$n ] || continue
  if [ "$(cat /sys/class/net/$n/address)" = ${TSLIRP_MAC} ]; then a=10.0.2.15; else a=10.0.3.15; fi
  # Until the address shows on the link (a failed add or up is tried again), within the deadline.
  while :; do
    ip addr add $a/24 dev $n 2>/dev/null; ip link set $n up
    if ip -o -4 addr show dev $n | grep -q " $a/24 "; then set -- "$@" "$n=$a"; break; fi
    [ "$(up)" -lt $deadline ] || break
    sleep 0.5
  done
done
echo "TSLIRP-QP-READY $* nics=$(ls /sys/class/net | tr '\n' ',')"
while read -r cmd host port n id; do
  t0=$(cut -d' ' -f1 /proc/uptime)
  case "$cmd" in
    down) wget -q -O /dev/null "http://$host:$port/$n"; rc=$? ;;
    up) dd if=/dev/zero bs=65536 count=$((n * 16)) 2>/dev/null | nc "$host" "$port"; rc=$? ;;
    quit) break ;;
    *) rc=x ;;
  esac
  echo "TSLIRP-QP-RES $id $rc $t0 $(cut -d' ' -f1 /proc/uptime)"
done < /dev/ttyS0
poweroff -f
`;

/** The guest's initramfs with an archive appended that holds only `init` (later files win). */
function initrdWith(dir: string): string {
  const root = join(dir, 'root');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'init'), INIT);
  chmodSync(join(root, 'init'), 0o755);
  const cpio = spawnSync('sh', ['-c', 'echo init | cpio -o -H newc 2>/dev/null | gzip -1'], { cwd: root, maxBuffer: 1 << 20 });
  if (cpio.status !== 0) throw new Error(`cpio: ${cpio.stderr.toString()}`);
  const initrd = join(dir, 'initrd-qp.gz');
  writeFileSync(initrd, Buffer.concat([readFileSync(INITRD), cpio.stdout]));
  return initrd;
}

type Side = 'tslirp' | 'libslirp';
interface Result { mbps: number; bytes: number; qemuS: number; vcpuS: number; mainS: number; daemonS: number; vcpuWaitS: number; daemonWaitS: number; seconds: number }

const listen = async (server: net.Server): Promise<number> => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
};

/** Host sink for uploads: counts bytes and closes the connection once `expect` arrived. */
function startSink(): { server: net.Server; expect: (n: number) => Promise<number> } {
  let waiting: { n: number; resolve: (got: number) => void } | undefined;
  const server = net.createServer((s) => {
    let got = 0;
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (waiting !== undefined && got >= waiting.n) {
        waiting.resolve(got);
        waiting = undefined;
        s.destroy();
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      waiting?.resolve(got);
      waiting = undefined;
    });
  });
  return { server, expect: (n) => new Promise((resolve) => { waiting = { n, resolve }; }) };
}

const group = (name: string): string => (name.startsWith('CPU ') ? 'vcpu' : 'main');
const gb = (bytes: number): number => bytes / 1e9;
const f2 = (x: number): string => x.toFixed(2);
const load = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

async function metricsText(api: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: api, path: '/metrics', timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', () => resolve(''));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(''));
    req.end();
  });
}

async function cell(nic: string, dir: string, web: number, sink: ReturnType<typeof startSink>, sinkPort: number): Promise<void> {
  const sock = join(dir, `tslirp-${nic}.sock`);
  const api = join(dir, `api-${nic}.sock`);
  const initrd = initrdWith(join(dir, nic));
  const daemon: Daemon = await startDaemon(['--stream', `unix:${sock}`, '--api', `unix:${api}`, '--log-level', 'info'], { startTimeoutMs: 60_000 });
  const qemu = new Proc(`qemu ${nic}`, 'qemu-system-x86_64', [
    // debug-threads names QEMU's threads (the vCPU's "CPU 0/TCG"), which the CPU split goes by.
    '-name', 'tslirp-qp,debug-threads=on',
    '-accel', kvm ? 'kvm' : 'tcg', '-m', String(MEM), '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
    '-kernel', KERNEL, '-initrd', initrd,
    '-append', `console=ttyS0 quiet panic=-1 mods=${MODULES[nic] ?? 'e1000'}`,
    '-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`,
    '-device', `${nic},netdev=n0,mac=${TSLIRP_MAC},romfile=`,
    '-netdev', 'user,id=n1,net=10.0.3.0/24',
    '-device', `${nic},netdev=n1,mac=${LIBSLIRP_MAC},romfile=`,
    ...(PCAP_DIR === undefined ? [] : ['-object', `filter-dump,id=d0,netdev=n0,file=${join(PCAP_DIR, `${nic}-tslirp.pcap`)}`, '-object', `filter-dump,id=d1,netdev=n1,file=${join(PCAP_DIR, `${nic}-libslirp.pcap`)}`]),
  ], ['pipe', 'pipe', 'pipe']);
  const m0 = await metricsText(api);
  try {
    const ready = await qemu.waitFor(/TSLIRP-QP-READY ([^\r\n]*)/, BOOT_MS);
    if (!ready[1]!.includes('10.0.2.15') || !ready[1]!.includes('10.0.3.15')) throw new Error(`guest addresses: ${ready[1]}\n${qemu.tail()}`);
    let seq = 0;
    const run = async (side: Side, way: 'down' | 'up'): Promise<Result> => {
      const id = `r${++seq}`;
      const host = side === 'tslirp' ? '10.0.2.2' : '10.0.3.2';
      const sunk = way === 'up' ? sink.expect(BYTES) : undefined;
      const q0 = cpuSeconds(qemu.child.pid!);
      const d0 = cpuSeconds(daemon.pid);
      const t0 = threadsCpu(qemu.child.pid!);
      const dt0 = threadsCpu(daemon.pid);
      const start = performance.now();
      qemu.child.stdin!.write(`${way} ${host} ${way === 'down' ? web : sinkPort} ${way === 'down' ? BYTES : MB} ${id}\n`);
      const res = await qemu.waitFor(new RegExp(`TSLIRP-QP-RES ${id} (\\S+) (\\S+) (\\S+)`), TRANSFER_MS);
      const seconds = (performance.now() - start) / 1000;
      const q1 = cpuSeconds(qemu.child.pid!);
      const d1 = cpuSeconds(daemon.pid);
      const split = groupDelta(t0, threadsCpu(qemu.child.pid!), group);
      // The daemon's main thread (the event loop: links, the stack, sockets); its helper threads only add CPU.
      const mainWait = (ts: readonly ThreadCpu[]): number => ts.find((t) => t.tid === daemon.pid)?.waitS ?? 0;
      const loopWait = mainWait(threadsCpu(daemon.pid)) - mainWait(dt0);
      const got = sunk === undefined ? BYTES : await sunk;
      if (res[1] !== '0' && !(way === 'up' && got >= BYTES)) throw new Error(`${side} ${way}: guest exit status ${res[1]}, ${got} bytes\n${qemu.tail()}`);
      if (got < BYTES) throw new Error(`${side} ${way}: the sink got ${got} of ${BYTES} bytes`);
      return {
        mbps: (BYTES * 8) / seconds / 1e6, bytes: BYTES, seconds,
        qemuS: q1 - q0, vcpuS: split.get('vcpu')?.cpuS ?? 0, mainS: split.get('main')?.cpuS ?? 0,
        daemonS: side === 'tslirp' ? d1 - d0 : 0, vcpuWaitS: split.get('vcpu')?.waitS ?? 0, daemonWaitS: side === 'tslirp' ? loopWait : 0,
      };
    };
    for (const way of DIRS) {
      const pairs: { a: Result; b: Result }[] = [];
      for (let p = 0; p < PAIRS; p++) {
        const la = load();
        let a: Result;
        let b: Result;
        if (p % 2 === 0) {
          a = await run('tslirp', way);
          b = await run('libslirp', way);
        } else {
          b = await run('libslirp', way);
          a = await run('tslirp', way);
        }
        pairs.push({ a, b });
        const per = (r: Result): string => `${r.mbps.toFixed(0)} Mbit/s, CPU s/GB vCPU ${f2(r.vcpuS / gb(r.bytes))} QEMU-other ${f2(r.mainS / gb(r.bytes))}${r.daemonS > 0 ? ` daemon ${f2(r.daemonS / gb(r.bytes))}` : ''}, vCPU waited ${((100 * r.vcpuWaitS) / r.seconds).toFixed(0)} %${r.daemonS > 0 ? `, daemon waited ${((100 * r.daemonWaitS) / r.seconds).toFixed(0)} %` : ''}`;
        console.log(`  ${nic} ${way} pair ${p + 1} (load ${la}): tslirp ${per(a)} | libslirp ${per(b)}`);
      }
      const ratio = median(pairs.map(({ a, b }) => a.mbps / b.mbps));
      const cpuA = (r: Result): number => (r.qemuS + r.daemonS) / gb(r.bytes);
      const cpuB = (r: Result): number => r.qemuS / gb(r.bytes);
      const netA = (r: Result): number => (r.mainS + r.daemonS) / gb(r.bytes);
      const netB = (r: Result): number => r.mainS / gb(r.bytes);
      const arrow = way === 'down' ? 'host→guest' : 'guest→host';
      console.log(`${nic.padEnd(15)} ${arrow}: tslirp ${median(pairs.map((x) => x.a.mbps)).toFixed(0)} Mbit/s, libslirp ${median(pairs.map((x) => x.b.mbps)).toFixed(0)} Mbit/s, ratio ${f2(ratio)}×; ` +
        `CPU s/GB all (QEMU + daemon) ${f2(median(pairs.map((x) => cpuA(x.a))))} vs ${f2(median(pairs.map((x) => cpuB(x.b))))} (${f2(median(pairs.map((x) => cpuA(x.a) / cpuB(x.b))))}×), ` +
        `network side (QEMU's non-vCPU threads + daemon) ${f2(median(pairs.map((x) => netA(x.a))))} vs ${f2(median(pairs.map((x) => netB(x.b))))} (${f2(median(pairs.map((x) => netA(x.a) / netB(x.b))))}×) [load ${load()}]`);
    }
  } finally {
    qemu.child.stdin?.write('quit\n');
    await qemu.wait(10_000).catch(() => undefined);
    await qemu.stop();
    const m1 = await metricsText(api);
    const counters = (text: string): Map<string, number> => new Map(text.split('\n').filter((l) => /^tslirp_\S*(rto|retransmit|dup_ack|dsack|sack)\S*\s/i.test(l)).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
    const c0 = counters(m0);
    const moved = [...counters(m1)].map(([k, v]) => [k, v - (c0.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
    if (moved.length > 0) console.log(`  ${nic} daemon TCP counters over the cell: ${moved.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    await daemon.stop();
  }
}

async function main(): Promise<void> {
  const dir = tempDir('tslirp-qp-');
  const body = Buffer.alloc(BYTES, 0x5a);
  const web = http.createServer((req, res) => {
    const n = Math.min(BYTES, Number((req.url ?? '/').slice(1)) || 0);
    res.writeHead(200, { 'content-length': String(n) });
    res.end(body.subarray(0, n));
  });
  const webPort = await listen(web);
  const sink = startSink();
  const sinkPort = await listen(sink.server);
  console.log(`qemu-path: ${kvm ? 'KVM' : 'TCG (no /dev/kvm)'}, ${os.cpus().length} cores, ${MB} MiB per transfer, ${PAIRS} pairs, guest ${GUEST_DIR}, load ${load()}`);
  try {
    for (const nic of NICS) await cell(nic, dir, webPort, sink, sinkPort);
  } finally {
    web.close();
    sink.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
