/**
 * `tslirp` — process wiring: parse the command line, set up logging, start the daemon,
 * print how to reach it, shut down cleanly on SIGINT/SIGTERM, and reload on SIGHUP.
 *
 * Exit status (EXIT below; README and --help say the same): 0 after a clean shutdown (or
 * --help/--version); 2 for bad usage or configuration (the message names the option); 1
 * when the environment fails — a port in use, a directory that cannot be written, a capture
 * file that cannot be created — in one line naming the listener or file and the reason, or
 * when the daemon fails to stop within SHUTDOWN_TIMEOUT_MS.
 */
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import { Daemon } from '../daemon/daemon.js';
import { WsTokens } from '../link/ws-auth.js';
import { ApiServer } from '../api/server.js';
import { startApi } from './api.js';
import { configPath, configTokens, effectiveConfig, mergeConfig, type ConfigValue } from './config-file.js';
import { ATTACH_NOTE, attachCommand, describeListener } from '../daemon/listen-spec.js';
import type { NetworkSettings } from '../daemon/networks.js';
import { reasonOf, StartError } from '../daemon/start-error.js';
import { captureTarget } from '../pcap/tap.js';
import { ConfigError } from '../util/config-error.js';
import { formatIpv4Addr } from '../util/bytes.js';
import { formatEndpoint } from '../net/addr.js';
import { missingNodeFlags } from './node-flags.js';
import { HELP, parseCommandLine, UsageError, type Command } from './options.js';
import { replayCommand } from './replay-command.js';
import { inForceAtStart, planReload, type InForce, type ReloadPlan, type ServeCommand } from './reload.js';
import type { NetworkReload } from '../network/reload.js';
import { DEFAULT_LEASES_PER_PORT } from '../dhcp/server.js';

/** Exit statuses. */
export const EXIT = { OK: 0, ENVIRONMENT: 1, USAGE: 2 } as const;

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

/**
 * SIGHUP reloads what can change without dropping sessions. With `--config FILE` the file is
 * read again (src/cli/reload.ts decides what changes): egress rules, session limits, the lease
 * bound, the log level and the token file take effect, options that need a restart are named
 * and left as they were. Without a config file, the `--ws-token-file` is re-read. Either way
 * everything is read and checked first and applied only when all of it is good: a file that
 * does not read or parse changes nothing, and the log says why. Without anything to reload
 * the daemon logs the signal and carries on: by default Node would exit 129 on it, leaving the
 * unix socket file behind and the sessions cut.
 */
class Reloader {
  readonly #log: Logger;
  readonly #argv: readonly string[];
  readonly #configFile: string | undefined;
  #inForce: InForce;
  /** The token file in force, read by the WebSocket listeners at every request. */
  tokens: TokenFile | undefined;
  daemon: Daemon | undefined;

  constructor(log: Logger, argv: readonly string[], configFile: string | undefined, inForce: InForce, tokens: TokenFile | undefined) {
    this.#log = log;
    this.#argv = argv;
    this.#configFile = configFile;
    this.#inForce = inForce;
    this.tokens = tokens;
  }

  /** Reloads run one at a time, in the order the signals came (a reload may wait for ports to bind). */
  #queue: Promise<void> = Promise.resolve();

  onSighup(): void {
    const log = this.#log;
    if (this.daemon === undefined) {
      log.warn({ signal: 'SIGHUP' }, 'SIGHUP during start-up: ignored (send it again once the daemon is listening)');
      return;
    }
    if (this.#configFile === undefined) return this.#reloadTokens();
    const daemon = this.daemon;
    const file = this.#configFile;
    this.#queue = this.#queue.then(() => this.#reload(daemon, file));
  }

  async #reload(daemon: Daemon, file: string): Promise<void> {
    const log = this.#log;
    const refuse = (e: unknown): void => {
      log.error({ signal: 'SIGHUP', config: file, reason: (e as Error).message }, 'SIGHUP: configuration not reloaded, nothing changed');
    };
    let plan: ReloadPlan;
    let tokens: TokenFile | undefined;
    try {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new FileError(`--config: cannot read ${file}: ${reasonOf(e)}`);
      }
      plan = planReload(this.#argv, this.#inForce, text, file);
      tokens = plan.cmd.wsTokenFile === undefined ? undefined : new TokenFile(plan.cmd.wsTokenFile);
    } catch (e) {
      refuse(e);
      return;
    }
    const { cmd } = plan;
    // The forwards first: binding a port is the one step that can still fail, and it undoes itself.
    let forwards: { added: string[]; removed: string[] };
    try {
      forwards = await daemon.reloadForwards(cmd.network.forwards);
    } catch (e) {
      refuse(e);
      return;
    }
    this.tokens = tokens;
    daemon.reload({
      limits: cmd.sessionLimits,
      network: networkReload(cmd.network),
      networks: new Map([...cmd.networks].map(([name, settings]) => [name, networkReload(settings)])),
    });
    log.level = cmd.logLevel;
    this.#inForce = plan.inForce;
    // Whatever the new level: an operator who sent the signal must see what it did.
    const always = log.child({}, { level: 'info' });
    always.info(
      {
        signal: 'SIGHUP', config: file, changed: plan.changed, needRestart: plan.needRestart, egress: plan.inForce.egress, ...cmd.sessionLimits, logLevel: cmd.logLevel, flowLimits: cmd.network.flowLimits,
        forwardsAdded: forwards.added, forwardsRemoved: forwards.removed, ...(tokens !== undefined && { tokenFile: tokens.path, tokens: tokens.current.size }),
      },
      'SIGHUP: configuration reloaded',
    );
    if (plan.needRestart.length > 0)
      always.warn({ signal: 'SIGHUP', config: file, needRestart: plan.needRestart }, `SIGHUP: ${plan.needRestart.map((k) => `--${k}`).join(', ')} changed in the file but only a restart applies ${plan.needRestart.length === 1 ? 'it' : 'them'}: left as ${plan.needRestart.length === 1 ? 'it was' : 'they were'}`);
  }

  #reloadTokens(): void {
    const log = this.#log;
    const tokens = this.tokens;
    if (tokens === undefined) {
      log.info({ signal: 'SIGHUP' }, 'SIGHUP: nothing to reload (neither --config nor --ws-token-file was given)');
      return;
    }
    try {
      tokens.reload();
      log.info({ signal: 'SIGHUP', tokenFile: tokens.path, tokens: tokens.current.size }, 'SIGHUP: WebSocket tokens reloaded');
    } catch (e) {
      log.error({ signal: 'SIGHUP', tokenFile: tokens.path, reason: (e as Error).message }, 'SIGHUP: token file not reloaded, the previous tokens stay in force');
    }
  }
}

/** What a reload hands a network of these settings. */
function networkReload(s: NetworkSettings): NetworkReload {
  return { egress: s.config.egress?.rules ?? [], maxSessionLeases: s.config.maxLeasesPerPort ?? DEFAULT_LEASES_PER_PORT, dnsRecords: s.dnsRecords, flowLimits: s.flowLimits };
}

/** `--ws-token-file`: its tokens, read at start and on SIGHUP. */
class TokenFile {
  readonly path: string;
  current: WsTokens;
  constructor(path: string) {
    this.path = path;
    this.current = TokenFile.#read(path);
  }
  reload(): void {
    this.current = TokenFile.#read(this.path);
  }
  static #read(path: string): WsTokens {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new FileError(`--ws-token-file: cannot read ${path}: ${reasonOf(e)}`);
    }
    try {
      return WsTokens.parse(text);
    } catch (e) {
      throw new UsageError(`--ws-token-file: ${path}: ${(e as Error).message}`, 'ws-token-file');
    }
  }
}

/** A file the command line names that cannot be read: the environment's failure (exit 1). */
class FileError extends Error {}

function readPem(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new FileError(`--${option}: cannot read ${path}: ${reasonOf(e)}`);
  }
}

/**
 * `argv`: the command line as given; `args`: with the config file (`configFile`) merged in,
 * what `cmd` was parsed from.
 */
async function serve(cmd: ServeCommand, argv: readonly string[], args: readonly string[], configFile: string | undefined): Promise<number> {
  let tokens: TokenFile | undefined;
  let wsTls: { cert: Buffer; key: Buffer } | undefined;
  try {
    tokens = cmd.wsTokenFile === undefined ? undefined : new TokenFile(cmd.wsTokenFile);
    wsTls = cmd.wsTls === undefined ? undefined : { cert: readPem('ws-tls-cert', cmd.wsTls.cert), key: readPem('ws-tls-key', cmd.wsTls.key) };
  } catch (e) {
    process.stderr.write(`tslirp: ${(e as Error).message}\n`);
    return e instanceof UsageError ? EXIT.USAGE : EXIT.ENVIRONMENT;
  }
  const log = makeLogger(cmd.logLevel);
  const reloader = new Reloader(log, argv, configFile, inForceAtStart(args, cmd), tokens);
  let daemon: Daemon | undefined;
  let api: ApiServer | undefined;
  // Signal handlers go in before anything is bound, so no signal finds the process without
  // them (a SIGTERM during start-up stops the daemon as soon as it is up).
  let settle: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    settle = resolve;
  });
  let stopping: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping !== undefined) {
      log.warn({ signal }, 'second signal: exiting now');
      settle(1);
      return;
    }
    stopping = signal;
    if (daemon !== undefined) shutDown(daemon, api, log, signal, settle);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => {
    reloader.onSighup();
  });
  // A bug that escapes every handler: say so, close what can be closed (the unix socket files,
  // the captures) within the shutdown bound, and exit 1 rather than die with sockets left behind.
  const fatal = (e: unknown): void => {
    log.fatal({ err: e }, 'internal error: shutting down');
    if (daemon === undefined) settle(1);
    else shutDown(daemon, api, log, 'internal error', () => { settle(1); });
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);

  const capture = cmd.pcap === undefined ? undefined : captureTarget(cmd.pcap);
  try {
    daemon = await Daemon.start({
      listeners: cmd.listeners,
      network: cmd.network,
      networks: cmd.networks,
      defaultNetwork: cmd.defaultNetwork,
      dns: cmd.dns,
      ...cmd.sessionLimits,
      trustedProxies: cmd.trustedProxies,
      wsIdleTimeoutMs: cmd.wsIdleTimeoutMs,
      // Read at every request: a reload may replace, add or remove the token file.
      wsTokens: () => reloader.tokens?.current,
      ...(wsTls !== undefined && { wsTls }),
      ...(capture?.kind === 'dir' && { pcapDir: capture.path }),
      ...(capture?.kind === 'file' && { pcapFile: capture.path }),
      pcapUserAppl: `tslirp ${version()}`,
      recordDir: cmd.record,
      log,
    });
    api = await startApi(cmd, daemon, log, `tslirp ${version()}`);
    reloader.daemon = daemon;
  } catch (e) {
    await daemon?.close();
    // One line a user can act on; the stack trace only for --log-level debug.
    log.debug({ err: e }, 'cannot start');
    process.stderr.write(`tslirp: ${e instanceof StartError ? e.message : `cannot start: ${reasonOf(e)}`}\n`);
    return EXIT.ENVIRONMENT;
  }
  // The "listening" line is the daemon's contract with scripts: printed whatever --log-level says.
  log.child({}, { level: 'info' }).info(
    {
      version: version(),
      // Addresses come in the order of the specs.
      listeners: daemon.addresses.map((a, i) => ({ ...describeListener(a), ...(cmd.listeners[i]?.network !== undefined && { network: cmd.listeners[i].network }) })),
      network: describeSettings(cmd.network),
      ...(cmd.defaultNetwork !== undefined && { defaultNetwork: cmd.defaultNetwork }),
      networks: Object.fromEntries([...cmd.networks].map(([name, s]) => [name, describeSettings(s)])),
      forwards: [...new Set(cmd.network.forwards.map((r) => r.text))],
      dnsUpstreams: daemon.dnsUpstreams.map(formatEndpoint),
      pcap: capture, // { kind: 'dir' (a classic pcap per session) | 'file' (one pcapng), path }
      ...(cmd.record !== undefined && { record: cmd.record }),
      api: api?.addresses ?? [],
    },
    'listening',
  );
  const missing = missingNodeFlags(process.execArgv);
  if (missing.length > 0) {
    log.warn({ missing }, 'node was started without these flags: bulk transfers spend much of their CPU in garbage collection (run the tslirp executable or npm start, or pass them to node)');
  }
  // Human-readable instructions go to stderr, so stdout stays one JSON object per line.
  // Each command line runs as pasted (shell for QEMU, JavaScript for v86).
  const lines = [`tslirp is listening. Attach a guest with one of these; ${ATTACH_NOTE}:`];
  for (const a of daemon.addresses) lines.push(`  ${attachCommand(a)}`);
  process.stderr.write(lines.join('\n') + '\n');
  if (stopping !== undefined) shutDown(daemon, api, log, stopping, settle);
  return done;
}

/** --print-config: the options in effect, defaults of the listeners and the API filled in. */
function printedConfig(cmd: ServeCommand, args: readonly string[]): Record<string, ConfigValue> {
  const out = effectiveConfig(args);
  if (cmd.defaultListeners) {
    for (const l of cmd.listeners) {
      if (l.kind === 'ws') out['ws'] = [...((out['ws'] as string[] | undefined) ?? []), `${l.host}:${l.port}`];
      if (l.kind === 'stream' && l.transport === 'unix') out['stream'] = [...((out['stream'] as string[] | undefined) ?? []), `unix:${l.path}`];
    }
  }
  if (cmd.api.isDefault) out['api'] = cmd.api.listen.map((a) => (a.kind === 'unix' ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`));
  return out;
}

/** A network's settings for the "listening" line: addresses, pool, MTU, its own forwards. */
function describeSettings(s: NetworkSettings): Record<string, unknown> {
  const c = s.config;
  return {
    net: `${formatIpv4Addr(c.net)}/${c.prefixLen}`,
    host: formatIpv4Addr(c.host),
    dns: formatIpv4Addr(c.dns),
    dhcpstart: formatIpv4Addr(c.dhcpStart),
    dhcpPool: c.dhcpPoolSize,
    mtu: c.mtu,
    maxFlows: { tcp: s.flowLimits.tcp, udp: s.flowLimits.udp, perGuest: { ...s.flowLimits.perGuest } },
    forwards: [...new Set(s.forwards.map((r) => r.text))],
  };
}

/** Closes the daemon within SHUTDOWN_TIMEOUT_MS; `settle` gets 0 for a clean stop, else 1. */
function shutDown(daemon: Daemon, api: ApiServer | undefined, log: Logger, why: string, settle: (code: number) => void): void {
  log.info({ signal: why }, 'shutting down');
  const timer = setTimeout(() => {
    log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out');
    settle(1);
  }, SHUTDOWN_TIMEOUT_MS);
  timer.unref();
  // The API first: its clients stop watching before the sessions they watch go away.
  (api?.close() ?? Promise.resolve()).then(() => daemon.close()).then(
    () => {
      clearTimeout(timer);
      settle(0);
    },
    (e: unknown) => {
      log.error({ err: e }, 'shutdown failed');
      settle(1);
    },
  );
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'replay')
    return replayCommand(argv.slice(1), (t) => process.stdout.write(t), (t) => process.stderr.write(t), `tslirp ${version()}`);
  if (argv[0] === 'ctl') return (await import('./ctl.js')).runCtl(argv.slice(1));
  let cmd: Command;
  let args = argv;
  let file: string | undefined;
  try {
    file = configPath(argv);
    if (file !== undefined) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new UsageError(`--config: cannot read ${file}: ${reasonOf(e)}`, 'config');
      }
      args = mergeConfig(argv, configTokens(text, file));
    }
    cmd = parseCommandLine(args);
    if (cmd.command === 'serve' && args.includes('--print-config')) {
      process.stdout.write(JSON.stringify(printedConfig(cmd, args), null, 2) + '\n');
      return EXIT.OK;
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`tslirp: ${e.message}\nTry 'tslirp --help'.\n`);
      return EXIT.USAGE;
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
      return serve(cmd, argv, args, file);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`tslirp: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
