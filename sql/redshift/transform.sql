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
       ON {etl.mode} = 'incremental'
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
       ON {etl.mode} = 'incremental'
      AND pm.title = e.song AND pm.artist_name = e.artist AND pm.duration = e.length
WHERE e.page = 'NextSong';

-- Published songplays whose (title, artist, length) got a better song.
INSERT INTO etld_upd_songplays (songplay_id, song_id, artist_id)
SELECT s.songplay_id, m.song_id, m.artist_id
FROM etld_new_song_match m
JOIN etld_songplay_src s
  ON s.song = m.title AND s.artist = m.artist_name AND s.length = m.duration
WHERE {etl.mode} = 'incremental';

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
LEFT JOIN etld_user_src p ON {etl.mode} = 'incremental' AND p.user_id = n.user_id
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
LEFT JOIN etld_song_src p ON {etl.mode} = 'incremental' AND p.song_id = n.song_id
WHERE n.rn = 1 AND (p.song_id IS NULL OR n.src_order < p.src_order);

INSERT INTO etld_new_artists (artist_id, name, location, latitude, longitude, src_object,
                              src_order)
SELECT n.artist_id, n.artist_name, n.artist_location, n.artist_latitude, n.artist_longitude,
       '', n.src_order
FROM (SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
             (SELECT MAX(job_id) FROM etld_run) * 1000000000000 + input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY input_order) AS rn
      FROM staging_songs WHERE artist_id IS NOT NULL) n
LEFT JOIN etld_artist_src p ON {etl.mode} = 'incremental' AND p.artist_id = n.artist_id
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
LEFT JOIN time t ON {etl.mode} = 'incremental' AND t.start_time = n.start_time
WHERE t.start_time IS NULL;
