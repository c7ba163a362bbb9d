/* test_util.c - common/util: hex digits, percent-decoding, durations, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static void test_hex(void **state)
{
        (void)state;
        assert_int_equal(util_hexdigit('0'), 0);
        assert_int_equal(util_hexdigit('9'), 9);
        assert_int_equal(util_hexdigit('a'), 10);
        assert_int_equal(util_hexdigit('F'), 15);
        assert_int_equal(util_hexdigit('g'), -1);
        assert_int_equal(util_hexdigit('\0'), -1);
        assert_int_equal(util_hexdigit('/'), -1);
        assert_int_equal(util_hex4("00e9"), 0xe9);
        assert_int_equal(util_hex4("FFFF"), 0xffff);
        assert_int_equal(util_hex4("12g4"), -1);
        assert_int_equal(util_hex4("12\0" "4"), -1);
}

static void pct(const char *in, bool plus, const char *want)
{
        char out[64];
        size_t n = util_pct_decode(in, strlen(in), plus, out);
        assert_string_equal(out, want);
        assert_int_equal(n, strlen(want));
}

static void test_pct_decode(void **state)
{
        (void)state;
        pct("%7B%22a%22%3A1%7d", false, "{\"a\":1}");
        pct("a+b%20c", true, "a b c");
        pct("a+b%20c", false, "a+b c");
        /* a '%' without two hex digits stays as it is */
        pct("100%", false, "100%");
        pct("%4", false, "%4");
        pct("%G1x", false, "%G1x");
        pct("%%41", false, "%A");
        pct("", false, "");
        /* only the n bytes given are read */
        char out[8];
        assert_int_equal(util_pct_decode("%41%42", 4, false, out), 2);
        assert_string_equal(out, "A%");
}

static void test_durations(void **state)
{
        (void)state;
        int64_t ms = 0;
        assert_int_equal(util_parse_duration_ms("1h30m", 86400000, &ms), 0);
        assert_int_equal(ms, 5400000);
        assert_int_equal(util_parse_duration_ms("2d", 86400000, &ms), -ERANGE);
        assert_int_equal(util_parse_duration_ms("1d", 86400000, &ms), 0);
        assert_int_equal(util_parse_duration_ms("90", 86400000, &ms), -EINVAL);
        assert_int_equal(util_parse_duration_ms("", 86400000, &ms), -EINVAL);
        assert_int_equal(util_parse_duration_ms(NULL, 86400000, &ms), -EINVAL);
}

static void test_utf8(void **state)
{
        (void)state;
        assert_int_equal(util_utf8_seq((const unsigned char *)"a", 1), 1);
        assert_int_equal(util_utf8_seq((const unsigned char *)"\xc3\xa9", 2), 2);
        assert_int_equal(util_utf8_seq((const unsigned char *)"\xc3", 1), 0);       /* cut */
        assert_int_equal(util_utf8_seq((const unsigned char *)"\xc0\xaf", 2), 0);   /* overlong */
        assert_int_equal(util_utf8_seq((const unsigned char *)"\xed\xa0\x80", 3), 0); /* surrogate */
        assert_int_equal(util_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
        assert_int_equal(util_utf8_seq((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
}

/* Text is cut for messages at character boundaries, never inside one. */
static void test_utf8_cut_and_trim(void **state)
{
        (void)state;
        const char *ete = "\xc3\xa9t\xc3\xa9"; /* été: 5 bytes */
        assert_int_equal(util_utf8_cut(ete, 5, 10), 5);
        assert_int_equal(util_utf8_cut(ete, 5, 1), 0); /* not half an é */
        assert_int_equal(util_utf8_cut(ete, 5, 2), 2);
        assert_int_equal(util_utf8_cut(ete, 5, 3), 3);
        assert_int_equal(util_utf8_cut(ete, 5, 4), 3);
        const char *emoji = "a\xf0\x9f\x98\x80"; /* a😀 */
        for (size_t max = 1; max < 5; max++)
                assert_int_equal(util_utf8_cut(emoji, 5, max), 1);
        char b[16];
        snprintf(b, sizeof(b), "x\xc3");
        util_utf8_trim(b);
        assert_string_equal(b, "x");
        snprintf(b, sizeof(b), "x\xf0\x9f\x98");
        util_utf8_trim(b);
        assert_string_equal(b, "x");
        snprintf(b, sizeof(b), "%s", ete);
        util_utf8_trim(b);
        assert_string_equal(b, ete); /* whole: unchanged */
        snprintf(b, sizeof(b), "abc");
        util_utf8_trim(b);
        assert_string_equal(b, "abc");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_hex),
            cmocka_unit_test(test_pct_decode),
            cmocka_unit_test(test_durations),
            cmocka_unit_test(test_utf8),
            cmocka_unit_test(test_utf8_cut_and_trim),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
