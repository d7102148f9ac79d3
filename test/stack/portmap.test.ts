/**
 * The stack with `--nat-pmp on`: UDP to the gateway's port 5351 reaches the mapping server,
 * whose mapping is a forward listening through the host seam and answered once bound; a host
 * client of it becomes a flow to the guest; it expires on the stack's clock. Without the
 * option the port is NAT to the host's loopback, as before.
 */
import { describe, expect, it } from 'vitest';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { writeNatPmpMapRequest } from '../../src/portmap/wire.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { decode, ip, ipv4Frame, udpBytes } from '../helpers/frames.js';

function harness(natPmp: boolean) {
  const clock = new ManualClock(0);
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig({ natPmp: natPmp ? 'on' : 'off' }), { clock, random: seededRandom(9), emit: (f) => sent.push(f.slice()), host });
  const request = (payload: Uint8Array): void =>
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: ip('10.0.2.15'), dst: ip('10.0.2.2'), payload: udpBytes({ srcPort: 40000, dstPort: 5351, payload }, ip('10.0.2.15'), ip('10.0.2.2')) }));
  return { clock, host, stack, sent, request };
}

describe('stack: NAT-PMP on the gateway', () => {
  it('opens a mapping as a listening forward, answers from port 5351 once bound, expires it', () => {
    const t = harness(true);
    t.request(writeNatPmpMapRequest({ protocol: 'tcp', internalPort: 80, suggestedPort: 8080, lifetimeS: 30 }));
    const [listen] = t.host.callsOf('tcpListen');
    expect(listen).toEqual([expect.any(Number), { addr: ip('127.0.0.1'), port: 8080 }]);
    expect(t.sent).toEqual([]);
    const id = listen![0] as number;
    t.stack.tcpListening(id, { addr: ip('127.0.0.1'), port: 8080 });
    const answer = decode(t.sent.at(-1)!);
    expect(answer.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') });
    expect(answer.udp).toMatchObject({ srcPort: 5351, dstPort: 40000 });
    expect(Buffer.from(answer.udp!.payload).toString('hex')).toBe('00820000000000000050' + '1f90' + '0000001e');
    expect(t.stack.portMappings()).toMatchObject([{ origin: 'natpmp', protocol: 'tcp', external: { port: 8080 } }]);
    expect(t.stack.forwards()).toMatchObject([
      { id, rule: { protocol: 'tcp', guestPort: 80 }, local: { addr: ip('127.0.0.1'), port: 8080 }, mapping: { origin: 'natpmp', expiresAtMs: 30_000 } },
    ]);
    expect(t.stack.forwards().length).toBe(1);
    // A host client becomes a flow to the guest (a SYN to 10.0.2.15:80).
    t.stack.tcpAccepted(id, 7, { addr: ip('127.0.0.1'), port: 50000 });
    expect(t.host.callsOf('tcpAdopt')).toEqual([[7, expect.any(Number)]]);
    expect(decode(t.sent.at(-1)!).tcp).toMatchObject({ dstPort: 80, flags: TCP_FLAG.SYN });
    expect(t.stack.nextDeadline()).toBeLessThanOrEqual(30_000);
    t.clock.set(30_000);
    t.stack.advance();
    expect(t.host.callsOf('close')).toContainEqual([id]);
    expect(t.stack.portMappings()).toEqual([]);
    expect(t.stack.forwards()).toEqual([]);
    expect(t.stack.counters.get('portmap.expired')).toBe(1);
  });

  it('without --nat-pmp, port 5351 of the gateway is the host loopback\'s, through NAT', () => {
    const t = harness(false);
    t.request(writeNatPmpMapRequest({ protocol: 'tcp', internalPort: 80, suggestedPort: 8080, lifetimeS: 30 }));
    expect(t.host.callsOf('tcpListen')).toEqual([]);
    // The default NAT (endpoint-independent) binds one socket for the guest endpoint; the request waits for it.
    expect(t.host.callsOf('udpBind')).toHaveLength(1);
    const [socket] = t.host.callsOf('udpBind')[0]! as [number];
    t.stack.udpBound(socket, { addr: 0, port: 40000 });
    expect(t.host.callsOf('udpSendTo').map(([, to]) => to)).toEqual([{ addr: ip('127.0.0.1'), port: 5351 }]);
  });

  it('refuses a bad --nat-pmp value', () => {
    expect(() => resolveStackConfig({ natPmp: 'yes' })).toThrow(/--nat-pmp: 'yes' must be on or off/);
  });
});
