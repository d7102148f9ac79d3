/**
 * The deadlines of many owners (TCP connections), with the earliest at hand: a binary
 * min-heap with lazy deletion. Each owner has at most one deadline; `set` replaces or
 * cancels it in O(log n), and the entries it made stale are skipped when they surface.
 * When stale entries outnumber live ones the heap is rebuilt, so memory stays O(owners).
 *
 * Why: the stack asks for its next deadline after every event. Scanning every connection
 * that had a timer made that O(connections): with 600 connections in TIME-WAIT after a
 * burst of short connections, a third of the daemon's CPU went to the scan.
 */
interface Entry<T> {
  readonly at: number;
  readonly owner: T;
}

export class DeadlineQueue<T> {
  #heap: Entry<T>[] = [];
  /** Each owner's live deadline; a heap entry is live only while it matches. */
  readonly #live = new Map<T, number>();

  /** Owners with a deadline. */
  get size(): number {
    return this.#live.size;
  }

  /** The owner's deadline, if any. */
  get(owner: T): number | undefined {
    return this.#live.get(owner);
  }

  /** Sets the owner's deadline (`undefined` cancels it). */
  set(owner: T, at: number | undefined): void {
    if (at === undefined) {
      this.#live.delete(owner);
      return;
    }
    if (this.#live.get(owner) === at) return;
    this.#live.set(owner, at);
    this.#push({ at, owner });
    if (this.#heap.length > 2 * this.#live.size + 64) this.#rebuild();
  }

  /** The earliest deadline, or undefined when none is set. */
  next(): number | undefined {
    this.#dropStale();
    return this.#heap[0]?.at;
  }

  /** Removes and returns the owners whose deadline is ≤ `now`, earliest first. */
  takeDue(now: number): T[] {
    const due: T[] = [];
    for (;;) {
      this.#dropStale();
      const top = this.#heap[0];
      if (top === undefined || top.at > now) return due;
      this.#pop();
      this.#live.delete(top.owner);
      due.push(top.owner);
    }
  }

  #dropStale(): void {
    for (let top = this.#heap[0]; top !== undefined && this.#live.get(top.owner) !== top.at; top = this.#heap[0]) this.#pop();
  }

  #rebuild(): void {
    this.#heap = [...this.#live].map(([owner, at]) => ({ at, owner }));
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #push(e: Entry<T>): void {
    const h = this.#heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= e.at) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    this.#down(0);
  }

  #down(i: number): void {
    const h = this.#heap;
    const e = h[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= h.length) break;
      if (child + 1 < h.length && h[child + 1]!.at < h[child]!.at) child++;
      if (h[child]!.at >= e.at) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = e;
  }
}
