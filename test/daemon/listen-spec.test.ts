import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ATTACH_NOTE, attachCommand, defaultListeners, describeListener, parseDgramSpec, parseHostPort, parseStreamSpec, parseWsSpec, runtimeDir, usageFor } from '../../src/daemon/listen-spec.js';

describe('listener options', () => {
  it('parses HOST:PORT, IPv6 in brackets, localhost as loopback', () => {
    expect(parseHostPort('ws', '127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseHostPort('ws', '[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseHostPort('ws', 'localhost:80')).toEqual({ host: '127.0.0.1', port: 80 });
    for (const bad of ['127.0.0.1', ':80', '127.0.0.1:', '::1:80', '[127.0.0.1]:80', '1.2.3.4:65536', 'host.example:80', '127.0.0.1:-1'])
      expect(() => parseHostPort('ws', bad), bad).toThrow(/--ws/);
  });

  it('parses each listener kind', () => {
    expect(parseStreamSpec('unix:/run/x.sock')).toEqual({ kind: 'stream', transport: 'unix', path: '/run/x.sock' });
    expect(parseStreamSpec('unix:rel.sock')).toMatchObject({ path: `${process.cwd()}/rel.sock` });
    expect(parseStreamSpec('tcp:127.0.0.1:5555')).toEqual({ kind: 'stream', transport: 'tcp', host: '127.0.0.1', port: 5555 });
    expect(parseDgramSpec('udp:127.0.0.1:5556')).toEqual({ kind: 'dgram', host: '127.0.0.1', port: 5556 });
    expect(parseWsSpec('0.0.0.0:8080')).toEqual({ kind: 'ws', host: '0.0.0.0', port: 8080 });
    expect(() => parseStreamSpec('unix:')).toThrow(/--stream/);
    expect(() => parseStreamSpec('udp:127.0.0.1:1')).toThrow(/--stream/);
    expect(() => parseDgramSpec('127.0.0.1:1')).toThrow(/--dgram/);
  });

  it('chooses the runtime directory', () => {
    expect(runtimeDir({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000, '/tmp')).toBe('/run/user/1000/tslirp');
    expect(runtimeDir({}, 0, '/tmp')).toBe('/run/tslirp');
    expect(runtimeDir({ XDG_RUNTIME_DIR: '' }, 1000, '/tmp')).toBe('/tmp/tslirp-1000');
    expect(defaultListeners('/d')).toEqual([
      { kind: 'ws', host: '127.0.0.1', port: 8080 },
      { kind: 'stream', transport: 'unix', path: '/d/tslirp.sock' },
    ]);
  });

  it('tells QEMU and v86 users how to connect', () => {
    expect(usageFor({ kind: 'stream', transport: 'tcp', host: '0.0.0.0', port: 5555 }).qemu).toBe(
      '-netdev stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=5555 -device e1000,netdev=n0',
    );
    // local.port=0: QEMU binds an ephemeral port (a placeholder would not run as pasted).
    expect(usageFor({ kind: 'dgram', host: '127.0.0.1', port: 5556 }).qemu).toBe(
      '-netdev dgram,id=n0,remote.type=inet,remote.host=127.0.0.1,remote.port=5556,local.type=inet,local.host=127.0.0.1,local.port=0 -device e1000,netdev=n0',
    );
    expect(usageFor({ kind: 'ws', host: '::1', port: 9, url: 'ws://[::1]:9/' }).v86).toBe("net_device: { type: 'virtio', relay_url: 'ws://[::1]:9/' }");
    expect(describeListener({ kind: 'dgram', host: '127.0.0.1', port: 5556 })).toMatchObject({ kind: 'dgram', host: '127.0.0.1', port: 5556 });
  });

  it('prints attach commands that run as pasted: plain ASCII, shell-quoted, commas escaped for QEMU, valid JavaScript for v86', () => {
    const unix = attachCommand({ kind: 'stream', transport: 'unix', path: '/run/tslirp/tslirp.sock' });
    expect(unix).toBe('qemu-system-x86_64 -m 512 -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/run/tslirp/tslirp.sock -device e1000,netdev=n0');
    // A path with a space and a comma: one shell word, QEMU's doubled comma.
    expect(attachCommand({ kind: 'stream', transport: 'unix', path: "/tmp/my vm,1/it's.sock" })).toBe(
      "qemu-system-x86_64 -m 512 -netdev 'stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/my vm,,1/it'\\''s.sock' -device e1000,netdev=n0",
    );
    const v86 = attachCommand({ kind: 'ws', host: '0.0.0.0', port: 8080, url: 'ws://0.0.0.0:8080/' });
    expect(v86).toBe("new V86({ net_device: { type: 'virtio', relay_url: 'ws://127.0.0.1:8080/' } });");
    // Valid JavaScript: it compiles (and is not run).
    expect(() => new Script(v86)).not.toThrow();
    for (const line of [unix, v86, ATTACH_NOTE]) expect(line).toMatch(/^[\x20-\x7e]*$/);
  });
});
