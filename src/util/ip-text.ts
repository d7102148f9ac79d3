/**
 * Address text as users write it in options and files: IPv4 dotted quads, IPv4 networks
 * (`ADDR/PREFIX` or `ADDR/MASK`), IPv6 text. Every option and configuration file goes
 * through these functions, and they go through `ip-address` — one parser for user text,
 * strict where inet_aton is lax: no leading zeros (`010.0.2.15` is octal to inet_aton, 10 to
 * a reader), no octet above 255, no short forms (`10.2`), no hex, no spaces.
 *
 * Configuration only: nothing here runs per packet. The hot path reads addresses Node
 * formatted itself (a socket's `remoteAddress`) with `parseIpv4Addr` in `util/bytes`, which
 * accepts exactly the same dotted quads (a property test holds the two together).
 *
 * Failures are a sentence saying what is wrong, never a throw: callers wrap it in the
 * ConfigError of their option.
 */
import { Address4, Address6 } from 'ip-address';
import type { Ipv4Addr } from './bytes.js';

const FOUR_NUMBERS = 'four decimal numbers from 0 to 255, like 10.0.2.15';

/** `ip-address`'s reason, where it says more than "invalid". */
function why(e: unknown, fallback: string): string {
  const m = e instanceof Error ? e.message.replace(/\.$/, '') : '';
  return /leading zero/i.test(m) ? 'octets have no leading zeros' : fallback;
}

/** An IPv4 address in dotted-quad text, or the reason it is not one. */
export function parseIpv4Text(text: string): Ipv4Addr | string {
  if (text.includes('/')) return `'${text}' is not an IPv4 address (no /prefix here)`;
  let a: Address4;
  try {
    a = new Address4(text);
  } catch (e) {
    return `'${text}' is not an IPv4 address (${why(e, FOUR_NUMBERS)})`;
  }
  return a.parsedAddress.reduce((v, octet) => v * 256 + Number(octet), 0) >>> 0;
}

/** An IPv4 network: the address as written (host bits kept) and the prefix length. */
export interface Ipv4Network {
  readonly addr: Ipv4Addr;
  /** 0..32. */
  readonly prefixLen: number;
}

/** Number of significant bits of a uint32 (0 for 0). */
const bitLength = (v: number): number => 32 - Math.clz32(v);

/** The netmask of a prefix length: /24 → 0xffffff00. */
export const maskOfPrefix = (prefixLen: number): number => (prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0);

/**
 * `ADDR/PREFIX` (`10.0.2.0/24`) or `ADDR/MASK` (`10.0.2.0/255.255.255.0`, as QEMU's `net=`
 * accepts). A mask must be contiguous (its one bits first), as passt's `--netmask` and every
 * routing table require. Host bits are kept: the caller decides whether they matter.
 */
export function parseIpv4Network(text: string): Ipv4Network | string {
  const slash = text.indexOf('/');
  if (slash < 0) return `'${text}' must be ADDR/PREFIX or ADDR/MASK`;
  const addr = parseIpv4Text(text.slice(0, slash));
  if (typeof addr === 'string') return addr;
  const maskText = text.slice(slash + 1);
  if (/^\d+$/.test(maskText)) {
    if (!/^(0|[1-9]\d?)$/.test(maskText) || Number(maskText) > 32) return `prefix /${maskText} must be a number from 0 to 32`;
    return { addr, prefixLen: Number(maskText) };
  }
  const mask = parseIpv4Text(maskText);
  if (typeof mask === 'string') return `'${maskText}' is neither a prefix length (0 to 32) nor a netmask (like 255.255.255.0)`;
  const prefixLen = 32 - bitLength(~mask >>> 0);
  if (maskOfPrefix(prefixLen) !== mask) return `netmask ${maskText} is not contiguous (its one bits must come first, like 255.255.255.0)`;
  return { addr, prefixLen };
}

/** The 16 bytes of an IPv6 address, or the reason it is not one. Zone ids (`%eth0`) and prefixes are refused. */
export function parseIpv6Text(text: string): Uint8Array | string {
  if (!text.includes(':')) return `'${text}' is not an IPv6 address`;
  if (text.includes('%')) return `'${text}': zone ids (%…) are not accepted here`;
  if (text.includes('/')) return `'${text}' is not an IPv6 address (no /prefix here)`;
  let a: Address6;
  try {
    a = new Address6(text);
  } catch {
    return `'${text}' is not an IPv6 address`;
  }
  const groups = a.canonicalForm().split(':');
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/**
 * Which IP version `text` is (4 or 6), or 0 when it is neither. `zone`: whether an IPv6
 * zone id (`fe80::1%eth0`, meaningful for binding a link-local address) is allowed.
 */
export function ipTextVersion(text: string, o: { zone?: boolean } = {}): 0 | 4 | 6 {
  if (typeof parseIpv4Text(text) === 'number') return 4;
  const pct = text.indexOf('%');
  if (pct >= 0) {
    if (o.zone !== true || !/^[A-Za-z0-9_.-]{1,15}$/.test(text.slice(pct + 1))) return 0;
    return typeof parseIpv6Text(text.slice(0, pct)) === 'string' ? 0 : 6;
  }
  return typeof parseIpv6Text(text) === 'string' ? 0 : 6;
}
