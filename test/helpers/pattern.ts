/** A deterministic, incompressible byte stream for transfers that are checked by sha256. */
import { createHash } from 'node:crypto';

/** Deterministic bytes: block `i` of 64 KiB is a hash chain, so the stream is cheap and not compressible. */
function block(i: number): Buffer {
  const out = Buffer.alloc(64 * 1024);
  let h = createHash('sha256').update(`tslirp-${i}`).digest();
  for (let at = 0; at < out.length; at += 32) {
    h.copy(out, at);
    h = createHash('sha256').update(h).digest();
  }
  return out;
}
export const BLOCKS = Array.from({ length: 16 }, (_, i) => block(i));
/** Streams `n` bytes of the pattern into `w` with backpressure. */
export function streamPattern(n: number, w: NodeJS.WritableStream & { writableNeedDrain?: boolean }, done: () => void): void {
  let sent = 0;
  let i = 0;
  const pump = (): void => {
    while (sent < n) {
      const b = BLOCKS[i++ % BLOCKS.length]!;
      const chunk = n - sent >= b.length ? b : b.subarray(0, n - sent);
      sent += chunk.length;
      if (!w.write(chunk)) {
        w.once('drain', pump);
        return;
      }
    }
    done();
  };
  pump();
}
export function patternSha(n: number): string {
  const h = createHash('sha256');
  let left = n;
  for (let i = 0; left > 0; i++) {
    const b = BLOCKS[i % BLOCKS.length]!;
    const k = Math.min(left, b.length);
    h.update(b.subarray(0, k));
    left -= k;
  }
  return h.digest('hex');
}
