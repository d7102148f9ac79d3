import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dhcpLength, findOption, optionsLength, parseDhcp, writeDhcp, type Dhcp, type DhcpOption } from '../../src/dhcp/wire.js';
import { hex } from '../helpers/hex.js';

const zeros = (n: number): string => '00'.repeat(n);

// A DHCPDISCOVER laid out as busybox 1.36 udhcpc sends it (networking/udhcp/dhcpc.c:
// message type, client id 01+MAC, max size 576, parameter request list, vendor class
// "udhcp 1.36.1", End), from MAC 52:54:00:12:34:56 with xid 0x3903f326, zero-padded to the
// 300-byte BOOTP minimum. Built from the RFC 2131 §2 layout, not captured.
const DISCOVER = hex`
  01 01 06 00  3903f326  0000 0000
  00000000 00000000 00000000 00000000
  525400123456 ${zeros(10)}
  ${zeros(64)} ${zeros(128)}
  63825363
  35 01 01
  3d 07 01 525400123456
  39 02 0240
  37 07 01 03 06 0c 0f 1c 2a
  3c 0c 756468637020312e33362e31
  ff ${zeros(20)}`;
const END_AT = 279; // offset of the End option

const chaddr = hex`525400123456 ${zeros(10)}`;
const PARSED: Dhcp = {
  op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x3903f326, secs: 0, broadcast: false,
  ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
  chaddr, sname: new Uint8Array(64), file: new Uint8Array(128),
  options: [
    { code: 53, data: hex`01` },
    { code: 61, data: hex`01 525400123456` },
    { code: 57, data: hex`0240` },
    { code: 55, data: hex`01 03 06 0c 0f 1c 2a` },
    { code: 60, data: new TextEncoder().encode('udhcp 1.36.1') },
  ],
};

const optionArb = (code: fc.Arbitrary<number>): fc.Arbitrary<DhcpOption> =>
  fc.record({ code, data: fc.uint8Array({ maxLength: 600 }) });
/** Distinct codes 1..254 but 52 (overload is structural, never listed). */
const optionsArb = fc.uniqueArray(optionArb(fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52)), {
  selector: (o) => o.code, maxLength: 8,
});
const dhcpArb: fc.Arbitrary<Dhcp> = fc.record({
  op: fc.integer({ min: 0, max: 255 }), htype: fc.integer({ min: 0, max: 255 }), hlen: fc.integer({ min: 0, max: 16 }),
  hops: fc.integer({ min: 0, max: 255 }), xid: fc.nat({ max: 0xffffffff }), secs: fc.nat({ max: 0xffff }), broadcast: fc.boolean(),
  ciaddr: fc.nat({ max: 0xffffffff }), yiaddr: fc.nat({ max: 0xffffffff }), siaddr: fc.nat({ max: 0xffffffff }), giaddr: fc.nat({ max: 0xffffffff }),
  chaddr: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  sname: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  file: fc.uint8Array({ minLength: 128, maxLength: 128 }),
  options: optionsArb,
});

describe('dhcp/wire', () => {
  it('parses a udhcpc DISCOVER', () => {
    expect(DISCOVER.length).toBe(300);
    expect(parseDhcp(DISCOVER)).toEqual(PARSED);
  });

  it('parses fields as views into the message', () => {
    const m = parseDhcp(DISCOVER) as Dhcp;
    expect(m.chaddr.buffer).toBe(DISCOVER.buffer);
    expect(findOption(m, 61)!.byteOffset).toBe(DISCOVER.byteOffset + 240 + 3 + 2);
  });

  it('writes every byte', () => {
    const out = new Uint8Array(310).fill(0xa5);
    expect(dhcpLength(PARSED)).toBe(300);
    expect(writeDhcp(PARSED, out, 5)).toBe(300);
    expect(out.subarray(5, 305)).toEqual(DISCOVER);
    expect(out.subarray(0, 5)).toEqual(new Uint8Array(5).fill(0xa5));
    expect(out.subarray(305)).toEqual(new Uint8Array(5).fill(0xa5));
  });

  it('drops every truncation before End; padding after End is optional', () => {
    for (let n = 0; n <= END_AT; n++) expect(parseDhcp(DISCOVER.subarray(0, n)), `length ${n}`).toBeTypeOf('string');
    for (let n = END_AT + 1; n <= DISCOVER.length; n++) expect(parseDhcp(DISCOVER.subarray(0, n))).toEqual(PARSED);
  });

  it('names the reason for a drop', () => {
    expect(parseDhcp(DISCOVER.subarray(0, 239))).toBe('dhcp.truncated');
    const noCookie = DISCOVER.slice();
    noCookie[236] = 0;
    expect(parseDhcp(noCookie)).toBe('dhcp.no-magic-cookie');
    expect(parseDhcp(DISCOVER.subarray(0, 250))).toBe('dhcp.truncated-option');
    expect(parseDhcp(DISCOVER.subarray(0, 252))).toBe('dhcp.no-end-option');
    const badHlen = DISCOVER.slice();
    badHlen[2] = 17;
    expect(parseDhcp(badHlen)).toBe('dhcp.bad-hlen');
  });

  it('reads only the broadcast bit of flags', () => {
    const m = DISCOVER.slice();
    m[10] = 0x80;
    m[11] = 0x01; // a reserved bit: ignored (RFC 2131 §2)
    expect(parseDhcp(m)).toMatchObject({ broadcast: true });
    const out = new Uint8Array(300);
    writeDhcp(parseDhcp(m) as Dhcp, out);
    expect([out[10], out[11]]).toEqual([0x80, 0x00]);
  });

  it('splits options longer than 255 bytes and concatenates them back (RFC 3396)', () => {
    const long = Uint8Array.from({ length: 600 }, (_, i) => i & 0xff);
    const m: Dhcp = { ...PARSED, options: [{ code: 119, data: long }, { code: 53, data: hex`02` }] };
    const out = new Uint8Array(dhcpLength(m));
    expect(optionsLength(m.options)).toBe(600 + 3 * 2 + 3);
    writeDhcp(m, out);
    expect([out[240], out[241], out[240 + 257], out[240 + 258], out[240 + 514], out[240 + 515]]).toEqual([119, 255, 119, 255, 119, 90]);
    expect((parseDhcp(out) as Dhcp).options).toEqual(m.options);
  });

  it('writes a zero-length option as code and length 0', () => {
    const m: Dhcp = { ...PARSED, options: [{ code: 80, data: new Uint8Array(0) }] };
    const out = new Uint8Array(dhcpLength(m));
    writeDhcp(m, out);
    expect(out.subarray(240, 243)).toEqual(hex`50 00 ff`);
    expect((parseDhcp(out) as Dhcp).options).toEqual(m.options);
  });

  it('reads options from file and sname when overloaded (RFC 2132 §9.3), in RFC 3396 order', () => {
    const m = DISCOVER.slice();
    // options: 52=3, 12 "a" (first part), pad, End
    m.set(hex`34 01 03  0c 01 61  00 ff`, 240);
    m.fill(0, 248);
    m.set(hex`0c 01 62  0f 02 6578  ff`, 108); // file: 12 "b" (second part), 15 "ex"
    m.set(hex`0c 01 63  42 01 7a`, 44); // sname: 12 "c" (third part), 66 "z", no End needed
    const p = parseDhcp(m) as Dhcp;
    expect(p.options).toEqual([
      { code: 12, data: new TextEncoder().encode('abc') },
      { code: 15, data: hex`6578` },
      { code: 66, data: hex`7a` },
    ]);
    expect(p.file.length).toBe(0);
    expect(p.sname.length).toBe(0);
  });

  it('drops a malformed overload', () => {
    const m = DISCOVER.slice();
    m.set(hex`34 01 04 ff`, 240);
    expect(parseDhcp(m)).toBe('dhcp.bad-overload');
    m.set(hex`34 01 01 ff`, 240);
    m.set(hex`0c 05 61`, 108 + 125); // an option running off the end of `file`
    expect(parseDhcp(m)).toBe('dhcp.truncated-option');
    m.fill(0, 108, 236);
    m.set(hex`34 01 02`, 108); // overload inside an overloaded field
    expect(parseDhcp(m)).toBe('dhcp.bad-overload');
  });

  it('round-trips', () => {
    fc.assert(fc.property(dhcpArb, (m) => {
      const out = new Uint8Array(dhcpLength(m));
      expect(writeDhcp(m, out)).toBe(out.length);
      expect(parseDhcp(out)).toEqual(m);
    }));
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
      parseDhcp(b);
    }));
    // With a valid header and cookie, so that the option walk is what gets fuzzed.
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 0, max: 255 }), (opts, ov) => {
      const m = new Uint8Array(240 + opts.length);
      m.set(DISCOVER.subarray(0, 240));
      m.set(opts, 240);
      if (opts.length > 3) m.set([52, 1, ov & 3], 240);
      const r = parseDhcp(m);
      if (typeof r !== 'string') for (const o of r.options) expect(o.code).not.toBe(52);
    }));
  });
});
