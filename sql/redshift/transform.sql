-- transform.sql (redshift): staging tables -> this run's star rows (the
-- etld_new_* shadow tables), with the same rules as a full run of
-- sql/postgres/transform.sql and sql/sqlite/transform.sql.
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

DELETE FROM etld_new_songplays;
DELETE FROM etld_new_users;
DELETE FROM etld_new_songs;
DELETE FROM etld_new_artists;
DELETE FROM etld_new_time;

-- One row per NextSong event.  The song is the one whose title, artist name
-- and duration all equal the event's; when several songs match, the smallest
-- song_id, so an event never yields two rows.
INSERT INTO etld_new_songplays (songplay_id, start_time, user_id, level, song_id, artist_id,
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
INSERT INTO etld_new_users (user_id, first_name, last_name, gender, level)
SELECT user_id, firstName, lastName, gender, level
FROM (SELECT CAST(userId AS INTEGER) AS user_id, firstName, lastName, gender, level,
             ROW_NUMBER() OVER (PARTITION BY CAST(userId AS INTEGER)
                                ORDER BY ts DESC, input_order DESC) AS rn
      FROM staging_events
      WHERE page = 'NextSong' AND userId IS NOT NULL AND userId <> '') e
WHERE rn = 1;

-- One row per song_id and per artist_id: the first one in input order.
INSERT INTO etld_new_songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (SELECT song_id, title, artist_id, year, duration,
             ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY input_order) AS rn
      FROM staging_songs WHERE song_id IS NOT NULL) s
WHERE rn = 1;

INSERT INTO etld_new_artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
             ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY input_order) AS rn
      FROM staging_songs WHERE artist_id IS NOT NULL) s
WHERE rn = 1;

-- One row per distinct start_time (millisecond precision).  EXTRACT(WEEK)
-- is the ISO week on both Redshift and PostgreSQL; EXTRACT(DOW) has 0 for
-- Sunday.
INSERT INTO etld_new_time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(EXTRACT(HOUR FROM start_time) AS INTEGER),
       CAST(EXTRACT(DAY FROM start_time) AS INTEGER),
       CAST(EXTRACT(WEEK FROM start_time) AS INTEGER),
       CAST(EXTRACT(MONTH FROM start_time) AS INTEGER),
       CAST(EXTRACT(YEAR FROM start_time) AS INTEGER),
       CAST(EXTRACT(DOW FROM start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM etld_new_songplays) p;
