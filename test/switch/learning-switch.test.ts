import { describe, expect, it } from 'vitest';
import { DEFAULT_MAC_AGING_MS, LearningSwitch, type PortId, type SwitchOptions } from '../../src/switch/learning-switch.js';
import { Counters } from '../../src/util/drops.js';
import { hex } from '../helpers/hex.js';

const A = hex`52 54 00 00 00 0a`;
const B = hex`52 54 00 00 00 0b`;
const C = hex`52 54 00 00 00 0c`;
const D = hex`52 54 00 00 00 0d`;
const E = hex`52 54 00 00 00 0e`;
const BROADCAST = hex`ff ff ff ff ff ff`;
const IPV4_MULTICAST = hex`01 00 5e 00 00 fb`;

/** dst, src, EtherType 0x0800 and two bytes of payload. */
function frame(dst: Uint8Array, src: Uint8Array): Uint8Array {
  const f = new Uint8Array(16);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x08;
  f[14] = 0xca;
  f[15] = 0xfe;
  return f;
}

/** A switch with `n` ports, each logging what it receives. */
function harness(n: number, options?: SwitchOptions) {
  const counters = new Counters();
  const sw = new LearningSwitch(counters, options);
  const got = new Map<PortId, Uint8Array[]>();
  const ports: PortId[] = [];
  for (let i = 0; i < n; i++) {
    const log: Uint8Array[] = [];
    const id = sw.addPort((f) => log.push(f));
    got.set(id, log);
    ports.push(id);
  }
  /** Which ports received something since the last call (and clears the logs). */
  const receivers = (): PortId[] => {
    const out = ports.filter((p) => got.get(p)!.length > 0);
    for (const log of got.values()) log.length = 0;
    return out;
  };
  return { sw, counters, ports, got, receivers };
}

describe('switch/learning-switch', () => {
  it('floods broadcast and multicast to every port but the sender', () => {
    const t = harness(4);
    const [p1, p2, p3, p4] = t.ports as [PortId, PortId, PortId, PortId];
    t.sw.input(p2, frame(BROADCAST, A), 0);
    expect(t.receivers()).toEqual([p1, p3, p4]);
    t.sw.input(p3, frame(IPV4_MULTICAST, B), 0);
    expect(t.receivers()).toEqual([p1, p2, p4]);
    expect(t.counters.snapshot()).toEqual({});
  });

  it('floods unknown unicast, then forwards to the learned port alone', () => {
    const t = harness(3);
    const [p1, p2, p3] = t.ports as [PortId, PortId, PortId];
    t.sw.input(p1, frame(B, A), 0); // B unknown: flood
    expect(t.receivers()).toEqual([p2, p3]);
    t.sw.input(p2, frame(A, B), 1); // A learned on p1
    expect(t.receivers()).toEqual([p1]);
    t.sw.input(p1, frame(B, A), 2); // B learned on p2
    expect(t.receivers()).toEqual([p2]);
    expect(t.sw.size).toBe(2);
    expect(t.sw.lookup(A, 2)).toBe(p1);
    expect(t.sw.lookup(B, 2)).toBe(p2);
    expect(t.sw.lookup(C, 2)).toBeUndefined();
  });

  it('passes the frame on as is: the same bytes to every port of a flood', () => {
    const t = harness(3);
    const f = frame(BROADCAST, A);
    t.sw.input(t.ports[0]!, f, 0);
    expect(t.got.get(t.ports[1]!)![0]).toBe(f);
    expect(t.got.get(t.ports[2]!)![0]).toBe(f);
  });

  it('never sends a frame back to its sender: a destination on the same port is filtered', () => {
    const t = harness(2);
    const [p1] = t.ports as [PortId, PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.sw.input(p1, frame(BROADCAST, B), 0); // A and B both behind p1
    t.receivers();
    t.sw.input(p1, frame(B, A), 1);
    expect(t.receivers()).toEqual([]);
    t.sw.input(p1, frame(A, A), 1); // to itself
    expect(t.receivers()).toEqual([]);
    expect(t.counters.get('switch.same-port')).toBe(2);
  });

  it('counts and drops runts, group or zero sources and unknown ports', () => {
    const t = harness(2);
    const [p1] = t.ports as [PortId, PortId];
    for (let n = 0; n < 14; n++) t.sw.input(p1, frame(BROADCAST, A).subarray(0, n), 0);
    t.sw.input(p1, frame(BROADCAST, A).subarray(0, 14), 0); // a bare header is a frame
    expect(t.counters.get('switch.runt')).toBe(14);
    expect(t.receivers()).toHaveLength(1);
    t.sw.input(p1, frame(B, BROADCAST), 0);
    t.sw.input(p1, frame(B, IPV4_MULTICAST), 0);
    t.sw.input(p1, frame(B, hex`00 00 00 00 00 00`), 0);
    expect(t.counters.get('switch.bad-source')).toBe(3);
    t.sw.input(999, frame(BROADCAST, C), 0);
    expect(t.counters.get('switch.unknown-port')).toBe(1);
    expect(t.receivers()).toEqual([]);
    expect(t.sw.lookup(C, 0)).toBeUndefined();
    expect(t.sw.size).toBe(1); // A only
  });

  it('ages entries out after agingMs: unknown again, flooded, then re-learned', () => {
    const t = harness(3, { agingMs: 1000 });
    const [p1, p2, p3] = t.ports as [PortId, PortId, PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.receivers();
    t.sw.input(p2, frame(A, B), 999);
    expect(t.receivers()).toEqual([p1]);
    expect(t.sw.macs(999)).toEqual([{ mac: '52:54:00:00:00:0a', port: p1, ageMs: 999 }, { mac: '52:54:00:00:00:0b', port: p2, ageMs: 0 }]);
    t.sw.input(p2, frame(A, B), 1000); // A last seen 1000 ms ago: aged
    expect(t.receivers()).toEqual([p1, p3]);
    expect(t.sw.lookup(A, 1000)).toBeUndefined();
    expect(t.sw.macs(1000)).toEqual([{ mac: '52:54:00:00:00:0b', port: p2, ageMs: 0 }]);
    t.sw.input(p1, frame(B, A), 1500);
    expect(t.receivers()).toEqual([p2]);
    expect(t.sw.lookup(A, 1500)).toBe(p1);
  });

  it('drops aged entries when it learns, and expire() sweeps them all at once', () => {
    const t = harness(2, { agingMs: 100 });
    const [p1, p2] = t.ports as [PortId, PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.sw.input(p2, frame(BROADCAST, B), 50);
    t.sw.input(p1, frame(BROADCAST, C), 90);
    expect(t.sw.size).toBe(3);
    expect(t.sw.expire(160)).toBe(2);
    expect(t.sw.size).toBe(1);
    expect(t.sw.lookup(C, 160)).toBe(p1);
    t.sw.input(p2, frame(BROADCAST, B), 160);
    t.sw.input(p2, frame(BROADCAST, D), 200); // C (90) aged: gone as D is learned
    expect(t.sw.size).toBe(2);
    expect(t.sw.macs(200).map((r) => r.mac)).toEqual(['52:54:00:00:00:0b', '52:54:00:00:00:0d']);
  });

  it('re-learns a MAC that moves to another port', () => {
    const t = harness(3);
    const [p1, p2, p3] = t.ports as [PortId, PortId, PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.sw.input(p3, frame(BROADCAST, B), 0);
    t.receivers();
    t.sw.input(p2, frame(B, A), 10); // A now behind p2
    expect(t.receivers()).toEqual([p3]);
    expect(t.counters.get('switch.mac-moved')).toBe(1);
    t.sw.input(p3, frame(A, B), 11);
    expect(t.receivers()).toEqual([p2]);
    expect(t.sw.size).toBe(2);
  });

  it('does not count a move of an aged entry', () => {
    const t = harness(2, { agingMs: 100 });
    const [p1, p2] = t.ports as [PortId, PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.sw.input(p2, frame(BROADCAST, A), 100);
    expect(t.counters.get('switch.mac-moved')).toBe(0);
    expect(t.sw.lookup(A, 100)).toBe(p2);
  });

  it('replaces the entry unused longest when the table is full', () => {
    const t = harness(2, { maxMacs: 4 });
    const [p1, p2] = t.ports as [PortId, PortId];
    for (const mac of [A, B, C, D]) t.sw.input(p1, frame(BROADCAST, mac), 0);
    t.sw.input(p1, frame(BROADCAST, A), 1); // A used again: B is now unused longest
    t.sw.input(p2, frame(BROADCAST, E), 2);
    expect(t.sw.size).toBe(4);
    expect(t.counters.get('switch.mac-table-full')).toBe(1);
    expect(t.sw.lookup(B, 2)).toBeUndefined();
    for (const mac of [A, C, D]) expect(t.sw.lookup(mac, 2)).toBe(p1);
    expect(t.sw.lookup(E, 2)).toBe(p2);
    expect(t.sw.macs(2).map((r) => r.mac)).toEqual(['52:54:00:00:00:0c', '52:54:00:00:00:0d', '52:54:00:00:00:0a', '52:54:00:00:00:0e']);
  });

  it('replaces an aged entry first, without counting the table full', () => {
    const t = harness(1, { maxMacs: 2, agingMs: 100 });
    const [p1] = t.ports as [PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.sw.input(p1, frame(BROADCAST, B), 50);
    t.sw.input(p1, frame(BROADCAST, C), 100); // A aged
    expect(t.counters.get('switch.mac-table-full')).toBe(0);
    t.sw.input(p1, frame(BROADCAST, D), 101); // B live: replaced and counted
    expect(t.counters.get('switch.mac-table-full')).toBe(1);
    expect(t.sw.macs(101).map((r) => r.mac)).toEqual(['52:54:00:00:00:0c', '52:54:00:00:00:0d']);
  });

  it('with a one-entry table, keeps the latest source', () => {
    const t = harness(2, { maxMacs: 1 });
    const [p1, p2] = t.ports as [PortId, PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.receivers();
    t.sw.input(p2, frame(A, B), 0); // B replaces A before A is looked up: flooded
    expect(t.receivers()).toEqual([p1]);
    expect(t.sw.size).toBe(1);
    expect(t.sw.lookup(B, 0)).toBe(p2);
  });

  it('removePort forgets its MACs, stops delivering to it, and never reuses its id', () => {
    const t = harness(3);
    const [p1, p2, p3] = t.ports as [PortId, PortId, PortId];
    t.sw.input(p1, frame(BROADCAST, A), 0);
    t.sw.input(p2, frame(BROADCAST, B), 0);
    t.receivers();
    t.sw.removePort(p2);
    t.sw.removePort(p2); // twice: ignored
    t.sw.removePort(12345);
    expect(t.sw.ports()).toEqual([p1, p3]);
    expect(t.sw.portCount).toBe(2);
    expect(t.sw.lookup(B, 0)).toBeUndefined();
    expect(t.sw.size).toBe(1);
    t.sw.input(p1, frame(B, A), 1);
    expect(t.receivers()).toEqual([p3]);
    t.sw.input(p2, frame(BROADCAST, C), 1);
    expect(t.counters.get('switch.unknown-port')).toBe(1);
    const p4 = t.sw.addPort(() => undefined);
    expect(t.ports).not.toContain(p4);
    expect(p4).toBeGreaterThan(p3);
    expect(t.sw.ports()).toEqual([p1, p3, p4]);
  });

  it('lets a receiver answer at once, and skips a port removed during a flood', () => {
    const counters = new Counters();
    const sw = new LearningSwitch(counters);
    const log: string[] = [];
    const ports: PortId[] = [];
    // p1: a gateway that answers every broadcast from A at once, from its own MAC B.
    ports.push(sw.addPort((f) => {
      log.push(`p1 ${f[11]!.toString(16)}`);
      if (f[0] === 0xff && f[11] === 0x0a) sw.input(ports[0]!, frame(A, B), 0);
    }));
    // p2: the sender of the broadcast.
    ports.push(sw.addPort((f) => log.push(`p2 ${f[11]!.toString(16)}`)));
    // p3: closes p4 when it receives anything (a link failing mid-flood).
    ports.push(sw.addPort((f) => {
      log.push(`p3 ${f[11]!.toString(16)}`);
      sw.removePort(ports[3]!);
    }));
    ports.push(sw.addPort((f) => log.push(`p4 ${f[11]!.toString(16)}`)));
    sw.input(ports[1]!, frame(BROADCAST, A), 0);
    expect(log).toEqual(['p1 a', 'p2 b', 'p3 a']);
    expect(sw.ports()).toEqual([ports[0], ports[1], ports[2]]);
  });

  it('rejects options out of range', () => {
    const c = new Counters();
    expect(() => new LearningSwitch(c, { maxMacs: 0 })).toThrow(RangeError);
    expect(() => new LearningSwitch(c, { maxMacs: 1.5 })).toThrow(RangeError);
    expect(() => new LearningSwitch(c, { agingMs: 0 })).toThrow(RangeError);
    expect(() => new LearningSwitch(c, { agingMs: Number.NaN })).toThrow(RangeError);
    expect(new LearningSwitch(c, { maxMacs: 1, agingMs: 1 }).size).toBe(0);
    expect(DEFAULT_MAC_AGING_MS).toBe(300_000);
  });

  it('lists the table unused longest first, and tells OUIs apart', () => {
    const t = harness(2);
    const [p1, p2] = t.ports as [PortId, PortId];
    const sameNic = hex`02 00 00 00 00 0a`; // A's last three bytes under another OUI
    for (const mac of [A, B, sameNic, C]) t.sw.input(p1, frame(BROADCAST, mac), 0);
    t.sw.input(p2, frame(BROADCAST, B), 5);
    for (let i = 0; i < 100; i++) t.sw.input(p1, frame(B, A), 10); // A and B talking
    t.receivers();
    expect(t.sw.macs(20)).toEqual([
      { mac: '02:00:00:00:00:0a', port: p1, ageMs: 20 },
      { mac: '52:54:00:00:00:0c', port: p1, ageMs: 20 },
      { mac: '52:54:00:00:00:0b', port: p2, ageMs: 15 },
      { mac: '52:54:00:00:00:0a', port: p1, ageMs: 10 },
    ]);
    t.sw.input(p2, frame(sameNic, B), 20);
    expect(t.receivers()).toEqual([p1]);
    t.sw.removePort(p1);
    expect(t.sw.size).toBe(1);
    expect(t.sw.lookup(sameNic, 20)).toBeUndefined();
    expect(t.sw.lookup(A, 20)).toBeUndefined();
    expect(t.sw.lookup(B, 20)).toBe(p2);
    expect(t.counters.snapshot()).toEqual({ 'switch.mac-moved': 1 });
  });
});
