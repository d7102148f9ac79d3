/** A pino logger that keeps its records in memory, for tests of links and sessions. */
import { pino, type Logger } from 'pino';

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
