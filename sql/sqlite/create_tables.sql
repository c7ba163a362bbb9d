-- create_tables.sql (sqlite): drop and create the staging and star tables.
--
-- Column types are Redshift's, written as Redshift would take them: SQLite
-- keeps the declared type text, and etld's COPY emulator reads it back to
-- convert each JSON value as Redshift would (VARCHAR lengths are in bytes).
-- The step runs this file in one transaction, so it is safe to run again.

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
    userId          VARCHAR(32)      -- "" for logged-out events, so text here
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
    year             INTEGER
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
