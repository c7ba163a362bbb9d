/* http.h - the asynchronous HTTP engine: libcurl's multi interface driven by
 * the libuv loop (uv_poll per socket; a uv_timer and a uv_idle per multi
 * handle for curl's timeouts).
 *
 * One `struct http_mux` per loop; it owns the multi handle and therefore the
 * connection cache (keep-alive connections are reused between transfers) and
 * the DNS cache.  A `struct http_xfer` is owned by the caller: fill in the
 * request fields, http_submit() it, and its `done` callback runs exactly once
 * on the loop thread, after which the transfer may be freed or submitted
 * again (that is how the AWS layer retries).  http_cancel() ends one
 * transfer, http_cancel_tag() every transfer carrying a tag (a job).
 *
 * TLS peer and host verification are always on; only http and https are
 * allowed; redirects are never followed (S3's 301/307 are handled by the
 * caller, which knows about regions).
 *
 * Proxies: curl's variables (http_proxy, https_proxy, all_proxy, no_proxy and
 * their upper-case forms) are honoured when one of them was set when the
 * engine was created; otherwise no proxy is looked up at all.
 *
 * The retry policy (capped exponential backoff with full jitter, Retry-After,
 * which failures are transient) is a set of pure functions at the end; the
 * AWS layer applies it, since only it can re-sign a request.
 *
 * Loop thread only, except where said otherwise. */
#pragma once
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

struct http_mux;
struct http_xfer;

/* Returned by the body callbacks to hold the transfer until http_resume(). */
#define HTTP_PAUSE 1

/* Response body consumer.  Return 0 when the bytes were consumed,
 * HTTP_PAUSE when they were NOT consumed and the transfer must wait (the same
 * bytes are delivered again after http_resume()), or a negative errno to
 * abort (the transfer completes with that result). */
typedef int (*http_body_fn)(struct http_xfer *x, const char *data, size_t len);
/* Request body producer: fill at most `len` bytes, return the count (0 at the
 * end), HTTP_READ_PAUSE to wait for http_resume(), or a negative errno. */
#define HTTP_READ_PAUSE (-1000000)
typedef long (*http_read_fn)(struct http_xfer *x, char *buf, size_t len);
typedef void (*http_done_fn)(struct http_xfer *x);

struct http_xfer {
        /* ---- request: set by the caller before http_submit() ---- */
        const char *method;         /* "GET", "PUT", "HEAD", "POST", "DELETE" */
        const char *url;            /* caller-owned until done */
        struct curl_slist *headers; /* caller-owned until done */
        const void *body;           /* in-memory request body, or NULL */
        size_t body_len;
        http_read_fn read_body; /* streamed request body (instead of `body`) */
        int64_t read_len;       /* its length, -1 when unknown (chunked) */
        http_body_fn on_body;   /* stream 2xx response bodies here; NULL: buffer */
        size_t max_body;        /* limit for the buffered body (0: 16 MiB) */
        long timeout_ms;        /* whole transfer; 0: none (low-speed limit only) */
        const void *tag;        /* for http_cancel_tag(), e.g. the job */
        http_done_fn done;
        void *userdata;

        /* ---- result: valid in done() ---- */
        int result; /* 0 (any HTTP status), or -errno: -ECANCELED,
                       -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET,
                       -EHOSTUNREACH, -E2BIG, -EIO, -ENOMEM, or
                       what a body callback returned */
        CURLcode curl_code;
        long status;           /* HTTP status, 0 when none arrived */
        struct buf resp;       /* buffered body (error bodies always land here) */
        struct buf resp_hdrs;  /* the last response's headers, "name\0value\0"... */
        size_t n_resp_headers; /* (read them with http_xfer_header) */
        uint64_t bytes_in;     /* body bytes delivered this attempt */
        long new_connections;  /* connections this transfer opened (0 = reused) */
        char errbuf[CURL_ERROR_SIZE];

        /* ---- private ---- */
        struct http_mux *mux;
        CURL *easy;
        struct http_xfer *prev, *next;
        size_t body_off;
        bool active, cancel_pending, resume_pending, paused, streaming;
        int cb_err;
};

struct http_mux_opts {
        long connect_timeout_ms;    /* default 10 s */
        long low_speed_bytes;       /* abort below this many bytes/s ... (default 1) */
        long low_speed_secs;        /* ... for this long (default 30) */
        long max_host_connections;  /* default 64 */
        long max_total_connections; /* default 256 */
        const char *ca_file;        /* extra CA bundle (tests); NULL: system store */
};

/* 0 or -errno.  `opts` may be NULL. */
int http_mux_new(uv_loop_t *loop, const struct http_mux_opts *opts, struct http_mux **ret);
/* Cancels every transfer (each done() gets -ECANCELED), then closes the
 * handles; `closed` runs (from the loop) once the memory is released. */
void http_mux_close(struct http_mux *m, void (*closed)(void *ud), void *ud);
uv_loop_t *http_mux_loop(struct http_mux *m);

/* Starts `x`.  0, or -errno (then done() is not called). */
int http_submit(struct http_mux *m, struct http_xfer *x);
/* Ends `x` with -ECANCELED if it is still running; done() runs before this
 * returns, unless called from inside one of x's own callbacks, in which case
 * it runs from the loop shortly after.  A no-op on a finished transfer. */
void http_cancel(struct http_xfer *x);
/* Cancels every running transfer of `m` whose tag is `tag`; returns how many. */
unsigned http_cancel_tag(struct http_mux *m, const void *tag);
/* Continues a transfer paused by HTTP_PAUSE / HTTP_READ_PAUSE. */
void http_resume(struct http_xfer *x);
/* Releases the result buffers so `x` can be submitted again or freed. */
void http_xfer_reset(struct http_xfer *x);
/* Value of the last response's header `name` (case-insensitive), or NULL. */
const char *http_xfer_header(const struct http_xfer *x, const char *name);

/* ---- retry policy (pure) ---- */

struct http_retry_policy {
        unsigned max_attempts; /* total tries including the first (default 6) */
        unsigned base_ms;      /* first backoff ceiling (default 100) */
        unsigned cap_ms;       /* ceiling of any backoff (default 20000) */
};
#define HTTP_RETRY_DEFAULT                                                                         \
        {                                                                                          \
                6, 100, 20000                                                                      \
        }

/* Delay before retry number `retry` (1 for the first retry): full jitter,
 * uniform in [0, min(cap, base * 2^(retry-1))] using `rnd`; a server's
 * Retry-After (`retry_after_ms` >= 0) is a floor, itself capped at 10 * cap. */
uint64_t http_backoff_ms(const struct http_retry_policy *p, unsigned retry, uint64_t rnd,
                         int64_t retry_after_ms);
/* Retry-After header value: delta-seconds or an HTTP-date; milliseconds
 * from `now_ms` (Unix ms), or -1 when unparsable. */
int64_t http_parse_retry_after(const char *value, int64_t now_ms);
/* Transient transport failure (transfer result), worth another attempt. */
bool http_result_retryable(int result);
/* Transient server answer: 5xx, 429, or a throttling/transient AWS error code
 * (SlowDown, Throttling, RequestLimitExceeded, ...).  `code` may be NULL. */
bool http_status_retryable(long status, const char *code);
/* A short description of a transfer result, e.g. "connection refused". */
const char *http_result_str(int result);
