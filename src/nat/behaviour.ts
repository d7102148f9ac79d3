/**
 * The NAT behaviour of a network, in RFC 4787's terms, and its options.
 *
 * - Mapping (RFC 4787 §4.1): which outbound datagrams of one guest endpoint share one public
 *   endpoint (one host socket). `eim` endpoint-independent: every destination; `adm`
 *   address-dependent: destinations with the same address; `apdm` address-and-port-dependent:
 *   one destination endpoint.
 * - Filtering (§5): which inbound datagrams a mapping lets in. `eif`: from anyone; `adf`: from
 *   an address the guest endpoint has sent to; `apdf`: from an endpoint it has sent to.
 * - Hairpinning (§6, REQ-9): a guest sending to a public endpoint of its own network reaches the
 *   mapping's guest, seen from the sender's public endpoint.
 * - Port preservation (§4.1, REQ-3 allows it): a new mapping tries the guest's own source port
 *   first on the host, and takes any port when that one is in use.
 * - Timeout (§4.3, REQ-5): a mapping idle this long expires; at least 120 s unless the user asks
 *   for less. `refresh` (REQ-6): only outbound datagrams keep it alive, or traffic both ways.
 *
 * The default is libslirp's behaviour (QEMU `-netdev user`, slirp4netns): libslirp keeps one
 * unconnected socket per guest source endpoint (endpoint-independent mapping) and passes every
 * datagram that socket receives to the guest (endpoint-independent filtering: a full cone),
 * with no port preservation; hairpinning happens in the host's kernel; its sockets expire
 * after 240 s of traffic either way. Our default timeout is RFC 4787's 120 s minimum.
 */
import { ConfigError } from '../util/config-error.js';

export const NAT_MAPPINGS = ['eim', 'adm', 'apdm'] as const;
export type NatMapping = (typeof NAT_MAPPINGS)[number];
export const NAT_FILTERINGS = ['eif', 'adf', 'apdf'] as const;
export type NatFiltering = (typeof NAT_FILTERINGS)[number];
export const NAT_REFRESHES = ['outbound', 'both'] as const;
export type NatRefresh = (typeof NAT_REFRESHES)[number];

/** The names people give NAT types (RFC 3489's), as mapping and filtering (RFC 4787 §3). */
export const NAT_TYPES = {
  'full-cone': { mapping: 'eim', filtering: 'eif' },
  'restricted-cone': { mapping: 'eim', filtering: 'adf' },
  'port-restricted-cone': { mapping: 'eim', filtering: 'apdf' },
  symmetric: { mapping: 'apdm', filtering: 'apdf' },
} as const satisfies Record<string, { mapping: NatMapping; filtering: NatFiltering }>;
export type NatType = keyof typeof NAT_TYPES;

/** A network's NAT behaviour. */
export interface NatBehaviour {
  readonly mapping: NatMapping;
  readonly filtering: NatFiltering;
  /** REQ-9: guests reach public endpoints of their own network. */
  readonly hairpin: boolean;
  /** Try the guest's source port first for a new mapping's host socket. */
  readonly portPreservation: boolean;
  /** A UDP mapping idle this long (ms) expires; an integer ≥ 1000. */
  readonly udpTimeoutMs: number;
  /** What keeps a UDP mapping alive. */
  readonly refresh: NatRefresh;
}

/** RFC 4787 REQ-5's minimum mapping lifetime: the default. */
export const DEFAULT_UDP_TIMEOUT_S = 120;
/** The longest timeout an option takes: a day. */
export const MAX_UDP_TIMEOUT_S = 86_400;

/** libslirp's behaviour, the default (see the theory above). */
export const DEFAULT_NAT: NatBehaviour = Object.freeze({
  mapping: 'eim',
  filtering: 'eif',
  hairpin: true,
  portPreservation: false,
  udpTimeoutMs: DEFAULT_UDP_TIMEOUT_S * 1000,
  refresh: 'both',
});

/** The NAT options as the user writes them, by their long names. */
export interface NatOptions {
  readonly nat?: string | undefined;
  readonly 'nat-mapping'?: string | undefined;
  readonly 'nat-filtering'?: string | undefined;
  readonly 'nat-hairpin'?: string | boolean | undefined;
  readonly 'nat-port-preservation'?: string | boolean | undefined;
  readonly 'nat-udp-timeout'?: string | number | undefined;
  readonly 'nat-refresh'?: string | undefined;
}

const SWITCH: Readonly<Record<string, boolean>> = { on: true, yes: true, true: true, '1': true, off: false, no: false, false: false, '0': false };

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(option, `'${value}' must be one of ${allowed.join(', ')}`);
}

function onOff(option: string, value: string | boolean | undefined, otherwise: boolean): boolean {
  if (value === undefined) return otherwise;
  if (typeof value === 'boolean') return value;
  const on = SWITCH[value.toLowerCase()];
  if (on === undefined) throw new ConfigError(option, `'${value}' must be on or off`);
  return on;
}

/**
 * Validates the NAT options. `--nat TYPE` sets mapping and filtering; `--nat-mapping` and
 * `--nat-filtering` given beside it replace its half. Throws a ConfigError naming the option.
 */
export function resolveNatBehaviour(o: NatOptions = {}): NatBehaviour {
  const type = o.nat === undefined ? undefined : NAT_TYPES[oneOf('nat', o.nat, Object.keys(NAT_TYPES) as NatType[])];
  const mapping = o['nat-mapping'] === undefined ? (type?.mapping ?? DEFAULT_NAT.mapping) : oneOf('nat-mapping', o['nat-mapping'], NAT_MAPPINGS);
  const filtering = o['nat-filtering'] === undefined ? (type?.filtering ?? DEFAULT_NAT.filtering) : oneOf('nat-filtering', o['nat-filtering'], NAT_FILTERINGS);
  const t = o['nat-udp-timeout'];
  const seconds = t === undefined ? DEFAULT_UDP_TIMEOUT_S : typeof t === 'number' ? t : /^\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_UDP_TIMEOUT_S)
    throw new ConfigError('nat-udp-timeout', `'${String(t)}' must be a whole number of seconds from 1 to ${MAX_UDP_TIMEOUT_S}`);
  return {
    mapping,
    filtering,
    hairpin: onOff('nat-hairpin', o['nat-hairpin'], DEFAULT_NAT.hairpin),
    portPreservation: onOff('nat-port-preservation', o['nat-port-preservation'], DEFAULT_NAT.portPreservation),
    udpTimeoutMs: seconds * 1000,
    refresh: o['nat-refresh'] === undefined ? DEFAULT_NAT.refresh : oneOf('nat-refresh', o['nat-refresh'], NAT_REFRESHES),
  };
}

/** The classic name of a mapping and filtering pair, if it has one. */
export function natTypeOf(b: Pick<NatBehaviour, 'mapping' | 'filtering'>): NatType | undefined {
  for (const [name, t] of Object.entries(NAT_TYPES)) if (t.mapping === b.mapping && t.filtering === b.filtering) return name as NatType;
  return undefined;
}
