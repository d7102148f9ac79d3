/**
 * The host→guest TCP path in process, without sockets: a connection established through the
 * stack, then 64 KiB host reads (`tcpData`) segmented for the guest and acknowledged by it,
 * built in place in the stream link's output buffer (StreamOutput, as the daemon does) and
 * handed to a writer that is done with them at once. Reports segments/s and Gbit/s, against
 * a baseline in the same run: copying the same bytes into frames and framing them with no
 * TCP/IP at all.
 */
import type { Endpoint, FlowId } from '../src/net/addr.js';
import type { Host } from '../src/net/seams.js';
import { IP_PROTO } from '../src/ipv4/wire.js';
import { frameStream } from '../src/link/qemu-stream.js';
import { StreamOutput } from '../src/link/stream-output.js';
import { resolveStackConfig } from '../src/stack/config.js';
import { Stack } from '../src/stack/stack.js';
import { TCP_FLAG } from '../src/tcp/wire.js';
import { systemClock, seededRandom } from '../src/util/clock.js';
import { decode, ip, ipv4Frame, tcpBytes } from '../test/helpers/frames.js';

const MTU = Number(process.env['BENCH_MTU'] ?? 1500);
const CHUNK = 64 * 1024;
const GUEST = ip('10.0.2.15');
const GW = ip('10.0.2.2');

let flowId: FlowId | undefined;
const host: Host = {
  udpOpen: () => undefined, udpSend: () => undefined,
  tcpConnect: (flow: FlowId, _to: Endpoint) => { flowId = flow; },
  tcpWrite: () => 0, tcpEnd: () => undefined, tcpPause: () => undefined, tcpReset: () => undefined, close: () => undefined,
  tcpListen: () => undefined, tcpAdopt: () => undefined, tcpRefuse: () => undefined, udpBind: () => undefined, udpSendTo: () => undefined,
};
let pending: Uint8Array[] = [];
let lastSeq = 0;
let lastLen = 0;
let sink = 0;
const output = new StreamOutput((bytes, done) => {
  sink += bytes.length; // what the stream link writes
  done();
});
const stack = new Stack(resolveStackConfig({ mtu: MTU }), {
  clock: systemClock, random: seededRandom(1), host,
  emit: (f) => {
    pending.push(f);
    output.append(f);
  },
  allocFrame: (length, zeroed) => output.alloc(length, zeroed),
});
const guestTcp = (t: Parameters<typeof tcpBytes>[0]) => ipv4Frame({ protocol: IP_PROTO.TCP, src: GUEST, dst: GW, payload: tcpBytes(t, GUEST, GW) });

// Handshake: SYN with window scaling, host connects, SYN-ACK, ACK.
stack.receiveFrame(guestTcp({ srcPort: 40000, dstPort: 5201, flags: TCP_FLAG.SYN, seq: 1000, window: 65535, options: { mss: MTU - 40, windowScale: 7, sackPermitted: true } }));
stack.tcpConnected(flowId!);
const synAck = decode(pending[0]!).tcp!;
let ourNext = (synAck.seq + 1) >>> 0;
pending = [];
stack.receiveFrame(guestTcp({ srcPort: 40000, dstPort: 5201, flags: TCP_FLAG.ACK, seq: 1001, ack: ourNext, window: 65535 }));

const data = new Uint8Array(CHUNK).map((_, i) => i & 0xff);
let frames = 0;
function round(): void {
  stack.tcpData(flowId!, data);
  const out = pending;
  pending = [];
  frames += out.length;
  // The frames' bytes live in the output buffer until this flush; the last is read first.
  const last = decode(out[out.length - 1]!).tcp!;
  output.flush();
  lastSeq = last.seq;
  lastLen = last.payload.length;
  ourNext = (lastSeq + lastLen) >>> 0;
  stack.receiveFrame(guestTcp({ srcPort: 40000, dstPort: 5201, flags: TCP_FLAG.ACK, seq: 1001, ack: ourNext, window: 65535 }));
}

function measure(body: () => void, ms: number): number {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) { body(); n++; }
  return (n * CHUNK * 8) / ((performance.now() - start) / 1000) / 1e9;
}

/** Baseline: the same bytes cut into MSS-sized frames (fresh zeroed arrays) and framed. */
const mss = MTU - 40 - 12;
function baseline(): void {
  const out: Uint8Array[] = [];
  for (let at = 0; at < CHUNK; at += mss) {
    const piece = data.subarray(at, Math.min(CHUNK, at + mss));
    const f = new Uint8Array(14 + 20 + 32 + piece.length);
    f.set(piece, 66);
    out.push(f);
  }
  sink += frameStream(out).length;
}

for (let i = 0; i < 200; i++) round();
frames = 0;
const t0 = performance.now();
const gbps = measure(round, 2000);
const perSeg = ((performance.now() - t0) * 1000) / frames;
const base = measure(baseline, 1000);
console.log(`MTU ${MTU}: stack ${gbps.toFixed(2)} Gbit/s (${perSeg.toFixed(2)} µs/segment), copy-and-frame baseline ${base.toFixed(2)} Gbit/s, ratio ${(gbps / base).toFixed(2)}${sink < 0 ? '!' : ''}`);
if (stack.counters.total() !== 0) console.log('drops', stack.counters.snapshot());
