-- create_tables.sql (postgres): the tables of an etl run, as in
-- sql/sqlite/create_tables.sql (read its opening comment).
--
-- Write, audit, publish on PostgreSQL: the run's rows are built in shadow
-- tables (etld_new_*) and publish.sql changes the published tables in place,
-- in one transaction: MVCC shows every reader the previous publish until it
-- commits.  Not a schema swap: a view made on a published table follows the
-- table it was made on, so moving tables between schemas or renaming them
-- would leave users' views on the old rows.
--
-- Column types are Redshift's, as in sql/sqlite: etld's COPY emulator reads
-- them back (wh_columns) to convert each JSON value as Redshift would, then
-- streams the rows with COPY ... FROM STDIN.  The step runs this file in one
-- transaction (PostgreSQL's DDL is transactional), so it is safe to run again.
--
-- input_order: the transforms break ties by input order, as SQLite's rowid
-- does.  A heap has no such order (ctid changes with updates, and a retried
-- COPY can reuse the space of a rolled back one), so each staging table has
-- an identity column that the server numbers as the rows of the COPY arrive,
-- in stream order.  The COPY never names it: etld leaves identity columns out
-- of a table's columns, as Redshift's COPY leaves out IDENTITY columns, so
-- JSON 'auto' and the JSONPaths file map to the other columns exactly as on
-- SQLite.  Gaps after a rolled back COPY do not matter: only the order is used.
-- Object URIs and song ids are compared byte by byte (COLLATE "C"), as SQLite
-- and S3 order them, whatever the database's collation.

DROP TABLE IF EXISTS staging_events;
DROP TABLE IF EXISTS staging_songs;
DROP TABLE IF EXISTS etld_copies;
DROP TABLE IF EXISTS etld_plan;
DROP TABLE IF EXISTS etld_run;
DROP TABLE IF EXISTS etld_new_songplays;
DROP TABLE IF EXISTS etld_upd_songplays;
DROP TABLE IF EXISTS etld_new_users;
DROP TABLE IF EXISTS etld_new_songs;
DROP TABLE IF EXISTS etld_new_artists;
DROP TABLE IF EXISTS etld_new_time;
DROP TABLE IF EXISTS etld_new_song_match;

-- Every line of log_data, as the JSONPaths file maps it.  etld_object is
-- etld's: the URI of the object each row came from (the emulator fills it;
-- COPY leaves it out of its column list).
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
    userId          VARCHAR(32),     -- "" for logged-out events, so text here
    etld_object     VARCHAR(1024) COLLATE "C",
    input_order     BIGINT GENERATED ALWAYS AS IDENTITY
);

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
    etld_object      VARCHAR(1024) COLLATE "C",
    input_order      BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE etld_plan (
    job_id BIGINT NOT NULL,
    seq    INTEGER NOT NULL,    -- key order within a source
    source TEXT NOT NULL,       -- log_data, song_data
    uri    TEXT NOT NULL,
    size   BIGINT NOT NULL,
    tag    TEXT
);

CREATE TABLE etld_run (
    job_id BIGINT NOT NULL,
    mode   TEXT NOT NULL,       -- full, incremental
    reason TEXT NOT NULL
);

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
);

CREATE TABLE IF NOT EXISTS users (
    user_id    INTEGER PRIMARY KEY,
    first_name VARCHAR(256),
    last_name  VARCHAR(256),
    gender     VARCHAR(8),
    level      VARCHAR(16)
);

CREATE TABLE IF NOT EXISTS songs (
    song_id   VARCHAR(32) PRIMARY KEY,
    title     VARCHAR(512),
    artist_id VARCHAR(32),
    year      INTEGER,
    duration  DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS artists (
    artist_id VARCHAR(32) PRIMARY KEY,
    name      VARCHAR(512),
    location  VARCHAR(512),
    latitude  DOUBLE PRECISION,
    longitude DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS time (
    start_time TIMESTAMP PRIMARY KEY,
    hour       INTEGER,
    day        INTEGER,
    week       INTEGER,
    month      INTEGER,
    year       INTEGER,
    weekday    INTEGER
);

-- Where the published rows came from (src_object, src_order: the object's
-- URI and the row's order in its load), so that a later run's row replaces
-- a published one exactly when a full run would have chosen it.
CREATE TABLE IF NOT EXISTS etld_songplay_src (
    songplay_id INTEGER PRIMARY KEY,
    song        VARCHAR(256),
    artist      VARCHAR(256),
    length      DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS etld_songplay_src_song ON etld_songplay_src (song, artist, length);

-- Per (title, artist_name, duration): the song a songplay with that title,
-- artist and length gets (the smallest song_id; then object, order).
CREATE TABLE IF NOT EXISTS etld_song_match (
    title       VARCHAR(512) NOT NULL,
    artist_name VARCHAR(512) NOT NULL,
    duration    DOUBLE PRECISION NOT NULL,
    song_id     VARCHAR(32) COLLATE "C" NOT NULL,
    artist_id   VARCHAR(32),
    src_object  VARCHAR(1024) COLLATE "C",
    src_order   BIGINT,
    PRIMARY KEY (title, artist_name, duration)
);

CREATE TABLE IF NOT EXISTS etld_song_src (
    song_id    VARCHAR(32) PRIMARY KEY,
    src_object VARCHAR(1024) COLLATE "C",
    src_order  BIGINT
);

CREATE TABLE IF NOT EXISTS etld_artist_src (
    artist_id  VARCHAR(32) PRIMARY KEY,
    src_object VARCHAR(1024) COLLATE "C",
    src_order  BIGINT
);

CREATE TABLE IF NOT EXISTS etld_user_src (
    user_id    INTEGER PRIMARY KEY,
    src_ts     TIMESTAMP,
    src_object VARCHAR(1024) COLLATE "C",
    src_order  BIGINT
);

-- The jobs that published, written in the publish transaction itself: a
-- publish step that runs again after a crash finds its job here.
CREATE TABLE IF NOT EXISTS etld_publishes (
    job_id       BIGINT PRIMARY KEY,
    mode         TEXT NOT NULL,
    published_at TIMESTAMP NOT NULL
);

-- This run's rows.  No keys declared: the checks count duplicates and
-- NULLs instead of an INSERT failing on them.  songplay_id is local (1..n
-- in (ts, object, order) order); publish adds the published maximum.
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
);

-- Published songplays whose song changes: a song that arrived in this run
-- matches them better than what they had.
CREATE TABLE etld_upd_songplays (
    songplay_id INTEGER,
    song_id     VARCHAR(32),
    artist_id   VARCHAR(32)
);

CREATE TABLE etld_new_users (
    user_id    INTEGER,
    first_name VARCHAR(256),
    last_name  VARCHAR(256),
    gender     VARCHAR(8),
    level      VARCHAR(16),
    src_ts     TIMESTAMP,
    src_object VARCHAR(1024) COLLATE "C",
    src_order  BIGINT
);

CREATE TABLE etld_new_songs (
    song_id    VARCHAR(32),
    title      VARCHAR(512),
    artist_id  VARCHAR(32),
    year       INTEGER,
    duration   DOUBLE PRECISION,
    src_object VARCHAR(1024) COLLATE "C",
    src_order  BIGINT
);

CREATE TABLE etld_new_artists (
    artist_id  VARCHAR(32),
    name       VARCHAR(512),
    location   VARCHAR(512),
    latitude   DOUBLE PRECISION,
    longitude  DOUBLE PRECISION,
    src_object VARCHAR(1024) COLLATE "C",
    src_order  BIGINT
);

CREATE TABLE etld_new_time (
    start_time TIMESTAMP,
    hour       INTEGER,
    day        INTEGER,
    week       INTEGER,
    month      INTEGER,
    year       INTEGER,
    weekday    INTEGER
);

CREATE TABLE etld_new_song_match (
    title       VARCHAR(512),
    artist_name VARCHAR(512),
    duration    DOUBLE PRECISION,
    song_id     VARCHAR(32) COLLATE "C",
    artist_id   VARCHAR(32),
    src_object  VARCHAR(1024) COLLATE "C",
    src_order   BIGINT
);
CREATE INDEX etld_new_song_match_key ON etld_new_song_match (title, artist_name, duration);
-- for the checks' and publish's lookups by key
CREATE INDEX etld_new_users_key ON etld_new_users (user_id);
CREATE INDEX etld_new_songs_key ON etld_new_songs (song_id);
CREATE INDEX etld_new_artists_key ON etld_new_artists (artist_id);
CREATE INDEX etld_new_time_key ON etld_new_time (start_time);
