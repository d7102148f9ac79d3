import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dnsLength, parseDnsHeader, parseDnsQuestion, readDnsName, writeDnsHeader, type DnsHeader } from '../../src/dns/wire.js';
import { hex, toHex } from '../helpers/hex.js';

// An AAAA query for example.com, id 0xbeef, RD and AD set; the same bytes dns-packet
// produces (checked below).
const QUERY = hex`beef 0120 0001 0000 0000 0000  07 6578616d706c65 03 636f6d 00  001c 0001`;
const PARSED: DnsHeader = {
  id: 0xbeef, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, z: false, ad: true, cd: false, rcode: 0,
  qdcount: 1, ancount: 0, nscount: 0, arcount: 0, body: QUERY.subarray(12),
};

const headerArb: fc.Arbitrary<DnsHeader> = fc.record({
  id: fc.nat({ max: 0xffff }), qr: fc.boolean(), opcode: fc.nat({ max: 15 }), aa: fc.boolean(), tc: fc.boolean(),
  rd: fc.boolean(), ra: fc.boolean(), z: fc.boolean(), ad: fc.boolean(), cd: fc.boolean(), rcode: fc.nat({ max: 15 }),
  qdcount: fc.nat({ max: 0xffff }), ancount: fc.nat({ max: 0xffff }), nscount: fc.nat({ max: 0xffff }), arcount: fc.nat({ max: 0xffff }),
  body: fc.uint8Array({ maxLength: 64 }),
});

describe('dns/wire header', () => {
  it('matches dns-packet’s encoding of the same query', () => {
    const ref = dnsPacket.encode({
      type: 'query', id: 0xbeef, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
      questions: [{ type: 'AAAA', class: 'IN', name: 'example.com' }],
    });
    expect(toHex(ref)).toBe(toHex(QUERY));
  });

  it('parses', () => {
    expect(parseDnsHeader(QUERY)).toEqual(PARSED);
    expect((parseDnsHeader(QUERY) as DnsHeader).body.buffer).toBe(QUERY.buffer);
  });

  it('parses every flag of a response', () => {
    // QR, opcode 2 (STATUS), AA, TC, RD / RA, Z, AD, CD, rcode 3 (NXDOMAIN)
    expect(parseDnsHeader(hex`0001 9700 0000 0000 0000 0000`)).toMatchObject({ qr: true, opcode: 2, aa: true, tc: true, rd: true, ra: false, rcode: 0 });
    expect(parseDnsHeader(hex`0001 00f3 0000 0000 0000 0000`)).toMatchObject({ qr: false, ra: true, z: true, ad: true, cd: true, rcode: 3 });
  });

  it('writes every byte', () => {
    const out = new Uint8Array(QUERY.length + 4).fill(0xa5);
    expect(writeDnsHeader(PARSED, out, 2)).toBe(QUERY.length);
    expect(dnsLength(PARSED)).toBe(QUERY.length);
    expect(out.subarray(2, 2 + QUERY.length)).toEqual(QUERY);
    expect([out[0], out[1], out.at(-2), out.at(-1)]).toEqual([0xa5, 0xa5, 0xa5, 0xa5]);
  });

  it('drops every truncation of the header', () => {
    for (let n = 0; n < 12; n++) expect(parseDnsHeader(QUERY.subarray(0, n))).toBe('dns.truncated');
  });

  it('round-trips', () => {
    fc.assert(fc.property(headerArb, (h) => {
      const out = new Uint8Array(dnsLength(h));
      writeDnsHeader(h, out);
      expect(parseDnsHeader(out)).toEqual(h);
    }));
  });

  it('agrees with dns-packet on every flag', () => {
    fc.assert(fc.property(headerArb, (h0) => {
      const h = { ...h0, qdcount: 0, ancount: 0, nscount: 0, arcount: 0, body: new Uint8Array(0) };
      const out = new Uint8Array(12);
      writeDnsHeader(h, out);
      const d = dnsPacket.decode(Buffer.from(out)) as dnsPacket.DecodedPacket & Record<string, unknown>;
      expect({ id: d.id, qr: d.flag_qr, aa: d.flag_aa, tc: d.flag_tc, rd: d.flag_rd, ra: d.flag_ra, z: d.flag_z, ad: d.flag_ad, cd: d.flag_cd })
        .toEqual({ id: h.id, qr: h.qr, aa: h.aa, tc: h.tc, rd: h.rd, ra: h.ra, z: h.z, ad: h.ad, cd: h.cd });
      expect(d.flags! & 0x780f).toBe((h.opcode << 11) | h.rcode);
    }));
  });
});

describe('dns/wire question', () => {
  it('parses the first question', () => {
    expect(parseDnsQuestion(QUERY)).toEqual({ name: 'example.com', qtype: 28, qclass: 1, end: QUERY.length });
  });

  it('drops every truncation', () => {
    for (let n = 0; n < QUERY.length; n++) expect(parseDnsQuestion(QUERY.subarray(0, n)), `length ${n}`).toBeTypeOf('string');
    expect(parseDnsQuestion(hex`beef 0120 0000 0000 0000 0000`)).toBe('dns.no-question');
  });

  it('reads names of questions dns-packet encodes', () => {
    const types = { A: 1, AAAA: 28, MX: 15, TXT: 16, SRV: 33 } as const;
    fc.assert(fc.property(fc.domain(), fc.constantFrom(...(Object.keys(types) as (keyof typeof types)[])), fc.nat({ max: 0xffff }),
      (name, type, id) => {
        const b = dnsPacket.encode({ type: 'query', id, questions: [{ type, class: 'IN', name }] });
        // fc.domain() bounds the text to 255 characters; the wire form (a length byte per label
        // and the root byte) may then exceed RFC 1035's 255 octets, which dns-packet encodes anyway.
        const wireLen = name.split('.').reduce((n, label) => n + 1 + label.length, 1);
        const expected = wireLen <= 255 ? { name, qtype: types[type], qclass: 1, end: b.length } : 'dns.name-too-long';
        expect(parseDnsQuestion(new Uint8Array(b))).toEqual(expected);
      }));
  });

  it('takes names of exactly 255 octets and refuses 256 (RFC 1035 §2.3.4)', () => {
    // Four 62-byte labels: 4 × 63 + the root byte = 253 octets; a last label of 1 byte makes 255, of 2 bytes 256.
    const base = Array.from({ length: 4 }, () => 'a'.repeat(62));
    const at255 = [...base, 'b'].join('.');
    const at256 = [...base, 'bc'].join('.');
    const q = (name: string) => new Uint8Array(dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', class: 'IN', name }] }));
    expect(parseDnsQuestion(q(at255))).toMatchObject({ name: at255 });
    expect(parseDnsQuestion(q(at256))).toBe('dns.name-too-long');
  });

  it('follows compression pointers (RFC 1035 §4.1.4)', () => {
    // Question www.example.com A IN; answer name: a pointer to "example.com" at offset 16.
    const msg = hex`0001 8180 0001 0001 0000 0000  03 777777 07 6578616d706c65 03 636f6d 00 0001 0001  c010 0001 0001`;
    expect(readDnsName(msg, 33)).toEqual({ name: 'example.com', end: 35 });
    // A label, then a pointer: "mail" + → "example.com".
    const msg2 = hex`${toHex(msg)} 04 6d61696c c010`;
    expect(readDnsName(msg2, 39)).toEqual({ name: 'mail.example.com', end: 46 });
  });

  it('refuses pointer loops and forward pointers, and stays bounded', () => {
    const hdr = '0001 0100 0001 0000 0000 0000';
    expect(readDnsName(hex`${hdr} c00c`, 12)).toBe('dns.bad-pointer'); // to itself
    expect(readDnsName(hex`${hdr} c00e 00`, 12)).toBe('dns.bad-pointer'); // forward
    // Two pointers pointing at each other: 14 → 12 → 14.
    expect(readDnsName(hex`${hdr} c00e c00c`, 14)).toBe('dns.bad-pointer');
    expect(readDnsName(hex`${hdr} c0`, 12)).toBe('dns.truncated-name');
    expect(readDnsName(hex`${hdr} 40 00`, 12)).toBe('dns.bad-label-type');
    const long = ('3f' + '61'.repeat(63)).repeat(4) + '00'; // 4×64 + 1 = 257 bytes > 255
    expect(readDnsName(hex`${hdr} ${long}`, 12)).toBe('dns.name-too-long');
  });

  it('escapes bytes that are not plain label characters', () => {
    expect(readDnsName(hex`03 612e62 02 5c00 00`, 0)).toEqual({ name: 'a\\046b.\\092\\000', end: 8 });
    expect(readDnsName(hex`00`, 0)).toEqual({ name: '', end: 1 });
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), (b, at) => {
      parseDnsHeader(b);
      parseDnsQuestion(b);
      readDnsName(b, at);
    }));
  });
});
