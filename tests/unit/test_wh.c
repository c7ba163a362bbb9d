/* test_wh.c - the asynchronous warehouse (daemon/warehouse/wh.h): picking a
 * driver by target URI, the libpq URI a redshift:// target becomes, and on
 * SQLite the contract every driver keeps: operations run in queue order,
 * wh_cancel fails the running and the queued ones with -ECANCELED, wh_close
 * calls back the cancelled ones before closed, bulk inserts round-trip.  A
 * small helper runs the uv loop until the callbacks awaited have come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "warehouse/wh.h"
#include "warehouse/wh_pg_copytext.h"
#include "whtest.h"

static void rs_ok(const char *in, const char *want)
{
        char *out = NULL;
        char err[256] = "";
        int r = wh_redshift_uri(in, &out, err, sizeof(err));
        if (r < 0)
                fail_msg("wh_redshift_uri(%s): %d %s", in, r, err);
        if (strcmp(out, want) != 0)
                fail_msg("wh_redshift_uri(%s):\n got  %s\n want %s", in, out, want);
        free(out);
}

static void rs_err(const char *in, const char *want)
{
        char *out = NULL;
        char err[256] = "";
        assert_int_equal(wh_redshift_uri(in, &out, err, sizeof(err)), -EINVAL);
        assert_null(out);
        if (!strstr(err, want))
                fail_msg("wh_redshift_uri(%s): error '%s' lacks '%s'", in, err, want);
}

static void test_redshift_defaults(void **state)
{
        (void)state;
        /* TLS required, port 5439 and database dev unless given */
        rs_ok("redshift://awsuser@c.abc.us-west-2.redshift.amazonaws.com",
              "postgresql://awsuser@c.abc.us-west-2.redshift.amazonaws.com:5439/dev"
              "?sslmode=require");
        rs_ok("redshift://awsuser@h/", "postgresql://awsuser@h:5439/dev?sslmode=require");
        rs_ok("redshift://h/analytics", "postgresql://h:5439/analytics?sslmode=require");
        rs_ok("redshift://u@[::1]/db", "postgresql://u@[::1]:5439/db?sslmode=require");
        rs_ok("redshift://u@h?", "postgresql://u@h:5439/dev?sslmode=require");
}

static void test_redshift_uri_wins(void **state)
{
        (void)state;
        rs_ok("redshift://u@h:5440/db?sslmode=verify-full&sslrootcert=/etc/rs.pem",
              "postgresql://u@h:5440/db?sslmode=verify-full&sslrootcert=/etc/rs.pem");
        rs_ok("redshift://u@[::1]:6000/db", "postgresql://u@[::1]:6000/db?sslmode=require");
        rs_ok("redshift://u:p%40ss@h/db?connect_timeout=5",
              "postgresql://u:p%40ss@h:5439/db?connect_timeout=5&sslmode=require");
        rs_ok("redshift://u@h/db?options=-c%20statement_timeout%3D60000&sslmode=disable",
              "postgresql://u@h:5439/db?options=-c%20statement_timeout%3D60000&sslmode=disable");
        /* a parameter that merely ends in "sslmode" is not sslmode */
        rs_ok("redshift://u@h/db?xsslmode=disable",
              "postgresql://u@h:5439/db?xsslmode=disable&sslmode=require");
}

static void test_redshift_errors(void **state)
{
        (void)state;
        rs_err("redshift://", "no host");
        rs_err("redshift://awsuser@/dev", "no host");
        rs_err("redshift://?hostaddr=10.0.0.1", "no host");
        rs_err("postgresql://u@h/db", "not a redshift:// URI");
}

static char dir[] = "/tmp/test_wh.XXXXXX";

static struct wh *open_sqlite(const char *name)
{
        char uri[256];
        snprintf(uri, sizeof(uri), "sqlite://%s/%s", dir, name);
        return open_wh(uri, NULL);
}

/* ---- the tests ------------------------------------------------------------ */

static void test_open_errors(void **state)
{
        (void)state;
        struct wh *w = NULL;
        char err[256] = "";
        struct wh_params p = {.uri = "oracle://x", .loop = &loop};
        assert_int_equal(wh_open(&p, &w, err, sizeof(err)), -EINVAL);
        assert_null(w);
        assert_non_null(strstr(err, "unknown scheme in 'oracle'"));
        p.uri = "sqlite://relative.db";
        assert_int_equal(wh_open(&p, &w, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "absolute path"));
        p.uri = "sqlite:///tmp/x.db";
        p.loop = NULL;
        assert_int_equal(wh_open(&p, &w, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "loop"));
        assert_null(w);
}

static void test_open_fails_in_first_op(void **state)
{
        (void)state;
        /* wh_open does no I/O: a database that cannot be opened is the
         * first operation's error, naming the file. */
        struct wh_params p = {.uri = "sqlite:///nonexistent-dir/w.db", .loop = &loop};
        struct wh *w = NULL;
        char err[256] = "";
        assert_int_equal(wh_open(&p, &w, err, sizeof(err)), 0);
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_exec(w, "SELECT 1", on_result, tagged(&c, 1)), 0);
        run_until(&c, 1, false);
        assert_int_equal(c.err[0], -EIO);
        assert_non_null(strstr(c.msg[0], "/nonexistent-dir/w.db"));
        assert_int_equal(wh_load_errors(w, on_result, &c), -ENOTSUP);
        close_wh(w, &c);
        assert_int_equal(c.closed_after, 1);
        calls_free(&c);
}

static void test_queue_order(void **state)
{
        (void)state;
        struct wh *w = open_sqlite("order.db");
        assert_string_equal(wh_dialect(w), "sqlite");
        struct calls c = {.closed_after = -1};
        /* Everything queued at once; the callbacks come in queue order and
         * each statement saw the ones before it. */
        assert_int_equal(
            wh_exec(w, "CREATE TABLE t (i INTEGER, s VARCHAR(20))", on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_begin(w, on_result, tagged(&c, 1)), 0);
        char sql[64];
        for (int i = 0; i < 10; i++) {
                snprintf(sql, sizeof(sql), "INSERT INTO t VALUES (%d, 'v%d')", i, i);
                assert_int_equal(wh_exec(w, sql, on_result, tagged(&c, 2 + i)), 0);
        }
        assert_int_equal(wh_commit(w, on_result, tagged(&c, 12)), 0);
        assert_int_equal(
            wh_query(w, "SELECT i, s FROM t ORDER BY rowid", on_result, tagged(&c, 13)), 0);
        assert_int_equal(wh_columns(w, "t", on_result, tagged(&c, 14)), 0);
        assert_int_equal(wh_columns(w, "missing", on_result, tagged(&c, 15)), 0);
        assert_int_equal(wh_exec(w, "SELEKT", on_result, tagged(&c, 16)), 0);
        assert_int_equal(wh_rollback(w, NULL, NULL), 0); /* nothing open: a no-op */
        assert_int_equal(c.n, 0);                        /* nothing comes back at once */
        run_until(&c, 17, false);
        for (int i = 0; i < 17; i++) {
                assert_int_equal(c.tag[i], i);
                if (i < 15 && c.err[i] != 0)
                        fail_msg("op %d: %d %s", i, c.err[i], c.msg[i]);
        }
        json_t *rows = c.rows[13];
        assert_int_equal(json_array_size(rows), 10);
        assert_int_equal(json_integer_value(json_array_get(json_array_get(rows, 7), 0)), 7);
        assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 7), 1)), "v7");
        char *cols = json_dumps(c.rows[14], JSON_COMPACT);
        assert_string_equal(cols, "[[\"i\",\"INTEGER\"],[\"s\",\"VARCHAR(20)\"]]");
        free(cols);
        assert_int_equal(c.err[15], -ENOENT);
        assert_non_null(strstr(c.msg[15], "missing"));
        assert_int_equal(c.err[16], -EIO);
        assert_non_null(strstr(c.msg[16], "syntax error"));
        close_wh(w, &c);
        assert_int_equal(c.closed_after, 17);
        calls_free(&c);
}

/* A query SQLite needs seconds for. */
static const char SLOW[] = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                           "WHERE i < 1000000000) SELECT count(*) FROM r";

static void on_cancel_timer(uv_timer_t *t)
{
        wh_cancel(t->data);
}

static void test_cancel(void **state)
{
        (void)state;
        struct wh *w = open_sqlite("cancel.db");
        struct calls c = {.closed_after = -1};
        exec_ok(w, "CREATE TABLE t (i INTEGER)");
        assert_int_equal(wh_query(w, SLOW, on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_exec(w, "INSERT INTO t VALUES (1)", on_result, tagged(&c, 1)), 0);
        assert_int_equal(wh_query(w, "SELECT 1", on_result, tagged(&c, 2)), 0);
        /* cancel while the slow query runs on the pool */
        uv_timer_t t;
        uv_timer_init(&loop, &t);
        t.data = w;
        uv_timer_start(&t, on_cancel_timer, 200, 0);
        uint64_t t0 = uv_hrtime();
        run_until(&c, 3, false);
        uint64_t ms = (uv_hrtime() - t0) / 1000000;
        uv_close((uv_handle_t *)&t, NULL);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(c.tag[i], i);
                if (c.err[i] != -ECANCELED)
                        fail_msg("op %d: %d %s, not -ECANCELED", i, c.err[i], c.msg[i]);
        }
        assert_true(ms < 5000);
        /* sticky: a later operation fails too, but not at once */
        assert_int_equal(wh_exec(w, "SELECT 1", on_result, tagged(&c, 3)), 0);
        assert_int_equal(c.n, 3);
        run_until(&c, 4, false);
        assert_int_equal(c.err[3], -ECANCELED);
        close_wh(w, &c);
        assert_int_equal(c.closed_after, 4);
        calls_free(&c);
        /* the insert never ran */
        w = open_sqlite("cancel.db");
        json_t *rows = query_ok(w, "SELECT count(*) FROM t");
        assert_int_equal(json_integer_value(json_array_get(json_array_get(rows, 0), 0)), 0);
        json_decref(rows);
        struct calls c2 = {.closed_after = -1};
        close_wh(w, &c2);
}

static void test_close_cancels_and_rolls_back(void **state)
{
        (void)state;
        struct wh *w = open_sqlite("close.db");
        exec_ok(w, "CREATE TABLE t (i INTEGER)");
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_begin(w, on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_exec(w, "INSERT INTO t VALUES (1)", on_result, tagged(&c, 1)), 0);
        run_until(&c, 2, false);
        assert_int_equal(c.err[0], 0);
        assert_int_equal(c.err[1], 0);
        /* queued when closed: called back with -ECANCELED, before closed */
        assert_int_equal(wh_query(w, SLOW, on_result, tagged(&c, 2)), 0);
        assert_int_equal(wh_exec(w, "COMMIT", on_result, tagged(&c, 3)), 0);
        wh_close(w, on_closed, &c);
        assert_int_equal(c.n, 2);
        run_until(&c, 4, true);
        assert_int_equal(c.closed_after, 4);
        assert_int_equal(c.err[2], -ECANCELED);
        assert_int_equal(c.err[3], -ECANCELED);
        calls_free(&c);
        /* the open transaction was rolled back */
        w = open_sqlite("close.db");
        json_t *rows = query_ok(w, "SELECT count(*) FROM t");
        assert_int_equal(json_integer_value(json_array_get(json_array_get(rows, 0), 0)), 0);
        json_decref(rows);
        struct calls c2 = {.closed_after = -1};
        close_wh(w, &c2);
        /* closing an unused connection leaves nothing either */
        w = open_sqlite("unused.db");
        close_wh(w, &c2);
        assert_int_equal(c2.closed_after, 0);
}

static void test_copy_round_trip(void **state)
{
        (void)state;
        struct wh *w = open_sqlite("copy.db");
        exec_ok(w, "CREATE TABLE t (a INTEGER, b REAL, c VARCHAR(50), d INTEGER)");
        static const char *const cols[] = {"a", "b", "c", "d"};
        const char text[] = "tab\there\nnew line \\ and \"quotes\" and ünïcode";
        struct cell cells[3 * 4] = {
            {.kind = CELL_INT, .i = INT64_MIN},
            {.kind = CELL_REAL, .r = 1.5},
            {.kind = CELL_TEXT, .text = text, .len = sizeof(text) - 1},
            {.kind = CELL_NULL},
            {.kind = CELL_INT, .i = 42},
            {.kind = CELL_REAL, .r = -0.1},
            {.kind = CELL_TEXT, .text = "cut here", .len = 3},
            {.kind = CELL_INT, .i = INT64_MAX},
            {.kind = CELL_NULL},
            {.kind = CELL_NULL},
            {.kind = CELL_TEXT, .text = "", .len = 0},
            {.kind = CELL_INT, .i = 0},
        };
        struct wh_rows b1 = {.cells = cells, .n_rows = 2, .n_cols = 4};
        struct wh_rows b2 = {.cells = cells + 8, .n_rows = 1, .n_cols = 4};
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_begin(w, on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_copy_begin(w, "t", cols, 4, on_result, tagged(&c, 1)), 0);
        assert_int_equal(wh_copy_rows(w, &b1, on_result, tagged(&c, 2)), 0);
        assert_int_equal(wh_copy_rows(w, &b2, on_result, tagged(&c, 3)), 0);
        assert_int_equal(wh_copy_end(w, on_result, tagged(&c, 4)), 0);
        assert_int_equal(wh_commit(w, on_result, tagged(&c, 5)), 0);
        run_until(&c, 6, false);
        for (int i = 0; i < 6; i++) {
                if (c.err[i] != 0)
                        fail_msg("op %d: %d %s", i, c.err[i], c.msg[i]);
        }
        assert_int_equal(c.count[4], 3);
        json_t *rows = query_ok(w, "SELECT a, b, c, d FROM t ORDER BY rowid");
        json_t *want =
            json_pack("[[I,f,s,n],[I,f,s,I],[n,n,s,I]]", (json_int_t)INT64_MIN, 1.5, text,
                      (json_int_t)42, -0.1, "cut", (json_int_t)INT64_MAX, "", (json_int_t)0);
        if (!json_equal(rows, want)) {
                char *got = json_dumps(rows, JSON_COMPACT);
                fail_msg("copied rows: %s", got);
        }
        json_decref(want);
        json_decref(rows);
        /* a failing insert is reported by the batch that failed */
        exec_ok(w, "CREATE TABLE u (a INTEGER NOT NULL)");
        static const char *const ucols[] = {"a"};
        struct cell bad[2] = {{.kind = CELL_INT, .i = 1}, {.kind = CELL_NULL}};
        struct wh_rows bb = {.cells = bad, .n_rows = 2, .n_cols = 1};
        assert_int_equal(wh_copy_begin(w, "u", ucols, 1, on_result, tagged(&c, 6)), 0);
        assert_int_equal(wh_copy_rows(w, &bb, on_result, tagged(&c, 7)), 0);
        assert_int_equal(wh_copy_end(w, on_result, tagged(&c, 8)), 0);
        assert_int_equal(wh_copy_begin(w, "nosuch", ucols, 1, on_result, tagged(&c, 9)), 0);
        run_until(&c, 10, false);
        assert_int_equal(c.err[6], 0);
        assert_int_equal(c.err[7], -EIO);
        assert_non_null(strstr(c.msg[7], "NOT NULL"));
        assert_int_equal(c.err[8], 0);
        assert_int_equal(c.count[8], 1);
        assert_int_equal(c.err[9], -EIO);
        assert_non_null(strstr(c.msg[9], "nosuch"));
        close_wh(w, &c);
        calls_free(&c);
}

/* ---- the COPY text encoder of the PostgreSQL driver ----------------------- */

static char *encode(const struct cell *cells, size_t n_rows, size_t n_cols)
{
        struct wh_rows rows = {.cells = cells, .n_rows = n_rows, .n_cols = n_cols};
        struct buf b = {0};
        assert_int_equal(wh_pg_copytext(&rows, &b), 0);
        return b.data;
}

static void real_is(double d, const char *want)
{
        struct cell c = {.kind = CELL_REAL, .r = d};
        char *got = encode(&c, 1, 1);
        char line[64];
        snprintf(line, sizeof(line), "%s\n", want);
        if (strcmp(got, line) != 0)
                fail_msg("%.17g encoded as '%s', want '%s'", d, got, want);
        free(got);
}

static void test_copytext(void **state)
{
        (void)state;
        const char text[] = "a\tb\nc\\d\re";
        struct cell cells[] = {
            {.kind = CELL_NULL},
            {.kind = CELL_INT, .i = INT64_MIN},
            {.kind = CELL_TEXT, .text = text, .len = sizeof(text) - 1},
            {.kind = CELL_TEXT, .text = "", .len = 0},
            {.kind = CELL_INT, .i = INT64_MAX},
            {.kind = CELL_INT, .i = 0},
            {.kind = CELL_TEXT, .text = "\\N", .len = 2},
            {.kind = CELL_TEXT, .text = "cut", .len = 1},
        };
        char *got = encode(cells, 2, 4);
        assert_string_equal(got, "\\N\t-9223372036854775808\ta\\tb\\nc\\\\d\\re\t\n"
                                 "9223372036854775807\t0\t\\\\N\tc\n");
        free(got);
        /* appends; nothing for no rows */
        struct wh_rows none = {.cells = cells, .n_rows = 0, .n_cols = 4};
        struct buf b = {0};
        assert_int_equal(buf_append(&b, "x", 1), 0);
        assert_int_equal(wh_pg_copytext(&none, &b), 0);
        struct wh_rows one = {.cells = cells + 5, .n_rows = 1, .n_cols = 1};
        assert_int_equal(wh_pg_copytext(&one, &b), 0);
        assert_int_equal(wh_pg_copytext(&one, &b), 0);
        assert_string_equal(b.data, "x0\n0\n");
        /* a buffer with a limit refuses what would not fit, appending nothing */
        b.max = b.len + 2;
        struct wh_rows long_text = {.cells = cells + 2, .n_rows = 1, .n_cols = 1};
        assert_int_equal(wh_pg_copytext(&long_text, &b), -E2BIG);
        assert_string_equal(b.data, "x0\n0\n");
        buf_free(&b);
}

static void test_copytext_reals(void **state)
{
        (void)state;
        real_is(0, "0");
        real_is(3, "3");
        real_is(-1.5, "-1.5");
        real_is(0.1, "0.1");
        real_is(427.02362, "427.02362");
        real_is(0.000123, "0.000123");
        real_is(-0.0, "-0");
        real_is(1e20, "1e+20");
        real_is(1.0 / 3, "0.33333333333333331");
        real_is(NAN, "NaN");
        real_is(INFINITY, "Infinity");
        real_is(-INFINITY, "-Infinity");
        /* every finite double reads back as itself */
        uint64_t x = 0x9e3779b97f4a7c15u;
        for (int i = 0; i < 100000; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                double d;
                memcpy(&d, &x, sizeof(d));
                if (!isfinite(d))
                        continue;
                if (i % 2)
                        d = (double)(int64_t)(x % 100000000) / 1000.0; /* JSON-like decimals */
                struct cell c = {.kind = CELL_REAL, .r = d};
                char *t = encode(&c, 1, 1);
                char *end = NULL;
                double back = strtod(t, &end);
                if (*end != '\n' || memcmp(&back, &d, sizeof(d)) != 0)
                        fail_msg("%.17g encoded as '%s', reads back as %.17g", d, t, back);
                free(t);
        }
}

static int setup(void **state)
{
        (void)state;
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_non_null(mkdtemp(dir));
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        assert_int_equal(uv_loop_close(&loop), 0);
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        return system(cmd) == 0 ? 0 : -1;
}

/* A rollback abandons a COPY nobody ended; the next one starts afresh. */
static void test_copy_rollback(void **state)
{
        (void)state;
        check_copy_rollback(open_sqlite("rollback.db"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_redshift_defaults),
            cmocka_unit_test(test_redshift_uri_wins),
            cmocka_unit_test(test_redshift_errors),
            cmocka_unit_test(test_open_errors),
            cmocka_unit_test(test_open_fails_in_first_op),
            cmocka_unit_test(test_queue_order),
            cmocka_unit_test(test_cancel),
            cmocka_unit_test(test_close_cancels_and_rolls_back),
            cmocka_unit_test(test_copy_round_trip),
            cmocka_unit_test(test_copy_rollback),
            cmocka_unit_test(test_copytext),
            cmocka_unit_test(test_copytext_reals),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
