import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ICMP_TYPE, icmpEchoId, icmpEchoSeq, icmpLength, parseIcmp, writeIcmp, type Icmp } from '../../src/ipv4/icmp-wire.js';
import { icmpArb } from '../helpers/arbitraries.js';
import { hex } from '../helpers/hex.js';

// Echo request id 1 seq 2, "abcdefgh"; checksum 0x6667 from an independent Python RFC 1071
// sum, confirmed by tshark (icmp.checksum.status Good).
const ECHO = hex`08 00 6667 0001 0002  6162636465666768`;
const PARSED: Icmp = { type: ICMP_TYPE.ECHO_REQUEST, code: 0, rest: 0x00010002, payload: hex`6162636465666768` };

// Port unreachable quoting a datagram's header; rest is unused (0). Sum worked by hand and
// checked in Python: 0303 + 4500 + 001c + 0001 + 4011 + 0a00 + 020f + 0a00 + 0203 = 0xa043,
// complemented 0x5fbc.
const UNREACHABLE = hex`03 03 5fbc 00000000  4500 001c 0001 0000 4011 0000 0a00020f 0a000203`;

describe('ipv4/icmp-wire', () => {
  it('parses an echo request', () => {
    const m = parseIcmp(ECHO);
    expect(m).toEqual(PARSED);
    if (typeof m === 'string') throw new Error(m);
    expect(icmpEchoId(m)).toBe(1);
    expect(icmpEchoSeq(m)).toBe(2);
  });

  it('parses an error', () => expect(parseIcmp(UNREACHABLE)).toEqual({
    type: ICMP_TYPE.DEST_UNREACHABLE, code: 3, rest: 0, payload: UNREACHABLE.subarray(8),
  }));

  it('writes every byte', () => {
    const out = new Uint8Array(ECHO.length).fill(0xa5);
    expect(writeIcmp(PARSED, out)).toBe(ECHO.length);
    expect(icmpLength(PARSED)).toBe(ECHO.length);
    expect(out).toEqual(ECHO);
  });

  it('writes an error', () => {
    const out = new Uint8Array(UNREACHABLE.length).fill(0xa5);
    writeIcmp({ type: 3, code: 3, rest: 0, payload: UNREACHABLE.subarray(8) }, out);
    expect(out).toEqual(UNREACHABLE);
  });

  it('drops every truncation (short header, or a sum that no longer checks)', () => {
    for (let n = 0; n < 8; n++) expect(parseIcmp(ECHO.subarray(0, n))).toBe('icmp.truncated');
    for (let n = 8; n < ECHO.length; n++) expect(parseIcmp(ECHO.subarray(0, n))).toBe('icmp.bad-checksum');
  });

  it('drops a bad checksum over the payload', () => {
    const bad = ECHO.slice();
    bad[15] = bad[15]! ^ 0x01;
    expect(parseIcmp(bad)).toBe('icmp.bad-checksum');
  });

  it('round-trips', () => fc.assert(fc.property(icmpArb, fc.nat(8), (m, at) => {
    const len = icmpLength(m);
    const out = new Uint8Array(at + len + 2).fill(0xa5);
    expect(writeIcmp(m, out, at)).toBe(len);
    expect(out.subarray(at + len).every((x) => x === 0xa5)).toBe(true);
    expect(parseIcmp(out.subarray(at, at + len))).toEqual(m);
  })));

  it('never throws', () => fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
    expect(() => parseIcmp(b)).not.toThrow();
  })));
});
