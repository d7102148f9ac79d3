/**
 * Running a `.pkt` script (`script-parse.ts`) on a fresh sans-IO network: a clock the script
 * sets, ChaCha20 randomness from the script's `seed`, a port per guest, and a fake Host whose
 * every call is an output the script must expect (`tcpWrite` returns what its `expect host
 * tcpWrite … -> N` line says, 0 unless written). Host events are the script's `host` lines.
 *
 * The steps run in order, each at its time. Before each step the clock moves to the step's
 * time, running every timer that falls due on the way (each at its deadline), so a
 * retransmission or a delayed ACK is an output like any other. What the network makes goes
 * into a queue: an expected frame (`>`) takes the first queued frame to its guest, an expected call
 * (`expect host`) the first queued call — frames keep their order among frames and calls
 * among calls; how the two interleave is not compared. An input (`<`, `host`, `forward`) and
 * the end of the script require the queue to be empty: an output nobody expected is a
 * divergence. An expected output made more than `tolerance` (default 0) before its line's
 * time diverges on `frame.time_relative`. The first divergence ends the run, reported like a recording's (the
 * line numbers in place of frame numbers).
 */
import { ForwardRefusals } from '../nat/forward-refusals.js';
import { HOST_CALLS } from '../net/observe.js';
import type { Endpoint } from '../net/addr.js';
import type { Host } from '../net/seams.js';
import { Network, type NetworkPort } from '../network/network.js';
import { resolveStackConfig, type StackConfig } from '../stack/config.js';
import { bytesEqual } from '../util/bytes.js';
import { ConfigError } from '../util/config-error.js';
import { chachaRandom, CHACHA_SEED_BYTES } from '../util/chacha.js';
import { hexDiff, summarizeCall, summarizeFrame } from './decode.js';
import { REPLAY_REPORT_SCHEMA, type Divergence, type FieldDifference, type ReplayReport } from './replay.js';
import { buildFrame, matchFrame, relativeNote, type FrameContext } from './script-frame.js';
import { parseScript, type SeamArg, type SeamStep, type Script, type Step } from './script-parse.js';

/**
 * Timer runs in one script before it is called a runaway (a timer that re-arms at once
 * forever, or a script whose hours of virtual time run timers without end): the run is
 * bounded in time whatever the script says.
 */
export const MAX_ADVANCES = 200_000;

type Output = { readonly kind: 'frame'; readonly guest: number; readonly bytes: Uint8Array; readonly us: number } | { readonly kind: 'call'; readonly name: string; readonly args: readonly unknown[]; readonly us: number };

const now = (): number => performance.now();

function unusable(error: string, started: number, file: string | undefined, errors?: readonly { line: number; message: string }[]): ReplayReport {
  return {
    schema: REPLAY_REPORT_SCHEMA, input: 'script', result: 'unusable', exitCode: 2, ...(file !== undefined && { file }),
    frames: 0, entries: 0, hostCalls: 0, differences: 0, complete: false, seconds: (now() - started) / 1000, warnings: [], error, ...(errors !== undefined && { errors }),
  };
}

/** Parses and runs a script's text; never throws. */
export function replayScript(text: string, file?: string): ReplayReport {
  const started = now();
  const parsed = parseScript(text);
  if ('errors' in parsed) {
    const where = file ?? 'script';
    const lines = parsed.errors.map((e) => `${where}:${e.line}: ${e.message}`);
    if (parsed.more > 0) lines.push(`… and ${parsed.more} more`);
    return unusable(lines.join('\n'), started, file, parsed.errors);
  }
  return runScript(parsed.script, file, started);
}

/** Runs a parsed script; never throws. */
export function runScript(script: Script, file?: string, started = now()): ReplayReport {
  let config: StackConfig;
  try {
    config = resolveStackConfig(script.options);
  } catch (e) {
    // The line of the option refused (ConfigError names it as a command-line option: `disable-host-loopback` for disableHostLoopback).
    const named = e instanceof ConfigError ? e.option.replace(/-/g, '').toLowerCase() : undefined;
    const lines = Object.entries(script.optionLines);
    const line = lines.find(([k]) => k.replace(/-/g, '').toLowerCase() === named)?.[1] ?? lines[0]?.[1] ?? 0;
    const message = `option: ${e instanceof Error ? e.message : String(e)}`;
    return unusable(`${file ?? 'script'}:${line}: ${message}`, started, file, [{ line, message }]);
  }
  return new ScriptRun(script, config, file, started).run();
}

/** A divergence found while running; never escapes `run`. */
class Diverged extends Error {
  readonly divergence: Divergence;
  constructor(d: Divergence) {
    super('diverged');
    this.divergence = d;
  }
}

const argText = (v: unknown): string =>
  v instanceof Uint8Array ? `${v.length} bytes "${Array.from(v.subarray(0, 40), (b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')}${v.length > 40 ? '…' : ''}"`
    : v === undefined ? '(absent)' : JSON.stringify(v);

const sameEndpoint = (a: unknown, b: unknown): boolean =>
  typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && (a as Endpoint).addr === (b as Endpoint).addr && (a as Endpoint).port === (b as Endpoint).port;

function sameValue(expected: unknown, got: unknown): boolean {
  if (expected instanceof Uint8Array) return got instanceof Uint8Array && bytesEqual(expected, got);
  if (typeof expected === 'object' && expected !== null) return sameEndpoint(expected, got);
  return expected === got;
}

class ScriptRun {
  readonly #script: Script;
  readonly #file: string | undefined;
  readonly #started: number;
  readonly #network: Network;
  /** Guest N's port at index N-1. */
  readonly #ports: NetworkPort[];
  readonly #ctx: FrameContext;
  /** Clock value, µs since the script's start. */
  #us = 0;
  readonly #queue: Output[] = [];
  /** Flow name → the id the network drew for it (bound when the call that opens it matches). */
  readonly #flows = new Map<string, number>();
  /** The `-> N` of each `expect host tcpWrite` line, in script order: the k-th call returns the k-th. */
  readonly #writeResults: number[];
  #writes = 0;
  /** Timer runs so far (MAX_ADVANCES). */
  #advances = 0;
  /** The line of the last input (what the outputs being compared came after). */
  #inputLine = 0;
  #frames = 0;
  #entries = 0;
  #calls = 0;

  constructor(script: Script, config: StackConfig, file: string | undefined, started: number) {
    this.#script = script;
    this.#file = file;
    this.#started = started;
    this.#writeResults = script.steps.flatMap((s) => (s.body.k === 'call' && s.body.call.name === 'tcpWrite' ? [s.body.result ?? 0] : []));
    const seed = new Uint8Array(CHACHA_SEED_BYTES);
    new DataView(seed.buffer).setUint32(0, script.seed, true);
    this.#network = new Network('script', config, { clock: { now: () => this.#us / 1000 }, random: chachaRandom(seed), host: this.#fakeHost(), dnsUpstreams: script.dnsUpstreams });
    this.#ports = script.guestMacs.map((_, i) => this.#network.attach({ send: (frame) => this.#queue.push({ kind: 'frame', guest: i + 1, bytes: frame, us: this.#us }) }));
    this.#ctx = { guestMac: script.guestMacs[0]!, gatewayMac: config.gatewayMac, gatewayIp: config.host, isn: new Map() };
  }

  /** A Host whose every call is queued as an output. */
  #fakeHost(): Host {
    const host: Record<string, (...args: unknown[]) => unknown> = {};
    for (const name of Object.keys(HOST_CALLS)) {
      host[name] = (...args: unknown[]) => {
        this.#queue.push({ kind: 'call', name, args: args.map((a) => (a instanceof Uint8Array ? a.slice() : a)), us: this.#us });
        return name === 'tcpWrite' ? (this.#writeResults[this.#writes++] ?? 0) : undefined;
      };
    }
    return host as unknown as Host;
  }

  run(): ReplayReport {
    let divergence: Divergence | undefined;
    const steps = this.#script.steps;
    let at: Step | undefined;
    try {
      for (const step of steps) {
        at = step;
        this.#advanceTo(step);
        this.#step(step);
      }
      const last = steps[steps.length - 1]!;
      this.#nothingQueued(last, 'after the last line');
    } catch (e) {
      if (e instanceof Diverged) divergence = e.divergence;
      else {
        const line = at?.line ?? 0;
        divergence = { frame: line, entryFrame: this.#inputLine, line, timeS: this.#us / 1e6, kind: 'exception', got: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
      }
    }
    const warnings: string[] = [];
    const internal = this.#network.stack.lastError;
    if (internal !== undefined) warnings.push(`the network caught an internal error (counted as stack.internal-error): ${internal instanceof Error ? internal.message : JSON.stringify(internal)}`);
    return {
      schema: REPLAY_REPORT_SCHEMA,
      input: 'script',
      result: divergence === undefined ? 'match' : 'divergence',
      exitCode: divergence === undefined ? 0 : 1,
      ...(this.#file !== undefined && { file: this.#file }),
      network: this.#network.name,
      frames: this.#frames,
      entries: this.#entries,
      hostCalls: this.#calls,
      differences: divergence === undefined ? 0 : 1,
      complete: divergence === undefined,
      seconds: (now() - this.#started) / 1000,
      warnings,
      ...(divergence !== undefined && { divergence }),
    };
  }

  /** Moves the clock to the step's time, running each timer due on the way at its deadline. */
  #advanceTo(step: Step): void {
    for (;;) {
      const deadlineMs = this.#network.nextDeadline();
      if (deadlineMs === undefined || deadlineMs * 1000 > step.us) break;
      if (++this.#advances > MAX_ADVANCES) throw new Error(`timers ran ${MAX_ADVANCES} times by t=${(step.us / 1e6).toFixed(6)} s: a runaway`);
      this.#us = Math.max(this.#us, Math.ceil(deadlineMs * 1000));
      this.#network.advance();
    }
    this.#us = step.us;
  }

  #step(step: Step): void {
    const b = step.body;
    switch (b.k) {
      case 'in': {
        this.#nothingQueued(step, `before line ${step.line}`);
        this.#inputLine = step.line;
        const frame = buildFrame(b.frame, { ...this.#ctx, guestMac: this.#script.guestMacs[b.guest - 1]! });
        this.#frames++;
        this.#entries++;
        this.#ports[b.guest - 1]!.receive(frame);
        return;
      }
      case 'event': {
        this.#nothingQueued(step, `before line ${step.line}`);
        this.#inputLine = step.line;
        this.#entries++;
        const args = b.event.args.map((a) => this.#eventArg(a));
        while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
        const stack = this.#network.stack as unknown as Record<string, (...args: unknown[]) => void>;
        stack[b.event.name]!.apply(this.#network.stack, args);
        return;
      }
      case 'tick':
        this.#entries++;
        return;
      case 'forward':
        this.#nothingQueued(step, `before line ${step.line}`);
        this.#inputLine = step.line;
        this.#entries++;
        this.#network.openForward(b.rule, new ForwardRefusals(b.rule, undefined));
        return;
      case 'out':
        return this.#expectFrame(step, b.guest, b.frame);
      case 'call':
        return this.#expectCall(step, b.call);
    }
  }

  #eventArg(a: SeamArg): unknown {
    if (a.k === 'value') return a.v;
    if (a.k === 'any') return undefined;
    const id = this.#flows.get(a.name);
    // The parser checks a line binding the name comes first, and that line matched (the run stops at the first divergence).
    if (id === undefined) throw new Error(`flow ${a.name === '' ? '(the current one)' : `@${a.name}`} is not bound`);
    return id;
  }

  #base(step: Step): Pick<Divergence, 'frame' | 'entryFrame' | 'line' | 'timeS'> {
    return { frame: step.line, entryFrame: this.#inputLine, line: step.line, timeS: step.us / 1e6 };
  }

  #describe(o: Output): string {
    const to = o.kind === 'frame' && this.#ports.length > 1 ? `to guest ${o.guest}` : 'to guest';
    return o.kind === 'frame' ? `${to}: ${summarizeFrame(o.bytes)}${relativeNote(o.bytes, this.#ctx)}` : `host ${summarizeCall(o.name, o.args)}`;
  }

  /** An input or the end: every output so far must have been expected. */
  #nothingQueued(step: Step, where: string): void {
    const o = this.#queue[0];
    if (o === undefined) return;
    throw new Diverged({ ...this.#base(step), kind: 'unexpected', expected: `(nothing more ${where})`, got: this.#describe(o), timeS: o.us / 1e6 });
  }

  /** The first queued output of the kind (a frame: to that guest). */
  #take(kind: Output['kind'], guest?: number): Output | undefined {
    const i = this.#queue.findIndex((o) => o.kind === kind && (o.kind !== 'frame' || o.guest === guest));
    return i < 0 ? undefined : this.#queue.splice(i, 1)[0];
  }

  #late(step: Step, o: Output, fields: FieldDifference[]): void {
    if (step.us - o.us > this.#script.toleranceUs) fields.push({ field: 'frame.time_relative', expected: (step.us / 1e6).toFixed(6), got: (o.us / 1e6).toFixed(6) });
  }

  #expectFrame(step: Step, guest: number, spec: Extract<Step['body'], { k: 'out' }>['frame']): void {
    const o = this.#take('frame', guest);
    if (o?.kind !== 'frame') {
      const other = this.#queue[0];
      throw new Diverged({ ...this.#base(step), kind: 'missing', expected: step.text, got: other === undefined ? '(nothing)' : `(no frame; queued: ${this.#describe(other)})` });
    }
    const note = relativeNote(o.bytes, this.#ctx); // before the match binds an ISN: a SYN's seq is absolute
    const fields = matchFrame(spec, o.bytes, this.#ctx);
    this.#late(step, o, fields);
    if (fields.length > 0) {
      const hex = spec.proto === 'raw' ? hexDiff(spec.bytes, o.bytes) : undefined;
      throw new Diverged({ ...this.#base(step), kind: 'frame', expected: step.text, got: summarizeFrame(o.bytes) + note, fields, ...(hex !== undefined && { hex }) });
    }
    this.#frames++;
  }

  #expectCall(step: Step, call: SeamStep): void {
    const o = this.#take('call');
    if (o?.kind !== 'call') {
      const other = this.#queue[0];
      throw new Diverged({ ...this.#base(step), kind: 'missing', expected: step.text, got: other === undefined ? '(nothing)' : `(no host call; queued: ${this.#describe(other)})` });
    }
    const fields: FieldDifference[] = [];
    const binds: [string, number][] = [];
    if (o.name !== call.name) fields.push({ field: 'call', expected: call.name, got: o.name });
    else {
      call.args.forEach((a, i) => {
        const got = o.args[i];
        if (a.k === 'any') return;
        if (a.k === 'value') {
          if (!sameValue(a.v, got)) fields.push({ field: `arg${i}`, expected: argText(a.v), got: argText(got) });
          return;
        }
        if (a.bind) {
          if (typeof got === 'number') binds.push([a.name, got]);
          else fields.push({ field: `arg${i}`, expected: 'a flow id', got: argText(got) });
          return;
        }
        const id = this.#flows.get(a.name);
        if (id !== got) fields.push({ field: `arg${i}`, expected: `id ${id ?? '?'} (${a.name === '' ? 'the current flow' : `@${a.name}`})`, got: argText(got) });
      });
    }
    this.#late(step, o, fields);
    if (fields.length > 0) {
      const eb = call.args.find((a) => a.k === 'value' && a.v instanceof Uint8Array);
      const gb = o.args.find((x) => x instanceof Uint8Array);
      const hex = eb?.k === 'value' && eb.v instanceof Uint8Array && gb instanceof Uint8Array ? hexDiff(eb.v, gb) : undefined;
      throw new Diverged({ ...this.#base(step), kind: 'call', expected: step.text, got: `host ${summarizeCall(o.name, o.args)}`, fields, ...(hex !== undefined && { hex }) });
    }
    for (const [name, id] of binds) this.#flows.set(name, id);
    this.#calls++;
  }
}
