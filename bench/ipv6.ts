/**
 * IPv6 against IPv4 through tslirp, in the same run: iperf3 in one network-namespace guest
 * (a DHCP lease and a SLAAC address on the same TAP) against one `iperf3 -s` on the host,
 * reached as 10.0.2.2 (→ 127.0.0.1) and as fd00::2 (→ ::1), both directions, at MTU 1500
 * (stream path) and 65520 (dgram path, 65493: see bench/tcp.ts). Runs alternate v4 v6 with
 * BENCH_PAIRS pairs per cell; the ratio is the median of pairwise ratios v6/v4. Floor (issue
 * 14): ≥ 0.9 in every cell. libslirp's IPv6 beside tslirp's: bench/tcp.ts's IPv6 cells
 * (`BENCH_ONLY=ipv6 npm run bench -- tcp`).
 *
 * Needs root, iperf3, qemu-system-x86_64, socat and a built daemon (npm run build).
 * Environment: BENCH_PAIRS (default 5), BENCH_SECONDS (default 3), BENCH_MTUS.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { startDaemon } from '../test/helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, root, tempDir } from '../test/helpers/guests.js';
import { dgramGuest } from './lib/dgram-guest.js';
import { iperf } from './lib/iperf.js';
import { freeUdp, median } from './lib/measure.js';
import { slaac } from './lib/slaac.js';

const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const MTUS = (process.env['BENCH_MTUS'] ?? '1500,65520').split(',').map(Number);
const FLOOR = 0.9;

const missing = missingRequirements([root, daemonReq, command('iperf3'), command('qemu-system-x86_64'), command('socat')]);
if (missing.length > 0) {
  console.error(`bench/ipv6.ts: cannot run, missing ${missing.join('; ')}`);
  process.exit(process.env['CI'] === 'true' ? 1 : 0);
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '::', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

const dir = tempDir('tslirp-bench6-');
const port = await freePort();
// One server, dual-stack (iperf3 listens on :: and takes IPv4 clients as mapped addresses).
const server = new Proc('iperf3 -s', 'iperf3', ['-s', '-p', String(port)]);
await new Promise((r) => setTimeout(r, 300));
let failed = false;
try {
  console.log(`IPv6 vs IPv4 through tslirp, iperf3 ${SECONDS} s, ${PAIRS} pairs per cell (Mbit/s, median; ratio = median of v6/v4 pairs, floor ${FLOOR})`);
  for (const mtu of MTUS) {
    const dgram = mtu > 1500;
    const linkMtu = dgram ? Math.min(mtu, 65493) : mtu;
    const sock = join(dir, `tslirp-${mtu}.sock`);
    const d = await startDaemon([dgram ? '--dgram' : '--stream', dgram ? 'udp:127.0.0.1:0' : `unix:${sock}`, '--mtu', String(linkMtu), '--log-level', 'warn']);
    const g = dgram ? await dgramGuest(d.dgram().port, await freeUdp()) : await NetnsGuest.create({ kind: 'stream-unix', path: sock });
    try {
      const { lease } = await g.dhcp();
      if (lease === undefined) throw new Error('no DHCP lease');
      if (!(await slaac(g, g.tap))) throw new Error('no SLAAC address');
      for (const reverse of [false, true]) {
        const v4: number[] = [];
        const v6: number[] = [];
        const ratios: number[] = [];
        for (let i = 0; i < PAIRS; i++) {
          const a = await iperf(g, '10.0.2.2', port, SECONDS, reverse, `tslirp v4 ${mtu}`);
          const b = await iperf(g, 'fd00::2', port, SECONDS, reverse, `tslirp v6 ${mtu}`);
          v4.push(a / 1e6);
          v6.push(b / 1e6);
          if (a > 0) ratios.push(b / a);
        }
        const ratio = median(ratios);
        const cell = `MTU ${linkMtu} ${reverse ? 'host→guest' : 'guest→host'}`;
        console.log(`${cell.padEnd(26)} v4 ${median(v4).toFixed(0).padStart(6)}  v6 ${median(v6).toFixed(0).padStart(6)}  ratio ${ratio.toFixed(2)}${ratio < FLOOR ? '  BELOW FLOOR' : ''}`);
        if (!(ratio >= FLOOR)) failed = true;
      }
    } finally {
      await g.destroy();
      await d.stop();
    }
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
