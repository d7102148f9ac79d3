import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ICMP6_TYPE, parseIcmp6, writeIcmp6 } from '../../src/ipv6/icmp6-wire.js';
import { neighborAdvertisement, parseNeighborAdvertisement, parseNeighborSolicitation, parseRouterSolicitation, routerAdvertisement } from '../../src/ipv6/ndp.js';
import { Reassembler6 } from '../../src/ipv6/reassembly.js';
import { IPV6_HEADER_LEN, multicastMac, NEXT_HEADER, parseIpv6, pseudoSum6, solicitedNode, writeIpv6Header, type Ipv6 } from '../../src/ipv6/wire.js';
import { ipv6FromBytes } from '../../src/net/addr.js';
import { Counters, isDrop } from '../../src/util/drops.js';
import { runs } from '../helpers/fuzz.js';
import { a6, ipv6Packet } from '../helpers/frames6.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((x) => parseInt(x, 16)));
const SRC = a6('fd00::15');
const DST = a6('fd00::2');

// An ICMPv6 echo request fd00::15 → fd00::2, id 0x1234 seq 1, payload 'ab', checksum computed independently (Python, RFC 4443 §2.3 over the pseudo header).
const ECHO = hex(`
  60000000 000a 3a 40
  fd000000000000000000000000000015
  fd000000000000000000000000000002
  80 00 120b 1234 0001 6162`);

describe('ipv6/wire', () => {
  it('parses a literal echo request and writes the same bytes', () => {
    const p = parseIpv6(ECHO) as Ipv6;
    expect(p).toMatchObject({ src: SRC, dst: DST, protocol: NEXT_HEADER.ICMPV6, hopLimit: 64, trafficClass: 0, flowLabel: 0, fragment: undefined, problem: undefined });
    const m = parseIcmp6(p.payload, pseudoSum6(SRC, DST, 58));
    expect(m).toMatchObject({ type: ICMP6_TYPE.ECHO_REQUEST, code: 0, rest: 0x12340001 });
    const out = new Uint8Array(ECHO.length + 4).fill(0xa5);
    writeIpv6Header({ trafficClass: 0, flowLabel: 0, hopLimit: 64, src: SRC, dst: DST, protocol: 58 }, 10, out, 0);
    writeIcmp6({ type: 128, code: 0, rest: 0x12340001, payload: hex('6162') }, pseudoSum6(SRC, DST, 58), out, 40);
    expect(out.subarray(0, ECHO.length)).toEqual(ECHO);
    expect([...out.subarray(ECHO.length)]).toEqual([0xa5, 0xa5, 0xa5, 0xa5]);
  });

  it('every truncation is a Drop, and a corrupted checksum too', () => {
    for (let n = 0; n < ECHO.length; n++) expect(isDrop(parseIpv6(ECHO.subarray(0, n)))).toBe(true);
    const bad = ECHO.slice();
    bad[44]! ^= 1;
    expect(parseIcmp6((parseIpv6(bad) as Ipv6).payload, pseudoSum6(SRC, DST, 58))).toBe('icmp6.bad-checksum');
    expect(parseIpv6(hex('40'.padEnd(80, '0')))).toBe('ipv6.bad-version');
  });

  it('walks hop-by-hop (router alert), destination options and AH to the upper layer; skips a routing header with no segments left', () => {
    const hbh = hex('3c00 0502 0000 0100'); // next: destination options; router alert; PadN
    const dest = hex('3300 0104 00000000'); // next: AH; PadN of 4
    const ah = hex('3a01 0000 00000000 00000000'); // next: ICMPv6, 12 bytes
    const echo = ECHO.subarray(40);
    const p = parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.HOP_BY_HOP, new Uint8Array([...hbh, ...dest, ...ah, ...echo]))) as Ipv6;
    expect(p).toMatchObject({ protocol: 58, routerAlert: true, problem: undefined });
    expect(p.payload).toEqual(echo);
    const rh = parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.ROUTING, new Uint8Array([58, 0, 0, 0, 0, 0, 0, 0, ...echo]))) as Ipv6;
    expect(rh).toMatchObject({ protocol: 58, problem: undefined });
  });

  it('refuses routing type 0 with segments left, a misplaced hop-by-hop header and options that ask for an error', () => {
    const rh0 = parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.ROUTING, hex('3a02 0001 00000000 fd000000000000000000000000000009'))) as Ipv6;
    expect(rh0.problem).toEqual({ code: 0, pointer: 42 });
    const late = parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.DEST_OPTIONS, hex('0000 0104 00000000 3a00 0104 00000000'))) as Ipv6;
    expect(late.problem).toEqual({ code: 1, pointer: 40 });
    expect(parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.DEST_OPTIONS, hex('3a00 4200 00000000')))).toBe('ipv6.unknown-option');
    expect((parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.DEST_OPTIONS, hex('3a00 8200 0000 0000'))) as Ipv6).problem).toEqual({ code: 2, pointer: 42 });
    expect(parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.DEST_OPTIONS, hex('3a00 0109 00000000')))).toBe('ipv6.bad-option');
  });

  it('a fragment stops the walk; an atomic fragment does not', () => {
    const f = parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.FRAGMENT, hex('3a00 0011 00000007 0102030405060708'))) as Ipv6;
    expect(f).toMatchObject({ protocol: 58, fragment: { offset: 16, more: true, id: 7 } });
    const atomic = parseIpv6(ipv6Packet(SRC, DST, NEXT_HEADER.FRAGMENT, new Uint8Array([58, 0, 0, 0, 0, 0, 0, 9, ...ECHO.subarray(40)]))) as Ipv6;
    expect(atomic).toMatchObject({ protocol: 58, fragment: undefined });
  });

  it('solicited-node groups and their MACs (RFC 4291 §2.7.1, RFC 2464 §7)', () => {
    expect(solicitedNode(a6('fd00::5054:ff:fe12:3456'))).toBe(a6('ff02::1:ff12:3456'));
    expect([...multicastMac(a6('ff02::1:ff12:3456'))]).toEqual([0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
  });

  it('never throws, and a packet it writes parses back (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const p = parseIpv6(b);
      if (!isDrop(p)) expect(p.payload.length).toBeLessThanOrEqual(b.length);
    }), { numRuns: runs(2000) });
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 }), fc.nat(0xfffff), (s, d, hop, payload, flow) => {
      const src = ipv6FromBytes(s);
      const dst = ipv6FromBytes(d);
      const b = new Uint8Array(IPV6_HEADER_LEN + payload.length);
      writeIpv6Header({ trafficClass: 7, flowLabel: flow, hopLimit: hop, src, dst, protocol: NEXT_HEADER.UDP }, payload.length, b, 0);
      b.set(payload, IPV6_HEADER_LEN);
      expect(parseIpv6(b)).toMatchObject({ src, dst, hopLimit: hop, flowLabel: flow, trafficClass: 7, protocol: 17, payload });
    }), { numRuns: runs(500) });
  });
});

describe('ipv6/ndp', () => {
  it('parses solicitations with their link-layer option and refuses zero-length options', () => {
    const ns = { type: 135, code: 0, rest: 0, payload: hex('fd000000000000000000000000000002 0101 525400123456') };
    expect(parseNeighborSolicitation(ns)).toMatchObject({ target: a6('fd00::2') });
    expect([...(parseNeighborSolicitation(ns) as { sourceMac: Uint8Array }).sourceMac]).toEqual([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    expect(parseNeighborSolicitation({ ...ns, payload: hex('fd000000000000000000000000000002 0100 525400123456') })).toBe('ndp.bad-option');
    expect(parseNeighborSolicitation({ ...ns, payload: hex('ff020000000000000000000000000001') })).toBe('ndp.multicast-target');
    expect(parseRouterSolicitation({ type: 133, code: 0, rest: 0, payload: hex('00000000') })).toBe('ndp.bad-option');
    expect(parseRouterSolicitation({ type: 133, code: 0, rest: 0, payload: new Uint8Array(0) })).toEqual({ sourceMac: undefined });
  });

  it('an advertisement it writes parses back; an RA carries its options in order', () => {
    const mac = hex('52550a000202');
    const na = parseNeighborAdvertisement(neighborAdvertisement(a6('fd00::3'), mac, 0xe0000000));
    expect(na).toMatchObject({ target: a6('fd00::3'), targetMac: mac });
    const ra = routerAdvertisement({
      hopLimit: 64, routerLifetimeS: 1800, sourceMac: mac, mtu: 1500, prefix: a6('fd00::'), prefixLen: 64, validLifetimeS: 86400,
      preferredLifetimeS: 14400, dnsServers: [a6('fd00::3')], searchList: ['a.test', 'bb.example'], dnsLifetimeS: 1800,
    });
    expect(ra.rest).toBe(0x40400708);
    const options: [number, number][] = [];
    for (let i = 8; i < ra.payload.length; i += ra.payload[i + 1]! * 8) options.push([ra.payload[i]!, ra.payload[i + 1]!]);
    // SLLA, MTU, prefix (32 bytes), RDNSS with one address (24), DNSSL: 1a.4test0 2bb7example0 = 20 bytes → 24, +8.
    expect(options).toEqual([[1, 1], [5, 1], [3, 4], [25, 3], [31, 4]]);
  });

  it('never throws on any ICMPv6 body (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 133, max: 136 }), fc.uint8Array({ maxLength: 120 }), (type, payload) => {
      const m = { type, code: 0, rest: 0, payload };
      parseNeighborSolicitation(m);
      parseRouterSolicitation(m);
      parseNeighborAdvertisement(m);
    }), { numRuns: runs(2000) });
  });
});

describe('ipv6/reassembly', () => {
  const frag = (offset: number, data: Uint8Array, more: boolean, id = 9): Ipv6 => ({
    trafficClass: 0, flowLabel: 0, hopLimit: 64, src: SRC, dst: DST, protocol: 17, protocolAt: 40, payload: data, packet: data,
    fragment: { offset, more, id }, problem: undefined, routerAlert: false,
  });
  const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 1) & 0xff);

  it('reassembles fragments in any order (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 10 }), fc.integer({ min: 1, max: 100 }), fc.infiniteStream(fc.nat()), (n, tail, order) => {
      const r = new Reassembler6(new Counters());
      const data = bytes(128 * (n - 1) + tail);
      const pieces = Array.from({ length: n }, (_, i) => frag(i * 128, data.subarray(i * 128, i === n - 1 ? undefined : (i + 1) * 128), i < n - 1));
      const it = order[Symbol.iterator]();
      const shuffled = [...pieces].sort(() => (it.next().value! % 3) - 1);
      let done;
      for (const p of shuffled) {
        const res = r.add(p, 0);
        if (res !== undefined && !isDrop(res)) done = res;
      }
      expect(done).toMatchObject({ protocol: 17, fragmentable: data });
      expect(r.size).toBe(0);
    }), { numRuns: runs(200) });
  });

  it('refuses overlaps and bad lengths, bounds memory and times out', () => {
    const c = new Counters();
    const r = new Reassembler6(c, { maxDatagrams: 2, maxBytes: 4096, timeoutMs: 60_000 });
    expect(r.add(frag(0, bytes(16), true), 0)).toBeUndefined();
    expect(r.add(frag(8, bytes(16), true), 0)).toBe('ipv6.frag-overlap');
    expect(r.add(frag(0, bytes(10), true, 2), 0)).toBe('ipv6.frag-bad-length');
    expect(r.add(frag(65520, bytes(16), false, 3), 0)).toBe('ipv6.frag-too-big');
    for (let id = 10; id < 15; id++) r.add(frag(0, bytes(16), true, id), 0);
    expect(r.size).toBe(2);
    expect(c.get('ipv6.frag-evicted')).toBe(3);
    expect(r.nextDeadline()).toBe(60_000);
    r.expire(60_000);
    expect(r.size).toBe(0);
    expect(c.get('ipv6.frag-timeout')).toBe(2);
  });
});
