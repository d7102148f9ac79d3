/**
 * `tslirp replay --host live FILE --out OUT`: a capture made elsewhere — tcpdump on a guest's
 * TAP, QEMU's `filter-dump`, a capture of libslirp — holds one guest's frames (often with the
 * original NAT's answers beside them). This feeds the guest's frames, at the capture's pace,
 * into a fresh network on real host sockets, and writes what tslirp answered as one pcapng, so
 * that both NATs' answers to the same guest can be read side by side.
 *
 * Such a replay is not a conversation: the guest's later frames were written in answer to the
 * original NAT, not to tslirp. What is done to keep it meaningful, all of it from the capture:
 * - The guest is one MAC (`guestMac`, else the chaddr of its first DHCP request, else the
 *   first source MAC that is not a QEMU-style gateway's 52:55:…); only frames from it are fed,
 *   so a capture of both directions works.
 * - The network is configured like the original: the gateway is the DHCP server identifier
 *   the guest asked for (else the address it ARPed for most, else its /24's .2), the DHCP pool
 *   starts at the address it requested or used, the DNS address is where its queries went when
 *   that is inside the network.
 * - Frames the guest sent to the original gateway's MAC go to tslirp's (the MAC is rewritten).
 * - TCP: the guest acknowledged the original's sequence numbers. Per connection the
 *   original's initial sequence number (its SYN-ACK when the capture has it, else the guest's
 *   first ACK minus one) and tslirp's (its SYN-ACK) give an offset that rewrites the guest's
 *   ACK numbers and SACK blocks (checksum recomputed), so that a host server which sends what
 *   the original server sent gets its bytes acknowledged as they were.
 * - Pace: frames go in at the capture's relative times, each gap cut to `maxGapS` (a capture
 *   with minutes of idling replays in seconds); after the last frame the network has `settleS`
 *   to answer, then it is closed.
 * What cannot hold: answers that depend on the world (a server that answers differently, DNS,
 * a different lease) make the guest's later frames out of place — tslirp answers them as it
 * would answer such frames (a RST for data on a connection it never had, a NAK for a request
 * of another address). Its IPv6 frames go in unchanged.
 *
 * The network is the caller's (`open`: the CLI builds a Node network, `src/daemon`), so this
 * module stays below the daemon in the layers and is tested with a fake one.
 */
import { ETHERNET_HEADER_LEN, ETHERTYPE } from '../ethernet/wire.js';
import { readCapture, type CapturedPacket } from '../pcap/reader.js';
import { epbLength, idbLength, shbLength, writeEpb, writeIdb, writeShb, type Epb } from '../pcap/pcapng.js';
import { finish, sum16 } from '../util/checksum.js';
import { TCP_FLAG } from '../tcp/wire.js';
import { formatIpv4Addr, formatMac, put32, u16, u32, type Ipv4Addr } from '../util/bytes.js';

/** The network a live replay feeds: the caller's, on real host sockets. */
export interface LiveTarget {
  /** One frame from the guest. */
  receiveFrame(frame: Uint8Array): void;
  /** Ends every flow and releases every socket. */
  close(): void;
}

/** The configuration derived from the capture, in `NetworkOptions`' text form. */
export interface LiveNetworkConfig {
  readonly net: string;
  readonly host: string;
  readonly dhcpstart: string;
  readonly dns?: string;
}

export interface LiveReplayOptions {
  /** Builds the network with `config`; its frames to the guest go to `emit`. May throw (exit 3). */
  readonly open: (config: LiveNetworkConfig, emit: (frame: Uint8Array) => void) => LiveTarget;
  /** The guest's MAC (`aa:bb:…`); default: found in the capture. */
  readonly guestMac?: string;
  /** The longest pause between two frames, seconds (default 1). */
  readonly maxGapS?: number;
  /** How long the network may answer after the last frame, seconds (default 1). */
  readonly settleS?: number;
  /** The shb_userappl of the output (default `tslirp`). */
  readonly by?: string;
  /** The name of the input, for the output's interface description. */
  readonly file?: string;
}

export const LIVE_REPORT_SCHEMA = 'tslirp-live-replay-report/1';

export interface LiveReplayReport {
  readonly schema: typeof LIVE_REPORT_SCHEMA;
  /** `done`, `unusable` (not a capture, no Ethernet frame, no guest found: exit 2) or `environment` (the network could not be opened: exit 3). */
  readonly result: 'done' | 'unusable' | 'environment';
  readonly exitCode: 0 | 2 | 3;
  readonly error?: string;
  readonly guestMac?: string;
  /** How the guest was found: `option`, `dhcp` or `source`. */
  readonly guestFrom?: 'option' | 'dhcp' | 'source';
  readonly config?: LiveNetworkConfig;
  /** The original gateway's MAC when it differed from tslirp's (those frames were readdressed). */
  readonly rewroteGatewayMac?: string;
  /** Guest frames fed. */
  readonly fed: number;
  /** Frames of the capture not from the guest (the original NAT's, other hosts'), or not Ethernet. */
  readonly skipped: number;
  /** Frames tslirp sent the guest. */
  readonly answers: number;
  /** TCP connections whose guest ACKs were moved to tslirp's sequence numbers, and segments rewritten. */
  readonly tcpConnections: number;
  readonly tcpRewritten: number;
  /** Guest segments with an ACK on a connection whose offset was not known yet (fed unchanged). */
  readonly tcpUnmapped: number;
  /** Guest segments fed acknowledging bytes tslirp had not sent (after waiting up to min(maxGapS, 1 s) for them). */
  readonly tcpAhead: number;
  /** Seconds of the capture, and seconds the replay took (gaps cut to maxGapS). */
  readonly captureSeconds: number;
  readonly seconds: number;
  /** The output: a pcapng with the fed frames (inbound) and tslirp's answers (outbound). */
  readonly pcapng?: Uint8Array;
}

const ETH = ETHERNET_HEADER_LEN;
/** How often a held guest segment looks whether tslirp has sent what it acknowledges. */
const HOLD_POLL_MS = 2;
/** Bounds: answers kept for the output (frames, bytes). More are counted, not kept. */
const MAX_OUTPUT_FRAMES = 1 << 20;
const MAX_OUTPUT_BYTES = 256 << 20;

const isGatewayStyle = (f: Uint8Array, at: number): boolean => f[at] === 0x52 && f[at + 1] === 0x55;
const macAt = (f: Uint8Array, at: number): string => formatMac(f.subarray(at, at + 6));
const isBroadcastOrMulticast = (f: Uint8Array, at: number): boolean => (f[at]! & 1) === 1;

/** An IPv4 frame's header fields, or undefined. */
function ipv4(f: Uint8Array): { ihl: number; proto: number; src: Ipv4Addr; dst: Ipv4Addr; total: number; fragOff: number } | undefined {
  if (f.length < ETH + 20 || u16(f, 12) !== ETHERTYPE.IPV4 || f[ETH]! >> 4 !== 4) return undefined;
  const ihl = (f[ETH]! & 15) * 4;
  const total = u16(f, ETH + 2);
  if (ihl < 20 || total < ihl || ETH + total > f.length) return undefined;
  return { ihl, proto: f[ETH + 9]!, src: u32(f, ETH + 12), dst: u32(f, ETH + 16), total, fragOff: u16(f, ETH + 6) & 0x1fff };
}

/** The DHCP request in a frame (UDP 68 → 67, BOOTREQUEST): chaddr, option 50, 54, ciaddr. */
function dhcpRequest(f: Uint8Array): { chaddr: string; requested?: Ipv4Addr; server?: Ipv4Addr; ciaddr: Ipv4Addr } | undefined {
  const ip = ipv4(f);
  if (ip?.proto !== 17 || ip.fragOff !== 0) return undefined;
  const u = ETH + ip.ihl;
  if (u + 8 + 240 > ETH + ip.total || u16(f, u) !== 68 || u16(f, u + 2) !== 67) return undefined;
  const b = u + 8;
  if (f[b] !== 1 || u32(f, b + 236) !== 0x63825363) return undefined;
  const r: { chaddr: string; requested?: Ipv4Addr; server?: Ipv4Addr; ciaddr: Ipv4Addr } = { chaddr: macAt(f, b + 28), ciaddr: u32(f, b + 12) };
  const end = ETH + ip.total;
  for (let o = b + 240, n = 0; o < end && n < 256; n++) {
    const code = f[o]!;
    if (code === 255) break;
    if (code === 0) { o++; continue; }
    if (o + 2 > end) break;
    const len = f[o + 1]!;
    if (o + 2 + len > end) break;
    if (len === 4 && code === 50) r.requested = u32(f, o + 2);
    if (len === 4 && code === 54) r.server = u32(f, o + 2);
    o += 2 + len;
  }
  return r;
}

/** The most frequent key of a count map, or undefined. */
function most<K>(m: Map<K, number>): K | undefined {
  let best: K | undefined;
  let n = 0;
  for (const [k, c] of m) if (c > n) { best = k; n = c; }
  return best;
}

const bump = <K>(m: Map<K, number>, k: K): void => { m.set(k, (m.get(k) ?? 0) + 1); };

/** What the capture says about its guest and the original network. */
interface Analysis {
  readonly guestMac: string;
  readonly guestFrom: 'option' | 'dhcp' | 'source';
  readonly config: LiveNetworkConfig;
  readonly originalGatewayMac?: string;
}

function analyse(packets: readonly CapturedPacket[], wanted: string | undefined): Analysis | string {
  let guestMac = wanted?.toLowerCase();
  let guestFrom: Analysis['guestFrom'] = 'option';
  if (guestMac === undefined) {
    for (const p of packets) {
      const d = dhcpRequest(p.data);
      if (d !== undefined) { guestMac = d.chaddr; guestFrom = 'dhcp'; break; }
    }
  }
  if (guestMac === undefined) {
    guestFrom = 'source';
    const first = packets.find((p) => p.data.length >= ETH && !isGatewayStyle(p.data, 6) && !isBroadcastOrMulticast(p.data, 6));
    if (first !== undefined) guestMac = macAt(first.data, 6);
  }
  if (guestMac === undefined) return 'no guest found: no DHCP request and no unicast source MAC (give --guest-mac)';
  let requested: Ipv4Addr | undefined;
  let server: Ipv4Addr | undefined;
  const sources = new Map<Ipv4Addr, number>();
  const arpTargets = new Map<Ipv4Addr, number>();
  const gatewayMacs = new Map<string, number>();
  const dnsDst = new Map<Ipv4Addr, number>();
  let fromGuest = 0;
  for (const p of packets) {
    const f = p.data;
    if (f.length < ETH || macAt(f, 6) !== guestMac) continue;
    fromGuest++;
    const d = dhcpRequest(f);
    if (d !== undefined) {
      requested ??= d.requested ?? (d.ciaddr !== 0 ? d.ciaddr : undefined);
      server ??= d.server;
      continue;
    }
    if (u16(f, 12) === ETHERTYPE.ARP && f.length >= ETH + 28 && u16(f, ETH + 6) === 1) {
      const target = u32(f, ETH + 24);
      if (target !== u32(f, ETH + 14)) bump(arpTargets, target); // not a gratuitous one
      continue;
    }
    const ip = ipv4(f);
    if (ip === undefined || ip.src === 0) continue;
    bump(sources, ip.src);
    if (!isBroadcastOrMulticast(f, 0)) bump(gatewayMacs, macAt(f, 0));
    if (ip.proto === 17 && ip.fragOff === 0 && ip.total >= ip.ihl + 8 && u16(f, ETH + ip.ihl + 2) === 53) bump(dnsDst, ip.dst);
  }
  if (fromGuest === 0) return `no frame from the guest ${guestMac}`;
  const guest = requested ?? most(sources);
  const gateway = server ?? most(arpTargets) ?? (guest === undefined ? undefined : ((guest & 0xffffff00) | 2) >>> 0);
  if (gateway === undefined || guest === undefined) {
    // Nothing says which network: QEMU's default.
    return { guestMac, guestFrom, config: { net: '10.0.2.0/24', host: '10.0.2.2', dhcpstart: '10.0.2.15' } };
  }
  const net = (gateway & 0xffffff00) >>> 0;
  const inNet = (a: Ipv4Addr): boolean => ((a & 0xffffff00) >>> 0) === net && (a & 0xff) !== 0 && (a & 0xff) !== 0xff;
  const dnsSeen = most(dnsDst);
  const dns = dnsSeen !== undefined && inNet(dnsSeen) && dnsSeen !== gateway ? dnsSeen : undefined;
  // The pool runs 16 addresses from dhcpstart (QEMU's) and must hold neither the gateway nor the DNS address (default .3).
  const dnsAddr = dns ?? ((net | 3) >>> 0);
  const poolFits = (start: Ipv4Addr): boolean =>
    inNet(start) && (start & 0xff) <= 0xef && ![gateway, dnsAddr].some((x) => x >= start && x < start + 16);
  const config: LiveNetworkConfig = {
    net: `${formatIpv4Addr(net)}/24`,
    host: formatIpv4Addr(gateway),
    dhcpstart: formatIpv4Addr(poolFits(guest) ? guest : poolFits((net | 15) >>> 0) ? (net | 15) >>> 0 : (net | 0x80) >>> 0),
    ...(dns !== undefined && { dns: formatIpv4Addr(dns) }),
  };
  const gw = most(gatewayMacs);
  return { guestMac, guestFrom, config, ...(gw !== undefined && { originalGatewayMac: gw }) };
}

/** A TCP connection seen from the guest: the original's ISN and tslirp's, once known. */
interface Conn {
  /** The guest's SYN's sequence number. */
  readonly syn: number;
  original?: number;
  ours?: number;
  /** One past the last sequence number tslirp sent on it (SYN and FIN count). */
  sent?: number;
  rewritten: number;
}

const connKey = (a: Ipv4Addr, ap: number, b: Ipv4Addr, bp: number): string => `${a}:${ap}>${b}:${bp}`;

/** tslirp's gateway MAC for a gateway address (`src/stack/config.ts`: 52:55 + the address). */
function ourGatewayMac(host: string): Uint8Array {
  const a = host.split('.').map(Number);
  return new Uint8Array([0x52, 0x55, a[0]!, a[1]!, a[2]!, a[3]!]);
}

/**
 * Moves a guest TCP segment's ACK number and SACK blocks by `delta` (in place, checksum
 * recomputed). `f` is a copy the caller owns.
 */
function shiftAck(f: Uint8Array, ip: { ihl: number; total: number; src: Ipv4Addr; dst: Ipv4Addr }, delta: number): void {
  const t = ETH + ip.ihl;
  const len = ip.total - ip.ihl;
  put32(f, t + 8, (u32(f, t + 8) + delta) >>> 0);
  const hl = (f[t + 12]! >> 4) * 4;
  for (let o = t + 20, n = 0; o < t + hl && n < 40; n++) {
    const kind = f[o]!;
    if (kind === 0) break;
    if (kind === 1) { o++; continue; }
    const olen = f[o + 1] ?? 0;
    if (olen < 2 || o + olen > t + hl) break;
    if (kind === 5) for (let b = o + 2; b + 8 <= o + olen; b += 4) put32(f, b, (u32(f, b) + delta) >>> 0);
    o += olen;
  }
  f[t + 16] = 0;
  f[t + 17] = 0;
  const pseudo = ((ip.src >>> 16) + (ip.src & 0xffff) + (ip.dst >>> 16) + (ip.dst & 0xffff) + 6) >>> 0;
  const c = finish(sum16(f, t, t + len, pseudo + len));
  f[t + 16] = c >> 8;
  f[t + 17] = c & 0xff;
}

/** Collects EPBs for the output pcapng, bounded. */
class Output {
  readonly #blocks: Uint8Array[] = [];
  #bytes = 0;
  dropped = 0;
  constructor(by: string, description: string) {
    const shb = { userAppl: by };
    const s = new Uint8Array(shbLength(shb));
    writeShb(shb, s);
    const idb = { linkType: 1, snaplen: 0, name: 'guest', description };
    const i = new Uint8Array(idbLength(idb));
    writeIdb(idb, i);
    this.#blocks.push(s, i);
  }
  add(data: Uint8Array, direction: 'inbound' | 'outbound'): void {
    const e: Epb = { interfaceId: 0, timeUs: Math.round((performance.timeOrigin + performance.now()) * 1000), data, direction };
    const n = epbLength(e);
    if (this.#blocks.length >= MAX_OUTPUT_FRAMES || this.#bytes + n > MAX_OUTPUT_BYTES) { this.dropped++; return; }
    const b = new Uint8Array(n);
    writeEpb(e, b);
    this.#blocks.push(b);
    this.#bytes += n;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.#blocks);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Feeds the guest's frames of a capture (pcap or pcapng, Ethernet) into `o.open`'s network at
 * the capture's pace and returns what it answered. Never throws.
 */
export async function replayLive(bytes: Uint8Array, o: LiveReplayOptions): Promise<LiveReplayReport> {
  const started = performance.now();
  const empty = { schema: LIVE_REPORT_SCHEMA, fed: 0, skipped: 0, answers: 0, tcpConnections: 0, tcpRewritten: 0, tcpUnmapped: 0, tcpAhead: 0, captureSeconds: 0, seconds: 0 } as const;
  const cap = readCapture(bytes);
  if (typeof cap === 'string') return { ...empty, result: 'unusable', exitCode: 2, error: `not a pcap or pcapng capture (${cap})` };
  const packets = cap.packets.filter((p) => p.linkType === 1);
  if (packets.length === 0) return { ...empty, result: 'unusable', exitCode: 2, error: 'the capture has no Ethernet frame' };
  if (o.guestMac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(o.guestMac)) return { ...empty, result: 'unusable', exitCode: 2, error: `--guest-mac '${o.guestMac}' is not a MAC address` };
  const a = analyse(packets, o.guestMac);
  if (typeof a === 'string') return { ...empty, result: 'unusable', exitCode: 2, error: a };
  const maxGapMs = (o.maxGapS ?? 1) * 1000;
  const settleMs = (o.settleS ?? 1) * 1000;
  const ourGw = ourGatewayMac(a.config.host);
  const rewriteGw = a.originalGatewayMac !== undefined && a.originalGatewayMac !== formatMac(ourGw) ? a.originalGatewayMac : undefined;
  const out = new Output(o.by ?? 'tslirp', `frames of ${a.guestMac} from ${o.file ?? 'a capture'} (inbound) and tslirp's answers (outbound)`);
  const conns = new Map<string, Conn>();
  let answers = 0;
  let unmapped = 0;
  let aheadFed = 0;
  const maxHoldMs = Math.min(maxGapMs, 1000);

  // The original's SYN-ACKs, when the capture has the other direction.
  const originalIsn = new Map<string, number>();
  for (const p of packets) {
    const f = p.data;
    if (f.length < ETH || macAt(f, 6) === a.guestMac) continue;
    const ip = ipv4(f);
    if (ip?.proto !== 6 || ip.fragOff !== 0 || ip.total < ip.ihl + 20) continue;
    const t = ETH + ip.ihl;
    if ((f[t + 13]! & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === (TCP_FLAG.SYN | TCP_FLAG.ACK)) originalIsn.set(connKey(ip.dst, u16(f, t + 2), ip.src, u16(f, t)), u32(f, t + 4));
  }

  const emit = (frame: Uint8Array): void => {
    answers++;
    out.add(frame, 'outbound');
    const ip = ipv4(frame);
    if (ip?.proto !== 6 || ip.fragOff !== 0 || ip.total < ip.ihl + 20) return;
    const t = ETH + ip.ihl;
    const c = conns.get(connKey(ip.dst, u16(frame, t + 2), ip.src, u16(frame, t)));
    if (c === undefined) return;
    const flags = frame[t + 13]!;
    const seq = u32(frame, t + 4);
    if ((flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === (TCP_FLAG.SYN | TCP_FLAG.ACK)) c.ours = seq;
    const end = (seq + ip.total - ip.ihl - (frame[t + 12]! >> 4) * 4 + (flags & (TCP_FLAG.SYN | TCP_FLAG.FIN) ? 1 : 0)) >>> 0;
    if (c.sent === undefined || ((end - c.sent) | 0) > 0) c.sent = end;
  };

  let target: LiveTarget;
  try {
    target = o.open(a.config, emit);
  } catch (e) {
    return { ...empty, result: 'environment', exitCode: 3, error: `cannot open the network: ${(e as Error).message}`, guestMac: a.guestMac, config: a.config };
  }

  /**
   * A guest segment that acknowledges bytes tslirp has not sent yet (its server is slower than
   * the original's) waits for them, up to `maxHoldMs`: the guest did not acknowledge the
   * original's bytes before it had them either.
   */
  const ahead = (f: Uint8Array, key: string): boolean => {
    const c = conns.get(key);
    if (c?.sent === undefined || c.ours === undefined) return false;
    const ip = ipv4(f)!;
    return ((u32(f, ETH + ip.ihl + 8) - c.sent) | 0) > 0;
  };
  const feed = async (src: Uint8Array): Promise<void> => {
    const f = src.slice();
    if (rewriteGw !== undefined && macAt(f, 0) === rewriteGw) f.set(ourGw, 0);
    if (rewriteGw !== undefined && u16(f, 12) === ETHERTYPE.ARP && f.length >= ETH + 28 && macAt(f, ETH + 18) === rewriteGw) f.set(ourGw, ETH + 18);
    const ip = ipv4(f);
    if (ip?.proto === 6 && ip.fragOff === 0 && ip.total >= ip.ihl + 20) {
      const t = ETH + ip.ihl;
      const flags = f[t + 13]!;
      const key = connKey(ip.src, u16(f, t), ip.dst, u16(f, t + 2));
      if ((flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === TCP_FLAG.SYN) {
        // A retransmitted SYN (same sequence number) keeps the connection; another starts a new one.
        const seq = u32(f, t + 4);
        const had = conns.get(key);
        if (had?.syn === seq) {
          deliver(f);
          return;
        }
        const c: Conn = { rewritten: 0, syn: seq };
        const isn = originalIsn.get(key);
        if (isn !== undefined) c.original = isn;
        conns.set(key, c);
      } else if ((flags & TCP_FLAG.ACK) !== 0) {
        const c = conns.get(key);
        if (c !== undefined) {
          c.original ??= (u32(f, t + 8) - 1) >>> 0;
          if (c.ours === undefined) unmapped++;
          else {
            if (c.ours !== c.original) {
              shiftAck(f, ip, (c.ours - c.original) >>> 0);
              c.rewritten++;
            }
            const until = performance.now() + maxHoldMs;
            while (ahead(f, key) && performance.now() < until) await sleep(HOLD_POLL_MS);
            if (ahead(f, key)) aheadFed++;
          }
        }
      }
    }
    deliver(f);
  };
  const deliver = (f: Uint8Array): void => {
    out.add(f, 'inbound');
    target.receiveFrame(f);
  };

  let fed = 0;
  let last: number | undefined;
  let first: number | undefined;
  let due = performance.now();
  for (const p of packets) {
    if (p.data.length < ETH || macAt(p.data, 6) !== a.guestMac) continue;
    const at = p.seconds * 1000 + p.nanos / 1e6;
    first ??= at;
    if (last !== undefined) due += Math.min(Math.max(0, at - last), maxGapMs);
    last = at;
    await sleep(due - performance.now());
    await feed(p.data);
    fed++;
  }
  await sleep(settleMs);
  target.close();
  let rewritten = 0;
  let mapped = 0;
  for (const c of conns.values()) {
    rewritten += c.rewritten;
    if (c.rewritten > 0) mapped++;
  }
  return {
    schema: LIVE_REPORT_SCHEMA,
    result: 'done',
    exitCode: 0,
    guestMac: a.guestMac,
    guestFrom: a.guestFrom,
    config: a.config,
    ...(rewriteGw !== undefined && { rewroteGatewayMac: rewriteGw }),
    fed,
    skipped: cap.packets.length - fed,
    answers,
    tcpConnections: mapped,
    tcpRewritten: rewritten,
    tcpUnmapped: unmapped,
    tcpAhead: aheadFed,
    captureSeconds: first === undefined || last === undefined ? 0 : (last - first) / 1000,
    seconds: (performance.now() - started) / 1000,
    ...(out.dropped > 0 && { error: `${out.dropped} frames not written: the output is bounded (${MAX_OUTPUT_FRAMES} frames, ${MAX_OUTPUT_BYTES >> 20} MiB)` }),
    pcapng: out.bytes(),
  };
}

/** One line for the command's output. */
export function formatLiveReport(r: LiveReplayReport, outPath?: string): string {
  if (r.exitCode !== 0) return `replay --host live: ${r.error ?? r.result}\n`;
  const c = r.config!;
  return (
    `replay --host live: guest ${r.guestMac ?? '?'} (from ${r.guestFrom ?? '?'}), network ${c.net} gateway ${c.host} pool from ${c.dhcpstart}` +
    `${c.dns === undefined ? '' : ` dns ${c.dns}`}${r.rewroteGatewayMac === undefined ? '' : ` (gateway MAC ${r.rewroteGatewayMac} readdressed)`}; ` +
    `${r.fed} guest frames fed (${r.skipped} others skipped), ${r.answers} answers${outPath === undefined ? '' : ` written to ${outPath}`}; ` +
    `TCP ACKs moved on ${r.tcpConnections} connections (${r.tcpRewritten} segments, ${r.tcpUnmapped} unmapped, ${r.tcpAhead} ahead of tslirp); ` +
    `${r.captureSeconds.toFixed(1)} s of capture in ${r.seconds.toFixed(1)} s\n${r.error === undefined ? '' : `warning: ${r.error}\n`}`
  );
}
