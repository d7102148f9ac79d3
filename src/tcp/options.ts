/**
 * TCP options (RFC 9293 §3.1 "Options"): MSS (RFC 9293 §3.7.1), window scale and
 * timestamps (RFC 7323 §2, §3), SACK-permitted and SACK (RFC 2018 §2, §3). EOL ends the
 * list, NOP is skipped, and any other kind with a sane length is skipped unread (TCP Fast
 * Open, MPTCP, MD5 and AO signatures, experiments): RFC 9293 §3.1 requires a receiver to
 * accept options it does not implement.
 *
 * Malformed is a Drop: a length below 2 or past the header, or a known kind whose length is
 * not the one its RFC fixes. (Linux instead ignores a known option of the wrong length; no
 * real peer sends one, and a Drop is counted where an ignored option is not.)
 *
 * Writing uses Linux's layout (tcp_options_write), every option 4-aligned with NOPs, so
 * the length is already a multiple of 4: MSS; SACK-permitted folded into the timestamp's
 * two leading NOPs; timestamp; window scale; SACK blocks.
 */
import type { Drop } from '../util/drops.js';
import { put16, put32, u16, u32 } from '../util/bytes.js';

/** The parsed options of one segment. Absent fields were not present (or, for writing, are not sent). */
export interface TcpOptions {
  /** Maximum segment size, 0..0xffff (SYN only, RFC 9293 §3.7.1). */
  readonly mss?: number;
  /** Shift count 0..14; a received shift above 14 is read as 14 (RFC 7323 §2.3). */
  readonly windowScale?: number;
  /** Present only as `true`. */
  readonly sackPermitted?: boolean;
  /** [left, right) edges as u32 sequence numbers, 1..4 blocks, in the sender's order. */
  readonly sack?: readonly (readonly [number, number])[];
  /** TSval and TSecr, u32 each (RFC 7323 §3.2). */
  readonly timestamp?: { readonly value: number; readonly echo: number };
}

/** The longest options area: data offset 15 words minus the 20-byte header. */
export const TCP_MAX_OPTIONS_LEN = 40;

/** IANA "TCP Option Kind Numbers". */
export const TCP_OPTION = { EOL: 0, NOP: 1, MSS: 2, WINDOW_SCALE: 3, SACK_PERMITTED: 4, SACK: 5, TIMESTAMP: 8 } as const;

/** Fixed lengths, kind and length bytes included. */
const LEN = { MSS: 4, WINDOW_SCALE: 3, SACK_PERMITTED: 2, TIMESTAMP: 10, SACK_BLOCK: 8 } as const;

/** RFC 7323 §2.3: "the shift count MUST be limited to 14". */
const MAX_WINDOW_SCALE = 14;

/** The options of a segment that carries none; shared, never mutated. */
export const NO_TCP_OPTIONS: TcpOptions = Object.freeze({});

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Parses the options area of a header (`b` is exactly the bytes between offset 20 and the data). */
export function parseTcpOptions(b: Uint8Array): TcpOptions | Drop {
  const end = b.length;
  let o: Mutable<TcpOptions> | undefined;
  let i = 0;
  while (i < end) {
    const kind = b[i]!;
    if (kind === TCP_OPTION.EOL) break;
    if (kind === TCP_OPTION.NOP) { i++; continue; }
    if (i + 1 >= end) return 'tcp.bad-option-length';
    const len = b[i + 1]!;
    if (len < 2 || i + len > end) return 'tcp.bad-option-length';
    switch (kind) {
      case TCP_OPTION.MSS:
        if (len !== LEN.MSS) return 'tcp.bad-mss-option';
        (o ??= {}).mss = u16(b, i + 2);
        break;
      case TCP_OPTION.WINDOW_SCALE:
        if (len !== LEN.WINDOW_SCALE) return 'tcp.bad-window-scale-option';
        (o ??= {}).windowScale = Math.min(b[i + 2]!, MAX_WINDOW_SCALE);
        break;
      case TCP_OPTION.SACK_PERMITTED:
        if (len !== LEN.SACK_PERMITTED) return 'tcp.bad-sack-permitted-option';
        (o ??= {}).sackPermitted = true;
        break;
      case TCP_OPTION.SACK: {
        const n = (len - 2) >>> 3;
        if (n === 0 || len !== 2 + n * LEN.SACK_BLOCK) return 'tcp.bad-sack-option';
        const blocks: (readonly [number, number])[] = [];
        for (let k = i + 2; k < i + len; k += LEN.SACK_BLOCK) blocks.push([u32(b, k), u32(b, k + 4)]);
        (o ??= {}).sack = blocks;
        break;
      }
      case TCP_OPTION.TIMESTAMP:
        if (len !== LEN.TIMESTAMP) return 'tcp.bad-timestamp-option';
        (o ??= {}).timestamp = { value: u32(b, i + 2), echo: u32(b, i + 6) };
        break;
      default:
        break;    // unknown kind: skipped by its length (RFC 9293 §3.1)
    }
    i += len;
  }
  return o ?? NO_TCP_OPTIONS;
}

/** Aligned sizes of the layout writeTcpOptions uses. */
const ALIGNED = { MSS: 4, WINDOW_SCALE: 4, SACK_PERMITTED: 4, TIMESTAMP: 12, SACK_HEAD: 4 } as const;

/** Bytes for everything but SACK blocks. */
function fixedLength(o: TcpOptions): number {
  let n = 0;
  if (o.mss !== undefined) n += ALIGNED.MSS;
  if (o.timestamp !== undefined) n += ALIGNED.TIMESTAMP;   // SACK-permitted rides in its NOPs
  else if (o.sackPermitted === true) n += ALIGNED.SACK_PERMITTED;
  if (o.windowScale !== undefined) n += ALIGNED.WINDOW_SCALE;
  return n;
}

/**
 * How many SACK blocks are written: all of them (at most 4) if they fit in the 40 bytes
 * left by the other options, else the leading ones that do (RFC 2018 §3: 3 blocks with
 * timestamps). The first block must be the most recent one, so trimming the tail is right.
 */
export function tcpSackBlocksWritten(o: TcpOptions): number {
  const sack = o.sack;
  if (sack === undefined || sack.length === 0) return 0;
  const room = TCP_MAX_OPTIONS_LEN - fixedLength(o) - ALIGNED.SACK_HEAD;
  return Math.max(0, Math.min(sack.length, 4, Math.floor(room / LEN.SACK_BLOCK)));
}

/** Bytes writeTcpOptions writes: a multiple of 4, at most 40. */
export function tcpOptionsLength(o: TcpOptions): number {
  const blocks = tcpSackBlocksWritten(o);
  return fixedLength(o) + (blocks === 0 ? 0 : ALIGNED.SACK_HEAD + blocks * LEN.SACK_BLOCK);
}

/**
 * Writes the options at `into[at]` and returns tcpOptionsLength. `sackPermitted: false`
 * and an empty `sack` write nothing; SACK blocks that do not fit are left out.
 */
export function writeTcpOptions(o: TcpOptions, into: Uint8Array, at = 0): number {
  let i = at;
  if (o.mss !== undefined) {
    into[i] = TCP_OPTION.MSS; into[i + 1] = LEN.MSS; put16(into, i + 2, o.mss);
    i += ALIGNED.MSS;
  }
  if (o.timestamp !== undefined) {
    if (o.sackPermitted === true) {
      into[i] = TCP_OPTION.SACK_PERMITTED; into[i + 1] = LEN.SACK_PERMITTED;
    } else {
      into[i] = TCP_OPTION.NOP; into[i + 1] = TCP_OPTION.NOP;
    }
    into[i + 2] = TCP_OPTION.TIMESTAMP; into[i + 3] = LEN.TIMESTAMP;
    put32(into, i + 4, o.timestamp.value);
    put32(into, i + 8, o.timestamp.echo);
    i += ALIGNED.TIMESTAMP;
  } else if (o.sackPermitted === true) {
    into[i] = TCP_OPTION.NOP; into[i + 1] = TCP_OPTION.NOP;
    into[i + 2] = TCP_OPTION.SACK_PERMITTED; into[i + 3] = LEN.SACK_PERMITTED;
    i += ALIGNED.SACK_PERMITTED;
  }
  if (o.windowScale !== undefined) {
    into[i] = TCP_OPTION.NOP; into[i + 1] = TCP_OPTION.WINDOW_SCALE; into[i + 2] = LEN.WINDOW_SCALE;
    into[i + 3] = o.windowScale & 0xff;
    i += ALIGNED.WINDOW_SCALE;
  }
  const blocks = tcpSackBlocksWritten(o);
  if (blocks > 0) {
    const sack = o.sack!;
    into[i] = TCP_OPTION.NOP; into[i + 1] = TCP_OPTION.NOP;
    into[i + 2] = TCP_OPTION.SACK; into[i + 3] = 2 + blocks * LEN.SACK_BLOCK;
    i += ALIGNED.SACK_HEAD;
    for (let k = 0; k < blocks; k++) {
      const [left, right] = sack[k]!;
      put32(into, i, left);
      put32(into, i + 4, right);
      i += LEN.SACK_BLOCK;
    }
  }
  return i - at;
}
