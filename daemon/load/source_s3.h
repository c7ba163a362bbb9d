/* source_s3.h - the s3:// scheme of the COPY sources (source.h), and the
 * context it needs: an S3 client living on the daemon's loop, and a bridge
 * that lets the COPY's worker threads run S3 calls there and wait for them.
 *
 * The loader reads blocking, on libuv's thread pool; the S3 client (s3.h)
 * runs on the loop thread only.  So a worker that lists a prefix or opens an
 * object queues a call, wakes the loop (uv_async_send) and waits on a
 * condition variable until the loop has run it: ListObjectsV2 pages are
 * awaited whole; GetObject is started with s3_stream_open, whose bounded
 * buffer the worker then reads (s3_stream_read, any thread).  Memory per
 * object in flight is the stream buffer, whatever the object's size.
 *
 *     loop:    source_s3_ctx_new(loop, client, tag, &ctx);
 *              req.source_ctx = ctx;  uv_queue_work(... load_run(&req) ...)
 *     cancel:  source_s3_ctx_cancel(ctx);      (loop: in-flight calls end,
 *                                               later ones fail at once)
 *     after the work (loop): source_s3_ctx_free(ctx);
 *
 * `s3://bucket/prefix`: keys come whole (the S3 key) in byte order; the
 * object URIs are s3://bucket/key. */
#pragma once
#include <uv.h>

#include "aws/s3.h"
#include "load/source.h"

/* Loop thread.  The client must outlive the context; tag marks every
 * request (s3_cancel_tag). */
int source_s3_ctx_new(uv_loop_t *loop, struct s3_client *client, const void *tag,
                      struct source_ctx **ret);
/* Loop thread: cancels what runs and refuses what comes. */
void source_s3_ctx_cancel(struct source_ctx *ctx);
/* Loop thread, once no worker uses ctx any more.  NULL is a no-op. */
void source_s3_ctx_free(struct source_ctx *ctx);

/* Splits "s3://bucket/prefix": 0 with *bucket and *prefix malloc'ed
 * (prefix may be ""), or -EINVAL. */
int source_s3_parse(const char *uri, char **bucket, char **prefix);
