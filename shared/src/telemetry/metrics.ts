import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queryable } from '../db/pool';
import { syncQueueDepth } from '../queue/depth';
import { shapeRows, type ShapeRow } from '../sync/shapes';

/**
 * Every Prometheus metric this project exports, in one place: the services register them from
 * here and the Grafana dashboard (infra/grafana/dashboards/sync.json) may only query these names
 * (a test checks it).
 */
export const METRICS = {
  httpDuration: 'blog_http_request_duration_seconds',
  graphqlDuration: 'blog_graphql_request_duration_seconds',
  syncDuration: 'blog_sync_duration_seconds',
  syncFailures: 'blog_sync_failures_total',
  batchJobs: 'blog_sync_batch_jobs',
  batchEntities: 'blog_sync_batch_entities',
  queueJobs: 'blog_queue_jobs',
  projectionLag: 'blog_projection_lag_seconds',
  deadLetters: 'blog_dead_letter_jobs',
  projectionVersions: 'blog_projection_versions',
  feedDelay: 'blog_feed_delay_seconds',
  responseCacheLookups: 'blog_response_cache_lookups_total',
  responseCacheBytes: 'blog_response_cache_bytes',
  subscriptionsOpen: 'blog_subscriptions_open',
  syncTokenWait: 'blog_sync_token_wait_seconds',
  projectionBuildRows: 'blog_projection_build_rows',
} as const;

/** Prefix of the default Node.js process metrics (CPU, memory, event loop lag, GC). */
export const DEFAULT_METRICS_PREFIX = 'blog_';

/** How a sync ran: inside a mutation's transaction, in a worker batch, or as a full rebuild. */
export type SyncMetricMode = 'inline' | 'batch' | 'full';

export interface MetricsOptions {
  service: 'api' | 'worker';
  /**
   * The database to read the queue depth and dead letters from at scrape time (a function: the
   * pool may not exist yet when the metrics are created). Without it those gauges stay empty.
   */
  db?: () => Queryable | undefined;
}

export interface ServiceMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  graphqlDuration: Histogram<'operation_type' | 'path'>;
  syncDuration: Histogram<'entity_type' | 'mode'>;
  syncFailures: Counter<'entity_type' | 'mode'>;
  batchJobs: Histogram;
  batchEntities: Histogram;
  projectionLag: Histogram;
  /** The API's only: the change feed, the response cache, subscriptions, sync tokens. */
  live?: LiveMetrics;
}

export interface LiveMetrics {
  feedDelay: Histogram;
  cacheLookups: Counter<'result'>;
  tokenWait: Histogram<'outcome'>;
  /** Read at scrape time from what the API registers here. */
  gauges: { cacheBytes?: () => number; subscriptionsOpen?: () => number };
}

// Buckets in seconds. Reads are sub-millisecond to a few ms; syncs a few ms to a second; lag up to
// the DEFERRED delay (30 s by default) and beyond.
const FAST_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const SYNC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const COUNT_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/** A registry of its own per service instance (tests can run several in one process). */
export function createMetrics(options: MetricsOptions): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: `blog-${options.service}` });
  collectDefaultMetrics({ register: registry, prefix: DEFAULT_METRICS_PREFIX });
  const registers = [registry];

  const metrics: ServiceMetrics = {
    registry,
    httpDuration: new Histogram({
      name: METRICS.httpDuration,
      help: 'HTTP requests by method, route and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: FAST_BUCKETS,
      registers,
    }),
    graphqlDuration: new Histogram({
      name: METRICS.graphqlDuration,
      help: 'GraphQL operations by type and by execution path (compiled SQL reads, direct mutations, or Apollo)',
      labelNames: ['operation_type', 'path'],
      buckets: FAST_BUCKETS,
      registers,
    }),
    syncDuration: new Histogram({
      name: METRICS.syncDuration,
      help: 'Projection refreshes (one per entity type and batch) by entity type and mode',
      labelNames: ['entity_type', 'mode'],
      buckets: SYNC_BUCKETS,
      registers,
    }),
    syncFailures: new Counter({
      name: METRICS.syncFailures,
      help: 'Projection refreshes that failed, by entity type and mode',
      labelNames: ['entity_type', 'mode'],
      registers,
    }),
    batchJobs: new Histogram({ name: METRICS.batchJobs, help: 'Jobs per worker batch', buckets: COUNT_BUCKETS, registers }),
    batchEntities: new Histogram({
      name: METRICS.batchEntities,
      help: 'Distinct entities refreshed per worker batch (after merging and de-duplication)',
      buckets: COUNT_BUCKETS,
      registers,
    }),
    projectionLag: new Histogram({
      name: METRICS.projectionLag,
      help: "Time from a write's commit to its projections' commit",
      buckets: LAG_BUCKETS,
      registers,
    }),
  };

  // Both gauges read one live count (shared/src/queue/depth.ts) per scrape, taken once for both.
  let depth: ReturnType<typeof syncQueueDepth> | undefined;
  const readDepth = () => {
    const db = options.db?.();
    if (!db) return undefined;
    depth ??= syncQueueDepth(db).finally(() => setImmediate(() => (depth = undefined)));
    return depth;
  };
  new Gauge({
    name: METRICS.queueJobs,
    help:
      'Jobs of the sync queue: ready, scheduled (deferred or in retry backoff), active; ' +
      'of ready + scheduled, retrying and outbox (not yet relayed to pg-boss)',
    labelNames: ['state'],
    registers,
    async collect() {
      const d = await readDepth();
      if (!d) return;
      this.reset();
      this.set({ state: 'ready' }, d.ready);
      this.set({ state: 'scheduled' }, d.scheduled);
      this.set({ state: 'retrying' }, d.retrying);
      this.set({ state: 'outbox' }, d.outbox);
      this.set({ state: 'active' }, d.active);
    },
  });
  new Gauge({
    name: METRICS.deadLetters,
    help: 'Jobs in the dead letter queue, waiting for an operator',
    registers,
    async collect() {
      const d = await readDepth();
      if (d) this.set(d.deadLetters);
    },
  });
  if (options.service === 'api') {
    const gauges: LiveMetrics['gauges'] = {};
    metrics.live = {
      feedDelay: new Histogram({
        name: METRICS.feedDelay,
        help: "The change feed's delay: from the commit of a refresh (its sender's clock) to the message reaching this process",
        buckets: FAST_BUCKETS,
        registers,
      }),
      cacheLookups: new Counter({
        name: METRICS.responseCacheLookups,
        help: 'Compiled reads looked up in the response cache, by result (hit, miss)',
        labelNames: ['result'],
        registers,
      }),
      tokenWait: new Histogram({
        name: METRICS.syncTokenWait,
        help: 'Reads with X-Sync-Token: time waited for their writes to be projected, by outcome (synced, timeout, failed)',
        labelNames: ['outcome'],
        buckets: LAG_BUCKETS,
        registers,
      }),
      gauges,
    };
    new Gauge({
      name: METRICS.responseCacheBytes,
      help: 'Memory held by the response cache (answers and keys)',
      registers,
      collect() {
        this.set(gauges.cacheBytes?.() ?? 0);
      },
    });
    new Gauge({
      name: METRICS.subscriptionsOpen,
      help: 'GraphQL subscriptions open on this process',
      registers,
      collect() {
        this.set(gauges.subscriptionsOpen?.() ?? 0);
      },
    });
  }

  // The versions of the documents (shared/src/sync/shapes.ts): one read of sync_shape per scrape.
  let shapes: Promise<ShapeRow[]> | undefined;
  const readShapes = () => {
    const db = options.db?.();
    if (!db) return undefined;
    // (Empty before migration 009 has run: the other metrics are served all the same.)
    shapes ??= shapeRows(db)
      .catch(() => [])
      .finally(() => setImmediate(() => (shapes = undefined)));
    return shapes;
  };
  new Gauge({
    name: METRICS.projectionVersions,
    help: "The versions of each entity's documents and their tables: 1 per version, labelled with its state (building, ready)",
    labelNames: ['entity_type', 'version', 'table', 'state'],
    registers,
    async collect() {
      const rows = await readShapes();
      if (!rows) return;
      this.reset();
      for (const r of rows) this.set({ entity_type: r.entity_type, version: String(r.version), table: r.table_name, state: r.state }, 1);
    },
  });
  new Gauge({
    name: METRICS.projectionBuildRows,
    help: "A version's build: rows walked (done) and the estimate of its rows (total)",
    labelNames: ['entity_type', 'version', 'kind'],
    registers,
    async collect() {
      const rows = await readShapes();
      if (!rows) return;
      this.reset();
      for (const r of rows) {
        this.set({ entity_type: r.entity_type, version: String(r.version), kind: 'done' }, r.rows_done);
        this.set({ entity_type: r.entity_type, version: String(r.version), kind: 'total' }, Math.max(r.rows_total, r.rows_done));
      }
    },
  });
  return metrics;
}
