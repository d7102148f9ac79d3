/**
 * Makes the corpus of pcaps/: real guests (network namespaces whose TAP is bridged to the
 * daemon over its dgram link by socat, see test/helpers/guests.ts) run real programs through
 * `tslirp serve --record DIR`, one daemon per capture; each recording is replayed at once
 * (it must match byte for byte) and copied to pcaps/NAME.pcapng, and pcaps/README.md's table
 * of provenance is rewritten.
 *
 *   sudo npx tsx pcaps/record.ts            # every capture
 *   sudo npx tsx pcaps/record.ts tcp-upload # only these
 *
 * Before a capture is replaced, the old one is replayed with the code as it is now: "still
 * replays" means the daemon's behaviour for that guest did not change (the new file differs
 * only in what the world gave it: times, the seed, the guest's random numbers); a divergence
 * is printed decoded — that is what changed, and why the capture is being re-recorded.
 *
 * Needs root, ip, socat, busybox, curl, dig, arping, dnsmasq, dhclient, dhcpcd, python3, qemu-system-x86_64 and
 * the test guest of scripts/build-qemu-guest.sh (the PACKAGES
 * of scripts/test-all.sh) and a built daemon (`npm run build`). Only loopback addresses and
 * the namespaces it creates receive traffic.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatReport, replay } from '../src/replay/index.js';
import { startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, QEMU_GUEST_DIR, QEMU_INITRD, QEMU_KERNEL, root, tempDir, until } from '../test/helpers/guests.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Servers on the host's loopback that the guests reach through the gateway (10.0.2.2 = 127.0.0.1). */
interface World {
  /** GET /N answers N bytes; POST answers `got N`. */
  readonly http: number;
  /** Reads until the peer's FIN, then answers `got N bytes` and closes (half-close). */
  readonly halfClose: number;
  /** Resets every connection once it sent something. */
  readonly reset: number;
  /** Holds connections open, reads and discards. */
  readonly hold: number;
  readonly udpEcho: number;
  /** dnsmasq: corpus.test A, big.corpus.test TXT over 512 bytes. */
  readonly dns: number;
  /** A loopback port nobody listens on (TCP and UDP). */
  readonly closed: number;
}

interface Ctx {
  readonly world: World;
  readonly daemon: Daemon;
  readonly guests: readonly NetnsGuest[];
  /** The forwarded host ports of the capture's --hostfwd rules. */
  readonly fwd: readonly number[];
}

interface Capture {
  readonly name: string;
  /** What it shows, for the README. */
  readonly shows: string;
  /** Programs whose versions the provenance line names. */
  readonly tools: readonly string[];
  readonly guests?: number;
  /** Host ports to forward (they are bound by the daemon); `rule(port)` makes each --hostfwd. */
  readonly forwards?: readonly ((port: number) => string)[];
  /** Extra daemon arguments. */
  readonly args?: readonly string[];
  run(c: Ctx): Promise<void>;
}

/** Runs a shell snippet in the guest; throws with its output unless it exits 0 (or `allowFail`). */
async function sh(g: NetnsGuest, script: string, allowFail = false, timeoutMs = 30_000): Promise<string> {
  const r = await g.sh(script, [g.tap], timeoutMs);
  if (!allowFail && r.code !== 0) throw new Error(`guest ${g.ns}: '${script}' exited ${String(r.code)}:\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

/** A static address, for captures that are not about DHCP. */
const staticAddress = (g: NetnsGuest, last: number): Promise<string> => sh(g, `ip addr add 10.0.2.${last}/24 dev "$1" && ip route add default via 10.0.2.2`);

const dhclientScript = (dir: string): string => {
  const path = join(dir, 'dhclient-script');
  writeFileSync(path, '#!/bin/sh\ncase "$reason" in BOUND|RENEW|REBIND|REBOOT) ip addr add "$new_ip_address/24" dev "$interface";; esac\nexit 0\n', { mode: 0o755 });
  return path;
};

const CAPTURES: readonly Capture[] = [
  {
    name: 'udhcpc-lease',
    shows: 'busybox udhcpc: DISCOVER, OFFER, REQUEST, ACK with its option set; ARP for the gateway; two pings of the gateway',
    tools: ['busybox'],
    async run({ guests: [g] }) {
      const { lease } = await g!.dhcp();
      if (lease?.['ip'] !== '10.0.2.15') throw new Error('udhcpc got no lease');
      await sh(g!, 'ping -c 2 -i 0.2 -W 2 10.0.2.2');
    },
  },
  {
    name: 'dhclient-lease',
    shows: 'ISC dhclient: its own option set (DISCOVER … ACK), then DHCPRELEASE',
    tools: ['dhclient'],
    async run({ guests: [g] }) {
      const dir = tempDir('tslirp-dhclient-');
      try {
        const script = dhclientScript(dir);
        const files = `-sf ${script} -lf ${dir}/lease -pf ${dir}/pid`;
        await sh(g!, `dhclient -4 -1 -v ${files} "$1"`, false, 40_000);
        await sh(g!, `dhclient -4 -r -v ${files} "$1"`, true, 20_000);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'arp-probe-announce',
    shows: 'arping: duplicate address detection probes (sender 0.0.0.0), a gratuitous ARP request and reply, requests for the gateway answered',
    tools: ['arping'],
    async run({ guests: [g] }) {
      await sh(g!, 'arping -D -c 2 -w 3 -I "$1" 10.0.2.15', true);
      await staticAddress(g!, 15);
      await sh(g!, 'arping -U -c 1 -w 2 -I "$1" 10.0.2.15; arping -A -c 1 -w 2 -I "$1" 10.0.2.15', true);
      await sh(g!, 'arping -c 2 -w 3 -I "$1" 10.0.2.2');
    },
  },
  {
    name: 'dns-udp-tcp',
    shows: 'dig through the DNS forwarder to dnsmasq: A over UDP, A over TCP, a TXT answer over 512 bytes truncated over UDP and retried over TCP, NXDOMAIN',
    tools: ['dig', 'dnsmasq'],
    async run({ guests: [g] }) {
      await staticAddress(g!, 15);
      const a = await sh(g!, 'dig +time=2 +tries=1 @10.0.2.3 corpus.test A +short');
      if (!a.includes('192.0.2.10')) throw new Error(`no A answer: ${a}`);
      await sh(g!, 'dig +tcp +time=2 +tries=1 @10.0.2.3 corpus.test A +short');
      const big = await sh(g!, 'dig +noedns +time=2 +tries=1 @10.0.2.3 big.corpus.test TXT');
      if (!big.includes('Truncated') && !big.includes('TCP')) process.stdout.write(`  (dig did not report a TCP retry)\n`);
      await sh(g!, 'dig +time=2 +tries=1 @10.0.2.3 nothing.corpus.test A', true);
    },
  },
  {
    name: 'tcp-download',
    shows: 'curl GET of 1 MB from a loopback HTTP server through the NAT (the bulk TCP capture of the replay benchmark)',
    tools: ['curl'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      const out = await sh(g!, `curl -s -o /dev/null -w '%{size_download}' http://10.0.2.2:${world.http}/1000000`);
      if (out.trim() !== '1000000') throw new Error(`download: ${out}`);
    },
  },
  {
    name: 'tcp-upload',
    shows: 'curl POST of 1 MB to a loopback HTTP server through the NAT',
    tools: ['curl'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      const out = await sh(g!, `head -c 1000000 /dev/zero | curl -s --data-binary @- http://10.0.2.2:${world.http}/upload`);
      if (!out.includes('got 1000000')) throw new Error(`upload: ${out}`);
    },
  },
  {
    name: 'tcp-half-close',
    shows: 'socat sends a line and half-closes (FIN); the host peer answers after reading the FIN, then closes',
    tools: ['socat'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      const out = await sh(g!, `printf 'hello, half-close\\n' | socat -t 5 - TCP:10.0.2.2:${world.halfClose}`);
      if (!out.includes('got 18 bytes')) throw new Error(`half-close: ${out}`);
    },
  },
  {
    name: 'tcp-reset',
    shows: 'RST both ways: the host peer resets after the first bytes (the guest gets RST); the guest closes with SO_LINGER 0 (the host socket is reset)',
    tools: ['socat'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      await sh(g!, `printf 'reset me\\n' | socat -t 3 - TCP:10.0.2.2:${world.reset}`, true);
      await sh(g!, `(printf 'then I reset\\n'; sleep 0.5) | socat -t 0 - TCP:10.0.2.2:${world.hold},linger=0`, true);
    },
  },
  {
    name: 'tcp-refused',
    shows: 'curl to a loopback port nobody listens on: the host connect fails ECONNREFUSED, the guest gets RST',
    tools: ['curl'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      const out = await sh(g!, `curl -s -m 5 http://10.0.2.2:${world.closed}/; echo "rc=$?"`, true);
      if (!out.includes('rc=7')) throw new Error(`curl should be refused (rc=7): ${out}`);
    },
  },
  {
    name: 'tcp-slow-reader',
    shows: 'curl --limit-rate with a 16 KiB receive buffer reads 400 KB slowly: the guest window shrinks to a few hundred bytes and the NAT sends only what it allows (no zero window was reached)',
    tools: ['curl'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      await sh(g!, 'sysctl -qw net.ipv4.tcp_rmem="4096 8192 16384"');
      const out = await sh(g!, `curl -s --limit-rate 160k -o /dev/null -w '%{size_download}' http://10.0.2.2:${world.http}/400000`, false, 60_000);
      if (out.trim() !== '400000') throw new Error(`slow download: ${out}`);
    },
  },
  {
    name: 'udp-echo-icmp',
    shows: 'socat UDP to a loopback echo server (two datagrams back); UDP to a closed loopback port (ICMP port unreachable to the guest: --nat symmetric, whose connected sockets hear it); a 3000-byte ping of the gateway (fragments both ways)',
    tools: ['socat', 'busybox'],
    args: ['--nat', 'symmetric'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      const echo = await sh(g!, `(printf 'one\\n'; sleep 0.2; printf 'two\\n'; sleep 0.5) | socat -t 1 - UDP:10.0.2.2:${world.udpEcho}`);
      if (!echo.includes('two')) throw new Error(`udp echo: ${echo}`);
      await sh(g!, `(printf 'anyone?\\n'; sleep 1) | socat -t 1 - UDP:10.0.2.2:${world.closed}`, true);
      await sh(g!, 'ping -c 1 -s 3000 -W 2 10.0.2.2');
    },
  },
  {
    name: 'dhcpcd-lease',
    shows: 'dhcpcd (Debian\'s default dhcpcd.conf, hooks off): its own option set and client id, DISCOVER … ACK, three ARP probes of the offered address and an announcement before it binds',
    tools: ['dhcpcd'],
    async run({ guests: [g] }) {
      // --script /bin/true: no hooks (they would edit the host's resolv.conf: the namespace shares the file system).
      const out = await sh(g!, 'dhcpcd -4 --oneshot --timeout 30 --script /bin/true --noipv4ll "$1"', false, 60_000);
      if (!out.includes('leased 10.0.2.15')) throw new Error(`dhcpcd got no lease: ${out}`);
    },
  },
  {
    name: 'ip-fragments',
    shows: 'IP fragments from the guest: ping -s 4000 of the gateway (the echo reassembled, its reply fragmented again), a 4000-byte UDP datagram to a loopback echo server (reassembled into one host datagram, the echo fragmented to the guest)',
    tools: ['busybox', 'socat'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      await sh(g!, 'ping -c 2 -i 0.2 -s 4000 -W 2 10.0.2.2');
      const echo = await sh(g!, `head -c 4000 /dev/zero | tr '\\0' u | socat -b 8192 -t 1 - UDP:10.0.2.2:${world.udpEcho} | wc -c`);
      if (echo.trim() !== '4000') throw new Error(`fragmented udp echo: ${echo}`);
    },
  },
  {
    name: 'tcp-lossy-link',
    shows: '--link-loss 3: curl GET of 300 KB through a link that drops 3 % of frames each way (seeded: the replay drops the same ones); the guest\'s SACK blocks and the retransmissions that fill the holes',
    tools: ['curl'],
    args: ['--link-loss', '3'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      const out = await sh(g!, `curl -s -m 60 -o /dev/null -w '%{size_download}' http://10.0.2.2:${world.http}/300000`, false, 90_000);
      if (out.trim() !== '300000') throw new Error(`lossy download: ${out}`);
    },
  },
  {
    name: 'tcp-zero-window',
    shows: 'a reader that stops: Python\'s socket with a 4 KiB receive buffer asks for 300 KB, reads nothing for 3 s (its window closes to zero; the NAT keeps the rest queued until it opens), then reads it all',
    tools: ['python3'],
    async run({ world, guests: [g] }) {
      await staticAddress(g!, 15);
      const py = [
        'import socket, time',
        's = socket.socket()',
        's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
        `s.connect(("10.0.2.2", ${world.http}))`,
        's.sendall(b"GET /300000 HTTP/1.0\\r\\n\\r\\n")',
        'time.sleep(3)',
        'n = 0',
        'while True:',
        '    d = s.recv(65536)',
        '    if not d: break',
        '    n += len(d)',
        'print(n)',
      ].join('\n');
      const out = await sh(g!, `/usr/bin/python3 -c '${py}'`, false, 60_000);
      if (Number(out.trim()) < 300_000) throw new Error(`zero-window read: ${out}`);
    },
  },
  {
    name: 'qemu-guest',
    shows: 'a Linux guest under QEMU (TCG) with its e1000 on -netdev dgram: the kernel\'s own frames from boot, busybox udhcpc, pings of the gateway and the DNS address (the test guest of scripts/build-qemu-guest.sh)',
    tools: ['qemu', 'busybox'],
    guests: 0,
    async run({ daemon }) {
      const { host, port } = daemon.dgram();
      const local = await freeTcpUdpPort();
      const qemu = new Proc('qemu guest', 'qemu-system-x86_64', [
        '-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
        '-kernel', QEMU_KERNEL, '-initrd', QEMU_INITRD, '-append', 'console=ttyS0 quiet panic=-1 nic=e1000',
        '-netdev', `dgram,id=n0,remote.type=inet,remote.host=${host},remote.port=${port},local.type=inet,local.host=127.0.0.1,local.port=${local}`,
        '-device', 'e1000,netdev=n0,romfile=',
      ]);
      try {
        await qemu.waitFor(/TSLIRP-DONE/, 180_000);
        if (!qemu.output.includes('TSLIRP-DHCP-OK') || !qemu.output.includes('TSLIRP-PING-GW-OK')) throw new Error(`the QEMU guest did not lease and ping:\n${qemu.tail()}`);
        await qemu.wait(10_000);
      } finally {
        await qemu.stop();
      }
    },
  },
  {
    name: 'hostfwd-tcp',
    shows: '--hostfwd tcp: a host client connects to the forwarded loopback port; the guest (socat) answers and closes',
    tools: ['socat'],
    forwards: [(p) => `tcp:127.0.0.1:${p}-:8080`],
    async run({ fwd, guests: [g] }) {
      await g!.dhcp();
      const server = g!.spawn('guest socat', ['socat', 'TCP-LISTEN:8080,reuseaddr', 'SYSTEM:echo hello from the guest']);
      try {
        await until(() => spawnSync('ip', ['netns', 'exec', g!.ns, 'ss', '-ltn'], { encoding: 'utf8' }).stdout.includes('8080'), 5_000);
        const got = await tcpRequest(fwd[0]!, 'hi\n');
        if (!got.includes('hello from the guest')) throw new Error(`hostfwd tcp: ${got}`);
      } finally {
        await server.stop();
      }
    },
  },
  {
    name: 'hostfwd-udp',
    shows: '--hostfwd udp: a host client sends a datagram to the forwarded loopback port; the guest (socat) echoes it',
    tools: ['socat'],
    forwards: [(p) => `udp:127.0.0.1:${p}-:5353`],
    async run({ fwd, guests: [g] }) {
      await g!.dhcp();
      const server = g!.spawn('guest socat', ['socat', '-T', '5', 'UDP-LISTEN:5353', 'PIPE']);
      try {
        await until(() => spawnSync('ip', ['netns', 'exec', g!.ns, 'ss', '-lun'], { encoding: 'utf8' }).stdout.includes('5353'), 5_000);
        const got = await udpRequest(fwd[0]!, 'ping over the forward');
        if (got !== 'ping over the forward') throw new Error(`hostfwd udp: '${got}'`);
      } finally {
        await server.stop();
      }
    },
  },
  {
    name: 'two-guests',
    shows: 'two guests on one network (--network lab): both lease (10.0.2.15, .16), ping each other across the switch, and one fetches over the NAT',
    tools: ['busybox', 'curl'],
    guests: 2,
    args: ['--network', 'lab'],
    async run({ world, guests: [a, b] }) {
      await a!.dhcp();
      await b!.dhcp();
      await sh(a!, 'ping -c 2 -i 0.2 -W 2 10.0.2.16');
      await sh(b!, `curl -s -o /dev/null http://10.0.2.2:${world.http}/20000`);
    },
  },
];

/** Sends `text` to 127.0.0.1:port and resolves with everything read until the peer closes. */
function tcpRequest(port: number, text: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => { s.destroy(); rej(new Error(`no answer on ${port}`)); }, 10_000);
    s.on('connect', () => s.end(text));
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', rej);
    s.on('close', () => { clearTimeout(timer); res(got); });
  });
}

/** One datagram to 127.0.0.1:port, retried every 500 ms until an answer comes (the guest's socket may still be opening). */
function udpRequest(port: number, text: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = createSocket('udp4');
    let tries = 0;
    const send = (): void => {
      if (++tries > 10) { clearInterval(timer); s.close(); rej(new Error(`no answer on ${port}`)); return; }
      s.send(text, port, '127.0.0.1');
    };
    const timer = setInterval(send, 500);
    s.on('message', (m) => { clearInterval(timer); s.close(); res(m.toString()); });
    send();
  });
}

/** Starts the host-side servers; returns them and a stop function. */
async function startWorld(dir: string): Promise<{ world: World; stop: () => Promise<void> }> {
  const closers: (() => Promise<void>)[] = [];
  const listen = async (srv: ReturnType<typeof createServer> | ReturnType<typeof createHttpServer>): Promise<number> => {
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => { srv.close(() => r()); }));
    return (srv.address() as { port: number }).port;
  };
  const http = await listen(createHttpServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      if (req.method === 'POST') res.end(`got ${n}\n`);
      else res.end(Buffer.alloc(Math.min(Number(/\d+/.exec(req.url ?? '')?.[0] ?? 0), 50_000_000), 0x61));
    });
  }));
  const conns = new Set<Socket>();
  const track = (s: Socket): void => { conns.add(s); s.on('close', () => conns.delete(s)); s.on('error', () => undefined); };
  const halfClose = await listen(createServer({ allowHalfOpen: true }, (s) => {
    track(s);
    let n = 0;
    s.on('data', (d) => (n += d.length));
    s.on('end', () => s.end(`got ${n} bytes\n`));
  }));
  const reset = await listen(createServer((s) => { track(s); s.once('data', () => s.resetAndDestroy()); }));
  const hold = await listen(createServer((s) => { track(s); s.resume(); }));
  closers.push(() => { for (const s of conns) s.destroy(); return Promise.resolve(); });
  const echo = createSocket('udp4');
  echo.on('message', (m, from) => echo.send(m, from.port, from.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => echo.close(() => r())));
  const closedSock = createServer();
  const closed = await new Promise<number>((r) => closedSock.listen(0, '127.0.0.1', () => r((closedSock.address() as { port: number }).port)));
  await new Promise<void>((r) => closedSock.close(() => r()));
  const dnsPort = await freeTcpUdpPort();
  const dnsmasq = new Proc('dnsmasq', 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', `--port=${dnsPort}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
    '--address=/corpus.test/192.0.2.10', `--txt-record=big.corpus.test,${'x'.repeat(250)},${'y'.repeat(250)},${'z'.repeat(250)}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--log-facility=-',
  ]);
  closers.push(() => dnsmasq.stop());
  await dnsmasq.waitFor(/started, version/, 5_000);
  return {
    world: { http, halfClose, reset, hold, udpEcho: (echo.address()).port, dns: dnsPort, closed },
    stop: async () => { for (const c of closers.reverse()) await c(); },
  };
}

/** A loopback port free for TCP and UDP (taken and released). */
async function freeTcpUdpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const s = createServer();
    const port = await new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
    await new Promise<void>((r) => s.close(() => r()));
    const u = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => { u.once('error', () => r(false)); u.bind(port, '127.0.0.1', () => r(true)); });
    if (ok) { await new Promise<void>((r) => u.close(() => r())); return port; }
  }
  throw new Error('no free loopback port');
}

function version(tool: string): string {
  const run = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim() !== '')?.trim() ?? tool;
  };
  switch (tool) {
    case 'busybox': return run('busybox', ['--help']).replace(/ multi-call binary.*/, '');
    case 'dhclient': return run('dhclient', ['--version']);
    case 'dhcpcd': return run('dhcpcd', ['--version']);
    case 'qemu': return run('qemu-system-x86_64', ['--version']);
    case 'python3': return run('/usr/bin/python3', ['--version']);
    case 'arping': return run('arping', ['-V']);
    case 'dig': return `dig ${run('dig', ['-v']).replace(/^DiG /, '')}`;
    case 'dnsmasq': return run('dnsmasq', ['--version']).replace(/ Copyright.*/, '');
    case 'curl': return run('curl', ['--version']).split(' ').slice(0, 2).join(' ');
    case 'socat': return spawnSync('socat', ['-V'], { encoding: 'utf8' }).stdout.split('\n').find((l) => l.startsWith('socat version'))?.replace(/ on .*/, '') ?? 'socat';
    default: return tool;
  }
}

async function recordOne(c: Capture, world: World): Promise<string> {
  const dir = tempDir(`tslirp-corpus-${c.name}-`);
  const fwd: number[] = [];
  const guests: NetnsGuest[] = [];
  let daemon: Daemon | undefined;
  try {
    for (const _ of c.forwards ?? []) fwd.push(await freeTcpUdpPort());
    daemon = await startDaemon([
      '--dgram', 'udp:127.0.0.1:0', '--record', dir, '--dns-upstream', `127.0.0.1:${world.dns}`,
      ...(c.forwards ?? []).flatMap((rule, i) => ['--hostfwd', rule(fwd[i]!)]),
      ...(c.args ?? []),
    ]);
    for (let i = 0; i < (c.guests ?? 1); i++) {
      const g = await NetnsGuest.create({ kind: 'dgram', ...daemon.dgram() });
      guests.push(g);
      // IPv6 off: the captures stay about what they show (no router solicitations, no MLD reports).
      await g.sh('sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1');
    }
    await c.run({ world, daemon, guests, fwd });
  } finally {
    for (const g of guests) await g.destroy();
    const exit = await daemon?.stop();
    if (exit !== undefined && exit.code !== 0) process.stdout.write(`  daemon exited ${JSON.stringify(exit)}\n`);
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.pcapng'));
  if (files.length !== 1) throw new Error(`expected one recording in ${dir}, found ${files.join(', ') || 'none'}`);
  return join(dir, files[0]!);
}

const README = join(HERE, 'README.md');
const BEGIN = '<!-- captures: written by pcaps/record.ts -->';
const END = '<!-- end of captures -->';

function writeProvenance(lines: ReadonlyMap<string, string>): void {
  const text = readFileSync(README, 'utf8');
  const at = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (at < 0 || end < at) throw new Error(`${README} lacks the ${BEGIN} … ${END} markers`);
  const old = new Map<string, string>();
  for (const l of text.slice(at + BEGIN.length, end).split('\n')) {
    const m = /^\| `([^`]+)\.pcapng` \|/.exec(l);
    if (m !== null) old.set(m[1]!, l);
  }
  for (const [k, v] of lines) old.set(k, v);
  const rows = [...old.keys()].sort().map((k) => old.get(k)!);
  const table = ['', '| capture | guest and tools | what it shows |', '|---|---|---|', ...rows, ''].join('\n');
  writeFileSync(README, text.slice(0, at + BEGIN.length) + table + text.slice(end));
}

async function main(): Promise<number> {
  const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('dig'), command('arping'), command('dnsmasq'), command('dhclient'), command('dhcpcd'), command('python3'), command('qemu-system-x86_64'), command('ss')]);
  if (missing.length > 0) {
    process.stderr.write(`pcaps/record.ts: missing ${missing.join(', ')}\n`);
    return 2;
  }
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !CAPTURES.some((c) => c.name === w));
  if (unknown.length > 0) {
    process.stderr.write(`pcaps/record.ts: unknown capture(s) ${unknown.join(', ')}; the captures are ${CAPTURES.map((c) => c.name).join(', ')}\n`);
    return 2;
  }
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const scratch = tempDir('tslirp-corpus-world-');
  const { world, stop } = await startWorld(scratch);
  const provenance = new Map<string, string>();
  let failed = 0;
  try {
    for (const c of CAPTURES.filter((x) => wanted.length === 0 || wanted.includes(x.name))) {
      const target = join(HERE, `${c.name}.pcapng`);
      process.stdout.write(`${c.name}: recording\n`);
      try {
        const before = existsSync(target) ? await replay(target) : undefined;
        const file = await recordOne(c, world);
        const check = await replay(file);
        if (check.exitCode !== 0) throw new Error(`the new recording does not replay:\n${formatReport(check)}`);
        copyFileSync(file, target);
        rmSync(dirname(file), { recursive: true, force: true });
        const size = readFileSync(target).length;
        if (before === undefined) process.stdout.write(`  new: ${check.frames} frames, ${size} bytes, replays byte for byte\n`);
        else if (before.exitCode === 0) process.stdout.write(`  unchanged behaviour: the old capture still replays (${before.frames} frames); re-recorded: ${check.frames} frames, ${size} bytes\n`);
        else process.stdout.write(`  CHANGED: the old capture no longer replays:\n${formatReport(before).replace(/^/gm, '    ')}  re-recorded: ${check.frames} frames, ${size} bytes\n`);
        const guest = c.guests === 0 ? `Linux ${readFileSync(join(QEMU_GUEST_DIR, 'kernel-version'), 'utf8').trim()} under QEMU (TCG), e1000 ↔ -netdev dgram` : `Linux ${kernel} network namespace${(c.guests ?? 1) > 1 ? 's' : ''}, TAP ↔ socat ↔ --dgram`;
        provenance.set(c.name, `| \`${c.name}.pcapng\` | ${guest}; ${c.tools.map(version).join(', ')} | ${c.shows} |`);
      } catch (e) {
        failed++;
        process.stdout.write(`  FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  } finally {
    await stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  writeProvenance(provenance);
  process.stdout.write(`${provenance.size} capture(s) recorded, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
