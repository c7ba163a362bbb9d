/* test_records.c - record splitting (daemon/load/records.h) and file://
 * sources (daemon/load/source.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load/records.h"

static struct jv_doc *test_doc(void)
{
        static struct jv_doc *d;
        if (!d)
                d = jv_doc_new();
        return d;
}
#include "load/source.h"

struct rec {
        int kind; /* 1 value, 0 error */
        uint64_t line;
        size_t offset, len;
        int code;
};

/* Splits text, returns the number of records, fills out[]. */
static size_t split(const char *text, struct rec *out, size_t max)
{
        struct records r;
        struct records_item it;
        size_t n = 0;
        struct jv_doc *doc = jv_doc_new();
        records_init(&r, doc, text, strlen(text));
        while (records_next(&r, &it)) {
                assert_true(n < max);
                out[n].kind = it.value != NULL;
                out[n].line = it.value ? it.line : it.err_line;
                out[n].offset = it.offset;
                out[n].len = it.len;
                out[n].code = it.err_code;
                n++;
        }
        jv_doc_free(doc);
        return n;
}

static void test_concatenated(void **state)
{
        struct rec r[8];
        const char *t = "{\"a\":1}{\"b\":2} {\"c\":3}";
        assert_int_equal(split(t, r, 8), 3);
        assert_int_equal(r[0].kind, 1);
        assert_int_equal(r[0].offset, 0);
        assert_int_equal(r[0].len, 7);
        assert_int_equal(r[1].offset, 7);
        assert_int_equal(r[2].offset, 15);
        assert_int_equal(r[2].line, 1);
}

static void test_song_file_no_final_newline(void **state)
{
        struct rec r[4];
        const char *t = "{\"num_songs\": 1, \"artist_id\": \"ARJIE2Y1187B994AB7\", "
                        "\"title\": \"Line Three\", \"duration\": 226.55}";
        assert_int_equal(split(t, r, 4), 1);
        assert_int_equal(r[0].kind, 1);
        assert_int_equal(r[0].len, strlen(t));
}

static void test_ndjson_blank_lines_crlf(void **state)
{
        struct rec r[8];
        const char *t = "{\"a\":1}\r\n\r\n{\"a\":2}\n\n\n{\"a\":3}\r\n  {\"a\":\n4}\n";
        assert_int_equal(split(t, r, 8), 4);
        assert_int_equal(r[0].line, 1);
        assert_int_equal(r[1].line, 3);
        assert_int_equal(r[1].offset, 11);
        assert_int_equal(r[2].line, 6);
        assert_int_equal(r[3].line, 7); /* a record spanning two lines */
        assert_int_equal(r[3].offset, 32);
        for (int i = 0; i < 4; i++)
                assert_int_equal(r[i].kind, 1);
        assert_int_equal(split("", r, 8), 0);
        assert_int_equal(split(" \n\r\n\t", r, 8), 0);
        assert_int_equal(split("\xEF\xBB\xBF{\"a\":1}", r, 8), 1);
}

static void test_invalid_json_with_line(void **state)
{
        struct rec r[8];
        const char *t = "{\"a\":1}\n{\"a\":,}\n{\"a\":3}\n";
        assert_int_equal(split(t, r, 8), 3);
        assert_int_equal(r[0].kind, 1);
        assert_int_equal(r[1].kind, 0);
        assert_int_equal(r[1].line, 2);
        assert_int_equal(r[1].code, 1216);
        assert_int_equal(r[1].offset, 8);
        assert_int_equal(r[2].kind, 1); /* splitting goes on */
        assert_int_equal(r[2].line, 3);

        struct records rs;
        struct records_item it;
        const char *u = "{\"a\":1}\n{\"a\":\n\"x\",\n,}";
        records_init(&rs, test_doc(), u, strlen(u));
        assert_int_equal(records_next(&rs, &it), 1);
                assert_int_equal(records_next(&rs, &it), 1);
        assert_null(it.value);
        assert_int_equal(it.line, 2);
        assert_int_equal(it.err_line, 4);
        assert_non_null(strstr(it.err, "invalid JSON"));
        assert_int_equal(records_next(&rs, &it), 0);
}

static void test_truncated(void **state)
{
        struct records rs;
        struct records_item it;
        const char *t = "{\"a\":1}\n{\"a\":\"unfinished";
        records_init(&rs, test_doc(), t, strlen(t));
        assert_int_equal(records_next(&rs, &it), 1);
                assert_int_equal(records_next(&rs, &it), 1);
        assert_null(it.value);
        assert_int_equal(it.line, 2);
        assert_int_equal(it.err_code, 1216);
        assert_non_null(strstr(it.err, "truncated"));
        assert_int_equal(it.len, strlen(t) - 8);
        assert_int_equal(records_next(&rs, &it), 0);
}

static void test_invalid_utf8(void **state)
{
        struct records rs;
        struct records_item it;
        char t[] = "{\"a\":\"x\xff\xfey\"}\n{\"b\":\"caf\xc3\xa9\"}";
        records_init(&rs, test_doc(), t, strlen(t));
        assert_int_equal(records_next(&rs, &it), 1);
        assert_null(it.value);
        assert_int_equal(it.err_code, 1220);
        assert_int_equal(records_next(&rs, &it), 1);
        assert_non_null(it.value);
        
        /* ACCEPTINVCHARS: each invalid byte becomes the replacement */
        assert_int_equal(records_fix_utf8(t, strlen(t), '?'), 2);
        records_init(&rs, test_doc(), t, strlen(t));
        assert_int_equal(records_next(&rs, &it), 1);
        assert_non_null(it.value);
        const struct jv *a = jv_get(it.value, "a", 1, NULL);
        assert_non_null(a);
        assert_int_equal(a->len, 4);
        assert_memory_equal(a->s, "x??y", 4);
                char overlong[] = "\xc0\xaf\xed\xa0\x80ok\xf4\x90\x80\x80";
        assert_int_equal(records_fix_utf8(overlong, strlen(overlong), '^'), 9);
        assert_string_equal(overlong, "^^^^^ok^^^^");
}

/* ---- file:// sources ---- */

static char tmpdir[256];

static void put(const char *rel, const char *text)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
        for (char *p = path + strlen(tmpdir) + 1; *p; p++) {
                if (*p == '/') {
                        *p = '\0';
                        mkdir(path, 0755);
                        *p = '/';
                }
        }
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static int setup_tree(void **state)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_records.XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        put("log_data/2018/11/2018-11-02-events.json", "{}");
        put("log_data/2018/11/2018-11-01-events.json", "{}");
        put("log_data_old/x.json", "{}");
        put("log_json_path.json", "{\"jsonpaths\":[\"$.a\"]}");
        put("song_data/A/B/C/TRABC.json", "{}");
        put("logbook.txt", "x");
        return 0;
}

static int teardown_tree(void **state)
{
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static size_t list(const char *rel_uri, struct source_object **objs)
{
        char uri[512];
        char err[256] = "";
        snprintf(uri, sizeof(uri), "file://%s/%s", tmpdir, rel_uri);
        struct source *s = NULL;
        assert_int_equal(source_open(uri, &s, err, sizeof(err)), 0);
        size_t n = 99;
        int r = source_list(s, objs, &n, err, sizeof(err));
        if (r < 0)
                fail_msg("source_list: %s", err);
        source_free(s);
        return n;
}

static void test_source_prefix_is_a_string(void **state)
{
        struct source_object *o = NULL;
        size_t n = list("log_data", &o);
        assert_int_equal(n, 3);
        assert_string_equal(o[0].key, "log_data/2018/11/2018-11-01-events.json");
        assert_string_equal(o[1].key, "log_data/2018/11/2018-11-02-events.json");
        assert_string_equal(o[2].key, "log_data_old/x.json");
        char want[512];
        snprintf(want, sizeof(want), "file://%s/log_data/2018/11/2018-11-01-events.json", tmpdir);
        assert_string_equal(o[0].uri, want);
        assert_int_equal(o[0].size, 2);
        source_objects_free(o, n);

        n = list("log_data/", &o);
        assert_int_equal(n, 2);
        source_objects_free(o, n);

        n = list("log", &o);
        assert_int_equal(n, 5); /* log_data (2), log_data_old, log_json_path, logbook */
        assert_string_equal(o[3].key, "log_json_path.json");
        assert_string_equal(o[4].key, "logbook.txt");
        source_objects_free(o, n);

        n = list("log_data/2018/11/2018-11-02", &o);
        assert_int_equal(n, 1);
        source_objects_free(o, n);

        n = list("nothing", &o);
        assert_int_equal(n, 0);
        source_objects_free(o, n);

        n = list("", &o);
        assert_int_equal(n, 6);
        source_objects_free(o, n);
}

static void test_source_read_and_errors(void **state)
{
        char uri[512];
        char err[256] = "";
        struct buf b = { 0 };
        snprintf(uri, sizeof(uri), "file://%s/log_json_path.json", tmpdir);
        assert_int_equal(source_read_uri(uri, &b, err, sizeof(err)), 0);
        assert_string_equal(b.data, "{\"jsonpaths\":[\"$.a\"]}");
        assert_int_equal(b.len, strlen(b.data));

        snprintf(uri, sizeof(uri), "file://%s/missing.json", tmpdir);
        assert_int_equal(source_read_uri(uri, &b, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, uri));
        buf_free(&b);

        struct source *s = NULL;
        assert_int_equal(source_open("s3://bucket/log_data", &s, err, sizeof(err)),
                         -EPROTONOSUPPORT);
        assert_non_null(strstr(err, "s3:// sources are not supported yet"));
        assert_int_equal(source_open("http://x/y", &s, err, sizeof(err)), -EINVAL);
        assert_int_equal(source_open("file://host/y", &s, err, sizeof(err)), -EINVAL);
        assert_null(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_concatenated),
                cmocka_unit_test(test_song_file_no_final_newline),
                cmocka_unit_test(test_ndjson_blank_lines_crlf),
                cmocka_unit_test(test_invalid_json_with_line),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test_setup_teardown(test_source_prefix_is_a_string, setup_tree,
                                                teardown_tree),
                cmocka_unit_test_setup_teardown(test_source_read_and_errors, setup_tree,
                                                teardown_tree),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
