/**
 * Stateless DHCPv6 (RFC 8415 §6.1, §18.3.6): the gateway answers an Information-Request with
 * a Reply carrying the DNS server (RFC 3646 option 23) and the search list (option 24), so a
 * client told by the router advertisement's O flag to ask for "other configuration"
 * (NetworkManager, systemd-networkd, `dhclient -6 -S`) gets them even without RDNSS support.
 *
 * Not done: stateful address assignment (Solicit/Request with IA_NA): counted
 * ('dhcp6.stateful-unsupported') and unanswered, so such a client keeps its SLAAC address.
 * Messages are parsed with every option length checked against the message; a message the
 * server must discard (RFC 8415 §16.12: an Information-Request with an IA option or another
 * server's identifier) is counted and dropped.
 */
import type { Ipv6Addr } from '../net/addr.js';
import { ipv6Bytes } from '../net/addr.js';
import { put16, u16 } from '../util/bytes.js';
import type { Drop } from '../util/drops.js';

export const DHCP6_CLIENT_PORT = 546;
export const DHCP6_SERVER_PORT = 547;

/** RFC 8415 §7.3 message types used here. */
export const DHCP6_MSG = { SOLICIT: 1, REQUEST: 3, RENEW: 5, REBIND: 6, REPLY: 7, INFORMATION_REQUEST: 11 } as const;

/** RFC 8415 §21 and RFC 3646 option codes used here. */
export const DHCP6_OPT = { CLIENTID: 1, SERVERID: 2, IA_NA: 3, IA_TA: 4, ORO: 6, IA_PD: 25, DNS_SERVERS: 23, DOMAIN_LIST: 24, INFORMATION_REFRESH_TIME: 32 } as const;

/** A client message: its type, transaction id and options (views into the message). */
export interface Dhcp6Message {
  readonly type: number;
  readonly transactionId: number;
  /** Option code → its data (the first occurrence). */
  readonly options: ReadonlyMap<number, Uint8Array>;
}

/** Parses a client message (RFC 8415 §8, §21.1): 4-byte header, then TLV options within the message. */
export function parseDhcp6(b: Uint8Array): Dhcp6Message | Drop {
  if (b.length < 4) return 'dhcp6.truncated';
  const options = new Map<number, Uint8Array>();
  for (let at = 4; at < b.length; ) {
    if (at + 4 > b.length) return 'dhcp6.bad-option';
    const code = u16(b, at);
    const len = u16(b, at + 2);
    if (at + 4 + len > b.length) return 'dhcp6.bad-option';
    if (!options.has(code)) options.set(code, b.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return { type: b[0]!, transactionId: (b[1]! << 16) | (b[2]! << 8) | b[3]!, options };
}

/** DUID-LL (RFC 8415 §11.4) of the server's MAC: type 3, hardware type 1 (Ethernet). */
export const duidOf = (mac: Uint8Array): Uint8Array => new Uint8Array([0, 3, 0, 1, ...mac.subarray(0, 6)]);

/** What the server hands out. */
export interface Dhcp6Config {
  readonly serverMac: Uint8Array;
  readonly dnsServers: readonly Ipv6Addr[];
  readonly searchList: readonly string[];
}

/** The names in DNS wire form, uncompressed (RFC 8415 §10). */
function domainList(names: readonly string[]): number[] {
  const out: number[] = [];
  for (const name of names) {
    for (const label of name.split('.').filter((l) => l !== '')) {
      const bytes = new TextEncoder().encode(label);
      out.push(bytes.length, ...bytes);
    }
    out.push(0);
  }
  return out;
}

/**
 * The Reply to an Information-Request, or a Drop saying why none is sent (RFC 8415 §16.12,
 * §18.3.6). Options the client asked for in its ORO are included; without an ORO, both.
 */
export function answerDhcp6(m: Dhcp6Message, c: Dhcp6Config): Uint8Array | Drop {
  if (m.type === DHCP6_MSG.SOLICIT || m.type === DHCP6_MSG.REQUEST || m.type === DHCP6_MSG.RENEW || m.type === DHCP6_MSG.REBIND) return 'dhcp6.stateful-unsupported';
  if (m.type !== DHCP6_MSG.INFORMATION_REQUEST) return 'dhcp6.ignored-type';
  if (m.options.has(DHCP6_OPT.IA_NA) || m.options.has(DHCP6_OPT.IA_TA) || m.options.has(DHCP6_OPT.IA_PD)) return 'dhcp6.information-request-with-ia';
  const duid = duidOf(c.serverMac);
  const sid = m.options.get(DHCP6_OPT.SERVERID);
  if (sid !== undefined && (sid.length !== duid.length || sid.some((x, i) => x !== duid[i]))) return 'dhcp6.other-server';
  const oro = m.options.get(DHCP6_OPT.ORO);
  const asked = (code: number): boolean => {
    if (oro === undefined) return true;
    for (let i = 0; i + 1 < oro.length; i += 2) if (u16(oro, i) === code) return true;
    return false;
  };
  const parts: [number, Uint8Array][] = [[DHCP6_OPT.SERVERID, duid]];
  const cid = m.options.get(DHCP6_OPT.CLIENTID);
  if (cid !== undefined) parts.push([DHCP6_OPT.CLIENTID, cid]);
  if (asked(DHCP6_OPT.DNS_SERVERS) && c.dnsServers.length > 0) {
    const d = new Uint8Array(16 * c.dnsServers.length);
    c.dnsServers.forEach((a, i) => ipv6Bytes(a, d, 16 * i));
    parts.push([DHCP6_OPT.DNS_SERVERS, d]);
  }
  if (asked(DHCP6_OPT.DOMAIN_LIST) && c.searchList.length > 0) parts.push([DHCP6_OPT.DOMAIN_LIST, new Uint8Array(domainList(c.searchList))]);
  const out = new Uint8Array(4 + parts.reduce((n, [, d]) => n + 4 + d.length, 0));
  out[0] = DHCP6_MSG.REPLY;
  out[1] = (m.transactionId >>> 16) & 0xff;
  out[2] = (m.transactionId >>> 8) & 0xff;
  out[3] = m.transactionId & 0xff;
  let at = 4;
  for (const [code, d] of parts) {
    put16(out, at, code);
    put16(out, at + 2, d.length);
    out.set(d, at + 4);
    at += 4 + d.length;
  }
  return out;
}
