/**
 * The "internet" of the NAT tests: a network namespace the test creates, whose loopback holds
 * documentation addresses (RFC 5737) standing for public hosts — two STUN server addresses,
 * a rendezvous server and the networks' public (`--outbound`) addresses. The daemon runs in it
 * (its host sockets live there), and so do the servers; guests are namespaces of their own
 * bridged to the daemon from inside it. Loopback addresses cannot play these parts: a guest's
 * kernel keeps 127/8 to itself (and tslirp refuses it as a destination), so a guest could not
 * address another network's public endpoint.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { must, NetnsGuest, Proc, run, uniqueName, type RunResult } from '../helpers/guests.js';

/** The addresses of the test's internet. */
export const WORLD = {
  /** The STUN server's two addresses (RFC 5780 needs two). */
  stun1: '198.51.100.1',
  stun2: '198.51.100.2',
  /** The hole-punching rendezvous server. */
  rendezvous: '198.51.100.4',
  /** Public addresses of the networks under test (`--outbound`). */
  publicA: '203.0.113.2',
  publicB: '203.0.113.3',
} as const;

/** The IPv6 addresses of the test's internet (RFC 3849's documentation prefix), with `World.create({ ipv6: true })`. */
export const WORLD6 = {
  /** A server. */
  server: '2001:db8:100::1',
  /** A network's public IPv6 address (`--outbound6`). */
  publicA: '2001:db8:203::2',
} as const;

/** The guest-side UDP programs (probe, rendezvous, punch). */
export const NAT_CLIENT = join(import.meta.dirname, 'nat-client.mjs');

export class World {
  readonly ns: string;
  private constructor(ns: string) {
    this.ns = ns;
  }

  /** `ipv6`: the WORLD6 addresses too (IPv6 turned on in the namespace). */
  static create(options: { readonly ipv6?: boolean } = {}): World {
    const ns = uniqueName('tslwld');
    must('ip', ['netns', 'add', ns]);
    try {
      must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      for (const a of Object.values(WORLD)) must('ip', ['-n', ns, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
      if (options.ipv6 === true) {
        must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.lo.disable_ipv6=0']);
        for (const a of Object.values(WORLD6)) must('ip', ['-n', ns, '-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad']);
      }
    } catch (e) {
      spawnSync('ip', ['netns', 'del', ns]);
      throw e;
    }
    return new World(ns);
  }

  spawn(name: string, args: readonly string[]): Proc {
    return new Proc(name, 'ip', ['netns', 'exec', this.ns, ...args]);
  }

  exec(args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.ns, ...args], timeoutMs);
  }

  destroy(): void {
    spawnSync('ip', ['netns', 'del', this.ns]);
  }
}

/** coturn's turnserver as a STUN-only RFC 5780 server on both STUN addresses, ports 3478 and 3479. */
export async function startStun(world: World): Promise<Proc> {
  const p = world.spawn('turnserver', [
    'turnserver', '-n', '--no-auth', '--stun-only', '--no-cli', '--pidfile', `/tmp/${world.ns}-turnserver.pid`,
    '-L', WORLD.stun1, '-L', WORLD.stun2, '-p', '3478', '--alt-listening-port', '3479',
    '--log-file', 'stdout', '--simple-log',
  ]);
  try {
    await p.waitFor(/Total General servers/, 10_000);
    // Then ask it until it answers (its listener threads start after that line), bounded.
    for (let i = 0; i < 50; i++) {
      const r = await world.exec(['turnutils_natdiscovery', '-m', WORLD.stun1], 5_000);
      if (r.stdout.includes(' Mapping!')) return p;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`turnserver does not answer:\n${p.tail()}`);
  } catch (e) {
    await p.stop();
    throw e;
  }
}

/** The last JSON line of a program's output. */
export const lastJson = (text: string): Record<string, unknown> => JSON.parse(text.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;

/** A NAT in RFC 4787's terms, as the hole-punching model sees it. */
export interface ModelNat {
  readonly mapping: 'eim' | 'adm' | 'apdm';
  readonly filtering: 'eif' | 'adf' | 'apdf';
}

/**
 * What RFC 4787 predicts for UDP hole punching between one guest endpoint behind `a` and one
 * behind `b` (each NAT with its own public address, the rendezvous at a third), running the
 * algorithm of nat-client.mjs's `punch`: each side learns the other's public endpoint from the
 * rendezvous, sends PUNCH to its target repeatedly, answers a PUNCH with ACK, and takes the
 * sender of anything from the peer as its new target. Mappings (§4.1) and filters (§5) are
 * simulated in rounds; their state only grows, so the order of sends within a round does not
 * change the outcome. Direct: both sides heard the peer and were acknowledged.
 */
export function predictHolePunch(a: ModelNat, b: ModelNat): boolean {
  interface Mapping { readonly port: number; readonly peers: Set<string> }
  interface Side { readonly nat: ModelNat; readonly addr: string; readonly maps: Map<string, Mapping>; next: number; target: string; heard: number; acked: boolean }
  const addrOf = (e: string): string => e.split(':')[0]!;
  const send = (s: Side, to: string): string => {
    const key = s.nat.mapping === 'eim' ? '' : s.nat.mapping === 'adm' ? addrOf(to) : to;
    let m = s.maps.get(key);
    if (m === undefined) s.maps.set(key, (m = { port: s.next++, peers: new Set() }));
    m.peers.add(to);
    return `${s.addr}:${m.port}`;
  };
  const accepts = (s: Side, at: string, from: string): boolean => {
    const port = Number(at.split(':')[1]);
    const m = [...s.maps.values()].find((x) => x.port === port);
    if (m === undefined) return false;
    if (s.nat.filtering === 'eif') return true;
    if (s.nat.filtering === 'adf') return [...m.peers].some((p) => addrOf(p) === addrOf(from));
    return m.peers.has(from);
  };
  const side = (nat: ModelNat, addr: string): Side => ({ nat, addr, maps: new Map(), next: 1000, target: '', heard: 0, acked: false });
  const A = side(a, 'A');
  const B = side(b, 'B');
  const rendezvous = 'R:1';
  const aPublic = send(A, rendezvous);
  const bPublic = send(B, rendezvous);
  A.target = bPublic;
  B.target = aPublic;
  for (let round = 0; round < 8; round++) {
    const punches = [[A, B, send(A, A.target), A.target], [B, A, send(B, B.target), B.target]] as const;
    for (const [from, to, src, dst] of punches) {
      if (!accepts(to, dst, src)) continue;
      to.heard++;
      to.target = src;
      const ackSrc = send(to, src);
      if (!accepts(from, src, ackSrc)) continue;
      from.heard++;
      from.acked = true;
      from.target = ackSrc;
    }
  }
  return A.heard > 0 && A.acked && B.heard > 0 && B.acked;
}

/** A network of a NAT test: its name and its `--net-option` text ('' for none). */
export interface WorldNetwork {
  readonly name: string;
  readonly options: string;
}

/**
 * Starts the daemon inside `world` with one dgram listener per network, in order, and
 * `extra` arguments, then a namespace guest on each that must lease 10.0.2.15. Guests go into
 * `guests` by network name as they come, so the caller's afterAll destroys every one that
 * came; when a guest fails, the daemon is stopped before the error is thrown.
 */
export async function startWorldDaemon(world: World, networks: readonly WorldNetwork[], extra: readonly string[], guests: Map<string, NetnsGuest>): Promise<Daemon> {
  const d = await startDaemon(
    [
      ...networks.flatMap((n) => ['--dgram', `udp:127.0.0.1:0,network=${n.name}`]),
      ...networks.filter((n) => n.options !== '').flatMap((n) => ['--net-option', `${n.name}:${n.options}`]),
      ...extra,
    ],
    { netns: world.ns, startTimeoutMs: 30_000 },
  );
  try {
    const dgrams = d.listeners.filter((l) => l.kind === 'dgram');
    await Promise.all(
      networks.map(async (n, i) => {
        const l = dgrams[i];
        if (l === undefined || !('port' in l)) throw new Error(`no dgram listener for ${n.name}`);
        const g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port }, world.ns);
        guests.set(n.name, g);
        const { lease, result } = await g.dhcp();
        if (lease?.['ip'] !== '10.0.2.15') throw new Error(`${n.name}: no lease:\n${result.stdout}${result.stderr}`);
      }),
    );
  } catch (e) {
    await d.stop();
    throw e;
  }
  return d;
}

/**
 * The hole-punching tests' world: a rendezvous server (nat-client.mjs `mode`: `rendezvous` for
 * UDP, `tcprendezvous` for TCP) at WORLD.rendezvous:`port`, and the daemon with two networks
 * per variant, `a-V` public at WORLD.publicA and `b-V` at WORLD.publicB, each with the option
 * text `options(V)`, and a guest with a lease on each. `stop` ends whatever `start` got to
 * start, so afterAll can call it after a failed start too.
 */
export class PunchWorld {
  #world: World | undefined;
  #rendezvous: Proc | undefined;
  #daemon: Daemon | undefined;
  /** The guests by network name. */
  readonly guests = new Map<string, NetnsGuest>();

  async start(mode: 'rendezvous' | 'tcprendezvous', port: number, variants: readonly string[], options: (variant: string) => string): Promise<void> {
    const world = (this.#world = World.create());
    this.#rendezvous = world.spawn(mode, [process.execPath, NAT_CLIENT, mode, WORLD.rendezvous, String(port), '600']);
    await this.#rendezvous.waitFor(/READY/, 10_000);
    const networks = variants.flatMap((v) => [
      { name: `a-${v}`, options: `${options(v)},outbound=${WORLD.publicA}` },
      { name: `b-${v}`, options: `${options(v)},outbound=${WORLD.publicB}` },
    ]);
    this.#daemon = await startWorldDaemon(world, networks, [], this.guests);
  }

  /** The world's namespace (after start). */
  get ns(): string {
    if (this.#world === undefined) throw new Error('PunchWorld: not started');
    return this.#world.ns;
  }

  /** The guest on network `name` (after start). */
  guest(name: string): NetnsGuest {
    const g = this.guests.get(name);
    if (g === undefined) throw new Error(`PunchWorld: no guest on ${name}`);
    return g;
  }

  async stop(): Promise<void> {
    for (const g of this.guests.values()) await g.destroy();
    await this.#daemon?.stop();
    await this.#rendezvous?.stop();
    this.#world?.destroy();
  }
}
