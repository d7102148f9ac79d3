import { describe, expect, it } from 'vitest';
import { LeaseTable, type LeaseClient } from '../../src/dhcp/leases.js';

const START = 0x0a00020f; // 10.0.2.15
const client = (n: number, hostname?: string): LeaseClient => ({
  key: `mac:52:54:00:00:00:${n.toString(16).padStart(2, '0')}`, mac: `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`,
  clientId: undefined, hostname,
});
function bind(t: LeaseTable, c: LeaseClient, nowMs: number, untilMs: number, requested?: number): number {
  const ip = t.choose(c.key, requested, nowMs)!;
  expect(t.put(c, ip, 'bound', untilMs, nowMs)).toBeDefined();
  return ip;
}

describe('dhcp/leases', () => {
  it('hands out never-used addresses in order, one per key', () => {
    const t = new LeaseTable(START, 4);
    expect([1, 2, 3].map((n) => bind(t, client(n), 0, 1000))).toEqual([START, START + 1, START + 2]);
    expect(bind(t, client(2), 10, 2000)).toBe(START + 1);
    expect(t.list(10)).toHaveLength(3);
  });

  it('gives a returning client its old address, and prefers the address freed longest ago for new ones', () => {
    const t = new LeaseTable(START, 3);
    bind(t, client(1), 0, 100);
    bind(t, client(2), 0, 200);
    bind(t, client(3), 0, 300);
    expect(t.choose(client(4).key, undefined, 150)).toBe(START); // freed at 100
    expect(t.choose(client(4).key, undefined, 250)).toBe(START); // freed at 100, before 200
    expect(t.choose(client(2).key, undefined, 250)).toBe(START + 1); // its own again
    expect(t.list(250).map((l) => l.ip)).toEqual([START + 2]);
  });

  it('honours a requested free address, never a taken one', () => {
    const t = new LeaseTable(START, 3);
    bind(t, client(1), 0, 100);
    expect(t.choose(client(2).key, START + 2, 0)).toBe(START + 2);
    expect(t.choose(client(2).key, START, 0)).toBe(START + 1);
    expect(t.put(client(2), START, 'bound', 100, 0)).toBeUndefined();
  });

  it('is bounded by the pool', () => {
    const t = new LeaseTable(START, 2);
    bind(t, client(1), 0, 100);
    bind(t, client(2), 0, 100);
    expect(t.choose(client(3).key, undefined, 50)).toBeUndefined();
    expect(t.choose(client(3).key, undefined, 100)).toBe(START);
  });

  it('moves a key rather than giving it two addresses', () => {
    const t = new LeaseTable(START, 3);
    bind(t, client(1), 0, 100);
    t.put(client(1), START + 2, 'bound', 100, 0);
    expect(t.list(0).map((l) => l.ip)).toEqual([START + 2]);
  });

  it('releases only the holder’s lease', () => {
    const t = new LeaseTable(START, 2);
    bind(t, client(1), 0, 100);
    expect(t.release(client(2).key, START, 1)).toBe(false);
    expect(t.release(client(1).key, START + 1, 1)).toBe(false);
    expect(t.release(client(1).key, START, 1)).toBe(true);
    expect(t.list(1)).toEqual([]);
  });

  it('quarantines a declined address and forgets its holder', () => {
    const t = new LeaseTable(START, 2);
    bind(t, client(1), 0, 100);
    t.quarantine(START, 60, 10);
    expect(t.availableFor(START, client(1).key, 59)).toBe(false);
    expect(t.choose(client(1).key, START, 20)).toBe(START + 1);
    expect(t.availableFor(START, client(2).key, 60)).toBe(true);
  });

  it('keeps the hostname a client sent earlier when it sends none later', () => {
    const t = new LeaseTable(START, 1);
    t.put(client(1, 'vm'), START, 'offered', 10, 0);
    expect(t.put(client(1), START, 'bound', 100, 1)?.hostname).toBe('vm');
  });
});
