import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ETHERTYPE, ethernetLength, parseEthernet, writeEthernet, type Ethernet } from '../../src/ethernet/wire.js';
import { ethernetArb } from '../helpers/arbitraries.js';
import { hex } from '../helpers/hex.js';

// Broadcast ARP request from 52:54:00:12:34:56, unpadded (42 bytes, as QEMU delivers it);
// tshark: "Who has 10.0.2.2? Tell 10.0.2.15".
const ARP_PAYLOAD = hex`0001 0800 0604 0001 525400123456 0a00020f 000000000000 0a000202`;
const FRAME = hex`ffffffffffff 525400123456 0806`;
const UNTAGGED = new Uint8Array([...FRAME, ...ARP_PAYLOAD]);
const PARSED: Ethernet = {
  dst: hex`ffffffffffff`, src: hex`525400123456`, vlan: undefined, etherType: ETHERTYPE.ARP, payload: ARP_PAYLOAD,
};

// 802.1Q: PCP 1, VID 100 (TCI 0x2064), inner IPv4 (tshark: vlan.id 100).
const TAGGED = hex`52550a000202 525400123456 8100 2064 0800 4500 0024`;
const PARSED_TAGGED: Ethernet = {
  dst: hex`52550a000202`, src: hex`525400123456`, vlan: 0x2064, etherType: ETHERTYPE.IPV4, payload: hex`4500 0024`,
};

describe('ethernet/wire', () => {
  it('parses an untagged runt frame', () => expect(parseEthernet(UNTAGGED)).toEqual(PARSED));

  it('parses an 802.1Q tagged frame', () => expect(parseEthernet(TAGGED)).toEqual(PARSED_TAGGED));

  it('keeps padding in the payload', () => {
    const padded = new Uint8Array(60);
    padded.set(UNTAGGED);
    const e = parseEthernet(padded);
    if (typeof e === 'string') throw new Error(e);
    expect(e.payload.length).toBe(46);
    expect(e.payload.subarray(0, 28)).toEqual(ARP_PAYLOAD);
  });

  it('returns views, not copies', () => {
    const e = parseEthernet(UNTAGGED);
    if (typeof e === 'string') throw new Error(e);
    expect(e.payload.buffer).toBe(UNTAGGED.buffer);
    expect(e.src.buffer).toBe(UNTAGGED.buffer);
  });

  it('writes every byte', () => {
    const out = new Uint8Array(UNTAGGED.length).fill(0xa5);
    expect(writeEthernet(PARSED, out)).toBe(42);
    expect(out).toEqual(UNTAGGED);
    expect(ethernetLength(PARSED)).toBe(42);
  });

  it('writes a tag', () => {
    const out = new Uint8Array(TAGGED.length).fill(0xa5);
    expect(writeEthernet(PARSED_TAGGED, out)).toBe(TAGGED.length);
    expect(out).toEqual(TAGGED);
    expect(ethernetLength(PARSED_TAGGED)).toBe(TAGGED.length);
  });

  it('drops every truncated header', () => {
    for (let n = 0; n < 14; n++) expect(parseEthernet(UNTAGGED.subarray(0, n))).toBe('ethernet.truncated');
    expect(parseEthernet(TAGGED.subarray(0, 14))).toBe('ethernet.truncated-vlan');
    for (let n = 15; n < 18; n++) expect(parseEthernet(TAGGED.subarray(0, n))).toBe('ethernet.truncated-vlan');
    expect(parseEthernet(UNTAGGED.subarray(0, 14))).toEqual({ ...PARSED, payload: new Uint8Array(0) });
  });

  it('drops 802.3 length frames (LLC), tagged or not', () => {
    const llc = hex`0180c2000000 525400123456 0026 4242 03 0000`;     // STP BPDU
    expect(parseEthernet(llc)).toBe('ethernet.not-ethernet-ii');
    expect(parseEthernet(hex`0180c2000000 525400123456 8100 0064 05ff 4242`)).toBe('ethernet.not-ethernet-ii');
  });

  it('round-trips, at an offset, touching nothing else', () => fc.assert(fc.property(ethernetArb, fc.nat(16), (e, at) => {
    const len = ethernetLength(e);
    const out = new Uint8Array(at + len + 4).fill(0xa5);
    expect(writeEthernet(e, out, at)).toBe(len);
    expect(out.subarray(0, at).every((x) => x === 0xa5)).toBe(true);
    expect(out.subarray(at + len).every((x) => x === 0xa5)).toBe(true);
    expect(parseEthernet(out.subarray(at, at + len))).toEqual(e);
  })));

  it('never throws', () => fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
    const e = parseEthernet(b);
    expect(typeof e === 'string' || e.payload.length <= b.length).toBe(true);
  })));
});
