/* test_creds.c - the credentials and region chain: environment, shared
 * credentials and config files with profiles, systemd credentials; the IMDS
 * request builders and reply parsers (the blocking fetcher runs against an
 * emulator in tests/integration/test_sigv4_botocore.py); credential_process
 * (splitting, its JSON, small scripts run for real), the STS requests and
 * replies (sts.h), container credentials' URL rules, and which source the
 * chain picks (STS itself is asked in tests/integration/test_creds_sources.py).
 * Also that no secret reaches an error or source string. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "aws/creds.h"
#include "aws/sts.h"
#include "util.h"

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
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "CREDENTIALS_DIRECTORY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "ETLD_CREDENTIAL_PROCESS_TIMEOUT",
    NULL,
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

static void test_process_split(void **state)
{
        static const struct {
                const char *cmd;
                const char *words[5];
        } ok[] = {
            {"/bin/helper --profile ci", {"/bin/helper", "--profile", "ci"}},
            {"  a   'b c'  \"d \\\" e\"\tf\\ g ", {"a", "b c", "d \" e", "f g"}},
            {"x'y'\"z\"", {"xyz"}},
            {"\"\" ''", {"", ""}},
            {"a\\\\b \"c\\\\d\\q\"", {"a\\b", "c\\d\\q"}},
        };
        char **argv;

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                assert_int_equal(creds_process_split(ok[i].cmd, &argv), 0);
                size_t n = 0;
                for (; ok[i].words[n]; n++) {
                        assert_non_null(argv[n]);
                        assert_string_equal(argv[n], ok[i].words[n]);
                }
                assert_null(argv[n]);
                creds_argv_free(argv);
        }
        assert_int_equal(creds_process_split("a 'b", &argv), -EINVAL);
        assert_int_equal(creds_process_split("a \"b", &argv), -EINVAL);
        assert_int_equal(creds_process_split("a\\", &argv), -EINVAL);
        assert_int_equal(creds_process_split("   ", &argv), -ENOENT);
        assert_null(argv);
}

static void test_process_parse(void **state)
{
        struct sigv4_creds c;
        char err[256];
        const char *full = "{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": "
                           "\"SECRETPROC\", \"SessionToken\": \"TOKENPROC\", \"Expiration\": "
                           "\"2030-01-02T03:04:05Z\"}";
        assert_int_equal(creds_process_parse(full, strlen(full), &c, err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDPROC");
        assert_string_equal(c.session_token, "TOKENPROC");
        assert_int_equal(c.expiration, 1893553445);
        sigv4_creds_clear(&c);
        /* long-term keys: no token, no expiry; fractions and +00:00 accepted */
        const char *bare = "{\"Version\":1,\"AccessKeyId\":\"AKIDPROC\",\"SecretAccessKey\":"
                           "\"SECRETPROC\"}";
        assert_int_equal(creds_process_parse(bare, strlen(bare), &c, err, sizeof(err)), 0);
        assert_null(c.session_token);
        assert_int_equal(c.expiration, 0);
        sigv4_creds_clear(&c);
        time_t t;
        assert_int_equal(sts_parse_time("2030-01-02T03:04:05.123+00:00", &t), 0);
        assert_int_equal(t, 1893553445);
        assert_int_equal(sts_parse_time("2030-01-02T03:04:05+02:00", &t), -EINVAL);

        static const char *const bad[] = {
            "{\"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"SECRETPROC\"}",
            "{\"Version\": 2, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"SECRETPROC\"}",
            "{\"Version\": \"1\", \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": "
            "\"SECRETPROC\"}",
            "{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\"}",
            "{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"SECRETPROC\", "
            "\"Expiration\": \"tomorrow SECRET\"}",
            "SECRETPROC not json",
            "",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = '\0';
                assert_int_equal(creds_process_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err)),
                                 -EINVAL);
                assert_true(err[0] != '\0');
                assert_no_secret(err);
                assert_null(c.access_key_id);
        }
}

/* A credential process: a shell script in tmpdir printing body (and
 * stderr text), exiting with status. */
static const char *script(const char *leaf, const char *body, const char *stderr_text, int status)
{
        char text[1024];
        snprintf(text, sizeof(text),
                 "#!/bin/sh\necho \"$@\" >> '%s/args'\ncat <<'EOF'\n%s\nEOF\n"
                 "echo '%s' >&2\nexit %d\n",
                 tmpdir, body, stderr_text, status);
        write_file(leaf, text);
        assert_int_equal(chmod(tmp_path(leaf), 0755), 0);
        return tmp_path(leaf);
}

static void test_process_chain(void **state)
{
        struct sigv4_creds c;
        char src[512], err[1024], conf[2048];
        const char *ok = script("proc.sh",
                                "{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
                                "\"SecretAccessKey\": \"SECRETPROC\", \"Expiration\": "
                                "\"2030-01-02T03:04:05Z\"}",
                                "", 0);

        /* the config file's credential_process, with quoted arguments */
        snprintf(conf, sizeof(conf),
                 "[profile p]\ncredential_process = %s --role 'a b'\naws_access_key_id = "
                 "AKIDCONF\naws_secret_access_key = SECRETCONF\n",
                 ok);
        write_file("config", conf);
        setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
        assert_int_equal(creds_resolve_chain("p", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDPROC"); /* it wins over the config's keys */
        assert_int_equal(c.expiration, 1893553445);
        assert_non_null(strstr(src, "credential_process of"));
        assert_non_null(strstr(src, "[profile p]"));
        sigv4_creds_clear(&c);
        char *args = NULL;
        size_t len;
        assert_int_equal(util_read_file(tmp_path("args"), &args, &len), 0);
        assert_string_equal(args, "--role a b\n");
        free(args);
        /* ...but creds_resolve runs nothing */
        assert_int_equal(creds_resolve("p", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDCONF");
        sigv4_creds_clear(&c);

        /* the credentials file's keys win over it */
        write_file("credentials",
                   "[p]\naws_access_key_id = AKIDCRED\naws_secret_access_key = SECRETCRED\n");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
        assert_int_equal(creds_resolve_chain("p", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDCRED");
        sigv4_creds_clear(&c);
        unsetenv("AWS_SHARED_CREDENTIALS_FILE");

        /* a failing process: its status and stderr in the error, not its stdout */
        const char *bad =
            script("bad.sh", "{\"SecretAccessKey\": \"SECRETLEAK\"}", "no session for you", 3);
        snprintf(conf, sizeof(conf), "[default]\ncredential_process = %s\n", bad);
        write_file("config", conf);
        assert_int_equal(creds_resolve_chain(NULL, &c, src, sizeof(src), err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "exited with status 3: no session for you"));
        assert_non_null(strstr(err, "[default]"));
        assert_null(strstr(err, "SECRETLEAK"));
        /* its JSON wrong: said, never quoted */
        script("bad.sh", "{\"Version\": 1, \"SecretAccessKey\": \"SECRETLEAK\"}", "", 0);
        assert_int_equal(creds_resolve_chain(NULL, &c, src, sizeof(src), err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "lacks AccessKeyId"));
        assert_null(strstr(err, "SECRETLEAK"));
        /* no such command */
        write_file("config", "[default]\ncredential_process = /nonexistent/helper\n");
        assert_int_equal(creds_resolve_chain(NULL, &c, src, sizeof(src), err, sizeof(err)),
                         -EINVAL);
        /* posix_spawnp says ENOENT; under valgrind the child exits 127 */
        assert_non_null(strstr(err, "/nonexistent/helper"));
        assert_true(strstr(err, "No such file") || strstr(err, "status 127"));
        /* an unclosed quote */
        write_file("config", "[default]\ncredential_process = helper 'x\n");
        assert_int_equal(creds_resolve_chain(NULL, &c, src, sizeof(src), err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "unclosed quote"));
        /* one that hangs is killed */
        write_file("hang.sh", "#!/bin/sh\nexec sleep 30\n");
        assert_int_equal(chmod(tmp_path("hang.sh"), 0755), 0);
        snprintf(conf, sizeof(conf), "[default]\ncredential_process = %s\n", tmp_path("hang.sh"));
        write_file("config", conf);
        setenv("ETLD_CREDENTIAL_PROCESS_TIMEOUT", "1", 1);
        time_t t0 = time(NULL);
        assert_int_equal(creds_resolve_chain(NULL, &c, src, sizeof(src), err, sizeof(err)),
                         -ETIMEDOUT);
        assert_true(time(NULL) - t0 < 5);
        assert_non_null(strstr(err, "did not finish in 1 s"));
}

static void test_sts_requests(void **state)
{
        struct sts_req rq;
        char err[256];
        struct sigv4_creds src = {.access_key_id = "AKIDSRC",
                                  .secret_access_key = "SECRETSRC",
                                  .session_token = "TOKENSRC"};
        struct sts_role role = {.role_arn = "arn:aws:iam::123456789012:role/etl",
                                .external_id = "ext 1",
                                .duration_s = 900};

        assert_int_equal(sts_assume_role_req("http://127.0.0.1:5000", "eu-west-1", &role, &src,
                                             1700000000, &rq, err, sizeof(err)),
                         0);
        assert_string_equal(rq.url, "http://127.0.0.1:5000/");
        assert_string_equal(rq.body,
                            "Action=AssumeRole&DurationSeconds=900&ExternalId=ext%201&RoleArn="
                            "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fetl&RoleSessionName=etld-"
                            "1700000000&Version=2011-06-15");
        bool host = false, auth = false, tok = false;
        for (size_t i = 0; i < rq.nheaders; i++) {
                host |= strcmp(rq.headers[i], "Host: 127.0.0.1:5000") == 0;
                auth |= strncmp(rq.headers[i],
                                "Authorization: AWS4-HMAC-SHA256 Credential=AKIDSRC/20231114/"
                                "eu-west-1/sts/aws4_request",
                                86) == 0;
                tok |= strcmp(rq.headers[i], "X-Amz-Security-Token: TOKENSRC") == 0;
        }
        assert_true(host && auth && tok);
        sts_req_clear(&rq);

        /* web identity: unsigned, the token in the body */
        role.role_session_name = "ci-run";
        role.duration_s = 0;
        assert_int_equal(sts_web_identity_req("https://sts.example.com/base", &role, "eyJ.tok",
                                              1700000000, &rq, err, sizeof(err)),
                         0);
        assert_string_equal(rq.url, "https://sts.example.com/base");
        assert_non_null(strstr(rq.body, "Action=AssumeRoleWithWebIdentity&"));
        assert_non_null(strstr(rq.body, "&RoleSessionName=ci-run&WebIdentityToken=eyJ.tok&"));
        assert_null(strstr(rq.body, "ExternalId"));
        for (size_t i = 0; i < rq.nheaders; i++)
                assert_null(strstr(rq.headers[i], "Authorization"));
        sts_req_clear(&rq);

        /* refused before anything is sent */
        role.role_session_name = "bad name";
        assert_int_equal(
            sts_web_identity_req("https://sts.example.com", &role, "t", 1, &rq, err, sizeof(err)),
            -EINVAL);
        assert_non_null(strstr(err, "role_session_name"));
        role.role_session_name = NULL;
        role.duration_s = 60;
        assert_int_equal(sts_assume_role_req("https://sts.example.com", "us-east-1", &role, &src, 1,
                                             &rq, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "duration_seconds 60"));
        role.duration_s = 0;
        assert_int_equal(sts_assume_role_req("sts.example.com", "us-east-1", &role, &src, 1, &rq,
                                             err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "STS endpoint"));
        assert_int_equal(
            sts_web_identity_req("https://sts.example.com", &role, "", 1, &rq, err, sizeof(err)),
            -EINVAL);
}

static void test_sts_replies(void **state)
{
        struct sigv4_creds c;
        char err[512];
        const char *ok =
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
            "<AssumeRoleResult><SourceIdentity>x</SourceIdentity><AssumedRoleUser><Arn>a</Arn>"
            "</AssumedRoleUser><Credentials><AccessKeyId>ASIASTS</AccessKeyId>"
            "<SecretAccessKey>SECRETSTS</SecretAccessKey><SessionToken>TOKENSTS</SessionToken>"
            "<Expiration>2030-01-02T03:04:05.000Z</Expiration></Credentials></AssumeRoleResult>"
            "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>";
        assert_int_equal(sts_parse_reply("AssumeRole", 200, ok, strlen(ok), &c, err, sizeof(err)),
                         0);
        assert_string_equal(c.access_key_id, "ASIASTS");
        assert_string_equal(c.secret_access_key, "SECRETSTS");
        assert_string_equal(c.session_token, "TOKENSTS");
        assert_int_equal(c.expiration, 1893553445);
        sigv4_creds_clear(&c);
        /* the reply of the other action is not this one's */
        assert_int_equal(
            sts_parse_reply("AssumeRoleWithWebIdentity", 200, ok, strlen(ok), &c, err, sizeof(err)),
            -EBADMSG);
        assert_null(c.access_key_id);

        const char *denied =
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
            "<Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to "
            "perform: sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>";
        assert_int_equal(
            sts_parse_reply("AssumeRole", 403, denied, strlen(denied), &c, err, sizeof(err)),
            -EACCES);
        assert_non_null(strstr(err, "STS AssumeRole: AccessDenied: User is not authorized"));
        assert_int_equal(sts_parse_reply("AssumeRole", 502, "<html>", 6, &c, err, sizeof(err)),
                         -EBADMSG);
        assert_non_null(strstr(err, "HTTP 502"));

        static const char *const bad[] = {
            "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId>"
            "<SecretAccessKey>SECRETSTS</SecretAccessKey><SessionToken>TOKENSTS</SessionToken>"
            "</Credentials></AssumeRoleResult></AssumeRoleResponse>",
            "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId>"
            "<SecretAccessKey>SECRETSTS</SecretAccessKey><SessionToken>TOKENSTS</SessionToken>"
            "<Expiration>SECRET soon</Expiration></Credentials></AssumeRoleResult>"
            "</AssumeRoleResponse>",
            "<AssumeRoleResponse><AssumeRoleResult></AssumeRoleResult></AssumeRoleResponse>",
            "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId>"
            "<SessionToken>TOKENSTS</SessionToken><Expiration>2030-01-02T03:04:05Z</Expiration>"
            "</Credentials></AssumeRoleResult></AssumeRoleResponse>",
            "not xml SECRET",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = '\0';
                assert_int_equal(sts_parse_reply("AssumeRole", 200, bad[i], strlen(bad[i]), &c, err,
                                                 sizeof(err)),
                                 -EBADMSG);
                assert_true(err[0] != '\0');
                assert_no_secret(err);
                assert_null(c.access_key_id);
        }
}

static void test_roles_chain(void **state)
{
        struct sigv4_creds c;
        char src[512], err[1024];

        /* STS where nothing listens: the error shows which way the chain went */
        setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9", 1);
        setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
        write_file("credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = "
                                  "SECRETBASE\n");
        write_file("config",
                   "[profile r]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n"
                   "[profile loop1]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop2\n"
                   "[profile loop2]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = loop1\n"
                   "[profile self]\nrole_arn = arn:aws:iam::1:role/s\nsource_profile = self\n"
                   "aws_access_key_id = AKIDSELF\naws_secret_access_key = SECRETSELF\n"
                   "[profile selfless]\nrole_arn = arn:aws:iam::1:role/s\nsource_profile = "
                   "selfless\n"
                   "[profile mfa]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = base\n"
                   "mfa_serial = arn:aws:iam::1:mfa/me\n"
                   "[profile both]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"
                   "credential_source = Environment\n"
                   "[profile none]\nrole_arn = arn:aws:iam::1:role/x\n"
                   "[profile ghost]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = nobody\n"
                   "[profile env]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = "
                   "Environment\n"
                   "[profile odd]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Vault\n"
                   "[profile long]\nrole_arn = arn:aws:iam::1:role/l\nsource_profile = base\n"
                   "duration_seconds = 99999\n"
                   "[profile wi]\nweb_identity_token_file = /nonexistent/token\nrole_arn = "
                   "arn:aws:iam::1:role/w\n");
        static const struct {
                const char *profile;
                int r;
                const char *says;
        } cases[] = {
            {"r", -EHOSTUNREACH,
             "assuming role arn:aws:iam::1:role/r: STS AssumeRole at "
             "http://127.0.0.1:9/"},
            {"loop1", -EINVAL, "source_profile loop: loop1 -> loop2 -> loop1"},
            {"self", -EHOSTUNREACH, "assuming role arn:aws:iam::1:role/s"},
            {"selfless", -EINVAL, "source_profile loop: selfless -> selfless"},
            {"mfa", -EINVAL, "cannot prompt"},
            {"both", -EINVAL, "both source_profile and credential_source"},
            {"none", -EINVAL, "needs source_profile or credential_source"},
            {"ghost", -EINVAL, "source_profile 'nobody' does not exist"},
            {"env", -EINVAL, "credential_source Environment, but AWS_ACCESS_KEY_ID"},
            {"odd", -EINVAL, "credential_source 'Vault' is not"},
            {"long", -EINVAL, "duration_seconds must be"},
            {"wi", -EINVAL, "/nonexistent/token"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                err[0] = '\0';
                int r =
                    creds_resolve_chain(cases[i].profile, &c, src, sizeof(src), err, sizeof(err));
                if (r != cases[i].r || !strstr(err, cases[i].says))
                        fail_msg("profile %s: %d %s", cases[i].profile, r, err);
                assert_no_secret(err);
                assert_non_null(strstr(err, tmp_path("config")));
        }
        /* the caller's STS place (etld.conf's) wins over the environment's */
        const struct creds_sts at = {"http://127.0.0.1:8", "eu-west-3"};
        assert_int_equal(creds_resolve_chain_at("r", &at, &c, src, sizeof(src), err, sizeof(err)),
                         -EHOSTUNREACH);
        assert_non_null(strstr(err, "STS AssumeRole at http://127.0.0.1:8/"));
        /* creds_resolve ignores roles: the self profile's own keys */
        assert_int_equal(creds_resolve("self", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDSELF");
        sigv4_creds_clear(&c);

        /* web identity from the environment comes before the files' keys */
        write_file("token", "eyJ.web.token\n");
        setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tmp_path("token"), 1);
        write_file("credentials", "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key "
                                  "= SECRETDEF\n");
        assert_int_equal(creds_resolve_chain(NULL, &c, src, sizeof(src), err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "no role: set AWS_ROLE_ARN"));
        setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/web", 1);
        assert_int_equal(creds_resolve_chain(NULL, &c, src, sizeof(src), err, sizeof(err)),
                         -EHOSTUNREACH);
        assert_non_null(strstr(err, "STS AssumeRoleWithWebIdentity at"));
        assert_null(strstr(err, "eyJ"));
        /* an explicit profile ignores the variables, as aws --profile does */
        assert_int_equal(creds_resolve_chain("default", &c, src, sizeof(src), err, sizeof(err)), 0);
        assert_string_equal(c.access_key_id, "AKIDDEF");
        sigv4_creds_clear(&c);
}

static void test_sts_endpoint(void **state)
{
        char ep[256], region[64], err[256];

        assert_int_equal(
            creds_sts_endpoint(NULL, ep, sizeof(ep), region, sizeof(region), err, sizeof(err)), 0);
        assert_string_equal(ep, "https://sts.us-east-1.amazonaws.com");
        write_file("config", "[default]\nregion = eu-north-1\nendpoint_url = http://prof:1\n");
        setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
        assert_int_equal(
            creds_sts_endpoint(NULL, ep, sizeof(ep), region, sizeof(region), err, sizeof(err)), 0);
        assert_string_equal(ep, "http://prof:1");
        assert_string_equal(region, "eu-north-1");
        setenv("AWS_ENDPOINT_URL", "http://all:2", 1);
        assert_int_equal(
            creds_sts_endpoint(NULL, ep, sizeof(ep), region, sizeof(region), err, sizeof(err)), 0);
        assert_string_equal(ep, "http://all:2");
        setenv("AWS_ENDPOINT_URL_STS", "http://sts:3", 1);
        assert_int_equal(
            creds_sts_endpoint(NULL, ep, sizeof(ep), region, sizeof(region), err, sizeof(err)), 0);
        assert_string_equal(ep, "http://sts:3");
        setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
        setenv("AWS_REGION", "ap-south-2", 1);
        assert_int_equal(
            creds_sts_endpoint(NULL, ep, sizeof(ep), region, sizeof(region), err, sizeof(err)), 0);
        assert_string_equal(ep, "https://sts.ap-south-2.amazonaws.com");
}

static void test_container(void **state)
{
        struct creds_imds_req rq;
        char err[512];

        static const char *const allowed[] = {
            "http://127.0.0.1:8080/creds", "http://127.1.2.3/x",
            "http://localhost/x",          "http://[::1]:9/x",
            "http://169.254.170.2/v2",     "http://169.254.170.23/v1",
            "http://[fd00:ec2::23]/v1",    "https://creds.example.com/x",
        };
        static const char *const refused[] = {
            "http://10.0.0.1/creds",    "http://example.com/x",
            "http://169.254.169.254/x", "http://[fd00:ec2::254]/x",
            "ftp://127.0.0.1/x",        "http://127.0.0.1@evil.com/x",
            "http://128.0.0.1/",        "",
        };
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
                if (!creds_container_url_allowed(allowed[i]))
                        fail_msg("%s refused", allowed[i]);
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
                if (creds_container_url_allowed(refused[i]))
                        fail_msg("%s allowed", refused[i]);

        assert_int_equal(creds_container_req(&rq, err, sizeof(err)), -ENOENT);
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds", 1);
        assert_int_equal(creds_container_req(&rq, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI http://10.0.0.1/creds"));
        /* the relative URI wins, on the ECS agent's address */
        setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
        assert_int_equal(creds_container_req(&rq, err, sizeof(err)), 0);
        assert_string_equal(rq.url, "http://169.254.170.2/v2/credentials/abc");
        assert_null(rq.header);
        creds_imds_req_clear(&rq);
        unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:7/creds", 1);
        setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "TOKENVAR", 1);
        assert_int_equal(creds_container_req(&rq, err, sizeof(err)), 0);
        assert_string_equal(rq.header, "Authorization: TOKENVAR");
        creds_imds_req_clear(&rq);
        /* the file wins over the variable */
        write_file("auth", "TOKENFILE\n");
        setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tmp_path("auth"), 1);
        assert_int_equal(creds_container_req(&rq, err, sizeof(err)), 0);
        assert_string_equal(rq.header, "Authorization: TOKENFILE");
        creds_imds_req_clear(&rq);
        write_file("auth", "TOKEN\r\nX-Evil: 1");
        assert_int_equal(creds_container_req(&rq, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "line break"));
        assert_no_secret(err + strlen(tmp_path("auth")));
        unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tmp_path("missing"), 1);
        assert_int_equal(creds_container_req(&rq, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
}

static void test_expiring(void **state)
{
        struct sigv4_creds c = {.expiration = 0};
        assert_false(creds_expiring(&c, 1000, CREDS_REFRESH_MARGIN_S));
        c.expiration = 1000 + CREDS_REFRESH_MARGIN_S + 1;
        assert_false(creds_expiring(&c, 1000, CREDS_REFRESH_MARGIN_S));
        c.expiration = 1000 + CREDS_REFRESH_MARGIN_S - 1;
        assert_true(creds_expiring(&c, 1000, CREDS_REFRESH_MARGIN_S));
        c.expiration = 900;
        assert_true(creds_expiring(&c, 1000, CREDS_REFRESH_MARGIN_S));
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
            cmocka_unit_test_setup_teardown(test_process_split, setup, teardown),
            cmocka_unit_test_setup_teardown(test_process_parse, setup, teardown),
            cmocka_unit_test_setup_teardown(test_process_chain, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sts_requests, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sts_replies, setup, teardown),
            cmocka_unit_test_setup_teardown(test_roles_chain, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sts_endpoint, setup, teardown),
            cmocka_unit_test_setup_teardown(test_container, setup, teardown),
            cmocka_unit_test_setup_teardown(test_expiring, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
