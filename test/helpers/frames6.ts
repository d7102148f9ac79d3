/** IPv6 packets for tests: fixed header plus an upper layer with its pseudo-header checksum. */
import { writeIcmp6, type Icmp6 } from '../../src/ipv6/icmp6-wire.js';
import { IPV6_HEADER_LEN, NEXT_HEADER, pseudoSum6, writeIpv6Header } from '../../src/ipv6/wire.js';
import { parseIpAddr, type Ipv6Addr } from '../../src/net/addr.js';
import { tcpLength, writeTcp, type Tcp } from '../../src/tcp/wire.js';
import { udpLength, writeUdp } from '../../src/udp/wire.js';

export const a6 = (t: string): Ipv6Addr => parseIpAddr(t) as Ipv6Addr;
const EMPTY = new Uint8Array(0);

export function ipv6Packet(src: Ipv6Addr, dst: Ipv6Addr, protocol: number, l4: Uint8Array, hopLimit = 64): Uint8Array {
  const b = new Uint8Array(IPV6_HEADER_LEN + l4.length);
  writeIpv6Header({ trafficClass: 0, flowLabel: 0, hopLimit, src, dst, protocol }, l4.length, b, 0);
  b.set(l4, IPV6_HEADER_LEN);
  return b;
}

export function icmp6Packet(src: Ipv6Addr, dst: Ipv6Addr, m: Icmp6, hopLimit = 255): Uint8Array {
  const l4 = new Uint8Array(8 + m.payload.length);
  writeIcmp6(m, pseudoSum6(src, dst, NEXT_HEADER.ICMPV6), l4, 0);
  return ipv6Packet(src, dst, NEXT_HEADER.ICMPV6, l4, hopLimit);
}

export function udp6Packet(src: Ipv6Addr, dst: Ipv6Addr, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const u = { srcPort, dstPort, payload };
  const l4 = new Uint8Array(udpLength(u));
  writeUdp(u, pseudoSum6(src, dst, NEXT_HEADER.UDP), l4, 0);
  return ipv6Packet(src, dst, NEXT_HEADER.UDP, l4);
}

export function tcp6Packet(src: Ipv6Addr, dst: Ipv6Addr, t: Partial<Tcp> & Pick<Tcp, 'srcPort' | 'dstPort' | 'flags'>): Uint8Array {
  const full: Tcp = { seq: 1000, ack: 0, window: 65535, urgent: 0, options: {}, payload: EMPTY, ...t };
  const l4 = new Uint8Array(tcpLength(full));
  writeTcp(full, pseudoSum6(src, dst, NEXT_HEADER.TCP), l4, 0);
  return ipv6Packet(src, dst, NEXT_HEADER.TCP, l4);
}
