/* fuzz_util.c - helpers of the fuzz harnesses (fuzz.h): failing loudly,
 * cutting an input into parts, and temporary files for readers that take a
 * path. */
#include "fuzz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fuzz_fail(const char *fmt, ...)
{
        va_list ap;
        fputs("fuzz: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

char *fuzz_strdup(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);
        if (!s)
                fuzz_fail("out of memory");
        if (size)
                memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

void fuzz_split2(const uint8_t *data, size_t size, char **first, size_t *first_len, char **second,
                 size_t *second_len)
{
        const uint8_t *nul = size ? memchr(data, '\0', size) : NULL;
        size_t n = nul ? (size_t)(nul - data) : size;
        *first = fuzz_strdup(data, n);
        *first_len = n;
        size_t rest = nul ? size - n - 1 : 0;
        *second = fuzz_strdup(nul ? nul + 1 : data, rest);
        *second_len = rest;
}

static char dir[64];

static void remove_dir(void)
{
        char path[128];
        for (int i = 0; i < 8; i++) {
                snprintf(path, sizeof(path), "%s/f%d", dir, i);
                unlink(path);
        }
        rmdir(dir);
}

const char *fuzz_write_file(int slot, const void *data, size_t size)
{
        static char paths[8][128];
        if (slot < 0 || slot >= 8)
                fuzz_fail("fuzz_write_file: slot %d out of range", slot);
        if (!dir[0]) {
                /* tmpfs when there is one: a fuzzer writes files thousands of
                 * times a second */
                struct stat st;
                snprintf(dir, sizeof(dir), "%s/etld-fuzz-XXXXXX",
                         stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp");
                if (!mkdtemp(dir))
                        fuzz_fail("mkdtemp: %s", strerror(errno));
                atexit(remove_dir);
        }
        snprintf(paths[slot], sizeof(paths[slot]), "%s/f%d", dir, slot);
        FILE *f = fopen(paths[slot], "wb");
        if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
                fuzz_fail("cannot write %s: %s", paths[slot], strerror(errno));
        return paths[slot];
}
