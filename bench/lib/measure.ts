/** What every benchmark measures with: medians, a process's CPU time, a free loopback UDP port. */
import dgram from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** CPU seconds (user + system) of a process from /proc. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds a process has used so far, user and system apart (all its threads). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export async function freeUdp(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Frames and bytes a TAP in a network namespace has received (toward the guest's stack) and sent (from it). */
export interface TapCounts {
  readonly rxFrames: number;
  readonly rxBytes: number;
  readonly txFrames: number;
  readonly txBytes: number;
}

/** The kernel's statistics of `dev` in namespace `ns` (all zero when they cannot be read). */
export function tapCounts(ns: string, dev: string): TapCounts {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'cat', ...['rx_packets', 'rx_bytes', 'tx_packets', 'tx_bytes'].map((f) => `/sys/class/net/${dev}/statistics/${f}`)], { encoding: 'utf8' });
  const [rxFrames = 0, rxBytes = 0, txFrames = 0, txBytes = 0] = r.status === 0 ? r.stdout.trim().split('\n').map(Number) : [];
  return { rxFrames, rxBytes, txFrames, txBytes };
}
