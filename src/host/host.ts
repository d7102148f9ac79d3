/**
 * The seam between the sans-IO stack and the world (DESIGN.md, `src/host`).
 *
 * The stack asks through `Host`; answers come back through `HostEvents`, which the stack
 * implements. Every call names a flow by its `FlowId` from the NAT flow table
 * (`src/nat/flow-table.ts`). The Node implementation (`node-host.ts`) is the only place
 * that touches node:net and node:dgram; tests use a recording fake.
 *
 * Contract:
 * - Calls never throw for I/O reasons: failures come back as `*Error` events with the Node
 *   error code (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EACCES, ETIMEDOUT, ECONNRESET, …).
 * - Events for a flow stop after `close(flow)` (the stack may still receive events queued
 *   before; it ignores unknown flows).
 * - Data passed to `udpSend`/`tcpWrite` may be a view into a guest frame: the host may keep
 *   a reference until written (links hand over fresh buffers per read, never reused).
 */
import type { Ipv4Addr } from '../util/bytes.js';

/** An address and port on the host side (or the address a guest talks to). */
export interface Endpoint {
  readonly addr: Ipv4Addr;
  readonly port: number;
}

/** A flow's identity in the flow table: unique per stack, never reused. */
export type FlowId = number;

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
