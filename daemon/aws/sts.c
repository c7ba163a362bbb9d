/* sts.c - STS AssumeRole and AssumeRoleWithWebIdentity requests and replies
 * (see sts.h).  Pure: creds.c sends what these build. */
#include "aws/sts.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aws/xml.h"
#include "util.h"

#define STS_VERSION "2011-06-15"
#define STS_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"

void sts_req_clear(struct sts_req *r)
{
        if (!r)
                return;
        free(r->url);
        sigv4_secret_free(r->body);
        for (size_t i = 0; i < r->nheaders; i++)
                sigv4_secret_free(r->headers[i]);
        memset(r, 0, sizeof(*r));
}

/* "scheme://host[/path]" split; 0 or -EINVAL. */
static int split_endpoint(const char *endpoint, char *scheme, size_t scheme_len, char *host,
                          size_t hostlen, const char **path)
{
        const char *sep = strstr(endpoint, "://");
        if (!sep || (size_t)(sep - endpoint) >= scheme_len)
                return -EINVAL;
        snprintf(scheme, scheme_len, "%.*s", (int)(sep - endpoint), endpoint);
        if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
                return -EINVAL;
        const char *h = sep + 3;
        size_t n = strcspn(h, "/?#");
        if (n == 0 || n >= hostlen || h[n] == '?' || h[n] == '#')
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!isgraph((unsigned char)h[i]) || h[i] == '@')
                        return -EINVAL;
        snprintf(host, hostlen, "%.*s", (int)n, h);
        *path = h[n] ? h + n : "/";
        return 0;
}

static bool printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* IAM's pattern for session names: [\w+=,.@-]{2,64}. */
static bool session_name_ok(const char *s)
{
        size_t n = strlen(s);
        if (n < 2 || n > 64)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("_+=,.@-", *s))
                        return false;
        return true;
}

static int form_add(struct buf *b, const char *name, const char *value)
{
        char *enc = sigv4_uri_encode(value, false);
        if (!enc)
                return -ENOMEM;
        int r = buf_cat(b, 4, b->len ? "&" : "", name, "=", enc);
        sigv4_secret_free(enc);
        return r;
}

/* The form body for action, role fields checked. */
static int role_body(const char *action, const struct sts_role *role, const char *token, time_t now,
                     char **body, char *err, size_t errlen)
{
        char dur[24], session[40];
        struct buf b = {0};
        int r = 0;

        *body = NULL;
        if (!role->role_arn || !role->role_arn[0] || !printable(role->role_arn)) {
                util_setf(err, errlen, "role_arn is empty or holds a control character");
                return -EINVAL;
        }
        const char *name = role->role_session_name;
        if (!name || !name[0]) {
                snprintf(session, sizeof(session), "etld-%lld", (long long)now);
                name = session;
        }
        if (!session_name_ok(name)) {
                util_setf(err, errlen,
                          "role_session_name '%.64s' is not 2-64 of A-Z a-z 0-9 _+=,.@-", name);
                return -EINVAL;
        }
        if (role->duration_s && (role->duration_s < 900 || role->duration_s > 43200)) {
                util_setf(err, errlen, "duration_seconds %ld is not between 900 and 43200",
                          role->duration_s);
                return -EINVAL;
        }
        if (role->external_id && !printable(role->external_id)) {
                util_setf(err, errlen, "external_id holds a control character");
                return -EINVAL;
        }
        r = form_add(&b, "Action", action);
        if (r == 0 && role->duration_s) {
                snprintf(dur, sizeof(dur), "%ld", role->duration_s);
                r = form_add(&b, "DurationSeconds", dur);
        }
        if (r == 0 && role->external_id && role->external_id[0])
                r = form_add(&b, "ExternalId", role->external_id);
        if (r == 0)
                r = form_add(&b, "RoleArn", role->role_arn);
        if (r == 0)
                r = form_add(&b, "RoleSessionName", name);
        if (r == 0 && token)
                r = form_add(&b, "WebIdentityToken", token);
        if (r == 0)
                r = form_add(&b, "Version", STS_VERSION);
        if (r == 0)
                r = buf_append(&b, "", 1);
        if (r < 0) {
                if (b.data)
                        OPENSSL_cleanse(b.data, b.cap);
                buf_free(&b);
                util_setf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        *body = b.data;
        return 0;
}

static int add_header(struct sts_req *out, const char *name, const char *value)
{
        if (out->nheaders == STS_MAX_HEADERS)
                return -E2BIG;
        size_t n = strlen(name) + strlen(value) + 3;
        char *h = malloc(n);
        if (!h)
                return -ENOMEM;
        snprintf(h, n, "%s: %s", name, value);
        out->headers[out->nheaders++] = h;
        return 0;
}

static int build(const char *endpoint, const char *region, const char *action,
                 const struct sts_role *role, const char *token, const struct sigv4_creds *source,
                 time_t now, struct sts_req *out, char *err, size_t errlen)
{
        char scheme[8], host[256];
        const char *path;
        struct sigv4_signed s = {0};
        int r;

        memset(out, 0, sizeof(*out));
        if (split_endpoint(endpoint, scheme, sizeof(scheme), host, sizeof(host), &path) < 0) {
                util_setf(err, errlen, "STS endpoint '%.200s' is not http(s)://HOST[/PATH]",
                          endpoint);
                return -EINVAL;
        }
        r = role_body(action, role, token, now, &out->body, err, errlen);
        if (r < 0)
                return r;
        r = add_header(out, "Host", host);
        if (r == 0)
                r = add_header(out, "Content-Type", STS_CONTENT_TYPE);
        const char *wire_path = path;
        if (r == 0 && source) {
                char sha[65];
                struct sigv4_header ct = {"Content-Type", STS_CONTENT_TYPE};
                sigv4_sha256_hex(out->body, strlen(out->body), sha);
                struct sigv4_request sr = {
                    .method = "POST",
                    .host = host,
                    .path = path,
                    .headers = &ct,
                    .nheaders = 1,
                    .payload_sha256_hex = sha,
                    .region = region && region[0] ? region : "us-east-1",
                    .service = "sts",
                    .now = now,
                };
                r = sigv4_sign(&sr, source, &s, err, errlen);
                for (size_t i = 0; r == 0 && i < s.nheaders; i++)
                        r = add_header(out, s.headers[i].name, s.headers[i].value);
                wire_path = s.path;
        }
        if (r == 0) {
                struct buf u = {0};
                r = buf_cat(&u, 4, scheme, "://", host, wire_path);
                if (r == 0)
                        r = buf_append(&u, "", 1);
                out->url = u.data;
                if (r < 0)
                        buf_free(&u);
        }
        sigv4_signed_clear(&s);
        if (r < 0) {
                if (r != -EINVAL)
                        util_setf(err, errlen, "out of memory");
                sts_req_clear(out);
        }
        return r == -E2BIG ? -ENOMEM : r;
}

int sts_assume_role_req(const char *endpoint, const char *region, const struct sts_role *role,
                        const struct sigv4_creds *source, time_t now, struct sts_req *out,
                        char *err, size_t errlen)
{
        return build(endpoint, region, "AssumeRole", role, NULL, source, now, out, err, errlen);
}

int sts_web_identity_req(const char *endpoint, const struct sts_role *role, const char *token,
                         time_t now, struct sts_req *out, char *err, size_t errlen)
{
        if (!token || !token[0]) {
                util_setf(err, errlen, "the web identity token is empty");
                memset(out, 0, sizeof(*out));
                return -EINVAL;
        }
        struct sts_role r = *role;
        r.external_id = NULL;
        return build(endpoint, NULL, "AssumeRoleWithWebIdentity", &r, token, NULL, now, out, err,
                     errlen);
}

int sts_parse_time(const char *s, time_t *ret)
{
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        if (!rest)
                return -EINVAL;
        if (*rest == '.') {
                rest++;
                while (isdigit((unsigned char)*rest))
                        rest++;
        }
        if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0 && strcmp(rest, "") != 0)
                return -EINVAL;
        *ret = timegm(&tm);
        return 0;
}

int sts_parse_reply(const char *action, long status, const char *body, size_t len,
                    struct sigv4_creds *out, char *err, size_t errlen)
{
        char path[96];
        int r = -EBADMSG;

        memset(out, 0, sizeof(*out));
        if (status < 200 || status >= 300) {
                struct aws_error a;
                if (xml_parse_aws_error(body, len, &a) == 0 && a.code[0]) {
                        util_setf(err, errlen, "STS %s: %s: %s", action, a.code,
                                  a.message[0] ? a.message : "(no message)");
                        return -EACCES;
                }
                util_setf(err, errlen, "STS %s: HTTP %ld without an STS error", action, status);
                return -EBADMSG;
        }
        xmlDoc *doc = xml_read(body, len);
        xmlNode *root = doc ? xml_root(doc) : NULL;
        snprintf(path, sizeof(path), "%sResponse", action);
        if (!root || !xml_is(root, path)) {
                util_setf(err, errlen, "STS %s: the reply is not a %sResponse", action, action);
                goto out;
        }
        snprintf(path, sizeof(path), "%sResult/Credentials", action);
        xmlNode *c = xml_path(root, path);
        struct sigv4_creds n = {0};
        char *exp = NULL;
        if (c) {
                n.access_key_id = xml_text(xml_child(c, "AccessKeyId"));
                n.secret_access_key = xml_text(xml_child(c, "SecretAccessKey"));
                n.session_token = xml_text(xml_child(c, "SessionToken"));
                exp = xml_text(xml_child(c, "Expiration"));
        }
        if (!n.access_key_id || !n.secret_access_key || !n.session_token || !exp ||
            !n.access_key_id[0] || !n.secret_access_key[0]) {
                util_setf(err, errlen, "STS %s: the reply lacks %s", action,
                          !c                                                ? path
                          : !n.access_key_id || !n.access_key_id[0]         ? "AccessKeyId"
                          : !n.secret_access_key || !n.secret_access_key[0] ? "SecretAccessKey"
                          : !n.session_token                                ? "SessionToken"
                                                                            : "Expiration");
        } else if (sts_parse_time(exp, &n.expiration) < 0) {
                util_setf(err, errlen, "STS %s: Expiration is not an ISO 8601 UTC time", action);
        } else {
                *out = n;
                memset(&n, 0, sizeof(n));
                r = 0;
        }
        sigv4_creds_clear(&n);
        free(exp);
out:
        if (doc)
                xmlFreeDoc(doc);
        return r;
}
