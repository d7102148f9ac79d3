/**
 * A live capture for one API client: the frames of a session, or of every session of a
 * network, as a pcapng stream (one SHB, an IDB per session as it is seen, EPBs with their
 * direction; src/pcap/pcapng.ts writes the blocks) until the client goes away.
 *
 * The data path never waits for the client: a tap copies each frame into an EPB and queues
 * it; the queue goes to the socket once per event-loop turn. While the socket holds more than
 * CAPTURE_QUEUE_LIMIT_BYTES unsent, frames are dropped and counted ('capture.dropped'), so a
 * slow or stuck reader costs a bounded amount of memory and nothing else.
 */
import type { Writable } from 'node:stream';
import type { Session } from '../daemon/session.js';
import { epbLength, idbLength, shbLength, writeEpb, writeIdb, writeShb } from '../pcap/pcapng.js';
import { LINKTYPE_ETHERNET } from '../pcap/writer.js';

/** Unsent bytes a capture client may hold before frames are dropped. */
export const CAPTURE_QUEUE_LIMIT_BYTES = 4 * 1024 * 1024;

/** The media type of a pcapng stream (IANA registration of draft-ietf-opsawg-pcapng). */
export const PCAPNG_MEDIA_TYPE = 'application/x-pcapng';

export interface CaptureCounters {
  count(name: string, n?: number): void;
}

export class LiveCapture {
  readonly #out: Writable;
  readonly #counters: CaptureCounters;
  readonly #interfaces = new Map<Session, { id: number; untap: () => void }>();
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  #closed = false;
  /** Frames written and dropped, for tests and the log. */
  frames = 0;
  dropped = 0;

  constructor(out: Writable, counters: CaptureCounters, userAppl: string) {
    this.#out = out;
    this.#counters = counters;
    const shb = { userAppl };
    const block = new Uint8Array(shbLength(shb));
    writeShb(shb, block);
    this.#queue(block);
  }

  /** Starts capturing `s` as a new interface (named by its id). */
  add(s: Session): void {
    if (this.#closed || this.#interfaces.has(s)) return;
    const idb = { linkType: LINKTYPE_ETHERNET, snaplen: 0, name: s.id, description: `${s.kind} ${s.peer} network ${s.network.name}` };
    const block = new Uint8Array(idbLength(idb));
    writeIdb(idb, block);
    this.#queue(block);
    const id = this.#interfaces.size;
    const untap = s.tap((frame, direction) => {
      this.#frame(id, frame, direction);
    });
    this.#interfaces.set(s, { id, untap });
  }

  /** Stops capturing `s` (it ended); its interface stays described. */
  remove(s: Session): void {
    this.#interfaces.get(s)?.untap();
  }

  #frame(interfaceId: number, frame: Uint8Array, direction: 'fromGuest' | 'toGuest'): void {
    if (this.#closed) return;
    if (this.#out.writableLength + this.#pendingBytes > CAPTURE_QUEUE_LIMIT_BYTES) {
      this.dropped++;
      this.#counters.count('capture.dropped');
      return;
    }
    const epb = { interfaceId, timeUs: Date.now() * 1000, data: frame, direction: direction === 'fromGuest' ? 'inbound' as const : 'outbound' as const };
    const block = new Uint8Array(epbLength(epb));
    writeEpb(epb, block);
    this.frames++;
    this.#queue(block);
  }

  #queue(block: Uint8Array): void {
    this.#pending.push(block);
    this.#pendingBytes += block.length;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#closed || this.#pending.length === 0) return;
    const chunk = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#out.write(chunk);
  };

  /** Stops every tap (the client went away). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const { untap } of this.#interfaces.values()) untap();
    this.#pending = [];
  }
}
