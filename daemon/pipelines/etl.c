/* etl.c - the steps of the etl pipeline on a SQL warehouse: create-tables,
 * load, transform, check, publish (write, audit, publish: the published star
 * tables change only in the last step, in one transaction).
 *
 * Each step's SQL lives in sql/<dialect>/ (create_tables.sql, copy.sql,
 * transform.sql, check.sql, publish.sql); this file only decides how it
 * runs, on the thread pool, with the warehouse connection interruptible on
 * cancel.
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
 * journal's ledger (step_run.published).
 *
 * Redshift (warehouse.target redshift://... or just "redshift"): the same
 * files from sql/redshift/, over libpq.  Redshift's COPY reads S3 itself, so
 * the load step sends each COPY statement as it is (in its transaction with
 * its etld_copies row) instead of carrying it out with the emulator; when
 * one fails, the rows of STL_LOAD_ERRORS for it (wh_load_errors()) become
 * the job's load errors, as the emulator's do; its manifests go to the
 * project bucket ([stage] bucket, etld/manifests/) before the COPYs and are
 * deleted after them, from the loop.  Before a step's work,
 * on the loop thread, prepare() settles what the journal may supply: a
 * Redshift target without a host connects to the endpoint, port, database
 * and master user the latest provision job recorded; an empty [iam] role_arn
 * becomes that job's role; the password is [warehouse] password, else the
 * master password ([cluster] db_password_file or the systemd credential).
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
#include <time.h>

#include "authz.h"
#include "awsenv.h"
#include "confine.h"
#include "etlplan.h"
#include "journal.h"
#include "load/copy.h"
#include "load/source_s3.h"
#include "log.h"
#include "proto.h"
#include "secret.h"
#include "sqlfile.h"
#include "pipelines.h"
#include "util.h"
#include "warehouse/wh.h"

/* A step's state (r->step_data), made on the loop thread by prepare(). */
struct etl_step {
        char *target;     /* warehouse URI, NULL: the default SQLite warehouse */
        char *password;   /* secret, or NULL */
        bool redshift;        /* the target is a redshift:// one */
        bool master_password; /* read the cluster's master password when connecting */
        struct cfg *cfg;  /* the job's configuration with what the journal supplied */
        /* the load step's S3 side, for s3:// sources */
        struct awsenv *env;
        struct s3_client *client;
        struct source_ctx *ctx;
        /* write, audit, publish */
        char *ledger_target;          /* the warehouse as the ledger names it */
        struct etlplan_ledger ledger; /* the load step's copy of the journal's */
        struct etl_plan *plan;        /* the objects the load step reads */
        /* Redshift: the manifests put on S3 (stage.bucket, etld/manifests/) */
        char *manifest_key[ETLPLAN_SOURCES];
        char *manifest_text[ETLPLAN_SOURCES]; /* bodies, borrowed by the puts */
        unsigned s3_pending;          /* PutObject/DeleteObjects in flight */
        int s3_err;                   /* the first failure */
        char s3_msg[512];
        int load_result;              /* the COPYs' result, kept while cleaning up */
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
        json_decref(s->ledger.objects);
        free(s->ledger_target);
        free(s->target);
        secret_free(s->password);
        cfg_free(s->cfg);
        free(s);
        r->step_data = NULL;
        r->work_cleanup = NULL;
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
        char *host = r->journal ? journal_output_latest(r->journal, "provision", "endpoint", &job)
                                : NULL;
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
        struct buf b = { 0 };
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

/* Settles, on the loop thread, what the step's work needs from the journal:
 * the target, where the password comes from, the COPY role and region. */
static int prepare(struct step_run *r, char *err, size_t errlen)
{
        struct etl_step *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r->step_data = s;
        r->work_cleanup = etl_step_free;
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
                res = supply(r, "s3.region", br ? br : cfg_get(r->cfg, "aws", "region"), err,
                             errlen);
                free(br);
        }
        if (res == 0 && s->target)
                s->ledger_target = strdup(s->target);
        else if (res == 0 && asprintf(&s->ledger_target, "sqlite://%s/warehouse.db",
                                      r->state_dir) < 0)
                s->ledger_target = NULL;
        if (res == 0 && !s->ledger_target)
                res = -ENOMEM;
        /* after the load step: the mode it decided (an incremental run may
         * have fallen back to a full one) */
        char *mode = res == 0 && r->journal ? journal_output_get(r->journal, r->job_id, "mode")
                                            : NULL;
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

/* Prepares, then runs fn on the thread pool; a preparation error ends the
 * step at once with its message. */
static int start_work(struct step_run *r, int (*fn)(struct step_run *r, char *err, size_t errlen))
{
        char msg[1024];
        int res = prepare(r, msg, sizeof(msg));
        if (res < 0) {
                step_done(r, res, false, "%s", msg);
                return 0;
        }
        res = step_work(r, fn);
        if (res < 0)
                etl_step_free(r);
        return res;
}

/* The folders a job that is not an admin's may use (NULL for an admin's):
 * checked again as each file is opened, since the names may have changed
 * since the job was submitted.  Worker thread (realpath). */
static int job_roots(struct step_run *r, enum authz_roots which, struct confine **ret, char *err,
                     size_t errlen)
{
        *ret = NULL;
        return r->admin ? 0 : authz_roots(r->cfg, r->state_dir, which, false, ret, err, errlen);
}

/* Worker thread. */
static int open_wh(struct step_run *r, struct wh **ret, char *err, size_t errlen)
{
        struct wh *w = NULL;
        char *master = NULL;
        struct confine *roots = NULL;
        int res = st(r)->master_password
                          ? secret_db_password(r->cfg, false, &master, err, errlen)
                          : 0;
        if (res == 0)
                res = job_roots(r, AUTHZ_WAREHOUSE_ROOTS, &roots, err, errlen);
        if (res < 0) {
                secret_free(master);
                return res;
        }
        struct wh_params p = {
                .uri = st(r)->target,
                .state_dir = r->state_dir,
                .loop = r->loop,
                .password = master ? master : st(r)->password,
                .roots = roots,
        };
        res = wh_open_params(&p, &w, err, errlen);
        secret_free(master);
        confine_free(roots);
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
        res = sqlfile_load(job_cfg(r), wh_dialect(w), file, &sql, err, errlen);
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
        return start_work(r, create_tables_work);
}

static int start_transform(struct step_run *r)
{
        return start_work(r, transform_work);
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
            json_pack("{s:o, s:I, s:o, s:o, s:I, s:o, s:o, s:i, s:o}", "filename",
                      proto_json_text(e->filename), "line_number", (json_int_t)e->line_number,
                      "colname", proto_json_text(e->colname), "type", proto_json_text(e->type),
                      "position", (json_int_t)e->position, "raw_line", proto_json_text(e->raw_line),
                      "raw_field_value", proto_json_text(e->raw_field_value), "err_code",
                      e->err_code, "err_reason", proto_json_text(e->err_reason)));
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

static const struct source_ctx *load_source_ctx(struct step_run *r)
{
        return st(r) ? st(r)->ctx : NULL;
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
static void start_planning(struct step_run *r);

static void load_creds(struct step_run *r, struct awsenv *env, int err, const char *msg)
{
        struct etl_step *ls = st(r);
        ls->env = env;
        if (err < 0) {
                etl_step_free(r);
                step_done(r, err, err == -ETIMEDOUT || err == -EHOSTUNREACH, "%s", msg);
                return;
        }
        int res = awsenv_s3_client(r, env, NULL, &ls->client);
        if (res == 0)
                res = source_s3_ctx_new(r->loop, ls->client, r, &ls->ctx);
        if (res < 0) {
                etl_step_free(r);
                step_done(r, res, false, "cannot set up the S3 client: %s", strerror(-res));
                return;
        }
        start_planning(r);
}

/* Worker thread: the objects this job loads (etlplan.h), and their
 * manifests in STATE_DIR/manifests. */
static int plan_work(struct step_run *r, char *err, size_t errlen)
{
        struct wh *w = NULL;
        struct confine *roots = NULL;
        int res = job_roots(r, AUTHZ_DATA_ROOTS, &roots, err, errlen);
        if (res == 0)
                res = open_wh(r, &w, err, errlen);
        if (res < 0) {
                confine_free(roots);
                return res;
        }
        res = etlplan_get(w, r->job_id, job_cfg(r), &st(r)->ledger, load_source_ctx(r), roots,
                          &st(r)->plan, err, errlen);
        confine_free(roots);
        close_wh(r, w);
        if (res == 0 && !st(r)->redshift) {
                char dir[4096];
                util_setf(dir, sizeof(dir), "%s/manifests", r->state_dir);
                res = etlplan_write_manifests(st(r)->plan, dir, r->job_id, err, errlen);
        }
        if (res < 0 && load_source_ctx(r) && s3_transient(res, err))
                r->transient = true;
        return res;
}

static void loaded(struct step_run *r, int result);

/* Loop thread: points copy.sql's sources at the plan's manifests and runs
 * the COPYs. */
static void copy_planned(struct step_run *r)
{
        struct etl_step *s = st(r);
        char msg[512];
        int res = 0;
        for (int i = 0; res == 0 && i < ETLPLAN_SOURCES; i++) {
                char key[32];
                util_setf(key, sizeof(key), "s3.%s", etlplan_sources[i]);
                res = supply(r, key, s->plan->manifest[i], msg, sizeof(msg));
        }
        if (res == 0)
                res = supply(r, "etl.mode", s->plan->mode, msg, sizeof(msg));
        if (res == 0)
                res = s->redshift ? step_work_then(r, load_work, loaded) : step_work(r, load_work);
        if (res < 0) {
                etl_step_free(r);
                step_done(r, res, false, "cannot start the load: %s", strerror(-res));
        }
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
                if (asprintf(&s->plan->manifest[i], "s3://%s/%s", bucket, s->manifest_key[i]) <
                    0) {
                        s->plan->manifest[i] = NULL;
                        return -ENOMEM;
                }
        }
        return 0;
}

static void manifest_put(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct step_run *r = ud;
        struct etl_step *s = st(r);
        if (res->err < 0 && s->s3_err == 0) {
                s->s3_err = res->err;
                util_setf(s->s3_msg, sizeof(s->s3_msg),
                          "cannot put the COPY manifest on S3: %s", res->msg);
        }
        if (--s->s3_pending > 0)
                return;
        if (s->s3_err < 0) {
                int err = s->s3_err;
                bool transient = s3_transient(err, s->s3_msg);
                char msg[sizeof(s->s3_msg)];
                util_setf(msg, sizeof(msg), "%s", s->s3_msg);
                etl_step_free(r);
                step_done(r, err, transient, "%s", msg);
                return;
        }
        copy_planned(r);
}

/* Loop thread: Redshift's COPY reads its manifest from S3, so each goes to
 * the project bucket first. */
static void put_manifests(struct step_run *r)
{
        struct etl_step *s = st(r);
        const char *bucket = cfg_get(r->cfg, "stage", "bucket");
        if (!bucket || !*bucket) {
                etl_step_free(r);
                step_done(r, -EINVAL, false,
                          "stage.bucket is empty: Redshift's COPY reads the list of objects to "
                          "load (a manifest) from S3, and etld puts it in the project bucket, "
                          "under etld/manifests/");
                return;
        }
        int res = manifest_names(r, bucket);
        s->s3_pending = 1; /* held until every put is sent */
        for (int i = 0; res == 0 && i < ETLPLAN_SOURCES; i++) {
                if (s->plan->count[i] == 0)
                        continue;
                char *text = s->manifest_text[i] = etlplan_manifest_json(s->plan, i);
                if (!text) {
                        res = -ENOMEM;
                        break;
                }
                struct s3_put_opts o = { .data = text, .len = strlen(text),
                                         .content_type = "application/json" };
                struct s3_cb cb = { manifest_put, r, r };
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
        struct s3_result none = { 0 };
        manifest_put(NULL, &none, r); /* releases the hold */
}

static void manifests_deleted(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct step_run *r = ud;
        if (res->err < 0)
                log_warning("etl", "job %lld: cannot delete the COPY manifests from S3: %s",
                            (long long)r->job_id, res->msg);
        int result = st(r)->load_result;
        bool transient = r->transient;
        etl_step_free(r);
        step_done(r, result, transient, NULL);
}

/* Loop thread, after Redshift's COPYs: the manifests go, then the step ends
 * with the COPYs' result. */
static void loaded(struct step_run *r, int result)
{
        struct etl_step *s = st(r);
        s->load_result = result;
        const char *keys[ETLPLAN_SOURCES];
        size_t n = 0;
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                if (s->plan->count[i] > 0 && s->manifest_key[i])
                        keys[n++] = s->manifest_key[i];
        struct s3_cb cb = { manifests_deleted, r, r };
        struct s3_result none = { 0 };
        if (n == 0 || s3_delete_objects(s->client, cfg_get(r->cfg, "stage", "bucket"), keys, n,
                                        &cb, NULL) < 0)
                manifests_deleted(NULL, &none, r);
}

/* Loop thread: says what the plan is, puts Redshift's manifests on S3, and
 * loads. */
static void planned(struct step_run *r, int result)
{
        struct etl_step *s = st(r);
        if (result < 0) {
                char msg[sizeof(r->error)];
                util_setf(msg, sizeof(msg), "%s", r->error);
                etl_step_free(r);
                step_done(r, result, r->transient, "%s", msg);
                return;
        }
        if (!r->outputs)
                r->outputs = json_object();
        if (!r->events)
                r->events = json_array();
        json_object_set_new(r->outputs, "mode", json_string(s->plan->mode));
        json_object_set_new(r->outputs, "plan", json_string(s->plan->reason));
        json_array_append_new(r->events, json_sprintf("%s run: %s", s->plan->mode,
                                                      s->plan->reason));
        if (s->redshift)
                put_manifests(r);
        else
                copy_planned(r);
}

static void start_planning(struct step_run *r)
{
        int res = step_work_then(r, plan_work, planned);
        if (res < 0) {
                etl_step_free(r);
                step_done(r, res, false, "cannot start the load: %s", strerror(-res));
        }
}

/* Redshift's COPY: the statement as it is, then the number of rows it
 * loaded (pg_last_copy_count(), for progress and etld_copies). */
static int redshift_copy(struct step_run *r, struct wh *w, const char *stmt, char *err,
                         size_t errlen)
{
        int res = wh_exec(w, stmt, err, errlen);
        json_t *rows = NULL;
        if (res == 0)
                res = wh_query(w, "SELECT pg_last_copy_count()", &rows, err, errlen);
        if (res == 0) {
                json_int_t n = json_integer_value(json_array_get(json_array_get(rows, 0), 0));
                atomic_fetch_add(&r->progress.rows, (uint64_t)(n > 0 ? n : 0));
        }
        json_decref(rows);
        return res;
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

/* After a failed COPY (rolled back): its rows of STL_LOAD_ERRORS (found by
 * wh_load_errors, see warehouse/wh_pg.c) become the job's load errors.  Best
 * effort: the COPY's own error is what fails the step. */
static void redshift_load_errors(struct step_run *r, struct wh *w)
{
        json_t *rows = NULL;
        char msg[512];
        if (wh_load_errors(w, &rows, msg, sizeof(msg)) < 0) {
                log_warning("etl", "job %lld: cannot read stl_load_errors: %s",
                            (long long)r->job_id, msg);
                return;
        }
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
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
                on_load_error(r, &e);
        }
        json_decref(rows);
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
        if (load_source_ctx(r))
                source_s3_ctx_cancel(st(r)->ctx);
}

static int load_work(struct step_run *r, char *err, size_t errlen)
{
        struct wh *w = NULL;
        struct confine *roots = NULL;
        int res = job_roots(r, AUTHZ_LOAD_ROOTS, &roots, err, errlen);
        if (res == 0)
                res = open_wh(r, &w, err, errlen);
        if (res < 0) {
                confine_free(roots);
                return res;
        }
        bool redshift = strcmp(wh_dialect(w), "redshift") == 0;
        char *sql = NULL;
        char **stmts = NULL;
        size_t n = 0;
        res = sqlfile_load(job_cfg(r), wh_dialect(w), "copy.sql", &sql, err, errlen);
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
                struct etl_plan *plan = st(r)->plan;
                int src = plan ? etlplan_source_of(plan, stmts[i]) : -1;
                if (src >= 0 && plan->count[src] == 0)
                        continue; /* nothing new under that source */
                if (src >= 0 && !copy_reads_manifest(stmts[i])) {
                        snprintf(err, errlen,
                                 "%s/copy.sql statement %zu reads {s3.%s} without MANIFEST: "
                                 "etld reads each source through a manifest of the objects "
                                 "it planned; add MANIFEST to the statement",
                                 wh_dialect(w), i + 1, etlplan_sources[src]);
                        res = -EINVAL;
                        break;
                }
                res = wh_begin(w, err, errlen);
                if (res < 0)
                        break;
                uint64_t rows_before = atomic_load(&r->progress.rows);
                if (redshift) {
                        res = redshift_copy(r, w, stmts[i], err, errlen);
                } else {
                        struct load_request req = {
                                .statement = stmts[i],
                                .wh = w,
                                .cancel = &r->cancel,
                                .progress = &r->progress,
                                .batch_rows = (size_t)cfg_get_int(r->cfg, "load", "batch_rows"),
                                .concurrency =
                                        (unsigned)cfg_get_int(r->cfg, "load", "concurrency"),
                                .source_ctx = load_source_ctx(r),
                                .file_roots = roots,
                                .object_column = "etld_object",
                                .on_error = on_load_error,
                                .userdata = r,
                        };
                        res = load_run(&req, err, errlen);
                }
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
                        if (redshift && res != -ECANCELED && res != -EAGAIN)
                                redshift_load_errors(r, w);
                }
        }
        sqlfile_free_list(stmts);
        free(sql);
        close_wh(r, w);
        confine_free(roots);
        etlplan_remove_manifests(st(r)->plan);
        if (res < 0 && load_source_ctx(r) && s3_transient(res, err))
                r->transient = true;
        return res;
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
                s->ledger.objects =
                        journal_ledger_get(r->journal, s->ledger_target, &s->ledger.job);
                if (!s->ledger.objects) {
                        etl_step_free(r);
                        step_done(r, -EIO, true, "cannot read the ledger from the journal");
                        return 0;
                }
        }
        /* S3 sources are listed (and, for Redshift, its manifests put) with
         * an S3 client; without the HTTP engine an s3:// source fails
         * naming the source. */
        if (!s->redshift && (!uses_s3(r->cfg) || !r->http)) {
                start_planning(r);
                return 0;
        }
        if (!r->http) {
                etl_step_free(r);
                step_done(r, -EPROTONOSUPPORT, false, "no HTTP engine for S3");
                return 0;
        }
        res = awsenv_resolve(r, load_creds);
        if (res < 0)
                etl_step_free(r);
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
        res = sqlfile_load(job_cfg(r), wh_dialect(w), "check.sql", &sql, err, errlen);
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
                                snprintf(err, errlen,
                                         "%zu of %zu checks failed, first: %s (%s); nothing "
                                         "was published",
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
        return start_work(r, check_work);
}

/* ---- publish ---- */

/* Whether job published already (its row in etld_publishes). */
static int published_already(struct wh *w, int64_t job, bool *ret, char *err, size_t errlen)
{
        char sql[128];
        util_setf(sql, sizeof(sql), "SELECT COUNT(*) FROM etld_publishes WHERE job_id = %lld",
                  (long long)job);
        json_t *rows = NULL;
        int res = wh_query(w, sql, &rows, err, errlen);
        if (res == 0) {
                json_t *v = json_array_get(json_array_get(rows, 0), 0);
                *ret = json_is_string(v) ? strcmp(json_string_value(v), "0") != 0
                                         : json_integer_value(v) > 0;
        }
        json_decref(rows);
        return res;
}

/* Runs publish.sql and the job's etld_publishes row in one transaction
 * (unless that row exists: a publish that committed before a crash), then
 * hands the objects it took to the engine for the journal's ledger. */
static int publish_work(struct step_run *r, char *err, size_t errlen)
{
        struct wh *w = NULL;
        int res = open_wh(r, &w, err, errlen);
        if (res < 0)
                return res;
        const char *mode = cfg_get(job_cfg(r), "etl", "mode");
        bool done = false;
        char *sql = NULL;
        res = published_already(w, r->job_id, &done, err, errlen);
        if (res == 0 && !done)
                res = sqlfile_load(job_cfg(r), wh_dialect(w), "publish.sql", &sql, err, errlen);
        if (res == 0 && !done) {
                char msg[512] = "", mark[256], when[32] = "1970-01-01 00:00:00";
                time_t now = time(NULL);
                struct tm tm;
                if (gmtime_r(&now, &tm))
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
                util_setf(mark, sizeof(mark),
                          "INSERT INTO etld_publishes (job_id, mode, published_at) "
                          "VALUES (%lld, '%s', '%s')",
                          (long long)r->job_id,
                          strcmp(mode, "incremental") == 0 ? "incremental" : "full", when);
                res = wh_begin(w, msg, sizeof(msg));
                if (res == 0)
                        res = wh_exec(w, sql, msg, sizeof(msg));
                if (res == 0)
                        res = wh_exec(w, mark, msg, sizeof(msg));
                if (res == 0)
                        res = wh_commit(w, msg, sizeof(msg));
                if (res < 0) {
                        wh_rollback(w);
                        snprintf(err, errlen, "%s/publish.sql: %s", wh_dialect(w), msg);
                }
        }
        struct etl_plan *plan = NULL;
        if (res == 0) {
                res = etlplan_read(w, r->job_id, &plan, err, errlen);
                if (res == -ENOENT) /* Redshift reads its prefixes itself: no plan */
                        res = 0;
        }
        if (res == 0) {
                json_t *objects = plan ? json_incref(plan->objects) : json_array();
                r->published = json_pack("{s:s, s:s, s:o}", "target", st(r)->ledger_target,
                                         "mode", plan ? plan->mode : mode, "objects", objects);
                if (!r->published)
                        res = -ENOMEM;
        }
        if (res == 0) {
                if (!r->events)
                        r->events = json_array();
                json_array_append_new(r->events,
                                      json_sprintf("%s %s publish of %s",
                                                   done ? "found the" : "made the",
                                                   plan ? plan->mode : mode,
                                                   st(r)->ledger_target));
        }
        etlplan_free(plan);
        free(sql);
        close_wh(r, w);
        return res;
}

static int start_publish(struct step_run *r)
{
        return start_work(r, publish_work);
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
        .description = "data-quality checks of the new rows, before they are published",
        .start = start_check,
        .cancel = cancel_sql,
};

const struct step_ops step_publish = {
        .name = "publish",
        .description = "merge the checked rows into the published star tables, in one "
                       "transaction",
        .start = start_publish,
        .cancel = cancel_sql,
};
