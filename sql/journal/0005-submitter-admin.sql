-- 0005-submitter-admin.sql: the submitter's privilege, kept with the job
-- (PRAGMA user_version = 5).
--
-- A job keeps its own settings so that it resumes with the same values; it
-- keeps whether its submitter was an admin (root, etld's own uid or a member
-- of daemon.admin_group at submit time) for the same reason: the checks made
-- when a step opens a local file (daemon.data_roots, daemon.warehouse_roots)
-- must know it, also after a restart.  Jobs of an older schema were accepted
-- before those checks existed; only root's count as an admin's.

ALTER TABLE jobs ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET admin = 1 WHERE uid = 0;
