-- 0004-retry.sql: attempts under one key, and retries linked to the job they
-- run again (PRAGMA user_version = 4).
--
-- Until now a key named exactly one job (idem_key UNIQUE).  From now on it
-- names its latest attempt: a key whose latest job failed or was cancelled
-- gets a new job, so several jobs may share a key.  SQLite cannot drop a
-- UNIQUE constraint or a UNIQUE column in place, and rebuilding `jobs` would
-- drop whatever columns other migrations add to it, so the key moves to a
-- new column, job_key, and idem_key stays behind, always NULL.
--
-- Two indexes keep the rules in the journal itself, whatever the code does:
-- - at most one job per key is queued, running or succeeded (the latest
--   attempt; the earlier ones all failed or were cancelled);
-- - a job is run again at most once (retry_of is unique), so the attempts
--   form one chain and "the latest attempt" is well defined.

ALTER TABLE jobs ADD COLUMN job_key TEXT;
ALTER TABLE jobs ADD COLUMN retry_of INTEGER REFERENCES jobs (id) ON DELETE SET NULL;

UPDATE jobs SET job_key = idem_key, idem_key = NULL WHERE idem_key IS NOT NULL;

CREATE INDEX jobs_key ON jobs (job_key, id) WHERE job_key IS NOT NULL;
CREATE UNIQUE INDEX jobs_key_live ON jobs (job_key)
    WHERE job_key IS NOT NULL AND state IN ('queued', 'running', 'succeeded');
CREATE UNIQUE INDEX jobs_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;
