/**
 * The daemon's stack: a `Stack` whose host is a `NodeHost` (real sockets), whose host events
 * re-arm the session's timer, and which releases every socket when the session ends.
 */
import type { DnsStaticRecord } from '../dns/records.js';
import type { Endpoint, FlowId } from '../net/addr.js';
import type { HostEvents } from '../net/seams.js';
import { NodeHost } from '../host/node-host.js';
import type { TcpForwardTarget } from '../host/node-tcp.js';
import type { UdpForwardTarget } from '../host/node-udp.js';
import type { StackConfig } from '../stack/config.js';
import { Stack } from '../stack/stack.js';
import type { Ipv4Addr } from '../util/bytes.js';
import type { SessionStackDeps } from './session.js';

export interface NodeStackOptions {
  readonly dnsUpstreams: readonly Endpoint[];
  readonly dnsRecords: readonly DnsStaticRecord[];
}

export class NodeStack extends Stack implements TcpForwardTarget, UdpForwardTarget {
  readonly host: NodeHost;

  constructor(config: StackConfig, deps: SessionStackDeps, o: NodeStackOptions) {
    // Host events enter the stack, then the session re-arms its timer.
    const events: HostEvents = {
      udpReceived: (flow, data) => this.#after(() => { this.udpReceived(flow, data); }),
      udpError: (flow, code) => this.#after(() => { this.udpError(flow, code); }),
      tcpConnected: (flow) => this.#after(() => { this.tcpConnected(flow); }),
      tcpData: (flow, data) => this.#after(() => { this.tcpData(flow, data); }),
      tcpEnd: (flow) => this.#after(() => { this.tcpEnd(flow); }),
      tcpDrained: (flow) => this.#after(() => { this.tcpDrained(flow); }),
      tcpError: (flow, code) => this.#after(() => { this.tcpError(flow, code); }),
      tcpClosed: (flow) => this.#after(() => { this.tcpClosed(flow); }),
    };
    const host = new NodeHost(events);
    super(config, { ...deps, host, dnsUpstreams: o.dnsUpstreams, dnsRecords: o.dnsRecords });
    this.host = host;
    this.#poke = () => { deps.poke(); };
  }

  readonly #poke: () => void;
  #disposed = false;

  get tcp(): NodeHost['tcp'] {
    return this.host.tcp;
  }

  get udp(): NodeHost['udp'] {
    return this.host.udp;
  }

  /** The guest address for forward rules without one: the first bound DHCP lease. */
  defaultGuestAddr(): Ipv4Addr | undefined {
    return this.leases().find((l) => l.state === 'bound')?.ip;
  }

  override forwardTcp(client: Endpoint, guest: Endpoint): FlowId | undefined {
    const flow = super.forwardTcp(client, guest);
    this.#poke();
    return flow;
  }

  override forwardUdp(client: Endpoint, guest: Endpoint): FlowId | undefined {
    const flow = super.forwardUdp(client, guest);
    this.#poke();
    return flow;
  }

  /** The session ended: flows closed in the stack, every socket released. */
  dispose(): void {
    this.#disposed = true;
    this.close();
    this.host.closeAll();
  }

  #after(body: () => void): void {
    if (this.#disposed) return;
    body();
    this.#poke();
  }
}
