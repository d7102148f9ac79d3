import { describe, expect, it } from 'vitest';
import { HOST_CALLS, HOST_EVENTS, observeEvents, observeHost, type HostObserver } from '../../src/net/observe.js';
import type { Host, HostEvents } from '../../src/net/seams.js';
import { FakeHost } from '../helpers/fake-host.js';

/** Every method a class's instances have (its prototype chain up to Object), constructor excluded. */
function methodsOf(o: object): string[] {
  const names = new Set<string>();
  for (let p = Object.getPrototypeOf(o) as object | null; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null)
    for (const n of Object.getOwnPropertyNames(p)) if (n !== 'constructor' && typeof (o as Record<string, unknown>)[n] === 'function') names.add(n);
  return [...names].sort();
}

/** A HostEvents (or Host) whose every method records its name and arguments, built from a name list. */
function recording(names: readonly string[], log: [string, unknown[]][], result?: unknown): Record<string, (...args: unknown[]) => unknown> {
  return Object.fromEntries(names.map((n) => [n, (...args: unknown[]) => (log.push([n, args]), result)]));
}

describe('observeHost / observeEvents', () => {
  it('HOST_CALLS names every Host method (FakeHost implements Host: its methods but callsOf)', () => {
    expect(methodsOf(new FakeHost()).filter((n) => n !== 'callsOf')).toEqual(Object.keys(HOST_CALLS).sort());
  });

  it('every Host call passes the observer, then reaches the host with its arguments and result', () => {
    const seen: [string, string, readonly unknown[]][] = [];
    const observer: HostObserver = (kind, name, args) => seen.push([kind, name, args]);
    const reached: [string, unknown[]][] = [];
    const inner = recording(Object.keys(HOST_CALLS), reached, 7) as unknown as Host;
    const host = observeHost(inner, observer);
    for (const name of Object.keys(HOST_CALLS) as (keyof Host)[]) {
      const before = seen.length;
      const result = (host[name] as (...a: unknown[]) => unknown)(1, 'x');
      expect(seen.slice(before)).toEqual([['call', name, [1, 'x']]]);
      expect(reached.at(-1)).toEqual([name, [1, 'x']]);
      expect(result).toBe(7); // tcpWrite's buffered count comes back unchanged
    }
    expect(seen).toHaveLength(Object.keys(HOST_CALLS).length);
  });

  it('every HostEvents event passes the observer, then reaches the events', () => {
    const seen: string[] = [];
    const reached: [string, unknown[]][] = [];
    const events = observeEvents(recording(Object.keys(HOST_EVENTS), reached) as unknown as HostEvents, (kind, name) => seen.push(`${kind} ${name}`));
    for (const name of Object.keys(HOST_EVENTS) as (keyof HostEvents)[]) (events[name] as (...a: unknown[]) => void)(3);
    expect(seen).toEqual(Object.keys(HOST_EVENTS).map((n) => `event ${n}`));
    expect(reached.map(([n]) => n)).toEqual(Object.keys(HOST_EVENTS));
  });

  it('onResult sees each call\'s result after the call, in order', () => {
    const order: string[] = [];
    const inner = { ...recording(Object.keys(HOST_CALLS), []), tcpWrite: () => (order.push('reached'), 1234) } as unknown as Host;
    const host = observeHost(inner, () => order.push('observed'), (name, result) => order.push(`${name}=${String(result)}`));
    expect(host.tcpWrite(1, new Uint8Array(3))).toBe(1234);
    host.tcpEnd(1);
    expect(order).toEqual(['observed', 'reached', 'tcpWrite=1234', 'observed', 'tcpEnd=undefined']);
  });

  it('a real host keeps its `this` behind the wrapper', () => {
    const fake = new FakeHost();
    const seen: string[] = [];
    observeHost(fake, (_k, name) => seen.push(name)).udpOpen(1, { addr: 1, port: 2 });
    expect(fake.calls).toEqual([['udpOpen', 1, { addr: 1, port: 2 }]]);
    expect(seen).toEqual(['udpOpen']);
  });
});
