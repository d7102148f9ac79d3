/**
 * The host's file reads on a real directory: a file inside is read, a symbolic link inside
 * leading inside is followed, one leading out is refused (EACCES) after opening, directories
 * and FIFOs are refused without blocking, and answers come in a later turn.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeFiles } from '../../src/host/node-files.js';

const base = mkdtempSync(join(tmpdir(), 'tslirp-files-'));
const root = join(base, 'root');
mkdirSync(join(root, 'sub'), { recursive: true });
writeFileSync(join(root, 'sub', 'a.bin'), Buffer.from('hello, tftp'));
writeFileSync(join(base, 'secret'), 'outside');
symlinkSync('sub/a.bin', join(root, 'inside-link'));
symlinkSync('../secret', join(root, 'outside-link'));
symlinkSync(base, join(root, 'dir-out'));
execFileSync('mkfifo', [join(root, 'fifo')]);
afterAll(() => { rmSync(base, { recursive: true, force: true }); });

type Ev = [string, ...unknown[]];
function files() {
  const events: Ev[] = [];
  let wake: (() => void) | undefined;
  const push = (e: Ev): void => { events.push(e); wake?.(); };
  const f = new NodeFiles({
    fileOpened: (id, size) => push(['opened', id, size]),
    fileData: (id, offset, data) => push(['data', id, offset, Buffer.from(data).toString()]),
    fileError: (id, code) => push(['error', id, code]),
  });
  const next = (): Promise<Ev> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no file event within 5 s')), 5000);
      wake = () => { const e = events.shift(); if (e !== undefined) { clearTimeout(timer); wake = undefined; resolve(e); } };
      wake();
    });
  return { f, events, next };
}

describe('host/node-files', () => {
  it('opens and reads a file inside the directory, answering later', async () => {
    const t = files();
    t.f.openFile(1, root, 'sub/a.bin');
    expect(t.events).toEqual([]);
    expect(await t.next()).toEqual(['opened', 1, 11]);
    t.f.read(1, 7, 100);
    expect(await t.next()).toEqual(['data', 1, 7, 'tftp']);
    t.f.read(1, 11, 100);
    expect(await t.next()).toEqual(['data', 1, 11, '']);
    expect(t.f.close(1)).toBe(true);
    expect(t.f.open).toBe(0);
  });

  it('follows a link that stays inside', async () => {
    const t = files();
    t.f.openFile(2, root, 'inside-link');
    expect(await t.next()).toEqual(['opened', 2, 11]);
    t.f.closeAll();
  });

  it.each([
    ['outside-link', 'EACCES'],
    ['dir-out/secret', 'EACCES'],
    ['sub', 'EISDIR'],
    ['fifo', 'EACCES'],
    ['missing', 'ENOENT'],
    ['sub/a.bin/x', 'ENOTDIR'],
  ])('refuses %s with %s', async (path, code) => {
    const t = files();
    t.f.openFile(3, root, path);
    expect(await t.next()).toEqual(['error', 3, code]);
    expect(t.f.open).toBe(0);
  });

  it('says nothing for a file closed while it was opening', async () => {
    const t = files();
    t.f.openFile(4, root, 'sub/a.bin');
    t.f.close(4);
    await new Promise((r) => setTimeout(r, 100));
    expect(t.events).toEqual([]);
  });
});
