/**
 * The package as npm users get it. From an unbuilt copy of the sources (as a fresh clone is),
 * `npm pack` (its prepack builds) makes the tarball; a scratch consumer project installs it
 * with `npm install ./tslirp-*.tgz`, type-checks files that import the public API with
 * `strict` and `skipLibCheck: false` (module NodeNext), and runs them:
 * - consumer.ts: createNodeNetwork answers an ARP request and a DHCP DISCOVER built here,
 *   and touches Stack, NodeHost and the Host types, E1000, pcap and Daemon; `tslirp/replay`
 *   replays a capture of pcaps/; `tslirp/e1000` runs the model alone and `tslirp/v86` attaches
 *   it to a (never loading) emulator;
 * - the README's "Using it as a library" examples, verbatim, after a prelude that plays the
 *   guest NIC (`guestNic`) and a host (`myHost`).
 * The consumer reuses npm's cache (--prefer-offline): only what the cache lacks is fetched.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ARP_OP } from '../../src/arp/wire.js';
import { arpFrame, decode, GATEWAY_MAC, ip } from '../helpers/frames.js';
import { toHex } from '../helpers/hex.js';
import { command, missingRequirements, shouldRun, tempDir } from '../helpers/guests.js';
import { DHCP_DISCOVER, dhcpReplyType, yiaddr } from '../daemon/dhcp-frames.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const missing = missingRequirements([command('npm')]);
const work = tempDir('tslirp-package-');

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`), without the npm_* variables of an enclosing `npm test`. */
function exec(cmd: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<Ran> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(package_|lifecycle_|config_(prefix|global|local_prefix)$)/.test(k)));
  return new Promise((res) => {
    const child = spawn(cmd, args, { cwd, env: { ...env, NPM_CONFIG_FUND: 'false', NPM_CONFIG_AUDIT: 'false', NPM_CONFIG_UPDATE_NOTIFIER: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => (stderr += String(e)));
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

const ok = (r: Ran, what: string): Ran => {
  if (r.code !== 0) throw new Error(`${what} failed (status ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
};

/** The ```ts blocks of the README's "Using it as a library" section. */
function readmeLibraryExamples(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Using it as a library\n');
  expect(start).toBeGreaterThan(0);
  const next = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, next === -1 ? undefined : next);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const ARP_REQUEST_HEX = toHex(arpFrame({ targetIp: ip('10.0.2.2') }));
const DISCOVER_HEX = toHex(DHCP_DISCOVER);

/** Plays the guest for the README examples: asks for the gateway's MAC when attached, records what it gets. */
const README_PRELUDE = `
import type { Host } from 'tslirp';
const delivered: Uint8Array[] = [];
const guestNic = {
  deliver(frame: Uint8Array): void { delivered.push(frame); },
  onTransmit(send: (frame: Uint8Array) => void): void { send(Uint8Array.from(Buffer.from('${ARP_REQUEST_HEX}', 'hex'))); },
};
const myHost: Host = {
  udpOpen() {}, udpSend() {}, tcpConnect() {}, tcpWrite: () => 0, tcpEnd() {}, tcpPause() {}, tcpReset() {}, close() {},
  tcpListen() {}, tcpAdopt() {}, tcpRefuse() {}, udpBind() {}, udpSendTo() {},
};
void myHost;
process.on('exit', () => { console.log('DELIVERED ' + JSON.stringify(delivered.map((f) => Buffer.from(f).toString('hex')))); });
`;

const CONSUMER = `
import {
  createNodeNetwork, Stack, resolveStackConfig, ConfigError, NodeHost, ManualClock, seededRandom, formatIpv4Addr,
  E1000, arrayGuestMemory, E1000_REGISTERS, pcap, links, Daemon, duplexPair, parseGuestForwards,
  type Host, type HostEvents, type FlowId, type Endpoint, type NodeNetwork, type DaemonOptions, type StackConfig,
  type GuestForwardHandler, type GuestForward,
} from 'tslirp';
import type { Duplex } from 'node:stream';
import { replay, type ReplayReport } from 'tslirp/replay';
import { E1000 as E1000Alone, arrayGuestMemory as guestMemory, E1000_REGISTERS as REGS, type E1000Options } from 'tslirp/e1000';
import { attachE1000, type AttachedE1000, type V86Emulator } from 'tslirp/v86';

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const out: Uint8Array[] = [];
const net: NodeNetwork = createNodeNetwork({ dnsUpstreams: ['127.0.0.1:9'] }, { emit: (f) => out.push(f) });
net.receiveFrame(hex('${ARP_REQUEST_HEX}'));
net.receiveFrame(hex('${DISCOVER_HEX}'));
const leases = net.leases().map((l) => formatIpv4Addr(l.ip));
net.close();

// Guest forwards from a program: a handler per virtual server, a stream into a guest's server.
const handler: GuestForwardHandler = (s: Duplex) => { s.end('hi'); };
const fwdNet = createNodeNetwork({ dnsUpstreams: [], tftp: undefined, guestfwd: ['tcp:10.0.2.100:80-cmd:cat'], guestfwdHandlers: [{ server: '10.0.2.100:7', handler }] });
const intoGuest: Duplex = fwdNet.connect('10.0.2.15', 22);
const intoGuestError = new Promise<string>((resolve) => intoGuest.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')));
const guestForwards: readonly GuestForward[] = fwdNet.config.guestForwards ?? [];
fwdNet.close();
const [pairA, pairB] = duplexPair();
const pairText = new Promise<string>((resolve) => { let t = ''; pairB.on('data', (d: Buffer) => (t += d.toString())); pairB.on('end', () => resolve(t)); });
pairA.end('through the pair');
const parsedFwd = parseGuestForwards(['tcp:10.0.2.100:1-127.0.0.1:1'], { net: 0x0a000200, netmask: 0xffffff00, dhcpStart: 0x0a00020f, dhcpPoolSize: 16 });

// A host of one's own, checked against the exported seam.
class RefusingHost implements Host {
  readonly events: HostEvents;
  constructor(events: HostEvents) { this.events = events; }
  udpOpen(flow: FlowId, _to: Endpoint): void { this.events.udpError(flow, 'ECONNREFUSED'); }
  udpSend(): void {}
  tcpConnect(flow: FlowId): void { this.events.tcpError(flow, 'ECONNREFUSED'); }
  tcpWrite(): number { return 0; }
  tcpEnd(): void {}
  tcpPause(): void {}
  tcpReset(): void {}
  close(): void {}
  tcpListen(listener: FlowId, _local: Endpoint): void { this.events.tcpListenError(listener, 'EACCES'); }
  tcpAdopt(): void {}
  tcpRefuse(): void {}
  udpBind(socket: FlowId, _local: Endpoint): void { this.events.udpError(socket, 'EACCES'); }
  udpSendTo(): void {}
}
const config: StackConfig = resolveStackConfig({ net: '192.168.7.0/24' });
let stack: Stack | undefined;
const refusing = new RefusingHost({
  udpReceived: (f, d) => stack?.udpReceived(f, d), udpError: (f, c) => stack?.udpError(f, c),
  tcpConnected: (f) => stack?.tcpConnected(f), tcpData: (f, d) => stack?.tcpData(f, d), tcpEnd: (f) => stack?.tcpEnd(f),
  tcpDrained: (f) => stack?.tcpDrained(f), tcpError: (f, c) => stack?.tcpError(f, c), tcpClosed: (f) => stack?.tcpClosed(f),
  tcpListening: (l, e) => stack?.tcpListening(l, e), tcpListenError: (l, c) => stack?.tcpListenError(l, c),
  tcpAccepted: (l, a, c) => stack?.tcpAccepted(l, a, c), udpBound: (s, e) => stack?.udpBound(s, e),
  udpReceivedFrom: (s, e, d) => stack?.udpReceivedFrom(s, e, d),
});
stack = new Stack(config, { clock: new ManualClock(0), random: seededRandom(7), emit: () => undefined, host: refusing });
const nodeHostType: typeof NodeHost = NodeHost;

let configError = '';
try { createNodeNetwork({ mtu: 1 }, { emit: () => undefined }); } catch (e) { if (e instanceof ConfigError) configError = e.option; }

const e1000 = new E1000({ memory: arrayGuestMemory(new Uint8Array(1 << 20)), clock: new ManualClock(0), setIrq: () => undefined, emit: () => undefined });
const header = pcap.encodePcapHeader();
const daemonOptions: DaemonOptions | undefined = undefined;
// tslirp/e1000: the model alone, QEMU's quirks on.
const compatOptions: E1000Options = { qemuCompat: true };
const alone = new E1000Alone({ memory: guestMemory(new Uint8Array(1 << 16)), clock: new ManualClock(0), setIrq: () => undefined, emit: () => undefined }, compatOptions);
alone.mmioWrite(REGS.TIPG, 4, 0x00602008);
alone.runUntil(1000);
// tslirp/v86: an emulator that never loads gets no device; the port is left on close().
let listeners = 0;
const notLoaded: V86Emulator = { add_listener: () => { listeners++; } };
const v86Net = createNodeNetwork({ dnsUpstreams: ['127.0.0.1:9'] });
const attached: AttachedE1000 = attachE1000(notLoaded, { network: v86Net });
attached.close();
v86Net.close();
let attachError = '';
try { attachE1000(notLoaded, {}); } catch (e) { attachError = (e as Error).message; }
// A recording of the corpus (copied beside this file), replayed through the public entry point.
const replayed: ReplayReport = await replay('udhcpc-lease.pcapng');
const notARecording: ReplayReport = await replay(new Uint8Array(8));

console.log('RESULT ' + JSON.stringify({
  frames: out.map((f) => Buffer.from(f).toString('hex')),
  leases,
  closed: net.closed,
  configError,
  stackNet: formatIpv4Addr(stack.config.net),
  nodeHost: typeof nodeHostType,
  e1000Status: e1000.mmioRead(E1000_REGISTERS.STATUS, 4),
  exitsPerFrame: e1000.exitsPerFrame,
  pcapHeaderLength: header.length,
  links: typeof links,
  daemonStart: typeof Daemon.start,
  daemonOptions: daemonOptions === undefined,
  replay: [replayed.exitCode, replayed.differences, replayed.frames > 0, notARecording.exitCode],
  guestForwards: guestForwards.map((f) => f.target.kind),
  intoGuestError: await intoGuestError,
  pair: await pairText,
  parsedFwd: parsedFwd.length,
  e1000Alone: [alone.mmioRead(REGS.TIPG, 4), alone.nowNs, alone.qemuCompat],
  v86: [listeners, attached.device === undefined, attachError],
}));
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2023'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    types: ['node'],
    strict: true,
    skipLibCheck: false,
    outDir: 'out',
    rootDir: '.',
  },
  include: ['*.ts'],
};

describe.runIf(shouldRun('the packed-package consumer test', missing))('the package as npm users get it', () => {
  it('needs npm', () => {
    expect(missing).toEqual([]);
  });

  it('packs from an unbuilt clone, installs in a fresh project, type-checks strictly and runs', async () => {
    // An unbuilt clone: the sources and build inputs, no dist/ (node_modules shared, as `npm ci` would make it).
    const clone = join(work, 'clone');
    mkdirSync(clone);
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'src', 'scripts'])
      cpSync(join(ROOT, f), join(clone, f), { recursive: true });
    rmSync(join(clone, 'dist'), { recursive: true, force: true });
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));

    const packed = ok(await exec('npm', ['pack', '--json', '--pack-destination', work], clone, 240_000), 'npm pack');
    const pack = (JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[]; size: number; unpackedSize: number }[])[0]!;
    const files = pack.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/bin.js', 'dist/cli/main.js']));
    expect(files.filter((f) => !f.startsWith('dist/') && !['LICENSE', 'README.md', 'package.json'].includes(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map') || f.includes('.build-stamp') || /(^|\/)(test|bench)\//.test(f))).toEqual([]);
    expect(readdirSync(work)).toContain(pack.filename);

    const consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // What the README asks of a TypeScript user: tslirp, and Node's types.
    const nodeTypes = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@types/node']!;
    ok(await exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, pack.filename), `@types/node@${nodeTypes}`], consumer, 240_000), 'npm install');

    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    writeFileSync(join(consumer, 'consumer.ts'), CONSUMER);
    cpSync(join(ROOT, 'pcaps', 'udhcpc-lease.pcapng'), join(consumer, 'udhcpc-lease.pcapng'));
    const examples = readmeLibraryExamples();
    expect(examples.length).toBeGreaterThanOrEqual(2);
    examples.forEach((code, i) => writeFileSync(join(consumer, `readme-${i}.ts`), README_PRELUDE + code));
    ok(await exec(process.execPath, [TSC, '-p', 'tsconfig.json'], consumer, 120_000), 'tsc (strict, skipLibCheck: false)');

    // consumer.ts: must exit by itself (no socket or timer left behind by close()).
    const ran = ok(await exec(process.execPath, ['out/consumer.js'], consumer, 30_000), 'node out/consumer.js');
    const result = JSON.parse(/^RESULT (.*)$/m.exec(ran.stdout)![1]!) as Record<string, unknown> & { frames: string[] };
    const frames = result.frames.map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
    expect(frames).toHaveLength(2);
    const arp = decode(frames[0]!).arp;
    expect(arp?.op).toBe(ARP_OP.REPLY);
    expect([...(arp?.senderMac ?? [])]).toEqual([...GATEWAY_MAC]);
    expect(dhcpReplyType(frames[1]!)).toBe(2); // OFFER
    expect(yiaddr(frames[1]!)).toBe('10.0.2.15');
    expect(result).toMatchObject({
      leases: ['10.0.2.15'], closed: true, configError: 'mtu', stackNet: '192.168.7.0', nodeHost: 'function',
      exitsPerFrame: 0, pcapHeaderLength: 24, links: 'object', daemonStart: 'function', daemonOptions: true,
      replay: [0, 0, true, 2],
      guestForwards: ['service', 'service'], intoGuestError: 'ECONNRESET', pair: 'through the pair', parsedFwd: 1,
      e1000Alone: [0, 1_000_000_000, true], // TIPG reads 0 under qemuCompat
      v86: [1, true, 'attachE1000: give exactly one of network, relay_url and e1000_channel'],
    });

    // The README's examples: the guest's ARP request is answered (the first example goes through createNodeNetwork).
    for (let i = 0; i < examples.length; i++) {
      const r = ok(await exec(process.execPath, [`out/readme-${i}.js`], consumer, 30_000), `README example ${i}`);
      const delivered = (JSON.parse(/^DELIVERED (.*)$/m.exec(r.stdout)![1]!) as string[]).map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
      expect(delivered.length, `README example ${i}`).toBeGreaterThanOrEqual(1);
      expect(decode(delivered[0]!).arp?.op, `README example ${i}`).toBe(ARP_OP.REPLY);
    }
  }, 600_000);
});
