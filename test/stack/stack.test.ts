import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARP_OP } from '../../src/arp/wire.js';
import { MSG, OPT, readMessageType } from '../../src/dhcp/options.js';
import { BOOTREQUEST, dhcpLength, findOption, parseDhcp, writeDhcp, type Dhcp } from '../../src/dhcp/wire.js';
import { ETHERTYPE } from '../../src/ethernet/wire.js';
import { ICMP_TYPE } from '../../src/ipv4/icmp-wire.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { BROADCAST_MAC, bytesEqual } from '../../src/util/bytes.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import {
  arpFrame, decode, echoRequest, ethernetFrame, GATEWAY_MAC, GUEST_MAC, ip, ipv4Frame, ipv4Packet, tcpBytes, udpBytes, type Decoded,
} from '../helpers/frames.js';

function harness(options: NetworkOptions = {}) {
  const clock = new ManualClock(1_000);
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig(options), { clock, random: seededRandom(7), emit: (f) => sent.push(f) });
  return {
    clock,
    stack,
    /** Feeds a frame and returns what the stack emitted in answer, decoded. */
    send(frame: Uint8Array): Decoded[] {
      sent.length = 0;
      stack.receiveFrame(frame);
      for (const f of sent) expect(f.length).toBeGreaterThanOrEqual(60);
      return sent.map(decode);
    },
  };
}

describe('stack: ARP', () => {
  it('answers for the gateway and the DNS address with the gateway MAC', () => {
    const t = harness();
    for (const target of ['10.0.2.2', '10.0.2.3']) {
      const [reply, ...rest] = t.send(arpFrame({ targetIp: ip(target) }));
      expect(rest).toEqual([]);
      expect(reply!.eth.dst).toEqual(GUEST_MAC);
      expect(reply!.eth.src).toEqual(GATEWAY_MAC);
      expect(reply!.arp).toEqual({ op: ARP_OP.REPLY, senderMac: GATEWAY_MAC, senderIp: ip(target), targetMac: GUEST_MAC, targetIp: ip('10.0.2.15') });
    }
  });

  it('accepts a runt ARP frame (42 bytes, as v86 virtio-net sends)', () => {
    const t = harness();
    const frame = arpFrame({ targetIp: ip('10.0.2.2') });
    expect(frame.length).toBe(42);
    expect(t.send(frame)).toHaveLength(1);
  });

  it('gives a duplicate-address probe for the guest\'s own address no answer (RFC 5227)', () => {
    const t = harness();
    expect(t.send(arpFrame({ senderIp: 0, targetIp: ip('10.0.2.15') }))).toEqual([]);
    expect(t.send(arpFrame({ senderIp: 0, targetIp: ip('10.0.2.16') }))).toEqual([]);
    expect([...t.stack.neighbours()]).toEqual([]);
  });

  it('answers a probe for the gateway\'s address: it is taken', () => {
    const t = harness();
    const [reply] = t.send(arpFrame({ senderIp: 0, targetIp: ip('10.0.2.2') }));
    expect(reply!.arp?.senderIp).toBe(ip('10.0.2.2'));
  });

  it('learns from gratuitous ARP without answering it', () => {
    const t = harness();
    expect(t.send(arpFrame({ senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.15') }))).toEqual([]);
    expect([...t.stack.neighbours()]).toEqual([[ip('10.0.2.15'), GUEST_MAC]]);
  });

  it('counts a guest claiming the gateway address', () => {
    const t = harness();
    expect(t.send(arpFrame({ op: ARP_OP.REPLY, senderIp: ip('10.0.2.2'), targetIp: ip('10.0.2.15') }))).toEqual([]);
    expect(t.stack.counters.get('arp.address-conflict')).toBe(1);
  });

  it('ignores requests for other addresses', () => {
    const t = harness();
    expect(t.send(arpFrame({ targetIp: ip('10.0.2.99') }))).toEqual([]);
    expect(t.send(arpFrame({ targetIp: ip('192.168.1.1') }))).toEqual([]);
  });
});

describe('stack: ICMP', () => {
  it('answers ping to the gateway and to the DNS address', () => {
    const t = harness();
    const payload = Uint8Array.from({ length: 56 }, (_, i) => i);
    for (const to of ['10.0.2.2', '10.0.2.3']) {
      const [reply] = t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, dst: ip(to), payload: echoRequest(payload, 0x4242, 7) }));
      expect(reply!.eth.dst).toEqual(GUEST_MAC);
      expect(reply!.ip).toMatchObject({ src: ip(to), dst: ip('10.0.2.15'), ttl: 64 });
      expect(reply!.icmp).toEqual({ type: ICMP_TYPE.ECHO_REPLY, code: 0, rest: (0x4242 << 16) | 7, payload });
    }
  });

  it('reassembles a fragmented ping and fragments the reply to the MTU', () => {
    const t = harness({ mtu: 1500 });
    const payload = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
    const icmp = echoRequest(payload);
    // Three fragments, sent last first.
    const pieces = [[0, 1480], [1480, 2960], [2960, icmp.length]] as const;
    const frames = pieces.map(([from, to]) =>
      ipv4Frame({ protocol: IP_PROTO.ICMP, id: 99, moreFragments: to < icmp.length, fragmentOffset: from, payload: icmp.subarray(from, to) }));
    expect(t.send(frames[2]!)).toEqual([]);
    expect(t.send(frames[0]!)).toEqual([]);
    const out = t.send(frames[1]!);
    expect(out.map((d) => d.ip!.payload.length)).toEqual([1480, 1480, 48]);
    expect(out.map((d) => d.ip!.moreFragments)).toEqual([true, true, false]);
    const whole = new Uint8Array(3008);
    for (const d of out) whole.set(d.ip!.payload, d.ip!.fragmentOffset);
    expect(whole[0]).toBe(ICMP_TYPE.ECHO_REPLY);
    expect(whole.subarray(8)).toEqual(payload);
    expect(t.stack.nextDeadline()).toBeUndefined();
  });

  it('drops an overlapping fragment and forgets the datagram', () => {
    const t = harness();
    const icmp = echoRequest(new Uint8Array(100));
    t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, id: 5, moreFragments: true, payload: icmp.subarray(0, 64) }));
    t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, id: 5, fragmentOffset: 56, payload: icmp.subarray(56) }));
    expect(t.stack.counters.get('ipv4.frag-overlap')).toBe(1);
    expect(t.stack.nextDeadline()).toBeUndefined();
  });

  it('times out an incomplete datagram', () => {
    const t = harness();
    t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, id: 5, moreFragments: true, payload: new Uint8Array(64) }));
    const deadline = t.stack.nextDeadline()!;
    expect(deadline).toBe(1_000 + 30_000);
    t.clock.set(deadline);
    t.stack.advance();
    expect(t.stack.counters.get('ipv4.frag-timeout')).toBe(1);
    expect(t.stack.nextDeadline()).toBeUndefined();
  });

  it('refuses outbound traffic with ICMP administratively prohibited when it has no host', () => {
    const t = harness();
    const sent = ipv4Packet({ protocol: IP_PROTO.ICMP, dst: ip('192.0.2.1'), payload: echoRequest(new Uint8Array(8)) });
    const [err] = t.send(ethernetFrame(GATEWAY_MAC, ETHERTYPE.IPV4, sent));
    expect(err!.icmp).toMatchObject({ type: ICMP_TYPE.DEST_UNREACHABLE, code: 13 });
    expect(err!.icmp!.payload).toEqual(sent);
    expect(t.stack.counters.get('nat.no-host')).toBe(1);
  });

  it('never answers an ICMP error with an ICMP error', () => {
    const t = harness();
    const unreach = new Uint8Array([3, 3, 0xfc, 0xfc, 0, 0, 0, 0]);
    expect(t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, dst: ip('192.0.2.1'), payload: unreach }))).toEqual([]);
  });
});

describe('stack: UDP and TCP to the virtual hosts', () => {
  it('answers UDP to a closed port with ICMP port unreachable', () => {
    const t = harness();
    const payload = udpBytes({ srcPort: 40000, dstPort: 53, payload: new Uint8Array(20) }, ip('10.0.2.15'), ip('10.0.2.3'));
    const [err] = t.send(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.3'), payload }));
    expect(err!.icmp).toMatchObject({ type: ICMP_TYPE.DEST_UNREACHABLE, code: 3 });
    expect(err!.ip).toMatchObject({ src: ip('10.0.2.3'), dst: ip('10.0.2.15') });
  });

  it('resets a TCP SYN to the gateway (RFC 9293 §3.10.7.1)', () => {
    const t = harness();
    const syn = tcpBytes({ srcPort: 40000, dstPort: 80, flags: TCP_FLAG.SYN, seq: 5000 }, ip('10.0.2.15'), ip('10.0.2.2'));
    const [rst] = t.send(ipv4Frame({ protocol: IP_PROTO.TCP, payload: syn }));
    expect(rst!.tcp).toMatchObject({ srcPort: 80, dstPort: 40000, seq: 0, ack: 5001, flags: TCP_FLAG.RST | TCP_FLAG.ACK });
    const ack = tcpBytes({ srcPort: 40000, dstPort: 80, flags: TCP_FLAG.ACK, seq: 5001, ack: 777 }, ip('10.0.2.15'), ip('10.0.2.2'));
    const [rst2] = t.send(ipv4Frame({ protocol: IP_PROTO.TCP, payload: ack }));
    expect(rst2!.tcp).toMatchObject({ seq: 777, flags: TCP_FLAG.RST });
    const reset = tcpBytes({ srcPort: 40000, dstPort: 80, flags: TCP_FLAG.RST, seq: 5001 }, ip('10.0.2.15'), ip('10.0.2.2'));
    expect(t.send(ipv4Frame({ protocol: IP_PROTO.TCP, payload: reset }))).toEqual([]);
  });
});

describe('stack: refusals are counted', () => {
  it('drops spoofed sources, foreign MACs, IPv6 and VLANs', () => {
    const t = harness();
    const ping = echoRequest(new Uint8Array(8));
    expect(t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, src: ip('192.0.2.9'), payload: ping }))).toEqual([]);
    expect(t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, src: ip('10.0.2.2'), payload: ping }))).toEqual([]);
    expect(t.stack.counters.get('ipv4.bad-source')).toBe(2);
    expect(t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, payload: ping }, GUEST_MAC))).toEqual([]);
    expect(t.stack.counters.get('ethernet.not-for-us')).toBe(1);
    // IPv6 is for the gateway's MAC or 33:33 multicast, never Ethernet broadcast.
    expect(t.send(ethernetFrame(BROADCAST_MAC, ETHERTYPE.IPV6, new Uint8Array(40)))).toEqual([]);
    expect(t.stack.counters.get('ethernet.not-for-us')).toBe(2);
    expect(t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, ttl: 0, payload: ping }))).toEqual([]);
    expect(t.stack.counters.get('ipv4.zero-ttl')).toBe(1);
  });

  it('never throws and counts every refusal for arbitrary bytes', () => {
    const t = harness();
    const templates = [
      arpFrame({ targetIp: ip('10.0.2.2') }),
      ipv4Frame({ protocol: IP_PROTO.ICMP, payload: echoRequest(new Uint8Array(16)) }),
      ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('255.255.255.255'), src: 0, payload: udpBytes({ srcPort: 68, dstPort: 67, payload: new Uint8Array(300) }, 0, 0xffffffff) }, BROADCAST_MAC),
    ];
    fc.assert(fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 1600 }),
        fc.tuple(fc.constantFrom(...templates), fc.nat(), fc.nat(255), fc.nat()).map(([f, at, v, cut]) => {
          const g = f.slice(0, Math.max(0, f.length - (cut % 8)));
          if (g.length > 0) g[at % g.length] = v;
          return g;
        }),
      ),
      (frame) => {
        t.stack.receiveFrame(frame);
      },
    ), { numRuns: 5_000 });
    expect(t.stack.counters.get('stack.internal-error')).toBe(0);
    expect(t.stack.lastError).toBeUndefined();
    expect(t.stack.counters.total()).toBeGreaterThan(1_000);
  });
});

describe('stack: emits well-formed frames', () => {
  it('pads to 60 bytes and addresses the guest', () => {
    const t = harness();
    const sent: Uint8Array[] = [];
    const stack = new Stack(resolveStackConfig(), { clock: t.clock, random: seededRandom(1), emit: (f) => sent.push(f) });
    stack.receiveFrame(arpFrame({ targetIp: ip('10.0.2.2') }));
    expect(sent[0]!.length).toBe(60);
    expect(bytesEqual(sent[0]!.subarray(42), new Uint8Array(18))).toBe(true);
  });
});

describe('stack: DHCP', () => {
  function dhcpFrame(type: number, extra: { code: number; data: Uint8Array }[] = [], broadcastFlag = false): Uint8Array {
    const chaddr = new Uint8Array(16);
    chaddr.set(GUEST_MAC);
    const m: Dhcp = {
      op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid: 0x1234abcd, secs: 0, broadcast: broadcastFlag, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
      chaddr, sname: new Uint8Array(0), file: new Uint8Array(0), options: [{ code: OPT.MESSAGE_TYPE, data: Uint8Array.of(type) }, ...extra],
    };
    const payload = new Uint8Array(dhcpLength(m));
    writeDhcp(m, payload);
    return ipv4Frame({ protocol: IP_PROTO.UDP, src: 0, dst: 0xffffffff, payload: udpBytes({ srcPort: 68, dstPort: 67, payload }, 0, 0xffffffff) }, BROADCAST_MAC);
  }
  const reply = (d: Decoded): Dhcp => {
    const m = parseDhcp(d.udp!.payload);
    if (typeof m === 'string') throw new Error(m);
    return m;
  };

  it('offers and acknowledges 10.0.2.15 with router and DNS, from 10.0.2.2:67 to port 68', () => {
    const t = harness();
    const [offer] = t.send(dhcpFrame(MSG.DISCOVER));
    expect(offer!.eth.src).toEqual(GATEWAY_MAC);
    expect(offer!.ip).toMatchObject({ src: ip('10.0.2.2') });
    expect(offer!.udp).toMatchObject({ srcPort: 67, dstPort: 68 });
    expect(reply(offer!).yiaddr).toBe(ip('10.0.2.15'));
    expect(readMessageType(reply(offer!))).toBe(MSG.OFFER);
    const [ack] = t.send(dhcpFrame(MSG.REQUEST, [
      { code: OPT.REQUESTED_IP, data: Uint8Array.of(10, 0, 2, 15) },
      { code: OPT.SERVER_ID, data: Uint8Array.of(10, 0, 2, 2) },
    ], true));
    expect(readMessageType(reply(ack!))).toBe(MSG.ACK);
    expect(ack!.eth.dst).toEqual(BROADCAST_MAC);
    expect(ack!.ip!.dst).toBe(0xffffffff);
    expect(findOption(reply(ack!), OPT.ROUTER)).toEqual(Uint8Array.of(10, 0, 2, 2));
    expect(findOption(reply(ack!), OPT.DNS)).toEqual(Uint8Array.of(10, 0, 2, 3));
    expect(t.stack.leases()).toMatchObject([{ mac: '52:54:00:12:34:56', ip: ip('10.0.2.15'), state: 'bound' }]);
  });

  it('keeps a leased address on its holder: another MAC claiming it by ARP or as an IPv4 source is counted, not learned', () => {
    const t = harness();
    t.send(dhcpFrame(MSG.DISCOVER));
    t.send(dhcpFrame(MSG.REQUEST, [{ code: OPT.REQUESTED_IP, data: Uint8Array.of(10, 0, 2, 15) }, { code: OPT.SERVER_ID, data: Uint8Array.of(10, 0, 2, 2) }]));
    expect([...t.stack.neighbours()]).toEqual([[ip('10.0.2.15'), GUEST_MAC]]);
    const spoofer = Uint8Array.of(0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc);
    // A random-sender ARP flood's reply and request claiming the lease holder's address.
    expect(t.send(arpFrame({ op: ARP_OP.REPLY, senderMac: spoofer, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.2') }))).toEqual([]);
    expect(t.send(arpFrame({ senderMac: spoofer, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.2') }))).toEqual([]);
    expect(t.stack.counters.get('arp.lease-conflict')).toBe(2);
    // An IPv4 packet from the spoofer with the holder's source gets no answer.
    const ping = echoRequest(new Uint8Array(8));
    expect(t.send(ethernetFrame(GATEWAY_MAC, ETHERTYPE.IPV4, ipv4Packet({ protocol: IP_PROTO.ICMP, payload: ping }), spoofer))).toEqual([]);
    expect(t.stack.counters.get('ipv4.lease-conflict')).toBe(1);
    expect([...t.stack.neighbours()]).toEqual([[ip('10.0.2.15'), GUEST_MAC]]);
    // The holder itself is answered, and addresses outside any lease are learned from anyone.
    expect(t.send(ipv4Frame({ protocol: IP_PROTO.ICMP, payload: ping }))[0]!.eth.dst).toEqual(GUEST_MAC);
    expect(t.send(arpFrame({ senderMac: spoofer, senderIp: ip('10.0.2.99'), targetIp: ip('10.0.2.2') }))).toHaveLength(1);
    expect(t.stack.counters.get('arp.lease-conflict')).toBe(2);
    // Once the lease has ended the address is anyone's again.
    t.clock.advance(2 * 86_400_000);
    expect(t.send(ethernetFrame(GATEWAY_MAC, ETHERTYPE.IPV4, ipv4Packet({ protocol: IP_PROTO.ICMP, payload: ping }), spoofer))[0]!.eth.dst).toEqual(spoofer);
  });
});
