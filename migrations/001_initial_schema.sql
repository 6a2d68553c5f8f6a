-- 001: command tables (tb_*), query tables (tv_*) and sync_log.
--
-- No triggers: timestamps are set by the application and every tv_* row is written by the sync
-- engine (shared/src/sync), explicitly.
-- Timestamps are timestamptz(3): millisecond precision, so the ISO strings embedded in the JSON
-- documents are exactly the stored values and keyset cursors taken from documents are exact.

-- ---------------------------------------------------------------------------------------------
-- Command side: normalized, integrity first.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE tb_user (
  id          uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
  email       text           NOT NULL,
  username    text           NOT NULL,
  full_name   text           NOT NULL,
  bio         text,
  created_at  timestamptz(3) NOT NULL DEFAULT now(),
  updated_at  timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT tb_user_email_format CHECK (
    char_length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
  CONSTRAINT tb_user_username_format CHECK (username ~ '^[A-Za-z0-9_]{3,30}$'),
  CONSTRAINT tb_user_full_name_length CHECK (btrim(full_name) <> '' AND char_length(full_name) <= 100),
  CONSTRAINT tb_user_bio_length CHECK (bio IS NULL OR char_length(bio) <= 2000),
  CONSTRAINT tb_user_timestamps CHECK (updated_at >= created_at)
);
-- Case-insensitive uniqueness: Alice@Example.com and alice@example.com are the same address.
CREATE UNIQUE INDEX tb_user_email_key ON tb_user (lower(email));
CREATE UNIQUE INDEX tb_user_username_key ON tb_user (lower(username));

CREATE TABLE tb_post (
  id          uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
  author_id   uuid           NOT NULL REFERENCES tb_user (id),
  title       text           NOT NULL,
  content     text           NOT NULL,
  published   boolean        NOT NULL DEFAULT false,
  created_at  timestamptz(3) NOT NULL DEFAULT now(),
  updated_at  timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT tb_post_title_length CHECK (btrim(title) <> '' AND char_length(title) <= 300),
  CONSTRAINT tb_post_content_length CHECK (btrim(content) <> '' AND char_length(content) <= 100000),
  CONSTRAINT tb_post_timestamps CHECK (updated_at >= created_at)
);
CREATE INDEX tb_post_author_id_idx ON tb_post (author_id);

-- Deleting a post is refused while it has comments (no ON DELETE CASCADE): the command deletes
-- them explicitly, so their ids reach the sync plan instead of vanishing silently.
CREATE TABLE tb_comment (
  id          uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
  post_id     uuid           NOT NULL REFERENCES tb_post (id),
  author_id   uuid           NOT NULL REFERENCES tb_user (id),
  content     text           NOT NULL,
  created_at  timestamptz(3) NOT NULL DEFAULT now(),
  updated_at  timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT tb_comment_content_length CHECK (btrim(content) <> '' AND char_length(content) <= 10000),
  CONSTRAINT tb_comment_timestamps CHECK (updated_at >= created_at)
);
CREATE INDEX tb_comment_post_id_idx ON tb_comment (post_id, created_at, id);
CREATE INDEX tb_comment_author_id_idx ON tb_comment (author_id);

-- ---------------------------------------------------------------------------------------------
-- Query side: one row answers one entity. `data` is the JSON document served to clients; the
-- plain columns exist only to sort, filter and page with an index. synced_at is when the sync
-- engine last wrote the row.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE tv_user (
  id          uuid           PRIMARY KEY,
  data        jsonb          NOT NULL,
  created_at  timestamptz(3) NOT NULL,
  synced_at   timestamptz    NOT NULL DEFAULT now()
);
-- users list, newest first, keyset paging on (created_at, id)
CREATE INDEX tv_user_created_idx ON tv_user (created_at DESC, id DESC);

CREATE TABLE tv_post (
  id          uuid           PRIMARY KEY,
  data        jsonb          NOT NULL,
  author_id   uuid           NOT NULL,
  published   boolean        NOT NULL,
  created_at  timestamptz(3) NOT NULL,
  synced_at   timestamptz    NOT NULL DEFAULT now()
);
-- newest-first list and keyset paging
CREATE INDEX tv_post_created_idx ON tv_post (created_at DESC, id DESC);
-- published filter (the common public list)
CREATE INDEX tv_post_published_created_idx ON tv_post (created_at DESC, id DESC) WHERE published;
-- posts of an author, newest first
CREATE INDEX tv_post_author_created_idx ON tv_post (author_id, created_at DESC, id DESC);

CREATE TABLE tv_comment (
  id          uuid           PRIMARY KEY,
  data        jsonb          NOT NULL,
  post_id     uuid           NOT NULL,
  author_id   uuid           NOT NULL,
  created_at  timestamptz(3) NOT NULL,
  synced_at   timestamptz    NOT NULL DEFAULT now()
);
-- comments of a post in order, keyset paging
CREATE INDEX tv_comment_post_created_idx ON tv_comment (post_id, created_at, id);
-- the sync engine's dependency map finds a deleted comment's author here
CREATE INDEX tv_comment_author_idx ON tv_comment (author_id);

-- ---------------------------------------------------------------------------------------------
-- Sync log: one row per sync batch and entity type.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE sync_log (
  id            bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  entity_type   text             NOT NULL,
  operation     text             NOT NULL,
  entity_count  integer          NOT NULL,
  duration_ms   double precision NOT NULL,
  success       boolean          NOT NULL,
  error_message text,
  created_at    timestamptz      NOT NULL DEFAULT now(),
  CONSTRAINT sync_log_entity_type CHECK (entity_type IN ('user', 'post', 'comment')),
  CONSTRAINT sync_log_operation CHECK (operation IN ('incremental', 'full')),
  CONSTRAINT sync_log_entity_count CHECK (entity_count >= 0),
  CONSTRAINT sync_log_duration CHECK (duration_ms >= 0),
  CONSTRAINT sync_log_failure_has_error CHECK (success OR error_message IS NOT NULL)
);
-- 24-hour metrics: overall (range scan on created_at) and by entity (entity_type, created_at),
-- covering the aggregated columns so the metrics queries read the index only.
CREATE INDEX sync_log_created_idx ON sync_log (created_at) INCLUDE (entity_type, duration_ms, success);
CREATE INDEX sync_log_entity_created_idx ON sync_log (entity_type, created_at) INCLUDE (duration_ms, success);
