import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry, type Entry } from '../../src/replay/format.js';
import { concat } from '../helpers/hex.js';

describe('recording entries', () => {
  it('round-trip with byte arrays (Buffers too) outside the JSON', () => {
    const e: Entry = { k: 'event', t: 123_456_789, n: 'tcpData', a: [7, Buffer.from('hello'), { addr: 0x7f000001, port: 80 }] };
    const bytes = concat(encodeEntry(e));
    expect(new TextDecoder().decode(bytes)).not.toContain('hello"'); // the data is not JSON text
    const back = decodeEntry(concat([bytes, new Uint8Array(3)])); // block padding after the data
    expect(back).toEqual({ ...e, a: [7, new Uint8Array(Buffer.from('hello')), { addr: 0x7f000001, port: 80 }] });
  });
  it('refuses what is not an entry, by name', () => {
    const good = concat(encodeEntry({ k: 'advance', t: 5 }));
    expect(decodeEntry(new Uint8Array(4))).toMatch(/TSLR/);
    expect(decodeEntry(good.subarray(0, good.length - 2))).toMatch(/exceed/);
    const badKind = concat(encodeEntry({ k: 'advance', t: 5 }));
    badKind[12 + 6] = 0x78; // "k":"xdvance"
    expect(decodeEntry(badKind)).toMatch(/unknown kind/);
    const ref = concat(encodeEntry({ k: 'call', n: 'udpSend', a: [1, new Uint8Array(4)] }));
    ref[8] = 2; // the bytes are shorter than the reference says
    expect(decodeEntry(ref.subarray(0, ref.length - 2))).toMatch(/beyond/);
  });
  it('refuses malformed byte references and hostile nesting without throwing', () => {
    const raw = (json: string, bytes = 0): Uint8Array => {
      const text = new TextEncoder().encode(json);
      const out = new Uint8Array(12 + text.length + bytes);
      out.set([0x54, 0x53, 0x4c, 0x52]);
      new DataView(out.buffer).setUint32(4, text.length, true);
      new DataView(out.buffer).setUint32(8, bytes, true);
      out.set(text, 12);
      return out;
    };
    expect(decodeEntry(raw('{"k":"call","n":"udpSend","a":[{"$b":[0,-1]}]}', 4))).toBe('bad byte reference');
    expect(decodeEntry(raw('{"k":"call","n":"udpSend","a":[{"$b":"x"}]}', 4))).toBe('bad byte reference');
    expect(decodeEntry(raw('{"k":"call","n":"udpSend","a":[[[{"$b":[2,3]}]]]}', 4))).toBe('byte reference beyond the block');
    expect(decodeEntry(raw(`{"k":"call","n":"udpSend","a":${'['.repeat(5000)}${']'.repeat(5000)}}`))).toBe('entry nested too deep');
    const nested = decodeEntry(raw('{"k":"call","n":"udpSend","a":[{"x":[{"$b":[1,2]}]}]}', 4));
    expect(nested).toEqual({ k: 'call', n: 'udpSend', a: [{ x: [new Uint8Array(2)] }] });
  });
});
