import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIpv4Addr, parseIpv4Addr } from '../../src/util/bytes.js';
import { ipTextVersion, maskOfPrefix, parseIpv4Network, parseIpv4Text, parseIpv6Text } from '../../src/util/ip-text.js';
import { ipv4AddrArb } from '../helpers/arbitraries.js';

/** Strings that look like addresses often enough to hit the edges: digits, dots, colons, hex, slashes. */
const addressishArb = fc.string({ unit: fc.constantFrom(...'0123456789.:/abcdefABCDEF%x []'.split('')), maxLength: 45 });
/** Dotted quads with octets that may be out of range or zero-padded. */
const quadishArb = fc
  .array(fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.integer({ min: 0, max: 99 }).map((n) => `0${n}`), fc.constant('')), { minLength: 3, maxLength: 5 })
  .map((parts) => parts.join('.'));

const hex16 = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('util/ip-text: IPv4', () => {
  it.each([
    ['10.0.2.15', 0x0a00020f],
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffffffff],
  ])('parses %s', (text, value) => {
    expect(parseIpv4Text(text)).toBe(value);
  });

  it.each([
    ['010.0.2.15', /no leading zeros/],
    ['10.0.2.015', /no leading zeros/],
    ['256.0.0.1', /four decimal numbers from 0 to 255/],
    ['10.2', /four decimal numbers/],
    ['0x0a.0.2.15', /four decimal numbers/],
    [' 10.0.2.15', /four decimal numbers/],
    ['10.0.2.15/24', /no \/prefix/],
    ['', /not an IPv4 address/],
  ])('refuses %j, saying why', (text, reason) => {
    expect(parseIpv4Text(text)).toMatch(reason);
  });

  it('round-trips every address through formatIpv4Addr', () => {
    fc.assert(fc.property(ipv4AddrArb, (a) => parseIpv4Text(formatIpv4Addr(a)) === a));
  });

  it('accepts exactly what the hot-path parser (util/bytes) and Node accept', () => {
    fc.assert(
      fc.property(fc.oneof(quadishArb, addressishArb, fc.string()), (s) => {
        const ours = parseIpv4Text(s);
        const accepted = typeof ours === 'number';
        expect(parseIpv4Addr(s), s).toBe(accepted ? ours : undefined);
        expect(net.isIPv4(s), s).toBe(accepted);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('util/ip-text: IPv4 networks', () => {
  it('takes a prefix length or a dotted mask (QEMU net=), keeping host bits', () => {
    expect(parseIpv4Network('10.0.2.0/24')).toEqual({ addr: 0x0a000200, prefixLen: 24 });
    expect(parseIpv4Network('10.0.2.0/255.255.255.0')).toEqual({ addr: 0x0a000200, prefixLen: 24 });
    expect(parseIpv4Network('10.0.2.7/255.255.0.0')).toEqual({ addr: 0x0a000207, prefixLen: 16 });
    expect(parseIpv4Network('0.0.0.0/0.0.0.0')).toEqual({ addr: 0, prefixLen: 0 });
    expect(parseIpv4Network('1.2.3.4/255.255.255.255')).toEqual({ addr: 0x01020304, prefixLen: 32 });
  });

  it.each([
    ['10.0.2.0/255.0.255.0', /not contiguous/],
    ['10.0.2.0/0.255.255.255', /not contiguous/],
    ['10.0.2.0/33', /from 0 to 32/],
    ['10.0.2.0/024', /from 0 to 32/],
    ['10.0.2.0/', /neither a prefix length/],
    ['10.0.2.0/x', /neither a prefix length/],
    ['10.0.2.0', /ADDR\/PREFIX or ADDR\/MASK/],
    ['10.0.2/24', /not an IPv4 address/],
  ])('refuses %j, saying why', (text, reason) => {
    expect(parseIpv4Network(text)).toMatch(reason);
  });

  it('a prefix and its mask mean the same network; any other mask is refused', () => {
    fc.assert(
      fc.property(ipv4AddrArb, fc.integer({ min: 0, max: 32 }), (a, p) => {
        const byMask = parseIpv4Network(`${formatIpv4Addr(a)}/${formatIpv4Addr(maskOfPrefix(p))}`);
        expect(byMask).toEqual(parseIpv4Network(`${formatIpv4Addr(a)}/${p}`));
        expect(byMask).toEqual({ addr: a, prefixLen: p });
      }),
    );
    fc.assert(
      fc.property(ipv4AddrArb, fc.integer({ min: 0, max: 0xffffffff }), (a, mask) => {
        const contiguous = Array.from({ length: 33 }, (_, p) => maskOfPrefix(p)).includes(mask);
        const r = parseIpv4Network(`${formatIpv4Addr(a)}/${formatIpv4Addr(mask)}`);
        expect(typeof r === 'string', formatIpv4Addr(mask)).toBe(!contiguous);
      }),
    );
  });
});

describe('util/ip-text: IPv6', () => {
  it.each([
    ['::1', '00000000000000000000000000000001'],
    ['2001:db8::5', '20010db8000000000000000000000005'],
    ['::ffff:10.0.2.15', '00000000000000000000ffff0a00020f'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
  ])('parses %s', (text, bytes) => {
    const r = parseIpv6Text(text);
    expect(typeof r).not.toBe('string');
    expect(hex16(r as Uint8Array)).toBe(bytes);
  });

  it.each(['fe80::1%eth0', '::1/128', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '::01.2.3.4', '[::1]', '10.0.2.15', ''])('refuses %j', (text) => {
    expect(parseIpv6Text(text)).toBeTypeOf('string');
  });

  it('round-trips random addresses in full and in the compressed form Node prints', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const full = Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(':');
        const compressed = new URL(`http://[${full}]/`).hostname.slice(1, -1); // WHATWG: RFC 5952 compression
        for (const text of [full, compressed]) expect(hex16(parseIpv6Text(text) as Uint8Array), text).toBe(hex16(b));
      }),
    );
  });

  it('accepts exactly what Node accepts (zone ids aside, which we refuse)', () => {
    fc.assert(
      fc.property(fc.oneof(addressishArb, fc.string()), (s) => {
        const ours = typeof parseIpv6Text(s) !== 'string';
        expect(ours, s).toBe(net.isIPv6(s) && !s.includes('%'));
      }),
      { numRuns: 3000 },
    );
  });

  it('ipTextVersion tells the versions apart and allows zones only when asked', () => {
    expect(ipTextVersion('127.0.0.1')).toBe(4);
    expect(ipTextVersion('::1')).toBe(6);
    expect(ipTextVersion('localhost')).toBe(0);
    expect(ipTextVersion('fe80::1%eth0')).toBe(0);
    expect(ipTextVersion('fe80::1%eth0', { zone: true })).toBe(6);
    expect(ipTextVersion('fe80::1%', { zone: true })).toBe(0);
  });

  it('never throws on any string', () => {
    fc.assert(
      fc.property(fc.oneof(addressishArb, fc.string(), quadishArb), (s) => {
        parseIpv4Text(s);
        parseIpv4Network(s);
        parseIpv6Text(s);
        ipTextVersion(s, { zone: true });
      }),
    );
  });
});
