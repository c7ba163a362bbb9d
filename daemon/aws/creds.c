/* creds.c - the AWS credentials and region chain (see creds.h).
 *
 * Environment, the shared credentials and config files, systemd credentials
 * and IMDSv2.  The AWS shared files are read by a small reader of our own
 * rather than inih: Debian's inih is built with 200-byte lines, too short for
 * a session token (often over 1,000 characters), and its knobs are process
 * globals shared with common/cfg.c.  The reader follows botocore's
 * (RawConfigParser): "[section]", "key = value" or "key: value", keys in any
 * case, '#' and ';' comment lines, no inline comments, indented lines
 * continuing a nested value (ignored here).
 *
 * IMDS: request builders and reply parsers are pure; creds_imds_fetch() runs
 * them with blocking libcurl easy and belongs on the thread pool.
 */
#include "aws/creds.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "util.h"

static void free_secret(char *s)
{
        if (!s)
                return;
        OPENSSL_cleanse(s, strlen(s));
        free(s);
}

static const char *env_nonempty(const char *name)
{
        const char *v = getenv(name);

        return v && v[0] ? v : NULL;
}

static const char *profile_name(const char *profile)
{
        if (profile && profile[0])
                return profile;
        if (env_nonempty("AWS_PROFILE"))
                return env_nonempty("AWS_PROFILE");
        if (env_nonempty("AWS_DEFAULT_PROFILE"))
                return env_nonempty("AWS_DEFAULT_PROFILE");
        return "default";
}

/* $NAME (with ~ expanded) or ~/.aws/DEFAULT_NAME; malloc'ed, NULL without a home. */
static char *aws_file_path(const char *env, const char *leaf)
{
        const char *v = env_nonempty(env);
        const char *home = getenv("HOME");
        struct passwd pwbuf, *pw = NULL;
        char pwdata[4096];
        char *path;
        size_t n;

        if (!home || !home[0]) {
                /* getpwuid_r: this may run on a thread-pool thread. */
                if (getpwuid_r(getuid(), &pwbuf, pwdata, sizeof(pwdata), &pw) != 0)
                        pw = NULL;
                home = pw ? pw->pw_dir : NULL;
        }
        if (v && v[0] != '~')
                return strdup(v);
        if (!home)
                return NULL;
        if (v) {
                n = strlen(home) + strlen(v) + 1;
                path = malloc(n);
                if (path)
                        snprintf(path, n, "%s%s", home, v + 1);
                return path;
        }
        n = strlen(home) + strlen(leaf) + 8;
        path = malloc(n);
        if (path)
                snprintf(path, n, "%s/.aws/%s", home, leaf);
        return path;
}

/* ---- the shared files ---- */

#define INI_MAX_KEYS 64

/* The keys of one profile of one file. */
struct profile_kv {
        bool found;             /* the section exists */
        size_t n;
        char *keys[INI_MAX_KEYS];
        char *values[INI_MAX_KEYS];
};

static void profile_kv_clear(struct profile_kv *p)
{
        for (size_t i = 0; i < p->n; i++) {
                free(p->keys[i]);
                free_secret(p->values[i]);
        }
        memset(p, 0, sizeof(*p));
}

static const char *profile_get(const struct profile_kv *p, const char *key)
{
        for (size_t i = p->n; i > 0; i--)
                if (strcmp(p->keys[i - 1], key) == 0)
                        return p->values[i - 1][0] ? p->values[i - 1] : NULL;
        return NULL;
}

static char *trim(char *s, char *end)
{
        while (s < end && isspace((unsigned char)*s))
                s++;
        while (end > s && isspace((unsigned char)end[-1]))
                end--;
        *end = '\0';
        return s;
}

/* Does section header text (inside the brackets, trimmed) name profile? */
static bool section_matches(const char *sect, bool config_style, const char *profile)
{
        if (!config_style)
                return strcmp(sect, profile) == 0;
        if (strcmp(sect, "default") == 0)
                return strcmp(profile, "default") == 0;
        if (strncmp(sect, "profile", 7) != 0 || !isspace((unsigned char)sect[7]))
                return false;
        sect += 7;
        while (isspace((unsigned char)*sect))
                sect++;
        return strcmp(sect, profile) == 0;
}

/* Reads the keys of profile from path.  A missing file is not an error
 * (*exists false).  Malformed lines are, with their number but not their text. */
static int read_profile(const char *path, bool config_style, const char *profile,
                        struct profile_kv *out, bool *exists, char *err, size_t errlen)
{
        char *text = NULL;
        size_t len = 0;
        char *p, *line_end;
        bool in_section = false;
        int lineno = 0;
        int r;

        memset(out, 0, sizeof(*out));
        *exists = false;
        r = util_read_file(path, &text, &len);
        if (r == -ENOENT || r == -ENOTDIR)
                return 0;
        if (r < 0) {
                util_setf(err, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        *exists = true;
        r = 0;
        for (p = text; p < text + len; p = line_end + 1) {
                char *eq;
                char *key, *value;

                line_end = memchr(p, '\n', (size_t)(text + len - p));
                if (!line_end)
                        line_end = text + len;
                lineno++;
                if (lineno == 1 && line_end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
                        p += 3;
                if (memchr(p, '\0', (size_t)(line_end - p))) {
                        /* C strings would cut a key or secret there, silently
                         * (found by tests/fuzz/fuzz_creds.c) */
                        util_setf(err, errlen, "%s:%d: a NUL byte; is this a text file?", path,
                                lineno);
                        r = -EINVAL;
                        break;
                }
                if (p == line_end)
                        continue;
                if (isspace((unsigned char)*p)) {
                        /* Blank, or the continuation of a nested value. */
                        continue;
                }
                if (*p == '#' || *p == ';')
                        continue;
                if (*p == '[') {
                        char *close = memchr(p, ']', (size_t)(line_end - p));

                        if (!close) {
                                util_setf(err, errlen, "%s:%d: section header without ']'", path,
                                        lineno);
                                r = -EINVAL;
                                break;
                        }
                        in_section = section_matches(trim(p + 1, close), config_style, profile);
                        if (in_section)
                                out->found = true;
                        continue;
                }
                eq = p;
                while (eq < line_end && *eq != '=' && *eq != ':')
                        eq++;
                if (eq == line_end) {
                        util_setf(err, errlen, "%s:%d: not a \"key = value\" line", path, lineno);
                        r = -EINVAL;
                        break;
                }
                if (!in_section)
                        continue;
                key = trim(p, eq);
                value = trim(eq + 1, line_end);
                if (out->n == INI_MAX_KEYS) {
                        util_setf(err, errlen, "%s:%d: more than %d keys in [%s]", path, lineno,
                                INI_MAX_KEYS, profile);
                        r = -EINVAL;
                        break;
                }
                out->keys[out->n] = strdup(key);
                out->values[out->n] = strdup(value);
                if (!out->keys[out->n] || !out->values[out->n]) {
                        free(out->keys[out->n]);
                        free_secret(out->values[out->n]);
                        r = -ENOMEM;
                        util_setf(err, errlen, "out of memory");
                        break;
                }
                for (char *k = out->keys[out->n]; *k; k++)
                        *k = (char)tolower((unsigned char)*k);
                out->n++;
        }
        OPENSSL_cleanse(text, len);
        free(text);
        if (r < 0)
                profile_kv_clear(out);
        return r;
}

/* Fills out from the aws_* keys of p.  0, 1 when p has none, -EINVAL when partial. */
static int creds_from_profile(const struct profile_kv *p, const char *where,
                              struct sigv4_creds *out, char *err, size_t errlen)
{
        const char *ak = profile_get(p, "aws_access_key_id");
        const char *sk = profile_get(p, "aws_secret_access_key");
        const char *tok = profile_get(p, "aws_session_token");
        struct sigv4_creds c = { 0 };

        if (!tok)
                tok = profile_get(p, "aws_security_token");
        if (!ak && !sk)
                return 1;
        if (!ak || !sk) {
                util_setf(err, errlen, "%s: partial credentials, %s is missing", where,
                        ak ? "aws_secret_access_key" : "aws_access_key_id");
                return -EINVAL;
        }
        c.access_key_id = (char *)ak;
        c.secret_access_key = (char *)sk;
        c.session_token = (char *)tok;
        if (sigv4_creds_copy(out, &c) < 0) {
                util_setf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        return 0;
}

static int creds_from_env(bool *found, struct sigv4_creds *out, char *err, size_t errlen)
{
        const char *ak = env_nonempty("AWS_ACCESS_KEY_ID");
        const char *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
        const char *tok = env_nonempty("AWS_SESSION_TOKEN");
        struct sigv4_creds c = { 0 };

        *found = false;
        if (!tok)
                tok = env_nonempty("AWS_SECURITY_TOKEN");
        if (!ak && !sk)
                return 0;
        if (!ak || !sk) {
                util_setf(err, errlen, "environment: partial credentials, %s is not set",
                        ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
                return -EINVAL;
        }
        c.access_key_id = (char *)ak;
        c.secret_access_key = (char *)sk;
        c.session_token = (char *)tok;
        if (sigv4_creds_copy(out, &c) < 0) {
                util_setf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        *found = true;
        return 0;
}

/* One systemd credential, trimmed; NULL when absent.  -errno in *r on failure. */
static char *systemd_cred(const char *dir, const char *name, int *r)
{
        size_t n = strlen(dir) + strlen(name) + 2;
        char *path = malloc(n);
        char *data = NULL;
        size_t len = 0;
        char *s, *v;

        *r = 0;
        if (!path) {
                *r = -ENOMEM;
                return NULL;
        }
        snprintf(path, n, "%s/%s", dir, name);
        *r = util_read_file(path, &data, &len);
        free(path);
        if (*r == -ENOENT) {
                *r = 0;
                return NULL;
        }
        if (*r < 0)
                return NULL;
        s = trim(data, data + len);
        v = s[0] ? strdup(s) : NULL;
        if (s[0] && !v)
                *r = -ENOMEM;
        OPENSSL_cleanse(data, len);
        free(data);
        return v;
}

static int creds_from_systemd(bool *found, struct sigv4_creds *out, char *err, size_t errlen)
{
        const char *dir = env_nonempty("CREDENTIALS_DIRECTORY");
        struct sigv4_creds c = { 0 };
        int r1, r2, r3;

        *found = false;
        if (!dir)
                return 0;
        c.access_key_id = systemd_cred(dir, "aws_access_key_id", &r1);
        c.secret_access_key = systemd_cred(dir, "aws_secret_access_key", &r2);
        c.session_token = systemd_cred(dir, "aws_session_token", &r3);
        if (r1 < 0 || r2 < 0 || r3 < 0) {
                int r = r1 < 0 ? r1 : r2 < 0 ? r2 : r3;

                util_setf(err, errlen, "$CREDENTIALS_DIRECTORY: %s", strerror(-r));
                sigv4_creds_clear(&c);
                return r;
        }
        if (!c.access_key_id && !c.secret_access_key) {
                sigv4_creds_clear(&c);
                return 0;
        }
        if (!c.access_key_id || !c.secret_access_key) {
                util_setf(err, errlen, "$CREDENTIALS_DIRECTORY: partial credentials, %s is missing",
                        c.access_key_id ? "aws_secret_access_key" : "aws_access_key_id");
                sigv4_creds_clear(&c);
                return -EINVAL;
        }
        *out = c;
        *found = true;
        return 0;
}

int creds_resolve(const char *profile, struct sigv4_creds *out, char *source, size_t sourcelen,
                  char *err, size_t errlen)
{
        bool explicit_profile = profile && profile[0];
        const char *name = profile_name(profile);
        bool named = explicit_profile || env_nonempty("AWS_PROFILE") ||
                     env_nonempty("AWS_DEFAULT_PROFILE");
        char *cred_path = NULL, *conf_path = NULL;
        struct profile_kv kv = { 0 };
        bool found = false, exists_cred = false, exists_conf = false, found_section = false;
        char where[1024];
        int r;

        memset(out, 0, sizeof(*out));
        util_setf(source, sourcelen, "%s", "");

        /* 1. Environment (an explicit profile negates it, as in botocore). */
        if (!explicit_profile) {
                r = creds_from_env(&found, out, err, errlen);
                if (r < 0)
                        return r;
                if (found) {
                        util_setf(source, sourcelen, "environment");
                        return 0;
                }
        }

        cred_path = aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        conf_path = aws_file_path("AWS_CONFIG_FILE", "config");

        /* 2. Shared credentials file. */
        if (cred_path) {
                r = read_profile(cred_path, false, name, &kv, &exists_cred, err, errlen);
                if (r < 0)
                        goto out;
                found_section |= kv.found;
                snprintf(where, sizeof(where), "%s [%s]", cred_path, name);
                r = creds_from_profile(&kv, where, out, err, errlen);
                profile_kv_clear(&kv);
                if (r <= 0) {
                        if (r == 0)
                                util_setf(source, sourcelen, "%s", where);
                        goto out;
                }
        }

        /* 3. Config file. */
        if (conf_path) {
                r = read_profile(conf_path, true, name, &kv, &exists_conf, err, errlen);
                if (r < 0)
                        goto out;
                found_section |= kv.found;
                if (strcmp(name, "default") == 0)
                        snprintf(where, sizeof(where), "%s [default]", conf_path);
                else
                        snprintf(where, sizeof(where), "%s [profile %s]", conf_path, name);
                r = creds_from_profile(&kv, where, out, err, errlen);
                profile_kv_clear(&kv);
                if (r <= 0) {
                        if (r == 0)
                                util_setf(source, sourcelen, "%s", where);
                        goto out;
                }
        }

        /* A named profile must exist (botocore raises ProfileNotFound). */
        if (named && !found_section) {
                util_setf(err, errlen, "AWS profile '%s' not found in %s or %s", name,
                        cred_path ? cred_path : "~/.aws/credentials",
                        conf_path ? conf_path : "~/.aws/config");
                r = -EINVAL;
                goto out;
        }

        /* 4. systemd credentials. */
        r = creds_from_systemd(&found, out, err, errlen);
        if (r < 0)
                goto out;
        if (found) {
                util_setf(source, sourcelen, "$CREDENTIALS_DIRECTORY");
                goto out;
        }

        r = -ENOENT;
        util_setf(err, errlen,
                "no AWS credentials in the environment, %s [%s], %s or $CREDENTIALS_DIRECTORY",
                cred_path ? cred_path : "~/.aws/credentials", name,
                conf_path ? conf_path : "~/.aws/config");
out:
        if (r < 0)
                sigv4_creds_clear(out);
        free(cred_path);
        free(conf_path);
        return r;
}

int creds_profile_value(const char *profile, const char *key, char *out, size_t outlen,
                        char *source, size_t sourcelen, char *err, size_t errlen)
{
        const char *name = profile_name(profile);
        char *conf_path = aws_file_path("AWS_CONFIG_FILE", "config");
        struct profile_kv kv = { 0 };
        bool exists = false;
        int r = -ENOENT;
        out[0] = '\0';
        if (!conf_path)
                return -ENOENT;
        int rr = read_profile(conf_path, true, name, &kv, &exists, err, errlen);
        if (rr < 0) {
                r = rr;
        } else if (profile_get(&kv, key)) {
                util_setf(out, outlen, "%s", profile_get(&kv, key));
                if (strcmp(name, "default") == 0)
                        util_setf(source, sourcelen, "%s [default]", conf_path);
                else
                        util_setf(source, sourcelen, "%s [profile %s]", conf_path, name);
                r = 0;
        }
        profile_kv_clear(&kv);
        free(conf_path);
        return r;
}

int creds_resolve_region(const char *profile, char *region, size_t regionlen, char *source,
                         size_t sourcelen, char *err, size_t errlen)
{
        const char *env_names[] = { "AWS_REGION", "AWS_DEFAULT_REGION" };
        const char *name = profile_name(profile);
        char *conf_path;
        struct profile_kv kv = { 0 };
        bool exists = false;
        const char *dir;
        int r;

        util_setf(source, sourcelen, "%s", "");
        for (size_t i = 0; i < 2; i++) {
                const char *v = env_nonempty(env_names[i]);

                if (v) {
                        util_setf(region, regionlen, "%s", v);
                        util_setf(source, sourcelen, "%s", env_names[i]);
                        return 0;
                }
        }
        conf_path = aws_file_path("AWS_CONFIG_FILE", "config");
        if (conf_path) {
                r = read_profile(conf_path, true, name, &kv, &exists, err, errlen);
                if (r < 0) {
                        free(conf_path);
                        return r;
                }
                if (profile_get(&kv, "region")) {
                        util_setf(region, regionlen, "%s", profile_get(&kv, "region"));
                        if (strcmp(name, "default") == 0)
                                util_setf(source, sourcelen, "%s [default]", conf_path);
                        else
                                util_setf(source, sourcelen, "%s [profile %s]", conf_path, name);
                        profile_kv_clear(&kv);
                        free(conf_path);
                        return 0;
                }
                profile_kv_clear(&kv);
                free(conf_path);
        }
        dir = env_nonempty("CREDENTIALS_DIRECTORY");
        if (dir) {
                char *v = systemd_cred(dir, "aws_region", &r);

                if (r < 0) {
                        util_setf(err, errlen, "$CREDENTIALS_DIRECTORY/aws_region: %s",
                                strerror(-r));
                        return r;
                }
                if (v) {
                        util_setf(region, regionlen, "%s", v);
                        util_setf(source, sourcelen, "$CREDENTIALS_DIRECTORY");
                        free(v);
                        return 0;
                }
        }
        util_setf(err, errlen, "no AWS region in AWS_REGION, AWS_DEFAULT_REGION or the config file");
        return -ENOENT;
}

bool creds_expiring(const struct sigv4_creds *c, time_t now, long margin_s)
{
        return c->expiration != 0 && c->expiration - now < margin_s;
}

/* ---- IMDS: pure pieces ---- */

const char *creds_imds_endpoint(void)
{
        const char *v = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        const char *mode = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");

        if (v)
                return v;
        if (mode && strcasecmp(mode, "IPv6") == 0)
                return CREDS_IMDS_DEFAULT_ENDPOINT_V6;
        return CREDS_IMDS_DEFAULT_ENDPOINT;
}

bool creds_imds_disabled(void)
{
        const char *v = env_nonempty("AWS_EC2_METADATA_DISABLED");

        return v && strcasecmp(v, "true") == 0;
}

void creds_imds_req_clear(struct creds_imds_req *r)
{
        if (!r)
                return;
        free(r->url);
        free_secret(r->header);
        memset(r, 0, sizeof(*r));
}

static char *join_url(const char *endpoint, const char *path, const char *tail)
{
        size_t el = strlen(endpoint);
        size_t n;
        char *url;

        while (el > 0 && endpoint[el - 1] == '/')
                el--;
        n = el + strlen(path) + (tail ? strlen(tail) : 0) + 1;
        url = malloc(n);
        if (url)
                snprintf(url, n, "%.*s%s%s", (int)el, endpoint, path, tail ? tail : "");
        return url;
}

static char *token_header(const char *token)
{
        static const char name[] = "X-aws-ec2-metadata-token: ";
        size_t n = sizeof(name) + strlen(token);
        char *h = malloc(n);

        if (h)
                snprintf(h, n, "%s%s", name, token);
        return h;
}

int creds_imds_token_req(const char *endpoint, unsigned ttl_s, struct creds_imds_req *out)
{
        char h[80];

        memset(out, 0, sizeof(*out));
        out->method = "PUT";
        out->url = join_url(endpoint, "/latest/api/token", NULL);
        snprintf(h, sizeof(h), "X-aws-ec2-metadata-token-ttl-seconds: %u", ttl_s);
        out->header = strdup(h);
        if (!out->url || !out->header) {
                creds_imds_req_clear(out);
                return -ENOMEM;
        }
        return 0;
}

static int get_req(const char *endpoint, const char *path, const char *tail, const char *token,
                   struct creds_imds_req *out)
{
        memset(out, 0, sizeof(*out));
        out->method = "GET";
        out->url = join_url(endpoint, path, tail);
        if (token)
                out->header = token_header(token);
        if (!out->url || (token && !out->header)) {
                creds_imds_req_clear(out);
                return -ENOMEM;
        }
        return 0;
}

int creds_imds_role_req(const char *endpoint, const char *token, const char *role,
                        struct creds_imds_req *out)
{
        return get_req(endpoint, "/latest/meta-data/iam/security-credentials/", role, token, out);
}

int creds_imds_region_req(const char *endpoint, const char *token, struct creds_imds_req *out)
{
        return get_req(endpoint, "/latest/meta-data/placement/region", NULL, token, out);
}

int creds_imds_parse_role(const char *body, size_t len, char **role)
{
        size_t i = 0, e;

        *role = NULL;
        while (i < len && isspace((unsigned char)body[i]))
                i++;
        e = i;
        while (e < len && body[e] != '\n' && body[e] != '\r')
                e++;
        while (e > i && isspace((unsigned char)body[e - 1]))
                e--;
        if (e == i)
                return -ENOENT;
        for (size_t k = i; k < e; k++)
                if (!isalnum((unsigned char)body[k]) &&
                    (body[k] == '\0' || !strchr("_+=,.@-", body[k])))
                        return -EINVAL;
        *role = strndup(body + i, e - i);
        return *role ? 0 : -ENOMEM;
}

/* A flat JSON object reader, enough for IMDS replies: string members are
 * kept, numbers, true/false/null skipped; nesting is an error. */
struct json_member {
        char *key;
        char *value;
};

static void skip_ws(const char **p, const char *end)
{
        while (*p < end && isspace((unsigned char)**p))
                (*p)++;
}

/* Parses a JSON string at *p (on the quote); malloc'ed UTF-8 result. */
static char *json_string(const char **p, const char *end)
{
        struct buf b = { 0 };
        const char *s = *p + 1;

        while (s < end && *s != '"') {
                char c = *s++;

                if (c == '\\') {
                        int cp;
                        char ch;

                        if (s >= end)
                                goto bad;
                        ch = *s++;
                        switch (ch) {
                        case 'n': c = '\n'; break;
                        case 't': c = '\t'; break;
                        case 'r': c = '\r'; break;
                        case 'b': c = '\b'; break;
                        case 'f': c = '\f'; break;
                        case '"': case '\\': case '/': c = ch; break;
                        case 'u':
                                if (end - s < 4)
                                        goto bad;
                                cp = util_hex4(s);
                                s += 4;
                                if (cp < 0)
                                        goto bad;
                                if (cp < 0x80) {
                                        c = (char)cp;
                                        break;
                                }
                                /* Non-ASCII escapes do not occur in IMDS replies;
                                 * encode the BMP code point as UTF-8 (no surrogates). */
                                {
                                        char u[3];
                                        size_t ul;

                                        if (cp < 0x800) {
                                                u[0] = (char)(0xC0 | (cp >> 6));
                                                u[1] = (char)(0x80 | (cp & 0x3F));
                                                ul = 2;
                                        } else {
                                                u[0] = (char)(0xE0 | (cp >> 12));
                                                u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                                                u[2] = (char)(0x80 | (cp & 0x3F));
                                                ul = 3;
                                        }
                                        if (buf_append(&b, u, ul) < 0)
                                                goto bad;
                                        continue;
                                }
                        default:
                                goto bad;
                        }
                }
                if (buf_append(&b, &c, 1) < 0)
                        goto bad;
        }
        if (s >= end || buf_append(&b, "", 1) < 0)
                goto bad;
        *p = s + 1;
        if (!b.data)
                return NULL;
        return b.data;
bad:
        if (b.data)
                OPENSSL_cleanse(b.data, b.cap);
        buf_free(&b);
        return NULL;
}

static void members_free(struct json_member *m, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(m[i].key);
                free_secret(m[i].value);
        }
}

#define JSON_MAX_MEMBERS 32

static int json_flat_parse(const char *body, size_t len, struct json_member *m, size_t *n)
{
        const char *p = body, *end = body + len;

        *n = 0;
        skip_ws(&p, end);
        if (p >= end || *p != '{')
                return -EINVAL;
        p++;
        skip_ws(&p, end);
        if (p < end && *p == '}')
                return 0;
        for (;;) {
                char *key, *value = NULL;

                skip_ws(&p, end);
                if (p >= end || *p != '"')
                        goto bad;
                key = json_string(&p, end);
                if (!key)
                        goto bad;
                skip_ws(&p, end);
                if (p >= end || *p != ':') {
                        free(key);
                        goto bad;
                }
                p++;
                skip_ws(&p, end);
                if (p < end && *p == '"') {
                        value = json_string(&p, end);
                        if (!value) {
                                free(key);
                                goto bad;
                        }
                } else {
                        /* number, true, false, null */
                        while (p < end && *p != ',' && *p != '}' && *p != '{' && *p != '[' &&
                               *p != '"')
                                p++;
                        if (p < end && (*p == '{' || *p == '[' || *p == '"')) {
                                free(key);
                                goto bad;
                        }
                }
                if (*n == JSON_MAX_MEMBERS) {
                        free(key);
                        free_secret(value);
                        goto bad;
                }
                m[*n].key = key;
                m[*n].value = value;
                (*n)++;
                skip_ws(&p, end);
                if (p < end && *p == ',') {
                        p++;
                        continue;
                }
                if (p < end && *p == '}')
                        return 0;
                goto bad;
        }
bad:
        members_free(m, *n);
        *n = 0;
        return -EINVAL;
}

static const char *member(const struct json_member *m, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].key, key) == 0)
                        return m[i].value;
        return NULL;
}

int creds_imds_parse_creds(const char *body, size_t len, struct sigv4_creds *out, char *err,
                           size_t errlen)
{
        struct json_member m[JSON_MAX_MEMBERS];
        size_t n = 0;
        const char *code, *exp;
        struct sigv4_creds c = { 0 };
        struct tm tm;
        int r = -EINVAL;

        memset(out, 0, sizeof(*out));
        if (json_flat_parse(body, len, m, &n) < 0) {
                util_setf(err, errlen, "IMDS: the credentials reply is not a JSON object");
                return -EINVAL;
        }
        code = member(m, n, "Code");
        if (code && strcmp(code, "Success") != 0) {
                /* Codes are words like "Success"; not secret, but keep it short. */
                util_setf(err, errlen, "IMDS: credentials reply code %.40s", code);
                goto out;
        }
        c.access_key_id = (char *)member(m, n, "AccessKeyId");
        c.secret_access_key = (char *)member(m, n, "SecretAccessKey");
        c.session_token = (char *)member(m, n, "Token");
        if (!c.access_key_id || !c.secret_access_key || !c.session_token) {
                util_setf(err, errlen, "IMDS: the credentials reply lacks %s",
                        !c.access_key_id ? "AccessKeyId" :
                        !c.secret_access_key ? "SecretAccessKey" : "Token");
                goto out;
        }
        exp = member(m, n, "Expiration");
        if (exp) {
                const char *rest;

                memset(&tm, 0, sizeof(tm));
                rest = strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm);
                if (!rest) {
                        util_setf(err, errlen, "IMDS: bad Expiration time");
                        goto out;
                }
                c.expiration = timegm(&tm);
        }
        if (sigv4_creds_copy(out, &c) < 0) {
                util_setf(err, errlen, "out of memory");
                r = -ENOMEM;
                goto out;
        }
        r = 0;
out:
        members_free(m, n);
        return r;
}

/* ---- IMDS: the blocking fetcher ---- */

#define IMDS_MAX_BODY (64 * 1024)

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
        struct buf *b = user;
        size_t n = size * nmemb;

        if (buf_append(b, ptr, n) < 0)
                return 0;
        return n;
}

static void body_wipe(struct buf *b)
{
        if (b->data)
                OPENSSL_cleanse(b->data, b->cap);
        buf_free(b);
        memset(b, 0, sizeof(*b));
        b->max = IMDS_MAX_BODY;
}

/* Runs one request; *status gets the HTTP status.  The body is NUL-terminated. */
static int imds_do(CURL *curl, const struct creds_imds_req *rq, long timeout_ms, struct buf *body,
                   long *status, char *err, size_t errlen)
{
        struct curl_slist *hdrs = NULL;
        CURLcode cc;
        int r = 0;

        body_wipe(body);
        *status = 0;
        curl_easy_reset(curl);
        if (rq->header) {
                hdrs = curl_slist_append(NULL, rq->header);
                if (!hdrs)
                        return -ENOMEM;
        }
        curl_easy_setopt(curl, CURLOPT_URL, rq->url);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
        if (strcmp(rq->method, "PUT") == 0) {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
        cc = curl_easy_perform(curl);
        if (cc != CURLE_OK) {
                util_setf(err, errlen, "IMDS %s: %s", rq->url, curl_easy_strerror(cc));
                r = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT :
                    cc == CURLE_WRITE_ERROR ? -E2BIG : -EHOSTUNREACH;
        } else {
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
                if (buf_append(body, "", 1) < 0)
                        r = -ENOMEM;
                else
                        body->len--;
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);
        return r;
}

static long imds_timeout(long timeout_ms)
{
        const char *v = env_nonempty("AWS_METADATA_SERVICE_TIMEOUT");
        long long s;

        if (timeout_ms > 0)
                return timeout_ms;
        if (v && util_parse_ll(v, &s) == 0 && s > 0 && s < 3600)
                return (long)s * 1000;
        return 1000;
}

/* Gets an IMDSv2 token into *token (NULL: IMDSv1 fallback). */
static int imds_token(CURL *curl, const char *endpoint, long tmo, struct buf *body, char **token,
                      char *err, size_t errlen)
{
        struct creds_imds_req rq;
        long status;
        int r;

        *token = NULL;
        r = creds_imds_token_req(endpoint, CREDS_IMDS_TOKEN_TTL, &rq);
        if (r < 0)
                return r;
        r = imds_do(curl, &rq, tmo, body, &status, err, errlen);
        creds_imds_req_clear(&rq);
        if (r < 0)
                return r;
        if (status == 403 || status == 404 || status == 405)
                return 0;
        if (status != 200 || body->len == 0) {
                util_setf(err, errlen, "IMDS token request: HTTP %ld", status);
                return -EHOSTUNREACH;
        }
        *token = strndup(body->data, body->len);
        return *token ? 0 : -ENOMEM;
}

static int imds_get(CURL *curl, const char *endpoint, const char *token, const char *role,
                    bool region, long tmo, struct buf *body, char *err, size_t errlen)
{
        struct creds_imds_req rq;
        long status;
        int r;

        r = region ? creds_imds_region_req(endpoint, token, &rq) :
                     creds_imds_role_req(endpoint, token, role, &rq);
        if (r < 0)
                return r;
        r = imds_do(curl, &rq, tmo, body, &status, err, errlen);
        if (r == 0 && status == 404) {
                util_setf(err, errlen, "IMDS %s: not found (no instance role attached?)", rq.url);
                r = -ENOENT;
        } else if (r == 0 && status != 200) {
                util_setf(err, errlen, "IMDS %s: HTTP %ld", rq.url, status);
                r = -EHOSTUNREACH;
        }
        creds_imds_req_clear(&rq);
        return r;
}

int creds_imds_fetch(const char *endpoint, long timeout_ms, struct sigv4_creds *out,
                     char *source, size_t sourcelen, char *err, size_t errlen)
{
        long tmo = imds_timeout(timeout_ms);
        struct buf body = { 0 };
        char *token = NULL, *role = NULL;
        CURL *curl;
        int r;

        memset(out, 0, sizeof(*out));
        if (creds_imds_disabled()) {
                util_setf(err, errlen, "IMDS disabled by AWS_EC2_METADATA_DISABLED");
                return -ENOENT;
        }
        if (!endpoint)
                endpoint = creds_imds_endpoint();
        curl = curl_easy_init();
        if (!curl) {
                util_setf(err, errlen, "IMDS: curl_easy_init failed");
                return -ENOMEM;
        }
        body.max = IMDS_MAX_BODY;
        r = imds_token(curl, endpoint, tmo, &body, &token, err, errlen);
        if (r < 0)
                goto out;
        r = imds_get(curl, endpoint, token, NULL, false, tmo, &body, err, errlen);
        if (r < 0)
                goto out;
        r = creds_imds_parse_role(body.data, body.len, &role);
        if (r == -ENOENT)
                util_setf(err, errlen, "IMDS: no instance role attached");
        else if (r == -EINVAL)
                util_setf(err, errlen, "IMDS: the role list reply is not a role name");
        if (r < 0)
                goto out;
        r = imds_get(curl, endpoint, token, role, false, tmo, &body, err, errlen);
        if (r < 0)
                goto out;
        r = creds_imds_parse_creds(body.data, body.len, out, err, errlen);
        if (r == 0)
                util_setf(source, sourcelen, "IMDS role %s", role);
out:
        body_wipe(&body);
        free_secret(token);
        free(role);
        curl_easy_cleanup(curl);
        return r;
}

int creds_imds_fetch_region(const char *endpoint, long timeout_ms, char *region,
                            size_t regionlen, char *err, size_t errlen)
{
        long tmo = imds_timeout(timeout_ms);
        struct buf body = { 0 };
        char *token = NULL, *reg = NULL;
        CURL *curl;
        int r;

        if (creds_imds_disabled()) {
                util_setf(err, errlen, "IMDS disabled by AWS_EC2_METADATA_DISABLED");
                return -ENOENT;
        }
        if (!endpoint)
                endpoint = creds_imds_endpoint();
        curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        body.max = IMDS_MAX_BODY;
        r = imds_token(curl, endpoint, tmo, &body, &token, err, errlen);
        if (r == 0)
                r = imds_get(curl, endpoint, token, NULL, true, tmo, &body, err, errlen);
        if (r == 0)
                r = creds_imds_parse_role(body.data, body.len, &reg);
        if (r == -EINVAL)
                util_setf(err, errlen, "IMDS: the region reply is not a region name");
        if (r == 0)
                util_setf(region, regionlen, "%s", reg);
        free(reg);
        body_wipe(&body);
        free_secret(token);
        curl_easy_cleanup(curl);
        return r;
}

int creds_resolve_chain(const char *profile, struct sigv4_creds *out, char *source,
                        size_t sourcelen, char *err, size_t errlen)
{
        char e[512] = "";
        int r = creds_resolve(profile, out, source, sourcelen, e, sizeof(e));
        if (r == -ENOENT && !profile) {
                /* Nothing anywhere is a configuration error, not trouble that
                 * passes: it is said at once, with what was tried. */
                char *cred_path = aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
                char *conf_path = aws_file_path("AWS_CONFIG_FILE", "config");
                char files[1100];
                util_setf(files, sizeof(files), "%s, %s", cred_path ? cred_path : "~/.aws/credentials",
                          conf_path ? conf_path : "~/.aws/config");
                free(cred_path);
                free(conf_path);
                if (creds_imds_disabled()) {
                        util_setf(err, errlen,
                                  "no AWS credentials: none in the environment "
                                  "(AWS_ACCESS_KEY_ID), the shared credentials and config "
                                  "files (%s) or $CREDENTIALS_DIRECTORY, and the instance "
                                  "metadata service is disabled (AWS_EC2_METADATA_DISABLED)",
                                  files);
                        return -ENOKEY;
                }
                char ierr[512] = "";
                r = creds_imds_fetch(NULL, 0, out, source, sourcelen, ierr, sizeof(ierr));
                if (r < 0) {
                        util_setf(err, errlen,
                                  "no AWS credentials: none in the environment "
                                  "(AWS_ACCESS_KEY_ID), the shared credentials and config "
                                  "files (%s) or $CREDENTIALS_DIRECTORY, and the instance "
                                  "metadata service gave none (%s)",
                                  files, ierr[0] ? ierr : strerror(-r));
                        return -ENOKEY;
                }
                return r;
        }
        if (r < 0)
                util_setf(err, errlen, "AWS credentials: %s", e[0] ? e : strerror(-r));
        return r;
}
