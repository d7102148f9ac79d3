/**
 * A read-only TFTP server at the gateway address (QEMU's `tftp=`), sans-IO.
 *
 * Theory of operation
 * -------------------
 * A guest's read request (RRQ) to the gateway's UDP port 69 starts a transfer. The server
 * checks the name (`path.ts`: never a path out of the served directory), the mode and the
 * options, and gives the transfer its own port on the gateway, drawn at random from the
 * dynamic range (RFC 1350 §4: each side's transfer identifier, TID, is its port); everything
 * the server sends for it comes from that port, and the stack routes the guest's datagrams to
 * that port here while the transfer lives. The file is opened and read through the host seam
 * (`Host.fileOpen` / `fileRead`, answered by `fileOpened` / `fileData` / `fileError`), never
 * by this code: a recording of a network holds what was read and replays without the files.
 *
 * With options (RFC 2347) the server first answers an OACK naming those it accepts — `blksize`
 * (RFC 2348: 8..65464, lowered to what fits the link MTU in one datagram), `timeout` (RFC 2349:
 * 1..255 s, the server's retransmission timeout), `tsize` (RFC 2349: the size of what will be
 * sent — the file's size in octet mode, its netascii length in netascii mode, see below) and
 * `windowsize` (RFC 7440: 1..65535, lowered so a window holds at most
 * `windowBytes`) — and waits for the client's ACK of block 0; options it does not know or whose
 * values are not numbers in range are left out (RFC 2347 §3 lets a server ignore them). A
 * `blksize` below 8 is refused with error 8. Without options the first DATA block answers.
 *
 * Data go out a window at a time: blocks n+1..n+windowsize after the client's ACK of n, the
 * last block shorter than blksize (empty when the file is a multiple of it). An ACK inside the
 * window slides it (the client acknowledges the last block it got in order, RFC 7440 §4, so the
 * window restarts after it); a duplicate ACK is ignored (RFC 1123 §4.2.3.1: answering it
 * would start the Sorcerer's Apprentice syndrome); the timer resends the window after the
 * timeout, at most `retries` times, then the transfer ends with an error. Block numbers wrap
 * from 65535 to 0, as tftp-hpa, atftp and iPXE do, so a file of any size can be sent.
 * `netascii` mode converts on the fly (LF → CR LF, CR → CR NUL, RFC 764's NVT rules); the
 * conversion is per byte, so it needs no state across reads. The netascii length is the file's
 * size plus one byte per LF and CR in it, which only a pass over the whole file tells: with
 * `tsize` in netascii mode the transfer first reads the file through once ('sizing', the same
 * bounded reads as a transfer, one in flight, the give-up time restarting with each), answers
 * the OACK with that length, then reads it again from the start as it sends.
 *
 * Bounds: at most `perGuest` transfers per guest address and `total` in all (a request over
 * them gets error 0 "too many transfers"); each holds at most one window of blocks plus one
 * read in flight; a host that does not answer an open within the give-up time ends it.
 *
 * What it does not do: write requests (error 2, the server is read-only); the `mail` mode
 * (error 4); multicast TFTP (RFC 2090).
 *
 * References: RFC 1350, RFC 2347, RFC 2348, RFC 2349, RFC 7440, RFC 1123 §4.2.
 */
import type { FlowId, Ipv4Addr } from '../net/addr.js';
import type { Host } from '../net/seams.js';
import type { Random } from '../util/clock.js';
import type { Counters, Drop } from '../util/drops.js';
import { parseTftp, TFTP_ERROR, tftpLength, writeTftp, type TftpOption, type TftpPacket } from './wire.js';
import { TFTP_PATH_REASON, tftpPath } from './path.js';

export const TFTP_PORT = 69;
/** RFC 1350's block size, without the blksize option. */
export const DEFAULT_BLKSIZE = 512;
/** RFC 2348 §2. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** IPv4 and UDP headers, and TFTP's 4-byte DATA header: what a block shares a datagram with. */
const DATAGRAM_OVERHEAD = 20 + 8 + 4;

export interface TftpLimits {
  /** Transfers one guest address may have at once. */
  readonly perGuest: number;
  /** Transfers of the whole network at once. */
  readonly total: number;
  /** The most bytes one window may hold (windowsize × blksize); the windowsize answered is lowered to fit. */
  readonly windowBytes: number;
  /** Retransmissions of one window (or OACK) before the transfer is given up. */
  readonly retries: number;
  /** The retransmission timeout without the timeout option. */
  readonly timeoutMs: number;
}

export const DEFAULT_TFTP_LIMITS: TftpLimits = { perGuest: 4, total: 64, windowBytes: 256 * 1024, retries: 5, timeoutMs: 1000 };

/** Every Drop the server counts (besides the wire's, `wire.ts`, and the names', `path.ts`). */
export const TFTP_SERVER_DROPS = [
  'tftp.write-refused',
  'tftp.bad-mode',
  'tftp.bad-blksize',
  'tftp.too-many-transfers',
  'tftp.unexpected-opcode',
  'tftp.unknown-tid',
  'tftp.duplicate-request',
  'tftp.stale-ack',
  'tftp.duplicate-ack',
  'tftp.guest-error',
  'tftp.file-error',
  'tftp.timed-out',
  'tftp.no-file-access',
  'tftp.after-end',
] as const satisfies readonly Drop[];

/** Ended transfers whose port stays the server's for a while (RFC 1350 §6's dally), at most this many. */
const MAX_DALLYING = 256;

/** What the server did, for metrics and tests. */
export interface TftpStats {
  requests: number;
  completed: number;
  failed: number;
  /** Blocks (or OACKs) sent again after a timeout or a partial window. */
  retransmitted: number;
  /** DATA payload bytes sent, retransmissions included. */
  bytesSent: number;
}

export interface TftpServerDeps {
  /** The served directory, passed to Host.fileOpen. */
  readonly root: string;
  /** Opens, reads and closes the files (fileOpen, fileRead, close). */
  readonly host: Host;
  readonly random: Random;
  readonly counters: Counters;
  /** A fresh id for a file (the flow table's allocator: ids never collide with sockets'). */
  allocateId(): FlowId;
  /** Sends `payload` as UDP from the gateway's port `fromPort` to the guest endpoint `to`. */
  send(to: GuestEndpoint, fromPort: number, payload: Uint8Array): void;
  /** The link MTU: blocks are sized to fit one datagram. */
  readonly mtu: number;
  readonly limits?: Partial<TftpLimits> | undefined;
}

/** A guest's UDP endpoint (IPv4 today: the server stands at the gateway's v4 address). */
export interface GuestEndpoint {
  readonly addr: Ipv4Addr;
  readonly port: number;
}

type Phase = 'opening' | 'sizing' | 'oack-sent' | 'sending';

interface Transfer {
  /** The file's id at the host. */
  readonly file: FlowId;
  readonly guest: GuestEndpoint;
  /** Our TID: the gateway port this transfer's packets come from and go to. */
  readonly port: number;
  readonly netascii: boolean;
  phase: Phase;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Options the client asked for that are answered in the OACK (tsize is filled in once the size is known). */
  readonly answered: TftpOption[];
  readonly tsizeAsked: boolean;
  size: number;
  /** The netascii length counted so far in the 'sizing' phase. */
  asciiSize: number;
  /** Next file offset to read; a read is in flight when `reading`. */
  fileOffset: number;
  reading: boolean;
  /** Every byte of the file has been read (and converted into `pending`). */
  eof: boolean;
  /** Converted bytes not yet cut into blocks. */
  pending: Uint8Array[];
  pendingBytes: number;
  /** The block the client acknowledged last (absolute, not wrapped; 0 before the first). */
  base: number;
  /** Blocks base+1, base+2, … cut and not yet acknowledged (at most windowsize). */
  readonly window: Uint8Array[];
  /** How many of `window` went out since the window last (re)started. */
  sent: number;
  /** The absolute number of the final block, once cut. */
  last: number | undefined;
  deadlineMs: number;
  retries: number;
}

const LOWEST_TID = 49152;

/** A decimal number of at most 10 digits, or undefined. */
function decimal(v: string): number | undefined {
  return /^[0-9]{1,10}$/.test(v) ? Number(v) : undefined;
}

/** How many bytes `b` becomes in netascii: one more for every LF and every CR (toNetascii). */
export function netasciiLength(b: Uint8Array): number {
  let n = b.length;
  for (const c of b) if (c === 10 || c === 13) n++;
  return n;
}

/** Netascii (RFC 764 NVT): LF → CR LF, CR → CR NUL. */
function toNetascii(b: Uint8Array): Uint8Array {
  let extra = 0;
  for (const c of b) if (c === 10 || c === 13) extra++;
  if (extra === 0) return b;
  const out = new Uint8Array(b.length + extra);
  let j = 0;
  for (const c of b) {
    if (c === 10) {
      out[j++] = 13;
      out[j++] = 10;
    } else if (c === 13) {
      out[j++] = 13;
      out[j++] = 0;
    } else out[j++] = c;
  }
  return out;
}

export class TftpServer {
  readonly stats: TftpStats = { requests: 0, completed: 0, failed: 0, retransmitted: 0, bytesSent: 0 };
  readonly #deps: TftpServerDeps;
  readonly #limits: TftpLimits;
  /** By our TID port. */
  readonly #byPort = new Map<number, Transfer>();
  /** By file id (host events). */
  readonly #byFile = new Map<FlowId, Transfer>();
  /**
   * Ports of ended transfers, until when they stay ours: a late duplicate of the guest's last
   * ACK (or an error) is dropped here instead of going through NAT to the host's loopback.
   */
  readonly #dallying = new Map<number, number>();

  constructor(deps: TftpServerDeps) {
    this.#deps = deps;
    this.#limits = { ...DEFAULT_TFTP_LIMITS, ...deps.limits };
  }

  /** Whether UDP to the gateway's `port` is this server's: port 69, or a live transfer's TID. */
  owns(port: number): boolean {
    return port === TFTP_PORT || this.#byPort.has(port) || this.#dallying.has(port);
  }

  /** A datagram from `guest` to the gateway's `port` (one `owns` accepted). */
  receive(guest: GuestEndpoint, port: number, payload: Uint8Array, nowMs: number): void {
    const p = parseTftp(payload);
    if (typeof p === 'string') return this.#deps.counters.count(p);
    if (port === TFTP_PORT) return this.#request(guest, p, nowMs);
    const t = this.#byPort.get(port);
    if (t === undefined) return this.#deps.counters.count('tftp.after-end');
    if (t.guest.addr !== guest.addr || t.guest.port !== guest.port) {
      // RFC 1350 §4: a packet from another TID gets error 5 and does not disturb the transfer
      // (an error is never answered: two confused peers would answer each other forever).
      this.#deps.counters.count('tftp.unknown-tid');
      if (p.op !== 'error') this.#error(guest, port, TFTP_ERROR.UNKNOWN_TID, 'unknown transfer ID');
      return;
    }
    switch (p.op) {
      case 'ack':
        return this.#ack(t, p.block, nowMs);
      case 'error':
        this.#deps.counters.count('tftp.guest-error');
        return this.#end(t, false, nowMs);
      case 'rrq':
      case 'wrq':
      case 'data':
      case 'oack':
        this.#deps.counters.count('tftp.unexpected-opcode');
        this.#error(guest, port, TFTP_ERROR.ILLEGAL_OPERATION, `unexpected ${p.op.toUpperCase()} in a read transfer`);
        return this.#end(t, false, nowMs);
    }
  }

  #request(guest: GuestEndpoint, p: TftpPacket, nowMs: number): void {
    const counters = this.#deps.counters;
    if (p.op === 'wrq') {
      counters.count('tftp.write-refused');
      return this.#error(guest, TFTP_PORT, TFTP_ERROR.ACCESS_VIOLATION, 'read-only server: write requests are refused');
    }
    if (p.op === 'error') return counters.count('tftp.guest-error'); // never answered (see above)
    if (p.op !== 'rrq') {
      counters.count('tftp.unexpected-opcode');
      return this.#error(guest, TFTP_PORT, TFTP_ERROR.ILLEGAL_OPERATION, `${p.op.toUpperCase()} sent to port 69`);
    }
    for (const t of this.#byPort.values())
      if (t.guest.addr === guest.addr && t.guest.port === guest.port) return counters.count('tftp.duplicate-request'); // a retransmitted RRQ: the transfer answers
    this.stats.requests++;
    const mode = p.mode.toLowerCase();
    if (mode !== 'octet' && mode !== 'netascii') {
      counters.count('tftp.bad-mode');
      return this.#error(guest, TFTP_PORT, TFTP_ERROR.ILLEGAL_OPERATION, `mode '${p.mode}' is not served (octet or netascii)`);
    }
    const named = tftpPath(p.filename);
    if (typeof named === 'string') {
      counters.count(named);
      return this.#error(guest, TFTP_PORT, TFTP_ERROR.ACCESS_VIOLATION, TFTP_PATH_REASON[named]);
    }
    const host = this.#deps.host;
    if (host.fileOpen === undefined || host.fileRead === undefined) {
      counters.count('tftp.no-file-access');
      return this.#error(guest, TFTP_PORT, TFTP_ERROR.NOT_DEFINED, 'this host serves no files');
    }
    let mine = 0;
    for (const t of this.#byPort.values()) if (t.guest.addr === guest.addr) mine++;
    if (mine >= this.#limits.perGuest || this.#byPort.size >= this.#limits.total) {
      counters.count('tftp.too-many-transfers');
      return this.#error(guest, TFTP_PORT, TFTP_ERROR.NOT_DEFINED, 'too many transfers at once; try again later');
    }
    const netascii = mode === 'netascii';
    const maxBlk = Math.max(MIN_BLKSIZE, Math.min(MAX_BLKSIZE, this.#deps.mtu - DATAGRAM_OVERHEAD));
    let blksize = DEFAULT_BLKSIZE;
    let windowsize = 1;
    let timeoutMs = this.#limits.timeoutMs;
    let tsizeAsked = false;
    const answered: TftpOption[] = [];
    const seen = new Set<string>();
    for (const o of p.options) {
      const name = o.name.toLowerCase();
      if (seen.has(name)) continue; // the first of a repeated option counts
      seen.add(name);
      const n = decimal(o.value);
      switch (name) {
        case 'blksize':
          if (n === undefined) break;
          if (n < MIN_BLKSIZE) {
            counters.count('tftp.bad-blksize');
            return this.#error(guest, TFTP_PORT, TFTP_ERROR.OPTION_REFUSED, `blksize ${o.value} is below ${MIN_BLKSIZE}`);
          }
          blksize = Math.min(n, maxBlk);
          answered.push({ name: 'blksize', value: String(blksize) });
          break;
        case 'timeout':
          if (n === undefined || n < 1 || n > 255) break;
          timeoutMs = n * 1000;
          answered.push({ name: 'timeout', value: String(n) });
          break;
        case 'tsize':
          // RFC 2349 §4: a read request carries 0 (any number is taken as the question).
          if (n === undefined) break;
          tsizeAsked = true;
          break;
        case 'windowsize':
          if (n === undefined || n < 1 || n > 65535) break;
          windowsize = n;
          answered.push({ name: 'windowsize', value: '' }); // filled once blksize is final
          break;
        default:
          break;
      }
    }
    windowsize = Math.max(1, Math.min(windowsize, Math.floor(this.#limits.windowBytes / blksize)));
    const w = answered.findIndex((o) => o.name === 'windowsize');
    if (w >= 0) answered[w] = { name: 'windowsize', value: String(windowsize) };
    const file = this.#deps.allocateId();
    const t: Transfer = {
      file, guest, port: this.#tid(), netascii, phase: 'opening', blksize, windowsize, timeoutMs, answered, tsizeAsked, size: 0, asciiSize: 0,
      fileOffset: 0, reading: false, eof: false, pending: [], pendingBytes: 0, base: 0, window: [], sent: 0, last: undefined,
      deadlineMs: nowMs + timeoutMs * (this.#limits.retries + 1), retries: 0,
    };
    this.#byPort.set(t.port, t);
    this.#byFile.set(file, t);
    host.fileOpen(file, this.#deps.root, named.path);
  }

  /** A free port of the dynamic range (RFC 6335) for a new transfer. */
  #tid(): number {
    for (;;) {
      const port = LOWEST_TID + (this.#deps.random.u32() % (65536 - LOWEST_TID));
      if (!this.#byPort.has(port)) return port; // at most `total` ports are taken of 16384
    }
  }

  // --- Host events for the transfers' files.

  fileOpened(file: FlowId, size: number, nowMs: number): void {
    const t = this.#byFile.get(file);
    if (t?.phase !== 'opening') return;
    t.size = size;
    t.retries = 0;
    if (t.tsizeAsked && t.netascii && size > 0) {
      t.phase = 'sizing';
      return this.#readToSize(t, nowMs);
    }
    if (t.tsizeAsked) t.answered.push({ name: 'tsize', value: String(size) });
    this.#start(t, nowMs);
  }

  /** The OACK when options were answered, else the first block. */
  #start(t: Transfer, nowMs: number): void {
    if (t.answered.length > 0) {
      t.phase = 'oack-sent';
      this.#sendOack(t, nowMs);
    } else {
      t.phase = 'sending';
      this.#pump(t, nowMs);
    }
  }

  /** The next read of the sizing pass (window-sized, one in flight); the give-up time restarts with it. */
  #readToSize(t: Transfer, nowMs: number): void {
    t.reading = true;
    t.deadlineMs = nowMs + t.timeoutMs * (this.#limits.retries + 1);
    this.#deps.host.fileRead!(t.file, t.fileOffset, Math.min(this.#limits.windowBytes, t.size - t.fileOffset));
  }

  fileData(file: FlowId, offset: number, data: Uint8Array, nowMs: number): void {
    const t = this.#byFile.get(file);
    if (t?.reading !== true || offset !== t.fileOffset) return;
    t.reading = false;
    t.fileOffset += data.length;
    if (t.phase === 'sizing') {
      t.asciiSize += netasciiLength(data);
      if (data.length > 0 && t.fileOffset < t.size) return this.#readToSize(t, nowMs);
      // The whole file (or what there was of it: a file that shrank ends the pass early).
      t.answered.push({ name: 'tsize', value: String(t.asciiSize) });
      t.fileOffset = 0;
      return this.#start(t, nowMs);
    }
    if (data.length === 0 || t.fileOffset >= t.size) t.eof = true;
    if (data.length > 0) {
      const converted = t.netascii ? toNetascii(data) : data;
      t.pending.push(converted);
      t.pendingBytes += converted.length;
    }
    this.#pump(t, nowMs);
  }

  fileError(file: FlowId, code: string, nowMs: number): void {
    const t = this.#byFile.get(file);
    if (t === undefined) return;
    this.#deps.counters.count('tftp.file-error');
    const [errCode, text] =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? [TFTP_ERROR.FILE_NOT_FOUND, 'file not found']
        : code === 'EACCES' || code === 'EPERM' || code === 'ELOOP'
          ? [TFTP_ERROR.ACCESS_VIOLATION, 'access violation']
          : code === 'EISDIR'
            ? [TFTP_ERROR.ACCESS_VIOLATION, 'not a regular file']
            : [TFTP_ERROR.NOT_DEFINED, `cannot read the file (${code})`];
    this.#error(t.guest, t.port, errCode, text);
    this.#end(t, false, nowMs, true);
  }

  // --- Timers.

  advance(nowMs: number): void {
    for (const [port, untilMs] of this.#dallying) if (untilMs <= nowMs) this.#dallying.delete(port);
    for (const t of [...this.#byPort.values()]) {
      if (t.deadlineMs > nowMs) continue;
      if (t.phase === 'opening' || t.phase === 'sizing' || t.retries >= this.#limits.retries) {
        this.#deps.counters.count('tftp.timed-out');
        this.#error(t.guest, t.port, TFTP_ERROR.NOT_DEFINED, 'timed out');
        this.#end(t, false, nowMs);
        continue;
      }
      t.retries++;
      if (t.phase === 'oack-sent') {
        this.stats.retransmitted++;
        this.#sendOack(t, nowMs);
      } else {
        this.stats.retransmitted += t.sent;
        t.sent = 0;
        this.#pump(t, nowMs);
        t.deadlineMs = nowMs + t.timeoutMs; // armed even when the window was empty (a read in flight)
      }
    }
  }

  nextDeadline(): number | undefined {
    let at: number | undefined;
    for (const t of this.#byPort.values()) if (at === undefined || t.deadlineMs < at) at = t.deadlineMs;
    for (const untilMs of this.#dallying.values()) if (at === undefined || untilMs < at) at = untilMs;
    return at;
  }

  /** Ends every transfer (the network closes): their files are released. */
  closeAll(): void {
    for (const t of [...this.#byPort.values()]) this.#end(t, false, undefined);
    this.#dallying.clear();
  }

  #ack(t: Transfer, wire: number, nowMs: number): void {
    if (t.phase === 'opening' || t.phase === 'sizing') return this.#deps.counters.count('tftp.stale-ack');
    if (t.phase === 'oack-sent') {
      if (wire !== 0) return this.#deps.counters.count('tftp.stale-ack');
      t.phase = 'sending';
      t.retries = 0;
      return this.#pump(t, nowMs);
    }
    const ahead = (wire - (t.base & 0xffff)) & 0xffff;
    if (ahead === 0) return this.#deps.counters.count('tftp.duplicate-ack');
    if (ahead > t.sent) return this.#deps.counters.count('tftp.stale-ack');
    t.base += ahead;
    t.window.splice(0, ahead);
    t.retries = 0;
    if (t.last !== undefined && t.base >= t.last) return this.#end(t, true, nowMs);
    // RFC 7440 §4: the next window starts after the block acknowledged, whether the window was
    // complete or the client missed one (then it resends from there).
    if (t.sent > ahead) this.stats.retransmitted += t.sent - ahead;
    t.sent = 0;
    this.#pump(t, nowMs);
  }

  /** Cuts blocks from what was read, sends those of the window not yet sent, and reads more when the window needs it. */
  #pump(t: Transfer, nowMs: number): void {
    while (t.window.length < t.windowsize && t.last === undefined) {
      if (t.pendingBytes >= t.blksize) t.window.push(this.#cut(t, t.blksize));
      else if (t.eof) {
        t.window.push(this.#cut(t, t.pendingBytes));
        t.last = t.base + t.window.length;
      } else break;
    }
    const sentBefore = t.sent;
    while (t.sent < t.window.length) {
      const data = t.window[t.sent]!;
      const block = (t.base + t.sent + 1) & 0xffff;
      this.#send(t.guest, t.port, { op: 'data', block, data });
      this.stats.bytesSent += data.length;
      t.sent++;
    }
    if (t.sent > sentBefore) t.deadlineMs = nowMs + t.timeoutMs;
    const want = (t.windowsize - t.window.length) * t.blksize + 1;
    if (!t.reading && !t.eof && t.last === undefined && t.pendingBytes < want) {
      const length = Math.min(Math.max(want - t.pendingBytes, t.blksize), this.#limits.windowBytes, t.size - t.fileOffset);
      if (length <= 0) {
        t.eof = true;
        return this.#pump(t, nowMs);
      }
      t.reading = true;
      this.#deps.host.fileRead!(t.file, t.fileOffset, length);
    }
  }

  /** The next `n` pending bytes as one block. */
  #cut(t: Transfer, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = t.pending[0]!;
      const k = Math.min(head.length, n - at);
      out.set(head.subarray(0, k), at);
      at += k;
      if (k === head.length) t.pending.shift();
      else t.pending[0] = head.subarray(k);
    }
    t.pendingBytes -= n;
    return out;
  }

  #sendOack(t: Transfer, nowMs: number): void {
    this.#send(t.guest, t.port, { op: 'oack', options: t.answered });
    t.deadlineMs = nowMs + t.timeoutMs;
  }

  /** Ends a transfer; with `nowMs`, its port dallies (stays ours, dropping what still arrives) for the give-up time. */
  #end(t: Transfer, ok: boolean, nowMs: number | undefined, fileGone = false): void {
    this.#byPort.delete(t.port);
    this.#byFile.delete(t.file);
    if (nowMs !== undefined) {
      if (this.#dallying.size >= MAX_DALLYING) this.#dallying.delete(this.#dallying.keys().next().value!);
      this.#dallying.set(t.port, nowMs + t.timeoutMs * (this.#limits.retries + 1));
    }
    if (!fileGone) this.#deps.host.close(t.file);
    if (ok) this.stats.completed++;
    else this.stats.failed++;
  }

  #error(to: GuestEndpoint, fromPort: number, code: number, message: string): void {
    this.#send(to, fromPort, { op: 'error', code, message });
  }

  #send(to: GuestEndpoint, fromPort: number, p: TftpPacket): void {
    const out = new Uint8Array(tftpLength(p));
    writeTftp(p, out, 0);
    this.#deps.send(to, fromPort, out);
  }
}
