import type { Endpoint, FlowId } from '../../src/net/addr.js';
import type { AcceptId, Host } from '../../src/net/seams.js';

/** One recorded Host call: the method name and its arguments (the first an id: a flow, a listener, an accepted connection). */
export type HostCall = [method: keyof Host, id: FlowId | AcceptId, ...args: unknown[]]; // eslint-disable-line @typescript-eslint/no-duplicate-type-constituents -- both are numbers; the names say which ids appear

/**
 * A Host that records every call and answers nothing by itself; tests play the host's part
 * by calling the stack's HostEvents methods. `buffered` is what tcpWrite reports as still
 * buffered on the socket (default 0: the kernel took everything).
 */
export class FakeHost implements Host {
  readonly calls: HostCall[] = [];
  buffered = 0;

  udpOpen(flow: FlowId, to: Endpoint, local?: Endpoint): void {
    this.calls.push(local === undefined ? ['udpOpen', flow, to] : ['udpOpen', flow, to, local]);
  }
  udpSend(flow: FlowId, data: Uint8Array): void {
    this.calls.push(['udpSend', flow, data.slice()]);
  }
  tcpConnect(flow: FlowId, to: Endpoint, local?: Endpoint): void {
    this.calls.push(local === undefined ? ['tcpConnect', flow, to] : ['tcpConnect', flow, to, local]);
  }
  tcpConnectService(flow: FlowId, service: string): void {
    this.calls.push(['tcpConnectService', flow, service]);
  }
  tcpWrite(flow: FlowId, data: Uint8Array): number {
    this.calls.push(['tcpWrite', flow, data.slice()]);
    return this.buffered;
  }
  tcpEnd(flow: FlowId): void {
    this.calls.push(['tcpEnd', flow]);
  }
  tcpPause(flow: FlowId, paused: boolean): void {
    this.calls.push(['tcpPause', flow, paused]);
  }
  tcpReset(flow: FlowId): void {
    this.calls.push(['tcpReset', flow]);
  }
  tcpListen(listener: FlowId, local: Endpoint): void {
    this.calls.push(['tcpListen', listener, local]);
  }
  tcpAdopt(conn: AcceptId, flow: FlowId): void {
    this.calls.push(['tcpAdopt', conn, flow]);
  }
  tcpRefuse(conn: AcceptId): void {
    this.calls.push(['tcpRefuse', conn]);
  }
  udpBind(socket: FlowId, local: Endpoint): void {
    this.calls.push(['udpBind', socket, local]);
  }
  udpSendTo(socket: FlowId, to: Endpoint, data: Uint8Array): void {
    this.calls.push(['udpSendTo', socket, to, data.slice()]);
  }
  fileOpen(file: FlowId, root: string, path: string): void {
    this.calls.push(['fileOpen', file, root, path]);
  }
  fileRead(file: FlowId, offset: number, length: number): void {
    this.calls.push(['fileRead', file, offset, length]);
  }
  close(flow: FlowId): void {
    this.calls.push(['close', flow]);
  }

  /** The calls of one method, without the method name. */
  callsOf(method: keyof Host): unknown[][] {
    return this.calls.filter((c) => c[0] === method).map((c) => c.slice(1));
  }
}
