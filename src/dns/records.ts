/**
 * Static DNS records the forwarder answers itself (`--dns-record NAME=ADDR`), and the name of
 * the gateway that reaches the host (`host.tslirp.internal`, in the spirit of Podman's
 * `host.containers.internal`).
 *
 * Names are kept lower-case, without the root dot, in the escaped text form
 * `readDnsName` produces (RFC 4343 §2.1: the comparison is case-insensitive for ASCII).
 */
import { parseIpv4Text, parseIpv6Text } from '../util/ip-text.js';

/** RR types (RFC 1035 §3.2.2, RFC 3596 §2.1). */
export const RR_TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, OPT: 41, ANY: 255 } as const;
/** RR classes (RFC 1035 §3.2.4, §3.2.5). */
export const RR_CLASS = { IN: 1, ANY: 255 } as const;

/** The name answered with the gateway address (`config.host`). */
export const HOST_NAME = 'host.tslirp.internal';
/** The zone the forwarder owns: names under it that it does not know are NXDOMAIN, never asked upstream. */
export const LOCAL_ZONE = 'tslirp.internal';

/** One static A or AAAA record. */
export interface DnsStaticRecord {
  /** Lower-case, no trailing dot. */
  readonly name: string;
  /** RR_TYPE.A or RR_TYPE.AAAA. */
  readonly type: 1 | 28;
  /** The RDATA: 4 bytes for A, 16 for AAAA. */
  readonly rdata: Uint8Array;
}

/** Lower-cases ASCII letters only (RFC 4343 §3) and drops one trailing root dot. */
export function normalizeDnsName(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** True for a host name we accept in a static record: 1..63-byte labels of letters, digits, '-', '_', at most 253 bytes. */
export function isValidRecordName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}

/** The 16 bytes of an IPv6 address in text, or undefined. Zone ids (`%eth0`) are refused. */
export function parseIpv6Bytes(text: string): Uint8Array | undefined {
  const a = parseIpv6Text(text);
  return typeof a === 'string' ? undefined : a;
}

/**
 * Parses `NAME=ADDR` (the `--dns-record` option): an IPv4 address gives an A record, an IPv6
 * address an AAAA record. Returns the record, or a sentence saying what is wrong.
 */
export function parseDnsRecordOption(text: string): DnsStaticRecord | string {
  const eq = text.indexOf('=');
  if (eq <= 0) return `'${text}' must look like NAME=ADDR`;
  const name = normalizeDnsName(text.slice(0, eq).trim());
  const addrText = text.slice(eq + 1).trim();
  if (!isValidRecordName(name)) return `'${text.slice(0, eq)}' is not a valid DNS name`;
  const v4 = parseIpv4Text(addrText);
  if (typeof v4 === 'number') return { name, type: RR_TYPE.A, rdata: new Uint8Array([v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff]) };
  const v6 = parseIpv6Bytes(addrText);
  if (v6 !== undefined) return { name, type: RR_TYPE.AAAA, rdata: v6 };
  return addrText.includes(':') || typeof v4 !== 'string' ? `'${addrText}' is neither an IPv4 nor an IPv6 address` : `${v4}, nor an IPv6 address`;
}
