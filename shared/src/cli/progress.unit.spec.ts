/**
 * @jest-environment-options {"database": false}
 */
import type { RebuildProgress } from '../sync/rebuild';
import { progressPrinter } from './progress';

const at = (p: Partial<RebuildProgress>): RebuildProgress => ({
  runId: 'r',
  entityType: 'comment',
  event: 'chunk',
  total: 400_000,
  done: 0,
  doneBefore: 0,
  chunks: 0,
  elapsedMs: 0,
  ...p,
});

function stream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { writes, out: { isTTY, ...(columns ? { columns } : {}), write: (t: string) => writes.push(t) } };
}

describe('rebuild progress', () => {
  it('on a terminal: one line redrawn in place with a bar, rows done/total, rows/s and time left; a newline when the type is done', () => {
    const { writes, out } = stream(true);
    let now = 0;
    const print = progressPrinter(out, () => now);
    print(at({ event: 'start' }));
    now = 1000;
    print(at({ done: 100_000, elapsedMs: 5000 }));
    // Within 100 ms of the last redraw: skipped.
    now = 1050;
    print(at({ done: 101_000, elapsedMs: 5050 }));
    now = 2000;
    print(at({ event: 'done', done: 400_000, elapsedMs: 20_000 }));
    expect(writes).toHaveLength(3);
    expect(writes[1]).toBe('\rcomment  [######------------------] 100,000/400,000 rows  20,000 rows/s  ~15 s left\x1b[K');
    expect(writes[2]).toBe('\rcomment  [########################] 400,000/400,000 rows  20,000 rows/s  done in 20 s\x1b[K\n');
  });

  it('counts the rate of this process only when it continues a run, and never draws past the end of a short estimate', () => {
    const { writes, out } = stream(true, 60);
    const print = progressPrinter(out, () => 1000);
    print(at({ total: 1000, done: 3000, doneBefore: 2000, elapsedMs: 2000 }));
    expect(writes[0]).toBe(`\r${'comment  [########################] 3,000/3,000 rows  500 rows/s  ~0.0 s left'.slice(0, 59)}\x1b[K`);
  });

  it('elsewhere: a line when a type starts, every 5 seconds, and when it is done', () => {
    const { writes, out } = stream(false);
    let now = 0;
    const print = progressPrinter(out, () => now);
    print(at({ event: 'start', doneBefore: 10 }));
    now = 4000;
    print(at({ done: 1000, elapsedMs: 4000 }));
    now = 5001;
    print(at({ done: 2000, elapsedMs: 5001 }));
    now = 6000;
    print(at({ event: 'done', entityType: 'post', total: 10, done: 12, elapsedMs: 6000 }));
    expect(writes).toEqual([
      'rebuild comment  starting: ~400,000 rows, 10 done before\n',
      'rebuild comment  2,000/400,000 rows, 400 rows/s, ~16 min 35 s left\n',
      'rebuild post     done: 12/12 rows, 2 rows/s, 6.0 s\n',
    ]);
  });
});
