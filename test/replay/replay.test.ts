/**
 * The replay's answers to a changed, corrupt or foreign file: a divergence decoded where a
 * recorded output was changed, exit 2 (never a throw) for anything that is not a whole
 * recording, and mutated guest frames replayed against the recorded host without a throw.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCapture } from '../../src/pcap/reader.js';
import { formatReport, replayRecording } from '../../src/replay/index.js';
import { replayCommand } from '../../src/cli/replay-command.js';
import { budgetMs, runs } from '../helpers/fuzz.js';

const PCAPS = resolve(import.meta.dirname, '..', '..', 'pcaps');
const load = (name: string): Uint8Array => new Uint8Array(readFileSync(resolve(PCAPS, name)));

/** The byte offset of each record's data in `bytes` (views into it), with its kind. */
function recordsOf(bytes: Uint8Array): { frame: number; at: number; length: number; outbound: boolean; iface: number }[] {
  const c = readCapture(bytes, { records: true });
  if (typeof c === 'string') throw new Error(c);
  return (c.records ?? []).map((r, i) => {
    const data = r.kind === 'packet' ? r.packet.data : r.block.data;
    return { frame: i + 1, at: data.byteOffset - bytes.byteOffset, length: data.length, outbound: r.kind === 'packet' && r.packet.direction === 'outbound', iface: r.kind === 'packet' ? r.packet.interfaceId : -1 };
  });
}

describe('a divergence', () => {
  it('names the frame tshark would, decodes expected and got, and diffs fields and bytes', () => {
    const bytes = load('tcp-half-close.pcapng').slice();
    // The first frame the network sent to the guest that is TCP: change its window's low byte.
    const target = recordsOf(bytes).find((r) => r.outbound && r.iface === 0 && bytes[r.at + 23] === 6)!;
    bytes[target.at + 14 + 20 + 15]! ^= 0x01;
    const report = replayRecording(bytes);
    expect(report.exitCode).toBe(1);
    expect(report.result).toBe('divergence');
    expect(report.divergence).toMatchObject({ frame: target.frame, kind: 'frame' });
    expect(report.divergence?.expected).toMatch(/^TCP 10\.0\.2\.2:\d+ → 10\.0\.2\.15:\d+ \[.*\] seq=\d+ ack=\d+ win=\d+ len=\d+$/);
    expect(report.divergence?.fields?.map((f) => f.field)).toEqual(['tcp.window_size_value']);
    expect(report.divergence?.hex?.offset).toBe(14 + 20 + 15);
    const text = formatReport(report);
    expect(text).toContain(`divergence at frame ${target.frame}`);
    expect(text).toMatch(/replay: \d+ frames, 1 difference, /);
  });

  it('reports a host call whose bytes differ', () => {
    const bytes = load('tcp-upload.pcapng').slice();
    const c = readCapture(bytes, { records: true });
    if (typeof c === 'string') throw new Error(c);
    // A recorded tcpWrite's data: the custom block's JSON names it; flip its last byte.
    const i = (c.records ?? []).findIndex((r) => r.kind === 'custom' && new TextDecoder().decode(r.block.data.subarray(12, 60)).includes('"n":"tcpWrite"'));
    const r = c.records![i]!;
    if (r.kind !== 'custom') throw new Error('not a custom block');
    const dataEnd = r.block.data.byteOffset + 12 + new DataView(r.block.data.buffer, r.block.data.byteOffset).getUint32(4, true) + new DataView(r.block.data.buffer, r.block.data.byteOffset).getUint32(8, true);
    bytes[dataEnd - 1]! ^= 0xff;
    const report = replayRecording(bytes);
    expect(report.exitCode).toBe(1);
    expect(report.divergence).toMatchObject({ frame: i + 1, kind: 'call' });
    expect(report.divergence?.fields?.map((f) => f.field)).toEqual(['arg1']);
  });
});

describe('input that is not a whole recording', () => {
  it('refuses a classic pcap, an empty file, garbage and a foreign pcapng with exit 2', () => {
    for (const bytes of [new Uint8Array(0), new Uint8Array(100).fill(7), Uint8Array.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, ...new Array<number>(16).fill(0)])]) {
      const r = replayRecording(bytes);
      expect(r.exitCode, r.error).toBe(2);
      expect(r.result).toBe('unusable');
    }
  });

  it('says where a recording was cut: every truncation is exit 2 or a shorter replay, never a throw', () => {
    const bytes = load('dns-udp-tcp.pcapng');
    for (let n = 0; n < bytes.length; n += 97) {
      const r = replayRecording(bytes.subarray(0, n));
      expect([0, 1, 2]).toContain(r.exitCode);
      if (r.exitCode === 2) expect(r.error).toBeTypeOf('string');
      if (r.exitCode === 0) expect(r.complete).toBe(false);
    }
  });

  it('never throws on bit flips anywhere in a recording', { timeout: budgetMs(20_000) }, () => {
    const bytes = load('hostfwd-tcp.pcapng');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }), (flips) => {
        const b = bytes.slice();
        for (const [at, x] of flips) b[at]! ^= x;
        const r = replayRecording(b);
        expect([0, 1, 2]).toContain(r.exitCode);
      }),
      { numRuns: runs(150) },
    );
  });
});

describe('mutated guest frames (the corpus as a fuzz seed)', () => {
  it('a network fed mutated guest frames against the recorded host never throws and ends', { timeout: budgetMs(30_000) }, () => {
    const bytes = load('udp-echo-icmp.pcapng');
    const inbound = recordsOf(bytes).filter((r) => !r.outbound && r.iface === 0 && r.length >= 14);
    fc.assert(
      fc.property(fc.nat(inbound.length - 1), fc.array(fc.tuple(fc.nat(1500), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }), (k, flips) => {
        const b = bytes.slice();
        const rec = inbound[k]!;
        for (const [off, x] of flips) b[rec.at + (off % rec.length)]! ^= x;
        const r = replayRecording(b);
        // A mutated frame makes the network answer otherwise (a divergence) or the same; never a throw, nor a bug the stack caught.
        expect([0, 1]).toContain(r.exitCode);
        expect(r.warnings.filter((w) => w.includes('internal error'))).toEqual([]);
      }),
      { numRuns: runs(100) },
    );
  });
});

describe('tslirp replay (the command)', () => {
  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await replayCommand(args, (t) => (out += t), (t) => (err += t));
    return { code, out, err };
  };
  it('exits 0 with one summary line for a capture that replays', async () => {
    const r = await run([resolve(PCAPS, 'udhcpc-lease.pcapng')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^replay: \d+ frames, 0 differences, \d+\.\d+ s\n$/);
  });
  it('prints the documented JSON report with --json', async () => {
    const r = await run(['--json', resolve(PCAPS, 'udhcpc-lease.pcapng')]);
    expect(JSON.parse(r.out)).toMatchObject({ schema: 'tslirp-replay-report/1', result: 'match', exitCode: 0, differences: 0, complete: true });
  });
  it('exits 2 for bad usage and 3 for a file that cannot be read', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['a', 'b'])).code).toBe(2);
    expect((await run(['--bogus', 'x'])).code).toBe(2);
    const missing = await run(['/nonexistent/x.pcapng']);
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/^replay: cannot read \/nonexistent\/x\.pcapng: ENOENT/);
  });
});
