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
 */
export class ByteQueue {
  #ring: Uint8Array = EMPTY;
  /** Ring index of the first live byte. */
  #start = 0;
  /** Live bytes. */
  #length = 0;

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Bytes the ring holds now (for memory accounting and tests). */
  get capacity(): number {
    return this.#ring.length;
  }

  /** Appends a copy of `data`; the caller may reuse `data` afterwards. */
  push(data: Uint8Array): void {
    const n = data.length;
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
    if (this.#length === 0) {
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

  /** Moves the live bytes, in order, to the start of a ring of at least `need` bytes. */
  #grow(need: number): void {
    let cap = Math.max(MIN_RING_BYTES, this.#ring.length);
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
