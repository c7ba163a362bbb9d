/* test_journal.c - journal state transitions, keys and their attempts,
 * retries, not_before times, output look-ups, migrations (also of a journal
 * of schema 1, and of one from before attempts under a key), refusal of
 * foreign and newer files, exclusive ownership. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "journal.h"
#include "util.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
        snprintf(dir, sizeof(dir), "/tmp/etld-test-journal-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof(path), "%s/journal.db", dir);
        return 0;
}

static int teardown(void **state)
{
        char p[160];
        const char *suffix[] = {"", "-wal", "-shm", ".created"};
        for (int i = 0; i < 4; i++) {
                snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
                unlink(p);
        }
        rmdir(dir);
        return 0;
}

static const char *const steps[] = { "create-tables", "load", "transform", "check" };

static const char *job_str(json_t *job, const char *key)
{
        return json_string_value(json_object_get(job, key));
}

static const char *step_str(json_t *job, size_t idx, const char *key)
{
        return json_string_value(json_object_get(json_array_get(json_object_get(job, "steps"), idx),
                                                 key));
}

/* Adds a job, asserting that the journal accepts it; its id. */
static int64_t add_job(struct journal *j, const char *pipeline, const char *const *names,
                       size_t n, const char *config, const char *key, long uid)
{
        struct journal_new_job nj = { .pipeline = pipeline, .steps = names, .nsteps = n,
                                      .config = config, .key = key, .uid = uid };
        int64_t id = 0;
        assert_int_equal(journal_job_add(j, &nj, &id), 0);
        assert_true(id > 0);
        return id;
}

static void test_job_lifecycle(void **state)
{
        struct journal *j;
        char err[256];
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        int64_t id, id2 = 0;
        id = add_job(j, "etl", steps, 4, "{\"load.batch_rows\":\"9\"}", "k1", 1000);
        /* the journal itself refuses a second live job under a key */
        struct journal_new_job again = { .pipeline = "etl", .steps = steps, .nsteps = 4,
                                         .config = "{}", .key = "k1", .uid = 1000 };
        assert_int_equal(journal_job_add(j, &again, &id2), -EEXIST);
        assert_int_equal(journal_key_latest(j, "k1", &id2), 0);
        assert_int_equal(id, id2);
        assert_int_equal(journal_key_latest(j, "k2", &id2), -ENOENT);

        json_t *job = journal_job_json(j, id);
        assert_string_equal(job_str(job, "state"), "queued");
        assert_true(json_is_null(json_object_get(job, "started_at")));
        assert_int_equal(json_integer_value(json_object_get(job, "uid")), 1000);
        assert_true(json_is_false(json_object_get(job, "admin")));
        assert_true(json_is_null(json_object_get(job, "not_before")));
        assert_string_equal(step_str(job, 3, "state"), "pending");
        json_decref(job);

        /* whether the submitter was an admin is kept with the job */
        struct journal_new_job by_admin = { .pipeline = "etl", .steps = steps, .nsteps = 4,
                                            .config = "{}", .uid = 0, .admin = true };
        int64_t admin_job = 0;
        assert_int_equal(journal_job_add(j, &by_admin, &admin_job), 0);
        struct journal_job aj;
        assert_int_equal(journal_job_get(j, admin_job, &aj), 0);
        assert_true(aj.admin);
        journal_job_clear(&aj);
        job = journal_job_json(j, admin_job);
        assert_true(json_is_true(json_object_get(job, "admin")));
        json_decref(job);
        journal_job_set_state(j, admin_job, JOB_CANCELLED, "not needed");

        journal_job_set_state(j, id, JOB_RUNNING, NULL);
        journal_step_set_state(j, id, 0, STEP_RUNNING, NULL);
        journal_step_set_state(j, id, 0, STEP_DONE, NULL);
        journal_step_set_state(j, id, 1, STEP_RUNNING, NULL);
        journal_step_set_state(j, id, 1, STEP_PENDING, "busy, retrying");
        journal_step_set_state(j, id, 1, STEP_RUNNING, NULL);
        journal_output_set(j, id, "load", "copies", "2");
        journal_step_progress(j, id, 1, "{\"rows\":5}");

        struct journal_job jj;
        assert_int_equal(journal_job_get(j, id, &jj), 0);
        assert_int_equal(jj.state, JOB_RUNNING);
        assert_int_equal(jj.first_unfinished, 1);
        assert_int_equal(jj.uid, 1000);
        assert_false(jj.admin);
        assert_int_equal(jj.not_before, 0);
        assert_string_equal(jj.config, "{\"load.batch_rows\":\"9\"}");
        assert_string_equal(jj.key, "k1");
        assert_int_equal(jj.retry_of, 0);
        assert_int_equal(jj.retried_by, 0);
        journal_job_clear(&jj);

        job = journal_job_json(j, id);
        assert_string_equal(job_str(job, "state"), "running");
        assert_true(json_is_string(json_object_get(job, "started_at")));
        json_t *load = json_array_get(json_object_get(job, "steps"), 1);
        assert_int_equal(json_integer_value(json_object_get(load, "attempts")), 2);
        assert_string_equal(json_string_value(json_object_get(json_object_get(load, "outputs"),
                                                              "copies")),
                            "2");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(load, "progress"),
                                                            "rows")),
                         5);
        json_decref(job);

        int64_t *ids;
        size_t n;
        assert_int_equal(journal_jobs_in_state(j, JOB_RUNNING, &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], id);
        free(ids);

        /* cancel: unfinished steps end cancelled, done ones stay done */
        journal_steps_finish(j, id, STEP_CANCELLED);
        journal_job_set_state(j, id, JOB_CANCELLED, "cancelled by request");
        job = journal_job_json(j, id);
        assert_string_equal(job_str(job, "state"), "cancelled");
        assert_string_equal(job_str(job, "error"), "cancelled by request");
        assert_string_equal(step_str(job, 0, "state"), "done");
        assert_string_equal(step_str(job, 1, "state"), "cancelled");
        assert_string_equal(step_str(job, 3, "state"), "cancelled");
        assert_true(json_is_string(json_object_get(job, "finished_at")));
        json_decref(job);

        assert_null(journal_job_json(j, 999));
        assert_int_equal(journal_job_get(j, 999, &jj), -ENOENT);
        journal_close(j);

        /* everything survived the close */
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        job = journal_job_json(j, id);
        assert_string_equal(job_str(job, "state"), "cancelled");
        json_decref(job);
        journal_close(j);
}

static void test_checks_events_errors(void **state)
{
        struct journal *j;
        char err[256];
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        int64_t id = add_job(j, "etl", steps, 4, "{}", NULL, 0);
        json_t *checks = json_pack("[{s:s, s:b, s:s}, {s:s, s:b, s:s}]", "name", "a", "ok", 1,
                                   "detail", "1 rows", "name", "b", "ok", 0, "detail", "0 rows");
        assert_int_equal(journal_checks_replace(j, id, checks), 0);
        assert_int_equal(journal_checks_replace(j, id, checks), 0); /* replaces, not appends */
        json_decref(checks);
        for (int i = 0; i < 1100; i++)
                journal_event_add(j, id, "info", "load", "something happened");
        json_t *errors = json_pack("[{s:s, s:i, s:s, s:s, s:i, s:s, s:s, s:i, s:s}]", "filename",
                                   "file:///x/a.json", "line_number", 3, "colname", "ts", "type",
                                   "TIMESTAMP", "position", 10, "raw_line", "{}",
                                   "raw_field_value", "x", "err_code", 1206, "err_reason", "bad");
        assert_int_equal(journal_load_errors_add(j, id, "load", errors), 0);
        json_decref(errors);

        json_t *job = journal_job_json(j, id);
        json_t *c = json_object_get(job, "checks");
        assert_int_equal(json_array_size(c), 2);
        assert_false(json_is_true(json_object_get(json_array_get(c, 1), "ok")));
        assert_int_equal(json_integer_value(json_object_get(job, "load_errors")), 1);
        json_decref(job);
        json_t *rows = journal_load_errors_json(j, id, 10);
        assert_int_equal(json_array_size(rows), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "err_code")),
                         1206);
        json_decref(rows);
        journal_close(j);

        /* the event log is bounded */
        sqlite3 *db;
        sqlite3_open(path, &db);
        sqlite3_stmt *st;
        sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events", -1, &st, NULL);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_true(sqlite3_column_int(st, 0) <= 1000);
        assert_true(sqlite3_column_int(st, 0) >= 900);
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void test_second_owner_refused(void **state)
{
        struct journal *a, *b;
        char err[256] = "";
        assert_int_equal(journal_open(path, 0, &a, err, sizeof(err)), 0);
        assert_int_equal(journal_open(path, 0, &b, err, sizeof(err)), -EBUSY);
        char want[64];
        snprintf(want, sizeof(want), "another etld (pid %ld) uses this state directory",
                 (long)getpid());
        assert_non_null(strstr(err, want));

        /* the journal stays readable by others while its owner runs
         * (sqlite3 -readonly journal.db) */
        static const char *const one_step[] = { "load" };
        add_job(a, "etl", one_step, 1, "{}", NULL, 0);
        sqlite3 *ro;
        assert_int_equal(sqlite3_open_v2(path, &ro, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(ro, "SELECT COUNT(*) FROM jobs", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 1);
        sqlite3_finalize(st);
        /* and its owner writes while a reader holds it open */
        add_job(a, "etl", one_step, 1, "{}", NULL, 0);
        sqlite3_close(ro);
        journal_close(a);
        assert_int_equal(journal_open(path, 0, &b, err, sizeof(err)), 0);
        journal_close(b);
}

/* etlctl list's filters and etlctl logs' event log. */
static void test_list_filters_and_logs(void **state)
{
        struct journal *j;
        char err[256] = "";
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        static const char *const one[] = { "load" };
        int64_t a = add_job(j, "etl", one, 1, "{}", "nightly-1", 0);
        int64_t b = add_job(j, "stage", one, 1, "{}", NULL, 0);
        int64_t c = add_job(j, "etl", one, 1, "{}", NULL, 0);
        assert_int_equal(journal_job_set_state(j, a, JOB_RUNNING, NULL), 0);
        assert_int_equal(journal_job_set_state(j, a, JOB_SUCCEEDED, NULL), 0);
        assert_int_equal(journal_job_set_state(j, b, JOB_RUNNING, NULL), 0);
        assert_int_equal(journal_job_set_state(j, b, JOB_FAILED, "no"), 0);

        json_t *l = journal_list_json(j, &(struct journal_list_filter){ .pipeline = "etl" });
        assert_int_equal(json_array_size(l), 2);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "id")), c);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "id")), a);
        /* a job that ran has a duration; a queued one has none */
        assert_true(json_is_real(json_object_get(json_array_get(l, 1), "duration_s")));
        assert_true(json_is_null(json_object_get(json_array_get(l, 0), "duration_s")));
        assert_string_equal(job_str(json_array_get(l, 1), "key"), "nightly-1");
        json_decref(l);
        l = journal_list_json(j, &(struct journal_list_filter){ .state = "failed" });
        assert_int_equal(json_array_size(l), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "id")), b);
        json_decref(l);
        l = journal_list_json(j, &(struct journal_list_filter){ .key = "nightly-1" });
        assert_int_equal(json_array_size(l), 1);
        json_decref(l);
        l = journal_list_json(j, &(struct journal_list_filter){ .since_ms = util_now_ms() + 60000 });
        assert_int_equal(json_array_size(l), 0);
        json_decref(l);
        l = journal_list_json(j, &(struct journal_list_filter){ .limit = 1 });
        assert_int_equal(json_array_size(l), 1);
        json_decref(l);

        assert_int_equal(journal_event_add(j, a, "info", "load", "first"), 0);
        assert_int_equal(journal_event_add(j, a, "info", "check", "second"), 0);
        assert_int_equal(journal_event_add(j, a, "warning", "load", "third"), 0);
        json_t *ev = journal_events_json(j, a, NULL);
        size_t n = json_array_size(ev);
        assert_true(n >= 3);
        assert_string_equal(job_str(json_array_get(ev, n - 1), "message"), "third");
        assert_non_null(json_string_value(json_object_get(json_array_get(ev, n - 1), "at")));
        json_decref(ev);
        ev = journal_events_json(j, a, "load");
        n = json_array_size(ev);
        assert_true(n >= 2);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(job_str(json_array_get(ev, i), "step"), "load");
        assert_string_equal(job_str(json_array_get(ev, n - 2), "message"), "first");
        json_decref(ev);
        journal_close(j);
}

/* Retention: what journal_prune removes and what it never does. */
static void test_prune(void **state)
{
        struct journal *j;
        char err[256] = "";
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        static const char *const one[] = { "s" };
        int64_t id[9];
        /* 0..2 etl, 3 provision (created a cluster), 4 teardown (deleted it),
         * 5 provision (created a role, never deleted), 6 etl (published),
         * 7 etl running, 8 etl (latest etl) */
        const char *pipe[] = { "etl", "etl", "etl", "provision", "teardown", "provision",
                               "etl", "etl", "etl" };
        for (int i = 0; i < 9; i++) {
                id[i] = add_job(j, pipe[i], one, 1, "{}", NULL, 0);
                assert_int_equal(journal_job_set_state(j, id[i], JOB_RUNNING, NULL), 0);
                if (i != 7)
                        assert_int_equal(journal_job_set_state(j, id[i], i == 1 ? JOB_FAILED
                                                                               : JOB_SUCCEEDED,
                                                               NULL),
                                         0);
        }
        assert_int_equal(journal_output_set(j, id[3], "cluster", "cluster_origin", "created"), 0);
        assert_int_equal(journal_output_set(j, id[4], "td-cluster", "cluster_origin", "deleted"),
                         0);
        assert_int_equal(journal_output_set(j, id[5], "role", "role_origin", "created"), 0);
        assert_int_equal(journal_output_set(j, id[4], "x", "mode", "full"), 0);
        assert_int_equal(journal_output_set(j, id[0], "x", "mode", "full"), 0);
        struct objlist objs = {0};
        assert_int_equal(objlist_add(&objs, "log_data", "file:///d/log/a.json", 10, "1", 0), 0);
        assert_int_equal(journal_ledger_publish(j, "sqlite:///w.db", id[6], "full", &objs), 0);
        objlist_free(&objs);
        json_t *rejects = json_pack("[{s:s}]", "filename", "x");
        assert_int_equal(journal_load_errors_add(j, id[1], "load", rejects), 0);
        json_decref(rejects);

        /* keep_jobs = 1: every finished job is a candidate */
        int n = journal_prune(j, 1, 0, util_now_ms());
        json_t *l = journal_list_json(j, &(struct journal_list_filter){ .limit = 100 });
        bool kept[9] = { 0 };
        size_t i;
        json_t *v;
        json_array_foreach(l, i, v)
                for (int k = 0; k < 9; k++)
                        kept[k] |= json_integer_value(json_object_get(v, "id")) == id[k];
        json_decref(l);
        /* 0 (its "mode" output is not the latest: job 4's is), 1, 2: old etl jobs */
        assert_false(kept[0]);
        assert_false(kept[1]);
        assert_false(kept[2]);
        assert_false(kept[3]); /* its cluster was deleted by job 4 */
        assert_true(kept[4]);  /* latest teardown, and latest cluster_origin */
        assert_true(kept[5]);  /* a role that still exists */
        assert_true(kept[6]);  /* published */
        assert_true(kept[7]);  /* running */
        assert_true(kept[8]);  /* latest etl */
        assert_int_equal(n, 4);
        /* the pruned job's load errors went with it */
        json_t *errs = journal_load_errors_json(j, id[1], 10);
        assert_int_equal(json_array_size(errs), 0);
        json_decref(errs);

        /* keep_days: nothing is that old yet; a day later everything
         * unprotected goes, and no limit at all prunes nothing */
        assert_int_equal(journal_prune(j, 0, 1, util_now_ms()), 0);
        assert_int_equal(journal_prune(j, 0, 0, util_now_ms() + 86400000 * 9LL), 0);
        assert_int_equal(journal_prune(j, 0, 1, util_now_ms() + 86400000 * 2LL), 0);
        journal_close(j);
}

static void set_pragma(const char *sql)
{
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

static void test_migrations(void **state)
{
        struct journal *j;
        char err[256] = "";
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        journal_close(j);
        sqlite3 *db;
        sqlite3_open(path, &db);
        sqlite3_stmt *st;
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        sqlite3_step(st);
        assert_int_equal(sqlite3_column_int(st, 0), journal_schema_version());
        sqlite3_finalize(st);
        sqlite3_close(db);

        /* a journal from a newer etld is refused, untouched */
        set_pragma("PRAGMA user_version = 99");
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), -EPROTO);
        assert_non_null(strstr(err, "99"));
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version = %d", journal_schema_version());
        set_pragma(set);
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        journal_close(j);
}

extern const char *const journal_migrations[];

/* A journal written by an etld of schema 1 (no not_before) opens, migrates,
 * and keeps its jobs, which have no not_before. */
static void test_migrate_from_schema_1(void **state)
{
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, journal_migrations[0], NULL, NULL, NULL), SQLITE_OK);
        /* application_id 1702128740 is 0x65746c64, "etld" */
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA user_version = 1; PRAGMA application_id = 1702128740;"
                                      "INSERT INTO jobs (pipeline, state, config, uid, created_at) "
                                      "VALUES ('teardown', 'queued', '{}', 7, 1000);"
                                      "INSERT INTO jobs (pipeline, state, config, uid, created_at) "
                                      "VALUES ('etl', 'queued', '{}', 0, 1000);",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        struct journal *j;
        char err[256] = "";
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        struct journal_job jj;
        assert_int_equal(journal_job_get(j, 1, &jj), 0);
        assert_string_equal(jj.pipeline, "teardown");
        assert_int_equal(jj.uid, 7);
        assert_int_equal(jj.not_before, 0);
        assert_false(jj.admin); /* older jobs count as an admin's only when root's */
        journal_job_clear(&jj);
        assert_int_equal(journal_job_get(j, 2, &jj), 0);
        assert_true(jj.admin);
        journal_job_clear(&jj);
        json_t *job = journal_job_json(j, 1);
        assert_true(json_is_null(json_object_get(job, "not_before")));
        json_decref(job);
        journal_close(j);
}

/* A job's not_before is kept, shown in status and list replies, and
 * survives a close. */
static void test_not_before(void **state)
{
        struct journal *j;
        char err[256];
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        int64_t id, again;
        const char *const td[] = { "delete-cluster" };
        /* 2024-05-01T03:00:00Z */
        struct journal_new_job nj = { .pipeline = "teardown", .steps = td, .nsteps = 1,
                                      .config = "{}", .key = "etld:teardown-after-job-1",
                                      .uid = 5, .not_before = 1714532400000 };
        assert_int_equal(journal_job_add(j, &nj, &id), 0);
        /* a second job under the key is refused; the first keeps its time */
        nj.not_before = 1914532400000;
        assert_int_equal(journal_job_add(j, &nj, &again), -EEXIST);
        assert_int_equal(journal_key_latest(j, "etld:teardown-after-job-1", &again), 0);
        assert_int_equal(again, id);
        journal_close(j);

        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        struct journal_job jj;
        assert_int_equal(journal_job_get(j, id, &jj), 0);
        assert_int_equal(jj.not_before, 1714532400000);
        assert_int_equal(jj.uid, 5);
        journal_job_clear(&jj);
        json_t *job = journal_job_json(j, id);
        assert_string_equal(job_str(job, "not_before"), "2024-05-01T03:00:00.000Z");
        assert_string_equal(job_str(job, "state"), "queued");
        json_decref(job);
        json_t *list = journal_list_json(j, &(struct journal_list_filter){ .limit = 10 });
        assert_string_equal(job_str(json_array_get(list, 0), "not_before"),
                            "2024-05-01T03:00:00.000Z");
        json_decref(list);
        journal_close(j);
}

/* journal_output_latest_for: the latest job that recorded a key together
 * with a given name (teardown's "did etld create this bucket?"). */
static void test_output_latest_for(void **state)
{
        struct journal *j;
        char err[256];
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        const char *const st[] = { "create-bucket" };
        int64_t job = -1;
        int64_t a = add_job(j, "stage", st, 1, "{}", NULL, 0);
        int64_t b = add_job(j, "stage", st, 1, "{}", NULL, 0);
        int64_t c = add_job(j, "teardown", st, 1, "{}", NULL, 0);
        int64_t d = add_job(j, "stage", st, 1, "{}", NULL, 0);
        journal_output_set(j, a, "create-bucket", "bucket", "one");
        journal_output_set(j, a, "create-bucket", "bucket_created", "true");
        journal_output_set(j, b, "create-bucket", "bucket", "two");
        journal_output_set(j, b, "create-bucket", "bucket_created", "true");
        journal_output_set(j, c, "delete-bucket", "bucket", "one");
        journal_output_set(j, c, "delete-bucket", "bucket_deleted", "true");
        journal_output_set(j, d, "create-bucket", "bucket", "two");
        journal_output_set(j, d, "create-bucket", "bucket_existed", "true");

        char *v = journal_output_latest_for(j, "bucket", "one", "bucket_created", &job);
        assert_string_equal(v, "true");
        assert_int_equal(job, a);
        free(v);
        v = journal_output_latest_for(j, "bucket", "one", "bucket_deleted", &job);
        assert_int_equal(job, c);
        free(v);
        /* bucket two: created by b; d only found it */
        v = journal_output_latest_for(j, "bucket", "two", "bucket_created", &job);
        assert_int_equal(job, b);
        free(v);
        assert_null(journal_output_latest_for(j, "bucket", "two", "bucket_deleted", &job));
        assert_int_equal(job, 0);
        assert_null(journal_output_latest_for(j, "bucket", "three", "bucket_created", NULL));
        journal_close(j);
}

/* The ledger: a full publish replaces a target's objects, an incremental
 * one adds to them; read back sorted by URI, each with the job that
 * published it, a NULL tag kept NULL, other targets apart. */
static void test_ledger(void **state)
{
        struct journal *j;
        char err[256];
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        const char *const st[] = {"publish"};
        int64_t a = add_job(j, "etl", st, 1, "{}", NULL, 0);
        int64_t b = add_job(j, "etl", st, 1, "{}", NULL, 0);
        int64_t c = add_job(j, "etl", st, 1, "{}", NULL, 0);
        struct objlist o = {0};
        assert_int_equal(objlist_add(&o, "song_data", "file:///d/s/z.json", 30, NULL, 0), 0);
        assert_int_equal(objlist_add(&o, "log_data", "file:///d/l/b.json", 20, "e2", 0), 0);
        assert_int_equal(objlist_add(&o, "log_data", "file:///d/l/a.json", 10, "e1", 0), 0);
        assert_int_equal(journal_ledger_publish(j, "t1", a, "full", &o), 0);
        objlist_free(&o);
        assert_int_equal(objlist_add(&o, "log_data", "file:///d/l/c.json", 40, "e3", 0), 0);
        assert_int_equal(journal_ledger_publish(j, "t1", b, "incremental", &o), 0);
        assert_int_equal(journal_ledger_publish(j, "t2", c, "full", &o), 0);
        objlist_free(&o);

        int64_t job = -1;
        struct objlist l = {0};
        assert_int_equal(journal_ledger_get(j, "t1", &l, &job), 0);
        assert_int_equal(job, b);
        assert_int_equal(l.n, 4);
        const char *uris[] = {"file:///d/l/a.json", "file:///d/l/b.json", "file:///d/l/c.json",
                              "file:///d/s/z.json"};
        const int64_t jobs[] = {a, a, b, a};
        for (size_t i = 0; i < 4; i++) {
                assert_string_equal(l.v[i].uri, uris[i]);
                assert_int_equal(l.v[i].job, jobs[i]);
        }
        const struct objlist_item *z = objlist_find(&l, "file:///d/s/z.json");
        assert_non_null(z);
        assert_string_equal(z->source, "song_data");
        assert_int_equal(z->size, 30);
        assert_null(z->tag);
        assert_string_equal(objlist_find(&l, "file:///d/l/b.json")->tag, "e2");
        assert_null(objlist_find(&l, "file:///d/l/x.json"));

        /* a full publish replaces; an unknown target has nothing */
        assert_int_equal(objlist_add(&o, "log_data", "file:///d/l/a.json", 11, "e9", 0), 0);
        assert_int_equal(journal_ledger_publish(j, "t1", c, "full", &o), 0);
        objlist_free(&o);
        assert_int_equal(journal_ledger_get(j, "t1", &l, &job), 0);
        assert_int_equal(job, c);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.v[0].size, 11);
        assert_int_equal(journal_ledger_get(j, "t3", &l, &job), 0);
        assert_int_equal(job, 0);
        assert_int_equal(l.n, 0);
        objlist_free(&l);
        journal_close(j);
}

/* Attempts under one key: a new one only once the latest failed or was
 * cancelled; retry_of links each to the one before, once. */
static void test_key_attempts(void **state)
{
        struct journal *j;
        char err[256];
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        int64_t first = add_job(j, "etl", steps, 4, "{}", "nightly-1", 7), second = 0, other;
        struct journal_new_job nj = { .pipeline = "etl", .steps = steps, .nsteps = 4,
                                      .config = "{}", .key = "nightly-1", .uid = 8,
                                      .retry_of = first };
        /* queued, then running: no second attempt */
        assert_int_equal(journal_job_add(j, &nj, &second), -EEXIST);
        journal_job_set_state(j, first, JOB_RUNNING, NULL);
        assert_int_equal(journal_job_add(j, &nj, &second), -EEXIST);
        journal_job_set_state(j, first, JOB_FAILED, "load failed");
        assert_int_equal(journal_job_add(j, &nj, &second), 0);
        assert_int_equal(journal_key_latest(j, "nightly-1", &other), 0);
        assert_int_equal(other, second);

        /* a job is run again once: the attempts form one chain */
        nj.key = NULL;
        assert_int_equal(journal_job_add(j, &nj, &other), -EEXIST);

        struct journal_job jj;
        assert_int_equal(journal_job_get(j, first, &jj), 0);
        assert_int_equal(jj.retried_by, second);
        assert_int_equal(jj.retry_of, 0);
        journal_job_clear(&jj);
        assert_int_equal(journal_job_get(j, second, &jj), 0);
        assert_int_equal(jj.retry_of, first);
        assert_int_equal(jj.retried_by, 0);
        assert_int_equal(jj.uid, 8);
        assert_string_equal(jj.key, "nightly-1");
        journal_job_clear(&jj);

        json_t *job = journal_job_json(j, second);
        assert_int_equal(json_integer_value(json_object_get(job, "retry_of")), first);
        assert_true(json_is_null(json_object_get(job, "retried_by")));
        assert_string_equal(job_str(job, "key"), "nightly-1");
        json_decref(job);
        job = journal_job_json(j, first);
        assert_int_equal(json_integer_value(json_object_get(job, "retried_by")), second);
        assert_true(json_is_null(json_object_get(job, "retry_of")));
        assert_string_equal(job_str(job, "key"), "nightly-1");
        json_decref(job);
        json_t *list = journal_list_json(j, &(struct journal_list_filter){ .limit = 10 });
        assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "retry_of")),
                         first);
        assert_true(json_is_null(json_object_get(json_array_get(list, 1), "retry_of")));
        json_decref(list);

        /* once an attempt succeeded, the key has its job for good */
        journal_job_set_state(j, second, JOB_SUCCEEDED, NULL);
        nj.key = "nightly-1";
        nj.retry_of = second;
        assert_int_equal(journal_job_add(j, &nj, &other), -EEXIST);
        journal_close(j);
}

/* A journal from before attempts under a key (idem_key UNIQUE) migrates:
 * its keys move to job_key and name the same jobs. */
static void test_migrate_keys(void **state)
{
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        int before = 0;
        while (before < journal_schema_version() &&
               !strstr(journal_migrations[before], "ADD COLUMN job_key")) {
                assert_int_equal(sqlite3_exec(db, journal_migrations[before], NULL, NULL, NULL),
                                 SQLITE_OK);
                before++;
        }
        assert_true(before < journal_schema_version());
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "PRAGMA user_version = %d; PRAGMA application_id = 1702128740;"
                 "INSERT INTO jobs (pipeline, state, config, idem_key, uid, created_at) "
                 "VALUES ('etl', 'failed', '{}', 'nightly-2024-05-01', 7, 1000), "
                 "('etl', 'succeeded', '{}', NULL, 7, 2000);",
                 before);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

        struct journal *j;
        char err[256] = "";
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        int64_t id = 0;
        assert_int_equal(journal_key_latest(j, "nightly-2024-05-01", &id), 0);
        assert_int_equal(id, 1);
        json_t *job = journal_job_json(j, 1);
        assert_string_equal(job_str(job, "key"), "nightly-2024-05-01");
        assert_true(json_is_null(json_object_get(job, "retry_of")));
        json_decref(job);
        /* the failed night can now have a second attempt */
        struct journal_new_job nj = { .pipeline = "etl", .steps = steps, .nsteps = 4,
                                      .config = "{}", .key = "nightly-2024-05-01", .uid = 7,
                                      .retry_of = 1 };
        assert_int_equal(journal_job_add(j, &nj, &id), 0);
        assert_int_equal(id, 3);
        journal_close(j);
}

static void test_foreign_file_refused(void **state)
{
        set_pragma("PRAGMA application_id = 42; CREATE TABLE t (x);");
        struct journal *j;
        char err[256] = "";
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "another program"));
}

static void write_bytes(const char *p, const void *data, size_t n, long at, bool trunc)
{
        FILE *f = fopen(p, trunc ? "wb" : "r+b");
        assert_non_null(f);
        assert_int_equal(fseek(f, at, SEEK_SET), 0);
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
}

static long file_size(const char *p)
{
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fclose(f);
        return n;
}

/* A journal with a few jobs, closed (so the WAL is checkpointed into it). */
static void make_journal(int jobs)
{
        struct journal *j;
        char err[1024] = "";
        assert_int_equal(journal_open(path, 0, &j, err, sizeof(err)), 0);
        for (int i = 0; i < jobs; i++) {
                char config[600];
                snprintf(config, sizeof(config), "{\"n\": %d, \"pad\": \"%0500d\"}", i, i);
                add_job(j, "etl", steps, 4, config, NULL, 0);
        }
        journal_close(j);
}

static void expect_refused(int flags, int code, const char *what)
{
        struct journal *j = NULL;
        char err[1024] = "";
        int r = journal_open(path, flags, &j, err, sizeof(err));
        if (r != code)
                fail_msg("journal_open gave %d (%s), want %d", r, err, code);
        assert_null(j);
        if (!strstr(err, what) || !strstr(err, path))
                fail_msg("'%s' does not say '%s' and name '%s'", err, what, path);
}

/* A journal that is lost (missing or 0 bytes where the marker says one
 * existed), not a database, truncated or corrupt is refused as what it is,
 * naming the file and what to do; --new-journal starts anew only from a
 * missing or empty one. */
static void test_faulty_journal_refused_as_what_it_is(void **state)
{
        make_journal(1);
        char marker[160];
        snprintf(marker, sizeof(marker), "%s.created", path);
        assert_int_equal(access(marker, F_OK), 0);

        assert_int_equal(truncate(path, 0), 0);
        expect_refused(0, -ENODATA, "is empty (0 bytes), but this state directory had a journal");
        expect_refused(0, -ENODATA, "--new-journal");
        struct journal *j;
        char err[1024] = "";
        assert_int_equal(journal_open(path, JOURNAL_OPEN_NEW, &j, err, sizeof(err)), 0);
        json_t *list = journal_list_json(j, &(struct journal_list_filter){ .limit = 10 });
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
        journal_close(j);

        assert_int_equal(unlink(path), 0);
        expect_refused(0, -ENOENT, "is missing, but this state directory had one");

        const char text[] = "this is a text file, not the journal; it is long enough to hold "
                            "the hundred bytes of a SQLite header, and more besides.";
        write_bytes(path, text, sizeof(text), 0, true);
        expect_refused(0, -EINVAL, "is not a SQLite database");
        expect_refused(JOURNAL_OPEN_NEW, -EINVAL, "is not a SQLite database");

        unlink(path);
        unlink(marker);
        make_journal(20);
        long size = file_size(path);
        assert_true(size >= 4 * 4096);
        assert_int_equal(truncate(path, size / 2 + 100), 0);
        expect_refused(0, -EBADMSG, "is truncated");
        assert_int_equal(truncate(path, (size / 2) / 4096 * 4096), 0);
        expect_refused(0, -EBADMSG, "is truncated");

        unlink(path);
        unlink(marker);
        make_journal(20);
        /* garbage over the pages after the schema: the tables' b-trees */
        char junk[4096];
        memset(junk, 0x5a, sizeof(junk));
        for (long at = 2 * 4096; at + 4096 <= file_size(path); at += 2 * 4096)
                write_bytes(path, junk, sizeof(junk), at, false);
        expect_refused(0, -EBADMSG, "is corrupt");
        expect_refused(0, -EBADMSG, ".recover");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_job_lifecycle, setup, teardown),
            cmocka_unit_test_setup_teardown(test_checks_events_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_second_owner_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_filters_and_logs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
            cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
            cmocka_unit_test_setup_teardown(test_migrate_from_schema_1, setup, teardown),
            cmocka_unit_test_setup_teardown(test_not_before, setup, teardown),
            cmocka_unit_test_setup_teardown(test_output_latest_for, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ledger, setup, teardown),
            cmocka_unit_test_setup_teardown(test_key_attempts, setup, teardown),
            cmocka_unit_test_setup_teardown(test_migrate_keys, setup, teardown),
            cmocka_unit_test_setup_teardown(test_foreign_file_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_faulty_journal_refused_as_what_it_is, setup,
                                            teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
