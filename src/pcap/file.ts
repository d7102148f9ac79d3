/**
 * Reading a capture file whole, for replay: bounded (a file larger than MAX_CAPTURE_FILE_BYTES
 * is refused by name rather than read into memory) and never throwing: a failure is the
 * message a user acts on.
 */
import { readFile, stat } from 'node:fs/promises';

/** The largest capture read whole: a recording of the corpus is a few MB. */
export const MAX_CAPTURE_FILE_BYTES = 1 << 30;

/** The file's bytes, or why they cannot be read (`cannot read FILE: ENOENT …`). */
export async function readCaptureFile(path: string, maxBytes = MAX_CAPTURE_FILE_BYTES): Promise<Uint8Array | string> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) return `cannot read ${path}: it is a directory`;
    if (st.size > maxBytes) return `cannot read ${path}: ${st.size} bytes, more than the ${maxBytes} a replay reads`;
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return `cannot read ${path}: ${code ?? ''}${code !== undefined ? ' ' : ''}${e instanceof Error ? e.message.replace(/^[A-Z]+: /, '') : String(e)}`;
  }
}
