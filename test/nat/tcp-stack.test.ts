import { describe, expect, it } from 'vitest';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { TCP_FLAG, type Tcp } from '../../src/tcp/wire.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { decode, ip, ipv4Frame, tcpBytes } from '../helpers/frames.js';

const { SYN, ACK, RST } = TCP_FLAG;

/**
 * `dirtyFrames`: the stack builds frames in a lent buffer (as the stream link lends its
 * output buffer) that holds 0xee garbage wherever the stack did not ask for zeroes.
 */
function harness(dirtyFrames = false) {
  const clock = new ManualClock(0);
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const allocFrame = (length: number, zeroed: boolean): Uint8Array => new Uint8Array(length).fill(zeroed ? 0 : 0xee);
  const stack = new Stack(resolveStackConfig({}), { clock, random: seededRandom(5), emit: (f) => sent.push(f.slice()), host, ...(dirtyFrames && { allocFrame }) });
  const frame = (dst: string, t: Partial<Tcp> & Pick<Tcp, 'flags'>) =>
    ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip(dst), payload: tcpBytes({ srcPort: 40000, dstPort: 80, ...t }, ip('10.0.2.15'), ip(dst)) });
  const take = () => sent.splice(0).map(decode);
  const sentFrames = () => sent.splice(0);
  return { clock, host, stack, frame, take, sentFrames };
}

describe('stack TCP', () => {
  it('connects a guest SYN to the gateway through a host socket to 127.0.0.1, SYN-ACK after connect', () => {
    const t = harness();
    t.stack.receiveFrame(t.frame('10.0.2.2', { flags: SYN, seq: 100, options: { mss: 1460 } }));
    expect(t.take()).toEqual([]);
    expect(t.host.calls).toEqual([['tcpConnect', 1, { addr: ip('127.0.0.1'), port: 80 }]]);
    t.stack.tcpConnected(1);
    const [synAck] = t.take();
    expect(synAck!.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') });
    expect(synAck!.tcp).toMatchObject({ srcPort: 80, dstPort: 40000, flags: SYN | ACK, ack: 101 });
    expect(t.stack.flows()).toMatchObject([{ protocol: 'tcp', state: 'syn-received' }]);
    expect(t.stack.nextDeadline()).toBe(1000);
  });

  it('lists a flow with its host socket\'s local endpoint and its packets each way', () => {
    const t = harness();
    t.stack.receiveFrame(t.frame('10.0.2.2', { flags: SYN, seq: 100, options: { mss: 1460 } }));
    expect(t.stack.flows()).toMatchObject([{ local: undefined, packetsFromGuest: 1, packetsToGuest: 0 }]);
    t.stack.tcpConnected(1, { addr: ip('127.0.0.1'), port: 51000 });
    const iss = t.take()[0]!.tcp!.seq;
    t.stack.receiveFrame(t.frame('10.0.2.2', { flags: ACK, seq: 101, ack: iss + 1 }));
    t.stack.batch(() => {
      for (let i = 0; i < 3; i++) t.stack.receiveFrame(t.frame('10.0.2.2', { flags: ACK, seq: 101 + i * 100, ack: iss + 1, payload: new Uint8Array(100) }));
    });
    const sent = t.take().length;
    expect(t.stack.flows()).toMatchObject([{
      local: { addr: ip('127.0.0.1'), port: 51000 }, host: { addr: ip('127.0.0.1'), port: 80 },
      packetsFromGuest: 5, packetsToGuest: 1 + sent, bytesFromGuest: 300,
    }]);
  });

  it('connects to outside addresses unchanged', () => {
    const t = harness();
    t.stack.receiveFrame(t.frame('192.0.2.80', { flags: SYN, seq: 100 }));
    expect(t.host.calls).toEqual([['tcpConnect', 1, { addr: ip('192.0.2.80'), port: 80 }]]);
  });

  it('keeps answering TCP to the DNS address with RST', () => {
    const t = harness();
    t.stack.receiveFrame(t.frame('10.0.2.3', { flags: SYN, seq: 100, dstPort: 53 }));
    expect(t.take()[0]!.tcp).toMatchObject({ flags: RST | ACK, ack: 101 });
  });

  it('sends one ACK for a batch of segments', () => {
    const t = harness();
    t.stack.receiveFrame(t.frame('10.0.2.2', { flags: SYN, seq: 100, options: { mss: 1460 } }));
    t.stack.tcpConnected(1);
    const iss = t.take()[0]!.tcp!.seq;
    t.stack.receiveFrame(t.frame('10.0.2.2', { flags: ACK, seq: 101, ack: iss + 1 }));
    t.stack.batch(() => {
      for (let i = 0; i < 10; i++)
        t.stack.receiveFrame(t.frame('10.0.2.2', { flags: ACK, seq: 101 + i * 100, ack: iss + 1, payload: new Uint8Array(100).fill(i) }));
    });
    const acks = t.take();
    expect(acks).toHaveLength(1);
    expect(acks[0]!.tcp).toMatchObject({ flags: ACK, ack: 1101 });
    expect(t.host.callsOf('tcpWrite')).toHaveLength(10);
  });

  it('starts a forwarded connection with a SYN to the guest', () => {
    const t = harness();
    // The guest's MAC must be known: any frame from it teaches it.
    t.stack.receiveFrame(t.frame('10.0.2.2', { flags: RST, seq: 1 }));
    const flow = t.stack.forwardTcp({ addr: ip('127.0.0.1'), port: 6000 }, { addr: ip('10.0.2.15'), port: 22 });
    expect(flow).toBeDefined();
    const [syn] = t.take();
    expect(syn!.ip).toMatchObject({ src: ip('10.0.2.2'), dst: ip('10.0.2.15') });
    expect(syn!.tcp).toMatchObject({ srcPort: 6000, dstPort: 22, flags: SYN });
  });

  it('builds the same frames in a lent buffer holding old bytes as in zeroed memory', () => {
    const run = (dirty: boolean): string[] => {
      const t = harness(dirty);
      // No timestamps: a bare ACK is 54 bytes, padded to the 60-byte minimum.
      t.stack.receiveFrame(t.frame('10.0.2.2', { flags: SYN, seq: 100, options: { mss: 1460, sackPermitted: true } }));
      t.stack.tcpConnected(1);
      const out = t.sentFrames();
      const iss = decode(out[0]!).tcp!.seq;
      t.stack.receiveFrame(t.frame('10.0.2.2', { flags: ACK, seq: 101, ack: iss + 1 }));
      t.stack.tcpData(1, Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff)); // full and short segments
      t.stack.receiveFrame(t.frame('10.0.2.2', { flags: ACK, seq: 101, ack: iss + 1 + 1000, payload: new Uint8Array(3) })); // answered by a bare ACK
      t.stack.tcpEnd(1);
      t.clock.advance(5000); // retransmissions
      t.stack.advance();
      out.push(...t.sentFrames());
      return out.map((f) => Buffer.from(f).toString('hex'));
    };
    const clean = run(false);
    expect(clean.length).toBeGreaterThan(6);
    expect(clean.some((f) => f.length === 120)).toBe(true); // a 60-byte frame, padding included
    expect(run(true)).toEqual(clean);
  });
});
