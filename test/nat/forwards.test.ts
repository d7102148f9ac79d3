import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expandForward, formatForwardSpec, forwardGuestFamily, MAX_FORWARD_PORTS, parseForwardGroups, parseForwardRule, parseForwards, parseForwardSpec, type ForwardSpec, type GuestTarget } from '../../src/nat/forwards.js';
import type { Ipv6Addr } from '../../src/net/addr.js';
import { ConfigError } from '../../src/util/config-error.js';
import { ipv4AddrArb } from '../helpers/arbitraries.js';
import { ip } from '../helpers/frames.js';
import { a6 } from '../helpers/frames6.js';

/** IPv6 addresses, zero runs likely (so RFC 5952's `::` forms are exercised). */
const ipv6AddrArb: fc.Arbitrary<Ipv6Addr> = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((g) => g.map((x) => x.toString(16).padStart(4, '0')).join('') as Ipv6Addr);

/** The ConfigError `values` are refused with (fails the test when they are accepted or something else is thrown). */
function refusal(values: readonly string[]): ConfigError {
  try {
    parseForwards(values);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(values)}`);
}

const pairs = (values: readonly string[]): [number, number][] => parseForwards(values).map((r) => [r.hostPort, r.guestPort]);

describe('nat/forwards (QEMU hostfwd syntax)', () => {
  it('parses the common forms', () => {
    expect(parseForwardRule('tcp::2222-:22')).toEqual({ protocol: 'tcp', hostAddr: ip('127.0.0.1'), hostPort: 2222, guestAddr: undefined, guestPort: 22, text: 'tcp::2222-:22' });
    expect(parseForwardRule('tcp:0.0.0.0:8080-10.0.2.15:80')).toMatchObject({ hostAddr: 0, hostPort: 8080, guestAddr: ip('10.0.2.15'), guestPort: 80 });
    expect(parseForwardRule('udp::5353-:53')).toMatchObject({ protocol: 'udp', hostPort: 5353, guestPort: 53 });
    expect(parseForwardRule(':2222-:22')).toMatchObject({ protocol: 'tcp' });
  });

  it('splits comma-separated lists and repeated options', () => {
    expect(parseForwards(['tcp::1-:2,udp::3-:4', 'tcp::5-:6']).map((r) => r.hostPort)).toEqual([1, 3, 5]);
  });

  it.each([
    ['icmp::1-:2', /protocol must be tcp or udp/],
    ['tcp::-:22', /missing host port/],
    ['tcp::22-:', /missing guest port/],
    ['tcp::70000-:22', /not in 1\.\.65535/],
    ['tcp::0-:22', /not in 1\.\.65535/],
    ['tcp:1.2.3:22-:22', /host address: '1\.2\.3' is not an IPv4 address/],
    ['tcp:010.0.0.1:22-:22', /no leading zeros/],
    ['tcp::22-10.0.2:22', /guest address: '10\.0\.2' is not an IPv4 address/],
    ['tcp:22-22', /expected \[tcp\|udp\]/],
    ['tcp::8000', /missing the guest side/],
    ['tcp::22-:22x', /unexpected '22x'|unexpected 'x'/],
    ['tcp:[::1:22-:22', /expected \[tcp\|udp\]|lacks its closing/],
    ['tcp:[::1]x:22-:22', /expected \[tcp\|udp\]/],
    ['tcp:::1:22-:22', /missing host port/],
    ['tcp:[fe80::1%eth0]:22-:22', /zone ids/],
    ['tcp:[1.2.3.4]:22-:22', /not an IPv6 address/],
    ['tcp:[::1]:22-[fd00::/64]:22', /no \/prefix/],
    ['tcp::22-]:22', /without its opening/],
  ])('refuses %s with a clear error', (text, message) => {
    expect(() => parseForwardRule(text)).toThrow(ConfigError);
    expect(() => parseForwardRule(text)).toThrow(message);
  });

  it('refuses two rules on one host port', () => {
    expect(() => parseForwards(['tcp::2222-:22', 'tcp::2222-:23'])).toThrow(/already forwarded/);
    expect(parseForwards(['tcp::2222-:22', 'udp::2222-:22'])).toHaveLength(2);
  });
});

describe('nat/forwards: port ranges (as passt -t 8000-8010)', () => {
  it('maps a range port by port, each port its own rule keeping the rule text', () => {
    const rules = parseForwards(['tcp::8000-8002-:9000-9002']);
    expect(rules.map((r) => [r.hostPort, r.guestPort])).toEqual([[8000, 9000], [8001, 9001], [8002, 9002]]);
    expect(new Set(rules.map((r) => r.text))).toEqual(new Set(['tcp::8000-8002-:9000-9002']));
    expect(pairs(['tcp::8000-8010-:8000-8010'])).toHaveLength(11);
  });

  it('takes ranges with addresses on both sides, with udp, and in lists', () => {
    expect(parseForwards(['udp:127.0.0.2:5000-5001-10.0.2.15:6000-6001'])).toEqual([
      { protocol: 'udp', hostAddr: ip('127.0.0.2'), hostPort: 5000, guestAddr: ip('10.0.2.15'), guestPort: 6000, text: 'udp:127.0.0.2:5000-5001-10.0.2.15:6000-6001' },
      { protocol: 'udp', hostAddr: ip('127.0.0.2'), hostPort: 5001, guestAddr: ip('10.0.2.15'), guestPort: 6001, text: 'udp:127.0.0.2:5000-5001-10.0.2.15:6000-6001' },
    ]);
    expect(pairs(['tcp::80-81-:80-81,tcp::22-:22'])).toEqual([[80, 80], [81, 81], [22, 22]]);
    expect(pairs(['tcp::7000-7000-:8000-8000'])).toEqual([[7000, 8000]]);
  });

  it.each([
    ['tcp::8000-8010-:80', /several host ports cannot share one guest port/],
    ['tcp::80-:8000-8010', /same length/],
    ['tcp::8000-8010-:9000-9005', /same length/],
    ['tcp::8010-8000-:8010-8000', /range 8010-8000 is empty/],
    ['tcp::8000-8010:80', /guest address: '8010'.*a host port range is written 8000-8010-:GUESTPORT/],
    ['tcp::1-2000-:1-2000', new RegExp(`at most ${MAX_FORWARD_PORTS}`)],
  ])('refuses %s', (text, reason) => {
    expect(refusal([text]).message).toMatch(reason);
  });

  it('refuses overlapping rules, naming the earlier one; 0.0.0.0 overlaps every address', () => {
    expect(refusal(['tcp::8000-8010-:8000-8010', 'tcp::8010-:22']).message).toMatch(/tcp host port 8010 is already forwarded by 'tcp::8000-8010-:8000-8010'/);
    expect(refusal(['tcp::8005-:22', 'tcp::8000-8010-:8000-8010']).message).toMatch(/host port 8005 is already forwarded by 'tcp::8005-:22'/);
    expect(refusal(['tcp:0.0.0.0:8000-8001-:80-81', 'tcp:127.0.0.1:8001-:22']).message).toMatch(/already forwarded/);
    expect(pairs(['tcp:127.0.0.1:8000-8001-:80-81', 'tcp:127.0.0.2:8000-8001-:80-81', 'udp::8000-8001-:80-81'])).toHaveLength(6);
  });

  it(`allows ${MAX_FORWARD_PORTS} ports in all, and refuses one more`, () => {
    expect(parseForwards([`tcp::10001-${10000 + MAX_FORWARD_PORTS}-:10001-${10000 + MAX_FORWARD_PORTS}`])).toHaveLength(MAX_FORWARD_PORTS);
    expect(refusal([`tcp::10001-${10000 + MAX_FORWARD_PORTS}-:10001-${10000 + MAX_FORWARD_PORTS}`, 'udp::1-:1']).message).toMatch(
      new RegExp(`forward ${MAX_FORWARD_PORTS + 1} ports so far: at most ${MAX_FORWARD_PORTS} in all`),
    );
  });
});

describe('nat/forwards: guest host names', () => {
  it('parses a host name as the guest, with ranges, one way only', () => {
    expect(parseForwardSpec('tcp::8000-8010-web:8000-8010')).toMatchObject({ hostPorts: { first: 8000, last: 8010 }, guest: { kind: 'name', name: 'web' }, guestPorts: { first: 8000, last: 8010 } });
    expect(parseForwardSpec('tcp::8080-web-1.lab:80')).toMatchObject({ hostPorts: { first: 8080, last: 8080 }, guest: { kind: 'name', name: 'web-1.lab' } });
    expect(parseForwardSpec('tcp::8000-8010-10.0.2.15:8000-8010')).toMatchObject({ hostPorts: { first: 8000, last: 8010 }, guest: { kind: 'addr', addr: ip('10.0.2.15') } });
  });

  it('expands a host-name rule into rules that carry the name and no address', () => {
    expect(parseForwards(['tcp::8000-8001-web:80-81'])).toEqual([
      { protocol: 'tcp', hostAddr: ip('127.0.0.1'), hostPort: 8000, guestAddr: undefined, guestName: 'web', guestPort: 80, text: 'tcp::8000-8001-web:80-81' },
      { protocol: 'tcp', hostAddr: ip('127.0.0.1'), hostPort: 8001, guestAddr: undefined, guestName: 'web', guestPort: 81, text: 'tcp::8000-8001-web:80-81' },
    ]);
    expect(parseForwardRule('udp::5353-dns1:53')).toMatchObject({ guestName: 'dns1', guestAddr: undefined });
  });
});

describe('nat/forwards: IPv6 (bracketed, as QEMU writes it)', () => {
  it('parses IPv6 host and guest addresses, either side alone, with ranges and names', () => {
    expect(parseForwardRule('tcp:[::1]:8080-[fd00::15]:80')).toEqual({
      protocol: 'tcp', hostAddr: a6('::1'), hostPort: 8080, guestAddr: a6('fd00::15'), guestPort: 80, text: 'tcp:[::1]:8080-[fd00::15]:80',
    });
    expect(parseForwardSpec('udp:[::]:5353-5354-web:53-54')).toMatchObject({ hostAddr: a6('::'), guest: { kind: 'name', name: 'web' }, hostPorts: { first: 5353, last: 5354 } });
    expect(parseForwardSpec('tcp::8080-[FD00:0:0:0::15]:80')).toMatchObject({ hostAddr: undefined, guest: { kind: 'addr', addr: a6('fd00::15') } });
    expect(parseForwardSpec('tcp:[::1]:8000-8010-:8000-8010')).toMatchObject({ hostPorts: { first: 8000, last: 8010 }, guest: { kind: 'lease' } });
  });

  it('reaches the guest on its address family, else the host address family', () => {
    const family = (t: string): 4 | 6 => forwardGuestFamily(parseForwardRule(t));
    expect(['tcp:[::1]:1-:2', 'tcp:[::1]:1-web:2', 'tcp::1-[fd00::15]:2', 'tcp:127.0.0.1:1-[fd00::15]:2'].map(family)).toEqual([6, 6, 6, 6]);
    expect(['tcp::1-:2', 'tcp::1-web:2', 'tcp:[::1]:1-10.0.2.15:2', 'tcp:0.0.0.0:1-:2'].map(family)).toEqual([4, 4, 4, 4]);
  });

  it('[::] overlaps every address on its port (dual-stack), 0.0.0.0 only IPv4 ones', () => {
    expect(refusal(['tcp:[::]:8000-:80', 'tcp:127.0.0.1:8000-:22']).message).toMatch(/already forwarded by 'tcp:\[::\]:8000-:80'/);
    expect(refusal(['tcp:[::1]:8000-:80', 'tcp:[::]:8000-:22']).message).toMatch(/already forwarded/);
    expect(refusal(['tcp:[::1]:8000-:80', 'tcp:[0::1]:8000-:22']).message).toMatch(/already forwarded/);
    expect(pairs(['tcp:0.0.0.0:8000-:80', 'tcp:[::1]:8000-:80', 'udp:[::]:8000-:80'])).toHaveLength(3);
  });
});

describe('nat/forwards: groups (one per network, sharing the host)', () => {
  it('keeps each group its own rules', () => {
    const [a, b] = parseForwardGroups([['tcp::8080-web:80'], ['tcp::8081-:80', 'udp::8080-:53']]);
    expect(a!.map((r) => r.hostPort)).toEqual([8080]);
    expect(b!.map((r) => [r.protocol, r.hostPort])).toEqual([['tcp', 8081], ['udp', 8080]]);
  });

  it('refuses a host port two groups would both listen on, and counts the port bound across groups', () => {
    expect(() => parseForwardGroups([['tcp::8080-:80'], ['tcp:0.0.0.0:8080-:81']])).toThrow(/host port 8080 is already forwarded by 'tcp::8080-:80'/);
    const half = MAX_FORWARD_PORTS / 2;
    expect(() => parseForwardGroups([[`tcp::10001-${10000 + half}-:10001-${10000 + half}`], [`tcp::20000-${20000 + half}-:20000-${20000 + half}`]])).toThrow(/at most 512 in all/);
  });
});

const portRangeArb = (length: number): fc.Arbitrary<{ first: number; last: number }> =>
  fc.integer({ min: 1, max: 65536 - length }).map((first) => ({ first, last: first + length - 1 }));
const guestArb: fc.Arbitrary<GuestTarget> = fc.oneof(
  fc.constant({ kind: 'lease' as const }),
  ipv4AddrArb.map((addr) => ({ kind: 'addr' as const, addr })),
  ipv6AddrArb.map((addr) => ({ kind: 'addr' as const, addr })),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9.-]{0,20}$/).map((name) => ({ kind: 'name' as const, name })),
);
const specArb: fc.Arbitrary<Omit<ForwardSpec, 'text'>> = fc.integer({ min: 1, max: MAX_FORWARD_PORTS }).chain((length) =>
  fc.record({
    protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    hostAddr: fc.option(fc.oneof(ipv4AddrArb, ipv6AddrArb), { nil: undefined }),
    hostPorts: portRangeArb(length),
    guest: guestArb,
    guestPorts: portRangeArb(length),
  }),
);
/** Rule-ish text: the grammar's own characters, so the scanner's branches are all reached. */
const ruleishArb = fc.string({ unit: fc.constantFrom(...'0123456789:-.,tcpudpweb[] '.split('')), maxLength: 40 });

describe('nat/forwards: properties', () => {
  it('formatForwardSpec and parseForwardSpec round-trip every rule', () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const text = formatForwardSpec(spec);
        expect(parseForwardSpec(text)).toEqual({ ...spec, text });
      }),
    );
  });

  it('a range expands to consecutive ports with a constant offset', () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const rules = expandForward(parseForwardSpec(formatForwardSpec(spec)));
        expect(rules).toHaveLength(spec.hostPorts.last - spec.hostPorts.first + 1);
        const offset = spec.guestPorts.first - spec.hostPorts.first;
        expect(rules.every((r, i) => r.hostPort === spec.hostPorts.first + i && r.guestPort - r.hostPort === offset)).toBe(true);
      }),
    );
  });

  it('never throws anything but ConfigError, on any string', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(ruleishArb, fc.string({ maxLength: 40 })), { maxLength: 4 }), (values) => {
        try {
          const rules = parseForwards(values);
          expect(rules.length).toBeLessThanOrEqual(MAX_FORWARD_PORTS);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          expect(e.option).toBe('hostfwd');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
