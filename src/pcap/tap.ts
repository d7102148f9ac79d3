/**
 * A capture tap: middleware around any link that records both directions of the guest's
 * frames into a capture sink: a classic pcap file of the session's own (no direction field;
 * the Ethernet addresses tell the directions apart) or the session's interface in a shared
 * pcapng file (direction in epb_flags: inbound = from the guest). Frames are recorded as they
 * cross the link, with wall-clock timestamps.
 */
import { statSync } from 'node:fs';
import { join, sep } from 'node:path';
import type { GuestLink, LinkHandler } from '../link/link.js';
import type { CaptureSink } from './writer.js';

/** `tslirp-<ISO time with '-' for ':'>-<session id>.pcap` inside `dir`. */
export function capturePath(dir: string, startedAt: Date, sessionId: string): string {
  return join(dir, `tslirp-${startedAt.toISOString().replace(/:/g, '-')}-${sessionId}.pcap`);
}

/** A link whose outgoing frames are also written to `writer`. */
export function tapLink(link: GuestLink, writer: CaptureSink): GuestLink {
  return {
    ...(link.allocFrame !== undefined && { allocFrame: (length: number, zeroed?: boolean) => link.allocFrame!(length, zeroed) }),
    kind: link.kind,
    peer: link.peer,
    counters: link.counters,
    send(frame: Uint8Array): void {
      writer.write(frame, 'outbound');
      link.send(frame);
    },
    close(reason: string): void {
      link.close(reason);
    },
  };
}

/** A handler whose incoming frames are also written to `writer`. */
export function tapHandler(handler: LinkHandler, writer: CaptureSink): LinkHandler {
  return {
    frame(frame: Uint8Array): void {
      writer.write(frame, 'inbound');
      handler.frame(frame);
    },
    closed(reason: string): void {
      handler.closed(reason);
    },
  };
}

/**
 * Where `--pcap PATH` writes: a directory of classic pcap files, one per session, when PATH is
 * an existing directory or ends in '/'; otherwise one pcapng file for every session (passt's
 * `--pcap FILE`). Only looks: creating the directory or file is the daemon's start-up.
 */
export function captureTarget(path: string): { readonly kind: 'dir' | 'file'; readonly path: string } {
  if (path.endsWith('/') || path.endsWith(sep)) return { kind: 'dir', path };
  try {
    if (statSync(path).isDirectory()) return { kind: 'dir', path };
  } catch {
    // Missing (or unreadable): a file to create; start-up reports what goes wrong.
  }
  return { kind: 'file', path };
}
