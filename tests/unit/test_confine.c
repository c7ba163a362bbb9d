/* test_confine.c - declared folders: resolving paths, checking them, and
 * opening only what lies inside, also when a symlink is swapped between the
 * check and the open. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "confine.h"
#include "testfs.h"

static char top[64]; /* TOP/in (the root), TOP/out (outside it) */
static char in[128], out[128];

static int setup(void **state)
{
        snprintf(top, sizeof(top), "/tmp/etld-test-confine-XXXXXX");
        if (!mkdtemp(top))
                return -1;
        snprintf(in, sizeof(in), "%s/in", top);
        snprintf(out, sizeof(out), "%s/out", top);
        if (mkdir(in, 0755) < 0 || mkdir(out, 0755) < 0)
                return -1;
        testfs_put(in, "data/a.json", "{}", 2);
        testfs_put(out, "secret", "s3cr3t", 6);
        return 0;
}

static int teardown(void **state)
{
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_resolve(void **state)
{
        char *r = NULL, err[512] = "", path[256], want[256];
        snprintf(path, sizeof(path), "%s/data/../data/a.json", in);
        snprintf(want, sizeof(want), "%s/data/a.json", in);
        assert_int_equal(confine_resolve(path, &r, err, sizeof(err)), 0);
        assert_string_equal(r, want);
        free(r);
        /* parts that do not exist yet are kept as written */
        snprintf(path, sizeof(path), "%s/new/dir/w.db", in);
        assert_int_equal(confine_resolve(path, &r, err, sizeof(err)), 0);
        assert_string_equal(r, path);
        free(r);
        /* but may not climb out with '..' */
        snprintf(path, sizeof(path), "%s/new/../../out/secret", in);
        assert_int_equal(confine_resolve(path, &r, err, sizeof(err)), -EINVAL);
        assert_int_equal(confine_resolve("relative", &r, err, sizeof(err)), -EINVAL);
}

static void test_check(void **state)
{
        struct confine *c = NULL;
        char err[512] = "", path[256], list[300];
        snprintf(list, sizeof(list), " %s , ", in);
        assert_int_equal(confine_new("daemon.data_roots", list, NULL, true, &c, err, sizeof(err)),
                         0);
        snprintf(path, sizeof(path), "%s/data/prefix", in);
        assert_int_equal(confine_check(c, "s3.song_data", path, err, sizeof(err)), 0);
        snprintf(path, sizeof(path), "%s/data/../../out/secret", in);
        assert_int_equal(confine_check(c, "s3.song_data", path, err, sizeof(err)), -EACCES);
        assert_non_null(strstr(err, "s3.song_data"));
        assert_non_null(strstr(err, "outside daemon.data_roots"));
        /* a symlink inside that leads outside */
        char link[256];
        snprintf(link, sizeof(link), "%s/escape", in);
        assert_int_equal(symlink(out, link), 0);
        snprintf(path, sizeof(path), "%s/escape/secret", in);
        assert_int_equal(confine_check(c, "s3.log_jsonpath", path, err, sizeof(err)), -EACCES);
        assert_non_null(strstr(err, "resolves to"));
        /* a prefix of a root's name is not inside it */
        snprintf(path, sizeof(path), "%sside/x", in);
        assert_int_equal(confine_check(c, "x", path, err, sizeof(err)), -EACCES);
        unlink(link);
        confine_free(c);
        /* strict: a folder that does not exist is an error naming it */
        assert_int_equal(
            confine_new("daemon.data_roots", "/nonexistent/etld", NULL, true, &c, err, sizeof(err)),
            -ENOENT);
        assert_non_null(strstr(err, "/nonexistent/etld"));
        /* none declared: nothing is inside */
        assert_int_equal(confine_new("daemon.data_roots", "", NULL, true, &c, err, sizeof(err)), 0);
        snprintf(path, sizeof(path), "%s/data/a.json", in);
        assert_int_equal(confine_check(c, "x", path, err, sizeof(err)), -EACCES);
        assert_non_null(strstr(err, "none declared"));
        confine_free(c);
}

/* The check at submit passed; then the folder was swapped for a symlink to
 * the outside.  Opening finds out, whatever path was checked before. */
static void test_open_after_swap(void **state)
{
        struct confine *c = NULL;
        char err[512] = "", path[300], dir[200], moved[256];
        assert_int_equal(confine_new("daemon.data_roots", in, NULL, true, &c, err, sizeof(err)), 0);
        snprintf(dir, sizeof(dir), "%s/swap", in);
        testfs_put(in, "swap/secret", "inside", 6);
        snprintf(path, sizeof(path), "%s/secret", dir);
        assert_int_equal(confine_check(c, "s3.log_jsonpath", path, err, sizeof(err)), 0);
        int fd = confine_open(c, path, O_RDONLY, err, sizeof(err));
        assert_true(fd >= 0);
        char buf[16] = "";
        assert_int_equal(read(fd, buf, sizeof(buf)), 6);
        assert_memory_equal(buf, "inside", 6);
        close(fd);

        snprintf(moved, sizeof(moved), "%s/swap.old", in);
        assert_int_equal(rename(dir, moved), 0);
        assert_int_equal(symlink(out, dir), 0);
        fd = confine_open(c, path, O_RDONLY, err, sizeof(err));
        assert_int_equal(fd, -EACCES);
        assert_non_null(strstr(err, "outside daemon.data_roots"));
        /* folders too */
        assert_int_equal(confine_open(c, dir, O_RDONLY | O_DIRECTORY, err, sizeof(err)), -EACCES);
        /* no confinement: a plain open */
        fd = confine_open(NULL, path, O_RDONLY, err, sizeof(err));
        assert_true(fd >= 0);
        close(fd);
        /* a FIFO is neither a file nor a folder: refused without blocking */
        char fifo[256];
        snprintf(fifo, sizeof(fifo), "%s/fifo", in);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(confine_open(c, fifo, O_RDONLY, err, sizeof(err)), -EACCES);
        assert_int_equal(confine_open(c, "/nonexistent/x", O_RDONLY, err, sizeof(err)), -ENOENT);
        confine_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_resolve),
            cmocka_unit_test(test_check),
            cmocka_unit_test(test_open_after_swap),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
