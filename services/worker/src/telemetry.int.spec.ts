import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { METRICS } from '@blog/shared';
import { builtFile, testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { createFixture } from '../test/helpers';

/**
 * Tracing and metrics of the worker, with an in-memory span exporter: the batch span links to the
 * span of every write whose job it processed, its sync spans carry what an operator needs, polling
 * makes no spans, and its Prometheus output has the worker's metrics.
 *
 * The worker runs in a child process (test/fixtures/traced-worker.cjs) rather than inside Jest:
 * Jest loads ESM-only pg-boss apart from our CommonJS code, each with its own OpenTelemetry API
 * context, which production never does.
 */
interface ExportedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
}

describe('worker telemetry', () => {
  let pool: pg.Pool;
  let report: { jobIds: string[]; spans: ExportedSpan[]; idle: string[]; metrics: string };

  beforeAll(async () => {
    pool = testPool();
    const f = await createFixture(pool, { users: 2, posts: 3, comments: 3 });
    builtFile('services', 'worker', 'dist', 'worker.js'); // says what to do if the build is missing
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [path.join(__dirname, '..', 'test', 'fixtures', 'traced-worker.cjs'), f.posts[0]!, f.posts[1]!],
      { env: { PATH: process.env.PATH ?? '', DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'silent' }, timeout: 60_000 },
    );
    report = JSON.parse(stdout) as typeof report;
  });
  afterAll(() => pool.end());

  const named = (name: string) => report.spans.filter((s) => s.name === name);

  it('links the batch span to every enqueue it processed; sync spans carry entity, count, duration and lag', () => {
    const enqueues = named('insert projection-sync');
    const mutations = report.spans.filter((s) => s.name.startsWith('mutation '));
    expect(enqueues).toHaveLength(2);
    // Each enqueue happened inside its mutation's span.
    expect(enqueues.map((s) => s.parentSpanId).sort()).toEqual(mutations.map((s) => s.spanId).sort());
    // Both jobs were processed in one batch whose span links to both enqueues.
    const [batch, ...more] = named('process projection-sync');
    expect(more).toEqual([]);
    expect(batch!.links.map((l) => l.spanId).sort()).toEqual(enqueues.map((s) => s.spanId).sort());
    const syncPost = report.spans.find((s) => s.name === 'sync post' && s.parentSpanId === batch!.spanId);
    expect(syncPost?.attributes).toMatchObject({
      'blog.sync.entity_type': 'post',
      'blog.sync.entity_count': 2,
      'blog.sync.operation': 'incremental',
      'blog.sync.duration_ms': expect.any(Number),
      'blog.sync.jobs': 2,
      'blog.sync.lag_ms.p50': expect.any(Number),
      'blog.sync.lag_ms.max': expect.any(Number),
    });
  });

  it('makes no spans while it polls an empty queue', () => {
    expect(report.idle).toEqual([]);
  });

  it('exposes its Prometheus metrics, with the batch, lag and sync figures of the work done', () => {
    const text = report.metrics;
    for (const name of [
      METRICS.syncDuration,
      METRICS.syncFailures,
      METRICS.batchJobs,
      METRICS.batchEntities,
      METRICS.queueJobs,
      METRICS.projectionLag,
      METRICS.deadLetters,
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/blog_sync_duration_seconds_count\{[^}]*entity_type="post"[^}]*mode="batch"[^}]*\} [1-9]/);
    expect(text).toMatch(/blog_sync_batch_jobs_sum\{[^}]*\} 2\b/);
    expect(text).toMatch(/blog_projection_lag_seconds_count\{[^}]*\} 2\b/);
    expect(text).toMatch(/blog_queue_jobs\{[^}]*state="ready"[^}]*\} 0/);
    expect(text).toMatch(/blog_dead_letter_jobs\{[^}]*\} 0/);
  });
});
