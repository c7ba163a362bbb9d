/* sts.h - the two STS calls the credential chain makes, as pure pieces.
 *
 * A profile with role_arn (AssumeRole, signed with the source profile's
 * credentials) and web identity (AssumeRoleWithWebIdentity, unsigned: the
 * token file is the proof) both end in an STS query-protocol POST and an
 * XML reply holding temporary credentials.  This module builds the request
 * (URL, headers, form body) and reads the reply; creds.c runs it, blocking,
 * on the thread pool (see creds_resolve_chain).  No I/O, no logging.
 *
 * Secrets: the request's headers carry the source session token and its
 * body the web identity token; the reply carries the new secret key and
 * token.  Errors never quote any of them. */
#pragma once
#include <stddef.h>
#include <time.h>

#include "aws/sigv4.h"

#define STS_MAX_HEADERS 6

/* One STS request: POST url with headers ("Name: value" lines) and body
 * (application/x-www-form-urlencoded).  Everything malloc'ed and owned. */
struct sts_req {
        char *url;
        char *body;
        char *headers[STS_MAX_HEADERS];
        size_t nheaders;
};
void sts_req_clear(struct sts_req *r);

/* What to assume.  role_session_name NULL: "etld-<unix time>";
 * duration_s 0: the service's default (one hour). */
struct sts_role {
        const char *role_arn;
        const char *role_session_name;
        const char *external_id; /* AssumeRole only; NULL: none */
        long duration_s;
};

/* endpoint "https://sts.us-west-2.amazonaws.com" or "http://127.0.0.1:5000"
 * (a path after the host is kept).  0, -EINVAL (bad endpoint or role; err
 * says which) or -ENOMEM. */
int sts_assume_role_req(const char *endpoint, const char *region, const struct sts_role *role,
                        const struct sigv4_creds *source, time_t now, struct sts_req *out,
                        char *err, size_t errlen) __attribute__((warn_unused_result));
int sts_web_identity_req(const char *endpoint, const struct sts_role *role, const char *token,
                         time_t now, struct sts_req *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The reply (status: its HTTP status): 0 with *out (expiration set), or
 * -EACCES (an STS error: err "STS AssumeRole: AccessDenied: message"),
 * -EBADMSG (not an STS reply).  action names the call in err. */
int sts_parse_reply(const char *action, long status, const char *body, size_t len,
                    struct sigv4_creds *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* An ISO 8601 UTC time as STS, IMDS and credential processes write it
 * ("2024-05-17T15:09:54Z", fractions and "+00:00" allowed): 0 with *ret,
 * -EINVAL. */
int sts_parse_time(const char *s, time_t *ret);
