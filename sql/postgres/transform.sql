-- transform.sql (postgres): this run's staging rows -> this run's star rows
-- (the etld_new_* tables of create_tables.sql), which check.sql audits and
-- publish.sql merges into the published tables.
--
-- {etl.mode} is what the load step decided: 'full' (the staging tables hold
-- every object; the published tables are ignored, to be replaced) or
-- 'incremental' (the staging tables hold only objects no publish took; the
-- rows below are those that add to or replace published ones).  Either way
-- the rules are those of one full run over every object, in the order
-- (object URI, row order inside the object): the two modes give the same
-- tables, songplay_id apart.
--
-- The step runs this file in one transaction and empties its own tables
-- first, so running it again gives the same rows.  The same rules as
-- sql/sqlite/transform.sql, with input_order (the staging tables' identity
-- column) where SQLite has rowid, and text ordered byte by byte (COLLATE
-- "C") as SQLite orders it.

-- Statistics first: just after the load the planner knows nothing of the
-- staging tables and would join 300,000 events to the songs by nested loop
-- (minutes instead of a second).  ANALYZE is transactional like the rest.
ANALYZE staging_events;
ANALYZE staging_songs;

DELETE FROM etld_new_songplays;
DELETE FROM etld_upd_songplays;
DELETE FROM etld_new_users;
DELETE FROM etld_new_songs;
DELETE FROM etld_new_artists;
DELETE FROM etld_new_time;
DELETE FROM etld_new_song_match;

-- The song of a (title, artist name, duration): the smallest song_id among
-- the songs that have them (then object, then row).  Kept when it beats the
-- published match, or there is none.
INSERT INTO etld_new_song_match (title, artist_name, duration, song_id, artist_id, src_object,
                                 src_order)
SELECT n.title, n.artist_name, n.duration, n.song_id, n.artist_id, n.src_object, n.src_order
FROM (SELECT title, artist_name, duration, song_id COLLATE "C" AS song_id, artist_id, etld_object AS src_object,
             input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY title, artist_name, duration
                                ORDER BY song_id COLLATE "C", etld_object, input_order) AS rn
      FROM staging_songs
      WHERE title IS NOT NULL AND artist_name IS NOT NULL AND duration IS NOT NULL
        AND song_id IS NOT NULL) n
LEFT JOIN etld_song_match p
       ON {etl.mode} = 'incremental'
      AND p.title = n.title AND p.artist_name = n.artist_name AND p.duration = n.duration
WHERE n.rn = 1
  AND (p.title IS NULL
       OR (n.song_id, n.src_object, n.src_order) < (p.song_id, p.src_object, p.src_order));

-- One songplay per NextSong event, numbered 1..n by (ts, object, row); the
-- song is this run's match when it has one, else the published one.
INSERT INTO etld_new_songplays (songplay_id, start_time, user_id, level, song_id, artist_id,
                                session_id, location, user_agent, ev_song, ev_artist, ev_length)
SELECT ROW_NUMBER() OVER (ORDER BY e.ts, e.etld_object, e.input_order),
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

-- Each user of a NextSong event as of their latest one (ts, then object,
-- then row), kept when it is later than the published one: an older event
-- arriving late does not overwrite a newer level.
INSERT INTO etld_new_users (user_id, first_name, last_name, gender, level, src_ts, src_object,
                            src_order)
SELECT l.user_id, e.firstName, e.lastName, e.gender, e.level, e.ts, e.etld_object, e.input_order
FROM (SELECT user_id, rid
      FROM (SELECT CAST(userId AS INTEGER) AS user_id, input_order AS rid,
                   ROW_NUMBER() OVER (PARTITION BY CAST(userId AS INTEGER)
                                      ORDER BY ts DESC, etld_object DESC, input_order DESC) AS rn
            FROM staging_events
            WHERE page = 'NextSong' AND userId IS NOT NULL AND userId <> '') c
      WHERE rn = 1) l
JOIN staging_events e ON e.input_order = l.rid
LEFT JOIN etld_user_src p ON {etl.mode} = 'incremental' AND p.user_id = l.user_id
WHERE p.user_id IS NULL
   OR (e.ts, e.etld_object, e.input_order) > (p.src_ts, p.src_object, p.src_order);

-- One row per song_id and per artist_id: the first in (object, row) order,
-- kept when it comes before the published one's.
INSERT INTO etld_new_songs (song_id, title, artist_id, year, duration, src_object, src_order)
SELECT n.song_id, n.title, n.artist_id, n.year, n.duration, n.src_object, n.src_order
FROM (SELECT song_id, title, artist_id, year, duration, etld_object AS src_object,
             input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY etld_object, input_order) AS rn
      FROM staging_songs WHERE song_id IS NOT NULL) n
LEFT JOIN etld_song_src p ON {etl.mode} = 'incremental' AND p.song_id = n.song_id
WHERE n.rn = 1
  AND (p.song_id IS NULL OR (n.src_object, n.src_order) < (p.src_object, p.src_order));

INSERT INTO etld_new_artists (artist_id, name, location, latitude, longitude, src_object,
                              src_order)
SELECT n.artist_id, n.artist_name, n.artist_location, n.artist_latitude, n.artist_longitude,
       n.src_object, n.src_order
FROM (SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
             etld_object AS src_object, input_order AS src_order,
             ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY etld_object, input_order) AS rn
      FROM staging_songs WHERE artist_id IS NOT NULL) n
LEFT JOIN etld_artist_src p ON {etl.mode} = 'incremental' AND p.artist_id = n.artist_id
WHERE n.rn = 1
  AND (p.artist_id IS NULL OR (n.src_object, n.src_order) < (p.src_object, p.src_order));

-- One row per distinct start_time (millisecond precision) not published
-- yet.  EXTRACT(WEEK) is the ISO week (the week of the Thursday of the same
-- Monday-to-Sunday week); EXTRACT(DOW) has 0 for Sunday.
INSERT INTO etld_new_time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(EXTRACT(HOUR FROM start_time) AS INTEGER),
       CAST(EXTRACT(DAY FROM start_time) AS INTEGER),
       CAST(EXTRACT(WEEK FROM start_time) AS INTEGER),
       CAST(EXTRACT(MONTH FROM start_time) AS INTEGER),
       CAST(EXTRACT(YEAR FROM start_time) AS INTEGER),
       CAST(EXTRACT(DOW FROM start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM etld_new_songplays) n
WHERE NOT ({etl.mode} = 'incremental'
           AND EXISTS (SELECT 1 FROM time t WHERE t.start_time = n.start_time));
