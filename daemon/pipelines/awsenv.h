/* awsenv.h - what a step needs to talk to AWS: credentials resolved for the
 * job, and S3 clients on the daemon's HTTP engine built from the job's [aws]
 * configuration.
 *
 * Credentials come from the AWS CLI's chain (creds.h: environment, the
 * profile [aws] profile of the shared files, systemd credentials) and, when
 * none of those has any, the EC2 instance metadata service.  That reads files
 * and may wait on the network, so awsenv_resolve runs it on libuv's thread
 * pool, never on the loop thread, and calls back on the loop.  Only where the
 * credentials came from is logged; secrets stay in struct awsenv (wiped when
 * it is freed) and the clients.
 *
 * Endpoints: [aws] endpoint_url_s3, else [aws] endpoint_url, else AWS's own
 * (an override means path-style addressing, as for emulators).  Region:
 * [aws] region, or the one the caller names (e.g. [stage] source_region).
 *
 * Loop thread only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "aws/s3.h"
#include "aws/sigv4.h"
#include "cfg.h"

struct step_run;

struct awsenv {
        struct sigv4_creds creds;
        char creds_source[256]; /* "environment", "IMDS role NAME", ... (not secret) */
        char region[64];        /* [aws] region */
        char *endpoint_s3;      /* override or NULL */
};

/* Called on the loop once credentials are known: err 0 and env filled (the
 * callee owns it: awsenv_free), or err < 0, env NULL and msg a sentence
 * (never a secret).  -ECANCELED when the step was cancelled meanwhile. */
typedef void (*awsenv_ready_fn)(struct step_run *r, struct awsenv *env, int err, const char *msg);

/* Starts resolving the credentials for step r (its job's configuration).
 * 0, or -errno (then `ready` is not called).  r must stay alive until
 * `ready` ran (the step waits for it before step_done). */
int awsenv_resolve(struct step_run *r, awsenv_ready_fn ready);

/* An S3 client on r->http for `region` (NULL: [aws] region), with env's
 * credentials and endpoint.  Retries per the client's default policy. */
int awsenv_s3_client(struct step_run *r, const struct awsenv *env, const char *region,
                     struct s3_client **ret);

/* Wipes the secrets and frees.  NULL is a no-op. */
void awsenv_free(struct awsenv *env);

/* Is a step error from S3 worth retrying the step for (network trouble, 5xx,
 * throttling that outlasted the client's own retries)? */
bool awsenv_s3_transient(const struct s3_result *res);
