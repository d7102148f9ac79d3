/**
 * One guest session: a link that is a port on a network, an optional capture file, and the
 * logs that say what happened. A session starts when a link is accepted and ends when the
 * link closes; its network (shared by name, or private to it) lives in the daemon's registry
 * (`networks.ts`), and nothing below the daemon knows about sessions.
 *
 * Logs: one line at connect (session id, network, link kind, peer) and one at disconnect
 * (duration, frames and bytes each way, drop counters, DHCP leases, capture file). On a
 * private network the drop counters are the network's and the link's, as when every session
 * had its own stack; on a shared network the line carries the link's own drops in `drops`
 * and the network-wide counters, which every guest of the network shares, in `networkDrops`.
 */
import type { Logger } from 'pino';
import type { GuestLink, LinkHandler } from '../link/link.js';
import type { NetworkPort, PortSink } from '../network/network.js';
import type { PcapngFileWriter } from '../pcap/pcapng-writer.js';
import { PcapFileWriter, type CaptureSink } from '../pcap/writer.js';
import { capturePath, tapHandler, tapLink } from '../pcap/tap.js';
import { formatIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import type { Clock } from '../util/clock.js';
import type { TftpStats } from '../tftp/server.js';

/** A DHCP lease as the network reports it (structurally src/dhcp's lease). */
export interface LeaseInfo {
  readonly mac: string;
  readonly ip: Ipv4Addr;
  readonly hostname: string | undefined;
  readonly state: string;
  readonly expiresAtMs: number;
}

/** What a session needs of the network it joins (src/daemon/live-network.ts's LiveNetwork satisfies it). */
export interface SessionNetwork {
  readonly name: string;
  /** `label` names the port in a recording of the network. */
  attach(sink: PortSink, label?: { readonly name: string; readonly description: string }): NetworkPort;
  /** The network's drops and refusals. */
  counters(): Record<string, number>;
  leases(): readonly LeaseInfo[];
  /** TCP events that are not drops (flows, retransmissions, resets), for the summary. */
  tcpStats(): Record<string, number>;
  /** What the gateway's TFTP server did; undefined without one. */
  tftpStats?(): Readonly<TftpStats> | undefined;
}

/** Sees a session's frames as they cross its link (a live capture); must not keep `frame`. */
export type FrameTap = (frame: Uint8Array, direction: 'fromGuest' | 'toGuest') => void;

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
  readonly network: SessionNetwork;
  /** True when the network exists for this session alone (no network name was asked for). */
  readonly privateNetwork: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  /** Directory for this session's capture file (classic pcap), when capturing that way. */
  readonly pcapDir?: string | undefined;
  /** A shared pcapng file: the session becomes one interface of it (takes precedence over pcapDir). */
  readonly pcapFile?: PcapngFileWriter | undefined;
  /** Called at once when the session ends, its port detached and its summary logged (release its network here). */
  readonly onLeft?: (s: Session) => void;
  /** Called once the session has ended and its capture file is closed. */
  readonly onEnded?: (s: Session) => void;
}

/** A capture interface's description: link kind and peer, and the network when it is shared. */
function interfaceDescription(o: SessionOptions): string {
  const link = `${o.link.kind} ${o.link.peer}`;
  return o.privateNetwork ? link : `${link} network ${o.network.name}`;
}

export class Session {
  readonly id: string;
  readonly startedAt = new Date();
  readonly network: SessionNetwork;
  readonly privateNetwork: boolean;
  readonly traffic: SessionTraffic = { fromGuestFrames: 0, fromGuestBytes: 0, toGuestFrames: 0, toGuestBytes: 0 };
  /** Give this to the link. */
  readonly handler: LinkHandler;
  /** Resolves when the session has ended and its capture is on disk. */
  readonly ended: Promise<void>;
  readonly #link: GuestLink;
  readonly #port: NetworkPort;
  readonly #pcap: CaptureSink | undefined;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #startMs: number;
  readonly #onEnded: ((s: Session) => void) | undefined;
  readonly #onLeft: ((s: Session) => void) | undefined;
  /** Live captures of this session (the API's); empty almost always, so the data path pays one size check. */
  readonly #taps = new Set<FrameTap>();
  #endedResolve: () => void = () => undefined;
  #closed = false;
  #endReason: string | undefined;

  constructor(o: SessionOptions) {
    this.id = o.id;
    this.network = o.network;
    this.privateNetwork = o.privateNetwork;
    this.#log = o.log.child({ session: o.id, network: o.network.name });
    this.#clock = o.clock;
    this.#onEnded = o.onEnded;
    this.#onLeft = o.onLeft;
    this.#startMs = o.clock.now();
    this.ended = new Promise<void>((resolve) => {
      this.#endedResolve = resolve;
    });
    if (o.pcapFile !== undefined) this.#pcap = o.pcapFile.addInterface({ name: o.id, description: interfaceDescription(o) });
    else if (o.pcapDir !== undefined) this.#pcap = new PcapFileWriter(capturePath(o.pcapDir, this.startedAt, o.id));
    this.#link = this.#pcap === undefined ? o.link : tapLink(o.link, this.#pcap);
    const link = this.#link;
    this.#port = o.network.attach({
      send: (frame) => {
        this.traffic.toGuestFrames++;
        this.traffic.toGuestBytes += frame.length;
        if (this.#taps.size > 0) for (const t of this.#taps) t(frame, 'toGuest');
        link.send(frame);
      },
      ...(link.allocFrame !== undefined && { allocFrame: link.allocFrame.bind(link) }),
    }, { name: o.id, description: interfaceDescription(o) });
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

  /** Its port on the network's switch (the switch's MAC table names ports). */
  get portId(): number {
    return this.#port.id;
  }

  /** Why the session ended (the link's or the caller's words); undefined while it runs. */
  get endReason(): string | undefined {
    return this.#endReason;
  }

  /**
   * The session's drop counters: the link's (and the capture's), merged with the network's on
   * a private network.
   */
  drops(): Record<string, number> {
    const out: Record<string, number> = this.privateNetwork ? { ...this.network.counters() } : {};
    for (const [k, v] of Object.entries(this.#link.counters.snapshot())) out[k] = (out[k] ?? 0) + v;
    if (this.#pcap !== undefined && this.#pcap.dropped > 0) out['pcap.dropped'] = this.#pcap.dropped;
    return out;
  }

  /** One frame from the guest (the link calls this through `handler`). */
  receive(frame: Uint8Array): void {
    if (this.#closed) return;
    this.traffic.fromGuestFrames++;
    this.traffic.fromGuestBytes += frame.length;
    if (this.#taps.size > 0) for (const t of this.#taps) t(frame, 'fromGuest');
    this.#port.receive(frame);
  }

  /** Starts seeing every frame of the session; returns the function that stops it. */
  tap(fn: FrameTap): () => void {
    const own: FrameTap = (frame, direction) => {
      fn(frame, direction);
    };
    this.#taps.add(own);
    return () => {
      this.#taps.delete(own);
    };
  }

  /** The moment the session started, on the daemon's clock (for ages and rates). */
  get startMs(): number {
    return this.#startMs;
  }

  /** Ends the session: closes the link (the summary is logged when it reports closed). */
  close(reason: string): void {
    this.#link.close(reason);
    // A link that was already closed reports nothing more: end here in that case.
    this.#end(reason);
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endReason = reason;
    this.#port.detach();
    const drops = this.drops();
    const dropTotal = Object.values(drops).reduce((a, b) => a + b, 0);
    const leases = this.network.leases().map((l) => ({ mac: l.mac, ip: formatIpv4Addr(l.ip), hostname: l.hostname, state: l.state }));
    this.#log.info(
      {
        kind: this.#link.kind,
        peer: this.#link.peer,
        reason,
        durationMs: Math.round(this.#clock.now() - this.#startMs),
        ...this.traffic,
        dropTotal,
        drops,
        ...(!this.privateNetwork && { networkDrops: this.network.counters() }),
        tcp: this.network.tcpStats(),
        leases,
        pcap: this.#pcap?.path,
      },
      'session ended',
    );
    this.#onLeft?.(this);
    const done = this.#pcap === undefined ? Promise.resolve() : this.#pcap.close();
    void done.then(() => {
      if (this.#pcap?.error !== undefined) this.#log.warn({ err: this.#pcap.error, pcap: this.#pcap.path }, 'capture file failed');
      this.#endedResolve();
      this.#onEnded?.(this);
    });
  }
}
