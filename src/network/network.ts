/**
 * One virtual network, sans-IO: a segment whose ports are guests, the virtual hosts that
 * serve them, and the NAT that carries their flows to the host.
 *
 * Theory of operation
 * -------------------
 * A network is a learning switch (`src/switch/learning-switch.ts`) with one port per guest
 * link and one more port, the gateway port, behind which stands the `Stack`: the gateway
 * (10.0.2.2), the DHCP server with its one pool, the DNS server and the NAT with its one
 * flow table and `Host`. Guests on one network are on one Ethernet segment:
 * - a frame from a guest enters the switch at the guest's port; unicast goes to the port its
 *   destination MAC was learned on (another guest, at wire speed, without NAT; or the
 *   gateway port), broadcast and multicast are flooded to every other port, the gateway's
 *   included (ARP requests, DHCP);
 * - a frame from the stack enters the switch at the gateway port and goes to the guest whose
 *   MAC it is addressed to (flooded while that MAC is unknown).
 * So the stack sees what a router on a LAN sees: frames for its MAC and broadcasts. Its ARP
 * cache and DHCP lease table already keep one entry per guest; its flow table keeps per-guest
 * limits (`FlowLimits.perGuest`) so one guest cannot use up the network's table.
 *
 * Time comes from `deps.clock` (read once per entry), randomness from `deps.random`, host
 * sockets through `deps.host`: nothing here reads a clock, `Math.random` or Node I/O. The
 * shell (`src/daemon/node-network.ts`) keeps one timer, re-armed from `nextDeadline()` after
 * every entry, and calls `advance()` when it fires.
 *
 * Frames are never copied on the way through: a flooded frame reaches several ports as the
 * same bytes, and receivers keep but never mutate what they get. While exactly one port is
 * attached, the stack builds its frames directly in that port's output buffer when the port
 * lends one (`PortSink.allocFrame`, a stream link's): the one-guest path costs what it cost
 * before networks existed.
 *
 * Port forwards (`--hostfwd`) that belong to the network are sockets of its host, opened
 * through the seam (`openForward`: Host.tcpListen / udpBind); their clients arrive as host
 * events and the stack resolves each one's guest when it arrives (`src/nat/forward-ports.ts`):
 * a rule's guest is an address, a DHCP lease's host name (the lease bound now, so the forward
 * follows the guest to a new address), or the network's first bound lease.
 *
 * Link impairment (`--link-delay`, `--link-loss`, …; `config.impairment`): each guest port
 * then gets two `ImpairedLink`s (`src/impair/impaired-link.ts`), one on the frames it sends
 * before the switch sees them and one on the frames it receives after the switch, so guest
 * to gateway and guest to guest traffic are both impaired, in both directions. Their queues'
 * deadlines join the stack's in `nextDeadline()`, and `advance()` delivers what is due. An
 * impaired network lends no output buffer (a queued frame must not share one with the next),
 * and an unimpaired one creates none of this: its ports are plain switch ports.
 *
 * Layering: `src/network` stands on the stack and the switch; the daemon's registry of
 * networks and the sessions that are its ports stand above it (README, "How it is built").
 */
import type { DhcpLease } from '../dhcp/server.js';
import { ImpairedLink } from '../impair/impaired-link.js';
import type { LinkImpairment } from '../impair/spec.js';
import type { ForwardRefusals } from '../nat/forward-refusals.js';
import type { ForwardRule } from '../nat/forwards.js';
import type { FlowId, IpAddr } from '../net/addr.js';
import { Stack, type StackDeps } from '../stack/stack.js';
import type { StackConfig } from '../stack/config.js';
import { LearningSwitch, type PortId, type SwitchOptions } from '../switch/learning-switch.js';
import type { Clock, Random } from '../util/clock.js';

/** What a network needs: the stack's dependencies without its output, and the switch's limits. */
export interface NetworkDeps extends Omit<StackDeps, 'emit' | 'allocFrame'> {
  readonly switch?: SwitchOptions;
}

/** Where a port's frames go: a guest link, seen from the network. */
export interface PortSink {
  /** One frame for the guest; the receiver keeps it and never mutates it. */
  send(frame: Uint8Array): void;
  /** Optional: lends the link's output buffer for the next frame (GuestLink.allocFrame). */
  allocFrame?(length: number, zeroed: boolean): Uint8Array;
}

/** A guest's attachment to a network. */
export interface NetworkPort {
  readonly id: PortId;
  /** One frame from the guest. Never throws; ignored once detached. */
  receive(frame: Uint8Array): void;
  /** Leaves the network: the switch forgets the port's MACs. Idempotent. */
  detach(): void;
  readonly detached: boolean;
}

interface Attached {
  readonly sink: PortSink;
  port: NetworkPort;
}

/** An impaired port's two directions. */
interface ImpairedPort {
  readonly fromGuest: ImpairedLink;
  readonly toGuest: ImpairedLink;
}

export class Network {
  readonly name: string;
  readonly stack: Stack;
  readonly switch: LearningSwitch;
  readonly #clock: Clock;
  readonly #random: Random;
  /** `config.impairment`: undefined keeps every port a plain switch port. */
  readonly #impairment: LinkImpairment | undefined;
  readonly #impaired = new Set<ImpairedPort>();
  readonly #gatewayPort: PortId;
  readonly #ports = new Map<PortId, Attached>();
  /** The only attached port while there is exactly one (the frame-lending fast path). */
  #only: Attached | undefined;
  #closed = false;
  /** The port whose frame the switch is delivering (its delivery is synchronous). */
  #ingress: PortId | undefined;

  constructor(name: string, config: StackConfig, deps: NetworkDeps) {
    this.name = name;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#impairment = config.impairment;
    this.stack = new Stack(config, {
      ...deps,
      emit: (frame) => {
        this.switch.input(this.#gatewayPort, frame, this.#clock.now());
      },
      allocFrame: (length, zeroed) => this.#lend(length, zeroed),
    });
    // The switch counts into the network's counters ('switch.*' beside the stack's drops).
    this.switch = new LearningSwitch(this.stack.counters, deps.switch);
    this.#gatewayPort = this.switch.addPort((frame) => {
      this.stack.receiveFrame(frame, this.#ingress);
    });
  }

  get config(): StackConfig {
    return this.stack.config;
  }

  /** Guest ports attached now. */
  get portCount(): number {
    return this.#ports.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A new guest port whose frames go to `sink`. */
  attach(sink: PortSink): NetworkPort {
    if (this.#impairment !== undefined) return this.#attachImpaired(sink, this.#impairment);
    const id = this.switch.addPort((frame) => {
      sink.send(frame);
    });
    let detached = false;
    const entry: Attached = { sink, port: undefined as unknown as NetworkPort };
    entry.port = {
      id,
      receive: (frame) => {
        if (detached || this.#closed) return;
        this.#input(id, frame, this.#clock.now());
      },
      detach: () => {
        if (detached) return;
        detached = true;
        this.switch.removePort(id);
        this.#ports.delete(id);
        this.#only = this.#ports.size === 1 ? this.#ports.values().next().value : undefined;
      },
      get detached() {
        return detached;
      },
    };
    this.#ports.set(id, entry);
    this.#only = this.#ports.size === 1 ? entry : undefined;
    return entry.port;
  }

  /** A guest frame into the switch at port `id`; the switch delivers at once, so the stack learns the port (DHCP leases per port). */
  #input(id: PortId, frame: Uint8Array, nowMs: number): void {
    this.#ingress = id;
    this.switch.input(id, frame, nowMs);
    this.#ingress = undefined;
  }

  /** `attach` on an impaired network: the port's frames cross an ImpairedLink each way; no buffer lending. */
  #attachImpaired(sink: PortSink, spec: LinkImpairment): NetworkPort {
    const counters = this.stack.counters;
    const toGuest = new ImpairedLink(spec, this.#random, counters, (frame) => {
      sink.send(frame);
    });
    const id = this.switch.addPort((frame) => {
      toGuest.offer(frame, this.#clock.now());
    });
    const fromGuest = new ImpairedLink(spec, this.#random, counters, (frame, nowMs) => {
      this.#input(id, frame, nowMs);
    });
    const impaired: ImpairedPort = { fromGuest, toGuest };
    this.#impaired.add(impaired);
    let detached = false;
    const entry: Attached = { sink, port: undefined as unknown as NetworkPort };
    entry.port = {
      id,
      receive: (frame) => {
        if (detached || this.#closed) return;
        fromGuest.offer(frame, this.#clock.now());
      },
      detach: () => {
        if (detached) return;
        detached = true;
        this.#impaired.delete(impaired);
        fromGuest.clear();
        toGuest.clear();
        this.switch.removePort(id);
        this.#ports.delete(id);
      },
      get detached() {
        return detached;
      },
    };
    this.#ports.set(id, entry);
    return entry.port;
  }

  /** The stack's frame buffer: the only port's output buffer when it lends one. */
  #lend(length: number, zeroed: boolean): Uint8Array | undefined {
    return this.#only?.sink.allocFrame?.(length, zeroed);
  }

  /** Stack.batch for frames of one I/O event: TCP flushes once at the end. */
  beginBatch(): void {
    this.stack.beginBatch();
  }

  endBatch(): void {
    this.stack.endBatch();
  }

  /** Runs the stack's timers and, on an impaired network, delivers the frames due on its links. */
  advance(): void {
    if (this.#impaired.size !== 0) this.#advanceLinks();
    this.stack.advance();
  }

  /** The earliest of the stack's deadline and every impaired link's. */
  nextDeadline(): number | undefined {
    const stackAt = this.stack.nextDeadline();
    if (this.#impaired.size === 0) return stackAt;
    let at = stackAt;
    for (const { fromGuest, toGuest } of this.#impaired) {
      const a = fromGuest.nextDeadline();
      if (a !== undefined && (at === undefined || a < at)) at = a;
      const b = toGuest.nextDeadline();
      if (b !== undefined && (at === undefined || b < at)) at = b;
    }
    return at;
  }

  /** Due frames of every impaired link, as one batch for the stack (TCP flushes once). */
  #advanceLinks(): void {
    const nowMs = this.#clock.now();
    this.stack.beginBatch();
    try {
      for (const { fromGuest, toGuest } of [...this.#impaired]) {
        fromGuest.advance(nowMs);
        toGuest.advance(nowMs);
      }
    } finally {
      this.stack.endBatch();
    }
  }

  leases(): readonly DhcpLease[] {
    return this.stack.leases();
  }

  /**
   * The guest address a forward delivers to now: the rule's address, the address of the
   * bound lease whose DHCP host name is the rule's (case-insensitive), or the first bound lease.
   */
  forwardGuest(rule: ForwardRule): IpAddr | undefined {
    return this.stack.forwardGuest(rule);
  }

  /** Opens a forward's socket through the host: see Stack.openForward. */
  openForward(rule: ForwardRule, refusals: ForwardRefusals): FlowId | undefined {
    return this.stack.openForward(rule, refusals);
  }

  /** Releases a forward's socket: see Stack.closeForward. */
  closeForward(id: FlowId): void {
    this.stack.closeForward(id);
  }

  /** Ends every flow (host sockets released through the host) and detaches every port. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const { port } of [...this.#ports.values()]) port.detach();
    this.stack.close();
  }
}
