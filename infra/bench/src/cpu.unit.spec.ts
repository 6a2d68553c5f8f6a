/**
 * @jest-environment-options {"database": false}
 */
import { otherShare, sampleCpu, spentSince, ticksByPid } from './cpu';

describe('cpu', () => {
  test('other work is what the machine did beyond our own processes', () => {
    expect(otherShare({ busy: 100, total: 1000, own: 50 }, { busy: 300, total: 1200, own: 150 })).toBeCloseTo(0.5);
    expect(otherShare({ busy: 0, total: 0, own: 0 }, { busy: 10, total: 100, own: 20 })).toBe(0);
    expect(otherShare(undefined, { busy: 1, total: 1, own: 0 })).toBeUndefined();
  });

  test('samples this process on Linux', () => {
    const a = sampleCpu();
    const start = ticksByPid([process.pid]);
    let x = 0;
    const until = Date.now() + 200;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    const b = sampleCpu();
    expect(x).toBeGreaterThan(0);
    expect(b!.total).toBeGreaterThan(a!.total);
    // This process burned ~200 ms of CPU: counted as its own, and as spent by its pid.
    expect(b!.own - a!.own).toBeGreaterThan(0);
    expect(spentSince(start, [process.pid])).toBeGreaterThan(0);
  });

  test('a process that ended counts nothing, one that started counts whole', () => {
    // No process has pid 2^22 + 1 (above Linux's largest pid): it is gone, with 500 ticks spent before.
    const gone = 2 ** 22 + 1;
    expect(spentSince(new Map([[gone, 500]]), [gone])).toBe(0);
    expect(spentSince(new Map(), [process.pid])).toBeGreaterThan(0);
  });
});
