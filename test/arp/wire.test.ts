import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARP_LEN, ARP_OP, parseArp, writeArp, type Arp } from '../../src/arp/wire.js';
import { parseIpv4Addr } from '../../src/util/bytes.js';
import { arpArb } from '../helpers/arbitraries.js';
import { hex } from '../helpers/hex.js';

const ip = (s: string): number => parseIpv4Addr(s)!;

// Who has 10.0.2.2? Tell 10.0.2.15 (52:54:00:12:34:56) — checked with tshark.
const REQUEST = hex`0001 0800 06 04 0001  525400123456 0a00020f  000000000000 0a000202`;
const PARSED: Arp = {
  op: ARP_OP.REQUEST, senderMac: hex`525400123456`, senderIp: ip('10.0.2.15'),
  targetMac: hex`000000000000`, targetIp: ip('10.0.2.2'),
};
// 10.0.2.2 is at 52:55:0a:00:02:02
const REPLY = hex`0001 0800 06 04 0002  52550a000202 0a000202  525400123456 0a00020f`;

describe('arp/wire', () => {
  it('parses a request', () => expect(parseArp(REQUEST)).toEqual(PARSED));

  it('parses a reply followed by Ethernet padding', () => {
    const padded = new Uint8Array(46);
    padded.set(REPLY);
    expect(parseArp(padded)).toEqual({
      op: ARP_OP.REPLY, senderMac: hex`52550a000202`, senderIp: ip('10.0.2.2'),
      targetMac: hex`525400123456`, targetIp: ip('10.0.2.15'),
    });
  });

  it('writes every byte', () => {
    const out = new Uint8Array(ARP_LEN).fill(0xa5);
    expect(writeArp(PARSED, out)).toBe(ARP_LEN);
    expect(out).toEqual(REQUEST);
  });

  it('drops every truncation', () => {
    for (let n = 0; n < REQUEST.length; n++) expect(parseArp(REQUEST.subarray(0, n))).toBe('arp.truncated');
  });

  it('drops what is not Ethernet/IPv4 request or reply', () => {
    const with_ = (at: number, ...bytes: number[]): Uint8Array => {
      const b = REQUEST.slice();
      b.set(bytes, at);
      return b;
    };
    expect(parseArp(with_(0, 0x00, 0x06))).toBe('arp.unsupported-hardware');     // IEEE 802
    expect(parseArp(with_(2, 0x86, 0xdd))).toBe('arp.unsupported-protocol');
    expect(parseArp(with_(4, 0x08))).toBe('arp.bad-address-length');
    expect(parseArp(with_(5, 0x10))).toBe('arp.bad-address-length');
    expect(parseArp(with_(6, 0x00, 0x03))).toBe('arp.unknown-op');               // RARP request
    expect(parseArp(with_(6, 0x00, 0x00))).toBe('arp.unknown-op');
  });

  it('round-trips', () => fc.assert(fc.property(arpArb, fc.nat(8), (a, at) => {
    const out = new Uint8Array(at + ARP_LEN + 2).fill(0xa5);
    expect(writeArp(a, out, at)).toBe(ARP_LEN);
    expect(out.subarray(0, at).every((x) => x === 0xa5)).toBe(true);
    expect(out.subarray(at + ARP_LEN).every((x) => x === 0xa5)).toBe(true);
    expect(parseArp(out.subarray(at))).toEqual(a);
  })));

  it('never throws', () => fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
    expect(() => parseArp(b)).not.toThrow();
  })));
});
