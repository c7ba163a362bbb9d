/* test_copy.c - the COPY statement parser (daemon/load/copy.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/copy.h"

static struct copy_stmt *parse_ok(const char *sql)
{
        struct copy_stmt *s = NULL;
        char err[256] = "";
        int r = copy_parse(sql, &s, err, sizeof(err));
        if (r < 0)
                fail_msg("copy_parse(%s): %d %s", sql, r, err);
        assert_non_null(s);
        return s;
}

static void parse_err(const char *sql, const char *want)
{
        struct copy_stmt *s = NULL;
        char err[256] = "";
        int r = copy_parse(sql, &s, err, sizeof(err));
        assert_int_equal(r, -EINVAL);
        assert_null(s);
        if (!strstr(err, want))
                fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_sparkify_events(void **state)
{
        struct copy_stmt *s = parse_ok(
                "COPY staging_events FROM 's3://udacity-dend/log_data'\n"
                "    IAM_ROLE 'arn:aws:iam::123:role/x'\n"
                "    FORMAT AS JSON 's3://udacity-dend/log_json_path.json'\n"
                "    REGION 'us-west-2' TIMEFORMAT AS 'epochmillisecs';\n");
        assert_null(s->schema);
        assert_string_equal(s->table, "staging_events");
        assert_int_equal(s->n_columns, 0);
        assert_string_equal(s->from, "s3://udacity-dend/log_data");
        assert_int_equal(s->format, COPY_FORMAT_JSON_PATHS);
        assert_string_equal(s->jsonpaths, "s3://udacity-dend/log_json_path.json");
        assert_string_equal(s->region, "us-west-2");
        assert_int_equal(s->timefmt, COPY_TIME_EPOCHMILLISECS);
        assert_true(s->has_credentials);
        assert_int_equal(s->maxerror, 0);
        assert_false(s->gzip);
        copy_stmt_free(s);
}

static void test_sparkify_songs_lowercase_comments(void **state)
{
        struct copy_stmt *s = parse_ok("-- load the songs\n"
                                       "copy Staging_Songs -- trailing comment\n"
                                       "from 'file:///data/song_data' /* block\n comment */\n"
                                       "credentials 'aws_iam_role=arn:x' json 'auto'\n"
                                       "compupdate off statupdate off");
        assert_string_equal(s->table, "staging_songs");
        assert_int_equal(s->format, COPY_FORMAT_JSON_AUTO);
        assert_null(s->jsonpaths);
        assert_int_equal(s->compupdate, COPY_OFF);
        assert_int_equal(s->statupdate, COPY_OFF);
        assert_int_equal(s->timefmt, COPY_TIME_DEFAULT);
        copy_stmt_free(s);
}

static void test_columns_schema_quoted(void **state)
{
        struct copy_stmt *s = parse_ok(
                "COPY public.\"MyTable\" (a, \"B\", c_d) FROM 'file:///x/y' JSON AS 'auto ignorecase'");
        assert_string_equal(s->schema, "public");
        assert_string_equal(s->table, "MyTable");
        assert_int_equal(s->n_columns, 3);
        assert_string_equal(s->columns[0], "a");
        assert_string_equal(s->columns[1], "B");
        assert_string_equal(s->columns[2], "c_d");
        assert_int_equal(s->format, COPY_FORMAT_JSON_IGNORECASE);
        copy_stmt_free(s);
}

static void test_every_option(void **state)
{
        struct copy_stmt *s = parse_ok(
                "COPY t FROM 'file:///d/p' ACCESS_KEY_ID 'AKIA' SECRET_ACCESS_KEY 'sekrit' "
                "SESSION_TOKEN 'tok' REGION AS 'eu-west-1' FORMAT JSON 'file:///d/paths.json' "
                "TIMEFORMAT 'epochsecs' DATEFORMAT AS 'auto' BLANKSASNULL EMPTYASNULL "
                "TRUNCATECOLUMNS ACCEPTINVCHARS AS '^' MAXERROR AS 10 GZIP MANIFEST "
                "COMPUPDATE ON STATUPDATE TRUE ROUNDEC ;");
        assert_true(s->has_credentials);
        assert_string_equal(s->region, "eu-west-1");
        assert_int_equal(s->format, COPY_FORMAT_JSON_PATHS);
        assert_string_equal(s->jsonpaths, "file:///d/paths.json");
        assert_int_equal(s->timefmt, COPY_TIME_EPOCHSECS);
        assert_string_equal(s->dateformat, "auto");
        assert_true(s->blanksasnull);
        assert_true(s->emptyasnull);
        assert_true(s->truncatecolumns);
        assert_true(s->acceptinvchars);
        assert_int_equal(s->acceptinvchars_char, '^');
        assert_int_equal(s->maxerror, 10);
        assert_true(s->gzip);
        assert_true(s->manifest);
        assert_int_equal(s->compupdate, COPY_ON);
        assert_int_equal(s->statupdate, COPY_ON);
        assert_true(s->roundec);
        copy_stmt_free(s);
}

static void test_option_variants(void **state)
{
        struct copy_stmt *s = parse_ok("COPY t FROM 'file:///d/p' CREDENTIALS AS 'x' "
                                       "FORMAT JSON ACCEPTINVCHARS MAXERROR 999999 "
                                       "TIMEFORMAT 'YYYY-MM-DD HH:MI:SS' COMPUPDATE");
        assert_int_equal(s->format, COPY_FORMAT_JSON_AUTO);
        assert_true(s->acceptinvchars);
        assert_int_equal(s->acceptinvchars_char, '?');
        assert_int_equal(s->maxerror, 100000);
        assert_int_equal(s->timefmt, COPY_TIME_STRING);
        assert_string_equal(s->timeformat, "YYYY-MM-DD HH:MI:SS");
        assert_int_equal(s->compupdate, COPY_ON);
        copy_stmt_free(s);

        s = parse_ok("copy t from 'file:///d/p' iam_role default json 'auto' timeformat 'auto'");
        assert_true(s->has_credentials);
        assert_int_equal(s->timefmt, COPY_TIME_AUTO);
        copy_stmt_free(s);

        s = parse_ok("COPY t FROM 'file:///it''s' JSON 'auto'");
        assert_string_equal(s->from, "file:///it's");
        copy_stmt_free(s);
}

static void test_errors_with_position(void **state)
{
        parse_err("COPY t FROM 'file:///d/p' JSON 'auto' FOO", "unexpected 'FOO' at position 39");
        parse_err("SELECT 1", "unexpected 'SELECT' at position 1");
        parse_err("COPY t 'file:///x'", "unexpected string literal at position 8");
        parse_err("COPY t FROM", "unexpected end of statement at position 12");
        parse_err("COPY t FROM 'file:///x' MAXERROR many", "unexpected 'many' at position 34");
        parse_err("COPY t FROM 'file:///x' JSON 'nonsense'", "neither 'auto'");
        parse_err("COPY t FROM 'file:///x' GZIP GZIP", "option 'GZIP' at position 30 given twice");
        parse_err("COPY t FROM 'file:///x'; COPY", "unexpected 'COPY' at position 26");
        parse_err("COPY t (a, ) FROM 'file:///x'", "unexpected ')' at position 12");
        parse_err("COPY t FROM 'file:///x' ACCEPTINVCHARS AS 'ab'", "one ASCII character");
        parse_err("COPY t FROM 'file:///x /* x", "unterminated string literal starting at position 13");
        parse_err("COPY t FROM 'file:///x' /* x", "unterminated comment at position 25");
        parse_err("COPY t FROM 'file:///x' FORMAT AS CSV", "unexpected 'CSV' at position 35");
        parse_err("COPY t FROM 'file:///x' COMPUPDATE ON ON", "unexpected 'ON' at position 39");
        /* A bad token right after a literal or an identifier: nothing leaks
         * (ASan and valgrind runs; found by tests/fuzz/fuzz_copy.c). */
        parse_err("COPY t FROM 'file:///x' ACCEPTINVCHARS AS '^'?", "unexpected '?' at position 46");
        parse_err("COPY t (a, b? FROM 'x'", "unexpected '?' at position 13");
        /* A table or column named "" (found by tests/fuzz/fuzz_copy.c). */
        parse_err("COPY \"\" FROM 'x' JSON 'auto'", "empty quoted identifier at position 6");
        parse_err("COPY t (a, \"\") FROM 'x'", "empty quoted identifier at position 12");
}

static void test_credentials_never_echoed(void **state)
{
        const char *bad[] = {
                "COPY t FROM 'file:///x' CREDENTIALS 'aws_secret_access_key=TOPSECRET' 'TOPSECRET2'",
                "COPY t FROM 'file:///x' SECRET_ACCESS_KEY 'TOPSECRET' SECRET_ACCESS_KEY 'TOPSECRET'",
                "COPY t FROM 'file:///x' SECRET_ACCESS_KEY TOPSECRET",
                "COPY t FROM 'file:///x' SESSION_TOKEN 'TOPSECRET",
                "COPY t FROM 'file:///x' 'TOPSECRET'",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct copy_stmt *s = NULL;
                char err[256] = "";
                assert_int_equal(copy_parse(bad[i], &s, err, sizeof(err)), -EINVAL);
                assert_true(err[0] != '\0');
                if (strstr(err, "TOPSECRET"))
                        fail_msg("secret echoed: %s", err);
        }
}

/* The text of sql/DIALECT/copy.sql with each {section.key} as 's3://b/v' and its
 * "--" comments dropped (they may hold ';'), or NULL. */
static char *copy_sql(const char *dialect)
{
        const char *root = getenv("ETLD_SOURCE_ROOT");
        char path[1024];
        snprintf(path, sizeof(path), "%s/sql/%s/copy.sql", root ? root : ".", dialect);
        FILE *fp = fopen(path, "r");
        if (!fp)
                return NULL;
        char raw[16384];
        size_t n = fread(raw, 1, sizeof(raw) - 1, fp);
        fclose(fp);
        raw[n] = '\0';
        char *out = malloc(10 * n + 1);
        size_t o = 0;
        bool quoted = false;
        for (size_t i = 0; out && i < n; i++) {
                if (raw[i] == '\'')
                        quoted = !quoted;
                if (!quoted && raw[i] == '-' && raw[i + 1] == '-') {
                        while (i < n && raw[i] != '\n')
                                i++;
                        out[o++] = '\n';
                        continue;
                }
                if (raw[i] == '{') {
                        const char *close = strchr(raw + i, '}');
                        if (close) {
                                /* a value each option takes, a JSONPaths URI included */
                                memcpy(out + o, "'s3://b/v'", 10);
                                o += 10;
                                i = (size_t)(close - raw);
                                continue;
                        }
                }
                out[o++] = raw[i];
        }
        if (out)
                out[o] = '\0';
        return out;
}

/* Issue 12, point 5: the COPY statements of sql/redshift/copy.sql -- the
 * text Redshift receives as it is -- are read by the emulator's parser, so
 * an option the parser (and so the emulator) does not know fails the build.
 * The other dialects' copy.sql must be the same statements. */
static void test_redshift_copy_sql_parses(void **state)
{
        (void)state;
        static const char *const dialects[] = { "redshift", "postgres", "sqlite" };
        char *first[2] = { NULL, NULL };
        for (size_t d = 0; d < 3; d++) {
                char *sql = copy_sql(dialects[d]);
                if (!sql)
                        fail_msg("cannot read sql/%s/copy.sql (ETLD_SOURCE_ROOT unset?)",
                                 dialects[d]);
                size_t k = 0;
                char *save = sql;
                for (char *semi = strchr(save, ';'); semi; semi = strchr(save, ';')) {
                        *semi = '\0';
                        struct copy_stmt *st = NULL;
                        char err[256];
                        if (copy_parse(save, &st, err, sizeof(err)) < 0)
                                fail_msg("sql/%s/copy.sql statement %zu: %s", dialects[d],
                                         k + 1, err);
                        assert_true(k < 2);
                        assert_true(st->has_credentials);
                        assert_non_null(st->region);
                        assert_int_equal(st->compupdate, COPY_OFF);
                        assert_int_equal(st->statupdate, COPY_OFF);
                        if (d == 0) {
                                first[k] = strdup(st->table);
                        } else {
                                assert_string_equal(st->table, first[k]);
                        }
                        copy_stmt_free(st);
                        k++;
                        save = semi + 1;
                }
                assert_int_equal(k, 2);
                free(sql);
        }
        assert_string_equal(first[0], "staging_events");
        assert_string_equal(first[1], "staging_songs");
        free(first[0]);
        free(first[1]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sparkify_events),
                cmocka_unit_test(test_sparkify_songs_lowercase_comments),
                cmocka_unit_test(test_columns_schema_quoted),
                cmocka_unit_test(test_every_option),
                cmocka_unit_test(test_option_variants),
                cmocka_unit_test(test_errors_with_position),
                cmocka_unit_test(test_credentials_never_echoed),
                cmocka_unit_test(test_redshift_copy_sql_parses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
