/** Helpers for tests of links and sessions: a pino logger that keeps its records in memory, polling, flooding a link, opening a WebSocket. */
import { pino, type Logger } from 'pino';
import { WebSocket } from 'ws';
import type { GuestLink } from '../../src/link/link.js';

export interface MemoryLog {
  readonly log: Logger;
  readonly records: Record<string, unknown>[];
  /** Records whose msg is `msg`. */
  withMsg(msg: string): Record<string, unknown>[];
}

export function memoryLog(level = 'debug'): MemoryLog {
  const records: Record<string, unknown>[] = [];
  const log = pino(
    { level },
    {
      write(line: string): void {
        records.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { log, records, withMsg: (msg) => records.filter((r) => r['msg'] === msg) };
}

/** Polls `cond` every 5 ms until it holds or `timeoutMs` passes. */
export async function until(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Sends 1500-byte frames to a link whose peer does not read, yielding every 50 frames so the
 * socket can fill, until the link counts 'link.tx-overflow' (at most 20,000 frames).
 */
export async function sendUntilOverflow(link: GuestLink): Promise<void> {
  const frame = new Uint8Array(1500);
  for (let i = 0; i < 20_000 && link.counters.get('link.tx-overflow') === 0; i++) {
    link.send(frame);
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
}

/** Tries a WebSocket; resolves with 101 when it opens, else the HTTP status of the refusal. */
export function tryOpen(url: string, o: { headers?: Record<string, string>; origin?: string; ca?: Buffer } = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: o.headers ?? {}, ...(o.origin !== undefined && { origin: o.origin }), ...(o.ca !== undefined && { ca: o.ca }) });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    ws.on('error', () => resolve(0));
  });
}
