/**
 * What a `--hostfwd` listener does with a client it cannot forward: count it under a named
 * reason, and say so in the log — the first refusal at once, then at most one line per
 * LOG_THROTTLE_INTERVAL_MS carrying the total and how many went unlogged — so that a user
 * whose `ssh -p 2222 localhost` is reset learns why, and a client retrying in a loop cannot
 * flood the log. Sans-IO: the caller passes the time, as everything in a network does.
 *
 * One per forward rule, for the daemon's life: the daemon makes it and lends it to whichever
 * network holds the rule (`ForwardPorts` counts there), so the shutdown summary adds up every
 * owner's refusals.
 */
import type { ForwardRule } from './forwards.js';
import { Counters } from '../util/drops.js';
import { LogThrottle } from '../util/log-throttle.js';

/** Why a forward client was refused; also its counter's name. */
export type ForwardRefusal =
  /** No guest session holds the forwards (none connected yet, or the last one ended). */
  | 'hostfwd.no-session'
  /** The rule names no guest address and no guest is known yet (no DHCP lease, or no IPv6 address for a rule on IPv6). */
  | 'hostfwd.no-guest-address'
  /** The session's NAT refused the flow (flow table full, the tuple in use, or a client the guest's family cannot show). */
  | 'hostfwd.refused-by-session';

const WHY: Readonly<Record<ForwardRefusal, string>> = {
  'hostfwd.no-session': 'no guest session is attached',
  'hostfwd.no-guest-address': 'no DHCP lease yet (or none with the rule\'s host name, or no IPv6 address of that guest for a rule on IPv6) and the rule names no guest address',
  'hostfwd.refused-by-session': 'the session refused the flow (flow table full, tuple in use, or an IPv6 client of a guest reached over IPv4)',
};

/** Minimal logger surface (pino's Logger satisfies it). */
export interface ForwardLog {
  warn(obj: object, msg: string): void;
}

/** The counters and the rate-limited log of one forward listener. */
export class ForwardRefusals {
  /** ForwardRefusal counts, plus 'hostfwd.socket-error' (errors of the listening or bound socket). */
  readonly counters = new Counters();
  readonly #rule: ForwardRule;
  readonly #log: ForwardLog | undefined;
  readonly #throttle = new LogThrottle();

  constructor(rule: ForwardRule, log: ForwardLog | undefined) {
    this.#rule = rule;
    this.#log = log;
  }

  /** Clients refused so far, all reasons. */
  get total(): number {
    return this.counters.total('hostfwd.') - this.counters.get('hostfwd.socket-error');
  }

  /** Counts one refused client (`client`: its address, for the log) at `nowMs` and logs it when the rate limit allows. */
  refuse(reason: ForwardRefusal, client: string, nowMs: number): void {
    this.counters.count(reason);
    const now = this.#throttle.hit(nowMs);
    if (now === undefined || this.#log === undefined) return;
    this.#log.warn(
      { rule: this.#rule.text, protocol: this.#rule.protocol, client, reason, why: WHY[reason], refused: this.total, suppressed: now.suppressed },
      'hostfwd: client refused',
    );
  }
}
