/**
 * The command line of `tslirp`: parsing (node:util parseArgs, strict), validation and the
 * help text. Pure: nothing here touches the process, so tests call it directly.
 */
import { parseArgs } from 'node:util';
import { defaultListeners, parseDgramSpec, parseStreamSpec, parseWsSpec, runtimeDir, type ListenerSpec } from '../daemon/listen-spec.js';
import { parseDnsRecordOption, type DnsStaticRecord } from '../dns/records.js';
import { parseDnsUpstream } from '../dns/resolv-conf.js';
import type { Endpoint } from '../net/addr.js';
import { normalizeOrigin } from '../link/ws-server.js';
import { parseForwards, type ForwardRule } from '../nat/forwards.js';
import { resolveStackConfig, type StackConfig } from '../stack/config.js';
import { ConfigError } from '../util/config-error.js';

/** Log levels accepted by --log-level. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What the command line asks for. */
export type Command =
  | { readonly command: 'help' }
  | { readonly command: 'version' }
  | {
      readonly command: 'serve';
      readonly listeners: readonly ListenerSpec[];
      /** True when no listener option was given and the defaults apply. */
      readonly defaultListeners: boolean;
      readonly network: StackConfig;
      readonly dns: DnsSettings;
      readonly forwards: readonly ForwardRule[];
      /** `--ws-allow-origin` values, normalized (or '*'); also set on every ws listener spec. */
      readonly wsAllowOrigins: readonly string[];
      /** --pcap PATH as given: a directory or a pcapng file (src/pcap/tap.ts captureTarget decides). */
      readonly pcap: string | undefined;
      readonly logLevel: LogLevel;
    };

/** Where the DNS forwarder's upstreams come from, and what it answers itself. */
export interface DnsSettings {
  /** `--dns-upstream` endpoints, in order; when given, resolv.conf is not read. */
  readonly upstreams: readonly Endpoint[] | undefined;
  /** `--resolv-conf`: followed for changes when no --dns-upstream is given. */
  readonly resolvConf: string;
  /** `--dns-record` entries. */
  readonly records: readonly DnsStaticRecord[];
}

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

/** A refused command line; `option` names the offending option (without dashes) when there is one. */
export class UsageError extends Error {
  readonly option: string | undefined;
  constructor(message: string, option?: string) {
    super(message);
    this.name = 'UsageError';
    this.option = option;
  }
}

const OPTIONS = {
  stream: { type: 'string', multiple: true },
  dgram: { type: 'string', multiple: true },
  ws: { type: 'string', multiple: true },
  'ws-allow-origin': { type: 'string', multiple: true },
  net: { type: 'string' },
  host: { type: 'string' },
  dns: { type: 'string' },
  dhcpstart: { type: 'string' },
  domainname: { type: 'string' },
  dnssearch: { type: 'string', multiple: true },
  hostname: { type: 'string' },
  mtu: { type: 'string' },
  route: { type: 'string', multiple: true },
  'tftp-server-name': { type: 'string' },
  bootfile: { type: 'string' },
  'lease-time': { type: 'string' },
  hostfwd: { type: 'string', multiple: true },
  restrict: { type: 'boolean' },
  'disable-host-loopback': { type: 'boolean' },
  'dns-upstream': { type: 'string', multiple: true },
  'resolv-conf': { type: 'string' },
  'dns-record': { type: 'string', multiple: true },
  pcap: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/** Every long option, for the help test. */
export const OPTION_NAMES: readonly string[] = Object.keys(OPTIONS);

/** resolveStackConfig's option names (QEMU's keys) → ours, where they differ. */
const CONFIG_OPTION_NAMES: Readonly<Record<string, string>> = { leasetime: 'lease-time', tftpservername: 'tftp-server-name' };

export const HELP = `Usage: tslirp serve [options]
       tslirp --help | --version

Serves a user-mode network (SLIRP) to virtual machines. Every guest that connects gets its
own virtual LAN: a gateway that answers ARP and ping, a DHCP server and a DNS address,
with QEMU -netdev user's names and defaults.

Listeners (each repeatable; giving any of them replaces the defaults):
  --stream unix:PATH         QEMU -netdev stream on a unix socket (4-byte length + frame)
  --stream tcp:HOST:PORT     QEMU -netdev stream over TCP
  --dgram udp:HOST:PORT      QEMU -netdev dgram over UDP, one session per sender address
  --ws HOST:PORT             WebSocket, one Ethernet frame per binary message at path /
                             (v86: net_device: { relay_url: 'ws://HOST:PORT/' }); the
                             same listener serves the e1000 device protocol at /e1000
  --ws-allow-origin ORIGIN   let web pages from ORIGIN (scheme://host[:port], e.g.
                             http://localhost:8000) open WebSockets (repeatable); '*'
                             allows any page. Requests carrying an Origin header (every
                             browser sends one) are refused with 403 otherwise; clients
                             without one (QEMU bridges, v86 under Node) are not affected
  HOST is an IP address (IPv6 in brackets); PORT 0 picks a free port.
  Defaults: --ws 127.0.0.1:8080 and --stream unix:DIR/tslirp.sock, where DIR is
  $XDG_RUNTIME_DIR/tslirp, else /run/tslirp as root, else TMPDIR/tslirp-UID.

Network (per session, as QEMU's -netdev user):
  --net ADDR/PREFIX          guest network (10.0.2.0/24); a dotted mask works too
                             (10.0.2.0/255.255.255.0)
  --host ADDR                gateway address (10.0.2.2)
  --dns ADDR                 virtual DNS server address (10.0.2.3)
  --dhcpstart ADDR           first address DHCP hands out, pool of 16 (10.0.2.15)
  --domainname NAME          domain name, DHCP option 15
  --dnssearch NAME[,NAME]    DNS search list, DHCP option 119 (repeatable)
  --hostname NAME            host name sent to the guest, DHCP option 12
  --mtu N                    guest MTU, 68 to 65520 (1500)
  --route DEST/PREFIX=GW     static route, DHCP option 121 (repeatable; DEST/MASK=GW too)
  --tftp-server-name NAME    TFTP server name, DHCP option 66
  --bootfile FILE            boot file name, DHCP option 67
  --lease-time SECONDS       DHCP lease time, at least 60 (86400)

NAT (guest flows become host sockets):
  --hostfwd RULE             forward host ports to the guest, QEMU's syntax with ranges:
                             [tcp|udp]:[HOSTADDR]:PORTS-[GUESTADDR]:PORTS, PORTS being
                             PORT or FIRST-LAST (tcp::2222-:22, tcp::8000-8010-:8000-8010;
                             ranges of equal length; at most 512 ports in all); repeatable
                             or comma-separated. HOSTADDR defaults to 127.0.0.1, GUESTADDR to
                             the session's first DHCP lease. Forwards belong to the first
                             session that connects (then to the next, once it ends)
  --restrict                 no outbound flows at all; DHCP, DNS and ping of the
                             gateway still work (QEMU's restrict=on)
  --disable-host-loopback    the gateway address does not reach the host's 127.0.0.1
                             (by default 10.0.2.2:PORT is the host's 127.0.0.1:PORT)

DNS (the forwarder at the --dns address, port 53):
  --dns-upstream HOST[:PORT] upstream resolver, tried in order (repeatable); replaces
                             --resolv-conf
  --resolv-conf PATH         take upstreams from PATH's nameserver lines and follow its
                             changes (/etc/resolv.conf)
  --dns-record NAME=ADDR     answer NAME with an A (IPv4) or AAAA (IPv6) record (repeatable);
                             host.tslirp.internal always answers the gateway address

Other:
  --pcap PATH                capture every session's frames. A PATH that is a directory or
                             ends in '/': one classic pcap per session,
                             PATH/tslirp-TIME-SESSION.pcap. Any other PATH: one pcapng file
                             for all sessions, one interface per session (name: session id)
  --log-level LEVEL          trace, debug, info, warn or error (info)
  -h, --help                 show this help and exit
  -V, --version              show the version and exit

Logs are JSON lines on stdout (pretty-printed on a terminal). Once every listener is
bound, a line with "msg":"listening" lists them. SIGINT or SIGTERM closes the listeners
and sessions, flushes captures, removes the unix sockets and exits 0; SIGHUP is logged and
ignored. Captures reach the file within one event-loop turn, so even a killed daemon leaves
them readable.

Exit status: 0 after a clean shutdown; 2 for bad usage or configuration (the message names
the option); 1 when the environment fails: a port in use, a directory that cannot be
written, a capture file that cannot be created (one line names the listener or file and
the reason).
`;

/** What a value looks like, for "--X needs a value (…)"; options not listed use their HELP placeholder. */
const VALUE_HINTS: Readonly<Record<string, string>> = {
  pcap: 'a directory or a .pcapng file',
  stream: 'unix:PATH or tcp:HOST:PORT',
  dgram: 'udp:HOST:PORT',
  ws: 'HOST:PORT',
  net: 'ADDR/PREFIX, e.g. 10.0.2.0/24',
  mtu: 'a number of bytes, 68 to 65520',
  hostfwd: 'a rule such as tcp::2222-:22',
  'log-level': LOG_LEVELS.join(', '),
};

/** The value placeholder HELP shows for `--name` (`--net ADDR/PREFIX` → `ADDR/PREFIX`). */
function helpPlaceholder(name: string): string | undefined {
  return new RegExp(`^\\s+(?:-\\w, )?--${name.replace(/[-]/g, '\\-')} (\\S+)`, 'm').exec(HELP)?.[1];
}

const hintFor = (name: string): string => VALUE_HINTS[name] ?? helpPlaceholder(name) ?? 'see --help';

/** Edit distance, for "did you mean" (both strings are short option names). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** ` (did you mean --pcap?)` for a near miss, else ''. */
function suggestion(name: string): string {
  let best: string | undefined;
  let bestD = 3;
  for (const known of OPTION_NAMES) {
    const prefix = Math.min(name.length, known.length) >= 3 && (known.startsWith(name) || name.startsWith(known));
    const d = Math.min(distance(name, known), prefix ? 2 : 3);
    if (d < bestD) [best, bestD] = [known, d];
  }
  return best === undefined ? '' : ` (did you mean --${best}?)`;
}

/**
 * Checks the command line token by token (parseArgs in non-strict mode reports every option
 * as it was written), so that every refusal speaks our language and names the option
 * instead of passing on parseArgs' own message.
 */
function checkTokens(argv: readonly string[]): void {
  const { tokens } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const options: Readonly<Record<string, { readonly type: 'string' | 'boolean' }>> = OPTIONS;
  let positionals = 0;
  for (const [i, t] of tokens.entries()) {
    if (t.kind === 'positional') {
      // The first is the command ('serve', checked by the caller); nothing may follow it.
      if (positionals++ === 0) continue;
      const before = tokens[i - 1];
      if (before?.kind === 'option' && options[before.name]?.type === 'boolean')
        throw new UsageError(`unexpected argument '${t.value}': ${before.rawName} takes no value`, before.name);
      throw new UsageError(`unexpected argument '${t.value}': 'tslirp serve' takes only options`);
    }
    if (t.kind !== 'option') continue;
    const spec = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (spec === undefined) throw new UsageError(`unknown option '${t.rawName}'${t.rawName.startsWith('--') ? suggestion(t.name) : ''}`, t.name);
    const name = `--${t.name}`;
    if (spec.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`${name} takes no value (got '${t.value}')`, t.name);
      continue;
    }
    if (t.value === undefined) throw new UsageError(`${name} needs a value (${hintFor(t.name)})`, t.name);
    // parseArgs' strict mode refuses `--pcap --restrict`: the value looks like the next option.
    if (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')
      throw new UsageError(`${name} needs a value (${hintFor(t.name)}), not the option '${t.value}'; write ${name}=${t.value} if you mean it`, t.name);
  }
}

/** Parses `argv` (without node and the script). Throws UsageError or ConfigError. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Command {
  checkTokens(argv);
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    // checkTokens refuses everything strict parsing does; this is a safety net for a newer Node.
    throw new UsageError(`cannot read the command line: ${(e as Error).message.split('\n')[0] ?? ''}`);
  }
  const v = parsed.values;
  if (v.help === true) return { command: 'help' };
  if (v.version === true) return { command: 'version' };
  const [command, ...rest] = parsed.positionals;
  if (command === undefined) throw new UsageError('no command given: use `tslirp serve` (see --help)');
  if (command !== 'serve') throw new UsageError(`unknown command '${command}': the command is 'serve'`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]!}'`);

  const listeners: ListenerSpec[] = [
    ...(v.stream ?? []).map(parseStreamSpec),
    ...(v.dgram ?? []).map(parseDgramSpec),
    ...(v.ws ?? []).map(parseWsSpec),
  ];
  const useDefaults = listeners.length === 0;
  const wsAllowOrigins = (v['ws-allow-origin'] ?? []).map(parseAllowOrigin);
  const logLevel = v['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new UsageError(`--log-level: '${logLevel}' must be one of ${LOG_LEVELS.join(', ')}`, 'log-level');
  if (v.pcap === '') throw new UsageError(`--pcap needs a value (${VALUE_HINTS['pcap']!})`, 'pcap');
  let network: StackConfig;
  try {
    network = resolveStackConfig({
      ...(v.net !== undefined && { net: v.net }),
      ...(v.host !== undefined && { host: v.host }),
      ...(v.dns !== undefined && { dns: v.dns }),
      ...(v.dhcpstart !== undefined && { dhcpstart: v.dhcpstart }),
      ...(v.domainname !== undefined && { domainname: v.domainname }),
      ...(v.dnssearch !== undefined && { dnssearch: v.dnssearch }),
      ...(v.hostname !== undefined && { hostname: v.hostname }),
      ...(v.mtu !== undefined && { mtu: v.mtu }),
      ...(v.route !== undefined && { route: v.route }),
      ...(v['tftp-server-name'] !== undefined && { tftpservername: v['tftp-server-name'] }),
      ...(v.bootfile !== undefined && { bootfile: v.bootfile }),
      ...(v['lease-time'] !== undefined && { leasetime: v['lease-time'] }),
      restrict: v.restrict === true,
      disableHostLoopback: v['disable-host-loopback'] === true,
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      const option = CONFIG_OPTION_NAMES[e.option] ?? e.option;
      throw new UsageError(`--${option}: ${e.message.replace(/^--[^:]+: /, '')}`, option);
    }
    throw e;
  }
  const upstreams = v['dns-upstream']?.map((text) => {
    const e = parseDnsUpstream(text);
    if (typeof e === 'string') throw new UsageError(`--dns-upstream: ${e}`, 'dns-upstream');
    return e;
  });
  const records = (v['dns-record'] ?? []).map((text) => {
    const r = parseDnsRecordOption(text);
    if (typeof r === 'string') throw new UsageError(`--dns-record: ${r}`, 'dns-record');
    return r;
  });
  let forwards: ForwardRule[];
  try {
    forwards = parseForwards(v.hostfwd ?? []);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message, 'hostfwd');
    throw e;
  }
  if (v['resolv-conf'] === '') throw new UsageError('--resolv-conf: needs a file path', 'resolv-conf');
  if (upstreams !== undefined && v['resolv-conf'] !== undefined)
    throw new UsageError('--resolv-conf: cannot be combined with --dns-upstream (which replaces it)', 'resolv-conf');
  return {
    command: 'serve',
    listeners: (useDefaults ? defaultListeners(runtimeDir(env)) : listeners).map((l) => (l.kind === 'ws' && wsAllowOrigins.length > 0 ? { ...l, allowOrigins: wsAllowOrigins } : l)),
    defaultListeners: useDefaults,
    network,
    dns: { upstreams, resolvConf: v['resolv-conf'] ?? DEFAULT_RESOLV_CONF, records },
    forwards,
    wsAllowOrigins,
    pcap: v.pcap,
    logLevel: logLevel as LogLevel,
  };
}

/** One `--ws-allow-origin` value: '*' or an origin, returned in its serialized form. */
function parseAllowOrigin(text: string): string {
  if (text === '*') return text;
  if (text.trim().toLowerCase() === 'null') throw new UsageError(`--ws-allow-origin: 'null' (pages from files, sandboxes, data: URLs) can only be allowed with '*'`, 'ws-allow-origin');
  const origin = normalizeOrigin(text.trim());
  if (origin === undefined) throw new UsageError(`--ws-allow-origin: '${text}' is not an origin: write scheme://host[:port], e.g. http://localhost:8000, or '*'`, 'ws-allow-origin');
  return origin;
}
