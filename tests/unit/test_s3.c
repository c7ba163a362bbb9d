/* test_s3.c - the pure parts of daemon/aws/s3.c: addressing (virtual-hosted,
 * path style, endpoint overrides), ListObjectsV2 / CopyObject / DeleteObjects
 * replies (with the libxml2-free fast paths checked against libxml2), and the
 * request bodies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/s3.h"

#define P(s) (s), strlen(s)

static void check_target(const char *ep, bool ps, const char *region, const char *bucket,
                         const char *key, const char *base, const char *host, const char *path)
{
        struct s3_target t;
        assert_int_equal(s3_target_build(ep, ps, region, bucket, key, &t), 0);
        assert_string_equal(t.base, base);
        assert_string_equal(t.host, host);
        assert_string_equal(t.path, path);
        s3_target_clear(&t);
}

static void test_targets(void **state)
{
        check_target(NULL, false, "us-west-2", "udacity-dend", "song_data/A/x.json",
                     "https://udacity-dend.s3.us-west-2.amazonaws.com",
                     "udacity-dend.s3.us-west-2.amazonaws.com", "/song_data/A/x.json");
        check_target(NULL, false, NULL, "bk1", NULL, "https://bk1.s3.us-east-1.amazonaws.com",
                     "bk1.s3.us-east-1.amazonaws.com", "/");
        /* dots do not survive TLS wildcard certificates: path style */
        check_target(NULL, false, "eu-west-1", "my.bucket", "k",
                     "https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com",
                     "/my.bucket/k");
        check_target(NULL, true, "eu-west-1", "bkt", "a b", "https://s3.eu-west-1.amazonaws.com",
                     "s3.eu-west-1.amazonaws.com", "/bkt/a b");
        /* an endpoint override is always path style, keeps its port */
        check_target("http://127.0.0.1:4569", false, "us-west-2", "bkt", "dir/key",
                     "http://127.0.0.1:4569", "127.0.0.1:4569", "/bkt/dir/key");
        check_target("http://127.0.0.1:4569/", false, "us-west-2", "bkt", NULL,
                     "http://127.0.0.1:4569", "127.0.0.1:4569", "/bkt");
        check_target("https://minio.local", false, NULL, "bkt", "k", "https://minio.local",
                     "minio.local", "/bkt/k");
        struct s3_target t;
        assert_int_equal(s3_target_build("ftp://x", false, NULL, "b", "k", &t), -EINVAL);
        assert_int_equal(s3_target_build("::::", false, NULL, "b", "k", &t), -EINVAL);
}

static void test_virtual_ok(void **state)
{
        assert_true(s3_bucket_virtual_ok("udacity-dend"));
        assert_false(s3_bucket_virtual_ok("my.bucket"));
        assert_false(s3_bucket_virtual_ok("UPPER"));
        assert_false(s3_bucket_virtual_ok("ab"));
        assert_false(s3_bucket_virtual_ok("-ab"));
}

static void test_parse_list(void **state)
{
        const char *x =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Name>b</Name><Prefix>song</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
            "<IsTruncated>true</IsTruncated><NextContinuationToken>tok/+=</NextContinuationToken>"
            "<Contents><Key>song/a &amp; b.json</Key><LastModified>2019-04-01T00:00:00.000Z"
            "</LastModified><ETag>&quot;abc&quot;</ETag><Size>123</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
            "<Contents><Key>song/c.json</Key><Size>0</Size><ETag>\"d\"</ETag></Contents>"
            "<CommonPrefixes><Prefix>song/x/</Prefix></CommonPrefixes>"
            "</ListBucketResult>";
        struct s3_list_page *p = NULL;
        assert_int_equal(s3_parse_list(P(x), &p), 0);
        assert_int_equal(p->n, 2);
        assert_string_equal(p->objects[0].key, "song/a & b.json");
        assert_int_equal(p->objects[0].size, 123);
        assert_string_equal(p->objects[0].etag, "\"abc\"");
        assert_string_equal(p->objects[0].last_modified, "2019-04-01T00:00:00.000Z");
        assert_int_equal(p->objects[1].size, 0);
        assert_true(p->truncated);
        assert_string_equal(p->next_token, "tok/+=");
        assert_int_equal(p->nprefixes, 1);
        assert_string_equal(p->prefixes[0], "song/x/");
        s3_list_page_free(p);

        /* s3rver's namespace, last page, empty */
        const char *e = "<ListBucketResult xmlns=\"http://doc.s3.amazonaws.com/2006-03-01/\">"
                        "<Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
                        "</ListBucketResult>";
        assert_int_equal(s3_parse_list(P(e), &p), 0);
        assert_int_equal(p->n, 0);
        assert_false(p->truncated);
        assert_null(p->next_token);
        s3_list_page_free(p);

        /* truncated without a token would loop forever: refused */
        const char *bad = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
        assert_int_equal(s3_parse_list(P(bad), &p), -EBADMSG);
        assert_int_equal(s3_parse_list(P("<Error><Code>X</Code></Error>"), &p), -EBADMSG);
        assert_int_equal(s3_parse_list(P("<ListBucketResult><Contents><Size>1</Size></Contents>"
                                         "</ListBucketResult>"),
                                       &p),
                         -EBADMSG);
}

/* Both pages the same, field by field ("" and NULL told apart). */
static bool same_str(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same_page(int ra, const struct s3_list_page *a, int rb,
                            const struct s3_list_page *b, const char *doc, size_t len)
{
        if (ra != rb)
                fail_msg("%d against %d for [%.*s]", ra, rb, (int)len, doc);
        if (ra < 0)
                return;
        bool same = a->n == b->n && a->nprefixes == b->nprefixes && a->truncated == b->truncated &&
                    same_str(a->next_token, b->next_token);
        for (size_t i = 0; same && i < a->n; i++)
                same = same_str(a->objects[i].key, b->objects[i].key) &&
                       same_str(a->objects[i].etag, b->objects[i].etag) &&
                       same_str(a->objects[i].last_modified, b->objects[i].last_modified) &&
                       a->objects[i].size == b->objects[i].size;
        for (size_t i = 0; same && i < a->nprefixes; i++)
                same = same_str(a->prefixes[i], b->prefixes[i]);
        if (!same)
                fail_msg("different pages for [%.*s]", (int)len, doc);
}

/* s3_parse_list reads simple replies without libxml2: whenever it does, the
 * libxml2 path (forced by a comment after the root, which changes nothing
 * else) gives the same page.  Returns whether the fast path took `doc`. */
static bool check_list_agrees(const char *doc, size_t len)
{
        struct xml_tree t;
        if (xml_tree_read(doc, len, &t) < 0)
                return false;
        xml_tree_free(&t);
        char slow[1024];
        assert_true(len + 8 < sizeof(slow));
        memcpy(slow, doc, len);
        memcpy(slow + len, "<!---->", 7);
        struct s3_list_page *a = NULL, *b = NULL;
        int ra = s3_parse_list(doc, len, &a);
        int rb = s3_parse_list(slow, len + 7, &b);
        check_same_page(ra, a, rb, b, doc, len);
        s3_list_page_free(ra == 0 ? a : NULL);
        s3_list_page_free(rb == 0 ? b : NULL);
        return true;
}

static void test_parse_list_fast_path(void **state)
{
        const char *base = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<ListBucketResult xmlns=\"urn:s3\"><Name>b</Name><Prefix/>"
                           "<IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;k"
                           "</NextContinuationToken>\n<Contents><Key>a&#x20;b</Key><ETag>&quot;e"
                           "&quot;</ETag><Size>12</Size></Contents><Contents><Key>c</Key>"
                           "<Owner><ID>o</ID></Owner><LastModified>x</LastModified></Contents>"
                           "<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>"
                           "</ListBucketResult>\n";
        const char subst[] = "<>&;\"'/ =x:!?#-]\t\n\r\x01\x80";
        size_t n = strlen(base), accepted = 0;
        char doc[1024];
        struct s3_list_page *p = NULL;

        assert_true(check_list_agrees(base, n));
        assert_int_equal(s3_parse_list(base, n, &p), 0);
        assert_int_equal(p->n, 2);
        assert_string_equal(p->objects[0].key, "a b");
        assert_string_equal(p->objects[0].etag, "\"e\"");
        assert_int_equal(p->objects[0].size, 12);
        assert_null(p->objects[0].last_modified);
        assert_string_equal(p->objects[1].last_modified, "x");
        assert_int_equal(p->objects[1].size, -1);
        assert_string_equal(p->next_token, "t&k");
        assert_string_equal(p->prefixes[0], "p/");
        s3_list_page_free(p);
        for (size_t i = 0; i < n; i++) {
                memcpy(doc, base, i);
                memcpy(doc + i, base + i + 1, n - i - 1);
                accepted += check_list_agrees(doc, n - 1);
                for (size_t k = 0; k < sizeof(subst) - 1; k++) {
                        memcpy(doc, base, n);
                        doc[i] = subst[k];
                        accepted += check_list_agrees(doc, n);
                }
        }
        assert_true(accepted > n);
}

static void test_parse_copy(void **state)
{
        char etag[64];
        struct aws_error e;
        const char *ok = "<CopyObjectResult><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
                         "<ETag>\"9b2cf535f27731c974343645a3985328\"</ETag></CopyObjectResult>";
        assert_int_equal(s3_parse_copy_result(P(ok), etag, sizeof(etag), &e), 0);
        assert_string_equal(etag, "\"9b2cf535f27731c974343645a3985328\"");
        /* S3 may answer 200 and still fail the copy */
        const char *err = "<Error><Code>InternalError</Code><Message>We encountered an internal "
                          "error. Please try again.</Message><RequestId>R</RequestId></Error>";
        assert_int_equal(s3_parse_copy_result(P(err), etag, sizeof(etag), &e), -EREMOTEIO);
        assert_string_equal(e.code, "InternalError");
        assert_int_equal(s3_parse_copy_result(P("<Other/>"), etag, sizeof(etag), &e), -EBADMSG);
}

static void test_parse_delete(void **state)
{
        size_t del, errs;
        struct aws_error first;
        const char *x = "<DeleteResult><Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key>"
                        "</Deleted><Error><Key>c</Key><Code>AccessDenied</Code><Message>Access "
                        "Denied</Message></Error></DeleteResult>";
        assert_int_equal(s3_parse_delete_result(P(x), &del, &errs, &first), 0);
        assert_int_equal(del, 2);
        assert_int_equal(errs, 1);
        assert_string_equal(first.code, "AccessDenied");
        assert_string_equal(first.bucket, "c"); /* the key */
        assert_int_equal(s3_parse_delete_result(P("<DeleteResult/>"), &del, &errs, &first), 0);
        assert_int_equal(del + errs, 0);
}

static void test_bodies(void **state)
{
        const char *keys[] = {"a&b", "c<d>"};
        char *b;
        size_t n;
        assert_int_equal(s3_build_delete_body(keys, 2, &b, &n), 0);
        assert_int_equal(strlen(b), n);
        assert_non_null(strstr(b, "<Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object>"
                                  "<Object><Key>c&lt;d&gt;</Key></Object></Delete>"));
        free(b);
        assert_int_equal(s3_build_delete_body(keys, 0, &b, &n), -EINVAL);
        assert_int_equal(s3_build_delete_body(keys, S3_DELETE_BATCH + 1, &b, &n), -EINVAL);

        assert_int_equal(s3_build_create_bucket_body("us-east-1", &b, &n), 0);
        assert_null(b);
        assert_int_equal(n, 0);
        assert_int_equal(s3_build_create_bucket_body("eu-west-1", &b, &n), 0);
        assert_non_null(strstr(b, "<LocationConstraint>eu-west-1</LocationConstraint>"));
        free(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_targets),
            cmocka_unit_test(test_virtual_ok),
            cmocka_unit_test(test_parse_list),
            cmocka_unit_test(test_parse_copy),
            cmocka_unit_test(test_parse_list_fast_path),
            cmocka_unit_test(test_parse_delete),
            cmocka_unit_test(test_bodies),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
