/**
 * `replayLive` (src/replay/live.ts) with a fake network: which frames of a capture are the
 * guest's, what configuration the capture implies, how the guest's TCP ACKs move onto the
 * network's sequence numbers (checksums still right), the output pcapng, and bad input.
 * The fixture is a real capture: QEMU's filter-dump of a namespace guest's TAP on a hub with
 * libslirp (`-netdev user`), busybox udhcpc then wget of 3 KB from a loopback server (the
 * way test/integration/replay-live.int.test.ts makes one).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ETHERTYPE } from '../../src/ethernet/wire.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { readCapture } from '../../src/pcap/reader.js';
import { encodePcapHeader, pcapRecordLength, writePcapRecord } from '../../src/pcap/writer.js';
import { replayLive, type LiveNetworkConfig } from '../../src/replay/live.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { formatMac, parseMac } from '../../src/util/bytes.js';
import { arpFrame, decode, ethernetFrame, ip, ipv4Frame, ipv4Packet, tcpBytes, udpBytes } from '../helpers/frames.js';

const FIXTURE = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures', 'libslirp-wget.pcap')));
const GUEST = '7a:40:ff:02:7b:ae';
const OUR_ISN = 0x10000000;

/** A network that answers a guest SYN with a SYN-ACK and 3124 bytes and a FIN at once. */
function fakeNetwork(): { open: (c: LiveNetworkConfig, emit: (f: Uint8Array) => void) => { receiveFrame(f: Uint8Array): void; close(): void }; got: Uint8Array[]; config: LiveNetworkConfig[]; closed: () => boolean } {
  const got: Uint8Array[] = [];
  const config: LiveNetworkConfig[] = [];
  let closed = false;
  return {
    got,
    config,
    closed: () => closed,
    open(c, emit) {
      config.push(c);
      return {
        receiveFrame(f) {
          got.push(f);
          if (f[12] !== 8 || f[13] !== 0) return; // IPv6 (the guest's MLD report)
          const d = decode(f);
          if (d.tcp?.flags !== TCP_FLAG.SYN) return;
          const back = (flags: number, seq: number, payload: Uint8Array): Uint8Array =>
            ipv4Frame({ protocol: IP_PROTO.TCP, src: d.ip!.dst, dst: d.ip!.src, payload: tcpBytes({ srcPort: d.tcp!.dstPort, dstPort: d.tcp!.srcPort, flags, seq, ack: d.tcp!.seq + 1, payload }, d.ip!.dst, d.ip!.src) }, d.eth.src);
          emit(back(TCP_FLAG.SYN | TCP_FLAG.ACK, OUR_ISN, new Uint8Array(0)));
          emit(back(TCP_FLAG.ACK | TCP_FLAG.PSH | TCP_FLAG.FIN, OUR_ISN + 1, new Uint8Array(3124)));
        },
        close() {
          closed = true;
        },
      };
    },
  };
}

const pcapOf = (frames: readonly Uint8Array[]): Uint8Array => {
  const parts = [encodePcapHeader()];
  frames.forEach((f, i) => {
    const r = new Uint8Array(pcapRecordLength(f.length));
    writePcapRecord(1_700_000_000e6 + i * 1000, f, r);
    parts.push(r);
  });
  return Buffer.concat(parts);
};

describe('replayLive with a capture of libslirp', () => {
  it("feeds the guest's frames only, with its ACKs moved onto the network's sequence numbers", async () => {
    const net = fakeNetwork();
    const r = await replayLive(FIXTURE, { open: net.open, maxGapS: 0.01, settleS: 0 });
    expect(r).toMatchObject({ result: 'done', exitCode: 0, guestMac: GUEST, guestFrom: 'dhcp', fed: 13, skipped: 10, tcpConnections: 1, tcpUnmapped: 0, tcpAhead: 0 });
    expect(net.config).toEqual([{ net: '10.0.2.0/24', host: '10.0.2.2', dhcpstart: '10.0.2.15' }]);
    expect(net.closed()).toBe(true);
    expect(net.got.every((f) => formatMac(f.subarray(6, 12)) === GUEST)).toBe(true);
    // Every frame still parses (checksums right); the guest's ACKs are relative to our ISN as they were to libslirp's.
    const acks = net.got.filter((f) => f[12] === 8 && f[13] === 0).map((f) => decode(f)).filter((d) => d.tcp !== undefined && (d.tcp.flags & TCP_FLAG.ACK) !== 0).map((d) => (d.tcp!.ack - OUR_ISN) >>> 0);
    expect(acks).toEqual([1, 1, 1441, 2881, 3125, 3125, 3126]);
    // The output: the fed frames inbound, the answers outbound.
    const out = readCapture(r.pcapng!);
    if (typeof out === 'string') throw new Error(out);
    expect(out.packets.filter((p) => p.direction === 'inbound').length).toBe(13);
    expect(out.packets.filter((p) => p.direction === 'outbound').length).toBe(r.answers);
    expect(r.answers).toBe(2);
  });

  it('follows --guest-mac and names a MAC with no frame', async () => {
    const r = await replayLive(FIXTURE, { open: fakeNetwork().open, guestMac: '52:55:0a:00:02:02', maxGapS: 0, settleS: 0 });
    expect(r.guestFrom).toBe('option');
    expect(r.fed).toBe(10); // libslirp's side, fed as if it were a guest
    const none = await replayLive(FIXTURE, { open: fakeNetwork().open, guestMac: '02:00:00:00:00:01', settleS: 0 });
    expect(none).toMatchObject({ exitCode: 2, error: 'no frame from the guest 02:00:00:00:00:01' });
    expect((await replayLive(FIXTURE, { open: fakeNetwork().open, guestMac: 'nope' })).exitCode).toBe(2);
  });
});

describe('replayLive configures the network from the capture', () => {
  it("takes another network's gateway from the guest's ARP, its address from its packets, and readdresses its gateway MAC", async () => {
    const mac = parseMac('02:11:22:33:44:55')!;
    const oldGw = parseMac('00:16:3e:00:00:01')!;
    const g = ip('192.168.7.50');
    const gw = ip('192.168.7.1');
    const dns = ip('192.168.7.3');
    const frames = [
      arpFrame({ senderMac: mac, senderIp: g, targetIp: gw }),
      ethernetFrame(mac, ETHERTYPE.ARP, arpFrame({ op: 2, senderMac: oldGw, senderIp: gw, targetMac: mac, targetIp: g }).subarray(14), oldGw), // the original's reply: skipped
      ethernetFrame(oldGw, ETHERTYPE.IPV4, ipv4Packet({ protocol: IP_PROTO.UDP, src: g, dst: dns, payload: udpBytes({ srcPort: 5000, dstPort: 53, payload: new Uint8Array(12) }, g, dns) }), mac),
    ];
    const net = fakeNetwork();
    const r = await replayLive(pcapOf(frames), { open: net.open, maxGapS: 0, settleS: 0 });
    expect(r).toMatchObject({ exitCode: 0, guestMac: '02:11:22:33:44:55', guestFrom: 'source', fed: 2, skipped: 1, rewroteGatewayMac: '00:16:3e:00:00:01' });
    expect(net.config).toEqual([{ net: '192.168.7.0/24', host: '192.168.7.1', dhcpstart: '192.168.7.50', dns: '192.168.7.3' }]);
    expect(formatMac(net.got[1]!.subarray(0, 6))).toBe('52:55:c0:a8:07:01');
    expect(decode(net.got[1]!).udp?.dstPort).toBe(53);
  });

  it('refuses what is not a capture or holds no Ethernet frame (exit 2), and a network that cannot open (exit 3)', async () => {
    expect((await replayLive(new Uint8Array([1, 2, 3, 4, 5]), { open: fakeNetwork().open })).exitCode).toBe(2);
    expect((await replayLive(encodePcapHeader(), { open: fakeNetwork().open })).error).toBe('the capture has no Ethernet frame');
    const raw = Buffer.concat([encodePcapHeader(65535, 101), (() => { const b = new Uint8Array(pcapRecordLength(20)); writePcapRecord(0, new Uint8Array(20), b); return b; })()]);
    expect((await replayLive(raw, { open: fakeNetwork().open })).exitCode).toBe(2);
    const r = await replayLive(FIXTURE, { open: () => { throw new Error('EADDRINUSE'); } });
    expect(r).toMatchObject({ result: 'environment', exitCode: 3 });
    expect(r.error).toMatch(/EADDRINUSE/);
  });
});
