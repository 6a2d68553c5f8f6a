/**
 * @jest-environment-options {"database": false}
 */
import { otherShare, sampleCpu } from './cpu';

describe('cpu', () => {
  test('other work is what the machine did beyond our own processes', () => {
    expect(otherShare({ busy: 100, total: 1000, own: 50 }, { busy: 300, total: 1200, own: 150 })).toBeCloseTo(0.5);
    expect(otherShare({ busy: 0, total: 0, own: 0 }, { busy: 10, total: 100, own: 20 })).toBe(0);
    expect(otherShare(undefined, { busy: 1, total: 1, own: 0 })).toBeUndefined();
  });

  test('samples this process on Linux', () => {
    const a = sampleCpu([process.pid]);
    let x = 0;
    const until = Date.now() + 200;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    const b = sampleCpu([process.pid]);
    expect(x).toBeGreaterThan(0);
    expect(b!.total).toBeGreaterThan(a!.total);
    // This process burned ~200 ms of CPU: counted as its own (twice: self and its pid).
    expect(b!.own - a!.own).toBeGreaterThan(0);
  });
});
