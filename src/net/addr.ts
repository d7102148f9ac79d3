/**
 * Network primitives shared by every layer: addresses of either IP family, endpoints, flow ids.
 *
 * Theory of operation
 * -------------------
 * `src/net/` sits just above `src/util` and below every protocol folder, the NAT, the stack
 * and the host: the types several layers exchange live here, so that no layer imports another
 * one above it to name them (README, "How it is built"). It holds:
 * - `addr.ts`: `IpAddr` (IPv4 or IPv6), `Endpoint` (an address and a port), `FlowId`;
 * - `seams.ts`: the interfaces across which the protocol engines reach the guest (`ToGuest`)
 *   and the host's sockets (`Host`, `HostEvents`), as types only;
 * - `mtu.ts`: the link MTU bounds that the link and the stack's configuration share.
 * Nothing here does I/O, keeps state or allocates per packet.
 *
 * `IpAddr` is a union discriminated by `typeof`: an IPv4 address is the stack's uint32
 * number (as `Ipv4Addr` always was), an IPv6 address a 32-character lower-case hex string
 * (the 16 bytes in network order) branded `Ipv6Addr`. Both forms are primitives, so
 * - equality is `===` for either family and across families (a number never equals a string),
 *   and both work as Map keys and inside template-string keys without a canonical-form step;
 * - the IPv4 hot path is exactly what it was: no wrapper object per address, no extra field
 *   read, and `typeof a === 'number'` is the whole family test.
 * Code that only handles IPv4 (ICMP, DHCP, ARP) narrows with `ipv4Of`
 * and counts or refuses an IPv6 endpoint; the NAT engines, TCP and the DNS forwarder take
 * either family (`IpPair`), the stack's `Ipv6Gateway` brings IPv6 datagrams to them.
 */
import { formatIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import { parseIpv4Text, parseIpv6Text } from '../util/ip-text.js';

export type { Ipv4Addr };

declare const ipv6Brand: unique symbol;
/** An IPv6 address: its 16 bytes in network order as 32 lower-case hex digits. */
export type Ipv6Addr = string & { readonly [ipv6Brand]: true };

/** An IP address of either family; `typeof a === 'number'` tells IPv4. */
export type IpAddr = Ipv4Addr | Ipv6Addr;

export const isIpv4 = (a: IpAddr): a is Ipv4Addr => typeof a === 'number';
export const isIpv6 = (a: IpAddr): a is Ipv6Addr => typeof a === 'string';

/** The IPv4 address, or undefined for an IPv6 one: the checked accessor for IPv4-only code. */
export const ipv4Of = (a: IpAddr): Ipv4Addr | undefined => (typeof a === 'number' ? a : undefined);

/** Same address (either family). */
export const ipEquals = (a: IpAddr, b: IpAddr): boolean => a === b;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The IPv6 address of 16 bytes at `b[at]`. */
export function ipv6FromBytes(b: Uint8Array, at = 0): Ipv6Addr {
  let s = '';
  for (let i = 0; i < 16; i++) s += HEX[b[at + i]!]!;
  return s as Ipv6Addr;
}

/** Writes the 16 bytes of `a` at `into[at]` and returns `into`. */
export function ipv6Bytes(a: Ipv6Addr, into: Uint8Array = new Uint8Array(16), at = 0): Uint8Array {
  for (let i = 0; i < 16; i++) into[at + i] = parseInt(a.slice(2 * i, 2 * i + 2), 16);
  return into;
}

/** IPv4 dotted quad or IPv6 text (user text rules of `util/ip-text`); undefined when neither. */
export function parseIpAddr(text: string): IpAddr | undefined {
  const v4 = parseIpv4Text(text);
  if (typeof v4 === 'number') return v4;
  const v6 = parseIpv6Text(text);
  return typeof v6 === 'string' ? undefined : ipv6FromBytes(v6);
}

/** RFC 5952 text for IPv6 (lower case, longest run of two or more zero groups as `::`); dotted quad for IPv4. */
export function formatIpAddr(a: IpAddr): string {
  if (typeof a === 'number') return formatIpv4Addr(a);
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(parseInt(a.slice(4 * i, 4 * i + 4), 16));
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

/** An address and a port: a socket's side, a guest's side of a flow, the peer a guest talks to. */
export interface Endpoint {
  readonly addr: IpAddr;
  readonly port: number;
}

/** An endpoint known to be IPv4: what the IPv4-only NAT keeps for a flow's guest and remote sides. */
export interface Ipv4Endpoint extends Endpoint {
  readonly addr: Ipv4Addr;
}

/** The endpoint itself when IPv4 (no copy), else undefined: the checked accessor for IPv4-only code. */
export const ipv4Endpoint = (e: Endpoint): Ipv4Endpoint | undefined => (typeof e.addr === 'number' ? (e as Ipv4Endpoint) : undefined);

/** `ADDR:PORT`, with the IPv6 address in brackets (RFC 5952 §6). */
export const formatEndpoint = (e: Endpoint): string =>
  typeof e.addr === 'number' ? `${formatIpv4Addr(e.addr)}:${e.port}` : `[${formatIpAddr(e.addr)}]:${e.port}`;

/** The addresses of a guest datagram (an `Ipv4` or `Ipv6` record has them): what the NAT engines route by. */
export interface IpPair {
  readonly src: IpAddr;
  readonly dst: IpAddr;
}

/** A flow's identity in the NAT flow table: unique per stack, never reused. */
export type FlowId = number;
