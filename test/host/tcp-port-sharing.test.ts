/**
 * What Node's TCP sockets allow a NAT (RFC 5382), through the real NodeHost on loopback: the
 * rows of README's TCP table. Several outgoing connections share one local port (libuv sets
 * SO_REUSEADDR): endpoint-independent mapping and port preservation work; the same 4-tuple
 * twice is refused (EADDRNOTAVAIL, the engine then takes any port); the local endpoint is
 * reported on connect; a host that connects to a mapping's port unasked meets the kernel's
 * RST (no listener: REQ-4's "hold an unsolicited SYN" and TCP endpoint-independent
 * filtering are not done); a listener could share the port, but would stop new connections
 * from it; two connects crossing on one kernel reset each other (simultaneous open needs the
 * first SYN dropped on the way: test/integration/nat-tcp-punch.int.test.ts).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeHost } from '../../src/host/node-host.js';
import type { Endpoint, FlowId } from '../../src/net/addr.js';
import type { HostEvents } from '../../src/net/seams.js';
import { ip } from '../helpers/frames.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A NodeHost whose connect outcomes resolve promises per flow. */
function host() {
  const outcome = new Map<FlowId, (r: { local?: Endpoint; error?: string }) => void>();
  const wait = (flow: FlowId): Promise<{ local?: Endpoint; error?: string }> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`flow ${flow}: no outcome`)), 5000);
      outcome.set(flow, (r) => { clearTimeout(timer); resolve(r); });
    });
  const nothing = (): void => undefined;
  const ev: HostEvents = {
    tcpConnected: (f, local) => outcome.get(f)?.(local === undefined ? {} : { local }),
    tcpError: (f, code) => outcome.get(f)?.({ error: code }),
    tcpData: nothing, tcpEnd: nothing, tcpDrained: nothing, tcpClosed: nothing, udpReceived: nothing, udpError: nothing,
    tcpListening: nothing, tcpListenError: nothing, tcpAccepted: nothing, udpBound: nothing, udpReceivedFrom: nothing,
    fileOpened: nothing, fileData: nothing, fileError: nothing,
  };
  const h = new NodeHost(ev);
  cleanups.push(() => { h.closeAll(); });
  return { h, wait };
}

/** A loopback server recording each client's port. */
async function server(): Promise<{ port: number; clients: number[] }> {
  const clients: number[] = [];
  const sockets: net.Socket[] = [];
  const s = net.createServer((c) => { clients.push(c.remotePort!); sockets.push(c); c.on('error', () => undefined); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => { s.close(() => { r(); }); for (const c of sockets) c.destroy(); }));
  return { port: (s.address() as net.AddressInfo).port, clients };
}

const LO = ip('127.0.0.1');

describe('TCP port sharing on Node (RFC 5382 mappings)', () => {
  it('connections to two servers from one local port: both see the same client port; the local endpoint is reported', async () => {
    const [a, b] = [await server(), await server()];
    const { h, wait } = host();
    const first = wait(1);
    h.tcpConnect(1, { addr: LO, port: a.port }, { addr: LO, port: 0 });
    const { local } = await first;
    expect(local?.addr).toBe(LO);
    const second = wait(2);
    h.tcpConnect(2, { addr: LO, port: b.port }, { addr: LO, port: local!.port });
    expect(await second).toEqual({ local });
    await expect.poll(() => [...a.clients, ...b.clients]).toEqual([local!.port, local!.port]);
  });

  it('port preservation: a chosen free port is kept; the same 4-tuple twice is refused with EADDRNOTAVAIL', async () => {
    const a = await server();
    const { h, wait } = host();
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => { r(); }));
    const first = wait(1);
    h.tcpConnect(1, { addr: LO, port: a.port }, { addr: LO, port });
    expect(await first).toEqual({ local: { addr: LO, port } });
    const again = wait(2);
    h.tcpConnect(2, { addr: LO, port: a.port }, { addr: LO, port });
    expect(await again).toEqual({ error: 'EADDRNOTAVAIL' });
  });

  it('an unsolicited connection to a mapping\'s port is reset by the host kernel (no TCP endpoint-independent filtering)', async () => {
    const a = await server();
    const { h, wait } = host();
    const first = wait(1);
    h.tcpConnect(1, { addr: LO, port: a.port }, { addr: LO, port: 0 });
    const { local } = await first;
    const code = await new Promise<string>((resolve) => {
      const c = net.connect({ host: '127.0.0.1', port: local!.port });
      c.on('connect', () => { c.destroy(); resolve('connected'); });
      c.on('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? 'error'); });
    });
    expect(code).toBe('ECONNREFUSED');
  });

  it('a listener can share a mapping\'s port, but then no new connection can leave from it (EADDRINUSE: Node 20 has no SO_REUSEPORT for TCP)', async () => {
    const [a, b] = [await server(), await server()];
    const { h, wait } = host();
    const first = wait(1);
    h.tcpConnect(1, { addr: LO, port: a.port }, { addr: LO, port: 0 });
    const { local } = await first;
    const listener = net.createServer((c) => { c.destroy(); });
    await new Promise<void>((resolve, reject) => { listener.once('error', reject); listener.listen(local!.port, '127.0.0.1', resolve); });
    cleanups.push(() => new Promise<void>((r) => { listener.close(() => { r(); }); }));
    const second = wait(2);
    h.tcpConnect(2, { addr: LO, port: b.port }, { addr: LO, port: local!.port });
    expect(await second).toEqual({ error: 'EADDRINUSE' });
  });

  it('two connects crossing between two local endpoints: the first SYN meets no SYN-SENT socket and is reset, so neither opens', async () => {
    const { h, wait } = host();
    const [x, y] = [{ addr: ip('127.0.0.2'), port: await freePort('127.0.0.2') }, { addr: ip('127.0.0.3'), port: await freePort('127.0.0.3') }];
    const [one, two] = [wait(1), wait(2)];
    h.tcpConnect(1, y, x);
    h.tcpConnect(2, x, y);
    expect([await one, await two]).toEqual([{ error: 'ECONNREFUSED' }, { error: 'ECONNREFUSED' }]);
  });
});

/** A TCP port free on `addr` now. */
async function freePort(addr: string): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, addr, r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => { r(); }));
  return port;
}
