/* request.c - one signed and retried AWS request on the HTTP engine: the
 * lifecycle the S3 and query-protocol clients share.  See request.h.
 *
 * A request makes tries: each try asks the service what to send, signs it
 * with the client's credentials of the moment, builds the header list and
 * the URL, and submits the request's http_xfer; the transfer's completion
 * classifies the reply (transport failure, 2xx, refusal) and finishes the
 * request, hands it to the service, retries it after a backoff on the
 * request's own uv_timer, or waits for rotated credentials.  The memory is
 * released in the timer's close callback, after done() has run. */
#include "aws/request.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Room for the header lines: Host, the signer's, the service's, Expect, Accept. */
#define MAX_LINES (1 + SIGV4_MAX_OUT_HEADERS + 16 + 2)

/* ---- the client ---- */

int aws_request_client_init(struct aws_request_client *c, struct http_mux *mux,
                            const struct aws_request_ops *ops,
                            const struct http_retry_policy *retry, const struct sigv4_creds *creds)
{
        c->mux = mux;
        c->loop = http_mux_loop(mux);
        c->ops = ops;
        c->retry = retry ? *retry : (struct http_retry_policy){0};
        if (c->retry.max_attempts == 0)
                c->retry = (struct http_retry_policy)HTTP_RETRY_DEFAULT;
        c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c ^ 0x9E3779B97F4A7C15ULL;
        if (!c->rng)
                c->rng = 1;
        xml_init();
        if (creds && sigv4_creds_copy(&c->creds, creds) < 0)
                return -ENOMEM;
        return 0;
}

void aws_request_client_clear(struct aws_request_client *c)
{
        creds_rotor_clear(&c->rotor);
        while (c->head)
                aws_request_cancel(c->head);
        sigv4_creds_clear(&c->creds);
}

int aws_request_client_set_creds(struct aws_request_client *c, const struct sigv4_creds *creds)
{
        struct sigv4_creds n = {0};
        if (sigv4_creds_copy(&n, creds) < 0)
                return -ENOMEM;
        sigv4_creds_clear(&c->creds);
        c->creds = n;
        return 0;
}

int aws_request_client_rotate_creds(struct aws_request_client *c, const char *profile)
{
        return creds_rotor_enable(&c->rotor, c->loop, &c->creds, profile);
}

int aws_request_client_set_sts(struct aws_request_client *c, const struct creds_sts *sts)
{
        return creds_rotor_set_sts(&c->rotor, sts);
}

unsigned aws_request_cancel_tag(struct aws_request_client *c, const void *tag)
{
        unsigned n = 0;
        bool again = true;
        while (again) {
                again = false;
                for (struct aws_request *r = c->head; r; r = r->next)
                        if (r->tag == tag && !r->cancelled) {
                                n++;
                                aws_request_cancel(r);
                                again = true;
                                break;
                        }
        }
        return n;
}

static uint64_t next_rand(struct aws_request_client *c)
{
        /* xorshift64*: jitter only, not security */
        c->rng ^= c->rng >> 12;
        c->rng ^= c->rng << 25;
        c->rng ^= c->rng >> 27;
        return c->rng * 0x2545F4914F6CDD1DULL;
}

/* ---- a request's life ---- */

int aws_request_init(struct aws_request *rq, struct aws_request_client *c, const void *tag,
                     const char *what_fmt, ...)
{
        va_list ap;
        va_start(ap, what_fmt);
        int n = vsnprintf(NULL, 0, what_fmt, ap);
        va_end(ap);
        if (n < 0 || !(rq->what = malloc((size_t)n + 1)))
                return -ENOMEM;
        va_start(ap, what_fmt);
        vsnprintf(rq->what, (size_t)n + 1, what_fmt, ap);
        va_end(ap);
        rq->c = c;
        rq->ops = c->ops;
        rq->tag = tag;
        uv_timer_init(c->loop, &rq->timer);
        rq->timer.data = rq;
        return 0;
}

static void on_closed(uv_handle_t *h)
{
        struct aws_request *rq = h->data;
        /* the client may be gone already: only the request's own fields */
        if (rq->ops->wipe && rq->x.resp.data)
                memset(rq->x.resp.data, 0, rq->x.resp.len);
        http_xfer_reset(&rq->x);
        free(rq->url);
        free(rq->hlist);
        free(rq->what);
        rq->ops->release(rq);
}

void aws_request_discard(struct aws_request *rq)
{
        rq->finished = true;
        uv_close((uv_handle_t *)&rq->timer, on_closed);
}

static void unlink_request(struct aws_request *rq)
{
        struct aws_request_client *c = rq->c;
        if (rq->prev)
                rq->prev->next = rq->next;
        else if (c->head == rq)
                c->head = rq->next;
        if (rq->next)
                rq->next->prev = rq->prev;
        rq->prev = rq->next = NULL;
}

void aws_request_complete(struct aws_request *rq, int err)
{
        if (rq->finished)
                return;
        rq->finished = true;
        uv_timer_stop(&rq->timer);
        creds_rotor_forget(&rq->c->rotor, &rq->creds_try); /* cancelled while waiting */
        unlink_request(rq);
        if (err == -ECANCELED && !rq->msg[0])
                aws_request_say(rq, "cancelled");
        rq->ops->done(rq, err);
        uv_close((uv_handle_t *)&rq->timer, on_closed);
}

void aws_request_cancel(struct aws_request *rq)
{
        if (!rq || rq->finished || rq->cancelled)
                return;
        rq->cancelled = true;
        if (rq->x.active) {
                http_cancel(&rq->x); /* on_xfer_done completes, now or soon */
                return;
        }
        aws_request_complete(rq, -ECANCELED);
}

void aws_request_outcome(const struct aws_request *rq, long *status, unsigned *attempts,
                         struct aws_error *aws, char msg[1024], char request_id[128])
{
        *status = rq->status;
        *attempts = rq->attempt;
        *aws = rq->aws;
        memcpy(msg, rq->msg, sizeof(rq->msg));
        memcpy(request_id, rq->request_id, sizeof(rq->request_id));
}

/* ---- messages ---- */

void aws_request_say(struct aws_request *rq, const char *fmt, ...)
{
        int n = snprintf(rq->msg, sizeof(rq->msg), "%s: ", rq->what);
        if (n < 0 || (size_t)n >= sizeof(rq->msg))
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rq->msg + n, sizeof(rq->msg) - (size_t)n, fmt, ap);
        va_end(ap);
}

void aws_request_say_refusal(struct aws_request *rq)
{
        const struct aws_error *a = &rq->aws;
        aws_request_say(rq, "%ld %s: %s (request id %s)", rq->status, a->code,
                        a->message[0] ? a->message : "no message",
                        a->request_id[0]    ? a->request_id
                        : rq->request_id[0] ? rq->request_id
                                            : "none");
}

static void say_transport(struct aws_request *rq, int result)
{
        aws_request_say(rq, "%s%s%s%s", http_result_str(result), rq->x.errbuf[0] ? " (" : "",
                        rq->x.errbuf, rq->x.errbuf[0] ? ")" : "");
}

static void append(struct aws_request *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void append(struct aws_request *rq, const char *fmt, ...)
{
        size_t n = strlen(rq->msg);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rq->msg + n, sizeof(rq->msg) - n, fmt, ap);
        va_end(ap);
}

int aws_request_status_err(long status)
{
        if (status == 404)
                return -ENOENT;
        if (status == 403)
                return -EACCES;
        return -EREMOTEIO;
}

/* ---- one try ---- */

/* The request's header lines for CURLOPT_HTTPHEADER, "name: value" for each
 * of names[i]/values[i] (values[i] NULL: the line is names[i] as is), built
 * in one allocation: curl only reads the list, and curl_slist_append's two
 * allocations per line (and as many frees) showed in the profile.  Free the
 * result with free(), never curl_slist_free_all(). */
static struct curl_slist *hlist_build(size_t n, const char *const *names, const char *const *values)
{
        size_t text = 0;
        for (size_t i = 0; i < n; i++)
                text += strlen(names[i]) + (values[i] ? 2 + strlen(values[i]) : 0) + 1;
        struct curl_slist *l = malloc(n * sizeof(*l) + text);
        if (!l)
                return NULL;
        char *p = (char *)(l + n);
        for (size_t i = 0; i < n; i++) {
                size_t k = strlen(names[i]);
                l[i].data = p;
                l[i].next = i + 1 < n ? &l[i + 1] : NULL;
                memcpy(p, names[i], k);
                p += k;
                if (values[i]) {
                        size_t v = strlen(values[i]);
                        memcpy(p, ": ", 2);
                        memcpy(p + 2, values[i], v);
                        p += 2 + v;
                }
                *p++ = '\0';
        }
        return l;
}

/* The URL and header lines of a signed try into rq->url and rq->hlist. */
static int build(struct aws_request *rq, const struct aws_try *t, const struct sigv4_signed *s)
{
        struct buf u = {0};
        int rc = t->base ? buf_cat(&u, 4, t->base, s->path, s->query[0] ? "?" : "", s->query)
                         : buf_cat(&u, 1, t->url);
        /* Host, the signer's headers, the service's, and no Expect/Accept */
        const char *names[MAX_LINES];
        const char *values[MAX_LINES];
        size_t n = 0;
        if (t->sign.nheaders > MAX_LINES - (1 + SIGV4_MAX_OUT_HEADERS + 2))
                rc = -E2BIG;
        names[n] = "Host";
        values[n++] = t->sign.host;
        for (size_t i = 0; rc == 0 && i < s->nheaders; i++) {
                names[n] = s->headers[i].name;
                values[n++] = s->headers[i].value;
        }
        for (size_t i = 0; rc == 0 && i < t->sign.nheaders; i++) {
                names[n] = t->sign.headers[i].name;
                values[n++] = t->sign.headers[i].value;
        }
        names[n] = "Expect:";
        values[n++] = NULL;
        names[n] = "Accept:";
        values[n++] = NULL;
        struct curl_slist *l = rc == 0 ? hlist_build(n, names, values) : NULL;
        if (!l) {
                buf_free(&u);
                return rc < 0 ? rc : -ENOMEM;
        }
        free(rq->url);
        free(rq->hlist);
        rq->url = u.data;
        rq->hlist = l;
        return 0;
}

static void on_xfer_done(struct http_xfer *x);
static void resume_before_sign(struct creds_try *t, int err, const char *msg);

static void attempt(struct aws_request *rq)
{
        struct aws_request_client *c = rq->c;
        struct http_xfer *x = &rq->x;
        struct aws_try t = {0};
        struct sigv4_signed s = {0};
        char err[256];

        if (rq->cancelled) {
                aws_request_complete(rq, -ECANCELED);
                return;
        }
        /* credentials about to expire: it goes once they were resolved again */
        if (creds_rotor_expiring(&c->rotor, &rq->creds_try, time(NULL), resume_before_sign) ==
            CREDS_WAIT)
                return;
        rq->attempt++;
        http_xfer_reset(x);
        x->body = NULL;
        x->body_len = 0;
        x->read_body = NULL;
        x->read_len = -1;
        x->on_body = NULL;
        x->max_body = 0;
        x->timeout_ms = 0;
        int rc = c->ops->prepare(rq, &t);
        if (rc < 0) {
                aws_request_complete(rq, rc);
                return;
        }
        t.sign.now = time(NULL);
        rq->creds_try.gen = c->rotor.gen;
        rc = sigv4_sign(&t.sign, &c->creds, &s, err, sizeof(err));
        if (rc < 0) {
                aws_request_say(rq, "cannot sign: %s", err);
                aws_request_complete(rq, rc);
                return;
        }
        rc = build(rq, &t, &s);
        sigv4_signed_clear(&s);
        if (rc < 0) {
                aws_request_say(rq, "%s", rc == -E2BIG ? "too many headers" : "out of memory");
                aws_request_complete(rq, rc);
                return;
        }
        x->method = t.sign.method;
        x->url = rq->url;
        x->headers = rq->hlist;
        x->tag = rq->tag;
        x->done = on_xfer_done;
        x->userdata = rq;
        rc = http_submit(c->mux, x);
        if (rc < 0) {
                say_transport(rq, rc);
                aws_request_complete(rq, rc);
        }
}

static void on_timer(uv_timer_t *t)
{
        attempt(t->data);
}

void aws_request_start(struct aws_request *rq)
{
        struct aws_request_client *c = rq->c;
        rq->next = c->head;
        if (c->head)
                c->head->prev = rq;
        c->head = rq;
        /* Start from the loop, so done() never runs inside the caller's call. */
        uv_timer_start(&rq->timer, on_timer, 0, 0);
}

void aws_request_retry(struct aws_request *rq, int err, int64_t retry_after_ms)
{
        if (rq->attempt >= rq->c->retry.max_attempts) {
                append(rq, ", giving up after %u attempts", rq->attempt);
                aws_request_complete(rq, err);
                return;
        }
        uint64_t d = http_backoff_ms(&rq->c->retry, rq->attempt, next_rand(rq->c), retry_after_ms);
        uv_timer_start(&rq->timer, on_timer, d, 0);
}

void aws_request_redo(struct aws_request *rq)
{
        rq->attempt--;
        attempt(rq);
}

void aws_request_restart(struct aws_request *rq)
{
        rq->attempt = 0;
        attempt(rq);
}

/* ---- credentials refused ---- */

/* The credentials were resolved again (or not): send the request anew, or
 * fail it with what the refusal said and why no new ones came. */
static void resume_after_rotation(struct creds_try *t, int err, const char *msg)
{
        struct aws_request *rq =
            (struct aws_request *)((char *)t - offsetof(struct aws_request, creds_try));
        if (err == 0) {
                attempt(rq);
                return;
        }
        append(rq, "; resolving the credentials again failed: %s", msg);
        aws_request_complete(rq, aws_request_status_err(rq->status));
}

/* The credentials were about to expire and the chain was resolved again:
 * sign with what is there now, unless that failed and they have expired. */
static void resume_before_sign(struct creds_try *t, int err, const char *msg)
{
        struct aws_request *rq =
            (struct aws_request *)((char *)t - offsetof(struct aws_request, creds_try));
        if (err < 0 && rq->c->creds.expiration <= time(NULL)) {
                aws_request_say(rq, "the credentials expired and resolving them again failed: %s",
                                msg);
                aws_request_complete(rq, err == -ECANCELED ? err : -EKEYEXPIRED);
                return;
        }
        attempt(rq);
}

/* A refusal of the credentials themselves (rotate.h): true when the request
 * waits for them to be resolved again, or went again. */
static bool rotate_creds(struct aws_request *rq)
{
        enum creds_next n =
            creds_rotor_refused(&rq->c->rotor, &rq->creds_try, rq->aws.code, resume_after_rotation);
        if (n == CREDS_NOT_MINE)
                return false;
        rq->attempt--; /* not a failed try */
        if (n == CREDS_SEND_AGAIN)
                attempt(rq);
        return true;
}

/* ---- the reply ---- */

static void take_request_id(struct aws_request *rq)
{
        const char *first = rq->c->ops->request_id_header;
        const char *other =
            strcmp(first, "x-amz-request-id") == 0 ? "x-amzn-RequestId" : "x-amz-request-id";
        const char *v = http_xfer_header(&rq->x, first);
        if (!v)
                v = http_xfer_header(&rq->x, other);
        snprintf(rq->request_id, sizeof(rq->request_id), "%s", v ? v : "");
}

static void on_xfer_done(struct http_xfer *x)
{
        struct aws_request *rq = x->userdata;
        const struct aws_request_ops *ops = rq->c->ops;
        struct aws_error *a = &rq->aws;

        rq->status = x->status;
        take_request_id(rq);
        memset(a, 0, sizeof(*a));

        if (rq->cancelled || x->result == -ECANCELED) {
                aws_request_complete(rq, -ECANCELED);
                return;
        }
        if (x->result < 0) {
                say_transport(rq, x->result);
                if (x->cb_err || !http_result_retryable(x->result))
                        aws_request_complete(rq, x->result);
                else
                        aws_request_retry(rq, x->result, -1);
                return;
        }
        if (x->status >= 200 && x->status < 300) {
                if (ops->on_reply(rq))
                        return;
        } else if (xml_parse_aws_error(x->resp.data, x->resp.len, a) < 0) {
                if (ops->status_code)
                        snprintf(a->code, sizeof(a->code), "%s", ops->status_code(x->status));
                else
                        snprintf(a->code, sizeof(a->code), "Http%ld", x->status);
        }
        if (!a->request_id[0])
                snprintf(a->request_id, sizeof(a->request_id), "%s", rq->request_id);
        else if (!rq->request_id[0])
                snprintf(rq->request_id, sizeof(rq->request_id), "%s", a->request_id);
        if (ops->on_refusal && ops->on_refusal(rq))
                return;
        aws_request_say_refusal(rq);
        if (rotate_creds(rq))
                return;
        /* a 2xx carrying an error (CopyObject) is retried as S3 says for 500 */
        if (http_status_retryable(x->status, a->code) ||
            (x->status < 300 && http_status_retryable(500, a->code))) {
                const char *v = http_xfer_header(x, "Retry-After");
                aws_request_retry(rq, aws_request_status_err(x->status),
                                  http_parse_retry_after(v, util_now_ms()));
                return;
        }
        aws_request_complete(rq, aws_request_status_err(x->status));
}
