import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IP_PROTO, pseudoSum } from '../../src/ipv4/wire.js';
import { parseUdp, udpLength, writeUdp, type Udp } from '../../src/udp/wire.js';
import { parseIpv4Addr } from '../../src/util/bytes.js';
import { udpArb, u16Arb } from '../helpers/arbitraries.js';
import { hex } from '../helpers/hex.js';

const ip = (s: string): number => parseIpv4Addr(s)!;

// 10.0.2.15:40000 → 10.0.2.3:53, payload de ad be ef; checksum 0xadb1 from an independent
// Python RFC 1071 sum over the pseudo header, confirmed by tshark (udp.checksum.status Good).
const DATAGRAM = hex`9c40 0035 000c adb1  dead beef`;
const PSEUDO = pseudoSum(ip('10.0.2.15'), ip('10.0.2.3'), IP_PROTO.UDP);
const PARSED: Udp = { srcPort: 40000, dstPort: 53, payload: hex`dead beef` };

describe('udp/wire', () => {
  it('parses', () => expect(parseUdp(DATAGRAM, PSEUDO)).toEqual(PARSED));

  it('writes every byte', () => {
    const out = new Uint8Array(12).fill(0xa5);
    expect(writeUdp(PARSED, PSEUDO, out)).toBe(12);
    expect(udpLength(PARSED)).toBe(12);
    expect(out).toEqual(DATAGRAM);
  });

  it('drops every truncation', () => {
    for (let n = 0; n < DATAGRAM.length; n++) expect(parseUdp(DATAGRAM.subarray(0, n), PSEUDO)).toBeTypeOf('string');
  });

  it('ignores bytes past the UDP length', () => {
    const longer = new Uint8Array([...DATAGRAM, 0, 0, 0x55]);
    expect(parseUdp(longer, PSEUDO)).toEqual(PARSED);
  });

  it('accepts a zero checksum (not computed, RFC 768)', () => {
    // DHCP-style 68 → 67, "ping", checksum 0000
    expect(parseUdp(hex`0044 0043 000c 0000 70696e67`, PSEUDO)).toEqual({ srcPort: 68, dstPort: 67, payload: hex`70696e67` });
  });

  it('drops a bad checksum, a bad length and port 0', () => {
    const bad = DATAGRAM.slice();
    bad[11] = bad[11]! ^ 0x10;
    expect(parseUdp(bad, PSEUDO)).toBe('udp.bad-checksum');
    expect(parseUdp(DATAGRAM, pseudoSum(ip('10.0.2.16'), ip('10.0.2.3'), IP_PROTO.UDP))).toBe('udp.bad-checksum');
    expect(parseUdp(hex`9c40 0035 0007 0000 dead beef`, PSEUDO)).toBe('udp.bad-length');
    expect(parseUdp(hex`9c40 0035 000d 0000 dead beef`, PSEUDO)).toBe('udp.bad-length');
    expect(parseUdp(hex`9c40 0000 000c 0000 dead beef`, PSEUDO)).toBe('udp.zero-port');
  });

  it('writes 0xffff when the sum comes out zero', () => {
    // Pick the payload word that makes the complemented sum 0: the one's complement of the rest.
    const base: Udp = { srcPort: 1, dstPort: 2, payload: hex`0000` };
    const out = new Uint8Array(10);
    writeUdp(base, PSEUDO, out);
    const c = (out[6]! << 8) | out[7]!;
    const payload = new Uint8Array([c >>> 8, c & 0xff]);      // adding c turns the sum into 0xffff
    writeUdp({ ...base, payload }, PSEUDO, out);
    expect(out.subarray(6, 8)).toEqual(hex`ffff`);
    expect(parseUdp(out, PSEUDO)).toEqual({ ...base, payload });
  });

  it('round-trips', () => fc.assert(fc.property(udpArb, u16Arb, fc.nat(8), (u, pseudo, at) => {
    const len = udpLength(u);
    const out = new Uint8Array(at + len + 2).fill(0xa5);
    expect(writeUdp(u, pseudo, out, at)).toBe(len);
    expect(out.subarray(at + len).every((x) => x === 0xa5)).toBe(true);
    expect(parseUdp(out.subarray(at), pseudo)).toEqual(u);
  })));

  it('never throws', () => fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), u16Arb, (b, pseudo) => {
    expect(() => parseUdp(b, pseudo)).not.toThrow();
  })));
});
