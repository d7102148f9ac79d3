/**
 * NAT-PMP (RFC 6886) and PCP (RFC 6887) messages, the gateway's side: requests parsed,
 * responses written. Both protocols share UDP port 5351 and tell each other apart by the
 * first octet, the version: 0 is NAT-PMP, 2 is PCP (RFC 6887 §9); any other version gets
 * PCP's UNSUPP_VERSION.
 *
 * Parsing never throws. What cannot be answered at all (fewer than 2 octets, a response sent
 * to us) is a `Drop`; a request that can be answered with an error is a `*-error` request
 * carrying the result code, so the server answers it as the RFCs ask:
 * - NAT-PMP (RFC 6886 §3.5): an unsupported opcode comes back whole, its opcode's top bit
 *   set, result 5 (Unsupported opcode) in octets 2-3 and the epoch in octets 4-7. A mapping
 *   request shorter than its 12 octets is dropped ('natpmp.truncated'): NAT-PMP has no code
 *   for a malformed request. Octets after a request's end are ignored.
 * - PCP (RFC 6887 §8.3, §7.2): a request that is not 24..1100 octets, a multiple of 4, is
 *   MALFORMED_REQUEST, so is a MAP shorter than its 60 octets; an opcode other than ANNOUNCE
 *   and MAP (PEER, AUTHENTICATION, …) is UNSUPP_OPCODE; an option of the mandatory range
 *   (code < 128) other than PREFER_FAILURE is UNSUPP_OPTION, one that runs past the end, a
 *   PREFER_FAILURE with data or given twice, is MALFORMED_OPTION; optional options are skipped.
 *   An error response is the request (its first 1100 octets) with the response header written
 *   over its first 24 octets (§7.2: "copied from the request").
 *
 * Unlike the per-packet formats, the response writers return a fresh array: answers are a
 * few per mapping, and the UDP writer copies the payload into the frame anyway.
 */
import type { Ipv4Addr } from '../util/bytes.js';

/** The port both protocols listen on (RFC 6886 §3.1, RFC 6887 §19.1). */
export const PORTMAP_PORT = 5351;
export const NATPMP_VERSION = 0;
export const PCP_VERSION = 2;
/** Largest PCP message (RFC 6887 §7). */
export const PCP_MAX_LEN = 1100;
export const PCP_HEADER_LEN = 24;
export const PCP_MAP_LEN = 36;
const NONCE_LEN = 12;

/** NAT-PMP opcodes (RFC 6886 §3.2, §3.3). */
export const NATPMP_OP = { ADDRESS: 0, MAP_UDP: 1, MAP_TCP: 2 } as const;
/** NAT-PMP result codes (RFC 6886 §3.5). */
export const NATPMP_RESULT = { SUCCESS: 0, UNSUPP_VERSION: 1, REFUSED: 2, NETWORK_FAILURE: 3, OUT_OF_RESOURCES: 4, UNSUPP_OPCODE: 5 } as const;
/** PCP opcodes (RFC 6887 §19.2). */
export const PCP_OP = { ANNOUNCE: 0, MAP: 1, PEER: 2 } as const;
/** PCP result codes (RFC 6887 §7.4). */
export const PCP_RESULT = {
  SUCCESS: 0, UNSUPP_VERSION: 1, NOT_AUTHORIZED: 2, MALFORMED_REQUEST: 3, UNSUPP_OPCODE: 4, UNSUPP_OPTION: 5, MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7, NO_RESOURCES: 8, UNSUPP_PROTOCOL: 9, USER_EX_QUOTA: 10, CANNOT_PROVIDE_EXTERNAL: 11, ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13,
} as const;
/** PCP option codes (RFC 6887 §19.3). */
export const PCP_OPTION = { THIRD_PARTY: 1, PREFER_FAILURE: 2, FILTER: 3 } as const;
/** IP protocol numbers a MAP may name. */
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** What a parsed request asks. */
export type PortmapRequest =
  | { readonly kind: 'natpmp-address' }
  | {
      readonly kind: 'natpmp-map';
      readonly protocol: 'udp' | 'tcp';
      readonly internalPort: number;
      readonly suggestedPort: number;
      readonly lifetimeS: number;
    }
  /** An opcode NAT-PMP does not define: answered with `request` echoed and result 5. */
  | { readonly kind: 'natpmp-error'; readonly result: number; readonly request: Uint8Array }
  | { readonly kind: 'pcp-announce'; readonly lifetimeS: number; readonly clientAddr: Ipv4Addr | undefined }
  | {
      readonly kind: 'pcp-map';
      readonly lifetimeS: number;
      /** The client address field as IPv4 (an IPv4-mapped IPv6 address); undefined: not IPv4. */
      readonly clientAddr: Ipv4Addr | undefined;
      /** 12 octets, a view into the request. */
      readonly nonce: Uint8Array;
      /** IP protocol number; 0: all protocols. */
      readonly protocol: number;
      readonly internalPort: number;
      readonly suggestedPort: number;
      /** The suggested external address as IPv4; undefined: not IPv4 (or ::, no preference). */
      readonly suggestedAddr: Ipv4Addr | undefined;
      readonly preferFailure: boolean;
    }
  /** A PCP request answered with an error; `request` is echoed (RFC 6887 §7.2). */
  | { readonly kind: 'pcp-error'; readonly result: number; readonly opcode: number; readonly lifetimeS: number; readonly request: Uint8Array };

/** What cannot be answered at all: fewer than 2 octets, a response sent to the server, a truncated NAT-PMP mapping request. */
export const PORTMAP_DROPS = ['portmap.too-short', 'portmap.response', 'natpmp.truncated'] as const;
export type PortmapDrop = (typeof PORTMAP_DROPS)[number];

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** A 16-octet address field as IPv4 when it is IPv4-mapped (::ffff:a.b.c.d, RFC 6887 §5). */
export function mappedIpv4(b: Uint8Array, at: number): Ipv4Addr | undefined {
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return undefined;
  if (b[at + 10] !== 0xff || b[at + 11] !== 0xff) return undefined;
  return u32(b, at + 12);
}

/** Writes `a` as ::ffff:a.b.c.d into 16 octets at `at`. */
export function putMappedIpv4(b: Uint8Array, at: number, a: Ipv4Addr): void {
  b.fill(0, at, at + 10);
  b[at + 10] = 0xff;
  b[at + 11] = 0xff;
  put32(b, at + 12, a);
}

/** One request to port 5351. */
export function parsePortmapRequest(b: Uint8Array): PortmapRequest | PortmapDrop {
  if (b.length < 2) return 'portmap.too-short';
  if (b[0] === NATPMP_VERSION) return parseNatPmp(b);
  return parsePcp(b);
}

function parseNatPmp(b: Uint8Array): PortmapRequest | PortmapDrop {
  const op = b[1]!;
  if (op >= 128) return 'portmap.response';
  if (op === NATPMP_OP.ADDRESS) return { kind: 'natpmp-address' };
  if (op === NATPMP_OP.MAP_UDP || op === NATPMP_OP.MAP_TCP) {
    if (b.length < 12) return 'natpmp.truncated';
    return {
      kind: 'natpmp-map',
      protocol: op === NATPMP_OP.MAP_UDP ? 'udp' : 'tcp',
      internalPort: u16(b, 4),
      suggestedPort: u16(b, 6),
      lifetimeS: u32(b, 8),
    };
  }
  return { kind: 'natpmp-error', result: NATPMP_RESULT.UNSUPP_OPCODE, request: b };
}

function parsePcp(b: Uint8Array): PortmapRequest | PortmapDrop {
  if ((b[1]! & 0x80) !== 0) return 'portmap.response';
  const opcode = b[1]! & 0x7f;
  const lifetimeS = b.length >= 8 ? u32(b, 4) : 0;
  const error = (result: number): PortmapRequest => ({ kind: 'pcp-error', result, opcode, lifetimeS, request: b.subarray(0, PCP_MAX_LEN) });
  if (b[0] !== PCP_VERSION) return error(PCP_RESULT.UNSUPP_VERSION);
  if (b.length < PCP_HEADER_LEN || b.length % 4 !== 0 || b.length > PCP_MAX_LEN) return error(PCP_RESULT.MALFORMED_REQUEST);
  const clientAddr = mappedIpv4(b, 8);
  let optionsAt: number;
  if (opcode === PCP_OP.ANNOUNCE) optionsAt = PCP_HEADER_LEN;
  else if (opcode === PCP_OP.MAP) {
    optionsAt = PCP_HEADER_LEN + PCP_MAP_LEN;
    if (b.length < optionsAt) return error(PCP_RESULT.MALFORMED_REQUEST);
  } else return error(PCP_RESULT.UNSUPP_OPCODE);
  let preferFailure = false;
  for (let at = optionsAt; at < b.length; ) {
    if (b.length - at < 4) return error(PCP_RESULT.MALFORMED_OPTION);
    const code = b[at]!;
    const len = u16(b, at + 2);
    const padded = (len + 3) & ~3;
    if (at + 4 + padded > b.length) return error(PCP_RESULT.MALFORMED_OPTION);
    if (code === PCP_OPTION.PREFER_FAILURE && opcode === PCP_OP.MAP) {
      if (len !== 0 || preferFailure) return error(PCP_RESULT.MALFORMED_OPTION);
      preferFailure = true;
    } else if (code < 128) return error(PCP_RESULT.UNSUPP_OPTION);
    at += 4 + padded;
  }
  if (opcode === PCP_OP.ANNOUNCE) return { kind: 'pcp-announce', lifetimeS, clientAddr };
  const m = PCP_HEADER_LEN;
  return {
    kind: 'pcp-map',
    lifetimeS,
    clientAddr,
    nonce: b.subarray(m, m + NONCE_LEN),
    protocol: b[m + 12]!,
    internalPort: u16(b, m + 16),
    suggestedPort: u16(b, m + 18),
    suggestedAddr: mappedIpv4(b, m + 20),
    preferFailure,
  };
}

/** NAT-PMP public address response (RFC 6886 §3.2): 12 octets. */
export function writeNatPmpAddressResponse(r: { result: number; epochS: number; externalAddr: Ipv4Addr }): Uint8Array {
  const b = new Uint8Array(12);
  b[0] = NATPMP_VERSION;
  b[1] = 128 + NATPMP_OP.ADDRESS;
  put16(b, 2, r.result);
  put32(b, 4, r.epochS);
  put32(b, 8, r.externalAddr);
  return b;
}

/** NAT-PMP mapping response (RFC 6886 §3.3): 16 octets. */
export function writeNatPmpMapResponse(r: { protocol: 'udp' | 'tcp'; result: number; epochS: number; internalPort: number; externalPort: number; lifetimeS: number }): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = NATPMP_VERSION;
  b[1] = 128 + (r.protocol === 'udp' ? NATPMP_OP.MAP_UDP : NATPMP_OP.MAP_TCP);
  put16(b, 2, r.result);
  put32(b, 4, r.epochS);
  put16(b, 8, r.internalPort);
  put16(b, 10, r.externalPort);
  put32(b, 12, r.lifetimeS);
  return b;
}

/** NAT-PMP error for an unsupported opcode (RFC 6886 §3.5): the request back, op | 128, result, epoch; at least 8 octets. */
export function writeNatPmpErrorResponse(request: Uint8Array, result: number, epochS: number): Uint8Array {
  const b = new Uint8Array(Math.max(8, Math.min(request.length, PCP_MAX_LEN)));
  b.set(request.subarray(0, b.length));
  b[1] = (request[1] ?? 0) | 0x80;
  put16(b, 2, result);
  put32(b, 4, epochS);
  return b;
}

/** PCP response header fields (RFC 6887 §7.2). */
export interface PcpResponseHeader {
  readonly opcode: number;
  readonly result: number;
  readonly lifetimeS: number;
  readonly epochS: number;
}

function writePcpHeader(h: PcpResponseHeader, b: Uint8Array): void {
  b[0] = PCP_VERSION;
  b[1] = 0x80 | (h.opcode & 0x7f);
  b[2] = 0;
  b[3] = h.result;
  put32(b, 4, h.lifetimeS);
  put32(b, 8, h.epochS);
  b.fill(0, 12, PCP_HEADER_LEN);
}

/** A PCP ANNOUNCE response: the header alone. */
export function writePcpAnnounceResponse(h: Omit<PcpResponseHeader, 'opcode'>): Uint8Array {
  const b = new Uint8Array(PCP_HEADER_LEN);
  writePcpHeader({ ...h, opcode: PCP_OP.ANNOUNCE }, b);
  return b;
}

/** A PCP MAP response (RFC 6887 §11.2): header, then the request's nonce and protocol with the assigned port and address. */
export function writePcpMapResponse(
  h: Omit<PcpResponseHeader, 'opcode'>,
  m: { nonce: Uint8Array; protocol: number; internalPort: number; externalPort: number; externalAddr: Ipv4Addr },
): Uint8Array {
  const b = new Uint8Array(PCP_HEADER_LEN + PCP_MAP_LEN);
  writePcpHeader({ ...h, opcode: PCP_OP.MAP }, b);
  const at = PCP_HEADER_LEN;
  b.set(m.nonce.subarray(0, NONCE_LEN), at);
  b[at + 12] = m.protocol;
  put16(b, at + 16, m.internalPort);
  put16(b, at + 18, m.externalPort);
  putMappedIpv4(b, at + 20, m.externalAddr);
  return b;
}

/**
 * A PCP error response: the request (at most 1100 octets, at least a header's 24, zero-padded
 * to a multiple of 4) with the response header written over its start.
 */
export function writePcpErrorResponse(request: Uint8Array, h: PcpResponseHeader): Uint8Array {
  const len = Math.max(PCP_HEADER_LEN, (Math.min(request.length, PCP_MAX_LEN) + 3) & ~3);
  const b = new Uint8Array(len);
  b.set(request.subarray(0, Math.min(request.length, len)));
  writePcpHeader(h, b);
  return b;
}

/** A NAT-PMP mapping request (what natpmpc sends): for tests and clients. */
export function writeNatPmpMapRequest(r: { protocol: 'udp' | 'tcp'; internalPort: number; suggestedPort: number; lifetimeS: number }): Uint8Array {
  const b = new Uint8Array(12);
  b[1] = r.protocol === 'udp' ? NATPMP_OP.MAP_UDP : NATPMP_OP.MAP_TCP;
  put16(b, 4, r.internalPort);
  put16(b, 6, r.suggestedPort);
  put32(b, 8, r.lifetimeS);
  return b;
}

/** A PCP MAP request (RFC 6887 §11.1), optionally with PREFER_FAILURE: for tests and clients. */
export function writePcpMapRequest(r: {
  lifetimeS: number;
  clientAddr: Ipv4Addr;
  nonce: Uint8Array;
  protocol: number;
  internalPort: number;
  suggestedPort: number;
  suggestedAddr: Ipv4Addr | undefined;
  preferFailure: boolean;
}): Uint8Array {
  const b = new Uint8Array(PCP_HEADER_LEN + PCP_MAP_LEN + (r.preferFailure ? 4 : 0));
  b[0] = PCP_VERSION;
  b[1] = PCP_OP.MAP;
  put32(b, 4, r.lifetimeS);
  putMappedIpv4(b, 8, r.clientAddr);
  const at = PCP_HEADER_LEN;
  b.set(r.nonce.subarray(0, NONCE_LEN), at);
  b[at + 12] = r.protocol;
  put16(b, at + 16, r.internalPort);
  put16(b, at + 18, r.suggestedPort);
  if (r.suggestedAddr !== undefined) putMappedIpv4(b, at + 20, r.suggestedAddr);
  if (r.preferFailure) b[at + PCP_MAP_LEN] = PCP_OPTION.PREFER_FAILURE;
  return b;
}
