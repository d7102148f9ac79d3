/**
 * What a user asks of an impaired link (`--link-delay`, `--link-loss`, `--link-duplicate`,
 * `--link-reorder`, `--link-rate`), validated. The engine that applies it is
 * `impaired-link.ts`; the theory of operation is there.
 */
import { ConfigError } from '../util/config-error.js';

/** A validated impairment of one guest link, applied to each direction on its own. */
export interface LinkImpairment {
  /** Added to every frame's departure, 0..MAX_DELAY_MS. */
  readonly delayMs: number;
  /** Each frame's delay is drawn uniformly from delayMs ± jitterMs; 0 ≤ jitterMs ≤ delayMs. */
  readonly jitterMs: number;
  /** Percent of frames dropped, 0..100. */
  readonly lossPct: number;
  /** Percent of frames sent twice, 0..100. */
  readonly duplicatePct: number;
  /** Percent of frames held back behind the next frame, 0..100. */
  readonly reorderPct: number;
  /** The token bucket's rate in bits per second; undefined: unlimited. */
  readonly rateBitsPerS: number | undefined;
}

/** The options as text, named as on the command line. */
export interface LinkImpairmentOptions {
  readonly 'link-delay'?: string | undefined;
  readonly 'link-loss'?: string | undefined;
  readonly 'link-duplicate'?: string | undefined;
  readonly 'link-reorder'?: string | undefined;
  readonly 'link-rate'?: string | undefined;
}

/** One minute: a longer delay would hold a whole window of frames for nothing a test needs. */
export const MAX_DELAY_MS = 60_000;
/** 1 kbit/s .. 100 Gbit/s. */
export const MIN_RATE_BITS_PER_S = 1_000;
export const MAX_RATE_BITS_PER_S = 100e9;

const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

function percent(option: string, text: string): number {
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= 100)) throw new ConfigError(option, `'${text}' must be a percentage from 0 to 100 (e.g. 2 or 0.5)`);
  return n;
}

function millis(option: string, text: string, what: string): number {
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= MAX_DELAY_MS)) throw new ConfigError(option, `${what} '${text}' must be milliseconds from 0 to ${MAX_DELAY_MS}`);
  return n;
}

/** `RATE` as bits per second: a number with an optional k, M or G suffix (powers of 1000). */
export function parseRate(text: string): number | string {
  const m = /^((?:\d+(?:\.\d*)?|\.\d+))([kKmMgG]?)(?:bit|bps|b)?$/.exec(text);
  if (m === null) return `'${text}' must be bits per second with an optional k, M or G suffix (e.g. 10M)`;
  const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bits = Number(m[1]) * scale;
  if (!(bits >= MIN_RATE_BITS_PER_S && bits <= MAX_RATE_BITS_PER_S)) return `'${text}' must be from 1k to 100G bits per second`;
  return bits;
}

/**
 * The impairment the options ask for; undefined when they ask for none (every option absent
 * or zero), so an unimpaired network pays nothing. Throws ConfigError naming the option.
 */
export function resolveLinkImpairment(o: LinkImpairmentOptions): LinkImpairment | undefined {
  let delayMs = 0;
  let jitterMs = 0;
  const delay = o['link-delay'];
  if (delay !== undefined) {
    const [d, j, ...more] = delay.split(':');
    if (more.length > 0) throw new ConfigError('link-delay', `'${delay}' must look like MS or MS:JITTER_MS`);
    delayMs = millis('link-delay', d!, 'delay');
    jitterMs = j === undefined ? 0 : millis('link-delay', j, 'jitter');
    if (jitterMs > delayMs) throw new ConfigError('link-delay', `jitter ${jitterMs} ms exceeds the delay ${delayMs} ms (a frame cannot leave before it arrived)`);
  }
  const lossPct = o['link-loss'] === undefined ? 0 : percent('link-loss', o['link-loss']);
  const duplicatePct = o['link-duplicate'] === undefined ? 0 : percent('link-duplicate', o['link-duplicate']);
  const reorderPct = o['link-reorder'] === undefined ? 0 : percent('link-reorder', o['link-reorder']);
  let rateBitsPerS: number | undefined;
  if (o['link-rate'] !== undefined) {
    const r = parseRate(o['link-rate']);
    if (typeof r === 'string') throw new ConfigError('link-rate', r);
    rateBitsPerS = r;
  }
  if (delayMs === 0 && lossPct === 0 && duplicatePct === 0 && reorderPct === 0 && rateBitsPerS === undefined) return undefined;
  return { delayMs, jitterMs, lossPct, duplicatePct, reorderPct, rateBitsPerS };
}
