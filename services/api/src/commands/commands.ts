import { randomUUID } from 'node:crypto';
import {
  appendEvent,
  applyCountChanges,
  commitNow,
  composeStatement,
  countChangeParts,
  eventPart,
  insertedDocumentSql,
  GENERIC_PLANS,
  mergePlans,
  pgErrorCode,
  IN_FAILED_TRANSACTION,
  planForInserted,
  planSize,
  splitPlan,
  referencedBy,
  deleteLinks,
  entityOf,
  readEvents,
  withTransaction,
  type ChangeSet,
  type CommandEvent,
  type CountChange,
  type EntityType,
  type RowRefs,
  type SqlPart,
  type StoredEvent,
  type SyncEngine,
  type SyncMode,
  type SyncPlan,
  type SyncQueue,
} from '@blog/shared';
import type pg from 'pg';
import { ANYONE, type Actor } from '../auth/authenticator';
import { BadInputError, ClientError, clientErrorFromPg, ForbiddenError, NotFoundError } from '../errors';
import * as v from '../validate';

/**
 * The write side. Each command is ONE transaction:
 *   1. validate the input (before any database work: a bad command costs nothing and writes nothing;
 *      every argument is checked, and all the bad ones are reported together: ArgumentChecks)
 *   2. creates lock the rows they reference FOR SHARE (also the NOT_FOUND check). Required by the
 *      dependency map's race argument (shared/src/sync/dependencies.ts): a concurrent change of the
 *      referenced row waits for us, so its sync sees our row. The insert does it itself: each
 *      reference is `(SELECT id FROM tb_x WHERE id = $n FOR SHARE)`, and a missing row leaves the
 *      column NULL, which its NOT NULL constraint refuses with an error (NOT_FOUND naming the
 *      argument: errors.ts). An error, not an empty result, because the insert is not waited for
 *      (`checked`): it aborts the transaction, and nothing sent behind it takes effect.
 *   3. write tb_* (timestamps set here: no triggers)
 *   4. plan = the dependency map over the changed ids (for a create, planForInserted: no query)
 *   5. INLINE: refresh the projections in this transaction and answer from tv_*;
 *      QUEUED / DEFERRED: record the plan's sync jobs in the sync outbox ON THIS TRANSACTION'S CLIENT
 *      (the workers relay them to pg-boss: shared/src/queue/sync-queue.ts) and answer with the
 *      entity computed from tb_* (preview)
 *   6. append the command's event (event_log, migration 010), sent with the statements of step 4 or 5
 *   7. COMMIT. A command that fails anywhere rolls back whole: no row, no job, no event.
 * A QUEUED or DEFERRED create does all of it in ONE statement instead (Commands.create): its rows,
 * event, outbox rows, count changes and answer as one WITH, atomic without BEGIN and COMMIT.
 *
 * Authorization (AUTH_MODE=jwt; `actor` is ANYONE, an admin, with AUTH_MODE=none) happens inside
 * the transaction, on the rows it locks: an update or delete locks the row FOR UPDATE and compares
 * its author with the actor, so ownership cannot change between the check and the write.
 */
export type Doc = Record<string, unknown>;

export interface DeleteResult {
  id: string;
  deletedCommentIds: string[];
}

export interface CommandsOptions {
  defaultSyncMode: SyncMode;
  deferSeconds: number;
  /** SYNC_FANOUT_MAX_IDS: a plan larger than this is left to the workers (see inTransaction). */
  fanOutMaxIds: number;
  /** After a command's transaction committed: the rows it changed for readers (for the change feed). */
  onCommitted?: (changes: Partial<SyncPlan>) => void;
  /** DEFAULT_PAGE_SIZE and MAX_PAGE_SIZE, for `events` (see Commands.events). */
  defaultPageSize: number;
  maxPageSize: number;
}

/**
 * What a command did about its sync, set on its answer (an own property, not enumerable: no
 * GraphQL field sees it) for the response's extensions: `restQueued` when the projections
 * embedding what it wrote were left to the workers (a fan-out larger than SYNC_FANOUT_MAX_IDS;
 * `extensions.sync.restQueued`), and the sync jobs it enqueued (their ids make the response's
 * `extensions.syncToken`, live/sync-tokens.ts).
 */
export const SYNC_RECEIPT = Symbol('syncReceipt');

export interface SyncReceipt {
  restQueued: boolean;
  jobs: readonly string[];
}

/** The receipt on a command's answer, if it has one. */
export function receiptOf(answer: unknown): SyncReceipt | undefined {
  return typeof answer === 'object' && answer !== null && SYNC_RECEIPT in answer
    ? (answer as { [SYNC_RECEIPT]: SyncReceipt })[SYNC_RECEIPT]
    : undefined;
}

/** An event as the GraphQL type Event has it. */
export interface EventDoc extends Omit<StoredEvent, 'at'> {
  at: string;
  cursor: string;
}

/**
 * The command's event (event_log): its name, the actor and its validated arguments (without the
 * sync mode). Its entities are the one it answers with or deleted first, then every id of
 * `changes`, then `about`.
 */
export interface EventOf {
  command: string;
  actor: Actor;
  args: Record<string, unknown>;
  /** Other entities the event is about, which the command did not write: a comment's post. */
  about?: string[];
}

/** What a command wrote, for its transaction to plan, refresh or enqueue, and answer (Commands.command). */
export interface Written {
  event: EventOf;
  changes: ChangeSet;
  /** The entity to answer with, if any. */
  entity?: { type: EntityType; id: string };
  /** What the write changed in kept counts (shared/src/sync/kept-counts.ts). */
  counts?: CountChange[];
  /** A create: the entity inserted, whose plan needs no query (planForInserted). */
  inserted?: RowRefs;
  /**
   * A delete: the rows it removed, with their references; what counts or lists them is refreshed
   * with the rest of its plan (referencedBy). The dependency map finds such relations in tb_* (where
   * the rows are gone) and in tv_*, where a row is not yet when the worker is still projecting its
   * creation: then the post and author that sync writes with the row would keep it
   * (test/delete-race.e2e.spec.ts).
   */
  removed?: RowRefs[];
  /** More to refresh, named by the command (the rows on the other side of links it wrote or removed). */
  also?: Partial<SyncPlan>;
  /**
   * The write's statement, sent and not waited for: a create whose row needs nothing back from the
   * database (its id is made here) lets the refresh and the COMMIT go out behind it, and the whole
   * transaction costs one round trip. Its failure (a missing referenced row) is the command's error
   * (step 2 above).
   */
  checked?: Promise<unknown>;
}

export class Commands {
  constructor(
    private readonly pool: pg.Pool,
    private readonly sync: SyncEngine,
    private readonly queue: SyncQueue,
    private readonly options: CommandsOptions,
  ) {}

  syncMode(requested: unknown): SyncMode {
    if (requested === null || requested === undefined) return this.options.defaultSyncMode;
    return requested as SyncMode;
  }

  // ---- users -------------------------------------------------------------------------------

  /**
   * An admin (or anyone, AUTH_MODE=none) creates users with new ids. Any other token may create
   * one user: its own, whose id is the token's subject (sign-up); a second one is FORBIDDEN.
   */
  createUser(
    input: { email?: unknown; username?: unknown; fullName?: unknown; bio?: unknown },
    mode: SyncMode,
    actor: Actor = ANYONE,
  ): Promise<Doc> {
    const args = new v.ArgumentChecks();
    const row = {
      email: args.check(() => v.email(input.email)),
      username: args.check(() => v.username(input.username)),
      fullName: args.check(() => v.text(input.fullName, 'fullName', v.LIMITS.fullName, true)),
      bio: args.check(() => v.optionalText(input.bio, 'bio', v.LIMITS.bio)),
    };
    args.done();
    const event = { command: 'createUser', actor, args: row };
    return this.entityCommand(mode, async (client) => {
      if (!actor.admin) {
        const { rows } = await client.query<{ id: string }>(
          `WITH u AS (INSERT INTO tb_user (id, email, username, full_name, bio, created_at, updated_at)
                      VALUES ($5, $1, $2, $3, $4, now(), now()) ON CONFLICT (id) DO NOTHING RETURNING id),
                s AS (INSERT INTO tb_user_stats (user_id) SELECT id FROM u)
           SELECT id FROM u`,
          [row.email, row.username, row.fullName, row.bio, actor.userId],
        );
        if (!rows[0]) throw new ForbiddenError('Your token already has its user; only an admin may create other users.');
        const id = rows[0].id;
        return { event, changes: { user: [id] }, entity: { type: 'user', id }, inserted: { type: 'user', id, columns: {} } };
      }
      // With its counts row (zeros), which the commands keep from now on.
      const { rows } = await client.query<{ id: string }>(
        `WITH u AS (INSERT INTO tb_user (email, username, full_name, bio, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, now(), now()) RETURNING id),
              s AS (INSERT INTO tb_user_stats (user_id) SELECT id FROM u)
         SELECT id FROM u`,
        [row.email, row.username, row.fullName, row.bio],
      );
      const id = rows[0]!.id;
      return { event, changes: { user: [id] }, entity: { type: 'user', id }, inserted: { type: 'user', id, columns: {} } };
    });
  }

  updateUser(
    input: { id?: unknown; email?: unknown; username?: unknown; fullName?: unknown; bio?: unknown },
    mode: SyncMode,
    actor: Actor = ANYONE,
  ): Promise<Doc> {
    const args = new v.ArgumentChecks();
    const id = args.check(() => v.uuid(input.id, 'id'));
    const sets = new Sets();
    if (input.email !== undefined)
      sets.add(
        'email',
        args.check(() => v.email(notNull(input.email, 'email'))),
      );
    if (input.username !== undefined)
      sets.add(
        'username',
        args.check(() => v.username(notNull(input.username, 'username'))),
      );
    if (input.fullName !== undefined) {
      sets.add(
        'full_name',
        args.check(() => v.text(notNull(input.fullName, 'fullName'), 'fullName', v.LIMITS.fullName, true)),
      );
    }
    if (input.bio !== undefined)
      sets.add(
        'bio',
        args.check(() => v.optionalText(input.bio, 'bio', v.LIMITS.bio)),
      );
    args.done();
    if (!sets.size) throw new BadInputError('Give at least one of email, username, fullName, bio to change.');
    return this.entityCommand(mode, async (client) => {
      if (!actor.admin && id !== actor.userId) throw new ForbiddenError('You may only change your own user.', 'id');
      const { rowCount } = await client.query(`UPDATE tb_user SET ${sets.sql()}, updated_at = now() WHERE id = $1`, [id, ...sets.values]);
      if (!rowCount) throw new NotFoundError('No user with that id.', 'id');
      return {
        event: { command: 'updateUser', actor, args: { id, ...sets.fields() } },
        changes: { user: [id] },
        entity: { type: 'user', id },
      };
    });
  }

  // ---- posts -------------------------------------------------------------------------------

  createPost(
    input: { title?: unknown; content?: unknown; authorId?: unknown; published?: unknown },
    mode: SyncMode,
    actor: Actor = ANYONE,
  ): Promise<Doc> {
    const args = new v.ArgumentChecks();
    const row = {
      title: args.check(() => v.text(input.title, 'title', v.LIMITS.title, true)),
      content: args.check(() => v.text(input.content, 'content', v.LIMITS.postContent)),
      authorId: args.check(() => authorOf(input.authorId, actor)),
      published: args.check(() => bool(input.published ?? false, 'published')),
    };
    args.done();
    mayWriteAs(actor, row.authorId);
    const id = randomUUID();
    // The author locked FOR SHARE, or NOT_FOUND, by the insert itself (step 2 above). With its
    // counts row (zeros), which the commands keep from now on.
    return this.create(mode, {
      rows: {
        ctes: [
          [
            'p',
            `INSERT INTO tb_post (id, author_id, title, content, published, created_at, updated_at)
             VALUES ($1, (SELECT id FROM tb_user WHERE id = $2 FOR SHARE), $3, $4, $5, now(), now()) RETURNING *`,
          ],
          ['s', 'INSERT INTO tb_post_stats (post_id) SELECT id FROM p'],
        ],
        values: [id, row.authorId, row.title, row.content, row.published],
      },
      event: { command: 'createPost', actor, args: row },
      counts: [{ type: 'user', id: row.authorId, counts: { postCount: 1, publishedPostCount: row.published ? 1 : 0 } }],
      inserted: { type: 'post', id, columns: { author_id: row.authorId } },
    });
  }

  updatePost(
    input: { id?: unknown; title?: unknown; content?: unknown; published?: unknown },
    mode: SyncMode,
    actor: Actor = ANYONE,
  ): Promise<Doc> {
    const args = new v.ArgumentChecks();
    const id = args.check(() => v.uuid(input.id, 'id'));
    const sets = new Sets();
    if (input.title !== undefined)
      sets.add(
        'title',
        args.check(() => v.text(notNull(input.title, 'title'), 'title', v.LIMITS.title, true)),
      );
    if (input.content !== undefined) {
      sets.add(
        'content',
        args.check(() => v.text(notNull(input.content, 'content'), 'content', v.LIMITS.postContent)),
      );
    }
    if (input.published !== undefined)
      sets.add(
        'published',
        args.check(() => bool(input.published, 'published')),
      );
    args.done();
    if (!sets.size) throw new BadInputError('Give at least one of title, content, published to change.');
    return this.entityCommand(mode, async (client) => {
      await lockOwned(client, 'post', id, actor);
      const changed = await updatePostReturningPublished(client, id, sets);
      return {
        event: { command: 'updatePost', actor, args: { id, ...sets.fields() } },
        changes: { post: [id] },
        entity: { type: 'post', id },
        counts: [changed],
      };
    });
  }

  publishPost(input: { id?: unknown }, mode: SyncMode, actor: Actor = ANYONE): Promise<Doc> {
    const id = v.uuid(input.id, 'id');
    return this.entityCommand(mode, async (client) => {
      await lockOwned(client, 'post', id, actor);
      const sets = new Sets();
      sets.add('published', true);
      const changed = await updatePostReturningPublished(client, id, sets);
      return {
        event: { command: 'publishPost', actor, args: { id } },
        changes: { post: [id] },
        entity: { type: 'post', id },
        counts: [changed],
      };
    });
  }

  /**
   * Deletes the post's comments explicitly (no ON DELETE CASCADE), so their ids reach the plan; its
   * counts row goes with it (ON DELETE CASCADE, migration 007).
   */
  deletePost(input: { id?: unknown }, mode: SyncMode, actor: Actor = ANYONE): Promise<DeleteResult> {
    const id = v.uuid(input.id, 'id');
    return this.command(mode, async (client) => {
      // Locked FOR UPDATE for admins too: createComment's FOR SHARE on the post waits, so no
      // comment appears meanwhile.
      const post = await lockOwned(client, 'post', id, actor, { evenForAdmins: true });
      const { rows } = await client.query<{ id: string; author_id: string }>(
        'DELETE FROM tb_comment WHERE post_id = $1 RETURNING id, author_id',
        [id],
      );
      const unlinked = await deleteLinks(client, 'post', [id]);
      await client.query('DELETE FROM tb_post WHERE id = $1', [id]);
      const deletedCommentIds = rows.map((r) => r.id);
      const counts: CountChange[] = [
        { type: 'user', id: post!.author_id, counts: { postCount: -1, publishedPostCount: post!.published ? -1 : 0 } },
        ...rows.map((r) => ({ type: 'user' as const, id: r.author_id, counts: { commentCount: -1 } })),
      ];
      return {
        event: { command: 'deletePost', actor, args: { id } },
        changes: { post: [id], comment: deletedCommentIds },
        removed: [
          { type: 'post', id, columns: { author_id: post!.author_id } },
          ...rows.map((r) => ({ type: 'comment' as const, id: r.id, columns: { post_id: id, author_id: r.author_id } })),
        ],
        also: unlinked,
        result: { id, deletedCommentIds },
        counts,
      };
    });
  }

  // ---- comments ----------------------------------------------------------------------------

  createComment(input: { postId?: unknown; authorId?: unknown; content?: unknown }, mode: SyncMode, actor: Actor = ANYONE): Promise<Doc> {
    const args = new v.ArgumentChecks();
    const row = {
      postId: args.check(() => v.uuid(input.postId, 'postId')),
      authorId: args.check(() => authorOf(input.authorId, actor)),
      content: args.check(() => v.text(input.content, 'content', v.LIMITS.commentContent)),
    };
    args.done();
    mayWriteAs(actor, row.authorId);
    const id = randomUUID();
    // The post, then the author, locked FOR SHARE, or NOT_FOUND, by the insert itself (step 2 above).
    return this.create(mode, {
      rows: {
        ctes: [
          [
            'c',
            `INSERT INTO tb_comment (id, post_id, author_id, content, created_at, updated_at)
             VALUES ($1, (SELECT id FROM tb_post WHERE id = $2 FOR SHARE), (SELECT id FROM tb_user WHERE id = $3 FOR SHARE),
                     $4, now(), now())
             RETURNING *`,
          ],
        ],
        values: [id, row.postId, row.authorId, row.content],
      },
      event: { command: 'createComment', actor, args: row, about: [row.postId] },
      counts: [
        { type: 'user', id: row.authorId, counts: { commentCount: 1 } },
        { type: 'post', id: row.postId, counts: { commentCount: 1 } },
      ],
      inserted: { type: 'comment', id, columns: { post_id: row.postId, author_id: row.authorId } },
    });
  }

  deleteComment(input: { id?: unknown }, mode: SyncMode, actor: Actor = ANYONE): Promise<DeleteResult> {
    const id = v.uuid(input.id, 'id');
    return this.command(mode, async (client) => {
      await lockOwned(client, 'comment', id, actor);
      const { rows } = await client.query<{ author_id: string; post_id: string }>(
        'DELETE FROM tb_comment WHERE id = $1 RETURNING author_id, post_id',
        [id],
      );
      if (!rows[0]) throw new NotFoundError('No comment with that id.', 'id');
      return {
        event: { command: 'deleteComment', actor, args: { id }, about: [rows[0].post_id] },
        changes: { comment: [id] },
        removed: [{ type: 'comment', id, columns: { post_id: rows[0].post_id, author_id: rows[0].author_id } }],
        result: { id, deletedCommentIds: [] },
        counts: [
          { type: 'user', id: rows[0].author_id, counts: { commentCount: -1 } },
          { type: 'post', id: rows[0].post_id, counts: { commentCount: -1 } },
        ],
      };
    });
  }

  // ---- the event log -----------------------------------------------------------------------

  /**
   * `events(entityId, limit, after)`: an entity's events, newest first, a page at a time (`after`:
   * the cursor of the previous page's last event). Admins only. Read from the primary, which the
   * commands append to.
   */
  async events(input: { entityId?: unknown; limit?: unknown; after?: unknown }, actor: Actor): Promise<EventDoc[]> {
    if (!actor.admin) throw new ForbiddenError("Only an admin may read the event log (events); this token's role is not admin.");
    const args = new v.ArgumentChecks();
    const entityId = args.check(() => v.uuid(input.entityId, 'entityId'));
    const limit = args.check(() => v.limit(input.limit, this.options.defaultPageSize, this.options.maxPageSize));
    const after = args.check(() => v.eventCursor(input.after));
    args.done();
    const events = await readEvents(this.pool, entityId, limit, after ?? undefined);
    return events.map((e) => ({ ...e, at: e.at.toISOString(), cursor: v.encodeEventCursor(e.id) }));
  }

  // ---- the transaction ---------------------------------------------------------------------

  /**
   * A create: its rows (CTEs, the first one the entity's row, RETURNING *), its event and its count
   * changes, as ONE statement, atomic on its own (no BEGIN, no COMMIT to wait for): the rows, the
   * event, then INLINE the new row's projection (SyncEngine.createdPart) and QUEUED or DEFERRED the
   * outbox rows of its plan, the count changes last, and the answer: the document built from the
   * inserted row (which the statement cannot read back from its table), as written to tv_* INLINE.
   * A create whose count changes need more than one row per entity type, or, INLINE, whose plan
   * holds more than its own row (none today), takes the command's transaction instead.
   */
  private async create(mode: SyncMode, c: Create): Promise<Doc> {
    const { type, id } = c.inserted;
    const written: Written = { event: c.event, changes: { [type]: [id] }, entity: { type, id }, counts: c.counts, inserted: c.inserted };
    const counts = countChangeParts(c.counts);
    const plan = planForInserted(c.inserted);
    // The one statement writes one projection INLINE: the new row's. A declaration whose documents
    // count a new row by its reference (the plan holds more than the row) takes the transaction,
    // whose refresh covers the whole plan.
    if (!counts || (mode === 'INLINE' && planSize(plan) > 1)) {
      const rows = composeStatement([c.rows], { sql: 'SELECT 1', values: [] });
      return this.entityCommand(mode, async (client) => ({ ...written, checked: client.query(rows.text, rows.values) }));
    }
    const source = c.rows.ctes[0]![0];
    const outbox =
      mode === 'INLINE'
        ? undefined
        : this.queue.outboxPart(plan, {
            mode: mode === 'DEFERRED' ? 'DEFERRED' : 'QUEUED',
            deferSeconds: this.options.deferSeconds,
          });
    const sync = outbox
      ? { part: outbox.part, answer: { sql: insertedDocumentSql(type, source), values: [id] } }
      : this.sync.createdPart(type, source, id);
    const statement = composeStatement([c.rows, eventPart(eventOf(written)), sync.part, ...counts], sync.answer);
    const write = () => this.pool.query<{ data: Doc }>(statement.text, statement.values);
    let answer: Doc | undefined;
    try {
      answer = (await (outbox ? write() : this.sync.writeCreated(type, write))).rows[0]?.data;
    } catch (err) {
      throw toClientError(err);
    }
    if (answer === undefined) throw new Error('the written entity has no document');
    // What readers see changed: the rows whose kept counts it changed, and INLINE the new projection.
    this.options.onCommitted?.(outbox ? countOwners(c.counts) : mergePlans([{ [type]: [id] }, countOwners(c.counts)]));
    Object.defineProperty(answer, SYNC_RECEIPT, { value: { restQueued: false, jobs: outbox?.ids ?? [] } satisfies SyncReceipt });
    return answer;
  }

  /** A command answering with an entity: from tv_* after an INLINE sync, else its preview. */
  entityCommand(mode: SyncMode, write: (client: pg.PoolClient) => Promise<Written>): Promise<Doc> {
    return this.command<Doc>(mode, async (client) => ({ ...(await write(client)), result: undefined }));
  }

  /** A command: `write` runs in its transaction, then the plan is refreshed (INLINE) or enqueued. */
  async command<R>(mode: SyncMode, write: (client: pg.PoolClient) => Promise<Written & { result: R | undefined }>): Promise<R> {
    try {
      let committed: Partial<SyncPlan> | undefined;
      // Its statements are prepared (QueryHooks.prepare, shared/src/db/queries.ts): plan them once per connection.
      const answer = await withTransaction(
        this.pool,
        (client) => this.inTransaction(client, mode, write, (changed) => (committed = changed)),
        { settings: GENERIC_PLANS, beginWithFirstStatement: true },
      );
      if (committed) this.options.onCommitted?.(committed);
      return answer;
    } catch (err) {
      throw toClientError(err);
    }
  }

  private async inTransaction<R>(
    client: pg.PoolClient,
    mode: SyncMode,
    write: (client: pg.PoolClient) => Promise<Written & { result: R | undefined }>,
    changed: (rows: Partial<SyncPlan>) => void,
  ): Promise<R> {
    const written = await write(client);
    written.checked?.catch(() => undefined); // observed now; awaited (and raised) below
    // A create's plan follows from its row (no query); any other change asks the dependency map,
    // which reads at most fanOutMaxIds + 1 rows. Past that (a user with 100,000 comments renamed),
    // the transaction refreshes only what the command wrote itself (at most fanOutMaxIds ids) and
    // enqueues the change for the workers, which expand it and sync it in bounded chunks
    // (services/worker/src/batch.ts): no command becomes one huge transaction.
    // The command's event is not waited for: it leaves with the dependency map's statement, or,
    // for a create, with the rest of the transaction (its refresh or enqueue, and COMMIT). Its
    // failure is raised as the command's, before anything that followed it.
    const bound = this.options.fanOutMaxIds;
    const logged = appendEvent(client, eventOf(written));
    const planning = written.inserted ? undefined : this.sync.planBounded(client, written.changes, bound);
    logged.catch(() => undefined); // observed now; awaited (and raised) below
    let planned = written.inserted
      ? planForInserted(written.inserted)
      : await planning!.catch((err: unknown) => logged.then(() => Promise.reject(err)));
    let fanOut: SyncPlan | undefined;
    if (!planned) {
      fanOut = mergePlans([written.changes]);
      planned = written.entity ? mergePlans([{ [written.entity.type]: [written.entity.id] }]) : splitPlan(fanOut, bound)[0]!;
    }
    const plan =
      written.removed || written.also ? mergePlans([planned, ...(written.removed ?? []).map(referencedBy), written.also ?? {}]) : planned;
    const counts = written.counts ?? [];
    let answer: R | Doc | undefined = written.result;
    const jobs: string[] = [];
    // The fan-out's enqueue goes with the command's other statements (it is part of its transaction).
    const expanding = fanOut
      ? this.queue.enqueue(client, fanOut, { mode: mode === 'DEFERRED' ? 'DEFERRED' : 'QUEUED', expand: true })
      : undefined;
    expanding?.catch(() => undefined); // observed now; awaited (and raised) below
    if (mode === 'INLINE') {
      // The refresh applies the count changes after its own statements (kept-counts.ts, "Hot rows"),
      // and answers with the document it wrote (read back from tv_* if it could not say).
      const refreshed = this.sync.refreshIn(client, plan, {
        counts,
        ...(written.entity ? { answer: written.entity } : {}),
        after: written.checked ? Promise.all([written.checked, logged]) : logged,
        ...(written.inserted ? { created: written.inserted } : {}),
      });
      // Its statements are all sent (pipelined): when nothing is left to send, COMMIT goes right
      // behind them, so the rows it locks (a busy post's or author's counts row) are released
      // without waiting for a round trip back to us. From then on the command's outcome is
      // PostgreSQL's: a failed statement turns that COMMIT into ROLLBACK and its error is raised,
      // and the code left to run only reads the refresh's answers (the engine's metrics hook is
      // isolated from it). Not for QUEUED: its answer (the preview) is computed in JavaScript after
      // its last statement, and a failure there must still roll back (commands.int.spec.ts).
      const answered = (!written.entity || this.sync.answers(plan, written.entity)) && !expanding;
      if (answered) commitNow(client);
      const report = await refreshed;
      jobs.push(...((await expanding) ?? []));
      if (written.entity) {
        const { type, id } = written.entity;
        answer =
          report.answer ?? (await client.query<{ data: Doc }>(`SELECT data FROM ${entityOf(type).view} WHERE id = $1`, [id])).rows[0]?.data;
      }
    } else {
      // The enqueue, the preview and the count changes are sent without waiting in between (with the
      // write itself, for a create: one round trip, then COMMIT). The counts rows stay locked from
      // the count changes to COMMIT only.
      const enqueued = this.queue.enqueue(client, plan, { mode, deferSeconds: this.options.deferSeconds });
      const previewed = written.entity ? this.sync.preview<Doc>(written.entity.type, [written.entity.id], client) : undefined;
      const counted = applyCountChanges(client, counts);
      await raiseCause([written.checked, logged, counted, enqueued, previewed, expanding]);
      jobs.push(...(await enqueued), ...((await expanding) ?? []));
      if (previewed) answer = (await previewed).get(written.entity!.id);
    }
    if (answer === undefined) throw new Error('the written entity has no document');
    // What readers see changed once this commits: the projections refreshed INLINE, and in every
    // mode the rows whose kept counts it changed (merged in at read time from the counts rows).
    changed(mode === 'INLINE' ? mergePlans([plan, countOwners(counts)]) : countOwners(counts));
    if (typeof answer === 'object' && answer !== null)
      Object.defineProperty(answer, SYNC_RECEIPT, { value: { restQueued: fanOut !== undefined, jobs } satisfies SyncReceipt });
    return answer as R;
  }
}

/** The rows whose kept counts changed: readers see them changed once the command commits. */
function countOwners(counts: readonly CountChange[]): SyncPlan {
  return mergePlans(counts.map((c) => ({ [c.type]: [c.id] })));
}

/** A command's failure as the client is told it: a PostgreSQL error it caused mapped to its code. */
function toClientError(err: unknown): unknown {
  if (err instanceof ClientError) return err;
  return clientErrorFromPg(err) ?? err;
}

/** What a create writes (Commands.create). */
interface Create {
  rows: SqlPart;
  event: EventOf;
  counts: CountChange[];
  inserted: RowRefs;
}

/** The event_log row of what a command wrote (see EventOf). */
function eventOf(written: Written): CommandEvent {
  const { command, actor, args, about = [] } = written.event;
  const subject = written.entity ?? written.removed?.[0];
  if (!subject) throw new Error(`${command} names no entity for its event`);
  const ids = new Set([subject.id, ...Object.values(written.changes).flat(), ...about]);
  return { command, entityType: subject.type, entityIds: [...ids], actorId: actor.userId, actorAdmin: actor.admin, args };
}

/**
 * Waits for statements sent together and raises the cause of their failure, if any: the first error
 * that is not "the transaction is aborted" (which only follows the cause), else the first error.
 */
async function raiseCause(sent: (Promise<unknown> | undefined)[]): Promise<void> {
  const failures = (await Promise.allSettled(sent)).flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length) throw failures.find((err) => pgErrorCode(err) !== IN_FAILED_TRANSACTION) ?? failures[0];
}

/** SET clauses of an UPDATE; column names are constants of this module. */
class Sets {
  readonly values: unknown[] = [];
  private readonly columns: string[] = [];
  add(column: string, value: unknown): void {
    this.columns.push(column);
    this.values.push(value);
  }
  get size(): number {
    return this.columns.length;
  }
  /** Placeholders start at $2 ($1 is the id). */
  sql(): string {
    return this.columns.map((c, i) => `${c} = $${i + 2}`).join(', ');
  }
  /** The values by argument name (the column's name in camelCase: full_name is fullName). */
  fields(): Record<string, unknown> {
    return Object.fromEntries(this.columns.map((c, i) => [c.replace(/_([a-z])/g, (_, l: string) => l.toUpperCase()), this.values[i]]));
  }
}

export function notNull(value: unknown, field: string): unknown {
  if (value === null) throw new BadInputError(`${field} cannot be null.`, field);
  return value;
}

export function bool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new BadInputError(`${field} must be true or false.`, field);
  return value;
}

// ---- authorization ---------------------------------------------------------------------------

export function owns(actor: Actor, authorId: string): boolean {
  return actor.admin || authorId === actor.userId;
}

/** authorId as given, or the token's subject when omitted; BAD_USER_INPUT when neither. */
export function authorOf(value: unknown, actor: Actor): string {
  if (value === undefined || value === null) {
    if (actor.userId) return actor.userId;
    throw new BadInputError('authorId is required.', 'authorId');
  }
  return v.uuid(value, 'authorId');
}

/** Writing as `authorId`: yourself, or anyone for an admin. */
export function mayWriteAs(actor: Actor, authorId: string): void {
  if (!owns(actor, authorId))
    throw new ForbiddenError("You may only write as yourself: authorId must be your token's subject.", 'authorId');
}

export const OWNED = {
  post: {
    sql: 'SELECT author_id, published FROM tb_post WHERE id = $1 FOR UPDATE',
    missing: 'No post with that id.',
    forbidden: 'Only the author (or an admin) may change or delete this post.',
  },
  comment: {
    sql: 'SELECT author_id, NULL::boolean AS published FROM tb_comment WHERE id = $1 FOR UPDATE',
    missing: 'No comment with that id.',
    forbidden: 'Only the author (or an admin) may delete this comment.',
  },
} as const;

/**
 * A non-admin's update or delete: lock the row FOR UPDATE (held to COMMIT) and check its author,
 * so the write that follows acts on a row the actor owns. Admins skip it (nothing to check, and
 * the statement count of AUTH_MODE=none stays what it was) unless the caller needs the lock itself.
 */
export async function lockOwned(
  client: pg.ClientBase,
  type: keyof typeof OWNED,
  id: string,
  actor: Actor,
  options: { evenForAdmins?: boolean } = {},
): Promise<{ author_id: string; published: boolean | null } | undefined> {
  if (actor.admin && !options.evenForAdmins) return undefined;
  const { sql, missing, forbidden } = OWNED[type];
  const { rows } = await client.query<{ author_id: string; published: boolean | null }>(sql, [id]);
  if (!rows[0]) throw new NotFoundError(missing, 'id');
  if (!owns(actor, rows[0].author_id)) throw new ForbiddenError(forbidden, 'id');
  return rows[0];
}

/**
 * Updates a post and returns what it changed in its author's counts: the published flag before the
 * update is read from the row locked FOR UPDATE in the same statement (the newest version, whatever
 * the statement's snapshot), so two concurrent publishes count once.
 */
async function updatePostReturningPublished(client: pg.ClientBase, id: string, sets: Sets): Promise<CountChange> {
  const { rows } = await client.query<{ author_id: string; published: boolean; was: boolean }>(
    `UPDATE tb_post p SET ${sets.sql()}, updated_at = now()
       FROM (SELECT id, published AS was FROM tb_post WHERE id = $1 FOR UPDATE) o
      WHERE p.id = o.id
     RETURNING p.author_id, p.published, o.was`,
    [id, ...sets.values],
  );
  const row = rows[0];
  if (!row) throw new NotFoundError('No post with that id.', 'id');
  return { type: 'user', id: row.author_id, counts: { publishedPostCount: Number(row.published) - Number(row.was) } };
}

type Args = Record<string, unknown>;

/** A mutation's resolver body: the command it runs, with its arguments, sync mode and actor. */
export type MutationRun = (commands: Commands, args: Args, mode: SyncMode, actor: Actor) => Promise<unknown>;

/**
 * A set of commands offered as GraphQL mutations: their schema (`extend type Mutation { ... }` and
 * the types they need; the base Mutation type is in graphql/type-defs.ts) and their resolvers.
 * COMMAND_MODULES (./modules.ts) lists them.
 */
export interface CommandModule {
  typeDefs?: string;
  mutations: Readonly<Record<string, MutationRun>>;
}

/** The users', posts' and comments' commands (their schema: graphql/type-defs.ts). */
export const blogCommands: CommandModule = {
  mutations: {
    createUser: (c, a, mode, actor) => c.createUser(a, mode, actor),
    updateUser: (c, a, mode, actor) => c.updateUser(a, mode, actor),
    createPost: (c, a, mode, actor) => c.createPost(a, mode, actor),
    updatePost: (c, a, mode, actor) => c.updatePost(a, mode, actor),
    publishPost: (c, a, mode, actor) => c.publishPost(a, mode, actor),
    deletePost: (c, a, mode, actor) => c.deletePost(a, mode, actor),
    createComment: (c, a, mode, actor) => c.createComment(a, mode, actor),
    deleteComment: (c, a, mode, actor) => c.deleteComment(a, mode, actor),
  },
};
