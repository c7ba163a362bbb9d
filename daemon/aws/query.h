/* query.h - the AWS query-protocol client (IAM, EC2, Redshift): form-encoded
 * POST requests built, signed (SigV4), sent on the HTTP engine, retried, and
 * their XML replies parsed.
 *
 *   struct aws_params p = {0};
 *   aws_params_add(&p, "RoleName", "etld-role");
 *   aws_query_call(iam, "GetRole", &p, &cb, &req);   // copies p
 *   aws_params_clear(&p);
 *   ...
 *   done(req, res, ud): res->err == 0: res->root is the reply's root element
 *                       (GetRoleResponse), read it with xml.h by local names;
 *                       else res->aws.code / message / request_id, res->msg.
 *
 * Services (struct aws_query_opts.service):
 *   "iam"      version 2010-05-08, global endpoint https://iam.amazonaws.com,
 *              always signed for us-east-1;
 *   "ec2"      version 2016-11-15, https://ec2.REGION.amazonaws.com;
 *   "redshift" version 2012-12-01, https://redshift.REGION.amazonaws.com.
 * An endpoint override (emulators) replaces the URL; IAM is still signed for
 * us-east-1.
 *
 * Every operation is asynchronous (loop thread) and ends with exactly one
 * call of cb->done, never inside aws_query_call itself; also when cancelled
 * (err = -ECANCELED).  Network errors, 5xx, 429 and throttling codes are
 * retried with capped exponential backoff and full jitter, every try signed
 * anew.  A refusal is err < 0 (-ENOENT for 404, -EACCES for 403, -EREMOTEIO
 * otherwise) with res->aws filled and res->msg a sentence:
 *   "EC2 CreateSecurityGroup: 400 InvalidGroup.Duplicate: The security group
 *    'x' already exists (request id 8f2...)"
 *
 * Pagination: res->next_token holds the reply's Marker / NextToken (empty at
 * the last page); send it back as the parameter named by
 * aws_query_token_param().
 *
 * Request bodies may carry secrets (Redshift's MasterUserPassword): they are
 * never logged, and their memory is wiped before it is freed. */
#pragma once
#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

#include "aws/creds.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "aws/xml.h"

struct aws_query_client;
struct aws_query_req;

/* A growable list of raw (not yet encoded) parameters; strings owned. */
struct aws_params {
        struct sigv4_param *v;
        size_t n, cap;
        bool oom; /* an add failed: aws_query_call refuses the list (-ENOMEM) */
};
void aws_params_add(struct aws_params *p, const char *name, const char *value);
/* name from a printf format, e.g. ("Filter.%d.Name", 1). */
void aws_params_addf(struct aws_params *p, const char *value, const char *name_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees (and wipes) the strings. */
void aws_params_clear(struct aws_params *p);

struct aws_query_opts {
        const char *service;            /* "iam", "ec2", "redshift" */
        const char *region;             /* ignored for iam (us-east-1) */
        const char *endpoint;           /* override, e.g. "http://127.0.0.1:5000"; NULL: AWS */
        struct http_retry_policy retry; /* zeroes: HTTP_RETRY_DEFAULT */
        long timeout_ms;                /* per try; 0: 60 s */
};

struct aws_query_result {
        int err;
        long status;           /* last HTTP status (0: none) */
        unsigned attempts;     /* tries made */
        struct aws_error aws;  /* aws.code[0] != 0 when the service refused */
        char msg[1024];        /* a sentence when err < 0 */
        char request_id[128];  /* of the last reply, also on success */
        xmlNode *root;         /* success: the reply's root element (valid in done) */
        char next_token[1024]; /* Marker / NextToken of the reply, "" when none */
};

typedef void (*aws_query_done_fn)(struct aws_query_req *req, const struct aws_query_result *res,
                                  void *ud);
struct aws_query_cb {
        aws_query_done_fn done;
        void *ud;
        const void *tag; /* for aws_query_cancel_tag() */
};

int aws_query_client_new(struct http_mux *mux, const struct aws_query_opts *opts,
                         const struct sigv4_creds *creds, struct aws_query_client **ret);
int aws_query_client_set_creds(struct aws_query_client *c, const struct sigv4_creds *creds);
/* As s3_client_rotate_creds: a call refused with ExpiredToken,
 * InvalidClientTokenId, InvalidAccessKeyId or InvalidToken resolves the
 * chain of profile again and is sent once more; a second refusal fails it. */
int aws_query_client_rotate_creds(struct aws_query_client *c, const char *profile);
/* As s3_client_set_sts: the chain resolved again asks STS at sts.  -ENOMEM. */
int aws_query_client_set_sts(struct aws_query_client *c, const struct creds_sts *sts);
/* Cancels what still runs (done() gets -ECANCELED), then frees.  NULL: no-op. */
void aws_query_client_free(struct aws_query_client *c);
/* "IAM", "EC2", "Redshift": for messages. */
const char *aws_query_client_name(const struct aws_query_client *c);

/* Starts Action=action with params (copied).  0, or -errno without done(). */
int aws_query_call(struct aws_query_client *c, const char *action, const struct aws_params *params,
                   const struct aws_query_cb *cb, struct aws_query_req **ret);
/* Ends the request with -ECANCELED (done() may run before this returns). */
void aws_query_cancel(struct aws_query_req *req);
unsigned aws_query_cancel_tag(struct aws_query_client *c, const void *tag);

/* ---- pure helpers (unit-tested) ---- */

/* The API version of a service, or NULL when unknown. */
const char *aws_query_version(const char *service);
/* The URL (malloc'ed) requests of a service go to: the override, else AWS's
 * endpoint for the region; NULL for an unknown service or ENOMEM. */
char *aws_query_endpoint(const char *service, const char *region, const char *override);
/* The region requests are signed for (us-east-1 for IAM). */
const char *aws_query_signing_region(const char *service, const char *region);
/* Action=..&Version=..&params, form-encoded (RFC 3986, as botocore does).
 * malloc'ed, NULL on ENOMEM. */
char *aws_query_body(const char *action, const char *version, const struct aws_params *p);
/* Marker, NextToken or nextToken anywhere in the reply's first three levels. */
bool aws_query_find_token(const xmlNode *root, char *buf, size_t size);
/* The parameter that carries a page token back: "Marker" (iam, redshift) or
 * "NextToken" (ec2). */
const char *aws_query_token_param(const char *service);
