/**
 * Frames per second through the sans-IO stack, in process, against a baseline measured in
 * the same run: parsing the same frames (Ethernet + IPv4 + L4 with checksums) and doing
 * nothing else. The ratio is what the stack's logic and reply building cost on top of parsing.
 *
 * Cases: ping to the gateway (echo reply built and emitted), 64 and 1472 bytes of payload;
 * UDP from the guest through NAT (to a host that drops everything), 64 and 1472 bytes.
 */
import { ETHERTYPE, parseEthernet, writeEthernet } from '../src/ethernet/wire.js';
import { ICMP_TYPE, icmpLength, parseIcmp, writeIcmp } from '../src/ipv4/icmp-wire.js';
import { IP_PROTO, ipv4Length, parseIpv4, pseudoSum, writeIpv4, type Ipv4 } from '../src/ipv4/wire.js';
import type { Host } from '../src/net/seams.js';
import { resolveStackConfig } from '../src/stack/config.js';
import { Stack } from '../src/stack/stack.js';
import { parseUdp, udpLength, writeUdp } from '../src/udp/wire.js';
import { parseIpv4Addr, parseMac } from '../src/util/bytes.js';
import { isDrop } from '../src/util/drops.js';
import { systemClock, systemRandom } from '../src/util/clock.js';

const GUEST = parseIpv4Addr('10.0.2.15')!;
const GUEST_MAC = parseMac('52:54:00:12:34:56')!;
const config = resolveStackConfig();

function frame(protocol: number, dst: number, l4: Uint8Array): Uint8Array {
  const ip: Ipv4 = { dscpEcn: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol, src: GUEST, dst, options: new Uint8Array(0), payload: l4 };
  const out = new Uint8Array(14 + ipv4Length(ip));
  writeEthernet({ dst: config.gatewayMac, src: GUEST_MAC, vlan: undefined, etherType: ETHERTYPE.IPV4, payload: new Uint8Array(0) }, out);
  writeIpv4(ip, out, 14);
  return out;
}

function ping(size: number): Uint8Array {
  const m = { type: ICMP_TYPE.ECHO_REQUEST, code: 0, rest: 0x00010001, payload: new Uint8Array(size).fill(7) };
  const l4 = new Uint8Array(icmpLength(m));
  writeIcmp(m, l4);
  return frame(IP_PROTO.ICMP, config.host, l4);
}

function udp(size: number): Uint8Array {
  const dst = parseIpv4Addr('192.0.2.10')!;
  const u = { srcPort: 40000, dstPort: 9, payload: new Uint8Array(size).fill(9) };
  const l4 = new Uint8Array(udpLength(u));
  writeUdp(u, pseudoSum(GUEST, dst, IP_PROTO.UDP), l4);
  return frame(IP_PROTO.UDP, dst, l4);
}

/** Parses like the stack must, and nothing more. */
function parseOnly(f: Uint8Array): number {
  const e = parseEthernet(f);
  if (isDrop(e)) return 0;
  const p = parseIpv4(e.payload);
  if (isDrop(p)) return 0;
  if (p.protocol === IP_PROTO.ICMP) {
    const m = parseIcmp(p.payload);
    return isDrop(m) ? 0 : m.payload.length;
  }
  const u = parseUdp(p.payload, pseudoSum(p.src, p.dst, IP_PROTO.UDP));
  return isDrop(u) ? 0 : u.payload.length;
}

/** Sockets the stack asked to bind (a NAT mapping's), answered once the first frame is in. */
const binds: number[] = [];
const nullHost: Host = {
  udpOpen: () => undefined, udpSend: () => undefined, tcpConnect: () => undefined, tcpWrite: () => 0,
  tcpEnd: () => undefined, tcpPause: () => undefined, tcpReset: () => undefined, close: () => undefined,
  tcpListen: () => undefined, tcpAdopt: () => undefined, tcpRefuse: () => undefined, udpBind: (id) => { binds.push(id); }, udpSendTo: () => undefined,
};

/** Frames per second of `body` over about `ms` milliseconds (after a warm-up). */
function rate(body: () => void, ms = 600): number {
  for (let i = 0; i < 20_000; i++) body();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 1_000; i++) body();
    n += 1_000;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

const fmt = (x: number): string => `${(x / 1e6).toFixed(2)} M/s`;
console.log('case                  stack        parse-only   stack/parse');
for (const [name, f] of [['ping 64 B', ping(64)], ['ping 1472 B', ping(1472)], ['udp-nat 64 B', udp(64)], ['udp-nat 1472 B', udp(1472)]] as const) {
  let emitted = 0;
  const stack = new Stack(config, { clock: systemClock, random: systemRandom(), emit: () => { emitted++; }, host: nullHost });
  // The guest's MAC is learned from its first frame, as in a real session.
  stack.receiveFrame(f);
  for (const id of binds.splice(0)) stack.udpBound(id, { addr: 0, port: 50000 });
  const s = rate(() => { stack.receiveFrame(f); });
  let sink = 0;
  const p = rate(() => { sink += parseOnly(f); });
  console.log(`${name.padEnd(20)}  ${fmt(s).padEnd(11)}  ${fmt(p).padEnd(11)}  ${(s / p).toFixed(2)}${sink < 0 || emitted < 0 ? '!' : ''}`);
  if (stack.counters.total() !== 0) throw new Error(`unexpected drops: ${JSON.stringify(stack.counters.snapshot())}`);
}
