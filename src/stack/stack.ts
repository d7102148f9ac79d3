/**
 * The gateway of one virtual network, sans-IO: frames in, frames out.
 *
 * Theory of operation
 * -------------------
 * The guests see a small LAN: themselves, a gateway at `config.host` (10.0.2.2) and a DNS
 * server at `config.dns` (10.0.2.3), both answering from `config.gatewayMac`. The stack
 * stands behind the gateway port of the network's switch (`src/network/network.ts`): it
 * receives the frames the switch gives that port — those for the gateway MAC and every
 * broadcast and multicast (`receiveFrame`) — and emits the frames the virtual hosts answer
 * with (`deps.emit`), which the switch takes to the guest they are addressed to. Its ARP
 * cache, DHCP pool and NAT flow table hold one entry per guest; it never sees the frames
 * guests exchange among themselves. Time comes from `deps.clock` and is read once per entry
 * point; randomness (the IP identification counter's start, DHCP's choices) from
 * `deps.random`. The shell around it keeps one timer, re-armed from `nextDeadline()` after
 * every entry, and calls `advance()` when it fires.
 *
 * What it does:
 * - Ethernet: accepts frames for the gateway MAC and broadcast, untagged or priority-tagged
 *   (VLAN 0), runts included (v86's virtio-net does not pad to 60 bytes); pads what it sends
 *   to 60 bytes, as hardware does.
 * - ARP (RFC 826): answers requests for the virtual addresses, learns the guest's MACs from
 *   ARP and from IPv4 sources. It never answers for any other address, so a guest's RFC 5227
 *   probe for its own new address gets no false conflict; gratuitous ARP only refreshes.
 * - IPv4 (RFC 791, RFC 1122 §3.2.1): header checks in the parser; sources must be inside the
 *   network (or 0.0.0.0 for DHCP); TTL 0 is dropped; fragments are reassembled with limits
 *   (`src/ipv4/reassembly.ts`).
 * - ICMP (RFC 792): echo replies for the virtual addresses; destination unreachable (port)
 *   for UDP to a virtual address's closed port. Errors about a NAT flow whose host socket
 *   failed (the guest's datagram long gone) come from the flow's tuple (`flowIcmpError`): the
 *   engine gives the transport header to quote, the stack writes the quoted IP header.
 * - DNS: UDP to `config.dns`:53 goes to the DNS forwarder (`src/dns/forwarder.ts`): local
 *   names (`host.tslirp.internal`, `deps.dnsRecords`) are answered here, everything else is
 *   relayed to the upstream resolvers (`deps.dnsUpstreams`, replaced by `setDnsUpstreams`)
 *   through host sockets whose FlowIds come from the flow table's allocator but which are not
 *   NAT flows; SERVFAIL within 5 s when no upstream answers. It keeps working under
 *   `--restrict`, as libslirp's DNS does.
 * - UDP: port 67 goes to the DHCP server (`src/dhcp/server.ts`); everything else to the
 *   gateway and to the outside goes through UDP NAT (`src/nat/udp-flow.ts`) to host sockets
 *   (`deps.host`), with the gateway standing for the host's loopback (`src/nat/policy.ts`).
 * - TCP to the gateway and to the outside goes through the TCP engine (`src/nat/tcp-flow.ts`,
 *   `src/tcp/conn.ts`) to host sockets; every entry point ends with the engine's `flush()`, so a
 *   batch of frames costs each connection one ACK.
 *   TCP to the DNS address's port 53 (DNS over TCP, RFC 7766: a guest retrying a truncated
 *   answer) is NAT to the first upstream resolver, as libslirp does; other ports there get RST.
 * - Port forwards (`--hostfwd`, `src/nat/forward-ports.ts`): `openForward` asks the host for
 *   the rule's listening or bound socket through the seam; its clients arrive as host events
 *   (`tcpAccepted`, `udpReceivedFrom`) and become flows towards the rule's guest, resolved
 *   from the lease table when they arrive.
 * - NAT-PMP and PCP (`config.natPmp`, `src/portmap/server.ts`): UDP to the gateway's port
 *   5351 goes to the mapping server, whose mappings are forwards opened the same way; their
 *   host answers (`tcpListening`, `udpBound`, errors) reach it too, and their expiry is one of
 *   the stack's deadlines. Without the option that port is NAT to the host like any other.
 * - Guest forwards (`config.guestForwards`, `--guestfwd`, `src/nat/guest-forwards.ts`): each
 *   server address answers ARP and ping like the gateway; TCP to its port goes through the TCP
 *   engine to the rule's target (a host socket, or a host service: a command, a handler).
 * - TFTP (`config.tftpRoot`, `src/tftp/server.ts`): UDP to the gateway's port 69, and to the
 *   port of each live transfer, goes to the read-only TFTP server, whose files are read through
 *   the host seam (`fileOpen`/`fileRead`, answered by `fileOpened`/`fileData`/`fileError`).
 *   Without the option port 69 is NAT to the host like any other.
 *
 * What it does not do (yet), deliberately:
 * - ICMP echo to outside hosts is refused with ICMP destination unreachable, code 13
 *   "communication administratively prohibited", so guest programs fail fast instead of timing
 *   out ('icmp.outbound-unsupported': Node has no ICMP sockets). Without `deps.host` every outbound flow is refused so ('nat.no-host').
 * - Local DNS names (`host.tslirp.internal`, `--dns-record`) are not answered over TCP: those
 *   queries reach the upstream. Without `deps.host`, UDP to `config.dns`:53 gets ICMP port
 *   unreachable (no forwarder: a closed network).
 * - It does not route between guests: a datagram sent to the gateway's MAC for another guest
 *   of the segment is dropped ('ipv4.to-other-guest'); guests reach each other directly
 *   through the switch, as on any LAN.
 * - IPv6 (`config.ipv6`, on by default) is the `Ipv6Gateway`'s (`ipv6-gateway.ts`): neighbour
 *   discovery, router advertisements for SLAAC, ICMPv6, and IPv6 TCP/UDP into the same NAT
 *   and DNS forwarder. With `--ipv6 off` IPv6 frames are counted ('ethernet.ipv6-off') and dropped.
 *
 * Layering: the stack imports the protocol folders, `src/nat` and `src/net` (where the seams
 * it implements, `ToGuest` and `HostEvents`, are declared); `host`, the device model, the
 * links, pcap, the daemon and the CLI stand above it, and nothing below imports it (README,
 * "How it is built"; `test/layering.test.ts`).
 *
 * Every refusal is counted in `counters` under its Drop name; nothing the guest sends can
 * make `receiveFrame` throw (a bug that would is caught at the entry, counted as
 * 'stack.internal-error' and kept in `lastError`).
 */
import { ArpCache } from '../arp/cache.js';
import { ARP_LEN, ARP_OP, parseArp, writeArp, type Arp } from '../arp/wire.js';
import { DEFAULT_LEASES_PER_PORT, DhcpServer, type DhcpLease } from '../dhcp/server.js';
import { ETHERNET_HEADER_LEN, ETHERNET_MIN_FRAME, ETHERTYPE, parseEthernet, writeEthernet, type Ethernet } from '../ethernet/wire.js';
import { ICMP_TYPE, icmpLength, parseIcmp, writeIcmp, type Icmp } from '../ipv4/icmp-wire.js';
import { Reassembler } from '../ipv4/reassembly.js';
import { IP_PROTO, IPV4_HEADER_LEN, ipv4Length, parseIpv4, pseudoSum, writeIpv4, writeIpv4Header, type Ipv4 } from '../ipv4/wire.js';
import { parseTcp, TCP_FLAG, tcpLength, writeTcp, type Tcp } from '../tcp/wire.js';
import { parseUdp, udpLength, writeUdp } from '../udp/wire.js';
import { BROADCAST_MAC, type Ipv4Addr, type Mac } from '../util/bytes.js';
import { DNS_PORT, DnsForwarder, type DnsStats } from '../dns/forwarder.js';
import type { DnsStaticRecord } from '../dns/records.js';
import { ipv4Of, type Endpoint, type FlowId, type IpAddr, type Ipv6Addr } from '../net/addr.js';
import type { AcceptId, EgressRefusedFlow, Host, HostEvents, SendBudget, ToGuest, WriteL4 } from '../net/seams.js';
import { ForwardPorts, forwardGuest, type ForwardInfo } from '../nat/forward-ports.js';
import { ForwardRefusals } from '../nat/forward-refusals.js';
import { guestForwardAt } from '../nat/guest-forwards.js';
import type { ForwardRule } from '../nat/forwards.js';
import { FlowTable, type FlowInfo, type FlowLimits } from '../nat/flow-table.js';
import { UdpNat, UNREACHABLE, type UdpMappingInfo } from '../nat/udp-flow.js';
import { TcpEngine, type TcpEngineLimits } from '../nat/tcp-flow.js';
import { PortMapper, type MappingInfo, type PortMappingEvent } from '../portmap/server.js';
import { PORTMAP_PORT } from '../portmap/wire.js';
import { TftpServer, type TftpStats } from '../tftp/server.js';
import type { Clock, Random } from '../util/clock.js';
import { Counters, isDrop } from '../util/drops.js';
import type { StackConfig } from './config.js';
import { Ipv6Gateway } from './ipv6-gateway.js';

export interface StackDeps {
  readonly clock: Clock;
  readonly random: Random;
  /** Receives each frame for the guest. The frame is the receiver's to keep; may be called synchronously from any entry point. */
  emit(frame: Uint8Array): void;
  /**
   * Optional: where to build the next outgoing frame (a region of `length` bytes, zeroed
   * unless `zeroed` is false: GuestLink.allocFrame), so the link sends it without copying.
   * The stack builds one frame at a time and emits it before asking for the next. Without
   * it, or when it returns undefined, frames come from the stack's own zeroed arenas.
   */
  allocFrame?(length: number, zeroed: boolean): Uint8Array | undefined;
  /** Host sockets for NAT. Without one, every outbound flow is refused ('nat.no-host'): a closed, self-contained network. */
  readonly host?: Host;
  /** NAT flow limits per protocol, for the network and per guest address (default DEFAULT_FLOW_LIMITS, src/nat/flow-table.ts). */
  readonly flowLimits?: FlowLimits;
  /** Upstream resolvers of the DNS forwarder, tried in order (resolv.conf or --dns-upstream); later changes through `setDnsUpstreams`. */
  readonly dnsUpstreams?: readonly Endpoint[];
  /** Static records the DNS forwarder answers itself (--dns-record NAME=ADDR). */
  readonly dnsRecords?: readonly DnsStaticRecord[];
  /** TCP buffer, timer and retry limits (src/tcp/conn.ts DEFAULT_TCP_LIMITS, src/nat/tcp-flow.ts). */
  readonly tcpLimits?: Partial<TcpEngineLimits>;
  /** With `config.natPmp`: each NAT-PMP/PCP mapping's life (mapped, renewed, deleted, expired, failed), for the shell's log. */
  readonly onPortMapping?: (e: PortMappingEvent) => void;
  /**
   * Each outbound flow the egress policy refused (counted already), with the network port its
   * guest's frame came through when known (`receiveFrame`'s), for the shell's debug log.
   */
  readonly onEgressRefused?: (e: EgressRefusedFlow, port: number | undefined) => void;
  /**
   * Optional: what one turn of the shell's event loop may send toward guests (TCP data). When
   * it runs out, connections stop sending and `sendsDeferred` says so: the shell then calls
   * `resumeSends` in a later turn. Absent, every entry sends all that windows allow.
   */
  readonly sendBudget?: SendBudget;
}

/** Traffic totals of one stack. */
export interface StackStats {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
}

const EMPTY = new Uint8Array(0);
const BROADCAST_IP: Ipv4Addr = 0xffffffff;
const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
const TTL = 64;
/** 127.0.0.1: where port mappings listen without `--outbound`. */
const LOOPBACK: Ipv4Addr = 0x7f000001;
/** How much of an offending datagram an ICMP error quotes: RFC 1812 §4.3.2.3 allows up to 576 bytes in all. */
const ICMP_ERROR_QUOTE_MAX = 576 - IPV4_HEADER_LEN - 8;

/**
 * Outgoing frames share zeroed arenas of this size. A frame kept long (a guest NIC's bounded
 * queue) keeps its arena alive: 64 KiB bounds that to 64 KiB per kept frame.
 */
const FRAME_ARENA_BYTES = 64 * 1024;

const earliest = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

export class Stack implements ToGuest, HostEvents {
  readonly config: StackConfig;
  /** The port of the frame being received (receiveFrame's), for the DHCP server. */
  #ingress: number | undefined;
  /** Drops and refusals, by Drop name. */
  readonly counters = new Counters();
  readonly stats: StackStats = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0 };
  /** The last internal error caught at an entry point, for the shell to log. */
  lastError: unknown = undefined;
  /** ToGuest.sendBudget: StackDeps.sendBudget. */
  readonly sendBudget: SendBudget | undefined;

  readonly #deps: StackDeps;
  readonly #arp = new ArpCache();
  readonly #reassembler: Reassembler;
  readonly #dhcp: DhcpServer;
  readonly #flows: FlowTable;
  readonly #udp: UdpNat | undefined;
  readonly #tcp: TcpEngine | undefined;
  readonly #dns: DnsForwarder | undefined;
  readonly #forwards: ForwardPorts | undefined;
  /** `config.natPmp`: NAT-PMP and PCP on the gateway's port 5351 (src/portmap/server.ts). */
  readonly #portmap: PortMapper | undefined;
  /** `config.tftpRoot`: the TFTP server on the gateway's port 69 (src/tftp/server.ts). */
  readonly #tftp: TftpServer | undefined;
  readonly #broadcast: Ipv4Addr;
  /** `config.ipv6`: the IPv6 side (NDP, RA, ICMPv6, the way into NAT and DNS). */
  readonly #v6: Ipv6Gateway | undefined;
  #ipId: number;
  /** Where the next outgoing frame is carved from (see #frame). */
  #arena = new Uint8Array(0);
  #arenaAt = 0;
  /** Nesting of `batch` calls: TCP flushes wait until it is back to 0. */
  #batchDepth = 0;

  constructor(config: StackConfig, deps: StackDeps) {
    this.config = config;
    this.#deps = deps;
    this.#reassembler = new Reassembler(this.counters);
    this.#dhcp = new DhcpServer(config, this.counters);
    this.#flows = new FlowTable(deps.flowLimits);
    this.#udp = deps.host === undefined ? undefined : new UdpNat(this.#flows, deps.host, this, config.nat);
    this.sendBudget = deps.sendBudget;
    this.#tcp = deps.host === undefined ? undefined : new TcpEngine(this.#flows, deps.host, this, deps.random, deps.tcpLimits, config.nat);
    this.#dns =
      deps.host === undefined
        ? undefined
        : new DnsForwarder({
            host: deps.host,
            guest: this,
            random: deps.random,
            allocateId: () => this.#flows.allocateId(),
            ...(deps.dnsRecords !== undefined && { records: deps.dnsRecords }),
            ...(deps.dnsUpstreams !== undefined && { upstreams: deps.dnsUpstreams }),
          });
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#forwards =
      deps.host === undefined || udp === undefined || tcp === undefined
        ? undefined
        : new ForwardPorts({
            host: deps.host,
            allocateId: () => this.#flows.allocateId(),
            leases: () => this.leases(),
            guest6: (mac) => this.#v6?.guestAddress(mac),
            forwardTcp: (client, guest, nowMs, local) => tcp.forward(client, guest, nowMs, local),
            udpDeliver: (via, client, data, nowMs) => udp.deliver(via, client, data, nowMs),
            forwardUdp: (client, guest, nowMs, via, local) => udp.forward(client, guest, nowMs, via, local),
          });
    const forwards = this.#forwards;
    this.#portmap =
      config.natPmp !== true || forwards === undefined
        ? undefined
        : new PortMapper(
            {
              externalAddr: config.outbound ?? LOOPBACK,
              counters: this.counters,
              openForward: (rule) => forwards.open(rule, new ForwardRefusals(rule, undefined)),
              closeForward: (id) => {
                forwards.close(id);
              },
              send: (to, payload) => {
                const out = { srcPort: PORTMAP_PORT, dstPort: to.port, payload };
                const pseudo = pseudoSum(config.host, to.addr, IP_PROTO.UDP);
                this.sendIpv4(config.host, to.addr, IP_PROTO.UDP, udpLength(out), (into, at) => writeUdp(out, pseudo, into, at), true);
              },
              ...(deps.onPortMapping !== undefined && { onEvent: deps.onPortMapping }),
            },
            deps.clock.now(),
          );
    this.#tftp =
      config.tftpRoot === undefined || deps.host === undefined
        ? undefined
        : new TftpServer({
            root: config.tftpRoot,
            host: deps.host,
            random: deps.random,
            counters: this.counters,
            allocateId: () => this.#flows.allocateId(),
            mtu: config.mtu,
            send: (to, fromPort, payload) => {
              const out = { srcPort: fromPort, dstPort: to.port, payload };
              const pseudo = pseudoSum(config.host, to.addr, IP_PROTO.UDP);
              this.sendIpv4(config.host, to.addr, IP_PROTO.UDP, udpLength(out), (into, at) => writeUdp(out, pseudo, into, at), true);
            },
          });
    this.#broadcast = (config.net | ~config.netmask) >>> 0;
    this.#ipId = deps.random.u32() & 0xffff;
    this.#v6 =
      config.ipv6 === undefined
        ? undefined
        : new Ipv6Gateway({
            net: config.ipv6, gatewayMac: config.gatewayMac, mtu: config.mtu,
            searchList: config.dnsSearch.length > 0 ? config.dnsSearch : config.domainName === undefined ? [] : [config.domainName],
            counters: this.counters, random: deps.random,
            frame: (toMac, etherType, len, zeroed) => this.#frame(toMac, etherType, len, zeroed),
            send: (frame) => this.#send(frame),
            tcp: this.#tcp, udp: this.#udp, dns: this.#dns,
            ingress: () => this.#ingress, maxLeasesPerPort: config.maxLeasesPerPort ?? DEFAULT_LEASES_PER_PORT, leaseTimeS: config.leaseTimeS,
          });
  }

  /** One frame from the guest. Never throws. */
  /**
   * One frame from the guests. `port`: the network port it came through, when the caller
   * knows (a Network does): the DHCP server limits leases per port.
   */
  receiveFrame(frame: Uint8Array, port?: number): void {
    this.stats.rxFrames++;
    this.stats.rxBytes += frame.length;
    this.#ingress = port;
    this.#guard((nowMs) => this.#ethernetInput(frame, nowMs));
    this.#ingress = undefined;
  }

  /**
   * Runs `body` (typically many `receiveFrame` calls for one link read) as one entry point for
   * TCP: connections flush — send data and at most one ACK each — once, at the end, instead of
   * after every frame. Links that read frames in batches should call it.
   */
  batch(body: () => void): void {
    this.beginBatch();
    try {
      body();
    } finally {
      this.endBatch();
    }
  }

  /**
   * `batch` for shells whose frames arrive in separate callbacks of one I/O event (a socket
   * read delivering many messages): begin at the first frame, end once the event is over
   * (e.g. in a microtask). Every begin needs its end.
   */
  beginBatch(): void {
    this.#batchDepth++;
  }

  endBatch(): void {
    if (this.#batchDepth === 0) return;
    this.#batchDepth--;
    if (this.#batchDepth === 0) this.#guard(() => undefined);
  }

  /** Runs the timers due by now. */
  advance(): void {
    this.#guard((nowMs) => {
      this.#reassembler.expire(nowMs);
      this.#v6?.advance(nowMs);
      this.#udp?.advance(nowMs);
      this.#tcp?.advance(nowMs);
      this.#dns?.advance(nowMs);
      this.#portmap?.advance(nowMs);
      this.#tftp?.advance(nowMs);
    });
  }

  /** Whether TCP data waits for the send budget (StackDeps.sendBudget): call `resumeSends` in a later turn. */
  get sendsDeferred(): boolean {
    return this.#tcp?.sendsDeferred ?? false;
  }

  /** The shell's turn has budget again: connections the budget stopped send on, in turn, as far as it goes. */
  resumeSends(): void {
    this.#guard(() => this.#tcp?.resumeSends());
  }

  /** When `advance` next has work, in clock milliseconds; undefined when idle. */
  nextDeadline(): number | undefined {
    const at = earliest(earliest(earliest(this.#reassembler.nextDeadline(), this.#udp?.nextDeadline()), this.#dns?.nextDeadline()), this.#tcp?.nextDeadline());
    return earliest(earliest(at, this.#portmap?.nextDeadline()), earliest(this.#tftp?.nextDeadline(), this.#v6?.nextDeadline()));
  }

  /**
   * Replaces the DNS forwarder's upstream resolvers (the shell calls it when resolv.conf
   * changes). Queries waiting on a removed upstream move to the new first one.
   */
  setDnsUpstreams(upstreams: readonly Endpoint[]): void {
    this.#guard((nowMs) => this.#dns?.setUpstreams(upstreams, nowMs));
  }

  /** What the DNS forwarder did; undefined without a host (no forwarder). */
  dnsStats(): Readonly<DnsStats> | undefined {
    return this.#dns?.stats;
  }

  /** Releases every host resource (the session ends). */
  close(): void {
    this.#guard(() => {
      this.#portmap?.close();
      this.#tftp?.closeAll();
      this.#forwards?.closeAll();
      this.#dns?.closeAll();
      this.#udp?.closeAll();
      this.#tcp?.closeAll();
    });
  }

  /** What the TFTP server did; undefined without `config.tftpRoot` (or a host). */
  tftpStats(): Readonly<TftpStats> | undefined {
    return this.#tftp?.stats;
  }

  /** The live flows of the NAT table. */
  flows(): FlowInfo[] {
    return this.#flows.list(this.#deps.clock.now());
  }

  /** The UDP NAT's mappings (and forwarded UDP flows): public endpoint, peers, expiry, traffic each way. */
  natMappings(): UdpMappingInfo[] {
    return this.#udp?.mappings(this.#deps.clock.now()) ?? [];
  }

  // --- HostEvents: what host sockets report, routed to the engine owning the flow.

  udpReceived(flow: FlowId, data: Uint8Array): void {
    this.#guard((nowMs) => {
      if (this.#dns?.owns(flow) === true) this.#dns.upstreamReply(flow, data, nowMs);
      else this.#udp?.hostDatagram(flow, data, nowMs);
    });
  }

  udpError(flow: FlowId, code: string): void {
    this.#guard((nowMs) => {
      if (this.#dns?.owns(flow) === true) this.#dns.upstreamError(flow, code, nowMs);
      else if (this.#forwards?.owns(flow) === true) {
        this.#forwards.failed(flow);
        this.#portmap?.failed(flow, nowMs);
      } else this.#udp?.hostError(flow, code);
    });
  }

  tcpConnected(flow: FlowId, local?: Endpoint): void {
    this.#guard((nowMs) => this.#tcp?.onHostConnected(flow, nowMs, local));
  }

  /**
   * Where the host may read `flow`'s next bytes instead of into a buffer of its own: a region of
   * the connection's send queue (ByteQueue.lend), at most `maxBytes`; the read comes back through
   * `tcpData` as usual, and the queue then copies nothing. Undefined: read into your own buffer.
   * A query, not an event: nothing is sent, and it never throws.
   */
  tcpReadBuffer(flow: FlowId, maxBytes: number): Uint8Array | undefined {
    try {
      return this.#tcp?.hostReadBuffer(flow, maxBytes);
    } catch (e) {
      this.counters.count('stack.internal-error');
      this.lastError = e;
      return undefined;
    }
  }

  tcpData(flow: FlowId, data: Uint8Array): void {
    this.#guard((nowMs) => this.#tcp?.onHostData(flow, data, nowMs));
  }

  tcpEnd(flow: FlowId): void {
    this.#guard((nowMs) => this.#tcp?.onHostEnd(flow, nowMs));
  }

  tcpDrained(flow: FlowId): void {
    this.#guard((nowMs) => this.#tcp?.onHostDrained(flow, nowMs));
  }

  tcpError(flow: FlowId, code: string): void {
    this.#guard((nowMs) => this.#tcp?.onHostError(flow, code, nowMs));
  }

  tcpClosed(flow: FlowId): void {
    this.#guard(() => this.#tcp?.onHostClosed(flow));
  }

  tcpListening(listener: FlowId, local: Endpoint): void {
    this.#guard((nowMs) => {
      this.#forwards?.opened(listener, local);
      this.#portmap?.opened(listener, local, nowMs);
    });
  }

  tcpListenError(listener: FlowId, _code: string): void {
    this.#guard((nowMs) => {
      this.#forwards?.failed(listener);
      this.#portmap?.failed(listener, nowMs);
    });
  }

  tcpAccepted(listener: FlowId, conn: AcceptId, client: Endpoint): void {
    const host = this.#deps.host;
    this.#guard((nowMs) => {
      if (this.#forwards === undefined) host?.tcpRefuse(conn);
      else this.#forwards.accepted(listener, conn, client, nowMs);
    });
  }

  udpBound(socket: FlowId, local: Endpoint): void {
    this.#guard((nowMs) => {
      if (this.#udp?.owns(socket) === true) this.#udp.bound(socket, local);
      else {
        this.#forwards?.opened(socket, local);
        this.#portmap?.opened(socket, local, nowMs);
      }
    });
  }

  udpReceivedFrom(socket: FlowId, from: Endpoint, data: Uint8Array): void {
    this.#guard((nowMs) => {
      if (this.#udp?.owns(socket) === true) this.#udp.hostDatagramFrom(socket, from, data, nowMs);
      else this.#forwards?.datagram(socket, from, data, nowMs);
    });
  }

  fileOpened(file: FlowId, size: number): void {
    this.#guard((nowMs) => this.#tftp?.fileOpened(file, size, nowMs));
  }

  fileData(file: FlowId, offset: number, data: Uint8Array): void {
    this.#guard((nowMs) => this.#tftp?.fileData(file, offset, data, nowMs));
  }

  fileError(file: FlowId, code: string): void {
    this.#guard((nowMs) => this.#tftp?.fileError(file, code, nowMs));
  }

  // --- Port forwards (src/nat/forward-ports.ts).

  /**
   * Opens `rule`'s socket through the host (Host.tcpListen / udpBind); its clients become
   * flows towards the rule's guest, refusals counted in `refusals`. Returns the socket's id
   * for `closeForward`; undefined without a host.
   */
  openForward(rule: ForwardRule, refusals: ForwardRefusals): FlowId | undefined {
    let id: FlowId | undefined;
    this.#guard(() => {
      id = this.#forwards?.open(rule, refusals);
    });
    return id;
  }

  /** Releases a forward's socket (Host.close); its flows live on until they end. */
  closeForward(id: FlowId): void {
    this.#guard(() => this.#forwards?.close(id));
  }

  /**
   * Every forward of the network, `--hostfwd` rules and NAT-PMP/PCP mappings together; a
   * mapping's entry carries its origin and expiry.
   */
  forwards(): (ForwardInfo & { mapping?: { readonly origin: 'natpmp' | 'pcp'; readonly expiresAtMs: number } })[] {
    const mappings = new Map((this.#portmap?.list() ?? []).map((m) => [m.id, m]));
    return (this.#forwards?.list() ?? []).map((f) => {
      const m = mappings.get(f.id);
      return m === undefined ? f : { ...f, mapping: { origin: m.origin, expiresAtMs: m.expiresAtMs } };
    });
  }

  /** The port mappings guests made with NAT-PMP or PCP (each also a forward); empty without `--nat-pmp on`. */
  portMappings(): MappingInfo[] {
    return this.#portmap?.list() ?? [];
  }

  /** The endpoint a forward's socket is bound to, once the host confirmed it. */
  forwardLocal(id: FlowId): Endpoint | undefined {
    return this.#forwards?.local(id);
  }

  /** The guest address `rule` delivers to now (forward-ports.ts `forwardGuest`). */
  forwardGuest(rule: ForwardRule): IpAddr | undefined {
    return forwardGuest(rule, this.leases(), (mac) => this.#v6?.guestAddress(mac));
  }

  /**
   * A host client of a TCP forward: opens a connection to `guest` (a SYN goes out now).
   * Returns the flow the host socket is to be adopted into, or undefined when the flow table
   * is full (or there is no host): the caller then refuses the client. The socket must stay
   * paused until the stack resumes it (Host.tcpPause(flow, false)) once the guest's
   * handshake completes.
   */
  forwardTcp(client: Endpoint, guest: Endpoint): FlowId | undefined {
    let flow: FlowId | undefined;
    this.#guard((nowMs) => {
      flow = this.#tcp?.forward(client, guest, nowMs);
    });
    return flow;
  }

  /**
   * A new client of a UDP forward whose bound socket is `via`: opens a UDP flow towards
   * `guest` whose host side is the client, the guest's replies sent through `via`
   * (Host.udpSendTo). Returns the flow, or undefined (no host, tuple taken); the caller then
   * drops the datagram.
   */
  forwardUdp(client: Endpoint, guest: Endpoint, via: FlowId): FlowId | undefined {
    let flow: FlowId | undefined;
    this.#guard((nowMs) => {
      flow = this.#udp?.forward(client, guest, nowMs, via);
    });
    return flow;
  }

  /** TCP events that are not drops (flows opened/closed, retransmissions, resets, window probes …), by name. */
  tcpStats(): Record<string, number> {
    return this.#tcp?.stats.snapshot() ?? {};
  }

  /** Bytes all TCP connections hold (queued host data and host socket buffers); 0 without a host. */
  tcpHeldBytes(): number {
    return this.#tcp?.heldBytes ?? 0;
  }

  /** Runs one entry point with the time read once; a bug of ours is counted, never thrown at the shell. */
  #guard(body: (nowMs: number) => void): void {
    try {
      // Whole milliseconds: every deadline and stamp below (a TCP connection keeps a dozen)
      // is then a small integer V8 stores in the field itself, where a fractional clock
      // value is a boxed heap number of its own (bench/scale.ts, memory per idle flow).
      const nowMs = Math.floor(this.#deps.clock.now());
      this.#v6?.tick(nowMs);
      body(nowMs);
      // ACK coalescing: whatever the entry touched, each TCP connection sends its data and at most one ACK now.
      if (this.#batchDepth === 0) this.#tcp?.flush(nowMs);
    } catch (e) {
      this.counters.count('stack.internal-error');
      this.lastError = e;
    }
  }

  /** The DHCP lease table. */
  leases(): readonly DhcpLease[] {
    return this.#dhcp.leases(this.#deps.clock.now());
  }

  /** `--max-session-leases` replaced by a reload: bounds new leases from now on. */
  setMaxSessionLeases(n: number): void {
    this.#dhcp.setMaxLeasesPerPort(n);
  }

  /**
   * The flow limits and new-flow rate replaced by a reload (`FlowTable.setLimits`): for the
   * flows opened from now on; open flows go on. Throws a RangeError for a limit below 1.
   */
  setFlowLimits(limits: FlowLimits): void {
    this.#flows.setLimits(limits);
  }

  /** `--dns-record` replaced by a reload: answers queries from now on. */
  setDnsRecords(records: readonly DnsStaticRecord[]): void {
    this.#dns?.setRecords(records);
  }

  /** Known guest neighbours (IPv4 → MAC). */
  neighbours(): IterableIterator<[Ipv4Addr, Mac]> {
    return this.#arp.entries();
  }

  /** Known IPv6 guest neighbours (address → MAC); none with IPv6 off. */
  neighbours6(): IterableIterator<[Ipv6Addr, Mac]> {
    return this.#v6?.neighbours() ?? new Map<Ipv6Addr, Mac>().entries();
  }

  #isVirtual(a: Ipv4Addr): boolean {
    return a === this.config.host || a === this.config.dns || (this.config.guestForwards?.some((f) => f.server.addr === a) ?? false);
  }

  #inNet(a: Ipv4Addr): boolean {
    return ((a & this.config.netmask) >>> 0) === this.config.net;
  }

  #ethernetInput(frame: Uint8Array, nowMs: number): void {
    const eth = parseEthernet(frame);
    if (isDrop(eth)) return this.counters.count(eth);
    if (eth.vlan !== undefined && (eth.vlan & 0x0fff) !== 0) return this.counters.count('ethernet.vlan-unsupported');
    switch (eth.etherType) {
      case ETHERTYPE.ARP:
        return this.#arpInput(eth, nowMs);
      case ETHERTYPE.IPV4:
        if (!this.#forUs(eth.dst)) return this.counters.count('ethernet.not-for-us');
        return this.#ipv4Input(eth, nowMs);
      case ETHERTYPE.IPV6:
        if (this.#v6 === undefined) return this.counters.count('ethernet.ipv6-off');
        return this.#v6.input(eth, nowMs);
      default:
        return this.counters.count('ethernet.unknown-ethertype');
    }
  }

  #forUs(dst: Uint8Array): boolean {
    const g = this.config.gatewayMac;
    if (dst[0] === g[0] && dst[1] === g[1] && dst[2] === g[2] && dst[3] === g[3] && dst[4] === g[4] && dst[5] === g[5]) return true;
    return dst[0] === 0xff && dst[1] === 0xff && dst[2] === 0xff && dst[3] === 0xff && dst[4] === 0xff && dst[5] === 0xff;
  }

  /**
   * Learns `mac` as `ip`'s neighbour unless `ip` is bound by a DHCP lease to another MAC, and
   * says whether it did. On a shared network one guest's ARP or IPv4 source must not redirect
   * the gateway's frames for another guest's leased address (a random-sender ARP flood did, and
   * stalled that guest's transfers behind backed-off retransmissions). Only a new or changed
   * mapping asks the lease table, so the per-packet refresh stays one lookup. Guests with
   * static addresses have no lease and are learned as before.
   */
  #learn(ip: Ipv4Addr, mac: Uint8Array, nowMs: number): boolean {
    if (this.#arp.refresh(ip, mac)) return true;
    if (this.#dhcp.boundToOther(ip, mac, nowMs)) return false;
    this.#arp.learn(ip, mac);
    return true;
  }

  #arpInput(eth: Ethernet, nowMs: number): void {
    const a = parseArp(eth.payload);
    if (isDrop(a)) return this.counters.count(a);
    if ((a.senderMac[0]! & 1) !== 0) return this.counters.count('arp.multicast-sender');
    if (a.senderIp !== 0) {
      if (this.#isVirtual(a.senderIp)) return this.counters.count('arp.address-conflict');
      if (this.#inNet(a.senderIp) && a.senderIp !== this.config.net && a.senderIp !== this.#broadcast) {
        if (!this.#learn(a.senderIp, a.senderMac, nowMs)) return this.counters.count('arp.lease-conflict');
      }
    }
    // Requests for our addresses get a reply, probes (sender 0.0.0.0) included: a guest probing
    // the gateway's address must learn it is taken. Gratuitous ARP (sender = target) is not a question.
    if (a.op !== ARP_OP.REQUEST || !this.#isVirtual(a.targetIp) || a.senderIp === a.targetIp) return;
    const reply: Arp = { op: ARP_OP.REPLY, senderMac: this.config.gatewayMac, senderIp: a.targetIp, targetMac: a.senderMac, targetIp: a.senderIp };
    const frame = this.#frame(a.senderMac, ETHERTYPE.ARP, ARP_LEN);
    writeArp(reply, frame, ETHERNET_HEADER_LEN);
    this.#send(frame);
  }

  #ipv4Input(eth: Ethernet, nowMs: number): void {
    let p = parseIpv4(eth.payload);
    if (isDrop(p)) return this.counters.count(p);
    const unconfigured = p.src === 0;
    if (!unconfigured && (!this.#inNet(p.src) || p.src === this.config.net || p.src === this.#broadcast || this.#isVirtual(p.src)))
      return this.counters.count('ipv4.bad-source');
    if ((eth.src[0]! & 1) !== 0) return this.counters.count('ipv4.multicast-source-mac');
    if (p.ttl === 0) return this.counters.count('ipv4.zero-ttl');
    if (!unconfigured) {
      if (!this.#learn(p.src, eth.src, nowMs)) return this.counters.count('ipv4.lease-conflict');
    }
    if (p.moreFragments || p.fragmentOffset !== 0) {
      const whole = this.#reassembler.add(p, nowMs);
      if (whole === undefined) return;
      if (isDrop(whole)) return this.counters.count(whole);
      p = whole;
    }
    const broadcast = p.dst === BROADCAST_IP || p.dst === this.#broadcast;
    if (unconfigured && !(broadcast && p.protocol === IP_PROTO.UDP)) return this.counters.count('ipv4.bad-source');
    if (broadcast) {
      if (p.protocol === IP_PROTO.UDP) return this.#udpInput(eth, p, nowMs, true);
      return this.counters.count('ipv4.broadcast-ignored');
    }
    if (p.dst >= 0xe0000000) return this.counters.count('ipv4.multicast-unsupported');
    if (this.#isVirtual(p.dst)) {
      switch (p.protocol) {
        case IP_PROTO.ICMP:
          return this.#icmpInput(eth, p);
        case IP_PROTO.UDP:
          return this.#udpInput(eth, p, nowMs, false);
        case IP_PROTO.TCP:
          return this.#tcpInput(eth, p, nowMs);
        default:
          return this.counters.count('ipv4.unknown-protocol');
      }
    }
    if (this.#inNet(p.dst)) return this.counters.count('ipv4.to-other-guest');
    this.#outbound(p, nowMs);
  }

  /** A datagram for the outside world: NAT where an engine exists, otherwise refused. */
  #outbound(p: Ipv4, nowMs: number): void {
    if (p.protocol === IP_PROTO.TCP && this.#tcp !== undefined) {
      const t = parseTcp(p.payload, pseudoSum(p.src, p.dst, IP_PROTO.TCP));
      if (isDrop(t)) return this.counters.count(t);
      return this.#tcp.input(p, t, nowMs);
    }
    if (p.protocol === IP_PROTO.UDP && this.#udp !== undefined) {
      const u = parseUdp(p.payload, pseudoSum(p.src, p.dst, IP_PROTO.UDP));
      if (isDrop(u)) return this.counters.count(u);
      if (!this.#udp.input(p, u, nowMs)) this.#icmpError(p, ICMP_TYPE.DEST_UNREACHABLE, UNREACHABLE.ADMIN_PROHIBITED);
      return;
    }
    // Node has no raw or ICMP sockets: echo to outside hosts cannot be forwarded.
    this.counters.count(this.#udp === undefined ? 'nat.no-host' : p.protocol === IP_PROTO.ICMP ? 'icmp.outbound-unsupported' : 'ipv4.outbound-unsupported');
    this.#icmpError(p, ICMP_TYPE.DEST_UNREACHABLE, UNREACHABLE.ADMIN_PROHIBITED);
  }

  #icmpInput(eth: Ethernet, p: Ipv4): void {
    const m = parseIcmp(p.payload);
    if (isDrop(m)) return this.counters.count(m);
    if (m.type !== ICMP_TYPE.ECHO_REQUEST) return this.counters.count('icmp.ignored-type');
    if (m.code !== 0) return this.counters.count('icmp.bad-echo-code');
    const reply: Icmp = { type: ICMP_TYPE.ECHO_REPLY, code: 0, rest: m.rest, payload: m.payload };
    this.#sendIpv4To(eth.src, p.dst, p.src, IP_PROTO.ICMP, icmpLength(reply), (into, at) => writeIcmp(reply, into, at));
  }

  #udpInput(eth: Ethernet, p: Ipv4, nowMs: number, broadcast: boolean): void {
    const u = parseUdp(p.payload, pseudoSum(p.src, p.dst, IP_PROTO.UDP));
    if (isDrop(u)) return this.counters.count(u);
    if (u.dstPort === DHCP_SERVER_PORT && (broadcast || p.dst === this.config.host)) {
      const reply = this.#dhcp.receive(u.payload, eth.src, p.src, nowMs, this.#ingress);
      if (reply === undefined) return;
      // A bound lease names the guest's MAC: flows towards it (port forwards) need no ARP first.
      const bound = this.#dhcp.addressOf(eth.src, nowMs);
      if (bound !== undefined) this.#arp.learn(bound, eth.src);
      const out = { srcPort: DHCP_SERVER_PORT, dstPort: DHCP_CLIENT_PORT, payload: reply.message };
      const pseudo = pseudoSum(this.config.host, reply.toIp, IP_PROTO.UDP);
      this.#sendIpv4To(reply.toMac, this.config.host, reply.toIp, IP_PROTO.UDP, udpLength(out), (into, at) => writeUdp(out, pseudo, into, at));
      return;
    }
    if (broadcast) return this.counters.count('udp.broadcast-ignored');
    if (p.dst === this.config.dns && u.dstPort === DNS_PORT && this.#dns !== undefined) return this.#dns.query(p, u, nowMs);
    if (u.dstPort === PORTMAP_PORT && p.dst === this.config.host && this.#portmap !== undefined)
      return this.#portmap.request({ addr: p.src, port: u.srcPort }, u.payload, nowMs);
    if (p.dst === this.config.host && this.#tftp?.owns(u.dstPort) === true) return this.#tftp.receive({ addr: p.src, port: u.srcPort }, u.dstPort, u.payload, nowMs);
    // The gateway address stands for the host: everything but DHCP goes through NAT to its loopback.
    if (p.dst === this.config.host && this.#udp !== undefined) {
      if (!this.#udp.input(p, u, nowMs)) this.#icmpError(p, ICMP_TYPE.DEST_UNREACHABLE, UNREACHABLE.ADMIN_PROHIBITED);
      return;
    }
    this.counters.count('udp.no-service');
    this.#icmpErrorTo(eth.src, p, ICMP_TYPE.DEST_UNREACHABLE, UNREACHABLE.PORT);
  }

  /**
   * TCP to a virtual address: the gateway's goes through the TCP engine to the host's loopback,
   * the DNS address's port 53 (DNS over TCP) through it to the first upstream resolver; any
   * other port answers as a closed port (RFC 9293 §3.10.7.1).
   */
  #tcpInput(eth: Ethernet, p: Ipv4, nowMs: number): void {
    const t = parseTcp(p.payload, pseudoSum(p.src, p.dst, IP_PROTO.TCP));
    if (isDrop(t)) return this.counters.count(t);
    // The gateway stands for the host; DNS over TCP goes to the upstream resolver (policy.ts).
    if (this.#tcp !== undefined && (p.dst === this.config.host || (p.dst === this.config.dns && t.dstPort === DNS_PORT) || guestForwardAt(this.config.guestForwards, p.dst, t.dstPort) !== undefined))
      return this.#tcp.input(p, t, nowMs);
    this.counters.count('tcp.no-service');
    if ((t.flags & TCP_FLAG.RST) !== 0) return;
    const segLen = t.payload.length + ((t.flags & TCP_FLAG.SYN) !== 0 ? 1 : 0) + ((t.flags & TCP_FLAG.FIN) !== 0 ? 1 : 0);
    const hasAck = (t.flags & TCP_FLAG.ACK) !== 0;
    const rst: Tcp = {
      srcPort: t.dstPort,
      dstPort: t.srcPort,
      seq: hasAck ? t.ack : 0,
      ack: hasAck ? 0 : (t.seq + segLen) >>> 0,
      flags: hasAck ? TCP_FLAG.RST : TCP_FLAG.RST | TCP_FLAG.ACK,
      window: 0,
      urgent: 0,
      options: {},
      payload: EMPTY,
    };
    const pseudo = pseudoSum(p.dst, p.src, IP_PROTO.TCP);
    this.#sendIpv4To(eth.src, p.dst, p.src, IP_PROTO.TCP, tcpLength(rst), (into, at) => writeTcp(rst, pseudo, into, at));
  }

  /** An ICMP error about a datagram the guest sent, to the MAC its source resolves to. */
  #icmpError(original: Ipv4, type: number, code: number): void {
    const mac = this.#resolve(original.src);
    if (mac !== undefined) this.#icmpErrorTo(mac, original, type, code);
  }

  /**
   * An ICMP error about datagram `p` (RFC 1122 §3.2.2: never about an ICMP error, a broadcast,
   * a non-initial fragment or an unconfigured source), from the address it was sent to.
   */
  #icmpErrorTo(toMac: Uint8Array, p: Ipv4, type: number, code: number): void {
    if (p.fragmentOffset !== 0 || p.src === 0) return;
    if (p.protocol === IP_PROTO.ICMP) {
      const inner = parseIcmp(p.payload);
      if (isDrop(inner) || (inner.type !== ICMP_TYPE.ECHO_REQUEST && inner.type !== ICMP_TYPE.ECHO_REPLY)) return;
    }
    // Quote the header as the guest sent it, then as much payload as fits.
    const quoted = new Uint8Array(Math.min(ipv4Length(p), ICMP_ERROR_QUOTE_MAX));
    const whole = new Uint8Array(ipv4Length(p));
    writeIpv4(p, whole, 0);
    quoted.set(whole.subarray(0, quoted.length));
    const err: Icmp = { type, code, rest: 0, payload: quoted };
    this.#sendIpv4To(toMac, p.dst, p.src, IP_PROTO.ICMP, icmpLength(err), (into, at) => writeIcmp(err, into, at));
  }

  // --- ToGuest: what the engines use to reach the guest.

  sendIpv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, l4Length: number, writeL4: WriteL4, writesEveryByte = false): void {
    const mac = this.#resolve(dst);
    if (mac !== undefined) this.#sendIpv4To(mac, src, dst, protocol, l4Length, writeL4, writesEveryByte);
  }

  sendIp(src: IpAddr, dst: IpAddr, protocol: number, l4Length: number, writeL4: WriteL4, writesEveryByte = false): void {
    if (typeof src === 'number' && typeof dst === 'number') return this.sendIpv4(src, dst, protocol, l4Length, writeL4, writesEveryByte);
    if (typeof src !== 'string' || typeof dst !== 'string') return this.counters.count('stack.mixed-family');
    if (this.#v6 === undefined) return this.counters.count('ethernet.ipv6-off');
    this.#v6.send(src, dst, protocol, l4Length, writeL4, writesEveryByte);
  }

  flowIcmpError(guest: Endpoint, remote: Endpoint, protocol: number, transportHeader: Uint8Array, type: number, code: number): void {
    if (typeof guest.addr === 'string' && typeof remote.addr === 'string' && this.#v6 !== undefined)
      return this.#v6.flowError(guest, remote, protocol, transportHeader, type, code);
    const src = ipv4Of(guest.addr);
    const dst = ipv4Of(remote.addr);
    if (src === undefined || dst === undefined) return this.counters.count('icmp.flow-mixed-family');
    if (src === 0) return; // RFC 1122 §3.2.2: never about an unconfigured source (as #icmpErrorTo)
    const mac = this.#resolve(src);
    if (mac === undefined) return;
    // The guest's datagram as the flow's first one looked: no options, id 0, TTL 64, DF for
    // TCP (guests do path MTU discovery on TCP) and not for UDP; then the quoted L4 bytes.
    const header: Ipv4 = {
      dscpEcn: 0, id: 0, dontFragment: protocol === IP_PROTO.TCP, moreFragments: false, fragmentOffset: 0, ttl: TTL,
      protocol, src, dst, options: EMPTY, payload: EMPTY,
    };
    const quoted = new Uint8Array(Math.min(IPV4_HEADER_LEN + transportHeader.length, ICMP_ERROR_QUOTE_MAX));
    writeIpv4Header(header, transportHeader.length, quoted, 0);
    quoted.set(transportHeader.subarray(0, quoted.length - IPV4_HEADER_LEN), IPV4_HEADER_LEN);
    const err: Icmp = { type, code, rest: 0, payload: quoted };
    this.#sendIpv4To(mac, dst, src, IP_PROTO.ICMP, icmpLength(err), (into, at) => writeIcmp(err, into, at));
  }

  dnsTcpUpstream(): Endpoint | undefined {
    return this.#dns?.upstreams()[0];
  }

  egressRefused(e: EgressRefusedFlow): void {
    this.#deps.onEgressRefused?.(e, this.#ingress);
  }

  /** The guest's MAC for `ip`; when unknown, asks with an ARP request and counts 'arp.unresolved'. */
  #resolve(ip: Ipv4Addr): Uint8Array | undefined {
    const mac = this.#arp.lookup(ip);
    if (mac !== undefined) return mac;
    this.counters.count('arp.unresolved');
    const request: Arp = { op: ARP_OP.REQUEST, senderMac: this.config.gatewayMac, senderIp: this.config.host, targetMac: new Uint8Array(6), targetIp: ip };
    const frame = this.#frame(BROADCAST_MAC, ETHERTYPE.ARP, ARP_LEN);
    writeArp(request, frame, ETHERNET_HEADER_LEN);
    this.#send(frame);
    return undefined;
  }

  /**
   * Builds an IPv4 datagram whose L4 part `writeL4` writes in place, and sends it; a datagram
   * larger than the link MTU leaves in fragments (RFC 791 §3.2, offsets in 8-byte units).
   */
  #sendIpv4To(toMac: Uint8Array, src: Ipv4Addr, dst: Ipv4Addr, protocol: number, l4Length: number, writeL4: WriteL4, writesEveryByte = false): void {
    this.#ipId = (this.#ipId + 1) & 0xffff;
    const header: Ipv4 = { dscpEcn: 0, id: this.#ipId, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: TTL, protocol, src, dst, options: EMPTY, payload: EMPTY };
    const l4At = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    if (IPV4_HEADER_LEN + l4Length <= this.config.mtu) {
      // Every byte up to the end of the datagram is written below; only the padding of a
      // minimum-size frame needs zeroing then.
      const frame = this.#frame(toMac, ETHERTYPE.IPV4, IPV4_HEADER_LEN + l4Length, !writesEveryByte);
      if (writesEveryByte && frame.length > l4At + l4Length) frame.fill(0, l4At + l4Length);
      writeL4(frame, l4At);
      writeIpv4Header(header, l4Length, frame, ETHERNET_HEADER_LEN);
      return this.#send(frame);
    }
    const l4 = new Uint8Array(l4Length);
    writeL4(l4, 0);
    const chunk = (this.config.mtu - IPV4_HEADER_LEN) & ~7;
    for (let offset = 0; offset < l4Length; offset += chunk) {
      const piece = l4.subarray(offset, Math.min(l4Length, offset + chunk));
      const frame = this.#frame(toMac, ETHERTYPE.IPV4, IPV4_HEADER_LEN + piece.length);
      writeIpv4({ ...header, moreFragments: offset + chunk < l4Length, fragmentOffset: offset, payload: piece }, frame, ETHERNET_HEADER_LEN);
      this.#send(frame);
    }
  }

  /**
   * A frame with its Ethernet header written, padded to the 60-byte minimum; zeroed unless
   * `zeroed` is false (the caller then writes every byte after the header itself).
   */
  #frame(toMac: Uint8Array, etherType: number, payloadLength: number, zeroed = true): Uint8Array {
    const len = Math.max(ETHERNET_MIN_FRAME, ETHERNET_HEADER_LEN + payloadLength);
    const frame = this.#deps.allocFrame?.(len, zeroed) ?? this.#carve(len);
    writeEthernet({ dst: toMac, src: this.config.gatewayMac, vlan: undefined, etherType, payload: EMPTY }, frame, 0);
    return frame;
  }

  #carve(len: number): Uint8Array {
    // Frames are carved from a freshly zeroed arena, never reused: one allocation serves many
    // frames (the per-frame allocation and zeroing was the stack's largest cost on bulk TCP),
    // and no byte of earlier traffic can reach the guest.
    if (this.#arenaAt + len > this.#arena.length) {
      this.#arena = new Uint8Array(Math.max(FRAME_ARENA_BYTES, len));
      this.#arenaAt = 0;
    }
    const frame = this.#arena.subarray(this.#arenaAt, this.#arenaAt + len);
    this.#arenaAt += (len + 7) & ~7;
    return frame;
  }

  #send(frame: Uint8Array): void {
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    this.#deps.emit(frame);
  }
}

