SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 2
;;
SELECT mode, reason FROM etld_run WHERE job_id = {job}
;;
SELECT MAX(job_id) FROM etld_publishes
;;
BEGIN
;;
INSERT INTO etld_run (job_id, mode, reason) VALUES ({job}, 'incremental', '1 new objects (1 log_data, 0 song_data) after job 1''s publish of 6')
;;
INSERT INTO etld_plan (job_id, seq, source, uri, size, "tag") VALUES ({job}, 0, 'log_data', 's3://sparkify-golden/log_data/2018/11/2018-11-03-events.json', 7441, '"8f8e6001a42b1c797283e945c0802bab"')
;;
COMMIT
;;
CREATE TABLE IF NOT EXISTS etld_copies (job_id INTEGER NOT NULL, stmt INTEGER NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (job_id, stmt))
;;
SELECT COUNT(*) FROM etld_copies WHERE job_id = {job} AND stmt = 0
;;
BEGIN
;;
SELECT pg_backend_pid()
;;
SELECT pg_backend_pid(), SYSDATE
;;
-- copy.sql (redshift): the load step's COPY statements, sent to Redshift as
-- they are: Redshift reads the objects from S3 itself, with the IAM role
-- attached to the cluster.  The same text as sql/postgres/copy.sql and
-- sql/sqlite/copy.sql, where etld's COPY emulator carries it out; a test
-- (tests/integration/test_redshift.py) runs this very file through the
-- emulator on SQLite, so the one text is checked there too.
--
-- {section.key} is replaced by the job's configuration value, quoted as a
-- SQL string literal, except {s3.log_data} and {s3.song_data}: the load step
-- lists those sources, plans which objects the run reads (all of them, or in
-- etl.mode = incremental those no publish took: daemon/etlplan.h), puts a
-- manifest of exactly those in the project bucket ([stage] bucket, under
-- etld/manifests/, removed after the load) and puts its URI here; a source
-- without new objects skips its COPY.  An empty [iam] role_arn is the role the latest
-- provision job created; an empty [s3] region is the project bucket's region
-- when the sources are in it, else [aws] region.  COMPUPDATE and STATUPDATE
-- are off: the tables are new each run (the column encodings Redshift picks
-- for new tables serve), and Redshift's automatic analyze keeps statistics.

COPY staging_events FROM 's3://rs-project/etld/manifests/job-{job}-log_data.manifest'
    IAM_ROLE 'arn:aws:iam::123456789012:role/etld-redshift-s3-read'
    REGION 'us-west-2'
    FORMAT AS JSON 's3://sparkify-golden/log_json_path.json'
    TIMEFORMAT AS 'epochmillisecs'
    MANIFEST
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
SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 2
;;
BEGIN
;;
-- transform.sql (redshift): this run's staging rows -> this run's star rows
-- (the etld_new_* tables), which check.sql audits and publish.sql merges,
-- with the rules of sql/sqlite/transform.sql (read its opening comment).
--
-- Written in the SQL that Redshift and PostgreSQL share (a test runs this
-- very file on PostgreSQL and compares its result with the postgres
-- transform's); where Redshift differs from sql/postgres:
--
--   * DELETE, not TRUNCATE: Redshift's TRUNCATE commits the transaction it
--     runs in.
--   * No ANALYZE: Redshift analyzes new tables itself, and the one big join
--     is local to each slice (staging_songs is DISTSTYLE ALL, see
--     create_tables.sql) whatever the planner's estimates.
--   * No COLLATE "C": Redshift compares VARCHAR byte by byte already.
--   * No row-value comparisons ((a, b) < (c, d)): written out.
--   * Redshift's COPY cannot say which object a row came from: src_object
--     is '' and src_order is the run's job id times 10^12 plus the row's
--     input_order, so ties between objects go by arrival (see
--     create_tables.sql).

DELETE FROM etld_new_songplays;
DELETE FROM etld_upd_songplays;
DELETE FROM etld_new_users;
DELETE FROM etld_new_songs;
DELETE FROM etld_new_artists;
DELETE FROM etld_new_time;
DELETE FROM etld_new_song_match;

-- The song of a (title, artist name, duration): the smallest song_id (then
-- order), kept when it beats the published match or there is none.
INSERT INTO etld_new_song_match (title, artist_name, duration, song_id, artist_id, src_object,
                                 src_order)
SELECT n.title, n.artist_name, n.duration, n.song_id, n.artist_id, n.src_object, n.src_order
FROM (SELECT title, artist_name, duration, song_id, artist_id, '' AS src_object,
             (SELECT MAX(job_id) FROM etld_run) * 1000000000000 + input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY title, artist_name, duration
                                ORDER BY song_id, input_order) AS rn
      FROM staging_songs
      WHERE title IS NOT NULL AND artist_name IS NOT NULL AND duration IS NOT NULL
        AND song_id IS NOT NULL) n
LEFT JOIN etld_song_match p
       ON 'incremental' = 'incremental'
      AND p.title = n.title AND p.artist_name = n.artist_name AND p.duration = n.duration
WHERE n.rn = 1
  AND (p.title IS NULL OR n.song_id < p.song_id
       OR (n.song_id = p.song_id AND n.src_order < p.src_order));

-- One songplay per NextSong event, numbered 1..n by (ts, order); the song is
-- this run's match when it has one, else the published one.
INSERT INTO etld_new_songplays (songplay_id, start_time, user_id, level, song_id, artist_id,
                                session_id, location, user_agent, ev_song, ev_artist, ev_length)
SELECT ROW_NUMBER() OVER (ORDER BY e.ts, e.input_order),
       e.ts,
       CAST(NULLIF(e.userId, '') AS INTEGER),
       e.level,
       CASE WHEN nm.title IS NOT NULL THEN nm.song_id ELSE pm.song_id END,
       CASE WHEN nm.title IS NOT NULL THEN nm.artist_id ELSE pm.artist_id END,
       e.sessionId,
       e.location,
       e.userAgent,
       e.song,
       e.artist,
       e.length
FROM staging_events e
LEFT JOIN etld_new_song_match nm
       ON nm.title = e.song AND nm.artist_name = e.artist AND nm.duration = e.length
LEFT JOIN etld_song_match pm
       ON 'incremental' = 'incremental'
      AND pm.title = e.song AND pm.artist_name = e.artist AND pm.duration = e.length
WHERE e.page = 'NextSong';

-- Published songplays whose (title, artist, length) got a better song.
INSERT INTO etld_upd_songplays (songplay_id, song_id, artist_id)
SELECT s.songplay_id, m.song_id, m.artist_id
FROM etld_new_song_match m
JOIN etld_songplay_src s
  ON s.song = m.title AND s.artist = m.artist_name AND s.length = m.duration
WHERE 'incremental' = 'incremental';

-- Each user of a NextSong event as of their latest one, kept when it is
-- later than the published one.
INSERT INTO etld_new_users (user_id, first_name, last_name, gender, level, src_ts, src_object,
                            src_order)
SELECT n.user_id, n.firstName, n.lastName, n.gender, n.level, n.ts, '', n.src_order
FROM (SELECT CAST(userId AS INTEGER) AS user_id, firstName, lastName, gender, level, ts,
             (SELECT MAX(job_id) FROM etld_run) * 1000000000000 + input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY CAST(userId AS INTEGER)
                                ORDER BY ts DESC, input_order DESC) AS rn
      FROM staging_events
      WHERE page = 'NextSong' AND userId IS NOT NULL AND userId <> '') n
LEFT JOIN etld_user_src p ON 'incremental' = 'incremental' AND p.user_id = n.user_id
WHERE n.rn = 1
  AND (p.user_id IS NULL OR n.ts > p.src_ts OR (n.ts = p.src_ts AND n.src_order > p.src_order));

-- One row per song_id and per artist_id: the first in order, kept when it
-- comes before the published one's.
INSERT INTO etld_new_songs (song_id, title, artist_id, year, duration, src_object, src_order)
SELECT n.song_id, n.title, n.artist_id, n.year, n.duration, '', n.src_order
FROM (SELECT song_id, title, artist_id, year, duration,
             (SELECT MAX(job_id) FROM etld_run) * 1000000000000 + input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY input_order) AS rn
      FROM staging_songs WHERE song_id IS NOT NULL) n
LEFT JOIN etld_song_src p ON 'incremental' = 'incremental' AND p.song_id = n.song_id
WHERE n.rn = 1 AND (p.song_id IS NULL OR n.src_order < p.src_order);

INSERT INTO etld_new_artists (artist_id, name, location, latitude, longitude, src_object,
                              src_order)
SELECT n.artist_id, n.artist_name, n.artist_location, n.artist_latitude, n.artist_longitude,
       '', n.src_order
FROM (SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
             (SELECT MAX(job_id) FROM etld_run) * 1000000000000 + input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY input_order) AS rn
      FROM staging_songs WHERE artist_id IS NOT NULL) n
LEFT JOIN etld_artist_src p ON 'incremental' = 'incremental' AND p.artist_id = n.artist_id
WHERE n.rn = 1 AND (p.artist_id IS NULL OR n.src_order < p.src_order);

-- One row per distinct start_time (millisecond precision) not published
-- yet.  EXTRACT(WEEK) is the ISO week on both Redshift and PostgreSQL;
-- EXTRACT(DOW) has 0 for Sunday.
INSERT INTO etld_new_time (start_time, hour, day, week, month, year, weekday)
SELECT n.start_time,
       CAST(EXTRACT(HOUR FROM n.start_time) AS INTEGER),
       CAST(EXTRACT(DAY FROM n.start_time) AS INTEGER),
       CAST(EXTRACT(WEEK FROM n.start_time) AS INTEGER),
       CAST(EXTRACT(MONTH FROM n.start_time) AS INTEGER),
       CAST(EXTRACT(YEAR FROM n.start_time) AS INTEGER),
       CAST(EXTRACT(DOW FROM n.start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM etld_new_songplays) n
LEFT JOIN time t ON 'incremental' = 'incremental' AND t.start_time = n.start_time
WHERE t.start_time IS NULL;
;;
COMMIT
;;
SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 2
;;
-- check.sql (redshift): data-quality checks of this run's rows (the
-- etld_new_* tables) before publish.sql merges them, one SELECT each, the
-- same checks as sql/postgres/check.sql.
--
-- Every statement returns one row: (name, ok, detail), ok an integer 1 or 0.
-- Written in the SQL that Redshift and PostgreSQL share (a test runs this
-- file on PostgreSQL): CASE instead of casting a boolean to an integer,
-- counts cast to VARCHAR before ||, and LEFT JOIN ... IS NULL instead of
-- correlated NOT EXISTS, which Redshift supports only in some positions.

SELECT 'songplays non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_songplays) > 0
              OR (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') = 0
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_songplays) AS VARCHAR) || ' rows'
;;
SELECT 'users non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_users) > 0
              OR (SELECT COUNT(*) FROM staging_events
                  WHERE page = 'NextSong' AND userId <> '') = 0
              OR ('incremental' = 'incremental' AND (SELECT COUNT(*) FROM users) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_users) AS VARCHAR) || ' rows'
;;
SELECT 'songs non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_songs) > 0
              OR (SELECT COUNT(*) FROM staging_songs) = 0
              OR ('incremental' = 'incremental' AND (SELECT COUNT(*) FROM songs) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_songs) AS VARCHAR) || ' rows'
;;
SELECT 'artists non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_artists) > 0
              OR (SELECT COUNT(*) FROM staging_songs) = 0
              OR ('incremental' = 'incremental' AND (SELECT COUNT(*) FROM artists) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_artists) AS VARCHAR) || ' rows'
;;
SELECT 'time non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_time) > 0
              OR (SELECT COUNT(*) FROM etld_new_songplays) = 0
              OR ('incremental' = 'incremental' AND (SELECT COUNT(*) FROM time) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_time) AS VARCHAR) || ' rows'
;;
SELECT 'no NULL keys',
       CASE WHEN n = 0 THEN 1 ELSE 0 END, CAST(n AS VARCHAR) || ' NULL keys'
FROM (SELECT (SELECT COUNT(*) FROM etld_new_songplays WHERE songplay_id IS NULL OR start_time IS NULL)
           + (SELECT COUNT(*) FROM etld_new_users WHERE user_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_songs WHERE song_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_artists WHERE artist_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_time WHERE start_time IS NULL) AS n) k
;;
SELECT 'keys unique',
       CASE WHEN n = 0 THEN 1 ELSE 0 END, CAST(n AS VARCHAR) || ' duplicate keys'
FROM (SELECT (SELECT COUNT(*) - COUNT(DISTINCT songplay_id) FROM etld_new_songplays)
           + (SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM etld_new_users)
           + (SELECT COUNT(*) - COUNT(DISTINCT song_id) FROM etld_new_songs)
           + (SELECT COUNT(*) - COUNT(DISTINCT artist_id) FROM etld_new_artists)
           + (SELECT COUNT(*) - COUNT(DISTINCT start_time) FROM etld_new_time) AS n) k
;;
SELECT 'songplays start_time in time',
       CASE WHEN n = 0 THEN 1 ELSE 0 END,
       CAST(n AS VARCHAR) || ' songplays without a time row'
FROM (SELECT COUNT(*) AS n FROM etld_new_songplays p
      LEFT JOIN etld_new_time t ON t.start_time = p.start_time
      LEFT JOIN time pt ON 'incremental' = 'incremental' AND pt.start_time = p.start_time
      WHERE t.start_time IS NULL AND pt.start_time IS NULL) k
;;
SELECT 'songplays user_id in users',
       CASE WHEN n = 0 THEN 1 ELSE 0 END,
       CAST(n AS VARCHAR) || ' songplays without a users row'
FROM (SELECT COUNT(*) AS n FROM etld_new_songplays p
      LEFT JOIN etld_new_users u ON u.user_id = p.user_id
      LEFT JOIN users pu ON 'incremental' = 'incremental' AND pu.user_id = p.user_id
      WHERE u.user_id IS NULL AND pu.user_id IS NULL) k
;;
SELECT 'one songplay per NextSong event',
       CASE WHEN a = b THEN 1 ELSE 0 END,
       CAST(a AS VARCHAR) || ' songplays for ' || CAST(b AS VARCHAR) || ' NextSong events'
FROM (SELECT (SELECT COUNT(*) FROM etld_new_songplays) AS a,
             (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') AS b) k
;;
-- How evenly the tables are spread over the slices: SVV_TABLE_INFO.skew_rows,
-- "the ratio of the number of rows in the slice with the most rows to the
-- number of rows in the slice with the fewest rows"
-- (https://docs.aws.amazon.com/redshift/latest/dg/r_SVV_TABLE_INFO.html;
-- the view lists only tables that hold rows: '-' for the others).  The
-- staging tables, this run's songplays and songs, and the published ones
-- (created by an older etld they may still have its DISTKEY(song_id));
-- users, artists and time are DISTSTYLE ALL, a copy per node, nothing to
-- skew.  A check that warns: ok is always 1, so skew never fails a job;
-- over 4 the detail starts with "warning:" (see create_tables.sql).
SELECT 'distribution skew',
       1,
       CASE WHEN (SELECT MAX(skew_rows) FROM svv_table_info
                  WHERE "table" IN ('staging_events', 'staging_songs', 'etld_new_songplays',
                                    'etld_new_songs', 'songplays', 'songs')) > 4
            THEN 'warning: a slice holds over 4 times the rows of another; '
            ELSE '' END
       || 'skew_rows: staging_events '
       || COALESCE(CAST((SELECT MAX(skew_rows) FROM svv_table_info
                         WHERE "table" = 'staging_events') AS VARCHAR), '-')
       || ', staging_songs '
       || COALESCE(CAST((SELECT MAX(skew_rows) FROM svv_table_info
                         WHERE "table" = 'staging_songs') AS VARCHAR), '-')
       || ', etld_new_songplays '
       || COALESCE(CAST((SELECT MAX(skew_rows) FROM svv_table_info
                         WHERE "table" = 'etld_new_songplays') AS VARCHAR), '-')
       || ', etld_new_songs '
       || COALESCE(CAST((SELECT MAX(skew_rows) FROM svv_table_info
                         WHERE "table" = 'etld_new_songs') AS VARCHAR), '-')
       || ', songplays '
       || COALESCE(CAST((SELECT MAX(skew_rows) FROM svv_table_info
                         WHERE "table" = 'songplays') AS VARCHAR), '-')
       || ', songs '
       || COALESCE(CAST((SELECT MAX(skew_rows) FROM svv_table_info
                         WHERE "table" = 'songs') AS VARCHAR), '-')
;;
SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 2
;;
SELECT COUNT(*) FROM etld_publishes WHERE job_id = {job}
;;
BEGIN
;;
-- publish.sql (redshift): merges a run's audited rows (etld_new_*) into the
-- published star tables, as sql/sqlite/publish.sql does, in the one
-- transaction the publish step runs it in with the run's row in
-- etld_publishes.  Redshift's serializable isolation shows readers the
-- previous publish until it commits; the tables are changed in place, so
-- views and grants on them keep working.  DELETE, not TRUNCATE: Redshift's
-- TRUNCATE commits the transaction it runs in, which would publish empty
-- tables.  Redshift reclaims deleted rows' space with its automatic VACUUM
-- DELETE.

DELETE FROM songplays WHERE 'incremental' = 'full';
DELETE FROM users WHERE 'incremental' = 'full';
DELETE FROM songs WHERE 'incremental' = 'full';
DELETE FROM artists WHERE 'incremental' = 'full';
DELETE FROM time WHERE 'incremental' = 'full';
DELETE FROM etld_songplay_src WHERE 'incremental' = 'full';
DELETE FROM etld_song_match WHERE 'incremental' = 'full';
DELETE FROM etld_song_src WHERE 'incremental' = 'full';
DELETE FROM etld_artist_src WHERE 'incremental' = 'full';
DELETE FROM etld_user_src WHERE 'incremental' = 'full';

UPDATE songplays SET song_id = u.song_id, artist_id = u.artist_id
FROM etld_upd_songplays u
WHERE songplays.songplay_id = u.songplay_id;

-- New songplays after the published ones: etld_songplay_src first, while
-- MAX(songplay_id) is still the published one.
INSERT INTO etld_songplay_src (songplay_id, song, artist, length)
SELECT b.base + n.songplay_id, n.ev_song, n.ev_artist, n.ev_length
FROM etld_new_songplays n
CROSS JOIN (SELECT COALESCE(MAX(songplay_id), 0) AS base FROM songplays) b
WHERE n.ev_song IS NOT NULL AND n.ev_artist IS NOT NULL AND n.ev_length IS NOT NULL;
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id, session_id,
                       location, user_agent)
SELECT b.base + n.songplay_id, n.start_time, n.user_id, n.level, n.song_id, n.artist_id,
       n.session_id, n.location, n.user_agent
FROM etld_new_songplays n
CROSS JOIN (SELECT COALESCE(MAX(songplay_id), 0) AS base FROM songplays) b;

DELETE FROM etld_song_match USING etld_new_song_match n
WHERE n.title = etld_song_match.title AND n.artist_name = etld_song_match.artist_name
  AND n.duration = etld_song_match.duration;
INSERT INTO etld_song_match (title, artist_name, duration, song_id, artist_id, src_object,
                             src_order)
SELECT title, artist_name, duration, song_id, artist_id, src_object, src_order
FROM etld_new_song_match;

DELETE FROM users WHERE user_id IN (SELECT user_id FROM etld_new_users);
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, first_name, last_name, gender, level FROM etld_new_users;
DELETE FROM etld_user_src WHERE user_id IN (SELECT user_id FROM etld_new_users);
INSERT INTO etld_user_src (user_id, src_ts, src_object, src_order)
SELECT user_id, src_ts, src_object, src_order FROM etld_new_users;

DELETE FROM songs WHERE song_id IN (SELECT song_id FROM etld_new_songs);
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration FROM etld_new_songs;
DELETE FROM etld_song_src WHERE song_id IN (SELECT song_id FROM etld_new_songs);
INSERT INTO etld_song_src (song_id, src_object, src_order)
SELECT song_id, src_object, src_order FROM etld_new_songs;

DELETE FROM artists WHERE artist_id IN (SELECT artist_id FROM etld_new_artists);
INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, name, location, latitude, longitude FROM etld_new_artists;
DELETE FROM etld_artist_src WHERE artist_id IN (SELECT artist_id FROM etld_new_artists);
INSERT INTO etld_artist_src (artist_id, src_object, src_order)
SELECT artist_id, src_object, src_order FROM etld_new_artists;

INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time, hour, day, week, month, year, weekday FROM etld_new_time;
;;
INSERT INTO etld_publishes (job_id, mode, published_at) VALUES ({job}, 'incremental', '{time}')
;;
COMMIT
;;
SELECT mode, reason FROM etld_run WHERE job_id = {job}
;;
SELECT source, uri, size, "tag" FROM etld_plan WHERE job_id = {job} AND seq >= 0 ORDER BY seq LIMIT 2000
;;
