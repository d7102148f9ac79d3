import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readCapture, type Capture } from '../../src/pcap/reader.js';
import { capturePath } from '../../src/pcap/tap.js';
import { encodePcapHeader, PcapFileWriter, writePcapRecord } from '../../src/pcap/writer.js';
import { hex, toHex } from '../helpers/hex.js';

const ARP = hex`ffffffffffff 525400123456 0806 0001 0800 0604 0001 525400123456 0a00020f 000000000000 0a000202`;
const REPLY = hex`525400123456 52550a000202 0806 0001 0800 0604 0002 52550a000202 0a000202 525400123456 0a00020f ${'00'.repeat(18)}`;

// Classic pcap, little-endian, microseconds: header then one record (ts 1700000000.000123, 42 bytes).
const PCAP_LE_US = hex`d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000
                       00f15365 7b000000 2a000000 2a000000 ${toHex(ARP)}`;
// The same capture big-endian with nanosecond timestamps (ts 1700000000.000000123).
const PCAP_BE_NS = hex`a1b23c4d 0002 0004 00000000 00000000 00040000 00000001
                       6553f100 0000007b 0000002a 0000002a ${toHex(ARP)}`;
// pcapng, little-endian: SHB (28 bytes), IDB (Ethernet, snaplen 0, if_tsresol=9 → ns), EPB, SPB.
const PCAPNG_LE = hex`0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
                      01000000 1c000000 0100 0000 00000000 0900 0100 09000000 1c000000
                      06000000 4c000000 00000000 fe9c9717 7b002a36 2a000000 2a000000 ${toHex(ARP)} 0000 4c000000
                      03000000 3c000000 2a000000 ${toHex(ARP)} 0000 3c000000`;

describe('pcap writer', () => {
  it('writes the classic header', () => {
    expect(toHex(encodePcapHeader())).toBe(toHex(PCAP_LE_US.subarray(0, 24)));
  });

  it('writes every byte of a record', () => {
    const out = new Uint8Array(16 + ARP.length).fill(0xa5);
    expect(writePcapRecord(1_700_000_000_000_123, ARP, out)).toBe(16 + 42);
    expect(toHex(out)).toBe(toHex(PCAP_LE_US.subarray(24)));
  });

  it('names files by start time and session', () => {
    expect(capturePath('/tmp/x', new Date('2026-11-25T08:30:00.123Z'), 'ab12-3')).toBe('/tmp/x/tslirp-2026-11-25T08-30-00.123Z-ab12-3.pcap');
  });
});

describe('pcap reader', () => {
  const expectArp = (c: Capture | string, nanos: number, format: 'pcap' | 'pcapng'): Capture => {
    if (typeof c === 'string') throw new Error(c);
    expect(c.format).toBe(format);
    expect(c.packets[0]).toMatchObject({ seconds: 1_700_000_000, nanos, originalLength: 42, linkType: 1, interfaceId: 0 });
    expect(toHex(c.packets[0]!.data)).toBe(toHex(ARP));
    return c;
  };

  it('reads little-endian microsecond pcap', () => {
    const c = expectArp(readCapture(PCAP_LE_US), 123_000, 'pcap');
    expect(c.littleEndian).toBe(true);
    expect(c.interfaces).toEqual([{ linkType: 1, snaplen: 262144 }]);
  });

  it('reads big-endian nanosecond pcap', () => {
    const c = expectArp(readCapture(PCAP_BE_NS), 123, 'pcap');
    expect(c.littleEndian).toBe(false);
  });

  it('reads pcapng with EPB and SPB, honouring if_tsresol', () => {
    const c = expectArp(readCapture(PCAPNG_LE), 123, 'pcapng');
    expect(c.packets).toHaveLength(2);
    expect(toHex(c.packets[1]!.data)).toBe(toHex(ARP));
    expect(c.packets[1]!.originalLength).toBe(42);
  });

  it('gives every 64-bit timestamp exactly, at microsecond and nanosecond resolution (the double fast path agrees with BigInt)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 53n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), fc.constantFrom(6, 9), (ts, resol) => {
        const file = PCAPNG_LE.slice();
        const v = new DataView(file.buffer);
        file[48] = resol; // the IDB's if_tsresol value
        v.setUint32(68, Number(ts >> 32n), true);
        v.setUint32(72, Number(ts & 0xffffffffn), true);
        const c = readCapture(file);
        if (typeof c === 'string') throw new Error(c);
        const units = 10n ** BigInt(resol);
        expect(c.packets[0]).toMatchObject({ seconds: Number(ts / units), nanos: Number(((ts % units) * 1_000_000_000n) / units) });
      }),
      { numRuns: 2000 },
    );
  });

  it('reads big-endian pcapng', () => {
    // Swap every field of PCAPNG_LE by hand: SHB, IDB with default µs resolution, EPB.
    const be = hex`0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c
                   00000001 00000014 0001 0000 00000000 00000014
                   00000006 0000004c 00000000 00060a24 181e407b 0000002a 0000002a ${toHex(ARP)} 0000 0000004c`;
    const c = expectArp(readCapture(be), 123_000, 'pcapng');
    expect(c.littleEndian).toBe(false);
  });

  it('returns a Drop for every truncation, never throws', () => {
    // Cuts at a header, record or block boundary leave a valid shorter capture.
    const boundaries = new Map([
      [PCAP_LE_US, [24]],
      [PCAP_BE_NS, [24]],
      [PCAPNG_LE, [28, 56, 132]],
    ]);
    for (const [f, ok] of boundaries)
      for (let n = 0; n < f.length; n++) {
        const r = readCapture(f.subarray(0, n));
        expect(typeof r === 'string' || ok.includes(n), `cut at ${n}`).toBe(true);
      }
    expect(readCapture(new Uint8Array(0))).toBe('pcap.truncated');
    expect(readCapture(hex`00112233 44556677`)).toBe('pcap.bad-magic');
  });

  it('returns a Drop for bad lengths and unknown interfaces', () => {
    const badLen = PCAP_LE_US.slice();
    badLen.set(hex`ffffff7f`, 24 + 8);
    expect(readCapture(badLen)).toBe('pcap.bad-record-length');
    const noIdb = hex`0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
                      06000000 20000000 00000000 00000000 00000000 00000000 00000000 20000000`;
    expect(readCapture(noIdb)).toBe('pcapng.unknown-interface');
  });

  it('never throws on random bytes or mutated captures', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        readCapture(b);
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom(PCAP_LE_US, PCAP_BE_NS, PCAPNG_LE), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (f, edits) => {
        const m = f.slice();
        for (const [at, v] of edits) m[at % m.length] = v;
        readCapture(m);
      }),
    );
  });
});

describe('PcapFileWriter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tslirp-pcap-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function capture(name: string): Promise<{ path: string; frames: Uint8Array[] }> {
    const path = join(dir, name);
    const w = new PcapFileWriter(path);
    const frames = [ARP, REPLY, new Uint8Array(9000).map((_, i) => i & 0xff), hex`0102`];
    for (let i = 0; i < 3000; i++) w.write(frames[i % frames.length]!); // > 64 KiB: several flushes
    await w.close();
    w.write(ARP);
    expect(w.dropped).toBe(1);
    expect(w.error).toBeUndefined();
    expect(w.packets).toBe(3000);
    return { path, frames };
  }

  it('round-trips through our reader, with wall-clock timestamps', async () => {
    const before = Date.now() / 1000;
    const { path, frames } = await capture('round-trip.pcap');
    const c = readCapture(readFileSync(path));
    if (typeof c === 'string') throw new Error(c);
    expect(c.packets).toHaveLength(3000);
    c.packets.forEach((p, i) => {
      expect(toHex(p.data)).toBe(toHex(frames[i % frames.length]!));
    });
    const t0 = c.packets[0]!.seconds + c.packets[0]!.nanos / 1e9;
    expect(t0).toBeGreaterThanOrEqual(Math.floor(before) - 1);
    expect(t0).toBeLessThanOrEqual(Date.now() / 1000 + 1);
  });

  const tcpdump = '/usr/bin/tcpdump';
  const haveTcpdump = existsSync(tcpdump);
  if (!haveTcpdump && process.env['CI'] !== 'true') console.warn(`SKIPPED: tcpdump not found at ${tcpdump}: cannot check the capture with it`);
  it.runIf(haveTcpdump || process.env['CI'] === 'true')('is read by tcpdump -r without warnings', async () => {
    const { path } = await capture('tcpdump.pcap');
    const r = spawnSync(tcpdump, ['-n', '-r', path], { encoding: 'utf8', timeout: 20_000, maxBuffer: 256 * 1024 * 1024 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.trim()).toBe(`reading from file ${path}, link-type EN10MB (Ethernet), snapshot length 262144`);
    // One line per packet (tcpdump hex-dumps the unknown EtherType under its line).
    const lines = r.stdout.split('\n').filter((l) => /^\d\d:\d\d:\d\d\.\d{6} /.test(l));
    expect(lines).toHaveLength(3000);
    expect(lines[0]).toMatch(/ARP, Request who-has 10\.0\.2\.2 tell 10\.0\.2\.15, length 28$/);
    expect(lines[1]).toMatch(/ARP, Reply 10\.0\.2\.2 is-at 52:55:0a:00:02:02, length 46$/);
  });

  const tshark = ['/usr/bin/tshark', '/usr/local/bin/tshark'].find((p) => existsSync(p));
  if (tshark === undefined) console.warn('SKIPPED: tshark not installed: cannot check the capture with it');
  it.runIf(tshark !== undefined)('is read by tshark -r without warnings', async () => {
    const { path } = await capture('tshark.pcap');
    const out = execFileSync(tshark!, ['-n', '-r', path, '-T', 'fields', '-e', 'frame.len', '-c', '4'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.trim().split('\n')).toEqual(['42', '60', '9000', '2']);
    const r = spawnSync(tshark!, ['-n', '-r', path], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
    expect(r.status).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.trim() !== '' && !/running as user "root"/i.test(l))).toEqual([]);
  });
});
