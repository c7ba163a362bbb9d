-- create_tables.sql (redshift): the tables of an etl run.
--
-- Write, audit, publish on Redshift: the published star tables are created
-- only when missing; the run builds its rows in shadow tables of the same
-- shape (etld_new_*), check.sql audits those, and publish.sql replaces the
-- published rows in one transaction (DELETE and INSERT: Redshift's
-- serializable isolation shows readers the previous publish until it
-- commits; the tables are never dropped or renamed, so users' views and
-- grants on them keep working).  The tables kept beside the published ones
-- (etld_*_src, etld_song_match) let an incremental run merge its rows as in
-- sql/sqlite/create_tables.sql, with one difference: Redshift's COPY cannot
-- say which object a row came from, so src_object is '' and src_order is
-- the run's job id and the row's input_order: between rows of different
-- objects ties go by arrival (run, then load order), not by object key.
--
-- The same columns and types as sql/postgres and sql/sqlite; Redshift adds
-- how each table is spread over the slices and in which order its blocks
-- are written ("Working with data distribution styles",
-- https://docs.aws.amazon.com/redshift/latest/dg/c_choosing_dist_sort.html).
-- The choice follows the joins and the data:
--
--   * A KEY column must spread rows evenly, and a NULL key puts every such
--     row on one slice.  On the real sample (/work/shared/data/sparkify,
--     8,056 events, 71 songs) 6,819 of the 6,820 songplays match no song,
--     so DISTKEY(song_id) put all but one songplay on one slice; 1,236
--     events (every page but NextSong) have no song, so DISTKEY(song) on
--     staging_events piled them up too.  No key of these tables is both a
--     join key and evenly spread (user_id: 96 users, the busiest with a
--     tenth of the plays), so:
--   * songplays and staging_events are DISTSTYLE EVEN: round robin, no skew
--     whatever the keys hold.
--   * Every table they join is small and copied to every node (DISTSTYLE
--     ALL): songs, artists, users and time for the fact table, and
--     staging_songs for the transform's match of events to songs by title,
--     artist name and duration.  A join with an ALL table is local to each
--     slice whatever the other table's distribution, so no query
--     redistributes the events or the songplays.  (Song metadata grows with
--     the catalogue, not with the plays: if songs ever outgrows ALL, KEY on
--     song_id for songs and staging_songs is the next step, songplays
--     staying EVEN.)
--   * etld's matching tables (etld_song_match, etld_new_song_match,
--     etld_songplay_src) stay keyed on the title = song join: those keys
--     are never NULL (only NextSong events become songplays, and every one
--     has a song; a match has a title), so they do not skew.
--   * Sort keys are what queries filter or join on: start_time for songplays
--     and time (time ranges), the primary key of each dimension.
--   * The shadow tables have their published table's style, so publish.sql
--     moves rows between tables spread the same way.  Published tables that
--     an older etld created with DISTKEY(song_id) keep it (they are created
--     only when missing); `ALTER TABLE songplays ALTER DISTSTYLE EVEN` (and
--     songs ALL) changes them, which check.sql's skew check shows is due.
--
-- check.sql reports SVV_TABLE_INFO.skew_rows and warns over 4.
--
-- Primary keys are informational on Redshift (not enforced); the check step
-- verifies uniqueness.  DDL is transactional on Redshift, so the step runs
-- this file in one transaction like on PostgreSQL.
--
-- input_order: IDENTITY(0, 1), left out by COPY (as etld's emulator leaves
-- identity columns out), numbers rows as they are loaded.  The transforms
-- break ties by it, as on PostgreSQL.  On Redshift the numbers follow the
-- order of each file but not across files loaded in parallel by different
-- slices, so rows that tie on every other ordering key (two events of one
-- user at the same millisecond) may be ordered differently from the other
-- targets; the Sparkify data has none.

DROP TABLE IF EXISTS staging_events;
DROP TABLE IF EXISTS staging_songs;
DROP TABLE IF EXISTS etld_new_songplays;
DROP TABLE IF EXISTS etld_new_users;
DROP TABLE IF EXISTS etld_new_songs;
DROP TABLE IF EXISTS etld_new_artists;
DROP TABLE IF EXISTS etld_new_time;
DROP TABLE IF EXISTS etld_upd_songplays;
DROP TABLE IF EXISTS etld_new_song_match;
DROP TABLE IF EXISTS etld_plan;
DROP TABLE IF EXISTS etld_run;
-- etld's record of which COPYs of a job committed (see daemon/etl.c).
DROP TABLE IF EXISTS etld_copies;

-- Every line of log_data, as the JSONPaths file maps it.
CREATE TABLE staging_events (
    artist          VARCHAR(256),
    auth            VARCHAR(32),
    firstName       VARCHAR(256),
    gender          VARCHAR(8),
    itemInSession   INTEGER,
    lastName        VARCHAR(256),
    length          DOUBLE PRECISION,
    level           VARCHAR(16),
    location        VARCHAR(256),
    method          VARCHAR(8),
    page            VARCHAR(64),
    registration    DOUBLE PRECISION,
    sessionId       INTEGER,
    song            VARCHAR(256),
    status          INTEGER,
    ts              TIMESTAMP,
    userAgent       VARCHAR(512),
    userId          VARCHAR(32),
    input_order     BIGINT IDENTITY(0, 1)
)
DISTSTYLE EVEN;

-- Every song file, keys matched to columns by name (JSON 'auto').
CREATE TABLE staging_songs (
    num_songs        INTEGER,
    artist_id        VARCHAR(32),
    artist_latitude  DOUBLE PRECISION,
    artist_longitude DOUBLE PRECISION,
    artist_location  VARCHAR(512),
    artist_name      VARCHAR(512),
    song_id          VARCHAR(32),
    title            VARCHAR(512),
    duration         DOUBLE PRECISION,
    year             INTEGER,
    input_order      BIGINT IDENTITY(0, 1)
)
DISTSTYLE ALL;

-- The published star schema.
CREATE TABLE IF NOT EXISTS songplays (
    songplay_id INTEGER PRIMARY KEY,
    start_time  TIMESTAMP NOT NULL,
    user_id     INTEGER NOT NULL,
    level       VARCHAR(16),
    song_id     VARCHAR(32),
    artist_id   VARCHAR(32),
    session_id  INTEGER,
    location    VARCHAR(256),
    user_agent  VARCHAR(512)
)
DISTSTYLE EVEN
SORTKEY (start_time);

CREATE TABLE IF NOT EXISTS users (
    user_id    INTEGER PRIMARY KEY,
    first_name VARCHAR(256),
    last_name  VARCHAR(256),
    gender     VARCHAR(8),
    level      VARCHAR(16)
)
DISTSTYLE ALL
SORTKEY (user_id);

CREATE TABLE IF NOT EXISTS songs (
    song_id   VARCHAR(32) PRIMARY KEY,
    title     VARCHAR(512),
    artist_id VARCHAR(32),
    year      INTEGER,
    duration  DOUBLE PRECISION
)
DISTSTYLE ALL
SORTKEY (song_id);

CREATE TABLE IF NOT EXISTS artists (
    artist_id VARCHAR(32) PRIMARY KEY,
    name      VARCHAR(512),
    location  VARCHAR(512),
    latitude  DOUBLE PRECISION,
    longitude DOUBLE PRECISION
)
DISTSTYLE ALL
SORTKEY (artist_id);

CREATE TABLE IF NOT EXISTS time (
    start_time TIMESTAMP PRIMARY KEY,
    hour       INTEGER,
    day        INTEGER,
    week       INTEGER,
    month      INTEGER,
    year       INTEGER,
    weekday    INTEGER
)
DISTSTYLE ALL
SORTKEY (start_time);

-- This run's rows (transform.sql), audited by check.sql, merged by
-- publish.sql; etld_songplays keys are local (1..n), publish adds the
-- published maximum.  No keys declared: the checks count duplicates.
CREATE TABLE etld_new_songplays (
    songplay_id INTEGER,
    start_time  TIMESTAMP,
    user_id     INTEGER,
    level       VARCHAR(16),
    song_id     VARCHAR(32),
    artist_id   VARCHAR(32),
    session_id  INTEGER,
    location    VARCHAR(256),
    user_agent  VARCHAR(512),
    ev_song     VARCHAR(256),
    ev_artist   VARCHAR(256),
    ev_length   DOUBLE PRECISION
)
DISTSTYLE EVEN
SORTKEY (start_time);

CREATE TABLE etld_upd_songplays (
    songplay_id INTEGER,
    song_id     VARCHAR(32),
    artist_id   VARCHAR(32)
)
DISTSTYLE ALL;

CREATE TABLE etld_new_users (
    user_id    INTEGER,
    first_name VARCHAR(256),
    last_name  VARCHAR(256),
    gender     VARCHAR(8),
    level      VARCHAR(16),
    src_ts     TIMESTAMP,
    src_object VARCHAR(1024),
    src_order  BIGINT
)
DISTSTYLE ALL;

CREATE TABLE etld_new_songs (
    song_id    VARCHAR(32),
    title      VARCHAR(512),
    artist_id  VARCHAR(32),
    year       INTEGER,
    duration   DOUBLE PRECISION,
    src_object VARCHAR(1024),
    src_order  BIGINT
)
DISTSTYLE ALL;

CREATE TABLE etld_new_artists (
    artist_id  VARCHAR(32),
    name       VARCHAR(512),
    location   VARCHAR(512),
    latitude   DOUBLE PRECISION,
    longitude  DOUBLE PRECISION,
    src_object VARCHAR(1024),
    src_order  BIGINT
)
DISTSTYLE ALL;

CREATE TABLE etld_new_time (
    start_time TIMESTAMP,
    hour       INTEGER,
    day        INTEGER,
    week       INTEGER,
    month      INTEGER,
    year       INTEGER,
    weekday    INTEGER
)
DISTSTYLE ALL;

CREATE TABLE etld_new_song_match (
    title       VARCHAR(512),
    artist_name VARCHAR(512),
    duration    DOUBLE PRECISION,
    song_id     VARCHAR(32),
    artist_id   VARCHAR(32),
    src_object  VARCHAR(1024),
    src_order   BIGINT
)
DISTKEY (title);

-- Kept beside the published tables: where their rows came from.
CREATE TABLE IF NOT EXISTS etld_songplay_src (
    songplay_id INTEGER PRIMARY KEY,
    song        VARCHAR(256),
    artist      VARCHAR(256),
    length      DOUBLE PRECISION
)
DISTKEY (song);

CREATE TABLE IF NOT EXISTS etld_song_match (
    title       VARCHAR(512) NOT NULL,
    artist_name VARCHAR(512) NOT NULL,
    duration    DOUBLE PRECISION NOT NULL,
    song_id     VARCHAR(32) NOT NULL,
    artist_id   VARCHAR(32),
    src_object  VARCHAR(1024),
    src_order   BIGINT,
    PRIMARY KEY (title, artist_name, duration)
)
DISTKEY (title);

CREATE TABLE IF NOT EXISTS etld_song_src (
    song_id    VARCHAR(32) PRIMARY KEY,
    src_object VARCHAR(1024),
    src_order  BIGINT
)
DISTKEY (song_id);

CREATE TABLE IF NOT EXISTS etld_artist_src (
    artist_id  VARCHAR(32) PRIMARY KEY,
    src_object VARCHAR(1024),
    src_order  BIGINT
)
DISTSTYLE ALL;

CREATE TABLE IF NOT EXISTS etld_user_src (
    user_id    INTEGER PRIMARY KEY,
    src_ts     TIMESTAMP,
    src_object VARCHAR(1024),
    src_order  BIGINT
)
DISTSTYLE ALL;

-- etld's bookkeeping (see sql/sqlite/create_tables.sql): the objects this
-- run loads and why, and the jobs that published.
CREATE TABLE etld_plan (
    job_id BIGINT NOT NULL,
    seq    INTEGER NOT NULL,
    source VARCHAR(32) NOT NULL,
    uri    VARCHAR(1024) NOT NULL,
    size   BIGINT NOT NULL,
    -- TAG is a reserved word on Redshift (r_pg_keywords.html): quoted, the
    -- one way the page allows; no statement reads it on Redshift.
    "tag"  VARCHAR(256)
);

CREATE TABLE etld_run (
    job_id BIGINT NOT NULL,
    mode   VARCHAR(16) NOT NULL,
    reason VARCHAR(1024) NOT NULL
);

CREATE TABLE IF NOT EXISTS etld_publishes (
    job_id       BIGINT NOT NULL,
    mode         VARCHAR(16) NOT NULL,
    published_at TIMESTAMP NOT NULL
);
