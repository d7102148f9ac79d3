/**
 * tslirp as a library: one network on real host sockets in one call (`createNodeNetwork`),
 * the sans-IO stack underneath with its configuration and its `Host` seam, the guest links,
 * the capture reader/writer, the e1000 device model and the daemon that wires them together.
 */
export { createNodeNetwork, type NodeNetwork, type NodeNetworkIo, type NodeNetworkOptions } from './daemon/node-network.js';
export { Stack, type StackDeps, type StackStats } from './stack/stack.js';
export type { Endpoint, FlowId, IpAddr, Ipv4Endpoint, Ipv6Addr } from './net/addr.js';
export { formatEndpoint, formatIpAddr, ipv4Of, parseIpAddr } from './net/addr.js';
export type { AcceptId, Host, HostEvents } from './net/seams.js';
export { observeEvents, observeHost, type HostObserver } from './net/observe.js';
export { ForwardRefusals, type ForwardLog, type ForwardRefusal } from './nat/forward-refusals.js';
export { parseForwards, type ForwardRule } from './nat/forwards.js';
export { NodeHost } from './host/node-host.js';
export { duplexPair, type GuestForwardHandler } from './host/node-services.js';
export { parseGuestForwards, type GuestForward, type GuestForwardTarget } from './nat/guest-forwards.js';
export type { NodeTcpOptions } from './host/node-tcp.js';
export type { DhcpLease } from './dhcp/server.js';
export { DEFAULT_FLOW_LIMITS, resolveFlowLimits, type FlowInfo, type FlowLimitOptions, type FlowLimits } from './nat/flow-table.js';
export { DEFAULT_NAT, NAT_TYPES, resolveNatBehaviour, type NatBehaviour, type NatFiltering, type NatMapping, type NatOptions, type NatRefresh, type NatType } from './nat/behaviour.js';
export type { UdpMappingInfo, UdpSocketKind } from './nat/udp-flow.js';
export { formatIpv4Addr, formatMac, parseIpv4Addr, type Ipv4Addr, type Mac } from './util/bytes.js';
export { resolveStackConfig, type StackConfig, type NetworkOptions, type StaticRoute } from './stack/config.js';
export { ConfigError } from './util/config-error.js';
export { COUNTED_EVENTS, Counters, DROP_REASONS, isDrop, isDropReason, type CountedEvent, type Drop } from './util/drops.js';
export { systemClock, systemRandom, ManualClock, seededRandom, type Clock, type Random } from './util/clock.js';

export * as links from './link/index.js';
export * from './nic-e1000/index.js';
export * as pcap from './pcap/index.js';
export { Daemon, type DaemonOptions } from './daemon/daemon.js';
export { Session, type SessionNetwork } from './daemon/session.js';
export { LiveNetwork, type LiveNetworkOptions } from './daemon/live-network.js';
export { NetworkRegistry, networkSettings, type NetworkSettings } from './daemon/networks.js';
export { Network, type NetworkDeps, type NetworkPort, type PortSink } from './network/network.js';
export { Scheduler } from './daemon/scheduler.js';
export { parseStreamSpec, parseDgramSpec, parseWsSpec, defaultListeners, runtimeDir, type ListenerSpec } from './daemon/listen-spec.js';
