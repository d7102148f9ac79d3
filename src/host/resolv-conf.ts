/**
 * Reads a resolv.conf file and follows its changes, as libslirp does (it re-reads the file
 * at most once a second), so a guest's DNS follows the host's resolver configuration.
 *
 * Two ways of noticing a change, both bounded:
 * - `fs.watch` on the file's directory (editors, NetworkManager and resolvconf replace the
 *   file by rename, which a watch on the file itself would miss), debounced by `debounceMs`;
 * - a stat every `pollMs` (default 1 s) comparing inode, size and mtime, for what the watch
 *   cannot see: a symlinked /etc/resolv.conf whose target changes elsewhere, file systems
 *   without inotify.
 * Only the first `MAX_RESOLV_CONF_BYTES` of the file are read. A missing or unreadable file
 * at start gives an empty list (the forwarder then answers SERVFAIL); later, it keeps the last
 * list until the file is readable again. Either is reported through `onError` once per
 * distinct error code in a row.
 */
import { closeSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseResolvConf, sameUpstreams, type ResolvConf } from '../dns/resolv-conf.js';
import type { Endpoint } from '../net/addr.js';

/** How much of the file is read; real ones are a few hundred bytes. */
export const MAX_RESOLV_CONF_BYTES = 64 * 1024;

export interface ResolvConfWatcherOptions {
  readonly path: string;
  /** Called with the new nameserver list whenever it changes (not for the initial read). */
  readonly onChange: (nameservers: readonly Endpoint[], conf: ResolvConf) => void;
  /** Called when the file cannot be read (once per distinct error code in a row). */
  readonly onError?: (code: string) => void;
  /** Stat interval; default 1000 ms. */
  readonly pollMs?: number;
  /** Delay between a watch event and the re-read; default 50 ms. */
  readonly debounceMs?: number;
}

/** Reads and parses the file; `error` is set (and the list empty) when it cannot be read. */
export function readResolvConf(path: string): { conf: ResolvConf; error?: string } {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(MAX_RESOLV_CONF_BYTES);
    let n = 0;
    for (let k = 0; k < 64 && n < buf.length; k++) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return { conf: parseResolvConf(buf.toString('utf8', 0, n)) };
  } catch (e) {
    return { conf: { nameservers: [], skipped: [] }, error: (e as NodeJS.ErrnoException).code ?? 'EIO' };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const signature = (path: string): string => {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (e) {
    return `error:${(e as NodeJS.ErrnoException).code ?? 'EIO'}`;
  }
};

export class ResolvConfWatcher {
  readonly #o: ResolvConfWatcherOptions;
  #current: readonly Endpoint[] = [];
  #conf: ResolvConf = { nameservers: [], skipped: [] };
  #signature = '';
  #lastError: string | undefined;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ResolvConfWatcherOptions) {
    this.#o = options;
  }

  /** The nameservers as last read. */
  get nameservers(): readonly Endpoint[] {
    return this.#current;
  }

  /** The last parse, with what was skipped. */
  get conf(): ResolvConf {
    return this.#conf;
  }

  /** Reads the file now and starts following it; returns the initial list. */
  start(): readonly Endpoint[] {
    this.#reload(false);
    try {
      const name = basename(this.#o.path);
      this.#watcher = watch(dirname(this.#o.path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.#schedule();
      });
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined; // the poll goes on
      });
    } catch {
      this.#watcher = undefined; // no directory or no inotify: polling alone
    }
    this.#poll = setInterval(() => {
      if (signature(this.#o.path) !== this.#signature) this.#reload(true);
    }, this.#o.pollMs ?? 1_000);
    this.#poll.unref();
    return this.#current;
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }

  #schedule(): void {
    if (this.#closed || this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#reload(true);
    }, this.#o.debounceMs ?? 50);
    this.#debounce.unref();
  }

  #reload(notify: boolean): void {
    if (this.#closed) return;
    this.#signature = signature(this.#o.path);
    const { conf, error } = readResolvConf(this.#o.path);
    if (error !== undefined && error !== this.#lastError) this.#o.onError?.(error);
    this.#lastError = error;
    // A file that cannot be read keeps the last list: a writer that removes and recreates the
    // file must not leave the guest without DNS in between. An empty readable file empties it.
    if (error !== undefined && notify) return;
    this.#conf = conf;
    if (sameUpstreams(conf.nameservers, this.#current)) return;
    this.#current = conf.nameservers;
    if (notify) this.#o.onChange(this.#current, conf);
  }
}
