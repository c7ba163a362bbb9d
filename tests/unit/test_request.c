/* test_request.c - daemon/aws/request.c against a small HTTP server on the
 * same loop that answers each request with the next canned reply: retries
 * of 5xx honouring Retry-After with every try signed anew, giving up after
 * the policy's tries, a refusal turned into the sentence with the request
 * id, a 2xx handed to the service, redirects that do not count as tries,
 * and cancelling by tag a request that waits in backoff. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "aws/request.h"

/* ---- the server: one connection per request, reply, close ---- */

struct server {
        uv_tcp_t tcp;
        int port;
        const char *const *replies; /* one per request; the last repeats */
        size_t nreplies, served;
        unsigned signed_requests; /* requests that carried an Authorization header */
        char dates[8][32];        /* X-Amz-Date of each request */
        char keys[8][32];         /* the access key id each request was signed with */
};

struct conn {
        uv_tcp_t tcp;
        struct server *s;
        char in[8192];
        size_t len;
        uv_write_t w;
        char *out;
};

static void conn_closed(uv_handle_t *h)
{
        struct conn *c = h->data;
        free(c->out);
        free(c);
}

static void conn_written(uv_write_t *w, int status)
{
        (void)status;
        struct conn *c = w->data;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
        (void)hint;
        struct conn *c = h->data;
        *b = uv_buf_init(c->in + c->len, (unsigned)(sizeof(c->in) - 1 - c->len));
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
        (void)b;
        struct conn *c = st->data;
        struct server *s = c->s;
        if (n < 0) {
                uv_close((uv_handle_t *)&c->tcp, conn_closed);
                return;
        }
        c->len += (size_t)n;
        c->in[c->len] = '\0';
        if (!strstr(c->in, "\r\n\r\n"))
                return;
        uv_read_stop(st);
        const char *d = strstr(c->in, "X-Amz-Date: ");
        if (strstr(c->in, "Authorization: AWS4-HMAC-SHA256 ") && d) {
                const char *k = strstr(c->in, "Credential=");
                if (s->signed_requests < 8) {
                        snprintf(s->dates[s->signed_requests], sizeof(s->dates[0]), "%.16s",
                                 d + 12);
                        if (k)
                                snprintf(s->keys[s->signed_requests], sizeof(s->keys[0]), "%.*s",
                                         (int)strcspn(k + 11, "/"), k + 11);
                }
                s->signed_requests++;
        }
        size_t i = s->served < s->nreplies ? s->served : s->nreplies - 1;
        s->served++;
        c->out = strdup(s->replies[i]);
        uv_buf_t out = uv_buf_init(c->out, (unsigned)strlen(c->out));
        c->w.data = c;
        uv_write(&c->w, st, &out, 1, conn_written);
}

static void on_connection(uv_stream_t *l, int status)
{
        assert_int_equal(status, 0);
        struct conn *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        c->s = l->data;
        uv_tcp_init(l->loop, &c->tcp);
        c->tcp.data = c;
        assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

static void server_start(uv_loop_t *loop, struct server *s, const char *const *replies, size_t n)
{
        struct sockaddr_in a;
        struct sockaddr_storage got;
        int len = sizeof(got);
        memset(s, 0, sizeof(*s));
        s->replies = replies;
        s->nreplies = n;
        uv_tcp_init(loop, &s->tcp);
        s->tcp.data = s;
        uv_ip4_addr("127.0.0.1", 0, &a);
        assert_int_equal(uv_tcp_bind(&s->tcp, (const struct sockaddr *)&a, 0), 0);
        assert_int_equal(uv_listen((uv_stream_t *)&s->tcp, 16, on_connection), 0);
        uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&got, &len);
        s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* ---- a test service on the layer ---- */

struct test_req {
        struct aws_request rq;
        char host[64], base[64];
        int err;
        int done_calls;
        unsigned attempts;
        long status;
        char msg[1024], request_id[128];
        struct aws_error aws;
        bool redirected;
        bool released;
};

static struct test_req *req_of(struct aws_request *rq)
{
        return (struct test_req *)((char *)rq - offsetof(struct test_req, rq));
}

static int t_prepare(struct aws_request *rq, struct aws_try *t)
{
        struct test_req *r = req_of(rq);
        t->sign = (struct sigv4_request){
            .method = "GET",
            .host = r->host,
            .path = "/thing",
            .payload_sha256_hex = SIGV4_EMPTY_SHA256,
            .region = "us-east-1",
            .service = "s3",
        };
        t->base = r->base;
        rq->x.timeout_ms = 5000;
        return 0;
}

static bool t_on_reply(struct aws_request *rq)
{
        aws_request_complete(rq, 0);
        return true;
}

/* A 301 is followed once, without counting it as a try. */
static bool t_on_refusal(struct aws_request *rq)
{
        struct test_req *r = req_of(rq);
        if (rq->status == 301 && !r->redirected) {
                r->redirected = true;
                aws_request_redo(rq);
                return true;
        }
        return false;
}

static void t_done(struct aws_request *rq, int err)
{
        struct test_req *r = req_of(rq);
        r->err = err;
        r->done_calls++;
        aws_request_outcome(rq, &r->status, &r->attempts, &r->aws, r->msg, r->request_id);
        uv_stop(rq->c->loop); /* the server keeps the loop alive */
}

static void t_release(struct aws_request *rq)
{
        req_of(rq)->released = true; /* the test owns the memory */
}

static const struct aws_request_ops t_ops = {
    .request_id_header = "x-amz-request-id",
    .prepare = t_prepare,
    .on_reply = t_on_reply,
    .on_refusal = t_on_refusal,
    .done = t_done,
    .release = t_release,
};

struct fixture {
        uv_loop_t loop;
        struct http_mux *mux;
        struct aws_request_client c;
        struct server srv;
};

/* Three tries, backoffs of a few ms, unless a test says otherwise. */
static struct http_retry_policy retry = {3, 1, 5};

static void setup(struct fixture *f, const char *const *replies, size_t n)
{
        char id[] = "AKIDEXAMPLE", secret[] = "wJalrXUtnFEMI/K7MDENG";
        const struct sigv4_creds creds = {id, secret, NULL, 0};
        memset(f, 0, sizeof(*f));
        uv_loop_init(&f->loop);
        assert_int_equal(http_mux_new(&f->loop, NULL, &f->mux), 0);
        assert_int_equal(aws_request_client_init(&f->c, f->mux, &t_ops, &retry, &creds), 0);
        server_start(&f->loop, &f->srv, replies, n);
}

static void req_start(struct fixture *f, struct test_req *r, const void *tag)
{
        memset(r, 0, sizeof(*r));
        snprintf(r->host, sizeof(r->host), "127.0.0.1:%d", f->srv.port);
        snprintf(r->base, sizeof(r->base), "http://127.0.0.1:%d", f->srv.port);
        assert_int_equal(aws_request_init(&r->rq, &f->c, tag, "TEST Get thing"), 0);
        aws_request_start(&r->rq);
        assert_int_equal(r->done_calls, 0); /* never inside the call */
}

static void mux_closed(void *ud)
{
        *(bool *)ud = true;
}

static void teardown(struct fixture *f)
{
        bool closed = false;
        aws_request_client_clear(&f->c);
        http_mux_close(f->mux, mux_closed, &closed);
        uv_close((uv_handle_t *)&f->srv.tcp, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_true(closed);
        assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Sets up, runs one request to its end, and checks done() ran once. */
static void run_one(struct fixture *f, struct test_req *r, const char *const *replies, size_t n)
{
        setup(f, replies, n);
        req_start(f, r, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_int_equal(r->done_calls, 1);
}

#define OK_REPLY                                                                                   \
        "HTTP/1.1 200 OK\r\nx-amz-request-id: OK1\r\nConnection: close\r\nContent-Length: "        \
        "0\r\n\r\n"
#define BUSY_REPLY                                                                                 \
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nConnection: "                       \
        "close\r\nContent-Length: 0\r\n\r\n"

static void test_retry_then_success(void **state)
{
        (void)state;
        static const char *const replies[] = {BUSY_REPLY, BUSY_REPLY, OK_REPLY};
        struct fixture f;
        struct test_req r;
        run_one(&f, &r, replies, 3);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.attempts, 3);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.request_id, "OK1");
        assert_true(r.released);
        assert_int_equal(f.srv.served, 3);
        assert_int_equal(f.srv.signed_requests, 3); /* every try signed */
        teardown(&f);
}

static void test_give_up(void **state)
{
        (void)state;
        static const char *const replies[] = {
            "HTTP/1.1 500 Internal Server Error\r\nx-amz-request-id: R500\r\n"
            "Connection: close\r\nContent-Length: 0\r\n\r\n"};
        struct fixture f;
        struct test_req r;
        run_one(&f, &r, replies, 1);
        assert_int_equal(r.err, -EREMOTEIO);
        assert_int_equal(r.attempts, 3);
        assert_int_equal(f.srv.served, 3);
        assert_string_equal(r.aws.code, "Http500");
        assert_string_equal(r.msg, "TEST Get thing: 500 Http500: no message (request id R500), "
                                   "giving up after 3 attempts");
        teardown(&f);
}

static void test_refusal_sentence(void **state)
{
        (void)state;
        static const char body[] = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"
                                   "<Message>Access Denied</Message>"
                                   "<RequestId>XMLID</RequestId></Error>";
        char reply[512];
        snprintf(reply, sizeof(reply),
                 "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
                 "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(body), body);
        const char *const replies[] = {reply};
        struct fixture f;
        struct test_req r;
        run_one(&f, &r, replies, 1);
        assert_int_equal(r.err, -EACCES);
        assert_int_equal(r.attempts, 1); /* not retried */
        assert_string_equal(r.aws.code, "AccessDenied");
        assert_string_equal(r.request_id, "XMLID"); /* from the body when no header */
        assert_string_equal(r.msg,
                            "TEST Get thing: 403 AccessDenied: Access Denied (request id XMLID)");
        teardown(&f);
}

static void test_redirect_is_not_a_try(void **state)
{
        (void)state;
        static const char *const replies[] = {
            "HTTP/1.1 301 Moved Permanently\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            BUSY_REPLY, BUSY_REPLY, OK_REPLY};
        struct fixture f;
        struct test_req r;
        run_one(&f, &r, replies, 4);
        assert_true(r.redirected);
        assert_int_equal(r.err, 0);
        assert_int_equal(f.srv.served, 4);
        assert_int_equal(r.attempts, 3); /* 4 requests, the redirect not counted */
        teardown(&f);
}

static void cancel_tagged(uv_timer_t *t)
{
        struct fixture *f = t->data;
        static const int one;
        assert_int_equal(aws_request_cancel_tag(&f->c, &one), 0);
        assert_int_equal(aws_request_cancel_tag(&f->c, f), 1);
        uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel_tag_in_backoff(void **state)
{
        (void)state;
        static const char *const replies[] = {
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nConnection: "
            "close\r\nContent-Length: 0\r\n\r\n"};
        struct fixture f;
        struct test_req r;
        uv_timer_t t;
        retry = (struct http_retry_policy){3, 1000, 10000};
        setup(&f, replies, 1);
        retry = (struct http_retry_policy){3, 1, 5};
        req_start(&f, &r, &f);
        uv_timer_init(&f.loop, &t);
        t.data = &f;
        uv_timer_start(&t, cancel_tagged, 300, 0);
        uint64_t t0 = uv_hrtime();
        uv_run(&f.loop, UV_RUN_DEFAULT);
        assert_true(uv_hrtime() - t0 < 5000000000ULL); /* not the 30 s backoff */
        assert_int_equal(r.done_calls, 1);
        assert_int_equal(r.err, -ECANCELED);
        assert_int_equal(f.srv.served, 1);
        /* cancelled in backoff: the sentence is still the failure that led there */
        assert_string_equal(r.msg, "TEST Get thing: 503 Http503: no message (request id none)");
        assert_true(r.released);
        teardown(&f);
}

static void test_transport_failure(void **state)
{
        (void)state;
        static const char *const replies[] = {OK_REPLY};
        struct fixture f;
        struct test_req r;
        setup(&f, replies, 1);
        /* nothing listens there any more */
        uv_close((uv_handle_t *)&f.srv.tcp, NULL);
        uv_run(&f.loop, UV_RUN_NOWAIT);
        uv_tcp_init(&f.loop, &f.srv.tcp);
        req_start(&f, &r, NULL);
        uv_run(&f.loop, UV_RUN_DEFAULT);
        assert_int_equal(r.err, -ECONNREFUSED);
        assert_int_equal(r.attempts, 3);
        assert_non_null(strstr(r.msg, "TEST Get thing: connection refused"));
        assert_non_null(strstr(r.msg, "giving up after 3 attempts"));
        teardown(&f);
}

/* Credentials that expire within CREDS_REFRESH_MARGIN_S are resolved again
 * before a request is signed (rotate.h): the request goes with the new ones;
 * when nothing new comes it goes with the old ones while they last, and
 * fails without being sent once they have expired. */
static void run_expiring(struct fixture *f, struct test_req *r, const char *const *replies,
                         time_t expires_in)
{
        setup(f, replies, 1);
        assert_int_equal(aws_request_client_rotate_creds(&f->c, NULL), 0);
        f->c.creds.expiration = time(NULL) + expires_in;
        req_start(f, r, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_int_equal(r->done_calls, 1);
}

static void test_refresh_before_expiry(void **state)
{
        (void)state;
        static const char *const replies[] = {OK_REPLY};
        static const char *const vars[] = {"AWS_PROFILE",
                                           "AWS_SESSION_TOKEN",
                                           "CREDENTIALS_DIRECTORY",
                                           "AWS_WEB_IDENTITY_TOKEN_FILE",
                                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                           "AWS_CONTAINER_CREDENTIALS_FULL_URI"};
        struct fixture f;
        struct test_req r;
        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
                unsetenv(vars[i]);
        setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
        setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        setenv("AWS_ACCESS_KEY_ID", "AKIDFRESH", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "fresh/secret", 1);

        run_expiring(&f, &r, replies, 60);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.attempts, 1);
        assert_string_equal(f.srv.keys[0], "AKIDFRESH");
        assert_int_equal(f.c.creds.expiration, 0); /* the environment's do not expire */
        teardown(&f);

        /* nothing new: the old ones while they last */
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
        run_expiring(&f, &r, replies, 60);
        assert_int_equal(r.err, 0);
        assert_string_equal(f.srv.keys[0], "AKIDEXAMPLE");
        teardown(&f);

        /* expired, and nothing new: not sent */
        run_expiring(&f, &r, replies, -1);
        assert_int_equal(r.err, -EKEYEXPIRED);
        assert_int_equal(f.srv.served, 0);
        teardown(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_retry_then_success),
            cmocka_unit_test(test_give_up),
            cmocka_unit_test(test_refusal_sentence),
            cmocka_unit_test(test_redirect_is_not_a_try),
            cmocka_unit_test(test_cancel_tag_in_backoff),
            cmocka_unit_test(test_transport_failure),
            cmocka_unit_test(test_refresh_before_expiry),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
