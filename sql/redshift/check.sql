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
       CAST((SELECT COUNT(*) FROM etld_new_songplays) AS VARCHAR) || ' rows';
SELECT 'users non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_users) > 0
              OR (SELECT COUNT(*) FROM staging_events
                  WHERE page = 'NextSong' AND userId <> '') = 0
              OR ({etl.mode} = 'incremental' AND (SELECT COUNT(*) FROM users) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_users) AS VARCHAR) || ' rows';
SELECT 'songs non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_songs) > 0
              OR (SELECT COUNT(*) FROM staging_songs) = 0
              OR ({etl.mode} = 'incremental' AND (SELECT COUNT(*) FROM songs) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_songs) AS VARCHAR) || ' rows';
SELECT 'artists non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_artists) > 0
              OR (SELECT COUNT(*) FROM staging_songs) = 0
              OR ({etl.mode} = 'incremental' AND (SELECT COUNT(*) FROM artists) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_artists) AS VARCHAR) || ' rows';
SELECT 'time non-empty',
       CASE WHEN (SELECT COUNT(*) FROM etld_new_time) > 0
              OR (SELECT COUNT(*) FROM etld_new_songplays) = 0
              OR ({etl.mode} = 'incremental' AND (SELECT COUNT(*) FROM time) > 0)
            THEN 1 ELSE 0 END,
       CAST((SELECT COUNT(*) FROM etld_new_time) AS VARCHAR) || ' rows';

SELECT 'no NULL keys',
       CASE WHEN n = 0 THEN 1 ELSE 0 END, CAST(n AS VARCHAR) || ' NULL keys'
FROM (SELECT (SELECT COUNT(*) FROM etld_new_songplays WHERE songplay_id IS NULL OR start_time IS NULL)
           + (SELECT COUNT(*) FROM etld_new_users WHERE user_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_songs WHERE song_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_artists WHERE artist_id IS NULL)
           + (SELECT COUNT(*) FROM etld_new_time WHERE start_time IS NULL) AS n) k;

SELECT 'keys unique',
       CASE WHEN n = 0 THEN 1 ELSE 0 END, CAST(n AS VARCHAR) || ' duplicate keys'
FROM (SELECT (SELECT COUNT(*) - COUNT(DISTINCT songplay_id) FROM etld_new_songplays)
           + (SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM etld_new_users)
           + (SELECT COUNT(*) - COUNT(DISTINCT song_id) FROM etld_new_songs)
           + (SELECT COUNT(*) - COUNT(DISTINCT artist_id) FROM etld_new_artists)
           + (SELECT COUNT(*) - COUNT(DISTINCT start_time) FROM etld_new_time) AS n) k;

SELECT 'songplays start_time in time',
       CASE WHEN n = 0 THEN 1 ELSE 0 END,
       CAST(n AS VARCHAR) || ' songplays without a time row'
FROM (SELECT COUNT(*) AS n FROM etld_new_songplays p
      LEFT JOIN etld_new_time t ON t.start_time = p.start_time
      LEFT JOIN time pt ON {etl.mode} = 'incremental' AND pt.start_time = p.start_time
      WHERE t.start_time IS NULL AND pt.start_time IS NULL) k;

SELECT 'songplays user_id in users',
       CASE WHEN n = 0 THEN 1 ELSE 0 END,
       CAST(n AS VARCHAR) || ' songplays without a users row'
FROM (SELECT COUNT(*) AS n FROM etld_new_songplays p
      LEFT JOIN etld_new_users u ON u.user_id = p.user_id
      LEFT JOIN users pu ON {etl.mode} = 'incremental' AND pu.user_id = p.user_id
      WHERE u.user_id IS NULL AND pu.user_id IS NULL) k;

SELECT 'one songplay per NextSong event',
       CASE WHEN a = b THEN 1 ELSE 0 END,
       CAST(a AS VARCHAR) || ' songplays for ' || CAST(b AS VARCHAR) || ' NextSong events'
FROM (SELECT (SELECT COUNT(*) FROM etld_new_songplays) AS a,
             (SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong') AS b) k;

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
                         WHERE "table" = 'songs') AS VARCHAR), '-');
