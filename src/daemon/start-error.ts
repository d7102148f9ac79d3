/**
 * Why the daemon could not start, in one line a user can act on:
 * `cannot listen on ws 127.0.0.1:8080: address already in use (EADDRINUSE)`. Daemon.start
 * names each step it takes and wraps a failure in a StartError; the CLI prints the message
 * and exits 1 (the environment failed, not the command line).
 */
import { getSystemErrorMap } from 'node:util';

/** A start-up step failed; `message` names the step and the reason. */
export class StartError extends Error {
  /** The step, e.g. `listen on ws 127.0.0.1:8080`. */
  readonly step: string;
  /** The system error code (`EADDRINUSE`), when there is one. */
  readonly code: string | undefined;
  constructor(step: string, cause: unknown) {
    super(`cannot ${step}: ${reasonOf(cause)}`, { cause });
    this.name = 'StartError';
    this.step = step;
    this.code = codeOf(cause);
  }
}

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** `address already in use (EADDRINUSE)` for a system error; the message otherwise. */
export function reasonOf(e: unknown): string {
  const code = codeOf(e);
  const errno = (e as { errno?: unknown } | null)?.errno;
  if (code !== undefined && typeof errno === 'number') {
    const known = getSystemErrorMap().get(errno);
    if (known?.[0] === code) return `${known[1]} (${code})`;
  }
  const message = e instanceof Error ? e.message : String(e);
  return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
}
