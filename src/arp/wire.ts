/**
 * ARP for IPv4 over Ethernet (RFC 826): hardware type 1, protocol 0x0800, address lengths
 * 6 and 4. Anything else (other hardware, RARP opcodes, IPv6 has no ARP) is a Drop.
 * Bytes after the 28-byte message are Ethernet padding and ignored.
 */
import type { Drop } from '../util/drops.js';
import { put16, put32, u16, u32, u8, type Ipv4Addr } from '../util/bytes.js';

/** The length of an Ethernet/IPv4 ARP message. */
export const ARP_LEN = 28;

/** RFC 826 opcodes (ares_op$REQUEST, ares_op$REPLY). */
export const ARP_OP = { REQUEST: 1, REPLY: 2 } as const;

const OFF = {
  HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OP: 6,
  SENDER_MAC: 8, SENDER_IP: 14, TARGET_MAC: 18, TARGET_IP: 24,
} as const;

const HTYPE_ETHERNET = 1;
const PTYPE_IPV4 = 0x0800;

/** An Ethernet/IPv4 ARP message. */
export interface Arp {
  /** ARP_OP.REQUEST or ARP_OP.REPLY. */
  readonly op: number;
  /** Six bytes; a view into the received frame. */
  readonly senderMac: Uint8Array;
  readonly senderIp: Ipv4Addr;
  /** Six bytes; a view into the received frame (zero in most requests). */
  readonly targetMac: Uint8Array;
  readonly targetIp: Ipv4Addr;
}

/** Parses an ARP message (the Ethernet payload, padding allowed after it). */
export function parseArp(b: Uint8Array): Arp | Drop {
  if (b.length < ARP_LEN) return 'arp.truncated';
  if (u16(b, OFF.HTYPE) !== HTYPE_ETHERNET) return 'arp.unsupported-hardware';
  if (u16(b, OFF.PTYPE) !== PTYPE_IPV4) return 'arp.unsupported-protocol';
  if (u8(b, OFF.HLEN) !== 6 || u8(b, OFF.PLEN) !== 4) return 'arp.bad-address-length';
  const op = u16(b, OFF.OP);
  if (op !== ARP_OP.REQUEST && op !== ARP_OP.REPLY) return 'arp.unknown-op';
  return {
    op,
    senderMac: b.subarray(OFF.SENDER_MAC, OFF.SENDER_MAC + 6),
    senderIp: u32(b, OFF.SENDER_IP),
    targetMac: b.subarray(OFF.TARGET_MAC, OFF.TARGET_MAC + 6),
    targetIp: u32(b, OFF.TARGET_IP),
  };
}

/** Writes the 28-byte message at `into[at]` and returns ARP_LEN. */
export function writeArp(a: Arp, into: Uint8Array, at = 0): number {
  put16(into, at + OFF.HTYPE, HTYPE_ETHERNET);
  put16(into, at + OFF.PTYPE, PTYPE_IPV4);
  into[at + OFF.HLEN] = 6;
  into[at + OFF.PLEN] = 4;
  put16(into, at + OFF.OP, a.op);
  into.set(a.senderMac.subarray(0, 6), at + OFF.SENDER_MAC);
  put32(into, at + OFF.SENDER_IP, a.senderIp);
  into.set(a.targetMac.subarray(0, 6), at + OFF.TARGET_MAC);
  put32(into, at + OFF.TARGET_IP, a.targetIp);
  return ARP_LEN;
}
