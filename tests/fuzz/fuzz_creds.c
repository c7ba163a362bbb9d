/* fuzz_creds.c - the readers of the AWS shared files (daemon/aws/creds.h):
 * the credentials file and the config file, and the IMDS replies.
 *
 * Input: the credentials file, a NUL byte, the config file.  Both are
 * resolved for the default profile and two named ones, for credentials and
 * for the region.  Checked besides memory safety:
 *   - found credentials have a key id and a secret;
 *   - a failure says why;
 *   - messages and sources never depend on a secret: the same files with
 *     every secret value replaced by other bytes of the same length give the
 *     same messages and sources (so no secret, or part of one, is quoted).
 * The input is also fed to the IMDS reply parsers (role list, credentials). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/creds.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        static const char *const unset[] = {
            "AWS_ACCESS_KEY_ID",  "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN", "AWS_PROFILE",           "AWS_DEFAULT_PROFILE",
            "AWS_REGION",         "AWS_DEFAULT_REGION",    "CREDENTIALS_DIRECTORY",
        };
        for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
                unsetenv(unset[i]);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        return 0;
}

static bool is_secret_key(const char *k, size_t n)
{
        static const char *const names[] = {"aws_secret_access_key", "aws_session_token",
                                            "aws_security_token"};
        for (size_t i = 0; i < 3; i++)
                if (strlen(names[i]) == n && strncasecmp(k, names[i], n) == 0)
                        return true;
        return false;
}

/* Replaces the bytes of every secret value (trimmed, as creds.c reads it) of
 * a "key = value" line with c, but for NUL bytes. */
static void mask_secrets(char *text, size_t len, char c)
{
        for (char *p = text, *end; p < text + len; p = end + 1) {
                end = memchr(p, '\n', (size_t)(text + len - p));
                if (!end)
                        end = text + len;
                if (p == end || isspace((unsigned char)*p) || *p == '#' || *p == ';' || *p == '[')
                        continue;
                char *eq = p;
                while (eq < end && *eq != '=' && *eq != ':')
                        eq++;
                if (eq == end)
                        continue;
                char *k0 = p, *k1 = eq;
                while (k0 < k1 && isspace((unsigned char)*k0))
                        k0++;
                while (k1 > k0 && isspace((unsigned char)k1[-1]))
                        k1--;
                if (!is_secret_key(k0, (size_t)(k1 - k0)))
                        continue;
                char *v0 = eq + 1, *v1 = end;
                while (v0 < v1 && isspace((unsigned char)*v0))
                        v0++;
                while (v1 > v0 && isspace((unsigned char)v1[-1]))
                        v1--;
                for (char *v = v0; v < v1; v++)
                        if (*v) /* a NUL stays: it is the file's shape, not the secret */
                                *v = c;
        }
}

struct outcome {
        int r, rr;
        char source[512], err[512];
        char rsource[512], rerr[512], region[128];
};

static void resolve(const char *cred, size_t cred_len, const char *conf, size_t conf_len,
                    const char *profile, struct outcome *o)
{
        setenv("AWS_SHARED_CREDENTIALS_FILE", fuzz_write_file(1, cred, cred_len), 1);
        setenv("AWS_CONFIG_FILE", fuzz_write_file(2, conf, conf_len), 1);
        memset(o, 0, sizeof(*o));
        struct sigv4_creds c = {0};
        o->r = creds_resolve(profile, &c, o->source, sizeof(o->source), o->err, sizeof(o->err));
        if (o->r == 0) {
                FUZZ_CHECK(c.access_key_id && c.access_key_id[0] && c.secret_access_key &&
                               c.secret_access_key[0],
                           "credentials from %s without a key id or secret", o->source);
                FUZZ_CHECK(o->source[0], "credentials without a source");
        } else {
                FUZZ_CHECK(o->r == -ENOENT || o->r == -EINVAL || o->r == -ENOMEM || o->r == -EIO,
                           "creds_resolve returned %d (%s)", o->r, o->err);
                FUZZ_CHECK(o->err[0], "creds_resolve failed without a message");
        }
        sigv4_creds_clear(&c);
        o->rr = creds_resolve_region(profile, o->region, sizeof(o->region), o->rsource,
                                     sizeof(o->rsource), o->rerr, sizeof(o->rerr));
        FUZZ_CHECK(o->rr == 0 || o->rr == -ENOENT || o->rr == -EINVAL || o->rr == -ENOMEM,
                   "creds_resolve_region returned %d (%s)", o->rr, o->rerr);
}

static void check_imds(const uint8_t *data, size_t size)
{
        char *role = NULL;
        int r = creds_imds_parse_role((const char *)data, size, &role);
        FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EINVAL || r == -ENOMEM,
                   "creds_imds_parse_role returned %d", r);
        if (r == 0) {
                /* it goes into the next request's URL as it is */
                FUZZ_CHECK(role && role[0], "an empty role name");
                for (const char *c = role; *c; c++)
                        FUZZ_CHECK(isalnum((unsigned char)*c) || strchr("_+=,.@-", *c),
                                   "role name '%s' has byte 0x%02x", role, (unsigned char)*c);
        }
        free(role);
        struct sigv4_creds c = {0};
        char err[256] = "";
        r = creds_imds_parse_creds((const char *)data, size, &c, err, sizeof(err));
        if (r == 0)
                FUZZ_CHECK(c.access_key_id && c.secret_access_key, "IMDS credentials lack a key");
        else
                FUZZ_CHECK(err[0], "creds_imds_parse_creds failed without a message");
        sigv4_creds_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *cred, *conf;
        size_t cred_len, conf_len;
        fuzz_split2(data, size, &cred, &cred_len, &conf, &conf_len);
        static const char *const profiles[] = {NULL, "ci", "default"};
        for (size_t i = 0; i < 3; i++) {
                struct outcome a, b;
                resolve(cred, cred_len, conf, conf_len, profiles[i], &a);
                char *mcred = fuzz_strdup((const uint8_t *)cred, cred_len);
                char *mconf = fuzz_strdup((const uint8_t *)conf, conf_len);
                mask_secrets(mcred, cred_len, '\x01');
                mask_secrets(mconf, conf_len, '\x01');
                resolve(mcred, cred_len, mconf, conf_len, profiles[i], &b);
                FUZZ_CHECK(a.r == b.r && strcmp(a.err, b.err) == 0 &&
                               strcmp(a.source, b.source) == 0,
                           "profile %s: the outcome depends on a secret: '%s' / '%s'",
                           profiles[i] ? profiles[i] : "(none)", a.err, b.err);
                FUZZ_CHECK(a.rr == b.rr && strcmp(a.rerr, b.rerr) == 0,
                           "profile %s: the region's outcome depends on a secret: '%s' / '%s'",
                           profiles[i] ? profiles[i] : "(none)", a.rerr, b.rerr);
                free(mcred);
                free(mconf);
        }
        check_imds(data, size);
        free(cred);
        free(conf);
        return 0;
}
