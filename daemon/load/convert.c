/* convert.c - JSON value -> cell for a declared column type, following the
 * AWS pages "COPY from JSON format", "Data conversion parameters" and
 * "DATEFORMAT and TIMEFORMAT strings".  Everything a COPY rejects becomes a
 * struct convert_reject with Redshift's load error code ("Load error
 * reference"): 1204 out of range / too long, 1205 date, 1206 timestamp,
 * 1207 invalid digit, 1208 float, 1209 decimal, 1210 boolean.  See convert.h. */
#include "convert.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- declared types ---------------------------------------------------- */

/* Case-insensitive match of word w at *s followed by a non-identifier byte;
 * advances *s past it and any spaces. */
static bool word(const char **s, const char *w)
{
        size_t n = strlen(w);
        if (strncasecmp(*s, w, n) != 0)
                return false;
        unsigned char c = (unsigned char)(*s)[n];
        if (isalnum(c) || c == '_')
                return false;
        *s += n;
        while (isspace((unsigned char)**s))
                (*s)++;
        return true;
}

/* Optional "(n)" or "(n, m)"; MAX counts as 65535. */
static int type_args(const char **s, long *a, long *b)
{
        if (**s != '(')
                return 0;
        (*s)++;
        while (isspace((unsigned char)**s))
                (*s)++;
        int n = 0;
        for (;;) {
                long v;
                if (word(s, "MAX")) {
                        v = 65535;
                } else {
                        char *end;
                        errno = 0;
                        v = strtol(*s, &end, 10);
                        if (end == *s || errno || v < 0)
                                return -EINVAL;
                        *s = end;
                }
                if (n == 0)
                        *a = v;
                else if (n == 1)
                        *b = v;
                else
                        return -EINVAL;
                n++;
                while (isspace((unsigned char)**s))
                        (*s)++;
                if (**s == ',') {
                        (*s)++;
                        while (isspace((unsigned char)**s))
                                (*s)++;
                        continue;
                }
                if (**s != ')')
                        return -EINVAL;
                (*s)++;
                while (isspace((unsigned char)**s))
                        (*s)++;
                return n;
        }
}

int convert_parse_type(const char *decl, struct convert_type *ret)
{
        const char *s = decl ? decl : "";
        long a = -1, b = -1;
        struct convert_type t = { 0 };
        while (isspace((unsigned char)*s))
                s++;
        if (word(&s, "VARCHAR") || word(&s, "NVARCHAR")) {
                t.kind = CONVERT_VARCHAR;
                t.max_bytes = 256; /* Redshift's default VARCHAR length */
                t.name = "Varchar";
        } else if (word(&s, "CHARACTER") || word(&s, "CHAR") || word(&s, "NCHAR") ||
                   word(&s, "BPCHAR")) {
                t.kind = CONVERT_VARCHAR;
                t.max_bytes = 1; /* CHAR without a length is CHAR(1) */
                t.name = "Char";
                if (word(&s, "VARYING")) {
                        t.max_bytes = 256;
                        t.name = "Varchar";
                }
        } else if (word(&s, "TEXT")) {
                t.kind = CONVERT_VARCHAR;
                t.max_bytes = 256; /* Redshift: TEXT is VARCHAR(256) */
                t.name = "Varchar";
        } else if (word(&s, "SMALLINT") || word(&s, "INT2")) {
                t.kind = CONVERT_SMALLINT;
                t.name = "Short Integer";
        } else if (word(&s, "INTEGER") || word(&s, "INT") || word(&s, "INT4")) {
                t.kind = CONVERT_INTEGER;
                t.name = "Integer";
        } else if (word(&s, "BIGINT") || word(&s, "INT8")) {
                t.kind = CONVERT_BIGINT;
                t.name = "Long Integer";
        } else if (word(&s, "DECIMAL") || word(&s, "NUMERIC")) {
                t.kind = CONVERT_DECIMAL;
                t.precision = 18; /* Redshift's default DECIMAL(18,0) */
                t.scale = 0;
                t.name = "Decimal";
        } else if (word(&s, "REAL") || word(&s, "FLOAT4")) {
                t.kind = CONVERT_REAL;
                t.name = "Real";
        } else if (word(&s, "DOUBLE")) {
                if (!word(&s, "PRECISION"))
                        return -EINVAL;
                t.kind = CONVERT_DOUBLE;
                t.name = "Double";
        } else if (word(&s, "FLOAT8") || word(&s, "FLOAT")) {
                t.kind = CONVERT_DOUBLE;
                t.name = "Double";
        } else if (word(&s, "BOOLEAN") || word(&s, "BOOL")) {
                t.kind = CONVERT_BOOLEAN;
                t.name = "Boolean";
        } else if (word(&s, "DATE")) {
                t.kind = CONVERT_DATE;
                t.name = "Date";
        } else if (word(&s, "TIMESTAMPTZ")) {
                t.kind = CONVERT_TIMESTAMPTZ;
                t.name = "Timestamptz";
        } else if (word(&s, "TIMESTAMP")) {
                t.kind = CONVERT_TIMESTAMP;
                t.name = "Timestamp";
                if (word(&s, "WITH")) {
                        if (!word(&s, "TIME") || !word(&s, "ZONE"))
                                return -EINVAL;
                        t.kind = CONVERT_TIMESTAMPTZ;
                        t.name = "Timestamptz";
                } else if (word(&s, "WITHOUT")) {
                        if (!word(&s, "TIME") || !word(&s, "ZONE"))
                                return -EINVAL;
                }
        } else {
                return -EINVAL;
        }
        int n = type_args(&s, &a, &b);
        if (n < 0 || *s)
                return -EINVAL;
        switch (t.kind) {
        case CONVERT_VARCHAR:
                if (n > 1)
                        return -EINVAL;
                if (n == 1) {
                        if (a < 1 || a > 65535)
                                return -EINVAL;
                        t.max_bytes = (size_t)a;
                }
                break;
        case CONVERT_DECIMAL:
                if (n >= 1) {
                        if (a < 1 || a > 38)
                                return -EINVAL;
                        t.precision = (int)a;
                        t.scale = 0;
                }
                if (n == 2) {
                        if (b > a)
                                return -EINVAL;
                        t.scale = (int)b;
                }
                break;
        default:
                if (n > 0 && t.kind != CONVERT_DOUBLE && t.kind != CONVERT_TIMESTAMP &&
                    t.kind != CONVERT_TIMESTAMPTZ)
                        return -EINVAL;
                break;
        }
        *ret = t;
        return 0;
}

/* ---- dates -------------------------------------------------------------- */

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t convert_days_from_civil(int64_t y, unsigned m, unsigned d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned)(y - era * 400);
        unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

void convert_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned)(z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t yy = (int64_t)yoe + era * 400;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        *d = doy - (153 * mp + 2) / 5 + 1;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = yy + (*m <= 2);
}

static size_t format_date(int64_t days, char *buf)
{
        int64_t y;
        unsigned m, d;
        convert_civil_from_days(days, &y, &m, &d);
        return (size_t)snprintf(buf, 40, "%04" PRId64 "-%02u-%02u", y, m, d);
}

size_t convert_format_timestamp(int64_t secs, uint32_t usec, char *buf)
{
        int64_t days = secs / 86400;
        int64_t rem = secs % 86400;
        if (rem < 0) {
                rem += 86400;
                days--;
        }
        size_t n = format_date(days, buf);
        n += (size_t)snprintf(buf + n, 40 - n, " %02d:%02d:%02d", (int)(rem / 3600),
                              (int)(rem / 60 % 60), (int)(rem % 60));
        if (usec) {
                char frac[16];
                snprintf(frac, sizeof(frac), "%06u", (unsigned)usec);
                size_t fl = 6;
                while (fl > 0 && frac[fl - 1] == '0')
                        fl--;
                buf[n++] = '.';
                memcpy(buf + n, frac, fl);
                n += fl;
                buf[n] = '\0';
        }
        return n;
}

static bool is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
        static const unsigned md[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

/* Reads exactly n digits. */
static bool digits(const char **s, const char *end, int n, int *ret)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (*s >= end || !isdigit((unsigned char)**s))
                        return false;
                v = v * 10 + (**s - '0');
                (*s)++;
        }
        *ret = v;
        return true;
}

/* 'YYYY-MM-DD' at s; advances.  Returns days since the epoch. */
static bool parse_date(const char **s, const char *end, int64_t *days)
{
        int y, m, d;
        if (!digits(s, end, 4, &y) || *s >= end || **s != '-')
                return false;
        (*s)++;
        if (!digits(s, end, 2, &m) || *s >= end || **s != '-')
                return false;
        (*s)++;
        if (!digits(s, end, 2, &d))
                return false;
        if (m < 1 || m > 12 || d < 1 || (unsigned)d > month_days(y, (unsigned)m))
                return false;
        *days = convert_days_from_civil(y, (unsigned)m, (unsigned)d);
        return true;
}

/* 'YYYY-MM-DD[ HH:MI:SS[.ffffff]]', with 'T' and a final 'Z' when iso.
 * Fraction digits past the sixth are dropped (Redshift keeps microseconds). */
static bool parse_timestamp(const char *s, size_t len, bool iso, int64_t *secs, uint32_t *usec)
{
        const char *end = s + len;
        int64_t days;
        int h = 0, mi = 0, sec = 0;
        uint32_t us = 0;
        while (s < end && isspace((unsigned char)*s))
                s++;
        while (end > s && isspace((unsigned char)end[-1]))
                end--;
        if (!parse_date(&s, end, &days))
                return false;
        if (s < end && (*s == ' ' || (iso && *s == 'T'))) {
                s++;
                if (!digits(&s, end, 2, &h) || s >= end || *s != ':')
                        return false;
                s++;
                if (!digits(&s, end, 2, &mi) || s >= end || *s != ':')
                        return false;
                s++;
                if (!digits(&s, end, 2, &sec))
                        return false;
                if (h > 23 || mi > 59 || sec > 59)
                        return false;
                if (s < end && *s == '.') {
                        s++;
                        int nd = 0;
                        while (s < end && isdigit((unsigned char)*s)) {
                                if (nd < 6)
                                        us = us * 10 + (uint32_t)(*s - '0');
                                nd++;
                                s++;
                        }
                        if (nd == 0)
                                return false;
                        for (; nd < 6; nd++)
                                us *= 10;
                }
        }
        if (iso && s < end && *s == 'Z')
                s++;
        if (s != end)
                return false;
        *secs = days * 86400 + h * 3600 + mi * 60 + sec;
        *usec = us;
        return true;
}

/* ---- values ------------------------------------------------------------- */

static int reject(struct convert_reject *rej, int code, const char *value, size_t vlen,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int reject(struct convert_reject *rej, int code, const char *value, size_t vlen,
                  const char *fmt, ...)
{
        rej->code = code;
        size_t n = vlen < sizeof(rej->value) - 1 ? vlen : sizeof(rej->value) - 1;
        memcpy(rej->value, value, n);
        rej->value[n] = '\0';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rej->reason, sizeof(rej->reason), fmt, ap);
        va_end(ap);
        return 1;
}

/* The JSON text of a number or boolean, for VARCHAR columns and messages.
 * Reals use the shortest form that reads back to the same double (jansson
 * does not keep the original text). */
static int scalar_text(const json_t *v, char *buf, size_t len)
{
        if (json_is_integer(v))
                return snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (json_is_real(v)) {
                double d = json_real_value(v);
                int n = 0;
                for (int prec = 15; prec <= 17; prec++) {
                        n = snprintf(buf, len, "%.*g", prec, d);
                        if (strtod(buf, NULL) == d)
                                break;
                }
                return n;
        }
        if (json_is_true(v))
                return snprintf(buf, len, "true");
        if (json_is_false(v))
                return snprintf(buf, len, "false");
        buf[0] = '\0';
        return 0;
}

static bool all_blank(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (!isspace((unsigned char)s[i]))
                        return false;
        return true;
}

/* Length of the longest prefix of s (at most max bytes) that ends on a
 * UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t max)
{
        size_t n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                n--;
        return n;
}

static int set_text(struct buf *scratch, struct cell *out, const char *s, size_t len)
{
        scratch->len = 0;
        int r = buf_append(scratch, s, len);
        if (r < 0)
                return r;
        out->kind = CELL_TEXT;
        out->text = scratch->data;
        out->len = len;
        return 0;
}

static int to_varchar(const struct convert_type *t, const struct convert_opts *o, const json_t *v,
                      struct buf *scratch, struct cell *out, struct convert_reject *rej)
{
        const char *s;
        size_t len;
        char num[64];
        if (json_is_string(v)) {
                s = json_string_value(v);
                len = json_string_length(v);
                if (len == 0 && o->emptyasnull)
                        return 0;
                if (o->blanksasnull && all_blank(s, len))
                        return 0;
        } else if (json_is_object(v) || json_is_array(v)) {
                /* Nested objects and arrays load as their compact JSON text. */
                scratch->len = 0;
                char *dump = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                                   JSON_ENCODE_ANY);
                if (!dump)
                        return -ENOMEM;
                int r = set_text(scratch, out, dump, strlen(dump));
                free(dump);
                if (r < 0)
                        return r;
                s = scratch->data;
                len = scratch->len;
        } else {
                int n = scalar_text(v, num, sizeof(num));
                int r = set_text(scratch, out, num, (size_t)n);
                if (r < 0)
                        return r;
                s = scratch->data;
                len = scratch->len;
        }
        if (len > t->max_bytes) {
                if (!o->truncatecolumns)
                        return reject(rej, 1204, s, len,
                                      "String length exceeds DDL length");
                len = utf8_cut(s, t->max_bytes);
        }
        out->kind = CELL_TEXT;
        out->text = s;
        out->len = len;
        return 0;
}

static void int_range(enum convert_kind k, int64_t *lo, int64_t *hi)
{
        if (k == CONVERT_SMALLINT) {
                *lo = INT16_MIN;
                *hi = INT16_MAX;
        } else if (k == CONVERT_INTEGER) {
                *lo = INT32_MIN;
                *hi = INT32_MAX;
        } else {
                *lo = INT64_MIN;
                *hi = INT64_MAX;
        }
}

/* An integer from text: optional sign, digits, surrounding blanks allowed. */
static int int_from_text(const struct convert_type *t, const char *s, size_t len, int64_t *ret,
                         struct convert_reject *rej)
{
        size_t i = 0, end = len;
        while (i < end && isspace((unsigned char)s[i]))
                i++;
        while (end > i && isspace((unsigned char)s[end - 1]))
                end--;
        bool neg = false;
        if (i < end && (s[i] == '-' || s[i] == '+')) {
                neg = s[i] == '-';
                i++;
        }
        if (i == end)
                return reject(rej, 1207, s, len, "Invalid digit, Value '%.*s', Pos %zu, Type: %s",
                              i < len ? 1 : 0, s + (i < len ? i : 0), i, t->name);
        uint64_t v = 0;
        bool overflow = false;
        for (size_t p = i; p < end; p++) {
                if (!isdigit((unsigned char)s[p]))
                        return reject(rej, 1207, s, len,
                                      "Invalid digit, Value '%c', Pos %zu, Type: %s", s[p], p,
                                      t->name);
                if (v > (UINT64_MAX - 9) / 10)
                        overflow = true;
                else
                        v = v * 10 + (uint64_t)(s[p] - '0');
        }
        int64_t lo, hi;
        int_range(t->kind, &lo, &hi);
        if (overflow || (!neg && v > (uint64_t)hi) || (neg && v > (uint64_t)hi + 1))
                return reject(rej, 1204, s, len, "Overflow, Value '%.*s', Type: %s",
                              (int)(len > 64 ? 64 : len), s, t->name);
        int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
        if (r < lo)
                return reject(rej, 1204, s, len, "Overflow, Value '%.*s', Type: %s",
                              (int)(len > 64 ? 64 : len), s, t->name);
        *ret = r;
        return 0;
}

static int to_int(const struct convert_type *t, const json_t *v, struct cell *out,
                  struct convert_reject *rej)
{
        int64_t lo, hi;
        int_range(t->kind, &lo, &hi);
        char num[64];
        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);
                if (i < lo || i > hi) {
                        int n = scalar_text(v, num, sizeof(num));
                        return reject(rej, 1204, num, (size_t)n,
                                      "Overflow, Value '%s', Type: %s", num, t->name);
                }
                out->kind = CELL_INT;
                out->i = i;
                return 0;
        }
        if (json_is_real(v)) {
                /* jansson keeps no text for reals; an integral value in range
                 * (1.0, 1e3) loads, anything with a fraction is an invalid
                 * digit, as the '.' in its text is for Redshift. */
                double d = json_real_value(v);
                int n = scalar_text(v, num, sizeof(num));
                if (d != floor(d) || !isfinite(d)) {
                        const char *dot = strpbrk(num, ".eE");
                        size_t pos = dot ? (size_t)(dot - num) : 0;
                        return reject(rej, 1207, num, (size_t)n,
                                      "Invalid digit, Value '%c', Pos %zu, Type: %s",
                                      dot ? *dot : num[0], pos, t->name);
                }
                if (d < (double)lo || d >= -(double)lo)
                        return reject(rej, 1204, num, (size_t)n,
                                      "Overflow, Value '%s', Type: %s", num, t->name);
                int64_t i = (int64_t)d;
                if (i < lo || i > hi)
                        return reject(rej, 1204, num, (size_t)n,
                                      "Overflow, Value '%s', Type: %s", num, t->name);
                out->kind = CELL_INT;
                out->i = i;
                return 0;
        }
        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                size_t len = json_string_length(v);
                /* "Data conversion parameters", BLANKSASNULL and EMPTYASNULL:
                 * "Blank fields for other data types, such as INT, are always
                 * loaded with NULL" (likewise empty fields): "" and "  " are
                 * NULL in numeric, boolean and date columns with or without
                 * those options.  The Sparkify logs rely on it (userId ""). */
                if (all_blank(s, len))
                        return 0;
                int64_t i = 0;
                int r = int_from_text(t, s, len, &i, rej);
                if (r)
                        return r;
                out->kind = CELL_INT;
                out->i = i;
                return 0;
        }
        if (json_is_boolean(v)) {
                /* Redshift loads JSON true/false into integer columns as 1/0. */
                out->kind = CELL_INT;
                out->i = json_is_true(v);
                return 0;
        }
        /* object or array */
        return reject(rej, 1207, "", 0, "Invalid digit, Value '%c', Pos 0, Type: %s",
                      json_is_object(v) ? '{' : '[', t->name);
}

static int to_float(const struct convert_type *t, const json_t *v, struct cell *out,
                    struct convert_reject *rej)
{
        double d;
        if (json_is_number(v)) {
                d = json_number_value(v);
        } else if (json_is_string(v)) {
                const char *s = json_string_value(v);
                size_t len = json_string_length(v);
                if (all_blank(s, len)) /* see to_int */
                        return 0;
                char *end;
                errno = 0;
                d = strtod(s, &end);
                while (isspace((unsigned char)*end))
                        end++;
                if (end == s || (size_t)(end - s) != len)
                        return reject(rej, 1208, s, len, "Invalid float value '%.*s', Type: %s",
                                      (int)(len > 64 ? 64 : len), s, t->name);
                if (errno == ERANGE && fabs(d) > 1)
                        return reject(rej, 1204, s, len, "Overflow, Value '%.*s', Type: %s",
                                      (int)(len > 64 ? 64 : len), s, t->name);
        } else if (json_is_boolean(v)) {
                d = json_is_true(v) ? 1 : 0;
        } else {
                return reject(rej, 1208, "", 0, "Invalid float value, Type: %s", t->name);
        }
        if (t->kind == CONVERT_REAL) {
                if (isfinite(d) && fabs(d) > 3.40282347e38) {
                        char num[64];
                        int n = snprintf(num, sizeof(num), "%.17g", d);
                        return reject(rej, 1204, num, (size_t)n,
                                      "Overflow, Value '%s', Type: %s", num, t->name);
                }
                d = (float)d;
        }
        out->kind = CELL_REAL;
        out->r = d;
        return 0;
}

/* DECIMAL(p,s): text with exactly s fraction digits; excess digits are
 * truncated, or rounded half away from zero with ROUNDEC ("Data conversion
 * parameters", ROUNDEC); more than p-s integer digits is an overflow. */
static int to_decimal(const struct convert_type *t, const struct convert_opts *o, const json_t *v,
                      struct buf *scratch, struct cell *out, struct convert_reject *rej)
{
        char num[128];
        const char *s;
        size_t len;
        if (json_is_string(v)) {
                s = json_string_value(v);
                len = json_string_length(v);
                if (all_blank(s, len))
                        return 0;
        } else if (json_is_integer(v)) {
                len = (size_t)scalar_text(v, num, sizeof(num));
                s = num;
        } else if (json_is_real(v)) {
                double d = json_real_value(v);
                if (!isfinite(d))
                        return reject(rej, 1209, "", 0, "Invalid decimal value, Type: Decimal");
                /* fixed notation, enough digits for the scale plus one to round */
                int n = snprintf(num, sizeof(num), "%.*f", t->scale + 1 > 30 ? 30 : t->scale + 1,
                                 d);
                if (n < 0 || (size_t)n >= sizeof(num))
                        return reject(rej, 1204, "", 0, "Overflow, Type: Decimal");
                len = (size_t)n;
                s = num;
        } else {
                return reject(rej, 1209, "", 0, "Invalid decimal value, Type: Decimal");
        }
        /* sign, integer digits, optional fraction */
        size_t i = 0, end = len;
        while (i < end && isspace((unsigned char)s[i]))
                i++;
        while (end > i && isspace((unsigned char)s[end - 1]))
                end--;
        bool neg = false;
        if (i < end && (s[i] == '-' || s[i] == '+'))
                neg = s[i++] == '-';
        size_t int_start = i;
        while (i < end && isdigit((unsigned char)s[i]))
                i++;
        size_t int_end = i;
        size_t frac_start = i, frac_end = i;
        if (i < end && s[i] == '.') {
                frac_start = ++i;
                while (i < end && isdigit((unsigned char)s[i]))
                        i++;
                frac_end = i;
        }
        if (i != end || (int_end == int_start && frac_end == frac_start))
                return reject(rej, 1207, s, len, "Invalid digit, Value '%c', Pos %zu, Type: Decimal",
                              i < len ? s[i] : ' ', i);
        while (int_start + 1 < int_end && s[int_start] == '0')
                int_start++;
        /* digits: integer part then exactly scale fraction digits */
        char d[128];
        size_t nd = 0;
        for (size_t k = int_start; k < int_end && nd < 80; k++)
                d[nd++] = s[k];
        size_t nfrac = frac_end - frac_start;
        for (int k = 0; k < t->scale; k++)
                d[nd++] = (size_t)k < nfrac ? s[frac_start + (size_t)k] : '0';
        if (o->roundec && nfrac > (size_t)t->scale && s[frac_start + (size_t)t->scale] >= '5') {
                size_t k = nd;
                while (k > 0) {
                        if (d[k - 1] == '9') {
                                d[--k] = '0';
                                continue;
                        }
                        d[k - 1]++;
                        break;
                }
                if (k == 0) {
                        memmove(d + 1, d, nd);
                        d[0] = '1';
                        nd++;
                }
        }
        size_t nint = nd - (size_t)t->scale;
        size_t lead = 0;
        while (lead < nint && d[lead] == '0')
                lead++;
        if (nint - lead > (size_t)(t->precision - t->scale))
                return reject(rej, 1204, s, len,
                              "Numeric data overflow (result precision), Value '%.*s', "
                              "Type: Decimal(%d,%d)",
                              (int)(len > 64 ? 64 : len), s, t->precision, t->scale);
        char outbuf[128];
        size_t n = 0;
        bool zero = true;
        for (size_t k = 0; k < nd; k++)
                if (d[k] != '0')
                        zero = false;
        if (neg && !zero)
                outbuf[n++] = '-';
        if (lead == nint) {
                outbuf[n++] = '0';
        } else {
                memcpy(outbuf + n, d + lead, nint - lead);
                n += nint - lead;
        }
        if (t->scale > 0) {
                outbuf[n++] = '.';
                memcpy(outbuf + n, d + nint, (size_t)t->scale);
                n += (size_t)t->scale;
        }
        return set_text(scratch, out, outbuf, n);
}

static int to_bool(const json_t *v, struct cell *out, struct convert_reject *rej)
{
        static const char *const yes[] = { "t", "true", "y", "yes", "1", "on" };
        static const char *const no[] = { "f", "false", "n", "no", "0", "off" };
        if (json_is_boolean(v)) {
                out->kind = CELL_INT;
                out->i = json_is_true(v);
                return 0;
        }
        if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
                out->kind = CELL_INT;
                out->i = json_integer_value(v);
                return 0;
        }
        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                size_t len = json_string_length(v);
                if (all_blank(s, len))
                        return 0;
                for (size_t i = 0; i < 6; i++) {
                        if (strlen(yes[i]) == len && strncasecmp(s, yes[i], len) == 0) {
                                out->kind = CELL_INT;
                                out->i = 1;
                                return 0;
                        }
                        if (strlen(no[i]) == len && strncasecmp(s, no[i], len) == 0) {
                                out->kind = CELL_INT;
                                out->i = 0;
                                return 0;
                        }
                }
                return reject(rej, 1210, s, len, "Invalid boolean value '%.*s'",
                              (int)(len > 64 ? 64 : len), s);
        }
        char num[64];
        int n = scalar_text(v, num, sizeof(num));
        return reject(rej, 1210, num, (size_t)n, "Invalid boolean value '%s'", num);
}

/* Whole number (JSON integer, integral real, or a string of digits). */
static bool epoch_value(const json_t *v, int64_t *ret)
{
        if (json_is_integer(v)) {
                *ret = json_integer_value(v);
                return true;
        }
        if (json_is_real(v)) {
                double d = json_real_value(v);
                if (d != floor(d) || fabs(d) > 9.2e18)
                        return false;
                *ret = (int64_t)d;
                return true;
        }
        if (json_is_string(v)) {
                long long n;
                if (util_parse_ll(json_string_value(v), &n) < 0)
                        return false;
                *ret = n;
                return true;
        }
        return false;
}

static int to_time(const struct convert_type *t, const struct convert_opts *o, const json_t *v,
                   struct buf *scratch, struct cell *out, struct convert_reject *rej)
{
        char text[64];
        char num[64];
        int64_t secs = 0;
        uint32_t usec = 0;
        const char *s = "";
        size_t len = 0;
        if (json_is_string(v)) {
                s = json_string_value(v);
                len = json_string_length(v);
                if (all_blank(s, len))
                        return 0;
        } else {
                len = (size_t)scalar_text(v, num, sizeof(num));
                s = num;
        }
        bool epoch = t->kind != CONVERT_DATE && (o->timefmt == CONVERT_TIME_EPOCHSECS ||
                                                 o->timefmt == CONVERT_TIME_EPOCHMILLISECS);
        if (epoch) {
                int64_t e;
                /* 1e15 ms is year ~33658: far past Redshift's limit of 294276 AD
                 * only for secs, keep both within what days arithmetic handles. */
                if (!epoch_value(v, &e) || e > INT64_MAX / 1000 || e < INT64_MIN / 1000)
                        return reject(rej, 1206, s, len,
                                      "Invalid timestamp format or value [%s], Value '%.*s'",
                                      o->timefmt == CONVERT_TIME_EPOCHSECS ? "epochsecs"
                                                                          : "epochmillisecs",
                                      (int)(len > 64 ? 64 : len), s);
                if (o->timefmt == CONVERT_TIME_EPOCHMILLISECS) {
                        secs = e / 1000;
                        int64_t ms = e % 1000;
                        if (ms < 0) {
                                ms += 1000;
                                secs--;
                        }
                        usec = (uint32_t)ms * 1000;
                } else {
                        secs = e;
                }
        } else if (!json_is_string(v) ||
                   !parse_timestamp(s, len, o->timefmt == CONVERT_TIME_AUTO, &secs, &usec)) {
                if (t->kind == CONVERT_DATE)
                        return reject(rej, 1205, s, len,
                                      "Invalid Date Format - length must be 10 or more, "
                                      "Value '%.*s'",
                                      (int)(len > 64 ? 64 : len), s);
                return reject(rej, 1206, s, len,
                              "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS], "
                              "Value '%.*s'",
                              (int)(len > 64 ? 64 : len), s);
        }
        size_t n;
        if (t->kind == CONVERT_DATE) {
                /* "If the source data for a DATE column includes time
                 * information, the time component is truncated." */
                int64_t days = secs / 86400 - (secs % 86400 < 0);
                n = format_date(days, text);
        } else {
                n = convert_format_timestamp(secs, usec, text);
                if (t->kind == CONVERT_TIMESTAMPTZ) {
                        memcpy(text + n, "+00", 4);
                        n += 3;
                }
        }
        return set_text(scratch, out, text, n);
}

int convert_value(const struct convert_type *t, const struct convert_opts *o, const json_t *v,
                  struct buf *scratch, struct cell *out, struct convert_reject *rej)
{
        out->kind = CELL_NULL;
        out->text = NULL;
        out->len = 0;
        if (!v || json_is_null(v))
                return 0;
        switch (t->kind) {
        case CONVERT_VARCHAR:
                return to_varchar(t, o, v, scratch, out, rej);
        case CONVERT_SMALLINT:
        case CONVERT_INTEGER:
        case CONVERT_BIGINT:
                return to_int(t, v, out, rej);
        case CONVERT_DECIMAL:
                return to_decimal(t, o, v, scratch, out, rej);
        case CONVERT_REAL:
        case CONVERT_DOUBLE:
                return to_float(t, v, out, rej);
        case CONVERT_BOOLEAN:
                return to_bool(v, out, rej);
        case CONVERT_DATE:
        case CONVERT_TIMESTAMP:
        case CONVERT_TIMESTAMPTZ:
                return to_time(t, o, v, scratch, out, rej);
        }
        return reject(rej, 1223, "", 0, "Invalid data type");
}
