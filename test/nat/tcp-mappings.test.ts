/**
 * TCP mappings (RFC 5382): which guest connections share a host port, port preservation,
 * --outbound, and the fallback when the port cannot be had. Node's side (several connections
 * from one local port, what it refuses) is test/host/tcp-port-sharing.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ip } from '../helpers/frames.js';
import { tcpHarness } from './tcp-harness.js';

const ep = (addr: string, port: number) => ({ addr: ip(addr), port });

describe('TCP mappings', () => {
  it('eim: a guest endpoint\'s later connections take the host port of its first, while any of them lives', () => {
    const t = tcpHarness({ network: { outbound: '203.0.113.2' } });
    t.guestSends({}, ip('192.0.2.1'));
    t.engine.onHostConnected(1, 0, ep('203.0.113.2', 45000));
    t.guestSends({ dstPort: 443 }, ip('192.0.2.2'));
    t.guestSends({ srcPort: 40001 }, ip('192.0.2.2'));
    expect(t.host.callsOf('tcpConnect')).toEqual([
      [1, ep('192.0.2.1', 80), ep('203.0.113.2', 0)],
      [2, ep('192.0.2.2', 443), ep('203.0.113.2', 45000)],
      [3, ep('192.0.2.2', 80), ep('203.0.113.2', 0)],
    ]);
  });

  it('adm shares a port per destination address; apdm never', () => {
    const adm = tcpHarness({ network: { 'nat-mapping': 'adm' } });
    adm.guestSends({}, ip('192.0.2.1'));
    adm.engine.onHostConnected(1, 0, ep('0.0.0.0', 45000));
    adm.guestSends({ dstPort: 443 }, ip('192.0.2.1'));
    adm.guestSends({ dstPort: 443 }, ip('192.0.2.2'));
    expect(adm.host.callsOf('tcpConnect').map((c) => c[2])).toEqual([undefined, ep('0.0.0.0', 45000), undefined]);
    const apdm = tcpHarness({ network: { 'nat-mapping': 'apdm' } });
    apdm.guestSends({}, ip('192.0.2.1'));
    apdm.engine.onHostConnected(1, 0, ep('0.0.0.0', 45000));
    apdm.guestSends({ dstPort: 443 }, ip('192.0.2.1'));
    expect(apdm.host.callsOf('tcpConnect').map((c) => c[2])).toEqual([undefined, undefined]);
  });

  it('port preservation asks for the guest\'s port; a port that cannot be had becomes any port', () => {
    const t = tcpHarness({ network: { 'nat-port-preservation': 'on' } });
    t.guestSends({}, ip('192.0.2.1'));
    t.error('EADDRINUSE');
    expect(t.host.callsOf('tcpConnect')).toEqual([[1, ep('192.0.2.1', 80), ep('0.0.0.0', 40000)], [1, ep('192.0.2.1', 80)]]);
    expect(t.counters.get('nat.tcp-port-not-kept')).toBe(1);
    const [synAck] = t.connect();
    expect(synAck!.flags).toBe(0x12);
  });

  it('the shared port is released with the last connection that used it', () => {
    const t = tcpHarness();
    t.guestSends({}, ip('192.0.2.1'));
    t.engine.onHostConnected(1, 0, ep('0.0.0.0', 45000));
    t.takeTcp();
    t.guestSends({ flags: 0x04, seq: 1001 }, ip('192.0.2.1')); // RST: the connection ends
    t.guestSends({ dstPort: 443 }, ip('192.0.2.1'));
    expect(t.host.callsOf('tcpConnect').at(-1)).toEqual([2, ep('192.0.2.1', 443)]);
  });
});
