/**
 * Host services (`Host.tcpConnectService`, what guest forwards stand on) as Node streams: a
 * command per connection (`cmd:COMMAND`, run by /bin/sh -c, its stdout read and its stdin
 * written; its stderr is discarded), or a program's handler given one end of an in-process
 * duplex pair whose other end is the flow's. `NodeTcp.attachStream` then treats the stream as
 * it treats a socket: writes, half-close, pause, backpressure (`writableLength`, `'drain'`).
 *
 * `duplexPair` is also what `LiveNetwork.connect` hands a program: a stream into a guest's
 * server with no host port in between.
 */
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';

/** A program's side of a guest forward: called once per guest connection with its stream. */
export type GuestForwardHandler = (stream: Duplex) => void;

/** The `stream.destroy` error that reads as a reset: its `code` reaches the guest's flow as tcpError. */
export const resetError = (code = 'ECONNRESET'): Error => Object.assign(new Error(`connection reset (${code})`), { code });

/** One end of `duplexPair`: its writes are its peer's reads. */
class PairSide extends Duplex {
  peer: PairSide | undefined;
  /** The peer's write waiting for this side's reader to take more (backpressure). */
  unblock: ((error?: Error | null) => void) | undefined;

  override _read(): void {
    const cb = this.unblock;
    this.unblock = undefined;
    cb?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    const peer = this.peer!;
    if (peer.destroyed) return cb(resetError('EPIPE'));
    if (peer.push(chunk)) cb();
    else peer.unblock = cb;
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.peer!.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    const peer = this.peer;
    const cleanly = this.writableFinished && this.readableEnded;
    if (peer !== undefined && !peer.destroyed && !cleanly) peer.destroy(resetError());
    const waiting = peer?.unblock;
    if (peer !== undefined) peer.unblock = undefined;
    waiting?.(resetError('EPIPE'));
    cb(err);
  }
}

/**
 * Two connected duplex streams: what one writes the other reads, `end()` on one is the end of
 * the other's reading; destroying one before both directions ended destroys the other with
 * ECONNRESET. A write waits (its callback, and so `'drain'`) until the other side's reader
 * takes what it holds: backpressure reaches the writer.
 */
export function duplexPair(): [Duplex, Duplex] {
  const a = new PairSide();
  const b = new PairSide();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** The stream of `cmd:COMMAND`: the command's stdout as its readable side, its stdin as its writable side. */
export function commandStream(command: string): Duplex {
  const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'ignore'] });
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  child.once('error', (err) => stream.destroy(err));
  // EPIPE when the command exits without reading all it was sent: the connection is reset.
  child.stdin.on('error', (err) => stream.destroy(err));
  stream.once('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  return stream;
}

/** Commands one host runs at once for guest forwards: each is a process, and guests choose how many connections they open. */
export const MAX_COMMANDS = 64;

/** The services one host offers: commands always (at most MAX_COMMANDS at once), handlers by name as given. */
export class NodeServices {
  readonly #handlers = new Map<string, GuestForwardHandler>();
  /** Commands running now. */
  commands = 0;
  /** Connections refused because MAX_COMMANDS were running. */
  commandsRefused = 0;

  /** Serves `name` (a guest forward's service) with `handler`, replacing any handler it had. */
  handle(name: string, handler: GuestForwardHandler): void {
    this.#handlers.set(name, handler);
  }

  /** The flow's side of a new connection to `service`, or the error code when there is no such service. */
  open(service: string): Duplex | string {
    if (service.startsWith('cmd:')) {
      if (this.commands >= MAX_COMMANDS) {
        this.commandsRefused++;
        return 'EMFILE';
      }
      const stream = commandStream(service.slice(4));
      this.commands++;
      stream.once('close', () => { this.commands--; });
      return stream;
    }
    const handler = this.#handlers.get(service);
    if (handler === undefined) return 'ENOENT';
    const [flowSide, programSide] = duplexPair();
    try {
      handler(programSide);
    } catch {
      const ignore = (): void => undefined;
      flowSide.on('error', ignore);
      programSide.on('error', ignore);
      flowSide.destroy();
      return 'ECONNREFUSED';
    }
    return flowSide;
  }
}
