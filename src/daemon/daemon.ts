/**
 * The daemon: binds the listeners, turns every accepted link into a Session with its own
 * Stack, and shuts everything down in order (listeners, then sessions, then capture files).
 * Process concerns (options, signals, exit codes) live in src/cli.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AcceptLink, GuestLink, LinkHandler, Listener, ListenerAddress } from '../link/link.js';
import { listenDgram } from '../link/qemu-dgram.js';
import { listenStream } from '../link/qemu-stream.js';
import { wsE1000Route } from '../link/ws-e1000.js';
import { wsFramesRoute } from '../link/ws-frames.js';
import { listenWs, type WsListener } from '../link/ws-server.js';
import type { DnsStaticRecord } from '../dns/records.js';
import type { Endpoint } from '../net/addr.js';
import { TcpForwardListener } from '../host/node-tcp.js';
import { UdpForwardListener } from '../host/node-udp.js';
import { ResolvConfWatcher } from '../host/resolv-conf.js';
import type { ForwardRule } from '../nat/forwards.js';
import { PcapngFileWriter } from '../pcap/pcapng-writer.js';
import type { StackConfig } from '../stack/config.js';
import { formatEndpoint } from '../net/addr.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { describeSpec, type ListenerSpec } from './listen-spec.js';
import { NodeStack } from './node-stack.js';
import { Session, type StackFactory } from './session.js';
import { StartError } from './start-error.js';

/** Where the DNS forwarder's upstreams come from, and what it answers itself. */
export interface DaemonDns {
  /** Fixed upstreams (--dns-upstream); when undefined, `resolvConf` is read and followed. */
  readonly upstreams: readonly Endpoint[] | undefined;
  readonly resolvConf: string;
  readonly records: readonly DnsStaticRecord[];
}

export interface DaemonOptions {
  readonly listeners: readonly ListenerSpec[];
  readonly network: StackConfig;
  readonly log: Logger;
  /** Directory for per-session capture files (classic pcap); created when missing. */
  readonly pcapDir?: string | undefined;
  /** One pcapng file for every session (one interface each); created or truncated at start. */
  readonly pcapFile?: string | undefined;
  /** shb_userappl of the pcapng file, e.g. `tslirp 0.1.0`. */
  readonly pcapUserAppl?: string | undefined;
  /** DNS upstreams and records; default: follow /etc/resolv.conf, no records. */
  readonly dns?: DaemonDns;
  /** --hostfwd rules: their listeners belong to the first session that connects (then the next, once it ends). */
  readonly forwards?: readonly ForwardRule[];
  /** For tests: a different stack (default: a NodeStack with real host sockets). */
  readonly createStack?: StackFactory;
  readonly clock?: Clock;
  readonly random?: Random;
  /** Most sessions alive at once across all listeners (default 256); further links are closed at once. */
  readonly maxSessions?: number;
}

export const DEFAULT_MAX_SESSIONS = 256;

export class Daemon {
  readonly #listeners: Listener[] = [];
  readonly #sessions = new Set<Session>();
  readonly #o: DaemonOptions;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #createStack: StackFactory;
  readonly #maxSessions: number;
  /** Prefix of session ids: distinguishes daemons (and restarts) in shared logs. */
  readonly #idPrefix = randomBytes(3).toString('hex');
  #serial = 0;
  #closing: Promise<void> | undefined;
  /** The DNS upstreams new sessions start with; resolv.conf changes replace them. */
  #dnsUpstreams: readonly Endpoint[] = [];
  #resolvConf: ResolvConfWatcher | undefined;
  readonly #forwardListeners: (TcpForwardListener | UdpForwardListener)[] = [];
  /** The session the --hostfwd listeners deliver to. */
  #forwardOwner: Session | undefined;
  /** The shared capture file of DaemonOptions.pcapFile. */
  #pcapFile: PcapngFileWriter | undefined;
  /** Set once start() bound everything: a failed start does not log "daemon stopped". */
  #started = false;

  private constructor(o: DaemonOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? systemRandom();
    const records = o.dns?.records ?? [];
    this.#createStack = o.createStack ?? ((config, deps) => new NodeStack(config, deps, { dnsUpstreams: this.#dnsUpstreams, dnsRecords: records }));
    this.#maxSessions = o.maxSessions ?? DEFAULT_MAX_SESSIONS;
  }

  /** The upstreams the DNS forwarder uses now. */
  get dnsUpstreams(): readonly Endpoint[] {
    return this.#dnsUpstreams;
  }

  /** Fixed upstreams, or the nameservers of resolv.conf, followed for changes. */
  #startDns(): void {
    const dns = this.#o.dns ?? { upstreams: undefined, resolvConf: '/etc/resolv.conf', records: [] };
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
        for (const s of this.#sessions) {
          s.stack.setDnsUpstreams?.(list);
          s.poke();
        }
      },
      onError: (code) => {
        this.#o.log.warn({ resolvConf: dns.resolvConf, code }, 'cannot read resolv.conf: DNS queries get SERVFAIL until it is readable');
      },
    });
    this.#dnsUpstreams = this.#resolvConf.start();
    this.#o.log.info({ resolvConf: dns.resolvConf, upstreams: show(this.#dnsUpstreams), skipped: this.#resolvConf.conf.skipped }, 'dns upstreams (resolv.conf)');
  }

  /** Gives the --hostfwd listeners to `s` when nobody holds them. */
  #claimForwards(s: Session): void {
    if (this.#forwardOwner !== undefined || this.#forwardListeners.length === 0 || !(s.stack instanceof NodeStack)) return;
    this.#forwardOwner = s;
    for (const l of this.#forwardListeners) l.attach(s.stack);
    this.#o.log.info({ session: s.id, forwards: [...new Set(this.#forwardListeners.map((l) => l.rule.text))] }, 'port forwards attached to session');
  }

  #releaseForwards(s: Session): void {
    if (this.#forwardOwner !== s) return;
    this.#forwardOwner = undefined;
    for (const l of this.#forwardListeners) l.attach(undefined);
    // The next live session, if any, takes them over.
    for (const next of this.#sessions) {
      this.#claimForwards(next);
      if (this.#forwardOwner !== undefined) break;
    }
  }

  /**
   * Binds every listener (all or none: a failure closes those already bound and rethrows).
   * Failures are StartErrors naming the step: `cannot listen on ws 127.0.0.1:8080: …`.
   */
  static async start(o: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(o);
    const accept: AcceptLink = (link) => d.#accept(link);
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
      for (const rule of o.forwards ?? []) {
        const l = rule.protocol === 'tcp' ? new TcpForwardListener(rule, log) : new UdpForwardListener(rule, log);
        step = `listen for --hostfwd ${rule.text}`;
        await l.listen();
        d.#forwardListeners.push(l);
      }
      step = 'read the DNS configuration';
      d.#startDns();
      for (const spec of o.listeners) {
        step = `listen on ${describeSpec(spec)}`;
        switch (spec.kind) {
          case 'ws': {
            const l = await listenWs({ host: spec.host, port: spec.port, log, allowOrigins: spec.allowOrigins ?? [] });
            l.route('/', wsFramesRoute(accept, log));
            l.route('/e1000', wsE1000Route(accept, log));
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

  #accept(link: GuestLink): LinkHandler {
    if (this.#closing !== undefined) throw new Error('daemon shutting down');
    if (this.#sessions.size >= this.#maxSessions) {
      this.#o.log.warn({ kind: link.kind, peer: link.peer, sessions: this.#sessions.size }, 'session limit reached, link refused');
      throw new Error('session limit reached');
    }
    const s = new Session({
      id: `${this.#idPrefix}-${++this.#serial}`,
      link,
      config: this.#o.network,
      createStack: this.#createStack,
      clock: this.#clock,
      random: this.#random,
      log: this.#o.log,
      pcapDir: this.#o.pcapDir,
      pcapFile: this.#pcapFile,
      onEnded: (x) => {
        this.#sessions.delete(x);
        this.#releaseForwards(x);
      },
    });
    this.#sessions.add(s);
    this.#claimForwards(s);
    return s.handler;
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
      forwards: this.#forwardListeners.map((l) => ({ rule: l.rule.text, counters: l.refusals.counters.snapshot() })),
      ws: this.wsListeners.map((l) => ({ url: l.address.url, counters: l.counters.snapshot() })),
    };
  }

  /** Stops listening, ends every session and closes their capture files. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#resolvConf?.close();
      await Promise.all([...this.#listeners, ...this.#forwardListeners].map((l) => l.close()));
      const live = [...this.#sessions];
      for (const s of live) s.close('daemon shutting down');
      await Promise.all(live.map((s) => s.ended));
      await this.#pcapFile?.close();
      if (this.#pcapFile?.error !== undefined) this.#o.log.warn({ err: this.#pcapFile.error, pcap: this.#pcapFile.path }, 'capture file failed');
      if (this.#started) this.#o.log.info({ sessions: live.length, ...this.#refusalSummary() }, 'daemon stopped');
    })();
    return this.#closing;
  }
}
