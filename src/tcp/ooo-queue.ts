/**
 * Out-of-order segments held from the guest until the hole before them fills (RFC 9293
 * §3.10.7.4 "seventh": a receiver SHOULD hold in-window segments), and the SACK blocks that
 * describe them (RFC 2018 §4).
 *
 * Segments are kept as views of the guest's frames (a link never reuses a frame it handed
 * over), in parallel arrays of fixed capacity (`oooSegments`, allocated at the first hold,
 * with the SACK records):
 * holding, trimming and draining allocate nothing but the trimmed views, and the SACK
 * blocks are written into records this queue owns. The connection bounds the bytes: it
 * trims each segment to the window it advertised before holding it.
 */
import { seqAdd, seqGt, seqLe, seqLt, seqSub } from '../util/seq.js';

/** The most SACK blocks a segment can carry (RFC 2018 §3: 40 option bytes, 3 with timestamps). */
const MAX_SACK_BLOCKS_SENT = 4;

const NO_SEQ = new Uint32Array(0);
const NO_FIN = new Uint8Array(0);
const EMPTY = new Uint8Array(0);
/** Shared by every queue until its first hold; never written (#allocate replaces them). */
const NO_DATA: Uint8Array[] = [];
const NO_PAIRS: [number, number][] = [];
const NO_VIEWS: [number, number][][] = [];

export class OooQueue {
  /**
   * Sequence numbers of the held segments, i < length: ascending (equal only for a FIN
   * without data), and after each hold disjoint — a later segment never starts inside an
   * earlier one (it is trimmed, or dropped when wholly covered).
   */
  #seq: Uint32Array = NO_SEQ;
  /** Their data: views of guest frames, EMPTY for a bare FIN and in unused slots. */
  #data: Uint8Array[] = NO_DATA;
  /** 1 when a FIN follows the segment's data. */
  #fin: Uint8Array = NO_FIN;
  /** Segments held, 0..capacity. */
  #length = 0;
  /** Sequence number of the most recently held segment: its SACK block goes first (RFC 2018 §4). */
  #latest = 0;
  readonly #capacity: number;
  /** Scratch for SACK blocks: merged ranges of the held segments (capacity entries each). */
  #blockLeft: Uint32Array = NO_SEQ;
  #blockRight: Uint32Array = NO_SEQ;
  /**
   * The SACK blocks handed out: #sackViews[n − 1] holds n of the shared #sackPairs. Like the
   * arrays above, made at the first hold: an idle connection holds none of them (ten arrays,
   * an eighth of an idle flow's JS heap; bench/scale.ts).
   */
  #sackPairs: [number, number][] = NO_PAIRS;
  #sackViews: [number, number][][] = NO_VIEWS;

  constructor(capacity: number) {
    this.#capacity = Math.max(0, capacity);
  }

  /** Segments held. */
  get length(): number {
    return this.#length;
  }

  /** The first segment's sequence number (length > 0). */
  get headSeq(): number {
    return this.#seq[0]!;
  }

  /** The first segment's data (length > 0). */
  get headData(): Uint8Array {
    return this.#data[0]!;
  }

  /** Whether a FIN follows the first segment's data (length > 0). */
  get headFin(): boolean {
    return this.#fin[0] === 1;
  }

  /**
   * Holds [seq, seq + data.length), then a FIN if `fin`; false (nothing held) when full.
   * Keeps the queue sorted and disjoint: a segment loses what the ones before it cover.
   */
  hold(seq: number, data: Uint8Array, fin: boolean): boolean {
    const n = this.#length;
    if (n >= this.#capacity) return false;
    if (this.#seq.length === 0) this.#allocate();
    const S = this.#seq;
    const D = this.#data;
    const F = this.#fin;
    let i = n;
    while (i > 0 && seqGt(S[i - 1]!, seq)) i--;
    S.copyWithin(i + 1, i, n);
    F.copyWithin(i + 1, i, n);
    for (let k = n; k > i; k--) D[k] = D[k - 1]!;
    S[i] = seq;
    D[i] = data;
    F[i] = fin ? 1 : 0;
    this.#length = n + 1;
    this.#latest = seq;
    this.#normalise();
    return true;
  }

  /** Sorted, disjoint; a later segment loses what an earlier one already covers. */
  #normalise(): void {
    const S = this.#seq;
    const D = this.#data;
    const F = this.#fin;
    let end = S[0]!;
    let k = 0;
    while (k < this.#length) {
      const eSeq = S[k]!;
      const eData = D[k]!;
      const eEnd = seqAdd(eSeq, eData.length);
      if (k > 0 && seqLe(eEnd, end) && !(F[k] === 1 && eEnd === end)) {
        this.#removeAt(k);
        continue;
      }
      if (k > 0 && seqLt(eSeq, end)) {
        D[k] = eData.subarray(seqSub(end, eSeq));
        S[k] = end;
      }
      if (seqGt(eEnd, end) || k === 0) end = eEnd;
      k++;
    }
  }

  #removeAt(k: number): void {
    const n = this.#length;
    this.#seq.copyWithin(k, k + 1, n);
    this.#fin.copyWithin(k, k + 1, n);
    const D = this.#data;
    for (let i = k; i < n - 1; i++) D[i] = D[i + 1]!;
    D[n - 1] = EMPTY;
    this.#length = n - 1;
  }

  /** Removes the first segment (length > 0). */
  shift(): void {
    this.#removeAt(0);
  }

  /** Drops every segment (and the frames they keep alive). */
  clear(): void {
    for (let i = 0; i < this.#length; i++) this.#data[i] = EMPTY;
    this.#length = 0;
  }

  /**
   * How many SACK blocks the held data makes: segments with data that do not start where the
   * previous one ended. (A bare FIN starts no block.)
   */
  blockCount(): number {
    const S = this.#seq;
    const D = this.#data;
    let n = 0;
    let end = 0;
    for (let k = 0; k < this.#length; k++) {
      const len = D[k]!.length;
      if ((k === 0 || S[k] !== end) && len > 0) n++;
      end = seqAdd(S[k]!, len);
    }
    return n;
  }

  /**
   * The SACK blocks for the guest (RFC 2018 §4): the held data merged into ranges, the one
   * holding the most recently received segment first, the others ascending; at most the 4 a
   * segment can carry. Undefined when no data is held. The array and its pairs belong to
   * this queue and change on the next call: read them before then.
   */
  sackBlocks(): readonly (readonly [number, number])[] | undefined {
    const n = this.#length;
    if (n === 0) return undefined;
    const S = this.#seq;
    const D = this.#data;
    const BL = this.#blockLeft;
    const BR = this.#blockRight;
    let blocks = 0;
    let first = -1;
    for (let k = 0; k < n; k++) {
      const seq = S[k]!;
      const end = seqAdd(seq, D[k]!.length);
      if (blocks > 0 && BR[blocks - 1] === seq) BR[blocks - 1] = end;
      else {
        BL[blocks] = seq;
        BR[blocks] = end;
        blocks++;
      }
      if (seq === this.#latest) first = blocks - 1;
    }
    const lead = first > 0 && BL[first] !== BR[first] ? first : -1;
    const pairs = this.#sackPairs;
    let out = 0;
    if (lead >= 0) {
      pairs[0]![0] = BL[lead]!;
      pairs[0]![1] = BR[lead]!;
      out = 1;
    }
    for (let b = 0; b < blocks && out < MAX_SACK_BLOCKS_SENT; b++) {
      if (b === lead || BL[b] === BR[b]) continue;     // empty: a bare FIN
      pairs[out]![0] = BL[b]!;
      pairs[out]![1] = BR[b]!;
      out++;
    }
    return out === 0 ? undefined : this.#sackViews[out - 1];
  }

  #allocate(): void {
    const c = this.#capacity;
    this.#seq = new Uint32Array(c);
    this.#fin = new Uint8Array(c);
    this.#data = new Array<Uint8Array>(c).fill(EMPTY);
    this.#blockLeft = new Uint32Array(c);
    this.#blockRight = new Uint32Array(c);
    const p: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0]];
    this.#sackPairs = p;
    this.#sackViews = [[p[0]!], [p[0]!, p[1]!], [p[0]!, p[1]!, p[2]!], [p[0]!, p[1]!, p[2]!, p[3]!]];
  }
}
