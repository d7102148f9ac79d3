/**
 * The IPv6 side of the gateway: neighbour discovery, router advertisements, ICMPv6, and the
 * way into the NAT and the DNS forwarder for IPv6 guests. The Stack owns one when IPv6 is
 * on (`config.ipv6`) and hands it every IPv6 frame; it shares the Stack's frame builder, NAT
 * engines and DNS forwarder.
 *
 * Theory of operation
 * -------------------
 * The virtual hosts have three IPv6 addresses, all on the gateway's MAC: the gateway's
 * link-local address (fe80:: + modified EUI-64 of the MAC: the router's address, source of
 * its advertisements and solicitations), the gateway's address in the prefix (`ipv6.host`,
 * fd00::2, standing for the host's ::1) and the DNS address (`ipv6.dns`, fd00::3).
 * - Neighbour discovery (RFC 4861): a Neighbor Solicitation for one of those addresses gets a
 *   Neighbor Advertisement (Router, Solicited, Override flags; to all nodes when the
 *   solicitation came from :: — a guest's duplicate address detection of one of ours, which
 *   must fail). Solicitations for any other address get nothing, so a guest's DAD of its own
 *   tentative address succeeds (RFC 4862 §5.4). Guests' MACs are learned from link-layer
 *   options and from their packets' sources into a bounded cache (`src/ipv6/neighbours.ts`);
 *   a packet for a guest whose MAC is unknown is dropped ('ndp.unresolved') and a Neighbor
 *   Solicitation goes out instead, as ARP does for IPv4.
 * - Router advertisements (RFC 4861 §6.2): the prefix (on-link and autonomous: SLAAC,
 *   RFC 4862), the link MTU, the DNS address as RDNSS and the search list as DNSSL
 *   (RFC 8106), router lifetime 1800 s. A Router Solicitation is answered at once, unicast to
 *   its sender (multicast when it came from ::, at most one per 3 s, §6.2.6); unsolicited
 *   advertisements to all nodes every 200 to 600 s (random, §6.2.4), starting with the first
 *   IPv6 frame a guest sends, so an IPv4-only network never wakes for them.
 * - ICMPv6 (RFC 4443): echo requests to the three addresses are answered. Errors are built
 *   with the quoted packet (up to the 1280-byte minimum MTU in all) and never about an error,
 *   a multicast destination (but Parameter Problem code 2) or an unspecified or multicast
 *   source (§2.4 (e)); at most `ERROR_BURST` at once, refilled at `ERROR_RATE_PER_S` (§2.4 (f)).
 *   Destination unreachable: port for UDP to a closed port of a virtual address,
 *   administratively prohibited for a refused outbound flow; Parameter Problem for refused
 *   extension headers (routing with segments left, unknown options whose bits ask for it) and
 *   unknown upper-layer protocols to a virtual address; Time Exceeded for an outbound packet
 *   whose hop limit runs out here (`traceroute -6` sees the gateway as the first hop).
 * - TCP and UDP to the gateway's address and to the outside go to the NAT engines (the
 *   policy, `src/nat/policy.ts`, sends the gateway to ::1); UDP to the DNS address's port 53
 *   to the DNS forwarder, TCP there to the first upstream. A UDP checksum of zero is refused
 *   (RFC 8200 §8.1).
 * - Fragments are reassembled with bounds (`src/ipv6/reassembly.ts`). Packets to guests
 *   larger than the MTU leave in fragments (the engines keep TCP segments within it; UDP
 *   from the host, e.g. large DNS answers, may not be).
 *
 * - Stateless DHCPv6 (`src/dhcp/dhcp6.ts`): Information-Requests to ff02::1:2 or the
 *   link-local address get the DNS address and search list; the advertisements' O flag says so.
 * - Port forwards on IPv6 (`--hostfwd tcp:[::1]:8080-:80`): a rule that names no IPv6 guest
 *   address asks `guestAddress` for the guest's own address, learned in the neighbour cache.
 *
 * - Stateful DHCPv6 with `--ipv6-dhcp stateful`: addresses PREFIX::100-1ff (IA_NA) bound per
 *   DUID and IAID, at most `--max-session-leases` per port; the advertisements set M then.
 *
 * Not done: redirects, MLD (guests'
 * reports are counted and ignored: the switch floods multicast anyway), ICMPv6 echo to
 * outside hosts (refused with administratively prohibited: Node has no ICMP sockets), router
 * preference and route information options.
 */
import { answerDhcp6, DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT, Dhcp6Leases, parseDhcp6, type Lease6 } from '../dhcp/dhcp6.js';
import type { DnsForwarder } from '../dns/forwarder.js';
import { DNS_PORT } from '../dns/forwarder.js';
import { ETHERNET_HEADER_LEN, ETHERTYPE, type Ethernet } from '../ethernet/wire.js';
import { IP_PROTO } from '../ipv4/wire.js';
import { ICMP6_TYPE, icmp6Length, isIcmp6Error, parseIcmp6, UNREACHABLE6, writeIcmp6, type Icmp6 } from '../ipv6/icmp6-wire.js';
import {
  NA_FLAG, neighborAdvertisement, neighborSolicitation, parseNeighborAdvertisement, parseNeighborSolicitation, parseRouterSolicitation,
  routerAdvertisement,
} from '../ipv6/ndp.js';
import { NeighbourCache } from '../ipv6/neighbours.js';
import { Reassembler6 } from '../ipv6/reassembly.js';
import {
  ALL_NODES, ALL_ROUTERS, IPV6_HEADER_LEN, IPV6_MIN_MTU, isLinkLocal6, isMulticast6, multicastMac, NEXT_HEADER, parseIpv6, pseudoSum6,
  solicitedNode, UNSPECIFIED6, writeIpv6Header, type Ipv6,
} from '../ipv6/wire.js';
import type { Endpoint, Ipv6Addr } from '../net/addr.js';
import type { GuestNetwork6, WriteL4 } from '../net/seams.js';
import type { TcpEngine } from '../nat/tcp-flow.js';
import type { UdpNat } from '../nat/udp-flow.js';
import { UNREACHABLE } from '../nat/udp-flow.js';
import { parseTcp, TCP_FLAG, tcpLength, writeTcp, type Tcp } from '../tcp/wire.js';
import { parseUdp, udpLength, writeUdp, type Udp } from '../udp/wire.js';
import { formatMac, put16, put32, u16 } from '../util/bytes.js';
import type { Random } from '../util/clock.js';
import { isDrop, type Counters } from '../util/drops.js';
import { ICMP_TYPE } from '../ipv4/icmp-wire.js';

/** What the gateway takes from the Stack. */
export interface Ipv6GatewayDeps {
  readonly net: GuestNetwork6;
  readonly gatewayMac: Uint8Array;
  readonly mtu: number;
  /** The DNS search list for DNSSL. */
  readonly searchList: readonly string[];
  readonly counters: Counters;
  readonly random: Random;
  /** A zeroed (unless `zeroed` is false) frame with its Ethernet header written (the Stack's #frame). */
  frame(toMac: Uint8Array, etherType: number, payloadLength: number, zeroed?: boolean): Uint8Array;
  send(frame: Uint8Array): void;
  readonly tcp: TcpEngine | undefined;
  readonly udp: UdpNat | undefined;
  readonly dns: DnsForwarder | undefined;
  /** The port (a session's link) of the frame being received, when known: stateful DHCPv6 bounds leases per port. */
  ingress(): number | undefined;
  /** Stateful DHCPv6 bindings a port's clients may hold (`--max-session-leases`). */
  readonly maxLeasesPerPort: number;
  /** Lifetime of a DHCPv6 binding (`--lease-time`). */
  readonly leaseTimeS: number;
}

const HOP_LIMIT = 64;
/** RFC 4861 §6.1, §7.1: neighbour discovery travels with hop limit 255, proof it never left the link. */
const NDP_HOP_LIMIT = 255;
/** RFC 4861 §6.2.1 defaults (MaxRtrAdvInterval 600 s, MinRtrAdvInterval ⅓ of it, AdvDefaultLifetime 3 × Max). */
export const RA_MIN_INTERVAL_MS = 200_000;
export const RA_MAX_INTERVAL_MS = 600_000;
const ROUTER_LIFETIME_S = 1800;
/** RFC 4861 §6.2.6 MIN_DELAY_BETWEEN_RAS: multicast answers to solicitations from ::. */
const MIN_DELAY_BETWEEN_RAS_MS = 3000;
/** Prefix lifetimes: a day valid, four hours preferred (renewed by every advertisement). */
const PREFIX_VALID_S = 86_400;
const PREFIX_PREFERRED_S = 14_400;
/** ICMPv6 error rate limit (RFC 4443 §2.4 (f)): a token bucket. */
const ERROR_BURST = 10;
const ERROR_RATE_PER_S = 100;
/** An error message, invoking packet quoted, fits the minimum MTU (RFC 4443 §2.4 (c)). */
const ERROR_QUOTE_MAX = IPV6_MIN_MTU - IPV6_HEADER_LEN - 8;

const EMPTY = new Uint8Array(0);
/** ff02::1:2, All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1). */
const ALL_DHCP_SERVERS = `ff02${'0'.repeat(20)}00010002` as Ipv6Addr;

export class Ipv6Gateway {
  readonly #d: Ipv6GatewayDeps;
  readonly #net: GuestNetwork6;
  readonly #neighbours = new NeighbourCache();
  readonly #reassembler: Reassembler6;
  /** Stateful DHCPv6 bindings (`--ipv6-dhcp stateful`); undefined: stateless only. */
  readonly #leases6: Dhcp6Leases | undefined;
  /** When the next unsolicited advertisement is due; undefined until a guest speaks IPv6. */
  #raAt: number | undefined;
  #lastMulticastRaMs = -Infinity;
  #errorTokens = ERROR_BURST;
  #errorRefillMs = 0;
  #fragmentId: number;

  constructor(d: Ipv6GatewayDeps) {
    this.#d = d;
    this.#net = d.net;
    this.#reassembler = new Reassembler6(d.counters);
    this.#leases6 = d.net.statefulDhcp === true ? new Dhcp6Leases(d.net.prefix, d.maxLeasesPerPort) : undefined;
    this.#fragmentId = d.random.u32();
  }

  /** Live stateful DHCPv6 bindings (empty when stateless). */
  leases6(nowMs: number): Lease6[] {
    return this.#leases6?.list(nowMs) ?? [];
  }

  /** Known guest neighbours (IPv6 → MAC). */
  neighbours(): IterableIterator<[Ipv6Addr, Uint8Array]> {
    return this.#neighbours.entries();
  }

  /**
   * A guest's own address in the prefix, for port forwards whose rule names no IPv6 address
   * (`forward-ports.ts`, `Guest6`): of the guest with MAC `mac` (aa:bb:cc:dd:ee:ff), or of
   * any guest when undefined. From the neighbour cache, which learns every address a guest
   * sends from: its SLAAC address whose interface id is the MAC's modified EUI-64 (RFC 4291
   * appendix A) when known — the address that stays while temporary ones (RFC 8981) come and
   * go — else the address most recently heard from. Undefined until the guest has spoken IPv6.
   */
  guestAddress(mac: string | undefined): Ipv6Addr | undefined {
    let latest: Ipv6Addr | undefined;
    for (const [a, m] of this.#neighbours.entries()) {
      if (!this.#inPrefix(a) || this.#isOurs(a)) continue;
      const text = formatMac(m);
      if (mac !== undefined && text !== mac.toLowerCase()) continue;
      latest = a;
      if (a.slice(16) === eui64(m)) return a;
    }
    return latest;
  }

  #isOurs(a: Ipv6Addr): boolean {
    const n = this.#net;
    return a === n.host || a === n.dns || a === n.linkLocal;
  }

  #inPrefix(a: Ipv6Addr): boolean {
    return a.slice(0, 16) === this.#net.prefix.slice(0, 16);
  }

  /** One IPv6 frame from the guests (for the gateway's MAC, or multicast). */
  input(eth: Ethernet, nowMs: number): void {
    const counters = this.#d.counters;
    const toUs = eth.dst.every((x, i) => x === this.#d.gatewayMac[i]);
    if (!toUs && !(eth.dst[0] === 0x33 && eth.dst[1] === 0x33)) return counters.count('ethernet.not-for-us');
    if ((eth.src[0]! & 1) !== 0) return counters.count('ipv6.multicast-source-mac');
    let p = parseIpv6(eth.payload);
    if (isDrop(p)) return counters.count(p);
    if (isMulticast6(p.src)) return counters.count('ipv6.multicast-source');
    if (p.src !== UNSPECIFIED6) {
      if (this.#isOurs(p.src)) return counters.count('ipv6.address-conflict');
      if (!isLinkLocal6(p.src) && !this.#inPrefix(p.src)) return counters.count('ipv6.bad-source');
    }
    this.#raAt ??= nowMs + this.#raInterval();
    const dst = p.dst;
    const multicast = isMulticast6(dst);
    if (multicast) {
      if (dst !== ALL_NODES && dst !== ALL_ROUTERS && dst !== ALL_DHCP_SERVERS && dst !== solicitedNode(this.#net.host) && dst !== solicitedNode(this.#net.dns) && dst !== solicitedNode(this.#net.linkLocal))
        return counters.count('ipv6.multicast-ignored');
    } else if (!toUs) return counters.count('ethernet.not-for-us');
    if (p.src !== UNSPECIFIED6) this.#neighbours.learn(p.src, eth.src);
    if (p.problem !== undefined) {
      counters.count(p.problem.code === 0 ? 'ipv6.routing-refused' : p.problem.code === 1 ? 'ipv6.unknown-next-header' : 'ipv6.unknown-option');
      return this.#error(eth.src, p, ICMP6_TYPE.PARAM_PROBLEM, p.problem.code, p.problem.pointer);
    }
    if (p.fragment !== undefined) {
      const whole = this.#reassembler.add(p, nowMs);
      if (whole === undefined) return;
      if (isDrop(whole)) return counters.count(whole);
      const packet = new Uint8Array(IPV6_HEADER_LEN + whole.fragmentable.length);
      writeIpv6Header({ trafficClass: p.trafficClass, flowLabel: p.flowLabel, hopLimit: p.hopLimit, src: p.src, dst: p.dst, protocol: whole.protocol }, whole.fragmentable.length, packet, 0);
      packet.set(whole.fragmentable, IPV6_HEADER_LEN);
      const again = parseIpv6(packet);
      if (isDrop(again)) return counters.count(again);
      if (again.fragment !== undefined) return counters.count('ipv6.frag-nested');
      if (again.problem !== undefined) return this.#error(eth.src, again, ICMP6_TYPE.PARAM_PROBLEM, again.problem.code, again.problem.pointer);
      p = again;
    }
    if (p.src === UNSPECIFIED6 && p.protocol !== NEXT_HEADER.ICMPV6) return counters.count('ipv6.bad-source');
    if (multicast || this.#isOurs(dst)) {
      switch (p.protocol) {
        case NEXT_HEADER.ICMPV6:
          return this.#icmpInput(eth, p, nowMs);
        case NEXT_HEADER.UDP:
          if (multicast && dst !== ALL_DHCP_SERVERS) return counters.count('ipv6.multicast-ignored');
          return this.#udpInput(eth, p, nowMs);
        case NEXT_HEADER.TCP:
          if (multicast) return counters.count('ipv6.multicast-ignored');
          return this.#tcpInput(eth, p, nowMs);
        case NEXT_HEADER.NONE:
          return counters.count('ipv6.no-next-header');
        default:
          counters.count('ipv6.unknown-protocol');
          return this.#error(eth.src, p, ICMP6_TYPE.PARAM_PROBLEM, 1, p.protocolAt);
      }
    }
    if (isLinkLocal6(dst) || this.#inPrefix(dst)) return counters.count('ipv6.to-other-guest');
    this.#outbound(eth, p, nowMs);
  }

  /** A packet for the outside world: NAT, or refused with an ICMPv6 error. */
  #outbound(eth: Ethernet, p: Ipv6, nowMs: number): void {
    const counters = this.#d.counters;
    if (p.src === UNSPECIFIED6 || isLinkLocal6(p.src)) return counters.count('ipv6.link-local-outbound');
    if (p.hopLimit <= 1) {
      counters.count('ipv6.hop-limit-exceeded');
      return this.#error(eth.src, p, ICMP6_TYPE.TIME_EXCEEDED, 0, 0, this.#net.host);
    }
    const pseudo = pseudoSum6(p.src, p.dst, p.protocol);
    if (p.protocol === NEXT_HEADER.TCP && this.#d.tcp !== undefined) {
      const t = parseTcp(p.payload, pseudo);
      if (isDrop(t)) return counters.count(t);
      return this.#d.tcp.input(p, t, nowMs);
    }
    if (p.protocol === NEXT_HEADER.UDP && this.#d.udp !== undefined) {
      const u = this.#parseUdp(p);
      if (u === undefined) return;
      if (!this.#d.udp.input(p, u, nowMs)) this.#error(eth.src, p, ICMP6_TYPE.DEST_UNREACHABLE, UNREACHABLE6.ADMIN_PROHIBITED, 0, this.#net.host);
      return;
    }
    counters.count(this.#d.udp === undefined ? 'nat.no-host' : p.protocol === NEXT_HEADER.ICMPV6 ? 'icmp6.outbound-unsupported' : 'ipv6.outbound-unsupported');
    this.#error(eth.src, p, ICMP6_TYPE.DEST_UNREACHABLE, UNREACHABLE6.ADMIN_PROHIBITED, 0, this.#net.host);
  }

  /** UDP over IPv6: the checksum is mandatory (RFC 8200 §8.1). */
  #parseUdp(p: Ipv6): Udp | undefined {
    if (p.payload.length >= 8 && u16(p.payload, 6) === 0) {
      this.#d.counters.count('udp6.zero-checksum');
      return undefined;
    }
    const u = parseUdp(p.payload, pseudoSum6(p.src, p.dst, IP_PROTO.UDP));
    if (isDrop(u)) {
      this.#d.counters.count(u);
      return undefined;
    }
    return u;
  }

  #udpInput(eth: Ethernet, p: Ipv6, nowMs: number): void {
    const u = this.#parseUdp(p);
    if (u === undefined) return;
    if (u.dstPort === DHCP6_SERVER_PORT && (p.dst === ALL_DHCP_SERVERS || p.dst === this.#net.linkLocal)) return this.#dhcp6(eth, p, u, nowMs);
    if (isMulticast6(p.dst)) return this.#d.counters.count('ipv6.multicast-ignored');
    if (p.dst === this.#net.dns && u.dstPort === DNS_PORT && this.#d.dns !== undefined) return this.#d.dns.query(p, u, nowMs);
    if (p.dst === this.#net.host && this.#d.udp !== undefined) {
      if (!this.#d.udp.input(p, u, nowMs)) this.#error(eth.src, p, ICMP6_TYPE.DEST_UNREACHABLE, UNREACHABLE6.ADMIN_PROHIBITED, 0);
      return;
    }
    this.#d.counters.count('udp.no-service');
    this.#error(eth.src, p, ICMP6_TYPE.DEST_UNREACHABLE, UNREACHABLE6.PORT, 0);
  }

  /** DHCPv6 (`src/dhcp/dhcp6.ts`): a Reply or Advertise from the gateway's link-local address to the client's. */
  #dhcp6(eth: Ethernet, p: Ipv6, u: Udp, nowMs: number): void {
    const counters = this.#d.counters;
    if (!isLinkLocal6(p.src) || u.srcPort !== DHCP6_CLIENT_PORT) return counters.count('dhcp6.bad-source');
    const m = parseDhcp6(u.payload);
    if (isDrop(m)) return counters.count(m);
    const config = {
      serverMac: this.#d.gatewayMac, dnsServers: [this.#net.dns], searchList: this.#d.searchList,
      leases: this.#leases6, prefix: this.#net.prefix, leaseTimeS: this.#d.leaseTimeS,
    };
    const reply = answerDhcp6(m, config, { nowMs, owner: this.#d.ingress() });
    if (isDrop(reply)) return counters.count(reply);
    counters.count(reply[0] === 2 ? 'dhcp6.advertise' : 'dhcp6.reply');
    const out = { srcPort: DHCP6_SERVER_PORT, dstPort: DHCP6_CLIENT_PORT, payload: reply };
    const pseudo = pseudoSum6(this.#net.linkLocal, p.src, NEXT_HEADER.UDP);
    this.#sendTo(eth.src, this.#net.linkLocal, p.src, NEXT_HEADER.UDP, udpLength(out), (into, at) => writeUdp(out, pseudo, into, at), HOP_LIMIT);
  }

  #tcpInput(eth: Ethernet, p: Ipv6, nowMs: number): void {
    const t = parseTcp(p.payload, pseudoSum6(p.src, p.dst, IP_PROTO.TCP));
    if (isDrop(t)) return this.#d.counters.count(t);
    if (this.#d.tcp !== undefined && (p.dst === this.#net.host || (p.dst === this.#net.dns && t.dstPort === DNS_PORT))) return this.#d.tcp.input(p, t, nowMs);
    this.#d.counters.count('tcp.no-service');
    if ((t.flags & TCP_FLAG.RST) !== 0) return;
    const segLen = t.payload.length + ((t.flags & TCP_FLAG.SYN) !== 0 ? 1 : 0) + ((t.flags & TCP_FLAG.FIN) !== 0 ? 1 : 0);
    const hasAck = (t.flags & TCP_FLAG.ACK) !== 0;
    const rst: Tcp = {
      srcPort: t.dstPort, dstPort: t.srcPort, seq: hasAck ? t.ack : 0, ack: hasAck ? 0 : (t.seq + segLen) >>> 0,
      flags: hasAck ? TCP_FLAG.RST : TCP_FLAG.RST | TCP_FLAG.ACK, window: 0, urgent: 0, options: {}, payload: EMPTY,
    };
    const pseudo = pseudoSum6(p.dst, p.src, IP_PROTO.TCP);
    this.#sendTo(eth.src, p.dst, p.src, IP_PROTO.TCP, tcpLength(rst), (into, at) => writeTcp(rst, pseudo, into, at), HOP_LIMIT);
  }

  #icmpInput(eth: Ethernet, p: Ipv6, nowMs: number): void {
    const counters = this.#d.counters;
    const m = parseIcmp6(p.payload, pseudoSum6(p.src, p.dst, NEXT_HEADER.ICMPV6));
    if (isDrop(m)) return counters.count(m);
    switch (m.type) {
      case ICMP6_TYPE.ECHO_REQUEST: {
        if (isMulticast6(p.dst)) return counters.count('icmp6.multicast-echo-ignored');
        if (m.code !== 0) return counters.count('icmp6.bad-echo-code');
        if (p.src === UNSPECIFIED6) return counters.count('ipv6.bad-source');
        const reply: Icmp6 = { type: ICMP6_TYPE.ECHO_REPLY, code: 0, rest: m.rest, payload: m.payload };
        return this.#sendIcmp(eth.src, p.dst, p.src, reply, HOP_LIMIT);
      }
      case ICMP6_TYPE.ROUTER_SOLICITATION:
        return this.#routerSolicitation(eth, p, m, nowMs);
      case ICMP6_TYPE.NEIGHBOR_SOLICITATION:
        return this.#neighborSolicitation(eth, p, m);
      case ICMP6_TYPE.NEIGHBOR_ADVERTISEMENT: {
        if (p.hopLimit !== NDP_HOP_LIMIT) return counters.count('ndp.bad-hop-limit');
        const na = parseNeighborAdvertisement(m);
        if (isDrop(na)) return counters.count(na);
        if (this.#isOurs(na.target)) return counters.count('ndp.address-conflict');
        if (na.targetMac !== undefined && (na.targetMac[0]! & 1) === 0) this.#neighbours.learn(na.target, na.targetMac);
        return;
      }
      case ICMP6_TYPE.ROUTER_ADVERTISEMENT:
        return counters.count('ndp.foreign-router-advertisement');
      default:
        return counters.count(isIcmp6Error(m.type) ? 'icmp6.error-ignored' : 'icmp6.ignored-type');
    }
  }

  /** RFC 4861 §6.1.1 checks, then an advertisement: unicast to a sender with an address, else multicast (rate limited). */
  #routerSolicitation(eth: Ethernet, p: Ipv6, m: Icmp6, nowMs: number): void {
    const counters = this.#d.counters;
    if (p.hopLimit !== NDP_HOP_LIMIT) return counters.count('ndp.bad-hop-limit');
    const rs = parseRouterSolicitation(m);
    if (isDrop(rs)) return counters.count(rs);
    if (p.src === UNSPECIFIED6 && rs.sourceMac !== undefined) return counters.count('ndp.unspecified-with-lladdr');
    if (rs.sourceMac !== undefined && (rs.sourceMac[0]! & 1) === 0 && p.src !== UNSPECIFIED6) this.#neighbours.learn(p.src, rs.sourceMac);
    counters.count('ndp.router-solicitation');
    if (p.src !== UNSPECIFIED6) return this.#advertise(rs.sourceMac ?? eth.src, p.src);
    if (nowMs - this.#lastMulticastRaMs < MIN_DELAY_BETWEEN_RAS_MS) return counters.count('ndp.solicitation-rate-limited');
    this.#lastMulticastRaMs = nowMs;
    this.#advertise(multicastMac(ALL_NODES), ALL_NODES);
  }

  /** RFC 4861 §7.1.1 checks; an advertisement when the target is one of ours, nothing otherwise (DAD undisturbed). */
  #neighborSolicitation(eth: Ethernet, p: Ipv6, m: Icmp6): void {
    const counters = this.#d.counters;
    if (p.hopLimit !== NDP_HOP_LIMIT) return counters.count('ndp.bad-hop-limit');
    const ns = parseNeighborSolicitation(m);
    if (isDrop(ns)) return counters.count(ns);
    const dad = p.src === UNSPECIFIED6;
    if (dad && (ns.sourceMac !== undefined || p.dst !== solicitedNode(ns.target))) return counters.count('ndp.bad-dad-probe');
    if (!dad && ns.sourceMac !== undefined && (ns.sourceMac[0]! & 1) === 0) this.#neighbours.learn(p.src, ns.sourceMac);
    if (!this.#isOurs(ns.target)) return counters.count('ndp.not-our-target');
    const mac = this.#d.gatewayMac;
    if (dad) {
      // A guest probing one of our addresses must see it taken (RFC 4862 §5.4.3): to all nodes, not solicited.
      counters.count('ndp.dad-for-our-address');
      return this.#sendIcmp(multicastMac(ALL_NODES), ns.target, ALL_NODES, neighborAdvertisement(ns.target, mac, NA_FLAG.ROUTER | NA_FLAG.OVERRIDE), NDP_HOP_LIMIT);
    }
    const na = neighborAdvertisement(ns.target, mac, NA_FLAG.ROUTER | NA_FLAG.SOLICITED | NA_FLAG.OVERRIDE);
    this.#sendIcmp(ns.sourceMac ?? eth.src, ns.target, p.src, na, NDP_HOP_LIMIT);
  }

  #advertise(toMac: Uint8Array, to: Ipv6Addr): void {
    const n = this.#net;
    const ra = routerAdvertisement({
      hopLimit: HOP_LIMIT, routerLifetimeS: ROUTER_LIFETIME_S, managed: this.#leases6 !== undefined, sourceMac: this.#d.gatewayMac, mtu: this.#d.mtu,
      prefix: n.prefix, prefixLen: n.prefixLen, validLifetimeS: PREFIX_VALID_S, preferredLifetimeS: PREFIX_PREFERRED_S,
      dnsServers: [n.dns], searchList: this.#d.searchList, dnsLifetimeS: ROUTER_LIFETIME_S,
    });
    this.#d.counters.count('ndp.router-advertisement-sent');
    this.#sendIcmp(toMac, n.linkLocal, to, ra, NDP_HOP_LIMIT);
  }

  #raInterval(): number {
    return RA_MIN_INTERVAL_MS + (this.#d.random.u32() % (RA_MAX_INTERVAL_MS - RA_MIN_INTERVAL_MS));
  }

  advance(nowMs: number): void {
    this.#reassembler.expire(nowMs);
    if (this.#raAt !== undefined && nowMs >= this.#raAt) {
      this.#raAt = nowMs + this.#raInterval();
      this.#advertise(multicastMac(ALL_NODES), ALL_NODES);
    }
  }

  nextDeadline(): number | undefined {
    const r = this.#reassembler.nextDeadline();
    if (r === undefined) return this.#raAt;
    return this.#raAt === undefined ? r : Math.min(r, this.#raAt);
  }

  // --- Sending.

  /** Sends a datagram from `src` to the guest `dst` (ToGuest.sendIp for IPv6). */
  send(src: Ipv6Addr, dst: Ipv6Addr, protocol: number, l4Length: number, writeL4: WriteL4, writesEveryByte = false): void {
    const mac = this.#resolve(dst, src);
    if (mac !== undefined) this.#sendTo(mac, src, dst, protocol, l4Length, writeL4, HOP_LIMIT, writesEveryByte);
  }

  /** The guest's MAC for `a`; when unknown a Neighbor Solicitation goes to its solicited-node group, 'ndp.unresolved'. */
  #resolve(a: Ipv6Addr, src: Ipv6Addr): Uint8Array | undefined {
    const mac = this.#neighbours.lookup(a);
    if (mac !== undefined) return mac;
    this.#d.counters.count('ndp.unresolved');
    const group = solicitedNode(a);
    // RFC 4861 §7.2.2: from the address of the packet that prompted it when that is ours.
    const from = this.#isOurs(src) ? src : this.#net.linkLocal;
    this.#sendIcmp(multicastMac(group), from, group, neighborSolicitation(a, this.#d.gatewayMac), NDP_HOP_LIMIT);
    return undefined;
  }

  #sendIcmp(toMac: Uint8Array, src: Ipv6Addr, dst: Ipv6Addr, m: Icmp6, hopLimit: number): void {
    const pseudo = pseudoSum6(src, dst, NEXT_HEADER.ICMPV6);
    this.#sendTo(toMac, src, dst, NEXT_HEADER.ICMPV6, icmp6Length(m), (into, at) => writeIcmp6(m, pseudo, into, at), hopLimit);
  }

  /** Builds and sends the packet; above the MTU it leaves in fragments (RFC 8200 §4.5), 8-byte aligned. */
  #sendTo(toMac: Uint8Array, src: Ipv6Addr, dst: Ipv6Addr, protocol: number, l4Length: number, writeL4: WriteL4, hopLimit: number, writesEveryByte = false): void {
    const header = { trafficClass: 0, flowLabel: 0, hopLimit, src, dst, protocol };
    const mtu = this.#d.mtu;
    if (IPV6_HEADER_LEN + l4Length <= mtu) {
      const frame = this.#d.frame(toMac, ETHERTYPE.IPV6, IPV6_HEADER_LEN + l4Length, !writesEveryByte);
      const l4At = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;
      if (writesEveryByte && frame.length > l4At + l4Length) frame.fill(0, l4At + l4Length);
      writeL4(frame, l4At);
      writeIpv6Header(header, l4Length, frame, ETHERNET_HEADER_LEN);
      return this.#d.send(frame);
    }
    if (l4Length > 0xffff - 8) return this.#d.counters.count('ipv6.too-big-to-send');
    const l4 = new Uint8Array(l4Length);
    writeL4(l4, 0);
    this.#fragmentId = (this.#fragmentId + 1) >>> 0;
    const chunk = (mtu - IPV6_HEADER_LEN - 8) & ~7;
    for (let offset = 0; offset < l4Length; offset += chunk) {
      const piece = l4.subarray(offset, Math.min(l4Length, offset + chunk));
      const frame = this.#d.frame(toMac, ETHERTYPE.IPV6, IPV6_HEADER_LEN + 8 + piece.length);
      let at = ETHERNET_HEADER_LEN;
      at += writeIpv6Header({ ...header, protocol: NEXT_HEADER.FRAGMENT }, 8 + piece.length, frame, at);
      frame[at] = protocol;
      frame[at + 1] = 0;
      put16(frame, at + 2, offset | (offset + chunk < l4Length ? 1 : 0));
      put32(frame, at + 4, this.#fragmentId);
      frame.set(piece, at + 8);
      this.#d.send(frame);
    }
  }

  /**
   * An ICMPv6 error about packet `p` (RFC 4443 §2.4), quoting as much of it as fits the
   * minimum MTU; from `from`, else the address `p` was sent to when that is ours, else the gateway.
   */
  #error(toMac: Uint8Array, p: Ipv6, type: number, code: number, rest: number, from?: Ipv6Addr): void {
    if (p.src === UNSPECIFIED6 || isMulticast6(p.src)) return;
    if (isMulticast6(p.dst) && !(type === ICMP6_TYPE.PACKET_TOO_BIG || (type === ICMP6_TYPE.PARAM_PROBLEM && code === 2))) return;
    if (p.problem === undefined && p.protocol === NEXT_HEADER.ICMPV6 && (p.payload.length === 0 || isIcmp6Error(p.payload[0]!) || p.payload[0] === ICMP6_TYPE.REDIRECT)) return;
    if (!this.#errorToken()) return this.#d.counters.count('icmp6.error-rate-limited');
    const src = from ?? (this.#isOurs(p.dst) ? p.dst : this.#net.host);
    const quoted = p.packet.subarray(0, Math.min(p.packet.length, ERROR_QUOTE_MAX));
    this.#sendIcmp(toMac, src, p.src, { type, code, rest, payload: quoted }, HOP_LIMIT);
  }

  /** A token of the error bucket, refilled by time; false when spent. */
  #errorToken(): boolean {
    if (this.#errorTokens < 1) return false;
    this.#errorTokens--;
    return true;
  }

  /** Refills the error bucket; the Stack calls it with each entry point's time. */
  tick(nowMs: number): void {
    const elapsed = nowMs - this.#errorRefillMs;
    if (elapsed <= 0) return;
    this.#errorTokens = Math.min(ERROR_BURST, this.#errorTokens + (elapsed * ERROR_RATE_PER_S) / 1000);
    this.#errorRefillMs = nowMs;
  }

  /**
   * ToGuest.flowIcmpError for an IPv6 flow: `type`/`code` are the IPv4 meaning (the engines
   * speak RFC 792 codes), sent as their ICMPv6 equivalents (RFC 4443 §3.1, §3.3) about the
   * flow's first datagram rebuilt from its tuple.
   */
  flowError(guest: Endpoint, remote: Endpoint, protocol: number, transportHeader: Uint8Array, type: number, code: number): void {
    const g = guest.addr as Ipv6Addr;
    const r = remote.addr as Ipv6Addr;
    const mapped = icmp6For(type, code);
    if (mapped === undefined) return this.#d.counters.count('icmp6.flow-error-unmapped');
    const packet = new Uint8Array(Math.min(IPV6_HEADER_LEN + transportHeader.length, ERROR_QUOTE_MAX));
    writeIpv6Header({ trafficClass: 0, flowLabel: 0, hopLimit: HOP_LIMIT, src: g, dst: r, protocol }, transportHeader.length, packet, 0);
    packet.set(transportHeader.subarray(0, packet.length - IPV6_HEADER_LEN), IPV6_HEADER_LEN);
    const mac = this.#resolve(g, this.#net.host);
    if (mac === undefined) return;
    if (!this.#errorToken()) return this.#d.counters.count('icmp6.error-rate-limited');
    // Port unreachable comes from the remote, as the remote's own would; the others from the gateway, the router that refuses.
    const from = mapped.code === UNREACHABLE6.PORT ? r : this.#net.host;
    this.#sendIcmp(mac, from, g, { type: mapped.type, code: mapped.code, rest: 0, payload: packet }, HOP_LIMIT);
  }
}

/** The modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A), as the low 16 hex digits of an Ipv6Addr. */
function eui64(mac: Uint8Array): string {
  const b = [mac[0]! ^ 0x02, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!];
  return b.map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** The ICMPv6 type and code of an ICMPv4 error. */
function icmp6For(type: number, code: number): { type: number; code: number } | undefined {
  if (type === ICMP_TYPE.TIME_EXCEEDED) return { type: ICMP6_TYPE.TIME_EXCEEDED, code: 0 };
  if (type !== ICMP_TYPE.DEST_UNREACHABLE) return undefined;
  switch (code) {
    case UNREACHABLE.NET:
      return { type: ICMP6_TYPE.DEST_UNREACHABLE, code: UNREACHABLE6.NO_ROUTE };
    case UNREACHABLE.HOST:
      return { type: ICMP6_TYPE.DEST_UNREACHABLE, code: UNREACHABLE6.ADDRESS };
    case UNREACHABLE.PORT:
      return { type: ICMP6_TYPE.DEST_UNREACHABLE, code: UNREACHABLE6.PORT };
    case UNREACHABLE.ADMIN_PROHIBITED:
      return { type: ICMP6_TYPE.DEST_UNREACHABLE, code: UNREACHABLE6.ADMIN_PROHIBITED };
    default:
      return { type: ICMP6_TYPE.DEST_UNREACHABLE, code: UNREACHABLE6.NO_ROUTE };
  }
}
