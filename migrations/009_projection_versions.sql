-- 009: the versions of the projections' document shapes (shared/src/sync/shapes.ts).
--
-- A declaration carries a version (shared/src/model/declare.ts); each version of an entity's
-- documents has a table of its own (tv_post, then tv_post_v2, ...). `npm run migrate` creates the
-- table of a version declared by the release being deployed beside the previous one and adds its row
-- here as 'building'; the workers of that release fill it in chunks and mark it 'ready'; the API of
-- that release serves only once every table it reads is ready, while the processes of the previous
-- release keep serving theirs. A table created by a migration (every version 1) has no row until a
-- process of its release announces itself: such a table is ready, being kept by the syncs since it
-- was created.

CREATE TABLE sync_shape (
  entity_type  text        NOT NULL,
  version      integer     NOT NULL,
  table_name   text        NOT NULL,
  state        text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  ready_at     timestamptz,
  -- The build's walk: the upper bound of its last committed chunk, ids walked, and an estimate of
  -- the ids to walk (taken when the build starts).
  last_id      uuid,
  rows_done    bigint      NOT NULL DEFAULT 0,
  rows_total   bigint      NOT NULL DEFAULT 0,
  -- The tables of the entity's other versions have been followed up to here (changes they took
  -- from processes of another release, applied to this one).
  followed_to  timestamptz,
  -- When a process of this version last said it runs: the followers of the other versions follow
  -- this one while it is recent.
  seen_at      timestamptz,
  CONSTRAINT sync_shape_pkey PRIMARY KEY (entity_type, version),
  CONSTRAINT sync_shape_table_key UNIQUE (table_name),
  CONSTRAINT sync_shape_state CHECK (state IN ('building', 'ready')),
  CONSTRAINT sync_shape_version CHECK (version >= 1),
  CONSTRAINT sync_shape_rows CHECK (rows_done >= 0 AND rows_total >= 0)
);
