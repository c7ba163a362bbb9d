/* testload.h - running the COPY emulator and the SQLite warehouse in a unit
 * test as if they blocked: each helper starts one asynchronous operation on
 * the test's uv loop and runs the loop until its callback came.  One load at
 * a time; testload_cancel() cancels it from inside a callback.  Header-only:
 * cmocka tests are single files (include cmocka.h first). */
#pragma once
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "load/load.h"
#include "util.h"
#include "warehouse/wh.h"

static uv_loop_t testload_uv;
static bool testload_uv_ready;

static inline uv_loop_t *testload_loop(void)
{
        if (!testload_uv_ready) {
                assert_int_equal(uv_loop_init(&testload_uv), 0);
                testload_uv_ready = true;
        }
        return &testload_uv;
}

/* Runs the loop until *done; a loop with nothing left to do before then is
 * a callback that never came.  Every callback that sets a done flag calls
 * testload_wake: a callback may come before UV_RUN_ONCE polls (a driver
 * may complete from within an operation's start, which runs from a zero
 * timer, e.g. a COMMIT whose answer is in by the time libpq looks), and
 * without uv_stop that uv_run would then block in epoll_wait for events that
 * never come: the flag is set, but nobody looks at it. */
static inline void testload_run_until(const bool *done)
{
        while (!*done)
                if (uv_run(testload_loop(), UV_RUN_ONCE) == 0 && !*done)
                        fail_msg("the loop ran dry before the callback came");
}

/* Closes the loop (end of main), so that valgrind sees nothing of it. */
static inline void testload_loop_close(void)
{
        if (testload_uv_ready) {
                uv_run(&testload_uv, UV_RUN_DEFAULT);
                assert_int_equal(uv_loop_close(&testload_uv), 0);
                testload_uv_ready = false;
        }
}

static inline void testload_wake(void)
{
        uv_stop(testload_loop());
}

struct testload_wait {
        bool done;
        int err;
        char msg[1024];
        json_t *rows;
};

static inline void testload_on_wh(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct testload_wait *t = ud;
        t->err = res->err;
        util_setf(t->msg, sizeof(t->msg), "%s", res->msg);
        t->rows = res->rows ? json_incref(res->rows) : NULL;
        t->done = true;
        testload_wake();
}

/* An operation's outcome, its message in err (may be NULL). */
static inline int testload_wait_wh(int r, struct testload_wait *t, char *err, size_t errlen)
{
        if (r < 0) {
                if (err)
                        snprintf(err, errlen, "not queued: %s", strerror(-r));
                return r;
        }
        testload_run_until(&t->done);
        if (err)
                util_setf(err, errlen, "%s", t->msg);
        return t->err;
}

static inline int testload_wh_open(const char *uri, struct wh **ret, char *err, size_t errlen)
{
        struct wh_params p = {.uri = uri, .loop = testload_loop()};
        return wh_open(&p, ret, err, errlen);
}

static inline void testload_on_closed(void *ud)
{
        *(bool *)ud = true;
        testload_wake();
}

static inline void testload_wh_close(struct wh *w)
{
        bool closed = false;
        wh_close(w, testload_on_closed, &closed);
        testload_run_until(&closed);
}

static inline int testload_exec(struct wh *w, const char *sql, char *err, size_t errlen)
{
        struct testload_wait t = {0};
        int r = testload_wait_wh(wh_exec(w, sql, testload_on_wh, &t), &t, err, errlen);
        json_decref(t.rows);
        return r;
}

/* *rows (the caller's: json_decref) is set on success. */
static inline int testload_query(struct wh *w, const char *sql, json_t **rows, char *err,
                                 size_t errlen)
{
        struct testload_wait t = {0};
        int r = testload_wait_wh(wh_query(w, sql, testload_on_wh, &t), &t, err, errlen);
        if (r == 0)
                *rows = t.rows;
        else
                json_decref(t.rows);
        return r;
}

static inline int testload_begin(struct wh *w, char *err, size_t errlen)
{
        struct testload_wait t = {0};
        return testload_wait_wh(wh_begin(w, testload_on_wh, &t), &t, err, errlen);
}

static inline int testload_commit(struct wh *w, char *err, size_t errlen)
{
        struct testload_wait t = {0};
        return testload_wait_wh(wh_commit(w, testload_on_wh, &t), &t, err, errlen);
}

/* ---- the load ------------------------------------------------------------ */

static struct {
        struct load *load; /* running, else NULL */
        bool done;
        int result;
        char msg[1024];
} testload_now;

static inline void testload_on_done(void *userdata, int result, const char *msg)
{
        (void)userdata;
        testload_now.load = NULL;
        testload_now.done = true;
        testload_now.result = result;
        util_setf(testload_now.msg, sizeof(testload_now.msg), "%s", msg);
        testload_wake();
}

/* Cancels the running load (from a callback: on_error, a timer). */
static inline void testload_cancel(void)
{
        if (testload_now.load)
                load_cancel(testload_now.load);
}

/* Runs one COPY on the test's loop and returns its result, its message in
 * err.  cancel: load_cancel right after load_start. */
static inline int testload_run(struct load_request *req, bool cancel, char *err, size_t errlen)
{
        req->loop = testload_loop();
        testload_now.done = false;
        testload_now.msg[0] = '\0';
        int r = load_start(req, testload_on_done, &testload_now.load);
        if (r < 0) {
                snprintf(err, errlen, "load_start: %s", strerror(-r));
                return r;
        }
        if (cancel)
                load_cancel(testload_now.load);
        testload_run_until(&testload_now.done);
        util_setf(err, errlen, "%s", testload_now.msg);
        return testload_now.result;
}
