/**
 * The TFTP server through the stack: a guest's UDP to the gateway's port 69 and to each
 * transfer's port reaches it; files are opened and read through the host seam, which these
 * tests answer from an in-memory directory; time is a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { IP_PROTO } from '../../src/ipv4/wire.js';
import { resolveStackConfig } from '../../src/stack/config.js';
import { Stack } from '../../src/stack/stack.js';
import { TFTP_PORT } from '../../src/tftp/server.js';
import { parseTftp, tftpLength, writeTftp, type TftpOption, type TftpPacket } from '../../src/tftp/wire.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { FakeHost } from '../helpers/fake-host.js';
import { decode, ip, ipv4Frame, udpBytes } from '../helpers/frames.js';

const GUEST = ip('10.0.2.15');
const GATEWAY = ip('10.0.2.2');
const ROOT = '/srv/tftp';

interface Reply {
  readonly fromPort: number;
  readonly toPort: number;
  readonly p: TftpPacket;
}

function harness(files: Record<string, Uint8Array | string>, o: { mtu?: number; tftp?: boolean; unansweredReads?: boolean } = {}) {
  const clock = new ManualClock(0);
  const host = new FakeHost();
  const sent: Uint8Array[] = [];
  const stack = new Stack(resolveStackConfig({ ...(o.tftp !== false && { tftp: ROOT }), ...(o.mtu !== undefined && { mtu: o.mtu }) }), {
    clock,
    random: seededRandom(5),
    emit: (f) => sent.push(f.slice()),
    host,
  });
  let answered = 0;
  /** Plays the host: answers every file call made so far (in order), until none is left. */
  const serveFiles = (): void => {
    for (let rounds = 0; answered < host.calls.length && rounds < 100_000; rounds++) {
      const [name, id, ...args] = host.calls[answered++]!;
      if (name === 'fileOpen') {
        const [root, path] = args as [string, string];
        const f = root === ROOT ? files[path] : undefined;
        if (f === undefined) stack.fileError(id, 'ENOENT');
        else stack.fileOpened(id, typeof f === 'string' ? Buffer.byteLength(f) : f.length);
      } else if (name === 'fileRead' && o.unansweredReads !== true) {
        const [offset, length] = args as [number, number];
        const path = opened.get(id)!;
        const f = files[path]!;
        const bytes = typeof f === 'string' ? new Uint8Array(Buffer.from(f)) : f;
        stack.fileData(id, offset, bytes.slice(offset, offset + length));
      }
    }
  };
  const opened = new Map<number, string>();
  const send = (srcPort: number, dstPort: number, p: TftpPacket | Uint8Array): void => {
    let payload: Uint8Array;
    if (p instanceof Uint8Array) payload = p;
    else {
      payload = new Uint8Array(tftpLength(p));
      writeTftp(p, payload);
      if (p.op === 'rrq') {
        // Remember which path a fileOpen of this request names, for fileRead answers.
        const before = host.calls.length;
        stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: GUEST, dst: GATEWAY, payload: udpBytes({ srcPort, dstPort, payload }, GUEST, GATEWAY) }));
        for (const c of host.calls.slice(before)) if (c[0] === 'fileOpen') opened.set(c[1], c[3] as string);
        serveFiles();
        return;
      }
    }
    stack.receiveFrame(ipv4Frame({ protocol: IP_PROTO.UDP, src: GUEST, dst: GATEWAY, payload: udpBytes({ srcPort, dstPort, payload }, GUEST, GATEWAY) }));
    serveFiles();
  };
  /** The TFTP packets the stack sent since the last call. */
  const replies = (): Reply[] =>
    sent.splice(0).map((f) => {
      const d = decode(f);
      if (d.ip?.src !== GATEWAY || d.ip.dst !== GUEST) throw new Error('not from the gateway to the guest');
      const p = parseTftp(d.udp!.payload);
      if (typeof p === 'string') throw new Error(p);
      return { fromPort: d.udp!.srcPort, toPort: d.udp!.dstPort, p };
    });
  const rrq = (srcPort: number, filename: string, options: TftpOption[] = [], mode = 'octet'): void => send(srcPort, TFTP_PORT, { op: 'rrq', filename, mode, options });
  const ack = (srcPort: number, tid: number, block: number): void => send(srcPort, tid, { op: 'ack', block });
  const tick = (ms: number): void => {
    clock.advance(ms);
    stack.advance();
    serveFiles();
  };
  return { clock, host, stack, replies, rrq, ack, send, tick };
}

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const dataOf = (r: readonly Reply[]): [number, number][] => r.map((x) => (x.p.op === 'data' ? [x.p.block, x.p.data.length] : [-1, -1]));

describe('tftp server (RFC 1350) through the stack', () => {
  it('sends a file in 512-byte blocks, lock-step, from a port of its own (tftp-hpa without options)', () => {
    const file = bytes(1300);
    const t = harness({ 'boot/kernel': file });
    t.rrq(2000, '/boot/kernel');
    expect(t.host.callsOf('fileOpen')).toEqual([[expect.any(Number), ROOT, 'boot/kernel']]);
    let r = t.replies();
    expect(dataOf(r)).toEqual([[1, 512]]);
    const tid = r[0]!.fromPort;
    expect(tid).toBeGreaterThanOrEqual(49152);
    expect(r[0]!.toPort).toBe(2000);
    const got: Uint8Array[] = [r[0]!.p.op === 'data' ? r[0]!.p.data : new Uint8Array()];
    for (const block of [1, 2]) {
      t.ack(2000, tid, block);
      r = t.replies();
      expect(r.length).toBe(1);
      expect(r[0]!.fromPort).toBe(tid);
      got.push((r[0]!.p as { data: Uint8Array }).data);
    }
    expect(dataOf([{ fromPort: 0, toPort: 0, p: { op: 'data', block: 3, data: got[2]! } }])).toEqual([[3, 276]]);
    expect(Buffer.concat(got)).toEqual(Buffer.from(file));
    t.ack(2000, tid, 3);
    expect(t.replies()).toEqual([]);
    const fileId = t.host.callsOf('fileOpen')[0]![0];
    expect(t.host.callsOf('close')).toEqual([[fileId]]);
    expect(t.stack.tftpStats()).toMatchObject({ requests: 1, completed: 1, failed: 0 });
    expect(t.stack.nextDeadline()).toBe(6000); // the port dallies: 6 timeouts of 1 s
    // A late duplicate of the last ACK is dropped there, not sent through NAT to the host's loopback.
    t.ack(2000, tid, 3);
    expect(t.stack.counters.get('tftp.after-end')).toBe(1);
    expect(t.host.callsOf('udpBind')).toEqual([]);
    t.tick(6000);
    expect(t.stack.nextDeadline()).toBeUndefined();
    // Then the port is the host loopback's again, like any gateway port.
    t.ack(2000, tid, 3);
    expect(t.host.callsOf('udpBind').length).toBe(1);
  });

  it('ends a file whose length is a multiple of the block size with an empty block', () => {
    const t = harness({ f: bytes(1024) });
    t.rrq(2000, 'f');
    const tid = t.replies()[0]!.fromPort;
    t.ack(2000, tid, 1);
    expect(dataOf(t.replies())).toEqual([[2, 512]]);
    t.ack(2000, tid, 2);
    expect(dataOf(t.replies())).toEqual([[3, 0]]);
    t.ack(2000, tid, 3);
    expect(t.stack.tftpStats()?.completed).toBe(1);
  });

  it('answers options with an OACK (RFC 2347–2349, 7440), then sends a window at a time', () => {
    const file = bytes(10_000);
    const t = harness({ f: file });
    t.rrq(3000, 'f', [
      { name: 'BLKSIZE', value: '1000' },
      { name: 'tsize', value: '0' },
      { name: 'windowsize', value: '4' },
      { name: 'timeout', value: '2' },
      { name: 'rollover', value: '0' },
    ]);
    const r = t.replies();
    expect(r.map((x) => x.p)).toEqual([
      { op: 'oack', options: [{ name: 'blksize', value: '1000' }, { name: 'windowsize', value: '4' }, { name: 'timeout', value: '2' }, { name: 'tsize', value: '10000' }] },
    ]);
    const tid = r[0]!.fromPort;
    t.ack(3000, tid, 0);
    expect(dataOf(t.replies())).toEqual([[1, 1000], [2, 1000], [3, 1000], [4, 1000]]);
    // The client got blocks 1-2 only: the next window starts at 3.
    t.ack(3000, tid, 2);
    expect(dataOf(t.replies())).toEqual([[3, 1000], [4, 1000], [5, 1000], [6, 1000]]);
    t.ack(3000, tid, 6);
    expect(dataOf(t.replies())).toEqual([[7, 1000], [8, 1000], [9, 1000], [10, 1000]]);
    t.ack(3000, tid, 10);
    expect(dataOf(t.replies())).toEqual([[11, 0]]);
    t.ack(3000, tid, 11);
    expect(t.stack.tftpStats()).toMatchObject({ completed: 1, retransmitted: 2 });
  });

  it('lowers blksize to one datagram of the link MTU and windowsize to the window byte limit', () => {
    const t = harness({ f: bytes(10) }, { mtu: 1500 });
    t.rrq(3000, 'f', [{ name: 'blksize', value: '65464' }, { name: 'windowsize', value: '65535' }]);
    const r = t.replies();
    // 1500 - 20 (IPv4) - 8 (UDP) - 4 (TFTP) = 1468; 256 KiB / 1468 = 178 blocks.
    expect(r[0]!.p).toEqual({ op: 'oack', options: [{ name: 'blksize', value: '1468' }, { name: 'windowsize', value: '178' }] });
  });

  it('leaves out options with values it cannot use, and refuses a blksize below 8 with error 8', () => {
    const t = harness({ f: bytes(10) });
    t.rrq(3000, 'f', [{ name: 'timeout', value: '0' }, { name: 'windowsize', value: 'x' }, { name: 'blksize', value: '-1' }]);
    expect(dataOf(t.replies())).toEqual([[1, 10]]); // nothing accepted: no OACK, DATA 1 at once
    t.rrq(3001, 'f', [{ name: 'blksize', value: '7' }]);
    expect(t.replies().map((x) => x.p)).toEqual([{ op: 'error', code: 8, message: 'blksize 7 is below 8' }]);
  });

  it('resends the window after the timeout, ignores duplicate ACKs, gives up after the retries', () => {
    const t = harness({ f: bytes(5000) });
    t.rrq(2000, 'f', [{ name: 'windowsize', value: '2' }]);
    const tid = t.replies()[0]!.fromPort;
    t.ack(2000, tid, 0);
    expect(dataOf(t.replies())).toEqual([[1, 512], [2, 512]]);
    t.ack(2000, tid, 0); // a duplicate of the OACK's ACK: no answer (RFC 1123 §4.2.3.1)
    expect(t.replies()).toEqual([]);
    expect(t.stack.counters.get('tftp.duplicate-ack')).toBe(1);
    expect(t.stack.nextDeadline()).toBe(1000);
    t.tick(999);
    expect(t.replies()).toEqual([]);
    t.tick(1);
    expect(dataOf(t.replies())).toEqual([[1, 512], [2, 512]]);
    for (let i = 0; i < 4; i++) {
      t.tick(1000);
      expect(dataOf(t.replies())).toEqual([[1, 512], [2, 512]]);
    }
    t.tick(1000);
    expect(t.replies().map((x) => x.p)).toEqual([{ op: 'error', code: 0, message: 'timed out' }]);
    expect(t.stack.tftpStats()).toMatchObject({ failed: 1, retransmitted: 10 });
    expect(t.host.callsOf('close').length).toBe(1);
    expect(t.stack.nextDeadline()).toBe(12_000); // only the ended transfer's port, dallying
  });

  it('answers a packet from another port with error 5 and goes on (RFC 1350 §4)', () => {
    const t = harness({ f: bytes(600) });
    t.rrq(2000, 'f');
    const tid = t.replies()[0]!.fromPort;
    t.ack(2001, tid, 1);
    expect(t.replies()).toEqual([{ fromPort: tid, toPort: 2001, p: { op: 'error', code: 5, message: 'unknown transfer ID' } }]);
    t.send(2001, tid, { op: 'error', code: 0, message: 'who are you' }); // an error is never answered
    t.send(2001, TFTP_PORT, { op: 'error', code: 0, message: 'nor here' });
    t.send(2001, TFTP_PORT, { op: 'ack', block: 1 });
    expect(t.replies().map((x) => x.p)).toEqual([{ op: 'error', code: 4, message: 'ACK sent to port 69' }]);
    t.ack(2000, tid, 1);
    expect(dataOf(t.replies())).toEqual([[2, 88]]);
  });

  it.each([
    ['../etc/passwd', 2, "file name has a '..' component"],
    ['a/../../b', 2, "file name has a '..' component"],
    ['x\u0001y', 2, 'file name has a byte outside printable ASCII'],
    ['n'.repeat(300), 2, 'file name longer than 255 bytes'],
    ['/', 2, 'file name names no file'],
  ])('refuses %j with error %i before touching a file', (name, code, message) => {
    const t = harness({});
    t.rrq(2000, name);
    expect(t.replies()).toEqual([{ fromPort: TFTP_PORT, toPort: 2000, p: { op: 'error', code, message } }]);
    expect(t.host.callsOf('fileOpen')).toEqual([]);
  });

  it('refuses write requests and the mail mode, and a missing file with error 1', () => {
    const t = harness({});
    t.send(2000, TFTP_PORT, { op: 'wrq', filename: 'f', mode: 'octet', options: [] });
    expect(t.replies().map((x) => x.p)).toEqual([{ op: 'error', code: 2, message: 'read-only server: write requests are refused' }]);
    t.rrq(2001, 'f', [], 'mail');
    expect(t.replies().map((x) => x.p)).toEqual([{ op: 'error', code: 4, message: "mode 'mail' is not served (octet or netascii)" }]);
    t.rrq(2002, 'missing');
    const r = t.replies();
    expect(r.map((x) => x.p)).toEqual([{ op: 'error', code: 1, message: 'file not found' }]);
    expect(r[0]!.fromPort).not.toBe(TFTP_PORT);
    expect(t.host.callsOf('close')).toEqual([]); // the host closed it with its error
    expect(t.stack.tftpStats()).toMatchObject({ failed: 1 });
  });

  it('bounds the transfers of one guest', () => {
    const t = harness({ f: bytes(2000) });
    for (let port = 2000; port < 2004; port++) t.rrq(port, 'f');
    expect(t.replies().length).toBe(4);
    t.rrq(2004, 'f');
    expect(t.replies().map((x) => x.p)).toEqual([{ op: 'error', code: 0, message: 'too many transfers at once; try again later' }]);
    t.rrq(2000, 'f'); // the client repeating its request: the live transfer answers, by timer
    expect(t.replies()).toEqual([]);
    expect(t.stack.counters.get('tftp.duplicate-request')).toBe(1);
  });

  it('converts to netascii: LF → CR LF, CR → CR NUL', () => {
    const t = harness({ 'a.txt': 'one\ntwo\rthree' });
    t.rrq(2000, 'a.txt', [], 'NETASCII');
    const r = t.replies();
    expect(r.map((x) => x.p)).toEqual([{ op: 'data', block: 1, data: new Uint8Array(Buffer.from('one\r\ntwo\r\0three')) }]);
  });

  it('answers tsize in netascii mode with the converted length (each LF and CR one byte more), read through once first', () => {
    // 600,000 bytes with LFs, lone CRs, CR LF pairs and a CR as the last byte of the first read
    // (reads are at most 256 KiB, a window's bytes): the count must not depend on where reads split the file.
    const text = Buffer.alloc(600_000, 'a');
    for (let i = 0; i < text.length; i += 97) text[i] = 10;
    for (let i = 45; i < text.length; i += 89) text[i] = 13;
    for (let i = 5000; i < 5020; i += 2) [text[i], text[i + 1]] = [13, 10];
    text[262_143] = 13;
    const crlf = text.filter((c) => c === 10 || c === 13).length;
    const expected = Buffer.from(text.toString('latin1').replace(/\r/g, '\r\0').replace(/\n/g, '\r\n'), 'latin1');
    expect(expected.length).toBe(text.length + crlf);
    const t = harness({ 'a.txt': new Uint8Array(text) });
    t.rrq(2000, 'a.txt', [{ name: 'tsize', value: '0' }, { name: 'blksize', value: '1400' }, { name: 'windowsize', value: '64' }], 'netascii');
    const r = t.replies();
    expect(r.map((x) => x.p)).toEqual([
      { op: 'oack', options: [{ name: 'blksize', value: '1400' }, { name: 'windowsize', value: '64' }, { name: 'tsize', value: String(expected.length) }] },
    ]);
    // The sizing pass read the whole file in bounded reads before the OACK went out.
    const reads = t.host.callsOf('fileRead').map(([, offset, length]) => [offset, length]);
    expect(reads).toEqual([[0, 262_144], [262_144, 262_144], [524_288, 600_000 - 524_288]]);
    const tid = r[0]!.fromPort;
    const got: Uint8Array[] = [];
    let last = 0;
    for (let rounds = 0; rounds < 1000; rounds++) {
      t.ack(2000, tid, last);
      const d = t.replies();
      if (d.length === 0) break;
      for (const x of d) if (x.p.op === 'data') got.push(x.p.data);
      last = (d.at(-1)!.p as { block: number }).block;
    }
    // What the client receives is exactly as long as the tsize it was told.
    expect(Buffer.concat(got).equals(expected)).toBe(true);
    expect(t.host.callsOf('fileRead')[3]).toEqual([expect.any(Number), 0, expect.any(Number)]); // the transfer read again from the start
    expect(t.stack.tftpStats()?.completed).toBe(1);
  });

  it('netascii tsize: an empty file answers 0 at once; a host that stops answering the sizing reads ends the transfer', () => {
    const t = harness({ empty: '' });
    t.rrq(2000, 'empty', [{ name: 'tsize', value: '0' }], 'netascii');
    expect(t.replies().map((x) => x.p)).toEqual([{ op: 'oack', options: [{ name: 'tsize', value: '0' }] }]);
    expect(t.host.callsOf('fileRead')).toEqual([]);
    // A host that never answers the read: the give-up time (timeout × (retries + 1)) ends it with an error.
    const u = harness({ big: bytes(5000) }, { unansweredReads: true });
    u.rrq(2001, 'big', [{ name: 'tsize', value: '0' }], 'netascii');
    const fileId = u.host.callsOf('fileOpen')[0]![0];
    expect(u.host.callsOf('fileRead')).toEqual([[fileId, 0, 5000]]);
    u.tick(5_999);
    expect(u.replies()).toEqual([]);
    u.tick(1);
    expect(u.replies().map((x) => x.p)).toEqual([{ op: 'error', code: 0, message: 'timed out' }]);
    expect(u.host.callsOf('close')).toEqual([[fileId]]);
  });

  it('wraps block numbers from 65535 to 0', () => {
    const file = bytes(8 * 65_540, 7);
    const t = harness({ f: file });
    t.rrq(2000, 'f', [{ name: 'blksize', value: '8' }, { name: 'windowsize', value: '512' }]);
    const tid = t.replies()[0]!.fromPort;
    const got: Uint8Array[] = [];
    let last = 0;
    for (let rounds = 0; rounds < 1000; rounds++) {
      t.ack(2000, tid, last);
      const r = t.replies();
      if (r.length === 0) break;
      for (const x of r) if (x.p.op === 'data') got.push(x.p.data);
      last = (r.at(-1)!.p as { block: number }).block;
    }
    expect(Buffer.concat(got).equals(file)).toBe(true); // (toEqual on half a megabyte takes seconds)
    expect(last).toBe(65_541 & 0xffff);
    expect(t.stack.tftpStats()?.completed).toBe(1);
  });

  it('releases every open file when the network closes', () => {
    const t = harness({ f: bytes(2000) });
    t.rrq(2000, 'f');
    t.stack.close();
    expect(t.host.callsOf('close').length).toBe(1);
    expect(t.stack.nextDeadline()).toBeUndefined();
  });

  it('without --tftp, port 69 of the gateway is the host loopback\'s, through NAT', () => {
    const t = harness({}, { tftp: false });
    t.rrq(2000, 'f');
    expect(t.host.callsOf('udpBind').length).toBe(1);
    expect(t.stack.natMappings()).toMatchObject([{ peers: [{ host: { addr: ip('127.0.0.1'), port: 69 } }] }]);
    expect(t.stack.tftpStats()).toBeUndefined();
  });
});
