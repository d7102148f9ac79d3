/**
 * `tslirp serve --record DIR` with a real guest: a network namespace bridged to the daemon
 * leases with udhcpc and fetches over the NAT with curl; the daemon's recording then opens in
 * tshark with no warning, shows the host side as a TCP conversation on interface 1, and
 * `tslirp replay` (the built CLI) replays it byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_ENTRY, startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, root, shouldRun, tempDir } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('tshark')]);
const enabled = shouldRun('record.int.test.ts (a namespace guest recorded by --record, then replayed)', missing);

describe.skipIf(!enabled)('--record with a namespace guest', () => {
  let dir: string;
  let d: Daemon;
  let g: NetnsGuest | undefined;
  let http: Server;
  let port = 0;

  beforeAll(async () => {
    dir = tempDir('tslirp-record-');
    // Larger than the host's 256 KiB read buffer: full reads hold the stack's flush in a batch
    // (LiveNetwork), which the recording must carry for the replay to match.
    http = createServer((_req, res) => res.end(Buffer.alloc(4_000_000, 0x62)));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    port = (http.address() as { port: number }).port;
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--record', dir]);
  });

  afterAll(async () => {
    await g?.destroy();
    await d?.stop();
    http?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, curl, tshark, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('records a lease and a download, and the recording replays byte for byte', async () => {
    g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    const { lease } = await g.dhcp();
    expect(lease?.['ip']).toBe('10.0.2.15');
    const got = await g.sh(`curl -s -o /dev/null -w '%{size_download}' http://10.0.2.2:${port}/`);
    expect(got.stdout).toBe('4000000');
    await g.destroy();
    g = undefined;
    expect((await d.stop()).code).toBe(0);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^tslirp-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-[0-9a-f]+-1\.pcapng$/);
    const file = join(dir, files[0]!);

    const all = spawnSync('tshark', ['-r', file], { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 << 20 });
    expect(all.status).toBe(0);
    expect(all.stderr.split('\n').filter((l) => l !== '' && !l.includes('Running as user'))).toEqual([]);
    const host = spawnSync('tshark', ['-r', file, '-Y', 'frame.interface_id==1 && tcp.flags.syn==1', '-T', 'fields', '-e', 'ip.dst', '-e', 'tcp.dstport'], { encoding: 'utf8', timeout: 30_000 });
    expect(host.stdout.split('\n')[0]).toBe(`127.0.0.1\t${port}`);

    const replayed = spawnSync(process.execPath, [DAEMON_ENTRY, 'replay', file], { encoding: 'utf8', timeout: 60_000 });
    expect(replayed.stderr).toBe('');
    expect(replayed.stdout).toMatch(/^replay: \d+ frames, 0 differences, \d+\.\d+ s\n$/);
    expect(replayed.status).toBe(0);
  }, 120_000);
});
