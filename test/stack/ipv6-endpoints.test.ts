import { describe, expect, it } from 'vitest';
import { parseIpAddr } from '../../src/net/addr.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { ip } from '../helpers/frames.js';

/** The NAT is IPv4 only until the IPv6 issue: IPv6 endpoints reaching it are counted and refused, never a crash. */
function harness() {
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig({}), { clock: new ManualClock(0), random: seededRandom(1), emit: (f) => sent.push(f), host });
  return { host, stack, sent };
}

const V6_CLIENT = { addr: parseIpAddr('2001:db8::7')!, port: 5555 };
const GUEST = { addr: ip('10.0.2.15'), port: 80 };
/** A forward's bound socket (an id no flow of these tests reaches). */
const VIA = 1_000_000;

describe('IPv6 endpoints at the IPv4-only NAT', () => {
  it('refuses a TCP forward from an IPv6 client, counted', () => {
    const t = harness();
    expect(t.stack.forwardTcp(V6_CLIENT, GUEST)).toBeUndefined();
    expect(t.stack.counters.get('tcp.forward-not-ipv4')).toBe(1);
    expect(t.stack.flows()).toEqual([]);
  });

  it('refuses a UDP forward from an IPv6 client or to an IPv6 guest, counted', () => {
    const t = harness();
    expect(t.stack.forwardUdp(V6_CLIENT, GUEST, VIA)).toBeUndefined();
    expect(t.stack.forwardUdp({ addr: ip('127.0.0.1'), port: 5555 }, { addr: parseIpAddr('fd00::15')!, port: 80 }, VIA)).toBeUndefined();
    expect(t.stack.counters.get('udp.forward-not-ipv4')).toBe(2);
    expect(t.stack.flows()).toEqual([]);
  });

  it('sends no ICMP error about a flow with an IPv6 side, counted', () => {
    const t = harness();
    t.stack.flowIcmpError(GUEST, V6_CLIENT, IP_PROTO.UDP, new Uint8Array(8), 3, 3);
    expect(t.sent).toEqual([]);
    expect(t.stack.counters.get('icmp.flow-not-ipv4')).toBe(1);
  });
});
