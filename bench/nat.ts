/**
 * UDP through each NAT behaviour, in process: 10,000 guest flows (100 guest ports × 100
 * peers, the peers 10 ports on each of 10 addresses) sent round after round through the
 * stack, whose host counts sockets and drops what it is asked to send (the system calls are
 * one send per datagram in every mode, so what differs between modes is the engine's work).
 * Per mode: guest datagrams per second through the NAT, host sockets per flow (EIM must keep
 * one per guest endpoint: 0.01), memory per mapping (heap growth over the mappings created),
 * and the ratio to today's connected-socket path — a connected socket per 5-tuple, the
 * symmetric mode (apdm + apdf) — measured in the same run, alternating. Floor: 0.8×.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ETHERTYPE, writeEthernet } from '../src/ethernet/wire.js';
import { IP_PROTO, ipv4Length, pseudoSum, writeIpv4, type Ipv4 } from '../src/ipv4/wire.js';
import type { NatFiltering, NatMapping } from '../src/nat/behaviour.js';
import type { Host } from '../src/net/seams.js';
import { resolveStackConfig } from '../src/stack/config.js';
import { Stack } from '../src/stack/stack.js';
import { udpLength, writeUdp } from '../src/udp/wire.js';
import { parseIpv4Addr, parseMac } from '../src/util/bytes.js';
import { systemClock, systemRandom } from '../src/util/clock.js';
import { median } from './lib/measure.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const FLOOR = 0.8;
const GUEST = parseIpv4Addr('10.0.2.15')!;
const GUEST_MAC = parseMac('52:54:00:12:34:56')!;
const GUEST_PORTS = 100;
const PEER_ADDRS = 10;
const PEER_PORTS = 10;
const FLOWS = GUEST_PORTS * PEER_ADDRS * PEER_PORTS;

const MODES: readonly { name: string; mapping: NatMapping; filtering: NatFiltering }[] = [
  { name: 'symmetric (today)', mapping: 'apdm', filtering: 'apdf' },
  { name: 'eim+eif (default)', mapping: 'eim', filtering: 'eif' },
  { name: 'eim+adf', mapping: 'eim', filtering: 'adf' },
  { name: 'eim+apdf', mapping: 'eim', filtering: 'apdf' },
  { name: 'adm+adf', mapping: 'adm', filtering: 'adf' },
  { name: 'apdm+eif', mapping: 'apdm', filtering: 'eif' },
];

/** One guest frame per flow, 64 bytes of payload. */
function frames(gatewayMac: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let g = 0; g < GUEST_PORTS; g++)
    for (let a = 0; a < PEER_ADDRS; a++)
      for (let p = 0; p < PEER_PORTS; p++) {
        const dst = parseIpv4Addr(`192.0.2.${10 + a}`)!;
        const u = { srcPort: 40000 + g, dstPort: 5000 + p, payload: new Uint8Array(64).fill(9) };
        const l4 = new Uint8Array(udpLength(u));
        writeUdp(u, pseudoSum(GUEST, dst, IP_PROTO.UDP), l4);
        const ip: Ipv4 = { dscpEcn: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: IP_PROTO.UDP, src: GUEST, dst, options: new Uint8Array(0), payload: l4 };
        const f = new Uint8Array(14 + ipv4Length(ip));
        writeEthernet({ dst: gatewayMac, src: GUEST_MAC, vlan: undefined, etherType: ETHERTYPE.IPV4, payload: new Uint8Array(0) }, f);
        writeIpv4(ip, f, 14);
        out.push(f);
      }
  return out;
}

interface Result {
  readonly pps: number;
  readonly sockets: number;
  readonly bytesPerMapping: number;
}

function run(mapping: NatMapping, filtering: NatFiltering, all: readonly Uint8Array[]): Result {
  const config = resolveStackConfig({ 'nat-mapping': mapping, 'nat-filtering': filtering });
  let sockets = 0;
  let sent = 0;
  const binds: number[] = [];
  const host: Host = {
    udpOpen: () => { sockets++; }, udpSend: () => { sent++; }, udpBind: (id) => { sockets++; binds.push(id); }, udpSendTo: () => { sent++; },
    tcpConnect: () => undefined, tcpWrite: () => 0, tcpEnd: () => undefined, tcpPause: () => undefined, tcpReset: () => undefined,
    close: () => { sockets--; }, tcpListen: () => undefined, tcpAdopt: () => undefined, tcpRefuse: () => undefined,
  };
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const stack = new Stack(config, {
    clock: systemClock, random: systemRandom(), emit: () => undefined, host,
    flowLimits: { udp: FLOWS * 2, tcp: 16, perGuest: { udp: FLOWS * 2, tcp: 16 } },
  });
  // First round: every mapping is created (and bound, as a host would answer).
  for (const f of all) {
    stack.receiveFrame(f);
    for (const id of binds.splice(0)) stack.udpBound(id, { addr: 0, port: 20000 + (id % 40000) });
  }
  gc();
  const mappings = stack.natMappings().length;
  const bytesPerMapping = (process.memoryUsage().heapUsed - heapBefore) / mappings;
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const start = performance.now();
    for (const f of all) stack.receiveFrame(f);
    rounds.push((all.length * 1000) / (performance.now() - start));
  }
  if (stack.counters.total() !== 0) throw new Error(`${mapping}+${filtering}: unexpected drops ${JSON.stringify(stack.counters.snapshot())}`);
  if (sent !== all.length * 8) throw new Error(`${mapping}+${filtering}: ${sent} datagrams reached the host, not ${all.length * 8}`);
  return { pps: median(rounds), sockets, bytesPerMapping };
}

const all = frames(resolveStackConfig().gatewayMac);
const results = new Map<string, Result[]>();
// Alternate the modes, three times each, and keep the medians.
for (let rep = 0; rep < 3; rep++)
  for (const m of MODES) results.set(m.name, [...(results.get(m.name) ?? []), run(m.mapping, m.filtering, all)]);

const base = median(results.get(MODES[0]!.name)!.map((r) => r.pps));
let floorOk = true;
console.log(`UDP NAT, ${FLOWS} guest flows (${GUEST_PORTS} guest ports x ${PEER_ADDRS * PEER_PORTS} peers), 64-byte datagrams`);
console.log('mode                 datagrams/s   sockets  sockets/flow  bytes/mapping  ratio to today');
for (const m of MODES) {
  const rs = results.get(m.name)!;
  const pps = median(rs.map((r) => r.pps));
  const ratio = pps / base;
  if (ratio < FLOOR) floorOk = false;
  const { sockets } = rs[0]!;
  console.log(
    `${m.name.padEnd(19)}  ${(pps / 1e6).toFixed(2).padStart(6)} M/s  ${String(sockets).padStart(7)}  ${(sockets / FLOWS).toFixed(3).padStart(12)}  ${median(rs.map((r) => r.bytesPerMapping)).toFixed(0).padStart(13)}  ${ratio.toFixed(2).padStart(14)}`,
  );
}
console.log(floorOk ? `floor met: every mode >= ${FLOOR}x today's connected-socket path` : `FLOOR MISSED: a mode is below ${FLOOR}x today's path`);
if (!floorOk) process.exit(process.env['CI'] === 'true' ? 1 : 0);
