-- check.sql (postgres): data-quality checks, one SELECT each, the same as
-- sql/sqlite/check.sql.
--
-- Every statement returns one row: (name, ok, detail), ok an integer 1 or 0
-- (the check step wants an integer; a boolean is cast).  The check step runs
-- them all, stores each result with the job (etlctl status JOB shows them)
-- and fails when any ok is 0.

SELECT 'songplays non-empty',
       CAST((SELECT COUNT(*) FROM songplays) > 0
            OR NOT EXISTS (SELECT 1 FROM staging_events WHERE page = 'NextSong') AS INTEGER),
       (SELECT COUNT(*) FROM songplays) || ' rows';
SELECT 'users non-empty',
       CAST((SELECT COUNT(*) FROM users) > 0
            OR NOT EXISTS (SELECT 1 FROM staging_events
                           WHERE page = 'NextSong' AND userId <> '') AS INTEGER),
       (SELECT COUNT(*) FROM users) || ' rows';
SELECT 'songs non-empty',
       CAST((SELECT COUNT(*) FROM songs) > 0
            OR NOT EXISTS (SELECT 1 FROM staging_songs) AS INTEGER),
       (SELECT COUNT(*) FROM songs) || ' rows';
SELECT 'artists non-empty',
       CAST((SELECT COUNT(*) FROM artists) > 0
            OR NOT EXISTS (SELECT 1 FROM staging_songs) AS INTEGER),
       (SELECT COUNT(*) FROM artists) || ' rows';
SELECT 'time non-empty',
       CAST((SELECT COUNT(*) FROM time) > 0
            OR NOT EXISTS (SELECT 1 FROM songplays) AS INTEGER),
       (SELECT COUNT(*) FROM time) || ' rows';

SELECT 'no NULL keys',
       CAST(n = 0 AS INTEGER), n || ' NULL keys'
FROM (SELECT (SELECT COUNT(*) FROM songplays WHERE songplay_id IS NULL OR start_time IS NULL)
           + (SELECT COUNT(*) FROM users WHERE user_id IS NULL)
           + (SELECT COUNT(*) FROM songs WHERE song_id IS NULL)
           + (SELECT COUNT(*) FROM artists WHERE artist_id IS NULL)
           + (SELECT COUNT(*) FROM time WHERE start_time IS NULL) AS n) k;

SELECT 'keys unique',
       CAST(n = 0 AS INTEGER), n || ' duplicate keys'
FROM (SELECT (SELECT COUNT(*) - COUNT(DISTINCT songplay_id) FROM songplays)
           + (SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM users)
           + (SELECT COUNT(*) - COUNT(DISTINCT song_id) FROM songs)
           + (SELECT COUNT(*) - COUNT(DISTINCT artist_id) FROM artists)
           + (SELECT COUNT(*) - COUNT(DISTINCT start_time) FROM time) AS n) k;

SELECT 'songplays start_time in time',
       CAST(n = 0 AS INTEGER), n || ' songplays without a time row'
FROM (SELECT COUNT(*) AS n FROM songplays p
      WHERE NOT EXISTS (SELECT 1 FROM time t WHERE t.start_time = p.start_time)) k;

SELECT 'songplays user_id in users',
       CAST(n = 0 AS INTEGER), n || ' songplays without a users row'
FROM (SELECT COUNT(*) AS n FROM songplays p
      WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = p.user_id)) k;

SELECT 'one songplay per NextSong event',
       CAST(a = b AS INTEGER), a || ' songplays for ' || b || ' NextSong events'
FROM (SELECT (SELECT COUNT(*) FROM songplays) AS a,
             (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') AS b) k;
