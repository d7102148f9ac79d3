import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../src/net/addr.js';
import { readResolvConf, ResolvConfWatcher } from '../../src/host/resolv-conf.js';
import { ip } from '../helpers/frames.js';

const ns = (a: string): Endpoint => ({ addr: ip(a), port: 53 });

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe('host/resolv-conf (real files)', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).forEach((f) => f()));
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'tslirp-resolv-'));
    cleanup.push(() => rmSync(d, { recursive: true, force: true }));
    return d;
  };

  it('reads a file, and reports a missing one as an error with no nameservers', () => {
    const d = dir();
    writeFileSync(join(d, 'resolv.conf'), 'nameserver 127.0.0.53\n');
    expect(readResolvConf(join(d, 'resolv.conf'))).toEqual({ conf: { nameservers: [ns('127.0.0.53')], skipped: [] } });
    expect(readResolvConf(join(d, 'missing'))).toEqual({ conf: { nameservers: [], skipped: [] }, error: 'ENOENT' });
  });

  it('follows in-place writes and rename-replacements through the directory watch', async () => {
    const d = dir();
    const path = join(d, 'resolv.conf');
    writeFileSync(path, 'nameserver 127.0.0.1\n');
    const changes: (readonly Endpoint[])[] = [];
    const w = new ResolvConfWatcher({ path, onChange: (list) => changes.push(list), pollMs: 60_000, debounceMs: 10 });
    cleanup.push(() => w.close());
    expect(w.start()).toEqual([ns('127.0.0.1')]);
    writeFileSync(path, 'nameserver 127.0.0.2\n');
    expect(await waitFor(() => changes.length === 1, 3_000)).toBe(true);
    expect(changes[0]).toEqual([ns('127.0.0.2')]);
    writeFileSync(join(d, 'new'), 'nameserver 127.0.0.3\nnameserver 127.0.0.4\n');
    renameSync(join(d, 'new'), path);
    expect(await waitFor(() => changes.length === 2, 3_000)).toBe(true);
    expect(changes[1]).toEqual([ns('127.0.0.3'), ns('127.0.0.4')]);
    // A change that leaves the list alone is not reported.
    writeFileSync(path, '# comment\nnameserver 127.0.0.3\nnameserver 127.0.0.4\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(changes).toHaveLength(2);
  });

  it('polls a symlinked file whose target changes elsewhere', async () => {
    const d = dir();
    const elsewhere = dir();
    const target = join(elsewhere, 'stub-resolv.conf');
    writeFileSync(target, 'nameserver 127.0.0.53\n');
    const path = join(d, 'resolv.conf');
    symlinkSync(target, path);
    const changes: (readonly Endpoint[])[] = [];
    const w = new ResolvConfWatcher({ path, onChange: (list) => changes.push(list), pollMs: 50 });
    cleanup.push(() => w.close());
    expect(w.start()).toEqual([ns('127.0.0.53')]);
    writeFileSync(target, 'nameserver 127.0.0.54\n');
    expect(await waitFor(() => changes.length >= 1, 3_000)).toBe(true);
    expect(changes.at(-1)).toEqual([ns('127.0.0.54')]);
  });

  it('keeps the last list while the file is missing, reports it, follows it when it comes back, and stops after close()', async () => {
    const d = dir();
    const path = join(d, 'resolv.conf');
    writeFileSync(path, 'nameserver 127.0.0.1\n');
    const changes: (readonly Endpoint[])[] = [];
    const errors: string[] = [];
    const w = new ResolvConfWatcher({ path, onChange: (list) => changes.push(list), onError: (c) => errors.push(c), pollMs: 50, debounceMs: 10 });
    w.start();
    rmSync(path);
    expect(await waitFor(() => errors.length === 1, 3_000)).toBe(true);
    expect(errors).toEqual(['ENOENT']);
    expect(w.nameservers).toEqual([ns('127.0.0.1')]);
    writeFileSync(path, 'nameserver 127.0.0.9\n');
    expect(await waitFor(() => changes.length === 1, 3_000)).toBe(true);
    writeFileSync(path, '# no nameservers at all\n');
    expect(await waitFor(() => changes.length === 2, 3_000)).toBe(true);
    w.close();
    writeFileSync(path, 'nameserver 127.0.0.10\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(changes).toEqual([[ns('127.0.0.9')], []]);
  });

  it('starts with an empty list when the file is missing', () => {
    const d = dir();
    const errors: string[] = [];
    const w = new ResolvConfWatcher({ path: join(d, 'nope', 'resolv.conf'), onChange: () => undefined, onError: (c) => errors.push(c) });
    expect(w.start()).toEqual([]);
    w.close();
    expect(errors).toEqual(['ENOENT']);
  });
});
