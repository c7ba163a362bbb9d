-- publish.sql (redshift): replaces the published star tables' rows with
-- this run's audited ones (the etld_new_* shadow tables), in the one
-- transaction the publish step runs it in, with the run's row in
-- etld_publishes.  DELETE, not TRUNCATE: Redshift's TRUNCATE commits the
-- transaction it runs in, which would publish empty tables.  The tables are
-- changed in place, so views and grants on them keep working.  Redshift
-- reclaims the deleted rows' space with its automatic VACUUM DELETE.

DELETE FROM songplays;
INSERT INTO songplays SELECT * FROM etld_new_songplays;
DELETE FROM users;
INSERT INTO users SELECT * FROM etld_new_users;
DELETE FROM songs;
INSERT INTO songs SELECT * FROM etld_new_songs;
DELETE FROM artists;
INSERT INTO artists SELECT * FROM etld_new_artists;
DELETE FROM time;
INSERT INTO time SELECT * FROM etld_new_time;
