/**
 * The 1-byte request/response path in process, without sockets or a guest: the round trip of
 * bench/tcp.ts's rr cell as the stack sees it. Each round trip is one guest segment carrying
 * one byte (acknowledging the previous reply), entered as the daemon enters a link read
 * (`beginBatch`, `receiveFrame`, `endBatch`), then one byte from the host (`tcpData`), whose
 * reply is built in place in the stream link's output buffer and flushed. It measures the
 * stack's own CPU per round trip, which the daemon's figure (bench/tcp.ts) cannot resolve on
 * a loaded machine; Node's socket and stream costs are not in it.
 *
 * Baseline in the same run: the guest side's work alone, which the stack's figure also
 * contains (the request built, a frame of its size parsed); the difference is the stack's own. Alternating
 * runs of BENCH_RR_PATH_MS (default 1000) ms each, BENCH_PAIRS (default 5) pairs; medians.
 */
import type { Endpoint, FlowId } from '../src/net/addr.js';
import type { Host } from '../src/net/seams.js';
import { IP_PROTO } from '../src/ipv4/wire.js';
import { StreamOutput } from '../src/link/stream-output.js';
import { resolveStackConfig } from '../src/stack/config.js';
import { Stack } from '../src/stack/stack.js';
import { TCP_FLAG } from '../src/tcp/wire.js';
import { systemClock, seededRandom } from '../src/util/clock.js';
import { decode, ip, ipv4Frame, tcpBytes } from '../test/helpers/frames.js';
import { median } from './lib/measure.js';

const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 5);
const RUN_MS = Number(process.env['BENCH_RR_PATH_MS'] ?? 1000);
const GUEST = ip('10.0.2.15');
const GW = ip('10.0.2.2');
const ONE = new Uint8Array([0x2a]);

let flowId: FlowId | undefined;
let written = 0;
const host: Host = {
  udpOpen: () => undefined, udpSend: () => undefined,
  tcpConnect: (flow: FlowId, _to: Endpoint) => { flowId = flow; },
  tcpWrite: (_flow, data) => { written += data.length; return 0; },
  tcpEnd: () => undefined, tcpPause: () => undefined, tcpReset: () => undefined, close: () => undefined,
  tcpListen: () => undefined, tcpAdopt: () => undefined, tcpRefuse: () => undefined, udpBind: () => undefined, udpSendTo: () => undefined,
};
let last: Uint8Array | undefined;
let sink = 0;
const output = new StreamOutput((bytes, done) => {
  sink += bytes.length; // what the stream link writes
  done();
});
const stack = new Stack(resolveStackConfig({}), {
  clock: systemClock, random: seededRandom(1), host,
  emit: (f) => {
    last = f;
    output.append(f);
  },
  allocFrame: (length, zeroed) => output.alloc(length, zeroed),
});
const guestTcp = (t: Parameters<typeof tcpBytes>[0]): Uint8Array => ipv4Frame({ protocol: IP_PROTO.TCP, src: GUEST, dst: GW, payload: tcpBytes(t, GUEST, GW) });

// Handshake: SYN, host connects, SYN-ACK, ACK.
stack.receiveFrame(guestTcp({ srcPort: 40000, dstPort: 7, flags: TCP_FLAG.SYN, seq: 1000, window: 65535, options: { mss: 1460, windowScale: 7, sackPermitted: true } }));
stack.tcpConnected(flowId!);
let ourNext = (decode(last!).tcp!.seq + 1) >>> 0;
output.flush();
let guestSeq = 1001;
stack.receiveFrame(guestTcp({ srcPort: 40000, dstPort: 7, flags: TCP_FLAG.ACK, seq: guestSeq, ack: ourNext, window: 65535 }));

function roundTrip(): void {
  const request = guestTcp({ srcPort: 40000, dstPort: 7, flags: TCP_FLAG.ACK | TCP_FLAG.PSH, seq: guestSeq, ack: ourNext, window: 65535, payload: ONE });
  stack.beginBatch();
  stack.receiveFrame(request);
  stack.endBatch();
  guestSeq = (guestSeq + 1) >>> 0;
  last = undefined;
  stack.tcpData(flowId!, ONE);
  const reply = decode(last!).tcp!;
  output.flush();
  ourNext = (reply.seq + reply.payload.length) >>> 0;
}

/** The guest side alone: the same request built, and a frame of the same size parsed, as the round trip does. */
function baseline(): void {
  const request = guestTcp({ srcPort: 40000, dstPort: 7, flags: TCP_FLAG.ACK | TCP_FLAG.PSH, seq: guestSeq, ack: ourNext, window: 65535, payload: ONE });
  sink += decode(request).tcp!.payload.length;
}

/** Microseconds per call of `body`, over `ms` ms (bounded: at most 10 M calls). */
function measure(body: () => void, ms: number): number {
  const start = performance.now();
  let n = 0;
  while (n < 10_000_000 && performance.now() - start < ms) {
    for (let i = 0; i < 100; i++) body();
    n += 100;
  }
  return ((performance.now() - start) * 1000) / n;
}

for (let i = 0; i < 20_000; i++) roundTrip(); // JIT warm-up
const stackUs: number[] = [];
const baseUs: number[] = [];
for (let p = 0; p < PAIRS; p++) {
  if (p % 2 === 0) {
    stackUs.push(measure(roundTrip, RUN_MS));
    baseUs.push(measure(baseline, RUN_MS));
  } else {
    baseUs.push(measure(baseline, RUN_MS));
    stackUs.push(measure(roundTrip, RUN_MS));
  }
}
const s = median(stackUs);
const b = median(baseUs);
console.log(
  `1-byte round trip in process: stack ${s.toFixed(2)} µs (runs ${stackUs.map((x) => x.toFixed(2)).join(' ')}), guest-side baseline ${b.toFixed(2)} µs, ` +
    `stack's own ${(s - b).toFixed(2)} µs, ratio ${(s / b).toFixed(2)}${sink < 0 || written < 0 ? '!' : ''}`,
);
if (stack.counters.total() !== 0) console.log('drops', stack.counters.snapshot());
