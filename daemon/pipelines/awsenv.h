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
 * The AWS CLI's conventions, which users already have set up, below
 * etld.conf's keys:
 *   region: [aws] region when given (etld.conf, --set, the job's settings),
 *           else AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`,
 *           else us-west-2 (the key's default); a client may name its own
 *           (e.g. [stage] source_region);
 *   endpoint of SERVICE (s3, iam, ec2, redshift, sts): [aws]
 *           endpoint_url_SERVICE, [aws] endpoint_url, AWS_ENDPOINT_URL_SERVICE,
 *           AWS_ENDPOINT_URL, the profile's `endpoint_url`, else AWS's own;
 *           AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true leaves out the
 *           environment and the profile.  An override means path-style S3
 *           addressing, as for emulators.
 *
 * Loop thread only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "aws/s3.h"
#include "aws/sigv4.h"
#include "cfg.h"

struct step_run;

enum awsenv_service { AWS_S3, AWS_IAM, AWS_EC2, AWS_REDSHIFT, AWS_STS, AWS_SERVICES };

struct awsenv {
        struct sigv4_creds creds;
        char creds_source[256]; /* "environment", "IMDS role NAME", ... (not secret) */
        char region[64];
        char region_source[300]; /* "[aws] region", "AWS_REGION", "FILE [profile P]", ... */
        char *endpoint[AWS_SERVICES]; /* override or NULL (AWS's own) */
        char *endpoint_s3;            /* = endpoint[AWS_S3] */
};

/* "s3", "iam", "ec2", "redshift", "sts" */
extern const char *const awsenv_service_names[AWS_SERVICES];

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

/* The endpoint override of a service ("iam", ...), or NULL for AWS's own. */
const char *awsenv_endpoint(const struct awsenv *env, const char *service);

/* Wipes the secrets and frees.  NULL is a no-op. */
void awsenv_free(struct awsenv *env);

/* Is a step error from S3 worth retrying the step for (network trouble, 5xx,
 * throttling that outlasted the client's own retries)? */
bool awsenv_s3_transient(const struct s3_result *res);
