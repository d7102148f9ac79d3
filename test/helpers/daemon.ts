/**
 * Runs the real tslirp daemon (`node dist/cli/main.js serve ...`) as a child process for the
 * integration tests: waits for its `"msg":"listening"` log line, keeps every log line, and stops
 * it with SIGTERM (then SIGKILL after a bounded wait).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../../src/cli/node-flags.js';

/** Repository root (this file lives in test/helpers). */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
/** Log lines kept per daemon (the oldest are dropped beyond this). */
const MAX_LOGS = 50_000;
/** The compiled CLI entry point the tests run; CI builds it with `npm run build` first. */
export const DAEMON_ENTRY = join(REPO_ROOT, 'dist', 'cli', 'main.js');

/** One listener as announced in the daemon's `listening` log line. */
export type Listener =
  | { readonly kind: 'ws'; readonly url: string }
  | { readonly kind: 'stream'; readonly path: string }
  | { readonly kind: 'stream'; readonly host: string; readonly port: number }
  | { readonly kind: 'dgram'; readonly host: string; readonly port: number };

/** A parsed pino log record (JSON line). */
export type LogRecord = Readonly<Record<string, unknown>>;

/** How the daemon process ended. */
export interface DaemonExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running daemon. */
export interface Daemon {
  readonly pid: number;
  readonly listeners: readonly Listener[];
  /** Every JSON log line so far, parsed, in order (stdout and stderr). */
  readonly logs: readonly LogRecord[];
  /** Output lines that were not JSON (stack traces, warnings). */
  readonly otherOutput: readonly string[];
  /** The exit, once the process has ended. */
  readonly exited: DaemonExit | undefined;
  /** The WebSocket URL of the first ws listener; throws when there is none. */
  wsUrl(): string;
  /** The unix socket path of the first unix stream listener; throws when there is none. */
  streamPath(): string;
  /** Host and port of the first TCP stream listener; throws when there is none. */
  streamTcp(): { host: string; port: number };
  /** Host and port of the first UDP listener; throws when there is none. */
  dgram(): { host: string; port: number };
  /** Resident set size in KiB from /proc/PID/status (VmRSS); undefined once gone. */
  rssKiB(): number | undefined;
  /** True while the process runs. */
  alive(): boolean;
  /** Log records whose `level` is at least `minLevel` (pino: 40 warn, 50 error, 60 fatal). */
  logsAtLeast(minLevel: number): LogRecord[];
  /** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves with the exit. Idempotent. */
  stop(graceMs?: number): Promise<DaemonExit>;
  /** All output, for failure messages. */
  dump(): string;
}

/** Options of {@link startDaemon}. */
export interface StartDaemonOptions {
  /** How long to wait for the `listening` line (default 15 s). */
  readonly startTimeoutMs?: number;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** Another build's CLI entry point (its dist/cli/main.js) in place of this tree's: A/B benchmarks of two builds. */
  readonly entry?: string;
  /** Run the daemon inside this network namespace (`ip netns exec`, which execs node: the pid is node's). */
  readonly netns?: string;
}

/** Why the daemon cannot be run here, or undefined when it can. */
export function daemonMissing(): string | undefined {
  if (!existsSync(DAEMON_ENTRY)) return `the built daemon ${DAEMON_ENTRY} (run npm run build)`;
  return undefined;
}

/** Newest mtime of any file under src/, to warn about a stale dist/. */
function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

let staleWarned = false;
function warnIfStale(): void {
  if (staleWarned) return;
  staleWarned = true;
  try {
    if (newestSourceMtime(join(REPO_ROOT, 'src')) > statSync(DAEMON_ENTRY).mtimeMs) {
      console.warn(`WARNING: ${DAEMON_ENTRY} is older than src/: the integration tests run the old build (npm run build)`);
    }
  } catch {
    // No src or no dist: daemonMissing() reports the latter.
  }
}

function isListener(x: unknown): x is Listener {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  if (o['kind'] === 'ws') return typeof o['url'] === 'string';
  if (o['kind'] === 'stream') return typeof o['path'] === 'string' || (typeof o['host'] === 'string' && typeof o['port'] === 'number');
  if (o['kind'] === 'dgram') return typeof o['host'] === 'string' && typeof o['port'] === 'number';
  return false;
}

/** The DNS upstream of test daemons that name none: the discard port on loopback, closed. */
export const NO_DNS_UPSTREAM = '127.0.0.1:9';

/**
 * Starts `node dist/cli/main.js serve ...args` with the daemon's node flags (as the `tslirp`
 * executable does) and resolves once it logged `listening`. Rejects (after killing the
 * process) if it exits first or the line does not come in time. `$DAEMON_NODE_ARGS` adds node
 * flags, for profiling a test or benchmark daemon (`--cpu-prof`, `--perf-basic-prof`,
 * `--trace-gc`); `DAEMON_BARE_NODE=1` leaves out the daemon's own node flags, to measure
 * `node dist/cli/main.js serve` as a user who starts it without them gets it.
 */
export async function startDaemon(args: readonly string[], options: StartDaemonOptions = {}): Promise<Daemon> {
  const missing = daemonMissing();
  if (missing !== undefined) throw new Error(`cannot start the daemon: missing ${missing}`);
  warnIfStale();
  // Tests never reach the machine's own resolver: without an upstream of their own, DNS goes
  // to a closed loopback port (queries get SERVFAIL at once).
  const dns = args.includes('--dns-upstream') || args.includes('--resolv-conf') ? [] : ['--dns-upstream', NO_DNS_UPSTREAM];
  const ownFlags = process.env['DAEMON_BARE_NODE'] === '1' ? [] : DAEMON_NODE_FLAGS;
  const nodeArgs = [...ownFlags, ...(process.env['DAEMON_NODE_ARGS'] ?? '').split(' ').filter(Boolean), '--enable-source-maps', options.entry ?? DAEMON_ENTRY, 'serve', ...dns, ...args];
  const [cmd, cmdArgs] = options.netns === undefined ? [process.execPath, nodeArgs] : ['ip', ['netns', 'exec', options.netns, process.execPath, ...nodeArgs]];
  // A runtime directory of its own unless the test chose one (or an --api): otherwise every
  // test daemon would try the machine's default api.sock (and default sockets), and all but
  // the first would only warn that it is taken.
  const env = { ...process.env, ...options.env };
  const ownRuntimeDir = (env['XDG_RUNTIME_DIR'] ?? '') === '' && !args.includes('--api') ? mkdtempSync(join(tmpdir(), 'tslirp-test-run-')) : undefined;
  if (ownRuntimeDir !== undefined) env['XDG_RUNTIME_DIR'] = ownRuntimeDir;
  const child: ChildProcess = spawn(cmd, cmdArgs, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (ownRuntimeDir !== undefined) child.once('exit', () => rmSync(ownRuntimeDir, { recursive: true, force: true }));
  const logs: LogRecord[] = [];
  const otherOutput: string[] = [];
  let listeners: Listener[] | undefined;
  let exited: DaemonExit | undefined;
  let onListening: (() => void) | undefined;
  let onExit: (() => void) | undefined;

  const onLine = (line: string): void => {
    if (line.trim() === '') return;
    if (otherOutput.length >= MAX_LOGS) otherOutput.splice(0, otherOutput.length - MAX_LOGS / 2);
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      otherOutput.push(line);
      return;
    }
    if (typeof rec !== 'object' || rec === null) {
      otherOutput.push(line);
      return;
    }
    const r = rec as Record<string, unknown>;
    if (logs.length >= MAX_LOGS) logs.splice(0, logs.length - MAX_LOGS / 2); // bounded, keeps the recent half
    logs.push(r);
    if (r['msg'] === 'listening' && listeners === undefined && Array.isArray(r['listeners'])) {
      listeners = (r['listeners'] as unknown[]).filter(isListener);
      onListening?.();
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      pending += chunk;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
    });
    stream?.on('end', () => {
      if (pending !== '') onLine(pending);
      pending = '';
    });
  }
  const exitPromise = new Promise<DaemonExit>((res) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      onExit?.();
      res(exited);
    });
  });

  const dump = (): string =>
    [...logs.map((l) => JSON.stringify(l)), ...otherOutput].join('\n') + (exited ? `\n(exited code=${exited.code} signal=${exited.signal})` : '');

  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  try {
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => {
        rej(new Error(`daemon did not log "listening" within ${startTimeoutMs} ms:\n${dump()}`));
      }, startTimeoutMs);
      onListening = () => {
        clearTimeout(timer);
        res();
      };
      onExit = () => {
        clearTimeout(timer);
        rej(new Error(`daemon exited before listening:\n${dump()}`));
      };
      child.on('error', (err) => {
        clearTimeout(timer);
        rej(err);
      });
      if (listeners !== undefined) onListening();
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  onExit = undefined;
  const found = listeners ?? [];

  const first = (kind: Listener['kind'], pred: (l: Listener) => boolean = () => true): Listener => {
    const l = found.find((x) => x.kind === kind && pred(x));
    if (l === undefined) throw new Error(`daemon has no ${kind} listener: ${JSON.stringify(found)}`);
    return l;
  };
  let stopping: Promise<DaemonExit> | undefined;
  const pid = child.pid ?? -1;

  return {
    pid,
    listeners: found,
    logs,
    otherOutput,
    get exited() {
      return exited;
    },
    wsUrl: () => {
      const l = first('ws');
      return l.kind === 'ws' ? l.url : '';
    },
    streamPath: () => {
      const l = first('stream', (x) => 'path' in x);
      return 'path' in l ? l.path : '';
    },
    streamTcp: () => {
      const l = first('stream', (x) => 'port' in x);
      return 'port' in l ? { host: l.host, port: l.port } : { host: '', port: 0 };
    },
    dgram: () => {
      const l = first('dgram');
      return 'port' in l ? { host: l.host, port: l.port } : { host: '', port: 0 };
    },
    rssKiB: () => {
      try {
        const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) : undefined;
      } catch {
        return undefined;
      }
    },
    alive: () => exited === undefined,
    logsAtLeast: (minLevel) => logs.filter((l) => typeof l['level'] === 'number' && l['level'] >= minLevel),
    stop: (graceMs = 5_000) => {
      stopping ??= (async () => {
        if (exited !== undefined) return exited;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const e = await exitPromise;
        clearTimeout(timer);
        return e;
      })();
      return stopping;
    },
    dump,
  };
}
