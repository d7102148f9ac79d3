/**
 * Host services as streams through the Node host: a command per connection (its stdin and
 * stdout the connection), a program's handler, an unknown service; and the duplex pair.
 */
import { describe, expect, it } from 'vitest';
import { NodeHost } from '../../src/host/node-host.js';
import { duplexPair, MAX_COMMANDS } from '../../src/host/node-services.js';
import { until } from '../helpers/guests.js';
import type { HostEvents } from '../../src/net/seams.js';

type Ev = [string, ...unknown[]];

function host() {
  const events: Ev[] = [];
  const data: Buffer[] = [];
  let wake: (() => void) | undefined;
  const push = (e: Ev): void => { events.push(e); wake?.(); };
  const nothing = (): void => undefined;
  const ev: HostEvents = {
    tcpConnected: (f, local) => push(['tcpConnected', f, local]),
    tcpData: (f, d) => { data.push(Buffer.from(d)); push(['tcpData', f]); },
    tcpEnd: (f) => push(['tcpEnd', f]),
    tcpError: (f, code) => push(['tcpError', f, code]),
    tcpClosed: (f) => push(['tcpClosed', f]),
    tcpDrained: nothing, udpReceived: nothing, udpError: nothing, tcpListening: nothing, tcpListenError: nothing, tcpAccepted: nothing,
    udpBound: nothing, udpReceivedFrom: nothing, fileOpened: nothing, fileData: nothing, fileError: nothing,
  };
  const h = new NodeHost(ev);
  const until = (name: string): Promise<Ev> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no ${name}; saw ${JSON.stringify(events)}`)); }, 5000);
      wake = () => {
        const e = events.find((x) => x[0] === name);
        if (e === undefined) return;
        clearTimeout(timer);
        wake = undefined;
        resolve(e);
      };
      wake();
    });
  return { h, events, data, until };
}

describe('host services (node-services.ts)', () => {
  it('cmd: runs the command per connection; what the guest sends is its stdin, its stdout comes back, its exit ends the flow', async () => {
    const t = host();
    t.h.tcpConnectService(1, 'cmd:tr a-z A-Z');
    expect(t.events).toEqual([]); // answered later, as the seam requires
    expect(await t.until('tcpConnected')).toEqual(['tcpConnected', 1, undefined]);
    t.h.tcpWrite(1, new TextEncoder().encode('hello, guest\n'));
    t.h.tcpEnd(1);
    await t.until('tcpEnd');
    expect(Buffer.concat(t.data).toString()).toBe('HELLO, GUEST\n');
    await t.until('tcpClosed');
    t.h.closeAll();
  });

  it('a handler gets a stream per connection; ending it ends the flow', async () => {
    const t = host();
    const got: string[] = [];
    t.h.services.handle('handler:echo', (s) => {
      s.on('data', (d: Buffer) => got.push(d.toString()));
      s.on('end', () => s.end('bye\n'));
    });
    t.h.tcpConnectService(2, 'handler:echo');
    await t.until('tcpConnected');
    t.h.tcpWrite(2, new TextEncoder().encode('ping'));
    t.h.tcpEnd(2);
    await t.until('tcpEnd');
    expect(got.join('')).toBe('ping');
    expect(Buffer.concat(t.data).toString()).toBe('bye\n');
    t.h.close(2);
  });

  it('an unknown service is ENOENT, a throwing handler ECONNREFUSED', async () => {
    const t = host();
    t.h.tcpConnectService(3, 'handler:none');
    expect(await t.until('tcpError')).toEqual(['tcpError', 3, 'ENOENT']);
    const u = host();
    u.h.services.handle('handler:bad', () => { throw new Error('no'); });
    u.h.tcpConnectService(4, 'handler:bad');
    expect(await u.until('tcpError')).toEqual(['tcpError', 4, 'ECONNREFUSED']);
  });

  it('a reset kills the command', async () => {
    const t = host();
    t.h.tcpConnectService(5, 'cmd:sleep 30');
    await t.until('tcpConnected');
    const started = Date.now();
    t.h.tcpReset(5);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.events.filter((e) => e[0] !== 'tcpConnected')).toEqual([]); // no events after a reset
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('duplexPair: each side reads what the other writes; destroying one resets the other', async () => {
    const [a, b] = duplexPair();
    const got = new Promise<string>((resolve) => { let s = ''; b.on('data', (d: Buffer) => (s += d.toString())); b.on('end', () => resolve(s)); });
    a.end('one way');
    expect(await got).toBe('one way');
    const [c, d] = duplexPair();
    const err = new Promise<unknown>((resolve) => d.on('error', resolve));
    c.destroy();
    expect(await err).toMatchObject({ code: 'ECONNRESET' });
  });
});

describe('host services: bounds', () => {
  it(`runs at most ${MAX_COMMANDS} commands at once; the next connection is refused (EMFILE) until one ends`, async () => {
    const t = host();
    for (let i = 0; i < MAX_COMMANDS; i++) t.h.tcpConnectService(100 + i, 'cmd:cat');
    expect(t.h.services.commands).toBe(MAX_COMMANDS);
    t.h.tcpConnectService(1, 'cmd:cat');
    expect(await t.until('tcpError')).toEqual(['tcpError', 1, 'EMFILE']);
    expect(t.h.services.commandsRefused).toBe(1);
    t.h.tcpReset(100);
    await until(() => t.h.services.commands === MAX_COMMANDS - 1, 5000);
    t.h.tcpConnectService(2, 'cmd:cat');
    expect(t.h.services.commands).toBe(MAX_COMMANDS);
    t.h.closeAll();
    expect(await until(() => t.h.services.commands === 0, 10_000)).toBe(true);
  }, 30_000);
});
