/**
 * A network boot (PXE) from tslirp's TFTP server: QEMU with Debian's iPXE option ROM for the
 * e1000 (ipxe-qemu) and `-boot n`, attached over `-netdev stream`, gets a lease with the boot
 * file from tslirp's DHCP (`--bootfile boot.ipxe`), fetches that iPXE script from the gateway
 * over TFTP (`--tftp DIR`), then the kernel and initramfs the script names (the QEMU test guest
 * of scripts/build-qemu-guest.sh, about 9 MB), boots them, and the booted Linux guest gets its
 * own lease and pings the gateway (its init prints TSLIRP-* markers on the serial console).
 *
 * Budget: on this project's 2-core machine under load the whole boot took 44 to 91 s (TCG); the
 * slowest stages seen were 20 s to the script, 10 s for the kernel and initramfs, 46 s from
 * there to the guest's last marker. Each stage's limit is at least three times that.
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import {
  daemon as daemonReq,
  file,
  missingRequirements,
  parseGuestConsole,
  Proc,
  QEMU_INITRD,
  QEMU_KERNEL,
  qemuConsoleArgs,
  qemuGuestRequirements,
  shouldRun,
  tempDir,
} from '../helpers/guests.js';

/** QEMU's default option ROM for its e1000 (BIOS and EFI iPXE), from Debian's ipxe-qemu. */
const IPXE_ROM = '/usr/lib/ipxe/qemu/efi-e1000.rom';
const missing = missingRequirements([daemonReq, ...qemuGuestRequirements, file(IPXE_ROM, 'apt-get install ipxe-qemu')]);
const enabled = shouldRun('pxe.int.test.ts (QEMU + iPXE booting from --tftp)', missing);

/** Stage limits (see the header): firmware to the script, the script's ~9 MB over TFTP, the booted guest's DHCP and pings. */
const SCRIPT_MS = 90_000;
const FETCH_MS = 60_000;
const GUEST_MS = 150_000;

const SCRIPT = `#!ipxe
echo TSLIRP-IPXE-SCRIPT next-server=\${next-server} ip=\${ip} filename=\${filename}
kernel bzImage console=ttyS0 quiet panic=-1 nic=e1000
initrd initrd.gz
echo TSLIRP-IPXE-FETCHED
boot
`;

describe.skipIf(!enabled)('PXE boot from --tftp (QEMU, iPXE)', () => {
  let d: Daemon;
  let base: string;

  beforeAll(async () => {
    base = tempDir('tslirp-pxe-');
    const served = join(base, 'tftp');
    mkdirSync(served);
    // Copies, not links: a link out of the served directory is refused, by design.
    copyFileSync(QEMU_KERNEL, join(served, 'bzImage'));
    copyFileSync(QEMU_INITRD, join(served, 'initrd.gz'));
    writeFileSync(join(served, 'boot.ipxe'), SCRIPT);
    d = await startDaemon(['--stream', `unix:${join(base, 'tslirp.sock')}`, '--tftp', served, '--bootfile', 'boot.ipxe', '--log-level', 'info']);
  });

  afterAll(async () => {
    await d?.stop();
    if (base !== undefined) rmSync(base, { recursive: true, force: true });
  });

  it('has what it needs (qemu, the iPXE ROM, the guest image, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('iPXE leases, fetches its script, kernel and initramfs over TFTP, and the booted guest gets its lease', async () => {
    const qemu = new Proc('qemu pxe', 'qemu-system-x86_64', [
      ...qemuConsoleArgs(),
      '-boot', 'n',
      '-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${d.streamPath()}`,
      '-device', `e1000,netdev=n0,romfile=${IPXE_ROM}`,
    ]);
    const started = Date.now();
    const stages: string[] = [];
    const stage = async (name: string, pattern: RegExp, ms: number): Promise<void> => {
      try {
        await qemu.waitFor(pattern, ms);
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}\nconsole:\n${qemu.output.slice(-4000)}\ndaemon:\n${d.dump().slice(-4000)}`, { cause: e });
      }
      stages.push(`${name} ${((Date.now() - started) / 1000).toFixed(1)} s`);
    };
    try {
      await stage('script', /TSLIRP-IPXE-SCRIPT [^\r\n]*\r?\n/, SCRIPT_MS);
      await stage('kernel and initramfs', /TSLIRP-IPXE-FETCHED/, FETCH_MS);
      await stage('guest', /TSLIRP-DONE/, GUEST_MS);
      await qemu.wait(10_000); // poweroff -f ends QEMU (-no-reboot)
    } finally {
      await qemu.stop();
    }
    console.log(`pxe boot: ${stages.join(', ')}`);
    const text = qemu.output;
    // iPXE's own account: the lease with the boot file and next server, then each TFTP fetch.
    expect(text).toMatch(/net0: 10\.0\.2\.15\/255\.255\.255\.0 gw 10\.0\.2\.2/);
    expect(text).toMatch(/Next server: 10\.0\.2\.2/);
    expect(text).toMatch(/Filename: boot\.ipxe/);
    expect(text).toMatch(/tftp:\/\/10\.0\.2\.2\/boot\.ipxe\.\.\. ok/);
    expect(text).toMatch(/TSLIRP-IPXE-SCRIPT next-server=10\.0\.2\.2 ip=10\.0\.2\.15 filename=boot\.ipxe/);
    expect(text).toMatch(/bzImage\.\.\.[^\r\n]* ok/);
    expect(text).toMatch(/initrd\.gz\.\.\.[^\r\n]* ok/);
    // The booted kernel ran the initramfs's init (so both arrived intact), which leased and pinged.
    const report = parseGuestConsole(text);
    expect(report.lease).toMatchObject({ ip: '10.0.2.15', router: '10.0.2.2', dns: '10.0.2.3', serverid: '10.0.2.2' });
    expect(report.dhcpOk).toBe(true);
    expect(report.pingGatewayOk).toBe(true);
    expect(report.done).toBe(true);
  }, SCRIPT_MS + FETCH_MS + GUEST_MS + 30_000);
});
