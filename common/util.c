/* util.c - see util.h. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_parse_ll(const char *s, long long *ret)
{
        if (!s || !*s)
                return -EINVAL;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end || end == s)
                return -EINVAL;
        *ret = v;
        return 0;
}

int util_parse_duration_ms(const char *s, int64_t max_ms, int64_t *ret_ms)
{
        static const struct {
                char unit;
                int64_t ms;
        } units[] = { { 's', 1000 }, { 'm', 60 * 1000 }, { 'h', 3600 * 1000 },
                      { 'd', 86400 * 1000 } };
        int64_t total = 0;
        const char *c = s;
        if (!c || !*c)
                return -EINVAL;
        while (*c) {
                if (*c < '0' || *c > '9')
                        return -EINVAL;
                int64_t n = 0;
                for (; *c >= '0' && *c <= '9'; c++) {
                        n = n * 10 + (*c - '0');
                        if (n > max_ms / 1000)
                                return -ERANGE;
                }
                int64_t unit = 0;
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (*c == units[i].unit)
                                unit = units[i].ms;
                if (!unit)
                        return -EINVAL;
                c++;
                total += n * unit;
                if (total > max_ms)
                        return -ERANGE;
        }
        if (total <= 0)
                return -EINVAL;
        *ret_ms = total;
        return 0;
}

int util_read_file(const char *path, char **ret, size_t *ret_len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct buf b = { 0 };
        char chunk[65536];
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        close(fd);
                        buf_free(&b);
                        return r;
                }
                if (n == 0)
                        break;
                if (buf_append(&b, chunk, (size_t)n) < 0) {
                        close(fd);
                        buf_free(&b);
                        return -ENOMEM;
                }
        }
        close(fd);
        if (buf_append(&b, "", 1) < 0) {
                buf_free(&b);
                return -ENOMEM;
        }
        *ret = b.data;
        if (ret_len)
                *ret_len = b.len - 1;
        return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
        if (b->max && b->len + n > b->max)
                return -E2BIG;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        char *tmp = malloc((size_t)n + 1);
        if (!tmp)
                return -ENOMEM;
        va_start(ap, fmt);
        vsnprintf(tmp, (size_t)n + 1, fmt, ap);
        va_end(ap);
        int r = buf_append(b, tmp, (size_t)n);
        free(tmp);
        return r;
}

int buf_cat(struct buf *b, size_t n, ...)
{
        va_list ap;
        int r = 0;
        va_start(ap, n);
        for (size_t i = 0; i < n && r == 0; i++) {
                const char *s = va_arg(ap, const char *);
                if (!s)
                        s = "(null)";
                r = buf_append(b, s, strlen(s));
        }
        va_end(ap);
        return r;
}

void buf_free(struct buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

void util_setf(char *dst, size_t len, const char *fmt, ...)
{
        if (!dst || len == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(dst, len, fmt, ap);
        va_end(ap);
}

size_t util_utf8_seq(const unsigned char *s, size_t n)
{
        unsigned char c = s[0];
        if (c < 0x80)
                return 1;
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else {
                return 0;
        }
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
        return len;
}

size_t util_utf8_cut(const char *s, size_t n, size_t max)
{
        if (n <= max)
                return n;
        size_t k = max;
        while (k > 0 && max - k < 3 && ((unsigned char)s[k] & 0xC0) == 0x80)
                k--;
        return k;
}

void util_utf8_trim(char *s)
{
        size_t n = strlen(s), i = n;
        while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
                i--;
        if (i > 0 && (unsigned char)s[i - 1] >= 0xC0 &&
            !util_utf8_seq((const unsigned char *)s + i - 1, n - i + 1))
                s[i - 1] = '\0';
}

int util_hexdigit(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

size_t util_pct_decode(const char *s, size_t n, bool plus_is_space, char *out)
{
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                int h, l;
                if (s[i] == '%' && i + 2 < n && (h = util_hexdigit(s[i + 1])) >= 0 &&
                    (l = util_hexdigit(s[i + 2])) >= 0) {
                        out[o++] = (char)(h * 16 + l);
                        i += 2;
                } else {
                        out[o++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
                }
        }
        out[o] = '\0';
        return o;
}

int util_hex4(const char *p)
{
        int v = 0;
        for (int i = 0; i < 4; i++) {
                int d = util_hexdigit(p[i]);
                if (d < 0)
                        return -1;
                v = v << 4 | d;
        }
        return v;
}

uint64_t util_now_mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t util_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_iso_ms(int64_t ms, char *out, size_t n)
{
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out, n, "%s.%03dZ", when, (int)(ms % 1000));
}
