/**
 * The DHCP server of one virtual network (RFC 2131), sans-IO: a guest datagram to port 67
 * goes in, at most one reply comes out, with its IP and Ethernet destination chosen per
 * RFC 2131 §4.1. The stack does the UDP/IP/Ethernet wrapping.
 *
 * What it does: DISCOVER → OFFER (the address is held for OFFER_HOLD_MS), REQUEST in all
 * four client states of RFC 2131 §4.3.2 → ACK or NAK, RELEASE, DECLINE (the address is
 * quarantined for DECLINE_QUARANTINE_MS), INFORM → ACK without lease. It is authoritative
 * for its network, like dnsmasq with `dhcp-authoritative`: an INIT-REBOOT or RENEWING client
 * asking for a free pool address gets it even after the server lost its table (a restarted
 * daemon), and gets a NAK for an address that is taken, outside the pool or off the network.
 *
 * What it does not do: relays (giaddr ≠ 0 is counted and ignored), BOOTP without option 53,
 * hardware other than Ethernet, option overload in replies (they stay small: the options
 * that do not fit the client's maximum message size are left out, least wanted first).
 *
 * Leases per port. On a shared network one guest could invent MACs until the pool is empty
 * (DHCP starvation). The stack says which port (a session's link) each message came through;
 * a port whose clients already hold `maxLeasesPerPort` live leases or offers gets no new one
 * ('dhcp.port-lease-limit') — its clients that hold one keep renewing it.
 *
 * Every message it ignores is counted as `dhcp.<reason>`.
 */
import { BROADCAST_MAC, formatMac, type Ipv4Addr } from '../util/bytes.js';
import { isDrop, type Counters, type Drop } from '../util/drops.js';
import {
  BOOTP_MIN_LEN,
  BOOTREPLY,
  BOOTREQUEST,
  DHCP_FIXED_LEN,
  optionsLength,
  parseDhcp,
  writeDhcp,
  dhcpLength,
  type Dhcp,
  type DhcpOption,
} from './wire.js';
import {
  MIN_MAX_MESSAGE_SIZE,
  MSG,
  OPT,
  encodeBootfileName,
  encodeBroadcast,
  encodeClasslessRoutes,
  type ClasslessRoute,
  encodeDnsServers,
  encodeDomainName,
  encodeDomainSearch,
  encodeHostname,
  encodeLeaseTime,
  encodeMessage,
  encodeMessageType,
  encodeMtu,
  encodeRebindingTime,
  encodeRenewalTime,
  encodeRouters,
  encodeServerId,
  encodeSubnetMask,
  encodeTftpServerName,
  readClientId,
  readHostname,
  readMaxMessageSize,
  readMessageType,
  readParameterRequestList,
  readRequestedIp,
  readServerId,
} from './options.js';
import { LeaseTable, type Lease, type LeaseClient } from './leases.js';

/** How long an OFFER reserves its address for the REQUEST that should follow. */
export const OFFER_HOLD_MS = 60_000;
/** How long a DECLINEd address stays out of the pool (dnsmasq uses the same 10 minutes). */
export const DECLINE_QUARANTINE_MS = 600_000;
/** IPv4 (20, no options) plus UDP (8) headers around the BOOTP message. */
const IP_UDP_HEADERS_LEN = 28;
const HTYPE_ETHERNET = 1;
const ETHERNET_ADDR_LEN = 6;
const LIMITED_BROADCAST: Ipv4Addr = 0xffffffff;
const DEFAULT_MTU = 1500;

/** A reply to send: the stack wraps it in UDP host:67 → toIp:68 and Ethernet from gatewayMac. */
export interface DhcpReply {
  /** a complete BOOTP message, freshly allocated, the caller's to keep */
  readonly message: Uint8Array;
  /** IPv4 destination per RFC 2131 §4.1 (255.255.255.255 for broadcast) */
  readonly toIp: Ipv4Addr;
  /** Ethernet destination (ff:ff:ff:ff:ff:ff for broadcast) */
  readonly toMac: Uint8Array;
}

/** A lease as the control API lists it: the table's record without its internal key. */
export type DhcpLease = Omit<Lease, 'key'>;

const utf8 = new TextEncoder();
const toHexId = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * What the DHCP server needs of its network's configuration (the stack passes its
 * `StackConfig`, which has these fields and more; addresses are uint32).
 */
export interface DhcpServerOptions {
  /** The network (host bits zero) and its mask: a requested address off it gets a NAK. */
  readonly net: Ipv4Addr;
  readonly netmask: Ipv4Addr;
  /** The server's own address: server identifier (option 54) and router (option 3). */
  readonly host: Ipv4Addr;
  /** The DNS server handed out (option 6). */
  readonly dns: Ipv4Addr;
  /** The pool: `dhcpPoolSize` addresses (QEMU: 16) from `dhcpStart`. */
  readonly dhcpStart: Ipv4Addr;
  readonly dhcpPoolSize: number;
  /** Lease time in seconds (options 51, 58, 59). */
  readonly leaseTimeS: number;
  /** Options 15, 119, 12 (when undefined, the client's own name is echoed), 26, 66, 67, 121. */
  readonly domainName: string | undefined;
  readonly dnsSearch: readonly string[];
  readonly hostname: string | undefined;
  /** The guest link's MTU, 68..65520. */
  readonly mtu: number;
  readonly tftpServerName: string | undefined;
  readonly bootFile: string | undefined;
  readonly routes: readonly ClasslessRoute[];
  /** Live leases and offers the clients behind one port may hold (`--max-session-leases`); default DEFAULT_LEASES_PER_PORT. */
  readonly maxLeasesPerPort?: number | undefined;
}

/** A guest with a few NICs or containers fits; a MAC-inventing one stops here. */
export const DEFAULT_LEASES_PER_PORT = 4;

/** The DHCP server; see the module comment. */
export class DhcpServer {
  readonly #config: DhcpServerOptions;
  readonly #counters: Counters;
  readonly #table: LeaseTable;
  /** `maxLeasesPerPort`, replaced by a reload (`setMaxLeasesPerPort`). */
  #maxLeasesPerPort: number;

  constructor(config: DhcpServerOptions, counters: Counters) {
    this.#config = config;
    this.#counters = counters;
    this.#table = new LeaseTable(config.dhcpStart, config.dhcpPoolSize);
    this.#maxLeasesPerPort = config.maxLeasesPerPort ?? DEFAULT_LEASES_PER_PORT;
  }

  /**
   * A new per-port bound for the requests from now on (a reload). Leases already held above
   * a lowered bound are kept until they expire or are released; only new ones are refused.
   */
  setMaxLeasesPerPort(n: number): void {
    this.#maxLeasesPerPort = n;
  }

  /**
   * `payload`: UDP payload of a guest datagram to port 67; srcMac: its Ethernet source; srcIp:
   * its IPv4 source (0 when unconfigured); `port`: the network port it came through, when
   * known (the per-port lease limit). Never throws.
   */
  receive(payload: Uint8Array, srcMac: Uint8Array, srcIp: Ipv4Addr, nowMs: number, port?: number): DhcpReply | undefined {
    try {
      return this.#receive(payload, srcMac, srcIp, nowMs, port);
    } catch {
      // A bug of ours, never the guest's fault: keep the stack running and make it visible.
      this.#counters.count('dhcp.internal-error');
      return undefined;
    }
  }

  /** The live leases, in address order. */
  leases(nowMs: number): readonly DhcpLease[] {
    return this.#table.list(nowMs).map(({ mac, clientId, ip, hostname, state, expiresAtMs, owner }) => ({
      mac,
      clientId,
      ip,
      hostname,
      state,
      expiresAtMs,
      ...(owner !== undefined && { owner }),
    }));
  }

  /** The bound address of this MAC, if any. */
  addressOf(mac: Uint8Array, nowMs: number): Ipv4Addr | undefined {
    const text = formatMac(mac);
    return this.#table.list(nowMs).find((l) => l.state === 'bound' && l.mac === text)?.ip;
  }

  /**
   * Whether `ip` is bound to a client of another MAC than `mac`: a frame from `mac` that
   * claims it (an ARP sender, an IPv4 source) is spoofing a lease holder's address.
   */
  boundToOther(ip: Ipv4Addr, mac: Uint8Array, nowMs: number): boolean {
    const lease = this.#table.at(ip, nowMs);
    return lease?.state === 'bound' && lease.mac !== formatMac(mac);
  }

  /** A client with no live lease, behind a port whose clients hold the most they may. */
  #overPortLimit(client: LeaseClient, nowMs: number): boolean {
    if (client.owner === undefined || this.#table.find(client.key, nowMs) !== undefined) return false;
    return this.#table.countOwned(client.owner, nowMs) >= this.#maxLeasesPerPort;
  }

  #drop(reason: Drop): DhcpReply | undefined {
    this.#counters.count(reason);
    return undefined;
  }

  #receive(payload: Uint8Array, _srcMac: Uint8Array, srcIp: Ipv4Addr, nowMs: number, port: number | undefined): DhcpReply | undefined {
    const m = parseDhcp(payload);
    if (isDrop(m)) {
      this.#counters.count(m);
      return undefined;
    }
    if (m.op !== BOOTREQUEST) return this.#drop('dhcp.not-request');
    if (m.htype !== HTYPE_ETHERNET || m.hlen !== ETHERNET_ADDR_LEN) return this.#drop('dhcp.unsupported-hardware');
    // RFC 2131 §4.1 would answer through the relay; there is no relay on a virtual link.
    if (m.giaddr !== 0) return this.#drop('dhcp.relayed');
    const type = readMessageType(m);
    if (type === undefined) return this.#drop('dhcp.no-message-type');
    const mac = m.chaddr.subarray(0, ETHERNET_ADDR_LEN);
    // A group address cannot hold a lease, and a unicast reply to it would reach everyone.
    if ((mac[0]! & 1) !== 0) return this.#drop('dhcp.bad-chaddr');
    const id = readClientId(m);
    const clientId = id === undefined ? undefined : toHexId(id);
    const client: LeaseClient = {
      key: clientId === undefined ? `mac:${formatMac(mac)}` : `id:${clientId}`,
      mac: formatMac(mac),
      clientId,
      hostname: readHostname(m),
      owner: port,
    };
    switch (type) {
      case MSG.DISCOVER:
        return this.#discover(m, client, nowMs);
      case MSG.REQUEST:
        return this.#request(m, client, nowMs);
      case MSG.DECLINE:
        return this.#decline(m, client, nowMs);
      case MSG.RELEASE:
        return this.#release(m, client, nowMs);
      case MSG.INFORM:
        // RFC 2131 §4.3.5: ACK to ciaddr; a client that left it zero is answered at its source address.
        return this.#reply(m, MSG.ACK, 0, undefined, m.ciaddr === 0 ? srcIp : m.ciaddr);
      default: // OFFER, ACK, NAK: server messages, not ours to receive
        return this.#drop('dhcp.server-message');
    }
  }

  /** RFC 2131 §4.3.1. */
  #discover(m: Dhcp, client: LeaseClient, nowMs: number): DhcpReply | undefined {
    if (this.#overPortLimit(client, nowMs)) return this.#drop('dhcp.port-lease-limit');
    const ip = this.#table.choose(client.key, readRequestedIp(m), nowMs);
    if (ip === undefined) return this.#drop('dhcp.pool-exhausted');
    let lease = this.#table.find(client.key, nowMs);
    // A bound client that asks again keeps its binding; anyone else gets a fresh hold.
    if (lease?.state !== 'bound' || lease.ip !== ip)
      lease = this.#table.put(client, ip, 'offered', nowMs + OFFER_HOLD_MS, nowMs);
    if (lease === undefined) return this.#drop('dhcp.internal-error');
    return this.#reply(m, MSG.OFFER, lease.ip, lease, 0);
  }

  /** RFC 2131 §4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING. */
  #request(m: Dhcp, client: LeaseClient, nowMs: number): DhcpReply | undefined {
    const serverId = readServerId(m);
    const requested = readRequestedIp(m);
    if (serverId !== undefined && serverId !== this.#config.host) {
      // The client chose another server's offer: ours is no longer wanted.
      const held = this.#table.find(client.key, nowMs);
      if (held?.state === 'offered') this.#table.release(client.key, held.ip, nowMs);
      return this.#drop('dhcp.other-server');
    }
    let want: Ipv4Addr;
    if (serverId !== undefined) {
      // SELECTING: 'requested IP address' MUST be filled in, 'ciaddr' MUST be zero.
      if (requested === undefined || m.ciaddr !== 0) return this.#drop('dhcp.bad-request');
      want = requested;
    } else if (m.ciaddr !== 0) {
      want = m.ciaddr; // RENEWING (unicast) or REBINDING (broadcast): the server cannot tell, and need not
    } else if (requested !== undefined) {
      want = requested; // INIT-REBOOT
    } else {
      return this.#drop('dhcp.bad-request');
    }
    const c = this.#config;
    if (((want & c.netmask) >>> 0) !== c.net) return this.#nak(m, 'requested address is not on this network');
    const current = this.#table.find(client.key, nowMs);
    if (current === undefined && this.#overPortLimit(client, nowMs)) return this.#drop('dhcp.port-lease-limit');
    if (current !== undefined && current.ip !== want && (current.state === 'bound' || serverId !== undefined))
      return this.#nak(m, 'requested address is not the one leased to this client');
    if (!this.#table.availableFor(want, client.key, nowMs))
      return this.#nak(m, this.#table.inPool(want) ? 'requested address is not available' : 'requested address is outside the pool');
    const lease = this.#table.put(client, want, 'bound', nowMs + c.leaseTimeS * 1000, nowMs);
    if (lease === undefined) return this.#drop('dhcp.internal-error');
    return this.#reply(m, MSG.ACK, lease.ip, lease, 0);
  }

  /** RFC 2131 §4.3.3. */
  #decline(m: Dhcp, client: LeaseClient, nowMs: number): DhcpReply | undefined {
    const serverId = readServerId(m);
    if (serverId !== undefined && serverId !== this.#config.host) return this.#drop('dhcp.other-server');
    const ip = readRequestedIp(m);
    if (ip === undefined) return this.#drop('dhcp.bad-decline');
    if (this.#table.at(ip, nowMs)?.key !== client.key) return this.#drop('dhcp.decline-not-leased');
    this.#table.quarantine(ip, nowMs + DECLINE_QUARANTINE_MS, nowMs);
    return undefined;
  }

  /** RFC 2131 §4.3.4. */
  #release(m: Dhcp, client: LeaseClient, nowMs: number): DhcpReply | undefined {
    const serverId = readServerId(m);
    if (serverId !== undefined && serverId !== this.#config.host) return this.#drop('dhcp.other-server');
    if (!this.#table.release(client.key, m.ciaddr, nowMs)) return this.#drop('dhcp.release-not-leased');
    return undefined;
  }

  /** RFC 2131 §4.3.2: a NAK carries only 53, 54, 56 and the client id; always broadcast (§4.1). */
  #nak(m: Dhcp, reason: string): DhcpReply {
    const options = [encodeMessageType(MSG.NAK), encodeServerId(this.#config.host), encodeMessage(reason)];
    const id = readClientId(m);
    if (id !== undefined) options.push({ code: OPT.CLIENT_ID, data: id.slice() });
    return this.#finish(m, MSG.NAK, options, 0, 0, { toIp: LIMITED_BROADCAST, toMac: BROADCAST_MAC.slice() });
  }

  /**
   * OFFER/ACK with a lease, or ACK to an INFORM (lease undefined: no yiaddr, no 51/58/59,
   * RFC 2131 §4.3.5). `informTo` is the INFORM client's address (ciaddr, else the
   * datagram's source), 0 otherwise.
   */
  #reply(m: Dhcp, type: number, yiaddr: Ipv4Addr, lease: Lease | undefined, informTo: Ipv4Addr): DhcpReply {
    const c = this.#config;
    const must: DhcpOption[] = [encodeMessageType(type), encodeServerId(c.host)];
    if (lease !== undefined) {
      must.push(
        encodeLeaseTime(c.leaseTimeS),
        encodeRenewalTime(Math.floor(c.leaseTimeS * 0.5)),
        encodeRebindingTime(Math.floor(c.leaseTimeS * 0.875)),
      );
    }
    must.push(encodeSubnetMask(c.netmask), encodeRouters([c.host]), encodeDnsServers([c.dns]));
    // RFC 6842 §3: a server MUST echo the client identifier.
    const id = readClientId(m);
    if (id !== undefined) must.push({ code: OPT.CLIENT_ID, data: id.slice() });

    const prl = readParameterRequestList(m) ?? new Uint8Array(0);
    const optional = new Map<number, DhcpOption>();
    optional.set(OPT.BROADCAST, encodeBroadcast((c.net | ~c.netmask) >>> 0));
    if (c.mtu !== DEFAULT_MTU || prl.includes(OPT.MTU)) optional.set(OPT.MTU, encodeMtu(c.mtu));
    const hostname = c.hostname ?? readHostname(m) ?? lease?.hostname;
    if (hostname !== undefined) optional.set(OPT.HOSTNAME, encodeHostname(hostname));
    if (c.domainName !== undefined) optional.set(OPT.DOMAIN_NAME, encodeDomainName(c.domainName));
    if (c.dnsSearch.length > 0) optional.set(OPT.DOMAIN_SEARCH, encodeDomainSearch(c.dnsSearch));
    if (c.routes.length > 0) {
      // RFC 3442 §3: a client that gets 121 ignores option 3, so the default route goes in too.
      const hasDefault = c.routes.some((r) => r.prefixLen === 0);
      optional.set(
        OPT.CLASSLESS_ROUTES,
        encodeClasslessRoutes(hasDefault ? c.routes : [...c.routes, { dest: 0, prefixLen: 0, gateway: c.host }]),
      );
    }
    if (c.tftpServerName !== undefined) optional.set(OPT.TFTP_SERVER_NAME, encodeTftpServerName(c.tftpServerName));
    if (c.bootFile !== undefined) optional.set(OPT.BOOTFILE_NAME, encodeBootfileName(c.bootFile));

    // RFC 2131 §4.3.1 / RFC 2132 §9.10: never exceed the client's maximum message size
    // (576 when it names none), nor our link MTU. Requested options go first, then the rest.
    const maxIp = Math.min(readMaxMessageSize(m) ?? MIN_MAX_MESSAGE_SIZE, Math.max(c.mtu, MIN_MAX_MESSAGE_SIZE));
    const budget = Math.max(BOOTP_MIN_LEN, maxIp - IP_UDP_HEADERS_LEN) - DHCP_FIXED_LEN - 1; // 1: End
    const options = [...must];
    let used = optionsLength(options);
    const order = [...new Set([...prl, ...optional.keys()])];
    for (const code of order) {
      const o = optional.get(code);
      if (o === undefined) continue;
      const n = optionsLength([o]);
      if (used + n > budget) continue;
      options.push(o);
      used += n;
    }

    // RFC 2131 §4.1, with giaddr = 0: ciaddr, else broadcast bit, else yiaddr at chaddr.
    let to: { toIp: Ipv4Addr; toMac: Uint8Array };
    const chaddr = m.chaddr.slice(0, ETHERNET_ADDR_LEN);
    if (m.ciaddr !== 0) to = { toIp: m.ciaddr, toMac: chaddr };
    else if (informTo !== 0) to = { toIp: informTo, toMac: chaddr };
    else if (m.broadcast || yiaddr === 0) to = { toIp: LIMITED_BROADCAST, toMac: BROADCAST_MAC.slice() };
    else to = { toIp: yiaddr, toMac: chaddr };
    // RFC 2131 table 3: an OFFER's ciaddr is 0, an ACK echoes the request's.
    return this.#finish(m, type, options, yiaddr, type === MSG.OFFER ? 0 : m.ciaddr, to);
  }

  #finish(m: Dhcp, type: number, options: readonly DhcpOption[], yiaddr: Ipv4Addr, ciaddr: Ipv4Addr, to: { toIp: Ipv4Addr; toMac: Uint8Array }): DhcpReply {
    const c = this.#config;
    // RFC 2131 table 3: a NAK leaves siaddr, sname and file empty.
    const nak = type === MSG.NAK;
    const bootFile = c.bootFile === undefined || nak ? undefined : utf8.encode(c.bootFile);
    const tftp = c.tftpServerName === undefined || nak ? undefined : utf8.encode(c.tftpServerName);
    const reply: Dhcp = {
      op: BOOTREPLY,
      htype: m.htype,
      hlen: m.hlen,
      hops: 0,
      xid: m.xid,
      secs: 0,
      broadcast: m.broadcast,
      ciaddr,
      yiaddr,
      // PXE firmware loads `file` from `siaddr` (RFC 2131 §2); our TFTP server is the gateway.
      siaddr: bootFile === undefined ? 0 : c.host,
      giaddr: 0,
      chaddr: m.chaddr,
      // Fixed fields too, for BOOTP-era firmware, when they fit with their NUL terminator.
      sname: tftp !== undefined && tftp.length < 64 ? tftp : new Uint8Array(0),
      file: bootFile !== undefined && bootFile.length < 128 ? bootFile : new Uint8Array(0),
      options,
    };
    const message = new Uint8Array(dhcpLength(reply));
    writeDhcp(reply, message, 0);
    return { message, ...to };
  }
}
