/**
 * `tslirp replay [--json] FILE`: runs a recording again, or a `.pkt` script (src/replay), and
 * says whether the network did the same (or what the script expects). Exit status: 0 every output matched; 1 the first divergence, decoded;
 * 2 bad usage, or a file that is not a tslirp recording, truncated or corrupt; 3 the
 * environment failed (the file cannot be read). Nothing here prints a stack trace.
 */
import { parseArgs } from 'node:util';
import { formatReport, replay } from '../replay/index.js';

export const REPLAY_HELP = `Usage: tslirp replay [--json] FILE

Replays a recording made with 'tslirp serve --record DIR': rebuilds the network from the
recorded configuration and random seed, feeds it the recorded guest frames and host socket
events on the recorded clock, and compares every frame it sends to a guest and every call it
makes on a host socket with the recording.

A FILE ending in .pkt is a script (README "Record and replay", src/replay/README.md): guest
frames in ('<'), frames expected out ('>'), host events ('host ...') and host calls expected
('expect host ...') on a virtual clock; it runs on a fresh network with a fake host.

  --json      print the report as one JSON object (schema tslirp-replay-report/1, README
              "Record and replay")
  -h, --help  show this help and exit

Exit status: 0 when everything matched ("replay: N frames, 0 differences, T s"); 1 at the
first divergence (frame number as tshark numbers it, or the script's line, time, expected
and got decoded, the fields that differ, a hex diff); 2 for bad usage or a file that is not a
tslirp recording, is truncated or corrupt, or a script that does not parse (each error with
its line); 3 when the file cannot be read.
`;

/** Runs `tslirp replay ARGS`; returns the exit status. */
export async function replayCommand(argv: readonly string[], out: (text: string) => void, err: (text: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    err(`tslirp replay: ${(e as Error).message.split('\n')[0] ?? ''}\nTry 'tslirp replay --help'.\n`);
    return 2;
  }
  if (parsed.values.help === true) {
    out(REPLAY_HELP);
    return 0;
  }
  const files = parsed.positionals;
  if (files.length !== 1) {
    err(`tslirp replay: ${files.length === 0 ? 'no FILE given' : `one FILE at a time (got ${files.length})`}\nTry 'tslirp replay --help'.\n`);
    return 2;
  }
  const report = await replay(files[0]!);
  if (parsed.values.json === true) out(JSON.stringify(report) + '\n');
  else (report.exitCode === 0 ? out : report.exitCode === 1 ? out : err)(formatReport(report));
  return report.exitCode;
}
