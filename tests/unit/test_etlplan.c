/* test_etlplan.c - which objects an etl run loads (daemon/pipelines/etlplan.c),
 * on a SQLite warehouse and file:// sources in a temporary folder.  The
 * planning is asynchronous: each call runs a uv loop of the test's own until
 * its callback came. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "cfg.h"
#include "confine.h"
#include "pipelines/etlplan.h"
#include "testfs.h"
#include "util.h"
#include "warehouse/wh.h"

struct fx {
        char dir[256];
        uv_loop_t loop;
        struct wh *w;
        struct cfg *c;
        char err[1024];
};

/* What a callback brought, and whether it came. */
struct got {
        bool done;
        int err;
        struct etl_plan *plan;
        char msg[1024];
};

static void run_until(struct fx *f, const bool *done)
{
        while (!*done)
                assert_true(uv_run(&f->loop, UV_RUN_ONCE) != 0 || *done);
}

static void exec_cb(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct got *g = ud;
        g->err = res->err;
        g->done = true;
}

/* Runs sql on the warehouse and waits for it. */
static int exec_sync(struct fx *f, const char *sql)
{
        struct got g = {0};
        assert_int_equal(wh_exec(f->w, sql, exec_cb, &g), 0);
        run_until(f, &g.done);
        return g.err;
}

static void plan_cb(void *ud, int err, const char *msg, struct etl_plan *plan)
{
        struct got *g = ud;
        g->err = err;
        g->plan = plan;
        snprintf(g->msg, sizeof(g->msg), "%s", msg);
        g->done = true;
}

/* Plans job (etlplan_get) and waits for the callback: its result, the plan
 * in *ret and its message in f->err. */
static int plan_sync(struct fx *f, int64_t job, const struct etlplan_ledger *l,
                     const struct confine *roots, struct etl_plan **ret)
{
        struct source_env env = {.loop = &f->loop, .ctx = NULL, .roots = roots};
        struct got g = {0};
        assert_int_equal(etlplan_get(f->w, job, f->c, l, &env, plan_cb, &g, NULL), 0);
        run_until(f, &g.done);
        snprintf(f->err, sizeof(f->err), "%s", g.msg);
        *ret = g.plan;
        if (g.err < 0)
                assert_null(g.plan);
        return g.err;
}

static void put(struct fx *f, const char *rel, const char *text)
{
        testfs_put(f->dir, rel, text, strlen(text));
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/etld-plan-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        put(f, "data/log_data/2018/a.json", "{\"k\":1}\n");
        put(f, "data/log_data/2018/b.json", "{\"k\":2}\n");
        put(f, "data/song_data/x.json", "{\"song_id\":\"S1\"}");
        char uri[512];
        snprintf(uri, sizeof(uri), "sqlite://%s/wh.db", f->dir);
        assert_int_equal(uv_loop_init(&f->loop), 0);
        struct wh_params p = {.uri = uri, .state_dir = f->dir, .loop = &f->loop};
        assert_int_equal(wh_open(&p, &f->w, f->err, sizeof(f->err)), 0);
        assert_int_equal(exec_sync(f, "CREATE TABLE etld_run (job_id INTEGER, mode TEXT, "
                                      "reason TEXT);"
                                      "CREATE TABLE etld_plan (job_id INTEGER, seq INTEGER, "
                                      "source TEXT, uri TEXT, size INTEGER, tag TEXT);"
                                      "CREATE TABLE etld_publishes (job_id INTEGER PRIMARY KEY, "
                                      "mode TEXT, published_at TEXT)"),
                         0);
        f->c = cfg_new();
        char v[512];
        snprintf(v, sizeof(v), "file://%s/data/log_data", f->dir);
        assert_int_equal(cfg_set(f->c, "s3.log_data", v, f->err, sizeof(f->err)), 0);
        snprintf(v, sizeof(v), "file://%s/data/song_data", f->dir);
        assert_int_equal(cfg_set(f->c, "s3.song_data", v, f->err, sizeof(f->err)), 0);
        *state = f;
        return 0;
}

static void set_true(void *ud)
{
        *(bool *)ud = true;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        bool closed = false;
        wh_close(f->w, set_true, &closed);
        run_until(f, &closed);
        /* nothing of the warehouse is left on the loop */
        assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
        assert_int_equal(uv_loop_close(&f->loop), 0);
        cfg_free(f->c);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static const char *uri_at(const struct etl_plan *p, size_t i)
{
        return p->objects.v[i].uri;
}

/* A ledger that holds every object of a full plan, published by job
 * (sorted by URI, as journal_ledger_get gives it). */
static struct objlist ledger_of(const struct etl_plan *p, int64_t job)
{
        struct objlist l = {0};
        for (size_t i = 0; i < p->objects.n; i++) {
                const struct objlist_item *o = &p->objects.v[i];
                assert_int_equal(objlist_add(&l, o->source, o->uri, o->size, o->tag, job), 0);
        }
        objlist_sort_by_uri(&l);
        return l;
}

static void test_full_plan_is_kept_for_a_resume(void **state)
{
        struct fx *f = *state;
        struct etl_plan *p = NULL;
        assert_int_equal(plan_sync(f, 5, NULL, NULL, &p), 0);
        assert_string_equal(p->mode, "full");
        assert_int_equal(p->count[0], 2);
        assert_int_equal(p->count[1], 1);
        assert_non_null(strstr(uri_at(p, 0), "log_data/2018/a.json"));
        assert_non_null(strstr(uri_at(p, 1), "log_data/2018/b.json"));
        assert_non_null(strstr(p->reason, "3 objects"));
        etlplan_free(p);
        /* a new object arrives; the resumed load reads the same plan */
        put(f, "data/log_data/2018/c.json", "{}");
        assert_int_equal(plan_sync(f, 5, NULL, NULL, &p), 0);
        assert_int_equal(p->objects.n, 3);
        etlplan_free(p);
        /* another job plans anew */
        assert_int_equal(plan_sync(f, 6, NULL, NULL, &p), 0);
        assert_int_equal(p->objects.n, 4);
        etlplan_free(p);
}

static void test_full_plan_needs_every_source(void **state)
{
        struct fx *f = *state;
        char v[512];
        snprintf(v, sizeof(v), "file://%s/data/nothing_here", f->dir);
        assert_int_equal(cfg_set(f->c, "s3.song_data", v, f->err, sizeof(f->err)), 0);
        struct etl_plan *p = NULL;
        assert_int_equal(plan_sync(f, 5, NULL, NULL, &p), -EINVAL);
        assert_null(p);
        assert_non_null(strstr(f->err, "no objects found"));
        assert_non_null(strstr(f->err, "s3.song_data"));
}

/* A job that is not an admin's lists its file:// sources only inside its
 * roots (confine.h): a source outside them fails the plan, naming it. */
static void test_plan_lists_only_inside_the_roots(void **state)
{
        struct fx *f = *state;
        struct confine *roots = NULL;
        char elsewhere[300];
        snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", f->dir);
        assert_int_equal(mkdir(elsewhere, 0755), 0);
        assert_int_equal(
            confine_new("daemon.data_roots", elsewhere, NULL, true, &roots, f->err, sizeof(f->err)),
            0);
        struct etl_plan *p = NULL;
        assert_int_equal(plan_sync(f, 5, NULL, roots, &p), -EACCES);
        assert_null(p);
        assert_non_null(strstr(f->err, "outside daemon.data_roots"));
        confine_free(roots);
        /* with its data folder as a root the same plan is made */
        char data[300];
        snprintf(data, sizeof(data), "%s/data", f->dir);
        assert_int_equal(
            confine_new("daemon.data_roots", data, NULL, true, &roots, f->err, sizeof(f->err)), 0);
        assert_int_equal(plan_sync(f, 5, NULL, roots, &p), 0);
        etlplan_free(p);
        confine_free(roots);
}

static void incremental_case(struct fx *f, int64_t wh_last, void (*change)(struct fx *f),
                             const char *mode, const char *reason, size_t objects)
{
        struct etl_plan *full = NULL, *p = NULL;
        assert_int_equal(plan_sync(f, 7, NULL, NULL, &full), 0);
        struct etlplan_ledger l = {.objects = ledger_of(full, 7), .job = 7};
        etlplan_free(full);
        if (wh_last) {
                char sql[128];
                snprintf(sql, sizeof(sql),
                         "INSERT INTO etld_publishes VALUES (%lld, 'full', 'now')",
                         (long long)wh_last);
                assert_int_equal(exec_sync(f, sql), 0);
        }
        if (change)
                change(f);
        assert_int_equal(cfg_set(f->c, "etl.mode", "incremental", f->err, sizeof(f->err)), 0);
        assert_int_equal(plan_sync(f, 8, &l, NULL, &p), 0);
        assert_string_equal(p->mode, mode);
        assert_non_null(strstr(p->reason, reason));
        assert_int_equal(p->objects.n, objects);
        etlplan_free(p);
        objlist_free(&l.objects);
}

static void add_one(struct fx *f)
{
        put(f, "data/log_data/2018/a0.json", "{\"k\":3}\n");
}

static void grow_b(struct fx *f)
{
        put(f, "data/log_data/2018/b.json", "{\"k\":2}\n{\"k\":4}\n");
}

static void drop_x(struct fx *f)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/data/song_data/x.json", f->dir);
        assert_int_equal(unlink(p), 0);
        put(f, "data/song_data/y.json", "{}");
}

static void test_incremental_reads_only_new_objects(void **state)
{
        struct fx *f = *state;
        incremental_case(f, 7, add_one, "incremental", "1 new objects (1 log_data, 0 song_data)",
                         1);
}

static void test_incremental_with_nothing_new(void **state)
{
        incremental_case(*state, 7, NULL, "incremental", "0 new objects", 0);
}

static void test_changed_object_rebuilds(void **state)
{
        incremental_case(*state, 7, grow_b, "full", "b.json', published by job 7, changed", 3);
}

static void test_vanished_object_rebuilds(void **state)
{
        incremental_case(*state, 7, drop_x, "full",
                         "x.json' (s3.song_data), published by job 7, "
                         "is no longer there",
                         3);
}

static void test_other_warehouse_publish_rebuilds(void **state)
{
        incremental_case(*state, 3, add_one, "full",
                         "the warehouse's latest publish is job 3 but the journal's is job 7", 4);
}

static void test_no_ledger_is_a_full_run(void **state)
{
        struct fx *f = *state;
        struct etl_plan *p = NULL;
        assert_int_equal(cfg_set(f->c, "etl.mode", "incremental", f->err, sizeof(f->err)), 0);
        struct etlplan_ledger none = {.job = 0};
        assert_int_equal(plan_sync(f, 9, &none, NULL, &p), 0);
        assert_string_equal(p->mode, "full");
        assert_non_null(strstr(p->reason, "no earlier publish"));
        etlplan_free(p);
        objlist_free(&none.objects);
}

static void test_manifests(void **state)
{
        struct fx *f = *state;
        struct etl_plan *p = NULL;
        assert_int_equal(plan_sync(f, 5, NULL, NULL, &p), 0);
        p->count[1] = 0; /* as if song_data had nothing new: named, not written */
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/manifests", f->dir);
        assert_int_equal(etlplan_write_manifests(p, dir, 5, f->err, sizeof(f->err)), 0);
        char stmt[1024];
        snprintf(stmt, sizeof(stmt), "COPY t FROM '%s' MANIFEST", p->manifest[0]);
        assert_int_equal(etlplan_source_of(p, stmt), 0);
        snprintf(stmt, sizeof(stmt), "COPY t FROM '%s' MANIFEST", p->manifest[1]);
        assert_int_equal(etlplan_source_of(p, stmt), 1);
        assert_int_equal(etlplan_source_of(p, "COPY t FROM 'file:///elsewhere' MANIFEST"), -1);
        json_error_t je;
        json_t *m = json_load_file(p->manifest[0] + strlen("file://"), 0, &je);
        assert_non_null(m);
        json_t *e = json_object_get(m, "entries");
        assert_int_equal(json_array_size(e), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "url")),
                            uri_at(p, 1));
        assert_true(json_is_true(json_object_get(json_array_get(e, 0), "mandatory")));
        for (size_t i = 0; i < 2; i++) { /* the listed size, as Redshift's meta.content_length */
                json_t *len = json_object_get(json_object_get(json_array_get(e, i), "meta"),
                                              "content_length");
                assert_true(json_is_integer(len));
                assert_int_equal(json_integer_value(len), p->objects.v[i].size);
        }
        json_decref(m);
        assert_int_not_equal(access(p->manifest[1] + strlen("file://"), F_OK), 0);
        etlplan_remove_manifests(p);
        assert_int_not_equal(access(p->manifest[0] + strlen("file://"), F_OK), 0);
        etlplan_free(p);
}

/* The publish step reads back what the load step planned. */
static void test_read_back(void **state)
{
        struct fx *f = *state;
        struct etl_plan *p = NULL;
        struct got g = {0};
        assert_int_equal(etlplan_read(f->w, 5, plan_cb, &g, NULL), 0);
        run_until(f, &g.done);
        assert_int_equal(g.err, -ENOENT);
        assert_null(g.plan);
        assert_int_equal(plan_sync(f, 5, NULL, NULL, &p), 0);
        etlplan_free(p);
        memset(&g, 0, sizeof(g));
        assert_int_equal(etlplan_read(f->w, 5, plan_cb, &g, NULL), 0);
        run_until(f, &g.done);
        assert_int_equal(g.err, 0);
        assert_string_equal(g.plan->mode, "full");
        assert_int_equal(g.plan->count[0], 2);
        assert_int_equal(g.plan->count[1], 1);
        assert_non_null(strstr(uri_at(g.plan, 2), "song_data/x.json"));
        etlplan_free(g.plan);
}

/* A plan of more objects than one page of etld_plan rows reads back whole
 * and in order; a key with a quote and a backslash survives the manifest. */
static void test_large_plan_reads_back_in_pages(void **state)
{
        struct fx *f = *state;
        const size_t n = 4321; /* two pages and some */
        for (size_t i = 0; i < n; i++) {
                char rel[128];
                snprintf(rel, sizeof(rel), "data/log_data/2018/e%05zu.json", i);
                put(f, rel, "{}\n");
        }
        put(f, "data/log_data/2018/q\"uo\\te.json", "{}\n");
        struct etl_plan *p = NULL;
        assert_int_equal(plan_sync(f, 5, NULL, NULL, &p), 0);
        assert_int_equal(p->count[0], n + 3);
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/manifests", f->dir);
        assert_int_equal(etlplan_write_manifests(p, dir, 5, f->err, sizeof(f->err)), 0);
        json_error_t je;
        json_t *m = json_load_file(p->manifest[0] + strlen("file://"), 0, &je);
        if (!m)
                fail_msg("manifest: %s (line %d)", je.text, je.line);
        json_t *e = json_object_get(m, "entries");
        assert_int_equal(json_array_size(e), n + 3);
        bool quoted = false;
        for (size_t i = 0; i < n + 3; i++) {
                const char *url = json_string_value(json_object_get(json_array_get(e, i), "url"));
                assert_string_equal(url, uri_at(p, i));
                quoted |= strstr(url, "q\"uo\\te.json") != NULL;
        }
        assert_true(quoted);
        json_decref(m);
        etlplan_remove_manifests(p);

        struct got g = {0};
        assert_int_equal(etlplan_read(f->w, 5, plan_cb, &g, NULL), 0);
        run_until(f, &g.done);
        assert_int_equal(g.err, 0);
        assert_int_equal(g.plan->objects.n, p->objects.n);
        assert_int_equal(g.plan->count[0], n + 3);
        assert_int_equal(g.plan->count[1], 1);
        for (size_t i = 0; i < p->objects.n; i++) {
                assert_string_equal(uri_at(g.plan, i), uri_at(p, i));
                assert_string_equal(g.plan->objects.v[i].source, p->objects.v[i].source);
                assert_int_equal(g.plan->objects.v[i].size, p->objects.v[i].size);
        }
        etlplan_free(g.plan);
        etlplan_free(p);
}

/* Cancelled at once: the callback says so, and no plan was written. */
static void test_cancel_writes_nothing(void **state)
{
        struct fx *f = *state;
        struct source_env env = {.loop = &f->loop};
        struct etlplan_req *q = NULL;
        struct got g = {0};
        assert_int_equal(etlplan_get(f->w, 5, f->c, NULL, &env, plan_cb, &g, &q), 0);
        etlplan_cancel(q);
        run_until(f, &g.done);
        assert_int_equal(g.err, -ECANCELED);
        assert_null(g.plan);
        memset(&g, 0, sizeof(g));
        assert_int_equal(etlplan_read(f->w, 5, plan_cb, &g, NULL), 0);
        run_until(f, &g.done);
        assert_int_equal(g.err, -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_full_plan_is_kept_for_a_resume, setup, teardown),
            cmocka_unit_test_setup_teardown(test_full_plan_needs_every_source, setup, teardown),
            cmocka_unit_test_setup_teardown(test_plan_lists_only_inside_the_roots, setup, teardown),
            cmocka_unit_test_setup_teardown(test_incremental_reads_only_new_objects, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_incremental_with_nothing_new, setup, teardown),
            cmocka_unit_test_setup_teardown(test_changed_object_rebuilds, setup, teardown),
            cmocka_unit_test_setup_teardown(test_vanished_object_rebuilds, setup, teardown),
            cmocka_unit_test_setup_teardown(test_other_warehouse_publish_rebuilds, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_ledger_is_a_full_run, setup, teardown),
            cmocka_unit_test_setup_teardown(test_manifests, setup, teardown),
            cmocka_unit_test_setup_teardown(test_read_back, setup, teardown),
            cmocka_unit_test_setup_teardown(test_large_plan_reads_back_in_pages, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel_writes_nothing, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
