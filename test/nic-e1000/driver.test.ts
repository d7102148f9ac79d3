import { describe, expect, it } from 'vitest';
import { Stack } from '../../src/stack/stack.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { seededRandom } from '../../src/util/clock.js';
import { finish, sum16 } from '../../src/util/checksum.js';
import { R } from '../../src/nic-e1000/regs.js';
import { LinuxLikeDriver } from './driver.js';
import { arpRequestForGateway, dhcpClient, isArpReply, ethernet, GUEST_MAC, icmpEcho, ip, ipv4, parseDhcpReply, parseFrame, PEER_MAC, udp } from './frames.js';
import { modelTarget } from './qtest-client.js';

async function upDriver(): Promise<{ t: ReturnType<typeof modelTarget>; drv: LinuxLikeDriver }> {
  const t = modelTarget();
  const drv = new LinuxLikeDriver(t, 32, 32);
  const sum = await drv.probe();
  expect(sum).toBe(0xbaba);
  await drv.open();
  await t.wait(600); // autonegotiation completes, LSC
  expect(await t.irq()).toBe(true);
  const { icr } = await drv.interrupt();
  expect(icr & 0x04).toBe(0x04);
  expect((await drv.r(R.TCTL)) & 2).toBe(2);
  return { t, drv };
}

describe('nic-e1000 driven like Linux', () => {
  it('probes: EEPROM checksum 0xBABA by Microwire, the MAC, the PHY id', async () => {
    const t = modelTarget();
    const drv = new LinuxLikeDriver(t);
    expect(await drv.probe()).toBe(0xbaba);
    expect([...drv.mac]).toEqual([...GUEST_MAC]);
    expect(drv.eepromWords[63]).toBe(0x79ad);
    // CTRL.RST through the I/O BAR reset the MAC (QEMU ignores it: a documented deviation).
    expect(t.dev.drops.get('e1000.ctrl-rst')).toBe(2);
    // ANRESTART dropped the link; it comes back 500 ms later (model time: 1 ms per access).
    expect(t.dev.autonegAtNs).toBeDefined();
    await t.wait(600);
    expect((await drv.r(R.STATUS)) & 2).toBe(2);
    expect((await drv.phyRead(1)) & 0x24).toBe(0x24);
    expect((await drv.r(R.ICR)) & 0x04).toBe(0x04);
  });

  it('transmits a frame and reports it with TXDW', async () => {
    const { t, drv } = await upDriver();
    const frame = ethernet(PEER_MAC, GUEST_MAC, 0x0800, ipv4(ip('10.0.2.15'), ip('10.0.2.2'), 17,
      udp(ip('10.0.2.15'), ip('10.0.2.2'), 1000, 2000, new Uint8Array(100).fill(7))));
    await drv.transmit(frame);
    const sent = await t.takeFrames();
    expect(sent).toEqual([frame]);
    const { icr, txDone } = await drv.interrupt();
    expect(icr & 0x03).toBe(0x03); // TXDW | TXQE
    expect(txDone).toBe(1);
  });

  it('receives frames, refills and keeps going around the ring', async () => {
    const { t, drv } = await upDriver();
    const got: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) {
      const f = ethernet(GUEST_MAC, PEER_MAC, 0x0800, ipv4(ip('10.0.2.2'), ip('10.0.2.15'), 17,
        udp(ip('10.0.2.2'), ip('10.0.2.15'), 53, 1000 + i, new Uint8Array(i * 10).fill(i))));
      await t.inject(f);
      if (i % 7 === 6 || i === 99) {
        await t.wait(1);
        const { frames } = await drv.interrupt();
        for (const r of frames) got.push(r.bytes.subarray(0, r.bytes.length - 4));
      }
    }
    expect(got.length).toBe(100);
    expect(t.dev.exits.rxFrames).toBe(100);
    expect(t.dev.exitsPerFrame).toBeGreaterThan(0);
    for (let i = 0; i < 100; i++) expect(parseFrame(got[i]!)!.l4[3]).toBe((1000 + i) & 0xff);
  });

  it('gets a DHCP lease from the stack and pings 10.0.2.2 through the model', async () => {
    const { t, drv } = await upDriver();
    let nowMs = 0;
    const toGuest: Uint8Array[] = [];
    const stack = new Stack(resolveStackConfig(), { clock: { now: () => nowMs }, random: seededRandom(7), emit: (f) => toGuest.push(f) });
    /** Moves frames both ways until nothing moves; returns what the driver received. */
    const pump = async (): Promise<Uint8Array[]> => {
      const received: Uint8Array[] = [];
      for (let round = 0; round < 20; round++) {
        const out = await t.takeFrames();
        for (const f of out) stack.receiveFrame(f);
        const inbound = toGuest.splice(0);
        for (const f of inbound) await t.inject(f);
        nowMs += 1;
        await t.wait(1);
        const { frames } = await drv.interrupt();
        for (const r of frames) received.push(r.bytes.subarray(0, r.bytes.length - 4));
        if (out.length === 0 && inbound.length === 0 && frames.length === 0) break;
      }
      return received;
    };
    await drv.transmit(dhcpClient(drv.mac, 0x1234, 1));
    const offer = (await pump()).map(parseDhcpReply).find((m) => m?.type === 2);
    expect(offer).toBeDefined();
    await drv.transmit(dhcpClient(drv.mac, 0x1234, 3, offer!.yiaddr, offer!.server));
    const ack = (await pump()).map(parseDhcpReply).find((m) => m?.type === 5);
    expect(ack?.yiaddr).toBe(ip('10.0.2.15'));
    // ARP for the gateway, then an echo request.
    await drv.transmit(arpRequestForGateway(drv.mac));
    const arpReply = (await pump()).find(isArpReply);
    expect(arpReply).toBeDefined();
    const gwMac = arpReply!.slice(6, 12);
    const data = new Uint8Array(56).map((_, i) => i);
    await drv.transmit(ethernet(gwMac, drv.mac, 0x0800, ipv4(ip('10.0.2.15'), ip('10.0.2.2'), 1, icmpEcho(0x77, 1, data))));
    const reply = (await pump()).map(parseFrame).find((p) => p?.proto === 1 && p.l4[0] === 0);
    expect(reply?.src).toBe(ip('10.0.2.2'));
    expect(reply!.l4.subarray(8)).toEqual(data);
    expect(finish(sum16(reply!.l4, 0, reply!.l4.length))).toBe(0);
  });
});
