/**
 * One virtual network on real host sockets, in one call: what a library user needs to give
 * guests of their own (emulators, a test harness) one Ethernet segment with DHCP, DNS, ARP,
 * ping and NAT without the daemon. It is the daemon's network without the links: a `Network`
 * (switch and stack) whose host is a `NodeHost` (node:net, node:dgram), its single timer
 * re-armed from `nextDeadline()` after every entry, and every socket released on `close()`
 * (`live-network.ts`). The first guest may use `receiveFrame` and `io.emit`; every guest may
 * be a port (`attach`).
 *
 * Not here: port forwards as options (the daemon binds `--hostfwd` ports at start; a library
 * user may open one with `stack.openForward`, its socket bound by the network's host), following
 * resolv.conf changes (the nameservers are read once), captures (`pcap.tapLink` wraps a link).
 */
import type { DhcpLease } from '../dhcp/server.js';
import { parseDnsRecordOption, type DnsStaticRecord } from '../dns/records.js';
import { parseDnsUpstream } from '../dns/resolv-conf.js';
import type { Endpoint } from '../net/addr.js';
import { readResolvConf } from '../host/resolv-conf.js';
import type { FlowInfo, FlowLimits } from '../nat/flow-table.js';
import { resolveStackConfig, type NetworkOptions, type StackConfig } from '../stack/config.js';
import { ConfigError } from '../util/config-error.js';
import type { Stack, StackStats } from '../stack/stack.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import type { Counters } from '../util/drops.js';
import type { Network, NetworkPort, PortSink } from '../network/network.js';
import { LiveNetwork } from './live-network.js';
import type { GuestForwardHandler } from '../host/node-services.js';
import { guestForwardAt, parseGuestForwardServer, type GuestForward } from '../nat/guest-forwards.js';
import { parseIpv4Addr, type Ipv4Addr } from '../util/bytes.js';
import type { Duplex } from 'node:stream';

/** The network's options: QEMU's `-netdev user` keys (as `NetworkOptions`), its DNS and its flow limits. */
export interface NodeNetworkOptions extends NetworkOptions {
  /** For logs; default 'default'. */
  readonly name?: string;
  /** NAT flow table limits, per guest and for the network (default DEFAULT_FLOW_LIMITS). */
  readonly flowLimits?: FlowLimits;
  /**
   * The DNS forwarder's upstream resolvers, `ADDR[:PORT]` as `--dns-upstream` takes them, tried
   * in order. Default: the nameservers of `resolvConf`, read once.
   */
  readonly dnsUpstreams?: readonly string[];
  /** Where the default upstreams come from; default `/etc/resolv.conf`. */
  readonly resolvConf?: string;
  /** Names the DNS server answers itself, `NAME=ADDR` as `--dns-record` takes them. */
  readonly dnsRecords?: readonly string[];
  /**
   * Virtual TCP servers this program serves (guest forwards with a JavaScript target):
   * `server` is `ADDR:PORT` inside the network and outside the DHCP pool; `handler` is called
   * with a duplex stream per guest connection (ending it sends FIN, destroying it resets).
   */
  readonly guestfwdHandlers?: readonly { readonly server: string; readonly handler: GuestForwardHandler }[];
}

/** How the network reaches its first guest, and (for tests and replay) its time and randomness. */
export interface NodeNetworkIo {
  /**
   * Receives each Ethernet frame for the first guest, whose frames go in through
   * `receiveFrame`; the frame is the receiver's to keep. More guests join with `attach`.
   */
  readonly emit?: (frame: Uint8Array) => void;
  /** Default: the system's monotonic clock. */
  readonly clock?: Clock;
  /** Default: crypto-random. */
  readonly random?: Random;
}

/**
 * A running network: the first guest's frames in through `receiveFrame`, out through
 * `io.emit`; every further guest is a port (`attach`), all on one Ethernet segment.
 */
export interface NodeNetwork {
  readonly name: string;
  /** The validated configuration (addresses as uint32: `formatIpv4Addr` prints them). */
  readonly config: StackConfig;
  /** One Ethernet frame from the first guest (`io.emit`'s). Never throws; ignored after `close()` or without `io.emit`. */
  receiveFrame(frame: Uint8Array): void;
  /** Another guest on the segment: its frames in through `port.receive`, out through `sink.send`. */
  attach(sink: PortSink): NetworkPort;
  /** DHCP leases handed out (and offered). */
  leases(): readonly DhcpLease[];
  /** The live flows of the NAT table. */
  flows(): FlowInfo[];
  /** The network's forwards: those opened with `stack.openForward` and the guests' NAT-PMP/PCP mappings (`nat-pmp` option). */
  forwards(): ReturnType<Stack['forwards']>;
  /** Drops and refusals, by name (`counters.snapshot()`). */
  readonly counters: Counters;
  /** Frames and bytes each way. */
  readonly stats: StackStats;
  /** The stack underneath (gateway, DHCP, DNS, NAT), for what this entry point does not pass through. */
  readonly stack: Stack;
  /** The network underneath (switch and stack). */
  readonly network: Network;
  /** True once `close()` ran. */
  readonly closed: boolean;
  /**
   * A TCP connection into a guest's server (`guest` an IPv4 address, text or uint32), with no
   * host port: the stream is the program's end; the guest sees the gateway address connect.
   * Refused or unanswered, the stream errors with ECONNREFUSED or ECONNRESET. Throws a
   * RangeError for an address or port that is not one (a programming error, not the guest's).
   */
  connect(guest: string | Ipv4Addr, port: number): Duplex;
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
export function createNodeNetwork(options: NodeNetworkOptions, io: NodeNetworkIo = {}): NodeNetwork {
  const base = resolveStackConfig(options);
  const handlers = (options.guestfwdHandlers ?? []).map((h, i): GuestForward => {
    const text = `handler at ${h.server}`;
    const server = parseGuestForwardServer(h.server, base, text);
    if (guestForwardAt(base.guestForwards, server.addr, server.port) !== undefined) throw new ConfigError('guestfwd', `'${text}': ${h.server} has a rule already`);
    return { server, target: { kind: 'service', service: `handler:${i}` }, text };
  });
  const config: StackConfig = { ...base, guestForwards: [...(base.guestForwards ?? []), ...handlers] };
  const dns = dnsOf(options);
  const live = new LiveNetwork({
    name: options.name ?? 'default',
    config,
    clock: io.clock ?? systemClock,
    random: io.random ?? systemRandom(),
    dnsUpstreams: dns.upstreams,
    dnsRecords: dns.records,
    ...(options.flowLimits !== undefined && { flowLimits: options.flowLimits }),
  });
  (options.guestfwdHandlers ?? []).forEach((h, i) => { live.host.services.handle(`handler:${i}`, h.handler); });
  const emit = io.emit;
  const first = emit === undefined ? undefined : live.attach({ send: (frame) => { emit(frame); } });
  const stack = live.network.stack;
  return {
    name: live.name,
    config,
    receiveFrame(frame) {
      first?.receive(frame);
    },
    attach: (sink) => live.attach(sink),
    leases: () => live.leases(),
    flows: () => stack.flows(),
    forwards: () => stack.forwards(),
    counters: stack.counters,
    stats: stack.stats,
    stack,
    network: live.network,
    connect(guest, port) {
      const addr = typeof guest === 'number' ? guest : parseIpv4Addr(guest);
      if (addr === undefined || !Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`connect: '${String(guest)}:${port}' is not an IPv4 address and port`);
      return live.connect(addr, port);
    },
    get closed() {
      return live.closed;
    },
    close() {
      live.close();
    },
  };
}
