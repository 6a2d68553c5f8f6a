-- 005: sync_log takes any entity type.
--
-- Migration 001 listed the entity types in a CHECK constraint, so the first sync of an entity added
-- later failed at run time. The entity types are declared in one place, shared/src/model, and the
-- sync engine writes only those.
ALTER TABLE sync_log DROP CONSTRAINT sync_log_entity_type;
