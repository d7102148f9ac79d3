/**
 * The daemon: binds the listeners, turns every accepted link into a Session with its own
 * Stack, and shuts everything down in order (listeners, then sessions, then capture files).
 * Process concerns (options, signals, exit codes) live in src/cli.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AcceptLink, GuestLink, LinkHandler, Listener, ListenerAddress } from '../link/link.js';
import { listenDgram } from '../link/qemu-dgram.js';
import { listenStream } from '../link/qemu-stream.js';
import { wsFramesRoute } from '../link/ws-frames.js';
import { listenWs, type WsListener } from '../link/ws-server.js';
import type { StackConfig } from '../stack/config.js';
import { Stack } from '../stack/stack.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import type { ListenerSpec } from './listen-spec.js';
import { Session, type StackFactory } from './session.js';

/** The real stack. */
export const createStack: StackFactory = (config, deps) => new Stack(config, deps);

export interface DaemonOptions {
  readonly listeners: readonly ListenerSpec[];
  readonly network: StackConfig;
  readonly log: Logger;
  /** Directory for per-session capture files; created when missing. */
  readonly pcapDir?: string | undefined;
  /** For tests: a different stack. */
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

  private constructor(o: DaemonOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? systemRandom();
    this.#createStack = o.createStack ?? createStack;
    this.#maxSessions = o.maxSessions ?? DEFAULT_MAX_SESSIONS;
  }

  /** Binds every listener (all or none: a failure closes those already bound and rethrows). */
  static async start(o: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(o);
    if (o.pcapDir !== undefined) await mkdir(o.pcapDir, { recursive: true });
    const accept: AcceptLink = (link) => d.#accept(link);
    const log = o.log;
    try {
      for (const spec of o.listeners) {
        switch (spec.kind) {
          case 'ws': {
            const l = await listenWs({ host: spec.host, port: spec.port, log });
            l.route('/', wsFramesRoute(accept, log));
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
      throw e;
    }
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
      onEnded: (x) => this.#sessions.delete(x),
    });
    this.#sessions.add(s);
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

  /** Stops listening, ends every session and closes their capture files. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#listeners.map((l) => l.close()));
      const live = [...this.#sessions];
      for (const s of live) s.close('daemon shutting down');
      await Promise.all(live.map((s) => s.ended));
      this.#o.log.info({ sessions: live.length }, 'daemon stopped');
    })();
    return this.#closing;
  }
}
