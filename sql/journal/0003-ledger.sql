-- 0003-ledger.sql: what each warehouse has published (PRAGMA user_version = 3).
--
-- An etl job builds its rows apart from the published star tables and
-- publishes them in one transaction of the warehouse (write, audit,
-- publish).  Afterwards etld records here, per warehouse target (its URI as
-- the job resolved it), which job published last and every source object
-- the published tables were made from.  An incremental run loads only the
-- objects missing from its target's ledger; a full run replaces the ledger.
-- The publish step is idempotent: the warehouse itself remembers the jobs
-- that published (table etld_publishes), so a crash between the warehouse's
-- commit and these rows is repaired when the step runs again.

CREATE TABLE publications (
    target       TEXT PRIMARY KEY,
    job_id       INTEGER NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    objects      INTEGER NOT NULL,      -- objects in the ledger after this publish
    published_at INTEGER NOT NULL
) STRICT;

CREATE TABLE ledger (
    target  TEXT NOT NULL,
    source  TEXT NOT NULL,              -- the [s3] key: log_data, song_data
    uri     TEXT NOT NULL,
    size    INTEGER NOT NULL,
    tag     TEXT,                       -- S3 ETag, a file's mtime (ns); NULL: unknown
    job_id  INTEGER NOT NULL,           -- the job whose publish took it
    PRIMARY KEY (target, uri)
) STRICT;
