/**
 * The forwarder over real sockets, without root: a Stack whose Host is NodeUdp, the daemon's
 * Scheduler for its timer, and a dns-packet DNS server on 127.0.0.1 as the upstream.
 */
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/daemon/scheduler.js';
import { QUERY_DEADLINE_MS } from '../../src/dns/forwarder.js';
import type { Endpoint } from '../../src/net/addr.js';
import type { Host } from '../../src/net/seams.js';
import { NodeUdp } from '../../src/host/node-udp.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { systemClock, systemRandom } from '../../src/util/clock.js';
import { decode, ip, ipv4Frame, udpBytes, type Decoded } from '../helpers/frames.js';

interface Upstream {
  readonly endpoint: Endpoint;
  readonly queries: dnsPacket.DecodedPacket[];
  close(): void;
}

/** A small authoritative server: example.test A/AAAA, big.test TXT (truncated past 512 bytes), silent.test never answered. */
async function startUpstream(address = '192.0.2.55'): Promise<Upstream> {
  const server = dgram.createSocket('udp4');
  const queries: dnsPacket.DecodedPacket[] = [];
  server.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    queries.push(q);
    const question = q.questions![0]!;
    if (question.name === 'silent.test') return;
    let answers: dnsPacket.Answer[] = [];
    if (question.name === 'example.test' && question.type === 'A') answers = [{ type: 'A', name: question.name, ttl: 30, data: address }];
    if (question.name === 'example.test' && question.type === 'AAAA') answers = [{ type: 'AAAA', name: question.name, ttl: 30, data: '2001:db8::55' }];
    if (question.name === 'big.test') answers = Array.from({ length: 20 }, (_, i) => ({ type: 'TXT' as const, name: question.name, data: [`${i}`.padEnd(100, 'x')] }));
    let out = dnsPacket.encode({ type: 'response', id: q.id!, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions!, answers });
    if (out.length > 512) out = dnsPacket.encode({ type: 'response', id: q.id!, flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.TRUNCATED_RESPONSE, questions: q.questions! });
    server.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  return { endpoint: { addr: ip('127.0.0.1'), port: server.address().port }, queries, close: () => server.close() };
}

async function closedPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function realStack(upstreams: Endpoint[]) {
  const frames: Decoded[] = [];
  const waiters: (() => void)[] = [];
  // The stack and the socket layer call each other: the stack is created after the sockets.
  const ref: { stack?: Stack; scheduler?: Scheduler } = {};
  const enter = (f: (s: Stack) => void): void => {
    f(ref.stack!);
    ref.scheduler!.rearm();
  };
  const udp = new NodeUdp({
    udpReceived: (flow, data) => enter((s) => s.udpReceived(flow, data)),
    udpError: (flow, code) => enter((s) => s.udpError(flow, code)),
  });
  const unsupported = (): never => {
    throw new Error('TCP is not used here');
  };
  const host: Host = {
    udpOpen: (flow, to) => udp.open(flow, to),
    udpSend: (flow, data) => {
      udp.send(flow, data);
    },
    close: (flow) => {
      udp.close(flow);
    },
    tcpConnect: unsupported, tcpWrite: unsupported, tcpEnd: unsupported, tcpPause: unsupported, tcpReset: unsupported,
    tcpListen: unsupported, tcpAdopt: unsupported, tcpRefuse: unsupported, udpBind: unsupported, udpSendTo: unsupported,
  };
  const s = new Stack(resolveStackConfig(), {
    clock: systemClock, random: systemRandom(), host, dnsUpstreams: upstreams,
    emit: (f) => {
      frames.push(decode(f));
      waiters.splice(0).forEach((w) => w());
    },
  });
  const sched = new Scheduler(s, systemClock);
  ref.stack = s;
  ref.scheduler = sched;
  return {
    stack: s,
    /** Sends a DNS query from the guest and waits (bounded) for the answer frame. */
    async ask(name: string, type: dnsPacket.RecordType, id: number, timeoutMs = 8_000): Promise<{ frame: Decoded | undefined; ms: number }> {
      const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
      const start = performance.now();
      const before = frames.length;
      const udpPayload = udpBytes({ srcPort: 33333, dstPort: 53, payload: q }, ip('10.0.2.15'), ip('10.0.2.3'));
      enter((st) => st.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, dst: ip('10.0.2.3'), payload: udpPayload })));
      const deadline = start + timeoutMs;
      while (frames.length === before && performance.now() < deadline) {
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
      return { frame: frames[before], ms: performance.now() - start };
    },
    close(): void {
      sched.stop();
      s.close();
      udp.closeAll();
    },
    sockets: () => udp.size,
  };
}

const dnsOf = (f: Decoded | undefined): Record<string, unknown> & { answers: { data: unknown }[] } => {
  expect(f?.udp).toMatchObject({ srcPort: 53, dstPort: 33333 });
  return dnsPacket.decode(Buffer.from(f!.udp!.payload)) as unknown as Record<string, unknown> & { answers: { data: unknown }[] };
};

describe('dns/forwarder over real loopback sockets', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).forEach((f) => f()));

  it('resolves A and AAAA through the upstream, keeps the guest ID, passes TC on, and uses one socket', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const t = realStack([up.endpoint]);
    cleanup.push(() => t.close());
    const a = await t.ask('example.test', 'A', 0xabcd);
    expect(dnsOf(a.frame)).toMatchObject({ id: 0xabcd, rcode: 'NOERROR', answers: [{ data: '192.0.2.55' }] });
    const aaaa = await t.ask('example.test', 'AAAA', 0xabce);
    expect(dnsOf(aaaa.frame)).toMatchObject({ id: 0xabce, answers: [{ data: '2001:db8::55' }] });
    const big = await t.ask('big.test', 'TXT', 7);
    expect(dnsOf(big.frame)).toMatchObject({ id: 7, flag_tc: true });
    expect(up.queries.map((q) => q.id)).not.toContain(0xabcd); // the upstream saw rewritten IDs
    expect(t.sockets()).toBe(1);
  });

  it('answers host.tslirp.internal without any socket', async () => {
    const t = realStack([]);
    cleanup.push(() => t.close());
    const r = await t.ask('host.tslirp.internal', 'A', 1);
    expect(dnsOf(r.frame).answers).toMatchObject([{ data: '10.0.2.2' }]);
    expect(t.sockets()).toBe(0);
  });

  it('a closed upstream port (ECONNREFUSED) gives SERVFAIL at once; a second upstream is tried', async () => {
    const closed = { addr: ip('127.0.0.1'), port: await closedPort() };
    const t1 = realStack([closed]);
    cleanup.push(() => t1.close());
    const r1 = await t1.ask('example.test', 'A', 2);
    expect(dnsOf(r1.frame)).toMatchObject({ rcode: 'SERVFAIL' });
    expect(r1.ms).toBeLessThan(1_500);
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const t2 = realStack([closed, up.endpoint]);
    cleanup.push(() => t2.close());
    const r2 = await t2.ask('example.test', 'A', 3);
    expect(dnsOf(r2.frame)).toMatchObject({ rcode: 'NOERROR', answers: [{ data: '192.0.2.55' }] });
    expect(r2.ms).toBeLessThan(1_500);
  });

  it('a name the upstream never answers gives SERVFAIL within the 5 s bound', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const t = realStack([up.endpoint]);
    cleanup.push(() => t.close());
    const r = await t.ask('silent.test', 'A', 4);
    expect(dnsOf(r.frame)).toMatchObject({ id: 4, rcode: 'SERVFAIL' });
    expect(r.ms).toBeGreaterThanOrEqual(QUERY_DEADLINE_MS - 50);
    expect(r.ms).toBeLessThan(QUERY_DEADLINE_MS + 1_000);
    expect(up.queries.filter((q) => q.questions![0]!.name === 'silent.test')).toHaveLength(3); // 0, 2, 4 s
  }, 10_000);

  it('switching upstreams at run time sends the next query to the new server', async () => {
    const first = await startUpstream('192.0.2.1');
    const second = await startUpstream('192.0.2.2');
    cleanup.push(() => first.close(), () => second.close());
    const t = realStack([first.endpoint]);
    cleanup.push(() => t.close());
    expect(dnsOf((await t.ask('example.test', 'A', 5)).frame).answers).toMatchObject([{ data: '192.0.2.1' }]);
    t.stack.setDnsUpstreams([second.endpoint]);
    expect(dnsOf((await t.ask('example.test', 'A', 6)).frame).answers).toMatchObject([{ data: '192.0.2.2' }]);
    expect(t.sockets()).toBe(1);
  });
});
