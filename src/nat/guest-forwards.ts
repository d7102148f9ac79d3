/**
 * Guest forwards (QEMU's `guestfwd`): a virtual address and port inside the network that
 * guests connect to over TCP, whose connections the host serves — relayed to a host socket,
 * to a command started per connection (its stdin and stdout the connection), or to a
 * program's handler (library use). The grammar of `--guestfwd` (no spaces):
 *
 *     rule   = "tcp:" server ":" port "-" target ;
 *     target = [ "tcp:" ] host ":" port                   (* a host socket *)
 *            | "cmd:" command ;                           (* a command, run by /bin/sh -c *)
 *
 * e.g. `tcp:10.0.2.100:80-127.0.0.1:8080`, `tcp:10.0.2.100:5000-cmd:cat`. QEMU's `dev` form
 * names a character device; `tcp:HOST:PORT` is the one spelled the same here.
 *
 * Meaning:
 * - The server address answers ARP and ping like the gateway; TCP to its port becomes a flow
 *   whose host side is the target (`routeGuestForward`, `src/nat/policy.ts`); TCP to its other
 *   ports is reset, UDP to it is answered with ICMP port unreachable. A rule on the gateway's
 *   or the DNS address's port takes that port over from the host loopback or the resolver.
 * - The rule is explicit configuration, so `--restrict` does not refuse it (QEMU: restrict
 *   "does not affect any explicitly set forwarding rules"); a host target is still judged by
 *   the egress policy (`egress.ts`), at start and for every connection, as any destination.
 * - The server must be inside the network and outside the DHCP pool (a guest could otherwise
 *   be given it), not the network or broadcast address; one rule per server address and port.
 */
import type { Endpoint, Ipv4Endpoint } from '../net/addr.js';
import { ConfigError } from '../util/config-error.js';
import { formatIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import { parseIpv4Text } from '../util/ip-text.js';

/** Where a guest forward's connections go. */
export type GuestForwardTarget =
  /** A TCP connection to a host endpoint. */
  | { readonly kind: 'host'; readonly to: Endpoint }
  /**
   * A service of the host (`Host.tcpConnectService`): `cmd:COMMAND` for a command per
   * connection, or a name the host was given a handler for.
   */
  | { readonly kind: 'service'; readonly service: string };

export interface GuestForward {
  /** The virtual address and port guests connect to. */
  readonly server: Ipv4Endpoint;
  readonly target: GuestForwardTarget;
  /** The rule as written, for messages. */
  readonly text: string;
}

/** What checking a rule's server needs of the network. */
export interface GuestForwardNetwork {
  readonly net: Ipv4Addr;
  readonly netmask: Ipv4Addr;
  readonly dhcpStart: Ipv4Addr;
  readonly dhcpPoolSize: number;
}

const fail = (text: string, why: string): never => {
  throw new ConfigError('guestfwd', `'${text}': ${why}`);
};

function port(text: string, rule: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) return fail(rule, `'${text}' is not a port (1 to 65535)`);
  return Number(text);
}

function address(text: string, rule: string): Ipv4Addr {
  const a = parseIpv4Text(text);
  return typeof a === 'string' ? fail(rule, a) : a;
}

/** The server endpoint `ADDR:PORT` of a rule, checked against the network. Throws ConfigError('guestfwd'). */
export function parseGuestForwardServer(text: string, network: GuestForwardNetwork, rule = text): Ipv4Endpoint {
  const m = /^([^:]+):([^:]+)$/.exec(text);
  if (m === null) return fail(rule, 'the server must be ADDR:PORT');
  const addr = address(m[1]!, rule);
  const broadcast = (network.net | ~network.netmask) >>> 0;
  if (((addr & network.netmask) >>> 0) !== network.net) return fail(rule, `${formatIpv4Addr(addr)} is outside the network`);
  if (addr === network.net || addr === broadcast) return fail(rule, `${formatIpv4Addr(addr)} is the network's ${addr === network.net ? 'network' : 'broadcast'} address`);
  if (addr >= network.dhcpStart && addr < network.dhcpStart + network.dhcpPoolSize) return fail(rule, `${formatIpv4Addr(addr)} is in the DHCP pool: a guest could be given it`);
  return { addr, port: port(m[2]!, rule) };
}

/** `--guestfwd` rules → guest forwards; throws ConfigError('guestfwd') naming the rule. */
export function parseGuestForwards(values: readonly string[], network: GuestForwardNetwork): GuestForward[] {
  const out: GuestForward[] = [];
  for (const text of values) {
    const m = /^tcp:([^-]*)-(.*)$/s.exec(text);
    if (m === null) return fail(text, 'must look like tcp:SERVER:PORT-HOST:PORT or tcp:SERVER:PORT-cmd:COMMAND (TCP only, as QEMU)');
    const server = parseGuestForwardServer(m[1]!, network, text);
    const rest = m[2]!;
    let target: GuestForwardTarget;
    if (rest.startsWith('cmd:')) {
      const command = rest.slice(4);
      if (command.trim() === '' || command.includes('\0')) return fail(text, 'the command is empty');
      target = { kind: 'service', service: `cmd:${command}` };
    } else {
      const h = /^(?:tcp:)?([^:]+):([^:]+)$/.exec(rest);
      if (h === null) return fail(text, `the target '${rest}' must be HOST:PORT, tcp:HOST:PORT or cmd:COMMAND`);
      target = { kind: 'host', to: { addr: address(h[1]!, text), port: port(h[2]!, text) } };
    }
    if (out.some((f) => f.server.addr === server.addr && f.server.port === server.port)) return fail(text, `${formatIpv4Addr(server.addr)}:${server.port} has a rule already`);
    out.push({ server, target, text });
  }
  return out;
}

/** The rule for TCP to `server`, if any. */
export function guestForwardAt(rules: readonly GuestForward[] | undefined, addr: Ipv4Addr, port: number): GuestForward | undefined {
  return rules?.find((f) => f.server.addr === addr && f.server.port === port);
}
