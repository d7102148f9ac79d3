/**
 * The `corpus` target of `npm run fuzz`: the recordings of pcaps/ as seeds. Each seed is a
 * window of up to 31 guest frames of one recording (its start, where the leases and
 * handshakes are, and windows further in); mutation is the frame targets' structure-aware
 * one (`mutateFrames`: bit flips, interesting values at length, flag and offset fields,
 * truncation and growth, dropped, duplicated, swapped and spliced frames, checksums fixed
 * half the time so that mutations get past them). A run feeds the frames to a network built
 * with the recording's own configuration, each frame to the port of the guest whose MAC sent
 * it, on a manual clock, against a fake host that answers like a real one (connects succeed
 * or are refused, written bytes are answered, ends close): no throw, no internal error the
 * stack caught, tables and memory bounded (`check`).
 *
 * An input is `encodeFrames([header, ...frames])`; the header (`TSLR` and a byte) picks the
 * recording; an input whose first frame is not one (mutation moved it) runs on the first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DnsStaticRecord } from '../../src/dns/records.js';
import type { Endpoint } from '../../src/net/addr.js';
import { Network, type NetworkPort } from '../../src/network/network.js';
import { readCapture } from '../../src/pcap/reader.js';
import { decodeEntry, isEntryBlock, RECORDING_PEN, type NetworkEntry } from '../../src/replay/format.js';
import { restoreConfig } from '../../src/replay/replay.js';
import type { StackConfig } from '../../src/stack/config.js';
import { macKey } from '../../src/util/bytes.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { decodeFrames, encodeFrames, mutateFrames } from './targets.js';
import type { FuzzTarget } from './engine.js';

const PCAPS = resolve(import.meta.dirname, '..', '..', 'pcaps');
const WINDOW = 31;
/** Windows taken from one recording: its start and evenly spread ones after it. */
const WINDOWS_PER_RECORDING = 3;
/** A fresh network every this many inputs: long-lived state is fuzzed too, but not without end. */
const FRESH_EVERY = 100;
/** The heap a run may grow to (the engine's corpus and V8's coverage included) before it is a finding. */
const MAX_HEAP_BYTES = 1536 << 20;

interface Recording {
  readonly name: string;
  readonly config: StackConfig;
  readonly dnsUpstreams: readonly Endpoint[];
  readonly dnsRecords: readonly DnsStaticRecord[];
  /** Guest MAC (macKey) → port index. */
  readonly ports: ReadonlyMap<number, number>;
  readonly portCount: number;
  readonly frames: readonly Uint8Array[];
}

/** The corpus's recordings: configuration, guests and their frames (a recording that does not load is an error: the corpus test says why). */
export function loadRecordings(dir = PCAPS): Recording[] {
  const out: Recording[] = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.pcapng')).sort()) {
    const c = readCapture(new Uint8Array(readFileSync(join(dir, name))), { records: true });
    if (typeof c === 'string') throw new Error(`${name}: ${c}`);
    let net: NetworkEntry | undefined;
    for (const r of c.records ?? []) {
      if (r.kind !== 'custom' || r.block.pen !== RECORDING_PEN || !isEntryBlock(r.block.data)) continue;
      const e = decodeEntry(r.block.data);
      if (typeof e !== 'string' && e.k === 'network') net = e;
      break;
    }
    if (net === undefined) throw new Error(`${name}: no network entry`);
    const ports = new Map<number, number>();
    const frames: Uint8Array[] = [];
    for (const p of c.packets) {
      if (p.linkType !== 1 || p.direction !== 'inbound' || p.data.length < 14) continue;
      const port = p.interfaceId === 0 ? 0 : p.interfaceId - 1;
      const mac = macKey(p.data, 6);
      if (!ports.has(mac)) ports.set(mac, port);
      frames.push(p.data.slice());
    }
    out.push({
      name,
      config: restoreConfig(net.config),
      dnsUpstreams: net.dnsUpstreams as Endpoint[],
      dnsRecords: (net.dnsRecords as DnsStaticRecord[]).map((r) => ({ ...r, rdata: r.rdata.slice() })),
      ports,
      portCount: Math.max(1, ...[...ports.values()].map((p) => p + 1)),
      frames,
    });
  }
  return out;
}

const header = (i: number): Uint8Array => Uint8Array.of(0x54, 0x53, 0x4c, 0x52, i);
const isHeader = (f: Uint8Array | undefined): f is Uint8Array => f?.length === 5 && f[0] === 0x54 && f[1] === 0x53 && f[2] === 0x4c && f[3] === 0x52;

/** Seeds: windows of each recording's guest frames behind its header. */
export function corpusSeeds(recs: readonly Recording[]): Uint8Array[] {
  const seeds: Uint8Array[] = [];
  recs.forEach((r, i) => {
    const starts = new Set([0]);
    for (let k = 1; k < WINDOWS_PER_RECORDING && r.frames.length > WINDOW * k; k++) starts.add(Math.floor((r.frames.length * k) / WINDOWS_PER_RECORDING));
    for (const s of starts) seeds.push(encodeFrames([header(i), ...r.frames.slice(s, s + WINDOW)]));
  });
  return seeds;
}

export function corpusTarget(recs: readonly Recording[] = loadRecordings()): FuzzTarget {
  if (recs.length === 0) throw new Error('pcaps/ has no recording');
  const nets = new Map<number, { net: Network; ports: NetworkPort[]; host: FakeHost; clock: ManualClock; handled: number; runs: number }>();
  let runs = 0;
  const networkFor = (i: number): NonNullable<ReturnType<typeof nets.get>> => {
    const had = nets.get(i);
    if (had !== undefined && had.runs < FRESH_EVERY) return had;
    const r = recs[i]!;
    const clock = new ManualClock(0);
    const host = new FakeHost();
    const net = new Network(`fuzz-${r.name}`, r.config, { clock, random: seededRandom(runs), host, dnsUpstreams: r.dnsUpstreams, dnsRecords: r.dnsRecords });
    const ports = Array.from({ length: r.portCount }, () => net.attach({ send: () => undefined }));
    const fresh = { net, ports, host, clock, handled: 0, runs: 0 };
    nets.set(i, fresh);
    return fresh;
  };
  /** Plays the host's part for the calls made since last time. */
  const answer = (n: NonNullable<ReturnType<typeof nets.get>>): void => {
    const calls = n.host.calls;
    const s = n.net.stack;
    for (; n.handled < calls.length; n.handled++) {
      const [method, id] = calls[n.handled]!;
      switch (method) {
        case 'tcpConnect':
          if (id % 7 === 0) s.tcpError(id, 'ECONNREFUSED');
          else s.tcpConnected(id);
          break;
        case 'tcpWrite':
          s.tcpData(id, new Uint8Array(1 + (id % 3) * 700).fill(id & 0xff));
          if (id % 4 === 0) s.tcpEnd(id);
          if (id % 11 === 0) s.tcpError(id, 'ECONNRESET');
          break;
        case 'udpSend': {
          const data = calls[n.handled]![2] as Uint8Array;
          s.udpReceived(id, data.slice(0, 512));
          if (id % 9 === 0) s.udpError(id, 'ECONNREFUSED');
          break;
        }
        case 'tcpEnd':
          s.tcpEnd(id);
          s.tcpClosed(id);
          break;
        case 'tcpPause':
          s.tcpDrained(id);
          break;
      }
    }
  };
  return {
    name: 'corpus',
    seeds: () => corpusSeeds(recs),
    run(input) {
      runs++;
      const all = decodeFrames(input);
      const first = all[0];
      const which = isHeader(first) ? first[4]! % recs.length : 0;
      const frames = isHeader(first) ? all.slice(1) : all;
      const n = networkFor(which);
      n.runs++;
      const byMac = recs[which]!.ports;
      n.net.stack.beginBatch();
      try {
        for (const f of frames) {
          const port = f.length >= 12 ? (byMac.get(macKey(f, 6)) ?? 0) : 0;
          n.ports[port]!.receive(f);
          answer(n);
          n.clock.advance(5);
        }
      } finally {
        n.net.stack.endBatch();
      }
      // Time passes: retransmissions, keepalives, lease and flow expiry run.
      n.clock.advance(runs % 13 === 0 ? 300_000 : runs % 5 === 0 ? 3_000 : 50);
      n.net.advance();
      answer(n);
      return frames.length;
    },
    mutate: mutateFrames,
    check() {
      for (const n of nets.values()) {
        const s = n.net.stack;
        if (s.counters.get('stack.internal-error') > 0) throw new Error(`stack internal error: ${String(s.lastError)}`);
        if (n.host.calls.length > 1_000_000) throw new Error('the fake host saw unbounded calls');
        if (n.net.leases().length > n.net.config.dhcpPoolSize) throw new Error('more leases than the pool');
        if (s.flows().length > 4096 + 16384) throw new Error(`${s.flows().length} flows: more than the flow table's limits`);
      }
      const heap = process.memoryUsage().heapUsed;
      if (heap > MAX_HEAP_BYTES) throw new Error(`heap ${heap >> 20} MiB`);
    },
  };
}
