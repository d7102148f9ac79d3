import { describe, expect, it } from 'vitest';
import { HELP, parseCommandLine, UsageError } from '../../src/cli/options.js';

/** `--ws-allow-origin`: parsed into serialized origins and set on every WebSocket listener. */
describe('--ws-allow-origin', () => {
  const serve = (...args: string[]) => {
    const c = parseCommandLine(['serve', ...args], { XDG_RUNTIME_DIR: '/run/user/1000' });
    if (c.command !== 'serve') throw new Error('not serve');
    return c;
  };

  it('allows no browser origin by default', () => {
    const c = serve();
    expect(c.wsAllowOrigins).toEqual([]);
    expect(c.listeners[0]).toEqual({ kind: 'ws', host: '127.0.0.1', port: 8080 });
  });

  it('normalizes each origin and sets the list on every ws listener, defaults included', () => {
    const c = serve('--ws-allow-origin', 'HTTP://LocalHost:8000/', '--ws-allow-origin', 'https://app.example:443', '--ws-allow-origin', 'http://[::1]:80');
    expect(c.wsAllowOrigins).toEqual(['http://localhost:8000', 'https://app.example', 'http://[::1]']);
    expect(c.listeners[0]).toEqual({ kind: 'ws', host: '127.0.0.1', port: 8080, allowOrigins: c.wsAllowOrigins });
    const two = serve('--ws', '127.0.0.1:0', '--ws', '127.0.0.1:1', '--stream', 'tcp:127.0.0.1:0', '--ws-allow-origin', '*');
    expect(two.listeners.filter((l) => l.kind === 'ws').map((l) => l.kind === 'ws' && l.allowOrigins)).toEqual([['*'], ['*']]);
    expect(two.listeners.find((l) => l.kind === 'stream')).not.toHaveProperty('allowOrigins');
  });

  it.each([['null'], ['http://x.example/path'], ['http://user@x.example'], ['x.example'], ['file:///tmp/page.html'], [''], ['http://x.example?q']])(
    'refuses %j naming the option',
    (value) => {
      let err: unknown;
      try {
        serve('--ws-allow-origin', value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).option).toBe('ws-allow-origin');
      expect((err as Error).message).toContain('--ws-allow-origin');
    },
  );

  it('is in --help', () => {
    expect(HELP).toContain('--ws-allow-origin ORIGIN');
  });
});
