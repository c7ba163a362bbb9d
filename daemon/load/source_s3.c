/* source_s3.c - the s3:// scheme of the COPY sources, on the loop: a listing
 * is ListObjectsV2 page after page (continuation tokens), then sorted; a
 * read is one streamed GetObject whose body callback is the consumer's data
 * callback (SOURCE_PAUSE pauses the transfer, source_read_resume resumes
 * it), and whose done is the reader's end.  A transfer cut mid-body is
 * resumed by the S3 client itself (Range from the first byte not delivered,
 * If-Match on the ETag), so the consumer sees each byte once.  Cancel is
 * s3_req_cancel of the outstanding request.  See source_s3.h. */
#include "load/source_s3.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/source_scheme.h"

struct source_ctx {
        struct s3_client *s3;
        const void *tag;
        bool cancelled;
};

int source_s3_ctx_new(struct s3_client *client, const void *tag, struct source_ctx **ret)
{
        struct source_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->s3 = client;
        ctx->tag = tag;
        *ret = ctx;
        return 0;
}

void source_s3_ctx_cancel(struct source_ctx *ctx)
{
        if (!ctx)
                return;
        ctx->cancelled = true;
        s3_cancel_tag(ctx->s3, ctx->tag);
}

void source_s3_ctx_free(struct source_ctx *ctx)
{
        free(ctx);
}

int source_s3_parse(const char *uri, char **bucket, char **prefix)
{
        if (strncmp(uri, "s3://", 5) != 0)
                return -EINVAL;
        const char *b = uri + 5;
        const char *slash = strchr(b, '/');
        size_t bl = slash ? (size_t)(slash - b) : strlen(b);
        if (bl == 0 || bl > 63)
                return -EINVAL;
        *bucket = strndup(b, bl);
        *prefix = strdup(slash ? slash + 1 : "");
        if (!*bucket || !*prefix) {
                free(*bucket);
                free(*prefix);
                *bucket = *prefix = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* The scheme's state of a source. */
struct s3_source {
        const struct source_ctx *ctx;
        char *bucket;
};

static const struct s3_source *q_of(const struct source *s)
{
        return s->impl;
}

static int s3_open(struct source *s, char *err, size_t errlen)
{
        if (!s->env.ctx) {
                snprintf(err, errlen,
                         "'%s': s3:// sources are read through etld's S3 client, which this "
                         "caller did not pass",
                         s->uri);
                return -EPROTONOSUPPORT;
        }
        struct s3_source *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        s->impl = q;
        q->ctx = s->env.ctx;
        int r = source_s3_parse(s->uri, &q->bucket, &s->prefix);
        if (r == -EINVAL)
                snprintf(err, errlen, "source '%s' is not s3://BUCKET/PREFIX", s->uri);
        return r;
}

static void s3_free(struct source *s)
{
        struct s3_source *q = s->impl;
        if (q)
                free(q->bucket);
        free(q);
}

/* ---- listing ---- */

struct s3_listing {
        struct source_listing *l;
        struct s3_req *req; /* the page in flight */
        struct source_object *objs;
        size_t n, cap;
};

static int list_page(struct s3_listing *sl, const char *token);

static void list_finish(struct s3_listing *sl, int err, const char *msg)
{
        struct source_listing *l = sl->l;
        l->impl = NULL;
        if (err == 0)
                source_objects_sort(sl->objs, sl->n);
        source_listing_done(l, err, msg, sl->objs, sl->n);
        free(sl);
}

static void list_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        (void)req;
        struct s3_listing *sl = ud;
        const struct source *s = sl->l->s;
        const struct s3_source *q = q_of(s);
        char msg[1200];
        sl->req = NULL;
        if (res->err < 0) {
                snprintf(msg, sizeof(msg), "cannot list '%s': %s", s->uri,
                         res->msg[0] ? res->msg : strerror(-res->err));
                list_finish(sl, res->err, msg);
                return;
        }
        struct s3_list_page *p = s3_result_take_page(res);
        int r = p ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < p->n; i++) {
                struct s3_object *o = &p->objects[i];
                char *uri = NULL;
                if (asprintf(&uri, "s3://%s/%s", q->bucket, o->key) < 0)
                        uri = NULL;
                r = source_objects_push(&sl->objs, &sl->n, &sl->cap, o->key, uri,
                                        o->size > 0 ? (uint64_t)o->size : 0, o->etag);
                o->key = NULL;
                o->etag = NULL;
        }
        if (r == 0 && p->truncated && p->next_token) {
                if (sl->l->cancelled)
                        r = -ECANCELED;
                else
                        r = list_page(sl, p->next_token);
                if (r == 0) {
                        s3_list_page_free(p);
                        return;
                }
        }
        s3_list_page_free(p);
        if (r < 0)
                snprintf(msg, sizeof(msg), "cannot list '%s': %s", s->uri, strerror(-r));
        list_finish(sl, r, r < 0 ? msg : NULL);
}

static int list_page(struct s3_listing *sl, const char *token)
{
        const struct source *s = sl->l->s;
        const struct s3_source *q = q_of(s);
        if (q->ctx->cancelled)
                return -ECANCELED;
        struct s3_cb cb = {.done = list_done, .ud = sl, .tag = q->ctx->tag};
        return s3_list_objects(q->ctx->s3, q->bucket, s->prefix, token, 0, NULL, &cb, &sl->req);
}

static int s3_list(struct source_listing *l)
{
        struct s3_listing *sl = calloc(1, sizeof(*sl));
        if (!sl)
                return -ENOMEM;
        sl->l = l;
        l->impl = sl;
        int r = list_page(sl, NULL);
        if (r < 0) {
                l->impl = NULL;
                free(sl);
        }
        return r;
}

static void s3_list_cancel(struct source_listing *l)
{
        struct s3_listing *sl = l->impl;
        if (sl && sl->req)
                s3_req_cancel(sl->req); /* list_done comes, now or soon */
}

/* ---- reads ---- */

struct s3_read {
        struct source_read *rd;
        struct s3_req *req; /* NULL once done */
        bool paused;
};

static int read_body(struct s3_req *req, const char *data, size_t len, void *ud)
{
        (void)req;
        struct s3_read *sr = ud;
        int r = source_read_deliver(sr->rd, data, len);
        if (r == SOURCE_PAUSE) {
                sr->paused = true;
                return S3_PAUSE;
        }
        return r; /* 0, or -ECANCELED: fails the request */
}

static void read_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        (void)req;
        struct s3_read *sr = ud;
        struct source_read *rd = sr->rd;
        rd->impl = NULL;
        free(sr);
        char msg[1200] = "";
        if (res->err < 0 && res->msg[0])
                snprintf(msg, sizeof(msg), "%s", res->msg);
        else if (res->err < 0)
                snprintf(msg, sizeof(msg), "cannot read '%s': %s", rd->obj.uri,
                         strerror(-res->err));
        source_read_done(rd, res->err, msg);
}

static int s3_read(struct source_read *rd)
{
        const struct s3_source *q = q_of(rd->s);
        if (q->ctx->cancelled)
                return -ECANCELED;
        struct s3_read *sr = calloc(1, sizeof(*sr));
        if (!sr)
                return -ENOMEM;
        sr->rd = rd;
        rd->impl = sr;
        struct s3_get_opts o = {.on_body = read_body};
        struct s3_cb cb = {.done = read_done, .ud = sr, .tag = q->ctx->tag};
        int r = s3_get_object(q->ctx->s3, q->bucket, rd->obj.key, &o, &cb, &sr->req);
        if (r < 0) {
                rd->impl = NULL;
                free(sr);
        }
        return r;
}

static void s3_resume(struct source_read *rd)
{
        struct s3_read *sr = rd->impl;
        if (sr && sr->paused && sr->req) {
                sr->paused = false;
                s3_req_resume(sr->req);
        }
}

static void s3_read_cancel(struct source_read *rd)
{
        struct s3_read *sr = rd->impl;
        if (sr && sr->req)
                s3_req_cancel(sr->req); /* read_done comes, now or soon */
}

const struct source_scheme source_s3_scheme = {
    .scheme = "s3://",
    .open = s3_open,
    .free = s3_free,
    .list = s3_list,
    .list_cancel = s3_list_cancel,
    .read = s3_read,
    .resume = s3_resume,
    .read_cancel = s3_read_cancel,
};
