import { describe, expect, it } from 'vitest';
import { ICMP_TYPE } from '../../src/ipv4/icmp-wire.js';
import { IP_PROTO, parseIpv4 } from '../../src/ipv4/wire.js';
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from '../../src/nat/flow-table.js';
import { UDP_IDLE_TIMEOUT_MS } from '../../src/nat/udp-flow.js';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { BROADCAST_MAC } from '../../src/util/bytes.js';
import { decode, ip, ipv4Frame, tcpBytes, udpBytes, type Decoded } from '../helpers/frames.js';
import type { EgressRefusedFlow } from '../../src/net/seams.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';

function harness(options: NetworkOptions = {}, limits: FlowLimits = DEFAULT_FLOW_LIMITS) {
  const clock = new ManualClock(0);
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig({ nat: 'symmetric', ...options }), { clock, random: seededRandom(3), emit: (f) => sent.push(f), host, flowLimits: limits });
  const take = (): Decoded[] => sent.splice(0).map(decode);
  const guestSends = (dst: string, dstPort: number, payload: Uint8Array, srcPort = 40000, src = '10.0.2.15'): Decoded[] => {
    const udp = udpBytes({ srcPort, dstPort, payload }, ip(src), ip(dst));
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: ip(src), dst: ip(dst), payload: udp }));
    return take();
  };
  return { clock, host, stack, take, guestSends };
}

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + 1) & 0xff);

describe('UDP NAT, symmetric (a connected socket per flow)', () => {
  it('sends a datagram to the gateway from a host socket connected to 127.0.0.1, and brings the reply back', () => {
    const t = harness();
    expect(t.guestSends('10.0.2.2', 7, bytes(100))).toEqual([]);
    expect(t.host.calls).toEqual([['udpOpen', 1, { addr: ip('127.0.0.1'), port: 7 }], ['udpSend', 1, bytes(100)]]);
    t.stack.udpReceived(1, bytes(300));
    const [reply] = t.take();
    expect(reply!.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') });
    expect(reply!.udp).toEqual({ srcPort: 7, dstPort: 40000, payload: bytes(300) });
    expect(t.stack.flows()).toMatchObject([{ protocol: 'udp', guest: { addr: ip('10.0.2.15'), port: 40000 }, remote: { addr: ip('10.0.2.2'), port: 7 }, bytesFromGuest: 100, bytesToGuest: 300 }]);
  });

  it('reuses the flow for the same tuple and opens another for another port', () => {
    const t = harness();
    t.guestSends('192.0.2.7', 5000, bytes(1));
    t.guestSends('192.0.2.7', 5000, bytes(2));
    t.guestSends('192.0.2.7', 5000, bytes(3), 40001);
    expect(t.host.callsOf('udpOpen')).toEqual([[1, { addr: ip('192.0.2.7'), port: 5000 }], [2, { addr: ip('192.0.2.7'), port: 5000 }]]);
    expect(t.host.callsOf('udpSend').map(([flow]) => flow)).toEqual([1, 1, 2]);
  });

  it('fragments a reply larger than the MTU', () => {
    const t = harness({ mtu: 1500 });
    t.guestSends('10.0.2.2', 9, bytes(1));
    t.stack.udpReceived(1, bytes(4000));
    const frames = t.take();
    expect(frames.map((d) => d.ip!.payload.length)).toEqual([1480, 1480, 1048]);
  });

  it('turns ECONNREFUSED into ICMP port unreachable quoting the guest\'s headers', () => {
    const t = harness();
    t.guestSends('10.0.2.2', 9999, bytes(10));
    t.stack.udpError(1, 'ECONNREFUSED');
    const [err] = t.take();
    expect(err!.icmp).toMatchObject({ type: ICMP_TYPE.DEST_UNREACHABLE, code: 3 });
    expect(err!.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') });
    const quoted = parseIpv4(err!.icmp!.payload);
    expect(quoted).toMatchObject({ src: ip('10.0.2.15'), dst: ip('10.0.2.2'), protocol: IP_PROTO.UDP });
    expect(Array.from((quoted as { payload: Uint8Array }).payload.subarray(0, 4))).toEqual([0x9c, 0x40, 0x27, 0x0f]);
    t.stack.udpError(1, 'EHOSTUNREACH');
    expect(t.take()[0]!.icmp).toMatchObject({ code: 1 });
    t.stack.udpError(1, 'ENETUNREACH');
    expect(t.take()[0]!.icmp).toMatchObject({ code: 0 });
    t.stack.udpError(1, 'EMSGSIZE');
    expect(t.take()).toEqual([]);
  });

  it('--restrict refuses every outbound flow with administratively prohibited', () => {
    const t = harness({ restrict: true });
    const [err] = t.guestSends('10.0.2.2', 7, bytes(4));
    expect(err!.icmp).toMatchObject({ type: ICMP_TYPE.DEST_UNREACHABLE, code: 13 });
    expect(t.host.calls).toEqual([]);
    expect(t.stack.counters.get('nat.restricted')).toBe(1);
  });

  it('--disable-host-loopback refuses the gateway but lets the outside through', () => {
    const t = harness({ disableHostLoopback: true });
    expect(t.guestSends('10.0.2.2', 7, bytes(4))[0]!.icmp).toMatchObject({ code: 13 });
    expect(t.guestSends('192.0.2.1', 7, bytes(4))).toEqual([]);
    expect(t.host.callsOf('udpOpen')).toEqual([[1, { addr: ip('192.0.2.1'), port: 7 }]]);
  });

  it('does not forward broadcast, multicast or loopback destinations', () => {
    const t = harness();
    const udp = udpBytes({ srcPort: 5353, dstPort: 5353, payload: bytes(4) }, ip('10.0.2.15'), ip('224.0.0.251'));
    t.stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('224.0.0.251'), payload: udp }, BROADCAST_MAC));
    t.guestSends('10.0.2.255', 137, bytes(4));
    t.guestSends('127.0.0.1', 7, bytes(4));
    expect(t.host.calls).toEqual([]);
    expect(t.stack.counters.get('nat.martian-destination')).toBe(1);
  });

  it('closes flows idle for the timeout', () => {
    const t = harness();
    t.guestSends('10.0.2.2', 7, bytes(1));
    t.clock.set(60_000);
    t.guestSends('10.0.2.2', 8, bytes(1));
    expect(t.stack.nextDeadline()).toBe(UDP_IDLE_TIMEOUT_MS);
    t.clock.set(UDP_IDLE_TIMEOUT_MS);
    t.stack.advance();
    expect(t.host.callsOf('close')).toEqual([[1]]);
    expect(t.stack.flows()).toHaveLength(1);
    expect(t.stack.nextDeadline()).toBe(60_000 + UDP_IDLE_TIMEOUT_MS);
  });

  it('keeps the table at the network limit by evicting the least recently active flow', () => {
    const t = harness({}, { udp: 4, tcp: 4, perGuest: { udp: 8, tcp: 8 } });
    for (let port = 1; port <= 10; port++) {
      t.clock.advance(1);
      t.guestSends('10.0.2.2', port, bytes(1));
    }
    t.guestSends('10.0.2.2', 7, bytes(1)); // refresh flow 7
    t.guestSends('10.0.2.2', 11, bytes(1));
    expect(t.stack.flows().map((f) => f.remote.port).sort((a, b) => a - b)).toEqual([7, 9, 10, 11]);
    expect(t.host.callsOf('close')).toHaveLength(7);
    expect(t.stack.counters.get('udp.flow-evicted')).toBe(7);
  });

  it('a guest at its own flow limit recycles its own flows, not those of another guest of the network', () => {
    const t = harness({}, { udp: 64, tcp: 64, perGuest: { udp: 3, tcp: 3 } });
    t.guestSends('10.0.2.2', 1, bytes(1), 40000, '10.0.2.16');
    for (let port = 1; port <= 6; port++) {
      t.clock.advance(1);
      t.guestSends('10.0.2.2', port, bytes(1));
    }
    t.guestSends('10.0.2.2', 2, bytes(1), 40000, '10.0.2.16');
    const byGuest = (guest: string) => t.stack.flows().filter((f) => f.guest.addr === ip(guest)).map((f) => f.remote.port).sort((a, b) => a - b);
    expect(byGuest('10.0.2.15')).toEqual([4, 5, 6]);
    expect(byGuest('10.0.2.16')).toEqual([1, 2]);
    expect(t.stack.counters.get('nat.udp-guest-limit')).toBe(3);
    expect(t.stack.counters.get('udp.flow-evicted')).toBe(0);
  });

  it('ignores host events for unknown or closed flows', () => {
    const t = harness();
    t.stack.udpReceived(42, bytes(3));
    t.stack.udpError(42, 'ECONNREFUSED');
    expect(t.take()).toEqual([]);
    expect(t.stack.counters.get('stack.internal-error')).toBe(0);
  });
});

describe('egress refusals reported with the rule that matched', () => {
  it('hands the stack\'s onEgressRefused the flow, the rule as written and the ingress port, for UDP and TCP', () => {
    const clock = new ManualClock(0);
    const host = new FakeHost();
    const seen: [EgressRefusedFlow, number | undefined][] = [];
    const stack = new Stack(resolveStackConfig({ egress: [['allow', '192.0.2.1'], ['deny', '192.0.2.0/24,port=1-100']] }), {
      clock, random: seededRandom(3), emit: () => undefined, host, onEgressRefused: (e, port) => seen.push([e, port]),
    });
    const udp = udpBytes({ srcPort: 40000, dstPort: 53, payload: bytes(4) }, ip('10.0.2.15'), ip('192.0.2.9'));
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: ip('10.0.2.15'), dst: ip('192.0.2.9'), payload: udp }), 7);
    const syn = tcpBytes({ srcPort: 41000, dstPort: 22, flags: TCP_FLAG.SYN, seq: 1 }, ip('10.0.2.15'), ip('10.0.2.2'));
    stack.config.egress!.markPublic();
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.TCP, src: ip('10.0.2.15'), dst: ip('10.0.2.2'), payload: syn }), 3);
    // Allowed by the first rule: nothing reported, the flow opens.
    const ok = udpBytes({ srcPort: 40001, dstPort: 53, payload: bytes(4) }, ip('10.0.2.15'), ip('192.0.2.1'));
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: ip('10.0.2.15'), dst: ip('192.0.2.1'), payload: ok }), 7);
    expect(seen).toEqual([
      [{ protocol: 'udp', guest: { addr: ip('10.0.2.15'), port: 40000 }, remote: { addr: ip('192.0.2.9'), port: 53 }, to: { addr: ip('192.0.2.9'), port: 53 }, drop: 'nat.egress-denied', rule: '--egress-deny 192.0.2.0/24,port=1-100' }, 7],
      [{ protocol: 'tcp', guest: { addr: ip('10.0.2.15'), port: 41000 }, remote: { addr: ip('10.0.2.2'), port: 22 }, to: { addr: ip('127.0.0.1'), port: 22 }, drop: 'nat.egress-public-default', rule: 'default public: 127.0.0.0/8' }, 3],
    ]);
    expect(stack.counters.get('nat.egress-denied')).toBe(1);
    expect(stack.counters.get('nat.egress-public-default')).toBe(1);
    expect(host.calls.length).toBeGreaterThan(0); // the allowed flow's socket, and only it
  });
});
