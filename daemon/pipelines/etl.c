/* etl.c - the steps of the etl pipeline on a SQL warehouse: create-tables,
 * load, transform, check, publish (write, audit, publish: the published star
 * tables change only in the last step, in one transaction).
 *
 * Each step's SQL lives in sql/<dialect>/ (create_tables.sql, copy.sql,
 * transform.sql, check.sql, publish.sql); this file only decides how it
 * runs.  Every step is a state machine on the loop thread: its warehouse
 * connection is asynchronous (wh.h), each operation's callback says what
 * comes next (`call(s, next, wh_...(...))`), and the pool only runs short
 * jobs that read files (the password file, the sql/ files, the roots'
 * realpath, the manifests).  Cancel is one thing: the step cancels what it
 * has outstanding (wh_cancel on its connection, load_cancel on its COPY,
 * the S3 requests tagged with the step, the planning's listings), and ends
 * once their callbacks came and wh_close said the connection is gone.
 *
 * Exactly once: create-tables and transform each run in one transaction and
 * are idempotent by themselves (drop/create; delete/insert).  The load step
 * first plans the objects it reads (etlplan.h: all, or in etl.mode =
 * incremental those the journal's ledger lacks), keeps the plan in the
 * warehouse and reads each source through a manifest of it; then it runs
 * each COPY in its own transaction together with a row in etld_copies
 * naming the job and statement; on a resumed job the plan is read back, a
 * COPY whose row exists is skipped, and one interrupted before its commit
 * was rolled back and runs again whole, as on Redshift.  Publish runs
 * publish.sql with the job's etld_publishes row in one transaction, or finds
 * that row after a crash; then the engine records the plan's objects in the
 * journal's ledger (step_published).
 *
 * On SQLite and PostgreSQL a COPY is carried out by the emulator
 * (load_start, load.h) on the step's connection.  Redshift (warehouse.target
 * redshift://... or just "redshift"): the same files from sql/redshift/,
 * over libpq; Redshift's COPY reads S3 itself, so the load step sends each
 * COPY statement as it is (in its transaction with its etld_copies row),
 * then pg_last_copy_count(); when one fails, the rows of STL_LOAD_ERRORS for
 * it (wh_load_errors()) become the job's load errors, as the emulator's do;
 * its manifests go to the project bucket ([stage] bucket, etld/manifests/)
 * before the COPYs and are deleted after them.  Before a step's work, on
 * the loop thread, prepare() settles what the journal may supply: a Redshift
 * target without a host connects to the endpoint, port, database and master
 * user the latest provision job recorded; an empty [iam] role_arn becomes
 * that job's role; the password is [warehouse] password, else the master
 * password ([cluster] db_password_file or the systemd credential).
 *
 * s3:// sources: when any [s3] source is on S3, the load step first resolves
 * the AWS credentials (awsenv.h) and makes an S3 client on the daemon's
 * HTTP engine; the planning lists and the COPY reads through it
 * (source_s3.h), every request tagged with the step. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "awsenv.h"
#include "confine.h"
#include "etlplan.h"
#include "journal.h"
#include "load/copy.h"
#include "load/source_s3.h"
#include "log.h"
#include "pipelines.h"
#include "secret.h"
#include "sqlfile.h"
#include "util.h"
#include "warehouse/wh.h"

struct etl_step;
typedef void (*etl_fn)(struct etl_step *s, const struct wh_result *res);
typedef void (*etl_then)(struct etl_step *s);

/* A step's state (r->step_data), made on the loop thread by prepare(). */
struct etl_step {
        struct step_run *r;
        char *target;         /* warehouse URI, NULL: the default SQLite warehouse */
        char *password;       /* secret, or NULL */
        bool redshift;        /* the target is a redshift:// one */
        bool master_password; /* read the cluster's master password when connecting */
        struct cfg *cfg;      /* the job's configuration with what the journal supplied */
        /* set up by a pool job (files): the roots a job that is not an
         * admin's stays in (NULL for an admin's), the master password */
        struct confine *wh_roots, *data_roots, *load_roots;
        char *master; /* secret, until the connection is made */
        /* the warehouse connection, and the continuation of its running operation */
        struct wh *w;
        const char *dialect; /* wh_dialect(w), for the pool jobs */
        etl_then after_open; /* what runs once the connection object exists */
        etl_fn next;
        /* the pool job running, its result and what comes after it */
        uv_work_t work;
        int (*work_fn)(struct etl_step *s, char *err, size_t errlen);
        etl_then work_then;
        bool working;
        int work_res;
        char work_msg[1024];
        /* how a failure goes on: finish(), or the load step's cleanup */
        void (*fail)(struct etl_step *s, int err, bool transient, const char *msg);
        bool cancelled, finishing;
        bool cleaning; /* the load step removes its manifests */
        int result;
        bool transient;
        char msg[1024];
        /* a step's SQL file, split */
        const char *file;
        char *sql;
        char **stmts;
        size_t n, i;
        /* check */
        size_t failed;
        char first_failed[256], first_detail[512];
        /* publish */
        bool published_before;
        /* the load step's S3 side, for s3:// sources */
        struct awsenv *env;
        struct s3_client *client;
        struct source_ctx *ctx;
        struct source_env source_env;
        /* write, audit, publish */
        char *ledger_target;          /* the warehouse as the ledger names it */
        struct etlplan_ledger ledger; /* the load step's copy of the journal's */
        struct etl_plan *plan;        /* the objects the load step reads */
        struct etlplan_req *planning; /* while planning */
        /* the COPYs */
        struct load_request req;
        struct load *load;    /* while the emulator runs one */
        uint64_t rows_before; /* progress.rows before the running COPY */
        int load_result;      /* the COPYs' result, kept while cleaning up */
        bool load_transient;
        char load_msg[1024];
        /* Redshift: a COPY's progress from STV_LOAD_STATE, read on a second
         * connection while the COPY runs on the first (rs_watch_*) */
        struct wh *mon_w;
        uv_timer_t *mon_timer;
        long long copy_pid;   /* the COPY session's pg_backend_pid(); 0: not known */
        bool mon_querying;
        uint64_t bytes_before; /* progress.bytes before the running COPY */
        /* Redshift: the manifests put on S3 (stage.bucket, etld/manifests/) */
        char *manifest_key[ETLPLAN_SOURCES];
        char *manifest_text[ETLPLAN_SOURCES]; /* bodies, borrowed by the puts */
        unsigned s3_pending;                  /* PutObject/DeleteObjects in flight */
        int s3_err;                           /* the first failure */
        char s3_msg[512];
};

static struct etl_step *st(struct step_run *r)
{
        return r->step_data;
}

static const struct cfg *job_cfg(struct step_run *r)
{
        return st(r) && st(r)->cfg ? st(r)->cfg : r->cfg;
}

static void etl_step_free(struct step_run *r)
{
        struct etl_step *s = r->step_data;
        if (!s)
                return;
        source_s3_ctx_free(s->ctx);
        s3_client_free(s->client);
        awsenv_free(s->env);
        etlplan_free(s->plan);
        for (int i = 0; i < ETLPLAN_SOURCES; i++) {
                free(s->manifest_key[i]);
                free(s->manifest_text[i]);
        }
        objlist_free(&s->ledger.objects);
        confine_free(s->wh_roots);
        confine_free(s->data_roots);
        confine_free(s->load_roots);
        secret_free(s->master);
        sqlfile_free_list(s->stmts);
        free(s->sql);
        free(s->ledger_target);
        free(s->target);
        secret_free(s->password);
        cfg_free(s->cfg);
        free(s);
        r->step_data = NULL;
}

/* Does target name Redshift without a host ("redshift", "redshift://",
 * "redshift://?sslrootcert=...")?  Then *params points at its "?..." part. */
static bool redshift_without_host(const char *target, const char **params)
{
        if (!target)
                return false;
        if (strcmp(target, "redshift") == 0) {
                *params = "";
                return true;
        }
        if (strncmp(target, "redshift://", 11) != 0)
                return false;
        const char *rest = target + 11;
        if (*rest == '/') /* redshift:///dev?... : the database is the cluster's too */
                rest += strcspn(rest, "?");
        if (*rest != '\0' && *rest != '?')
                return false;
        *params = rest;
        return true;
}

/* warehouse.target "redshift" without a host: the cluster the latest
 * provision job made available, unless a teardown deleted it since. */
static int provisioned_target(struct step_run *r, const char *params, char **ret, char *err,
                              size_t errlen)
{
        int64_t job = 0, gone_job = 0;
        char *host =
            r->journal ? journal_output_latest(r->journal, "provision", "endpoint", &job) : NULL;
        if (!host || !*host) {
                free(host);
                util_setf(err, errlen,
                          "warehouse.target = redshift gives no host and no provision job has "
                          "recorded a cluster endpoint: run `etlctl submit provision --wait` "
                          "first, or give the host (redshift://user@host:5439/dev)");
                return -ENOENT;
        }
        char *origin = journal_output_latest(r->journal, NULL, "cluster_origin", &gone_job);
        bool deleted = origin && strcmp(origin, "deleted") == 0 && gone_job > job;
        free(origin);
        if (deleted) {
                util_setf(err, errlen,
                          "warehouse.target = redshift: the cluster provision job %lld made "
                          "(%s) was deleted by teardown job %lld",
                          (long long)job, host, (long long)gone_job);
                free(host);
                return -ENOENT;
        }
        char *port = journal_output_get(r->journal, job, "port");
        char *db = journal_output_get(r->journal, job, "database");
        char *user = journal_output_get(r->journal, job, "db_user");
        struct buf b = {0};
        int res = buf_printf(&b, "redshift://%s%s%s:%s/%s%s", user && *user ? user : "",
                             user && *user ? "@" : "", host, port && *port ? port : "5439",
                             db && *db ? db : "dev", params);
        free(host);
        free(port);
        free(db);
        free(user);
        if (res < 0) {
                buf_free(&b);
                return res;
        }
        log_info("etl", "job %lld: warehouse is the cluster of provision job %lld: %s",
                 (long long)r->job_id, (long long)job, b.data);
        *ret = b.data;
        return 0;
}

/* Sets a value of the step's own copy of the job's configuration. */
static int supply(struct step_run *r, const char *dotted, const char *value, char *err,
                  size_t errlen)
{
        struct etl_step *s = st(r);
        if (!s->cfg && !(s->cfg = cfg_dup(r->cfg)))
                return -ENOMEM;
        return cfg_set(s->cfg, dotted, value ? value : "", err, errlen);
}

/* The region the latest stage job recorded for the project bucket, when
 * [s3] log_data is in that bucket; else NULL. */
static char *sources_bucket_region(struct step_run *r)
{
        if (!r->journal)
                return NULL;
        int64_t job = 0;
        char *bucket = journal_output_latest(r->journal, "stage", "bucket", &job);
        const char *src = cfg_get(r->cfg, "s3", "log_data");
        char *region = NULL;
        if (bucket && *bucket && src && strncmp(src, "s3://", 5) == 0 &&
            strncmp(src + 5, bucket, strlen(bucket)) == 0 &&
            (src[5 + strlen(bucket)] == '/' || src[5 + strlen(bucket)] == '\0'))
                region = journal_output_get(r->journal, job, "bucket_region");
        free(bucket);
        return region;
}

/* ---- the driver: ending, warehouse operations, pool jobs ---- */

static void closed(void *ud)
{
        struct etl_step *s = ud;
        struct step_run *r = s->r;
        int result = s->result;
        bool transient = s->transient;
        if (result < 0 && step_cancelled(r)) { /* cancelled while the connection closed */
                result = -ECANCELED;
                transient = false;
        }
        char msg[sizeof(s->msg)];
        util_setf(msg, sizeof(msg), "%s", s->msg);
        etl_step_free(r);
        step_done(r, result, transient, msg[0] ? "%s" : NULL, msg);
}

static void rs_watch_stop(struct etl_step *s);

static void close_main(struct etl_step *s)
{
        struct wh *w = s->w;
        s->w = NULL;
        if (w)
                wh_close(w, closed, s);
        else
                closed(s);
}

static void mon_closed(void *ud)
{
        close_main(ud);
}

/* ---- Redshift: a COPY's progress from the cluster ----
 *
 * Redshift's COPY reads S3 itself, so nothing moves on etld's side until it
 * ends.  While one runs, a second connection (opened with the first, used
 * only for this) reads every RS_PROGRESS_MS what STV_LOAD_STATE says of the
 * COPY's session: bytes loaded and lines, summed over the slices (the COPY
 * updates them every million records; "STV_LOAD_STATE" page).  The session
 * is the COPY connection's pg_backend_pid(), asked once before its first
 * COPY.  Best effort: a failed read only stops the monitoring. */

#define RS_PROGRESS_MS 2000
#define RS_LOAD_STATE                                                                              \
        "SELECT COALESCE(SUM(bytes_loaded), 0), COALESCE(SUM(lines), 0) FROM stv_load_state "     \
        "WHERE session = %lld"

static void timer_free(uv_handle_t *h)
{
        free(h);
}

static void rs_watch_stop(struct etl_step *s)
{
        if (s->mon_timer) {
                uv_close((uv_handle_t *)s->mon_timer, timer_free);
                s->mon_timer = NULL;
        }
}

static long long int_at(const struct wh_result *res, size_t col);

static void rs_watched(struct wh *w, const struct wh_result *res, void *ud)
{
        struct etl_step *s = ud;
        s->mon_querying = false;
        if (res->err < 0) {
                if (res->err != -ECANCELED)
                        log_debug("etl", "job %lld: cannot read stv_load_state: %s",
                                  (long long)s->r->job_id, res->msg);
                rs_watch_stop(s);
                return;
        }
        if (!s->mon_timer) /* the COPY ended meanwhile: its own counts win */
                return;
        long long bytes = int_at(res, 0), lines = int_at(res, 1);
        atomic_store(&s->r->progress.bytes, s->bytes_before + (uint64_t)(bytes > 0 ? bytes : 0));
        atomic_store(&s->r->progress.rows, s->rows_before + (uint64_t)(lines > 0 ? lines : 0));
}

static void rs_watch_tick(uv_timer_t *t)
{
        struct etl_step *s = t->data;
        if (s->mon_querying || !s->mon_w || s->copy_pid <= 0)
                return;
        char sql[256];
        util_setf(sql, sizeof(sql), RS_LOAD_STATE, s->copy_pid);
        if (wh_query(s->mon_w, sql, rs_watched, s) == 0)
                s->mon_querying = true;
}

static void rs_watch_start(struct etl_step *s)
{
        if (!s->mon_w || s->copy_pid <= 0 || s->mon_timer)
                return;
        s->bytes_before = atomic_load(&s->r->progress.bytes);
        s->mon_timer = malloc(sizeof(*s->mon_timer));
        if (!s->mon_timer)
                return;
        uv_timer_init(s->r->loop, s->mon_timer);
        s->mon_timer->data = s;
        uv_timer_start(s->mon_timer, rs_watch_tick, RS_PROGRESS_MS, RS_PROGRESS_MS);
}

/* Ends the step: closes the connection (which rolls back what is open) and
 * reports once it is gone.  Called when nothing else of the step is
 * outstanding. */
static void finish(struct etl_step *s, int result, bool transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void finish(struct etl_step *s, int result, bool transient, const char *fmt, ...)
{
        if (s->finishing)
                return;
        s->finishing = true;
        if (result < 0 && s->cancelled)
                result = -ECANCELED;
        /* Busy warehouses and full disks may clear; bad SQL or data will not. */
        s->transient = result < 0 && result != -ECANCELED &&
                       (transient || result == -EBUSY || result == -EAGAIN || result == -ENOSPC);
        s->result = result;
        if (result == -ECANCELED) {
                util_setf(s->msg, sizeof(s->msg), "cancelled");
        } else if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
                va_end(ap);
        }
        rs_watch_stop(s);
        struct wh *mon = s->mon_w;
        s->mon_w = NULL;
        if (mon) {
                wh_close(mon, mon_closed, s); /* then the COPY's connection */
                return;
        }
        close_main(s);
}

static void fail_finish(struct etl_step *s, int err, bool transient, const char *msg)
{
        finish(s, err, transient, "%s", msg);
}

static void on_wh(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct etl_step *s = ud;
        if (res->err == -ECANCELED || (res->err < 0 && s->cancelled)) {
                s->fail(s, -ECANCELED, false, "cancelled");
                return;
        }
        s->next(s, res);
}

/* After queueing a warehouse operation with on_wh and s (rc: what the
 * queueing returned): next gets its result (which it checks); a refusal
 * fails the step.  The callback never comes before the call returns. */
static void call(struct etl_step *s, etl_fn next, int rc)
{
        s->next = next;
        if (rc < 0) {
                char msg[256];
                util_setf(msg, sizeof(msg), "cannot queue a statement on the warehouse: %s",
                          strerror(-rc));
                s->fail(s, rc, false, msg);
        }
}

static void work_cb(uv_work_t *w)
{
        struct etl_step *s = w->data;
        s->work_msg[0] = '\0';
        s->work_res = s->work_fn(s, s->work_msg, sizeof(s->work_msg));
}

static void after_work_cb(uv_work_t *w, int status)
{
        struct etl_step *s = w->data;
        s->working = false;
        if (status == UV_ECANCELED) {
                s->fail(s, -ECANCELED, false, "cancelled");
                return;
        }
        s->work_then(s);
}

/* Runs fn on the thread pool (files only), then then() on the loop, which
 * looks at s->work_res and s->work_msg. */
static void pool(struct etl_step *s, int (*fn)(struct etl_step *s, char *err, size_t errlen),
                 etl_then then)
{
        s->work_fn = fn;
        s->work_then = then;
        s->work.data = s;
        int rc = uv_queue_work(s->r->loop, &s->work, work_cb, after_work_cb);
        if (rc < 0) {
                char msg[256];
                util_setf(msg, sizeof(msg), "cannot queue a pool job: %s", uv_strerror(rc));
                s->fail(s, rc, false, msg);
                return;
        }
        s->working = true;
}

/* The step's cancel: every outstanding request is cancelled, and the step
 * ends when their callbacks came. */
static void etl_cancel(struct step_run *r)
{
        struct etl_step *s = st(r);
        if (!s || s->cancelled || s->finishing)
                return;
        s->cancelled = true;
        if (s->working && !s->cleaning)
                uv_cancel((uv_req_t *)&s->work); /* fails when it runs: then it ends soon */
        if (s->planning)
                etlplan_cancel(s->planning);
        if (s->load)
                load_cancel(s->load);
        if (s->w)
                wh_cancel(s->w);
        if (s->mon_w)
                wh_cancel(s->mon_w);
        if (s->ctx)
                source_s3_ctx_cancel(s->ctx); /* the sources' requests, and later ones */
        if (s->client)
                s3_cancel_tag(s->client, s);
}

/* The folders a job that is not an admin's may use (NULL for an admin's):
 * checked again as each file is opened, since the names may have changed
 * since the job was submitted.  Pool job (realpath). */
static int job_roots(struct step_run *r, enum authz_roots which, struct confine **ret, char *err,
                     size_t errlen)
{
        *ret = NULL;
        return r->admin ? 0 : authz_roots(r->cfg, r->state_dir, which, false, ret, err, errlen);
}

/* Pool job: what opening the warehouse needs from files. */
static int setup_work(struct etl_step *s, char *err, size_t errlen)
{
        struct step_run *r = s->r;
        int res =
            s->master_password ? secret_db_password(r->cfg, false, &s->master, err, errlen) : 0;
        if (res == 0)
                res = job_roots(r, AUTHZ_WAREHOUSE_ROOTS, &s->wh_roots, err, errlen);
        if (res == 0 && r->ops == &step_load)
                res = job_roots(r, AUTHZ_DATA_ROOTS, &s->data_roots, err, errlen);
        return res;
}

static void setup_done(struct etl_step *s)
{
        if (s->work_res < 0) {
                s->fail(s, s->work_res, false, s->work_msg);
                return;
        }
        if (s->cancelled) {
                s->fail(s, -ECANCELED, false, "cancelled");
                return;
        }
        struct wh_params p = {
            .uri = s->target,
            .state_dir = s->r->state_dir,
            .loop = s->r->loop,
            .password = s->master ? s->master : s->password,
            .roots = s->wh_roots,
        };
        char err[512] = "";
        int res = wh_open(&p, &s->w, err, sizeof(err));
        /* Redshift's load: a second connection reads the COPYs' progress (it
         * connects with its first query, during the first COPY) */
        if (res == 0 && s->redshift && s->r->ops == &step_load &&
            wh_open(&p, &s->mon_w, err, sizeof(err)) < 0)
                s->mon_w = NULL;
        s->master = secret_free(s->master); /* wh_open copied it */
        if (res < 0) {
                s->w = NULL;
                s->fail(s, res, false, err);
                return;
        }
        s->dialect = wh_dialect(s->w);
        s->after_open(s);
}

/* Opens the warehouse (after the pool job that reads what it needs), then
 * then(s) on the loop. */
static void open_wh(struct etl_step *s, etl_then then)
{
        s->after_open = then;
        pool(s, setup_work, setup_done);
}

/* Pool job: the step's SQL file, split into statements. */
static int sql_work(struct etl_step *s, char *err, size_t errlen)
{
        int res = sqlfile_load(job_cfg(s->r), s->dialect, s->file, &s->sql, err, errlen);
        if (res == 0)
                res = sqlfile_split(s->sql, &s->stmts, &s->n);
        if (res == -ENOMEM && !err[0])
                util_setf(err, errlen, "out of memory reading %s", s->file);
        return res;
}

/* Settles, on the loop thread, what the step's work needs from the journal:
 * the target, where the password comes from, the COPY role and region. */
static int prepare(struct step_run *r, char *err, size_t errlen)
{
        struct etl_step *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r->step_data = s;
        s->r = r;
        s->fail = fail_finish;
        const char *target = cfg_get(r->cfg, "warehouse", "target");
        const char *params = NULL;
        int res = 0;
        if (redshift_without_host(target, &params))
                res = provisioned_target(r, params, &s->target, err, errlen);
        else if (target && *target && !(s->target = strdup(target)))
                res = -ENOMEM;
        bool redshift = s->redshift = s->target && strncmp(s->target, "redshift://", 11) == 0;
        const char *pw = cfg_get(r->cfg, "warehouse", "password");
        if (res == 0 && pw && *pw && !(s->password = strdup(pw)))
                res = -ENOMEM;
        /* a file: read by the worker that connects, not on the loop */
        s->master_password = redshift && !s->password;
        const char *arn = cfg_get(r->cfg, "iam", "role_arn");
        if (res == 0 && (!arn || !*arn) && r->journal) {
                char *pa = journal_output_latest(r->journal, "provision", "role_arn", NULL);
                if (pa && *pa)
                        res = supply(r, "iam.role_arn", pa, err, errlen);
                free(pa);
        }
        const char *region = cfg_get(r->cfg, "s3", "region");
        if (res == 0 && (!region || !*region)) {
                char *br = sources_bucket_region(r);
                res =
                    supply(r, "s3.region", br ? br : cfg_get(r->cfg, "aws", "region"), err, errlen);
                free(br);
        }
        if (res == 0 && s->target)
                s->ledger_target = strdup(s->target);
        else if (res == 0 &&
                 asprintf(&s->ledger_target, "sqlite://%s/warehouse.db", r->state_dir) < 0)
                s->ledger_target = NULL;
        if (res == 0 && !s->ledger_target)
                res = -ENOMEM;
        /* after the load step: the mode it decided (an incremental run may
         * have fallen back to a full one) */
        char *mode =
            res == 0 && r->journal ? journal_output_get(r->journal, r->job_id, "mode") : NULL;
        if (mode && *mode)
                res = supply(r, "etl.mode", mode, err, errlen);
        free(mode);
        if (res == 0 && redshift && !*cfg_get(job_cfg(r), "iam", "role_arn")) {
                util_setf(err, errlen,
                          "[iam] role_arn is empty and no provision job recorded a role: "
                          "Redshift's COPY needs a role that can read the S3 sources");
                res = -EINVAL;
        }
        if (res < 0)
                etl_step_free(r);
        return res;
}

/* Trouble that outlasted the S3 client's own retries may pass: the network,
 * or a retryable answer (5xx, throttling) that the client gave up on, which
 * its message says ("..., giving up after N attempts"). */
static bool s3_transient(int res, const char *err)
{
        return res == -ETIMEDOUT || res == -ECONNRESET || res == -ECONNREFUSED ||
               res == -ECONNABORTED || res == -EHOSTUNREACH || res == -ENETUNREACH ||
               res == -EPIPE || (res == -EREMOTEIO && strstr(err, "giving up after"));
}

/* Redshift: s3://BUCKET/etld/manifests/job-N-SOURCE.manifest */
static int manifest_names(struct step_run *r, const char *bucket)
{
        struct etl_step *s = st(r);
        for (int i = 0; i < ETLPLAN_SOURCES; i++) {
                free(s->manifest_key[i]);
                free(s->plan->manifest[i]);
                s->plan->manifest[i] = NULL;
                if (asprintf(&s->manifest_key[i], "etld/manifests/job-%lld-%s.manifest",
                             (long long)r->job_id, etlplan_sources[i]) < 0) {
                        s->manifest_key[i] = NULL;
                        return -ENOMEM;
                }
                if (asprintf(&s->plan->manifest[i], "s3://%s/%s", bucket, s->manifest_key[i]) < 0) {
                        s->plan->manifest[i] = NULL;
                        return -ENOMEM;
                }
        }
        return 0;
}

/* STL_LOAD_ERRORS' text columns are CHAR(n): blank-padded. */
static const char *rtrim(json_t *v, char *buf, size_t size)
{
        if (!json_is_string(v))
                return "";
        size_t n = json_string_length(v);
        const char *t = json_string_value(v);
        while (n > 0 && t[n - 1] == ' ')
                n--;
        util_setf(buf, size, "%.*s", (int)n, t);
        return buf;
}

/* Whether a COPY statement has the MANIFEST option. */
static bool copy_reads_manifest(const char *stmt)
{
        struct copy_stmt *cs = NULL;
        char e[256];
        bool yes = copy_parse(stmt, &cs, e, sizeof(e)) == 0 && cs->manifest;
        copy_stmt_free(cs);
        return yes;
}

static bool uses_s3(const struct cfg *c)
{
        static const char *const keys[] = {"song_data", "log_data", "log_jsonpath"};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const char *v = cfg_get(c, "s3", keys[i]);
                if (v && strncmp(v, "s3://", 5) == 0)
                        return true;
        }
        return false;
}

/* Column col of a query's first row as an integer (a string is parsed: libpq's
 * text results); 0 when missing or not a number. */
static long long int_at(const struct wh_result *res, size_t col)
{
        json_t *v = json_array_get(json_array_get(res->rows, 0), col);
        long long n = 0;
        if (json_is_string(v))
                return util_parse_ll(json_string_value(v), &n) == 0 ? n : 0;
        return (long long)json_integer_value(v);
}

static long long first_int(const struct wh_result *res)
{
        return int_at(res, 0);
}

/* Prepares (loop thread), then opens the warehouse and goes on with then;
 * a preparation error ends the step at once with its message. */
static int start_step(struct step_run *r, const char *file, etl_then then)
{
        char msg[1024];
        int res = prepare(r, msg, sizeof(msg));
        if (res < 0) {
                step_done(r, res, false, "%s", msg);
                return 0;
        }
        st(r)->file = file;
        open_wh(st(r), then);
        return 0;
}

/* ---- create-tables, transform: a whole SQL file in one transaction ---- */

/* The transaction is rolled back by wh_close in finish(). */
static void script_failed(struct etl_step *s, const struct wh_result *res)
{
        finish(s, res->err, false, "%s/%s: %s", wh_dialect(s->w), s->file, res->msg);
}

static void script_committed(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                script_failed(s, res);
                return;
        }
        finish(s, 0, false, NULL);
}

static void script_ran(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                script_failed(s, res);
                return;
        }
        call(s, script_committed, wh_commit(s->w, on_wh, s));
}

static void script_begun(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                finish(s, res->err, false, "%s", res->msg);
                return;
        }
        call(s, script_ran, wh_exec(s->w, s->sql, on_wh, s));
}

static void script_read(struct etl_step *s)
{
        if (s->work_res < 0) {
                finish(s, s->work_res, false, "%s", s->work_msg);
                return;
        }
        call(s, script_begun, wh_begin(s->w, on_wh, s));
}

static void script_open(struct etl_step *s)
{
        pool(s, sql_work, script_read);
}

static int start_create_tables(struct step_run *r)
{
        return start_step(r, "create_tables.sql", script_open);
}

static int start_transform(struct step_run *r)
{
        return start_step(r, "transform.sql", script_open);
}

/* ---- check ---- */

static void check_next(struct etl_step *s);

static void check_row(struct etl_step *s, const struct wh_result *res)
{
        const char *dialect = wh_dialect(s->w);
        if (res->err < 0) {
                finish(s, res->err, false, "%s/check.sql statement %zu: %s", dialect, s->i + 1,
                       res->msg);
                return;
        }
        json_t *row = json_array_get(res->rows, 0);
        json_t *name = json_array_get(row, 0), *ok = json_array_get(row, 1),
               *detail = json_array_get(row, 2);
        if (json_array_size(res->rows) != 1 || !json_is_string(name) || !json_is_integer(ok) ||
            !json_is_string(detail)) {
                finish(s, -EINVAL, false,
                       "%s/check.sql statement %zu must return one row (name, ok, detail)", dialect,
                       s->i + 1);
                return;
        }
        bool passed = json_integer_value(ok) != 0;
        step_check_result(s->r, json_string_value(name), passed, json_string_value(detail));
        if (!passed && s->failed++ == 0) {
                util_setf(s->first_failed, sizeof(s->first_failed), "%s", json_string_value(name));
                util_setf(s->first_detail, sizeof(s->first_detail), "%s",
                          json_string_value(detail));
        }
        s->i++;
        check_next(s);
}

static void check_next(struct etl_step *s)
{
        if (s->i < s->n) {
                call(s, check_row, wh_query(s->w, s->stmts[s->i], on_wh, s));
                return;
        }
        if (s->failed) {
                finish(s, -EPROTO, false,
                       "%zu of %zu checks failed, first: %s (%s); nothing was published", s->failed,
                       s->n, s->first_failed, s->first_detail);
                return;
        }
        finish(s, 0, false, NULL);
}

static void check_read(struct etl_step *s)
{
        if (s->work_res < 0) {
                finish(s, s->work_res, false, "%s", s->work_msg);
                return;
        }
        s->i = 0;
        check_next(s);
}

static void check_open(struct etl_step *s)
{
        pool(s, sql_work, check_read);
}

static int start_check(struct step_run *r)
{
        return start_step(r, "check.sql", check_open);
}

/* ---- publish ---- */

/* The objects the publish took go to the engine for the journal's ledger. */
static void plan_read(void *ud, int err, const char *msg, struct etl_plan *plan)
{
        struct etl_step *s = ud;
        s->planning = NULL;
        if (err < 0 && err != -ENOENT) { /* Redshift reads its prefixes itself: no plan */
                s->fail(s, err, false, msg);
                return;
        }
        const char *mode = plan ? plan->mode : cfg_get(job_cfg(s->r), "etl", "mode");
        step_published(s->r, s->ledger_target, mode, plan ? &plan->objects : NULL);
        step_event(s->r, "%s %s publish of %s", s->published_before ? "found the" : "made the",
                   mode, s->ledger_target);
        etlplan_free(plan);
        finish(s, 0, false, NULL);
}

static void publish_read_plan(struct etl_step *s)
{
        int rc = etlplan_read(s->w, s->r->job_id, plan_read, s, &s->planning);
        if (rc < 0)
                finish(s, rc, false, "cannot read the plan: %s", strerror(-rc));
}

static void publish_failed(struct etl_step *s, const struct wh_result *res)
{
        finish(s, res->err, false, "%s/publish.sql: %s", wh_dialect(s->w), res->msg);
}

static void publish_committed(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                publish_failed(s, res);
                return;
        }
        publish_read_plan(s);
}

static void publish_marked(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                publish_failed(s, res);
                return;
        }
        call(s, publish_committed, wh_commit(s->w, on_wh, s));
}

static void publish_ran(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                publish_failed(s, res);
                return;
        }
        const char *mode = cfg_get(job_cfg(s->r), "etl", "mode");
        char mark[256], when[32] = "1970-01-01 00:00:00";
        time_t now = time(NULL);
        struct tm tm;
        if (gmtime_r(&now, &tm))
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        util_setf(mark, sizeof(mark),
                  "INSERT INTO etld_publishes (job_id, mode, published_at) "
                  "VALUES (%lld, '%s', '%s')",
                  (long long)s->r->job_id,
                  strcmp(mode, "incremental") == 0 ? "incremental" : "full", when);
        call(s, publish_marked, wh_exec(s->w, mark, on_wh, s));
}

static void publish_begun(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                publish_failed(s, res);
                return;
        }
        call(s, publish_ran, wh_exec(s->w, s->sql, on_wh, s));
}

static void publish_sql_read(struct etl_step *s)
{
        if (s->work_res < 0) {
                finish(s, s->work_res, false, "%s", s->work_msg);
                return;
        }
        call(s, publish_begun, wh_begin(s->w, on_wh, s));
}

/* Whether the job published already (its row in etld_publishes): a publish
 * that committed before a crash is found, not made again. */
static void publish_found(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                finish(s, res->err, false, "%s", res->msg);
                return;
        }
        s->published_before = first_int(res) > 0;
        if (s->published_before)
                publish_read_plan(s);
        else
                pool(s, sql_work, publish_sql_read);
}

static void publish_open(struct etl_step *s)
{
        char sql[128];
        util_setf(sql, sizeof(sql), "SELECT COUNT(*) FROM etld_publishes WHERE job_id = %lld",
                  (long long)s->r->job_id);
        call(s, publish_found, wh_query(s->w, sql, on_wh, s));
}

static int start_publish(struct step_run *r)
{
        return start_step(r, "publish.sql", publish_open);
}

/* ---- load ---- */

static void on_load_error(void *userdata, const struct load_error *e)
{
        struct etl_step *s = userdata;
        step_load_error(s->r, e);
}

static void copies_end(struct etl_step *s, int err, bool transient, const char *msg);

/* After the manifests exist, a failure goes through their removal. */
static void load_fail(struct etl_step *s, int err, bool transient, const char *msg)
{
        copies_end(s, err, transient, msg);
}

static void copy_next(struct etl_step *s);

/* Rows of STL_LOAD_ERRORS for the failed COPY (found by wh_load_errors) become
 * the job's load errors.  Best effort: the COPY's own error fails the step. */
static void rs_load_errors(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0)
                log_warning("etl", "job %lld: cannot read stl_load_errors: %s",
                            (long long)s->r->job_id, res->msg);
        size_t i;
        json_t *row;
        json_array_foreach(res->rows, i, row)
        {
                char file[1024], col[256], type[64], line[1100], value[1100], reason[256];
                struct load_error e = {
                    .filename = rtrim(json_array_get(row, 0), file, sizeof(file)),
                    .line_number = (uint64_t)json_integer_value(json_array_get(row, 1)),
                    .colname = rtrim(json_array_get(row, 2), col, sizeof(col)),
                    .type = rtrim(json_array_get(row, 3), type, sizeof(type)),
                    .position = (uint64_t)json_integer_value(json_array_get(row, 4)),
                    .raw_line = rtrim(json_array_get(row, 5), line, sizeof(line)),
                    .raw_field_value = rtrim(json_array_get(row, 6), value, sizeof(value)),
                    .err_code = (int)json_integer_value(json_array_get(row, 7)),
                    .err_reason = rtrim(json_array_get(row, 8), reason, sizeof(reason)),
                };
                step_load_error(s->r, &e);
        }
        copies_end(s, s->load_result, s->load_transient, s->load_msg);
}

/* A COPY failed: its transaction is rolled back (on Redshift, its rows of
 * STL_LOAD_ERRORS are read first... after the rollback, as they outlive it). */
static void copy_failed(struct etl_step *s, int err, const char *msg)
{
        struct step_run *r = s->r;
        if (err != -ECANCELED && !s->cancelled)
                wh_rollback(s->w, NULL, NULL);
        /* rows of a rolled back COPY are not in the warehouse */
        atomic_store(&r->progress.rows, s->rows_before);
        bool transient = s->ctx && s3_transient(err, msg);
        if (!s->redshift || err == -ECANCELED || err == -EAGAIN || s->cancelled) {
                copies_end(s, err, transient, msg);
                return;
        }
        s->load_result = err;
        s->load_transient = transient;
        util_setf(s->load_msg, sizeof(s->load_msg), "%s", msg);
        s->next = rs_load_errors;
        int rc = wh_load_errors(s->w, on_wh, s);
        if (rc < 0) {
                log_warning("etl", "job %lld: cannot read stl_load_errors: %s",
                            (long long)r->job_id, strerror(-rc));
                copies_end(s, err, transient, msg);
        }
}

static void copy_committed(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                copy_failed(s, res->err, res->msg);
                return;
        }
        s->i++;
        copy_next(s);
}

static void copy_marked(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                copy_failed(s, res->err, res->msg);
                return;
        }
        call(s, copy_committed, wh_commit(s->w, on_wh, s));
}

/* The COPY's etld_copies row, in its transaction. */
static void copy_mark(struct etl_step *s)
{
        char mark[256];
        util_setf(mark, sizeof(mark),
                  "INSERT INTO etld_copies (job_id, stmt, rows) VALUES (%lld, %zu, %llu)",
                  (long long)s->r->job_id, s->i,
                  (unsigned long long)(atomic_load(&s->r->progress.rows) - s->rows_before));
        call(s, copy_marked, wh_exec(s->w, mark, on_wh, s));
}

static void loaded(void *userdata, int result, const char *msg)
{
        struct etl_step *s = userdata;
        s->load = NULL;
        s->req.statement = NULL; /* done came */
        if (result < 0) {
                copy_failed(s, result, msg);
                return;
        }
        copy_mark(s);
}

/* Redshift's COPY: the statement as it is, then the number of rows it
 * loaded (pg_last_copy_count(), for progress and etld_copies). */
static void rs_counted(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                copy_failed(s, res->err, res->msg);
                return;
        }
        long long n = first_int(res);
        atomic_store(&s->r->progress.rows, s->rows_before + (uint64_t)(n > 0 ? n : 0));
        copy_mark(s);
}

static void rs_copied(struct etl_step *s, const struct wh_result *res)
{
        rs_watch_stop(s);
        if (res->err < 0) {
                copy_failed(s, res->err, res->msg);
                return;
        }
        call(s, rs_counted, wh_query(s->w, "SELECT pg_last_copy_count()", on_wh, s));
}

static void copy_begun(struct etl_step *s, const struct wh_result *res);

static void rs_pid(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                copy_failed(s, res->err, res->msg);
                return;
        }
        s->copy_pid = first_int(res);
        if (s->copy_pid <= 0)
                s->copy_pid = -1; /* asked once: no monitoring */
        struct wh_result ok = {.msg = ""};
        copy_begun(s, &ok);
}

static void copy_begun(struct etl_step *s, const struct wh_result *res)
{
        struct step_run *r = s->r;
        if (res->err < 0) {
                copies_end(s, res->err, false, res->msg);
                return;
        }
        s->rows_before = atomic_load(&r->progress.rows);
        const char *stmt = s->stmts[s->i];
        if (s->redshift) {
                if (s->mon_w && !s->copy_pid) { /* the session the monitor asks about */
                        call(s, rs_pid, wh_query(s->w, "SELECT pg_backend_pid()", on_wh, s));
                        return;
                }
                rs_watch_start(s);
                call(s, rs_copied, wh_exec(s->w, stmt, on_wh, s));
                return;
        }
        s->req = (struct load_request){
            .statement = stmt,
            .wh = s->w,
            .loop = r->loop,
            .progress = &r->progress,
            .batch_rows = (size_t)cfg_get_int(r->cfg, "load", "batch_rows"),
            .concurrency = (unsigned)cfg_get_int(r->cfg, "load", "concurrency"),
            .source_ctx = s->ctx,
            .object_column = "etld_object",
            .file_roots = s->load_roots,
            .on_error = on_load_error,
            .userdata = s, /* also done's */
        };
        struct load *l = NULL;
        int rc = load_start(&s->req, loaded, &l);
        if (rc < 0) {
                copy_failed(s, rc, "cannot start the COPY");
                return;
        }
        if (s->req.statement) /* done has not come yet */
                s->load = l;
}

/* Whether statement i of this job committed already. */
static void copy_checked(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                copies_end(s, res->err, false, res->msg);
                return;
        }
        if (first_int(res) > 0) {
                s->i++;
                copy_next(s);
                return;
        }
        const char *stmt = s->stmts[s->i];
        int src = etlplan_source_of(s->plan, stmt);
        if (src >= 0 && s->plan->count[src] == 0) { /* nothing new under that source */
                s->i++;
                copy_next(s);
                return;
        }
        if (src >= 0 && !copy_reads_manifest(stmt)) {
                char msg[512];
                util_setf(msg, sizeof(msg),
                          "%s/copy.sql statement %zu reads {s3.%s} without MANIFEST: etld "
                          "reads each source through a manifest of the objects it planned; "
                          "add MANIFEST to the statement",
                          wh_dialect(s->w), s->i + 1, etlplan_sources[src]);
                copies_end(s, -EINVAL, false, msg);
                return;
        }
        call(s, copy_begun, wh_begin(s->w, on_wh, s));
}

static void copy_next(struct etl_step *s)
{
        if (s->i == s->n) {
                copies_end(s, 0, false, NULL);
                return;
        }
        char sql[256];
        util_setf(sql, sizeof(sql),
                  "SELECT COUNT(*) FROM etld_copies WHERE job_id = %lld AND stmt = %zu",
                  (long long)s->r->job_id, s->i);
        call(s, copy_checked, wh_query(s->w, sql, on_wh, s));
}

static void copies_table(struct etl_step *s, const struct wh_result *res)
{
        if (res->err < 0) {
                copies_end(s, res->err, false, res->msg);
                return;
        }
        s->i = 0;
        copy_next(s);
}

static void copies_read(struct etl_step *s)
{
        if (s->work_res < 0) {
                copies_end(s, s->work_res, false, s->work_msg);
                return;
        }
        /* etld's own bookkeeping, not part of the schema: which COPYs of
         * which job have committed. */
        call(s, copies_table,
             wh_exec(s->w,
                     "CREATE TABLE IF NOT EXISTS etld_copies (job_id INTEGER NOT NULL, "
                     "stmt INTEGER NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (job_id, stmt))",
                     on_wh, s));
}

/* Points copy.sql's sources at the plan's manifests and reads it. */
static void copy_planned(struct etl_step *s)
{
        char msg[512] = "";
        int res = s->work_res;
        if (res < 0)
                util_setf(msg, sizeof(msg), "%s", s->work_msg);
        /* The COPYs read the manifests: the plan's objects (15,000 for the
         * real bucket) need not stay for them.  Publish reads them back from
         * the warehouse. */
        objlist_free(&s->plan->objects);
        for (int i = 0; res == 0 && i < ETLPLAN_SOURCES; i++) {
                char key[32];
                util_setf(key, sizeof(key), "s3.%s", etlplan_sources[i]);
                res = supply(s->r, key, s->plan->manifest[i], msg, sizeof(msg));
        }
        if (res == 0)
                res = supply(s->r, "etl.mode", s->plan->mode, msg, sizeof(msg));
        if (res < 0) {
                copies_end(s, res, false, msg);
                return;
        }
        s->file = "copy.sql";
        pool(s, sql_work, copies_read);
}

/* Pool job: the manifests in STATE_DIR/manifests, and the folders the
 * COPYs may read. */
static int manifests_work(struct etl_step *s, char *err, size_t errlen)
{
        char dir[4096];
        util_setf(dir, sizeof(dir), "%s/manifests", s->r->state_dir);
        int res = etlplan_write_manifests(s->plan, dir, s->r->job_id, err, errlen);
        /* the COPYs' roots include the manifests' folder, which exists now */
        if (res == 0)
                res = job_roots(s->r, AUTHZ_LOAD_ROOTS, &s->load_roots, err, errlen);
        return res;
}

/* Pool job: and away with them. */
static int unlink_work(struct etl_step *s, char *err, size_t errlen)
{
        (void)err;
        (void)errlen;
        etlplan_remove_manifests(s->plan);
        return 0;
}

static void load_finish(struct etl_step *s)
{
        finish(s, s->load_result, s->load_transient, "%s", s->load_msg);
}

static void manifests_deleted(struct s3_req *req, const struct s3_result *res, void *ud)
{
        (void)req;
        struct etl_step *s = ud;
        if (res->err < 0)
                log_warning("etl", "job %lld: cannot delete the COPY manifests from S3: %s",
                            (long long)s->r->job_id, res->msg);
        load_finish(s);
}

/* The COPYs are over (err: how): the manifests go (Redshift's from S3),
 * then the step ends with the COPYs' result. */
static void copies_end(struct etl_step *s, int err, bool transient, const char *msg)
{
        char m[sizeof(s->load_msg)];
        util_setf(m, sizeof(m), "%s", msg && err < 0 ? msg : ""); /* msg may be load_msg */
        s->fail = fail_finish;
        s->load_result = err;
        s->load_transient = transient;
        util_setf(s->load_msg, sizeof(s->load_msg), "%s", m);
        s->cleaning = true;
        if (!s->redshift) {
                s->work_res = 0;
                pool(s, unlink_work, load_finish);
                return;
        }
        const char *keys[ETLPLAN_SOURCES];
        size_t n = 0;
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                if (s->plan->count[i] > 0 && s->manifest_key[i])
                        keys[n++] = s->manifest_key[i];
        struct s3_cb cb = {manifests_deleted, s, s};
        if (n == 0 || s3_delete_objects(s->client, cfg_get(s->r->cfg, "stage", "bucket"), keys, n,
                                        &cb, NULL) < 0)
                load_finish(s);
}

static void manifest_put(struct s3_req *req, const struct s3_result *res, void *ud)
{
        (void)req;
        struct etl_step *s = ud;
        if (res->err < 0 && s->s3_err == 0) {
                s->s3_err = res->err;
                util_setf(s->s3_msg, sizeof(s->s3_msg), "cannot put the COPY manifest on S3: %s",
                          res->msg);
        }
        if (--s->s3_pending > 0)
                return;
        if (s->s3_err < 0) {
                finish(s, s->s3_err, s3_transient(s->s3_err, s->s3_msg), "%s", s->s3_msg);
                return;
        }
        s->work_res = 0;
        s->fail = load_fail;
        copy_planned(s);
}

/* Redshift's COPY reads its manifest from S3, so each goes to the project
 * bucket first. */
static void put_manifests(struct etl_step *s)
{
        const char *bucket = cfg_get(s->r->cfg, "stage", "bucket");
        if (!bucket || !*bucket) {
                finish(s, -EINVAL, false,
                       "stage.bucket is empty: Redshift's COPY reads the list of objects to "
                       "load (a manifest) from S3, and etld puts it in the project bucket, "
                       "under etld/manifests/");
                return;
        }
        int res = manifest_names(s->r, bucket);
        s->s3_pending = 1; /* held until every put is sent */
        for (int i = 0; res == 0 && i < ETLPLAN_SOURCES; i++) {
                if (s->plan->count[i] == 0)
                        continue;
                char *text = s->manifest_text[i] = etlplan_manifest_json(s->plan, i);
                if (!text) {
                        res = -ENOMEM;
                        break;
                }
                struct s3_put_opts o = {
                    .data = text, .len = strlen(text), .content_type = "application/json"};
                struct s3_cb cb = {manifest_put, s, s};
                s->s3_pending++;
                res = s3_put_object(s->client, bucket, s->manifest_key[i], &o, &cb, NULL);
                if (res < 0)
                        s->s3_pending--;
        }
        if (res < 0 && s->s3_err == 0) {
                s->s3_err = res;
                util_setf(s->s3_msg, sizeof(s->s3_msg), "cannot put the COPY manifest on S3: %s",
                          strerror(-res));
        }
        struct s3_result none = {0};
        manifest_put(NULL, &none, s); /* releases the hold */
}

/* Says what the plan is, puts the manifests where the COPYs read them, and
 * loads. */
static void planned(void *ud, int err, const char *msg, struct etl_plan *plan)
{
        struct etl_step *s = ud;
        struct step_run *r = s->r;
        s->planning = NULL;
        if (err < 0) {
                finish(s, err, s->ctx && s3_transient(err, msg), "%s", msg);
                return;
        }
        s->plan = plan;
        objlist_free(&s->ledger.objects); /* the plan is made: the ledger has done its part */
        step_output(r, "mode", plan->mode);
        step_output(r, "plan", plan->reason);
        step_event(r, "%s run: %s", plan->mode, plan->reason);
        /* how much there is, for the share done and the time left */
        uint64_t bytes = 0;
        for (size_t i = 0; i < plan->objects.n; i++)
                bytes += (uint64_t)plan->objects.v[i].size;
        step_progress_total(r, plan->objects.n, bytes);
        if (s->redshift) {
                put_manifests(s);
                return;
        }
        s->fail = load_fail; /* from here on the manifests are removed at the end */
        pool(s, manifests_work, copy_planned);
}

/* The objects this job loads (etlplan.h). */
static void plan_start(struct etl_step *s)
{
        s->source_env = (struct source_env){
            .loop = s->r->loop,
            .ctx = s->ctx,
            .roots = s->data_roots,
        };
        int rc = etlplan_get(s->w, s->r->job_id, job_cfg(s->r), &s->ledger, &s->source_env, planned,
                             s, &s->planning);
        if (rc < 0)
                finish(s, rc, false, "cannot plan the load: %s", strerror(-rc));
}

static void load_creds(struct step_run *r, struct awsenv *env, int err, const char *msg)
{
        struct etl_step *s = st(r);
        s->env = env;
        if (err < 0) {
                finish(s, err, err == -ETIMEDOUT || err == -EHOSTUNREACH, "%s", msg);
                return;
        }
        int res = awsenv_s3_client(r, env, NULL, &s->client);
        if (res == 0)
                res = source_s3_ctx_new(s->client, s, &s->ctx);
        if (res < 0) {
                finish(s, res, false, "cannot set up the S3 client: %s", strerror(-res));
                return;
        }
        open_wh(s, plan_start);
}

static int start_load(struct step_run *r)
{
        char msg[1024];
        int res = prepare(r, msg, sizeof(msg));
        if (res < 0) {
                step_done(r, res, false, "%s", msg);
                return 0;
        }
        struct etl_step *s = st(r);
        if (r->journal) {
                if (journal_ledger_get(r->journal, s->ledger_target, &s->ledger.objects,
                                       &s->ledger.job) < 0) {
                        finish(s, -EIO, true, "cannot read the ledger from the journal");
                        return 0;
                }
        }
        /* S3 sources are listed (and, for Redshift, its manifests put) with
         * an S3 client; without the HTTP engine an s3:// source fails
         * naming the source. */
        if (!s->redshift && (!uses_s3(r->cfg) || !r->http)) {
                open_wh(s, plan_start);
                return 0;
        }
        if (!r->http) {
                finish(s, -EPROTONOSUPPORT, false, "no HTTP engine for S3");
                return 0;
        }
        res = awsenv_resolve(r, load_creds);
        if (res < 0)
                etl_step_free(r);
        return res;
}

const struct step_ops step_create_tables = {
    .name = "create-tables",
    .description = "drop and create the staging and star tables",
    .start = start_create_tables,
    .cancel = etl_cancel,
};

const struct step_ops step_load = {
    .name = "load",
    .description = "COPY song_data and log_data into the staging tables",
    .start = start_load,
    .cancel = etl_cancel,
};

const struct step_ops step_transform = {
    .name = "transform",
    .description = "fill songplays, users, songs, artists and time",
    .start = start_transform,
    .cancel = etl_cancel,
};

const struct step_ops step_check = {
    .name = "check",
    .description = "data-quality checks of the new rows, before they are published",
    .start = start_check,
    .cancel = etl_cancel,
};

const struct step_ops step_publish = {
    .name = "publish",
    .description = "merge the checked rows into the published star tables, in one "
                   "transaction",
    .start = start_publish,
    .cancel = etl_cancel,
};
