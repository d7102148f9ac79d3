/**
 * The command line's safety options: public listeners (non-loopback or `,public`), the
 * WebSocket token file and TLS pair, and the egress rules in command-line order. Parsing
 * only; the listener's side is test/link/ws-auth.test.ts, the daemon's
 * test/daemon/public.test.ts, real guests test/integration/public.int.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, isPublicSpec, parseDgramSpec, parseStreamSpec, parseWsSpec, describeSpec } from '../../src/daemon/listen-spec.js';
import { refusal, serve } from '../helpers/cli.js';

describe('which listeners are public', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['192.168.1.2', false],
    ['::2', false],
    ['fe80::1%eth0', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it('a loopback listener is public only with ,public; any other address always is; a unix socket only with ,public', () => {
    expect(isPublicSpec(parseWsSpec('127.0.0.1:8080'))).toBe(false);
    expect(isPublicSpec(parseWsSpec('127.0.0.1:8080,public'))).toBe(true);
    expect(isPublicSpec(parseWsSpec('0.0.0.0:8080'))).toBe(true);
    expect(isPublicSpec(parseStreamSpec('unix:/tmp/a.sock'))).toBe(false);
    expect(isPublicSpec(parseStreamSpec('unix:/tmp/a.sock,public'))).toBe(true);
    expect(isPublicSpec(parseDgramSpec('udp:[::]:5555,public'))).toBe(true);
  });

  it('takes ,public and ,network=NAME in either order, each once, and shows them back', () => {
    const a = parseWsSpec('127.0.0.1:8080,network=lab,public');
    const b = parseWsSpec('127.0.0.1:8080,public,network=lab');
    expect(a).toEqual(b);
    expect(a).toMatchObject({ network: 'lab', public: true });
    expect(describeSpec(a)).toBe('ws 127.0.0.1:8080,network=lab,public');
    expect(parseStreamSpec('unix:/tmp/x,y.sock')).toMatchObject({ path: '/tmp/x,y.sock' });
    expect(() => parseWsSpec('127.0.0.1:8080,public,public')).toThrow(/HOST:PORT/);
  });
});

describe('public listeners at start', () => {
  it('refuses a public WebSocket listener without tokens, and says what to do', () => {
    for (const ws of ['0.0.0.0:8080', '127.0.0.1:8080,public', '[::]:8080']) {
      const e = refusal('--ws', ws);
      expect(e.message).toMatch(/is public .*--ws-token-file PATH.*--ws-public-without-auth/);
      expect((e).option).toBe('ws');
    }
    expect(serve('--ws', '0.0.0.0:8080', '--ws-token-file', '/etc/tslirp/tokens').wsTokenFile).toBe('/etc/tslirp/tokens');
    expect(serve('--ws', '0.0.0.0:8080', '--ws-public-without-auth').listeners[0]).toMatchObject({ host: '0.0.0.0' });
    expect(serve('--ws', '127.0.0.1:0').wsTokenFile).toBeUndefined();
  });

  it('refuses a stream or dgram listener on a non-loopback address unless it says ,public', () => {
    expect(refusal('--stream', 'tcp:0.0.0.0:5555').message).toMatch(/carries no credentials.*Add ,public/);
    expect(refusal('--dgram', 'udp:10.1.2.3:5555').message).toMatch(/--dgram: 'dgram udp:10.1.2.3:5555' binds a non-loopback address/);
    expect(serve('--dgram', 'udp:0.0.0.0:5555,public').listeners[0]).toMatchObject({ public: true });
    // Tokens do not help a protocol without credentials.
    expect(refusal('--stream', 'tcp:0.0.0.0:5555', '--ws-token-file', 'x').message).toMatch(/no credentials/);
  });

  it('the default listeners are loopback and need nothing', () => {
    const c = serve();
    expect(c.listeners.some(isPublicSpec)).toBe(false);
  });

  it('--ws-tls-cert and --ws-tls-key go together', () => {
    expect(refusal('--ws-tls-cert', 'c.pem').message).toMatch(/--ws-tls-key: .*go together/);
    expect(refusal('--ws-tls-key', 'k.pem').message).toMatch(/--ws-tls-cert: .*go together/);
    expect(serve('--ws-tls-cert', 'c.pem', '--ws-tls-key', 'k.pem').wsTls).toEqual({ cert: 'c.pem', key: 'k.pem' });
    expect(refusal('--ws-token-file=').message).toMatch(/needs a file path/);
  });
});

describe('egress rules', () => {
  it('keeps command-line order across --egress-allow and --egress-deny, for every network', () => {
    const c = serve('--egress-deny', '10.0.0.0/8', '--egress-allow', '10.1.0.0/16,port=443', '--egress-deny', '::1', '--net-option', 'lab:mtu=9000');
    const rules = c.network.config.egress!.rules.map((r) => `${r.action} ${r.text}`);
    expect(rules).toEqual(['deny 10.0.0.0/8', 'allow 10.1.0.0/16,port=443', 'deny ::1']);
    expect(c.networks.get('lab')!.config.egress!.rules.map((r) => r.text)).toEqual(['10.0.0.0/8', '10.1.0.0/16,port=443', '::1']);
    // First match wins: 10.1.2.3:443 is denied by the first rule, as written.
    expect(c.network.config.egress!.check({ addr: 0x0a010203, port: 443 })).toBe('nat.egress-denied');
  });

  it('refuses a bad rule naming its option', () => {
    expect(refusal('--egress-allow', '10.0.0.0/99').message).toMatch(/^--egress-allow: .*prefix/);
    expect(refusal('--egress-deny', '1.2.3.4,port=0-70000').message).toMatch(/^--egress-deny: .*65535/);
  });
});
