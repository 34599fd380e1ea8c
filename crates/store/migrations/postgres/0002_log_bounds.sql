-- Bounded logs (issue 17, PostgreSQL dialect). Keep parallel with ../sqlite/0002_log_bounds.sql.
-- An event may stand for several identical ones: `aggregate_key` names the aggregate (NULL for
-- an event of its own), `event_count` counts what it stands for and `last_timestamp` is the
-- newest of them. Retention and the size cap delete by `last_timestamp` and `seq`.

ALTER TABLE sign_in_events ADD COLUMN aggregate_key TEXT;
ALTER TABLE sign_in_events ADD COLUMN event_count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE sign_in_events ADD COLUMN last_timestamp BIGINT NOT NULL DEFAULT 0;
UPDATE sign_in_events SET last_timestamp = timestamp;
CREATE UNIQUE INDEX sign_in_events_by_aggregate ON sign_in_events (aggregate_key);
CREATE INDEX sign_in_events_by_age ON sign_in_events (last_timestamp);

ALTER TABLE activity_events ADD COLUMN aggregate_key TEXT;
ALTER TABLE activity_events ADD COLUMN event_count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE activity_events ADD COLUMN last_timestamp BIGINT NOT NULL DEFAULT 0;
UPDATE activity_events SET last_timestamp = timestamp;
CREATE UNIQUE INDEX activity_events_by_aggregate ON activity_events (aggregate_key);
CREATE INDEX activity_events_by_age ON activity_events (last_timestamp);
