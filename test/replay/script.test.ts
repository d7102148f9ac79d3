/**
 * `.pkt` scripts: every script of pcaps/scripts/ passes through `tslirp replay` (the command
 * function, as bin.js runs it); a deliberately wrong one exits 1 with the divergence decoded;
 * the parser names the line of each error and never throws on any text; the runner's rules
 * (relative sequence numbers, unexpected and missing outputs, timers, tolerance, flow names,
 * tcpWrite's result) each hold.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { replayCommand } from '../../src/cli/replay-command.js';
import { formatReport, replay, replayScript } from '../../src/replay/index.js';
import { parseScript } from '../../src/replay/script-parse.js';
import { budgetMs, runs } from '../helpers/fuzz.js';

const SCRIPTS = resolve(import.meta.dirname, '..', '..', 'pcaps', 'scripts');
const scripts = readdirSync(SCRIPTS).filter((f) => f.endsWith('.pkt')).sort();
const DIVERGES = resolve(import.meta.dirname, 'scripts', 'diverges.pkt');

async function command(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await replayCommand(argv, (t) => (out += t), (t) => (err += t));
  return { code, out, err };
}

const tmp = mkdtempSync(join(tmpdir(), 'tslirp-pkt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
function scriptFile(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

/** The handshake every TCP script below starts with. */
const HANDSHAKE = `
0     < TCP 10.0.2.15:40000 > 10.0.2.2:80 S 0:0(0) win 65535 <mss 1460>
      host connect 127.0.0.1:80 -> accept
      > TCP 10.0.2.2:80 > 10.0.2.15:40000 S. 0:0(0) ack 1 <mss 1460>
+0.01 < TCP 10.0.2.15:40000 > 10.0.2.2:80 . 1:1(0) ack 1 win 65535
`;

describe('the scripts of pcaps/scripts pass through tslirp replay', () => {
  it('has the NAT contract scripts', () => {
    expect(scripts).toEqual(expect.arrayContaining(['tcp-connect-data-close.pkt', 'tcp-refused.pkt', 'tcp-host-reset.pkt', 'udp-flow.pkt', 'icmp-echo-gateway.pkt', 'arp-dhcp.pkt', 'restrict.pkt', 'hostfwd-tcp.pkt', 'tcp-guest-reset.pkt', 'dns-forward.pkt', 'two-guests.pkt']));
  });
  for (const name of scripts) {
    it(name, async () => {
      const r = await command(join(SCRIPTS, name));
      expect(r.code, r.out + r.err).toBe(0);
      expect(r.out).toMatch(/^replay: [1-9]\d* frames, \d+ host calls?, 0 differences, /m);
    });
  }
});

describe('the examples of the READMEs', () => {
  const root = resolve(import.meta.dirname, '..', '..');
  it('README.md (Record and replay, Scripts) runs as shown', () => {
    const text = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /\n\n((?: {4}0 {5}< TCP[^\n]*\n)(?: {4}[^\n]+\n)+)/.exec(text)?.[1];
    expect(block).toBeDefined();
    const r = replayScript(block!.replace(/^ {4}/gm, ''));
    expect(r.exitCode, formatReport(r)).toBe(0);
  });
  it('src/replay/README.md (Scripts) runs as shown', () => {
    const text = readFileSync(join(root, 'src', 'replay', 'README.md'), 'utf8');
    const block = /## Scripts \(`\.pkt`\)[\s\S]*?```\n([\s\S]*?)```/.exec(text)?.[1];
    expect(block).toContain('host connect');
    const r = replayScript(block!);
    expect(r.exitCode, formatReport(r)).toBe(0);
  });
});

describe('a script that diverges', () => {
  it('exits 1 naming the line, expected and got decoded, and the field', async () => {
    const r = await command(DIVERGES);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`replay: divergence at line 10 of ${DIVERGES} (t=0.060000 s, after the input of line 8)`);
    expect(r.out).toContain('  expected: TCP 10.0.2.2:80 > 10.0.2.15:40000 . 1:1(0) ack 7 win 65535');
    expect(r.out).toMatch(/ {2}got: {6}TCP 10\.0\.2\.2:80 → 10\.0\.2\.15:40000 \[ACK\] seq=\d+ ack=6 win=65535 len=0/);
    expect(r.out).toContain('    tcp.ack: 7 → 6');
    expect(r.out).toContain('1 difference');
  });

  it('--json: the report, schema tslirp-replay-report/1, with the line', async () => {
    const r = await command('--json', DIVERGES);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as Record<string, unknown>;
    expect(report).toMatchObject({ schema: 'tslirp-replay-report/1', input: 'script', result: 'divergence', exitCode: 1, differences: 1 });
    expect(report['divergence']).toMatchObject({ line: 10, frame: 10, entryFrame: 8, kind: 'frame', fields: [{ field: 'tcp.ack', expected: '7', got: '6' }] });
  });
});

describe('exit 2 and 3', () => {
  it('a script that does not parse: exit 2, every error with its line', async () => {
    const p = scriptFile('bad.pkt', '# bad\n0 < TCP 10.0.2.15:1 > 10.0.2.2:80 Q 0:0(0)\n\n+1 > UDP 10.0.2.2:7 > 10.0.2.15:1 "x\n+0.5 tick\nexpect host tcpWrite "x"\n0.2 tick\n');
    const r = await command(p);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${p}:2: TCP flags: 'Q' in 'Q' is not one of F S R P . U E W`);
    expect(r.err).toContain(`${p}:4: a string without its closing "`);
    expect(r.err).toContain(`${p}:6: tcpWrite: no flow yet`);
    expect(r.err).toContain(`${p}:7: time 0.2 goes back`);
    const json = JSON.parse((await command('--json', p)).out) as { errors: { line: number }[]; result: string };
    expect(json.result).toBe('unusable');
    expect(json.errors.map((e) => e.line)).toEqual([2, 4, 6, 7]);
  });

  it('a script whose option the network refuses: exit 2 naming the option line', async () => {
    const p = scriptFile('opt.pkt', 'option restrict=on\noption mtu=12\n0 tick\n');
    const r = await command(p);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`replay: ${p}:2: option: --mtu: '12' must be an integer from 68 to 65520\n`);
    expect(replayScript('option bogus=1\n0 tick').errors?.[0]?.message).toMatch(/^option: 'bogus' is not one of net, /);
  });

  it('option switches read on/off as booleans (restrict=off is off)', () => {
    const syn = '0 < TCP 10.0.2.15:1 > 10.0.2.2:80 S 0:0(0)\n  expect host connect 127.0.0.1:80\n';
    expect(replayScript(`option restrict=off\n${syn}`).exitCode).toBe(0);
    expect(replayScript(`option restrict=on\n${syn}`).divergence?.kind).toBe('missing');
  });

  it('a script file that cannot be read: exit 3', async () => {
    const r = await command(join(tmp, 'missing.pkt'));
    expect(r.code).toBe(3);
    expect(r.err).toContain('cannot read');
    expect((await replay(join(tmp, 'missing.pkt'))).input).toBe('script');
  });
});

describe('the parser', () => {
  it('reads frames with their fields and defaults', () => {
    const p = parseScript('seed 7\nguest 02:00:00:00:00:01\ndns-upstream 127.0.0.53:53\n0 < TCP 10.0.2.15:1 > 10.0.2.2:80 S 5:5(0) win 100 <mss 1000,sackOK,TS val 1 ecr 0,wscale 3> ttl 9 df\n+0.25 > ICMP 10.0.2.2 > 10.0.2.15 echo-reply id * seq 3 (4)\n1.5 tick');
    if ('errors' in p) throw new Error(JSON.stringify(p.errors));
    expect(p.script.seed).toBe(7);
    expect(p.script.dnsUpstreams).toEqual([{ addr: 0x7f000035, port: 53 }]);
    expect(p.script.steps.map((s) => [s.line, s.us, s.body.k])).toEqual([[4, 0, 'in'], [5, 250_000, 'out'], [6, 1_500_000, 'tick']]);
    expect(p.script.steps[0]!.body).toMatchObject({ frame: { proto: 'tcp', flags: 2, seq: 5, len: 0, win: 100, ttl: 9, df: true, options: [{ kind: 'mss', value: 1000 }, { kind: 'sackOK' }, { kind: 'TS', val: 1, ecr: 0 }, { kind: 'wscale', value: 3 }] } });
    expect(p.script.steps[1]!.body).toMatchObject({ frame: { proto: 'icmp', type: 0, echoId: '*', echoSeq: 3, len: 4 } });
  });

  it('refuses what a guest frame cannot carry and inconsistent lengths', () => {
    const errors = (text: string): string[] => {
      const p = parseScript(text);
      return 'errors' in p ? p.errors.map((e) => `${e.line}: ${e.message}`) : [];
    };
    expect(errors('0 < TCP 10.0.2.15:1 > 10.0.2.2:80 . 1:1(0) ack *')).toEqual(['1: * (any value) belongs in expected frames (>), not in a frame the guest sends']);
    expect(errors('0 < TCP 10.0.2.15:1 > 10.0.2.2:80 P. 1:3(2) "abc"')).toEqual(["1: the length (2) is not the payload's (3 bytes)"]);
    expect(errors('0 < TCP 10.0.2.15:1 > 10.0.2.2:80 P. 1:4(2)')).toEqual(['1: 1:4(2): END must be SEQ + LEN']);
    expect(errors('0 tick\nseed 3')).toEqual(["2: 'seed' is a directive: directives come before the first step"]);
    expect(errors('0 host write @a "x"')).toEqual(["1: tcpData: no flow @a yet (an 'expect host … @a' line that opens it comes first)"]);
    expect(errors('0 expect host tcpEnd -> 3')).toEqual(['1: tcpEnd: no flow yet (an \'expect host tcpConnect/udpOpen/…\' line opens one; or name one with @NAME)']);
    expect(errors('0 < ARP who-has 10.0.2.2 tell 10.0.2.15 extra')).toEqual(["1: unexpected 'extra' at the end of the line"]);
    expect(errors('0 < UDP 10.0.2.15:1 → 10.0.2.2:7')[0]).toMatch(/^1: the script is ASCII/);
    expect(errors('0 forward tcp::80-10.0.2.15:80-90')[0]).toMatch(/^1: forward: --hostfwd: /);
    expect(errors('0 <TCP 10.0.2.15:1 > 10.0.2.2:2 S')).toEqual(["1: a line starts with '< ' (a space after <: '<mss …>' is TCP options)"]);
    expect(errors('0 < guest 17 ARP who-has 10.0.2.2 tell 10.0.2.15')).toEqual(['1: guest number: 17 is out of range 0..16']);
    expect(errors('0 < guest 0 ARP who-has 10.0.2.2 tell 10.0.2.15')).toEqual(['1: guest: numbers start at 1']);
    expect(errors('# nothing')).toEqual(['1: the script has no steps (frames, host lines or ticks)']);
  });

  it('never throws on random text, and every error names a line of it', { timeout: budgetMs(15_000) }, () => {
    const words = ['<', '>', 'host', 'expect', 'tick', 'TCP', 'UDP', 'ICMP', 'ARP', 'DHCP', 'raw', '10.0.2.15:1', '10.0.2.2:80', '10.0.2.2', 'S', 'S.', 'P.', '0:0(0)', '1:3(2)', 'ack', 'win', '<mss 1460>', '<', '"ab\\x41"', '"', '@a', 'connect', '->', 'accept', 'tcpConnect', 'tcpData', 'udpBound', '+0.1', '0', '1e9', '*', 'seed', 'option', 'mtu=9000', '#', 'echo', 'id', 'who-has', 'is-at', 'eth', 'discover', 'xid', '(5)', 'ff', 'forward', 'tcp::8080-10.0.2.15:80', 'udp::53-:53', 'guest', '2', '52:54:00:12:34:57'];
    const line = fc.oneof(fc.array(fc.constantFrom(...words), { maxLength: 10 }).map((w) => w.join(' ')), fc.string({ maxLength: 40 }));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
        const text = lines.join('\n');
        const p = parseScript(text);
        if ('errors' in p) {
          expect(p.errors.length).toBeGreaterThan(0);
          for (const e of p.errors) {
            expect(e.line).toBeGreaterThanOrEqual(1);
            expect(e.line).toBeLessThanOrEqual(Math.max(1, lines.length));
            expect(e.message.length).toBeGreaterThan(0);
          }
        }
        // Whatever parses also runs to a report, never a throw.
        const r = replayScript(text);
        expect([0, 1, 2]).toContain(r.exitCode);
      }),
      { numRuns: runs(400) },
    );
  });
});

describe('mutated scripts', () => {
  it('lines of the corpus scripts dropped, repeated, swapped or with a number changed: a report, never a throw', { timeout: budgetMs(20_000) }, () => {
    const corpus = scripts.map((n) => readFileSync(join(SCRIPTS, n), 'latin1').split('\n'));
    fc.assert(
      fc.property(fc.nat(corpus.length - 1), fc.array(fc.tuple(fc.constantFrom('drop', 'dup', 'swap', 'digit'), fc.nat(200), fc.nat(200)), { maxLength: 4 }), (k, edits) => {
        const lines = [...corpus[k]!];
        for (const [op, a, b] of edits) {
          const i = a % lines.length;
          const j = b % lines.length;
          if (op === 'drop') lines.splice(i, 1);
          else if (op === 'dup') lines.splice(i, 0, lines[i]!);
          else if (op === 'swap') [lines[i], lines[j]] = [lines[j]!, lines[i]!];
          else lines[i] = lines[i]!.replace(/\d/, String(b % 10));
          if (lines.length === 0) lines.push('');
        }
        const r = replayScript(lines.join('\n'));
        expect([0, 1, 2]).toContain(r.exitCode);
        if (r.exitCode === 1) expect(r.divergence?.line).toBeLessThanOrEqual(lines.length);
        for (const e of r.errors ?? []) expect(e.line).toBeLessThanOrEqual(lines.length);
        // The stack catches what its callbacks throw: none of these may reach that net.
        expect(r.warnings).toEqual([]);
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('the runner', () => {
  it('binds the network ISN at its SYN-ACK: later seq are relative, the guest acks relative', () => {
    const r = replayScript(`${HANDSHAKE}
+0.01 host write "abc"
      > TCP 10.0.2.2:80 > 10.0.2.15:40000 P. 1:4(3) ack 1 "abc"
+0.01 < TCP 10.0.2.15:40000 > 10.0.2.2:80 . 1:1(0) ack 4 win 65535
+60 tick
`);
    expect(r.exitCode, formatReport(r)).toBe(0);
    // Acking past what was sent (relative 5) is no longer what the NAT sent: it answers with an ACK.
    const wrong = replayScript(`${HANDSHAKE}
+0.01 host write "abc"
      > TCP 10.0.2.2:80 > 10.0.2.15:40000 P. 2:5(3) ack 1 "abc"
`);
    expect(wrong.divergence?.fields).toEqual([{ field: 'tcp.seq', expected: '2', got: '1' }]);
  });

  it('an output nobody expected is a divergence before the next input, and at the end', () => {
    const r = replayScript(`${HANDSHAKE}
+0.01 < TCP 10.0.2.15:40000 > 10.0.2.2:80 P. 1:3(2) ack 1 win 65535 "hi"
+0.01 host write "yo"
`);
    expect(r.exitCode).toBe(1);
    expect(r.divergence).toMatchObject({ kind: 'unexpected', line: 8, expected: '(nothing more before line 8)', got: 'host tcpWrite(id 1, 2 bytes)' });
    const end = replayScript(`${HANDSHAKE}
+0.01 < TCP 10.0.2.15:40000 > 10.0.2.2:80 P. 1:3(2) ack 1 win 65535 "hi"
      expect host write "hi"
+1 tick
`);
    expect(end.divergence).toMatchObject({ kind: 'unexpected', line: 9, expected: '(nothing more after the last line)' });
    expect(end.divergence?.got).toMatch(/^to guest: TCP 10\.0\.2\.2:80 → 10\.0\.2\.15:40000 \[ACK\] .* ack=3 /);
  });

  it('an expected output that was not made is missing', () => {
    const r = replayScript(`${HANDSHAKE}
      > TCP 10.0.2.2:80 > 10.0.2.15:40000 .
`);
    expect(r.divergence).toMatchObject({ kind: 'missing', line: 7, got: '(nothing)' });
  });

  it('timers run on the way to a line, at their deadline; tolerance allows an earlier output', () => {
    const late = `${HANDSHAKE}
+0.01 < TCP 10.0.2.15:40000 > 10.0.2.2:80 P. 1:3(2) ack 1 win 65535 "hi"
      expect host write "hi"
+0.05 > TCP 10.0.2.2:80 > 10.0.2.15:40000 . 1:1(0) ack 3
`;
    const r = replayScript(late);
    expect(r.divergence?.fields).toEqual([{ field: 'frame.time_relative', expected: '0.070000', got: '0.060000' }]);
    expect(replayScript(`tolerance 0.02\n${late}`).exitCode).toBe(0);
  });

  it('a host call with other arguments diverges on the argument, with a hex diff of data', () => {
    const r = replayScript(`${HANDSHAKE}
+0.01 < TCP 10.0.2.15:40000 > 10.0.2.2:80 P. 1:3(2) ack 1 win 65535 "hi"
      expect host write "ho"
`);
    expect(r.divergence).toMatchObject({ kind: 'call', line: 8, fields: [{ field: 'arg1', expected: '2 bytes "ho"', got: '2 bytes "hi"' }], hex: { offset: 1 } });
  });

  it("tcpWrite returns its line's -> N: a host socket that buffers shrinks the window the guest sees", () => {
    const window = (buffered: number): string | undefined => {
      const r = replayScript(`${HANDSHAKE}
+0.01 < TCP 10.0.2.15:40000 > 10.0.2.2:80 P. 1:3(2) ack 1 win 65535 "hi"
      expect host write "hi" -> ${buffered}
+0.04 > TCP 10.0.2.2:80 > 10.0.2.15:40000 . 1:1(0) ack 3 win 0
`);
      return r.divergence?.fields?.find((f) => f.field === 'tcp.window_size_value')?.got;
    };
    const open = Number(window(0));
    const shrunk = Number(window(1_000_000)); // of the 1 MiB receive budget (DEFAULT_TCP_LIMITS)
    expect(open).toBeGreaterThan(0);
    expect(shrunk).toBeLessThan(open);
  });

  it('named flows keep two connections apart', () => {
    const r = replayScript(`
0     < TCP 10.0.2.15:40000 > 10.0.2.2:80 S 0:0(0) win 65535
      expect host connect @a 127.0.0.1:80
      < TCP 10.0.2.15:40001 > 10.0.2.2:81 S 0:0(0) win 65535
      expect host connect @b 127.0.0.1:81
+0.01 host tcpConnected @b
      > TCP 10.0.2.2:81 > 10.0.2.15:40001 S. 0:0(0) ack 1
      host tcpError @a ECONNREFUSED
      > TCP 10.0.2.2:80 > 10.0.2.15:40000 R. 0:0(0) ack 1
`);
    expect(r.exitCode, formatReport(r)).toBe(0);
    expect(r.hostCalls).toBe(2);
  });

  it("a guest's frame reaches only its port's queue: another guest's frame is missing there", () => {
    const r = replayScript('guest 2 02:00:00:00:00:02\n0 < guest 2 ICMP 10.0.2.16 > 10.0.2.2 echo id 1 seq 1\n  > guest 1 ICMP 10.0.2.16 > 10.0.2.2 echo\n  > guest 1 ICMP 10.0.2.2 > 10.0.2.16 echo-reply\n');
    expect(r.divergence).toMatchObject({ kind: 'missing', line: 4, got: '(no frame; queued: to guest 2: ICMP 10.0.2.2 → 10.0.2.16 type=0 code=0 len=8)' });
  });

  it('raw frames go in as written and compare byte for byte', () => {
    // An ARP request for the gateway, written out in hex (60 bytes, padded).
    const req = 'ffffffffffff 525400123456 0806 0001 0800 06 04 0001 525400123456 0a00020f 000000000000 0a000202' + ' 00'.repeat(18);
    const ok = replayScript(`0 < raw ${req}\n  > ARP 10.0.2.2 is-at 52:55:0a:00:02:02 to 10.0.2.15\n`);
    expect(ok.exitCode, formatReport(ok)).toBe(0);
    // The reply as the gateway sends it, padded to 60 bytes: one more byte is a difference at offset 60.
    const reply = '525400123456 52550a000202 0806 0001 0800 06 04 0002 52550a000202 0a000202 525400123456 0a00020f' + ' 00'.repeat(18);
    expect(replayScript(`0 < raw ${req}\n  > raw ${reply}\n`).exitCode).toBe(0);
    const bad = replayScript(`0 < raw ${req}\n  > raw ${reply} 00\n`);
    expect(bad.divergence).toMatchObject({ kind: 'frame', fields: [{ field: 'frame', expected: '61 bytes', got: '60 bytes' }], hex: { offset: 60 } });
  });
});
