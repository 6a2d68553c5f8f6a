import type { EntityType } from './types';

/**
 * A sync that did not commit. The projections are as they were before it (its transaction rolled
 * back) and a failure row is in sync_log. Safe to retry: syncs are idempotent.
 */
export class SyncError extends Error {
  override readonly name = 'SyncError';
  readonly code = 'SYNC_FAILED';

  constructor(
    readonly entityType: EntityType,
    readonly entityCount: number,
    cause: unknown,
  ) {
    super(`Sync of ${entityCount} ${entityType} projection(s) failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}
