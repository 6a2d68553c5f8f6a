import { dependenciesOf, ResponseCache } from './response-cache';

describe('the response cache', () => {
  let now = 0;
  const cache = () => {
    const c = new ResponseCache({ maxBytes: 10_000, maxAgeMs: 1000, now: () => now });
    c.setLive(true);
    return c;
  };

  test('serves an answer until a change of what it read; a read that raced a change is never served', () => {
    const c = cache();
    const snap = c.snapshot(['post', 'comment'])!;
    c.put('k', 'answer', ['post', 'comment'], snap);
    expect(c.get('k')?.toString()).toBe('answer');
    c.changed({ user: ['u1'] });
    expect(c.get('k')?.toString()).toBe('answer');
    c.changed({ comment: ['c1'] });
    expect(c.get('k')).toBeUndefined();

    // Began before a change, stored after it: out of date from the start.
    const before = c.snapshot(['post'])!;
    c.changed({ post: '*' });
    c.put('r', 'old', ['post'], before);
    expect(c.get('r')).toBeUndefined();
    expect(c.stats()).toEqual(expect.objectContaining({ raced: 1, entries: 0 }));
  });

  test('nothing is served or stored while the feed is not live; memory and age are bounded', () => {
    const c = cache();
    c.put('a', 'x', ['post'], c.snapshot(['post'])!);
    c.setLive(false);
    expect(c.get('a')).toBeUndefined();
    expect(c.snapshot(['post'])).toBeUndefined();
    c.setLive(true);
    expect(c.get('a')).toBeUndefined();

    for (let i = 0; i < 100; i++) c.put(`k${i}`, 'y'.repeat(200), ['post'], c.snapshot(['post'])!);
    expect(c.stats().bytes).toBeLessThanOrEqual(10_000);
    expect(c.get('k0')).toBeUndefined();
    expect(c.get('k99')?.toString()).toBe('y'.repeat(200));
    now += 1001;
    expect(c.get('k99')).toBeUndefined();
  });

  test("a read's dependencies are the entity types whose tables it names; a kept count adds what it counts", () => {
    expect(dependenciesOf('SELECT ... FROM tv_post t JOIN tb_post_stats s ...', true)).toEqual(['post', 'comment']);
    expect(dependenciesOf('SELECT ... FROM tv_user u LEFT JOIN tb_user_stats s', true)).toEqual(['user', 'post', 'comment']);
    expect(dependenciesOf('SELECT ... FROM tv_post_v2', true)).toBeNull();
    expect(dependenciesOf('SELECT ... FROM tv_post', false)).toBeNull();
  });
});
