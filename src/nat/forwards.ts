/**
 * Port forwarding rules, host → guest, in QEMU's `hostfwd` syntax:
 *
 *     [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 *
 * e.g. `tcp::2222-:22`, `tcp:127.0.0.1:8080-10.0.2.15:80`, `udp::5353-:53`. The protocol
 * defaults to tcp, as in QEMU. `--hostfwd` is repeatable and each value may hold several
 * rules separated by commas (`tcp::2222-:22,udp::6000-:6000`).
 *
 * Differences from QEMU, deliberately:
 * - An empty HOSTADDR listens on 127.0.0.1, not on every interface (QEMU binds INADDR_ANY,
 *   which exposes the guest to the network: openwrt PR #23424's review). Write `0.0.0.0`
 *   to listen everywhere.
 * - An empty GUESTADDR means the session's first DHCP lease (QEMU: the `dhcpstart`
 *   address), resolved when a client connects.
 * - Port 0 is refused on either side.
 */
import { ConfigError } from '../stack/config.js';
import { parseIpv4Addr, type Ipv4Addr } from '../util/bytes.js';

export interface ForwardRule {
  readonly protocol: 'tcp' | 'udp';
  /** The host address to listen on (127.0.0.1 when the rule leaves it empty). */
  readonly hostAddr: Ipv4Addr;
  /** 1..65535. */
  readonly hostPort: number;
  /** The guest's address; undefined: the session's first DHCP lease. */
  readonly guestAddr: Ipv4Addr | undefined;
  /** 1..65535. */
  readonly guestPort: number;
  /** The rule as written, for messages. */
  readonly text: string;
}

const LOOPBACK = 0x7f000001;
const RULE = /^(?:(tcp|udp):)?([^:-]*):(\d*)-([^:]*):(\d*)$/;

function port(text: string, what: string, rule: string): number {
  if (!/^\d+$/.test(text)) throw new ConfigError('hostfwd', `'${rule}': missing ${what} port`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw new ConfigError('hostfwd', `'${rule}': ${what} port ${text} is not in 1..65535`);
  return n;
}

/** Parses one rule; throws ConfigError('hostfwd', reason) naming the rule. */
export function parseForwardRule(text: string): ForwardRule {
  const rule = text.trim();
  const m = RULE.exec(rule);
  if (m === null) {
    if (/^[a-z]+:/.test(rule) && !/^(tcp|udp):/.test(rule)) throw new ConfigError('hostfwd', `'${rule}': protocol must be tcp or udp`);
    throw new ConfigError('hostfwd', `'${rule}': expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`);
  }
  const [, proto, hostText, hostPortText, guestText, guestPortText] = m;
  let hostAddr = LOOPBACK;
  if (hostText !== undefined && hostText !== '') {
    const a = parseIpv4Addr(hostText);
    if (a === undefined) throw new ConfigError('hostfwd', `'${rule}': host address '${hostText}' is not an IPv4 address`);
    hostAddr = a;
  }
  let guestAddr: Ipv4Addr | undefined;
  if (guestText !== undefined && guestText !== '') {
    guestAddr = parseIpv4Addr(guestText);
    if (guestAddr === undefined) throw new ConfigError('hostfwd', `'${rule}': guest address '${guestText}' is not an IPv4 address`);
  }
  return {
    protocol: proto === 'udp' ? 'udp' : 'tcp',
    hostAddr,
    hostPort: port(hostPortText ?? '', 'host', rule),
    guestAddr,
    guestPort: port(guestPortText ?? '', 'guest', rule),
    text: rule,
  };
}

/**
 * Parses every `--hostfwd` value (each possibly a comma-separated list). Two rules may not
 * listen on the same protocol, address and port.
 */
export function parseForwards(values: readonly string[]): ForwardRule[] {
  const rules: ForwardRule[] = [];
  const seen = new Set<string>();
  for (const v of values) {
    for (const part of v.split(',')) {
      if (part.trim() === '') continue;
      const r = parseForwardRule(part);
      const key = `${r.protocol}:${r.hostAddr}:${r.hostPort}`;
      if (seen.has(key)) throw new ConfigError('hostfwd', `'${r.text}': ${r.protocol} port ${r.hostPort} is already forwarded`);
      seen.add(key);
      rules.push(r);
    }
  }
  return rules;
}
