/* wh_pg_copytext.c - turns struct wh_rows into COPY ... FROM STDIN text.
 *
 * The PostgreSQL driver's encoder, kept apart from the connection so that
 * it stays pure: it runs on the thread pool, one call per wh_copy_rows
 * batch, and its output is handed to PQputCopyData on the loop.  The buffer
 * is sized once per batch from a bound of each cell's text, so a row never
 * reallocates. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warehouse/wh_pg_copytext.h"

#define REAL_MAX 32 /* "%.17g", "-Infinity" and the fast path's digits fit */

static char *put_int(char *p, int64_t v)
{
        char tmp[24];
        size_t n = 0;
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        do {
                tmp[n++] = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0)
                *p++ = '-';
        while (n)
                *p++ = tmp[--n];
        return p;
}

static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* A double as text that reads back as the same double (float8in, float4in).
 * Fast path: the fewest fraction digits k with rint(d * 10^k) / 10^k == d.
 * Both operands of that division are exact doubles (|r| < 2^53, k <= 15),
 * so IEEE division rounds the exact quotient r / 10^k to nearest, just as
 * strtod rounds the decimal we print: it reads back as d.  JSON's decimals
 * take this path ("427.02362", not "427.02361999999999"); the rest gets
 * %.17g, which always reads back. */
static char *put_real(char *p, double d)
{
        if (isnan(d)) {
                memcpy(p, "NaN", 3);
                return p + 3;
        }
        if (isinf(d)) {
                const char *s = d > 0 ? "Infinity" : "-Infinity";
                size_t n = strlen(s);
                memcpy(p, s, n);
                return p + n;
        }
        for (int k = 0; k < 16 && !(d == 0 && signbit(d)); k++) {
                double scaled = d * pow10[k];
                if (fabs(scaled) >= 9007199254740992.0)
                        break;
                double r = rint(scaled);
                if (r / pow10[k] != d)
                        continue;
                int64_t v = (int64_t)r;
                if (k == 0)
                        return put_int(p, v);
                char dig[24];
                size_t n = (size_t)(put_int(dig, v < 0 ? -v : v) - dig), kk = (size_t)k;
                if (v < 0)
                        *p++ = '-';
                if (n <= kk) {
                        *p++ = '0';
                        *p++ = '.';
                        memset(p, '0', kk - n);
                        p += kk - n;
                        memcpy(p, dig, n);
                        return p + n;
                }
                memcpy(p, dig, n - kk);
                p += n - kk;
                *p++ = '.';
                memcpy(p, dig + n - kk, kk);
                return p + kk;
        }
        int n = snprintf(p, REAL_MAX, "%.17g", d);
        return p + (n > 0 && n < REAL_MAX ? n : 0);
}

/* COPY text format: backslash, newline, carriage return and tab escaped. */
static char *put_text(char *p, const char *s, size_t len)
{
        const char *end = s + len;
        while (s < end) {
                const char *run = s;
                while (s < end && *s != '\\' && *s != '\n' && *s != '\r' && *s != '\t')
                        s++;
                memcpy(p, run, (size_t)(s - run));
                p += s - run;
                if (s == end)
                        break;
                *p++ = '\\';
                *p++ = *s == '\\' ? '\\' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
                s++;
        }
        return p;
}

int wh_pg_copytext(const struct wh_rows *rows, struct buf *out)
{
        size_t cells = rows->n_rows * rows->n_cols;
        size_t need = rows->n_rows; /* the newlines */
        for (size_t i = 0; i < cells; i++) {
                const struct cell *c = &rows->cells[i];
                size_t n = c->kind == CELL_TEXT ? c->len : 0;
                if (n > (SIZE_MAX - need) / 2 - REAL_MAX)
                        return -E2BIG;
                need += 1 + (c->kind == CELL_TEXT ? 2 * n : REAL_MAX);
        }
        if (need == 0)
                return 0;
        /* room for the bound, then the rows written in place */
        size_t start = out->len;
        if (out->max && need > out->max - start)
                return -E2BIG;
        if (out->cap < start + need + 1) {
                size_t cap = start + need + 1;
                char *d = realloc(out->data, cap);
                if (!d)
                        return -ENOMEM;
                out->data = d;
                out->cap = cap;
        }
        char *p = out->data + start;
        for (size_t r = 0; r < rows->n_rows; r++) {
                const struct cell *row = rows->cells + r * rows->n_cols;
                for (size_t i = 0; i < rows->n_cols; i++) {
                        if (i)
                                *p++ = '\t';
                        switch (row[i].kind) {
                        case CELL_NULL:
                                *p++ = '\\';
                                *p++ = 'N';
                                break;
                        case CELL_INT:
                                p = put_int(p, row[i].i);
                                break;
                        case CELL_REAL:
                                p = put_real(p, row[i].r);
                                break;
                        case CELL_TEXT:
                                p = put_text(p, row[i].text, row[i].len);
                                break;
                        }
                }
                *p++ = '\n';
        }
        out->len = (size_t)(p - out->data);
        out->data[out->len] = '\0';
        return 0;
}
