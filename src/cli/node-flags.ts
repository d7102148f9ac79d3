/**
 * The Node (V8) flags the daemon runs with, and the check that they are set.
 *
 * `--initial-old-space-size=64`: the daemon's live JS heap is small (about 9 MB) and it
 * allocates little on the heap while it moves gigabits (the bytes live in reused buffers).
 * In that state the default old-generation sizing of V8 11.3 (Node 20) started a full
 * mark-compact about 25 times a second during a bulk transfer: concurrent marking and
 * sweeping took a third of the daemon's CPU, and host → guest throughput at MTU 1500 was
 * ~30 % lower. With a 64 MB initial old generation the same transfer sees a handful of full
 * GCs in ten seconds. The flag is a GC trigger, not a reservation: the heap grows only as far
 * as garbage piles up before a collection, at most about 64 MB (128 MB did as well for
 * throughput, but let a flood of short-lived UDP flows raise RSS by twice as much).
 *
 * V8 reads it only at start-up (`v8.setFlagsFromString` afterwards has no effect) and Node
 * refuses it in NODE_OPTIONS, so it has to be on the node command line: `npm start` passes it,
 * the `tslirp` executable (`bin.ts`) re-executes node with it when it is missing, and the
 * daemon logs a warning when started without it.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];

/** The flags of DAEMON_NODE_FLAGS missing from `execArgv` (V8 also accepts '_' for '-'). */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map((f) => f.replace(/_/g, '-')));
  return DAEMON_NODE_FLAGS.filter((f) => !given.has(f));
}
