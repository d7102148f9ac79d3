/**
 * `tslirp` — process wiring: parse the command line, set up logging, start the daemon,
 * print how to reach it, and shut down cleanly on SIGINT/SIGTERM.
 *
 * Exit status: 0 after a clean shutdown (or --help/--version), 2 for a refused command
 * line (the message names the option), 1 when the daemon cannot start (e.g. a port in use)
 * or fails to stop within SHUTDOWN_TIMEOUT_MS.
 */
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import { Daemon } from '../daemon/daemon.js';
import { describeListener, usageFor } from '../daemon/listen-spec.js';
import { ConfigError } from '../stack/config.js';
import { formatIpv4Addr } from '../util/bytes.js';
import { formatEndpoint } from '../net/addr.js';
import { missingNodeFlags } from './node-flags.js';
import { HELP, parseCommandLine, UsageError, type Command } from './options.js';

/** How long a shutdown may take before the process exits with status 1. */
const SHUTDOWN_TIMEOUT_MS = 5000;

function version(): string {
  // dist/cli/main.js and src/cli/main.ts are both two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

function makeLogger(level: string): Logger {
  const base = { level, base: { pid: process.pid } };
  if (process.stdout.isTTY) return pino(base, PinoPretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l' }));
  return pino(base, pino.destination({ dest: 1, sync: true }));
}

async function serve(cmd: Extract<Command, { command: 'serve' }>): Promise<number> {
  const log = makeLogger(cmd.logLevel);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ listeners: cmd.listeners, network: cmd.network, dns: cmd.dns, forwards: cmd.forwards, pcapDir: cmd.pcapDir, log });
  } catch (e) {
    log.fatal({ err: e }, 'cannot start');
    return 1;
  }
  const n = cmd.network;
  // The "listening" line is the daemon's contract with scripts: printed whatever --log-level says.
  log.child({}, { level: 'info' }).info(
    {
      version: version(),
      listeners: daemon.addresses.map(describeListener),
      network: {
        net: `${formatIpv4Addr(n.net)}/${n.prefixLen}`,
        host: formatIpv4Addr(n.host),
        dns: formatIpv4Addr(n.dns),
        dhcpstart: formatIpv4Addr(n.dhcpStart),
        mtu: n.mtu,
      },
      forwards: cmd.forwards.map((r) => r.text),
      dnsUpstreams: daemon.dnsUpstreams.map(formatEndpoint),
      pcap: cmd.pcapDir,
    },
    'listening',
  );
  const missing = missingNodeFlags(process.execArgv);
  if (missing.length > 0) {
    log.warn({ missing }, 'node was started without these flags: bulk transfers spend much of their CPU in garbage collection (run the tslirp executable or npm start, or pass them to node)');
  }
  // Human-readable instructions go to stderr, so stdout stays one JSON object per line.
  const lines = ['tslirp is listening. Attach a guest with:'];
  for (const a of daemon.addresses) {
    const u = usageFor(a);
    if (u.qemu !== undefined) lines.push(`  QEMU: qemu-system-x86_64 … ${u.qemu}`);
    if (u.v86 !== undefined) lines.push(`  v86:  new V86({ …, ${u.v86} })`);
  }
  process.stderr.write(lines.join('\n') + '\n');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out');
        resolve(1);
      }, SHUTDOWN_TIMEOUT_MS);
      timer.unref();
      daemon.close().then(
        () => {
          clearTimeout(timer);
          resolve(0);
        },
        (e: unknown) => {
          log.error({ err: e }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function main(argv: readonly string[]): Promise<number> {
  let cmd: Command;
  try {
    cmd = parseCommandLine(argv);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`tslirp: ${e.message}\nTry 'tslirp --help'.\n`);
      return 2;
    }
    throw e;
  }
  switch (cmd.command) {
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
      process.stdout.write(`${version()}\n`);
      return 0;
    case 'serve':
      return serve(cmd);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`tslirp: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
