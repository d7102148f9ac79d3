/**
 * Replaying a recording: the network is built again from the recorded configuration and seed,
 * every entry is run in file order on a clock that shows each entry's recorded time, and every
 * output — a frame to a guest, a Host call — is compared, as it happens, with the next output
 * recorded after that entry. The host is a fake that answers each call with the recorded
 * result (`tcpWrite`'s buffered count) and does nothing else: host events are entries of their
 * own. So a recording made by this version replays byte for byte with no normalisation.
 *
 * The first difference ends the replay (what follows it depends on it): the report names the
 * frame by tshark's number, the time, expected and got as one-line decodes, the fields that
 * differ and a hex diff. A file that is not a recording (no `network` entry first), an entry
 * that does not decode, a frame on an interface no port owns, or a format version this replay
 * does not know is `unusable` (exit 2), never a throw.
 */
import type { DnsStaticRecord } from '../dns/records.js';
import type { FlowLimits } from '../nat/flow-table.js';
import { ForwardRefusals } from '../nat/forward-refusals.js';
import type { ForwardRule } from '../nat/forwards.js';
import type { TcpEngineLimits } from '../nat/tcp-flow.js';
import type { Endpoint } from '../net/addr.js';
import { HOST_CALLS, HOST_EVENTS } from '../net/observe.js';
import type { Host, HostEvents } from '../net/seams.js';
import { Network, type NetworkPort } from '../network/network.js';
import { readCapture, type CaptureRecord } from '../pcap/reader.js';
import type { StackConfig } from '../stack/config.js';
import { EgressPolicy } from '../nat/egress.js';
import { applyNetworkReload, type NetworkReload } from '../network/reload.js';
import type { SwitchOptions } from '../switch/learning-switch.js';
import { chachaRandom, CHACHA_SEED_BYTES } from '../util/chacha.js';
import { decodeEntry, isEntryBlock, RECORDING_PEN, RECORDING_VERSION, type CallEntry, type Entry, type NetworkEntry } from './format.js';
import { fieldDiff, frameFields, hexDiff, summarizeCall, summarizeFrame } from './decode.js';
import { HOST_INTERFACE } from './recorder.js';

/** The report's schema name and version (README.md of this folder documents it). */
export const REPLAY_REPORT_SCHEMA = 'tslirp-replay-report/1';

/** 0 match, 1 divergence, 2 unusable input (usage, not a recording, truncated, corrupt), 3 environment. */
export type ReplayExit = 0 | 1 | 2 | 3;

export interface FieldDifference {
  readonly field: string;
  readonly expected: string;
  readonly got: string;
}

/** The first place where the replay did something else than the recording. */
export interface Divergence {
  /** tshark's frame number of the expected output (or, when an output was expected and none came, of it; when an output came that the recording lacks, of the next record). */
  readonly frame: number;
  /** tshark's frame number of the entry whose outputs diverged. */
  readonly entryFrame: number;
  /** Seconds since the recording started (the entry's time). */
  readonly timeS: number;
  /** `frame`: a frame to a guest differs; `call`: a Host call differs; `missing`: the recording has an output the replay did not make; `unexpected`: the replay made an output the recording lacks; `exception`: the network threw. */
  readonly kind: 'frame' | 'call' | 'missing' | 'unexpected' | 'exception';
  /** One-line decodes. */
  readonly expected?: string;
  readonly got?: string;
  readonly fields?: readonly FieldDifference[];
  readonly hex?: { readonly offset: number; readonly expected: string; readonly got: string };
  /** A script's divergence: the line of the expected output (or, for `unexpected`, of the step before which it was not expected); `frame` and `entryFrame` are then line numbers too. */
  readonly line?: number;
}

export interface ReplayReport {
  readonly schema: typeof REPLAY_REPORT_SCHEMA;
  /** What was replayed: a recording (absent in reports of before scripts existed: a recording) or a `.pkt` script. */
  readonly input?: 'recording' | 'script';
  readonly result: 'match' | 'divergence' | 'unusable' | 'environment';
  readonly exitCode: ReplayExit;
  /** The file, when replayed from one. */
  readonly file?: string;
  /** What made the recording (shb_userappl in the network entry), and the network's name. */
  readonly recordedBy?: string;
  readonly network?: string;
  /** Guest frames replayed: fed to the network plus compared on the way out. */
  readonly frames: number;
  /** Entries run (guest frames in, host events, timer advances, batches, ports, API calls). */
  readonly entries: number;
  /** Host calls compared. */
  readonly hostCalls: number;
  /** 0, or 1: the replay stops at the first. */
  readonly differences: number;
  /** Whether the recording ends with its `end` entry (false: it stops early, and the replay covers what is there). */
  readonly complete: boolean;
  /** Wall-clock seconds the replay took. */
  readonly seconds: number;
  /** Things skipped with a count (unknown blocks, foreign custom blocks). */
  readonly warnings: readonly string[];
  readonly divergence?: Divergence;
  /** Why the input is unusable, or what in the environment failed. */
  readonly error?: string;
  /** A script that does not parse: every line's error (the first 50), `error` their summary. */
  readonly errors?: readonly { readonly line: number; readonly message: string }[];
}

/** Thrown inside the replay to stop at the first divergence; never escapes `replayRecording`. */
class Diverged extends Error {
  readonly divergence: Divergence;
  constructor(d: Divergence) {
    super('diverged');
    this.divergence = d;
  }
}

/** Expected-output records, decoded as the cursor reaches them. */
type Output = { readonly kind: 'frame'; readonly iface: number; readonly data: Uint8Array; readonly frame: number } | { readonly kind: 'call'; readonly entry: CallEntry; readonly frame: number };

const now = (): number => performance.now();

/** `[JSON text, byte arrays]` of a value, for comparing a call's arguments with the recorded ones. */
function canonical(args: readonly unknown[]): [string, Uint8Array[]] {
  const blobs: Uint8Array[] = [];
  const text = JSON.stringify(args, function (this: Record<string, unknown>, k: string, v: unknown) {
    const raw = this[k]; // a Buffer's toJSON has run when the replacer sees `v`
    if (raw instanceof Uint8Array) {
      blobs.push(raw);
      return { $b: blobs.length - 1 };
    }
    return v;
  });
  return [text, blobs];
}

/**
 * Byte equality through Buffer.compare (memcmp), not a loop in JavaScript: the replay's hot
 * comparison. It takes the Uint8Arrays themselves; two Buffer views made for each frame to call
 * `equals` were garbage collected at every frame.
 */
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

function sameArgs(a: readonly unknown[], b: readonly unknown[]): boolean {
  const [ta, ba] = canonical(a);
  const [tb, bb] = canonical(b);
  return ta === tb && ba.length === bb.length && ba.every((x, i) => sameBytes(x, bb[i]!));
}

function unusable(error: string, started: number, warnings: readonly string[] = []): ReplayReport {
  return { schema: REPLAY_REPORT_SCHEMA, result: 'unusable', exitCode: 2, frames: 0, entries: 0, hostCalls: 0, differences: 0, complete: false, seconds: (now() - started) / 1000, warnings, error };
}

/** A recorded configuration (its JSON form) as the network takes it: the gateway MAC and the egress policy rebuilt. */
export const restoreConfig = (c: Record<string, unknown>): StackConfig => {
  const mac = c['gatewayMac'];
  return { ...c, gatewayMac: mac instanceof Uint8Array ? mac.slice() : new Uint8Array(6), egress: EgressPolicy.restore(c['egress']) } as unknown as StackConfig;
};

/** Replays the recording in `bytes` in process; never throws. */
export function replayRecording(bytes: Uint8Array, file?: string): ReplayReport {
  const started = now();
  const capture = readCapture(bytes, { records: true });
  if (typeof capture === 'string') return unusable(`not a readable capture (${capture})`, started);
  if (capture.format !== 'pcapng') return unusable('not a tslirp recording: a classic pcap file (a recording is pcapng; for a capture of a guest alone use --host live)', started);
  const records = capture.records ?? [];
  const warnings = Object.entries(capture.skippedBlocks ?? {}).map(([type, n]) => `skipped ${n} block(s) of unknown type ${type}`);
  let foreign = 0;
  // Decode every entry up front: a corrupt entry anywhere makes the file unusable before anything runs.
  // By record index (an array, not a Map: looked up several times per record).
  const entries: (Entry | undefined)[] = new Array<Entry | undefined>(records.length).fill(undefined);
  let network: NetworkEntry | undefined;
  for (const [i, r] of records.entries()) {
    if (r.kind !== 'custom') continue;
    if (r.block.pen !== RECORDING_PEN || !isEntryBlock(r.block.data)) {
      foreign++;
      continue;
    }
    const e = decodeEntry(r.block.data);
    if (typeof e === 'string') return unusable(`frame ${i + 1}: corrupt entry: ${e}`, started, warnings);
    if (network === undefined) {
      if (e.k !== 'network') return unusable(`frame ${i + 1}: not a tslirp recording (the first entry is '${e.k}', not the network)`, started, warnings);
      network = e;
    } else if (e.k === 'network') return unusable(`frame ${i + 1}: a second network entry (one recording holds one network)`, started, warnings);
    entries[i] = e;
  }
  if (foreign > 0) warnings.push(`skipped ${foreign} custom block(s) that are not tslirp entries`);
  if (network === undefined) return unusable('not a tslirp recording: no network entry (a capture of a guest alone replays with --host live)', started, warnings);
  if (network.v !== RECORDING_VERSION) return unusable(`recording format version ${String(network.v)}: this replay reads version ${RECORDING_VERSION}`, started, warnings);
  if (!(network.seed instanceof Uint8Array) || network.seed.length !== CHACHA_SEED_BYTES) return unusable('corrupt network entry: the seed is not 32 bytes', started, warnings);
  try {
    return new Replay(records, entries, network, warnings, started, file).run();
  } catch (e) {
    // A recording whose configuration the network refuses, or a bug of ours: a report, not a throw.
    return unusable(`the recorded network cannot be rebuilt: ${e instanceof Error ? e.message : String(e)}`, started, warnings);
  }
}

class Replay {
  readonly #records: readonly CaptureRecord[];
  readonly #entries: readonly (Entry | undefined)[];
  readonly #net: NetworkEntry;
  readonly #warnings: string[];
  readonly #started: number;
  readonly #file: string | undefined;
  readonly #network: Network;
  /** Interface → the port replaying it. */
  readonly #ports = new Map<number, NetworkPort>();
  #us: number;
  /** The next record the outputs are compared with. */
  #cursor = 0;
  /** The entry being run (its record index). */
  #entryAt = 0;
  #frames = 0;
  #entriesRun = 0;
  #calls = 0;
  #complete = false;
  #divergence: Divergence | undefined;

  constructor(records: readonly CaptureRecord[], entries: readonly (Entry | undefined)[], net: NetworkEntry, warnings: string[], started: number, file: string | undefined) {
    this.#records = records;
    this.#entries = entries;
    this.#net = net;
    this.#warnings = warnings;
    this.#started = started;
    this.#file = file;
    this.#us = net.startUs;
    const host = this.#fakeHost();
    this.#network = new Network(net.name, restoreConfig(net.config), {
      clock: { now: () => this.#us / 1000 },
      random: chachaRandom(net.seed),
      host,
      dnsUpstreams: net.dnsUpstreams as Endpoint[],
      dnsRecords: (net.dnsRecords as DnsStaticRecord[]).map((r) => ({ ...r, rdata: r.rdata.slice() })),
      ...(net.flowLimits !== undefined && { flowLimits: net.flowLimits as FlowLimits }),
      ...(net.tcpLimits !== undefined && { tcpLimits: net.tcpLimits as Partial<TcpEngineLimits> }),
      ...(net.switch !== undefined && { switch: net.switch as SwitchOptions }),
    });
  }

  /** A Host whose every call is an output compared with the recording. */
  #fakeHost(): Host {
    const host: Record<string, (...args: unknown[]) => unknown> = {};
    for (const name of Object.keys(HOST_CALLS)) host[name] = (...args: unknown[]) => this.#call(name as keyof Host, args);
    return host as unknown as Host;
  }

  run(): ReplayReport {
    let divergence: Divergence | undefined;
    try {
      for (let i = 0; i < this.#records.length; i++) {
        if (this.#complete) break;
        const r = this.#records[i]!;
        if (this.#skippable(i)) continue;
        const entry = this.#entries[i];
        if (entry?.k === 'call' || (r.kind === 'packet' && r.packet.direction === 'outbound')) {
          // An output nothing made: the replay made fewer outputs than the recording holds.
          this.#cursor = i;
          throw new Diverged(this.#missing(i));
        }
        this.#entryAt = i;
        this.#cursor = i + 1;
        this.#run(i, r, entry);
        this.#entriesRun++;
        if (this.#divergence !== undefined) throw new Diverged(this.#divergence);
        i = this.#cursor - 1;
      }
    } catch (e) {
      if (e instanceof Diverged) divergence = e.divergence;
      else if (e instanceof Unusable) return { ...unusable(e.message, this.#started, this.#warnings), ...this.#counts() };
      else divergence = { frame: this.#entryAt + 1, entryFrame: this.#entryAt + 1, timeS: this.#timeS(), kind: 'exception', got: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
    }
    // A bug of ours the stack caught (and counted) happened when recording too, or it diverged above.
    const internal = this.#network.stack.lastError;
    if (internal !== undefined) this.#warnings.push(`the network caught an internal error (counted as stack.internal-error): ${internal instanceof Error ? internal.message : JSON.stringify(internal)}`);
    return {
      schema: REPLAY_REPORT_SCHEMA,
      result: divergence === undefined ? 'match' : 'divergence',
      exitCode: divergence === undefined ? 0 : 1,
      ...(this.#file !== undefined && { file: this.#file }),
      recordedBy: this.#net.by,
      network: this.#net.name,
      ...this.#counts(),
      differences: divergence === undefined ? 0 : 1,
      complete: this.#complete,
      seconds: (now() - this.#started) / 1000,
      warnings: this.#warnings,
      ...(divergence !== undefined && { divergence }),
    };
  }

  #counts(): { frames: number; entries: number; hostCalls: number } {
    return { frames: this.#frames, entries: this.#entriesRun, hostCalls: this.#calls };
  }

  #timeS(): number {
    return (this.#us - this.#net.startUs) / 1e6;
  }

  /** Records the replay neither runs nor compares: the network entry, the host side's packets, foreign blocks. */
  #skippable(i: number): boolean {
    const r = this.#records[i]!;
    if (r.kind === 'custom') {
      const e = this.#entries[i];
      return e === undefined || e.k === 'network';
    }
    return r.packet.interfaceId === HOST_INTERFACE;
  }

  #run(i: number, r: CaptureRecord, e: Entry | undefined): void {
    if (r.kind === 'packet') {
      const port = this.#ports.get(r.packet.interfaceId);
      if (port === undefined) throw new Unusable(`frame ${i + 1}: a guest frame on interface ${r.packet.interfaceId}, which no port entry opened`);
      if (r.packet.direction !== 'inbound') throw new Unusable(`frame ${i + 1}: a guest frame without a direction (epb_flags)`);
      const tsUs = r.packet.seconds * 1e6 + Math.floor(r.packet.nanos / 1000);
      this.#us = tsUs - this.#net.wallStartUs + this.#net.startUs;
      this.#frames++;
      port.receive(r.packet.data);
      return;
    }
    if (e === undefined || e.k === 'network' || e.k === 'call') return;
    this.#us = e.t;
    switch (e.k) {
      case 'port': {
        if (this.#ports.has(e.port)) throw new Unusable(`frame ${i + 1}: interface ${e.port} attached twice`);
        const iface = e.port;
        this.#ports.set(iface, this.#network.attach({ send: (frame) => { this.#frameOut(iface, frame); } }));
        return;
      }
      case 'detach':
        this.#ports.get(e.port)?.detach();
        return;
      case 'batch':
        if (e.on) this.#network.beginBatch();
        else this.#network.endBatch();
        return;
      case 'advance':
        this.#network.advance();
        return;
      case 'event':
        this.#event(i, e.n, e.a);
        return;
      case 'api':
        this.#api(i, e.n, e.a);
        return;
      case 'end':
        this.#complete = true;
        return;
    }
  }

  #event(i: number, n: keyof HostEvents, a: readonly unknown[]): void {
    if (!Object.hasOwn(HOST_EVENTS, n)) throw new Unusable(`frame ${i + 1}: unknown host event '${n}'`);
    const stack = this.#network.stack as unknown as Record<string, (...args: unknown[]) => void>;
    stack[n]!.apply(this.#network.stack, a as unknown[]);
  }

  #api(i: number, n: string, a: readonly unknown[]): void {
    switch (n) {
      case 'openForward': {
        const rule = a[0] as ForwardRule;
        this.#network.openForward(rule, new ForwardRefusals(rule, undefined));
        return;
      }
      case 'closeForward':
        this.#network.closeForward(a[0] as number);
        return;
      case 'setDnsUpstreams':
        this.#network.stack.setDnsUpstreams(a[0] as Endpoint[]);
        return;
      case 'reload':
        applyNetworkReload(this.#network, a[0] as NetworkReload);
        return;
      case 'close':
        this.#network.close();
        return;
      default:
        throw new Unusable(`frame ${i + 1}: unknown API entry '${n}'`);
    }
  }

  /** The next recorded output, or undefined when the entry's outputs are exhausted (the next record is an entry). */
  #nextOutput(): Output | undefined {
    while (this.#cursor < this.#records.length && this.#skippable(this.#cursor)) this.#cursor++;
    const i = this.#cursor;
    const r = this.#records[i];
    if (r === undefined) return undefined;
    if (r.kind === 'packet') return r.packet.direction === 'outbound' ? { kind: 'frame', iface: r.packet.interfaceId, data: r.packet.data, frame: i + 1 } : undefined;
    const e = this.#entries[i];
    return e?.k === 'call' ? { kind: 'call', entry: e, frame: i + 1 } : undefined;
  }

  /**
   * Outputs never throw: the stack catches what its callbacks throw (counted as an internal
   * error), so the first divergence is kept here and the replay stops after the entry.
   */
  #diverge(d: Divergence): void {
    this.#divergence ??= d;
  }

  #frameOut(iface: number, frame: Uint8Array): void {
    if (this.#divergence !== undefined) return;
    const out = this.#nextOutput();
    if (out?.kind === 'frame' && out.iface === iface && sameBytes(out.data, frame)) {
      this.#cursor++;
      this.#frames++;
      return;
    }
    const got = summarizeFrame(frame);
    const base = { entryFrame: this.#entryAt + 1, timeS: this.#timeS() };
    if (out === undefined) return this.#diverge({ ...base, frame: this.#cursor + 1, kind: 'unexpected', got: `to guest ${this.#portName(iface)}: ${got}` });
    if (out.kind === 'call') return this.#diverge({ ...base, frame: out.frame, kind: 'unexpected', expected: this.#callText(out.entry), got: `to guest ${this.#portName(iface)}: ${got}` });
    {
      const fields: FieldDifference[] = fieldDiff(frameFields(out.data), frameFields(frame));
      if (out.iface !== iface) fields.unshift({ field: 'frame.interface_id', expected: String(out.iface), got: String(iface) });
      const hex = hexDiff(out.data, frame);
      return this.#diverge({ ...base, frame: out.frame, kind: 'frame', expected: summarizeFrame(out.data), got, fields, ...(hex !== undefined && { hex }) });
    }
  }

  #call(n: keyof Host, a: readonly unknown[]): unknown {
    if (this.#divergence !== undefined) return n === 'tcpWrite' ? 0 : undefined;
    const out = this.#nextOutput();
    if (out?.kind === 'call' && out.entry.n === n && sameArgs(out.entry.a, a)) {
      this.#cursor++;
      this.#calls++;
      return out.entry.r ?? (n === 'tcpWrite' ? 0 : undefined);
    }
    const base = { entryFrame: this.#entryAt + 1, timeS: this.#timeS() };
    const got = summarizeCall(n, a);
    const none = n === 'tcpWrite' ? 0 : undefined;
    if (out === undefined) {
      this.#diverge({ ...base, frame: this.#cursor + 1, kind: 'unexpected', got: `host ${got}` });
      return none;
    }
    if (out.kind === 'frame') {
      this.#diverge({ ...base, frame: out.frame, kind: 'unexpected', expected: summarizeFrame(out.data), got: `host ${got}` });
      return none;
    }
    const e = out.entry;
    {
      const fields: FieldDifference[] = [];
      if (e.n !== n) fields.push({ field: 'call', expected: e.n, got: n });
      for (let k = 0; k < Math.max(e.a.length, a.length); k++) {
        if (!sameArgs([e.a[k]], [a[k]])) fields.push({ field: `arg${k}`, expected: argText(e.a[k]), got: argText(a[k]) });
      }
      const eb = e.a.find((x) => x instanceof Uint8Array);
      const gb = a.find((x) => x instanceof Uint8Array);
      const hex = eb instanceof Uint8Array && gb instanceof Uint8Array ? hexDiff(eb, gb) : undefined;
      this.#diverge({ ...base, frame: out.frame, kind: 'call', expected: this.#callText(e), got: `host ${got}`, fields, ...(hex !== undefined && { hex }) });
      return none;
    }
  }

  #missing(i: number): Divergence {
    const r = this.#records[i]!;
    const base = { frame: i + 1, entryFrame: this.#entryAt + 1, timeS: this.#timeS(), kind: 'missing' as const, got: '(nothing)' };
    if (r.kind === 'packet') return { ...base, expected: `to guest ${this.#portName(r.packet.interfaceId)}: ${summarizeFrame(r.packet.data)}` };
    const e = this.#entries[i] as CallEntry;
    return { ...base, expected: this.#callText(e) };
  }

  #callText(e: CallEntry): string {
    return `host ${summarizeCall(e.n, e.a, e.r)}`;
  }

  #portName(iface: number): string {
    return `interface ${iface}`;
  }
}

/** A record the replay cannot run: the file is corrupt (exit 2). */
class Unusable extends Error {}

const argText = (v: unknown): string => (v instanceof Uint8Array ? `${v.length} bytes` : v === undefined ? '(absent)' : JSON.stringify(v));
