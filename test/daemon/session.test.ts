import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { GuestLink, LinkHandler } from '../../src/link/link.js';
import { Scheduler } from '../../src/daemon/scheduler.js';
import { Session, type LeaseInfo, type SessionNetwork } from '../../src/daemon/session.js';
import type { NetworkPort, PortSink } from '../../src/network/network.js';
import { readCapture } from '../../src/pcap/reader.js';
import { PcapngFileWriter } from '../../src/pcap/pcapng-writer.js';
import { Counters } from '../../src/util/drops.js';
import { ManualClock, systemClock } from '../../src/util/clock.js';
import { hex, toHex } from '../helpers/hex.js';
import { memoryLog } from '../link/test-log.js';

/**
 * A stand-in network: echoes every frame back to the port it came from, counts frames shorter
 * than 14 bytes as drops, and records attach/detach.
 */
class EchoNetwork implements SessionNetwork {
  readonly name = 'echo';
  readonly drops = new Counters();
  attached = 0;
  detached = 0;
  attach(sink: PortSink): NetworkPort {
    this.attached++;
    let gone = false;
    return {
      id: this.attached,
      receive: (frame) => {
        if (gone) return;
        if (frame.length < 14) return this.drops.count('ethernet.truncated');
        sink.send(frame.slice());
      },
      detach: () => {
        if (!gone) this.detached++;
        gone = true;
      },
      get detached() {
        return gone;
      },
    };
  }
  counters(): Record<string, number> {
    return this.drops.snapshot();
  }
  leases(): readonly LeaseInfo[] {
    return [{ mac: '52:54:00:12:34:56', ip: 0x0a00020f, hostname: 'guest', state: 'bound', expiresAtMs: 1 }];
  }
  tcpStats(): Record<string, number> {
    return {};
  }
}

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
    // The timer defers the advance with setImmediate, after the poll phase (scheduler.test.ts);
    // a fake immediate queued during advanceTimersByTime runs with the next pending timers.
    const turn = (): void => { vi.runOnlyPendingTimers(); };
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
    turn();
    expect(calls).toEqual([1500]);
    clock.set(2000);
    vi.advanceTimersByTime(500);
    turn();
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

describe('Session (a port on a stand-in network)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tslirp-session-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function start(pcapDir?: string, pcapFile?: PcapngFileWriter, privateNetwork = true): { s: Session; f: ReturnType<typeof fakeLink>; logs: ReturnType<typeof memoryLog>; net: EchoNetwork; left: Session[] } {
    const logs = memoryLog();
    const f = fakeLink();
    const net = new EchoNetwork();
    const left: Session[] = [];
    const s = new Session({ id: 't-1', link: f.link, network: net, privateNetwork, clock: systemClock, log: logs.log, pcapDir, pcapFile, onLeft: (x) => left.push(x) });
    f.setHandler(s.handler);
    return { s, f, logs, net, left };
  }

  it('logs a line at connect naming its network, moves frames both ways, logs a summary at disconnect', async () => {
    const { s, f, logs, net, left } = start();
    expect(logs.withMsg('session started')).toMatchObject([{ session: 't-1', network: 'echo', kind: 'ws', peer: '127.0.0.1:1234' }]);
    expect(net.attached).toBe(1);
    f.handler().frame(FRAME);
    f.handler().frame(hex`0102`);
    expect(f.sent.map(toHex)).toEqual([toHex(FRAME)]);
    f.link.counters.count('link.tx-overflow', 2);
    await new Promise((r) => setTimeout(r, 20));
    f.link.close('peer closed');
    expect(net.detached).toBe(1);
    expect(left).toEqual([s]);
    await s.ended;
    const [end] = logs.withMsg('session ended');
    expect(end).toMatchObject({
      session: 't-1',
      network: 'echo',
      kind: 'ws',
      peer: '127.0.0.1:1234',
      reason: 'peer closed',
      fromGuestFrames: 2,
      fromGuestBytes: FRAME.length + 2,
      toGuestFrames: 1,
      toGuestBytes: FRAME.length,
      dropTotal: 3,
      drops: { 'ethernet.truncated': 1, 'link.tx-overflow': 2 },
      leases: [{ mac: '52:54:00:12:34:56', ip: '10.0.2.15', hostname: 'guest', state: 'bound' }],
    });
    expect(end!['networkDrops']).toBeUndefined();
    expect(end!['durationMs']).toBeGreaterThanOrEqual(15);
    // After the end: no more frames in.
    f.handler().frame(FRAME);
    expect(s.traffic.fromGuestFrames).toBe(2);
  });

  it('on a shared network keeps its own drops apart from the network-wide ones', async () => {
    const { s, f, logs } = start(undefined, undefined, false);
    f.handler().frame(hex`0102`);
    f.link.counters.count('link.tx-overflow', 1);
    s.close('done');
    s.close('again');
    await s.ended;
    expect(logs.withMsg('session ended')[0]).toMatchObject({ drops: { 'link.tx-overflow': 1 }, networkDrops: { 'ethernet.truncated': 1 }, dropTotal: 1 });
    expect(f.closes).toEqual(['done', 'again']);
  });

  it('captures both directions into its own pcap file, closed at the end', async () => {
    const { s, f, logs } = start(dir);
    f.handler().frame(FRAME);
    s.close('done');
    await s.ended;
    const files = readdirSync(dir).filter((n) => n.endsWith('-t-1.pcap'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^tslirp-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-t-1\.pcap$/);
    const c = readCapture(readFileSync(join(dir, files[0]!)));
    if (typeof c === 'string') throw new Error(c);
    expect(c.packets.map((p) => toHex(p.data))).toEqual([toHex(FRAME), toHex(FRAME)]);
    expect(logs.withMsg('session ended')[0]!['pcap']).toBe(join(dir, files[0]!));
  });

  it('describes a private network\'s session in a pcapng file by link kind and peer alone', async () => {
    const path = join(dir, 'private.pcapng');
    const file = await PcapngFileWriter.open(path);
    const { s } = start(undefined, file);
    s.close('done');
    await s.ended;
    await file.close();
    const c = readCapture(readFileSync(path));
    if (typeof c === 'string') throw new Error(c);
    expect(c.interfaces).toEqual([{ linkType: 1, snaplen: 0, name: 't-1', description: 'ws 127.0.0.1:1234' }]);
  });

  it('captures into a shared pcapng file as an interface named by the session, with directions and its shared network', async () => {
    const path = join(dir, 'shared.pcapng');
    const file = await PcapngFileWriter.open(path);
    const { s, f, logs } = start(undefined, file, false);
    f.handler().frame(FRAME);
    s.close('done');
    await s.ended;
    await file.close();
    const c = readCapture(readFileSync(path));
    if (typeof c === 'string') throw new Error(c);
    expect(c.interfaces).toEqual([{ linkType: 1, snaplen: 0, name: 't-1', description: 'ws 127.0.0.1:1234 network echo' }]);
    expect(c.packets.map((p) => [p.direction, toHex(p.data)])).toEqual([
      ['inbound', toHex(FRAME)],
      ['outbound', toHex(FRAME)],
    ]);
    expect(logs.withMsg('session ended')[0]!['pcap']).toBe(`${path}#0`);
  });
});
