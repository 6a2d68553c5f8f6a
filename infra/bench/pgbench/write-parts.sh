#!/usr/bin/env bash
# What each part of a QUEUED createComment costs PostgreSQL, beside PostGraphile 5's two statements
# for the same comment: pgbench runs the statement whole and with parts removed, taking turns, and
# prints per round the transactions per second, PostgreSQL's CPU time per transaction (all its
# processes: backends, WAL writer, checkpointer, autovacuum; less moved by other work on the machine
# than the rate) and the WAL written per transaction.
#
#   npm run bench:write-parts -- [rounds] [clients]      (defaults: 3 rounds, 1 client)
#
# Needs pgbench and psql (Debian's postgresql-client), and a PostgreSQL on the machine itself (its
# processes' CPU is read from /proc) reached as a superuser by PGHOST/PGPORT/PGUSER (default
# 127.0.0.1:5432, postgres). It creates and drops the database blog_write_parts: 1,000 users,
# 10,000 posts, 100,000 comments, generated as `npm run bench` does. KEEP=<dir> keeps the pgbench
# scripts in <dir> and the database, to run them again by hand.
#
# The statement is the one createComment sends (services/api/src/commands/commands.ts, as the
# counting proxy of `npm run bench` prints it), doing the same work with two changes: its values are
# made in the statement, not sent as parameters (pgbench has no uuid variables: the ids are drawn
# by gen_random_uuid, the user and post picked by number), and to_char's format is spelled without
# ':' (pgbench would read ":MI" as a variable). Change the parts below when that statement changes.
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
clients=${2:-1}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGOPTIONS="-c client_min_messages=warning"
db=blog_write_parts
work=${KEEP:-$(mktemp -d)}
trap '[ -n "${KEEP:-}" ] || { rm -rf "$work"; psql -qd postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; }' EXIT

psql -qd postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$db" node shared/dist/cli/migrate.js up >/dev/null
# The dataset `npm run bench` generates (shared/src/bench/dataset.ts): users, posts and comments
# with ids md5('user' || n) and md5('post' || n), counts rows included.
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$db" node --input-type=module -e "
  import pg from 'pg';
  import { generateDataset } from './shared/dist/bench/dataset.js';
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  await generateDataset(pool, { users: 1000, posts: 10000, comments: 100000, postBytes: 1000 });
  await pool.end();"
psql -qd $db -c 'VACUUM ANALYZE'

# The parts, as CTEs of one statement.
declare -A part
part[ids]="ids AS (SELECT gen_random_uuid() AS cid, md5('post' || :p)::uuid AS pid, md5('user' || :u)::uuid AS uid)"
part[comment]="c AS (INSERT INTO tb_comment (id, post_id, author_id, content, created_at, updated_at)
  VALUES ((SELECT cid FROM ids), (SELECT id FROM tb_post WHERE id = (SELECT pid FROM ids) FOR SHARE),
          (SELECT id FROM tb_user WHERE id = (SELECT uid FROM ids) FOR SHARE), 'A comment of some length', now(), now())
  RETURNING *)"
part[event]="e AS (INSERT INTO event_log (command, entity_type, entity_ids, actor_id, actor_admin, args)
  VALUES ('createComment', 'comment', ARRAY[(SELECT cid FROM ids), (SELECT pid FROM ids)], (SELECT uid FROM ids), false,
          '{\"postId\": \"00000000-0000-0000-0000-000000000000\", \"content\": \"A comment of some length\"}'::jsonb)
  RETURNING id)"
part[entities]="event_entities AS (INSERT INTO event_log_entity (entity_id, event_id)
  SELECT u.id, e.id FROM e, unnest(ARRAY[(SELECT cid FROM ids), (SELECT pid FROM ids)]) AS u(id))"
part[outbox]="outbox AS (INSERT INTO sync_outbox (id, data, priority, start_after, trace)
  SELECT id, data, priority, start_after, trace
    FROM jsonb_to_recordset(jsonb_build_array(jsonb_build_object('id', (SELECT cid FROM ids), 'priority', 10, 'data',
         jsonb_build_object('plan', jsonb_build_object('comment', jsonb_build_array((SELECT cid FROM ids)),
                            'post', jsonb_build_array((SELECT pid FROM ids))), 'mode', 'QUEUED', 'enqueuedAt', 1765000000000)))) AS
         j(id uuid, data jsonb, priority int, start_after timestamptz, trace jsonb))"
part[user_count]="counts_user AS (UPDATE tb_user_stats
     SET post_count = greatest(0, post_count + 0),
         published_post_count = greatest(0, least(published_post_count + 0, post_count + 0)),
         comment_count = greatest(0, comment_count + 1)
   WHERE user_id = (SELECT uid FROM ids) RETURNING 1)"
part[post_count]="counts_post AS (UPDATE tb_post_stats SET comment_count = greatest(0, comment_count + 1)
   WHERE post_id = (SELECT pid FROM ids) AND (SELECT count(*) FROM counts_user) >= 0 RETURNING 1)"
answer="SELECT data FROM (
  SELECT jsonb_build_object('id', cm.id, 'postId', cm.post_id, 'content', cm.content,
           'createdAt', to_char(cm.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS\"Z\"'),
           'updatedAt', to_char(cm.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS\"Z\"'),
           'author', jsonb_build_object('id', a.id, 'username', a.username, 'fullName', a.full_name),
           'post', jsonb_build_object('id', po.id, 'title', po.title)) AS data
    FROM c cm
    CROSS JOIN LATERAL (SELECT id, username, full_name FROM tb_user WHERE id = cm.author_id LIMIT 1) a
    CROSS JOIN LATERAL (SELECT id, title FROM tb_post WHERE id = cm.post_id LIMIT 1) po) doc;"
pick=$'\\set u random(1, 1000)\n\\set p random(1, 10000)\n'

variant() { # name, parts...
  local name=$1 ctes=() p
  shift
  for p in "$@"; do ctes+=("${part[$p]}"); done
  { printf '%s' "$pick"; printf 'WITH %s\n%s\n' "$(printf '%s,\n' "${ctes[@]}" | sed '$ s/,$//')" "$answer"; } > "$work/$name.sql"
}
variant whole ids comment event entities outbox user_count post_count
variant without_post_count ids comment event entities outbox user_count
variant without_counts ids comment event entities outbox
variant without_event_entities ids comment event outbox user_count post_count
variant without_event ids comment outbox user_count post_count
variant comment_and_outbox ids comment outbox
{ printf '%s' "$pick"
  echo "insert into tb_comment (post_id, author_id, content) values (md5('post' || :p)::uuid, md5('user' || :u)::uuid, 'A comment of some length') returning id, content, author_id;"
  echo "select username from tb_user where id = md5('user' || :u)::uuid;"
} > "$work/postgraphile.sql"
names=(whole without_post_count without_counts without_event_entities without_event comment_and_outbox postgraphile)

# PostgreSQL's CPU so far, in clock ticks: the postmaster's own and its ended children's (which it
# has waited for), and its live children's. Its pid is the first line of postmaster.pid in the data
# directory (a superuser may read it).
postmaster=$(psql -Atd $db -c "SELECT split_part(pg_read_file('postmaster.pid'), E'\\n', 1)")
[ -n "$postmaster" ] && [ -r "/proc/$postmaster/stat" ] ||
  { echo "PostgreSQL must run on this machine (its processes' CPU is read from /proc)" >&2; exit 1; }
ticks() {
  local t p
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
  for p in $(pgrep -P "$postmaster"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}
hz=$(getconf CLK_TCK)

echo "pgbench -M prepared, $clients client(s), 5 s per run, $rounds rounds taking turns (one figure per round)"
for n in "${names[@]}"; do pgbench -n -M prepared -c 1 -T 1 -f "$work/$n.sql" $db >/dev/null; done # prepared, plans settled
wal() { psql -Atd $db -c "SELECT pg_current_wal_lsn() - '0/0'"; }
declare -A tps cpu walb
for r in $(seq "$rounds"); do
  for n in "${names[@]}"; do
    before=$(ticks) lsn=$(wal)
    out=$(pgbench -n -M prepared -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T 5 -f "$work/$n.sql" $db)
    sleep 1 # the postmaster reaps the ended backends
    after=$(ticks) lsn_after=$(wal)
    done_=$(awk '/number of transactions actually processed/ {print $6}' <<< "$out")
    tps[$n]+=" $(awk '/^tps/ {printf "%d", $3}' <<< "$out")"
    cpu[$n]+=" $(( (after - before) * 1000000 / hz / done_ ))"
    walb[$n]+=" $(( (lsn_after - lsn) / done_ ))"
  done
done
printf '%-24s | %-30s | %-31s | %s\n' variant 'tps' 'CPU µs per transaction' 'WAL bytes per transaction'
for n in "${names[@]}"; do printf '%-24s | %-30s | %-30s | %s\n' "$n" "${tps[$n]# }" "${cpu[$n]# }" "${walb[$n]# }"; done
