/**
 * Port forwarding rules, host → guest: QEMU's `hostfwd` syntax, with port ranges as passt's
 * `-t 8000-8010`. The grammar (EBNF; `[ ]` optional, `{ }` repeated, no spaces inside a rule):
 *
 *     rules     = rule { "," rule } ;
 *     rule      = [ protocol ":" ] [ hostaddr ] ":" ports "-" [ guestaddr ] ":" ports ;
 *     protocol  = "tcp" | "udp" ;                         (* default tcp, as in QEMU *)
 *     ports     = port [ "-" port ] ;                     (* a range, first ≤ last *)
 *     port      = digit { digit } ;                       (* 1..65535 *)
 *     hostaddr  = ipv4 | "[" ipv6 "]" ;                   (* empty: 127.0.0.1 *)
 *     guestaddr = ipv4 | "[" ipv6 "]" | hostname ;        (* empty: the first guest, see below *)
 *     ipv4      = octet "." octet "." octet "." octet ;   (* 0..255, no leading zeros *)
 *     ipv6      = RFC 4291 §2.2 text ;                    (* no zone id, no prefix *)
 *     hostname  = letter { letter | digit | "-" | "." } ; (* a lease's DHCP host name *)
 *
 * e.g. `tcp::2222-:22`, `tcp:127.0.0.1:8080-10.0.2.15:80`, `udp::5353-:53`,
 * `tcp::8000-8010-:8000-8010`, `tcp::8000-8010-10.0.2.15:9000-9010`,
 * `tcp:[::1]:8080-[fd00::15]:80`, `tcp:[::1]:8080-:80`, `udp:[::]:5353-web:53`.
 * IPv6 addresses are bracketed as in QEMU's `hostfwd` and URLs (RFC 3986 §3.2.2): their
 * colons would otherwise read as the separators.
 *
 * Why it parses one way only: `-` both ends a range and separates the host side from the
 * guest side, but a guest side starts with `:` (no address), a letter (a host name) or an
 * IPv4 address, whose digits are followed by `.`. So after `ports "-"`, digits followed by
 * `-` continue the host range and anything else starts the guest side — one token of
 * lookahead, no backtracking. `tcp::8000-8010:80` is therefore host port 8000 to guest
 * address `8010`, which is refused (an address needs four parts), with a hint that a
 * host range is written `8000-8010-:80`.
 *
 * Meaning:
 * - The guest's family is the guest address's when the rule gives one, else the host
 *   address's: `tcp:[::1]:8080-:80` and `tcp:[::1]:8080-web:80` reach the guest over IPv6,
 *   at its own address in the network's /64 (`forward-ports.ts`, `forwardGuest`), while
 *   `tcp:[::1]:8080-10.0.2.15:80` reaches it over IPv4. A client the guest's family cannot
 *   show (an outside IPv6 client of an IPv4 guest) is refused (`policy.ts`, `forwardedRemote`).
 * - A range maps port by port: host `first + i` → guest `first + i`. Both sides must have the
 *   same length; several host ports onto one guest port (`8000-8010-:80`) is refused, as
 *   passt refuses it — a guest server could not tell the clients of one port from another's.
 * - Each forwarded port is its own listening socket (`expandForwards` gives one rule per
 *   port, each keeping the text of the rule it came from for messages). At most
 *   MAX_FORWARD_PORTS ports in all: beyond that the daemon would spend its descriptors on
 *   listeners.
 * - Two rules may not listen on one protocol and port where their addresses overlap (the
 *   same address, either is `::` — Node's sockets on `::` are dual-stack — or one is 0.0.0.0
 *   and the other IPv4): the second bind would fail with EADDRINUSE.
 * - A guest host name (`tcp::8080-web:80`) is the DHCP host name (option 12) of a lease on
 *   the forward's network, compared without case and resolved when a client connects, so a
 *   forward follows its guest whatever address it got and whenever it joined.
 * - The rules of every network share the host's ports: the overlap check and the port bound
 *   hold across all of them (`parseForwardGroups`).
 * - `--hostfwd` is repeatable and each value may hold several rules separated by commas.
 *
 * Differences from QEMU, deliberately:
 * - An empty HOSTADDR listens on 127.0.0.1, not on every interface (QEMU binds INADDR_ANY,
 *   which exposes the guest to the network: openwrt PR #23424's review). Write `0.0.0.0`
 *   to listen everywhere.
 * - An empty GUESTADDR means the session's first DHCP lease (QEMU: the `dhcpstart`
 *   address), resolved when a client connects.
 * - Port 0 is refused on either side; ranges are ours (QEMU has none).
 */
import { ConfigError } from '../util/config-error.js';
import { formatIpAddr, ipv6FromBytes, type IpAddr } from '../net/addr.js';
import { parseIpv4Text, parseIpv6Text } from '../util/ip-text.js';

/**
 * Most forwarded ports (listening sockets) across all rules. Each takes a descriptor, and Node
 * does not raise the soft RLIMIT_NOFILE, which is 1024 for most users and services: 512 leaves
 * the other half to sessions and their flows (1024 listeners die with EMFILE at start there).
 */
export const MAX_FORWARD_PORTS = 512;

/** An inclusive port range; `first <= last`, both 1..65535. A single port has first === last. */
export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** Where a rule delivers in the guest. */
export type GuestTarget =
  /** The session's first DHCP lease, resolved when a client connects. */
  | { readonly kind: 'lease' }
  | { readonly kind: 'addr'; readonly addr: IpAddr }
  /** A lease's DHCP host name, resolved when a client connects. */
  | { readonly kind: 'name'; readonly name: string };

/** One rule as written, ranges unexpanded. */
export interface ForwardSpec {
  readonly protocol: 'tcp' | 'udp';
  /** The host address to listen on; undefined when the rule leaves it empty (127.0.0.1). */
  readonly hostAddr: IpAddr | undefined;
  readonly hostPorts: PortRange;
  readonly guest: GuestTarget;
  /** Same length as hostPorts. */
  readonly guestPorts: PortRange;
  /** The rule as written (trimmed), for messages. */
  readonly text: string;
}

/** One forwarded port: what a listener needs. */
export interface ForwardRule {
  readonly protocol: 'tcp' | 'udp';
  /** The host address to listen on (127.0.0.1 when the rule leaves it empty), either family. */
  readonly hostAddr: IpAddr;
  /** 1..65535. */
  readonly hostPort: number;
  /**
   * The guest's address; undefined: the guest of the lease named `guestName`, else the
   * network's first guest, on the family of `hostAddr` (`forwardGuestFamily`).
   */
  readonly guestAddr: IpAddr | undefined;
  /** A lease's DHCP host name, resolved when a client connects. */
  readonly guestName?: string | undefined;
  /** 1..65535. */
  readonly guestPort: number;
  /** The rule this port came from, as written (a range's ports share it), for messages. */
  readonly text: string;
}

const LOOPBACK = 0x7f000001;
const UNSPECIFIED6 = '0'.repeat(32);
const HOSTNAME = /^[A-Za-z][A-Za-z0-9.-]*$/;

/** The family a rule reaches its guest on: its guest address's, else its host address's (see the header). */
export const forwardGuestFamily = (rule: Pick<ForwardRule, 'hostAddr' | 'guestAddr'>): 4 | 6 => (typeof (rule.guestAddr ?? rule.hostAddr) === 'number' ? 4 : 6);

/** `ipv4` or `"[" ipv6 "]"` as written in a rule; `{ error }` saying why when it is neither. */
function ruleAddr(text: string): IpAddr | { readonly error: string } {
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) return { error: `'${text}' lacks its closing ']'` };
    const b = parseIpv6Text(text.slice(1, -1));
    return typeof b === 'string' ? { error: b } : ipv6FromBytes(b);
  }
  if (text.includes(']')) return { error: `'${text}' has a ']' without its opening '['` };
  const a = parseIpv4Text(text);
  return typeof a === 'string' ? { error: text.includes(':') ? `'${text}' is not an IPv4 address (write an IPv6 address in brackets, like [::1])` : a } : a;
}

/** An address as a rule writes it: IPv6 in brackets. */
const ruleAddrText = (a: IpAddr): string => (typeof a === 'number' ? formatIpAddr(a) : `[${formatIpAddr(a)}]`);

function fail(rule: string, reason: string): never {
  throw new ConfigError('hostfwd', `'${rule}': ${reason}`);
}

const rangeText = (r: PortRange): string => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`);
const rangeSize = (r: PortRange): number => r.last - r.first + 1;

/**
 * A small scanner over one rule: `take(re)` consumes a sticky match at the cursor. Every
 * step consumes at least one character or fails, so parsing ends within the rule's length.
 */
class Scanner {
  readonly text: string;
  at = 0;
  constructor(text: string) {
    this.text = text;
  }
  take(re: RegExp): string | undefined {
    const sticky = new RegExp(re.source, 'y');
    sticky.lastIndex = this.at;
    const m = sticky.exec(this.text);
    if (m === null) return undefined;
    this.at += m[0].length;
    return m[0];
  }
  peek(re: RegExp): boolean {
    const sticky = new RegExp(re.source, 'y');
    sticky.lastIndex = this.at;
    return sticky.test(this.text);
  }
  get done(): boolean {
    return this.at >= this.text.length;
  }
}

function port(rule: string, text: string | undefined, side: 'host' | 'guest'): number {
  if (text === undefined) return fail(rule, `missing ${side} port`);
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) return fail(rule, `${side} port ${text} is not in 1..65535`);
  return n;
}

/** `port [ "-" port ]`; the caller has decided whether a `-` after the first port continues the range. */
function ports(s: Scanner, rule: string, side: 'host' | 'guest', rangeContinues: () => boolean): PortRange {
  const first = port(rule, s.take(/\d+/), side);
  if (!rangeContinues()) return { first, last: first };
  s.take(/-/);
  const last = port(rule, s.take(/\d+/), side);
  if (last < first) return fail(rule, `${side} port range ${first}-${last} is empty (write the lower port first)`);
  return { first, last };
}

/** Parses one rule into a spec, ranges unexpanded and host names kept. Throws ConfigError('hostfwd') naming the rule. */
export function parseForwardSpec(text: string): ForwardSpec {
  const rule = text.trim();
  if (rule === '') return fail(rule, 'empty rule');
  const s = new Scanner(rule);
  let protocol: 'tcp' | 'udp' = 'tcp';
  if (s.peek(/[A-Za-z]+:/)) {
    const p = s.take(/[A-Za-z]+/)!;
    if (p !== 'tcp' && p !== 'udp') return fail(rule, `protocol must be tcp or udp, not '${p}'`);
    protocol = p;
    s.take(/:/);
  }
  const shape = 'expected [tcp|udp]:[hostaddr]:hostport[-hostport]-[guestaddr]:guestport[-guestport]';
  // A bracketed IPv6 address holds colons: up to its ']' first.
  const hostText = s.take(/\[[^\]]*\]?|[^:]*/) ?? '';
  if (s.take(/:/) === undefined) return fail(rule, shape);
  let hostAddr: IpAddr | undefined;
  if (hostText !== '') {
    const a = ruleAddr(hostText);
    if (typeof a === 'object') return fail(rule, `host address: ${a.error}`);
    hostAddr = a;
  }
  // digits then '-' after the first port's '-' can only continue the host range (see the header).
  const hostPorts = ports(s, rule, 'host', () => s.peek(/-\d+-/));
  if (s.take(/-/) === undefined) return fail(rule, s.done ? 'missing the guest side (-[guestaddr]:guestport)' : shape);
  const guestText = s.take(/\[[^\]]*\]?|[^:]*/) ?? '';
  if (s.take(/:/) === undefined) return fail(rule, s.done && guestText === '' ? 'missing guest port' : shape);
  let guest: GuestTarget = { kind: 'lease' };
  if (HOSTNAME.test(guestText)) guest = { kind: 'name', name: guestText };
  else if (guestText !== '') {
    const a = ruleAddr(guestText);
    if (typeof a === 'object') {
      const hint = /^\d+$/.test(guestText) ? ` (a host port range is written ${hostPorts.first}-${guestText}-:GUESTPORT)` : '';
      return fail(rule, `guest address: ${a.error}${hint}`);
    }
    guest = { kind: 'addr', addr: a };
  }
  const guestPorts = ports(s, rule, 'guest', () => s.peek(/-/));
  if (!s.done) return fail(rule, `unexpected '${rule.slice(s.at)}' after the guest port`);
  if (rangeSize(hostPorts) !== rangeSize(guestPorts)) {
    const why =
      rangeSize(guestPorts) === 1
        ? 'several host ports cannot share one guest port (write a guest range of the same length, as passt requires)'
        : 'a range maps port by port, so both must have the same length';
    return fail(rule, `host ports ${rangeText(hostPorts)} and guest ports ${rangeText(guestPorts)}: ${why}`);
  }
  if (rangeSize(hostPorts) > MAX_FORWARD_PORTS) return fail(rule, `${rangeSize(hostPorts)} ports: at most ${MAX_FORWARD_PORTS} forwarded ports in all (each is a listening socket)`);
  return { protocol, hostAddr, hostPorts, guest, guestPorts, text: rule };
}

/** The canonical text of a spec (protocol always written); parseForwardSpec reads it back to the same spec. */
export function formatForwardSpec(f: Omit<ForwardSpec, 'text'>): string {
  const guest = f.guest.kind === 'lease' ? '' : f.guest.kind === 'addr' ? ruleAddrText(f.guest.addr) : f.guest.name;
  const host = f.hostAddr === undefined ? '' : ruleAddrText(f.hostAddr);
  return `${f.protocol}:${host}:${rangeText(f.hostPorts)}-${guest}:${rangeText(f.guestPorts)}`;
}

/** The host addresses two rules listen on collide: the same, either is `::` (dual-stack), or 0.0.0.0 beside an IPv4 one. */
const addrsOverlap = (a: IpAddr, b: IpAddr): boolean =>
  a === b || a === UNSPECIFIED6 || b === UNSPECIFIED6 || (a === 0 && typeof b === 'number') || (b === 0 && typeof a === 'number');

/** One rule per forwarded port, in port order. */
export function expandForward(f: ForwardSpec): ForwardRule[] {
  const guestAddr = f.guest.kind === 'addr' ? f.guest.addr : undefined;
  const guestName = f.guest.kind === 'name' ? f.guest.name : undefined;
  const out: ForwardRule[] = [];
  for (let i = 0; i < rangeSize(f.hostPorts); i++)
    out.push({ protocol: f.protocol, hostAddr: f.hostAddr ?? LOOPBACK, hostPort: f.hostPorts.first + i, guestAddr, ...(guestName !== undefined && { guestName }), guestPort: f.guestPorts.first + i, text: f.text });
  return out;
}

/**
 * Parses groups of `--hostfwd` values (each value possibly a comma-separated list; one group
 * per network, whose rules listen on the same host) and expands ranges into one rule per port,
 * group by group. Refuses overlapping rules, within a group or across groups, and more than
 * MAX_FORWARD_PORTS ports in all, each with a ConfigError('hostfwd') naming the rule.
 */
export function parseForwardGroups(groups: readonly (readonly string[])[]): ForwardRule[][] {
  const specs: ForwardSpec[] = [];
  let total = 0;
  return groups.map((values) => {
    const own: ForwardSpec[] = [];
    for (const v of values) {
      for (const part of v.split(',')) {
        if (part.trim() === '') continue;
        const f = parseForwardSpec(part);
        for (const g of specs) {
          if (g.protocol !== f.protocol || !addrsOverlap(g.hostAddr ?? LOOPBACK, f.hostAddr ?? LOOPBACK)) continue;
          const from = Math.max(g.hostPorts.first, f.hostPorts.first);
          if (from <= Math.min(g.hostPorts.last, f.hostPorts.last))
            fail(f.text, `${f.protocol} host port ${from} is already forwarded by '${g.text}'`);
        }
        total += rangeSize(f.hostPorts);
        if (total > MAX_FORWARD_PORTS) fail(f.text, `the rules forward ${total} ports so far: at most ${MAX_FORWARD_PORTS} in all (each is a listening socket)`);
        specs.push(f);
        own.push(f);
      }
    }
    return own.flatMap(expandForward);
  });
}

/** `parseForwardGroups` for one group: every `--hostfwd` value of one network. */
export function parseForwards(values: readonly string[]): ForwardRule[] {
  return parseForwardGroups([values])[0]!;
}

/** Parses one single-port rule (no range). Throws ConfigError('hostfwd'). */
export function parseForwardRule(text: string): ForwardRule {
  const f = parseForwardSpec(text);
  const rules = expandForward(f);
  if (rules.length !== 1) return fail(f.text, 'expected one port, not a range');
  return rules[0]!;
}
