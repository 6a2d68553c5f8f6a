import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { testDatabaseUrl, testPool } from '../../test/helpers';
import { ChangeListener, ChangePublisher, mergeChanges, parseMessage, payloads, SEND_EVERY_MS, type ChangeMessage } from './feed';
import type { EntityType } from '../model';

let pool: pg.Pool;
beforeAll(() => {
  pool = testPool(2);
});
afterAll(() => pool.end());

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the change feed', () => {
  test('messages too large for one NOTIFY are split, and every id arrives', () => {
    const ids = Array.from({ length: 1000 }, () => randomUUID());
    const texts = payloads({ from: 'x', at: 1, changes: { comment: ids, post: '*' } });
    expect(texts.length).toBeGreaterThan(4);
    for (const t of texts) expect(t.length).toBeLessThan(8000);
    const merged = new Map<EntityType, Set<string> | '*'>();
    for (const t of texts) mergeChanges(merged, parseMessage(t)!.changes);
    expect(merged.get('post')).toBe('*');
    expect([...(merged.get('comment') as Set<string>)].sort()).toEqual([...ids].sort());
    expect(parseMessage('not json')).toBeUndefined();
    expect(parseMessage('{"from":"a","at":1,"changes":{"nothing":["x"],"post":[1]}}')).toEqual({ from: 'a', at: 1, changes: {} });
  });

  test(
    'a listener gets what publishers send, coalesced while a send is in flight; ' + 'a killed connection is a loss, then it listens again',
    async () => {
      const got: ChangeMessage[] = [];
      const events: string[] = [];
      const listener = new ChangeListener(testDatabaseUrl(), {
        applicationName: 'blog-test-listen',
        onChange: (m) => got.push(m),
        onLost: (reason) => events.push(`lost: ${reason}`),
        onListening: () => events.push('listening'),
      });
      const publisher = new ChangePublisher(testDatabaseUrl(), { applicationName: 'blog-test-feed' });
      try {
        await listener.start();
        expect(listener.live).toBe(true);
        const ids = Array.from({ length: 200 }, () => randomUUID());
        for (const id of ids) publisher.publish({ post: [id] });
        await publisher.flush();
        await waitFor(() => got.flatMap((m) => m.changes.post ?? []).length === ids.length, 'every id');
        // Sends are fewer than publishes (what came while one was in flight went with the next).
        expect(got.length).toBeLessThan(ids.length);
        expect(got.every((m) => m.from === publisher.id)).toBe(true);
        expect(new Set(got.flatMap((m) => m.changes.post as string[]))).toEqual(new Set(ids));

        await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'blog-test-listen'");
        await waitFor(() => events.some((e) => e.startsWith('lost: ')), 'the loss');
        expect(listener.live).toBe(false);
        await waitFor(() => listener.live, 'listening again');
        expect(events.filter((e) => e === 'listening')).toHaveLength(2);
        const before = got.length;
        publisher.publish({ user: '*' });
        await waitFor(() => got.length > before, 'a message after the reconnection');
        expect(got.at(-1)!.changes).toEqual({ user: '*' });
      } finally {
        await publisher.close();
        await listener.close();
      }
    },
  );

  test('a publisher sends at most once every SEND_EVERY_MS however often told; the first send after a pause at once', async () => {
    const got: { at: number; message: ChangeMessage }[] = [];
    const listener = new ChangeListener(testDatabaseUrl(), {
      applicationName: 'blog-test-listen',
      onChange: (message) => got.push({ at: Date.now(), message }),
      onLost: () => undefined,
    });
    const publisher = new ChangePublisher(testDatabaseUrl(), { applicationName: 'blog-test-feed' });
    try {
      await listener.start();
      publisher.publish({ user: [randomUUID()] });
      await publisher.flush();
      await waitFor(() => got.length === 1, 'the connection warmed up');
      got.length = 0;

      // One publish per turn of the event loop for 100 ms (ids drawn from 20, so that each send is
      // one payload): a send each time would be hundreds.
      const ids = Array.from({ length: 20 }, () => randomUUID());
      let publishes = 0;
      const started = Date.now();
      while (Date.now() - started < 100) {
        publisher.publish({ post: [ids[publishes++ % ids.length]!] });
        await new Promise((r) => setImmediate(r));
      }
      const last = randomUUID();
      publisher.publish({ post: [last] });
      const elapsed = Date.now() - started;
      await publisher.flush();
      await waitFor(() => got.some((g) => g.message.changes.post?.includes(last)), 'the last id');
      expect(new Set(got.flatMap((g) => g.message.changes.post as string[]))).toEqual(new Set([...ids, last]));
      expect(publishes).toBeGreaterThan(200);
      expect(got.length).toBeLessThanOrEqual(Math.ceil(elapsed / SEND_EVERY_MS) + 2);

      // After a pause longer than the interval, a publish leaves without waiting for it.
      await new Promise((r) => setTimeout(r, 50));
      got.length = 0;
      const sentAt = Date.now();
      publisher.publish({ user: '*' });
      await publisher.flush();
      expect(Date.now() - sentAt).toBeLessThan(SEND_EVERY_MS * 20);
      await waitFor(() => got.length === 1, 'the message after the pause');
    } finally {
      await publisher.close();
      await listener.close();
    }
  });
});
