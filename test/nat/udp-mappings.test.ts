/**
 * The UDP NAT's RFC 4787 behaviours on the host seam: which datagrams share a mapping (one
 * host socket), which senders the filtering lets in, port preservation, hairpin refusal,
 * refresh, and the mapping listing. The real-peer checks are in
 * test/integration/nat-stun.int.test.ts and nat-grid.int.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { DEFAULT_NAT, resolveNatBehaviour } from '../../src/nat/behaviour.js';
import { MAX_PEERS_PER_MAPPING } from '../../src/nat/udp-flow.js';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { ConfigError } from '../../src/util/config-error.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { decode, ip, ipv4Frame, udpBytes, type Decoded } from '../helpers/frames.js';

function harness(options: NetworkOptions = {}) {
  const clock = new ManualClock(0);
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig(options), { clock, random: seededRandom(3), emit: (f) => sent.push(f), host });
  const take = (): Decoded[] => sent.splice(0).map(decode);
  const guestSends = (dst: string, dstPort: number, srcPort = 40000, src = '10.0.2.15'): Decoded[] => {
    const udp = udpBytes({ srcPort, dstPort, payload: new Uint8Array([1, 2, 3]) }, ip(src), ip(dst));
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: ip(src), dst: ip(dst), payload: udp }));
    return take();
  };
  const from = (socket: number, addr: string, port: number): Decoded[] => {
    stack.udpReceivedFrom(socket, { addr: ip(addr), port }, new Uint8Array([9]));
    return take();
  };
  return { clock, host, stack, take, guestSends, from };
}

const ep = (addr: string, port: number) => ({ addr: ip(addr), port });

describe('NAT behaviour options', () => {
  it('defaults to libslirp\'s full cone, and the shorthands set mapping and filtering', () => {
    expect(resolveNatBehaviour()).toEqual(DEFAULT_NAT);
    expect(DEFAULT_NAT).toMatchObject({ mapping: 'eim', filtering: 'eif', hairpin: true, portPreservation: false, udpTimeoutMs: 120_000, refresh: 'both' });
    expect(resolveNatBehaviour({ nat: 'restricted-cone' })).toMatchObject({ mapping: 'eim', filtering: 'adf' });
    expect(resolveNatBehaviour({ nat: 'port-restricted-cone' })).toMatchObject({ mapping: 'eim', filtering: 'apdf' });
    expect(resolveNatBehaviour({ nat: 'symmetric', 'nat-filtering': 'eif' })).toMatchObject({ mapping: 'apdm', filtering: 'eif' });
    expect(resolveNatBehaviour({ 'nat-hairpin': 'off', 'nat-port-preservation': 'on', 'nat-udp-timeout': '30', 'nat-refresh': 'outbound' })).toMatchObject({
      hairpin: false, portPreservation: true, udpTimeoutMs: 30_000, refresh: 'outbound',
    });
  });

  it('refuses bad values naming the option', () => {
    for (const [o, option] of [
      [{ nat: 'cone' }, 'nat'], [{ 'nat-mapping': 'x' }, 'nat-mapping'], [{ 'nat-filtering': 'eim' }, 'nat-filtering'],
      [{ 'nat-hairpin': 'maybe' }, 'nat-hairpin'], [{ 'nat-udp-timeout': '0' }, 'nat-udp-timeout'], [{ 'nat-udp-timeout': '1.5' }, 'nat-udp-timeout'],
      [{ 'nat-refresh': 'inbound' }, 'nat-refresh'],
    ] as const) {
      expect(() => resolveNatBehaviour(o)).toThrow(ConfigError);
      try {
        resolveNatBehaviour(o);
      } catch (e) {
        expect((e as ConfigError).option).toBe(option);
      }
    }
    expect(() => resolveStackConfig({ outbound: '1.2.3' })).toThrow(/--outbound/);
  });
});

describe('UDP mappings', () => {
  it('eim: one unconnected socket per guest endpoint, whatever the destination; datagrams wait for the bind', () => {
    const t = harness();
    t.guestSends('192.0.2.1', 1000);
    t.guestSends('192.0.2.2', 2000);
    t.guestSends('10.0.2.2', 53);
    expect(t.host.callsOf('udpBind')).toEqual([[1, ep('0.0.0.0', 0)]]);
    expect(t.host.callsOf('udpSendTo')).toEqual([]);
    t.stack.udpBound(1, ep('0.0.0.0', 33333));
    expect(t.host.callsOf('udpSendTo').map((c) => c[1])).toEqual([ep('192.0.2.1', 1000), ep('192.0.2.2', 2000), ep('127.0.0.1', 53)]);
    t.guestSends('192.0.2.1', 1000, 40001);
    expect(t.host.callsOf('udpBind')).toEqual([[1, ep('0.0.0.0', 0)], [2, ep('0.0.0.0', 0)]]);
  });

  it('adm: one socket per destination address; apdm with eif: one per destination endpoint, unconnected', () => {
    const adm = harness({ 'nat-mapping': 'adm' });
    adm.guestSends('192.0.2.1', 1000);
    adm.guestSends('192.0.2.1', 2000);
    adm.guestSends('192.0.2.2', 1000);
    expect(adm.host.callsOf('udpBind').map((c) => c[0])).toEqual([1, 2]);
    const apdm = harness({ 'nat-mapping': 'apdm', 'nat-filtering': 'eif' });
    apdm.guestSends('192.0.2.1', 1000);
    apdm.guestSends('192.0.2.1', 2000);
    apdm.guestSends('192.0.2.1', 1000);
    expect(apdm.host.callsOf('udpBind').map((c) => c[0])).toEqual([1, 2]);
    expect(apdm.host.callsOf('udpOpen')).toEqual([]);
  });

  it('symmetric: a connected socket per destination endpoint (ICMP errors reach the guest)', () => {
    const t = harness({ nat: 'symmetric', outbound: '127.0.0.2' });
    t.guestSends('192.0.2.1', 1000);
    expect(t.host.callsOf('udpOpen')).toEqual([[1, ep('192.0.2.1', 1000), ep('127.0.0.2', 0)]]);
    t.stack.udpError(1, 'ECONNREFUSED');
    expect(t.take()[0]!.icmp).toMatchObject({ type: 3, code: 3 });
  });

  it('filtering: eif lets anyone in, adf senders at a peer\'s address, apdf only peers; the guest sees the sender', () => {
    for (const [filtering, letIn] of [['eif', [true, true, true]], ['adf', [true, true, false]], ['apdf', [true, false, false]]] as const) {
      const t = harness({ 'nat-filtering': filtering });
      t.guestSends('192.0.2.1', 1000);
      t.stack.udpBound(1, ep('0.0.0.0', 33333));
      const got = [t.from(1, '192.0.2.1', 1000), t.from(1, '192.0.2.1', 1001), t.from(1, '198.51.100.9', 7)];
      expect(got.map((g) => g.length === 1)).toEqual(letIn);
      const seen = got.flat().map((d) => [d.ip!.src, d.udp!.srcPort, d.udp!.dstPort]);
      expect(seen[0]).toEqual([ip('192.0.2.1'), 1000, 40000]);
      expect(t.stack.counters.get('nat.udp-filtered')).toBe(letIn.filter((x) => !x).length);
    }
  });

  it('a datagram from the host\'s loopback reaches the guest from the gateway', () => {
    const t = harness();
    t.guestSends('10.0.2.2', 5000);
    t.stack.udpBound(1, ep('0.0.0.0', 33333));
    expect(t.from(1, '127.0.0.1', 5000)[0]!.ip).toMatchObject({ src: ip('10.0.2.2') });
  });

  it('port preservation binds the guest\'s port on --outbound first, and any port when it is in use', () => {
    const t = harness({ 'nat-port-preservation': 'on', outbound: '127.0.0.3' });
    t.guestSends('192.0.2.1', 1000, 5555);
    expect(t.host.callsOf('udpBind')).toEqual([[1, ep('127.0.0.3', 5555)]]);
    t.stack.udpError(1, 'EADDRINUSE');
    expect(t.host.callsOf('udpBind')).toEqual([[1, ep('127.0.0.3', 5555)], [1, ep('127.0.0.3', 0)]]);
    expect(t.stack.counters.get('nat.udp-port-not-preserved')).toBe(1);
    t.stack.udpBound(1, ep('127.0.0.3', 40123));
    expect(t.host.callsOf('udpSendTo')).toHaveLength(1);
  });

  it('hairpin off: a datagram to a public endpoint of this network is dropped; on: it goes to the host', () => {
    for (const hairpin of ['on', 'off'] as const) {
      const t = harness({ 'nat-hairpin': hairpin, outbound: '203.0.113.2' });
      t.guestSends('192.0.2.1', 1000, 4000, '10.0.2.16');
      t.stack.udpBound(1, ep('203.0.113.2', 50000));
      t.guestSends('203.0.113.2', 50000);
      t.stack.udpBound(2, ep('203.0.113.2', 50001));
      expect(t.host.callsOf('udpSendTo').filter((c) => c[0] === 2)).toHaveLength(hairpin === 'on' ? 1 : 0);
      expect(t.stack.counters.get('nat.hairpin-refused')).toBe(hairpin === 'on' ? 0 : 1);
    }
  });

  it('refresh outbound: inbound datagrams do not keep a mapping alive; both: they do', () => {
    for (const refresh of ['outbound', 'both'] as const) {
      const t = harness({ 'nat-refresh': refresh, 'nat-udp-timeout': '30' });
      t.guestSends('192.0.2.1', 1000);
      t.stack.udpBound(1, ep('0.0.0.0', 33333));
      t.clock.set(20_000);
      t.from(1, '192.0.2.1', 1000);
      t.clock.set(30_000);
      t.stack.advance();
      expect(t.host.callsOf('close')).toEqual(refresh === 'outbound' ? [[1]] : []);
    }
  });

  it('a mapping remembers a bounded number of peers, forgetting the oldest', () => {
    const t = harness({ 'nat-filtering': 'apdf' });
    for (let i = 0; i <= MAX_PEERS_PER_MAPPING; i++) t.guestSends('192.0.2.1', 1000 + i);
    t.stack.udpBound(1, ep('0.0.0.0', 33333));
    expect(t.stack.counters.get('nat.udp-peer-evicted')).toBe(1);
    expect(t.from(1, '192.0.2.1', 1000)).toEqual([]);
    expect(t.from(1, '192.0.2.1', 1001)).toHaveLength(1);
  });

  it('lists each mapping: guest and public endpoints, peers, filtering, age, expiry, packets and bytes each way', () => {
    const t = harness({ nat: 'restricted-cone' });
    t.guestSends('192.0.2.1', 1000);
    t.stack.udpBound(1, ep('0.0.0.0', 33333));
    t.clock.set(1000);
    t.from(1, '192.0.2.1', 1000);
    expect(t.stack.natMappings()).toEqual([{
      id: 1, origin: 'guest', guest: ep('10.0.2.15', 40000), public: ep('0.0.0.0', 33333), socket: 'bound', remote: ep('0.0.0.0', 0),
      peers: [{ remote: ep('192.0.2.1', 1000), host: ep('192.0.2.1', 1000), packetsOut: 1, bytesOut: 3, packetsIn: 1, bytesIn: 1, idleMs: 1000 }],
      allows: 'peer-addresses', ageMs: 1000, expiresInMs: 120_000, packetsFromGuest: 1, bytesFromGuest: 3, packetsToGuest: 1, bytesToGuest: 1,
    }]);
  });

  it('a forward\'s flow wins over the guest port\'s mapping for replies to its client', () => {
    const t = harness();
    t.guestSends('192.0.2.1', 1000, 5000);
    const flow = t.stack.forwardUdp(ep('198.51.100.7', 6000), ep('10.0.2.15', 5000), 99);
    expect(flow).toBeDefined();
    t.guestSends('198.51.100.7', 6000, 5000);
    expect(t.host.callsOf('udpSendTo')).toEqual([[99, ep('198.51.100.7', 6000), new Uint8Array([1, 2, 3])]]);
  });
});

describe('UDP mapping sockets that cannot bind', () => {
  it('a failed bind closes the mapping and its waiting datagrams; the next datagram tries again', () => {
    const t = harness({ outbound: '192.0.2.200' });
    t.guestSends('192.0.2.1', 1000);
    t.stack.udpError(1, 'EADDRNOTAVAIL');
    expect(t.stack.counters.get('nat.udp-bind-failed')).toBe(1);
    expect(t.stack.natMappings()).toEqual([]);
    t.guestSends('192.0.2.1', 1000);
    expect(t.host.callsOf('udpBind')).toEqual([[1, ep('192.0.2.200', 0)], [2, ep('192.0.2.200', 0)]]);
  });
});
