/**
 * The daemon: binds the listeners, turns every accepted link into a Session — a port on the
 * network the link, its listener or `--network` names, else on a private network of its own
 * (the registry, `networks.ts`) — and shuts everything down in order (listeners, then
 * sessions, then networks, then capture files). Process concerns (options, signals, exit
 * codes) live in src/cli.
 *
 * Port forwards. A declared network's own rules (`--net-option NAME:hostfwd=…`) belong to it.
 * The plain `--hostfwd` rules belong to the default network (`--network NAME`) when there is
 * one; without it they keep the first version's rule: they belong to the first session that
 * connects (its network), then to the next once it ends. Every forward's socket is bound at
 * start, into a `ListenerPool`, so a port in use stops the daemon before it serves anyone;
 * the network that owns a rule borrows its socket (`LiveNetwork.openForward`) and its clients
 * reach that network's stack as host events. While no network holds a rule, the pool resets
 * its clients, counted here as 'hostfwd.no-session'. Each rule's `ForwardRefusals` lives as
 * long as the daemon, whichever network counts into it, for the shutdown summary.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AcceptLink, GuestLink, LinkHandler, Listener, ListenerAddress } from '../link/link.js';
import { listenDgram } from '../link/qemu-dgram.js';
import { listenStream } from '../link/qemu-stream.js';
import { wsE1000Route } from '../link/ws-e1000.js';
import { DEFAULT_WS_IDLE_TIMEOUT_MS, wsFramesRoute } from '../link/ws-frames.js';
import type { WsTokens } from '../link/ws-auth.js';
import type { Cidr } from '../net/cidr.js';
import { listenWs, type WsListener } from '../link/ws-server.js';
import type { Endpoint, FlowId } from '../net/addr.js';
import { ListenerPool, type BoundListener } from '../host/node-listeners.js';
import { ForwardRefusals } from '../nat/forward-refusals.js';
import { ResolvConfWatcher } from '../host/resolv-conf.js';
import { expandForward, MAX_FORWARD_PORTS, parseForwardSpec, type ForwardRule } from '../nat/forwards.js';
import { ConfigError } from '../util/config-error.js';
import { CHANGE_POLL_MS, ControlError, MAPPING_TIMEOUT_SLACK_MS, type DaemonControl, type DaemonEvents, type ForwardRequest, type ForwardView, type NetworkFlow, type NetworkLease, type NetworkMapping } from './control.js';
import { PcapngFileWriter } from '../pcap/pcapng-writer.js';
import { formatEndpoint } from '../net/addr.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { describeSpec, isLoopbackHost, isPublicSpec, type ListenerSpec } from './listen-spec.js';
import { Counters } from '../util/drops.js';
import { LogThrottle } from '../util/log-throttle.js';
import type { LiveNetwork } from './live-network.js';
import { NetworkRegistry, type NetworkSettings } from './networks.js';
import { networkNameProblem } from '../net/network-name.js';
import { Session } from './session.js';
import type { NetworkReload } from '../network/reload.js';
import { StartError } from './start-error.js';

/** Where the DNS forwarder's upstreams come from (what it answers itself is a network setting). */
export interface DaemonDns {
  /** Fixed upstreams (--dns-upstream); when undefined, `resolvConf` is read and followed. */
  readonly upstreams: readonly Endpoint[] | undefined;
  readonly resolvConf: string;
}

export interface DaemonOptions {
  readonly listeners: readonly ListenerSpec[];
  /** Settings of every network not declared in `networks`; its `forwards` are the plain --hostfwd rules. */
  readonly network: NetworkSettings;
  /** Declared networks (--network, --net-option), created at start, with their own settings. */
  readonly networks?: ReadonlyMap<string, NetworkSettings>;
  /** --network: the network of every listener that names none. */
  readonly defaultNetwork?: string | undefined;
  readonly log: Logger;
  /** Directory for per-session capture files (classic pcap); created when missing. */
  readonly pcapDir?: string | undefined;
  /** One pcapng file for every session (one interface each); created or truncated at start. */
  readonly pcapFile?: string | undefined;
  /** shb_userappl of the pcapng file, e.g. `tslirp 0.1.0`. */
  readonly pcapUserAppl?: string | undefined;
  /** Directory for recordings (`--record`): one pcapng per network, replayable; created when missing. */
  readonly recordDir?: string | undefined;
  /** DNS upstreams; default: follow /etc/resolv.conf. */
  readonly dns?: DaemonDns;
  readonly clock?: Clock;
  readonly random?: Random;
  /** Most sessions alive at once across all listeners (default 256); further links are closed at once. */
  readonly maxSessions?: number;
  /**
   * Most sessions alive at once from one non-loopback source address (default 16): one
   * stranger cannot take every session. Loopback sources are not counted (local emulators,
   * and a reverse proxy's clients, which all arrive from it).
   */
  readonly maxSessionsPerSource?: number;
  /** Above this resident set size (bytes) new sessions are refused while existing ones go on (default 1 GiB). */
  readonly maxRssBytes?: number;
  /**
   * The tokens WebSocket clients must present (`--ws-token-file`), read at each request so a
   * reload takes effect at once; undefined or answering undefined: no authentication.
   */
  readonly wsTokens?: (() => WsTokens | undefined) | undefined;
  /** A WebSocket session whose peer sent nothing for this long ends (`--ws-idle-timeout`; 0: never; default an hour). */
  readonly wsIdleTimeoutMs?: number | undefined;
  /** Reverse proxies whose X-Forwarded-For names the client (`--trusted-proxy`). */
  readonly trustedProxies?: readonly Cidr[] | undefined;
  /** Certificate and key (PEM) for `wss://` on every WebSocket listener (`--ws-tls-cert`, `--ws-tls-key`). */
  readonly wsTls?: { readonly cert: Buffer | string; readonly key: Buffer | string } | undefined;
}

/** The daemon-wide session limits (`--max-sessions`, `--max-sessions-per-source`, `--max-rss` in bytes). */
export interface DaemonLimits {
  readonly maxSessions: number;
  readonly maxSessionsPerSource: number;
  readonly maxRssBytes: number;
}

/** What a reload changes (`Daemon.reload`). */
export interface DaemonReload {
  readonly limits: DaemonLimits;
  /** Of every network not declared. */
  readonly network: NetworkReload;
  /** Of declared networks, by name. */
  readonly networks: ReadonlyMap<string, NetworkReload>;
}

export const DEFAULT_MAX_SESSIONS = 256;
export const DEFAULT_MAX_SESSIONS_PER_SOURCE = 16;
export const DEFAULT_MAX_RSS_BYTES = 1 << 30;

/**
 * The IP address a link's peer (`formatHostPort`: `ADDR:PORT` or `[V6]:PORT`) speaks from;
 * undefined for a unix socket's peer and for loopback addresses (not limited per source).
 */
export function limitedSource(peer: string): string | undefined {
  const m = /^\[([^\]]+)\]:\d+$/.exec(peer) ?? /^([^:[\]]+):\d+$/.exec(peer);
  if (m === null || isLoopbackHost(m[1]!)) return undefined;
  return m[1]!.replace(/^::ffff:/i, '');
}

/** One forwarded port: its rule and what its clients' refusals added up to. */
interface Forward {
  readonly rule: ForwardRule;
  readonly refusals: ForwardRefusals;
  /** The written rule's id (ForwardView.id): `cli-N` or `api-N`. */
  readonly group: string;
  /** Its bound socket. */
  readonly listener: BoundListener;
  /** The network that owns it; undefined for a rule that follows the first session. */
  readonly network: LiveNetwork | undefined;
  /** A plain `--hostfwd` rule (the ones a reload may change), not a network's own or the API's. */
  readonly plain?: boolean;
  /** Its id in the owner's network (for closeForward); runtime forwards only. */
  flow?: FlowId | undefined;
}

export class Daemon implements DaemonControl {
  /** Session up/down, forward added/removed; lease and flow events while `watchChanges` is held. */
  readonly events = new EventEmitter<DaemonEvents>();
  readonly #listeners: Listener[] = [];
  readonly #sessions = new Set<Session>();
  readonly #o: DaemonOptions;
  readonly #clock: Clock;
  readonly #random: Random;
  /** Session limits (`DaemonLimits`); a reload replaces them. */
  #limits: DaemonLimits;
  /** Live sessions per limited source address (`limitedSource`). */
  readonly #perSource = new Map<string, number>();
  /** Links refused before becoming sessions, by reason ('session.*'), for the shutdown line. */
  readonly #refused = new Counters();
  readonly #refusedLog = new LogThrottle();
  #networks: NetworkRegistry | undefined;
  /** Prefix of session ids: distinguishes daemons (and restarts) in shared logs. */
  readonly #idPrefix = randomBytes(3).toString('hex');
  #serial = 0;
  #closing: Promise<void> | undefined;
  /** The DNS upstreams new sessions start with; resolv.conf changes replace them. */
  #dnsUpstreams: readonly Endpoint[] = [];
  #resolvConf: ResolvConfWatcher | undefined;
  /** Every forward rule's socket, bound at start and lent to the network that owns the rule. */
  readonly #forwardPool = new ListenerPool({
    idle: (l, client) => {
      this.#forwardOf.get(l)?.refusals.refuse('hostfwd.no-session', formatEndpoint(client), this.#clock.now());
    },
    failed: (l) => {
      this.#forwardOf.get(l)?.refusals.counters.count('hostfwd.socket-error');
    },
  });
  /** The forward rules in start-up order, with their refusals (kept for the daemon's life). */
  readonly #forwards: Forward[] = [];
  readonly #forwardOf = new Map<BoundListener, Forward>();
  /** The plain --hostfwd rules that follow the first session (no --network), and their ids in its network. */
  readonly #sessionForwards: { readonly forward: Forward; id: FlowId | undefined }[] = [];
  /** The session whose network the #sessionForwards deliver to. */
  #forwardOwner: Session | undefined;
  /** The shared capture file of DaemonOptions.pcapFile. */
  #pcapFile: PcapngFileWriter | undefined;
  /** Serial of runtime forwards' ids. */
  #forwardSerial = 0;
  /** Serial of command-line forwards' ids (`cli-N`), reloaded ones included. */
  #cliSerial = 0;
  /** Holders of `watchChanges`, and its timer while there are any. */
  #watchers = 0;
  #watchTimer: NodeJS.Timeout | undefined;
  /** The last snapshot `watchChanges` compared against: key → lease or flow. */
  #seenLeases = new Map<string, NetworkLease>();
  #seenFlows = new Map<string, NetworkFlow>();
  /** Mappings reported created (public endpoint known), by key, with when they expire unless refreshed (daemon clock). */
  #seenMappings = new Map<string, { readonly mapping: NetworkMapping; readonly expiresAtMs: number }>();
  /** Set once start() bound everything: a failed start does not log "daemon stopped". */
  #started = false;

  private constructor(o: DaemonOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? systemRandom();
    this.#limits = {
      maxSessions: o.maxSessions ?? DEFAULT_MAX_SESSIONS,
      maxSessionsPerSource: o.maxSessionsPerSource ?? DEFAULT_MAX_SESSIONS_PER_SOURCE,
      maxRssBytes: o.maxRssBytes ?? DEFAULT_MAX_RSS_BYTES,
    };
    // Every event-stream and capture client of the API listens here; the API bounds their number.
    this.events.setMaxListeners(0);
  }

  /** The upstreams the DNS forwarder uses now. */
  get dnsUpstreams(): readonly Endpoint[] {
    return this.#dnsUpstreams;
  }

  /** Fixed upstreams, or the nameservers of resolv.conf, followed for changes. */
  #startDns(): void {
    const dns = this.#o.dns ?? { upstreams: undefined, resolvConf: '/etc/resolv.conf' };
    const show = (list: readonly Endpoint[]): string[] => list.map(formatEndpoint);
    if (dns.upstreams !== undefined) {
      this.#dnsUpstreams = dns.upstreams;
      this.#o.log.info({ upstreams: show(dns.upstreams) }, 'dns upstreams (--dns-upstream)');
      return;
    }
    this.#resolvConf = new ResolvConfWatcher({
      path: dns.resolvConf,
      onChange: (list, conf) => {
        this.#dnsUpstreams = list;
        this.#o.log.info({ resolvConf: dns.resolvConf, upstreams: show(list), skipped: conf.skipped }, 'dns upstreams changed');
        this.#networks?.setDnsUpstreams(list);
      },
      onError: (code) => {
        this.#o.log.warn({ resolvConf: dns.resolvConf, code }, 'cannot read resolv.conf: DNS queries get SERVFAIL until it is readable');
      },
    });
    this.#dnsUpstreams = this.#resolvConf.start();
    this.#o.log.info({ resolvConf: dns.resolvConf, upstreams: show(this.#dnsUpstreams), skipped: this.#resolvConf.conf.skipped }, 'dns upstreams (resolv.conf)');
  }

  /** Gives the session-following --hostfwd rules to `s`'s network when nobody holds them. */
  #claimForwards(s: Session, network: LiveNetwork): void {
    if (this.#forwardOwner !== undefined || this.#sessionForwards.length === 0) return;
    this.#forwardOwner = s;
    for (const f of this.#sessionForwards) f.id = network.openForward(f.forward.rule, f.forward.refusals, this.#forwardPool);
    this.#o.log.info({ session: s.id, network: network.name, forwards: [...new Set(this.#sessionForwards.map((f) => f.forward.rule.text))] }, 'port forwards attached to session');
  }

  #releaseForwards(s: Session): void {
    if (this.#forwardOwner !== s) return;
    this.#forwardOwner = undefined;
    const held = this.#networkOf.get(s);
    for (const f of this.#sessionForwards) {
      if (f.id !== undefined) held?.closeForward(f.id);
      f.id = undefined;
    }
    // The next live session, if any, takes them over.
    for (const next of this.#sessions) {
      if (next === s) continue;
      const network = this.#networkOf.get(next);
      if (network !== undefined) this.#claimForwards(next, network);
      if (this.#forwardOwner !== undefined) break;
    }
  }

  /**
   * Binds every listener (all or none: a failure closes those already bound and rethrows).
   * Failures are StartErrors naming the step: `cannot listen on ws 127.0.0.1:8080: …`.
   */
  static async start(o: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(o);
    const log = o.log;
    /** What start-up is doing, for the StartError when it fails. */
    let step = '';
    try {
      const { pcapDir, pcapFile } = o;
      if (pcapDir !== undefined) {
        step = `use the capture directory ${pcapDir}`;
        await mkdir(pcapDir, { recursive: true });
        await access(pcapDir, constants.W_OK);
      }
      if (pcapFile !== undefined) {
        step = `create the capture file ${pcapFile}`;
        d.#pcapFile = await PcapngFileWriter.open(pcapFile, o.pcapUserAppl === undefined ? {} : { userAppl: o.pcapUserAppl });
      }
      if (o.recordDir !== undefined) {
        step = `use the recording directory ${o.recordDir}`;
        await mkdir(o.recordDir, { recursive: true });
        await access(o.recordDir, constants.W_OK);
      }
      step = 'check the network names';
      const declared = new Map(o.networks ?? []);
      if (o.defaultNetwork !== undefined && !declared.has(o.defaultNetwork)) declared.set(o.defaultNetwork, { ...o.network, forwards: [] });
      for (const name of [...declared.keys(), ...o.listeners.map((l) => l.network).filter((n) => n !== undefined)]) {
        const problem = networkNameProblem(name);
        if (problem !== undefined) throw new Error(problem);
      }
      step = 'read the DNS configuration';
      d.#startDns();
      const networks = new NetworkRegistry({
        base: o.network, declared, clock: d.#clock, random: d.#random, log, dnsUpstreams: () => d.#dnsUpstreams,
        sessionAt: (network, port) => d.sessionsOf(network).find((s) => s.portId === port)?.id,
        ...(o.recordDir !== undefined && { record: { dir: o.recordDir, by: o.pcapUserAppl ?? 'tslirp' } }),
      });
      d.#networks = networks;
      // The plain rules go to the default network, else follow the first session; a declared network's own rules are its.
      const owned: [ForwardRule, LiveNetwork | undefined][] = [
        ...o.network.forwards.map((r): [ForwardRule, LiveNetwork | undefined] => [r, o.defaultNetwork === undefined ? undefined : networks.get(o.defaultNetwork)]),
        ...[...declared].flatMap(([name, settings]) => settings.forwards.map((r): [ForwardRule, LiveNetwork | undefined] => [r, networks.get(name)])),
      ];
      const groups = new Map<string, string>();
      for (const [rule, network] of owned) {
        step = `listen for --hostfwd ${rule.text}`;
        const l = await d.#forwardPool.bind(rule.protocol, { addr: rule.hostAddr, port: rule.hostPort });
        const key = `${network?.name ?? ''}\n${rule.text}`;
        if (!groups.has(key)) groups.set(key, `cli-${groups.size + 1}`);
        const forward: Forward = { rule, refusals: new ForwardRefusals(rule, log), group: groups.get(key)!, listener: l, network, plain: o.network.forwards.includes(rule) };
        d.#forwards.push(forward);
        d.#forwardOf.set(l, forward);
        if (network === undefined) d.#sessionForwards.push({ forward, id: undefined });
        else forward.flow = network.openForward(rule, forward.refusals, d.#forwardPool);
      }
      d.#cliSerial = groups.size;
      if (owned.some(([, n]) => n !== undefined))
        log.info({ forwards: owned.filter(([, n]) => n !== undefined).map(([r, n]) => ({ rule: r.text, network: n!.name })).filter((x, i, all) => all.findIndex((y) => y.rule === x.rule) === i) }, 'port forwards attached to networks');
      for (const spec of o.listeners) {
        step = `listen on ${describeSpec(spec)}`;
        const isPublic = isPublicSpec(spec);
        const accept: AcceptLink = (link) => d.#accept(link, spec.network, isPublic);
        switch (spec.kind) {
          case 'ws': {
            const l = await listenWs({
              host: spec.host, port: spec.port, log, allowOrigins: spec.allowOrigins ?? [],
              tokens: o.wsTokens, network: spec.network ?? o.defaultNetwork, tls: o.wsTls, trustedProxies: o.trustedProxies,
            });
            const liveness = { idleTimeoutMs: o.wsIdleTimeoutMs ?? DEFAULT_WS_IDLE_TIMEOUT_MS };
            l.route('/', wsFramesRoute(accept, log, undefined, liveness));
            l.route('/e1000', wsE1000Route(accept, log, liveness));
            d.#listeners.push(l);
            break;
          }
          case 'stream':
            d.#listeners.push(await listenStream(spec, { accept, log }));
            break;
          case 'dgram':
            d.#listeners.push(await listenDgram({ host: spec.host, port: spec.port, accept, log }));
            break;
        }
      }
    } catch (e) {
      await d.close();
      throw step === '' ? e : new StartError(step, e);
    }
    d.#started = true;
    return d;
  }

  /** Sessions' networks, for handing the session-following forwards on. */
  readonly #networkOf = new Map<Session, LiveNetwork>();

  /**
   * A new link from a listener whose `network=` is `listenerNetwork`: a session on its
   * network. A public listener's session makes its network public (the registry's `join`).
   */
  #accept(link: GuestLink, listenerNetwork: string | undefined, isPublic: boolean): LinkHandler {
    const networks = this.#networks;
    if (this.#closing !== undefined || networks === undefined) throw new Error('daemon shutting down');
    const source = limitedSource(link.peer);
    const limits = this.#limits;
    const refusal =
      this.#sessions.size >= limits.maxSessions ? 'session.limit'
      : source !== undefined && (this.#perSource.get(source) ?? 0) >= limits.maxSessionsPerSource ? 'session.per-source-limit'
      : process.memoryUsage.rss() > limits.maxRssBytes ? 'session.memory-watermark'
      : undefined;
    if (refusal !== undefined) {
      this.#refused.count(refusal);
      const logNow = this.#refusedLog.hit(performance.now());
      if (logNow !== undefined)
        this.#o.log.warn({ kind: link.kind, peer: link.peer, reason: refusal, sessions: this.#sessions.size, rss: process.memoryUsage.rss(), refused: this.#refused.get(refusal), suppressed: logNow.suppressed }, 'link refused');
      throw new Error(refusal === 'session.limit' ? 'session limit reached' : refusal === 'session.per-source-limit' ? 'too many sessions from this address' : 'memory watermark reached');
    }
    const name = link.network ?? listenerNetwork ?? this.#o.defaultNetwork;
    // Links check their names (ws: HTTP 400); this guards a library caller's own link.
    const problem = name === undefined ? undefined : networkNameProblem(name);
    if (problem !== undefined) {
      this.#o.log.warn({ kind: link.kind, peer: link.peer, problem }, 'bad network name, link refused');
      throw new Error(problem);
    }
    const id = `${this.#idPrefix}-${++this.#serial}`;
    const joined = networks.join(name, id, isPublic);
    const joinedNetwork = joined.network;
    const s: Session = new Session({
      id,
      link,
      network: joined.network,
      privateNetwork: joined.private,
      clock: this.#clock,
      log: this.#o.log,
      pcapDir: this.#o.pcapDir,
      pcapFile: this.#pcapFile,
      onLeft: (x) => {
        if (source !== undefined) {
          const n = (this.#perSource.get(source) ?? 1) - 1;
          if (n > 0) this.#perSource.set(source, n);
          else this.#perSource.delete(source);
        }
        this.#releaseForwards(x);
        this.#networkOf.delete(x);
        networks.left(joinedNetwork);
        if (joinedNetwork.closed) this.#dropForwardsOf(joinedNetwork);
        this.events.emit('session.down', x, x.endReason ?? 'closed');
      },
      // Listed until its capture is on disk.
      onEnded: (x) => {
        this.#sessions.delete(x);
      },
    });
    this.#sessions.add(s);
    if (source !== undefined) this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
    this.#networkOf.set(s, joined.network);
    this.#claimForwards(s, joined.network);
    this.events.emit('session.up', s);
    return s.handler;
  }

  /** The session limits in force. */
  get limits(): DaemonLimits {
    return this.#limits;
  }

  /**
   * A reload (SIGHUP with `--config`): new session limits for the links accepted from now on
   * (sessions above a lowered limit go on), and new egress rules and lease bounds for every
   * network (`NetworkRegistry.reload`). Nothing is closed or re-bound.
   */
  reload(r: DaemonReload): void {
    if (this.#closing !== undefined) return;
    this.#limits = r.limits;
    this.#networks?.reload(r.network, r.networks);
  }

  /**
   * A reload's plain `--hostfwd` rules (each port a rule, as parsed): rules whose text is new
   * are bound and attached (to the `--network` network, else to the session that holds the
   * session-following rules), rules whose text is gone are closed (their open connections
   * live on), the others are left alone. All or nothing: every new port is bound before any
   * old one is released, so a port in use (even by a rule this reload removes) fails the
   * reload with nothing changed. Returns the rule texts added and removed.
   */
  async reloadForwards(rules: readonly ForwardRule[]): Promise<{ added: string[]; removed: string[] }> {
    if (this.#closing !== undefined) return { added: [], removed: [] };
    const held = this.#forwards.filter((f) => f.plain === true);
    const heldTexts = new Set(held.map((f) => f.rule.text));
    const nextTexts = new Set(rules.map((r) => r.text));
    const adding = rules.filter((r) => !heldTexts.has(r.text));
    const removing = held.filter((f) => !nextTexts.has(f.rule.text));
    if (this.#forwards.length - removing.length + adding.length > MAX_FORWARD_PORTS)
      throw new Error(`--hostfwd: at most ${MAX_FORWARD_PORTS} ports are forwarded in all`);
    const bound: BoundListener[] = [];
    try {
      for (const rule of adding) bound.push(await this.#forwardPool.bind(rule.protocol, { addr: rule.hostAddr, port: rule.hostPort }));
    } catch (e) {
      await Promise.all(bound.map((l) => this.#forwardPool.release(l)));
      const rule = adding[bound.length]!;
      throw new Error(`--hostfwd ${rule.text}: cannot listen on ${rule.protocol} ${formatEndpoint({ addr: rule.hostAddr, port: rule.hostPort })}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
    const network = this.#o.defaultNetwork === undefined ? undefined : this.#networks?.get(this.#o.defaultNetwork);
    const owner = this.#forwardOwner === undefined ? undefined : this.#networkOf.get(this.#forwardOwner);
    // Removed: the same way a runtime forward goes, and out of the session-following list.
    const removedViews = [...new Set(removing.map((f) => f.group))].map((g) => this.#view(removing.filter((f) => f.group === g)));
    for (const f of removing) {
      const i = this.#sessionForwards.findIndex((x) => x.forward === f);
      if (i < 0) continue;
      const id = this.#sessionForwards[i]!.id;
      if (id !== undefined) owner?.closeForward(id);
      this.#sessionForwards.splice(i, 1);
    }
    await this.#closeForwards(removing);
    const groups = new Map<string, string>();
    const added: Forward[] = adding.map((rule, i) => {
      if (!groups.has(rule.text)) groups.set(rule.text, `cli-${++this.#cliSerial}`);
      const f: Forward = { rule, refusals: new ForwardRefusals(rule, this.#o.log), group: groups.get(rule.text)!, listener: bound[i]!, network, plain: true };
      this.#forwardOf.set(f.listener, f);
      this.#forwards.push(f);
      if (network !== undefined) f.flow = network.openForward(rule, f.refusals, this.#forwardPool);
      else this.#sessionForwards.push({ forward: f, id: owner?.openForward(rule, f.refusals, this.#forwardPool) });
      return f;
    });
    // Session-following rules and nobody holding them (there were none until now): the oldest live session takes them.
    if (network === undefined && this.#forwardOwner === undefined)
      for (const next of this.#sessions) {
        const held = this.#networkOf.get(next);
        if (held !== undefined && !next.closed) this.#claimForwards(next, held);
        if (this.#forwardOwner !== undefined) break;
      }
    for (const v of removedViews) this.events.emit('forward.removed', v);
    for (const g of groups.values()) this.events.emit('forward.added', this.#view(added.filter((f) => f.group === g)));
    return { added: [...groups.keys()], removed: removedViews.map((v) => v.rule) };
  }

  // --- DaemonControl: what the control API reads and steers (control.ts).

  refusals(): Record<string, number> {
    const out = this.#refused.snapshot();
    for (const l of this.wsListeners) for (const [k, v] of Object.entries(l.counters.snapshot())) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  nowMs(): number {
    return this.#clock.now();
  }

  session(id: string): Session | undefined {
    for (const s of this.#sessions) if (s.id === id && !s.closed) return s;
    return undefined;
  }

  network(name: string): LiveNetwork | undefined {
    const named = this.#networks?.get(name);
    if (named !== undefined) return named;
    const s = this.session(name);
    return s === undefined ? undefined : this.#networkOf.get(s);
  }

  sessionsOf(network: LiveNetwork): Session[] {
    return [...this.#sessions].filter((s) => !s.closed && this.#networkOf.get(s) === network);
  }

  disconnect(id: string, reason: string): boolean {
    const s = this.session(id);
    if (s === undefined) return false;
    s.close(reason);
    return true;
  }

  forwards(): ForwardView[] {
    const groups = new Map<string, Forward[]>();
    for (const f of this.#forwards) {
      const g = groups.get(f.group);
      if (g === undefined) groups.set(f.group, [f]);
      else g.push(f);
    }
    return [...groups.values()].map((g) => this.#view(g));
  }

  #view(ports: readonly Forward[]): ForwardView {
    const first = ports[0]!;
    const refusals: Record<string, number> = {};
    for (const f of ports) for (const [k, v] of Object.entries(f.refusals.counters.snapshot())) refusals[k] = (refusals[k] ?? 0) + v;
    const owner = first.network ?? (this.#forwardOwner === undefined ? undefined : this.#networkOf.get(this.#forwardOwner));
    return {
      id: first.group,
      source: first.group.startsWith('api-') ? 'api' : 'command-line',
      rule: first.rule.text,
      ports: ports.map((f) => f.rule),
      bound: ports.map((f) => formatEndpoint(f.listener.local)),
      network: owner?.name,
      refusals,
    };
  }

  async addForward(request: ForwardRequest): Promise<ForwardView> {
    if (this.#closing !== undefined) throw new ControlError('conflict', 'the daemon is shutting down');
    let network: LiveNetwork | undefined;
    if (request.network !== undefined && request.session !== undefined) throw new ControlError('invalid', 'give network or session, not both', 'session');
    if (request.session !== undefined) {
      const s = this.session(request.session);
      network = s === undefined ? undefined : this.#networkOf.get(s);
      if (network === undefined) throw new ControlError('not-found', `no session '${request.session}'`, 'session');
    } else {
      const name = request.network ?? this.#o.defaultNetwork;
      if (name === undefined) throw new ControlError('invalid', 'name the network (or the session) the forward delivers to: this daemon has no --network default', 'network');
      network = this.#networks?.get(name);
      if (network === undefined) throw new ControlError('not-found', `no network '${name}' (a network exists once declared or joined)`, 'network');
    }
    let rules: ForwardRule[];
    try {
      rules = expandForward(parseForwardSpec(request.rule));
    } catch (e) {
      if (e instanceof ConfigError) throw new ControlError('invalid', e.message.replace(/^--hostfwd: /, ''), 'rule');
      throw e;
    }
    if (this.#forwards.length + rules.length > MAX_FORWARD_PORTS)
      throw new ControlError('conflict', `${this.#forwards.length} ports are forwarded already; at most ${MAX_FORWARD_PORTS} in all (each is a listening socket)`, 'rule');
    const group = `api-${++this.#forwardSerial}`;
    const bound: BoundListener[] = [];
    try {
      for (const rule of rules) bound.push(await this.#forwardPool.bind(rule.protocol, { addr: rule.hostAddr, port: rule.hostPort }));
    } catch (e) {
      await Promise.all(bound.map((l) => this.#forwardPool.release(l)));
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      const port = rules[bound.length];
      const where = port === undefined ? '' : ` ${formatEndpoint({ addr: port.hostAddr, port: port.hostPort })}`;
      throw new ControlError(code === 'EADDRINUSE' ? 'conflict' : code === 'EADDRNOTAVAIL' || code === 'EACCES' ? 'invalid' : 'conflict', `cannot listen on ${port?.protocol ?? ''}${where}: ${code}`, 'rule');
    }
    // The network may have closed while binding (its last session left).
    if (network.closed) {
      await Promise.all(bound.map((l) => this.#forwardPool.release(l)));
      throw new ControlError('not-found', `network '${network.name}' closed`, 'network');
    }
    const added: Forward[] = rules.map((rule, i) => {
      const f: Forward = { rule, refusals: new ForwardRefusals(rule, this.#o.log), group, listener: bound[i]!, network };
      this.#forwardOf.set(f.listener, f);
      this.#forwards.push(f);
      f.flow = network.openForward(rule, f.refusals, this.#forwardPool);
      return f;
    });
    const view = this.#view(added);
    this.#o.log.info({ forward: view.id, rule: view.rule, network: view.network, bound: view.bound }, 'port forward added');
    this.events.emit('forward.added', view);
    return view;
  }

  async removeForward(id: string): Promise<ForwardView> {
    const ports = this.#forwards.filter((f) => f.group === id);
    if (ports.length === 0) throw new ControlError('not-found', `no forward '${id}'`);
    if (!id.startsWith('api-')) throw new ControlError('conflict', `forward '${id}' comes from the command line; it lasts as long as the daemon`);
    const view = this.#view(ports);
    await this.#closeForwards(ports);
    this.#o.log.info({ forward: id, rule: view.rule, network: view.network }, 'port forward removed');
    this.events.emit('forward.removed', view);
    return view;
  }

  async #closeForwards(ports: readonly Forward[]): Promise<void> {
    for (const f of ports) {
      if (f.flow !== undefined) f.network?.closeForward(f.flow);
      f.flow = undefined;
      this.#forwardOf.delete(f.listener);
      const i = this.#forwards.indexOf(f);
      if (i >= 0) this.#forwards.splice(i, 1);
    }
    await Promise.all(ports.map((f) => this.#forwardPool.release(f.listener)));
  }

  /** A network closed (its last session left): its runtime forwards go with it. */
  #dropForwardsOf(network: LiveNetwork): void {
    const groups = new Set(this.#forwards.filter((f) => f.network === network && f.group.startsWith('api-')).map((f) => f.group));
    for (const g of groups) {
      const ports = this.#forwards.filter((f) => f.group === g);
      const view = this.#view(ports);
      void this.#closeForwards(ports).then(() => {
        this.#o.log.info({ forward: g, rule: view.rule, network: network.name }, 'port forward removed (its network closed)');
        this.events.emit('forward.removed', view);
      });
    }
  }

  watchChanges(): () => void {
    if (this.#watchers++ === 0) {
      this.#compare(false);
      this.#watchTimer = setInterval(() => {
        this.#compare(true);
      }, CHANGE_POLL_MS);
      this.#watchTimer.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#watchers > 0) return;
      clearInterval(this.#watchTimer);
      this.#watchTimer = undefined;
    };
  }

  /** Compares leases, flows and mappings with the last snapshot; emits the differences when `emit`. */
  #compare(emit: boolean): void {
    const leases = new Map<string, NetworkLease>();
    const flows = new Map<string, NetworkFlow>();
    const mappings = new Map<string, { readonly mapping: NetworkMapping; readonly expiresAtMs: number }>();
    const nowMs = this.#clock.now();
    for (const n of this.networks) {
      if (n.closed) continue;
      for (const l of n.leases()) if (l.state === 'bound') leases.set(`${n.name}/${l.mac}/${l.ip}`, { ...l, network: n.name });
      for (const f of n.network.stack.flows()) flows.set(`${n.name}/${f.id}`, { ...f, network: n.name });
      // Flow ids are never reused within a network (FlowTable.allocateId), so a key is one mapping's life.
      for (const m of n.network.stack.natMappings()) {
        const key = `${n.name}/${m.id}`;
        // Not yet bound: reported once its public endpoint is known (the next comparison).
        if (m.public !== undefined || m.socket !== 'bound' || this.#seenMappings.has(key)) mappings.set(key, { mapping: { ...m, network: n.name }, expiresAtMs: nowMs + m.expiresInMs });
      }
    }
    if (emit) {
      for (const [k, l] of leases) if (!this.#seenLeases.has(k)) this.events.emit('lease.granted', l);
      for (const [k, l] of this.#seenLeases) if (!leases.has(k)) this.events.emit('lease.released', l);
      for (const [k, f] of flows) if (!this.#seenFlows.has(k)) this.events.emit('flow.opened', f);
      for (const [k, f] of this.#seenFlows) if (!flows.has(k)) this.events.emit('flow.closed', f);
      for (const [k, m] of mappings) if (!this.#seenMappings.has(k)) this.events.emit('mapping.created', m.mapping);
      // Gone once its expiry had come (or all but): its timeout; gone well before: evicted or closed.
      for (const [k, m] of this.#seenMappings) if (!mappings.has(k)) this.events.emit('mapping.expired', m.mapping, m.expiresAtMs <= nowMs + MAPPING_TIMEOUT_SLACK_MS ? 'timeout' : 'closed');
    }
    this.#seenLeases = leases;
    this.#seenFlows = flows;
    this.#seenMappings = mappings;
  }

  /** The live networks: declared and joined ones by name, then private ones. */
  get networks(): readonly LiveNetwork[] {
    return this.#networks?.all() ?? [];
  }

  /** The bound listeners, in the order of the specs. */
  get listeners(): readonly Listener[] {
    return this.#listeners;
  }

  /** The bound addresses, in the order of the specs. */
  get addresses(): readonly ListenerAddress[] {
    return this.#listeners.map((l) => l.address);
  }

  /** Live sessions. */
  get sessions(): readonly Session[] {
    return [...this.#sessions];
  }

  /** The WebSocket listeners, for protocols that add their own path (e.g. '/e1000'). */
  get wsListeners(): readonly WsListener[] {
    return this.#listeners.filter((l): l is WsListener => l.address.kind === 'ws');
  }

  /**
   * What the listeners refused over the daemon's life, for the shutdown line: per forward rule
   * its 'hostfwd.*' counters (clients with no session, …), per WebSocket listener its 'ws.*'
   * counters (refused origins, unknown paths, …).
   */
  #refusalSummary(): { forwards: { rule: string; counters: Record<string, number> }[]; ws: { url: string; counters: Record<string, number> }[] } {
    return {
      forwards: this.#forwards.map((f) => ({ rule: f.rule.text, counters: f.refusals.counters.snapshot() })),
      ws: this.wsListeners.map((l) => ({ url: l.address.url, counters: l.counters.snapshot() })),
    };
  }

  /** Stops listening, ends every session and closes their capture files. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#resolvConf?.close();
      clearInterval(this.#watchTimer);
      await Promise.all([...this.#listeners.map((l) => l.close()), this.#forwardPool.close()]);
      const live = [...this.#sessions];
      for (const s of live) s.close('daemon shutting down');
      await Promise.all(live.map((s) => s.ended));
      this.#networks?.closeAll();
      await this.#networks?.recordingsClosed();
      await this.#pcapFile?.close();
      if (this.#pcapFile?.error !== undefined) this.#o.log.warn({ err: this.#pcapFile.error, pcap: this.#pcapFile.path }, 'capture file failed');
      if (this.#started) this.#o.log.info({ sessions: live.length, ...this.#refusalSummary(), sessionsRefused: this.#refused.snapshot() }, 'daemon stopped');
    })();
    return this.#closing;
  }
}
