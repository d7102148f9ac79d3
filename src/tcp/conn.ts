/**
 * One TCP connection towards the guest: a real RFC 9293 endpoint whose other side is a host
 * socket. See `src/tcp/README.md` for the theory of operation; in short:
 *
 * - The guest's SYN waits in 'host-connecting' until the host socket connects; only then does
 *   a SYN-ACK go out (a refused port becomes an RST, never a false SYN-ACK, as passt does).
 * - Guest data goes to the host socket in order (`io.hostWrite`); out-of-order segments are
 *   held, bounded, and delivered when the hole fills. The window we advertise is the flow's
 *   receive budget minus what the host socket still buffers.
 * - Host data waits in a bounded queue (`ByteQueue`) until the guest acknowledges it; it is
 *   segmented to the guest's MSS and window (RFC 7323 scaling), retransmitted on RTO
 *   (RFC 6298) or fast retransmit (RFC 5681, SACK holes per RFC 2018/6675), paced by a
 *   NewReno-style congestion window. The host socket is paused while the queue is full.
 *
 * The connection is sans-IO: it sees the world through `TcpConnIo`, and time only as the
 * `nowMs` its entry points receive.
 */
import { IP_PROTO } from '../ipv4/wire.js';
import { IPV6_HEADER_LEN, pseudoSumIp } from '../ipv6/wire.js';
import type { Endpoint } from '../net/addr.js';
import type { Counters } from '../util/drops.js';
import { assertNever } from '../util/assert.js';
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqSub } from '../util/seq.js';
import { ByteQueue } from './byte-queue.js';
import { Congestion } from './congestion.js';
import { DEFAULT_MSS, ReceiveSpace, SendSpace } from './seq-space.js';
import { RtoEstimator } from './rto.js';
import { SackScoreboard } from './sack-scoreboard.js';
import { OooQueue } from './ooo-queue.js';
import { TcpTimers } from './timers.js';
import { NO_TCP_OPTIONS, type TcpOptions } from './options.js';
import { TCP_FLAG, tcpHeaderLength, writeTcpChecksum, writeTcpHeader, type Tcp, type TcpHeader } from './wire.js';

/**
 * RFC 9293 §3.3.2 states, spelled as the RFC does, plus 'host-connecting' (ours: the guest's
 * SYN waits for the host socket to connect). 'syn-sent' is used by forwarded connections,
 * where we send the SYN to the guest.
 */
export type TcpState = 'host-connecting' | 'syn-sent' | 'syn-received' | 'established' | 'fin-wait-1'
  | 'fin-wait-2' | 'close-wait' | 'closing' | 'last-ack' | 'time-wait' | 'closed';

/** The guest and remote sides of a connection: both of one family, IPv4 or IPv6. */
export type TcpEndpoint = Endpoint;

/** Limits and timings of one connection. Every byte a guest or host can make us hold is bounded here. */
export interface TcpLimits {
  /** Receive budget: the most guest data the host socket may buffer; the advertised window is this minus what it buffers. */
  readonly rcvBufferBytes: number;
  /** The most host data queued for the guest (unsent + unacknowledged) before the host socket is paused. */
  readonly sndBufferBytes: number;
  /** Out-of-order segments held from the guest (their bytes are inside the advertised window). */
  readonly oooSegments: number;
  /** SACK blocks remembered from the guest. */
  readonly sackBlocks: number;
  readonly initialRtoMs: number;
  /** Linux's TCP_RTO_MIN (200 ms) rather than RFC 6298's 1 s: the guest is one link away. */
  readonly minRtoMs: number;
  readonly maxRtoMs: number;
  /** Retransmissions of one segment before the connection is reset both ways. */
  readonly maxRetransmits: number;
  /** SYN-ACK (or SYN, for forwards) retransmissions before giving up. */
  readonly synRetries: number;
  readonly delayedAckMs: number;
  /** TIME-WAIT duration (2×MSL; short, as the guest is one hop away: RFC 9293 §3.4.2 sets no floor for a local link). */
  readonly timeWaitMs: number;
  /** How long the guest's SYN waits for the host connect before ICMP host unreachable. */
  readonly connectTimeoutMs: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  rcvBufferBytes: 1 << 20,
  sndBufferBytes: 1 << 20,
  oooSegments: 64,
  sackBlocks: 16,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 60_000,
  maxRetransmits: 12,
  synRetries: 5,
  delayedAckMs: 40,
  timeWaitMs: 4000,
  connectTimeoutMs: 20_000,
};

/** ICMP destination-unreachable codes used for failed connects (RFC 792, RFC 1812 §5.2.7.1). */
export const TCP_UNREACHABLE = { NET: 0, HOST: 1, ADMIN_PROHIBITED: 13 } as const;

/** What a connection needs from the engine that owns it. */
export interface TcpConnIo {
  /** Drops and refusals (the stack's counters). */
  readonly counters: Counters;
  /** Events worth counting that are not drops: retransmissions, resets, flows opened… */
  readonly stats: Counters<string>;
  /** Sends an IPv4 datagram carrying a TCP segment from `c.remote` to `c.guest`; `write` fills in the segment. */
  sendSegment(c: TcpConn, l4Length: number, write: (into: Uint8Array, at: number) => number): void;
  /** ICMP destination unreachable to the guest about its SYN. */
  icmpUnreachable(c: TcpConn, code: number): void;
  /** Host.tcpWrite: returns the bytes the socket still buffers. */
  hostWrite(c: TcpConn, data: Uint8Array): number;
  hostEnd(c: TcpConn): void;
  hostPause(c: TcpConn, paused: boolean): void;
  hostReset(c: TcpConn): void;
  hostClose(c: TcpConn): void;
  /** The connection reached 'closed': the engine forgets it. */
  finished(c: TcpConn): void;
  /** The connection has output to decide at the end of this entry (`flush`). */
  markDirty(c: TcpConn): void;
  /** Whether a data segment of `payloadBytes` may leave in this turn (the shell's SendBudget); charges it when so. */
  sendAllowed(payloadBytes: number): boolean;
  /**
   * The send budget refused a data segment: the connection stopped sending and wants
   * `flush` again once the budget allows. `progressed`: it sent data before the refusal (it
   * then waits behind the connections that sent nothing).
   */
  sendDeferred(c: TcpConn, progressed: boolean): void;
  /** Bytes the shared buffer budget still allows (may be negative). */
  budgetFree(): number;
  /** Adds (or with a negative value, releases) bytes against the shared budget. */
  account(deltaBytes: number): void;
}

export interface TcpConnInit {
  readonly id: number;
  readonly origin: 'guest' | 'forward';
  readonly guest: TcpEndpoint;
  /** The address and port the guest talks to (our side, as the guest sees it). */
  readonly remote: TcpEndpoint;
  /** Where the host socket goes (or, for forwards, the host client). */
  readonly host: Endpoint;
  readonly nowMs: number;
  /** Initial send sequence number, from the injected random source. */
  readonly iss: number;
  /** Offset added to the clock for our timestamps (random, RFC 7323 §5.4). */
  readonly tsOffset: number;
  /** The link MTU: our MSS is mtu − 40 over IPv4, mtu − 60 over IPv6. */
  readonly mtu: number;
  readonly limits: TcpLimits;
  readonly io: TcpConnIo;
}

type SackBlocks = readonly (readonly [number, number])[];
const NO_SACK: SackBlocks = [];

/** The header of the segment being written, refilled in place. */
type MutableTcpHeader = { -readonly [K in keyof TcpHeader]: TcpHeader[K] };

const IPV4_TCP_HEADERS = 40;
const TIMESTAMP_OPTION_LEN = 12;

/** The smallest shift that fits `bytes` in the 16-bit window field (RFC 7323 §2.2). */
export function windowShiftFor(bytes: number): number {
  let s = 0;
  while (s < 14 && Math.floor(bytes / 2 ** s) > 0xffff) s++;
  return s;
}

/**
 * A TCP connection between the guest and us. It also is the flow's entry in the NAT flow
 * table (the fields `id` … `local` and `stateName` are FlowEntry's).
 *
 * It orchestrates: the state machine, the decisions (what an ACK means, what to send or
 * retransmit, when to ACK) and the host side are here; the variables and their arithmetic
 * live in parts, each with its invariants — sequence space and windows (`SendSpace`,
 * `ReceiveSpace`, seq-space.ts), RTT and RTO (`RtoEstimator`, rto.ts), congestion control
 * (`Congestion`, congestion.ts), the SACK scoreboard (`SackScoreboard`,
 * sack-scoreboard.ts), the out-of-order queue (`OooQueue`, ooo-queue.ts), the deadlines
 * (`TcpTimers`, timers.ts) and the send queue (`ByteQueue`, byte-queue.ts). Segments are
 * written with tcp/wire's `writeTcpHeader`.
 */
/**
 * How long a connection's send queue stays empty before it lets go of its memory (a small
 * chunk of up to 16 KiB kept for replies, byte-queue.ts RETAIN_BYTES, or the chunk a host read
 * is lent into): long enough that request/response traffic reuses it, short
 * enough that an idle connection holds none (bench/scale.ts, memory per idle flow).
 */
export const RING_IDLE_MS = 1000;

export class TcpConn {
  readonly id: number;
  readonly protocol = 'tcp' as const;
  readonly origin: 'guest' | 'forward';
  readonly guest: TcpEndpoint;
  readonly remote: TcpEndpoint;
  readonly host: Endpoint;
  readonly createdMs: number;
  /** Last activity either way, kept by the engine to within a second (TOUCH_GRANULARITY_MS). */
  lastActiveMs: number;
  /** Guest bytes written to the host socket. */
  bytesFromGuest = 0;
  /** Host bytes the guest acknowledged. */
  bytesToGuest = 0;
  /** Segments from the guest (every one this connection was given) and to it (every one emitted). */
  packetsFromGuest = 0;
  packetsToGuest = 0;
  /** The host socket's own endpoint (the public side), set by the engine once known. */
  local: Endpoint | undefined = undefined;
  state: TcpState;

  /**
   * The NAT engine's (src/nat/tcp-flow.ts) share of a host port, kept here rather than in an
   * object per flow: the local port asked for the host socket (0: any), and whether the
   * connection shares a port ('asked': its key wants one, not yet counted; 'counted': counted
   * in the engine's port shares until released; 'none').
   */
  hostPortAsked = 0;
  portShare: 'none' | 'asked' | 'counted' = 'none';

  /** Set while the connection sits in the engine's dirty list. */
  dirty = false;
  /** Set while the host socket is paused because the shared budget (not our own queue) is exhausted. */
  budgetPaused = false;

  readonly #io: TcpConnIo;
  readonly #limits: TcpLimits;
  /** The link MTU, bytes: our MSS and segment size follow from it. */
  readonly #mtu: number;
  /** Folded pseudo-header sum for segments to the guest (remote → guest, TCP). */
  readonly #pseudo: number;
  /** IP and TCP headers without options: 40 over IPv4, 60 over IPv6 (the MSS is the MTU less these). */
  readonly #headers: number;
  /** Added to the clock for our TSval (RFC 7323 §5.4), as an int32 (the wire writes its 32 bits). */
  readonly #tsOffset: number;
  /** The clock at the current entry point, ms; every entry point sets it first. */
  #nowMs: number;

  // --- Send side (towards the guest).
  /** Send sequence variables and the guest's window. */
  readonly #snd: SendSpace;
  /** Host data not yet acknowledged by the guest; its first byte has sequence number #snd.dataSeq(). */
  readonly #queue = new ByteQueue();
  /** The host sent FIN: a FIN follows the queue. Never cleared. */
  #finQueued = false;
  /** We paused the host socket (queue at sndBufferBytes or budget spent); resumed below half. */
  #hostPaused = false;
  /** cwnd, ssthresh, duplicate ACKs, fast recovery (RFC 5681, RFC 6582). */
  readonly #cc = new Congestion();
  /** What the guest SACKed above SND.UNA (RFC 2018, RFC 6675). */
  readonly #sacked: SackScoreboard;
  /** RTT samples, the RTO and the retransmission and persist backoffs (RFC 6298). */
  readonly #rto: RtoEstimator;

  // --- Receive side (from the guest).
  /** Receive sequence variables and the window we advertised. */
  readonly #rcv: ReceiveSpace;
  /** What the host socket reported as still buffered after our last write, bytes; 0 once drained. Counted against the budget. */
  #hostBuffered = 0;
  /** Out-of-order segments held from the guest, and the SACK blocks they make. */
  readonly #ooo: OooQueue;
  // Negotiated in the handshake (RFC 7323 §1.3, RFC 2018 §2: what the guest's SYN offered); fixed after it.
  /** SACK: we send SACK blocks and read the guest's. */
  #sackOk = false;
  /** Window scaling both ways (`#snd.shift`, `#rcv.shift`). */
  #wsOk = false;
  /** Timestamps on every segment; the segment size is 12 bytes smaller. */
  #tsOk = false;
  /** TS.Recent (RFC 7323 §4.3): the TSval we echo, the latest from an in-order segment; int32. */
  #tsRecent = 0;
  // ACK coalescing (README "ACK coalescing"): cleared whenever a segment carrying an ACK goes out.
  /** An ACK is owed at the next flush (out of order, duplicate, FIN, window update, challenge…). */
  #ackNow = false;
  /** In-order data segments received since we last sent an ACK; two or more are ACKed at the flush. */
  #segsSinceAck = 0;

  /** Deadlines (absolute clock ms; undefined when off). */
  readonly #timers = new TcpTimers();

  // --- The segment being written (read by #writer, which the io calls synchronously).
  // Shared by every connection (bench/scale.ts: seven objects of an idle flow's heap when each
  // had its own): a segment is filled and handed to the io's sendSegment, which calls the
  // writer before it returns, so no other connection fills them in between.
  /** Its header, refilled for every segment (ports included): one record, never reallocated. */
  static readonly #out: MutableTcpHeader = { srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, urgent: 0, options: NO_TCP_OPTIONS };
  /** Its payload: `#outDataLen` bytes from offset `#outDataFrom` of the writing connection's send queue (0 and 0: none). */
  static #outDataFrom = 0;
  static #outDataLen = 0;
  /** The connection whose segment #writer writes; set by #emit. */
  static #writing: TcpConn | undefined;
  static readonly #writer = (into: Uint8Array, at: number): number => TcpConn.#writing!.#write(into, at);
  /** Timestamp-only options, reused for every segment (read synchronously by #write). */
  static readonly #tsOptions = { timestamp: { value: 0, echo: 0 } };
  /** SACK options, with and without a timestamp; `sack` is the OOO queue's, valid until its next sackBlocks(). */
  static readonly #sackOptions: { sack: SackBlocks } = { sack: NO_SACK };
  static readonly #tsSackOptions: { timestamp: { value: number; echo: number }; sack: SackBlocks } = { timestamp: { value: 0, echo: 0 }, sack: NO_SACK };

  constructor(init: TcpConnInit) {
    this.id = init.id;
    this.origin = init.origin;
    this.guest = init.guest;
    this.remote = init.remote;
    this.host = init.host;
    this.createdMs = init.nowMs;
    this.lastActiveMs = init.nowMs;
    this.#nowMs = init.nowMs;
    this.#io = init.io;
    this.#limits = init.limits;
    this.#mtu = init.mtu;
    this.#tsOffset = init.tsOffset | 0; // int32, as #tsRecent: a small integer in the field, not a boxed number
    this.#pseudo = pseudoSumIp(init.remote.addr, init.guest.addr, IP_PROTO.TCP);
    this.#headers = typeof init.guest.addr === 'number' ? IPV4_TCP_HEADERS : IPV6_HEADER_LEN + 20;
    this.#snd = new SendSpace(init.iss);
    this.#rto = new RtoEstimator(init.limits);
    this.#sacked = new SackScoreboard(init.limits.sackBlocks);
    this.#ooo = new OooQueue(init.limits.oooSegments);
    this.#rcv = new ReceiveSpace(windowShiftFor(init.limits.rcvBufferBytes));
    this.state = init.origin === 'guest' ? 'host-connecting' : 'syn-sent';
  }

  /** FlowEntry's state in words: the RFC state name. */
  get stateName(): string {
    return this.state;
  }

  /** Our MSS: what fits in the link MTU (RFC 9293 §3.7.1), at most 65535. */
  /** The guest's initial sequence number (its SYN's), once it sent one: what an ICMP error about that SYN quotes. */
  get guestIss(): number {
    return this.#rcv.irs;
  }

  get ourMss(): number {
    return Math.min(0xffff, this.#mtu - this.#headers);
  }

  /** Snapshot of the send/receive variables, for tests and debugging. */
  get vars(): {
    sndUna: number; sndNxt: number; sndMax: number; sndWnd: number; rcvNxt: number; rcvEdge: number;
    queued: number; queueBytes: number; oooSegments: number; cwnd: number; rtoMs: number; srttMs: number; hostPaused: boolean;
    sndMss: number; sndShift: number; rcvShift: number; sackOk: boolean; tsOk: boolean; wsOk: boolean;
  } {
    return {
      sndUna: this.#snd.una, sndNxt: this.#snd.nxt, sndMax: this.#snd.max, sndWnd: this.#snd.wnd,
      rcvNxt: this.#rcv.nxt, rcvEdge: this.#rcv.edge, queued: this.#queue.length, queueBytes: this.#queue.capacity, oooSegments: this.#ooo.length,
      cwnd: this.#cc.cwnd, rtoMs: this.#rto.rtoMs, srttMs: this.#rto.srttMs, hostPaused: this.#hostPaused,
      sndMss: this.#snd.mss, sndShift: this.#snd.shift, rcvShift: this.#rcv.shift,
      sackOk: this.#sackOk, tsOk: this.#tsOk, wsOk: this.#wsOk,
    };
  }

  /** Bytes this connection holds against the shared budget. */
  get heldBytes(): number {
    return this.#queue.length + this.#hostBuffered;
  }

  // ===================================================================== opening

  /** A guest SYN opened this connection: remember its options; the engine calls Host.tcpConnect. */
  acceptSyn(t: Tcp, nowMs: number): void {
    this.packetsFromGuest++;
    this.#nowMs = nowMs;
    this.#rcv.synReceived(t.seq);
    this.#negotiate(t);
    this.#snd.wnd = t.window;   // RFC 7323 §2.2: the window in a SYN is never scaled
    this.#snd.maxWnd = t.window;
    this.#snd.wl1 = t.seq;
    this.#timers.connectAt = nowMs + this.#limits.connectTimeoutMs;
  }

  /** A forwarded connection: send our SYN to the guest. */
  startForward(nowMs: number): void {
    this.#nowMs = nowMs;
    this.#sendSyn();
    this.#timers.rtoAt = nowMs + this.#rto.rtoMs;
  }

  #negotiate(t: Tcp): void {
    const o = t.options;
    this.#snd.mss = o.mss !== undefined && o.mss > 0 ? o.mss : DEFAULT_MSS;
    this.#wsOk = o.windowScale !== undefined;
    this.#snd.shift = o.windowScale ?? 0;
    this.#sackOk = o.sackPermitted === true;
    this.#tsOk = o.timestamp !== undefined;
    if (o.timestamp !== undefined) this.#tsRecent = o.timestamp.value | 0;
    this.#cc.start(this.#segmentSize());
  }

  // ================================================================ host events

  /** The host socket connected: answer the guest's SYN (STYLE.md snippet 5). */
  hostConnected(nowMs: number): void {
    this.#nowMs = nowMs;
    switch (this.state) {
      case 'host-connecting':
        this.state = 'syn-received';
        this.#timers.connectAt = undefined;
        this.#sendSyn();
        this.#timers.rtoAt = nowMs + this.#rto.rtoMs;
        return;
      case 'closed':
        return;
      case 'syn-sent': case 'syn-received': case 'established': case 'fin-wait-1': case 'fin-wait-2':
      case 'close-wait': case 'closing': case 'last-ack': case 'time-wait':
        return this.#io.counters.count('tcp.unexpected-host-connect');
      default:
        return assertNever(this.state);
    }
  }

  /** Bytes from the host socket; the queue keeps a copy (unless they landed in its lend: `hostReadBuffer`), so `data` may be reused after the call. */
  hostData(data: Uint8Array, nowMs: number): void {
    this.#nowMs = nowMs;
    if (this.#finQueued || !(this.state === 'syn-received' || this.state === 'established' || this.state === 'close-wait')) {
      this.#io.counters.count('tcp.host-data-dropped');
      return;
    }
    this.#queue.push(data);
    this.#io.account(data.length);
    this.#updatePause();
    this.#io.markDirty(this);
  }

  /**
   * Where the host may read this connection's next bytes: a region of the send queue's memory
   * (ByteQueue.lend), handed back through `hostData`, which then copies nothing. Undefined when
   * the connection takes no host data now, or the queue has no such region.
   */
  hostReadBuffer(maxBytes: number): Uint8Array | undefined {
    if (this.#finQueued || !(this.state === 'syn-received' || this.state === 'established' || this.state === 'close-wait')) return undefined;
    return this.#queue.lend(maxBytes);
  }

  /** The host peer sent FIN: a FIN follows the queued data (RFC 9293 §3.10.4 CLOSE). */
  hostEnd(nowMs: number): void {
    this.#nowMs = nowMs;
    if (this.#finQueued) return;
    switch (this.state) {
      case 'syn-received':        // the FIN waits until the handshake completes
        this.#finQueued = true;
        return;
      case 'established':
        this.#finQueued = true;
        this.state = 'fin-wait-1';
        break;
      case 'close-wait':
        this.#finQueued = true;
        this.state = 'last-ack';
        break;
      case 'host-connecting': case 'syn-sent': case 'fin-wait-1': case 'fin-wait-2': case 'closing':
      case 'last-ack': case 'time-wait': case 'closed':
        this.#io.counters.count('tcp.unexpected-host-end');
        return;
      default:
        return assertNever(this.state);
    }
    this.#io.markDirty(this);
  }

  /** The host socket's write buffer drained: the window reopens. */
  hostDrained(nowMs: number): void {
    this.#nowMs = nowMs;
    if (this.state === 'closed') return;
    const before = this.#windowNow();
    this.#io.account(-this.#hostBuffered);
    this.#hostBuffered = 0;
    this.#maybeWindowUpdate(before);
  }

  /** The host connection failed or broke (Node error code). */
  hostError(code: string, nowMs: number): void {
    this.#nowMs = nowMs;
    this.#io.stats.count(`tcp.host-error-${code.toLowerCase()}`);
    switch (this.state) {
      case 'host-connecting': {
        const icmp = unreachableFor(code);
        if (icmp !== undefined) this.#io.icmpUnreachable(this, icmp);
        else this.#sendReset(0, this.#rcv.nxt);
        return this.#finish();
      }
      case 'syn-sent':
        return this.#finish();
      case 'time-wait': case 'closed':
        return;
      case 'syn-received': case 'established': case 'fin-wait-1': case 'fin-wait-2':
      case 'close-wait': case 'closing': case 'last-ack':
        this.#sendReset(this.#snd.nxt, this.#rcv.nxt);
        return this.#finish();
      default:
        return assertNever(this.state);
    }
  }

  // ================================================================ guest input

  /** A segment from the guest for this connection (checksum already verified). */
  input(t: Tcp, nowMs: number): void {
    this.#nowMs = nowMs;
    this.packetsFromGuest++;
    switch (this.state) {
      case 'host-connecting':
        this.#inputConnecting(t);
        break;
      case 'syn-sent':
        this.#inputSynSent(t);
        break;
      case 'closed':
        return;
      case 'syn-received': case 'established': case 'fin-wait-1': case 'fin-wait-2': case 'close-wait':
      case 'closing': case 'last-ack': case 'time-wait':
        this.#inputSynchronized(t);
        break;
      default:
        return assertNever(this.state);
    }
    if (this.#stateNow() !== 'closed') this.#io.markDirty(this);
  }

  /** The state, unnarrowed: methods called in between may have changed it. */
  #stateNow(): TcpState {
    return this.state;
  }

  /** Whether a SYN on this tuple may start a new connection (RFC 9293 §3.10.7.4 TIME-WAIT, RFC 6191). */
  acceptsNewSyn(t: Tcp): boolean {
    return this.state === 'time-wait' && seqGt(t.seq, this.#rcv.nxt);
  }

  #inputConnecting(t: Tcp): void {
    if ((t.flags & TCP_FLAG.RST) !== 0) {
      // RFC 9293 §3.10.7.4 (SYN-RECEIVED): a reset in window aborts; the guest gave up.
      if (t.seq === this.#rcv.nxt) {
        this.#io.stats.count('tcp.guest-reset-while-connecting');
        this.#io.hostReset(this);
        this.#finish();
      }
      return;
    }
    if ((t.flags & TCP_FLAG.SYN) !== 0 && t.seq === this.#rcv.irs) return this.#io.stats.count('tcp.syn-absorbed');
    this.#io.counters.count('tcp.segment-while-connecting');
  }

  #inputSynSent(t: Tcp): void {
    const f = t.flags;
    const ackOk = (f & TCP_FLAG.ACK) !== 0 && t.ack === seqAdd(this.#snd.iss, 1);
    if ((f & TCP_FLAG.ACK) !== 0 && !ackOk) {
      if ((f & TCP_FLAG.RST) === 0) this.#sendReset(t.ack, undefined);
      return;
    }
    if ((f & TCP_FLAG.RST) !== 0) {
      if (ackOk) {
        // The guest's port is closed: the host client sees a reset.
        this.#io.stats.count('tcp.forward-refused');
        this.#io.hostReset(this);
        this.#finish();
      }
      return;
    }
    if ((f & TCP_FLAG.SYN) === 0 || !ackOk) return this.#io.counters.count('tcp.syn-sent-unexpected');
    this.#rcv.synReceived(t.seq);
    // We offered every option: what the guest's SYN-ACK carries is what applies (RFC 7323 §1.3, RFC 2018 §2).
    this.#negotiate(t);
    this.#snd.una = t.ack;
    this.#snd.synAcked = true;
    this.#snd.wnd = t.window;
    this.#snd.maxWnd = t.window;
    this.#snd.wl1 = t.seq;
    this.#snd.wl2 = t.ack;
    this.#timers.rtoAt = undefined;
    this.#rto.retries = 0;
    this.state = 'established';
    this.#ackNow = true;
    this.#io.hostPause(this, false);
  }

  #inputSynchronized(t: Tcp): void {
    const f = t.flags;
    const syn = (f & TCP_FLAG.SYN) !== 0;
    const fin = (f & TCP_FLAG.FIN) !== 0;
    const segLen = t.payload.length + (syn ? 1 : 0) + (fin ? 1 : 0);
    const seq = t.seq;

    // A retransmitted SYN while our SYN-ACK is out: send it again (RFC 9293 §3.10.7.4 is
    // stricter, but Linux and passt answer so, and the guest's SYN retransmission means ours was lost).
    if (this.state === 'syn-received' && syn && (f & TCP_FLAG.ACK) === 0 && seq === this.#rcv.irs) {
      this.#io.stats.count('tcp.syn-retransmit');
      this.#sendSyn();
      return;
    }

    // 1. Sequence acceptability (RFC 9293 §3.10.7.4 "first"), Linux-lenient at the left edge:
    //    anything ending at or after rcvNxt and starting at or before the right edge.
    if (!this.#rcv.acceptable(seq, segLen)) {
      if ((f & TCP_FLAG.RST) === 0) {
        this.#io.counters.count('tcp.out-of-window');
        this.#ackNow = true;
      }
      return;
    }

    // 2. RST (RFC 5961 §3.2): exact sequence aborts, anything else in window gets a challenge ACK.
    if ((f & TCP_FLAG.RST) !== 0) {
      if (seq === this.#rcv.nxt) {
        this.#io.stats.count('tcp.guest-reset');
        if (this.state !== 'time-wait') this.#io.hostReset(this);
        return this.#finish();
      }
      this.#io.stats.count('tcp.rst-challenged');
      this.#ackNow = true;
      return;
    }

    // 3. SYN in a synchronized state: challenge ACK (RFC 5961 §4.2).
    if (syn) {
      this.#io.stats.count('tcp.syn-challenged');
      this.#ackNow = true;
      return;
    }

    // 4. ACK.
    if ((f & TCP_FLAG.ACK) === 0) return this.#io.counters.count('tcp.no-ack');
    if (this.state === 'syn-received') {
      if (!(seqGt(t.ack, this.#snd.una) && seqLe(t.ack, this.#snd.max))) {
        this.#sendReset(t.ack, undefined);
        return;
      }
      this.state = this.#finQueued ? 'fin-wait-1' : 'established';
      this.#snd.wnd = t.window << this.#snd.shift;
      this.#snd.maxWnd = this.#snd.wnd;
      this.#snd.wl1 = seq;
      this.#snd.wl2 = t.ack;
    }
    if (!this.#processAck(t)) return;
    const state = this.#stateNow();
    if (state === 'closed') return;

    // 5. Timestamps (RFC 7323 §4.3, with rcvNxt standing for Last.ACK.sent).
    const ts = t.options.timestamp;
    if (this.#tsOk && ts !== undefined && seqLe(seq, this.#rcv.nxt) && seqGe(ts.value, this.#tsRecent)) this.#tsRecent = ts.value | 0;

    // 6. Data and FIN.
    switch (state) {
      case 'established': case 'fin-wait-1': case 'fin-wait-2':
        this.#receive(seq, t.payload, fin);
        return;
      case 'time-wait':
        if (segLen > 0) {            // a retransmitted FIN: our ACK was lost; restart 2×MSL (RFC 9293 §3.10.7.4)
          this.#ackNow = true;
          this.#timers.timeWaitAt = this.#nowMs + this.#limits.timeWaitMs;
        }
        return;
      case 'close-wait': case 'closing': case 'last-ack':
        if (segLen > 0) {
          this.#io.counters.count('tcp.data-after-fin');
          this.#ackNow = true;
        }
        return;
      case 'host-connecting': case 'syn-sent': case 'syn-received':
        return;
      default:
        return assertNever(state);
    }
  }

  /** RFC 9293 §3.10.7.4 "fifth, check the ACK field". False: drop the rest of the segment. */
  #processAck(t: Tcp): boolean {
    const ack = t.ack;
    if (seqGt(ack, this.#snd.max)) {
      this.#io.counters.count('tcp.ack-of-unsent');
      this.#ackNow = true;
      return false;
    }
    const wnd = t.window << this.#snd.shift;
    let newSack = false;
    if (this.#sackOk && t.options.sack !== undefined) {
      const before = this.#sacked.sackedBytes();
      this.#sacked.update(t.options.sack, this.#snd.una, this.#snd.max);
      newSack = this.#sacked.sackedBytes() > before;
    }

    if (seqGt(ack, this.#snd.una)) {
      this.#newAck(t, ack);
    } else if (ack === this.#snd.una && this.#snd.una !== this.#snd.max && t.payload.length === 0
      && (t.flags & (TCP_FLAG.SYN | TCP_FLAG.FIN)) === 0 && (wnd === this.#snd.wnd || newSack)) {
      // RFC 5681 §2's duplicate ACK; with SACK, any ACK that SACKs new data counts (RFC 6675 §2),
      // since a reading receiver's window changes from ACK to ACK.
      this.#dupAck();
    }

    // Window update (RFC 9293 §3.10.7.4: SND.WL1/WL2 keep old segments from reopening it).
    if (this.#snd.mayUpdateWindow(t.seq, ack)) {
      if (wnd !== this.#snd.wnd) this.#io.markDirty(this);
      this.#snd.updateWindow(wnd, t.seq, ack);
      if (wnd > 0) {
        this.#timers.persistAt = undefined;
        this.#rto.persistBackoff = 0;
      }
    }
    return true;
  }

  #newAck(t: Tcp, ack: number): void {
    let acked = seqSub(ack, this.#snd.una);
    const ackedSeqs = acked;
    const finSeq = this.#finSeq();    // before #synAcked changes where the data starts
    if (!this.#snd.synAcked) {
      this.#snd.synAcked = true;
      acked--;
    }
    let finAcked = false;
    if (finSeq !== undefined && seqGt(ack, finSeq)) {
      finAcked = true;
      acked--;
    }
    if (acked > 0) {
      this.#queue.drop(acked);
      this.#io.account(-acked);
      this.bytesToGuest += acked;
      // Emptied but keeping a small chunk, or one a read is lent into (byte-queue.ts): released if it stays empty.
      if (this.#queue.length === 0 && this.#queue.capacity > 0) this.#timers.ringAt = this.#nowMs + RING_IDLE_MS;
    }
    this.#snd.acked(ack);
    this.#rto.retries = 0;
    this.#cc.dupAcks = 0;
    this.#sacked.ackedTo(ack);

    this.#sampleRtt(t, ack);

    // Congestion window (RFC 5681 §3.1, NewReno partial ACKs per RFC 6582 §3.2).
    const smss = this.#segmentSize();
    const cc = this.#cc;
    if (cc.inRecovery) {
      if (cc.fullyAcks(ack)) {
        cc.exitRecovery(smss);
        this.#timers.recoveryAt = undefined;
      } else {
        cc.partialAck(ackedSeqs, smss);
        if (seqGe(ack, cc.rexmitHigh)) cc.rexmitHigh = this.#retransmitAt(ack);
        else this.#retransmitNextHole();
        this.#armRecovery(true);
      }
    } else {
      cc.grow(ackedSeqs, smss);
    }

    // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
    this.#timers.rtoAt = this.#snd.allAcked() ? undefined : this.#nowMs + this.#rto.rtoMs;
    this.#updatePause();
    this.#io.markDirty(this);

    if (finAcked) {
      switch (this.state) {
        case 'fin-wait-1':
          this.state = 'fin-wait-2';
          break;
        case 'closing':
          this.#enterTimeWait();
          break;
        case 'last-ack':
          this.#io.hostClose(this);
          this.#finish();
          break;
        default:
          break;
      }
    }
  }

  #dupAck(): void {
    const cc = this.#cc;
    cc.dupAcks++;
    this.#io.stats.count('tcp.dup-ack');
    const smss = this.#segmentSize();
    if (cc.inRecovery) {
      cc.inflate(smss);
      if (this.#sackOk) this.#retransmitNextHole();
      return;
    }
    const sackSaysLost = this.#sackOk && this.#sacked.sackedBytes() >= 3 * smss;
    if (cc.dupAcks === 3 || (cc.dupAcks < 3 && sackSaysLost)) {
      // RFC 5681 §3.2 fast retransmit / fast recovery.
      this.#io.stats.count('tcp.fast-retransmit');
      cc.enterRecovery(this.#snd.outstanding(), smss, this.#snd.max);
      cc.rexmitHigh = this.#retransmitAt(this.#snd.una);
      this.#rto.stopTiming();
      this.#armRecovery(true);
    }
  }

  /**
   * A lost retransmission would otherwise wait for the RTO (200 ms or more): in recovery, if
   * SND.UNA is still unacknowledged after about two round trips, resend it (the idea of RACK,
   * RFC 8985, simplified to the first hole).
   */
  #armRecovery(reset: boolean): void {
    this.#timers.recoveryAt = this.#nowMs + this.#cc.recoveryDelayMs(this.#rto.srttMs, this.#rto.rtoMs, reset);
  }

  #onRecoveryTimer(): void {
    if (!this.#cc.inRecovery || this.#snd.allAcked() || !this.#canSendData()) return;
    this.#io.stats.count('tcp.recovery-retransmit');
    this.#retransmitAt(this.#snd.una);
    this.#retransmitNextHole();
    this.#cc.backOffRecovery();
    this.#armRecovery(false);
  }

  #sampleRtt(t: Tcp, ack: number): void {
    let rtt: number | undefined;
    const ts = t.options.timestamp;
    // RFC 7323 §4.1: the echoed timestamp gives a sample per ACK, retransmissions included
    // (the echo says which transmission is acknowledged). A peer that echoes nothing usable
    // falls back to timing one segment at a time (Karn, RFC 6298 §3).
    if (this.#tsOk && ts !== undefined && ts.echo !== 0) {
      const r = seqSub(this.#tsNow(), ts.echo);
      if (r >= 0 && r < 600_000) rtt = r;
    }
    const timed = this.#rto.timedSample(ack, this.#nowMs);
    rtt ??= timed;
    if (rtt !== undefined) this.#rto.sample(rtt);
  }

  /** RFC 6675-style: retransmit the next hole after what recovery already resent, if SACKs show data above it. */
  #retransmitNextHole(): void {
    if (this.#sacked.count === 0) return;
    let seq = seqGt(this.#cc.rexmitHigh, this.#snd.una) ? this.#cc.rexmitHigh : this.#snd.una;
    const end = this.#sacked.endContaining(seq);
    if (end !== undefined) seq = end;
    const highestSacked = this.#sacked.highestEnd();
    if (!seqLt(seq, highestSacked)) return;
    const flight = this.#snd.outstanding() - this.#sacked.sackedBytes();
    if (flight >= this.#cc.cwnd) return;
    this.#cc.rexmitHigh = this.#retransmitAt(seq);
  }

  // ================================================================ receiving

  #receive(seq: number, payload: Uint8Array, fin: boolean): void {
    let data = payload;
    // Trim what we already have (duplicates and overlaps).
    const old = seqSub(this.#rcv.nxt, seq);
    if (old > 0) {
      this.#io.stats.count('tcp.duplicate-data');
      this.#ackNow = true;
      if (old > data.length) {
        return;     // the FIN too lies before rcvNxt: an inconsistent guest, ignore
      }
      data = data.subarray(old);
      seq = this.#rcv.nxt;
    }
    // Trim what lies beyond the advertised window.
    const room = seqSub(this.#rcv.edge, seq);
    if (data.length > room) {
      this.#io.counters.count('tcp.beyond-window');
      this.#ackNow = true;
      data = data.subarray(0, Math.max(0, room));
      fin = false;
    }
    if (data.length === 0 && !fin) return;
    if (seq === this.#rcv.nxt) {
      const hadOoo = this.#ooo.length > 0;
      if (data.length > 0) {
        this.#deliver(data);
        this.#rcv.nxt = seqAdd(this.#rcv.nxt, data.length);
        this.#segsSinceAck++;
      }
      if (fin) this.#receiveFin();
      else if (hadOoo) this.#drainOoo();
      if (hadOoo) this.#ackNow = true;   // RFC 5681 §4.2: ACK at once when a hole fills
      return;
    }
    this.#holdOoo(seq, data, fin);
  }

  #deliver(data: Uint8Array): void {
    const before = this.#hostBuffered;
    this.#hostBuffered = this.#io.hostWrite(this, data);
    this.#io.account(this.#hostBuffered - before);
    this.bytesFromGuest += data.length;
  }

  #receiveFin(): void {
    this.#rcv.nxt = seqAdd(this.#rcv.nxt, 1);
    this.#ackNow = true;
    this.#io.hostEnd(this);
    switch (this.state) {
      case 'established':
        this.state = 'close-wait';
        return;
      case 'fin-wait-1':
        this.state = 'closing';
        return;
      case 'fin-wait-2':
        this.#enterTimeWait();
        return;
      default:
        return;
    }
  }

  /** Holds an out-of-order segment (RFC 9293 §3.10.7.4 "seventh": SHOULD hold in-window segments). */
  #holdOoo(seq: number, data: Uint8Array, fin: boolean): void {
    this.#ackNow = true;    // RFC 5681 §4.2: immediate duplicate ACK, with SACK blocks
    this.#io.stats.count('tcp.out-of-order');
    if (!this.#ooo.hold(seq, data, fin)) this.#io.counters.count('tcp.ooo-full');
  }

  /** Delivers the held segments the hole's filling made in order, and a FIN among them. */
  #drainOoo(): void {
    const q = this.#ooo;
    while (q.length > 0) {
      const seq = q.headSeq;
      if (seqGt(seq, this.#rcv.nxt)) return;
      const data = q.headData;
      const fin = q.headFin;
      q.shift();
      const end = seqAdd(seq, data.length);
      if (seqGt(end, this.#rcv.nxt)) {
        this.#deliver(data.subarray(seqSub(this.#rcv.nxt, seq)));
        this.#rcv.nxt = end;
      }
      if (fin && end === this.#rcv.nxt) {
        q.clear();
        this.#receiveFin();
        return;
      }
    }
  }

  // ================================================================ window

  /** What we could take now: budget minus what the host socket buffers, SWS-rounded (RFC 9293 §3.8.6.2.2). */
  #windowNow(): number {
    let w = this.#limits.rcvBufferBytes - this.#hostBuffered;
    const free = this.#io.budgetFree();
    if (free < w) w = free;
    if (w < Math.min(this.#limits.rcvBufferBytes >>> 1, this.ourMss)) w = 0;
    return Math.max(0, w);
  }

  /** The window field for a non-SYN segment; moves the advertised right edge, never left. */
  #advertise(): number {
    return this.#rcv.advertise(this.#windowNow(), this.#wsOk);
  }

  #maybeWindowUpdate(before: number): void {
    const now = this.#windowNow();
    const advertised = Math.max(0, this.#rcv.promisedBytes());
    // Tell the guest when the window opened by a useful amount (RFC 9293 §3.8.6.2.2).
    if (now > before && now - advertised >= Math.min(this.#limits.rcvBufferBytes >>> 1, 2 * this.ourMss)) {
      this.#ackNow = true;
      this.#io.markDirty(this);
    }
  }

  // ================================================================ sending

  /** The FIN's sequence number once the host ended, else undefined. */
  #finSeq(): number | undefined {
    return this.#finQueued ? seqAdd(this.#snd.dataSeq(), this.#queue.length) : undefined;
  }

  /** Payload bytes per segment: the guest's MSS and our MTU, minus options (RFC 9293 §3.7.1). */
  #segmentSize(): number {
    return Math.max(1, Math.min(this.#snd.mss, this.#mtu - this.#headers) - (this.#tsOk ? TIMESTAMP_OPTION_LEN : 0));
  }

  /** Payload bytes for the next segment: SACK blocks we owe the guest take room too (RFC 9293 §3.7.1: MSS counts options). */
  #maxPayload(): number {
    const n = this.#sackOk ? this.#ooo.blockCount() : 0;
    if (n === 0) return this.#segmentSize();
    const blocks = Math.min(n, this.#tsOk ? 3 : 4);
    return Math.max(1, this.#segmentSize() - 4 - 8 * blocks);
  }

  #canSendData(): boolean {
    switch (this.state) {
      case 'established': case 'close-wait': case 'fin-wait-1': case 'closing': case 'last-ack':
        return true;
      case 'host-connecting': case 'syn-sent': case 'syn-received': case 'fin-wait-2': case 'time-wait': case 'closed':
        return false;
      default:
        return assertNever(this.state);
    }
  }

  /** Sends what the window, cwnd and queue allow (RFC 9293 §3.8.6.2.1 sender SWS avoidance). */
  #trySend(): void {
    if (!this.#canSendData()) return;
    const dataSeq = this.#snd.dataSeq();
    const end = seqAdd(dataSeq, this.#queue.length);
    const wnd = Math.min(this.#snd.wnd, this.#cc.cwnd);
    const mss = this.#maxPayload();
    let sent = 0;
    for (let n = 0; n < 100_000; n++) {
      if (seqLt(this.#snd.nxt, this.#snd.max)) {
        const skip = this.#sacked.endContaining(this.#snd.nxt);
        if (skip !== undefined) {
          this.#snd.nxt = skip;
          continue;
        }
      }
      const avail = seqSub(end, this.#snd.nxt);
      if (avail <= 0) {
        if (this.#finQueued && this.#snd.nxt === end) {
          this.#sendData(end, 0, TCP_FLAG.ACK | TCP_FLAG.FIN);
          this.#snd.nxt = seqAdd(end, 1);
          this.#snd.sentTo(this.#snd.nxt);
          this.#timers.rtoAt ??= this.#nowMs + this.#rto.rtoMs;
        }
        break;
      }
      const usable = seqSub(seqAdd(this.#snd.una, wnd), this.#snd.nxt);
      if (usable <= 0) break;
      let len = Math.min(avail, mss, usable);
      if (seqLt(this.#snd.nxt, this.#snd.max)) {
        const next = this.#sacked.nextStartAfter(this.#snd.nxt);
        if (next !== undefined) len = Math.min(len, seqSub(next, this.#snd.nxt));
      }
      const inFlight = this.#snd.nxt !== this.#snd.una;
      if (len < mss && len < avail && inFlight && len < this.#snd.maxWnd / 2) break;
      // The shell's turn is spent: the rest waits for a later one (ToGuest.sendBudget).
      if (!this.#io.sendAllowed(len)) {
        this.#io.sendDeferred(this, sent > 0);
        break;
      }
      sent++;
      const fin = this.#finQueued && len === avail;
      const isNew = seqGe(this.#snd.nxt, this.#snd.max);
      if (isNew) this.#rto.startTiming(this.#snd.nxt, this.#nowMs);
      this.#sendData(this.#snd.nxt, len, TCP_FLAG.ACK | (len === avail ? TCP_FLAG.PSH : 0) | (fin ? TCP_FLAG.FIN : 0));
      this.#snd.nxt = seqAdd(this.#snd.nxt, len + (fin ? 1 : 0));
      this.#snd.sentTo(this.#snd.nxt);
      this.#timers.rtoAt ??= this.#nowMs + this.#rto.rtoMs;
      if (fin) break;
    }
    // Zero window with data waiting and nothing in flight: probe (RFC 9293 §3.8.6.1).
    const waiting = seqLt(this.#snd.nxt, end) || (this.#finQueued && this.#snd.nxt === end);
    if (this.#snd.wnd === 0 && waiting && this.#snd.allAcked() && this.#timers.persistAt === undefined) {
      this.#timers.persistAt = this.#nowMs + this.#rto.persistIntervalMs();
    }
  }

  /** Retransmits one segment starting at `seq` (SACK-bounded); returns where it ends. */
  #retransmitAt(seq: number): number {
    const dataSeq = this.#snd.dataSeq();
    const end = seqAdd(dataSeq, this.#queue.length);
    this.#io.stats.count('tcp.retransmit');
    const finSent = this.#finQueued && seqGt(this.#snd.max, end);
    if (seqGe(seq, end)) {
      if (finSent) this.#sendData(end, 0, TCP_FLAG.ACK | TCP_FLAG.FIN);
      return seqAdd(end, finSent ? 1 : 0);
    }
    let len = Math.min(this.#maxPayload(), seqSub(end, seq), seqSub(this.#snd.max, seq));
    const next = this.#sacked.nextStartAfter(seq);
    if (next !== undefined) len = Math.min(len, seqSub(next, seq));
    if (len <= 0) return seq;
    const fin = finSent && seqAdd(seq, len) === end;
    this.#sendData(seq, len, TCP_FLAG.ACK | (fin ? TCP_FLAG.FIN : 0));
    this.#timers.rtoAt = this.#nowMs + this.#rto.rtoMs;
    return seqAdd(seq, len + (fin ? 1 : 0));
  }

  /** Flow control back to the host: pause while the queue is full or the budget spent, resume at half. */
  #updatePause(): void {
    const q = this.#queue.length;
    const full = q >= this.#limits.sndBufferBytes;
    const overBudget = this.#io.budgetFree() <= 0;
    if (!this.#hostPaused && (full || overBudget)) {
      this.#hostPaused = true;
      this.budgetPaused = !full;
      this.#io.hostPause(this, true);
    } else if (this.#hostPaused && q < this.#limits.sndBufferBytes >>> 1 && this.#io.budgetFree() > 0) {
      this.#hostPaused = false;
      this.budgetPaused = false;
      this.#io.hostPause(this, false);
    }
  }

  /** The engine found budget again: resume if our own queue allows. */
  budgetAvailable(): void {
    if (this.budgetPaused) this.#updatePause();
  }

  /** End of an entry point: send what is due, then one ACK if one is still owed (ACK coalescing). */
  flush(nowMs: number): void {
    this.#nowMs = nowMs;
    this.dirty = false;
    if (this.state === 'closed') return;
    this.#trySend();
    if (this.state === 'host-connecting' || this.state === 'syn-sent') return;
    if (this.#ackNow || this.#segsSinceAck >= 2) this.#sendAck();
    else if (this.#segsSinceAck === 1 && this.#timers.dackAt === undefined) this.#timers.dackAt = nowMs + this.#limits.delayedAckMs;
  }

  #sendAck(): void {
    this.#sendData(this.#snd.nxt, 0, TCP_FLAG.ACK);
  }

  // ================================================================ timers

  /** The earliest timer, in clock ms; undefined when none is armed. */
  nextDeadline(): number | undefined {
    return this.#timers.next();
  }

  /** Runs the timers due by `nowMs`. */
  onTimer(nowMs: number): void {
    this.#nowMs = nowMs;
    if (this.#timers.connectAt !== undefined && nowMs >= this.#timers.connectAt) {
      this.#timers.connectAt = undefined;
      if (this.state === 'host-connecting') {
        this.#io.stats.count('tcp.connect-timeout');
        this.#io.hostReset(this);
        this.#io.icmpUnreachable(this, TCP_UNREACHABLE.HOST);
        return this.#finish();
      }
    }
    if (this.#timers.timeWaitAt !== undefined && nowMs >= this.#timers.timeWaitAt) {
      this.#timers.timeWaitAt = undefined;
      return this.#finish();
    }
    if (this.#timers.rtoAt !== undefined && nowMs >= this.#timers.rtoAt) {
      this.#timers.rtoAt = undefined;
      this.#onRto();
      if (this.state === 'closed') return;
    }
    if (this.#timers.persistAt !== undefined && nowMs >= this.#timers.persistAt) {
      this.#timers.persistAt = undefined;
      if (this.#snd.wnd === 0 && this.#canSendData()) {
        // Linux's window probe: an ACK with an old sequence number makes the guest answer with its window.
        this.#io.stats.count('tcp.window-probe');
        this.#sendData(seqAdd(this.#snd.una, -1), 0, TCP_FLAG.ACK);
        this.#rto.backOffPersist();
        this.#timers.persistAt = nowMs + this.#rto.persistIntervalMs();
      }
    }
    if (this.#timers.recoveryAt !== undefined && nowMs >= this.#timers.recoveryAt) {
      this.#timers.recoveryAt = undefined;
      this.#onRecoveryTimer();
    }
    if (this.#timers.dackAt !== undefined && nowMs >= this.#timers.dackAt) {
      this.#timers.dackAt = undefined;
      if (this.#segsSinceAck > 0 || this.#ackNow) this.#sendAck();
    }
    if (this.#timers.ringAt !== undefined && nowMs >= this.#timers.ringAt) {
      this.#timers.ringAt = undefined;
      this.#queue.release();
    }
  }

  #onRto(): void {
    switch (this.state) {
      case 'syn-sent': case 'syn-received':
        if (this.#rto.retries >= this.#limits.synRetries) {
          this.#io.stats.count('tcp.handshake-timeout');
          this.#io.hostReset(this);
          return this.#finish();
        }
        this.#rto.retries++;
        this.#io.stats.count('tcp.syn-retransmit');
        this.#rto.backOff();
        this.#sendSyn();
        this.#timers.rtoAt = this.#nowMs + this.#rto.rtoMs;
        return;
      case 'host-connecting': case 'fin-wait-2': case 'time-wait': case 'closed':
        return;
      case 'established': case 'close-wait': case 'fin-wait-1': case 'closing': case 'last-ack':
        break;
      default:
        return assertNever(this.state);
    }
    if (this.#snd.allAcked()) return;
    if (this.#rto.retries >= this.#limits.maxRetransmits) {
      this.#io.stats.count('tcp.retransmit-timeout');
      this.#sendReset(this.#snd.nxt, this.#rcv.nxt);
      this.#io.hostReset(this);
      return this.#finish();
    }
    this.#rto.retries++;
    this.#io.stats.count('tcp.rto');
    // RFC 5681 §3.1 eqn 4 and RFC 6298 §5.5–5.7: halve, restart from one segment, back off.
    const smss = this.#segmentSize();
    this.#cc.onTimeout(this.#snd.outstanding(), smss);
    this.#timers.recoveryAt = undefined;
    this.#sacked.clear();   // RFC 2018 §8: the receiver may have reneged
    this.#rto.backOff();
    this.#rto.stopTiming();
    this.#snd.nxt = this.#snd.una;
    this.#timers.rtoAt = this.#nowMs + this.#rto.rtoMs;
    this.#trySend();
    if (this.#snd.nxt === this.#snd.una) this.#cc.rexmitHigh = this.#retransmitAt(this.#snd.una);  // window 0: still resend one
  }

  #enterTimeWait(): void {
    this.state = 'time-wait';
    this.#timers.rtoAt = undefined;
    this.#timers.persistAt = undefined;
    this.#timers.timeWaitAt = this.#nowMs + this.#limits.timeWaitMs;
    this.#io.hostClose(this);
  }

  /** Ends the connection: releases its budget and tells the engine to forget it. */
  #finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#timers.clear();
    this.#io.account(-(this.#queue.length + this.#hostBuffered));
    this.#queue.drop(this.#queue.length);
    this.#hostBuffered = 0;
    this.#ooo.clear();
    this.#io.finished(this);
  }

  /** Closes without telling anyone but the host (the engine evicts a TIME-WAIT flow, or shuts down). */
  abort(): void {
    if (this.state === 'closed') return;
    if (this.state !== 'time-wait') {
      if (this.state !== 'host-connecting' && this.state !== 'syn-sent') this.#sendReset(this.#snd.nxt, this.#rcv.nxt);
      this.#io.hostReset(this);
    }
    this.#finish();
  }

  // ================================================================ segment output

  #tsNow(): number {
    return (Math.floor(this.#nowMs) + this.#tsOffset) | 0;
  }

  #ourSynOptions(): TcpOptions {
    const synAck = this.origin === 'guest';
    const o: { mss: number; windowScale?: number; sackPermitted?: boolean; timestamp?: { value: number; echo: number } } = { mss: this.ourMss };
    if (!synAck || this.#wsOk) o.windowScale = this.#rcv.shift;
    if (!synAck || this.#sackOk) o.sackPermitted = true;
    if (!synAck || this.#tsOk) o.timestamp = { value: this.#tsNow(), echo: synAck ? this.#tsRecent : 0 };
    return o;
  }

  /** Our SYN-ACK (guest-opened) or SYN (forwarded); the window in it is never scaled. */
  #sendSyn(): void {
    const synAck = this.origin === 'guest';
    const out = TcpConn.#out;
    out.seq = this.#snd.iss;
    out.ack = synAck ? this.#rcv.nxt : 0;
    out.flags = synAck ? TCP_FLAG.SYN | TCP_FLAG.ACK : TCP_FLAG.SYN;
    const w = Math.min(0xffff, this.#windowNow() || this.#limits.rcvBufferBytes);
    out.window = w;
    if (synAck) this.#rcv.edge = seqAdd(this.#rcv.nxt, w);
    out.options = this.#ourSynOptions();
    TcpConn.#outDataFrom = 0;
    TcpConn.#outDataLen = 0;
    if (seqLe(this.#snd.max, this.#snd.iss)) this.#snd.nxt = this.#snd.max = seqAdd(this.#snd.iss, 1);
    this.#emit();
  }

  /** A segment with ACK (and maybe data from the queue, FIN, PSH) at `seq`. */
  #sendData(seq: number, len: number, flags: number): void {
    const out = TcpConn.#out;
    out.seq = seq;
    out.ack = this.#rcv.nxt;
    out.flags = flags;
    out.window = this.#advertise();
    // One options record per kind, refilled: no allocation per segment, SACK blocks included.
    const sack = this.#sackOk ? this.#ooo.sackBlocks() : undefined;
    if (sack !== undefined) {
      if (this.#tsOk) {
        const o = TcpConn.#tsSackOptions;
        o.timestamp.value = this.#tsNow();
        o.timestamp.echo = this.#tsRecent;
        o.sack = sack;
        out.options = o;
      } else {
        TcpConn.#sackOptions.sack = sack;
        out.options = TcpConn.#sackOptions;
      }
    } else if (this.#tsOk) {
      TcpConn.#tsOptions.timestamp.value = this.#tsNow();
      TcpConn.#tsOptions.timestamp.echo = this.#tsRecent;
      out.options = TcpConn.#tsOptions;
    } else {
      out.options = NO_TCP_OPTIONS;
    }
    TcpConn.#outDataFrom = len > 0 ? seqSub(seq, this.#snd.dataSeq()) : 0;
    TcpConn.#outDataLen = len;
    this.#ackNow = false;
    this.#segsSinceAck = 0;
    this.#timers.dackAt = undefined;
    this.#emit();
  }

  /**
   * An RST: `ack` undefined sends <SEQ=seq><CTL=RST>, the answer to an unacceptable ACK (RFC 9293
   * §3.10.7.3/4); otherwise <SEQ=seq><ACK=ack><CTL=RST,ACK> — an abort acknowledging everything
   * received (§3.10.7.4), or with seq 0 the refusal of a guest's SYN (§3.10.7.1).
   */
  #sendReset(seq: number, ack: number | undefined): void {
    const out = TcpConn.#out;
    out.seq = seq;
    out.ack = ack ?? 0;
    out.flags = ack === undefined ? TCP_FLAG.RST : TCP_FLAG.RST | TCP_FLAG.ACK;
    out.window = 0;
    out.options = NO_TCP_OPTIONS;
    TcpConn.#outDataLen = 0;
    this.#emit();
  }

  #emit(): void {
    this.packetsToGuest++;
    const out = TcpConn.#out;
    out.srcPort = this.remote.port;
    out.dstPort = this.guest.port;
    TcpConn.#writing = this;
    this.#io.sendSegment(this, tcpHeaderLength(out) + TcpConn.#outDataLen, TcpConn.#writer);
    TcpConn.#writing = undefined;
  }

  /** Writes the pending segment (tcp/wire's header writer; the payload straight from the queue). */
  #write(into: Uint8Array, at: number): number {
    const headerLen = writeTcpHeader(TcpConn.#out, into, at);
    const len = headerLen + TcpConn.#outDataLen;
    if (TcpConn.#outDataLen > 0) this.#queue.copyOut(TcpConn.#outDataFrom, TcpConn.#outDataLen, into, at + headerLen);
    writeTcpChecksum(into, at, len, this.#pseudo);
    return len;
  }
}

/** The ICMP unreachable code for a failed connect, or undefined for an RST (libslirp's mapping). */
export function unreachableFor(code: string): number | undefined {
  switch (code) {
    case 'ECONNREFUSED': case 'ECONNRESET':
      return undefined;
    case 'ENETUNREACH': case 'ENETDOWN':
      return TCP_UNREACHABLE.NET;
    case 'EHOSTUNREACH': case 'EHOSTDOWN': case 'ETIMEDOUT':
      return TCP_UNREACHABLE.HOST;
    case 'EACCES': case 'EPERM':
      return TCP_UNREACHABLE.ADMIN_PROHIBITED;
    default:
      return undefined;
  }
}

