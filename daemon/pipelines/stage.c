/* stage.c - the steps of the stage pipeline: create the project bucket and
 * copy the data set into it with server-side copies.
 *
 *   create-bucket  CreateBucket [stage] bucket in [aws] region.  A bucket we
 *                  already own is success.  Outputs (one namespace per job,
 *                  so every key names its step's subject): bucket,
 *                  bucket_region, and bucket_created = "true" when this
 *                  job's request made it, or bucket_existed = "true" when it
 *                  was there already (teardown deletes the bucket only when
 *                  bucket_created is "true"; a later attempt that finds the
 *                  bucket never overwrites that).
 *   copy           Lists [stage] source_bucket (region [stage] source_region)
 *                  under song_data/, log_data/ and the key
 *                  log_json_path.json, lists the project bucket under the
 *                  same prefixes, and CopyObject's every source object that
 *                  is not already there with the same size and ETag, at most
 *                  [stage] concurrency at once.  A re-run therefore copies
 *                  nothing, and a run resumed after kill -9 copies only what
 *                  was not done.  (A multipart ETag "...-N" changes when S3
 *                  copies the object in one part: such objects compare by
 *                  size only.)  Progress: objects and bytes copied.  Outputs:
 *                  the counts of this attempt.
 *
 * [stage] dry_run = true: create-bucket only asks whether the bucket exists
 * (HeadBucket) and copy only lists; both say in the job's events what they
 * would do (the first 500 objects by name, then counts) and record the
 * counts in the outputs.
 *
 * Everything runs on the loop thread on the daemon's HTTP engine; only the
 * credentials are resolved on the thread pool (awsenv.c).  Cancel cancels
 * every request of the step (s3_cancel_tag); the step ends once the last one
 * reported back.  A failure that may pass (network, 5xx, throttling beyond
 * the client's own retries) is transient: the engine runs the step again and
 * the skip rule makes that cheap. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "awsenv.h"
#include "log.h"
#include "proto.h"
#include "pipelines.h"
#include "util.h"

#define NPREFIXES 3
#define DRY_RUN_LIST_MAX 500

static const struct {
        const char *prefix;
        bool exact; /* the key itself, not a prefix */
} stage_prefixes[NPREFIXES] = {
        { "song_data/", false },
        { "log_data/", false },
        { "log_json_path.json", true },
};

struct obj {
        char *key;
        int64_t size;
        char *etag;
};

struct objvec {
        struct obj *v;
        size_t n, cap;
};

struct stage;

struct lister {
        struct stage *st;
        struct s3_client *c;
        const char *bucket;
        const char *prefix;
        bool exact;
        bool missing_ok; /* the project bucket: NoSuchBucket means empty */
        struct objvec *out;
};

struct stage {
        struct step_run *r;
        uv_timer_t defer; /* closed to end the step from a fresh loop turn */
        bool finishing;
        bool dry_run;
        const char *bucket;     /* [stage] bucket */
        const char *src_bucket; /* [stage] source_bucket */
        const char *src_region; /* [stage] source_region */
        unsigned concurrency;
        struct awsenv *env;
        struct s3_client *src, *dst;

        /* listing */
        struct lister listers[2 * NPREFIXES];
        struct objvec srcv[NPREFIXES], dstv[NPREFIXES];
        unsigned listing; /* list requests outstanding */

        /* copying */
        struct obj **todo;
        size_t ntodo, next, running;
        uint64_t total, total_bytes, skipped, skipped_bytes, copied, copied_bytes;

        /* the first failure */
        int err;
        bool transient;
        char msg[1024];
};

/* ---- small helpers ---- */

static void objvec_free(struct objvec *v)
{
        for (size_t i = 0; i < v->n; i++) {
                free(v->v[i].key);
                free(v->v[i].etag);
        }
        free(v->v);
        v->v = NULL;
        v->n = v->cap = 0;
}

static int objvec_take(struct objvec *v, struct s3_object *o)
{
        if (v->n == v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 1024;
                struct obj *n = realloc(v->v, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                v->v = n;
                v->cap = cap;
        }
        v->v[v->n].key = o->key;
        v->v[v->n].size = o->size;
        v->v[v->n].etag = o->etag;
        o->key = NULL;
        o->etag = NULL;
        v->n++;
        return 0;
}

static int cmp_obj(const void *a, const void *b)
{
        return strcmp(((const struct obj *)a)->key, ((const struct obj *)b)->key);
}

/* ETags as S3 sends them, with or without quotes, any case. */
static bool same_etag(const char *a, const char *b)
{
        if (!a || !b)
                return false;
        size_t la = strlen(a), lb = strlen(b);
        if (la >= 2 && a[0] == '"' && a[la - 1] == '"') {
                a++;
                la -= 2;
        }
        if (lb >= 2 && b[0] == '"' && b[lb - 1] == '"') {
                b++;
                lb -= 2;
        }
        return la == lb && strncasecmp(a, b, la) == 0;
}

/* Is the copy at dst the source object? */
static bool same_object(const struct obj *src, const struct obj *dst)
{
        if (src->size != dst->size)
                return false;
        if (src->etag && strchr(src->etag, '-'))
                return true; /* multipart: CopyObject gives it a single-part ETag */
        return same_etag(src->etag, dst->etag);
}

static void fail(struct stage *st, int err, bool transient, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void fail(struct stage *st, int err, bool transient, const char *fmt, ...)
{
        if (st->err < 0)
                return; /* the first failure tells the story */
        st->err = err;
        st->transient = transient;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
        va_end(ap);
}

static void fail_s3(struct stage *st, const struct s3_result *res)
{
        if (res->err == -ECANCELED) {
                fail(st, -ECANCELED, false, "cancelled");
                return;
        }
        fail(st, res->err, awsenv_s3_transient(res), "%s",
             res->msg[0] ? res->msg : strerror(-res->err));
}

static void output(struct stage *st, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void output(struct stage *st, const char *key, const char *fmt, ...)
{
        char v[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v, sizeof(v), fmt, ap);
        va_end(ap);
        step_output(st->r, key, v);
}

/* ---- the step's life ---- */

static void stage_free(struct stage *st)
{
        s3_client_free(st->src); /* nothing outstanding by now */
        s3_client_free(st->dst);
        awsenv_free(st->env);
        for (int i = 0; i < NPREFIXES; i++) {
                objvec_free(&st->srcv[i]);
                objvec_free(&st->dstv[i]);
        }
        free(st->todo);
        free(st);
}

static void free_closed(uv_handle_t *h)
{
        stage_free(h->data);
}

static void end_closed(uv_handle_t *h)
{
        struct stage *st = h->data;
        struct step_run *r = st->r;
        int err = st->err;
        bool transient = st->transient;
        char msg[sizeof(st->msg)];
        snprintf(msg, sizeof(msg), "%s", st->msg);
        stage_free(st);
        if (err < 0 && step_cancelled(r))
                err = -ECANCELED;
        step_done(r, err, transient, "%s", err < 0 ? msg : "");
}

/* Ends the step once nothing is outstanding, from a later loop turn (so that
 * a cancel called from inside the engine never sees the step end under it). */
static void finish(struct stage *st)
{
        if (st->finishing)
                return;
        st->finishing = true;
        /* The clients are freed in end_closed: this may run from a done
         * callback inside s3_cancel_tag, which still walks a client. */
        st->r->step_data = NULL;
        uv_close((uv_handle_t *)&st->defer, end_closed);
}

static struct stage *stage_new(struct step_run *r)
{
        struct stage *st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        st->r = r;
        st->dry_run = cfg_get_bool(r->cfg, "stage", "dry_run");
        st->bucket = cfg_get(r->cfg, "stage", "bucket");
        st->src_bucket = cfg_get(r->cfg, "stage", "source_bucket");
        st->src_region = cfg_get(r->cfg, "stage", "source_region");
        long long c = cfg_get_int(r->cfg, "stage", "concurrency");
        st->concurrency = c < 1 ? 1 : c > 1024 ? 1024 : (unsigned)c;
        uv_timer_init(r->loop, &st->defer);
        st->defer.data = st;
        r->step_data = st;
        return st;
}

static int check_config(struct step_run *r, bool need_source)
{
        const char *b = cfg_get(r->cfg, "stage", "bucket");
        if (!b || !*b) {
                step_done(r, -EINVAL, false,
                          "stage.bucket is not set: name the project's bucket in [stage] bucket "
                          "or with --set stage.bucket=NAME");
                return 1;
        }
        const char *s = cfg_get(r->cfg, "stage", "source_bucket");
        if (need_source && (!s || !*s)) {
                step_done(r, -EINVAL, false, "stage.source_bucket is not set");
                return 1;
        }
        if (need_source && strcmp(s, b) == 0) {
                step_done(r, -EINVAL, false,
                          "stage.bucket and stage.source_bucket are both '%s': the copy needs "
                          "two buckets",
                          b);
                return 1;
        }
        return 0;
}

static void stage_cancel(struct step_run *r)
{
        struct stage *st = r->step_data;
        if (!st || st->finishing)
                return;
        /* done callbacks may run from here: they only count and, when the
         * last request is back, schedule the end (finish is deferred). */
        if (st->src)
                s3_cancel_tag(st->src, r);
        if (st->dst)
                s3_cancel_tag(st->dst, r);
}

/* ---- create-bucket ---- */

static void bucket_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct stage *st = ud;
        const char *region = st->env->region;
        if (st->dry_run) {
                if (res->err == 0) {
                        step_event(st->r,
                                   "dry run: bucket s3://%s exists already; nothing to create",
                                   st->bucket);
                        output(st, "bucket_would_create", "false");
                } else if (res->err == -ENOENT) {
                        step_event(st->r, "dry run: would create bucket s3://%s in %s", st->bucket,
                                   region);
                        output(st, "bucket_would_create", "true");
                } else {
                        fail_s3(st, res);
                }
        } else if (res->err < 0) {
                fail_s3(st, res);
        } else {
                output(st, "bucket", "%s", st->bucket);
                output(st, "bucket_region", "%s", region);
                if (res->already_existed) {
                        output(st, "bucket_existed", "true");
                        step_event(st->r, "bucket s3://%s is ours already", st->bucket);
                } else {
                        output(st, "bucket_created", "true");
                        step_event(st->r, "created bucket s3://%s in %s", st->bucket, region);
                }
        }
        finish(st);
}

static void bucket_creds(struct step_run *r, struct awsenv *env, int err, const char *msg)
{
        struct stage *st = r->step_data;
        st->env = env;
        if (err < 0) {
                fail(st, err, err == -ETIMEDOUT || err == -EHOSTUNREACH, "%s", msg);
                finish(st);
                return;
        }
        int res = awsenv_s3_client(r, env, NULL, &st->dst);
        struct s3_cb cb = { bucket_done, st, r };
        if (res == 0)
                res = st->dry_run ? s3_head_bucket(st->dst, st->bucket, &cb, NULL)
                                  : s3_create_bucket(st->dst, st->bucket, NULL, &cb, NULL);
        if (res < 0) {
                fail(st, res, false, "cannot start the S3 request: %s", strerror(-res));
                finish(st);
        }
}

/* Both steps: check the configuration, then resolve the credentials and go
 * on in `then` on the loop. */
static int start_stage(struct step_run *r, bool copying, awsenv_ready_fn then)
{
        if (check_config(r, copying))
                return 0;
        struct stage *st = stage_new(r);
        if (!st)
                return -ENOMEM;
        int res = awsenv_resolve(r, then);
        if (res < 0) {
                r->step_data = NULL;
                uv_close((uv_handle_t *)&st->defer, free_closed);
        }
        return res;
}

static int start_create_bucket(struct step_run *r)
{
        return start_stage(r, false, bucket_creds);
}

/* ---- copy ---- */

static void copy_fill(struct stage *st);

struct copy_job {
        struct stage *st;
        struct obj *o;
};

static void copy_one_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct copy_job *j = ud;
        struct stage *st = j->st;
        st->running--;
        if (res->err < 0) {
                fail_s3(st, res);
        } else {
                st->copied++;
                st->copied_bytes += (uint64_t)(j->o->size > 0 ? j->o->size : 0);
                atomic_store(&st->r->progress.objects, st->copied);
                atomic_store(&st->r->progress.bytes, st->copied_bytes);
        }
        free(j);
        copy_fill(st);
}

static void copy_outputs(struct stage *st)
{
        output(st, "source", "s3://%s", st->src_bucket);
        output(st, "objects_total", "%llu", (unsigned long long)st->total);
        output(st, "bytes_total", "%llu", (unsigned long long)st->total_bytes);
        output(st, "objects_present", "%llu", (unsigned long long)st->skipped);
        if (st->dry_run) {
                output(st, "dry_run", "true");
                output(st, "objects_would_copy", "%zu", st->ntodo);
                output(st, "bytes_would_copy", "%llu",
                       (unsigned long long)(st->total_bytes - st->skipped_bytes));
                return;
        }
        output(st, "objects_copied", "%llu", (unsigned long long)st->copied);
        output(st, "bytes_copied", "%llu", (unsigned long long)st->copied_bytes);
}

static void copy_fill(struct stage *st)
{
        bool stop = st->err < 0 || step_cancelled(st->r);
        while (!stop && st->running < st->concurrency && st->next < st->ntodo) {
                struct copy_job *j = calloc(1, sizeof(*j));
                if (!j) {
                        fail(st, -ENOMEM, true, "out of memory");
                        break;
                }
                j->st = st;
                j->o = st->todo[st->next++];
                struct s3_cb cb = { copy_one_done, j, st->r };
                st->running++;
                int res = s3_copy_object(st->dst, st->src_bucket, j->o->key, st->bucket,
                                         j->o->key, &cb, NULL);
                if (res < 0) {
                        st->running--;
                        fail(st, res, false, "cannot start CopyObject s3://%s/%s: %s",
                             st->src_bucket, j->o->key, strerror(-res));
                        free(j);
                        break;
                }
                stop = st->err < 0 || step_cancelled(st->r);
        }
        if (st->running > 0)
                return;
        if (st->next < st->ntodo && !(st->err < 0 || step_cancelled(st->r)))
                return;
        /* all back */
        copy_outputs(st);
        if (st->err == 0 && !step_cancelled(st->r))
                step_event(st->r, "copied %llu objects (%llu bytes) into s3://%s",
                           (unsigned long long)st->copied, (unsigned long long)st->copied_bytes,
                           st->bucket);
        else if (st->copied)
                step_event(st->r, "copied %llu objects (%llu bytes) into s3://%s before stopping",
                           (unsigned long long)st->copied, (unsigned long long)st->copied_bytes,
                           st->bucket);
        finish(st);
}

/* Both listings are in: decide what to copy. */
static void plan(struct stage *st)
{
        size_t cap = 0;
        for (int i = 0; i < NPREFIXES; i++)
                cap += st->srcv[i].n;
        st->todo = calloc(cap ? cap : 1, sizeof(*st->todo));
        if (!st->todo) {
                fail(st, -ENOMEM, true, "out of memory planning the copy");
                finish(st);
                return;
        }
        for (int i = 0; i < NPREFIXES; i++) {
                struct objvec *s = &st->srcv[i], *d = &st->dstv[i];
                if (s->n > 1)
                        qsort(s->v, s->n, sizeof(*s->v), cmp_obj);
                if (d->n > 1)
                        qsort(d->v, d->n, sizeof(*d->v), cmp_obj);
                size_t k = 0;
                for (size_t j = 0; j < s->n; j++) {
                        struct obj *o = &s->v[j];
                        st->total++;
                        st->total_bytes += (uint64_t)(o->size > 0 ? o->size : 0);
                        while (k < d->n && strcmp(d->v[k].key, o->key) < 0)
                                k++;
                        if (k < d->n && strcmp(d->v[k].key, o->key) == 0 &&
                            same_object(o, &d->v[k])) {
                                st->skipped++;
                                st->skipped_bytes += (uint64_t)(o->size > 0 ? o->size : 0);
                                continue;
                        }
                        st->todo[st->ntodo++] = o;
                }
                /* the project bucket's listing is no longer needed */
                objvec_free(d);
        }
        uint64_t todo_bytes = st->total_bytes - st->skipped_bytes;
        if (st->total == 0) {
                fail(st, -ENOENT, false,
                     "s3://%s has no objects under song_data/, log_data/ or "
                     "log_json_path.json: nothing to stage",
                     st->src_bucket);
                finish(st);
                return;
        }
        if (st->dry_run) {
                /* the list, then the summary (status shows the newest events) */
                for (size_t i = 0; i < st->ntodo && i < DRY_RUN_LIST_MAX; i++)
                        step_event(st->r, "dry run: would copy s3://%s/%s (%lld bytes)",
                                   st->src_bucket, st->todo[i]->key, (long long)st->todo[i]->size);
                if (st->ntodo > DRY_RUN_LIST_MAX)
                        step_event(st->r, "dry run: ... and %zu more objects",
                                   st->ntodo - DRY_RUN_LIST_MAX);
                step_event(st->r,
                           "dry run: s3://%s holds %llu objects (%llu bytes) to stage; %llu are in "
                           "s3://%s already; would copy %zu (%llu bytes)",
                           st->src_bucket, (unsigned long long)st->total,
                           (unsigned long long)st->total_bytes, (unsigned long long)st->skipped,
                           st->bucket, st->ntodo, (unsigned long long)todo_bytes);
                copy_outputs(st);
                finish(st);
                return;
        }
        step_event(st->r,
                   "s3://%s holds %llu objects (%llu bytes) to stage; %llu are in s3://%s already; "
                   "copying %zu (%llu bytes), %u at a time",
                   st->src_bucket, (unsigned long long)st->total,
                   (unsigned long long)st->total_bytes, (unsigned long long)st->skipped, st->bucket,
                   st->ntodo, (unsigned long long)todo_bytes, st->concurrency);
        log_info("job", "job=%lld step=copy: %zu objects to copy, %llu present",
                 (long long)st->r->job_id, st->ntodo, (unsigned long long)st->skipped);
        step_progress_total(st->r, st->ntodo, todo_bytes);
        copy_fill(st);
}

static int list_page(struct lister *l, const char *token);

static void list_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct lister *l = ud;
        struct stage *st = l->st;
        st->listing--;
        if (res->err < 0) {
                if (!(l->missing_ok && res->err == -ENOENT))
                        fail_s3(st, res);
        } else if (st->err == 0 && !step_cancelled(st->r)) {
                struct s3_list_page *p = s3_result_take_page(res);
                for (size_t i = 0; p && i < p->n; i++) {
                        if (l->exact && strcmp(p->objects[i].key, l->prefix) != 0)
                                continue;
                        if (objvec_take(l->out, &p->objects[i]) < 0) {
                                fail(st, -ENOMEM, true, "out of memory listing s3://%s",
                                     l->bucket);
                                break;
                        }
                }
                if (p && p->truncated && p->next_token && st->err == 0) {
                        int r = list_page(l, p->next_token);
                        if (r < 0)
                                fail(st, r, false, "cannot list s3://%s: %s", l->bucket,
                                     strerror(-r));
                }
                s3_list_page_free(p);
        }
        if (st->listing > 0)
                return;
        if (st->err < 0 || step_cancelled(st->r)) {
                if (st->err == 0)
                        fail(st, -ECANCELED, false, "cancelled");
                finish(st);
                return;
        }
        plan(st);
}

static int list_page(struct lister *l, const char *token)
{
        struct s3_cb cb = { list_done, l, l->st->r };
        int r = s3_list_objects(l->c, l->bucket, l->prefix, token, 0, NULL, &cb, NULL);
        if (r == 0)
                l->st->listing++;
        return r;
}

static void copy_creds(struct step_run *r, struct awsenv *env, int err, const char *msg)
{
        struct stage *st = r->step_data;
        st->env = env;
        if (err < 0) {
                fail(st, err, err == -ETIMEDOUT || err == -EHOSTUNREACH, "%s", msg);
                finish(st);
                return;
        }
        int res = awsenv_s3_client(r, env, st->src_region, &st->src);
        if (res == 0)
                res = awsenv_s3_client(r, env, NULL, &st->dst);
        for (int i = 0; res == 0 && i < 2 * NPREFIXES; i++) {
                struct lister *l = &st->listers[i];
                bool src = i < NPREFIXES;
                int p = i % NPREFIXES;
                l->st = st;
                l->c = src ? st->src : st->dst;
                l->bucket = src ? st->src_bucket : st->bucket;
                l->prefix = stage_prefixes[p].prefix;
                l->exact = stage_prefixes[p].exact;
                l->missing_ok = !src;
                l->out = src ? &st->srcv[p] : &st->dstv[p];
                res = list_page(l, NULL);
        }
        if (res < 0) {
                fail(st, res, false, "cannot start listing: %s", strerror(-res));
                if (st->listing == 0)
                        finish(st);
                else
                        stage_cancel(r);
        }
}

static int start_copy(struct step_run *r)
{
        return start_stage(r, true, copy_creds);
}

const struct step_ops step_create_bucket = {
        .name = "create-bucket",
        .description = "create the project bucket ([stage] bucket) unless we own it already",
        .start = start_create_bucket,
        .cancel = stage_cancel,
};

const struct step_ops step_stage_copy = {
        .name = "copy",
        .description = "server-side copy of song_data/, log_data/ and log_json_path.json from "
                       "the source bucket, skipping objects already there",
        .start = start_copy,
        .cancel = stage_cancel,
};
