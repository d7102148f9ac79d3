/**
 * Listener options as the user writes them (`--stream unix:PATH`, `--stream tcp:HOST:PORT`,
 * `--dgram udp:HOST:PORT`, `--ws HOST:PORT`, each optionally followed by `,network=NAME`
 * and `,public`), which listeners are public,
 * the default listeners, and the settings a QEMU or v86 user needs to reach each bound
 * listener.
 */
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { formatHostPort, type ListenerAddress } from '../link/link.js';
import { ConfigError } from '../util/config-error.js';
import { networkNameProblem } from '../net/network-name.js';
import { ipTextVersion, parseIpv4Text, parseIpv6Text } from '../util/ip-text.js';

/** Where to listen. */
export type ListenerSpec = (
  | {
      readonly kind: 'ws';
      readonly host: string;
      readonly port: number;
      /** Browser origins allowed on every path (`--ws-allow-origin`, normalized), or '*'; none when absent. */
      readonly allowOrigins?: readonly string[];
    }
  | { readonly kind: 'stream'; readonly transport: 'unix'; readonly path: string }
  | { readonly kind: 'stream'; readonly transport: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'dgram'; readonly host: string; readonly port: number }
) & {
  /** The network its sessions join (`,network=NAME`) unless a WebSocket URL names another. */
  readonly network?: string | undefined;
  /** `,public`: treat it as facing the internet even on loopback (see `isPublicSpec`). */
  readonly public?: boolean | undefined;
};

/** The default WebSocket listener: loopback only. */
export const DEFAULT_WS = { host: '127.0.0.1', port: 8080 } as const;

/** `HOST:PORT` or `[V6]:PORT`; HOST is an IP literal or `localhost` (→ 127.0.0.1). */
export function parseHostPort(option: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (m === null) throw new ConfigError(option, `'${text}' must look like HOST:PORT (an IPv6 host in brackets)`);
  const rawHost = (m[1] ?? m[2])!;
  const host = rawHost === 'localhost' ? '127.0.0.1' : rawHost;
  const version = ipTextVersion(host, { zone: true });
  if (version === 0) throw new ConfigError(option, `'${rawHost}' is not an IP address`);
  if (m[1] !== undefined && version !== 6) throw new ConfigError(option, `'[${rawHost}]': brackets are for IPv6 addresses`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(option, `port ${port} is above 65535`);
  return { host, port };
}

/**
 * Splits the trailing suffixes off a listener value: `,network=NAME` and `,public`, in either
 * order, each at most once. Only those exact suffixes are taken, so a unix socket path may
 * hold commas; the name is checked like every network name.
 */
function splitSuffixes(option: string, text: string): { address: string; network?: string; public?: true } {
  let address = text;
  let network: string | undefined;
  let isPublic = false;
  for (;;) {
    const n = /^(.*),network=([^,]*)$/s.exec(address);
    if (n !== null && network === undefined) {
      const problem = networkNameProblem(n[2]!);
      if (problem !== undefined) throw new ConfigError(option, `'${text}': ${problem}`);
      [address, network] = [n[1]!, n[2]!];
      continue;
    }
    if (address.endsWith(',public') && !isPublic) {
      [address, isPublic] = [address.slice(0, -',public'.length), true];
      continue;
    }
    break;
  }
  return { address, ...(network !== undefined && { network }), ...(isPublic && { public: true as const }) };
}

/**
 * Whether a listener is public (the hostile-world rules apply to its sessions: tokens on
 * WebSockets, the public egress default): bound to anything but a loopback address (the
 * wildcard 0.0.0.0 or :: included), or marked `,public` (a loopback listener behind a
 * reverse proxy that faces the internet).
 */
export function isPublicSpec(spec: ListenerSpec): boolean {
  if (spec.public === true) return true;
  if (spec.kind === 'stream' && spec.transport === 'unix') return false;
  return !isLoopbackHost(spec.host);
}

/** 127.0.0.0/8, ::1 and the IPv4-mapped loopback ::ffff:127.x.y.z. */
export function isLoopbackHost(host: string): boolean {
  const v4 = parseIpv4Text(host);
  if (typeof v4 === 'number') return v4 >>> 24 === 127;
  const b = parseIpv6Text(host.replace(/%.*$/, ''));
  if (typeof b === 'string') return false;
  const zeros = (from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0);
  if (zeros(0, 15) && b[15] === 1) return true; // ::1
  return zeros(0, 10) && b[10] === 0xff && b[11] === 0xff && b[12] === 127; // ::ffff:127.x.y.z
}

/** `--stream unix:PATH` or `--stream tcp:HOST:PORT`, then `,network=NAME` and `,public` optionally. */
export function parseStreamSpec(text: string): ListenerSpec {
  const { address, ...named } = splitSuffixes('stream', text);
  if (address.startsWith('unix:')) {
    const path = address.slice('unix:'.length);
    if (path === '') throw new ConfigError('stream', `'${text}' names no socket path`);
    return { kind: 'stream', transport: 'unix', path: resolve(path), ...named };
  }
  if (address.startsWith('tcp:')) return { kind: 'stream', transport: 'tcp', ...parseHostPort('stream', address.slice('tcp:'.length)), ...named };
  throw new ConfigError('stream', `'${text}' must be unix:PATH or tcp:HOST:PORT, then ,network=NAME and ,public optionally`);
}

/** `--dgram udp:HOST:PORT`, then `,network=NAME` and `,public` optionally. */
export function parseDgramSpec(text: string): ListenerSpec {
  const { address, ...named } = splitSuffixes('dgram', text);
  if (!address.startsWith('udp:')) throw new ConfigError('dgram', `'${text}' must be udp:HOST:PORT, then ,network=NAME and ,public optionally`);
  return { kind: 'dgram', ...parseHostPort('dgram', address.slice('udp:'.length)), ...named };
}

/** `--ws HOST:PORT`, then `,network=NAME` and `,public` optionally. */
export function parseWsSpec(text: string): ListenerSpec {
  const { address, ...named } = splitSuffixes('ws', text);
  return { kind: 'ws', ...parseHostPort('ws', address), ...named };
}

/**
 * The runtime directory for the default unix socket: $XDG_RUNTIME_DIR/tslirp, else
 * /run/tslirp when running as root, else <tmpdir>/tslirp-<uid>.
 */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? -1, tmpdir: string = os.tmpdir()): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && xdg !== '') return join(xdg, 'tslirp');
  if (uid === 0) return '/run/tslirp';
  return join(tmpdir, `tslirp-${uid}`);
}

/** A listener spec as the user wrote it, for messages: `ws 127.0.0.1:8080`, `stream unix:/run/tslirp/tslirp.sock,network=lab`. */
export function describeSpec(spec: ListenerSpec): string {
  const suffix = (spec.network === undefined ? '' : `,network=${spec.network}`) + (spec.public === true ? ',public' : '');
  switch (spec.kind) {
    case 'ws':
      return `ws ${formatHostPort(spec.host, spec.port)}${suffix}`;
    case 'stream':
      return (spec.transport === 'unix' ? `stream unix:${spec.path}` : `stream tcp:${formatHostPort(spec.host, spec.port)}`) + suffix;
    case 'dgram':
      return `dgram udp:${formatHostPort(spec.host, spec.port)}${suffix}`;
  }
}

/** The listeners used when no listener option is given. */
export function defaultListeners(dir: string = runtimeDir()): ListenerSpec[] {
  return [
    { kind: 'ws', ...DEFAULT_WS },
    { kind: 'stream', transport: 'unix', path: join(dir, 'tslirp.sock') },
  ];
}

/** A URL/option-friendly host: brackets around IPv6; the wildcard becomes loopback (a client cannot connect to 0.0.0.0). */
const connectHost = (host: string): string => (host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host);

/** A value inside a QEMU option list: a comma is written twice (QEMU's QemuOpts escaping). */
const qemuValue = (v: string): string => v.replace(/,/g, ',,');

/** One shell word, quoted only when it needs to be (POSIX single quotes). */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The QEMU -netdev argument reaching a bound stream or dgram listener (without the leading `-netdev`). */
function qemuNetdev(a: Exclude<ListenerAddress, { kind: 'ws' }>): string {
  if (a.kind === 'stream') {
    if (a.transport === 'unix') return `stream,id=n0,server=off,addr.type=unix,addr.path=${qemuValue(a.path)}`;
    return `stream,id=n0,server=off,addr.type=inet,addr.host=${connectHost(a.host)},addr.port=${a.port}`;
  }
  const h = connectHost(a.host);
  // local.port=0: QEMU binds an ephemeral port and the daemon answers whatever port it sends from.
  return `dgram,id=n0,remote.type=inet,remote.host=${h},remote.port=${a.port},local.type=inet,local.host=${net.isIPv6(h) ? '::1' : '127.0.0.1'},local.port=0`;
}

/**
 * How a guest reaches a bound listener: the QEMU options (`-netdev … -device e1000,netdev=n0`,
 * for the "listening" log line) or the v86 `net_device` setting.
 */
export function usageFor(a: ListenerAddress): { qemu?: string; v86?: string } {
  if (a.kind === 'ws') return { v86: `net_device: { type: 'virtio', relay_url: '${a.url.startsWith('wss:') ? 'wss' : 'ws'}://${formatHostPort(connectHost(a.host), a.port)}/' }` };
  return { qemu: `-netdev ${qemuNetdev(a)} -device e1000,netdev=n0` };
}

/** What a user adds to the attach commands: the guest itself. */
export const ATTACH_NOTE = "add your guest's disk or kernel (QEMU: -drive file=DISK, or -kernel/-initrd/-append; v86: wasm_path, bios and a disk)";

/**
 * A line that runs as pasted (a shell command for QEMU, a JavaScript statement for v86) and
 * attaches a guest to a bound listener, once the guest's disk or kernel is added.
 */
export function attachCommand(a: ListenerAddress): string {
  const u = usageFor(a);
  if (a.kind === 'ws') return `new V86({ ${u.v86 ?? ''} });`;
  return ['qemu-system-x86_64', '-m', '512', '-netdev', qemuNetdev(a), '-device', 'e1000,netdev=n0'].map(shellQuote).join(' ');
}

/** The printable form of a bound listener for the "listening" log line. */
export function describeListener(a: ListenerAddress): Record<string, string | number> {
  switch (a.kind) {
    case 'ws':
      return { kind: 'ws', url: a.url, host: a.host, port: a.port, ...usageFor(a) };
    case 'stream':
      return a.transport === 'unix'
        ? { kind: 'stream', transport: 'unix', path: a.path, ...usageFor(a) }
        : { kind: 'stream', transport: 'tcp', host: a.host, port: a.port, ...usageFor(a) };
    case 'dgram':
      return { kind: 'dgram', host: a.host, port: a.port, ...usageFor(a) };
  }
}
