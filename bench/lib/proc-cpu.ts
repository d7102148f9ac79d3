/**
 * CPU time of a process and of each of its threads from /proc (Linux): user + system ticks
 * (/proc/PID/task/TID/stat, USER_HZ = 100) and the scheduler's run and run-queue wait times
 * (/proc/PID/task/TID/schedstat, ns), so a benchmark can split QEMU's CPU between its vCPU
 * threads ("CPU 0/TCG", "CPU 0/KVM") and its main loop (where -netdev user's libslirp and the
 * netdev backends run), and say how long a thread was runnable but not running — on a
 * loaded machine, the time a slow guest spends waiting for a core.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** One thread's counters at one moment. */
export interface ThreadCpu {
  readonly tid: number;
  /** The thread's name (comm), e.g. "CPU 0/TCG" or "qemu-system-x86". */
  readonly name: string;
  /** User + system CPU seconds. */
  readonly cpuS: number;
  /** Seconds runnable but waiting for a core (schedstat's second field); 0 without schedstats. */
  readonly waitS: number;
}

/** A process's threads' counters; threads that ended between listing and reading are left out. */
export function threadsCpu(pid: number): ThreadCpu[] {
  const out: ThreadCpu[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let waitS = 0;
      try {
        const sched = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').trim().split(/\s+/);
        waitS = Number(sched[1]) / 1e9;
      } catch {
        // No schedstat on this kernel: no wait figure.
      }
      out.push({ tid: Number(t), name, cpuS: (Number(fields[11]) + Number(fields[12])) / 100, waitS });
    } catch {
      // The thread ended: its time is in the process's total, not in any thread's.
    }
  }
  return out;
}

/** CPU and wait seconds grouped by a name → group function, between two snapshots (threads matched by tid). */
export function groupDelta(before: readonly ThreadCpu[], after: readonly ThreadCpu[], group: (name: string) => string): Map<string, { cpuS: number; waitS: number }> {
  const prev = new Map(before.map((t) => [t.tid, t]));
  const sums = new Map<string, { cpuS: number; waitS: number }>();
  for (const t of after) {
    const p = prev.get(t.tid);
    const g = group(t.name);
    const s = sums.get(g) ?? { cpuS: 0, waitS: 0 };
    s.cpuS += t.cpuS - (p?.cpuS ?? 0);
    s.waitS += t.waitS - (p?.waitS ?? 0);
    sums.set(g, s);
  }
  return sums;
}
