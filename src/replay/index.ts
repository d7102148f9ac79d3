/**
 * `import { replay } from 'tslirp/replay'`: run a recording or a `.pkt` script in process and
 * get its report (README.md of this folder: the formats, the report's schema, what a replay
 * compares).
 */
import { readCaptureFile } from '../pcap/file.js';
import { REPLAY_REPORT_SCHEMA, replayRecording, type ReplayReport } from './replay.js';
import { replayScript } from './script-run.js';

export { REPLAY_REPORT_SCHEMA, replayRecording, type Divergence, type FieldDifference, type ReplayExit, type ReplayReport } from './replay.js';
export { formatReport } from './report.js';
export { replayScript } from './script-run.js';
export { formatLiveReport, LIVE_REPORT_SCHEMA, replayLive, type LiveNetworkConfig, type LiveReplayOptions, type LiveReplayReport, type LiveTarget } from './live.js';

/** A script file is read whole up to this; past it the parser refuses it by name (exit 2). */
const MAX_SCRIPT_FILE_BYTES = 64 << 20;

/** Whether a path names a script (`.pkt`) rather than a recording. */
export const isScriptPath = (path: string): boolean => path.toLowerCase().endsWith('.pkt');

/**
 * Replays a recording (its bytes, or the path of its file) or runs a `.pkt` script (its path).
 * Never throws: a file that cannot be read is an `environment` report (exit 3), one that is not
 * a recording, or a script that does not parse, `unusable` (exit 2).
 */
export async function replay(source: Uint8Array | string): Promise<ReplayReport> {
  if (typeof source !== 'string') return replayRecording(source);
  const script = isScriptPath(source);
  const bytes = await readCaptureFile(source, script ? MAX_SCRIPT_FILE_BYTES : undefined);
  if (typeof bytes === 'string')
    return { schema: REPLAY_REPORT_SCHEMA, ...(script && { input: 'script' as const }), result: 'environment', exitCode: 3, file: source, frames: 0, entries: 0, hostCalls: 0, differences: 0, complete: false, seconds: 0, warnings: [], error: bytes };
  // latin1: one character per byte, so a byte outside ASCII reaches the parser, which names its line.
  if (script) return replayScript(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1'), source);
  return replayRecording(bytes, source);
}
