/**
 * A FIFO of bytes in one ring buffer: the send queue of a TCP connection (host data the guest
 * has not acknowledged yet). `push` copies the caller's bytes in, so the host side can read
 * every socket into one reused buffer; `copyOut` copies into an outgoing frame; bytes leave
 * from the front when the guest acknowledges them.
 *
 * Why a ring and not the chunks as they came: every chunk kept was a fresh ArrayBuffer, and
 * at gigabit rates that churn made V8 run a major GC many times a second (external-memory
 * pressure). A ring is allocated once per burst and reused.
 *
 * The ring grows by doubling when a push needs room. When the queue empties, a ring larger
 * than RETAIN_BYTES is released at once, and a smaller one by `release` when the owner says
 * (a TCP connection: after RING_IDLE_MS with nothing queued), so an idle connection keeps none.
 * Rings released at once go to a process-wide pool of spares (at most SPARE_POOL_BYTES in
 * all) that the next ring needing room takes from before allocating. A bulk download's queue
 * empties whenever the guest has acknowledged everything before the next read: at MTU 65493
 * host→guest that was ~200 times a second, each refill allocating (and zeroing) 256 KiB,
 * 512 KiB, 1 and 2 MiB again — 1.3 GB of rings allocated for 0.94 GB moved in a 3-second
 * bench/tcp run.
 *
 * **Lending** (`lend`): the host may read a socket straight into the ring instead of into a
 * buffer of its own that `push` then copies (that copy was 13.5 % of the daemon's samples at
 * MTU 65493 host→guest). The read buffer is chosen before the read happens — Node's
 * `onread.buffer` is asked for the next buffer right after each read, and the read may come
 * turns later, or never — so the lent region is free space after the live bytes, and until
 * the lend ends the queue keeps these rules:
 *
 * - the lent ring never goes to the spare pool (an emptied queue keeps it; `release` lets go
 *   of it to the GC only), so no other queue ever writes into it;
 * - nothing but the read writes into the lent region: a `push` of other bytes first moves the
 *   live bytes to a new ring and leaves the old one to the lend (the lend then no longer
 *   counts as the queue's);
 * - `push(data)` of exactly the lent region's first bytes (the read that landed there) only
 *   counts them as queued: no copy. Any other `push` copies, so bytes that landed in a lend
 *   the queue gave up on still arrive, in order.
 *
 * A lend ends at the next `push` or `lend`: the host asks again only after the read it lent
 * for was delivered, or once it never reads into the previous one again. A lend that never
 * ends (a socket that died with one outstanding) only keeps its ring out of the pool.
 */
export class ByteQueue {
  #ring: Uint8Array = EMPTY;
  /** Ring index of the first live byte. */
  #start = 0;
  /** Live bytes. */
  #length = 0;
  /**
   * The region of `#ring` lent for the next host read (`lend`), starting right after the live
   * bytes; undefined when none is outstanding or the ring it lies in is no longer ours.
   */
  #lent: Uint8Array | undefined;

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Bytes the ring holds now (for memory accounting and tests). */
  get capacity(): number {
    return this.#ring.length;
  }

  /**
   * Appends `data`: a copy, so the caller may reuse `data` afterwards, unless `data` is the
   * start of the outstanding lend (the read landed in the ring), which is only counted. Ends
   * the lend either way.
   */
  push(data: Uint8Array): void {
    const n = data.length;
    const lent = this.#lent;
    if (lent !== undefined) {
      this.#lent = undefined;
      if (data.buffer === lent.buffer && data.byteOffset === lent.byteOffset && n <= lent.length) {
        this.#length += n;
        return;
      }
      // Other bytes while the region is lent: the read may still land there, so they go to a
      // new ring, and the old one is left to the lend.
      if (n > 0) this.#grow(this.#length + n, true);
    }
    if (n === 0) return;
    if (this.#length + n > this.#ring.length) this.#grow(this.#length + n);
    const cap = this.#ring.length;
    let end = this.#start + this.#length;
    if (end >= cap) end -= cap;
    const first = Math.min(n, cap - end);
    this.#ring.set(first === n ? data : data.subarray(0, first), end);
    if (first < n) this.#ring.set(data.subarray(first), 0);
    this.#length += n;
  }

  /** Drops `n` bytes from the front (clamped to the length). */
  drop(n: number): void {
    n = Math.min(n, this.#length);
    this.#length -= n;
    if (this.#length === 0 && this.#lent === undefined) {
      this.#start = 0;
      if (this.#ring.length > RETAIN_BYTES) {
        giveSpare(this.#ring);
        this.#ring = EMPTY;
      }
      return;
    }
    this.#start += n;
    if (this.#start >= this.#ring.length) this.#start -= this.#ring.length;
  }

  /**
   * Lets go of the ring of an empty queue (the connection calls it once the queue has stayed
   * empty for a while: an idle connection then holds no ring at all); false when bytes are
   * queued, and nothing changes.
   */
  release(): boolean {
    if (this.#length > 0) return false;
    // A lent ring goes to the GC with the socket's view of it, never to the pool.
    this.#lent = undefined;
    this.#ring = EMPTY;
    this.#start = 0;
    return true;
  }

  /** Copies bytes [from, from + n) of the queue to `into[at]`; the range must lie inside. */
  copyOut(from: number, n: number, into: Uint8Array, at: number): void {
    const cap = this.#ring.length;
    let pos = this.#start + from;
    if (pos >= cap) pos -= cap;
    const first = Math.min(n, cap - pos);
    into.set(this.#ring.subarray(pos, pos + first), at);
    if (first < n) into.set(this.#ring.subarray(0, n - first), at + first);
  }

  /**
   * Lends the free space right after the live bytes for the next host read: a region of at
   * most `maxBytes` (at least LEND_MIN_BYTES), to be handed back through `push` (see the
   * class's comment for the rules). Ends the previous lend. Grows the ring when it has less
   * than `maxBytes` free; undefined when the free space is split by the ring's end into parts
   * smaller than LEND_MIN_BYTES (the caller reads into a buffer of its own that time).
   */
  lend(maxBytes: number): Uint8Array | undefined {
    this.#lent = undefined;
    if (maxBytes < LEND_MIN_BYTES) return undefined;
    if (this.#length === 0) this.#start = 0;
    let cap = this.#ring.length;
    if (cap - this.#length < maxBytes) {
      this.#grow(this.#length + maxBytes);
      cap = this.#ring.length;
    }
    const end = this.#start + this.#length;
    // Free space in ring order after the live bytes: up to the ring's end, or (wrapped) up to the start.
    const at = end >= cap ? end - cap : end;
    const free = end >= cap ? this.#start - at : cap - end;
    const n = Math.min(free, maxBytes);
    if (n < LEND_MIN_BYTES) return undefined;
    return (this.#lent = this.#ring.subarray(at, at + n));
  }

  /** Whether a lend is outstanding in the queue's own ring (for tests). */
  get lending(): boolean {
    return this.#lent !== undefined;
  }

  /**
   * Moves the live bytes, in order, to the start of a ring of at least `need` bytes (`fresh`:
   * always a new ring, even when this one is large enough: it is lent).
   */
  #grow(need: number, fresh = false): void {
    let cap = Math.max(MIN_RING_BYTES, fresh ? 0 : this.#ring.length);
    while (cap < need) cap *= 2;
    // A spare's old bytes are never read: only live bytes are copied out.
    const ring = cap > RETAIN_BYTES ? (takeSpare(cap) ?? new Uint8Array(cap)) : new Uint8Array(cap);
    if (this.#length > 0) this.copyOut(0, this.#length, ring, 0);
    this.#ring = ring;
    this.#start = 0;
  }
}

/**
 * The smallest ring: a small reply (an HTTP response's head, a keystroke's echo) fits. A
 * larger read gets a ring of the next power of two at once. It was 16 KiB: every short
 * connection then allocated (and zeroed) 16 KiB for a reply of a hundred bytes, and an idle
 * connection that had carried one kept them.
 */
const MIN_RING_BYTES = 2 * 1024;
/**
 * An empty queue keeps a ring up to this size, so request/response traffic does not allocate
 * a ring per reply; a larger one is released, so an idle connection keeps at most this.
 */
const RETAIN_BYTES = 16 * 1024;

const EMPTY = new Uint8Array(0);

/**
 * The smallest region `lend` hands out: below it a read's fixed costs (the event, the stack's
 * entry) outweigh the copy it saves, and the caller reads into its own buffer instead.
 */
export const LEND_MIN_BYTES = 16 * 1024;

/** Bytes of released rings kept for reuse, in all (process-wide): one bulk connection's ring. */
export const SPARE_POOL_BYTES = 2 * 1024 * 1024;
/** Released rings, each larger than RETAIN_BYTES; their lengths sum to at most SPARE_POOL_BYTES. */
const spares: Uint8Array[] = [];
let spareBytes = 0;

/** Keeps a released ring when the pool has room for it; otherwise it is left to the GC. */
function giveSpare(ring: Uint8Array): void {
  if (spareBytes + ring.length > SPARE_POOL_BYTES) return;
  spares.push(ring);
  spareBytes += ring.length;
}

/** A spare ring of at least `need` bytes (the smallest that fits), or undefined. */
function takeSpare(need: number): Uint8Array | undefined {
  let best = -1;
  for (let i = 0; i < spares.length; i++) {
    const len = spares[i]!.length;
    if (len >= need && (best < 0 || len < spares[best]!.length)) best = i;
  }
  if (best < 0) return undefined;
  const ring = spares[best]!;
  spares[best] = spares[spares.length - 1]!;
  spares.pop();
  spareBytes -= ring.length;
  return ring;
}

/** Bytes the spare pool holds now (for tests). */
export const spareRingBytes = (): number => spareBytes;

/** Empties the spare pool (for tests that count allocations). */
export function dropSpareRings(): void {
  spares.length = 0;
  spareBytes = 0;
}
