/**
 * Address prefixes (CIDR) of either family: `10.0.0.0/8`, `fd00::/8`, a bare address for one
 * host. What the egress rules and the trusted proxies are made of.
 */
import { maskOfPrefix, parseIpv4Network, parseIpv6Text } from '../util/ip-text.js';
import { ipv6FromBytes, type IpAddr } from './addr.js';

/** IPv4: the network address (host bits cleared) and mask; IPv6: the prefix as 32 hex digits and its length. */
export type Cidr = { readonly family: 4; readonly net: number; readonly mask: number } | { readonly family: 6; readonly hex: string; readonly bits: number };

/** `ADDR/LEN` or a bare `ADDR` (a /32 or /128), IPv4 or IPv6; the reason when it is neither. */
export function parseCidr(text: string): Cidr | string {
  if (text.includes(':')) {
    const slash = text.indexOf('/');
    const addrText = slash < 0 ? text : text.slice(0, slash);
    const bitsText = slash < 0 ? '128' : text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(bitsText) || Number(bitsText) > 128) return 'an IPv6 prefix length is a number from 0 to 128';
    const bytes = parseIpv6Text(addrText);
    if (typeof bytes === 'string') return bytes;
    const bits = Number(bitsText);
    for (let i = 0; i < 16; i++) bytes[i]! &= (0xff00 >> Math.max(0, Math.min(8, bits - 8 * i))) & 0xff;
    return { family: 6, hex: ipv6FromBytes(bytes), bits };
  }
  const n = parseIpv4Network(text.includes('/') ? text : `${text}/32`);
  if (typeof n === 'string') return n;
  const mask = maskOfPrefix(n.prefixLen);
  return { family: 4, net: (n.addr & mask) >>> 0, mask };
}

/** Whether `addr` lies in `c` (never across families). */
export function cidrHolds(c: Cidr, addr: IpAddr): boolean {
  if (c.family === 4) return typeof addr === 'number' && ((addr & c.mask) >>> 0) === c.net;
  if (typeof addr !== 'string') return false;
  const whole = c.bits >> 2;
  if (addr.slice(0, whole) !== c.hex.slice(0, whole)) return false;
  const rest = c.bits & 3;
  if (rest === 0) return true;
  const m = (0xf0 >> rest) & 0xf;
  return (parseInt(addr[whole]!, 16) & m) === (parseInt(c.hex[whole]!, 16) & m);
}
