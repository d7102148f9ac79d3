/**
 * The fixed list of drop reasons: every name the daemon counts when it drops or refuses
 * something — a frame, a packet, a datagram, a request, a client, stream data — grouped by
 * the layer that counts it. A name is `layer.reason`, lower-case and hyphenated, and never
 * changes once published: it is the `reason` label of `tslirp_drops_total`, the key of the
 * `drops` / `counters` objects of the control API (an `enum` in its OpenAPI document) and the
 * field of the daemon's log lines. README's "Drop reasons" section is this list.
 *
 * `Drop` is the union of these names and `Counters.count` takes only a `Drop` (or one of the
 * COUNTED_EVENTS below), so code that counts a name not listed here does not compile; a unit
 * test checks that every name is still counted somewhere and that the OpenAPI enum and the
 * README are this list.
 *
 * Host socket errors are folded into a fixed set of errno names (`HOST_ERRNOS`), so a new
 * errno from the kernel becomes `…-other`, never a new label.
 */

/** Errno names a host socket error is counted under (lower-case); anything else is `other`. */
export const HOST_ERRNOS = [
  'eacces', 'eaddrinuse', 'eaddrnotavail', 'econnrefused', 'econnreset', 'ehostunreach', 'emsgsize',
  'enetunreach', 'enobufs', 'eperm', 'epipe', 'etimedout', 'other',
] as const;
export type HostErrno = (typeof HOST_ERRNOS)[number];

/** The errno name `code` (a Node error code such as 'ECONNREFUSED') is counted under. */
export function hostErrno(code: string): HostErrno {
  const c = code.toLowerCase();
  return (HOST_ERRNOS as readonly string[]).includes(c) ? (c as HostErrno) : 'other';
}

const errnos = <P extends string>(prefix: P): readonly `${P}${HostErrno}`[] => HOST_ERRNOS.map((e) => `${prefix}${e}` as const);

/** One layer's reasons and what that layer refuses. */
export interface DropReasonGroup {
  readonly layer: string;
  readonly about: string;
  readonly reasons: readonly string[];
}

/** The list, by layer; README's "Drop reasons" section is generated from it. */
export const DROP_REASON_GROUPS = [
  { layer: 'link', about: 'guest links (QEMU stream/dgram, WebSocket): malformed framing, a full or closed send path, idle peers', reasons: ['link.bad-frame-length', 'link.dgram-session-limit', 'link.tx-closed', 'link.tx-error', 'link.tx-overflow', 'link.ws-idle-timeout', 'link.ws-no-pong', 'link.ws-text-message'] },
  { layer: 'ws', about: 'WebSocket upgrade requests refused by the guest listener', reasons: ['ws.bad-network', 'ws.bad-request', 'ws.network-not-allowed', 'ws.origin-refused', 'ws.socket-error', 'ws.token-missing', 'ws.token-refused', 'ws.unknown-path'] },
  { layer: 'session', about: 'new guest sessions refused by the daemon\'s limits', reasons: ['session.limit', 'session.memory-watermark', 'session.per-source-limit'] },
  { layer: 'pcap', about: 'frames a session\'s --pcap recorder could not keep up with', reasons: ['pcap.dropped'] },
  { layer: 'impair', about: 'frames dropped by a configured link impairment', reasons: ['impair.loss', 'impair.queue-full'] },
  { layer: 'switch', about: 'frames the learning switch of a network refuses', reasons: ['switch.bad-source', 'switch.runt', 'switch.same-port', 'switch.unknown-port'] },
  { layer: 'ethernet', about: 'Ethernet frames the gateway will not take', reasons: ['ethernet.ipv6-off', 'ethernet.not-ethernet-ii', 'ethernet.not-for-us', 'ethernet.truncated', 'ethernet.truncated-vlan', 'ethernet.unknown-ethertype', 'ethernet.vlan-unsupported'] },
  { layer: 'arp', about: 'ARP packets and unresolved next hops', reasons: ['arp.address-conflict', 'arp.bad-address-length', 'arp.lease-conflict', 'arp.multicast-sender', 'arp.truncated', 'arp.unknown-op', 'arp.unresolved', 'arp.unsupported-hardware', 'arp.unsupported-protocol'] },
  { layer: 'ipv4', about: 'IPv4 headers, fragments and destinations the gateway refuses', reasons: ['ipv4.bad-checksum', 'ipv4.bad-header-length', 'ipv4.bad-options', 'ipv4.bad-source', 'ipv4.bad-total-length', 'ipv4.bad-version', 'ipv4.broadcast-ignored', 'ipv4.frag-bad-length', 'ipv4.frag-evicted', 'ipv4.frag-memory', 'ipv4.frag-overlap', 'ipv4.frag-timeout', 'ipv4.frag-too-big', 'ipv4.lease-conflict', 'ipv4.multicast-source-mac', 'ipv4.multicast-unsupported', 'ipv4.outbound-unsupported', 'ipv4.reserved-flag', 'ipv4.to-other-guest', 'ipv4.truncated', 'ipv4.unknown-protocol', 'ipv4.zero-ttl'] },
  { layer: 'ipv6', about: 'IPv6 headers, extension headers, fragments and destinations the gateway refuses', reasons: ['ipv6.address-conflict', 'ipv6.bad-option', 'ipv6.bad-source', 'ipv6.bad-version', 'ipv6.frag-bad-length', 'ipv6.frag-evicted', 'ipv6.frag-memory', 'ipv6.frag-nested', 'ipv6.frag-overlap', 'ipv6.frag-timeout', 'ipv6.frag-too-big', 'ipv6.hop-limit-exceeded', 'ipv6.link-local-outbound', 'ipv6.multicast-ignored', 'ipv6.multicast-source', 'ipv6.multicast-source-mac', 'ipv6.no-next-header', 'ipv6.not-a-fragment', 'ipv6.outbound-unsupported', 'ipv6.routing-refused', 'ipv6.to-other-guest', 'ipv6.too-big-to-send', 'ipv6.too-many-extensions', 'ipv6.truncated', 'ipv6.truncated-extension', 'ipv6.unknown-next-header', 'ipv6.unknown-option', 'ipv6.unknown-protocol'] },
  { layer: 'icmp', about: 'ICMP messages the gateway does not answer or translate', reasons: ['icmp.bad-checksum', 'icmp.bad-echo-code', 'icmp.flow-mixed-family', 'icmp.ignored-type', 'icmp.outbound-unsupported', 'icmp.truncated'] },
  { layer: 'icmp6', about: 'ICMPv6 messages the gateway does not answer or translate', reasons: ['icmp6.bad-checksum', 'icmp6.bad-echo-code', 'icmp6.error-ignored', 'icmp6.error-rate-limited', 'icmp6.flow-error-unmapped', 'icmp6.ignored-type', 'icmp6.multicast-echo-ignored', 'icmp6.outbound-unsupported', 'icmp6.truncated'] },
  { layer: 'ndp', about: 'Neighbor Discovery messages refused (RFC 4861 validity checks) and unresolved IPv6 next hops', reasons: ['ndp.address-conflict', 'ndp.bad-code', 'ndp.bad-dad-probe', 'ndp.bad-hop-limit', 'ndp.bad-option', 'ndp.dad-for-our-address', 'ndp.foreign-router-advertisement', 'ndp.multicast-target', 'ndp.not-na', 'ndp.not-ns', 'ndp.not-our-target', 'ndp.not-rs', 'ndp.solicitation-rate-limited', 'ndp.truncated', 'ndp.unresolved', 'ndp.unspecified-with-lladdr'] },
  { layer: 'udp', about: 'UDP datagrams refused, and host UDP socket errors by errno', reasons: ['udp.bad-checksum', 'udp.bad-length', 'udp.broadcast-ignored', 'udp.flow-evicted', 'udp.flow-refused', 'udp.forward-family', 'udp.forward-tuple-taken', 'udp.from-other-family', 'udp.host-datagram-too-big', ...errnos('udp.host-'), 'udp.no-service', 'udp.truncated', 'udp.unknown-flow', 'udp.zero-port', 'udp6.zero-checksum'] },
  { layer: 'tcp', about: 'TCP segments the NAT\'s TCP engine refuses or cannot place', reasons: ['tcp.ack-of-unsent', 'tcp.bad-checksum', 'tcp.bad-data-offset', 'tcp.bad-mss-option', 'tcp.bad-option-length', 'tcp.bad-sack-option', 'tcp.bad-sack-permitted-option', 'tcp.bad-timestamp-option', 'tcp.bad-window-scale-option', 'tcp.beyond-window', 'tcp.closed-unknown-flow', 'tcp.data-after-fin', 'tcp.flow-add-failed', 'tcp.flow-limit', 'tcp.forward-family', 'tcp.forward-tuple-taken', 'tcp.host-data-dropped', 'tcp.no-ack', 'tcp.no-flow', 'tcp.no-service', 'tcp.ooo-full', 'tcp.out-of-window', 'tcp.rst-no-flow', 'tcp.segment-while-connecting', 'tcp.syn-sent-unexpected', 'tcp.truncated', 'tcp.unexpected-host-connect', 'tcp.unexpected-host-end', 'tcp.unknown-flow', 'tcp.zero-port'] },
  { layer: 'nat', about: 'flows the NAT refuses: policy, egress rules, limits, rates, unbindable ports', reasons: ['nat.dns-no-upstream', 'nat.egress-denied', 'nat.egress-public-default', 'nat.hairpin-refused', 'nat.host-loopback-disabled', 'nat.inside-network', 'nat.ipv6-off', 'nat.martian-destination', 'nat.multicast-destination', 'nat.new-flow-rate', 'nat.no-host', 'nat.no-service-host', 'nat.restricted', 'nat.tcp-guest-limit', 'nat.tcp-port-not-kept', 'nat.udp-bind-failed', 'nat.udp-filtered', 'nat.udp-guest-limit', 'nat.udp-peer-evicted', 'nat.udp-pending-full', 'nat.udp-port-not-preserved', 'nat.zero-port'] },
  { layer: 'hostfwd', about: 'clients of a forwarded host port that could not be forwarded', reasons: ['hostfwd.no-guest-address', 'hostfwd.no-session', 'hostfwd.refused-by-session', 'hostfwd.socket-error'] },
  { layer: 'dhcp', about: 'DHCPv4 and DHCPv6 messages the server does not answer', reasons: ['dhcp.bad-chaddr', 'dhcp.bad-decline', 'dhcp.bad-hlen', 'dhcp.bad-overload', 'dhcp.bad-request', 'dhcp.decline-not-leased', 'dhcp.internal-error', 'dhcp.no-end-option', 'dhcp.no-magic-cookie', 'dhcp.no-message-type', 'dhcp.not-request', 'dhcp.other-server', 'dhcp.pool-exhausted', 'dhcp.port-lease-limit', 'dhcp.relayed', 'dhcp.release-not-leased', 'dhcp.server-message', 'dhcp.truncated', 'dhcp.truncated-option', 'dhcp.unsupported-hardware', 'dhcp6.bad-ia-na', 'dhcp6.bad-option', 'dhcp6.bad-source', 'dhcp6.confirm-without-addresses', 'dhcp6.decline-ignored', 'dhcp6.ignored-type', 'dhcp6.information-request-with-ia', 'dhcp6.no-client-id', 'dhcp6.no-server-id', 'dhcp6.other-server', 'dhcp6.stateful-unsupported', 'dhcp6.truncated'] },
  { layer: 'dns', about: 'DNS queries refused or failed (answered SERVFAIL or not at all), and upstream socket errors by errno', reasons: ['dns.bad-label-type', 'dns.bad-pointer', 'dns.bad-question-count', 'dns.compressed-question', 'dns.duplicate-query', 'dns.name-too-long', 'dns.no-question', 'dns.no-upstream', 'dns.opcode-unsupported', 'dns.query-too-big', 'dns.response-from-guest', 'dns.servfail-without-question', 'dns.too-many-pending', 'dns.too-many-upstreams', 'dns.truncated', 'dns.truncated-name', 'dns.truncated-question', 'dns.unknown-flow', 'dns.unmatched-reply', ...errnos('dns.upstream-'), 'dns.upstream-not-response', 'dns.upstream-timeout', 'dns.upstream-truncated', 'dns.upstreams-failed'] },
  { layer: 'tftp', about: 'TFTP requests and packets the read-only server refuses', reasons: ['tftp.after-end', 'tftp.bad-blksize', 'tftp.bad-mode', 'tftp.duplicate-ack', 'tftp.duplicate-request', 'tftp.file-error', 'tftp.guest-error', 'tftp.name-bad-byte', 'tftp.name-empty', 'tftp.name-escapes', 'tftp.name-too-long', 'tftp.no-file-access', 'tftp.option-without-value', 'tftp.stale-ack', 'tftp.timed-out', 'tftp.too-many-options', 'tftp.too-many-transfers', 'tftp.truncated', 'tftp.unexpected-opcode', 'tftp.unknown-opcode', 'tftp.unknown-tid', 'tftp.unterminated-string', 'tftp.write-refused'] },
  { layer: 'portmap', about: 'NAT-PMP and PCP requests refused', reasons: ['natpmp.truncated', 'portmap.guest-limit', 'portmap.natpmp-unsupported-opcode', 'portmap.network-limit', 'portmap.pcp-error', 'portmap.response', 'portmap.socket-error', 'portmap.suggested-port-taken', 'portmap.too-many-waiters', 'portmap.too-short', 'portmap.wrong-owner'] },
  { layer: 'stack', about: 'the gateway\'s own faults, caught and counted instead of crashing', reasons: ['stack.internal-error', 'stack.mixed-family'] },
  { layer: 'e1000', about: 'the emulated e1000: driver accesses it ignores, frames it cannot move, snapshots it refuses to restore', reasons: ['e1000.ctrl-rst', 'e1000.dma-address-too-high', 'e1000.io-reserved', 'e1000.loopback-busy', 'e1000.read-unhandled-reg', 'e1000.rx-link-down', 'e1000.rx-null-buffer', 'e1000.rx-overrun', 'e1000.snapshot-autoneg', 'e1000.snapshot-eeprom', 'e1000.snapshot-io', 'e1000.snapshot-microwire', 'e1000.snapshot-mitigation', 'e1000.snapshot-not-object', 'e1000.snapshot-pci', 'e1000.snapshot-phy', 'e1000.snapshot-rctl-blackout', 'e1000.snapshot-regs', 'e1000.snapshot-tx', 'e1000.snapshot-version', 'e1000.tx-empty', 'e1000.tx-link-down', 'e1000.tx-ring-wrap', 'e1000.tx-without-bus-master', 'e1000.write-read-only-reg', 'e1000.write-unhandled-reg', 'e1000-ws.bad-opcode', 'e1000-ws.bad-size', 'e1000-ws.dma-gave-up', 'e1000-ws.dma-reply-length', 'e1000-ws.dma-too-long', 'e1000-ws.duplicate-hello', 'e1000-ws.empty-message', 'e1000-ws.internal-error', 'e1000-ws.no-hello', 'e1000-ws.rx-queue-full', 'e1000-ws.socket-error', 'e1000-ws.text-message', 'e1000-ws.truncated', 'e1000-ws.unexpected-dma', 'e1000-ws.unexpected-dma-reply', 'e1000-ws.version'] },
  { layer: 'v86', about: 'the in-browser v86 NIC bridge', reasons: ['v86.bridge-text-message', 'v86.dma-outside-ram', 'v86.e1000-dead-read', 'v86.e1000-dead-write', 'v86.e1000-read-timeout', 'v86.e1000-socket-closed', 'v86.relay-not-open', 'v86.relay-text-message', 'v86.rx-queue-full'] },
  { layer: 'api', about: 'control API requests refused (by error code) and stream data dropped for slow clients', reasons: ['api.bad-field', 'api.bad-json', 'api.body-too-large', 'api.busy', 'api.client-error', 'api.conflict', 'api.forbidden-host', 'api.forbidden-origin', 'api.internal', 'api.method-not-allowed', 'api.not-found', 'api.unauthorized', 'api.unsupported-media-type', 'capture.dropped', 'events.dropped'] },
] as const satisfies readonly DropReasonGroup[];

/** Every drop reason. */
export type Drop = (typeof DROP_REASON_GROUPS)[number]['reasons'][number];

/** Every drop reason, in the order of the groups. */
export const DROP_REASONS: readonly Drop[] = DROP_REASON_GROUPS.flatMap((g) => g.reasons);

const DROP_SET: ReadonlySet<string> = new Set(DROP_REASONS);

/** True for a name of the list. */
export const isDropReason = (name: string): name is Drop => DROP_SET.has(name);

/**
 * Events counted in the same bags as the drops but that drop nothing (a request served, a
 * mapping created, a MAC that moved, a frame an impairment duplicated). They are not drop
 * reasons: /metrics shows them as `tslirp_gateway_events_total{event}`.
 */
export const COUNTED_EVENTS = [
  'dhcp6.advertise', 'dhcp6.reply',
  'impair.duplicate', 'impair.reorder',
  'ndp.router-advertisement-sent', 'ndp.router-solicitation',
  'portmap.created', 'portmap.deleted', 'portmap.expired', 'portmap.natpmp-requests', 'portmap.pcp-requests', 'portmap.renewed',
  'switch.mac-moved', 'switch.mac-table-full',
  'v86.bridge-from-daemon', 'v86.bridge-ring-full', 'v86.bridge-to-daemon',
] as const;
export type CountedEvent = (typeof COUNTED_EVENTS)[number];

/** The list as README shows it (section "Drop reasons"): one line per layer, its reasons in order. */
export function dropReasonsMarkdown(): string {
  return DROP_REASON_GROUPS.map((g) => `- **${g.layer}** — ${g.about}: ${g.reasons.map((r) => `\`${r}\``).join(', ')}.`).join('\n') + '\n';
}
