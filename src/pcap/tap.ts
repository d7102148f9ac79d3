/**
 * A capture tap: middleware around any link that records both directions of the guest's
 * frames into one pcap file (classic pcap has no direction field; the Ethernet addresses
 * tell the directions apart). Frames are recorded as they cross the link, with wall-clock
 * timestamps.
 */
import { join } from 'node:path';
import type { GuestLink, LinkHandler } from '../link/link.js';
import type { PcapFileWriter } from './writer.js';

/** `tslirp-<ISO time with '-' for ':'>-<session id>.pcap` inside `dir`. */
export function capturePath(dir: string, startedAt: Date, sessionId: string): string {
  return join(dir, `tslirp-${startedAt.toISOString().replace(/:/g, '-')}-${sessionId}.pcap`);
}

/** A link whose outgoing frames are also written to `writer`. */
export function tapLink(link: GuestLink, writer: PcapFileWriter): GuestLink {
  return {
    ...(link.allocFrame !== undefined && { allocFrame: (length: number, zeroed?: boolean) => link.allocFrame!(length, zeroed) }),
    kind: link.kind,
    peer: link.peer,
    counters: link.counters,
    send(frame: Uint8Array): void {
      writer.write(frame);
      link.send(frame);
    },
    close(reason: string): void {
      link.close(reason);
    },
  };
}

/** A handler whose incoming frames are also written to `writer`. */
export function tapHandler(handler: LinkHandler, writer: PcapFileWriter): LinkHandler {
  return {
    frame(frame: Uint8Array): void {
      writer.write(frame);
      handler.frame(frame);
    },
    closed(reason: string): void {
      handler.closed(reason);
    },
  };
}
