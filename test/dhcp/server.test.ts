import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  MSG, OPT, decodeClasslessRoutes, encodeClasslessRoutes, encodeHostname, encodeMessageType, readHostname, readLeaseTime,
  readMessageType, readServerId,
} from '../../src/dhcp/options.js';
import { DECLINE_QUARANTINE_MS, DhcpServer, OFFER_HOLD_MS, type DhcpReply } from '../../src/dhcp/server.js';
import { dhcpLength, findOption, parseDhcp, writeDhcp, type Dhcp, type DhcpOption } from '../../src/dhcp/wire.js';
import { resolveStackConfig, type NetworkOptions, type StackConfig } from '../../src/stack/config.js';
import { parseIpv4Addr, parseMac, u32, type Ipv4Addr } from '../../src/util/bytes.js';
import { ManualClock } from '../../src/util/clock.js';
import { Counters, type Drop } from '../../src/util/drops.js';
import { hex } from '../helpers/hex.js';

const ip = (s: string): Ipv4Addr => parseIpv4Addr(s)!;
const MAC1 = parseMac('52:54:00:12:34:56')!;
const MAC2 = parseMac('52:54:00:ab:cd:ef')!;
const BCAST_MAC = parseMac('ff:ff:ff:ff:ff:ff')!;
const BCAST = 0xffffffff;
const SERVER = ip('10.0.2.2');
const DAY_MS = 86_400_000;

const chaddrOf = (mac: Uint8Array): Uint8Array => {
  const c = new Uint8Array(16);
  c.set(mac);
  return c;
};
const addr = (code: number, a: Ipv4Addr): DhcpOption => ({ code, data: hex`${a.toString(16).padStart(8, '0')}` });
const serverId = (a = SERVER): DhcpOption => addr(OPT.SERVER_ID, a);
const requestedIp = (a: Ipv4Addr): DhcpOption => addr(OPT.REQUESTED_IP, a);
const clientId = (id: string): DhcpOption => ({ code: OPT.CLIENT_ID, data: hex`${id}` });
const prl = (...codes: number[]): DhcpOption => ({ code: OPT.PARAMETER_REQUEST_LIST, data: Uint8Array.from(codes) });
const maxSize = (n: number): DhcpOption => ({ code: OPT.MAX_MESSAGE_SIZE, data: hex`${n.toString(16).padStart(4, '0')}` });

/** A client's message template; tests spread overrides into it. */
const BASE: Dhcp = {
  op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x3903f326, secs: 0, broadcast: false,
  ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
  chaddr: chaddrOf(MAC1), sname: new Uint8Array(0), file: new Uint8Array(0), options: [],
};
const msg = (type: number, mac: Uint8Array, options: DhcpOption[] = [], over: Partial<Dhcp> = {}): Dhcp => ({
  ...BASE, chaddr: chaddrOf(mac), options: [encodeMessageType(type), ...options], ...over,
});

function harness(options: NetworkOptions = {}) {
  const config: StackConfig = resolveStackConfig(options);
  const counters = new Counters();
  const clock = new ManualClock(5_000);
  const server = new DhcpServer(config, counters);
  const guestSendsBytes = (b: Uint8Array, srcIp = 0): DhcpReply | undefined =>
    server.receive(b, MAC1, srcIp, clock.now());
  const guestSends = (m: Dhcp, srcIp = 0): DhcpReply | undefined => {
    const b = new Uint8Array(dhcpLength(m));
    writeDhcp(m, b);
    return server.receive(b, m.chaddr.subarray(0, 6), srcIp, clock.now());
  };
  /** DISCOVER, OFFER, REQUEST, ACK; returns the ACK. */
  const dora = (mac: Uint8Array, extra: DhcpOption[] = []): Dhcp => {
    const offer = decode(guestSends(msg(MSG.DISCOVER, mac, extra)));
    expect(readMessageType(offer)).toBe(MSG.OFFER);
    const ack = decode(guestSends(msg(MSG.REQUEST, mac, [serverId(), requestedIp(offer.yiaddr), ...extra])));
    expect(readMessageType(ack)).toBe(MSG.ACK);
    expect(ack.yiaddr).toBe(offer.yiaddr);
    return ack;
  };
  return { config, counters, clock, server, guestSends, guestSendsBytes, dora };
}

function decode(r: DhcpReply | undefined): Dhcp {
  expect(r).toBeDefined();
  const m = parseDhcp(r!.message);
  if (typeof m === 'string') throw new Error(m);
  return m;
}
const opt = (m: Dhcp, code: number): Uint8Array | undefined => findOption(m, code);

describe('dhcp/server', () => {
  let t: ReturnType<typeof harness>;
  beforeEach(() => {
    t = harness();
  });

  it('runs a full DISCOVER/OFFER/REQUEST/ACK exchange with the right options', () => {
    const r = t.guestSends(msg(MSG.DISCOVER, MAC1, [clientId('01525400123456'), maxSize(576), prl(1, 3, 6, 12, 15, 28, 42)]));
    expect(r).toBeDefined();
    const offer = decode(r);
    // Bytes first: op, xid, yiaddr, cookie, option 53 first.
    const b = r!.message;
    expect(b[0]).toBe(2);
    expect(u32(b, 4)).toBe(0x3903f326);
    expect(b.subarray(16, 20)).toEqual(hex`0a00020f`);
    expect(b.subarray(236, 243)).toEqual(hex`63825363 350102`);
    expect(b.length).toBeGreaterThanOrEqual(300);
    expect(b.length).toBeLessThanOrEqual(576 - 28);
    // Then with our parser.
    expect(offer).toMatchObject({ op: 2, htype: 1, hlen: 6, xid: 0x3903f326, ciaddr: 0, yiaddr: ip('10.0.2.15'), giaddr: 0 });
    expect(offer.chaddr).toEqual(chaddrOf(MAC1));
    expect(r!.toIp).toBe(ip('10.0.2.15'));
    expect(r!.toMac).toEqual(MAC1);
    expect(readServerId(offer)).toBe(SERVER);
    expect(opt(offer, 51)).toEqual(hex`00015180`);
    expect(opt(offer, 58)).toEqual(hex`0000a8c0`); // T1 = 43200 s
    expect(opt(offer, 59)).toEqual(hex`00012750`); // T2 = 75600 s
    expect(opt(offer, 1)).toEqual(hex`ffffff00`);
    expect(opt(offer, 3)).toEqual(hex`0a000202`);
    expect(opt(offer, 6)).toEqual(hex`0a000203`);
    expect(opt(offer, 28)).toEqual(hex`0a0002ff`);
    expect(opt(offer, 61)).toEqual(hex`01525400123456`); // RFC 6842
    for (const absent of [12, 15, 26, 66, 67, 119, 121]) expect(opt(offer, absent), `option ${absent}`).toBeUndefined();
    expect(t.server.leases(t.clock.now())).toMatchObject([{ state: 'offered', ip: ip('10.0.2.15'), expiresAtMs: 5_000 + OFFER_HOLD_MS }]);
    expect(t.server.addressOf(MAC1, t.clock.now())).toBeUndefined();

    t.clock.advance(500);
    const ar = t.guestSends(msg(MSG.REQUEST, MAC1, [clientId('01525400123456'), serverId(), requestedIp(offer.yiaddr)]));
    const ack = decode(ar);
    expect(readMessageType(ack)).toBe(MSG.ACK);
    expect(ack.yiaddr).toBe(ip('10.0.2.15'));
    expect(ar!.toIp).toBe(ip('10.0.2.15'));
    expect(readLeaseTime(ack)).toBe(86400);
    expect(t.server.leases(t.clock.now())).toEqual([
      { mac: '52:54:00:12:34:56', clientId: '01525400123456', ip: ip('10.0.2.15'), hostname: undefined, state: 'bound', expiresAtMs: 5_500 + DAY_MS },
    ]);
    expect(t.server.addressOf(MAC1, t.clock.now())).toBe(ip('10.0.2.15'));
    expect(t.counters.total('dhcp.')).toBe(0);
  });

  it('gives two MACs different addresses, and each the same one when it comes back', () => {
    expect(t.dora(MAC1).yiaddr).toBe(ip('10.0.2.15'));
    expect(t.dora(MAC2).yiaddr).toBe(ip('10.0.2.16'));
    expect(t.dora(MAC1).yiaddr).toBe(ip('10.0.2.15')); // asking again changes nothing
    t.clock.advance(DAY_MS + 1); // both leases expire
    expect(t.server.leases(t.clock.now())).toEqual([]);
    expect(t.dora(MAC2).yiaddr).toBe(ip('10.0.2.16'));
    expect(t.dora(MAC1).yiaddr).toBe(ip('10.0.2.15'));
    expect(t.dora(parseMac('52:54:00:00:00:03')!).yiaddr).toBe(ip('10.0.2.17'));
  });

  it('keys leases by client id when there is one (RFC 2131 §4.2)', () => {
    const id = clientId('ff00112233');
    const a = t.dora(MAC1, [id]);
    const b = t.dora(MAC2, [id]); // same client, another NIC
    expect(b.yiaddr).toBe(a.yiaddr);
    expect(t.server.leases(t.clock.now())).toMatchObject([{ mac: '52:54:00:ab:cd:ef', clientId: 'ff00112233' }]);
    const c = t.dora(MAC1, [clientId('ff00112244')]); // same NIC, another client (a second OS)
    expect(c.yiaddr).not.toBe(a.yiaddr);
    expect(t.dora(MAC1).yiaddr).not.toBe(c.yiaddr); // no client id: keyed by MAC, a third lease
    expect(t.server.leases(t.clock.now())).toHaveLength(3);
  });

  it('broadcasts when the client sets the broadcast flag, and echoes the flag', () => {
    const r = t.guestSends(msg(MSG.DISCOVER, MAC1, [], { broadcast: true }));
    expect(r).toMatchObject({ toIp: BCAST, toMac: BCAST_MAC });
    expect(r!.message.subarray(10, 12)).toEqual(hex`8000`);
    const a = t.guestSends(msg(MSG.REQUEST, MAC1, [serverId(), requestedIp(ip('10.0.2.15'))], { broadcast: true }));
    expect(a).toMatchObject({ toIp: BCAST, toMac: BCAST_MAC });
  });

  it('NAKs a wrong, off-network, outside-pool or taken address, always by broadcast', () => {
    t.dora(MAC2); // holds 10.0.2.15
    const cases: [Ipv4Addr, string][] = [
      [ip('192.168.1.5'), 'requested address is not on this network'],
      [ip('10.0.2.100'), 'requested address is outside the pool'],
      [ip('10.0.2.15'), 'requested address is not available'],
    ];
    for (const [want, text] of cases) {
      const r = t.guestSends(msg(MSG.REQUEST, MAC1, [requestedIp(want)])); // INIT-REBOOT
      const nak = decode(r);
      expect(readMessageType(nak)).toBe(MSG.NAK);
      expect(r).toMatchObject({ toIp: BCAST, toMac: BCAST_MAC });
      expect(nak.yiaddr).toBe(0);
      expect(readServerId(nak)).toBe(SERVER);
      expect(new TextDecoder().decode(opt(nak, 56))).toBe(text);
      expect(opt(nak, 51)).toBeUndefined();
    }
    // A bound client asking for another address than its own.
    const mine = t.dora(MAC1).yiaddr;
    const r = t.guestSends(msg(MSG.REQUEST, MAC1, [requestedIp(mine + 1)]));
    expect(readMessageType(decode(r))).toBe(MSG.NAK);
    // SELECTING an address other than the one offered.
    const mac3 = parseMac('52:54:00:00:00:03')!;
    const offered = decode(t.guestSends(msg(MSG.DISCOVER, mac3))).yiaddr;
    const r2 = t.guestSends(msg(MSG.REQUEST, mac3, [serverId(), requestedIp(offered + 1)]));
    expect(readMessageType(decode(r2))).toBe(MSG.NAK);
    expect(t.counters.total('dhcp.')).toBe(0);
  });

  it('ignores a REQUEST for another server and lets its offer go', () => {
    const offer = decode(t.guestSends(msg(MSG.DISCOVER, MAC1)));
    expect(t.guestSends(msg(MSG.REQUEST, MAC1, [serverId(ip('10.0.2.99')), requestedIp(offer.yiaddr)]))).toBeUndefined();
    expect(t.counters.get('dhcp.other-server')).toBe(1);
    expect(t.server.leases(t.clock.now())).toEqual([]);
  });

  it('frees an address on RELEASE, and only its holder can release it', () => {
    const ack = t.dora(MAC1);
    expect(t.guestSends(msg(MSG.RELEASE, MAC2, [serverId()], { ciaddr: ack.yiaddr }))).toBeUndefined();
    expect(t.counters.get('dhcp.release-not-leased')).toBe(1);
    expect(t.server.leases(t.clock.now())).toHaveLength(1);
    expect(t.guestSends(msg(MSG.RELEASE, MAC1, [serverId()], { ciaddr: ack.yiaddr }))).toBeUndefined();
    expect(t.server.leases(t.clock.now())).toEqual([]);
    expect(t.server.addressOf(MAC1, t.clock.now())).toBeUndefined();
    expect(t.dora(MAC1).yiaddr).toBe(ack.yiaddr); // still its address while nobody took it
  });

  it('quarantines a DECLINEd address (RFC 2131 §4.3.3)', () => {
    const ack = t.dora(MAC1);
    expect(t.guestSends(msg(MSG.DECLINE, MAC2, [serverId(), requestedIp(ack.yiaddr)]))).toBeUndefined();
    expect(t.counters.get('dhcp.decline-not-leased')).toBe(1);
    expect(t.guestSends(msg(MSG.DECLINE, MAC1, [serverId(), requestedIp(ack.yiaddr)]))).toBeUndefined();
    expect(t.server.leases(t.clock.now())).toEqual([]);
    expect(t.dora(MAC1).yiaddr).toBe(ip('10.0.2.16'));
    const r = t.guestSends(msg(MSG.REQUEST, MAC2, [requestedIp(ack.yiaddr)]));
    expect(readMessageType(decode(r))).toBe(MSG.NAK);
    t.clock.advance(DECLINE_QUARANTINE_MS);
    const later = t.guestSends(msg(MSG.REQUEST, MAC2, [requestedIp(ack.yiaddr)]));
    expect(readMessageType(decode(later))).toBe(MSG.ACK);
  });

  it('answers INFORM with configuration but no lease (RFC 2131 §4.3.5)', () => {
    const r = t.guestSends(msg(MSG.INFORM, MAC1, [], { ciaddr: ip('10.0.2.50') }));
    const ack = decode(r);
    expect(readMessageType(ack)).toBe(MSG.ACK);
    expect(ack).toMatchObject({ yiaddr: 0, ciaddr: ip('10.0.2.50') });
    expect(r).toMatchObject({ toIp: ip('10.0.2.50'), toMac: MAC1 });
    for (const code of [51, 58, 59]) expect(opt(ack, code)).toBeUndefined();
    expect(opt(ack, 3)).toEqual(hex`0a000202`);
    expect(t.server.leases(t.clock.now())).toEqual([]);
    // ciaddr left zero: answered at the datagram's source address.
    expect(t.guestSends(msg(MSG.INFORM, MAC1), ip('10.0.2.51'))).toMatchObject({ toIp: ip('10.0.2.51') });
  });

  it('renews by unicast (RENEWING) and by broadcast (REBINDING)', () => {
    const ack = t.dora(MAC1);
    t.clock.advance(DAY_MS / 2);
    const r = t.guestSends(msg(MSG.REQUEST, MAC1, [], { ciaddr: ack.yiaddr }));
    const renewed = decode(r);
    expect(readMessageType(renewed)).toBe(MSG.ACK);
    expect(renewed).toMatchObject({ ciaddr: ack.yiaddr, yiaddr: ack.yiaddr });
    expect(r).toMatchObject({ toIp: ack.yiaddr, toMac: MAC1 }); // ciaddr ≠ 0: unicast (§4.1)
    expect(t.server.leases(t.clock.now())[0]!.expiresAtMs).toBe(t.clock.now() + DAY_MS);
    t.clock.advance(DAY_MS * 0.875);
    const rb = t.guestSends(msg(MSG.REQUEST, MAC1, [], { ciaddr: ack.yiaddr, broadcast: true }));
    expect(readMessageType(decode(rb))).toBe(MSG.ACK);
    expect(rb).toMatchObject({ toIp: ack.yiaddr, toMac: MAC1 }); // ciaddr wins over the flag
  });

  it('rebinds a free address it no longer remembers (a restarted server) but NAKs a taken one', () => {
    const other = harness();
    other.dora(MAC2); // 10.0.2.15 belongs to MAC2 here
    const fresh = t.guestSends(msg(MSG.REQUEST, MAC1, [], { ciaddr: ip('10.0.2.17'), broadcast: true }));
    expect(readMessageType(decode(fresh))).toBe(MSG.ACK);
    const taken = other.guestSends(msg(MSG.REQUEST, MAC1, [], { ciaddr: ip('10.0.2.15'), broadcast: true }));
    expect(readMessageType(decode(taken))).toBe(MSG.NAK);
    expect(taken).toMatchObject({ toIp: BCAST, toMac: BCAST_MAC });
  });

  it('lets leases and offers expire', () => {
    const offer = decode(t.guestSends(msg(MSG.DISCOVER, MAC1)));
    t.clock.advance(OFFER_HOLD_MS);
    expect(t.server.leases(t.clock.now())).toEqual([]);
    const ack = t.dora(MAC1);
    expect(ack.yiaddr).toBe(offer.yiaddr);
    t.clock.advance(DAY_MS - 1);
    expect(t.server.addressOf(MAC1, t.clock.now())).toBe(ack.yiaddr);
    t.clock.advance(1);
    expect(t.server.addressOf(MAC1, t.clock.now())).toBeUndefined();
    expect(t.server.leases(t.clock.now())).toEqual([]);
  });

  it('stops offering when the pool is exhausted, and counts it', () => {
    const s = harness({ dhcpstart: '10.0.2.252' }); // 3 addresses: .252-.254
    const macs = [1, 2, 3, 4].map((n) => parseMac(`52:54:00:00:00:0${n}`)!);
    expect(macs.slice(0, 3).map((m) => s.dora(m).yiaddr)).toEqual([ip('10.0.2.252'), ip('10.0.2.253'), ip('10.0.2.254')]);
    expect(s.guestSends(msg(MSG.DISCOVER, macs[3]!))).toBeUndefined();
    expect(s.counters.get('dhcp.pool-exhausted')).toBe(1);
    expect(s.server.leases(s.clock.now())).toHaveLength(3);
  });

  it('records the guest’s hostname and echoes it, unless one is configured', () => {
    const ack = t.dora(MAC1, [encodeHostname('myvm')]);
    expect(readHostname(ack)).toBe('myvm');
    expect(t.server.leases(t.clock.now())[0]!.hostname).toBe('myvm');
    const s = harness({ hostname: 'given' });
    const ack2 = s.dora(MAC1, [encodeHostname('myvm')]);
    expect(readHostname(ack2)).toBe('given');
    expect(s.server.leases(s.clock.now())[0]!.hostname).toBe('myvm');
  });

  it('sends configured options: MTU, domain, search list, classless routes with a default, TFTP', () => {
    const s = harness({
      mtu: 9000, domainname: 'lan', dnssearch: ['a.example', 'b.example'], route: ['192.168.100.0/24=10.0.2.2'],
      tftpservername: 'boot', bootfile: 'pxelinux.0',
    });
    const offer = decode(s.guestSends(msg(MSG.DISCOVER, MAC1, [maxSize(1500)])));
    expect(opt(offer, 26)).toEqual(hex`2328`);
    expect(opt(offer, 15)).toEqual(new TextEncoder().encode('lan'));
    expect(opt(offer, 119)).toEqual(hex`01 61 07 6578616d706c65 00  01 62 c002`);
    expect(decodeClasslessRoutes(opt(offer, 121)!)).toEqual([
      { dest: ip('192.168.100.0'), prefixLen: 24, gateway: SERVER },
      { dest: 0, prefixLen: 0, gateway: SERVER },
    ]);
    expect(opt(offer, 121)).toEqual(encodeClasslessRoutes([
      { dest: ip('192.168.100.0'), prefixLen: 24, gateway: SERVER }, { dest: 0, prefixLen: 0, gateway: SERVER },
    ]).data);
    expect(opt(offer, 66)).toEqual(new TextEncoder().encode('boot'));
    expect(opt(offer, 67)).toEqual(new TextEncoder().encode('pxelinux.0'));
    expect(offer.siaddr).toBe(SERVER);
    expect(offer.file.subarray(0, 11)).toEqual(hex`7078656c696e75782e30 00`);
    // A NAK carries none of it (RFC 2131 table 3).
    const nak = decode(s.guestSends(msg(MSG.REQUEST, MAC1, [requestedIp(ip('10.9.9.9'))])));
    expect(readMessageType(nak)).toBe(MSG.NAK);
    expect(nak).toMatchObject({ siaddr: 0, file: new Uint8Array(128), sname: new Uint8Array(64) });
    for (const code of [1, 3, 6, 15, 26, 66, 67, 119, 121]) expect(opt(nak, code)).toBeUndefined();
    // A configured default route is not doubled.
    const d = harness({ route: ['0.0.0.0/0=10.0.2.4'] });
    expect(decodeClasslessRoutes(opt(decode(d.guestSends(msg(MSG.DISCOVER, MAC1))), 121)!)).toEqual([
      { dest: 0, prefixLen: 0, gateway: ip('10.0.2.4') },
    ]);
    // MTU 1500 is sent only on request.
    expect(opt(decode(t.guestSends(msg(MSG.DISCOVER, MAC1, [prl(26)]))), 26)).toEqual(hex`05dc`);
  });

  it('keeps replies within the client’s maximum message size, dropping unrequested options first', () => {
    const many = Array.from({ length: 20 }, (_, i) => `d${i}.searchdomain${i}.example`);
    const s = harness({ dnssearch: many, domainname: 'lan' });
    const small = s.guestSends(msg(MSG.DISCOVER, MAC1, [prl(1, 3, 6, 15)]));
    expect(small!.message.length).toBeLessThanOrEqual(576 - 28);
    const m = decode(small);
    expect(opt(m, 15)).toBeDefined();
    expect(opt(m, 119)).toBeUndefined(); // 500+ bytes: does not fit
    const big = decode(s.guestSends(msg(MSG.DISCOVER, MAC1, [maxSize(1500)])));
    expect(opt(big, 119)!.length).toBeGreaterThan(255); // sent split (RFC 3396), read back whole
    expect(opt(big, 119)).toEqual(new Uint8Array(opt(big, 119)!)); // sanity: a real array
  });

  it('counts and ignores what it does not serve', () => {
    const cases: [Dhcp | Uint8Array, Drop][] = [
      [hex`0101`, 'dhcp.truncated'],
      [{ ...msg(MSG.DISCOVER, MAC1), op: 2 }, 'dhcp.not-request'],
      [{ ...msg(MSG.DISCOVER, MAC1), htype: 6 }, 'dhcp.unsupported-hardware'],
      [{ ...msg(MSG.DISCOVER, MAC1), giaddr: ip('192.0.2.1') }, 'dhcp.relayed'],
      [{ ...BASE, options: [] }, 'dhcp.no-message-type'],
      [msg(MSG.OFFER, MAC1), 'dhcp.server-message'],
      [msg(MSG.DISCOVER, parseMac('01:00:5e:00:00:01')!), 'dhcp.bad-chaddr'],
      [msg(MSG.REQUEST, MAC1), 'dhcp.bad-request'],
      [msg(MSG.REQUEST, MAC1, [serverId()]), 'dhcp.bad-request'],
      [msg(MSG.DECLINE, MAC1, [serverId()]), 'dhcp.bad-decline'],
      [msg(MSG.RELEASE, MAC1, [serverId(ip('10.0.2.9'))], { ciaddr: ip('10.0.2.15') }), 'dhcp.other-server'],
    ];
    for (const [m, reason] of cases) {
      const c = t.counters.get(reason);
      const r = m instanceof Uint8Array ? t.guestSendsBytes(m) : t.guestSends(m);
      expect(r, reason).toBeUndefined();
      expect(t.counters.get(reason), reason).toBe(c + 1);
    }
  });

  it('never throws, whatever the guest sends', () => {
    const valid = [msg(MSG.DISCOVER, MAC1, [clientId('01525400123456'), encodeHostname('x'), prl(1, 26, 121)]),
      msg(MSG.REQUEST, MAC1, [serverId(), requestedIp(ip('10.0.2.15'))]), msg(MSG.INFORM, MAC1, [], { ciaddr: 1 })];
    const bytes = valid.map((m) => {
      const b = new Uint8Array(dhcpLength(m));
      writeDhcp(m, b);
      return b;
    });
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }),
      fc.nat(), (which, flips, cut) => {
        const b = bytes[which]!.slice();
        for (const [at, v] of flips) b[at % b.length] = v;
        const s = harness();
        s.server.receive(b.subarray(0, b.length - (cut % 40)), MAC1, 0, 0);
        expect(s.counters.get('dhcp.internal-error')).toBe(0);
      }));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
      t.server.receive(b, MAC1, 0, 0);
    }));
    expect(t.counters.get('dhcp.internal-error')).toBe(0);
  });
});

describe('dhcp/server: leases per port (DHCP starvation on a shared network)', () => {
  const macN = (n: number): Uint8Array => Uint8Array.from([0x52, 0x54, 0x00, 0x77, (n >> 8) & 0xff, n & 0xff]);
  function send(t: ReturnType<typeof harness>, m: Dhcp, port: number): DhcpReply | undefined {
    const b = new Uint8Array(dhcpLength(m));
    writeDhcp(m, b);
    return t.server.receive(b, m.chaddr.subarray(0, 6), 0, t.clock.now(), port);
  }

  it('a port inventing MACs gets at most --max-session-leases offers; the others still lease; renewals go on', () => {
    const t = harness({ maxSessionLeases: 3 });
    let offered = 0;
    for (let n = 0; n < 100; n++) if (send(t, msg(MSG.DISCOVER, macN(n)), 7) !== undefined) offered++;
    expect(offered).toBe(3);
    expect(t.counters.get('dhcp.port-lease-limit')).toBe(97);
    // Another port's guest gets its lease from what is left of the pool.
    const offer = decode(send(t, msg(MSG.DISCOVER, MAC2), 8));
    expect(decode(send(t, msg(MSG.REQUEST, MAC2, [serverId(), requestedIp(offer.yiaddr)]), 8)).yiaddr).toBe(offer.yiaddr);
    // A client of port 7 that holds an offer may still complete it, and renew.
    const first = t.server.leases(t.clock.now()).find((l) => l.owner === 7)!;
    const ack = decode(send(t, msg(MSG.REQUEST, macN(0), [serverId(), requestedIp(first.ip)]), 7));
    expect(ack.yiaddr).toBe(first.ip);
    expect(decode(send(t, msg(MSG.REQUEST, macN(0), [], { ciaddr: first.ip }), 7)).yiaddr).toBe(first.ip);
    // An INIT-REBOOT of a fourth client on port 7 is refused too.
    expect(send(t, msg(MSG.REQUEST, macN(500), [requestedIp(ip('10.0.2.29'))]), 7)).toBeUndefined();
  });

  it('offers that expire give the port its room back; without a port (a bare stack) there is no limit', () => {
    const t = harness({ maxSessionLeases: 2 });
    for (let n = 0; n < 2; n++) expect(send(t, msg(MSG.DISCOVER, macN(n)), 1)).toBeDefined();
    expect(send(t, msg(MSG.DISCOVER, macN(2)), 1)).toBeUndefined();
    t.clock.advance(OFFER_HOLD_MS + 1);
    expect(send(t, msg(MSG.DISCOVER, macN(2)), 1)).toBeDefined();
    const u = harness({ maxSessionLeases: 1 });
    for (let n = 0; n < 5; n++) expect(u.guestSends(msg(MSG.DISCOVER, macN(n)))).toBeDefined();
  });

  it('refuses a bad --max-session-leases', () => {
    expect(() => resolveStackConfig({ maxSessionLeases: 0 })).toThrow(/max-session-leases.*1 to 1024/);
    expect(() => resolveStackConfig({ maxSessionLeases: 'x' })).toThrow(/max-session-leases/);
  });
});
