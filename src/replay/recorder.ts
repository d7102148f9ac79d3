/**
 * The recorder: stands between a network and its shell (`src/daemon/live-network.ts`) and
 * writes, as it happens, everything a replay needs to run the network again and check every
 * output (this folder's README.md has the file layout and the reasoning).
 *
 * - Time: the network reads `recorder.clock`, which holds the value of the current entry:
 *   `enter()` reads the real clock once, rounded to a microsecond, and the network sees
 *   `us / 1000` until the next entry. So every read within an entry gives the same value, and
 *   a replay that sets the same `us` reproduces each one exactly (same integer, same division).
 * - Randomness: `recorder.random` is ChaCha20 from a fresh 32-byte seed that the first entry
 *   stores (`src/util/chacha.ts`): as unpredictable to a guest as the system's, yet repeatable.
 * - Entries, in the order they run: a guest frame in (an inbound EPB on the port's interface),
 *   a host event, a timer advance, a batch's start and end, a port attached or detached, a
 *   call of the network's API (forwards, DNS upstreams, close).
 * - Outputs, right after the entry that caused them, in the order they happened: frames to a
 *   guest (outbound EPBs on its port's interface) and Host calls with what they returned
 *   (`tcpWrite`'s buffered count), each call and event also drawn as packets on the host-side
 *   interface (`host-side.ts`) for people; the replay reads only the entries.
 *
 * Blocks go to a `BlockSink` (a file: `PcapngBlockFile`). A block the sink drops (the disk is
 * behind) ends the recording there, counted in `dropped`: a recording with a hole would not
 * replay, and a prefix does — up to where it stops, which the replay reports (no `end` entry).
 */
import { join } from 'node:path';
import type { DnsStaticRecord } from '../dns/records.js';
import type { FlowLimits } from '../nat/flow-table.js';
import type { TcpEngineLimits } from '../nat/tcp-flow.js';
import type { Endpoint } from '../net/addr.js';
import type { HostObserver, HostResultObserver } from '../net/observe.js';
import type { Host, HostEvents } from '../net/seams.js';
import type { PortSink } from '../network/network.js';
import { customBlockLength, epbLength, idbLength, shbLength, writeCustomBlock, writeEpb, writeIdb, writeShb, type Epb } from '../pcap/pcapng.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../pcap/writer.js';
import type { StackConfig } from '../stack/config.js';
import type { SwitchOptions } from '../switch/learning-switch.js';
import { chachaRandom, freshSeed } from '../util/chacha.js';
import type { Clock, Random } from '../util/clock.js';
import { encodeEntry, RECORDING_PEN, RECORDING_VERSION, type Entry } from './format.js';
import { HostSide } from './host-side.js';

/** Where a recording's blocks go, whole blocks at a time. */
export interface BlockSink {
  /** Room for a block of `length` bytes, filled by `write`; false when dropped. */
  append(length: number, write: (into: Uint8Array, at: number) => void): boolean;
}

/** `tslirp-<ISO time with '-' for ':'>-<label>.pcapng` inside `dir` (named like `--pcap`'s files). */
export function recordingPath(dir: string, startedAt: Date, label: string): string {
  return join(dir, `tslirp-${startedAt.toISOString().replace(/:/g, '-')}-${label}.pcapng`);
}

/** Interface 0 is the first guest port's, 1 the host side's, 2… further ports'. */
export const HOST_INTERFACE = 1;

export interface RecorderOptions {
  readonly sink: BlockSink;
  /** The network's name. */
  readonly name: string;
  readonly config: StackConfig;
  readonly flowLimits?: FlowLimits | undefined;
  readonly tcpLimits?: Partial<TcpEngineLimits> | undefined;
  readonly switch?: SwitchOptions | undefined;
  readonly dnsUpstreams: readonly Endpoint[];
  readonly dnsRecords: readonly DnsStaticRecord[];
  /** The real (monotonic) clock. */
  readonly clock: Clock;
  /** Wall-clock microseconds since the epoch, for the EPB timestamps. */
  readonly wallNowUs: () => number;
  /** The randomness seed (default: fresh from the platform's cryptographic generator). */
  readonly seed?: Uint8Array;
  /** The recorder's name and version (shb_userappl), e.g. `tslirp 0.1.0`. */
  readonly by: string;
}

/** How a port is described in the file: its session. */
export interface PortLabel {
  readonly name: string;
  readonly description: string;
}

export class NetworkRecorder {
  /** The clock the network reads: the current entry's time. */
  readonly clock: Clock;
  /** The network's randomness. */
  readonly random: Random;
  /** Pass to observeHost / observeEvents (with `onResult`). */
  readonly observer: HostObserver;
  readonly onResult: HostResultObserver;
  /** Blocks written, and whether (and why) the recording stopped early. */
  blocks = 0;
  dropped = 0;
  readonly #sink: BlockSink;
  readonly #real: Clock;
  readonly #startUs: number;
  readonly #wallStartUs: number;
  readonly #hostSide = new HostSide();
  /** Guest port id → its interface. */
  readonly #ports = new Map<number, number>();
  #nextInterface = 2;
  #firstPortTaken = false;
  #us: number;
  #stopped = false;
  #pendingCall: { name: string; args: readonly unknown[] } | undefined;

  constructor(o: RecorderOptions) {
    this.#sink = o.sink;
    this.#real = o.clock;
    this.#us = this.#startUs = Math.round(o.clock.now() * 1000);
    this.#wallStartUs = Math.round(o.wallNowUs());
    const seed = o.seed ?? freshSeed();
    this.random = chachaRandom(seed);
    this.clock = { now: () => this.#us / 1000 };
    this.observer = (kind, name, args) => {
      if (kind === 'event') this.#event(name as keyof HostEvents, args);
      else this.#pendingCall = { name, args };
    };
    this.onResult = (name, result) => {
      const c = this.#pendingCall;
      this.#pendingCall = undefined;
      if (c?.name === name) this.#call(name as keyof Host, c.args, result);
    };
    const shb = { userAppl: o.by };
    this.#raw(shbLength(shb), (b, at) => writeShb(shb, b, at));
    this.#idb(LINKTYPE_ETHERNET, 'guest', 'the first guest port of the network (see its port entry)');
    this.#idb(LINKTYPE_RAW, 'host', 'host sockets as TCP/UDP conversations (local endpoint ↔ peer), synthesized from the host seam');
    this.#entry({
      k: 'network',
      v: RECORDING_VERSION,
      name: o.name,
      config: { ...o.config } as unknown as Record<string, unknown>,
      ...(o.flowLimits !== undefined && { flowLimits: o.flowLimits }),
      ...(o.tcpLimits !== undefined && { tcpLimits: o.tcpLimits }),
      ...(o.switch !== undefined && { switch: o.switch }),
      dnsUpstreams: o.dnsUpstreams,
      dnsRecords: o.dnsRecords,
      seed,
      startUs: this.#startUs,
      wallStartUs: this.#wallStartUs,
      by: o.by,
    });
  }

  /** Whether records are still written (false after `end` or a dropped block). */
  get recording(): boolean {
    return !this.#stopped;
  }

  /** The recording clock for the next entry: read once, never backwards. */
  #enter(): number {
    const us = Math.round(this.#real.now() * 1000);
    if (us > this.#us) this.#us = us;
    return this.#us;
  }

  #tsUs(): number {
    return this.#wallStartUs + (this.#us - this.#startUs);
  }

  /** A guest port attached; returns the sink to give the network in place of `sink`. */
  attach(portId: number, label: PortLabel | undefined): void {
    let iface: number;
    if (!this.#firstPortTaken) {
      this.#firstPortTaken = true;
      iface = 0;
    } else {
      iface = this.#nextInterface++;
      this.#idb(LINKTYPE_ETHERNET, label?.name ?? `port ${portId}`, label?.description ?? 'a guest port of the network');
    }
    this.#ports.set(portId, iface);
    this.#entry({ k: 'port', t: this.#enter(), port: iface, ...(label !== undefined && { name: label.name, description: label.description }) });
  }

  /** Wraps a port's sink so that its frames are recorded as outputs. */
  sink(portId: () => number, sink: PortSink): PortSink {
    return {
      send: (frame) => {
        this.frameOut(portId(), frame);
        sink.send(frame);
      },
      ...(sink.allocFrame !== undefined && { allocFrame: sink.allocFrame.bind(sink) }),
    };
  }

  detach(portId: number): void {
    const iface = this.#ports.get(portId);
    if (iface === undefined) return;
    this.#ports.delete(portId);
    this.#entry({ k: 'detach', t: this.#enter(), port: iface });
  }

  /** An entry: a frame from the guest on `portId`. */
  frameIn(portId: number, frame: Uint8Array): void {
    const iface = this.#ports.get(portId);
    if (iface === undefined || this.#stopped) return;
    this.#enter();
    this.#epb({ interfaceId: iface, timeUs: this.#tsUs(), data: frame, direction: 'inbound' });
  }

  /** An output: a frame to the guest on `portId`. */
  frameOut(portId: number, frame: Uint8Array): void {
    const iface = this.#ports.get(portId);
    if (iface === undefined || this.#stopped) return;
    this.#epb({ interfaceId: iface, timeUs: this.#tsUs(), data: frame, direction: 'outbound' });
  }

  batch(on: boolean): void {
    this.#entry({ k: 'batch', t: this.#enter(), on });
  }

  advance(): void {
    this.#entry({ k: 'advance', t: this.#enter() });
  }

  /** A call of the network's API by its owner (before it runs). */
  api(n: 'openForward' | 'closeForward' | 'setDnsUpstreams' | 'reload' | 'close', a: readonly unknown[]): void {
    this.#entry({ k: 'api', t: this.#enter(), n, a });
  }

  /** Ends the recording with an `end` entry; nothing more is written. */
  end(reason: string): void {
    if (this.#stopped) return;
    this.#entry({ k: 'end', t: this.#enter(), reason });
    this.#stopped = true;
  }

  #event(n: keyof HostEvents, a: readonly unknown[]): void {
    if (this.#stopped) return;
    this.#entry({ k: 'event', t: this.#enter(), n, a });
    for (const p of this.#hostSide.event(n, a)) this.#epb({ interfaceId: HOST_INTERFACE, timeUs: this.#tsUs(), data: p.data, comment: p.comment });
  }

  #call(n: keyof Host, a: readonly unknown[], result: unknown): void {
    if (this.#stopped) return;
    this.#entry({ k: 'call', n, a, ...(typeof result === 'number' && { r: result }) });
    for (const p of this.#hostSide.call(n, a)) this.#epb({ interfaceId: HOST_INTERFACE, timeUs: this.#tsUs(), data: p.data, comment: p.comment });
  }

  #idb(linkType: number, name: string, description: string): void {
    const idb = { linkType, snaplen: 0, name, description };
    this.#raw(idbLength(idb), (b, at) => writeIdb(idb, b, at));
  }

  #epb(e: Epb): void {
    this.#raw(epbLength(e), (b, at) => writeEpb(e, b, at));
  }

  #entry(e: Entry): void {
    if (this.#stopped) return;
    const cb = { pen: RECORDING_PEN, copy: false, parts: encodeEntry(e) };
    this.#raw(customBlockLength(cb), (b, at) => writeCustomBlock(cb, b, at));
  }

  #raw(length: number, write: (into: Uint8Array, at: number) => void): void {
    if (this.#stopped) return;
    if (this.#sink.append(length, write)) this.blocks++;
    else {
      this.dropped++;
      this.#stopped = true;
    }
  }
}
