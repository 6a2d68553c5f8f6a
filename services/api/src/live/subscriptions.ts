import { entityOf, type ChangeMessage } from '@blog/shared';
import type pg from 'pg';
import type { LiveFeed } from './live-feed';

type Doc = Record<string, unknown>;

/**
 * The sources of the GraphQL subscriptions, fed by the change feed (live-feed.ts): a message from
 * any process (an API's INLINE command, a worker's batch) that names a watched row makes this
 * process read it once, however many subscribers watch it, and each subscriber gets it when it
 * differs from what that subscriber got last.
 *
 *  - postChanged(id): the post's document each time it is refreshed with a change; ends when the
 *    post is deleted.
 *  - commentAdded(postId): each comment of the post created after the subscription began (by the
 *    database's clock), once.
 *
 * When the feed is lost, messages may have been missed: once it listens again every watched row is
 * read again, and what changed meanwhile is delivered then.
 */
export class SubscriptionSources {
  private readonly posts = new Map<string, Set<Watcher<Doc>>>();
  private readonly comments = new Map<string, Set<CommentWatcher>>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly pool: Pick<pg.Pool, 'query'>,
    feed: LiveFeed,
  ) {
    this.unsubscribe.push(feed.onChange((m) => void this.changed(m)));
    this.unsubscribe.push(feed.onListening(() => void this.changed({ from: '', at: Date.now(), changes: { post: '*', comment: '*' } })));
  }

  /** Subscriptions open on this process. */
  get open(): number {
    let n = 0;
    for (const set of [...this.posts.values(), ...this.comments.values()]) n += set.size;
    return n;
  }

  postChanged(id: string): AsyncIterableIterator<Doc> {
    const w = new Watcher<Doc>(() => remove(this.posts, id, w));
    add(this.posts, id, w);
    return w;
  }

  async commentAdded(postId: string): Promise<AsyncIterableIterator<Doc>> {
    const { rows } = await this.pool.query<{ now: Date }>('SELECT statement_timestamp() AS now');
    const w = new CommentWatcher(rows[0]!.now, () => remove(this.comments, postId, w));
    add(this.comments, postId, w);
    return w;
  }

  /** Ends every subscription (shutdown). */
  close(): void {
    for (const u of this.unsubscribe) u();
    for (const set of [...this.posts.values(), ...this.comments.values()]) for (const w of [...set]) w.end();
  }

  private async changed(m: ChangeMessage): Promise<void> {
    const posts = m.changes.post;
    if (posts && this.posts.size) {
      const ids = posts === '*' ? [...this.posts.keys()] : posts.filter((id) => this.posts.has(id));
      if (ids.length) await this.readPosts(ids).catch(() => undefined);
    }
    const comments = m.changes.comment;
    if (comments && this.comments.size) await this.readComments(comments === '*' ? null : comments).catch(() => undefined);
  }

  private async readPosts(ids: string[]): Promise<void> {
    const { rows } = await this.pool.query<{ id: string; data: string }>(
      `SELECT id, data::text AS data FROM ${entityOf('post').view} WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const found = new Map(rows.map((r) => [r.id, r.data]));
    for (const id of ids) {
      const text = found.get(id);
      const watchers = [...(this.posts.get(id) ?? [])];
      if (text === undefined) {
        for (const w of watchers) w.end();
        continue;
      }
      let doc: Doc | undefined;
      for (const w of watchers) {
        if (w.last === text) continue;
        w.last = text;
        w.push((doc ??= JSON.parse(text) as Doc));
      }
    }
  }

  /** The new comments of the watched posts: those named (null: any), created since the oldest watcher began. */
  private async readComments(ids: readonly string[] | null): Promise<void> {
    const postIds = [...this.comments.keys()];
    const since = new Date(Math.min(...[...this.comments.values()].flatMap((set) => [...set].map((w) => w.since.getTime()))));
    const { rows } = await this.pool.query<{ id: string; post_id: string; created_at: Date; data: string }>(
      `SELECT id, post_id, created_at, data::text AS data FROM ${entityOf('comment').view}
        WHERE post_id = ANY($1::uuid[]) AND created_at >= $2 AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[]))
        ORDER BY created_at, id`,
      [postIds, since, ids],
    );
    for (const r of rows) {
      let doc: Doc | undefined;
      for (const w of [...(this.comments.get(r.post_id) ?? [])]) {
        if (r.created_at < w.since || w.delivered.has(r.id)) continue;
        w.delivered.add(r.id);
        w.push((doc ??= JSON.parse(r.data) as Doc));
      }
    }
  }
}

function add<W>(map: Map<string, Set<W>>, key: string, w: W): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(w);
}

function remove<W>(map: Map<string, Set<W>>, key: string, w: W): void {
  const set = map.get(key);
  set?.delete(w);
  if (set && !set.size) map.delete(key);
}

/** One subscriber's stream: values pushed are read in order; ending (or the reader's return) unregisters it. */
class Watcher<T> implements AsyncIterableIterator<T> {
  /** The text of the last value delivered (postChanged delivers changes only). */
  last?: string;
  private readonly queue: T[] = [];
  private waiting?: (r: IteratorResult<T>) => void;
  private done = false;

  constructor(private readonly onEnd: () => void) {}

  push(value: T): void {
    if (this.done) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value, done: false });
    } else this.queue.push(value);
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.onEnd();
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    this.queue.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

class CommentWatcher extends Watcher<Doc> {
  readonly delivered = new Set<string>();
  constructor(
    readonly since: Date,
    onEnd: () => void,
  ) {
    super(onEnd);
  }
}
