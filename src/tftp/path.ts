/**
 * From a TFTP file name to a path inside the served directory, or a refusal.
 *
 * libslirp's TFTP server has a CVE history of names that left its directory; this is the one
 * place a name becomes a path, and it admits only names that cannot: printable ASCII, at most
 * MAX_TFTP_NAME bytes, no `..` component. A leading `/` and `\` separators (PXE clients of
 * Windows heritage send them) are taken relative to the directory, as tftp-hpa's `-s` does, so
 * `/etc/passwd` names DIR/etc/passwd. Symbolic links inside the directory that lead out of it
 * are refused by the host when it opens the file (`Host.fileOpen`, which checks the opened
 * file's real path), since only the filesystem knows them.
 */
import type { Drop } from '../util/drops.js';

/** The longest name accepted, in bytes (tftp-hpa's and iPXE's limits are of this order; PXE's DHCP file field holds 128). */
export const MAX_TFTP_NAME = 255;

export const TFTP_PATH_DROPS = ['tftp.name-too-long', 'tftp.name-bad-byte', 'tftp.name-escapes', 'tftp.name-empty'] as const satisfies readonly Drop[];
export type TftpPathDrop = (typeof TFTP_PATH_DROPS)[number];

/** Why each refusal happened, in words for the guest's TFTP error message. */
export const TFTP_PATH_REASON: Readonly<Record<TftpPathDrop, string>> = {
  'tftp.name-too-long': `file name longer than ${MAX_TFTP_NAME} bytes`,
  'tftp.name-bad-byte': 'file name has a byte outside printable ASCII',
  'tftp.name-escapes': "file name has a '..' component",
  'tftp.name-empty': 'file name names no file',
};

/** A name accepted: the relative path it stands for, components joined by `/`. */
export interface TftpPath {
  readonly path: string;
}

/** The relative path `name` stands for, or why it is refused. */
export function tftpPath(name: string): TftpPath | TftpPathDrop {
  if (name.length > MAX_TFTP_NAME) return 'tftp.name-too-long';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return 'tftp.name-bad-byte';
  }
  const parts = name.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return 'tftp.name-escapes';
  if (parts.length === 0) return 'tftp.name-empty';
  return { path: parts.join('/') };
}
