/**
 * The `.pkt` script format, parsed: hand-written tests of the NAT's contract in the spirit of
 * packetdrill. One line is one step — a guest frame into the network (`<`), a frame expected
 * out of it (`>`), a host event (`host …`, an action), a Host call expected (`expect host …`),
 * a clock step (`tick`) — or a header directive (`seed`, `guest`, `option`, `tolerance`).
 * README.md of this folder gives the grammar with examples; `script-run.ts` runs a script.
 *
 * The parser never throws on any text: each line that does not parse is one error naming its
 * line, and a script with errors is unusable (exit 2) as a whole. Bounded: a script over
 * MAX_SCRIPT_BYTES or MAX_SCRIPT_LINES is refused, and errors past MAX_ERRORS are counted,
 * not kept.
 */
import { parseForwardRule, type ForwardRule } from '../nat/forwards.js';
import type { Endpoint } from '../net/addr.js';
import type { NetworkOptions } from '../stack/config.js';
import { parseIpv4Addr, parseMac, type Ipv4Addr, type Mac } from '../util/bytes.js';

export const MAX_SCRIPT_BYTES = 1 << 20;
export const MAX_SCRIPT_LINES = 20_000;
export const MAX_ERRORS = 50;
/** A clock value past this (seconds since the script's start) is refused: a typo, not a test. */
export const MAX_SCRIPT_SECONDS = 1_000_000;

/** A number written in an expected frame, or `*` (anything). */
export type Num = number | '*';

/** A TCP option as written between `<` and `>` (packetdrill's names). */
export type ScriptTcpOption =
  | { readonly kind: 'mss' | 'wscale'; readonly value: Num }
  | { readonly kind: 'sackOK' | 'nop' | 'eol' }
  | { readonly kind: 'TS'; readonly val: Num; readonly ecr: Num }
  | { readonly kind: 'sack'; readonly blocks: readonly (readonly [number, number])[] };

/** IP header fields a line may set (guest frames) or require (expected frames). */
export interface IpFields {
  readonly ttl?: number;
  readonly id?: number;
  readonly tos?: number;
  readonly df?: boolean;
}

export interface TcpSpec extends IpFields {
  readonly proto: 'tcp';
  readonly src: Endpoint & { readonly addr: Ipv4Addr };
  readonly dst: Endpoint & { readonly addr: Ipv4Addr };
  /** TCP_FLAG bits. */
  readonly flags: number;
  /** Relative to its side's initial sequence number (the network's side) or as written (the guest's). */
  readonly seq?: Num;
  /** `(LEN)`: bytes of data. */
  readonly len?: number;
  readonly ack?: Num;
  readonly win?: Num;
  readonly urg?: number;
  /** Undefined: not written (a guest frame sends none; an expected frame takes any). */
  readonly options?: readonly ScriptTcpOption[];
  readonly payload?: Uint8Array;
}

export interface UdpSpec extends IpFields {
  readonly proto: 'udp';
  readonly src: Endpoint & { readonly addr: Ipv4Addr };
  readonly dst: Endpoint & { readonly addr: Ipv4Addr };
  readonly len?: number;
  readonly payload?: Uint8Array;
}

export interface IcmpSpec extends IpFields {
  readonly proto: 'icmp';
  readonly src: Ipv4Addr;
  readonly dst: Ipv4Addr;
  readonly type: number;
  readonly code?: number;
  /** Echo id and sequence number (bytes 4..8 of the header). */
  readonly echoId?: Num;
  readonly echoSeq?: Num;
  readonly len?: number;
  readonly payload?: Uint8Array;
}

export interface ArpSpec {
  readonly proto: 'arp';
  readonly op: 1 | 2;
  readonly senderIp: Ipv4Addr;
  /** Request: the address asked for; reply: undefined unless written with `to`. */
  readonly targetIp?: Ipv4Addr;
  /** Reply: the answer (`is-at`); request: the asker's MAC (`mac`, default the guest's). */
  readonly senderMac?: Mac;
  /** Reply: the MAC answered (`to IP MAC`; a guest's reply defaults to the gateway's). */
  readonly targetMac?: Mac;
}

export interface DhcpSpec extends IpFields {
  readonly proto: 'dhcp';
  readonly src?: Endpoint & { readonly addr: Ipv4Addr };
  readonly dst?: Endpoint & { readonly addr: Ipv4Addr };
  /** DHCP message type (option 53), RFC 2132 §9.6. */
  readonly type: number;
  readonly xid?: Num;
  readonly chaddr?: Mac;
  readonly ciaddr?: Ipv4Addr;
  readonly yiaddr?: Ipv4Addr;
  /** Options 50 and 54. */
  readonly requested?: Ipv4Addr;
  readonly server?: Ipv4Addr;
}

export interface RawSpec {
  readonly proto: 'raw';
  /** The whole Ethernet frame. */
  readonly bytes: Uint8Array;
}

export type FrameBody = TcpSpec | UdpSpec | IcmpSpec | ArpSpec | DhcpSpec | RawSpec;
export type FrameSpec = FrameBody & { readonly ethSrc?: Mac; readonly ethDst?: Mac };

/** How a seam argument is written. `id`: the flow named `@NAME` (or the current one); `bind`: the call opens it. */
type ArgKind = 'id' | 'bind' | 'ep' | 'data' | 'code' | 'bool' | 'conn' | 'from' | 'local';

/** Every Host call: its arguments in the seam's order (src/net/seams.ts). */
export const CALL_ARGS: Readonly<Record<string, readonly ArgKind[]>> = {
  udpOpen: ['bind', 'ep', 'from'],
  udpSend: ['id', 'data'],
  tcpConnect: ['bind', 'ep', 'from'],
  tcpWrite: ['id', 'data'],
  tcpEnd: ['id'],
  tcpPause: ['id', 'bool'],
  tcpReset: ['id'],
  tcpListen: ['bind', 'ep'],
  tcpAdopt: ['conn', 'bind'],
  tcpRefuse: ['conn'],
  udpBind: ['bind', 'ep'],
  udpSendTo: ['id', 'ep', 'data'],
  close: ['id'],
};

/** Every HostEvents event: its arguments in the seam's order. */
export const EVENT_ARGS: Readonly<Record<string, readonly ArgKind[]>> = {
  udpReceived: ['id', 'data'],
  udpError: ['id', 'code'],
  tcpConnected: ['id', 'local'],
  tcpData: ['id', 'data'],
  tcpEnd: ['id'],
  tcpDrained: ['id'],
  tcpError: ['id', 'code'],
  tcpClosed: ['id'],
  tcpListening: ['id', 'ep'],
  tcpListenError: ['id', 'code'],
  tcpAccepted: ['id', 'conn', 'ep'],
  udpBound: ['id', 'ep'],
  udpReceivedFrom: ['id', 'ep', 'data'],
};

/** Short names: `expect host connect` is tcpConnect; `host write` is the host peer's data (tcpData). */
const CALL_ALIASES: Readonly<Record<string, string>> = { connect: 'tcpConnect', write: 'tcpWrite', end: 'tcpEnd', reset: 'tcpReset', pause: 'tcpPause' };
const EVENT_ALIASES: Readonly<Record<string, string>> = { write: 'tcpData', end: 'tcpEnd', closed: 'tcpClosed', drained: 'tcpDrained', error: 'tcpError' };

/** A seam argument as written: undefined where an optional one is not (an expectation then takes any value). */
export type SeamArg = { readonly k: 'flow'; readonly name: string; readonly bind: boolean } | { readonly k: 'value'; readonly v: unknown } | { readonly k: 'any' };

export interface SeamStep {
  readonly name: string;
  readonly args: readonly SeamArg[];
}

export type StepBody =
  | { readonly k: 'in'; readonly guest: number; readonly frame: FrameSpec }
  | { readonly k: 'out'; readonly guest: number; readonly frame: FrameSpec }
  | { readonly k: 'event'; readonly event: SeamStep }
  | { readonly k: 'call'; readonly call: SeamStep; readonly result?: number }
  | { readonly k: 'tick' }
  | { readonly k: 'forward'; readonly rule: ForwardRule };

export interface Step {
  /** 1-based line number in the script. */
  readonly line: number;
  /** The line's text without its timestamp and comment (the report's `expected`). */
  readonly text: string;
  /** Clock value, microseconds since the script's start. */
  readonly us: number;
  readonly body: StepBody;
}

export interface Script {
  readonly steps: readonly Step[];
  /** `seed N`: the network's randomness (default 1). */
  readonly seed: number;
  /** Guest N's MAC at index N-1: one port each, as many as the script's highest `guest N` (at least one). */
  readonly guestMacs: readonly Mac[];
  /** `option KEY=VALUE` lines, for resolveStackConfig. */
  readonly options: NetworkOptions;
  /** `tolerance S`: how much earlier than its line's time an expected output may have been made, µs. */
  readonly toleranceUs: number;
  /** `dns-upstream ADDR:PORT` lines: the DNS forwarder's resolvers, in order. */
  readonly dnsUpstreams: readonly Endpoint[];
  /** The line of each `option` key, to name it when the configuration is refused. */
  readonly optionLines: Readonly<Record<string, number>>;
}

export interface ScriptError {
  readonly line: number;
  readonly message: string;
}

/** QEMU's default guest MAC. */
export const DEFAULT_GUEST_MAC: Mac = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
/** Guests (ports) one script may have. */
export const MAX_GUESTS = 16;
/** Guest N's MAC unless a `guest N MAC` line says otherwise: QEMU's default for 1, then …:57, …:58. */
const defaultGuestMac = (n: number): Mac => Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x55 + n);

/** A line that does not parse: its message (the parser adds the line number). */
class LineError extends Error {}
const fail = (message: string): never => {
  throw new LineError(message);
};

// --- tokens -----------------------------------------------------------------------------------

/** A token: a word, a quoted string's bytes, or the text between `<` and `>`. */
type Token = { readonly t: 'word'; readonly s: string } | { readonly t: 'str'; readonly b: Uint8Array } | { readonly t: 'opts'; readonly s: string };

const ESCAPES: Readonly<Record<string, number>> = { n: 10, r: 13, t: 9, '0': 0, '\\': 92, '"': 34 };

/** Splits a line (its comment already cut) into tokens. */
function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '"') {
      const bytes: number[] = [];
      i++;
      for (;;) {
        if (i >= s.length) fail('a string without its closing "');
        const d = s[i]!;
        if (d === '"') break;
        if (d === '\\') {
          const e = s[i + 1] ?? '';
          if (e === 'x') {
            const h = s.slice(i + 2, i + 4);
            if (!/^[0-9a-fA-F]{2}$/.test(h)) fail(`\\x needs two hex digits, not '${h}'`);
            bytes.push(parseInt(h, 16));
            i += 4;
            continue;
          }
          const v = ESCAPES[e];
          if (v === undefined) fail(`unknown escape \\${e} in a string (\\n \\r \\t \\0 \\\\ \\" \\xHH)`);
          bytes.push(v!);
          i += 2;
          continue;
        }
        const code = d.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) fail('a string holds only printable ASCII (write other bytes as \\xHH)');
        bytes.push(code);
        i++;
      }
      i++;
      out.push({ t: 'str', b: Uint8Array.from(bytes) });
    } else if (c === '<' && i + 1 < s.length && s[i + 1] !== ' ' && s[i + 1] !== '\t') {
      // `<mss 1460>`: options; a lone `<` (a guest frame in) is a word.
      const end = s.indexOf('>', i);
      if (end < 0) fail('TCP options: a < without its closing >');
      out.push({ t: 'opts', s: s.slice(i + 1, end) });
      i = end + 1;
    } else {
      let j = i;
      while (j < s.length && s[j] !== ' ' && s[j] !== '\t' && s[j] !== '"') j++;
      out.push({ t: 'word', s: s.slice(i, j) });
      i = j;
    }
  }
  return out;
}

/** A cursor over one line's tokens. */
class Tokens {
  readonly #t: Token[];
  #i = 0;
  constructor(t: Token[]) {
    this.#t = t;
  }
  get done(): boolean {
    return this.#i >= this.#t.length;
  }
  peek(): Token | undefined {
    return this.#t[this.#i];
  }
  peekWord(): string | undefined {
    const t = this.#t[this.#i];
    return t?.t === 'word' ? t.s : undefined;
  }
  next(): Token | undefined {
    return this.#t[this.#i++];
  }
  word(what: string): string {
    const t = this.next();
    if (t?.t !== 'word') fail(`expected ${what}${t === undefined ? ' at the end of the line' : ''}`);
    return (t as { s: string }).s;
  }
  /** Takes the word `w` when it comes next. */
  accept(w: string): boolean {
    if (this.peekWord() !== w) return false;
    this.#i++;
    return true;
  }
  end(): void {
    const t = this.peek();
    if (t !== undefined) fail(`unexpected ${t.t === 'word' ? `'${t.s}'` : t.t === 'str' ? 'string' : '<…>'} at the end of the line`);
  }
}

// --- values -----------------------------------------------------------------------------------

function num(s: string, what: string, max: number): number {
  if (!/^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(s)) fail(`${what}: '${s}' is not a number`);
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v > max) fail(`${what}: ${s} is out of range 0..${max}`);
  return v;
}
const numOrAny = (s: string, what: string, max: number): Num => (s === '*' ? '*' : num(s, what, max));
const U32 = 0xffffffff;

function addr(s: string): Ipv4Addr {
  const a = parseIpv4Addr(s);
  if (a === undefined) fail(`'${s}' is not an IPv4 address`);
  return a!;
}

function endpoint(s: string): Endpoint & { addr: Ipv4Addr } {
  const at = s.lastIndexOf(':');
  if (at < 0) fail(`'${s}' is not ADDRESS:PORT`);
  return { addr: addr(s.slice(0, at)), port: num(s.slice(at + 1), `port of '${s}'`, 0xffff) };
}

function mac(s: string): Mac {
  const m = parseMac(s);
  if (m === undefined) fail(`'${s}' is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return m!;
}

function hexBytes(words: readonly string[]): Uint8Array {
  const h = words.join('').replace(/:/g, '');
  if (h.length === 0 || h.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(h)) fail('raw: an even number of hex digits, nothing else');
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** `+0.1` (after the previous line) or `1.25` (since the start): seconds to microseconds, exactly. */
function parseTime(s: string, prevUs: number): number {
  const m = /^(\+?)([0-9]{1,7})(?:\.([0-9]{1,6}))?$/.exec(s);
  if (m === null) fail(`'${s}' is not a time (seconds: +0.1 after the previous line, 1.5 since the start, at most 6 decimals)`);
  const us = Number(m![2]) * 1e6 + Number((m![3] ?? '').padEnd(6, '0'));
  const at = m![1] === '+' ? prevUs + us : us;
  if (at < prevUs) fail(`time ${s} goes back (the previous line is at ${(prevUs / 1e6).toFixed(6)} s)`);
  if (at > MAX_SCRIPT_SECONDS * 1e6) fail(`time ${s} is past ${MAX_SCRIPT_SECONDS} s`);
  return at;
}

// --- frames -----------------------------------------------------------------------------------

/** packetdrill's flag letters. */
const FLAG_LETTERS: Readonly<Record<string, number>> = { F: 1, S: 2, R: 4, P: 8, '.': 16, U: 32, E: 64, W: 128 };

function tcpFlags(s: string): number {
  let f = 0;
  for (const c of s) {
    const b = FLAG_LETTERS[c];
    if (b === undefined) fail(`TCP flags: '${c}' in '${s}' is not one of F S R P . U E W`);
    f |= b!;
  }
  return f;
}

function tcpOptions(s: string): ScriptTcpOption[] {
  const out: ScriptTcpOption[] = [];
  for (const part of s.split(',')) {
    const w = part.trim().split(/\s+/).filter((x) => x !== '');
    if (w.length === 0) {
      if (s.trim() === '') break;
      fail('TCP options: an empty option between commas');
    }
    const k = w[0]!;
    if (k === 'mss' && w.length === 2) out.push({ kind: 'mss', value: numOrAny(w[1]!, 'mss', 0xffff) });
    else if (k === 'wscale' && w.length === 2) out.push({ kind: 'wscale', value: numOrAny(w[1]!, 'wscale', 14) });
    else if ((k === 'sackOK' || k === 'nop' || k === 'eol') && w.length === 1) out.push({ kind: k });
    else if (k === 'TS' && w.length === 5 && w[1] === 'val' && w[3] === 'ecr') out.push({ kind: 'TS', val: numOrAny(w[2]!, 'TS val', U32), ecr: numOrAny(w[4]!, 'TS ecr', U32) });
    else if (k === 'sack' && w.length >= 2 && w.length <= 5) {
      out.push({ kind: 'sack', blocks: w.slice(1).map((b) => {
        const [l, r, extra] = b.split(':');
        if (l === undefined || r === undefined || extra !== undefined) fail(`sack: '${b}' is not LEFT:RIGHT`);
        return [num(l!, 'sack left edge', U32), num(r!, 'sack right edge', U32)] as const;
      }) });
    } else fail(`TCP options: '${part.trim()}' is not mss N, wscale N, sackOK, TS val N ecr N, sack L:R…, nop or eol`);
  }
  return out;
}

/** Trailing IP header keywords, shared by TCP, UDP, ICMP and DHCP frames. */
function ipKeyword(t: Tokens, w: string, f: { ttl?: number; id?: number; tos?: number; df?: boolean }): boolean {
  if (w === 'ttl') f.ttl = num(t.word('a TTL'), 'ttl', 255);
  else if (w === 'id') f.id = num(t.word('an IP id'), 'id', 0xffff);
  else if (w === 'tos') f.tos = num(t.word('a TOS byte'), 'tos', 255);
  else if (w === 'df') f.df = true;
  else return false;
  return true;
}

/** `(N)`: a data length. */
const lenWord = (w: string): number | undefined => {
  const m = /^\(([0-9]+)\)$/.exec(w);
  return m === null ? undefined : num(m[1]!, 'length', 65535);
};

function payloadOf(t: Token, f: { payload?: Uint8Array; len?: number }): void {
  if (t.t !== 'str') fail('expected a payload string');
  if (f.payload !== undefined) fail('two payloads');
  f.payload = (t as { b: Uint8Array }).b;
}

function checkLen(f: { payload?: Uint8Array; len?: number }): void {
  if (f.payload !== undefined && f.len !== undefined && f.len !== f.payload.length) fail(`the length (${f.len}) is not the payload's (${f.payload.length} bytes)`);
}

function parseTcp(t: Tokens): TcpSpec {
  const src = endpoint(t.word('the source ADDRESS:PORT'));
  if (!t.accept('>')) fail("expected '>' between the endpoints");
  const dst = endpoint(t.word('the destination ADDRESS:PORT'));
  const f: { -readonly [K in keyof TcpSpec]: TcpSpec[K] } = { proto: 'tcp', src, dst, flags: tcpFlags(t.word('TCP flags (S . P F R)')) };
  const w0 = t.peekWord();
  if (w0 !== undefined && /^(\*|[0-9x]+)(:|$)/.test(w0)) {
    t.next();
    const m = /^(\*|0x[0-9a-fA-F]+|[0-9]+)(?::(0x[0-9a-fA-F]+|[0-9]+)\(([0-9]+)\))?$/.exec(w0);
    if (m === null) fail(`'${w0}' is not SEQ or SEQ:END(LEN)`);
    f.seq = numOrAny(m![1]!, 'seq', U32);
    if (m![2] !== undefined) {
      const end = num(m![2], 'end seq', U32);
      f.len = num(m![3]!, 'length', 65535);
      if (f.seq !== '*' && ((f.seq + f.len) >>> 0) !== end) fail(`${w0}: END must be SEQ + LEN`);
    }
  }
  while (!t.done) {
    const tok = t.next()!;
    if (tok.t === 'str') payloadOf(tok, f);
    else if (tok.t === 'opts') {
      if (f.options !== undefined) fail('two option lists');
      f.options = tcpOptions(tok.s);
    } else if (tok.s === 'ack') f.ack = numOrAny(t.word('an ack number'), 'ack', U32);
    else if (tok.s === 'win') f.win = numOrAny(t.word('a window'), 'win', 0xffff);
    else if (tok.s === 'urg') f.urg = num(t.word('an urgent pointer'), 'urg', 0xffff);
    else if (!ipKeyword(t, tok.s, f)) fail(`TCP: unknown field '${tok.s}' (SEQ:END(LEN), ack, win, urg, <options>, "data", ttl, id, tos, df)`);
  }
  checkLen(f);
  return f;
}

function parseUdp(t: Tokens): UdpSpec {
  const src = endpoint(t.word('the source ADDRESS:PORT'));
  if (!t.accept('>')) fail("expected '>' between the endpoints");
  const dst = endpoint(t.word('the destination ADDRESS:PORT'));
  const f: { -readonly [K in keyof UdpSpec]: UdpSpec[K] } = { proto: 'udp', src, dst };
  while (!t.done) {
    const tok = t.next()!;
    if (tok.t === 'str') payloadOf(tok, f);
    else if (tok.t === 'word' && lenWord(tok.s) !== undefined) f.len = lenWord(tok.s)!;
    else if (tok.t !== 'word' || !ipKeyword(t, tok.s, f)) fail(`UDP: unknown field ${tok.t === 'word' ? `'${tok.s}'` : '<…>'} ((LEN), "data", ttl, id, tos, df)`);
  }
  checkLen(f);
  return f;
}

const ICMP_TYPES: Readonly<Record<string, number>> = { echo: 8, 'echo-reply': 0, unreachable: 3, 'time-exceeded': 11 };

function parseIcmp(t: Tokens): IcmpSpec {
  const src = addr(t.word('the source address'));
  if (!t.accept('>')) fail("expected '>' between the addresses");
  const dst = addr(t.word('the destination address'));
  const w = t.word('an ICMP type (echo, echo-reply, unreachable, time-exceeded, type N)');
  const type = w === 'type' ? num(t.word('a type number'), 'type', 255) : ICMP_TYPES[w];
  if (type === undefined) fail(`'${w}' is not an ICMP type (echo, echo-reply, unreachable, time-exceeded, type N)`);
  const f: { -readonly [K in keyof IcmpSpec]: IcmpSpec[K] } = { proto: 'icmp', src, dst, type: type! };
  while (!t.done) {
    const tok = t.next()!;
    if (tok.t === 'str') payloadOf(tok, f);
    else if (tok.t !== 'word') fail('ICMP: unexpected <…>');
    else if (tok.s === 'code') f.code = num(t.word('a code'), 'code', 255);
    else if (tok.s === 'id' && (f.type === 0 || f.type === 8)) f.echoId = numOrAny(t.word('an echo id'), 'echo id', 0xffff);
    else if (tok.s === 'seq') f.echoSeq = numOrAny(t.word('an echo sequence number'), 'echo seq', 0xffff);
    else if (lenWord(tok.s) !== undefined) f.len = lenWord(tok.s)!;
    else if (tok.s === 'ipid') f.id = num(t.word('an IP id'), 'ipid', 0xffff);
    else if (!ipKeyword(t, tok.s, f)) fail(`ICMP: unknown field '${tok.s}' (code, id, seq, (LEN), "data", ttl, ipid, tos, df)`);
  }
  checkLen(f);
  return f;
}

function parseArp(t: Tokens): ArpSpec {
  if (t.accept('who-has')) {
    const targetIp = addr(t.word('the address asked for'));
    if (!t.accept('tell')) fail("ARP: expected 'tell ADDRESS'");
    const senderIp = addr(t.word("the asker's address"));
    const senderMac = t.accept('mac') ? mac(t.word('a MAC')) : undefined;
    t.end();
    return { proto: 'arp', op: 1, senderIp, targetIp, ...(senderMac !== undefined && { senderMac }) };
  }
  const senderIp = addr(t.word("'who-has' or an address"));
  if (!t.accept('is-at')) fail("ARP: expected 'who-has A tell B' or 'A is-at MAC'");
  const senderMac = mac(t.word('a MAC'));
  const targetIp = t.accept('to') ? addr(t.word('the address answered')) : undefined;
  const targetMac = targetIp !== undefined && !t.done ? mac(t.word('the MAC answered')) : undefined;
  t.end();
  return { proto: 'arp', op: 2, senderIp, senderMac, ...(targetIp !== undefined && { targetIp }), ...(targetMac !== undefined && { targetMac }) };
}

const DHCP_TYPES: Readonly<Record<string, number>> = { discover: 1, offer: 2, request: 3, decline: 4, ack: 5, nak: 6, release: 7, inform: 8 };

function parseDhcp(t: Tokens): DhcpSpec {
  const f: { -readonly [K in keyof DhcpSpec]: DhcpSpec[K] } = { proto: 'dhcp', type: 0 };
  const w0 = t.peekWord() ?? '';
  if (w0.includes(':')) {
    f.src = endpoint(t.word('the source ADDRESS:PORT'));
    if (!t.accept('>')) fail("expected '>' between the endpoints");
    f.dst = endpoint(t.word('the destination ADDRESS:PORT'));
  }
  const type = DHCP_TYPES[t.word('a DHCP message type (discover, offer, request, ack, nak, release, decline, inform)')];
  if (type === undefined) fail('not a DHCP message type (discover, offer, request, ack, nak, release, decline, inform)');
  f.type = type!;
  while (!t.done) {
    const w = t.word('a DHCP field');
    if (w === 'xid') f.xid = numOrAny(t.word('an xid'), 'xid', U32);
    else if (w === 'chaddr') f.chaddr = mac(t.word('a MAC'));
    else if (w === 'ciaddr') f.ciaddr = addr(t.word('an address'));
    else if (w === 'yiaddr') f.yiaddr = addr(t.word('an address'));
    else if (w === 'requested') f.requested = addr(t.word('an address'));
    else if (w === 'server') f.server = addr(t.word('an address'));
    else if (!ipKeyword(t, w, f)) fail(`DHCP: unknown field '${w}' (xid, chaddr, ciaddr, yiaddr, requested, server, ttl, id, tos, df)`);
  }
  return f;
}

function parseFrame(t: Tokens): FrameSpec {
  let ethSrc: Mac | undefined;
  let ethDst: Mac | undefined;
  if (t.accept('eth')) {
    ethSrc = mac(t.word('the source MAC'));
    if (!t.accept('>')) fail("expected '>' between the MACs");
    ethDst = mac(t.word('the destination MAC'));
  }
  const eth = { ...(ethSrc !== undefined && { ethSrc }), ...(ethDst !== undefined && { ethDst }) };
  const kind = t.word('a frame (TCP, UDP, ICMP, ARP, DHCP or raw)');
  switch (kind) {
    case 'TCP':
      return { ...parseTcp(t), ...eth };
    case 'UDP':
      return { ...parseUdp(t), ...eth };
    case 'ICMP':
      return { ...parseIcmp(t), ...eth };
    case 'ARP':
      return { ...parseArp(t), ...eth };
    case 'DHCP':
      return { ...parseDhcp(t), ...eth };
    case 'raw': {
      if (ethSrc !== undefined) fail('raw: the frame is all in hex (no eth prefix)');
      const words: string[] = [];
      while (!t.done) words.push(t.word('hex digits'));
      return { proto: 'raw', bytes: hexBytes(words) };
    }
    default:
      return fail(`'${kind}' is not a frame kind (TCP, UDP, ICMP, ARP, DHCP, raw)`);
  }
}

/** Whether a frame has a `*` anywhere (allowed only in expected frames). */
function hasWildcard(f: FrameSpec): boolean {
  switch (f.proto) {
    case 'tcp':
      return f.seq === '*' || f.ack === '*' || f.win === '*' || (f.options ?? []).some((o) => ('value' in o && o.value === '*') || (o.kind === 'TS' && (o.val === '*' || o.ecr === '*')));
    case 'icmp':
      return f.echoId === '*' || f.echoSeq === '*';
    case 'dhcp':
      return f.xid === '*';
    default:
      return false;
  }
}

// --- host seam ------------------------------------------------------------------------------

/** Flow names bound so far, in the order the script binds them: the check that every `@NAME` used is bound before. */
interface Flows {
  readonly names: Set<string>;
  current: string | undefined;
  /** The highest guest number a frame line names. */
  guests: number;
}

const CURRENT = '';

function parseSeam(t: Tokens, name: string, kinds: readonly ArgKind[], flows: Flows, isCall: boolean): SeamStep {
  let flowName: string | undefined;
  const rest: Token[] = [];
  while (!t.done && t.peekWord() !== '->') {
    const tok = t.next()!;
    if (tok.t === 'word' && tok.s.startsWith('@')) {
      if (flowName !== undefined) fail('two @NAMEs');
      if (!/^@[A-Za-z_][A-Za-z0-9_-]{0,31}$/.test(tok.s)) fail(`'${tok.s}' is not a flow name (@ then a letter, letters, digits, _ -)`);
      flowName = tok.s.slice(1);
    } else rest.push(tok);
  }
  const r = new Tokens(rest);
  const args: SeamArg[] = [];
  for (const k of kinds) {
    switch (k) {
      case 'id':
      case 'bind': {
        if (k === 'bind' && isCall) {
          const n = flowName ?? CURRENT;
          flows.names.add(n);
          flows.current = n;
          args.push({ k: 'flow', name: n, bind: true });
        } else {
          const n = flowName ?? flows.current;
          if (n === undefined) fail(`${name}: no flow yet (an 'expect host tcpConnect/udpOpen/…' line opens one; or name one with @NAME)`);
          if (!flows.names.has(n!)) fail(`${name}: no flow @${n} yet (an 'expect host … @${n}' line that opens it comes first)`);
          args.push({ k: 'flow', name: n!, bind: false });
        }
        break;
      }
      case 'ep':
        args.push({ k: 'value', v: endpoint(r.word('an ADDRESS:PORT')) });
        break;
      case 'from':
      case 'local':
        args.push(r.accept(k) ? { k: 'value', v: endpoint(r.word('an ADDRESS:PORT')) } : isCall ? { k: 'any' } : { k: 'value', v: undefined });
        break;
      case 'data': {
        const d = r.next();
        if (d?.t !== 'str') fail(`${name}: expected the data as a "string"`);
        args.push({ k: 'value', v: (d as { b: Uint8Array }).b });
        break;
      }
      case 'code': {
        const c = r.word('an error code (ECONNREFUSED, ECONNRESET, …)');
        if (!/^E[A-Z0-9]{1,30}$/.test(c)) fail(`'${c}' is not an error code like ECONNREFUSED`);
        args.push({ k: 'value', v: c });
        break;
      }
      case 'bool': {
        const b = r.word('on or off');
        if (b !== 'on' && b !== 'off') fail(`${name}: '${b}' is not on or off`);
        args.push({ k: 'value', v: b === 'on' });
        break;
      }
      case 'conn':
        args.push({ k: 'value', v: num(r.word('an accepted connection number'), 'connection', U32) });
        break;
    }
  }
  r.end();
  if (flowName !== undefined && !kinds.includes('id') && !kinds.includes('bind')) fail(`${name} names no flow`);
  return { name, args };
}

// --- lines ------------------------------------------------------------------------------------

/** Cuts a `#` comment outside strings. */
function stripComment(s: string): string {
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && inString) i++;
    else if (c === '"') inString = !inString;
    else if (c === '#' && !inString) return s.slice(0, i);
  }
  return s;
}

interface Header {
  seed: number;
  guestMacs: Mac[];
  options: Record<string, string | boolean>;
  toleranceUs: number;
  optionLines: Record<string, number>;
  dnsUpstreams: Endpoint[];
}

const DIRECTIVES: ReadonlySet<string> = new Set(['seed', 'guest', 'tolerance', 'option', 'dns-upstream']);

/** The `NetworkOptions` keys (src/stack/config.ts) an `option` line may set: those with one value. */
const OPTION_KEYS: ReadonlySet<string> = new Set<keyof NetworkOptions>([
  'net', 'host', 'dns', 'dhcpstart', 'dhcppool', 'domainname', 'hostname', 'mtu', 'leasetime', 'tftpservername', 'bootfile', 'restrict',
  'disableHostLoopback', 'maxSessionLeases', 'linkDelay', 'linkLoss', 'linkDuplicate', 'linkReorder', 'linkRate', 'natPmp', 'outbound', 'outbound6',
  'nat', 'nat-mapping', 'nat-filtering', 'nat-hairpin', 'nat-port-preservation', 'nat-udp-timeout', 'nat-refresh',
]);
/** Switch values, as booleans (a boolean key such as `restrict` reads any string as true). */
const ON: ReadonlySet<string> = new Set(['on', 'yes', 'true']);
const OFF: ReadonlySet<string> = new Set(['off', 'no', 'false']);

function parseDirective(w: string, t: Tokens, h: Header, line: number): void {
  switch (w) {
    case 'seed':
      h.seed = num(t.word('a seed'), 'seed', U32);
      break;
    case 'guest': {
      // `guest MAC` (guest 1) or `guest N MAC`.
      const w1 = t.word("the guest's MAC, or its number and MAC");
      const n = w1.includes(':') ? 1 : num(w1, 'guest number', MAX_GUESTS);
      if (n < 1) fail(`guest: numbers start at 1`);
      const m = w1.includes(':') ? mac(w1) : mac(t.word(`guest ${n}'s MAC`));
      while (h.guestMacs.length < n) h.guestMacs.push(defaultGuestMac(h.guestMacs.length + 1));
      h.guestMacs[n - 1] = m;
      break;
    }
    case 'tolerance': {
      const s = t.word('seconds');
      if (!/^[0-9]{1,4}(\.[0-9]{1,6})?$/.test(s)) fail(`tolerance: '${s}' is not seconds`);
      h.toleranceUs = Math.round(Number(s) * 1e6);
      break;
    }
    case 'dns-upstream':
      if (h.dnsUpstreams.length >= 8) fail('dns-upstream: at most 8');
      h.dnsUpstreams.push(endpoint(t.word('the resolver ADDRESS:PORT')));
      break;
    case 'option': {
      const kv = t.word('KEY=VALUE');
      const m = /^([A-Za-z][A-Za-z0-9-]*)=(.+)$/.exec(kv);
      if (m === null) fail(`option: '${kv}' is not KEY=VALUE`);
      const key = m![1]!;
      if (!OPTION_KEYS.has(key)) fail(`option: '${key}' is not one of ${[...OPTION_KEYS].join(', ')}`);
      const v = m![2]!;
      h.options[key] = ON.has(v) ? true : OFF.has(v) ? false : v;
      h.optionLines[key] = line;
      break;
    }
  }
  t.end();
}

/** Parses a script; never throws. */
export function parseScript(text: string): { script: Script } | { errors: ScriptError[]; more: number } {
  if (text.length > MAX_SCRIPT_BYTES) return { errors: [{ line: 0, message: `the script is over ${MAX_SCRIPT_BYTES} bytes` }], more: 0 };
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_SCRIPT_LINES) return { errors: [{ line: 0, message: `the script is over ${MAX_SCRIPT_LINES} lines` }], more: 0 };
  const errors: ScriptError[] = [];
  let more = 0;
  const steps: Step[] = [];
  const h: Header = { seed: 1, guestMacs: [DEFAULT_GUEST_MAC], options: {}, toleranceUs: 0, optionLines: {}, dnsUpstreams: [] };
  const flows: Flows = { names: new Set(), current: undefined, guests: 1 };
  let us = 0;
  for (const [i, raw] of lines.entries()) {
    const line = i + 1;
    try {
      if (/[^\t\x20-\x7e]/.test(raw)) fail('the script is ASCII: a byte outside printable ASCII (write -> for an arrow, \\xHH in strings)');
      const body = stripComment(raw).trim();
      if (body === '') continue;
      const t = new Tokens(tokenize(body));
      let w = t.peekWord() ?? '';
      let at = us;
      if (DIRECTIVES.has(w)) {
        if (steps.length > 0) fail(`'${w}' is a directive: directives come before the first step`);
        t.next();
        parseDirective(w, t, h, line);
        continue;
      }
      if (/^\+?[0-9]/.test(w)) {
        t.next();
        at = parseTime(w, us);
        w = t.peekWord() ?? '';
      }
      const text = body.slice(body.indexOf(w)).trim();
      const step = parseStep(t, flows, text);
      us = at;
      steps.push(...step.map((s) => ({ line, text: s.text, us, body: s.body })));
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      if (errors.length < MAX_ERRORS) errors.push({ line, message: e.message });
      else more++;
    }
  }
  if (errors.length > 0) return { errors, more };
  if (steps.length === 0) return { errors: [{ line: lines.length, message: 'the script has no steps (frames, host lines or ticks)' }], more: 0 };
  while (h.guestMacs.length < flows.guests) h.guestMacs.push(defaultGuestMac(h.guestMacs.length + 1));
  return { script: { steps, seed: h.seed, guestMacs: h.guestMacs, options: h.options, toleranceUs: h.toleranceUs, optionLines: h.optionLines, dnsUpstreams: h.dnsUpstreams } };
}

function parseStep(t: Tokens, flows: Flows, text: string): { text: string; body: StepBody }[] {
  const w = t.next();
  if (w === undefined) return fail('a time and nothing after it');
  if (w.t !== 'word') return fail(w.t === 'opts' ? "a line starts with '< ' (a space after <: '<mss …>' is TCP options)" : 'a line starts with <, >, host, expect host, tick or forward');
  switch (w.s) {
    case '<':
    case '>': {
      let guest = 1;
      if (t.accept('guest')) {
        guest = num(t.word('a guest number'), 'guest number', MAX_GUESTS);
        if (guest < 1) fail('guest: numbers start at 1');
        flows.guests = Math.max(flows.guests, guest);
      }
      const frame = parseFrame(t);
      t.end();
      if (w.s === '<' && hasWildcard(frame)) fail('* (any value) belongs in expected frames (>), not in a frame the guest sends');
      return [{ text: text.slice(1).trim(), body: w.s === '<' ? { k: 'in', guest, frame } : { k: 'out', guest, frame } }];
    }
    case 'tick':
      t.end();
      return [{ text, body: { k: 'tick' } }];
    case 'forward': {
      // A port forward opened now, as `--hostfwd RULE` would (one port): an input like a guest frame.
      const r = t.word('a --hostfwd rule (tcp::8080-10.0.2.15:80)');
      t.end();
      let rule: ForwardRule;
      try {
        rule = parseForwardRule(r);
      } catch (e) {
        return fail(`forward: ${e instanceof Error ? e.message : String(e)}`);
      }
      return [{ text, body: { k: 'forward', rule } }];
    }
    case 'expect': {
      if (!t.accept('host')) fail("expected 'expect host CALL'");
      const n = t.word('a Host call (tcpConnect, tcpWrite, …, or connect, write, end, reset, pause)');
      const name = CALL_ALIASES[n] ?? n;
      const kinds = Object.hasOwn(CALL_ARGS, name) ? CALL_ARGS[name] : undefined;
      if (kinds === undefined) fail(`'${n}' is not a Host call (${Object.keys(CALL_ARGS).join(', ')}, or connect, write, end, reset, pause)`);
      const call = parseSeam(t, name, kinds!, flows, true);
      let result: number | undefined;
      if (t.accept('->')) {
        if (name !== 'tcpWrite') fail(`only tcpWrite returns a value (-> N), not ${name}`);
        result = num(t.word('the bytes tcpWrite reports still buffered'), 'result', U32);
      }
      t.end();
      return [{ text, body: { k: 'call', call, ...(result !== undefined && { result }) } }];
    }
    case 'host': {
      const n = t.word('a host event (tcpConnected, tcpData, …, or connect, write, end, reset)');
      if (n === 'connect') return hostConnect(t, flows, text);
      if (n === 'reset') {
        const ev = parseSeam(t, 'tcpError', ['id'], flows, false);
        t.end();
        return [{ text, body: { k: 'event', event: { name: 'tcpError', args: [...ev.args, { k: 'value', v: 'ECONNRESET' }] } } }];
      }
      const name = EVENT_ALIASES[n] ?? n;
      const kinds = Object.hasOwn(EVENT_ARGS, name) ? EVENT_ARGS[name] : undefined;
      if (kinds === undefined) fail(`'${n}' is not a host event (${Object.keys(EVENT_ARGS).join(', ')}, or connect, write, end, reset, closed, drained, error)`);
      const event = parseSeam(t, name, kinds!, flows, false);
      t.end();
      return [{ text, body: { k: 'event', event } }];
    }
    default:
      return fail(`'${w.s}' does not start a step (<, >, host, expect host, tick, forward)`);
  }
}

/** `host connect ADDR:PORT [@NAME] -> accept|refuse|ECODE`: the tcpConnect expected, then the host's answer. */
function hostConnect(t: Tokens, flows: Flows, text: string): { text: string; body: StepBody }[] {
  const call = parseSeam(t, 'tcpConnect', CALL_ARGS['tcpConnect']!, flows, true);
  if (!t.accept('->')) fail("host connect: expected '-> accept', '-> refuse' or '-> ECODE'");
  const a = t.word('accept, refuse or an error code');
  t.end();
  const flow = call.args[0]!;
  const id: SeamArg = { ...(flow as { k: 'flow'; name: string }), bind: false };
  let event: SeamStep;
  if (a === 'accept') event = { name: 'tcpConnected', args: [id, { k: 'value', v: undefined }] };
  else if (a === 'refuse' || /^E[A-Z0-9]{1,30}$/.test(a)) event = { name: 'tcpError', args: [id, { k: 'value', v: a === 'refuse' ? 'ECONNREFUSED' : a }] };
  else return fail(`host connect: '${a}' is not accept, refuse or an error code`);
  return [{ text, body: { k: 'call', call } }, { text, body: { k: 'event', event } }];
}
