/**
 * Real Linux network stacks as guests: network namespaces whose TAP interface is bridged to
 * the daemon over its dgram link (socat) and its stream links (a guest-less QEMU hub).
 * busybox udhcpc, ping and arping, tcpdump and tshark judge the daemon.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, root, run, shouldRun, tempDir, type Bridge } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('qemu-system-x86_64'), command('busybox'), command('tcpdump'), command('tshark')]);
const enabled = shouldRun('netns.int.test.ts (network namespaces bridged to the daemon)', missing);

const DOMAIN = 'tslirp.test';
const SEARCH = ['a.tslirp.test', 'b.example'];
const HOSTNAME = 'nsguest';
const MTU = 1400;

describe.skipIf(!enabled)('network namespace guests', () => {
  let d: Daemon;
  let pcapDir: string;
  let sockDir: string;
  const guests: NetnsGuest[] = [];
  const createdNs: string[] = [];
  const track = (g: NetnsGuest): NetnsGuest => {
    guests.push(g);
    createdNs.push(g.ns);
    return g;
  };

  beforeAll(async () => {
    pcapDir = tempDir('tslirp-pcap-');
    sockDir = tempDir('tslirp-sock-');
    d = await startDaemon([
      '--dgram', 'udp:127.0.0.1:0',
      '--stream', `unix:${join(sockDir, 'tslirp.sock')}`,
      '--stream', 'tcp:127.0.0.1:0',
      '--domainname', DOMAIN,
      '--dnssearch', SEARCH.join(','),
      '--hostname', HOSTNAME,
      '--mtu', String(MTU),
      '--pcap', `${pcapDir}/`, // a directory: one classic pcap per session
      '--log-level', 'info',
    ]);
  });

  afterAll(async () => {
    for (const g of guests) await g.destroy();
    await d?.stop();
    rmSync(sockDir, { recursive: true, force: true });
    rmSync(pcapDir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, qemu, busybox, tcpdump, tshark, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  const bridges: [string, () => Bridge][] = [
    ['dgram (socat TAP <-> UDP)', () => ({ kind: 'dgram', ...d.dgram() })],
    ['stream over a unix socket (QEMU hub)', () => ({ kind: 'stream-unix', path: d.streamPath() })],
    ['stream over TCP (QEMU hub)', () => ({ kind: 'stream-tcp', ...d.streamTcp() })],
  ];
  /** Guests that got a lease, by bridge label, for the isolation test. */
  const leased = new Map<string, NetnsGuest>();

  for (const [label, bridge] of bridges) {
    describe(label, () => {
      let g: NetnsGuest;
      beforeAll(async () => {
        g = track(await NetnsGuest.create(bridge()));
      });

      it('udhcpc gets 10.0.2.15/24 with router, DNS, domain, search, hostname and MTU', async () => {
        const { result, lease } = await g.dhcp();
        expect(lease, `udhcpc output:\n${result.stdout}${result.stderr}\ndaemon:\n${d.dump()}`).toBeDefined();
        expect(lease).toMatchObject({
          ip: '10.0.2.15',
          subnet: '255.255.255.0',
          mask: '24',
          router: '10.0.2.2',
          dns: '10.0.2.3',
          serverid: '10.0.2.2',
          lease: '86400',
          domain: DOMAIN,
          hostname: HOSTNAME,
          mtu: String(MTU),
        });
        // busybox prints option 119 as a space-separated list.
        expect(lease!['search']!.split(/\s+/).filter((s) => s !== '')).toEqual(SEARCH);
        expect(result.stdout + result.stderr).toMatch(/lease of 10\.0\.2\.15 obtained from 10\.0\.2\.2, lease time 86400/);
        const addr = await g.sh('ip -4 addr show dev "$1"; ip route', [g.tap]);
        expect(addr.stdout).toContain('inet 10.0.2.15/24');
        expect(addr.stdout).toContain('default via 10.0.2.2');
        leased.set(label, g);
      }, 40_000);

      it('ping 10.0.2.2 (gateway) and 10.0.2.3 (DNS) answer', async () => {
        for (const target of ['10.0.2.2', '10.0.2.3']) {
          const r = await g.exec(['busybox', 'ping', '-c', '3', '-W', '2', target], 20_000);
          expect(r.stdout, `${r.stdout}${r.stderr}`).toMatch(/3 packets transmitted, 3 packets received, 0% packet loss/);
          expect([...r.stdout.matchAll(new RegExp(`bytes from ${target.replace(/\./g, '\\.')}: seq=`, 'g'))]).toHaveLength(3);
        }
      }, 40_000);

      it('arping sees the gateway', async () => {
        const r = await g.exec(['busybox', 'arping', '-c', '2', '-w', '5', '-I', g.tap, '10.0.2.2'], 15_000);
        expect(r.stdout, r.stdout + r.stderr).toMatch(/Received [12] response/);
        expect(r.stdout).toMatch(/reply from 10\.0\.2\.2 \[([0-9a-f]{2}:){5}[0-9a-f]{2}\]/i);
      }, 20_000);
    });
  }

  it('connections are isolated networks: each got 10.0.2.15, none sees another one\'s ARP', async () => {
    expect([...leased.keys()], 'every bridge must have got its lease').toHaveLength(bridges.length);
    // A second dgram peer (another UDP source port) is yet another network.
    const extra = track(await NetnsGuest.create({ kind: 'dgram', ...d.dgram() }));
    const { lease } = await extra.dhcp();
    expect(lease?.['ip']).toBe('10.0.2.15');
    const all = [...leased.values(), extra];
    // 10.0.2.99 is nobody: the ARP request is broadcast on the sender's network only.
    const filter = 'arp and arp[24:4] = 0x0a000263';
    for (const sender of all) {
      const captures = all.map((g) => g.spawn(`tcpdump ${g.ns}`, ['tcpdump', '-i', g.tap, '-nn', '-l', '-c', '1', filter]));
      await Promise.all(captures.map((c) => c.waitFor(/listening on/, 5_000)));
      await sender.exec(['busybox', 'arping', '-c', '2', '-w', '3', '-I', sender.tap, '10.0.2.99'], 10_000);
      await new Promise((r) => setTimeout(r, 500));
      for (const [i, c] of captures.entries()) {
        await c.stop();
        const saw = c.output.includes('ARP, Request who-has 10.0.2.99');
        expect(saw, `${all[i]!.ns} ${all[i] === sender ? 'must' : 'must not'} see ${sender.ns}'s ARP:\n${c.output}`).toBe(all[i] === sender);
      }
    }
  }, 60_000);

  it('the --pcap capture reads cleanly with tcpdump and tshark and holds the DHCP and ICMP exchange', async () => {
    for (const g of guests.splice(0)) await g.destroy();
    const exit = await d.stop();
    expect(exit.signal === null || exit.signal === 'SIGTERM', d.dump()).toBe(true);
    const files = readdirSync(pcapDir).map((f) => join(pcapDir, f)).filter((f) => statSync(f).isFile() && statSync(f).size > 24);
    expect(files.length, `captures in ${pcapDir}: ${readdirSync(pcapDir).join(', ')}`).toBeGreaterThanOrEqual(bridges.length);
    let sawDhcp = 0;
    let sawEcho = 0;
    for (const f of files) {
      const td = await run('tcpdump', ['-r', f, '-nn'], 30_000);
      expect(td.code, td.stderr).toBe(0);
      expect(td.stderr.replace(/^reading from file .*\n/m, '')).not.toMatch(/warning|truncated|bogus|invalid/i);
      const ts = await run('tshark', ['-r', f, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'], 30_000);
      expect(ts.code, ts.stderr).toBe(0);
      // tshark always notes that it runs as root; anything else on stderr is a warning about the file.
      expect(ts.stderr.replace(/^Running as user "root".*$/m, '').trim(), `tshark warnings on ${f}`).toBe('');
      expect(ts.stdout).not.toMatch(/Malformed|incorrect|Bad checksum/i);
      // Wireshark's expert system flags bad IPv4/UDP/ICMP checksums and malformed fields at warning or above.
      const expert = await run('tshark', ['-r', f, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-Y', '_ws.expert.severity >= "Warning"'], 30_000);
      expect(expert.code, expert.stderr).toBe(0);
      expect(expert.stdout.trim(), `packets with expert warnings in ${f}`).toBe('');
      if (ts.stdout.includes('DHCP ACK') && ts.stdout.includes('DHCP Discover')) sawDhcp++;
      if (ts.stdout.includes('Echo (ping) request') && ts.stdout.includes('Echo (ping) reply')) sawEcho++;
    }
    expect(sawDhcp).toBeGreaterThanOrEqual(bridges.length);
    expect(sawEcho).toBeGreaterThanOrEqual(bridges.length);
  }, 60_000);

  it('left no namespace behind', () => {
    expect(createdNs.length).toBeGreaterThan(0);
    const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(createdNs.filter((ns) => listed.split('\n').some((l) => l.split(' ')[0] === ns))).toEqual([]);
  });
});
