import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerDhcp6, duidOf, parseDhcp6, type Dhcp6Message } from '../../src/dhcp/dhcp6.js';
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
