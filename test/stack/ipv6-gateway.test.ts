import { describe, expect, it } from 'vitest';
import { ETHERTYPE, parseEthernet } from '../../src/ethernet/wire.js';
import { ICMP6_TYPE, parseIcmp6, type Icmp6 } from '../../src/ipv6/icmp6-wire.js';
import { neighborSolicitation } from '../../src/ipv6/ndp.js';
import { ALL_ROUTERS, NEXT_HEADER, parseIpv6, pseudoSum6, solicitedNode, type Ipv6 } from '../../src/ipv6/wire.js';
import type { Ipv6Addr } from '../../src/net/addr.js';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { parseTcp, TCP_FLAG } from '../../src/tcp/wire.js';
import { parseUdp } from '../../src/udp/wire.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { isDrop } from '../../src/util/drops.js';
import { FakeHost } from '../helpers/fake-host.js';
import { ethernetFrame, GATEWAY_MAC, GUEST_MAC } from '../helpers/frames.js';
import { a6, icmp6Packet, ipv6Packet, tcp6Packet, udp6Packet } from '../helpers/frames6.js';

const GUEST6 = a6('fd00::5054:ff:fe12:3456');
const GUEST_LL = a6('fe80::5054:ff:fe12:3456');
const GW6 = a6('fd00::2');
const DNS6 = a6('fd00::3');
const GW_LL = a6('fe80::5055:aff:fe00:202');
const EMPTY = new Uint8Array(0);
const packet = ipv6Packet;
const icmp = icmp6Packet;
const udp = udp6Packet;
const tcp = tcp6Packet;

function harness(o: NetworkOptions = {}) {
  const host = new FakeHost();
  const clock = new ManualClock(1000);
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig(o), { clock, random: seededRandom(3), emit: (f) => sent.push(f), host });
  const send = (ip6: Uint8Array, dstMac: Uint8Array = GATEWAY_MAC): Ipv6[] => {
    stack.receiveFrame(ethernetFrame(dstMac, ETHERTYPE.IPV6, ip6));
    return sent.splice(0).map((f) => {
      const e = parseEthernet(f);
      if (isDrop(e) || e.etherType !== ETHERTYPE.IPV6) throw new Error('not IPv6');
      const p = parseIpv6(e.payload);
      if (isDrop(p)) throw new Error(p);
      return p;
    });
  };
  const icmpOf = (p: Ipv6): Icmp6 => {
    const m = parseIcmp6(p.payload, pseudoSum6(p.src, p.dst, NEXT_HEADER.ICMPV6));
    if (isDrop(m)) throw new Error(m);
    return m;
  };
  return { host, clock, stack, sent, send, icmpOf };
}

describe('IPv6 gateway', () => {
  it('answers a neighbour solicitation for the gateway with a solicited NA carrying its MAC', () => {
    const t = harness();
    const [na, ...rest] = t.send(icmp(GUEST_LL, solicitedNode(GW6), neighborSolicitation(GW6, GUEST_MAC)), new Uint8Array([0x33, 0x33, 0xff, 0, 0, 2]));
    expect(rest).toEqual([]);
    expect(na!.dst).toBe(GUEST_LL);
    expect(na!.hopLimit).toBe(255);
    const m = t.icmpOf(na!);
    expect(m.type).toBe(ICMP6_TYPE.NEIGHBOR_ADVERTISEMENT);
    expect(m.rest >>> 29).toBe(0b111);
    expect([...m.payload.subarray(18, 24)]).toEqual([...GATEWAY_MAC]);
  });

  it('leaves a guest\'s duplicate address detection alone, and defends its own addresses', () => {
    const t = harness();
    const probe = (target: Ipv6Addr) => t.send(icmp(a6('::'), solicitedNode(target), { ...neighborSolicitation(target, GUEST_MAC), payload: neighborSolicitation(target, GUEST_MAC).payload.subarray(0, 16) }), new Uint8Array([0x33, 0x33, 0xff, 0, 0, 1]));
    expect(probe(GUEST6)).toEqual([]);
    const [defend] = probe(DNS6);
    expect(defend!.dst).toBe(a6('ff02::1'));
    expect(t.icmpOf(defend!).type).toBe(ICMP6_TYPE.NEIGHBOR_ADVERTISEMENT);
  });

  it('answers a router solicitation with prefix, MTU, RDNSS and DNSSL, from its link-local address', () => {
    const t = harness({ dnssearch: ['lab.test'] });
    const [ra] = t.send(icmp(GUEST_LL, ALL_ROUTERS, { type: ICMP6_TYPE.ROUTER_SOLICITATION, code: 0, rest: 0, payload: EMPTY }), new Uint8Array([0x33, 0x33, 0, 0, 0, 2]));
    expect(ra!.src).toBe(GW_LL);
    const m = t.icmpOf(ra!);
    expect(m.type).toBe(ICMP6_TYPE.ROUTER_ADVERTISEMENT);
    expect(m.rest & 0xffff).toBe(1800);
    const types: number[] = [];
    for (let i = 8; i < m.payload.length; i += m.payload[i + 1]! * 8) types.push(m.payload[i]!);
    expect(types).toEqual([1, 5, 3, 25, 31]);
  });

  it('answers ping at the gateway and the DNS address; refuses outbound ICMPv6 as administratively prohibited', () => {
    const t = harness();
    for (const to of [GW6, DNS6]) {
      const [reply] = t.send(icmp(GUEST6, to, { type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 0x12340001, payload: new Uint8Array([1, 2, 3]) }, 64));
      expect(reply!.src).toBe(to);
      expect(t.icmpOf(reply!)).toMatchObject({ type: ICMP6_TYPE.ECHO_REPLY, rest: 0x12340001 });
    }
    const [err] = t.send(icmp(GUEST6, a6('2001:db8::1'), { type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 1, payload: EMPTY }, 64));
    expect(t.icmpOf(err!)).toMatchObject({ type: ICMP6_TYPE.DEST_UNREACHABLE, code: 1 });
  });

  it('sends UDP to the DNS address to the forwarder and answers local names over IPv6', () => {
    const t = harness();
    t.send(icmp(GUEST6, GW6, { type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 1, payload: EMPTY }, 64));
    const q = new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, ...Buffer.from('host'), 6, ...Buffer.from('tslirp'), 8, ...Buffer.from('internal'), 0, 0, 28, 0, 1]);
    const [answer] = t.send(udp(GUEST6, DNS6, 40000, 53, q));
    expect(answer!.src).toBe(DNS6);
    const u = parseUdp(answer!.payload, pseudoSum6(answer!.src, answer!.dst, NEXT_HEADER.UDP));
    if (isDrop(u)) throw new Error(u);
    expect(u.dstPort).toBe(40000);
    expect([...u.payload.subarray(u.payload.length - 16)]).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  });

  it('connects TCP to the gateway\'s IPv6 address to the host\'s ::1, and answers SYN-ACK once connected', () => {
    const t = harness();
    expect(t.send(tcp(GUEST6, GW6, { srcPort: 33000, dstPort: 8080, flags: TCP_FLAG.SYN, options: { mss: 1440 } }))).toEqual([]);
    const call = t.host.calls.find((c) => c[0] === 'tcpConnect')!;
    expect(call[2]).toEqual({ addr: a6('::1'), port: 8080 });
    t.stack.tcpConnected(call[1]);
    const [synAck] = t.sent.splice(0).map((f) => parseIpv6(f.subarray(14)) as Ipv6);
    expect(synAck!.src).toBe(GW6);
    const s = parseTcp(synAck!.payload, pseudoSum6(synAck!.src, synAck!.dst, NEXT_HEADER.TCP));
    if (isDrop(s)) throw new Error(s);
    expect(s.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)).toBe(TCP_FLAG.SYN | TCP_FLAG.ACK);
    expect(s.options.mss).toBe(1500 - 60);
  });

  it('answers a host refusal of an IPv6 connection at once: RST, and ICMPv6 unreachable when the host has no route', () => {
    const t = harness();
    t.send(tcp(GUEST6, a6('2001:db8::9'), { srcPort: 33001, dstPort: 80, flags: TCP_FLAG.SYN }));
    const calls = t.host.calls.filter((c) => c[0] === 'tcpConnect');
    t.stack.tcpError(calls[0]![1], 'ENETUNREACH');
    const [err] = t.sent.splice(0).map((f) => parseIpv6(f.subarray(14)) as Ipv6);
    expect(t.icmpOf(err!)).toMatchObject({ type: ICMP6_TYPE.DEST_UNREACHABLE, code: 0 });
    t.send(tcp(GUEST6, GW6, { srcPort: 33002, dstPort: 1, flags: TCP_FLAG.SYN }));
    const second = t.host.calls.filter((c) => c[0] === 'tcpConnect')[1]!;
    t.stack.tcpError(second[1], 'ECONNREFUSED');
    const [rst] = t.sent.splice(0).map((f) => parseIpv6(f.subarray(14)) as Ipv6);
    expect(rst!.protocol).toBe(NEXT_HEADER.TCP);
  });

  it('refuses a routing header with segments left, and counts IPv6 with --ipv6 off', () => {
    const t = harness();
    const rh = new Uint8Array([NEXT_HEADER.ICMPV6, 0, 0, 1, 0, 0, 0, 0]);
    const [pp] = t.send(packet(GUEST6, GW6, NEXT_HEADER.ROUTING, rh));
    expect(t.icmpOf(pp!)).toMatchObject({ type: ICMP6_TYPE.PARAM_PROBLEM, code: 0, rest: 42 });
    const off = harness({ ipv6: 'off' });
    expect(off.send(icmp(GUEST6, GW6, { type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 1, payload: EMPTY }))).toEqual([]);
    expect(off.stack.counters.get('ethernet.ipv6-off')).toBe(1);
  });

  it('advertises periodically once a guest speaks IPv6, every 200 to 600 s; an IPv4-only network stays idle', () => {
    const t = harness();
    expect(t.stack.nextDeadline()).toBeUndefined();
    t.send(icmp(GUEST6, GW6, { type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 1, payload: EMPTY }, 64));
    let last = t.clock.now();
    for (let i = 0; i < 3; i++) {
      const at = t.stack.nextDeadline()!;
      expect(at - last).toBeGreaterThanOrEqual(200_000);
      expect(at - last).toBeLessThan(600_000);
      t.clock.advance(at - t.clock.now());
      t.stack.advance();
      const [ra] = t.sent.splice(0).map((f) => parseIpv6(f.subarray(14)) as Ipv6);
      expect(ra!.dst).toBe(a6('ff02::1'));
      expect(t.icmpOf(ra!).type).toBe(ICMP6_TYPE.ROUTER_ADVERTISEMENT);
      last = at;
    }
  });

  it('applies the NAT policy to IPv6 destinations: ::1, link-local, in-prefix and mapped refused; public egress refuses fc00::/7', () => {
    const t = harness();
    for (const to of ['::1', '::ffff:127.0.0.1']) {
      const [rst] = t.send(tcp(GUEST6, a6(to), { srcPort: 34000, dstPort: 80, flags: TCP_FLAG.SYN }));
      expect(rst?.protocol, to).toBe(NEXT_HEADER.TCP);
    }
    expect(t.stack.counters.get('nat.martian-destination')).toBe(2);
    // Link-local and in-prefix destinations are other guests on the link: never routed, never NAT.
    for (const to of ['fe80::1', 'fd00::99']) expect(t.send(tcp(GUEST6, a6(to), { srcPort: 34000, dstPort: 80, flags: TCP_FLAG.SYN })), to).toEqual([]);
    expect(t.stack.counters.get('ipv6.to-other-guest')).toBe(2);
    expect(t.host.calls.filter((c) => c[0] === 'tcpConnect')).toEqual([]);
    t.stack.config.egress!.markPublic();
    t.send(tcp(GUEST6, a6('fd12::1'), { srcPort: 34001, dstPort: 80, flags: TCP_FLAG.SYN }));
    expect(t.stack.counters.get('nat.egress-public-default')).toBe(1);
    t.send(tcp(GUEST6, GW6, { srcPort: 34002, dstPort: 80, flags: TCP_FLAG.SYN }));
    expect(t.stack.counters.get('nat.egress-public-default')).toBe(2);
    t.send(tcp(GUEST6, a6('2001:db8::5'), { srcPort: 34003, dstPort: 80, flags: TCP_FLAG.SYN }));
    expect(t.host.calls.filter((c) => c[0] === 'tcpConnect').map((c) => c[2])).toEqual([{ addr: a6('2001:db8::5'), port: 80 }]);
  });

  it('--ipv6-net, --ipv6-host, --ipv6-dns: a /64 unicast prefix, addresses inside it; --mtu under 1280 turns the default off', () => {
    expect(resolveStackConfig({ ipv6Net: 'fd42:1:2:3::/64' }).ipv6).toMatchObject({ prefix: a6('fd42:1:2:3::'), host: a6('fd42:1:2:3::2'), dns: a6('fd42:1:2:3::3') });
    expect(() => resolveStackConfig({ ipv6Net: 'fd00::/48' })).toThrow(/must be a \/64/);
    expect(() => resolveStackConfig({ ipv6Net: 'fe80::/64' })).toThrow(/not a unicast prefix/);
    expect(() => resolveStackConfig({ ipv6Net: 'fd00::1/64' })).toThrow(/host bits/);
    expect(() => resolveStackConfig({ ipv6Host: 'fd01::2' })).toThrow(/outside the IPv6 network/);
    expect(() => resolveStackConfig({ ipv6Dns: 'fd00::2' })).toThrow(/must differ/);
    expect(() => resolveStackConfig({ ipv6: 'maybe' })).toThrow(/on or off/);
    expect(resolveStackConfig({ mtu: 576 }).ipv6).toBeUndefined();
    expect(() => resolveStackConfig({ mtu: 576, ipv6: 'on' })).toThrow(/1280/);
    expect(resolveStackConfig({}).ipv6!.linkLocal).toBe(GW_LL);
  });

  it('libslirp\'s IPv6 CVE classes (CVE-2021-3593 udp6 and CVE-2020-10756 icmp6 out-of-bounds reads): lengths beyond the packet are drops', () => {
    const t = harness();
    const echo = icmp(GUEST6, GW6, { type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 1, payload: new Uint8Array(64) }, 64);
    const longer = echo.slice();
    longer[4] = 1; // the payload length claims 256 bytes more than the frame holds
    expect(t.send(longer)).toEqual([]);
    expect(t.stack.counters.get('ipv6.truncated')).toBe(1);
    const dgram = udp(GUEST6, DNS6, 40000, 53, new Uint8Array(12));
    dgram[44] = 0x7f; // UDP length 0x7f.. beyond the IPv6 payload
    expect(t.send(dgram)).toEqual([]);
    expect(t.stack.counters.get('udp.bad-length') + t.stack.counters.get('udp.bad-checksum')).toBe(1);
    const [reply] = t.send(echo);
    expect(t.icmpOf(reply!).type).toBe(ICMP6_TYPE.ECHO_REPLY);
    expect(t.stack.counters.get('stack.internal-error')).toBe(0);
  });

  it('answers a DHCPv6 Information-Request to ff02::1:2 from its link-local address; a Solicit gets nothing', () => {
    const t = harness();
    const info = Uint8Array.of(11, 0, 0, 7, 0, 6, 0, 2, 0, 23);
    const [reply] = t.send(udp(GUEST_LL, a6('ff02::1:2'), 546, 547, info), Uint8Array.of(0x33, 0x33, 0, 1, 0, 2));
    expect(reply).toMatchObject({ src: GW_LL, dst: GUEST_LL });
    const u = parseUdp(reply!.payload, pseudoSum6(reply!.src, reply!.dst, NEXT_HEADER.UDP));
    if (isDrop(u)) throw new Error(u);
    expect([u.srcPort, u.dstPort, u.payload[0], u.payload[3]]).toEqual([547, 546, 7, 7]);
    expect(t.send(udp(GUEST_LL, a6('ff02::1:2'), 546, 547, Uint8Array.of(1, 0, 0, 8)), Uint8Array.of(0x33, 0x33, 0, 1, 0, 2))).toEqual([]);
    expect(t.stack.counters.get('dhcp6.stateful-unsupported')).toBe(1);
  });
});

describe('--outbound6', () => {
  it('binds the host sockets of IPv6 flows (TCP, UDP) to it; IPv4 flows keep --outbound', () => {
    const t = harness({ outbound: '203.0.113.2', outbound6: '2001:db8:203::2' });
    t.send(tcp(GUEST6, a6('2001:db8::5'), { srcPort: 34003, dstPort: 80, flags: TCP_FLAG.SYN }));
    t.send(tcp(GUEST6, GW6, { srcPort: 34004, dstPort: 8080, flags: TCP_FLAG.SYN }));
    expect(t.host.calls.filter((c) => c[0] === 'tcpConnect').map((c) => [c[2], c[3]])).toEqual([
      [{ addr: a6('2001:db8::5'), port: 80 }, { addr: a6('2001:db8:203::2'), port: 0 }],
      [{ addr: a6('::1'), port: 8080 }, { addr: a6('2001:db8:203::2'), port: 0 }],
    ]);
    t.send(udp(GUEST6, a6('2001:db8::5'), 40000, 3478, new Uint8Array(4)));
    expect(t.host.calls.filter((c) => c[0] === 'udpBind').map((c) => c[2])).toEqual([{ addr: a6('2001:db8:203::2'), port: 0 }]);
  });

  it('without it IPv6 flows bind any address, even with --outbound', () => {
    const t = harness({ outbound: '203.0.113.2' });
    t.send(tcp(GUEST6, a6('2001:db8::5'), { srcPort: 34003, dstPort: 80, flags: TCP_FLAG.SYN }));
    expect(t.host.calls.filter((c) => c[0] === 'tcpConnect').map((c) => c[3])).toEqual([undefined]);
    t.send(udp(GUEST6, a6('2001:db8::5'), 40000, 3478, new Uint8Array(4)));
    expect(t.host.calls.filter((c) => c[0] === 'udpBind').map((c) => c[2])).toEqual([{ addr: a6('::'), port: 0 }]);
  });

  it('must be an IPv6 unicast address a socket can bind without an interface; --outbound refuses an IPv6 one', () => {
    expect(resolveStackConfig({ outbound6: '2001:DB8::1' }).outbound6).toBe(a6('2001:db8::1'));
    for (const [text, why] of [
      ['203.0.113.2', /--outbound6: '203.0.113.2' is not an IPv6 address/],
      ['2001:db8::g', /--outbound6/],
      ['::', /unspecified/],
      ['ff02::1', /multicast/],
      ['fe80::1', /link-local/],
      ['::ffff:127.0.0.1', /IPv4-mapped/],
    ] as const) expect(() => resolveStackConfig({ outbound6: text }), text).toThrow(why);
    expect(() => resolveStackConfig({ outbound: '2001:db8::1' })).toThrow(/--outbound: '2001:db8::1' is an IPv6 address/);
  });
});
