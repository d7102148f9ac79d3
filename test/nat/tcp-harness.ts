/**
 * A harness for the TCP engine (src/nat/tcp-flow.ts) and its connections: a recording
 * FakeHost, a ManualClock, and a ToGuest that parses every segment the engine sends (so the
 * checksum and options are verified by the real parser). Segments from the guest are built
 * from a template with overrides (smoltcp's SEND_TEMPL style).
 */
import { expect } from 'vitest';
import type { Endpoint, IpAddr } from '../../src/net/addr.js';
import type { Ipv4 } from '../../src/ipv4/wire.js';
import { IP_PROTO, pseudoSum } from '../../src/ipv4/wire.js';
import { FlowTable, type FlowLimits } from '../../src/nat/flow-table.js';
import { TcpEngine, type TcpEngineLimits } from '../../src/nat/tcp-flow.js';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import type { SendBudget, ToGuest, WriteL4 } from '../../src/net/seams.js';
import { parseTcp, TCP_FLAG, type Tcp } from '../../src/tcp/wire.js';
import type { Ipv4Addr } from '../../src/util/bytes.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { Counters, isDrop } from '../../src/util/drops.js';
import { FakeHost } from '../helpers/fake-host.js';
import { concat } from '../helpers/hex.js';
import { ip } from '../helpers/frames.js';

export const GUEST = ip('10.0.2.15');
export const GATEWAY = ip('10.0.2.2');
export const { FIN, SYN, RST, PSH, ACK } = TCP_FLAG;
const EMPTY = new Uint8Array(0);

/** A segment the engine sent to the guest. */
export interface SentTcp {
  readonly kind: 'tcp';
  readonly src: Ipv4Addr;
  readonly dst: Ipv4Addr;
  readonly tcp: Tcp;
}
/**
 * An ICMP error the engine asked for about a flow: `original` is the datagram the stack
 * quotes, from the flow's tuple (source and destination addresses, protocol, and the
 * transport header as payload).
 */
export interface SentIcmp {
  readonly kind: 'icmp';
  readonly type: number;
  readonly code: number;
  readonly original: Pick<Ipv4, 'src' | 'dst' | 'protocol' | 'payload'>;
}
export type Sent = SentTcp | SentIcmp;

/** The guest's SYN template: 10.0.2.15:40000 → 10.0.2.2:80, Linux-like options. */
export const GUEST_SYN: Tcp = {
  srcPort: 40000, dstPort: 80, seq: 1000, ack: 0, flags: SYN, window: 64240, urgent: 0,
  options: { mss: 1460, sackPermitted: true, timestamp: { value: 5000, echo: 0 }, windowScale: 7 },
  payload: EMPTY,
};

export interface HarnessOptions {
  readonly network?: NetworkOptions;
  readonly limits?: Partial<TcpEngineLimits>;
  readonly flowLimits?: FlowLimits;
  readonly seed?: number;
  /** What the stack would answer for DNS over TCP (its first upstream resolver). */
  readonly dnsUpstream?: Endpoint;
  /** The shell's send budget (ToGuest.sendBudget). */
  readonly sendBudget?: SendBudget;
}

export function tcpHarness(o: HarnessOptions = {}) {
  const clock = new ManualClock(0);
  const host = new FakeHost();
  const counters = new Counters();
  const config = resolveStackConfig(o.network ?? {});
  const sent: Sent[] = [];
  const toGuest: ToGuest = {
    config,
    counters,
    sendIpv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, l4Length: number, write: WriteL4, writesEveryByte?: boolean): void {
      expect(protocol).toBe(IP_PROTO.TCP);
      const b = new Uint8Array(l4Length).fill(0xa5);
      expect(write(b, 0)).toBe(l4Length);
      // The engine promises to write every byte (the stack then skips zeroing the frame).
      expect(writesEveryByte).toBe(true);
      const zeroed = new Uint8Array(l4Length);
      write(zeroed, 0);
      // A byte loop, not toEqual: this runs for every segment of every TCP test, and deep
      // equality made it most of the lossy-link property's time.
      const stale = zeroed.findIndex((v, i) => v !== b[i]);
      if (stale !== -1) expect.fail(`segment byte ${stale} of ${l4Length} depends on the buffer's old contents`);
      const t = parseTcp(b, pseudoSum(src, dst, IP_PROTO.TCP));
      if (isDrop(t)) throw new Error(`engine sent a bad segment: ${t}`);
      sent.push({ kind: 'tcp', src, dst, tcp: t });
    },
    sendIp(src: IpAddr, dst: IpAddr, protocol: number, l4Length: number, write: WriteL4, writesEveryByte?: boolean): void {
      if (typeof src !== 'number' || typeof dst !== 'number') throw new Error('the TCP harness speaks IPv4');
      this.sendIpv4(src, dst, protocol, l4Length, write, writesEveryByte);
    },
    flowIcmpError(guest: Endpoint, remote: Endpoint, protocol: number, transportHeader: Uint8Array, type: number, code: number): void {
      sent.push({ kind: 'icmp', type, code, original: { src: guest.addr as Ipv4Addr, dst: remote.addr as Ipv4Addr, protocol, payload: transportHeader } });
    },
    dnsTcpUpstream: () => o.dnsUpstream,
    sendBudget: o.sendBudget,
  };
  const table = new FlowTable(o.flowLimits);
  const engine = new TcpEngine(table, host, toGuest, seededRandom(o.seed ?? 7), o.limits, config.nat);

  const take = (): Sent[] => sent.splice(0);
  /** Only TCP segments; fails if anything else was sent. */
  const takeTcp = (): Tcp[] => take().map((s) => {
    if (s.kind !== 'tcp') throw new Error('expected TCP, got ICMP');
    return s.tcp;
  });

  const ipv4 = (src: Ipv4Addr, dst: Ipv4Addr): Ipv4 => ({
    dscpEcn: 0, id: 1, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64,
    protocol: IP_PROTO.TCP, src, dst, options: EMPTY, payload: EMPTY,
  });

  /** The guest sends `seg` (template GUEST_SYN with overrides); returns what the engine answered after its flush. */
  const guestSends = (seg: Partial<Tcp>, dst: Ipv4Addr = GATEWAY, src: Ipv4Addr = GUEST): Tcp[] => {
    engine.input(ipv4(src, dst), { ...GUEST_SYN, ...seg }, clock.now());
    engine.flush(clock.now());
    return takeTcp();
  };
  /** Advances the clock and runs timers. */
  const advance = (ms: number): Tcp[] => {
    clock.advance(ms);
    engine.advance(clock.now());
    engine.flush(clock.now());
    return takeTcp();
  };
  const hostEvent = (f: (now: number) => void): Tcp[] => {
    f(clock.now());
    engine.flush(clock.now());
    return takeTcp();
  };
  const h = {
    clock, host, counters, config, table, engine, sent, take, takeTcp, guestSends, advance,
    connect: (flow = 1) => hostEvent((now) => engine.onHostConnected(flow, now)),
    data: (bytes: Uint8Array, flow = 1) => hostEvent((now) => engine.onHostData(flow, bytes, now)),
    end: (flow = 1) => hostEvent((now) => engine.onHostEnd(flow, now)),
    drained: (flow = 1) => hostEvent((now) => engine.onHostDrained(flow, now)),
    error: (code: string, flow = 1) => hostEvent((now) => engine.onHostError(flow, code, now)),
    /** Bytes written to the host for a flow, concatenated. */
    written: (flow = 1): Uint8Array => concat(host.callsOf('tcpWrite').filter(([f]) => f === flow).map(([, d]) => d as Uint8Array)),
    /**
     * Opens a connection through the handshake: guest SYN (with `synOptions`), host connect,
     * guest ACK. Returns the SYN-ACK; the guest's next sequence number is 1001, ours iss+1.
     */
    open: (syn: Partial<Tcp> = {}): { synAck: Tcp; iss: number } => {
      expect(guestSends(syn)).toEqual([]);
      const [synAck] = h.connect();
      const iss = synAck!.seq;
      expect(guestSends({ flags: ACK, seq: 1001, ack: (iss + 1) >>> 0, options: optionsAfterSyn(syn), window: syn.window ?? 502 })).toEqual([]);
      return { synAck: synAck!, iss };
    },
  };
  return h;
}

/** What the guest's non-SYN segments carry, given its SYN's overrides: timestamps if it offered them. */
export function optionsAfterSyn(syn: Partial<Tcp>): Tcp['options'] {
  const o = syn.options ?? GUEST_SYN.options;
  return o.timestamp !== undefined ? { timestamp: { value: 5001, echo: 0 } } : {};
}

export { concat };

export const bytes = (n: number, salt = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + salt * 7 + (i >>> 8)) & 0xff);
