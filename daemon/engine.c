/* engine.c - the job engine.  See engine.h.
 *
 * Jobs live in one list, in submission order: queued ones wait, running ones
 * have a step attempt (struct step_run) or a retry timer.  Every change goes
 * to the journal first, then to watchers.  On restart the journal is the
 * truth: engine_recover rebuilds the list from it.
 *
 * A queued job may carry a time before which it must not start (not_before,
 * journaled with the job: provision's ttl teardown).  One timer, `wake`, is
 * armed for the earliest such time whenever the queue is looked at, so a
 * waiting job costs nothing but its row.
 *
 * A step attempt is a state machine on the loop (step.h).  Cancelling a job,
 * or stopping etld, sets its step_run.cancel and calls the step's cancel,
 * which cancels the requests the step has outstanding; the attempt ends when
 * the step calls step_done, once their callbacks came, and only then is the
 * job marked cancelled (or left to resume at the next start). */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "proto.h"
#include "step.h"
#include "util.h"

#define PROGRESS_INTERVAL_MS 500
/* The wake timer runs on the monotonic clock while not_before is wall-clock
 * time: waking at least this often notices a clock step or a suspend. */
#define WAKE_MAX_MS 60000

struct job {
        struct engine *e;
        struct job *next;
        int64_t id;
        const struct pipeline *p;
        struct cfg *cfg;
        char *warehouse;      /* jobs with the same value never overlap */
        bool admin;           /* submitted by an admin: its files are not confined */
        bool running;
        bool cancelling;
        int step;             /* index of the current step */
        struct step_run *run; /* the current attempt, or NULL */
        uv_timer_t retry;     /* waiting before the next attempt */
        bool retry_armed;
        int attempts;       /* failed attempts of the current step */
        int64_t not_before; /* wall-clock ms before which it must not start; 0: none */
        char last_progress[256];
        uint64_t last_progress_write;
};

struct engine_watch {
        struct engine_watch *next;
        int64_t job;
        engine_event_fn fn;
        void *userdata;
        bool dead;
};

struct engine {
        uv_loop_t *loop;
        struct journal *j;
        struct cfg *base;
        char *state_dir;
        struct http_mux *http;
        struct job *jobs;
        struct engine_watch *watches;
        int emitting; /* > 0 while calling watchers: unwatch only marks dead */
        uv_timer_t progress;
        uv_timer_t wake;  /* the earliest not_before of a queued job */
        int open_handles; /* progress and wake: freed when both closed */
        bool stopping;
        void (*stopped)(void *userdata);
        void *stopped_userdata;
        void (*changed)(void *userdata);
        void *changed_userdata;
};

static void schedule(struct engine *e);
static void run_step(struct job *job);
static int queue_job(struct engine *e, const struct pipeline *p, struct cfg *c,
                     const struct journal_new_job *nj, int64_t *ret_id);

/* Wall-clock milliseconds as "2024-05-01T03:00:00Z", as the journal shows times. */
static void iso_time(int64_t ms, char *out, size_t n)
{
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        if (!gmtime_r(&secs, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(out, n, "%lld ms after the epoch", (long long)ms);
}

/* ---- watchers ---- */

static void reap_watches(struct engine *e)
{
        struct engine_watch **pp = &e->watches;
        while (*pp) {
                struct engine_watch *w = *pp;
                if (w->dead) {
                        *pp = w->next;
                        free(w);
                } else {
                        pp = &w->next;
                }
        }
}

/* Sends an event to the job's watchers; steals ev. */
static void emit(struct engine *e, int64_t job, json_t *ev)
{
        if (!ev)
                return;
        json_object_set_new(ev, "job", json_integer(job));
        char at[40];
        util_iso_ms(util_now_ms(), at, sizeof(at));
        json_object_set_new(ev, "at", json_string(at));
        e->emitting++;
        for (struct engine_watch *w = e->watches; w; w = w->next)
                if (!w->dead && w->job == job)
                        w->fn(w->userdata, ev);
        e->emitting--;
        if (!e->emitting)
                reap_watches(e);
        json_decref(ev);
}

struct engine_watch *engine_watch(struct engine *e, int64_t job, engine_event_fn fn, void *userdata)
{
        struct engine_watch *w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        w->job = job;
        w->fn = fn;
        w->userdata = userdata;
        w->next = e->watches;
        e->watches = w;
        return w;
}

void engine_unwatch(struct engine *e, struct engine_watch *w)
{
        if (!w)
                return;
        w->dead = true;
        if (!e->emitting)
                reap_watches(e);
}

static void changed(struct engine *e)
{
        if (e->changed)
                e->changed(e->changed_userdata);
}

/* Journals an event and tells watchers. */
static void job_log(struct job *job, const char *level, const char *step, const char *msg)
{
        journal_event_add(job->e->j, job->id, level, step, msg);
        emit(job->e, job->id,
             json_pack("{s:s, s:s, s:s?, s:o}", "kind", "log", "level", level, "step", step,
                       "message", proto_json_text(msg ? msg : "")));
}

/* ---- jobs ---- */

static void job_free_cb(uv_handle_t *h)
{
        struct job *job = h->data;
        cfg_free(job->cfg);
        free(job->warehouse);
        free(job);
}

static void job_unlink(struct job *job)
{
        struct job **pp = &job->e->jobs;
        while (*pp && *pp != job)
                pp = &(*pp)->next;
        if (*pp)
                *pp = job->next;
        uv_close((uv_handle_t *)&job->retry, job_free_cb);
}

/* Builds a job's configuration: the daemon's, then the job's stored settings. */
static int job_config(struct engine *e, const char *settings_json, struct cfg **ret, char *err,
                      size_t errlen)
{
        struct cfg *c = cfg_dup(e->base);
        if (!c)
                return -ENOMEM;
        json_t *settings = json_loads(settings_json, 0, NULL);
        int r = cfg_apply_json(c, settings, err, errlen);
        json_decref(settings);
        if (r < 0) {
                cfg_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static struct job *job_new(struct engine *e, int64_t id, const struct pipeline *p, struct cfg *c,
                           bool admin, int64_t not_before)
{
        struct job *job = calloc(1, sizeof(*job));
        if (!job)
                return NULL;
        job->e = e;
        job->id = id;
        job->p = p;
        job->cfg = c;
        job->admin = admin;
        job->not_before = not_before;
        const char *target = cfg_get(c, "warehouse", "target");
        struct buf b = { 0 };
        if (target && *target)
                buf_printf(&b, "%s", target);
        else
                buf_printf(&b, "sqlite://%s/warehouse.db", e->state_dir);
        job->warehouse = b.data;
        uv_timer_init(e->loop, &job->retry);
        job->retry.data = job;
        /* append: the list is in submission order */
        struct job **pp = &e->jobs;
        while (*pp)
                pp = &(*pp)->next;
        *pp = job;
        return job;
}

static struct job *job_find(struct engine *e, int64_t id)
{
        for (struct job *job = e->jobs; job; job = job->next)
                if (job->id == id)
                        return job;
        return NULL;
}

static void job_finish(struct job *job, enum job_state s, const char *error)
{
        struct engine *e = job->e;
        if (s == JOB_CANCELLED)
                journal_steps_finish(e->j, job->id, STEP_CANCELLED);
        journal_job_set_state(e->j, job->id, s, error);
        /* a failed job at err, so that `journalctl -p err` shows it; a
         * cancelled one was asked for */
        if (s == JOB_SUCCEEDED)
                log_job(LOG_INFO, "job", job->id, job->p->name, NULL, "job=%lld: succeeded",
                        (long long)job->id);
        else
                log_job(s == JOB_FAILED ? LOG_ERR : LOG_WARNING, "job", job->id, job->p->name,
                        NULL, "job=%lld: %s%s%s", (long long)job->id, job_state_name(s),
                        error ? ": " : "", error ? error : "");
        emit(e, job->id,
             json_pack("{s:s, s:s, s:o}", "kind", "end", "state", job_state_name(s), "error",
                       proto_json_text(error)));
        job_unlink(job);
        changed(e);
        schedule(e);
}

static json_t *progress_json(struct step_run *r)
{
        json_t *p = json_pack("{s:I, s:I, s:I, s:I}", "objects",
                              (json_int_t)atomic_load(&r->progress.objects), "bytes",
                              (json_int_t)atomic_load(&r->progress.bytes), "rows",
                              (json_int_t)atomic_load(&r->progress.rows), "errors",
                              (json_int_t)atomic_load(&r->progress.errors));
        if (p && r->progress_text[0])
                json_object_set_new(p, "text", proto_json_text(r->progress_text));
        if (p && r->objects_total)
                json_object_set_new(p, "objects_total", json_integer((json_int_t)r->objects_total));
        if (p && r->bytes_total)
                json_object_set_new(p, "bytes_total", json_integer((json_int_t)r->bytes_total));
        return p;
}

/* Publishes a step's counters when they changed; journals them at most once
 * a second (and always when force). */
static void publish_progress(struct job *job, bool force)
{
        struct step_run *r = job->run;
        if (!r)
                return;
        json_t *p = progress_json(r);
        if (!job->last_progress[0] && atomic_load(&r->progress.objects) == 0 &&
            atomic_load(&r->progress.rows) == 0 && atomic_load(&r->progress.bytes) == 0 &&
            !r->progress_text[0]) {
                json_decref(p); /* a step that counts nothing has no progress to show */
                return;
        }
        char *text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
        if (text && strcmp(text, job->last_progress) != 0) {
                snprintf(job->last_progress, sizeof(job->last_progress), "%s", text);
                uint64_t now = util_now_mono_ms();
                if (force || now - job->last_progress_write >= 1000) {
                        journal_step_progress(job->e->j, job->id, job->step, text);
                        job->last_progress_write = now;
                }
                emit(job->e, job->id,
                     json_pack("{s:s, s:s, s:O}", "kind", "progress", "step", r->ops->name,
                               "progress", p));
        } else if (text && force) {
                journal_step_progress(job->e->j, job->id, job->step, text);
        }
        free(text);
        json_decref(p);
}

static void progress_cb(uv_timer_t *t)
{
        struct engine *e = t->data;
        if (journal_unwritten(e->j)) /* final states kept while the journal refused them */
                journal_retry(e->j);
        for (struct job *job = e->jobs; job; job = job->next)
                publish_progress(job, false);
}

static void run_free(struct step_run *r)
{
        json_decref(r->outputs);
        json_decref(r->checks);
        json_decref(r->load_errors);
        json_decref(r->events);
        json_decref(r->published);
        objlist_free(&r->published_objects);
        free(r);
}

/* Records what an attempt produced, whatever its outcome.  A publish that
 * cannot be written to the ledger turns a success into a transient failure:
 * the step runs again and finds the warehouse already published. */
static void record_results(struct job *job, struct step_run *r)
{
        struct engine *e = job->e;
        const char *key;
        json_t *v;
        json_object_foreach(r->outputs, key, v)
                journal_output_set(e->j, job->id, r->ops->name, key, json_string_value(v));
        if (r->checks)
                journal_checks_replace(e->j, job->id, r->checks);
        if (r->load_errors && json_array_size(r->load_errors))
                journal_load_errors_add(e->j, job->id, r->ops->name, r->load_errors);
        size_t i;
        json_array_foreach(r->events, i, v)
                job_log(job, "info", r->ops->name, json_string_value(v));
        json_t *p = r->published;
        if (p && journal_ledger_publish(e->j, json_string_value(json_object_get(p, "target")),
                                        job->id, json_string_value(json_object_get(p, "mode")),
                                        &r->published_objects) < 0 &&
            r->result == 0) {
                r->result = -EIO;
                r->transient = true;
                snprintf(r->error, sizeof(r->error),
                         "cannot record the publish in the journal's ledger");
        }
}

static void maybe_stopped(struct engine *e)
{
        if (!e->stopping || !e->stopped)
                return;
        for (struct job *job = e->jobs; job; job = job->next)
                if (job->run)
                        return;
        void (*fn)(void *) = e->stopped;
        e->stopped = NULL;
        fn(e->stopped_userdata);
}

static void retry_cb(uv_timer_t *t)
{
        struct job *job = t->data;
        job->retry_armed = false;
        run_step(job);
}

static void step_finished(struct step_run *r)
{
        struct job *job = r->owner;
        struct engine *e = job->e;
        const char *name = r->ops->name;
        publish_progress(job, true);
        record_results(job, r);
        job->run = NULL;
        int result = r->result;
        char error[1100];
        snprintf(error, sizeof(error), "step %s: %s", name,
                 r->error[0] ? r->error : strerror(result < 0 ? -result : EIO));

        if (result == 0) {
                journal_step_set_state(e->j, job->id, job->step, STEP_DONE, NULL);
                log_job(LOG_INFO, "job", job->id, job->p->name, name, "job=%lld step=%s: done",
                        (long long)job->id, name);
                emit(e, job->id,
                     json_pack("{s:s, s:s, s:s}", "kind", "step", "step", name, "state", "done"));
                run_free(r);
                job->step++;
                job->attempts = 0;
                if (e->stopping) {
                        maybe_stopped(e);
                        return;
                }
                run_step(job);
                return;
        }
        if (result == -ECANCELED && job->cancelling) {
                run_free(r);
                job_finish(job, JOB_CANCELLED, "cancelled by request");
                maybe_stopped(e);
                return;
        }
        if (result == -ECANCELED && e->stopping) {
                /* Interrupted by shutdown: the step runs again at the next start. */
                journal_step_set_state(e->j, job->id, job->step, STEP_PENDING,
                                       "interrupted by etld stopping; resumes at next start");
                log_info("job", "job=%lld step=%s: interrupted, will resume", (long long)job->id,
                         name);
                run_free(r);
                maybe_stopped(e);
                return;
        }
        bool transient = r->transient;
        run_free(r);
        long long attempts_max = cfg_get_int(job->cfg, "daemon", "retry_max");
        if (transient && ++job->attempts < attempts_max && !e->stopping && !job->cancelling) {
                /* Capped exponential backoff with full jitter. */
                uint64_t base = (uint64_t)cfg_get_int(job->cfg, "daemon", "retry_base_ms");
                uint64_t cap = (uint64_t)cfg_get_int(job->cfg, "daemon", "retry_cap_ms");
                uint64_t delay = base << (job->attempts - 1 < 20 ? job->attempts - 1 : 20);
                if (delay > cap)
                        delay = cap;
                delay = delay / 2 + (uint64_t)random() % (delay / 2 + 1);
                journal_step_set_state(e->j, job->id, job->step, STEP_PENDING, error);
                char msg[1300];
                snprintf(msg, sizeof(msg), "%s (transient; attempt %d of %lld in %llu ms)", error,
                         job->attempts + 1, attempts_max, (unsigned long long)delay);
                job_log(job, "warning", name, msg);
                log_job(LOG_WARNING, "job", job->id, job->p->name, name, "job=%lld: %s",
                        (long long)job->id, msg);
                job->retry_armed = true;
                uv_timer_start(&job->retry, retry_cb, delay, 0);
                return;
        }
        journal_step_set_state(e->j, job->id, job->step, STEP_FAILED, error);
        emit(e, job->id,
             json_pack("{s:s, s:s, s:s, s:o}", "kind", "step", "step", name, "state", "failed",
                       "message", proto_json_text(error)));
        job_finish(job, JOB_FAILED, error);
        maybe_stopped(e);
}

/* Queues what the pipeline wants once a job succeeded (provision's ttl: a
 * teardown for later), with the job's own settings and submitter.  It runs
 * before the job is marked succeeded: after a crash in between the job
 * resumes with every step done and comes here again, and the idempotency
 * key derived from the job's id returns the follow-up queued the first time
 * instead of adding a second one.  -errno with err when it could not be
 * queued (the job then fails: a forgotten teardown is what ttl prevents). */
static int queue_followup(struct job *job, char *err, size_t errlen)
{
        struct engine *e = job->e;
        struct pipeline_followup f = {0};
        if (!job->p->followup)
                return 0;
        job->p->followup(job->cfg, &f);
        if (!f.pipeline)
                return 0;
        const struct pipeline *p = pipeline_find(f.pipeline);
        struct journal_job jj;
        int r = p ? journal_job_get(e->j, job->id, &jj) : -ENOENT;
        if (r < 0) {
                snprintf(err, errlen, "%s: cannot queue the %s job: %s", f.why, f.pipeline,
                         p ? strerror(-r) : "this etld does not know that pipeline");
                return r;
        }
        char key[96];
        snprintf(key, sizeof(key), "etld:%s-after-job-%lld", p->name, (long long)job->id);
        int64_t not_before = util_now_ms() + (f.delay_ms > 0 ? f.delay_ms : 0);
        int64_t id = 0;
        /* Whatever its state: a follow-up cancelled by hand stays dropped. */
        bool existing = journal_key_latest(e->j, key, &id) == 0;
        char cerr[512] = "";
        if (!existing) {
                struct cfg *c = NULL;
                r = job_config(e, jj.config, &c, cerr, sizeof(cerr));
                struct journal_new_job nj = { .config = jj.config,
                                              .key = key,
                                              .uid = jj.uid,
                                              .admin = jj.admin,
                                              .not_before = not_before };
                if (r == 0)
                        r = queue_job(e, p, c, &nj, &id);
        }
        journal_job_clear(&jj);
        if (r < 0) {
                snprintf(err, errlen, "%s: cannot queue the %s job: %s", f.why, p->name,
                         cerr[0] ? cerr : strerror(-r));
                return r;
        }
        struct journal_job added;
        if (existing && journal_job_get(e->j, id, &added) == 0) {
                not_before = added.not_before; /* the time set the first time round */
                journal_job_clear(&added);
        }
        char when[64], msg[600];
        iso_time(not_before, when, sizeof(when));
        snprintf(msg, sizeof(msg),
                 "%s job %lld %s: not before %s (%s); 'etlctl cancel %lld' "
                 "drops it",
                 p->name, (long long)id, existing ? "was scheduled already" : "scheduled", when,
                 f.why, (long long)id);
        job_log(job, "info", NULL, msg);
        log_info("job", "job=%lld: %s", (long long)job->id, msg);
        if (!existing) {
                snprintf(msg, sizeof(msg), "scheduled by %s job %lld (%s): not before %s",
                         job->p->name, (long long)job->id, f.why, when);
                journal_event_add(e->j, id, "info", NULL, msg);
        }
        return 0;
}

static void run_step(struct job *job)
{
        struct engine *e = job->e;
        if (job->cancelling) {
                job_finish(job, JOB_CANCELLED, "cancelled by request");
                return;
        }
        if (e->stopping)
                return;
        if ((size_t)job->step >= job->p->nsteps) {
                char err[700];
                if (queue_followup(job, err, sizeof(err)) < 0) {
                        job_finish(job, JOB_FAILED, err);
                        return;
                }
                job_finish(job, JOB_SUCCEEDED, NULL);
                return;
        }
        struct step_run *r = calloc(1, sizeof(*r));
        if (!r) {
                job_finish(job, JOB_FAILED, "out of memory");
                return;
        }
        r->loop = e->loop;
        r->job_id = job->id;
        r->idx = job->step;
        r->ops = job->p->steps[job->step];
        r->cfg = job->cfg;
        r->admin = job->admin;
        r->state_dir = e->state_dir;
        r->http = e->http;
        r->journal = e->j;
        r->outputs = json_object();
        r->events = json_array();
        r->done = step_finished;
        r->owner = job;
        job->run = r;
        job->last_progress[0] = '\0';
        journal_step_set_state(e->j, job->id, job->step, STEP_RUNNING, NULL);
        log_job(LOG_INFO, "job", job->id, job->p->name, r->ops->name, "job=%lld step=%s: running",
                (long long)job->id, r->ops->name);
        emit(e, job->id,
             json_pack("{s:s, s:s, s:s, s:s}", "kind", "step", "step", r->ops->name, "state",
                       "running", "message", r->ops->description));
        int res = r->ops->start(r);
        if (res < 0)
                step_done(r, res, false, "cannot start: %s", strerror(-res));
}

static void start_job(struct job *job)
{
        struct engine *e = job->e;
        struct journal_job jj;
        int r = journal_job_get(e->j, job->id, &jj);
        if (r < 0) {
                job_finish(job, JOB_FAILED, "the journal lost this job");
                return;
        }
        job->step = jj.first_unfinished < 0 ? (int)job->p->nsteps : jj.first_unfinished;
        journal_job_clear(&jj);
        job->running = true;
        job->attempts = 0;
        journal_job_set_state(e->j, job->id, JOB_RUNNING, NULL);
        emit(e, job->id, json_pack("{s:s, s:s}", "kind", "step", "state", "running"));
        changed(e);
        run_step(job);
}

static bool warehouse_busy(struct engine *e, const struct job *job)
{
        for (struct job *o = e->jobs; o; o = o->next)
                if (o != job && o->running && strcmp(o->warehouse, job->warehouse) == 0)
                        return true;
        return false;
}

static void wake_cb(uv_timer_t *t)
{
        schedule(t->data);
}

/* Arms the wake timer for the earliest queued job that must wait, or stops
 * it when none does. */
static void arm_wake(struct engine *e, int64_t now)
{
        int64_t first = 0;
        for (struct job *job = e->jobs; job; job = job->next)
                if (!job->running && job->not_before > now && (!first || job->not_before < first))
                        first = job->not_before;
        if (!first || e->stopping) {
                uv_timer_stop(&e->wake);
                return;
        }
        int64_t delay = first - now;
        uv_timer_start(&e->wake, wake_cb, (uint64_t)(delay < WAKE_MAX_MS ? delay : WAKE_MAX_MS), 0);
}

static void schedule(struct engine *e)
{
        if (e->stopping)
                return;
        long long max = cfg_get_int(e->base, "daemon", "max_jobs");
        if (max < 1)
                max = 1;
        unsigned running, queued;
        engine_counts(e, &running, &queued);
        int64_t now = util_now_ms();
        for (struct job *job = e->jobs; job && running < max; job = job->next) {
                if (job->running || job->not_before > now || warehouse_busy(e, job))
                        continue;
                running++;
                start_job(job);
                /* start_job may finish and unlink a job at once: start over */
                schedule(e);
                return;
        }
        arm_wake(e, now);
}

int engine_new(uv_loop_t *loop, struct journal *j, const struct cfg *base, const char *state_dir,
               struct http_mux *http, struct engine **ret)
{
        struct engine *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->loop = loop;
        e->j = j;
        e->http = http;
        e->base = cfg_dup(base);
        e->state_dir = strdup(state_dir);
        if (!e->base || !e->state_dir) {
                cfg_free(e->base);
                free(e->state_dir);
                free(e);
                return -ENOMEM;
        }
        uv_timer_init(loop, &e->progress);
        e->progress.data = e;
        uv_timer_start(&e->progress, progress_cb, PROGRESS_INTERVAL_MS, PROGRESS_INTERVAL_MS);
        uv_unref((uv_handle_t *)&e->progress);
        uv_timer_init(loop, &e->wake);
        e->wake.data = e;
        uv_unref((uv_handle_t *)&e->wake);
        e->open_handles = 2;
        *ret = e;
        return 0;
}

static void engine_free_cb(uv_handle_t *h)
{
        struct engine *e = h->data;
        if (--e->open_handles > 0)
                return;
        cfg_free(e->base);
        free(e->state_dir);
        free(e);
}

struct engine *engine_free(struct engine *e)
{
        if (!e)
                return NULL;
        while (e->jobs) {
                struct job *job = e->jobs;
                e->jobs = job->next;
                if (job->run) /* never happens after engine_stop completed */
                        log_error("job", "job=%lld: freed while a step runs", (long long)job->id);
                uv_close((uv_handle_t *)&job->retry, job_free_cb);
        }
        e->emitting = 0;
        for (struct engine_watch *w = e->watches; w; w = w->next)
                w->dead = true;
        reap_watches(e);
        uv_close((uv_handle_t *)&e->wake, engine_free_cb);
        uv_close((uv_handle_t *)&e->progress, engine_free_cb);
        return NULL;
}

int engine_set_config(struct engine *e, const struct cfg *base)
{
        struct cfg *c = cfg_dup(base);
        if (!c)
                return -ENOMEM;
        cfg_free(e->base);
        e->base = c;
        schedule(e);
        return 0;
}

static int add_from_journal(struct engine *e, int64_t id)
{
        struct journal_job jj;
        int r = journal_job_get(e->j, id, &jj);
        if (r < 0)
                return r;
        const struct pipeline *p = pipeline_find(jj.pipeline);
        struct cfg *c = NULL;
        char err[512] = "";
        if (p)
                r = job_config(e, jj.config, &c, err, sizeof(err));
        if (!p || r < 0) {
                char msg[700];
                snprintf(msg, sizeof(msg), "cannot resume: %s",
                         p ? err : "this etld does not know its pipeline");
                journal_steps_finish(e->j, id, STEP_FAILED);
                journal_job_set_state(e->j, id, JOB_FAILED, msg);
                log_error("job", "job=%lld: %s", (long long)id, msg);
                journal_job_clear(&jj);
                return 0;
        }
        int64_t not_before = jj.not_before;
        bool admin = jj.admin;
        journal_job_clear(&jj);
        if (!job_new(e, id, p, c, admin, not_before)) {
                cfg_free(c);
                return -ENOMEM;
        }
        return 0;
}

int engine_recover(struct engine *e)
{
        int64_t *ids = NULL;
        size_t n = 0;
        int r = journal_jobs_in_state(e->j, JOB_RUNNING, &ids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                /* A step left running was interrupted: it runs again whole. */
                json_t *status = journal_job_json(e->j, ids[i]);
                size_t k;
                json_t *s;
                json_array_foreach(json_object_get(status, "steps"), k, s)
                {
                        if (strcmp(json_string_value(json_object_get(s, "state")), "running") == 0)
                                journal_step_set_state(e->j, ids[i], (int)k, STEP_PENDING,
                                                       "interrupted by a restart; runs again");
                }
                json_decref(status);
                log_info("job", "job=%lld: resuming after restart", (long long)ids[i]);
                journal_event_add(e->j, ids[i], "info", NULL, "resuming after restart");
                add_from_journal(e, ids[i]);
        }
        free(ids);
        r = journal_jobs_in_state(e->j, JOB_QUEUED, &ids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                add_from_journal(e, ids[i]);
        free(ids);
        changed(e);
        schedule(e);
        return 0;
}

/* The rule of keys (engine.h, engine_submit): with the key's latest job in
 * the journal, either *ret_existing is that job, or *ret_retry_of is set to
 * it and a new attempt is to be queued.  config: the settings the new job
 * would keep.  -EINVAL with err when the pipeline or the settings differ. */
static int key_rule(struct engine *e, const struct pipeline *p, const char *config,
                    const char *key, int64_t *ret_existing, int64_t *ret_retry_of, char *err,
                    size_t errlen)
{
        int64_t latest = 0;
        int r = journal_key_latest(e->j, key, &latest);
        if (r == -ENOENT)
                return 0;
        struct journal_job jj;
        if (r == 0)
                r = journal_job_get(e->j, latest, &jj);
        if (r < 0) {
                snprintf(err, errlen, "the journal cannot say which job key '%.256s' names: %s",
                         key, strerror(-r));
                return r;
        }
        if (strcmp(jj.pipeline, p->name) != 0) {
                snprintf(err, errlen,
                         "key '%.256s' names job %lld, a %.64s job, not %s: use another key",
                         key, (long long)latest, jj.pipeline, p->name);
                journal_job_clear(&jj);
                return -EINVAL;
        }
        json_t *kept = json_loads(jj.config, 0, NULL);
        json_t *now = json_loads(config, 0, NULL);
        json_t *diff = cfg_json_diff(kept, now);
        json_decref(kept);
        json_decref(now);
        if (!diff) {
                journal_job_clear(&jj);
                return -ENOMEM;
        }
        if (json_array_size(diff) > 0) {
                struct buf names = { 0 };
                size_t i;
                json_t *v;
                json_array_foreach(diff, i, v)
                        buf_printf(&names, "%s%s", i ? ", " : "", json_string_value(v));
                snprintf(err, errlen,
                         "key '%.128s' names job %lld (%s), submitted with other settings: "
                         "%.200s differ%s; submit with the settings it kept ('etlctl status "
                         "%lld' shows them) or use another key",
                         key, (long long)latest, job_state_name(jj.state),
                         names.data ? names.data : "", json_array_size(diff) == 1 ? "s" : "",
                         (long long)latest);
                buf_free(&names);
                json_decref(diff);
                journal_job_clear(&jj);
                return -EINVAL;
        }
        json_decref(diff);
        if (jj.state == JOB_FAILED || jj.state == JOB_CANCELLED)
                *ret_retry_of = latest;
        else
                *ret_existing = latest;
        journal_job_clear(&jj);
        return 0;
}

/* Whether a target URI carries a password (user:password@host, or a
 * password= parameter): a job's settings are journaled, so it must not. */
static bool uri_has_password(const char *uri)
{
        const char *p = uri ? strstr(uri, "://") : NULL;
        if (!p)
                return false;
        p += 3;
        size_t auth = strcspn(p, "/?#");
        const char *at = memchr(p, '@', auth);
        if (at && memchr(p, ':', (size_t)(at - p)))
                return true;
        return strcasestr(p, "password=") != NULL;
}

/* Submits p with settings and key by uid (engine_submit); retry_of: the job
 * this one runs again when the caller knows it (a retry), else 0. */
static int submit(struct engine *e, const struct pipeline *p, json_t *settings, const char *key,
                  long uid, bool admin, int64_t retry_of, struct engine_submitted *ret, char *err,
                  size_t errlen)
{
        memset(ret, 0, sizeof(*ret));
        struct cfg *c = cfg_dup(e->base);
        if (!c)
                return -ENOMEM;
        int r = settings ? cfg_apply_json(c, settings, err, errlen) : 0;
        if (r < 0) {
                cfg_free(c);
                return r;
        }
        json_t *target = json_object_get(settings, "warehouse.target");
        if (json_is_string(target) && uri_has_password(json_string_value(target))) {
                snprintf(err, errlen,
                         "warehouse.target: a job's settings are kept in the journal, so they "
                         "must not hold a password; set warehouse.password in etld's "
                         "configuration or use a passfile");
                cfg_free(c);
                return -EINVAL;
        }
        /* The job keeps its own settings (secrets left out) so that a resumed
         * job runs with the same values. */
        struct cfg *own = cfg_new();
        char ignored[256];
        if (!own || (settings && cfg_apply_json(own, settings, ignored, sizeof(ignored)) < 0)) {
                cfg_free(own);
                cfg_free(c);
                return -ENOMEM;
        }
        json_t *own_json = cfg_to_json(own, false);
        char *config = json_dumps(own_json, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(own_json);
        cfg_free(own);
        if (!config) {
                cfg_free(c);
                return -ENOMEM;
        }
        int64_t existing = 0, attempt_of = retry_of;
        r = key ? key_rule(e, p, config, key, &existing, &attempt_of, err, errlen) : 0;
        if (r == 0 && retry_of && (existing || attempt_of != retry_of)) {
                /* never, while the attempts under a key form one chain */
                existing = 0;
                snprintf(err, errlen, "job %lld is not the latest attempt under key '%.256s'",
                         (long long)retry_of, key);
                r = -EALREADY;
        }
        if (r < 0 || existing) {
                free(config);
                cfg_free(c);
                if (existing) {
                        struct journal_job jj;
                        ret->job = existing;
                        ret->existing = true;
                        if (journal_job_get(e->j, existing, &jj) == 0) {
                                ret->retry_of = jj.retry_of;
                                journal_job_clear(&jj);
                        }
                }
                return r;
        }
        struct journal_new_job nj = { .config = config, .key = key, .uid = uid,
                                      .admin = admin, .retry_of = attempt_of };
        r = queue_job(e, p, c, &nj, &ret->job);
        free(config);
        if (r < 0) {
                snprintf(err, errlen, "the journal refused the job: %s", strerror(-r));
                return r;
        }
        ret->retry_of = attempt_of;
        if (attempt_of) {
                char msg[160];
                snprintf(msg, sizeof(msg), "a new attempt of job %lld, submitted by uid %ld",
                         (long long)attempt_of, uid);
                journal_event_add(e->j, ret->job, "info", NULL, msg);
                log_info("job", "job=%lld: %s: %s", (long long)ret->job, p->name, msg);
        } else {
                log_info("job", "job=%lld: %s submitted by uid %ld%s", (long long)ret->job, p->name,
                         uid, admin ? " (admin)" : "");
        }
        changed(e);
        schedule(e);
        return 0;
}

int engine_submit(struct engine *e, const char *pipeline, json_t *settings, const char *key,
                  long uid, bool admin, struct engine_submitted *ret, char *err, size_t errlen)
{
        if (e->stopping) {
                snprintf(err, errlen, "etld is stopping; submit again after it restarts");
                return -ESHUTDOWN;
        }
        const struct pipeline *p = pipeline_find(pipeline);
        if (!p) {
                struct buf names = { 0 };
                for (size_t i = 0; pipelines[i]; i++)
                        buf_printf(&names, "%s%s", i ? ", " : "", pipelines[i]->name);
                snprintf(err, errlen, "unknown pipeline '%s' (known: %s)", pipeline,
                         names.data ? names.data : "");
                buf_free(&names);
                return -EINVAL;
        }
        return submit(e, p, settings, key, uid, admin, 0, ret, err, errlen);
}

int engine_retry(struct engine *e, int64_t id, long uid, bool admin, struct engine_submitted *ret,
                 char *err, size_t errlen)
{
        if (e->stopping) {
                snprintf(err, errlen, "etld is stopping; retry after it restarts");
                return -ESHUTDOWN;
        }
        struct journal_job jj;
        int r = journal_job_get(e->j, id, &jj);
        if (r == -ENOENT) {
                snprintf(err, errlen, "no job %lld", (long long)id);
                return r;
        }
        if (r < 0) {
                snprintf(err, errlen, "the journal cannot read job %lld: %s", (long long)id,
                         strerror(-r));
                return r;
        }
        r = -EALREADY;
        if (jj.state == JOB_SUCCEEDED)
                snprintf(err, errlen,
                         "job %lld succeeded: there is nothing to retry; to run %s again, submit "
                         "it",
                         (long long)id, jj.pipeline);
        else if (!job_state_is_final(jj.state))
                snprintf(err, errlen,
                         "job %lld is %s: only a failed or cancelled job can be retried; "
                         "'etlctl watch %lld' follows it, 'etlctl cancel %lld' stops it",
                         (long long)id, job_state_name(jj.state), (long long)id, (long long)id);
        else if (jj.retried_by) {
                /* the chain of attempts is linear: follow it to its end */
                int64_t last = jj.retried_by;
                struct journal_job next;
                while (journal_job_get(e->j, last, &next) == 0) {
                        int64_t after = next.retried_by;
                        journal_job_clear(&next);
                        if (!after)
                                break;
                        last = after;
                }
                snprintf(err, errlen,
                         "job %lld was retried already, as job %lld; its latest attempt is job "
                         "%lld ('etlctl status %lld')",
                         (long long)id, (long long)jj.retried_by, (long long)last,
                         (long long)last);
        } else {
                r = 0;
        }
        const struct pipeline *p = r == 0 ? pipeline_find(jj.pipeline) : NULL;
        if (r == 0 && !p) {
                snprintf(err, errlen, "job %lld's pipeline '%.64s' is unknown to this etld",
                         (long long)id, jj.pipeline);
                r = -EINVAL;
        }
        json_t *settings = r == 0 ? json_loads(jj.config, 0, NULL) : NULL;
        if (r == 0 && !settings)
                r = -ENOMEM;
        if (r == 0)
                r = submit(e, p, settings, jj.key, uid, admin, id, ret, err, errlen);
        json_decref(settings);
        journal_job_clear(&jj);
        return r;
}

/* Journals a queued job (nj without pipeline and steps: p's) and adds it to
 * the list; takes c. */
static int queue_job(struct engine *e, const struct pipeline *p, struct cfg *c,
                     const struct journal_new_job *nj, int64_t *ret_id)
{
        const char *names[64];
        if (p->nsteps > 64) {
                cfg_free(c);
                return -E2BIG;
        }
        for (size_t i = 0; i < p->nsteps; i++)
                names[i] = p->steps[i]->name;
        struct journal_new_job add = *nj;
        add.pipeline = p->name;
        add.steps = names;
        add.nsteps = p->nsteps;
        int r = journal_job_add(e->j, &add, ret_id);
        if (r < 0) {
                cfg_free(c);
                return r;
        }
        if (!job_new(e, *ret_id, p, c, nj->admin, nj->not_before)) {
                cfg_free(c);
                return -ENOMEM;
        }
        return 0;
}

int engine_cancel(struct engine *e, int64_t id, long uid, const char **ret_state, char *err,
                  size_t errlen)
{
        struct job *job = job_find(e, id);
        if (!job) {
                struct journal_job jj;
                int r = journal_job_get(e->j, id, &jj);
                if (r < 0) {
                        snprintf(err, errlen, "no job %lld", (long long)id);
                        return -ENOENT;
                }
                snprintf(err, errlen, "job %lld has already ended (%s)", (long long)id,
                         job_state_name(jj.state));
                journal_job_clear(&jj);
                return -EALREADY;
        }
        journal_job_set_cancel_uid(e->j, id, uid);
        char msg[128];
        snprintf(msg, sizeof(msg), "cancel requested by uid %ld", uid);
        job_log(job, "info", NULL, msg);
        job->cancelling = true;
        if (job->run) {
                job->run->cancel = true;
                job->run->ops->cancel(job->run);
                *ret_state = "cancelling";
                return 0;
        }
        if (job->retry_armed)
                uv_timer_stop(&job->retry);
        job_finish(job, JOB_CANCELLED, "cancelled by request");
        *ret_state = "cancelled";
        return 0;
}

void engine_counts(struct engine *e, unsigned *running, unsigned *queued)
{
        *running = *queued = 0;
        for (struct job *job = e->jobs; job; job = job->next) {
                if (job->running)
                        (*running)++;
                else
                        (*queued)++;
        }
}

json_t *engine_active_ids(struct engine *e)
{
        json_t *ids = json_array();
        for (struct job *job = e->jobs; job; job = job->next)
                json_array_append_new(ids, json_integer(job->id));
        return ids;
}

void engine_stop(struct engine *e, void (*done)(void *userdata), void *userdata)
{
        e->stopping = true;
        e->stopped = done;
        e->stopped_userdata = userdata;
        uv_timer_stop(&e->wake);
        for (struct job *job = e->jobs; job; job = job->next) {
                if (job->retry_armed) {
                        uv_timer_stop(&job->retry);
                        job->retry_armed = false;
                }
                if (job->run) {
                        job->run->cancel = true;
                        job->run->ops->cancel(job->run);
                }
        }
        maybe_stopped(e);
}

void engine_on_change(struct engine *e, void (*fn)(void *userdata), void *userdata)
{
        e->changed = fn;
        e->changed_userdata = userdata;
}
