/* query.c - the AWS query-protocol client on the HTTP engine.  See query.h.
 *
 * One `struct aws_query_req` per call: the form body is built once; each try
 * signs it anew (time, credentials) and submits an http_xfer; its completion
 * finishes the call or retries it after a backoff on the request's own
 * uv_timer.  The request's memory is released in the timer's close callback,
 * after done() has run.  Built like s3.c. */
#include "aws/query.h"
#include "aws/rotate.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FORM_TYPE "application/x-www-form-urlencoded; charset=utf-8"

struct aws_query_client {
        struct http_mux *mux;
        uv_loop_t *loop;
        char *service, *name, *version, *sign_region, *url, *host, *path;
        struct http_retry_policy retry;
        long timeout_ms;
        struct sigv4_creds creds;
        struct creds_rotor rotor; /* credentials rotated during a job (rotate.h) */
        struct aws_query_req *head;
        uint64_t rng;
};

struct aws_query_req {
        struct aws_query_client *c;
        struct aws_query_req *prev, *next;
        struct aws_query_cb cb;
        char action[64];
        char *body;
        size_t body_len;
        char payload_hash[65];
        struct http_xfer x;
        struct curl_slist *hlist;
        uv_timer_t timer;
        unsigned attempt;
        struct creds_try creds_try;
        struct aws_query_result res;
        xmlDoc *doc;
        bool cancelled, finished, waiting;
};

/* ---- parameters ---- */

static void wipe_free(char *s)
{
        if (!s)
                return;
        volatile char *v = s;
        while (*v)
                *v++ = 0;
        free(s);
}

void aws_params_add(struct aws_params *p, const char *name, const char *value)
{
        if (p->oom)
                return;
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 16;
                struct sigv4_param *v = realloc(p->v, cap * sizeof(*v));
                if (!v) {
                        p->oom = true;
                        return;
                }
                p->v = v;
                p->cap = cap;
        }
        char *n = strdup(name), *val = strdup(value ? value : "");
        if (!n || !val) {
                free(n);
                free(val);
                p->oom = true;
                return;
        }
        p->v[p->n].name = n;
        p->v[p->n].value = val;
        p->n++;
}

void aws_params_addf(struct aws_params *p, const char *value, const char *name_fmt, ...)
{
        char name[256];
        va_list ap;
        va_start(ap, name_fmt);
        int n = vsnprintf(name, sizeof(name), name_fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(name)) {
                p->oom = true;
                return;
        }
        aws_params_add(p, name, value);
}

void aws_params_clear(struct aws_params *p)
{
        for (size_t i = 0; i < p->n; i++) {
                free((char *)p->v[i].name);
                wipe_free((char *)p->v[i].value);
        }
        free(p->v);
        memset(p, 0, sizeof(*p));
}

/* ---- pure helpers ---- */

const char *aws_query_version(const char *service)
{
        if (!service)
                return NULL;
        if (strcmp(service, "iam") == 0)
                return "2010-05-08";
        if (strcmp(service, "ec2") == 0)
                return "2016-11-15";
        if (strcmp(service, "redshift") == 0)
                return "2012-12-01";
        return NULL;
}

const char *aws_query_signing_region(const char *service, const char *region)
{
        if (service && strcmp(service, "iam") == 0)
                return "us-east-1";
        return region && *region ? region : "us-east-1";
}

const char *aws_query_token_param(const char *service)
{
        return service && strcmp(service, "ec2") == 0 ? "NextToken" : "Marker";
}

static const char *service_name(const char *service)
{
        if (strcmp(service, "iam") == 0)
                return "IAM";
        if (strcmp(service, "ec2") == 0)
                return "EC2";
        return "Redshift";
}

char *aws_query_endpoint(const char *service, const char *region, const char *override)
{
        if (!aws_query_version(service))
                return NULL;
        if (override && *override) {
                size_t n = strlen(override);
                while (n > 0 && override[n - 1] == '/')
                        n--;
                return strndup(override, n);
        }
        struct buf b = {0};
        int r;
        if (strcmp(service, "iam") == 0)
                r = buf_printf(&b, "https://iam.amazonaws.com");
        else
                r = buf_printf(&b, "https://%s.%s.amazonaws.com", service,
                               region && *region ? region : "us-east-1");
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return b.data;
}

char *aws_query_body(const char *action, const char *version, const struct aws_params *p)
{
        struct buf b = {0};
        char *a = sigv4_uri_encode(action, false), *v = sigv4_uri_encode(version, false);
        bool ok = a && v && buf_printf(&b, "Action=%s&Version=%s", a, v) == 0;
        free(a);
        free(v);
        for (size_t i = 0; ok && p && i < p->n; i++) {
                char *n = sigv4_uri_encode(p->v[i].name, false);
                char *val = sigv4_uri_encode(p->v[i].value ? p->v[i].value : "", false);
                ok = n && val && buf_printf(&b, "&%s=%s", n, val) == 0;
                free(n);
                wipe_free(val);
        }
        if (!ok) {
                if (b.data)
                        memset(b.data, 0, b.len);
                buf_free(&b);
                return NULL;
        }
        return b.data ? b.data : strdup("");
}

static bool token_of(const xmlNode *n, char *buf, size_t size)
{
        static const char *const names[] = {"Marker", "NextToken", "nextToken"};
        for (size_t k = 0; k < 3; k++) {
                if (!xml_is(n, names[k]))
                        continue;
                char *t = xml_text(n);
                bool got = t && *t;
                if (got)
                        snprintf(buf, size, "%s", t);
                free(t);
                return got;
        }
        return false;
}

bool aws_query_find_token(const xmlNode *root, char *buf, size_t size)
{
        if (size)
                buf[0] = '\0';
        if (!root || !size)
                return false;
        /* the token sits beside the list: in the root (EC2) or in XResult */
        for (const xmlNode *n = root->children; n; n = n->next) {
                if (n->type != XML_ELEMENT_NODE)
                        continue;
                if (token_of(n, buf, size))
                        return true;
                for (const xmlNode *m = n->children; m; m = m->next)
                        if (m->type == XML_ELEMENT_NODE && token_of(m, buf, size))
                                return true;
        }
        return false;
}

/* ---- the client ---- */

static int split_url(const char *url, char **host, char **path)
{
        CURLU *u = curl_url();
        if (!u)
                return -ENOMEM;
        char *h = NULL, *port = NULL, *p = NULL;
        int r = -EINVAL;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK)
                goto out;
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &p, 0);
        struct buf b = {0};
        if (buf_printf(&b, "%s%s%s", h, port ? ":" : "", port ? port : "") < 0) {
                r = -ENOMEM;
                goto out;
        }
        *host = b.data;
        *path = strdup(p && *p ? p : "/");
        r = *path ? 0 : -ENOMEM;
out:
        curl_free(h);
        curl_free(port);
        curl_free(p);
        curl_url_cleanup(u);
        return r;
}

void aws_query_client_free(struct aws_query_client *c)
{
        if (!c)
                return;
        creds_rotor_clear(&c->rotor);
        while (c->head)
                aws_query_cancel(c->head);
        sigv4_creds_clear(&c->creds);
        free(c->service);
        free(c->name);
        free(c->version);
        free(c->sign_region);
        free(c->url);
        free(c->host);
        free(c->path);
        free(c);
}

int aws_query_client_new(struct http_mux *mux, const struct aws_query_opts *opts,
                         const struct sigv4_creds *creds, struct aws_query_client **ret)
{
        if (!opts || !aws_query_version(opts->service))
                return -EINVAL;
        struct aws_query_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->mux = mux;
        c->loop = http_mux_loop(mux);
        c->service = strdup(opts->service);
        c->name = strdup(service_name(opts->service));
        c->version = strdup(aws_query_version(opts->service));
        c->sign_region = strdup(aws_query_signing_region(opts->service, opts->region));
        c->url = aws_query_endpoint(opts->service, opts->region, opts->endpoint);
        c->retry = opts->retry;
        if (c->retry.max_attempts == 0)
                c->retry = (struct http_retry_policy)HTTP_RETRY_DEFAULT;
        c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60000;
        c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c ^ 0x9E3779B97F4A7C15ULL;
        if (!c->rng)
                c->rng = 1;
        int r = -ENOMEM;
        if (!c->service || !c->name || !c->version || !c->sign_region || !c->url ||
            (creds && sigv4_creds_copy(&c->creds, creds) < 0))
                goto fail;
        r = split_url(c->url, &c->host, &c->path);
        if (r < 0)
                goto fail;
        xml_init();
        *ret = c;
        return 0;
fail:
        aws_query_client_free(c);
        return r;
}

int aws_query_client_set_creds(struct aws_query_client *c, const struct sigv4_creds *creds)
{
        struct sigv4_creds n = {0};
        if (sigv4_creds_copy(&n, creds) < 0)
                return -ENOMEM;
        sigv4_creds_clear(&c->creds);
        c->creds = n;
        return 0;
}

const char *aws_query_client_name(const struct aws_query_client *c)
{
        return c->name;
}

static uint64_t next_rand(struct aws_query_client *c)
{
        c->rng ^= c->rng >> 12;
        c->rng ^= c->rng << 25;
        c->rng ^= c->rng >> 27;
        return c->rng * 0x2545F4914F6CDD1DULL;
}

static void req_closed(uv_handle_t *h)
{
        struct aws_query_req *r = h->data;
        if (r->body) {
                memset(r->body, 0, r->body_len);
                free(r->body);
        }
        curl_slist_free_all(r->hlist);
        if (r->x.resp.data)
                memset(r->x.resp.data, 0, r->x.resp.len);
        http_xfer_reset(&r->x);
        if (r->doc)
                xmlFreeDoc(r->doc);
        free(r);
}

static void req_unlink(struct aws_query_req *r)
{
        struct aws_query_client *c = r->c;
        if (r->prev)
                r->prev->next = r->next;
        else if (c->head == r)
                c->head = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->prev = r->next = NULL;
}

static void complete(struct aws_query_req *r, int err)
{
        if (r->finished)
                return;
        r->finished = true;
        uv_timer_stop(&r->timer);
        creds_rotor_forget(&r->c->rotor, &r->creds_try); /* cancelled while waiting */
        req_unlink(r);
        r->res.err = err;
        r->res.attempts = r->attempt;
        if (err == -ECANCELED && !r->res.msg[0])
                snprintf(r->res.msg, sizeof(r->res.msg), "%s %s: cancelled", r->c->name, r->action);
        r->cb.done(r, &r->res, r->cb.ud);
        uv_close((uv_handle_t *)&r->timer, req_closed);
}

static void describe_aws(struct aws_query_req *r)
{
        const struct aws_error *a = &r->res.aws;
        snprintf(r->res.msg, sizeof(r->res.msg), "%s %s: %ld %s: %s (request id %s)", r->c->name,
                 r->action, r->res.status, a->code, a->message[0] ? a->message : "no message",
                 a->request_id[0]       ? a->request_id
                 : r->res.request_id[0] ? r->res.request_id
                                        : "none");
}

static void describe_transport(struct aws_query_req *r, int result)
{
        snprintf(r->res.msg, sizeof(r->res.msg), "%s %s: %s%s%s%s", r->c->name, r->action,
                 http_result_str(result), r->x.errbuf[0] ? " (" : "", r->x.errbuf,
                 r->x.errbuf[0] ? ")" : "");
}

static void attempt(struct aws_query_req *r);

static void on_timer(uv_timer_t *t)
{
        struct aws_query_req *r = t->data;
        r->waiting = false;
        attempt(r);
}

static void retry_or_fail(struct aws_query_req *r, int err, int64_t retry_after_ms)
{
        if (r->attempt >= r->c->retry.max_attempts) {
                size_t n = strlen(r->res.msg);
                snprintf(r->res.msg + n, sizeof(r->res.msg) - n, ", giving up after %u attempts",
                         r->attempt);
                complete(r, err);
                return;
        }
        uint64_t d = http_backoff_ms(&r->c->retry, r->attempt, next_rand(r->c), retry_after_ms);
        r->waiting = true;
        uv_timer_start(&r->timer, on_timer, d, 0);
}

static void on_xfer_done(struct http_xfer *x);

static void attempt(struct aws_query_req *r)
{
        struct aws_query_client *c = r->c;
        struct sigv4_signed s = {0};
        char err[256];

        if (r->cancelled) {
                complete(r, -ECANCELED);
                return;
        }
        r->attempt++;
        http_xfer_reset(&r->x);
        struct sigv4_header h[] = {{"Content-Type", FORM_TYPE}};
        struct sigv4_request sr = {
            .method = "POST",
            .host = c->host,
            .path = c->path,
            .headers = h,
            .nheaders = 1,
            .payload_sha256_hex = r->payload_hash,
            .region = c->sign_region,
            .service = c->service,
            .now = time(NULL),
        };
        r->creds_try.gen = c->rotor.gen;
        int rc = sigv4_sign(&sr, &c->creds, &s, err, sizeof(err));
        if (rc < 0) {
                snprintf(r->res.msg, sizeof(r->res.msg), "%s %s: cannot sign: %s", c->name,
                         r->action, err);
                complete(r, rc);
                return;
        }
        struct curl_slist *l = NULL;
        struct buf line = {0};
        bool ok =
            buf_printf(&line, "Host: %s", c->host) == 0 && (l = curl_slist_append(l, line.data));
        for (size_t i = 0; ok && i < s.nheaders; i++) {
                line.len = 0;
                ok = buf_printf(&line, "%s: %s", s.headers[i].name, s.headers[i].value) == 0 &&
                     curl_slist_append(l, line.data);
        }
        ok = ok && curl_slist_append(l, "Content-Type: " FORM_TYPE) &&
             curl_slist_append(l, "Expect:") && curl_slist_append(l, "Accept:");
        buf_free(&line);
        sigv4_signed_clear(&s);
        if (!ok) {
                curl_slist_free_all(l);
                snprintf(r->res.msg, sizeof(r->res.msg), "%s %s: out of memory", c->name,
                         r->action);
                complete(r, -ENOMEM);
                return;
        }
        curl_slist_free_all(r->hlist);
        r->hlist = l;
        struct http_xfer *x = &r->x;
        x->method = "POST";
        x->url = c->url;
        x->headers = r->hlist;
        x->body = r->body;
        x->body_len = r->body_len;
        x->read_body = NULL;
        x->on_body = NULL;
        x->max_body = 0;
        x->timeout_ms = c->timeout_ms;
        x->tag = r->cb.tag;
        x->done = on_xfer_done;
        x->userdata = r;
        rc = http_submit(c->mux, x);
        if (rc < 0) {
                describe_transport(r, rc);
                complete(r, rc);
        }
}

static int status_err(long status)
{
        if (status == 404)
                return -ENOENT;
        if (status == 403)
                return -EACCES;
        return -EREMOTEIO;
}

int aws_query_client_rotate_creds(struct aws_query_client *c, const char *profile)
{
        return creds_rotor_enable(&c->rotor, c->loop, &c->creds, profile);
}

/* See s3.c: the credentials were resolved again (or not). */
static void resume_after_rotation(struct creds_try *t, int err, const char *msg)
{
        struct aws_query_req *r = (struct aws_query_req *)((char *)t - offsetof(struct aws_query_req, creds_try));
        if (err == 0) {
                attempt(r);
                return;
        }
        size_t n = strlen(r->res.msg);
        snprintf(r->res.msg + n, sizeof(r->res.msg) - n,
                 "; resolving the credentials again failed: %s", msg);
        complete(r, status_err(r->res.status));
}

/* See s3.c rotate_creds. */
static bool rotate_creds(struct aws_query_req *r)
{
        enum creds_next n = creds_rotor_refused(&r->c->rotor, &r->creds_try, r->res.aws.code,
                                                resume_after_rotation);
        if (n == CREDS_NOT_MINE)
                return false;
        r->attempt--; /* not a failed try */
        if (n == CREDS_SEND_AGAIN)
                attempt(r);
        return true;
}

static void on_xfer_done(struct http_xfer *x)
{
        struct aws_query_req *r = x->userdata;
        r->res.status = x->status;
        const char *v = http_xfer_header(x, "x-amzn-RequestId");
        if (!v)
                v = http_xfer_header(x, "x-amz-request-id");
        snprintf(r->res.request_id, sizeof(r->res.request_id), "%s", v ? v : "");
        memset(&r->res.aws, 0, sizeof(r->res.aws));

        if (r->cancelled || x->result == -ECANCELED) {
                complete(r, -ECANCELED);
                return;
        }
        if (x->result < 0) {
                describe_transport(r, x->result);
                if (!http_result_retryable(x->result))
                        complete(r, x->result);
                else
                        retry_or_fail(r, x->result, -1);
                return;
        }
        if (x->status >= 200 && x->status < 300) {
                if (r->doc)
                        xmlFreeDoc(r->doc);
                r->doc = xml_read(x->resp.data ? x->resp.data : "", x->resp.len);
                xmlNode *root = r->doc ? xml_root(r->doc) : NULL;
                if (!root) {
                        snprintf(r->res.msg, sizeof(r->res.msg),
                                 "%s %s: unreadable reply (%zu bytes)", r->c->name, r->action,
                                 x->resp.len);
                        retry_or_fail(r, -EBADMSG, -1);
                        return;
                }
                r->res.root = root;
                aws_query_find_token(root, r->res.next_token, sizeof(r->res.next_token));
                if (!r->res.request_id[0]) {
                        xmlNode *id = xml_path(root, "ResponseMetadata/RequestId");
                        if (!id)
                                id = xml_child(root, "requestId");
                        char *t = xml_text(id);
                        if (t)
                                snprintf(r->res.request_id, sizeof(r->res.request_id), "%s", t);
                        free(t);
                }
                complete(r, 0);
                return;
        }
        struct aws_error *a = &r->res.aws;
        if (xml_parse_aws_error(x->resp.data, x->resp.len, a) < 0)
                snprintf(a->code, sizeof(a->code), "Http%ld", x->status);
        if (!a->request_id[0])
                snprintf(a->request_id, sizeof(a->request_id), "%s", r->res.request_id);
        else if (!r->res.request_id[0])
                snprintf(r->res.request_id, sizeof(r->res.request_id), "%s", a->request_id);
        describe_aws(r);
        if (rotate_creds(r))
                return;
        if (http_status_retryable(x->status, a->code)) {
                v = http_xfer_header(x, "Retry-After");
                retry_or_fail(r, status_err(x->status), http_parse_retry_after(v, util_now_ms()));
                return;
        }
        complete(r, status_err(x->status));
}

int aws_query_call(struct aws_query_client *c, const char *action, const struct aws_params *params,
                   const struct aws_query_cb *cb, struct aws_query_req **ret)
{
        if (!c || !action || !cb || !cb->done || strlen(action) >= 64)
                return -EINVAL;
        if (params && params->oom)
                return -ENOMEM;
        struct aws_query_req *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->c = c;
        r->cb = *cb;
        snprintf(r->action, sizeof(r->action), "%s", action);
        r->body = aws_query_body(action, c->version, params);
        if (!r->body) {
                free(r);
                return -ENOMEM;
        }
        r->body_len = strlen(r->body);
        sigv4_sha256_hex(r->body, r->body_len, r->payload_hash);
        uv_timer_init(c->loop, &r->timer);
        r->timer.data = r;
        r->next = c->head;
        if (c->head)
                c->head->prev = r;
        c->head = r;
        if (ret)
                *ret = r;
        /* start from the loop: done() never runs inside this call */
        r->waiting = true;
        uv_timer_start(&r->timer, on_timer, 0, 0);
        return 0;
}

void aws_query_cancel(struct aws_query_req *r)
{
        if (!r || r->finished || r->cancelled)
                return;
        r->cancelled = true;
        if (r->x.active) {
                http_cancel(&r->x);
                return;
        }
        complete(r, -ECANCELED);
}

unsigned aws_query_cancel_tag(struct aws_query_client *c, const void *tag)
{
        unsigned n = 0;
        bool again = true;
        while (again) {
                again = false;
                for (struct aws_query_req *r = c->head; r; r = r->next)
                        if (r->cb.tag == tag && !r->cancelled) {
                                n++;
                                aws_query_cancel(r);
                                again = true;
                                break;
                        }
        }
        return n;
}
