/**
 * What a replay's report says about a frame or a host call: a one-line decode in the manner
 * of tshark's summary (`TCP 10.0.2.2:80 → 10.0.2.15:41234 [ACK] seq=1 ack=1 win=65535
 * len=1448`), the named header fields (for the field-level diff between expected and got),
 * and the bytes around the first difference (the hex diff).
 *
 * Lenient on purpose: a frame that diverged may be malformed (that may be the bug), so fields
 * are read as far as the bytes go, with no checksum or length validation; what cannot be
 * read is left out. Sequence numbers are absolute.
 */
import { formatIpAddr, type Endpoint } from '../net/addr.js';
import { formatIpv4Addr, formatMac, u16, u32 } from '../util/bytes.js';

/** A header field: its tshark-like name and value as text. */
export type Field = readonly [name: string, value: string];

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const h16 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

/** The named fields of an Ethernet frame, outermost first. */
export function frameFields(f: Uint8Array): Field[] {
  const out: Field[] = [['frame.len', String(f.length)]];
  if (f.length < 14) return out;
  out.push(['eth.dst', formatMac(f.subarray(0, 6))], ['eth.src', formatMac(f.subarray(6, 12))]);
  let type = u16(f, 12);
  let at = 14;
  if (type === 0x8100 && f.length >= 18) {
    out.push(['vlan.tci', String(u16(f, 14))]);
    type = u16(f, 16);
    at = 18;
  }
  out.push(['eth.type', h16(type)]);
  const p = f.subarray(at);
  if (type === 0x0806 && p.length >= 28) {
    out.push(['arp.opcode', String(u16(p, 6))], ['arp.src.hw_mac', formatMac(p.subarray(8, 14))], ['arp.src.proto_ipv4', formatIpv4Addr(u32(p, 14))],
      ['arp.dst.hw_mac', formatMac(p.subarray(18, 24))], ['arp.dst.proto_ipv4', formatIpv4Addr(u32(p, 24))]);
  } else if (type === 0x0800) {
    out.push(...ipv4Fields(p));
  }
  return out;
}

/** The fields of a raw IPv4 packet and its TCP/UDP/ICMP header. */
export function ipv4Fields(p: Uint8Array): Field[] {
  const out: Field[] = [];
  if (p.length < 20) return out;
  const ihl = (p[0]! & 0x0f) * 4;
  const total = u16(p, 2);
  const ff = u16(p, 6);
  out.push(['ip.version', String(p[0]! >>> 4)], ['ip.hdr_len', String(ihl)], ['ip.dsfield', String(p[1]!)], ['ip.len', String(total)], ['ip.id', h16(u16(p, 4))],
    ['ip.flags', h16(ff & 0xe000)], ['ip.frag_offset', String((ff & 0x1fff) * 8)], ['ip.ttl', String(p[8]!)], ['ip.proto', String(p[9]!)],
    ['ip.checksum', h16(u16(p, 10))], ['ip.src', formatIpv4Addr(u32(p, 12))], ['ip.dst', formatIpv4Addr(u32(p, 16))]);
  if (ihl < 20 || ihl > p.length || (ff & 0x1fff) !== 0) return out;
  const l4 = p.subarray(ihl, Math.max(ihl, Math.min(total, p.length)));
  switch (p[9]) {
    case 6:
      if (l4.length < 20) break;
      out.push(['tcp.srcport', String(u16(l4, 0))], ['tcp.dstport', String(u16(l4, 2))], ['tcp.seq', String(u32(l4, 4))], ['tcp.ack', String(u32(l4, 8))],
        ['tcp.hdr_len', String((l4[12]! >>> 4) * 4)], ['tcp.flags', `0x${l4[13]!.toString(16).padStart(3, '0')}`], ['tcp.window_size_value', String(u16(l4, 14))],
        ['tcp.checksum', h16(u16(l4, 16))], ['tcp.urgent_pointer', String(u16(l4, 18))],
        ['tcp.options', hex(l4.subarray(20, Math.min(l4.length, (l4[12]! >>> 4) * 4)))], ['tcp.len', String(Math.max(0, l4.length - (l4[12]! >>> 4) * 4))]);
      break;
    case 17:
      if (l4.length < 8) break;
      out.push(['udp.srcport', String(u16(l4, 0))], ['udp.dstport', String(u16(l4, 2))], ['udp.length', String(u16(l4, 4))], ['udp.checksum', h16(u16(l4, 6))]);
      break;
    case 1:
      if (l4.length < 8) break;
      out.push(['icmp.type', String(l4[0]!)], ['icmp.code', String(l4[1]!)], ['icmp.checksum', h16(u16(l4, 2))], ['icmp.rest', `0x${u32(l4, 4).toString(16).padStart(8, '0')}`]);
      break;
  }
  return out;
}

const get = (fields: readonly Field[], name: string): string | undefined => fields.find(([n]) => n === name)?.[1];

/** One line, tshark-like: `TCP 10.0.2.2:80 → 10.0.2.15:41234 [SYN, ACK] seq=… ack=… win=… len=0`. */
export function summarizeFrame(f: Uint8Array): string {
  return summarize(frameFields(f), `${f.length} bytes`);
}

export function summarizePacket(p: Uint8Array): string {
  return summarize(ipv4Fields(p), `${p.length} bytes`);
}

function summarize(fs: readonly Field[], size: string): string {
  const g = (n: string): string => get(fs, n) ?? '?';
  const type = get(fs, 'eth.type');
  if (type === '0x0806') {
    const op = g('arp.opcode');
    if (op === '1') return `ARP who-has ${g('arp.dst.proto_ipv4')} tell ${g('arp.src.proto_ipv4')} (${g('arp.src.hw_mac')})`;
    if (op === '2') return `ARP ${g('arp.src.proto_ipv4')} is-at ${g('arp.src.hw_mac')} (to ${g('arp.dst.proto_ipv4')})`;
    return `ARP opcode ${op}`;
  }
  if (get(fs, 'ip.version') === undefined) return type === undefined ? `frame ${size} (no Ethernet header)` : `Ethernet ${g('eth.src')} → ${g('eth.dst')} type ${type} ${size}`;
  const src = g('ip.src');
  const dst = g('ip.dst');
  if (g('ip.frag_offset') !== '0' || (Number(get(fs, 'ip.flags')) & 0x2000) !== 0) return `IPv4 fragment ${src} → ${dst} proto ${g('ip.proto')} offset=${g('ip.frag_offset')} id=${g('ip.id')} len=${g('ip.len')}`;
  if (get(fs, 'tcp.srcport') !== undefined) {
    const flagBits = Number(g('tcp.flags'));
    const flags = TCP_FLAG_NAMES.filter((_, i) => (flagBits & (1 << i)) !== 0);
    return `TCP ${src}:${g('tcp.srcport')} → ${dst}:${g('tcp.dstport')} [${flags.join(', ')}] seq=${g('tcp.seq')} ack=${g('tcp.ack')} win=${g('tcp.window_size_value')} len=${g('tcp.len')}`;
  }
  if (get(fs, 'udp.srcport') !== undefined) {
    const sp = g('udp.srcport');
    const dp = g('udp.dstport');
    const app = sp === '67' || dp === '67' ? 'DHCP ' : sp === '53' || dp === '53' ? 'DNS ' : '';
    return `UDP ${app}${src}:${sp} → ${dst}:${dp} len=${Number(g('udp.length')) - 8}`;
  }
  if (get(fs, 'icmp.type') !== undefined) return `ICMP ${src} → ${dst} type=${g('icmp.type')} code=${g('icmp.code')} len=${Number(g('ip.len')) - Number(g('ip.hdr_len'))}`;
  return `IPv4 ${src} → ${dst} proto ${g('ip.proto')} len=${g('ip.len')}`;
}

/** The fields whose values differ (a field on one side only shows `(absent)` on the other). */
export function fieldDiff(expected: readonly Field[], got: readonly Field[]): { field: string; expected: string; got: string }[] {
  const names = [...new Set([...expected.map(([n]) => n), ...got.map(([n]) => n)])];
  const out: { field: string; expected: string; got: string }[] = [];
  for (const n of names) {
    const e = get(expected, n) ?? '(absent)';
    const g = get(got, n) ?? '(absent)';
    if (e !== g) out.push({ field: n, expected: e, got: g });
  }
  return out;
}

/** The first differing offset and up to 16 bytes each side from the 16-byte row holding it; undefined when equal. */
export function hexDiff(expected: Uint8Array, got: Uint8Array): { offset: number; expected: string; got: string } | undefined {
  const n = Math.min(expected.length, got.length);
  let i = 0;
  while (i < n && expected[i] === got[i]) i++;
  if (i === n && expected.length === got.length) return undefined;
  const row = i & ~15;
  const line = (b: Uint8Array): string => Array.from(b.subarray(row, row + 16), (x) => x.toString(16).padStart(2, '0')).join(' ') || '(ends)';
  return { offset: i, expected: `${row.toString(16).padStart(4, '0')}  ${line(expected)}`, got: `${row.toString(16).padStart(4, '0')}  ${line(got)}` };
}

/** One line for a host call or event: `tcpWrite(flow 3, 1448 bytes) → 0`. */
export function summarizeCall(name: string, args: readonly unknown[], result?: unknown): string {
  const parts = args.map((a, i) => {
    if (a instanceof Uint8Array) return `${a.length} bytes`;
    if (typeof a === 'object' && a !== null && 'addr' in a && 'port' in a) return endpointText(a as Endpoint);
    if (i === 0 && typeof a === 'number') return `id ${a}`;
    return JSON.stringify(a) ?? 'undefined';
  });
  return `${name}(${parts.join(', ')})${typeof result === 'number' ? ` → ${result}` : ''}`;
}

function endpointText(e: Endpoint): string {
  const addr = typeof e.addr === 'number' ? formatIpv4Addr(e.addr) : typeof e.addr === 'string' ? `[${formatIpAddr(e.addr)}]` : '?';
  return `${addr}:${String(e.port)}`;
}
