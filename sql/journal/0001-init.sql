-- 0001-init.sql: the journal's first schema (PRAGMA user_version = 1).
--
-- The journal is etld's memory: every job, every step's state, what each step
-- produced, check results, load errors and a bounded event log.  Times are
-- milliseconds since the Unix epoch (UTC).  etld applies each migration file
-- in one transaction and sets user_version with it.

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    pipeline    TEXT NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    config      TEXT NOT NULL,          -- effective settings as JSON, secrets left out
    idem_key    TEXT UNIQUE,            -- submit's idempotency key
    uid         INTEGER NOT NULL,       -- submitter (SO_PEERCRED)
    cancel_uid  INTEGER,                -- who cancelled it
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    error       TEXT                    -- the first failure, the headline
) STRICT;

CREATE INDEX jobs_state ON jobs (state, id);

CREATE TABLE steps (
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    started_at  INTEGER,
    finished_at INTEGER,
    error       TEXT,
    progress    TEXT,                   -- JSON object of counters
    PRIMARY KEY (job_id, idx)
) STRICT;

-- What a step produced or created (role ARN, endpoint, COPYs done...).
CREATE TABLE outputs (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step   TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
) STRICT;

CREATE TABLE checks (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    name   TEXT NOT NULL,
    ok     INTEGER NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) STRICT;

CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    level   TEXT NOT NULL,
    step    TEXT,
    message TEXT NOT NULL
) STRICT;

CREATE INDEX events_job ON events (job_id, id);

-- Rejected records, shaped like Redshift's STL_LOAD_ERRORS.
CREATE TABLE load_errors (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step            TEXT NOT NULL,
    filename        TEXT NOT NULL,
    line_number     INTEGER NOT NULL,
    colname         TEXT NOT NULL,
    type            TEXT NOT NULL,
    position        INTEGER NOT NULL,
    raw_line        TEXT NOT NULL,
    raw_field_value TEXT NOT NULL,
    err_code        INTEGER NOT NULL,
    err_reason      TEXT NOT NULL
) STRICT;

CREATE INDEX load_errors_job ON load_errors (job_id, id);
