/**
 * NAT-PMP and PCP with real peers: a namespace guest on a network with `--nat-pmp on` runs
 * `natpmpc` (Debian's libnatpmp client) against the gateway, opens a TCP and a UDP mapping,
 * and clients on the host reach the guest's servers (busybox httpd, a socat UDP echo) through
 * them; a mapping stops answering once its lifetime ends, and `natpmpc -a … 0` deletes one.
 * PCP has no client in Debian: the guest runs test/integration/clients/pcp-client.py, which
 * builds requests from RFC 6887's layouts with Python's struct over an ordinary UDP socket
 * (independent of tslirp's code), for MAP, renewal, delete, ANNOUNCE and the error codes.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { command, daemon as daemonReq, file, freeUdpPort, missingRequirements, NetnsGuest, Proc, root, shouldRun, tempDir, type RunResult } from '../helpers/guests.js';
import { freeTcpPort, httpd, httpGet } from '../helpers/servers.js';

const PYTHON = '/usr/bin/python3';
const PCP_CLIENT = join(REPO_ROOT, 'test', 'integration', 'clients', 'pcp-client.py');
const missing = missingRequirements([
  root, daemonReq, command('ip'), command('socat'), command('busybox'), command('natpmpc'), command('ss'),
  file(PYTHON, 'apt-get install python3'),
]);
const enabled = shouldRun('portmap.int.test.ts (NAT-PMP and PCP from a namespace guest)', missing);

const out = (r: RunResult): string => `${r.stdout}${r.stderr}${r.timedOut ? ' (timed out)' : ''}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One datagram to 127.0.0.1:port and the first answer within `timeoutMs`, or undefined. */
async function udpAsk(port: number, text: string, timeoutMs = 2_000): Promise<string | undefined> {
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise<string | undefined>((res) => {
      const timer = setTimeout(() => res(undefined), timeoutMs);
      s.on('message', (m) => {
        clearTimeout(timer);
        res(m.toString());
      });
      s.send(text, port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

/** natpmpc's "Mapped public port P protocol X to local port L liftime T" (sic). */
function mapped(r: RunResult): { publicPort: number; localPort: number; lifetime: number } | undefined {
  const m = /Mapped public port (\d+) protocol (\w+) to local port (\d+) li[f]?e?time (\d+)/.exec(r.stdout);
  return m === null ? undefined : { publicPort: Number(m[1]), localPort: Number(m[3]), lifetime: Number(m[4]) };
}

/** A PCP response's fields (RFC 6887 §7.2, §11.2), read from the hex the client printed. */
function pcpResponse(hex: string): { version: number; opcode: number; result: number; lifetime: number; epoch: number; length: number; port?: number; addr?: string } {
  const b = Buffer.from(hex, 'hex');
  if (b.length < 24) throw new Error(`short PCP response: ${hex}`);
  const r = { version: b[0]!, opcode: b[1]! & 0x7f, result: b[3]!, lifetime: b.readUInt32BE(4), epoch: b.readUInt32BE(8), length: b.length };
  if (r.opcode !== 1 || b.length < 60) return r;
  return { ...r, port: b.readUInt16BE(24 + 18), addr: [...b.subarray(24 + 32, 24 + 36)].join('.') };
}

describe.skipIf(!enabled)('NAT-PMP and PCP from a namespace guest', () => {
  let d: Daemon;
  let g: NetnsGuest;
  let guestIp = '';
  const procs: Proc[] = [];
  const dirs: string[] = [];
  const natpmpc = (args: readonly string[]): Promise<RunResult> => g.exec(['natpmpc', '-g', '10.0.2.2', ...args], 30_000);
  const pcp = async (...requests: string[]): Promise<string[]> => {
    const r = await g.exec([PYTHON, PCP_CLIENT, '10.0.2.2', guestIp, ...requests], 60_000);
    const lines = r.stdout.trim().split('\n');
    if (lines.length !== requests.length) throw new Error(`pcp-client: ${out(r)}`);
    return lines;
  };

  beforeAll(async () => {
    d = await startDaemon(['--dgram', 'udp:127.0.0.1:0', '--network', 'pm', '--nat-pmp', 'on']);
    g = await NetnsGuest.create({ kind: 'dgram', ...d.dgram() });
    const lease = await g.dhcp();
    if (lease.lease === undefined) throw new Error(`no lease: ${out(lease.result)}`);
    guestIp = lease.lease['ip']!;
    const www = tempDir('tslirp-pmp-www-');
    dirs.push(www);
    writeFileSync(join(www, 'hello'), 'hello through a NAT-PMP mapping\n');
    procs.push(g.spawn('udp echo', ['socat', 'UDP4-RECVFROM:5300,fork', 'EXEC:cat']));
    procs.push(g.spawn('udp echo for pcp', ['socat', 'UDP4-RECVFROM:5301,fork', 'EXEC:cat']));
    procs.push(await httpd(g, www, 8080));
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) await p.stop();
    await g?.destroy();
    await d?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('has what it needs (root, ip, socat, busybox, natpmpc, python3, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  it('natpmpc learns the public address', async () => {
    const r = await natpmpc([]);
    expect(r.stdout, out(r)).toMatch(/Public IP address : 127\.0\.0\.1/);
  }, 40_000);

  it('natpmpc opens a TCP mapping; a host client reaches the guest\'s httpd through it; it expires after its lifetime', async () => {
    const want = await freeTcpPort();
    const r = await natpmpc(['-a', String(want), '8080', 'tcp', '6']);
    const t0 = Date.now();
    expect(mapped(r), out(r)).toEqual({ publicPort: want, localPort: 8080, lifetime: 6 });
    expect(await httpGet(want, '/hello')).toBe('hello through a NAT-PMP mapping\n');
    // Still open well inside its lifetime (4.5 s of margin for a loaded machine)...
    await sleep(1_500);
    expect(await httpGet(want, '/hello')).toBe('hello through a NAT-PMP mapping\n');
    // ...and refused once it ended: polled every 250 ms, at most 15 s.
    let last = '';
    while (Date.now() - t0 < 21_000 && !last.startsWith('ERR')) {
      last = await httpGet(want, '/hello', 2_000);
      if (!last.startsWith('ERR')) await sleep(250);
    }
    const lived = Date.now() - t0;
    expect(last, `still open ${lived} ms after mapping`).toBe('ERR ECONNREFUSED');
    // Not before its time (less the time natpmpc took to print the answer).
    expect(lived).toBeGreaterThanOrEqual(5_000);
    // The daemon logged the mapping's life.
    const life = d.logs.filter((l) => l['guest'] === `${guestIp}:8080` && l['external'] === `127.0.0.1:${want}`).map((l) => l['msg']);
    expect(life).toEqual(['port mapping mapped', 'port mapping expired']);
  }, 60_000);

  it('natpmpc opens a UDP mapping (any port); a host client\'s datagram reaches the guest\'s echo server and back', async () => {
    const r = await natpmpc(['-a', '0', '5300', 'udp', '60']);
    const m = mapped(r);
    expect(m?.localPort, out(r)).toBe(5300);
    expect(m!.publicPort).toBeGreaterThan(0);
    expect(await udpAsk(m!.publicPort, 'ping over a mapping')).toBe('ping over a mapping');
  }, 40_000);

  it('natpmpc -a … 0 deletes a mapping', async () => {
    const want = await freeTcpPort();
    const r = await natpmpc(['-a', String(want), '8080', 'tcp', '3600']);
    expect(mapped(r)?.publicPort, out(r)).toBe(want);
    expect(await httpGet(want, '/hello')).toBe('hello through a NAT-PMP mapping\n');
    const del = await natpmpc(['-a', String(want), '8080', 'tcp', '0']);
    expect(del.stdout, out(del)).toMatch(/lifetime 0|liftime 0/);
    expect(await httpGet(want, '/hello', 2_000)).toBe('ERR ECONNREFUSED');
  }, 40_000);

  it('a port already taken on the host gets another port (RFC 6886 §3.3)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await natpmpc(['-a', String(taken), '8080', 'tcp', '60']);
      const m = mapped(r);
      expect(m?.localPort, out(r)).toBe(8080);
      expect(m!.publicPort).not.toBe(taken);
      expect(await httpGet(m!.publicPort, '/hello')).toBe('hello through a NAT-PMP mapping\n');
      await natpmpc(['-a', String(m!.publicPort), '8080', 'tcp', '0']);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 40_000);

  it('PCP MAP opens a mapping a host client reaches, renews it with the same nonce, refuses another nonce, deletes it', async () => {
    // A NAT-PMP mapping is not PCP's to renew (RFC 6887 §11.3: another owner): NOT_AUTHORIZED.
    const [foreign] = await pcp(`map:17:5300:0:60:${'33'.repeat(12)}`);
    expect(pcpResponse(foreign!).result).toBe(2);
    const nonce = randomBytes(12).toString('hex');
    const other = randomBytes(12).toString('hex');
    const want = await freeUdpPort();
    const [created, renewed, stolen] = await pcp(`map:17:5301:${want}:60:${nonce}`, `map:17:5301:0:120:${nonce}`, `map:17:5301:0:120:${other}`);
    const c = pcpResponse(created!);
    expect(c, created).toMatchObject({ version: 2, opcode: 1, result: 0, lifetime: 60, port: want, addr: '127.0.0.1', length: 60 });
    expect(Buffer.from(created!, 'hex').subarray(24, 36).toString('hex')).toBe(nonce);
    expect(await udpAsk(want, 'pcp datagram')).toBe('pcp datagram');
    expect(pcpResponse(renewed!)).toMatchObject({ result: 0, lifetime: 120, port: want });
    expect(pcpResponse(stolen!).result).toBe(2); // NOT_AUTHORIZED
    const [deleted] = await pcp(`map:17:5301:0:0:${nonce}`);
    expect(pcpResponse(deleted!)).toMatchObject({ result: 0, lifetime: 0 });
    expect(await udpAsk(want, 'after delete', 1_000)).toBeUndefined();
  }, 60_000);

  it('PCP ANNOUNCE answers SUCCESS with the epoch; bad requests get RFC 6887\'s codes; NAT-PMP\'s unknown opcode gets result 5', async () => {
    const [announce, v3, short, peer, mandatory, protocol] = await pcp(
      'announce',
      `raw:03010000${'00'.repeat(20)}`, // version 3
      `raw:0201000000000000`, // 8 octets: shorter than a header
      `raw:02020000${'00'.repeat(56)}`, // PEER
      // MAP with THIRD_PARTY (mandatory-to-process, not supported)
      `raw:02010000 0000003c ${'00'.repeat(10)}ffff${Buffer.from(guestIp.split('.').map(Number)).toString('hex')} ${'11'.repeat(12)} 06000000 1f90 0000 ${'00'.repeat(16)} 01000010 ${'00'.repeat(16)}`.replace(/ /g, ''),
      `map:132:8080:0:60:${'22'.repeat(12)}`, // SCTP
    );
    const a = pcpResponse(announce!);
    expect(a, announce).toMatchObject({ version: 2, opcode: 0, result: 0 });
    expect(a.epoch).toBeGreaterThanOrEqual(0);
    expect(pcpResponse(v3!)).toMatchObject({ version: 2, result: 1 }); // UNSUPP_VERSION
    expect(pcpResponse(short!).result).toBe(3); // MALFORMED_REQUEST
    expect(pcpResponse(peer!)).toMatchObject({ opcode: 2, result: 4 }); // UNSUPP_OPCODE
    expect(pcpResponse(mandatory!).result).toBe(5); // UNSUPP_OPTION
    expect(pcpResponse(protocol!).result).toBe(9); // UNSUPP_PROTOCOL
    const [natpmpBad] = await pcp('raw:0003');
    const b = Buffer.from(natpmpBad!, 'hex');
    expect([b[0], b[1], b.readUInt16BE(2)], natpmpBad).toEqual([0, 128 + 3, 5]);
  }, 60_000);

  it('a mapping flood stops at 16 per guest with NAT-PMP result 4 (out of resources)', async () => {
    const results: string[] = [];
    for (let i = 0; i < 18; i++) {
      const r = await natpmpc(['-a', '0', String(20000 + i), 'udp', '30']);
      results.push(mapped(r) !== undefined ? 'ok' : 'refused');
    }
    // The UDP mapping of the earlier test still counts (its 60 s are not over): 15 more fit.
    const ok = results.filter((x) => x === 'ok').length;
    expect(ok, results.join(',')).toBeGreaterThanOrEqual(14);
    expect(ok).toBeLessThanOrEqual(16);
    expect(results.at(-1)).toBe('refused');
    // Deleting all of them (private port 0, lifetime 0) frees the quota.
    await natpmpc(['-a', '0', '0', 'udp', '0']);
    const again = await natpmpc(['-a', '0', '20100', 'udp', '30']);
    expect(mapped(again), out(again)).toBeDefined();
  }, 120_000);
});
