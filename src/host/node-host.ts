/**
 * The Node implementation of `Host`: UDP flows on node:dgram (`node-udp.ts`), TCP flows on
 * node:net (`node-tcp.ts`). One per session; `closeAll()` releases every socket when the
 * session ends. Events go to the `HostEvents` given at construction (the stack, wrapped by
 * the session so its timer is re-armed after each event).
 */
import type { Endpoint, FlowId } from '../net/addr.js';
import type { Host, HostEvents } from '../net/seams.js';
import { NodeTcp, type NodeTcpOptions } from './node-tcp.js';
import { NodeUdp } from './node-udp.js';

export class NodeHost implements Host {
  readonly udp: NodeUdp;
  readonly tcp: NodeTcp;
  /** Datagrams dropped before their socket connected (its small queue was full). */
  udpDropped = 0;

  constructor(events: HostEvents, tcpOptions: NodeTcpOptions = {}) {
    this.udp = new NodeUdp(events);
    this.tcp = new NodeTcp(events, tcpOptions);
  }

  udpOpen(flow: FlowId, to: Endpoint): void {
    this.udp.open(flow, to);
  }

  udpSend(flow: FlowId, data: Uint8Array): void {
    if (!this.udp.send(flow, data)) this.udpDropped++;
  }

  tcpConnect(flow: FlowId, to: Endpoint): void {
    this.tcp.connect(flow, to);
  }

  tcpWrite(flow: FlowId, data: Uint8Array): number {
    return this.tcp.write(flow, data);
  }

  tcpEnd(flow: FlowId): void {
    this.tcp.end(flow);
  }

  tcpPause(flow: FlowId, paused: boolean): void {
    this.tcp.pause(flow, paused);
  }

  tcpReset(flow: FlowId): void {
    this.tcp.reset(flow);
  }

  close(flow: FlowId): void {
    if (!this.udp.close(flow)) this.tcp.close(flow);
  }

  /** Releases every socket: UDP sockets closed, TCP connections reset (the session is gone). */
  closeAll(): void {
    this.udp.closeAll();
    this.tcp.closeAll();
  }
}
