/**
 * The command line's network options: --network, a listener's ,network=NAME, --net-option
 * NAME:KEY=VALUE,… (every network-shaping option, per network), --dhcp-pool and the flow
 * limits. Parsing only; the daemon's side is test/daemon/daemon.test.ts, real guests
 * test/integration/networks.int.test.ts.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NETWORK_KEYS, OPTION_NAMES, parseNetOptions, UsageError } from '../../src/cli/options.js';
import { refusal, serve } from '../helpers/cli.js';
import { ip } from '../helpers/frames.js';
import { ipv6FromBytes } from '../../src/net/addr.js';
import { parseIpv6Text } from '../../src/util/ip-text.js';

describe('cli: --network and a listener\'s network=', () => {
  it('--network names the default network; without it there is none', () => {
    expect(serve('--network', 'lab').defaultNetwork).toBe('lab');
    expect(serve().defaultNetwork).toBeUndefined();
    expect(serve().networks.size).toBe(0);
  });

  it('reads ,network=NAME at the end of every listener kind, keeping commas inside a socket path', () => {
    const c = serve('--stream', 'unix:/tmp/a,b.sock,network=lab', '--stream', 'tcp:127.0.0.1:5555,network=b-2', '--dgram', 'udp:127.0.0.1:0,network=lab', '--ws', '[::1]:0,network=w_1', '--ws', '127.0.0.1:0');
    expect(c.listeners).toEqual([
      { kind: 'stream', transport: 'unix', path: '/tmp/a,b.sock', network: 'lab' },
      { kind: 'stream', transport: 'tcp', host: '127.0.0.1', port: 5555, network: 'b-2' },
      { kind: 'dgram', host: '127.0.0.1', port: 0, network: 'lab' },
      { kind: 'ws', host: '::1', port: 0, network: 'w_1' },
      { kind: 'ws', host: '127.0.0.1', port: 0 },
    ]);
  });

  it.each([
    [['--network', 'Lab'], 'network', /--network: network name "Lab" must match \[a-z0-9\]\[a-z0-9_-\]\{0,31\}/],
    [['--network', 'x'.repeat(33)], 'network', /longer than 32 characters/],
    [['--network='], 'network', /^--network: a network name cannot be empty$/],
    [['--ws', '127.0.0.1:0,network=a b'], 'ws', /--ws: '127\.0\.0\.1:0,network=a b': network name "a b" must match/],
    [['--dgram', 'udp:127.0.0.1:0,network='], 'dgram', /a network name cannot be empty/],
    [['--stream', 'unix:/tmp/x.sock,network=-a'], 'stream', /network name "-a" must match/],
  ])('refuses %j naming --%s', (args, option, reason) => {
    const e = refusal(...args);
    expect(e.option).toBe(option);
    expect(e.message).toMatch(reason);
  });
});

describe('cli: --net-option NAME:KEY=VALUE,…', () => {
  it('gives a network its own values over the plain options, and keeps the plain ones elsewhere', () => {
    const c = serve('--mtu', '4000', '--dhcp-pool', '8', '--hostfwd', 'tcp::2222-:22', '--net-option', 'lab:mtu=9000,hostfwd=tcp::8080-web:80,tcp::8081-:81', '--net-option', 'b:dhcp-pool=4');
    expect(c.network.config).toMatchObject({ mtu: 4000, dhcpPoolSize: 8 });
    expect(c.network.forwards.map((r) => r.text)).toEqual(['tcp::2222-:22']);
    const lab = c.networks.get('lab')!;
    expect(lab.config).toMatchObject({ mtu: 9000, dhcpPoolSize: 8 });
    expect(lab.forwards).toMatchObject([
      { hostPort: 8080, guestName: 'web', guestAddr: undefined, guestPort: 80 },
      { hostPort: 8081, guestAddr: undefined, guestPort: 81 },
    ]);
    expect(c.networks.get('b')!.config).toMatchObject({ mtu: 4000, dhcpPoolSize: 4 });
    // A declared network does not inherit the plain --hostfwd rules: those are the daemon's (the default network's, or the first session's).
    expect(c.networks.get('b')!.forwards).toEqual([]);
  });

  it('takes every network key, switches bare or as on/off, lists continued after commas and repeated', () => {
    const c = serve(
      '--restrict',
      '--net-option', 'a:net=192.168.9.0/24,host=192.168.9.1,dns=192.168.9.53,dhcpstart=192.168.9.100,dhcp-pool=50,domainname=a.test,dnssearch=x.test,y.test',
      '--net-option', 'a:hostname=gw,route=10.9.0.0/16=192.168.9.1,tftp-server-name=tftp.a.test,bootfile=boot.ipxe,lease-time=600,restrict=off,disable-host-loopback',
      '--net-option', 'a:dns-record=web.a.test=192.168.9.80,dns-record=db.a.test=192.168.9.81,max-tcp-flows=10,max-udp-flows=5,max-network-tcp-flows=100,max-network-udp-flows=50',
    );
    const a = c.networks.get('a')!;
    expect(a.config).toMatchObject({
      net: ip('192.168.9.0'), host: ip('192.168.9.1'), dns: ip('192.168.9.53'), dhcpStart: ip('192.168.9.100'), dhcpPoolSize: 50,
      domainName: 'a.test', dnsSearch: ['x.test', 'y.test'], hostname: 'gw', routes: [{ dest: ip('10.9.0.0'), prefixLen: 16, gateway: ip('192.168.9.1') }],
      tftpServerName: 'tftp.a.test', bootFile: 'boot.ipxe', leaseTimeS: 600, restrict: false, disableHostLoopback: true,
    });
    expect(a.dnsRecords.map((r) => r.name)).toEqual(['web.a.test', 'db.a.test']);
    expect(a.flowLimits).toEqual({ tcp: 100, udp: 50, perGuest: { tcp: 10, udp: 5 } });
    expect(c.network.config.restrict).toBe(true);
  });

  it('has a key for exactly the network-shaping options, each a real option documented in --help', () => {
    for (const key of NETWORK_KEYS) expect(OPTION_NAMES).toContain(key);
    for (const daemonWide of ['stream', 'dgram', 'ws', 'pcap', 'dns-upstream', 'resolv-conf', 'log-level', 'network', 'net-option']) expect(NETWORK_KEYS).not.toContain(daemonWide);
  });

  it.each([
    [['--net-option', 'lab'], /--net-option: 'lab' must look like NAME:KEY=VALUE/],
    [['--net-option', 'Lab:mtu=9000'], /--net-option: 'Lab:mtu=9000': network name "Lab" must match/],
    [['--net-option', 'lab:'], /'lab:': '' is not KEY=VALUE/],
    [['--net-option', 'lab:mtuu=9000'], /lab:mtuu: not a network setting \(did you mean mtu\?\)/],
    [['--net-option', 'lab:pcap=/tmp/x'], /lab:pcap: not a network setting; the keys are net, host/],
    [['--net-option', 'lab:mtu'], /lab:mtu needs a value \(a number of bytes, 68 to 65520\)/],
    [['--net-option', 'lab:mtu=9000,mtu=1500'], /lab:mtu is given twice/],
    [['--net-option', 'lab:mtu=9000', '--net-option', 'lab:mtu=1500'], /lab:mtu is given twice/],
    [['--net-option', 'lab:restrict=maybe'], /lab:restrict: 'maybe' must be on or off/],
    [['--net-option', 'lab:mtu=70000'], /^--net-option lab:mtu: '70000' must be an integer from 68 to 65520$/],
    [['--net-option', 'lab:lease-time=5'], /^--net-option lab:lease-time: /],
    [['--net-option', 'lab:dhcp-pool=300'], /^--net-option lab:dhcp-pool: 300 addresses from 10\.0\.2\.15 pass the broadcast address/],
    [['--net-option', 'lab:hostfwd=tcp::0-:80'], /^--net-option lab:hostfwd: 'tcp::0-:80': host port 0/],
    [['--net-option', 'lab:dns-record=nonsense'], /^--net-option lab:dns-record: /],
    [['--net-option', 'lab:max-tcp-flows=9999999'], /^--net-option lab:max-tcp-flows: '9999999' must be an integer from 1 to 1048576$/],
  ])('refuses %j naming --net-option', (args, reason) => {
    const e = refusal(...args);
    expect(e.option).toBe('net-option');
    expect(e.message).toMatch(reason);
  });

  it('refuses two networks forwarding one host port, and a plain rule taking a network\'s port', () => {
    expect(refusal('--net-option', 'a:hostfwd=tcp::8080-:80', '--net-option', 'b:hostfwd=tcp::8080-:80').message).toMatch(/^--hostfwd: 'tcp::8080-:80': tcp host port 8080 is already forwarded by 'tcp::8080-:80'$/);
    expect(refusal('--hostfwd', 'tcp::8000-8010-:8000-8010', '--net-option', 'a:hostfwd=tcp:0.0.0.0:8005-web:80').option).toBe('hostfwd');
    expect(serve('--hostfwd', 'tcp::8080-:80', '--net-option', 'a:hostfwd=udp::8080-:80').networks.get('a')!.forwards).toHaveLength(1);
  });

  it('never fails with anything but a UsageError naming --net-option, whatever the text', () => {
    const keyish = fc.constantFrom(...NETWORK_KEYS, 'lab', 'x', '');
    const piece = fc.oneof(fc.tuple(keyish, fc.constantFrom('=', ''), fc.string({ maxLength: 12 })).map(([k, eq, v]) => `${k}${eq}${v}`), fc.string({ maxLength: 12 }));
    const value = fc.tuple(fc.constantFrom('lab', 'a-1', 'Bad', ''), fc.constantFrom(':', ''), fc.array(piece, { maxLength: 4 })).map(([n, c, ps]) => `${n}${c}${ps.join(',')}`);
    fc.assert(
      fc.property(fc.array(value, { maxLength: 3 }), (values) => {
        try {
          parseNetOptions(values);
        } catch (e) {
          if (!(e instanceof UsageError)) throw e;
          expect(e.option).toBe('net-option');
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('cli: --dhcp-pool and the flow limits', () => {
  it('sets every network\'s pool and limits', () => {
    const c = serve('--dhcp-pool', '100', '--max-tcp-flows', '64', '--max-udp-flows', '32', '--max-network-tcp-flows', '640', '--max-network-udp-flows', '320');
    expect(c.network.config.dhcpPoolSize).toBe(100);
    expect(c.network.flowLimits).toEqual({ tcp: 640, udp: 320, perGuest: { tcp: 64, udp: 32 } });
  });

  it.each([
    [['--dhcp-pool', '0'], 'dhcp-pool', /^--dhcp-pool: '0' must be an integer from 1 to 1024$/],
    [['--dhcp-pool', '241'], 'dhcp-pool', /^--dhcp-pool: 241 addresses from 10\.0\.2\.15 pass the broadcast address 10\.0\.2\.255: at most 240 fit$/],
    [['--max-tcp-flows', 'lots'], 'max-tcp-flows', /^--max-tcp-flows: 'lots' must be an integer from 1 to 1048576$/],
    [['--max-udp-flows', '2000', '--max-network-udp-flows', '1000'], 'max-udp-flows', /^--max-udp-flows: 2000 flows per guest is above the network's limit of 1000/],
  ])('refuses %j naming --%s', (args, option, reason) => {
    const e = refusal(...args);
    expect(e.option).toBe(option);
    expect(e.message).toMatch(reason);
  });
});

const ROOT = resolve(import.meta.dirname, '..', '..');

// One CLI start-up through tsx (~1.2 s idle, 7 s seen under load): 60 s keeps a 3× margin.
describe('cli: the listening line names the networks', { timeout: 60_000 }, () => {
  it('lists the default network, each declared network\'s settings and each listener\'s network', async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const rule = `tcp:127.0.0.1:${port}-web:80`;
    const args = ['serve', '--network', 'lab', '--ws', '127.0.0.1:0', '--dgram', 'udp:127.0.0.1:0,network=other', '--net-option', `other:mtu=9000,dhcp-pool=4,hostfwd=${rule}`];
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const deadline = Date.now() + 40_000;
    while (!out.includes('"msg":"listening"') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    const line = out.split('\n').filter((l) => l.includes('"msg":"listening"')).map((l) => JSON.parse(l) as Record<string, unknown>)[0];
    expect(line, out).toBeDefined();
    expect(line!['defaultNetwork']).toBe('lab');
    expect(line!['networks']).toMatchObject({ other: { net: '10.0.2.0/24', mtu: 9000, dhcpPool: 4, forwards: [rule] } });
    expect(Object.keys(line!['networks'] as object)).toEqual(['other']);
    expect((line!['listeners'] as Record<string, unknown>[]).map((l) => [l['kind'], l['network']])).toEqual([['dgram', 'other'], ['ws', undefined]]);
  });
});

describe('NAT behaviour options', () => {
  it('set every network plainly, and one network with --net-option', () => {
    const c = serve('--nat', 'port-restricted-cone', '--nat-udp-timeout', '300', '--net-option', 'a:nat=symmetric,outbound=127.0.0.2,nat-hairpin=off', '--net-option', 'b:nat-mapping=adm');
    expect(c.network.config.nat).toMatchObject({ mapping: 'eim', filtering: 'apdf', udpTimeoutMs: 300_000 });
    expect(c.network.config.outbound).toBeUndefined();
    expect(c.networks.get('a')!.config.nat).toMatchObject({ mapping: 'apdm', filtering: 'apdf', hairpin: false, udpTimeoutMs: 300_000 });
    expect(c.networks.get('a')!.config.outbound).toBe(ip('127.0.0.2'));
    expect(c.networks.get('b')!.config.nat).toMatchObject({ mapping: 'adm', filtering: 'apdf' });
  });

  it('--outbound6 plainly and per network; an IPv4 address is refused naming the option', () => {
    const c = serve('--outbound6', '2001:db8::2', '--net-option', 'a:outbound6=2001:db8:a::2,outbound=127.0.0.2');
    expect(c.network.config.outbound6).toBe(ipv6FromBytes(parseIpv6Text('2001:db8::2') as Uint8Array));
    expect(c.networks.get('a')!.config.outbound6).toBe(ipv6FromBytes(parseIpv6Text('2001:db8:a::2') as Uint8Array));
    expect(refusal('--outbound6', '127.0.0.2').message).toMatch(/^--outbound6: '127.0.0.2' is not an IPv6 address/);
    expect(refusal('--net-option', 'a:outbound6=fe80::1').message).toMatch(/^--net-option a:outbound6: 'fe80::1' is link-local/);
  });

  it('refuse bad values naming the option', () => {
    expect(refusal('--nat', 'cone').message).toMatch(/^--nat: 'cone' must be one of full-cone/);
    expect(refusal('--nat-udp-timeout', 'soon').message).toMatch(/^--nat-udp-timeout:/);
    expect(refusal('--net-option', 'a:outbound=nowhere').message).toMatch(/^--net-option a:outbound:/);
  });
});

describe('--ipv6, --ipv6-net, --ipv6-host, --ipv6-dns', () => {
  it('IPv6 is on with fd00::/64 by default; the plain options and --net-option keys set it per network', () => {
    const c = serve('--ipv6-net', 'fd10::/64', '--net-option', 'lab:ipv6=off', '--net-option', 'two:ipv6-net=fd20::/64,ipv6-dns=fd20::53');
    expect(c.network.config.ipv6).toMatchObject({ prefix: 'fd100000000000000000000000000000', host: 'fd100000000000000000000000000002' });
    expect(c.networks.get('lab')!.config.ipv6).toBeUndefined();
    expect(c.networks.get('two')!.config.ipv6).toMatchObject({ dns: 'fd200000000000000000000000000053', host: 'fd200000000000000000000000000002' });
    expect(serve().network.config.ipv6?.prefix).toBe('fd000000000000000000000000000000');
  });

  it('refuses what SLAAC cannot use, naming the option', () => {
    expect(refusal('--ipv6-net', 'fd00::/56').message).toMatch(/^--ipv6-net: .*\/64/);
    expect(refusal('--ipv6-host', '10.0.2.2').message).toMatch(/^--ipv6-host: /);
    expect(refusal('--net-option', 'lab:ipv6-dns=fd99::3').message).toMatch(/^--net-option lab:ipv6-dns: .*outside/);
    expect(refusal('--ipv6', 'on', '--mtu', '1000').message).toMatch(/^--ipv6: .*1280/);
  });
});
