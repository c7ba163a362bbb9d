/* request.h - one signed and retried AWS request on the HTTP engine: what
 * the S3 client (s3.c) and the query-protocol client (query.c) have in
 * common, so that each of them only says what is particular to its service.
 * Only those two call it; the rest of etld uses s3.h and query.h, whose
 * request handles are the structs that embed a struct aws_request here
 * (valid until their done() returns).
 *
 * Lifecycle of a request (loop thread only):
 *   aws_request_init    the caller embeds a struct aws_request in its own
 *                       request and describes it (what it is, for messages);
 *   aws_request_start   links it into its client and makes the first try from
 *                       the loop, so done() never runs inside the caller's call;
 *   each try            ops->prepare says what to sign and send (method, host,
 *                       path, query, headers, payload hash, region, URL, body);
 *                       the layer signs it with the client's current
 *                       credentials (SigV4, anew each try) and submits it on
 *                       the HTTP engine;
 *   each reply          a transport failure or a refusal is classified: sent
 *                       again after a capped exponential backoff with full
 *                       jitter (Retry-After is a floor) while tries remain;
 *                       refused credentials (ExpiredToken, InvalidAccessKeyId,
 *                       InvalidToken...) are resolved again once (rotate.h);
 *                       a 2xx goes to ops->on_reply, a refusal first to
 *                       ops->on_refusal (S3's region redirects);
 *   the end             ops->done(rq, err) runs exactly once (also when
 *                       cancelled: -ECANCELED); the caller copies the outcome
 *                       into its public result (aws_request_outcome) and calls
 *                       its user; then the request's timer is closed and
 *                       ops->release frees the caller's struct.
 * aws_request_cancel ends one request, aws_request_cancel_tag every request
 * of a client with that tag (a job), aws_request_client_clear all of them.
 *
 * The sentence of a failure is "WHAT: DETAIL", WHAT given at init ("S3
 * GetObject s3://b/k", "IAM GetRole"), DETAIL e.g. "403 AccessDenied: Access
 * Denied (request id 4442587FB7D0A2F9)", "connection refused (...), giving up
 * after 6 attempts" or "cancelled" (a request cancelled while it waits to
 * be tried again keeps the sentence of the failure that made it wait).
 *
 * The struct members below are the layer's; callers read `x` (the current
 * transfer), `aws`, `status`, `msg`, `request_id` and `cancelled`, and set
 * the body fields of `x` in ops->prepare. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "aws/http.h"
#include "aws/rotate.h"
#include "aws/sigv4.h"
#include "aws/xml.h"

struct aws_request;

/* What one try sends, filled by ops->prepare; everything borrowed until
 * prepare is called again or the request is released. */
struct aws_try {
        struct sigv4_request sign; /* all but .now (the layer sets it) */
        const char *base;          /* URL = base + signed path + "?" + signed query, */
        const char *url;           /* or this URL as it is when base is NULL */
};

/* A service's part of a request (one static table per client). */
struct aws_request_ops {
        const char *request_id_header; /* looked at first; the other AWS spelling next */
        bool wipe;                     /* replies may carry secrets: wiped before freed */
        /* Fill *t and the body fields of rq->x (they start as "no body"):
         * 0, or -errno after aws_request_say (the request fails with it). */
        int (*prepare)(struct aws_request *rq, struct aws_try *t);
        /* A 2xx reply: true when the caller completed the request or sent it
         * again; false when the reply is a refusal after all (rq->aws filled). */
        bool (*on_reply)(struct aws_request *rq);
        /* A refusal, rq->aws filled: true when the caller took care of it
         * (a redirect); NULL or false: the layer retries or fails it. */
        bool (*on_refusal)(struct aws_request *rq);
        /* AWS code for a refusal without an error body; NULL: "Http<status>". */
        const char *(*status_code)(long status);
        void (*done)(struct aws_request *rq, int err);
        void (*release)(struct aws_request *rq); /* frees the caller's struct */
};

/* The part of a client every request of it shares: embed it. */
struct aws_request_client {
        struct http_mux *mux;
        uv_loop_t *loop;
        const struct aws_request_ops *ops;
        struct http_retry_policy retry;
        struct sigv4_creds creds;
        struct creds_rotor rotor; /* credentials rotated during a job */
        struct aws_request *head; /* requests not yet done */
        uint64_t rng;             /* backoff jitter */
};

struct aws_request {
        struct aws_request_client *c; /* may be freed before the request's memory */
        const struct aws_request_ops *ops;
        struct aws_request *prev, *next;
        const void *tag;
        char *what; /* "S3 GetObject s3://b/k": the subject of messages */
        struct http_xfer x;
        char *url;
        struct curl_slist *hlist; /* one allocation */
        uv_timer_t timer;         /* first try, backoff; its close frees the request */
        unsigned attempt;         /* tries made, this one included */
        struct creds_try creds_try;
        long status;          /* of the last reply, 0: none */
        struct aws_error aws; /* aws.code[0] != 0 when the service refused */
        char msg[1024];       /* the failure as a sentence */
        char request_id[128]; /* of the last reply */
        bool cancelled, finished;
};

/* retry zero or NULL: HTTP_RETRY_DEFAULT; creds may be NULL.  0 or -ENOMEM
 * (then clear it anyway). */
int aws_request_client_init(struct aws_request_client *c, struct http_mux *mux,
                            const struct aws_request_ops *ops,
                            const struct http_retry_policy *retry, const struct sigv4_creds *creds);
/* Cancels every request (done() gets -ECANCELED) and drops the credentials.
 * Safe on a zeroed or half-initialised struct. */
void aws_request_client_clear(struct aws_request_client *c);
/* Later tries are signed with creds (copied).  -ENOMEM. */
int aws_request_client_set_creds(struct aws_request_client *c, const struct sigv4_creds *creds);
/* Refused credentials resolve the chain of profile again (rotate.h). */
int aws_request_client_rotate_creds(struct aws_request_client *c, const char *profile);
/* ...with the chain's STS calls at sts (creds_rotor_set_sts).  -ENOMEM. */
int aws_request_client_set_sts(struct aws_request_client *c, const struct creds_sts *sts);
/* Cancels every request of c with this tag; returns how many. */
unsigned aws_request_cancel_tag(struct aws_request_client *c, const void *tag);

/* Describes a request of c (the caller's struct zeroed); what_fmt names it.
 * 0 or -ENOMEM; after 0 it is either started or discarded. */
int aws_request_init(struct aws_request *rq, struct aws_request_client *c, const void *tag,
                     const char *what_fmt, ...) __attribute__((format(printf, 4, 5)));
/* Starts it (first try from the loop). */
void aws_request_start(struct aws_request *rq);
/* Releases a request that was never started: no done(). */
void aws_request_discard(struct aws_request *rq);
/* Ends it with -ECANCELED; done() may run before this returns. */
void aws_request_cancel(struct aws_request *rq);

/* ---- for the service's callbacks ---- */

/* msg = "WHAT: " + the formatted detail. */
void aws_request_say(struct aws_request *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* msg = "WHAT: STATUS CODE: MESSAGE (request id ID)" from rq->aws. */
void aws_request_say_refusal(struct aws_request *rq);
/* Ends the request with err (0: success): done(), then release. */
void aws_request_complete(struct aws_request *rq, int err);
/* Tries again after a backoff if tries remain, else fails with err and
 * msg + ", giving up after N attempts".  retry_after_ms < 0: none. */
void aws_request_retry(struct aws_request *rq, int err, int64_t retry_after_ms);
/* Sends it again now, not counting the try that led here (a redirect). */
void aws_request_redo(struct aws_request *rq);
/* Sends it again now as a new operation: tries are counted from zero (the
 * next batch of a DeleteObjects, the HeadBucket after a CreateBucket). */
void aws_request_restart(struct aws_request *rq);
/* -ENOENT for 404, -EACCES for 403, -EREMOTEIO for other refusals. */
int aws_request_status_err(long status);
/* Copies the outcome for a service's public result. */
void aws_request_outcome(const struct aws_request *rq, long *status, unsigned *attempts,
                         struct aws_error *aws, char msg[1024], char request_id[128]);
