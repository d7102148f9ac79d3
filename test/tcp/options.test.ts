import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  NO_TCP_OPTIONS, parseTcpOptions, tcpOptionsLength, writeTcpOptions, type TcpOptions,
} from '../../src/tcp/options.js';
import { sackBlockArb, tcpOptionsArb } from '../helpers/arbitraries.js';
import { hex } from '../helpers/hex.js';

// A Linux SYN's options, byte for byte (tshark: MSS=1460 SACK_PERM TSval=287454020 TSecr=0 WS=128).
const LINUX_SYN = hex`020405b4  0402 080a 11223344 00000000  01 030307`;
const PARSED_SYN: TcpOptions = { mss: 1460, sackPermitted: true, timestamp: { value: 0x11223344, echo: 0 }, windowScale: 7 };

// Every kind, in an order no writer of ours uses, with unknown kinds MPTCP (30, length 4) and
// TFO cookie request (34, length 2) between them, then EOL and zero padding.
// tshark lists kinds 1,2,3,4,8,30,34,5,0.
const EVERY_KIND = hex`01 020405dc 030308 0402 080a deadbeef cafef00d 1e041234 2202 050a 000003e8 000007d0 00 000000`;
const PARSED_EVERY_KIND: TcpOptions = {
  mss: 1500, windowScale: 8, sackPermitted: true, timestamp: { value: 0xdeadbeef, echo: 0xcafef00d }, sack: [[1000, 2000]],
};

// Four SACK blocks, the most a 40-byte area holds (RFC 2018 §3), Linux's NOP NOP alignment.
const SACK4 = hex`0101 0522  00001388 000013ec  00000fa0 00001004  00000bb8 00000c1c  000007d0 00000834`;
const PARSED_SACK4: TcpOptions = { sack: [[5000, 5100], [4000, 4100], [3000, 3100], [2000, 2100]] };

// A data segment's timestamp, NOP NOP aligned.
const TS = hex`0101 080a 01000000 02000000`;
const PARSED_TS: TcpOptions = { timestamp: { value: 0x01000000, echo: 0x02000000 } };

function written(o: TcpOptions): Uint8Array {
  const out = new Uint8Array(44).fill(0xa5);
  const n = writeTcpOptions(o, out);
  expect(n).toBe(tcpOptionsLength(o));
  expect(out.subarray(n).every((x) => x === 0xa5)).toBe(true);
  return out.subarray(0, n);
}

describe('tcp/options', () => {
  it('parses a Linux SYN', () => expect(parseTcpOptions(LINUX_SYN)).toEqual(PARSED_SYN));
  it('parses every kind and skips unknown ones', () => expect(parseTcpOptions(EVERY_KIND)).toEqual(PARSED_EVERY_KIND));
  it('parses four SACK blocks in order', () => expect(parseTcpOptions(SACK4)).toEqual(PARSED_SACK4));
  it('parses a timestamp', () => expect(parseTcpOptions(TS)).toEqual(PARSED_TS));

  it('parses one to four SACK blocks', () => {
    for (let n = 1; n <= 4; n++) {
      const b = new Uint8Array([1, 1, 5, 2 + 8 * n, ...SACK4.subarray(4, 4 + 8 * n)]);
      expect(parseTcpOptions(b)).toEqual({ sack: PARSED_SACK4.sack!.slice(0, n) });
    }
  });

  it('reads nothing from an empty area, NOPs, or after EOL', () => {
    expect(parseTcpOptions(new Uint8Array(0))).toBe(NO_TCP_OPTIONS);
    expect(parseTcpOptions(hex`01010101`)).toEqual({});
    expect(parseTcpOptions(hex`00 020405b4 ff`)).toEqual({});
    expect(parseTcpOptions(hex`020405b4 00 ff 00 07`)).toEqual({ mss: 1460 });
  });

  it('reads a window shift above 14 as 14 (RFC 7323 §2.3)', () => {
    expect(parseTcpOptions(hex`01 030315`)).toEqual({ windowScale: 14 });
    expect(parseTcpOptions(hex`01 03030e`)).toEqual({ windowScale: 14 });
    expect(parseTcpOptions(hex`01 030300`)).toEqual({ windowScale: 0 });
  });

  it('drops malformed options, each under its own name', () => {
    expect(parseTcpOptions(hex`0101 0200`)).toBe('tcp.bad-option-length');          // length 0
    expect(parseTcpOptions(hex`0101 1e01`)).toBe('tcp.bad-option-length');          // length 1
    expect(parseTcpOptions(hex`0101 01 02`)).toBe('tcp.bad-option-length');         // kind without a length byte
    expect(parseTcpOptions(hex`0101 1e05 0000`)).toBe('tcp.bad-option-length');     // past the area
    expect(parseTcpOptions(hex`020305 00`)).toBe('tcp.bad-mss-option');
    expect(parseTcpOptions(hex`0304 0700`)).toBe('tcp.bad-window-scale-option');
    expect(parseTcpOptions(hex`0403 0000`)).toBe('tcp.bad-sack-permitted-option');
    expect(parseTcpOptions(hex`0101 0502`)).toBe('tcp.bad-sack-option');             // no block
    expect(parseTcpOptions(hex`050b 00000001 00000002 00 00`)).toBe('tcp.bad-sack-option');  // 9 bytes of blocks
    expect(parseTcpOptions(hex`0808 00000001 0000 0000`)).toBe('tcp.bad-timestamp-option');
  });

  it('writes every byte, in the Linux layout', () => {
    expect(written(PARSED_SYN)).toEqual(LINUX_SYN);
    expect(written(PARSED_SACK4)).toEqual(SACK4);
    expect(written(PARSED_TS)).toEqual(TS);
    expect(written({ mss: 536 })).toEqual(hex`02040218`);
    expect(written({ sackPermitted: true })).toEqual(hex`01010402`);
    expect(written({ windowScale: 14 })).toEqual(hex`0103030e`);
    expect(written({ mss: 1460, sackPermitted: true, windowScale: 7 })).toEqual(hex`020405b4 01010402 01030307`);
  });

  it('writes nothing for no options, sackPermitted false or an empty SACK list', () => {
    expect(written({})).toEqual(new Uint8Array(0));
    expect(written({ sackPermitted: false, sack: [] })).toEqual(new Uint8Array(0));
  });

  it('keeps the leading SACK blocks that fit beside a timestamp (RFC 2018 §3: three)', () => {
    const o: TcpOptions = { ...PARSED_TS, sack: PARSED_SACK4.sack! };
    const b = written(o);
    expect(b.length).toBe(40);
    expect(b).toEqual(new Uint8Array([...TS, ...hex`0101 051a`, ...SACK4.subarray(4, 28)]));
    expect(parseTcpOptions(b)).toEqual({ ...PARSED_TS, sack: PARSED_SACK4.sack!.slice(0, 3) });
  });

  it('round-trips, within 40 bytes; SACK blocks that do not fit are dropped from the tail', () => fc.assert(
    fc.property(tcpOptionsArb, (o) => {
      const b = written(o);
      expect(b.length % 4).toBe(0);
      expect(b.length).toBeLessThanOrEqual(40);
      const p = parseTcpOptions(b);
      if (typeof p === 'string') throw new Error(p);
      const { sack, ...rest } = p;
      const { sack: sentSack, ...sentRest } = o;
      expect(rest).toEqual(sentRest);
      // Aligned sizes from RFC 7323/2018 and the layout: mss 4, timestamp 12 (or SACK-permitted 4), ws 4.
      const fixed = (o.mss === undefined ? 0 : 4) + (o.timestamp !== undefined ? 12 : o.sackPermitted ? 4 : 0) +
        (o.windowScale === undefined ? 0 : 4);
      const room = Math.max(0, Math.floor((40 - fixed - 4) / 8));
      const kept = Math.min(sentSack?.length ?? 0, room);
      expect(sack ?? []).toEqual((sentSack ?? []).slice(0, kept));
    })));

  it('round-trips any one to four SACK blocks alone', () => fc.assert(
    fc.property(fc.array(sackBlockArb, { minLength: 1, maxLength: 4 }), (sack) => {
      expect(parseTcpOptions(written({ sack }))).toEqual({ sack });
    })));

  it('never throws', () => fc.assert(fc.property(fc.uint8Array({ maxLength: 44 }), (b) => {
    expect(() => parseTcpOptions(b)).not.toThrow();
  }), { numRuns: 2000 }));
});
