import type pg from 'pg';
import { testPool } from '../../test/helpers';
import { SyncEngine } from './engine';
import { STATEMENTS } from './statements';
import { ENTITY_TYPES, type EntityType } from './types';

/**
 * The statements an INLINE command refreshes with (claimFew, writeFew) find every row by its key.
 * Commands run them with generic plans (force_generic_plan), which estimate `id = ANY($1)` at ten
 * rows whatever the array holds. Written as plain joins and filters, their plans scanned all of
 * tb_user and tv_user (and tb_comment) to refresh one author or post: 0.2 and 0.5 ms at 1,000
 * users, the benchmark's size. Here, with 1,000 rows per table (where the planner chose those
 * scans), no plan may scan a table of ours.
 */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function scans(node: PlanNode, found: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan') found.push(node['Relation Name'] ?? '?');
  for (const child of node.Plans ?? []) scans(child, found);
  return found;
}

describe('the few-ids refresh statements under generic plans', () => {
  let pool: pg.Pool;
  const ids = {} as Record<EntityType, string>;

  beforeAll(async () => {
    pool = testPool(2);
    await pool.query(
      `INSERT INTO tb_user (id, email, username, full_name, created_at, updated_at)
       SELECT gen_random_uuid(), 'plan' || i || '@example.com', 'plan_' || i, 'Plan ' || i, now(), now() FROM generate_series(1, 1000) i`,
    );
    await pool.query(
      `INSERT INTO tb_post (id, author_id, title, content, published, created_at, updated_at)
       SELECT gen_random_uuid(), u.id, 'Post of ' || u.username, 'Text', true, now(), now() FROM tb_user u`,
    );
    await pool.query(
      `INSERT INTO tb_comment (id, post_id, author_id, content, created_at, updated_at)
       SELECT gen_random_uuid(), p.id, p.author_id, 'A comment', now(), now() FROM tb_post p`,
    );
    await pool.query(
      `INSERT INTO tb_user_stats (user_id, post_count, published_post_count, comment_count)
       SELECT id, 1, 1, 1 FROM tb_user ON CONFLICT DO NOTHING`,
    );
    await pool.query(
      'INSERT INTO tb_tag (id, name, slug, created_at) ' +
        "SELECT gen_random_uuid(), 'Tag ' || i, 'tag-' || i, now() FROM generate_series(1, 1000) i",
    );
    await pool.query(
      `INSERT INTO tb_post_tag (post_id, tag_id, position)
       SELECT p.id, t.id, 1 FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tb_post) p
         JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tb_tag) t USING (n)`,
    );
    await new SyncEngine(pool).all();
    await pool.query('ANALYZE');
    const { rows } = await pool.query<{ user: string; post: string; comment: string; tag: string }>(
      `SELECT p.author_id AS user, p.id AS post, c.id AS comment, l.tag_id AS tag
         FROM tb_post p JOIN tb_comment c ON c.post_id = p.id JOIN tb_post_tag l ON l.post_id = p.id LIMIT 1`,
    );
    Object.assign(ids, rows[0]);
  });
  afterAll(() => pool.end());

  test.each(ENTITY_TYPES)('%s: claimFew and writeFew probe by key, scanning no table', async (entity) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      const found: Record<string, string[]> = {};
      for (const [name, text] of [
        ['claimFew', STATEMENTS[entity].claimFew],
        ['writeFew', STATEMENTS[entity].writeFew],
      ] as const) {
        await client.query(`PREPARE few_${entity}_${name} AS ${text}`);
        const args = name === 'claimFew' ? `('{${ids[entity]}}')` : `('{${ids[entity]}}', '${ids[entity]}')`;
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `EXPLAIN (FORMAT JSON) EXECUTE few_${entity}_${name}${args}`,
        );
        found[name] = scans(rows[0]!['QUERY PLAN'][0].Plan);
      }
      expect(found).toEqual({ claimFew: [], writeFew: [] });
      // And they do their work: the document is the entity's.
      const { rows } = await client.query<{ answer: { id: string } | null }>(STATEMENTS[entity].writeFew, [[ids[entity]], ids[entity]]);
      expect(rows[0]!.answer?.id).toBe(ids[entity]);
    } finally {
      await client.query('ROLLBACK');
      await client.query('DEALLOCATE ALL'); // PREPARE outlives the transaction
      client.release();
    }
  });
});
