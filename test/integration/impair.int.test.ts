/**
 * Link impairment with real peers: namespace guests (Linux TCP/IP stacks, busybox, curl) on
 * networks whose guest links are impaired, each network configured through --net-option:
 * - lossy (link-loss=2, link-reorder=1): a 20 MB download from a host-side HTTP server
 *   through the NAT arrives byte for byte (sha256), with frames lost and reordered on the way,
 *   and so does a 20 MB upload (the guest's TCP retransmitting into tslirp's);
 * - slow (link-delay=50): ping of the gateway shows ~100 ms (50 ms each way), ping between two
 *   guests ~200 ms (each frame crosses two impaired links);
 * - narrow (link-rate=20M): a 10 MB download runs at no more than the rate.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, root, shouldRun, tempDir, type RunResult } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('sha256sum')]);
const enabled = shouldRun('impair.int.test.ts (impaired guest links)', missing);

const out = (r: RunResult): string => `${r.stdout}${r.stderr}${r.timedOut ? ' (timed out)' : ''}`;
const RATE_BITS_PER_S = 20e6;

/** busybox ping's summary: min/avg/max in ms. */
function rtt(r: RunResult): { min: number; avg: number; max: number; received: number } | undefined {
  const m = /round-trip min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  const received = Number(/(\d+) packets received/.exec(r.stdout)?.[1] ?? -1);
  return m === null ? undefined : { min: Number(m[1]), avg: Number(m[2]), max: Number(m[3]), received };
}

/** The namespace's TcpExt counters (/proc/net/netstat is per network namespace). */
async function tcpExt(g: NetnsGuest): Promise<Record<string, number>> {
  const lines = (await g.exec(['cat', '/proc/net/netstat'])).stdout.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}

describe.skipIf(!enabled)('impaired guest links', () => {
  let d: Daemon;
  let server: http.Server;
  let port = 0;
  const blobs = new Map<string, Buffer>([
    ['/20m', randomBytes(20 * 1024 * 1024)],
    ['/10m', randomBytes(10 * 1024 * 1024)],
  ]);
  const guests: NetnsGuest[] = [];
  const guestOn = async (i: number): Promise<NetnsGuest> => {
    const l = d.listeners.filter((x) => x.kind === 'dgram')[i];
    if (l === undefined || !('port' in l)) throw new Error(`no dgram listener #${i}`);
    const g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port });
    guests.push(g);
    const lease = await g.dhcp();
    if (lease.lease === undefined) throw new Error(`no lease on listener #${i}: ${out(lease.result)}\n${d.dump().slice(-3000)}`);
    return g;
  };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.method === 'PUT') {
        // An upload: answered with the sha256 of what arrived.
        const hash = createHash('sha256');
        req.on('data', (c: Buffer) => hash.update(c));
        req.on('end', () => res.writeHead(200).end(hash.digest('hex')));
        return;
      }
      const blob = blobs.get(req.url ?? '');
      if (blob === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': blob.length }).end(blob);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    d = await startDaemon([
      '--dgram', 'udp:127.0.0.1:0,network=lossy',
      '--dgram', 'udp:127.0.0.1:0,network=slow',
      '--dgram', 'udp:127.0.0.1:0,network=narrow',
      '--net-option', 'lossy:link-loss=2,link-reorder=1',
      '--net-option', 'slow:link-delay=50',
      '--net-option', `narrow:link-rate=${RATE_BITS_PER_S / 1e6}M`,
    ]);
  }, 30_000);

  afterAll(async () => {
    for (const g of guests) await g.destroy();
    await d?.stop();
    await new Promise((r) => server?.close(r));
  });

  it('has what it needs (root, ip, socat, busybox, curl, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('with 2% loss and 1% reordering each way, a 20 MB download and a 20 MB upload stay byte-exact', async () => {
    const g = await guestOn(0);
    const r = await g.sh(`curl -sS --max-time 150 http://10.0.2.2:${port}/20m | sha256sum`, [], 170_000);
    expect(r.stdout.split(' ')[0], `${out(r)}\n${d.dump().slice(-3000)}`).toBe(createHash('sha256').update(blobs.get('/20m')!).digest('hex'));
    // The guest's kernel saw the impairment: segments out of order (lost or reordered on the way in).
    const ext = await tcpExt(g);
    console.log(`impair.int: guest TCP after the lossy download: OFOQueue ${ext['TCPOFOQueue']}, SACK reorder ${ext['TCPSACKReorder']}, DSACKs ${ext['TCPDSACKOldSent']}`);
    expect(ext['TCPOFOQueue'], JSON.stringify(ext)).toBeGreaterThan(100);
    // The other way: the guest's Linux TCP sends through the same loss and reordering to tslirp's.
    const dir = tempDir('tslirp-impair-');
    try {
      writeFileSync(join(dir, 'up'), blobs.get('/20m')!);
      const up = await g.sh(`curl -sS --max-time 150 -T "$1" http://10.0.2.2:${port}/up`, [join(dir, 'up')], 170_000);
      expect(up.stdout.trim(), out(up)).toBe(createHash('sha256').update(blobs.get('/20m')!).digest('hex'));
      const after = await tcpExt(g);
      console.log(`impair.int: guest TCP after the lossy upload: retransmitted segments ${JSON.stringify({ lost: after['TCPLostRetransmit'], fast: after['TCPFastRetrans'], sackRecovery: after['TCPSackRecovery'] })}`);
      expect((after['TCPFastRetrans'] ?? 0) - (ext['TCPFastRetrans'] ?? 0), JSON.stringify(after)).toBeGreaterThan(10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 400_000);

  it('with 50 ms of delay each way, ping shows ~100 ms to the gateway and ~200 ms between guests', async () => {
    const a = await guestOn(1);
    const b = await guestOn(1);
    const toGateway = await a.exec(['busybox', 'ping', '-c', '10', '-i', '0.2', '-W', '5', '10.0.2.2'], 60_000);
    const gw = rtt(toGateway);
    console.log(`impair.int: ping of the gateway with 50 ms each way: ${JSON.stringify(gw)}`);
    expect(gw, out(toGateway)).toBeDefined();
    expect(gw!.received, out(toGateway)).toBe(10);
    // The delay is a floor (frames never leave early); load only adds to it, bounded here by 3×.
    expect(gw!.min, out(toGateway)).toBeGreaterThanOrEqual(99);
    expect(gw!.avg, out(toGateway)).toBeLessThan(300);
    const addrB = (await b.sh('ip -4 -o addr show dev "$1" | sed -E "s/.*inet ([0-9.]+).*/\\1/"', [b.tap])).stdout.trim();
    const peer = await a.exec(['busybox', 'ping', '-c', '5', '-i', '0.3', '-W', '5', addrB], 60_000);
    const p = rtt(peer);
    console.log(`impair.int: ping between guests (two impaired links each way): ${JSON.stringify(p)}`);
    expect(p?.received, out(peer)).toBe(5);
    expect(p!.min, out(peer)).toBeGreaterThanOrEqual(199);
    expect(p!.avg, out(peer)).toBeLessThan(600);
  }, 120_000);

  it(`with a rate of ${RATE_BITS_PER_S / 1e6} Mbit/s, a 10 MB download runs at no more than the rate`, async () => {
    const g = await guestOn(2);
    const r = await g.sh(`curl -sS --max-time 60 -o /dev/null -w '%{speed_download} %{size_download}' http://10.0.2.2:${port}/10m`, [], 90_000);
    const [speed, size] = r.stdout.trim().split(' ').map(Number);
    const bitsPerS = speed! * 8;
    console.log(`impair.int: download at ${(bitsPerS / 1e6).toFixed(2)} Mbit/s through a ${RATE_BITS_PER_S / 1e6} Mbit/s link`);
    expect(size, out(r)).toBe(10 * 1024 * 1024);
    // Frames carry headers, so payload stays below the rate; the bucket's 10 ms burst adds nothing visible over 4 s.
    expect(bitsPerS, out(r)).toBeLessThanOrEqual(RATE_BITS_PER_S * 1.02);
    // A loaded machine may be slower, but not by more than half.
    expect(bitsPerS, out(r)).toBeGreaterThan(RATE_BITS_PER_S * 0.5);
  }, 120_000);
});
