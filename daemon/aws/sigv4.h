/* sigv4.h - AWS Signature Version 4 request signing (OpenSSL libcrypto).
 *
 * Pure code: no sockets, no event loop, no logging.  The caller describes a
 * request with its *raw* path and *raw* query parameters; sigv4 encodes them
 * exactly as the spec says, signs, and hands back the encoded path and query
 * to put on the wire, so what is sent is what was signed.
 *
 *   struct sigv4_param q[] = { { "list-type", "2" }, { "prefix", "song_data/A" } };
 *   struct sigv4_request r = {
 *           .method = "GET", .host = "bucket.s3.us-west-2.amazonaws.com",
 *           .path = "/", .params = q, .nparams = 2,
 *           .payload_sha256_hex = SIGV4_EMPTY_SHA256,
 *           .region = "us-west-2", .service = "s3", .now = time(NULL),
 *   };
 *   struct sigv4_signed s;
 *   if (sigv4_sign(&r, &creds, &s, err, sizeof(err)) < 0) ...
 *   url = "https://" host + s.path + (s.query[0] ? "?" + s.query : "")
 *   for (i < s.nheaders) add "s.headers[i].name: s.headers[i].value"
 *   sigv4_signed_clear(&s);
 *
 * Service rules: for "s3" (and "s3-outposts", "s3express") the path is encoded
 * once and never normalized, and x-amz-content-sha256 is always signed; for
 * every other service the canonical path is the wire path normalized ("." and
 * ".." segments, "//" runs removed) and encoded a second time, as botocore's
 * SigV4Auth and aws-c-auth do.
 *
 * Secrets: the Authorization value holds no secret, but the signed result's
 * X-Amz-Security-Token header and canonical_request carry the session token.
 * Never log headers or canonical requests above debug, and never a token.
 */
#ifndef ETLD_AWS_SIGV4_H
#define ETLD_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* SHA-256 of the empty string, the payload hash of a request without body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Payload hash for S3 requests whose body is not hashed (streamed uploads over TLS). */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* An extra header to sign (and send): content-type, range, x-amz-copy-source...
 * The name in any case; the value as sent (sigv4 trims and folds spaces only
 * in the canonical form).  Do not pass Host, X-Amz-Date, Authorization,
 * X-Amz-Security-Token or X-Amz-Content-Sha256: sigv4 adds those itself. */
struct sigv4_header {
        const char *name;
        const char *value;
};

/* A query parameter, raw (not percent-encoded).  value NULL or "" both mean
 * an empty value: "?delete" is signed and sent as "delete=". */
struct sigv4_param {
        const char *name;
        const char *value;
};

/* Flags of struct sigv4_request. */
enum {
        /* path is already percent-encoded as it goes on the wire (the AWS test
         * suite's requests are); sigv4 then does not encode it again for the
         * wire, only (non-S3) for the canonical form. */
        SIGV4_PATH_ENCODED = 1 << 0,
        /* non-S3 services: also sign x-amz-content-sha256 (S3 always does). */
        SIGV4_SIGN_CONTENT_SHA256 = 1 << 1,
        /* non-S3 services: do not normalize the path (S3 never does). */
        SIGV4_NO_NORMALIZE = 1 << 2,
};

/* The request to sign.  Everything is borrowed for the duration of the call. */
struct sigv4_request {
        const char *method;                     /* "GET" */
        const char *host;                       /* host[:port] exactly as sent in Host */
        const char *path;                       /* raw path "/key with spaces/ሴ"; NULL or "" = "/" */
        const struct sigv4_param *params;       /* raw query parameters, any order */
        size_t nparams;
        const struct sigv4_header *headers;     /* extra headers to sign */
        size_t nheaders;
        const char *payload_sha256_hex;         /* lowercase hex, or SIGV4_UNSIGNED_PAYLOAD; NULL = empty body */
        const char *region;                     /* "us-west-2" */
        const char *service;                    /* "s3", "iam", "sts", "ec2", "redshift" */
        time_t now;                             /* signing time (UTC seconds) */
        unsigned flags;                         /* SIGV4_* above, normally 0 */
};

/* Credentials.  Each string is owned by the struct (malloc'ed); clear it with
 * sigv4_creds_clear(), which wipes the secrets before freeing them. */
struct sigv4_creds {
        char *access_key_id;
        char *secret_access_key;
        char *session_token;                    /* NULL when none */
        time_t expiration;                      /* 0 = does not expire (IMDS ones do) */
};

/* A header to add to the request: name is a static string, value is owned by
 * the struct sigv4_signed it belongs to. */
struct sigv4_out_header {
        const char *name;
        char *value;
};

#define SIGV4_MAX_OUT_HEADERS 4

/* The result of signing; everything is owned by it until sigv4_signed_clear(). */
struct sigv4_signed {
        char *path;             /* encoded path for the request line: "/key%20with%20spaces/%E1%88%B4" */
        char *query;            /* encoded, sorted query without '?', "" when none */
        /* In header mode, in this order: X-Amz-Date, X-Amz-Content-Sha256 (when
         * signed), X-Amz-Security-Token (when a token), Authorization.  In
         * presign mode: none (everything is in query). */
        struct sigv4_out_header headers[SIGV4_MAX_OUT_HEADERS];
        size_t nheaders;
        char *authorization;    /* = the Authorization value (alias into headers; header mode) */
        char amz_date[17];      /* "20130524T000000Z" */
        char signature[65];     /* lowercase hex */
        char *canonical_request; /* for tests and debug: may hold the session token */
        char *string_to_sign;
};

/* Sign req with creds into *out (header mode).  Returns 0, or -EINVAL (a
 * missing field, a header that sigv4 owns, bad time) or -ENOMEM with a
 * sentence in err that never contains a secret.  On error *out is empty (safe
 * to clear).  Thread-safe; no I/O. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_creds *creds,
               struct sigv4_signed *out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Presign req (query-string authentication, "presigned URL"): the X-Amz-*
 * parameters, X-Amz-Expires=expires_s and finally X-Amz-Signature go in
 * out->query; only host and req->headers are signed; out->nheaders is 0.
 * The payload hash is req->payload_sha256_hex (use SIGV4_UNSIGNED_PAYLOAD for
 * S3 presigned URLs).  Same errors as sigv4_sign, and -EINVAL for a
 * parameter of req named like one of those X-Amz-* (any case). */
int sigv4_presign(const struct sigv4_request *req, const struct sigv4_creds *creds,
                  unsigned expires_s, struct sigv4_signed *out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Free what out holds; leaves it zeroed.  NULL is a no-op. */
void sigv4_signed_clear(struct sigv4_signed *out);

/* Lowercase hex SHA-256 of data. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* Incremental SHA-256 for streamed bodies: init, update any number of times,
 * final writes lowercase hex and frees.  Returns NULL on allocation failure. */
struct sigv4_sha256;
struct sigv4_sha256 *sigv4_sha256_new(void);
void sigv4_sha256_update(struct sigv4_sha256 *h, const void *data, size_t len);
void sigv4_sha256_final(struct sigv4_sha256 *h, char out[65]);   /* frees h */

/* Percent-encode src per SigV4 (RFC 3986 unreserved A-Z a-z 0-9 - _ . ~ kept,
 * every other byte %XX uppercase); '/' kept when keep_slash.  Returns a
 * malloc'ed string or NULL.  S3 keys in URLs: sigv4_uri_encode(key, true). */
char *sigv4_uri_encode(const char *src, bool keep_slash);

/* Is service one of S3's (single encoding, no normalization, content sha)? */
bool sigv4_service_is_s3(const char *service);

/* Deep copy of src into dst (dst is overwritten, not cleared).  0 or -ENOMEM. */
int sigv4_creds_copy(struct sigv4_creds *dst, const struct sigv4_creds *src);

/* Wipe a secret string (a key, a token, a body holding one) and free it.
 * NULL is a no-op. */
void sigv4_secret_free(char *s);

/* Wipe and free the strings of c and zero it.  NULL is a no-op. */
void sigv4_creds_clear(struct sigv4_creds *c);

#endif
