/* s3_tool.c - test driver for the S3 client (tests/integration/test_s3.py).
 *
 * Runs one S3 operation (or a batch of them) on a libuv loop through
 * daemon/aws/s3.c and prints one JSON object on stdout: "ok", and on failure
 * "error" (the client's sentence), "code", "request_id", "status"; plus what
 * the command measured, and "max_rss_kb" (peak RSS of this process).
 *
 * Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
 *
 *   s3_tool [--endpoint URL] [--region R] [--attempts N] [--base-ms N] [--cap-ms N]
 *           [--concurrency N] [--size BYTES] [--max-keys N] [--pause]
 *           [--slow-us N] [--cancel-after-bytes N] [--cancel-after-ms N] [--keys]
 *           [--offset N] COMMAND ARGS...
 *   mb BUCKET [REGION] | hb BUCKET | rb BUCKET | head BUCKET KEY
 *   ls BUCKET [PREFIX]                   all pages; "count", "pages" (--keys: "keys")
 *   put BUCKET KEY                       --size bytes of the test pattern, streamed
 *   putmany BUCKET PREFIX COUNT          COUNT objects PREFIX00000.. (--size each)
 *   get BUCKET KEY                       streamed, checked against the pattern
 *                                        (--pause: the consumer refuses every other
 *                                        chunk with S3_PAUSE, resumed from a timer)
 *   getmany BUCKET PREFIX                list, then get and check every object
 *   cp SRCBUCKET SRCKEY DSTBUCKET DSTKEY
 *   cpmany SRCBUCKET PREFIX DSTBUCKET    list, then copy every object
 *   rmprefix BUCKET PREFIX               list, then DeleteObjects (batches of 1000)
 *
 * The test pattern: byte i of object KEY is (KEY + "\n")[i % (len + 1)], so a
 * reader can check every byte in place, with no copy of the object. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "aws/s3.h"

struct opts {
        const char *endpoint, *region;
        unsigned attempts, base_ms, cap_ms, concurrency, max_keys;
        long long size, cancel_after_bytes, cancel_after_ms, offset;
        long slow_us;
        bool pause, keys;
};

static struct opts O = {.region = "us-east-1",
                        .concurrency = 16,
                        .size = 1024,
                        .cancel_after_bytes = -1,
                        .cancel_after_ms = -1};
static uv_loop_t *L;
static struct http_mux *M;
static struct s3_client *C;
static json_t *OUT;
static int TAG;
static bool FAILED;

static char pattern_at(const char *key, uint64_t i)
{
        size_t n = strlen(key);
        uint64_t j = i % (n + 1);
        return j == n ? '\n' : key[j];
}

static void fail_from(const struct s3_result *res)
{
        FAILED = true;
        json_object_set_new(OUT, "ok", json_false());
        json_object_set_new(OUT, "error", json_string(res->msg));
        json_object_set_new(OUT, "code", json_string(res->aws.code));
        json_object_set_new(
            OUT, "request_id",
            json_string(res->aws.request_id[0] ? res->aws.request_id : res->request_id));
        json_object_set_new(OUT, "status", json_integer(res->status));
        json_object_set_new(OUT, "errno", json_integer(-res->err));
        json_object_set_new(OUT, "cancelled", json_boolean(res->err == -ECANCELED));
}

static void note_attempts(const struct s3_result *res)
{
        json_t *a = json_object_get(OUT, "attempts");
        json_object_set_new(OUT, "attempts",
                            json_integer((a ? json_integer_value(a) : 0) + res->attempts));
        if (res->attempts > 1) {
                json_t *r = json_object_get(OUT, "retried");
                json_object_set_new(OUT, "retried",
                                    json_integer((r ? json_integer_value(r) : 0) + 1));
        }
}

/* ---- simple one-shot commands ---- */

static void simple_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        note_attempts(res);
        if (res->err < 0) {
                fail_from(res);
                return;
        }
        json_object_set_new(OUT, "ok", json_true());
        if (res->info.etag[0])
                json_object_set_new(OUT, "etag", json_string(res->info.etag));
        if (res->info.size >= 0)
                json_object_set_new(OUT, "size", json_integer(res->info.size));
        if (res->region[0])
                json_object_set_new(OUT, "region", json_string(res->region));
        json_object_set_new(OUT, "already_existed", json_boolean(res->already_existed));
        json_object_set_new(OUT, "request_id", json_string(res->request_id));
}

/* ---- put (streamed pattern) ---- */

struct putctx {
        char key[1024];
        uint64_t size;
};

static long pattern_read(void *ud, uint64_t off, char *buf, size_t len)
{
        struct putctx *p = ud;
        if (off >= p->size)
                return 0;
        if (len > p->size - off)
                len = p->size - off;
        for (size_t i = 0; i < len; i++)
                buf[i] = pattern_at(p->key, off + i);
        return (long)len;
}

/* ---- listing all pages ---- */

struct lister {
        char *bucket, *prefix;
        unsigned pages;
        size_t n, cap;
        char **keys;
        int64_t *sizes;
        void (*then)(struct lister *l);
};

static void list_next(struct lister *l, const char *token);

static void list_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct lister *l = ud;
        note_attempts(res);
        if (res->err < 0) {
                fail_from(res);
                return;
        }
        struct s3_list_page *p = s3_result_take_page(res);
        l->pages++;
        for (size_t i = 0; i < p->n; i++) {
                if (l->n == l->cap) {
                        l->cap = l->cap ? 2 * l->cap : 1024;
                        l->keys = realloc(l->keys, l->cap * sizeof(*l->keys));
                        l->sizes = realloc(l->sizes, l->cap * sizeof(*l->sizes));
                        if (!l->keys || !l->sizes)
                                abort();
                }
                l->sizes[l->n] = p->objects[i].size;
                l->keys[l->n++] = p->objects[i].key;
                p->objects[i].key = NULL;
        }
        if (p->truncated)
                list_next(l, p->next_token);
        else
                l->then(l);
        s3_list_page_free(p);
}

static void list_next(struct lister *l, const char *token)
{
        struct s3_cb cb = {list_done, l, &TAG};
        int r = s3_list_objects(C, l->bucket, l->prefix, token, O.max_keys, NULL, &cb, NULL);
        if (r < 0) {
                FAILED = true;
                json_object_set_new(OUT, "error", json_string(strerror(-r)));
        }
}

static void list_print(struct lister *l)
{
        json_object_set_new(OUT, "ok", json_true());
        json_object_set_new(OUT, "count", json_integer((json_int_t)l->n));
        json_object_set_new(OUT, "pages", json_integer(l->pages));
        if (O.keys) {
                json_t *a = json_array();
                for (size_t i = 0; i < l->n; i++)
                        json_array_append_new(a, json_string(l->keys[i]));
                json_object_set_new(OUT, "keys", a);
        }
}

static void lister_free(struct lister *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->keys[i]);
        free(l->keys);
        free(l->sizes);
}

/* ---- a pool of concurrent jobs over a list of keys ---- */

struct pool;
struct job {
        struct pool *pool;
        size_t idx;
        uint64_t pos; /* bytes checked */
        bool bad;
        struct putctx put;
        struct s3_req *req;
};

struct pool {
        const char *cmd;
        char *bucket, *dst_bucket;
        char **keys;
        size_t n, next, running, done, failures, mismatches;
        uint64_t bytes;
        void (*start)(struct job *j);
};

static void pool_fill(struct pool *p);

static void job_finish(struct job *j, const struct s3_result *res)
{
        struct pool *p = j->pool;
        note_attempts(res);
        if (res->err < 0) {
                if (!p->failures)
                        fail_from(res);
                p->failures++;
        }
        if (j->bad)
                p->mismatches++;
        p->running--;
        p->done++;
        free(j);
        pool_fill(p);
}

static void job_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct job *j = ud;
        if (j->pool->cmd[0] == 'g' && res->err == 0 && j->pos != (uint64_t)res->info.size &&
            res->info.size >= 0)
                j->bad = true; /* short or long body */
        job_finish(j, res);
}

static int check_body(struct s3_req *req, const char *data, size_t len, void *ud)
{
        struct job *j = ud;
        const char *key = j->pool->keys[j->idx];
        for (size_t i = 0; i < len; i++)
                if (data[i] != pattern_at(key, j->pos + i))
                        j->bad = true;
        j->pos += len;
        j->pool->bytes += len;
        return 0;
}

static void start_get(struct job *j)
{
        struct s3_get_opts g = {.on_body = check_body};
        struct s3_cb cb = {job_done, j, &TAG};
        int r = s3_get_object(C, j->pool->bucket, j->pool->keys[j->idx], &g, &cb, &j->req);
        if (r < 0)
                abort();
}

static void start_put(struct job *j)
{
        snprintf(j->put.key, sizeof(j->put.key), "%s", j->pool->keys[j->idx]);
        j->put.size = (uint64_t)O.size;
        struct s3_put_opts po = {.read = pattern_read, .read_ud = &j->put, .read_len = j->put.size};
        struct s3_cb cb = {job_done, j, &TAG};
        if (s3_put_object(C, j->pool->bucket, j->put.key, &po, &cb, &j->req) < 0)
                abort();
}

static void start_copy(struct job *j)
{
        struct s3_cb cb = {job_done, j, &TAG};
        const char *k = j->pool->keys[j->idx];
        if (s3_copy_object(C, j->pool->bucket, k, j->pool->dst_bucket, k, &cb, &j->req) < 0)
                abort();
}

static void pool_fill(struct pool *p)
{
        while (p->running < O.concurrency && p->next < p->n) {
                struct job *j = calloc(1, sizeof(*j));
                if (!j)
                        abort();
                j->pool = p;
                j->idx = p->next++;
                p->running++;
                p->start(j);
        }
        if (p->done == p->n) {
                if (!p->failures)
                        json_object_set_new(OUT, "ok", json_true());
                json_object_set_new(OUT, "objects", json_integer((json_int_t)p->done));
                json_object_set_new(OUT, "failures", json_integer((json_int_t)p->failures));
                json_object_set_new(OUT, "mismatches", json_integer((json_int_t)p->mismatches));
                json_object_set_new(OUT, "bytes", json_integer((json_int_t)p->bytes));
                if (p->mismatches)
                        FAILED = true;
        }
}

static struct pool POOL;
static struct lister LISTER;

static void pool_from_list(struct lister *l)
{
        POOL.keys = l->keys;
        POOL.n = l->n;
        json_object_set_new(OUT, "pages", json_integer(l->pages));
        pool_fill(&POOL);
}

static void rm_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        note_attempts(res);
        if (res->err < 0) {
                fail_from(res);
                return;
        }
        json_object_set_new(OUT, "ok", json_true());
        json_object_set_new(OUT, "deleted", json_integer((json_int_t)res->deleted));
}

static void rm_from_list(struct lister *l)
{
        if (l->n == 0) {
                json_object_set_new(OUT, "ok", json_true());
                json_object_set_new(OUT, "deleted", json_integer(0));
                return;
        }
        struct s3_cb cb = {rm_done, NULL, &TAG};
        if (s3_delete_objects(C, l->bucket, (const char *const *)l->keys, l->n, &cb, NULL) < 0)
                abort();
}

/* ---- single streamed get, optionally by a consumer that pauses ---- */

struct getctx {
        const char *key;
        uint64_t pos;
        bool bad;
        struct s3_req *req;
        uv_timer_t cancel_timer;
        uv_timer_t resume_timer;
        bool refused; /* --pause: the pending chunk was refused once */
        unsigned pauses;
};
static struct getctx G;

static void on_resume_timer(uv_timer_t *t)
{
        s3_req_resume(G.req);
}

static int get_body(struct s3_req *req, const char *data, size_t len, void *ud)
{
        if (O.pause && !G.refused) {
                /* not consumed: the same bytes come again after the resume */
                G.refused = true;
                G.pauses++;
                uv_timer_start(&G.resume_timer, on_resume_timer, 1, 0);
                return S3_PAUSE;
        }
        G.refused = false;
        for (size_t i = 0; i < len; i++)
                if (data[i] != pattern_at(G.key, G.pos + i))
                        G.bad = true;
        G.pos += len;
        if (O.slow_us > 0)
                usleep((useconds_t)O.slow_us);
        if (O.cancel_after_bytes >= 0 && G.pos >= (uint64_t)O.cancel_after_bytes)
                s3_req_cancel(req); /* from inside a callback: completes shortly after */
        return 0;
}

static void get_report(void)
{
        json_object_set_new(OUT, "bytes", json_integer((json_int_t)G.pos));
        json_object_set_new(OUT, "pattern_ok", json_boolean(!G.bad));
        if (G.bad)
                FAILED = true;
}

static void get_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        uv_close((uv_handle_t *)&G.cancel_timer, NULL);
        uv_close((uv_handle_t *)&G.resume_timer, NULL);
        json_object_set_new(OUT, "pauses", json_integer(G.pauses));
        simple_done(req, res, ud);
        get_report();
}

static void on_cancel_timer(uv_timer_t *t)
{
        unsigned n = s3_cancel_tag(C, &TAG);
        json_object_set_new(OUT, "cancelled_requests", json_integer(n));
}

/* ---- main ---- */

static void mux_closed(void *ud)
{
}

static int usage(void)
{
        fprintf(stderr, "usage: s3_tool [options] COMMAND ARGS... (see the source)\n");
        return 2;
}

static long long num(const char *s)
{
        long long v;
        if (util_parse_ll(s, &v) < 0 || v < 0) {
                fprintf(stderr, "s3_tool: bad number '%s'\n", s);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv)
{
        static const struct option lo[] = {
            {"endpoint", required_argument, NULL, 'e'},
            {"region", required_argument, NULL, 'r'},
            {"attempts", required_argument, NULL, 'a'},
            {"base-ms", required_argument, NULL, 'b'},
            {"cap-ms", required_argument, NULL, 'c'},
            {"concurrency", required_argument, NULL, 'j'},
            {"size", required_argument, NULL, 's'},
            {"max-keys", required_argument, NULL, 'm'},
            {"pause", no_argument, NULL, 'B'},
            {"keys", no_argument, NULL, 'K'},
            {"slow-us", required_argument, NULL, 'u'},
            {"cancel-after-bytes", required_argument, NULL, 'x'},
            {"cancel-after-ms", required_argument, NULL, 'y'},
            {"offset", required_argument, NULL, 'o'},
            {0},
        };
        int ch;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (ch) {
                case 'e':
                        O.endpoint = optarg;
                        break;
                case 'r':
                        O.region = optarg;
                        break;
                case 'a':
                        O.attempts = (unsigned)num(optarg);
                        break;
                case 'b':
                        O.base_ms = (unsigned)num(optarg);
                        break;
                case 'c':
                        O.cap_ms = (unsigned)num(optarg);
                        break;
                case 'j':
                        O.concurrency = (unsigned)num(optarg);
                        break;
                case 's':
                        O.size = num(optarg);
                        break;
                case 'm':
                        O.max_keys = (unsigned)num(optarg);
                        break;
                case 'B':
                        O.pause = true;
                        break;
                case 'K':
                        O.keys = true;
                        break;
                case 'u':
                        O.slow_us = (long)num(optarg);
                        break;
                case 'x':
                        O.cancel_after_bytes = num(optarg);
                        break;
                case 'y':
                        O.cancel_after_ms = num(optarg);
                        break;
                case 'o':
                        O.offset = num(optarg);
                        break;
                default:
                        return usage();
                }
        }
        char **a = argv + optind;
        int n = argc - optind;
        if (n < 2)
                return usage();
        if (O.concurrency == 0)
                O.concurrency = 1;

        struct sigv4_creds creds = {
            .access_key_id = getenv("AWS_ACCESS_KEY_ID"),
            .secret_access_key = getenv("AWS_SECRET_ACCESS_KEY"),
            .session_token = getenv("AWS_SESSION_TOKEN"),
        };
        if (!creds.access_key_id || !creds.secret_access_key) {
                fprintf(stderr, "s3_tool: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n");
                return 2;
        }
        L = uv_default_loop();
        if (http_mux_new(L, NULL, &M) < 0)
                return 1;
        struct s3_client_opts co = {
            .region = O.region,
            .endpoint = O.endpoint,
            .retry = {O.attempts, O.base_ms, O.cap_ms},
        };
        if (s3_client_new(M, &co, &creds, &C) < 0)
                return 1;
        OUT = json_object();
        json_object_set_new(OUT, "ok", json_false());

        const char *cmd = a[0];
        struct s3_cb cb = {simple_done, NULL, &TAG};
        int r = 0;
        uint64_t t0 = uv_hrtime();
        if (strcmp(cmd, "mb") == 0)
                r = s3_create_bucket(C, a[1], n > 2 ? a[2] : NULL, &cb, NULL);
        else if (strcmp(cmd, "hb") == 0)
                r = s3_head_bucket(C, a[1], &cb, NULL);
        else if (strcmp(cmd, "rb") == 0)
                r = s3_delete_bucket(C, a[1], &cb, NULL);
        else if (strcmp(cmd, "head") == 0 && n >= 3)
                r = s3_head_object(C, a[1], a[2], &cb, NULL);
        else if (strcmp(cmd, "cp") == 0 && n >= 5)
                r = s3_copy_object(C, a[1], a[2], a[3], a[4], &cb, NULL);
        else if (strcmp(cmd, "put") == 0 && n >= 3) {
                static struct putctx p;
                snprintf(p.key, sizeof(p.key), "%s", a[2]);
                p.size = (uint64_t)O.size;
                struct s3_put_opts po = {.read = pattern_read, .read_ud = &p, .read_len = p.size};
                r = s3_put_object(C, a[1], a[2], &po, &cb, NULL);
        } else if (strcmp(cmd, "ls") == 0 || strcmp(cmd, "getmany") == 0 ||
                   strcmp(cmd, "cpmany") == 0 || strcmp(cmd, "rmprefix") == 0) {
                LISTER.bucket = a[1];
                LISTER.prefix = n > 2 ? a[2] : "";
                POOL.cmd = cmd;
                POOL.bucket = a[1];
                if (cmd[0] == 'l')
                        LISTER.then = list_print;
                else if (cmd[0] == 'r')
                        LISTER.then = rm_from_list;
                else {
                        LISTER.then = pool_from_list;
                        POOL.start = cmd[0] == 'g' ? start_get : start_copy;
                        if (cmd[0] == 'c') {
                                if (n < 4)
                                        return usage();
                                POOL.dst_bucket = a[3];
                        }
                }
                list_next(&LISTER, NULL);
        } else if (strcmp(cmd, "putmany") == 0 && n >= 4) {
                POOL.cmd = cmd;
                POOL.bucket = a[1];
                POOL.n = (size_t)num(a[3]);
                POOL.keys = calloc(POOL.n + 1, sizeof(char *));
                for (size_t i = 0; i < POOL.n; i++) {
                        char k[1100];
                        snprintf(k, sizeof(k), "%s%05zu", a[2], i);
                        POOL.keys[i] = strdup(k);
                }
                LISTER.keys = POOL.keys;
                LISTER.n = POOL.n;
                POOL.start = start_put;
                pool_fill(&POOL);
        } else if (strcmp(cmd, "get") == 0 && n >= 3) {
                G.key = a[2];
                G.pos = (uint64_t)O.offset;
                cb.done = get_done;
                uv_timer_init(L, &G.cancel_timer);
                uv_timer_init(L, &G.resume_timer);
                if (O.cancel_after_ms >= 0)
                        uv_timer_start(&G.cancel_timer, on_cancel_timer,
                                       (uint64_t)O.cancel_after_ms, 0);
                struct s3_get_opts g = {.offset = (uint64_t)O.offset, .on_body = get_body};
                r = s3_get_object(C, a[1], a[2], &g, &cb, &G.req);
        } else
                return usage();
        if (r < 0) {
                fprintf(stderr, "s3_tool: %s: %s\n", cmd, strerror(-r));
                return 1;
        }
        uv_run(L, UV_RUN_DEFAULT);
        json_object_set_new(OUT, "seconds", json_real((double)(uv_hrtime() - t0) / 1e9));

        s3_client_free(C);
        http_mux_close(M, mux_closed, NULL);
        uv_run(L, UV_RUN_DEFAULT);
        uv_loop_close(L);
        if (LISTER.keys) {
                lister_free(&LISTER);
        }

        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        json_object_set_new(OUT, "max_rss_kb", json_integer(ru.ru_maxrss));
        json_object_set_new(OUT, "cpu_seconds",
                            json_real((double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                                      (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6));
        char *s = json_dumps(OUT, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        bool ok = json_is_true(json_object_get(OUT, "ok")) && !FAILED;
        json_decref(OUT);
        return ok ? 0 : 1;
}
