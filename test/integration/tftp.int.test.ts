/**
 * `--tftp DIR` with real TFTP clients: a namespace guest (real Linux UDP behind a TAP bridged
 * to the daemon's dgram link) fetches files from the gateway with Debian's tftp-hpa client
 * (which negotiates no options; octet and netascii modes) and atftp (blksize, tsize,
 * windowsize, timeout), sha256-exact; names that would leave the directory are refused with a
 * TFTP error the client prints.
 *
 * A recorded network holds what the files gave (the reads cross the host seam): its recording
 * replays with the served directory gone, and tshark decodes the TFTP in it without a warning.
 *
 * Needs root (namespaces, TAP), socat, busybox, tftp (tftp-hpa), atftp and tshark.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_ENTRY, startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, root, shouldRun, tempDir } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('tftp'), command('atftp'), command('tshark')]);
const enabled = shouldRun('tftp.int.test.ts (tftp-hpa and atftp in a namespace guest against --tftp)', missing);

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(!enabled)('--tftp with tftp-hpa and atftp in a namespace guest', () => {
  let d: Daemon;
  let g: NetnsGuest;
  let base: string;
  let served: string;
  let out: string;
  /** 3 MiB and a bit: not a multiple of any block size used, large enough for many windows. */
  const blob = randomBytes(3 * 1024 * 1024 + 123);
  /** Exactly 4 blocks of 512: the transfer ends with an empty block. */
  const even = randomBytes(2048);
  const text = 'line one\nline two\r\nline three with a lone CR\r and the end\n'.repeat(200);

  beforeAll(async () => {
    base = tempDir('tslirp-tftp-');
    served = join(base, 'srv');
    out = join(base, 'out');
    mkdirSync(join(served, 'boot'), { recursive: true });
    mkdirSync(out);
    writeFileSync(join(served, 'boot', 'blob.bin'), blob);
    writeFileSync(join(served, 'even.bin'), even);
    writeFileSync(join(served, 'notes.txt'), text);
    writeFileSync(join(base, 'secret'), 'not for guests\n');
    symlinkSync('../secret', join(served, 'link-out'));
    symlinkSync('boot/blob.bin', join(served, 'link-in'));
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--tftp', served, '--log-level', 'info']);
    g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    const { lease } = await g.dhcp();
    expect(lease?.['ip'], d.dump()).toBe('10.0.2.15');
  }, 120_000);

  afterAll(async () => {
    await g?.destroy();
    await d?.stop();
    if (base !== undefined) rmSync(base, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, tftp-hpa, atftp, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  /** tftp-hpa reading commands from stdin (its -c takes one command; `mode` needs a second). */
  const tftpHpa = (commands: string, ms = 60_000) => g.sh(`printf '%s' "$1" | tftp -v 10.0.2.2`, [commands], ms);

  it('tftp-hpa (no options) fetches a 3 MiB file in octet mode, sha256-exact', async () => {
    const dest = join(out, 'hpa-blob.bin');
    const r = await tftpHpa(`binary\nget /boot/blob.bin ${dest}\nquit\n`, 90_000);
    expect(r.stdout + r.stderr).not.toMatch(/Error code|Transfer timed out/);
    expect(sha256(readFileSync(dest))).toBe(sha256(blob));
  }, 120_000);

  it('tftp-hpa fetches a file of exactly 4 blocks, and one through a link inside the directory', async () => {
    await tftpHpa(`binary\nget even.bin ${join(out, 'even.bin')}\nget link-in ${join(out, 'link-in')}\nquit\n`, 90_000);
    expect(sha256(readFileSync(join(out, 'even.bin')))).toBe(sha256(even));
    expect(sha256(readFileSync(join(out, 'link-in')))).toBe(sha256(blob));
  }, 120_000);

  it('tftp-hpa in netascii mode (its default) gets the text back exactly', async () => {
    const dest = join(out, 'notes.txt');
    const r = await tftpHpa(`ascii\nget notes.txt ${dest}\nquit\n`);
    expect(r.stdout + r.stderr).not.toMatch(/Error code/);
    expect(readFileSync(dest, 'latin1')).toBe(text);
  }, 90_000);

  it('atftp with blksize, tsize, windowsize and timeout fetches the file sha256-exact', async () => {
    const dest = join(out, 'atftp-blob.bin');
    const r = await g.exec(
      ['atftp', '--trace', '--option', 'blksize 1428', '--option', 'tsize', '--option', 'windowsize 8', '--option', 'timeout 2', '-g', '-r', 'boot/blob.bin', '-l', dest, '10.0.2.2'],
      90_000,
    );
    const log = r.stdout + r.stderr;
    // The server's OACK as atftp traces it ("received OACK <tsize: N, windowsize: 8, …>"):
    // every option accepted, tsize the file's size; then DATA in windows of 8 between ACKs.
    const oack = /received OACK <([^>]*)>/.exec(log)?.[1];
    expect(oack, log.slice(0, 3000)).toBeDefined();
    const options = Object.fromEntries(oack!.split(',').map((o) => o.trim()).filter((o) => o !== '').map((o) => o.split(/:\s*/) as [string, string]));
    expect(options).toEqual({ blksize: '1428', tsize: String(blob.length), windowsize: '8', timeout: '2' });
    expect(log).toMatch(/received 8\. DATA <block: 8, size 1428>[^\n]*\nsent ACK <block: 8>/);
    expect(sha256(readFileSync(dest))).toBe(sha256(blob));
  }, 120_000);

  it.each([
    ['../secret', /Error code 2: file name has a '\.\.' component/],
    ['boot/../../secret', /Error code 2: file name has a '\.\.' component/],
    ['link-out', /Error code 2: access violation/],
    ['/etc/passwd', /Error code 1: file not found/],
    ['boot', /Error code 2: not a regular file/],
  ])('refuses %s with a TFTP error', async (name, error) => {
    const dest = join(out, 'refused');
    const r = await tftpHpa(`binary\nget ${name} ${dest}\nquit\n`);
    expect(r.stdout + r.stderr).toMatch(error);
  }, 60_000);

  it('refuses a write request (the server is read-only)', async () => {
    writeFileSync(join(out, 'upload.bin'), 'x');
    const r = await tftpHpa(`binary\nput ${join(out, 'upload.bin')} upload.bin\nquit\n`);
    expect(r.stdout + r.stderr).toMatch(/Error code 2: read-only server/);
  }, 60_000);
});

describe.skipIf(!enabled)('--tftp recorded with --record', () => {
  let d: Daemon;
  let g: NetnsGuest | undefined;
  let base: string;

  afterAll(async () => {
    await g?.destroy();
    await d?.stop();
    if (base !== undefined) rmSync(base, { recursive: true, force: true });
  });

  it('replays a recorded transfer byte for byte without the served files', async () => {
    base = tempDir('tslirp-tftp-rec-');
    const served = join(base, 'srv');
    const rec = join(base, 'rec');
    mkdirSync(served);
    mkdirSync(rec);
    const file = randomBytes(200_000);
    writeFileSync(join(served, 'f.bin'), file);
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--tftp', served, '--record', rec]);
    g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    const { lease } = await g.dhcp();
    expect(lease?.['ip']).toBe('10.0.2.15');
    const dest = join(base, 'got.bin');
    await g.exec(['atftp', '--option', 'blksize 1400', '--option', 'windowsize 4', '--option', 'tsize', '-g', '-r', 'f.bin', '-l', dest, '10.0.2.2'], 60_000);
    expect(sha256(readFileSync(dest))).toBe(sha256(file));
    await g.destroy();
    g = undefined;
    expect((await d.stop()).code).toBe(0);
    rmSync(served, { recursive: true, force: true });
    const [name] = readdirSync(rec);
    const recording = join(rec, name!);

    const tftp = spawnSync('tshark', ['-r', recording, '-Y', 'tftp', '-T', 'fields', '-e', 'tftp.opcode'], { encoding: 'utf8', timeout: 30_000 });
    const opcodes = tftp.stdout.split('\n').filter((l) => l !== '');
    expect(opcodes.filter((o) => o === '6')).toHaveLength(1); // one OACK
    expect(opcodes.filter((o) => o === '3').length).toBe(Math.floor(file.length / 1400) + 1);
    const warnings = spawnSync('tshark', ['-r', recording, '-Y', 'tftp && _ws.expert.severity >= warning'], { encoding: 'utf8', timeout: 30_000 });
    expect(warnings.status).toBe(0);
    expect(warnings.stdout).toBe('');

    const replayed = spawnSync(process.execPath, [DAEMON_ENTRY, 'replay', recording], { encoding: 'utf8', timeout: 60_000 });
    expect(replayed.stderr).toBe('');
    expect(replayed.stdout).toMatch(/^replay: \d+ frames, 0 differences, \d+\.\d+ s\n$/);
    expect(replayed.status).toBe(0);
  }, 120_000);
});
