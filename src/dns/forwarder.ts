/**
 * The DNS server at the guest's DNS address (`config.dns`, 10.0.2.3), UDP port 53: a few
 * names answered locally, everything else relayed as raw messages to upstream resolvers.
 *
 * Theory of operation
 * -------------------
 * A guest query is checked (header, exactly one question, RFC 1035 §4.1) and then:
 * - answered here when its name is local: `host.tslirp.internal` (the gateway, `config.host`,
 *   which reaches the host's loopback, and with IPv6 on `config.ipv6.host` as its AAAA) and the static records of `--dns-record NAME=ADDR`
 *   (A and AAAA). A local name asked for a type it has no record of gets NODATA (NOERROR with
 *   no answer, RFC 2308 §2.2); any other name under `tslirp.internal` gets NXDOMAIN, so our
 *   private zone never leaks upstream. Answers are built here: the question copied, the
 *   records appended, AA set, TTL `LOCAL_TTL_S`.
 * - otherwise forwarded untouched except for its ID: the query gets a fresh random ID (from
 *   the injected Random, unique among pending queries) and goes to the first upstream. The
 *   upstream's answer is matched by ID and question (name case-insensitively, type, class),
 *   gets the guest's ID back and goes to the guest from 10.0.2.3:53 byte for byte otherwise —
 *   TC, EDNS, DNSSEC records, any type (AAAA, MX, TXT, SRV…) pass as they are, so a truncated
 *   answer makes the guest retry over TCP as it would with any server (RFC 7766 §5).
 *
 * Upstreams (`setUpstreams`): from resolv.conf or `--dns-upstream`, tried in order. Each has
 * one host UDP socket, connected (`Host.udpOpen`), opened on first use and reused for every
 * query, bound to the network's `--outbound` (`--outbound6`) address when it has one; its
 * FlowId comes from the NAT table's allocator, but it is not a NAT flow. A socket
 * error (ECONNREFUSED: nothing listens) closes that socket (reopened on next use) and moves
 * its waiting queries on at once.
 *
 * Timeouts: a query waits `UPSTREAM_TIMEOUT_MS` (2 s) for an upstream, then is re-sent, with
 * the same ID, to the next upstream (cycling back to the first after the last); an answer
 * from any of them is taken. `QUERY_DEADLINE_MS` (5 s) after the guest asked, or as soon as
 * every upstream has failed with a socket error, the guest gets SERVFAIL. So the guest always
 * hears back within 5 s (plus the shell's timer latency); glibc's resolver waits 5 s per try
 * by default, so it sees our SERVFAIL before retrying on its own.
 *
 * Refusals and failures (each counted under its Drop name in `counters`; what went well, and
 * re-sends, are in `stats`):
 * - shorter than a header, or a response (QR set) sent to us: dropped, never answered.
 * - more than `MAX_QUERY_BYTES`, not exactly one question, or a question that does not
 *   parse: FORMERR. An opcode other than QUERY: NOTIMP.
 * - no upstream configured: SERVFAIL ('dns.no-upstream'); we chose SERVFAIL over REFUSED
 *   because nothing is wrong with the query and the resolver may come back.
 * - more than `MAX_PENDING_PER_GUEST` pending queries from one guest address, or
 *   `MAX_PENDING` in all: dropped (the guest retries). A query repeated while pending (same
 *   guest address, port and ID) is dropped as a duplicate.
 * - upstream answers that match no pending query, or are not responses: dropped.
 *
 * DNS over TCP (port 53, RFC 7766) is not served here: the TCP engine connects it to the first
 * upstream resolver (`src/nat/policy.ts`, as libslirp does), so local names are answered over
 * UDP only.
 *
 * Not done: caching, IPv6 upstreams, DNS64.
 * References: RFC 1035 §4.1 (format), §7.3 (matching responses); RFC 5452 §9.2 (random IDs);
 * RFC 2308 §2 (NXDOMAIN/NODATA); RFC 2181 §9 (TC); RFC 9619 (QDCOUNT is 1).
 */
import { ipv6Bytes, type Endpoint, type FlowId, type IpAddr, type IpPair } from '../net/addr.js';
import type { Host, ToGuest } from '../net/seams.js';
import { IP_PROTO } from '../ipv4/wire.js';
import { pseudoSumIp } from '../ipv6/wire.js';
import { udpLength, writeUdp, type Udp } from '../udp/wire.js';
import { put16, put32 } from '../util/bytes.js';
import type { Random } from '../util/clock.js';
import { hostErrno, type Drop } from '../util/drops.js';
import { DNS_HEADER_LEN, parseDnsHeader, parseDnsQuestion, type DnsHeader, type DnsQuestion } from './wire.js';
import { HOST_NAME, LOCAL_ZONE, normalizeDnsName, RR_CLASS, RR_TYPE, type DnsStaticRecord } from './records.js';

export const DNS_PORT = 53;
/** How long one upstream gets before the query goes to the next. */
export const UPSTREAM_TIMEOUT_MS = 2_000;
/** The guest gets an answer or SERVFAIL within this long after asking. */
export const QUERY_DEADLINE_MS = 5_000;
/** Pending (forwarded, unanswered) queries per guest address. */
export const MAX_PENDING_PER_GUEST = 128;
/** Pending queries in all (one stack). Bounds memory at MAX_PENDING × MAX_QUERY_BYTES. */
export const MAX_PENDING = 512;
/** Largest query accepted: 1232 bytes, the EDNS buffer size of DNS Flag Day 2020; real queries are far smaller. */
export const MAX_QUERY_BYTES = 1232;
/** Upstreams beyond this many are ignored (glibc reads 3 from resolv.conf). */
export const MAX_UPSTREAMS = 8;
/** TTL of local answers. */
export const LOCAL_TTL_S = 60;
/** A local answer to a guest without EDNS must fit the classic limit (RFC 1035 §4.2.1); more records set TC. */
const LOCAL_ANSWER_MAX_BYTES = 512;

/** Response codes (RFC 1035 §4.1.1). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** What the forwarder did, for logs and the control API (refusals are in `counters`). */
export interface DnsStats {
  /** Well-formed queries received. */
  queries: number;
  answeredLocally: number;
  forwarded: number;
  /** Upstream answers passed on to the guest. */
  answersFromUpstream: number;
  /** SERVFAIL answers sent (timeouts, failed or missing upstreams). */
  servfail: number;
  /** Re-sends after an upstream timeout or socket error. */
  retries: number;
  /** Time from a query's arrival to its upstream answer: counts per DNS_LATENCY_BUCKETS_MS bound (cumulative, as Prometheus buckets), their sum and count. */
  readonly upstreamLatencyBuckets: number[];
  upstreamLatencySumMs: number;
  upstreamLatencyCount: number;
}

/** Upper bounds (ms) of the upstream latency buckets in DnsStats. */
export const DNS_LATENCY_BUCKETS_MS: readonly number[] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

export interface DnsForwarderDeps {
  readonly host: Host;
  /** The guest side: config (dns, host addresses), counters, sendIpv4. */
  readonly guest: ToGuest;
  readonly random: Random;
  /** Hands out FlowIds that never collide with the NAT table's (FlowTable.allocateId). */
  readonly allocateId: () => FlowId;
  readonly records?: readonly DnsStaticRecord[];
  readonly upstreams?: readonly Endpoint[];
}

interface Upstream {
  readonly endpoint: Endpoint;
  /** The open socket's flow, or undefined until first use / after an error. */
  flow: FlowId | undefined;
}

interface Pending {
  /** The ID the upstreams see; key of #pending. */
  readonly upstreamId: number;
  readonly guestId: number;
  readonly guest: Endpoint;
  readonly dupKey: string;
  /** Normalized question, for matching the answer (RFC 1035 §7.3). */
  readonly qname: string;
  readonly qtype: number;
  readonly qclass: number;
  /** The query as sent upstream (a copy, with upstreamId); never mutated after creation. */
  readonly query: Uint8Array;
  readonly startMs: number;
  /** Index in #upstreams of the last send. */
  upstream: number;
  /** Sends since the last change of upstream list. */
  attempts: number;
  deadlineMs: number;
}

const epKey = (e: Endpoint): string => `${e.addr}:${e.port}`;

export class DnsForwarder {
  readonly stats: DnsStats = {
    queries: 0, answeredLocally: 0, forwarded: 0, answersFromUpstream: 0, servfail: 0, retries: 0,
    upstreamLatencyBuckets: DNS_LATENCY_BUCKETS_MS.map(() => 0), upstreamLatencySumMs: 0, upstreamLatencyCount: 0,
  };
  readonly #host: Host;
  readonly #guest: ToGuest;
  readonly #random: Random;
  readonly #allocateId: () => FlowId;
  /** Local names → their records (possibly none of the asked type). */
  readonly #records = new Map<string, DnsStaticRecord[]>();
  #upstreams: Upstream[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #byGuestKey = new Map<string, Pending>();
  readonly #perGuest = new Map<IpAddr, number>();
  /** Earliest pending deadline; recomputed when #deadlineDirty. */
  #deadline: number | undefined;
  #deadlineDirty = false;

  constructor(deps: DnsForwarderDeps) {
    this.#host = deps.host;
    this.#guest = deps.guest;
    this.#random = deps.random;
    this.#allocateId = deps.allocateId;
    this.setRecords(deps.records ?? []);
    this.setUpstreams(deps.upstreams ?? [], 0);
  }

  /** The static records (`--dns-record`), replacing those before (a reload); queries from now on get them. */
  setRecords(records: readonly DnsStaticRecord[]): void {
    this.#records.clear();
    for (const r of records) {
      const list = this.#records.get(r.name) ?? [];
      list.push(r);
      this.#records.set(r.name, list);
    }
    // Static records for the host name replace the built-in one.
    if (!this.#records.has(HOST_NAME)) {
      const h = this.#guest.config.host;
      const v6 = this.#guest.config.ipv6;
      this.#records.set(HOST_NAME, [
        { name: HOST_NAME, type: RR_TYPE.A, rdata: new Uint8Array([h >>> 24, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff]) },
        ...(v6 === undefined ? [] : [{ name: HOST_NAME, type: RR_TYPE.AAAA, rdata: ipv6Bytes(v6.host) }]),
      ]);
    }
  }

  /** Number of forwarded queries waiting for an upstream. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** The upstreams in the order they are tried. */
  upstreams(): Endpoint[] {
    return this.#upstreams.map((u) => u.endpoint);
  }

  /** True when `flow` is one of the upstream sockets (route its HostEvents here). */
  owns(flow: FlowId): boolean {
    return this.#upstreams.some((u) => u.flow === flow);
  }

  /**
   * Replaces the upstream list (resolv.conf changed, or configuration). Sockets to upstreams
   * still listed are kept; the others are closed, and queries waiting on them go to the new
   * first upstream at once (or get SERVFAIL when the list is empty).
   */
  setUpstreams(endpoints: readonly Endpoint[], nowMs: number): void {
    const seen = new Set<string>();
    const next: Upstream[] = [];
    for (const e of endpoints) {
      const k = epKey(e);
      if (seen.has(k)) continue;
      seen.add(k);
      if (next.length >= MAX_UPSTREAMS) {
        this.#guest.counters.count('dns.too-many-upstreams');
        continue;
      }
      const old = this.#upstreams.find((u) => epKey(u.endpoint) === k);
      next.push(old ?? { endpoint: { addr: e.addr, port: e.port }, flow: undefined });
    }
    const previous = this.#upstreams;
    for (const u of previous) if (!next.includes(u) && u.flow !== undefined) this.#host.close(u.flow);
    this.#upstreams = next;
    for (const p of [...this.#pending.values()]) {
      const was = previous[p.upstream];
      const at = was === undefined ? -1 : next.indexOf(was);
      p.attempts = 0;
      if (at >= 0) {
        p.upstream = at;
        continue;
      }
      if (next.length === 0) this.#fail(p, 'dns.no-upstream');
      else this.#sendUpstream(p, 0, nowMs);
    }
  }

  /** A guest datagram `u` (in `p`) to config.dns:53 or, over IPv6, config.ipv6.dns:53 (the answer comes from the address asked). */
  query(p: IpPair, u: Udp, nowMs: number): void {
    const msg = u.payload;
    const h = parseDnsHeader(msg);
    if (typeof h === 'string') return this.#guest.counters.count(h);
    if (h.qr) return this.#guest.counters.count('dns.response-from-guest');
    const guest: Endpoint = { addr: p.src, port: u.srcPort };
    if (msg.length > MAX_QUERY_BYTES) return this.#refuse(guest, h, RCODE.FORMERR, 'dns.query-too-big');
    if (h.opcode !== 0) return this.#refuse(guest, h, RCODE.NOTIMP, 'dns.opcode-unsupported');
    if (h.qdcount !== 1) return this.#refuse(guest, h, RCODE.FORMERR, 'dns.bad-question-count');
    const q = parseDnsQuestion(msg);
    if (typeof q === 'string') return this.#refuse(guest, h, RCODE.FORMERR, q);
    this.stats.queries++;
    if (this.#answerLocally(guest, msg, h, q)) return;
    this.#forward(guest, msg, h, q, nowMs);
  }

  #latency(ms: number): void {
    const s = this.stats;
    s.upstreamLatencySumMs += ms;
    s.upstreamLatencyCount++;
    for (let i = 0; i < DNS_LATENCY_BUCKETS_MS.length; i++) if (ms <= DNS_LATENCY_BUCKETS_MS[i]!) s.upstreamLatencyBuckets[i]!++;
  }

  /** A datagram from an upstream socket. */
  upstreamReply(flow: FlowId, data: Uint8Array, nowMs: number): void {
    const counters = this.#guest.counters;
    if (!this.owns(flow)) return counters.count('dns.unknown-flow');
    const h = parseDnsHeader(data);
    if (typeof h === 'string') return counters.count('dns.upstream-truncated');
    if (!h.qr) return counters.count('dns.upstream-not-response');
    const p = this.#pending.get(h.id);
    if (p === undefined) return counters.count('dns.unmatched-reply');
    // An error answer may carry no question (RFC 1035 §4.1.1 leaves it open); the ID then decides.
    if (h.qdcount !== 0) {
      const q = parseDnsQuestion(data);
      if (typeof q === 'string' || q.qtype !== p.qtype || q.qclass !== p.qclass || normalizeDnsName(q.name) !== p.qname)
        return counters.count('dns.unmatched-reply');
    }
    this.#remove(p);
    const answer = data.slice();
    put16(answer, 0, p.guestId);
    this.stats.answersFromUpstream++;
    this.#latency(Math.max(0, nowMs - p.startMs));
    this.#toGuest(p.guest, answer);
  }

  /** A socket error on an upstream: that socket is dropped and its queries move on. */
  upstreamError(flow: FlowId, code: string, nowMs: number): void {
    const i = this.#upstreams.findIndex((u) => u.flow === flow);
    if (i < 0) return;
    this.#guest.counters.count(`dns.upstream-${hostErrno(code)}`);
    this.#host.close(flow);
    this.#upstreams[i]!.flow = undefined;
    const n = this.#upstreams.length;
    for (const p of [...this.#pending.values()]) {
      if (p.upstream !== i) continue;
      if (p.attempts >= n) this.#fail(p, 'dns.upstreams-failed');
      else {
        this.stats.retries++;
        this.#sendUpstream(p, (i + 1) % n, nowMs);
      }
    }
  }

  /** Runs the timeouts due by `nowMs`. */
  advance(nowMs: number): void {
    const d = this.nextDeadline();
    if (d === undefined || d > nowMs) return;
    for (const p of [...this.#pending.values()]) {
      if (p.deadlineMs > nowMs) continue;
      if (nowMs >= p.startMs + QUERY_DEADLINE_MS || this.#upstreams.length === 0) this.#fail(p, 'dns.upstream-timeout');
      else {
        this.stats.retries++;
        this.#sendUpstream(p, (p.upstream + 1) % this.#upstreams.length, nowMs);
      }
    }
  }

  /** The earliest timeout, or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    if (this.#deadlineDirty) {
      this.#deadlineDirty = false;
      let d: number | undefined;
      for (const p of this.#pending.values()) if (d === undefined || p.deadlineMs < d) d = p.deadlineMs;
      this.#deadline = d;
    }
    return this.#deadline;
  }

  /** Closes every upstream socket and forgets pending queries (the session ends). */
  closeAll(): void {
    for (const u of this.#upstreams) {
      if (u.flow !== undefined) this.#host.close(u.flow);
      u.flow = undefined;
    }
    this.#pending.clear();
    this.#byGuestKey.clear();
    this.#perGuest.clear();
    this.#deadline = undefined;
    this.#deadlineDirty = false;
  }

  #forward(guest: Endpoint, msg: Uint8Array, h: DnsHeader, q: DnsQuestion, nowMs: number): void {
    const counters = this.#guest.counters;
    if (this.#upstreams.length === 0) {
      this.stats.servfail++;
      return this.#refuse(guest, h, RCODE.SERVFAIL, 'dns.no-upstream');
    }
    const dupKey = `${guest.addr}:${guest.port}:${h.id}`;
    if (this.#byGuestKey.has(dupKey)) return counters.count('dns.duplicate-query');
    const mine = this.#perGuest.get(guest.addr) ?? 0;
    if (mine >= MAX_PENDING_PER_GUEST || this.#pending.size >= MAX_PENDING) return counters.count('dns.too-many-pending');
    const upstreamId = this.#freshId();
    const query = msg.slice();
    put16(query, 0, upstreamId);
    const p: Pending = {
      upstreamId,
      guestId: h.id,
      guest,
      dupKey,
      qname: normalizeDnsName(q.name),
      qtype: q.qtype,
      qclass: q.qclass,
      query,
      startMs: nowMs,
      upstream: 0,
      attempts: 0,
      deadlineMs: nowMs + UPSTREAM_TIMEOUT_MS,
    };
    this.#pending.set(upstreamId, p);
    this.#byGuestKey.set(dupKey, p);
    this.#perGuest.set(guest.addr, mine + 1);
    this.stats.forwarded++;
    this.#sendUpstream(p, 0, nowMs);
  }

  /** Sends `p` to upstream `i` (opening its socket if needed) and arms its timeout. */
  #sendUpstream(p: Pending, i: number, nowMs: number): void {
    const u = this.#upstreams[i]!;
    if (u.flow === undefined) {
      u.flow = this.#allocateId();
      // From the network's public address (`--outbound`, `--outbound6`), as its NAT's flows, so
      // that the network's DNS traffic leaves from it too (passt's `--outbound` likewise).
      const from = typeof u.endpoint.addr === 'number' ? this.#guest.config.outbound : this.#guest.config.outbound6;
      if (from === undefined) this.#host.udpOpen(u.flow, u.endpoint);
      else this.#host.udpOpen(u.flow, u.endpoint, { addr: from, port: 0 });
    }
    p.upstream = i;
    p.attempts++;
    p.deadlineMs = Math.min(nowMs + UPSTREAM_TIMEOUT_MS, p.startMs + QUERY_DEADLINE_MS);
    // A deadline can move later here: the cached minimum is recomputed on demand.
    this.#deadlineDirty = true;
    this.#host.udpSend(u.flow, p.query);
  }

  /** A random ID no pending query uses (RFC 5452 §9.2); there are at most MAX_PENDING < 65536. */
  #freshId(): number {
    for (let i = 0; i < 16; i++) {
      const id = this.#random.u32() & 0xffff;
      if (!this.#pending.has(id)) return id;
    }
    const start = this.#random.u32() & 0xffff;
    for (let k = 0; k < 0x10000; k++) {
      const id = (start + k) & 0xffff;
      if (!this.#pending.has(id)) return id;
    }
    throw new Error('unreachable: more pending DNS queries than IDs');
  }

  #remove(p: Pending): void {
    this.#pending.delete(p.upstreamId);
    this.#byGuestKey.delete(p.dupKey);
    const n = (this.#perGuest.get(p.guest.addr) ?? 1) - 1;
    if (n <= 0) this.#perGuest.delete(p.guest.addr);
    else this.#perGuest.set(p.guest.addr, n);
    if (this.#deadline === undefined || p.deadlineMs <= this.#deadline) this.#deadlineDirty = true;
  }

  /** Answers a pending query with SERVFAIL (its own question echoed) and forgets it. */
  #fail(p: Pending, why: Drop): void {
    this.#remove(p);
    this.#guest.counters.count(why);
    this.stats.servfail++;
    // The guest's own bytes again: a question that points into the header reads them.
    const asked = p.query.slice();
    put16(asked, 0, p.guestId);
    const h = parseDnsHeader(asked);
    const q = parseDnsQuestion(asked);
    if (typeof h === 'string' || typeof q === 'string') return; // cannot happen: it parsed when it came in
    if (!questionIsPlain(asked, q)) return this.#refuse(p.guest, h, RCODE.SERVFAIL, 'dns.servfail-without-question');
    this.#toGuest(p.guest, buildAnswer(asked, h, q, RCODE.SERVFAIL, [], false));
  }

  /** An error answer with no question section, counted under `why`. */
  #refuse(guest: Endpoint, h: DnsHeader, rcode: number, why: Drop): void {
    this.#guest.counters.count(why);
    const out = new Uint8Array(DNS_HEADER_LEN);
    put16(out, 0, h.id);
    put16(out, 2, flagsOf(h, rcode, false));
    this.#toGuest(guest, out);
  }

  /** Answers from the local names; false when the query is not about one. */
  #answerLocally(guest: Endpoint, msg: Uint8Array, h: DnsHeader, q: DnsQuestion): boolean {
    if (q.qclass !== RR_CLASS.IN && q.qclass !== RR_CLASS.ANY) return false;
    const name = normalizeDnsName(q.name);
    const records = this.#records.get(name);
    let rcode: number = RCODE.NOERROR;
    let answers: DnsStaticRecord[] = [];
    if (records !== undefined) answers = records.filter((r) => q.qtype === RR_TYPE.ANY || r.type === q.qtype);
    else if (name === LOCAL_ZONE || name.endsWith(`.${LOCAL_ZONE}`)) rcode = RCODE.NXDOMAIN;
    else return false;
    if (!questionIsPlain(msg, q)) {
      this.#refuse(guest, h, RCODE.FORMERR, 'dns.compressed-question');
      return true;
    }
    this.stats.answeredLocally++;
    this.#toGuest(guest, buildAnswer(msg, h, q, rcode, answers, true));
    return true;
  }

  #toGuest(guest: Endpoint, message: Uint8Array): void {
    const v6 = this.#guest.config.ipv6;
    const dns = typeof guest.addr === 'number' ? this.#guest.config.dns : v6?.dns;
    if (dns === undefined) return;
    const out: Udp = { srcPort: DNS_PORT, dstPort: guest.port, payload: message };
    const pseudo = pseudoSumIp(dns, guest.addr, IP_PROTO.UDP);
    this.#guest.sendIp(dns, guest.addr, IP_PROTO.UDP, udpLength(out), (into, at) => writeUdp(out, pseudo, into, at));
  }
}

/** The FLAGS word of an answer to `h`: QR, the opcode and RD echoed, RA set (RFC 1035 §4.1.1). */
function flagsOf(h: DnsHeader, rcode: number, authoritative: boolean): number {
  return 0x8000 | ((h.opcode & 0xf) << 11) | (authoritative ? 0x0400 : 0) | (h.rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf);
}

/** True when the question's name has no compression pointer, so its bytes can be copied as they are. */
function questionIsPlain(msg: Uint8Array, q: DnsQuestion): boolean {
  let at = DNS_HEADER_LEN;
  while (at < q.end - 4) {
    const len = msg[at]!;
    if ((len & 0xc0) !== 0) return false;
    if (len === 0) return at + 1 === q.end - 4;
    at += 1 + len;
  }
  return false;
}

/**
 * An answer to the query `msg` (whose question section is plain): header, the question
 * copied, then `records` with a pointer to the question's name (RFC 1035 §4.1.4). Records
 * that would take the message past 512 bytes are left out and TC is set (RFC 2181 §9).
 */
function buildAnswer(msg: Uint8Array, h: DnsHeader, q: DnsQuestion, rcode: number, records: readonly DnsStaticRecord[], authoritative: boolean): Uint8Array {
  const questionEnd = q.end;
  let size = questionEnd;
  let fit = 0;
  for (const r of records) {
    if (size + 12 + r.rdata.length > LOCAL_ANSWER_MAX_BYTES) break;
    size += 12 + r.rdata.length;
    fit++;
  }
  const out = new Uint8Array(size);
  put16(out, 0, h.id);
  put16(out, 2, flagsOf(h, rcode, authoritative) | (fit < records.length ? 0x0200 : 0));
  put16(out, 4, 1);
  put16(out, 6, fit);
  out.set(msg.subarray(DNS_HEADER_LEN, questionEnd), DNS_HEADER_LEN);
  let at = questionEnd;
  for (const r of records.slice(0, fit)) {
    put16(out, at, 0xc000 | DNS_HEADER_LEN);
    put16(out, at + 2, r.type);
    put16(out, at + 4, RR_CLASS.IN);
    put32(out, at + 6, LOCAL_TTL_S);
    put16(out, at + 10, r.rdata.length);
    out.set(r.rdata, at + 12);
    at += 12 + r.rdata.length;
  }
  return out;
}
