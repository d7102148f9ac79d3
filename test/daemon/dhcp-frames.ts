/**
 * A DHCP DISCOVER written out as hex (not built with our wire modules), and a minimal check
 * of the stack's answer, for the daemon tests.
 *
 * Ethernet broadcast from 52:54:00:12:34:56; IPv4 0.0.0.0 → 255.255.255.255, total length 272,
 * TTL 64, UDP, header checksum 0x79de (worked out by hand); UDP 68 → 67, length 252,
 * checksum 0 (none, RFC 768); BOOTP request xid 0x12345678, broadcast flag, chaddr the MAC,
 * magic cookie, option 53 = 1 (DISCOVER), end.
 */
import { hex } from '../helpers/hex.js';

export const GUEST_MAC_HEX = '525400123456';

export const DHCP_DISCOVER = hex`
  ffffffffffff ${GUEST_MAC_HEX} 0800
  4500 0110 0000 0000 4011 79de 00000000 ffffffff
  0044 0043 00fc 0000
  01 01 06 00 12345678 0000 8000 00000000 00000000 00000000 00000000
  ${GUEST_MAC_HEX} ${'00'.repeat(10)} ${'00'.repeat(64)} ${'00'.repeat(128)}
  63825363 350101 ff`;

/** The DHCP message type (option 53) of a frame when it is a BOOTP reply to port 68, else undefined. */
export function dhcpReplyType(frame: Uint8Array): number | undefined {
  if (frame.length < 14 + 20 + 8 + 240) return undefined;
  if (frame[12] !== 0x08 || frame[13] !== 0x00) return undefined;
  const ihl = (frame[14]! & 0x0f) * 4;
  if (frame[14 + 9] !== 17) return undefined;
  const udp = 14 + ihl;
  if (((frame[udp + 2]! << 8) | frame[udp + 3]!) !== 68) return undefined;
  const bootp = udp + 8;
  if (frame[bootp] !== 2) return undefined; // BOOTREPLY
  for (let at = bootp + 240; at + 1 < frame.length; ) {
    const code = frame[at]!;
    if (code === 0) {
      at++;
      continue;
    }
    if (code === 255) return undefined;
    const len = frame[at + 1]!;
    if (code === 53 && len === 1) return frame[at + 2];
    at += 2 + len;
  }
  return undefined;
}

/** yiaddr of a BOOTP reply as dotted quad. */
export function yiaddr(frame: Uint8Array): string {
  const ihl = (frame[14]! & 0x0f) * 4;
  const at = 14 + ihl + 8 + 16;
  return Array.from(frame.subarray(at, at + 4)).join('.');
}
