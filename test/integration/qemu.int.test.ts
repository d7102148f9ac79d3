/**
 * A Linux guest under QEMU with a real e1000 NIC, attached to the daemon with QEMU's own
 * `-netdev stream` (unix and TCP) and `-netdev dgram`. The guest (scripts/build-qemu-guest.sh)
 * runs udhcpc and ping from its /init and prints TSLIRP-* markers on the serial console.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import {
  daemon as daemonReq,
  freeUdpPort,
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
import { expectGuestOnline } from './expect-guest.js';

const KERNEL = QEMU_KERNEL;
const INITRD = QEMU_INITRD;
const missing = missingRequirements([
  daemonReq,
  ...qemuGuestRequirements,
]);
const enabled = shouldRun('qemu.int.test.ts (Linux e1000 guest under QEMU)', missing);

/**
 * The whole boot, DHCP and pings must finish within this (TCG, shared cores). With the three
 * guests booting at once each took 57–58 s here at a load average of 9–10 (one at a time: 17–30 s).
 */
const BOOT_LIMIT_MS = 180_000;

/** Boots the guest with the given `-netdev` and returns its console transcript. */
async function bootGuest(netdev: string): Promise<{ text: string; seconds: number }> {
  const started = Date.now();
  const qemu = new Proc('qemu guest', 'qemu-system-x86_64', [
    ...qemuConsoleArgs(),
    '-kernel', KERNEL, '-initrd', INITRD,
    // no_timer_check: Linux's boot-time check that the timer interrupt works counts ticks over a
    // TSC-timed delay; a TCG guest starved of the host CPU (three at once, a loaded machine) fails
    // it and panics ("IO-APIC + timer doesn't work!", seen here at a load average of 13).
    '-append', 'console=ttyS0 quiet panic=-1 nic=e1000 no_timer_check',
    '-netdev', `${netdev},id=n0`,
    '-device', 'e1000,netdev=n0,romfile=', // no PXE option ROM needed with -kernel
  ]);
  try {
    await qemu.waitFor(/TSLIRP-DONE/, BOOT_LIMIT_MS);
    await qemu.wait(10_000); // poweroff -f ends QEMU (-no-reboot)
  } finally {
    await qemu.stop();
  }
  return { text: qemu.output, seconds: (Date.now() - started) / 1000 };
}

describe.skipIf(!enabled)('QEMU e1000 guest', () => {
  let d: Daemon;
  let sockDir: string;

  beforeAll(async () => {
    sockDir = tempDir('tslirp-qemu-');
    d = await startDaemon(['--stream', `unix:${join(sockDir, 'tslirp.sock')}`, '--stream', 'tcp:127.0.0.1:0', '--dgram', 'udp:127.0.0.1:0']);
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(sockDir, { recursive: true, force: true });
  });

  it('has what it needs (qemu, guest image, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  const links: [string, () => Promise<string>][] = [
    ['-netdev stream (unix socket)', () => Promise.resolve(`stream,server=off,addr.type=unix,addr.path=${d.streamPath()}`)],
    ['-netdev stream (TCP)', () => Promise.resolve(`stream,server=off,addr.type=inet,addr.host=${d.streamTcp().host},addr.port=${d.streamTcp().port}`)],
    [
      '-netdev dgram (UDP)',
      async () => {
        const { host, port } = d.dgram();
        const local = await freeUdpPort();
        return `dgram,remote.type=inet,remote.host=${host},remote.port=${port},local.type=inet,local.host=127.0.0.1,local.port=${local}`;
      },
    ],
  ];

  // The three guests boot at once, each on its own private network of the one daemon: TCG runs
  // a guest on one core, so on the 2 cores this takes less time than one after another.
  for (const [label, netdev] of links) {
    it.concurrent(`${label}: udhcpc gets 10.0.2.15/24 via 10.0.2.2, DNS 10.0.2.3, and pings answer`, async () => {
      const { text, seconds } = await bootGuest(await netdev());
      console.log(`qemu.int: ${label} guest finished in ${seconds.toFixed(1)} s`);
      const report = parseGuestConsole(text);
      const context = `guest console:\n${text.slice(-5000)}\ndaemon:\n${d.dump().slice(-5000)}`;
      expectGuestOnline(report, context);
      expect(d.alive(), d.dump()).toBe(true);
    }, BOOT_LIMIT_MS + 20_000);
  }
});
