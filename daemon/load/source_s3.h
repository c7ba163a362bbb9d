/* source_s3.h - the s3:// scheme of the COPY sources (source.h), and the
 * context it needs: etld's S3 client (which lives on the loop) and the tag
 * its requests carry.
 *
 * A listing is a chain of ListObjectsV2 requests (continuation tokens),
 * gathered and sorted by key; a read is one streamed GetObject whose body
 * callback hands the bytes to the consumer and pauses the transfer when the
 * consumer says SOURCE_PAUSE.  Everything runs on the loop thread: there is
 * no thread or buffer between the S3 client and the consumer.
 *
 *     source_s3_ctx_new(client, job, &ctx);   env.ctx = ctx;
 *     source_s3_ctx_cancel(ctx);  // every request of the tag ends (-ECANCELED),
 *                                 // later listings and reads are refused
 *     source_s3_ctx_free(ctx);    // once no source uses it
 *
 * `s3://bucket/prefix`: keys come whole (the S3 key) in byte order; the
 * object URIs are s3://bucket/key, the tags the ETags. */
#pragma once
#include "aws/s3.h"
#include "load/source.h"

/* The client must outlive the context; tag marks every request
 * (s3_cancel_tag).  -ENOMEM. */
int source_s3_ctx_new(struct s3_client *client, const void *tag, struct source_ctx **ret);
/* Cancels the tag's requests and refuses later ones. */
void source_s3_ctx_cancel(struct source_ctx *ctx);
/* NULL is a no-op. */
void source_s3_ctx_free(struct source_ctx *ctx);

/* Splits "s3://bucket/prefix": 0 with *bucket and *prefix malloc'ed
 * (prefix may be ""), or -EINVAL. */
int source_s3_parse(const char *uri, char **bucket, char **prefix);
