/**
 * The e1000 device protocol at `/e1000` (docs/e1000-protocol.md): the emulator forwards its
 * e1000's PCI config, MMIO and I/O accesses and serves DMA; the daemon runs the 82540EM model
 * (`src/nic-e1000`) and hands the frames the guest's driver transmits to a session's stack —
 * the same session as any other link, so the guest gets DHCP, NAT and DNS alike.
 *
 * As a link this moves frames only: the model owns its ring back-pressure (frames for a full
 * RX ring wait in its bounded queue, see E1000WsSession), and protocol violations close the
 * socket with 1002 and a reason.
 */
import type http from 'node:http';
import type { WebSocket } from 'ws';
import { attachE1000Device, type E1000WsSession } from '../nic-e1000/ws-device.js';
import type { AcceptLink, LinkHandler, LinkLog } from './link.js';
import { acceptWsLink, WsGuestLink, type WsLiveness } from './ws-frames.js';
import type { WsRoute } from './ws-server.js';

/** The largest protocol message: a DMA reply carrying a 64 KiB TSO payload plus headers. */
const MAX_MESSAGE_BYTES = 1 << 20;

class WsE1000Link extends WsGuestLink {
  readonly kind = 'ws-e1000' as const;
  #toGuest: ((frame: Uint8Array) => void) | undefined;
  #device: E1000WsSession | undefined;

  attach(handler: LinkHandler, log: LinkLog): void {
    this.handler = handler;
    this.#device = attachE1000Device(
      this.ws,
      {
        send: (frame) => {
          if (!this.closed) handler.frame(frame);
        },
        onFrame: (toGuest) => {
          this.#toGuest = toGuest;
        },
      },
      {
        onClose: (reason) => {
          if (reason !== 'closed') log.warn({ peer: this.peer, reason }, 'e1000: device session closed');
          this.finish(reason);
        },
      },
    );
  }

  /** The model's device session (exits, drops). */
  get device(): E1000WsSession | undefined {
    return this.#device;
  }

  send(frame: Uint8Array): void {
    if (this.closed || this.#toGuest === undefined) return this.counters.count('link.tx-closed');
    this.#toGuest(frame);
  }
}

/** The route serving the e1000 device protocol (mount it at '/e1000'). */
export function wsE1000Route(accept: AcceptLink, log: LinkLog, liveness?: WsLiveness): WsRoute {
  return {
    maxPayload: MAX_MESSAGE_BYTES,
    accept(ws: WebSocket, req: http.IncomingMessage): void {
      acceptWsLink(ws, req, (peer) => new WsE1000Link(ws, peer), accept, log, liveness);
    },
  };
}
