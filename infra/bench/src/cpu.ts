import { readFileSync } from 'node:fs';

/**
 * How much of the machine other work used while a cell was measured, from /proc (Linux): the CPU
 * time of the whole machine, minus that of the system under test, of its PostgreSQL backends and
 * of this process and its finished children (wrk). A shared machine's noise is then visible next
 * to each figure instead of hidden in it. Elsewhere than Linux, nothing is reported.
 */
export interface CpuSample {
  /** Busy and total ticks of all CPUs. */
  busy: number;
  total: number;
  /** Ticks of this process and its finished children (wrk); the other processes: spentSince. */
  own: number;
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  // guest time is already counted in user time.
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** utime + stime (+ cutime + cstime: children waited for) of a process, 0 when it is gone. */
export function processTicks(pid: number | 'self', withChildren = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: fields are counted after its closing ')'.
    const fields = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    const own = (fields[11] ?? 0) + (fields[12] ?? 0);
    return withChildren ? own + (fields[13] ?? 0) + (fields[14] ?? 0) : own;
  } catch {
    return 0;
  }
}

/** The machine's ticks and this process's own (with its finished children: wrk). */
export function sampleCpu(): CpuSample | undefined {
  try {
    return { ...machineTicks(), own: processTicks('self', true) };
  } catch {
    return undefined;
  }
}

/**
 * Share of the machine's CPU (0..1) used by other work between two samples, `alsoOwn` ticks of
 * the benchmark's other processes (spentSince) counted as its own.
 */
export function otherShare(before: CpuSample | undefined, after: CpuSample | undefined, alsoOwn = 0): number | undefined {
  if (!before || !after) return undefined;
  const total = after.total - before.total;
  if (total <= 0) return undefined;
  const other = after.busy - before.busy - (after.own - before.own) - alsoOwn;
  return Math.min(1, Math.max(0, other / total));
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

/** Ticks as microseconds. */
export const ticksToUs = (ticks: number): number => (ticks * 1e6) / TICKS_PER_S;

/** The CPU ticks of some processes now, by pid: where spentSince measures from. */
export function ticksByPid(pids: readonly number[]): Map<number, number> {
  return new Map(pids.map((pid) => [pid, processTicks(pid)]));
}

/**
 * The ticks the processes spent since `start` (ticksByPid). One that started since counts whole;
 * one that has ended counts nothing, not minus all it spent before: a database backend closed by its
 * pool's idle timeout during a measured run (another system's, idle since its own turn) took its
 * whole life's CPU out of the run's own figures and into "other work".
 */
export function spentSince(start: ReadonlyMap<number, number>, pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + Math.max(0, processTicks(pid) - (start.get(pid) ?? 0)), 0);
}
