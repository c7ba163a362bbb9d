-- copy.sql (redshift): the load step's COPY statements, sent to Redshift as
-- they are: Redshift reads the objects from S3 itself, with the IAM role
-- attached to the cluster.  The same text as sql/postgres/copy.sql and
-- sql/sqlite/copy.sql, where etld's COPY emulator carries it out; a test
-- (tests/integration/test_redshift.py) runs this very file through the
-- emulator on SQLite, so the one text is checked there too.
--
-- {section.key} is replaced by the job's configuration value, quoted as a
-- SQL string literal, except {s3.log_data} and {s3.song_data}: the load step
-- lists those sources, plans which objects the run reads (all of them, or in
-- etl.mode = incremental those no publish took: daemon/etlplan.h), puts a
-- manifest of exactly those in the project bucket ([stage] bucket, under
-- etld/manifests/, removed after the load) and puts its URI here; a source
-- without new objects skips its COPY.  An empty [iam] role_arn is the role the latest
-- provision job created; an empty [s3] region is the project bucket's region
-- when the sources are in it, else [aws] region.  COMPUPDATE and STATUPDATE
-- are off: the tables are new each run (the column encodings Redshift picks
-- for new tables serve), and Redshift's automatic analyze keeps statistics.

COPY staging_events FROM {s3.log_data}
    IAM_ROLE {iam.role_arn}
    REGION {s3.region}
    FORMAT AS JSON {s3.log_jsonpath}
    TIMEFORMAT AS 'epochmillisecs'
    MANIFEST
    COMPUPDATE OFF STATUPDATE OFF;

COPY staging_songs FROM {s3.song_data}
    IAM_ROLE {iam.role_arn}
    REGION {s3.region}
    FORMAT AS JSON 'auto'
    MANIFEST
    COMPUPDATE OFF STATUPDATE OFF;
