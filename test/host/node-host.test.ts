import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenerPool } from '../../src/host/node-listeners.js';
import { NodeHost } from '../../src/host/node-host.js';
import type { Endpoint, FlowId } from '../../src/net/addr.js';
import type { AcceptId, HostEvents } from '../../src/net/seams.js';
import { ip } from '../helpers/frames.js';

type Ev = [string, ...unknown[]];

/** HostEvents that record; `onAccepted` answers tcpAccepted (default: no answer). */
function recorder(onAccepted?: (listener: FlowId, conn: AcceptId, client: Endpoint) => void) {
  const events: Ev[] = [];
  const data: Buffer[] = [];
  let wake: (() => void) | undefined;
  const push = (e: Ev) => {
    events.push(e);
    wake?.();
  };
  const ev: HostEvents = {
    udpReceived: (f, d) => push(['udpReceived', f, Buffer.from(d).toString()]),
    udpError: (f, code) => push(['udpError', f, code]),
    tcpConnected: (f) => push(['tcpConnected', f]),
    tcpData: (f, d) => {
      data.push(Buffer.from(d));
      push(['tcpData', f]);
    },
    tcpEnd: (f) => push(['tcpEnd', f]),
    tcpDrained: (f) => push(['tcpDrained', f]),
    tcpError: (f, code) => push(['tcpError', f, code]),
    tcpClosed: (f) => push(['tcpClosed', f]),
    tcpListening: (l, local) => push(['tcpListening', l, local]),
    tcpListenError: (l, code) => push(['tcpListenError', l, code]),
    tcpAccepted: (l, conn, client) => {
      push(['tcpAccepted', l, conn, client]);
      onAccepted?.(l, conn, client);
    },
    udpBound: (s, local) => push(['udpBound', s, local]),
    udpReceivedFrom: (s, from, d) => push(['udpReceivedFrom', s, from, Buffer.from(d).toString()]),
    fileOpened: (f, size) => push(['fileOpened', f, size]),
    fileData: (f, offset, d) => push(['fileData', f, offset, Buffer.from(d).toString()]),
    fileError: (f, code) => push(['fileError', f, code]),
  };
  /** Resolves with the first event named `name` (bounded: 5 s). */
  const until = (name: string): Promise<Ev> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${name}' event; saw ${JSON.stringify(events)}`)), 5000);
      const check = () => {
        const e = events.find((x) => x[0] === name);
        if (e === undefined) return;
        clearTimeout(timer);
        wake = undefined;
        resolve(e);
      };
      wake = check;
      check();
    });
  return { ev, events, data, until };
}

const LOCAL0: Endpoint = { addr: ip('127.0.0.1'), port: 0 };
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function host(r: ReturnType<typeof recorder>): NodeHost {
  const h = new NodeHost(r.ev);
  cleanups.push(() => { h.closeAll(); });
  return h;
}

function udpClient(): Promise<{ socket: dgram.Socket; port: number; got: string[] }> {
  const socket = dgram.createSocket('udp4');
  cleanups.push(() => new Promise<void>((res) => { socket.close(() => { res(); }); }));
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  return new Promise((res) => socket.bind(0, '127.0.0.1', () => { res({ socket, port: socket.address().port, got }); }));
}

const waitFor = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 250 && !cond(); i++) await new Promise((r) => setTimeout(r, 20)); // ≤ 5 s
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

describe('NodeHost: bound UDP sockets', () => {
  it('binds (port 0: any), reports each datagram with its peer, and sends to any peer', async () => {
    const r = recorder();
    const h = host(r);
    h.udpBind(5, LOCAL0);
    const [, , local] = await r.until('udpBound');
    const port = (local as Endpoint).port;
    expect((local as Endpoint).addr).toBe(ip('127.0.0.1'));
    expect(port).toBeGreaterThan(0);
    const a = await udpClient();
    const b = await udpClient();
    a.socket.send('from-a', port, '127.0.0.1');
    await r.until('udpReceivedFrom');
    b.socket.send('from-b', port, '127.0.0.1');
    await waitFor(() => r.events.filter((e) => e[0] === 'udpReceivedFrom').length === 2, 'two datagrams');
    expect(r.events.filter((e) => e[0] === 'udpReceivedFrom')).toEqual([
      ['udpReceivedFrom', 5, { addr: ip('127.0.0.1'), port: a.port }, 'from-a'],
      ['udpReceivedFrom', 5, { addr: ip('127.0.0.1'), port: b.port }, 'from-b'],
    ]);
    h.udpSendTo(5, { addr: ip('127.0.0.1'), port: b.port }, Buffer.from('to-b'));
    h.udpSendTo(5, { addr: ip('127.0.0.1'), port: a.port }, Buffer.from('to-a'));
    await waitFor(() => a.got.length === 1 && b.got.length === 1, 'replies');
    expect([a.got, b.got]).toEqual([['to-a'], ['to-b']]);
    h.close(5);
    expect(h.listening).toBe(0);
  });

  it('reports EADDRINUSE as udpError, never a throw', async () => {
    const taken = await udpClient();
    const r = recorder();
    const h = host(r);
    h.udpBind(6, { addr: ip('127.0.0.1'), port: taken.port });
    expect(await r.until('udpError')).toEqual(['udpError', 6, 'EADDRINUSE']);
    expect(h.listening).toBe(0);
  });

  it('sending to an IPv6 peer from an IPv4 socket is an error event', async () => {
    const r = recorder();
    const h = host(r);
    h.udpBind(7, LOCAL0);
    await r.until('udpBound');
    h.udpSendTo(7, { addr: '2001:db8::1' as never, port: 9 }, Buffer.from('x'));
    expect(await r.until('udpError')).toEqual(['udpError', 7, 'EAFNOSUPPORT']);
  });
});

describe('NodeHost: TCP listeners', () => {
  it('listens, reports each client, and an adopted socket stays paused until resumed', async () => {
    const ref: { host?: NodeHost } = {};
    const r = recorder((_l, conn) => ref.host?.tcpAdopt(conn, 42));
    const h = host(r);
    ref.host = h;
    h.tcpListen(3, LOCAL0);
    const [, , local] = await r.until('tcpListening');
    const client = net.connect({ port: (local as Endpoint).port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => { client.destroy(); });
    await new Promise((res) => client.once('connect', res));
    client.write('early');
    const [, listener, , from] = await r.until('tcpAccepted');
    expect([listener, from]).toEqual([3, { addr: ip('127.0.0.1'), port: client.localPort }]);
    await new Promise((res) => setTimeout(res, 100));
    expect(h.tcp.has(42)).toBe(true);
    expect(r.events.some((e) => e[0] === 'tcpData')).toBe(false); // paused until the guest's handshake
    h.tcpPause(42, false);
    await r.until('tcpData');
    expect(Buffer.concat(r.data).toString()).toBe('early');
    h.tcpWrite(42, Buffer.from('back'));
    const got = await new Promise<string>((res) => client.once('data', (d) => { res(d.toString()); }));
    expect(got).toBe('back');
  });

  it('resets a refused client, and one the stack left unanswered', async () => {
    let answer: ((conn: AcceptId) => void) | undefined;
    const r = recorder((_l, conn) => answer?.(conn));
    const h = host(r);
    h.tcpListen(3, LOCAL0);
    const [, , local] = await r.until('tcpListening');
    const port = (local as Endpoint).port;
    const connectAndWaitForEnd = async (): Promise<string> => {
      const c = net.connect({ port, host: '127.0.0.1' });
      cleanups.push(() => { c.destroy(); });
      return new Promise((res) => {
        c.on('error', (e: NodeJS.ErrnoException) => { res(e.code ?? 'error'); });
        c.on('close', () => { res('closed'); });
      });
    };
    answer = (conn) => { h.tcpRefuse(conn); };
    expect(await connectAndWaitForEnd()).toBe('ECONNRESET');
    answer = undefined;
    expect(await connectAndWaitForEnd()).toBe('ECONNRESET');
    expect(h.unansweredAccepts).toBe(1);
    expect(h.tcp.size).toBe(0);
  });

  it('a client that resets right after being adopted ends as the flow\'s error, its socket released', async () => {
    const ref: { host?: NodeHost } = {};
    const r = recorder((_l, conn) => ref.host?.tcpAdopt(conn, 9));
    const h = host(r);
    ref.host = h;
    h.tcpListen(3, LOCAL0);
    const [, , local] = await r.until('tcpListening');
    const client = net.connect({ port: (local as Endpoint).port, host: '127.0.0.1' });
    await new Promise((res) => client.once('connect', res));
    client.resetAndDestroy();
    await r.until('tcpAccepted');
    h.tcpPause(9, false); // the stack resumes it once the guest answered: the reset shows then
    await r.until('tcpError');
    expect(r.events.find((e) => e[0] === 'tcpError')).toEqual(['tcpError', 9, 'ECONNRESET']);
    expect(h.tcp.size).toBe(0);
  });

  it('reports EADDRINUSE as tcpListenError', async () => {
    const busy = net.createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', res));
    cleanups.push(() => new Promise<void>((res) => { busy.close(() => { res(); }); }));
    const r = recorder();
    const h = host(r);
    h.tcpListen(4, { addr: ip('127.0.0.1'), port: (busy.address() as net.AddressInfo).port });
    expect(await r.until('tcpListenError')).toEqual(['tcpListenError', 4, 'EADDRINUSE']);
    expect(h.listening).toBe(0);
  });

  it('closing a listener while it binds closes it once bound', async () => {
    const r = recorder();
    const h = host(r);
    h.tcpListen(4, LOCAL0);
    h.close(4);
    await new Promise((res) => setTimeout(res, 50));
    expect(r.events).toEqual([]);
    expect(h.listening).toBe(0);
  });
});

describe('ListenerPool', () => {
  it('holds pre-bound sockets: refuses clients while idle, lends them to a host, takes them back', async () => {
    const idle: string[] = [];
    const pool = new ListenerPool({ idle: (l, client) => idle.push(`${l.protocol} ${client.port}`), failed: () => undefined });
    cleanups.push(() => pool.close());
    const tcp = await pool.bind('tcp', LOCAL0);
    const udp = await pool.bind('udp', LOCAL0);
    // Idle: a TCP client is reset, a datagram dropped, both reported.
    const c = net.connect({ port: tcp.local.port, host: '127.0.0.1' });
    cleanups.push(() => { c.destroy(); });
    await new Promise((res) => { c.on('error', res); c.on('close', res); });
    const u = await udpClient();
    u.socket.send('lost', udp.local.port, '127.0.0.1');
    await waitFor(() => idle.length === 2, 'idle reports');
    expect(idle.sort()).toEqual([expect.stringMatching(/^tcp [1-9]\d*$/), `udp ${u.port}`]);

    // Lent: the host's events carry it; the socket is the pool's, bound once.
    const r = recorder();
    const h = host(r);
    h.borrowListenersFrom(pool);
    h.udpBind(11, LOCAL0);
    expect(await r.until('udpBound')).toEqual(['udpBound', 11, udp.local]);
    u.socket.send('kept', udp.local.port, '127.0.0.1');
    expect(await r.until('udpReceivedFrom')).toEqual(['udpReceivedFrom', 11, { addr: ip('127.0.0.1'), port: u.port }, 'kept']);
    // Given back on close: idle again, still bound.
    h.close(11);
    u.socket.send('lost-again', udp.local.port, '127.0.0.1');
    await waitFor(() => idle.length === 3, 'idle again');
    expect(udp.closed).toBe(false);
  });

  it('bind rejects with the Node error when the port is taken', async () => {
    const pool = new ListenerPool({ idle: () => undefined, failed: () => undefined });
    cleanups.push(() => pool.close());
    const first = await pool.bind('tcp', LOCAL0);
    await expect(pool.bind('tcp', first.local)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
