import { describe, expect, it } from 'vitest';
import { ETHERTYPE, parseEthernet } from '../../src/ethernet/wire.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { NEXT_HEADER, parseIpv6, type Ipv6 } from '../../src/ipv6/wire.js';
import { ForwardRefusals } from '../../src/nat/forward-refusals.js';
import { parseForwardRule } from '../../src/nat/forwards.js';
import { parseIpAddr, type Ipv6Addr } from '../../src/net/addr.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { isDrop } from '../../src/util/drops.js';
import { FakeHost } from '../helpers/fake-host.js';
import { decode, ethernetFrame, GATEWAY_MAC, ip, ipv4Frame, tcpBytes, udpBytes, type Decoded } from '../helpers/frames.js';
import { a6, tcp6Packet } from '../helpers/frames6.js';

const { SYN, ACK, RST } = TCP_FLAG;

function harness() {
  const clock = new ManualClock(0);
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig({}), { clock, random: seededRandom(9), emit: (f) => sent.push(f.slice()), host });
  const take = (): Decoded[] => sent.splice(0).map(decode);
  const take6 = (): Ipv6[] =>
    sent.splice(0).flatMap((f) => {
      const e = parseEthernet(f);
      if (isDrop(e) || e.etherType !== ETHERTYPE.IPV6) return [];
      const p = parseIpv6(e.payload);
      return isDrop(p) ? [] : [p];
    });
  /** Any frame from the guest teaches the stack its MAC (a forward's first packet needs it). */
  const guestKnown = (): void => {
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip('10.0.2.2'), payload: tcpBytes({ srcPort: 1, dstPort: 1, flags: RST, seq: 1 }, ip('10.0.2.15'), ip('10.0.2.2')) }));
    take();
  };
  const logs: object[] = [];
  const open = (text: string) => {
    const rule = parseForwardRule(text);
    const refusals = new ForwardRefusals(rule, { warn: (o) => logs.push(o) });
    const id = stack.openForward(rule, refusals)!;
    return { rule, refusals, id };
  };
  return { clock, host, stack, take, take6, guestKnown, open, logs };
}

const CLIENT = { addr: ip('127.0.0.1'), port: 45000 };

describe('stack: TCP forwards through the host seam', () => {
  it('listens through the host, and adopts an accepted client into a flow whose SYN goes to the guest', () => {
    const t = harness();
    t.guestKnown();
    const f = t.open('tcp::2222-10.0.2.15:22');
    expect(t.host.calls.at(-1)).toEqual(['tcpListen', f.id, { addr: ip('127.0.0.1'), port: 2222 }]);
    t.stack.tcpListening(f.id, { addr: ip('127.0.0.1'), port: 2222 });
    expect(t.stack.forwardLocal(f.id)).toEqual({ addr: ip('127.0.0.1'), port: 2222 });
    t.stack.tcpAccepted(f.id, 7, CLIENT);
    const [adopt] = t.host.callsOf('tcpAdopt');
    expect(adopt).toEqual([7, expect.any(Number)]);
    const [syn] = t.take();
    expect(syn!.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') });
    expect(syn!.tcp).toMatchObject({ srcPort: 45000, dstPort: 22, flags: SYN });
    expect(t.stack.flows()).toMatchObject([{ id: adopt![1], protocol: 'tcp', origin: 'forward', host: CLIENT, local: { addr: ip('127.0.0.1'), port: 2222 } }]);
    // The guest completes the handshake: the adopted socket is resumed.
    const synAck = tcpBytes({ srcPort: 22, dstPort: 45000, flags: SYN | ACK, seq: 500, ack: syn!.tcp!.seq + 1 }, ip('10.0.2.15'), ip('10.0.2.2'));
    t.stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip('10.0.2.2'), payload: synAck }));
    expect(t.host.callsOf('tcpPause')).toContainEqual([adopt![1], false]);
  });

  it('refuses a client while the guest has no address, counted and logged', () => {
    const t = harness();
    const f = t.open('tcp::2222-:22'); // the first lease: there is none
    t.stack.tcpAccepted(f.id, 3, CLIENT);
    expect(t.host.callsOf('tcpRefuse')).toEqual([[3]]);
    expect(t.host.callsOf('tcpAdopt')).toEqual([]);
    expect(f.refusals.counters.get('hostfwd.no-guest-address')).toBe(1);
    expect(t.logs).toMatchObject([{ reason: 'hostfwd.no-guest-address', client: '127.0.0.1:45000' }]);
  });

  it('refuses a client the NAT refuses (an IPv6 client), and one of a closed forward', () => {
    const t = harness();
    const f = t.open('tcp::2222-10.0.2.15:22');
    t.stack.tcpAccepted(f.id, 4, { addr: parseIpAddr('2001:db8::1')!, port: 1 });
    expect(f.refusals.counters.get('hostfwd.refused-by-session')).toBe(1);
    t.stack.closeForward(f.id);
    expect(t.host.calls.at(-1)).toEqual(['close', f.id]);
    t.stack.tcpAccepted(f.id, 5, CLIENT);
    expect(t.host.callsOf('tcpRefuse')).toEqual([[4], [5]]);
  });

  it('counts listening-socket errors; a listener that never bound is dropped', () => {
    const t = harness();
    const f = t.open('tcp::2222-10.0.2.15:22');
    t.stack.tcpListenError(f.id, 'EADDRINUSE');
    expect(f.refusals.counters.get('hostfwd.socket-error')).toBe(1);
    t.stack.tcpAccepted(f.id, 1, CLIENT);
    expect(t.host.callsOf('tcpRefuse')).toEqual([[1]]);
  });

  it('releases forwards when the stack closes', () => {
    const t = harness();
    const f = t.open('tcp::2222-10.0.2.15:22');
    const g = t.open('udp::5353-10.0.2.15:53');
    t.stack.close();
    expect(t.host.callsOf('close')).toEqual([[f.id], [g.id]]);
  });
});

describe('stack: UDP forwards through bound host sockets', () => {
  it('binds through the host; a client becomes a flow, its replies leave by udpSendTo', () => {
    const t = harness();
    t.guestKnown();
    const f = t.open('udp::5353-10.0.2.15:7');
    expect(t.host.calls.at(-1)).toEqual(['udpBind', f.id, { addr: ip('127.0.0.1'), port: 5353 }]);
    t.stack.udpBound(f.id, { addr: ip('127.0.0.1'), port: 5353 });
    t.stack.udpReceivedFrom(f.id, CLIENT, Uint8Array.of(1, 2, 3));
    const [d] = t.take();
    expect(d!.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') }); // loopback clients appear as the gateway
    expect(d!.udp).toEqual({ srcPort: 45000, dstPort: 7, payload: Uint8Array.of(1, 2, 3) });
    t.stack.udpReceivedFrom(f.id, CLIENT, Uint8Array.of(4));
    expect(t.take()).toHaveLength(1);
    expect(t.stack.flows()).toMatchObject([{ protocol: 'udp', origin: 'forward', local: { addr: ip('127.0.0.1'), port: 5353 }, packetsFromGuest: 0, packetsToGuest: 2 }]); // one flow per client
    const reply = udpBytes({ srcPort: 7, dstPort: 45000, payload: Uint8Array.of(9) }, ip('10.0.2.15'), ip('10.0.2.2'));
    t.stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.2'), payload: reply }));
    expect(t.host.callsOf('udpSendTo')).toEqual([[f.id, CLIENT, Uint8Array.of(9)]]);
    expect(t.host.callsOf('udpOpen')).toEqual([]); // the bound socket carries the flow
    // Another client: another flow, seen from its own address.
    t.stack.udpReceivedFrom(f.id, { addr: ip('192.0.2.44'), port: 1234 }, Uint8Array.of(5));
    expect(t.take()[0]!.ip).toMatchObject({ src: ip('192.0.2.44') });
    expect(t.stack.flows().filter((x) => x.origin === 'forward')).toHaveLength(2);
  });

  it('a client whose flow idled out gets a new one; the bound socket is never closed by it', () => {
    const t = harness();
    t.guestKnown();
    const f = t.open('udp::5353-10.0.2.15:7');
    t.stack.udpReceivedFrom(f.id, CLIENT, Uint8Array.of(1));
    const first = t.stack.flows()[0]!.id;
    t.clock.advance(10 * 60_000);
    t.stack.advance();
    expect(t.stack.flows()).toEqual([]);
    expect(t.host.callsOf('close')).toEqual([]);
    t.stack.udpReceivedFrom(f.id, CLIENT, Uint8Array.of(2));
    expect(t.stack.flows()).toMatchObject([{ origin: 'forward' }]);
    expect(t.stack.flows()[0]!.id).not.toBe(first);
  });

  it('refuses outside IPv6 clients of an IPv4 guest and clients with no guest address, counted; socket errors counted', () => {
    const t = harness();
    const f = t.open('udp::5353-:7');
    t.stack.udpReceivedFrom(f.id, CLIENT, Uint8Array.of(1));
    const g = t.open('udp::5354-10.0.2.15:7');
    t.stack.udpReceivedFrom(g.id, { addr: parseIpAddr('2001:db8::1')!, port: 1 }, Uint8Array.of(1));
    t.stack.udpError(f.id, 'EACCES');
    expect(f.refusals.counters.snapshot()).toEqual({ 'hostfwd.no-guest-address': 1, 'hostfwd.socket-error': 1 });
    expect(g.refusals.counters.snapshot()).toEqual({ 'hostfwd.refused-by-session': 1 });
    expect(t.stack.counters.get('udp.forward-family')).toBe(1);
    expect(t.take()).toEqual([]);
  });
});

describe('stack: IPv6 forwards (tcp:[::1]:PORT-[GUEST6]:PORT and a guest learned from its packets)', () => {
  const GUEST6 = a6('fd00::5054:ff:fe12:3456'); // GUEST_MAC's modified EUI-64
  const TEMP6 = a6('fd00::1234:5678:9abc:def0'); // a temporary address (RFC 8981) of the same guest
  const GW6 = a6('fd00::2');
  const CLIENT6 = { addr: a6('::1'), port: 45000 };
  const from6 = (t: ReturnType<typeof harness>, src: Ipv6Addr): void => {
    t.stack.receiveFrame(ethernetFrame(GATEWAY_MAC, ETHERTYPE.IPV6, tcp6Packet(src, GW6, { srcPort: 1, dstPort: 1, flags: RST, seq: 1 })));
    t.take6();
  };

  it('listens on ::1 and sends the SYN from the gateway (the loopback client) to the guest address the rule names', () => {
    const t = harness();
    from6(t, GUEST6);
    const f = t.open('tcp:[::1]:8080-[fd00::5054:ff:fe12:3456]:80');
    expect(t.host.calls.at(-1)).toEqual(['tcpListen', f.id, { addr: a6('::1'), port: 8080 }]);
    t.stack.tcpAccepted(f.id, 7, CLIENT6);
    expect(t.host.callsOf('tcpAdopt')).toEqual([[7, expect.any(Number)]]);
    const [syn] = t.take6();
    expect(syn).toMatchObject({ src: GW6, dst: GUEST6, protocol: NEXT_HEADER.TCP });
  });

  it('without a guest address, reaches the guest it learned, preferring its EUI-64 address to a temporary one', () => {
    const t = harness();
    const f = t.open('tcp:[::1]:8080-:80');
    t.stack.tcpAccepted(f.id, 1, CLIENT6);
    expect(f.refusals.counters.get('hostfwd.no-guest-address')).toBe(1);
    from6(t, TEMP6);
    t.stack.tcpAccepted(f.id, 2, CLIENT6);
    expect(t.take6()[0]).toMatchObject({ src: GW6, dst: TEMP6 });
    from6(t, GUEST6);
    from6(t, TEMP6);
    t.stack.tcpAccepted(f.id, 3, { ...CLIENT6, port: 45001 });
    expect(t.take6()[0]).toMatchObject({ src: GW6, dst: GUEST6 });
    const named = t.open('tcp:[::1]:8081-web:80'); // no lease named web
    t.stack.tcpAccepted(named.id, 4, CLIENT6);
    expect(named.refusals.counters.get('hostfwd.no-guest-address')).toBe(1);
  });

  it('UDP: an IPv6 client of a forward on ::1 reaches the guest from the gateway, an outside one from its own address', () => {
    const t = harness();
    from6(t, GUEST6);
    const f = t.open('udp:[::1]:5353-:53');
    t.stack.udpReceivedFrom(f.id, CLIENT6, Uint8Array.of(1, 2));
    t.stack.udpReceivedFrom(f.id, { addr: a6('2001:db8::7'), port: 9 }, Uint8Array.of(3));
    const [a, b] = t.take6();
    expect(a).toMatchObject({ src: GW6, dst: GUEST6, protocol: NEXT_HEADER.UDP });
    expect(b).toMatchObject({ src: a6('2001:db8::7'), dst: GUEST6 });
    expect(t.stack.flows()).toMatchObject([{ origin: 'forward' }, { origin: 'forward' }]);
  });
});
