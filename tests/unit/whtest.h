/* whtest.h - driving the asynchronous warehouse (daemon/warehouse/wh.h) in a
 * unit test: callbacks that record what they saw, in order, and a helper
 * that runs the uv loop until the callbacks awaited have come (or fails the
 * test after 20 s).  Header-only: cmocka tests are single files. */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <uv.h>

#include "warehouse/wh.h"

#define MAX_CALLS 64

/* What callbacks saw, in order. */
struct calls {
        int n;
        int tag[MAX_CALLS];
        int err[MAX_CALLS];
        char msg[MAX_CALLS][256];
        json_t *rows[MAX_CALLS];
        uint64_t count[MAX_CALLS];
        int closed_after; /* n when the closed callback came; -1 before */
};

struct call {
        struct calls *c;
        int tag;
};

static uv_loop_t loop;

static inline void on_result(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct call *k = ud;
        struct calls *c = k->c;
        assert_true(c->n < MAX_CALLS);
        assert_int_equal(c->closed_after, -1);
        c->tag[c->n] = k->tag;
        c->err[c->n] = res->err;
        snprintf(c->msg[c->n], sizeof(c->msg[0]), "%s", res->msg);
        c->rows[c->n] = res->rows ? json_incref(res->rows) : NULL;
        c->count[c->n] = res->count;
        c->n++;
        free(k);
        uv_stop(&loop); /* run_until looks again, without blocking in poll */
}

static inline void *tagged(struct calls *c, int tag)
{
        struct call *k = malloc(sizeof(*k));
        assert_non_null(k);
        k->c = c;
        k->tag = tag;
        return k;
}

static inline void on_closed(void *ud)
{
        struct calls *c = ud;
        c->closed_after = c->n;
        uv_stop(&loop);
}

static inline void calls_free(struct calls *c)
{
        for (int i = 0; i < c->n; i++)
                json_decref(c->rows[i]);
}

static inline void on_deadline(uv_timer_t *t)
{
        (void)t;
        fail_msg("the awaited callbacks did not come within 20 s");
}

/* Runs the loop until c has n results (and the closed callback, if
 * closed). */
static inline void run_until(struct calls *c, int n, bool closed)
{
        uv_timer_t deadline;
        uv_timer_init(&loop, &deadline);
        uv_timer_start(&deadline, on_deadline, 20000, 0);
        while (c->n < n || (closed && c->closed_after < 0))
                uv_run(&loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&deadline, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* Opens uri on the test loop, or fails the test. */
static inline struct wh *open_wh(const char *uri, const char *password)
{
        struct wh_params p = {.uri = uri, .loop = &loop, .password = password};
        struct wh *w = NULL;
        char err[256] = "";
        int r = wh_open(&p, &w, err, sizeof(err));
        if (r < 0)
                fail_msg("wh_open(%s): %d %s", uri, r, err);
        return w;
}

/* Closes w and waits for its closed callback (c may have seen another). */
static inline void close_wh(struct wh *w, struct calls *c)
{
        c->closed_after = -1;
        wh_close(w, on_closed, c);
        run_until(c, c->n, true);
}

/* Runs one statement alone and asserts it worked. */
static inline void exec_ok(struct wh *w, const char *sql)
{
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_exec(w, sql, on_result, tagged(&c, 0)), 0);
        run_until(&c, 1, false);
        if (c.err[0] < 0)
                fail_msg("%s: %d %s", sql, c.err[0], c.msg[0]);
}

/* Runs a query alone and returns its rows (to json_decref). */
static inline json_t *query_ok(struct wh *w, const char *sql)
{
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_query(w, sql, on_result, tagged(&c, 0)), 0);
        run_until(&c, 1, false);
        if (c.err[0] < 0)
                fail_msg("%s: %d %s", sql, c.err[0], c.msg[0]);
        return c.rows[0];
}

/* Asserts that wh_rollback abandons a COPY nobody ended and that the next
 * COPY starts afresh (table rb is made anew); closes w. */
static inline void check_copy_rollback(struct wh *w)
{
        exec_ok(w, "DROP TABLE IF EXISTS rb; CREATE TABLE rb (a int)");
        const char *const cols[] = {"a"};
        struct cell one = {.kind = CELL_INT, .i = 1};
        struct wh_rows rows = {.cells = &one, .n_rows = 1, .n_cols = 1};
        struct calls c = {.closed_after = -1};
        assert_int_equal(wh_begin(w, on_result, tagged(&c, 0)), 0);
        assert_int_equal(wh_copy_begin(w, "rb", cols, 1, on_result, tagged(&c, 1)), 0);
        assert_int_equal(wh_copy_rows(w, &rows, on_result, tagged(&c, 2)), 0);
        assert_int_equal(wh_rollback(w, on_result, tagged(&c, 3)), 0);
        assert_int_equal(wh_copy_begin(w, "rb", cols, 1, on_result, tagged(&c, 4)), 0);
        assert_int_equal(wh_copy_rows(w, &rows, on_result, tagged(&c, 5)), 0);
        assert_int_equal(wh_copy_end(w, on_result, tagged(&c, 6)), 0);
        assert_int_equal(wh_query(w, "SELECT count(*) FROM rb", on_result, tagged(&c, 7)), 0);
        run_until(&c, 8, false);
        for (int i = 0; i < 8; i++) {
                if (c.err[i] != 0)
                        fail_msg("op %d: %d %s", i, c.err[i], c.msg[i]);
        }
        assert_int_equal(c.count[6], 1);
        assert_int_equal(json_integer_value(json_array_get(json_array_get(c.rows[7], 0), 0)), 1);
        close_wh(w, &c);
        calls_free(&c);
}
