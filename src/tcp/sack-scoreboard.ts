/**
 * What the guest told us it holds above SND.UNA: the SACK scoreboard of the send side
 * (RFC 2018 §4, used as RFC 6675 §3 does for IsLost and the next hole). The connection feeds
 * it every SACK option the guest sends, trims it on every new ACK, clears it on an RTO
 * (RFC 2018 §8: the receiver may renege) and asks it where holes are.
 *
 * Ranges live in two u32 arrays of fixed capacity (`limit` + 1, allocated on the first
 * block): no allocation and no array growth per ACK. At most `limit` ranges are kept; past
 * that the highest is forgotten, which only delays its retransmission.
 */
import { seqGe, seqGt, seqLe, seqLt, seqSub } from '../util/seq.js';

const NONE = new Uint32Array(0);

export class SackScoreboard {
  /**
   * Left edges of the SACKed ranges [left[i], right[i]), i < count: ascending, disjoint and
   * not touching (right[i] < left[i + 1]), each non-empty and inside [SND.UNA, SND.MAX].
   */
  #left: Uint32Array = NONE;
  /** Right edges (exclusive), paired with #left. */
  #right: Uint32Array = NONE;
  /** Ranges held, 0..limit. */
  #count = 0;
  /** The most ranges remembered (TcpLimits.sackBlocks). */
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = Math.max(0, limit);
  }

  /** Ranges held. */
  get count(): number {
    return this.#count;
  }

  /** The i-th range's left edge (i < count), lowest first. */
  leftAt(i: number): number {
    return this.#left[i]!;
  }

  /** The i-th range's right edge (exclusive). */
  rightAt(i: number): number {
    return this.#right[i]!;
  }

  /**
   * Merges the guest's SACK blocks. Only blocks inside what is outstanding count (RFC 2018
   * §4): a block must end above `una` and at or below `max`; its part below `una` is cut off
   * (a D-SACK, RFC 2883, wholly below `una`, is ignored).
   */
  update(blocks: readonly (readonly [number, number])[], una: number, max: number): void {
    for (const block of blocks) {
      const l0 = block[0];
      const r = block[1];
      if (!seqGt(r, una) || seqGt(r, max) || !seqLt(l0, r)) continue;
      this.#insert(seqLt(l0, una) ? una : l0, r);
    }
  }

  #insert(l: number, r: number): void {
    if (this.#left.length === 0) {
      this.#left = new Uint32Array(this.#limit + 1);
      this.#right = new Uint32Array(this.#limit + 1);
    }
    const L = this.#left;
    const R = this.#right;
    const n = this.#count;
    let i = 0;
    while (i < n && seqLt(R[i]!, l)) i++;
    // [i, j) are the ranges the new one overlaps or touches: they merge into one at i.
    let nl = l;
    let nr = r;
    let j = i;
    while (j < n && seqLe(L[j]!, nr)) {
      if (seqLt(L[j]!, nl)) nl = L[j]!;
      if (seqGt(R[j]!, nr)) nr = R[j]!;
      j++;
    }
    if (j === i) {                       // nothing merged: open a slot at i
      L.copyWithin(i + 1, i, n);
      R.copyWithin(i + 1, i, n);
      this.#count = n + 1;
    } else if (j > i + 1) {              // several merged: close the gap they leave
      L.copyWithin(i + 1, j, n);
      R.copyWithin(i + 1, j, n);
      this.#count = n - (j - i - 1);
    }
    L[i] = nl;
    R[i] = nr;
    if (this.#count > this.#limit) this.#count--;   // forget the highest
  }

  /** A new cumulative ACK: ranges at or below `ack` go, a range straddling it is cut at it. */
  ackedTo(ack: number): void {
    const n = this.#count;
    if (n === 0) return;
    const L = this.#left;
    const R = this.#right;
    let k = 0;
    while (k < n && seqLe(R[k]!, ack)) k++;
    if (k > 0) {
      L.copyWithin(0, k, n);
      R.copyWithin(0, k, n);
      this.#count = n - k;
    }
    if (this.#count > 0 && seqLt(L[0]!, ack)) L[0] = ack;
  }

  /** Forgets everything (RFC 2018 §8, after an RTO). */
  clear(): void {
    this.#count = 0;
  }

  /** Bytes SACKed in all. */
  sackedBytes(): number {
    let bytes = 0;
    for (let i = 0; i < this.#count; i++) bytes += seqSub(this.#right[i]!, this.#left[i]!);
    return bytes;
  }

  /** The right edge of the range containing `seq`, or undefined when `seq` is not SACKed. */
  endContaining(seq: number): number | undefined {
    for (let i = 0; i < this.#count; i++) if (seqGe(seq, this.#left[i]!) && seqLt(seq, this.#right[i]!)) return this.#right[i]!;
    return undefined;
  }

  /** The left edge of the first range starting above `seq`, or undefined. */
  nextStartAfter(seq: number): number | undefined {
    for (let i = 0; i < this.#count; i++) if (seqGt(this.#left[i]!, seq)) return this.#left[i]!;
    return undefined;
  }

  /** The highest SACKed sequence number + 1; only when count > 0. */
  highestEnd(): number {
    return this.#right[this.#count - 1]!;
  }
}
