/**
 * `--hostfwd` port ranges with a real guest: a namespace guest (real Linux TCP and UDP behind
 * a TAP bridged to the daemon over dgram) runs servers on several ports of a range; loopback
 * clients reach each through the matching host port of the forward, and a port of the range
 * with no server in the guest is refused by the guest's own kernel (an RST through the range's
 * listener), so each host port reaches its own guest port.
 *
 * Needs root (namespaces, TAP), socat and busybox.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, type Proc, root, shouldRun } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox')]);
const enabled = shouldRun('hostfwd-range.int.test.ts (port-range forwarding to a namespace guest)', missing);

/** Whether `port` can be bound on 127.0.0.1 for `kind` right now. */
function free(kind: 'tcp' | 'udp', port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (kind === 'tcp') {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    } else {
      const s = dgram.createSocket('udp4');
      s.once('error', () => { s.close(); resolve(false); });
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    }
  });
}

/** The first port of `count` consecutive free loopback ports (tries at most 50 random bases). */
async function freeRange(kind: 'tcp' | 'udp', count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await free(kind, p);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ${kind} ports on 127.0.0.1`);
}

/** Connects to 127.0.0.1:port and resolves with everything the server sent, or 'reset'/'refused'. */
function fetchTcp(port: number, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`no answer on ${port}; got '${text}'`)); }, ms);
    c.on('data', (b: Buffer) => (text += b.toString()));
    c.on('end', () => { clearTimeout(timer); resolve(text.trim()); });
    c.on('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); resolve(e.code === 'ECONNRESET' ? 'reset' : `error ${e.code ?? e.message}`); });
  });
}

/** Sends `text` from a fresh loopback socket to `port`; resolves with the first reply. */
function askUdp(port: number, text: string, ms = 5_000): Promise<string> {
  const s = dgram.createSocket('udp4');
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { s.close(); reject(new Error(`no reply on ${port} to '${text}'`)); }, ms);
    s.on('message', (m) => { clearTimeout(timer); s.close(); resolve(m.toString().trim()); });
    s.bind(0, '127.0.0.1', () => s.send(text, port, '127.0.0.1'));
  });
}

describe.skipIf(!enabled)('--hostfwd port ranges with a namespace guest', () => {
  let d: Daemon;
  let g: NetnsGuest;
  let tcpBase = 0;
  let udpBase = 0;
  const servers: Proc[] = [];

  beforeAll(async () => {
    tcpBase = await freeRange('tcp', 3);
    udpBase = await freeRange('udp', 2);
    d = await startDaemon([
      '--dgram', 'udp:127.0.0.1:0',
      '--hostfwd', `tcp:127.0.0.1:${tcpBase}-${tcpBase + 2}-:7000-7002,udp:127.0.0.1:${udpBase}-${udpBase + 1}-:7100-7101`,
      '--log-level', 'info',
    ]);
    g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    const { lease } = await g.dhcp();
    expect(lease?.['ip']).toBe('10.0.2.15');
    // Servers on the first and last TCP port of the range (7001 stays closed) and on both UDP ports.
    for (const p of [7000, 7002]) servers.push(g.spawn(`guest tcp ${p}`, ['socat', `TCP-LISTEN:${p},reuseaddr,fork`, `SYSTEM:echo tcp ${p} from $SOCAT_PEERADDR`]));
    for (const p of [7100, 7101]) servers.push(g.spawn(`guest udp ${p}`, ['socat', `UDP4-RECVFROM:${p},fork`, `SYSTEM:read l; echo "udp ${p} $l"`]));
    await new Promise((r) => setTimeout(r, 500));
  }, 120_000);
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await g?.destroy();
    await d?.stop();
  });

  it('has what it needs (root, ip, socat, busybox, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('logs the range once, as written', () => {
    const attached = d.logs.find((l) => l['msg'] === 'port forwards attached to session');
    expect(attached?.['forwards'], d.dump()).toEqual([`tcp:127.0.0.1:${tcpBase}-${tcpBase + 2}-:7000-7002`, `udp:127.0.0.1:${udpBase}-${udpBase + 1}-:7100-7101`]);
  });

  it('each TCP host port of the range reaches its own guest port', async () => {
    const [first, middle, last] = await Promise.all([fetchTcp(tcpBase), fetchTcp(tcpBase + 1), fetchTcp(tcpBase + 2)]);
    const context = `${servers.map((s) => s.tail(500)).join('\n')}\n${d.dump().slice(-3000)}`;
    expect(first, context).toBe('tcp 7000 from 10.0.2.2');
    expect(last, context).toBe('tcp 7002 from 10.0.2.2');
    expect(middle, context).toBe('reset'); // guest port 7001 has no server: the guest's RST
  }, 30_000);

  it('each UDP host port of the range reaches its own guest port', async () => {
    const answers = await Promise.all([askUdp(udpBase, 'one'), askUdp(udpBase + 1, 'two')]);
    expect(answers).toEqual(['udp 7100 one', 'udp 7101 two']);
  }, 30_000);
});
