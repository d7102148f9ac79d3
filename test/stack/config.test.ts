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

describe('stack/config: --dhcp-pool', () => {
  it('is 16 addresses by default, fewer when the network ends first', () => {
    expect(resolveStackConfig().dhcpPoolSize).toBe(16);
    expect(resolveStackConfig({ dhcpstart: '10.0.2.250' }).dhcpPoolSize).toBe(5);
  });

  it('takes any size that fits before the broadcast address, up to 1024', () => {
    expect(resolveStackConfig({ dhcppool: '240' }).dhcpPoolSize).toBe(240);
    expect(resolveStackConfig({ net: '10.0.0.0/16', dhcppool: 1024 }).dhcpPoolSize).toBe(1024);
  });

  it.each([
    [{ dhcppool: '0' }, /from 1 to 1024/],
    [{ dhcppool: '1025', net: '10.0.0.0/8' }, /from 1 to 1024/],
    [{ dhcppool: 'many' }, /from 1 to 1024/],
    [{ dhcppool: '241' }, /241 addresses from 10\.0\.2\.15 pass the broadcast address 10\.0\.2\.255: at most 240 fit/],
  ])('refuses %j naming --dhcppool', (o, reason) => {
    const e = refusal(o);
    expect(e.option).toBe('dhcppool');
    expect(e.message).toMatch(reason);
  });

  it('refuses a pool that would hold the gateway', () => {
    expect(refusal({ dhcpstart: '10.0.2.1', dhcppool: '4' }).message).toMatch(/contains the host address 10\.0\.2\.2/);
  });
});

describe('stack/config: --ipv6-dhcp', () => {
  it('is stateless by default, stateful on request, and refuses anything else', () => {
    expect(resolveStackConfig({}).ipv6?.statefulDhcp).toBe(false);
    expect(resolveStackConfig({ ipv6Dhcp: 'stateful' }).ipv6?.statefulDhcp).toBe(true);
    expect(() => resolveStackConfig({ ipv6Dhcp: 'on' })).toThrow(/ipv6-dhcp.*stateless or stateful/);
  });
});
