/* test_jsonpaths.c - JSONPaths files (daemon/load/jsonpaths.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "load/jsonpaths.h"

#include <stdio.h>
#include <stdlib.h>

static struct jv_doc *docs[4];
static int n_docs;

static const struct jv *parse_json(const char *text)
{
        struct jv_doc *d = jv_doc_new();
        jv_doc_free(docs[n_docs % 4]);
        docs[n_docs++ % 4] = d;
        struct jv_result res;
        const struct jv *v = jv_parse(d, text, strlen(text), &res);
        assert_non_null(v);
        return v;
}

static void free_docs(void)
{
        for (int i = 0; i < 4; i++)
                docs[i] = jv_doc_free(docs[i]);
        n_docs = 0;
}

static const char *str(const struct jv *v)
{
        static char b[256];
        assert_non_null(v);
        assert_int_equal(v->type, JV_STRING);
        snprintf(b, sizeof(b), "%.*s", (int)v->len, v->s);
        return b;
}

static long long num(const struct jv *v)
{
        assert_non_null(v);
        assert_int_equal(v->type, JV_NUMBER);
        return strtoll(v->s, NULL, 10);
}

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
        /* bracket notation (with index steps) in one file, dot notation in
         * another: "COPY from JSON format" does not allow mixing them */
        struct jsonpaths *p = parse_ok("{\"jsonpaths\": [\"$['artist']\", \"$['x'][1]\", "
                                       "\"$[\\\"q\\\"]\", \"$['it\\\\'s']\"]}");
        assert_int_equal(jsonpaths_count(p), 4);
        assert_string_equal(jsonpaths_text(p, 0), "$['artist']");
        const struct jv *rec = parse_json("{\"artist\":\"Muse\",\"a\":{\"b\":7},\"x\":[10,20],"
                                          "\"q\":true,\"arr\":[{\"n\":\"first\"}],\"it's\":1}");
        assert_non_null(rec);
        assert_string_equal(str(jsonpaths_eval(p, 0, rec, NULL)), "Muse");
        assert_int_equal(num(jsonpaths_eval(p, 1, rec, NULL)), 20);
        assert_true((jsonpaths_eval(p, 2, rec, NULL)->type == JV_TRUE));
        assert_int_equal(num(jsonpaths_eval(p, 3, rec, NULL)), 1);
        jsonpaths_free(p);
        p = parse_ok("{\"jsonpaths\": [\"$.a.b\", \"$.arr[0].n\", \"$.missing\", \"$.a.b.c\", "
                     "\"$.x[2]\", \"$.a[0]\"]}");
        assert_int_equal(num(jsonpaths_eval(p, 0, rec, NULL)), 7);
        assert_string_equal(str(jsonpaths_eval(p, 1, rec, NULL)), "first");
        assert_null(jsonpaths_eval(p, 2, rec, NULL)); /* missing: NULL */
        assert_null(jsonpaths_eval(p, 3, rec, NULL)); /* through a number: NULL */
        bool bad = false;
        assert_null(jsonpaths_eval_checked(p, 2, rec, NULL, &bad));
        assert_false(bad); /* a missing member is no index error */
        assert_null(jsonpaths_eval_checked(p, 4, rec, NULL, &bad));
        assert_true(bad); /* index past the end */
        bad = false;
        assert_null(jsonpaths_eval_checked(p, 5, rec, NULL, &bad));
        assert_true(bad); /* index on an object */
        bad = false;
        assert_non_null(jsonpaths_eval_checked(p, 1, rec, NULL, &bad));
        assert_false(bad);
        jsonpaths_free(p);

        /* top-level arrays (the AWS example of records as arrays) */
        rec = parse_json("[1006410, \"Guide\"]");
        p = parse_ok("{\"jsonpaths\": [\"$[0]\", \"$[1]\", \"$[2]\"]}");
        assert_int_equal(num(jsonpaths_eval(p, 0, rec, NULL)), 1006410);
        assert_string_equal(str(jsonpaths_eval(p, 1, rec, NULL)), "Guide");
        assert_null(jsonpaths_eval(p, 2, rec, NULL)); /* out of range: NULL */
        jsonpaths_free(p);
        free_docs();
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
        const struct jv *rec = parse_json("{\"firstName\":\"Walter\",\"userId\":\"39\"}");
        assert_string_equal(str(jsonpaths_eval(p, 2, rec, NULL)), "Walter");
        assert_string_equal(str(jsonpaths_eval(p, 17, rec, NULL)), "39");
        assert_null(jsonpaths_eval(p, 0, rec, NULL));
        jsonpaths_free(p);
        free_docs();
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
        parse_err("{\"jsonpaths\": 3}", "\"jsonpaths\" array");
        parse_err("[\"$.a\"]", "\"jsonpaths\" array");
        parse_err("{\"jsonpaths\": [\"$['a']\", \"$.b\"]}", "cannot be mixed");
        parse_err("{\"jsonpaths\": [\"$.a['b']\"]}", "cannot be mixed");
        /* another name than "jsonpaths": 'auto' (1, no paths) */
        struct jsonpaths *p = (struct jsonpaths *)1;
        char err[256];
        const char *other = "{\"paths\": [\"$.a\"]}";
        assert_int_equal(jsonpaths_parse(other, strlen(other), &p, err, sizeof(err)), 1);
        assert_null(p);
        parse_err("{\"jsonpaths\": [", "not a JSON file: parsing stops at byte 15 (line 1");
}

/* A file that is not JSON is named by where parsing stopped, never by its
 * text: s3.log_jsonpath may point at any file etld can read. */
static void test_not_json_shows_no_content(void **state)
{
        const char *texts[] = {
            "root:$6$SECRETHASH:19000:0:99999:7:::\n",
            "SECRETTOKEN",
            "{\"jsonpaths\": [\"$.a\"] SECRETTAIL}",
            "[1, 2, SECRETWORD]",
        };
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                struct jsonpaths *p = NULL;
                char err[256] = "";
                assert_int_equal(jsonpaths_parse(texts[i], strlen(texts[i]), &p, err, sizeof(err)),
                                 -EINVAL);
                assert_null(p);
                if (strstr(err, "SECRET") || strstr(err, "root"))
                        fail_msg("error '%s' shows the file's content", err);
                assert_non_null(strstr(err, "at byte"));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_notations_and_indexes),
            cmocka_unit_test(test_sparkify_log_json_path),
            cmocka_unit_test(test_bad_files),
            cmocka_unit_test(test_not_json_shows_no_content),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
