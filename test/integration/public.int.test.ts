/**
 * A daemon facing strangers, with real peers: WebSocket tokens (a namespace guest behind a
 * WebSocket relay client, with and without a token; a v86 guest whose relay_url carries one)
 * and the public egress default (a daemon inside a namespace of its own, where a private
 * address and 169.254.169.254 are local addresses, so a daemon that got it wrong reaches
 * nothing outside: its guest's connections to the host's loopback through the gateway, to the
 * private address and to the metadata address are refused at once, tcpdump in that namespace
 * sees no SYN leave, and an --egress-allow rule opens one of them).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import {
  command,
  daemon as daemonReq,
  missingRequirements,
  must,
  NetnsGuest,
  parseGuestConsole,
  Proc,
  root,
  run,
  SEABIOS,
  shouldRun,
  tempDir,
  uniqueName,
  V86_GUEST_DIR,
  v86GuestRequirements,
  VGABIOS,
  WsBridgeRefused,
  type RunResult,
} from '../helpers/guests.js';

const V86_RUNNER = join(REPO_ROOT, 'scripts', 'run-v86-guest.mjs');
const missing = missingRequirements([
  root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('tcpdump'), command('python3'), command('ss'),
  ...v86GuestRequirements(),
]);
const enabled = shouldRun('public.int.test.ts (tokens and the egress policy with real guests)', missing);

/** v86 boot under Node (v86.int.test.ts's budget: 3× its worst loaded boot). */
const V86_BOOT_LIMIT_S = 300;
/**
 * "At once": a refusal answered by RST or ICMP takes milliseconds; a connection that went out
 * and hung would take curl's whole --connect-timeout (20 s). 8 s leaves the loaded 2-core
 * machine a wide margin while telling the two apart.
 */
const AT_ONCE_MS = 8_000;

const TOKEN = 'test-token-0123456789abcdef';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const out = (r: RunResult): string => `${r.stdout}${r.stderr}${r.timedOut ? ' (timed out)' : ''}`;

/** curl from the guest: its exit code (0 fetched, 7 could not connect), output and time. */
async function curl(g: NetnsGuest, url: string): Promise<{ code: number | null; body: string; ms: number; r: RunResult }> {
  const t0 = Date.now();
  const r = await g.exec(['curl', '-sS', '--connect-timeout', '20', '-m', '30', url], 40_000);
  return { code: r.code, body: r.stdout, ms: Date.now() - t0, r };
}

/** A UDP datagram from the guest to `host:port` and what came back: 'reply', an errno name, or 'timeout'. */
async function udpProbe(g: NetnsGuest, host: string, port: number): Promise<string> {
  const script = `
import socket, errno, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b'probe')
try:
    s.recv(100); print('reply')
except socket.timeout:
    print('timeout')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
`;
  const r = await g.exec(['python3', '-c', script, host, String(port)], 20_000);
  return r.stdout.trim() || out(r);
}

describe.skipIf(!enabled)('a public daemon: tokens and the egress policy, with real guests', () => {
  const guests: NetnsGuest[] = [];
  const daemons: Daemon[] = [];
  const procs: Proc[] = [];
  const namespaces: string[] = [];
  let dir: string;
  let tokenFile: string;
  beforeAll(() => {
    dir = tempDir('tslirp-public-');
    tokenFile = join(dir, 'tokens');
    writeFileSync(tokenFile, `# test tokens\n${TOKEN}\nlab-only-token-0123456789 network=lab\n`);
  });
  afterAll(async () => {
    for (const g of guests) await g.destroy();
    for (const p of procs) await p.stop();
    for (const d of daemons) await d.stop();
    for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('rm', ['-rf', dir]);
  });

  it('has what it needs (root, ip, socat, busybox, curl, tcpdump, python3, v86 and its guest, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  describe('WebSocket tokens', () => {
    let d: Daemon;
    beforeAll(async () => {
      // A loopback listener marked public, as one behind a reverse proxy: tokens required.
      d = await startDaemon(['--ws', '127.0.0.1:0,public', '--ws-token-file', tokenFile, '--log-level', 'info']);
      daemons.push(d);
    });

    it('a namespace guest without a token gets HTTP 401; with the wrong one too; with a token it gets a lease', async () => {
      const url = d.wsUrl();
      await expect(NetnsGuest.create({ kind: 'ws', url })).rejects.toThrow(WsBridgeRefused);
      await expect(NetnsGuest.create({ kind: 'ws', url, headers: { Authorization: 'Bearer not-the-token-0123456789' } })).rejects.toThrow(/HTTP 401/);
      const g = await NetnsGuest.create({ kind: 'ws', url: `${url}?token=${TOKEN}` });
      guests.push(g);
      const { lease, result } = await g.dhcp();
      expect(lease?.['ip'], out(result)).toBe('10.0.2.15');
      // Its network is public now: the gateway's loopback is refused at once.
      const c = await curl(g, 'http://10.0.2.2:9/');
      expect(c.code, out(c.r)).toBe(7);
      expect(c.ms).toBeLessThan(AT_ONCE_MS);
      expect(d.alive(), d.dump()).toBe(true);
      expect(JSON.stringify(d.logs)).not.toContain(TOKEN);
    }, 90_000);

    it('a token limited to a network may join it and no other', async () => {
      const url = d.wsUrl();
      await expect(NetnsGuest.create({ kind: 'ws', url: `${url}?network=other&token=lab-only-token-0123456789` })).rejects.toThrow(/HTTP 403/);
      const g = await NetnsGuest.create({ kind: 'ws', url: `${url}?network=lab&token=lab-only-token-0123456789` });
      guests.push(g);
      const { lease, result } = await g.dhcp();
      expect(lease?.['ip'], out(result)).toBe('10.0.2.15');
    }, 90_000);

    it('a v86 guest whose relay_url carries the token boots, leases and pings', async () => {
      const v86 = new Proc('v86 token', process.execPath, [
        V86_RUNNER, '--relay', `${d.wsUrl()}?token=${TOKEN}`, '--nic', 'virtio', '--guest', V86_GUEST_DIR, '--bios', SEABIOS, '--vgabios', VGABIOS, '--timeout', String(V86_BOOT_LIMIT_S),
      ]);
      procs.push(v86);
      const started = Date.now();
      const exit = await v86.wait((V86_BOOT_LIMIT_S + 10) * 1000);
      console.log(`public.int: v86 guest with a token finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const report = parseGuestConsole(v86.output);
      const context = `guest console:\n${v86.tail(4000)}\ndaemon:\n${d.dump().slice(-4000)}`;
      expect(exit, context).toEqual({ code: 0, signal: null });
      expect(report.lease?.['ip'], context).toMatch(/^10\.0\.2\.\d+$/);
    }, (V86_BOOT_LIMIT_S + 30) * 1000);
  });

  describe('egress from a public listener, the daemon inside a namespace of its own', () => {
    let ns: string;
    let capture: string;
    let tcpdump: Proc;
    const PRIVATE = '10.77.0.1';
    const METADATA = '169.254.169.254';
    beforeAll(async () => {
      ns = uniqueName('tslegr');
      namespaces.push(ns);
      must('ip', ['netns', 'add', ns]);
      must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // Local addresses of the namespace, on its loopback device (no kernel module needed).
      must('ip', ['-n', ns, 'addr', 'add', `${PRIVATE}/32`, 'dev', 'lo']);
      must('ip', ['-n', ns, 'addr', 'add', `${METADATA}/32`, 'dev', 'lo']);
      const www = join(dir, 'www');
      mkdirSync(www, { recursive: true });
      writeFileSync(join(www, 'index.html'), 'secret\n');
      // The three places a stranger's guest must not reach, each with a server.
      for (const [addr, port] of [['127.0.0.1', 8080], [PRIVATE, 8080], [METADATA, 80]] as const) {
        procs.push(new Proc(`httpd ${addr}`, 'ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', `${addr}:${port}`, '-h', www]));
      }
      // UDP servers too (an echo by socat), for the ICMP answer.
      procs.push(new Proc('udp echo', 'ip', ['netns', 'exec', ns, 'socat', `UDP4-RECVFROM:5300,bind=${PRIVATE},fork`, 'EXEC:cat']));
      capture = join(dir, 'syn.pcap');
      tcpdump = new Proc('tcpdump', 'ip', ['netns', 'exec', ns, 'tcpdump', '-i', 'any', '-nn', '-U', '--immediate-mode', '-w', capture, 'tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0']);
      procs.push(tcpdump);
      await tcpdump.waitFor(/listening on/, 15_000);
      // The servers listen before any guest tries them (a refusal must be the policy's, not a closed port's).
      const end = Date.now() + 10_000;
      while (Date.now() < end && (await run('ip', ['netns', 'exec', ns, 'ss', '-Hltn'], 5_000)).stdout.split('\n').filter((l) => l.trim() !== '').length < 3) await sleep(100);
    });

    /** The port of the marker SYN: nothing listens there, the namespace's own connect() sends it. */
    const MARKER = '127.0.0.1:9';
    let markers = 0;
    /**
     * SYNs tcpdump saw, as "dst:port" words, marker SYNs left out. Absence cannot be waited for,
     * so a marker SYN is sent from the namespace after the guest's attempts, and the capture is
     * read until every marker sent so far is in it: then every earlier SYN is in it too.
     */
    async function synsSeen(): Promise<string[]> {
      markers += 1;
      await run('ip', ['netns', 'exec', ns, 'python3', '-c',
        'import socket\ns=socket.socket()\ns.settimeout(2)\ntry: s.connect(("127.0.0.1", 9))\nexcept OSError: pass'], 10_000);
      const end = Date.now() + 20_000;
      for (;;) {
        const r = await run('tcpdump', ['-nn', '-r', capture], 10_000);
        const syns = r.stdout.split('\n').map((l) => / > ([\d.]+)\.(\d+):/.exec(l)).filter((m) => m !== null).map((m) => `${m[1]}:${m[2]}`);
        const seen = syns.filter((s) => s === MARKER).length;
        if (seen >= markers || Date.now() > end) {
          expect(seen, `marker SYNs in the capture:\n${r.stdout}${r.stderr}`).toBeGreaterThanOrEqual(markers);
          return syns.filter((s) => s !== MARKER);
        }
        await sleep(200);
      }
    }

    async function guestOf(args: readonly string[], logLevel = 'info'): Promise<{ d: Daemon; g: NetnsGuest }> {
      // A non-loopback dgram listener (the namespace's private address), so ,public is required.
      const d = await startDaemon(['--dgram', `udp:${PRIVATE}:0,public`, ...args, '--log-level', logLevel], { netns: ns });
      daemons.push(d);
      const l = d.dgram();
      const g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port }, ns);
      guests.push(g);
      const { lease, result } = await g.dhcp();
      expect(lease?.['ip'], `${out(result)}\n${d.dump()}`).toBe('10.0.2.15');
      return { d, g };
    }

    /** The debug lines of refused flows: `egress: PROTO flow refused by RULE`, with their fields. */
    const refusalLines = (d: Daemon): Record<string, unknown>[] => d.logs.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('egress: '));

    it('refuses the host loopback (through the gateway), a private address and the metadata address at once; no SYN leaves; logs each at debug with its rule', async () => {
      const { d, g } = await guestOf([], 'debug');
      for (const url of ['http://10.0.2.2:8080/', `http://${PRIVATE}:8080/`, `http://${METADATA}/`]) {
        const c = await curl(g, url);
        expect(c.code, `${url}: ${out(c.r)}`).toBe(7);
        expect(c.r.stderr, url).toMatch(/refused|Couldn't connect/i);
        expect(c.ms, url).toBeLessThan(AT_ONCE_MS);
      }
      // UDP gets ICMP administratively prohibited, which Linux reports as EHOSTUNREACH.
      expect(await udpProbe(g, PRIVATE, 5300)).toBe('EHOSTUNREACH');
      expect(await synsSeen()).toEqual([]);
      expect(d.alive(), d.dump()).toBe(true);
      await d.stop();
      const summary = JSON.stringify(d.logs.filter((l) => l['msg'] === 'session ended'));
      expect(summary).toMatch(/"nat\.egress-public-default":[4-9]/);
      // One debug line per refused flow attempt, naming the public default's entry that matched,
      // the guest endpoint, the destination (as addressed and as judged) and the session.
      const lines = refusalLines(d);
      const session = d.logs.find((l) => l['msg'] === 'session started')?.['session'];
      const want = [
        ['tcp', '10.0.2.2:8080', '127.0.0.1:8080', 'default public: 127.0.0.0/8'],
        ['tcp', `${PRIVATE}:8080`, `${PRIVATE}:8080`, 'default public: 10.0.0.0/8'],
        ['tcp', `${METADATA}:80`, `${METADATA}:80`, 'default public: 169.254.0.0/16'],
        ['udp', `${PRIVATE}:5300`, `${PRIVATE}:5300`, 'default public: 10.0.0.0/8'],
      ];
      for (const [protocol, destination, judged, rule] of want) {
        const line = lines.find((l) => l['destination'] === destination && l['protocol'] === protocol);
        expect(line, `${protocol} ${destination}:\n${JSON.stringify(lines, null, 1)}`).toMatchObject({
          level: 20, msg: `egress: ${protocol} flow refused by ${rule}`, rule, judged, counter: 'nat.egress-public-default', session,
        });
        expect(line!['guest']).toMatch(/^10\.0\.2\.15:\d+$/);
      }
      expect(typeof session).toBe('string');
    }, 120_000);

    it('limits the sessions of one non-loopback address (--max-sessions-per-source)', async () => {
      const d = await startDaemon(['--dgram', `udp:${PRIVATE}:0,public`, '--max-sessions-per-source', '2', '--log-level', 'info'], { netns: ns });
      daemons.push(d);
      const port = d.dgram().port;
      // Four peers on four ports of one address, each sending one frame.
      const r = await run('ip', ['netns', 'exec', ns, 'python3', '-c',
        'import socket,sys\nfor i in range(4):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((sys.argv[1],0)); s.sendto(b"\\xff"*60,(sys.argv[1],int(sys.argv[2])))',
        PRIVATE, String(port)], 20_000);
      expect(r.code, out(r)).toBe(0);
      const end = Date.now() + 10_000;
      while (Date.now() < end && !d.logs.some((l) => l['msg'] === 'link refused')) await sleep(100);
      expect(d.logs.find((l) => l['msg'] === 'link refused'), d.dump()).toMatchObject({ reason: 'session.per-source-limit' });
      expect(d.logs.filter((l) => l['msg'] === 'session started')).toHaveLength(2);
    }, 60_000);

    it('an --egress-allow rule opens one of them, and only that one', async () => {
      const { d, g } = await guestOf(['--egress-allow', `${PRIVATE},port=8080`, '--egress-allow', `${PRIVATE},port=5300`, '--egress-deny', `${METADATA},port=80`], 'debug');
      const ok = await curl(g, `http://${PRIVATE}:8080/`);
      expect(ok.code, `${out(ok.r)}\n${d.dump().slice(-3000)}`).toBe(0);
      expect(ok.body).toBe('secret\n');
      expect(await udpProbe(g, PRIVATE, 5300)).toBe('reply');
      const still = await curl(g, `http://${METADATA}/`);
      expect(still.code, out(still.r)).toBe(7);
      expect(refusalLines(d).find((l) => l['destination'] === `${METADATA}:80`), d.dump().slice(-3000)).toMatchObject({
        msg: `egress: tcp flow refused by --egress-deny ${METADATA},port=80`, counter: 'nat.egress-denied',
      });
      expect(refusalLines(d).some((l) => String(l['destination']).startsWith(`${PRIVATE}:`))).toBe(false);
      expect(await synsSeen()).toEqual([`${PRIVATE}:8080`]);
      expect(readFileSync(capture).length).toBeGreaterThan(24);
    }, 120_000);
  });
});
