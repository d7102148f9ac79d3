/**
 * A script's frames made real: `buildFrame` writes a guest frame (`<`) with every unwritten
 * field at its default and every length and checksum computed, through the wire modules the
 * stack itself parses with; `matchFrame` compares a frame the network sent with an expected
 * one (`>`): the fields written must be equal, the fields not written may be anything, and
 * the frame must parse (so a wrong checksum or length from the network is a difference).
 * Differences are named with tshark's field names, like the replay's field diff.
 *
 * TCP sequence numbers follow packetdrill: the guest's side is written as the guest sends it;
 * the network's side is relative to the network's initial sequence number on that connection,
 * which the network's first SYN (or SYN-ACK) binds — its written `seq` (usually 0) matches any
 * value and fixes the offset. From then on the network's `seq` in expected frames and the
 * guest's `ack` in its frames are written relative. Before the binding they are absolute.
 */
import { ARP_LEN, parseArp, writeArp } from '../arp/wire.js';
import { OPT } from '../dhcp/options.js';
import { BOOTREQUEST, dhcpLength, findOption, parseDhcp, writeDhcp, type DhcpOption } from '../dhcp/wire.js';
import { ETHERNET_HEADER_LEN, ETHERTYPE, parseEthernet, writeEthernet } from '../ethernet/wire.js';
import { icmpLength, parseIcmp, writeIcmp } from '../ipv4/icmp-wire.js';
import { IP_PROTO, ipv4Length, parseIpv4, pseudoSum, writeIpv4, type Ipv4 } from '../ipv4/wire.js';
import type { Endpoint } from '../net/addr.js';
import { parseTcp, tcpLength, writeTcp, type TcpOptions } from '../tcp/wire.js';
import { parseUdp, udpLength, writeUdp } from '../udp/wire.js';
import { BROADCAST_MAC, bytesEqual, formatIpv4Addr, formatMac, type Ipv4Addr, type Mac } from '../util/bytes.js';
import { isDrop } from '../util/drops.js';
import type { FieldDifference } from './replay.js';
import type { FrameSpec, IpFields, Num, ScriptTcpOption, TcpSpec } from './script-parse.js';

/** What frames are built and compared against: the network's addresses and the sequence number offsets bound so far. */
export interface FrameContext {
  readonly guestMac: Mac;
  readonly gatewayMac: Mac;
  readonly gatewayIp: Ipv4Addr;
  /** Connection key (`connectionKey`) → the network's initial sequence number on it. */
  readonly isn: Map<string, number>;
}

const EMPTY = new Uint8Array(0);
const BROADCAST_IP = 0xffffffff;
const epText = (e: Endpoint): string => `${formatIpv4Addr(e.addr as number)}:${e.port}`;

/** One TCP connection, whichever way a segment goes. */
export const connectionKey = (a: Endpoint, b: Endpoint): string => [epText(a), epText(b)].sort().join(' ');

const zeros = (n: number | undefined): Uint8Array => (n === undefined ? EMPTY : new Uint8Array(n));

/** A written number as a value to send: `*` is refused by the parser in guest frames. */
const sent = (n: Num | undefined, fallback: number): number => (n === undefined || n === '*' ? fallback : n);

function toTcpOptions(list: readonly ScriptTcpOption[] | undefined): TcpOptions {
  const o: { -readonly [K in keyof TcpOptions]: TcpOptions[K] } = {};
  for (const x of list ?? []) {
    if (x.kind === 'mss') o.mss = sent(x.value, 0);
    else if (x.kind === 'wscale') o.windowScale = sent(x.value, 0);
    else if (x.kind === 'sackOK') o.sackPermitted = true;
    else if (x.kind === 'TS') o.timestamp = { value: sent(x.val, 0), echo: sent(x.ecr, 0) };
    else if (x.kind === 'sack') o.sack = x.blocks;
  }
  return o;
}

function ipv4(p: IpFields & { src: Ipv4Addr; dst: Ipv4Addr }, protocol: number, payload: Uint8Array): Uint8Array {
  const full: Ipv4 = { dscpEcn: p.tos ?? 0, id: p.id ?? 0, dontFragment: p.df ?? false, moreFragments: false, fragmentOffset: 0, ttl: p.ttl ?? 64, protocol, src: p.src, dst: p.dst, options: EMPTY, payload };
  const out = new Uint8Array(ipv4Length(full));
  writeIpv4(full, out);
  return out;
}

function ethernet(f: FrameSpec, ctx: FrameContext, etherType: number, payload: Uint8Array, broadcast: boolean): Uint8Array {
  const out = new Uint8Array(ETHERNET_HEADER_LEN + payload.length);
  writeEthernet({ dst: f.ethDst ?? (broadcast ? BROADCAST_MAC : ctx.gatewayMac), src: f.ethSrc ?? ctx.guestMac, vlan: undefined, etherType, payload }, out);
  return out;
}

/** The bytes of a guest frame (`<` line). */
export function buildFrame(f: FrameSpec, ctx: FrameContext): Uint8Array {
  switch (f.proto) {
    case 'raw':
      return f.bytes.slice();
    case 'arp': {
      const a = new Uint8Array(ARP_LEN);
      const request = f.op === 1;
      writeArp({ op: f.op, senderMac: f.senderMac ?? f.ethSrc ?? ctx.guestMac, senderIp: f.senderIp, targetMac: request ? new Uint8Array(6) : (f.targetMac ?? ctx.gatewayMac), targetIp: f.targetIp ?? ctx.gatewayIp }, a);
      return ethernet(f, ctx, ETHERTYPE.ARP, a, request);
    }
    case 'tcp': {
      const key = connectionKey(f.src, f.dst);
      if ((f.flags & 0x12) === 0x02) ctx.isn.delete(key); // the guest's SYN: a new connection, the network's ISN not known yet
      const ack = sent(f.ack, 0) + ((f.flags & 0x10) !== 0 ? (ctx.isn.get(key) ?? 0) : 0);
      const t = { srcPort: f.src.port, dstPort: f.dst.port, seq: sent(f.seq, 0), ack: ack >>> 0, flags: f.flags, window: sent(f.win, 65535), urgent: f.urg ?? 0, options: toTcpOptions(f.options), payload: f.payload ?? zeros(f.len) };
      const seg = new Uint8Array(tcpLength(t));
      writeTcp(t, pseudoSum(f.src.addr, f.dst.addr, IP_PROTO.TCP), seg);
      return ethernet(f, ctx, ETHERTYPE.IPV4, ipv4({ ...f, src: f.src.addr, dst: f.dst.addr }, IP_PROTO.TCP, seg), f.dst.addr === BROADCAST_IP);
    }
    case 'udp': {
      const u = { srcPort: f.src.port, dstPort: f.dst.port, payload: f.payload ?? zeros(f.len) };
      const d = new Uint8Array(udpLength(u));
      writeUdp(u, pseudoSum(f.src.addr, f.dst.addr, IP_PROTO.UDP), d);
      return ethernet(f, ctx, ETHERTYPE.IPV4, ipv4({ ...f, src: f.src.addr, dst: f.dst.addr }, IP_PROTO.UDP, d), f.dst.addr === BROADCAST_IP);
    }
    case 'icmp': {
      const m = { type: f.type, code: f.code ?? 0, rest: ((sent(f.echoId, 0) << 16) | sent(f.echoSeq, 0)) >>> 0, payload: f.payload ?? zeros(f.len) };
      const b = new Uint8Array(icmpLength(m));
      writeIcmp(m, b);
      return ethernet(f, ctx, ETHERTYPE.IPV4, ipv4(f, IP_PROTO.ICMP, b), f.dst === BROADCAST_IP);
    }
    case 'dhcp': {
      const options: DhcpOption[] = [{ code: OPT.MESSAGE_TYPE, data: Uint8Array.of(f.type) }];
      const addrOption = (code: number, a: Ipv4Addr): DhcpOption => ({ code, data: Uint8Array.of(a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255) });
      if (f.requested !== undefined) options.push(addrOption(OPT.REQUESTED_IP, f.requested));
      if (f.server !== undefined) options.push(addrOption(OPT.SERVER_ID, f.server));
      const chaddr = new Uint8Array(16);
      chaddr.set(f.chaddr ?? f.ethSrc ?? ctx.guestMac);
      const m = { op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid: sent(f.xid, 0), secs: 0, broadcast: false, ciaddr: f.ciaddr ?? 0, yiaddr: f.yiaddr ?? 0, siaddr: 0, giaddr: 0, chaddr, sname: EMPTY, file: EMPTY, options };
      const msg = new Uint8Array(dhcpLength(m));
      writeDhcp(m, msg);
      const src = f.src ?? { addr: 0, port: 68 };
      const dst = f.dst ?? { addr: BROADCAST_IP, port: 67 };
      const u = { srcPort: src.port, dstPort: dst.port, payload: msg };
      const d = new Uint8Array(udpLength(u));
      writeUdp(u, pseudoSum(src.addr, dst.addr, IP_PROTO.UDP), d);
      return ethernet(f, ctx, ETHERTYPE.IPV4, ipv4({ ...f, src: src.addr, dst: dst.addr }, IP_PROTO.UDP, d), dst.addr === BROADCAST_IP);
    }
  }
}

/** Compares what a line wrote with what came; collects the differences. */
class Diff {
  readonly out: FieldDifference[] = [];
  /** Records `field` when `expected` is written and differs from `got`. */
  eq(field: string, expected: string | number | undefined, got: string | number): void {
    if (expected !== undefined && expected !== '*' && String(expected) !== String(got)) this.out.push({ field, expected: String(expected), got: String(got) });
  }
  add(field: string, expected: string, got: string): void {
    this.out.push({ field, expected, got });
  }
}

const FLAG_ORDER: readonly (readonly [number, string])[] = [[2, 'S'], [1, 'F'], [4, 'R'], [8, 'P'], [16, '.'], [32, 'U'], [64, 'E'], [128, 'W']];
/** packetdrill's spelling of a flag set: `S.`, `P.`, `F.`. */
export const flagText = (f: number): string => FLAG_ORDER.filter(([b]) => (f & b) !== 0).map(([, c]) => c).join('') || '(none)';

/** Options as written, in one order (NOP and EOL are layout, not compared). */
function optionListText(list: readonly ScriptTcpOption[]): string {
  const parts: string[] = [];
  for (const kind of ['mss', 'sackOK', 'TS', 'wscale', 'sack'] as const) {
    const x = list.find((o) => o.kind === kind);
    if (x === undefined) continue;
    if (x.kind === 'mss' || x.kind === 'wscale') parts.push(`${x.kind} ${x.value}`);
    else if (x.kind === 'TS') parts.push(`TS val ${x.val} ecr ${x.ecr}`);
    else if (x.kind === 'sack') parts.push(`sack ${x.blocks.map(([l, r]) => `${l}:${r}`).join(' ')}`);
    else parts.push(x.kind);
  }
  return parts.join(',');
}

/** A segment's options in the script's syntax and order. */
function optionsText(t: TcpOptions): string {
  const parts: string[] = [];
  if (t.mss !== undefined) parts.push(`mss ${t.mss}`);
  if (t.sackPermitted === true) parts.push('sackOK');
  if (t.timestamp !== undefined) parts.push(`TS val ${t.timestamp.value} ecr ${t.timestamp.echo}`);
  if (t.windowScale !== undefined) parts.push(`wscale ${t.windowScale}`);
  if (t.sack !== undefined) parts.push(`sack ${t.sack.map(([l, r]) => `${l}:${r}`).join(' ')}`);
  return parts.join(',');
}

/** The expected options with `*` values taken from what came, so one text comparison decides. */
function optionsExpected(list: readonly ScriptTcpOption[], got: TcpOptions): string {
  const filled = list.map((x): ScriptTcpOption => {
    if (x.kind === 'mss' && x.value === '*') return { kind: 'mss', value: got.mss ?? '*' };
    if (x.kind === 'wscale' && x.value === '*') return { kind: 'wscale', value: got.windowScale ?? '*' };
    if (x.kind === 'TS') return { kind: 'TS', val: x.val === '*' ? (got.timestamp?.value ?? '*') : x.val, ecr: x.ecr === '*' ? (got.timestamp?.echo ?? '*') : x.ecr };
    return x;
  });
  return optionListText(filled);
}

const hex = (b: Uint8Array): string => Array.from(b.subarray(0, 32), (x) => x.toString(16).padStart(2, '0')).join('') + (b.length > 32 ? '…' : '');

function payloadDiff(d: Diff, f: { len?: number; payload?: Uint8Array }, got: Uint8Array, lenField: string): void {
  d.eq(lenField, f.len ?? f.payload?.length, got.length);
  if (f.payload?.length === got.length && !bytesEqual(f.payload, got)) d.add('data.data', hex(f.payload), hex(got));
}

function ipDiff(d: Diff, f: IpFields, ip: Ipv4): void {
  d.eq('ip.ttl', f.ttl, ip.ttl);
  d.eq('ip.id', f.id, ip.id);
  d.eq('ip.dsfield', f.tos, ip.dscpEcn);
  if (f.df !== undefined) d.eq('ip.flags.df', f.df ? 1 : 0, ip.dontFragment ? 1 : 0);
}

/**
 * Compares `got` (a frame the network sent) with an expected frame; returns the differences
 * (empty: a match). A match of the network's SYN binds its connection's ISN in `ctx`.
 */
export function matchFrame(f: FrameSpec, got: Uint8Array, ctx: FrameContext): FieldDifference[] {
  const d = new Diff();
  if (f.proto === 'raw') {
    if (!bytesEqual(f.bytes, got)) d.add('frame', `${f.bytes.length} bytes`, `${got.length} bytes`);
    return d.out;
  }
  const eth = parseEthernet(got);
  if (isDrop(eth)) return [{ field: 'eth', expected: 'an Ethernet frame', got: eth }];
  if (f.ethSrc !== undefined) d.eq('eth.src', formatMac(f.ethSrc), formatMac(eth.src));
  if (f.ethDst !== undefined) d.eq('eth.dst', formatMac(f.ethDst), formatMac(eth.dst));
  const h16 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
  if (f.proto === 'arp') {
    if (eth.etherType !== ETHERTYPE.ARP) return [...d.out, { field: 'eth.type', expected: h16(ETHERTYPE.ARP), got: h16(eth.etherType) }];
    const a = parseArp(eth.payload);
    if (isDrop(a)) return [...d.out, { field: 'arp', expected: 'an ARP message', got: a }];
    d.eq('arp.opcode', f.op, a.op);
    d.eq('arp.src.proto_ipv4', formatIpv4Addr(f.senderIp), formatIpv4Addr(a.senderIp));
    if (f.senderMac !== undefined) d.eq('arp.src.hw_mac', formatMac(f.senderMac), formatMac(a.senderMac));
    if (f.targetIp !== undefined) d.eq('arp.dst.proto_ipv4', formatIpv4Addr(f.targetIp), formatIpv4Addr(a.targetIp));
    if (f.targetMac !== undefined) d.eq('arp.dst.hw_mac', formatMac(f.targetMac), formatMac(a.targetMac));
    return d.out;
  }
  if (eth.etherType !== ETHERTYPE.IPV4) return [...d.out, { field: 'eth.type', expected: h16(ETHERTYPE.IPV4), got: h16(eth.etherType) }];
  const ip = parseIpv4(eth.payload);
  if (isDrop(ip)) return [...d.out, { field: 'ip', expected: 'an IPv4 packet', got: ip }];
  const proto = f.proto === 'tcp' ? IP_PROTO.TCP : f.proto === 'icmp' ? IP_PROTO.ICMP : IP_PROTO.UDP;
  const src = f.proto === 'icmp' ? f.src : f.src?.addr;
  const dst = f.proto === 'icmp' ? f.dst : f.dst?.addr;
  if (src !== undefined) d.eq('ip.src', formatIpv4Addr(src), formatIpv4Addr(ip.src));
  if (dst !== undefined) d.eq('ip.dst', formatIpv4Addr(dst), formatIpv4Addr(ip.dst));
  ipDiff(d, f, ip);
  if (ip.protocol !== proto) return [...d.out, { field: 'ip.proto', expected: String(proto), got: String(ip.protocol) }];
  if (ip.moreFragments || ip.fragmentOffset !== 0) return [...d.out, { field: 'ip.frag_offset', expected: 'an unfragmented datagram', got: `fragment at ${ip.fragmentOffset}${ip.moreFragments ? ', more' : ''}` }];
  const pseudo = pseudoSum(ip.src, ip.dst, ip.protocol);
  switch (f.proto) {
    case 'tcp':
      return tcpDiff(d, f, ip, pseudo, ctx);
    case 'udp':
    case 'dhcp': {
      const u = parseUdp(ip.payload, pseudo);
      if (isDrop(u)) return [...d.out, { field: 'udp', expected: 'a UDP datagram', got: u }];
      if (f.src !== undefined) d.eq('udp.srcport', f.src.port, u.srcPort);
      if (f.dst !== undefined) d.eq('udp.dstport', f.dst.port, u.dstPort);
      if (f.proto === 'udp') {
        payloadDiff(d, f, u.payload, 'udp.payload_len');
        return d.out;
      }
      const m = parseDhcp(u.payload);
      if (isDrop(m)) return [...d.out, { field: 'dhcp', expected: 'a DHCP message', got: m }];
      d.eq('dhcp.option.dhcp', f.type, findOption(m, OPT.MESSAGE_TYPE)?.[0] ?? '(absent)');
      d.eq('dhcp.id', f.xid === undefined || f.xid === '*' ? undefined : `0x${f.xid.toString(16)}`, `0x${m.xid.toString(16)}`);
      if (f.chaddr !== undefined) d.eq('dhcp.hw.mac_addr', formatMac(f.chaddr), formatMac(m.chaddr.subarray(0, 6)));
      if (f.ciaddr !== undefined) d.eq('dhcp.ip.client', formatIpv4Addr(f.ciaddr), formatIpv4Addr(m.ciaddr));
      if (f.yiaddr !== undefined) d.eq('dhcp.ip.your', formatIpv4Addr(f.yiaddr), formatIpv4Addr(m.yiaddr));
      const opt = (code: number): string => {
        const b = findOption(m, code);
        return b?.length === 4 ? formatIpv4Addr(((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) : '(absent)';
      };
      if (f.requested !== undefined) d.eq('dhcp.option.requested_ip_address', formatIpv4Addr(f.requested), opt(OPT.REQUESTED_IP));
      if (f.server !== undefined) d.eq('dhcp.option.dhcp_server_id', formatIpv4Addr(f.server), opt(OPT.SERVER_ID));
      return d.out;
    }
    case 'icmp': {
      const m = parseIcmp(ip.payload);
      if (isDrop(m)) return [...d.out, { field: 'icmp', expected: 'an ICMP message', got: m }];
      d.eq('icmp.type', f.type, m.type);
      d.eq('icmp.code', f.code, m.code);
      d.eq('icmp.ident', f.echoId, m.rest >>> 16);
      d.eq('icmp.seq', f.echoSeq, m.rest & 0xffff);
      payloadDiff(d, f, m.payload, 'icmp.data_len');
      return d.out;
    }
  }
}

function tcpDiff(d: Diff, f: TcpSpec, ip: Ipv4, pseudo: number, ctx: FrameContext): FieldDifference[] {
  const t = parseTcp(ip.payload, pseudo);
  if (isDrop(t)) return [...d.out, { field: 'tcp', expected: 'a TCP segment', got: t }];
  d.eq('tcp.srcport', f.src.port, t.srcPort);
  d.eq('tcp.dstport', f.dst.port, t.dstPort);
  d.eq('tcp.flags', flagText(f.flags), flagText(t.flags));
  const key = connectionKey(f.src, f.dst);
  const isn = ctx.isn.get(key);
  const syn = (t.flags & 0x02) !== 0 && (f.flags & 0x02) !== 0;
  // The network's SYN binds its ISN: any seq matches (the written one becomes its relative value).
  if (!syn) d.eq('tcp.seq', f.seq, ((t.seq - (isn ?? 0)) >>> 0));
  d.eq('tcp.ack', f.ack, t.ack);
  d.eq('tcp.window_size_value', f.win, t.window);
  d.eq('tcp.urgent_pointer', f.urg, t.urgent);
  if (f.options !== undefined) d.eq('tcp.options', optionsExpected(f.options, t.options), optionsText(t.options));
  payloadDiff(d, f, t.payload, 'tcp.len');
  if (syn && d.out.length === 0 && f.seq !== '*') ctx.isn.set(key, (t.seq - (f.seq ?? 0)) >>> 0);
  return d.out;
}

/**
 * For the report: a TCP frame's sequence and ack numbers relative to the connection's initial
 * sequence numbers the script knows (` [relative seq=1 ack=19]`), or '' when it knows none.
 * The network's frames are relative to its ISN; the guest's numbers are as written anyway.
 */
export function relativeNote(frame: Uint8Array, ctx: FrameContext): string {
  const eth = parseEthernet(frame);
  if (isDrop(eth) || eth.etherType !== ETHERTYPE.IPV4) return '';
  const ip = parseIpv4(eth.payload);
  if (isDrop(ip) || ip.protocol !== IP_PROTO.TCP || ip.payload.length < 20) return '';
  const b = ip.payload;
  const port = (at: number): number => (b[at]! << 8) | b[at + 1]!;
  const isn = ctx.isn.get(connectionKey({ addr: ip.src, port: port(0) }, { addr: ip.dst, port: port(2) }));
  if (isn === undefined) return '';
  const seq = ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  return ` [relative seq=${(seq - isn) >>> 0}]`;
}
