import { describe, expect, it } from 'vitest';
import { parseIpAddr } from '../../src/net/addr.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { ip } from '../helpers/frames.js';

/** Forwards across families: a client appears on the guest's family or is refused, counted, never a crash. */
function harness(ipv6 = 'on') {
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig({ ipv6 }), { clock: new ManualClock(0), random: seededRandom(1), emit: (f) => sent.push(f), host });
  return { host, stack, sent };
}

const V6_CLIENT = { addr: parseIpAddr('2001:db8::7')!, port: 5555 };
const GUEST = { addr: ip('10.0.2.15'), port: 80 };
const GUEST6 = { addr: parseIpAddr('fd00::15')!, port: 80 };
/** A forward's bound socket (an id no flow of these tests reaches). */
const VIA = 1_000_000;

describe('IPv6 endpoints at the NAT', () => {
  it('refuses a TCP forward from a non-loopback IPv6 client to an IPv4 guest, counted', () => {
    const t = harness();
    expect(t.stack.forwardTcp(V6_CLIENT, GUEST)).toBeUndefined();
    expect(t.stack.counters.get('tcp.forward-family')).toBe(1);
    expect(t.stack.flows()).toEqual([]);
  });

  it('takes a TCP forward from an IPv6 client to an IPv6 guest, and a [::1] client to an IPv4 guest as the gateway', () => {
    const t = harness();
    expect(t.stack.forwardTcp(V6_CLIENT, GUEST6)).toBeDefined();
    expect(t.stack.forwardTcp({ addr: parseIpAddr('::1')!, port: 4444 }, GUEST)).toBeDefined();
    const remotes = t.stack.flows().map((f) => f.remote);
    expect(remotes).toContainEqual(V6_CLIENT);
    expect(remotes).toContainEqual({ addr: ip('10.0.2.2'), port: 4444 });
  });

  it('refuses a UDP forward to an IPv6 guest with IPv6 off, and from a non-loopback IPv4 client to an IPv6 guest', () => {
    const off = harness('off');
    expect(off.stack.forwardUdp({ addr: ip('127.0.0.1'), port: 5555 }, GUEST6, VIA)).toBeUndefined();
    expect(off.stack.counters.get('udp.forward-family')).toBe(1);
    const on = harness();
    expect(on.stack.forwardUdp({ addr: ip('192.0.2.1'), port: 5555 }, GUEST6, VIA)).toBeUndefined();
    expect(on.stack.counters.get('udp.forward-family')).toBe(1);
    expect(on.stack.flows()).toEqual([]);
  });

  it('sends no ICMP error about a flow whose sides differ in family, counted', () => {
    const t = harness();
    t.stack.flowIcmpError(GUEST, V6_CLIENT, IP_PROTO.UDP, new Uint8Array(8), 3, 3);
    expect(t.sent).toEqual([]);
    expect(t.stack.counters.get('icmp.flow-mixed-family')).toBe(1);
  });
});
