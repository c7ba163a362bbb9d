/* etlplan.c - which source objects an etl run loads.  See etlplan.h.
 *
 * The decision, in order: etl.mode = full loads everything; incremental
 * falls back to full when no publish of the warehouse is in the journal,
 * when the warehouse's own latest publish (etld_publishes) is not the one
 * the journal remembers (a warehouse restored or replaced behind etld's
 * back), or when a published object vanished or changed (size or tag:
 * S3's ETag, a file's mtime); otherwise it loads the listed objects the
 * ledger does not hold. */
#include "etlplan.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load/source.h"
#include "util.h"

const char *const etlplan_sources[ETLPLAN_SOURCES] = {"log_data", "song_data"};

struct etl_plan *etlplan_free(struct etl_plan *p)
{
        if (!p)
                return NULL;
        objlist_free(&p->objects);
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                free(p->manifest[i]);
        free(p);
        return NULL;
}

static struct etl_plan *plan_new(void)
{
        return calloc(1, sizeof(struct etl_plan));
}

static int source_index(const char *name)
{
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                if (name && strcmp(name, etlplan_sources[i]) == 0)
                        return i;
        return -1;
}

static int add_object(struct etl_plan *p, int src, const char *uri, int64_t size, const char *tag)
{
        int r = objlist_add(&p->objects, etlplan_sources[src], uri, size, tag, 0);
        if (r == 0)
                p->count[src]++;
        return r;
}

static json_int_t cell_int(json_t *row, size_t i)
{
        json_t *v = json_array_get(row, i);
        if (json_is_string(v)) { /* PostgreSQL's BIGINT comes back as text */
                long long n = 0;
                return util_parse_ll(json_string_value(v), &n) == 0 ? (json_int_t)n : 0;
        }
        return json_integer_value(v);
}

/* ---- the state machine ---- */

#define STORE_BATCH 512 /* plan rows per wh_copy_rows */
#define READ_PAGE 2000  /* plan rows per query when a plan is read back */

struct etlplan_req {
        struct wh *w;
        int64_t job;
        bool read_only; /* etlplan_read: no new plan */
        bool incremental;
        char *uri[ETLPLAN_SOURCES]; /* the [s3] sources, copied */
        const struct etlplan_ledger *l;
        const struct source_env *env;
        etlplan_cb cb;
        void *ud;
        /* the warehouse operation running, and what comes after it */
        void (*next)(struct etlplan_req *q, const struct wh_result *res);
        bool in_tx; /* BEGIN sent: a failure rolls back */
        bool cancelled;
        /* the listing */
        int listing;             /* the source being listed */
        struct source *src;      /* its source, while listed */
        struct etl_plan *listed; /* every object (a full plan) */
        int64_t wh_last;         /* the warehouse's latest publish */
        /* the plan, made or read */
        struct etl_plan *plan;
        /* store: rows handed to wh_copy_rows, valid until its callback */
        struct cell *cells;
        struct wh_rows rows;
        size_t stored;  /* plan objects handed over (or read back) so far */
        struct buf sql; /* Redshift's INSERTs */
};

static void req_free(struct etlplan_req *q)
{
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                free(q->uri[i]);
        source_free(q->src);
        etlplan_free(q->listed);
        etlplan_free(q->plan);
        free(q->cells);
        buf_free(&q->sql);
        free(q);
}

/* Calls back (once) and frees q.  On success the plan goes to the caller. */
static void end(struct etlplan_req *q, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void end(struct etlplan_req *q, int err, const char *fmt, ...)
{
        char msg[1024] = "";
        if (err < 0 && q->cancelled)
                err = -ECANCELED;
        if (err == -ECANCELED) {
                util_setf(msg, sizeof(msg), "cancelled");
        } else if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
        }
        if (err == -ENOMEM && !msg[0])
                util_setf(msg, sizeof(msg), "out of memory planning the load");
        if (err < 0 && q->in_tx)
                wh_rollback(q->w, NULL, NULL); /* the plan is written whole or not at all */
        struct etl_plan *p = NULL;
        if (err == 0) {
                p = q->plan;
                q->plan = NULL;
        }
        etlplan_cb cb = q->cb;
        void *ud = q->ud;
        req_free(q);
        cb(ud, err, msg, p);
}

static void on_wh(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct etlplan_req *q = ud;
        if (res->err < 0) {
                end(q, res->err, "%s", res->msg);
                return;
        }
        if (q->cancelled) {
                end(q, -ECANCELED, NULL);
                return;
        }
        q->next(q, res);
}

/* After queueing an operation with on_wh and q (rc: what the queueing
 * returned): next gets its result; a refusal ends the request.  The
 * callback never comes before the call returns. */
static void call(struct etlplan_req *q,
                 void (*next)(struct etlplan_req *, const struct wh_result *), int rc)
{
        q->next = next;
        if (rc < 0)
                end(q, rc, "cannot queue a statement on the warehouse: %s", strerror(-rc));
}

static void store(struct etlplan_req *q);
static void decide(struct etlplan_req *q);

/* ---- reading a recorded plan ---- */

static void plan_rows(struct etlplan_req *q, const struct wh_result *res);

/* The plan's rows come READ_PAGE at a time (seq counts from 0), so that
 * reading back a plan of many objects holds one page of result rows. */
static void plan_page(struct etlplan_req *q)
{
        char sql[320];
        /* "tag" quoted: TAG is a reserved word on Redshift ("Reserved
         * words", r_pg_keywords.html); quoted it is the same column on all
         * three targets. */
        util_setf(sql, sizeof(sql),
                  "SELECT source, uri, size, \"tag\" FROM etld_plan WHERE job_id = %" PRId64
                  " AND seq >= %zu ORDER BY seq LIMIT %d",
                  q->job, q->stored, READ_PAGE);
        call(q, plan_rows, wh_query(q->w, sql, on_wh, q));
}

static void plan_rows(struct etlplan_req *q, const struct wh_result *res)
{
        size_t i;
        json_t *row;
        json_array_foreach(res->rows, i, row)
        {
                int src = source_index(json_string_value(json_array_get(row, 0)));
                if (src >= 0 && add_object(q->plan, src, json_string_value(json_array_get(row, 1)),
                                           cell_int(row, 2),
                                           json_string_value(json_array_get(row, 3))) < 0) {
                        end(q, -ENOMEM, NULL);
                        return;
                }
        }
        q->stored += json_array_size(res->rows);
        if (json_array_size(res->rows) < READ_PAGE) {
                end(q, 0, NULL);
                return;
        }
        plan_page(q);
}

static void last_publish(struct etlplan_req *q, const struct wh_result *res);

static void run_row(struct etlplan_req *q, const struct wh_result *res)
{
        if (json_array_size(res->rows) == 0) {
                if (q->read_only) {
                        end(q, -ENOENT, "job %" PRId64 " recorded no plan in the warehouse",
                            q->job);
                        return;
                }
                call(q, last_publish,
                     wh_query(q->w, "SELECT MAX(job_id) FROM etld_publishes", on_wh, q));
                return;
        }
        if (!(q->plan = plan_new())) {
                end(q, -ENOMEM, NULL);
                return;
        }
        json_t *run = json_array_get(res->rows, 0);
        util_setf(q->plan->mode, sizeof(q->plan->mode), "%s",
                  json_string_value(json_array_get(run, 0)));
        util_setf(q->plan->reason, sizeof(q->plan->reason), "%s",
                  json_string_value(json_array_get(run, 1)));
        q->stored = 0;
        plan_page(q);
}

static int req_start(struct wh *w, int64_t job, etlplan_cb cb, void *ud, struct etlplan_req **ret,
                     struct etlplan_req *q)
{
        q->w = w;
        q->job = job;
        q->cb = cb;
        q->ud = ud;
        q->next = run_row;
        char sql[256];
        util_setf(sql, sizeof(sql), "SELECT mode, reason FROM etld_run WHERE job_id = %" PRId64,
                  job);
        int rc = wh_query(w, sql, on_wh, q);
        if (rc < 0) {
                req_free(q);
                return rc;
        }
        if (ret)
                *ret = q;
        return 0;
}

int etlplan_read(struct wh *w, int64_t job, etlplan_cb cb, void *ud, struct etlplan_req **ret)
{
        struct etlplan_req *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->read_only = true;
        return req_start(w, job, cb, ud, ret, q);
}

void etlplan_cancel(struct etlplan_req *q)
{
        if (!q || q->cancelled)
                return;
        q->cancelled = true;
        if (q->src)
                source_cancel(q->src); /* its listing's callback ends the request */
}

/* ---- listing the sources ---- */

static void list_next(struct etlplan_req *q);

static void listed_cb(void *ud, int err, const char *msg, struct source_object *objs, size_t n)
{
        struct etlplan_req *q = ud;
        int i = q->listing;
        source_free(q->src);
        q->src = NULL;
        if (err < 0 || q->cancelled) {
                source_objects_free(objs, n);
                end(q, err < 0 ? err : -ECANCELED, "s3.%s: %s", etlplan_sources[i], msg);
                return;
        }
        int r = 0;
        for (size_t k = 0; r == 0 && k < n; k++)
                r = add_object(q->listed, i, objs[k].uri, (int64_t)objs[k].size, objs[k].tag);
        source_objects_free(objs, n);
        if (r < 0) {
                end(q, r, "out of memory listing s3.%s", etlplan_sources[i]);
                return;
        }
        q->listing++;
        list_next(q);
}

static void list_next(struct etlplan_req *q)
{
        int i = q->listing;
        if (i == ETLPLAN_SOURCES) {
                decide(q);
                return;
        }
        char e[512] = "";
        int r = source_open(q->uri[i] ? q->uri[i] : "", q->env, &q->src, e, sizeof(e));
        if (r == 0)
                r = source_list(q->src, listed_cb, q);
        if (r < 0) {
                if (!e[0])
                        util_setf(e, sizeof(e), "cannot list '%s': %s", q->uri[i] ? q->uri[i] : "",
                                  strerror(-r));
                end(q, r, "s3.%s: %s", etlplan_sources[i], e);
        }
}

static void last_publish(struct etlplan_req *q, const struct wh_result *res)
{
        q->wh_last = (int64_t)cell_int(json_array_get(res->rows, 0), 0);
        if (!(q->listed = plan_new())) {
                end(q, -ENOMEM, NULL);
                return;
        }
        list_next(q);
}

static bool same_tag(const char *a, const char *b)
{
        return a && b ? strcmp(a, b) == 0 : !a && !b;
}

/* Incremental: the listed objects the ledger lacks, or why a full rebuild
 * is needed instead (*full set, reason written).  The ledger is sorted by
 * URI; an object listed under another source than the ledger's counts as
 * gone from where it was. */
static int incremental(const struct etl_plan *listed, const struct etlplan_ledger *l,
                       int64_t wh_last, struct etl_plan *p, bool *full)
{
        *full = true;
        if (!l || l->job == 0) {
                util_setf(p->reason, sizeof(p->reason),
                          "no earlier publish of this warehouse: a full run");
                return 0;
        }
        if (wh_last != l->job) {
                util_setf(p->reason, sizeof(p->reason),
                          "the warehouse's latest publish is job %" PRId64
                          " but the journal's is job %" PRId64 ": a full rebuild",
                          wh_last, l->job);
                return 0;
        }
        const struct objlist *led = &l->objects;
        bool *seen = calloc(led->n ? led->n : 1, sizeof(*seen));
        if (!seen)
                return -ENOMEM;
        const struct objlist_item *changed = NULL;
        for (size_t i = 0; i < listed->objects.n; i++) {
                const struct objlist_item *o = &listed->objects.v[i];
                const struct objlist_item *e = objlist_find(led, o->uri);
                if (!e || strcmp(e->source, o->source) != 0)
                        continue;
                seen[e - led->v] = true;
                if (!changed && (e->size != o->size || !same_tag(e->tag, o->tag)))
                        changed = e;
        }
        const struct objlist_item *gone = NULL;
        for (size_t i = 0; !gone && i < led->n; i++)
                if (!seen[i])
                        gone = &led->v[i];
        free(seen);
        if (gone) {
                util_setf(p->reason, sizeof(p->reason),
                          "'%s' (s3.%s), published by job %" PRId64
                          ", is no longer there: a full rebuild",
                          gone->uri, gone->source, gone->job);
                return 0;
        }
        if (changed) {
                util_setf(p->reason, sizeof(p->reason),
                          "'%s', published by job %" PRId64
                          ", changed since (size or ETag/mtime): a full rebuild",
                          changed->uri, changed->job);
                return 0;
        }
        *full = false;
        for (size_t i = 0; i < listed->objects.n; i++) {
                const struct objlist_item *o = &listed->objects.v[i];
                if (objlist_find(led, o->uri))
                        continue;
                int r = add_object(p, source_index(o->source), o->uri, o->size, o->tag);
                if (r < 0)
                        return r;
        }
        util_setf(p->reason, sizeof(p->reason),
                  "%zu new objects (%zu log_data, %zu song_data) after job %" PRId64
                  "'s publish of %zu",
                  p->objects.n, p->count[0], p->count[1], l->job, led->n);
        return 0;
}

/* A SQL string literal for Redshift, where a backslash escapes too. */
static int literal(struct buf *b, const char *v)
{
        int r = buf_append(b, "'", 1);
        for (const char *c = v; r == 0 && *c; c++)
                r = *c == '\''   ? buf_append(b, "\'\'", 2)
                    : *c == '\\' ? buf_append(b, "\\\\", 2)
                                 : buf_append(b, c, 1);
        return r == 0 ? buf_append(b, "'", 1) : r;
}

/* ---- writing the plan into the warehouse (one transaction) ---- */

static void committed(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        q->in_tx = false;
        end(q, 0, NULL);
}

static void commit(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        call(q, committed, wh_commit(q->w, on_wh, q));
}

/* Redshift has no COPY FROM STDIN: the plan goes in as INSERTs of at most
 * 500 rows each, one statement after the other. */
static void insert_next(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        const struct etl_plan *p = q->plan;
        size_t n = p->objects.n;
        if (q->stored == n) {
                commit(q, NULL);
                return;
        }
        struct buf *b = &q->sql;
        b->len = 0;
        int r = buf_printf(b, "INSERT INTO etld_plan (job_id, seq, source, uri, size, \"tag\") "
                              "VALUES "); /* reserved: quoted */
        for (size_t k = 0; r == 0 && k < 500 && q->stored < n; k++, q->stored++) {
                size_t i = q->stored;
                const struct objlist_item *o = &p->objects.v[i];
                if (k > 0)
                        r = buf_append(b, ", ", 2);
                if (r == 0)
                        r = buf_printf(b, "(%" PRId64 ", %zu, ", q->job, i);
                if (r == 0)
                        r = literal(b, o->source);
                if (r == 0)
                        r = buf_append(b, ", ", 2);
                if (r == 0)
                        r = literal(b, o->uri);
                if (r == 0)
                        r = buf_printf(b, ", %" PRId64 ", ", o->size);
                if (r == 0)
                        r = o->tag ? literal(b, o->tag) : buf_append(b, "NULL", 4);
                if (r == 0)
                        r = buf_append(b, ")", 1);
        }
        if (r < 0) {
                end(q, r, "out of memory writing the plan");
                return;
        }
        call(q, insert_next, wh_exec(q->w, b->data, on_wh, q));
}

static void store_run_insert(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        const struct etl_plan *p = q->plan;
        struct buf *b = &q->sql;
        int r = buf_printf(b, "INSERT INTO etld_run (job_id, mode, reason) VALUES (%" PRId64 ", ",
                           q->job);
        if (r == 0)
                r = literal(b, p->mode);
        if (r == 0)
                r = buf_append(b, ", ", 2);
        if (r == 0)
                r = literal(b, p->reason);
        if (r == 0)
                r = buf_append(b, ")", 1);
        if (r < 0) {
                end(q, r, "out of memory writing the plan");
                return;
        }
        call(q, insert_next, wh_exec(q->w, b->data, on_wh, q));
}

static void plan_copy_end(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        call(q, commit, wh_copy_end(q->w, on_wh, q));
}

/* The next batch of etld_plan rows; the cells point into the plan's
 * strings, which outlive the callback. */
static void plan_copy_rows(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        const struct etl_plan *p = q->plan;
        size_t n = p->objects.n;
        if (q->stored == n) {
                plan_copy_end(q, NULL);
                return;
        }
        size_t k = 0;
        for (; k < STORE_BATCH && q->stored < n; k++, q->stored++) {
                const struct objlist_item *o = &p->objects.v[q->stored];
                const char *src = o->source, *uri = o->uri, *tag = o->tag;
                struct cell *c = q->cells + k * 6;
                c[0] = (struct cell){.kind = CELL_INT, .i = q->job};
                c[1] = (struct cell){.kind = CELL_INT, .i = (int64_t)q->stored};
                c[2] = (struct cell){.kind = CELL_TEXT, .text = src, .len = strlen(src)};
                c[3] = (struct cell){.kind = CELL_TEXT, .text = uri, .len = strlen(uri)};
                c[4] = (struct cell){.kind = CELL_INT, .i = o->size};
                c[5] = (struct cell){
                    .kind = tag ? CELL_TEXT : CELL_NULL, .text = tag, .len = tag ? strlen(tag) : 0};
        }
        q->rows = (struct wh_rows){.cells = q->cells, .n_rows = k, .n_cols = 6};
        call(q, plan_copy_rows, wh_copy_rows(q->w, &q->rows, on_wh, q));
}

static void plan_copy_begin(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        static const char *const cols[] = {"job_id", "seq", "source", "uri", "size", "tag"};
        call(q, plan_copy_rows, wh_copy_begin(q->w, "etld_plan", cols, 6, on_wh, q));
}

static void run_copy_end(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        call(q, plan_copy_begin, wh_copy_end(q->w, on_wh, q));
}

static void run_copy_rows(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        const struct etl_plan *p = q->plan;
        struct cell *c = q->cells;
        c[0] = (struct cell){.kind = CELL_INT, .i = q->job};
        c[1] = (struct cell){.kind = CELL_TEXT, .text = p->mode, .len = strlen(p->mode)};
        c[2] = (struct cell){.kind = CELL_TEXT, .text = p->reason, .len = strlen(p->reason)};
        q->rows = (struct wh_rows){.cells = c, .n_rows = 1, .n_cols = 3};
        call(q, run_copy_end, wh_copy_rows(q->w, &q->rows, on_wh, q));
}

static void begun(struct etlplan_req *q, const struct wh_result *res)
{
        (void)res;
        q->in_tx = true;
        if (strcmp(wh_dialect(q->w), "redshift") == 0) {
                store_run_insert(q, NULL);
                return;
        }
        static const char *const cols[] = {"job_id", "mode", "reason"};
        call(q, run_copy_rows, wh_copy_begin(q->w, "etld_run", cols, 3, on_wh, q));
}

static void store(struct etlplan_req *q)
{
        if (!(q->cells = calloc(STORE_BATCH * 6, sizeof(*q->cells)))) {
                end(q, -ENOMEM, NULL);
                return;
        }
        call(q, begun, wh_begin(q->w, on_wh, q));
}

/* The listings are in: the plan, then into the warehouse. */
static void decide(struct etlplan_req *q)
{
        struct etl_plan *p = plan_new();
        if (!p) {
                end(q, -ENOMEM, NULL);
                return;
        }
        bool full = true;
        if (q->incremental) {
                int r = incremental(q->listed, q->l, q->wh_last, p, &full);
                if (r < 0) {
                        etlplan_free(p);
                        end(q, r, NULL);
                        return;
                }
        } else {
                util_setf(p->reason, sizeof(p->reason), "etl.mode = full");
        }
        if (full) {
                char why[sizeof(p->reason)];
                util_setf(why, sizeof(why), "%s", p->reason);
                etlplan_free(p);
                p = q->listed;
                q->listed = NULL;
                util_setf(p->reason, sizeof(p->reason),
                          "%s: %zu objects (%zu log_data, %zu song_data)", why,
                          p->objects.n, p->count[0], p->count[1]);
                for (int i = 0; i < ETLPLAN_SOURCES; i++) {
                        if (p->count[i] > 0)
                                continue;
                        etlplan_free(p);
                        /* Redshift: "The specified S3 prefix ... does not exist" */
                        end(q, -EINVAL,
                            "COPY: no objects found under '%s' (s3.%s: the prefix matches no "
                            "key)",
                            q->uri[i] ? q->uri[i] : "", etlplan_sources[i]);
                        return;
                }
        }
        util_setf(p->mode, sizeof(p->mode), "%s", full ? "full" : "incremental");
        q->plan = p;
        store(q);
}

int etlplan_get(struct wh *w, int64_t job, const struct cfg *c, const struct etlplan_ledger *l,
                const struct source_env *env, etlplan_cb cb, void *ud, struct etlplan_req **ret)
{
        struct etlplan_req *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        for (int i = 0; i < ETLPLAN_SOURCES; i++) {
                const char *uri = cfg_get(c, "s3", etlplan_sources[i]);
                if (uri && !(q->uri[i] = strdup(uri))) {
                        req_free(q);
                        return -ENOMEM;
                }
        }
        const char *mode = cfg_get(c, "etl", "mode");
        q->incremental = mode && strcmp(mode, "incremental") == 0;
        q->l = l;
        q->env = env;
        return req_start(w, job, cb, ud, ret, q);
}

static int write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
        char tmp[4200];
        util_setf(tmp, sizeof(tmp), "%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                int r = -errno;
                util_setf(err, errlen, "cannot write manifest '%s': %s", tmp, strerror(-r));
                return r;
        }
        size_t off = 0;
        while (off < len) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0) {
                        int r = -errno;
                        close(fd);
                        unlink(tmp);
                        util_setf(err, errlen, "cannot write manifest '%s': %s", tmp, strerror(-r));
                        return r;
                }
                off += (size_t)n;
        }
        if (close(fd) < 0 || rename(tmp, path) < 0) {
                int r = -errno;
                unlink(tmp);
                util_setf(err, errlen, "cannot write manifest '%s': %s", path, strerror(-r));
                return r;
        }
        return 0;
}

char *etlplan_manifest_json(const struct etl_plan *p, int src)
{
        /* written entry by entry, not built as one JSON tree: a manifest of
         * 15,000 entries is a megabyte of text, the tree would be ten */
        struct buf b = {0};
        const char *sep = "";
        int r = buf_append(&b, "{\"entries\":[", 12);
        for (size_t k = 0; r == 0 && k < p->objects.n; k++) {
                const struct objlist_item *o = &p->objects.v[k];
                if (source_index(o->source) != src)
                        continue;
                json_t *url = json_string(o->uri);
                char *text = url ? json_dumps(url, JSON_ENCODE_ANY) : NULL;
                json_decref(url);
                /* meta.content_length (Redshift's, optional for JSON): the
                 * listed size, which tells the COPY how big a read to expect */
                r = text ? buf_printf(&b, "%s{\"url\":%s,\"mandatory\":true,"
                                          "\"meta\":{\"content_length\":%" PRId64 "}}",
                                      sep, text, o->size)
                         : -ENOMEM;
                free(text);
                sep = ",";
        }
        if (r == 0)
                r = buf_append(&b, "]}", 2);
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return b.data;
}

int etlplan_write_manifests(struct etl_plan *p, const char *dir, int64_t job, char *err,
                            size_t errlen)
{
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                int r = -errno;
                util_setf(err, errlen, "cannot create '%s': %s", dir, strerror(-r));
                return r;
        }
        for (int i = 0; i < ETLPLAN_SOURCES; i++) {
                char path[4096];
                util_setf(path, sizeof(path), "%s/job-%" PRId64 "-%s.manifest", dir, job,
                          etlplan_sources[i]);
                free(p->manifest[i]);
                if (asprintf(&p->manifest[i], "file://%s", path) < 0) {
                        p->manifest[i] = NULL;
                        return -ENOMEM;
                }
                if (p->count[i] == 0) /* named, not written: its COPY is skipped */
                        continue;
                char *text = etlplan_manifest_json(p, i);
                int r = text ? write_file(path, text, strlen(text), err, errlen) : -ENOMEM;
                free(text);
                if (r < 0)
                        return r;
        }
        return 0;
}

void etlplan_remove_manifests(struct etl_plan *p)
{
        for (int i = 0; p && i < ETLPLAN_SOURCES; i++)
                if (p->manifest[i] && strncmp(p->manifest[i], "file://", 7) == 0)
                        unlink(p->manifest[i] + strlen("file://"));
}

int etlplan_source_of(const struct etl_plan *p, const char *statement)
{
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                if (p->manifest[i] && strstr(statement, p->manifest[i]))
                        return i;
        return -1;
}
