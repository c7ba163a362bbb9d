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
-- song_id, so an event never yields two rows.  songplay_id is given by
-- SQLite in insert order (the table was emptied above), i.e. 1..N by
-- (ts, input order): cheaper than numbering with a window over whole rows.
DROP TABLE IF EXISTS temp.song_match;
CREATE TEMP TABLE song_match AS
    SELECT title, artist_name, duration, song_id, artist_id
    FROM (SELECT title, artist_name, duration, song_id, artist_id,
                 ROW_NUMBER() OVER (PARTITION BY title, artist_name, duration
                                    ORDER BY song_id, rowid) AS rn
          FROM staging_songs
          WHERE title IS NOT NULL AND artist_name IS NOT NULL AND duration IS NOT NULL)
    WHERE rn = 1;
CREATE INDEX temp.song_match_key ON song_match (title, artist_name, duration);

INSERT INTO songplays (start_time, user_id, level, song_id, artist_id, session_id, location,
                       user_agent)
SELECT e.ts,
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
WHERE e.page = 'NextSong'
ORDER BY e.ts, e.rowid;

DROP TABLE temp.song_match;

-- Each user of a NextSong event, as of their latest one: a user who upgraded
-- is 'paid' once, not 'free' and 'paid'.  The window numbers only (user, ts,
-- rowid); the chosen rows are read back by rowid.
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT l.user_id, e.firstName, e.lastName, e.gender, e.level
FROM (SELECT user_id, rid
      FROM (SELECT CAST(userId AS INTEGER) AS user_id, rowid AS rid,
                   ROW_NUMBER() OVER (PARTITION BY CAST(userId AS INTEGER)
                                      ORDER BY ts DESC, rowid DESC) AS rn
            FROM staging_events
            WHERE page = 'NextSong' AND userId IS NOT NULL AND userId <> '')
      WHERE rn = 1) l
JOIN staging_events e ON e.rowid = l.rid;

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
-- Sunday.  Fields at fixed places of the text are cut out, not parsed.
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(substr(start_time, 12, 2) AS INTEGER),  -- 'YYYY-MM-DD HH:MI:SS[.fff]'
       CAST(substr(start_time, 9, 2) AS INTEGER),
       (CAST(strftime('%j', date(start_time, '-3 days', 'weekday 4')) AS INTEGER) - 1) / 7 + 1,
       CAST(substr(start_time, 6, 2) AS INTEGER),
       CAST(substr(start_time, 1, 4) AS INTEGER),
       CAST(strftime('%w', start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM songplays);
