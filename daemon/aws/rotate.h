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
