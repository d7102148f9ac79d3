/**
 * Real Linux TCP against tslirp's TCP translator: a network-namespace guest (the host's own
 * kernel TCP in a fresh namespace, its TAP bridged to the daemon by socat over the dgram link)
 * talks to servers on the host's loopback through the gateway address 10.0.2.2.
 *
 * Covered: 100 MB download and upload, sha256-checked; 200 concurrent connections; refused
 * port within 1 s; half-close (guest FIN, host still answers); the host closing first; a host
 * RST; the same transfers through a lossy bridge (drops, duplicates, reorders); --hostfwd to
 * a server in the guest that sees the right source address; a slow host reader that makes
 * the guest stall on a zero window with flat daemon memory.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, missingRequirements, NetnsGuest, root, shouldRun, tempDir } from '../helpers/guests.js';
import { BLOCKS, patternSha, streamPattern } from '../helpers/pattern.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('curl'), command('sha256sum')]);
const enabled = shouldRun('tcp.int.test.ts (TCP through tslirp from a network namespace guest)', missing);

const MB = 1024 * 1024;
const BIG = 100 * MB;

/** A UDP relay between socat and the daemon that drops, duplicates and reorders datagrams. */
class LossyRelay {
  readonly socket = dgram.createSocket('udp4');
  #peer: { address: string; port: number } | undefined;
  #held: { buf: Buffer; toDaemon: boolean } | undefined;
  #rnd = 12345;
  dropped = 0;
  duplicated = 0;
  reordered = 0;
  readonly daemonPort: number;
  readonly loss: number;
  readonly dup: number;
  readonly reorder: number;
  constructor(daemonPort: number, loss: number, dup: number, reorder: number) {
    this.daemonPort = daemonPort;
    this.loss = loss;
    this.dup = dup;
    this.reorder = reorder;
    this.socket.on('message', (buf, rinfo) => {
      const toDaemon = !(rinfo.port === this.daemonPort && rinfo.address === '127.0.0.1');
      if (toDaemon) this.#peer = { address: rinfo.address, port: rinfo.port };
      this.#relay(buf, toDaemon);
    });
  }
  #rand(): number {
    this.#rnd = (this.#rnd * 1103515245 + 12345) & 0x7fffffff;
    return this.#rnd / 0x80000000;
  }
  #closed = false;
  #send(buf: Buffer, toDaemon: boolean): void {
    // A datagram held back for reordering may come due after close(): it is lost, as on a wire.
    if (this.#closed) return;
    if (toDaemon) this.socket.send(buf, this.daemonPort, '127.0.0.1');
    else if (this.#peer !== undefined) this.socket.send(buf, this.#peer.port, this.#peer.address);
  }
  #relay(buf: Buffer, toDaemon: boolean): void {
    if (this.#rand() < this.loss) {
      this.dropped++;
      return;
    }
    if (this.#rand() < this.dup) {
      this.duplicated++;
      this.#send(buf, toDaemon);
    }
    // Reorder within a window of two: hold this one back and send it after the next.
    if (this.#held === undefined && this.#rand() < this.reorder) {
      this.reordered++;
      this.#held = { buf, toDaemon };
      const held = this.#held;
      setTimeout(() => {
        if (this.#held === held) {
          this.#held = undefined;
          this.#send(held.buf, held.toDaemon);
        }
      }, 2);
      return;
    }
    this.#send(buf, toDaemon);
    if (this.#held !== undefined) {
      const h = this.#held;
      this.#held = undefined;
      this.#send(h.buf, h.toDaemon);
    }
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    return this.socket.address().port;
  }
  close(): void {
    this.#closed = true;
    this.socket.close();
  }
}

describe.skipIf(!enabled)('TCP through tslirp (network namespace guest, real Linux TCP)', () => {
  let d: Daemon;
  let web: http.Server;
  let webPort = 0;
  let raw: net.Server;
  let rawPort = 0;
  let closedPort = 0;
  let fwdPort = 0;
  let dir: string;
  const guests: NetnsGuest[] = [];
  /** What the raw server does with the next connection. */
  let rawMode: (s: net.Socket) => void = (s) => s.destroy();
  const uploads = new Map<string, { bytes: number; sha: string }>();

  beforeAll(async () => {
    dir = tempDir('tslirp-tcp-');
    web = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET') {
        const n = Number(url.searchParams.get('n') ?? BIG);
        res.writeHead(200, { 'content-length': String(n), 'content-type': 'application/octet-stream' });
        streamPattern(n, res, () => res.end());
        return;
      }
      const h = createHash('sha256');
      let bytes = 0;
      const slowMs = Number(url.searchParams.get('slow') ?? 0);
      if (slowMs > 0) {
        // 1 KB/s for `slowMs`, then full speed.
        req.pause();
        const start = Date.now();
        const tick = setInterval(() => {
          if (Date.now() - start >= slowMs) {
            clearInterval(tick);
            req.resume();
            return;
          }
          req.read(1024);   // emits 'data' with what it returns, counted below
        }, 1000);
      }
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
      });
      req.on('end', () => {
        const sha = h.digest('hex');
        uploads.set(url.searchParams.get('id') ?? '', { bytes, sha });
        res.end(`${bytes} ${sha}\n`);
      });
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webPort = (web.address() as net.AddressInfo).port;
    raw = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      rawMode(s);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    rawPort = (raw.address() as net.AddressInfo).port;
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const p2 = net.createServer();
    await new Promise<void>((r) => p2.listen(0, '127.0.0.1', r));
    fwdPort = (p2.address() as net.AddressInfo).port;
    await new Promise((r) => p2.close(r));
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--hostfwd', `tcp:127.0.0.1:${fwdPort}-:8080`, '--log-level', 'info']);
  }, 60_000);

  afterAll(async () => {
    for (const g of guests) await g.destroy();
    await d?.stop();
    web?.close();
    raw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function guest(port?: number): Promise<NetnsGuest> {
    const g = await NetnsGuest.create({ kind: 'dgram', host: '127.0.0.1', port: port ?? d.dgram().port });
    guests.push(g);
    const { lease, result } = await g.dhcp();
    expect(lease, `udhcpc: ${result.stdout}${result.stderr}\n${d.dump()}`).toBeDefined();
    return g;
  }

  it('has what it needs (root, ip, socat, busybox, curl, sha256sum, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  describe('clean link', () => {
    let g: NetnsGuest;
    beforeAll(async () => {
      g = await guest();
    }, 60_000);

    it('downloads 100 MB from a loopback HTTP server via 10.0.2.2, sha256 exact', async () => {
      const t0 = Date.now();
      const r = await g.sh(`busybox wget -q -O - "http://10.0.2.2:${webPort}/big" | sha256sum`, [], 240_000);
      const s = (Date.now() - t0) / 1000;
      console.log(`download 100 MB: ${s.toFixed(1)} s, ${((BIG * 8) / s / 1e6).toFixed(0)} Mbit/s`);
      expect(r.stdout.split(' ')[0], `${r.stderr}\n${d.dump().slice(-3000)}`).toBe(patternSha(BIG));
    }, 250_000);

    it('uploads 100 MB, sha256 exact', async () => {
      const file = join(dir, 'up.bin');
      await new Promise<void>((resolve) => {
        const chunks: Buffer[] = [];
        const w = { write: (b: Buffer) => (chunks.push(Buffer.from(b)), true), once: () => undefined } as unknown as NodeJS.WritableStream;
        streamPattern(BIG, w, () => {
          writeFileSync(file, Buffer.concat(chunks));
          resolve();
        });
      });
      const t0 = Date.now();
      const r = await g.sh(`curl -sS --data-binary @"$1" -H 'content-type: application/octet-stream' "http://10.0.2.2:${webPort}/up?id=big"`, [file], 240_000);
      const s = (Date.now() - t0) / 1000;
      console.log(`upload 100 MB: ${s.toFixed(1)} s, ${((BIG * 8) / s / 1e6).toFixed(0)} Mbit/s`);
      expect(r.stdout.trim(), r.stderr).toBe(`${BIG} ${patternSha(BIG)}`);
      rmSync(file);
    }, 250_000);

    it('runs 200 concurrent connections, each transferring data', async () => {
      const script = `
        i=0; while [ $i -lt 200 ]; do
          (busybox wget -q -O - "http://10.0.2.2:${webPort}/c?n=$((20000 + i * 97))" | wc -c > "$1/c.$i") &
          i=$((i + 1))
        done
        wait
        i=0; while [ $i -lt 200 ]; do cat "$1/c.$i"; i=$((i + 1)); done`;
      const r = await g.sh(script, [dir], 120_000);
      const sizes = r.stdout.trim().split(/\s+/).map(Number);
      expect(sizes).toEqual(Array.from({ length: 200 }, (_, i) => 20000 + i * 97));
    }, 130_000);

    it('nc to a closed host port fails with "connection refused" within 1 s', async () => {
      const t0 = Date.now();
      const r = await g.sh(`busybox nc 10.0.2.2 ${closedPort} < /dev/null`, [], 10_000);
      const ms = Date.now() - t0;
      expect(`${r.stdout}${r.stderr}`).toMatch(/refused/i);
      expect(ms).toBeLessThan(1000);
    });

    it('half-close: the guest sends and shuts down writing, the host still answers', async () => {
      rawMode = (s) => {
        const h = createHash('sha256');
        let n = 0;
        s.on('data', (c: Buffer) => {
          n += c.length;
          h.update(c);
        });
        s.on('end', () => s.end(`got ${n} ${h.digest('hex')}\n`));
      };
      const r = await g.sh(`head -c 300000 /dev/zero | socat -t 10 - TCP:10.0.2.2:${rawPort}`, [], 30_000);
      expect(r.stdout.trim(), r.stderr).toBe(`got 300000 ${createHash('sha256').update(Buffer.alloc(300000)).digest('hex')}`);
    });

    it('the host server closing first: the guest reads everything, then EOF', async () => {
      rawMode = (s) => s.end(Buffer.alloc(500_000, 7));
      const r = await g.sh(`socat -u TCP:10.0.2.2:${rawPort} - | wc -c`, [], 30_000);
      expect(r.stdout.trim()).toBe('500000');
    });

    it('an RST from the host reaches the guest as "connection reset"', async () => {
      rawMode = (s) => s.once('data', () => s.resetAndDestroy());
      const r = await g.sh(`(echo hello; sleep 2) | socat -d - TCP:10.0.2.2:${rawPort}; echo "exit $?"`, [], 30_000);
      expect(r.stderr, `${r.stdout} ${JSON.stringify(r)}`).toMatch(/reset/i);
    });

    it('--hostfwd: a host client reaches a server in the guest, which sees the gateway as the loopback client', async () => {
      const server = g.spawn('guest socat', ['socat', 'TCP-LISTEN:8080,reuseaddr', 'SYSTEM:echo from $SOCAT_PEERADDR']);
      await new Promise((r) => setTimeout(r, 500));
      const reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect({ host: '127.0.0.1', port: fwdPort });
        let text = '';
        c.on('data', (b: Buffer) => (text += b.toString()));
        c.on('end', () => resolve(text));
        c.on('error', reject);
        setTimeout(() => reject(new Error(`no reply; got '${text}'\n${server.tail()}`)), 10_000);
      });
      expect(reply.trim()).toBe('from 10.0.2.2');
      await server.stop();
    });

    it('a slow host reader (1 KB/s) stalls the guest on a zero window with flat memory, then completes exact', async () => {
      const file = join(dir, 'slow.bin');
      const data = Buffer.alloc(24 * MB);
      for (let i = 0; i < data.length; i += 64 * 1024) BLOCKS[(i >>> 16) % 16]!.copy(data, i);
      writeFileSync(file, data);
      const rssBefore = d.rssKiB()!;
      const upload = g.sh(`curl -sS --data-binary @"$1" "http://10.0.2.2:${webPort}/up?id=slow&slow=6000"`, [file], 120_000);
      let rssMax = 0;
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 500));
        rssMax = Math.max(rssMax, d.rssKiB() ?? 0);
      }
      const r = await upload;
      expect(r.stdout.trim(), r.stderr).toBe(`${data.length} ${createHash('sha256').update(data).digest('hex')}`);
      console.log(`slow reader: daemon RSS ${rssBefore} KiB before, at most ${rssMax} KiB while stalled`);
      expect(rssMax - rssBefore).toBeLessThan(64 * 1024);
      rmSync(file);
    }, 130_000);
  });

  describe('lossy link (2 % loss, 1 % duplication, reordering)', () => {
    let g: NetnsGuest;
    let relay: LossyRelay;
    beforeAll(async () => {
      relay = new LossyRelay(d.dgram().port, 0.02, 0.01, 0.02);
      const port = await relay.listen();
      g = await guest(port);
    }, 60_000);
    afterAll(() => relay?.close());

    it('downloads 20 MB byte-exact', async () => {
      const n = 20 * MB;
      const r = await g.sh(`busybox wget -q -O - "http://10.0.2.2:${webPort}/big?n=${n}" | sha256sum`, [], 240_000);
      expect(r.stdout.split(' ')[0], r.stderr).toBe(patternSha(n));
      expect(relay.dropped).toBeGreaterThan(0);
    }, 250_000);

    it('uploads 20 MB byte-exact', async () => {
      const n = 20 * MB;
      const r = await g.sh(`head -c ${n} /dev/zero | curl -sS --data-binary @- "http://10.0.2.2:${webPort}/up?id=lossy"`, [], 240_000);
      expect(r.stdout.trim(), r.stderr).toBe(`${n} ${createHash('sha256').update(Buffer.alloc(n)).digest('hex')}`);
    }, 250_000);
  });
});
