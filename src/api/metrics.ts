/**
 * GET /metrics: the daemon in Prometheus text exposition (prom-client), every name prefixed
 * `tslirp_`. Nothing is counted twice: each scrape reads the daemon's own counters (sessions'
 * traffic, networks' drop counters, flow tables, DNS, TCP and TFTP statistics) through
 * DaemonControl, so the data path carries no metric code of its own.
 *
 * Counters must not go down while the daemon runs; sessions and networks come and go, so
 * what an ended session had counted is added to running totals when it leaves
 * ('session.down'). A shared, undeclared network's own counters (its gateway's drops, DNS,
 * TCP) go with it when its last guest leaves: those series may then step back, which
 * Prometheus' rate() takes for a counter reset.
 *
 * Drop counters are one metric, `tslirp_drops_total{reason}`: the reason is the daemon's
 * counter name, `layer.reason` (`ipv4.bad-checksum`, `udp.flow-evicted`, `hostfwd.no-session`,
 * `capture.dropped`, …), always one of the fixed list DROP_REASONS (util/drop-reasons.ts,
 * README "Drop reasons") — never taken from traffic — summed over the live networks, the live
 * sessions' links, the sessions that ended, the forwards, the daemon's refused links and the
 * API. The few events counted in the same bags that drop nothing (COUNTED_EVENTS) are
 * `tslirp_gateway_events_total{event}`.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { DaemonControl } from '../daemon/control.js';
import type { Session } from '../daemon/session.js';
import { DNS_LATENCY_BUCKETS_MS } from '../dns/forwarder.js';
import type { TftpStats } from '../tftp/server.js';
import { COUNTED_EVENTS, isDropReason, type Counters } from '../util/drops.js';
import type { Route } from './server.js';

const add = (into: Map<string, number>, from: Readonly<Record<string, number>>): void => {
  for (const [k, v] of Object.entries(from)) into.set(k, (into.get(k) ?? 0) + v);
};

/** A session's link-side drops (on a private network its drops() holds the network's too, counted with the network). */
function linkDrops(s: Session): Record<string, number> {
  const all = s.drops();
  if (!s.privateNetwork) return all;
  const net = s.network.counters();
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(all)) if (v - (net[k] ?? 0) > 0) out[k] = v - (net[k] ?? 0);
  return out;
}

const NO_TFTP: Readonly<TftpStats> = { requests: 0, completed: 0, failed: 0, retransmitted: 0, bytesSent: 0 };
const addTftp = (into: TftpStats, from: Readonly<TftpStats> | undefined): void => {
  if (from === undefined) return;
  for (const k of Object.keys(NO_TFTP) as (keyof TftpStats)[]) into[k] += from[k];
};

type Traffic = Session['traffic'];
const TRAFFIC_KEYS: readonly (keyof Traffic)[] = ['fromGuestFrames', 'fromGuestBytes', 'toGuestFrames', 'toGuestBytes'];

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #control: DaemonControl;
  /** What ended sessions counted: traffic and drops. */
  readonly #ended: Traffic = { fromGuestFrames: 0, fromGuestBytes: 0, toGuestFrames: 0, toGuestBytes: 0 };
  readonly #endedDrops = new Map<string, number>();
  readonly #endedTcp = new Map<string, number>();
  readonly #endedTftp: TftpStats = { ...NO_TFTP };
  readonly #onDown = (s: Session): void => {
    for (const k of TRAFFIC_KEYS) this.#ended[k] += s.traffic[k];
    add(this.#endedDrops, s.privateNetwork ? s.drops() : linkDrops(s));
    // A private network closes with its session: keep its TCP events and TFTP statistics.
    if (s.privateNetwork) {
      add(this.#endedTcp, s.network.tcpStats());
      addTftp(this.#endedTftp, s.network.tftpStats?.());
    }
  };

  constructor(control: DaemonControl, apiCounters: Counters) {
    this.#control = control;
    control.events.on('session.down', this.#onDown);
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'tslirp_' });
    // Gauges whose names end in _total, which Prometheus reserves for counters (promtool says so).
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) r.removeSingleMetric(`tslirp_nodejs_${name}`);
    /** A counter read whole at each scrape: one series per `[label value, count]` that `read` gives, in its order. */
    const labelledCounter = (name: string, help: string, label: string, read: () => Iterable<readonly [string, number]>): void => {
      new Counter({
        name, help, labelNames: [label], registers: [r],
        collect() {
          this.reset();
          for (const [value, n] of read()) this.inc({ [label]: value }, n);
        },
      });
    };
    /** A counter without labels read whole at each scrape. */
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({ name, help, registers: [r], collect() { this.reset(); this.inc(read()); } });
    };
    const c = control;
    const live = (): Session[] => c.sessions.filter((s) => !s.closed);
    new Gauge({ name: 'tslirp_sessions', help: 'Guest sessions connected now', registers: [r], collect() { this.set(live().length); } });
    new Gauge({ name: 'tslirp_networks', help: 'Live networks (declared, joined and private)', registers: [r], collect() { this.set(c.networks.filter((n) => !n.closed).length); } });
    new Gauge({
      name: 'tslirp_flows', help: 'NAT flows now, by protocol and state (TCP: RFC 9293 state names)', labelNames: ['protocol', 'state'], registers: [r],
      collect() {
        this.reset();
        for (const n of c.networks) if (!n.closed) for (const f of n.network.stack.flows()) this.inc({ protocol: f.protocol, state: f.state });
      },
    });
    new Gauge({ name: 'tslirp_leases', help: 'Bound DHCP leases', registers: [r], collect() { this.set(c.networks.filter((n) => !n.closed).reduce((t, n) => t + n.leases().filter((l) => l.state === 'bound').length, 0)); } });
    new Gauge({ name: 'tslirp_forwards', help: 'Forwarded host ports (listening sockets)', registers: [r], collect() { this.set(c.forwards().reduce((t, f) => t + f.ports.length, 0)); } });
    const ended = this.#ended;
    const traffic = (key: keyof Traffic): number => ended[key] + live().reduce((t, s) => t + s.traffic[key], 0);
    labelledCounter('tslirp_frames_total', 'Ethernet frames across guest links, by direction (from_guest, to_guest)', 'direction',
      () => [['from_guest', traffic('fromGuestFrames')], ['to_guest', traffic('toGuestFrames')]]);
    labelledCounter('tslirp_bytes_total', 'Ethernet bytes across guest links, by direction (from_guest, to_guest)', 'direction',
      () => [['from_guest', traffic('fromGuestBytes')], ['to_guest', traffic('toGuestBytes')]]);
    const endedDrops = this.#endedDrops;
    /** Every drop counter and counted event, summed over live networks, live sessions' links, ended sessions, forwards, the daemon and the API. */
    const counted = (): Map<string, number> => {
      const all = new Map(endedDrops);
      for (const n of c.networks) if (!n.closed) add(all, n.counters());
      for (const s of live()) add(all, linkDrops(s));
      for (const f of c.forwards()) add(all, f.refusals);
      add(all, c.refusals());
      add(all, apiCounters.snapshot());
      return all;
    };
    labelledCounter('tslirp_drops_total', 'Frames, packets, clients, requests and stream data dropped or refused, by reason (README "Drop reasons": a fixed list)', 'reason',
      () => [...counted()].filter(([reason, v]) => v > 0 && isDropReason(reason)));
    labelledCounter('tslirp_gateway_events_total', 'Events counted beside the drops that drop nothing (NAT-PMP/PCP requests and mappings, router solicitations, MAC moves, impairment duplicates), by event', 'event', () => {
      const all = counted();
      return COUNTED_EVENTS.map((event) => [event, all.get(event) ?? 0] as const);
    });
    const endedTcp = this.#endedTcp;
    const tcp = (): Map<string, number> => {
      const all = new Map(endedTcp);
      for (const n of c.networks) if (!n.closed) add(all, n.tcpStats());
      return all;
    };
    const retransmitKinds: Record<string, string> = { 'tcp.retransmit': 'timeout', 'tcp.fast-retransmit': 'fast', 'tcp.recovery-retransmit': 'recovery', 'tcp.syn-retransmit': 'syn' };
    labelledCounter('tslirp_tcp_retransmissions_total', 'TCP segments the gateway sent again to guests, by kind (timeout, fast, recovery, syn)', 'kind', () => {
      const t = tcp();
      return Object.entries(retransmitKinds).map(([name, kind]) => [kind, t.get(name) ?? 0] as const);
    });
    labelledCounter('tslirp_tcp_events_total', 'TCP events of the NAT that are not drops (flows opened and closed, resets, timeouts), by event', 'event', tcp);
    const dns = (): { queries: number; local: number; forwarded: number; servfail: number; buckets: number[]; sum: number; count: number } => {
      const t = { queries: 0, local: 0, forwarded: 0, servfail: 0, buckets: DNS_LATENCY_BUCKETS_MS.map(() => 0), sum: 0, count: 0 };
      for (const n of c.networks) {
        const s = n.closed ? undefined : n.network.stack.dnsStats();
        if (s === undefined) continue;
        t.queries += s.queries;
        t.local += s.answeredLocally;
        t.forwarded += s.forwarded;
        t.servfail += s.servfail;
        s.upstreamLatencyBuckets.forEach((v, i) => { t.buckets[i]! += v; });
        t.sum += s.upstreamLatencySumMs;
        t.count += s.upstreamLatencyCount;
      }
      return t;
    };
    labelledCounter('tslirp_dns_queries_total', 'DNS queries from guests, by outcome (answered_locally, forwarded, servfail)', 'outcome', () => {
      const t = dns();
      return [['answered_locally', t.local], ['forwarded', t.forwarded], ['servfail', t.servfail]];
    });
    const endedTftp = this.#endedTftp;
    const tftp = (): TftpStats => {
      const t = { ...endedTftp };
      for (const n of c.networks) if (!n.closed) addTftp(t, n.network.stack.tftpStats());
      return t;
    };
    counter('tslirp_tftp_requests_total', 'TFTP read requests the gateway\'s server accepted (--tftp)', () => tftp().requests);
    labelledCounter('tslirp_tftp_transfers_total', 'TFTP transfers that ended, by outcome (completed: last block acknowledged; failed: timed out, error from either side, or closed)', 'outcome', () => {
      const t = tftp();
      return [['completed', t.completed], ['failed', t.failed]];
    });
    counter('tslirp_tftp_retransmitted_blocks_total', 'TFTP DATA blocks (or OACKs) sent again after a timeout or a partial window', () => tftp().retransmitted);
    counter('tslirp_tftp_data_sent_bytes_total', 'TFTP DATA payload bytes sent to guests, retransmissions included', () => tftp().bytesSent);
    // A histogram read from the forwarders' own buckets (prom-client's Histogram only observes).
    const latency = {
      name: 'tslirp_dns_upstream_latency_seconds',
      help: 'Time from a guest query to its upstream answer',
      type: 'histogram',
      aggregator: 'sum',
      get: () => {
        const t = dns();
        const values = [
          ...DNS_LATENCY_BUCKETS_MS.map((ms, i) => ({ metricName: 'tslirp_dns_upstream_latency_seconds_bucket', labels: { le: String(ms / 1000) }, value: t.buckets[i]! })),
          { metricName: 'tslirp_dns_upstream_latency_seconds_bucket', labels: { le: '+Inf' }, value: t.count },
          { metricName: 'tslirp_dns_upstream_latency_seconds_sum', labels: {}, value: t.sum / 1000 },
          { metricName: 'tslirp_dns_upstream_latency_seconds_count', labels: {}, value: t.count },
        ];
        return { name: latency.name, help: latency.help, type: latency.type, aggregator: latency.aggregator, values };
      },
    };
    r.registerMetric(latency as unknown as Metric);
  }

  /** The /metrics route. */
  route(): Route {
    return {
      method: 'GET',
      path: '/metrics',
      handle: async ({ res }) => {
        const text = await this.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.registry.contentType, 'Cache-Control': 'no-store' });
        res.end(text);
        return undefined;
      },
    };
  }

  close(): void {
    this.#control.events.off('session.down', this.#onDown);
  }
}
