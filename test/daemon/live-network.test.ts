import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveNetwork } from '../../src/daemon/live-network.js';
import { ListenerPool } from '../../src/host/node-listeners.js';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { ForwardRefusals } from '../../src/nat/forward-refusals.js';
import { parseForwardRule } from '../../src/nat/forwards.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { TCP_FLAG } from '../../src/tcp/wire.js';
import { systemClock, seededRandom } from '../../src/util/clock.js';
import { decode, ip, ipv4Frame, tcpBytes, type Decoded } from '../helpers/frames.js';
import { until } from '../link/test-log.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function live(observer?: (kind: 'call' | 'event', name: string) => void) {
  const l = new LiveNetwork({
    name: 't', config: resolveStackConfig(), clock: systemClock, random: seededRandom(4), dnsUpstreams: [], dnsRecords: [],
    ...(observer !== undefined && { observer }),
  });
  cleanups.push(() => { l.close(); });
  const out: Decoded[] = [];
  const port = l.attach({ send: (f) => out.push(decode(f)) });
  // The guest's MAC becomes known from any of its frames.
  port.receive(ipv4Frame({ protocol: IP_PROTO.TCP, dst: ip('10.0.2.2'), payload: tcpBytes({ srcPort: 1, dstPort: 1, flags: TCP_FLAG.RST, seq: 1 }, ip('10.0.2.15'), ip('10.0.2.2')) }));
  return { l, out };
}

/** A TCP forward from an ephemeral loopback port (rules refuse port 0; the pool binds it). */
async function pooled(): Promise<{ pool: ListenerPool; rule: ReturnType<typeof parseForwardRule>; refusals: ForwardRefusals; port: number; idle: number[] }> {
  const idle: number[] = [];
  const pool = new ListenerPool({ idle: (_l, c) => idle.push(c.port), failed: () => undefined });
  cleanups.push(() => pool.close());
  const bound = await pool.bind('tcp', { addr: ip('127.0.0.1'), port: 0 });
  const rule = { ...parseForwardRule('tcp::1-10.0.2.15:22'), hostPort: bound.requested.port };
  return { pool, rule, refusals: new ForwardRefusals(rule, undefined), port: bound.local.port, idle };
}

describe('LiveNetwork: forwards and the observer', () => {
  it('a client of a forward lent by the pool reaches the guest as a SYN; every crossing passes the observer', async () => {
    const seen: string[] = [];
    const { l, out } = live((kind, name) => seen.push(`${kind} ${name}`));
    const p = await pooled();
    l.openForward(p.rule, p.refusals, p.pool);
    await until(() => seen.includes('event tcpListening'), 2000, 'listening');
    const client = net.connect({ port: p.port, host: '127.0.0.1' });
    client.on('error', () => undefined);
    cleanups.push(() => { client.destroy(); });
    await until(() => out.some((d) => d.tcp?.flags === TCP_FLAG.SYN), 2000, 'SYN at the guest');
    expect(out.find((d) => d.tcp?.flags === TCP_FLAG.SYN)!.tcp).toMatchObject({ dstPort: 22 });
    expect(seen).toEqual(expect.arrayContaining(['call tcpListen', 'event tcpListening', 'event tcpAccepted', 'call tcpAdopt']));
    expect(seen.indexOf('event tcpAccepted')).toBeLessThan(seen.indexOf('call tcpAdopt'));
  });

  it('closing the network gives the listener back to the pool, which refuses clients again', async () => {
    const { l } = live();
    const p = await pooled();
    l.openForward(p.rule, p.refusals, p.pool);
    l.close();
    const client = net.connect({ port: p.port, host: '127.0.0.1' });
    client.on('error', () => undefined);
    cleanups.push(() => { client.destroy(); });
    await until(() => p.idle.length === 1, 2000, 'the pool refusing the client');
  });
});
