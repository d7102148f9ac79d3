/**
 * The daemon as a process (issue 17): SIGHUP leaves it serving; a SIGKILLed daemon's captures
 * (a directory of classic pcaps, or one pcapng file) already hold the guest's DHCP exchange;
 * the QEMU commands it prints run as pasted. Real daemon (dist/), real tshark and QEMU.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { readCapture, type Capture } from '../../src/pcap/reader.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { BROADCAST_MAC } from '../../src/util/bytes.js';
import { DHCP_DISCOVER, dhcpReplyType } from '../daemon/dhcp-frames.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { arpFrame, ip, ipv4Frame, udpBytes } from '../helpers/frames.js';
import { command, daemon as daemonReq, missingRequirements, Proc, QEMU_INITRD, QEMU_KERNEL, qemuGuestRequirements, run, shouldRun, tempDir, until } from '../helpers/guests.js';
import { hex } from '../helpers/hex.js';

const missing = missingRequirements([daemonReq, command('tshark')]);
const enabled = shouldRun('process.int.test.ts (signals and captures of the real daemon)', missing);

/** A DHCP REQUEST for 10.0.2.15 from the DISCOVER's client: its BOOTP header, options 53=3, 50, 54. */
const DHCP_REQUEST = ipv4Frame(
  {
    src: 0,
    dst: ip('255.255.255.255'),
    protocol: IP_PROTO.UDP,
    payload: udpBytes(
      { srcPort: 68, dstPort: 67, payload: new Uint8Array([...DHCP_DISCOVER.subarray(42, 42 + 240), ...hex`350103 32040a00020f 36040a000202 ff`]) },
      0,
      ip('255.255.255.255'),
    ),
  },
  BROADCAST_MAC,
);
/** ARP who-has 10.0.2.2 from the leased address. */
const ARP_GATEWAY = arpFrame({ targetIp: ip('10.0.2.2') });

/** A WebSocket guest that keeps what it receives. */
async function wsGuest(url: string): Promise<{ ws: WebSocket; got: Uint8Array[]; waitFor: (pred: (f: Uint8Array) => boolean, what: string) => Promise<void> }> {
  const ws = new WebSocket(url);
  const got: Uint8Array[] = [];
  ws.on('message', (m: Buffer) => got.push(new Uint8Array(m)));
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  const waitFor = async (pred: (f: Uint8Array) => boolean, what: string): Promise<void> => {
    if (!(await until(() => got.some(pred), 10_000))) throw new Error(`no ${what} within 10 s`);
  };
  return { ws, got, waitFor };
}

const isArpReply = (f: Uint8Array): boolean => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2;

/** DHCP message types (option 53) of the BOOTP packets of a capture, in order. */
function dhcpTypes(c: Capture): number[] {
  const out: number[] = [];
  for (const p of c.packets) {
    const f = p.data;
    if (f.length < 282 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 17) continue;
    const dport = (f[36]! << 8) | f[37]!;
    if (dport !== 67 && dport !== 68) continue;
    for (let at = 282; at + 2 < f.length && f[at] !== 0xff; at += 2 + f[at + 1]!) if (f[at] === 53) out.push(f[at + 2]!);
  }
  return out;
}

describe.skipIf(!enabled)('the daemon process', () => {
  const dir = tempDir('tslirp-process-');
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (the built daemon, tshark)', () => {
    expect(missing).toEqual([]);
  });

  it('SIGHUP (nothing to reload) is logged: the daemon keeps its sessions, its socket file and serves new guests', async () => {
    const sock = join(dir, 'hup.sock');
    const d = await startDaemon(['--ws', '127.0.0.1:0', '--stream', `unix:${sock}`]);
    try {
      const a = await wsGuest(d.wsUrl());
      a.ws.send(DHCP_DISCOVER);
      await a.waitFor((f) => dhcpReplyType(f) === 2, 'OFFER before SIGHUP');
      process.kill(d.pid, 'SIGHUP');
      expect(await until(() => d.logs.some((l) => String(l['msg']).startsWith('SIGHUP: nothing to reload')), 10_000), d.dump()).toBe(true);
      expect(d.alive(), d.dump()).toBe(true);
      expect(existsSync(sock)).toBe(true);
      // The session from before the signal still answers, and a new guest is served.
      a.got.length = 0;
      a.ws.send(DHCP_REQUEST);
      await a.waitFor((f) => dhcpReplyType(f) === 5, 'ACK after SIGHUP');
      const b = await wsGuest(d.wsUrl());
      b.ws.send(DHCP_DISCOVER);
      await b.waitFor((f) => dhcpReplyType(f) === 2, 'OFFER to a new guest after SIGHUP');
      a.ws.close();
      b.ws.close();
    } finally {
      const exit = await d.stop();
      expect(exit, d.dump()).toEqual({ code: 0, signal: null });
      expect(existsSync(sock)).toBe(false);
    }
  }, 60_000);

  /** A guest does DHCP and one ARP round trip, then the daemon is killed with SIGKILL. */
  async function dhcpThenKill(d: Daemon): Promise<void> {
    const g = await wsGuest(d.wsUrl());
    g.ws.send(DHCP_DISCOVER);
    await g.waitFor((f) => dhcpReplyType(f) === 2, 'OFFER');
    g.ws.send(DHCP_REQUEST);
    await g.waitFor((f) => dhcpReplyType(f) === 5, 'ACK');
    // One more round trip after the ACK: the ACK's turn is over, its records handed to the file.
    g.ws.send(ARP_GATEWAY);
    await g.waitFor(isArpReply, 'ARP reply');
    process.kill(d.pid, 'SIGKILL');
    expect(await until(() => !d.alive(), 10_000)).toBe(true);
    expect(d.exited?.signal).toBe('SIGKILL');
  }

  async function tsharkDhcp(path: string): Promise<string[]> {
    const r = await run('tshark', ['-n', '-r', path, '-Y', 'dhcp', '-T', 'fields', '-e', 'dhcp.option.dhcp'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    // A capture cut short would make tshark warn ("appears to have been cut short").
    expect(r.stderr.split('\n').filter((l) => l.trim() !== '' && !/running as user "root"/i.test(l))).toEqual([]);
    return r.stdout.trim().split('\n');
  }

  it('a SIGKILLed daemon leaves per-session pcaps holding the DHCP exchange', async () => {
    const caps = join(dir, 'caps') + '/';
    const d = await startDaemon(['--ws', '127.0.0.1:0', '--pcap', caps]);
    await dhcpThenKill(d);
    const files = readdirSync(caps);
    expect(files).toHaveLength(1);
    const path = join(caps, files[0]!);
    const c = readCapture(readFileSync(path));
    if (typeof c === 'string') throw new Error(`${path}: ${c}`);
    expect(c.format).toBe('pcap');
    expect(dhcpTypes(c)).toEqual([1, 2, 3, 5]);
    expect(await tsharkDhcp(path)).toEqual(['1', '2', '3', '5']);
  }, 60_000);

  it('a SIGKILLed daemon leaves a pcapng file holding the DHCP exchange, the session an interface', async () => {
    const path = join(dir, 'all.pcapng');
    const d = await startDaemon(['--ws', '127.0.0.1:0', '--pcap', path]);
    await dhcpThenKill(d);
    const c = readCapture(readFileSync(path));
    if (typeof c === 'string') throw new Error(`${path}: ${c}`);
    expect(c.format).toBe('pcapng');
    const started = d.logs.find((l) => l['msg'] === 'session started');
    expect(c.interfaces).toEqual([{ linkType: 1, snaplen: 0, name: started?.['session'], description: `ws ${String(started?.['peer'])}` }]);
    expect(dhcpTypes(c)).toEqual([1, 2, 3, 5]);
    expect(c.packets.filter((p) => dhcpTypes({ ...c, packets: [p] }).length > 0).map((p) => p.direction)).toEqual(['inbound', 'outbound', 'inbound', 'outbound']);
    expect(await tsharkDhcp(path)).toEqual(['1', '2', '3', '5']);
  }, 60_000);
});

const KERNEL = QEMU_KERNEL;
const INITRD = QEMU_INITRD;
const qemuMissing = missingRequirements([daemonReq, ...qemuGuestRequirements,]);
const qemuEnabled = shouldRun('process.int.test.ts (the printed QEMU commands, run by QEMU)', qemuMissing);

describe.skipIf(!qemuEnabled)('the attach commands the daemon prints', () => {
  let d: Daemon;
  let sockDir: string;
  const procs: Proc[] = [];
  beforeAll(async () => {
    sockDir = tempDir('tslirp-attach-');
    d = await startDaemon(['--stream', `unix:${join(sockDir, 'tslirp.sock')}`, '--stream', 'tcp:127.0.0.1:0', '--dgram', 'udp:127.0.0.1:0', '--ws', '127.0.0.1:0']);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await d?.stop();
    rmSync(sockDir, { recursive: true, force: true });
  });

  it('has what it needs (qemu, the guest image, the daemon)', () => {
    expect(qemuMissing).toEqual([]);
  });

  /** The printed command lines (stderr), once all are there. */
  async function printed(): Promise<string[]> {
    const lines = (): string[] => d.otherOutput.filter((l) => l.startsWith('  ')).map((l) => l.trim());
    await until(() => lines().length >= 4, 10_000);
    return lines();
  }

  it('prints plain ASCII: one QEMU command per stream or dgram listener, a v86 statement for ws', async () => {
    const lines = await printed();
    expect(d.otherOutput.join('\n')).not.toMatch(/[^\x20-\x7e\n]/);
    expect(lines.filter((l) => l.startsWith('qemu-system-x86_64 -m 512 -netdev '))).toHaveLength(3);
    const v86 = lines.find((l) => l.startsWith('new V86('));
    expect(v86).toBe(`new V86({ net_device: { type: 'virtio', relay_url: '${d.wsUrl()}' } });`);
  });

  const sessions = (kind: string): number => d.logs.filter((l) => l['msg'] === 'session started' && l['kind'] === kind).length;

  for (const [label, pick] of [
    ['unix stream', (l: string) => l.includes('addr.type=unix')],
    ['TCP stream', (l: string) => l.includes('addr.type=inet')],
  ] as const) {
    it(`QEMU runs the printed ${label} command as pasted and connects a session`, async () => {
      const line = (await printed()).find((l) => l.startsWith('qemu-system-x86_64') && pick(l));
      expect(line).toBeDefined();
      // No shell quoting was needed for these paths, so splitting on spaces is what a shell does.
      expect(line).not.toMatch(/['"\\]/);
      const [cmd, ...args] = line!.split(' ');
      expect(cmd).toBe('qemu-system-x86_64');
      const before = sessions('stream');
      // -S: the machine (default PC, with the printed e1000) is built but its CPU never runs.
      const q = new Proc(`qemu ${label}`, cmd!, [...args, '-S', '-display', 'none', '-nodefaults']);
      procs.push(q);
      expect(await until(() => sessions('stream') > before || q.exit !== undefined, 30_000), `${q.tail()}\n${d.dump()}`).toBe(true);
      expect(q.exit, q.tail()).toBeUndefined();
      await q.stop();
    }, 60_000);
  }

  it('QEMU runs the printed dgram command (with the guest kernel added) and the guest gets a session', async () => {
    const line = (await printed()).find((l) => l.includes('-netdev dgram,'));
    expect(line).toBeDefined();
    expect(line).not.toMatch(/['"\\]/);
    const [cmd, ...args] = line!.split(' ');
    expect(cmd).toBe('qemu-system-x86_64');
    const before = sessions('dgram');
    // What the note says to add: the guest's kernel. A dgram session starts with the guest's first frame.
    const q = new Proc('qemu dgram guest', cmd!, [
      ...args,
      '-accel', 'tcg', '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
      '-kernel', KERNEL, '-initrd', INITRD, '-append', 'console=ttyS0 quiet panic=-1 nic=e1000',
    ]);
    procs.push(q);
    try {
      await q.waitFor(/TSLIRP-LEASE ip=10\.0\.2\.15/, 120_000);
      expect(sessions('dgram')).toBeGreaterThan(before);
    } finally {
      await q.stop();
    }
  }, 150_000);
});
