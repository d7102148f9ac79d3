/**
 * The file the emulator benchmarks download: `size` bytes of a pattern that no compressor or
 * dedup shortcut flattens, served over HTTP on 127.0.0.1 (any path), with its sha256 for the
 * guest's check.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';

export interface PatternServer {
  readonly port: number;
  /** sha256 of the body, hex. */
  readonly sha: string;
  close(): void;
}

export async function patternServer(size: number): Promise<PatternServer> {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 13 + (i >> 12)) & 0xff;
  const sha = createHash('sha256').update(data).digest('hex');
  const web = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(size) });
    res.end(data);
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  return { port: (web.address() as net.AddressInfo).port, sha, close: () => web.close() };
}
