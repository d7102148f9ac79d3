/** A replay report as text: one summary line, and the first divergence decoded above it (for a script, by line). */
import type { ReplayReport } from './replay.js';

const seconds = (s: number): string => `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;

export function formatReport(r: ReplayReport): string {
  const lines: string[] = [];
  const d = r.divergence;
  if (r.result === 'unusable' || r.result === 'environment') return (r.error ?? r.result).split('\n').map((l) => `replay: ${l}\n`).join('');
  if (d !== undefined) {
    if (d.line !== undefined) {
      const after = d.entryFrame > 0 ? `, after the input of line ${d.entryFrame}` : '';
      lines.push(`replay: ${d.kind === 'exception' ? 'the network threw at line' : 'divergence at line'} ${d.line}${r.file !== undefined ? ` of ${r.file}` : ''} (t=${d.timeS.toFixed(6)} s${after})`);
    } else lines.push(`replay: ${d.kind === 'exception' ? 'the network threw' : `divergence at frame ${d.frame}`} (t=${d.timeS.toFixed(6)} s, in the outputs of frame ${d.entryFrame})`);
    if (d.expected !== undefined) lines.push(`  expected: ${d.expected}`);
    if (d.got !== undefined) lines.push(`  got:      ${d.got}`);
    for (const f of d.fields ?? []) lines.push(`    ${f.field}: ${f.expected} → ${f.got}`);
    if (d.hex !== undefined) lines.push(`  first differing byte at offset ${d.hex.offset}:`, `    expected ${d.hex.expected}`, `    got      ${d.hex.got}`);
  }
  for (const w of r.warnings) lines.push(`replay: warning: ${w}`);
  const tail = r.complete || r.input === 'script' ? '' : ' (the recording stops early: no end entry)';
  const calls = r.input === 'script' ? `, ${r.hostCalls} host call${r.hostCalls === 1 ? '' : 's'}` : '';
  lines.push(`replay: ${r.frames} frames${calls}, ${r.differences} difference${r.differences === 1 ? '' : 's'}, ${seconds(r.seconds)}${tail}`);
  return lines.join('\n') + '\n';
}
