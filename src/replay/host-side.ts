/**
 * The host side of a recording as packets Wireshark can show: each host socket's life as an
 * ordinary TCP or UDP conversation in raw IPv4 (LINKTYPE_RAW, the recording's interface 1),
 * between the socket's local endpoint and its peer.
 *
 * - TCP out (`tcpConnect`): SYN local → peer; `tcpConnected`: SYN-ACK, then ACK; bytes
 *   written (`tcpWrite`) and read (`tcpData`) as segments with consistent sequence and
 *   acknowledgment numbers (each side's ISN is 0); `tcpEnd` either way: FIN; `tcpReset`: RST
 *   local → peer; `tcpError`: RST peer → local, or ICMP host/network unreachable for
 *   EHOSTUNREACH/ENETUNREACH, with the Node error code in the packet's comment.
 * - TCP in (a forward's listener): `tcpAccepted` is the client's SYN, our SYN-ACK and its ACK
 *   on the listener's endpoint; after `tcpAdopt` the flow goes on as above.
 * - UDP: `udpSend`/`udpSendTo` local → peer, `udpReceived`/`udpReceivedFrom` peer → local;
 *   `udpError` ECONNREFUSED as ICMP port unreachable, any other code as ICMP unreachable with
 *   the code in the comment.
 *
 * What the seam does not tell is made up and said so: a connected socket's local endpoint
 * (Node knows it, the seam does not carry it) is 0.0.0.0 with a port derived from the flow id
 * (49152 + id mod 16384). Calls and events that move no packet (pause, drained, listen,
 * close) show only as entries. IPv6 endpoints get no packet (interface 1 is IPv4). The
 * replay never reads these packets: the entries carry everything it needs.
 */
import { type Endpoint } from '../net/addr.js';
import { IP_PROTO, IPV4_HEADER_LEN, pseudoSum, writeIpv4Header } from '../ipv4/wire.js';
import { ICMP_TYPE } from '../ipv4/icmp-wire.js';
import { NO_TCP_OPTIONS, TCP_FLAG, writeTcp } from '../tcp/wire.js';
import { writeUdp, UDP_HEADER_LEN } from '../udp/wire.js';
import { finish, sum16 } from '../util/checksum.js';
import { put16 } from '../util/bytes.js';

/** One synthesized packet and its comment. */
export interface HostPacket {
  readonly data: Uint8Array;
  readonly comment?: string;
}

interface Side {
  readonly local: { addr: number; port: number };
  readonly peer: { addr: number; port: number };
  readonly tcp: boolean;
  /** Next sequence number each way (relative: ISN 0). */
  out: number;
  in: number;
}

/** The largest payload per synthesized packet (an IPv4 packet's total length is 16 bits). */
const MAX_PAYLOAD = 65_000;
const WINDOW = 65_535;

const v4 = (e: unknown): { addr: number; port: number } | undefined => {
  const x = e as Endpoint | undefined;
  return x !== undefined && typeof x.addr === 'number' ? { addr: x.addr, port: x.port } : undefined;
};

const anyLocal = (id: number): { addr: number; port: number } => ({ addr: 0, port: 49152 + (id % 16384) });

export class HostSide {
  readonly #flows = new Map<number, Side>();
  /** Bound local endpoints of listeners and bound UDP sockets. */
  readonly #bound = new Map<number, { addr: number; port: number }>();
  /** Accepted connections not yet adopted. */
  readonly #accepted = new Map<number, Side>();
  #ipId = 0;

  /** Packets for a Host call (local → peer mostly). */
  call(name: string, a: readonly unknown[]): HostPacket[] {
    const id = a[0] as number;
    switch (name) {
      case 'tcpConnect': {
        const peer = v4(a[1]);
        if (peer === undefined) return [];
        const s: Side = { local: anyLocal(id), peer, tcp: true, out: 0, in: 0 };
        this.#flows.set(id, s);
        s.out = 1;
        return [this.#tcp(s, true, 0, 0, TCP_FLAG.SYN, undefined, `flow ${id}: tcpConnect`)];
      }
      case 'tcpWrite':
        return this.#data(id, true, a[1] as Uint8Array);
      case 'tcpEnd': {
        const s = this.#flows.get(id);
        if (s === undefined) return [];
        const p = this.#tcp(s, true, s.out, s.in, TCP_FLAG.FIN | TCP_FLAG.ACK, undefined, `flow ${id}: tcpEnd`);
        s.out = (s.out + 1) >>> 0;
        return [p];
      }
      case 'tcpReset': {
        const s = this.#flows.get(id);
        if (s === undefined) return [];
        this.#flows.delete(id);
        return [this.#tcp(s, true, s.out, s.in, TCP_FLAG.RST | TCP_FLAG.ACK, undefined, `flow ${id}: tcpReset`)];
      }
      case 'tcpAdopt': {
        const s = this.#accepted.get(id);
        if (s === undefined) return [];
        this.#accepted.delete(id);
        this.#flows.set(a[1] as number, s);
        return [];
      }
      case 'tcpRefuse': {
        const s = this.#accepted.get(id);
        if (s === undefined) return [];
        this.#accepted.delete(id);
        return [this.#tcp(s, true, s.out, s.in, TCP_FLAG.RST | TCP_FLAG.ACK, undefined, `accepted ${id}: tcpRefuse`)];
      }
      case 'udpOpen': {
        const peer = v4(a[1]);
        if (peer !== undefined) this.#flows.set(id, { local: anyLocal(id), peer, tcp: false, out: 0, in: 0 });
        return [];
      }
      case 'udpSend': {
        const s = this.#flows.get(id);
        return s === undefined ? [] : [this.#udp(s.local, s.peer, a[1] as Uint8Array)];
      }
      case 'udpBind': {
        const local = v4(a[1]);
        if (local !== undefined) this.#bound.set(id, local);
        return [];
      }
      case 'udpSendTo': {
        const to = v4(a[1]);
        const local = this.#bound.get(id) ?? anyLocal(id);
        return to === undefined ? [] : [this.#udp(local, to, a[2] as Uint8Array)];
      }
      case 'close':
        this.#flows.delete(id);
        this.#bound.delete(id);
        return [];
      default:
        return []; // tcpPause, tcpListen: no packet
    }
  }

  /** Packets for a HostEvents event (peer → local mostly). */
  event(name: string, a: readonly unknown[]): HostPacket[] {
    const id = a[0] as number;
    const s = this.#flows.get(id);
    switch (name) {
      case 'tcpConnected':
        if (s === undefined) return [];
        s.in = 1;
        return [this.#tcp(s, false, 0, 1, TCP_FLAG.SYN | TCP_FLAG.ACK, undefined), this.#tcp(s, true, s.out, s.in, TCP_FLAG.ACK, undefined)];
      case 'tcpData':
        return this.#data(id, false, a[1] as Uint8Array);
      case 'tcpEnd': {
        if (s === undefined) return [];
        const p = this.#tcp(s, false, s.in, s.out, TCP_FLAG.FIN | TCP_FLAG.ACK, undefined, `flow ${id}: peer's FIN (tcpEnd)`);
        s.in = (s.in + 1) >>> 0;
        return [p];
      }
      case 'tcpError': {
        if (s === undefined) return [];
        this.#flows.delete(id);
        const code = String(a[1]);
        const comment = `flow ${id}: tcpError ${code}`;
        if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return [this.#unreachable(s, code === 'EHOSTUNREACH' ? 1 : 0, comment)];
        return [this.#tcp(s, false, s.in, s.out, TCP_FLAG.RST | TCP_FLAG.ACK, undefined, comment)];
      }
      case 'tcpClosed':
        this.#flows.delete(id);
        return [];
      case 'tcpListening': {
        const local = v4(a[1]);
        if (local !== undefined) this.#bound.set(id, local);
        return [];
      }
      case 'tcpAccepted': {
        const local = this.#bound.get(id);
        const client = v4(a[2]);
        if (local === undefined || client === undefined) return [];
        // Seen from the host: the listener is local, the client its peer.
        const c: Side = { local, peer: client, tcp: true, out: 1, in: 1 };
        this.#accepted.set(a[1] as number, c);
        return [
          this.#tcp(c, false, 0, 0, TCP_FLAG.SYN, undefined, `listener ${id}: tcpAccepted as ${String(a[1])}`),
          this.#tcp(c, true, 0, 1, TCP_FLAG.SYN | TCP_FLAG.ACK, undefined),
          this.#tcp(c, false, 1, 1, TCP_FLAG.ACK, undefined),
        ];
      }
      case 'udpReceived':
        return s === undefined ? [] : [this.#udp(s.peer, s.local, a[1] as Uint8Array)];
      case 'udpBound': {
        const local = v4(a[1]);
        if (local !== undefined) this.#bound.set(id, local);
        return [];
      }
      case 'udpReceivedFrom': {
        const from = v4(a[1]);
        const local = this.#bound.get(id) ?? anyLocal(id);
        return from === undefined ? [] : [this.#udp(from, local, a[2] as Uint8Array)];
      }
      case 'udpError': {
        const code = String(a[1]);
        const peer = s?.peer;
        if (s === undefined || peer === undefined) return [];
        const icmpCode = code === 'ECONNREFUSED' ? 3 : code === 'EHOSTUNREACH' ? 1 : code === 'ENETUNREACH' ? 0 : 13;
        return [this.#unreachable(s, icmpCode, `flow ${id}: udpError ${code}`)];
      }
      default:
        return []; // tcpDrained, tcpListenError
    }
  }

  #data(id: number, outbound: boolean, data: Uint8Array): HostPacket[] {
    const s = this.#flows.get(id);
    if (s === undefined) return [];
    const out: HostPacket[] = [];
    for (let at = 0; at < data.length; at += MAX_PAYLOAD) {
      const chunk = data.subarray(at, at + MAX_PAYLOAD);
      if (outbound) {
        out.push(this.#tcp(s, true, s.out, s.in, TCP_FLAG.PSH | TCP_FLAG.ACK, chunk));
        s.out = (s.out + chunk.length) >>> 0;
      } else {
        out.push(this.#tcp(s, false, s.in, s.out, TCP_FLAG.PSH | TCP_FLAG.ACK, chunk));
        s.in = (s.in + chunk.length) >>> 0;
      }
    }
    return out;
  }

  #ip(src: number, dst: number, protocol: number, l4: number): Uint8Array {
    const b = new Uint8Array(IPV4_HEADER_LEN + l4);
    this.#ipId = (this.#ipId + 1) & 0xffff;
    writeIpv4Header({ dscpEcn: 0, id: this.#ipId, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol, src, dst, options: new Uint8Array(0) }, l4, b);
    return b;
  }

  #tcp(s: Side, outbound: boolean, seq: number, ack: number, flags: number, payload: Uint8Array | undefined, comment?: string): HostPacket {
    const [src, dst] = outbound ? [s.local, s.peer] : [s.peer, s.local];
    const data = payload ?? new Uint8Array(0);
    const b = this.#ip(src.addr, dst.addr, IP_PROTO.TCP, 20 + data.length);
    writeTcp(
      { srcPort: src.port, dstPort: dst.port, seq: seq >>> 0, ack: (flags & TCP_FLAG.ACK) !== 0 ? ack >>> 0 : 0, flags, window: WINDOW, urgent: 0, options: NO_TCP_OPTIONS, payload: data },
      pseudoSum(src.addr, dst.addr, IP_PROTO.TCP),
      b,
      IPV4_HEADER_LEN,
    );
    return comment === undefined ? { data: b } : { data: b, comment };
  }

  #udp(src: { addr: number; port: number }, dst: { addr: number; port: number }, payload: Uint8Array): HostPacket {
    const data = payload.subarray(0, MAX_PAYLOAD);
    const b = this.#ip(src.addr, dst.addr, IP_PROTO.UDP, UDP_HEADER_LEN + data.length);
    writeUdp({ srcPort: src.port, dstPort: dst.port, payload: data }, pseudoSum(src.addr, dst.addr, IP_PROTO.UDP), b, IPV4_HEADER_LEN);
    return { data: b };
  }

  /** ICMP destination unreachable (RFC 792) from the peer, quoting a packet local → peer of the flow. */
  #unreachable(s: Side, code: number, comment: string): HostPacket {
    const quoted = s.tcp ? this.#tcp(s, true, s.out, s.in, TCP_FLAG.ACK, undefined).data.subarray(0, IPV4_HEADER_LEN + 8) : this.#udp(s.local, s.peer, new Uint8Array(0)).data;
    const b = this.#ip(s.peer.addr, s.local.addr, IP_PROTO.ICMP, 8 + quoted.length);
    b[IPV4_HEADER_LEN] = ICMP_TYPE.DEST_UNREACHABLE;
    b[IPV4_HEADER_LEN + 1] = code;
    b.set(quoted, IPV4_HEADER_LEN + 8);
    put16(b, IPV4_HEADER_LEN + 2, finish(sum16(b, IPV4_HEADER_LEN, b.length)));
    return { data: b, comment };
  }
}
