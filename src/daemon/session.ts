/**
 * One guest session: a link, its own Stack (its own copy of the configuration, its own
 * isolated network), its own timer, an optional capture file, and the logs that say what
 * happened. A session starts when a link is accepted and ends when the link closes.
 *
 * Logs: one line at connect (session id, link kind, peer) and one at disconnect (duration,
 * frames and bytes each way, drop counters, DHCP leases, capture file).
 */
import type { Logger } from 'pino';
import type { GuestLink, LinkHandler } from '../link/link.js';
import type { PcapngFileWriter } from '../pcap/pcapng-writer.js';
import { PcapFileWriter, type CaptureSink } from '../pcap/writer.js';
import { capturePath, tapHandler, tapLink } from '../pcap/tap.js';
import type { Endpoint } from '../net/addr.js';
import type { StackConfig } from '../stack/config.js';
import { formatIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import type { Clock, Random } from '../util/clock.js';
import { Scheduler } from './scheduler.js';

/** A DHCP lease as the stack reports it (structurally src/dhcp's lease). */
export interface LeaseInfo {
  readonly mac: string;
  readonly ip: Ipv4Addr;
  readonly hostname: string | undefined;
  readonly state: string;
  readonly expiresAtMs: number;
}

/** What a session needs of a stack (src/stack/stack.ts's Stack satisfies it). */
export interface SessionStack {
  receiveFrame(frame: Uint8Array): void;
  advance(): void;
  nextDeadline(): number | undefined;
  readonly counters: { total(prefix?: string): number; snapshot(): Record<string, number> };
  leases(): readonly LeaseInfo[];
  /** The last internal error the stack caught, if it keeps one. */
  readonly lastError?: unknown;
  /** TCP events that are not drops (flows, retransmissions, resets), for the summary. */
  tcpStats?(): Record<string, number>;
  /** Called once when the session ends: release host sockets and other resources. */
  dispose?(): void;
  /** Replaces the DNS forwarder's upstreams (resolv.conf changed). */
  setDnsUpstreams?(upstreams: readonly Endpoint[]): void;
  /** Stack.beginBatch/endBatch: frames of one I/O event flush TCP once. */
  beginBatch?(): void;
  endBatch?(): void;
}

/** What the session gives the stack. */
export interface SessionStackDeps {
  readonly clock: Clock;
  readonly random: Random;
  emit(frame: Uint8Array): void;
  /** Where to build the next frame, when the link lends its output buffer (GuestLink.allocFrame). */
  allocFrame?(length: number, zeroed: boolean): Uint8Array;
  /**
   * Call after entering the stack from anywhere but the link (a host socket event calling
   * `stack.host*`): re-arms the session's timer. Same as `Session.poke()`.
   */
  poke(): void;
}

export type StackFactory = (config: StackConfig, deps: SessionStackDeps) => SessionStack;

/** Frames and bytes, each way, as seen at the link. */
export interface SessionTraffic {
  fromGuestFrames: number;
  fromGuestBytes: number;
  toGuestFrames: number;
  toGuestBytes: number;
}

export interface SessionOptions {
  readonly id: string;
  readonly link: GuestLink;
  readonly config: StackConfig;
  readonly createStack: StackFactory;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /** Directory for this session's capture file (classic pcap), when capturing that way. */
  readonly pcapDir?: string | undefined;
  /** A shared pcapng file: the session becomes one interface of it (takes precedence over pcapDir). */
  readonly pcapFile?: PcapngFileWriter | undefined;
  /** Called once the session has ended and its capture file is closed. */
  readonly onEnded?: (s: Session) => void;
}

export class Session {
  readonly id: string;
  readonly startedAt = new Date();
  readonly stack: SessionStack;
  readonly traffic: SessionTraffic = { fromGuestFrames: 0, fromGuestBytes: 0, toGuestFrames: 0, toGuestBytes: 0 };
  /** Give this to the link. */
  readonly handler: LinkHandler;
  /** Resolves when the session has ended and its capture is on disk. */
  readonly ended: Promise<void>;
  readonly #link: GuestLink;
  readonly #pcap: CaptureSink | undefined;
  readonly #scheduler: Scheduler;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #startMs: number;
  readonly #onEnded: ((s: Session) => void) | undefined;
  #endedResolve: () => void = () => undefined;
  #lastError: unknown;
  #closed = false;
  /** False while the stack is being constructed. */
  #ready = false;

  constructor(o: SessionOptions) {
    this.id = o.id;
    this.#log = o.log.child({ session: o.id });
    this.#clock = o.clock;
    this.#onEnded = o.onEnded;
    this.#startMs = o.clock.now();
    this.ended = new Promise<void>((resolve) => {
      this.#endedResolve = resolve;
    });
    if (o.pcapFile !== undefined) this.#pcap = o.pcapFile.addInterface({ name: o.id, description: `${o.link.kind} ${o.link.peer}` });
    else if (o.pcapDir !== undefined) this.#pcap = new PcapFileWriter(capturePath(o.pcapDir, this.startedAt, o.id));
    this.#link = this.#pcap === undefined ? o.link : tapLink(o.link, this.#pcap);
    // Each session gets its own copy of the configuration (the MAC is the only mutable part).
    const config: StackConfig = { ...o.config, gatewayMac: o.config.gatewayMac.slice() };
    // The scheduler exists before the stack, which may arm timers (or poke) while it is built.
    this.#scheduler = new Scheduler({ advance: () => this.stack.advance(), nextDeadline: () => this.stack.nextDeadline() }, o.clock, () => {
      this.#checkError();
    });
    this.stack = o.createStack(config, {
      clock: o.clock,
      random: o.random,
      emit: (frame) => {
        this.traffic.toGuestFrames++;
        this.traffic.toGuestBytes += frame.length;
        this.#link.send(frame);
      },
      ...(this.#link.allocFrame !== undefined && { allocFrame: this.#link.allocFrame.bind(this.#link) }),
      poke: () => {
        this.poke();
      },
    });
    this.#ready = true;
    const inner: LinkHandler = {
      frame: (frame) => {
        this.receive(frame);
      },
      closed: (reason) => {
        this.#end(reason);
      },
    };
    this.handler = this.#pcap === undefined ? inner : tapHandler(inner, this.#pcap);
    this.#log.info({ kind: o.link.kind, peer: o.link.peer, pcap: this.#pcap?.path }, 'session started');
    this.#scheduler.rearm();
  }

  get kind(): GuestLink['kind'] {
    return this.#link.kind;
  }

  get peer(): string {
    return this.#link.peer;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Drop counters of the stack and the link, merged. */
  drops(): Record<string, number> {
    const out: Record<string, number> = { ...this.stack.counters.snapshot() };
    for (const [k, v] of Object.entries(this.#link.counters.snapshot())) out[k] = (out[k] ?? 0) + v;
    if (this.#pcap !== undefined && this.#pcap.dropped > 0) out['pcap.dropped'] = this.#pcap.dropped;
    return out;
  }

  /**
   * One frame from the guest (the link calls this through `handler`). Frames arriving in the
   * same I/O event (one socket read holds many) form one batch: the stack flushes TCP — data
   * and one ACK per connection — once, in a microtask after the event, not after every frame.
   */
  receive(frame: Uint8Array): void {
    if (this.#closed) return;
    this.traffic.fromGuestFrames++;
    this.traffic.fromGuestBytes += frame.length;
    if (!this.#batching && this.stack.beginBatch !== undefined) {
      this.#batching = true;
      this.stack.beginBatch();
      queueMicrotask(this.#endBatch);
    }
    this.stack.receiveFrame(frame);
    if (!this.#batching) this.poke();
  }

  #batching = false;

  readonly #endBatch = (): void => {
    this.#batching = false;
    if (this.#closed) return;
    this.stack.endBatch?.();
    this.poke();
  };

  /**
   * Call after any other entry into the stack (a host socket event calling `stack.host*`):
   * re-arms the session's timer and reports a new internal error.
   */
  poke(): void {
    if (this.#closed || !this.#ready) return;
    this.#checkError();
    this.#scheduler.rearm();
  }

  /** Ends the session: closes the link (the summary is logged when it reports closed). */
  close(reason: string): void {
    this.#link.close(reason);
    // A link that was already closed reports nothing more: end here in that case.
    this.#end(reason);
  }

  #checkError(): void {
    const e = this.stack.lastError;
    if (e === undefined || e === this.#lastError) return;
    this.#lastError = e;
    this.#log.error({ err: e }, 'stack internal error (frame dropped)');
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#scheduler.stop();
    try {
      this.stack.dispose?.();
    } catch (e) {
      this.#log.error({ err: e }, 'stack dispose failed');
    }
    const drops = this.drops();
    const dropTotal = Object.values(drops).reduce((a, b) => a + b, 0);
    const leases = this.stack.leases().map((l) => ({ mac: l.mac, ip: formatIpv4Addr(l.ip), hostname: l.hostname, state: l.state }));
    this.#log.info(
      {
        kind: this.#link.kind,
        peer: this.#link.peer,
        reason,
        durationMs: Math.round(this.#clock.now() - this.#startMs),
        ...this.traffic,
        dropTotal,
        drops,
        tcp: this.stack.tcpStats?.(),
        leases,
        pcap: this.#pcap?.path,
      },
      'session ended',
    );
    const done = this.#pcap === undefined ? Promise.resolve() : this.#pcap.close();
    void done.then(() => {
      if (this.#pcap?.error !== undefined) this.#log.warn({ err: this.#pcap.error, pcap: this.#pcap.path }, 'capture file failed');
      this.#endedResolve();
      this.#onEnded?.(this);
    });
  }
}
