/**
 * Builders of guest frames for stack tests, written with our wire modules (whose own tests
 * pin them to independent byte literals), and a parser of what the stack emits.
 */
import { ARP_LEN, ARP_OP, parseArp, writeArp, type Arp } from '../../src/arp/wire.js';
import { ETHERNET_HEADER_LEN, ETHERTYPE, parseEthernet, writeEthernet, type Ethernet } from '../../src/ethernet/wire.js';
import { ICMP_TYPE, icmpLength, parseIcmp, writeIcmp, type Icmp } from '../../src/ipv4/icmp-wire.js';
import { IP_PROTO, ipv4Length, parseIpv4, pseudoSum, writeIpv4, type Ipv4 } from '../../src/ipv4/wire.js';
import { parseTcp, tcpLength, writeTcp, type Tcp } from '../../src/tcp/wire.js';
import { parseUdp, udpLength, writeUdp, type Udp } from '../../src/udp/wire.js';
import { BROADCAST_MAC, parseIpv4Addr, parseMac, type Ipv4Addr } from '../../src/util/bytes.js';
import { isDrop } from '../../src/util/drops.js';

export const GUEST_MAC = parseMac('52:54:00:12:34:56')!;
export const GATEWAY_MAC = parseMac('52:55:0a:00:02:02')!;
export const ip = (text: string): Ipv4Addr => parseIpv4Addr(text)!;
const EMPTY = new Uint8Array(0);

export function ethernetFrame(dst: Uint8Array, etherType: number, payload: Uint8Array, src = GUEST_MAC): Uint8Array {
  const e: Ethernet = { dst, src, vlan: undefined, etherType, payload };
  const out = new Uint8Array(ETHERNET_HEADER_LEN + payload.length);
  writeEthernet(e, out);
  return out;
}

export function arpFrame(a: Partial<Arp> & Pick<Arp, 'targetIp'>, dst: Uint8Array = BROADCAST_MAC): Uint8Array {
  const full: Arp = { op: ARP_OP.REQUEST, senderMac: GUEST_MAC, senderIp: ip('10.0.2.15'), targetMac: new Uint8Array(6), ...a };
  const payload = new Uint8Array(ARP_LEN);
  writeArp(full, payload);
  return ethernetFrame(dst, ETHERTYPE.ARP, payload, full.senderMac);
}

export function ipv4Packet(p: Partial<Ipv4> & Pick<Ipv4, 'protocol' | 'payload'>): Uint8Array {
  const full: Ipv4 = { dscpEcn: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, src: ip('10.0.2.15'), dst: ip('10.0.2.2'), options: EMPTY, ...p };
  const out = new Uint8Array(ipv4Length(full));
  writeIpv4(full, out);
  return out;
}

export const ipv4Frame = (p: Partial<Ipv4> & Pick<Ipv4, 'protocol' | 'payload'>, dst: Uint8Array = GATEWAY_MAC): Uint8Array =>
  ethernetFrame(dst, ETHERTYPE.IPV4, ipv4Packet(p));

export function icmpBytes(m: Icmp): Uint8Array {
  const out = new Uint8Array(icmpLength(m));
  writeIcmp(m, out);
  return out;
}

export const echoRequest = (payload: Uint8Array, id = 0x1234, seq = 1): Uint8Array =>
  icmpBytes({ type: ICMP_TYPE.ECHO_REQUEST, code: 0, rest: ((id << 16) | seq) >>> 0, payload });

export function udpBytes(u: Udp, src: Ipv4Addr, dst: Ipv4Addr): Uint8Array {
  const out = new Uint8Array(udpLength(u));
  writeUdp(u, pseudoSum(src, dst, IP_PROTO.UDP), out);
  return out;
}

export function tcpBytes(t: Partial<Tcp> & Pick<Tcp, 'srcPort' | 'dstPort' | 'flags'>, src: Ipv4Addr, dst: Ipv4Addr): Uint8Array {
  const full: Tcp = { seq: 1000, ack: 0, window: 65535, urgent: 0, options: {}, payload: EMPTY, ...t };
  const out = new Uint8Array(tcpLength(full));
  writeTcp(full, pseudoSum(src, dst, IP_PROTO.TCP), out);
  return out;
}

/** What a frame from the stack carries, fully parsed (checksums verified by the parsers). */
export interface Decoded {
  eth: Ethernet;
  arp?: Arp;
  ip?: Ipv4;
  icmp?: Icmp;
  udp?: Udp;
  tcp?: Tcp;
}

export function decode(frame: Uint8Array): Decoded {
  const eth = parseEthernet(frame);
  if (isDrop(eth)) throw new Error(`emitted frame does not parse: ${eth}`);
  if (eth.etherType === ETHERTYPE.ARP) {
    const arp = parseArp(eth.payload);
    if (isDrop(arp)) throw new Error(arp);
    return { eth, arp };
  }
  const p = parseIpv4(eth.payload);
  if (isDrop(p)) throw new Error(`emitted IPv4 does not parse: ${p}`);
  if (p.moreFragments || p.fragmentOffset !== 0) return { eth, ip: p };
  const pseudo = pseudoSum(p.src, p.dst, p.protocol);
  switch (p.protocol) {
    case IP_PROTO.ICMP: {
      const icmp = parseIcmp(p.payload);
      if (isDrop(icmp)) throw new Error(icmp);
      return { eth, ip: p, icmp };
    }
    case IP_PROTO.UDP: {
      const udp = parseUdp(p.payload, pseudo);
      if (isDrop(udp)) throw new Error(udp);
      return { eth, ip: p, udp };
    }
    case IP_PROTO.TCP: {
      const tcp = parseTcp(p.payload, pseudo);
      if (isDrop(tcp)) throw new Error(tcp);
      return { eth, ip: p, tcp };
    }
    default:
      return { eth, ip: p };
  }
}
