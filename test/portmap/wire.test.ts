/**
 * NAT-PMP and PCP messages: byte literals laid out from RFC 6886 §3 and RFC 6887 §7, §11
 * (each field commented), every truncation, and fast-check properties (round trips of the
 * request writers, and parsing never throws on any bytes).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  NATPMP_RESULT,
  PCP_RESULT,
  parsePortmapRequest,
  writeNatPmpAddressResponse,
  writeNatPmpErrorResponse,
  writeNatPmpMapRequest,
  writeNatPmpMapResponse,
  writePcpAnnounceResponse,
  writePcpErrorResponse,
  writePcpMapRequest,
  writePcpMapResponse,
} from '../../src/portmap/wire.js';
import { runs } from '../helpers/fuzz.js';
import { hex } from '../helpers/hex.js';

const GUEST = 0x0a00020f; // 10.0.2.15
const NONCE = hex`0102030405060708090a0b0c`;

// natpmpc -a 8080 80 tcp 3600: version 0, op 2 (TCP), reserved, internal 80, suggested 8080, lifetime 3600.
const NATPMP_MAP_TCP = hex`00 02 0000 0050 1f90 00000e10`;
// PCP MAP: version 2, op 1, reserved, lifetime 7200, client ::ffff:10.0.2.15; nonce, protocol 6,
// reserved, internal 80, suggested 8080, suggested address :: ; then PREFER_FAILURE (code 2, length 0).
const PCP_MAP = hex`02 01 0000 00001c20 00000000000000000000ffff0a00020f
  0102030405060708090a0b0c 06 000000 0050 1f90 00000000000000000000000000000000
  02 00 0000`;

describe('portmap/wire: NAT-PMP', () => {
  it('parses the public address request', () => {
    expect(parsePortmapRequest(hex`00 00`)).toEqual({ kind: 'natpmp-address' });
  });
  it('parses a mapping request', () => {
    expect(parsePortmapRequest(NATPMP_MAP_TCP)).toEqual({ kind: 'natpmp-map', protocol: 'tcp', internalPort: 80, suggestedPort: 8080, lifetimeS: 3600 });
    expect(parsePortmapRequest(hex`00 01 0000 1388 0000 00000000`)).toEqual({ kind: 'natpmp-map', protocol: 'udp', internalPort: 5000, suggestedPort: 0, lifetimeS: 0 });
  });
  it('drops every truncation of a mapping request, and responses', () => {
    for (let n = 2; n < 12; n++) expect(parsePortmapRequest(NATPMP_MAP_TCP.subarray(0, n))).toBe('natpmp.truncated');
    expect(parsePortmapRequest(hex`00`)).toBe('portmap.too-short');
    expect(parsePortmapRequest(hex``)).toBe('portmap.too-short');
    expect(parsePortmapRequest(hex`00 80 0000 00000000 7f000001`)).toBe('portmap.response');
  });
  it('answers an unknown opcode with result 5', () => {
    const r = parsePortmapRequest(hex`00 03 0000`);
    expect(r).toMatchObject({ kind: 'natpmp-error', result: NATPMP_RESULT.UNSUPP_OPCODE });
  });
  it('writes the responses of RFC 6886 §3.2, §3.3, §3.5', () => {
    expect(writeNatPmpAddressResponse({ result: 0, epochS: 42, externalAddr: 0x7f000001 })).toEqual(hex`00 80 0000 0000002a 7f000001`);
    expect(writeNatPmpMapResponse({ protocol: 'tcp', result: 0, epochS: 42, internalPort: 80, externalPort: 8080, lifetimeS: 3600 })).toEqual(
      hex`00 82 0000 0000002a 0050 1f90 00000e10`,
    );
    expect(writeNatPmpMapResponse({ protocol: 'udp', result: NATPMP_RESULT.OUT_OF_RESOURCES, epochS: 1, internalPort: 5000, externalPort: 0, lifetimeS: 0 })).toEqual(
      hex`00 81 0004 00000001 1388 0000 00000000`,
    );
    expect(writeNatPmpErrorResponse(hex`00 03`, 5, 7)).toEqual(hex`00 83 0005 00000007`);
    expect(writeNatPmpErrorResponse(hex`00 05 0000 01020304 05060708`, 5, 7)).toEqual(hex`00 85 0005 00000007 05060708`);
  });
  it('round-trips mapping requests', () => {
    fc.assert(
      fc.property(fc.constantFrom('udp' as const, 'tcp' as const), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), (protocol, internalPort, suggestedPort, lifetimeS) => {
        const r = { protocol, internalPort, suggestedPort, lifetimeS };
        expect(parsePortmapRequest(writeNatPmpMapRequest(r))).toEqual({ kind: 'natpmp-map', ...r });
      }),
      { numRuns: runs(200) },
    );
  });
});

describe('portmap/wire: PCP', () => {
  it('parses a MAP request with PREFER_FAILURE', () => {
    expect(parsePortmapRequest(PCP_MAP)).toEqual({
      kind: 'pcp-map', lifetimeS: 7200, clientAddr: GUEST, nonce: NONCE, protocol: 6, internalPort: 80, suggestedPort: 8080, suggestedAddr: undefined, preferFailure: true,
    });
  });
  it('writes the MAP request it parses', () => {
    const w = writePcpMapRequest({ lifetimeS: 7200, clientAddr: GUEST, nonce: NONCE, protocol: 6, internalPort: 80, suggestedPort: 8080, suggestedAddr: undefined, preferFailure: true });
    expect(w).toEqual(PCP_MAP);
  });
  it('parses ANNOUNCE', () => {
    expect(parsePortmapRequest(hex`02 00 0000 00000000 00000000000000000000ffff0a00020f`)).toEqual({ kind: 'pcp-announce', lifetimeS: 0, clientAddr: GUEST });
  });
  it('gives an IPv6 client address as undefined (a mismatch for the server)', () => {
    expect(parsePortmapRequest(hex`02 00 0000 00000000 20010db8000000000000000000000001`)).toMatchObject({ clientAddr: undefined });
  });
  const errorOf = (b: Uint8Array): number | undefined => {
    const r = parsePortmapRequest(b);
    return typeof r === 'object' && r.kind === 'pcp-error' ? r.result : undefined;
  };
  it('answers bad requests with RFC 6887 §7.4 codes', () => {
    expect(errorOf(hex`03 01 0000`)).toBe(PCP_RESULT.UNSUPP_VERSION);
    expect(errorOf(hex`01 01 0000`)).toBe(PCP_RESULT.UNSUPP_VERSION);
    expect(errorOf(hex`02 02 0000 ${'00'.repeat(56)}`)).toBe(PCP_RESULT.UNSUPP_OPCODE); // PEER
    expect(errorOf(hex`02 03 0000 ${'00'.repeat(20)}`)).toBe(PCP_RESULT.UNSUPP_OPCODE);
    expect(errorOf(new Uint8Array(1104).fill(0).map((_, i) => (i === 0 ? 2 : i === 1 ? 1 : 0)))).toBe(PCP_RESULT.MALFORMED_REQUEST);
    // MAP with a THIRD_PARTY option (mandatory, unsupported), an unknown optional one (skipped), a short option.
    const base = PCP_MAP.subarray(0, 60);
    expect(errorOf(new Uint8Array([...base, 1, 0, 0, 16, ...new Uint8Array(16)]))).toBe(PCP_RESULT.UNSUPP_OPTION);
    expect(parsePortmapRequest(new Uint8Array([...base, 200, 0, 0, 4, 1, 2, 3, 4]))).toMatchObject({ kind: 'pcp-map', preferFailure: false });
    expect(errorOf(new Uint8Array([...base, 200, 0, 0, 8, 1, 2, 3, 4]))).toBe(PCP_RESULT.MALFORMED_OPTION);
    expect(errorOf(new Uint8Array([...base, 2, 0, 0, 0, 2, 0, 0, 0]))).toBe(PCP_RESULT.MALFORMED_OPTION); // PREFER_FAILURE twice
    expect(errorOf(new Uint8Array([...base, 2, 0, 0, 4, 0, 0, 0, 0]))).toBe(PCP_RESULT.MALFORMED_OPTION); // PREFER_FAILURE with data
  });
  it('answers every truncation of a MAP request with MALFORMED_REQUEST or drops it', () => {
    for (let n = 0; n < PCP_MAP.length; n++) {
      const r = parsePortmapRequest(PCP_MAP.subarray(0, n));
      if (n < 2) expect(r).toBe('portmap.too-short');
      else if (n === 60) expect(r).toMatchObject({ kind: 'pcp-map', preferFailure: false });
      else expect(r, `${n} octets`).toMatchObject({ kind: 'pcp-error', result: n > 60 && n % 4 === 0 ? PCP_RESULT.MALFORMED_OPTION : PCP_RESULT.MALFORMED_REQUEST });
    }
  });
  it('drops responses (R bit set)', () => {
    expect(parsePortmapRequest(hex`02 81 0000 ${'00'.repeat(56)}`)).toBe('portmap.response');
  });
  it('writes responses (RFC 6887 §7.2, §11.2)', () => {
    expect(writePcpAnnounceResponse({ result: 0, lifetimeS: 0, epochS: 9 })).toEqual(hex`02 80 00 00 00000000 00000009 ${'00'.repeat(12)}`);
    expect(writePcpMapResponse({ result: 0, lifetimeS: 7200, epochS: 9 }, { nonce: NONCE, protocol: 6, internalPort: 80, externalPort: 8080, externalAddr: 0x7f000001 })).toEqual(
      hex`02 81 00 00 00001c20 00000009 ${'00'.repeat(12)} 0102030405060708090a0b0c 06 000000 0050 1f90 00000000000000000000ffff7f000001`,
    );
    // An error response is the request with the response header over it; padded to 4 octets.
    expect(writePcpErrorResponse(hex`03 01 0000 00001c20`, { opcode: 1, result: 1, lifetimeS: 1800, epochS: 9 })).toEqual(hex`02 81 00 01 00000708 00000009 ${'00'.repeat(12)}`);
    const err = writePcpErrorResponse(PCP_MAP, { opcode: 1, result: PCP_RESULT.NOT_AUTHORIZED, lifetimeS: 1800, epochS: 9 });
    expect(err.length).toBe(PCP_MAP.length);
    expect(err.subarray(24)).toEqual(PCP_MAP.subarray(24));
    expect(err.subarray(0, 4)).toEqual(hex`02 81 00 02`);
    expect(writePcpErrorResponse(hex`02 01 0000 00 00`, { opcode: 1, result: 3, lifetimeS: 0, epochS: 0 }).length).toBe(24);
  });
  it('round-trips MAP requests', () => {
    fc.assert(
      fc.property(
        fc.record({
          lifetimeS: fc.integer({ min: 0, max: 0xffffffff }),
          clientAddr: fc.integer({ min: 0, max: 0xffffffff }),
          nonce: fc.uint8Array({ minLength: 12, maxLength: 12 }),
          protocol: fc.integer({ min: 0, max: 255 }),
          internalPort: fc.integer({ min: 0, max: 0xffff }),
          suggestedPort: fc.integer({ min: 0, max: 0xffff }),
          suggestedAddr: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
          preferFailure: fc.boolean(),
        }),
        (r) => {
          expect(parsePortmapRequest(writePcpMapRequest(r))).toEqual({ kind: 'pcp-map', ...r });
        },
      ),
      { numRuns: runs(200) },
    );
  });
});

describe('portmap/wire: any bytes', () => {
  it('never throws, and answers within 1100 octets', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), fc.constantFrom(0, 1, 2, 3), fc.integer({ min: 0, max: 255 }), (tail, version, op) => {
        const b = new Uint8Array([version, op, ...tail]);
        const r = parsePortmapRequest(b);
        if (typeof r === 'object' && r.kind === 'pcp-error') {
          expect(writePcpErrorResponse(r.request, { opcode: r.opcode, result: r.result, lifetimeS: 0, epochS: 0 }).length).toBeLessThanOrEqual(1100);
        }
        if (typeof r === 'object' && r.kind === 'natpmp-error') expect(writeNatPmpErrorResponse(r.request, r.result, 0).length).toBeLessThanOrEqual(1100);
      }),
      { numRuns: runs(2000) },
    );
  });
});
