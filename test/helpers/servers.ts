/**
 * Servers and ports for the integration tests: a free loopback TCP port, busybox httpd in a
 * namespace guest, the wait for a namespace socket to listen, and a GET on the loopback. One copy, shared by the
 * tests that used to define their own.
 */
import http from 'node:http';
import net from 'node:net';
import type { NetnsGuest, Proc } from './guests.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A free loopback TCP port (bound then released). */
export async function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** A namespace guest serving `dir` with busybox httpd on `port` (80), once it listens. */
export async function httpd(g: NetnsGuest, dir: string, port = 80): Promise<Proc> {
  const p = g.spawn(`httpd ${g.ns}`, ['busybox', 'httpd', '-f', '-p', String(port), '-h', dir]);
  await listening(g, port);
  return p;
}

/** Waits (bounded: 10 s) until a TCP socket of the namespace listens on `port`. */
export async function listening(g: NetnsGuest, port: number): Promise<void> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const r = await g.exec(['ss', '-Hltn', `sport = :${port}`], 5_000);
    if (r.stdout.trim() !== '') return;
    await sleep(100);
  }
  throw new Error(`nothing listens on port ${port} in ${g.ns}`);
}

/** GET http://127.0.0.1:port/path: the body, or `ERR code` (ETIMEDOUT after `timeoutMs` without an answer). */
export function httpGet(port: number, path: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((res) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (r) => {
      let body = '';
      r.setEncoding('utf8').on('data', (d: string) => (body += d));
      r.on('end', () => res(body));
      r.on('error', (e) => res(`ERR ${(e as NodeJS.ErrnoException).code ?? String(e)}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => res(`ERR ${(e as NodeJS.ErrnoException).code ?? String(e)}`));
  });
}
