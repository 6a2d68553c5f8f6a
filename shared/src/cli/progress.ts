import type { RebuildProgress } from '../sync/rebuild';

/** What the progress display writes to: stderr, as a TTY or not. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const BAR_WIDTH = 24;
/** A TTY's line is redrawn at most this often; elsewhere a line is written at most this often. */
const TTY_REDRAW_MS = 100;
const LOG_EVERY_MS = 5000;

const number = (n: number) => Math.round(n).toLocaleString('en-US');

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** rows/s of this process's share, and the time left at that rate. */
function rates(p: RebuildProgress): { perSecond: number; left: number } {
  const perSecond = (p.done - p.doneBefore) / Math.max(p.elapsedMs / 1000, 0.001);
  const left = perSecond > 0 ? Math.max(p.total - p.done, 0) / perSecond : Number.POSITIVE_INFINITY;
  return { perSecond, left };
}

/**
 * The rebuild's progress: on a TTY, one line per entity type redrawn in place (a bar, rows
 * done/total, rows/s, time left); elsewhere (a log file, CI) a line every 5 seconds and one when an
 * entity type is done. `total` is an estimate (the planner's row count), so the bar may end short
 * of, or past, its end.
 */
export function progressPrinter(
  out: ProgressStream,
  now: () => number = () => performance.now(),
  verb = 'rebuild',
): (p: RebuildProgress) => void {
  let last = Number.NEGATIVE_INFINITY;
  const tty = out.isTTY === true;
  return (p) => {
    const t = now();
    const { perSecond, left } = rates(p);
    const name = p.entityType.padEnd(8);
    const counts = `${number(p.done)}/${number(Math.max(p.total, p.done))} rows`;
    if (tty) {
      if (p.event === 'chunk' && t - last < TTY_REDRAW_MS) return;
      last = t;
      const fraction = p.event === 'done' ? 1 : Math.min(p.done / Math.max(p.total, 1), 1);
      const filled = Math.round(fraction * BAR_WIDTH);
      const tail = p.event === 'done' ? `done in ${duration(p.elapsedMs / 1000)}` : `~${duration(left)} left`;
      let line = `${name} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${counts}  ${number(perSecond)} rows/s  ${tail}`;
      if (out.columns && line.length > out.columns - 1) line = line.slice(0, out.columns - 1);
      // \r back to the line's start, \x1b[K clears what a longer line left.
      out.write(`\r${line}\x1b[K${p.event === 'done' ? '\n' : ''}`);
      return;
    }
    if (p.event === 'start') {
      last = t;
      out.write(`${verb} ${name} starting: ~${number(p.total)} rows${p.doneBefore ? `, ${number(p.doneBefore)} done before` : ''}\n`);
    } else if (p.event === 'done') {
      out.write(`${verb} ${name} done: ${counts}, ${number(perSecond)} rows/s, ${duration(p.elapsedMs / 1000)}\n`);
    } else if (t - last >= LOG_EVERY_MS) {
      last = t;
      out.write(`${verb} ${name} ${counts}, ${number(perSecond)} rows/s, ~${duration(left)} left\n`);
    }
  };
}
