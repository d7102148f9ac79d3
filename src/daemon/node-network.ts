/**
 * One virtual network on real host sockets, in one call: what a library user needs to give a
 * guest of their own (an emulator, a test harness) DHCP, DNS, ARP, ping and NAT without the
 * daemon. It is the daemon's per-session wiring without the link: a `Stack` whose host is a
 * `NodeHost` (node:net, node:dgram), the stack's single timer re-armed from `nextDeadline()`
 * after every entry, and every socket released on `close()`.
 *
 * Deliberately thin: the networks issue reshapes `Stack` into a `Network` (segments, several
 * guests) and gives this entry point its final shape; until then it passes through what the
 * stack offers, and `stack` is there for the rest.
 *
 * Not here: port forwards (`--hostfwd`: listeners belong to the daemon), following
 * resolv.conf changes (the nameservers are read once), captures (`pcap.tapLink` wraps a link).
 */
import type { DhcpLease } from '../dhcp/server.js';
import { parseDnsRecordOption, type DnsStaticRecord } from '../dns/records.js';
import { parseDnsUpstream } from '../dns/resolv-conf.js';
import type { Endpoint } from '../net/addr.js';
import { readResolvConf } from '../host/resolv-conf.js';
import type { FlowInfo } from '../nat/flow-table.js';
import { resolveStackConfig, type NetworkOptions, type StackConfig } from '../stack/config.js';
import { ConfigError } from '../util/config-error.js';
import type { Stack, StackStats } from '../stack/stack.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import type { Counters } from '../util/drops.js';
import { NodeStack } from './node-stack.js';
import { Scheduler } from './scheduler.js';

/** The network's options: QEMU's `-netdev user` keys (as `NetworkOptions`) and its DNS. */
export interface NodeNetworkOptions extends NetworkOptions {
  /**
   * The DNS forwarder's upstream resolvers, `ADDR[:PORT]` as `--dns-upstream` takes them, tried
   * in order. Default: the nameservers of `resolvConf`, read once.
   */
  readonly dnsUpstreams?: readonly string[];
  /** Where the default upstreams come from; default `/etc/resolv.conf`. */
  readonly resolvConf?: string;
  /** Names the DNS server answers itself, `NAME=ADDR` as `--dns-record` takes them. */
  readonly dnsRecords?: readonly string[];
}

/** How the network reaches the guest, and (for tests and replay) its time and randomness. */
export interface NodeNetworkIo {
  /** Receives each Ethernet frame for the guest; the frame is the receiver's to keep. */
  emit(frame: Uint8Array): void;
  /** Default: the system's monotonic clock. */
  readonly clock?: Clock;
  /** Default: crypto-random. */
  readonly random?: Random;
}

/** A running network: frames in through `receiveFrame`, out through `emit`. */
export interface NodeNetwork {
  /** The validated configuration (addresses as uint32: `formatIpv4Addr` prints them). */
  readonly config: StackConfig;
  /** One Ethernet frame from the guest. Never throws; ignored after `close()`. */
  receiveFrame(frame: Uint8Array): void;
  /** DHCP leases handed out (and offered). */
  leases(): readonly DhcpLease[];
  /** The live flows of the NAT table. */
  flows(): FlowInfo[];
  /** Drops and refusals, by name (`counters.snapshot()`). */
  readonly counters: Counters;
  /** Frames and bytes each way. */
  readonly stats: StackStats;
  /** The stack underneath, for what this entry point does not pass through. */
  readonly stack: Stack;
  /** True once `close()` ran. */
  readonly closed: boolean;
  /** Ends every flow, releases every host socket and stops the timer. Idempotent. */
  close(): void;
}

/** Option text → the lists NodeStack takes; throws ConfigError naming the option. */
function dnsOf(o: NodeNetworkOptions): { upstreams: Endpoint[]; records: DnsStaticRecord[] } {
  const upstreams =
    o.dnsUpstreams?.map((text) => {
      const e = parseDnsUpstream(text);
      if (typeof e === 'string') throw new ConfigError('dns-upstream', e);
      return e;
    }) ?? [...readResolvConf(o.resolvConf ?? '/etc/resolv.conf').conf.nameservers];
  const records = (o.dnsRecords ?? []).map((text) => {
    const r = parseDnsRecordOption(text);
    if (typeof r === 'string') throw new ConfigError('dns-record', r);
    return r;
  });
  return { upstreams, records };
}

/**
 * Starts one network whose guest flows become host sockets. Throws `ConfigError` (naming the
 * option) for invalid options; everything after that is counted, never thrown.
 */
export function createNodeNetwork(options: NodeNetworkOptions, io: NodeNetworkIo): NodeNetwork {
  const config = resolveStackConfig(options);
  const dns = dnsOf(options);
  const clock = io.clock ?? systemClock;
  let closed = false;
  let stack: NodeStack | undefined = undefined;
  // The scheduler exists before the stack, which may poke while it is built.
  const scheduler = new Scheduler({ advance: () => stack?.advance(), nextDeadline: () => stack?.nextDeadline() }, clock);
  stack = new NodeStack(
    config,
    {
      clock,
      random: io.random ?? systemRandom(),
      emit: (frame) => {
        io.emit(frame);
      },
      poke: () => {
        if (!closed) scheduler.rearm();
      },
    },
    { dnsUpstreams: dns.upstreams, dnsRecords: dns.records },
  );
  const s = stack;
  return {
    config,
    receiveFrame(frame) {
      if (closed) return;
      s.receiveFrame(frame);
      scheduler.rearm();
    },
    leases: () => s.leases(),
    flows: () => s.flows(),
    counters: s.counters,
    stats: s.stats,
    stack: s,
    get closed() {
      return closed;
    },
    close() {
      if (closed) return;
      closed = true;
      scheduler.stop();
      s.dispose();
    },
  };
}
