/** --tftp DIR: plain for every network or one network's through --net-option; made absolute, refused unless a directory. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli/options.js';

const serve = (...args: string[]) => {
  const c = parseCommandLine(['serve', ...args], {});
  if (c.command !== 'serve') throw new Error('not serve');
  return c;
};

const dir = mkdtempSync(join(tmpdir(), 'tslirp-tftp-opt-'));
writeFileSync(join(dir, 'file'), 'x');
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('--tftp', () => {
  it('is off by default', () => {
    expect(serve().network.config.tftpRoot).toBeUndefined();
  });
  it('takes a directory, made absolute', () => {
    expect(serve('--tftp', relative(process.cwd(), dir)).network.config.tftpRoot).toBe(dir);
  });
  it('sets one network through --net-option', () => {
    const c = serve('--net-option', `lab:tftp=${dir},bootfile=boot.ipxe`);
    expect(c.networks.get('lab')?.config).toMatchObject({ tftpRoot: dir, bootFile: 'boot.ipxe' });
    expect(c.network.config.tftpRoot).toBeUndefined();
  });
  it('refuses what is not a directory, naming the option', () => {
    expect(() => serve('--tftp', join(dir, 'file'))).toThrow(`--tftp: ${join(dir, 'file')} is not a directory`);
    expect(() => serve('--tftp', join(dir, 'missing'))).toThrow(`--tftp: ${join(dir, 'missing')}: ENOENT`);
    expect(() => serve('--tftp', '')).toThrow('--tftp: needs a directory path');
    expect(() => serve('--net-option', `lab:tftp=${join(dir, 'file')}`)).toThrow(`--net-option lab:tftp: ${join(dir, 'file')} is not a directory`);
  });
});
