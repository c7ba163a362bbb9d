/* step.h - one attempt of one step of a job, and what a step may do.
 *
 * A step is a small async unit with start and cancel.  It ends by calling
 * step_done() exactly once, from the loop thread, with 0, -ECANCELED or an
 * error (and a message naming what failed).  A step never touches the server
 * or the journal directly: it reports outputs, events, checks and load errors
 * through the functions below, and the engine records them.
 *
 * A step is a state machine on the loop thread: its I/O is asynchronous
 * (HTTP, the warehouse, sources), and what it sends to libuv's thread pool
 * is pure computation or a short file read, never a wait on the loop.  Its
 * cancel cancels the requests it has outstanding; the step ends when their
 * callbacks came, leaving nothing open. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cfg.h"
#include "load/load.h"
#include "objlist.h"

struct step_run;
struct http_mux;
struct journal;

struct step_ops {
        const char *name;
        const char *description;
        int (*start)(struct step_run *r);   /* 0, or -errno (then no step_done) */
        void (*cancel)(struct step_run *r); /* ask to stop soon; step_done still comes */
};

/* A job a pipeline asks for once one of its jobs succeeded. */
struct pipeline_followup {
        const char *pipeline; /* NULL: none */
        int64_t delay_ms;     /* not to start before this long after the success */
        char why[256];        /* for the events of both jobs, e.g. "provision.ttl = 2h" */
};

struct pipeline {
        const char *name;
        const char *description;
        const struct step_ops *const *steps;
        size_t nsteps;
        /* What to queue after a job succeeded (NULL, or ret->pipeline left
         * NULL: nothing).  c is the job's configuration. */
        void (*followup)(const struct cfg *c, struct pipeline_followup *ret);
};

/* The pipelines etld knows; NULL when the name is unknown. */
const struct pipeline *pipeline_find(const char *name);
extern const struct pipeline *const pipelines[];

/* Everything a step attempt can see.  Owned by the engine. */
struct step_run {
        uv_loop_t *loop;
        int64_t job_id;
        int idx;
        const struct step_ops *ops;
        const struct cfg *cfg;   /* the job's effective configuration */
        bool admin;              /* submitted by an admin; otherwise local files stay
                                    under the roots (authz.h) */
        const char *state_dir;
        struct http_mux *http;   /* the daemon's HTTP engine on `loop` (AWS calls) */
        void *step_data;         /* the step's own state (loop thread) */
        struct journal *journal; /* read-only lookups (provision/teardown: what etld created) */
        bool cancel;             /* set by the engine before ops->cancel (cancel or shutdown) */
        struct load_progress progress; /* counters the engine publishes */
        char progress_text[128]; /* what the step waits for (step_progress_text) */
        uint64_t objects_total, bytes_total; /* how much there is (step_progress_total) */

        /* What the step reported through the verbs below; recorded by the
         * engine when the step ends.  Steps do not touch these directly. */
        json_t *outputs;     /* {"key": "value"} */
        json_t *checks;      /* [{"name","ok","detail"}] */
        json_t *load_errors; /* [{STL_LOAD_ERRORS-like}], the first STEP_LOAD_ERRORS_MAX */
        json_t *events;      /* ["message", ...] informational */
        json_t *published;   /* {"target", "mode"} (step_published) */
        struct objlist published_objects;

        /* how the step ended (step_done) */
        int result;
        bool transient; /* the error may go away on a retry */
        char error[1024];

        void (*done)(struct step_run *r); /* the engine's completion */
        void *owner;
};

/* ---- what a step reports (loop thread); the engine records it in the journal when the step ends,
 * whatever its outcome. ---- */

#define STEP_LOAD_ERRORS_MAX 1000 /* the first thousand tell the story */

/* A value later steps and jobs may read (role ARN, endpoint, mode...);
 * a later call with the same key replaces it.  value NULL: "". */
void step_output(struct step_run *r, const char *key, const char *value);
/* What the step is doing when counters say nothing, e.g. "creating, 4 min"
 * while a cluster is created (loop thread); published with the counters
 * as the progress's "text" (`etlctl status`, `watch`).  NULL: none. */
void step_progress_text(struct step_run *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* How much the step has to do, once it knows (loop thread): the counters'
 * totals, published with them as objects_total and bytes_total, so that
 * `etlctl watch` shows the share done, the rate and the time left.  0: not
 * known. */
void step_progress_total(struct step_run *r, uint64_t objects, uint64_t bytes);
/* An informational line in the job's event log. */
void step_event(struct step_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One quality check's result; the step's checks replace the job's earlier ones. */
void step_check_result(struct step_run *r, const char *name, bool ok, const char *detail);
/* One rejected record (kept up to STEP_LOAD_ERRORS_MAX per attempt). */
void step_load_error(struct step_run *r, const struct load_error *e);
/* The warehouse target was published with these objects (moved out of
 * *objects; NULL: none): the engine records them in the ledger
 * (journal.h); failing that, the step fails as transient. */
void step_published(struct step_run *r, const char *target, const char *mode,
                    struct objlist *objects);

/* Ends the step (loop thread). */
void step_done(struct step_run *r, int result, bool transient, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static inline bool step_cancelled(struct step_run *r)
{
        return r->cancel;
}
