/* test_records.c - record splitting (daemon/load/records.h).  The file://
 * sources are tests/unit/test_source.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
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

/* A bad record's text ends with the line where it went wrong: the lines
 * skipped after it (which may be anything) are never part of it.  `first`
 * marks the object's first record. */
static void test_bad_record_text_stops_at_its_line(void **state)
{
        struct records rs;
        struct records_item it;
        const char *u = "{\"a\":1}\n{\"a\":\n,}\nroot:secret:1\nmore secret\n{\"a\":3}\n";
        records_init(&rs, test_doc(), u, strlen(u));
        assert_int_equal(records_next(&rs, &it), 1);
        assert_true(it.first);
        assert_int_equal(records_next(&rs, &it), 1);
        assert_null(it.value);
        assert_false(it.first);
        assert_int_equal(it.text_len, strlen("{\"a\":\n,}"));
        assert_memory_equal(it.text, "{\"a\":\n,}", it.text_len);
        assert_int_equal(records_next(&rs, &it), 1);
        assert_non_null(it.value);
        assert_int_equal(it.line, 6);
        assert_int_equal(records_next(&rs, &it), 0);

        /* not JSON at all: one bad stretch, first, its text from the first line only */
        const char *v = "root:x:0:0\nsecret line\n";
        records_init(&rs, test_doc(), v, strlen(v));
        assert_int_equal(records_next(&rs, &it), 1);
        assert_null(it.value);
        assert_true(it.first);
        assert_int_equal(it.offset, 0);
        assert_null(memchr(it.text, '\n', it.text_len));
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

/* ---- streaming: the same records whatever the chunk size ---- */

struct srec {
        int kind;
        uint64_t offset, line, err_line;
        size_t len;
        int code;
        char err[160];
        char text[1100]; /* values: compact text; errors: first min(len, 1024) bytes */
        size_t text_len;
};

static void take(const struct records_item *it, struct srec *o)
{
        memset(o, 0, sizeof(*o));
        o->kind = it->value != NULL;
        o->offset = it->offset;
        o->line = it->line;
        o->err_line = it->err_line;
        o->len = it->len;
        o->code = it->err_code;
        snprintf(o->err, sizeof(o->err), "%s", it->err);
        if (it->value) {
                char *c = malloc(it->value->len + 8);
                assert_non_null(c);
                size_t n = jv_compact(it->value, c);
                o->text_len = n < sizeof(o->text) ? n : sizeof(o->text);
                memcpy(o->text, c, o->text_len);
                free(c);
                assert_int_equal(it->text_len, it->len);
        } else {
                /* the bad record up to the end of its error's line */
                size_t want = it->text_len < 1024 ? it->text_len : 1024;
                assert_true(it->text_len <= it->len);
                assert_true(it->text_len >= 1 || it->len == 0);
                memcpy(o->text, it->text, want);
                o->text_len = want;
        }
}

/* The whole text at once (repl >= 0: ACCEPTINVCHARS on a copy first). */
static size_t split_whole(const char *text, size_t len, size_t max, int repl, struct srec *out,
                          size_t cap)
{
        char *copy = malloc(len + 1);
        assert_non_null(copy);
        memcpy(copy, text, len);
        if (repl >= 0)
                records_fix_utf8(copy, len, (char)repl);
        struct records r;
        struct records_item it;
        struct jv_doc *doc = jv_doc_new();
        records_init(&r, doc, copy, len);
        r.max = max;
        size_t n = 0;
        int rc;
        while ((rc = records_next(&r, &it)) == 1) {
                assert_true(n < cap);
                take(&it, &out[n++]);
        }
        assert_int_equal(rc, 0);
        jv_doc_free(doc);
        free(copy);
        return n;
}

/* The same text fed chunk bytes at a time. */
static size_t split_stream(const char *text, size_t len, size_t chunk, size_t max, int repl,
                           struct srec *out, size_t cap, size_t *max_window)
{
        struct records r;
        struct records_item it;
        struct jv_doc *doc = jv_doc_new();
        records_init_stream(&r, doc, max, repl);
        size_t n = 0, fed = 0;
        for (;;) {
                int rc = records_next(&r, &it);
                if (rc == 0)
                        break;
                if (rc == -EAGAIN) {
                        assert_false(r.eof);
                        size_t want = records_pending(&r) > chunk ? records_pending(&r) : chunk;
                        size_t room;
                        char *dst = records_space(&r, want, &room);
                        assert_non_null(dst);
                        size_t k = len - fed < chunk ? len - fed : chunk;
                        if (k == 0) {
                                records_end(&r);
                        } else {
                                memcpy(dst, text + fed, k);
                                fed += k;
                                records_commit(&r, k);
                        }
                        if (max_window && r.win.cap > *max_window)
                                *max_window = r.win.cap;
                        continue;
                }
                assert_int_equal(rc, 1);
                assert_true(n < cap);
                take(&it, &out[n++]);
        }
        assert_int_equal(fed, len);
        records_free(&r);
        jv_doc_free(doc);
        return n;
}

static void same(const struct srec *a, size_t na, const struct srec *b, size_t nb, size_t chunk)
{
        if (na != nb)
                fail_msg("chunk %zu: %zu records, whole text: %zu", chunk, nb, na);
        for (size_t i = 0; i < na; i++) {
                const struct srec *x = &a[i], *y = &b[i];
                if (x->kind != y->kind || x->offset != y->offset || x->line != y->line ||
                    x->err_line != y->err_line || x->len != y->len || x->code != y->code ||
                    strcmp(x->err, y->err) != 0 || x->text_len != y->text_len ||
                    memcmp(x->text, y->text, x->text_len) != 0)
                        fail_msg("chunk %zu, record %zu: whole {kind %d off %" PRIu64
                                 " len %zu line %" PRIu64 "/%" PRIu64 " code %d '%s'}, "
                                 "streamed {kind %d off %" PRIu64 " len %zu line %" PRIu64
                                 "/%" PRIu64 " code %d '%s'}",
                                 chunk, i, x->kind, x->offset, x->len, x->line, x->err_line,
                                 x->code, x->err, y->kind, y->offset, y->len, y->line,
                                 y->err_line, y->code, y->err);
        }
}

/* A file with every shape a record boundary can take: byte order mark,
 * concatenated and NDJSON records, CRLF and blank lines, a record over two
 * lines, top-level numbers (which only the next byte ends), multi-byte UTF-8,
 * invalid UTF-8, syntax errors and what resynchronising skips, a bad record
 * longer than the 1024 bytes of raw_line, escapes, and a truncated last
 * record. */
static char *known_file(size_t *len)
{
        struct buf b = { 0 };
        buf_printf(&b, "\xEF\xBB\xBF{\"a\":1}{\"b\":[1,2,{\"c\":\"caf\xC3\xA9 \xE2\x82\xAC "
                       "\xF0\x9F\x98\x80\"}]} {\"c\":3}\r\n\r\n\n  {\"a\":\n4}\n");
        buf_printf(&b, "123 4567 -8.5e+3\n{\"a\":,}\n{\"a\":\"x\xFF\xFEy\"}\n");
        buf_printf(&b, "   garbage line\n  \n\t[1, true, false, null]\n{\"long\":\"");
        for (int i = 0; i < 1500; i++)
                buf_printf(&b, "%c", 'a' + i % 26);
        buf_printf(&b, "\", \"bad\": tru }\nmore garbage {\n[\"\\u00e9\\n\\\"q\\\"\"]\n");
        buf_printf(&b, "truex\n{\"n\": 1.5E10}{\"t\":true}\n{\"cut\":\"\xE2\x82");
        buf_printf(&b, "\"}\n{\"a\":\"unfinished");
        *len = b.len;
        return b.data;
}

static void test_stream_every_chunk_size(void **state)
{
        (void)state;
        size_t len;
        char *text = known_file(&len);
        static struct srec whole[64], part[64];
        struct {
                size_t max;
                int repl;
        } modes[] = { { RECORDS_MAX_DEFAULT, -1 }, { RECORDS_MAX_DEFAULT, '?' }, { 48, -1 },
                      { 48, '^' }, { 7, -1 } };
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                size_t nw = split_whole(text, len, modes[m].max, modes[m].repl, whole, 64);
                assert_true(nw >= (modes[m].max > 48 ? 12u : 3u));
                for (size_t chunk = 1; chunk <= 64; chunk++) {
                        size_t np = split_stream(text, len, chunk, modes[m].max, modes[m].repl,
                                                 part, 64, NULL);
                        same(whole, nw, part, np, chunk);
                }
                /* and in one piece, and in pieces larger than the file */
                size_t np = split_stream(text, len, len, modes[m].max, modes[m].repl, part, 64,
                                         NULL);
                same(whole, nw, part, np, len);
        }
        /* a few facts about the known file, whole */
        size_t nw = split_whole(text, len, RECORDS_MAX_DEFAULT, -1, whole, 64);
        assert_int_equal(whole[0].offset, 3); /* after the byte order mark */
        assert_int_equal(whole[3].line, 4);   /* {"a":\n4} */
        assert_int_equal(whole[4].kind, 1);   /* 123 */
        assert_int_equal(whole[5].len, 4);    /* 4567, not 45 */
        assert_int_equal(whole[nw - 1].kind, 0);
        assert_non_null(strstr(whole[nw - 1].err, "truncated"));
        /* the long bad record keeps 1024 bytes of its text */
        bool long_seen = false;
        for (size_t i = 0; i < nw; i++)
                if (!whole[i].kind && whole[i].len > 1500) {
                        long_seen = true;
                        assert_int_equal(whole[i].text_len, 1024);
                        assert_memory_equal(whole[i].text, "{\"long\":\"abc", 12);
                }
        assert_true(long_seen);
        free(text);
}

/* Records larger than the limit are rejected, named by their line, and
 * splitting goes on after them; the window never holds much more than the
 * limit. */
static void test_record_size_limit(void **state)
{
        (void)state;
        struct buf b = { 0 };
        buf_printf(&b, "{\"id\":1}\n{\"big\":\"");
        size_t big = 5u << 20; /* 5 MiB */
        char *fill = malloc(big);
        assert_non_null(fill);
        memset(fill, 'x', big);
        buf_append(&b, fill, big);
        free(fill);
        buf_printf(&b, "\"}\n{\"id\":3}\n");
        static struct srec whole[8], part[8];
        size_t nw = split_whole(b.data, b.len, RECORDS_MAX_DEFAULT, -1, whole, 8);
        assert_int_equal(nw, 3);
        assert_int_equal(whole[0].kind, 1);
        assert_int_equal(whole[1].kind, 0);
        assert_int_equal(whole[1].line, 2);
        assert_int_equal(whole[1].err_line, 2);
        assert_int_equal(whole[1].offset, 9);
        assert_int_equal(whole[1].code, 1216);
        assert_non_null(strstr(whole[1].err, "larger than the 4194304-byte maximum"));
        assert_int_equal(whole[2].kind, 1);
        assert_int_equal(whole[2].line, 3);
        size_t window = 0;
        size_t chunk = 256 << 10;
        size_t np = split_stream(b.data, b.len, chunk, RECORDS_MAX_DEFAULT, -1, part, 8, &window);
        same(whole, nw, part, np, chunk);
        assert_true(window <= 4 * (RECORDS_MAX_DEFAULT + chunk));
        /* exactly at the limit is fine, one byte more is not */
        const char *t = "{\"a\":\"0123\"} {\"a\":\"01234\"}\n{}";
        nw = split_whole(t, strlen(t), 12, -1, whole, 8);
        assert_int_equal(nw, 3);
        assert_int_equal(whole[0].kind, 1);
        assert_int_equal(whole[1].kind, 0);
        assert_int_equal(whole[2].kind, 1);
        for (size_t chunk2 = 1; chunk2 <= 16; chunk2++) {
                np = split_stream(t, strlen(t), chunk2, 12, -1, part, 8, NULL);
                same(whole, nw, part, np, chunk2);
        }
        buf_free(&b);
}

/* Many records through a small window: memory stays at the window. */
static void test_stream_window_is_bounded(void **state)
{
        (void)state;
        struct records r;
        struct records_item it;
        struct jv_doc *doc = jv_doc_new();
        records_init_stream(&r, doc, RECORDS_MAX_DEFAULT, -1);
        char line[64];
        uint64_t n = 0, want = 400000, made = 0;
        size_t maxcap = 0;
        for (;;) {
                int rc = records_next(&r, &it);
                if (rc == 0)
                        break;
                if (rc == -EAGAIN) {
                        size_t room;
                        char *dst = records_space(&r, 65536, &room);
                        assert_non_null(dst);
                        size_t used = 0;
                        while (made < want && used + sizeof(line) < 65536) {
                                int k = snprintf(line, sizeof(line), "{\"id\": %" PRIu64 "}\n",
                                                 made++);
                                memcpy(dst + used, line, (size_t)k);
                                used += (size_t)k;
                        }
                        if (used)
                                records_commit(&r, used);
                        else
                                records_end(&r);
                        if (r.win.cap > maxcap)
                                maxcap = r.win.cap;
                        continue;
                }
                assert_int_equal(rc, 1);
                assert_non_null(it.value);
                assert_int_equal(it.line, n + 1);
                n++;
        }
        assert_int_equal(n, want);
        assert_true(maxcap <= 2 * 65536 + 4096);
        records_free(&r);
        jv_doc_free(doc);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_concatenated),
            cmocka_unit_test(test_song_file_no_final_newline),
            cmocka_unit_test(test_ndjson_blank_lines_crlf),
            cmocka_unit_test(test_invalid_json_with_line),
            cmocka_unit_test(test_bad_record_text_stops_at_its_line),
            cmocka_unit_test(test_truncated),
            cmocka_unit_test(test_invalid_utf8),
            cmocka_unit_test(test_stream_every_chunk_size),
            cmocka_unit_test(test_record_size_limit),
            cmocka_unit_test(test_stream_window_is_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
