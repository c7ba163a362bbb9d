/* query.c - the AWS query-protocol client (IAM, EC2, Redshift).  See query.h.
 *
 * What is particular to the query services: the form-encoded Action body
 * (built once per call, wiped when freed: it may carry a password), the
 * service's endpoint and signing region, and the XML of replies and errors.
 * Signing, sending, retrying, credential rotation and cancelling are the
 * request layer's (request.h), shared with s3.c. */
#include "aws/query.h"
#include "aws/request.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORM_TYPE "application/x-www-form-urlencoded; charset=utf-8"

struct aws_query_client {
        struct aws_request_client rc;
        char *service, *name, *version, *sign_region, *url, *host, *path;
        long timeout_ms;
};

struct aws_query_req {
        struct aws_request rq;
        struct aws_query_cb cb;
        char action[64];
        char *body;
        size_t body_len;
        char payload_hash[65];
        struct aws_query_result res;
        xmlDoc *doc;
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

static struct aws_query_req *req_of(struct aws_request *rq)
{
        return (struct aws_query_req *)((char *)rq - offsetof(struct aws_query_req, rq));
}

/* Each try: POST the form to the service's URL. */
static int query_prepare(struct aws_request *rq, struct aws_try *t)
{
        static const struct sigv4_header form[] = {{"Content-Type", FORM_TYPE}};
        struct aws_query_req *r = req_of(rq);
        struct aws_query_client *c = (struct aws_query_client *)rq->c;
        t->sign = (struct sigv4_request){
            .method = "POST",
            .host = c->host,
            .path = c->path,
            .headers = form,
            .nheaders = 1,
            .payload_sha256_hex = r->payload_hash,
            .region = c->sign_region,
            .service = c->service,
        };
        t->url = c->url;
        rq->x.body = r->body;
        rq->x.body_len = r->body_len;
        rq->x.timeout_ms = c->timeout_ms;
        return 0;
}

/* A 2xx: the reply's XML, its page token and request id. */
static bool query_on_reply(struct aws_request *rq)
{
        struct aws_query_req *r = req_of(rq);
        struct http_xfer *x = &rq->x;
        if (r->doc)
                xmlFreeDoc(r->doc);
        r->doc = xml_read(x->resp.data ? x->resp.data : "", x->resp.len);
        xmlNode *root = r->doc ? xml_root(r->doc) : NULL;
        if (!root) {
                aws_request_say(rq, "unreadable reply (%zu bytes)", x->resp.len);
                aws_request_retry(rq, -EBADMSG, -1);
                return true;
        }
        r->res.root = root;
        aws_query_find_token(root, r->res.next_token, sizeof(r->res.next_token));
        if (!rq->request_id[0]) {
                xmlNode *id = xml_path(root, "ResponseMetadata/RequestId");
                if (!id)
                        id = xml_child(root, "requestId");
                char *v = xml_text(id);
                if (v)
                        snprintf(rq->request_id, sizeof(rq->request_id), "%s", v);
                free(v);
        }
        aws_request_complete(rq, 0);
        return true;
}

static void query_done(struct aws_request *rq, int err)
{
        struct aws_query_req *r = req_of(rq);
        r->res.err = err;
        aws_request_outcome(rq, &r->res.status, &r->res.attempts, &r->res.aws, r->res.msg,
                            r->res.request_id);
        r->cb.done(r, &r->res, r->cb.ud);
}

static void query_release(struct aws_request *rq)
{
        struct aws_query_req *r = req_of(rq);
        if (r->body) {
                memset(r->body, 0, r->body_len);
                free(r->body);
        }
        if (r->doc)
                xmlFreeDoc(r->doc);
        free(r);
}

static const struct aws_request_ops query_ops = {
    .request_id_header = "x-amzn-RequestId",
    .wipe = true,
    .prepare = query_prepare,
    .on_reply = query_on_reply,
    .done = query_done,
    .release = query_release,
};

void aws_query_client_free(struct aws_query_client *c)
{
        if (!c)
                return;
        aws_request_client_clear(&c->rc);
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
        c->service = strdup(opts->service);
        c->name = strdup(service_name(opts->service));
        c->version = strdup(aws_query_version(opts->service));
        c->sign_region = strdup(aws_query_signing_region(opts->service, opts->region));
        c->url = aws_query_endpoint(opts->service, opts->region, opts->endpoint);
        c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60000;
        int r = -ENOMEM;
        if (aws_request_client_init(&c->rc, mux, &query_ops, &opts->retry, creds) < 0 ||
            !c->service || !c->name || !c->version || !c->sign_region || !c->url)
                goto fail;
        r = split_url(c->url, &c->host, &c->path);
        if (r < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        aws_query_client_free(c);
        return r;
}

int aws_query_client_set_creds(struct aws_query_client *c, const struct sigv4_creds *creds)
{
        return aws_request_client_set_creds(&c->rc, creds);
}

int aws_query_client_rotate_creds(struct aws_query_client *c, const char *profile)
{
        return aws_request_client_rotate_creds(&c->rc, profile);
}

int aws_query_client_set_sts(struct aws_query_client *c, const struct creds_sts *sts)
{
        return aws_request_client_set_sts(&c->rc, sts);
}

const char *aws_query_client_name(const struct aws_query_client *c)
{
        return c->name;
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
        r->cb = *cb;
        snprintf(r->action, sizeof(r->action), "%s", action);
        r->body = aws_query_body(action, c->version, params);
        r->body_len = r->body ? strlen(r->body) : 0;
        if (!r->body || aws_request_init(&r->rq, &c->rc, cb->tag, "%s %s", c->name, action) < 0) {
                if (r->body)
                        memset(r->body, 0, r->body_len);
                free(r->body);
                free(r);
                return -ENOMEM;
        }
        sigv4_sha256_hex(r->body, r->body_len, r->payload_hash);
        if (ret)
                *ret = r;
        aws_request_start(&r->rq);
        return 0;
}

void aws_query_cancel(struct aws_query_req *r)
{
        if (r)
                aws_request_cancel(&r->rq);
}

unsigned aws_query_cancel_tag(struct aws_query_client *c, const void *tag)
{
        return aws_request_cancel_tag(&c->rc, tag);
}
