/**
 * The scheduler runs a due timer's advance after the event loop has read the sockets: a
 * daemon that was off the CPU past an RTO must see the guest's ACKs before its retransmission
 * timer decides they never came (bench/qemu-path.ts, a slow TCG guest on a loaded machine).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/daemon/scheduler.js';
import { systemClock } from '../../src/util/clock.js';

/** Keeps the thread busy for `ms`: the stand-in for a daemon that had no core. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

describe('Scheduler and input that arrived while the process did not run', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('reads the bytes waiting in a socket before it advances a timer that came due meanwhile', async () => {
    const order: string[] = [];
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => server.close());
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    cleanup.push(() => client.destroy());
    await new Promise<void>((r) => client.once('connect', () => r()));
    const peer = await accepted;
    cleanup.push(() => peer.destroy());
    const got = new Promise<void>((r) => peer.once('data', () => {
      order.push('ack read');
      r();
    }));

    let deadline: number | undefined = systemClock.now() + 10;
    const advanced = new Promise<void>((r) => {
      const s = new Scheduler({ advance: () => {
        order.push('timer advanced');
        deadline = undefined;
        r();
      }, nextDeadline: () => deadline }, systemClock);
      cleanup.push(() => s.stop());
      s.rearm();
    });
    // The ACK arrives before the deadline, but the process gets no core until well after it.
    client.write('ack');
    busy(60);
    await Promise.all([got, advanced]);
    expect(order).toEqual(['ack read', 'timer advanced']);
  });

  it('stop() also cancels an advance already deferred', async () => {
    let advances = 0;
    const s = new Scheduler({ advance: () => { advances++; }, nextDeadline: () => 0 }, systemClock);
    s.rearm();
    await new Promise((r) => setTimeout(r, 0)); // the timer fires, the advance is deferred
    s.stop();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
    expect(advances).toBe(0);
    expect(s.armed).toBe(false);
  });
});
