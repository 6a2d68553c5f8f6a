-- 003: each user's counts, kept by the commands.
--
-- A user's document carries postCount, publishedPostCount and commentCount. Counting them from
-- tb_post and tb_comment on every refresh costs time in proportion to what the user wrote, inside
-- the lock on their tv_user row: for an author with 5,000 posts it was half of the database time of
-- an INLINE createPost, and every post of that author waited for it. Here the counts are kept up to
-- date by the commands that change them (in the same transaction, by the difference they make), and
-- a refresh reads one row.
--
-- The counts are still checked against the rows: `sync verify` recounts, `sync verify --repair` and
-- `sync all` recount the rows of this table before they refresh (shared/src/sync/user-stats.ts). A
-- user without a row here (inserted by other means than the API) is counted from the rows on every
-- refresh, as before.

CREATE TABLE tb_user_stats (
  user_id               uuid    PRIMARY KEY REFERENCES tb_user (id),
  post_count            integer NOT NULL DEFAULT 0,
  published_post_count  integer NOT NULL DEFAULT 0,
  comment_count         integer NOT NULL DEFAULT 0,
  CONSTRAINT tb_user_stats_counts CHECK (
    post_count >= 0 AND comment_count >= 0 AND published_post_count BETWEEN 0 AND post_count
  )
);

INSERT INTO tb_user_stats (user_id, post_count, published_post_count, comment_count)
SELECT u.id,
       (SELECT count(*) FROM tb_post p WHERE p.author_id = u.id),
       (SELECT count(*) FROM tb_post p WHERE p.author_id = u.id AND p.published),
       (SELECT count(*) FROM tb_comment c WHERE c.author_id = u.id)
  FROM tb_user u;
