/**
 * Guest forwards with a real guest: a namespace guest (real Linux TCP behind a TAP) runs
 * busybox nc against virtual servers of its network.
 *
 * - The daemon (`--guestfwd`, QEMU's syntax, with `--restrict`): `tcp:10.0.2.100:80-127.0.0.1:P`
 *   reaches a TCP server of this process on loopback; `tcp:10.0.2.100:5000-cmd:tr a-z A-Z` runs
 *   the command per connection, stdin and stdout relayed; a direct connection to the same host
 *   port through the gateway is refused by --restrict meanwhile.
 * - The library (`createNodeNetwork` in this process, its frames carried to the guest's TAP
 *   over UDP by socat): a JavaScript handler serves 10.0.2.100:7 with a stream per connection,
 *   and `network.connect(guest, port)` opens a stream into a server in the guest with no host
 *   port in between.
 *
 * Needs root (namespaces, TAP), socat and busybox (its nc in the guest).
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeNetwork, type NodeNetwork } from '../../src/index.js';
import { DAEMON_ENTRY, startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, root, shouldRun, tempDir } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox')]);
const enabled = shouldRun('guestfwd.int.test.ts (guest forwards with a namespace guest: nc to a host socket, a command, a JS handler)', missing);

/** Reads a stream to its end (bounded: 10 s). */
const readAll = (s: Duplex): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => { reject(new Error(`stream did not end; got '${text}'`)); }, 10_000);
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('end', () => { clearTimeout(timer); resolve(text); });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });

describe.skipIf(!enabled)('--guestfwd with a namespace guest', () => {
  let d: Daemon;
  let g: NetnsGuest | undefined;
  let server: net.Server;
  let rec: string;
  let port = 0;
  const peers: string[] = [];

  beforeAll(async () => {
    server = net.createServer((c) => {
      peers.push(`${c.remoteAddress}`);
      c.on('error', () => undefined);
      c.once('data', (q: Buffer) => c.end(`host socket got '${q.toString().trim()}'\n`));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
    rec = tempDir('tslirp-guestfwd-rec-');
    d = await startDaemon([
      '--dgram', 'udp:127.0.0.1:0', '--restrict', '--record', rec,
      '--guestfwd', `tcp:10.0.2.100:80-127.0.0.1:${port}`,
      '--guestfwd', 'tcp:10.0.2.100:5000-cmd:tr a-z A-Z',
      '--log-level', 'info',
    ]);
    g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    const { lease, result } = await g.dhcp();
    expect(lease?.['ip'], `udhcpc:\n${result.stdout}${result.stderr}\nbridge:\n${g.bridge.tail()}\ndaemon:\n${d.dump()}`).toBe('10.0.2.15');
  }, 120_000);

  afterAll(async () => {
    await g?.destroy();
    await d?.stop();
    server?.close();
    if (rec !== undefined) rmSync(rec, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it("nc to the virtual server reaches the host socket (under --restrict), and the virtual address answers ping", async () => {
    const g = guest();
    const r = await g.sh(`printf 'hello\\n' | busybox nc -w 5 10.0.2.100 80`, [], 20_000);
    expect(r.stdout, r.stderr + d.dump()).toBe("host socket got 'hello'\n");
    expect(peers).toEqual(['127.0.0.1']);
    const ping = await g.exec(['busybox', 'ping', '-c', '1', '-W', '3', '10.0.2.100'], 10_000);
    expect(ping.stdout).toMatch(/1 packets received/);
    // The same host port straight through the gateway is refused by --restrict: RST, nc fails at once.
    const direct = await g.sh(`printf 'x\\n' | busybox nc -w 5 10.0.2.2 ${port}; echo "exit $?"`, [], 20_000);
    expect(direct.stdout).toMatch(/exit 1/);
    expect(peers).toHaveLength(1);
  }, 60_000);

  it('nc to the command forward runs the command per connection, stdin and stdout relayed', async () => {
    const g = guest();
    for (const word of ['first', 'second']) {
      const r = await g.sh(`printf '%s\\n' "$1" | busybox nc -w 5 10.0.2.100 5000`, [word], 20_000);
      expect(r.stdout, r.stderr).toBe(`${word.toUpperCase()}\n`);
    }
  }, 60_000);

  it('other ports of the virtual address are closed (RST)', async () => {
    const r = await guest().sh('busybox nc -w 5 10.0.2.100 81 </dev/null; echo "exit $?"', [], 20_000);
    expect(r.stdout).toMatch(/exit 1/);
    expect(r.stderr).toMatch(/Connection refused/);
  }, 30_000);

  it('the recording (host sockets and the command service crossing the host seam) replays byte for byte', async () => {
    await guest().destroy();
    g = undefined;
    expect((await d.stop()).code).toBe(0);
    const [name] = readdirSync(rec);
    const replayed = spawnSync(process.execPath, [DAEMON_ENTRY, 'replay', join(rec, name!)], { encoding: 'utf8', timeout: 60_000 });
    expect(replayed.stderr).toBe('');
    expect(replayed.stdout).toMatch(/^replay: \d+ frames, 0 differences, \d+\.\d+ s\n$/);
  }, 90_000);

  const guest = (): NetnsGuest => {
    if (g === undefined) throw new Error('no guest');
    return g;
  };
});

describe.skipIf(!enabled)('a program\'s guest forward handler and network.connect, with a namespace guest', () => {
  let network: NodeNetwork;
  let sock: dgram.Socket;
  let g: NetnsGuest;
  const handled: string[] = [];

  beforeAll(async () => {
    sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    let peer: { address: string; port: number } | undefined;
    network = createNodeNetwork(
      {
        dnsUpstreams: [],
        guestfwdHandlers: [
          {
            server: '10.0.2.100:7',
            handler: (s) => {
              s.on('error', () => undefined);
              let text = '';
              s.on('data', (d: Buffer) => (text += d.toString()));
              s.on('end', () => {
                handled.push(text);
                s.end(`js handler got '${text.trim()}'\n`);
              });
            },
          },
        ],
      },
      { emit: (frame) => { if (peer !== undefined) sock.send(frame, peer.port, peer.address); } },
    );
    sock.on('message', (frame, rinfo) => {
      peer = { address: rinfo.address, port: rinfo.port };
      network.receiveFrame(new Uint8Array(frame));
    });
    g = await NetnsGuest.create({ kind: 'dgram', host: '127.0.0.1', port: sock.address().port });
    const { lease } = await g.dhcp();
    expect(lease?.['ip']).toBe('10.0.2.15');
  }, 120_000);

  afterAll(async () => {
    await g?.destroy();
    network?.close();
    sock?.close();
  });

  it('a guest connection to the handler\'s virtual server is a stream in this program', async () => {
    const r = await g.sh(`printf 'from the guest\\n' | busybox nc -w 5 10.0.2.100 7`, [], 20_000);
    expect(r.stdout, r.stderr).toBe("js handler got 'from the guest'\n");
    expect(handled).toEqual(['from the guest\n']);
  }, 30_000);

  it('network.connect opens a stream into a server in the guest, which sees the gateway connect', async () => {
    // socat tells the server its peer's address; the echo server answers with it, then echoes.
    const server = g.spawn('guest socat server', ['socat', 'TCP4-LISTEN:7000,reuseaddr', 'SYSTEM:echo "peer $SOCAT_PEERADDR"; cat']);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const s = network.connect('10.0.2.15', 7000);
      const got = readAll(s);
      s.end('from the program\n');
      const text = await got;
      expect(text).toBe('peer 10.0.2.2\nfrom the program\n');
    } finally {
      await server.stop();
    }
  }, 30_000);

  it('network.connect to a closed port errors with ECONNRESET', async () => {
    const s = network.connect('10.0.2.15', 7001);
    await expect(readAll(s)).rejects.toMatchObject({ code: 'ECONNRESET' });
  }, 30_000);
});
