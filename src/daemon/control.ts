/**
 * What the daemon offers the layers above it (the control API, src/api) to read and steer it:
 * sessions, networks with their counters, leases and flows, forwards to add and remove, a
 * session to disconnect, and events. Nothing above the daemon reaches past this interface
 * into networks' stacks or host sockets, so the data path keeps one owner.
 *
 * Events. Session up/down and forward added/removed are emitted where they happen. Leases,
 * flows and UDP NAT mappings live inside the sans-IO stacks, which call nobody: their events
 * come from comparing snapshots (`DaemonControl.watchChanges`), every CHANGE_POLL_MS and only
 * while someone watches, so an unwatched daemon pays nothing and a flow shorter than one
 * period may go unreported (it still shows in the counters). A mapping is reported created
 * once its public endpoint is known (its socket bound; a connected socket at once), and
 * expired when it is gone: `timeout` when the expiry its last snapshot gave had come by then
 * (within MAPPING_TIMEOUT_SLACK_MS), `closed` otherwise (evicted for a newer one, its bind
 * failed, its network closed; one evicted in its last moments reads as a timeout).
 */
import type { EventEmitter } from 'node:events';
import type { FlowInfo } from '../nat/flow-table.js';
import type { UdpMappingInfo } from '../nat/udp-flow.js';
import type { ForwardRule } from '../nat/forwards.js';
import type { LiveNetwork } from './live-network.js';
import type { LeaseInfo, Session } from './session.js';

/** How often lease and flow snapshots are compared while someone watches. */
export const CHANGE_POLL_MS = 250;

/**
 * A mapping found gone when its expiry (as its last snapshot gave it) is at most this far
 * ahead expired by timeout: its timer may fire a little before the comparison that notices.
 */
export const MAPPING_TIMEOUT_SLACK_MS = 2 * CHANGE_POLL_MS;

/** A forward as the daemon holds it: one written rule (its ports) and where it delivers. */
export interface ForwardView {
  /** `cli-N` for a command-line rule, `api-N` for one added at runtime. */
  readonly id: string;
  readonly source: 'command-line' | 'api';
  /** The rule in `--hostfwd` syntax. */
  readonly rule: string;
  /** One per port, in port order. */
  readonly ports: readonly ForwardRule[];
  /** The host endpoints bound, `ADDR:PORT`, one per port. */
  readonly bound: readonly string[];
  /** The network that receives its clients now; undefined while no session holds a session-following rule. */
  readonly network: string | undefined;
  /** Clients refused, by reason (`hostfwd.*`), summed over the rule's ports. */
  readonly refusals: Readonly<Record<string, number>>;
}

/** A forward to add: ports as a rule, onto one network (by name) or a session's network. */
export interface ForwardRequest {
  /** `[tcp|udp]:[HOSTADDR]:PORTS-[GUESTADDR]:PORTS`, as `--hostfwd` takes it. */
  readonly rule: string;
  readonly network?: string | undefined;
  readonly session?: string | undefined;
}

/** Why a request was refused: 'not-found' (no such network/session/forward), 'conflict' (a port in use), 'invalid'. */
export class ControlError extends Error {
  readonly kind: 'not-found' | 'conflict' | 'invalid';
  /** The request field at fault, when one is. */
  readonly field: string | undefined;
  constructor(kind: ControlError['kind'], message: string, field?: string) {
    super(message);
    this.name = 'ControlError';
    this.kind = kind;
    this.field = field;
  }
}

/** A lease with the network it belongs to. */
export interface NetworkLease extends LeaseInfo {
  readonly network: string;
}

/** A flow with the network it belongs to. */
export interface NetworkFlow extends FlowInfo {
  readonly network: string;
}

/** A UDP NAT mapping with the network it belongs to. */
export interface NetworkMapping extends UdpMappingInfo {
  readonly network: string;
}

/** Why a mapping went: its idle timeout, or anything else (evicted, bind failed, network closed). */
export type MappingEnd = 'timeout' | 'closed';

/** The daemon's events (emitted on `DaemonControl.events`), by name. */
export interface DaemonEvents {
  'session.up': [session: Session];
  'session.down': [session: Session, reason: string];
  'forward.added': [forward: ForwardView];
  'forward.removed': [forward: ForwardView];
  'lease.granted': [lease: NetworkLease];
  'lease.released': [lease: NetworkLease];
  'flow.opened': [flow: NetworkFlow];
  'flow.closed': [flow: NetworkFlow];
  'mapping.created': [mapping: NetworkMapping];
  'mapping.expired': [mapping: NetworkMapping, reason: MappingEnd];
}

export const DAEMON_EVENT_NAMES: readonly (keyof DaemonEvents)[] = [
  'session.up', 'session.down', 'forward.added', 'forward.removed', 'lease.granted', 'lease.released', 'flow.opened', 'flow.closed',
  'mapping.created', 'mapping.expired',
];

export interface DaemonControl {
  readonly sessions: readonly Session[];
  readonly networks: readonly LiveNetwork[];
  session(id: string): Session | undefined;
  /** A declared or joined network by name, or a private one by its session's id. */
  network(name: string): LiveNetwork | undefined;
  /** The sessions on a network. */
  sessionsOf(network: LiveNetwork): Session[];
  /** Ends a session as if its link closed (its summary is logged, its network released). */
  disconnect(id: string, reason: string): boolean;
  forwards(): ForwardView[];
  /** Binds the rule's ports and lends them to the network; throws ControlError. */
  addForward(request: ForwardRequest): Promise<ForwardView>;
  /** Closes a forward's ports (its open connections live on); throws ControlError. */
  removeForward(id: string): Promise<ForwardView>;
  /**
   * Links the daemon itself refused before they became sessions ('session.*', 'ws.*'), by
   * drop reason, over its life (forwards' refusals are in `forwards()`).
   */
  refusals(): Record<string, number>;
  /** Now on the daemon's monotonic clock (leases' expiry and sessions' start are on it). */
  nowMs(): number;
  readonly events: EventEmitter<DaemonEvents>;
  /** Lease, flow and mapping events while the returned function has not been called (reference-counted). */
  watchChanges(): () => void;
}
