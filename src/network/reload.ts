/**
 * What a reload (SIGHUP with `--config`, src/cli/reload.ts) changes inside a running network:
 * the egress rules, the per-session lease bound and the DNS forwarder's static records. Each
 * judges what guests do from then on — flows already open and leases already held are left
 * alone — so a reload never drops a session. One function, shared by the daemon's live networks and by `tslirp replay` (which
 * applies a recorded reload at the point it happened).
 */
import type { DnsStaticRecord } from '../dns/records.js';
import type { EgressRule } from '../nat/egress.js';
import type { Network } from './network.js';

/** The settings a reload hands a running network. */
export interface NetworkReload {
  /** `--egress-allow` / `--egress-deny` rules, in the order they are checked. */
  readonly egress: readonly EgressRule[];
  /** `--max-session-leases`. */
  readonly maxSessionLeases: number;
  /** `--dns-record`. */
  readonly dnsRecords: readonly DnsStaticRecord[];
}

export function applyNetworkReload(network: Network, r: NetworkReload): void {
  network.config.egress?.setRules(r.egress);
  network.stack.setMaxSessionLeases(r.maxSessionLeases);
  network.stack.setDnsRecords(r.dnsRecords);
}
