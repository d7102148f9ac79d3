/**
 * The command line of `tslirp`: parsing (node:util parseArgs, strict), validation and the
 * help text. Pure: nothing here touches the process, so tests call it directly.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_RSS_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_SOURCE } from '../daemon/daemon.js';
import { defaultListeners, describeSpec, isPublicSpec, parseDgramSpec, parseStreamSpec, parseWsSpec, runtimeDir, type ListenerSpec } from '../daemon/listen-spec.js';
import type { NetworkSettings } from '../daemon/networks.js';
import { parseDnsRecordOption } from '../dns/records.js';
import { parseDnsUpstream } from '../dns/resolv-conf.js';
import type { Endpoint } from '../net/addr.js';
import { networkNameProblem } from '../net/network-name.js';
import { parseCidr, type Cidr } from '../net/cidr.js';
import { normalizeOrigin } from '../link/ws-server.js';
import { DEFAULT_WS_IDLE_TIMEOUT_MS } from '../link/ws-frames.js';
import { resolveFlowLimits } from '../nat/flow-table.js';
import { parseForwardGroups, parseForwards } from '../nat/forwards.js';
import { resolveStackConfig } from '../stack/config.js';
import { parseApiSpec, type ApiListenSpec } from '../api/server.js';
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../util/config-error.js';

/** Log levels accepted by --log-level. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What the command line asks for. */
export type Command =
  | { readonly command: 'help' }
  | { readonly command: 'version' }
  | {
      readonly command: 'serve';
      readonly listeners: readonly ListenerSpec[];
      /** True when no listener option was given and the defaults apply. */
      readonly defaultListeners: boolean;
      /** Settings of every network from the plain options; its `forwards` are the plain --hostfwd rules. */
      readonly network: NetworkSettings;
      /** Networks that `--net-option` configures, with the plain settings overridden by theirs. */
      readonly networks: ReadonlyMap<string, NetworkSettings>;
      /** `--network NAME`: the network of every listener that names none. */
      readonly defaultNetwork: string | undefined;
      readonly dns: DnsSettings;
      /** `--ws-allow-origin` values, normalized (or '*'); also set on every ws listener spec. */
      readonly wsAllowOrigins: readonly string[];
      /** `--max-sessions`, `--max-sessions-per-source`, `--max-rss` (in bytes). */
      readonly sessionLimits: { readonly maxSessions: number; readonly maxSessionsPerSource: number; readonly maxRssBytes: number };
      /** `--ws-token-file`: the tokens WebSocket clients must present (read by the caller). */
      readonly wsTokenFile: string | undefined;
      /** `--ws-idle-timeout` in milliseconds (0: never). */
      readonly wsIdleTimeoutMs: number;
      /** `--trusted-proxy` prefixes. */
      readonly trustedProxies: readonly Cidr[];
      /** `--ws-tls-cert` and `--ws-tls-key`: serve wss:// (read by the caller). */
      readonly wsTls: { readonly cert: string; readonly key: string } | undefined;
      /** --pcap PATH as given: a directory or a pcapng file (src/pcap/tap.ts captureTarget decides). */
      readonly pcap: string | undefined;
      /** --record DIR: a replayable recording per network (src/replay). */
      readonly record: string | undefined;
      readonly logLevel: LogLevel;
      readonly api: ApiSettings;
    };

/** The control API's listeners (--api, --api-token-file). */
export interface ApiSettings {
  readonly listen: readonly ApiListenSpec[];
  /** True when --api was not given and the default socket (api.sock beside the default stream socket) is used. */
  readonly isDefault: boolean;
  readonly tokenFile: string | undefined;
}

/** Where the DNS forwarder's upstreams come from (what it answers itself, --dns-record, is a network setting). */
export interface DnsSettings {
  /** `--dns-upstream` endpoints, in order; when given, resolv.conf is not read. */
  readonly upstreams: readonly Endpoint[] | undefined;
  /** `--resolv-conf`: followed for changes when no --dns-upstream is given. */
  readonly resolvConf: string;
}

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

/** A refused command line; `option` names the offending option (without dashes) when there is one. */
export class UsageError extends Error {
  readonly option: string | undefined;
  constructor(message: string, option?: string) {
    super(message);
    this.name = 'UsageError';
    this.option = option;
  }
}

const OPTIONS = {
  stream: { type: 'string', multiple: true },
  dgram: { type: 'string', multiple: true },
  ws: { type: 'string', multiple: true },
  'ws-allow-origin': { type: 'string', multiple: true },
  'ws-token-file': { type: 'string' },
  'ws-public-without-auth': { type: 'boolean' },
  'ws-tls-cert': { type: 'string' },
  'trusted-proxy': { type: 'string', multiple: true },
  'ws-idle-timeout': { type: 'string' },
  'ws-tls-key': { type: 'string' },
  'max-sessions': { type: 'string' },
  'max-sessions-per-source': { type: 'string' },
  'max-rss': { type: 'string' },
  'egress-allow': { type: 'string', multiple: true },
  'egress-deny': { type: 'string', multiple: true },
  network: { type: 'string' },
  'net-option': { type: 'string', multiple: true },
  net: { type: 'string' },
  host: { type: 'string' },
  dns: { type: 'string' },
  dhcpstart: { type: 'string' },
  'dhcp-pool': { type: 'string' },
  'max-session-leases': { type: 'string' },
  domainname: { type: 'string' },
  dnssearch: { type: 'string', multiple: true },
  hostname: { type: 'string' },
  mtu: { type: 'string' },
  route: { type: 'string', multiple: true },
  'tftp-server-name': { type: 'string' },
  bootfile: { type: 'string' },
  tftp: { type: 'string' },
  'lease-time': { type: 'string' },
  hostfwd: { type: 'string', multiple: true },
  guestfwd: { type: 'string', multiple: true },
  restrict: { type: 'boolean' },
  'disable-host-loopback': { type: 'boolean' },
  'max-tcp-flows': { type: 'string' },
  'max-udp-flows': { type: 'string' },
  'max-network-tcp-flows': { type: 'string' },
  'max-network-udp-flows': { type: 'string' },
  'max-new-flows-per-second': { type: 'string' },
  'nat-pmp': { type: 'string' },
  'link-delay': { type: 'string' },
  'link-loss': { type: 'string' },
  'link-duplicate': { type: 'string' },
  'link-reorder': { type: 'string' },
  'link-rate': { type: 'string' },
  nat: { type: 'string' },
  'nat-mapping': { type: 'string' },
  'nat-filtering': { type: 'string' },
  'nat-hairpin': { type: 'string' },
  'nat-port-preservation': { type: 'string' },
  'nat-udp-timeout': { type: 'string' },
  'nat-refresh': { type: 'string' },
  outbound: { type: 'string' },
  outbound6: { type: 'string' },
  ipv6: { type: 'string' },
  'ipv6-net': { type: 'string' },
  'ipv6-host': { type: 'string' },
  'ipv6-dns': { type: 'string' },
  'ipv6-dhcp': { type: 'string' },
  'dns-upstream': { type: 'string', multiple: true },
  'resolv-conf': { type: 'string' },
  'dns-record': { type: 'string', multiple: true },
  pcap: { type: 'string' },
  record: { type: 'string' },
  'log-level': { type: 'string' },
  api: { type: 'string', multiple: true },
  'api-token-file': { type: 'string' },
  config: { type: 'string' },
  'print-config': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/** Every long option, for the help test. */
export const OPTION_NAMES: readonly string[] = Object.keys(OPTIONS);

/** resolveStackConfig's option names (QEMU's keys) → ours, where they differ. */
const CONFIG_OPTION_NAMES: Readonly<Record<string, string>> = { leasetime: 'lease-time', tftpservername: 'tftp-server-name', dhcppool: 'dhcp-pool' };

/**
 * The options that shape a network: given plainly they set every network, and
 * `--net-option NAME:KEY=VALUE,…` sets them for one (KEY is the long name without `--`).
 * Later issues add keys here, not syntax.
 */
export const NETWORK_KEYS = [
  'net', 'host', 'dns', 'dhcpstart', 'dhcp-pool', 'max-session-leases', 'domainname', 'dnssearch', 'hostname', 'mtu', 'route',
  'tftp-server-name', 'bootfile', 'tftp', 'lease-time', 'hostfwd', 'guestfwd', 'restrict', 'disable-host-loopback', 'dns-record',
  'max-tcp-flows', 'max-udp-flows', 'max-network-tcp-flows', 'max-network-udp-flows', 'max-new-flows-per-second',
  'nat-pmp', 'link-delay', 'link-loss', 'link-duplicate', 'link-reorder', 'link-rate',
  'nat', 'nat-mapping', 'nat-filtering', 'nat-hairpin', 'nat-port-preservation', 'nat-udp-timeout', 'nat-refresh', 'outbound', 'outbound6',
  'ipv6', 'ipv6-net', 'ipv6-host', 'ipv6-dns', 'ipv6-dhcp',
] as const;
export type NetworkKey = (typeof NETWORK_KEYS)[number];
/** Keys that take several values (repeatable options); the rest take one. */
const LIST_KEYS: ReadonlySet<string> = new Set<NetworkKey>(['dnssearch', 'route', 'hostfwd', 'guestfwd', 'dns-record']);
/** Keys that are switches: `restrict` or `restrict=on|off`. */
const BOOLEAN_KEYS: ReadonlySet<string> = new Set<NetworkKey>(['restrict', 'disable-host-loopback']);
const isNetworkKey = (k: string): k is NetworkKey => (NETWORK_KEYS as readonly string[]).includes(k);

/** A network's option values, as written: lists for LIST_KEYS, booleans for BOOLEAN_KEYS, text otherwise. */
type NetworkValues = Partial<Record<NetworkKey, string | readonly string[] | boolean>>;

export const HELP = `Usage: tslirp serve [options]
       tslirp --help | --version

Serves a user-mode network (SLIRP) to virtual machines. Every guest that connects gets its
own virtual LAN, or joins a named network that several guests share: a switch between
them, a gateway that answers ARP and ping, a DHCP server and a DNS address, with QEMU
-netdev user's names and defaults.

Listeners (each repeatable; giving any of them replaces the defaults):
  --stream unix:PATH         QEMU -netdev stream on a unix socket (4-byte length + frame)
  --stream tcp:HOST:PORT     QEMU -netdev stream over TCP
  --dgram udp:HOST:PORT      QEMU -netdev dgram over UDP, one session per sender address
  --ws HOST:PORT             WebSocket, one Ethernet frame per binary message at path /
                             (v86: net_device: { relay_url: 'ws://HOST:PORT/' }); the
                             same listener serves the e1000 device protocol at /e1000; a
                             client may name its network: ws://HOST:PORT/?network=NAME
  --ws-allow-origin ORIGIN   let web pages from ORIGIN (scheme://host[:port], e.g.
                             http://localhost:8000) open WebSockets (repeatable); '*'
                             allows any page. Requests carrying an Origin header (every
                             browser sends one) are refused with 403 otherwise; clients
                             without one (QEMU bridges, v86 under Node) are not affected
  --ws-token-file PATH       WebSocket clients must present a token of PATH (one per line,
                             optionally followed by network=NAME[,NAME...], the networks it
                             may join) as ?token= or Authorization: Bearer; else HTTP 401.
                             Re-read on SIGHUP
  --ws-public-without-auth   let a public WebSocket listener serve anyone, without tokens
  --ws-tls-cert PATH         serve wss:// with this certificate chain (PEM); needs
  --ws-tls-key PATH          this private key (PEM)
  --ws-idle-timeout SECONDS  end a WebSocket session whose client sent nothing for this
                             long, 0 for never (3600); peers that stop answering pings are
                             cut off after a minute whatever it says
  --trusted-proxy CIDR       a reverse proxy at CIDR (repeatable): a WebSocket request from
                             it is from the client its X-Forwarded-For names (the rightmost
                             address that is not a trusted proxy), in logs and for
                             --max-sessions-per-source
  HOST is an IP address (IPv6 in brackets); PORT 0 picks a free port. Any listener may end
  in ,network=NAME: its guests join network NAME (a WebSocket URL's ?network= wins). A
  listener is public when it binds a non-loopback address, or ends in ,public (a loopback
  listener behind a reverse proxy): a public WebSocket listener needs --ws-token-file (or
  --ws-public-without-auth), a public stream or dgram listener must say ,public (their
  protocols carry no credentials), and a network a public session joins gets the public
  egress default (below).

Networks:
  --network NAME             guests of every listener that names no network join network
                             NAME (without it, and without ,network= or ?network=, each
                             session gets a private network of its own). Names match
                             [a-z0-9][a-z0-9_-]{0,31}. Guests on one network share its
                             switch, DHCP pool, DNS, NAT and forwards, and reach each other
  --net-option NAME:KEY=VALUE[,KEY=VALUE...]
                             settings of network NAME alone, replacing the plain option's
                             value there: KEY is any option of the Network, NAT and Link
                             groups below without '--' (mtu=9000, hostfwd=tcp::8080-web:80,
                             restrict or restrict=off); a value may hold commas where the
                             option takes a list; repeatable. A network named here (or by
                             --network) exists from the start and keeps its leases and
                             forwards while guests come and go; others close with their
                             last guest
  Defaults: --ws 127.0.0.1:8080 and --stream unix:DIR/tslirp.sock, where DIR is
  $XDG_RUNTIME_DIR/tslirp, else /run/tslirp as root, else TMPDIR/tslirp-UID.

Network (each network's, as QEMU's -netdev user):
  --net ADDR/PREFIX          guest network (10.0.2.0/24); a dotted mask works too
                             (10.0.2.0/255.255.255.0)
  --host ADDR                gateway address (10.0.2.2)
  --dns ADDR                 virtual DNS server address (10.0.2.3)
  --dhcpstart ADDR           first address DHCP hands out (10.0.2.15)
  --dhcp-pool N              addresses DHCP hands out, 1 to 1024 (16, as QEMU)
  --max-session-leases N     leases (and offers) the guests of one session may hold, 1 to
                             1024 (4): a guest inventing MACs cannot drain a shared pool
  --domainname NAME          domain name, DHCP option 15
  --dnssearch NAME[,NAME]    DNS search list, DHCP option 119 (repeatable)
  --hostname NAME            host name sent to the guest, DHCP option 12
  --mtu N                    guest MTU, 68 to 65520 (1500)
  --route DEST/PREFIX=GW     static route, DHCP option 121 (repeatable; DEST/MASK=GW too)
  --tftp-server-name NAME    TFTP server name, DHCP option 66
  --bootfile FILE            boot file name, DHCP option 67
  --tftp DIR                 serve DIR read-only over TFTP at the gateway address (UDP 69;
                             QEMU's tftp=): RFC 1350 with the blksize, timeout, tsize and
                             windowsize options; names cannot leave DIR ('..' and links out
                             of it are refused), a leading '/' is relative to DIR
  --lease-time SECONDS       DHCP lease time, at least 60 (86400)
  --ipv6 on|off              IPv6 beside IPv4 (on): router advertisements for SLAAC
                             with the MTU and the DNS address (RDNSS), ICMPv6, and
                             IPv6 TCP/UDP through the NAT; needs --mtu 1280 or more
  --ipv6-net PREFIX/64       the guests' IPv6 prefix (fd00::/64, unique-local; QEMU's
                             fec0::/64 is deprecated site-local)
  --ipv6-host ADDR           IPv6 gateway address, reaching the host's ::1 (PREFIX::2)
  --ipv6-dns ADDR            IPv6 DNS server address (PREFIX::3)
  --ipv6-dhcp stateless|stateful
                             DHCPv6 (stateless): DNS settings only; stateful also
                             assigns addresses PREFIX::100-1ff (IA_NA, --lease-time,
                             --max-session-leases) and sets the advertisements' M flag

NAT (guest flows become host sockets):
  --hostfwd RULE             forward host ports to the guest, QEMU's syntax with ranges:
                             [tcp|udp]:[HOSTADDR]:PORTS-[GUESTADDR]:PORTS, PORTS being
                             PORT or FIRST-LAST (tcp::2222-:22, tcp::8000-8010-:8000-8010;
                             ranges of equal length; at most 512 ports in all); repeatable
                             or comma-separated. HOSTADDR defaults to 127.0.0.1; GUESTADDR is
                             an IPv4 address, a lease's DHCP host name (tcp::8080-web:80,
                             starting with a letter) or empty for the network's first DHCP
                             lease, resolved when a client connects. IPv6 addresses go in
                             brackets (tcp:[::1]:8080-[fd00::15]:80); a rule whose HOSTADDR is
                             IPv6 and GUESTADDR a name or empty reaches that guest's own IPv6
                             address (tcp:[::1]:8080-:80). Forwards belong to the
                             --network network; without one, to the first session that
                             connects (then to the next, once it ends)
  --guestfwd RULE            a virtual TCP server in the network that the host serves,
                             QEMU's syntax: tcp:SERVER:PORT-HOST:HOSTPORT relays each
                             connection to a host socket (judged by --egress-*),
                             tcp:SERVER:PORT-cmd:COMMAND runs COMMAND (sh -c) per
                             connection, its stdin and stdout the connection. SERVER is
                             an address of the network outside the DHCP pool; it answers
                             ARP and ping. Not refused by --restrict; repeatable
  --restrict                 no outbound flows at all; DHCP, DNS and ping of the
                             gateway still work (QEMU's restrict=on)
  --disable-host-loopback    the gateway address does not reach the host's 127.0.0.1
                             (by default 10.0.2.2:PORT is the host's 127.0.0.1:PORT)
  --max-tcp-flows N          TCP connections one guest may hold (4096); the oldest
                             TIME-WAIT one is recycled, else a new one is refused
  --max-udp-flows N          UDP flows one guest may hold (1024); the idlest is evicted
  --max-network-tcp-flows N  TCP connections of all a network's guests (16384)
  --max-network-udp-flows N  UDP flows of all a network's guests (4096)
  --max-new-flows-per-second N
                             TCP connections and UDP mappings the guests of one network
                             (a session's own, by default) may open per second, a burst of
                             N at once; beyond it SYNs and datagrams are dropped unanswered
                             (the guest's TCP retries) and counted (nat.new-flow-rate); 0,
                             the default, for no limit
  --nat TYPE                 full-cone, restricted-cone, port-restricted-cone or
                             symmetric: sets --nat-mapping and --nat-filtering (which,
                             given too, replace their half)
  --nat-mapping MODE         which guest datagrams share a host socket (RFC 4787): eim
                             all of one guest endpoint's, adm those to one address, apdm
                             those to one address and port (eim, as libslirp)
  --nat-filtering MODE       who may send in through it: eif anyone, adf addresses the
                             guest endpoint sent to, apdf endpoints it sent to (eif, as
                             libslirp). apdm with apdf uses connected sockets: only then
                             does a closed remote port give the guest ICMP port unreachable
  --nat-hairpin on|off       guests reach public endpoints of their own network (on)
  --nat-port-preservation on|off
                             bind the guest's source port on the host first (off)
  --nat-udp-timeout SECONDS  an idle UDP mapping expires, 1 to 86400 (120, RFC 4787's
                             minimum)
  --nat-refresh outbound|both
                             traffic that keeps a UDP mapping alive (both)
  --outbound ADDR            local IPv4 address the network's host sockets bind to
                             (any): its UDP and TCP flows, its DNS upstream queries and
                             --guestfwd relays; --hostfwd listeners keep their HOSTADDR
  --outbound6 ADDR           local IPv6 address the host sockets of the network's IPv6
                             flows bind to (any)
  --nat-pmp on|off           NAT-PMP (RFC 6886) and PCP (RFC 6887 MAP, ANNOUNCE) on the
                             gateway's UDP port 5351 (off): guest programs open inbound
                             mappings themselves, each a forward on 127.0.0.1 (the
                             --outbound address when set) that expires with its
                             lifetime; 16 per guest, 64 per network

Link impairment (each network's; every guest link, both directions, each on its own):
  --link-delay MS[:JITTER_MS]
                             delay every frame by MS milliseconds, ± JITTER_MS drawn
                             uniformly (jitter never reorders); 0 to 60000
  --link-loss PCT            drop PCT percent of frames (0 to 100, e.g. 0.5)
  --link-duplicate PCT       send PCT percent of frames twice
  --link-reorder PCT         hold PCT percent of frames back behind the next frame
                             (at most 10 ms when none follows)
  --link-rate RATE           a token bucket of RATE bits/s (k, M or G suffix: 10M) with
                             10 ms of burst; frames beyond a queue of 1000 frames or
                             4 MiB per direction are dropped

Sessions (daemon-wide; a link refused at a limit is closed at once, counted and logged):
  --max-sessions N           sessions alive at once, 1 to 65536 (256)
  --max-sessions-per-source N
                             sessions alive at once from one non-loopback address, 1 to
                             65536 (16); loopback clients (local emulators, a reverse
                             proxy) are not counted per address
  --max-rss MIB              refuse new sessions while the daemon's resident memory is above
                             MIB mebibytes, 64 to 1048576 (1024); existing sessions go on

Egress (where guests' flows may go; rules of every network):
  --egress-allow CIDR[,port=P[-P]]
  --egress-deny CIDR[,port=P[-P]]
                             rules checked for each new outbound flow, in command-line
                             order, first match wins; IPv4 or IPv6 (a bare address is one
                             host); judged after the gateway's rewrite (10.0.2.2 is
                             127.0.0.1 here); repeatable. When no rule matches, a public
                             network denies the host's loopback, 10/8, 172.16/12,
                             192.168/16, 100.64/10, 169.254/16, 0/8, multicast and
                             reserved space, ::1, fc00::/7, fe80::/10 and ff00::/8; other
                             networks allow. A refused flow gets a RST (TCP) or ICMP
                             administratively prohibited (UDP) at once

DNS (the forwarder at the --dns address, port 53):
  --dns-upstream HOST[:PORT] upstream resolver, tried in order (repeatable); replaces
                             --resolv-conf
  --resolv-conf PATH         take upstreams from PATH's nameserver lines and follow its
                             changes (/etc/resolv.conf)
  --dns-record NAME=ADDR     answer NAME with an A (IPv4) or AAAA (IPv6) record (repeatable;
                             a network setting); host.tslirp.internal always answers the
                             gateway address

Other:
  --pcap PATH                capture every session's frames. A PATH that is a directory or
                             ends in '/': one classic pcap per session,
                             PATH/tslirp-TIME-SESSION.pcap. Any other PATH: one pcapng file
                             for all sessions, one interface per session (name: session id)
  --record DIR               record every network for replay, one pcapng each: a private
                             network as DIR/tslirp-TIME-SESSION.pcapng, a shared one as
                             DIR/tslirp-TIME-network-NAME.pcapng (all its sessions); run one
                             again with 'tslirp replay FILE' (see 'tslirp replay --help')
  --log-level LEVEL          trace, debug, info, warn or error (info)
  --api unix:PATH|tcp:HOST:PORT
                             serve the control API (JSON over HTTP, /v1, /metrics;
                             tslirp ctl uses it) there (repeatable); default: unix:DIR/
                             api.sock beside the default stream socket (mode 0600);
                             --api off serves none. A TCP HOST must be loopback unless
                             --api-token-file is given
  --api-token-file PATH      every API request must bear Authorization: Bearer TOKEN,
                             TOKEN being PATH's first line
  --config FILE              read options from FILE, a JSON object whose keys are the long
                             option names without '--' ({"mtu": 9000, "hostfwd":
                             ["tcp::2222-:22"]}; schema: docs/config.schema.json); an
                             option on the command line replaces the file's value; read
                             again on SIGHUP
  --print-config             print the effective options as such a JSON object and exit
  -h, --help                 show this help and exit
  -V, --version              show the version and exit

Logs are JSON lines on stdout (pretty-printed on a terminal). Once every listener is
bound, a line with "msg":"listening" lists them. SIGINT or SIGTERM closes the listeners
and sessions, flushes captures, removes the unix sockets and exits 0. SIGHUP reloads without
dropping sessions: the --config file (egress rules, --max-sessions, --max-sessions-per-source,
--max-rss, --max-session-leases, --dns-record, the flow limits, --max-new-flows-per-second
(and a declared network's --net-option values of these), --hostfwd, --log-level and
--ws-token-file change; other options need a restart and are named in the log), else the
--ws-token-file; a
file that does not read or parse, or a forward whose port is in use, changes nothing. Captures reach the file within one event-loop turn, so
even a killed daemon leaves them readable.

Exit status: 0 after a clean shutdown; 2 for bad usage or configuration (the message names
the option); 1 when the environment fails: a port in use, a directory that cannot be
written, a capture file that cannot be created (one line names the listener or file and
the reason).
`;

/** What a value looks like, for "--X needs a value (…)"; options not listed use their HELP placeholder. */
const VALUE_HINTS: Readonly<Record<string, string>> = {
  pcap: 'a directory or a .pcapng file',
  stream: 'unix:PATH or tcp:HOST:PORT',
  dgram: 'udp:HOST:PORT',
  ws: 'HOST:PORT',
  net: 'ADDR/PREFIX, e.g. 10.0.2.0/24',
  mtu: 'a number of bytes, 68 to 65520',
  hostfwd: 'a rule such as tcp::2222-:22',
  network: 'a network name such as lab',
  'net-option': 'NAME:KEY=VALUE, e.g. lab:mtu=9000',
  'log-level': LOG_LEVELS.join(', '),
  api: 'unix:PATH, tcp:HOST:PORT or off',
};

/** The value placeholder HELP shows for `--name` (`--net ADDR/PREFIX` → `ADDR/PREFIX`). */
function helpPlaceholder(name: string): string | undefined {
  return new RegExp(`^\\s+(?:-\\w, )?--${name.replace(/[-]/g, '\\-')} (\\S+)`, 'm').exec(HELP)?.[1];
}

const hintFor = (name: string): string => VALUE_HINTS[name] ?? helpPlaceholder(name) ?? 'see --help';

/** Edit distance, for "did you mean" (both strings are short option names). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** ` (did you mean --pcap?)` for a near miss, else ''. */
function suggestion(name: string): string {
  let best: string | undefined;
  let bestD = 3;
  for (const known of OPTION_NAMES) {
    const prefix = Math.min(name.length, known.length) >= 3 && (known.startsWith(name) || name.startsWith(known));
    const d = Math.min(distance(name, known), prefix ? 2 : 3);
    if (d < bestD) [best, bestD] = [known, d];
  }
  return best === undefined ? '' : ` (did you mean --${best}?)`;
}

/**
 * Checks the command line token by token (parseArgs in non-strict mode reports every option
 * as it was written), so that every refusal speaks our language and names the option
 * instead of passing on parseArgs' own message.
 */
function checkTokens(argv: readonly string[]): void {
  const { tokens } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const options: Readonly<Record<string, { readonly type: 'string' | 'boolean' }>> = OPTIONS;
  let positionals = 0;
  for (const [i, t] of tokens.entries()) {
    if (t.kind === 'positional') {
      // The first is the command ('serve', checked by the caller); nothing may follow it.
      if (positionals++ === 0) continue;
      const before = tokens[i - 1];
      if (before?.kind === 'option' && options[before.name]?.type === 'boolean')
        throw new UsageError(`unexpected argument '${t.value}': ${before.rawName} takes no value`, before.name);
      throw new UsageError(`unexpected argument '${t.value}': 'tslirp serve' takes only options`);
    }
    if (t.kind !== 'option') continue;
    const spec = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (spec === undefined) throw new UsageError(`unknown option '${t.rawName}'${t.rawName.startsWith('--') ? suggestion(t.name) : ''}`, t.name);
    const name = `--${t.name}`;
    if (spec.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`${name} takes no value (got '${t.value}')`, t.name);
      continue;
    }
    if (t.value === undefined) throw new UsageError(`${name} needs a value (${hintFor(t.name)})`, t.name);
    // parseArgs' strict mode refuses `--pcap --restrict`: the value looks like the next option.
    if (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')
      throw new UsageError(`${name} needs a value (${hintFor(t.name)}), not the option '${t.value}'; write ${name}=${t.value} if you mean it`, t.name);
  }
}

/** Parses `argv` (without node and the script). Throws UsageError or ConfigError. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Command {
  checkTokens(argv);
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    // checkTokens refuses everything strict parsing does; this is a safety net for a newer Node.
    throw new UsageError(`cannot read the command line: ${(e as Error).message.split('\n')[0] ?? ''}`);
  }
  const v = parsed.values;
  if (v.help === true) return { command: 'help' };
  if (v.version === true) return { command: 'version' };
  const [command, ...rest] = parsed.positionals;
  if (command === undefined) throw new UsageError('no command given: use `tslirp serve` (see --help)');
  if (command !== 'serve') throw new UsageError(`unknown command '${command}': the command is 'serve'`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]!}'`);

  const listeners: ListenerSpec[] = [
    ...(v.stream ?? []).map(parseStreamSpec),
    ...(v.dgram ?? []).map(parseDgramSpec),
    ...(v.ws ?? []).map(parseWsSpec),
  ];
  const useDefaults = listeners.length === 0;
  const wsAllowOrigins = (v['ws-allow-origin'] ?? []).map(parseAllowOrigin);
  const logLevel = v['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new UsageError(`--log-level: '${logLevel}' must be one of ${LOG_LEVELS.join(', ')}`, 'log-level');
  if (v.pcap === '') throw new UsageError(`--pcap needs a value (${VALUE_HINTS['pcap']!})`, 'pcap');
  if (v.record === '') throw new UsageError('--record needs a value (a directory)', 'record');
  const upstreams = v['dns-upstream']?.map((text) => {
    const e = parseDnsUpstream(text);
    if (typeof e === 'string') throw new UsageError(`--dns-upstream: ${e}`, 'dns-upstream');
    return e;
  });
  if (v['resolv-conf'] === '') throw new UsageError('--resolv-conf: needs a file path', 'resolv-conf');
  if (upstreams !== undefined && v['resolv-conf'] !== undefined)
    throw new UsageError('--resolv-conf: cannot be combined with --dns-upstream (which replaces it)', 'resolv-conf');
  if (v.network !== undefined) {
    const problem = networkNameProblem(v.network);
    if (problem !== undefined) throw new UsageError(`--network: ${problem}`, 'network');
  }
  const plain: NetworkValues = {};
  for (const key of NETWORK_KEYS) {
    const value = v[key];
    if (value !== undefined) plain[key] = value;
  }
  const own = parseNetOptions(v['net-option'] ?? []);
  const egress = egressRules(argv);
  const network = resolveNetwork(plain, undefined, egress);
  const networks = new Map([...own].map(([name, values]) => [name, resolveNetwork({ ...plain, ...values, hostfwd: values.hostfwd ?? [] }, name, egress)]));
  const finalListeners = useDefaults ? defaultListeners(runtimeDir(env)) : listeners;
  checkPublicListeners(finalListeners, v['ws-token-file'] !== undefined, v['ws-public-without-auth'] === true);
  if ((v['ws-tls-cert'] === undefined) !== (v['ws-tls-key'] === undefined))
    throw new UsageError(`--${v['ws-tls-cert'] === undefined ? 'ws-tls-cert' : 'ws-tls-key'}: --ws-tls-cert and --ws-tls-key go together (the certificate chain and its private key, PEM)`, v['ws-tls-cert'] === undefined ? 'ws-tls-cert' : 'ws-tls-key');
  for (const name of ['ws-token-file', 'ws-tls-cert', 'ws-tls-key'] as const)
    if (v[name] === '') throw new UsageError(`--${name} needs a file path`, name);
  // Every network's forwards listen on this one host: no two may take the same port.
  try {
    parseForwardGroups([list(plain.hostfwd), ...[...own.values()].map((values) => list(values.hostfwd))]);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(`--hostfwd: ${e.message.replace(/^--hostfwd: /, '')}`, 'hostfwd');
    throw e;
  }
  return {
    command: 'serve',
    listeners: finalListeners.map((l) => (l.kind === 'ws' && wsAllowOrigins.length > 0 ? { ...l, allowOrigins: wsAllowOrigins } : l)),
    defaultListeners: useDefaults,
    network,
    networks,
    defaultNetwork: v.network,
    dns: { upstreams, resolvConf: v['resolv-conf'] ?? DEFAULT_RESOLV_CONF },
    wsAllowOrigins,
    sessionLimits: {
      maxSessions: intOption('max-sessions', v['max-sessions'], 1, 65536, DEFAULT_MAX_SESSIONS),
      maxSessionsPerSource: intOption('max-sessions-per-source', v['max-sessions-per-source'], 1, 65536, DEFAULT_MAX_SESSIONS_PER_SOURCE),
      maxRssBytes: intOption('max-rss', v['max-rss'], 64, 1 << 20, DEFAULT_MAX_RSS_BYTES / (1 << 20)) * (1 << 20),
    },
    wsIdleTimeoutMs: intOption('ws-idle-timeout', v['ws-idle-timeout'], 0, 30 * 86400, DEFAULT_WS_IDLE_TIMEOUT_MS / 1000) * 1000,
    trustedProxies: (v['trusted-proxy'] ?? []).map((t) => {
      const c = parseCidr(t);
      if (typeof c === 'string') throw new UsageError(`--trusted-proxy: '${t}': ${c}`, 'trusted-proxy');
      return c;
    }),
    wsTokenFile: v['ws-token-file'],
    wsTls: v['ws-tls-cert'] !== undefined && v['ws-tls-key'] !== undefined ? { cert: v['ws-tls-cert'], key: v['ws-tls-key'] } : undefined,
    pcap: v.pcap,
    record: v.record,
    logLevel: logLevel as LogLevel,
    api: apiSettings(v.api, v['api-token-file'], env),
  };
}

/** An integer option from `min` to `max`, or `fallback` when not given. */
function intOption(name: string, text: string | undefined, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`--${name}: '${text}' must be an integer from ${min} to ${max}`, name);
  return n;
}

/**
 * `--egress-allow` and `--egress-deny` values in the order they were written (parseArgs
 * keeps each option's values apart; its tokens keep the order across both).
 */
function egressRules(argv: readonly string[]): (readonly ['allow' | 'deny', string])[] {
  const { tokens } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const rules: (readonly ['allow' | 'deny', string])[] = [];
  for (const t of tokens)
    if (t.kind === 'option' && (t.name === 'egress-allow' || t.name === 'egress-deny') && t.value !== undefined) rules.push([t.name === 'egress-allow' ? 'allow' : 'deny', t.value]);
  return rules;
}

/**
 * The hostile-world rules for listeners that face more than this host (`isPublicSpec`): a
 * public WebSocket listener needs tokens unless the user says otherwise in so many words; a
 * stream or dgram listener on a non-loopback address must be marked `,public`, because
 * QEMU's protocols carry no credentials and anyone who reaches the port gets a session.
 */
function checkPublicListeners(listeners: readonly ListenerSpec[], tokens: boolean, withoutAuth: boolean): void {
  for (const l of listeners) {
    if (!isPublicSpec(l)) continue;
    if (l.kind === 'ws' && !tokens && !withoutAuth)
      throw new UsageError(
        `--ws: '${describeSpec(l)}' is public (${l.public === true ? 'marked ,public' : 'not a loopback address'}): anyone who reaches it would get a network that reaches the host's. Give --ws-token-file PATH so that only clients with a token get a session, or --ws-public-without-auth to serve anyone anyway`,
        'ws',
      );
    if (l.kind !== 'ws' && l.public !== true)
      throw new UsageError(
        `--${l.kind}: '${describeSpec(l)}' binds a non-loopback address, and QEMU's ${l.kind} protocol carries no credentials: anyone who reaches the port gets a session. Add ,public to serve it anyway (its sessions get the public egress default), or bind 127.0.0.1`,
        l.kind,
      );
  }
}

/** Every option's type, for the config file (src/cli/config-file.ts). */
export const OPTION_TYPES: Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly multiple?: boolean }>> = OPTIONS;

/** --api and --api-token-file. */
function apiSettings(values: readonly string[] | undefined, tokenFile: string | undefined, env: NodeJS.ProcessEnv): ApiSettings {
  if (tokenFile === '') throw new UsageError('--api-token-file: needs a file path', 'api-token-file');
  if (values === undefined) return { listen: [{ kind: 'unix', path: join(runtimeDir(env), 'api.sock') }], isDefault: true, tokenFile };
  if (values.includes('off')) {
    if (values.length > 1) throw new UsageError('--api off cannot be combined with other --api values', 'api');
    return { listen: [], isDefault: false, tokenFile };
  }
  const listen = values.map((text) => {
    try {
      return parseApiSpec(text);
    } catch (e) {
      throw new UsageError(`--api: ${(e as Error).message}`, 'api');
    }
  });
  return { listen, isDefault: false, tokenFile };
}

const list = (value: NetworkValues[NetworkKey]): readonly string[] => (Array.isArray(value) ? (value as readonly string[]) : []);
const text = (value: NetworkValues[NetworkKey]): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * A network's settings from its option values; `name` is the network's for `--net-option`
 * values (errors then name `--net-option NAME:KEY`), undefined for the plain options.
 */
function resolveNetwork(values: NetworkValues, name: string | undefined, egress: readonly (readonly ['allow' | 'deny', string])[]): NetworkSettings {
  const refuse = (key: string, reason: string): never => {
    if (name === undefined) throw new UsageError(`--${key}: ${reason}`, key);
    throw new UsageError(`--net-option ${name}:${key}: ${reason}`, 'net-option');
  };
  const why = (e: ConfigError): string => e.message.replace(/^--[^:]+: /, '');
  try {
    const config = resolveStackConfig({
      net: text(values.net),
      host: text(values.host),
      dns: text(values.dns),
      dhcpstart: text(values.dhcpstart),
      dhcppool: text(values['dhcp-pool']),
      maxSessionLeases: text(values['max-session-leases']),
      domainname: text(values.domainname),
      dnssearch: list(values.dnssearch),
      hostname: text(values.hostname),
      mtu: text(values.mtu),
      route: list(values.route),
      tftpservername: text(values['tftp-server-name']),
      bootfile: text(values.bootfile),
      tftp: tftpDir(text(values.tftp)),
      guestfwd: list(values.guestfwd),
      leasetime: text(values['lease-time']),
      restrict: values.restrict === true,
      disableHostLoopback: values['disable-host-loopback'] === true,
      egress,
      linkDelay: text(values['link-delay']),
      linkLoss: text(values['link-loss']),
      linkDuplicate: text(values['link-duplicate']),
      linkReorder: text(values['link-reorder']),
      linkRate: text(values['link-rate']),
      natPmp: text(values['nat-pmp']),
      nat: text(values.nat),
      'nat-mapping': text(values['nat-mapping']),
      'nat-filtering': text(values['nat-filtering']),
      'nat-hairpin': text(values['nat-hairpin']),
      'nat-port-preservation': text(values['nat-port-preservation']),
      'nat-udp-timeout': text(values['nat-udp-timeout']),
      'nat-refresh': text(values['nat-refresh']),
      outbound: text(values.outbound),
      outbound6: text(values.outbound6),
      ipv6: text(values.ipv6),
      ipv6Net: text(values['ipv6-net']),
      ipv6Host: text(values['ipv6-host']),
      ipv6Dns: text(values['ipv6-dns']),
      ipv6Dhcp: text(values['ipv6-dhcp']),
    });
    const flowLimits = resolveFlowLimits({
      'max-tcp-flows': text(values['max-tcp-flows']),
      'max-udp-flows': text(values['max-udp-flows']),
      'max-network-tcp-flows': text(values['max-network-tcp-flows']),
      'max-network-udp-flows': text(values['max-network-udp-flows']),
      'max-new-flows-per-second': text(values['max-new-flows-per-second']),
    });
    const dnsRecords = list(values['dns-record']).map((r) => {
      const record = parseDnsRecordOption(r);
      return typeof record === 'string' ? refuse('dns-record', record) : record;
    });
    return { config, flowLimits, dnsRecords, forwards: parseForwards(list(values.hostfwd)) };
  } catch (e) {
    if (e instanceof ConfigError) return refuse(CONFIG_OPTION_NAMES[e.option] ?? e.option, why(e));
    throw e;
  }
}

/** `--tftp DIR` made absolute (a daemon's working directory may change), refused unless it is a directory now. */
function tftpDir(dir: string | undefined): string | undefined {
  if (dir === undefined) return undefined;
  if (dir === '') throw new ConfigError('tftp', 'needs a directory path');
  const abs = resolve(dir);
  let isDir: boolean;
  try {
    isDir = statSync(abs).isDirectory();
  } catch (e) {
    throw new ConfigError('tftp', `${abs}: ${(e as NodeJS.ErrnoException).code ?? 'cannot be read'}`);
  }
  if (!isDir) throw new ConfigError('tftp', `${abs} is not a directory`);
  return abs;
}

/** A switch's value in `--net-option`: bare, or one of these words. */
const SWITCH_WORDS: Readonly<Record<string, boolean>> = { on: true, yes: true, true: true, '1': true, off: false, no: false, false: false, '0': false };

/**
 * `--net-option NAME:KEY=VALUE[,KEY=VALUE…]` values, merged per network. A comma starts a new
 * KEY=VALUE only when a known key follows; otherwise the text after it is one more value of
 * a list key (`hostfwd=tcp::1-:1,tcp::2-:2`, `dnssearch=a.test,b.test`). A list key given
 * again adds values; any other key given twice for one network is refused.
 */
export function parseNetOptions(values: readonly string[]): Map<string, NetworkValues> {
  const networks = new Map<string, NetworkValues>();
  const fail = (reason: string): never => {
    throw new UsageError(`--net-option: ${reason}`, 'net-option');
  };
  for (const value of values) {
    const colon = value.indexOf(':');
    if (colon < 0) fail(`'${value}' must look like NAME:KEY=VALUE[,KEY=VALUE...] (e.g. lab:mtu=9000)`);
    const name = value.slice(0, colon);
    const problem = networkNameProblem(name);
    if (problem !== undefined) fail(`'${value}': ${problem}`);
    const items: [NetworkKey, string | undefined][] = [];
    for (const piece of value.slice(colon + 1).split(',')) {
      const m = /^([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(piece);
      const last = items.at(-1);
      if (m !== null && isNetworkKey(m[1]!)) items.push([m[1], m[2]]);
      else if (last !== undefined && LIST_KEYS.has(last[0]) && last[1] !== undefined) items.push([last[0], piece]);
      else if (m !== null) fail(`${name}:${m[1]!}: not a network setting${keySuggestion(m[1]!)}; the keys are ${NETWORK_KEYS.join(', ')}`);
      else fail(`'${value}': '${piece}' is not KEY=VALUE (the keys are ${NETWORK_KEYS.join(', ')})`);
    }
    const merged = networks.get(name) ?? {};
    for (const [key, v] of items) {
      if (BOOLEAN_KEYS.has(key)) {
        const on = v === undefined ? true : SWITCH_WORDS[v.toLowerCase()];
        if (on === undefined) return fail(`${name}:${key}: '${v ?? ''}' must be on or off`);
        if (merged[key] !== undefined) fail(`${name}:${key} is given twice`);
        merged[key] = on;
      } else if (v === undefined || v === '') fail(`${name}:${key} needs a value (${hintFor(key)})`);
      else if (LIST_KEYS.has(key)) merged[key] = [...list(merged[key]), v];
      else if (merged[key] !== undefined) fail(`${name}:${key} is given twice`);
      else merged[key] = v;
    }
    networks.set(name, merged);
  }
  return networks;
}

/** ` (did you mean mtu?)` for a near miss among the network keys, else ''. */
function keySuggestion(key: string): string {
  const best = NETWORK_KEYS.map((k) => [k, distance(key, k)] as const).sort((a, b) => a[1] - b[1])[0];
  return best !== undefined && best[1] <= 2 ? ` (did you mean ${best[0]}?)` : '';
}

/** One `--ws-allow-origin` value: '*' or an origin, returned in its serialized form. */
function parseAllowOrigin(text: string): string {
  if (text === '*') return text;
  if (text.trim().toLowerCase() === 'null') throw new UsageError(`--ws-allow-origin: 'null' (pages from files, sandboxes, data: URLs) can only be allowed with '*'`, 'ws-allow-origin');
  const origin = normalizeOrigin(text.trim());
  if (origin === undefined) throw new UsageError(`--ws-allow-origin: '${text}' is not an origin: write scheme://host[:port], e.g. http://localhost:8000, or '*'`, 'ws-allow-origin');
  return origin;
}
