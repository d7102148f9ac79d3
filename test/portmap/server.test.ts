/**
 * The port mapping server with a fake network: forwards recorded, host answers given by the
 * test, a manual clock. Requests are written with the wire module's request writers, answers
 * read at RFC 6886/6887 offsets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ForwardRule } from '../../src/nat/forwards.js';
import { MAX_PER_GUEST, MAX_PER_NETWORK, PortMapper, type PortMappingEvent } from '../../src/portmap/server.js';
import { writeNatPmpMapRequest, writePcpMapRequest } from '../../src/portmap/wire.js';
import { ManualClock } from '../../src/util/clock.js';
import { Counters } from '../../src/util/drops.js';
import { runs } from '../helpers/fuzz.js';
import { hex } from '../helpers/hex.js';

const GUEST = 0x0a00020f;
const LOOPBACK = 0x7f000001;
const NONCE = hex`0102030405060708090a0b0c`;

function harness() {
  const clock = new ManualClock(5000);
  const events: PortMappingEvent[] = [];
  const counters = new Counters();
  const opened: { id: number; rule: ForwardRule }[] = [];
  const closed: number[] = [];
  const sent: { to: number; port: number; payload: Uint8Array }[] = [];
  let nextId = 100;
  const pm = new PortMapper(
    {
      externalAddr: LOOPBACK,
      counters,
      openForward: (rule) => {
        const id = nextId++;
        opened.push({ id, rule });
        return id;
      },
      closeForward: (id) => closed.push(id),
      send: (to, payload) => sent.push({ to: to.addr, port: to.port, payload }),
      onEvent: (e) => events.push(e),
    },
    clock.now(),
  );
  const from = (addr = GUEST, port = 40000) => ({ addr, port });
  const last = () => Buffer.from(sent.at(-1)!.payload);
  return { clock, counters, opened, closed, sent, pm, from, last, events };
}

const natpmp = (protocol: 'udp' | 'tcp', internalPort: number, suggestedPort: number, lifetimeS: number) =>
  writeNatPmpMapRequest({ protocol, internalPort, suggestedPort, lifetimeS });
const pcpMap = (o: Partial<Parameters<typeof writePcpMapRequest>[0]>) =>
  writePcpMapRequest({ lifetimeS: 60, clientAddr: GUEST, nonce: NONCE, protocol: 6, internalPort: 80, suggestedPort: 8080, suggestedAddr: undefined, preferFailure: false, ...o });
/** NAT-PMP mapping response: [result, internal, external, lifetime, epoch]. */
const natpmpAnswer = (b: Buffer) => [b.readUInt16BE(2), b.readUInt16BE(8), b.readUInt16BE(10), b.readUInt32BE(12), b.readUInt32BE(4)];
/** PCP response: [result, lifetime, external port]. */
const pcpAnswer = (b: Buffer) => [b[3], b.readUInt32BE(4), b.length >= 60 ? b.readUInt16BE(42) : undefined];

describe('PortMapper', () => {
  it('opens a NAT-PMP mapping as a forward and answers once the socket is bound', () => {
    const t = harness();
    t.pm.request(t.from(), natpmp('tcp', 80, 8080, 3600), t.clock.now());
    expect(t.opened).toEqual([{ id: 100, rule: { protocol: 'tcp', hostAddr: LOOPBACK, hostPort: 8080, guestAddr: GUEST, guestPort: 80, text: 'nat-pmp tcp:8080-10.0.2.15:80' } }]);
    expect(t.sent).toEqual([]);
    t.clock.advance(2500);
    t.pm.opened(100, { addr: LOOPBACK, port: 8080 }, t.clock.now());
    expect(t.sent[0]!.to).toBe(GUEST);
    expect(t.sent[0]!.port).toBe(40000);
    expect(natpmpAnswer(t.last())).toEqual([0, 80, 8080, 3600, 2]); // the granted lifetime, from the bind; epoch 2 s
    expect(t.pm.list()).toEqual([{ id: 100, origin: 'natpmp', protocol: 'tcp', guest: { addr: GUEST, port: 80 }, external: { addr: LOOPBACK, port: 8080 }, expiresAtMs: 7500 + 3_600_000 }]);
  });

  it('answers the public address request with the external address', () => {
    const t = harness();
    t.pm.request(t.from(), hex`00 00`, t.clock.now());
    expect(t.last()).toEqual(Buffer.from(hex`00 80 0000 00000000 7f000001`));
  });

  it('renews an existing mapping at once, and expires it at the end of its lifetime', () => {
    const t = harness();
    t.pm.request(t.from(), natpmp('udp', 5000, 0, 10), t.clock.now());
    t.pm.opened(100, { addr: LOOPBACK, port: 33333 }, t.clock.now());
    t.clock.advance(8000);
    t.pm.request(t.from(), natpmp('udp', 5000, 0, 10), t.clock.now());
    expect(natpmpAnswer(t.last()).slice(0, 4)).toEqual([0, 5000, 33333, 10]);
    expect(t.opened.length).toBe(1);
    expect(t.pm.nextDeadline()).toBe(5000 + 8000 + 10_000);
    t.clock.advance(9999);
    t.pm.advance(t.clock.now());
    expect(t.closed).toEqual([]);
    t.clock.advance(1);
    t.pm.advance(t.clock.now());
    expect(t.closed).toEqual([100]);
    expect(t.counters.get('portmap.expired')).toBe(1);
    expect(t.pm.nextDeadline()).toBeUndefined();
    expect(t.events.map((e) => e.event)).toEqual(['mapped', 'renewed', 'expired']);
    expect(t.events[0]).toEqual({ event: 'mapped', origin: 'natpmp', protocol: 'udp', guest: '10.0.2.15:5000', external: '127.0.0.1:33333', lifetimeS: 10 });
  });

  it('deletes with lifetime 0, one mapping or (internal port 0) all of the guest\'s for the protocol', () => {
    const t = harness();
    for (const port of [1000, 1001, 1002]) t.pm.request(t.from(), natpmp('tcp', port, 0, 60), t.clock.now());
    t.pm.request(t.from(), natpmp('udp', 1000, 0, 60), t.clock.now());
    t.pm.request(t.from(), natpmp('tcp', 1001, 0, 0), t.clock.now());
    expect(natpmpAnswer(t.last()).slice(0, 4)).toEqual([0, 1001, 0, 0]);
    expect(t.closed).toEqual([101]);
    t.pm.request(t.from(), natpmp('tcp', 0, 0, 0), t.clock.now());
    expect(t.closed.sort()).toEqual([100, 101, 102]);
    expect(t.pm.size).toBe(1); // the UDP one
  });

  it('retries on any port when the suggested one cannot be bound', () => {
    const t = harness();
    t.pm.request(t.from(), natpmp('tcp', 80, 22, 60), t.clock.now());
    t.pm.failed(100, t.clock.now());
    expect(t.opened[1]!.rule.hostPort).toBe(0);
    t.pm.opened(101, { addr: LOOPBACK, port: 40001 }, t.clock.now());
    expect(natpmpAnswer(t.last()).slice(0, 3)).toEqual([0, 80, 40001]);
    expect(t.counters.get('portmap.suggested-port-taken')).toBe(1);
  });

  it('answers NETWORK_FAILURE (3) when no port can be bound', () => {
    const t = harness();
    t.pm.request(t.from(), natpmp('tcp', 80, 0, 60), t.clock.now());
    t.pm.failed(100, t.clock.now());
    expect(natpmpAnswer(t.last()).slice(0, 3)).toEqual([3, 80, 0]);
    expect(t.pm.size).toBe(0);
  });

  it(`bounds mappings per guest (${MAX_PER_GUEST}) and per network (${MAX_PER_NETWORK}), counting refusals`, () => {
    const t = harness();
    for (let i = 0; i < MAX_PER_GUEST + 3; i++) t.pm.request(t.from(), natpmp('udp', 2000 + i, 0, 60), t.clock.now());
    expect(t.opened.length).toBe(MAX_PER_GUEST);
    expect(t.counters.get('portmap.guest-limit')).toBe(3);
    expect(natpmpAnswer(t.last())[0]).toBe(4);
    // PCP's per-user quota code.
    t.pm.request(t.from(), pcpMap({ internalPort: 9999 }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(10); // USER_EX_QUOTA
    for (let g = 1; t.opened.length < MAX_PER_NETWORK; g++) t.pm.request(t.from(GUEST + g), natpmp('udp', 3000, 0, 60), t.clock.now());
    t.pm.request(t.from(GUEST + 100), natpmp('udp', 3000, 0, 60), t.clock.now());
    expect(natpmpAnswer(t.last())[0]).toBe(4);
    t.pm.request(t.from(GUEST + 100), writePcpMapRequest({ lifetimeS: 60, clientAddr: GUEST + 100, nonce: NONCE, protocol: 6, internalPort: 80, suggestedPort: 0, suggestedAddr: undefined, preferFailure: false }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(8); // NO_RESOURCES
    expect(t.counters.get('portmap.network-limit')).toBe(2);
  });

  it('PCP: maps, renews with the same nonce, refuses another nonce and NAT-PMP, deletes', () => {
    const t = harness();
    t.pm.request(t.from(), pcpMap({}), t.clock.now());
    t.pm.opened(100, { addr: LOOPBACK, port: 8080 }, t.clock.now());
    expect(pcpAnswer(t.last())).toEqual([0, 60, 8080]);
    expect(t.last().subarray(24, 36)).toEqual(Buffer.from(NONCE));
    expect([...t.last().subarray(56, 60)]).toEqual([127, 0, 0, 1]);
    t.pm.request(t.from(), pcpMap({ lifetimeS: 120, suggestedPort: 0 }), t.clock.now());
    expect(pcpAnswer(t.last())).toEqual([0, 120, 8080]);
    t.pm.request(t.from(), pcpMap({ nonce: new Uint8Array(12) }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(2); // NOT_AUTHORIZED
    t.pm.request(t.from(), natpmp('tcp', 80, 0, 60), t.clock.now());
    expect(natpmpAnswer(t.last())[0]).toBe(2); // refused: PCP's mapping
    t.pm.request(t.from(), pcpMap({ lifetimeS: 0, nonce: new Uint8Array(12) }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(2);
    t.pm.request(t.from(), pcpMap({ lifetimeS: 0 }), t.clock.now());
    expect(pcpAnswer(t.last()).slice(0, 2)).toEqual([0, 0]);
    expect(t.closed).toEqual([100]);
  });

  it('PCP: ADDRESS_MISMATCH, UNSUPP_PROTOCOL, all ports, PREFER_FAILURE', () => {
    const t = harness();
    t.pm.request(t.from(), pcpMap({ clientAddr: GUEST + 1 }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(12);
    t.pm.request(t.from(), pcpMap({ protocol: 132 }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(9);
    t.pm.request(t.from(), pcpMap({ internalPort: 0 }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(2);
    t.pm.request(t.from(), pcpMap({ preferFailure: true, suggestedAddr: 0xc0000201 }), t.clock.now());
    expect(pcpAnswer(t.last())[0]).toBe(11); // CANNOT_PROVIDE_EXTERNAL: not our address
    t.pm.request(t.from(), pcpMap({ preferFailure: true }), t.clock.now());
    t.pm.failed(100, t.clock.now());
    expect(t.opened.length).toBe(1); // no retry on another port
    expect(pcpAnswer(t.last())[0]).toBe(11);
    expect(t.counters.get('portmap.pcp-error')).toBe(5);
  });

  it('PCP: ANNOUNCE answers SUCCESS with the epoch', () => {
    const t = harness();
    t.clock.advance(7_500);
    t.pm.request(t.from(), hex`02 00 0000 00000000 00000000000000000000ffff0a00020f`, t.clock.now());
    expect([...t.last().subarray(0, 4)]).toEqual([2, 0x80, 0, 0]);
    expect(t.last().readUInt32BE(8)).toBe(7);
    // From another address than the one it names: ADDRESS_MISMATCH.
    t.pm.request(t.from(GUEST + 1), hex`02 00 0000 00000000 00000000000000000000ffff0a00020f`, t.clock.now());
    expect(t.last()[3]).toBe(12);
  });

  it('counts and ignores what it cannot answer', () => {
    const t = harness();
    t.pm.request(t.from(), hex`00`, t.clock.now());
    t.pm.request(t.from(), hex`00 02 0000`, t.clock.now());
    expect(t.sent).toEqual([]);
    expect(t.counters.get('portmap.too-short')).toBe(1);
    expect(t.counters.get('natpmp.truncated')).toBe(1);
  });

  it('answers up to 4 requests waiting on one socket, and closes everything on close', () => {
    const t = harness();
    for (let i = 0; i < 6; i++) t.pm.request(t.from(GUEST, 40000 + i), natpmp('tcp', 80, 0, 60), t.clock.now());
    expect(t.counters.get('portmap.too-many-waiters')).toBe(2);
    t.pm.opened(100, { addr: LOOPBACK, port: 40404 }, t.clock.now());
    expect(t.sent.map((s) => s.port)).toEqual([40000, 40001, 40002, 40003]);
    t.pm.close();
    expect(t.closed).toEqual([100]);
  });
});

describe('PortMapper: any requests, any host answers', () => {
  it('never throws, answers only the guest that asked, and keeps its bounds', () => {
    const request = fc.oneof(
      fc.uint8Array({ maxLength: 80 }).map((b) => ({ kind: 'bytes' as const, b })),
      fc.record({ proto: fc.constantFrom('udp' as const, 'tcp' as const), port: fc.integer({ min: 0, max: 40 }), suggested: fc.integer({ min: 0, max: 3 }), life: fc.constantFrom(0, 1, 60) })
        .map((r) => ({ kind: 'bytes' as const, b: natpmp(r.proto, r.port, r.suggested, r.life) })),
      fc.record({ proto: fc.constantFrom(0, 6, 17, 99), port: fc.integer({ min: 0, max: 40 }), life: fc.constantFrom(0, 60), nonce: fc.constantFrom(0, 1), prefer: fc.boolean() })
        .map((r) => ({ kind: 'bytes' as const, b: pcpMap({ protocol: r.proto, internalPort: r.port, lifetimeS: r.life, nonce: new Uint8Array(12).fill(r.nonce), preferFailure: r.prefer, suggestedPort: 0 }) })),
    );
    const step = fc.oneof(
      fc.record({ guest: fc.integer({ min: 0, max: 3 }), req: request }).map((s) => ({ kind: 'request' as const, ...s })),
      fc.record({ ok: fc.boolean(), which: fc.nat() }).map((s) => ({ kind: 'host' as const, ...s })),
      fc.integer({ min: 0, max: 70_000 }).map((ms) => ({ kind: 'time' as const, ms })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const t = harness();
        for (const s of steps) {
          if (s.kind === 'request') {
            const before = t.sent.length;
            t.pm.request(t.from(GUEST + s.guest), s.req.b, t.clock.now());
            for (const m of t.sent.slice(before)) expect(m.to).toBe(GUEST + s.guest);
          } else if (s.kind === 'host') {
            const open = t.opened.filter((o) => !t.closed.includes(o.id));
            const o = open[s.which % Math.max(1, open.length)];
            if (o !== undefined) {
              if (s.ok) t.pm.opened(o.id, { addr: LOOPBACK, port: 30000 + o.id }, t.clock.now());
              else t.pm.failed(o.id, t.clock.now());
            }
          } else {
            t.clock.advance(s.ms);
            t.pm.advance(t.clock.now());
          }
          expect(t.pm.size).toBeLessThanOrEqual(MAX_PER_NETWORK);
          for (let g = 0; g < 4; g++) expect(t.pm.list().filter((m) => m.guest.addr === GUEST + g).length).toBeLessThanOrEqual(MAX_PER_GUEST);
          const nd = t.pm.nextDeadline();
          if (nd !== undefined) expect(nd).toBeGreaterThan(t.clock.now() - 1);
        }
        t.pm.close();
        expect(t.pm.size).toBe(0);
      }),
      { numRuns: runs(100) },
    );
  });
});
