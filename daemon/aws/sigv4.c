/* sigv4.c - AWS Signature Version 4 (see sigv4.h).
 *
 * Builds the canonical request (method, canonical path, canonical query,
 * canonical headers, signed header list, payload hash), the string to sign,
 * derives the signing key (HMAC chain over date, region, service,
 * "aws4_request") and formats the Authorization header, all with OpenSSL
 * libcrypto.  The encoding and normalization rules follow the AWS
 * documentation and match botocore's SigV4Auth/S3SigV4Auth byte for byte
 * (tests/integration/test_sigv4_botocore.py checks it); the AWS test suite in
 * ../shared/testdata/sigv4 is run by tests/unit/test_sigv4.c.
 *
 * What this file is not: it knows no sockets, no credentials sources (creds.c)
 * and logs nothing.
 */
#include "aws/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <pthread.h>

#include "util.h"

#define ALGORITHM "AWS4-HMAC-SHA256"


/* SHA-256 fetched once: EVP_sha256() and the one-shot SHA256()/HMAC() look
 * the algorithm up again on every call, which cost more than hashing the
 * few hundred bytes of a canonical request. */
static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
        sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
        pthread_once(&sha256_once, sha256_fetch);
        return sha256_fetched ? sha256_fetched : EVP_sha256();
}

/* Per-thread reusable digest context (freed at thread exit). */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* The signing key depends only on (secret, date, region, service): the last
 * one derived is kept per thread.  The secret itself is not kept, only its
 * SHA-256; the cached key is wiped when replaced and at thread exit. */
struct sign_cache {
        EVP_MD_CTX *ctx;
        bool valid;
        unsigned char secret_hash[32];
        char date8[9];
        char region[64];
        char service[32];
        unsigned char key[32];
        bool date_valid; /* amz_date is the formatted date_now */
        time_t date_now;
        char amz_date[17];
};

static void tls_free(void *p)
{
        struct sign_cache *c = p;

        if (!c)
                return;
        EVP_MD_CTX_free(c->ctx);
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
}

static void tls_init(void)
{
        (void)pthread_key_create(&tls_key, tls_free);
}

static struct sign_cache *tls_get(void)
{
        pthread_once(&tls_once, tls_init);
        struct sign_cache *c = pthread_getspecific(tls_key);
        if (c)
                return c;
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->ctx = EVP_MD_CTX_new();
        if (!c->ctx || pthread_setspecific(tls_key, c) != 0) {
                EVP_MD_CTX_free(c->ctx);
                free(c);
                return NULL;
        }
        return c;
}

/* SHA-256 of data into md[32]; false on failure. */
static bool sha256_raw(const void *data, size_t len, unsigned char md[32])
{
        struct sign_cache *c = tls_get();
        unsigned int mdlen = 0;

        if (!c)
                return EVP_Digest(data, len, md, &mdlen, sha256_md(), NULL) == 1 && mdlen == 32;
        return EVP_DigestInit_ex(c->ctx, sha256_md(), NULL) == 1 &&
               EVP_DigestUpdate(c->ctx, data, len) == 1 &&
               EVP_DigestFinal_ex(c->ctx, md, &mdlen) == 1 && mdlen == 32;
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0xf];
        }
        out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
        unsigned char md[SHA256_DIGEST_LENGTH];

        if (!sha256_raw(data, len, md))
                SHA256(data, len, md);
        hex_encode(md, sizeof(md), out);
}

struct sigv4_sha256 {
        EVP_MD_CTX *ctx;
};

struct sigv4_sha256 *sigv4_sha256_new(void)
{
        struct sigv4_sha256 *h = calloc(1, sizeof(*h));

        if (!h)
                return NULL;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, sha256_md(), NULL) != 1) {
                EVP_MD_CTX_free(h->ctx);
                free(h);
                return NULL;
        }
        return h;
}

void sigv4_sha256_update(struct sigv4_sha256 *h, const void *data, size_t len)
{
        if (len > 0)
                EVP_DigestUpdate(h->ctx, data, len);
}

void sigv4_sha256_final(struct sigv4_sha256 *h, char out[65])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;

        EVP_DigestFinal_ex(h->ctx, md, &mdlen);
        hex_encode(md, mdlen, out);
        EVP_MD_CTX_free(h->ctx);
        free(h);
}

static bool is_unreserved(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == '~';
}

static int append_encoded(struct buf *b, const char *src, size_t len, bool keep_slash)
{
        static const char digits[] = "0123456789ABCDEF";

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)src[i];
                int r;

                if (is_unreserved(c) || (keep_slash && c == '/')) {
                        r = buf_append(b, &src[i], 1);
                } else {
                        char esc[3] = { '%', digits[c >> 4], digits[c & 0xf] };
                        r = buf_append(b, esc, 3);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Terminates b's data with a NUL not counted in len; returns the string or NULL. */
static char *buf_cstr(struct buf *b)
{
        if (buf_append(b, "", 1) < 0)
                return NULL;
        b->len--;
        return b->data;
}

char *sigv4_uri_encode(const char *src, bool keep_slash)
{
        struct buf b = { 0 };

        if (append_encoded(&b, src, strlen(src), keep_slash) < 0 || !buf_cstr(&b)) {
                buf_free(&b);
                return NULL;
        }
        return b.data;
}

bool sigv4_service_is_s3(const char *service)
{
        return strcmp(service, "s3") == 0 || strcmp(service, "s3-outposts") == 0 ||
               strcmp(service, "s3express") == 0;
}

/* RFC 3986 5.2.4 dot-segment removal plus removal of empty segments, exactly
 * as botocore's remove_dot_segments(): the result starts with '/' when path
 * does, ends with '/' when path does and something is left. */
static int normalize_path(const char *path, struct buf *out)
{
        size_t n = strlen(path);
        size_t *starts = NULL, nseg = 0;   /* offsets in out of kept segments */
        const char *p = path;
        int r = 0;

        if (n == 0)
                return buf_append(out, "/", 1);
        starts = calloc(n + 1, sizeof(*starts));
        if (!starts)
                return -ENOMEM;
        /* Build "seg/seg/seg" in out, remembering where each segment starts. */
        while (*p) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);

                if (len == 0 || (len == 1 && p[0] == '.')) {
                        /* skip */
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        if (nseg > 0) {
                                nseg--;
                                out->len = starts[nseg] > 0 ? starts[nseg] - 1 : 0;
                        }
                } else {
                        if (nseg > 0)
                                r = buf_append(out, "/", 1);
                        starts[nseg++] = out->len;
                        if (r == 0)
                                r = buf_append(out, p, len);
                        if (r < 0)
                                break;
                }
                if (!slash)
                        break;
                p = slash + 1;
        }
        free(starts);
        if (r < 0)
                return r;
        /* Wrap with the leading and trailing slashes. */
        {
                struct buf w = { 0 };

                if (path[0] == '/')
                        r = buf_append(&w, "/", 1);
                if (r == 0 && out->len > 0)
                        r = buf_append(&w, out->data, out->len);
                if (r == 0 && path[n - 1] == '/' && nseg > 0)
                        r = buf_append(&w, "/", 1);
                if (r < 0) {
                        buf_free(&w);
                        return r;
                }
                buf_free(out);
                *out = w;
        }
        return 0;
}

struct kv {
        char *name;     /* encoded (query) or lowercased (headers) */
        char *value;
        size_t order;   /* original position: stable sort of repeated header names */
};

static void kv_free(struct kv *v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                if (v[i].value) {
                        OPENSSL_cleanse(v[i].value, strlen(v[i].value));
                        free(v[i].value);
                }
        }
        free(v);
}

static int kv_cmp_query(const void *a, const void *b)
{
        const struct kv *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->value, y->value);
}

static int kv_cmp_header(const void *a, const void *b)
{
        const struct kv *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->order < y->order ? -1 : x->order > y->order;
}

static char *encode_dup(const char *s)
{
        return sigv4_uri_encode(s ? s : "", false);
}

/* Whitespace as Python's str.split() sees it in ASCII. */
static bool is_space(unsigned char c)
{
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Header value for the canonical form: trimmed, inner runs folded to one space. */
static char *fold_value(const char *v)
{
        size_t n = strlen(v);
        char *out = malloc(n + 1);
        size_t o = 0;
        bool pending = false;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)v[i];

                if (is_space(c)) {
                        pending = o > 0;
                        continue;
                }
                if (pending)
                        out[o++] = ' ';
                pending = false;
                out[o++] = (char)c;
        }
        out[o] = '\0';
        return out;
}

static char *lower_dup(const char *s)
{
        char *d = strdup(s);

        if (!d)
                return NULL;
        for (char *p = d; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        return d;
}

static const char *const reserved_headers[] = {
        "host", "x-amz-date", "authorization", "x-amz-security-token", "x-amz-content-sha256",
        NULL,
};

/* A header name is an RFC 9110 token: anything else (a CR, a ';' or ',')
 * would go into SignedHeaders and the Authorization header as it is (found
 * by tests/fuzz/fuzz_sigv4.c). */
static bool is_token(const char *s)
{
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
                        return false;
        return true;
}

/* Query parameters a presigned URL carries for the signer: a caller's own
 * would make two of them, one unsigned (found by tests/fuzz/fuzz_sigv4.c). */
static const char *const reserved_params[] = {
        "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
        "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature", NULL,
};

/* HMAC-SHA256 (RFC 2104) over the fetched digest. */
static bool hmac(const void *key, size_t keylen, const char *data, size_t len,
                 unsigned char out[32])
{
        struct sign_cache *c = tls_get();
        unsigned char k[64], pad[64], ih[32];
        unsigned int n = 0;
        bool ok;

        if (!c) {
                unsigned int outlen = 0;
                return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, len, out,
                            &outlen) != NULL && outlen == 32;
        }
        memset(k, 0, sizeof(k));
        if (keylen > sizeof(k)) {
                if (!sha256_raw(key, keylen, k))
                        return false;
        } else
                memcpy(k, key, keylen);
        for (size_t i = 0; i < sizeof(pad); i++)
                pad[i] = k[i] ^ 0x36;
        ok = EVP_DigestInit_ex(c->ctx, sha256_md(), NULL) == 1 &&
             EVP_DigestUpdate(c->ctx, pad, sizeof(pad)) == 1 &&
             EVP_DigestUpdate(c->ctx, data, len) == 1 &&
             EVP_DigestFinal_ex(c->ctx, ih, &n) == 1 && n == 32;
        if (ok) {
                for (size_t i = 0; i < sizeof(pad); i++)
                        pad[i] = k[i] ^ 0x5c;
                ok = EVP_DigestInit_ex(c->ctx, sha256_md(), NULL) == 1 &&
                     EVP_DigestUpdate(c->ctx, pad, sizeof(pad)) == 1 &&
                     EVP_DigestUpdate(c->ctx, ih, sizeof(ih)) == 1 &&
                     EVP_DigestFinal_ex(c->ctx, out, &n) == 1 && n == 32;
        }
        OPENSSL_cleanse(k, sizeof(k));
        OPENSSL_cleanse(pad, sizeof(pad));
        OPENSSL_cleanse(ih, sizeof(ih));
        return ok;
}

/* Derives the signing key (HMAC chain) into key[32].  Wipes intermediates. */
static int derive_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[32])
{
        size_t slen = strlen(secret);
        char *k = malloc(slen + 5);
        unsigned char a[32];
        bool ok;

        if (!k)
                return -ENOMEM;
        memcpy(k, "AWS4", 4);
        memcpy(k + 4, secret, slen + 1);
        ok = hmac(k, slen + 4, date8, strlen(date8), a) &&
             hmac(a, 32, region, strlen(region), key) &&
             hmac(key, 32, service, strlen(service), a) &&
             hmac(a, 32, "aws4_request", 12, key);
        OPENSSL_cleanse(k, slen + 4);
        free(k);
        OPENSSL_cleanse(a, sizeof(a));
        if (!ok)
                OPENSSL_cleanse(key, 32);
        return ok ? 0 : -EIO;
}

/* Signs sts into sig_hex with the signing key for (secret, date8, region,
 * service), derived once per thread and scope (see struct sign_cache). */
static int sign_string(const char *secret, const char *date8, const char *region,
                       const char *service, const char *sts, char sig_hex[65])
{
        struct sign_cache *c = tls_get();
        unsigned char key[32], sh[32], sig[32];
        int r;

        bool cacheable = c && strlen(date8) < sizeof(c->date8) &&
                         strlen(region) < sizeof(c->region) &&
                         strlen(service) < sizeof(c->service) &&
                         sha256_raw(secret, strlen(secret), sh);
        if (cacheable && c->valid && CRYPTO_memcmp(c->secret_hash, sh, sizeof(sh)) == 0 &&
            strcmp(c->date8, date8) == 0 && strcmp(c->region, region) == 0 &&
            strcmp(c->service, service) == 0) {
                memcpy(key, c->key, sizeof(key));
        } else {
                if ((r = derive_key(secret, date8, region, service, key)) < 0) {
                        OPENSSL_cleanse(sh, sizeof(sh));
                        return r;
                }
                if (cacheable) {
                        OPENSSL_cleanse(c->key, sizeof(c->key));
                        memcpy(c->secret_hash, sh, sizeof(sh));
                        snprintf(c->date8, sizeof(c->date8), "%s", date8);
                        snprintf(c->region, sizeof(c->region), "%s", region);
                        snprintf(c->service, sizeof(c->service), "%s", service);
                        memcpy(c->key, key, sizeof(key));
                        c->valid = true;
                }
        }
        OPENSSL_cleanse(sh, sizeof(sh));
        bool ok = hmac(key, sizeof(key), sts, strlen(sts), sig);
        if (ok)
                hex_encode(sig, sizeof(sig), sig_hex);
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(sig, sizeof(sig));
        return ok ? 0 : -EIO;
}

static int set_header(struct sigv4_signed *out, const char *name, const char *value)
{
        char *v = strdup(value);

        if (!v)
                return -ENOMEM;
        out->headers[out->nheaders].name = name;
        out->headers[out->nheaders].value = v;
        out->nheaders++;
        return 0;
}

/* Common body of sigv4_sign (expires_s < 0) and sigv4_presign. */
static int do_sign(const struct sigv4_request *req, const struct sigv4_creds *creds,
                   long expires_s, struct sigv4_signed *out, char *err, size_t errlen)
{
        bool presign = expires_s >= 0;
        bool s3;
        bool sign_sha;
        const char *payload;
        const char *path;
        char date8[9];
        char scope_tail[256];
        struct tm tm;
        struct kv *q = NULL, *h = NULL;
        size_t nq = 0, nh = 0, qcap, hcap;
        struct buf wire_path = { 0 }, canon_path = { 0 }, norm = { 0 }, query = { 0 };
        struct buf creq = { 0 }, sts = { 0 }, signed_hdrs = { 0 }, tmp = { 0 };
        char creq_hash[65];
        int r = -ENOMEM;

        memset(out, 0, sizeof(*out));
        if (!req || !creds || !req->method || !req->host || !req->region || !req->service ||
            !creds->access_key_id || !creds->secret_access_key || !creds->access_key_id[0] ||
            !creds->secret_access_key[0]) {
                util_setf(err, errlen, "sigv4: incomplete request or credentials");
                return -EINVAL;
        }
        if (strlen(req->region) + strlen(req->service) + 32 > sizeof(scope_tail)) {
                util_setf(err, errlen, "sigv4: region or service name too long");
                return -EINVAL;
        }
        /* Requests come many to a second: format each second once (gmtime_r
         * and strftime take locks and look at the time zone every time). */
        struct sign_cache *dc = tls_get();
        if (dc && dc->date_valid && dc->date_now == req->now) {
                memcpy(out->amz_date, dc->amz_date, sizeof(out->amz_date));
        } else {
                if (!gmtime_r(&req->now, &tm) || tm.tm_year + 1900 > 9999 ||
                    tm.tm_year + 1900 < 1970) {
                        util_setf(err, errlen, "sigv4: signing time out of range");
                        return -EINVAL;
                }
                strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
                if (dc) {
                        memcpy(dc->amz_date, out->amz_date, sizeof(dc->amz_date));
                        dc->date_now = req->now;
                        dc->date_valid = true;
                }
        }
        memcpy(date8, out->amz_date, 8);
        date8[8] = '\0';
        snprintf(scope_tail, sizeof(scope_tail), "%s/%s/%s/aws4_request", date8, req->region,
                 req->service);

        s3 = sigv4_service_is_s3(req->service);
        sign_sha = !presign && (s3 || (req->flags & SIGV4_SIGN_CONTENT_SHA256));
        payload = req->payload_sha256_hex ? req->payload_sha256_hex : SIGV4_EMPTY_SHA256;
        path = req->path && req->path[0] ? req->path : "/";

        /* Path: wire form, then canonical form. */
        if (req->flags & SIGV4_PATH_ENCODED)
                r = buf_append(&wire_path, path, strlen(path));
        else
                r = append_encoded(&wire_path, path, strlen(path), true);
        if (r < 0 || !buf_cstr(&wire_path))
                goto oom;
        if (s3) {
                r = buf_append(&canon_path, wire_path.data, wire_path.len);
        } else if (req->flags & SIGV4_NO_NORMALIZE) {
                r = append_encoded(&canon_path, wire_path.data, wire_path.len, true);
        } else {
                r = normalize_path(wire_path.data, &norm);
                if (r == 0)
                        r = append_encoded(&canon_path, norm.data, norm.len, true);
        }
        if (r < 0 || !buf_cstr(&canon_path))
                goto oom;

        /* Headers to sign: host, the caller's, x-amz-date, content sha, token. */
        hcap = req->nheaders + 4;
        h = calloc(hcap, sizeof(*h));
        if (!h)
                goto oom;
        for (size_t i = 0; i < req->nheaders; i++) {
                const struct sigv4_header *x = &req->headers[i];

                if (!x->name || !x->name[0] || !x->value) {
                        util_setf(err, errlen, "sigv4: header %zu has no name or value", i);
                        r = -EINVAL;
                        goto fail;
                }
                if (!is_token(x->name)) {
                        util_setf(err, errlen, "sigv4: header %zu: the name is not an HTTP token",
                                i);
                        r = -EINVAL;
                        goto fail;
                }
                for (const char *const *rh = reserved_headers; *rh; rh++) {
                        if (strcasecmp(x->name, *rh) == 0) {
                                util_setf(err, errlen, "sigv4: header %s is set by the signer",
                                        *rh);
                                r = -EINVAL;
                                goto fail;
                        }
                }
                h[nh].name = lower_dup(x->name);
                h[nh].value = fold_value(x->value);
                h[nh].order = nh;
                nh++;
                if (!h[nh - 1].name || !h[nh - 1].value)
                        goto oom;
        }
        {
                const char *add[4][2] = {
                        { "host", req->host },
                        { "x-amz-date", presign ? NULL : out->amz_date },
                        { "x-amz-content-sha256", sign_sha ? payload : NULL },
                        { "x-amz-security-token", presign ? NULL : creds->session_token },
                };

                for (size_t i = 0; i < 4; i++) {
                        if (!add[i][1])
                                continue;
                        h[nh].name = strdup(add[i][0]);
                        h[nh].value = fold_value(add[i][1]);
                        h[nh].order = nh;
                        nh++;
                        if (!h[nh - 1].name || !h[nh - 1].value)
                                goto oom;
                }
        }
        qsort(h, nh, sizeof(*h), kv_cmp_header);
        for (size_t i = 0; i < nh; i++) {
                if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0)
                        continue;
                if (signed_hdrs.len > 0 && buf_append(&signed_hdrs, ";", 1) < 0)
                        goto oom;
                if (buf_append(&signed_hdrs, h[i].name, strlen(h[i].name)) < 0)
                        goto oom;
        }
        if (!buf_cstr(&signed_hdrs))
                goto oom;

        /* Query: the caller's parameters, plus the X-Amz-* ones when presigning. */
        qcap = req->nparams + 6;
        q = calloc(qcap, sizeof(*q));
        if (!q)
                goto oom;
        for (size_t i = 0; i < req->nparams; i++) {
                if (!req->params[i].name) {
                        util_setf(err, errlen, "sigv4: query parameter %zu has no name", i);
                        r = -EINVAL;
                        goto fail;
                }
                for (const char *const *rp = reserved_params; presign && *rp; rp++) {
                        if (strcasecmp(req->params[i].name, *rp) == 0) {
                                util_setf(err, errlen,
                                        "sigv4: query parameter %s is set by the presigner", *rp);
                                r = -EINVAL;
                                goto fail;
                        }
                }
                q[nq].name = encode_dup(req->params[i].name);
                q[nq].value = encode_dup(req->params[i].value);
                nq++;
                if (!q[nq - 1].name || !q[nq - 1].value)
                        goto oom;
        }
        if (presign) {
                char expires[24];
                const char *add[6][2] = {
                        { "X-Amz-Algorithm", ALGORITHM },
                        { "X-Amz-Credential", NULL },
                        { "X-Amz-Date", out->amz_date },
                        { "X-Amz-Expires", expires },
                        { "X-Amz-SignedHeaders", signed_hdrs.data },
                        { "X-Amz-Security-Token", creds->session_token },
                };

                if (buf_cat(&tmp, 3, creds->access_key_id, "/", scope_tail) < 0 ||
                    !buf_cstr(&tmp))
                        goto oom;
                add[1][1] = tmp.data;
                snprintf(expires, sizeof(expires), "%ld", expires_s);
                for (size_t i = 0; i < 6; i++) {
                        if (!add[i][1])
                                continue;
                        q[nq].name = encode_dup(add[i][0]);
                        q[nq].value = encode_dup(add[i][1]);
                        nq++;
                        if (!q[nq - 1].name || !q[nq - 1].value)
                                goto oom;
                }
        }
        qsort(q, nq, sizeof(*q), kv_cmp_query);
        for (size_t i = 0; i < nq; i++) {
                if (buf_cat(&query, 4, i ? "&" : "", q[i].name, "=", q[i].value) < 0)
                        goto oom;
        }
        if (!buf_cstr(&query))
                goto oom;

        /* Canonical request. */
        if (buf_cat(&creq, 6, req->method, "\n", canon_path.data, "\n", query.data, "\n") < 0)
                goto oom;
        for (size_t i = 0; i < nh; i++) {
                const char *sep = "";

                if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0)
                        sep = ",";
                else if (i > 0)
                        sep = "\n";
                if (sep[0] == ',') {
                        if (buf_cat(&creq, 2, ",", h[i].value) < 0)
                                goto oom;
                } else if (buf_cat(&creq, 4, sep, h[i].name, ":", h[i].value) < 0) {
                        goto oom;
                }
        }
        if (buf_cat(&creq, 4, "\n\n", signed_hdrs.data, "\n", payload) < 0 || !buf_cstr(&creq))
                goto oom;

        /* String to sign and signature. */
        sigv4_sha256_hex(creq.data, creq.len, creq_hash);
        if (buf_cat(&sts, 7, ALGORITHM, "\n", out->amz_date, "\n", scope_tail, "\n", creq_hash) < 0 ||
            !buf_cstr(&sts))
                goto oom;
        r = sign_string(creds->secret_access_key, date8, req->region, req->service, sts.data,
                        out->signature);
        if (r < 0) {
                util_setf(err, errlen, "sigv4: HMAC failed");
                goto fail;
        }

        /* Results. */
        if (presign) {
                if (buf_printf(&query, "%sX-Amz-Signature=%s", query.len ? "&" : "",
                               out->signature) < 0 || !buf_cstr(&query))
                        goto oom;
        } else {
                r = set_header(out, "X-Amz-Date", out->amz_date);
                if (r == 0 && sign_sha)
                        r = set_header(out, "X-Amz-Content-Sha256", payload);
                if (r == 0 && creds->session_token)
                        r = set_header(out, "X-Amz-Security-Token", creds->session_token);
                if (r == 0 &&
                    buf_cat(&tmp, 9, ALGORITHM, " Credential=", creds->access_key_id, "/",
                            scope_tail, ", SignedHeaders=", signed_hdrs.data, ", Signature=",
                            out->signature) < 0)
                        r = -ENOMEM;
                if (r == 0 && !buf_cstr(&tmp))
                        r = -ENOMEM;
                if (r == 0)
                        r = set_header(out, "Authorization", tmp.data);
                if (r < 0)
                        goto oom;
                out->authorization = out->headers[out->nheaders - 1].value;
        }
        out->path = wire_path.data;
        wire_path.data = NULL;
        out->query = query.data;
        query.data = NULL;
        out->canonical_request = creq.data;
        creq.data = NULL;
        out->string_to_sign = sts.data;
        sts.data = NULL;
        r = 0;
        goto done;

oom:
        r = -ENOMEM;
        util_setf(err, errlen, "sigv4: out of memory");
fail:
        sigv4_signed_clear(out);
done:
        kv_free(q, nq);
        kv_free(h, nh);
        buf_free(&wire_path);
        buf_free(&canon_path);
        buf_free(&norm);
        buf_free(&query);
        if (creq.data)
                OPENSSL_cleanse(creq.data, creq.cap);
        buf_free(&creq);
        buf_free(&sts);
        buf_free(&signed_hdrs);
        buf_free(&tmp);
        return r;
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_creds *creds,
               struct sigv4_signed *out, char *err, size_t errlen)
{
        return do_sign(req, creds, -1, out, err, errlen);
}

int sigv4_presign(const struct sigv4_request *req, const struct sigv4_creds *creds,
                  unsigned expires_s, struct sigv4_signed *out, char *err, size_t errlen)
{
        return do_sign(req, creds, (long)expires_s, out, err, errlen);
}

void sigv4_secret_free(char *s)
{
        if (!s)
                return;
        OPENSSL_cleanse(s, strlen(s));
        free(s);
}

void sigv4_signed_clear(struct sigv4_signed *out)
{
        if (!out)
                return;
        free(out->path);
        free(out->query);
        for (size_t i = 0; i < out->nheaders; i++)
                sigv4_secret_free(out->headers[i].value);
        sigv4_secret_free(out->canonical_request);
        free(out->string_to_sign);
        memset(out, 0, sizeof(*out));
}

int sigv4_creds_copy(struct sigv4_creds *dst, const struct sigv4_creds *src)
{
        const char *from[3] = { src->access_key_id, src->secret_access_key, src->session_token };
        char **to[3] = { &dst->access_key_id, &dst->secret_access_key, &dst->session_token };

        memset(dst, 0, sizeof(*dst));
        for (size_t i = 0; i < 3; i++) {
                if (!from[i])
                        continue;
                *to[i] = strdup(from[i]);
                if (!*to[i])
                        goto oom;
        }
        dst->expiration = src->expiration;
        return 0;
oom:
        sigv4_creds_clear(dst);
        return -ENOMEM;
}

void sigv4_creds_clear(struct sigv4_creds *c)
{
        if (!c)
                return;
        sigv4_secret_free(c->access_key_id);
        sigv4_secret_free(c->secret_access_key);
        sigv4_secret_free(c->session_token);
        memset(c, 0, sizeof(*c));
}
