/**
 * The seams the protocol engines (UDP and TCP NAT, DNS forwarder) stand on, as types only:
 * `Host` / `HostEvents` toward the host's sockets. The stack implements `HostEvents`;
 * `src/host/node-host.ts` implements `Host` over node:net and node:dgram, tests a recording fake.
 *
 * Host contract:
 * - Every call names a flow by its `FlowId` from the NAT flow table (`src/nat/flow-table.ts`).
 * - Calls never throw for I/O reasons: failures come back as `*Error` events with the Node
 *   error code (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EACCES, ETIMEDOUT, ECONNRESET, …).
 *   An endpoint of a family the host cannot reach (IPv6 today) is such a failure
 *   (EAFNOSUPPORT), never a throw.
 * - Events for a flow stop after `close(flow)` (the stack may still receive events queued
 *   before; it ignores unknown flows).
 * - Data passed to `udpSend`/`tcpWrite` may be a view into a guest frame: the host may keep
 *   a reference until written (links hand over fresh buffers per read, never reused).
 */
import type { Endpoint, FlowId, Ipv4Addr } from './addr.js';

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
}

/** What the stack asks of host sockets. */
export interface Host {
  /** Opens a UDP socket connected to `to`; datagrams and errors come back as udpReceived/udpError. */
  udpOpen(flow: FlowId, to: Endpoint): void;
  /** Sends one datagram on the flow's socket. */
  udpSend(flow: FlowId, data: Uint8Array): void;
  /** Starts a TCP connection to `to`; tcpConnected or tcpError follows. */
  tcpConnect(flow: FlowId, to: Endpoint): void;
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
  /** Releases whatever the flow holds (socket closed gracefully when TCP). */
  close(flow: FlowId): void;
}

/** What host sockets tell the stack. */
export interface HostEvents {
  udpReceived(flow: FlowId, data: Uint8Array): void;
  udpError(flow: FlowId, code: string): void;
  tcpConnected(flow: FlowId): void;
  /**
   * Bytes read from the host socket. They are valid only during the call (the host reads every
   * socket into one reused buffer): the stack copies what it keeps.
   */
  tcpData(flow: FlowId, data: Uint8Array): void;
  /** The host peer sent FIN. */
  tcpEnd(flow: FlowId): void;
  /** The socket's write buffer drained below its high-water mark. */
  tcpDrained(flow: FlowId): void;
  /** Connection failed or broke; the socket is gone. */
  tcpError(flow: FlowId, code: string): void;
  /** The socket closed after both directions finished; the socket is gone. */
  tcpClosed(flow: FlowId): void;
}
