/**
 * The egress policy: which host destinations a guest's outbound flows may reach.
 *
 * Theory of operation
 * -------------------
 * Rules come from `--egress-allow CIDR[,port=P[-P]]` and `--egress-deny CIDR[,port=P[-P]]`,
 * in command-line order; the first rule whose prefix holds the destination address (and
 * whose port range, if any, holds its port) decides. When none matches, the network's
 * default decides: an ordinary network allows everything (today's behaviour, libslirp's);
 * a public one — a network a session from a public listener has joined — denies the
 * destinations an internet-facing relay must never reach for a stranger (`PUBLIC_DENIED`):
 * the host's loopback, RFC 1918 private networks, CGNAT space, link-local addresses (cloud
 * metadata at 169.254.169.254), multicast and broadcast, and their IPv6 equivalents.
 *
 * The check runs on the address a flow actually goes to, after the NAT's rewrites (`policy.ts`:
 * the gateway standing for the host's loopback is 127.0.0.1 here), at connect / first-datagram
 * time: a DNS answer that points at a private address (DNS rebinding) gets the same verdict as
 * the address typed by hand. The DNS forwarder's own upstreams are not guest flows and are
 * exempt. A refusal is counted as 'nat.egress-denied' (a deny rule matched) or
 * 'nat.egress-public-default' (no rule matched on a public network); the engines answer it
 * like every policy refusal: RST for TCP, ICMP administratively prohibited for UDP.
 *
 * What a refusal names (`judge`): the counter, and the rule that matched as the user wrote it
 * (`--egress-deny 10.0.0.0/8,port=22`) or the public default's entry (`default public:
 * 169.254.0.0/16`). The engines hand that to the stack with the flow's guest side and
 * destination (`ToGuest.egressRefused`), and the daemon logs it at debug through an
 * `EgressRefusalLog`: one line per flow attempt — a tuple (protocol, guest address and port,
 * destination) is logged once and then not again for LOG_REPEAT_MS, so a UDP program resending
 * to a refused address costs one line — and at most LINES_PER_SECOND lines a second per
 * network, so a guest trying every port of 10.0.0.0/8 cannot flood the log either. What is not
 * logged is carried as `suppressed` by the next line; the counters see every refusal.
 *
 * A network becomes public for good once a public session joins it (`markPublic`): flows
 * opened before keep going, new ones are judged by the stricter default. A reload (SIGHUP with
 * `--config`) replaces the rules the same way (`setRules`): they judge the flows opened from
 * then on, and flows already open are left alone.
 */
import type { Endpoint, IpAddr } from '../net/addr.js';
import type { EgressRefusedFlow } from '../net/seams.js';
import { cidrHolds, parseCidr, type Cidr } from '../net/cidr.js';
import type { Drop } from '../util/drops.js';

/** One rule as parsed: the text it came from, for messages and logs. */
export interface EgressRule {
  readonly action: 'allow' | 'deny';
  readonly text: string;
  readonly prefix: Cidr;
  /** Inclusive port range; absent: every port. */
  readonly ports?: { readonly from: number; readonly to: number } | undefined;
}

/** Why a flow was refused: its counter, and the rule that matched as the user wrote it (for the log). */
export interface EgressRefusal {
  readonly drop: Drop;
  /** `--egress-deny CIDR[,port=…]`, or `default public: CIDR` when no rule matched on a public network. */
  readonly rule: string;
}

/** The denied destinations of a public network when no rule matches. */
export const PUBLIC_DENIED: readonly string[] = [
  '0.0.0.0/8', // "this network"
  '127.0.0.0/8', // loopback (and the gateway's rewrite to it)
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16', // RFC 1918
  '100.64.0.0/10', // CGNAT (RFC 6598)
  '169.254.0.0/16', // link-local: cloud metadata services
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, and the limited broadcast 255.255.255.255
  '::/128',
  '::1/128',
  '::ffff:0:0/96', // IPv4-mapped: judged as IPv4 would be, so refused wholesale
  'fc00::/7', // unique local
  'fe80::/10', // link-local
  'ff00::/8', // multicast
];

const PORT = /^(0|[1-9]\d{0,4})$/;

/** `CIDR[,port=P[-P]]` (IPv4 or IPv6; a bare address is a /32 or /128), or the reason it is not one. */
export function parseEgressRule(action: 'allow' | 'deny', text: string): EgressRule | string {
  const [cidr = '', ...rest] = text.split(',');
  let ports: EgressRule['ports'];
  for (const part of rest) {
    const m = /^port=([^-]+)(?:-(.+))?$/.exec(part);
    if (m === null || ports !== undefined) return `'${text}': after the address only one ,port=P or ,port=P-P may follow`;
    const from = m[1]!;
    const to = m[2] ?? from;
    if (!PORT.test(from) || !PORT.test(to) || Number(from) > 65535 || Number(to) > 65535) return `'${text}': ports are numbers from 0 to 65535`;
    if (Number(from) > Number(to)) return `'${text}': the port range ${from}-${to} is empty`;
    ports = { from: Number(from), to: Number(to) };
  }
  const prefix = parseCidr(cidr);
  if (typeof prefix === 'string') return `'${text}': ${prefix}`;
  return { action, text, prefix, ports };
}

function matches(r: EgressRule, addr: IpAddr, port: number): boolean {
  if (r.ports !== undefined && (port < r.ports.from || port > r.ports.to)) return false;
  return cidrHolds(r.prefix, addr);
}

const PUBLIC_RULES: readonly EgressRule[] = PUBLIC_DENIED.map((t) => parseEgressRule('deny', t) as EgressRule);
const PUBLIC_REFUSALS: readonly EgressRefusal[] = PUBLIC_DENIED.map((t) => ({ drop: 'nat.egress-public-default', rule: `default public: ${t}` }));

/** Each rule's refusal, made once (a refused flow allocates nothing); undefined for allow rules. */
const refusalsOf = (rules: readonly EgressRule[]): readonly (EgressRefusal | undefined)[] =>
  rules.map((r) => (r.action === 'deny' ? { drop: 'nat.egress-denied', rule: `--egress-deny ${r.text}` } : undefined));

/** A network's egress policy: the user's rules, then the network's default. */
export class EgressPolicy {
  #rules: readonly EgressRule[];
  #refusals: readonly (EgressRefusal | undefined)[];
  #public: boolean;

  constructor(rules: readonly EgressRule[] = [], isPublic = false) {
    this.#rules = rules;
    this.#refusals = refusalsOf(rules);
    this.#public = isPublic;
  }

  /** The user's rules, in the order they are checked. */
  get rules(): readonly EgressRule[] {
    return this.#rules;
  }

  /** New rules for the flows opened from now on (a reload); open flows are not judged again. */
  setRules(rules: readonly EgressRule[]): void {
    this.#rules = rules;
    this.#refusals = refusalsOf(rules);
  }

  /** Whether the public default applies (a session from a public listener has joined). */
  get public(): boolean {
    return this.#public;
  }

  /** From now on, destinations no rule names are judged by the public default. */
  markPublic(): void {
    this.#public = true;
  }

  /** What a recording of the network's configuration keeps (`restore` reads it back). */
  toJSON(): { rules: readonly EgressRule[]; public: boolean } {
    return { rules: this.#rules, public: this.#public };
  }

  /** A policy from `toJSON`'s output (a recording's configuration); the empty policy for anything else. */
  static restore(v: unknown): EgressPolicy {
    const o = v as { rules?: unknown; public?: unknown } | undefined;
    return new EgressPolicy(Array.isArray(o?.rules) ? (o.rules as EgressRule[]) : [], o?.public === true);
  }

  /** Undefined when a flow to `to` may be opened, else the counter of the refusal. */
  check(to: Endpoint): Drop | undefined {
    return this.judge(to)?.drop;
  }

  /** Undefined when a flow to `to` may be opened, else why not: the counter and the rule that matched. */
  judge(to: Endpoint): EgressRefusal | undefined {
    const rules = this.#rules;
    for (let i = 0; i < rules.length; i++) if (matches(rules[i]!, to.addr, to.port)) return this.#refusals[i];
    if (!this.#public) return undefined;
    for (let i = 0; i < PUBLIC_RULES.length; i++) if (matches(PUBLIC_RULES[i]!, to.addr, to.port)) return PUBLIC_REFUSALS[i];
    return undefined;
  }
}

/** The same flow attempt (tuple) is logged again only after this long. */
export const LOG_REPEAT_MS = 10_000;
/** Lines a second per network at most (a burst of as many). */
export const LINES_PER_SECOND = 20;
/**
 * Which refusals of one network get a debug line (see the theory above): the first of each
 * flow attempt, within the network's line budget. Pure: the caller passes the time.
 */
export class EgressRefusalLog {
  /** Tuple → when it was last logged; in that order (a re-log re-inserts). */
  readonly #seen = new Map<string, number>();
  #tokens = LINES_PER_SECOND;
  #atMs: number | undefined;
  #suppressed = 0;

  /** Undefined when `e` at `nowMs` gets no line, else how many refusals went unlogged since the last line. */
  note(e: EgressRefusedFlow, nowMs: number): { readonly suppressed: number } | undefined {
    const key = `${e.protocol}${e.guest.addr}:${e.guest.port}>${e.to.addr}:${e.to.port}`;
    const last = this.#seen.get(key);
    if (last !== undefined && nowMs - last < LOG_REPEAT_MS) {
      this.#suppressed++;
      return undefined;
    }
    const elapsed = this.#atMs === undefined ? 0 : Math.max(0, nowMs - this.#atMs);
    this.#tokens = Math.min(LINES_PER_SECOND, this.#tokens + (elapsed * LINES_PER_SECOND) / 1000);
    this.#atMs = nowMs;
    if (this.#tokens < 1) {
      this.#suppressed++;
      return undefined;
    }
    this.#tokens -= 1;
    this.#seen.delete(key);
    this.#seen.set(key, nowMs);
    // Forget what is older than LOG_REPEAT_MS (the Map's first entries): only logged tuples are
    // kept, so it never holds more than the lines of LOG_REPEAT_MS plus a burst (~220).
    for (const [k, at] of this.#seen) {
      if (nowMs - at < LOG_REPEAT_MS) break;
      this.#seen.delete(k);
    }
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { suppressed };
  }

  /** Flow attempts remembered now (bounded: see `note`). */
  get remembered(): number {
    return this.#seen.size;
  }
}
