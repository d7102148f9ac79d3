/**
 * Flow limits of a network with several guests (src/nat/flow-table.ts, the UDP and TCP
 * engines): per guest address and per network, evictions that stay within the guest whose
 * limit is hit, separate counters for the two limits, and a property that the counts never
 * pass either limit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IP_PROTO, type Ipv4 } from '../../src/ipv4/wire.js';
import type { FlowId } from '../../src/net/addr.js';
import type { ToGuest } from '../../src/net/seams.js';
import { DEFAULT_FLOW_LIMITS, FlowTable, MAX_FLOW_LIMIT, resolveFlowLimits, type FlowEntry, type FlowLimits, type FlowProtocol } from '../../src/nat/flow-table.js';
import { ConfigError } from '../../src/util/config-error.js';
import { resolveNatBehaviour } from '../../src/nat/behaviour.js';
import { UDP_IDLE_TIMEOUT_MS, UdpNat } from '../../src/nat/udp-flow.js';
import type { Tcp } from '../../src/tcp/wire.js';
import type { Ipv4Addr } from '../../src/util/bytes.js';
import { budgetMs, runs } from '../helpers/fuzz.js';
import { ip } from '../helpers/frames.js';
import { ACK, FIN, GATEWAY, GUEST, optionsAfterSyn, RST, tcpHarness } from './tcp-harness.js';

const OTHER = ip('10.0.2.16');
const GUESTS = [GUEST, OTHER, ip('10.0.2.17'), ip('10.0.2.18')] as const;
const EMPTY = new Uint8Array(0);
/** The bound socket forwarded UDP flows ride (an id no flow of these tests reaches). */
const VIA: FlowId = 1_000_000;

const limits = (udp: number, tcp: number, guestUdp: number, guestTcp: number): FlowLimits =>
  ({ udp, tcp, perGuest: { udp: guestUdp, tcp: guestTcp } });

/** A bare table entry (the table only reads the tuple and the protocol). */
function entry(table: FlowTable, protocol: FlowProtocol, guest: Ipv4Addr, port: number): FlowEntry {
  return {
    id: table.allocateId(), protocol, origin: 'guest', guest: { addr: guest, port }, remote: { addr: GATEWAY, port: 80 },
    host: { addr: ip('127.0.0.1'), port: 80 }, createdMs: 0, lastActiveMs: 0, local: undefined, bytesFromGuest: 0, bytesToGuest: 0, packetsFromGuest: 0, packetsToGuest: 0, stateName: 'open',
  };
}

const ids = (it: Iterable<FlowEntry>): FlowId[] => [...it].map((f) => f.id);

/**
 * The TCP harness with a UDP engine on the same table, as the stack has them, and helpers
 * that speak for any guest address.
 */
function natHarness(flowLimits: FlowLimits, timeWaitMs = 4000) {
  const t = tcpHarness({ flowLimits, limits: { timeWaitMs } });
  const toGuest: ToGuest = {
    config: t.config, counters: t.counters,
    sendIpv4: () => undefined, sendIp: () => undefined, flowIcmpError: () => undefined, dnsTcpUpstream: () => undefined,
  };
  const udp = new UdpNat(t.table, t.host, toGuest, resolveNatBehaviour({ nat: 'symmetric' }));
  const datagram = (src: Ipv4Addr, dst: Ipv4Addr): Ipv4 => ({
    dscpEcn: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64,
    protocol: IP_PROTO.UDP, src, dst, options: EMPTY, payload: EMPTY,
  });
  /** Guest `src` sends a datagram from `srcPort` to the gateway's port `dstPort`. */
  const udpSends = (src: Ipv4Addr, srcPort: number, dstPort = 7): void => {
    expect(udp.input(datagram(src, GATEWAY), { srcPort, dstPort, payload: EMPTY }, t.clock.now())).toBe(true);
  };
  const udpFlow = (src: Ipv4Addr, srcPort: number, dstPort = 7) => t.table.byTuple('udp', src, srcPort, GATEWAY, dstPort);
  const ports = (p: FlowProtocol, src: Ipv4Addr): number[] => [...t.table.flows(p, src)].map((f) => f.guest.port).sort((a, b) => a - b);
  /** Guest `src` sends a SYN from `srcPort`; returns what came back (an RST when refused). */
  const syn = (src: Ipv4Addr, srcPort: number): Tcp[] => t.guestSends({ srcPort }, GATEWAY, src);
  /** The flow of guest `src`'s connection from `srcPort`. */
  const tcpFlow = (src: Ipv4Addr, srcPort: number) => t.table.byTuple('tcp', src, srcPort, GATEWAY, 80);
  /**
   * Takes the connection of guest `src` from `srcPort` (in 'host-connecting') through the
   * handshake, a host end and the guest's FIN, to TIME-WAIT.
   */
  const toTimeWait = (src: Ipv4Addr, srcPort: number): void => {
    const id = tcpFlow(src, srcPort)!.id;
    const [synAck] = t.connect(id);
    const iss = synAck!.seq;
    const options = optionsAfterSyn({});
    t.guestSends({ srcPort, flags: ACK, seq: 1001, ack: (iss + 1) >>> 0, options, window: 502 }, GATEWAY, src);
    t.end(id);
    t.guestSends({ srcPort, flags: ACK | FIN, seq: 1001, ack: (iss + 2) >>> 0, options, window: 502 }, GATEWAY, src);
    expect(t.table.byId(id)?.stateName).toBe('time-wait');
  };
  return { ...t, udp, udpSends, udpFlow, ports, syn, tcpFlow, toTimeWait };
}

describe('flow table limits', () => {
  it('refuses a flow past its guest\'s limit while other guests still add theirs', () => {
    const table = new FlowTable(limits(8, 8, 2, 2));
    expect(table.add(entry(table, 'udp', GUEST, 1))).toBe(true);
    expect(table.add(entry(table, 'udp', GUEST, 2))).toBe(true);
    expect(table.limitHit('udp', GUEST)).toBe('guest');
    expect(table.add(entry(table, 'udp', GUEST, 3))).toBe(false);
    expect(table.limitHit('udp', OTHER)).toBeUndefined();
    expect(table.add(entry(table, 'udp', OTHER, 3))).toBe(true);
    // Protocols are counted apart.
    expect(table.limitHit('tcp', GUEST)).toBeUndefined();
    expect(table.add(entry(table, 'tcp', GUEST, 3))).toBe(true);
    expect([table.guestCount('udp', GUEST), table.guestCount('udp', OTHER), table.count('udp')]).toEqual([2, 1, 3]);
  });

  it('refuses past the network limit whichever guest asks; removing any flow makes room', () => {
    const table = new FlowTable(limits(3, 3, 2, 2));
    const first = entry(table, 'udp', GUEST, 1);
    for (const f of [first, entry(table, 'udp', OTHER, 2), entry(table, 'udp', GUESTS[2], 3)]) expect(table.add(f)).toBe(true);
    expect(table.limitHit('udp', GUESTS[3])).toBe('network');
    expect(table.add(entry(table, 'udp', GUESTS[3], 4))).toBe(false);
    table.remove(first.id);
    expect(table.add(entry(table, 'udp', GUESTS[3], 4))).toBe(true);
  });

  it('keeps recency per guest as well as for the network, and forgets a guest with its last flow', () => {
    const table = new FlowTable(limits(8, 8, 4, 4));
    const [a1, b1, a2] = [entry(table, 'udp', GUEST, 1), entry(table, 'udp', OTHER, 1), entry(table, 'udp', GUEST, 2)];
    for (const f of [a1, b1, a2]) table.add(f);
    table.touch(a1, 5);
    expect(ids(table.flows('udp'))).toEqual([b1.id, a2.id, a1.id]);
    expect(ids(table.flows('udp', GUEST))).toEqual([a2.id, a1.id]);
    expect(table.leastRecent('udp')).toBe(b1);
    expect(table.leastRecent('udp', GUEST)).toBe(a2);
    expect(table.leastRecent('udp', GUESTS[3])).toBeUndefined();
    expect([...table.guests('udp')].sort()).toEqual([GUEST, OTHER].sort());
    table.remove(b1.id);
    expect([...table.guests('udp')]).toEqual([GUEST]);
    expect(ids(table.flows('udp', OTHER))).toEqual([]);
  });

  it('rejects limits that are not integers of at least 1', () => {
    expect(() => new FlowTable(limits(0, 8, 1, 1))).toThrow(RangeError);
    expect(() => new FlowTable(limits(8, 8, 1.5, 1))).toThrow(/perGuest.udp/);
    expect(() => new FlowTable(limits(8, 8, 1, Number.NaN))).toThrow(/perGuest.tcp/);
  });
});

describe('UDP NAT limits', () => {
  it('a guest at its limit recycles its own flows: another guest keeps its flows and opens new ones', () => {
    const t = natHarness(limits(16, 16, 3, 3));
    t.udpSends(OTHER, 100);
    t.udpSends(OTHER, 101);
    for (let port = 1; port <= 10; port++) {
      t.clock.advance(1);
      t.udpSends(GUEST, port);
    }
    expect(t.ports('udp', GUEST)).toEqual([8, 9, 10]);
    expect(t.ports('udp', OTHER)).toEqual([100, 101]); // older than every flow of GUEST, yet kept
    expect(t.counters.get('nat.udp-guest-limit')).toBe(7);
    expect(t.counters.get('udp.flow-evicted')).toBe(0);
    t.udpSends(OTHER, 102);
    expect(t.ports('udp', OTHER)).toEqual([100, 101, 102]);
    expect(t.counters.get('nat.udp-guest-limit')).toBe(7);
  });

  it('at the network limit the least recently active flow of the network goes', () => {
    const t = natHarness(limits(4, 4, 3, 3));
    for (const [src, port] of [[GUEST, 1], [OTHER, 2], [GUEST, 3], [OTHER, 4]] as const) {
      t.clock.advance(1);
      t.udpSends(src, port);
    }
    t.udpSends(GUEST, 1); // refreshed: OTHER's port 2 is now the least recent
    t.udpSends(GUESTS[2], 5);
    expect(t.ports('udp', OTHER)).toEqual([4]);
    expect(t.ports('udp', GUESTS[2])).toEqual([5]);
    expect(t.counters.get('udp.flow-evicted')).toBe(1);
    expect(t.counters.get('nat.udp-guest-limit')).toBe(0);
    expect(t.host.callsOf('close')).toEqual([[t.host.callsOf('udpOpen')[1]![0]]]);
  });

  it('forwarded flows count against the guest they go to', () => {
    const t = natHarness(limits(16, 16, 2, 2));
    t.udpSends(GUEST, 1);
    t.udpSends(GUEST, 2);
    const client = { addr: ip('127.0.0.1'), port: 50_000 };
    t.clock.advance(1);
    expect(t.udp.forward(client, { addr: GUEST, port: 53 }, t.clock.now(), VIA)).toBeDefined();
    expect(t.ports('udp', GUEST)).toEqual([2, 53]);
    expect(t.counters.get('nat.udp-guest-limit')).toBe(1);
    expect(t.udp.forward(client, { addr: OTHER, port: 53 }, t.clock.now(), VIA)).toBeDefined();
    expect(t.table.guestCount('udp', OTHER)).toBe(1);
  });
});

describe('TCP NAT limits', () => {
  it('a guest at its limit gets RSTs; another guest still connects', () => {
    const t = natHarness(limits(16, 16, 2, 2));
    expect(t.syn(GUEST, 1)).toEqual([]);
    expect(t.syn(GUEST, 2)).toEqual([]);
    expect(t.syn(GUEST, 3)).toMatchObject([{ flags: RST | ACK, dstPort: 3 }]);
    expect(t.counters.get('nat.tcp-guest-limit')).toBe(1);
    expect(t.syn(OTHER, 1)).toEqual([]);
    expect(t.syn(OTHER, 2)).toEqual([]);
    expect(t.ports('tcp', OTHER)).toEqual([1, 2]);
    expect(t.counters.get('tcp.flow-limit')).toBe(0);
    expect(t.host.callsOf('tcpConnect')).toHaveLength(4);
  });

  it('a guest at its limit gives up its own oldest TIME-WAIT connection, never another guest\'s', () => {
    const t = natHarness(limits(16, 16, 2, 2));
    t.syn(OTHER, 9);
    t.toTimeWait(OTHER, 9);
    t.syn(GUEST, 1);
    t.syn(GUEST, 2);
    t.toTimeWait(GUEST, 2);
    expect(t.syn(GUEST, 3)).toEqual([]);
    expect(t.ports('tcp', GUEST)).toEqual([1, 3]);
    expect(t.tcpFlow(OTHER, 9)?.stateName).toBe('time-wait');
    expect(t.engine.stats.get('tcp.time-wait-evicted')).toBe(1);
    expect(t.syn(GUEST, 4)).toMatchObject([{ flags: RST | ACK }]); // no TIME-WAIT of its own left
    expect(t.counters.get('nat.tcp-guest-limit')).toBe(1);
    expect(t.tcpFlow(OTHER, 9)?.stateName).toBe('time-wait');
  });

  it('at the network limit the oldest TIME-WAIT of the network goes, else the SYN is refused', () => {
    const t = natHarness(limits(2, 2, 2, 2));
    t.syn(OTHER, 9);
    t.toTimeWait(OTHER, 9);
    t.syn(GUEST, 1);
    expect(t.syn(GUESTS[2], 5)).toEqual([]);
    expect(t.tcpFlow(OTHER, 9)).toBeUndefined();
    expect(t.engine.stats.get('tcp.time-wait-evicted')).toBe(1);
    expect(t.syn(GUESTS[3], 6)).toMatchObject([{ flags: RST | ACK }]);
    expect(t.counters.get('tcp.flow-limit')).toBe(1);
    expect(t.counters.get('nat.tcp-guest-limit')).toBe(0);
  });

  it('a forward to a guest at its limit is refused and counted; to another guest it opens', () => {
    const t = natHarness(limits(16, 16, 1, 1));
    t.syn(GUEST, 1);
    const client = { addr: ip('127.0.0.1'), port: 50_000 };
    expect(t.engine.forward(client, { addr: GUEST, port: 22 }, t.clock.now())).toBeUndefined();
    expect(t.counters.get('nat.tcp-guest-limit')).toBe(1);
    const flow = t.engine.forward(client, { addr: OTHER, port: 22 }, t.clock.now());
    expect(flow).toBeDefined();
    expect(t.table.byId(flow!)?.guest).toEqual({ addr: OTHER, port: 22 });
  });
});

type Op =
  | { readonly kind: 'udp'; readonly guest: number; readonly port: number }
  | { readonly kind: 'syn'; readonly guest: number; readonly port: number }
  | { readonly kind: 'time-wait'; readonly pick: number }
  | { readonly kind: 'rst'; readonly pick: number }
  | { readonly kind: 'udp-forward'; readonly guest: number; readonly port: number }
  | { readonly kind: 'tcp-forward'; readonly guest: number; readonly port: number }
  | { readonly kind: 'wait'; readonly ms: number };

const guestArb = fc.nat({ max: GUESTS.length - 1 });
const portArb = fc.integer({ min: 1, max: 12 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('udp' as const), guest: guestArb, port: portArb }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('syn' as const), guest: guestArb, port: portArb }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('time-wait' as const), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('rst' as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('udp-forward' as const), guest: guestArb, port: portArb }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('tcp-forward' as const), guest: guestArb, port: portArb }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.constantFrom(10, 2_000, UDP_IDLE_TIMEOUT_MS / 2) }), weight: 1 },
);
const limitArb = fc.integer({ min: 1, max: 6 });
const limitsArb = fc.tuple(limitArb, limitArb, limitArb, limitArb).map(([u, t, gu, gt]) => limits(u, t, gu, gt));

describe('flow limits (property)', () => {
  it('per-guest and per-network counts never pass their limits, and evictions stay within the guest whose limit is hit', () => {
    fc.assert(fc.property(limitsArb, fc.array(opArb, { maxLength: 60 }), (lim, ops) => {
      const t = natHarness(lim, 3000);
      const client = (port: number) => ({ addr: ip('127.0.0.1'), port: 40_000 + port });
      /** Each guest's flow ids of a protocol, for the "only its own" check. */
      const flowsOf = (p: FlowProtocol) => GUESTS.map((g) => ids(t.table.flows(p, g)).join());
      const check = (): void => {
        for (const p of ['udp', 'tcp'] as const) {
          let sum = 0;
          for (const g of GUESTS) {
            const n = t.table.guestCount(p, g);
            expect(n).toBeLessThanOrEqual(lim.perGuest[p]);
            // The per-guest count agrees with the flows themselves.
            expect(n).toBe(t.table.list(0).filter((f) => f.protocol === p && f.guest.addr === g).length);
            sum += n;
          }
          expect(t.table.count(p)).toBeLessThanOrEqual(lim[p]);
          expect(sum).toBe(t.table.count(p));
        }
      };
      /** A new flow of guest `g` (protocol `p`): when only the guest's limit stood in the way, the other guests' flows are untouched. */
      const opening = (p: FlowProtocol, g: number, body: () => void): void => {
        const hit = t.table.limitHit(p, GUESTS[g]!);
        const before = flowsOf(p);
        body();
        if (hit === 'guest') {
          const after = flowsOf(p);
          for (let other = 0; other < GUESTS.length; other++) if (other !== g) expect(after[other]).toBe(before[other]);
        }
      };
      for (const op of ops) {
        switch (op.kind) {
          case 'udp': {
            const g = GUESTS[op.guest]!;
            opening('udp', op.guest, () => t.udpSends(g, op.port));
            expect(t.udpFlow(g, op.port)).toBeDefined(); // UDP makes room, it never refuses
            break;
          }
          case 'syn': {
            const g = GUESTS[op.guest]!;
            const known = t.tcpFlow(g, op.port) !== undefined;
            const refusals = t.counters.get('nat.tcp-guest-limit') + t.counters.get('tcp.flow-limit');
            opening('tcp', op.guest, () => t.syn(g, op.port));
            const refused = t.counters.get('nat.tcp-guest-limit') + t.counters.get('tcp.flow-limit') - refusals;
            if (!known) expect(refused === 0).toBe(t.tcpFlow(g, op.port) !== undefined);
            break;
          }
          case 'time-wait': {
            const connecting = [...t.table.flows('tcp')].filter((f) => f.stateName === 'host-connecting' && f.origin === 'guest');
            const f = connecting[op.pick % Math.max(1, connecting.length)];
            if (f !== undefined) t.toTimeWait(f.guest.addr as Ipv4Addr, f.guest.port);
            break;
          }
          case 'rst': {
            const all = [...t.table.flows('tcp')].filter((f) => f.origin === 'guest' && f.stateName !== 'time-wait');
            const f = all[op.pick % Math.max(1, all.length)];
            if (f !== undefined) {
              t.guestSends({ srcPort: f.guest.port, flags: RST, seq: 1001 }, GATEWAY, f.guest.addr as Ipv4Addr);
              expect(t.table.byId(f.id)).toBeUndefined();
            }
            break;
          }
          case 'udp-forward':
            opening('udp', op.guest, () => t.udp.forward(client(op.port), { addr: GUESTS[op.guest]!, port: 7000 + op.port }, t.clock.now(), VIA));
            break;
          case 'tcp-forward':
            opening('tcp', op.guest, () => t.engine.forward(client(op.port), { addr: GUESTS[op.guest]!, port: 7000 + op.port }, t.clock.now()));
            t.engine.flush(t.clock.now());
            t.take();
            break;
          case 'wait':
            // Timers: TIME-WAIT ends, host connects time out (ICMP to the guest), UDP flows idle out.
            t.clock.advance(op.ms);
            t.engine.advance(t.clock.now());
            t.engine.flush(t.clock.now());
            t.udp.advance(t.clock.now());
            t.take();
            break;
        }
        check();
      }
    }), { numRuns: runs(100) });
  }, budgetMs(30_000));
});

describe('nat/flow-table: limits from options (--max-tcp-flows and friends)', () => {
  it('defaults to today\'s limits: 4096 TCP and 1024 UDP flows per guest, 16384 and 4096 per network', () => {
    expect(resolveFlowLimits()).toEqual(DEFAULT_FLOW_LIMITS);
    expect(resolveFlowLimits()).toEqual({ tcp: 16384, udp: 4096, perGuest: { tcp: 4096, udp: 1024 } });
  });

  it('takes each limit on its own, and lowers a guest\'s default with its network\'s', () => {
    expect(resolveFlowLimits({ 'max-tcp-flows': '10', 'max-udp-flows': 3 })).toEqual({ tcp: 16384, udp: 4096, perGuest: { tcp: 10, udp: 3 } });
    expect(resolveFlowLimits({ 'max-network-tcp-flows': '100' })).toEqual({ tcp: 100, udp: 4096, perGuest: { tcp: 100, udp: 1024 } });
    expect(resolveFlowLimits({ 'max-network-udp-flows': `${MAX_FLOW_LIMIT}`, 'max-udp-flows': `${MAX_FLOW_LIMIT}` }).perGuest.udp).toBe(MAX_FLOW_LIMIT);
  });

  it.each([
    [{ 'max-tcp-flows': '0' }, 'max-tcp-flows', /from 1 to 1048576/],
    [{ 'max-udp-flows': '-1' }, 'max-udp-flows', /from 1 to 1048576/],
    [{ 'max-network-tcp-flows': '1e3' }, 'max-network-tcp-flows', /from 1 to 1048576/],
    [{ 'max-network-udp-flows': `${MAX_FLOW_LIMIT + 1}` }, 'max-network-udp-flows', /from 1 to 1048576/],
    [{ 'max-tcp-flows': '200', 'max-network-tcp-flows': '100' }, 'max-tcp-flows', /200 flows per guest is above the network's limit of 100/],
  ])('refuses %j naming --%s', (o, option, reason) => {
    let err: unknown;
    try {
      resolveFlowLimits(o);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).option).toBe(option);
    expect((err as ConfigError).message).toMatch(reason);
  });

  it('gives limits a FlowTable accepts, for any numbers it does not refuse', () => {
    fc.assert(
      fc.property(fc.record({ 'max-tcp-flows': fc.option(fc.integer({ min: -2, max: 1 << 21 }), { nil: undefined }), 'max-network-tcp-flows': fc.option(fc.integer({ min: -2, max: 1 << 21 }), { nil: undefined }) }), (o) => {
        let limits: FlowLimits;
        try {
          limits = resolveFlowLimits(o);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          return;
        }
        expect(limits.perGuest.tcp).toBeLessThanOrEqual(limits.tcp);
        expect(() => new FlowTable(limits)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });
});

describe('nat/flow-table: the new-flow rate (--max-new-flows-per-second)', () => {
  it('parses 0 (no limit) to the maximum, and refuses anything else naming the option', () => {
    expect(resolveFlowLimits({ 'max-new-flows-per-second': '0' }).newFlowsPerSecond).toBe(0);
    expect(resolveFlowLimits({ 'max-new-flows-per-second': 50 }).newFlowsPerSecond).toBe(50);
    for (const bad of ['-1', '1.5', 'ten', `${MAX_FLOW_LIMIT + 1}`]) expect(() => resolveFlowLimits({ 'max-new-flows-per-second': bad })).toThrow(/max-new-flows-per-second|from 0/);
  });

  it('admits a burst of N at once, then N per second as time passes; 0 admits everything', () => {
    const t = new FlowTable({ ...limits(100, 100, 100, 100), newFlowsPerSecond: 4 });
    const admitted = (nowMs: number, n: number): number => Array.from({ length: n }, () => t.admitNew(nowMs)).filter(Boolean).length;
    expect(admitted(0, 10)).toBe(4);
    expect(admitted(100, 10)).toBe(0);
    expect(admitted(500, 10)).toBe(2);
    expect(admitted(10_000, 10)).toBe(4); // never more than one second's worth saved up
    const open = new FlowTable({ ...limits(100, 100, 100, 100), newFlowsPerSecond: 0 });
    expect(Array.from({ length: 1000 }, () => open.admitNew(0)).every(Boolean)).toBe(true);
  });

  it('the engines drop guest SYNs and mapping-opening datagrams past it, unanswered and counted; forwards and open flows are not limited', () => {
    const t = natHarness({ ...limits(100, 100, 100, 100), newFlowsPerSecond: 2 });
    expect(t.syn(GUEST, 40001).length).toBe(0); // host-connecting: nothing to the guest yet
    expect(t.syn(GUEST, 40002).length).toBe(0);
    expect(t.syn(GUEST, 40003)).toEqual([]); // refused without an RST
    expect(t.table.count('tcp')).toBe(2);
    t.udpSends(OTHER, 5000);
    expect(t.table.count('udp')).toBe(0);
    expect(t.counters.get('nat.new-flow-rate')).toBe(2);
    // A second later, the guest's retransmitted SYN gets in.
    t.clock.advance(1000);
    t.syn(GUEST, 40003);
    expect(t.tcpFlow(GUEST, 40003)).toBeDefined();
    t.udpSends(OTHER, 5000);
    expect(t.udpFlow(OTHER, 5000)).toBeDefined();
    // Traffic on an open mapping takes no token.
    for (let i = 0; i < 10; i++) t.udpSends(OTHER, 5000);
    expect(t.counters.get('nat.new-flow-rate')).toBe(2);
  });
});

describe('flow limits replaced by a reload (FlowTable.setLimits)', () => {
  it('a new rate takes effect at once: lowered, raised, turned off and on; open flows stay', () => {
    const t = natHarness({ ...limits(100, 100, 100, 100), newFlowsPerSecond: 10 });
    for (let p = 1; p <= 10; p++) t.syn(GUEST, p);
    expect(t.table.count('tcp')).toBe(10);
    t.clock.advance(1000);
    t.table.setLimits({ ...limits(100, 100, 100, 100), newFlowsPerSecond: 2 });
    for (let p = 11; p <= 20; p++) t.syn(GUEST, p);
    expect(t.table.count('tcp')).toBe(12); // a burst of the new rate's worth, not the old
    t.clock.advance(1000);
    t.table.setLimits({ ...limits(100, 100, 100, 100), newFlowsPerSecond: 0 });
    for (let p = 21; p <= 40; p++) t.syn(GUEST, p);
    expect(t.table.count('tcp')).toBe(32); // off: everything
    t.table.setLimits({ ...limits(100, 100, 100, 100), newFlowsPerSecond: 3 });
    for (let p = 41; p <= 50; p++) t.syn(GUEST, p);
    expect(t.table.count('tcp')).toBe(35); // on again: starts full, a burst of 3
    expect(t.counters.get('nat.new-flow-rate')).toBe(8 + 7);
    expect(() => t.table.setLimits(limits(0, 1, 1, 1))).toThrow(RangeError);
    expect(t.table.limits.newFlowsPerSecond).toBe(3); // a refused change changes nothing
  });

  it('a lowered UDP limit is reached at the guest\'s next new flow: its least recent flows go, other guests\' stay', () => {
    const t = natHarness(limits(100, 100, 10, 10));
    for (let port = 1; port <= 8; port++) {
      t.clock.advance(1);
      t.udpSends(GUEST, port);
    }
    t.udpSends(OTHER, 100);
    t.table.setLimits(limits(100, 100, 3, 3));
    expect(t.ports('udp', GUEST)).toHaveLength(8); // nothing is cut by the reload itself
    t.udpSends(GUEST, 9);
    expect(t.ports('udp', GUEST)).toEqual([7, 8, 9]);
    expect(t.ports('udp', OTHER)).toEqual([100]);
    expect(t.counters.get('nat.udp-guest-limit')).toBe(6);
    expect(t.counters.get('udp.flow-refused')).toBe(0);
  });

  it('a lowered TCP limit: live connections go on, new SYNs are refused until TIME-WAIT ones make room', () => {
    const t = natHarness(limits(100, 100, 10, 10));
    for (let port = 1; port <= 4; port++) t.syn(GUEST, port);
    t.toTimeWait(GUEST, 1);
    t.toTimeWait(GUEST, 2);
    t.table.setLimits(limits(100, 100, 2, 2));
    // 4 open, 2 of them in TIME-WAIT: both go, and the SYN is still past the limit (2 live).
    expect(t.syn(GUEST, 5)).toMatchObject([{ flags: RST | ACK }]);
    expect(t.ports('tcp', GUEST)).toEqual([3, 4]);
    expect(t.engine.stats.get('tcp.time-wait-evicted')).toBe(2);
    expect(t.counters.get('nat.tcp-guest-limit')).toBe(1);
    t.table.setLimits(limits(100, 100, 3, 3));
    expect(t.syn(GUEST, 6)).toEqual([]);
    expect(t.ports('tcp', GUEST)).toEqual([3, 4, 6]);
  });
});
