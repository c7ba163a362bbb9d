/* rpc.c - the methods of etld's JSON-RPC protocol.  See rpc.h and the README
 * ("The RPC methods") for the shapes of params and results. */
#include "rpc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "server.h"
#include "step.h"
#include "util.h"

struct method {
        const char *name;
        json_t *(*fn)(struct rpc_env *env, struct conn *c, json_t *id, json_t *params);
        const char *help;
};

/* params.job as a positive integer, or an error reply. */
static int get_job(json_t *id, json_t *params, int64_t *job, json_t **reply)
{
        json_t *v = json_object_get(params, "job");
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                *reply = rpc_make_error(id, RPC_INVALID_PARAMS,
                                        "params.job must be a positive integer job id");
                return -EINVAL;
        }
        *job = json_integer_value(v);
        return 0;
}

static int get_limit(json_t *id, json_t *params, int def, int *limit, json_t **reply)
{
        json_t *v = json_object_get(params, "limit");
        *limit = def;
        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000) {
                *reply = rpc_make_error(id, RPC_INVALID_PARAMS,
                                        "params.limit must be an integer from 1 to 100000");
                return -EINVAL;
        }
        *limit = (int)json_integer_value(v);
        return 0;
}

static json_t *m_ping(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        return rpc_make_result(id, json_pack("{s:b}", "pong", 1));
}

/* The version, and the pipelines this etld runs with their steps: etlctl
 * checks a submit's pipeline name against them (a usage error, before it
 * sends anything else), and the shell completions offer them. */
static json_t *m_version(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        json_t *names = json_array();
        for (size_t i = 0; names && pipelines[i]; i++) {
                json_t *steps = json_array();
                for (size_t j = 0; steps && j < pipelines[i]->nsteps; j++)
                        json_array_append_new(steps, json_string(pipelines[i]->steps[j]->name));
                json_array_append_new(names,
                                      json_pack("{s:s, s:s, s:o}", "name", pipelines[i]->name,
                                                "description", pipelines[i]->description, "steps",
                                                steps ? steps : json_array()));
        }
        return rpc_make_result(id, json_pack("{s:s, s:i, s:o}", "version", ETLD_VERSION, "protocol",
                                             1, "pipelines", names ? names : json_array()));
}

/* The reply to a submit or a retry: {"job", "existing", "state", "retry_of"},
 * or the error that r and err describe. */
static json_t *submitted_reply(struct rpc_env *env, json_t *id, int r,
                               const struct engine_submitted *sub, const char *what,
                               const char *err)
{
        if (r == -EINVAL)
                return rpc_make_error(id, RPC_INVALID_PARAMS, "%s", err);
        if (r == -ENOENT)
                return rpc_make_error(id, RPC_NO_SUCH_JOB, "%s", err);
        if (r == -EALREADY)
                return rpc_make_error(id, RPC_BAD_STATE, "%s", err);
        if (r == -ESHUTDOWN)
                return rpc_make_error(id, RPC_SHUTTING_DOWN, "%s", err);
        if (r < 0)
                return rpc_make_error(id, RPC_INTERNAL_ERROR, "%s failed: %s", what,
                                      err[0] ? err : strerror(-r));
        json_t *status = journal_job_json(env->journal, sub->job);
        json_t *state = json_object_get(status, "state");
        json_t *res = json_pack("{s:I, s:b, s:O, s:o}", "job", (json_int_t)sub->job, "existing",
                                sub->existing, "state", state ? state : json_null(), "retry_of",
                                sub->retry_of ? json_integer(sub->retry_of) : json_null());
        json_decref(status);
        return rpc_make_result(id, res);
}

static json_t *m_submit(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        json_t *pipeline = json_object_get(params, "pipeline");
        json_t *settings = json_object_get(params, "settings");
        json_t *key = json_object_get(params, "key");
        if (!json_is_string(pipeline))
                return rpc_make_error(id, RPC_INVALID_PARAMS,
                                      "params.pipeline must be a string such as \"etl\"");
        if (settings && !json_is_object(settings))
                return rpc_make_error(id, RPC_INVALID_PARAMS,
                                      "params.settings must be an object of \"section.key\": value");
        if (key && !json_is_null(key) &&
            (!json_is_string(key) || !json_string_length(key) || json_string_length(key) > 256))
                return rpc_make_error(id, RPC_INVALID_PARAMS,
                                      "params.key must be a string of 1 to 256 bytes");
        const char *key_s = json_is_string(key) ? json_string_value(key) : NULL;
        struct engine_submitted sub;
        char err[1024] = "";
        bool admin = authz_is_admin(env->authz, conn_peer(c));
        int r = settings ? authz_check_settings(env->authz, admin, settings, err, sizeof(err)) : 0;
        if (r < 0) {
                log_info("rpc", "submit by uid %ld refused: %s", conn_uid(c), err);
                return rpc_make_error(id, RPC_INVALID_PARAMS, "%s", err);
        }
        r = engine_submit(env->engine, json_string_value(pipeline), settings, key_s, conn_uid(c),
                          admin, &sub, err, sizeof(err));
        return submitted_reply(env, id, r, &sub, "submit", err);
}

static json_t *m_retry(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        int64_t job;
        json_t *reply;
        if (get_job(id, params, &job, &reply) < 0)
                return reply;
        struct engine_submitted sub;
        char err[1024] = "";
        bool admin = authz_is_admin(env->authz, conn_peer(c));
        /* A retry runs the job's kept settings again, on the retrier's behalf:
         * they are checked as that user's own submit would be. */
        struct journal_job jj;
        if (journal_job_get(env->journal, job, &jj) == 0) {
                json_t *settings = json_loads(jj.config, 0, NULL);
                char msg[900] = "";
                int r = settings ? authz_check_settings(env->authz, admin, settings, msg,
                                                        sizeof(msg))
                                 : 0;
                json_decref(settings);
                journal_job_clear(&jj);
                if (r < 0) {
                        log_info("rpc", "job=%lld: retry by uid %ld refused: %s", (long long)job,
                                 conn_uid(c), msg);
                        return rpc_make_error(id, RPC_INVALID_PARAMS, "job %lld's settings: %s",
                                              (long long)job, msg);
                }
        }
        int r = engine_retry(env->engine, job, conn_uid(c), admin, &sub, err, sizeof(err));
        if (r == 0)
                log_info("rpc", "job=%lld: retry by uid %ld: job %lld", (long long)job,
                         conn_uid(c), (long long)sub.job);
        return submitted_reply(env, id, r, &sub, "retry", err);
}

static json_t *m_status(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        if (json_object_get(params, "job")) {
                int64_t job;
                json_t *reply;
                if (get_job(id, params, &job, &reply) < 0)
                        return reply;
                json_t *status = journal_job_json(env->journal, job);
                if (!status)
                        return rpc_make_error(id, RPC_NO_SUCH_JOB, "no job %lld", (long long)job);
                return rpc_make_result(id, status);
        }
        unsigned running, queued;
        engine_counts(env->engine, &running, &queued);
        json_t *jobs = json_array();
        json_t *ids = engine_active_ids(env->engine);
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
                json_t *status = journal_job_json(env->journal, json_integer_value(v));
                if (!status)
                        continue;
                json_object_del(status, "config");
                json_object_del(status, "events");
                json_array_append_new(jobs, status);
        }
        json_decref(ids);
        json_t *published = journal_publications_json(env->journal);
        return rpc_make_result(
                id, json_pack("{s:s, s:i, s:I, s:i, s:i, s:b, s:o, s:o}", "version",
                              ETLD_VERSION, "pid", (int)getpid(), "uptime_s",
                              (json_int_t)((util_now_mono_ms() - env->started_mono_ms) / 1000),
                              "running", (int)running, "queued", (int)queued, "stopping",
                              env->stopping, "jobs", jobs, "published",
                              published ? published : json_array()));
}

/* An optional string parameter; NULL when absent. */
static int get_text(json_t *id, json_t *params, const char *name, const char **ret,
                    json_t **reply)
{
        json_t *v = json_object_get(params, name);
        *ret = NULL;
        if (!v)
                return 0;
        if (!json_is_string(v) || !*json_string_value(v)) {
                *reply = rpc_make_error(id, RPC_INVALID_PARAMS,
                                        "params.%s must be a non-empty string", name);
                return -EINVAL;
        }
        *ret = json_string_value(v);
        return 0;
}

static json_t *m_list(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        struct journal_list_filter f = { 0 };
        json_t *reply;
        if (get_limit(id, params, 50, &f.limit, &reply) < 0 ||
            get_text(id, params, "pipeline", &f.pipeline, &reply) < 0 ||
            get_text(id, params, "state", &f.state, &reply) < 0 ||
            get_text(id, params, "key", &f.key, &reply) < 0)
                return reply;
        if (f.state) {
                bool known = false;
                for (int s = 0; s < JOB_STATE_MAX; s++)
                        known = known || strcmp(f.state, job_state_name(s)) == 0;
                if (!known)
                        return rpc_make_error(id, RPC_INVALID_PARAMS,
                                              "params.state '%s' is not a job state (queued, "
                                              "running, succeeded, failed, cancelled)",
                                              f.state);
        }
        json_t *since = json_object_get(params, "since");
        if (since && (!json_is_integer(since) || json_integer_value(since) < 0))
                return rpc_make_error(id, RPC_INVALID_PARAMS,
                                      "params.since must be milliseconds since the epoch");
        f.since_ms = since ? json_integer_value(since) : 0;
        return rpc_make_result(id, json_pack("{s:o}", "jobs", journal_list_json(env->journal, &f)));
}

static json_t *m_logs(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        int64_t job;
        const char *step;
        json_t *reply;
        if (get_job(id, params, &job, &reply) < 0 ||
            get_text(id, params, "step", &step, &reply) < 0)
                return reply;
        struct journal_job jj;
        if (journal_job_get(env->journal, job, &jj) < 0)
                return rpc_make_error(id, RPC_NO_SUCH_JOB, "no job %lld", (long long)job);
        journal_job_clear(&jj);
        return rpc_make_result(id, json_pack("{s:I, s:o}", "job", (json_int_t)job, "events",
                                             journal_events_json(env->journal, job, step)));
}

/* Cancel of a job that has ended: RPC_BAD_STATE, with the job's final state
 * in the error's data ({"state": "succeeded"}) so that etlctl can tell it
 * from other refusals and end like `systemctl stop` of a stopped unit. */
static json_t *ended_error(struct rpc_env *env, json_t *id, int64_t job, const char *err)
{
        json_t *reply = rpc_make_error(id, RPC_BAD_STATE, "%s", err);
        struct journal_job jj;
        if (reply && journal_job_get(env->journal, job, &jj) == 0) {
                json_object_set_new(json_object_get(reply, "error"), "data",
                                    json_pack("{s:s}", "state", job_state_name(jj.state)));
                journal_job_clear(&jj);
        }
        return reply;
}

static json_t *m_cancel(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        int64_t job;
        json_t *reply;
        if (get_job(id, params, &job, &reply) < 0)
                return reply;
        struct journal_job jj;
        if (!authz_is_admin(env->authz, conn_peer(c)) && journal_job_get(env->journal, job, &jj) == 0) {
                long owner = jj.uid;
                journal_job_clear(&jj);
                if (owner != conn_uid(c)) {
                        log_info("rpc", "job=%lld: cancel by uid %ld refused (submitted by uid %ld)",
                                 (long long)job, conn_uid(c), owner);
                        return rpc_make_error(id, RPC_NOT_ALLOWED,
                                              "job %lld was submitted by uid %ld: only that user "
                                              "or an admin (root, etld's own user, "
                                              "daemon.admin_group) may cancel it",
                                              (long long)job, owner);
                }
        }
        const char *state = NULL;
        char err[256];
        int r = engine_cancel(env->engine, job, conn_uid(c), &state, err, sizeof(err));
        if (r == -ENOENT)
                return rpc_make_error(id, RPC_NO_SUCH_JOB, "%s", err);
        if (r == -EALREADY)
                return ended_error(env, id, job, err);
        if (r < 0)
                return rpc_make_error(id, RPC_INTERNAL_ERROR, "cancel failed: %s", strerror(-r));
        log_info("rpc", "job=%lld: cancel by uid %ld", (long long)job, conn_uid(c));
        return rpc_make_result(id, json_pack("{s:I, s:s}", "job", (json_int_t)job, "state", state));
}

static void watch_event(void *userdata, json_t *event)
{
        struct conn *c = userdata;
        json_t *msg = json_pack("{s:s, s:s, s:O}", "jsonrpc", "2.0", "method", "event", "params",
                                event);
        conn_send(c, msg);
        json_decref(msg);
}

static json_t *m_watch(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        int64_t job;
        json_t *reply;
        if (get_job(id, params, &job, &reply) < 0)
                return reply;
        json_t *status = journal_job_json(env->journal, job);
        if (!status)
                return rpc_make_error(id, RPC_NO_SUCH_JOB, "no job %lld", (long long)job);
        const char *state = json_string_value(json_object_get(status, "state"));
        bool ended = strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                     strcmp(state, "cancelled") == 0;
        /* the step running now and its counters, for the client's first frame */
        json_t *result = json_pack("{s:I, s:s}", "job", (json_int_t)job, "state", state);
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(status, "steps"), i, st)
        {
                const char *ss = json_string_value(json_object_get(st, "state"));
                if (ss && strcmp(ss, "running") == 0) {
                        json_object_set(result, "step", json_object_get(st, "name"));
                        if (json_object_get(st, "progress"))
                                json_object_set(result, "progress",
                                                json_object_get(st, "progress"));
                        break;
                }
        }
        reply = rpc_make_result(id, result);
        conn_send(c, reply);
        json_decref(reply);
        if (ended) {
                json_t *ev = json_pack("{s:I, s:s, s:s, s:O}", "job", (json_int_t)job, "kind",
                                       "end", "state", state, "error",
                                       json_object_get(status, "error"));
                watch_event(c, ev);
                json_decref(ev);
        } else {
                struct engine_watch *w = engine_watch(env->engine, job, watch_event, c);
                if (!w || conn_add_watch(c, w) < 0)
                        engine_unwatch(env->engine, w);
        }
        json_decref(status);
        return NULL;
}

static json_t *m_errors(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        int64_t job;
        int limit;
        json_t *reply;
        if (get_job(id, params, &job, &reply) < 0 || get_limit(id, params, 100, &limit, &reply) < 0)
                return reply;
        json_t *status = journal_job_json(env->journal, job);
        if (!status)
                return rpc_make_error(id, RPC_NO_SUCH_JOB, "no job %lld", (long long)job);
        json_decref(status);
        return rpc_make_result(id, json_pack("{s:o}", "errors",
                                             journal_load_errors_json(env->journal, job, limit)));
}

/* ---- backup: a copy of the journal, a page budget per loop turn ---------- */

#define BACKUP_PAGES_PER_TURN 256 /* 1 MiB of 4 KiB pages: a short write per turn */

struct rpc_backup {
        uv_idle_t idle; /* first: the handle's memory is the backup's */
        struct rpc_env *env;
        struct conn *c; /* NULL once the client is gone */
        json_t *id;
        struct journal_backup *jb;
        char path[4096];
        uint64_t started;
        int turns;
};

static void backup_free_cb(uv_handle_t *h)
{
        free(h->data);
}

static void backup_end(struct rpc_backup *b, int r, const char *err)
{
        int copied = 0, total = 0;
        journal_backup_progress(b->jb, &copied, &total);
        journal_backup_free(b->jb, r == 1);
        if (b->c) {
                conn_clear_later(b->c);
                json_t *reply;
                if (r == 1)
                        reply = rpc_make_result(
                            b->id, json_pack("{s:s, s:i, s:i, s:I}", "file", b->path, "pages",
                                             total, "turns", b->turns, "ms",
                                             (json_int_t)(util_now_mono_ms() - b->started)));
                else
                        reply = rpc_make_error(b->id, RPC_INTERNAL_ERROR, "%s",
                                               err ? err : "backup abandoned");
                conn_send(b->c, reply);
                json_decref(reply);
        }
        if (r == 1)
                log_info("rpc", "journal backup written to '%s' (%d pages, %d loop turns)", b->path,
                         total, b->turns);
        else
                log_warning("rpc", "journal backup to '%s' failed: %s", b->path,
                            err ? err : "the client went away");
        json_decref(b->id);
        b->env->backup = NULL;
        uv_idle_stop(&b->idle);
        uv_close((uv_handle_t *)&b->idle, backup_free_cb);
}

static void backup_turn(uv_idle_t *h)
{
        struct rpc_backup *b = h->data;
        char err[512] = "";
        b->turns++;
        int r = b->c ? journal_backup_step(b->jb, BACKUP_PAGES_PER_TURN, err, sizeof(err)) : -1;
        if (r != 0)
                backup_end(b, r, b->c ? err : NULL);
}

static void backup_client_gone(void *userdata)
{
        struct rpc_backup *b = userdata;
        b->c = NULL; /* the next turn ends it and removes the partial file */
}

static bool privileged(const struct conn *c)
{
        long uid = conn_uid(c);
        return uid == 0 || uid == (long)geteuid();
}

static json_t *m_backup(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        const char *file = json_string_value(json_object_get(params, "file"));
        if (!file || file[0] != '/' || strlen(file) >= sizeof(((struct rpc_backup *)0)->path))
                return rpc_make_error(id, RPC_INVALID_PARAMS,
                                      "params.file must be the absolute path of a new file");
        if (!privileged(c))
                return rpc_make_error(id, RPC_NOT_ALLOWED,
                                      "backup writes a file as etld's user: only root and "
                                      "etld's own uid %ld may ask for one (you are uid %ld)",
                                      (long)geteuid(), conn_uid(c));
        if (env->stopping)
                return rpc_make_error(id, RPC_SHUTTING_DOWN, "etld is stopping");
        if (env->backup)
                return rpc_make_error(id, RPC_BAD_STATE,
                                      "a backup is being written already (to '%s'); try again "
                                      "when it is done",
                                      env->backup->path);
        struct rpc_backup *b = calloc(1, sizeof(*b));
        if (!b)
                return rpc_make_error(id, RPC_INTERNAL_ERROR, "out of memory");
        char err[512] = "";
        int r = journal_backup_start(env->journal, file, &b->jb, err, sizeof(err));
        if (r < 0) {
                free(b);
                return rpc_make_error(id, r == -ENOMEM ? RPC_INTERNAL_ERROR : RPC_INVALID_PARAMS,
                                      "%s", err[0] ? err : strerror(-r));
        }
        snprintf(b->path, sizeof(b->path), "%s", file);
        b->env = env;
        b->c = c;
        b->id = json_incref(id ? id : json_null());
        b->started = util_now_mono_ms();
        uv_idle_init(env->loop, &b->idle);
        b->idle.data = b;
        conn_set_later(c, backup_client_gone, b);
        env->backup = b;
        uv_idle_start(&b->idle, backup_turn);
        return NULL; /* answered when the copy is complete */
}

static json_t *m_metrics(struct rpc_env *env, struct conn *c, json_t *id, json_t *params)
{
        unsigned running, queued;
        engine_counts(env->engine, &running, &queued);
        struct buf b = { 0 };
        if (metrics_text(env->journal, running, queued, &b) < 0) {
                buf_free(&b);
                return rpc_make_error(id, RPC_INTERNAL_ERROR, "out of memory");
        }
        json_t *reply = rpc_make_result(id, json_pack("{s:s}", "text", b.data ? b.data : ""));
        buf_free(&b);
        return reply;
}

static const struct method methods[] = {
    {"ping", m_ping, "answers {\"pong\": true}"},
    {"version", m_version, "etld's version and protocol"},
    {"submit", m_submit, "queue a pipeline run"},
    {"status", m_status, "a job, or the daemon"},
    {"list", m_list, "recent jobs"},
    {"cancel", m_cancel, "cancel a job"},
    {"retry", m_retry, "run a failed or cancelled job again"},
    {"watch", m_watch, "stream a job's events"},
    {"errors", m_errors, "a job's load errors"},
    {"logs", m_logs, "a job's event log"},
    {"metrics", m_metrics, "counters in the Prometheus text format"},
    {"backup", m_backup, "a consistent copy of the journal into a new file"},
};

void rpc_handle(struct rpc_env *env, struct conn *c, json_t *req)
{
        const char *name = json_string_value(json_object_get(req, "method"));
        json_t *id = json_object_get(req, "id");
        json_t *params = json_object_get(req, "params");
        json_t *reply = NULL;
        if (params && !json_is_object(params)) {
                reply = rpc_make_error(id, RPC_INVALID_PARAMS,
                                       "params must be an object (named parameters)");
        } else {
                json_t *empty = NULL;
                if (!params)
                        params = empty = json_object();
                const struct method *m = NULL;
                for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
                        if (strcmp(methods[i].name, name) == 0)
                                m = &methods[i];
                if (!m) {
                        char known[256] = "";
                        size_t off = 0;
                        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
                                off += (size_t)snprintf(known + off, sizeof(known) - off,
                                                        "%s%s", i ? ", " : "", methods[i].name);
                        reply = rpc_make_error(id, RPC_METHOD_NOT_FOUND,
                                               "unknown method '%s' (known: %s)", name, known);
                }
                else
                        reply = m->fn(env, c, id, params);
                json_decref(empty);
        }
        if (reply && id) /* notifications get no reply */
                conn_send(c, reply);
        json_decref(reply);
}
