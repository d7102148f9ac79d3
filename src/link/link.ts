/**
 * What every guest link shares: the frame-size limits, the handler a session gives a link,
 * and the description of a bound listener.
 *
 * A link is a transport. It moves whole Ethernet frames (no FCS) between one guest and one
 * session and never looks inside them: no IP parsing happens here (DESIGN.md, "Layers").
 * Links that carry a length (QEMU stream) check it, because a wrong length desynchronises
 * the byte stream; links with message boundaries (UDP datagrams, WebSocket messages) hand
 * every non-empty message to the stack, which counts runts and garbage as drops.
 */
import { ETHERNET_HEADER_LEN, VLAN_TAG_LEN } from '../ethernet/wire.js';
import { MAX_MTU } from '../net/mtu.js';
import type { CountedEvent, Drop } from '../util/drops.js';

/**
 * The largest frame a link carries: the largest MTU (65520, the maximum of `--mtu`) plus the
 * Ethernet header (14) plus one 802.1Q tag (4) = 65538 bytes.
 */
export const MAX_FRAME_LEN = MAX_MTU + ETHERNET_HEADER_LEN + VLAN_TAG_LEN;

/** The smallest frame a length-prefixed link accepts: an Ethernet header. */
export const MIN_FRAME_LEN = ETHERNET_HEADER_LEN;

/**
 * Bytes a link lets pile up in a socket's send buffer before it drops outgoing frames
 * (counted as 'link.tx-overflow') rather than buffering without limit.
 */
export const TX_QUEUE_LIMIT_BYTES = 4 * 1024 * 1024;

/** `ws-e1000`: the emulator forwards its e1000's register accesses and DMA; the model runs here. */
export type LinkKind = 'stream' | 'dgram' | 'ws' | 'ws-e1000';

/** What a session gives a link when the link is accepted. */
export interface LinkHandler {
  /** One frame from the guest. The bytes are the receiver's to keep: the link never reuses them. */
  frame(frame: Uint8Array): void;
  /** The link is gone (peer closed, error, idle expiry or `close()`); called exactly once, after the last `frame`. */
  closed(reason: string): void;
}

/** One accepted guest attachment. */
export interface GuestLink {
  readonly kind: LinkKind;
  /** The peer, for logs: `unix`, `127.0.0.1:40000`, … */
  readonly peer: string;
  /**
   * The network the peer asked to join (a WebSocket URL's `?network=NAME`, already checked
   * against src/net/network-name.ts), when it asked for one; it wins over the listener's.
   */
  readonly network?: string | undefined;
  /**
   * Queues one frame for the guest. Never throws: a frame that cannot be queued (closed
   * link, full send buffer) is counted in `counters` and dropped.
   */
  send(frame: Uint8Array): void;
  /**
   * Optional: a region of `length` bytes inside the link's own output buffer, zeroed unless
   * `zeroed` is false (it may then hold bytes of earlier frames: the caller overwrites every
   * byte). A frame built there and passed to `send` next is sent without a copy. The region
   * is valid until the next `allocFrame` or `send` call; building two frames at once is not
   * supported.
   */
  allocFrame?(length: number, zeroed?: boolean): Uint8Array;
  /** Closes the link; `handler.closed(reason)` follows (once). */
  close(reason: string): void;
  /** Link-level drops and events: 'link.tx-overflow', 'link.bad-frame-length', … */
  readonly counters: LinkCounters;
}

/** Counters a link keeps; a subset of util/drops' Counters so sessions can merge them. */
export interface LinkCounters {
  count(name: Drop | CountedEvent, n?: number): void;
  get(name: string): number;
  total(prefix?: string): number;
  snapshot(): Record<string, number>;
}

/** Called by a listener for each new guest; returns the handler that receives its frames. */
export type AcceptLink = (link: GuestLink) => LinkHandler;

/** A bound listener's address, as printed in the daemon's "listening" line. */
export type ListenerAddress =
  | { readonly kind: 'ws'; readonly host: string; readonly port: number; readonly url: string }
  | { readonly kind: 'stream'; readonly transport: 'unix'; readonly path: string }
  | { readonly kind: 'stream'; readonly transport: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'dgram'; readonly host: string; readonly port: number };

/** A bound listener. */
export interface Listener {
  readonly address: ListenerAddress;
  /** Stops accepting and closes every link it accepted. Resolves when the socket is closed. */
  close(): Promise<void>;
}

/** Minimal logger surface links use (pino's Logger satisfies it). */
export interface LinkLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** `host:port`, with brackets around an IPv6 host. */
export const formatHostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
