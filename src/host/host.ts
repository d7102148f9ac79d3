/**
 * The seam between the sans-IO stack and the world (DESIGN.md, `src/host`), seen from the
 * host side: the types live in `src/net/` (below every layer that uses them) and are
 * re-exported here for the host's implementations and the daemon.
 */
export type { Endpoint, FlowId } from '../net/addr.js';
export type { Host, HostEvents } from '../net/seams.js';
