-- 007: documents hold only what is bounded.
--
-- A post's document embedded every comment and their count, so each new comment rebuilt and
-- rewrote the whole post (2 s per comment at 30,000 comments) and every list read shipped them all.
-- Now a post's comments are read a page at a time from tv_comment (its index on (post_id,
-- created_at, id), migration 001), and kept counts (a post's comments, a user's posts and comments)
-- live in counts tables the commands keep, which reads merge in (shared/src/sync/kept-counts.ts).

CREATE TABLE tb_post_stats (
  post_id        uuid    PRIMARY KEY REFERENCES tb_post (id) ON DELETE CASCADE,
  comment_count  integer NOT NULL DEFAULT 0 CHECK (comment_count >= 0)
);

INSERT INTO tb_post_stats (post_id, comment_count)
SELECT p.id, coalesce(c.n, 0)
  FROM tb_post p
  LEFT JOIN (SELECT post_id, count(*)::int AS n FROM tb_comment GROUP BY post_id) c ON c.post_id = p.id;

-- The documents' new shape: what reads now merge in is removed from them.
UPDATE tv_post SET data = data - 'comments' - 'commentCount' WHERE data ?| ARRAY['comments', 'commentCount'];
UPDATE tv_user SET data = data - 'postCount' - 'publishedPostCount' - 'commentCount'
 WHERE data ?| ARRAY['postCount', 'publishedPostCount', 'commentCount'];
