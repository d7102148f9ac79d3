/**
 * How long the heavier properties run. In `npm test` (and CI) each runs a short slice sized to
 * finish in a few seconds on a loaded 2-core machine, with its timeout at least three times
 * that; `npm run fuzz` sets TSLIRP_FUZZ_SCALE (default there: 50) to run every one of them
 * that many times longer, with budgets scaled alike.
 */
const raw = Number(process.env['TSLIRP_FUZZ_SCALE'] ?? '1');
export const FUZZ_SCALE = Number.isFinite(raw) && raw >= 1 ? raw : 1;

/** numRuns for a property whose CI slice is `n` runs. */
export const runs = (n: number): number => Math.round(n * FUZZ_SCALE);

/** The timeout of a property test whose CI slice may take `ms` with a 3× margin. */
export const budgetMs = (ms: number): number => Math.round(ms * FUZZ_SCALE);
