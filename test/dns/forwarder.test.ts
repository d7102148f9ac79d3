import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LOCAL_TTL_S, MAX_PENDING_PER_GUEST, MAX_QUERY_BYTES, QUERY_DEADLINE_MS, UPSTREAM_TIMEOUT_MS,
} from '../../src/dns/forwarder.js';
import { parseDnsRecordOption, type DnsStaticRecord } from '../../src/dns/records.js';
import type { Endpoint } from '../../src/net/addr.js';
import { ICMP_TYPE } from '../../src/ipv4/icmp-wire.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { put16, u16 } from '../../src/util/bytes.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { a6 } from '../helpers/frames6.js';
import { decode, ip, ipv4Frame, udpBytes, type Decoded } from '../helpers/frames.js';

const UP1: Endpoint = { addr: ip('127.0.0.53'), port: 53 };
const UP2: Endpoint = { addr: ip('127.0.0.1'), port: 5353 };

interface HarnessOptions {
  readonly network?: NetworkOptions;
  readonly upstreams?: readonly Endpoint[];
  readonly records?: readonly string[];
}

function harness(o: HarnessOptions = {}) {
  const clock = new ManualClock(10_000);
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const records = (o.records ?? []).map((r) => parseDnsRecordOption(r) as DnsStaticRecord);
  const stack = new Stack(resolveStackConfig(o.network ?? {}), {
    clock, random: seededRandom(11), emit: (f) => sent.push(f), host,
    dnsUpstreams: o.upstreams ?? [UP1], dnsRecords: records,
  });
  const take = (): Decoded[] => sent.splice(0).map(decode);
  /** The guest sends raw bytes to 10.0.2.3:53 (or another port/address). */
  const guestSendsRaw = (payload: Uint8Array, srcPort = 40000, dst = '10.0.2.3', dstPort = 53): Decoded[] => {
    const udp = udpBytes({ srcPort, dstPort, payload }, ip('10.0.2.15'), ip(dst));
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip(dst), payload: udp }));
    return take();
  };
  const ask = (name: string, type: dnsPacket.RecordType | 'ANY' = 'A', id = 0x1234, srcPort = 40000): Decoded[] =>
    guestSendsRaw(query(name, type, id), srcPort);
  /** The last datagram the forwarder sent upstream: [flow, bytes]. */
  const lastUpstream = (): [number, Uint8Array] => {
    const c = host.callsOf('udpSend').at(-1)!;
    return [c[0] as number, c[1] as Uint8Array];
  };
  return { clock, host, stack, take, guestSendsRaw, ask, lastUpstream };
}

const query = (name: string, type: dnsPacket.RecordType | 'ANY' = 'A', id = 0x1234): Uint8Array =>
  dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as dnsPacket.RecordType, class: 'IN', name }] });

/** An upstream answer to `q` (bytes as sent upstream): same ID and question. */
function answerTo(q: Uint8Array, answers: dnsPacket.Answer[], flags = dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED): Uint8Array {
  const d = dnsPacket.decode(Buffer.from(q));
  return dnsPacket.encode({ type: 'response', id: d.id!, flags, questions: d.questions!, answers });
}

/** What dns-packet decodes (its typings leave out rcode and the flag_* fields). */
interface DnsView {
  readonly id: number;
  readonly rcode: string;
  readonly flag_qr: boolean;
  readonly flag_aa: boolean;
  readonly flag_tc: boolean;
  readonly flag_rd: boolean;
  readonly flag_ra: boolean;
  readonly questions: readonly dnsPacket.Question[];
  readonly answers: readonly { readonly name: string; readonly type: string; readonly ttl: number; readonly data: unknown }[];
}

/** The DNS message in a frame the guest received, checking it comes from 10.0.2.3:53. */
function dnsOf(frame: Decoded | undefined, toPort = 40000): DnsView {
  expect(frame?.ip).toMatchObject({ src: ip('10.0.2.3'), dst: ip('10.0.2.15') });
  expect(frame?.udp).toMatchObject({ srcPort: 53, dstPort: toPort });
  return dnsPacket.decode(Buffer.from(frame!.udp!.payload)) as unknown as DnsView;
}

describe('dns/forwarder: forwarding', () => {
  it('relays a query with a fresh ID through one upstream socket and maps the answer back byte for byte', () => {
    const t = harness();
    const q = query('example.test', 'A', 0x1234);
    expect(t.guestSendsRaw(q)).toEqual([]);
    const [open] = t.host.callsOf('udpOpen');
    expect(open).toEqual([expect.any(Number), UP1]);
    const [flow, sentUp] = t.lastUpstream();
    expect(flow).toBe(open![0]);
    const upstreamId = u16(sentUp, 0);
    expect(upstreamId).not.toBe(0x1234);
    expect(sentUp.subarray(2)).toEqual(new Uint8Array(q.subarray(2))); // untouched but for the ID
    const answer = answerTo(sentUp, [{ type: 'A', name: 'example.test', ttl: 300, data: '192.0.2.55' }]);
    t.stack.udpReceived(flow, answer);
    const [frame] = t.take();
    const bytes = frame!.udp!.payload;
    expect(u16(bytes, 0)).toBe(0x1234);
    expect(bytes.subarray(2)).toEqual(new Uint8Array(answer.subarray(2)));
    expect(dnsOf(frame).answers).toMatchObject([{ type: 'A', data: '192.0.2.55', ttl: 300 }]);
    expect(t.stack.dnsStats()).toMatchObject({ queries: 1, forwarded: 1, answersFromUpstream: 1, servfail: 0 });
  });

  it('passes AAAA, MX, TXT and SRV answers through untouched', () => {
    const t = harness();
    const cases: [dnsPacket.RecordType, dnsPacket.Answer][] = [
      ['AAAA', { type: 'AAAA', name: 'x.test', data: '2001:db8::55' }],
      ['MX', { type: 'MX', name: 'x.test', data: { preference: 10, exchange: 'mail.x.test' } }],
      ['TXT', { type: 'TXT', name: 'x.test', data: ['hello', 'world'] }],
      ['SRV', { type: 'SRV', name: 'x.test', data: { priority: 1, weight: 2, port: 5060, target: 'sip.x.test' } }],
    ];
    for (const [type, rr] of cases) {
      t.ask('x.test', type, 7);
      const [flow, up] = t.lastUpstream();
      const answer = answerTo(up, [rr]);
      t.stack.udpReceived(flow, answer);
      const [frame] = t.take();
      expect(frame!.udp!.payload.subarray(2)).toEqual(new Uint8Array(answer.subarray(2)));
      expect(dnsOf(frame).answers[0]).toMatchObject({ type });
    }
  });

  it('passes a truncated answer on with TC set, so the guest retries over TCP', () => {
    const t = harness();
    t.ask('big.test', 'TXT');
    const [flow, up] = t.lastUpstream();
    t.stack.udpReceived(flow, answerTo(up, [], dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_AVAILABLE));
    const d = dnsOf(t.take()[0]);
    expect(d.flag_tc).toBe(true);
    expect(d.id).toBe(0x1234);
  });

  it('takes its upstream socket ids from the flow table, without colliding with NAT flows, and lists only NAT flows', () => {
    const t = harness({ network: { nat: 'symmetric' } });
    t.guestSendsRaw(new Uint8Array(4), 40001, '10.0.2.2', 7); // a NAT flow first
    t.ask('a.test');
    t.guestSendsRaw(new Uint8Array(4), 40002, '10.0.2.2', 7);
    const opened = t.host.callsOf('udpOpen').map((c) => c[0]);
    expect(new Set(opened).size).toBe(3);
    expect(t.stack.flows().map((f) => f.remote.port)).toEqual([7, 7]);
    // NAT replies still reach NAT; DNS replies reach the forwarder.
    t.stack.udpReceived(opened[0] as number, new Uint8Array([1, 2]));
    expect(t.take()[0]!.udp).toMatchObject({ srcPort: 7, dstPort: 40001 });
  });

  it('reuses one socket per upstream and gives every pending query a distinct ID', () => {
    const t = harness();
    for (let i = 0; i < 100; i++) t.ask(`n${i}.test`, 'A', 0x4242, 20000 + i);
    expect(t.host.callsOf('udpOpen')).toHaveLength(1);
    const ids = t.host.callsOf('udpSend').map((c) => u16(c[1] as Uint8Array, 0));
    expect(new Set(ids).size).toBe(100);
    // Answers in reverse order each reach their own guest port with the guest's ID.
    for (const c of t.host.callsOf('udpSend').reverse()) t.stack.udpReceived(c[0] as number, answerTo(c[1] as Uint8Array, []));
    const frames = t.take();
    expect(frames.map((f) => f.udp!.dstPort)).toEqual(Array.from({ length: 100 }, (_, i) => 20099 - i));
    expect(frames.every((f) => u16(f.udp!.payload, 0) === 0x4242)).toBe(true);
  });

  it('drops answers that match no pending query: unknown ID, other question, not a response, runts, repeats', () => {
    const t = harness();
    t.ask('a.test', 'A');
    const [flow, up] = t.lastUpstream();
    const wrongId = answerTo(up, []);
    put16(wrongId, 0, (u16(up, 0) + 1) & 0xffff);
    t.stack.udpReceived(flow, wrongId);
    const d = dnsPacket.decode(Buffer.from(up));
    t.stack.udpReceived(flow, dnsPacket.encode({ type: 'response', id: d.id!, questions: [{ type: 'A', name: 'b.test' }] }));
    t.stack.udpReceived(flow, dnsPacket.encode({ type: 'response', id: d.id!, questions: [{ type: 'AAAA', name: 'a.test' }] }));
    t.stack.udpReceived(flow, up); // the query itself: QR clear
    t.stack.udpReceived(flow, up.subarray(0, 11));
    expect(t.take()).toEqual([]);
    expect(t.stack.counters.get('dns.unmatched-reply')).toBe(3);
    expect(t.stack.counters.get('dns.upstream-not-response')).toBe(1);
    expect(t.stack.counters.get('dns.upstream-truncated')).toBe(1);
    // The right answer, with the name in another case (0x20 mixing), still gets through, once.
    const good = dnsPacket.encode({ type: 'response', id: d.id!, questions: [{ type: 'A', name: 'A.TEST' }] });
    t.stack.udpReceived(flow, good);
    t.stack.udpReceived(flow, good);
    expect(t.take()).toHaveLength(1);
    expect(t.stack.counters.get('dns.unmatched-reply')).toBe(4);
  });

  it('accepts an error answer without a question section by its ID', () => {
    const t = harness();
    t.ask('a.test');
    const [flow, up] = t.lastUpstream();
    const bare = new Uint8Array(12);
    put16(bare, 0, u16(up, 0));
    put16(bare, 2, 0x8001); // QR, FORMERR
    t.stack.udpReceived(flow, bare);
    expect(dnsOf(t.take()[0]).rcode).toBe('FORMERR');
  });

  it('keeps forwarding under --restrict (DNS is not NAT)', () => {
    const t = harness({ network: { restrict: true } });
    t.ask('a.test');
    expect(t.host.callsOf('udpOpen')).toEqual([[expect.any(Number), UP1]]);
  });

  it('opens upstream sockets from the network\'s --outbound (IPv4 upstreams) and --outbound6 (IPv6 upstreams) address', () => {
    const up6: Endpoint = { addr: a6('2001:db8::53'), port: 53 };
    const t = harness({ network: { outbound: '203.0.113.2', outbound6: '2001:db8:203::2' }, upstreams: [UP1, up6] });
    t.ask('a.test');
    t.clock.advance(UPSTREAM_TIMEOUT_MS);
    t.stack.advance();
    expect(t.host.callsOf('udpOpen').map((c) => c.slice(1))).toEqual([
      [UP1, { addr: ip('203.0.113.2'), port: 0 }],
      [up6, { addr: a6('2001:db8:203::2'), port: 0 }],
    ]);
    const plain = harness({ upstreams: [UP1] });
    plain.ask('a.test');
    expect(plain.host.callsOf('udpOpen')).toEqual([[expect.any(Number), UP1]]);
  });

  it('answers UDP to another port of the DNS address with port unreachable', () => {
    const t = harness();
    const [err] = t.guestSendsRaw(query('a.test'), 40000, '10.0.2.3', 54);
    expect(err!.icmp).toMatchObject({ type: ICMP_TYPE.DEST_UNREACHABLE, code: 3 });
  });
});

describe('dns/forwarder: timeouts and upstream failures', () => {
  it('tries the next upstream after 2 s, cycles, and answers SERVFAIL 5 s after the question', () => {
    const t = harness({ upstreams: [UP1, UP2] });
    t.ask('slow.test', 'A', 0x0707);
    const [flow1, sent1] = t.lastUpstream();
    expect(t.stack.nextDeadline()).toBe(10_000 + UPSTREAM_TIMEOUT_MS);
    t.clock.advance(UPSTREAM_TIMEOUT_MS - 1);
    t.stack.advance();
    expect(t.host.callsOf('udpSend')).toHaveLength(1);
    t.clock.advance(1);
    t.stack.advance();
    expect(t.host.callsOf('udpOpen').map((c) => c[1])).toEqual([UP1, UP2]);
    const [flow2, sent2] = t.lastUpstream();
    expect(flow2).not.toBe(flow1);
    expect(sent2).toEqual(sent1); // same ID: an answer from either upstream counts
    t.clock.advance(UPSTREAM_TIMEOUT_MS);
    t.stack.advance();
    expect(t.lastUpstream()[0]).toBe(flow1);
    expect(t.stack.nextDeadline()).toBe(10_000 + QUERY_DEADLINE_MS);
    t.clock.set(10_000 + QUERY_DEADLINE_MS);
    t.stack.advance();
    const d = dnsOf(t.take()[0]);
    expect(d).toMatchObject({ id: 0x0707, rcode: 'SERVFAIL', flag_qr: true, questions: [{ name: 'slow.test', type: 'A' }] });
    expect(t.stack.nextDeadline()).toBeUndefined();
    expect(t.stack.counters.get('dns.upstream-timeout')).toBe(1);
    expect(t.stack.dnsStats()).toMatchObject({ forwarded: 1, retries: 2, servfail: 1 });
    // A late answer finds nothing pending.
    t.stack.udpReceived(flow1, answerTo(sent1, []));
    expect(t.take()).toEqual([]);
    expect(t.stack.counters.get('dns.unmatched-reply')).toBe(1);
  });

  it('with one upstream, re-sends to it and still gives up at 5 s', () => {
    const t = harness();
    t.ask('slow.test');
    for (let ms = 0; ms < QUERY_DEADLINE_MS; ms += 500) {
      t.clock.advance(500);
      t.stack.advance();
    }
    expect(t.host.callsOf('udpSend')).toHaveLength(3); // 0 s, 2 s, 4 s
    expect(dnsOf(t.take()[0]).rcode).toBe('SERVFAIL');
  });

  it('takes the first upstream\'s late answer after moving on to the second', () => {
    const t = harness({ upstreams: [UP1, UP2] });
    t.ask('a.test');
    const [flow1, sent1] = t.lastUpstream();
    t.clock.advance(UPSTREAM_TIMEOUT_MS);
    t.stack.advance();
    t.stack.udpReceived(flow1, answerTo(sent1, [{ type: 'A', name: 'a.test', data: '192.0.2.1' }]));
    expect(dnsOf(t.take()[0]).answers).toMatchObject([{ data: '192.0.2.1' }]);
    expect(t.stack.nextDeadline()).toBeUndefined();
  });

  it('on ECONNREFUSED moves on to the next upstream at once, and answers SERVFAIL when all refused', () => {
    const t = harness({ upstreams: [UP1, UP2] });
    t.ask('a.test');
    const [flow1] = t.lastUpstream();
    t.stack.udpError(flow1, 'ECONNREFUSED');
    expect(t.host.callsOf('close')).toEqual([[flow1]]);
    const [flow2] = t.lastUpstream();
    expect(t.host.callsOf('udpOpen').map((c) => c[1])).toEqual([UP1, UP2]);
    expect(t.take()).toEqual([]);
    t.stack.udpError(flow2, 'ECONNREFUSED');
    expect(dnsOf(t.take()[0]).rcode).toBe('SERVFAIL');
    expect(t.stack.counters.get('dns.upstream-econnrefused')).toBe(2);
    expect(t.stack.counters.get('dns.upstreams-failed')).toBe(1);
    // The next query reopens a socket to the first upstream with a fresh flow id.
    t.ask('b.test');
    const reopened = t.host.callsOf('udpOpen').at(-1)!;
    expect(reopened[1]).toEqual(UP1);
    expect([flow1, flow2]).not.toContain(reopened[0]);
  });

  it('answers SERVFAIL at once when no upstream is configured', () => {
    const t = harness({ upstreams: [] });
    expect(dnsOf(t.ask('a.test')[0]).rcode).toBe('SERVFAIL');
    expect(t.host.calls).toEqual([]);
    expect(t.stack.counters.get('dns.no-upstream')).toBe(1);
  });

  it('setDnsUpstreams keeps sockets of upstreams still listed, closes the others and moves their queries', () => {
    const t = harness({ upstreams: [UP1, UP2] });
    t.ask('a.test');
    const [flow1, sent1] = t.lastUpstream();
    t.stack.setDnsUpstreams([UP2, UP1]);
    expect(t.host.callsOf('close')).toEqual([]);
    expect(t.host.callsOf('udpSend')).toHaveLength(1);
    const UP3: Endpoint = { addr: ip('127.0.0.1'), port: 5454 };
    t.stack.setDnsUpstreams([UP3]);
    expect(t.host.callsOf('close')).toEqual([[flow1]]);
    const [flow3, sent3] = t.lastUpstream();
    expect(t.host.callsOf('udpOpen').at(-1)).toEqual([flow3, UP3]);
    expect(sent3).toEqual(sent1);
    t.stack.udpReceived(flow3, answerTo(sent3, []));
    expect(dnsOf(t.take()[0]).rcode).toBe('NOERROR');
    t.ask('b.test');
    t.stack.setDnsUpstreams([]);
    expect(dnsOf(t.take()[0]).rcode).toBe('SERVFAIL');
  });

  it('closes its upstream sockets when the stack closes', () => {
    const t = harness({ upstreams: [UP1, UP2] });
    t.ask('a.test');
    const [flow1] = t.lastUpstream();
    t.stack.close();
    expect(t.host.callsOf('close')).toEqual([[flow1]]);
    expect(t.stack.nextDeadline()).toBeUndefined();
  });
});

describe('dns/forwarder: local names', () => {
  it('answers host.tslirp.internal with the gateway address, in any case, without asking upstream', () => {
    const t = harness();
    const [frame] = t.ask('Host.TSLIRP.internal', 'A', 99);
    const d = dnsOf(frame);
    expect(d).toMatchObject({ id: 99, rcode: 'NOERROR', flag_aa: true, flag_rd: true, flag_ra: true, flag_tc: false });
    expect(d.questions).toEqual([{ name: 'Host.TSLIRP.internal', type: 'A', class: 'IN' }]);
    expect(d.answers).toMatchObject([{ name: 'Host.TSLIRP.internal', type: 'A', class: 'IN', ttl: LOCAL_TTL_S, data: '10.0.2.2' }]);
    expect(t.host.calls).toEqual([]);
    expect(t.stack.dnsStats()).toMatchObject({ answeredLocally: 1, forwarded: 0 });
  });

  it('gives NODATA for other types of a local name and NXDOMAIN for unknown names in tslirp.internal', () => {
    const t = harness();
    // With IPv6 on (the default) the host name has the IPv6 gateway's AAAA too.
    const aaaa = dnsOf(t.ask('host.tslirp.internal', 'AAAA')[0]);
    expect(aaaa).toMatchObject({ rcode: 'NOERROR', flag_aa: true });
    expect(aaaa.answers.map((a) => a.data)).toEqual(['fd00::2']);
    const mx = dnsOf(t.ask('host.tslirp.internal', 'MX')[0]);
    expect(mx).toMatchObject({ rcode: 'NOERROR', answers: [] });
    expect(dnsOf(t.ask('nobody.tslirp.internal')[0])).toMatchObject({ rcode: 'NXDOMAIN', flag_aa: true, answers: [] });
    expect(dnsOf(t.ask('tslirp.internal')[0])).toMatchObject({ rcode: 'NXDOMAIN' });
    expect(t.host.calls).toEqual([]);
  });

  it('serves --dns-record A and AAAA records, several per name, and ANY', () => {
    const t = harness({ records: ['db.example=192.0.2.10', 'db.example=192.0.2.11', 'DB.example.=2001:db8::10'] });
    expect(dnsOf(t.ask('db.example', 'A')[0]).answers.map((a) => a.data)).toEqual(['192.0.2.10', '192.0.2.11']);
    expect(dnsOf(t.ask('db.example', 'AAAA')[0]).answers.map((a) => a.data)).toEqual(['2001:db8::10']);
    expect(dnsOf(t.ask('db.example', 'ANY')[0]).answers).toHaveLength(3);
    expect(dnsOf(t.ask('db.example', 'TXT')[0])).toMatchObject({ rcode: 'NOERROR', answers: [] });
    expect(t.host.calls).toEqual([]);
    // A sub-name is not the record: it goes upstream.
    t.ask('www.db.example');
    expect(t.host.callsOf('udpSend')).toHaveLength(1);
  });

  it('a --dns-record for host.tslirp.internal replaces the built-in answer', () => {
    const t = harness({ records: ['host.tslirp.internal=192.0.2.99'] });
    expect(dnsOf(t.ask('host.tslirp.internal')[0]).answers.map((a) => a.data)).toEqual(['192.0.2.99']);
  });

  it('keeps a local answer within 512 bytes, setting TC when records are left out', () => {
    const records = Array.from({ length: 40 }, (_, i) => `many.test=2001:db8::${(i + 1).toString(16)}`);
    const t = harness({ records });
    const [frame] = t.ask('many.test', 'AAAA');
    expect(frame!.udp!.payload.length).toBeLessThanOrEqual(512);
    const d = dnsOf(frame);
    expect(d.flag_tc).toBe(true);
    expect(d.answers.length).toBe(Math.floor((512 - 12 - (11 + 4)) / 28));
  });

  it('forwards a local name asked in another class', () => {
    const t = harness();
    t.guestSendsRaw(dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'TXT', class: 'CH', name: 'host.tslirp.internal' }] }));
    expect(t.host.callsOf('udpSend')).toHaveLength(1);
  });
});

describe('dns/forwarder: malformed queries and limits', () => {
  it('answers FORMERR for no question, two questions or a broken name; NOTIMP for other opcodes', () => {
    const t = harness();
    const noQuestion = query('a.test');
    put16(noQuestion, 4, 0);
    expect(dnsOf(t.guestSendsRaw(noQuestion)[0])).toMatchObject({ id: 0x1234, rcode: 'FORMERR', flag_qr: true });
    const two = dnsPacket.encode({ type: 'query', id: 2, questions: [{ type: 'A', name: 'a.test' }, { type: 'A', name: 'b.test' }] });
    expect(dnsOf(t.guestSendsRaw(two)[0])).toMatchObject({ id: 2, rcode: 'FORMERR' });
    const broken = query('a.test').subarray(0, 16);
    expect(dnsOf(t.guestSendsRaw(broken)[0])).toMatchObject({ rcode: 'FORMERR' });
    const update = query('a.test');
    put16(update, 2, 5 << 11); // opcode UPDATE
    const r = t.guestSendsRaw(update)[0]!.udp!.payload;
    expect(u16(r, 2) & 0xf).toBe(4);
    expect((u16(r, 2) >>> 11) & 0xf).toBe(5);
    expect(t.stack.counters.get('dns.bad-question-count')).toBe(2);
    expect(t.stack.counters.get('dns.opcode-unsupported')).toBe(1);
    expect(t.host.calls).toEqual([]);
  });

  it('drops runts and responses without answering', () => {
    const t = harness();
    expect(t.guestSendsRaw(new Uint8Array(11))).toEqual([]);
    const response = query('a.test');
    put16(response, 2, 0x8000);
    expect(t.guestSendsRaw(response)).toEqual([]);
    expect(t.stack.counters.get('dns.truncated')).toBe(1);
    expect(t.stack.counters.get('dns.response-from-guest')).toBe(1);
  });

  it('answers FORMERR to a query larger than MAX_QUERY_BYTES', () => {
    const t = harness();
    const big = new Uint8Array(MAX_QUERY_BYTES + 1);
    big.set(query('a.test'));
    expect(dnsOf(t.guestSendsRaw(big)[0])).toMatchObject({ rcode: 'FORMERR' });
    expect(t.stack.counters.get('dns.query-too-big')).toBe(1);
  });

  it('handles a question that is a compression pointer into the header: FORMERR when local, header-only SERVFAIL when forwarded', () => {
    const t = harness({ records: ['a.b=192.0.2.1'] });
    // The header's first five bytes spell the name "a.b" (01 61 01 62 00) and QDCOUNT is 1;
    // the question's name is a pointer to offset 0, which the parser accepts (it points back).
    const local = new Uint8Array([0x01, 0x61, 0x01, 0x62, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x00, 0, 1, 0, 1]);
    const r = t.guestSendsRaw(local);
    expect(dnsOf(r[0])).toMatchObject({ id: 0x0161, rcode: 'FORMERR', questions: [] });
    expect(t.stack.counters.get('dns.compressed-question')).toBe(1);
    // ID 0x0009: byte 0 is 0, so the pointer names the root, which goes upstream.
    const root = new Uint8Array([0x00, 0x09, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x00, 0, 2, 0, 1]);
    expect(t.guestSendsRaw(root)).toEqual([]);
    expect(t.host.callsOf('udpSend')).toHaveLength(1);
    t.clock.advance(QUERY_DEADLINE_MS);
    t.stack.advance();
    expect(dnsOf(t.take()[0])).toMatchObject({ id: 9, rcode: 'SERVFAIL', questions: [] });
    expect(t.stack.counters.get('stack.internal-error')).toBe(0);
  });

  it('drops a repeated query while it is pending, and bounds pending queries per guest', () => {
    const t = harness();
    t.ask('a.test', 'A', 5, 30000);
    t.ask('a.test', 'A', 5, 30000);
    expect(t.host.callsOf('udpSend')).toHaveLength(1);
    expect(t.stack.counters.get('dns.duplicate-query')).toBe(1);
    for (let i = 1; i <= MAX_PENDING_PER_GUEST + 10; i++) t.ask(`n${i}.test`, 'A', i, 30001);
    expect(t.host.callsOf('udpSend')).toHaveLength(MAX_PENDING_PER_GUEST);
    expect(t.stack.counters.get('dns.too-many-pending')).toBe(11);
    // After the deadline everything pending got SERVFAIL and new queries go out again.
    t.clock.advance(QUERY_DEADLINE_MS);
    t.stack.advance();
    expect(t.take()).toHaveLength(MAX_PENDING_PER_GUEST);
    t.ask('again.test', 'A', 1, 30002);
    expect(t.host.callsOf('udpSend').length).toBeGreaterThan(MAX_PENDING_PER_GUEST);
  });

  it('never throws on arbitrary bytes to port 53 or from an upstream', () => {
    const t = harness({ records: ['r.test=192.0.2.1'] });
    t.ask('seed.test');
    const [flow] = t.lastUpstream();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, fromUpstream) => {
        if (fromUpstream) t.stack.udpReceived(flow, bytes);
        else t.guestSendsRaw(bytes);
        t.take();
      }),
      { numRuns: 2000 },
    );
    // Header-valid queries with random bodies, to reach the question parser.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (body) => {
        const msg = new Uint8Array(12 + body.length);
        put16(msg, 0, 1);
        put16(msg, 4, 1);
        msg.set(body, 12);
        t.guestSendsRaw(msg);
        t.take();
      }),
      { numRuns: 2000 },
    );
    expect(t.stack.counters.get('stack.internal-error')).toBe(0);
    expect(t.stack.lastError).toBeUndefined();
  });
});

describe('dns/records: --dns-record', () => {
  it('parses A and AAAA records and normalizes the name', () => {
    expect(parseDnsRecordOption('Db.Example.=192.0.2.10')).toEqual({ name: 'db.example', type: 1, rdata: new Uint8Array([192, 0, 2, 10]) });
    const v6 = parseDnsRecordOption('v6.test=2001:db8::1') as DnsStaticRecord;
    expect(v6.type).toBe(28);
    expect(Array.from(v6.rdata)).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });
  it('explains what is wrong', () => {
    expect(parseDnsRecordOption('nothing')).toMatch(/NAME=ADDR/);
    expect(parseDnsRecordOption('=1.2.3.4')).toMatch(/NAME=ADDR/);
    expect(parseDnsRecordOption('bad_name!=1.2.3.4')).toMatch(/not a valid DNS name/);
    expect(parseDnsRecordOption('a.test=1.2.3')).toMatch(/'1\.2\.3' is not an IPv4 address .*nor an IPv6 address/);
    expect(parseDnsRecordOption('a.test=010.0.0.1')).toMatch(/no leading zeros/); // inet_aton would read 8.0.0.1
    expect(parseDnsRecordOption('a.test=fe80::1%eth0')).toMatch(/neither/);
  });
});
