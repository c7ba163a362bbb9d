/* test_cfg.c - the configuration table, INI files, overrides; and that every
 * key is documented in etc/etld.conf and the README. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cfg.h"
#include "util.h"

static char *write_temp(const char *text)
{
        char *path = strdup("/tmp/etld-test-cfg-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return path;
}

static void test_defaults_and_file(void **state)
{
        struct cfg *c = cfg_new();
        char err[512];
        assert_string_equal(cfg_get(c, "daemon", "max_jobs"), "2");
        char *path = write_temp("; comment\n[daemon]\nmax_jobs = 5\n\n[s3]\nsong_data = "
                                "file:///data/song_data\n");
        assert_int_equal(cfg_load_file(c, path, err, sizeof(err)), 0);
        assert_int_equal(cfg_get_int(c, "daemon", "max_jobs"), 5);
        assert_string_equal(cfg_get(c, "s3", "song_data"), "file:///data/song_data");
        assert_null(cfg_get(c, "daemon", "nosuch"));
        unlink(path);
        free(path);
        cfg_free(c);
}

static void expect_file_error(const char *text, const char *needle)
{
        struct cfg *c = cfg_new();
        char err[512] = "";
        char *path = write_temp(text);
        assert_true(cfg_load_file(c, path, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, path)); /* names the file */
        if (!strstr(err, needle))
                fail_msg("error '%s' lacks '%s'", err, needle);
        unlink(path);
        free(path);
        cfg_free(c);
}

static void test_file_errors_name_file_and_line(void **state)
{
        expect_file_error("[daemon]\nmax_jobs = 2\nnosuch = 1\n", ":3: unknown key 'daemon.nosuch'");
        expect_file_error("[daemon]\nmax_jobs = lots\n", ":2: daemon.max_jobs: 'lots'");
        expect_file_error("[nowhere]\nx = 1\n", ":1: unknown section [nowhere]");
        expect_file_error("[daemon]\nthis line has no equals sign\n", ":2: syntax error");
        expect_file_error("max_jobs = 1\n", ":1: key 'max_jobs' outside any [section]");
        expect_file_error("[cluster]\npublicly_accessible = maybe\n", "not a boolean");
        /* Not UTF-8: refused, not dropped from the JSON that etlctl submit
         * --config sends (found by tests/fuzz/fuzz_cfg.c). */
        expect_file_error("[s3]\nsong_data = file:///data/caf\xE9\n",
                          ":2: s3.song_data: the value is not valid UTF-8 (byte 17)");
        /* A NUL byte would cut the line short, silently (tests/fuzz/fuzz_cfg.c). */
        static const char nul[] = "[s3]\nsong_data = file:///data/a\0/b\n";
        char *path = strdup("/tmp/etld-test-cfg-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, nul, sizeof(nul) - 1), (ssize_t)sizeof(nul) - 1);
        close(fd);
        struct cfg *c = cfg_new();
        char err[512] = "";
        assert_int_equal(cfg_load_file(c, path, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, ":2: a NUL byte"));
        cfg_free(c);
        unlink(path);
        free(path);
        /* a duration is checked when the file is read, not when a job uses it */
        expect_file_error("[provision]\nttl = 90\n", ":2: provision.ttl: '90' is not a duration");
        expect_file_error("[provision]\nttl = 400d\n", ":2: provision.ttl: '400d' is longer");
}

static void test_durations(void **state)
{
        static const struct {
                const char *text;
                long long ms; /* < 0: refused */
        } cases[] = {
                { "90s", 90000 },       { "30m", 1800000 },       { "2h", 7200000 },
                { "1d", 86400000 },     { "1h30m", 5400000 },     { "1d1s", 86401000 },
                { "366d", 31622400000 }, { "367d", -1 },          { "90", -1 },
                { "h", -1 },            { "-1h", -1 },            { "0s", -1 },
                { "1h 30m", -1 },       { "2x", -1 },             { "", -1 },
                { "99999999999999999999s", -1 },
        };
        char err[512];
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cfg *c = cfg_new();
                int r = cfg_set(c, "provision.ttl", cases[i].text, err, sizeof(err));
                if (cases[i].ms < 0 && cases[i].text[0]) {
                        if (r == 0)
                                fail_msg("'%s' accepted", cases[i].text);
                        assert_non_null(strstr(err, "provision.ttl"));
                } else if (cases[i].ms >= 0) {
                        if (r < 0)
                                fail_msg("'%s' refused: %s", cases[i].text, err);
                        assert_int_equal(cfg_get_duration_ms(c, "provision", "ttl"),
                                         cases[i].ms);
                } else {
                        /* empty: no duration */
                        assert_int_equal(r, 0);
                        assert_int_equal(cfg_get_duration_ms(c, "provision", "ttl"), 0);
                }
                cfg_free(c);
        }
        /* JSON: a duration is a string */
        struct cfg *c = cfg_new();
        json_t *in = json_pack("{s:i}", "provision.ttl", 7200);
        assert_true(cfg_apply_json(c, in, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "a duration string"));
        json_decref(in);
        cfg_free(c);
}

static void test_missing_file(void **state)
{
        struct cfg *c = cfg_new();
        char err[512];
        assert_true(cfg_load_file(c, "/nonexistent/etld.conf", err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "/nonexistent/etld.conf"));
        cfg_free(c);
}

static void test_overrides_and_json(void **state)
{
        struct cfg *c = cfg_new();
        char err[512];
        assert_int_equal(cfg_set_assignment(c, "load.batch_rows=100", err, sizeof(err)), 0);
        assert_int_equal(cfg_get_int(c, "load", "batch_rows"), 100);
        assert_true(cfg_set_assignment(c, "load.nosuch=1", err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "load.nosuch"));
        assert_true(cfg_set_assignment(c, "nodot=1", err, sizeof(err)) < 0);
        assert_true(cfg_set_assignment(c, "load.batch_rows", err, sizeof(err)) < 0);
        assert_true(cfg_set(c, "load.batch_rows", "-3", err, sizeof(err)) < 0);
        assert_int_equal(cfg_set(c, "warehouse.password", "hunter2", err, sizeof(err)), 0);

        /* secrets stay out of the JSON unless asked for */
        json_t *o = cfg_to_json(c, false);
        assert_null(json_object_get(o, "warehouse.password"));
        assert_string_equal(json_string_value(json_object_get(o, "load.batch_rows")), "100");
        json_decref(o);
        o = cfg_to_json(c, true);
        assert_string_equal(json_string_value(json_object_get(o, "warehouse.password")),
                            "hunter2");
        json_decref(o);

        json_t *in = json_pack("{s:i, s:b, s:s}", "load.concurrency", 4,
                               "cluster.publicly_accessible", 0, "s3.log_data", "file:///x");
        assert_int_equal(cfg_apply_json(c, in, err, sizeof(err)), 0);
        assert_int_equal(cfg_get_int(c, "load", "concurrency"), 4);
        assert_false(cfg_get_bool(c, "cluster", "publicly_accessible"));
        json_decref(in);
        in = json_pack("{s:[]}", "load.concurrency");
        assert_true(cfg_apply_json(c, in, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "load.concurrency"));
        json_decref(in);

        struct cfg *d = cfg_dup(c);
        assert_string_equal(cfg_get(d, "s3", "log_data"), "file:///x");
        cfg_free(d);
        cfg_free(c);
}

/* diff's names joined by ",", for short assertions. */
static char *diff_names(json_t *a, json_t *b)
{
        json_t *d = cfg_json_diff(a, b);
        assert_non_null(d);
        static char out[512];
        out[0] = '\0';
        size_t i;
        json_t *v;
        json_array_foreach(d, i, v)
        {
                assert_true(json_is_string(v));
                snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "," : "",
                         json_string_value(v));
        }
        json_decref(d);
        return out;
}

/* The settings of two jobs compared: by the key's type, sorted, secrets out. */
static void test_json_diff(void **state)
{
        json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "s3.log_data", "file:///d/log_data",
                              "load.batch_rows", "0100", "cluster.publicly_accessible", "yes",
                              "provision.ttl", "90m", "stage.bucket", "b");
        json_t *b = json_pack("{s:s, s:i, s:b, s:s, s:s}", "stage.bucket", "b", "load.batch_rows",
                              100, "cluster.publicly_accessible", 1, "provision.ttl", "1h30m",
                              "s3.log_data", "file:///d/log_data");
        assert_string_equal(diff_names(a, b), "");
        assert_string_equal(diff_names(b, a), "");

        /* a string compares as text; a key set on one side only differs */
        json_object_set_new(b, "s3.log_data", json_string("file:///d/log_data/"));
        json_object_set_new(b, "load.concurrency", json_string("8"));
        json_object_set_new(a, "aws.region", json_string("eu-west-1"));
        json_object_set_new(b, "provision.ttl", json_string("2h"));
        assert_string_equal(diff_names(a, b),
                            "aws.region,load.concurrency,provision.ttl,s3.log_data");
        assert_string_equal(diff_names(b, a),
                            "aws.region,load.concurrency,provision.ttl,s3.log_data");

        /* booleans and integers by value, not by spelling */
        json_t *x = json_pack("{s:s, s:s, s:s}", "teardown.force", "off", "cluster.nodes", "2",
                              "etl.mode", "full");
        json_t *y = json_pack("{s:s, s:s, s:s}", "teardown.force", "true", "cluster.nodes", "02",
                              "etl.mode", "incremental");
        assert_string_equal(diff_names(x, y), "etl.mode,teardown.force");
        json_object_set_new(y, "etl.mode", json_string("full"));
        assert_string_equal(diff_names(x, y), "teardown.force");
        /* a value that is not of the key's type is compared as it is */
        json_object_set_new(x, "cluster.nodes", json_string("two"));
        assert_string_equal(diff_names(x, y), "cluster.nodes,teardown.force");
        json_decref(x);
        json_decref(y);

        /* secrets are never kept with a job, so never compared; unknown keys
         * (an older etld's) compare as text */
        x = json_pack("{s:s, s:s}", "warehouse.password", "a", "old.key", "1");
        y = json_pack("{s:s, s:s}", "warehouse.password", "b", "old.key", "01");
        assert_string_equal(diff_names(x, y), "old.key");
        json_object_del(y, "warehouse.password");
        json_object_set_new(y, "old.key", json_string("1"));
        assert_string_equal(diff_names(x, y), "");

        /* empty and absent objects */
        json_t *empty = json_object();
        assert_string_equal(diff_names(empty, empty), "");
        assert_string_equal(diff_names(NULL, empty), "");
        assert_string_equal(diff_names(empty, x), "old.key");
        json_decref(empty);
        json_decref(x);
        json_decref(y);
        json_decref(a);
        json_decref(b);
}

/* The text of a file of the source tree (a new string); skips the test
 * when the tree is unknown (run outside meson test). */
static char *read_source(const char *rel)
{
        const char *root = getenv("ETLD_SOURCE_ROOT");
        if (!root)
                skip();
        char path[1024];
        char *text = NULL;
        snprintf(path, sizeof(path), "%s/%s", root, rel);
        assert_int_equal(util_read_file(path, &text, NULL), 0);
        return text;
}

/* Every key of the table is in etc/etld.conf and in the README. */
static void test_every_key_documented(void **state)
{
        char *conf = read_source("etc/etld.conf");
        char *readme = read_source("README.md");
        for (const struct cfg_key *k = cfg_keys; k->section; k++) {
                char section[80], line[160], dotted[160];
                snprintf(section, sizeof(section), "[%s]", k->section);
                snprintf(line, sizeof(line), "%s =", k->key);
                snprintf(dotted, sizeof(dotted), "%s.%s", k->section, k->key);
                if (!strstr(conf, section) || !strstr(conf, line))
                        fail_msg("etc/etld.conf does not document %s", dotted);
                if (!strstr(readme, dotted))
                        fail_msg("README.md does not document %s", dotted);
        }
        free(conf);
        free(readme);
}

/* Every key says who may set it per job; the ones that name a local file or
 * a credential source are not for everyone. */
static void test_every_key_has_a_scope(void **state)
{
        for (const struct cfg_key *k = cfg_keys; k->section; k++) {
                if (k->scope == CFG_SCOPE_UNSET)
                        fail_msg("%s.%s has no scope", k->section, k->key);
                if (k->scope == CFG_ADMIN && !k->why)
                        fail_msg("%s.%s is for admins but does not say why", k->section, k->key);
                if (strcmp(k->section, "daemon") == 0)
                        assert_true(k->scope == CFG_ADMIN || k->scope == CFG_DAEMON);
                if (strncmp(k->key, "endpoint_url", 12) == 0)
                        assert_int_equal(k->scope, CFG_ADMIN);
        }
        assert_int_equal(cfg_find_key("aws", "profile")->scope, CFG_ADMIN);
        assert_int_equal(cfg_find_key("cluster", "db_password_file")->scope, CFG_ADMIN);
        assert_int_equal(cfg_find_key("daemon", "sql_dir")->scope, CFG_ADMIN);
        assert_int_equal(cfg_find_key("daemon", "max_jobs")->scope, CFG_DAEMON);
        assert_int_equal(cfg_find_key("s3", "song_data")->scope, CFG_JOB_DATA);
        assert_int_equal(cfg_find_key("warehouse", "target")->scope, CFG_JOB_WAREHOUSE);
}

/* A region becomes part of a host name: nothing but a region name passes. */
static void test_regions(void **state)
{
        struct cfg *c = cfg_new();
        char err[512] = "";
        assert_int_equal(cfg_set(c, "aws.region", "eu-central-1", err, sizeof(err)), 0);
        assert_int_equal(cfg_set(c, "s3.region", "", err, sizeof(err)), 0);
        assert_int_equal(cfg_set(c, "aws.region", "evil.example#", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "aws.region: 'evil.example#' is not a region name"));
        assert_int_equal(cfg_set(c, "stage.source_region", "x/y", err, sizeof(err)), -EINVAL);
        assert_string_equal(cfg_get(c, "aws", "region"), "eu-central-1");
        cfg_free(c);
}

/* A line as long as a real libpq URI with its options (Debian's inih stopped
 * at 199 bytes): a 4 KiB value is read whole, and an error after it names
 * the right line. */
static void test_long_lines(void **state)
{
        size_t n = 4096;
        char *value = malloc(n + 1);
        assert_non_null(value);
        static const char head[] = "postgresql://etl@db.example:5432/dev?application_name=";
        memcpy(value, head, sizeof(head) - 1);
        for (size_t i = sizeof(head) - 1; i < n; i++)
                value[i] = (char)('a' + i % 26);
        value[n] = '\0';
        size_t tlen = n + 256;
        char *text = malloc(tlen);
        assert_non_null(text);
        snprintf(text, tlen, "; a comment\n[warehouse]\ntarget = %s\n\n[daemon]\nmax_jobs = 3\n",
                 value);
        struct cfg *c = cfg_new();
        char err[512] = "";
        char *path = write_temp(text);
        if (cfg_load_file(c, path, err, sizeof(err)) < 0)
                fail_msg("%s", err);
        assert_int_equal(strlen(cfg_get(c, "warehouse", "target")), n);
        assert_string_equal(cfg_get(c, "warehouse", "target"), value);
        assert_int_equal(cfg_get_int(c, "daemon", "max_jobs"), 3);
        unlink(path);
        free(path);
        cfg_free(c);
        /* the line after the long one is line 4, the bad one line 6 */
        snprintf(text, tlen, "[warehouse]\n\ntarget = %s\n[daemon]\nmax_jobs = 1\nmax_jobs = x\n",
                 value);
        expect_file_error(text, ":6: daemon.max_jobs: 'x'");
        snprintf(text, tlen, "[warehouse]\ntarget = %s\nnot a key\n", value);
        expect_file_error(text, ":3: syntax error");
        free(text);
        free(value);
        /* what inih accepted still reads the same: BOM, ':' as the separator,
         * comments after a value and after a section, CRLF, indentation */
        c = cfg_new();
        path = write_temp("\xEF\xBB\xBF[daemon] ; the daemon\r\n  max_jobs: 7 ; seven\r\n"
                          "\tlog_level = debug\n# done\n");
        if (cfg_load_file(c, path, err, sizeof(err)) < 0)
                fail_msg("%s", err);
        assert_int_equal(cfg_get_int(c, "daemon", "max_jobs"), 7);
        assert_string_equal(cfg_get(c, "daemon", "log_level"), "debug");
        unlink(path);
        free(path);
        cfg_free(c);
        expect_file_error("[daemon\nmax_jobs = 1\n", ":1: syntax error");
        expect_file_error("[daemon]\n= 1\n", ":2: syntax error");
}

/* A misspelled key's error names the key meant; a word far from every key
 * gets no guess. */
static void test_suggestions(void **state)
{
        struct cfg *c = cfg_new();
        char err[512] = "";
        assert_int_equal(cfg_set(c, "daemon.max_job", "3", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "unknown key 'daemon.max_job' (did you mean 'daemon.max_jobs'?)");
        assert_int_equal(cfg_set(c, "warehouse.traget", "", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "(did you mean 'warehouse.target'?)"));
        assert_int_equal(cfg_set(c, "laod.concurency", "3", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "(did you mean 'load.concurrency'?)"));
        assert_int_equal(cfg_set(c, "colour.scheme", "blue", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "unknown key 'colour.scheme'");
        assert_null(cfg_nearest_key("x.y"));
        assert_ptr_equal(cfg_nearest_key("cluster.node"), cfg_find_key("cluster", "nodes"));
        /* in a file, and in a submit's JSON */
        expect_file_error("[daemon]\nmax_job = 3\n", ":2: unknown key 'daemon.max_job' (did you "
                                                     "mean 'daemon.max_jobs'?)");
        json_t *j = json_pack("{s:i}", "load.batchrows", 10);
        assert_int_equal(cfg_apply_json(c, j, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "did you mean 'load.batch_rows'?"));
        json_decref(j);
        cfg_free(c);
}

/* warehouse.target takes the warehouse drivers' schemes only, and the
 * message quotes the scheme, never the rest of the URI (it may hold a
 * password). */
static void test_target_schemes(void **state)
{
        struct cfg *c = cfg_new();
        char err[512] = "";
        static const char *const good[] = {
            "",         "sqlite:///var/lib/etld/w.db",     "postgresql://u@h/db", "postgres:///db",
            "redshift", "redshift://awsuser@host:5439/dev"};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                if (cfg_set(c, "warehouse.target", good[i], err, sizeof(err)) < 0)
                        fail_msg("%s: %s", good[i], err);
        assert_int_equal(cfg_set(c, "warehouse.target", "mysql://u:s3cret@h/db", err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "warehouse.target: unknown scheme 'mysql'"));
        assert_non_null(strstr(
            err, "known: sqlite://, postgresql://, postgres://, redshift://, or just redshift"));
        assert_null(strstr(err, "s3cret"));
        assert_int_equal(cfg_set(c, "warehouse.target", "/var/lib/w.db", err, sizeof(err)),
                         -EINVAL);
        assert_int_equal(cfg_set(c, "warehouse.target", "redshiftx", err, sizeof(err)), -EINVAL);
        assert_string_equal(cfg_get(c, "warehouse", "target"), "redshift://awsuser@host:5439/dev");
        cfg_free(c);
}

/* Every key of the table is in the etld.conf(5) manual page (its scdoc
 * source), so the page and the table stay in step. */
static void test_every_key_in_man_page(void **state)
{
        char *man = read_source("doc/etld.conf.5.scd");
        for (const struct cfg_key *k = cfg_keys; k->section; k++) {
                char section[80], entry[160];
                snprintf(section, sizeof(section), "\n## [%s]\n", k->section);
                snprintf(entry, sizeof(entry), "\n*%s* = ", k->key);
                const char *sec = strstr(man, section);
                if (!sec)
                        fail_msg("etld.conf(5) has no section '## [%s]'", k->section);
                /* the key is documented under its own section heading */
                const char *next = strstr(sec + 1, "\n## ");
                const char *at = strstr(sec, entry);
                if (!at || (next && at > next))
                        fail_msg("etld.conf(5) does not document %s.%s under [%s] (as '*%s* = ')",
                                 k->section, k->key, k->section, k->key);
        }
        free(man);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults_and_file),
            cmocka_unit_test(test_file_errors_name_file_and_line),
            cmocka_unit_test(test_missing_file),
            cmocka_unit_test(test_overrides_and_json),
            cmocka_unit_test(test_durations),
            cmocka_unit_test(test_json_diff),
            cmocka_unit_test(test_every_key_documented),
            cmocka_unit_test(test_every_key_has_a_scope),
            cmocka_unit_test(test_regions),
            cmocka_unit_test(test_long_lines),
            cmocka_unit_test(test_suggestions),
            cmocka_unit_test(test_target_schemes),
            cmocka_unit_test(test_every_key_in_man_page),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
