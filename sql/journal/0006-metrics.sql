-- 0006-metrics.sql: counters for `etlctl metrics` and daemon.metrics_file
-- (PRAGMA user_version = 6).
--
-- Prometheus counters must only grow, across restarts too, while retention
-- (daemon.keep_jobs, daemon.keep_days) removes old jobs: so the counts are
-- kept apart from the jobs they count, and the triggers below keep them in
-- the same transaction as the change they count.  A metric is one row per
-- name and label values; `value` is a count, or for the last_success_* gauges
-- a time in ms or a duration in ms.

CREATE TABLE metrics (
    name     TEXT NOT NULL,    -- jobs, rows, bytes, load_errors, step_retries,
                               -- last_success_at, last_success_ms
    pipeline TEXT NOT NULL,
    label    TEXT NOT NULL,    -- the job's final state, or the step; '' when none
    value    INTEGER NOT NULL,
    PRIMARY KEY (name, pipeline, label)
) STRICT;

-- A job reached its final state.
CREATE TRIGGER metrics_job_final AFTER UPDATE OF state ON jobs
WHEN NEW.state IN ('succeeded', 'failed', 'cancelled') AND OLD.state <> NEW.state
BEGIN
    INSERT INTO metrics VALUES ('jobs', NEW.pipeline, NEW.state, 1)
        ON CONFLICT DO UPDATE SET value = value + 1;
    INSERT INTO metrics
        SELECT 'last_success_at', NEW.pipeline, '', COALESCE(NEW.finished_at, 0)
        WHERE NEW.state = 'succeeded'
        ON CONFLICT DO UPDATE SET value = excluded.value;
    INSERT INTO metrics
        SELECT 'last_success_ms', NEW.pipeline, '',
               MAX(0, COALESCE(NEW.finished_at, 0) - COALESCE(NEW.started_at, NEW.created_at))
        WHERE NEW.state = 'succeeded'
        ON CONFLICT DO UPDATE SET value = excluded.value;
END;

-- A step ended: what it read, loaded and rejected (its last progress
-- counters; the journal keeps only the first rejects, the count is all).
CREATE TRIGGER metrics_step_end AFTER UPDATE OF state ON steps
WHEN NEW.state IN ('done', 'failed', 'cancelled') AND OLD.state <> NEW.state
     AND NEW.progress IS NOT NULL AND json_valid(NEW.progress)
BEGIN
    INSERT INTO metrics
        SELECT 'rows', j.pipeline, NEW.name, json_extract(NEW.progress, '$.rows')
        FROM jobs AS j WHERE j.id = NEW.job_id AND json_extract(NEW.progress, '$.rows') > 0
        ON CONFLICT DO UPDATE SET value = value + excluded.value;
    INSERT INTO metrics
        SELECT 'bytes', j.pipeline, NEW.name, json_extract(NEW.progress, '$.bytes')
        FROM jobs AS j WHERE j.id = NEW.job_id AND json_extract(NEW.progress, '$.bytes') > 0
        ON CONFLICT DO UPDATE SET value = value + excluded.value;
    INSERT INTO metrics
        SELECT 'load_errors', j.pipeline, NEW.name, json_extract(NEW.progress, '$.errors')
        FROM jobs AS j WHERE j.id = NEW.job_id AND json_extract(NEW.progress, '$.errors') > 0
        ON CONFLICT DO UPDATE SET value = value + excluded.value;
END;

-- A step started again after a failure.
CREATE TRIGGER metrics_step_retry AFTER UPDATE OF attempts ON steps
WHEN NEW.attempts > 1 AND NEW.attempts > OLD.attempts
BEGIN
    INSERT INTO metrics
        SELECT 'step_retries', j.pipeline, NEW.name, 1 FROM jobs AS j WHERE j.id = NEW.job_id
        ON CONFLICT DO UPDATE SET value = value + 1;
END;
