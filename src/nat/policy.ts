/**
 * Address rewrite rules for guest-originated flows: where a guest's datagram or connection
 * goes on the host, or why it may not go anywhere.
 *
 * - The gateway address (QEMU's `host`, 10.0.2.2) reaches the host's loopback 127.0.0.1, as in
 *   libslirp, unless `--disable-host-loopback` (then refused, as libslirp's
 *   `disable_host_loopback` does).
 * - `--restrict` refuses every outbound flow (libslirp's `restrict=on`).
 * - Addresses that cannot be a remote host — loopback (the guest's own 127/8 never leaves it),
 *   0.0.0.0/8, multicast, broadcast, and other addresses inside the virtual network — are refused.
 * - Everything else passes through unchanged, unless the egress policy (`egress.ts`: the
 *   `--egress-allow`/`--egress-deny` rules, and the public default) refuses where it goes —
 *   judged after the rewrite, so the gateway's loopback is judged as 127.0.0.1.
 *
 * - A guest forward (`guest-forwards.ts`, `--guestfwd`) sends TCP to its server address and
 *   port to its target instead (`routeGuestForward`, asked first by the TCP engine): a host
 *   endpoint judged by the egress policy, or a host service; `--restrict` does not refuse it.
 *
 * The DNS address is not NAT for UDP (the stack hands it to the DNS forwarder); TCP to its
 * port 53 goes to the first upstream resolver (`dnsUpstream`).
 */
import type { Endpoint, Ipv6Addr } from '../net/addr.js';
import type { GuestNetwork6 } from '../net/seams.js';
import { isLinkLocal6, isMulticast6, LOOPBACK6, UNSPECIFIED6 } from '../ipv6/wire.js';
import type { Ipv4Addr } from '../util/bytes.js';
import type { Drop } from '../util/drops.js';
import type { EgressPolicy } from './egress.js';
import { guestForwardAt, type GuestForward } from './guest-forwards.js';

/** What the rules need of the network's configuration (a `StackConfig` has these fields and more). */
export interface NatPolicyOptions {
  /** The virtual network and its mask: destinations inside it are refused. */
  readonly net: Ipv4Addr;
  readonly netmask: Ipv4Addr;
  /** The gateway address (QEMU's `host`), which stands for the host's loopback. */
  readonly host: Ipv4Addr;
  /** The virtual DNS server's address. */
  readonly dns: Ipv4Addr;
  /** `--restrict`: no outbound flows at all. */
  readonly restrict: boolean;
  /** `--disable-host-loopback`: the gateway address does not reach the host's loopback. */
  readonly disableHostLoopback: boolean;
  /** The network's egress policy; absent: every destination the rules above let through. */
  readonly egress?: EgressPolicy | undefined;
  /** `--guestfwd` rules (and a program's handlers): virtual servers whose TCP the host serves. */
  readonly guestForwards?: readonly GuestForward[] | undefined;
  /** The IPv6 side: its gateway stands for the host's ::1, its DNS address and prefix as the IPv4 ones. */
  readonly ipv6?: GuestNetwork6 | undefined;
}

/**
 * Where a flow goes: a host endpoint, or a refusal with the counter to bump — for an egress
 * refusal also the rule that matched and the host endpoint it judged (for the debug log).
 */
export type Route = { readonly to: Endpoint } | { readonly refused: Drop; readonly egress?: { readonly rule: string; readonly to: Endpoint } };

export const HOST_LOOPBACK = 0x7f000001;

export function routeOutbound(config: NatPolicyOptions, remote: Endpoint, dnsUpstream?: Endpoint): Route {
  const a = remote.addr;
  if (typeof a === 'string') return routeOutbound6(config, a, remote.port, dnsUpstream);
  // DNS over TCP at the DNS address goes to the first upstream resolver, as libslirp does:
  // the guest's DNS works under --restrict too.
  if (a === config.dns) return remote.port === 53 && dnsUpstream !== undefined ? { to: dnsUpstream } : { refused: 'nat.dns-no-upstream' };
  if (config.restrict) return { refused: 'nat.restricted' };
  if (a === config.host) {
    if (config.disableHostLoopback) return { refused: 'nat.host-loopback-disabled' };
    return egressChecked(config, { addr: HOST_LOOPBACK, port: remote.port });
  }
  if (remote.port === 0) return { refused: 'nat.zero-port' };
  if (a >>> 24 === 127 || a >>> 24 === 0) return { refused: 'nat.martian-destination' };
  if (a >= 0xe0000000) return { refused: 'nat.multicast-destination' };
  if (((a & config.netmask) >>> 0) === config.net) return { refused: 'nat.inside-network' };
  return egressChecked(config, remote);
}

/**
 * Where TCP to `remote` goes when a guest forward serves it: its host endpoint (judged by the
 * egress policy) or its host service; undefined when no rule serves `remote`.
 */
export function routeGuestForward(config: NatPolicyOptions, remote: Endpoint): Route | { readonly service: string } | undefined {
  if (typeof remote.addr !== 'number') return undefined; // guest forwards are IPv4, as QEMU's
  const rule = guestForwardAt(config.guestForwards, remote.addr, remote.port);
  if (rule === undefined) return undefined;
  return rule.target.kind === 'host' ? egressChecked(config, rule.target.to) : { service: rule.target.service };
}

/**
 * The IPv6 rules, those of IPv4 in IPv6's terms: the gateway's address reaches ::1, the DNS
 * address's TCP port 53 the first upstream; refused are ::, ::1, IPv4-mapped addresses
 * (::ffff:0:0/96: a guest must not reach IPv4 destinations around the IPv4 rules), link-local
 * and multicast destinations, and the network's own prefix.
 */
function routeOutbound6(config: NatPolicyOptions, a: Ipv6Addr, port: number, dnsUpstream?: Endpoint): Route {
  const v6 = config.ipv6;
  if (v6 === undefined) return { refused: 'nat.ipv6-off' };
  if (a === v6.dns) return port === 53 && dnsUpstream !== undefined ? { to: dnsUpstream } : { refused: 'nat.dns-no-upstream' };
  if (config.restrict) return { refused: 'nat.restricted' };
  if (a === v6.host) {
    if (config.disableHostLoopback) return { refused: 'nat.host-loopback-disabled' };
    return egressChecked(config, { addr: LOOPBACK6, port });
  }
  if (port === 0) return { refused: 'nat.zero-port' };
  if (a === UNSPECIFIED6 || a === LOOPBACK6 || a.startsWith('00000000000000000000ffff') || isLinkLocal6(a)) return { refused: 'nat.martian-destination' };
  if (isMulticast6(a)) return { refused: 'nat.multicast-destination' };
  if (a.slice(0, 16) === v6.prefix.slice(0, 16)) return { refused: 'nat.inside-network' };
  return egressChecked(config, { addr: a, port });
}

function egressChecked(config: NatPolicyOptions, to: Endpoint): Route {
  const refused = config.egress?.judge(to);
  return refused === undefined ? { to } : { refused: refused.drop, egress: { rule: refused.rule, to } };
}

/**
 * The address and port a forwarded host client appears from, as the guest sees it: its own
 * address, or the gateway's for loopback clients (libslirp's rule: the guest cannot reach
 * the host's 127.0.0.1 under that name, but the gateway stands for the host). `guestFamily`:
 * the family of the guest address the client goes to. An IPv4 client of an IPv6 guest
 * appears from the IPv6 gateway when it is a loopback client; other clients of the other
 * family, and IPv6 with `--ipv6 off`, give undefined (the caller counts and refuses them).
 */
export function forwardedRemote(config: NatPolicyOptions, client: Endpoint, guestFamily: 4 | 6 = 4): Endpoint | undefined {
  const a = client.addr;
  if (typeof a === 'number') {
    const loopback = a >>> 24 === 127 || a === 0;
    if (guestFamily === 4) return { addr: loopback ? config.host : a, port: client.port };
    return loopback && config.ipv6 !== undefined ? { addr: config.ipv6.host, port: client.port } : undefined;
  }
  // An IPv4-mapped client (::ffff:a.b.c.d, from a dual-stack socket) is the IPv4 client it names.
  if (a.startsWith('00000000000000000000ffff')) return forwardedRemote(config, { addr: parseInt(a.slice(24), 16), port: client.port }, guestFamily);
  const loopback = a === LOOPBACK6 || a === UNSPECIFIED6;
  if (guestFamily === 4) return loopback ? { addr: config.host, port: client.port } : undefined;
  if (config.ipv6 === undefined) return undefined;
  return { addr: loopback ? config.ipv6.host : a, port: client.port };
}
