/**
 * The configuration of one virtual network, with QEMU `-netdev user` names and defaults
 * (net=10.0.2.0/24, host=10.0.2.2, dns=10.0.2.3, dhcpstart=10.0.2.15).
 *
 * `resolveStackConfig` turns user-facing text options into a validated `StackConfig` or
 * throws a `ConfigError` naming the option and the reason; nothing else in the stack
 * validates configuration again.
 */
import type { ClasslessRoute } from '../dhcp/options.js';
import { DEFAULT_LEASES_PER_PORT, type DhcpServerOptions } from '../dhcp/server.js';
import { EgressPolicy, parseEgressRule, type EgressRule } from '../nat/egress.js';
import { parseGuestForwards } from '../nat/guest-forwards.js';
import { resolveLinkImpairment, type LinkImpairment } from '../impair/spec.js';
import { resolveNatBehaviour, type NatBehaviour, type NatOptions } from '../nat/behaviour.js';
import type { NatPolicyOptions } from '../nat/policy.js';
import { formatIpv4Addr, type Ipv4Addr, type Mac } from '../util/bytes.js';
import { DEFAULT_MTU, MAX_MTU, MIN_MTU } from '../net/mtu.js';
import { ConfigError } from '../util/config-error.js';
import { maskOfPrefix, parseIpv4Network, parseIpv4Text, parseIpv6Text } from '../util/ip-text.js';
import { formatIpAddr, ipv6FromBytes, type Ipv6Addr } from '../net/addr.js';
import type { GuestNetwork6 } from '../net/seams.js';
import { IPV6_MIN_MTU } from '../ipv6/wire.js';

/** A static route pushed to the guest with DHCP option 121 (RFC 3442). */
export type StaticRoute = ClasslessRoute;

/**
 * A validated network configuration. Addresses are uint32. The DHCP server's and the NAT
 * policy's slices (documented where they are used) plus what only the stack needs.
 */
export interface StackConfig extends DhcpServerOptions, NatPolicyOptions {
  readonly prefixLen: number;
  /** The MAC the virtual hosts (gateway, DNS) answer with. */
  readonly gatewayMac: Mac;
  /** Impairment of every guest link of the network (`--link-*`, `src/impair/`); undefined: none. */
  readonly impairment?: LinkImpairment | undefined;
  /** `--nat-pmp on`: NAT-PMP and PCP on the gateway's UDP port 5351 (`src/portmap/`). */
  readonly natPmp?: boolean | undefined;
  /** The NAT's behaviour (RFC 4787 mapping, filtering, hairpin, port preservation, timeout). */
  readonly nat: NatBehaviour;
  /** The local address host sockets bind to (`--outbound`); undefined: any. */
  readonly outbound?: Ipv4Addr | undefined;
  /** The local address IPv6 flows' host sockets bind to (`--outbound6`); undefined: any. */
  readonly outbound6?: Ipv6Addr | undefined;
  /** `--tftp DIR`: the directory the gateway's TFTP server serves, read-only (`src/tftp/`); undefined: no TFTP server. */
  readonly tftpRoot?: string | undefined;
  /** The IPv6 side (`--ipv6 on`, the default); undefined with `--ipv6 off`. */
  readonly ipv6?: GuestNetwork6 | undefined;
}

/** User-facing options, as text, named after QEMU's `-netdev user` keys (the NAT's by their long option names). */
export interface NetworkOptions extends NatOptions {
  net?: string | undefined;
  host?: string | undefined;
  dns?: string | undefined;
  dhcpstart?: string | undefined;
  /** Addresses in the DHCP pool, 1..MAX_DHCP_POOL (QEMU's 16, or fewer when the network ends first). */
  dhcppool?: string | number | undefined;
  domainname?: string | undefined;
  dnssearch?: readonly string[] | undefined;
  hostname?: string | undefined;
  mtu?: string | number | undefined;
  leasetime?: string | number | undefined;
  tftpservername?: string | undefined;
  bootfile?: string | undefined;
  route?: readonly string[] | undefined;
  restrict?: boolean | undefined;
  disableHostLoopback?: boolean | undefined;
  /** DHCP leases the clients behind one session's link may hold, 1..MAX_DHCP_POOL (DEFAULT_LEASES_PER_PORT). */
  maxSessionLeases?: string | number | undefined;
  /** `--egress-allow` / `--egress-deny` rules in command-line order: the action and the rule's text. */
  egress?: readonly (readonly ['allow' | 'deny', string])[] | undefined;
  /** `--link-delay MS[:JITTER_MS]`, `--link-loss PCT`, `--link-duplicate PCT`, `--link-reorder PCT`, `--link-rate RATE`. */
  linkDelay?: string | undefined;
  linkLoss?: string | undefined;
  linkDuplicate?: string | undefined;
  linkReorder?: string | undefined;
  linkRate?: string | undefined;
  /** `--nat-pmp on|off`. */
  natPmp?: string | boolean | undefined;
  /** `--outbound ADDR`: an IPv4 address of this host. */
  outbound?: string | undefined;
  /** `--outbound6 ADDR`: an IPv6 address of this host. */
  outbound6?: string | undefined;
  /** `--tftp DIR` (QEMU's `tftp=`): the directory served by TFTP, as given (the shell makes it absolute and checks it exists). */
  tftp?: string | undefined;
  /** `--guestfwd` rules, QEMU's syntax (`src/nat/guest-forwards.ts`). */
  guestfwd?: readonly string[] | undefined;
  /** `--ipv6 on|off` (on). */
  ipv6?: string | boolean | undefined;
  /** `--ipv6-net PREFIX/64` (fd00::/64), `--ipv6-host ADDR` (PREFIX::2), `--ipv6-dns ADDR` (PREFIX::3). */
  ipv6Net?: string | undefined;
  ipv6Host?: string | undefined;
  ipv6Dns?: string | undefined;
  /** `--ipv6-dhcp stateless|stateful` (stateless). */
  ipv6Dhcp?: string | undefined;
}

/** QEMU's pool size, the default. */
export const DEFAULT_DHCP_POOL = 16;
/** The largest pool: one lease slot each, a table a network keeps whatever its guests do. */
export const MAX_DHCP_POOL = 1024;

/** QEMU's default gateway MAC 52:55:0a:00:02:02 ("RU" + 10.0.2.2). */
const GATEWAY_MAC_PREFIX = [0x52, 0x55] as const;

function addr(option: string, text: string): Ipv4Addr {
  const a = parseIpv4Text(text);
  if (typeof a === 'string') throw new ConfigError(option, a);
  return a;
}

/** `--outbound`: an IPv4 address (an IPv6 one belongs to `--outbound6`). */
function outboundAddr(text: string): Ipv4Addr {
  if (typeof parseIpv6Text(text) !== 'string') throw new ConfigError('outbound', `'${text}' is an IPv6 address: --outbound takes an IPv4 one, --outbound6 the IPv6 one`);
  return addr('outbound', text);
}

/**
 * `--outbound6`: an IPv6 unicast address. Not link-local: a socket binds such an address only
 * with its interface (`fe80::1%eth0`), and the flows it would carry go to routed destinations.
 */
function outbound6Addr(text: string): Ipv6Addr {
  if (!text.includes(':')) throw new ConfigError('outbound6', `'${text}' is not an IPv6 address (--outbound takes the IPv4 one)`);
  const bytes = parseIpv6Text(text);
  if (typeof bytes === 'string') throw new ConfigError('outbound6', bytes);
  if (bytes.every((b) => b === 0)) throw new ConfigError('outbound6', `'${text}' is the unspecified address: leave --outbound6 out to bind any address`);
  if (bytes[0] === 0xff) throw new ConfigError('outbound6', `'${text}' is a multicast address, not one a socket can send from`);
  if (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80) throw new ConfigError('outbound6', `'${text}' is link-local: it needs an interface, and flows leave towards routed addresses`);
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
    throw new ConfigError('outbound6', `'${text}' is an IPv4-mapped address: give the IPv4 address to --outbound`);
  return ipv6FromBytes(bytes);
}

const maskOf = maskOfPrefix;
const inNet = (a: Ipv4Addr, net: Ipv4Addr, mask: number): boolean => ((a & mask) >>> 0) === net;

function integer(option: string, v: string | number, min: number, max: number): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(option, `'${v}' must be an integer from ${min} to ${max}`);
  return n;
}

/** `on` or `off` (a boolean passes as it is). */
function onOff(option: string, v: string | boolean): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new ConfigError(option, `'${v}' must be on or off`);
}

/** A DNS name for options 15/119/12: labels of 1..63 letters, digits, hyphens, underscores. */
function dnsName(option: string, text: string): string {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l)))
    throw new ConfigError(option, `'${text}' is not a valid DNS name`);
  return name;
}

/** `DEST/PREFIX=GATEWAY` or `DEST/MASK=GATEWAY`, e.g. `192.168.100.0/24=10.0.2.2`. */
function route(text: string, net: Ipv4Addr, mask: number): StaticRoute {
  const m = /^([^=/]+\/[^=]*)=(.*)$/.exec(text);
  if (m === null) throw new ConfigError('route', `'${text}' must look like DEST/PREFIX=GATEWAY or DEST/MASK=GATEWAY`);
  const destNet = parseIpv4Network(m[1]!);
  if (typeof destNet === 'string') throw new ConfigError('route', `'${text}': ${destNet}`);
  const { addr: dest, prefixLen } = destNet;
  if (((dest & maskOf(prefixLen)) >>> 0) !== dest) throw new ConfigError('route', `'${text}' has host bits set in its destination`);
  const gateway = addr('route', m[2]!);
  if (!inNet(gateway, net, mask)) throw new ConfigError('route', `gateway ${m[2]!} of '${text}' is outside the network`);
  return { dest, prefixLen, gateway };
}

/** A directory path for `--tftp`: not empty, no NUL byte (what the filesystem would refuse later, refused at start). */
function tftpRoot(text: string): string {
  if (text === '' || text.includes('\0')) throw new ConfigError('tftp', `'${text}' is not a directory path`);
  return text;
}

/** Validates user options against each other and fills in QEMU's defaults. */
export function resolveStackConfig(o: NetworkOptions = {}): StackConfig {
  const netText = o.net ?? '10.0.2.0/24';
  // QEMU's net= takes ADDR/PREFIX or ADDR/MASK; a bare ADDR is a /24 here.
  const network = parseIpv4Network(netText.includes('/') ? netText : `${netText}/24`);
  if (typeof network === 'string') throw new ConfigError('net', network);
  const { prefixLen } = network;
  if (prefixLen < 8 || prefixLen > 30) throw new ConfigError('net', `prefix /${prefixLen} must be from /8 to /30`);
  const netmask = maskOf(prefixLen);
  const net = (network.addr & netmask) >>> 0;
  const broadcast = (net | ~netmask) >>> 0;
  const inside = (option: string, a: Ipv4Addr): Ipv4Addr => {
    if (!inNet(a, net, netmask)) throw new ConfigError(option, `${formatIpv4Addr(a)} is outside the network ${formatIpv4Addr(net)}/${prefixLen}`);
    if (a === net || a === broadcast) throw new ConfigError(option, `${formatIpv4Addr(a)} is the network's ${a === net ? 'network' : 'broadcast'} address`);
    return a;
  };
  const host = inside('host', addr('host', o.host ?? formatIpv4Addr(net + 2)));
  const dns = inside('dns', addr('dns', o.dns ?? formatIpv4Addr(net + 3)));
  if (dns === host) throw new ConfigError('dns', `must differ from the gateway (--host ${formatIpv4Addr(host)})`);
  const dhcpStart = inside('dhcpstart', addr('dhcpstart', o.dhcpstart ?? formatIpv4Addr(net + 15)));
  const room = broadcast - dhcpStart;
  if (room < 1) throw new ConfigError('dhcpstart', 'leaves no room for a lease before the broadcast address');
  const asked = o.dhcppool === undefined ? undefined : integer('dhcppool', o.dhcppool, 1, MAX_DHCP_POOL);
  if (asked !== undefined && asked > room)
    throw new ConfigError('dhcppool', `${asked} addresses from ${formatIpv4Addr(dhcpStart)} pass the broadcast address ${formatIpv4Addr(broadcast)}: at most ${room} fit`);
  const dhcpPoolSize = asked ?? Math.min(DEFAULT_DHCP_POOL, room);
  for (const [name, a] of [['host', host], ['dns', dns]] as const)
    if (a >= dhcpStart && a < dhcpStart + dhcpPoolSize)
      throw new ConfigError('dhcpstart', `the pool ${formatIpv4Addr(dhcpStart)}+${dhcpPoolSize} contains the ${name} address ${formatIpv4Addr(a)}`);
  const egress = new EgressPolicy(
    (o.egress ?? []).map(([action, text]): EgressRule => {
      const r = parseEgressRule(action, text);
      if (typeof r === 'string') throw new ConfigError(`egress-${action}`, r);
      return r;
    }),
  );
  const guestForwards = parseGuestForwards(o.guestfwd ?? [], { net, netmask, dhcpStart, dhcpPoolSize });
  for (const f of guestForwards) {
    const refused = f.target.kind === 'host' ? egress.check(f.target.to) : undefined;
    if (refused !== undefined) throw new ConfigError('guestfwd', `'${f.text}': the egress policy refuses its target (${refused})`);
  }
  const mtu = integer('mtu', o.mtu ?? DEFAULT_MTU, MIN_MTU, MAX_MTU);
  const gatewayMac: Mac = new Uint8Array([...GATEWAY_MAC_PREFIX, (host >>> 24) & 0xff, (host >>> 16) & 0xff, (host >>> 8) & 0xff, host & 0xff]);
  return {
    net,
    prefixLen,
    netmask,
    host,
    dns,
    dhcpStart,
    dhcpPoolSize,
    leaseTimeS: integer('leasetime', o.leasetime ?? 86400, 60, 0x7fffffff),
    maxLeasesPerPort: integer('max-session-leases', o.maxSessionLeases ?? DEFAULT_LEASES_PER_PORT, 1, MAX_DHCP_POOL),
    domainName: o.domainname === undefined ? undefined : dnsName('domainname', o.domainname),
    dnsSearch: (o.dnssearch ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '').map((s) => dnsName('dnssearch', s)),
    hostname: o.hostname === undefined ? undefined : dnsName('hostname', o.hostname),
    mtu,
    tftpServerName: o.tftpservername,
    bootFile: o.bootfile,
    routes: (o.route ?? []).map((r) => route(r, net, netmask)),
    restrict: o.restrict ?? false,
    disableHostLoopback: o.disableHostLoopback ?? false,
    egress,
    guestForwards,
    impairment: resolveLinkImpairment({
      'link-delay': o.linkDelay,
      'link-loss': o.linkLoss,
      'link-duplicate': o.linkDuplicate,
      'link-reorder': o.linkReorder,
      'link-rate': o.linkRate,
    }),
    natPmp: onOff('nat-pmp', o.natPmp ?? false),
    nat: resolveNatBehaviour(o),
    outbound: o.outbound === undefined ? undefined : outboundAddr(o.outbound),
    outbound6: o.outbound6 === undefined ? undefined : outbound6Addr(o.outbound6),
    tftpRoot: o.tftp === undefined ? undefined : tftpRoot(o.tftp),
    gatewayMac,
    ipv6: ipv6Wanted(o, mtu) ? resolveIpv6(o, gatewayMac) : undefined,
  };
}

/**
 * Whether IPv6 is on: `--ipv6` (default on), but IPv6 needs links of 1280 bytes at least
 * (RFC 8200 §5): a smaller `--mtu` turns the default off, and refuses an explicit `--ipv6 on`.
 */
function ipv6Wanted(o: NetworkOptions, mtu: number): boolean {
  if (o.ipv6 === undefined) return mtu >= IPV6_MIN_MTU;
  const on = onOff('ipv6', o.ipv6);
  if (on && mtu < IPV6_MIN_MTU) throw new ConfigError('ipv6', `needs --mtu ${IPV6_MIN_MTU} or more (RFC 8200 §5), not ${mtu}`);
  return on;
}

/**
 * The IPv6 side: a /64 (SLAAC needs 64-bit interface identifiers, RFC 4862 §5.5.3), the
 * gateway and DNS addresses inside it (QEMU's defaults: PREFIX::2 and PREFIX::3), and the
 * gateway's link-local address from its MAC (RFC 4291 Appendix A, modified EUI-64).
 * libslirp's default prefix fec0::/64 is deprecated site-local (RFC 3879): ours is fd00::/64,
 * unique-local (RFC 4193).
 */
function resolveIpv6(o: NetworkOptions, mac: Mac): GuestNetwork6 {
  const text = o.ipv6Net ?? 'fd00::/64';
  const slash = text.indexOf('/');
  const lenText = slash < 0 ? '64' : text.slice(slash + 1);
  if (lenText !== '64') throw new ConfigError('ipv6-net', `'${text}': the prefix must be a /64 (guests form their addresses by SLAAC, RFC 4862)`);
  const bytes = parseIpv6Text(slash < 0 ? text : text.slice(0, slash));
  if (typeof bytes === 'string') throw new ConfigError('ipv6-net', bytes);
  if (bytes.subarray(8).some((b) => b !== 0)) throw new ConfigError('ipv6-net', `'${text}' has host bits set`);
  if (bytes[0] === 0xff || (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80) || bytes.subarray(0, 8).every((b) => b === 0))
    throw new ConfigError('ipv6-net', `'${text}' is not a unicast prefix guests can autoconfigure (multicast, link-local or ::)`);
  const prefix = ipv6FromBytes(bytes);
  const inside = (option: string, given: string | undefined, last: number): ReturnType<typeof ipv6FromBytes> => {
    let a: Uint8Array;
    if (given === undefined) {
      a = bytes.slice();
      a[15] = last;
    } else {
      const parsed = parseIpv6Text(given);
      if (typeof parsed === 'string') throw new ConfigError(option, parsed);
      a = parsed;
    }
    const v = ipv6FromBytes(a);
    if (v.slice(0, 16) !== prefix.slice(0, 16)) throw new ConfigError(option, `${formatIpAddr(v)} is outside the IPv6 network ${formatIpAddr(prefix)}/64`);
    if (v === prefix) throw new ConfigError(option, `${formatIpAddr(v)} is the subnet-router anycast address of ${formatIpAddr(prefix)}/64`);
    return v;
  };
  const host = inside('ipv6-host', o.ipv6Host, 2);
  const dns = inside('ipv6-dns', o.ipv6Dns, 3);
  if (dns === host) throw new ConfigError('ipv6-dns', `must differ from the gateway (--ipv6-host ${formatIpAddr(host)})`);
  const ll = new Uint8Array(16);
  ll.set([0xfe, 0x80]);
  ll.set([mac[0]! ^ 0x02, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!], 8);
  const dhcp = o.ipv6Dhcp ?? 'stateless';
  if (dhcp !== 'stateless' && dhcp !== 'stateful') throw new ConfigError('ipv6-dhcp', `must be stateless or stateful, not '${dhcp}'`);
  return { prefix, prefixLen: 64, host, dns, linkLocal: ipv6FromBytes(ll), statefulDhcp: dhcp === 'stateful' };
}
