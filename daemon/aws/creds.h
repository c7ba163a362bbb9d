/* creds.h - where AWS credentials and the region come from.
 *
 * The chain is the AWS CLI's, in this order:
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *      (or the legacy AWS_SECURITY_TOKEN); skipped when a profile is passed
 *      explicitly, as `aws --profile` does;
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials), section [NAME];
 *   3. the config file (AWS_CONFIG_FILE, default ~/.aws/config), section
 *      [profile NAME] or [default];
 *   4. systemd credentials: files aws_access_key_id, aws_secret_access_key and
 *      optionally aws_session_token in $CREDENTIALS_DIRECTORY (LoadCredential=);
 *   5. the EC2 instance metadata service, IMDSv2 (creds_imds_fetch below:
 *      network, so a separate call).
 * NAME is the profile argument, else AWS_PROFILE, else "default".
 *
 * Secrets never appear in err or source strings; everything secret is wiped
 * before it is freed (sigv4_creds_clear).  No logging, no event loop.
 */
#ifndef ETLD_AWS_CREDS_H
#define ETLD_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/sigv4.h"

/* Steps 1-4, synchronous, local files only.  On success fills *out (clear it
 * with sigv4_creds_clear) and source with where they came from, e.g.
 * "environment", "/root/.aws/credentials [default]",
 * "/root/.aws/config [profile ci]" or "$CREDENTIALS_DIRECTORY".
 * Returns 0; -ENOENT when no source has credentials (try IMDS next); -EINVAL
 * for partial credentials, a malformed file or an explicit profile that
 * exists in neither file; -ENOMEM/-EIO otherwise.  err names the file, line
 * and key, never a value. */
int creds_resolve(const char *profile, struct sigv4_creds *out, char *source, size_t sourcelen,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

/* BLOCKING (reads the config file): `key` of the profile's section of the
 * shared config file (AWS_CONFIG_FILE, ~/.aws/config), e.g. endpoint_url.
 * 0 with out and source ("FILE [profile NAME]"), -ENOENT when it has none,
 * -EINVAL for a malformed file (err says where). */
int creds_profile_value(const char *profile, const char *key, char *out, size_t outlen,
                        char *source, size_t sourcelen, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Region: AWS_REGION, AWS_DEFAULT_REGION, `region` of the profile in the
 * config file, the systemd credential aws_region.  Returns 0 with region and
 * source filled, -ENOENT when none says (the caller falls back to etld.conf's
 * aws.region or creds_imds_fetch_region), -EINVAL for a malformed file. */
int creds_resolve_region(const char *profile, char *region, size_t regionlen, char *source,
                         size_t sourcelen, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* ---- IMDSv2 ---- */

#define CREDS_IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define CREDS_IMDS_DEFAULT_ENDPOINT_V6 "http://[fd00:ec2::254]"
#define CREDS_IMDS_TOKEN_TTL 21600

/* The endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT, else the IPv6 one when
 * AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is IPv6, else 169.254.169.254.
 * Without a trailing slash; static or from the environment (do not free). */
const char *creds_imds_endpoint(void);

/* AWS_EC2_METADATA_DISABLED=true turns IMDS off, as in the AWS CLI. */
bool creds_imds_disabled(void);

/* One IMDS HTTP request, for whoever runs it (the blocking fetcher below or
 * the async engine).  header is a complete "Name: value" line or NULL; it may
 * carry the IMDS session token, which is a secret. */
struct creds_imds_req {
        const char *method;     /* "PUT" or "GET" */
        char *url;
        char *header;
};
void creds_imds_req_clear(struct creds_imds_req *r);

/* PUT {endpoint}/latest/api/token, X-aws-ec2-metadata-token-ttl-seconds. */
int creds_imds_token_req(const char *endpoint, unsigned ttl_s, struct creds_imds_req *out);
/* GET {endpoint}/latest/meta-data/iam/security-credentials/[role] with the token
 * (token NULL: IMDSv1 fallback, when the token PUT got 403, 404 or 405). */
int creds_imds_role_req(const char *endpoint, const char *token, const char *role,
                        struct creds_imds_req *out);
/* GET {endpoint}/latest/meta-data/placement/region with the token. */
int creds_imds_region_req(const char *endpoint, const char *token, struct creds_imds_req *out);

/* The role list reply (or the region reply): the first line, trimmed.  0,
 * -ENOENT (empty), -EINVAL when it holds a byte no IAM role or region name
 * has (outside A-Z a-z 0-9 _ + = , . @ -: it would go into a URL as it is),
 * -ENOMEM. */
int creds_imds_parse_role(const char *body, size_t len, char **role);

/* The credentials reply: {"Code": "Success", "AccessKeyId": ..., "SecretAccessKey":
 * ..., "Token": ..., "Expiration": "2024-05-17T15:09:54Z", ...}.  0, or -EINVAL
 * (not Success, a field missing, bad JSON) with err never quoting a value. */
int creds_imds_parse_creds(const char *body, size_t len, struct sigv4_creds *out, char *err,
                           size_t errlen) __attribute__((warn_unused_result));

/* BLOCKING: runs the IMDSv2 exchange with libcurl easy (token, role, then
 * the role's credentials), each request bounded by timeout_ms (0: 1000, or
 * AWS_METADATA_SERVICE_TIMEOUT seconds).  Never call it on the loop thread:
 * it is meant for the thread pool (uv_queue_work).  curl_global_init() must
 * have been called by the process.  endpoint NULL = creds_imds_endpoint().
 * source becomes "IMDS role NAME".  0, -ENOENT (no role attached or IMDS
 * disabled), -EHOSTUNREACH/-ETIMEDOUT (no IMDS there), -EINVAL, -ENOMEM. */
int creds_imds_fetch(const char *endpoint, long timeout_ms, struct sigv4_creds *out,
                     char *source, size_t sourcelen, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* BLOCKING as above: the instance's region from IMDS. */
int creds_imds_fetch_region(const char *endpoint, long timeout_ms, char *region,
                            size_t regionlen, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* BLOCKING (files, then IMDS when they have none and no profile was named):
 * the whole chain, as a step resolves it when it starts and again when a
 * service refuses the credentials during a job (rotate.h).  0 with *out and
 * source; -ENOKEY when nothing in the chain has credentials (a configuration
 * error: err says what was tried); or -errno with err a sentence for the
 * step's error (never a secret). */
int creds_resolve_chain(const char *profile, struct sigv4_creds *out, char *source,
                        size_t sourcelen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Are creds about to expire (expiration set and less than margin_s away)? */
bool creds_expiring(const struct sigv4_creds *c, time_t now, long margin_s);

#endif
