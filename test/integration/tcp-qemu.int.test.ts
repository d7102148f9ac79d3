/**
 * TCP through tslirp from a Linux guest under QEMU with the real e1000 driver path, attached
 * with QEMU's `-netdev stream`. The guest is scripts/build-qemu-guest.sh's kernel and
 * initramfs with a second initramfs appended whose /init replaces the stock one (the kernel
 * unpacks concatenated archives in order, later files win): it loads the NIC modules, gets a
 * lease, then runs busybox wget/nc against servers on the host's loopback via 10.0.2.2 and
 * prints TSLIRP-TCP-* markers on the serial console.
 *
 * Covered: a 100 MB download and a 100 MB upload, sha256-checked; nc to a closed port refused.
 * Over IPv6 (issue 14): a second guest whose /init does no DHCP at all lets the kernel form its
 * SLAAC address from tslirp's router advertisement, then busybox wget fetches a file from a
 * host server on [::1] via the gateway's IPv6 address (http://[fd00::2]:PORT/), sha256-checked.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
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
/** The IPv6 case: boot (6–9 s idle), SLAAC (~3 s) and 4 MiB, with a 3× margin for a loaded machine. */
const LIMIT6_MS = 120_000;
const BLOB6_BYTES = 4 << 20;

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

/**
 * The IPv6 guest's /init: no DHCP, no address of its own making. The kernel's IPv6 (Debian's is
 * built in) solicits a router when eth0 comes up and autoconfigures from the advertisement; the
 * script waits for a global address that is no longer tentative (/proc/net/if_inet6: scope 00,
 * flag 0x40 IFA_F_TENTATIVE clear; the prefix length in hex), prints it and the default route, then fetches over IPv6.
 */
const INIT6 = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
while read -r m; do insmod "/lib/modules/$m"; done < /lib/modules/e1000.list
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
if [ -e /proc/net/if_inet6 ]; then echo "TSLIRP-V6-KERNEL yes"; else echo "TSLIRP-V6-KERNEL no"; fi
ip link set lo up; ip link set eth0 up
addr=; i=0
while [ -z "$addr" ] && [ $i -lt 100 ]; do
  while read -r a idx plen scope flags dev; do
    if [ "$dev" = eth0 ] && [ "$scope" = 00 ] && [ $((0x$flags & 0x40)) -eq 0 ]; then addr=$a/$((0x$plen)); fi
  done < /proc/net/if_inet6
  [ -n "$addr" ] || sleep 0.2; i=$((i+1))
done
echo "TSLIRP-V6-ADDR \${addr:-none} after $(cut -d' ' -f1 /proc/uptime)"
echo "TSLIRP-V6-ROUTE $(ip -6 route show default | head -1)"
t0=$(cut -d' ' -f1 /proc/uptime)
echo "TSLIRP-V6-DL $(wget -q -O - "http://[fd00::2]:$tport6/blob6" | sha256sum | cut -d' ' -f1) $t0 $(cut -d' ' -f1 /proc/uptime)"
echo "TSLIRP-V6-DONE"
poweroff -f
`;

/** The guest's initramfs with a second archive appended that holds only `init` (later files win). */
function initrdWith(dir: string, name: string, init: string): string {
  const root = join(dir, `root-${name}`);
  mkdirSync(root);
  writeFileSync(join(root, 'init'), init);
  chmodSync(join(root, 'init'), 0o755);
  const cpio = spawnSync('sh', ['-c', 'echo init | cpio -o -H newc 2>/dev/null | gzip -1'], { cwd: root, maxBuffer: 1 << 20 });
  if (cpio.status !== 0) throw new Error(`cpio: ${cpio.stderr.toString()}`);
  const initrd = join(dir, `initrd-${name}.gz`);
  writeFileSync(initrd, Buffer.concat([readFileSync(INITRD), cpio.stdout]));
  return initrd;
}

/** QEMU with the e1000 guest on the daemon's unix stream socket; resolves with the console once `done` appears. */
async function runGuest(name: string, initrd: string, append: string, sock: string, memMiB: number, done: RegExp, limitMs: number): Promise<string> {
  const qemu = new Proc(name, 'qemu-system-x86_64', [
    ...qemuConsoleArgs(memMiB),
    '-kernel', KERNEL, '-initrd', initrd,
    '-append', `console=ttyS0 quiet panic=-1 ${append}`,
    '-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`,
    '-device', 'e1000,netdev=n0,mac=52:54:00:12:34:56,romfile=',
  ]);
  try {
    await qemu.waitFor(done, limitMs);
  } finally {
    await qemu.stop();
  }
  return qemu.output;
}

describe.skipIf(!enabled)('TCP from a QEMU e1000 guest', () => {
  let d: Daemon;
  let dir: string;
  let web: http.Server;
  let webPort = 0;
  let closedPort = 0;
  let web6: http.Server;
  let web6Port = 0;
  const blob6 = randomBytes(BLOB6_BYTES);
  const blob6Sha = createHash('sha256').update(blob6).digest('hex');
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
    // The IPv6 case's server listens on ::1 only: the guest reaches it through [fd00::2].
    web6 = http.createServer((req, res) => {
      if (req.url !== '/blob6') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(blob6.length) });
      res.end(blob6);
    });
    await new Promise<void>((r) => web6.listen(0, '::1', r));
    web6Port = (web6.address() as net.AddressInfo).port;
    d = await startDaemon(['--stream', `unix:${join(dir, 'tslirp.sock')}`, '--log-level', 'info']);
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    web?.close();
    web6?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (qemu, cpio, gzip, guest image, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('downloads and uploads 100 MB byte-exact; a closed port is refused', async () => {
    const text = await runGuest('qemu tcp guest', initrdWith(dir, 'tcp', INIT), `tport=${webPort} cport=${closedPort}`, join(dir, 'tslirp.sock'), 512, /TSLIRP-TCP-DONE/, LIMIT_MS);
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

  it('IPv6: the kernel autoconfigures from the router advertisement (SLAAC) and busybox wget fetches from [::1] via [fd00::2], sha256-exact', async () => {
    const text = await runGuest('qemu ipv6 guest', initrdWith(dir, 'ipv6', INIT6), `tport6=${web6Port}`, join(dir, 'tslirp.sock'), 256, /TSLIRP-V6-DONE/, LIMIT6_MS);
    const context = `guest console:\n${text.slice(-3000)}\ndaemon:\n${d.dump().slice(-3000)}`;
    expect(text, context).toMatch(/TSLIRP-V6-KERNEL yes/);
    // EUI-64 from the NIC's MAC 52:54:00:12:34:56 in the advertised fd00::/64.
    const addr = /TSLIRP-V6-ADDR (\S+) after (\S+)/.exec(text);
    expect(addr?.[1], context).toBe('fd00000000000000505400fffe123456/64');
    // The default route the advertisement gave: via the gateway's link-local address.
    expect(text, context).toMatch(/TSLIRP-V6-ROUTE default via fe80::5055:aff:fe00:202 dev eth0/);
    const dl = /TSLIRP-V6-DL (\S+) (\S+) (\S+)/.exec(text);
    expect(dl?.[1], context).toBe(blob6Sha);
    console.log(`QEMU e1000 guest over IPv6: SLAAC address at ${addr?.[2] ?? '?'} s of uptime, ${BLOB6_BYTES >> 20} MiB in ${dl === null ? '?' : (Number(dl[3]) - Number(dl[2])).toFixed(2)} s`);
    expect(d.alive(), d.dump()).toBe(true);
  }, LIMIT6_MS + 20_000);
});
