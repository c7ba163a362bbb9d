/* test_creds.c - the credentials and region chain: environment, shared
 * credentials and config files with profiles, systemd credentials; the IMDS
 * request builders and reply parsers (the blocking fetcher runs against an
 * emulator in tests/integration/test_sigv4_botocore.py).  Also that no secret
 * reaches an error or source string. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "aws/creds.h"

static char tmpdir[64];

static char *tmp_path(const char *leaf)
{
        static char path[256];

        snprintf(path, sizeof(path), "%s/%s", tmpdir, leaf);
        return path;
}

static void write_file(const char *leaf, const char *text)
{
        FILE *f = fopen(tmp_path(leaf), "w");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static const char *const env_vars[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
        "CREDENTIALS_DIRECTORY", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "AWS_EC2_METADATA_DISABLED", NULL,
};

static int setup(void **state)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/etld-test-creds-XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        for (const char *const *e = env_vars; *e; e++)
                unsetenv(*e);
        /* HOME without .aws: the defaults must find nothing. */
        setenv("HOME", tmpdir, 1);
        return 0;
}

static int teardown(void **state)
{
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

/* A long session token: longer than inih's 200-byte lines. */
static char *long_token(void)
{
        char *t = malloc(1201);

        assert_non_null(t);
        for (int i = 0; i < 1200; i++)
                t[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
        t[1200] = '\0';
        return t;
}

static void assert_no_secret(const char *s)
{
        assert_null(strstr(s, "SECRET"));
        assert_null(strstr(s, "TOKEN"));
}

static void test_nothing(void **state)
{
        struct sigv4_creds c;
        char src[256] = "x", err[512] = "";

        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), -ENOENT);
        assert_string_equal(src, "");
        assert_non_null(strstr(err, "no AWS credentials"));
        assert_null(c.access_key_id);
}

static void test_environment(void **state)
{
        struct sigv4_creds c;
        char src[256], err[512] = "";

        setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
        setenv("AWS_SECRET_ACCESS_KEY", "SECRETENV", 1);
        setenv("AWS_SESSION_TOKEN", "TOKENENV", 1);
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(src, "environment");
        assert_string_equal(c.access_key_id, "AKIDENV");
        assert_string_equal(c.secret_access_key, "SECRETENV");
        assert_string_equal(c.session_token, "TOKENENV");
        assert_int_equal(c.expiration, 0);
        sigv4_creds_clear(&c);
        assert_null(c.secret_access_key);

        /* An explicit profile skips the environment (aws --profile). */
        write_file("credentials", "[ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = "
                                  "SECRETCI\n");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
        assert_int_equal(creds_resolve("ci", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDCI");
        assert_null(c.session_token);
        sigv4_creds_clear(&c);
        /* AWS_PROFILE does not: the environment wins. */
        setenv("AWS_PROFILE", "ci", 1);
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDENV");
        sigv4_creds_clear(&c);
}

static void test_credentials_file(void **state)
{
        struct sigv4_creds c;
        char src[512], err[512] = "", want[512];
        char *tok = long_token();
        char text[2048];

        snprintf(text, sizeof(text),
                 "\xEF\xBB\xBF# comment\n; other comment\n\n"
                 "[default]\n"
                 "aws_access_key_id=AKIDDEF\n"
                 "aws_secret_access_key = SECRETDEF\n"
                 "[profile ci]\n"           /* not "ci" in the credentials file */
                 "aws_access_key_id = AKIDWRONG\n"
                 "aws_secret_access_key = SECRETWRONG\n"
                 "[ci]\n"
                 "AWS_Access_Key_Id : AKIDCI  \n"
                 "aws_secret_access_key =   SECRET/CI+x=  \n"
                 "aws_session_token = %s\n"
                 "s3 =\n"
                 "    max_concurrent_requests = 20\n",
                 tok);
        write_file("creds", text);
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("creds"), 1);

        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDDEF");
        snprintf(want, sizeof(want), "%s [default]", tmp_path("creds"));
        assert_string_equal(src, want);
        sigv4_creds_clear(&c);

        setenv("AWS_PROFILE", "ci", 1);
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDCI");
        assert_string_equal(c.secret_access_key, "SECRET/CI+x=");
        assert_string_equal(c.session_token, tok);
        snprintf(want, sizeof(want), "%s [ci]", tmp_path("creds"));
        assert_string_equal(src, want);
        sigv4_creds_clear(&c);

        /* A named profile that exists nowhere is an error, not a fall-through. */
        assert_int_equal(creds_resolve("nosuch", &c, src, sizeof(src), err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "'nosuch' not found"));

        /* Partial credentials in a file. */
        write_file("creds2", "[default]\naws_secret_access_key = SECRETONLY\n");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("creds2"), 1);
        unsetenv("AWS_PROFILE");
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "aws_access_key_id is missing"));
        assert_no_secret(err);

        /* A malformed line: its number, not its text. */
        write_file("creds3", "[default]\naws_access_key_id = A\nSECRETGARBAGE\n");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("creds3"), 1);
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, ":3: "));
        assert_no_secret(err);

        /* A NUL byte would cut the secret short, silently: refused with the
         * line (found by tests/fuzz/fuzz_creds.c). */
        static const char nul[] = "[default]\naws_access_key_id = A\n"
                                  "aws_secret_access_key = \0SECRETAFTERNUL\n";
        FILE *f = fopen(tmp_path("creds4"), "w");
        assert_non_null(f);
        assert_int_equal(fwrite(nul, 1, sizeof(nul) - 1, f), sizeof(nul) - 1);
        fclose(f);
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("creds4"), 1);
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, ":3: a NUL byte"));
        assert_no_secret(err);
        free(tok);
}

static void test_config_file(void **state)
{
        struct sigv4_creds c;
        char src[512], err[512] = "", want[512], region[64];

        write_file("config", "[default]\nregion = eu-west-1\n"
                             "[profile ci]\nregion=us-east-2\naws_access_key_id = AKIDCONF\n"
                             "aws_secret_access_key = SECRETCONF\n"
                             "[ci]\naws_access_key_id = AKIDWRONG\n"
                             "aws_secret_access_key = SECRETWRONG\n"
                             "[profile  spaced ]\nregion = ap-south-1\n");
        setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
        /* credentials file absent (HOME/.aws/credentials does not exist) */
        assert_int_equal(creds_resolve("ci", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDCONF");
        snprintf(want, sizeof(want), "%s [profile ci]", tmp_path("config"));
        assert_string_equal(src, want);
        sigv4_creds_clear(&c);

        /* Credentials file before config file. */
        write_file("credentials", "[ci]\naws_access_key_id = AKIDFILE\n"
                                  "aws_secret_access_key = SECRETFILE\n");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
        assert_int_equal(creds_resolve("ci", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDFILE");
        sigv4_creds_clear(&c);

        /* Region: env first, then the profile's, then nothing. */
        assert_int_equal(creds_resolve_region(NULL, region, sizeof(region), src, sizeof(src), err,
                                              sizeof(err)),
                         0);
        assert_string_equal(region, "eu-west-1");
        snprintf(want, sizeof(want), "%s [default]", tmp_path("config"));
        assert_string_equal(src, want);
        assert_int_equal(creds_resolve_region("ci", region, sizeof(region), src, sizeof(src), err,
                                              sizeof(err)),
                         0);
        assert_string_equal(region, "us-east-2");
        assert_int_equal(creds_resolve_region("spaced", region, sizeof(region), src, sizeof(src),
                                              err, sizeof(err)),
                         0);
        assert_string_equal(region, "ap-south-1");
        setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
        assert_int_equal(creds_resolve_region("ci", region, sizeof(region), src, sizeof(src), err,
                                              sizeof(err)),
                         0);
        assert_string_equal(region, "us-west-1");
        assert_string_equal(src, "AWS_DEFAULT_REGION");
        setenv("AWS_REGION", "us-west-2", 1);
        assert_int_equal(creds_resolve_region("ci", region, sizeof(region), src, sizeof(src), err,
                                              sizeof(err)),
                         0);
        assert_string_equal(region, "us-west-2");
        assert_string_equal(src, "AWS_REGION");
        unsetenv("AWS_REGION");
        unsetenv("AWS_DEFAULT_REGION");
        assert_int_equal(creds_resolve_region("nosuch", region, sizeof(region), src, sizeof(src),
                                              err, sizeof(err)),
                         -ENOENT);
}

static void test_systemd(void **state)
{
        struct sigv4_creds c;
        char src[512], err[512] = "", region[64];

        mkdir(tmp_path("creds.d"), 0700);
        setenv("CREDENTIALS_DIRECTORY", tmp_path("creds.d"), 1);
        write_file("creds.d/aws_access_key_id", "AKIDSYSTEMD\n");
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "aws_secret_access_key is missing"));
        write_file("creds.d/aws_secret_access_key", "  SECRETSYSTEMD\n\n");
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(src, "$CREDENTIALS_DIRECTORY");
        assert_string_equal(c.access_key_id, "AKIDSYSTEMD");
        assert_string_equal(c.secret_access_key, "SECRETSYSTEMD");
        assert_null(c.session_token);
        sigv4_creds_clear(&c);
        write_file("creds.d/aws_session_token", "TOKENSYSTEMD");
        write_file("creds.d/aws_region", "sa-east-1\n");
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.session_token, "TOKENSYSTEMD");
        sigv4_creds_clear(&c);
        assert_int_equal(creds_resolve_region(NULL, region, sizeof(region), src, sizeof(src), err,
                                              sizeof(err)),
                         0);
        assert_string_equal(region, "sa-east-1");

        /* The environment comes first. */
        setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "SECRETENV", 1);
        assert_int_equal(creds_resolve(NULL, &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDENV");
        sigv4_creds_clear(&c);
}

static void test_imds_pieces(void **state)
{
        struct creds_imds_req rq;
        struct sigv4_creds c;
        char err[256] = "";
        char *role;
        const char *ok = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-05-17T09:00:00Z\","
                         "\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIMDS\",\n"
                         "  \"SecretAccessKey\" : \"SECRET\\/IMDS\",\n  \"Token\" : \"TOKENIMDS\","
                         "\n  \"Expiration\" : \"2024-05-17T15:09:54Z\", \"Count\": 3, \"X\": null\n}";

        assert_string_equal(creds_imds_endpoint(), "http://169.254.169.254");
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6", 1);
        assert_string_equal(creds_imds_endpoint(), "http://[fd00:ec2::254]");
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338/", 1);
        assert_string_equal(creds_imds_endpoint(), "http://127.0.0.1:1338/");
        assert_false(creds_imds_disabled());
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        assert_true(creds_imds_disabled());

        assert_int_equal(creds_imds_token_req("http://127.0.0.1:1338/", 21600, &rq), 0);
        assert_string_equal(rq.method, "PUT");
        assert_string_equal(rq.url, "http://127.0.0.1:1338/latest/api/token");
        assert_string_equal(rq.header, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
        creds_imds_req_clear(&rq);
        assert_int_equal(creds_imds_role_req("http://h", "TOK", NULL, &rq), 0);
        assert_string_equal(rq.method, "GET");
        assert_string_equal(rq.url, "http://h/latest/meta-data/iam/security-credentials/");
        assert_string_equal(rq.header, "X-aws-ec2-metadata-token: TOK");
        creds_imds_req_clear(&rq);
        assert_int_equal(creds_imds_role_req("http://h", NULL, "etld-role", &rq), 0);
        assert_string_equal(rq.url, "http://h/latest/meta-data/iam/security-credentials/etld-role");
        assert_null(rq.header);
        creds_imds_req_clear(&rq);
        assert_int_equal(creds_imds_region_req("http://h", "T", &rq), 0);
        assert_string_equal(rq.url, "http://h/latest/meta-data/placement/region");
        creds_imds_req_clear(&rq);
        creds_imds_req_clear(NULL);

        assert_int_equal(creds_imds_parse_role("  etld-role\nother\n", 19, &role), 0);
        assert_string_equal(role, "etld-role");
        free(role);
        assert_int_equal(creds_imds_parse_role(" \n", 2, &role), -ENOENT);
        /* The name goes into the next URL as it is: only IAM's characters
         * (found by tests/fuzz/fuzz_creds.c: a NUL byte made an empty name). */
        assert_int_equal(creds_imds_parse_role("\0etld-role\n", 11, &role), -EINVAL);
        assert_null(role);
        assert_int_equal(creds_imds_parse_role("../../user-data#\n", 18, &role), -EINVAL);
        assert_int_equal(creds_imds_parse_role("us-west-2", 9, &role), 0);
        free(role);

        assert_int_equal(creds_imds_parse_creds(ok, strlen(ok), &c, err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "ASIAIMDS");
        assert_string_equal(c.secret_access_key, "SECRET/IMDS");
        assert_string_equal(c.session_token, "TOKENIMDS");
        assert_int_equal(c.expiration, 1715958594);
        assert_false(creds_expiring(&c, 1715958594 - 3600, 300));
        assert_true(creds_expiring(&c, 1715958594 - 200, 300));
        sigv4_creds_clear(&c);

        {
                const char *bad[] = {
                        "",
                        "[]",
                        "{\"Code\": \"Success\", \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"SECRETX\"}",
                        "{\"Code\": \"AssumeRoleUnauthorizedAccess\", \"Message\": \"SECRET\"}",
                        "{\"Code\": \"Success\", \"AccessKeyId\": {\"x\": 1}}",
                        "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"SECRETY\", \"Token\": \"T\","
                        " \"Expiration\": \"soon\"}",
                        "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"SECRETZ",
                };
                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        err[0] = '\0';
                        assert_int_equal(creds_imds_parse_creds(bad[i], strlen(bad[i]), &c, err,
                                                                sizeof(err)),
                                         -EINVAL);
                        assert_true(err[0] != '\0');
                        assert_no_secret(err);
                        assert_null(c.access_key_id);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_systemd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_imds_pieces, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
