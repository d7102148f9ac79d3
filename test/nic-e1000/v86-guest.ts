/**
 * The v86 guest that downloads: scripts/e1000-v86-guest.sh's (or build-v86-guest.sh's) kernel
 * and initramfs, plus a second initramfs appended whose /init replaces the built one (the
 * kernel unpacks concatenated archives in order, later files win). The /init loads the NIC's
 * modules (`nic=` on the kernel command line, default e1000), gets a lease, resolves
 * host.tslirp.internal through 10.0.2.3, pings the gateway three times and downloads
 * http://<that address>:$tport/file, printing TSLIRP-* markers on the serial console. With
 * `flood=N` it then pings the gateway N times back to back (`ping -A`: the next echo as soon
 * as the reply is in). `TSLIRP-MARK name uptime <eth0's /proc/net/dev fields>` lines bracket
 * the download and the flood, so a runner can read its counters at each and divide by the
 * packets the guest counted.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DOWNLOAD_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "TSLIRP-INIT up=$(cut -d' ' -f1 /proc/uptime)"
while read -r m; do insmod "/lib/modules/$m" || echo "TSLIRP-INSMOD-FAILED $m"; done < "/lib/modules/\${nic:-e1000}.list"
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
mark() { echo "TSLIRP-MARK $1 $(cut -d' ' -f1 /proc/uptime) $(sed -n 's/^ *eth0: *//p' /proc/net/dev)"; }
mark dl-start
t0=$(cut -d' ' -f1 /proc/uptime)
sum=$(wget -q -O - "http://$addr:$tport/file" | sha256sum | cut -d' ' -f1)
echo "TSLIRP-DL $sum $t0 $(cut -d' ' -f1 /proc/uptime)"
mark dl-end
if [ -n "$flood" ]; then
  mark flood-start
  ping -A -q -c "$flood" 10.0.2.2
  mark flood-end
fi
echo "TSLIRP-DONE"
poweroff -f
`;

/** Writes bzImage and initrd.gz (the built one + `init`, by default the /init above) into `out`; returns `out`. */
export function downloadGuest(built: string, out: string, init = DOWNLOAD_INIT): string {
  const root = join(out, 'root');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'init'), init);
  chmodSync(join(root, 'init'), 0o755);
  const cpio = spawnSync('sh', ['-c', 'echo init | cpio -o -H newc 2>/dev/null | gzip -1'], { cwd: root, maxBuffer: 1 << 20 });
  if (cpio.status !== 0) throw new Error(`cpio failed: ${cpio.stderr.toString()}`);
  writeFileSync(join(out, 'initrd.gz'), Buffer.concat([readFileSync(join(built, 'initrd.gz')), cpio.stdout]));
  writeFileSync(join(out, 'bzImage'), readFileSync(join(built, 'bzImage')));
  return out;
}

/** What a run printed: the download's sha256 and guest seconds, the model's counters (e1000). */
export interface GuestRun {
  readonly sha?: string | undefined;
  readonly seconds?: number | undefined;
  readonly exits?: { mmio: number; io: number; txFrames: number; rxFrames: number; irqs: number } | undefined;
}

/** One TSLIRP-MARK: guest uptime, eth0's packet counts, and the runner's counters printed right after it. */
export interface Mark {
  readonly uptime: number;
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly counters: Readonly<Record<string, number>>;
}

/** The marks of a run, by name (the runner prints `e1000-v86: counters NAME {json}` at each). */
export function parseMarks(text: string): Map<string, Mark> {
  const out = new Map<string, Mark>();
  const counters = new Map<string, Record<string, number>>();
  for (const m of text.matchAll(/e1000-v86: counters (\S+) (\{[^\r\n]*\})/g)) counters.set(m[1]!, JSON.parse(m[2]!) as Record<string, number>);
  for (const m of text.matchAll(/TSLIRP-MARK (\S+) (\S+) ([\d ]+)/g)) {
    const f = m[3]!.trim().split(/\s+/).map(Number);
    out.set(m[1]!, { uptime: Number(m[2]), rxPackets: f[1] ?? 0, txPackets: f[9] ?? 0, counters: counters.get(m[1]!) ?? {} });
  }
  return out;
}

/** Per-packet costs between two marks: packets both ways, and each counter divided by them. */
export function between(a: Mark, b: Mark): { packets: number; seconds: number; per: Record<string, number> } {
  const packets = b.rxPackets - a.rxPackets + b.txPackets - a.txPackets;
  const per: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.counters)) per[k] = packets === 0 ? 0 : (v - (a.counters[k] ?? 0)) / packets;
  return { packets, seconds: b.uptime - a.uptime, per };
}

export function parseRun(text: string): GuestRun {
  const dl = /TSLIRP-DL (\S+) (\S+) (\S+)/.exec(text);
  const ex = /model exits mmio=(\d+) io=(\d+) config=\d+ txFrames=(\d+) rxFrames=(\d+) irqs=(\d+)/.exec(text);
  return {
    sha: dl?.[1],
    seconds: dl === null ? undefined : Number(dl[3]) - Number(dl[2]),
    exits: ex === null ? undefined : { mmio: Number(ex[1]), io: Number(ex[2]), txFrames: Number(ex[3]), rxFrames: Number(ex[4]), irqs: Number(ex[5]) },
  };
}
