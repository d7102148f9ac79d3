import { describe, expect, it } from 'vitest';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import { ConfigError } from '../../src/util/config-error.js';
import { ip } from '../helpers/frames.js';

/** The ConfigError `o` is refused with (fails the test when it is accepted). */
function refusal(o: NetworkOptions): ConfigError {
  try {
    resolveStackConfig(o);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(o)}`);
}

describe('stack/config: --net and --route take a prefix length or a dotted mask, as QEMU does', () => {
  it('--net 10.0.2.0/255.255.255.0 is the default network', () => {
    const byMask = resolveStackConfig({ net: '10.0.2.0/255.255.255.0' });
    expect(byMask).toEqual(resolveStackConfig({ net: '10.0.2.0/24' }));
    expect(byMask).toMatchObject({ net: ip('10.0.2.0'), prefixLen: 24, netmask: ip('255.255.255.0'), host: ip('10.0.2.2') });
  });

  it('--net 192.168.0.0/255.255.0.0 gives a /16, with the defaults inside it', () => {
    expect(resolveStackConfig({ net: '192.168.0.0/255.255.0.0' })).toMatchObject({ prefixLen: 16, host: ip('192.168.0.2'), dhcpStart: ip('192.168.0.15') });
  });

  it.each([
    [{ net: '10.0.2.0/255.0.255.0' }, 'net', /netmask 255\.0\.255\.0 is not contiguous/],
    [{ net: '10.0.2.0/255.255.255.254' }, 'net', /prefix \/31 must be from \/8 to \/30/],
    [{ net: '010.0.2.0/24' }, 'net', /no leading zeros/],
    [{ net: '10.0.2.0/33' }, 'net', /from 0 to 32/],
    [{ host: '10.0.2.256' }, 'host', /four decimal numbers from 0 to 255/],
    [{ route: ['10.9.0.0/255.0.255.0=10.0.2.2'] }, 'route', /not contiguous/],
    [{ route: ['10.9.0.0/255.255.0.0=10.0.3.2'] }, 'route', /outside the network/],
    [{ route: ['10.9.1.0/255.255.0.0=10.0.2.2'] }, 'route', /host bits set/],
    [{ route: ['10.9.0.0=10.0.2.2'] }, 'route', /DEST\/PREFIX=GATEWAY or DEST\/MASK=GATEWAY/],
  ])('refuses %j naming --%s', (o, option, reason) => {
    const e = refusal(o);
    expect(e.option).toBe(option);
    expect(e.message).toMatch(reason);
  });

  it('--route DEST/MASK=GW is the same route as DEST/PREFIX=GW', () => {
    const byMask = resolveStackConfig({ route: ['10.9.0.0/255.255.0.0=10.0.2.2', '0.0.0.0/0.0.0.0=10.0.2.2'] }).routes;
    expect(byMask).toEqual(resolveStackConfig({ route: ['10.9.0.0/16=10.0.2.2', '0.0.0.0/0=10.0.2.2'] }).routes);
    expect(byMask[0]).toEqual({ dest: ip('10.9.0.0'), prefixLen: 16, gateway: ip('10.0.2.2') });
  });
});
