/**
 * The v86 emulator (npm v86) running an i386 Linux guest under Node, its NIC (ne2k-pci and
 * virtio-net) relayed to the daemon's WebSocket listener, one Ethernet frame per message.
 * The emulator runs in a child process (scripts/run-v86-guest.mjs) so a hang can be killed.
 * The virtio-net guest is on a network of MTU 65520 (`--net-option jumbo:mtu=65520`,
 * `?network=jumbo`) with v86's virtio-net offering that MTU (`net_device.mtu`): DHCP option 26
 * gives the guest 65520, it sets it, and 60,000-byte pings of the gateway go through whole.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { rmSync } from 'node:fs';
import { daemon as daemonReq, guestWithCurrentInit, missingRequirements, parseGuestConsole, Proc, SEABIOS, shouldRun, V86_GUEST_DIR, v86GuestRequirements, VGABIOS } from '../helpers/guests.js';
import { expectGuestOnline } from './expect-guest.js';

const RUNNER = join(REPO_ROOT, 'scripts', 'run-v86-guest.mjs');
const missing = missingRequirements([daemonReq, ...v86GuestRequirements()]);
const enabled = shouldRun('v86.int.test.ts (v86 guest over the WebSocket relay)', missing);

/** Boot (~12 s here), DHCP and pings; generous because the wasm JIT shares 2 cores. */
// A v86 boot took 26–35 s in CI-like runs and 88–99 s with the suite beside four other test runs
// on the 2 cores; with the two guests booting at once, 62–66 s each at a load average of 9–10 and
// 113–128 s at 15. The limit keeps a 3× margin over the worst of those.
const BOOT_LIMIT_S = 400;
/** The largest MTU tslirp offers (and Linux's virtio_net takes from a device that offers it). */
const JUMBO = 65520;

describe.skipIf(!enabled)('v86 guest over the WebSocket relay', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startDaemon(['--ws', '127.0.0.1:0', '--net-option', `jumbo:mtu=${JUMBO}`]);
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('has what it needs (seabios, guest image, v86, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  // Both guests boot at once, each in its own process on its own private network: v86 runs a
  // guest on one core, so on the 2 cores this takes about the time of one boot.
  for (const nic of ['ne2k', 'virtio'] as const) {
    const jumbo = nic === 'virtio';
    it.concurrent(`${nic}: udhcpc gets 10.0.2.15/24 via 10.0.2.2, DNS 10.0.2.3, and pings answer${jumbo ? `; MTU ${JUMBO} from DHCP, 60000-byte pings` : ''}`, async () => {
      const started = Date.now();
      const guest = jumbo ? guestWithCurrentInit(V86_GUEST_DIR, { apply_mtu: '1', big_ping: '60000' }) : V86_GUEST_DIR;
      const v86 = new Proc(`v86 ${nic}`, process.execPath, [
        RUNNER, '--relay', jumbo ? `${d.wsUrl()}?network=jumbo` : d.wsUrl(), '--nic', nic, '--guest', guest, '--bios', SEABIOS, '--vgabios', VGABIOS, '--timeout', String(BOOT_LIMIT_S),
        ...(jumbo ? ['--mtu', String(JUMBO)] : []),
      ]);
      let exit;
      try {
        exit = await v86.wait((BOOT_LIMIT_S + 10) * 1000);
      } finally {
        await v86.stop();
        if (jumbo) rmSync(guest, { recursive: true, force: true });
      }
      console.log(`v86.int: ${nic} guest finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const report = parseGuestConsole(v86.output);
      const context = `guest console:\n${v86.tail(5000)}\ndaemon:\n${d.dump().slice(-5000)}`;
      expect(exit, context).toEqual({ code: 0, signal: null });
      expectGuestOnline(report, context);
      if (jumbo) {
        expect(report.lease?.['mtu'], context).toBe(String(JUMBO));
        expect(v86.output, context).toContain(`TSLIRP-MTU ${JUMBO}`);
        expect(v86.output, context).toContain('TSLIRP-BIG-PING-OK');
        expect([...v86.output.matchAll(/60008 bytes from 10\.0\.2\.2: seq=/g)].length, context).toBeGreaterThanOrEqual(2);
      }
      expect(d.alive(), d.dump()).toBe(true);
    }, (BOOT_LIMIT_S + 30) * 1000);
  }
});
