/* etl.c - the steps of the etl pipeline on a SQL warehouse: create-tables,
 * load, transform, check.
 *
 * Each step's SQL lives in sql/<dialect>/ (create_tables.sql, copy.sql,
 * transform.sql, check.sql); this file only decides how it runs, on the
 * thread pool, with the warehouse connection interruptible on cancel.
 *
 * Exactly once: create-tables and transform each run in one transaction and
 * are idempotent by themselves (drop/create; delete/insert).  The load step
 * runs each COPY in its own transaction together with a row in etld_copies
 * naming the job and statement; on a resumed job a COPY whose row exists is
 * skipped, and one interrupted before its commit was rolled back and runs
 * again whole, as on Redshift.
 *
 * s3:// sources: when any [s3] source is on S3, the load step first resolves
 * the AWS credentials (thread pool, awsenv.c), makes an S3 client on the
 * daemon's loop and a bridge (load/source_s3.h) through which the COPY's
 * worker threads list and stream objects; cancel also cancels those
 * transfers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awsenv.h"
#include "load/source_s3.h"
#include "log.h"
#include "sqlfile.h"
#include "step.h"
#include "warehouse/wh.h"

static int open_wh(struct step_run *r, struct wh **ret, char *err, size_t errlen)
{
        struct wh *w = NULL;
        struct wh_params p = {
                .uri = cfg_get(r->cfg, "warehouse", "target"),
                .state_dir = r->state_dir,
                .loop = r->loop,
                .password = cfg_get(r->cfg, "warehouse", "password"),
        };
        int res = wh_open_params(&p, &w, err, errlen);
        if (res < 0)
                return res;
        uv_mutex_lock(&r->lock);
        r->interruptible = w;
        uv_mutex_unlock(&r->lock);
        if (step_cancelled(r)) {
                uv_mutex_lock(&r->lock);
                r->interruptible = NULL;
                uv_mutex_unlock(&r->lock);
                wh_close(w);
                return -ECANCELED;
        }
        *ret = w;
        return 0;
}

static void close_wh(struct step_run *r, struct wh *w)
{
        uv_mutex_lock(&r->lock);
        r->interruptible = NULL;
        uv_mutex_unlock(&r->lock);
        wh_close(w);
}

static void cancel_sql(struct step_run *r)
{
        uv_mutex_lock(&r->lock);
        wh_interrupt(r->interruptible);
        uv_mutex_unlock(&r->lock);
}

/* Runs a whole SQL file in one transaction. */
static int run_script(struct step_run *r, const char *file, char *err, size_t errlen)
{
        struct wh *w = NULL;
        int res = open_wh(r, &w, err, errlen);
        if (res < 0)
                return res;
        char *sql = NULL;
        res = sqlfile_load(r->cfg, wh_dialect(w), file, &sql, err, errlen);
        if (res == 0)
                res = wh_begin(w, err, errlen);
        if (res == 0) {
                char msg[512] = "";
                res = wh_exec(w, sql, msg, sizeof(msg));
                if (res == 0)
                        res = wh_commit(w, msg, sizeof(msg));
                if (res < 0) {
                        wh_rollback(w);
                        snprintf(err, errlen, "%s/%s: %s", wh_dialect(w), file, msg);
                }
        }
        free(sql);
        close_wh(r, w);
        return res;
}

static int create_tables_work(struct step_run *r, char *err, size_t errlen)
{
        return run_script(r, "create_tables.sql", err, errlen);
}

static int transform_work(struct step_run *r, char *err, size_t errlen)
{
        return run_script(r, "transform.sql", err, errlen);
}

static int start_create_tables(struct step_run *r)
{
        return step_work(r, create_tables_work);
}

static int start_transform(struct step_run *r)
{
        return step_work(r, transform_work);
}

/* ---- load ---- */

static void on_load_error(void *userdata, const struct load_error *e)
{
        struct step_run *r = userdata;
        if (!r->load_errors)
                r->load_errors = json_array();
        if (json_array_size(r->load_errors) >= 1000) /* the first thousand tell the story */
                return;
        json_array_append_new(
                r->load_errors,
                json_pack("{s:s, s:I, s:s, s:s, s:I, s:s, s:s, s:i, s:s}", "filename", e->filename,
                          "line_number", (json_int_t)e->line_number, "colname", e->colname, "type", e->type,
                          "position", (json_int_t)e->position, "raw_line", e->raw_line,
                          "raw_field_value", e->raw_field_value, "err_code", e->err_code,
                          "err_reason", e->err_reason));
}

/* Whether statement idx of this job committed already. */
static int copy_done(struct wh *w, int64_t job, size_t idx, bool *ret, char *err, size_t errlen)
{
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM etld_copies WHERE job_id = %lld AND stmt = %zu",
                 (long long)job, idx);
        json_t *rows = NULL;
        int res = wh_query(w, sql, &rows, err, errlen);
        if (res < 0)
                return res;
        *ret = json_integer_value(json_array_get(json_array_get(rows, 0), 0)) > 0;
        json_decref(rows);
        return 0;
}

/* What the load step borrows from the loop to read s3:// sources. */
struct load_s3 {
        struct awsenv *env;
        struct s3_client *client;
        struct source_ctx *ctx;
};

static const struct source_ctx *load_source_ctx(struct step_run *r)
{
        struct load_s3 *ls = r->step_data;
        return ls ? ls->ctx : NULL;
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

static int load_work(struct step_run *r, char *err, size_t errlen);

static void load_s3_free(struct step_run *r)
{
        struct load_s3 *ls = r->step_data;
        if (!ls)
                return;
        source_s3_ctx_free(ls->ctx);
        s3_client_free(ls->client);
        awsenv_free(ls->env);
        free(ls);
        r->step_data = NULL;
        r->work_cleanup = NULL;
}

static void load_creds(struct step_run *r, struct awsenv *env, int err, const char *msg)
{
        struct load_s3 *ls = r->step_data;
        ls->env = env;
        if (err < 0) {
                load_s3_free(r);
                step_done(r, err, err == -ETIMEDOUT || err == -EHOSTUNREACH, "%s", msg);
                return;
        }
        int res = awsenv_s3_client(r, env, NULL, &ls->client);
        if (res == 0)
                res = source_s3_ctx_new(r->loop, ls->client, r, &ls->ctx);
        if (res == 0) {
                r->work_cleanup = load_s3_free;
                res = step_work(r, load_work);
        }
        if (res < 0) {
                load_s3_free(r);
                step_done(r, res, false, "cannot set up the S3 client: %s", strerror(-res));
        }
}

static bool uses_s3(const struct cfg *c)
{
        static const char *const keys[] = { "song_data", "log_data", "log_jsonpath" };
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const char *v = cfg_get(c, "s3", keys[i]);
                if (v && strncmp(v, "s3://", 5) == 0)
                        return true;
        }
        return false;
}

static void cancel_load(struct step_run *r)
{
        cancel_sql(r);
        struct load_s3 *ls = r->step_data;
        if (ls && ls->ctx)
                source_s3_ctx_cancel(ls->ctx);
}

static int load_work(struct step_run *r, char *err, size_t errlen)
{
        struct wh *w = NULL;
        int res = open_wh(r, &w, err, errlen);
        if (res < 0)
                return res;
        char *sql = NULL;
        char **stmts = NULL;
        size_t n = 0;
        res = sqlfile_load(r->cfg, wh_dialect(w), "copy.sql", &sql, err, errlen);
        if (res == 0)
                res = sqlfile_split(sql, &stmts, &n);
        /* etld's own bookkeeping, not part of the schema: which COPYs of
         * which job have committed. */
        if (res == 0)
                res = wh_exec(w,
                              "CREATE TABLE IF NOT EXISTS etld_copies (job_id INTEGER NOT NULL, "
                              "stmt INTEGER NOT NULL, rows INTEGER NOT NULL, "
                              "PRIMARY KEY (job_id, stmt))",
                              err, errlen);
        for (size_t i = 0; res == 0 && i < n; i++) {
                bool done = false;
                res = copy_done(w, r->job_id, i, &done, err, errlen);
                if (res < 0 || done)
                        continue;
                res = wh_begin(w, err, errlen);
                if (res < 0)
                        break;
                uint64_t rows_before = atomic_load(&r->progress.rows);
                struct load_request req = {
                        .statement = stmts[i],
                        .wh = w,
                        .cancel = &r->cancel,
                        .progress = &r->progress,
                        .batch_rows = (size_t)cfg_get_int(r->cfg, "load", "batch_rows"),
                        .concurrency = (unsigned)cfg_get_int(r->cfg, "load", "concurrency"),
                        .source_ctx = load_source_ctx(r),
                        .on_error = on_load_error,
                        .userdata = r,
                };
                res = load_run(&req, err, errlen);
                if (res == 0) {
                        char mark[256];
                        snprintf(mark, sizeof(mark),
                                 "INSERT INTO etld_copies (job_id, stmt, rows) "
                                 "VALUES (%lld, %zu, %llu)",
                                 (long long)r->job_id, i,
                                 (unsigned long long)(atomic_load(&r->progress.rows) -
                                                      rows_before));
                        res = wh_exec(w, mark, err, errlen);
                }
                if (res == 0)
                        res = wh_commit(w, err, errlen);
                if (res < 0) {
                        wh_rollback(w);
                        /* rows of a rolled back COPY are not in the warehouse */
                        atomic_store(&r->progress.rows, rows_before);
                }
        }
        sqlfile_free_list(stmts);
        free(sql);
        close_wh(r, w);
        if (res < 0 && load_source_ctx(r) && s3_transient(res, err))
                r->transient = true;
        return res;
}

static int start_load(struct step_run *r)
{
        if (!uses_s3(r->cfg) || !r->http)
                return step_work(r, load_work); /* s3:// then fails naming the source */
        struct load_s3 *ls = calloc(1, sizeof(*ls));
        if (!ls)
                return -ENOMEM;
        r->step_data = ls;
        int res = awsenv_resolve(r, load_creds);
        if (res < 0) {
                free(ls);
                r->step_data = NULL;
        }
        return res;
}

/* ---- check ---- */

static int check_work(struct step_run *r, char *err, size_t errlen)
{
        struct wh *w = NULL;
        int res = open_wh(r, &w, err, errlen);
        if (res < 0)
                return res;
        char *sql = NULL;
        char **stmts = NULL;
        size_t n = 0;
        res = sqlfile_load(r->cfg, wh_dialect(w), "check.sql", &sql, err, errlen);
        if (res == 0)
                res = sqlfile_split(sql, &stmts, &n);
        json_t *checks = json_array();
        size_t failed = 0;
        const char *first_failed = NULL;
        for (size_t i = 0; res == 0 && i < n; i++) {
                json_t *rows = NULL;
                char msg[512];
                res = wh_query(w, stmts[i], &rows, msg, sizeof(msg));
                if (res < 0) {
                        snprintf(err, errlen, "%s/check.sql statement %zu: %s", wh_dialect(w),
                                 i + 1, msg);
                        break;
                }
                json_t *row = json_array_get(rows, 0);
                json_t *name = json_array_get(row, 0), *ok = json_array_get(row, 1),
                       *detail = json_array_get(row, 2);
                if (json_array_size(rows) != 1 || !json_is_string(name) ||
                    !json_is_integer(ok) || !json_is_string(detail)) {
                        snprintf(err, errlen,
                                 "%s/check.sql statement %zu must return one row "
                                 "(name, ok, detail)",
                                 wh_dialect(w), i + 1);
                        json_decref(rows);
                        res = -EINVAL;
                        break;
                }
                bool passed = json_integer_value(ok) != 0;
                json_array_append_new(checks, json_pack("{s:O, s:b, s:O}", "name", name, "ok",
                                                        passed, "detail", detail));
                if (!passed) {
                        failed++;
                        if (!first_failed)
                                first_failed = json_string_value(json_object_get(
                                        json_array_get(checks, json_array_size(checks) - 1),
                                        "name"));
                }
                json_decref(rows);
        }
        if (res == 0 && failed)  {
                json_t *c = json_array_get(checks, 0);
                size_t i;
                json_array_foreach(checks, i, c)
                {
                        if (!json_is_true(json_object_get(c, "ok"))) {
                                snprintf(err, errlen, "%zu of %zu checks failed, first: %s (%s)",
                                         failed, json_array_size(checks), first_failed,
                                         json_string_value(json_object_get(c, "detail")));
                                break;
                        }
                }
                res = -EPROTO;
        }
        r->checks = checks;
        sqlfile_free_list(stmts);
        free(sql);
        close_wh(r, w);
        return res;
}

static int start_check(struct step_run *r)
{
        return step_work(r, check_work);
}

const struct step_ops step_create_tables = {
        .name = "create-tables",
        .description = "drop and create the staging and star tables",
        .start = start_create_tables,
        .cancel = cancel_sql,
};

const struct step_ops step_load = {
        .name = "load",
        .description = "COPY song_data and log_data into the staging tables",
        .start = start_load,
        .cancel = cancel_load,
};

const struct step_ops step_transform = {
        .name = "transform",
        .description = "fill songplays, users, songs, artists and time",
        .start = start_transform,
        .cancel = cancel_sql,
};

const struct step_ops step_check = {
        .name = "check",
        .description = "data-quality checks",
        .start = start_check,
        .cancel = cancel_sql,
};
