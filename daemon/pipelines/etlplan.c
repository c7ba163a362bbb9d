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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load/source.h"
#include "util.h"

const char *const etlplan_sources[ETLPLAN_SOURCES] = { "log_data", "song_data" };

struct etl_plan *etlplan_free(struct etl_plan *p)
{
        if (!p)
                return NULL;
        json_decref(p->objects);
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                free(p->manifest[i]);
        free(p);
        return NULL;
}

static struct etl_plan *plan_new(void)
{
        struct etl_plan *p = calloc(1, sizeof(*p));
        if (p && !(p->objects = json_array()))
                p = etlplan_free(p);
        return p;
}

static int source_index(const char *name)
{
        for (int i = 0; i < ETLPLAN_SOURCES; i++)
                if (name && strcmp(name, etlplan_sources[i]) == 0)
                        return i;
        return -1;
}

static int add_object(struct etl_plan *p, int src, const char *uri, json_int_t size,
                      const char *tag)
{
        json_t *o = json_pack("{s:s, s:s, s:I, s:s?}", "source", etlplan_sources[src], "uri",
                              uri, "size", size, "tag", tag);
        if (!o || json_array_append_new(p->objects, o) < 0)
                return -ENOMEM;
        p->count[src]++;
        return 0;
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

int etlplan_read(struct wh *w, int64_t job, struct etl_plan **ret, char *err, size_t errlen)
{
        char sql[256];
        json_t *rows = NULL;
        util_setf(sql, sizeof(sql), "SELECT mode, reason FROM etld_run WHERE job_id = %" PRId64,
                  job);
        int r = wh_query(w, sql, &rows, err, errlen);
        if (r < 0)
                return r;
        if (json_array_size(rows) == 0) {
                json_decref(rows);
                return -ENOENT;
        }
        struct etl_plan *p = plan_new();
        if (!p) {
                json_decref(rows);
                return -ENOMEM;
        }
        json_t *run = json_array_get(rows, 0);
        util_setf(p->mode, sizeof(p->mode), "%s", json_string_value(json_array_get(run, 0)));
        util_setf(p->reason, sizeof(p->reason), "%s",
                  json_string_value(json_array_get(run, 1)));
        json_decref(rows);
        rows = NULL;
        /* "tag" quoted: TAG is a reserved word on Redshift ("Reserved
         * words", r_pg_keywords.html); quoted it is the same column on all
         * three targets. */
        util_setf(sql, sizeof(sql),
                  "SELECT source, uri, size, \"tag\" FROM etld_plan WHERE job_id = %" PRId64
                  " ORDER BY seq",
                  job);
        r = wh_query(w, sql, &rows, err, errlen);
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
                int src = source_index(json_string_value(json_array_get(row, 0)));
                if (r < 0)
                        break;
                if (src < 0)
                        continue;
                r = add_object(p, src, json_string_value(json_array_get(row, 1)),
                               cell_int(row, 2), json_string_value(json_array_get(row, 3)));
        }
        json_decref(rows);
        if (r < 0) {
                etlplan_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

/* The warehouse's latest publish, 0 when none. */
static int last_publish(struct wh *w, int64_t *ret, char *err, size_t errlen)
{
        json_t *rows = NULL;
        int r = wh_query(w, "SELECT MAX(job_id) FROM etld_publishes", &rows, err, errlen);
        if (r == 0)
                *ret = (int64_t)cell_int(json_array_get(rows, 0), 0);
        json_decref(rows);
        return r;
}

/* Every object of the job's sources, in key order, into listed (a plan in
 * full mode), and into by_uri as {"uri": index in listed->objects}. */
static int list_sources(const struct cfg *c, const struct source_ctx *ctx,
                        const struct confine *roots, struct etl_plan *listed, json_t *by_uri,
                        char *err, size_t errlen)
{
        for (int i = 0; i < ETLPLAN_SOURCES; i++) {
                const char *uri = cfg_get(c, "s3", etlplan_sources[i]);
                struct source *s = NULL;
                struct source_object *objs = NULL;
                size_t n = 0;
                char e[512];
                int r = source_open_ctx(uri ? uri : "", ctx, roots, &s, e, sizeof(e));
                if (r == 0)
                        r = source_list(s, &objs, &n, e, sizeof(e));
                source_free(s);
                if (r < 0) {
                        util_setf(err, errlen, "s3.%s: %s", etlplan_sources[i], e);
                        return r;
                }
                for (size_t k = 0; r == 0 && k < n; k++) {
                        r = add_object(listed, i, objs[k].uri, (json_int_t)objs[k].size,
                                       objs[k].tag);
                        if (r == 0)
                                r = json_object_set_new(
                                            by_uri, objs[k].uri,
                                            json_integer((json_int_t)json_array_size(
                                                                 listed->objects) -
                                                         1)) < 0
                                            ? -ENOMEM
                                            : 0;
                }
                source_objects_free(objs, n);
                if (r < 0) {
                        util_setf(err, errlen, "out of memory listing s3.%s",
                                  etlplan_sources[i]);
                        return r;
                }
        }
        return 0;
}

static bool same_tag(json_t *a, json_t *b)
{
        if (!json_is_string(a) || !json_is_string(b))
                return !json_is_string(a) && !json_is_string(b);
        return strcmp(json_string_value(a), json_string_value(b)) == 0;
}

/* Incremental: the listed objects the ledger lacks, or why a full rebuild
 * is needed instead (*full set, reason written). */
static int incremental(const struct etl_plan *listed, json_t *by_uri,
                       const struct etlplan_ledger *l, int64_t wh_last, struct etl_plan *p,
                       bool *full)
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
        const char *uri;
        json_t *e;
        json_object_foreach(l->objects, uri, e)
        {
                json_t *at = json_object_get(by_uri, uri);
                json_t *o = at ? json_array_get(listed->objects, (size_t)json_integer_value(at))
                               : NULL;
                const char *src = json_string_value(json_object_get(e, "source"));
                if (!o || !json_equal(json_object_get(o, "source"), json_object_get(e, "source"))) {
                        util_setf(p->reason, sizeof(p->reason),
                                  "'%s' (s3.%s), published by job %" PRId64
                                  ", is no longer there: a full rebuild",
                                  uri, src ? src : "?",
                                  (int64_t)json_integer_value(json_object_get(e, "job")));
                        return 0;
                }
                if (!json_equal(json_object_get(o, "size"), json_object_get(e, "size")) ||
                    !same_tag(json_object_get(o, "tag"), json_object_get(e, "tag"))) {
                        util_setf(p->reason, sizeof(p->reason),
                                  "'%s', published by job %" PRId64
                                  ", changed since (size or ETag/mtime): a full rebuild",
                                  uri, (int64_t)json_integer_value(json_object_get(e, "job")));
                        return 0;
                }
        }
        *full = false;
        size_t i;
        json_t *o;
        json_array_foreach(listed->objects, i, o)
        {
                const char *u = json_string_value(json_object_get(o, "uri"));
                if (json_object_get(l->objects, u))
                        continue;
                int src = source_index(json_string_value(json_object_get(o, "source")));
                int r = add_object(p, src, u, json_integer_value(json_object_get(o, "size")),
                                   json_string_value(json_object_get(o, "tag")));
                if (r < 0)
                        return r;
        }
        util_setf(p->reason, sizeof(p->reason),
                  "%zu new objects (%zu log_data, %zu song_data) after job %" PRId64
                  "'s publish of %zu",
                  json_array_size(p->objects), p->count[0], p->count[1], l->job,
                  json_object_size(l->objects));
        return 0;
}

/* A SQL string literal for Redshift, where a backslash escapes too. */
static int literal(struct buf *b, const char *v)
{
        int r = buf_append(b, "'", 1);
        for (const char *c = v; r == 0 && *c; c++)
                r = *c == '\'' ? buf_append(b, "\'\'", 2)
                    : *c == '\\' ? buf_append(b, "\\\\", 2)
                                 : buf_append(b, c, 1);
        return r == 0 ? buf_append(b, "'", 1) : r;
}

/* Redshift has no COPY FROM STDIN: the plan goes in as INSERTs of at most
 * 500 rows each. */
static int store_inserts(struct wh *w, int64_t job, const struct etl_plan *p, char *err,
                         size_t errlen)
{
        struct buf b = { 0 };
        int r = buf_printf(&b, "INSERT INTO etld_run (job_id, mode, reason) VALUES (%" PRId64 ", ",
                           job);
        if (r == 0)
                r = literal(&b, p->mode);
        if (r == 0)
                r = buf_append(&b, ", ", 2);
        if (r == 0)
                r = literal(&b, p->reason);
        if (r == 0)
                r = buf_append(&b, ")", 1);
        if (r == 0)
                r = wh_exec(w, b.data, err, errlen);
        size_t n = json_array_size(p->objects);
        for (size_t i = 0; r == 0 && i < n; i++) {
                json_t *o = json_array_get(p->objects, i);
                const char *tag = json_string_value(json_object_get(o, "tag"));
                if (i % 500 == 0) {
                        b.len = 0;
                        r = buf_printf(&b, "INSERT INTO etld_plan (job_id, seq, source, uri, "
                                           "size, \"tag\") VALUES "); /* reserved: quoted */
                } else {
                        r = buf_append(&b, ", ", 2);
                }
                if (r == 0)
                        r = buf_printf(&b, "(%" PRId64 ", %zu, ", job, i);
                if (r == 0)
                        r = literal(&b, json_string_value(json_object_get(o, "source")));
                if (r == 0)
                        r = buf_append(&b, ", ", 2);
                if (r == 0)
                        r = literal(&b, json_string_value(json_object_get(o, "uri")));
                if (r == 0)
                        r = buf_printf(&b, ", %" JSON_INTEGER_FORMAT ", ",
                                       json_integer_value(json_object_get(o, "size")));
                if (r == 0)
                        r = tag ? literal(&b, tag) : buf_append(&b, "NULL", 4);
                if (r == 0)
                        r = buf_append(&b, ")", 1);
                if (r == 0 && (i % 500 == 499 || i + 1 == n))
                        r = wh_exec(w, b.data, err, errlen);
        }
        if (r == -ENOMEM && !err[0])
                util_setf(err, errlen, "out of memory writing the plan");
        buf_free(&b);
        return r;
}

/* Writes the plan into the warehouse (one transaction). */
static int store(struct wh *w, int64_t job, const struct etl_plan *p, char *err, size_t errlen)
{
        int r = wh_begin(w, err, errlen);
        if (r < 0)
                return r;
        if (strcmp(wh_dialect(w), "redshift") == 0) {
                r = store_inserts(w, job, p, err, errlen);
                if (r == 0)
                        r = wh_commit(w, err, errlen);
                if (r < 0)
                        wh_rollback(w);
                return r;
        }
        static const char *const run_cols[] = { "job_id", "mode", "reason" };
        static const char *const plan_cols[] = { "job_id", "seq", "source", "uri", "size", "tag" };
        struct wh_inserter *ins = NULL;
        r = wh_inserter_new(w, "etld_run", run_cols, 3, &ins, err, errlen);
        if (r == 0) {
                struct cell c[3] = {
                        { .kind = CELL_INT, .i = job },
                        { .kind = CELL_TEXT, .text = p->mode, .len = strlen(p->mode) },
                        { .kind = CELL_TEXT, .text = p->reason, .len = strlen(p->reason) },
                };
                r = wh_inserter_row(ins, c, err, errlen);
        }
        if (r == 0)
                r = wh_inserter_finish(ins, err, errlen);
        wh_inserter_free(ins);
        ins = NULL;
        if (r == 0)
                r = wh_inserter_new(w, "etld_plan", plan_cols, 6, &ins, err, errlen);
        size_t i;
        json_t *o;
        json_array_foreach(p->objects, i, o)
        {
                if (r < 0)
                        break;
                const char *src = json_string_value(json_object_get(o, "source"));
                const char *uri = json_string_value(json_object_get(o, "uri"));
                const char *tag = json_string_value(json_object_get(o, "tag"));
                struct cell c[6] = {
                        { .kind = CELL_INT, .i = job },
                        { .kind = CELL_INT, .i = (int64_t)i },
                        { .kind = CELL_TEXT, .text = src, .len = strlen(src) },
                        { .kind = CELL_TEXT, .text = uri, .len = strlen(uri) },
                        { .kind = CELL_INT, .i = json_integer_value(json_object_get(o, "size")) },
                        { .kind = tag ? CELL_TEXT : CELL_NULL, .text = tag,
                          .len = tag ? strlen(tag) : 0 },
                };
                r = wh_inserter_row(ins, c, err, errlen);
        }
        if (r == 0)
                r = wh_inserter_finish(ins, err, errlen);
        wh_inserter_free(ins);
        if (r == 0)
                r = wh_commit(w, err, errlen);
        if (r < 0)
                wh_rollback(w);
        return r;
}

int etlplan_get(struct wh *w, int64_t job, const struct cfg *c, const struct etlplan_ledger *l,
                const struct source_ctx *ctx, const struct confine *roots,
                struct etl_plan **ret, char *err, size_t errlen)
{
        int r = etlplan_read(w, job, ret, err, errlen);
        if (r != -ENOENT)
                return r;
        int64_t wh_last = 0;
        r = last_publish(w, &wh_last, err, errlen);
        if (r < 0)
                return r;
        struct etl_plan *listed = plan_new(), *p = plan_new();
        json_t *by_uri = json_object();
        if (!listed || !p || !by_uri) {
                r = -ENOMEM;
                goto out;
        }
        r = list_sources(c, ctx, roots, listed, by_uri, err, errlen);
        if (r < 0)
                goto out;
        bool full = true;
        const char *mode = cfg_get(c, "etl", "mode");
        if (mode && strcmp(mode, "incremental") == 0) {
                r = incremental(listed, by_uri, l, wh_last, p, &full);
                if (r < 0)
                        goto out;
        } else {
                util_setf(p->reason, sizeof(p->reason), "etl.mode = full");
        }
        if (full) {
                char why[sizeof(p->reason)];
                util_setf(why, sizeof(why), "%s", p->reason);
                etlplan_free(p);
                p = listed;
                listed = NULL;
                util_setf(p->reason, sizeof(p->reason), "%s: %zu objects (%zu log_data, "
                          "%zu song_data)", why, json_array_size(p->objects), p->count[0],
                          p->count[1]);
                for (int i = 0; i < ETLPLAN_SOURCES; i++) {
                        if (p->count[i] > 0)
                                continue;
                        /* Redshift: "The specified S3 prefix ... does not exist" */
                        util_setf(err, errlen,
                                  "COPY: no objects found under '%s' (s3.%s: the prefix "
                                  "matches no key)",
                                  cfg_get(c, "s3", etlplan_sources[i]), etlplan_sources[i]);
                        r = -EINVAL;
                        goto out;
                }
        }
        util_setf(p->mode, sizeof(p->mode), "%s", full ? "full" : "incremental");
        r = store(w, job, p, err, errlen);
        if (r == 0) {
                *ret = p;
                p = NULL;
        }
out:
        if (r == -ENOMEM && !err[0])
                util_setf(err, errlen, "out of memory planning the load");
        etlplan_free(listed);
        etlplan_free(p);
        json_decref(by_uri);
        return r;
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
                        util_setf(err, errlen, "cannot write manifest '%s': %s", tmp,
                                  strerror(-r));
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
        json_t *entries = json_array();
        json_t *man = json_pack("{s:o}", "entries", entries);
        size_t k;
        json_t *o;
        json_array_foreach(p->objects, k, o)
        {
                if (source_index(json_string_value(json_object_get(o, "source"))) != src)
                        continue;
                json_array_append_new(entries, json_pack("{s:O, s:b}", "url",
                                                         json_object_get(o, "uri"), "mandatory",
                                                         true));
        }
        char *text = man ? json_dumps(man, JSON_COMPACT) : NULL;
        json_decref(man);
        return text;
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
