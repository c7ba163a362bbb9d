SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3
;;
BEGIN
;;
-- create_tables.sql (redshift): drop and create the staging and star tables.
--
-- The same columns and types as sql/postgres and sql/sqlite; Redshift adds
-- how each table is spread over the slices and in which order its blocks
-- are written.  The choice follows the two joins that matter:
--
--   * The transform joins every NextSong event to the songs by title,
--     artist name and duration.  staging_events is distributed on song and
--     staging_songs on title, so matching rows sit on the same slice and the
--     join needs no redistribution of the 300,000 (or 300 million) events.
--   * Queries join the fact table songplays to the dimensions.  songs is the
--     large dimension: songplays and songs are both distributed on song_id,
--     so that join is local too.  users, artists and time are small and
--     copied to every node (DISTSTYLE ALL), which makes their joins local
--     whatever the fact table's key.
--   * Sort keys are what queries filter or join on: start_time for songplays
--     and time (time ranges), the primary key of each dimension.
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
DROP TABLE IF EXISTS songplays;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS songs;
DROP TABLE IF EXISTS artists;
DROP TABLE IF EXISTS time;
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
DISTKEY (song);

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
DISTKEY (title);

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
)
DISTKEY (song_id)
SORTKEY (start_time);

CREATE TABLE users (
    user_id    INTEGER PRIMARY KEY,
    first_name VARCHAR(256),
    last_name  VARCHAR(256),
    gender     VARCHAR(8),
    level      VARCHAR(16)
)
DISTSTYLE ALL
SORTKEY (user_id);

CREATE TABLE songs (
    song_id   VARCHAR(32) PRIMARY KEY,
    title     VARCHAR(512),
    artist_id VARCHAR(32),
    year      INTEGER,
    duration  DOUBLE PRECISION
)
DISTKEY (song_id)
SORTKEY (song_id);

CREATE TABLE artists (
    artist_id VARCHAR(32) PRIMARY KEY,
    name      VARCHAR(512),
    location  VARCHAR(512),
    latitude  DOUBLE PRECISION,
    longitude DOUBLE PRECISION
)
DISTSTYLE ALL
SORTKEY (artist_id);

CREATE TABLE time (
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
;;
COMMIT
;;
SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3
;;
CREATE TABLE IF NOT EXISTS etld_copies (job_id INTEGER NOT NULL, stmt INTEGER NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (job_id, stmt))
;;
SELECT COUNT(*) FROM etld_copies WHERE job_id = {job} AND stmt = 0
;;
BEGIN
;;
-- copy.sql (redshift): the load step's COPY statements, sent to Redshift as
-- they are: Redshift reads the objects from S3 itself, with the IAM role
-- attached to the cluster.  The same text as sql/postgres/copy.sql and
-- sql/sqlite/copy.sql, where etld's COPY emulator carries it out; a test
-- (tests/integration/test_redshift.py) runs this very file through the
-- emulator on SQLite, so the one text is checked there too.
--
-- {section.key} is replaced by the job's configuration value, quoted as a
-- SQL string literal.  An empty [iam] role_arn is the role the latest
-- provision job created; an empty [s3] region is the project bucket's region
-- when the sources are in it, else [aws] region.  COMPUPDATE and STATUPDATE
-- are off: the tables are new each run (the column encodings Redshift picks
-- for new tables serve), and Redshift's automatic analyze keeps statistics.

COPY staging_events FROM 's3://sparkify-golden/log_data'
    IAM_ROLE 'arn:aws:iam::123456789012:role/etld-redshift-s3-read'
    REGION 'us-west-2'
    FORMAT AS JSON 's3://sparkify-golden/log_json_path.json'
    TIMEFORMAT AS 'epochmillisecs'
    COMPUPDATE OFF STATUPDATE OFF
;;
SELECT pg_last_copy_count()
;;
INSERT INTO etld_copies (job_id, stmt, rows) VALUES ({job}, 0, 24)
;;
COMMIT
;;
SELECT COUNT(*) FROM etld_copies WHERE job_id = {job} AND stmt = 1
;;
BEGIN
;;
COPY staging_songs FROM 's3://sparkify-golden/song_data'
    IAM_ROLE 'arn:aws:iam::123456789012:role/etld-redshift-s3-read'
    REGION 'us-west-2'
    FORMAT AS JSON 'auto'
    COMPUPDATE OFF STATUPDATE OFF
;;
SELECT pg_last_copy_count()
;;
INSERT INTO etld_copies (job_id, stmt, rows) VALUES ({job}, 1, 24)
;;
COMMIT
;;
SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3
;;
BEGIN
;;
-- transform.sql (redshift): staging tables -> star schema, with the same
-- rules as sql/postgres/transform.sql and sql/sqlite/transform.sql.
--
-- The step runs this file in one transaction and it begins by emptying the
-- star tables, so running it again (after a crash, or a second job) gives the
-- same rows.  Written in the SQL that Redshift and PostgreSQL share (a test
-- runs this very file on PostgreSQL and compares its result with the
-- postgres transform's); where Redshift differs from sql/postgres:
--
--   * DELETE, not TRUNCATE: Redshift's TRUNCATE commits the transaction it
--     runs in, and a crash after it would leave empty tables behind.
--   * No ANALYZE: Redshift analyzes new tables itself, and the one big join
--     is local to each slice (see the distribution keys in
--     create_tables.sql) whatever the planner's estimates.
--   * No COLLATE "C": Redshift compares VARCHAR byte by byte already.
--   * Subqueries instead of a WITH clause inside INSERT.

DELETE FROM songplays;
DELETE FROM users;
DELETE FROM songs;
DELETE FROM artists;
DELETE FROM time;

-- One row per NextSong event.  The song is the one whose title, artist name
-- and duration all equal the event's; when several songs match, the smallest
-- song_id, so an event never yields two rows.
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id,
                       session_id, location, user_agent)
SELECT ROW_NUMBER() OVER (ORDER BY e.ts, e.input_order),
       e.ts,
       CAST(NULLIF(e.userId, '') AS INTEGER),
       e.level,
       m.song_id,
       m.artist_id,
       e.sessionId,
       e.location,
       e.userAgent
FROM staging_events e
LEFT JOIN (SELECT title, artist_name, duration, song_id, artist_id
           FROM (SELECT title, artist_name, duration, song_id, artist_id,
                        ROW_NUMBER() OVER (PARTITION BY title, artist_name, duration
                                           ORDER BY song_id, input_order) AS rn
                 FROM staging_songs
                 WHERE title IS NOT NULL AND artist_name IS NOT NULL
                   AND duration IS NOT NULL) s
           WHERE rn = 1) m
       ON m.title = e.song AND m.artist_name = e.artist AND m.duration = e.length
WHERE e.page = 'NextSong';

-- Each user of a NextSong event, as of their latest one: a user who upgraded
-- is 'paid' once, not 'free' and 'paid'.
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, firstName, lastName, gender, level
FROM (SELECT CAST(userId AS INTEGER) AS user_id, firstName, lastName, gender, level,
             ROW_NUMBER() OVER (PARTITION BY CAST(userId AS INTEGER)
                                ORDER BY ts DESC, input_order DESC) AS rn
      FROM staging_events
      WHERE page = 'NextSong' AND userId IS NOT NULL AND userId <> '') e
WHERE rn = 1;

-- One row per song_id and per artist_id: the first one in input order.
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (SELECT song_id, title, artist_id, year, duration,
             ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY input_order) AS rn
      FROM staging_songs WHERE song_id IS NOT NULL) s
WHERE rn = 1;

INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
             ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY input_order) AS rn
      FROM staging_songs WHERE artist_id IS NOT NULL) s
WHERE rn = 1;

-- One row per distinct start_time (millisecond precision).  EXTRACT(WEEK)
-- is the ISO week on both Redshift and PostgreSQL; EXTRACT(DOW) has 0 for
-- Sunday.
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(EXTRACT(HOUR FROM start_time) AS INTEGER),
       CAST(EXTRACT(DAY FROM start_time) AS INTEGER),
       CAST(EXTRACT(WEEK FROM start_time) AS INTEGER),
       CAST(EXTRACT(MONTH FROM start_time) AS INTEGER),
       CAST(EXTRACT(YEAR FROM start_time) AS INTEGER),
       CAST(EXTRACT(DOW FROM start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM songplays) p;
;;
COMMIT
;;
SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3
;;
-- check.sql (redshift): data-quality checks, one SELECT each, the same
-- checks as sql/postgres/check.sql.
--
-- Every statement returns one row: (name, ok, detail), ok an integer 1 or 0.
-- Written in the SQL that Redshift and PostgreSQL share (a test runs this
-- file on PostgreSQL): CASE instead of casting a boolean to an integer,
-- counts cast to VARCHAR before ||, and LEFT JOIN ... IS NULL instead of
-- correlated NOT EXISTS, which Redshift supports only in some positions.

SELECT 'songplays non-empty',
       CASE WHEN (SELECT COUNT(*) FROM songplays) > 0
              OR (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') = 0
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM songplays) AS VARCHAR) || ' rows'
;;
SELECT 'users non-empty',
       CASE WHEN (SELECT COUNT(*) FROM users) > 0
              OR (SELECT COUNT(*) FROM staging_events
                  WHERE page = 'NextSong' AND userId <> '') = 0
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM users) AS VARCHAR) || ' rows'
;;
SELECT 'songs non-empty',
       CASE WHEN (SELECT COUNT(*) FROM songs) > 0
              OR (SELECT COUNT(*) FROM staging_songs) = 0
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM songs) AS VARCHAR) || ' rows'
;;
SELECT 'artists non-empty',
       CASE WHEN (SELECT COUNT(*) FROM artists) > 0
              OR (SELECT COUNT(*) FROM staging_songs) = 0
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM artists) AS VARCHAR) || ' rows'
;;
SELECT 'time non-empty',
       CASE WHEN (SELECT COUNT(*) FROM time) > 0
              OR (SELECT COUNT(*) FROM songplays) = 0
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM time) AS VARCHAR) || ' rows'
;;
SELECT 'no NULL keys',
       CASE WHEN n = 0 THEN 1 ELSE 0 END, CAST(n AS VARCHAR) || ' NULL keys'
FROM (SELECT (SELECT COUNT(*) FROM songplays WHERE songplay_id IS NULL OR start_time IS NULL)
           + (SELECT COUNT(*) FROM users WHERE user_id IS NULL)
           + (SELECT COUNT(*) FROM songs WHERE song_id IS NULL)
           + (SELECT COUNT(*) FROM artists WHERE artist_id IS NULL)
           + (SELECT COUNT(*) FROM time WHERE start_time IS NULL) AS n) k
;;
SELECT 'keys unique',
       CASE WHEN n = 0 THEN 1 ELSE 0 END, CAST(n AS VARCHAR) || ' duplicate keys'
FROM (SELECT (SELECT COUNT(*) - COUNT(DISTINCT songplay_id) FROM songplays)
           + (SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM users)
           + (SELECT COUNT(*) - COUNT(DISTINCT song_id) FROM songs)
           + (SELECT COUNT(*) - COUNT(DISTINCT artist_id) FROM artists)
           + (SELECT COUNT(*) - COUNT(DISTINCT start_time) FROM time) AS n) k
;;
SELECT 'songplays start_time in time',
       CASE WHEN n = 0 THEN 1 ELSE 0 END,
       CAST(n AS VARCHAR) || ' songplays without a time row'
FROM (SELECT COUNT(*) AS n FROM songplays p
      LEFT JOIN time t ON t.start_time = p.start_time
      WHERE t.start_time IS NULL) k
;;
SELECT 'songplays user_id in users',
       CASE WHEN n = 0 THEN 1 ELSE 0 END,
       CAST(n AS VARCHAR) || ' songplays without a users row'
FROM (SELECT COUNT(*) AS n FROM songplays p
      LEFT JOIN users u ON u.user_id = p.user_id
      WHERE u.user_id IS NULL) k
;;
SELECT 'one songplay per NextSong event',
       CASE WHEN a = b THEN 1 ELSE 0 END,
       CAST(a AS VARCHAR) || ' songplays for ' || CAST(b AS VARCHAR) || ' NextSong events'
FROM (SELECT (SELECT COUNT(*) FROM songplays) AS a,
             (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') AS b) k
;;
