import type { PgBoss } from 'pg-boss';
import { SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from './queues';
import type { SyncJobData } from './sync-queue';

/** A sync job that failed every retry, as operators see it. */
export interface DeadLetter {
  /** Its id in the dead letter queue (what `replay <id>` takes). */
  id: string;
  /** The id of the job that failed on the sync queue. */
  sourceId: string | null;
  deadSince: Date;
  /** Attempts the job had on the sync queue before it was dead-lettered (retries + 1). */
  attempts: number | null;
  /** The last error, as the worker recorded it. */
  error: string | null;
  data: SyncJobData;
}

/** Dead letters, oldest first. */
export async function listDeadLetters(boss: PgBoss, options: { limit?: number } = {}): Promise<DeadLetter[]> {
  const jobs = await boss.findJobs<SyncJobData>(SYNC_DEAD_LETTER_QUEUE, { queued: true, limit: options.limit ?? 1000 });
  return jobs.map((j) => ({
    id: j.id,
    sourceId: j.sourceId,
    deadSince: j.createdOn,
    attempts: j.sourceRetryCount === null ? null : j.sourceRetryCount + 1,
    error: errorMessage(j.sourceOutput),
    data: j.data,
  }));
}

/** Redrive chunk: pg-boss moves at most this many per call; we loop until nothing is left. */
const REPLAY_CHUNK = 1000;

/**
 * Moves dead letters back onto the sync queue as new jobs (fresh retries, the queue's current
 * options), so the worker syncs them again. Syncs are idempotent, so a replay is always safe.
 * With `ids`, only those; otherwise all. Returns the ids moved and those not found among the
 * waiting dead letters.
 */
export async function replayDeadLetters(
  boss: PgBoss,
  which: { ids: readonly string[] } | { all: true },
): Promise<{ moved: number; notFound: string[] }> {
  if ('ids' in which) {
    const ids = [...new Set(which.ids)];
    if (!ids.length) return { moved: 0, notFound: [] };
    const waiting = new Set<string>();
    for (const id of ids) {
      const job = await boss.getJobById(SYNC_DEAD_LETTER_QUEUE, id).catch(() => null);
      if (job && (job.state === 'created' || job.state === 'retry')) waiting.add(id);
    }
    const present = ids.filter((id) => waiting.has(id));
    const moved = present.length
      ? await boss.redrive(SYNC_DEAD_LETTER_QUEUE, { ids: present, destination: SYNC_QUEUE, limit: present.length })
      : 0;
    return { moved, notFound: ids.filter((id) => !waiting.has(id)) };
  }
  // Only those dead before the replay started: a job that dies again meanwhile is not swept in.
  const createdBefore = new Date();
  let moved = 0;
  for (;;) {
    const n = await boss.redrive(SYNC_DEAD_LETTER_QUEUE, { destination: SYNC_QUEUE, createdBefore, limit: REPLAY_CHUNK });
    moved += n;
    if (n < REPLAY_CHUNK) return { moved, notFound: [] };
  }
}

function errorMessage(output: object | null): string | null {
  if (!output) return null;
  const o = output as { message?: unknown; value?: { message?: unknown } };
  if (typeof o.message === 'string') return o.message;
  if (typeof o.value?.message === 'string') return o.value.message;
  return JSON.stringify(output);
}
