/* source_s3.c - s3:// COPY sources: the loop bridge and the scheme.  See
 * source_s3.h. */
#include "load/source_s3.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_BUFFER (256 * 1024)

/* ---- the bridge: run a call on the loop and wait for it ---- */

struct call {
        struct call *next;
        struct source_ctx *ctx;
        void (*run)(struct call *c); /* on the loop; ends with complete() */
        bool done;
        int result;
        char msg[1024];
        const char *bucket, *prefix, *token, *key;
        struct s3_list_page *page;
        struct s3_stream *stream;
};

struct source_ctx {
        uv_loop_t *loop;
        struct s3_client *s3;
        const void *tag;
        uv_async_t async;
        uv_mutex_t mu;
        uv_cond_t cond;
        struct call *head, *tail; /* queued by workers */
        bool cancelled;
};

/* Loop thread.  The waiting worker owns c again once done is set. */
static void complete(struct call *c, int result, const char *msg)
{
        struct source_ctx *ctx = c->ctx;
        uv_mutex_lock(&ctx->mu);
        c->result = result;
        if (msg)
                snprintf(c->msg, sizeof(c->msg), "%s", msg);
        c->done = true;
        uv_cond_broadcast(&ctx->cond);
        uv_mutex_unlock(&ctx->mu);
}

static void on_async(uv_async_t *a)
{
        struct source_ctx *ctx = a->data;
        uv_mutex_lock(&ctx->mu);
        struct call *c = ctx->head;
        ctx->head = ctx->tail = NULL;
        bool cancelled = ctx->cancelled;
        uv_mutex_unlock(&ctx->mu);
        while (c) {
                struct call *next = c->next;
                if (cancelled)
                        complete(c, -ECANCELED, "cancelled");
                else
                        c->run(c);
                c = next;
        }
}

/* Worker thread: queues c, wakes the loop, waits until c ran. */
static int call_on_loop(struct source_ctx *ctx, struct call *c)
{
        c->ctx = ctx;
        c->next = NULL;
        c->done = false;
        uv_mutex_lock(&ctx->mu);
        if (ctx->cancelled) {
                uv_mutex_unlock(&ctx->mu);
                snprintf(c->msg, sizeof(c->msg), "cancelled");
                return -ECANCELED;
        }
        if (ctx->tail)
                ctx->tail->next = c;
        else
                ctx->head = c;
        ctx->tail = c;
        uv_async_send(&ctx->async);
        while (!c->done)
                uv_cond_wait(&ctx->cond, &ctx->mu);
        uv_mutex_unlock(&ctx->mu);
        return c->result;
}

int source_s3_ctx_new(uv_loop_t *loop, struct s3_client *client, const void *tag,
                      struct source_ctx **ret)
{
        struct source_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->loop = loop;
        ctx->s3 = client;
        ctx->tag = tag;
        if (uv_mutex_init(&ctx->mu) < 0) {
                free(ctx);
                return -ENOMEM;
        }
        if (uv_cond_init(&ctx->cond) < 0) {
                uv_mutex_destroy(&ctx->mu);
                free(ctx);
                return -ENOMEM;
        }
        int r = uv_async_init(loop, &ctx->async, on_async);
        if (r < 0) {
                uv_cond_destroy(&ctx->cond);
                uv_mutex_destroy(&ctx->mu);
                free(ctx);
                return r;
        }
        ctx->async.data = ctx;
        *ret = ctx;
        return 0;
}

void source_s3_ctx_cancel(struct source_ctx *ctx)
{
        if (!ctx)
                return;
        uv_mutex_lock(&ctx->mu);
        ctx->cancelled = true;
        uv_mutex_unlock(&ctx->mu);
        s3_cancel_tag(ctx->s3, ctx->tag);
}

static void ctx_closed(uv_handle_t *h)
{
        struct source_ctx *ctx = h->data;
        uv_cond_destroy(&ctx->cond);
        uv_mutex_destroy(&ctx->mu);
        free(ctx);
}

void source_s3_ctx_free(struct source_ctx *ctx)
{
        if (!ctx)
                return;
        /* no worker is left; a call still queued cannot exist */
        uv_close((uv_handle_t *)&ctx->async, ctx_closed);
}

/* ---- the calls ---- */

static void list_cb(struct s3_req *req, const struct s3_result *res, void *ud)
{
        struct call *c = ud;
        if (res->err < 0) {
                complete(c, res->err, res->msg[0] ? res->msg : strerror(-res->err));
                return;
        }
        c->page = s3_result_take_page(res);
        complete(c, c->page ? 0 : -ENOMEM, c->page ? NULL : "out of memory");
}

static void run_list(struct call *c)
{
        struct s3_cb cb = { list_cb, c, c->ctx->tag };
        int r = s3_list_objects(c->ctx->s3, c->bucket, c->prefix, c->token, 0, NULL, &cb, NULL);
        if (r < 0)
                complete(c, r, strerror(-r));
}

static void run_open(struct call *c)
{
        int r = s3_stream_open(c->ctx->s3, c->bucket, c->key, 0, STREAM_BUFFER, c->ctx->tag,
                               &c->stream);
        complete(c, r, r < 0 ? strerror(-r) : NULL);
}

/* ---- the scheme ---- */

struct s3_source {
        struct source_ctx *ctx;
        char *bucket;
};

struct s3_reader {
        struct source_reader base; /* first */
        struct s3_stream *stream;
        char *uri;
};

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

static int s3_open(struct source *s, const struct source_ctx *ctx, char *err, size_t errlen)
{
        if (!ctx) {
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
        q->ctx = (struct source_ctx *)ctx; /* the bridge mutates only under its lock */
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

static int cmp_obj(const void *a, const void *b)
{
        return strcmp(((const struct source_object *)a)->key,
                      ((const struct source_object *)b)->key);
}

static int s3_list(struct source *s, struct source_object **ret, size_t *ret_n, char *err,
                   size_t errlen)
{
        struct s3_source *q = s->impl;
        struct source_object *objs = NULL;
        size_t n = 0, cap = 0;
        char *token = NULL;
        int r = 0;
        for (;;) {
                struct call c = { .run = run_list, .bucket = q->bucket, .prefix = s->prefix,
                                  .token = token };
                r = call_on_loop(q->ctx, &c);
                free(token);
                token = NULL;
                if (r < 0) {
                        snprintf(err, errlen, "cannot list '%s': %s", s->uri, c.msg);
                        break;
                }
                struct s3_list_page *p = c.page;
                for (size_t i = 0; r == 0 && i < p->n; i++) {
                        if (n == cap) {
                                size_t nc = cap ? 2 * cap : 256;
                                struct source_object *o = realloc(objs, nc * sizeof(*o));
                                if (!o) {
                                        r = -ENOMEM;
                                        break;
                                }
                                objs = o;
                                cap = nc;
                        }
                        struct source_object *o = &objs[n];
                        o->key = p->objects[i].key;
                        p->objects[i].key = NULL;
                        o->size = p->objects[i].size > 0 ? (uint64_t)p->objects[i].size : 0;
                        o->uri = NULL;
                        o->tag = p->objects[i].etag;
                        p->objects[i].etag = NULL;
                        if (o->key && asprintf(&o->uri, "s3://%s/%s", q->bucket, o->key) < 0)
                                o->uri = NULL;
                        if (!o->key || !o->uri) {
                                free(o->key);
                                free(o->uri);
                                free(o->tag);
                                r = -ENOMEM;
                                break;
                        }
                        n++;
                }
                if (r == 0 && p->truncated && p->next_token) {
                        token = strdup(p->next_token);
                        if (!token)
                                r = -ENOMEM;
                }
                bool more = r == 0 && token;
                s3_list_page_free(p);
                if (r == -ENOMEM)
                        snprintf(err, errlen, "out of memory listing '%s'", s->uri);
                if (!more)
                        break;
        }
        free(token);
        if (r < 0) {
                source_objects_free(objs, n);
                return r;
        }
        if (n)
                qsort(objs, n, sizeof(*objs), cmp_obj);
        *ret = objs;
        *ret_n = n;
        return 0;
}

static int s3_open_object(struct source *s, const struct source_object *obj,
                          struct source_reader **ret, char *err, size_t errlen)
{
        struct s3_source *q = s->impl;
        struct s3_reader *rd = calloc(1, sizeof(*rd));
        if (!rd || asprintf(&rd->uri, "s3://%s/%s", q->bucket, obj->key) < 0) {
                free(rd);
                snprintf(err, errlen, "out of memory opening '%s'", obj->uri);
                return -ENOMEM;
        }
        struct call c = { .run = run_open, .bucket = q->bucket, .key = obj->key };
        int r = call_on_loop(q->ctx, &c);
        if (r < 0) {
                snprintf(err, errlen, "cannot read '%s': %s", rd->uri, c.msg);
                free(rd->uri);
                free(rd);
                return r;
        }
        rd->stream = c.stream;
        *ret = &rd->base;
        return 0;
}

static ssize_t s3_read(struct source_reader *base, void *buf, size_t cap, char *err,
                       size_t errlen)
{
        struct s3_reader *rd = (struct s3_reader *)base;
        ssize_t n = s3_stream_read(rd->stream, buf, cap);
        if (n < 0) {
                char msg[1024] = "";
                s3_stream_error(rd->stream, msg, sizeof(msg));
                if (msg[0])
                        snprintf(err, errlen, "%s", msg);
                else
                        snprintf(err, errlen, "cannot read '%s': %s", rd->uri,
                                 strerror((int)-n));
        }
        return n;
}

static void s3_close(struct source_reader *base)
{
        struct s3_reader *rd = (struct s3_reader *)base;
        s3_stream_close(rd->stream); /* any thread; cancels an unfinished transfer */
        free(rd->uri);
        free(rd);
}

const struct source_ops source_s3_ops = {
        .scheme = "s3://",
        .open = s3_open,
        .free = s3_free,
        .list = s3_list,
        .open_object = s3_open_object,
        .read = s3_read,
        .close = s3_close,
};
