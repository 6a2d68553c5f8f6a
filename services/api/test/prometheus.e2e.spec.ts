import { spawnSync } from 'node:child_process';
import { METRICS } from '@blog/shared';
import { ALICE, SEED_OPERATIONS, seededApi } from './support';

/**
 * GET /metrics/prometheus: valid Prometheus exposition text with the API's metrics, carrying the
 * figures of the work just done. (The worker's metrics are tested in services/worker.)
 */
const seeded = seededApi();

const promtool = spawnSync('promtool', ['--version']).status === 0;

test('serves valid exposition text with every API metric, counting the requests and syncs made', async () => {
  await seeded.api.data(SEED_OPERATIONS.GetRecentPosts); // compiled read
  await seeded.api.data('{ __schema { queryType { name } } }'); // Apollo
  await seeded.api.data(
    `mutation { createPost(title: "Metered", content: "x", authorId: "${ALICE}", published: true, sync: INLINE) { id } }`,
  );
  await seeded.api.data(`mutation { createPost(title: "Queued", content: "x", authorId: "${ALICE}", sync: QUEUED) { id } }`);

  const res = await fetch(`${seeded.api.url}/metrics/prometheus`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();

  for (const name of [
    METRICS.httpDuration,
    METRICS.graphqlDuration,
    METRICS.syncDuration,
    METRICS.syncFailures,
    METRICS.queueJobs,
    METRICS.deadLetters,
  ]) {
    expect(text).toContain(`# TYPE ${name} `);
  }
  expect(text).toMatch(/blog_http_request_duration_seconds_count\{[^}]*route="\/graphql"[^}]*status_code="200"[^}]*\} [4-9]/);
  expect(text).toMatch(/blog_graphql_request_duration_seconds_count\{[^}]*path="compiled"[^}]*\} 1\b/);
  expect(text).toMatch(/blog_graphql_request_duration_seconds_count\{[^}]*operation_type="mutation"[^}]*path="direct"[^}]*\} 2\b/);
  // The INLINE mutation refreshed its post inside the request (its author's post count is kept, in no document).
  expect(text).toMatch(/blog_sync_duration_seconds_count\{[^}]*entity_type="post"[^}]*mode="inline"[^}]*\} 1\b/);
  expect(text).not.toMatch(/blog_sync_duration_seconds_count\{[^}]*entity_type="user"[^}]*mode="inline"/);
  // The QUEUED one is waiting for a worker.
  expect(text).toMatch(/blog_queue_jobs\{[^}]*state="ready"[^}]*\} 1\b/);
  expect(text).toMatch(/blog_dead_letter_jobs\{[^}]*\} 0\b/);
  // Process metrics are there too.
  expect(text).toContain('# TYPE blog_process_resident_memory_bytes gauge');

  if (promtool) {
    // promtool parses the text (a format error is fatal) and lints names. The only lint findings
    // allowed are prom-client's own default metrics (e.g. a gauge named ..._handles_total); ours
    // must be clean.
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const output = `${check.stdout}${check.stderr}`;
    expect(output).not.toContain('error while linting');
    const findings = output.split('\n').filter(Boolean);
    expect(findings.filter((line) => !/^blog_(nodejs|process)_/.test(line))).toEqual([]);
  } else {
    process.stderr.write('promtool not installed: skipped its lint of the exposition text (CI installs it)\n');
  }
});
