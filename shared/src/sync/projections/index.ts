import type { EntityType } from '../types';
import { WRONG_KEPT_COUNTS } from '../user-stats';
import { commentDocumentsSql } from './comment';
import type { Scope } from './iso';
import { postDocumentsSql } from './post';
import { userDocumentsSql } from './user';

export type { Scope } from './iso';

/**
 * What the sync engine needs to know of a projection: its source and target tables, the plain
 * columns it keeps beside `data` (same names in tb_* and tv_*), and its document builder.
 * Table and column names here are constants of this module, never input.
 */
export interface Projection {
  entity: EntityType;
  source: 'tb_user' | 'tb_post' | 'tb_comment';
  target: 'tv_user' | 'tv_post' | 'tv_comment';
  columns: readonly string[];
  documents(scope: Scope): string;
  /**
   * A SELECT of ids (`id`) whose projection rows are stale for a reason that comparing documents
   * cannot see; `sync verify` reports them as stale too.
   */
  alsoStale?: string;
}

export const PROJECTIONS: Readonly<Record<EntityType, Projection>> = {
  user: {
    entity: 'user',
    source: 'tb_user',
    target: 'tv_user',
    columns: ['created_at'],
    documents: userDocumentsSql,
    // A kept count that differs from the rows, before any refresh has copied it into tv_user.
    alsoStale: WRONG_KEPT_COUNTS,
  },
  post: {
    entity: 'post',
    source: 'tb_post',
    target: 'tv_post',
    columns: ['author_id', 'published', 'created_at'],
    documents: postDocumentsSql,
  },
  comment: {
    entity: 'comment',
    source: 'tb_comment',
    target: 'tv_comment',
    columns: ['post_id', 'author_id', 'created_at'],
    documents: commentDocumentsSql,
  },
};
