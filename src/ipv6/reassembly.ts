/**
 * IPv6 fragment reassembly (RFC 8200 §4.5), bounded like IPv4's (`src/ipv4/reassembly.ts`).
 *
 * Fragments are keyed by (source, destination, identification). Each packet in progress
 * keeps copies of its fragmentable parts sorted by offset and completes when they cover
 * [0, end) without a gap and the last fragment (M clear) has arrived. The reassembled
 * packet takes the Next Header of its first fragment's Fragment header; its fragmentable
 * part is then walked like an unfragmented packet's (further extension headers included).
 *
 * - Overlaps discard the whole packet (RFC 5722), counted 'ipv6.frag-overlap'; an exact
 *   duplicate is ignored.
 * - A fragment whose length is not a multiple of 8 while M is set is refused (§4.5; the
 *   sender would get Parameter Problem code 0, we count 'ipv6.frag-bad-length').
 * - The first fragment must carry the upper-layer header: RFC 7112 requires the whole header
 *   chain in it; a first fragment without it is not refused here but its reassembled packet is
 *   walked whole anyway.
 * - Limits: at most `maxDatagrams` in progress and `maxBytes` buffered; a new packet beyond
 *   them evicts the oldest. A reassembled packet may not exceed 65535 bytes of payload. Each
 *   lives at most `timeoutMs` (60 s, §4.5) after its first fragment.
 */
import type { Counters, Drop } from '../util/drops.js';
import type { Ipv6 } from './wire.js';

export interface Reassembly6Limits {
  readonly maxDatagrams: number;
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

export const DEFAULT_REASSEMBLY6_LIMITS: Reassembly6Limits = { maxDatagrams: 64, maxBytes: 1 << 20, timeoutMs: 60_000 };

/** Payload length is 16 bits, and the Fragment header takes 8 of it in every fragment. */
const MAX_FRAGMENTABLE = 65535 - 8;

interface Piece {
  readonly offset: number;
  readonly data: Uint8Array;
}

interface Pending {
  readonly firstSeenMs: number;
  readonly pieces: Piece[];
  totalLength: number | undefined;
  bytes: number;
  /** The Next Header of the offset-0 fragment's Fragment header. */
  protocol: number | undefined;
}

/** A reassembled packet: the header fields of its fragments and the whole fragmentable part. */
export interface Reassembled6 {
  readonly src: Ipv6['src'];
  readonly dst: Ipv6['dst'];
  readonly protocol: number;
  readonly fragmentable: Uint8Array;
}

export class Reassembler6 {
  readonly #pending = new Map<string, Pending>();
  readonly #limits: Reassembly6Limits;
  readonly #counters: Counters;
  #bytes = 0;

  constructor(counters: Counters, limits: Reassembly6Limits = DEFAULT_REASSEMBLY6_LIMITS) {
    this.#counters = counters;
    this.#limits = limits;
  }

  get size(): number {
    return this.#pending.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Takes one fragment (`p.fragment` set); the whole packet when this one completes it, undefined while incomplete, or a Drop. */
  add(p: Ipv6, nowMs: number): Reassembled6 | Drop | undefined {
    const f = p.fragment;
    if (f === undefined) return 'ipv6.not-a-fragment';
    const end = f.offset + p.payload.length;
    if (end > MAX_FRAGMENTABLE) return 'ipv6.frag-too-big';
    if (f.more && (p.payload.length === 0 || p.payload.length % 8 !== 0)) return 'ipv6.frag-bad-length';
    const key = `${p.src}/${p.dst}/${f.id}`;
    let d = this.#pending.get(key);
    if (d === undefined) {
      if (p.payload.length > this.#limits.maxBytes) return 'ipv6.frag-too-big';
      this.#makeRoom(p.payload.length);
      d = { firstSeenMs: nowMs, pieces: [], totalLength: undefined, bytes: 0, protocol: undefined };
      this.#pending.set(key, d);
    } else if (this.#bytes + p.payload.length > this.#limits.maxBytes) {
      this.#forget(key, d);
      return 'ipv6.frag-memory';
    }
    if (!f.more) {
      if ((d.totalLength !== undefined && d.totalLength !== end) || d.pieces.some((x) => x.offset + x.data.length > end)) {
        this.#forget(key, d);
        return 'ipv6.frag-overlap';
      }
      d.totalLength = end;
    } else if (d.totalLength !== undefined && end > d.totalLength) {
      this.#forget(key, d);
      return 'ipv6.frag-overlap';
    }
    let i = 0;
    while (i < d.pieces.length && d.pieces[i]!.offset < f.offset) i++;
    const prev = d.pieces[i - 1];
    const next = d.pieces[i];
    if (next?.offset === f.offset && next.data.length === p.payload.length) return undefined;
    if ((prev !== undefined && prev.offset + prev.data.length > f.offset) || (next !== undefined && end > next.offset)) {
      this.#forget(key, d);
      return 'ipv6.frag-overlap';
    }
    d.pieces.splice(i, 0, { offset: f.offset, data: p.payload.slice() });
    d.bytes += p.payload.length;
    this.#bytes += p.payload.length;
    if (f.offset === 0) d.protocol = p.protocol;
    if (d.totalLength === undefined || d.protocol === undefined || d.bytes !== d.totalLength) return undefined;
    const fragmentable = new Uint8Array(d.totalLength);
    for (const piece of d.pieces) fragmentable.set(piece.data, piece.offset);
    this.#forget(key, d);
    return { src: p.src, dst: p.dst, protocol: d.protocol, fragmentable };
  }

  expire(nowMs: number): void {
    for (const [key, d] of this.#pending) {
      if (nowMs - d.firstSeenMs < this.#limits.timeoutMs) return;
      this.#forget(key, d);
      this.#counters.count('ipv6.frag-timeout');
    }
  }

  nextDeadline(): number | undefined {
    for (const d of this.#pending.values()) return d.firstSeenMs + this.#limits.timeoutMs;
    return undefined;
  }

  #makeRoom(incoming: number): void {
    for (const [key, d] of this.#pending) {
      if (this.#pending.size < this.#limits.maxDatagrams && this.#bytes + incoming <= this.#limits.maxBytes) return;
      this.#forget(key, d);
      this.#counters.count('ipv6.frag-evicted');
    }
  }

  #forget(key: string, d: Pending): void {
    this.#bytes -= d.bytes;
    this.#pending.delete(key);
  }
}
