export * from './config/env';
export * from './util/uuid';
export * from './db/database';
export * from './db/embedded';
export * from './db/errors';
export * from './db/paths';
export * from './db/pool';
export * from './db/compose';
export * from './db/prepare';
export * from './log/logger';
export * from './migrations/files';
export * from './migrations/runner';
export * from './queue/install';
export * from './queue/queues';
export * from './seed/data';
export * from './seed/operations';
export * from './seed/run';
export * from './seed/seed';
export * from './sync/dependencies';
export * from './sync/engine';
export * from './sync/errors';
export {
  MODEL,
  commandTables,
  entityOf,
  isEntityType,
  isReadTime,
  relationsOf,
  type Entity,
  type EntityDeclaration,
  type Field,
  type ListFilter,
  type ReadTimeField,
} from './model';
export * from './sync/documents';
export * from './sync/types';
export * from './sync/kept-counts';
export * from './queue/boss';
export * from './queue/sync-queue';
export * from './cli/run';
export * from './queue/dead-letter';
export * from './queue/depth';
export * from './sync/lag';
export * from './events/event-log';
export * from './sync/shapes';
export * from './sync/feed';
export * from './telemetry/metrics';
export * from './telemetry/http-span';
export * from './telemetry/statement-span';
export * from './auth/operator-token';
export * from './db/roles';
export * from './net/free-port';
export * from './util/wait';
