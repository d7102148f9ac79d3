/**
 * The unmodified Linux e1000 driver on our model inside v86, plugged in by the public add-on
 * (`attachE1000` of `tslirp/v86`, run by test/nic-e1000/v86-run.ts in a child process so a
 * hang can be killed). v86 boots Debian's i386 kernel; the guest probes the NIC (EEPROM by
 * Microwire, PHY, reset through the I/O BAR), gets a DHCP lease, resolves
 * host.tslirp.internal through 10.0.2.3, pings the gateway, and downloads 10 MB from an HTTP
 * server on the host's loopback (through the NAT) whose sha256 must match — once with the
 * frames going to an in-process network (`createNodeNetwork`), once through a tslirp daemon's
 * WebSocket relay (`relay_url`).
 *
 * The guest's /init is replaced by a second initramfs appended to the built one (the kernel
 * unpacks concatenated archives in order, later files win). The kernel boots with `irqpoll`:
 * v86 0.5.462 loses PCI interrupts under load (its own ne2k too, shared/reference/v86.md §4.7);
 * without it the download stalls with the model's INTA# high and the guest never entering its
 * handler again (src/v86/index.ts, "Interrupts").
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
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
const SIZE = 10 * 1024 * 1024;

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "TSLIRP-INIT up=$(cut -d' ' -f1 /proc/uptime)"
while read -r m; do insmod "/lib/modules/$m" || echo "TSLIRP-INSMOD-FAILED $m"; done < /lib/modules/e1000.list
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || { echo "TSLIRP-NO-ETH0"; echo "TSLIRP-DONE"; poweroff -f; }
ip link set lo up; ip link set eth0 up
cat > /udhcpc.sh <<'S'
#!/bin/sh
if [ "$1" = bound ]; then
  echo "TSLIRP-LEASE ip=$ip subnet=$subnet router=$router dns=$dns"
  ip addr add "$ip/$subnet" dev "$interface"; ip route add default via $router
fi
exit 0
S
chmod +x /udhcpc.sh
if udhcpc -s /udhcpc.sh -i eth0 -f -q -n -t 5 -T 2; then echo "TSLIRP-DHCP-OK"; else echo "TSLIRP-DHCP-FAIL"; fi
addr=$(nslookup host.tslirp.internal 10.0.2.3 | sed -n 's/^Address:[[:space:]]*\\([0-9.]*\\)$/\\1/p' | tail -1)
echo "TSLIRP-DNS host.tslirp.internal=$addr"
if ping -c 3 -W 3 10.0.2.2; then echo "TSLIRP-PING-GW-OK"; else echo "TSLIRP-PING-GW-FAIL"; fi
t0=$(cut -d' ' -f1 /proc/uptime)
sum=$(wget -q -O - "http://$addr:$tport/file" | sha256sum | cut -d' ' -f1)
echo "TSLIRP-DL $sum $t0 $(cut -d' ' -f1 /proc/uptime)"
echo "TSLIRP-DONE"
poweroff -f
`;

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
    // The guest: the built kernel, the built initramfs plus one holding the /init above.
    guest = join(dir, 'guest');
    const root = join(dir, 'root');
    mkdirSync(guest);
    mkdirSync(root);
    writeFileSync(join(root, 'init'), INIT);
    chmodSync(join(root, 'init'), 0o755);
    const cpio = spawnSync('sh', ['-c', 'echo init | cpio -o -H newc 2>/dev/null | gzip -1'], { cwd: root, maxBuffer: 1 << 20 });
    expect(cpio.status).toBe(0);
    writeFileSync(join(guest, 'initrd.gz'), Buffer.concat([readFileSync(join(GUEST, 'initrd.gz')), cpio.stdout]));
    writeFileSync(join(guest, 'bzImage'), readFileSync(join(GUEST, 'bzImage')));
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

  for (const mode of ['in-process', 'relay'] as const) {
    it(`${mode}: lease, DNS, ping and a 10 MB download sha256-exact`, async () => {
      const args = ['--import', 'tsx', RUNNER, '--guest', guest, '--append', `tport=${webPort} irqpoll`, '--timeout', String(LIMIT_S)];
      if (mode === 'relay') args.push('--relay', d.wsUrl());
      const p = new Proc(`e1000-v86 ${mode}`, process.execPath, args);
      let exit;
      try {
        exit = await p.wait((LIMIT_S + 10) * 1000);
      } finally {
        await p.stop();
      }
      const text = p.output;
      const context = `guest console:\n${p.tail(6000)}${mode === 'relay' ? `\ndaemon:\n${d.dump().slice(-3000)}` : ''}`;
      expect(exit, context).toEqual({ code: 0, signal: null });
      expect(text, context).not.toContain('TSLIRP-INSMOD-FAILED');
      expect(text, context).toContain('TSLIRP-DHCP-OK');
      expect(/TSLIRP-LEASE ([^\r\n]*)/.exec(text)?.[1], context).toBe('ip=10.0.2.15 subnet=255.255.255.0 router=10.0.2.2 dns=10.0.2.3');
      expect(text, context).toContain('TSLIRP-DNS host.tslirp.internal=10.0.2.2');
      expect(text, context).toContain('TSLIRP-PING-GW-OK');
      expect([...text.matchAll(/\d+ bytes from 10\.0\.2\.2: seq=/g)].length, context).toBe(3);
      const dl = /TSLIRP-DL (\S+) (\S+) (\S+)/.exec(text);
      expect(dl?.[1], context).toBe(sha);
      const exits = /model exits mmio=(\d+) io=(\d+) config=\d+ txFrames=(\d+) rxFrames=(\d+)/.exec(text);
      expect(exits, context).not.toBeNull();
      const seconds = Number(dl![3]) - Number(dl![2]);
      console.log(`e1000-v86 ${mode}: 10 MB in ${seconds.toFixed(1)} s guest time (${((SIZE * 8) / seconds / 1e6).toFixed(1)} Mbit/s); ${exits![0]}; ${(Number(exits![1]) / (Number(exits![3]) + Number(exits![4]))).toFixed(2)} MMIO accesses per frame`);
      if (mode === 'relay') expect(d.alive(), d.dump()).toBe(true);
    }, (LIMIT_S + 30) * 1000);
  }
});
