/**
 * Hand-built test frames (Ethernet II, IPv4, UDP, TCP, ICMP, DHCP) for the e1000 tests,
 * independent of the stack's wire modules so a bug there cannot hide one here.
 */
import { finish, sum16 } from '../../src/util/checksum.js';

export const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
export const PEER_MAC = Uint8Array.of(0x52, 0x55, 0x0a, 0x00, 0x02, 0x02);
export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

export const ip = (s: string): number => s.split('.').reduce((a, p) => a * 256 + Number(p), 0) >>> 0;

export function ethernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

const put16 = (b: Uint8Array, at: number, v: number): void => { b[at] = (v >> 8) & 0xff; b[at + 1] = v & 0xff; };
const put32 = (b: Uint8Array, at: number, v: number): void => { put16(b, at, v >>> 16); put16(b, at + 2, v & 0xffff); };

/** IPv4 header + payload with a correct header checksum (or 0 when `zeroChecksum`). */
export function ipv4(src: number, dst: number, proto: number, payload: Uint8Array, id = 0x1234, zeroChecksum = false): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  put16(p, 2, p.length);
  put16(p, 4, id);
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = proto;
  put32(p, 12, src);
  put32(p, 16, dst);
  if (!zeroChecksum) put16(p, 10, finish(sum16(p, 0, 20)));
  p.set(payload, 20);
  return p;
}

/** Pseudo-header sum (not complemented) for `len` bytes of L4. */
export const pseudo = (src: number, dst: number, proto: number, len: number): number =>
  (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;

export function udp(src: number, dst: number, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, u.length);
  u.set(data, 8);
  const c = finish(sum16(u, 0, u.length, pseudo(src, dst, 17, u.length)));
  put16(u, 6, c === 0 ? 0xffff : c);
  return u;
}

/** TCP segment; `checksum` 'full' computes it, 'pseudo' leaves the pseudo-header seed (offload). */
export function tcp(src: number, dst: number, sport: number, dport: number, seq: number, flags: number, data: Uint8Array,
  checksum: 'full' | 'pseudo' | 'pseudo-nolen' = 'full'): Uint8Array {
  const t = new Uint8Array(20 + data.length);
  put16(t, 0, sport);
  put16(t, 2, dport);
  put32(t, 4, seq);
  put32(t, 8, 0x01020304);
  t[12] = 5 << 4;
  t[13] = flags;
  put16(t, 14, 0xffff);
  t.set(data, 20);
  if (checksum === 'full') put16(t, 16, finish(sum16(t, 0, t.length, pseudo(src, dst, 6, t.length))));
  else {
    const s = pseudo(src, dst, 6, checksum === 'pseudo' ? t.length : 0);
    put16(t, 16, sum16(t, 0, 0, s)); // folded, not complemented: what Linux leaves for the NIC
  }
  return t;
}

/** A broadcast ARP request from `mac` (10.0.2.15) for 10.0.2.2, as a frame. */
export function arpRequestForGateway(mac: Uint8Array): Uint8Array {
  const arp = new Uint8Array(28);
  arp.set([0, 1, 8, 0, 6, 4, 0, 1]);
  arp.set(mac, 8);
  arp.set([10, 0, 2, 15], 14);
  arp.set([10, 0, 2, 2], 24);
  return ethernet(BROADCAST, mac, 0x0806, arp);
}

/** True for an ARP reply frame. */
export const isArpReply = (f: Uint8Array): boolean => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2;

export function icmpEcho(id: number, seq: number, data: Uint8Array, type = 8): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  put16(m, 4, id);
  put16(m, 6, seq);
  m.set(data, 8);
  put16(m, 2, finish(sum16(m, 0, m.length)));
  return m;
}

/** A DHCP client message (RFC 2131 §4.4): DISCOVER (1) or REQUEST (3). */
export function dhcpClient(mac: Uint8Array, xid: number, type: 1 | 3, requested?: number, server?: number): Uint8Array {
  const opts: number[] = [53, 1, type];
  if (requested !== undefined) opts.push(50, 4, requested >>> 24, (requested >>> 16) & 0xff, (requested >>> 8) & 0xff, requested & 0xff);
  if (server !== undefined) opts.push(54, 4, server >>> 24, (server >>> 16) & 0xff, (server >>> 8) & 0xff, server & 0xff);
  opts.push(55, 3, 1, 3, 6, 255);
  const m = new Uint8Array(Math.max(300, 240 + opts.length));
  m[0] = 1;
  m[1] = 1;
  m[2] = 6;
  put32(m, 4, xid);
  put16(m, 10, 0x8000); // broadcast flag
  m.set(mac, 28);
  put32(m, 236, 0x63825363);
  m.set(opts, 240);
  const u = udp(0, 0xffffffff, 68, 67, m);
  return ethernet(BROADCAST, mac, 0x0800, ipv4(0, 0xffffffff, 17, u));
}

/** Parses what the tests need from a frame: ethertype, IPv4 protocol, addresses, L4 offset. */
export function parseFrame(f: Uint8Array): { type: number; proto: number; src: number; dst: number; l4: Uint8Array } | undefined {
  if (f.length < 34) return undefined;
  const type = (f[12]! << 8) | f[13]!;
  if (type !== 0x0800) return { type, proto: 0, src: 0, dst: 0, l4: f.subarray(14) };
  const ihl = (f[14]! & 0xf) * 4;
  const total = (f[16]! << 8) | f[17]!;
  const rd = (at: number): number => ((f[at]! << 24) | (f[at + 1]! << 16) | (f[at + 2]! << 8) | f[at + 3]!) >>> 0;
  return { type, proto: f[23]!, src: rd(26), dst: rd(30), l4: f.subarray(14 + ihl, 14 + total) };
}

/** DHCP message type and yiaddr of a server reply inside an Ethernet frame. */
export function parseDhcpReply(f: Uint8Array): { type: number; yiaddr: number; server: number } | undefined {
  const p = parseFrame(f);
  if (p?.proto !== 17) return undefined;
  const m = p.l4.subarray(8);
  if (m.length < 240) return undefined;
  const yiaddr = ((m[16]! << 24) | (m[17]! << 16) | (m[18]! << 8) | m[19]!) >>> 0;
  let type = 0;
  let server = 0;
  for (let i = 240; i < m.length && m[i] !== 255;) {
    const code = m[i]!;
    if (code === 0) { i++; continue; }
    const len = m[i + 1]!;
    if (code === 53) type = m[i + 2]!;
    if (code === 54) server = ((m[i + 2]! << 24) | (m[i + 3]! << 16) | (m[i + 4]! << 8) | m[i + 5]!) >>> 0;
    i += 2 + len;
  }
  return { type, yiaddr, server };
}
