import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IP_PROTO, pseudoSum } from '../../src/ipv4/wire.js';
import type { TcpOptions } from '../../src/tcp/options.js';
import { TCP_FLAG, parseTcp, tcpHeaderLength, tcpLength, writeTcp, writeTcpChecksum, writeTcpHeader, type Tcp } from '../../src/tcp/wire.js';
import { parseIpv4Addr } from '../../src/util/bytes.js';
import { finish, sum16 } from '../../src/util/checksum.js';
import { tcpArb, tcpOptionsArb, u16Arb } from '../helpers/arbitraries.js';
import { hex } from '../helpers/hex.js';

const ip = (s: string): number => parseIpv4Addr(s)!;
const PSEUDO = pseudoSum(ip('10.0.2.15'), ip('93.184.216.34'), IP_PROTO.TCP);
const EMPTY = new Uint8Array(0);

// 10.0.2.15:45678 → 93.184.216.34:80. Checksums from an independent Python RFC 1071 sum over
// the pseudo header, each confirmed by tshark (tcp.checksum.status Good).

// A Linux-style SYN: MSS 1460, SACK-permitted, TSval 0x11223344, WS 7; checksum 0x0ffb.
const SYN = hex`b26e 0050 01020304 00000000 a002 faf0 0ffb 0000  020405b4 0402080a 11223344 00000000 01030307`;
const PARSED_SYN: Tcp = {
  srcPort: 45678, dstPort: 80, seq: 0x01020304, ack: 0, flags: TCP_FLAG.SYN, window: 64240, urgent: 0,
  options: { mss: 1460, sackPermitted: true, timestamp: { value: 0x11223344, echo: 0 }, windowScale: 7 }, payload: EMPTY,
};

// SYN+ACK with every option kind, unknown kinds 30 and 34 among them, data offset 15.
const EVERY_OPTION = hex`b26e 0050 fffffff0 80000000 f012 0400 eb4a 0000
  01 020405dc 030308 0402 080a deadbeef cafef00d 1e041234 2202 050a 000003e8 000007d0 00 000000`;
const PARSED_EVERY_OPTION: Tcp = {
  srcPort: 45678, dstPort: 80, seq: 0xfffffff0, ack: 0x80000000, flags: TCP_FLAG.SYN | TCP_FLAG.ACK, window: 1024, urgent: 0,
  options: { mss: 1500, windowScale: 8, sackPermitted: true, timestamp: { value: 0xdeadbeef, echo: 0xcafef00d }, sack: [[1000, 2000]] },
  payload: EMPTY,
};

// A pure ACK with four SACK blocks; checksum 0xb015.
const SACK4 = hex`b26e 0050 00000001 000003e8 e010 01f6 b015 0000
  0101 0522 00001388 000013ec 00000fa0 00001004 00000bb8 00000c1c 000007d0 00000834`;
const PARSED_SACK4: Tcp = {
  srcPort: 45678, dstPort: 80, seq: 1, ack: 1000, flags: TCP_FLAG.ACK, window: 502, urgent: 0,
  options: { sack: [[5000, 5100], [4000, 4100], [3000, 3100], [2000, 2100]] }, payload: EMPTY,
};

// PSH+ACK carrying "hello" (odd length) with a timestamp; checksum 0x2117.
const DATA = hex`b26e 0050 01020305 0a0b0c0d 8018 ffff 2117 0000  0101080a 01000000 02000000  68656c6c6f`;
const PARSED_DATA: Tcp = {
  srcPort: 45678, dstPort: 80, seq: 0x01020305, ack: 0x0a0b0c0d, flags: TCP_FLAG.PSH | TCP_FLAG.ACK, window: 0xffff, urgent: 0,
  options: { timestamp: { value: 0x01000000, echo: 0x02000000 } }, payload: hex`68656c6c6f`,
};

/** `b` with bytes changed at `at` and the checksum recomputed (to reach the checks after it). */
function patched(b: Uint8Array, at: number, bytes: number[], pseudo = PSEUDO): Uint8Array {
  const out = b.slice();
  out.set(bytes, at);
  out[16] = 0;
  out[17] = 0;
  const c = finish(sum16(out, 0, out.length, pseudo + out.length));
  out[16] = c >>> 8;
  out[17] = c & 0xff;
  return out;
}

/** Aligned option bytes as RFC 7323/2018 and our layout give them; SACK blocks all kept. */
const fits = (o: TcpOptions): boolean =>
  (o.mss === undefined ? 0 : 4) + (o.timestamp !== undefined ? 12 : o.sackPermitted ? 4 : 0) +
  (o.windowScale === undefined ? 0 : 4) + (o.sack === undefined ? 0 : 4 + 8 * o.sack.length) <= 40;

describe('tcp/wire', () => {
  it('parses a SYN', () => expect(parseTcp(SYN, PSEUDO)).toEqual(PARSED_SYN));
  it('parses every option kind', () => expect(parseTcp(EVERY_OPTION, PSEUDO)).toEqual(PARSED_EVERY_OPTION));
  it('parses four SACK blocks', () => expect(parseTcp(SACK4, PSEUDO)).toEqual(PARSED_SACK4));
  it('parses data', () => {
    const t = parseTcp(DATA, PSEUDO);
    expect(t).toEqual(PARSED_DATA);
    if (typeof t === 'string') throw new Error(t);
    expect(t.payload.buffer).toBe(DATA.buffer);
  });

  it('writes every byte', () => {
    for (const [record, bytes] of [[PARSED_SYN, SYN], [PARSED_SACK4, SACK4], [PARSED_DATA, DATA]] as const) {
      const out = new Uint8Array(bytes.length).fill(0xa5);
      expect(writeTcp(record, PSEUDO, out)).toBe(bytes.length);
      expect(tcpLength(record)).toBe(bytes.length);
      expect(out).toEqual(bytes);
    }
  });

  it('drops every truncation', () => {
    for (const bytes of [SYN, EVERY_OPTION, SACK4, DATA])
      for (let n = 0; n < bytes.length; n++) expect(parseTcp(bytes.subarray(0, n), PSEUDO)).toBeTypeOf('string');
  });

  it('drops a bad checksum, or one for other addresses', () => {
    const bad = DATA.slice();
    bad[36] = 0x70;                                  // "hellp"
    expect(parseTcp(bad, PSEUDO)).toBe('tcp.bad-checksum');
    expect(parseTcp(DATA, pseudoSum(ip('10.0.2.15'), ip('93.184.216.35'), IP_PROTO.TCP))).toBe('tcp.bad-checksum');
    expect(parseTcp(DATA, pseudoSum(ip('10.0.2.15'), ip('93.184.216.34'), IP_PROTO.UDP))).toBe('tcp.bad-checksum');
  });

  it('drops a bad data offset, port 0 and malformed options, each under its own name', () => {
    expect(parseTcp(patched(DATA, 12, [0x40]), PSEUDO)).toBe('tcp.bad-data-offset');
    expect(parseTcp(patched(DATA, 12, [0x00]), PSEUDO)).toBe('tcp.bad-data-offset');
    expect(parseTcp(patched(SYN, 12, [0xb0]), PSEUDO)).toBe('tcp.truncated');     // 44 > 40 bytes
    expect(parseTcp(patched(DATA, 0, [0, 0]), PSEUDO)).toBe('tcp.zero-port');
    expect(parseTcp(patched(DATA, 2, [0, 0]), PSEUDO)).toBe('tcp.zero-port');
    expect(parseTcp(patched(DATA, 22, [0x08, 0x09]), PSEUDO)).toBe('tcp.bad-timestamp-option');
    expect(parseTcp(patched(DATA, 20, [0x1e, 0x00]), PSEUDO)).toBe('tcp.bad-option-length');
  });

  it('ignores the reserved and AE bits', () => {
    expect(parseTcp(patched(DATA, 12, [0x8f]), PSEUDO)).toEqual(PARSED_DATA);
  });

  it('moves the payload with the data offset', () => {
    // data offset 5: the option bytes become payload
    expect(parseTcp(patched(DATA, 12, [0x50]), PSEUDO)).toEqual({ ...PARSED_DATA, options: {}, payload: DATA.subarray(20) });
  });

  it('round-trips, at an offset, touching nothing else', () => fc.assert(fc.property(
    tcpArb(tcpOptionsArb.filter(fits)), u16Arb, fc.nat(16), (t, pseudo, at) => {
      const len = tcpLength(t);
      const out = new Uint8Array(at + len + 4).fill(0xa5);
      expect(writeTcp(t, pseudo, out, at)).toBe(len);
      expect(out.subarray(0, at).every((x) => x === 0xa5)).toBe(true);
      expect(out.subarray(at + len).every((x) => x === 0xa5)).toBe(true);
      expect(parseTcp(out.subarray(at, at + len), pseudo)).toEqual(t);
    })));

  it('never throws', () => fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), u16Arb, (b, pseudo) => {
    expect(() => parseTcp(b, pseudo)).not.toThrow();
  })));

  it('never throws past the checksum', () => fc.assert(fc.property(
    fc.integer({ min: 0, max: 15 }), fc.uint8Array({ minLength: 20, maxLength: 80 }), (offset, b) => {
      b[12] = offset << 4;
      const t = parseTcp(patched(b, 0, []), PSEUDO);
      expect(typeof t === 'object' || t !== 'tcp.bad-checksum').toBe(true);
    }), { numRuns: 2000 }));
});

describe('tcp/wire header writer (payload written in place by the caller)', () => {
  it('writes every header byte with a zero checksum, then the checksum', () => {
    const headerLen = tcpHeaderLength(PARSED_DATA);
    expect(headerLen).toBe(DATA.length - 5);
    const out = new Uint8Array(DATA.length).fill(0xa5);
    expect(writeTcpHeader(PARSED_DATA, out)).toBe(headerLen);
    expect(out.subarray(0, 16)).toEqual(DATA.subarray(0, 16));
    expect([...out.subarray(16, 18)]).toEqual([0, 0]);
    expect(out.subarray(18, headerLen)).toEqual(DATA.subarray(18, headerLen));
    expect(out.subarray(headerLen).every((x) => x === 0xa5)).toBe(true);   // the payload is the caller's
    out.set(PARSED_DATA.payload, headerLen);
    writeTcpChecksum(out, 0, DATA.length, PSEUDO);
    expect(out).toEqual(DATA);
  });

  it('header + payload + checksum is writeTcp, at any offset', () => fc.assert(fc.property(
    tcpArb(tcpOptionsArb.filter(fits)), u16Arb, fc.nat(16), (t, pseudo, at) => {
      const len = tcpLength(t);
      const whole = new Uint8Array(at + len).fill(0xa5);
      writeTcp(t, pseudo, whole, at);
      const parts = new Uint8Array(at + len).fill(0xa5);
      const headerLen = writeTcpHeader(t, parts, at);
      expect(headerLen).toBe(tcpHeaderLength(t));
      parts.set(t.payload, at + headerLen);
      writeTcpChecksum(parts, at, len, pseudo);
      expect(parts).toEqual(whole);
    })));
});
