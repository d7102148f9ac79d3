/**
 * `--hostfwd udp:` with a real guest: a namespace guest (real Linux UDP, behind a TAP bridged
 * to the daemon) runs a socat UDP echo server; host clients on loopback reach it through the
 * forward, several at once, and the guest sees them as the gateway address.
 *
 * Needs root (namespaces, TAP), socat and busybox.
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, freeUdpPort, missingRequirements, NetnsGuest, root, shouldRun } from '../helpers/guests.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox')]);
const enabled = shouldRun('hostfwd-udp.int.test.ts (UDP port forwarding to a namespace guest)', missing);

/** Sends `text` from a fresh loopback socket to `port` and resolves with the first reply (or rejects after `ms`). */
function ask(port: number, text: string, ms = 5_000): Promise<string> {
  const s = dgram.createSocket('udp4');
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { s.close(); reject(new Error(`no reply to '${text}'`)); }, ms);
    s.on('message', (m) => { clearTimeout(timer); s.close(); resolve(m.toString()); });
    s.bind(0, '127.0.0.1', () => s.send(text, port, '127.0.0.1'));
  });
}

describe.skipIf(!enabled)('--hostfwd udp with a namespace guest', () => {
  let d: Daemon;
  let g: NetnsGuest;
  let fwdPort = 0;

  beforeAll(async () => {
    fwdPort = await freeUdpPort();
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--hostfwd', `udp:127.0.0.1:${fwdPort}-:5007`, '--log-level', 'info']);
    g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    const { lease } = await g.dhcp();
    expect(lease?.['ip']).toBe('10.0.2.15');
  }, 120_000);
  afterAll(async () => {
    await g.destroy();
    await d.stop();
  });

  it('has what it needs (root, ip, socat, busybox, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('host clients reach a UDP server in the guest, which sees them as the gateway', async () => {
    // An echo server that prefixes each answer with the peer address the guest saw.
    const server = g.spawn('guest socat', ['socat', 'UDP4-RECVFROM:5007,fork', 'SYSTEM:read l; echo "$SOCAT_PEERADDR $l"']);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const answers = await Promise.all(['one', 'two', 'three'].map((t) => ask(fwdPort, `${t}\n`)));
      expect(answers.map((a) => a.trim()).sort()).toEqual(['10.0.2.2 one', '10.0.2.2 three', '10.0.2.2 two']);
    } finally {
      await server.stop();
    }
  }, 30_000);
});
