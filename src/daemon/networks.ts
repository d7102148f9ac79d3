/**
 * The daemon's networks, by name: the one place that knows which sessions share a segment.
 *
 * A session joins the network its link asked for (a WebSocket URL's `?network=`), else its
 * listener's (`network=NAME`), else the daemon's default (`--network NAME`); with none of
 * these it gets a private network of its own, named after the session id in logs but never
 * joinable by name (a client cannot ask its way onto another session's private network).
 *
 * Declared networks — the default and every name `--net-option` configures — are created at
 * start and live as long as the daemon: their leases and their port forwards survive guests
 * coming and going. A network that is only named by a link or a listener is created when its
 * first session joins and closed when its last one leaves, as a private one is; so the
 * registry never holds more networks than sessions plus declared ones.
 *
 * Every network gets its settings (addresses, DHCP, DNS records, MTU, flow limits, forwards)
 * from `settingsFor(name)`: the plain options, or the network's own `--net-option` values. A
 * reload (`reload`) replaces the egress rules, the lease bound, the DNS records and the flow
 * limits of every live network and of the networks created after it; the other settings stay
 * what they were at start.
 *
 * With `record` (`--record DIR`) every network is recorded for replay from its creation to its
 * close, in a file of its own: a network is the unit a replay can rebuild (its guests share one
 * stack, so one guest's frames change what another sees). A private network is its session's,
 * so the file is named after the session (`tslirp-TIME-SESSION.pcapng`); a shared network's file
 * is named after the network (`tslirp-TIME-network-NAME.pcapng`) and holds every session that
 * joined it, one interface each.
 */
import type { Logger } from 'pino';
import type { DnsStaticRecord } from '../dns/records.js';
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from '../nat/flow-table.js';
import type { ForwardRule } from '../nat/forwards.js';
import { formatEndpoint, type Endpoint } from '../net/addr.js';
import { EgressPolicy, EgressRefusalLog } from '../nat/egress.js';
import type { StackConfig } from '../stack/config.js';
import type { Clock, Random } from '../util/clock.js';
import { PcapngBlockFile } from '../pcap/pcapng-writer.js';
import { NetworkRecorder, recordingPath } from '../replay/recorder.js';
import { wallClockUs } from '../pcap/writer.js';
import { LiveNetwork } from './live-network.js';
import type { NetworkReload } from '../network/reload.js';

/** Everything that shapes one network. */
export interface NetworkSettings {
  readonly config: StackConfig;
  readonly flowLimits: FlowLimits;
  readonly dnsRecords: readonly DnsStaticRecord[];
  /** The network's own port forwards (the plain `--hostfwd` rules are the daemon's: see daemon.ts). */
  readonly forwards: readonly ForwardRule[];
}

/** Settings from a configuration: default flow limits, no DNS records, no forwards unless given. */
export function networkSettings(config: StackConfig, more: Partial<Omit<NetworkSettings, 'config'>> = {}): NetworkSettings {
  return { config, flowLimits: more.flowLimits ?? DEFAULT_FLOW_LIMITS, dnsRecords: more.dnsRecords ?? [], forwards: more.forwards ?? [] };
}

export interface NetworkRegistryOptions {
  /** Settings of every network not in `declared`. */
  readonly base: NetworkSettings;
  /** Networks that exist from the start, with their settings. */
  readonly declared: ReadonlyMap<string, NetworkSettings>;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /** The DNS upstreams a new network starts with. */
  dnsUpstreams(): readonly Endpoint[];
  /** Record every network into `dir` (`--record`); `by` names the recorder (`tslirp 0.1.0`). */
  readonly record?: { readonly dir: string; readonly by: string } | undefined;
  /** The id of the session attached to `network` at switch port `port`, for log lines (the daemon knows its sessions). */
  sessionAt?(network: LiveNetwork, port: number): string | undefined;
}

interface Entry {
  readonly live: LiveNetwork;
  readonly declared: boolean;
  /** Private: the session's own, not joinable by name. */
  readonly private: boolean;
}

export class NetworkRegistry {
  readonly #o: NetworkRegistryOptions;
  readonly #named = new Map<string, Entry>();
  readonly #private = new Map<LiveNetwork, Entry>();
  /** Each recorded network's file, until it is closed and on disk. */
  readonly #recordings = new Map<LiveNetwork, { file: PcapngBlockFile; recorder: NetworkRecorder }>();
  readonly #closingRecordings = new Set<Promise<void>>();
  /** The last reload's settings: of undeclared networks, and of declared ones by name. */
  #reloaded: { readonly base: NetworkReload; readonly declared: ReadonlyMap<string, NetworkReload> } | undefined;

  constructor(o: NetworkRegistryOptions) {
    this.#o = o;
    for (const name of o.declared.keys()) this.#named.set(name, { live: this.#create(name), declared: true, private: false });
  }

  /** The settings a network of this name gets. */
  settingsFor(name: string | undefined): NetworkSettings {
    return (name === undefined ? undefined : this.#o.declared.get(name)) ?? this.#o.base;
  }

  /** `fileLabel`: what the recording's file is named after (the session of a private network). */
  /** `isPublic`: created for a public listener's session (its egress policy public from the start, so a recording holds it). */
  #create(name: string, settings = this.settingsFor(name), fileLabel = `network-${name}`, isPublic = false): LiveNetwork {
    const log = this.#o.log;
    // Each network gets its own copy of the configuration: the MAC and the egress policy
    // (which a public session turns public) are its mutable parts.
    const reloaded = this.#reloadFor(name);
    const config = {
      ...settings.config,
      gatewayMac: settings.config.gatewayMac.slice(),
      egress: new EgressPolicy(reloaded?.egress ?? settings.config.egress?.rules, isPublic),
      ...(reloaded !== undefined && { maxLeasesPerPort: reloaded.maxSessionLeases }),
    };
    const dnsUpstreams = this.#o.dnsUpstreams();
    let recording: { file: PcapngBlockFile; recorder: NetworkRecorder } | undefined;
    if (this.#o.record !== undefined) {
      const file = new PcapngBlockFile(recordingPath(this.#o.record.dir, new Date(), fileLabel));
      const recorder = new NetworkRecorder({
        sink: file,
        name,
        config,
        flowLimits: reloaded?.flowLimits ?? settings.flowLimits,
        dnsUpstreams,
        dnsRecords: reloaded?.dnsRecords ?? settings.dnsRecords,
        clock: this.#o.clock,
        wallNowUs: wallClockUs,
        by: this.#o.record.by,
      });
      recording = { file, recorder };
      log.info({ network: name, record: file.path }, 'recording the network');
    }
    // Refused flows at debug, one line per flow attempt within a budget (src/nat/egress.ts).
    const refusals = new EgressRefusalLog();
    const live: LiveNetwork = new LiveNetwork({
      name,
      config,
      flowLimits: reloaded?.flowLimits ?? settings.flowLimits,
      dnsRecords: reloaded?.dnsRecords ?? settings.dnsRecords,
      dnsUpstreams,
      clock: this.#o.clock,
      random: this.#o.random,
      ...(recording !== undefined && { recorder: recording.recorder }),
      onInternalError: (err) => {
        log.error({ network: name, err }, 'network internal error (frame dropped)');
      },
      onPortMapping: (e) => {
        log.info({ network: name, ...e }, `port mapping ${e.event}`);
      },
      onEgressRefused: (e, port) => {
        if (!log.isLevelEnabled('debug')) return;
        const line = refusals.note(e, this.#o.clock.now());
        if (line === undefined) return;
        const session = port === undefined ? undefined : this.#o.sessionAt?.(live, port);
        log.debug(
          {
            network: name, session, protocol: e.protocol, guest: formatEndpoint(e.guest), destination: formatEndpoint(e.remote),
            judged: formatEndpoint(e.to), rule: e.rule, counter: e.drop, suppressed: line.suppressed,
          },
          `egress: ${e.protocol} flow refused by ${e.rule}`,
        );
      },
    });
    if (recording !== undefined) this.#recordings.set(live, recording);
    return live;
  }

  /** What the last reload says for a network of this name (a private one: the base); undefined before any reload. */
  #reloadFor(name: string): NetworkReload | undefined {
    const r = this.#reloaded;
    if (r === undefined) return undefined;
    return (this.#o.declared.has(name) ? r.declared.get(name) : undefined) ?? r.base;
  }

  /**
   * A reload: `base` for every network not declared, `declared` by name for the declared ones
   * (a declared network missing there keeps its settings). Applied to every live network now
   * and to networks created later.
   */
  reload(base: NetworkReload, declared: ReadonlyMap<string, NetworkReload>): void {
    this.#reloaded = { base, declared };
    for (const [name, e] of this.#named) {
      const r = this.#reloadFor(name);
      if (r !== undefined && !e.live.closed) e.live.reload(r);
    }
    for (const live of this.#private.keys()) if (!live.closed) live.reload(base);
  }

  /** Closes `live` and, when recorded, its file (logged once on disk). */
  #close(live: LiveNetwork): void {
    live.close();
    const r = this.#recordings.get(live);
    if (r === undefined) return;
    this.#recordings.delete(live);
    const done = r.file.close().then(() => {
      const { file, recorder } = r;
      const fields = { network: live.name, record: file.path, blocks: recorder.blocks };
      if (file.error !== undefined) this.#o.log.warn({ ...fields, err: file.error }, 'recording failed');
      else if (recorder.dropped > 0) this.#o.log.warn({ ...fields, dropped: recorder.dropped }, 'recording stopped early: the disk fell behind (the file replays up to there)');
      else this.#o.log.info(fields, 'recording closed');
      this.#closingRecordings.delete(done);
    });
    this.#closingRecordings.add(done);
  }

  /** Resolves once every closed network's recording is on disk. */
  async recordingsClosed(): Promise<void> {
    while (this.#closingRecordings.size > 0) await Promise.all([...this.#closingRecordings]);
  }

  /** A declared or joined network by name. */
  get(name: string): LiveNetwork | undefined {
    return this.#named.get(name)?.live;
  }

  /**
   * The network a new session joins: `name`'s (created when missing), or a private one
   * named `privateName` when `name` is undefined. A session from a public listener
   * (`isPublic`) makes its network public for good: the public egress default applies to
   * every new flow of every guest there (`src/nat/egress.ts`).
   */
  join(name: string | undefined, privateName: string, isPublic = false): { network: LiveNetwork; private: boolean } {
    let joined: { network: LiveNetwork; private: boolean };
    if (name === undefined) {
      const live = this.#create(privateName, this.#o.base, privateName, isPublic);
      this.#private.set(live, { live, declared: false, private: true });
      joined = { network: live, private: true };
    } else {
      let e = this.#named.get(name);
      if (e === undefined) {
        e = { live: this.#create(name, undefined, undefined, isPublic), declared: false, private: false };
        this.#named.set(name, e);
        this.#o.log.info({ network: name }, 'network created');
      }
      joined = { network: e.live, private: false };
    }
    const egress = joined.network.config.egress;
    if (isPublic && egress !== undefined && !egress.public) {
      egress.markPublic();
      if (!joined.private) this.#o.log.info({ network: name }, 'network is public from now on (a session from a public listener joined): the public egress default applies');
    }
    return joined;
  }

  /** A session left `network`: a private or undeclared network with no port left is closed. */
  left(network: LiveNetwork): void {
    if (network.network.portCount > 0) return;
    if (this.#private.delete(network)) return this.#close(network);
    const e = this.#named.get(network.name);
    if (e?.live !== network || e.declared) return;
    this.#named.delete(network.name);
    this.#close(network);
    this.#o.log.info({ network: network.name }, 'network closed (its last session left)');
  }

  /** Every live network, named ones first. */
  all(): LiveNetwork[] {
    return [...[...this.#named.values()].map((e) => e.live), ...this.#private.keys()];
  }

  setDnsUpstreams(upstreams: readonly Endpoint[]): void {
    for (const n of this.all()) n.setDnsUpstreams(upstreams);
  }

  /** Closes every network (after their sessions ended). */
  closeAll(): void {
    for (const n of this.all()) this.#close(n);
    this.#named.clear();
    this.#private.clear();
  }
}
