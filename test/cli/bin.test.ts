/**
 * The `tslirp` executable as an installed package runs it: the file package.json's `bin` names,
 * started the way the kernel starts a script — its shebang interpreter with the shebang's
 * argument — except that `/usr/bin/env` is BusyBox's, as in an Alpine container. The old
 * shebang (`env -S node --initial-old-space-size=64`) died there: `env: invalid option -- 'S'`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { command, missingRequirements, shouldRun, tempDir, which } from '../helpers/guests.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['tslirp']!);
const missing = missingRequirements([command('busybox')]);
const dir = tempDir('tslirp-bin-');
const started: ChildProcess[] = [];

afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A started executable and everything it printed. */
interface Running {
  readonly child: ChildProcess;
  output: string;
}

/** Resolves with the first match of `pattern` in the output; rejects after `timeoutMs` or on exit. */
async function waitFor(r: Running, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(r.output);
    if (m !== null) return m;
    if (r.child.exitCode !== null || r.child.signalCode !== null) throw new Error(`exited before ${String(pattern)}:\n${r.output}`);
    if (Date.now() > deadline) throw new Error(`no ${String(pattern)} within ${timeoutMs} ms:\n${r.output}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** argv for running BIN as the kernel would, with BusyBox's env in place of /usr/bin/env. */
function viaBusyboxEnv(args: readonly string[]): string[] {
  const m = /^#!(\S+)(?:[ \t]+(.*))?$/.exec(readFileSync(BIN, 'utf8').split('\n')[0]!);
  expect(m?.[1]).toBe('/usr/bin/env');
  // Linux passes everything after the interpreter as one argument.
  const shebangArg = m?.[2]?.trim();
  return ['env', ...(shebangArg === undefined || shebangArg === '' ? [] : [shebangArg]), BIN, ...args];
}

/** Starts the bin under BusyBox env in its own process group; resolves once it listens. */
async function serve(name: string): Promise<{ proc: Running; sock: string; daemonPid: number }> {
  const sock = join(dir, `${name}.sock`);
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
  const child = spawn(which('busybox')!, viaBusyboxEnv(['serve', '--ws', '127.0.0.1:0', '--stream', `unix:${sock}`, '--log-level', 'info']), {
    env,
    detached: true, // its own process group, as a shell job is: the group can be signalled as Ctrl-C would
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  const proc: Running = { child, output: '' };
  child.stdout.on('data', (d: Buffer) => (proc.output += d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => (proc.output += d.toString('latin1')));
  const m = await waitFor(proc, /"pid":(\d+),[^\n]*"msg":"listening"/, 30_000);
  // main.ts installs its signal handlers before it binds anything: from the listening line on,
  // a signal is always handled.
  return { proc, sock, daemonPid: Number(m[1]) };
}

/** The exit of a child spawned by `serve`, or a timeout. */
function exitOf(proc: Running, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`still running after ${timeoutMs} ms:\n${proc.output}`)), timeoutMs);
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      res({ code, signal });
    };
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) done(proc.child.exitCode, proc.child.signalCode);
    else proc.child.once('exit', done);
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.runIf(shouldRun('the tslirp executable under BusyBox env', missing))('the tslirp executable', { timeout: 60_000 }, () => {
  beforeAll(() => {
    // CI builds before testing; elsewhere build now when src/ changed (cheap when it did not).
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-if-stale.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 280_000 });
    expect(r.status, r.stderr).toBe(0);
  }, 300_000);

  it('needs busybox (busybox-static)', () => {
    expect(missing).toEqual([]);
  });

  it('starts under BusyBox env with its node flags; SIGTERM stops it cleanly (exit 0, socket removed)', async () => {
    const { proc, sock, daemonPid } = await serve('term');
    // The daemon runs in a re-executed node whose command line carries the flags.
    expect(daemonPid).not.toBe(proc.child.pid);
    const cmdline = readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8').split('\0');
    for (const f of DAEMON_NODE_FLAGS) expect(cmdline).toContain(f);
    expect(existsSync(sock)).toBe(true);
    expect(proc.output).not.toContain('without these flags');
    proc.child.kill('SIGTERM');
    expect(await exitOf(proc, 15_000), proc.output).toEqual({ code: 0, signal: null });
    expect(existsSync(sock)).toBe(false);
    expect(proc.output).toContain('"msg":"daemon stopped"');
    expect(alive(daemonPid)).toBe(false);
  }, 60_000);

  it('a SIGINT to its whole process group (Ctrl-C) reaches the daemon once: clean exit 0', async () => {
    const { proc, sock } = await serve('int');
    process.kill(-proc.child.pid!, 'SIGINT');
    expect(await exitOf(proc, 15_000), proc.output).toEqual({ code: 0, signal: null });
    expect(proc.output).not.toContain('second signal');
    expect(existsSync(sock)).toBe(false);
  }, 60_000);

  it('dies of the signal that killed the daemon', async () => {
    const { proc, daemonPid } = await serve('kill');
    process.kill(daemonPid, 'SIGKILL');
    expect(await exitOf(proc, 15_000), proc.output).toEqual({ code: null, signal: 'SIGKILL' });
  }, 60_000);

  it('leaves no orphan: the daemon shuts down cleanly when the executable is killed', async () => {
    const { proc, sock, daemonPid } = await serve('orphan');
    proc.child.kill('SIGKILL');
    await exitOf(proc, 15_000);
    const deadline = Date.now() + 15_000;
    while (alive(daemonPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(daemonPid)).toBe(false);
    expect(existsSync(sock)).toBe(false);
  }, 60_000);

  it('passes exit statuses through: 2 for a bad option, 0 for --version (which needs no re-exec)', () => {
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
    const bad = spawnSync(which('busybox')!, viaBusyboxEnv(['serve', '--frobnicate']), { env, encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown option '--frobnicate'");
    const version = spawnSync(which('busybox')!, viaBusyboxEnv(['--version']), { env, encoding: 'utf8', timeout: 30_000 });
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  }, 60_000);
});
