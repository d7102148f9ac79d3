/**
 * The entries of a recording as pcapng Custom Blocks, and the mapping between a recording's
 * clock and pcapng timestamps. The file's layout is in README.md of this folder; this module
 * only encodes and decodes one custom block.
 *
 * A custom block's data here: `PEN | "TSLR" | jsonLength u32le | bytesLength u32le | JSON |
 * bytes`, padded to 32 bits by the block. The JSON is one `Entry`; every byte array in it
 * (a host event's data, a host call's data, a DNS record's RDATA, the gateway MAC) is written
 * as `{"$b":[offset,length]}` into the bytes that follow, so bulk data is never hex. The
 * magic "TSLR" tells our blocks from other users of the Private Enterprise Number: tslirp has
 * none of its own and uses 32473, the number RFC 5612 reserves for documentation, which
 * Wireshark names "Example Enterprise Number for Documentation Use".
 */
import type { Host, HostEvents } from '../net/seams.js';
import { put32le, u32le } from '../util/bytes.js';

/** RFC 5612's documentation PEN: see the module comment. */
export const RECORDING_PEN = 32473;
/** "TSLR" */
const MAGIC = [0x54, 0x53, 0x4c, 0x52] as const;
/** The recording format's version, in the `network` entry: a replay refuses other versions by name. */
export const RECORDING_VERSION = 1;
const HEAD = 12; // magic, JSON length, bytes length

/** Microseconds of the recording clock: the network saw `us / 1000` ms (exact: the same division in a replay). */
export type ClockUs = number;

/** What rebuilds the network: the first entry of every recording. */
export interface NetworkEntry {
  readonly k: 'network';
  readonly v: number;
  readonly name: string;
  /** The StackConfig as JSON (byte arrays as `$b`). */
  readonly config: Record<string, unknown>;
  readonly flowLimits?: unknown;
  readonly tcpLimits?: unknown;
  readonly switch?: unknown;
  readonly dnsUpstreams: readonly unknown[];
  readonly dnsRecords: readonly unknown[];
  /** The 32-byte ChaCha20 seed of the network's randomness. */
  readonly seed: Uint8Array;
  /** The clock (µs) when the recording started, and the wall clock then (µs since the epoch): EPB timestamps map onto the clock through them. */
  readonly startUs: ClockUs;
  readonly wallStartUs: number;
  /** The recorder's version, for the report. */
  readonly by: string;
}

/** A guest port attached: its frames are the EPBs of interface `port`. */
export interface PortEntry { readonly k: 'port'; readonly t: ClockUs; readonly port: number; readonly name?: string; readonly description?: string }
export interface DetachEntry { readonly k: 'detach'; readonly t: ClockUs; readonly port: number }
/** A HostEvents event entered the network. */
export interface EventEntry { readonly k: 'event'; readonly t: ClockUs; readonly n: keyof HostEvents; readonly a: readonly unknown[] }
/** An output: the network called its Host; `r` is what the call returned (tcpWrite's count). */
export interface CallEntry { readonly k: 'call'; readonly n: keyof Host; readonly a: readonly unknown[]; readonly r?: number }
/** The shell's timer fired and the network advanced. */
export interface AdvanceEntry { readonly k: 'advance'; readonly t: ClockUs }
/** A batch of frames from one I/O event began (`on`) or ended (TCP flushed). */
export interface BatchEntry { readonly k: 'batch'; readonly t: ClockUs; readonly on: boolean }
/** A call of the network's own API from its owner. */
export interface ApiEntry { readonly k: 'api'; readonly t: ClockUs; readonly n: 'openForward' | 'closeForward' | 'setDnsUpstreams' | 'reload' | 'close'; readonly a: readonly unknown[]; readonly r?: unknown }
/** The recording ended on purpose (`reason`): without it, the file ends early (the process died, or records were dropped). */
export interface EndEntry { readonly k: 'end'; readonly t: ClockUs; readonly reason: string }

export type Entry = NetworkEntry | PortEntry | DetachEntry | EventEntry | CallEntry | AdvanceEntry | BatchEntry | ApiEntry | EndEntry;

const utf8e = new TextEncoder();
const utf8d = new TextDecoder('utf-8', { fatal: true });

/** The custom data of one entry, as the parts `writeCustomBlock` writes after the PEN. */
export function encodeEntry(e: Entry): Uint8Array[] {
  const blobs: Uint8Array[] = [];
  let offset = 0;
  // `this[k]`, not `v`: a Buffer's toJSON has already run when the replacer sees `v`.
  const json = JSON.stringify(e, function (this: Record<string, unknown>, k: string, v: unknown) {
    const raw = this[k];
    if (raw instanceof Uint8Array) {
      const ref = { $b: [offset, raw.length] };
      blobs.push(raw);
      offset += raw.length;
      return ref;
    }
    if (v instanceof Uint8Array) {
      const ref = { $b: [offset, v.length] };
      blobs.push(v);
      offset += v.length;
      return ref;
    }
    return v;
  });
  const text = utf8e.encode(json);
  const head = new Uint8Array(HEAD);
  head.set(MAGIC);
  put32le(head, 4, text.length);
  put32le(head, 8, offset);
  return [head, text, ...blobs];
}

/** Whether a custom block's data (after the PEN) starts with our magic. */
export const isEntryBlock = (data: Uint8Array): boolean =>
  data.length >= HEAD && data[0] === MAGIC[0] && data[1] === MAGIC[1] && data[2] === MAGIC[2] && data[3] === MAGIC[3];

const KINDS: ReadonlySet<string> = new Set(['network', 'port', 'detach', 'event', 'call', 'advance', 'batch', 'api', 'end']);

/** Deeper than any entry nests: a hostile file's `[[[[…]]]]` ends here, not in a stack overflow. */
const MAX_DEPTH = 32;

/** The view a `{"$b":[offset,length]}` names, or what is wrong with it. */
function byteRef(ref: unknown, bytes: Uint8Array): Uint8Array | string {
  if (!Array.isArray(ref) || ref.length !== 2 || !ref.every((n) => Number.isInteger(n) && (n as number) >= 0)) return 'bad byte reference';
  const [off, len] = ref as [number, number];
  if (off + len > bytes.length) return 'byte reference beyond the block';
  return bytes.subarray(off, off + len);
}

/**
 * Replaces, in place, every `{"$b":[offset,length]}` under `node` (fresh from JSON.parse) with
 * its view into `bytes`; a string names a bad reference. A walk after the parse, not a
 * JSON.parse reviver: V8 calls a reviver for every key and value, which cost more than the parse.
 */
function resolveBytes(node: Record<string, unknown> | unknown[], bytes: Uint8Array, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return 'entry nested too deep';
  const o = node as Record<string, unknown>;
  const keys = Array.isArray(node) ? Array.from(node, (_v, i) => String(i)) : Object.keys(node);
  for (const k of keys) {
    const v = o[k];
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v) && Object.hasOwn(v, '$b')) {
      const view = byteRef((v as { $b: unknown }).$b, bytes);
      if (typeof view === 'string') return view;
      o[k] = view;
    } else {
      const bad = resolveBytes(v as Record<string, unknown> | unknown[], bytes, depth + 1);
      if (bad !== undefined) return bad;
    }
  }
  return undefined;
}

const BATCH_HEAD = utf8e.encode('{"k":"batch","t":');
const ADVANCE_HEAD = utf8e.encode('{"k":"advance","t":');
const ON_TRUE = utf8e.encode(',"on":true}');
const ON_FALSE = utf8e.encode(',"on":false}');

const startsWith = (b: Uint8Array, at: number, end: number, what: Uint8Array): boolean => {
  if (end - at < what.length) return false;
  for (let i = 0; i < what.length; i++) if (b[at + i] !== what[i]) return false;
  return true;
};

/**
 * The two entries that make up most of a recording — a batch's start or end (one pair per I/O
 * event) and a timer advance — read without JSON.parse: their text is exactly what
 * `encodeEntry` writes (`{"k":"batch","t":N,"on":true}`, `{"k":"advance","t":N}`), so a byte
 * comparison and the digits of `t` decode them. Anything else, or any variation (spaces,
 * another key order, a number that is not a plain safe integer), is undefined: the general
 * path decides.
 */
function decodeCommon(data: Uint8Array, at: number, end: number): Entry | undefined {
  const batch = startsWith(data, at, end, BATCH_HEAD);
  if (!batch && !startsWith(data, at, end, ADVANCE_HEAD)) return undefined;
  let i = at + (batch ? BATCH_HEAD.length : ADVANCE_HEAD.length);
  const first = i;
  let t = 0;
  for (; i < end && i - first < 16; i++) {
    const d = data[i]! - 0x30;
    if (d < 0 || d > 9) break;
    t = t * 10 + d;
  }
  if (i === first || (data[first] === 0x30 && i - first > 1) || !Number.isSafeInteger(t)) return undefined;
  if (!batch) return i + 1 === end && data[i] === 0x7d ? { k: 'advance', t } : undefined;
  if (end - i === ON_TRUE.length && startsWith(data, i, end, ON_TRUE)) return { k: 'batch', t, on: true };
  if (end - i === ON_FALSE.length && startsWith(data, i, end, ON_FALSE)) return { k: 'batch', t, on: false };
  return undefined;
}

/**
 * Decodes a custom block's data (after the PEN) into an entry, its byte arrays views into
 * `data`; a string names what is wrong (the block is corrupt).
 */
export function decodeEntry(data: Uint8Array): Entry | string {
  if (!isEntryBlock(data)) return 'not a tslirp entry (no TSLR magic)';
  const jsonLength = u32le(data, 4);
  const bytesLength = u32le(data, 8);
  if (jsonLength > data.length - HEAD || bytesLength > data.length - HEAD - jsonLength) return 'entry lengths exceed the block';
  if (bytesLength === 0) {
    const common = decodeCommon(data, HEAD, HEAD + jsonLength);
    if (common !== undefined) return common;
  }
  const bytes = data.subarray(HEAD + jsonLength, HEAD + jsonLength + bytesLength);
  let value: unknown;
  try {
    value = JSON.parse(utf8d.decode(data.subarray(HEAD, HEAD + jsonLength)));
  } catch (err) {
    return `entry is not JSON (${err instanceof Error ? err.message : String(err)})`;
  }
  if (typeof value !== 'object' || value === null) return 'entry of an unknown kind';
  const bad = resolveBytes(value as Record<string, unknown>, bytes, 0);
  if (bad !== undefined) return bad;
  if (!KINDS.has(String((value as { k?: unknown }).k))) return 'entry of an unknown kind';
  const e = value as Entry;
  if (e.k !== 'network' && e.k !== 'call' && !Number.isSafeInteger(e.t)) return `${e.k} entry without a clock value`;
  return e;
}
