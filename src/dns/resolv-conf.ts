/**
 * The nameservers of a resolv.conf file (resolv.conf(5)), as upstreams for the forwarder.
 * Pure: the file is read and watched in `src/host/resolv-conf.ts`.
 *
 * Only `nameserver ADDR` lines matter. Comments start with '#' or ';' at the start of a line
 * (resolv.conf(5)); we also ignore text after them on a line, as glibc effectively does for
 * an address. IPv4 addresses, loopback included (systemd-resolved's 127.0.0.53 is the usual
 * one), become upstreams on port 53. IPv6 addresses are skipped for now (the forwarder's
 * host sockets are IPv4) and reported, as is anything else that is not an address.
 */
import type { Endpoint } from '../net/addr.js';
import { parseIpv4Text } from '../util/ip-text.js';
import { DNS_PORT, MAX_UPSTREAMS } from './forwarder.js';
import { parseIpv6Bytes } from './records.js';

/** What a resolv.conf file says about nameservers. */
export interface ResolvConf {
  /** IPv4 nameservers on port 53, in file order, without duplicates, at most MAX_UPSTREAMS. */
  readonly nameservers: readonly Endpoint[];
  /** Nameserver values not used, each with the reason ('ipv6', 'invalid', 'too-many'). */
  readonly skipped: readonly { readonly value: string; readonly reason: 'ipv6' | 'invalid' | 'too-many' }[];
}

/** Parses resolv.conf text. Never throws. */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: Endpoint[] = [];
  const skipped: { value: string; reason: 'ipv6' | 'invalid' | 'too-many' }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)/.exec(line);
    if (m === null) continue;
    const value = m[1]!;
    const v4 = parseIpv4Text(value);
    if (typeof v4 === 'string') {
      skipped.push({ value, reason: parseIpv6Bytes(value.replace(/%.*$/, '')) !== undefined ? 'ipv6' : 'invalid' });
      continue;
    }
    if (nameservers.some((n) => n.addr === v4)) continue;
    if (nameservers.length >= MAX_UPSTREAMS) {
      skipped.push({ value, reason: 'too-many' });
      continue;
    }
    nameservers.push({ addr: v4, port: DNS_PORT });
  }
  return { nameservers, skipped };
}

/**
 * Parses `HOST[:PORT]` (the `--dns-upstream` option): an IPv4 address with an optional port
 * (default 53). IPv6 upstreams (`[::1]:53`, `::1`) are refused with their own reason: the
 * forwarder's host sockets are IPv4. Returns the endpoint or a sentence saying what is wrong.
 */
export function parseDnsUpstream(text: string): Endpoint | string {
  const t = text.trim();
  const v6 = /^\[([^\]]*)\](?::\d*)?$/.exec(t)?.[1] ?? t;
  if (v6.includes(':') && parseIpv6Bytes(v6) !== undefined) return `'${text}': IPv6 upstreams are not supported yet (the forwarder's host sockets are IPv4)`;
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(t);
  if (m === null) return `'${text}' must be an IPv4 address with an optional :PORT`;
  const addr = parseIpv4Text(m[1]!);
  if (typeof addr === 'string') return `${addr} (--dns-upstream takes IPv4ADDR[:PORT])`;
  const port = m[2] === undefined ? DNS_PORT : Number(m[2]);
  if (port < 1 || port > 65535) return `port ${m[2]!} of '${text}' must be from 1 to 65535`;
  return { addr, port };
}

/** True when two upstream lists are the same, in the same order. */
export function sameUpstreams(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  return a.length === b.length && a.every((e, i) => e.addr === b[i]!.addr && e.port === b[i]!.port);
}
