/* s3.h - the S3 client: requests built, signed (SigV4), sent on the HTTP
 * engine, retried, and their XML replies read.
 *
 * Every operation is asynchronous, runs on the loop thread, and ends with
 * exactly one call of `cb->done` (also when cancelled: err = -ECANCELED).
 * An operation returns 0 and optionally the request handle in *ret (valid
 * until done() returns; use it for s3_req_cancel / s3_req_resume), or a
 * negative errno without calling done().
 *
 * Retries: network errors, 5xx, 429 and throttling codes are retried with
 * capped exponential backoff and full jitter (http_backoff_ms), honouring
 * Retry-After, up to `retry.max_attempts` tries; every try is signed anew.
 * A streamed GetObject that fails mid-body resumes with Range from the first
 * byte not yet delivered, with If-Match on the first reply's ETag, so the
 * consumer sees each byte exactly once.  S3 redirects to a bucket's region
 * (301 PermanentRedirect, 307, 400 AuthorizationHeaderMalformed carrying the
 * region, x-amz-bucket-region) switch the bucket to that region, remembered
 * per client, and the request is sent again.
 *
 * Addressing: virtual-hosted (bucket.s3.REGION.amazonaws.com) on AWS; path
 * style (ENDPOINT/bucket/key) when an endpoint override is set or the bucket
 * name is not DNS-compatible (dots, under TLS).
 *
 * Errors: a reply the service refused becomes err < 0 with res->aws filled
 * (code, message, request id) and res->msg a sentence naming the operation,
 * the object, the code, the message and the request id:
 *   "S3 GetObject s3://b/k: 403 SignatureDoesNotMatch: The request signature
 *    we calculated does not match ... (request id 4442587FB7D0A2F9)"
 * err is -ENOENT for 404, -EACCES for 403, -EREMOTEIO for any other refusal,
 * -ECANCELED, or a transport error (-ETIMEDOUT, -ECONNRESET, ...).
 *
 * A streamed GetObject (s3_get_opts.on_body) hands the body to the caller
 * on the loop thread as it arrives; the caller pauses the transfer by
 * returning S3_PAUSE and continues it with s3_req_resume. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "aws/creds.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "aws/xml.h"

struct s3_client;
struct s3_req;

#define S3_PAUSE HTTP_PAUSE
#define S3_DELETE_BATCH 1000

struct s3_client_opts {
        const char *region;             /* default region of buckets; NULL: us-east-1 */
        const char *endpoint;           /* override, e.g. "http://127.0.0.1:4569"; NULL: AWS */
        bool path_style;                /* path-style addressing (forced with an endpoint) */
        struct http_retry_policy retry; /* zeroes: HTTP_RETRY_DEFAULT */
};

struct s3_object {
        char *key;
        int64_t size;
        char *etag;          /* with its quotes, as S3 sends it */
        char *last_modified; /* ISO 8601 */
};

struct s3_list_page {
        struct s3_object *objects;
        size_t n;
        char **prefixes; /* CommonPrefixes (with a delimiter) */
        size_t nprefixes;
        bool truncated;
        char *next_token; /* NextContinuationToken, NULL when not truncated */
};

struct s3_object_info {
        int64_t size; /* Content-Length of the whole object; -1 unknown */
        char etag[128];
        char last_modified[64];
        char content_type[128];
};

struct s3_result {
        int err;
        long status;          /* last HTTP status (0: none) */
        unsigned attempts;    /* tries made */
        struct aws_error aws; /* aws.code[0] != 0 when the service refused */
        char msg[1024];       /* a sentence when err < 0 */
        char request_id[128]; /* of the last reply, also on success */

        struct s3_object_info info; /* HeadObject, GetObject, PutObject/CopyObject (etag) */
        struct s3_list_page *page;  /* ListObjectsV2: owned by the result; take it with
                                       s3_result_take_page() to keep it */
        const char *body;           /* buffered GetObject: the bytes (valid in done) */
        uint64_t bytes;             /* GetObject: body bytes delivered */
        char region[64];            /* HeadBucket: the bucket's region */
        bool already_existed;       /* CreateBucket: BucketAlreadyOwnedByYou */
        size_t deleted;             /* DeleteObjects: keys deleted */
        size_t delete_errors;       /* DeleteObjects: keys refused (first in msg) */
};

typedef void (*s3_done_fn)(struct s3_req *req, const struct s3_result *res, void *ud);
/* Streamed GetObject body: return 0 (consumed), S3_PAUSE (not consumed: the
 * same bytes come again after s3_req_resume), or -errno to fail the request. */
typedef int (*s3_body_fn)(struct s3_req *req, const char *data, size_t len, void *ud);

struct s3_cb {
        s3_done_fn done;
        void *ud;
        const void *tag; /* for s3_cancel_tag(), e.g. the job */
};

struct s3_get_opts {
        uint64_t offset;      /* first byte (Range) */
        int64_t length;       /* bytes from offset; <= 0: to the end */
        const char *if_match; /* ETag the object must still have, or NULL */
        s3_body_fn on_body;   /* NULL: buffer the body (at most max_body) */
        size_t max_body;      /* buffered mode limit (0: 16 MiB) */
};

/* Positional reader for streamed uploads: bytes at `off` into buf; returns
 * the count (0 only at the end) or -errno.  Called again from 0 on a retry. */
typedef long (*s3_read_fn)(void *ud, uint64_t off, char *buf, size_t len);

struct s3_put_opts {
        const void *data; /* in-memory body (borrowed until done) ... */
        size_t len;
        s3_read_fn read; /* ... or streamed (UNSIGNED-PAYLOAD) */
        void *read_ud;
        uint64_t read_len;
        const char *content_type;
};

int s3_client_new(struct http_mux *mux, const struct s3_client_opts *opts,
                  const struct sigv4_creds *creds, struct s3_client **ret);
/* Replaces the credentials (refreshed ones); later tries use them. */
int s3_client_set_creds(struct s3_client *c, const struct sigv4_creds *creds);
/* Credentials that change during a job (rotate.h): from now on a request
 * refused with ExpiredToken, InvalidAccessKeyId or InvalidToken resolves the
 * chain of `profile` (NULL/"": the default) again and is sent once more with
 * what it gives; a second refusal fails it.  -ENOMEM. */
int s3_client_rotate_creds(struct s3_client *c, const char *profile);
/* The chain resolved again asks STS at sts (etld.conf's place).  -ENOMEM. */
int s3_client_set_sts(struct s3_client *c, const struct creds_sts *sts);
/* Cancels what is still running (done() runs with -ECANCELED), then frees.
 * Safe with requests waiting in backoff.  NULL is a no-op. */
void s3_client_free(struct s3_client *c);

int s3_list_objects(struct s3_client *c, const char *bucket, const char *prefix,
                    const char *continuation_token, unsigned max_keys, const char *delimiter,
                    const struct s3_cb *cb, struct s3_req **ret);
int s3_head_object(struct s3_client *c, const char *bucket, const char *key, const struct s3_cb *cb,
                   struct s3_req **ret);
int s3_get_object(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_get_opts *o, const struct s3_cb *cb, struct s3_req **ret);
int s3_put_object(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_put_opts *o, const struct s3_cb *cb, struct s3_req **ret);
/* Server-side copy; the source may be in another region (S3 reads it). */
int s3_copy_object(struct s3_client *c, const char *src_bucket, const char *src_key,
                   const char *dst_bucket, const char *dst_key, const struct s3_cb *cb,
                   struct s3_req **ret);
/* region NULL: the client's.  Already owned by us is success (already_existed). */
int s3_create_bucket(struct s3_client *c, const char *bucket, const char *region,
                     const struct s3_cb *cb, struct s3_req **ret);
int s3_head_bucket(struct s3_client *c, const char *bucket, const struct s3_cb *cb,
                   struct s3_req **ret);
/* Deletes `keys` in batches of 1000 (copied; one request after another). */
int s3_delete_objects(struct s3_client *c, const char *bucket, const char *const *keys, size_t n,
                      const struct s3_cb *cb, struct s3_req **ret);
int s3_delete_bucket(struct s3_client *c, const char *bucket, const struct s3_cb *cb,
                     struct s3_req **ret);

/* Ends the request with -ECANCELED (done() may run before this returns). */
void s3_req_cancel(struct s3_req *req);
/* Continues a GetObject whose body callback returned S3_PAUSE. */
void s3_req_resume(struct s3_req *req);
/* Cancels every request of `c` started with this tag; returns how many. */
unsigned s3_cancel_tag(struct s3_client *c, const void *tag);

/* Moves the page out of a ListObjectsV2 result (NULL if none). */
struct s3_list_page *s3_result_take_page(const struct s3_result *res);
void s3_list_page_free(struct s3_list_page *p);

/* ---- pure helpers (unit-tested) ---- */

/* Where a request goes.  All malloc'ed.  base: "https://b.s3.eu-west-1.amazonaws.com"
 * or "http://127.0.0.1:4569"; host: the Host header value (host[:port]);
 * path: the raw (unencoded) path, "/key" or "/bucket/key" ("/" + "bucket" for
 * bucket operations with key NULL). */
struct s3_target {
        char *base;
        char *host;
        char *path;
};
int s3_target_build(const char *endpoint, bool path_style, const char *region, const char *bucket,
                    const char *key, struct s3_target *ret);
void s3_target_clear(struct s3_target *t);
/* Can the bucket be a DNS label under TLS (lowercase, digits, '-', no dots)? */
bool s3_bucket_virtual_ok(const char *bucket);

int s3_parse_list(const char *data, size_t len, struct s3_list_page **ret);
/* CopyObjectResult -> ETag; an <Error> body (S3 can send one with 200) fills
 * *aerr and returns -EREMOTEIO. */
int s3_parse_copy_result(const char *data, size_t len, char *etag, size_t etag_size,
                         struct aws_error *aerr);
/* DeleteResult: counts <Deleted>/<Error>; the first error into *first. */
int s3_parse_delete_result(const char *data, size_t len, size_t *deleted, size_t *errors,
                           struct aws_error *first);
/* <Delete><Quiet>true</Quiet><Object><Key>..</Key></Object>...</Delete> */
int s3_build_delete_body(const char *const *keys, size_t n, char **ret, size_t *ret_len);
/* CreateBucketConfiguration for `region`; *ret NULL (no body) for us-east-1. */
int s3_build_create_bucket_body(const char *region, char **ret, size_t *ret_len);
