/**
 * The Network unit, sans-IO: guests as ports on one segment with the real stack behind the
 * gateway port (no host: a closed network), driven by a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { ARP_OP } from '../../src/arp/wire.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { Network, type NetworkPort } from '../../src/network/network.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { BROADCAST_MAC, parseMac } from '../../src/util/bytes.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { dhcpReplyType, yiaddr } from '../daemon/dhcp-frames.js';
import { arpFrame, decode, echoRequest, GATEWAY_MAC, ip, ipv4Frame } from '../helpers/frames.js';
import { hex } from '../helpers/hex.js';

const MAC_A = parseMac('52:54:00:00:00:0a')!;
const MAC_B = parseMac('52:54:00:00:00:0b')!;
const MAC_C = parseMac('52:54:00:00:00:0c')!;
const hexOf = (mac: Uint8Array): string => Buffer.from(mac).toString('hex');

/** A DHCP message from `mac` (type 1 DISCOVER or 3 REQUEST for `want`), written out as bytes: see dhcp-frames.ts. */
function dhcp(mac: Uint8Array, type: 1 | 3, want?: string, hostname?: string): Uint8Array {
  const m = hexOf(mac);
  const opt50 = want === undefined ? '' : `3204${Buffer.from(want.split('.').map(Number)).toString('hex')}`;
  const opt12 = hostname === undefined ? '' : `0c${hostname.length.toString(16).padStart(2, '0')}${Buffer.from(hostname).toString('hex')}`;
  const options = `35010${type} ${opt50} ${opt12} ff`;
  const bootp = hex`01 01 06 00 12345678 0000 8000 00000000 00000000 00000000 00000000 ${m} ${'00'.repeat(10)} ${'00'.repeat(64)} ${'00'.repeat(128)} 63825363 ${options}`;
  const udpLen = 8 + bootp.length;
  const udp = new Uint8Array(udpLen);
  udp.set([0, 68, 0, 67, udpLen >> 8, udpLen & 0xff, 0, 0]);
  udp.set(bootp, 8);
  return withSource(ipv4Frame({ protocol: IP_PROTO.UDP, src: 0, dst: 0xffffffff, payload: udp }, BROADCAST_MAC), mac);
}

function withSource(frame: Uint8Array, mac: Uint8Array): Uint8Array {
  const out = frame.slice();
  out.set(mac, 6);
  return out;
}

interface Guest {
  readonly mac: Uint8Array;
  readonly port: NetworkPort;
  readonly got: Uint8Array[];
}

function lan(): { net: Network; clock: ManualClock; guest: (mac: Uint8Array) => Guest } {
  const clock = new ManualClock(1000);
  const net = new Network('lab', resolveStackConfig(), { clock, random: seededRandom(7) });
  return {
    net,
    clock,
    guest: (mac) => {
      const got: Uint8Array[] = [];
      const port = net.attach({ send: (f) => got.push(f) });
      return { mac, port, got };
    },
  };
}

/** DISCOVER then REQUEST: the guest's bound address. */
function lease(g: Guest, hostname?: string): string {
  g.port.receive(dhcp(g.mac, 1, undefined, hostname));
  const offer = g.got.findLast((f) => dhcpReplyType(f) === 2);
  if (offer === undefined) throw new Error('no OFFER');
  const addr = yiaddr(offer);
  g.port.receive(dhcp(g.mac, 3, addr, hostname));
  const ack = g.got.find((f) => dhcpReplyType(f) === 5 && yiaddr(f) === addr);
  if (ack === undefined) throw new Error('no ACK');
  g.got.length = 0;
  return addr;
}

describe('Network: guests on one segment', () => {
  it('gives each guest its own lease from the one pool', () => {
    const { net, guest } = lan();
    const a = guest(MAC_A);
    const b = guest(MAC_B);
    expect(lease(a)).toBe('10.0.2.15');
    expect(lease(b)).toBe('10.0.2.16');
    expect(net.leases().map((l) => [l.mac, l.state])).toEqual([
      ['52:54:00:00:00:0a', 'bound'],
      ['52:54:00:00:00:0b', 'bound'],
    ]);
  });

  it('floods an ARP request to every other guest and the gateway; the unicast answer reaches only the asker', () => {
    const { guest } = lan();
    const a = guest(MAC_A);
    const b = guest(MAC_B);
    const c = guest(MAC_C);
    const request = withSource(arpFrame({ senderMac: MAC_A, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.16') }), MAC_A);
    a.port.receive(request);
    expect(a.got).toHaveLength(0); // never back to the sender
    expect(b.got).toEqual([request]); // the same bytes, not a copy
    expect(c.got).toEqual([request]);
    const reply = withSource(arpFrame({ op: ARP_OP.REPLY, senderMac: MAC_B, senderIp: ip('10.0.2.16'), targetMac: MAC_A, targetIp: ip('10.0.2.15') }, MAC_A), MAC_B);
    b.port.receive(reply);
    expect(a.got).toEqual([reply]);
    expect(c.got).toHaveLength(1);
  });

  it('switches unicast IP between guests without the stack (no NAT, no counters), and answers pings to the gateway per guest', () => {
    const { net, guest } = lan();
    const a = guest(MAC_A);
    const b = guest(MAC_B);
    // B announces itself so the switch learns where MAC_B is.
    b.port.receive(withSource(arpFrame({ senderMac: MAC_B, senderIp: ip('10.0.2.16'), targetIp: ip('10.0.2.16') }), MAC_B));
    a.got.length = 0;
    const ping = withSource(ipv4Frame({ protocol: IP_PROTO.ICMP, src: ip('10.0.2.15'), dst: ip('10.0.2.16'), payload: echoRequest(new Uint8Array(8)) }, MAC_B), MAC_A);
    const before = net.stack.stats.rxFrames;
    a.port.receive(ping);
    expect(b.got.at(-1)).toBe(ping);
    expect(net.stack.stats.rxFrames).toBe(before); // the gateway never saw it
    expect(net.stack.counters.get('ipv4.to-other-guest')).toBe(0);
    // Each guest pings the gateway; each reply goes to its own port only.
    for (const [g, src] of [[a, '10.0.2.15'], [b, '10.0.2.16']] as const) {
      g.got.length = 0;
      g.port.receive(withSource(ipv4Frame({ protocol: IP_PROTO.ICMP, src: ip(src), dst: ip('10.0.2.2'), payload: echoRequest(new Uint8Array(8)) }, GATEWAY_MAC), g.mac));
    }
    const replies = (g: Guest): string[] => g.got.map(decode).filter((d) => d.icmp?.type === 0).map((d) => String(d.ip?.dst));
    expect(replies(a)).toEqual([String(ip('10.0.2.15'))]);
    expect(replies(b)).toEqual([String(ip('10.0.2.16'))]);
  });

  it('lends the only port\'s output buffer to the stack, and stops lending when a second guest joins', () => {
    const { net } = lan();
    const lent: number[] = [];
    const got: Uint8Array[] = [];
    const buf = new Uint8Array(2048);
    const portA = net.attach({ send: (f) => got.push(f), allocFrame: (len) => (lent.push(len), buf.subarray(0, len)) });
    portA.receive(withSource(arpFrame({ senderMac: MAC_A, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.2') }), MAC_A));
    expect(lent).toHaveLength(1);
    expect(got[0]!.buffer).toBe(buf.buffer);
    const b = net.attach({ send: () => undefined, allocFrame: () => { throw new Error('not lent with two ports'); } });
    portA.receive(withSource(arpFrame({ senderMac: MAC_A, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.2') }), MAC_A));
    expect(lent).toHaveLength(1);
    expect(got).toHaveLength(2);
    b.detach();
    portA.receive(withSource(arpFrame({ senderMac: MAC_A, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.2') }), MAC_A));
    expect(lent).toHaveLength(2);
  });

  it('forgets a detached port: its frames are ignored and nothing is delivered to it', () => {
    const { net, guest } = lan();
    const a = guest(MAC_A);
    const b = guest(MAC_B);
    b.port.detach();
    b.port.detach();
    expect(b.port.detached).toBe(true);
    expect(net.portCount).toBe(1);
    a.port.receive(withSource(arpFrame({ senderMac: MAC_A, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.16') }), MAC_A));
    expect(b.got).toHaveLength(0);
    const rx = net.stack.stats.rxFrames;
    b.port.receive(withSource(arpFrame({ senderMac: MAC_B, senderIp: ip('10.0.2.16'), targetIp: ip('10.0.2.2') }), MAC_B));
    expect(net.stack.stats.rxFrames).toBe(rx);
  });

  it('keeps two networks apart: a guest of one gets no ARP answer from a guest of the other', () => {
    const one = lan();
    const two = lan();
    const a = one.guest(MAC_A);
    const c = two.guest(MAC_C);
    a.port.receive(withSource(arpFrame({ senderMac: MAC_A, senderIp: ip('10.0.2.15'), targetIp: ip('10.0.2.16') }), MAC_A));
    expect(c.got).toHaveLength(0);
  });

  it('resolves forwards to an address, a lease host name (following the lease) or the first lease', () => {
    const { net, guest } = lan();
    const rule = { protocol: 'tcp' as const, hostAddr: ip('127.0.0.1'), hostPort: 8080, guestPort: 80, text: 'tcp::8080-web:80' };
    expect(net.forwardGuest({ ...rule, guestAddr: undefined, guestName: 'web' })).toBeUndefined();
    const a = guest(MAC_A);
    expect(lease(a, 'db')).toBe('10.0.2.15');
    expect(net.forwardGuest({ ...rule, guestAddr: undefined })).toBe(ip('10.0.2.15'));
    expect(net.forwardGuest({ ...rule, guestAddr: ip('10.0.2.99') })).toBe(ip('10.0.2.99'));
    expect(net.forwardGuest({ ...rule, guestAddr: undefined, guestName: 'web' })).toBeUndefined();
    const b = guest(MAC_B);
    expect(lease(b, 'Web')).toBe('10.0.2.16');
    expect(net.forwardGuest({ ...rule, guestAddr: undefined, guestName: 'web' })).toBe(ip('10.0.2.16'));
  });
});
