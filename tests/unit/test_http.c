/* test_http.c - the pure parts of daemon/aws/http.c: backoff with full
 * jitter, Retry-After, which failures are worth another try; and a mux that
 * starts and closes cleanly on a loop, cancelling a transfer that cannot
 * connect. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/http.h"

static void test_backoff_bounds(void **state)
{
        struct http_retry_policy p = {6, 100, 2000};
        /* ceilings 100, 200, 400, 800, 1600, 2000, 2000 ... */
        const uint64_t ceil[] = {100, 200, 400, 800, 1600, 2000, 2000, 2000};
        for (unsigned retry = 1; retry <= 8; retry++) {
                uint64_t max = 0;
                for (uint64_t rnd = 0; rnd < 5000; rnd += 7) {
                        uint64_t d = http_backoff_ms(&p, retry, rnd * 2654435761u, -1);
                        assert_true(d <= ceil[retry - 1]);
                        if (d > max)
                                max = d;
                }
                assert_true(max >= ceil[retry - 1] * 9 / 10); /* jitter spans the range */
        }
        assert_int_equal(http_backoff_ms(&p, 1, 0, -1), 0); /* full jitter starts at 0 */
        /* huge retry counts do not overflow */
        assert_true(http_backoff_ms(&p, 1000, UINT64_MAX, -1) <= 2000);
}

static void test_backoff_retry_after(void **state)
{
        struct http_retry_policy p = {6, 100, 2000};
        assert_int_equal(http_backoff_ms(&p, 1, 0, 3000), 3000);      /* a floor */
        assert_int_equal(http_backoff_ms(&p, 1, 0, 10000000), 20000); /* capped at 10 x cap */
        assert_true(http_backoff_ms(&p, 5, 1599, 0) == 1599);
        struct http_retry_policy z = {0};
        assert_true(http_backoff_ms(&z, 1, 99, -1) <= 100); /* defaults */
}

static void test_retry_after_parse(void **state)
{
        int64_t now = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
        assert_int_equal(http_parse_retry_after("120", now), 120000);
        assert_int_equal(http_parse_retry_after("0", now), 0);
        assert_int_equal(http_parse_retry_after(" 5", now), 5000);
        assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000);
        assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), 0);
        assert_int_equal(http_parse_retry_after("-3", now), -1);
        assert_int_equal(http_parse_retry_after("soon", now), -1);
        assert_int_equal(http_parse_retry_after("99999999999999999999", now), -1);
        assert_int_equal(http_parse_retry_after("Sun, 06 Xyz 1994 08:49:47 GMT", now), -1);
        assert_int_equal(http_parse_retry_after(NULL, now), -1);
}

static void test_classification(void **state)
{
        assert_true(http_status_retryable(500, NULL));
        assert_true(http_status_retryable(503, "SlowDown"));
        assert_true(http_status_retryable(429, NULL));
        assert_true(http_status_retryable(400, "Throttling"));
        assert_true(http_status_retryable(400, "RequestLimitExceeded"));
        assert_true(http_status_retryable(400, "ThrottlingException"));
        assert_true(http_status_retryable(400, "RequestTimeout"));
        assert_false(http_status_retryable(403, "SignatureDoesNotMatch"));
        assert_false(http_status_retryable(404, "NoSuchKey"));
        assert_false(http_status_retryable(400, NULL));
        assert_false(http_status_retryable(409, "BucketAlreadyExists"));
        assert_true(http_result_retryable(-ECONNRESET));
        assert_true(http_result_retryable(-ETIMEDOUT));
        assert_true(http_result_retryable(-ECONNREFUSED));
        assert_false(http_result_retryable(-ECANCELED));
        assert_false(http_result_retryable(-EPROTO)); /* TLS verification failures are final */
        assert_false(http_result_retryable(-E2BIG));
        assert_string_equal(http_result_str(-ECONNREFUSED), "connection refused");
}

static int done_calls;
static void on_done(struct http_xfer *x)
{
        done_calls++;
        *(int *)x->userdata = x->result;
}
static void closed_cb(void *ud)
{
        *(bool *)ud = true;
}

/* A transfer to a port nobody listens on, cancelled at once: done() exactly
 * once with -ECANCELED; then one that fails by itself with connection refused. */
static void test_mux_cancel_and_refused(void **state)
{
        uv_loop_t loop;
        struct http_mux *m;
        int res = 1;
        bool closed = false;
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_int_equal(http_mux_new(&loop, NULL, &m), 0);

        struct http_xfer x = {
            .method = "GET", .url = "http://127.0.0.1:9/", .done = on_done, .userdata = &res};
        assert_int_equal(http_submit(m, &x), 0);
        http_cancel(&x);
        assert_int_equal(done_calls, 1);
        assert_int_equal(res, -ECANCELED);
        http_cancel(&x); /* a no-op now */
        assert_int_equal(done_calls, 1);

        assert_int_equal(http_submit(m, &x), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(done_calls, 2);
        assert_int_equal(res, -ECONNREFUSED);
        http_xfer_reset(&x);

        struct http_xfer y = {
            .method = "GET", .url = "ftp://127.0.0.1/", .done = on_done, .userdata = &res};
        assert_int_equal(http_submit(m, &y), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(res, -EINVAL); /* only http and https */
        http_xfer_reset(&y);

        /* closing cancels what still runs */
        assert_int_equal(http_submit(m, &x), 0);
        http_mux_close(m, closed_cb, &closed);
        assert_int_equal(res, -ECANCELED);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_true(closed);
        http_xfer_reset(&x);
        assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_backoff_bounds),
            cmocka_unit_test(test_backoff_retry_after),
            cmocka_unit_test(test_retry_after_parse),
            cmocka_unit_test(test_classification),
            cmocka_unit_test(test_mux_cancel_and_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
