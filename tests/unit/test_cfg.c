/* test_cfg.c - the configuration table, INI files, overrides; and that every
 * key is documented in etc/etld.conf and the README. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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
        expect_file_error("[nowhere]\nx = 1\n", ":2: unknown section [nowhere]");
        expect_file_error("[daemon]\nthis line has no equals sign\n", ":2: syntax error");
        expect_file_error("max_jobs = 1\n", ":1: key 'max_jobs' outside any [section]");
        expect_file_error("[cluster]\npublicly_accessible = maybe\n", "not a boolean");
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

/* Every key of the table is in etc/etld.conf and in the README. */
static void test_every_key_documented(void **state)
{
        const char *root = getenv("ETLD_SOURCE_ROOT");
        if (!root)
                skip();
        char path[1024];
        char *conf = NULL, *readme = NULL;
        snprintf(path, sizeof(path), "%s/etc/etld.conf", root);
        assert_int_equal(util_read_file(path, &conf, NULL), 0);
        snprintf(path, sizeof(path), "%s/README.md", root);
        assert_int_equal(util_read_file(path, &readme, NULL), 0);
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults_and_file),
                cmocka_unit_test(test_file_errors_name_file_and_line),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_overrides_and_json),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_every_key_documented),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
