import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli/options.js';
import { REPO_ROOT } from '../helpers/daemon.js';

const UNIT = join(REPO_ROOT, 'contrib', 'tslirp.service');
const text = readFileSync(UNIT, 'utf8');
/** The unit's settings (continuation lines joined), name → values. */
const settings = new Map<string, string[]>();
for (const line of text.replace(/\\\n\s*/g, ' ').split('\n')) {
  const m = /^([A-Za-z]+)=(.*)$/.exec(line);
  if (m !== null) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
}

describe('contrib/tslirp.service', () => {
  it('has the hardening the issue asks for, and a runtime directory for the sockets', () => {
    expect(settings.get('DynamicUser')).toEqual(['yes']);
    expect(settings.get('ProtectSystem')).toEqual(['strict']);
    expect(settings.get('NoNewPrivileges')).toEqual(['yes']);
    expect(settings.get('RestrictAddressFamilies')).toEqual(['AF_UNIX AF_INET AF_INET6']);
    expect(settings.get('RuntimeDirectory')).toEqual(['tslirp']);
    // systemctl reload sends the SIGHUP that reloads --config.
    expect(settings.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
  });

  it('starts `serve` with a command line tslirp accepts, its sockets in the runtime directory', () => {
    const exec = settings.get('ExecStart')![0]!.split(/\s+/);
    const serve = exec.indexOf('serve');
    expect(exec.slice(0, serve)).toEqual(['/usr/bin/node', '--initial-old-space-size=64', '/opt/tslirp/dist/cli/main.js']);
    const cmd = parseCommandLine(exec.slice(serve), {});
    if (cmd.command !== 'serve') throw new Error('not serve');
    expect(cmd.listeners).toContainEqual({ kind: 'stream', transport: 'unix', path: '/run/tslirp/tslirp.sock' });
    expect(cmd.api.listen).toEqual([{ kind: 'unix', path: '/run/tslirp/api.sock' }]);
  });

  it('passes systemd-analyze verify', () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', timeout: 30_000 });
    if (r.error !== undefined && process.env['CI'] !== 'true') {
      console.warn(`SKIPPED systemd-analyze verify: ${r.error.message} (apt-get install systemd)`);
      return;
    }
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: '' });
  });
});
