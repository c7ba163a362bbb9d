/* testfs.h - writing the files a unit test reads: DIR/REL with its parent
 * folders made as needed.  Header-only: cmocka tests are single files. */
#pragma once
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static inline void testfs_put(const char *dir, const char *rel, const void *data, size_t len)
{
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        for (char *p = path + strlen(dir) + 1; *p; p++) {
                if (*p == '/') {
                        *p = '\0';
                        mkdir(path, 0755);
                        *p = '/';
                }
        }
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(data, 1, len, fp), len);
        fclose(fp);
}
