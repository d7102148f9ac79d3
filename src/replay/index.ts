/**
 * `import { replay } from 'tslirp/replay'`: run a recording in process and get its report
 * (README.md of this folder: the format, the report's schema, what a replay compares).
 */
import { readCaptureFile } from '../pcap/file.js';
import { REPLAY_REPORT_SCHEMA, replayRecording, type ReplayReport } from './replay.js';

export { REPLAY_REPORT_SCHEMA, replayRecording, type Divergence, type FieldDifference, type ReplayExit, type ReplayReport } from './replay.js';
export { formatReport } from './report.js';

/**
 * Replays a recording: its bytes, or the path of its file. Never throws: a file that cannot be
 * read is an `environment` report (exit 3), one that is not a recording `unusable` (exit 2).
 */
export async function replay(source: Uint8Array | string): Promise<ReplayReport> {
  if (typeof source !== 'string') return replayRecording(source);
  const bytes = await readCaptureFile(source);
  if (typeof bytes === 'string')
    return { schema: REPLAY_REPORT_SCHEMA, result: 'environment', exitCode: 3, file: source, frames: 0, entries: 0, hostCalls: 0, differences: 0, complete: false, seconds: 0, warnings: [], error: bytes };
  return replayRecording(bytes, source);
}
