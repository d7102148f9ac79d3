/**
 * The control API with a real v86 guest: v86's virtio-net Linux guest (scripts/build-v86-guest.sh's
 * kernel and busybox, run by test/nic-e1000/v86-run.ts in a child process) relayed to the
 * daemon's WebSocket listener. The guest gets a lease, downloads a file over HTTP from a
 * server on the host's loopback (through the NAT) and another over TFTP from the gateway
 * (`--tftp`), then asks the server for a last URL that the test answers only once it has read
 * the API, so the session is still up when it looks:
 * - /v1/leases lists the guest's lease (its MAC, 10.0.2.15), /v1/sessions its ws session;
 * - while the HTTP response is held half-sent, /v1/flows lists the TCP flow (to the server's
 *   endpoint, established, the guest's session) and its bytes to the guest reach exactly what
 *   the server's socket had written;
 * - once done, the flow's bytes equal the server socket's count exactly and the session's
 *   Ethernet bytes to the guest are within a few percent of everything that moved (headers
 *   of ~1460-byte segments add 3.7 %);
 * - /v1/networks and /metrics show the TFTP transfer (requests, completed, bytes), and
 *   `promtool check metrics` is clean with the drop reasons from the fixed list.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, Proc, shouldRun, tempDir, V86_GUEST_DIR, v86GuestRequirements } from '../helpers/guests.js';
import { DOWNLOAD_INIT, downloadGuest, parseRun } from '../nic-e1000/v86-guest.js';
import { DROP_REASONS } from '../../src/util/drop-reasons.js';

const RUNNER = join(REPO_ROOT, 'test', 'nic-e1000', 'v86-run.ts');
const missing = missingRequirements([
  daemonReq,
  command('cpio'),
  command('gzip'),
  command('promtool'),
  ...v86GuestRequirements(),
]);
const enabled = shouldRun('api-v86.int.test.ts (the control API with a v86 guest on the WebSocket relay)', missing);
// v86 boots took 26–35 s in CI-like runs and 88–99 s beside four other test runs on the 2 cores
// (v86.int.test.ts), and 408 s to the lease here with the load average at 24 on the 2 cores; the
// downloads are 2 MB + 256 KiB. The limit is for boot and downloads together, a generous bound
// rather than a 3× margin over that extreme (e1000-v86.int.test.ts allows 600 s).
const LIMIT_S = 900;
const SIZE = 2 * 1024 * 1024;
const TFTP_SIZE = 256 * 1024;

/** The download guest's /init, plus a TFTP download and a last request the test answers once it has read the API. */
const INIT = DOWNLOAD_INIT.replace('echo "TSLIRP-DONE"\npoweroff -f\n', [
  'cd /tmp 2>/dev/null || cd /',
  'if tftp -g -b 1428 -r boot.bin -l tftp.bin 10.0.2.2; then echo "TSLIRP-TFTP $(sha256sum tftp.bin | cut -d\' \' -f1) $(wc -c < tftp.bin)"; else echo "TSLIRP-TFTP-FAIL"; fi',
  'wget -q -O /dev/null "http://$addr:$tport/release" && echo "TSLIRP-RELEASED"',
  'echo "TSLIRP-DONE"',
  'poweroff -f',
  '',
].join('\n'));

interface Flow { session: string | null; protocol: string; state: string; host: string; remote: string; bytesToGuest: number; bytesFromGuest: number }
interface SessionJson { id: string; network: string; link: { kind: string }; toGuestBytes: number; fromGuestBytes: number; drops: Record<string, number> }

function call(socketPath: string, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
const getJson = async <T>(socketPath: string, path: string): Promise<T> => JSON.parse((await call(socketPath, path)).text) as T;

/** Polls `cond` every 200 ms until true or `timeoutMs` passed; returns the last result. */
async function untilAsync(cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return cond();
}

describe.skipIf(!enabled)('control API with a v86 guest on the WebSocket relay', () => {
  let dir: string;
  let guest: string;
  let web: http.Server;
  let webPort = 0;
  let d: Daemon;
  let api = '';
  const data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = (i * 11 + (i >> 13)) & 0xff;
  const sha = createHash('sha256').update(data).digest('hex');
  const tftpData = Buffer.alloc(TFTP_SIZE);
  for (let i = 0; i < TFTP_SIZE; i++) tftpData[i] = (i * 5 + (i >> 9)) & 0xff;
  const tftpSha = createHash('sha256').update(tftpData).digest('hex');
  /** The download's server-side socket, and what the test does while the response is held half-sent. */
  let fileSocket: net.Socket | undefined;
  let halfSent: () => void = () => undefined;
  let resume: () => void = () => undefined;
  const halfway = new Promise<void>((r) => { halfSent = r; });
  const resumed = new Promise<void>((r) => { resume = r; });
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => { release = r; });
  let releaseAsked: () => void = () => undefined;
  const releaseRequested = new Promise<void>((r) => { releaseAsked = r; });

  beforeAll(async () => {
    dir = tempDir('tslirp-api-v86-');
    mkdirSync(join(dir, 'tftp'));
    writeFileSync(join(dir, 'tftp', 'boot.bin'), tftpData);
    web = http.createServer((req, res) => {
      if (req.url === '/release') {
        releaseAsked();
        void released.then(() => res.end('ok'));
        return;
      }
      fileSocket = req.socket;
      res.writeHead(200, { 'content-length': String(SIZE) });
      res.write(data.subarray(0, SIZE / 2), () => {
        halfSent();
        void resumed.then(() => res.end(data.subarray(SIZE / 2)));
      });
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webPort = (web.address() as net.AddressInfo).port;
    guest = downloadGuest(V86_GUEST_DIR, join(dir, 'guest'), INIT);
    api = join(dir, 'api.sock');
    d = await startDaemon(['--ws', '127.0.0.1:0', '--network', 'lab', '--tftp', join(dir, 'tftp'), '--api', `unix:${api}`]);
  }, 60_000);

  afterAll(async () => {
    resume();
    release();
    await d?.stop();
    web?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (cpio, gzip, promtool, seabios, the v86 guest image, v86, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('lists the guest\'s lease, session and open flow with the bytes that moved; TFTP in /v1/networks and /metrics', async () => {
    const started = Date.now();
    const p = new Proc('v86 virtio (api)', process.execPath, [
      '--import', 'tsx', RUNNER, '--guest', guest, '--nic', 'virtio', '--relay', d.wsUrl(), '--append', `tport=${webPort} irqpoll`, '--timeout', String(LIMIT_S),
    ]);
    const context = (): string => `guest console:\n${p.tail(5000)}\ndaemon:\n${d.dump().slice(-3000)}`;
    let exit;
    try {
      // The boot and the lease, then the first half of the download: the flow is open now.
      const seen = await Promise.race([halfway.then(() => true), p.wait(LIMIT_S * 1000).then(() => false)]);
      expect(seen, context()).toBe(true);
      // The flow's host endpoint is the server the NAT's socket connected to; only the download goes there yet.
      const server = `127.0.0.1:${webPort}`;
      let open: Flow | undefined;
      // The server has written half and waits; the flow's count reaches what the socket wrote
      // once the data path has drained it to the guest.
      const drained = await untilAsync(async () => {
        const flows = await getJson<Flow[]>(api, '/v1/flows?protocol=tcp');
        open = flows.find((f) => f.host === server);
        return open?.bytesToGuest === fileSocket!.bytesWritten;
      }, 300_000);
      expect({ drained, open, written: fileSocket!.bytesWritten }, `${JSON.stringify({ open, written: fileSocket!.bytesWritten })}\n${context()}`).toMatchObject({ drained: true });
      const sessions = await getJson<SessionJson[]>(api, '/v1/sessions');
      expect(sessions, context()).toMatchObject([{ network: 'lab', link: { kind: 'ws' } }]);
      const id = sessions[0]!.id;
      expect(open, context()).toMatchObject({ protocol: 'tcp', state: 'established', remote: `10.0.2.2:${webPort}`, session: id });
      expect(open!.bytesToGuest).toBeGreaterThan(SIZE / 2);
      resume();

      // Then the TFTP download and the last request, held until the API has been read.
      const asked = await Promise.race([releaseRequested.then(() => true), p.wait(LIMIT_S * 1000).then(() => false)]);
      expect(asked, context()).toBe(true);
      const text = p.output;
      expect(parseRun(text).sha, context()).toBe(sha);
      expect(/TSLIRP-TFTP (\S+) (\d+)/.exec(text)?.slice(1), context()).toEqual([tftpSha, String(TFTP_SIZE)]);
      expect(/TSLIRP-LEASE ip=(\S+)/.exec(text)?.[1], context()).toBe('10.0.2.15');

      const leases = await getJson<{ network: string; mac: string; address: string; state: string }[]>(api, '/v1/leases');
      expect(leases, context()).toMatchObject([{ network: 'lab', address: '10.0.2.15', state: 'bound' }]);
      expect(leases[0]!.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);

      // The download's flow counted exactly what the server's socket wrote (headers and body).
      const written = fileSocket!.bytesWritten;
      expect(written).toBeGreaterThan(SIZE);
      const flows = await getJson<Flow[]>(api, '/v1/flows?protocol=tcp');
      const done = flows.find((f) => f.host === server && f.bytesToGuest >= SIZE);
      if (done !== undefined) expect(done.bytesToGuest, context()).toBe(written);
      const s = await getJson<SessionJson>(api, `/v1/sessions/${id}`);
      // Everything that moved to the guest: the HTTP response, the TFTP file, and a little more
      // (DHCP, DNS, pings, ARP, the /release response so far); Ethernet, IP and TCP/UDP headers on top.
      const payload = written + TFTP_SIZE;
      const ratio = s.toGuestBytes / payload;
      console.log(`api-v86: ${((Date.now() - started) / 1000).toFixed(1)} s; session ${id} toGuestBytes ${s.toGuestBytes} for ${payload} payload bytes (ratio ${ratio.toFixed(4)}); flow ${done === undefined ? 'closed already' : done.bytesToGuest}`);
      expect(ratio, context()).toBeGreaterThanOrEqual(1);
      expect(ratio, context()).toBeLessThan(1.06);
      expect(Object.keys(s.drops).filter((r) => !(DROP_REASONS as readonly string[]).includes(r))).toEqual([]);

      const nets = await getJson<{ name: string; tftp: { requests: number; completed: number; failed: number; bytesSent: number } | null }[]>(api, '/v1/networks');
      const lab = nets.find((n) => n.name === 'lab');
      expect(lab?.tftp, context()).toMatchObject({ requests: 1, completed: 1, failed: 0 });
      expect(lab!.tftp!.bytesSent).toBeGreaterThanOrEqual(TFTP_SIZE);

      const metrics = (await call(api, '/metrics')).text;
      const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
      expect(value('tslirp_sessions')).toBe(1);
      expect(value('tslirp_leases')).toBe(1);
      expect(value('tslirp_tftp_requests_total')).toBe(1);
      expect(value('tslirp_tftp_transfers_total{outcome="completed"}')).toBe(1);
      expect(value('tslirp_tftp_data_sent_bytes_total')).toBe(lab!.tftp!.bytesSent);
      expect(value('tslirp_bytes_total{direction="to_guest"}')).toBeGreaterThanOrEqual(s.toGuestBytes);
      const reasons = [...metrics.matchAll(/^tslirp_drops_total\{reason="([^"]+)"\}/gm)].map((m) => m[1]!);
      expect(reasons.filter((r) => !(DROP_REASONS as readonly string[]).includes(r))).toEqual([]);
      const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8', timeout: 30_000 });
      expect({ status: promtool.status, out: promtool.stdout + promtool.stderr }).toEqual({ status: 0, out: '' });

      release();
      exit = await p.wait(LIMIT_S * 1000);
    } finally {
      resume();
      release();
      await p.stop();
    }
    expect(exit, context()).toEqual({ code: 0, signal: null });
    expect(p.output).toContain('TSLIRP-RELEASED');
    expect(await untilAsync(async () => (await getJson<unknown[]>(api, '/v1/sessions')).length === 0, 30_000)).toBe(true);
    expect(d.alive(), d.dump()).toBe(true);
  }, (LIMIT_S + 120) * 1000);
});
