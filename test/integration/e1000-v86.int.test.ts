/**
 * The unmodified Linux e1000 driver on our model inside v86, plugged in by the public add-on
 * (`attachE1000` of `tslirp/v86`, run by test/nic-e1000/v86-run.ts in a child process so a
 * hang can be killed). v86 boots Debian's i386 kernel; the guest probes the NIC (EEPROM by
 * Microwire, PHY, reset through the I/O BAR), gets a DHCP lease, resolves
 * host.tslirp.internal through 10.0.2.3, pings the gateway, and downloads 10 MB from an HTTP
 * server on the host's loopback (through the NAT) whose sha256 must match — once with the
 * frames going to an in-process network (`createNodeNetwork`), once through a tslirp daemon's
 * WebSocket relay (`relay_url`), and once with the device itself served by the daemon over
 * `/e1000` (`openE1000Bridge` + `e1000_channel`: v86 in a worker thread that blocks on every
 * register read while the runner's main thread holds the WebSocket; the daemon runs the model
 * and DMAs through the worker). The guest then pings the gateway 100 times back to back.
 * The save/restore case is skipped: it does not pass yet (see there).
 *
 * The guest's /init is test/nic-e1000/v86-guest.ts's (lease, DNS, ping, download). The kernel boots with `irqpoll`:
 * v86 0.5.462 loses PCI interrupts under load (its own ne2k too, shared/reference/v86.md §4.7);
 * without it the download stalls with the model's INTA# high and the guest never entering its
 * handler again (src/v86/index.ts, "Interrupts").
 */
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { between, downloadGuest, parseMarks, parseRun } from '../nic-e1000/v86-guest.js';
import { CACHE_DIR, command, daemon as daemonReq, file, missingRequirements, Proc, shouldRun, tempDir } from '../helpers/guests.js';

const GUEST = join(CACHE_DIR, 'e1000-v86-guest');
const RUNNER = join(REPO_ROOT, 'test', 'nic-e1000', 'v86-run.ts');
const missing = missingRequirements([
  daemonReq,
  command('cpio'),
  command('gzip'),
  file('/usr/share/seabios/bios.bin', 'apt-get install seabios'),
  file('/usr/share/seabios/vgabios-stdvga.bin', 'apt-get install seabios'),
  file(join(GUEST, 'bzImage'), 'build it with scripts/e1000-v86-guest.sh'),
  file(join(GUEST, 'initrd.gz'), 'build it with scripts/e1000-v86-guest.sh'),
  file(join(REPO_ROOT, 'node_modules', 'v86', 'build', 'v86.wasm'), 'npm ci'),
]);
const enabled = shouldRun('e1000-v86.int.test.ts (Linux e1000 driver on the model inside v86)', missing);
// A v86 boot took 35–41 s in CI-like runs and 118 s with the suite beside four other test runs on
// the 2 cores; boot and the 10 MB download took 146–181 s beside the unit suite here. The limit
// keeps a 3× margin over the worst of those.
const LIMIT_S = 600;
// The daemon-served device: a boot plus the download took 650 s on the loaded 2 cores with a
// round trip per register read and per DMA round; the limit keeps the 3× margin over the
// in-process worst case and 2× over that one.
const DEVICE_LIMIT_S = 1500;
const SIZE = 10 * 1024 * 1024;

describe.skipIf(!enabled)('Linux e1000 driver on the model in v86, through tslirp/v86', () => {
  let dir: string;
  let guest: string;
  let web: http.Server;
  let webPort = 0;
  let d: Daemon;
  const data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = (i * 7 + (i >> 16)) & 0xff;
  const sha = createHash('sha256').update(data).digest('hex');

  beforeAll(async () => {
    dir = tempDir('tslirp-e1000-v86-');
    web = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(SIZE) });
      res.end(data);
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webPort = (web.address() as net.AddressInfo).port;
    guest = downloadGuest(GUEST, join(dir, 'guest'));
    d = await startDaemon(['--ws', '127.0.0.1:0']);
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    web?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs', () => {
    expect(missing).toEqual([]);
  });

  // Not passing yet (issue 16, snapshots): the run below saves 43 MB mid-download and the new
  // emulator restores and starts, but the guest then printed nothing more and the runner's own
  // timeout never fired (its event loop looked blocked) until the test killed it at 600 s.
  // Skipped until that is understood; README says so.
  it.skip('in-process, saved mid-download and restored into a new emulator: the download completes sha256-exact', async () => {
    // 3 s into the download the runner stops v86, save()s it (v86's save_state with the NIC's
    // snapshot inside), destroys it, builds a new V86 and add-on on the same network and
    // restore()s: the guest's TCP connection and the stack's survive the move.
    const args = ['--import', 'tsx', RUNNER, '--guest', guest, '--append', `tport=${webPort} irqpoll`, '--timeout', String(LIMIT_S), '--snapshot', '3'];
    const p = new Proc('e1000-v86 snapshot', process.execPath, args);
    let exit;
    try {
      exit = await p.wait((LIMIT_S + 10) * 1000);
    } finally {
      await p.stop();
    }
    const text = p.output;
    const context = `guest console:\n${p.tail(6000)}`;
    expect(exit, context).toEqual({ code: 0, signal: null });
    expect(text, context).toMatch(/saved \d+ bytes mid-download/);
    expect(text, context).toContain('e1000-v86: restored and running');
    expect(text.indexOf('restored and running'), context).toBeLessThan(text.indexOf('TSLIRP-DL'));
    expect(parseRun(text).sha, context).toBe(sha);
  }, (LIMIT_S + 30) * 1000);

  for (const mode of ['in-process', 'relay', 'daemon-served /e1000'] as const) {
    const limit = mode === 'daemon-served /e1000' ? DEVICE_LIMIT_S : LIMIT_S;
    it(`${mode}: lease, DNS, ping and a 10 MB download sha256-exact`, async () => {
      const args = ['--import', 'tsx', RUNNER, '--guest', guest, '--append', `tport=${webPort} irqpoll flood=100`, '--timeout', String(limit)];
      if (mode === 'relay') args.push('--relay', d.wsUrl());
      if (mode === 'daemon-served /e1000') args.push('--e1000', `${d.wsUrl()}e1000`);
      const p = new Proc(`e1000-v86 ${mode}`, process.execPath, args);
      let exit;
      try {
        exit = await p.wait((limit + 10) * 1000);
      } finally {
        await p.stop();
      }
      const text = p.output;
      const context = `guest console:\n${p.tail(6000)}${mode !== 'in-process' ? `\ndaemon:\n${d.dump().slice(-3000)}` : ''}`;
      expect(exit, context).toEqual({ code: 0, signal: null });
      expect(text, context).not.toContain('TSLIRP-INSMOD-FAILED');
      expect(text, context).toContain('TSLIRP-DHCP-OK');
      expect(/TSLIRP-LEASE ([^\r\n]*)/.exec(text)?.[1], context).toBe('ip=10.0.2.15 subnet=255.255.255.0 router=10.0.2.2 dns=10.0.2.3');
      expect(text, context).toContain('TSLIRP-DNS host.tslirp.internal=10.0.2.2');
      expect(text, context).toContain('TSLIRP-PING-GW-OK');
      expect([...text.matchAll(/\d+ bytes from 10\.0\.2\.2: seq=/g)].length, context).toBe(3);
      const run = parseRun(text);
      expect(run.sha, context).toBe(sha);
      expect(text, context).toMatch(/100 packets transmitted, 100 packets received/);
      const marks = parseMarks(text);
      const dl = between(marks.get('dl-start')!, marks.get('dl-end')!);
      const flood = between(marks.get('flood-start')!, marks.get('flood-end')!);
      // 10 MB in ~1448-byte segments, plus ACKs: the guest's counters saw the packets, the
      // runner's counters the traps that moved them.
      expect(dl.packets, context).toBeGreaterThan(7000);
      expect(dl.per['traps'], context).toBeGreaterThan(0);
      expect(flood.packets, context).toBeGreaterThanOrEqual(200);
      console.log(`e1000-v86 ${mode}: 10 MB in ${dl.seconds.toFixed(1)} s guest time (${((SIZE * 8) / dl.seconds / 1e6).toFixed(1)} Mbit/s); per packet: download ${JSON.stringify(dl.per)}, ping -A ${JSON.stringify(flood.per)}`);
      if (mode !== 'in-process') expect(d.alive(), d.dump()).toBe(true);
    }, (limit + 30) * 1000);
  }
});
