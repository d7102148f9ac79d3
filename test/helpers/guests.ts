/**
 * Tooling for the real-peer integration tests: requirement checks that skip loudly outside CI,
 * bounded child processes, network namespaces with a TAP bridged to the daemon, and the
 * markers the test guests print (scripts/guest/init.sh).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { daemonMissing, REPO_ROOT } from './daemon.js';

/** True inside CI, where missing requirements fail instead of skipping. */
export const IN_CI = process.env['CI'] === 'true';

/** Where the guest builders put their output (gitignored). */
export const CACHE_DIR = join(REPO_ROOT, '.cache');
export const QEMU_GUEST_DIR = join(CACHE_DIR, 'qemu-guest');
export const V86_GUEST_DIR = join(CACHE_DIR, 'v86-guest');
/** Kernel buffers of a dgram guest's socat bridge socket, each way: the daemon's dgram listener's (DGRAM_SOCKET_BUFFER_BYTES). */
export const DGRAM_BRIDGE_BUFFER = 4 << 20;

/** A requirement of an integration test file. */
export type Requirement =
  | { readonly kind: 'root' }
  | { readonly kind: 'command'; readonly name: string }
  | { readonly kind: 'file'; readonly path: string; readonly hint: string }
  | { readonly kind: 'daemon' };

export const root: Requirement = { kind: 'root' };
export const daemon: Requirement = { kind: 'daemon' };
export const command = (name: string): Requirement => ({ kind: 'command', name });
export const file = (path: string, hint: string): Requirement => ({ kind: 'file', path, hint });

/** The QEMU test guest (Debian's kernel, a busybox initramfs) that scripts/build-qemu-guest.sh builds. */
export const QEMU_KERNEL = join(QEMU_GUEST_DIR, 'bzImage');
export const QEMU_INITRD = join(QEMU_GUEST_DIR, 'initrd.gz');
/** What booting the QEMU test guest needs: QEMU and both guest files. */
export const qemuGuestRequirements: readonly Requirement[] = [
  command('qemu-system-x86_64'),
  file(QEMU_KERNEL, 'build it with scripts/build-qemu-guest.sh'),
  file(QEMU_INITRD, 'build it with scripts/build-qemu-guest.sh'),
];

/**
 * QEMU's options for a test guest on the serial console: TCG, `memMb` of memory, no default
 * devices, the console on stdio, and `-no-reboot`, so that the guest's `poweroff -f` ends QEMU.
 */
export const qemuConsoleArgs = (memMb = 256): string[] => ['-accel', 'tcg', '-m', String(memMb), '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio'];

/** SeaBIOS and its VGA BIOS, which every v86 guest boots with (Debian's seabios). */
export const SEABIOS = '/usr/share/seabios/bios.bin';
export const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
/**
 * What booting a v86 guest under Node needs: SeaBIOS, the guest's kernel and initrd in `dir`
 * (which `script` builds) and v86's wasm.
 */
export function v86GuestRequirements(dir = V86_GUEST_DIR, script = 'scripts/build-v86-guest.sh'): Requirement[] {
  return [
    file(SEABIOS, 'apt-get install seabios'),
    file(VGABIOS, 'apt-get install seabios'),
    file(join(dir, 'bzImage'), `build it with ${script}`),
    file(join(dir, 'initrd.gz'), `build it with ${script}`),
    file(join(REPO_ROOT, 'node_modules', 'v86', 'build', 'v86.wasm'), 'npm ci'),
  ];
}

/** Finds an executable on PATH (plus the sbin directories, where root tools live). */
export function which(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Human descriptions of the requirements that are not met. */
export function missingRequirements(reqs: readonly Requirement[]): string[] {
  const missing: string[] = [];
  for (const r of reqs) {
    switch (r.kind) {
      case 'root':
        if (process.getuid?.() !== 0) missing.push('root (uid 0)');
        break;
      case 'command':
        if (which(r.name) === undefined) missing.push(`the command ${r.name}`);
        break;
      case 'file':
        if (!existsSync(r.path)) missing.push(`${r.path} (${r.hint})`);
        break;
      case 'daemon': {
        const m = daemonMissing();
        if (m !== undefined) missing.push(m);
        break;
      }
    }
  }
  return missing;
}

/**
 * Decides whether an integration test file runs. Outside CI a file with missing requirements
 * skips with a loud warning naming them; inside CI it runs (its requirement test then fails).
 */
export function shouldRun(what: string, missing: readonly string[]): boolean {
  if (missing.length === 0) return true;
  if (IN_CI) return true;
  console.warn(
    `\n!!!!!!!! SKIPPING ${what}: missing ${missing.join('; ')}.\n` +
      '!!!!!!!! These integration tests run in CI (CI=true) and fail there when something is missing.\n',
  );
  return false;
}

/** Result of a bounded command. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs a command to completion, killing it after `timeoutMs` (default 30 s). */
export function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      stderr += String(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs a command synchronously (short setup commands); throws with its output on failure. */
export function must(cmd: string, args: readonly string[], timeoutMs = 15_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}, ${r.signal ?? 'no signal'}): ${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** A long-running child whose output is kept and can be waited on. */
export class Proc {
  readonly child: ChildProcess;
  readonly name: string;
  output = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(name: string, cmd: string, args: readonly string[], stdio: ('ignore' | 'pipe' | 'inherit' | number)[] = ['ignore', 'pipe', 'pipe']) {
    this.name = name;
    this.child = spawn(cmd, args, { stdio });
    const onData = (d: Buffer): void => {
      this.output += d.toString('latin1');
      if (this.output.length > 4_000_000) this.output = this.output.slice(-2_000_000);
      for (const w of this.waiters) w();
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.child.on('error', (err) => {
      this.output += `\n[spawn error: ${String(err)}]\n`;
    });
    this.exitPromise = new Promise((res) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const w of this.waiters) w();
        res();
      });
    });
  }

  /** Resolves when `pattern` appears in the output; rejects on exit or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((res, rej) => {
      const check = (): boolean => {
        const m = pattern.exec(this.output);
        if (m) {
          done();
          res(m);
          return true;
        }
        if (this.exit !== undefined) {
          done();
          rej(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${String(pattern)}:\n${this.tail()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`${this.name}: no ${String(pattern)} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const waiter = (): void => {
        check();
      };
      if (!check()) this.waiters.push(waiter);
    });
  }

  /** Resolves with the exit once the process ended, killing it after `timeoutMs`. */
  async wait(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exitPromise;
    clearTimeout(timer);
    return this.exit ?? { code: null, signal: null };
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.exit !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }

  /** The last few KiB of output. */
  tail(n = 6000): string {
    return this.output.slice(-n);
  }
}

/** A free loopback UDP port (bound then released; good enough for one test's bridge). */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', res));
  const port = s.address().port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

/** A fresh temporary directory. */
export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

/** A unique short name (Linux interface names are at most 15 bytes). */
export const uniqueName = (prefix: string): string => `${prefix}${randomBytes(4).toString('hex')}`.slice(0, 15);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 50 ms until true or `timeoutMs` passed; returns the last result. */
export async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** True when a network interface with this name exists in the current (host) namespace. */
export const linkExists = (name: string, netns?: string): boolean =>
  spawnSync('ip', [...(netns === undefined ? [] : ['-n', netns]), 'link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;

/**
 * True once the socat of a bridge process (`pid` itself, or its child for the ws bridge) holds
 * a UDP socket. socat opens its TUN address first and its UDP address after it, and between
 * the two it reads and writes the new TAP's flags by name (SIOCGIFFLAGS, SIOCSIFFLAGS, the
 * latter under the RTNL lock) from a socket in the namespace it runs in: a TAP moved into the
 * guest's namespace before then makes that ioctl fail with ENODEV, socat exits, and the TAP,
 * whose only fd socat held, is deleted under the guest, whenever socat next runs (seconds
 * later on a loaded machine). The TAP's appearance alone is therefore no sign that it may move.
 */
function socatPastTun(pid: number): boolean {
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  const socats = [pid, ...read(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter((c) => c !== '').map(Number)]
    .filter((p) => read(`/proc/${p}/comm`).trim() === 'socat');
  return socats.some((p) => {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      return false;
    }
    const sockets = new Set<string>();
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m !== null) sockets.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
    // /proc/PID/net is the namespace of PID; its inode column is the 10th.
    return read(`/proc/${p}/net/udp`).split('\n').slice(1).some((l) => sockets.has(l.trim().split(/\s+/)[9] ?? ''));
  });
}

/** The WebSocket relay client that bridges a TAP (NetnsGuest's 'ws' bridge). */
export const WS_TAP_BRIDGE = join(REPO_ROOT, 'test', 'helpers', 'ws-tap-bridge.mjs');

/** A WebSocket listener refused the bridge's upgrade (`status`: e.g. `HTTP 401`). */
export class WsBridgeRefused extends Error {
  readonly status: string;
  constructor(status: string, output: string) {
    super(`the WebSocket bridge was refused: ${status}\n${output}`);
    this.status = status;
  }
}

/** How a namespace's TAP reaches the daemon. */
export type Bridge =
  | { readonly kind: 'dgram'; readonly host: string; readonly port: number }
  /** A WebSocket relay client (test/helpers/ws-tap-bridge.mjs) with these request headers. */
  | { readonly kind: 'ws'; readonly url: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly kind: 'stream-unix'; readonly path: string }
  | { readonly kind: 'stream-tcp'; readonly host: string; readonly port: number };

/**
 * A network namespace created for one test with a TAP interface `tap` bridged to the daemon.
 * The TAP is opened in the host namespace (by socat for dgram links, by a guest-less QEMU hub
 * for stream links, see the shared reference testing.md) and its netdev is then moved into
 * the namespace; the fd held in the host namespace keeps carrying its frames.
 *
 * Never take the TAP down while the guest is in use: a frame written to a TAP that was up and
 * is down fails with EIO, and socat (the dgram and ws bridges) exits on it, which deletes the
 * TAP (seen as "Cannot find device" in a loaded run; restart IPv6 autoconfiguration by toggling
 * net.ipv6.conf.TAP.disable_ipv6 instead).
 */
export class NetnsGuest {
  readonly ns: string;
  readonly tap: string;
  readonly bridge: Proc;
  private constructor(ns: string, tap: string, bridge: Proc) {
    this.ns = ns;
    this.tap = tap;
    this.bridge = bridge;
  }

  /**
   * Creates the namespace, the TAP and its bridge; the TAP is up in the namespace, no address.
   * `within`: the namespace the daemon runs in (dgram links only): the bridge runs there.
   */
  static async create(link: Bridge, within?: string): Promise<NetnsGuest> {
    const ns = uniqueName('tslns');
    const tap = uniqueName('tsltap');
    must('ip', ['netns', 'add', ns]);
    let bridge: Proc | undefined;
    const inside = within === undefined ? [] : ['ip', 'netns', 'exec', within];
    const exists = (): boolean => linkExists(tap, within);
    try {
      if (link.kind === 'ws') {
        bridge = new Proc(`ws-bridge ${tap}`, process.execPath, [WS_TAP_BRIDGE, tap, link.url, ...Object.entries(link.headers ?? {}).map(([k, v]) => `${k}=${v}`)]);
        const b = bridge;
        await Promise.race([b.waitFor(/ws-bridge: open/, 15_000), b.waitFor(/ws-bridge: (HTTP|error)/, 15_000)]).catch(() => undefined);
        const refused = /ws-bridge: (HTTP \d+|error .*)/.exec(b.output);
        if (refused !== null) throw new WsBridgeRefused(refused[1]!, b.tail());
      } else if (link.kind === 'dgram') {
        // The kernel picks the bridge's port as it binds (port 0): a port picked earlier and
        // closed again could be taken by another test's socket before socat binds it, and socat
        // would exit with the TAP gone under the guest.
        // -b 65536: socat's default 8 KiB buffer would cut frames of larger MTUs. The socket's
        // kernel buffers are the daemon's dgram listener's (4 MiB): the default 208 KiB holds
        // three 64 KiB frames, and a bridge that overflows costs the guests retransmissions
        // that are not tslirp's (benchmarks give every path the same buffers).
        bridge = new Proc(`socat ${tap}`, inside[0] ?? 'socat', [...inside.slice(1), ...(within === undefined ? [] : ['socat']),
          '-b', '65536',
          `TUN,tun-type=tap,iff-no-pi,tun-name=${tap}`,
          `UDP-DATAGRAM:${link.host}:${link.port},bind=127.0.0.1:0,rcvbuf=${DGRAM_BRIDGE_BUFFER},sndbuf=${DGRAM_BRIDGE_BUFFER}`,
        ]);
      } else {
        // QEMU creates the TAP (non-persistent: it goes away with QEMU's fd).
        const addr =
          link.kind === 'stream-unix'
            ? `addr.type=unix,addr.path=${link.path}`
            : `addr.type=inet,addr.host=${link.host},addr.port=${link.port}`;
        bridge = new Proc(`qemu-bridge ${tap}`, 'qemu-system-x86_64', [
          '-M', 'none', '-nodefaults', '-display', 'none',
          '-netdev', `tap,id=t0,ifname=${tap},script=no,downscript=no`,
          '-netdev', `stream,id=s0,server=off,${addr}`,
          '-netdev', 'hubport,id=h0,hubid=0,netdev=t0',
          '-netdev', 'hubport,id=h1,hubid=0,netdev=s0',
        ]);
      }
      const b = bridge;
      // The TAP appears once the bridge opened it; every bridge creates it itself. A socat
      // bridge's TAP moves only once socat is done with it (socatPastTun).
      const ready = link.kind === 'dgram' || link.kind === 'ws' ? (): boolean => exists() && socatPastTun(b.child.pid ?? 0) : exists;
      if (!(await until(() => b.exit !== undefined || ready(), 10_000)) || b.exit !== undefined) {
        throw new Error(`the bridge did not create ${tap}:\n${b.tail()}`);
      }
      if (link.kind !== 'dgram' && link.kind !== 'ws') await sleep(300); // QEMU connects its stream netdev right after the TAP
      if (b.exit !== undefined) throw new Error(`the bridge exited:\n${b.tail()}`);
      must('ip', [...(within === undefined ? [] : ['-n', within]), 'link', 'set', 'dev', tap, 'netns', ns]);
      const g = new NetnsGuest(ns, tap, b);
      const up = await g.sh('ip link set lo up && ip link set dev "$1" up', [tap]);
      if (up.code !== 0) throw new Error(`${tap} could not be set up in ${ns}: ${up.stderr}\nbridge ${JSON.stringify(b.exit)}: ${b.tail()}`);
      return g;
    } catch (err) {
      await bridge?.stop();
      spawnSync('ip', ['netns', 'del', ns]);
      if (linkExists(tap)) spawnSync('ip', ['link', 'del', 'dev', tap]);
      throw err;
    }
  }

  /** Runs a command inside the namespace (bounded). */
  exec(args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.ns, ...args], timeoutMs);
  }

  /** Runs a shell snippet inside the namespace; `$1`... are `params`. */
  sh(script: string, params: readonly string[] = [], timeoutMs = 30_000): Promise<RunResult> {
    return this.exec(['sh', '-c', script, 'sh', ...params], timeoutMs);
  }

  /** Spawns a long-running command inside the namespace. */
  spawn(name: string, args: readonly string[]): Proc {
    return new Proc(name, 'ip', ['netns', 'exec', this.ns, ...args]);
  }

  /**
   * Runs busybox udhcpc on the TAP with a script that records the lease to a file and
   * configures the address and default route; returns the recorded variables.
   */
  async dhcp(extraArgs: readonly string[] = []): Promise<{ result: RunResult; lease: Record<string, string> | undefined }> {
    const dir = tempDir('tslirp-udhcpc-');
    const leaseFile = join(dir, 'lease');
    const script = join(dir, 'script.sh');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        `LEASE=${leaseFile}`,
        'case "$1" in',
        '  deconfig) ip addr flush dev "$interface"; ip link set dev "$interface" up ;;',
        '  bound|renew)',
        '    : > "$LEASE.tmp"',
        '    for v in ip subnet mask router dns domain search mtu lease hostname serverid broadcast; do',
        '      eval "val=\\${$v}"; echo "$v=$val" >> "$LEASE.tmp"',
        '    done',
        '    mv "$LEASE.tmp" "$LEASE"',
        '    ip addr flush dev "$interface"',
        '    ip addr add "$ip/${mask:-24}" dev "$interface"',
        '    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"',
        '    for r in $router; do ip route add default via "$r" dev "$interface"; break; done',
        '    ;;',
        'esac',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    const result = await this.exec(
      ['busybox', 'udhcpc', '-i', this.tap, '-s', script, '-f', '-q', '-n', '-t', '5', '-T', '2', '-O', 'mtu', '-O', 'search', '-O', 'domain', '-O', 'hostname', ...extraArgs],
      30_000,
    );
    let lease: Record<string, string> | undefined;
    if (existsSync(leaseFile)) {
      lease = {};
      const text = spawnSync('cat', [leaseFile], { encoding: 'utf8' }).stdout;
      for (const line of text.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) lease[line.slice(0, eq)] = line.slice(eq + 1);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    return { result, lease };
  }

  /** Stops the bridge and deletes the namespace (and with it the TAP). Idempotent. */
  async destroy(): Promise<void> {
    await this.bridge.stop();
    spawnSync('ip', ['netns', 'del', this.ns]);
    if (linkExists(this.tap)) spawnSync('ip', ['link', 'del', 'dev', this.tap]);
  }
}

/** What a test guest (scripts/guest/init.sh) reported on its console. */
export interface GuestReport {
  readonly lease: Record<string, string> | undefined;
  readonly dhcpOk: boolean;
  readonly pingGatewayOk: boolean;
  readonly pingDnsOk: boolean;
  readonly pingReplies: number;
  readonly done: boolean;
}

/** Parses the TSLIRP-* markers of a guest console transcript. */
export function parseGuestConsole(text: string): GuestReport {
  const leaseLine = /TSLIRP-LEASE ([^\r\n]*)/.exec(text)?.[1];
  let lease: Record<string, string> | undefined;
  if (leaseLine !== undefined) {
    lease = {};
    for (const m of leaseLine.matchAll(/(\w+)=(\S*)/g)) lease[m[1]!] = m[2]!;
  }
  return {
    lease,
    dhcpOk: text.includes('TSLIRP-DHCP-OK'),
    pingGatewayOk: text.includes('TSLIRP-PING-GW-OK'),
    pingDnsOk: text.includes('TSLIRP-PING-DNS-OK'),
    pingReplies: [...text.matchAll(/\b64 bytes from 10\.0\.2\.2: seq=/g)].length, // the default 56-byte pings, not big_ping='s
    done: text.includes('TSLIRP-DONE'),
  };
}

/**
 * A copy of a built test guest (`dir` holding bzImage and initrd.gz, as scripts/build-*-guest.sh
 * write them) whose initrd carries the current scripts/guest/init.sh and, in
 * /etc/tslirp-guest.env, the words `env` (peer=, hold=... for a guest whose kernel command
 * line the test cannot set). The original initrd is kept and a second cpio archive appended to
 * it: Linux unpacks concatenated archives in order, later files replacing earlier ones, so a
 * guest built before an init.sh change still runs the new one. Returns the new directory
 * (remove it with rmSync when done).
 */
export function guestWithCurrentInit(dir: string, env: Readonly<Record<string, string>> = {}): string {
  const out = tempDir('tslirp-guest-');
  const overlay = join(out, 'overlay');
  must('mkdir', ['-p', join(overlay, 'etc')]);
  must('cp', [join(REPO_ROOT, 'scripts', 'guest', 'init.sh'), join(overlay, 'init')]);
  chmodSync(join(overlay, 'init'), 0o755);
  writeFileSync(join(overlay, 'etc', 'tslirp-guest.env'), Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join(''));
  must('sh', ['-c', 'cp "$1/bzImage" "$2/bzImage" && { cat "$1/initrd.gz"; (cd "$3" && find . | cpio -o -H newc --quiet | gzip -9); } > "$2/initrd.gz"', 'sh', dir, out, overlay]);
  rmSync(overlay, { recursive: true, force: true });
  return out;
}

/** The result of scripts/guest/init.sh's `peer=` ping: 'ok', 'fail', or undefined when it did not run. */
export function peerPingOf(text: string): 'ok' | 'fail' | undefined {
  if (text.includes('TSLIRP-PING-PEER-OK')) return 'ok';
  if (text.includes('TSLIRP-PING-PEER-FAIL')) return 'fail';
  return undefined;
}
