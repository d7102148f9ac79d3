/**
 * Neighbour discovery messages (RFC 4861 §4) as ICMPv6 bodies: router and neighbour
 * solicitations parsed with the validity checks of §6.1.1 and §7.1.1, neighbour and router
 * advertisements written, with the options the stack sends — source/target link-layer
 * address (§4.6.1), prefix information (§4.6.2), MTU (§4.6.4), recursive DNS servers and
 * the DNS search list (RFC 8106 §5.1, §5.2).
 *
 * Advertisements set the O flag (stateless DHCPv6 answers `src/dhcp/dhcp6.ts`) and clear M.
 * The checks here are those of the message alone; the stack checks what needs the packet
 * (hop limit 255, the source and destination addresses).
 */
import { ipv6Bytes, ipv6FromBytes, type Ipv6Addr } from '../net/addr.js';
import { put32 } from '../util/bytes.js';
import type { Drop } from '../util/drops.js';
import { ICMP6_TYPE, type Icmp6 } from './icmp6-wire.js';

/** Option types (RFC 4861 §4.6, RFC 8106 §5). */
export const NDP_OPTION = { SOURCE_LL: 1, TARGET_LL: 2, PREFIX_INFO: 3, REDIRECTED: 4, MTU: 5, RDNSS: 25, DNSSL: 31 } as const;

/** A Neighbor Solicitation (§4.3). */
export interface NeighborSolicitation {
  readonly target: Ipv6Addr;
  /** The Source Link-Layer Address option's MAC (a view), if present. */
  readonly sourceMac: Uint8Array | undefined;
}

/** A Router Solicitation (§4.1). */
export interface RouterSolicitation {
  readonly sourceMac: Uint8Array | undefined;
}

/**
 * Walks the options in `b` (§4.6: each a type, a length in units of 8 bytes that is never
 * 0, and fits); returns the MAC of the first link-layer option of `llType`, or a Drop.
 */
function linkLayerOption(b: Uint8Array, llType: number): { mac: Uint8Array | undefined } | Drop {
  let mac: Uint8Array | undefined;
  for (let i = 0; i < b.length; ) {
    if (i + 2 > b.length) return 'ndp.bad-option';
    const len = b[i + 1]! * 8;
    if (len === 0 || i + len > b.length) return 'ndp.bad-option';
    if (b[i] === llType && mac === undefined) {
      if (len < 8) return 'ndp.bad-option';
      mac = b.subarray(i + 2, i + 8);
    }
    i += len;
  }
  return { mac };
}

/** The body of a Neighbor Solicitation whose ICMPv6 header is `m` (code 0, target not multicast). */
export function parseNeighborSolicitation(m: Icmp6): NeighborSolicitation | Drop {
  if (m.type !== ICMP6_TYPE.NEIGHBOR_SOLICITATION) return 'ndp.not-ns';
  if (m.code !== 0) return 'ndp.bad-code';
  if (m.payload.length < 16) return 'ndp.truncated';
  const target = ipv6FromBytes(m.payload, 0);
  if (target.startsWith('ff')) return 'ndp.multicast-target';
  const opts = linkLayerOption(m.payload.subarray(16), NDP_OPTION.SOURCE_LL);
  if (typeof opts === 'string') return opts;
  return { target, sourceMac: opts.mac };
}

/** The body of a Router Solicitation whose ICMPv6 header is `m`. */
export function parseRouterSolicitation(m: Icmp6): RouterSolicitation | Drop {
  if (m.type !== ICMP6_TYPE.ROUTER_SOLICITATION) return 'ndp.not-rs';
  if (m.code !== 0) return 'ndp.bad-code';
  const opts = linkLayerOption(m.payload, NDP_OPTION.SOURCE_LL);
  if (typeof opts === 'string') return opts;
  return { sourceMac: opts.mac };
}

/** A Neighbor Advertisement's target and link-layer address (§4.4), for learning from guests' advertisements. */
export function parseNeighborAdvertisement(m: Icmp6): { readonly target: Ipv6Addr; readonly targetMac: Uint8Array | undefined } | Drop {
  if (m.type !== ICMP6_TYPE.NEIGHBOR_ADVERTISEMENT) return 'ndp.not-na';
  if (m.code !== 0) return 'ndp.bad-code';
  if (m.payload.length < 16) return 'ndp.truncated';
  const target = ipv6FromBytes(m.payload, 0);
  if (target.startsWith('ff')) return 'ndp.multicast-target';
  const opts = linkLayerOption(m.payload.subarray(16), NDP_OPTION.TARGET_LL);
  if (typeof opts === 'string') return opts;
  return { target, targetMac: opts.mac };
}

/** NA flags in `rest` (§4.4): Router, Solicited, Override. */
export const NA_FLAG = { ROUTER: 0x80000000, SOLICITED: 0x40000000, OVERRIDE: 0x20000000 } as const;

/** A Neighbor Advertisement for `target` with its Target Link-Layer Address option. */
export function neighborAdvertisement(target: Ipv6Addr, mac: Uint8Array, flags: number): Icmp6 {
  const payload = new Uint8Array(24);
  ipv6Bytes(target, payload, 0);
  payload[16] = NDP_OPTION.TARGET_LL;
  payload[17] = 1;
  payload.set(mac.subarray(0, 6), 18);
  return { type: ICMP6_TYPE.NEIGHBOR_ADVERTISEMENT, code: 0, rest: flags >>> 0, payload };
}

/** A Neighbor Solicitation for `target` from a router whose MAC is `mac` (address resolution, §7.2.2). */
export function neighborSolicitation(target: Ipv6Addr, mac: Uint8Array): Icmp6 {
  const payload = new Uint8Array(24);
  ipv6Bytes(target, payload, 0);
  payload[16] = NDP_OPTION.SOURCE_LL;
  payload[17] = 1;
  payload.set(mac.subarray(0, 6), 18);
  return { type: ICMP6_TYPE.NEIGHBOR_SOLICITATION, code: 0, rest: 0, payload };
}

/** What a Router Advertisement says (§4.2), with its options. */
export interface RouterAdvertisement {
  /** Cur Hop Limit for the guests' packets (0: unspecified). */
  readonly hopLimit: number;
  /** Seconds, 0..9000 (§6.2.1; 0: not a default router). */
  readonly routerLifetimeS: number;
  /** The M flag (§4.2): addresses from DHCPv6 (stateful) besides SLAAC. */
  readonly managed?: boolean | undefined;
  readonly sourceMac: Uint8Array;
  readonly mtu: number;
  /** The on-link, autonomous prefix (L and A set) and its length. */
  readonly prefix: Ipv6Addr;
  readonly prefixLen: number;
  readonly validLifetimeS: number;
  readonly preferredLifetimeS: number;
  /** RDNSS addresses (none: no option). */
  readonly dnsServers: readonly Ipv6Addr[];
  /** DNSSL names (none: no option). */
  readonly searchList: readonly string[];
  /** Lifetime of RDNSS and DNSSL, seconds. */
  readonly dnsLifetimeS: number;
}

/** The names in DNS wire form (RFC 1035 §3.1, uncompressed), padded with zeros to a multiple of 8 (RFC 8106 §5.2). */
function searchListBytes(names: readonly string[]): Uint8Array {
  const parts: number[] = [];
  for (const name of names) {
    for (const label of name.split('.').filter((l) => l !== '')) {
      const bytes = new TextEncoder().encode(label);
      parts.push(bytes.length, ...bytes);
    }
    parts.push(0);
  }
  while (parts.length % 8 !== 0) parts.push(0);
  return new Uint8Array(parts);
}

/** The ICMPv6 message of a Router Advertisement (Other flag set: stateless DHCPv6; Managed clear: addresses by SLAAC). */
export function routerAdvertisement(ra: RouterAdvertisement): Icmp6 {
  const dnssl = ra.searchList.length > 0 ? searchListBytes(ra.searchList) : undefined;
  const rdnssLen = ra.dnsServers.length > 0 ? 8 + 16 * ra.dnsServers.length : 0;
  const dnsslLen = dnssl === undefined ? 0 : 8 + dnssl.length;
  const len = 8 + 8 + 8 + 32 + rdnssLen + dnsslLen;
  const b = new Uint8Array(len);
  // Reachable Time and Retrans Timer: 0, unspecified (§4.2).
  let at = 8;
  b[at] = NDP_OPTION.SOURCE_LL;
  b[at + 1] = 1;
  b.set(ra.sourceMac.subarray(0, 6), at + 2);
  at += 8;
  b[at] = NDP_OPTION.MTU;
  b[at + 1] = 1;
  put32(b, at + 4, ra.mtu);
  at += 8;
  b[at] = NDP_OPTION.PREFIX_INFO;
  b[at + 1] = 4;
  b[at + 2] = ra.prefixLen;
  b[at + 3] = 0xc0; // L (on-link) and A (autonomous address configuration)
  put32(b, at + 4, ra.validLifetimeS);
  put32(b, at + 8, ra.preferredLifetimeS);
  ipv6Bytes(ra.prefix, b, at + 16);
  at += 32;
  if (rdnssLen > 0) {
    b[at] = NDP_OPTION.RDNSS;
    b[at + 1] = rdnssLen / 8;
    put32(b, at + 4, ra.dnsLifetimeS);
    ra.dnsServers.forEach((a, i) => ipv6Bytes(a, b, at + 8 + 16 * i));
    at += rdnssLen;
  }
  if (dnssl !== undefined) {
    b[at] = NDP_OPTION.DNSSL;
    b[at + 1] = dnsslLen / 8;
    put32(b, at + 4, ra.dnsLifetimeS);
    b.set(dnssl, at + 8);
  }
  // Flags: O ("other configuration": stateless DHCPv6 has the DNS settings too, RFC 4861 §4.2); M when DHCPv6 assigns addresses.
  const rest = ((ra.hopLimit & 0xff) << 24) | ((ra.managed === true ? 0xc0 : 0x40) << 16) | (ra.routerLifetimeS & 0xffff);
  return { type: ICMP6_TYPE.ROUTER_ADVERTISEMENT, code: 0, rest: rest >>> 0, payload: b };
}
