-- check.sql (sqlite): data-quality checks, one SELECT each.
--
-- Every statement returns one row: (name, ok, detail).  The check step runs
-- them all, stores each result with the job (etlctl status JOB shows them)
-- and fails when any ok is 0.

SELECT 'songplays non-empty',
       (SELECT COUNT(*) FROM songplays) > 0
           OR NOT EXISTS (SELECT 1 FROM staging_events WHERE page = 'NextSong'),
       (SELECT COUNT(*) FROM songplays) || ' rows';
SELECT 'users non-empty',
       (SELECT COUNT(*) FROM users) > 0
           OR NOT EXISTS (SELECT 1 FROM staging_events WHERE page = 'NextSong' AND userId <> ''),
       (SELECT COUNT(*) FROM users) || ' rows';
SELECT 'songs non-empty',
       (SELECT COUNT(*) FROM songs) > 0 OR NOT EXISTS (SELECT 1 FROM staging_songs),
       (SELECT COUNT(*) FROM songs) || ' rows';
SELECT 'artists non-empty',
       (SELECT COUNT(*) FROM artists) > 0 OR NOT EXISTS (SELECT 1 FROM staging_songs),
       (SELECT COUNT(*) FROM artists) || ' rows';
SELECT 'time non-empty',
       (SELECT COUNT(*) FROM time) > 0 OR NOT EXISTS (SELECT 1 FROM songplays),
       (SELECT COUNT(*) FROM time) || ' rows';

SELECT 'no NULL keys',
       n = 0, n || ' NULL keys'
FROM (SELECT (SELECT COUNT(*) FROM songplays WHERE songplay_id IS NULL OR start_time IS NULL)
           + (SELECT COUNT(*) FROM users WHERE user_id IS NULL)
           + (SELECT COUNT(*) FROM songs WHERE song_id IS NULL)
           + (SELECT COUNT(*) FROM artists WHERE artist_id IS NULL)
           + (SELECT COUNT(*) FROM time WHERE start_time IS NULL) AS n);

SELECT 'keys unique',
       n = 0, n || ' duplicate keys'
FROM (SELECT (SELECT COUNT(*) - COUNT(DISTINCT songplay_id) FROM songplays)
           + (SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM users)
           + (SELECT COUNT(*) - COUNT(DISTINCT song_id) FROM songs)
           + (SELECT COUNT(*) - COUNT(DISTINCT artist_id) FROM artists)
           + (SELECT COUNT(*) - COUNT(DISTINCT start_time) FROM time) AS n);

SELECT 'songplays start_time in time',
       n = 0, n || ' songplays without a time row'
FROM (SELECT COUNT(*) AS n FROM songplays p
      WHERE NOT EXISTS (SELECT 1 FROM time t WHERE t.start_time = p.start_time));

SELECT 'songplays user_id in users',
       n = 0, n || ' songplays without a users row'
FROM (SELECT COUNT(*) AS n FROM songplays p
      WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = p.user_id));

SELECT 'one songplay per NextSong event',
       a = b, a || ' songplays for ' || b || ' NextSong events'
FROM (SELECT (SELECT COUNT(*) FROM songplays) AS a,
             (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') AS b);
