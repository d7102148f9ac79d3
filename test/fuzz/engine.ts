/**
 * A coverage-guided fuzzer for tslirp's parsers, whole networks and the e1000 model, on V8's
 * own block coverage.
 *
 * Why not Jazzer.js: its 4.x native addon needs glibc 2.38 (Debian 12 has 2.36) and its 2.x
 * builds its addon at install time from a download this project's machines cannot reach. V8
 * already counts every basic block it runs (`Profiler.startPreciseCoverage` with `detailed`
 * through `node:inspector`), so the loop libFuzzer runs is a page of TypeScript:
 *
 * 1. The corpus starts from the target's seeds (valid frames of every kind, recordings).
 * 2. Each round takes a corpus entry, mutates it (the target's structure-aware mutator: bit
 *    flips, interesting values at length fields, truncation, splices, dropped, duplicated and
 *    swapped frames, checksums recomputed half the time so that mutations get past them) and
 *    runs it.
 * 3. Every `guideEvery` inputs it reads the block counts V8 gathered since the last read
 *    (reading costs about a millisecond, so the inputs between run at full speed). When they
 *    hold a block no earlier input ran, the inputs of that stretch run again one by one, each
 *    followed by a read, and those that reach a new block join the corpus (bounded:
 *    MAX_CORPUS, a random non-seed entry out first).
 * 4. An exception from `run` or `check` is a finding: the input is kept (hex) with the error.
 *
 * Every loop is bounded by `seconds` and `maxInputs`. The randomness is a seeded xorshift:
 * a run is repeatable given its seed and its budget in inputs.
 */
import inspector from 'node:inspector';

export interface FuzzTarget {
  readonly name: string;
  /** Valid inputs to start from. */
  seeds(): Uint8Array[];
  /** Runs one input; returns the units of work it did (frames, device operations). Throws on a finding. */
  run(input: Uint8Array): number;
  /** A mutated copy of `input`; `other` is another corpus entry to splice from. */
  mutate(input: Uint8Array, other: Uint8Array, rnd: Rng): Uint8Array;
  /** Invariants checked every few hundred inputs (bounded tables, no internal errors); throws on a finding. */
  check?(): void;
}

export interface FuzzOptions {
  readonly seconds: number;
  readonly maxInputs?: number;
  readonly seed?: number;
  /** Guide one round in this many (default 16); 0 turns guidance off. */
  readonly guideEvery?: number;
}

export interface Finding {
  readonly input: string;
  readonly error: string;
}

export interface FuzzReport {
  readonly target: string;
  readonly inputs: number;
  /** The target's units (frames or device operations). */
  readonly work: number;
  readonly corpus: number;
  /** Source blocks of src/ covered at the end. */
  readonly blocks: number;
  readonly seconds: number;
  readonly findings: readonly Finding[];
}

export const MAX_CORPUS = 4096;
const CHECK_EVERY = 256;
const MAX_FINDINGS = 16;

/** A seeded xorshift32. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  /** 0 ≤ n < max. */
  below(max: number): number {
    return max <= 1 ? 0 : this.next() % max;
  }
  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }
}

/** Block coverage of the project's own code, read and reset through the inspector. */
class Coverage {
  readonly #session = new inspector.Session();
  readonly #seen = new Set<string>();

  constructor() {
    this.#session.connect();
    this.#post('Profiler.enable');
    this.#post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  get blocks(): number {
    return this.#seen.size;
  }

  #post(method: string, params?: object): inspector.Profiler.TakePreciseCoverageReturnType | undefined {
    let out: inspector.Profiler.TakePreciseCoverageReturnType | undefined;
    // An in-process session answers synchronously.
    this.#session.post(method, params, (err: Error | null, r: unknown) => {
      if (err !== null) throw err;
      out = r as inspector.Profiler.TakePreciseCoverageReturnType;
    });
    return out;
  }

  /** Blocks of src/ run since the last call that no earlier commit saw (not yet committed). */
  take(): Set<string> {
    const r = this.#post('Profiler.takePreciseCoverage');
    const fresh = new Set<string>();
    for (const script of r?.result ?? []) {
      if (!script.url.includes('/src/')) continue;
      for (const f of script.functions) {
        for (const range of f.ranges) {
          if (range.count === 0) continue;
          const key = `${script.scriptId}:${range.startOffset}:${range.endOffset}`;
          if (!this.#seen.has(key)) fresh.add(key);
        }
      }
    }
    return fresh;
  }

  commit(keys: Iterable<string>): void {
    for (const k of keys) this.#seen.add(k);
  }

  close(): void {
    this.#post('Profiler.stopPreciseCoverage');
    this.#session.disconnect();
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Runs `target` within the budget; never throws for a finding (it is reported). */
export function fuzz(target: FuzzTarget, o: FuzzOptions): FuzzReport {
  const rnd = new Rng(o.seed ?? 1);
  const guideEvery = o.guideEvery ?? 16;
  const coverage = guideEvery > 0 ? new Coverage() : undefined;
  const seeds = target.seeds();
  const corpus: Uint8Array[] = [...seeds];
  const findings: Finding[] = [];
  const start = performance.now();
  const end = start + o.seconds * 1000;
  const maxInputs = o.maxInputs ?? Number.MAX_SAFE_INTEGER;
  let inputs = 0;
  let work = 0;
  const attempt = (input: Uint8Array, fn: () => number | undefined): void => {
    try {
      const w = fn();
      if (typeof w === 'number') work += w;
    } catch (e) {
      if (findings.length < MAX_FINDINGS) findings.push({ input: hex(input), error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  };
  const keep = (input: Uint8Array): void => {
    if (corpus.length >= MAX_CORPUS) corpus.splice(seeds.length + rnd.below(corpus.length - seeds.length), 1);
    corpus.push(input);
  };
  const stretch: Uint8Array[] = [];
  try {
    for (const s of seeds) attempt(s, () => target.run(s));
    coverage?.commit(coverage.take());
    while (inputs < maxInputs && performance.now() < end && findings.length < MAX_FINDINGS) {
      const base = corpus[rnd.below(corpus.length)]!;
      const input = target.mutate(base, corpus[rnd.below(corpus.length)]!, rnd);
      attempt(input, () => target.run(input));
      inputs++;
      if (coverage !== undefined) {
        stretch.push(input);
        if (stretch.length >= guideEvery) {
          const fresh = coverage.take();
          if (fresh.size > 0) {
            // Which of the stretch reached it: each again, alone.
            for (const again of stretch) {
              attempt(again, () => target.run(again));
              const mine = coverage.take();
              if ([...mine].some((k) => fresh.has(k))) keep(again);
              coverage.commit(mine);
            }
            coverage.commit(fresh);
          }
          stretch.length = 0;
        }
      }
      if (inputs % CHECK_EVERY === 0 && target.check !== undefined) attempt(input, () => {
        target.check!();
        return undefined;
      });
    }
  } finally {
    coverage?.close();
  }
  return { target: target.name, inputs, work, corpus: corpus.length, blocks: coverage?.blocks ?? 0, seconds: (performance.now() - start) / 1000, findings };
}
