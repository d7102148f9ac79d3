/**
 * A WebSocket-to-stream shim: a WebSocket server on 127.0.0.1 (one Ethernet frame per binary
 * message, the relay protocol v86 and tslirp's WebSocket link speak) that connects each client
 * to a QEMU `-netdev stream` socket (4-byte big-endian length, then the frame) and carries
 * frames both ways unchanged. It puts a SLIRP that has only a stream socket (libslirp as QEMU
 * `-netdev user` on a hub with a `-netdev stream` server) behind the WebSocket path, so that
 * bench/ws.ts can measure it against tslirp's own WebSocket relay. A separate process, so its
 * CPU time is measured apart from the daemon's and the benchmark's.
 *
 *   node --import tsx ws-stream-shim.ts STREAM_SOCKET_PATH | tcp:HOST:PORT | ws://HOST:PORT/
 *
 * With a `ws://` URL it forwards each message unchanged to a WebSocket client of that URL
 * instead (tslirp's own WebSocket listener): the same hop in front of tslirp's WebSocket link
 * as in front of its stream link, so bench/ws.ts can compare the two links on one path.
 *
 * Prints "ws-shim: listening PORT" once it listens; one stream connection per WebSocket
 * client, closed with it. A frame longer than 65535 + 14 bytes or a text message ends that
 * client (counted in the line printed at exit). SIGTERM exits 0, and so does the shim once its
 * parent is gone.
 */
import net from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

const target = process.argv[2];
if (target === undefined) {
  console.error('usage: ws-stream-shim.ts STREAM_SOCKET_PATH | tcp:HOST:PORT | ws://HOST:PORT/');
  process.exit(64);
}
const tcp = /^tcp:(.+):(\d+)$/.exec(target);
const connect = (): net.Socket => (tcp === null ? net.connect({ path: target }) : net.connect({ host: tcp[1]!, port: Number(tcp[2]) }));
/** The largest frame either side carries: QEMU's stream netdev limit (NET_BUFSIZE is larger; tslirp's MTU cap is 65520). */
const MAX_FRAME = 65535 + 14;
let toStream = 0;
let toWs = 0;
let refused = 0;

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: MAX_FRAME });
wss.on('listening', () => {
  console.log(`ws-shim: listening ${(wss.address() as net.AddressInfo).port}`);
});
wss.on('connection', (ws: WebSocket) => {
  if (target.startsWith('ws://')) {
    relayWs(ws);
    return;
  }
  const sock = connect();
  sock.setNoDelay(true);
  let ready = false;
  const early: Buffer[] = [];
  const end = (): void => {
    sock.destroy();
    ws.terminate();
  };
  sock.on('connect', () => {
    ready = true;
    for (const f of early.splice(0)) sock.write(f);
  });
  sock.on('error', end);
  sock.on('close', end);
  ws.on('error', end);
  ws.on('close', end);
  onFrame(ws, end, (data) => {
    // Header and frame in one buffer: one write, as a relay that cares about syscalls would.
    const out = Buffer.allocUnsafe(4 + data.length);
    out.writeUInt32BE(data.length, 0);
    data.copy(out, 4);
    toStream++;
    if (ready) sock.write(out);
    else if (early.length < 256) early.push(out);
  });
  // Stream → WebSocket: frames cut out of the byte stream, each sent as one binary message.
  let pending: Buffer | undefined;
  sock.on('data', (chunk: Buffer) => {
    let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (len > MAX_FRAME) {
        refused++;
        end();
        return;
      }
      if (buf.length - at < 4 + len) break;
      ws.send(buf.subarray(at + 4, at + 4 + len), { binary: true });
      toWs++;
      at += 4 + len;
    }
    buf = buf.subarray(at);
    pending = buf.length > 0 ? Buffer.from(buf) : undefined;
  });
});
/** Each binary message of the client as a frame; a text message ends the relay (frames are binary). */
function onFrame(ws: WebSocket, end: () => void, frame: (data: Buffer) => void): void {
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return frame(data);
    refused++;
    end();
  });
}
/** WebSocket to WebSocket: each message of either side sent on to the other as it came. */
function relayWs(ws: WebSocket): void {
  const up = new WebSocket(target!, { perMessageDeflate: false, maxPayload: MAX_FRAME });
  const early: Buffer[] = [];
  const end = (): void => {
    up.terminate();
    ws.terminate();
  };
  up.on('open', () => {
    for (const f of early.splice(0)) up.send(f, { binary: true });
  });
  for (const w of [up, ws]) {
    w.on('error', end);
    w.on('close', end);
  }
  onFrame(ws, end, (data) => {
    toStream++;
    if (up.readyState === WebSocket.OPEN) up.send(data, { binary: true });
    else if (early.length < 256) early.push(data);
  });
  up.on('message', (data: Buffer) => {
    toWs++;
    ws.send(data, { binary: true });
  });
}

// Bounded by its parent: a benchmark that dies without stopping it does not leave it running.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();
process.on('SIGTERM', () => {
  console.log(`ws-shim: stopping: ${toStream} frames to the stream, ${toWs} to the WebSocket, ${refused} clients refused`);
  process.exit(0);
});
