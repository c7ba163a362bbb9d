/* journal.h - the SQLite journal: jobs, their steps, outputs, checks, load
 * errors and events, kept so that a crash or restart loses nothing.
 *
 * One connection, used from the loop thread only.  Every state transition is
 * one transaction with synchronous=FULL; a second etld on the same state
 * directory is refused (exclusive locking).  The schema lives in
 * sql/journal/ and is applied by PRAGMA user_version migrations. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objlist.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_STATE_MAX };
enum step_state {
        STEP_PENDING,
        STEP_RUNNING,
        STEP_DONE,
        STEP_FAILED,
        STEP_CANCELLED,
        STEP_STATE_MAX
};

const char *job_state_name(enum job_state s);
const char *step_state_name(enum step_state s);
bool job_state_is_final(enum job_state s);

struct journal;

/* Opens (creating and migrating) the journal at path, after PRAGMA
 * quick_check.  Refused, with err naming the file, saying what it is and
 * what to do: a journal in use by another etld (-EBUSY), read-only
 * (-EROFS), not a SQLite database or another program's (-EINVAL),
 * truncated or corrupt (-EBADMSG), of a newer schema (-EPROTO), and a
 * journal that is missing (-ENOENT) or empty (-ENODATA) where the marker
 * PATH.created says one existed, unless flags has JOURNAL_OPEN_NEW.  The
 * marker is written at the first successful open. */
#define JOURNAL_OPEN_NEW 1 /* etld --new-journal: a missing or empty journal starts anew */
int journal_open(const char *path, int flags, struct journal **ret, char *err, size_t errlen);
struct journal *journal_close(struct journal *j);

/* Schema version this etld writes. */
int journal_schema_version(void);

/* A job to add.  key: the job's key (NULL: none); retry_of: the job this one
 * runs again (0: none); not_before: milliseconds since the epoch before
 * which the job must not start (0: no such time), kept with the job so that
 * it holds across restarts. */
struct journal_new_job {
        const char *pipeline;
        const char *const *steps;
        size_t nsteps;
        const char *config; /* JSON text: the settings submitted, secrets left out */
        const char *key;
        long uid;
        bool admin; /* the submitter was an admin (authz.h): kept, since a
                       non-admin's job opens its files confined */
        int64_t not_before;
        int64_t retry_of;
};

/* Adds a queued job with its steps (all pending), *ret_id its id.  Always a
 * new job: which job a key names is the caller's rule (journal_key_latest).
 * -EEXIST when the journal's own rules refuse it: a job under the key is
 * queued, running or succeeded, or retry_of was run again already. */
int journal_job_add(struct journal *j, const struct journal_new_job *nj, int64_t *ret_id);

/* The latest job (highest id) under key in *ret_id; -ENOENT when none. */
int journal_key_latest(struct journal *j, const char *key, int64_t *ret_id);

/* State transitions.  Running sets started_at (first time), final states set
 * finished_at; error is kept only for failed/cancelled. */
int journal_job_set_state(struct journal *j, int64_t id, enum job_state s, const char *error);
int journal_job_set_cancel_uid(struct journal *j, int64_t id, long uid);

/* Final transitions (a job succeeded, failed or cancelled; a step done,
 * failed or cancelled) that the journal refuses (disk full, I/O error) are
 * kept in memory in order: the replies show them at once, with a note
 * ("unwritten": "final state not yet written: disk full; ..."), and
 * journal_retry writes them when the journal takes writes again.  Such a
 * call returns -ENOSPC or -EIO all the same. */
int journal_retry(struct journal *j); /* 0 when nothing is left, -EAGAIN */
size_t journal_unwritten(const struct journal *j);

/* A step going running counts an attempt. */
int journal_step_set_state(struct journal *j, int64_t job, int idx, enum step_state s,
                           const char *error);
/* Marks every unfinished step of a job with s (used on cancel). */
int journal_steps_finish(struct journal *j, int64_t job, enum step_state s);
int journal_step_progress(struct journal *j, int64_t job, int idx, const char *json);

int journal_output_set(struct journal *j, int64_t job, const char *step, const char *key,
                       const char *value);
/* The value of an output, malloc'ed, or NULL. */
char *journal_output_get(struct journal *j, int64_t job, const char *key);
/* The value of output `key` in the most recent job (highest id) of pipeline
 * (NULL: any pipeline) that has it, malloc'ed, that job in *ret_job; NULL
 * when no job has it.  Provision and teardown look up what etld created. */
char *journal_output_latest(struct journal *j, const char *pipeline, const char *key,
                            int64_t *ret_job);
/* Like journal_output_latest, among the jobs that also recorded output
 * `name_key` = name: "the latest job that said bucket_created about bucket
 * b".  The job in *ret_job (0 when none); NULL when none. */
char *journal_output_latest_for(struct journal *j, const char *name_key, const char *name,
                                const char *key, int64_t *ret_job);

int journal_checks_replace(struct journal *j, int64_t job, json_t *checks);
int journal_event_add(struct journal *j, int64_t job, const char *level, const char *step,
                      const char *message);
/* errors: array of objects with the STL_LOAD_ERRORS-like keys. */
int journal_load_errors_add(struct journal *j, int64_t job, const char *step, json_t *errors);

/* ---- the warehouses' ledger (see sql/journal/0003-ledger.sql) ---- */

/* Records that job published target: mode "full" replaces the target's
 * ledger with objects, "incremental" adds objects to it (their job fields
 * are not read).  One transaction; running it again with the same
 * arguments changes nothing. */
int journal_ledger_publish(struct journal *j, const char *target, int64_t job, const char *mode,
                           const struct objlist *objects);
/* The target's ledger into *out (emptied first), sorted by URI (for
 * objlist_find), each object with the job that published it, and the job
 * that published last in *ret_job (0 and no objects when none).  0, or
 * -ENOMEM / -EIO. */
int journal_ledger_get(struct journal *j, const char *target, struct objlist *out,
                       int64_t *ret_job);
/* [{"target", "job", "mode", "objects", "published_at" (ISO 8601)}], one
 * per target: the job whose tables each warehouse publishes. */
json_t *journal_publications_json(struct journal *j);

/* What the engine needs to (re)start a job. */
struct journal_job {
        int64_t id;
        char *pipeline;
        char *config;     /* JSON text */
        enum job_state state;
        int first_unfinished; /* index of the first step not done */
        long uid;             /* submitter */
        bool admin;           /* ...who was an admin at submit time */
        int64_t not_before;   /* ms since the epoch; 0: none */
        char *key;            /* NULL: none */
        int64_t retry_of;     /* the job this one runs again; 0: none */
        int64_t retried_by;   /* the job that runs this one again; 0: none */
};
void journal_job_clear(struct journal_job *jj);
int journal_job_get(struct journal *j, int64_t id, struct journal_job *ret);

/* Ids of the jobs in a state, oldest first. */
int journal_jobs_in_state(struct journal *j, enum job_state s, int64_t **ret, size_t *ret_n);

/* The status/list/errors replies.  NULL with -ENOENT for an unknown job. */
json_t *journal_job_json(struct journal *j, int64_t id);
/* Which jobs journal_list_json gives: each field NULL/0 matches all. */
struct journal_list_filter {
        const char *pipeline;
        const char *state; /* a job state's name */
        const char *key;
        int64_t since_ms;  /* created at or after (ms since the epoch) */
        int limit;         /* newest first; 0: 50 */
};
/* Newest first: [{id, pipeline, state, times..., key, duration_s}]. */
json_t *journal_list_json(struct journal *j, const struct journal_list_filter *f);
/* The counters of sql/journal/0006-metrics.sql: [[name, pipeline, label,
 * value], ...] (metrics.h turns them into Prometheus' format). */
json_t *journal_metrics_json(struct journal *j);
/* Retention: deletes finished jobs beyond the newest keep_jobs, or that
 * finished more than keep_days before now_ms (0: no such limit), with
 * their steps, outputs, checks, events and load errors.  Never the latest
 * job of a pipeline, one a warehouse's publish or ledger names, one holding
 * the latest value of an output key, or one that created a resource no
 * later job deleted.  The number of jobs deleted, or -errno. */
int journal_prune(struct journal *j, int keep_jobs, int keep_days, int64_t now_ms);
/* A job's event log, oldest first, [{at, level, step, message}] (the
 * journal keeps the newest 1,000 of each job); step NULL: every step's. */
json_t *journal_events_json(struct journal *j, int64_t job, const char *step);
json_t *journal_load_errors_json(struct journal *j, int64_t job, int limit);

/* A consistent copy of the journal while etld runs (SQLite's online backup,
 * from this connection, so writes made meanwhile reach the copy too).
 * dest: an absolute path that must not exist (created 0600, as etld's
 * user).  journal_backup_step copies up to `pages` pages: 0 more to do, 1
 * done (the copy is a self-contained file in rollback-journal mode), or
 * -errno with err.  journal_backup_free removes the file unless keep and
 * the copy is complete.  The journal must outlive the backup. */
struct journal_backup;
int journal_backup_start(struct journal *j, const char *dest, struct journal_backup **ret,
                         char *err, size_t errlen);
int journal_backup_step(struct journal_backup *b, int pages, char *err, size_t errlen);
void journal_backup_progress(const struct journal_backup *b, int *copied, int *total);
void journal_backup_free(struct journal_backup *b, bool keep);
