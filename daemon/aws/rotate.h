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
 * Loop thread only (the resolution itself runs on the pool). */
#pragma once
#include <stdbool.h>
#include <uv.h>

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
/* The owner goes away: fn will not run; the memory goes when the pool is done. */
void creds_rotation_abandon(struct creds_rotation *r);

/* What a client keeps (struct creds_rotor) and each of its requests (struct
 * creds_try) so that the S3 and query clients share one rule. */
struct creds_rotor {
        bool on;                         /* creds_rotor_enable was called */
        char *profile;                   /* NULL: the default */
        unsigned gen;                    /* bumped when rotated credentials arrive */
        struct creds_rotation *rotation; /* resolving the chain again, or NULL */
};
struct creds_try {
        unsigned gen; /* of the credentials the request was last signed with */
        bool retried; /* it was refused once and went again */
        bool waiting; /* for the rotor's resolution */
};

int creds_rotor_enable(struct creds_rotor *ro, const char *profile); /* -ENOMEM */
void creds_rotor_clear(struct creds_rotor *ro); /* abandons a resolution in flight */

enum creds_next {
        CREDS_NOT_MINE,   /* not a credentials refusal, or refused twice: go on as usual */
        CREDS_SEND_AGAIN, /* newer credentials are there already: sign and send now */
        CREDS_WAIT,       /* t->waiting: the client's rotated callback sends it */
};
/* A reply with aws_code came for a request signed per t: what next.  Starts
 * the resolution (fn(owner, ...) on the loop) when none runs. */
enum creds_next creds_rotor_refused(struct creds_rotor *ro, uv_loop_t *loop, struct creds_try *t,
                                    const char *aws_code, creds_rotated_fn fn, void *owner);
/* In the client's rotated callback, first: takes the result (err 0: the
 * new credentials go to *creds_out, the rotor's generation moves on);
 * returns err, or -ENOMEM. */
int creds_rotor_rotated(struct creds_rotor *ro, int err, const struct sigv4_creds *creds,
                        struct sigv4_creds *creds_out);
