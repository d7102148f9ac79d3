/**
 * SIGHUP with `--config FILE`: what a reload changes, decided before anything changes.
 *
 * The file is read again and goes through the same path as at start (`configTokens`,
 * `mergeConfig` with the command line, which still wins, then `parseCommandLine`), so a
 * reloaded file is checked exactly as a starting one. A file that does not read or parse
 * changes nothing: `planReload` throws the parser's error, naming the key.
 *
 * Options fall in two kinds:
 * - RELOADABLE ones change in the running daemon: the egress rules (every network, flows
 *   opened from then on), the session limits (links accepted from then on; sessions above a
 *   lowered limit go on), the lease bound per session, the DNS forwarder's static records, the
 *   plain `--hostfwd` rules (a network's own `--net-option` ones need a restart), the log
 *   level and the WebSocket token file (re-read on every reload, changed or not).
 * - Every other option shapes something already bound or built — listeners, networks'
 *   addresses, the NAT, the API — and needs a restart. When the file changes one, the reload
 *   still applies the reloadable ones, leaves that one as it was, and names it
 *   (`needRestart`); the next reload names it again until the daemon restarts.
 *
 * The options in force after a reload are a real command line too (`cmd`): the ones in force
 * before, with the reloadable ones taken from the file. Egress rules keep the file's order
 * across allow and deny (first match wins), which an options object cannot hold, so they are
 * carried as their own ordered list.
 */
import { configTokens, effectiveConfig, mergeConfig, type ConfigValue } from './config-file.js';
import { parseCommandLine, type Command } from './options.js';

export type ServeCommand = Extract<Command, { command: 'serve' }>;

/** The options a reload changes in the running daemon. */
export const RELOADABLE: readonly string[] = [
  'egress-allow', 'egress-deny', 'max-sessions', 'max-sessions-per-source', 'max-rss', 'max-session-leases', 'dns-record', 'hostfwd', 'log-level', 'ws-token-file',
];

/** The options in force: as a config object, and the egress rules in their order (`allow TEXT` / `deny TEXT`). */
export interface InForce {
  readonly values: Readonly<Record<string, ConfigValue>>;
  readonly egress: readonly string[];
}

export interface ReloadPlan {
  /** The command now in force: the restart-only options as before, the reloadable ones from the file. */
  readonly cmd: ServeCommand;
  readonly inForce: InForce;
  /** Reloadable options whose value changed (`egress-allow`/`egress-deny` when the rule list did). */
  readonly changed: readonly string[];
  /** Options the file changed that only a restart applies; left as they were. */
  readonly needRestart: readonly string[];
}

const egressOf = (cmd: ServeCommand): string[] => (cmd.network.config.egress?.rules ?? []).map((r) => `${r.action} ${r.text}`);
const same = (a: ConfigValue | undefined, b: ConfigValue | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The options in force at start, from the command line the daemon was started with (config file merged). */
export function inForceAtStart(args: readonly string[], cmd: ServeCommand): InForce {
  return { values: effectiveConfig(args), egress: egressOf(cmd) };
}

/**
 * What reloading `text` (the config file `file`, again) would do, for a daemon started with
 * `argv` whose options in force are `now`. Throws UsageError or ConfigError (nothing changes).
 */
export function planReload(argv: readonly string[], now: InForce, text: string, file: string, env: NodeJS.ProcessEnv = process.env): ReloadPlan {
  const newArgs = mergeConfig(argv, configTokens(text, file));
  const newCmd = parseCommandLine(newArgs, env);
  if (newCmd.command !== 'serve') throw new Error('a reload needs the serve command');
  const next = effectiveConfig(newArgs);
  const needRestart = [...new Set([...Object.keys(now.values), ...Object.keys(next)])]
    .filter((k) => !RELOADABLE.includes(k) && !same(now.values[k], next[k]))
    .sort();
  const values: Record<string, ConfigValue> = Object.fromEntries(Object.entries(now.values).filter(([k]) => !RELOADABLE.includes(k)));
  for (const k of RELOADABLE) if (next[k] !== undefined) values[k] = next[k];
  const egress = egressOf(newCmd);
  const { 'egress-allow': _a, 'egress-deny': _d, ...rest } = values;
  const args = ['serve', ...configTokens(JSON.stringify(rest), file), ...egress.map((r) => `--egress-${r.replace(' ', '=')}`)];
  const cmd = parseCommandLine(args, env);
  if (cmd.command !== 'serve') throw new Error('a reload needs the serve command');
  const changed = RELOADABLE.filter((k) => !k.startsWith('egress-') && !same(now.values[k], values[k]));
  if (egress.join('\n') !== now.egress.join('\n')) changed.unshift('egress-allow/egress-deny');
  return { cmd, inForce: { values, egress }, changed, needRestart };
}
