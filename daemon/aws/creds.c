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
 *
 * The sources that run or ask something: credential_process (posix_spawnp,
 * no shell, a timeout, stderr into the error, stdout never logged), STS
 * AssumeRole and AssumeRoleWithWebIdentity (sts.c builds and reads them) and
 * the container credentials endpoint.  Their requests are blocking libcurl
 * easy requests too, like IMDS's: the whole chain is resolved on libuv's
 * thread pool (awsenv.c when a step starts, rotate.c when credentials are
 * refused or about to expire), never on the loop, and a resolution asks at
 * most a few small questions once an hour or so; an async version would
 * thread the loop through every caller of the chain for no gain.
 */
#include "aws/creds.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "aws/sts.h"
#include "util.h"

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
                sigv4_secret_free(p->values[i]);
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
                        sigv4_secret_free(out->values[out->n]);
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
        sigv4_secret_free(r->header);
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
        char *value; /* a string's value, or a number's (true, false, null) text */
        bool string;
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
                sigv4_secret_free(m[i].value);
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
                bool string = false;

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
                        string = true;
                } else {
                        /* number, true, false, null: kept as text */
                        const char *v = p;
                        while (p < end && *p != ',' && *p != '}' && *p != '{' && *p != '[' &&
                               *p != '"')
                                p++;
                        if (p < end && (*p == '{' || *p == '[' || *p == '"')) {
                                free(key);
                                goto bad;
                        }
                        const char *ve = p;
                        while (ve > v && isspace((unsigned char)ve[-1]))
                                ve--;
                        value = strndup(v, (size_t)(ve - v));
                        if (!value) {
                                free(key);
                                goto bad;
                        }
                }
                if (*n == JSON_MAX_MEMBERS) {
                        free(key);
                        sigv4_secret_free(value);
                        goto bad;
                }
                m[*n].key = key;
                m[*n].value = value;
                m[*n].string = string;
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

/* A string member's value (NULL when absent or not a string). */
static const char *member(const struct json_member *m, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].key, key) == 0)
                        return m[i].string ? m[i].value : NULL;
        return NULL;
}

/* A number member's text (NULL when absent or a string). */
static const char *member_number(const struct json_member *m, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].key, key) == 0)
                        return m[i].string ? NULL : m[i].value;
        return NULL;
}

/* The JSON credentials of IMDS and container endpoints ({"AccessKeyId",
 * "SecretAccessKey", "Token", "Expiration"}) or of a credential_process
 * ({"Version": 1, ..., "SessionToken"}, the token and the time optional).
 * what prefixes err, which never quotes a value but Code's. */
static int json_creds(const char *what, bool process, const char *body, size_t len,
                      struct sigv4_creds *out, char *err, size_t errlen)
{
        struct json_member m[JSON_MAX_MEMBERS];
        size_t n = 0;
        const char *code, *exp;
        const char *token_key = process ? "SessionToken" : "Token";
        struct sigv4_creds c = {0};
        int r = -EINVAL;

        memset(out, 0, sizeof(*out));
        if (json_flat_parse(body, len, m, &n) < 0) {
                util_setf(err, errlen, "%s: the credentials reply is not a flat JSON object", what);
                return -EINVAL;
        }
        code = member(m, n, "Code");
        if (!process && code && strcmp(code, "Success") != 0) {
                /* Codes are words like "Success"; not secret, but keep it short. */
                util_setf(err, errlen, "%s: credentials reply code %.40s", what, code);
                goto out;
        }
        if (process) {
                const char *v = member_number(m, n, "Version");
                if (!v || strcmp(v, "1") != 0) {
                        util_setf(err, errlen, "%s: \"Version\" is %s, not 1", what,
                                  v ? "another number" : "missing or not a number");
                        goto out;
                }
        }
        c.access_key_id = (char *)member(m, n, "AccessKeyId");
        c.secret_access_key = (char *)member(m, n, "SecretAccessKey");
        c.session_token = (char *)member(m, n, token_key);
        if (!c.access_key_id || !c.secret_access_key || (!process && !c.session_token)) {
                util_setf(err, errlen, "%s: the credentials reply lacks %s", what,
                          !c.access_key_id       ? "AccessKeyId"
                          : !c.secret_access_key ? "SecretAccessKey"
                                                 : token_key);
                goto out;
        }
        exp = member(m, n, "Expiration");
        if (exp && sts_parse_time(exp, &c.expiration) < 0) {
                util_setf(err, errlen, "%s: bad Expiration time", what);
                goto out;
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

int creds_imds_parse_creds(const char *body, size_t len, struct sigv4_creds *out, char *err,
                           size_t errlen)
{
        return json_creds("IMDS", false, body, len, out, err, errlen);
}

int creds_process_parse(const char *body, size_t len, struct sigv4_creds *out, char *err,
                        size_t errlen)
{
        return json_creds("credential_process", true, body, len, out, err, errlen);
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

/* Runs one blocking request (what names it in err); *status gets the HTTP
 * status and body the reply, NUL-terminated.  headers are "Name: value"
 * lines; body NULL sends none (a PUT or POST sends body, maybe "").
 * proxy: whether the environment's proxies may be used (not for link-local
 * metadata services). */
static int easy_do(CURL *curl, const char *what, const char *method, const char *url,
                   char *const *headers, size_t nheaders, const char *reqbody, bool proxy,
                   long timeout_ms, struct buf *body, long *status, char *err, size_t errlen)
{
        struct curl_slist *hdrs = NULL;
        CURLcode cc;
        int r = 0;

        body_wipe(body);
        *status = 0;
        curl_easy_reset(curl);
        for (size_t i = 0; i < nheaders; i++) {
                struct curl_slist *l = curl_slist_append(hdrs, headers[i]);
                if (!l) {
                        curl_slist_free_all(hdrs);
                        return -ENOMEM;
                }
                hdrs = l;
        }
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        if (reqbody) {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, reqbody);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(reqbody));
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        if (!proxy)
                curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
        cc = curl_easy_perform(curl);
        if (cc != CURLE_OK) {
                util_setf(err, errlen, "%s %s: %s", what, url, curl_easy_strerror(cc));
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

static int imds_do(CURL *curl, const struct creds_imds_req *rq, long timeout_ms, struct buf *body,
                   long *status, char *err, size_t errlen)
{
        return easy_do(curl, "IMDS", rq->method, rq->url, rq->header ? &rq->header : NULL,
                       rq->header ? 1 : 0, strcmp(rq->method, "PUT") == 0 ? "" : NULL, false,
                       timeout_ms, body, status, err, errlen);
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
        sigv4_secret_free(token);
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
        sigv4_secret_free(token);
        curl_easy_cleanup(curl);
        return r;
}

/* ---- credential_process ---- */

void creds_argv_free(char **argv)
{
        if (!argv)
                return;
        for (char **a = argv; *a; a++)
                free(*a);
        free(argv);
}

/* Splits as Python's shlex.split (POSIX mode) does, which is how the AWS CLI
 * splits credential_process on Linux: blanks separate words, '...' is
 * literal, "..." keeps blanks and lets \ escape \ " $ ` and newline, a \
 * outside quotes escapes the next character. */
int creds_process_split(const char *cmd, char ***ret)
{
        struct buf w = {0};
        char **argv = NULL;
        size_t n = 0;
        bool in_word = false;
        int r = 0;

        *ret = NULL;
        for (const char *p = cmd;; p++) {
                char c = *p;
                if (c == '\0' || isspace((unsigned char)c)) {
                        if (in_word) {
                                char **a = realloc(argv, (n + 2) * sizeof(*argv));
                                if (!a || buf_append(&w, "", 1) < 0) {
                                        if (a)
                                                argv = a;
                                        r = -ENOMEM;
                                        break;
                                }
                                argv = a;
                                argv[n++] = w.data ? w.data : strdup("");
                                argv[n] = NULL;
                                memset(&w, 0, sizeof(w));
                                if (!argv[n - 1]) {
                                        r = -ENOMEM;
                                        break;
                                }
                                in_word = false;
                        }
                        if (c == '\0')
                                break;
                        continue;
                }
                in_word = true;
                if (c == '\'') {
                        const char *q = strchr(p + 1, '\'');
                        if (!q) {
                                r = -EINVAL;
                                break;
                        }
                        if (q > p + 1 && buf_append(&w, p + 1, (size_t)(q - p - 1)) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        p = q;
                } else if (c == '"') {
                        for (p++; *p && *p != '"'; p++) {
                                if (*p == '\\' && p[1] && strchr("\\\"$`\n", p[1]))
                                        p++;
                                if (buf_append(&w, p, 1) < 0) {
                                        r = -ENOMEM;
                                        break;
                                }
                        }
                        if (r < 0)
                                break;
                        if (!*p) {
                                r = -EINVAL;
                                break;
                        }
                } else if (c == '\\') {
                        if (!p[1]) {
                                r = -EINVAL;
                                break;
                        }
                        p++;
                        if (*p != '\n' && buf_append(&w, p, 1) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                } else if (buf_append(&w, p, 1) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        buf_free(&w);
        if (r == 0 && n == 0)
                r = -ENOENT;
        if (r < 0) {
                if (argv)
                        argv[n] = NULL;
                creds_argv_free(argv);
                return r;
        }
        *ret = argv;
        return 0;
}

#define PROCESS_MAX_OUT (64 * 1024)
#define PROCESS_MAX_ERR 2048

/* Runs argv (PATH searched, stdin /dev/null, every signal at its default)
 * and collects stdout into out and the start of stderr into errtext, for at
 * most timeout_ms; then *wstatus.  -ETIMEDOUT (killed), -E2BIG (too much
 * output, killed), or -errno of posix_spawnp (-ENOENT: no such command). */
static int process_run(char *const argv[], long timeout_ms, struct buf *out, char *errtext,
                       size_t errtextlen, int *wstatus)
{
        int op[2] = {-1, -1}, ep[2] = {-1, -1};
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        size_t errn = 0;
        pid_t pid;
        int r;

        errtext[0] = '\0';
        if (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
                r = -errno;
                if (op[0] >= 0) {
                        close(op[0]);
                        close(op[1]);
                }
                return r;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, op[1], 1);
        posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
        posix_spawnattr_init(&attr);
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = -posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        close(op[1]);
        close(ep[1]);
        if (r < 0) {
                close(op[0]);
                close(ep[0]);
                return r;
        }
        struct pollfd pf[2] = {{.fd = op[0], .events = POLLIN}, {.fd = ep[0], .events = POLLIN}};
        uint64_t deadline = util_now_mono_ms() + (uint64_t)timeout_ms;
        while (r == 0 && (pf[0].fd >= 0 || pf[1].fd >= 0)) {
                uint64_t now = util_now_mono_ms();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                int k = poll(pf, 2, (int)(deadline - now));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        char chunk[4096];
                        if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t got = read(pf[i].fd, chunk, sizeof(chunk));
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got <= 0) {
                                close(pf[i].fd);
                                pf[i].fd = -1;
                        } else if (i == 0) {
                                if (buf_append(out, chunk, (size_t)got) < 0)
                                        r = -E2BIG;
                                OPENSSL_cleanse(chunk, sizeof(chunk));
                        } else if (errn + 1 < errtextlen) {
                                size_t take = (size_t)got;
                                if (take > errtextlen - errn - 1)
                                        take = errtextlen - errn - 1;
                                memcpy(errtext + errn, chunk, take);
                                errn += take;
                                errtext[errn] = '\0';
                        }
                }
        }
        for (int i = 0; i < 2; i++)
                if (pf[i].fd >= 0)
                        close(pf[i].fd);
        if (r < 0)
                kill(pid, SIGKILL);
        while (waitpid(pid, wstatus, 0) < 0 && errno == EINTR)
                ;
        return r;
}

/* stderr made one short line for an error message. */
static void one_line(char *s, size_t max)
{
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        for (char *c = s; *c; c++)
                if (*c == '\n' || *c == '\r' || *c == '\t')
                        *c = ' ';
        if (strlen(s) > max)
                s[util_utf8_cut(s, strlen(s), max)] = '\0';
}

static long process_timeout_ms(void)
{
        const char *v = env_nonempty("ETLD_CREDENTIAL_PROCESS_TIMEOUT");
        long long s;
        if (v && util_parse_ll(v, &s) == 0 && s > 0 && s <= 3600)
                return (long)s * 1000;
        return CREDS_PROCESS_TIMEOUT_S * 1000L;
}

/* Runs credential_process cmd of the profile at where; its output is never
 * logged nor quoted. */
static int credential_process(const char *cmd, const char *where, struct sigv4_creds *out,
                              char *err, size_t errlen)
{
        char **argv = NULL;
        struct buf o = {.max = PROCESS_MAX_OUT};
        char errtext[PROCESS_MAX_ERR];
        char e[300];
        int st = 0;
        int r = creds_process_split(cmd, &argv);
        if (r == -EINVAL || r == -ENOENT) {
                util_setf(err, errlen, "%s: credential_process: %s", where,
                          r == -EINVAL ? "an unclosed quote or a trailing backslash"
                                       : "the command is empty");
                return -EINVAL;
        }
        if (r < 0)
                return r;
        r = process_run(argv, process_timeout_ms(), &o, errtext, sizeof(errtext), &st);
        one_line(errtext, 400);
        if (r == -ETIMEDOUT)
                util_setf(err, errlen, "%s: credential_process %s did not finish in %ld s, killed",
                          where, argv[0], process_timeout_ms() / 1000);
        else if (r == -E2BIG)
                util_setf(err, errlen, "%s: credential_process %s wrote more than %d bytes", where,
                          argv[0], PROCESS_MAX_OUT);
        else if (r < 0) {
                util_setf(err, errlen, "%s: credential_process %s: %s", where, argv[0],
                          strerror(-r));
                /* a command that cannot run is a configuration error; never
                 * -ENOENT, which means "no credentials here, go on" */
                if (r != -ENOMEM)
                        r = -EINVAL;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                util_setf(err, errlen, "%s: credential_process %s %s %d%s%s", where, argv[0],
                          WIFEXITED(st) ? "exited with status" : "killed by signal",
                          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), errtext[0] ? ": " : "",
                          errtext);
                r = -EINVAL;
        } else {
                r = creds_process_parse(o.data ? o.data : "", o.len, out, e, sizeof(e));
                if (r < 0)
                        util_setf(err, errlen, "%s: %s (run by %s)", where, e, argv[0]);
        }
        if (o.data)
                OPENSSL_cleanse(o.data, o.cap);
        buf_free(&o);
        creds_argv_free(argv);
        return r;
}

/* ---- container credentials (ECS, EKS Pod Identity) ---- */

bool creds_container_url_allowed(const char *url)
{
        char host[256];
        const char *h;
        size_t n;

        if (strncmp(url, "https://", 8) == 0)
                return true;
        if (strncmp(url, "http://", 7) != 0)
                return false;
        h = url + 7;
        if (*h == '[') {
                n = strcspn(h + 1, "]");
                if (h[1 + n] != ']' || n >= sizeof(host))
                        return false;
                snprintf(host, sizeof(host), "%.*s", (int)n, h + 1);
        } else {
                n = strcspn(h, ":/?#");
                if (n == 0 || n >= sizeof(host))
                        return false;
                snprintf(host, sizeof(host), "%.*s", (int)n, h);
        }
        if (strchr(host, '@'))
                return false;
        if (strcasecmp(host, "localhost") == 0)
                return true;
        struct in_addr a4;
        struct in6_addr a6, want;
        if (inet_pton(AF_INET, host, &a4) == 1) {
                uint32_t ip = ntohl(a4.s_addr);
                return (ip >> 24) == 127 || ip == 0xA9FEAA02 /* 169.254.170.2 */ ||
                       ip == 0xA9FEAA17 /* 169.254.170.23 */;
        }
        if (inet_pton(AF_INET6, host, &a6) == 1) {
                if (IN6_IS_ADDR_LOOPBACK(&a6))
                        return true;
                return inet_pton(AF_INET6, "fd00:ec2::23", &want) == 1 &&
                       memcmp(&a6, &want, sizeof(want)) == 0;
        }
        return false;
}

int creds_container_req(struct creds_imds_req *out, char *err, size_t errlen)
{
        const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        const char *tfile = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        const char *tok = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        char *data = NULL;
        size_t len = 0;
        int r;

        memset(out, 0, sizeof(*out));
        out->method = "GET";
        if (rel) {
                if (rel[0] != '/') {
                        util_setf(err, errlen,
                                  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'");
                        return -EINVAL;
                }
                out->url = join_url(CREDS_CONTAINER_HOST, rel, NULL);
        } else if (full) {
                if (!creds_container_url_allowed(full)) {
                        util_setf(
                            err, errlen,
                            "AWS_CONTAINER_CREDENTIALS_FULL_URI %.200s: only https, or http to "
                            "a loopback address, 169.254.170.2, 169.254.170.23 or "
                            "fd00:ec2::23, is allowed (as in the AWS SDKs)",
                            full);
                        return -EINVAL;
                }
                out->url = strdup(full);
        } else {
                return -ENOENT;
        }
        if (!out->url)
                return -ENOMEM;
        if (tfile) {
                r = util_read_file(tfile, &data, &len);
                if (r < 0) {
                        util_setf(err, errlen, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
                                  tfile, strerror(-r));
                        creds_imds_req_clear(out);
                        return r == -ENOMEM ? r : -EINVAL; /* -ENOENT: not configured */
                }
                tok = trim(data, data + len);
        }
        if (tok && (strpbrk(tok, "\r\n") || !tok[0])) {
                util_setf(err, errlen, "%s: the authorization token is empty or holds a line break",
                          tfile ? tfile : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
                r = -EINVAL;
        } else if (tok) {
                size_t n = strlen(tok) + sizeof("Authorization: ");
                out->header = malloc(n);
                if (out->header)
                        snprintf(out->header, n, "Authorization: %s", tok);
                r = out->header ? 0 : -ENOMEM;
        } else {
                r = 0;
        }
        if (data) {
                OPENSSL_cleanse(data, len);
                free(data);
        }
        if (r < 0)
                creds_imds_req_clear(out);
        return r;
}

/* BLOCKING: the container credentials endpoint, when configured (-ENOENT
 * when not). */
static int container_fetch(struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                           size_t errlen)
{
        struct creds_imds_req rq;
        struct buf body = {.max = IMDS_MAX_BODY};
        long status = 0;
        char e[300];
        int r = creds_container_req(&rq, err, errlen);
        if (r < 0)
                return r;
        CURL *curl = curl_easy_init();
        if (!curl) {
                creds_imds_req_clear(&rq);
                return -ENOMEM;
        }
        r = easy_do(curl, "container credentials", "GET", rq.url, rq.header ? &rq.header : NULL,
                    rq.header ? 1 : 0, NULL, false, CREDS_CONTAINER_TIMEOUT_MS, &body, &status, err,
                    errlen);
        if (r == 0 && status != 200) {
                util_setf(err, errlen, "container credentials %s: HTTP %ld", rq.url, status);
                r = status == 401 || status == 403 ? -EACCES : -EHOSTUNREACH;
        }
        if (r == 0) {
                r = json_creds("container credentials", false, body.data, body.len, out, e,
                               sizeof(e));
                if (r < 0)
                        util_setf(err, errlen, "%s (%s)", e, rq.url);
                else
                        util_setf(source, sourcelen, "container credentials %s", rq.url);
        }
        body_wipe(&body);
        curl_easy_cleanup(curl);
        creds_imds_req_clear(&rq);
        return r;
}

/* ---- the chain with profiles: assume role, web identity ---- */

#define CHAIN_MAX_DEPTH 8

struct chain {
        const char *profile; /* the argument: NULL or "" unless explicit */
        bool explicit_profile;
        bool static_only;            /* creds_resolve: files only, nothing run or sent */
        const struct creds_sts *sts; /* the caller's STS place, or NULL */
        char *cred_path, *conf_path;
        const char *visited[CHAIN_MAX_DEPTH];
        size_t nvisited;
};

/* A profile's keys from both files: the credentials file's win, as botocore
 * merges them. */
struct merged {
        struct profile_kv conf, cred;
};

static const char *merged_get(const struct merged *m, const char *key)
{
        const char *v = profile_get(&m->cred, key);
        return v ? v : profile_get(&m->conf, key);
}

static void merged_clear(struct merged *m)
{
        profile_kv_clear(&m->conf);
        profile_kv_clear(&m->cred);
}

static int merged_load(const struct chain *ch, const char *name, struct merged *m, char *err,
                       size_t errlen)
{
        bool exists;
        int r = 0;
        memset(m, 0, sizeof(*m));
        if (ch->cred_path)
                r = read_profile(ch->cred_path, false, name, &m->cred, &exists, err, errlen);
        if (r == 0 && ch->conf_path)
                r = read_profile(ch->conf_path, true, name, &m->conf, &exists, err, errlen);
        if (r < 0)
                merged_clear(m);
        return r;
}

static void where_conf(const struct chain *ch, const char *name, char *out, size_t outlen)
{
        if (strcmp(name, "default") == 0)
                util_setf(out, outlen, "%s [default]", ch->conf_path ? ch->conf_path : "config");
        else
                util_setf(out, outlen, "%s [profile %s]", ch->conf_path ? ch->conf_path : "config",
                          name);
}

/* Where the profile's key comes from, for messages. */
static void where_key(const struct chain *ch, const struct merged *m, const char *name,
                      const char *key, char *out, size_t outlen)
{
        if (profile_get(&m->cred, key))
                util_setf(out, outlen, "%s [%s]", ch->cred_path, name);
        else
                where_conf(ch, name, out, outlen);
}

bool creds_env_true(const char *name)
{
        const char *v = env_nonempty(name);
        return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

int creds_sts_endpoint(const char *profile, char *endpoint, size_t endpointlen, char *region,
                       size_t regionlen, char *err, size_t errlen)
{
        char src[300], e[300];
        const char *ep = NULL;
        int r = creds_resolve_region(profile, region, regionlen, src, sizeof(src), e, sizeof(e));
        if (r == -EINVAL) {
                util_setf(err, errlen, "%s", e);
                return r;
        }
        if (r < 0)
                util_setf(region, regionlen, "%s", CREDS_STS_DEFAULT_REGION);
        if (!creds_env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
                ep = env_nonempty("AWS_ENDPOINT_URL_STS");
                if (!ep)
                        ep = env_nonempty("AWS_ENDPOINT_URL");
                if (!ep) {
                        r = creds_profile_value(profile, "endpoint_url", endpoint, endpointlen, src,
                                                sizeof(src), err, errlen);
                        if (r == -EINVAL)
                                return r;
                        if (r == 0)
                                return 0;
                }
        }
        if (ep)
                util_setf(endpoint, endpointlen, "%s", ep);
        else
                util_setf(endpoint, endpointlen, "https://sts.%s.amazonaws.com", region);
        return 0;
}

/* The STS endpoint and region of this resolution. */
static int chain_sts(const struct chain *ch, char *endpoint, size_t endpointlen, char *region,
                     size_t regionlen, char *err, size_t errlen)
{
        if (!ch->sts)
                return creds_sts_endpoint(ch->profile, endpoint, endpointlen, region, regionlen,
                                          err, errlen);
        util_setf(region, regionlen, "%s",
                  ch->sts->region && ch->sts->region[0] ? ch->sts->region
                                                        : CREDS_STS_DEFAULT_REGION);
        if (ch->sts->endpoint && ch->sts->endpoint[0])
                util_setf(endpoint, endpointlen, "%s", ch->sts->endpoint);
        else
                util_setf(endpoint, endpointlen, "https://sts.%s.amazonaws.com", region);
        return 0;
}

/* BLOCKING: sends an STS request and reads its reply. */
static int sts_send(const char *action, const struct sts_req *rq, struct sigv4_creds *out,
                    char *err, size_t errlen)
{
        struct buf body = {.max = IMDS_MAX_BODY};
        long status = 0;
        char what[64];
        CURL *curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        util_setf(what, sizeof(what), "STS %s at", action);
        int r = easy_do(curl, what, "POST", rq->url, rq->headers, rq->nheaders, rq->body, true,
                        CREDS_STS_TIMEOUT_MS, &body, &status, err, errlen);
        if (r == 0)
                r = sts_parse_reply(action, status, body.data ? body.data : "", body.len, out, err,
                                    errlen);
        body_wipe(&body);
        curl_easy_cleanup(curl);
        return r;
}

static int parse_duration(const struct chain *ch, const struct merged *m, const char *name,
                          long *ret, char *err, size_t errlen)
{
        const char *v = merged_get(m, "duration_seconds");
        long long d;
        char where[1100];
        *ret = 0;
        if (!v)
                return 0;
        if (util_parse_ll(v, &d) < 0 || d < 900 || d > 43200) {
                where_key(ch, m, name, "duration_seconds", where, sizeof(where));
                util_setf(err, errlen,
                          "%s: duration_seconds must be a number of seconds from 900 "
                          "to 43200",
                          where);
                return -EINVAL;
        }
        *ret = (long)d;
        return 0;
}

static int profile_creds(struct chain *ch, const char *name, bool top, bool *found,
                         struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                         size_t errlen);

static bool has_static(const struct merged *m)
{
        return merged_get(m, "aws_access_key_id") || merged_get(m, "aws_secret_access_key");
}

/* The credentials AssumeRole is signed with: credential_source or
 * source_profile (loops refused, a profile naming itself allowed when it has
 * static keys, as in botocore). */
static int role_source(struct chain *ch, const char *name, const struct merged *m,
                       const char *where, struct sigv4_creds *src, char *srcname, size_t srcnamelen,
                       char *err, size_t errlen)
{
        const char *sp = merged_get(m, "source_profile");
        const char *cs = merged_get(m, "credential_source");
        bool found = false;
        char e[700] = "";
        int r;

        if (sp && cs) {
                util_setf(err, errlen, "%s: both source_profile and credential_source; keep one",
                          where);
                return -EINVAL;
        }
        if (!sp && !cs) {
                util_setf(err, errlen,
                          "%s: role_arn needs source_profile or credential_source "
                          "(Environment, Ec2InstanceMetadata or EcsContainer)",
                          where);
                return -EINVAL;
        }
        if (cs) {
                if (strcmp(cs, "Environment") == 0) {
                        r = creds_from_env(&found, src, e, sizeof(e));
                        if (r == 0 && !found) {
                                util_setf(err, errlen,
                                          "%s: credential_source Environment, but "
                                          "AWS_ACCESS_KEY_ID is not set",
                                          where);
                                return -EINVAL;
                        }
                        util_setf(srcname, srcnamelen, "environment");
                } else if (strcmp(cs, "Ec2InstanceMetadata") == 0) {
                        r = creds_imds_fetch(NULL, 0, src, srcname, srcnamelen, e, sizeof(e));
                } else if (strcmp(cs, "EcsContainer") == 0) {
                        r = container_fetch(src, srcname, srcnamelen, e, sizeof(e));
                        if (r == -ENOENT)
                                util_setf(e, sizeof(e),
                                          "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
                                          "_FULL_URI is set");
                } else {
                        util_setf(err, errlen,
                                  "%s: credential_source '%.40s' is not Environment, "
                                  "Ec2InstanceMetadata or EcsContainer",
                                  where, cs);
                        return -EINVAL;
                }
                if (r < 0)
                        util_setf(err, errlen, "%s: credential_source %s: %s", where, cs,
                                  e[0] ? e : strerror(-r));
                return r < 0 && r != -ENOMEM ? -EINVAL : r;
        }
        for (size_t i = 0; i < ch->nvisited; i++) {
                if (strcmp(ch->visited[i], sp) != 0)
                        continue;
                if (strcmp(sp, name) == 0 && has_static(m))
                        break; /* the profile's own keys */
                struct buf path = {0};
                for (size_t k = 0; k < ch->nvisited; k++)
                        buf_cat(&path, 2, ch->visited[k], " -> ");
                buf_cat(&path, 1, sp);
                buf_append(&path, "", 1);
                util_setf(err, errlen,
                          "%s: source_profile loop: %s; a source profile needs keys "
                          "of its own",
                          where, path.data ? path.data : sp);
                buf_free(&path);
                return -EINVAL;
        }
        if (ch->nvisited == CHAIN_MAX_DEPTH) {
                util_setf(err, errlen, "%s: more than %d roles chained through source_profile",
                          where, CHAIN_MAX_DEPTH);
                return -EINVAL;
        }
        ch->visited[ch->nvisited++] = sp;
        r = profile_creds(ch, sp, false, &found, src, srcname, srcnamelen, e, sizeof(e));
        if (r == 1 || (r == 0 && !found)) {
                util_setf(err, errlen, "%s: source_profile '%s' %s", where, sp,
                          found ? "has no credentials" : "does not exist in either file");
                return -EINVAL;
        }
        if (r < 0)
                util_setf(err, errlen, "%s", e);
        return r;
}

static int assume_role(struct chain *ch, const char *name, const struct merged *m,
                       struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                       size_t errlen)
{
        char where[1100], srcname[300] = "", endpoint[1024], region[64], e[700] = "";
        struct sigv4_creds src = {0};
        struct sts_req rq = {0};
        struct sts_role role = {
            .role_arn = merged_get(m, "role_arn"),
            .role_session_name = merged_get(m, "role_session_name"),
            .external_id = merged_get(m, "external_id"),
        };
        int r;

        where_key(ch, m, name, "role_arn", where, sizeof(where));
        if (merged_get(m, "mfa_serial")) {
                util_setf(err, errlen,
                          "%s: mfa_serial asks for a code typed by a person, and etld runs "
                          "unattended, so it cannot prompt: use a role that needs no MFA, or "
                          "credential_process",
                          where);
                return -EINVAL;
        }
        r = parse_duration(ch, m, name, &role.duration_s, err, errlen);
        if (r < 0)
                return r;
        r = role_source(ch, name, m, where, &src, srcname, sizeof(srcname), err, errlen);
        if (r < 0)
                return r;
        r = chain_sts(ch, endpoint, sizeof(endpoint), region, sizeof(region), e, sizeof(e));
        if (r == 0)
                r = sts_assume_role_req(endpoint, region, &role, &src, time(NULL), &rq, e,
                                        sizeof(e));
        if (r == 0)
                r = sts_send("AssumeRole", &rq, out, e, sizeof(e));
        if (r < 0)
                util_setf(err, errlen, "%s: assuming role %s: %s", where, role.role_arn,
                          e[0] ? e : strerror(-r));
        else
                util_setf(source, sourcelen, "role %s (profile %s) assumed with %s", role.role_arn,
                          name, srcname);
        sts_req_clear(&rq);
        sigv4_creds_clear(&src);
        return r;
}

/* 1 when no web identity is configured. */
static int web_identity(struct chain *ch, const char *name, bool use_env, const struct merged *m,
                        struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                        size_t errlen)
{
        const char *file = use_env ? env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE") : NULL;
        const char *arn = use_env ? env_nonempty("AWS_ROLE_ARN") : NULL;
        const char *session = use_env ? env_nonempty("AWS_ROLE_SESSION_NAME") : NULL;
        char where[1100], endpoint[1024], region[64], e[700] = "";
        struct sts_req rq = {0};
        char *data = NULL;
        size_t len = 0;
        int r;

        if (file)
                util_setf(where, sizeof(where), "AWS_WEB_IDENTITY_TOKEN_FILE");
        else if ((file = merged_get(m, "web_identity_token_file")))
                where_key(ch, m, name, "web_identity_token_file", where, sizeof(where));
        else
                return 1;
        if (!arn)
                arn = merged_get(m, "role_arn");
        if (!session)
                session = merged_get(m, "role_session_name");
        if (!arn) {
                util_setf(err, errlen,
                          "%s: a web identity token but no role: set AWS_ROLE_ARN "
                          "or role_arn",
                          where);
                return -EINVAL;
        }
        r = util_read_file(file, &data, &len);
        if (r < 0) {
                util_setf(err, errlen, "%s: %s: %s", where, file, strerror(-r));
                return r == -ENOMEM ? r : -EINVAL;
        }
        struct sts_role role = {.role_arn = arn, .role_session_name = session};
        r = parse_duration(ch, m, name, &role.duration_s, err, errlen);
        if (r < 0)
                goto out;
        r = chain_sts(ch, endpoint, sizeof(endpoint), region, sizeof(region), e, sizeof(e));
        if (r == 0)
                r = sts_web_identity_req(endpoint, &role, trim(data, data + len), time(NULL), &rq,
                                         e, sizeof(e));
        if (r == 0)
                r = sts_send("AssumeRoleWithWebIdentity", &rq, out, e, sizeof(e));
        if (r < 0)
                util_setf(err, errlen, "%s: assuming role %s with web identity: %s", where, arn,
                          e[0] ? e : strerror(-r));
        else
                util_setf(source, sourcelen, "role %s assumed with the web identity token %s", arn,
                          file);
out:
        sts_req_clear(&rq);
        OPENSSL_cleanse(data, len);
        free(data);
        return r;
}

/* The credentials of profile name, in botocore's order: assume role (a
 * role_arn, unless a source profile's own keys come first), web identity,
 * the credentials file's keys, credential_process, the config file's keys.
 * 0, 1 when the profile has none, or -errno.  *found: the profile exists. */
static int profile_creds(struct chain *ch, const char *name, bool top, bool *found,
                         struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                         size_t errlen)
{
        struct merged m;
        char where[1100];
        int r = merged_load(ch, name, &m, err, errlen);
        if (r < 0)
                return r;
        *found = m.conf.found || m.cred.found;
        bool role = merged_get(&m, "role_arn") && !merged_get(&m, "web_identity_token_file");
        if (!ch->static_only && role && (top || !has_static(&m))) {
                r = assume_role(ch, name, &m, out, source, sourcelen, err, errlen);
                goto out;
        }
        if (!ch->static_only) {
                r = web_identity(ch, name, top && !ch->explicit_profile, &m, out, source, sourcelen,
                                 err, errlen);
                if (r <= 0)
                        goto out;
        }
        if (ch->cred_path) {
                util_setf(where, sizeof(where), "%s [%s]", ch->cred_path, name);
                r = creds_from_profile(&m.cred, where, out, err, errlen);
                if (r <= 0)
                        goto done;
        }
        if (!ch->static_only && merged_get(&m, "credential_process")) {
                where_key(ch, &m, name, "credential_process", where, sizeof(where));
                r = credential_process(merged_get(&m, "credential_process"), where, out, err,
                                       errlen);
                if (r == 0)
                        util_setf(source, sourcelen, "credential_process of %s", where);
                goto out;
        }
        if (ch->conf_path) {
                where_conf(ch, name, where, sizeof(where));
                r = creds_from_profile(&m.conf, where, out, err, errlen);
                if (r <= 0)
                        goto done;
        }
        r = 1;
        goto out;
done:
        if (r == 0)
                util_setf(source, sourcelen, "%s", where);
out:
        merged_clear(&m);
        return r;
}

static int chain_resolve(const char *profile, bool static_only, const struct creds_sts *sts,
                         struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                         size_t errlen)
{
        struct chain ch = {
            .profile = profile && profile[0] ? profile : NULL,
            .explicit_profile = profile && profile[0],
            .static_only = static_only,
            .sts = sts,
        };
        const char *name = profile_name(profile);
        bool named = ch.explicit_profile || env_nonempty("AWS_PROFILE") ||
                     env_nonempty("AWS_DEFAULT_PROFILE");
        bool found = false;
        int r;

        memset(out, 0, sizeof(*out));
        util_setf(source, sourcelen, "%s", "");

        /* Environment (an explicit profile negates it, as in botocore). */
        if (!ch.explicit_profile) {
                r = creds_from_env(&found, out, err, errlen);
                if (r < 0)
                        return r;
                if (found) {
                        util_setf(source, sourcelen, "environment");
                        return 0;
                }
        }
        ch.cred_path = aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        ch.conf_path = aws_file_path("AWS_CONFIG_FILE", "config");
        ch.visited[ch.nvisited++] = name;
        r = profile_creds(&ch, name, true, &found, out, source, sourcelen, err, errlen);
        if (r <= 0)
                goto out;

        /* A named profile must exist (botocore raises ProfileNotFound). */
        if (named && !found) {
                util_setf(err, errlen, "AWS profile '%s' not found in %s or %s", name,
                          ch.cred_path ? ch.cred_path : "~/.aws/credentials",
                          ch.conf_path ? ch.conf_path : "~/.aws/config");
                r = -EINVAL;
                goto out;
        }

        /* systemd credentials. */
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
                  ch.cred_path ? ch.cred_path : "~/.aws/credentials", name,
                  ch.conf_path ? ch.conf_path : "~/.aws/config");
out:
        if (r < 0)
                sigv4_creds_clear(out);
        free(ch.cred_path);
        free(ch.conf_path);
        return r;
}

int creds_resolve(const char *profile, struct sigv4_creds *out, char *source, size_t sourcelen,
                  char *err, size_t errlen)
{
        return chain_resolve(profile, true, NULL, out, source, sourcelen, err, errlen);
}

int creds_resolve_chain(const char *profile, struct sigv4_creds *out, char *source,
                        size_t sourcelen, char *err, size_t errlen)
{
        return creds_resolve_chain_at(profile, NULL, out, source, sourcelen, err, errlen);
}

int creds_resolve_chain_at(const char *profile, const struct creds_sts *sts,
                           struct sigv4_creds *out, char *source, size_t sourcelen, char *err,
                           size_t errlen)
{
        char e[1024] = "";
        int r = chain_resolve(profile, false, sts, out, source, sourcelen, e, sizeof(e));
        if (r == -ENOENT && !(profile && profile[0])) {
                /* Nothing in the files: the container endpoint, then IMDS.
                 * Nothing anywhere is a configuration error, not trouble that
                 * passes: it is said at once, with what was tried. */
                char *cred_path = aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
                char *conf_path = aws_file_path("AWS_CONFIG_FILE", "config");
                char files[1100];
                util_setf(files, sizeof(files), "%s, %s", cred_path ? cred_path : "~/.aws/credentials",
                          conf_path ? conf_path : "~/.aws/config");
                free(cred_path);
                free(conf_path);
                r = container_fetch(out, source, sourcelen, e, sizeof(e));
                if (r != -ENOENT) {
                        if (r < 0)
                                util_setf(err, errlen, "AWS credentials: %s", e);
                        return r;
                }
                if (creds_imds_disabled()) {
                        util_setf(err, errlen,
                                  "no AWS credentials: none in the environment "
                                  "(AWS_ACCESS_KEY_ID, AWS_WEB_IDENTITY_TOKEN_FILE, "
                                  "AWS_CONTAINER_CREDENTIALS_*), the shared credentials and "
                                  "config files (%s) or $CREDENTIALS_DIRECTORY, and the instance "
                                  "metadata service is disabled (AWS_EC2_METADATA_DISABLED)",
                                  files);
                        return -ENOKEY;
                }
                char ierr[512] = "";
                r = creds_imds_fetch(NULL, 0, out, source, sourcelen, ierr, sizeof(ierr));
                if (r < 0) {
                        util_setf(err, errlen,
                                  "no AWS credentials: none in the environment "
                                  "(AWS_ACCESS_KEY_ID, AWS_WEB_IDENTITY_TOKEN_FILE, "
                                  "AWS_CONTAINER_CREDENTIALS_*), the shared credentials and "
                                  "config files (%s) or $CREDENTIALS_DIRECTORY, and the instance "
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
