/**
 * DHCPv6 (RFC 8415) at the gateway.
 *
 * Stateless (§6.1, §18.3.6), always: an Information-Request gets a Reply carrying the DNS
 * server (RFC 3646 option 23) and the search list (option 24), so a client told by the router
 * advertisement's O flag to ask for "other configuration" (NetworkManager, systemd-networkd,
 * `dhclient -6 -S`) gets them even without RDNSS support.
 *
 * Stateful (§6.2, §18.3), with `--ipv6-dhcp stateful` (`Dhcp6Leases` given): non-temporary
 * addresses (IA_NA) from PREFIX::100 to PREFIX::1ff. Solicit → Advertise (the address held
 * for ADVERTISE_HOLD_MS), or Reply at once when the client asked for Rapid Commit (§18.3.1);
 * Request → Reply binding it; Renew and Rebind → the binding extended, or NoBinding; Release →
 * bindings dropped, Success; Confirm → Success when every address is in the prefix, else
 * NotOnLink (§18.3.3). A binding belongs to the client's DUID and the IA's IAID; a client
 * that asks again gets the same address. The table is bounded by the pool (256) and by the
 * leases one session's clients hold (`--max-session-leases`, as for DHCPv4): beyond either,
 * an IA_NA with status NoAddrsAvail (§18.3.1). Valid and preferred lifetime are the lease
 * time (`--leasetime`), T1 half and T2 0.8 of it (§21.4). Only the first IA_NA of a message
 * is served (clients send one: dhclient, dhcpcd, NetworkManager); IA_TA and IA_PD are not
 * (a message with only those is answered without them). Decline is counted and ignored.
 * Without `--ipv6-dhcp stateful` those messages are counted ('dhcp6.stateful-unsupported')
 * and unanswered: such a client keeps its SLAAC address.
 *
 * Messages are parsed with every option length checked against the message; a message the
 * server must discard (§16: a Solicit with a server identifier or without a client's, a
 * Request/Renew/Release for another server, an Information-Request with an IA option) is
 * counted and dropped.
 */
import type { Ipv6Addr } from '../net/addr.js';
import { ipv6Bytes, ipv6FromBytes } from '../net/addr.js';
import { put16, put32, u16, u32 } from '../util/bytes.js';
import type { Drop } from '../util/drops.js';

export const DHCP6_CLIENT_PORT = 546;
export const DHCP6_SERVER_PORT = 547;

/** RFC 8415 §7.3 message types used here. */
export const DHCP6_MSG = { SOLICIT: 1, ADVERTISE: 2, REQUEST: 3, CONFIRM: 4, RENEW: 5, REBIND: 6, REPLY: 7, RELEASE: 8, DECLINE: 9, INFORMATION_REQUEST: 11 } as const;

/** RFC 8415 §21 and RFC 3646 option codes used here. */
export const DHCP6_OPT = {
  CLIENTID: 1, SERVERID: 2, IA_NA: 3, IA_TA: 4, IAADDR: 5, ORO: 6, STATUS_CODE: 13, RAPID_COMMIT: 14, IA_PD: 25, DNS_SERVERS: 23, DOMAIN_LIST: 24,
  INFORMATION_REFRESH_TIME: 32,
} as const;

/** RFC 8415 §21.13 status codes used here. */
export const DHCP6_STATUS = { SUCCESS: 0, NO_ADDRS_AVAIL: 2, NO_BINDING: 3, NOT_ON_LINK: 4 } as const;

/** How long an advertised address is held for the client's Request. */
export const ADVERTISE_HOLD_MS = 60_000;
/** The stateful pool: PREFIX::100 to PREFIX::1ff. */
export const POOL6_FIRST = 0x100;
export const POOL6_LAST = 0x1ff;

/** A client message: its type, transaction id and options (views into the message). */
export interface Dhcp6Message {
  readonly type: number;
  readonly transactionId: number;
  /** Option code → its data (the first occurrence). */
  readonly options: ReadonlyMap<number, Uint8Array>;
}

/** Parses a client message (RFC 8415 §8, §21.1): 4-byte header, then TLV options within the message. */
export function parseDhcp6(b: Uint8Array): Dhcp6Message | Drop {
  if (b.length < 4) return 'dhcp6.truncated';
  const options = new Map<number, Uint8Array>();
  for (let at = 4; at < b.length; ) {
    if (at + 4 > b.length) return 'dhcp6.bad-option';
    const code = u16(b, at);
    const len = u16(b, at + 2);
    if (at + 4 + len > b.length) return 'dhcp6.bad-option';
    if (!options.has(code)) options.set(code, b.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return { type: b[0]!, transactionId: (b[1]! << 16) | (b[2]! << 8) | b[3]!, options };
}

/** An IA_NA option's body (RFC 8415 §21.4): IAID, T1, T2 and its IA Address options' addresses. */
export interface IaNa {
  readonly iaid: number;
  readonly addresses: readonly Ipv6Addr[];
}

/** Parses an IA_NA body: 12 bytes, then options within it; IA Address options (§21.6) need 24 bytes. */
export function parseIaNa(d: Uint8Array): IaNa | Drop {
  if (d.length < 12) return 'dhcp6.bad-ia-na';
  const addresses: Ipv6Addr[] = [];
  for (let at = 12; at < d.length; ) {
    if (at + 4 > d.length) return 'dhcp6.bad-ia-na';
    const code = u16(d, at);
    const len = u16(d, at + 2);
    if (at + 4 + len > d.length) return 'dhcp6.bad-ia-na';
    if (code === DHCP6_OPT.IAADDR) {
      if (len < 24) return 'dhcp6.bad-ia-na';
      addresses.push(ipv6FromBytes(d, at + 4));
    }
    at += 4 + len;
  }
  return { iaid: u32(d, 0), addresses };
}

/** One binding: a client's IA_NA and its address. */
export interface Lease6 {
  /** The client's DUID as hex. */
  readonly duid: string;
  readonly iaid: number;
  readonly addr: Ipv6Addr;
  /** Advertised (held for the Request) or bound. */
  readonly state: 'advertised' | 'bound';
  readonly expiresAtMs: number;
  /** The port (a session's link) the client asked through, when known. */
  readonly owner: number | undefined;
}

/**
 * The stateful DHCPv6 bindings of one network: DUID and IAID → an address of the pool.
 * Bounded by the pool; expired bindings are dropped when the table is consulted (no timer).
 */
export class Dhcp6Leases {
  readonly #prefix: Ipv6Addr;
  readonly #maxPerOwner: number;
  readonly #byKey = new Map<string, Lease6>();

  constructor(prefix: Ipv6Addr, maxPerOwner: number) {
    this.#prefix = prefix;
    this.#maxPerOwner = maxPerOwner;
  }

  /** Live bindings. */
  list(nowMs: number): Lease6[] {
    this.#expire(nowMs);
    return [...this.#byKey.values()];
  }

  find(duid: string, iaid: number, nowMs: number): Lease6 | undefined {
    this.#expire(nowMs);
    return this.#byKey.get(`${duid}/${iaid}`);
  }

  /**
   * The client's binding in `state` until `nowMs + ms`: its own address again, else the first
   * free one of the pool. Undefined when the pool is spent or `owner`'s clients hold
   * `maxPerOwner` bindings already.
   */
  assign(duid: string, iaid: number, owner: number | undefined, state: Lease6['state'], ms: number, nowMs: number): Lease6 | undefined {
    this.#expire(nowMs);
    const key = `${duid}/${iaid}`;
    const known = this.#byKey.get(key);
    let addr = known?.addr;
    if (addr === undefined) {
      if (owner !== undefined && [...this.#byKey.values()].filter((l) => l.owner === owner).length >= this.#maxPerOwner) return undefined;
      const taken = new Set([...this.#byKey.values()].map((l) => l.addr));
      for (let i = POOL6_FIRST; i <= POOL6_LAST && addr === undefined; i++) {
        const a = (this.#prefix.slice(0, 28) + i.toString(16).padStart(4, '0')) as Ipv6Addr;
        if (!taken.has(a)) addr = a;
      }
      if (addr === undefined) return undefined;
    }
    const lease: Lease6 = { duid, iaid, addr, state, expiresAtMs: nowMs + ms, owner: known?.owner ?? owner };
    this.#byKey.delete(key);
    this.#byKey.set(key, lease);
    return lease;
  }

  /** Drops the client's binding; false when it had none. */
  release(duid: string, iaid: number): boolean {
    return this.#byKey.delete(`${duid}/${iaid}`);
  }

  #expire(nowMs: number): void {
    for (const [k, l] of this.#byKey) if (l.expiresAtMs <= nowMs) this.#byKey.delete(k);
  }
}

/** DUID-LL (RFC 8415 §11.4) of the server's MAC: type 3, hardware type 1 (Ethernet). */
export const duidOf = (mac: Uint8Array): Uint8Array => new Uint8Array([0, 3, 0, 1, ...mac.subarray(0, 6)]);

/** What the server hands out. */
export interface Dhcp6Config {
  readonly serverMac: Uint8Array;
  readonly dnsServers: readonly Ipv6Addr[];
  readonly searchList: readonly string[];
  /** Stateful: the bindings (`--ipv6-dhcp stateful`); undefined: stateless only. */
  readonly leases?: Dhcp6Leases | undefined;
  /** The network's /64, for Confirm. */
  readonly prefix?: Ipv6Addr | undefined;
  /** Valid and preferred lifetime of a binding (`--leasetime`). */
  readonly leaseTimeS?: number | undefined;
}

/** Where a message came from and when, for stateful answers. */
export interface Dhcp6Context {
  readonly nowMs: number;
  /** The port (a session's link) it came through, when known. */
  readonly owner?: number | undefined;
}

/** The names in DNS wire form, uncompressed (RFC 8415 §10). */
function domainList(names: readonly string[]): number[] {
  const out: number[] = [];
  for (const name of names) {
    for (const label of name.split('.').filter((l) => l !== '')) {
      const bytes = new TextEncoder().encode(label);
      out.push(bytes.length, ...bytes);
    }
    out.push(0);
  }
  return out;
}

/**
 * The answer to a client message, or a Drop saying why none is sent: the Reply to an
 * Information-Request (RFC 8415 §16.12, §18.3.6), and with `c.leases` the stateful answers
 * (see the header). Options the client asked for in its ORO are included; without an ORO, both.
 */
export function answerDhcp6(m: Dhcp6Message, c: Dhcp6Config, ctx: Dhcp6Context = { nowMs: 0 }): Uint8Array | Drop {
  switch (m.type) {
    case DHCP6_MSG.SOLICIT:
    case DHCP6_MSG.REQUEST:
    case DHCP6_MSG.RENEW:
    case DHCP6_MSG.REBIND:
    case DHCP6_MSG.RELEASE:
    case DHCP6_MSG.CONFIRM:
      return c.leases === undefined ? 'dhcp6.stateful-unsupported' : answerStateful(m, c, c.leases, ctx);
    case DHCP6_MSG.DECLINE:
      return 'dhcp6.decline-ignored';
    case DHCP6_MSG.INFORMATION_REQUEST:
      break;
    default:
      return 'dhcp6.ignored-type';
  }
  if (m.options.has(DHCP6_OPT.IA_NA) || m.options.has(DHCP6_OPT.IA_TA) || m.options.has(DHCP6_OPT.IA_PD)) return 'dhcp6.information-request-with-ia';
  const duid = duidOf(c.serverMac);
  const sid = m.options.get(DHCP6_OPT.SERVERID);
  if (sid !== undefined && (sid.length !== duid.length || sid.some((x, i) => x !== duid[i]))) return 'dhcp6.other-server';
  const parts: [number, Uint8Array][] = [[DHCP6_OPT.SERVERID, duid]];
  const cid = m.options.get(DHCP6_OPT.CLIENTID);
  if (cid !== undefined) parts.push([DHCP6_OPT.CLIENTID, cid]);
  return message(DHCP6_MSG.REPLY, m.transactionId, [...parts, ...otherConfig(m, c)]);
}

/** The DNS servers and search list, as the client's ORO asks (without an ORO, both). */
function otherConfig(m: Dhcp6Message, c: Dhcp6Config): [number, Uint8Array][] {
  const oro = m.options.get(DHCP6_OPT.ORO);
  const asked = (code: number): boolean => {
    if (oro === undefined) return true;
    for (let i = 0; i + 1 < oro.length; i += 2) if (u16(oro, i) === code) return true;
    return false;
  };
  const parts: [number, Uint8Array][] = [];
  if (asked(DHCP6_OPT.DNS_SERVERS) && c.dnsServers.length > 0) {
    const d = new Uint8Array(16 * c.dnsServers.length);
    c.dnsServers.forEach((a, i) => ipv6Bytes(a, d, 16 * i));
    parts.push([DHCP6_OPT.DNS_SERVERS, d]);
  }
  if (asked(DHCP6_OPT.DOMAIN_LIST) && c.searchList.length > 0) parts.push([DHCP6_OPT.DOMAIN_LIST, new Uint8Array(domainList(c.searchList))]);
  return parts;
}

/** A Status Code option's body (§21.13): the code and a UTF-8 message. */
function status(code: number, text: string): Uint8Array {
  const t = new TextEncoder().encode(text);
  const b = new Uint8Array(2 + t.length);
  put16(b, 0, code);
  b.set(t, 2);
  return b;
}

/** An IA_NA option's body: IAID, T1, T2, then an IA Address (address, preferred and valid lifetime) or a status. */
function iaNa(iaid: number, t1: number, t2: number, addr: Ipv6Addr | undefined, lifetimeS: number, st?: Uint8Array): Uint8Array {
  const inner: [number, Uint8Array][] = [];
  if (addr !== undefined) {
    const a = new Uint8Array(24);
    ipv6Bytes(addr, a, 0);
    put32(a, 16, lifetimeS);
    put32(a, 20, lifetimeS);
    inner.push([DHCP6_OPT.IAADDR, a]);
  }
  if (st !== undefined) inner.push([DHCP6_OPT.STATUS_CODE, st]);
  const b = new Uint8Array(12 + inner.reduce((n, [, d]) => n + 4 + d.length, 0));
  put32(b, 0, iaid);
  put32(b, 4, t1);
  put32(b, 8, t2);
  writeOptions(inner, b, 12);
  return b;
}

const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** RFC 8415 §16 validation and §18.3 answers for the address-assigning messages. */
function answerStateful(m: Dhcp6Message, c: Dhcp6Config, leases: Dhcp6Leases, ctx: Dhcp6Context): Uint8Array | Drop {
  const duid = duidOf(c.serverMac);
  const cid = m.options.get(DHCP6_OPT.CLIENTID);
  const sid = m.options.get(DHCP6_OPT.SERVERID);
  if (cid === undefined || cid.length < 2) return 'dhcp6.no-client-id';
  const needsOurId = m.type === DHCP6_MSG.REQUEST || m.type === DHCP6_MSG.RENEW || m.type === DHCP6_MSG.RELEASE;
  if (needsOurId ? sid === undefined || !sameBytes(sid, duid) : sid !== undefined) return sid === undefined ? 'dhcp6.no-server-id' : 'dhcp6.other-server';
  const iaText = m.options.get(DHCP6_OPT.IA_NA);
  const ia = iaText === undefined ? undefined : parseIaNa(iaText);
  if (typeof ia === 'string') return ia;
  const client = hexOf(cid);
  const head: [number, Uint8Array][] = [[DHCP6_OPT.SERVERID, duid], [DHCP6_OPT.CLIENTID, cid]];
  const lifetimeS = c.leaseTimeS ?? 86_400;
  const t1 = Math.floor(lifetimeS / 2);
  const t2 = Math.floor(lifetimeS * 0.8);
  const now = ctx.nowMs;
  switch (m.type) {
    case DHCP6_MSG.SOLICIT:
    case DHCP6_MSG.REQUEST: {
      const rapid = m.type === DHCP6_MSG.SOLICIT && m.options.has(DHCP6_OPT.RAPID_COMMIT);
      const commit = m.type === DHCP6_MSG.REQUEST || rapid;
      const type = commit ? DHCP6_MSG.REPLY : DHCP6_MSG.ADVERTISE;
      const parts = [...head];
      if (rapid) parts.push([DHCP6_OPT.RAPID_COMMIT, new Uint8Array(0)]);
      if (ia !== undefined) {
        const lease = leases.assign(client, ia.iaid, ctx.owner, commit ? 'bound' : 'advertised', commit ? lifetimeS * 1000 : ADVERTISE_HOLD_MS, now);
        parts.push([DHCP6_OPT.IA_NA, lease === undefined ? iaNa(ia.iaid, 0, 0, undefined, 0, status(DHCP6_STATUS.NO_ADDRS_AVAIL, 'no addresses available')) : iaNa(ia.iaid, t1, t2, lease.addr, lifetimeS)]);
      }
      return message(type, m.transactionId, [...parts, ...otherConfig(m, c)]);
    }
    case DHCP6_MSG.RENEW:
    case DHCP6_MSG.REBIND: {
      const parts = [...head];
      if (ia !== undefined) {
        const known = leases.find(client, ia.iaid, now);
        const lease = known?.state === 'bound' ? leases.assign(client, ia.iaid, ctx.owner, 'bound', lifetimeS * 1000, now) : undefined;
        parts.push([DHCP6_OPT.IA_NA, lease === undefined ? iaNa(ia.iaid, 0, 0, undefined, 0, status(DHCP6_STATUS.NO_BINDING, 'no binding for this IA')) : iaNa(ia.iaid, t1, t2, lease.addr, lifetimeS)]);
      }
      return message(DHCP6_MSG.REPLY, m.transactionId, [...parts, ...otherConfig(m, c)]);
    }
    case DHCP6_MSG.RELEASE: {
      if (ia !== undefined) leases.release(client, ia.iaid);
      return message(DHCP6_MSG.REPLY, m.transactionId, [...head, [DHCP6_OPT.STATUS_CODE, status(DHCP6_STATUS.SUCCESS, 'released')]]);
    }
    default: {
      // Confirm (§18.3.3): no addresses, no answer; otherwise whether they are on this link.
      if (ia === undefined || ia.addresses.length === 0) return 'dhcp6.confirm-without-addresses';
      const prefix = c.prefix?.slice(0, 16);
      const onLink = ia.addresses.every((a) => a.slice(0, 16) === prefix);
      const st = onLink ? status(DHCP6_STATUS.SUCCESS, 'on link') : status(DHCP6_STATUS.NOT_ON_LINK, 'not on this link');
      return message(DHCP6_MSG.REPLY, m.transactionId, [...head, [DHCP6_OPT.STATUS_CODE, st]]);
    }
  }
}

/** Writes options as TLVs at `into[at]`. */
function writeOptions(parts: readonly [number, Uint8Array][], into: Uint8Array, at: number): void {
  for (const [code, d] of parts) {
    put16(into, at, code);
    put16(into, at + 2, d.length);
    into.set(d, at + 4);
    at += 4 + d.length;
  }
}

/** A server message: type, transaction id, options. */
function message(type: number, transactionId: number, parts: readonly [number, Uint8Array][]): Uint8Array {
  const out = new Uint8Array(4 + parts.reduce((n, [, d]) => n + 4 + d.length, 0));
  out[0] = type;
  out[1] = (transactionId >>> 16) & 0xff;
  out[2] = (transactionId >>> 8) & 0xff;
  out[3] = transactionId & 0xff;
  writeOptions(parts, out, 4);
  return out;
}
