/* test_wh_pg.c - the PostgreSQL driver of the asynchronous warehouse
 * (daemon/warehouse/wh_pg*.c) against a throwaway server: initdb in a
 * temporary folder (as the postgres user when we are root), listening on
 * its own Unix socket folder and on 127.0.0.1 at a free port, trust
 * authentication, stopped and removed at the end.  Drives exec, query,
 * columns, transactions, COPY (small and past the driver's queue bound),
 * cancel of a running statement and of a COPY, wh_close with a statement
 * running, and the error mapping.  Skipped when no PostgreSQL server is
 * installed (/usr/lib/postgresql/N/bin/initdb). */
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <netinet/in.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "whtest.h"

static char pgdir[] = "/tmp/test_wh_pg.XXXXXX";
static char bindir[256];
static int port;
static bool started;
static char why_not[256];

/* Runs a shell command as the server's owner; its exit status. */
static int as_owner(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int as_owner(const char *fmt, ...)
{
        char cmd[2048], full[2300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (getuid() == 0)
                snprintf(full, sizeof(full), "runuser -u postgres -- sh -c '%s'", cmd);
        else
                snprintf(full, sizeof(full), "sh -c '%s'", cmd);
        return system(full);
}

static int free_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        close(fd);
        return ntohs(a.sin_port);
}

static int setup(void **state)
{
        (void)state;
        assert_int_equal(uv_loop_init(&loop), 0);
        if (getenv("TEST_WH_DEBUG")) /* the driver's debug log on stderr */
                log_set_level(LOG_DEBUG);
        glob_t g;
        if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
                snprintf(why_not, sizeof(why_not), "no PostgreSQL server installed");
                return 0;
        }
        /* the newest version sorts last */
        snprintf(bindir, sizeof(bindir), "%.*s", (int)(strlen(g.gl_pathv[g.gl_pathc - 1]) - 7),
                 g.gl_pathv[g.gl_pathc - 1]);
        globfree(&g);
        struct passwd *pw = getuid() == 0 ? getpwnam("postgres") : NULL;
        if (getuid() == 0 && (!pw || access("/usr/sbin/runuser", X_OK) != 0)) {
                snprintf(why_not, sizeof(why_not), "root without a postgres user or runuser");
                return 0;
        }
        assert_non_null(mkdtemp(pgdir));
        assert_int_equal(chmod(pgdir, 0755), 0);
        if (pw)
                assert_int_equal(chown(pgdir, pw->pw_uid, pw->pw_gid), 0);
        port = free_port();
        assert_true(port > 0);
        if (as_owner("%s/initdb -D %s/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 "
                     "--no-sync >%s/initdb.log 2>&1",
                     bindir, pgdir, pgdir) != 0 ||
            as_owner("%s/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o \"-c "
                     "listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off\" start >/dev/null",
                     bindir, pgdir, pgdir, port, pgdir) != 0) {
                snprintf(why_not, sizeof(why_not), "the server did not start (see %s)", pgdir);
                return -1;
        }
        started = true;
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        if (started)
                as_owner("%s/pg_ctl -D %s/data -m immediate -w stop >/dev/null", bindir, pgdir);
        if (strchr(pgdir, 'X') == NULL) {
                char cmd[300];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pgdir);
                if (system(cmd) != 0)
                        return -1;
        }
        return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* A connection over TCP to "localhost" (resolved with uv_getaddrinfo). */
static struct wh *open_pg(void)
{
        if (!started)
                skip();
        char uri[256];
        snprintf(uri, sizeof(uri), "postgresql://postgres@localhost:%d/postgres", port);
        return open_wh(uri, NULL);
}

/* ... or over the Unix socket. */
static struct wh *open_pg_socket(void)
{
        if (!started)
                skip();
        char uri[256];
        snprintf(uri, sizeof(uri), "postgresql://postgres@/postgres?host=%s&port=%d", pgdir, port);
        return open_wh(uri, NULL);
}

static void done_with(struct wh *w, struct calls *c)
{
        close_wh(w, c);
        calls_free(c);
}

static json_t *cell(json_t *rows, size_t r, size_t c)
{
        return json_array_get(json_array_get(rows, r), c);
}

static void test_exec_query_columns(void **state)
{
        (void)state;
        struct wh *w = open_pg();
        assert_string_equal(wh_dialect(w), "postgres");
        struct calls c = {.closed_after = -1};
        /* all queued at once; answered in order */
        assert_int_equal(wh_exec(w,
                                 "DROP TABLE IF EXISTS t; CREATE TABLE t (i int, f float8, s text, "
                                 "b bool, n numeric(10,2), v varchar(20))",
                                 on_result, tagged(&c, 0)),
                         0);
        assert_int_equal(wh_begin(w, on_result, tagged(&c, 1)), 0);
        assert_int_equal(wh_exec(w, "INSERT INTO t VALUES (7, 1.5, 'x\ty', true, 12.25, NULL)",
                                 on_result, tagged(&c, 2)),
                         0);
        assert_int_equal(wh_commit(w, on_result, tagged(&c, 3)), 0);
        assert_int_equal(wh_query(w, "SELECT i, f, s, b, n, v FROM t", on_result, tagged(&c, 4)),
                         0);
        assert_int_equal(wh_columns(w, "T", on_result, tagged(&c, 5)), 0);
        assert_int_equal(wh_columns(w, "missing", on_result, tagged(&c, 6)), 0);
        /* a failed statement fails its transaction: COMMIT says so */
        assert_int_equal(wh_begin(w, on_result, tagged(&c, 7)), 0);
        assert_int_equal(wh_exec(w, "SELEKT", on_result, tagged(&c, 8)), 0);
        assert_int_equal(wh_commit(w, on_result, tagged(&c, 9)), 0);
        assert_int_equal(wh_rollback(w, on_result, tagged(&c, 10)), 0);
        assert_int_equal(wh_exec(w, "INSERT INTO t (i) VALUES (8)", on_result, tagged(&c, 11)), 0);
        assert_int_equal(wh_rollback(w, NULL, NULL), 0); /* no transaction: nothing to do */
        assert_int_equal(wh_query(w, "SELECT count(*) FROM t", on_result, tagged(&c, 12)), 0);
        assert_int_equal(wh_load_errors(w, on_result, &c), -ENOTSUP);
        assert_int_equal(c.n, 0);
        run_until(&c, 13, false);
        for (int i = 0; i < 13; i++) {
                assert_int_equal(c.tag[i], i);
                if (c.err[i] != 0 && i != 6 && i != 8 && i != 9)
                        fail_msg("op %d: %d %s", i, c.err[i], c.msg[i]);
        }
        json_t *rows = c.rows[4];
        assert_int_equal(json_array_size(rows), 1);
        assert_int_equal(json_integer_value(cell(rows, 0, 0)), 7);
        assert_true(json_real_value(cell(rows, 0, 1)) == 1.5);
        assert_string_equal(json_string_value(cell(rows, 0, 2)), "x\ty");
        assert_int_equal(json_integer_value(cell(rows, 0, 3)), 1);
        assert_true(json_real_value(cell(rows, 0, 4)) == 12.25);
        assert_true(json_is_null(cell(rows, 0, 5)));
        char *cols = json_dumps(c.rows[5], JSON_COMPACT);
        assert_string_equal(cols, "[[\"i\",\"INTEGER\"],[\"f\",\"DOUBLE PRECISION\"],"
                                  "[\"s\",\"VARCHAR(65535)\"],[\"b\",\"BOOLEAN\"],"
                                  "[\"n\",\"NUMERIC(10,2)\"],[\"v\",\"VARCHAR(20)\"]]");
        free(cols);
        assert_int_equal(c.err[6], -ENOENT);
        assert_int_equal(c.err[8], -EIO);
        assert_non_null(strstr(c.msg[8], "SQLSTATE 42601"));
        assert_int_equal(c.err[9], -EIO);
        assert_non_null(strstr(c.msg[9], "failed transaction"));
        assert_int_equal(json_integer_value(cell(c.rows[12], 0, 0)), 2);
        done_with(w, &c);
        assert_int_equal(c.closed_after, 13);
}

static void test_copy(void **state)
{
        (void)state;
        struct wh *w = open_pg_socket();
        exec_ok(w, "DROP TABLE IF EXISTS c; CREATE TABLE c (a bigint, b float8, s text, d int)");
        static const char *const cols[] = {"a", "b", "s", "d"};
        const char text[] = "tab\there\nnew line \\N and \\ and ünï";
        struct cell cells[] = {
            {.kind = CELL_INT, .i = INT64_MIN},
            {.kind = CELL_REAL, .r = 427.02362},
            {.kind = CELL_TEXT, .text = text, .len = sizeof(text) - 1},
            {.kind = CELL_NULL},
            {.kind = CELL_INT, .i = 1},
            {.kind = CELL_REAL, .r = NAN},
            {.kind = CELL_TEXT, .text = "", .len = 0},
            {.kind = CELL_INT, .i = 2},
            {.kind = CELL_INT, .i = 2},
            {.kind = CELL_REAL, .r = -INFINITY},
            {.kind = CELL_NULL},
            {.kind = CELL_INT, .i = 3},
        };
        struct wh_rows b1 = {.cells = cells, .n_rows = 2, .n_cols = 4};
        struct wh_rows b2 = {.cells = cells + 8, .n_rows = 1, .n_cols = 4};
        struct wh_rows bad = {.cells = cells, .n_rows = 1, .n_cols = 3};
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_begin(w, on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_copy_begin(w, "C", cols, 4, on_result, tagged(&c, 1)), 0);
        assert_int_equal(wh_copy_rows(w, &b1, on_result, tagged(&c, 2)), 0);
        assert_int_equal(wh_copy_rows(w, &bad, on_result, tagged(&c, 3)), 0);
        assert_int_equal(wh_copy_rows(w, &b2, on_result, tagged(&c, 4)), 0);
        assert_int_equal(wh_exec(w, "SELECT 1", on_result, tagged(&c, 5)), 0);
        assert_int_equal(wh_copy_end(w, on_result, tagged(&c, 6)), 0);
        assert_int_equal(wh_commit(w, on_result, tagged(&c, 7)), 0);
        assert_int_equal(wh_query(w, "SELECT a, b, s, d FROM c ORDER BY d NULLS FIRST", on_result,
                                  tagged(&c, 8)),
                         0);
        run_until(&c, 9, false);
        for (int i = 0; i < 9; i++) {
                if (c.err[i] != 0 && i != 3 && i != 5)
                        fail_msg("op %d: %d %s", i, c.err[i], c.msg[i]);
        }
        assert_int_equal(c.err[3], -EINVAL); /* 3 cells for 4 columns */
        assert_int_equal(c.err[5], -EINVAL); /* not during a COPY */
        assert_non_null(strstr(c.msg[5], "COPY is in progress"));
        assert_int_equal(c.count[6], 3);
        json_t *want = json_pack("[[I,f,s,n],[i,s,s,i],[i,s,n,i]]", (json_int_t)INT64_MIN,
                                 427.02362, text, 1, "NaN", "", 2, 2, "-Infinity", 3);
        if (!json_equal(c.rows[8], want)) {
                char *got = json_dumps(c.rows[8], JSON_COMPACT);
                fail_msg("copied rows: %s", got);
        }
        json_decref(want);

        /* Past the driver's queue bound (8 MiB): 200000 rows of about 100
         * bytes, in batches, each queued after the last one's callback. */
        exec_ok(w, "TRUNCATE c");
        enum { BATCH = 5000, BATCHES = 40 };
        static struct cell big[BATCH * 4];
        char pad[80];
        memset(pad, 'p', sizeof(pad));
        struct calls d = {.closed_after = -1};
        assert_int_equal(wh_copy_begin(w, "c", cols, 4, on_result, tagged(&d, 0)), 0);
        run_until(&d, 1, false);
        assert_int_equal(d.err[0], 0);
        uint64_t t0 = uv_hrtime();
        for (int b = 0; b < BATCHES; b++) {
                for (int r = 0; r < BATCH; r++) {
                        struct cell *row = big + r * 4;
                        row[0] = (struct cell){.kind = CELL_INT, .i = (int64_t)b * BATCH + r};
                        row[1] = (struct cell){.kind = CELL_REAL, .r = r / 8.0};
                        row[2] = (struct cell){.kind = CELL_TEXT, .text = pad, .len = sizeof(pad)};
                        row[3] = (struct cell){.kind = CELL_INT, .i = b};
                }
                struct wh_rows rows = {.cells = big, .n_rows = BATCH, .n_cols = 4};
                int n = d.n;
                assert_int_equal(wh_copy_rows(w, &rows, on_result, tagged(&d, 1)), 0);
                d.n = n;
                while (d.n == n)
                        run_until(&d, n + 1, false);
                d.n = n; /* one slot reused: only the outcome matters */
                if (d.err[n] != 0)
                        fail_msg("batch %d: %d %s", b, d.err[n], d.msg[n]);
        }
        assert_int_equal(wh_copy_end(w, on_result, tagged(&d, 2)), 0);
        run_until(&d, 2, false);
        assert_int_equal(d.err[1], 0);
        assert_int_equal(d.count[1], BATCH * BATCHES);
        print_message("COPY of %d rows: %.0f ms\n", BATCH * BATCHES,
                      (double)(uv_hrtime() - t0) / 1e6);
        json_t *sum = query_ok(w, "SELECT count(*), sum(a), sum(length(s)) FROM c");
        assert_int_equal(json_integer_value(cell(sum, 0, 0)), BATCH * BATCHES);
        assert_int_equal(json_integer_value(cell(sum, 0, 1)),
                         (int64_t)BATCH * BATCHES * (BATCH * BATCHES - 1) / 2);
        assert_int_equal(json_integer_value(cell(sum, 0, 2)), (int64_t)BATCH * BATCHES * 80);
        json_decref(sum);
        calls_free(&d);
        done_with(w, &c);
}

static void on_cancel_timer(uv_timer_t *t)
{
        wh_cancel(t->data);
}

/* Cancels w after ms of running the loop. */
static void cancel_after(uv_timer_t *t, struct wh *w, uint64_t ms)
{
        uv_timer_init(&loop, t);
        t->data = w;
        uv_timer_start(t, on_cancel_timer, ms, 0);
}

static void test_cancel(void **state)
{
        (void)state;
        struct wh *w = open_pg();
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_query(w, "SELECT pg_sleep(30)", on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_exec(w, "CREATE TABLE never (i int)", on_result, tagged(&c, 1)), 0);
        uv_timer_t t;
        cancel_after(&t, w, 500);
        uint64_t t0 = uv_hrtime();
        run_until(&c, 2, false);
        uint64_t ms = (uv_hrtime() - t0) / 1000000;
        uv_close((uv_handle_t *)&t, NULL);
        for (int i = 0; i < 2; i++) {
                if (c.err[i] != -ECANCELED)
                        fail_msg("op %d: %d %s, not -ECANCELED", i, c.err[i], c.msg[i]);
        }
        assert_non_null(strstr(c.msg[0], "cancel"));
        assert_true(ms < 5000);
        /* sticky */
        assert_int_equal(wh_exec(w, "SELECT 1", on_result, tagged(&c, 2)), 0);
        run_until(&c, 3, false);
        assert_int_equal(c.err[2], -ECANCELED);
        done_with(w, &c);
        assert_int_equal(c.closed_after, 3);
        /* the connection answers again after a cancel: a new one does */
        w = open_pg();
        json_t *rows = query_ok(w, "SELECT to_regclass('never') IS NULL");
        assert_int_equal(json_integer_value(cell(rows, 0, 0)), 1);
        json_decref(rows);
        struct calls c2 = {.closed_after = -1};
        done_with(w, &c2);
}

static void test_cancel_copy(void **state)
{
        (void)state;
        struct wh *w = open_pg();
        exec_ok(w, "DROP TABLE IF EXISTS cc; CREATE TABLE cc (a int)");
        static const char *const cols[] = {"a"};
        struct cell one = {.kind = CELL_INT, .i = 1};
        struct wh_rows rows = {.cells = &one, .n_rows = 1, .n_cols = 1};
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_copy_begin(w, "cc", cols, 1, on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_copy_rows(w, &rows, on_result, tagged(&c, 1)), 0);
        run_until(&c, 2, false);
        assert_int_equal(c.err[0], 0);
        assert_int_equal(c.err[1], 0);
        wh_cancel(w);
        assert_int_equal(wh_copy_end(w, on_result, tagged(&c, 2)), 0);
        run_until(&c, 3, false);
        assert_int_equal(c.err[2], -ECANCELED);
        done_with(w, &c);
        w = open_pg();
        json_t *n = query_ok(w, "SELECT count(*) FROM cc");
        assert_int_equal(json_integer_value(cell(n, 0, 0)), 0);
        json_decref(n);
        struct calls c2 = {.closed_after = -1};
        done_with(w, &c2);
}

static void test_close_while_running(void **state)
{
        (void)state;
        struct wh *w = open_pg();
        struct calls c = {.closed_after = -1};
        exec_ok(w, "SELECT 1"); /* connected */
        assert_int_equal(wh_query(w, "SELECT pg_sleep(30)", on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_exec(w, "SELECT 2", on_result, tagged(&c, 1)), 0);
        uv_run(&loop, UV_RUN_NOWAIT); /* the query is sent */
        uint64_t t0 = uv_hrtime();
        wh_close(w, on_closed, &c);
        run_until(&c, 2, true);
        assert_true((uv_hrtime() - t0) / 1000000 < 2000); /* no wait for the server */
        assert_int_equal(c.closed_after, 2);
        assert_int_equal(c.err[0], -ECANCELED);
        assert_int_equal(c.err[1], -ECANCELED);
        calls_free(&c);
        /* nothing of it is left: no handle, no pool job */
        assert_int_equal(uv_loop_alive(&loop), 0);
}

static void test_errors(void **state)
{
        (void)state;
        if (!started)
                skip();
        static const char secret[] = "Secret-pw-8d1c";
        char uri[256];
        struct calls c = {.closed_after = -1};
        /* nothing listens: -EAGAIN (transient), naming the target, not the password */
        int nobody = free_port();
        snprintf(uri, sizeof(uri), "postgresql://postgres@127.0.0.1:%d/postgres", nobody);
        struct wh *w = open_wh(uri, secret);
        assert_int_equal(wh_exec(w, "SELECT 1", on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_exec(w, "SELECT 1", on_result, tagged(&c, 1)), 0);
        run_until(&c, 2, false);
        assert_int_equal(c.err[0], -EAGAIN);
        assert_non_null(strstr(c.msg[0], "cannot connect to PostgreSQL"));
        char label[64];
        snprintf(label, sizeof(label), "postgres@127.0.0.1:%d/postgres", nobody);
        assert_non_null(strstr(c.msg[0], label));
        assert_int_equal(c.err[1], -EAGAIN); /* the connection stays gone */
        done_with(w, &c);

        /* no such database: refused at login, -EACCES */
        struct calls d = {.closed_after = -1};
        snprintf(uri, sizeof(uri), "postgresql://postgres:%s@127.0.0.1:%d/nosuch", secret, port);
        w = open_wh(uri, NULL);
        assert_int_equal(wh_query(w, "SELECT 1", on_result, tagged(&d, 0)), 0);
        run_until(&d, 1, false);
        assert_int_equal(d.err[0], -EACCES);
        assert_non_null(strstr(d.msg[0], "nosuch"));
        assert_null(strstr(d.msg[0], secret));
        done_with(w, &d);

        /* statement_timeout: -ETIME; a lost connection: -EAGAIN */
        struct calls e = {.closed_after = -1};
        w = open_pg();
        struct wh *killer = open_pg_socket();
        assert_int_equal(wh_exec(w, "SET statement_timeout = 100", on_result, tagged(&e, 0)), 0);
        assert_int_equal(wh_query(w, "SELECT pg_sleep(5)", on_result, tagged(&e, 1)), 0);
        assert_int_equal(wh_exec(w,
                                 "CREATE TEMP TABLE u (i int UNIQUE); INSERT INTO u VALUES "
                                 "(1), (1)",
                                 on_result, tagged(&e, 2)),
                         0);
        assert_int_equal(wh_query(w, "SELECT pg_backend_pid()", on_result, tagged(&e, 3)), 0);
        run_until(&e, 4, false);
        assert_int_equal(e.err[0], 0);
        assert_int_equal(e.err[1], -ETIME);
        assert_int_equal(e.err[2], -EIO);
        assert_non_null(strstr(e.msg[2], "23505"));
        char kill[128];
        snprintf(kill, sizeof(kill), "SELECT pg_terminate_backend(%lld)",
                 (long long)json_integer_value(cell(e.rows[3], 0, 0)));
        json_decref(query_ok(killer, kill));
        assert_int_equal(wh_exec(w, "SELECT 1", on_result, tagged(&e, 4)), 0);
        run_until(&e, 5, false);
        assert_int_equal(e.err[4], -EAGAIN);
        assert_non_null(strstr(e.msg[4], "lost"));
        done_with(w, &e);
        struct calls k = {.closed_after = -1};
        done_with(killer, &k);
}

static void test_redshift_load_errors_without_copy(void **state)
{
        (void)state;
        if (!started)
                skip();
        char uri[256];
        snprintf(uri, sizeof(uri), "redshift://postgres@127.0.0.1:%d/postgres?sslmode=disable",
                 port);
        struct wh *w = open_wh(uri, NULL);
        assert_string_equal(wh_dialect(w), "redshift");
        struct calls c = {.closed_after = -1};
        /* the session setup of Redshift's dialect works on PostgreSQL too */
        assert_int_equal(wh_query(w, "SHOW extra_float_digits", on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_load_errors(w, on_result, tagged(&c, 1)), 0);
        run_until(&c, 2, false);
        assert_int_equal(c.err[0], 0);
        assert_string_equal(json_string_value(cell(c.rows[0], 0, 0)), "2");
        assert_int_equal(c.err[1], -ENOENT);
        done_with(w, &c);
}

/* A cancel sent as the statement is sent may reach the server first and do
 * nothing: it is sent again until the statement ends. */
static void test_cancel_at_once(void **state)
{
        (void)state;
        struct wh *w = open_pg();
        exec_ok(w, "SELECT 1"); /* connected */
        for (int i = 0; i < 3; i++) {
                struct calls c = {.closed_after = -1};
                w = i ? open_pg() : w;
                if (i)
                        exec_ok(w, "SELECT 1");
                assert_int_equal(wh_query(w, "SELECT pg_sleep(30)", on_result, tagged(&c, 0)), 0);
                uv_run(&loop, UV_RUN_NOWAIT); /* sent */
                uint64_t t0 = uv_hrtime();
                wh_cancel(w);
                run_until(&c, 1, false);
                uint64_t ms = (uv_hrtime() - t0) / 1000000;
                assert_int_equal(c.err[0], -ECANCELED);
                if (ms > 4000)
                        fail_msg("cancel took %llu ms", (unsigned long long)ms);
                close_wh(w, &c);
                calls_free(&c);
        }
}

/* A rollback abandons a COPY nobody ended; the next one starts afresh. */
static void test_copy_rollback(void **state)
{
        (void)state;
        check_copy_rollback(open_pg());
}

/* Each operation queued from the previous one's callback (as the etl steps
 * and the COPY pipeline do), over TCP, many times: every one must call back
 * within OP_DEADLINE_MS.  A reply that arrives while the driver does not
 * watch for it (or that libpq read but nobody parsed) leaves an operation
 * without its callback and the loop waiting forever; this catches it.
 * An operation may also complete within its start (a zero timer), before
 * uv_run polls: the flag that ends the wait comes with uv_stop. */
#define CHAIN_CYCLES 300
#define OP_DEADLINE_MS 5000

struct chain {
        struct wh *w;
        uv_timer_t deadline;
        int cycle; /* 0..CHAIN_CYCLES-1 */
        int step;  /* the step whose callback is awaited */
        int ops;   /* callbacks seen */
        bool done;
        int err;
        char msg[256];
        struct cell one;
        struct wh_rows rows;
};

static void chain_next(struct chain *k);

static void on_chain_deadline(uv_timer_t *t)
{
        struct chain *k = t->data;
        fail_msg("cycle %d step %d (after %d callbacks): no callback within %d ms", k->cycle,
                 k->step, k->ops, OP_DEADLINE_MS);
}

static void on_chain(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct chain *k = ud;
        k->ops++;
        if (res->err < 0) {
                k->err = res->err;
                snprintf(k->msg, sizeof(k->msg), "cycle %d step %d: %s", k->cycle, k->step,
                         res->msg);
                k->done = true;
                uv_timer_stop(&k->deadline);
                uv_stop(&loop);
                return;
        }
        chain_next(k);
}

/* Queues the next step (from the previous one's callback). */
static void chain_next(struct chain *k)
{
        static const char *const cols[] = {"a"};
        /* every tenth cycle loads with COPY instead of INSERT */
        bool copy = k->cycle % 10 == 9;
        int steps = copy ? 6 : 4;
        if (k->ops > 0 && ++k->step == steps) {
                k->step = 0;
                k->cycle++;
                copy = k->cycle % 10 == 9;
        }
        if (k->cycle == CHAIN_CYCLES) {
                k->done = true;
                uv_timer_stop(&k->deadline);
                uv_stop(&loop); /* the last may come before UV_RUN_ONCE polls */
                return;
        }
        uv_timer_start(&k->deadline, on_chain_deadline, OP_DEADLINE_MS, 0);
        char sql[128];
        int r;
        k->one.i = k->cycle;
        switch (copy ? k->step : k->step == 3 ? 5 : k->step) {
        case 0:
                r = wh_exec(k->w, "DROP TABLE IF EXISTS chain; CREATE TABLE chain (a int)",
                            on_chain, k);
                break;
        case 1:
                r = wh_begin(k->w, on_chain, k);
                break;
        case 2:
                if (copy) {
                        r = wh_copy_begin(k->w, "chain", cols, 1, on_chain, k);
                } else {
                        snprintf(sql, sizeof(sql), "INSERT INTO chain VALUES (%d)", k->cycle);
                        r = wh_exec(k->w, sql, on_chain, k);
                }
                break;
        case 3:
                r = wh_copy_rows(k->w, &k->rows, on_chain, k);
                break;
        case 4:
                r = wh_copy_end(k->w, on_chain, k);
                break;
        default:
                r = wh_commit(k->w, on_chain, k);
                break;
        }
        if (r < 0)
                fail_msg("cycle %d step %d: queueing failed: %d", k->cycle, k->step, r);
}

static void test_chained_ops(void **state)
{
        (void)state;
        struct chain k = {.w = open_pg()};
        k.one.kind = CELL_INT;
        k.rows = (struct wh_rows){.cells = &k.one, .n_rows = 1, .n_cols = 1};
        uv_timer_init(&loop, &k.deadline);
        k.deadline.data = &k;
        chain_next(&k);
        while (!k.done)
                uv_run(&loop, UV_RUN_ONCE);
        if (k.err)
                fail_msg("%d %s", k.err, k.msg);
        assert_int_equal(k.ops, CHAIN_CYCLES * 4 + CHAIN_CYCLES / 10 * 2);
        json_t *rows = query_ok(k.w, "SELECT count(*) FROM chain");
        /* a table made anew each cycle: the last cycle's row (a COPY) */
        assert_int_equal(json_integer_value(cell(rows, 0, 0)), 1);
        json_decref(rows);
        uv_close((uv_handle_t *)&k.deadline, NULL);
        struct calls c = {.closed_after = -1};
        done_with(k.w, &c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_exec_query_columns),
            cmocka_unit_test(test_copy),
            cmocka_unit_test(test_cancel),
            cmocka_unit_test(test_cancel_at_once),
            cmocka_unit_test(test_cancel_copy),
            cmocka_unit_test(test_copy_rollback),
            cmocka_unit_test(test_close_while_running),
            cmocka_unit_test(test_errors),
            cmocka_unit_test(test_redshift_load_errors_without_copy),
            cmocka_unit_test(test_chained_ops),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
