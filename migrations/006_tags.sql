-- 006: tags of posts.
--
-- A tag has a name (which may change) and a slug (which does not: links keep working). A post has
-- at most 20 tags, in the order they were added: `position` runs from 1 to the post's number of
-- tags (the commands keep it compact), is unique per post, and may not pass 20.

CREATE TABLE tb_tag (
  id          uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text           NOT NULL,
  slug        text           NOT NULL,
  created_at  timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT tb_tag_name_length CHECK (btrim(name) <> '' AND char_length(name) <= 50),
  CONSTRAINT tb_tag_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 50)
);
CREATE UNIQUE INDEX tb_tag_slug_key ON tb_tag (slug);

CREATE TABLE tb_post_tag (
  post_id     uuid           NOT NULL REFERENCES tb_post (id),
  tag_id      uuid           NOT NULL REFERENCES tb_tag (id),
  position    smallint       NOT NULL,
  PRIMARY KEY (post_id, tag_id),
  CONSTRAINT tb_post_tag_at_most_20 CHECK (position BETWEEN 1 AND 20),
  -- Deferred: renumbering after an untag moves positions past each other within one statement.
  CONSTRAINT tb_post_tag_position_key UNIQUE (post_id, position) DEFERRABLE INITIALLY DEFERRED
);
-- a tag's posts (its count, and the posts to refresh when it is renamed)
CREATE INDEX tb_post_tag_tag_id_idx ON tb_post_tag (tag_id);

CREATE TABLE tv_tag (
  id          uuid           PRIMARY KEY,
  data        jsonb          NOT NULL,
  slug        text           NOT NULL,
  created_at  timestamptz(3) NOT NULL,
  synced_at   timestamptz    NOT NULL DEFAULT now()
);
-- tag(slug:)
CREATE UNIQUE INDEX tv_tag_slug_key ON tv_tag (slug);
-- tags list, newest first, keyset paging on (created_at, id)
CREATE INDEX tv_tag_created_idx ON tv_tag (created_at DESC, id DESC);

-- posts(tag:), and the posts embedding a tag (the dependency map's tv_* side)
CREATE INDEX tv_post_tags_idx ON tv_post USING gin ((data->'tags') jsonb_path_ops);

-- The post documents take their new shape: no post has tags yet.
UPDATE tv_post SET data = data || '{"tags": []}'::jsonb WHERE NOT data ? 'tags';
