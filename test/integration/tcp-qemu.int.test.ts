/**
 * TCP through tslirp from a Linux guest under QEMU with the real e1000 driver path, attached
 * with QEMU's `-netdev stream`. The guest is scripts/build-qemu-guest.sh's kernel and
 * initramfs with a second initramfs appended whose /init replaces the stock one (the kernel
 * unpacks concatenated archives in order, later files win): it loads the NIC modules, gets a
 * lease, then runs busybox wget/nc against servers on the host's loopback via 10.0.2.2 and
 * prints TSLIRP-TCP-* markers on the serial console.
 *
 * Covered: a 100 MB download and a 100 MB upload, sha256-checked; nc to a closed port refused.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, Proc, QEMU_INITRD, QEMU_KERNEL, qemuConsoleArgs, qemuGuestRequirements, shouldRun, tempDir } from '../helpers/guests.js';

const KERNEL = QEMU_KERNEL;
const INITRD = QEMU_INITRD;
const missing = missingRequirements([
  daemonReq, ...qemuGuestRequirements, command('cpio'), command('gzip'),
]);
const enabled = shouldRun('tcp-qemu.int.test.ts (TCP from a Linux e1000 guest under QEMU)', missing);

const MB = 1024 * 1024;
const SIZE = 100 * MB;
/** Boot, DHCP and 2 × 100 MB under TCG on shared cores. */
const LIMIT_MS = 600_000;

/**
 * The patterns both sides agree on. The upload's has no zero byte: busybox wget reads a
 * --post-file into memory and sends strlen() of it.
 */
function pattern(n: number, noZero = false): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = noZero ? ((i * 7 + (i >> 16)) % 255) + 1 : (i * 7 + (i >> 16)) & 0xff;
  return b;
}

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
while read -r m; do insmod "/lib/modules/$m"; done < /lib/modules/e1000.list
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
ip link set lo up; ip link set eth0 up
cat > /udhcpc.sh <<'S'
#!/bin/sh
if [ "$1" = bound ]; then ip addr add "$ip/$subnet" dev "$interface"; ip route add default via $router; fi
exit 0
S
chmod +x /udhcpc.sh
if udhcpc -s /udhcpc.sh -i eth0 -f -q -n -t 5 -T 2; then echo "TSLIRP-TCP-DHCP-OK"; fi
t0=$(cut -d' ' -f1 /proc/uptime)
echo "TSLIRP-TCP-DL $(wget -q -O - "http://10.0.2.2:$tport/get" | sha256sum | cut -d' ' -f1) $t0 $(cut -d' ' -f1 /proc/uptime)"
wget -q -O - "http://10.0.2.2:$tport/get-nonzero" > /up.bin
t0=$(cut -d' ' -f1 /proc/uptime)
echo "TSLIRP-TCP-UP $(wget -q -O - --post-file=/up.bin "http://10.0.2.2:$tport/put") $t0 $(cut -d' ' -f1 /proc/uptime)"
rm -f /up.bin
echo "TSLIRP-TCP-NC $(nc 10.0.2.2 $cport </dev/null 2>&1 | tr '\\n' ' ')"
echo "TSLIRP-TCP-DONE"
poweroff -f
`;

describe.skipIf(!enabled)('TCP from a QEMU e1000 guest', () => {
  let d: Daemon;
  let dir: string;
  let web: http.Server;
  let webPort = 0;
  let closedPort = 0;
  const data = pattern(SIZE);
  const sha = createHash('sha256').update(data).digest('hex');
  const upData = pattern(SIZE, true);
  const upSha = createHash('sha256').update(upData).digest('hex');

  beforeAll(async () => {
    dir = tempDir('tslirp-tcpq-');
    web = http.createServer((req, res) => {
      if (req.method === 'GET') {
        const body = req.url === '/get-nonzero' ? upData : data;
        res.writeHead(200, { 'content-length': String(body.length) });
        res.end(body);
        return;
      }
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        h.update(c);
      });
      req.on('end', () => res.end(`${n}:${h.digest('hex')}`));
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webPort = (web.address() as net.AddressInfo).port;
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    d = await startDaemon(['--stream', `unix:${join(dir, 'tslirp.sock')}`, '--log-level', 'info']);
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    web?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (qemu, cpio, gzip, guest image, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('downloads and uploads 100 MB byte-exact; a closed port is refused', async () => {
    // The overriding archive: just /init.
    const root = join(dir, 'root');
    mkdirSync(root);
    writeFileSync(join(root, 'init'), INIT);
    chmodSync(join(root, 'init'), 0o755);
    const cpio = spawnSync('sh', ['-c', 'echo init | cpio -o -H newc 2>/dev/null | gzip -1'], { cwd: root, maxBuffer: 1 << 20 });
    expect(cpio.status).toBe(0);
    const initrd = join(dir, 'initrd.gz');
    writeFileSync(initrd, Buffer.concat([readFileSync(INITRD), cpio.stdout]));
    const qemu = new Proc('qemu tcp guest', 'qemu-system-x86_64', [
      ...qemuConsoleArgs(512),
      '-kernel', KERNEL, '-initrd', initrd,
      '-append', `console=ttyS0 quiet panic=-1 tport=${webPort} cport=${closedPort}`,
      '-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${join(dir, 'tslirp.sock')}`,
      '-device', 'e1000,netdev=n0,romfile=',
    ]);
    try {
      await qemu.waitFor(/TSLIRP-TCP-DONE/, LIMIT_MS);
    } finally {
      await qemu.stop();
    }
    const text = qemu.output;
    expect(text, text.slice(-3000)).toMatch(/TSLIRP-TCP-DHCP-OK/);
    const dl = /TSLIRP-TCP-DL (\S+) (\S+) (\S+)/.exec(text);
    const up = /TSLIRP-TCP-UP (\S+) (\S+) (\S+)/.exec(text);
    const nc = /TSLIRP-TCP-NC ([^\r\n]*)/.exec(text);
    expect(dl?.[1], text.slice(-3000)).toBe(sha);
    expect(up?.[1], text.slice(-3000)).toBe(`${SIZE}:${upSha}`);
    expect(nc?.[1]).toMatch(/refused/i);
    const rate = (m: RegExpExecArray | null): string => (m === null ? '?' : ((SIZE * 8) / (Number(m[3]) - Number(m[2])) / 1e6).toFixed(0));
    console.log(`QEMU e1000 guest (TCG): download ${rate(dl)} Mbit/s, upload ${rate(up)} Mbit/s`);
  }, LIMIT_MS + 30_000);
});
