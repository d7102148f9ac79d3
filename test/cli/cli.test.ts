import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DAEMON_NODE_FLAGS, missingNodeFlags } from '../../src/cli/node-flags.js';
import { HELP, OPTION_NAMES, parseCommandLine, UsageError } from '../../src/cli/options.js';
import { ConfigError } from '../../src/util/config-error.js';
import { DHCP_DISCOVER, dhcpReplyType } from '../daemon/dhcp-frames.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
/** Runs the CLI from source through tsx, as `node dist/cli/main.js` would run the build. */
const NODE_ARGS = ['--import', 'tsx', MAIN];

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...NODE_ARGS, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('parseCommandLine', () => {
  it('serves the defaults without listener options', () => {
    const c = parseCommandLine(['serve'], { XDG_RUNTIME_DIR: '/run/user/1000' });
    expect(c).toMatchObject({
      command: 'serve',
      defaultListeners: true,
      listeners: [
        { kind: 'ws', host: '127.0.0.1', port: 8080 },
        { kind: 'stream', transport: 'unix', path: '/run/user/1000/tslirp/tslirp.sock' },
      ],
      logLevel: 'info',
      pcap: undefined,
    });
  });

  it('replaces the defaults with any listener option; each is repeatable', () => {
    const c = parseCommandLine(['serve', '--ws', '127.0.0.1:0', '--ws', '[::1]:9000', '--stream', 'tcp:127.0.0.1:5555', '--stream', 'unix:/tmp/a.sock', '--dgram', 'udp:127.0.0.1:5556']);
    if (c.command !== 'serve') throw new Error('not serve');
    expect(c.defaultListeners).toBe(false);
    expect(c.listeners).toEqual([
      { kind: 'stream', transport: 'tcp', host: '127.0.0.1', port: 5555 },
      { kind: 'stream', transport: 'unix', path: '/tmp/a.sock' },
      { kind: 'dgram', host: '127.0.0.1', port: 5556 },
      { kind: 'ws', host: '127.0.0.1', port: 0 },
      { kind: 'ws', host: '::1', port: 9000 },
    ]);
  });

  it('passes network options to resolveStackConfig under QEMU names', () => {
    const c = parseCommandLine([
      'serve', '--net', '192.168.7.0/24', '--host', '192.168.7.1', '--dns', '192.168.7.53', '--dhcpstart', '192.168.7.100',
      '--domainname', 'example.test', '--dnssearch', 'a.test,b.test', '--dnssearch', 'c.test', '--hostname', 'vm',
      '--mtu', '9000', '--route', '10.9.0.0/16=192.168.7.1', '--tftp-server-name', 'tftp.test', '--bootfile', 'pxelinux.0',
      '--lease-time', '3600', '--pcap', '/tmp/caps', '--log-level', 'debug',
    ]);
    if (c.command !== 'serve') throw new Error('not serve');
    expect(c.network.config).toMatchObject({
      prefixLen: 24, mtu: 9000, leaseTimeS: 3600, domainName: 'example.test', dnsSearch: ['a.test', 'b.test', 'c.test'],
      hostname: 'vm', tftpServerName: 'tftp.test', bootFile: 'pxelinux.0', routes: [{ prefixLen: 16 }],
    });
    expect(c.pcap).toBe('/tmp/caps');
    expect(c.logLevel).toBe('debug');
  });

  it.each([
    [['serve', '--mtu', '70000'], 'mtu'],
    [['serve', '--lease-time', '5'], 'lease-time'],
    [['serve', '--ws', 'nowhere'], 'ws'],
    [['serve', '--ws', 'example.com:80'], 'ws'],
    [['serve', '--stream', 'tcp:127.0.0.1:99999'], 'stream'],
    [['serve', '--dgram', 'tcp:127.0.0.1:1'], 'dgram'],
    [['serve', '--log-level', 'loud'], 'log-level'],
    [['serve', '--frobnicate'], 'frobnicate'],
    [['serve', '--dhcpstart', '10.0.3.1'], 'dhcpstart'],
  ])('refuses %j naming --%s', (argv, option) => {
    let err: unknown;
    try {
      parseCommandLine(argv);
    } catch (e) {
      err = e;
    }
    expect(err instanceof UsageError || err instanceof ConfigError).toBe(true);
    expect((err as UsageError).option).toBe(option);
    expect((err as Error).message).toContain(`--${option}`);
  });

  it.each([
    // Missing values: at the end, or followed by another option.
    [['serve', '--pcap'], 'pcap', '--pcap needs a value (a directory or a .pcapng file)'],
    [['serve', '--pcap', '--restrict'], 'pcap', "--pcap needs a value (a directory or a .pcapng file), not the option '--restrict'; write --pcap=--restrict if you mean it"],
    [['serve', '--ws'], 'ws', '--ws needs a value (HOST:PORT)'],
    [['serve', '--pcap='], 'pcap', '--pcap needs a value (a directory or a .pcapng file)'],
    [['serve', '--dns-upstream'], 'dns-upstream', '--dns-upstream needs a value (HOST[:PORT])'],
    // Unknown options, with a suggestion for a near miss.
    [['serve', '--pcapfile', 'x'], 'pcapfile', "unknown option '--pcapfile' (did you mean --pcap?)"],
    [['serve', '--hostfw', 'tcp::1-:2'], 'hostfw', "unknown option '--hostfw' (did you mean --hostfwd?)"],
    [['serve', '-x'], 'x', "unknown option '-x'"],
    // Booleans given values.
    [['serve', '--restrict=yes'], 'restrict', "--restrict takes no value (got 'yes')"],
    [['serve', '--restrict', 'yes'], 'restrict', "unexpected argument 'yes': --restrict takes no value"],
    [['serve', '--help=1'], 'help', "--help takes no value (got '1')"],
    // Unexpected positionals.
    [['serve', 'extra'], undefined, "unexpected argument 'extra': 'tslirp serve' takes only options"],
    [['serve', '--', '--pcap'], undefined, "unexpected argument '--pcap': 'tslirp serve' takes only options"],
    [['start'], undefined, "unknown command 'start': the command is 'serve'"],
  ])('refuses %j in its own words', (argv, option, message) => {
    let err: unknown;
    try {
      parseCommandLine(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toBe(message);
    expect((err as UsageError).option).toBe(option);
    // None of parseArgs' own phrasing leaks through.
    expect((err as Error).message).not.toMatch(/Option '|argument missing|ambiguous|To specify a positional/);
  });

  it('documents every option in --help', () => {
    for (const name of OPTION_NAMES) expect(HELP, name).toContain(`--${name}`);
  });
});

// Each test starts node processes (2–3 s apiece at most on a loaded 2-core machine, 7.4 s seen
// for the slowest test with the suite running beside other work): 60 s keeps a 3× margin.
describe('tslirp (process)', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tslirp-cli-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('--help prints the help and exits 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(HELP);
  });

  it('--version prints the package version', () => {
    const r = run(['--version']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('exits 2 naming a bad option', () => {
    const r = run(['serve', '--mtu', '12']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--mtu');
    const u = run(['serve', '--no-such-option']);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain("unknown option '--no-such-option'");
    expect(run([]).status).toBe(2);
  });

  it('prints the listening line, serves, and on SIGTERM exits 0 and removes its socket', async () => {
    const sock = join(dir, 'rt', 'cli.sock');
    const child = spawn(process.execPath, [...NODE_ARGS, 'serve', '--ws', '127.0.0.1:0', '--stream', `unix:${sock}`, '--dgram', 'udp:127.0.0.1:0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + 15_000;
    let listening: Record<string, unknown> | undefined;
    while (listening === undefined) {
      if (Date.now() > deadline) throw new Error(`no listening line:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 20));
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec['msg'] === 'listening') listening = rec;
      }
    }
    // Every stdout line is JSON.
    for (const line of out.split('\n').filter((l) => l !== '')) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    const listeners = listening['listeners'] as Record<string, unknown>[];
    expect(listeners.map((l) => l['kind'])).toEqual(['stream', 'dgram', 'ws']);
    expect(listeners[0]).toMatchObject({ kind: 'stream', transport: 'unix', path: sock });
    expect(listeners[0]!['qemu']).toBe(`-netdev stream,id=n0,server=off,addr.type=unix,addr.path=${sock} -device e1000,netdev=n0`);
    expect(listeners[1]).toMatchObject({ kind: 'dgram', host: '127.0.0.1' });
    const url = listeners[2]!['url'] as string;
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect(listeners[2]!['v86']).toBe(`net_device: { type: 'virtio', relay_url: '${url}' }`);
    // The human-readable instructions follow on stderr.
    while (!err.includes(`addr.path=${sock}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(err).toContain(`addr.path=${sock}`);
    expect(err).toContain(`relay_url: '${url}'`);
    expect(existsSync(sock)).toBe(true);

    // It serves: a DHCP DISCOVER over the WebSocket gets an OFFER.
    const ws = new WebSocket(url);
    const got: Uint8Array[] = [];
    ws.on('message', (m: Buffer) => got.push(m));
    await new Promise((r) => ws.once('open', r));
    ws.send(DHCP_DISCOVER);
    const until = Date.now() + 5000;
    while (!got.some((f) => dhcpReplyType(f) === 2) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(got.some((f) => dhcpReplyType(f) === 2)).toBe(true);
    const wsClosed = new Promise<number>((r) => ws.once('close', (code) => r(code)));

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await wsClosed).toBe(1001);
    expect(existsSync(sock)).toBe(false);
    const records = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r['msg'])).toEqual(expect.arrayContaining(['listening', 'session started', 'session ended', 'shutting down', 'daemon stopped']));
  });

  // The tslirp executable re-executes node with them: test/cli/bin.test.ts.
  it('carries its node flags in npm start; warns when started without them', async () => {
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start']!;
    for (const f of DAEMON_NODE_FLAGS) expect(start.split(' ')).toContain(f);
    expect(missingNodeFlags(['--enable-source-maps', ...DAEMON_NODE_FLAGS.map((f) => f.replace(/-/g, '_'))])).toEqual([]);
    /** Serves on an ephemeral WebSocket port until the 'listening' line; returns the log records. */
    const serve = async (nodeArgs: string[]): Promise<Record<string, unknown>[]> => {
      const child = spawn(process.execPath, [...nodeArgs, ...NODE_ARGS, 'serve', '--ws', '127.0.0.1:0', '--log-level', 'info'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
      children.push(child);
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      const deadline = Date.now() + 15_000;
      while (!out.includes('"msg":"listening"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100)); // the warning follows the listening line
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const warned = (recs: Record<string, unknown>[]) => recs.some((r) => r['level'] === 40 && String(r['msg']).includes('without these flags'));
    expect(warned(await serve([]))).toBe(true);
    const withFlags = await serve([...DAEMON_NODE_FLAGS]);
    expect(withFlags.some((r) => r['msg'] === 'listening')).toBe(true);
    expect(warned(withFlags)).toBe(false);
  });

  /** Runs the CLI without blocking this process's event loop (which may hold a port the CLI needs). */
  const runAsync = (args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((res) => {
      const child = spawn(process.execPath, [...NODE_ARGS, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('close', (status) => {
        clearTimeout(timer);
        res({ status, stdout, stderr });
      });
    });

  /** A start-up failure: exit 1, exactly one line on stderr, no stack trace and no "daemon stopped" anywhere. */
  const expectStartFailure = (r: { status: number | null; stdout: string; stderr: string }, line: RegExp): void => {
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l !== '' && !l.includes('without these flags'))).toHaveLength(1);
    expect(r.stderr).toMatch(line);
    expect(r.stdout + r.stderr).not.toMatch(/ at |"stack"|daemon stopped/);
  };

  it('exits 1 with one line naming the listener when a port is taken', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const r = await runAsync(['serve', '--stream', `unix:${join(dir, 'port.sock')}`, '--ws', `127.0.0.1:${port}`]);
      expectStartFailure(r, new RegExp(`^tslirp: cannot listen on ws 127\\.0\\.0\\.1:${port}: address already in use \\(EADDRINUSE\\)\n`, 'm'));
      // The listener bound before the failure was closed again: its socket file is gone.
      expect(existsSync(join(dir, 'port.sock'))).toBe(false);
      const fwd = await runAsync(['serve', '--ws', '127.0.0.1:0', '--hostfwd', `tcp:127.0.0.1:${port}-:22`]);
      expectStartFailure(fwd, new RegExp(`^tslirp: cannot listen for --hostfwd tcp:127\\.0\\.0\\.1:${port}-:22: address already in use \\(EADDRINUSE\\)$`, 'm'));
    } finally {
      server.close();
    }
  }, 60_000); // two or three CLI start-ups through tsx, ~1.2 s each on an idle machine

  it('exits 1 with one line when the socket directory or a capture path cannot be created', async () => {
    // A regular file where a directory should be: no directory can be made below it.
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const sock = join(file, 'sub', 'x.sock');
    expectStartFailure(await runAsync(['serve', '--stream', `unix:${sock}`]), new RegExp(`^tslirp: cannot listen on stream unix:${sock}: not a directory \\(ENOTDIR\\)$`, 'm'));
    const ws = ['--ws', '127.0.0.1:0'];
    expectStartFailure(
      await runAsync(['serve', ...ws, '--pcap', join(file, 'x.pcapng')]),
      new RegExp(`^tslirp: cannot create the capture file ${file}/x\\.pcapng: not a directory \\(ENOTDIR\\)$`, 'm'),
    );
    expectStartFailure(
      await runAsync(['serve', ...ws, '--pcap', `${file}/caps/`]),
      new RegExp(`^tslirp: cannot use the capture directory ${file}/caps/: not a directory \\(ENOTDIR\\)$`, 'm'),
    );
  }, 60_000); // two or three CLI start-ups through tsx, ~1.2 s each on an idle machine

  it('exits 2 for bad usage and prints the exit codes in --help', () => {
    const r = run(['serve', '--pcap']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("tslirp: --pcap needs a value (a directory or a .pcapng file)\nTry 'tslirp --help'.\n");
    expect(HELP).toMatch(/Exit status: 0 after a clean shutdown; 2 for bad usage or configuration[^]*1 when the environment fails/);
  });
});
