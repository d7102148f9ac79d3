/**
 * `tslirp replay --host live` with a capture made elsewhere: a namespace guest (busybox udhcpc
 * and wget on a TAP) runs a session through QEMU's `-netdev user` (libslirp) on a QEMU hub,
 * captured by QEMU's `filter-dump` on the TAP's netdev (both directions, classic pcap). The
 * capture is then replayed with real host sockets against a loopback HTTP server, and tshark
 * reads tslirp's answers in the output: the DHCP offer and ack, the ARP reply, the TCP
 * handshake and the server's bytes, the guest's ACKs moved onto tslirp's sequence numbers.
 *
 * Needs root (namespaces, TAP), qemu-system-x86_64 (its libslirp), busybox and tshark.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_ENTRY } from '../helpers/daemon.js';
import { command, daemon as daemonReq, linkExists, missingRequirements, must, Proc, root, run, shouldRun, tempDir, uniqueName, until } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('qemu-system-x86_64'), command('busybox'), command('tshark')]);
const enabled = shouldRun('replay-live.int.test.ts (a libslirp session of a namespace guest, replayed with --host live)', missing);

/** The server's answer: a marker and enough bytes for several segments. */
const BODY = `hello from the host server ${'x'.repeat(4000)}`;

const tshark = (file: string, filter: string, fields: readonly string[]): string[][] => {
  const r = spawnSync('tshark', ['-r', file, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`tshark -Y '${filter}': ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
};

describe.skipIf(!enabled)('replay --host live of a libslirp capture', () => {
  let dir: string;
  let server: Server;
  let port: number;
  let capture: string;
  let guestMac: string;

  beforeAll(async () => {
    dir = tempDir('tslirp-live-');
    server = createServer((_q, r) => { r.end(BODY); });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    port = (server.address() as AddressInfo).port;
    capture = join(dir, 'libslirp.pcap');
    const ns = uniqueName('tslns');
    const tap = uniqueName('tsltap');
    // libslirp on one hub port, the TAP on the other; filter-dump sees the TAP's netdev both ways.
    const qemu = new Proc(`qemu-slirp ${tap}`, 'qemu-system-x86_64', [
      '-M', 'none', '-nodefaults', '-display', 'none',
      '-netdev', `tap,id=t0,ifname=${tap},script=no,downscript=no`,
      '-netdev', 'user,id=u0',
      '-netdev', 'hubport,id=h0,hubid=0,netdev=t0',
      '-netdev', 'hubport,id=h1,hubid=0,netdev=u0',
      '-object', `filter-dump,id=f0,netdev=t0,file=${capture}`,
    ]);
    try {
      if (!(await until(() => qemu.exit !== undefined || linkExists(tap), 15_000)) || qemu.exit !== undefined) throw new Error(`QEMU did not create ${tap}:\n${qemu.tail()}`);
      must('ip', ['netns', 'add', ns]);
      must('ip', ['link', 'set', 'dev', tap, 'netns', ns]);
      const script = join(dir, 'udhcpc.sh');
      writeFileSync(script, '#!/bin/sh\ncase "$1" in bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface"; ip route add default via "$router" ;; esac\nexit 0\n');
      chmodSync(script, 0o755);
      const sh = (s: string, timeoutMs = 30_000): ReturnType<typeof run> => run('ip', ['netns', 'exec', ns, 'sh', '-c', s, 'sh', tap], timeoutMs);
      const up = await sh('ip link set lo up && ip link set dev "$1" up && cat /sys/class/net/"$1"/address');
      guestMac = up.stdout.trim();
      const dhcp = await sh(`busybox udhcpc -i "$1" -s ${script} -f -q -n -t 5 -T 2`);
      expect(dhcp.stdout + dhcp.stderr).toMatch(/lease of 10\.0\.2\.15 obtained/);
      const wget = await sh(`busybox wget -q -O - http://10.0.2.2:${port}/`);
      expect(wget.stdout, wget.stderr).toBe(BODY);
    } finally {
      await qemu.stop();
      spawnSync('ip', ['netns', 'del', ns]);
    }
    expect(existsSync(capture)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await new Promise<void>((ok) => { if (server === undefined) ok(); else server.close(() => { ok(); }); });
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the capture holds both NATs\' sides: libslirp answered the guest', () => {
    expect(tshark(capture, 'dhcp.option.dhcp == 5 && eth.src == 52:55:0a:00:02:02', ['frame.number']).length).toBe(1);
    expect(tshark(capture, `tcp.srcport == ${port} && tcp.len > 0`, ['frame.number']).length).toBeGreaterThan(1);
  });

  it("feeds only the guest's frames to tslirp on real sockets and writes its answers: DHCP, ARP, the TCP handshake and the server's bytes", async () => {
    const out = join(dir, 'tslirp.pcapng');
    const r = await run(process.execPath, [DAEMON_ENTRY, 'replay', '--host', 'live', '--json', capture, '--out', out], 60_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ result: 'done', guestMac, guestFrom: 'dhcp', config: { net: '10.0.2.0/24', host: '10.0.2.2', dhcpstart: '10.0.2.15' }, tcpConnections: 1, tcpUnmapped: 0 });
    expect(report['skipped']).toBeGreaterThan(5); // libslirp's own answers in the capture
    // tshark opens it without complaint and decodes tslirp's answers (outbound, from the gateway MAC).
    const tslirp = 'eth.src == 52:55:0a:00:02:02';
    expect(tshark(out, `${tslirp} && dhcp.option.dhcp == 2`, ['dhcp.ip.your'])).toEqual([['10.0.2.15']]);
    expect(tshark(out, `${tslirp} && dhcp.option.dhcp == 5`, ['dhcp.ip.your'])).toEqual([['10.0.2.15']]);
    expect(tshark(out, `${tslirp} && arp.opcode == 2`, ['arp.src.proto_ipv4', 'arp.dst.hw_mac'])).toEqual([['10.0.2.2', guestMac]]);
    expect(tshark(out, `${tslirp} && tcp.flags.syn == 1 && tcp.flags.ack == 1`, ['tcp.srcport']).map((l) => l[0])).toEqual([String(port)]);
    // The server's bytes, in order, from tslirp to the guest.
    const data = tshark(out, `${tslirp} && tcp.len > 0`, ['tcp.payload']).map((l) => l[0]!).join('');
    expect(Buffer.from(data, 'hex').toString('latin1')).toContain(BODY);
    // The guest's ACKs (moved onto tslirp's numbers) acknowledge the whole answer and the FIN: no RST from either side.
    expect(tshark(out, 'tcp.flags.reset == 1', ['frame.number'])).toEqual([]);
    const guestAcks = tshark(out, `eth.src == ${guestMac} && tcp.flags.ack == 1`, ['tcp.ack']).map((l) => Number(l[0]));
    expect(Math.max(...guestAcks)).toBeGreaterThanOrEqual(BODY.length);
    expect(tshark(out, 'tcp.analysis.ack_lost_segment', ['frame.number'])).toEqual([]);
  }, 90_000);

  it('refuses a capture with no Ethernet frame (exit 2) and an unreadable file (exit 3)', async () => {
    const bad = join(dir, 'bad.pcap');
    writeFileSync(bad, readFileSync(capture).subarray(0, 10));
    const r2 = await run(process.execPath, [DAEMON_ENTRY, 'replay', '--host', 'live', bad, '--out', join(dir, 'x.pcapng')], 30_000);
    expect(r2.code, r2.stderr).toBe(2);
    expect(r2.stderr).toMatch(/not a pcap or pcapng capture/);
    const r3 = await run(process.execPath, [DAEMON_ENTRY, 'replay', '--host', 'live', join(dir, 'missing.pcap'), '--out', join(dir, 'x.pcapng')], 30_000);
    expect(r3.code).toBe(3);
    const usage = await run(process.execPath, [DAEMON_ENTRY, 'replay', '--host', 'live', capture], 30_000);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/needs --out/);
  }, 90_000);
});
