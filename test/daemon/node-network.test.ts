import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, createNodeNetwork, formatIpv4Addr, type NodeNetwork } from '../../src/index.js';
import { ARP_OP } from '../../src/arp/wire.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { arpFrame, decode, GATEWAY_MAC, ip, ipv4Frame, tcpBytes, udpBytes, type Decoded } from '../helpers/frames.js';
import { DHCP_DISCOVER, dhcpReplyType, yiaddr } from './dhcp-frames.js';
import { until } from '../link/test-log.js';

const GUEST = ip('10.0.2.15');
const GATEWAY = ip('10.0.2.2');

/** Handles of one kind the process holds (`TCPWrap`, `UDPWrap`, `Timeout`). */
const handles = (kind: string): number => process.getActiveResourcesInfo().filter((k) => k === kind).length;

const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

function start(): { net: NodeNetwork; out: Uint8Array[] } {
  const out: Uint8Array[] = [];
  // No resolv.conf is read: the forwarder's upstream is a closed loopback port (tests send no queries).
  const net = createNodeNetwork({ dnsUpstreams: ['127.0.0.1:9'] }, { emit: (f) => out.push(f) });
  open.push(net);
  return { net, out };
}

const decoded = (out: Uint8Array[]): Decoded[] => out.map(decode);

describe('createNodeNetwork: one network on real host sockets', () => {
  it('answers ARP for the gateway and DHCP DISCOVER with an OFFER of the first address', () => {
    const { net, out } = start();
    net.receiveFrame(arpFrame({ targetIp: GATEWAY }));
    const arp = decoded(out)[0]?.arp;
    expect(arp?.op).toBe(ARP_OP.REPLY);
    expect([...(arp?.senderMac ?? [])]).toEqual([...GATEWAY_MAC]);
    net.receiveFrame(DHCP_DISCOVER);
    expect(out).toHaveLength(2);
    expect(dhcpReplyType(out[1]!)).toBe(2); // OFFER
    expect(yiaddr(out[1]!)).toBe('10.0.2.15');
    expect(net.leases().map((l) => formatIpv4Addr(l.ip))).toEqual(['10.0.2.15']);
    expect(net.stats.rxFrames).toBe(2);
    expect(net.stats.txFrames).toBe(2);
  });

  it('refuses invalid options with a ConfigError naming the option', () => {
    expect(() => createNodeNetwork({ net: '10.0.2.0/31' }, { emit: () => undefined })).toThrow(ConfigError);
    expect(() => createNodeNetwork({ dnsUpstreams: ['nameserver'] }, { emit: () => undefined })).toThrow(/--dns-upstream/);
  });

  it('NATs a guest datagram to a loopback socket and back; close() releases the socket', async () => {
    const echo: UdpSocket = createSocket('udp4');
    echo.on('message', (m, rinfo) => echo.send(m, rinfo.port, rinfo.address));
    await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
    open.push({ close: () => echo.close() });
    const port = echo.address().port;
    const baseline = handles('UDPWrap');
    const { net, out } = start();
    const payload = new TextEncoder().encode('ping through NAT');
    net.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: GUEST, dst: GATEWAY, payload: udpBytes({ srcPort: 40000, dstPort: port, payload }, GUEST, GATEWAY) }));
    await until(() => out.length > 0, 5000, 'the echoed datagram');
    const udp = decoded(out)[0]?.udp;
    expect(udp?.dstPort).toBe(40000);
    expect(new TextDecoder().decode(udp?.payload)).toBe('ping through NAT');
    expect(net.flows().map((f) => f.protocol)).toEqual(['udp']);
    expect(handles('UDPWrap')).toBe(baseline + 1);
    net.close();
    expect(net.closed).toBe(true);
    await until(() => handles('UDPWrap') === baseline, 5000, 'the flow socket to close');
    net.receiveFrame(arpFrame({ targetIp: GATEWAY })); // ignored after close
    expect(out).toHaveLength(1);
  });

  it('runs the stack timer: an unanswered SYN-ACK is retransmitted, and close() stops timer and socket', async () => {
    const accepted: Socket[] = [];
    const server: Server = createServer((s) => {
      s.on('error', () => undefined); // close() resets the connection: ECONNRESET here is expected
      accepted.push(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    open.push({ close: () => { for (const s of accepted) s.destroy(); server.close(); } });
    const port = (server.address() as { port: number }).port;
    const { net, out } = start();
    const synAcks = (): number => decoded(out).filter((d) => d.tcp?.flags === (TCP_FLAG.SYN | TCP_FLAG.ACK)).length;
    net.receiveFrame(ipv4Frame({ protocol: IP_PROTO.TCP, src: GUEST, dst: GATEWAY, payload: tcpBytes({ srcPort: 40001, dstPort: port, flags: TCP_FLAG.SYN, seq: 1000 }, GUEST, GATEWAY) }));
    await until(() => synAcks() >= 1, 5000, 'the SYN-ACK');
    // The guest never ACKs: only the stack's timer (initial RTO 1 s) can send the second one.
    await until(() => synAcks() >= 2, 10_000, 'the retransmitted SYN-ACK');
    expect(net.stack.nextDeadline()).toBeDefined();
    const timers = handles('Timeout');
    net.close();
    expect(handles('Timeout')).toBe(timers - 1);
    await until(() => accepted[0]?.destroyed === true, 5000, 'the host connection to be released');
  });
});
