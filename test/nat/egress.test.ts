import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EgressPolicy, EgressRefusalLog, LINES_PER_SECOND, LOG_REPEAT_MS, parseEgressRule, PUBLIC_DENIED, type EgressRule } from '../../src/nat/egress.js';
import { routeOutbound } from '../../src/nat/policy.js';
import { parseIpAddr, type Endpoint } from '../../src/net/addr.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { runs } from '../helpers/fuzz.js';

const ep = (addr: string, port = 80): Endpoint => ({ addr: parseIpAddr(addr)!, port });
const rule = (action: 'allow' | 'deny', text: string): EgressRule => {
  const r = parseEgressRule(action, text);
  if (typeof r === 'string') throw new Error(r);
  return r;
};

describe('parseEgressRule', () => {
  it('reads IPv4 and IPv6 prefixes, bare addresses and port ranges', () => {
    expect(rule('deny', '10.1.2.3/8').prefix).toEqual({ family: 4, net: 0x0a000000, mask: 0xff000000 });
    expect(rule('deny', '192.0.2.7').prefix).toEqual({ family: 4, net: 0xc0000207, mask: 0xffffffff });
    expect(rule('allow', '0.0.0.0/0').prefix).toEqual({ family: 4, net: 0, mask: 0 });
    expect(rule('deny', '10.0.0.0/8,port=22').ports).toEqual({ from: 22, to: 22 });
    expect(rule('deny', '10.0.0.0/8,port=8000-8010').ports).toEqual({ from: 8000, to: 8010 });
    expect(rule('deny', 'fe80::1/10').prefix).toEqual({ family: 6, hex: 'fe800000000000000000000000000000', bits: 10 });
    expect(rule('deny', '::1').prefix).toEqual({ family: 6, hex: '00000000000000000000000000000001', bits: 128 });
  });

  it.each([
    ['10.0.0.0/33', /prefix/],
    ['10.0.0/8', /not an IPv4 address/],
    ['fe80::/129', /0 to 128/],
    ['fe80::zz/64', /not an IPv6 address/],
    ['10.0.0.0/8,port=70000', /0 to 65535/],
    ['10.0.0.0/8,port=9-1', /empty/],
    ['10.0.0.0/8,port=1,port=2', /only one/],
    ['10.0.0.0/8,proto=tcp', /only one/],
    ['', /IPv4/],
  ])('refuses %j with a reason', (text, why) => {
    const r = parseEgressRule('deny', text);
    expect(typeof r).toBe('string');
    expect(r).toMatch(why);
  });
});

describe('EgressPolicy', () => {
  it('allows everything with no rules on an ordinary network', () => {
    const p = new EgressPolicy();
    for (const a of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '8.8.8.8', '::1']) expect(p.check(ep(a))).toBeUndefined();
  });

  it('denies the public default list once public, and nothing else', () => {
    const p = new EgressPolicy();
    p.markPublic();
    expect(p.public).toBe(true);
    for (const a of ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.1', '100.64.0.1', '169.254.169.254', '224.0.0.251', '255.255.255.255', '0.1.2.3', '::1', '::', 'fd00::1', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1'])
      expect(p.check(ep(a)), a).toBe('nat.egress-public-default');
    for (const a of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '192.0.2.1', '2001:db8::1', '11.0.0.1']) expect(p.check(ep(a)), a).toBeUndefined();
  });

  it('takes the first matching rule, in order, before the default', () => {
    const p = new EgressPolicy([rule('allow', '10.0.0.5,port=80'), rule('deny', '10.0.0.0/8'), rule('deny', '8.8.8.8,port=53')], true);
    expect(p.check(ep('10.0.0.5', 80))).toBeUndefined(); // allowed before the deny and the default
    expect(p.check(ep('10.0.0.5', 81))).toBe('nat.egress-denied');
    expect(p.check(ep('8.8.8.8', 53))).toBe('nat.egress-denied');
    expect(p.check(ep('8.8.8.8', 443))).toBeUndefined();
    expect(p.check(ep('192.168.0.1', 443))).toBe('nat.egress-public-default');
    expect(p.judge(ep('10.0.0.5', 81))).toEqual({ drop: 'nat.egress-denied', rule: '--egress-deny 10.0.0.0/8' });
    expect(p.judge(ep('8.8.8.8', 53))?.rule).toBe('--egress-deny 8.8.8.8,port=53');
    expect(p.judge(ep('192.168.0.1', 443))).toEqual({ drop: 'nat.egress-public-default', rule: 'default public: 192.168.0.0/16' });
    expect(p.judge(ep('10.0.0.5', 80))).toBeUndefined();
  });

  it('names the rule of the reloaded list after setRules', () => {
    const p = new EgressPolicy([rule('deny', '10.0.0.0/8')]);
    p.setRules([rule('deny', '10.0.0.0/16,port=22')]);
    expect(p.judge(ep('10.0.0.5', 22))?.rule).toBe('--egress-deny 10.0.0.0/16,port=22');
    expect(p.judge(ep('10.1.0.5', 22))).toBeUndefined();
  });

  it('an IPv4 rule never matches an IPv6 address and the reverse', () => {
    const p = new EgressPolicy([rule('deny', '0.0.0.0/0'), rule('deny', '::/0')]);
    expect(p.check(ep('1.2.3.4'))).toBe('nat.egress-denied');
    expect(p.check(ep('2001:db8::1'))).toBe('nat.egress-denied');
    const v4only = new EgressPolicy([rule('deny', '0.0.0.0/0')]);
    expect(v4only.check(ep('2001:db8::1'))).toBeUndefined();
  });

  it('every entry of the public list parses', () => {
    for (const t of PUBLIC_DENIED) expect(typeof parseEgressRule('deny', t)).toBe('object');
  });

  it('property: an IPv4 prefix holds exactly the addresses that share its first bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 0xffffffff }), (net, len, probe) => {
        const text = `${[24, 16, 8, 0].map((s) => (net >>> s) & 0xff).join('.')}/${len}`;
        const p = new EgressPolicy([rule('deny', text)]);
        const shift = 32 - len;
        const inside = len === 0 || probe >>> shift === net >>> shift;
        expect(p.check({ addr: probe >>> 0, port: 1 }) === 'nat.egress-denied').toBe(inside);
      }),
      { numRuns: runs(500) },
    );
  });

  it('property: an IPv6 prefix holds exactly the addresses that share its first bits', () => {
    const bytes = fc.uint8Array({ minLength: 16, maxLength: 16 });
    fc.assert(
      fc.property(bytes, fc.integer({ min: 0, max: 128 }), bytes, (net, len, probe) => {
        const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
        const text = (b: Uint8Array): string => hex(b).match(/.{4}/g)!.join(':');
        const p = new EgressPolicy([rule('deny', `${text(net)}/${len}`)]);
        let inside = true;
        for (let bit = 0; bit < len; bit++) if (((net[bit >> 3]! >> (7 - (bit & 7))) & 1) !== ((probe[bit >> 3]! >> (7 - (bit & 7))) & 1)) inside = false;
        expect(p.check({ addr: parseIpAddr(text(probe))!, port: 1 }) === 'nat.egress-denied').toBe(inside);
      }),
      { numRuns: runs(500) },
    );
  });
});

describe('routeOutbound with an egress policy', () => {
  it('judges the gateway after its rewrite: 10.0.2.2 is the host loopback, refused on a public network', () => {
    const config = resolveStackConfig({});
    expect(routeOutbound(config, { addr: config.host, port: 8080 })).toEqual({ to: { addr: 0x7f000001, port: 8080 } });
    config.egress!.markPublic();
    expect(routeOutbound(config, { addr: config.host, port: 8080 })).toEqual({
      refused: 'nat.egress-public-default', egress: { rule: 'default public: 127.0.0.0/8', to: { addr: 0x7f000001, port: 8080 } },
    });
    expect(routeOutbound(config, { addr: 0xa9fea9fe, port: 80 })).toEqual({
      refused: 'nat.egress-public-default', egress: { rule: 'default public: 169.254.0.0/16', to: { addr: 0xa9fea9fe, port: 80 } },
    });
    expect(routeOutbound(config, { addr: 0x5db8d822, port: 80 })).toEqual({ to: { addr: 0x5db8d822, port: 80 } });
  });

  it('leaves DNS over TCP to the upstream resolver alone (exempt), even on loopback', () => {
    const config = resolveStackConfig({ egress: [['deny', '0.0.0.0/0']] });
    config.egress!.markPublic();
    const upstream = { addr: 0x7f000001, port: 53 };
    expect(routeOutbound(config, { addr: config.dns, port: 53 }, upstream)).toEqual({ to: upstream });
    expect(routeOutbound(config, { addr: 0x08080808, port: 53 })).toMatchObject({ refused: 'nat.egress-denied', egress: { rule: '--egress-deny 0.0.0.0/0' } });
  });

  it('an allow rule opens a destination of the public default', () => {
    const config = resolveStackConfig({ egress: [['allow', '127.0.0.1,port=8080']] });
    config.egress!.markPublic();
    expect(routeOutbound(config, { addr: config.host, port: 8080 })).toEqual({ to: { addr: 0x7f000001, port: 8080 } });
    expect(routeOutbound(config, { addr: config.host, port: 8081 })).toMatchObject({ refused: 'nat.egress-public-default' });
  });

  it('a bad rule is a ConfigError naming its option', () => {
    expect(() => resolveStackConfig({ egress: [['deny', '10.0.0.0/40']] })).toThrow(/--egress-deny: .*prefix/);
    expect(() => resolveStackConfig({ egress: [['allow', 'x']] })).toThrow(/--egress-allow/);
  });
});

describe('EgressRefusalLog', () => {
  const refusal = (guestPort: number, to = '10.0.0.1', port = 22) => ({
    protocol: 'udp' as const, guest: ep('10.0.2.15', guestPort), remote: ep(to, port), to: ep(to, port), drop: 'nat.egress-denied' as const, rule: '--egress-deny 10.0.0.0/8',
  });

  it('logs a flow attempt once, again only after LOG_REPEAT_MS, and carries what it skipped', () => {
    const l = new EgressRefusalLog();
    expect(l.note(refusal(1000), 0)).toEqual({ suppressed: 0 });
    for (let t = 1; t < 50; t++) expect(l.note(refusal(1000), t * 100)).toBeUndefined(); // a program resending
    expect(l.note(refusal(1001), 5000)).toEqual({ suppressed: 49 }); // another attempt: its own line
    expect(l.note(refusal(1000), LOG_REPEAT_MS)).toEqual({ suppressed: 0 });
  });

  it('writes at most LINES_PER_SECOND lines a second, however many distinct attempts, and remembers few', () => {
    const l = new EgressRefusalLog();
    let lines = 0;
    let skipped = 0;
    let most = 0;
    // 100 000 distinct attempts in 100 s (a scan of every port): a burst of 20 lines, then 20 a second.
    for (let i = 0; i < 100_000; i++) {
      const r = l.note(refusal(1024 + (i % 60000), '10.0.0.1', i % 65536), i);
      most = Math.max(most, l.remembered);
      if (r === undefined) continue;
      lines++;
      skipped += r.suppressed;
    }
    expect(lines).toBeGreaterThanOrEqual(LINES_PER_SECOND * 100);
    expect(lines).toBeLessThanOrEqual(LINES_PER_SECOND * 101 + 1);
    // Nothing is lost: the next line carries what the last ones did not log.
    skipped += l.note(refusal(9), 1_000_000)!.suppressed;
    expect(lines + skipped).toBe(100_000);
    expect(most).toBeLessThanOrEqual(LINES_PER_SECOND * (LOG_REPEAT_MS / 1000 + 1) + 1);
  });
});
