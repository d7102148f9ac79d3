/**
 * The JSON shapes of the control API: sessions, networks, leases, flows and forwards as
 * plain objects, built from what the daemon offers (src/daemon/control.ts). Ids are strings;
 * addresses are text; times are ISO 8601 (wall clock) or milliseconds (ages). The OpenAPI
 * document (openapi.json) describes every field here.
 */
import type { DaemonControl, ForwardView, NetworkFlow, NetworkLease, NetworkMapping } from '../daemon/control.js';
import type { LiveNetwork } from '../daemon/live-network.js';
import type { Session } from '../daemon/session.js';
import { formatEndpoint, formatIpAddr } from '../net/addr.js';
import { formatIpv4Addr } from '../util/bytes.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json | undefined };

/** The wall-clock time of a moment on the daemon's monotonic clock. */
export type WallClock = (monotonicMs: number) => Date;

export function sessionView(s: Session): Json {
  return {
    id: s.id,
    network: s.network.name,
    privateNetwork: s.privateNetwork,
    link: { kind: s.kind, peer: s.peer },
    startedAt: s.startedAt.toISOString(),
    ...s.traffic,
    drops: s.drops(),
  };
}

export function networkView(n: LiveNetwork, control: DaemonControl): Json {
  const c = n.config;
  const stack = n.network.stack;
  const flows = { tcp: 0, udp: 0 };
  for (const f of stack.flows()) flows[f.protocol]++;
  const tftp = stack.tftpStats();
  return {
    name: n.name,
    sessions: control.sessionsOf(n).map((s) => s.id),
    config: {
      net: `${formatIpv4Addr(c.net)}/${c.prefixLen}`,
      gateway: formatIpv4Addr(c.host),
      dns: formatIpv4Addr(c.dns),
      dhcpStart: formatIpv4Addr(c.dhcpStart),
      dhcpPool: c.dhcpPoolSize,
      mtu: c.mtu,
    },
    // The gateway's view: rx is what the guests sent it, tx what it sent them.
    gateway: { ...stack.stats },
    flows,
    leases: n.leases().filter((l) => l.state === 'bound').length,
    // The gateway's TFTP server (--tftp); null on a network without one.
    tftp: tftp === undefined ? null : { ...tftp },
    counters: n.counters(),
  };
}

export function leaseView(l: NetworkLease, wall: WallClock): Json {
  return {
    network: l.network,
    mac: l.mac,
    address: formatIpv4Addr(l.ip),
    hostname: l.hostname ?? null,
    state: l.state,
    expiresAt: wall(l.expiresAtMs).toISOString(),
  };
}

export function flowView(f: SessionFlow): Json {
  return {
    id: `${f.network}/${f.id}`,
    network: f.network,
    session: f.session ?? null,
    protocol: f.protocol,
    origin: f.origin,
    state: f.state,
    guest: formatEndpoint(f.guest),
    remote: formatEndpoint(f.remote),
    host: formatEndpoint(f.host),
    local: f.local === undefined ? null : formatEndpoint(f.local),
    bytesFromGuest: f.bytesFromGuest,
    bytesToGuest: f.bytesToGuest,
    packetsFromGuest: f.packetsFromGuest,
    packetsToGuest: f.packetsToGuest,
    ageMs: Math.round(f.ageMs),
    idleMs: Math.round(f.idleMs),
  };
}

/** A UDP NAT mapping (events `mapping.created`, `mapping.expired`). */
export function mappingView(m: NetworkMapping): Json {
  return {
    id: `${m.network}/${m.id}`,
    network: m.network,
    origin: m.origin,
    guest: formatEndpoint(m.guest),
    public: m.public === undefined ? null : formatEndpoint(m.public),
    socket: m.socket,
    remote: formatEndpoint(m.remote),
    allows: m.allows,
    peers: m.peers.map((p) => ({ remote: formatEndpoint(p.remote), host: formatEndpoint(p.host), packetsOut: p.packetsOut, bytesOut: p.bytesOut, packetsIn: p.packetsIn, bytesIn: p.bytesIn })),
    ageMs: Math.round(m.ageMs),
    expiresInMs: Math.max(0, Math.round(m.expiresInMs)),
    packetsFromGuest: m.packetsFromGuest,
    bytesFromGuest: m.bytesFromGuest,
    packetsToGuest: m.packetsToGuest,
    bytesToGuest: m.bytesToGuest,
  };
}

export function forwardView(f: ForwardView): Json {
  const first = f.ports[0]!;
  const last = f.ports.at(-1)!;
  return {
    id: f.id,
    source: f.source,
    rule: f.rule,
    protocol: first.protocol,
    hostAddr: formatIpAddr(first.hostAddr),
    hostPorts: first.hostPort === last.hostPort ? `${first.hostPort}` : `${first.hostPort}-${last.hostPort}`,
    guestAddr: first.guestAddr !== undefined ? formatIpAddr(first.guestAddr) : (first.guestName ?? null),
    guestPorts: first.guestPort === last.guestPort ? `${first.guestPort}` : `${first.guestPort}-${last.guestPort}`,
    bound: [...f.bound],
    network: f.network ?? null,
    refusals: { ...f.refusals },
  };
}

/** Every bound lease of every live network. */
export function allLeases(control: DaemonControl): NetworkLease[] {
  return control.networks.filter((n) => !n.closed).flatMap((n) => n.leases().filter((l) => l.state === 'bound').map((l) => ({ ...l, network: n.name })));
}

/** A flow with the session whose guest holds its guest address, when that is known. */
export interface SessionFlow extends NetworkFlow {
  readonly session: string | undefined;
}

/**
 * Every flow of the networks given, each with its session: the only one on its network, else
 * the one whose switch port last sent from the MAC that holds the flow's guest address.
 */
export function flowsOf(control: DaemonControl, networks: readonly LiveNetwork[]): SessionFlow[] {
  const now = control.nowMs();
  return networks.filter((n) => !n.closed).flatMap((n) => {
    const sessions = control.sessionsOf(n);
    const byPort = new Map(sessions.map((s) => [s.portId, s.id]));
    const portOfMac = new Map(n.network.switch.macs(now).map((r) => [r.mac, r.port]));
    const sessionOfIp = new Map<number, string>();
    for (const l of n.leases()) {
      const port = portOfMac.get(l.mac.toLowerCase());
      const id = port === undefined ? undefined : byPort.get(port);
      if (id !== undefined) sessionOfIp.set(l.ip, id);
    }
    const only = sessions.length === 1 ? sessions[0]!.id : undefined;
    return n.network.stack.flows().map((f) => ({ ...f, network: n.name, session: only ?? (typeof f.guest.addr === 'number' ? sessionOfIp.get(f.guest.addr) : undefined) }));
  });
}
