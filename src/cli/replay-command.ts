/**
 * `tslirp replay [--json] FILE`: runs a recording again, or a `.pkt` script (src/replay), and
 * says whether the network did the same (or what the script expects). Exit status: 0 every output matched; 1 the first divergence, decoded;
 * 2 bad usage, or a file that is not a tslirp recording, truncated or corrupt; 3 the
 * environment failed (the file cannot be read). Nothing here prints a stack trace.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { readCaptureFile } from '../pcap/file.js';
import { createNodeNetwork } from '../daemon/node-network.js';
import { formatReport, replay } from '../replay/index.js';
import { formatLiveReport, replayLive } from '../replay/live.js';

export const REPLAY_HELP = `Usage: tslirp replay [--json] FILE
       tslirp replay --host live [--guest-mac MAC] [--max-gap S] [--settle S] [--json] FILE --out OUT

Replays a recording made with 'tslirp serve --record DIR': rebuilds the network from the
recorded configuration and random seed, feeds it the recorded guest frames and host socket
events on the recorded clock, and compares every frame it sends to a guest and every call it
makes on a host socket with the recording.

A FILE ending in .pkt is a script (README "Record and replay", src/replay/README.md): guest
frames in ('<'), frames expected out ('>'), host events ('host ...') and host calls expected
('expect host ...') on a virtual clock; it runs on a fresh network with a fake host.

  --json      print the report as one JSON object (schema tslirp-replay-report/1, README
              "Record and replay"; with --host live tslirp-live-replay-report/1)
  -h, --help  show this help and exit

With --host live, FILE is any pcap or pcapng of one guest's Ethernet frames (tcpdump on its
TAP, QEMU's filter-dump, a capture of libslirp; frames of other MACs are skipped): they go at
the capture's pace into a fresh network on real host sockets, and what tslirp answered is
written to OUT as pcapng (the guest's frames inbound, tslirp's answers outbound). The later
frames of the guest answered the original NAT, not tslirp: README "Record and replay" says
what such a replay can and cannot show.
  --out OUT        the pcapng to write (required)
  --guest-mac MAC  the guest (default: the chaddr of its DHCP request, else the first
                   source MAC not of the 52:55:... gateway kind)
  --max-gap S      the longest pause between two frames, seconds (default 1)
  --settle S       how long the network may answer after the last frame (default 1)

Exit status: 0 when everything matched ("replay: N frames, 0 differences, T s"); 1 at the
first divergence (frame number as tshark numbers it, or the script's line, time, expected
and got decoded, the fields that differ, a hex diff); 2 for bad usage or a file that is not a
tslirp recording, is truncated or corrupt, or a script that does not parse (each error with
its line); 3 when the file cannot be read. With --host live: 0 when OUT was written, 2 for a
file that is not a capture of Ethernet frames or holds no guest, 3 when the file cannot be
read, the network cannot be opened or OUT cannot be written.
`;

/** Runs `tslirp replay ARGS`; returns the exit status. */
export async function replayCommand(argv: readonly string[], out: (text: string) => void, err: (text: string) => void, by = 'tslirp'): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        host: { type: 'string' },
        out: { type: 'string' },
        'guest-mac': { type: 'string' },
        'max-gap': { type: 'string' },
        settle: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
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
  const v = parsed.values;
  const usage = (m: string): number => {
    err(`tslirp replay: ${m}\nTry 'tslirp replay --help'.\n`);
    return 2;
  };
  if (v.host !== undefined && v.host !== 'live') return usage(`--host '${v.host}': the only host is 'live'`);
  if (v.host === undefined) {
    const live = (['out', 'guest-mac', 'max-gap', 'settle'] as const).find((k) => v[k] !== undefined);
    if (live !== undefined) return usage(`--${live} needs --host live`);
  } else {
    if (v.out === undefined) return usage('--host live needs --out OUT');
    const seconds = (k: 'max-gap' | 'settle'): number | undefined => {
      const t = v[k];
      if (t === undefined) return undefined;
      const n = /^\d+(\.\d+)?$/.test(t) ? Number(t) : NaN;
      return n >= 0 && n <= 3600 ? n : NaN;
    };
    const maxGapS = seconds('max-gap');
    const settleS = seconds('settle');
    if (Number.isNaN(maxGapS)) return usage(`--max-gap '${v['max-gap']!}' must be seconds from 0 to 3600`);
    if (Number.isNaN(settleS)) return usage(`--settle '${v.settle!}' must be seconds from 0 to 3600`);
    return replayLiveCommand(files[0]!, v.out, { by, json: v.json === true, guestMac: v['guest-mac'], maxGapS, settleS }, out, err);
  }
  const report = await replay(files[0]!);
  if (parsed.values.json === true) out(JSON.stringify(report) + '\n');
  else (report.exitCode === 0 ? out : report.exitCode === 1 ? out : err)(formatReport(report));
  return report.exitCode;
}

/** `--host live`: the capture's guest frames into a Node network, its answers to OUT. */
async function replayLiveCommand(
  file: string,
  outPath: string,
  o: { by: string; json: boolean; guestMac: string | undefined; maxGapS: number | undefined; settleS: number | undefined },
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  const bytes = await readCaptureFile(file);
  if (typeof bytes === 'string') {
    err(`tslirp replay: ${bytes}\n`);
    return 3;
  }
  const report = await replayLive(bytes, {
    open: (config, emit) => createNodeNetwork({ ...config, name: 'replay-live' }, { emit }),
    file,
    by: `${o.by} replay --host live`,
    ...(o.guestMac !== undefined && { guestMac: o.guestMac }),
    ...(o.maxGapS !== undefined && { maxGapS: o.maxGapS }),
    ...(o.settleS !== undefined && { settleS: o.settleS }),
  });
  let code: number = report.exitCode;
  let failed: string | undefined;
  if (report.pcapng !== undefined) {
    try {
      await writeFile(outPath, report.pcapng);
    } catch (e) {
      failed = `cannot write ${outPath}: ${(e as Error).message}`;
      code = 3;
    }
  }
  const { pcapng: _, ...shown } = report;
  if (o.json) out(JSON.stringify({ ...shown, ...(code === 0 && { out: outPath }), ...(failed !== undefined && { result: 'environment', exitCode: 3, error: failed }) }) + '\n');
  else if (failed !== undefined) err(`tslirp replay: ${failed}\n`);
  else (code === 0 ? out : err)(formatLiveReport(report, outPath));
  return code;
}
