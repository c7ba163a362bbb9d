/* engine.h - the job engine: the queue, the steps of running jobs, retries,
 * cancel and shutdown.
 *
 * The engine owns every job that is queued or running.  It records each
 * transition in the journal before telling anyone, runs at most max_jobs jobs
 * at once, never two on the same warehouse, and retries a step that failed
 * with a transient error with capped exponential backoff.  Watchers (the
 * server's `watch` connections) receive events as JSON objects.
 *
 * When a job succeeds, its pipeline may ask for a follow-up job (struct
 * pipeline's followup: provision's ttl teardown).  The engine queues it,
 * keyed by the job's id so that it is queued once however often the job
 * resumes (whatever became of it: a cancelled follow-up stays cancelled),
 * with a not_before time: a queued job does not start before its
 * not_before, which is kept in the journal and so holds across restarts. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cfg.h"
#include "journal.h"

struct engine;
struct engine_watch;

/* An event for watchers: {"job", "kind": step|progress|log|end, ...}.  The
 * callee must not keep the object without a reference. */
typedef void (*engine_event_fn)(void *userdata, json_t *event);

struct http_mux;
/* http: the daemon's HTTP engine on `loop`, handed to every step (may be
 * NULL: steps that need AWS then fail to start); it must outlive the engine. */
int engine_new(uv_loop_t *loop, struct journal *j, const struct cfg *base, const char *state_dir,
               struct http_mux *http, struct engine **ret);
/* Frees the engine once engine_stop has completed (or was never needed). */
struct engine *engine_free(struct engine *e);

/* A new daemon configuration (SIGHUP): used by jobs started from now on. */
int engine_set_config(struct engine *e, const struct cfg *base);

/* Picks up the journal: running jobs resume at their first unfinished step,
 * queued jobs stay queued. */
int engine_recover(struct engine *e);

/* What a submit or a retry did: the job, whether it was there already, and
 * the job it runs again (0: none). */
struct engine_submitted {
        int64_t job;
        bool existing;
        int64_t retry_of;
};

/* Queues a job.  settings: {"section.key": value} overrides for this job,
 * checked against the key table and the pipeline's own check (who may set
 * which key is the caller's check: authz.h).  uid and admin describe the
 * submitter and are kept with the job.  On -EINVAL err names the pipeline or
 * key at fault.
 *
 * A key names its latest attempt.  When that job is queued, running or
 * succeeded it is the answer (existing); when it failed or was cancelled a
 * new job is queued as its next attempt (retry_of).  Either way the pipeline
 * and the settings the job keeps (the submitted ones, secrets left out:
 * etld.conf may have changed since) must be the same as the key's job's:
 * else -EINVAL, err naming the settings that differ. */
int engine_submit(struct engine *e, const char *pipeline, json_t *settings, const char *key,
                  long uid, bool admin, struct engine_submitted *ret, char *err, size_t errlen);

/* Runs a failed or cancelled job again as a new job: its pipeline, the
 * settings it keeps and its key, submitted by uid (checked as a submit by
 * uid would be), linked to it by retry_of.  -ENOENT unknown job; -EALREADY
 * when it is queued, running or succeeded, or was run again already; err
 * says why. */
int engine_retry(struct engine *e, int64_t job, long uid, bool admin, struct engine_submitted *ret,
                 char *err, size_t errlen);

/* Cancels a queued job at once or asks a running one to stop.  *ret_state:
 * "cancelled" or "cancelling".  -ENOENT unknown job, -EALREADY finished job. */
int engine_cancel(struct engine *e, int64_t job, long uid, const char **ret_state, char *err,
                  size_t errlen);

/* Watching a job's events; engine_unwatch is safe from inside the callback. */
struct engine_watch *engine_watch(struct engine *e, int64_t job, engine_event_fn fn,
                                  void *userdata);
void engine_unwatch(struct engine *e, struct engine_watch *w);

void engine_counts(struct engine *e, unsigned *running, unsigned *queued);
/* The ids of active jobs (running and queued), for the daemon summary. */
json_t *engine_active_ids(struct engine *e);

/* Interrupts running steps at a safe point, leaving them to resume at the
 * next start, and calls done once none runs. */
void engine_stop(struct engine *e, void (*done)(void *userdata), void *userdata);

/* Called whenever the number of running or queued jobs changes. */
void engine_on_change(struct engine *e, void (*fn)(void *userdata), void *userdata);
