-- 010: the event log, the audit trail of the commands (shared/src/events/event-log.ts).
--
-- Every command that commits has appended one row here, in its own transaction, with one
-- statement sent beside its other statements (services/api/src/commands/commands.ts): which
-- command, what it wrote, who sent it and with which arguments. A command that fails leaves no row.
-- Admins read an entity's events with the GraphQL query `events(entityId, limit, after)`; the
-- workers delete rows older than EVENT_RETENTION_DAYS.
--
-- Rows are immutable: no code updates them, and the API's database role may only insert and read
-- them (shared/src/db/roles.ts; the worker's may read and delete).

CREATE TABLE event_log (
  id           bigint      GENERATED ALWAYS AS IDENTITY,
  -- When the command's transaction started.
  at           timestamptz NOT NULL DEFAULT now(),
  -- The mutation: createPost, tagPost...
  command      text        NOT NULL,
  -- The type of entity_ids[1], the entity the command is about.
  entity_type  text        NOT NULL,
  -- That entity first, then every other row the command wrote (a deleted post's comments, the
  -- tags a tagPost added) and the post of a comment created or deleted, each once.
  entity_ids   uuid[]      NOT NULL,
  -- The token's subject; NULL without a token (AUTH_MODE=none, where everyone is an admin).
  actor_id     uuid,
  actor_admin  boolean     NOT NULL,
  -- The command's arguments as it validated them, without the sync mode.
  args         jsonb       NOT NULL,
  CONSTRAINT event_log_pkey PRIMARY KEY (id),
  CONSTRAINT event_log_entity_ids CHECK (cardinality(entity_ids) >= 1)
);

-- The entities of each event, one row per (entity, event), written by the event's insert itself.
-- `events(entityId)` pages newest first as a range scan of this primary key from the cursor down,
-- whatever the number of events the entity has (a post with 100,000 comments has 100,000 events).
-- A GIN index on entity_ids could only find them all and sort them for every page.
-- No foreign key to event_log: the retention delete removes an event and its rows in one statement,
-- and the insert skips a check per row.
CREATE TABLE event_log_entity (
  entity_id  uuid   NOT NULL,
  event_id   bigint NOT NULL,
  CONSTRAINT event_log_entity_pkey PRIMARY KEY (entity_id, event_id)
);
-- The retention delete walks event_log's primary key from the oldest id: ids follow insertion
-- order, which follows `at` to within a transaction's duration. No index on `at` is needed.
