/**
 * NAT mapping events with real peers: a namespace guest (a Linux stack on a TAP, bridged by
 * socat over the dgram link) sends a UDP datagram through the gateway to a UDP echo server on
 * the host's loopback. The control API's event stream reports `mapping.created` with the
 * guest's endpoint and the public endpoint the echo server saw the datagram come from, and,
 * after the short --nat-udp-timeout with no traffic, `mapping.expired` with reason `timeout`;
 * `tslirp ctl watch` (the real CLI) prints both. A mapping whose session is disconnected
 * through the API expires at once with reason `closed`.
 */
import dgram from 'node:dgram';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_ENTRY, startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, Proc, root, shouldRun, tempDir, until, type RunResult } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('python3')]);
const enabled = shouldRun('mapping-events.int.test.ts (NAT mapping events with a namespace guest)', missing);

/** --nat-udp-timeout of the daemon under test, in seconds. */
const UDP_TIMEOUT_S = 3;
const GUEST_PORT = 40001;
const out = (r: RunResult): string => `${r.stdout}${r.stderr}${r.timedOut ? ' (timed out)' : ''}`;

interface Event {
  readonly name: string;
  readonly data: Record<string, unknown>;
  /** When the test received it (Date.now()). */
  readonly at: number;
}

describe.skipIf(!enabled)('NAT mapping events (a namespace guest, the control API)', () => {
  let dir: string;
  let d: Daemon;
  let g: NetnsGuest;
  let echo: dgram.Socket;
  let stream: http.ClientRequest | undefined;
  let watch: Proc | undefined;
  const events: Event[] = [];
  /** Source endpoints the echo server saw, "ADDR:PORT". */
  const sources: string[] = [];

  beforeAll(async () => {
    dir = tempDir('tslirp-mapev-');
    echo = dgram.createSocket('udp4');
    echo.on('message', (msg, from) => {
      sources.push(`${from.address}:${from.port}`);
      echo.send(msg, from.port, from.address);
    });
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
    const api = join(dir, 'api.sock');
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--nat-udp-timeout', String(UDP_TIMEOUT_S), '--api', `unix:${api}`]);
    // The event stream, parsed as it comes.
    let text = '';
    stream = http.get({ socketPath: api, path: '/v1/events' }, (res) => {
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        let end = text.indexOf('\n\n');
        while (end >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name !== undefined && data !== undefined) events.push({ name, data: JSON.parse(data) as Record<string, unknown>, at: Date.now() });
          end = text.indexOf('\n\n');
        }
      });
    });
    watch = new Proc('ctl watch', process.execPath, [DAEMON_ENTRY, 'ctl', '--api', `unix:${api}`, 'watch']);
    const l = d.dgram();
    g = await NetnsGuest.create({ kind: 'dgram', host: l.host, port: l.port });
  });
  afterAll(async () => {
    stream?.destroy();
    await watch?.stop();
    await g?.destroy();
    await d?.stop();
    echo?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, python3, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('a guest datagram creates a mapping, reported with its public endpoint; idle past the timeout, it expires', async () => {
    const { lease, result } = await g.dhcp();
    expect(lease?.['ip'], out(result)).toBe('10.0.2.15');
    // `ctl watch` is attached once it prints an event: a frame from a new UDP peer starts a
    // session (session.up), once every half second until it does (bounded).
    const l = d.dgram();
    for (let i = 0; i < 30 && !watch!.output.includes('session.up'); i++) {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.send(Buffer.alloc(60, 0xff), l.port, l.host, () => r()));
      s.close();
      await until(() => watch!.output.includes('session.up'), 500);
    }
    expect(watch!.output, watch!.tail()).toContain('session.up');
    const port = echo.address().port;
    const script = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[3])))
s.settimeout(5)
s.sendto(b'mapping please', (sys.argv[1], int(sys.argv[2])))
print(s.recv(100).decode())
`;
    // The mapping's last traffic (the reply) comes after this moment, so it cannot expire before sentAt + timeout.
    const sentAt = Date.now();
    const r = await g.exec(['python3', '-c', script, '10.0.2.2', String(port), String(GUEST_PORT)], 20_000);
    expect(r.stdout.trim(), out(r)).toBe('mapping please');
    expect(sources).toHaveLength(1);

    const isOurs = (e: Event): boolean => e.data['guest'] === `10.0.2.15:${GUEST_PORT}`;
    expect(await until(() => events.some((e) => e.name === 'mapping.created' && isOurs(e)), 5_000), JSON.stringify(events)).toBe(true);
    const created = events.find((e) => e.name === 'mapping.created' && isOurs(e))!;
    // Default NAT (eim/eif, as libslirp): one unbound-to-any socket, open to any sender.
    expect(created.data).toMatchObject({ socket: 'bound', allows: 'any', remote: '0.0.0.0:0', origin: 'guest' });
    // Its public port is the one the echo server saw the datagram come from.
    const publicPort = Number(String(created.data['public']).split(':').at(-1));
    expect(sources[0]).toBe(`127.0.0.1:${publicPort}`);

    // No more traffic: it expires after the timeout, not before (reported within a 250 ms polling period; the budget is a loaded host's).
    expect(await until(() => events.some((e) => e.name === 'mapping.expired' && isOurs(e)), UDP_TIMEOUT_S * 1000 + 10_000), JSON.stringify(events)).toBe(true);
    const expired = events.find((e) => e.name === 'mapping.expired' && isOurs(e))!;
    expect(expired.data).toMatchObject({ reason: 'timeout', id: created.data['id'], public: created.data['public'], packetsFromGuest: 1, packetsToGuest: 1 });
    expect(expired.at - sentAt).toBeGreaterThanOrEqual(UDP_TIMEOUT_S * 1000);
    expect((expired.data['peers'] as unknown[]).length).toBe(1);

    // The CLI's watch printed both, in words.
    expect(await until(() => /mapping\.expired .*10\.0\.2\.15:40001 .*reason=timeout/.test(watch!.output), 5_000), watch!.tail()).toBe(true);
    expect(watch!.output).toMatch(/mapping\.created .*10\.0\.2\.15:40001 -> public 0\.0\.0\.0:\d+ \(bound, allows any\)/);

    // A mapping whose session is disconnected goes before its expiry: reason closed.
    const again = await g.exec(['python3', '-c', script, '10.0.2.2', String(port), String(GUEST_PORT + 1)], 20_000);
    expect(again.stdout.trim(), out(again)).toBe('mapping please');
    const second = (e: Event): boolean => e.data['guest'] === `10.0.2.15:${GUEST_PORT + 1}`;
    expect(await until(() => events.some((e) => e.name === 'mapping.created' && second(e)), 5_000), JSON.stringify(events)).toBe(true);
    // A private network is named after its session.
    const session = String(created.data['network']);
    const status = await new Promise<number>((resolve, reject) => {
      http.request({ socketPath: join(dir, 'api.sock'), method: 'DELETE', path: `/v1/sessions/${session}` }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject).end();
    });
    expect(status).toBe(200);
    expect(await until(() => events.some((e) => e.name === 'mapping.expired' && second(e)), 5_000), JSON.stringify(events)).toBe(true);
    expect(events.find((e) => e.name === 'mapping.expired' && second(e))!.data['reason']).toBe('closed');
    expect(d.alive(), d.dump()).toBe(true);
  }, 90_000);
});
