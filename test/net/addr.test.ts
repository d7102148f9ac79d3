import { describe, expect, it } from 'vitest';
import { formatEndpoint, formatIpAddr, ipEquals, ipv4Endpoint, ipv4Of, ipv6Bytes, ipv6FromBytes, isIpv4, isIpv6, parseIpAddr, type Ipv6Addr } from '../../src/net/addr.js';

describe('net/addr: IpAddr of either family', () => {
  it('keeps IPv4 as the uint32 it always was', () => {
    const a = parseIpAddr('10.0.2.15')!;
    expect(a).toBe(0x0a00020f);
    expect(isIpv4(a) && !isIpv6(a)).toBe(true);
    expect(ipv4Of(a)).toBe(0x0a00020f);
    expect(formatIpAddr(a)).toBe('10.0.2.15');
  });

  it('holds IPv6 as 32 hex digits, formatted per RFC 5952, equal by ===', () => {
    const a = parseIpAddr('2001:DB8:0:0:1:0:0:1')!;
    expect(a).toBe('20010db8000000000001000000000001');
    expect(isIpv6(a)).toBe(true);
    expect(ipv4Of(a)).toBeUndefined();
    expect(formatIpAddr(a)).toBe('2001:db8::1:0:0:1');
    expect(formatIpAddr(parseIpAddr('::')!)).toBe('::');
    expect(formatIpAddr(parseIpAddr('::1')!)).toBe('::1');
    expect(formatIpAddr(parseIpAddr('fe80::')!)).toBe('fe80::');
    expect(formatIpAddr(parseIpAddr('2001:db8:0:1:1:1:1:1')!)).toBe('2001:db8:0:1:1:1:1:1');
    expect(ipEquals(a, parseIpAddr('2001:db8::1:0:0:1')!)).toBe(true);
    expect(ipEquals(a, 1)).toBe(false);
  });

  it('converts IPv6 to and from its 16 bytes', () => {
    const bytes = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
    const a = ipv6FromBytes(bytes);
    expect(ipv6Bytes(a)).toEqual(bytes);
    expect(ipv6Bytes('00000000000000000000000000000001' as Ipv6Addr)[15]).toBe(1);
  });

  it('refuses text that is neither family', () => {
    expect(parseIpAddr('10.0.2')).toBeUndefined();
    expect(parseIpAddr('host')).toBeUndefined();
  });

  it('formats endpoints, brackets for IPv6; ipv4Endpoint narrows without copying', () => {
    const v4 = { addr: 0x7f000001, port: 53 };
    expect(formatEndpoint(v4)).toBe('127.0.0.1:53');
    expect(formatEndpoint({ addr: parseIpAddr('::1')!, port: 53 })).toBe('[::1]:53');
    expect(ipv4Endpoint(v4)).toBe(v4);
    expect(ipv4Endpoint({ addr: parseIpAddr('::1')!, port: 53 })).toBeUndefined();
  });
});
