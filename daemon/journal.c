/* journal.c - the SQLite journal.  See journal.h.
 *
 * Small functions, one statement each, prepared on demand (the journal is not
 * a hot path: a handful of writes per step and a progress write per second).
 * Migrations come from the files of sql/journal/, compiled in by scripts/embed.c. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "util.h"

extern const char *const journal_migrations[];
extern const size_t journal_migrations_n;

#define JOURNAL_APPLICATION_ID 0x65746c64 /* "etld" */
#define JOURNAL_EVENTS_PER_JOB 1000

/* A final state that could not be written (disk full, I/O error): kept in
 * memory, shown by the replies as if written, and written in order by
 * journal_retry once the journal takes writes again. */
struct unwritten {
        struct unwritten *next;
        int64_t job;
        int idx;   /* a step's index; UNWRITTEN_JOB: the job; UNWRITTEN_ALL_STEPS */
        int state; /* enum job_state for the job, enum step_state for steps */
        char *error;
        int64_t at;
};
#define UNWRITTEN_JOB (-1)
#define UNWRITTEN_ALL_STEPS (-2) /* journal_steps_finish */

struct journal {
        sqlite3 *db;
        char *path;
        struct unwritten *unwritten, **unwritten_tail;
        size_t n_unwritten;
        char why[96];  /* why the last write failed: "disk full", ... */
        bool retrying; /* journal_retry: failures were logged once already */
        int lock_fd;   /* PATH.lock, flock()ed while this etld runs; -1: none */
};

static const char *const job_names[JOB_STATE_MAX] = {
        [JOB_QUEUED] = "queued",       [JOB_RUNNING] = "running", [JOB_SUCCEEDED] = "succeeded",
        [JOB_FAILED] = "failed",       [JOB_CANCELLED] = "cancelled",
};
static const char *const step_names[STEP_STATE_MAX] = {
        [STEP_PENDING] = "pending", [STEP_RUNNING] = "running", [STEP_DONE] = "done",
        [STEP_FAILED] = "failed",   [STEP_CANCELLED] = "cancelled",
};

const char *job_state_name(enum job_state s)
{
        return s < JOB_STATE_MAX ? job_names[s] : "invalid";
}

const char *step_state_name(enum step_state s)
{
        return s < STEP_STATE_MAX ? step_names[s] : "invalid";
}

bool job_state_is_final(enum job_state s)
{
        return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

static int job_state_from_name(const char *name)
{
        for (int i = 0; i < JOB_STATE_MAX; i++)
                if (strcmp(job_names[i], name) == 0)
                        return i;
        return -1;
}

int journal_schema_version(void)
{
        return (int)journal_migrations_n;
}

static void note_failure(struct journal *j, int rc);

static void unwritten_free(struct unwritten *u)
{
        free(u->error);
        free(u);
}

static int exec(struct journal *j, const char *sql)
{
        char *msg = NULL;
        int rc = sqlite3_exec(j->db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                note_failure(j, sqlite3_extended_errcode(j->db));
                log_error("journal", "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return rc == SQLITE_FULL ? -ENOSPC : -EIO;
        }
        return 0;
}

/* Prepares sql and binds the arguments described by types: 'i' int64,
 * 't' text (NULL allowed), 'l' long.  Returns NULL on failure (logged). */
static sqlite3_stmt *prep(struct journal *j, const char *sql, const char *types, ...)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK) {
                log_error("journal", "preparing '%s': %s", sql, sqlite3_errmsg(j->db));
                return NULL;
        }
        va_list ap;
        va_start(ap, types);
        for (int i = 0; types[i]; i++) {
                if (types[i] == 'i') {
                        sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
                } else if (types[i] == 'l') {
                        sqlite3_bind_int64(st, i + 1, va_arg(ap, long));
                } else {
                        const char *s = va_arg(ap, const char *);
                        if (s)
                                sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT);
                        else
                                sqlite3_bind_null(st, i + 1);
                }
        }
        va_end(ap);
        return st;
}

/* Why a write failed, in the operator's words. */
static void note_failure(struct journal *j, int rc)
{
        int primary = rc & 0xff;
        if (primary == SQLITE_FULL)
                snprintf(j->why, sizeof(j->why), "disk full");
        else if (primary == SQLITE_READONLY)
                snprintf(j->why, sizeof(j->why), "the journal is read-only");
        else if (primary == SQLITE_IOERR)
                snprintf(j->why, sizeof(j->why), "I/O error");
        else
                snprintf(j->why, sizeof(j->why), "%s", sqlite3_errstr(rc));
}

/* Steps a statement that returns no rows and finalizes it. */
static int run(struct journal *j, sqlite3_stmt *st)
{
        if (!st)
                return -EIO;
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                rc = sqlite3_extended_errcode(j->db);
                note_failure(j, rc);
                if (!j->retrying)
                        log_error("journal", "write failed: %s", sqlite3_errmsg(j->db));
                return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
        }
        return 0;
}

/* Runs a write that is not a state transition (events, progress, outputs)
 * without its own fsync: in WAL mode the next transition's FULL commit makes
 * it durable together with everything before it, and an application crash
 * (kill -9) loses nothing either way. */
static int run_light(struct journal *j, sqlite3_stmt *st)
{
        sqlite3_exec(j->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        int r = run(j, st);
        sqlite3_exec(j->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
        return r;
}

static int migrate(struct journal *j, char *err, size_t errlen)
{
        sqlite3_stmt *st = prep(j, "PRAGMA user_version", "");
        if (!st || sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_finalize(st);
                snprintf(err, errlen, "cannot read the journal's schema version");
                return -EIO;
        }
        int version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        int latest = journal_schema_version();
        if (version > latest) {
                snprintf(err, errlen,
                         "the journal has schema version %d but this etld knows only up to %d; "
                         "run a newer etld or move the state directory away",
                         version, latest);
                return -EPROTO;
        }
        for (int v = version; v < latest; v++) {
                char set[64];
                snprintf(set, sizeof(set), "PRAGMA user_version = %d", v + 1);
                int r = exec(j, "BEGIN IMMEDIATE");
                r = r ? r : exec(j, journal_migrations[v]);
                r = r ? r : exec(j, set);
                if (r < 0) {
                        exec(j, "ROLLBACK");
                        snprintf(err, errlen, "migrating the journal to version %d failed", v + 1);
                        return r;
                }
                r = exec(j, "COMMIT");
                if (r < 0) {
                        snprintf(err, errlen, "committing journal version %d failed", v + 1);
                        return r;
                }
                log_info("journal", "migrated journal to schema version %d", v + 1);
        }
        return 0;
}

#define WHAT_TO_DO                                                                                 \
        "restore it from a backup ('etlctl backup FILE' makes one while etld runs), or move "      \
        "it away and start etld with --new-journal for an empty job list"

/* The marker that says this state directory had a journal: written once the
 * journal is first opened, so a journal that is later missing or empty (a
 * bad restore, a truncating copy, a disk problem) is noticed instead of
 * silently replaced by an empty one. */
static char *marker_path(const char *path)
{
        struct buf b = {0};
        buf_printf(&b, "%s.created", path);
        return b.data;
}

static void write_marker(const char *marker)
{
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0) {
                if (errno != EEXIST)
                        log_warning("journal",
                                    "cannot write '%s': %s (a lost journal will not "
                                    "be noticed at the next start)",
                                    marker, strerror(errno));
                return;
        }
        char when[64], line[160];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        int n = snprintf(line, sizeof(line),
                         "etld: this state directory has a journal since %s; etld refuses to "
                         "start on a missing or empty one without --new-journal\n",
                         when);
        if (write(fd, line, (size_t)n) != n)
                log_warning("journal", "cannot write '%s': %s", marker, strerror(errno));
        close(fd);
}

static uint32_t be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What the file at path is before SQLite looks at it: missing or empty
 * where a journal existed, not a SQLite file, or shorter than its header
 * says.  0 when it may be opened. */
static int check_file(const char *path, int flags, char *err, size_t errlen)
{
        char *marker = marker_path(path);
        if (!marker)
                return -ENOMEM;
        struct stat ms, st;
        bool had = stat(marker, &ms) == 0;
        free(marker);
        if (stat(path, &st) < 0) {
                if (errno != ENOENT) {
                        snprintf(err, errlen, "journal '%s' cannot be reached: %s", path,
                                 strerror(errno));
                        return -errno;
                }
                if (had && !(flags & JOURNAL_OPEN_NEW)) {
                        snprintf(err, errlen,
                                 "journal '%s' is missing, but this state directory had one "
                                 "(see '%s.created'): " WHAT_TO_DO,
                                 path, path);
                        return -ENOENT;
                }
                return 0;
        }
        if (st.st_size == 0) {
                if (had && !(flags & JOURNAL_OPEN_NEW)) {
                        snprintf(err, errlen,
                                 "journal '%s' is empty (0 bytes), but this state directory had "
                                 "a journal (see '%s.created'): it was lost; " WHAT_TO_DO,
                                 path, path);
                        return -ENODATA;
                }
                return 0;
        }
        unsigned char h[100];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                snprintf(err, errlen, "journal '%s' cannot be read: %s", path, strerror(errno));
                return -errno;
        }
        ssize_t n = read(fd, h, sizeof(h));
        close(fd);
        if (n < (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
                snprintf(err, errlen,
                         "journal '%s' is not a SQLite database (%lld bytes that do not start "
                         "with SQLite's header): another file took its place; " WHAT_TO_DO,
                         path, (long long)st.st_size);
                return -EINVAL;
        }
        /* the page size, and the page count when the header says it is valid
         * (its "version-valid-for" equals the change counter) */
        uint32_t page = (uint32_t)h[16] << 8 | h[17];
        if (page == 1)
                page = 65536;
        uint32_t pages = be32(h + 28);
        bool count_valid = pages > 0 && be32(h + 92) == be32(h + 24);
        bool short_file = (uint64_t)st.st_size % page != 0 ||
                          (count_valid && (uint64_t)st.st_size < (uint64_t)pages * page);
        /* A WAL beside it holds pages still to be copied in (etld stopped
         * mid-checkpoint, page 1 first): SQLite replays it, and quick_check
         * judges the result; the sizes only mean something without one. */
        char *wal = NULL;
        struct stat ws;
        struct buf wb = {0};
        if (buf_printf(&wb, "%s-wal", path) == 0)
                wal = wb.data;
        bool has_wal = wal && stat(wal, &ws) == 0 && ws.st_size > 0;
        free(wal);
        if (page >= 512 && short_file && !has_wal) {
                snprintf(err, errlen,
                         "journal '%s' is truncated: %lld bytes, where its header says %u pages "
                         "of %u bytes; " WHAT_TO_DO
                         " (what is left can be read with: sqlite3 '%s' .recover)",
                         path, (long long)st.st_size, pages, page, path);
                return -EBADMSG;
        }
        return 0;
}

/* Says what an SQLite failure at open means for the operator. */
static int open_failure(struct journal *j, const char *path, int rc, char *err, size_t errlen)
{
        const char *msg = j->db ? sqlite3_errmsg(j->db) : sqlite3_errstr(rc);
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                snprintf(err, errlen,
                         "journal '%s' is locked: another etld uses this state directory; "
                         "stop it first, or give this one another --state-dir",
                         path);
                return -EBUSY;
        case SQLITE_READONLY:
        case SQLITE_PERM:
                snprintf(err, errlen,
                         "journal '%s' is read-only (%s): etld writes every state change there; "
                         "give etld's user write access to the file and its directory, or "
                         "remount the file system read-write",
                         path, msg);
                return -EROFS;
        case SQLITE_NOTADB:
                snprintf(err, errlen, "journal '%s' is not a SQLite database (%s); " WHAT_TO_DO,
                         path, msg);
                return -EINVAL;
        case SQLITE_CORRUPT:
                snprintf(err, errlen,
                         "journal '%s' is corrupt (%s); " WHAT_TO_DO
                         " (what is left can be read with: sqlite3 '%s' .recover)",
                         path, msg, path);
                return -EBADMSG;
        case SQLITE_FULL:
                snprintf(err, errlen,
                         "journal '%s' cannot be opened: the disk is full; free space on its "
                         "file system and start etld again",
                         path);
                return -ENOSPC;
        default:
                snprintf(err, errlen, "journal '%s' cannot be opened: %s", path, msg);
                return -EIO;
        }
}

/* PRAGMA quick_check: "ok", or the first problem it reports. */
static int quick_check(struct journal *j, const char *path, char *err, size_t errlen)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(j->db, "PRAGMA quick_check(1)", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                sqlite3_finalize(st);
                return open_failure(j, path, sqlite3_extended_errcode(j->db), err, errlen);
        }
        const char *res = (const char *)sqlite3_column_text(st, 0);
        int r = 0;
        if (!res || strcmp(res, "ok") != 0) {
                snprintf(err, errlen,
                         "journal '%s' is corrupt (PRAGMA quick_check: %.200s); " WHAT_TO_DO
                         " (what is left can be read with: sqlite3 '%s' .recover)",
                         path, res ? res : "no answer", path);
                util_utf8_trim(err);
                r = -EBADMSG;
        }
        sqlite3_finalize(st);
        return r;
}

/* One etld per state directory: an flock() on PATH.lock, held until
 * journal_close (and by the kernel until the process is gone, so a kill -9
 * leaves no stale lock).  The file holds the owner's pid, for the message a
 * second etld gets.  The database itself is opened in SQLite's normal
 * locking mode, so `sqlite3 -readonly journal.db` works while etld runs. */
static int take_lock(struct journal *j, const char *path, char *err, size_t errlen)
{
        char lpath[4096];
        if ((size_t)snprintf(lpath, sizeof(lpath), "%s.lock", path) >= sizeof(lpath))
                return -ENAMETOOLONG;
        int fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen,
                         "journal '%s' cannot be used: its lock file '%s' cannot be opened (%s); "
                         "give etld's user write access to the state directory%s",
                         path, lpath, strerror(e),
                         e == EROFS ? ", or remount the file system read-write" : "");
                return e == EROFS ? -EROFS : -e;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                char pid[32] = "";
                ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
                close(fd);
                if (e != EWOULDBLOCK) {
                        snprintf(err, errlen, "journal '%s': cannot lock '%s': %s", path, lpath,
                                 strerror(e));
                        return -e;
                }
                snprintf(err, errlen,
                         "journal '%s' is locked: another etld%s%s%s uses this state directory; "
                         "stop it first, or give this one another --state-dir",
                         path, *pid ? " (pid " : "", pid, *pid ? ")" : "");
                return -EBUSY;
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
                log_warning("journal", "cannot write the pid into '%s': %s", lpath,
                            strerror(errno));
        j->lock_fd = fd;
        return 0;
}

int journal_open(const char *path, int flags, struct journal **ret, char *err, size_t errlen)
{
        int r = check_file(path, flags, err, errlen);
        if (r < 0)
                return r;
        struct journal *j = calloc(1, sizeof(*j));
        if (!j || !(j->path = strdup(path))) {
                free(j);
                return -ENOMEM;
        }
        j->lock_fd = -1;
        j->unwritten_tail = &j->unwritten;
        r = take_lock(j, path, err, errlen);
        if (r < 0) {
                journal_close(j);
                return r;
        }
        int rc = sqlite3_open_v2(path, &j->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 NULL);
        if (rc == SQLITE_OK && sqlite3_db_readonly(j->db, "main") == 1)
                rc = SQLITE_READONLY; /* SQLite fell back to reading only */
        /* A reader (sqlite3 -readonly, etlctl backup) may hold the database
         * for a moment: wait for it that long at most rather than fail a write. */
        if (rc == SQLITE_OK)
                rc = sqlite3_busy_timeout(j->db, 250);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(j->db,
                                  "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                                  "PRAGMA foreign_keys = ON; BEGIN IMMEDIATE; COMMIT;",
                                  NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                int ext = j->db ? sqlite3_extended_errcode(j->db) : rc;
                r = open_failure(j, path, (ext & 0xff) == (rc & 0xff) ? ext : rc, err, errlen);
                journal_close(j);
                return r;
        }
        r = quick_check(j, path, err, errlen);
        if (r < 0) {
                journal_close(j);
                return r;
        }
        sqlite3_stmt *st = prep(j, "PRAGMA application_id", "");
        int app = 0;
        if (st && sqlite3_step(st) == SQLITE_ROW)
                app = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (app != 0 && app != JOURNAL_APPLICATION_ID) {
                snprintf(err, errlen, "'%s' is a SQLite file of another program, not a journal",
                         path);
                journal_close(j);
                return -EINVAL;
        }
        if (app == 0) {
                char set[64];
                snprintf(set, sizeof(set), "PRAGMA application_id = %d", JOURNAL_APPLICATION_ID);
                exec(j, set);
        }
        r = migrate(j, err, errlen);
        if (r < 0) {
                journal_close(j);
                return r;
        }
        char *marker = marker_path(path);
        if (marker)
                write_marker(marker);
        free(marker);
        *ret = j;
        return 0;
}

struct journal *journal_close(struct journal *j)
{
        if (!j)
                return NULL;
        if (j->db) {
                if (!sqlite3_get_autocommit(j->db)) {
                        log_warning("journal", "rolling back a transaction left open at close");
                        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
                }
                if (j->unwritten && journal_retry(j) < 0)
                        log_error("journal",
                                  "%zu final state(s) could not be written to '%s' (%s): the "
                                  "jobs concerned show their last written state at the next "
                                  "start and run again",
                                  j->n_unwritten, j->path, j->why);
                sqlite3_exec(j->db, "PRAGMA optimize", NULL, NULL, NULL);
                sqlite3_close(j->db);
        }
        while (j->unwritten) {
                struct unwritten *u = j->unwritten;
                j->unwritten = u->next;
                unwritten_free(u);
        }
        if (j->lock_fd >= 0)
                close(j->lock_fd); /* after the database: releases the state directory */
        free(j->path);
        free(j);
        return NULL;
}

int journal_job_add(struct journal *j, const struct journal_new_job *nj, int64_t *ret_id)
{
        int r = exec(j, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        sqlite3_stmt *st = prep(j,
                                "INSERT INTO jobs (pipeline, state, config, job_key, uid, "
                                "created_at, not_before, retry_of, admin) VALUES (?1, 'queued', "
                                "?2, ?3, ?4, ?5, NULLIF(?6, 0), NULLIF(?7, 0), ?8)",
                                "tttlii" "ii", nj->pipeline, nj->config, nj->key, nj->uid,
                                (int64_t)util_now_ms(), nj->not_before > 0 ? nj->not_before : 0,
                                nj->retry_of > 0 ? nj->retry_of : 0, (int64_t)nj->admin);
        int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
        sqlite3_finalize(st);
        if (rc == SQLITE_CONSTRAINT) {
                /* jobs_key_live or jobs_retry_of (sql/journal/0005-retry.sql) */
                exec(j, "ROLLBACK");
                return -EEXIST;
        }
        if (rc != SQLITE_DONE) {
                if (st)
                        log_error("journal", "adding a job failed: %s", sqlite3_errmsg(j->db));
                exec(j, "ROLLBACK");
                return rc == SQLITE_FULL ? -ENOSPC : -EIO;
        }
        int64_t id = sqlite3_last_insert_rowid(j->db);
        for (size_t i = 0; r == 0 && i < nj->nsteps; i++)
                r = run(j, prep(j,
                                "INSERT INTO steps (job_id, idx, name, state) "
                                "VALUES (?1, ?2, ?3, 'pending')",
                                "iit", id, (int64_t)i, nj->steps[i]));
        if (r < 0) {
                exec(j, "ROLLBACK");
                return r;
        }
        r = exec(j, "COMMIT");
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int journal_key_latest(struct journal *j, const char *key, int64_t *ret_id)
{
        sqlite3_stmt *st = prep(j,
                                "SELECT id FROM jobs WHERE job_key = ?1 ORDER BY id DESC LIMIT 1",
                                "t", key);
        if (!st)
                return -EIO;
        int r = -ENOENT;
        if (sqlite3_step(st) == SQLITE_ROW) {
                *ret_id = sqlite3_column_int64(st, 0);
                r = 0;
        }
        sqlite3_finalize(st);
        return r;
}

static int job_state_write(struct journal *j, int64_t id, enum job_state s, const char *error,
                           int64_t now)
{
        if (s == JOB_RUNNING)
                return run(j, prep(j,
                                   "UPDATE jobs SET state = 'running', "
                                   "started_at = COALESCE(started_at, ?2) WHERE id = ?1",
                                   "ii", id, now));
        if (job_state_is_final(s))
                return run(j, prep(j,
                                   "UPDATE jobs SET state = ?2, finished_at = ?3, error = ?4 "
                                   "WHERE id = ?1",
                                   "itit", id, job_state_name(s), now,
                                   s == JOB_SUCCEEDED ? NULL : error));
        return run(j, prep(j, "UPDATE jobs SET state = ?2 WHERE id = ?1", "it", id,
                           job_state_name(s)));
}

static int step_state_write(struct journal *j, int64_t job, int idx, enum step_state s,
                            const char *error, int64_t now)
{
        if (s == STEP_RUNNING)
                return run(j, prep(j,
                                   "UPDATE steps SET state = 'running', attempts = attempts + 1, "
                                   "started_at = ?3, finished_at = NULL, error = NULL "
                                   "WHERE job_id = ?1 AND idx = ?2",
                                   "iii", job, (int64_t)idx, now));
        if (s == STEP_PENDING)
                return run(j, prep(j,
                                   "UPDATE steps SET state = 'pending', error = ?3 "
                                   "WHERE job_id = ?1 AND idx = ?2",
                                   "iit", job, (int64_t)idx, error));
        if (idx == UNWRITTEN_ALL_STEPS)
                return run(j, prep(j,
                                   "UPDATE steps SET state = ?2, finished_at = ?3 "
                                   "WHERE job_id = ?1 AND state IN ('pending', 'running')",
                                   "iti", job, step_state_name(s), now));
        return run(j, prep(j,
                           "UPDATE steps SET state = ?3, finished_at = ?4, error = ?5 "
                           "WHERE job_id = ?1 AND idx = ?2",
                           "iitit", job, (int64_t)idx, step_state_name(s), now, error));
}

static int unwritten_write(struct journal *j, const struct unwritten *u)
{
        if (u->idx == UNWRITTEN_JOB)
                return job_state_write(j, u->job, (enum job_state)u->state, u->error, u->at);
        return step_state_write(j, u->job, u->idx, (enum step_state)u->state, u->error, u->at);
}

/* Writes a final transition, or keeps it when the journal refuses it (or
 * holds older unwritten ones, which go first). */
static int final_write(struct journal *j, int64_t job, int idx, int state, const char *error)
{
        struct unwritten u = {
            .job = job, .idx = idx, .state = state, .at = util_now_ms(), .error = (char *)error};
        if (!j->unwritten) {
                int r = unwritten_write(j, &u);
                if (r == 0)
                        return 0;
        }
        struct unwritten *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        *k = u;
        k->error = error ? strdup(error) : NULL;
        if (!j->unwritten_tail)
                j->unwritten_tail = &j->unwritten;
        *j->unwritten_tail = k;
        j->unwritten_tail = &k->next;
        j->n_unwritten++;
        if (idx == UNWRITTEN_JOB)
                log_error("journal",
                          "job=%lld: final state %s not yet written to '%s': %s; etld keeps it "
                          "and writes it as soon as the journal takes writes again",
                          (long long)job, job_state_name((enum job_state)state), j->path, j->why);
        return j->why[0] && strcmp(j->why, "disk full") == 0 ? -ENOSPC : -EIO;
}

int journal_retry(struct journal *j)
{
        size_t done = 0;
        while (j->unwritten) {
                struct unwritten *u = j->unwritten;
                j->retrying = true;
                int r = unwritten_write(j, u);
                j->retrying = false;
                if (r < 0)
                        break;
                j->unwritten = u->next;
                if (!j->unwritten)
                        j->unwritten_tail = &j->unwritten;
                j->n_unwritten--;
                unwritten_free(u);
                done++;
        }
        if (done)
                log_info("journal",
                         "wrote %zu transition(s) kept while the journal refused "
                         "writes; %zu left",
                         done, j->n_unwritten);
        return j->unwritten ? -EAGAIN : 0;
}

size_t journal_unwritten(const struct journal *j)
{
        return j->n_unwritten;
}

int journal_job_set_state(struct journal *j, int64_t id, enum job_state s, const char *error)
{
        if (job_state_is_final(s))
                return final_write(j, id, UNWRITTEN_JOB, (int)s, error);
        return job_state_write(j, id, s, error, util_now_ms());
}

int journal_job_set_cancel_uid(struct journal *j, int64_t id, long uid)
{
        return run(j, prep(j, "UPDATE jobs SET cancel_uid = ?2 WHERE id = ?1", "il", id, uid));
}

int journal_step_set_state(struct journal *j, int64_t job, int idx, enum step_state s,
                           const char *error)
{
        if (s == STEP_DONE || s == STEP_FAILED || s == STEP_CANCELLED)
                return final_write(j, job, idx, (int)s, error);
        return step_state_write(j, job, idx, s, error, util_now_ms());
}

int journal_steps_finish(struct journal *j, int64_t job, enum step_state s)
{
        return final_write(j, job, UNWRITTEN_ALL_STEPS, (int)s, NULL);
}

int journal_step_progress(struct journal *j, int64_t job, int idx, const char *json)
{
        return run_light(j, prep(j, "UPDATE steps SET progress = ?3 WHERE job_id = ?1 AND idx = ?2",
                           "iit", job, (int64_t)idx, json));
}

int journal_output_set(struct journal *j, int64_t job, const char *step, const char *key,
                       const char *value)
{
        return run(j, prep(j,
                           "INSERT INTO outputs (job_id, step, key, value) VALUES (?1, ?2, ?3, ?4) "
                           "ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value",
                           "itt" "t", job, step, key, value));
}

char *journal_output_get(struct journal *j, int64_t job, const char *key)
{
        sqlite3_stmt *st =
                prep(j, "SELECT value FROM outputs WHERE job_id = ?1 AND key = ?2", "it", job, key);
        char *v = NULL;
        if (st && sqlite3_step(st) == SQLITE_ROW)
                v = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return v;
}

char *journal_output_latest(struct journal *j, const char *pipeline, const char *key,
                            int64_t *ret_job)
{
        sqlite3_stmt *st = prep(j,
                                "SELECT o.value, o.job_id FROM outputs o JOIN jobs ON jobs.id = o.job_id "
                                "WHERE o.key = ?1 AND (?2 IS NULL OR jobs.pipeline = ?2) "
                                "ORDER BY o.job_id DESC LIMIT 1",
                                "tt", key, pipeline);
        char *v = NULL;
        if (st && sqlite3_step(st) == SQLITE_ROW) {
                v = strdup((const char *)sqlite3_column_text(st, 0));
                if (ret_job)
                        *ret_job = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        return v;
}

char *journal_output_latest_for(struct journal *j, const char *name_key, const char *name,
                                const char *key, int64_t *ret_job)
{
        sqlite3_stmt *st = prep(j,
                                "SELECT o.value, o.job_id FROM outputs o JOIN outputs n "
                                "ON n.job_id = o.job_id AND n.key = ?1 AND n.value = ?2 "
                                "WHERE o.key = ?3 ORDER BY o.job_id DESC LIMIT 1",
                                "ttt", name_key, name, key);
        char *v = NULL;
        if (ret_job)
                *ret_job = 0;
        if (st && sqlite3_step(st) == SQLITE_ROW) {
                v = strdup((const char *)sqlite3_column_text(st, 0));
                if (ret_job)
                        *ret_job = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        return v;
}

int journal_ledger_publish(struct journal *j, const char *target, int64_t job, const char *mode,
                           const struct objlist *objects)
{
        int r = exec(j, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        if (strcmp(mode, "full") == 0)
                r = run(j, prep(j, "DELETE FROM ledger WHERE target = ?1", "t", target));
        for (size_t i = 0; r == 0 && i < objects->n; i++) {
                const struct objlist_item *o = &objects->v[i];
                r = run(j, prep(j,
                                "INSERT OR REPLACE INTO ledger (target, source, uri, size, tag, "
                                "job_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                "ttti" "ti", target, o->source, o->uri, o->size, o->tag, job));
        }
        if (r == 0)
                r = run(j, prep(j,
                                "INSERT OR REPLACE INTO publications (target, job_id, mode, "
                                "objects, published_at) VALUES (?1, ?2, ?3, "
                                "(SELECT COUNT(*) FROM ledger WHERE target = ?1), ?4)",
                                "tit" "i", target, job, mode, (int64_t)util_now_ms()));
        if (r < 0) {
                exec(j, "ROLLBACK");
                return r;
        }
        return exec(j, "COMMIT");
}

int journal_ledger_get(struct journal *j, const char *target, struct objlist *out,
                       int64_t *ret_job)
{
        *ret_job = 0;
        objlist_free(out);
        sqlite3_stmt *st = prep(j, "SELECT job_id FROM publications WHERE target = ?1", "t",
                                target);
        if (st && sqlite3_step(st) == SQLITE_ROW)
                *ret_job = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = prep(j,
                  "SELECT uri, source, size, tag, job_id FROM ledger WHERE target = ?1 "
                  "ORDER BY uri",
                  "t", target);
        if (!st)
                return -EIO;
        int r = 0, rc;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
                r = objlist_add(out, (const char *)sqlite3_column_text(st, 1),
                                (const char *)sqlite3_column_text(st, 0),
                                sqlite3_column_int64(st, 2),
                                (const char *)sqlite3_column_text(st, 3),
                                sqlite3_column_int64(st, 4));
        if (r == 0 && rc != SQLITE_DONE)
                r = -EIO;
        sqlite3_finalize(st);
        if (r < 0)
                objlist_free(out);
        return r;
}

static json_t *time_json(sqlite3_stmt *st, int col);
static json_t *str_json(sqlite3_stmt *st, int col);

json_t *journal_publications_json(struct journal *j)
{
        json_t *out = json_array();
        sqlite3_stmt *st = prep(j,
                                "SELECT target, job_id, mode, objects, published_at "
                                "FROM publications ORDER BY target",
                                "");
        while (st && out && sqlite3_step(st) == SQLITE_ROW)
                json_array_append_new(
                    out, json_pack("{s:o, s:I, s:o, s:I, s:o}", "target", str_json(st, 0), "job",
                                   (json_int_t)sqlite3_column_int64(st, 1), "mode", str_json(st, 2),
                                   "objects", (json_int_t)sqlite3_column_int64(st, 3),
                                   "published_at", time_json(st, 4)));
        sqlite3_finalize(st);
        return out;
}

int journal_checks_replace(struct journal *j, int64_t job, json_t *checks)
{
        int r = exec(j, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = run(j, prep(j, "DELETE FROM checks WHERE job_id = ?1", "i", job));
        size_t i;
        json_t *c;
        json_array_foreach(checks, i, c)
        {
                if (r < 0)
                        break;
                r = run(j, prep(j,
                                "INSERT INTO checks (job_id, seq, name, ok, detail) "
                                "VALUES (?1, ?2, ?3, ?4, ?5)",
                                "iitit", job, (int64_t)i,
                                json_string_value(json_object_get(c, "name")),
                                (int64_t)json_is_true(json_object_get(c, "ok")),
                                json_string_value(json_object_get(c, "detail"))));
        }
        if (r < 0) {
                exec(j, "ROLLBACK");
                return r;
        }
        return exec(j, "COMMIT");
}

int journal_event_add(struct journal *j, int64_t job, const char *level, const char *step,
                      const char *message)
{
        int r = run_light(j, prep(j,
                            "INSERT INTO events (job_id, at, level, step, message) "
                            "VALUES (?1, ?2, ?3, ?4, ?5)",
                            "iitt" "t", job, (int64_t)util_now_ms(), level, step, message));
        if (r < 0)
                return r;
        /* Keep the event log bounded: the newest events of each job. */
        return run_light(j, prep(j,
                           "DELETE FROM events WHERE job_id = ?1 AND id <= "
                           "(SELECT id FROM events WHERE job_id = ?1 ORDER BY id DESC "
                           "LIMIT 1 OFFSET ?2)",
                           "ii", job, (int64_t)JOURNAL_EVENTS_PER_JOB));
}

static const char *obj_str(json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "";
}

int journal_load_errors_add(struct journal *j, int64_t job, const char *step, json_t *errors)
{
        int r = exec(j, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
                sqlite3_stmt *st = prep(
                        j,
                        "INSERT INTO load_errors (job_id, step, filename, line_number, colname, "
                        "type, position, raw_line, raw_field_value, err_code, err_reason) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        "ittitti" "ttit", job, step, obj_str(e, "filename"),
                        (int64_t)json_integer_value(json_object_get(e, "line_number")),
                        obj_str(e, "colname"), obj_str(e, "type"),
                        (int64_t)json_integer_value(json_object_get(e, "position")),
                        obj_str(e, "raw_line"), obj_str(e, "raw_field_value"),
                        (int64_t)json_integer_value(json_object_get(e, "err_code")),
                        obj_str(e, "err_reason"));
                r = run(j, st);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                exec(j, "ROLLBACK");
                return r;
        }
        return exec(j, "COMMIT");
}

void journal_job_clear(struct journal_job *jj)
{
        free(jj->pipeline);
        free(jj->config);
        free(jj->key);
        memset(jj, 0, sizeof(*jj));
}

int journal_job_get(struct journal *j, int64_t id, struct journal_job *ret)
{
        sqlite3_stmt *st = prep(j,
                                "SELECT pipeline, config, state, "
                                "(SELECT MIN(idx) FROM steps WHERE job_id = ?1 AND state <> 'done'), "
                                "uid, not_before, job_key, retry_of, "
                                "(SELECT id FROM jobs WHERE retry_of = ?1), admin "
                                "FROM jobs WHERE id = ?1",
                                "i", id);
        if (!st)
                return -EIO;
        if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_finalize(st);
                return -ENOENT;
        }
        memset(ret, 0, sizeof(*ret));
        ret->id = id;
        ret->pipeline = strdup((const char *)sqlite3_column_text(st, 0));
        ret->config = strdup((const char *)sqlite3_column_text(st, 1));
        ret->state = (enum job_state)job_state_from_name((const char *)sqlite3_column_text(st, 2));
        ret->first_unfinished =
                sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 3);
        ret->uid = (long)sqlite3_column_int64(st, 4);
        ret->not_before = sqlite3_column_int64(st, 5); /* NULL reads as 0 */
        if (sqlite3_column_type(st, 6) != SQLITE_NULL)
                ret->key = strdup((const char *)sqlite3_column_text(st, 6));
        ret->retry_of = sqlite3_column_int64(st, 7);
        ret->retried_by = sqlite3_column_int64(st, 8);
        ret->admin = sqlite3_column_int(st, 9) != 0;
        bool key_lost = sqlite3_column_type(st, 6) != SQLITE_NULL && !ret->key;
        sqlite3_finalize(st);
        if (!ret->pipeline || !ret->config || key_lost) {
                journal_job_clear(ret);
                return -ENOMEM;
        }
        return 0;
}

int journal_jobs_in_state(struct journal *j, enum job_state s, int64_t **ret, size_t *ret_n)
{
        sqlite3_stmt *st =
                prep(j, "SELECT id FROM jobs WHERE state = ?1 ORDER BY id", "t", job_state_name(s));
        if (!st)
                return -EIO;
        int64_t *ids = NULL;
        size_t n = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
                int64_t *p = realloc(ids, (n + 1) * sizeof(*p));
                if (!p) {
                        free(ids);
                        sqlite3_finalize(st);
                        return -ENOMEM;
                }
                ids = p;
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        *ret = ids;
        *ret_n = n;
        return 0;
}

/* Times go out as ISO 8601 UTC with milliseconds, or null. */
static json_t *ms_json(int64_t ms)
{
        char out[40];
        util_iso_ms(ms, out, sizeof(out));
        return json_string(out);
}

static json_t *time_json(sqlite3_stmt *st, int col)
{
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
                return json_null();
        return ms_json(sqlite3_column_int64(st, col));
}

/* Shows the job (and, with steps, its steps) as its unwritten final
 * transitions left it, with a note saying they are not written yet. */
static void overlay_unwritten(struct journal *j, int64_t id, json_t *job, json_t *steps)
{
        for (const struct unwritten *u = j->unwritten; u; u = u->next) {
                if (u->job != id)
                        continue;
                if (u->idx == UNWRITTEN_JOB) {
                        json_object_set_new(job, "state",
                                            json_string(job_state_name((enum job_state)u->state)));
                        json_object_set_new(job, "finished_at", ms_json(u->at));
                        json_object_set_new(job, "error", proto_json_text(u->error));
                        char note[256];
                        snprintf(note, sizeof(note),
                                 "final state not yet written: %s; etld writes it as soon as "
                                 "the journal takes writes again",
                                 j->why);
                        json_object_set_new(job, "unwritten", json_string(note));
                        continue;
                }
                size_t i;
                json_t *s;
                json_array_foreach(steps, i, s)
                {
                        const char *st = json_string_value(json_object_get(s, "state"));
                        bool open = st && (!strcmp(st, "pending") || !strcmp(st, "running"));
                        if ((u->idx == UNWRITTEN_ALL_STEPS && !open) ||
                            (u->idx >= 0 && (size_t)u->idx != i))
                                continue;
                        json_object_set_new(
                            s, "state", json_string(step_state_name((enum step_state)u->state)));
                        json_object_set_new(s, "finished_at", ms_json(u->at));
                        if (u->idx >= 0)
                                json_object_set_new(s, "error", proto_json_text(u->error));
                }
        }
}

/* Every text column leaves the journal through here: a byte of a source
 * file that is not UTF-8 (in a load error, a step's error, an event) becomes
 * U+FFFD instead of making the reply impossible to build, which would hide
 * the job from list, status and errors. */
static json_t *text_json(sqlite3_stmt *st, int col)
{
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
                return json_null();
        const char *s = (const char *)sqlite3_column_text(st, col);
        return proto_json_textn(s ? s : "", (size_t)sqlite3_column_bytes(st, col));
}

/* A text column that is never NULL in the schema ("" if it were). */
static json_t *str_json(sqlite3_stmt *st, int col)
{
        json_t *v = text_json(st, col);
        if (json_is_null(v)) {
                json_decref(v);
                return json_string("");
        }
        return v;
}

/* The columns every job reply has, in this order (see JOB_COLUMNS). */
#define JOB_COLUMNS                                                                                \
        "id, pipeline, state, created_at, started_at, finished_at, error, not_before, retry_of"

/* An integer column as a JSON integer, or null. */
static json_t *int_json(sqlite3_stmt *st, int col)
{
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
                return json_null();
        return json_integer(sqlite3_column_int64(st, col));
}

static json_t *job_row_json(sqlite3_stmt *st)
{
        return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                         (json_int_t)sqlite3_column_int64(st, 0), "pipeline", str_json(st, 1),
                         "state", str_json(st, 2), "created_at", time_json(st, 3), "started_at",
                         time_json(st, 4), "finished_at", time_json(st, 5), "error",
                         text_json(st, 6), "not_before", time_json(st, 7), "retry_of",
                         int_json(st, 8));
}

json_t *journal_job_json(struct journal *j, int64_t id)
{
        sqlite3_stmt *st = prep(j,
                                "SELECT " JOB_COLUMNS ", uid, job_key, config, cancel_uid, "
                                "(SELECT id FROM jobs WHERE retry_of = ?1), admin "
                                "FROM jobs WHERE id = ?1",
                                "i", id);
        if (!st)
                return NULL;
        if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_finalize(st);
                return NULL;
        }
        json_t *job = job_row_json(st);
        json_object_set_new(job, "uid", json_integer(sqlite3_column_int64(st, 9)));
        json_object_set_new(job, "key", text_json(st, 10));
        json_t *config = json_loads((const char *)sqlite3_column_text(st, 11), 0, NULL);
        json_object_set_new(job, "config", config ? config : json_object());
        json_object_set_new(job, "cancel_uid", int_json(st, 12));
        json_object_set_new(job, "retried_by", int_json(st, 13));
        json_object_set_new(job, "admin", json_boolean(sqlite3_column_int(st, 14)));
        sqlite3_finalize(st);

        json_t *steps = json_array();
        st = prep(j,
                  "SELECT name, state, attempts, started_at, finished_at, error, progress "
                  "FROM steps WHERE job_id = ?1 ORDER BY idx",
                  "i", id);
        while (st && sqlite3_step(st) == SQLITE_ROW) {
                json_t *progress = NULL;
                if (sqlite3_column_type(st, 6) != SQLITE_NULL)
                        progress = json_loads((const char *)sqlite3_column_text(st, 6), 0, NULL);
                json_t *step = json_pack(
                    "{s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o}", "name", str_json(st, 0), "state",
                    str_json(st, 1), "attempts", sqlite3_column_int(st, 2), "started_at",
                    time_json(st, 3), "finished_at", time_json(st, 4), "error", text_json(st, 5),
                    "progress", progress ? progress : json_object(), "outputs", json_object());
                json_array_append_new(steps, step);
        }
        sqlite3_finalize(st);
        st = prep(j, "SELECT step, key, value FROM outputs WHERE job_id = ?1 ORDER BY key", "i",
                  id);
        while (st && sqlite3_step(st) == SQLITE_ROW) {
                const char *step = (const char *)sqlite3_column_text(st, 0);
                size_t i;
                json_t *s;
                json_array_foreach(steps, i, s)
                {
                        if (strcmp(json_string_value(json_object_get(s, "name")), step) == 0)
                                json_object_set_new(json_object_get(s, "outputs"),
                                                    (const char *)sqlite3_column_text(st, 1),
                                                    str_json(st, 2));
                }
        }
        sqlite3_finalize(st);
        overlay_unwritten(j, id, job, steps);
        json_object_set_new(job, "steps", steps);

        json_t *checks = json_array();
        st = prep(j, "SELECT name, ok, detail FROM checks WHERE job_id = ?1 ORDER BY seq", "i",
                  id);
        while (st && sqlite3_step(st) == SQLITE_ROW)
                json_array_append_new(checks, json_pack("{s:o, s:b, s:o}", "name", str_json(st, 0),
                                                        "ok", sqlite3_column_int(st, 1), "detail",
                                                        str_json(st, 2)));
        sqlite3_finalize(st);
        json_object_set_new(job, "checks", checks);

        json_t *events = json_array();
        st = prep(j,
                  "SELECT at, level, step, message FROM (SELECT * FROM events WHERE job_id = ?1 "
                  "ORDER BY id DESC LIMIT 20) ORDER BY id",
                  "i", id);
        while (st && sqlite3_step(st) == SQLITE_ROW)
                json_array_append_new(events,
                                      json_pack("{s:o, s:o, s:o, s:o}", "at", time_json(st, 0),
                                                "level", str_json(st, 1), "step", text_json(st, 2),
                                                "message", str_json(st, 3)));
        sqlite3_finalize(st);
        json_object_set_new(job, "events", events);
        st = prep(j, "SELECT COUNT(*) FROM load_errors WHERE job_id = ?1", "i", id);
        if (st && sqlite3_step(st) == SQLITE_ROW)
                json_object_set_new(job, "load_errors", json_integer(sqlite3_column_int64(st, 0)));
        sqlite3_finalize(st);
        return job;
}

json_t *journal_list_json(struct journal *j, const struct journal_list_filter *f)
{
        json_t *jobs = json_array();
        /* A NULL parameter matches every job. */
        sqlite3_stmt *st =
                prep(j,
                     "SELECT " JOB_COLUMNS ", job_key FROM jobs "
                     "WHERE (?1 IS NULL OR pipeline = ?1) AND (?2 IS NULL OR state = ?2) "
                     "AND (?3 IS NULL OR job_key = ?3) AND created_at >= ?4 "
                     "ORDER BY id DESC LIMIT ?5",
                     "sssii", f->pipeline, f->state, f->key, f->since_ms,
                     (int64_t)(f->limit > 0 ? f->limit : 50));
        int64_t now = util_now_ms();
        while (st && sqlite3_step(st) == SQLITE_ROW) {
                json_t *job = job_row_json(st);
                json_object_set_new(job, "key", text_json(st, 9));
                /* seconds from start to end, or until now while it runs */
                json_t *duration = json_null();
                if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
                        int64_t end = sqlite3_column_type(st, 5) != SQLITE_NULL
                                              ? sqlite3_column_int64(st, 5)
                                              : now;
                        int64_t ms = end - sqlite3_column_int64(st, 4);
                        duration = json_real((double)(ms > 0 ? ms : 0) / 1000.0);
                }
                json_object_set_new(job, "duration_s", duration);
                if (j->unwritten)
                        overlay_unwritten(j, sqlite3_column_int64(st, 0), job, NULL);
                json_array_append_new(jobs, job);
        }
        sqlite3_finalize(st);
        return jobs;
}

json_t *journal_events_json(struct journal *j, int64_t job, const char *step)
{
        json_t *events = json_array();
        sqlite3_stmt *st = prep(j,
                                "SELECT at, level, step, message FROM events WHERE job_id = ?1 "
                                "AND (?2 IS NULL OR step = ?2) ORDER BY id",
                                "is", job, step);
        while (st && sqlite3_step(st) == SQLITE_ROW)
                json_array_append_new(events,
                                      json_pack("{s:o, s:o, s:o, s:o}", "at", time_json(st, 0),
                                                "level", str_json(st, 1), "step", text_json(st, 2),
                                                "message", str_json(st, 3)));
        sqlite3_finalize(st);
        return events;
}

json_t *journal_load_errors_json(struct journal *j, int64_t job, int limit)
{
        json_t *rows = json_array();
        sqlite3_stmt *st =
                prep(j,
                     "SELECT step, filename, line_number, colname, type, position, raw_line, "
                     "raw_field_value, err_code, err_reason FROM load_errors WHERE job_id = ?1 "
                     "ORDER BY id LIMIT ?2",
                     "ii", job, (int64_t)limit);
        while (st && sqlite3_step(st) == SQLITE_ROW)
                json_array_append_new(
                    rows, json_pack("{s:o, s:o, s:I, s:o, s:o, s:I, s:o, s:o, s:i, s:o}", "step",
                                    str_json(st, 0), "filename", str_json(st, 1), "line_number",
                                    (json_int_t)sqlite3_column_int64(st, 2), "colname",
                                    str_json(st, 3), "type", str_json(st, 4), "position",
                                    (json_int_t)sqlite3_column_int64(st, 5), "raw_line",
                                    str_json(st, 6), "raw_field_value", str_json(st, 7), "err_code",
                                    sqlite3_column_int(st, 8), "err_reason", str_json(st, 9)));
        sqlite3_finalize(st);
        return rows;
}

json_t *journal_metrics_json(struct journal *j)
{
        json_t *rows = json_array();
        sqlite3_stmt *st = prep(j,
                                "SELECT name, pipeline, label, value FROM metrics "
                                "ORDER BY name, pipeline, label",
                                "");
        while (st && sqlite3_step(st) == SQLITE_ROW)
                json_array_append_new(rows, json_pack("[o, o, o, I]", str_json(st, 0),
                                                      str_json(st, 1), str_json(st, 2),
                                                      (json_int_t)sqlite3_column_int64(st, 3)));
        sqlite3_finalize(st);
        return rows;
}

/* ---- retention ------------------------------------------------------------ */

int journal_prune(struct journal *j, int keep_jobs, int keep_days, int64_t now_ms)
{
        if (keep_jobs <= 0 && keep_days <= 0)
                return 0;
        /* What is never pruned, each for a reason of its own:
         * - the latest job of each pipeline (what `status` and the next
         *   nightly compare with);
         * - a job whose publish a warehouse holds, or whose objects are in the
         *   ledger (incremental runs read them);
         * - a job holding the latest value of any output key
         *   (journal_output_latest: the cluster endpoint, the role, ...);
         * - a job that created (or adopted) a resource no later job deleted
         *   (teardown finds what to delete in these outputs). */
        sqlite3_stmt *st = prep(
                j,
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs AS f "
                "WHERE state IN ('succeeded', 'failed', 'cancelled') "
                "AND ((?1 > 0 AND id NOT IN (SELECT id FROM jobs WHERE state IN "
                "('succeeded', 'failed', 'cancelled') ORDER BY id DESC LIMIT ?1)) "
                "OR (?2 > 0 AND COALESCE(finished_at, created_at) < ?3)) "
                "AND id NOT IN (SELECT MAX(id) FROM jobs GROUP BY pipeline) "
                "AND id NOT IN (SELECT job_id FROM publications) "
                "AND id NOT IN (SELECT job_id FROM ledger) "
                "AND id NOT IN (SELECT MAX(job_id) FROM outputs GROUP BY key) "
                "AND NOT EXISTS (SELECT 1 FROM outputs AS o WHERE o.job_id = f.id "
                "AND ((o.key LIKE '%\\_origin' ESCAPE '\\' AND o.value IN ('created', "
                "'adopted')) OR o.key = 'bucket_created') "
                "AND NOT EXISTS (SELECT 1 FROM outputs AS d WHERE d.job_id > f.id "
                "AND ((o.key = 'bucket_created' AND d.key = 'bucket_deleted') "
                "OR (d.key = o.key AND d.value = 'deleted')))))",
                "iii", (int64_t)keep_jobs, (int64_t)keep_days,
                now_ms - (int64_t)keep_days * 86400000);
        int r = run(j, st);
        if (r < 0)
                return r;
        return sqlite3_changes(j->db);
}

/* ---- online backup ------------------------------------------------------ */

struct journal_backup {
        struct journal *j;
        sqlite3 *dest;
        sqlite3_backup *b;
        char *path;
        bool done;
};

int journal_backup_start(struct journal *j, const char *dest, struct journal_backup **ret,
                         char *err, size_t errlen)
{
        if (dest[0] != '/') {
                snprintf(err, errlen, "backup file '%s' must be an absolute path", dest);
                return -EINVAL;
        }
        /* a new file only: a backup never overwrites anything */
        int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "cannot create backup file '%s': %s%s", dest, strerror(e),
                         e == EEXIST ? " (a backup never overwrites a file: name a new one)" : "");
                return -e;
        }
        close(fd);
        struct journal_backup *b = calloc(1, sizeof(*b));
        if (!b || !(b->path = strdup(dest))) {
                free(b);
                unlink(dest);
                return -ENOMEM;
        }
        b->j = j;
        int rc = sqlite3_open_v2(dest, &b->dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK) {
                b->b = sqlite3_backup_init(b->dest, "main", j->db, "main");
                if (!b->b)
                        rc = sqlite3_errcode(b->dest);
        }
        if (rc != SQLITE_OK) {
                snprintf(err, errlen, "cannot start the backup into '%s': %s", dest,
                         b->dest ? sqlite3_errmsg(b->dest) : sqlite3_errstr(rc));
                journal_backup_free(b, false);
                return -EIO;
        }
        *ret = b;
        return 0;
}

int journal_backup_step(struct journal_backup *b, int pages, char *err, size_t errlen)
{
        int rc = sqlite3_backup_step(b->b, pages);
        if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                return 0;
        if (rc != SQLITE_DONE) {
                snprintf(err, errlen, "backup into '%s' failed: %s", b->path, sqlite3_errstr(rc));
                return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
        }
        rc = sqlite3_backup_finish(b->b);
        b->b = NULL;
        /* the copy stands alone: one file, no WAL beside it */
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(b->dest, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                snprintf(err, errlen, "backup into '%s' failed: %s", b->path,
                         sqlite3_errmsg(b->dest));
                return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
        }
        b->done = true;
        return 1;
}

void journal_backup_progress(const struct journal_backup *b, int *copied, int *total)
{
        *total = b->b ? sqlite3_backup_pagecount(b->b) : 0;
        *copied = b->b ? *total - sqlite3_backup_remaining(b->b) : *total;
}

void journal_backup_free(struct journal_backup *b, bool keep)
{
        if (!b)
                return;
        if (b->b)
                sqlite3_backup_finish(b->b);
        if (b->dest)
                sqlite3_close(b->dest);
        if (!keep || !b->done)
                unlink(b->path); /* no half copy left behind */
        free(b->path);
        free(b);
}
