/**
 * What `npm run fuzz` fuzzes (engine.ts runs them): every guest-facing parser, whole networks
 * (frames in from two guests, a fake host that answers like a real one), and the e1000 model
 * (random register, I/O, config and descriptor programs against random guest memory).
 */
import { parseArp } from '../../src/arp/wire.js';
import { parseDhcp } from '../../src/dhcp/wire.js';
import { parseDhcp6, parseIaNa } from '../../src/dhcp/dhcp6.js';
import { parseDnsHeader } from '../../src/dns/wire.js';
import { parseEthernet } from '../../src/ethernet/wire.js';
import { parseIcmp } from '../../src/ipv4/icmp-wire.js';
import { IP_PROTO, parseIpv4, pseudoSum } from '../../src/ipv4/wire.js';
import { parseIcmp6, ICMP6_TYPE } from '../../src/ipv6/icmp6-wire.js';
import { neighborSolicitation, parseNeighborAdvertisement, parseNeighborSolicitation, parseRouterSolicitation } from '../../src/ipv6/ndp.js';
import { ALL_ROUTERS, parseIpv6, solicitedNode } from '../../src/ipv6/wire.js';
import { StreamDeframer } from '../../src/link/qemu-stream.js';
import { Network } from '../../src/network/network.js';
import { E1000 } from '../../src/nic-e1000/device.js';
import { arrayGuestMemory } from '../../src/nic-e1000/memory.js';
import { R } from '../../src/nic-e1000/regs.js';
import { readCapture } from '../../src/pcap/reader.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { parseTcp } from '../../src/tcp/wire.js';
import { parseTftp } from '../../src/tftp/wire.js';
import { parseUdp } from '../../src/udp/wire.js';
import { finish, sum16 } from '../../src/util/checksum.js';
import { BROADCAST_MAC } from '../../src/util/bytes.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { a6, icmp6Packet, tcp6Packet, udp6Packet } from '../helpers/frames6.js';
import { arpFrame, echoRequest, ethernetFrame, GATEWAY_MAC, GUEST_MAC, ip, ipv4Frame, ipv4Packet, tcpBytes, udpBytes } from '../helpers/frames.js';
import { Rng, type FuzzTarget } from './engine.js';
import { corpusTarget } from './corpus-target.js';

const MAX_FRAMES = 64;
const MAX_FRAME = 4000;

/** Inputs of the frame targets: frames, each behind a 2-byte length. */
export function encodeFrames(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + 2 + f.length, 0));
  let at = 0;
  for (const f of frames) {
    out[at] = f.length >>> 8;
    out[at + 1] = f.length & 0xff;
    out.set(f, at + 2);
    at += 2 + f.length;
  }
  return out;
}

export function decodeFrames(b: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let at = 0;
  while (at + 2 <= b.length && frames.length < MAX_FRAMES) {
    const n = Math.min((b[at]! << 8) | b[at + 1]!, b.length - at - 2);
    frames.push(b.subarray(at + 2, at + 2 + n));
    at += 2 + n;
  }
  return frames;
}

/** Recomputes the IPv4 header checksum and, for a whole UDP/TCP/ICMP datagram, its checksum: mutations then get past them. */
export function fixChecksums(f: Uint8Array): void {
  if (f.length < 34 || f[12] !== 0x08 || f[13] !== 0x00) return;
  const ihl = (f[14]! & 0xf) * 4;
  if (ihl < 20 || 14 + ihl > f.length) return;
  f[24] = 0;
  f[25] = 0;
  const h = finish(sum16(f, 14, 14 + ihl));
  f[24] = h >>> 8;
  f[25] = h & 0xff;
  const total = (f[16]! << 8) | f[17]!;
  const fragment = ((f[20]! << 8) | f[21]!) & 0x3fff;
  if (fragment !== 0 || total < ihl || 14 + total > f.length) return;
  const l4 = 14 + ihl;
  const proto = f[23]!;
  const at = proto === IP_PROTO.UDP ? 6 : proto === IP_PROTO.TCP ? 16 : proto === IP_PROTO.ICMP ? 2 : -1;
  if (at < 0 || l4 + at + 2 > 14 + total) return;
  f[l4 + at] = 0;
  f[l4 + at + 1] = 0;
  const src = ((f[26]! << 24) | (f[27]! << 16) | (f[28]! << 8) | f[29]!) >>> 0;
  const dst = ((f[30]! << 24) | (f[31]! << 16) | (f[32]! << 8) | f[33]!) >>> 0;
  const initial = proto === IP_PROTO.ICMP ? 0 : pseudoSum(src, dst, proto) + (total - ihl);
  let c = finish(sum16(f, l4, 14 + total, initial));
  if (proto === IP_PROTO.UDP && c === 0) c = 0xffff;
  f[l4 + at] = c >>> 8;
  f[l4 + at + 1] = c & 0xff;
}

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x3f];
const INTERESTING16 = [0, 1, 7, 8, 20, 0x7fff, 0x8000, 0xfffe, 0xffff, 576, 1500, 1501];
/** Offsets of length, header-length, flag and offset fields in an Ethernet + IPv4 + L4 frame. */
const HOT_OFFSETS = [14, 16, 20, 22, 23, 38, 46, 47, 14 + 20 + 4, 14 + 20 + 8 + 236 + 4];

/** A structure-aware mutation of a frame sequence. */
export function mutateFrames(input: Uint8Array, other: Uint8Array, rnd: Rng): Uint8Array {
  const frames = decodeFrames(input).map((f) => f.slice());
  const others = decodeFrames(other);
  if (frames.length === 0) frames.push(new Uint8Array(60));
  const rounds = 1 + rnd.below(4);
  for (let r = 0; r < rounds; r++) {
    const i = rnd.below(frames.length);
    const f = frames[i]!;
    switch (rnd.below(10)) {
      case 0:
        if (f.length > 0) f[rnd.below(f.length)]! ^= 1 << rnd.below(8);
        break;
      case 1:
        if (f.length > 0) f[rnd.below(f.length)] = INTERESTING8[rnd.below(INTERESTING8.length)]!;
        break;
      case 2: {
        const at = rnd.chance(0.7) ? HOT_OFFSETS[rnd.below(HOT_OFFSETS.length)]! : rnd.below(Math.max(1, f.length));
        const v = INTERESTING16[rnd.below(INTERESTING16.length)]!;
        if (at + 1 < f.length) {
          f[at] = v >>> 8;
          f[at + 1] = v & 0xff;
        }
        break;
      }
      case 3:
        frames[i] = f.subarray(0, rnd.below(f.length + 1));
        break;
      case 4: {
        const more = new Uint8Array(Math.min(MAX_FRAME, f.length + 1 + rnd.below(64)));
        more.set(f);
        for (let k = f.length; k < more.length; k++) more[k] = rnd.below(256);
        frames[i] = more;
        break;
      }
      case 5:
        if (others.length > 0) frames[i] = others[rnd.below(others.length)]!.slice();
        break;
      case 6:
        if (frames.length < MAX_FRAMES) frames.splice(i, 0, f.slice());
        break;
      case 7:
        if (frames.length > 1) frames.splice(i, 1);
        break;
      case 8: {
        const j = rnd.below(frames.length);
        [frames[i], frames[j]] = [frames[j]!, frames[i]!];
        break;
      }
      default:
        if (others.length > 0 && frames.length < MAX_FRAMES) frames.push(others[rnd.below(others.length)]!.slice());
    }
  }
  if (rnd.chance(0.5)) for (const f of frames) fixChecksums(f);
  return encodeFrames(frames);
}

const GUEST2_MAC = Uint8Array.from([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);

function dhcpDiscover(mac: Uint8Array, type = 1): Uint8Array {
  const b = new Uint8Array(236 + 14);
  b.set([1, 1, 6], 0);
  b.set(mac, 28);
  b.set([99, 130, 83, 99, 53, 1, type, 50, 4, 10, 0, 2, 15, 255], 236);
  return ethernetFrame(BROADCAST_MAC, 0x0800, ipv4Packet({ protocol: IP_PROTO.UDP, src: 0, dst: 0xffffffff, payload: udpBytes({ srcPort: 68, dstPort: 67, payload: b }, 0, 0xffffffff) }), mac);
}

/** Valid frames of every kind a guest sends: the seeds of the frame targets. */
export function guestFrames(): Uint8Array[][] {
  const g = ip('10.0.2.15');
  const gw = ip('10.0.2.2');
  const dns = new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x63, 0x6f, 0x6d, 0, 0, 1, 0, 1]);
  const echo = echoRequest(new Uint8Array(40).fill(7));
  return [
    [dhcpDiscover(GUEST_MAC), dhcpDiscover(GUEST_MAC, 3)],
    [arpFrame({ targetIp: gw }), arpFrame({ op: 2, targetIp: gw, targetMac: GATEWAY_MAC })],
    [ipv4Frame({ protocol: IP_PROTO.ICMP, payload: echo })],
    [ipv4Frame({ protocol: IP_PROTO.ICMP, id: 5, moreFragments: true, payload: echo.subarray(0, 24) }), ipv4Frame({ protocol: IP_PROTO.ICMP, id: 5, fragmentOffset: 24, payload: echo.subarray(24) })],
    [ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.3'), payload: udpBytes({ srcPort: 5353, dstPort: 53, payload: dns }, g, ip('10.0.2.3')) })],
    [ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('192.0.2.9'), payload: udpBytes({ srcPort: 4000, dstPort: 9, payload: new Uint8Array(32) }, g, ip('192.0.2.9')) })],
    [
      ipv4Frame({ protocol: IP_PROTO.TCP, payload: tcpBytes({ srcPort: 40000, dstPort: 80, flags: 0x02, seq: 100, options: { mss: 1460, windowScale: 7, sackPermitted: true, timestamp: { value: 1, echo: 0 } } }, g, gw) }),
      ipv4Frame({ protocol: IP_PROTO.TCP, payload: tcpBytes({ srcPort: 40000, dstPort: 80, flags: 0x10, seq: 101, ack: 1 }, g, gw) }),
      ipv4Frame({ protocol: IP_PROTO.TCP, payload: tcpBytes({ srcPort: 40000, dstPort: 80, flags: 0x18, seq: 101, ack: 1, payload: new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n') }, g, gw) }),
      ipv4Frame({ protocol: IP_PROTO.TCP, payload: tcpBytes({ srcPort: 40000, dstPort: 80, flags: 0x11, seq: 119, ack: 1 }, g, gw) }),
    ],
    [ethernetFrame(GATEWAY_MAC, 0x0800, ipv4Packet({ protocol: IP_PROTO.ICMP, src: ip('10.0.2.16'), payload: echo }), GUEST2_MAC), ethernetFrame(GUEST_MAC, 0x0806, new Uint8Array(28), GUEST2_MAC)],
    [
      // TFTP: a read request with every option, its OACK's ACK (to port 69: the transfer's port is random), an error.
      ipv4Frame({ protocol: IP_PROTO.UDP, payload: udpBytes({ srcPort: 2000, dstPort: 69, payload: new TextEncoder().encode('\0\x01boot/pxe.0\0octet\0blksize\x001432\0tsize\x000\0windowsize\x004\0timeout\x002\0') }, g, gw) }),
      ipv4Frame({ protocol: IP_PROTO.UDP, payload: udpBytes({ srcPort: 2000, dstPort: 69, payload: Uint8Array.of(0, 4, 0, 0) }, g, gw) }),
      ipv4Frame({ protocol: IP_PROTO.UDP, payload: udpBytes({ srcPort: 2001, dstPort: 69, payload: new TextEncoder().encode('\0\x01../x\0netascii\0') }, g, gw) }),
    ],
    [
      // A guest forward's virtual server (10.0.2.100:80, a command): ARP for it, a connection with data and FIN.
      arpFrame({ targetIp: ip('10.0.2.100') }),
      ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip('10.0.2.100'), payload: tcpBytes({ srcPort: 40001, dstPort: 80, flags: 0x02, seq: 100 }, g, ip('10.0.2.100')) }),
      ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip('10.0.2.100'), payload: tcpBytes({ srcPort: 40001, dstPort: 80, flags: 0x19, seq: 101, ack: 1, payload: new TextEncoder().encode('hello') }, g, ip('10.0.2.100')) }),
    ],
    ...ipv6GuestFrames(),
  ];
}

/** IPv6 seeds: a router solicitation, neighbour solicitation, echo, DNS, outbound UDP and a TCP SYN to the gateway. */
function ipv6GuestFrames(): Uint8Array[][] {
  const g = a6('fd00::5054:ff:fe12:3456');
  const ll = a6('fe80::5054:ff:fe12:3456');
  const gw = a6('fd00::2');
  const v6 = (p: Uint8Array, dst: Uint8Array = GATEWAY_MAC): Uint8Array => ethernetFrame(dst, 0x86dd, p);
  return [
    [v6(icmp6Packet(ll, ALL_ROUTERS, { type: ICMP6_TYPE.ROUTER_SOLICITATION, code: 0, rest: 0, payload: new Uint8Array(0) }), Uint8Array.of(0x33, 0x33, 0, 0, 0, 2))],
    [v6(icmp6Packet(g, solicitedNode(gw), neighborSolicitation(gw, GUEST_MAC)), Uint8Array.of(0x33, 0x33, 0xff, 0, 0, 2))],
    [v6(icmp6Packet(g, gw, { type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 1, payload: new Uint8Array(40).fill(7) }, 64))],
    [v6(udp6Packet(g, a6('fd00::3'), 5353, 53, Uint8Array.of(0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0, 0, 28, 0, 1)))],
    [v6(udp6Packet(g, a6('2001:db8::9'), 4000, 9, new Uint8Array(32)))],
    [v6(tcp6Packet(g, gw, { srcPort: 40000, dstPort: 80, flags: 0x02, options: { mss: 1440 } }))],
  ];
}

/** Whole networks: two guest ports, frames from the input alternately, a fake host that answers. */
export function networkTarget(): FuzzTarget {
  let clock = new ManualClock(0);
  let host = new FakeHost();
  let net: Network;
  let ports: ReturnType<Network['attach']>[] = [];
  let handled = 0;
  let runs = 0;
  const fresh = (): void => {
    clock = new ManualClock(0);
    host = new FakeHost();
    net = new Network('fuzz', resolveStackConfig({ tftp: '/fuzz', guestfwd: ['tcp:10.0.2.100:80-cmd:cat', 'tcp:10.0.2.100:81-127.0.0.1:1'] }), { clock, random: seededRandom(runs), host });
    ports = [net.attach({ send: () => undefined }), net.attach({ send: () => undefined })];
    handled = 0;
  };
  fresh();
  /** Plays the host's part for calls made since last time: connects succeed, reads echo, some fail. */
  const answer = (): void => {
    const calls = host.calls;
    for (; handled < calls.length; handled++) {
      const [method, id] = calls[handled]!;
      const s = net.stack;
      switch (method) {
        case 'tcpConnect':
          if (id % 5 === 0) s.tcpError(id, 'ECONNREFUSED');
          else s.tcpConnected(id);
          break;
        case 'tcpWrite':
          s.tcpData(id, Uint8Array.of(1, 2, 3, 4));
          if (id % 3 === 0) s.tcpEnd(id);
          break;
        case 'udpSend':
          s.udpReceived(id, Uint8Array.of(9, 9));
          break;
        case 'tcpEnd':
          s.tcpClosed(id);
          break;
        case 'tcpConnectService':
          if (id % 5 === 0) s.tcpError(id, 'ENOENT');
          else s.tcpConnected(id);
          break;
        case 'fileOpen':
          if (id % 4 === 0) s.fileError(id, 'ENOENT');
          else s.fileOpened(id, (id * 977) % 5000);
          break;
        case 'fileRead': {
          const [, , offset, length] = calls[handled]! as [string, number, number, number];
          if (id % 7 === 0) s.fileError(id, 'EIO');
          else s.fileData(id, offset, new Uint8Array(Math.min(length, Math.max(0, (id * 977) % 5000 - offset))).fill(id & 0xff));
          break;
        }
      }
    }
  };
  return {
    name: 'network',
    seeds: () => guestFrames().map(encodeFrames),
    run(input) {
      // A fresh network now and then, so that both fresh and long-lived state are fuzzed.
      if (++runs % 200 === 0) fresh();
      const frames = decodeFrames(input);
      net.stack.beginBatch();
      try {
        frames.forEach((f, i) => {
          ports[i & 1]!.receive(f);
          answer();
        });
      } finally {
        net.stack.endBatch();
      }
      clock.advance(runs % 7 === 0 ? 30_000 : 50);
      net.advance();
      answer();
      return frames.length;
    },
    mutate: mutateFrames,
    check() {
      const c = net.stack.counters;
      if (c.get('stack.internal-error') > 0) throw new Error(`stack internal error: ${String(net.stack.lastError)}`);
      if (host.calls.length > 2_000_000) throw new Error('the fake host saw unbounded calls');
      if (net.leases().length > net.config.dhcpPoolSize) throw new Error('more leases than the pool');
    },
  };
}

/** Every guest-facing parser on the same bytes (the frame and its payloads at the usual offsets). */
export function parsersTarget(): FuzzTarget {
  return {
    name: 'parsers',
    seeds: () => guestFrames().map(encodeFrames),
    run(input) {
      let n = 0;
      for (const f of decodeFrames(input)) {
        n++;
        parseEthernet(f);
        parseArp(f.subarray(14));
        const p = parseIpv4(f.subarray(14));
        const l4 = typeof p === 'string' ? f.subarray(34) : p.payload;
        parseIcmp(l4);
        parseUdp(l4, 0);
        parseTcp(l4, 0);
        parseDhcp(l4.subarray(8));
        parseDnsHeader(l4.subarray(8));
        parseTftp(l4.subarray(8));
        const p6 = parseIpv6(f.subarray(14));
        if (typeof p6 !== 'string') {
          const m = parseIcmp6(p6.payload, 0);
          const body = typeof m === 'string' ? { type: 135, code: 0, rest: 0, payload: p6.payload } : m;
          parseNeighborSolicitation(body);
          parseRouterSolicitation({ ...body, type: 133 });
          parseNeighborAdvertisement({ ...body, type: 136 });
          const d6 = parseDhcp6(p6.payload.subarray(8));
          const ia = typeof d6 === 'string' ? undefined : d6.options.get(3);
          if (ia !== undefined) parseIaNa(ia);
        }
        new StreamDeframer(() => undefined).push(f);
        readCapture(f);
      }
      return n;
    },
    mutate: mutateFrames,
  };
}

/** The e1000 model: an input is a program of 8-byte operations against 64 KiB of guest memory. */
export function e1000Target(): FuzzTarget {
  const MEM = 1 << 16;
  const REGS = Object.values(R).filter((v) => v < 0x20000);
  return {
    name: 'e1000',
    seeds() {
      // Bring-up: link, rings at 0x1000/0x2000, enable RX and TX, kick TX, receive.
      const ops = [
        [0, R.CTRL, 0x40], [0, R.TDBAL, 0x1000], [0, R.TDLEN, 128], [0, R.TCTL, 2], [0, R.RDBAL, 0x2000], [0, R.RDLEN, 128],
        [0, R.RCTL, 2], [0, R.RDT, 7], [0, R.IMS, 0xffff], [3, 0x1000, 0x3000], [3, 0x1008, 0x0b00003c], [0, R.TDT, 1], [4, 60, 0], [1, R.ICR, 4],
      ];
      const b = new Uint8Array(ops.length * 8);
      ops.forEach(([k, a, v], i) => {
        b[i * 8] = k!;
        new DataView(b.buffer).setUint32(i * 8 + 1, a!, true);
        new DataView(b.buffer).setUint16(i * 8 + 5, v! & 0xffff, true);
        b[i * 8 + 7] = (v! >>> 16) & 0xff;
      });
      return [b];
    },
    run(input) {
      const mem = new Uint8Array(MEM);
      let now = 0;
      const d = new E1000({ memory: arrayGuestMemory(mem), clock: { now: () => now }, setIrq: () => undefined, emit: () => undefined, rxReady: () => undefined });
      d.configWrite(4, 2, 7);
      const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
      let ops = 0;
      for (let at = 0; at + 8 <= input.length && ops < 4096; at += 8, ops++) {
        const kind = input[at]! % 8;
        const a = view.getUint32(at + 1, true);
        const v = view.getUint16(at + 5, true) | (input[at + 7]! << 16) | ((a & 0xff) << 24);
        const reg = REGS[a % REGS.length]!;
        switch (kind) {
          case 0: d.mmioWrite(a & 0x80000000 ? a % 0x20000 : reg, 4, v >>> 0); break;
          case 1: d.mmioRead(a & 0x80000000 ? a % 0x20000 : reg, 4); break;
          case 2: d.configWrite(a % 0x110, 4, v >>> 0); break;
          case 3: new DataView(mem.buffer).setUint32(a % (MEM - 4), v >>> 0, true); break;
          case 4: d.receiveFrame(input.subarray(at, at + (v % 2048))); break;
          case 5: if (a & 1) d.ioWrite(a % 0x40, 4, v >>> 0); else d.ioRead(a % 0x40, 4); break;
          case 6: now += v % 1000; d.advance(); break;
          default: d.setLinkUp((v & 1) === 1);
        }
      }
      return ops;
    },
    mutate(input, other, rnd) {
      const b = input.slice(0, Math.min(input.length, 8 * 4096));
      const rounds = 1 + rnd.below(8);
      let out = b;
      for (let r = 0; r < rounds; r++) {
        const op = rnd.below(4);
        if (op === 0 && out.length > 0) out[rnd.below(out.length)] = rnd.below(256);
        else if (op === 1 && out.length < 8 * 4096) {
          const more = new Uint8Array(out.length + 8);
          more.set(out);
          for (let k = out.length; k < more.length; k++) more[k] = rnd.below(256);
          out = more;
        } else if (op === 2 && other.length >= 8) {
          const from = rnd.below(other.length >> 3) * 8;
          const at = rnd.below((out.length >> 3) + 1) * 8;
          const merged = new Uint8Array(out.length + 8);
          merged.set(out.subarray(0, at));
          merged.set(other.subarray(from, from + 8), at);
          merged.set(out.subarray(at), at + 8);
          out = merged;
        } else if (out.length >= 8) out = out.subarray(0, out.length - 8).slice();
      }
      return out;
    },
  };
}

export const TARGETS: Readonly<Record<string, () => FuzzTarget>> = { network: networkTarget, parsers: parsersTarget, e1000: e1000Target, corpus: corpusTarget };
