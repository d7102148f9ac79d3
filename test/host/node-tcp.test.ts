import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Endpoint, FlowId } from '../../src/net/addr.js';
import { NodeTcp, type NodeTcpEvents } from '../../src/host/node-tcp.js';
import { ip } from '../helpers/frames.js';

type Ev = [string, FlowId, ...unknown[]];

function recorder() {
  const events: Ev[] = [];
  const data: Buffer[] = [];
  /** Each read's length and its `more` hint. */
  const reads: [number, boolean][] = [];
  let wake: (() => void) | undefined;
  const push = (e: Ev) => {
    events.push(e);
    wake?.();
  };
  const ev: NodeTcpEvents = {
    tcpConnected: (f) => push(['connected', f]),
    tcpData: (f, d, more) => {
      data.push(Buffer.from(d));
      reads.push([d.length, more === true]);
      push(['data', f, d.length]);
    },
    tcpEnd: (f) => push(['end', f]),
    tcpDrained: (f) => push(['drained', f]),
    tcpError: (f, code) => push(['error', f, code]),
    tcpClosed: (f) => push(['closed', f]),
  };
  /** Resolves when an event named `name` has been seen (bounded: 5 s). */
  const until = (name: string): Promise<Ev> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${name}' event; saw ${JSON.stringify(events)}`)), 5000);
      const check = () => {
        const e = events.find((x) => x[0] === name);
        if (e !== undefined) {
          clearTimeout(timer);
          wake = undefined;
          resolve(e);
        }
      };
      wake = check;
      check();
    });
  return { ev, events, data, reads, until };
}

const servers: net.Server[] = [];
const accepted: net.Socket[] = [];
afterEach(async () => {
  for (const s of accepted.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function server(onConn: (s: net.Socket) => void): Promise<number> {
  const s = net.createServer({ allowHalfOpen: true }, (sock) => {
    accepted.push(sock);
    sock.on('error', () => undefined);
    onConn(sock);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

const loop = (port: number): Endpoint => ({ addr: ip('127.0.0.1'), port });

describe('NodeTcp', () => {
  it('connects, moves data both ways, and half-closes in both orders', async () => {
    let peer: net.Socket | undefined;
    const got: Buffer[] = [];
    const peerEnded = new Promise<void>((resolve) => {
      void server((s) => {
        peer = s;
        s.on('data', (d: Buffer) => got.push(d));
        s.on('end', () => resolve());
      }).then((port) => tcp.connect(1, loop(port)));
    });
    const r = recorder();
    const tcp = new NodeTcp(r.ev);
    await r.until('connected');
    // Corked until the end of this event-loop turn: Node holds the 5 bytes for now.
    expect(tcp.write(1, new TextEncoder().encode('hello'))).toBe(5);
    tcp.end(1);                      // guest FIN → host end(); we can still read
    await peerEnded;
    expect(Buffer.concat(got).toString()).toBe('hello');
    peer!.end('world');
    await r.until('end');
    expect(Buffer.concat(r.data).toString()).toBe('world');
    await r.until('closed');
    expect(tcp.size).toBe(0);
  });

  it('reads up to 256 KiB at a time and says "more" exactly when a read filled the buffer', async () => {
    const payload = Buffer.alloc(8 << 20, 7);
    const r = recorder();
    const tcp = new NodeTcp(r.ev);
    const port = await server((s) => s.end(payload));
    tcp.connect(1, loop(port));
    await r.until('end');
    expect(r.reads.reduce((n, [len]) => n + len, 0)).toBe(payload.length);
    expect(Math.max(...r.reads.map(([len]) => len))).toBeLessThanOrEqual(256 * 1024);
    for (const [len, more] of r.reads) expect(more).toBe(len === 256 * 1024);
    tcp.close(1);
  });

  it('reports ECONNREFUSED for a closed port', async () => {
    const port = await server(() => undefined);
    await new Promise((res) => servers.pop()!.close(res));
    const r = recorder();
    const tcp = new NodeTcp(r.ev);
    tcp.connect(7, loop(port));
    expect(await r.until('error')).toEqual(['error', 7, 'ECONNREFUSED']);
  });

  it('reports a peer reset as ECONNRESET, and reset() sends one', async () => {
    const r = recorder();
    const tcp = new NodeTcp(r.ev);
    const peerError = new Promise<string>((resolve) => {
      void server((s) => {
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
      }).then((port) => tcp.connect(1, loop(port)));
    });
    await r.until('connected');
    tcp.reset(1);
    expect(await peerError).toBe('ECONNRESET');
    const r2 = recorder();
    const tcp2 = new NodeTcp(r2.ev);
    const port = await server((s) => s.resetAndDestroy());
    tcp2.connect(2, loop(port));
    expect((await r2.until('error')).slice(2)).toEqual(['ECONNRESET']);
  });

  it('pauses and resumes reading', async () => {
    const r = recorder();
    const tcp = new NodeTcp(r.ev);
    let peer: net.Socket | undefined;
    const port = await server((s) => {
      peer = s;
    });
    tcp.connect(1, loop(port));
    await r.until('connected');
    tcp.pause(1, true);
    peer!.write(Buffer.alloc(1000, 1));
    await new Promise((res) => setTimeout(res, 100));
    expect(r.events.filter((e) => e[0] === 'data')).toEqual([]);
    tcp.pause(1, false);
    await r.until('data');
    tcp.close(1);
  });

  it('reports buffered bytes from write() and drains', async () => {
    const r = recorder();
    const tcp = new NodeTcp(r.ev);
    let peer: net.Socket | undefined;
    const port = await server((s) => {
      peer = s;
      s.pause();
    });
    tcp.connect(1, loop(port));
    await r.until('connected');
    let buffered = 0;
    for (let i = 0; i < 400 && buffered === 0; i++) buffered = tcp.write(1, new Uint8Array(64 * 1024));
    expect(buffered).toBeGreaterThan(0);
    peer!.resume();
    await r.until('drained');
    tcp.reset(1);
  });

  /**
   * A stream that logs how NodeTcp hands it bytes: `write` (one chunk) or `writev` (a corked
   * batch), and `end`; `order` also takes the marks the test adds.
   */
  function loggingStream(order: string[]): Duplex {
    return new Duplex({
      read() {
        // the tests only write
      },
      write(chunk: Buffer, _enc, cb) {
        order.push(`write ${chunk.length}`);
        cb();
      },
      writev(chunks, cb) {
        order.push(`writev ${chunks.map((c) => (c.chunk as Buffer).length).join('+')}`);
        cb();
      },
      final(cb) {
        order.push('end');
        cb();
      },
    });
  }

  /** Runs `body` as one event (a macrotask): Node runs its nextTicks, then its microtasks. */
  const inOneEvent = (body: () => void): Promise<void> =>
    new Promise((resolve) => {
      setImmediate(() => {
        body();
        setImmediate(resolve);
      });
    });

  it('hands a lone write to the socket as one write, before the microtasks of the same event', async () => {
    const order: string[] = [];
    const tcp = new NodeTcp(recorder().ev);
    tcp.attachStream(1, loggingStream(order), false);
    await inOneEvent(() => {
      queueMicrotask(() => order.push('microtask'));
      expect(tcp.write(1, new Uint8Array(3))).toBe(3); // held bytes count as buffered
      expect(order).toEqual([]); // not yet: a second write could follow in this event
    });
    expect(order).toEqual(['write 3', 'microtask']);
    tcp.reset(1);
  });

  it('batches the writes of one event to a socket into one writev', async () => {
    const order: string[] = [];
    const tcp = new NodeTcp(recorder().ev);
    tcp.attachStream(1, loggingStream(order), false);
    await inOneEvent(() => {
      queueMicrotask(() => order.push('microtask'));
      tcp.write(1, new Uint8Array(1));
      tcp.write(1, new Uint8Array(2));
      tcp.write(1, new Uint8Array(3));
    });
    expect(order).toEqual(['writev 1+2+3', 'microtask']);
    await inOneEvent(() => tcp.write(1, new Uint8Array(4)));
    expect(order.at(-1)).toBe('write 4');
    tcp.reset(1);
  });

  it('writes a held chunk before the FIN; a reset drops it', async () => {
    const order: string[] = [];
    const tcp = new NodeTcp(recorder().ev);
    tcp.attachStream(1, loggingStream(order), false);
    await inOneEvent(() => {
      tcp.write(1, new Uint8Array(5));
      tcp.end(1);
    });
    expect(order).toEqual(['write 5', 'end']);
    const dropped: string[] = [];
    tcp.attachStream(2, loggingStream(dropped), false);
    await inOneEvent(() => {
      tcp.write(2, new Uint8Array(6));
      tcp.reset(2);
    });
    expect(dropped).toEqual([]);
  });

  it('reports a large lone write the socket took at once as drained', async () => {
    const r = recorder();
    const tcp = new NodeTcp(r.ev);
    const port = await server(() => undefined);
    tcp.connect(1, loop(port));
    await r.until('connected');
    expect(tcp.write(1, new Uint8Array(32 * 1024))).toBe(32 * 1024);
    await r.until('drained');
    tcp.reset(1);
  });

  /** The kernel's timer of the loopback TCP socket bound to `port` (/proc/net/tcp's `tr`: 2 is keepalive). */
  const kernelTimer = (port: number): number | undefined => {
    const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    const line = readFileSync('/proc/net/tcp', 'utf8').split('\n').find((l) => l.trim().split(/\s+/)[1] === local);
    return line === undefined ? undefined : Number.parseInt(line.trim().split(/\s+/)[5]!.split(':')[0]!, 16);
  };

  it('arms SO_KEEPALIVE on a connected socket once it has reported the connect (none with keepAliveMs 0)', async () => {
    const port = await server(() => undefined);
    for (const keepAliveMs of [60_000, 0]) {
      let localPort = 0;
      const r = recorder();
      const tcp = new NodeTcp({ ...r.ev, tcpConnected: (f, local) => { localPort = local?.port ?? 0; r.ev.tcpConnected(f); } }, { keepAliveMs });
      tcp.connect(1, loop(port));
      await r.until('connected');
      await new Promise((resolve) => setImmediate(resolve));
      expect(kernelTimer(localPort), `keepAliveMs ${keepAliveMs}`).toBe(keepAliveMs > 0 ? 2 : 0);
      tcp.reset(1);
    }
  });
});

describe('NodeTcp: the read budget', () => {
  it('stops a socket once the turn has read its budget and reads it again after the refill; every byte arrives in order', async () => {
    const { TurnBudget } = await import('../../src/host/turn-budget.js');
    let deferred: (() => void)[] = [];
    const budget = new TurnBudget({ perTurnBytes: 4096, frameCostBytes: 0, defer: (fn) => deferred.push(fn) });
    const r = recorder();
    const tcp = new NodeTcp(r.ev, { readBudget: budget });
    const payload = Buffer.alloc(200_000, 7);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff;
    const port = await server((s) => s.end(payload));
    tcp.connect(1, loop(port));
    await r.until('connected');
    const total = (): number => r.data.reduce((n, d) => n + d.length, 0);
    // Bounded: one refill per round, at most 2,000 rounds of ≤ 50 ms.
    for (let round = 0; round < 2000 && total() < payload.length; round++) {
      const before = r.reads.length;
      await new Promise((resolve) => setTimeout(resolve, total() === 0 ? 20 : 5));
      // Without a refill the stopped socket reads nothing more (one read may have been in flight).
      if (deferred.length > 0) {
        const readsWhileStopped = r.reads.length - before;
        expect(readsWhileStopped).toBeLessThanOrEqual(2);
        const now = deferred;
        deferred = [];
        for (const fn of now) fn();
      }
    }
    expect(Buffer.concat(r.data).equals(payload)).toBe(true);
    tcp.reset(1);
  });

  it('leaves a socket the engine paused paused when the budget is refilled', async () => {
    const { TurnBudget } = await import('../../src/host/turn-budget.js');
    let deferred: (() => void)[] = [];
    const budget = new TurnBudget({ perTurnBytes: 1, frameCostBytes: 0, defer: (fn) => deferred.push(fn) });
    const r = recorder();
    const tcp = new NodeTcp(r.ev, { readBudget: budget });
    const port = await server((s) => s.write(Buffer.alloc(4_000_000, 1)));
    tcp.connect(1, loop(port));
    await r.until('data');
    tcp.pause(1, true);
    const reads = r.reads.length;
    for (let i = 0; i < 5; i++) {
      const now = deferred;
      deferred = [];
      for (const fn of now) fn();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(r.reads.length).toBeLessThanOrEqual(reads + 1);
    tcp.pause(1, false);
    for (let i = 0; i < 100 && r.reads.length <= reads + 1; i++) {
      const now = deferred;
      deferred = [];
      for (const fn of now) fn();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(r.reads.length).toBeGreaterThan(reads + 1);
    tcp.reset(1);
  });
});
