/**
 * The unmodified Linux e1000 driver on our model: v86 boots Debian's i386 kernel, our E1000
 * is plugged into v86's PCI bus (test/nic-e1000/v86-run.ts, in a child process so a hang can be
 * killed), the stack answers behind it. The guest probes the NIC (EEPROM by Microwire, PHY,
 * reset through the I/O BAR), gets a DHCP lease and pings the gateway and the DNS address.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CACHE_DIR, file, missingRequirements, parseGuestConsole, Proc, shouldRun } from '../helpers/guests.js';

const GUEST = join(CACHE_DIR, 'e1000-v86-guest');
const RUNNER = join(CACHE_DIR, '..', 'test', 'nic-e1000', 'v86-run.ts');
const missing = missingRequirements([
  file('/usr/share/seabios/bios.bin', 'apt-get install seabios'),
  file('/usr/share/seabios/vgabios-stdvga.bin', 'apt-get install seabios'),
  file(join(GUEST, 'bzImage'), 'build it with scripts/e1000-v86-guest.sh'),
  file(join(GUEST, 'initrd.gz'), 'build it with scripts/e1000-v86-guest.sh'),
]);
const enabled = shouldRun('e1000-v86.int.test.ts (Linux e1000 driver on the model inside v86)', missing);
// A v86 boot took 35–41 s in CI-like runs and 118 s with the suite beside four other test runs on
// the 2 cores: the limit keeps a 3× margin over the worst of those.
const LIMIT_S = 360;

describe.skipIf(!enabled)('Linux e1000 driver on the model (v86)', () => {
  it('has what it needs', () => {
    expect(missing).toEqual([]);
  });

  it('probes the 82540EM, gets 10.0.2.15 by DHCP and pings 10.0.2.2 and 10.0.2.3', async () => {
    const p = new Proc('e1000-v86', process.execPath, ['--import', 'tsx', RUNNER, '--guest', GUEST, '--timeout', String(LIMIT_S)]);
    let exit;
    try {
      exit = await p.wait((LIMIT_S + 10) * 1000);
    } finally {
      await p.stop();
    }
    const report = parseGuestConsole(p.output);
    const context = `guest console:\n${p.tail(6000)}`;
    expect(exit, context).toEqual({ code: 0, signal: null });
    expect(p.output, context).not.toContain('TSLIRP-INSMOD-FAILED');
    expect(report.dhcpOk, context).toBe(true);
    expect(report.lease, context).toMatchObject({ ip: '10.0.2.15', subnet: '255.255.255.0', router: '10.0.2.2', dns: '10.0.2.3' });
    expect(report.pingReplies, context).toBe(3);
    expect(report.pingDnsOk, context).toBe(true);
    const exits = /model exits mmio=(\d+) io=(\d+) config=\d+ txFrames=(\d+) rxFrames=(\d+)/.exec(p.output);
    expect(exits, context).not.toBeNull();
    console.log(`e1000-v86: ${exits![0]}`);
  }, (LIMIT_S + 30) * 1000);
});
