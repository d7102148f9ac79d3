import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import {
  decodeClasslessRoutes, encodeBootfileName, encodeBroadcast, encodeClasslessRoutes, encodeDnsServers, encodeDomainName,
  encodeDomainSearch, encodeHostname, encodeLeaseTime, encodeMessageType, encodeMtu, encodeRebindingTime, encodeRenewalTime,
  encodeRouters, encodeServerId, encodeSubnetMask, encodeTftpServerName, readClientId, readHostname, readLeaseTime,
  readMaxMessageSize, readMessageType, readParameterRequestList, readRequestedIp, readServerId,
} from '../../src/dhcp/options.js';
import type { Dhcp, DhcpOption } from '../../src/dhcp/wire.js';
import { parseIpv4Addr } from '../../src/util/bytes.js';
import { hex } from '../helpers/hex.js';

/** dns-packet's name codec: present at runtime, missing from @types/dns-packet. */
const dnsName = (dnsPacket as unknown as { name: { decode: ((buf: Buffer, offset: number) => string) & { bytes: number } } }).name;
const ip = (s: string): number => parseIpv4Addr(s)!;
const withOptions = (...options: DhcpOption[]): Dhcp => ({
  op: 1, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, broadcast: false, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
  chaddr: new Uint8Array(16), sname: new Uint8Array(64), file: new Uint8Array(128), options,
});
const o = (code: number, data: Uint8Array): DhcpOption => ({ code, data });

describe('dhcp/options readers', () => {
  it('read well-formed options', () => {
    const m = withOptions(
      o(53, hex`03`), o(50, hex`0a00020f`), o(54, hex`0a000202`), o(61, hex`01 525400123456`),
      o(12, hex`67756573740000`), o(55, hex`0103`), o(57, hex`05dc`), o(51, hex`00015180`),
    );
    expect(readMessageType(m)).toBe(3);
    expect(readRequestedIp(m)).toBe(ip('10.0.2.15'));
    expect(readServerId(m)).toBe(ip('10.0.2.2'));
    expect(readClientId(m)).toEqual(hex`01 525400123456`);
    expect(readHostname(m)).toBe('guest'); // trailing NULs are a client's C terminator
    expect(readParameterRequestList(m)).toEqual(hex`0103`);
    expect(readMaxMessageSize(m)).toBe(1500);
    expect(readLeaseTime(m)).toBe(86400);
  });

  it('read misshapen options as absent', () => {
    const m = withOptions(
      o(53, hex`0101`), o(50, hex`0a0002`), o(54, hex``), o(61, hex`01`), o(12, hex`67 0a 68`), o(57, hex`0200`), o(51, hex`01`),
    );
    expect(readMessageType(m)).toBeUndefined();
    expect(readMessageType(withOptions(o(53, hex`09`)))).toBeUndefined();
    expect(readMessageType(withOptions(o(53, hex`00`)))).toBeUndefined();
    expect(readRequestedIp(m)).toBeUndefined();
    expect(readServerId(m)).toBeUndefined();
    expect(readClientId(m)).toBeUndefined();
    expect(readHostname(m)).toBeUndefined(); // a control character
    expect(readMaxMessageSize(m)).toBeUndefined(); // 512 < 576 (RFC 2132 §9.10)
    expect(readLeaseTime(m)).toBeUndefined();
    expect(readParameterRequestList(m)).toBeUndefined();
  });
});

describe('dhcp/options encoders', () => {
  it('encode fixed-size and text options', () => {
    expect(encodeMessageType(5)).toEqual(o(53, hex`05`));
    expect(encodeSubnetMask(ip('255.255.255.0'))).toEqual(o(1, hex`ffffff00`));
    expect(encodeRouters([ip('10.0.2.2')])).toEqual(o(3, hex`0a000202`));
    expect(encodeDnsServers([ip('10.0.2.3'), ip('1.1.1.1')])).toEqual(o(6, hex`0a000203 01010101`));
    expect(encodeHostname('vm1')).toEqual(o(12, hex`766d31`));
    expect(encodeDomainName('lan')).toEqual(o(15, hex`6c616e`));
    expect(encodeMtu(65520)).toEqual(o(26, hex`fff0`));
    expect(encodeBroadcast(ip('10.0.2.255'))).toEqual(o(28, hex`0a0002ff`));
    expect(encodeLeaseTime(86400)).toEqual(o(51, hex`00015180`));
    expect(encodeServerId(ip('10.0.2.2'))).toEqual(o(54, hex`0a000202`));
    expect(encodeRenewalTime(43200)).toEqual(o(58, hex`0000a8c0`));
    expect(encodeRebindingTime(75600)).toEqual(o(59, hex`00012750`));
    expect(encodeTftpServerName('tftp')).toEqual(o(66, hex`74667470`));
    expect(encodeBootfileName('pxelinux.0')).toEqual(o(67, new TextEncoder().encode('pxelinux.0')));
  });

  it('encodes the RFC 3397 §2 search list example with compression', () => {
    const opt = encodeDomainSearch(['eng.apple.com', 'marketing.apple.com']);
    expect(opt).toEqual(o(119, hex`03 656e67 05 6170706c65 03 636f6d 00  09 6d61726b6574696e67 c004`));
  });

  it('encodes names dns-packet decodes, pointers relative to the option data', () => {
    const names = ['example.com', 'corp.example.com', 'example.org', 'a.b.c.example.com', 'EXAMPLE.com'];
    const { data } = encodeDomainSearch(names);
    const buf = Buffer.from(data);
    const decoded: string[] = [];
    for (let at = 0; at < buf.length; at += dnsName.decode.bytes) decoded.push(dnsName.decode(buf, at));
    expect(decoded).toEqual(['example.com', 'corp.example.com', 'example.org', 'a.b.c.example.com', 'example.com']);
    expect(data.length).toBeLessThan(names.join('..').length); // compression took effect
  });

  it('encodes classless static routes (RFC 3442 §3) and decodes them back', () => {
    const routes = [
      { dest: ip('10.17.0.0'), prefixLen: 16, gateway: ip('10.0.2.2') },
      { dest: ip('192.168.100.128'), prefixLen: 25, gateway: ip('10.0.2.4') },
      { dest: ip('172.16.5.5'), prefixLen: 32, gateway: ip('10.0.2.2') },
      { dest: 0, prefixLen: 0, gateway: ip('10.0.2.2') },
    ];
    const opt = encodeClasslessRoutes(routes);
    expect(opt).toEqual(o(121, hex`10 0a11 0a000202  19 c0a86480 0a000204  20 ac100505 0a000202  00 0a000202`));
    expect(decodeClasslessRoutes(opt.data)).toEqual(routes);
    expect(decodeClasslessRoutes(hex`21 00000000 00000000`)).toBeUndefined();
    expect(decodeClasslessRoutes(hex`10 0a11 0a0002`)).toBeUndefined();
  });
});
