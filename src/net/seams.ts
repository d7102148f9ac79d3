/**
 * The seams the protocol engines (UDP and TCP NAT, DNS forwarder, port forwards) stand on,
 * as types only: `ToGuest` toward the guest, `Host` / `HostEvents` toward the host's sockets.
 * The stack implements `ToGuest` and `HostEvents`; `src/host/node-host.ts` implements `Host`
 * over node:net and node:dgram, tests a recording fake. Living here, below the engines, the
 * seams let `src/nat` and `src/dns` name them without importing the stack or the host.
 * Every call and every event of `Host`/`HostEvents` can be watched at one place
 * (`observe.ts`), which is where a recording of a network's I/O is taken.
 *
 * Host contract:
 * - Every call names a socket by an id the stack drew from its NAT flow table's allocator
 *   (`src/nat/flow-table.ts`): a flow's `FlowId`, or the id of a listening/bound socket. The
 *   host never invents such ids. The one id the host draws is an `AcceptId`, naming a TCP
 *   connection it accepted and holds until the stack decides.
 * - Calls never throw for I/O reasons: failures come back as `*Error` events with the Node
 *   error code (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EACCES, EADDRINUSE, ETIMEDOUT,
 *   ECONNRESET, …). An endpoint of a family the host cannot reach (no IPv6 route: ENETUNREACH;
 *   no IPv6 at all: EAFNOSUPPORT) is such a failure, never a throw.
 * - No event is delivered during a Host call: answers come later (a later turn or microtask),
 *   so an entry point of the stack is never re-entered from inside itself.
 * - Events for an id stop after `close(id)` (the stack may still receive events queued
 *   before; it ignores unknown ids).
 * - Data passed to `udpSend`/`udpSendTo`/`tcpWrite` may be a view into a guest frame: the
 *   host may keep a reference until written (links hand over fresh buffers per read, never
 *   reused).
 *
 * Listening and bound sockets (what port forwards stand on):
 * - `tcpListen(listener, local)` answers `tcpListening(listener, local)` with the endpoint
 *   actually bound (port 0: any), or `tcpListenError(listener, code)`; a listener that fails
 *   later (EMFILE on accept, …) reports `tcpListenError` again and keeps listening.
 * - Each client it accepts is reported as `tcpAccepted(listener, conn, client)`, the socket
 *   paused (nothing read from it yet). The stack answers *during that event*: `tcpAdopt(conn,
 *   flow)` makes the socket the flow's (it stays paused until `tcpPause(flow, false)`; then it
 *   is an ordinary flow socket), `tcpRefuse(conn)` resets it. A connection the stack has not
 *   answered when the event returns is refused: nothing waits, so nothing leaks. A client
 *   that resets right after being adopted shows up as the flow's `tcpError`.
 * - `udpBind(socket, local)` opens an unconnected UDP socket, answered by `udpBound(socket,
 *   local)` or `udpError(socket, code)`. It sends to any peer (`udpSendTo`) and reports the
 *   peer of every datagram (`udpReceivedFrom`); later socket errors come as `udpError`.
 * - `close(id)` releases a listener or bound socket like a flow's. The connected UDP socket
 *   of `udpOpen` and the TCP connection of `tcpConnect` stay what guest flows use.
 */
import type { Counters, Drop } from '../util/drops.js';
import type { Endpoint, FlowId, IpAddr, Ipv4Addr, Ipv6Addr } from './addr.js';

/** A TCP connection accepted by a listener and held by the host until `tcpAdopt`/`tcpRefuse`. */
export type AcceptId = number;

/**
 * The virtual network as the protocol engines see it: the addresses they answer from or
 * refuse, the link MTU, the outbound policy switches. The stack passes its `StackConfig`,
 * which has these fields and more; each engine hands on the slice its helpers take
 * (`NatPolicyOptions` in `src/nat/policy.ts`).
 */
export interface GuestNetwork {
  /** The network (host bits zero) and its mask. */
  readonly net: Ipv4Addr;
  readonly netmask: Ipv4Addr;
  /** The gateway (QEMU's `host`, 10.0.2.2). */
  readonly host: Ipv4Addr;
  /** The virtual DNS server (10.0.2.3). */
  readonly dns: Ipv4Addr;
  /** The guest link's MTU. */
  readonly mtu: number;
  /** `--restrict`: no outbound flows. */
  readonly restrict: boolean;
  /** `--disable-host-loopback`. */
  readonly disableHostLoopback: boolean;
  /** `--outbound`: the local address host sockets bind to; undefined: any. */
  readonly outbound?: Ipv4Addr | undefined;
  /** `--outbound6`: the local address IPv6 flows' host sockets bind to; undefined: any. */
  readonly outbound6?: Ipv6Addr | undefined;
  /** The network's IPv6 side (`--ipv6 on`, the default); undefined with `--ipv6 off`. */
  readonly ipv6?: GuestNetwork6 | undefined;
}

/** The IPv6 side of a virtual network (`--ipv6-net`, `--ipv6-host`, `--ipv6-dns`). */
export interface GuestNetwork6 {
  /** The on-link prefix guests autoconfigure from (SLAAC): a /64, host bits zero. */
  readonly prefix: Ipv6Addr;
  /** Always 64: SLAAC forms addresses from a 64-bit interface identifier (RFC 4862 §5.5.3, RFC 4291 §2.5.1). */
  readonly prefixLen: 64;
  /** The gateway's address in the prefix (QEMU's `ipv6-host`, fd00::2): stands for the host's ::1. */
  readonly host: Ipv6Addr;
  /** The virtual DNS server's address in the prefix (QEMU's `ipv6-dns`, fd00::3). */
  readonly dns: Ipv6Addr;
  /** The gateway's link-local address (fe80::/64 + the modified EUI-64 of its MAC): the router address of its advertisements. */
  readonly linkLocal: Ipv6Addr;
  /** `--ipv6-dhcp stateful`: DHCPv6 assigns addresses (IA_NA) and advertisements set the M flag. */
  readonly statefulDhcp?: boolean | undefined;
}

/** Writes an L4 header and payload at `into[at]` and returns its length. */
export type WriteL4 = (into: Uint8Array, at: number) => number;

/**
 * How much TCP data one turn of the shell's event loop may still send toward guests
 * (`ToGuest.sendBudget`). A shell whose event loop serves many flows (the daemon) shares one
 * among all its networks, so that no turn sends megabytes while timers and other sockets
 * wait: a connection whose segment `take` refuses stops sending, the stack reports it
 * (`Stack.sendsDeferred`), and the shell calls `Stack.resumeSends` in a later turn. Only data
 * segments are charged; ACKs, SYNs, FINs, RSTs and timer retransmissions are not.
 */
export interface SendBudget {
  /** Charges one data segment of `payloadBytes`; false (nothing charged) when this turn's budget is spent. */
  take(payloadBytes: number): boolean;
}

/** A guest flow the egress policy refused (`ToGuest.egressRefused`), with the rule that matched. */
export interface EgressRefusedFlow {
  readonly protocol: 'tcp' | 'udp';
  /** The guest's side of the flow. */
  readonly guest: Endpoint;
  /** The destination as the guest addressed it (10.0.2.2:8080). */
  readonly remote: Endpoint;
  /** Where it would have gone on the host: the endpoint the rule judged (127.0.0.1:8080). */
  readonly to: Endpoint;
  /** Its counter ('nat.egress-denied', 'nat.egress-public-default'). */
  readonly drop: Drop;
  /** The rule as the user wrote it (`--egress-deny 10.0.0.0/8`), or `default public: CIDR`. */
  readonly rule: string;
}

/**
 * What protocol engines (UDP NAT, TCP, DNS) need from the stack to talk to the guest.
 * The stack implements it; engines never build Ethernet, IP headers or ICMP messages, nor
 * resolve MACs themselves.
 */
export interface ToGuest {
  readonly config: GuestNetwork;
  readonly counters: Counters;
  /**
   * Sends an IPv4 datagram from `src` to the guest address `dst`, the L4 part written in
   * place by `writeL4` (`l4Length` bytes); fragments it above the link MTU. The guest's MAC
   * comes from the neighbour table: when unknown, an ARP request goes out instead and the
   * datagram is dropped, counted as 'arp.unresolved' (TCP retransmits; UDP is lossy anyway).
   * `writesEveryByte`: `writeL4` writes all `l4Length` bytes, so the frame is not zeroed first.
   */
  sendIpv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, l4Length: number, writeL4: WriteL4, writesEveryByte?: boolean): void;
  /**
   * `sendIpv4`'s equivalent for either family: `src` and `dst` are of one family (the
   * guest's side of a flow decides); IPv6 datagrams resolve the guest's MAC through neighbour
   * discovery ('ndp.unresolved' when unknown) and leave unfragmented (the engines keep to the MTU).
   */
  sendIp(src: IpAddr, dst: IpAddr, protocol: number, l4Length: number, writeL4: WriteL4, writesEveryByte?: boolean): void;
  /**
   * An ICMP error (`type`, `code`) to the guest about a flow it opened, from the flow's tuple:
   * `guest` sent to `remote` with IP `protocol`, and `transportHeader` is the start of what it
   * sent (its UDP or TCP header, RFC 792's "first 64 bits" and more). The stack builds the
   * quoted IP header itself; for an IPv6 flow it sends the ICMPv6 error of the same meaning
   * (RFC 4443 §3.1 codes). Counted as 'icmp.flow-mixed-family' and not sent when the sides'
   * families differ.
   */
  flowIcmpError(guest: Endpoint, remote: Endpoint, protocol: number, transportHeader: Uint8Array, type: number, code: number): void;
  /** Where DNS over TCP to the DNS address goes: the first upstream resolver, if any. */
  dnsTcpUpstream(): Endpoint | undefined;
  /** Optional: an outbound flow the egress policy refused (already counted), for the shell's debug log. */
  egressRefused?(e: EgressRefusedFlow): void;
  /** Optional: the send budget of the shell's turn (see SendBudget); absent, data segments are never held back. */
  readonly sendBudget?: SendBudget | undefined;
}

/** What the stack asks of host sockets. */
export interface Host {
  /**
   * Opens a UDP socket connected to `to`, first bound to `local` when given (port 0: any port
   * of that address); datagrams and errors come back as udpReceived/udpError (a failed bind as
   * udpError with its code, EADDRINUSE for a port in use).
   */
  udpOpen(flow: FlowId, to: Endpoint, local?: Endpoint): void;
  /** Sends one datagram on the flow's socket. */
  udpSend(flow: FlowId, data: Uint8Array): void;
  /**
   * Starts a TCP connection to `to`, from `local` when given (port 0: any port of that
   * address; a port other connections of ours use is shared, the socket having SO_REUSEADDR);
   * tcpConnected or tcpError follows.
   */
  tcpConnect(flow: FlowId, to: Endpoint, local?: Endpoint): void;
  /**
   * Like tcpConnect, but the flow's host side is a service of the host instead of a socket
   * (a guest forward's target, `src/nat/guest-forwards.ts`): `cmd:COMMAND` runs COMMAND with
   * /bin/sh -c, its stdin and stdout the connection; another name is a handler the host was
   * given. tcpConnected (without a local endpoint) or tcpError follows (ENOENT: no such
   * service); then the flow goes on as a connected socket's. Optional: a host without it
   * serves no services (the guest's SYN is reset).
   */
  tcpConnectService?(flow: FlowId, service: string): void;
  /**
   * Writes to the flow's socket. Returns the number of bytes the socket now buffers beyond
   * what the kernel took (Node's writableLength); the stack shrinks the guest's window by it
   * and waits for tcpDrained when it passes its limit.
   */
  tcpWrite(flow: FlowId, data: Uint8Array): number;
  /** Half-closes the flow's socket (FIN to the host peer); reading goes on. */
  tcpEnd(flow: FlowId): void;
  /** Stops (true) or resumes (false) reading from the flow's socket. */
  tcpPause(flow: FlowId, paused: boolean): void;
  /** Resets the connection (RST) and releases the socket. */
  tcpReset(flow: FlowId): void;
  /** Listens for TCP clients on `local`; tcpListening or tcpListenError follows, then tcpAccepted per client. */
  tcpListen(listener: FlowId, local: Endpoint): void;
  /** During tcpAccepted: the accepted connection becomes `flow`'s socket, still paused. */
  tcpAdopt(conn: AcceptId, flow: FlowId): void;
  /** During tcpAccepted: resets the accepted connection. */
  tcpRefuse(conn: AcceptId): void;
  /** Opens an unconnected UDP socket bound to `local` (port 0: any); udpBound or udpError follows. */
  udpBind(socket: FlowId, local: Endpoint): void;
  /** Sends one datagram from the bound socket to `to`. */
  udpSendTo(socket: FlowId, to: Endpoint, data: Uint8Array): void;
  /**
   * Opens `path` under the directory `root` for reading. `path` is relative and has no `.` or
   * `..` component (the caller checked it, `src/tftp/path.ts`); the host still refuses, with
   * EACCES, a file whose real path (symbolic links resolved, after opening) is outside `root`'s,
   * and anything but a regular file (EISDIR for a directory, EACCES otherwise). fileOpened or
   * fileError follows.
   */
  fileOpen?(file: FlowId, root: string, path: string): void;
  /** Reads up to `length` bytes at `offset` of an open file; fileData (fewer bytes at the end, none past it) or fileError follows. */
  fileRead?(file: FlowId, offset: number, length: number): void;
  /** Releases whatever the id holds: a flow's socket (closed gracefully when TCP), a listener, a bound socket, an open file. */
  close(flow: FlowId): void;
}

/** What host sockets tell the stack. */
export interface HostEvents {
  /** A datagram on the connected socket of udpOpen. */
  udpReceived(flow: FlowId, data: Uint8Array): void;
  /** A UDP socket (connected or bound) failed: an ICMP error from the peer, a bind or send error. */
  udpError(flow: FlowId, code: string): void;
  /** The connection of tcpConnect is up; `local`: its local endpoint (the NAT's public side), when the host knows it. */
  tcpConnected(flow: FlowId, local?: Endpoint): void;
  /**
   * Bytes read from the host socket. They are valid only during the call (the host reads every
   * socket into one reused buffer): the stack copies what it keeps. `more`: the read filled the
   * read buffer, so the socket probably holds more and the host reads it again in the same I/O
   * event (libuv reads on while reads come back full); a shell may hold the stack's flush until
   * the event is over (LiveNetwork does). A hint only: the stack never sees it.
   */
  tcpData(flow: FlowId, data: Uint8Array, more?: boolean): void;
  /** The host peer sent FIN. */
  tcpEnd(flow: FlowId): void;
  /** The socket's write buffer drained below its high-water mark. */
  tcpDrained(flow: FlowId): void;
  /** Connection failed or broke; the socket is gone. */
  tcpError(flow: FlowId, code: string): void;
  /** The socket closed after both directions finished; the socket is gone. */
  tcpClosed(flow: FlowId): void;
  /** The listener is bound to `local` (the port the host chose when asked for 0). */
  tcpListening(listener: FlowId, local: Endpoint): void;
  /** The listener could not bind (EADDRINUSE, EACCES, …; it is gone), or failed to accept (it keeps listening). */
  tcpListenError(listener: FlowId, code: string): void;
  /**
   * A client connected to the listener. Answer now with Host.tcpAdopt or Host.tcpRefuse: the
   * host refuses a connection still unanswered when this returns.
   */
  tcpAccepted(listener: FlowId, conn: AcceptId, client: Endpoint): void;
  /** The bound socket of udpBind is open on `local`. */
  udpBound(socket: FlowId, local: Endpoint): void;
  /** A datagram on a bound socket, from `from`; `data` is the receiver's to keep. */
  udpReceivedFrom(socket: FlowId, from: Endpoint, data: Uint8Array): void;
  /**
   * The file of fileOpen is open; `size` in bytes when it was opened. The file events are
   * optional, as the file calls are (events written before them still type-check); the stack
   * has them, and a host with file calls needs them to reach it.
   */
  fileOpened?(file: FlowId, size: number): void;
  /** Bytes of fileRead, from `offset`; the receiver's to keep. Fewer than asked (none) at the end of the file. */
  fileData?(file: FlowId, offset: number, data: Uint8Array): void;
  /** Opening or reading failed (ENOENT, EACCES, EISDIR, EIO, …); the file is closed. */
  fileError?(file: FlowId, code: string): void;
}
