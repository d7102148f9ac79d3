/**
 * The host's file reads (`Host.fileOpen` / `fileRead`, what the TFTP server serves), on
 * node:fs/promises. Each answer comes in a later turn, as the seam requires.
 *
 * Containment: the name reaching here is relative with no `..` (checked in `src/tftp/path.ts`),
 * but a symbolic link inside the directory may still point out of it. So the file is opened
 * first and its real path taken from the open descriptor (`/proc/self/fd/N` on Linux: the file
 * actually opened, so a link swapped between a check and the open cannot fool it; elsewhere
 * `realpath` of the name), then compared with the directory's real path: a file outside is
 * closed unread and refused with EACCES. It is opened with O_NONBLOCK (a FIFO planted in the
 * directory would otherwise block the open until a writer came) and must be a regular file.
 */
import { constants, type promises as fsp } from 'node:fs';
import { open, readlink, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { FlowId } from '../net/addr.js';
import type { HostEvents } from '../net/seams.js';

/** The largest read answered at once; the TFTP server asks for at most a window (256 KiB by default). */
const MAX_READ = 1024 * 1024;

const codeOf = (e: unknown): string => (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EIO');

/** The real path of the file open as `fd`. */
async function openedPath(fd: number, fallback: string): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${fd}`);
  } catch {
    return realpath(fallback);
  }
}

export class NodeFiles {
  readonly #events: Pick<HostEvents, 'fileOpened' | 'fileData' | 'fileError'>;
  /** Open files by id; a promise while opening (close then waits for it). */
  readonly #files = new Map<FlowId, fsp.FileHandle | 'opening'>();

  constructor(events: Pick<HostEvents, 'fileOpened' | 'fileData' | 'fileError'>) {
    this.#events = events;
  }

  /** Files open or opening. */
  get open(): number {
    return this.#files.size;
  }

  owns(id: FlowId): boolean {
    return this.#files.has(id);
  }

  openFile(id: FlowId, root: string, path: string): void {
    this.#files.set(id, 'opening');
    void this.#open(id, root, path);
  }

  async #open(id: FlowId, root: string, path: string): Promise<void> {
    let fh: fsp.FileHandle | undefined;
    try {
      const full = join(root, path);
      fh = await open(full, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      const [rootReal, real, st] = await Promise.all([realpath(root), openedPath(fh.fd, full), fh.stat()]);
      if (real !== rootReal && !real.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep)) throw Object.assign(new Error('outside the served directory'), { code: 'EACCES' });
      if (st.isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' });
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EACCES' });
      if (this.#files.get(id) !== 'opening') {
        await fh.close();
        return; // closed while opening
      }
      this.#files.set(id, fh);
      this.#events.fileOpened?.(id, st.size);
    } catch (e) {
      await fh?.close().catch(() => undefined);
      if (this.#files.get(id) !== 'opening') return;
      this.#files.delete(id);
      this.#events.fileError?.(id, codeOf(e));
    }
  }

  read(id: FlowId, offset: number, length: number): void {
    const fh = this.#files.get(id);
    if (fh === undefined || fh === 'opening') {
      queueMicrotask(() => this.#events.fileError?.(id, 'EBADF'));
      return;
    }
    void this.#read(id, fh, offset, Math.max(0, Math.min(length, MAX_READ)));
  }

  async #read(id: FlowId, fh: fsp.FileHandle, offset: number, length: number): Promise<void> {
    try {
      const buf = new Uint8Array(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (this.#files.get(id) !== fh) return;
      this.#events.fileData?.(id, offset, buf.subarray(0, bytesRead));
    } catch (e) {
      if (this.#files.get(id) !== fh) return;
      this.close(id);
      this.#events.fileError?.(id, codeOf(e));
    }
  }

  /** Releases the file; true when `id` was one. */
  close(id: FlowId): boolean {
    const fh = this.#files.get(id);
    if (fh === undefined) return false;
    this.#files.delete(id);
    if (fh !== 'opening') void fh.close().catch(() => undefined);
    return true;
  }

  closeAll(): void {
    for (const id of [...this.#files.keys()]) this.close(id);
  }
}
