import { describe, expect, it } from 'vitest';
import { ACK, GUEST_SYN, RST, tcpHarness } from './tcp-harness.js';
import { ip } from '../helpers/frames.js';

const DNS = ip('10.0.2.3');

describe('TCP to the DNS address (DNS over TCP, RFC 7766)', () => {
  it('connects port 53 to the first upstream resolver, under --restrict too', () => {
    for (const restrict of [false, true]) {
      const t = tcpHarness({ dnsUpstream: { addr: ip('127.0.0.53'), port: 53 }, network: { restrict } });
      expect(t.guestSends({ dstPort: 53 }, DNS)).toEqual([]);
      expect(t.host.callsOf('tcpConnect')).toEqual([[1, { addr: ip('127.0.0.53'), port: 53 }]]);
      const [synAck] = t.connect();
      expect(synAck).toMatchObject({ srcPort: 53, dstPort: GUEST_SYN.srcPort });
    }
  });

  it('resets when there is no upstream, and for any other port', () => {
    const none = tcpHarness({});
    expect(none.guestSends({ dstPort: 53 }, DNS)).toMatchObject([{ flags: RST | ACK }]);
    const other = tcpHarness({ dnsUpstream: { addr: ip('127.0.0.1'), port: 5353 } });
    expect(other.guestSends({ dstPort: 80 }, DNS)).toMatchObject([{ flags: RST | ACK }]);
    expect(other.host.calls).toEqual([]);
  });
});
