import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { GuestLink, LinkHandler } from '../../src/link/link.js';
import { Scheduler } from '../../src/daemon/scheduler.js';
import { Session, type LeaseInfo, type SessionStack, type SessionStackDeps, type StackFactory } from '../../src/daemon/session.js';
import { readCapture } from '../../src/pcap/reader.js';
import { PcapngFileWriter } from '../../src/pcap/pcapng-writer.js';
import { resolveStackConfig, type StackConfig } from '../../src/stack/config.js';
import { Counters } from '../../src/util/drops.js';
import { ManualClock, seededRandom, systemClock } from '../../src/util/clock.js';
import { hex, toHex } from '../helpers/hex.js';
import { memoryLog, until } from '../link/test-log.js';

/**
 * A stand-in stack: echoes every frame, counts frames shorter than 14 bytes as drops, and
 * after each frame arms a timer `delayMs` later that emits a fixed "tick" frame.
 */
class EchoStack implements SessionStack {
  readonly counters = new Counters();
  readonly configs: StackConfig[] = [];
  lastError: unknown;
  #deadline: number | undefined;
  readonly #deps: SessionStackDeps;
  readonly #delayMs: number;
  advances = 0;
  disposed = 0;
  /** As a host socket event would: emit now, arm the timer, and poke the session. */
  hostEvent(): void {
    this.#deps.emit(FRAME);
    this.#deadline = this.#deps.clock.now() + this.#delayMs;
    this.#deps.poke();
  }
  dispose(): void {
    this.disposed++;
  }
  constructor(config: StackConfig, deps: SessionStackDeps, delayMs: number) {
    this.configs.push(config);
    this.#deps = deps;
    this.#delayMs = delayMs;
  }
  receiveFrame(frame: Uint8Array): void {
    if (frame.length < 14) return this.counters.count('ethernet.truncated');
    if (frame[0] === 0xee) this.lastError = new Error('boom');
    this.#deps.emit(frame.slice());
    this.#deadline = this.#deps.clock.now() + this.#delayMs;
  }
  advance(): void {
    this.advances++;
    if (this.#deadline !== undefined && this.#deps.clock.now() >= this.#deadline) {
      this.#deadline = undefined;
      this.#deps.emit(TICK);
    }
  }
  nextDeadline(): number | undefined {
    return this.#deadline;
  }
  leases(): readonly LeaseInfo[] {
    return [{ mac: '52:54:00:12:34:56', ip: 0x0a00020f, hostname: 'guest', state: 'bound', expiresAtMs: 1 }];
  }
}

const TICK = hex`ffffffffffff 52550a000202 88b5 7469636b`;
const FRAME = hex`52550a000202 525400123456 0800 45000014`;

/** A link that records what the session sends. */
function fakeLink(): { link: GuestLink; sent: Uint8Array[]; closes: string[]; handler: () => LinkHandler; setHandler: (h: LinkHandler) => void } {
  const sent: Uint8Array[] = [];
  const closes: string[] = [];
  let h: LinkHandler | undefined;
  const counters = new Counters();
  return {
    sent,
    closes,
    handler: () => h!,
    setHandler: (x) => {
      h = x;
    },
    link: {
      kind: 'ws',
      peer: '127.0.0.1:1234',
      counters,
      send: (f) => {
        sent.push(f);
      },
      close: (r) => {
        closes.push(r);
        h?.closed(r);
      },
    },
  };
}

describe('Scheduler', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('arms one timer at the stack deadline and advances when it fires', () => {
    vi.useFakeTimers();
    const clock = new ManualClock(1000);
    let deadline: number | undefined = 1500;
    const calls: number[] = [];
    const s = new Scheduler(
      {
        advance: () => {
          calls.push(clock.now());
          deadline = deadline === 1500 ? 2000 : undefined;
        },
        nextDeadline: () => deadline,
      },
      clock,
    );
    s.rearm();
    s.rearm(); // re-arming replaces, never adds
    expect(vi.getTimerCount()).toBe(1);
    clock.set(1500);
    vi.advanceTimersByTime(500);
    expect(calls).toEqual([1500]);
    clock.set(2000);
    vi.advanceTimersByTime(500);
    expect(calls).toEqual([1500, 2000]);
    expect(s.armed).toBe(false); // idle: no timer
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops for good', () => {
    vi.useFakeTimers();
    const clock = new ManualClock(0);
    const s = new Scheduler({ advance: () => undefined, nextDeadline: () => 10 }, clock);
    s.rearm();
    s.stop();
    s.rearm();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('Session (with a stand-in stack)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tslirp-session-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function start(pcapDir?: string, pcapFile?: PcapngFileWriter): { s: Session; f: ReturnType<typeof fakeLink>; logs: ReturnType<typeof memoryLog>; stacks: EchoStack[]; config: StackConfig } {
    const logs = memoryLog();
    const f = fakeLink();
    const stacks: EchoStack[] = [];
    const createStack: StackFactory = (config, deps) => {
      const st = new EchoStack(config, deps, 30);
      stacks.push(st);
      return st;
    };
    const config = resolveStackConfig();
    const s = new Session({ id: 't-1', link: f.link, config, createStack, clock: systemClock, random: seededRandom(1), log: logs.log, pcapDir, pcapFile });
    f.setHandler(s.handler);
    return { s, f, logs, stacks, config };
  }

  it('logs a line at connect, moves frames both ways, runs the stack timer, logs a summary at disconnect', async () => {
    const { s, f, logs, stacks, config } = start();
    expect(logs.withMsg('session started')).toMatchObject([{ session: 't-1', kind: 'ws', peer: '127.0.0.1:1234' }]);
    // Its own copy of the configuration.
    expect(stacks[0]!.configs[0]).not.toBe(config);
    expect(stacks[0]!.configs[0]!.gatewayMac).not.toBe(config.gatewayMac);
    expect(stacks[0]!.configs[0]).toEqual(config);
    f.handler().frame(FRAME);
    f.handler().frame(hex`0102`);
    expect(f.sent.map(toHex)).toEqual([toHex(FRAME)]);
    await until(() => f.sent.length === 2, 2000, 'the timer frame');
    expect(toHex(f.sent[1]!)).toBe(toHex(TICK));
    f.link.counters.count('link.tx-overflow', 2);
    f.link.close('peer closed');
    await s.ended;
    const [end] = logs.withMsg('session ended');
    expect(end).toMatchObject({
      session: 't-1',
      kind: 'ws',
      peer: '127.0.0.1:1234',
      reason: 'peer closed',
      fromGuestFrames: 2,
      fromGuestBytes: FRAME.length + 2,
      toGuestFrames: 2,
      toGuestBytes: FRAME.length + TICK.length,
      dropTotal: 3,
      drops: { 'ethernet.truncated': 1, 'link.tx-overflow': 2 },
      leases: [{ mac: '52:54:00:12:34:56', ip: '10.0.2.15', hostname: 'guest', state: 'bound' }],
    });
    expect(end!['durationMs']).toBeGreaterThanOrEqual(30);
    // After the end: no more frames in, no timer.
    f.handler().frame(FRAME);
    expect(s.traffic.fromGuestFrames).toBe(2);
  });

  it('runs the timer after a host event pokes the session, and disposes the stack at the end', async () => {
    const { s, f, stacks } = start();
    stacks[0]!.hostEvent();
    await until(() => f.sent.length === 2, 2000, 'the timer frame after a poke');
    expect(toHex(f.sent[1]!)).toBe(toHex(TICK));
    s.close('done');
    s.close('again');
    expect(stacks[0]!.disposed).toBe(1);
  });

  it('reports a stack internal error once', () => {
    const { s, f, logs } = start();
    f.handler().frame(hex`ee ${toHex(FRAME.subarray(1))}`);
    f.handler().frame(FRAME);
    expect(logs.records.filter((r) => r['msg'] === 'stack internal error (frame dropped)')).toHaveLength(1);
    s.close('test over');
    expect(f.closes).toEqual(['test over']);
  });

  it('captures both directions into its own pcap file, closed at the end', async () => {
    const { s, f, logs } = start(dir);
    f.handler().frame(FRAME);
    await until(() => f.sent.length === 2);
    s.close('done');
    await s.ended;
    const files = readdirSync(dir).filter((n) => n.endsWith('-t-1.pcap'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^tslirp-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-t-1\.pcap$/);
    const c = readCapture(readFileSync(join(dir, files[0]!)));
    if (typeof c === 'string') throw new Error(c);
    expect(c.packets.map((p) => toHex(p.data))).toEqual([toHex(FRAME), toHex(FRAME), toHex(TICK)]);
    expect(logs.withMsg('session ended')[0]!['pcap']).toBe(join(dir, files[0]!));
  });

  it('captures into a shared pcapng file as an interface named by the session, with directions', async () => {
    const path = join(dir, 'shared.pcapng');
    const file = await PcapngFileWriter.open(path);
    const { s, f, logs } = start(undefined, file);
    f.handler().frame(FRAME);
    await until(() => f.sent.length === 2);
    s.close('done');
    await s.ended;
    await file.close();
    const c = readCapture(readFileSync(path));
    if (typeof c === 'string') throw new Error(c);
    expect(c.interfaces).toEqual([{ linkType: 1, snaplen: 0, name: 't-1', description: 'ws 127.0.0.1:1234' }]);
    expect(c.packets.map((p) => [p.direction, toHex(p.data)])).toEqual([
      ['inbound', toHex(FRAME)],
      ['outbound', toHex(FRAME)],
      ['outbound', toHex(TICK)],
    ]);
    expect(logs.withMsg('session ended')[0]!['pcap']).toBe(`${path}#0`);
  });
});
