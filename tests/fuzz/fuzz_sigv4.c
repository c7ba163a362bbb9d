/* fuzz_sigv4.c - SigV4 canonicalisation and signing (daemon/aws/sigv4.h).
 *
 * Input: an HTTP request as the AWS test suite writes them (request.txt):
 * "METHOD TARGET HTTP/1.1", header lines "Name:value" (a line starting with
 * a blank continues the previous value), a blank line, the body.  It is
 * signed as S3 and as another service, in header mode and presigned, with
 * the path raw and already encoded, with and without a session token.
 * Checked besides memory safety:
 *   - the wire path and query use only unreserved characters, '/', '=', '&'
 *     and %XX with upper-case hex, and the query is sorted;
 *   - for S3 the wire path decodes back to the raw path (what is sent is the
 *     key asked for, byte for byte);
 *   - the signature is 64 lower-case hex digits and signing is deterministic;
 *   - no header etld sends carries a CR or LF;
 *   - a refusal says why. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "fuzz.h"
#include "util.h"

#define MAX_FIELDS 32

struct parsed {
        char *method, *host, *target, *raw_path, *enc_path;
        struct sigv4_param params[MAX_FIELDS];
        size_t nparams;
        struct sigv4_header headers[MAX_FIELDS];
        size_t nheaders;
        char body_sha[65];
};

static char *dup_n(const char *s, size_t n)
{
        char *d = strndup(s, n);
        FUZZ_CHECK(d, "out of memory");
        return d;
}

static char *pct_decoded(const char *s, size_t n)
{
        char *d = malloc(n + 1);
        FUZZ_CHECK(d, "out of memory");
        util_pct_decode(s, n, false, d);
        return d;
}

static void parse(const char *text, size_t len, struct parsed *p)
{
        memset(p, 0, sizeof(*p));
        const char *end = text + len;
        const char *nl = memchr(text, '\n', len);
        const char *line_end = nl ? nl : end;
        const char *sp = memchr(text, ' ', (size_t)(line_end - text));
        const char *t0 = sp ? sp + 1 : line_end;
        const char *t1 = memchr(t0, ' ', (size_t)(line_end - t0));
        if (!t1)
                t1 = line_end;
        p->method = dup_n(text, (size_t)((sp ? sp : line_end) - text));
        p->target = dup_n(t0, (size_t)(t1 - t0));
        const char *qm = strchr(p->target, '?');
        size_t plen = qm ? (size_t)(qm - p->target) : strlen(p->target);
        p->enc_path = dup_n(p->target, plen);
        p->raw_path = pct_decoded(p->target, plen);
        for (const char *q = qm ? qm + 1 : NULL; q && *q && p->nparams < MAX_FIELDS;) {
                const char *amp = strchr(q, '&');
                size_t n = amp ? (size_t)(amp - q) : strlen(q);
                const char *eq = memchr(q, '=', n);
                size_t kn = eq ? (size_t)(eq - q) : n;
                p->params[p->nparams].name = pct_decoded(q, kn);
                p->params[p->nparams].value = eq ? pct_decoded(eq + 1, n - kn - 1) : NULL;
                p->nparams++;
                q = amp ? amp + 1 : NULL;
        }
        const char *s = nl ? nl + 1 : end;
        while (s < end) {
                nl = memchr(s, '\n', (size_t)(end - s));
                line_end = nl ? nl : end;
                const char *next = nl ? nl + 1 : end;
                if (line_end == s || (line_end == s + 1 && *s == '\r')) {
                        s = next;
                        break; /* the body follows */
                }
                if ((*s == ' ' || *s == '\t') && p->nheaders > 0) {
                        struct sigv4_header *h = &p->headers[p->nheaders - 1];
                        size_t old = strlen(h->value), add = (size_t)(line_end - s);
                        char *v = realloc((char *)h->value, old + add + 2);
                        FUZZ_CHECK(v, "out of memory");
                        v[old] = '\n';
                        memcpy(v + old + 1, s, add);
                        v[old + add + 1] = '\0';
                        h->value = v;
                } else {
                        const char *colon = memchr(s, ':', (size_t)(line_end - s));
                        const char *vend = line_end;
                        if (vend > s && vend[-1] == '\r')
                                vend--;
                        if (colon && (size_t)(colon - s) == 4 && strncasecmp(s, "host", 4) == 0) {
                                free(p->host);
                                p->host = dup_n(colon + 1, (size_t)(vend - colon - 1));
                        } else if (colon && p->nheaders < MAX_FIELDS) {
                                p->headers[p->nheaders].name = dup_n(s, (size_t)(colon - s));
                                p->headers[p->nheaders].value =
                                    dup_n(colon + 1, (size_t)(vend - colon - 1));
                                p->nheaders++;
                        }
                }
                s = next;
        }
        sigv4_sha256_hex(s, (size_t)(end - s), p->body_sha);
        if (!p->host)
                p->host = dup_n("example.amazonaws.com", 21);
}

static void parsed_free(struct parsed *p)
{
        free(p->method);
        free(p->host);
        free(p->target);
        free(p->raw_path);
        free(p->enc_path);
        for (size_t i = 0; i < p->nparams; i++) {
                free((char *)p->params[i].name);
                free((char *)p->params[i].value);
        }
        for (size_t i = 0; i < p->nheaders; i++) {
                free((char *)p->headers[i].name);
                free((char *)p->headers[i].value);
        }
}

static bool unreserved(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == '~';
}

/* Only unreserved characters, the given extra ones and %XX (upper-case). */
static void check_encoded(const char *what, const char *s, const char *extra)
{
        for (const char *c = s; *c; c++) {
                if (unreserved(*c) || strchr(extra, *c))
                        continue;
                FUZZ_CHECK(*c == '%' && util_hexdigit(c[1]) >= 0 && util_hexdigit(c[2]) >= 0 &&
                               !(c[1] >= 'a' && c[1] <= 'f') && !(c[2] >= 'a' && c[2] <= 'f'),
                           "%s '%s': byte 0x%02x at %zu is not encoded", what, s, (unsigned char)*c,
                           (size_t)(c - s));
                c += 2;
        }
}

static void check_sorted(const char *query)
{
        const char *prev = NULL;
        size_t prev_len = 0;
        for (const char *q = query; *q;) {
                const char *amp = strchr(q, '&');
                size_t n = amp ? (size_t)(amp - q) : strlen(q);
                const char *eq = memchr(q, '=', n);
                FUZZ_CHECK(eq, "query '%s': a parameter without '='", query);
                size_t kn = (size_t)(eq - q);
                if (prev) {
                        size_t m = kn < prev_len ? kn : prev_len;
                        int c = memcmp(prev, q, m);
                        FUZZ_CHECK(c < 0 || (c == 0 && prev_len <= kn), "query '%s' is not sorted",
                                   query);
                }
                prev = q;
                prev_len = kn;
                if (!amp)
                        break;
                q = amp + 1;
        }
}

static void check_signed(const struct sigv4_request *req, const struct sigv4_signed *s,
                         bool presign)
{
        if (!(req->flags & SIGV4_PATH_ENCODED)) /* else sent as the caller encoded it */
                check_encoded("path", s->path, "/");
        check_encoded("query", s->query, "=&");
        if (presign) {
                /* the signature comes last, after the signed (sorted) query */
                char *q = strdup(s->query);
                FUZZ_CHECK(q, "out of memory");
                char *sig = strstr(q, "&X-Amz-Signature=");
                FUZZ_CHECK(sig && !strchr(sig + 1, '&'),
                           "presigned query without a final "
                           "X-Amz-Signature: '%s'",
                           s->query);
                *sig = '\0';
                check_sorted(q);
                free(q);
        } else {
                check_sorted(s->query);
        }
        FUZZ_CHECK(strlen(s->signature) == 64, "signature '%s'", s->signature);
        for (const char *c = s->signature; *c; c++)
                FUZZ_CHECK((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'), "signature '%s'",
                           s->signature);
        for (size_t i = 0; i < s->nheaders; i++)
                FUZZ_CHECK(!strpbrk(s->headers[i].value, "\r\n"), "header %s holds a line break",
                           s->headers[i].name);
        FUZZ_CHECK(presign ? s->nheaders == 0 : s->authorization != NULL, "headers %zu",
                   s->nheaders);
        if (sigv4_service_is_s3(req->service) && !(req->flags & SIGV4_PATH_ENCODED) &&
            req->path[0] == '/') {
                size_t n = strlen(s->path);
                char *back = pct_decoded(s->path, n);
                FUZZ_CHECK(strcmp(back, req->path) == 0, "S3 path '%s' sent as '%s'", req->path,
                           s->path);
                free(back);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct parsed p;
        parse((const char *)data, size, &p);
        struct sigv4_creds plain = {.access_key_id = "AKIDEXAMPLE",
                                    .secret_access_key =
                                        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
        struct sigv4_creds token = plain;
        token.session_token =
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"
            "LWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGd"
            "QrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU"
            "9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz"
            "+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        static const struct {
                const char *service;
                unsigned flags;
                bool encoded, presign, token;
        } modes[] = {
            {"s3", 0, false, false, false},
            {"s3", 0, false, true, true},
            {"service", 0, false, false, true},
            {"service", SIGV4_PATH_ENCODED, true, false, false},
            {"service", SIGV4_PATH_ENCODED, true, true, false},
            {"iam", SIGV4_NO_NORMALIZE | SIGV4_SIGN_CONTENT_SHA256, false, false, false},
        };
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                struct sigv4_request req = {
                    .method = p.method,
                    .host = p.host,
                    .path = modes[m].encoded ? p.enc_path : p.raw_path,
                    .params = p.params,
                    .nparams = p.nparams,
                    .headers = p.headers,
                    .nheaders = p.nheaders,
                    .payload_sha256_hex = p.body_sha,
                    .region = "us-east-1",
                    .service = modes[m].service,
                    .now = 1440938160, /* 20150830T123600Z, the suite's time */
                    .flags = modes[m].flags,
                };
                const struct sigv4_creds *c = modes[m].token ? &token : &plain;
                struct sigv4_signed s1, s2;
                char err1[256] = "", err2[256] = "";
                int r1 = modes[m].presign ? sigv4_presign(&req, c, 900, &s1, err1, sizeof(err1))
                                          : sigv4_sign(&req, c, &s1, err1, sizeof(err1));
                int r2 = modes[m].presign ? sigv4_presign(&req, c, 900, &s2, err2, sizeof(err2))
                                          : sigv4_sign(&req, c, &s2, err2, sizeof(err2));
                FUZZ_CHECK(r1 == r2, "signing twice: %d then %d", r1, r2);
                if (r1 == 0) {
                        check_signed(&req, &s1, modes[m].presign);
                        FUZZ_CHECK(strcmp(s1.signature, s2.signature) == 0,
                                   "signing twice gave two signatures");
                } else {
                        FUZZ_CHECK((r1 == -EINVAL || r1 == -ENOMEM) && err1[0],
                                   "sigv4 returned %d (%s)", r1, err1);
                }
                sigv4_signed_clear(&s1);
                sigv4_signed_clear(&s2);
        }
        parsed_free(&p);
        return 0;
}
