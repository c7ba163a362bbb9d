/* test_xml.c - safe parsing of AWS XML replies by local names (daemon/aws/xml.c):
 * the three error shapes, namespaces ignored, DTDs and entities refused,
 * truncation, escaping, and the libxml2-free fast path for flat replies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/xml.h"

#define P(s) (s), strlen(s)

static void test_s3_error(void **state)
{
        struct aws_error e;
        const char *x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<Error><Code>SignatureDoesNotMatch</Code>"
                        "<Message>The request signature we calculated does not match</Message>"
                        "<AWSAccessKeyId>AKID</AWSAccessKeyId>"
                        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>host==</HostId></Error>";
        assert_int_equal(xml_parse_aws_error(P(x), &e), 0);
        assert_string_equal(e.code, "SignatureDoesNotMatch");
        assert_string_equal(e.message, "The request signature we calculated does not match");
        assert_string_equal(e.request_id, "4442587FB7D0A2F9");
        assert_string_equal(e.host_id, "host==");
        assert_string_equal(e.region, "");
}

static void test_redirect_error(void **state)
{
        struct aws_error e;
        const char *x = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>wrong region"
                        "</Message><Region>eu-west-1</Region><RequestId>R1</RequestId></Error>";
        assert_int_equal(xml_parse_aws_error(P(x), &e), 0);
        assert_string_equal(e.region, "eu-west-1");
        const char *y = "<Error><Code>PermanentRedirect</Code><Message>m</Message>"
                        "<Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>b</Bucket>"
                        "<RequestId>R2</RequestId></Error>";
        assert_int_equal(xml_parse_aws_error(P(y), &e), 0);
        assert_string_equal(e.endpoint, "b.s3.eu-west-1.amazonaws.com");
        assert_string_equal(e.bucket, "b");
}

static void test_query_and_ec2_errors(void **state)
{
        struct aws_error e;
        const char *q = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"
                        "<Error><Type>Sender</Type><Code>EntityAlreadyExists</Code>"
                        "<Message>Role with name r already exists.</Message></Error>"
                        "<RequestId>abc-123</RequestId></ErrorResponse>";
        assert_int_equal(xml_parse_aws_error(P(q), &e), 0);
        assert_string_equal(e.code, "EntityAlreadyExists");
        assert_string_equal(e.request_id, "abc-123");
        const char *ec2 = "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                          "<Message>Request limit exceeded.</Message></Error></Errors>"
                          "<RequestID>ec2-req</RequestID></Response>";
        assert_int_equal(xml_parse_aws_error(P(ec2), &e), 0);
        assert_string_equal(e.code, "RequestLimitExceeded");
        assert_string_equal(e.request_id, "ec2-req");
}

static void test_namespaces_ignored(void **state)
{
        struct aws_error e;
        const char *x = "<s:Error xmlns:s=\"urn:emulator\"><s:Code>NoSuchKey</s:Code>"
                        "<s:Message>gone</s:Message></s:Error>";
        assert_int_equal(xml_parse_aws_error(P(x), &e), 0);
        assert_string_equal(e.code, "NoSuchKey");
        assert_string_equal(e.message, "gone");
}

static void test_not_errors(void **state)
{
        struct aws_error e;
        assert_int_equal(xml_parse_aws_error(NULL, 0, &e), -EBADMSG);
        assert_int_equal(xml_parse_aws_error(P(""), &e), -EBADMSG);
        assert_int_equal(xml_parse_aws_error(P("<html>502 Bad Gateway</html>"), &e), -EBADMSG);
        assert_int_equal(xml_parse_aws_error(P("<Error><Code>Trunc"), &e), -EBADMSG);
        assert_int_equal(xml_parse_aws_error(P("<Error><Message>no code</Message></Error>"), &e),
                         -EBADMSG);
        assert_int_equal(xml_parse_aws_error(P("not xml at all"), &e), -EBADMSG);
        assert_string_equal(e.code, "");
}

static void test_dtd_and_entities_refused(void **state)
{
        struct aws_error e;
        const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM "
                          "\"file:///etc/passwd\">]><Error><Code>&x;</Code></Error>";
        assert_int_equal(xml_parse_aws_error(P(xxe), &e), -EBADMSG);
        const char *bomb = "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY a \"aaaaaaaaaa\">"
                           "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
                           "<Error><Code>&b;</Code></Error>";
        assert_int_equal(xml_parse_aws_error(P(bomb), &e), -EBADMSG);
        const char *net = "<!DOCTYPE Error SYSTEM \"http://127.0.0.1:1/x.dtd\"><Error><Code>C"
                          "</Code></Error>";
        assert_null(xml_read(P(net)));
        /* predefined and character entities are plain XML, and fine */
        const char *ok = "<Error><Code>A&amp;B</Code><Message>&lt;&#65;&gt;</Message></Error>";
        assert_int_equal(xml_parse_aws_error(P(ok), &e), 0);
        assert_string_equal(e.code, "A&B");
        assert_string_equal(e.message, "<A>");
}

static void test_truncation_keeps_utf8(void **state)
{
        struct aws_error e;
        char x[2048];
        char msg[700];
        /* 600 bytes of two-byte characters: the 512-byte field must end on a boundary */
        for (int i = 0; i < 300; i++)
                memcpy(msg + 2 * i, "\xc3\xa9", 2);
        msg[600] = '\0';
        snprintf(x, sizeof(x), "<Error><Code>C</Code><Message>%s</Message></Error>", msg);
        assert_int_equal(xml_parse_aws_error(P(x), &e), 0);
        assert_int_equal(strlen(e.message), 510);
}

static void test_helpers(void **state)
{
        const char *x = "<a xmlns=\"urn:x\"><b><c>one</c></b><b><c>two</c></b><d/></a>";
        xmlDoc *doc = xml_read(P(x));
        assert_non_null(doc);
        xmlNode *root = xml_root(doc);
        assert_true(xml_is(root, "a"));
        xmlNode *b = xml_child(root, "b");
        char *t = xml_text(xml_path(root, "b/c"));
        assert_string_equal(t, "one");
        free(t);
        t = xml_text(xml_child(xml_next(b, "b"), "c"));
        assert_string_equal(t, "two");
        free(t);
        assert_null(xml_next(xml_next(b, "b"), "b"));
        assert_null(xml_path(root, "b/zz"));
        t = xml_text(xml_child(root, "d"));
        assert_string_equal(t, "");
        free(t);
        xmlFreeDoc(doc);
}

static void test_escape(void **state)
{
        char *s = NULL;
        assert_int_equal(xml_escape("a&b<c>\"d'\te", &s), 0);
        assert_string_equal(s, "a&amp;b&lt;c&gt;&quot;d&apos;&#9;e");
        free(s);
        assert_int_equal(xml_escape("", &s), 0);
        assert_string_equal(s, "");
        free(s);
        assert_int_equal(xml_escape("bad\x01", &s), -EINVAL);
}

/* What libxml2 says about `doc`: 1 and the text when the root is `root` and
 * has a child `child`, 0 when the root is `root` without one, -1 otherwise. */
static int libxml_child(const char *doc, size_t len, const char *root, const char *child, char *buf,
                        size_t size)
{
        xmlDoc *d = xml_read(doc, len);
        int r = -1;
        if (d && xml_is(xml_root(d), root))
                r = xml_child_copy(xml_root(d), child, buf, size) ? 1 : 0;
        if (d)
                xmlFreeDoc(d);
        return r;
}

/* Whatever the fast path accepts, libxml2 reads the same way. */
static bool check_flat_agrees(const char *doc, size_t len)
{
        char a[64], b[64];
        int fast = xml_flat_child(doc, len, "CopyObjectResult", "ETag", a, sizeof(a));
        if (fast == -EAGAIN)
                return false;
        int slow = libxml_child(doc, len, "CopyObjectResult", "ETag", b, sizeof(b));
        if (fast != slow)
                fail_msg("fast %d, libxml2 %d for [%.*s]", fast, slow, (int)len, doc);
        if (fast == 1 && strcmp(a, b) != 0)
                fail_msg("fast '%s', libxml2 '%s' for [%.*s]", a, b, (int)len, doc);
        return true;
}

static void test_flat_child(void **state)
{
        char etag[64];
        const char *aws = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult "
                          "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>"
                          "2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;9b2cf535f27731c97"
                          "4343645a3985328&quot;</ETag></CopyObjectResult>";
        assert_int_equal(xml_flat_child(P(aws), "CopyObjectResult", "ETag", etag, sizeof(etag)), 1);
        assert_string_equal(etag, "\"9b2cf535f27731c974343645a3985328\"");
        const char *pretty = "<CopyObjectResult>\n  <ETag>\"e&#x41;&#66;\"</ETag>\n"
                             "  <ETag>second</ETag>\n</CopyObjectResult>\n";
        assert_int_equal(xml_flat_child(P(pretty), "CopyObjectResult", "ETag", etag, 6), 1);
        assert_string_equal(etag, "\"eAB\""); /* the first one, truncated to fit */
        assert_int_equal(xml_flat_child(P("<CopyObjectResult><LastModified>x</LastModified>"
                                          "</CopyObjectResult>"),
                                        "CopyObjectResult", "ETag", etag, sizeof(etag)),
                         0);
        /* everything else is left to libxml2 */
        const char *others[] = {
            "<Error><Code>InternalError</Code></Error>",
            "<CopyObjectResult><ETag>x</ETag>",
            "<CopyObjectResult><ETag>x</Etag></CopyObjectResult>",
            "<CopyObjectResult><ETag><![CDATA[x]]></ETag></CopyObjectResult>",
            "<CopyObjectResult><!-- c --><ETag>x</ETag></CopyObjectResult>",
            "<s:CopyObjectResult xmlns:s=\"urn:s\"><s:ETag>x</s:ETag></s:CopyObjectResult>",
            "<CopyObjectResult><ETag a=\"1\">x</ETag></CopyObjectResult>",
            "<CopyObjectResult><ETag/></CopyObjectResult>",
            "<CopyObjectResult><ETag>&x;</ETag></CopyObjectResult>",
            "<CopyObjectResult><ETag>\xc3\xa9</ETag></CopyObjectResult>",
            "<CopyObjectResult><ETag>a\r\nb</ETag></CopyObjectResult>",
            "<CopyObjectResult><ETag>]]></ETag></CopyObjectResult>",
            "<CopyObjectResult a=\"1\" a=\"2\"><ETag>x</ETag></CopyObjectResult>",
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?><CopyObjectResult></CopyObjectResult>",
            "<?xml version=\"1.1\"?><CopyObjectResult></CopyObjectResult>",
            "<?xml-stylesheet href=\"x\"?><CopyObjectResult></CopyObjectResult>",
            "<!DOCTYPE CopyObjectResult><CopyObjectResult></CopyObjectResult>",
            "<CopyObjectResult>text<ETag>x</ETag></CopyObjectResult>",
            "<CopyObjectResult><ETag>x</ETag></CopyObjectResult><more/>",
            "\xef\xbb\xbf<CopyObjectResult></CopyObjectResult>",
            "",
        };
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
                assert_int_equal(
                    xml_flat_child(P(others[i]), "CopyObjectResult", "ETag", etag, sizeof(etag)),
                    -EAGAIN);
        assert_int_equal(xml_flat_child(NULL, 0, "CopyObjectResult", "ETag", etag, sizeof(etag)),
                         -EAGAIN);
        check_flat_agrees(P(aws));
        check_flat_agrees(P(pretty));
}

/* Every one-byte deletion or replacement of a reply: the fast path either
 * steps aside or agrees with libxml2. */
static void test_flat_child_mutations(void **state)
{
        const char *base = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
                           "<CopyObjectResult xmlns=\"urn:x\" b='2'><LastModified>2009"
                           "</LastModified>\n <ETag>&quot;a&amp;&#98;&#x63;&lt;&gt;&apos;"
                           "</ETag ></CopyObjectResult >\n";
        const char subst[] = "<>&;\"'/ =x:!?#-]\t\n\r\x01\x80";
        size_t n = strlen(base);
        char doc[512], etag[64];
        size_t accepted = 0;

        assert_int_equal(xml_flat_child(base, n, "CopyObjectResult", "ETag", etag, sizeof(etag)),
                         1);
        assert_string_equal(etag, "\"a&bc<>'");
        check_flat_agrees(base, n);
        for (size_t i = 0; i < n; i++) {
                memcpy(doc, base, i);
                memcpy(doc + i, base + i + 1, n - i - 1);
                accepted += check_flat_agrees(doc, n - 1);
                for (size_t k = 0; k < sizeof(subst) - 1; k++) {
                        memcpy(doc, base, n);
                        doc[i] = subst[k];
                        accepted += check_flat_agrees(doc, n);
                }
        }
        assert_true(accepted > n); /* the comparison did take place */
}

static void test_tree(void **state)
{
        const char *x = "<?xml version=\"1.0\"?>\n<r a=\"1\">\n <b><c>one</c><c/></b>\n"
                        " <d>&lt;2&gt;</d><e> </e></r>\n";
        struct xml_tree t;
        assert_int_equal(xml_tree_read(P(x), &t), 0);
        assert_true(xml_tree_is(&t, 0, "r"));
        int b = xml_tree_child(&t, 0, "b");
        int c = xml_tree_child(&t, b, "c");
        assert_string_equal(xml_tree_text(&t, c), "one");
        assert_string_equal(xml_tree_text(&t, xml_tree_next(&t, c, "c")), "");
        assert_int_equal(xml_tree_next(&t, xml_tree_next(&t, c, "c"), "c"), -1);
        assert_null(xml_tree_text(&t, b)); /* not a leaf */
        assert_null(xml_tree_text(&t, -1));
        assert_string_equal(xml_tree_text(&t, xml_tree_child(&t, 0, "d")), "<2>");
        assert_string_equal(xml_tree_text(&t, xml_tree_child(&t, 0, "e")), " ");
        assert_int_equal(xml_tree_child(&t, 0, "zz"), -1);
        xml_tree_free(&t);
        const char *others[] = {
            "<r>text<b>x</b></r>",
            "<r><b>x</b>text</r>",
            "<r><b a=\"1\">x</b></r>",
            "<r><p:b xmlns:p=\"u\"/></r>",
            "<r><!-- c --></r>",
            "<r><b>x</b></r><!---->",
            "<r><b>x</c></r>",
            "<r><b>x</b>",
            "<r>\xc3\xa9</r>",
            "<r><![CDATA[x]]></r>",
            "",
            "<r/>",
        };
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
                assert_int_equal(xml_tree_read(P(others[i]), &t), -EAGAIN);
        char deep[256];
        size_t n = 0;
        for (int i = 0; i < 17; i++)
                n += (size_t)snprintf(deep + n, sizeof(deep) - n, "<a>");
        for (int i = 0; i < 17; i++)
                n += (size_t)snprintf(deep + n, sizeof(deep) - n, "</a>");
        assert_int_equal(xml_tree_read(deep, n, &t), -EAGAIN);   /* too deep */
        assert_int_equal(xml_tree_read(deep + 3, n - 7, &t), 0); /* 16 levels are fine */
        xml_tree_free(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_s3_error),
            cmocka_unit_test(test_redirect_error),
            cmocka_unit_test(test_query_and_ec2_errors),
            cmocka_unit_test(test_namespaces_ignored),
            cmocka_unit_test(test_not_errors),
            cmocka_unit_test(test_dtd_and_entities_refused),
            cmocka_unit_test(test_truncation_keeps_utf8),
            cmocka_unit_test(test_helpers),
            cmocka_unit_test(test_escape),
            cmocka_unit_test(test_flat_child),
            cmocka_unit_test(test_flat_child_mutations),
            cmocka_unit_test(test_tree),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
