#!/usr/bin/env node
/**
 * The `tslirp` executable: starts the CLI (`main.ts`) in a node that runs with
 * DAEMON_NODE_FLAGS (`node-flags.ts`).
 *
 * Why a re-exec: V8 reads `--initial-old-space-size` only on the node command line (not from
 * NODE_OPTIONS), and the shebang that used to pass it, `#!/usr/bin/env -S node --flag`, needs
 * `env -S`, which BusyBox's env (Alpine) and older coreutils lack: `env: invalid option -- 'S'`.
 * So the shebang is plain, and when the flags are missing from `process.execArgv` this file
 * starts node once more with them (`--help` and `--version` skip that: they move no packets).
 *
 * The parent stays as a thin supervisor:
 * - the child runs in its own session (`detached`), so a signal meant for the whole foreground
 *   group (Ctrl-C at a terminal, `kill -TERM -PGID`) reaches the parent alone, which forwards
 *   SIGINT, SIGTERM and SIGHUP: the daemon sees each signal once (it treats a second SIGINT or
 *   SIGTERM as "exit now");
 * - it exits with the child's status, or dies of the child's signal;
 * - the child watches its parent's pid and shuts down (SIGTERM to itself) when the parent is
 *   gone, so a SIGKILLed wrapper leaves no orphaned daemon;
 * - TSLIRP_REEXEC (the parent's pid) marks the child: it never re-executes again, whatever its
 *   execArgv says, and removes the mark from its environment.
 * A supervisor that signals every process of the service (systemd's default
 * KillMode=control-group) still delivers SIGTERM twice: there, run
 * `node --initial-old-space-size=64 dist/cli/main.js serve` (or use KillMode=mixed).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { missingNodeFlags } from './node-flags.js';

/** The environment variable that marks the re-executed child; its value is the parent's pid. */
const REEXEC_ENV = 'TSLIRP_REEXEC';
const markedParent = process.env['TSLIRP_REEXEC'];
/** Signals the parent passes on to the child. */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How often the child checks that its parent is alive. */
const PARENT_POLL_MS = 1000;
/** Options that only print: they run in this process, without the flags. */
const CHEAP_OPTIONS = new Set(['--help', '-h', '--version', '-V']);

const args = process.argv.slice(2);

if (markedParent !== undefined) {
  delete process.env['TSLIRP_REEXEC'];
  watchParent(Number(markedParent));
  await import('./main.js');
} else if (missingNodeFlags(process.execArgv).length === 0 || args.some((a) => CHEAP_OPTIONS.has(a)) || args[0] === 'ctl') {
  await import('./main.js');
} else {
  reexec(missingNodeFlags(process.execArgv));
}

/** In the child: SIGTERM to itself once the parent that spawned it is gone (re-parented). */
function watchParent(parentPid: number): void {
  if (!Number.isInteger(parentPid) || parentPid !== process.ppid) return;
  const timer = setInterval(() => {
    if (process.ppid === parentPid) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, PARENT_POLL_MS);
  timer.unref();
}

function reexec(flags: readonly string[]): void {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...flags, ...process.execArgv, script, ...args], {
    stdio: 'inherit',
    // Its own session on POSIX; on Windows `detached` would open a console window instead.
    detached: process.platform !== 'win32',
    env: { ...process.env, [REEXEC_ENV]: String(process.pid) },
  });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  const stopForwarding = (): void => {
    for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward);
  };
  for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  child.on('error', (e) => {
    // Only a failed spawn leaves no pid (a failed kill of a live child has one): run here instead.
    if (child.pid !== undefined) return;
    stopForwarding();
    process.stderr.write(`tslirp: cannot re-execute node with ${flags.join(' ')} (${e.message}): starting without\n`);
    void import('./main.js');
  });
  child.on('exit', (code, signal) => {
    stopForwarding();
    if (signal === null) {
      process.exit(code ?? 1);
    }
    // Die of the same signal (no handler is left for it); a signal whose default is not to
    // terminate (or that is ignored) falls back to the shell's convention, 128 + its number.
    process.kill(process.pid, signal);
    setTimeout(() => process.exit(128 + (constants.signals[signal] as number | undefined ?? 0)), 1000);
  });
}
