-- 0002-not-before.sql: jobs that must not start before a given time
-- (PRAGMA user_version = 2).
--
-- provision's ttl schedules a teardown for later: a queued job with
-- not_before set (milliseconds since the Unix epoch, UTC) waits until then,
-- across restarts, because the time lives here and not in a timer.  NULL,
-- as for every job of schema 1, means "as soon as a slot is free".

ALTER TABLE jobs ADD COLUMN not_before INTEGER;
