import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_TFTP_NAME, TFTP_PATH_DROPS, tftpPath } from '../../src/tftp/path.js';
import { runs } from '../helpers/fuzz.js';

describe('tftp/path', () => {
  it.each([
    ['pxelinux.0', 'pxelinux.0'],
    ['/boot/vmlinuz', 'boot/vmlinuz'],
    ['//boot//./vmlinuz', 'boot/vmlinuz'],
    ['boot\\pxeboot.n12', 'boot/pxeboot.n12'],
    ['/etc/passwd', 'etc/passwd'],
    ['a..b/..c', 'a..b/..c'],
  ])('%s is %s inside the directory', (name, path) => expect(tftpPath(name)).toEqual({ path }));

  it.each([
    ['../etc/passwd', 'tftp.name-escapes'],
    ['boot/../../x', 'tftp.name-escapes'],
    ['..', 'tftp.name-escapes'],
    ['..\\..\\windows', 'tftp.name-escapes'],
    ['', 'tftp.name-empty'],
    ['/', 'tftp.name-empty'],
    ['./.', 'tftp.name-empty'],
    ['a\u0001b', 'tftp.name-bad-byte'],
    ['caf\u00e9', 'tftp.name-bad-byte'],
    ['x'.repeat(MAX_TFTP_NAME + 1), 'tftp.name-too-long'],
  ])('%j is refused: %s', (name, drop) => expect(tftpPath(name)).toBe(drop));

  it('never yields a path that could leave the directory', () =>
    fc.assert(
      fc.property(fc.array(fc.constantFrom('..', '.', '', 'a', '/', '\\', '..\\', '../', 'b.', '\u0000', '\u00ff'), { maxLength: 12 }).map((p) => p.join('')), (name) => {
        const named = tftpPath(name);
        if (typeof named === 'string') {
          expect(TFTP_PATH_DROPS).toContain(named);
          return;
        }
        const p = named.path;
        expect(p.startsWith('/')).toBe(false);
        expect(p.split('/')).not.toContain('..');
        expect(p.split('/')).not.toContain('.');
        expect(p.split('/')).not.toContain('');
        expect(/^[ -[\]-~]*$/.test(p)).toBe(true); // printable ASCII but the backslash
      }),
      { numRuns: runs(2000) },
    ));
});
