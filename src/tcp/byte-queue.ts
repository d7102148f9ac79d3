/**
 * A FIFO of bytes kept as the chunks they arrived in: the send queue of a TCP connection
 * (host data the guest has not acknowledged yet). Appending keeps the caller's chunk (no
 * copy); the only copy is into an outgoing frame (`copyOut`). Consumed bytes are dropped
 * from the front when the guest acknowledges them.
 *
 * Reads are mostly sequential (segment after segment), so the chunk that served the last
 * read is remembered and the next read starts there instead of at the head.
 */
export class ByteQueue {
  /** Chunks from `#head` on are live; the first one starts at `#headOffset`. */
  #chunks: Uint8Array[] = [];
  #head = 0;
  #headOffset = 0;
  /** Total live bytes. */
  #length = 0;
  /** Read cursor: chunk index and the queue offset of that chunk's first live byte. */
  #cursorIndex = 0;
  #cursorBase = 0;

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Appends a chunk; the queue keeps it (the caller must not change it afterwards). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Drops `n` bytes from the front (n ≤ length). */
  drop(n: number): void {
    n = Math.min(n, this.#length);
    this.#length -= n;
    while (n > 0) {
      const c = this.#chunks[this.#head]!;
      const left = c.length - this.#headOffset;
      if (n < left) {
        this.#headOffset += n;
        break;
      }
      n -= left;
      this.#chunks[this.#head] = EMPTY;
      this.#head++;
      this.#headOffset = 0;
    }
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    this.#cursorIndex = this.#head;
    this.#cursorBase = 0;
  }

  /** Copies bytes [from, from + n) of the queue to `into[at]`; the range must lie inside. */
  copyOut(from: number, n: number, into: Uint8Array, at: number): void {
    let i = this.#cursorIndex;
    let base = this.#cursorBase;
    if (from < base || i < this.#head) {
      i = this.#head;
      base = 0;
    }
    // Advance to the chunk holding `from`.
    for (;;) {
      const len = this.#liveLength(i);
      if (from < base + len) break;
      base += len;
      i++;
    }
    this.#cursorIndex = i;
    this.#cursorBase = base;
    while (n > 0) {
      const c = this.#chunks[i]!;
      const start = (i === this.#head ? this.#headOffset : 0) + (from - base);
      const k = Math.min(n, c.length - start);
      into.set(k === c.length ? c : c.subarray(start, start + k), at);
      at += k;
      n -= k;
      from += k;
      base += this.#liveLength(i);
      i++;
    }
  }

  #liveLength(i: number): number {
    const c = this.#chunks[i]!;
    return i === this.#head ? c.length - this.#headOffset : c.length;
  }
}

const EMPTY = new Uint8Array(0);
