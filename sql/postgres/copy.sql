-- copy.sql (postgres): the load step's COPY statements, in Redshift syntax,
-- the same text as sql/sqlite/copy.sql.
--
-- PostgreSQL's COPY reads no S3 and no JSON: etld parses each statement and
-- carries it out itself, with Redshift's semantics (see README, "The COPY
-- emulator"), streaming the rows with COPY ... FROM STDIN inside the step's
-- transaction.  The same text runs unchanged on Redshift.  {section.key} is
-- replaced by the job's configuration value, quoted as a SQL string literal,
-- except {s3.log_data} and {s3.song_data}: the load step lists those
-- sources, plans which objects the run reads (all of them, or in etl.mode =
-- incremental those no publish took: daemon/etlplan.h) and puts here the
-- manifest it wrote of exactly those; a source without new objects skips
-- its COPY.

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
