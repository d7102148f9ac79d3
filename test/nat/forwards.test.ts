import { describe, expect, it } from 'vitest';
import { parseForwardRule, parseForwards } from '../../src/nat/forwards.js';
import { ConfigError } from '../../src/stack/config.js';
import { ip } from '../helpers/frames.js';

describe('nat/forwards (QEMU hostfwd syntax)', () => {
  it('parses the common forms', () => {
    expect(parseForwardRule('tcp::2222-:22')).toEqual({ protocol: 'tcp', hostAddr: ip('127.0.0.1'), hostPort: 2222, guestAddr: undefined, guestPort: 22, text: 'tcp::2222-:22' });
    expect(parseForwardRule('tcp:0.0.0.0:8080-10.0.2.15:80')).toMatchObject({ hostAddr: 0, hostPort: 8080, guestAddr: ip('10.0.2.15'), guestPort: 80 });
    expect(parseForwardRule('udp::5353-:53')).toMatchObject({ protocol: 'udp', hostPort: 5353, guestPort: 53 });
    expect(parseForwardRule(':2222-:22')).toMatchObject({ protocol: 'tcp' });
  });

  it('splits comma-separated lists and repeated options', () => {
    expect(parseForwards(['tcp::1-:2,udp::3-:4', 'tcp::5-:6']).map((r) => r.hostPort)).toEqual([1, 3, 5]);
  });

  it.each([
    ['icmp::1-:2', /protocol must be tcp or udp/],
    ['tcp::-:22', /missing host port/],
    ['tcp::22-:', /missing guest port/],
    ['tcp::70000-:22', /not in 1\.\.65535/],
    ['tcp::0-:22', /not in 1\.\.65535/],
    ['tcp:1.2.3:22-:22', /host address '1\.2\.3'/],
    ['tcp::22-foo:22', /guest address 'foo'/],
    ['tcp:22-22', /expected \[tcp\|udp\]/],
  ])('refuses %s with a clear error', (text, message) => {
    expect(() => parseForwardRule(text)).toThrow(ConfigError);
    expect(() => parseForwardRule(text)).toThrow(message);
  });

  it('refuses two rules on one host port', () => {
    expect(() => parseForwards(['tcp::2222-:22', 'tcp::2222-:23'])).toThrow(/already forwarded/);
    expect(parseForwards(['tcp::2222-:22', 'udp::2222-:22'])).toHaveLength(2);
  });
});
