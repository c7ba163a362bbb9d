/* test_xml.c - safe parsing of AWS XML replies by local names (daemon/aws/xml.c):
 * the three error shapes, namespaces ignored, DTDs and entities refused,
 * truncation, escaping. */
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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
