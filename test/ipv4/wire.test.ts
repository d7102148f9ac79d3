import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IP_PROTO, ipv4Length, parseIpv4, pseudoSum, writeIpv4, type Ipv4 } from '../../src/ipv4/wire.js';
import { parseIpv4Addr } from '../../src/util/bytes.js';
import { finish, sum16 } from '../../src/util/checksum.js';
import { ipv4Arb } from '../helpers/arbitraries.js';
import { hex } from '../helpers/hex.js';

const ip = (s: string): number => parseIpv4Addr(s)!;
const EMPTY = new Uint8Array(0);

// 10.0.2.15 → 10.0.2.3, UDP, id 0x1234, DF, TTL 64. Header checksum 0x1088 computed with an
// independent Python RFC 1071 sum and confirmed by tshark (ip.checksum.status Good).
const UDP_PAYLOAD = hex`9c40 0035 000c adb1 deadbeef`;
const PACKET = hex`4500 0020 1234 4000 4011 1088 0a00020f 0a000203  9c40 0035 000c adb1 deadbeef`;
const PARSED: Ipv4 = {
  dscpEcn: 0, id: 0x1234, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64,
  protocol: IP_PROTO.UDP, src: ip('10.0.2.15'), dst: ip('10.0.2.3'), options: EMPTY, payload: UDP_PAYLOAD,
};

// IHL 7: Router Alert (94 04 0000, RFC 2113), NOP NOP NOP, EOL; DSCP EF (0xb8), TTL 1, no
// flags. Checksum 0x07f8 (Python, tshark Good).
const WITH_OPTIONS = hex`47b8 0026 0102 0000 0111 07f8 0a00020f 0a000202  94040000 01010100  1388 1770 000a 5468 6869`;
const PARSED_WITH_OPTIONS: Ipv4 = {
  dscpEcn: 0xb8, id: 0x0102, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 1,
  protocol: IP_PROTO.UDP, src: ip('10.0.2.15'), dst: ip('10.0.2.2'),
  options: hex`94040000 01010100`, payload: hex`1388 1770 000a 5468 6869`,
};

// A middle fragment: MF, offset 185 words = 1480 bytes, id 0xabcd (tshark: off=1480, ID=abcd).
const FRAGMENT = hex`4500 0024 abcd 20b9 4011 e032 0a00020f c0000201  000102030405060708090a0b0c0d0e0f`;
const PARSED_FRAGMENT: Ipv4 = {
  dscpEcn: 0, id: 0xabcd, dontFragment: false, moreFragments: true, fragmentOffset: 1480, ttl: 64,
  protocol: IP_PROTO.UDP, src: ip('10.0.2.15'), dst: ip('192.0.2.1'),
  options: EMPTY, payload: hex`000102030405060708090a0b0c0d0e0f`,
};

/** `b` with bytes changed at `at` and the header checksum recomputed (to reach later checks). */
function patched(b: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = b.slice();
  out.set(bytes, at);
  const headerLen = (out[0]! & 0x0f) * 4;
  out[10] = 0;
  out[11] = 0;
  const c = finish(sum16(out, 0, Math.min(headerLen, out.length)));
  out[10] = c >>> 8;
  out[11] = c & 0xff;
  return out;
}

describe('ipv4/wire', () => {
  it('parses', () => expect(parseIpv4(PACKET)).toEqual(PARSED));
  it('parses options', () => expect(parseIpv4(WITH_OPTIONS)).toEqual(PARSED_WITH_OPTIONS));
  it('parses fragment flags and offset', () => expect(parseIpv4(FRAGMENT)).toEqual(PARSED_FRAGMENT));

  it('excludes trailing Ethernet padding from the payload', () => {
    const padded = new Uint8Array(46);          // 60-byte minimum frame minus the 14-byte header
    padded.set(PACKET);
    const p = parseIpv4(padded);
    expect(p).toEqual(PARSED);
    if (typeof p === 'string') throw new Error(p);
    expect(p.payload.buffer).toBe(padded.buffer);
  });

  it('writes every byte', () => {
    for (const [record, bytes] of [[PARSED, PACKET], [PARSED_WITH_OPTIONS, WITH_OPTIONS], [PARSED_FRAGMENT, FRAGMENT]] as const) {
      const out = new Uint8Array(bytes.length).fill(0xa5);
      expect(writeIpv4(record, out)).toBe(bytes.length);
      expect(ipv4Length(record)).toBe(bytes.length);
      expect(out).toEqual(bytes);
    }
  });

  it('pads options to a multiple of 4 with EOL', () => {
    const p: Ipv4 = { ...PARSED, options: hex`94 04 00 00 01` };
    const out = new Uint8Array(ipv4Length(p)).fill(0xa5);
    expect(writeIpv4(p, out)).toBe(20 + 8 + UDP_PAYLOAD.length);
    expect(out[0]).toBe(0x47);
    expect(out.subarray(20, 28)).toEqual(hex`94040000 01000000`);
    expect(parseIpv4(out)).toEqual({ ...p, options: hex`94040000 01000000` });
  });

  it('drops every truncation', () => {
    for (const bytes of [PACKET, WITH_OPTIONS, FRAGMENT])
      for (let n = 0; n < bytes.length; n++) expect(parseIpv4(bytes.subarray(0, n))).toBe('ipv4.truncated');
  });

  it('drops a bad header checksum', () => {
    const bad = PACKET.slice();
    bad[11] = bad[11]! ^ 1;
    expect(parseIpv4(bad)).toBe('ipv4.bad-checksum');
    const ttl = PACKET.slice();
    ttl[8] = 63;                                 // a changed field, checksum left alone
    expect(parseIpv4(ttl)).toBe('ipv4.bad-checksum');
  });

  it('does not check the payload', () => {
    const p = PACKET.slice();
    p[p.length - 1] = p[p.length - 1]! ^ 0xff;
    expect(parseIpv4(p)).not.toBeTypeOf('string');
  });

  it('drops malformed headers, each under its own name', () => {
    expect(parseIpv4(patched(PACKET, 0, [0x65]))).toBe('ipv4.bad-version');
    expect(parseIpv4(patched(PACKET, 0, [0x44]))).toBe('ipv4.bad-header-length');
    expect(parseIpv4(patched(PACKET, 0, [0x46]))).toBe('ipv4.bad-options');      // "options" 9c 40: runs past IHL 6
    expect(parseIpv4(patched(PACKET, 2, [0x00, 0x13]))).toBe('ipv4.bad-total-length');
    expect(parseIpv4(patched(PACKET, 2, [0x00, 0x21]))).toBe('ipv4.truncated');
    expect(parseIpv4(patched(PACKET, 6, [0xc0, 0x00]))).toBe('ipv4.reserved-flag');
    expect(parseIpv4(patched(PACKET, 2, [0x00, 0x14]))).toEqual({ ...PARSED, payload: EMPTY });
  });

  it('drops malformed option TLVs', () => {
    const opts = (o: number[]): Uint8Array => patched(WITH_OPTIONS, 20, o);
    expect(parseIpv4(opts([0x94, 0x01, 0, 0, 1, 1, 1, 0]))).toBe('ipv4.bad-options');   // length < 2
    expect(parseIpv4(opts([0x94, 0x00, 0, 0, 1, 1, 1, 0]))).toBe('ipv4.bad-options');
    expect(parseIpv4(opts([1, 1, 1, 1, 1, 0x07, 0x04, 0]))).toBe('ipv4.bad-options');   // runs past the header
    expect(parseIpv4(opts([1, 1, 1, 1, 1, 1, 1, 0x07]))).toBe('ipv4.bad-options');      // no room for length
    expect(parseIpv4(opts([1, 1, 1, 1, 1, 1, 1, 1]))).not.toBeTypeOf('string');          // all NOPs
    expect(parseIpv4(opts([0, 0xff, 0xff, 0, 0, 0, 0, 0]))).not.toBeTypeOf('string');    // garbage after EOL
    expect(parseIpv4(opts([0x07, 0x07, 0x04, 0, 0, 0, 0, 1]))).not.toBeTypeOf('string'); // record route, exact fit
  });

  it('computes the pseudo-header sum without the length', () => {
    // 0a00 + 020f + 0a00 + 0203 + 0011, worked by hand
    expect(pseudoSum(ip('10.0.2.15'), ip('10.0.2.3'), IP_PROTO.UDP)).toBe(0x1823);
    // ffff ffff ffff ffff + 00ff folds to 0x00ff (RFC 1071 end-around carry)
    expect(pseudoSum(0xffffffff, 0xffffffff, 0xff)).toBe(0x00ff);
  });

  it('round-trips, at an offset, touching nothing else', () => fc.assert(fc.property(ipv4Arb, fc.nat(16), (p, at) => {
    const len = ipv4Length(p);
    const out = new Uint8Array(at + len + 4).fill(0xa5);
    expect(writeIpv4(p, out, at)).toBe(len);
    expect(out.subarray(0, at).every((x) => x === 0xa5)).toBe(true);
    expect(out.subarray(at + len).every((x) => x === 0xa5)).toBe(true);
    expect(parseIpv4(out.subarray(at))).toEqual(p);
  })));

  it('never throws', () => fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
    expect(() => parseIpv4(b)).not.toThrow();
  })));

  it('never throws past the checksum', () => fc.assert(fc.property(
    fc.integer({ min: 5, max: 15 }), fc.uint8Array({ minLength: 60, maxLength: 80 }), (ihl, b) => {
      b[0] = 0x40 | ihl;
      b[2] = 0;
      b[3] = b.length;
      b[6] = b[6]! & 0x7f;
      const p = parseIpv4(patched(b, 0, []));
      expect(p === 'ipv4.bad-options' || typeof p === 'object').toBe(true);
    })));
});
