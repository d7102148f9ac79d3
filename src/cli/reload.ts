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
 *   NAT's flow limits and new-flow rate (flows opened from then on), the plain `--hostfwd`
 *   rules, the log level and the WebSocket token file (re-read on every reload, changed or not).
 *   `--net-option` is split by key: a declared network's own values of RELOADABLE_NETWORK_KEYS
 *   change too; its other keys (a network's own `hostfwd` included), and which networks are
 *   declared, need a restart.
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
import { NETWORK_KEYS, parseCommandLine, parseNetOptions, type Command, type NetworkKey } from './options.js';

export type ServeCommand = Extract<Command, { command: 'serve' }>;

/** The `--net-option` keys (and plain options) that change inside a running network (src/network/reload.ts). */
export const RELOADABLE_NETWORK_KEYS: readonly NetworkKey[] = [
  'max-session-leases', 'dns-record', 'max-tcp-flows', 'max-udp-flows', 'max-network-tcp-flows', 'max-network-udp-flows', 'max-new-flows-per-second',
];

/** The options a reload changes in the running daemon (`net-option` in part: see above). */
export const RELOADABLE: readonly string[] = [
  'egress-allow', 'egress-deny', 'max-sessions', 'max-sessions-per-source', 'max-rss', ...RELOADABLE_NETWORK_KEYS, 'hostfwd', 'log-level', 'ws-token-file',
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
  const net = netOptionReload(now.values['net-option'], next['net-option']);
  const needRestart = [...new Set([...Object.keys(now.values), ...Object.keys(next)])]
    .filter((k) => k === 'net-option' ? net.needRestart : !RELOADABLE.includes(k) && !same(now.values[k], next[k]))
    .sort();
  const values: Record<string, ConfigValue> = Object.fromEntries(Object.entries(now.values).filter(([k]) => !RELOADABLE.includes(k) && k !== 'net-option'));
  for (const k of RELOADABLE) if (next[k] !== undefined) values[k] = next[k];
  if (net.inForce.length > 0) values['net-option'] = net.inForce;
  const egress = egressOf(newCmd);
  const { 'egress-allow': _a, 'egress-deny': _d, ...rest } = values;
  const args = ['serve', ...configTokens(JSON.stringify(rest), file), ...egress.map((r) => `--egress-${r.replace(' ', '=')}`)];
  const cmd = parseCommandLine(args, env);
  if (cmd.command !== 'serve') throw new Error('a reload needs the serve command');
  const changed = RELOADABLE.filter((k) => !k.startsWith('egress-') && !same(now.values[k], values[k]));
  if (net.changed) changed.push('net-option');
  if (egress.join('\n') !== now.egress.join('\n')) changed.unshift('egress-allow/egress-deny');
  return { cmd, inForce: { values, egress }, changed, needRestart };
}

type NetValues = ReturnType<typeof parseNetOptions> extends Map<string, infer V> ? V : never;

/** One network's values as `--net-option` texts, one KEY=VALUE each, keys in NETWORK_KEYS order (a canonical form). */
function netTexts(name: string, values: NetValues, keys: (k: NetworkKey) => boolean): string[] {
  const out: string[] = [];
  for (const key of NETWORK_KEYS) {
    const v = values[key];
    if (v === undefined || !keys(key)) continue;
    if (typeof v === 'boolean') out.push(`${name}:${key}=${v ? 'on' : 'off'}`);
    else if (typeof v === 'string') out.push(`${name}:${key}=${v}`);
    else for (const item of v) out.push(`${name}:${key}=${item}`);
  }
  return out;
}

const texts = (v: ConfigValue | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/**
 * `--net-option` across a reload: the networks declared at start, each with its restart-only
 * keys as before and its RELOADABLE_NETWORK_KEYS values from the file (`inForce`, as option
 * texts); `needRestart` when the file changes a restart-only key or which networks are
 * declared; `changed` when a reloadable value changed. Both sides parsed already at start and
 * by `parseCommandLine` above, so they parse here.
 */
function netOptionReload(nowValue: ConfigValue | undefined, nextValue: ConfigValue | undefined): { inForce: string[]; needRestart: boolean; changed: boolean } {
  const now = parseNetOptions(texts(nowValue));
  const next = parseNetOptions(texts(nextValue));
  const live = (k: NetworkKey): boolean => RELOADABLE_NETWORK_KEYS.includes(k);
  const fixed = (k: NetworkKey): boolean => !live(k);
  const names = (m: Map<string, NetValues>): string => [...m.keys()].sort().join('\n');
  let needRestart = names(now) !== names(next);
  let changed = false;
  const inForce: string[] = [];
  for (const [name, values] of now) {
    const theirs = next.get(name) ?? {};
    if (netTexts(name, values, fixed).join('\n') !== netTexts(name, theirs, fixed).join('\n')) needRestart = true;
    if (netTexts(name, values, live).join('\n') !== netTexts(name, theirs, live).join('\n')) changed = true;
    inForce.push(...netTexts(name, values, fixed), ...netTexts(name, theirs, live));
  }
  return { inForce, needRestart, changed };
}
