/* test_sigv4.c - SigV4: every case of the official AWS test suite (aws-c-auth's
 * tests/aws-signing-test-suite/v4, in ../shared/testdata/sigv4 when present;
 * skipped otherwise), in header and presigned (query) mode; and S3 cases:
 * the worked examples of the S3 API reference and cases computed with
 * botocore 1.29's S3SigV4Auth. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include <jansson.h>

#include "aws/sigv4.h"
#include "util.h"

static const char *const s3_ak = "AKIAIOSFODNN7EXAMPLE";
static const char *const s3_sk = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/* ---- the AWS suite ---- */

static char *suite_dir(void)
{
        const char *shared = getenv("ETLD_SHARED");
        const char *root = getenv("ETLD_SOURCE_ROOT");
        char path[4096];
        struct stat st;

        if (shared && shared[0])
                snprintf(path, sizeof(path), "%s/testdata/sigv4", shared);
        else
                snprintf(path, sizeof(path), "%s/../shared/testdata/sigv4", root ? root : ".");
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
                return NULL;
        return strdup(path);
}

static char *path_join(const char *dir, const char *name)
{
        size_t n = strlen(dir) + strlen(name) + 2;
        char *p = malloc(n);

        assert_non_null(p);
        snprintf(p, n, "%s/%s", dir, name);
        return p;
}

static char *read_case_file(const char *dir, const char *name)
{
        char *path = path_join(dir, name);
        char *data = NULL;
        size_t len;
        int r = util_read_file(path, &data, &len);

        free(path);
        return r < 0 ? NULL : data;
}

static char *pct_decode(const char *s, size_t n)
{
        char *d = malloc(n + 1);

        assert_non_null(d);
        util_pct_decode(s, n, false, d);
        return d;
}

/* A parsed request.txt. */
struct suite_req {
        char *method, *path, *host;
        struct sigv4_param params[32];
        size_t nparams;
        struct sigv4_header headers[32];
        size_t nheaders;
        char *body;
        size_t bodylen;
};

static void suite_req_free(struct suite_req *r)
{
        free(r->method);
        free(r->path);
        free(r->host);
        for (size_t i = 0; i < r->nparams; i++) {
                free((char *)r->params[i].name);
                free((char *)r->params[i].value);
        }
        for (size_t i = 0; i < r->nheaders; i++) {
                free((char *)r->headers[i].name);
                free((char *)r->headers[i].value);
        }
        free(r->body);
}

/* request.txt: "METHOD PATH HTTP/1.1", "Name:value" lines (a line starting
 * with spaces continues the previous header), a blank line, the body. */
static void parse_request(const char *text, struct suite_req *r)
{
        const char *eol = strchr(text, '\n');
        const char *sp, *http, *p, *q;

        memset(r, 0, sizeof(*r));
        assert_non_null(eol);
        sp = strchr(text, ' ');
        http = eol;
        while (http > sp && strncmp(http, " HTTP/", 6) != 0)
                http--;
        assert_true(http > sp);
        r->method = strndup(text, (size_t)(sp - text));
        q = memchr(sp + 1, '?', (size_t)(http - sp - 1));
        r->path = strndup(sp + 1, (size_t)((q ? q : http) - sp - 1));
        if (q) {
                const char *a = q + 1;

                while (a < http) {
                        const char *amp = memchr(a, '&', (size_t)(http - a));
                        const char *end = amp ? amp : http;
                        const char *eq = memchr(a, '=', (size_t)(end - a));

                        assert_true(r->nparams < 32);
                        r->params[r->nparams].name = pct_decode(a, (size_t)((eq ? eq : end) - a));
                        r->params[r->nparams].value =
                                eq ? pct_decode(eq + 1, (size_t)(end - eq - 1)) : strdup("");
                        r->nparams++;
                        a = end + 1;
                }
        }
        p = eol + 1;
        while (*p) {
                const char *nl = strchr(p, '\n');
                const char *end = nl ? nl : p + strlen(p);

                if (end == p) {         /* blank line: the body follows */
                        r->body = strdup(p + 1);
                        r->bodylen = strlen(r->body);
                        return;
                }
                if (*p == ' ') {        /* continuation */
                        char *prev = (char *)r->headers[r->nheaders - 1].value;
                        size_t pl = strlen(prev);
                        char *v = realloc(prev, pl + (size_t)(end - p) + 2);

                        assert_non_null(v);
                        v[pl] = '\n';
                        memcpy(v + pl + 1, p, (size_t)(end - p));
                        v[pl + 1 + (size_t)(end - p)] = '\0';
                        r->headers[r->nheaders - 1].value = v;
                } else {
                        const char *colon = memchr(p, ':', (size_t)(end - p));

                        assert_non_null(colon);
                        if ((size_t)(colon - p) == 4 && strncasecmp(p, "host", 4) == 0) {
                                r->host = strndup(colon + 1, (size_t)(end - colon - 1));
                        } else {
                                assert_true(r->nheaders < 32);
                                r->headers[r->nheaders].name = strndup(p, (size_t)(colon - p));
                                r->headers[r->nheaders].value =
                                        strndup(colon + 1, (size_t)(end - colon - 1));
                                r->nheaders++;
                        }
                }
                p = nl ? nl + 1 : end;
        }
}

static void assert_file_equal(const char *dir, const char *name, const char *got)
{
        char *want = read_case_file(dir, name);

        assert_non_null(want);
        if (strcmp(want, got) != 0) {
                print_error("%s/%s differs\n--- want\n%s\n--- got\n%s\n", dir, name, want, got);
                fail();
        }
        free(want);
}

/* The Authorization line of header-signed-request.txt. */
static char *expected_authorization(const char *dir)
{
        char *text = read_case_file(dir, "header-signed-request.txt");
        char *a, *nl, *res;

        assert_non_null(text);
        a = strstr(text, "\nAuthorization:");
        assert_non_null(a);
        a += strlen("\nAuthorization:");
        nl = strchr(a, '\n');
        res = strndup(a, nl ? (size_t)(nl - a) : strlen(a));
        free(text);
        return res;
}

static void run_case(const char *dir, int *ncases)
{
        char *ctx_text = read_case_file(dir, "context.json");
        char *req_text = read_case_file(dir, "request.txt");
        json_t *ctx, *cr;
        json_error_t jerr;
        struct suite_req sr;
        struct sigv4_creds creds = { 0 };
        struct sigv4_request req = { 0 };
        struct sigv4_signed s;
        struct tm tm = { 0 };
        char body_hash[65];
        char err[256];
        const char *token;
        char *authz;

        if (!ctx_text || !req_text) {   /* not a case folder */
                free(ctx_text);
                free(req_text);
                return;
        }
        ctx = json_loads(ctx_text, 0, &jerr);
        assert_non_null(ctx);
        cr = json_object_get(ctx, "credentials");
        creds.access_key_id = strdup(json_string_value(json_object_get(cr, "access_key_id")));
        creds.secret_access_key =
                strdup(json_string_value(json_object_get(cr, "secret_access_key")));
        token = json_string_value(json_object_get(cr, "token"));
        if (token && !json_is_true(json_object_get(ctx, "omit_session_token")))
                creds.session_token = strdup(token);
        assert_non_null(strptime(json_string_value(json_object_get(ctx, "timestamp")),
                                 "%Y-%m-%dT%H:%M:%SZ", &tm));
        parse_request(req_text, &sr);
        sigv4_sha256_hex(sr.body ? sr.body : "", sr.bodylen, body_hash);

        req.method = sr.method;
        req.host = sr.host;
        req.path = sr.path;
        req.params = sr.params;
        req.nparams = sr.nparams;
        req.headers = sr.headers;
        req.nheaders = sr.nheaders;
        req.payload_sha256_hex = body_hash;
        req.region = json_string_value(json_object_get(ctx, "region"));
        req.service = json_string_value(json_object_get(ctx, "service"));
        req.now = timegm(&tm);
        req.flags = SIGV4_PATH_ENCODED;
        if (!json_is_true(json_object_get(ctx, "normalize")))
                req.flags |= SIGV4_NO_NORMALIZE;
        if (json_is_true(json_object_get(ctx, "sign_body")))
                req.flags |= SIGV4_SIGN_CONTENT_SHA256;

        /* Header mode. */
        assert_int_equal(sigv4_sign(&req, &creds, &s, err, sizeof(err)), 0);
        assert_file_equal(dir, "header-canonical-request.txt", s.canonical_request);
        assert_file_equal(dir, "header-string-to-sign.txt", s.string_to_sign);
        assert_file_equal(dir, "header-signature.txt", s.signature);
        authz = expected_authorization(dir);
        assert_string_equal(s.authorization, authz);
        free(authz);
        sigv4_signed_clear(&s);

        /* Query (presigned) mode: the suite signs no body header there. */
        req.flags &= ~(unsigned)SIGV4_SIGN_CONTENT_SHA256;
        assert_int_equal(sigv4_presign(&req, &creds,
                                       (unsigned)json_integer_value(json_object_get(
                                               ctx, "expiration_in_seconds")),
                                       &s, err, sizeof(err)),
                         0);
        assert_file_equal(dir, "query-canonical-request.txt", s.canonical_request);
        assert_file_equal(dir, "query-string-to-sign.txt", s.string_to_sign);
        assert_file_equal(dir, "query-signature.txt", s.signature);
        assert_int_equal(s.nheaders, 0);
        assert_non_null(strstr(s.query, s.signature));
        sigv4_signed_clear(&s);

        (*ncases)++;
        sigv4_creds_clear(&creds);
        suite_req_free(&sr);
        json_decref(ctx);
        free(ctx_text);
        free(req_text);
}

static void test_aws_suite(void **state)
{
        char *dir = suite_dir();
        struct dirent **names = NULL;
        int n, ncases = 0;

        if (!dir) {
                print_message("AWS SigV4 test suite not found (../shared/testdata/sigv4)\n");
                skip();
        }
        n = scandir(dir, &names, NULL, alphasort);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.') {
                        char *sub = path_join(dir, names[i]->d_name);

                        run_case(sub, &ncases);
                        free(sub);
                }
                free(names[i]);
        }
        free(names);
        print_message("%d AWS suite cases passed (header and query mode)\n", ncases);
        assert_true(ncases >= 30);
        free(dir);
}

/* ---- S3 ---- */

static struct sigv4_creds s3_creds(const char *token)
{
        struct sigv4_creds c = { 0 };

        c.access_key_id = strdup(s3_ak);
        c.secret_access_key = strdup(s3_sk);
        c.session_token = token ? strdup(token) : NULL;
        return c;
}

static const time_t t20130524 = 1369353600;    /* 2013-05-24T00:00:00Z */

static void sign_s3(const char *method, const char *host, const char *path,
                    const struct sigv4_param *params, size_t nparams,
                    const struct sigv4_header *headers, size_t nheaders, const char *payload,
                    const char *token, time_t now, const char *region, const char *want_signed,
                    const char *want_sig, struct sigv4_signed *out)
{
        struct sigv4_creds c = s3_creds(token);
        struct sigv4_request r = {
                .method = method, .host = host, .path = path, .params = params,
                .nparams = nparams, .headers = headers, .nheaders = nheaders,
                .payload_sha256_hex = payload, .region = region, .service = "s3", .now = now,
        };
        char err[256];
        char want[512];

        assert_int_equal(sigv4_sign(&r, &c, out, err, sizeof(err)), 0);
        snprintf(want, sizeof(want),
                 "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 s3_ak, out->amz_date, region, want_signed, want_sig);
        assert_string_equal(out->authorization, want);
        sigv4_creds_clear(&c);
}

/* The S3 API reference's worked examples. */
static void test_s3_doc_examples(void **state)
{
        struct sigv4_signed s;
        struct sigv4_header range = { "Range", "bytes=0-9" };
        struct sigv4_param lifecycle = { "lifecycle", NULL };
        struct sigv4_param list[] = { { "prefix", "J" }, { "max-keys", "2" } };
        struct sigv4_header chunk[] = {
                { "Content-Encoding", "aws-chunked" },
                { "Content-Length", "66824" },
                { "x-amz-decoded-content-length", "66560" },
                { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
        };

        sign_s3("GET", "examplebucket.s3.amazonaws.com", "/test.txt", NULL, 0, &range, 1,
                NULL, NULL, t20130524, "us-east-1",
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", &s);
        assert_string_equal(s.amz_date, "20130524T000000Z");
        assert_int_equal(s.nheaders, 3);
        assert_string_equal(s.headers[0].name, "X-Amz-Date");
        assert_string_equal(s.headers[1].name, "X-Amz-Content-Sha256");
        assert_string_equal(s.headers[1].value, SIGV4_EMPTY_SHA256);
        assert_string_equal(s.headers[2].name, "Authorization");
        assert_string_equal(s.path, "/test.txt");
        assert_string_equal(s.query, "");
        sigv4_signed_clear(&s);

        sign_s3("GET", "examplebucket.s3.amazonaws.com", "/", &lifecycle, 1, NULL, 0, NULL,
                NULL, t20130524, "us-east-1", "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543", &s);
        assert_string_equal(s.query, "lifecycle=");
        sigv4_signed_clear(&s);

        sign_s3("GET", "examplebucket.s3.amazonaws.com", "/", list, 2, NULL, 0, NULL, NULL,
                t20130524, "us-east-1", "host;x-amz-content-sha256;x-amz-date",
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7", &s);
        assert_string_equal(s.query, "max-keys=2&prefix=J");
        sigv4_signed_clear(&s);

        sign_s3("PUT", "s3.amazonaws.com", "/examplebucket/chunkObject.txt", NULL, 0, chunk, 4,
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", NULL, t20130524, "us-east-1",
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                "x-amz-decoded-content-length;x-amz-storage-class",
                "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9", &s);
        sigv4_signed_clear(&s);
}

static void test_s3_presign_doc_example(void **state)
{
        struct sigv4_creds c = s3_creds(NULL);
        struct sigv4_request r = {
                .method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/test.txt",
                .payload_sha256_hex = SIGV4_UNSIGNED_PAYLOAD, .region = "us-east-1",
                .service = "s3", .now = t20130524,
        };
        struct sigv4_signed s;
        char err[256];

        assert_int_equal(sigv4_presign(&r, &c, 86400, &s, err, sizeof(err)), 0);
        assert_string_equal(s.signature,
                            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
        assert_string_equal(
                s.query,
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524"
                "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
                "&X-Amz-SignedHeaders=host&X-Amz-Signature="
                "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
        sigv4_signed_clear(&s);
        sigv4_creds_clear(&c);
}

/* Cases computed with botocore 1.29 S3SigV4Auth (see the integration test for
 * the generator): keys with spaces, unicode, '+', '=', '~', '/' runs, a
 * session token, query values needing encoding. */
static void test_s3_botocore_cases(void **state)
{
        struct sigv4_signed s;
        struct sigv4_param list[] = {
                { "list-type", "2" },
                { "prefix", "song data/A+B=C~ሴ" },
                { "continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=" },
                { "delimiter", "/" },
        };
        struct sigv4_header copy[] = {
                { "x-amz-copy-source", "/src-bucket/log%20data/2018-11-01.json" },
                { "Content-Type", "  application/json ;  charset=utf-8 " },
        };

        sign_s3("GET", "etld-bucket.s3.us-west-2.amazonaws.com", "/", list, 4, NULL, 0, NULL,
                "FQoGZXIvYXdzEXAMPLE//////////wEaDtoken+with/slashes==", 1700000000,
                "us-west-2", "host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
                "d640e0bd931b90204f897693d979e1d444946d4eb579b80405379953c4f0fb95", &s);
        assert_string_equal(s.query,
                            "continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D"
                            "&delimiter=%2F&list-type=2&prefix=song%20data%2FA%2BB%3DC~%E1%88%B4");
        assert_int_equal(s.nheaders, 4);
        assert_string_equal(s.headers[2].name, "X-Amz-Security-Token");
        sigv4_signed_clear(&s);

        sign_s3("PUT", "127.0.0.1:4568", "/etld-bucket//song data/a+b=c~d/ሴ.json", NULL, 0,
                copy, 2, SIGV4_UNSIGNED_PAYLOAD, NULL, 1700000000, "us-west-2",
                "content-type;host;x-amz-content-sha256;x-amz-copy-source;x-amz-date",
                "4d09eac494c7dad43997f81a2ec49fa7334146382acad42ae0fa9841f4dafac5", &s);
        assert_string_equal(s.path, "/etld-bucket//song%20data/a%2Bb%3Dc~d/%E1%88%B4.json");
        sigv4_signed_clear(&s);
}

static void test_errors_and_helpers(void **state)
{
        struct sigv4_creds c = s3_creds(NULL);
        struct sigv4_header bad = { "Authorization", "x" };
        struct sigv4_request r = {
                .method = "GET", .host = "h", .path = "/", .region = "us-east-1",
                .service = "s3", .now = t20130524, .headers = &bad, .nheaders = 1,
        };
        struct sigv4_signed s;
        char err[256] = "";
        char hex[65];
        struct sigv4_sha256 *h;
        char *e;

        assert_int_equal(sigv4_sign(&r, &c, &s, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "authorization"));
        assert_null(strstr(err, s3_sk));
        sigv4_signed_clear(&s);
        r.nheaders = 0;
        free(c.secret_access_key);
        c.secret_access_key = NULL;
        assert_int_equal(sigv4_sign(&r, &c, &s, err, sizeof(err)), -EINVAL);
        sigv4_signed_clear(NULL);
        sigv4_creds_clear(&c);
        sigv4_creds_clear(NULL);

        /* A presigned URL's own X-Amz-* parameters cannot come from the
         * caller: there would be two, one unsigned (tests/fuzz/fuzz_sigv4.c). */
        c = s3_creds(NULL);
        struct sigv4_param own = { "x-amz-signature", "0" };
        r.params = &own;
        r.nparams = 1;
        assert_int_equal(sigv4_presign(&r, &c, 900, &s, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "X-Amz-Signature"));
        sigv4_signed_clear(&s);
        assert_int_equal(sigv4_sign(&r, &c, &s, err, sizeof(err)), 0); /* header mode: a name */
        sigv4_signed_clear(&s);
        /* A header name that is not an HTTP token would go into the
         * Authorization header as it is (tests/fuzz/fuzz_sigv4.c). */
        r.nparams = 0;
        struct sigv4_header crlf = { "X-Amz-Meta-A\r\nX-Evil", "1" }, semi = { "a;b", "1" };
        r.headers = &crlf;
        r.nheaders = 1;
        assert_int_equal(sigv4_sign(&r, &c, &s, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "not an HTTP token"));
        sigv4_signed_clear(&s);
        r.headers = &semi;
        assert_int_equal(sigv4_sign(&r, &c, &s, err, sizeof(err)), -EINVAL);
        sigv4_signed_clear(&s);
        r.nheaders = 0;
        sigv4_creds_clear(&c);

        sigv4_sha256_hex("", 0, hex);
        assert_string_equal(hex, SIGV4_EMPTY_SHA256);
        h = sigv4_sha256_new();
        assert_non_null(h);
        sigv4_sha256_update(h, "Param1=", 7);
        sigv4_sha256_update(h, "value1", 6);
        sigv4_sha256_final(h, hex);
        assert_string_equal(hex, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");

        e = sigv4_uri_encode("a b/c~d+e=ሴ", true);
        assert_string_equal(e, "a%20b/c~d%2Be%3D%E1%88%B4");
        free(e);
        e = sigv4_uri_encode("a/b", false);
        assert_string_equal(e, "a%2Fb");
        free(e);
        assert_true(sigv4_service_is_s3("s3"));
        assert_false(sigv4_service_is_s3("sts"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_aws_suite),
                cmocka_unit_test(test_s3_doc_examples),
                cmocka_unit_test(test_s3_presign_doc_example),
                cmocka_unit_test(test_s3_botocore_cases),
                cmocka_unit_test(test_errors_and_helpers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
