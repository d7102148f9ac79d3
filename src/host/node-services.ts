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
import { Duplex, PassThrough } from 'node:stream';

/** A program's side of a guest forward: called once per guest connection with its stream. */
export type GuestForwardHandler = (stream: Duplex) => void;

/** The `stream.destroy` error that reads as a reset: its `code` reaches the guest's flow as tcpError. */
export const resetError = (code = 'ECONNRESET'): Error => Object.assign(new Error(`connection reset (${code})`), { code });

/**
 * Two connected duplex streams: what one writes the other reads, `end()` on one is the end of
 * the other's reading; destroying one destroys the other with ECONNRESET. Each direction
 * buffers up to a PassThrough's high-water mark, so backpressure reaches the writer.
 */
export function duplexPair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  const a = Duplex.from({ readable: ba, writable: ab });
  const b = Duplex.from({ readable: ab, writable: ba });
  const link = (x: Duplex, y: Duplex): void => {
    x.once('close', () => {
      // A side destroyed before both directions ended resets the other.
      if (!y.destroyed && !(x.readableEnded && x.writableFinished)) y.destroy(resetError());
    });
  };
  link(a, b);
  link(b, a);
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

/** The services one host offers: commands always, handlers by name as given. */
export class NodeServices {
  readonly #handlers = new Map<string, GuestForwardHandler>();

  /** Serves `name` (a guest forward's service) with `handler`, replacing any handler it had. */
  handle(name: string, handler: GuestForwardHandler): void {
    this.#handlers.set(name, handler);
  }

  /** The flow's side of a new connection to `service`, or the error code when there is no such service. */
  open(service: string): Duplex | string {
    if (service.startsWith('cmd:')) return commandStream(service.slice(4));
    const handler = this.#handlers.get(service);
    if (handler === undefined) return 'ENOENT';
    const [flowSide, programSide] = duplexPair();
    try {
      handler(programSide);
    } catch {
      flowSide.destroy();
      programSide.destroy();
      return 'ECONNREFUSED';
    }
    return flowSide;
  }
}
