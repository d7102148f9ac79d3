/**
 * Ethernet II frames (IEEE 802.3 §3.2.6 "Length/Type" ≥ 0x0600), with at most one IEEE
 * 802.1Q tag. The FCS is never present: every link we serve (QEMU stream/dgram, v86,
 * the e1000 model with CRC stripping) hands over frames without it.
 *
 * Not handled: 802.3 length-field frames with LLC/SNAP (STP, old NetBIOS) are a Drop;
 * stacked tags (802.1ad QinQ) are not unwrapped: an outer 0x8100 tag is read and an inner
 * tag shows up as `etherType` 0x8100, which upper layers ignore.
 */
import type { Drop } from '../util/drops.js';
import { put16, u16 } from '../util/bytes.js';

/** Destination, source and EtherType. */
export const ETHERNET_HEADER_LEN = 14;
/** The minimum frame length without FCS (IEEE 802.3 §4.4.2: 64 with the 4-byte FCS). */
export const ETHERNET_MIN_FRAME = 60;
/** The 802.1Q tag: TPID 0x8100 then the 16-bit TCI (PCP, DEI, VID). */
export const VLAN_TAG_LEN = 4;

/** IEEE registry values used by the stack. */
export const ETHERTYPE = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, IPV6: 0x86dd } as const;

const OFF = { DST: 0, SRC: 6, TYPE: 12, TCI: 14, INNER_TYPE: 16 } as const;

/** Values of the type field below this are 802.3 lengths (IEEE 802.3 §3.2.6). */
const MIN_ETHERTYPE = 0x0600;

/** An Ethernet II frame. The header length is derived from `vlan`, never stored. */
export interface Ethernet {
  /** Six bytes; a view into the received frame. */
  readonly dst: Uint8Array;
  /** Six bytes; a view into the received frame. */
  readonly src: Uint8Array;
  /** 802.1Q TCI (0..0xffff) when tagged, undefined when untagged. */
  readonly vlan: number | undefined;
  /** The (inner) EtherType, ≥ 0x0600. */
  readonly etherType: number;
  /**
   * Everything after the header, link padding included (upper layers trim by their own
   * length field). A view: copy it before keeping it past this call.
   */
  readonly payload: Uint8Array;
}

/**
 * Parses a frame. Runt frames (< 60 bytes) are accepted as long as they hold a header:
 * QEMU and v86 deliver unpadded frames.
 */
export function parseEthernet(b: Uint8Array): Ethernet | Drop {
  if (b.length < ETHERNET_HEADER_LEN) return 'ethernet.truncated';
  let etherType = u16(b, OFF.TYPE);
  let vlan: number | undefined;
  let header: number = ETHERNET_HEADER_LEN;
  if (etherType === ETHERTYPE.VLAN) {
    if (b.length < ETHERNET_HEADER_LEN + VLAN_TAG_LEN) return 'ethernet.truncated-vlan';
    vlan = u16(b, OFF.TCI);
    etherType = u16(b, OFF.INNER_TYPE);
    header += VLAN_TAG_LEN;
  }
  if (etherType < MIN_ETHERTYPE) return 'ethernet.not-ethernet-ii';
  return {
    dst: b.subarray(OFF.DST, OFF.DST + 6),
    src: b.subarray(OFF.SRC, OFF.SRC + 6),
    vlan,
    etherType,
    payload: b.subarray(header),
  };
}

/** Header (plus 4 when tagged) plus payload; no padding to ETHERNET_MIN_FRAME. */
export const ethernetLength = (e: Ethernet): number =>
  ETHERNET_HEADER_LEN + (e.vlan === undefined ? 0 : VLAN_TAG_LEN) + e.payload.length;

/**
 * Writes the frame at `into[at]` and returns its length (ethernetLength). Does not pad:
 * the caller pads to ETHERNET_MIN_FRAME when its link needs it. An untagged frame whose
 * `etherType` is 0x8100 would read back as tagged: do not write one.
 */
export function writeEthernet(e: Ethernet, into: Uint8Array, at = 0): number {
  into.set(e.dst.subarray(0, 6), at + OFF.DST);
  into.set(e.src.subarray(0, 6), at + OFF.SRC);
  let header: number = ETHERNET_HEADER_LEN;
  if (e.vlan === undefined) {
    put16(into, at + OFF.TYPE, e.etherType);
  } else {
    put16(into, at + OFF.TYPE, ETHERTYPE.VLAN);
    put16(into, at + OFF.TCI, e.vlan);
    put16(into, at + OFF.INNER_TYPE, e.etherType);
    header += VLAN_TAG_LEN;
  }
  into.set(e.payload, at + header);
  return header + e.payload.length;
}
