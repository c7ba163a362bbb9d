/* creds.h - where AWS credentials and the region come from.
 *
 * The chain is the AWS CLI's (botocore's), in this order:
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *      (or the legacy AWS_SECURITY_TOKEN); skipped when a profile is passed
 *      explicitly, as `aws --profile` does;
 *   2. assume role: the profile has role_arn (and no web_identity_token_file)
 *      with source_profile (that profile's credentials, chains allowed, loops
 *      refused) or credential_source (Environment, Ec2InstanceMetadata,
 *      EcsContainer): STS AssumeRole (role_session_name, external_id,
 *      duration_seconds; mfa_serial is refused: nobody can type the code);
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (+ AWS_ROLE_SESSION_NAME; not with an explicit profile), else the
 *      profile's web_identity_token_file + role_arn: STS
 *      AssumeRoleWithWebIdentity;
 *   4. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials), section [NAME];
 *   5. the profile's credential_process;
 *   6. the config file (AWS_CONFIG_FILE, default ~/.aws/config), section
 *      [profile NAME] or [default];
 *   7. systemd credentials: files aws_access_key_id, aws_secret_access_key and
 *      optionally aws_session_token in $CREDENTIALS_DIRECTORY (LoadCredential=);
 *   8. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *      _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
 *   9. the EC2 instance metadata service, IMDSv2.
 * 8 and 9 only when no profile was passed explicitly.  A profile's keys come
 * from both files, the credentials file's winning.  NAME is the profile
 * argument, else AWS_PROFILE, else "default".  The STS endpoint is
 * AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile's endpoint_url, else
 * https://sts.REGION.amazonaws.com (creds_sts_endpoint).
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

/* Steps 1, 4, 6 and 7: synchronous, local files only, nothing run or sent.
 * On success fills *out (clear it with sigv4_creds_clear) and source with
 * where they came from, e.g. "environment", "/root/.aws/credentials [default]",
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

/* BLOCKING (files, processes, STS, then the container endpoint and IMDS when
 * they have none and no profile was named): the whole chain, as a step
 * resolves it when it starts and again when a service refuses the
 * credentials or they are about to expire during a job (rotate.h).  0 with
 * *out and source; -ENOKEY when nothing in the chain has credentials (a configuration
 * error: err says what was tried); or -errno with err a sentence for the
 * step's error (never a secret). */
int creds_resolve_chain(const char *profile, struct sigv4_creds *out, char *source,
                        size_t sourcelen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Where the chain's STS calls go when the caller knows: etld.conf's
 * [aws] endpoint_url_sts / endpoint_url and region, as awsenv.c resolved
 * them above the AWS conventions.  endpoint NULL:
 * https://sts.REGION.amazonaws.com. */
struct creds_sts {
        const char *endpoint;
        const char *region;
};
/* creds_resolve_chain with STS at sts (NULL: creds_sts_endpoint's). */
int creds_resolve_chain_at(const char *profile, const struct creds_sts *sts,
                           struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                           size_t errlen) __attribute__((warn_unused_result));

/* ---- the sources that run or ask something (pure pieces, for tests) ---- */

#define CREDS_PROCESS_TIMEOUT_S 60 /* ETLD_CREDENTIAL_PROCESS_TIMEOUT overrides */
#define CREDS_CONTAINER_HOST "http://169.254.170.2"
#define CREDS_CONTAINER_TIMEOUT_MS 2000
#define CREDS_STS_TIMEOUT_MS 10000
#define CREDS_STS_DEFAULT_REGION "us-east-1"
/* Temporary credentials are resolved again this long before they expire. */
#define CREDS_REFRESH_MARGIN_S 300

/* credential_process split into words as the AWS CLI does on POSIX (shlex):
 * a NULL-terminated malloc'ed vector (creds_argv_free).  0, -EINVAL (an
 * unclosed quote, a trailing backslash), -ENOENT (no word), -ENOMEM. */
int creds_process_split(const char *cmd, char ***argv);
void creds_argv_free(char **argv);

/* A credential process's output: {"Version": 1, "AccessKeyId", "SecretAccessKey",
 * "SessionToken" (optional), "Expiration" (optional, ISO 8601)}.  0 or
 * -EINVAL with err never quoting a value. */
int creds_process_parse(const char *body, size_t len, struct sigv4_creds *out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* May AWS_CONTAINER_CREDENTIALS_FULL_URI point there?  https anywhere; http
 * only to loopback (127.0.0.0/8, ::1, localhost) or the ECS and EKS Pod
 * Identity agents (169.254.170.2, 169.254.170.23, fd00:ec2::23). */
bool creds_container_url_allowed(const char *url);

/* The container credentials request from the environment (reads the token
 * file): 0, -ENOENT (not configured), -EINVAL (err says which variable). */
int creds_container_req(struct creds_imds_req *out, char *err, size_t errlen);

/* The STS endpoint and signing region for profile (see the top). */
int creds_sts_endpoint(const char *profile, char *endpoint, size_t endpointlen, char *region,
                       size_t regionlen, char *err, size_t errlen);

/* Is the variable "true" or "1"? */
bool creds_env_true(const char *name);

/* Are creds about to expire (expiration set and less than margin_s away)? */
bool creds_expiring(const struct sigv4_creds *c, time_t now, long margin_s);

#endif
