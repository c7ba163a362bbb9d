/* test_jsonpaths.c - JSONPaths files (daemon/load/jsonpaths.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "load/jsonpaths.h"

static struct jsonpaths *parse_ok(const char *text)
{
        struct jsonpaths *p = NULL;
        char err[256] = "";
        int r = jsonpaths_parse(text, strlen(text), &p, err, sizeof(err));
        if (r < 0)
                fail_msg("jsonpaths_parse: %d %s", r, err);
        return p;
}

static void parse_err(const char *text, const char *want)
{
        struct jsonpaths *p = NULL;
        char err[256] = "";
        assert_int_equal(jsonpaths_parse(text, strlen(text), &p, err, sizeof(err)), -EINVAL);
        assert_null(p);
        if (!strstr(err, want))
                fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_notations_and_indexes(void **state)
{
        struct jsonpaths *p = parse_ok("{\"jsonpaths\": [\"$['artist']\", \"$.a.b\", "
                                       "\"$['x'][1]\", \"$[\\\"q\\\"]\", \"$.arr[0].n\", "
                                       "\"$['it\\\\'s']\", \"$.missing\", \"$.a.b.c\"]}");
        assert_int_equal(jsonpaths_count(p), 8);
        assert_string_equal(jsonpaths_text(p, 0), "$['artist']");
        json_t *rec = json_loads("{\"artist\":\"Muse\",\"a\":{\"b\":7},\"x\":[10,20],"
                                 "\"q\":true,\"arr\":[{\"n\":\"first\"}],\"it's\":1}",
                                 0, NULL);
        assert_non_null(rec);
        assert_string_equal(json_string_value(jsonpaths_eval(p, 0, rec)), "Muse");
        assert_int_equal(json_integer_value(jsonpaths_eval(p, 1, rec)), 7);
        assert_int_equal(json_integer_value(jsonpaths_eval(p, 2, rec)), 20);
        assert_true(json_is_true(jsonpaths_eval(p, 3, rec)));
        assert_string_equal(json_string_value(jsonpaths_eval(p, 4, rec)), "first");
        assert_int_equal(json_integer_value(jsonpaths_eval(p, 5, rec)), 1);
        assert_null(jsonpaths_eval(p, 6, rec)); /* missing: NULL */
        assert_null(jsonpaths_eval(p, 7, rec)); /* through a number: NULL */
        json_decref(rec);

        /* top-level arrays (the AWS example of records as arrays) */
        rec = json_loads("[1006410, \"Guide\"]", 0, NULL);
        jsonpaths_free(p);
        p = parse_ok("{\"jsonpaths\": [\"$[0]\", \"$[1]\", \"$[2]\"]}");
        assert_int_equal(json_integer_value(jsonpaths_eval(p, 0, rec)), 1006410);
        assert_string_equal(json_string_value(jsonpaths_eval(p, 1, rec)), "Guide");
        assert_null(jsonpaths_eval(p, 2, rec)); /* out of range: NULL */
        json_decref(rec);
        jsonpaths_free(p);
}

static void test_sparkify_log_json_path(void **state)
{
        struct jsonpaths *p = parse_ok(
                "{\n    \"jsonpaths\": [\n        \"$['artist']\",\n        \"$['auth']\",\n"
                "        \"$['firstName']\",\n        \"$['gender']\",\n"
                "        \"$['itemInSession']\",\n        \"$['lastName']\",\n"
                "        \"$['length']\",\n        \"$['level']\",\n        \"$['location']\",\n"
                "        \"$['method']\",\n        \"$['page']\",\n"
                "        \"$['registration']\",\n        \"$['sessionId']\",\n"
                "        \"$['song']\",\n        \"$['status']\",\n        \"$['ts']\",\n"
                "        \"$['userAgent']\",\n        \"$['userId']\"\n    ]\n}");
        assert_int_equal(jsonpaths_count(p), 18);
        json_t *rec = json_loads("{\"firstName\":\"Walter\",\"userId\":\"39\"}", 0, NULL);
        assert_string_equal(json_string_value(jsonpaths_eval(p, 2, rec)), "Walter");
        assert_string_equal(json_string_value(jsonpaths_eval(p, 17, rec)), "39");
        assert_null(jsonpaths_eval(p, 0, rec));
        json_decref(rec);
        jsonpaths_free(p);
}

static void test_bad_files(void **state)
{
        parse_err("{\"jsonpaths\": [\"$['a']\", \"a.b\"]}", "invalid path \"a.b\"");
        parse_err("{\"jsonpaths\": [\"$.a[*]\"]}", "invalid path \"$.a[*]\"");
        parse_err("{\"jsonpaths\": [\"$..a\"]}", "invalid path \"$..a\"");
        parse_err("{\"jsonpaths\": [\"$['a'\"]}", "expected ']'");
        parse_err("{\"jsonpaths\": [\"$['a]\"]}", "unterminated quoted name");
        parse_err("{\"jsonpaths\": [\"$\"]}", "at least one element");
        parse_err("{\"jsonpaths\": [\"$.a b\"]}", "invalid path \"$.a b\"");
        parse_err("{\"jsonpaths\": [\"$[1x]\"]}", "invalid path \"$[1x]\"");
        parse_err("{\"jsonpaths\": [\"$.a\", 3]}", "element 2");
        parse_err("{\"jsonpaths\": []}", "empty");
        parse_err("{\"paths\": [\"$.a\"]}", "\"jsonpaths\" array");
        parse_err("{\"jsonpaths\": [", "not valid JSON");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_notations_and_indexes),
                cmocka_unit_test(test_sparkify_log_json_path),
                cmocka_unit_test(test_bad_files),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
