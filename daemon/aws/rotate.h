/* rotate.h - credentials that change while a job runs.
 *
 * A shared credentials file rewritten by a rotation tool, or an instance-role
 * token that expired, makes AWS refuse the credentials a step resolved when
 * it started (ExpiredToken, InvalidAccessKeyId, InvalidToken; the query APIs
 * also say InvalidClientTokenId, ExpiredTokenException).  The S3 and query
 * clients then resolve the credential chain again (creds_resolve_chain, on
 * libuv's pool: it reads files and may ask IMDS) and send the refused request
 * once more with what they get; a second refusal fails the request, hence
 * the step.  One resolution at a time per client: requests refused meanwhile
 * wait for it.
 *
 * Temporary credentials (a credential process's, an assumed role's, web
 * identity's, the container endpoint's, IMDS's) carry their expiration: a
 * request about to be signed with ones that expire within
 * CREDS_REFRESH_MARGIN_S resolves the chain again first
 * (creds_rotor_expiring), at most once a minute, so a source that keeps
 * handing out short-lived credentials is not asked before every request.
 *
 * Loop thread only (the resolution itself runs on the pool). */
#pragma once
#include <stdbool.h>
#include <time.h>
#include <uv.h>

#include "aws/creds.h"
#include "aws/sigv4.h"

/* Is this AWS error code a refusal of the credentials themselves? */
bool creds_refused(const char *aws_code);

struct creds_rotation;

/* Called on the loop: err 0 and the new credentials (copy them), or -errno
 * and msg a sentence (never a secret). */
typedef void (*creds_rotated_fn)(void *owner, int err, const struct sigv4_creds *creds,
                                 const char *source, const char *msg);

/* Resolves the chain for profile (NULL: the default) again; fn(owner, ...)
 * runs once on the loop, unless creds_rotation_abandon was called first.
 * NULL when it cannot start (out of memory). */
struct creds_rotation *creds_rotation_start(uv_loop_t *loop, const char *profile,
                                            creds_rotated_fn fn, void *owner);
/* The same with the chain's STS calls at sts (creds_resolve_chain_at;
 * NULL: the AWS conventions). */
struct creds_rotation *creds_rotation_start_at(uv_loop_t *loop, const char *profile,
                                               const struct creds_sts *sts, creds_rotated_fn fn,
                                               void *owner);
/* The owner goes away: fn will not run; the memory goes when the pool is done. */
void creds_rotation_abandon(struct creds_rotation *r);

/* What a client keeps (struct creds_rotor) and each of its requests (struct
 * creds_try), so that the S3 and query clients share one rule. */
struct creds_try;
/* Called for a waiting request once the resolution ended: err 0 (sign and
 * send it again) or -errno with msg (fail it, saying why). */
typedef void (*creds_resume_fn)(struct creds_try *t, int err, const char *msg);

struct creds_try {
        unsigned gen;  /* of the credentials the request was last signed with */
        bool retried;  /* it was refused once and went again */
        bool waiting;  /* on the rotor's list */
        struct creds_try *next;
        creds_resume_fn resume;
};

struct creds_rotor {
        bool on;                         /* creds_rotor_enable was called */
        char *profile;                   /* NULL: the default */
        char *sts_endpoint, *sts_region; /* creds_rotor_set_sts's, or NULL */
        uv_loop_t *loop;
        struct sigv4_creds *creds;       /* the client's, replaced by rotated ones */
        unsigned gen;                    /* bumped when rotated credentials arrive */
        struct creds_rotation *rotation; /* resolving the chain again, or NULL */
        struct creds_try *waiting;       /* requests waiting for it */
        time_t refreshed;                /* when an expiry last started a resolution */
};

/* From now on refusals of creds (the client's credentials, which the rotor
 * replaces) resolve the chain of profile again.  -ENOMEM. */
int creds_rotor_enable(struct creds_rotor *ro, uv_loop_t *loop, struct sigv4_creds *creds,
                       const char *profile);
/* The chain's STS calls go to sts from now on (copied).  -ENOMEM. */
int creds_rotor_set_sts(struct creds_rotor *ro, const struct creds_sts *sts);
/* Abandons a resolution in flight; the client cancels its waiting requests. */
void creds_rotor_clear(struct creds_rotor *ro);

enum creds_next {
        CREDS_NOT_MINE,   /* not a credentials refusal, or refused twice: go on as usual */
        CREDS_SEND_AGAIN, /* newer credentials are there already: sign and send now */
        CREDS_WAIT,       /* t waits: resume(t, ...) runs when the resolution ends */
};
/* A reply with aws_code came for a request signed per t: what next. */
enum creds_next creds_rotor_refused(struct creds_rotor *ro, struct creds_try *t,
                                    const char *aws_code, creds_resume_fn resume);
/* A request of t is about to be signed at now: CREDS_WAIT (resume(t, ...)
 * runs when the chain was resolved again; err < 0 then means the old
 * credentials are all there is) when the credentials expire within
 * CREDS_REFRESH_MARGIN_S, else CREDS_NOT_MINE: sign now. */
enum creds_next creds_rotor_expiring(struct creds_rotor *ro, struct creds_try *t, time_t now,
                                     creds_resume_fn resume);
/* A request that ends (cancelled) while it waits leaves the list. */
void creds_rotor_forget(struct creds_rotor *ro, struct creds_try *t);
