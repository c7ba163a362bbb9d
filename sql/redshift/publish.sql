-- publish.sql (redshift): merges a run's audited rows (etld_new_*) into the
-- published star tables, as sql/sqlite/publish.sql does, in the one
-- transaction the publish step runs it in with the run's row in
-- etld_publishes.  Redshift's serializable isolation shows readers the
-- previous publish until it commits; the tables are changed in place, so
-- views and grants on them keep working.  DELETE, not TRUNCATE: Redshift's
-- TRUNCATE commits the transaction it runs in, which would publish empty
-- tables.  Redshift reclaims deleted rows' space with its automatic VACUUM
-- DELETE.

DELETE FROM songplays WHERE {etl.mode} = 'full';
DELETE FROM users WHERE {etl.mode} = 'full';
DELETE FROM songs WHERE {etl.mode} = 'full';
DELETE FROM artists WHERE {etl.mode} = 'full';
DELETE FROM time WHERE {etl.mode} = 'full';
DELETE FROM etld_songplay_src WHERE {etl.mode} = 'full';
DELETE FROM etld_song_match WHERE {etl.mode} = 'full';
DELETE FROM etld_song_src WHERE {etl.mode} = 'full';
DELETE FROM etld_artist_src WHERE {etl.mode} = 'full';
DELETE FROM etld_user_src WHERE {etl.mode} = 'full';

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
