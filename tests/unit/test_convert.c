/* test_convert.c - JSON value -> cell conversion (daemon/load/convert.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "load/convert.h"

struct ctx {
        struct convert_type t;
        struct convert_opts o;
        struct buf scratch;
        struct cell c;
        struct convert_reject rej;
};

static int conv(struct ctx *x, const char *type, const char *json)
{
        assert_int_equal(convert_parse_type(type, &x->t), 0);
        static struct jv_doc *doc;
        if (!doc)
                doc = jv_doc_new();
        struct jv_result res;
        const struct jv *v = json ? jv_parse(doc, json, strlen(json), &res) : NULL;
        if (json && !v)
                fail_msg("bad test JSON %s: %s", json, res.what);
        memset(&x->rej, 0, sizeof(x->rej));
        int r = convert_value(&x->t, &x->o, v, &x->scratch, &x->c, &x->rej);
        /* keep text valid after v dies */
        if (r == 0 && x->c.kind == CELL_TEXT && x->c.text != x->scratch.data) {
                struct buf tmp = { 0 };
                assert_int_equal(buf_append(&tmp, x->c.text, x->c.len), 0);
                buf_free(&x->scratch);
                x->scratch = tmp;
                x->c.text = x->scratch.data;
        }
        return r;
}

static void expect_text(struct ctx *x, const char *type, const char *json, const char *want)
{
        int r = conv(x, type, json);
        if (r != 0)
                fail_msg("%s <- %s rejected: %s", type, json, x->rej.reason);
        assert_int_equal(x->c.kind, CELL_TEXT);
        if (x->c.len != strlen(want) || memcmp(x->c.text, want, x->c.len) != 0)
                fail_msg("%s <- %s gave '%.*s', want '%s'", type, json, (int)x->c.len,
                         x->c.text, want);
}

static void expect_int(struct ctx *x, const char *type, const char *json, int64_t want)
{
        int r = conv(x, type, json);
        if (r != 0)
                fail_msg("%s <- %s rejected: %s", type, json, x->rej.reason);
        assert_int_equal(x->c.kind, CELL_INT);
        assert_int_equal(x->c.i, want);
}

static void expect_null(struct ctx *x, const char *type, const char *json)
{
        assert_int_equal(conv(x, type, json), 0);
        assert_int_equal(x->c.kind, CELL_NULL);
}

static void expect_reject(struct ctx *x, const char *type, const char *json, int code,
                          const char *reason)
{
        int r = conv(x, type, json);
        if (r != 1)
                fail_msg("%s <- %s not rejected", type, json);
        assert_int_equal(x->rej.code, code);
        if (!strstr(x->rej.reason, reason))
                fail_msg("%s <- %s: reason '%s' lacks '%s'", type, json, x->rej.reason, reason);
}

static int setup(void **state)
{
        struct ctx *x = calloc(1, sizeof(*x));
        *state = x;
        return x ? 0 : -1;
}

static int teardown(void **state)
{
        struct ctx *x = *state;
        buf_free(&x->scratch);
        free(x);
        return 0;
}

static void test_parse_types(void **state)
{
        struct convert_type t;
        assert_int_equal(convert_parse_type("VARCHAR(256)", &t), 0);
        assert_int_equal(t.kind, CONVERT_VARCHAR);
        assert_int_equal(t.max_bytes, 256);
        assert_int_equal(convert_parse_type("character varying ( 12 )", &t), 0);
        assert_int_equal(t.max_bytes, 12);
        assert_int_equal(convert_parse_type("varchar(max)", &t), 0);
        assert_int_equal(t.max_bytes, 65535);
        assert_int_equal(convert_parse_type("TEXT", &t), 0);
        assert_int_equal(t.max_bytes, 256);
        assert_int_equal(convert_parse_type("CHAR(2)", &t), 0);
        assert_int_equal(t.max_bytes, 2);
        assert_int_equal(convert_parse_type("char", &t), 0);
        assert_int_equal(t.max_bytes, 1);
        assert_int_equal(convert_parse_type("int", &t), 0);
        assert_int_equal(t.kind, CONVERT_INTEGER);
        assert_int_equal(convert_parse_type("Integer", &t), 0);
        assert_int_equal(t.kind, CONVERT_INTEGER);
        assert_int_equal(convert_parse_type("SMALLINT", &t), 0);
        assert_int_equal(t.kind, CONVERT_SMALLINT);
        assert_int_equal(convert_parse_type("bigint", &t), 0);
        assert_int_equal(t.kind, CONVERT_BIGINT);
        assert_int_equal(convert_parse_type("DECIMAL(10,2)", &t), 0);
        assert_int_equal(t.kind, CONVERT_DECIMAL);
        assert_int_equal(t.precision, 10);
        assert_int_equal(t.scale, 2);
        assert_int_equal(convert_parse_type("numeric", &t), 0);
        assert_int_equal(t.precision, 18);
        assert_int_equal(convert_parse_type("REAL", &t), 0);
        assert_int_equal(t.kind, CONVERT_REAL);
        assert_int_equal(convert_parse_type("FLOAT", &t), 0);
        assert_int_equal(t.kind, CONVERT_DOUBLE);
        assert_int_equal(convert_parse_type("float8", &t), 0);
        assert_int_equal(t.kind, CONVERT_DOUBLE);
        assert_int_equal(convert_parse_type("DOUBLE PRECISION", &t), 0);
        assert_int_equal(t.kind, CONVERT_DOUBLE);
        assert_int_equal(convert_parse_type("boolean", &t), 0);
        assert_int_equal(t.kind, CONVERT_BOOLEAN);
        assert_int_equal(convert_parse_type("DATE", &t), 0);
        assert_int_equal(t.kind, CONVERT_DATE);
        assert_int_equal(convert_parse_type("TIMESTAMP", &t), 0);
        assert_int_equal(t.kind, CONVERT_TIMESTAMP);
        assert_int_equal(convert_parse_type("timestamptz", &t), 0);
        assert_int_equal(t.kind, CONVERT_TIMESTAMPTZ);
        assert_int_equal(convert_parse_type("timestamp with time zone", &t), 0);
        assert_int_equal(t.kind, CONVERT_TIMESTAMPTZ);
        assert_int_equal(convert_parse_type("BLOB", &t), -EINVAL);
        assert_int_equal(convert_parse_type("", &t), -EINVAL);
        assert_int_equal(convert_parse_type("VARCHAR(0)", &t), -EINVAL);
        assert_int_equal(convert_parse_type("VARCHAR(10", &t), -EINVAL);
        assert_int_equal(convert_parse_type("DOUBLE", &t), -EINVAL);
        assert_int_equal(convert_parse_type("INTEGERX", &t), -EINVAL);
}

static void test_varchar(void **state)
{
        struct ctx *x = *state;
        expect_text(x, "VARCHAR(10)", "\"hello\"", "hello");
        expect_text(x, "VARCHAR(10)", "42", "42");
        /* a number keeps the text the JSON wrote, digit for digit */
        expect_text(x, "VARCHAR(30)", "1.540919166796e+12", "1.540919166796e+12");
        expect_text(x, "VARCHAR(30)", "1.10", "1.10");
        expect_text(x, "VARCHAR(10)", "0.1", "0.1");
        expect_text(x, "VARCHAR(10)", "true", "true");
        expect_text(x, "VARCHAR(20)", "{\"a\": [1, 2]}", "{\"a\":[1,2]}");
        expect_text(x, "VARCHAR(5)", "\"12345\"", "12345");
        expect_null(x, "VARCHAR(5)", "null");
        expect_null(x, "VARCHAR(5)", NULL);
        expect_text(x, "VARCHAR(5)", "\"\"", "");
        expect_text(x, "VARCHAR(5)", "\"  \"", "  ");
        expect_reject(x, "VARCHAR(5)", "\"123456\"", 1204, "String length exceeds DDL length");
        expect_reject(x, "CHAR(1)", "\"ab\"", 1204, "String length exceeds DDL length");
        /* length in bytes: é is two bytes */
        expect_reject(x, "VARCHAR(4)", "\"caf\u00e9\"", 1204, "exceeds");
        expect_text(x, "VARCHAR(5)", "\"caf\u00e9\"", "caf\xc3\xa9");
}

static void test_varchar_options(void **state)
{
        struct ctx *x = *state;
        x->o.truncatecolumns = true;
        expect_text(x, "VARCHAR(5)", "\"123456\"", "12345");
        /* never cut inside a UTF-8 sequence: "caf" + é (2 bytes) + "!" */
        expect_text(x, "VARCHAR(4)", "\"caf\u00e9!\"", "caf");
        expect_text(x, "VARCHAR(5)", "\"caf\u00e9!\"", "caf\xc3\xa9");
        /* a 4-byte character */
        expect_text(x, "VARCHAR(3)", "\"\U0001F600\"", "");
        x->o.truncatecolumns = false;

        x->o.emptyasnull = true;
        expect_null(x, "VARCHAR(5)", "\"\"");
        expect_text(x, "VARCHAR(5)", "\"  \"", "  ");
        x->o.emptyasnull = false;
        x->o.blanksasnull = true;
        expect_null(x, "VARCHAR(5)", "\"  \"");
        expect_null(x, "VARCHAR(5)", "\"\"");
        expect_text(x, "VARCHAR(5)", "\" a \"", " a ");
        x->o.blanksasnull = false;
}

static void test_integers(void **state)
{
        struct ctx *x = *state;
        expect_int(x, "INTEGER", "39", 39);
        expect_int(x, "INTEGER", "\"39\"", 39);
        expect_int(x, "INTEGER", "\" -7 \"", -7);
        expect_int(x, "INTEGER", "2147483647", 2147483647);
        expect_int(x, "INTEGER", "-2147483648", -2147483648LL);
        expect_reject(x, "INTEGER", "2147483648", 1222, "Overflow");
        expect_reject(x, "INTEGER", "-2147483649", 1222, "Overflow");
        expect_int(x, "SMALLINT", "32767", 32767);
        expect_int(x, "SMALLINT", "-32768", -32768);
        expect_reject(x, "SMALLINT", "32768", 1222, "Type: Short Integer");
        expect_reject(x, "SMALLINT", "\"-32769\"", 1222, "Overflow");
        expect_int(x, "BIGINT", "9223372036854775807", INT64_MAX);
        expect_int(x, "BIGINT", "\"-9223372036854775808\"", INT64_MIN);
        expect_reject(x, "BIGINT", "\"9223372036854775808\"", 1222, "Overflow");
        expect_int(x, "BIGINT", "1.540919166796e+12", 1540919166796LL);
        expect_reject(x, "INTEGER", "\"x\"", 1207, "Invalid digit, Value 'x', Pos 0, Type: Integer");
        expect_reject(x, "INTEGER", "\"12a\"", 1207, "Invalid digit, Value 'a', Pos 2, Type: Integer");
        expect_reject(x, "INTEGER", "1.5", 1207, "Invalid digit, Value '.', Pos 1");
        expect_reject(x, "INTEGER", "\"-\"", 1207, "Invalid digit");
        expect_reject(x, "INTEGER", "[1]", 1207, "Invalid digit");
        expect_int(x, "INTEGER", "true", 1);
        /* "" and blanks are NULL in numeric columns (see convert.c) */
        expect_null(x, "INTEGER", "\"\"");
        expect_null(x, "INTEGER", "\"   \"");
        expect_null(x, "INTEGER", "null");
}

static void test_floats_decimals_booleans(void **state)
{
        struct ctx *x = *state;
        assert_int_equal(conv(x, "DOUBLE PRECISION", "217.36444"), 0);
        assert_int_equal(x->c.kind, CELL_REAL);
        assert_true(x->c.r == 217.36444);
        assert_int_equal(conv(x, "FLOAT", "\"1.5e3\""), 0);
        assert_true(x->c.r == 1500.0);
        assert_int_equal(conv(x, "FLOAT8", "3"), 0);
        assert_true(x->c.r == 3.0);
        assert_int_equal(conv(x, "REAL", "0.1"), 0);
        assert_true(x->c.r == (double)0.1f);
        expect_reject(x, "REAL", "1e39", 1204, "Overflow");
        expect_reject(x, "FLOAT", "\"abc\"", 1208, "Invalid float");
        expect_null(x, "FLOAT", "\"\"");

        expect_text(x, "DECIMAL(10,2)", "3.14159", "3.14");
        expect_text(x, "DECIMAL(10,2)", "\"-3.149\"", "-3.14");
        expect_text(x, "DECIMAL(10,2)", "42", "42.00");
        expect_text(x, "DECIMAL(5,0)", "\"00012\"", "12");
        expect_reject(x, "DECIMAL(4,2)", "123.4", 1204, "overflow");
        expect_reject(x, "DECIMAL(4,2)", "\"1x\"", 1207, "Invalid digit");
        x->o.roundec = true;
        expect_text(x, "DECIMAL(10,2)", "\"3.145\"", "3.15");
        expect_text(x, "DECIMAL(10,2)", "\"-9.999\"", "-10.00");
        expect_reject(x, "DECIMAL(3,2)", "\"9.999\"", 1204, "overflow");
        x->o.roundec = false;

        expect_int(x, "BOOLEAN", "true", 1);
        expect_int(x, "BOOLEAN", "false", 0);
        expect_int(x, "BOOLEAN", "\"t\"", 1);
        expect_int(x, "BOOLEAN", "\"No\"", 0);
        expect_int(x, "BOOLEAN", "1", 1);
        expect_reject(x, "BOOLEAN", "\"maybe\"", 1210, "Invalid boolean");
        expect_reject(x, "BOOLEAN", "2", 1210, "Invalid boolean");
}

static void test_civil(void **state)
{
        assert_int_equal(convert_days_from_civil(1970, 1, 1), 0);
        assert_int_equal(convert_days_from_civil(2000, 3, 1), 11017);
        assert_int_equal(convert_days_from_civil(1969, 12, 31), -1);
        for (int64_t z = -800000; z < 800000; z += 997) {
                int64_t y;
                unsigned m, d;
                convert_civil_from_days(z, &y, &m, &d);
                assert_int_equal(convert_days_from_civil(y, m, d), z);
        }
        char buf[40];
        assert_int_equal(convert_format_timestamp(0, 0, buf), 19);
        assert_string_equal(buf, "1970-01-01 00:00:00");
        convert_format_timestamp(-1, 500000, buf);
        assert_string_equal(buf, "1969-12-31 23:59:59.5");
        convert_format_timestamp(951782400, 0, buf); /* leap day */
        assert_string_equal(buf, "2000-02-29 00:00:00");
        convert_format_timestamp(253402300799LL, 999999, buf);
        assert_string_equal(buf, "9999-12-31 23:59:59.999999");
}

static void test_timestamps(void **state)
{
        struct ctx *x = *state;
        x->o.timefmt = CONVERT_TIME_EPOCHMILLISECS;
        expect_text(x, "TIMESTAMP", "1541105830796", "2018-11-01 20:57:10.796");
        expect_text(x, "TIMESTAMP", "1541105830000", "2018-11-01 20:57:10");
        expect_text(x, "TIMESTAMP", "1541105830790", "2018-11-01 20:57:10.79");
        expect_text(x, "TIMESTAMP", "\"1541105830796\"", "2018-11-01 20:57:10.796");
        expect_text(x, "TIMESTAMP", "-1", "1969-12-31 23:59:59.999");
        expect_text(x, "TIMESTAMPTZ", "1541105830796", "2018-11-01 20:57:10.796+00");
        expect_reject(x, "TIMESTAMP", "\"soon\"", 1206, "Invalid timestamp");
        expect_reject(x, "TIMESTAMP", "1.5", 1206, "Invalid timestamp");
        expect_null(x, "TIMESTAMP", "null");
        x->o.timefmt = CONVERT_TIME_EPOCHSECS;
        expect_text(x, "TIMESTAMP", "1541105830", "2018-11-01 20:57:10");
        expect_text(x, "TIMESTAMP", "0", "1970-01-01 00:00:00");
        x->o.timefmt = CONVERT_TIME_DEFAULT;
        expect_text(x, "TIMESTAMP", "\"2018-11-01 20:57:10.796000\"", "2018-11-01 20:57:10.796");
        expect_text(x, "TIMESTAMP", "\"2018-11-01\"", "2018-11-01 00:00:00");
        expect_text(x, "TIMESTAMP", "\"2016-02-29 23:59:59\"", "2016-02-29 23:59:59");
        expect_reject(x, "TIMESTAMP", "\"2018-02-29 00:00:00\"", 1206, "Invalid timestamp");
        expect_reject(x, "TIMESTAMP", "\"2018-11-01T21:57:10Z\"", 1206, "Invalid timestamp");
        expect_reject(x, "TIMESTAMP", "1541105830796", 1206, "Invalid timestamp");
        expect_reject(x, "TIMESTAMP", "\"2018-11-01 24:00:00\"", 1206, "Invalid timestamp");
        x->o.timefmt = CONVERT_TIME_AUTO;
        expect_text(x, "TIMESTAMP", "\"2018-11-01T21:57:10.5Z\"", "2018-11-01 21:57:10.5");
        expect_text(x, "DATE", "\"2018-11-01\"", "2018-11-01");
        expect_text(x, "DATE", "\"2018-11-01 20:57:10\"", "2018-11-01");
        expect_reject(x, "DATE", "\"11/01/2018\"", 1205, "Invalid Date");
        expect_null(x, "DATE", "\"\"");
        x->o.timefmt = CONVERT_TIME_DEFAULT;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_types),
                cmocka_unit_test_setup_teardown(test_varchar, setup, teardown),
                cmocka_unit_test_setup_teardown(test_varchar_options, setup, teardown),
                cmocka_unit_test_setup_teardown(test_integers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_floats_decimals_booleans, setup, teardown),
                cmocka_unit_test(test_civil),
                cmocka_unit_test_setup_teardown(test_timestamps, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
