/* test_wh.c - picking a warehouse driver by target URI (daemon/warehouse/wh.h),
 * and the libpq URI a redshift:// target becomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "warehouse/wh.h"

static void rs_ok(const char *in, const char *want)
{
        char *out = NULL;
        char err[256] = "";
        int r = wh_redshift_uri(in, &out, err, sizeof(err));
        if (r < 0)
                fail_msg("wh_redshift_uri(%s): %d %s", in, r, err);
        if (strcmp(out, want) != 0)
                fail_msg("wh_redshift_uri(%s):\n got  %s\n want %s", in, out, want);
        free(out);
}

static void rs_err(const char *in, const char *want)
{
        char *out = NULL;
        char err[256] = "";
        assert_int_equal(wh_redshift_uri(in, &out, err, sizeof(err)), -EINVAL);
        assert_null(out);
        if (!strstr(err, want))
                fail_msg("wh_redshift_uri(%s): error '%s' lacks '%s'", in, err, want);
}

static void test_redshift_defaults(void **state)
{
        (void)state;
        /* TLS required, port 5439 and database dev unless given */
        rs_ok("redshift://awsuser@c.abc.us-west-2.redshift.amazonaws.com",
              "postgresql://awsuser@c.abc.us-west-2.redshift.amazonaws.com:5439/dev"
              "?sslmode=require");
        rs_ok("redshift://awsuser@h/", "postgresql://awsuser@h:5439/dev?sslmode=require");
        rs_ok("redshift://h/analytics", "postgresql://h:5439/analytics?sslmode=require");
        rs_ok("redshift://u@[::1]/db", "postgresql://u@[::1]:5439/db?sslmode=require");
        rs_ok("redshift://u@h?", "postgresql://u@h:5439/dev?sslmode=require");
}

static void test_redshift_uri_wins(void **state)
{
        (void)state;
        rs_ok("redshift://u@h:5440/db?sslmode=verify-full&sslrootcert=/etc/rs.pem",
              "postgresql://u@h:5440/db?sslmode=verify-full&sslrootcert=/etc/rs.pem");
        rs_ok("redshift://u@[::1]:6000/db", "postgresql://u@[::1]:6000/db?sslmode=require");
        rs_ok("redshift://u:p%40ss@h/db?connect_timeout=5",
              "postgresql://u:p%40ss@h:5439/db?connect_timeout=5&sslmode=require");
        rs_ok("redshift://u@h/db?options=-c%20statement_timeout%3D60000&sslmode=disable",
              "postgresql://u@h:5439/db?options=-c%20statement_timeout%3D60000&sslmode=disable");
        /* a parameter that merely ends in "sslmode" is not sslmode */
        rs_ok("redshift://u@h/db?xsslmode=disable",
              "postgresql://u@h:5439/db?xsslmode=disable&sslmode=require");
}

static void test_redshift_errors(void **state)
{
        (void)state;
        rs_err("redshift://", "no host");
        rs_err("redshift://awsuser@/dev", "no host");
        rs_err("redshift://?hostaddr=10.0.0.1", "no host");
        rs_err("postgresql://u@h/db", "not a redshift:// URI");
}

static void test_open_without_loop(void **state)
{
        (void)state;
        /* The libpq drivers live on etld's loop; a program without it gets a
         * clear refusal, not a hang. */
        struct wh *w = NULL;
        char err[256] = "";
        int r = wh_open("redshift://u@127.0.0.1/dev", "/nonexistent", &w, err, sizeof(err));
        assert_int_equal(r, -ENOTSUP);
        assert_null(w);
        assert_non_null(strstr(err, "Redshift driver"));
        r = wh_open("oracle://x", "/nonexistent", &w, err, sizeof(err));
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "unknown scheme in 'oracle'"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_redshift_defaults),
                cmocka_unit_test(test_redshift_uri_wins),
                cmocka_unit_test(test_redshift_errors),
                cmocka_unit_test(test_open_without_loop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
