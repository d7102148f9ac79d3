/**
 * What a reload (SIGHUP with `--config`, src/cli/reload.ts) changes inside a running network:
 * the egress rules, the per-session lease bound, the DNS forwarder's static records and the
 * NAT's flow limits and new-flow rate. Each judges what guests do from then on — flows already
 * open and leases already held are left alone (a lowered flow limit is reached again as new
 * flows evict: UDP's least recently active, TCP's TIME-WAIT connections, never a live one) —
 * so a reload never drops a session. One function, shared by the daemon's live networks and
 * by `tslirp replay` (which applies a recorded reload at the point it happened; a recording
 * made before flow limits were reloadable has none, and they stay).
 */
import type { DnsStaticRecord } from '../dns/records.js';
import type { EgressRule } from '../nat/egress.js';
import type { FlowLimits } from '../nat/flow-table.js';
import type { Network } from './network.js';

/** The settings a reload hands a running network. */
export interface NetworkReload {
  /** `--egress-allow` / `--egress-deny` rules, in the order they are checked. */
  readonly egress: readonly EgressRule[];
  /** `--max-session-leases`. */
  readonly maxSessionLeases: number;
  /** `--dns-record`. */
  readonly dnsRecords: readonly DnsStaticRecord[];
  /** `--max-tcp-flows`, `--max-udp-flows`, `--max-network-*-flows`, `--max-new-flows-per-second`. */
  readonly flowLimits?: FlowLimits | undefined;
}

export function applyNetworkReload(network: Network, r: NetworkReload): void {
  network.config.egress?.setRules(r.egress);
  network.stack.setMaxSessionLeases(r.maxSessionLeases);
  network.stack.setDnsRecords(r.dnsRecords);
  if (r.flowLimits !== undefined) network.stack.setFlowLimits(r.flowLimits);
}
