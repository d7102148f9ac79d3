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
 * from `settingsFor(name)`: the plain options, or the network's own `--net-option` values.
 */
import type { Logger } from 'pino';
import type { DnsStaticRecord } from '../dns/records.js';
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from '../nat/flow-table.js';
import type { ForwardRule } from '../nat/forwards.js';
import type { Endpoint } from '../net/addr.js';
import { EgressPolicy } from '../nat/egress.js';
import type { StackConfig } from '../stack/config.js';
import type { Clock, Random } from '../util/clock.js';
import { LiveNetwork } from './live-network.js';

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

  constructor(o: NetworkRegistryOptions) {
    this.#o = o;
    for (const name of o.declared.keys()) this.#named.set(name, { live: this.#create(name), declared: true, private: false });
  }

  /** The settings a network of this name gets. */
  settingsFor(name: string | undefined): NetworkSettings {
    return (name === undefined ? undefined : this.#o.declared.get(name)) ?? this.#o.base;
  }

  #create(name: string, settings = this.settingsFor(name)): LiveNetwork {
    const log = this.#o.log;
    return new LiveNetwork({
      name,
      // Each network gets its own copy of the configuration: the MAC and the egress policy
      // (which a public session turns public) are its mutable parts.
      config: { ...settings.config, gatewayMac: settings.config.gatewayMac.slice(), egress: new EgressPolicy(settings.config.egress?.rules) },
      flowLimits: settings.flowLimits,
      dnsRecords: settings.dnsRecords,
      dnsUpstreams: this.#o.dnsUpstreams(),
      clock: this.#o.clock,
      random: this.#o.random,
      onInternalError: (err) => {
        log.error({ network: name, err }, 'network internal error (frame dropped)');
      },
      onPortMapping: (e) => {
        log.info({ network: name, ...e }, `port mapping ${e.event}`);
      },
    });
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
      const live = this.#create(privateName, this.#o.base);
      this.#private.set(live, { live, declared: false, private: true });
      joined = { network: live, private: true };
    } else {
      let e = this.#named.get(name);
      if (e === undefined) {
        e = { live: this.#create(name), declared: false, private: false };
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
    if (this.#private.delete(network)) return network.close();
    const e = this.#named.get(network.name);
    if (e?.live !== network || e.declared) return;
    this.#named.delete(network.name);
    network.close();
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
    for (const n of this.all()) n.close();
    this.#named.clear();
    this.#private.clear();
  }
}
