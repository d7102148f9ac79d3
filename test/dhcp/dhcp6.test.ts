import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerDhcp6, Dhcp6Leases, duidOf, parseDhcp6, parseIaNa, type Dhcp6Message } from '../../src/dhcp/dhcp6.js';
import { isDrop } from '../../src/util/drops.js';
import { runs } from '../helpers/fuzz.js';
import { a6 } from '../helpers/frames6.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((x) => parseInt(x, 16)));
const MAC = hex('52550a000202');
const CONFIG = { serverMac: MAC, dnsServers: [a6('fd00::3')], searchList: ['v6.test'] };

// An Information-Request as dhclient -6 -S sends it: client id (DUID-LL), ORO (23, 24), elapsed time 0.
const INFO_REQUEST = hex('0b 123456  0001 000a 00030001 5254001234 56  0006 0004 0017 0018  0008 0002 0000');

describe('dhcp/dhcp6 (stateless)', () => {
  it('answers an Information-Request with server id, client id, DNS servers and the search list', () => {
    const m = parseDhcp6(INFO_REQUEST) as Dhcp6Message;
    expect(m).toMatchObject({ type: 11, transactionId: 0x123456 });
    const reply = answerDhcp6(m, CONFIG);
    expect(reply).toEqual(hex(`07 123456
      0002 000a 00030001 52550a000202
      0001 000a 00030001 525400123456
      0017 0010 fd000000000000000000000000000003
      0018 0009 027636 0474657374 00`));
  });

  it('sends only what the ORO asks for; refuses stateful messages, IA options and another server\'s id', () => {
    const onlyDns = parseDhcp6(hex('0b 000001 0006 0002 0017')) as Dhcp6Message;
    const r = answerDhcp6(onlyDns, CONFIG) as Uint8Array;
    expect([...r.subarray(4 + 14)]).toEqual([...hex('0017 0010 fd000000000000000000000000000003')]);
    expect(answerDhcp6(parseDhcp6(hex('01 000001')) as Dhcp6Message, CONFIG)).toBe('dhcp6.stateful-unsupported');
    expect(answerDhcp6(parseDhcp6(hex('0b 000001 0003 0000')) as Dhcp6Message, CONFIG)).toBe('dhcp6.information-request-with-ia');
    expect(answerDhcp6(parseDhcp6(hex('0b 000001 0002 0004 00030001')) as Dhcp6Message, CONFIG)).toBe('dhcp6.other-server');
    const ours = new Uint8Array([0x0b, 0, 0, 1, 0, 2, 0, 10, ...duidOf(MAC)]);
    expect(isDrop(answerDhcp6(parseDhcp6(ours) as Dhcp6Message, CONFIG))).toBe(false);
  });

  it('every truncation of an option is a Drop; never throws on any bytes (property)', () => {
    for (let n = 5; n < INFO_REQUEST.length; n++) if (n !== 18 && n !== 26) expect(parseDhcp6(INFO_REQUEST.subarray(0, n)), `${n}`).toBe('dhcp6.bad-option');
    expect(parseDhcp6(INFO_REQUEST.subarray(0, 3))).toBe('dhcp6.truncated');
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const m = parseDhcp6(b);
      if (!isDrop(m)) answerDhcp6(m, CONFIG);
    }), { numRuns: runs(2000) });
  });
});

describe('dhcp/dhcp6 (stateful, IA_NA)', () => {
  const CLIENT_ID = '0001 000a 00030001 525400123456';
  const SERVER_ID = '0002 000a 00030001 52550a000202';
  const IA = '0003 000c 00000001 00000000 00000000';
  const ORO = '0006 0004 0017 0018';
  const stateful = (maxPerOwner = 4) => ({ ...CONFIG, leases: new Dhcp6Leases(a6('fd00::'), maxPerOwner), prefix: a6('fd00::'), leaseTimeS: 3600 });
  const ask = (c: ReturnType<typeof stateful>, text: string, nowMs = 0, owner?: number) => answerDhcp6(parseDhcp6(hex(text)) as Dhcp6Message, c, { nowMs, owner });
  // IA_NA 1: T1 1800 s, T2 2880 s, fd00::100 preferred and valid 3600 s.
  const BOUND_IA = '0003 0028 00000001 00000708 00000b40  0005 0018 fd000000000000000000000000000100 00000e10 00000e10';
  const OTHER = '0017 0010 fd000000000000000000000000000003  0018 0009 027636 0474657374 00';

  it('Solicit → Advertise with PREFIX::100, Request → Reply binding it, Renew extends it (dhclient -6\'s exchange, byte for byte)', () => {
    const c = stateful();
    expect(ask(c, `01 abcdef ${CLIENT_ID} ${IA} 0008 0002 0000 ${ORO}`)).toEqual(hex(`02 abcdef ${SERVER_ID} ${CLIENT_ID} ${BOUND_IA} ${OTHER}`));
    expect(c.leases.list(0)).toMatchObject([{ addr: a6('fd00::100'), state: 'advertised', expiresAtMs: 60_000 }]);
    expect(ask(c, `03 000002 ${CLIENT_ID} ${SERVER_ID} 0003 0028 00000001 00000000 00000000 0005 0018 fd000000000000000000000000000100 00000000 00000000 ${ORO}`, 1000)).toEqual(
      hex(`07 000002 ${SERVER_ID} ${CLIENT_ID} ${BOUND_IA} ${OTHER}`),
    );
    expect(c.leases.list(1000)).toMatchObject([{ state: 'bound', expiresAtMs: 3_601_000 }]);
    expect(ask(c, `05 000003 ${CLIENT_ID} ${SERVER_ID} ${IA}`, 2_000_000)).toEqual(hex(`07 000003 ${SERVER_ID} ${CLIENT_ID} ${BOUND_IA} ${OTHER}`));
    expect(c.leases.list(2_000_000)).toMatchObject([{ expiresAtMs: 5_600_000 }]);
  });

  it('Rapid Commit binds at once; Release frees (Success), then Renew finds NoBinding; Confirm says on link or not', () => {
    const c = stateful();
    expect(ask(c, `01 000001 ${CLIENT_ID} 000e 0000 ${IA} 0006 0000`)).toEqual(hex(`07 000001 ${SERVER_ID} ${CLIENT_ID} 000e 0000 ${BOUND_IA}`));
    expect(c.leases.list(0)).toMatchObject([{ state: 'bound' }]);
    expect(ask(c, `08 000002 ${CLIENT_ID} ${SERVER_ID} ${IA}`)).toEqual(hex(`07 000002 ${SERVER_ID} ${CLIENT_ID} 000d 000a 0000 72656c6561736564`));
    expect(c.leases.list(0)).toEqual([]);
    expect(ask(c, `05 000003 ${CLIENT_ID} ${SERVER_ID} ${IA} 0006 0000`)).toEqual(
      hex(`07 000003 ${SERVER_ID} ${CLIENT_ID} 0003 0028 00000001 00000000 00000000 000d 0018 0003 ${Buffer.from('no binding for this IA').toString('hex')}`),
    );
    const confirm = (addr: string) => ask(c, `04 000004 ${CLIENT_ID} 0003 0028 00000001 00000000 00000000 0005 0018 ${addr} 00000000 00000000`) as Uint8Array;
    expect([...confirm('fd000000000000000000000000000100').subarray(4 + 28, 4 + 28 + 6)]).toEqual([0, 13, 0, 9, 0, 0]);
    expect([...confirm('20010db8000000000000000000000001').subarray(4 + 28, 4 + 28 + 6)]).toEqual([0, 13, 0, 18, 0, 4]);
    expect(ask(c, `04 000005 ${CLIENT_ID}`)).toBe('dhcp6.confirm-without-addresses');
  });

  it('refuses what RFC 8415 §16 discards; stateless servers leave stateful messages unanswered', () => {
    const c = stateful();
    expect(ask(c, `01 000001 ${IA}`)).toBe('dhcp6.no-client-id');
    expect(ask(c, `01 000001 ${CLIENT_ID} ${SERVER_ID} ${IA}`)).toBe('dhcp6.other-server');
    expect(ask(c, `03 000001 ${CLIENT_ID} ${IA}`)).toBe('dhcp6.no-server-id');
    expect(ask(c, `03 000001 ${CLIENT_ID} 0002 0004 00030001 ${IA}`)).toBe('dhcp6.other-server');
    expect(ask(c, `01 000001 ${CLIENT_ID} 0003 0004 00000001`)).toBe('dhcp6.bad-ia-na');
    expect(ask(c, `09 000001 ${CLIENT_ID} ${SERVER_ID} ${IA}`)).toBe('dhcp6.decline-ignored');
    expect(answerDhcp6(parseDhcp6(hex(`01 000001 ${CLIENT_ID} ${IA}`)) as Dhcp6Message, CONFIG)).toBe('dhcp6.stateful-unsupported');
  });

  it('bounds bindings per session port (--max-session-leases) and by the pool of 256, with NoAddrsAvail', () => {
    const c = stateful(2);
    const solicit = (n: number, owner: number | undefined) =>
      ask(c, `01 000001 0001 000a 00030001 5254${n.toString(16).padStart(8, '0')} 000e 0000 ${IA}`, 0, owner) as Uint8Array;
    const noAddrs = (r: Uint8Array): boolean => {
      const ia = parseIaNa((parseDhcp6(r) as Dhcp6Message).options.get(3)!);
      return !isDrop(ia) && ia.addresses.length === 0 && Buffer.from(r).toString('hex').includes("000d00180002");
    };
    expect(noAddrs(solicit(1, 7))).toBe(false);
    expect(noAddrs(solicit(2, 7))).toBe(false);
    expect(noAddrs(solicit(3, 7))).toBe(true); // port 7's clients hold 2
    expect(noAddrs(solicit(1, 7))).toBe(false); // the same client again: its own address
    for (let n = 4; n < 258; n++) expect(noAddrs(solicit(n, undefined)), `${n}`).toBe(false);
    expect(noAddrs(solicit(258, undefined))).toBe(true);
    const addrs = c.leases.list(0).map((l) => l.addr);
    expect(new Set(addrs).size).toBe(256);
    expect(addrs.every((a) => a.startsWith('fd00000000000000000000000000') && parseInt(a.slice(28), 16) >= 0x100 && parseInt(a.slice(28), 16) <= 0x1ff)).toBe(true);
    // Expired bindings make room again.
    expect(c.leases.list(3_600_000)).toEqual([]);
  });

  it('parseIaNa: every truncation is a Drop; the stateful server never throws and keeps addresses unique in the pool (property)', () => {
    const body = hex('00000001 00000000 00000000 0005 0018 fd000000000000000000000000000100 00000000 00000000');
    expect(parseIaNa(body)).toEqual({ iaid: 1, addresses: [a6('fd00::100')] });
    for (let n = 0; n < body.length; n++) if (n !== 12) expect(parseIaNa(body.subarray(0, n)), `${n}`).toBe('dhcp6.bad-ia-na');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(1, 3, 4, 5, 6, 8), fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 30 }), (steps) => {
        const c = stateful(3);
        let now = 0;
        for (const [type, client, junk] of steps) {
          now += 1000;
          const sid = type === 3 || type === 5 || type === 8 ? SERVER_ID : '';
          const msg = hex(`${type.toString(16).padStart(2, '0')} 000001 0001 000a 00030001 5254000000${client.toString(16).padStart(2, '0')} ${sid} ${IA}`);
          const withJunk = new Uint8Array([...msg, ...junk]);
          for (const b of [msg, withJunk]) {
            const m = parseDhcp6(b);
            if (!isDrop(m)) answerDhcp6(m, c, { nowMs: now, owner: client % 3 });
          }
          const addrs = c.leases.list(now).map((l) => l.addr);
          expect(new Set(addrs).size).toBe(addrs.length);
        }
      }),
      { numRuns: runs(500) },
    );
  });
});
