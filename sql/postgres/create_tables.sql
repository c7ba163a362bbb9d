-- create_tables.sql (postgres): drop and create the staging and star tables.
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

DROP TABLE IF EXISTS staging_events;
DROP TABLE IF EXISTS staging_songs;
DROP TABLE IF EXISTS songplays;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS songs;
DROP TABLE IF EXISTS artists;
DROP TABLE IF EXISTS time;
-- etld's record of which COPYs of a job committed (see daemon/etl.c): new
-- staging tables make every old record meaningless, and job ids of another
-- journal could collide with them.
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
    userId          VARCHAR(32),     -- "" for logged-out events, so text here
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
    input_order      BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE songplays (
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

CREATE TABLE users (
    user_id    INTEGER PRIMARY KEY,
    first_name VARCHAR(256),
    last_name  VARCHAR(256),
    gender     VARCHAR(8),
    level      VARCHAR(16)
);

CREATE TABLE songs (
    song_id   VARCHAR(32) PRIMARY KEY,
    title     VARCHAR(512),
    artist_id VARCHAR(32),
    year      INTEGER,
    duration  DOUBLE PRECISION
);

CREATE TABLE artists (
    artist_id VARCHAR(32) PRIMARY KEY,
    name      VARCHAR(512),
    location  VARCHAR(512),
    latitude  DOUBLE PRECISION,
    longitude DOUBLE PRECISION
);

CREATE TABLE time (
    start_time TIMESTAMP PRIMARY KEY,
    hour       INTEGER,
    day        INTEGER,
    week       INTEGER,
    month      INTEGER,
    year       INTEGER,
    weekday    INTEGER
);
