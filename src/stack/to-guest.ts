/**
 * What protocol engines (UDP NAT, TCP, DNS) need from the stack to talk to the guest.
 * The stack implements it; engines never build Ethernet or resolve MACs themselves.
 */
import type { Endpoint } from '../net/addr.js';
import type { Ipv4 } from '../ipv4/wire.js';
import type { Ipv4Addr } from '../util/bytes.js';
import type { Counters } from '../util/drops.js';
import type { GuestNetwork } from '../net/seams.js';

/** Writes an L4 header and payload at `into[at]` and returns its length. */
export type WriteL4 = (into: Uint8Array, at: number) => number;

export interface ToGuest {
  readonly config: GuestNetwork;
  readonly counters: Counters;
  /**
   * Sends an IPv4 datagram from `src` to the guest address `dst`, the L4 part written in
   * place by `writeL4` (`l4Length` bytes); fragments it above the link MTU. The guest's MAC
   * comes from the neighbour table: when unknown, an ARP request goes out instead and the
   * datagram is dropped, counted as 'arp.unresolved' (TCP retransmits; UDP is lossy anyway).
   * `writesEveryByte`: `writeL4` writes all `l4Length` bytes, so the frame is not zeroed first.
   */
  sendIpv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, l4Length: number, writeL4: WriteL4, writesEveryByte?: boolean): void;
  /**
   * An ICMP error to the guest about `original`, a datagram the guest sent (or one rebuilt
   * from a flow's tuple): RFC 1122 §3.2.2's rules on when not to send apply.
   */
  icmpError(original: Ipv4, type: number, code: number): void;
  /** Where DNS over TCP to the DNS address goes: the first upstream resolver, if any. */
  dnsTcpUpstream(): Endpoint | undefined;
}
