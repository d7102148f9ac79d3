/**
 * What the WebSocket frames link costs per frame against the stream link, the links alone
 * (issue 15's "as cheap per frame as the stream link"): no stack, no guest, no host sockets,
 * both over TCP loopback, so that what differs is the link's own code and nothing else. The
 * links run in a child process (this file with `--links`, the built daemon's modules from
 * dist/) behind their real listeners (`listenWs` with the frames route, `listenStream` on
 * tcp:); its CPU time (user and system apart) is read around each cell. This process is the
 * peer: it writes prebuilt frames (masked, for the WebSocket) and reads what comes back.
 *
 * Cells, each link once per round in alternation (the order rotating), BENCH_PAIRS rounds
 * (default 5) after an unmeasured warm-up round; ratios are medians of same-round ratios:
 * - rx burst: 1514-byte frames from the peer, 20 to a write (a bulk transfer's batch);
 * - rx single: 1514-byte frames one to a write (what a slow relay client sends);
 * - tx burst: 1514-byte frames to the peer, 20 per event-loop turn (`allocFrame`, filled, `send`);
 * - tx single: one frame per turn.
 * The peer's reading is the same for both links (bytes counted, frames not parsed).
 *
 * `npm run bench -- link-cost` (about half a minute; no root needed). Needs a build (dist/).
 * Environment: BENCH_PAIRS, BENCH_CELLS (rx-burst,rx-single,tx-burst,tx-single), LINKS_NODE_ARGS
 * (node flags of the links' process, e.g. `--cpu-prof`), LINKS_DIST (another build's dist/ to
 * take the links from, for an A/B of two builds).
 */
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { IpcChild } from './lib/ipc-child.js';
import { median } from './lib/measure.js';

const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 5);
const FRAME = 1514;
const KINDS = ['ws', 'stream'] as const;
type Kind = (typeof KINDS)[number];
interface Cell { readonly id: string; readonly name: string; readonly dir: 'rx' | 'tx'; readonly perBatch: number; readonly frames: number }
const CELLS: readonly Cell[] = ([
  { id: 'rx-burst', name: 'rx burst (20 per write)', dir: 'rx', perBatch: 20, frames: 200_000 },
  { id: 'rx-single', name: 'rx single (1 per write)', dir: 'rx', perBatch: 1, frames: 40_000 },
  { id: 'tx-burst', name: 'tx burst (20 per turn)', dir: 'tx', perBatch: 20, frames: 200_000 },
  { id: 'tx-single', name: 'tx single (1 per turn)', dir: 'tx', perBatch: 1, frames: 40_000 },
] satisfies Cell[]).filter((c) => (process.env['BENCH_CELLS'] ?? 'rx-burst,rx-single,tx-burst,tx-single').split(',').includes(c.id));

type ToLinks = { op: 'rx'; kind: Kind; frames: number } | { op: 'tx'; kind: Kind; frames: number; perBatch: number };
type FromLinks = { op: 'ports'; ws: number; stream: number } | { op: 'ready' } | { op: 'done'; user: number; system: number; dropped: number };

const REPO = join(fileURLToPath(import.meta.url), '..', '..');

// ---------------------------------------------------------------------------------------
// The links' process.

async function linksMain(): Promise<void> {
  const dist = (p: string): string => pathToFileURL(join(process.env['LINKS_DIST'] ?? join(REPO, 'dist'), p)).href;
  const { listenWs } = (await import(dist('link/ws-server.js'))) as typeof import('../src/link/ws-server.js');
  const { wsFramesRoute } = (await import(dist('link/ws-frames.js'))) as typeof import('../src/link/ws-frames.js');
  const { listenStream } = (await import(dist('link/qemu-stream.js'))) as typeof import('../src/link/qemu-stream.js');
  type Link = import('../src/link/link.js').GuestLink;
  const log = { debug: () => undefined, info: () => undefined, warn: (o: unknown, m: string) => console.warn(m, o), error: (o: unknown, m: string) => console.error(m, o) };
  const links = new Map<Kind, Link>();
  let rxLeft = 0;
  let cpu0 = process.cpuUsage();
  const finish = (dropped: number): void => {
    const c = process.cpuUsage(cpu0);
    process.send!({ op: 'done', user: c.user / 1e6, system: c.system / 1e6, dropped } satisfies FromLinks);
  };
  const accept = (kind: Kind) => (link: Link) => {
    links.set(kind, link);
    return {
      frame(f: Uint8Array): void {
        if (f.length !== FRAME) throw new Error(`${kind}: frame of ${f.length} bytes`);
        if (rxLeft > 0 && --rxLeft === 0) finish(0);
      },
      closed: () => undefined,
    };
  };
  const ws = await listenWs({ host: '127.0.0.1', port: 0, log });
  ws.route('/', wsFramesRoute(accept('ws'), log, 1 << 20));
  const stream = await listenStream({ transport: 'tcp', host: '127.0.0.1', port: 0 }, { accept: accept('stream'), log, txQueueLimitBytes: 1 << 20 });
  process.send!({ op: 'ports', ws: ws.address.port, stream: (stream.address as { port: number }).port } satisfies FromLinks);
  process.on('message', (m: ToLinks) => {
    const link = links.get(m.kind)!;
    cpu0 = process.cpuUsage();
    if (m.op === 'rx') {
      rxLeft = m.frames;
      process.send!({ op: 'ready' } satisfies FromLinks);
      return;
    }
    // tx: perBatch frames per turn, built in place as the stack builds them; a batch the
    // socket has no room for is dropped by the link and counted, and the next waits 1 ms.
    let left = m.frames;
    const drops0 = link.counters.get('link.tx-overflow');
    let dropsSeen = drops0;
    const turn = (): void => {
      for (let i = 0; i < m.perBatch && left > 0; i++, left--) {
        const f = link.allocFrame!(FRAME, false);
        f.fill(0x5a, 0, 64);
        link.send(f);
      }
      if (left === 0) {
        setTimeout(() => finish(link.counters.get('link.tx-overflow') - drops0), 50); // the last flush and write
        return;
      }
      const drops = link.counters.get('link.tx-overflow');
      if (drops !== dropsSeen) {
        dropsSeen = drops;
        setTimeout(turn, 1);
      } else setImmediate(turn);
    };
    turn();
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------
// The peer (this process).

/** The links under test: this file with `--links`, in its own process (LINKS_NODE_ARGS: its node flags). */
class Links extends IpcChild<ToLinks, FromLinks> {
  constructor() {
    super(fileURLToPath(import.meta.url), '--links', (process.env['LINKS_NODE_ARGS'] ?? '').split(' ').filter(Boolean));
  }
}

/** `count` frames in the link's framing, one buffer: masked client frames for the WebSocket, length-prefixed for the stream. */
function batch(kind: Kind, count: number): Buffer {
  const one = Buffer.alloc(kind === 'ws' ? 2 + 2 + 4 + FRAME : 4 + FRAME);
  if (kind === 'ws') {
    one[0] = 0x82;
    one[1] = 0x80 | 126;
    one.writeUInt16BE(FRAME, 2);
    one.writeUInt32BE(0x1234_5678, 4); // the mask; the payload is its pattern, unmasked to zeros
    for (let i = 0; i < FRAME; i++) one[8 + i] = one[4 + (i & 3)]!;
  } else one.writeUInt32BE(FRAME, 0);
  return Buffer.concat(Array.from({ length: count }, () => one));
}

interface Peer { readonly socket: net.Socket; received: number }

async function connect(kind: Kind, port: number): Promise<Peer> {
  let socket: net.Socket;
  if (kind === 'ws') {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    await new Promise<void>((r, j) => ws.once('open', r).once('error', j));
    socket = (ws as unknown as { _socket: net.Socket })._socket;
    // From here the peer reads and writes the socket itself (ws never sees it again).
    socket.removeAllListeners('data');
  } else {
    socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  }
  const peer: Peer = { socket, received: 0 };
  socket.on('data', (c: Buffer) => {
    peer.received += c.length;
  });
  return peer;
}

async function rx(links: Links, kind: Kind, peer: Peer, cell: Cell): Promise<{ user: number; system: number }> {
  const buf = batch(kind, cell.perBatch);
  await links.next('ready', { op: 'rx', kind, frames: cell.frames });
  const done = links.next('done');
  const deadline = performance.now() + 60_000;
  for (let sent = 0; sent < cell.frames; sent += cell.perBatch) {
    if (!peer.socket.write(buf)) await new Promise((r) => peer.socket.once('drain', r));
    if (performance.now() > deadline) throw new Error(`${kind} ${cell.name}: not done in 60 s`);
  }
  return done;
}

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const links = new Links();
  try {
    const ports = await links.next('ports');
    const peers = new Map<Kind, Peer>([
      ['ws', await connect('ws', ports.ws)],
      ['stream', await connect('stream', ports.stream)],
    ]);
    await new Promise((r) => setTimeout(r, 200));
    console.log(`links alone over TCP loopback, ${FRAME}-byte frames; daemon-side CPU µs per frame (user + system), ${PAIRS} rounds after a warm-up`);
    for (const cell of CELLS) {
      const per = new Map<Kind, { total: number[]; user: number[]; system: number[] }>(KINDS.map((k) => [k, { total: [], user: [], system: [] }]));
      for (let round = -1; round < PAIRS; round++) {
        for (const kind of KINDS.map((_, i) => KINDS[(i + Math.max(round, 0)) % KINDS.length]!)) {
          const peer = peers.get(kind)!;
          let r: { user: number; system: number; dropped?: number };
          let frames = cell.frames;
          if (cell.dir === 'rx') r = await rx(links, kind, peer, cell);
          else {
            const done = await links.next('done', { op: 'tx', kind, frames: cell.frames, perBatch: cell.perBatch });
            r = done;
            frames -= done.dropped;
          }
          if (round < 0) continue;
          const x = per.get(kind)!;
          x.user.push((r.user * 1e6) / frames);
          x.system.push((r.system * 1e6) / frames);
          x.total.push(((r.user + r.system) * 1e6) / frames);
        }
      }
      const ws = per.get('ws')!;
      const st = per.get('stream')!;
      const ratios = ws.total.map((t, i) => t / st.total[i]!);
      const fmt = (x: { total: number[]; user: number[]; system: number[] }): string => `${median(x.total).toFixed(2)} (user ${median(x.user).toFixed(2)}, system ${median(x.system).toFixed(2)})`;
      console.log(`  ${cell.name.padEnd(24)} ws ${fmt(ws)}  stream ${fmt(st)}  ws/stream ${median(ratios).toFixed(2)}× (rounds ${ratios.map((q) => q.toFixed(2)).join(' ')})`);
    }
    for (const p of peers.values()) p.socket.destroy();
  } finally {
    links.child.disconnect(); // the links exit (and write a profile when asked to)
  }
  console.log(`load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
}

if (process.argv.includes('--links')) await linksMain();
else await main();
