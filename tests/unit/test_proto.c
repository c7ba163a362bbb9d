/* test_proto.c - framing and message shapes of the JSON-RPC line protocol. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto.h"

static void test_lines_split_across_feeds(void **state)
{
        struct linebuf b;
        linebuf_init(&b, 64);
        char *line;
        size_t len;
        assert_int_equal(linebuf_feed(&b, "{\"a\":", 5), 0);
        assert_int_equal(linebuf_next(&b, &line, &len), 0);
        assert_int_equal(linebuf_feed(&b, "1}\n{\"b\":2}\r\n{", 13), 0);
        assert_int_equal(linebuf_next(&b, &line, &len), 1);
        assert_string_equal(line, "{\"a\":1}");
        assert_int_equal(linebuf_next(&b, &line, &len), 1);
        assert_string_equal(line, "{\"b\":2}"); /* CR stripped */
        assert_int_equal(len, 7);
        assert_int_equal(linebuf_next(&b, &line, &len), 0);
        assert_int_equal(linebuf_feed(&b, "}\n", 2), 0);
        assert_int_equal(linebuf_next(&b, &line, &len), 1);
        assert_string_equal(line, "{}");
        linebuf_free(&b);
}

static void test_byte_at_a_time(void **state)
{
        struct linebuf b;
        linebuf_init(&b, 64);
        const char *msg = "{\"jsonrpc\":\"2.0\"}\n";
        char *line;
        size_t len;
        int got = 0;
        for (size_t i = 0; msg[i]; i++) {
                linebuf_feed(&b, msg + i, 1);
                int r = linebuf_next(&b, &line, &len);
                if (r == 1) {
                        got++;
                        assert_string_equal(line, "{\"jsonrpc\":\"2.0\"}");
                }
        }
        assert_int_equal(got, 1);
        linebuf_free(&b);
}

static void test_overlong_line_is_reported_once_and_dropped(void **state)
{
        struct linebuf b;
        linebuf_init(&b, 16);
        char *line;
        size_t len;
        char big[40];
        memset(big, 'x', sizeof(big));
        linebuf_feed(&b, big, sizeof(big));
        assert_int_equal(linebuf_next(&b, &line, &len), -E2BIG);
        linebuf_feed(&b, big, sizeof(big));
        assert_int_equal(linebuf_next(&b, &line, &len), 0); /* still discarding */
        linebuf_feed(&b, "xx\nok\n", 6);
        assert_int_equal(linebuf_next(&b, &line, &len), 1);
        assert_string_equal(line, "ok");
        /* the buffer does not keep the dropped bytes */
        assert_true(b.cap <= 4096);
        /* an over-long line that arrives whole with its newline */
        char whole[30];
        memset(whole, 'y', sizeof(whole));
        whole[29] = '\n';
        linebuf_feed(&b, whole, sizeof(whole));
        assert_int_equal(linebuf_next(&b, &line, &len), -E2BIG);
        linebuf_feed(&b, "ok2\n", 4);
        assert_int_equal(linebuf_next(&b, &line, &len), 1);
        assert_string_equal(line, "ok2");
        linebuf_free(&b);
}

static int parse_code(const char *text)
{
        json_t *req = NULL, *reply = NULL;
        int r = rpc_parse_request(text, strlen(text), &req, &reply);
        if (r == 0) {
                assert_null(reply);
                json_decref(req);
                return 0;
        }
        assert_null(req);
        assert_non_null(reply);
        json_t *err = json_object_get(reply, "error");
        assert_true(json_is_string(json_object_get(err, "message")));
        int code = (int)json_integer_value(json_object_get(err, "code"));
        assert_int_equal(code, r);
        json_decref(reply);
        return code;
}

static void test_request_errors(void **state)
{
        assert_int_equal(parse_code("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}"), 0);
        assert_int_equal(parse_code("{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}"), 0);
        assert_int_equal(parse_code("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":[1]}"), 0);
        assert_int_equal(parse_code("{nope"), RPC_PARSE_ERROR);
        assert_int_equal(parse_code("[1,2]"), RPC_INVALID_REQUEST);
        assert_int_equal(parse_code("{\"jsonrpc\":\"1.0\",\"method\":\"ping\"}"), RPC_INVALID_REQUEST);
        assert_int_equal(parse_code("{\"jsonrpc\":\"2.0\",\"method\":7}"), RPC_INVALID_REQUEST);
        assert_int_equal(parse_code("{\"jsonrpc\":\"2.0\",\"method\":\"p\",\"params\":3}"),
                         RPC_INVALID_REQUEST);
        assert_int_equal(parse_code("{\"jsonrpc\":\"2.0\",\"method\":\"p\",\"id\":{}}"),
                         RPC_INVALID_REQUEST);
        /* duplicate keys are refused rather than guessed at */
        assert_int_equal(parse_code("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"method\":\"b\"}"),
                         RPC_PARSE_ERROR);
}

static void test_parse_error_names_position(void **state)
{
        json_t *req, *reply;
        const char *text = "{\"jsonrpc\": \"2.0\", oops}";
        rpc_parse_request(text, strlen(text), &req, &reply);
        const char *msg = json_string_value(json_object_get(json_object_get(reply, "error"),
                                                            "message"));
        assert_non_null(strstr(msg, "byte"));
        assert_true(json_is_null(json_object_get(reply, "id")));
        json_decref(reply);
}

/* Whatever bytes a source holds, the JSON made of them is valid UTF-8:
 * invalid sequences and NULs become U+FFFD, valid text is unchanged. */
static void test_json_text_replaces_invalid_utf8(void **state)
{
        (void)state;
        json_t *v = proto_json_text("\xc3\xa9t\xc3\xa9");
        assert_string_equal(json_string_value(v), "\xc3\xa9t\xc3\xa9");
        json_decref(v);
        v = proto_json_textn("a\xc3'b\xff\0c", 7);
        assert_non_null(v);
        assert_string_equal(json_string_value(v), "a\xef\xbf\xbd'b\xef\xbf\xbd\xef\xbf\xbd"
                                                  "c");
        json_decref(v);
        v = proto_json_text(NULL);
        assert_true(json_is_null(v));
        json_decref(v);
        /* every byte value, alone and after a lead byte, gives a string */
        for (int c = 0; c < 256; c++) {
                char two[2] = {(char)0xe2, (char)c};
                json_t *s = proto_json_textn(two, 2);
                assert_non_null(s);
                json_t *msg = json_pack("{s:o}", "v", s);
                char *line = rpc_dump_line(msg, NULL);
                assert_non_null(line);
                free(line);
                json_decref(msg);
        }
        json_t *err = rpc_make_error(NULL, RPC_INTERNAL_ERROR, "bad: %s", "\xc3");
        assert_non_null(err);
        json_decref(err);
}

static void test_dump_line_is_one_line(void **state)
{
        json_t *msg = rpc_make_result(json_integer(3), json_pack("{s:s}", "text", "a\nb"));
        size_t len;
        char *line = rpc_dump_line(msg, &len);
        assert_non_null(line);
        assert_int_equal(line[len - 1], '\n');
        assert_null(memchr(line, '\n', len - 1));
        json_t *back = json_loadb(line, len, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(json_object_get(back, "result"),
                                                              "text")),
                            "a\nb");
        assert_int_equal(json_integer_value(json_object_get(back, "id")), 3);
        json_decref(back);
        free(line);
        json_decref(json_object_get(msg, "id"));
        json_decref(msg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lines_split_across_feeds),
            cmocka_unit_test(test_byte_at_a_time),
            cmocka_unit_test(test_overlong_line_is_reported_once_and_dropped),
            cmocka_unit_test(test_request_errors),
            cmocka_unit_test(test_json_text_replaces_invalid_utf8),
            cmocka_unit_test(test_parse_error_names_position),
            cmocka_unit_test(test_dump_line_is_one_line),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
