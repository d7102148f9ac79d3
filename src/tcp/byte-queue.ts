/**
 * A FIFO of bytes in chunks: the send queue of a TCP connection (host data the guest has not
 * acknowledged yet). `push` copies the caller's bytes in, so the host side can read every
 * socket into one reused buffer; `copyOut` copies into an outgoing frame; bytes leave from the
 * front when the guest acknowledges them; and a bulk flow's host reads land in the queue
 * itself (`lend`), so nothing is copied on the way in.
 *
 * Why our own memory and not the buffers as they came: every chunk kept was a fresh
 * ArrayBuffer, and at gigabit rates that churn made V8 run a major GC many times a second
 * (external-memory pressure).
 *
 * Why chunks of CHUNK_BYTES and not one ring that doubles (as before): a ring that grows copies
 * what it holds into a new, zeroed ring at every doubling (256 KiB, 512 KiB, 1, 2 MiB for one
 * bulk queue), and an emptied queue let go of it, so a download whose guest had acknowledged
 * everything between two reads grew it again from the start. With 100 bulk flows starting at
 * once (bench/scale.ts) that growth was 26 % of the daemon's samples and most of its longest
 * turns (up to 180 ms): each socket's reads could copy its whole queue, whatever the turn's
 * read budget. Chunks are never copied: a push fills the last chunk and appends more, and a
 * chunk the guest has acknowledged goes to a process-wide pool (at most SPARE_POOL_BYTES) that
 * the next push or lend of any queue takes from, so memory follows what a queue holds, a turn's
 * allocations follow what it read, and steady bulk traffic allocates nothing. Chunks are not
 * zeroed (their bytes are never read before they are written).
 *
 * Small data (a reply of a few hundred bytes) goes into one small first chunk, a power of two
 * from 2 KiB up to RETAIN_BYTES, which an emptied queue keeps so request/response traffic
 * does not allocate per reply; the owner lets go of it by `release` (a TCP connection: after
 * RING_IDLE_MS with nothing queued), so an idle connection keeps none. Every other chunk is
 * CHUNK_BYTES. A chunk other than the last may end before its length (`#used`): the unused
 * tail of a chunk a lend did not fill, which is never written afterwards.
 *
 * **Lending** (`lend`): the host may read a socket straight into the queue instead of into a
 * buffer of its own that `push` then copies (that copy was 13.5 % of the daemon's samples at
 * MTU 65493 host→guest). The read buffer is chosen before the read happens — Node's
 * `onread.buffer` is asked for the next buffer right after each read, and the read may come
 * turns later, or never — so a lend is free space after the live bytes: the rest of the last
 * chunk when at least LEND_MIN_BYTES are left, or else a chunk of its own that joins the queue
 * when the read lands. Until the lend ends the queue keeps these rules:
 *
 * - a chunk with a lend in it never goes to the spare pool (an emptied queue keeps it; `release`
 *   lets go of it to the GC only), so no other queue ever writes into it;
 * - nothing but the read writes into the lent region: a `push` of other bytes starts a new
 *   chunk and leaves the region to the lend (the lend then no longer counts as the queue's,
 *   and its chunk is never pooled);
 * - `push(data)` of exactly the lent region's first bytes (the read that landed there) only
 *   counts them as queued: no copy. Any other `push` copies, so bytes that landed in a lend
 *   the queue gave up on still arrive, in order.
 *
 * A lend ends at the next `push` or `lend`: the host asks again only after the read it lent
 * for was delivered, or once it never reads into the previous one again (so `lend` may hand
 * out the same region again). A lend that never ends (a socket that died with one
 * outstanding) only keeps its chunk out of the pool.
 */
export class ByteQueue {
  /** Oldest first: chunks[0] may be small (≤ RETAIN_BYTES); every later one is CHUNK_BYTES. */
  readonly #chunks: Uint8Array[] = [];
  /** Bytes written into each chunk, from its start. */
  readonly #used: number[] = [];
  /** Offset of the first live byte in chunks[0]. */
  #head = 0;
  /** Live bytes. */
  #length = 0;
  /** Sum of the chunks' lengths. */
  #capacity = 0;
  /** The last chunk takes no more bytes: a lend the queue gave up on lies in it (see the header). */
  #sealed = false;
  /** Bytes dropped since the queue was made: the stream offset of the first live byte. */
  #front = 0;
  /**
   * Where the last `copyOut` ended, so the next one (the next segment) starts there instead of
   * walking from the first chunk: an index into #chunks, and the stream offset of that
   * chunk's byte 0; -1 when unknown.
   */
  #cursor = -1;
  #cursorAt = 0;
  /** The region lent for the next host read, or undefined. */
  #lent: Uint8Array | undefined;
  /** The chunk the lend is, when it is not the last chunk's free space (it joins the queue when the read lands). */
  #lentChunk: Uint8Array | undefined;

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Bytes the queue's chunks hold now (for memory accounting and tests; a lent chunk of its own not included). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Whether a lend is outstanding (for tests). */
  get lending(): boolean {
    return this.#lent !== undefined;
  }

  /**
   * Appends `data`: a copy, so the caller may reuse `data` afterwards, unless `data` is the
   * start of the outstanding lend (the read landed in the queue), which is only counted. Ends
   * the lend either way.
   */
  push(data: Uint8Array): void {
    const n = data.length;
    const lent = this.#lent;
    if (lent !== undefined) {
      const own = this.#lentChunk;
      this.#lent = this.#lentChunk = undefined;
      if (data.buffer === lent.buffer && data.byteOffset === lent.byteOffset && n <= lent.length) {
        this.#landed(own, n);
        return;
      }
      // Other bytes while a region is lent: the read may still land there. A lend in the last
      // chunk seals it (these bytes start a new one); a chunk of its own is left to the lend.
      if (own === undefined) this.#sealed = true;
    }
    if (n === 0) return;
    const chunks = this.#chunks;
    const used = this.#used;
    if (this.#length === 0) {
      // Empty: at most a small chunk kept for replies, or a sealed chunk. Too small or sealed: let it go.
      const kept = chunks[0];
      if (kept !== undefined && (this.#sealed || kept.length < n)) this.#clear();
      if (chunks.length === 0 && n <= RETAIN_BYTES) {
        let size = MIN_CHUNK_BYTES;
        while (size < n) size *= 2;
        this.#append(new Uint8Array(size));
      }
    }
    let off = 0;
    let i = chunks.length - 1;
    while (off < n) {
      if (i < 0 || this.#sealed || used[i] === chunks[i]!.length) {
        this.#append(takeChunk());
        i++;
      }
      const c = chunks[i]!;
      const at = used[i]!;
      const k = Math.min(n - off, c.length - at);
      c.set(k === n ? data : data.subarray(off, off + k), at);
      used[i] = at + k;
      off += k;
    }
    this.#length += n;
  }

  /** Drops `n` bytes from the front (clamped to the length). */
  drop(n: number): void {
    n = Math.min(n, this.#length);
    if (n <= 0) return;
    this.#length -= n;
    this.#front += n;
    if (this.#length === 0) {
      this.#emptied();
      return;
    }
    this.#head += n;
    const used = this.#used;
    // Live bytes remain, so this stops at the chunk that holds the first of them.
    while (this.#head >= used[0]!) {
      this.#head -= used[0]!;
      const c = this.#chunks.shift()!;
      used.shift();
      this.#capacity -= c.length;
      giveChunk(c);
      this.#cursor--;
    }
  }

  /**
   * Lets go of the chunks of an empty queue (the connection calls it once the queue has stayed
   * empty for a while: an idle connection then holds no memory here); false when bytes are
   * queued, and nothing changes. An outstanding lend is forgotten (its chunk goes to the GC).
   */
  release(): boolean {
    if (this.#length > 0) return false;
    this.#lent = this.#lentChunk = undefined;
    this.#clear();
    return true;
  }

  /** Copies bytes [from, from + n) of the queue to `into[at]`; the range must lie inside. */
  copyOut(from: number, n: number, into: Uint8Array, at: number): void {
    if (n <= 0) return;
    const chunks = this.#chunks;
    const used = this.#used;
    const target = this.#front + from;
    // Chunk i, the stream offset of its byte 0, and the offset of the first byte to copy in it.
    let i = 0;
    let base = this.#front - this.#head;
    if (this.#cursor >= 0 && target >= this.#cursorAt) {
      i = this.#cursor;
      base = this.#cursorAt;
    }
    let pos = target - base;
    while (pos >= used[i]!) {
      pos -= used[i]!;
      base += used[i++]!;
    }
    while (true) {
      const k = Math.min(n, used[i]! - pos);
      into.set(chunks[i]!.subarray(pos, pos + k), at);
      n -= k;
      if (n === 0) break;
      at += k;
      pos = 0;
      base += used[i++]!;
    }
    this.#cursor = i;
    this.#cursorAt = base;
  }

  /**
   * Lends free space after the live bytes for the next host read: a region of at most
   * `maxBytes` and at least LEND_MIN_BYTES, to be handed back through `push` (see the class's
   * comment for the rules); undefined when `maxBytes` is smaller. Ends the previous lend.
   */
  lend(maxBytes: number): Uint8Array | undefined {
    const previous = this.#lentChunk;
    // The previous lend ends: its region is free again.
    if (this.#lent !== undefined && previous === undefined) lentOut.delete(this.#chunks[this.#chunks.length - 1]!);
    this.#lent = this.#lentChunk = undefined;
    if (maxBytes < LEND_MIN_BYTES) {
      if (previous !== undefined) giveChunk(previous, true);
      return undefined;
    }
    const last = this.#chunks.length - 1;
    if (last >= 0 && !this.#sealed) {
      const c = this.#chunks[last]!;
      const free = c.length - this.#used[last]!;
      if (c.length === CHUNK_BYTES && free >= LEND_MIN_BYTES) {
        if (previous !== undefined) giveChunk(previous, true);
        lentOut.add(c);
        const at = this.#used[last]!;
        return (this.#lent = c.subarray(at, at + Math.min(free, maxBytes)));
      }
    }
    // A chunk of its own (the previous lend's again: the host reads into it no more).
    const c = previous ?? takeChunk();
    lentOut.add(c);
    this.#lentChunk = c;
    return (this.#lent = c.subarray(0, Math.min(CHUNK_BYTES, maxBytes)));
  }

  /** The read of a lend landed: `n` bytes at its start become queued (`own`: the lent chunk, when it is not the last chunk's free space). */
  #landed(own: Uint8Array | undefined, n: number): void {
    if (own === undefined) {
      const last = this.#used.length - 1;
      lentOut.delete(this.#chunks[last]!);
      this.#used[last]! += n;
      this.#length += n;
      return;
    }
    lentOut.delete(own);
    if (n === 0) {
      giveChunk(own);
      return;
    }
    // An empty queue's small chunk (or a sealed one) gives way: the bytes live in `own` alone.
    if (this.#length === 0) this.#clear();
    this.#append(own);
    this.#used[this.#used.length - 1] = n;
    this.#length += n;
  }

  /**
   * The queue just emptied: keeps the last chunk when a lend lies in it (the read is still to
   * land there, after the head), or a lone small chunk for replies (from its start); the rest
   * goes to the pool.
   */
  #emptied(): void {
    const chunks = this.#chunks;
    const last = chunks.length - 1;
    const lendInLast = this.#lent !== undefined && this.#lentChunk === undefined;
    if (!lendInLast && !(last === 0 && chunks[0]!.length <= RETAIN_BYTES)) {
      this.#clear();
      return;
    }
    const keep = chunks[last]!;
    const keptUsed = lendInLast ? this.#used[last]! : 0;
    for (let i = 0; i < last; i++) giveChunk(chunks[i]!);
    chunks.length = 0;
    this.#used.length = 0;
    chunks.push(keep);
    this.#used.push(keptUsed);
    this.#head = keptUsed;
    this.#capacity = keep.length;
    this.#cursor = -1;
  }

  /** Gives every chunk back (those with a lend in them to the GC) and empties the lists. */
  #clear(): void {
    for (const c of this.#chunks) giveChunk(c);
    this.#chunks.length = 0;
    this.#used.length = 0;
    this.#capacity = 0;
    this.#head = 0;
    this.#sealed = false;
    this.#cursor = -1;
  }

  #append(c: Uint8Array): void {
    this.#chunks.push(c);
    this.#used.push(0);
    this.#capacity += c.length;
    this.#sealed = false;
  }
}

/**
 * The size of every chunk but a small first one, and of a lend: the host's read size
 * (node-tcp.ts READ_BUFFER_BYTES), so a bulk flow's read fills one chunk of its own; a queue
 * holds at most what it queued plus about one chunk.
 */
export const CHUNK_BYTES = 256 * 1024;
/** The smallest chunk: a small reply (an HTTP response's head, a keystroke's echo) fits. */
const MIN_CHUNK_BYTES = 2 * 1024;
/**
 * An empty queue keeps a small chunk up to this size, so request/response traffic does not
 * allocate per reply; larger data goes into CHUNK_BYTES chunks at once.
 */
const RETAIN_BYTES = 16 * 1024;

/**
 * The smallest region `lend` hands out: a last chunk with less free space than this is left
 * as it is and the lend is a chunk of its own, so reads stay large (a read's fixed costs — the
 * event, the stack's entry — are paid per read) at the price of at most this much unused at a
 * chunk's end.
 */
export const LEND_MIN_BYTES = 64 * 1024;

/**
 * Bytes of free chunks kept for reuse, in all (process-wide): what about 16 bulk connections
 * hold at the default send buffer (1 MiB). Busy queues give chunks back as the guests
 * acknowledge and take them again on the next read, so steady traffic lives off the pool;
 * what a burst frees beyond it is left to the garbage collector.
 */
export const SPARE_POOL_BYTES = 16 * 1024 * 1024;
const spares: Uint8Array[] = [];
/** Chunks with an outstanding lend in them: a socket may still write there, so they are never pooled. */
const lentOut = new WeakSet<Uint8Array>();

/** Pools a freed chunk of CHUNK_BYTES when the pool has room and no lend lies in it (`unlend`: the lend in it has ended). */
function giveChunk(c: Uint8Array, unlend = false): void {
  if (unlend) lentOut.delete(c);
  if (c.length === CHUNK_BYTES && spares.length * CHUNK_BYTES < SPARE_POOL_BYTES && !lentOut.has(c)) spares.push(c);
}

/** A chunk from the pool, or a new one, not zeroed: only bytes written since are ever read. */
function takeChunk(): Uint8Array {
  return spares.pop() ?? new Uint8Array(Buffer.allocUnsafeSlow(CHUNK_BYTES).buffer, 0, CHUNK_BYTES);
}

/** Bytes the spare pool holds now (for tests). */
export const spareChunkBytes = (): number => spares.length * CHUNK_BYTES;

/** Empties the spare pool (for tests that count allocations). */
export function dropSpareChunks(): void {
  spares.length = 0;
}
