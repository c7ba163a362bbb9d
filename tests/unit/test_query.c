/* test_query.c - the pure helpers of the query-protocol client
 * (daemon/aws/query.c): API versions, endpoints, signing regions, the
 * form-encoded body, page tokens, and the parameter list's bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/query.h"

static void test_versions(void **state)
{
        assert_string_equal(aws_query_version("iam"), "2010-05-08");
        assert_string_equal(aws_query_version("ec2"), "2016-11-15");
        assert_string_equal(aws_query_version("redshift"), "2012-12-01");
        assert_null(aws_query_version("s3"));
        assert_null(aws_query_version(NULL));
}

static void expect_endpoint(const char *service, const char *region, const char *override,
                            const char *want)
{
        char *url = aws_query_endpoint(service, region, override);
        if (!want) {
                assert_null(url);
                return;
        }
        assert_non_null(url);
        assert_string_equal(url, want);
        free(url);
}

static void test_endpoints(void **state)
{
        /* IAM is global; the others are regional */
        expect_endpoint("iam", "eu-west-1", NULL, "https://iam.amazonaws.com");
        expect_endpoint("ec2", "eu-west-1", NULL, "https://ec2.eu-west-1.amazonaws.com");
        expect_endpoint("redshift", "us-west-2", NULL, "https://redshift.us-west-2.amazonaws.com");
        expect_endpoint("ec2", NULL, NULL, "https://ec2.us-east-1.amazonaws.com");
        expect_endpoint("ec2", "", "", "https://ec2.us-east-1.amazonaws.com");
        /* an override wins, for every service, without its trailing slashes */
        expect_endpoint("iam", "eu-west-1", "http://127.0.0.1:5000//", "http://127.0.0.1:5000");
        expect_endpoint("redshift", "eu-west-1", "http://127.0.0.1:5000", "http://127.0.0.1:5000");
        expect_endpoint("sqs", "eu-west-1", "http://127.0.0.1:5000", NULL);
        expect_endpoint("sqs", "eu-west-1", NULL, NULL);
}

static void test_signing_region_and_token_param(void **state)
{
        assert_string_equal(aws_query_signing_region("iam", "eu-west-1"), "us-east-1");
        assert_string_equal(aws_query_signing_region("ec2", "eu-west-1"), "eu-west-1");
        assert_string_equal(aws_query_signing_region("redshift", NULL), "us-east-1");
        assert_string_equal(aws_query_signing_region("redshift", ""), "us-east-1");
        assert_string_equal(aws_query_token_param("ec2"), "NextToken");
        assert_string_equal(aws_query_token_param("iam"), "Marker");
        assert_string_equal(aws_query_token_param("redshift"), "Marker");
}

static void test_body_encoding(void **state)
{
        struct aws_params p = {0};
        aws_params_add(&p, "RoleName", "etld-role");
        /* RFC 3986 as botocore encodes it: unreserved kept, everything else
         * (space, '/', ':', '{', '"', '+', '=', '&', UTF-8) percent-encoded */
        aws_params_add(&p, "AssumeRolePolicyDocument", "{\"a\":\"b c/d+e=f&g~h-i_j.k\"}");
        aws_params_addf(&p, "sg-1", "VpcSecurityGroupIds.VpcSecurityGroupId.%d", 1);
        aws_params_add(&p, "Description", "caf\xc3\xa9");
        aws_params_add(&p, "Empty", NULL);
        assert_false(p.oom);
        assert_int_equal(p.n, 5);
        char *body = aws_query_body("CreateRole", "2010-05-08", &p);
        assert_non_null(body);
        assert_string_equal(body,
                            "Action=CreateRole&Version=2010-05-08&RoleName=etld-role"
                            "&AssumeRolePolicyDocument=%7B%22a%22%3A%22b%20c%2Fd%2Be%3Df%26g~h-"
                            "i_j.k%22%7D"
                            "&VpcSecurityGroupIds.VpcSecurityGroupId.1=sg-1"
                            "&Description=caf%C3%A9&Empty=");
        free(body);
        aws_params_clear(&p);
        assert_int_equal(p.n, 0);
        assert_null(p.v);

        /* no parameters at all */
        body = aws_query_body("DescribeVpcs", "2016-11-15", NULL);
        assert_string_equal(body, "Action=DescribeVpcs&Version=2016-11-15");
        free(body);
}

static void test_params_grow_and_refuse_long_names(void **state)
{
        struct aws_params p = {0};
        for (int i = 1; i <= 100; i++)
                aws_params_addf(&p, "subnet", "SubnetIds.SubnetIdentifier.%d", i);
        assert_false(p.oom);
        assert_int_equal(p.n, 100);
        assert_string_equal(p.v[99].name, "SubnetIds.SubnetIdentifier.100");
        /* a name that does not fit is refused, and marks the list */
        char longname[400];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        aws_params_addf(&p, "v", "%s", longname);
        assert_true(p.oom);
        assert_int_equal(p.n, 100);
        /* once marked, adds are ignored: aws_query_call refuses the list */
        aws_params_add(&p, "Later", "x");
        assert_int_equal(p.n, 100);
        aws_params_clear(&p);
        assert_false(p.oom);
}

static void expect_token(const char *xml, const char *want)
{
        xmlDoc *doc = xml_read(xml, strlen(xml));
        assert_non_null(doc);
        char tok[64];
        bool found = aws_query_find_token(xml_root(doc), tok, sizeof(tok));
        if (want) {
                assert_true(found);
                assert_string_equal(tok, want);
        } else {
                assert_false(found);
                assert_string_equal(tok, "");
        }
        xmlFreeDoc(doc);
}

static void test_page_tokens(void **state)
{
        /* IAM and Redshift: Marker inside XResult */
        expect_token("<ListAttachedRolePoliciesResponse xmlns=\"https://iam.amazonaws.com/doc/"
                     "2010-05-08/\"><ListAttachedRolePoliciesResult><IsTruncated>true"
                     "</IsTruncated><Marker>m-2</Marker><AttachedPolicies/>"
                     "</ListAttachedRolePoliciesResult></ListAttachedRolePoliciesResponse>",
                     "m-2");
        expect_token("<DescribeClustersResponse><DescribeClustersResult><Clusters/><Marker>r9"
                     "</Marker></DescribeClustersResult></DescribeClustersResponse>",
                     "r9");
        /* EC2: nextToken in the root */
        expect_token("<DescribeSubnetsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                     "<requestId>r</requestId><subnetSet/><nextToken>t-1</nextToken>"
                     "</DescribeSubnetsResponse>",
                     "t-1");
        /* the last page: none, or an empty one */
        expect_token("<DescribeSubnetsResponse><subnetSet/></DescribeSubnetsResponse>", NULL);
        expect_token("<DescribeSubnetsResponse><subnetSet/><nextToken/></DescribeSubnetsResponse>",
                     NULL);
        /* a Marker deeper than XResult is some resource's field, not the page's */
        expect_token("<R><XResult><Items><Item><Marker>no</Marker></Item></Items></XResult></R>",
                     NULL);
        char tok[8] = "junk";
        assert_false(aws_query_find_token(NULL, tok, sizeof(tok)));
        assert_string_equal(tok, "");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_versions),
            cmocka_unit_test(test_endpoints),
            cmocka_unit_test(test_signing_region_and_token_param),
            cmocka_unit_test(test_body_encoding),
            cmocka_unit_test(test_params_grow_and_refuse_long_names),
            cmocka_unit_test(test_page_tokens),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
