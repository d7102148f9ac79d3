/**
 * IPv4 fragment reassembly (RFC 791 §3.2, RFC 815 for the hole bookkeeping), bounded.
 *
 * Theory of operation: fragments are keyed by (source, destination, protocol, id). Each
 * datagram in progress keeps copies of its fragments sorted by offset; it completes when the
 * pieces cover [0, end) without a gap and the last piece (MF=0) has been seen.
 *
 * Deliberate choices:
 * - **Overlaps drop the whole datagram** (counted 'ipv4.frag-overlap'). Overlapping fragments
 *   have no legitimate use and are the classic way to smuggle headers past filters (RFC 1858,
 *   RFC 3128); an exact duplicate (same offset and length) is tolerated and ignored.
 * - **Limits**: at most `maxDatagrams` in progress and `maxBytes` buffered in all; a new
 *   datagram that would exceed them evicts the oldest. A datagram may not exceed 65535 bytes.
 *   Each datagram lives at most `timeoutMs` after its first fragment (Linux uses 30 s).
 */
import type { Counters, Drop } from '../util/drops.js';
import { IPV4_HEADER_LEN, type Ipv4 } from './wire.js';

export interface ReassemblyLimits {
  readonly maxDatagrams: number;
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = { maxDatagrams: 64, maxBytes: 1 << 20, timeoutMs: 30_000 };

/** The largest payload an IPv4 datagram can carry with a minimal header. */
const MAX_PAYLOAD = 65535 - IPV4_HEADER_LEN;
const EMPTY = new Uint8Array(0);

interface Piece {
  readonly offset: number;
  readonly data: Uint8Array;
}

interface Pending {
  readonly firstSeenMs: number;
  /** Sorted by offset, non-overlapping. */
  readonly pieces: Piece[];
  /** Payload length, known once the MF=0 fragment arrived. */
  totalLength: number | undefined;
  bytes: number;
  /** The header of the offset-0 fragment: the reassembled datagram takes its fields. */
  first: Ipv4 | undefined;
}

export class Reassembler {
  readonly #pending = new Map<string, Pending>();
  readonly #limits: ReassemblyLimits;
  readonly #counters: Counters;
  #bytes = 0;

  /** Evictions and timeouts are counted in `counters` ('ipv4.frag-evicted', 'ipv4.frag-timeout'). */
  constructor(counters: Counters, limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS) {
    this.#counters = counters;
    this.#limits = limits;
  }

  /** Number of datagrams in progress. */
  get size(): number {
    return this.#pending.size;
  }

  /** Bytes held in all. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Takes one fragment (MF set or offset > 0). Returns the whole datagram when this fragment
   * completes it, undefined while incomplete, or a Drop for a refused fragment.
   */
  add(p: Ipv4, nowMs: number): Ipv4 | Drop | undefined {
    const end = p.fragmentOffset + p.payload.length;
    if (end > MAX_PAYLOAD) return 'ipv4.frag-too-big';
    if (p.moreFragments && (p.payload.length === 0 || p.payload.length % 8 !== 0)) return 'ipv4.frag-bad-length';
    const key = `${p.src}/${p.dst}/${p.protocol}/${p.id}`;
    let d = this.#pending.get(key);
    if (d === undefined) {
      if (p.payload.length > this.#limits.maxBytes) return 'ipv4.frag-too-big';
      this.#makeRoom(p.payload.length);
      d = { firstSeenMs: nowMs, pieces: [], totalLength: undefined, bytes: 0, first: undefined };
      this.#pending.set(key, d);
    } else if (this.#bytes + p.payload.length > this.#limits.maxBytes) {
      this.#forget(key, d);
      return 'ipv4.frag-memory';
    }
    if (!p.moreFragments) {
      if ((d.totalLength !== undefined && d.totalLength !== end) || d.pieces.some((x) => x.offset + x.data.length > end)) {
        this.#forget(key, d);
        return 'ipv4.frag-overlap';
      }
      d.totalLength = end;
    } else if (d.totalLength !== undefined && end > d.totalLength) {
      this.#forget(key, d);
      return 'ipv4.frag-overlap';
    }
    // Find the insertion point and refuse overlaps; an exact duplicate is ignored.
    let i = 0;
    while (i < d.pieces.length && d.pieces[i]!.offset < p.fragmentOffset) i++;
    const prev = d.pieces[i - 1];
    const next = d.pieces[i];
    if (next?.offset === p.fragmentOffset && next.data.length === p.payload.length) return undefined; // an exact duplicate: keep the first copy
    if ((prev !== undefined && prev.offset + prev.data.length > p.fragmentOffset) || (next !== undefined && end > next.offset)) {
      this.#forget(key, d);
      return 'ipv4.frag-overlap';
    }
    d.pieces.splice(i, 0, { offset: p.fragmentOffset, data: p.payload.slice() });
    d.bytes += p.payload.length;
    this.#bytes += p.payload.length;
    if (p.fragmentOffset === 0) d.first = { ...p, options: p.options.slice(), payload: EMPTY };
    return this.#complete(key, d);
  }

  /** Drops datagrams older than the timeout. */
  expire(nowMs: number): void {
    for (const [key, d] of this.#pending) {
      if (nowMs - d.firstSeenMs < this.#limits.timeoutMs) return; // insertion order = age order
      this.#forget(key, d);
      this.#counters.count('ipv4.frag-timeout');
    }
  }

  /** When the oldest datagram in progress times out, if any. */
  nextDeadline(): number | undefined {
    for (const d of this.#pending.values()) return d.firstSeenMs + this.#limits.timeoutMs;
    return undefined;
  }

  #complete(key: string, d: Pending): Ipv4 | undefined {
    if (d.totalLength === undefined || d.first === undefined || d.bytes !== d.totalLength) return undefined;
    // Non-overlapping pieces whose lengths add up to the total cover it without a gap.
    const payload = new Uint8Array(d.totalLength);
    for (const piece of d.pieces) payload.set(piece.data, piece.offset);
    this.#forget(key, d);
    return { ...d.first, moreFragments: false, fragmentOffset: 0, payload };
  }

  #makeRoom(incoming: number): void {
    for (const [key, d] of this.#pending) {
      if (this.#pending.size < this.#limits.maxDatagrams && this.#bytes + incoming <= this.#limits.maxBytes) return;
      this.#forget(key, d);
      this.#counters.count('ipv4.frag-evicted');
    }
  }

  #forget(key: string, d: Pending): void {
    this.#bytes -= d.bytes;
    this.#pending.delete(key);
  }
}
