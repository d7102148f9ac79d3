/**
 * DHCP options (RFC 2132, RFC 3397, RFC 3442): codes, typed readers for the options the
 * server reads, and encoders for the options it sends. Readers return `undefined` when the
 * option is absent or has the wrong shape: a client option we cannot use is ignored, as
 * RFC 2131 §4.3 lets a server do, and the server decides whether that ends the exchange.
 */
import { put16, put32, u16, u32, type Ipv4Addr } from '../util/bytes.js';
import { findOption, type Dhcp, type DhcpOption } from './wire.js';

/** Option codes used by tslirp (RFC 2132 section in brackets). */
export const OPT = {
  SUBNET_MASK: 1, // §3.3
  ROUTER: 3, // §3.5
  DNS: 6, // §3.8
  HOSTNAME: 12, // §3.14
  DOMAIN_NAME: 15, // §3.17
  MTU: 26, // §5.1
  BROADCAST: 28, // §5.3
  REQUESTED_IP: 50, // §9.1
  LEASE_TIME: 51, // §9.2
  MESSAGE_TYPE: 53, // §9.6
  SERVER_ID: 54, // §9.7
  PARAMETER_REQUEST_LIST: 55, // §9.8
  MESSAGE: 56, // §9.9
  MAX_MESSAGE_SIZE: 57, // §9.10
  RENEWAL_TIME: 58, // §9.11
  REBINDING_TIME: 59, // §9.12
  CLIENT_ID: 61, // §9.14
  TFTP_SERVER_NAME: 66, // §9.4
  BOOTFILE_NAME: 67, // §9.5
  DOMAIN_SEARCH: 119, // RFC 3397
  CLASSLESS_ROUTES: 121, // RFC 3442
} as const;

/** DHCP message types, option 53 (RFC 2132 §9.6). */
export const MSG = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

/** RFC 2132 §9.10: the smallest maximum message size a client may announce. */
export const MIN_MAX_MESSAGE_SIZE = 576;

// ---------------------------------------------------------------------------------------
// Readers

/** Option 53, 1..8; undefined when absent, not one byte, or out of range. */
export function readMessageType(m: Dhcp): number | undefined {
  const d = findOption(m, OPT.MESSAGE_TYPE);
  if (d?.length !== 1 || d[0]! < MSG.DISCOVER || d[0]! > MSG.INFORM) return undefined;
  return d[0]!;
}

function readAddr(m: Dhcp, code: number): Ipv4Addr | undefined {
  const d = findOption(m, code);
  return d?.length === 4 ? u32(d, 0) : undefined;
}

/** Option 50. */
export const readRequestedIp = (m: Dhcp): Ipv4Addr | undefined => readAddr(m, OPT.REQUESTED_IP);

/** Option 54. */
export const readServerId = (m: Dhcp): Ipv4Addr | undefined => readAddr(m, OPT.SERVER_ID);

/** Option 61: type byte plus identifier, at least 2 bytes (RFC 2132 §9.14). A view. */
export function readClientId(m: Dhcp): Uint8Array | undefined {
  const d = findOption(m, OPT.CLIENT_ID);
  return d !== undefined && d.length >= 2 ? d : undefined;
}

/**
 * Option 12 as text: printable ASCII, trailing NULs removed (some clients count the C
 * terminator, RFC 2132 §3.14 says they should not). Anything else reads as undefined.
 */
export function readHostname(m: Dhcp): string | undefined {
  const d = findOption(m, OPT.HOSTNAME);
  if (d === undefined) return undefined;
  let n = d.length;
  while (n > 0 && d[n - 1] === 0) n--;
  if (n === 0 || n > 255) return undefined;
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = d[i]!;
    if (c < 0x21 || c > 0x7e) return undefined;
    s += String.fromCharCode(c);
  }
  return s;
}

/** Option 55: the codes the client asks for, a view (possibly empty). */
export const readParameterRequestList = (m: Dhcp): Uint8Array | undefined =>
  findOption(m, OPT.PARAMETER_REQUEST_LIST);

/** Option 57, in bytes of the whole IP datagram; undefined when absent or below 576. */
export function readMaxMessageSize(m: Dhcp): number | undefined {
  const d = findOption(m, OPT.MAX_MESSAGE_SIZE);
  if (d?.length !== 2) return undefined;
  const v = u16(d, 0);
  return v >= MIN_MAX_MESSAGE_SIZE ? v : undefined;
}

/** Option 51, seconds. */
export function readLeaseTime(m: Dhcp): number | undefined {
  const d = findOption(m, OPT.LEASE_TIME);
  return d?.length === 4 ? u32(d, 0) : undefined;
}

// ---------------------------------------------------------------------------------------
// Encoders: each returns a freshly allocated option, ready for writeDhcp.

const ascii = new TextEncoder();

function addrs(code: number, list: readonly Ipv4Addr[]): DhcpOption {
  const data = new Uint8Array(4 * list.length);
  list.forEach((a, i) => {
    put32(data, 4 * i, a);
  });
  return { code, data };
}

function u32Option(code: number, v: number): DhcpOption {
  const data = new Uint8Array(4);
  put32(data, 0, v);
  return { code, data };
}

const text = (code: number, s: string): DhcpOption => ({ code, data: ascii.encode(s) });

/** Option 53. */
export const encodeMessageType = (type: number): DhcpOption => ({ code: OPT.MESSAGE_TYPE, data: Uint8Array.of(type) });
/** Option 1. */
export const encodeSubnetMask = (mask: Ipv4Addr): DhcpOption => addrs(OPT.SUBNET_MASK, [mask]);
/** Option 3. */
export const encodeRouters = (routers: readonly Ipv4Addr[]): DhcpOption => addrs(OPT.ROUTER, routers);
/** Option 6. */
export const encodeDnsServers = (servers: readonly Ipv4Addr[]): DhcpOption => addrs(OPT.DNS, servers);
/** Option 12. */
export const encodeHostname = (name: string): DhcpOption => text(OPT.HOSTNAME, name);
/** Option 15. */
export const encodeDomainName = (name: string): DhcpOption => text(OPT.DOMAIN_NAME, name);
/** Option 26, 68..65535. */
export function encodeMtu(mtu: number): DhcpOption {
  const data = new Uint8Array(2);
  put16(data, 0, mtu);
  return { code: OPT.MTU, data };
}
/** Option 28. */
export const encodeBroadcast = (addr: Ipv4Addr): DhcpOption => addrs(OPT.BROADCAST, [addr]);
/** Option 51, seconds. */
export const encodeLeaseTime = (s: number): DhcpOption => u32Option(OPT.LEASE_TIME, s);
/** Option 54. */
export const encodeServerId = (addr: Ipv4Addr): DhcpOption => addrs(OPT.SERVER_ID, [addr]);
/** Option 58 (T1), seconds. */
export const encodeRenewalTime = (s: number): DhcpOption => u32Option(OPT.RENEWAL_TIME, s);
/** Option 59 (T2), seconds. */
export const encodeRebindingTime = (s: number): DhcpOption => u32Option(OPT.REBINDING_TIME, s);
/** Option 66. */
export const encodeTftpServerName = (name: string): DhcpOption => text(OPT.TFTP_SERVER_NAME, name);
/** Option 67. */
export const encodeBootfileName = (name: string): DhcpOption => text(OPT.BOOTFILE_NAME, name);
/** Option 56, a NAK's reason (RFC 2131 §4.3.2 table 3). */
export const encodeMessage = (s: string): DhcpOption => text(OPT.MESSAGE, s);

/**
 * Option 119 (RFC 3397 §2): the names in RFC 1035 §3.1 encoding, with RFC 1035 §4.1.4
 * compression pointers whose offsets count from the start of the option's data (RFC 3397
 * §2: the concatenated data is treated as one buffer). Names are dotted text without the
 * root dot; labels are 1..63 ASCII bytes (the caller's invariant: config validates them).
 */
export function encodeDomainSearch(names: readonly string[]): DhcpOption {
  const out: number[] = [];
  const seen = new Map<string, number>(); // lower-cased suffix → offset of its first label
  for (const name of names) {
    const labels = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
    let i = 0;
    for (; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const at = seen.get(suffix);
      if (at !== undefined) {
        out.push(0xc0 | (at >>> 8), at & 0xff);
        break;
      }
      if (out.length < 0x3fff) seen.set(suffix, out.length);
      const bytes = ascii.encode(labels[i]);
      out.push(bytes.length, ...bytes);
    }
    if (i === labels.length) out.push(0);
  }
  return { code: OPT.DOMAIN_SEARCH, data: Uint8Array.from(out) };
}

/** A route for option 121: destination/prefix via gateway. */
export interface ClasslessRoute {
  readonly dest: Ipv4Addr;
  readonly prefixLen: number;
  readonly gateway: Ipv4Addr;
}

/**
 * Option 121 (RFC 3442 §3): per route, the prefix length, the significant octets of the
 * destination (ceil(prefix/8)), then the router. A default route is prefix 0, no octets.
 */
export function encodeClasslessRoutes(routes: readonly ClasslessRoute[]): DhcpOption {
  const out: number[] = [];
  for (const r of routes) {
    out.push(r.prefixLen);
    for (let i = 0; i < Math.ceil(r.prefixLen / 8); i++) out.push((r.dest >>> (24 - 8 * i)) & 0xff);
    out.push((r.gateway >>> 24) & 0xff, (r.gateway >>> 16) & 0xff, (r.gateway >>> 8) & 0xff, r.gateway & 0xff);
  }
  return { code: OPT.CLASSLESS_ROUTES, data: Uint8Array.from(out) };
}

/** Decodes option 121 data; undefined when malformed (prefix > 32 or short). */
export function decodeClasslessRoutes(d: Uint8Array): ClasslessRoute[] | undefined {
  const routes: ClasslessRoute[] = [];
  let at = 0;
  while (at < d.length) {
    const prefixLen = d[at]!;
    if (prefixLen > 32) return undefined;
    const n = Math.ceil(prefixLen / 8);
    if (at + 1 + n + 4 > d.length) return undefined;
    let dest = 0;
    for (let i = 0; i < 4; i++) dest = dest * 256 + (i < n ? d[at + 1 + i]! : 0);
    routes.push({ dest: dest >>> 0, prefixLen, gateway: u32(d, at + 1 + n) });
    at += 1 + n + 4;
  }
  return routes;
}
