/**
 * Guest forwards (`--guestfwd`) in the stack: the server address answers ARP and ping; a SYN to
 * its port becomes a flow whose host side is the rule's target — a host socket (judged by the
 * egress policy, not refused by --restrict) or a host service (a command, a handler); other
 * ports of it are reset; the rules are checked at start.
 */
import { describe, expect, it } from 'vitest';
import { ICMP_TYPE } from '../../src/ipv4/icmp-wire.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { parseGuestForwards } from '../../src/nat/guest-forwards.js';
import { resolveStackConfig, type NetworkOptions } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/config-error.js';
import { FakeHost } from '../helpers/fake-host.js';
import { arpFrame, decode, echoRequest, ip, ipv4Frame, tcpBytes, udpBytes } from '../helpers/frames.js';

const GUEST = ip('10.0.2.15');
const SERVER = ip('10.0.2.100');

function harness(o: NetworkOptions) {
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig(o), { clock: new ManualClock(0), random: seededRandom(3), emit: (f) => sent.push(f.slice()), host });
  const syn = (dst: number, dstPort: number): void =>
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.TCP, src: GUEST, dst, payload: tcpBytes({ srcPort: 40000, dstPort, flags: TCP_FLAG.SYN, seq: 7 }, GUEST, dst) }));
  return { host, sent, stack, syn };
}

describe('guest forwards in the stack', () => {
  it('a host target: the SYN becomes a connection to it, --restrict notwithstanding', () => {
    const t = harness({ guestfwd: ['tcp:10.0.2.100:80-127.0.0.1:8080'], restrict: true });
    t.syn(SERVER, 80);
    expect(t.host.callsOf('tcpConnect')).toEqual([[expect.any(Number), { addr: ip('127.0.0.1'), port: 8080 }]]);
    const flow = t.host.callsOf('tcpConnect')[0]![0] as number;
    t.stack.tcpConnected(flow);
    const synAck = decode(t.sent.at(-1)!);
    expect(synAck.ip).toMatchObject({ src: SERVER, dst: GUEST });
    expect(synAck.tcp).toMatchObject({ srcPort: 80, dstPort: 40000, flags: TCP_FLAG.SYN | TCP_FLAG.ACK, ack: 8 });
    expect(t.stack.flows()).toMatchObject([{ protocol: 'tcp' }]);
  });

  it('a command target: the SYN becomes a host service connection, answered like a socket', () => {
    const t = harness({ guestfwd: ['tcp:10.0.2.100:5000-cmd:tr a-z A-Z'] });
    t.syn(SERVER, 5000);
    expect(t.host.callsOf('tcpConnectService')).toEqual([[expect.any(Number), 'cmd:tr a-z A-Z']]);
    expect(t.host.callsOf('tcpConnect')).toEqual([]);
    const flow = t.host.callsOf('tcpConnectService')[0]![0] as number;
    t.stack.tcpConnected(flow);
    expect(decode(t.sent.at(-1)!).tcp).toMatchObject({ srcPort: 5000, flags: TCP_FLAG.SYN | TCP_FLAG.ACK });
  });

  it('the server address answers ARP and ping; its other ports reset, UDP to it is port unreachable', () => {
    const t = harness({ guestfwd: ['tcp:10.0.2.100:80-127.0.0.1:8080'] });
    t.stack.receiveFrame(arpFrame({ senderIp: GUEST, targetIp: SERVER }));
    expect(decode(t.sent.at(-1)!).arp).toMatchObject({ op: 2, senderIp: SERVER, targetIp: GUEST });
    t.stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.ICMP, src: GUEST, dst: SERVER, payload: echoRequest(new Uint8Array(8)) }));
    expect(decode(t.sent.at(-1)!).icmp).toMatchObject({ type: ICMP_TYPE.ECHO_REPLY });
    t.syn(SERVER, 81);
    expect(decode(t.sent.at(-1)!).tcp).toMatchObject({ srcPort: 81, flags: TCP_FLAG.RST | TCP_FLAG.ACK });
    t.stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: GUEST, dst: SERVER, payload: udpBytes({ srcPort: 1, dstPort: 80, payload: new Uint8Array(1) }, GUEST, SERVER) }));
    expect(decode(t.sent.at(-1)!).icmp).toMatchObject({ type: ICMP_TYPE.DEST_UNREACHABLE, code: 3 });
    expect(t.host.calls).toEqual([]);
  });

  it('a rule on the gateway\'s port takes it over from the host loopback', () => {
    const t = harness({ guestfwd: ['tcp:10.0.2.2:8000-cmd:cat'] });
    t.syn(ip('10.0.2.2'), 8000);
    expect(t.host.callsOf('tcpConnectService')).toEqual([[expect.any(Number), 'cmd:cat']]);
    t.syn(ip('10.0.2.2'), 8001);
    expect(t.host.callsOf('tcpConnect')).toEqual([[expect.any(Number), { addr: ip('127.0.0.1'), port: 8001 }]]);
  });

  it('a host without services resets the SYN', () => {
    const plain = new FakeHost();
    Object.defineProperty(plain, 'tcpConnectService', { value: undefined }); // a Host written before the optional call
    const sent: Uint8Array[] = [];
    const stack = new Stack(resolveStackConfig({ guestfwd: ['tcp:10.0.2.100:1-cmd:cat'] }), { clock: new ManualClock(0), random: seededRandom(3), emit: (f) => sent.push(f.slice()), host: plain });
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.TCP, src: GUEST, dst: SERVER, payload: tcpBytes({ srcPort: 40000, dstPort: 1, flags: TCP_FLAG.SYN, seq: 7 }, GUEST, SERVER) }));
    expect(decode(sent.at(-1)!).tcp).toMatchObject({ flags: TCP_FLAG.RST | TCP_FLAG.ACK });
    expect(stack.counters.get('nat.no-service-host')).toBe(1);
  });

  it('parses QEMU\'s forms', () => {
    const net = { net: ip('10.0.2.0'), netmask: 0xffffff00, dhcpStart: GUEST, dhcpPoolSize: 16 };
    expect(parseGuestForwards(['tcp:10.0.2.100:80-127.0.0.1:8080', 'tcp:10.0.2.100:81-tcp:192.0.2.1:81', 'tcp:10.0.2.101:1-cmd:nc -q0 x 1'], net)).toEqual([
      { server: { addr: SERVER, port: 80 }, target: { kind: 'host', to: { addr: ip('127.0.0.1'), port: 8080 } }, text: 'tcp:10.0.2.100:80-127.0.0.1:8080' },
      { server: { addr: SERVER, port: 81 }, target: { kind: 'host', to: { addr: ip('192.0.2.1'), port: 81 } }, text: 'tcp:10.0.2.100:81-tcp:192.0.2.1:81' },
      { server: { addr: ip('10.0.2.101'), port: 1 }, target: { kind: 'service', service: 'cmd:nc -q0 x 1' }, text: 'tcp:10.0.2.101:1-cmd:nc -q0 x 1' },
    ]);
  });

  it.each([
    [['udp:10.0.2.100:53-127.0.0.1:53'], /must look like tcp:SERVER:PORT-HOST:PORT/],
    [['tcp:10.0.3.1:80-127.0.0.1:80'], /10\.0\.3\.1 is outside the network/],
    [['tcp:10.0.2.20:80-127.0.0.1:80'], /10\.0\.2\.20 is in the DHCP pool/],
    [['tcp:10.0.2.255:80-127.0.0.1:80'], /broadcast address/],
    [['tcp:10.0.2.100:0-127.0.0.1:80'], /'0' is not a port/],
    [['tcp:10.0.2.100:80-cmd:'], /the command is empty/],
    [['tcp:10.0.2.100:80-somewhere'], /the target 'somewhere' must be HOST:PORT/],
    [['tcp:10.0.2.100:80-127.0.0.1:80', 'tcp:10.0.2.100:80-cmd:cat'], /10\.0\.2\.100:80 has a rule already/],
  ])('refuses %j', (rules, why) => {
    expect(() => resolveStackConfig({ guestfwd: rules })).toThrow(ConfigError);
    expect(() => resolveStackConfig({ guestfwd: rules })).toThrow(why);
  });

  it('refuses at start a host target the egress policy refuses', () => {
    expect(() => resolveStackConfig({ guestfwd: ['tcp:10.0.2.100:80-192.0.2.1:80'], egress: [['deny', '192.0.2.0/24']] })).toThrow(
      /--guestfwd: 'tcp:10\.0\.2\.100:80-192\.0\.2\.1:80': the egress policy refuses its target/,
    );
    expect(() => resolveStackConfig({ guestfwd: ['tcp:10.0.2.100:80-cmd:cat'], egress: [['deny', '0.0.0.0/0']] })).not.toThrow();
  });
});
