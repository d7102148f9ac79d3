/**
 * A network on real host sockets: the Node shell around one sans-IO `Network`.
 *
 * It gives the network a `NodeHost` (node:net, node:dgram) whose events enter the stack, and
 * keeps the network's one timer: re-armed from `nextDeadline()` after every entry — a frame
 * from a port, a host socket event (a forward's client among them) — and `advance()` when it
 * fires. Given an observer, every Host call and HostEvents event of the network passes it
 * (`src/net/observe.ts`); without one nothing is wrapped.
 *
 * Port forwards are sockets of the network's host (`openForward`): the daemon lends the ones
 * it bound at start from its `ListenerPool`.
 * Frames that arrive in one I/O event (one socket read holds many; several links may read in
 * one turn) form one batch: the stack flushes TCP — data and one ACK per connection — once,
 * in a microtask after the event, not after every frame.
 *
 * TCP data toward guests is sent within the process's turn budget (`turn-budget.ts`): when a
 * turn's is spent, the connections it stopped send on once it is refilled in a later turn
 * (`Stack.resumeSends`), so no turn of the event loop sends every busy flow's whole window.
 *
 * Given a recorder (`src/replay/recorder.ts`), the network reads the recorder's clock and
 * randomness, and every entry — a port's frame, a batch's start and end, a timer advance, a host
 * event, a port attached or detached, forwards opened or closed, new DNS upstreams, a reload, the close —
 * is told to the recorder as it starts, and every output (frames to ports, Host calls with
 * their results) as it happens: that is what `tslirp replay` runs again. The shell's own timer
 * keeps reading the real clock.
 *
 * The daemon's registry (`networks.ts`) and the library entry point (`node-network.ts`) both
 * build on it; sessions are its ports (`attach`).
 */
import type { DhcpLease } from '../dhcp/server.js';
import type { DnsStaticRecord } from '../dns/records.js';
import { NodeHost } from '../host/node-host.js';
import { duplexPair, resetError } from '../host/node-services.js';
import { HOST_LOOPBACK } from '../nat/policy.js';
import type { Ipv4Addr } from '../util/bytes.js';
import type { Duplex } from 'node:stream';
import type { ListenerPool } from '../host/node-listeners.js';
import type { FlowLimits } from '../nat/flow-table.js';
import type { ForwardRefusals } from '../nat/forward-refusals.js';
import type { ForwardRule } from '../nat/forwards.js';
import type { Endpoint, FlowId } from '../net/addr.js';
import { observeEvents, observeHost, type HostObserver } from '../net/observe.js';
import type { HostEvents } from '../net/seams.js';
import { Network, type NetworkPort, type PortSink } from '../network/network.js';
import { applyNetworkReload, type NetworkReload } from '../network/reload.js';
import type { StackConfig } from '../stack/config.js';
import type { StackDeps } from '../stack/stack.js';
import type { TcpEngineLimits } from '../nat/tcp-flow.js';
import type { SwitchOptions } from '../switch/learning-switch.js';
import type { TftpStats } from '../tftp/server.js';
import type { Clock, Random } from '../util/clock.js';
import type { NetworkRecorder, PortLabel } from '../replay/recorder.js';
import { Scheduler } from './scheduler.js';
import { processReadBudget, processTurnBudget, type TurnBudget } from '../host/turn-budget.js';
import type { SessionNetwork } from './session.js';

export interface LiveNetworkOptions {
  readonly name: string;
  readonly config: StackConfig;
  readonly clock: Clock;
  readonly random: Random;
  readonly dnsUpstreams: readonly Endpoint[];
  readonly dnsRecords: readonly DnsStaticRecord[];
  readonly flowLimits?: FlowLimits;
  readonly tcpLimits?: Partial<TcpEngineLimits>;
  readonly switch?: SwitchOptions;
  /** A bug of ours caught inside the network (the frame or event is dropped): log it. Once per distinct error. */
  readonly onInternalError?: (err: unknown) => void;
  /** Sees every Host call and HostEvents event of the network (a trace); absent: nothing is wrapped. */
  readonly observer?: HostObserver;
  /** With `--nat-pmp on`: each port mapping's life, for the log. */
  readonly onPortMapping?: StackDeps['onPortMapping'];
  /** Each flow the egress policy refused, with the port of the guest that opened it (the registry's debug log). */
  readonly onEgressRefused?: StackDeps['onEgressRefused'];
  /** Records the network for replay: it supplies the network's clock and randomness (see the module comment). */
  readonly recorder?: NetworkRecorder;
  /**
   * The send budget of the event loop's turn (src/host/turn-budget.ts): default the one the
   * whole process shares, null for none. A recorded network has none (a replay could not
   * know when another network's traffic spent it).
   */
  readonly sendBudget?: TurnBudget | null;
  /** The read budget of the turn for host sockets (NodeTcpOptions.readBudget): default the process's; none where sendBudget is null. */
  readonly readBudget?: TurnBudget;
}

/** Two observers as one, `first` first. */
const both = (first: HostObserver | undefined, second: HostObserver | undefined): HostObserver | undefined =>
  first === undefined ? second : second === undefined ? first : (kind, name, args) => { first(kind, name, args); second(kind, name, args); };

export class LiveNetwork implements SessionNetwork {
  readonly network: Network;
  readonly host: NodeHost;
  readonly #scheduler: Scheduler;
  readonly #onInternalError: ((err: unknown) => void) | undefined;
  readonly #rec: NetworkRecorder | undefined;
  readonly #budget: TurnBudget | undefined;
  #lastError: unknown;
  #batching = false;
  #closed = false;
  /** The last source port `connect` used (the gateway's, as the guest sees it). */
  #connectPort = 49151;

  constructor(o: LiveNetworkOptions) {
    // Host events enter the stack, then the timer is re-armed.
    const events: HostEvents = {
      udpReceived: (flow, data) => { if (!this.#closed) { this.network.stack.udpReceived(flow, data); this.poke(); } },
      udpError: (flow, code) => { if (!this.#closed) { this.network.stack.udpError(flow, code); this.poke(); } },
      tcpConnected: (flow, local) => { if (!this.#closed) { this.network.stack.tcpConnected(flow, local); this.poke(); } },
      tcpData: (flow, data) => { if (!this.#closed) { this.network.stack.tcpData(flow, data); this.poke(); } },
      tcpEnd: (flow) => { if (!this.#closed) { this.network.stack.tcpEnd(flow); this.poke(); } },
      tcpDrained: (flow) => { if (!this.#closed) { this.network.stack.tcpDrained(flow); this.poke(); } },
      tcpError: (flow, code) => { if (!this.#closed) { this.network.stack.tcpError(flow, code); this.poke(); } },
      tcpClosed: (flow) => { if (!this.#closed) { this.network.stack.tcpClosed(flow); this.poke(); } },
      tcpListening: (listener, local) => { if (!this.#closed) { this.network.stack.tcpListening(listener, local); this.poke(); } },
      tcpListenError: (listener, code) => { if (!this.#closed) { this.network.stack.tcpListenError(listener, code); this.poke(); } },
      // Unanswered while closed: the host refuses the connection when this returns.
      tcpAccepted: (listener, conn, client) => { if (!this.#closed) { this.network.stack.tcpAccepted(listener, conn, client); this.poke(); } },
      udpBound: (socket, local) => { if (!this.#closed) { this.network.stack.udpBound(socket, local); this.poke(); } },
      udpReceivedFrom: (socket, from, data) => { if (!this.#closed) { this.network.stack.udpReceivedFrom(socket, from, data); this.poke(); } },
      fileOpened: (file, size) => { if (!this.#closed) { this.network.stack.fileOpened(file, size); this.poke(); } },
      fileData: (file, offset, data) => { if (!this.#closed) { this.network.stack.fileData(file, offset, data); this.poke(); } },
      fileError: (file, code) => { if (!this.#closed) { this.network.stack.fileError(file, code); this.poke(); } },
    };
    const rec = (this.#rec = o.recorder);
    const observer = both(o.observer, rec?.observer);
    const observed = observer === undefined ? events : observeEvents(events, observer);
    // Outside the observer, so a recording has the batch before the reads it holds (and no hint).
    const budgeted = rec === undefined && o.sendBudget !== null;
    this.host = new NodeHost({
      ...observed,
      tcpData: (flow, data, more) => {
        if (more === true) this.#holdForReads();
        observed.tcpData(flow, data);
      },
    }, {
      ...(budgeted && { readBudget: o.readBudget ?? processReadBudget }),
      readBuffer: (flow, maxBytes) => (this.#closed ? undefined : this.network.stack.tcpReadBuffer(flow, maxBytes)),
    });
    this.#onInternalError = o.onInternalError;
    // The scheduler exists before the network, whose stack may arm timers while it is built.
    const advance = (): void => {
      rec?.advance();
      this.network.advance();
    };
    this.#scheduler = new Scheduler({ advance, nextDeadline: () => this.network.nextDeadline() }, o.clock, () => {
      this.#checkError();
      this.#waitForBudget();
    });
    const budget = (this.#budget = budgeted ? (o.sendBudget ?? processTurnBudget) : undefined);
    this.network = new Network(o.name, o.config, {
      clock: rec?.clock ?? o.clock,
      random: rec?.random ?? o.random,
      host: observer === undefined ? this.host : observeHost(this.host, observer, rec?.onResult),
      dnsUpstreams: o.dnsUpstreams,
      dnsRecords: o.dnsRecords,
      ...(o.flowLimits !== undefined && { flowLimits: o.flowLimits }),
      ...(o.tcpLimits !== undefined && { tcpLimits: o.tcpLimits }),
      ...(o.switch !== undefined && { switch: o.switch }),
      ...(o.onPortMapping !== undefined && { onPortMapping: o.onPortMapping }),
      ...(o.onEgressRefused !== undefined && { onEgressRefused: o.onEgressRefused }),
      ...(budget !== undefined && { sendBudget: budget }),
    });
  }

  get name(): string {
    return this.network.name;
  }

  get config(): StackConfig {
    return this.network.config;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The network's drops and refusals (the stack's and the switch's), by name. */
  counters(): Record<string, number> {
    return this.network.stack.counters.snapshot();
  }

  leases(): readonly DhcpLease[] {
    return this.network.leases();
  }

  tcpStats(): Record<string, number> {
    return this.network.stack.tcpStats();
  }

  tftpStats(): Readonly<TftpStats> | undefined {
    return this.network.stack.tftpStats();
  }

  /**
   * A guest port: frames in through `receive` (batched per I/O event), out through `sink`;
   * `label` names it in a recording (the session).
   */
  attach(sink: PortSink, label?: PortLabel): NetworkPort {
    const rec = this.#rec;
    let id = -1;
    const inner = this.network.attach(rec === undefined ? sink : rec.sink(() => id, sink));
    id = inner.id;
    rec?.attach(id, label);
    return {
      id: inner.id,
      receive: (frame) => {
        if (this.#closed || inner.detached) return;
        if (!this.#batching) {
          this.#batching = true;
          rec?.batch(true);
          this.network.beginBatch();
          queueMicrotask(this.#endBatch);
        }
        rec?.frameIn(id, frame);
        inner.receive(frame);
      },
      detach: () => {
        if (!inner.detached) rec?.detach(id);
        inner.detach();
      },
      get detached() {
        return inner.detached;
      },
    };
  }

  /**
   * A host read filled the read buffer (HostEvents.tcpData's `more`): libuv reads the socket
   * again at once, in the same I/O event. The stack's flush waits until the event's reads are
   * over (setImmediate runs right after the I/O phase), so consecutive reads leave as whole
   * segments; flushed after each read, every read ended in a short one (at MTU 65493 a 256 KiB
   * read is four full segments and one of 412 bytes). Bounded: the connection pauses its socket
   * once its queue holds sndBufferBytes, and that ends libuv's reads.
   */
  #holdForReads(): void {
    if (this.#batching || this.#closed) return;
    this.#batching = true;
    this.#rec?.batch(true);
    this.network.beginBatch();
    setImmediate(this.#endBatch);
  }

  readonly #endBatch = (): void => {
    this.#batching = false;
    if (this.#closed) return;
    this.#rec?.batch(false);
    this.network.endBatch();
    this.poke();
  };

  /**
   * Call after any entry into the network from outside a port: re-arms the timer, reports a
   * new internal error, and waits for the turn budget when connections wait for it.
   */
  poke(): void {
    if (this.#closed) return;
    this.#checkError();
    this.#scheduler.rearm();
    this.#waitForBudget();
  }

  #waitForBudget(): void {
    if (this.#budget !== undefined && this.network.stack.sendsDeferred) this.#budget.wait(this.#resumeSends);
  }

  /** The turn budget was refilled: connections it stopped send on (an entry like any other). */
  readonly #resumeSends = (): void => {
    if (this.#closed) return;
    this.network.stack.resumeSends();
    this.poke();
  };

  /** Replaces the DNS forwarder's upstreams (resolv.conf changed). */
  setDnsUpstreams(upstreams: readonly Endpoint[]): void {
    this.#rec?.api('setDnsUpstreams', [upstreams]);
    this.network.stack.setDnsUpstreams(upstreams);
    this.poke();
  }

  /**
   * What a reload changes in a running network (src/network/reload.ts): its egress rules,
   * per-session lease bound, DNS records and flow limits, for what guests do from now on (open
   * flows and held leases stay). Recorded, so a replay applies it at the same point.
   */
  reload(settings: NetworkReload): void {
    if (this.#closed) return;
    this.#rec?.api('reload', [settings]);
    applyNetworkReload(this.network, settings);
    this.poke();
  }

  /**
   * Opens a forward of this network (Stack.openForward): its socket is taken from `pool` when
   * the pool holds one bound for the rule (the daemon's), else bound by the network's host.
   * Returns the id for `closeForward`.
   */
  openForward(rule: ForwardRule, refusals: ForwardRefusals, pool?: ListenerPool): FlowId | undefined {
    if (this.#closed) return undefined;
    if (pool !== undefined) this.host.borrowListenersFrom(pool);
    this.#rec?.api('openForward', [rule]);
    const id = this.network.openForward(rule, refusals);
    this.poke();
    return id;
  }

  /**
   * A TCP connection from this program into a guest's server at `guest`:`port`, with no host
   * port in between: the returned stream is the program's end. The guest sees it come from the
   * gateway address. The stream is reset (its 'error' has code ECONNREFUSED or ECONNRESET)
   * when the guest refuses or never answers, or when the flow table has no room. Not recorded
   * by `recorder` (a recording with such a connection does not replay).
   */
  connect(guest: Ipv4Addr, port: number): Duplex {
    const [flowSide, programSide] = duplexPair();
    if (!this.#closed) {
      for (let tries = 0; tries < 16; tries++) {
        this.#connectPort = this.#connectPort >= 65535 ? 49152 : this.#connectPort + 1;
        const flow = this.network.stack.forwardTcp({ addr: HOST_LOOPBACK, port: this.#connectPort }, { addr: guest, port });
        if (flow === undefined) continue;
        this.host.tcp.attachStream(flow, flowSide, false);
        this.poke();
        return programSide;
      }
    }
    queueMicrotask(() => programSide.destroy(resetError('ECONNREFUSED')));
    return programSide;
  }

  /** Releases a forward's socket (a borrowed one goes back to its pool). */
  closeForward(id: FlowId): void {
    if (this.#closed) return;
    this.#rec?.api('closeForward', [id]);
    this.network.closeForward(id);
    this.poke();
  }

  #checkError(): void {
    const e = this.network.stack.lastError;
    if (e === undefined || e === this.#lastError) return;
    this.#lastError = e;
    this.#onInternalError?.(e);
  }

  /** Ends every flow, releases every socket and stops the timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#checkError();
    this.#closed = true;
    this.#scheduler.stop();
    this.#budget?.cancel(this.#resumeSends);
    this.#rec?.api('close', []);
    this.network.close();
    this.#rec?.end('network closed');
    this.host.closeAll();
  }
}
