-- transform.sql (sqlite): staging tables -> star schema.
--
-- The step runs this file in one transaction and it begins by emptying the
-- star tables, so running it again (after a crash, or a second job) gives the
-- same rows.  Ties are broken by input order (rowid of the staging tables),
-- so the result is deterministic.

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
WITH song_match AS (
    SELECT title, artist_name, duration, song_id, artist_id
    FROM (SELECT title, artist_name, duration, song_id, artist_id,
                 ROW_NUMBER() OVER (PARTITION BY title, artist_name, duration
                                    ORDER BY song_id, rowid) AS rn
          FROM staging_songs
          WHERE title IS NOT NULL AND artist_name IS NOT NULL AND duration IS NOT NULL)
    WHERE rn = 1)
SELECT ROW_NUMBER() OVER (ORDER BY e.ts, e.rowid),
       e.ts,
       CAST(NULLIF(e.userId, '') AS INTEGER),
       e.level,
       m.song_id,
       m.artist_id,
       e.sessionId,
       e.location,
       e.userAgent
FROM staging_events e
LEFT JOIN song_match m
       ON m.title = e.song AND m.artist_name = e.artist AND m.duration = e.length
WHERE e.page = 'NextSong';

-- Each user of a NextSong event, as of their latest one: a user who upgraded
-- is 'paid' once, not 'free' and 'paid'.
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, firstName, lastName, gender, level
FROM (SELECT CAST(userId AS INTEGER) AS user_id, firstName, lastName, gender, level,
             ROW_NUMBER() OVER (PARTITION BY CAST(userId AS INTEGER)
                                ORDER BY ts DESC, rowid DESC) AS rn
      FROM staging_events
      WHERE page = 'NextSong' AND userId IS NOT NULL AND userId <> '')
WHERE rn = 1;

-- One row per song_id and per artist_id: the first one in input order.
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (SELECT song_id, title, artist_id, year, duration,
             ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY rowid) AS rn
      FROM staging_songs WHERE song_id IS NOT NULL)
WHERE rn = 1;

INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
             ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY rowid) AS rn
      FROM staging_songs WHERE artist_id IS NOT NULL)
WHERE rn = 1;

-- One row per distinct start_time (millisecond precision).  The ISO week is
-- the week of the Thursday of the same Monday-to-Sunday week; weekday 0 is
-- Sunday.
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(strftime('%H', start_time) AS INTEGER),
       CAST(strftime('%d', start_time) AS INTEGER),
       (CAST(strftime('%j', date(start_time, '-3 days', 'weekday 4')) AS INTEGER) - 1) / 7 + 1,
       CAST(strftime('%m', start_time) AS INTEGER),
       CAST(strftime('%Y', start_time) AS INTEGER),
       CAST(strftime('%w', start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM songplays);
