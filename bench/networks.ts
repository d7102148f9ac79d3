/**
 * Guest-to-guest TCP throughput on one tslirp network: iperf3 between two network-namespace
 * guests that share a network (`--network lab`, both on the dgram listener, leases from its
 * pool), both directions, at MTU 1500 and 65493, against the bridge alone: the same two
 * namespaces' kind of path with no tslirp in it (TAP ↔ socat ↔ UDP ↔ socat ↔ TAP), as
 * bench/tcp.ts's "bridge alone" reference on the dgram path.
 *
 * Both paths cross two TAPs and two socats; tslirp's adds its process between the two UDP
 * legs (one datagram in, the switch, one datagram out), so the ratio is what the switch and
 * its link costs over the bridging that any dgram guest pays anyway. Guest-to-guest frames
 * never reach the stack (no NAT, no TCP of ours): the guests' own Linux TCP runs end to end.
 * A second reference puts a plain relay where tslirp sits: a Node process that passes each
 * datagram from one socat to the other (no switch, no sessions); tslirp against it is the
 * cost of the network itself over a Node hop, reported beside the floor's ratio.
 *
 * Runs alternate A B A B with BENCH_PAIRS pairs per cell (default 5) of BENCH_SECONDS each
 * (default 3); the ratio is the median of pairwise ratios tslirp / bridge alone. Floor:
 * ≥ 0.7 in every cell. Writes a bar chart (SVG) to BENCH_CHART (default
 * $TMPDIR/tslirp-bench-networks.svg) and prints it as text.
 *
 * Needs root, iperf3, socat, busybox and a built daemon (npm run build).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { dgramGuest } from './lib/dgram-guest.js';
import { iperf as iperfRun } from './lib/iperf.js';
import { cpuSeconds, freeUdp, median } from './lib/measure.js';
import { command, daemon as daemonReq, DGRAM_BRIDGE_BUFFER, missingRequirements, NetnsGuest, Proc, root, until } from '../test/helpers/guests.js';

const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
/** UDP carries at most 65507 bytes: a dgram link's MTU ceiling is 65493 (less the Ethernet header). */
const MTUS = (process.env['BENCH_MTUS'] ?? '1500,65493').split(',').map(Number);
const CHART = process.env['BENCH_CHART'] ?? join(tmpdir(), 'tslirp-bench-networks.svg');
const FLOOR = 0.7;
const IPERF_PORT = 5201;

const missing = missingRequirements([root, daemonReq, command('iperf3'), command('socat'), command('busybox')]);
if (missing.length > 0) {
  console.error(`bench/networks.ts: cannot run, missing ${missing.join('; ')}`);
  process.exit(process.env['CI'] === 'true' ? 1 : 0);
}

/**
 * Kernel buffers of every UDP socket on the path, each way: the daemon's dgram listener's
 * (DGRAM_SOCKET_BUFFER_BYTES), which the test guests' bridges use too (DGRAM_BRIDGE_BUFFER).
 * The default 208 KiB holds three 64 KiB frames, and a bridge whose socket overflows loses
 * datagrams whatever sits between — the reference paths too.
 */
const SOCKET_BUFFER = DGRAM_BRIDGE_BUFFER;


/** Two guests, iperf3 -s listening in the second at `server`. */
interface Pair {
  readonly name: string;
  readonly client: NetnsGuest;
  readonly server: string;
  readonly daemon: Daemon | undefined;
  stop(): Promise<void>;
}

async function startServer(g: NetnsGuest, addr: string): Promise<Proc> {
  const p = g.spawn(`iperf3 -s ${g.ns}`, ['iperf3', '-s', '-B', addr, '-p', String(IPERF_PORT)]);
  const ok = await until(() => spawnSync('ip', ['netns', 'exec', g.ns, 'ss', '-Hltn', `sport = :${IPERF_PORT}`], { encoding: 'utf8' }).stdout.trim() !== '', 10_000);
  if (!ok) throw new Error(`iperf3 -s did not listen in ${g.ns}: ${p.tail()}`);
  return p;
}

async function tslirpPair(mtu: number): Promise<Pair> {
  const daemon = await startDaemon(['--network', 'lab', '--dgram', 'udp:127.0.0.1:0', '--mtu', String(mtu), '--log-level', 'warn']);
  const l = daemon.dgram();
  const a = await NetnsGuest.create({ kind: 'dgram', ...l });
  const b = await NetnsGuest.create({ kind: 'dgram', ...l });
  const la = await a.dhcp();
  const lb = await b.dhcp();
  if (la.lease?.['ip'] === undefined || lb.lease?.['ip'] === undefined || lb.lease['mtu'] !== String(mtu)) {
    throw new Error(`tslirp: leases ${JSON.stringify(la.lease)} ${JSON.stringify(lb.lease)}`);
  }
  const server = await startServer(b, lb.lease['ip']);
  return {
    name: 'tslirp', client: a, server: lb.lease['ip'], daemon,
    async stop() {
      await server.stop();
      await a.destroy();
      await b.destroy();
      await daemon.stop();
    },
  };
}

async function bridgePair(mtu: number): Promise<Pair> {
  const pa = await freeUdp();
  const pb = await freeUdp();
  const a = await dgramGuest(pb, pa);
  const b = await dgramGuest(pa, pb);
  await a.sh('ip addr add 10.0.2.15/24 dev "$1" && ip link set dev "$1" mtu "$2"', [a.tap, String(mtu)]);
  await b.sh('ip addr add 10.0.2.16/24 dev "$1" && ip link set dev "$1" mtu "$2"', [b.tap, String(mtu)]);
  const server = await startServer(b, '10.0.2.16');
  return {
    name: 'bridge alone', client: a, server: '10.0.2.16', daemon: undefined,
    async stop() {
      await server.stop();
      await a.destroy();
      await b.destroy();
    },
  };
}

/** A Node process passing datagrams between two UDP peers on loopback: tslirp's place, nothing of its work. */
const RELAY = `
const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: ${SOCKET_BUFFER}, sendBufferSize: ${SOCKET_BUFFER} });
const [a, b] = process.argv.slice(1).map(Number);
s.on('message', (m, r) => s.send(m, r.port === a ? b : a, '127.0.0.1'));
s.bind(Number(process.argv[3]), '127.0.0.1', () => console.log('relay ready'));
`;

async function relayPair(mtu: number): Promise<Pair> {
  const pa = await freeUdp();
  const pb = await freeUdp();
  const pr = await freeUdp();
  const relay = new Proc('node relay', process.execPath, ['-e', RELAY, String(pa), String(pb), String(pr)]);
  await relay.waitFor(/relay ready/, 10_000);
  const a = await dgramGuest(pr, pa);
  const b = await dgramGuest(pr, pb);
  await a.sh('ip addr add 10.0.2.15/24 dev "$1" && ip link set dev "$1" mtu "$2"', [a.tap, String(mtu)]);
  await b.sh('ip addr add 10.0.2.16/24 dev "$1" && ip link set dev "$1" mtu "$2"', [b.tap, String(mtu)]);
  const server = await startServer(b, '10.0.2.16');
  return {
    name: 'node relay', client: a, server: '10.0.2.16', daemon: undefined,
    async stop() {
      await server.stop();
      await a.destroy();
      await b.destroy();
      await relay.stop();
    },
  };
}

/** One iperf3 run between the pair's guests; bits per second as the receiver counted them (0 on failure, reported). */
const iperf = (p: Pair, reverse: boolean): Promise<number> => iperfRun(p.client, p.server, IPERF_PORT, SECONDS, reverse, p.name);

interface Cell {
  readonly label: string;
  readonly tslirp: number;
  readonly bridge: number;
  readonly relay: number;
  readonly ratio: number;
}

/** A grouped bar chart: per cell, tslirp and the bridge alone (median Gbit/s), ratio above. */
function svgChart(cells: readonly Cell[]): string {
  const W = 180;
  const H = 240;
  const top = Math.max(...cells.flatMap((c) => [c.tslirp, c.bridge, c.relay]), 1e-9);
  const bar = (x: number, v: number, fill: string): string => {
    const h = (v / top) * (H - 60);
    return `<rect x="${x}" y="${H - 30 - h}" width="50" height="${h}" fill="${fill}"/><text x="${x + 25}" y="${H - 34 - h}" font-size="10" text-anchor="middle">${(v / 1e9).toFixed(2)}</text>`;
  };
  const groups = cells.map((c, i) => {
    const x0 = 40 + i * W;
    return `${bar(x0, c.tslirp, '#3b6ea8')}${bar(x0 + 52, c.bridge, '#aaa')}${bar(x0 + 104, c.relay, '#d9a441')}` +
      `<text x="${x0 + 77}" y="${H - 15}" font-size="10" text-anchor="middle">${c.label}</text>` +
      `<text x="${x0 + 77}" y="${H - 2}" font-size="10" text-anchor="middle">ratio ${c.ratio.toFixed(2)}</text>`;
  });
  const width = Math.max(40 + cells.length * W, 840); // the title needs about 840 px
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 30}" font-family="sans-serif">` +
    `<text x="10" y="14" font-size="12">Guest to guest on one network, iperf3 Gbit/s (median): tslirp (blue), bridge alone (grey), node relay (ochre); ratio tslirp / bridge alone, floor ${FLOOR}×</text>` +
    `<g transform="translate(0,20)">${groups.join('')}</g></svg>\n`;
}

function textChart(cells: readonly Cell[]): string {
  const top = Math.max(...cells.flatMap((c) => [c.tslirp, c.bridge, c.relay]), 1e-9);
  const bar = (v: number): string => '#'.repeat(Math.round((v / top) * 40)).padEnd(40);
  return cells.flatMap((c) => [
    `${c.label.padEnd(24)} tslirp ${bar(c.tslirp)} ${(c.tslirp / 1e9).toFixed(2)} Gbit/s`,
    `${''.padEnd(24)} bridge ${bar(c.bridge)} ${(c.bridge / 1e9).toFixed(2)} Gbit/s  (ratio ${c.ratio.toFixed(2)})`,
    `${''.padEnd(24)} relay  ${bar(c.relay)} ${(c.relay / 1e9).toFixed(2)} Gbit/s`,
  ]).join('\n');
}

async function main(): Promise<void> {
  const rows: string[] = [];
  const cells: Cell[] = [];
  let floorOk = true;
  for (const mtu of MTUS) {
    const a = await tslirpPair(mtu);
    const b = await bridgePair(mtu);
    const c = await relayPair(mtu);
    try {
      for (const reverse of [false, true]) {
        const dirName = reverse ? 'server→client' : 'client→server';
        const as: number[] = [];
        const bs: number[] = [];
        const cs: number[] = [];
        const ratios: number[] = [];
        const relayRatios: number[] = [];
        let cpu = 0;
        let bytes = 0;
        for (let i = 0; i < PAIRS; i++) {
          const cpu0 = cpuSeconds(a.daemon!.pid);
          const x = await iperf(a, reverse);
          cpu += cpuSeconds(a.daemon!.pid) - cpu0;
          bytes += (x * SECONDS) / 8;
          const y = await iperf(b, reverse);
          const z = await iperf(c, reverse);
          as.push(x);
          bs.push(y);
          cs.push(z);
          if (y > 0) ratios.push(x / y);
          if (z > 0) relayRatios.push(x / z);
        }
        const ratio = ratios.length > 0 ? median(ratios) : 0;
        if (ratio < FLOOR) floorOk = false;
        const gb = bytes / 1e9;
        cells.push({ label: `MTU ${mtu} ${reverse ? 'reverse' : 'forward'}`, tslirp: median(as), bridge: median(bs), relay: median(cs), ratio });
        rows.push(
          `MTU ${String(mtu).padStart(5)} guest→guest ${dirName}: tslirp network ${(median(as) / 1e9).toFixed(2)} Gbit/s, bridge alone ${(median(bs) / 1e9).toFixed(2)}, ` +
            `node relay ${(median(cs) / 1e9).toFixed(2)}; ratio to the bridge alone ${ratio.toFixed(2)} (pairs ${ratios.map((r) => r.toFixed(2)).join(' ')}), ` +
            `to the node relay ${(relayRatios.length > 0 ? median(relayRatios) : 0).toFixed(2)}; tslirp CPU ${gb > 0 ? (cpu / gb).toFixed(2) : 'n/a'} s/GB`,
        );
        console.log(rows[rows.length - 1]);
      }
    } finally {
      await a.stop();
      await b.stop();
      await c.stop();
    }
  }
  console.log('\n' + rows.join('\n'));
  console.log('\n' + textChart(cells));
  writeFileSync(CHART, svgChart(cells));
  console.log(`chart: ${CHART}`);
  console.log(floorOk ? `floor met: tslirp ≥ ${FLOOR}× the bridge alone in every cell` : `FLOOR MISSED: tslirp < ${FLOOR}× the bridge alone in some cell`);
}

await main();
