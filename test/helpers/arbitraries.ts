/** fast-check arbitraries for wire records: every field within the invariant its TSDoc states. */
import fc from 'fast-check';
import type { Arp } from '../../src/arp/wire.js';
import type { Ethernet } from '../../src/ethernet/wire.js';
import type { Icmp } from '../../src/ipv4/icmp-wire.js';
import type { Ipv4 } from '../../src/ipv4/wire.js';
import type { TcpOptions } from '../../src/tcp/options.js';
import type { Tcp } from '../../src/tcp/wire.js';
import type { Udp } from '../../src/udp/wire.js';

export const u8Arb = fc.integer({ min: 0, max: 0xff });
export const u16Arb = fc.integer({ min: 0, max: 0xffff });
export const u32Arb = fc.integer({ min: 0, max: 0xffffffff });
export const portArb = fc.integer({ min: 1, max: 0xffff });
export const ipv4AddrArb = u32Arb;
export const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 });
export const payloadArb = (maxLength = 64): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });

export const ethernetArb: fc.Arbitrary<Ethernet> = fc.oneof(
  fc.record({
    dst: macArb, src: macArb, vlan: fc.constant(undefined),
    // 0x8100 untagged would read back as a tag (see writeEthernet)
    etherType: fc.integer({ min: 0x0600, max: 0xffff }).filter((t) => t !== 0x8100),
    payload: payloadArb(),
  }),
  fc.record({
    dst: macArb, src: macArb, vlan: u16Arb, etherType: fc.integer({ min: 0x0600, max: 0xffff }), payload: payloadArb(),
  }),
);

export const arpArb: fc.Arbitrary<Arp> = fc.record({
  op: fc.constantFrom(1, 2), senderMac: macArb, senderIp: ipv4AddrArb, targetMac: macArb, targetIp: ipv4AddrArb,
});

/** Well-formed IPv4 option TLVs (RFC 791 §3.1) padded with EOL to a multiple of 4, ≤ 40 bytes. */
export const ipv4OptionsArb: fc.Arbitrary<Uint8Array> = fc
  .array(fc.oneof(
    fc.constant([1]),
    fc.tuple(fc.integer({ min: 2, max: 255 }), fc.uint8Array({ maxLength: 8 })).map(([t, d]) => [t, d.length + 2, ...d]),
  ), { maxLength: 6 })
  .map((opts) => opts.flat())
  .filter((bytes) => bytes.length <= 40)
  .map((bytes) => {
    const out = new Uint8Array((bytes.length + 3) & ~3);
    out.set(bytes);
    return out;
  });

export const ipv4Arb: fc.Arbitrary<Ipv4> = fc.record({
  dscpEcn: u8Arb, id: u16Arb, dontFragment: fc.boolean(), moreFragments: fc.boolean(),
  fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((w) => w * 8),
  ttl: u8Arb, protocol: u8Arb, src: ipv4AddrArb, dst: ipv4AddrArb,
  options: fc.oneof(fc.constant(new Uint8Array(0)), ipv4OptionsArb), payload: payloadArb(),
});

export const icmpArb: fc.Arbitrary<Icmp> = fc.record({ type: u8Arb, code: u8Arb, rest: u32Arb, payload: payloadArb() });

export const udpArb: fc.Arbitrary<Udp> = fc.record({ srcPort: u16Arb, dstPort: portArb, payload: payloadArb() });

export const sackBlockArb = fc.tuple(u32Arb, u32Arb);

export const tcpOptionsArb: fc.Arbitrary<TcpOptions> = fc.record({
  mss: u16Arb,
  windowScale: fc.integer({ min: 0, max: 14 }),
  sackPermitted: fc.constant(true),
  sack: fc.array(sackBlockArb, { minLength: 1, maxLength: 4 }),
  timestamp: fc.record({ value: u32Arb, echo: u32Arb }),
}, { requiredKeys: [] });

export const tcpArb = (options: fc.Arbitrary<TcpOptions> = tcpOptionsArb): fc.Arbitrary<Tcp> => fc.record({
  srcPort: portArb, dstPort: portArb, seq: u32Arb, ack: u32Arb, flags: u8Arb, window: u16Arb, urgent: u16Arb,
  options, payload: payloadArb(),
});

/**
 * Large random byte arrays (guest memory, jumbo frames) filled from a seed by xorshift32:
 * fast-check's uint8Array draws every byte through its generator, which made a 64 KiB memory
 * image most of a fuzz test's time, and prints every byte of a counterexample. Properties take
 * `bulkArb` (a length and a seed, printed as two numbers) and call `bulkBytes` inside.
 */
export interface Bulk {
  readonly length: number;
  readonly seed: number;
}

export const bulkArb = (minLength: number, maxLength: number): fc.Arbitrary<Bulk> =>
  fc.record({ length: fc.integer({ min: minLength, max: maxLength }), seed: fc.integer({ min: 1, max: 0xffffffff }) });

export function bulkBytes(b: Bulk): Uint8Array {
  const out = new Uint8Array(b.length);
  let x = b.seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
