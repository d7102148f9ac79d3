import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_TFTP_OPTIONS, parseTftp, TFTP_WIRE_DROPS, tftpLength, writeTftp, type TftpPacket } from '../../src/tftp/wire.js';
import { hex } from '../helpers/hex.js';
import { runs } from '../helpers/fuzz.js';

// RRQ "pxe.0" octet, blksize 1432, tsize 0 (as iPXE sends it); tshark (text2pcap -u 2000,69) decodes
// these bytes as "Read Request, Source File: pxe.0, Type: octet, Option: blksize = 1432, Option: tsize = 0".
const RRQ = hex`0001 7078652e3000 6f6374657400 626c6b73697a6500 3134333200 7473697a6500 3000`;
const RRQ_PARSED: TftpPacket = { op: 'rrq', filename: 'pxe.0', mode: 'octet', options: [{ name: 'blksize', value: '1432' }, { name: 'tsize', value: '0' }] };
const DATA = hex`0003 0001 dead beef`;
const ACK = hex`0004 ffff`;
const ERROR = hex`0005 0001 66696c65206e6f7420666f756e6400`; // code 1, "file not found"
const OACK = hex`0006 626c6b73697a6500 3134333200 7473697a6500 3400`; // blksize=1432, tsize=4

const CASES: [string, Uint8Array, TftpPacket][] = [
  ['RRQ with options', RRQ, RRQ_PARSED],
  ['DATA', DATA, { op: 'data', block: 1, data: hex`deadbeef` }],
  ['ACK', ACK, { op: 'ack', block: 0xffff }],
  ['ERROR', ERROR, { op: 'error', code: 1, message: 'file not found' }],
  ['OACK', OACK, { op: 'oack', options: [{ name: 'blksize', value: '1432' }, { name: 'tsize', value: '4' }] }],
];

describe('tftp/wire', () => {
  for (const [name, bytes, parsed] of CASES) {
    it(`parses ${name}`, () => expect(parseTftp(bytes)).toEqual(parsed));
    it(`writes every byte of ${name}`, () => {
      const out = new Uint8Array(bytes.length + 3).fill(0xa5);
      expect(tftpLength(parsed)).toBe(bytes.length);
      expect(writeTftp(parsed, out, 3)).toBe(bytes.length);
      expect(out.subarray(3)).toEqual(bytes);
      expect(out.subarray(0, 3)).toEqual(hex`a5a5a5`);
    });
  }

  it('drops every truncation of a request, an ACK and an OACK', () => {
    for (let n = 0; n < ACK.length; n++) expect(parseTftp(ACK.subarray(0, n))).toBeTypeOf('string');
    // A request cut right after its mode (14 bytes) or an option's value (27) is a request with fewer options; anywhere else it is refused.
    const options = RRQ_PARSED.op === 'rrq' ? RRQ_PARSED.options : [];
    for (let n = 0; n < RRQ.length; n++) {
      const p = parseTftp(RRQ.subarray(0, n));
      if (n === 14) expect(p).toEqual({ ...RRQ_PARSED, options: [] });
      else if (n === 27) expect(p).toEqual({ ...RRQ_PARSED, options: options.slice(0, 1) });
      else expect(p, `cut at ${n}`).toBeTypeOf('string');
    }
    // An OACK cut after a whole option pair is a shorter OACK; cut inside one it is refused.
    expect(parseTftp(OACK.subarray(0, OACK.length - 1))).toBe('tftp.unterminated-string');
    expect(parseTftp(OACK.subarray(0, 10))).toBe('tftp.option-without-value');
  });

  it('names each malformation', () => {
    expect(parseTftp(hex`0007 0000`)).toBe('tftp.unknown-opcode');
    expect(parseTftp(hex`0000`)).toBe('tftp.unknown-opcode');
    expect(parseTftp(hex`0001 6100 6f6374657400 626c6b73697a6500`)).toBe('tftp.option-without-value');
    expect(parseTftp(hex`0001 6100`)).toBe('tftp.truncated'); // no mode
    expect(parseTftp(hex`0001 61`)).toBe('tftp.unterminated-string');
    const many = new Uint8Array([0, 1, ...Array.from({ length: 2 + 2 * (MAX_TFTP_OPTIONS + 1) }, () => [0x61, 0]).flat()]);
    expect(parseTftp(many)).toBe('tftp.too-many-options');
  });

  it('takes an ERROR without its NUL, and a padded ACK', () => {
    expect(parseTftp(hex`0005 0002 6e6f`)).toEqual({ op: 'error', code: 2, message: 'no' });
    expect(parseTftp(hex`0004 0007 0000`)).toEqual({ op: 'ack', block: 7 });
  });

  it('keeps every byte of a name, NUL aside (latin1)', () => {
    const p = parseTftp(hex`0001 2e2e2fff0100 6f6374657400`);
    expect(p).toEqual({ op: 'rrq', filename: '../\u00ff\u0001', mode: 'octet', options: [] });
  });

  const str = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 20 });
  const options = fc.array(fc.record({ name: str, value: str }), { maxLength: MAX_TFTP_OPTIONS });
  const packetArb: fc.Arbitrary<TftpPacket> = fc.oneof(
    fc.record({ op: fc.constantFrom('rrq' as const, 'wrq' as const), filename: str, mode: str, options: fc.array(fc.record({ name: str, value: str }), { maxLength: MAX_TFTP_OPTIONS - 1 }) }),
    fc.record({ op: fc.constant('data' as const), block: fc.integer({ min: 0, max: 0xffff }), data: fc.uint8Array({ maxLength: 600 }) }),
    fc.record({ op: fc.constant('ack' as const), block: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({ op: fc.constant('error' as const), code: fc.integer({ min: 0, max: 0xffff }), message: str }),
    fc.record({ op: fc.constant('oack' as const), options }),
  );

  it('round-trips', () =>
    fc.assert(
      fc.property(packetArb, (p) => {
        const out = new Uint8Array(tftpLength(p));
        expect(writeTftp(p, out)).toBe(out.length);
        expect(parseTftp(out)).toEqual(p);
      }),
      { numRuns: runs(500) },
    ));

  it('never throws, and every refusal is a listed Drop', () =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(1, 2, 3, 4, 5, 6), (b, op) => {
        for (const bytes of [b, new Uint8Array([0, op, ...b])]) {
          const p = parseTftp(bytes);
          if (typeof p === 'string') expect(TFTP_WIRE_DROPS).toContain(p);
        }
      }),
      { numRuns: runs(1000) },
    ));
});
