-- check.sql (postgres): data-quality checks of a run's rows before they are
-- published (write, audit, publish), one SELECT each.
--
-- The same checks as sql/sqlite/check.sql.  Every statement returns one
-- row: (name, ok, detail), ok an integer 1 or 0 (the check step wants an
-- integer; a boolean is cast).  The check step runs
-- them all, stores each result with the job (etlctl status JOB shows them)
-- and fails when any ok is 0; then nothing is published.  They read this
-- run's etld_new_* tables and, in an incremental run ({etl.mode}), the
-- published tables the new rows join: since every publish was audited, the
-- merged tables keep the properties checked here at a cost that follows the
-- new data, not the history.

SELECT 'songplays non-empty',
       CAST((SELECT COUNT(*) FROM etld_new_songplays) > 0
           OR NOT EXISTS (SELECT 1 FROM staging_events WHERE page = 'NextSong') AS INTEGER),
       (SELECT COUNT(*) FROM etld_new_songplays) || ' rows';
SELECT 'users non-empty',
       CAST((SELECT COUNT(*) FROM etld_new_users) > 0
           OR NOT EXISTS (SELECT 1 FROM staging_events WHERE page = 'NextSong' AND userId <> '')
           OR ({etl.mode} = 'incremental' AND EXISTS (SELECT 1 FROM users)) AS INTEGER),
       (SELECT COUNT(*) FROM etld_new_users) || ' rows';
SELECT 'songs non-empty',
       CAST((SELECT COUNT(*) FROM etld_new_songs) > 0 OR NOT EXISTS (SELECT 1 FROM staging_songs)
           OR ({etl.mode} = 'incremental' AND EXISTS (SELECT 1 FROM songs)) AS INTEGER),
       (SELECT COUNT(*) FROM etld_new_songs) || ' rows';
SELECT 'artists non-empty',
       CAST((SELECT COUNT(*) FROM etld_new_artists) > 0 OR NOT EXISTS (SELECT 1 FROM staging_songs)
           OR ({etl.mode} = 'incremental' AND EXISTS (SELECT 1 FROM artists)) AS INTEGER),
       (SELECT COUNT(*) FROM etld_new_artists) || ' rows';
SELECT 'time non-empty',
       CAST((SELECT COUNT(*) FROM etld_new_time) > 0
           OR NOT EXISTS (SELECT 1 FROM etld_new_songplays)
           OR ({etl.mode} = 'incremental' AND EXISTS (SELECT 1 FROM time)) AS INTEGER),
       (SELECT COUNT(*) FROM etld_new_time) || ' rows';

SELECT 'no NULL keys',
       CAST(n = 0 AS INTEGER), n || ' NULL keys'
FROM (SELECT (SELECT COUNT(*) FROM etld_new_songplays
              WHERE songplay_id IS NULL OR start_time IS NULL)
           + (SELECT COUNT(*) FROM etld_new_users WHERE user_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_songs WHERE song_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_artists WHERE artist_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_time WHERE start_time IS NULL) AS n) k;

SELECT 'keys unique',
       CAST(n = 0 AS INTEGER), n || ' duplicate keys'
FROM (SELECT (SELECT COUNT(*) - COUNT(DISTINCT songplay_id) FROM etld_new_songplays)
           + (SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM etld_new_users)
           + (SELECT COUNT(*) - COUNT(DISTINCT song_id) FROM etld_new_songs)
           + (SELECT COUNT(*) - COUNT(DISTINCT artist_id) FROM etld_new_artists)
           + (SELECT COUNT(*) - COUNT(DISTINCT start_time) FROM etld_new_time) AS n) k;

SELECT 'songplays start_time in time',
       CAST(n = 0 AS INTEGER), n || ' songplays without a time row'
FROM (SELECT COUNT(*) AS n FROM etld_new_songplays p
      WHERE NOT EXISTS (SELECT 1 FROM etld_new_time t WHERE t.start_time = p.start_time)
        AND NOT ({etl.mode} = 'incremental'
                 AND EXISTS (SELECT 1 FROM time t WHERE t.start_time = p.start_time))) k;

SELECT 'songplays user_id in users',
       CAST(n = 0 AS INTEGER), n || ' songplays without a users row'
FROM (SELECT COUNT(*) AS n FROM etld_new_songplays p
      WHERE NOT EXISTS (SELECT 1 FROM etld_new_users u WHERE u.user_id = p.user_id)
        AND NOT ({etl.mode} = 'incremental'
                 AND EXISTS (SELECT 1 FROM users u WHERE u.user_id = p.user_id))) k;

SELECT 'one songplay per NextSong event',
       CAST(a = b AS INTEGER), a || ' songplays for ' || b || ' NextSong events'
FROM (SELECT (SELECT COUNT(*) FROM etld_new_songplays) AS a,
             (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') AS b) k;
