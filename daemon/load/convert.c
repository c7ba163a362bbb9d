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

/* ---- TIMEFORMAT and DATEFORMAT 'auto' ------------------------------------ */

/* "Using automatic recognition with DATEFORMAT and TIMEFORMAT"
 * (https://docs.aws.amazon.com/redshift/latest/dg/automatic-recognition.html)
 * lists what 'auto' reads besides ISO dates and timestamps:
 *
 *   ISO 8601                    2019-02-11T05:09:12.195Z
 *   Julian                      J2451187
 *   YYYYMMDD HHMISS             19960108 040809
 *   YYMMDD HHMISS               960108 040809
 *   YYYY.DDD                    1996.008
 *   YYYY-MM-DD HH:MI:SS.SSS     1996-01-08 04:05:06.789
 *   DD Mon HH:MI:SS YYYY TZ     17 Dec 07:37:16 1997 PST
 *   MM/DD/YYYY HH:MI:SS.SS TZ   12/17/1997 07:37:16.00 PST
 *   YYYY-MM-DD HH:MI:SS+/-TZ    1997-12-17 07:37:16-08
 *   DD.MM.YYYY HH:MI:SS TZ      12.17.1997 07:37:16.00 PST
 *   BC                          Jan-08-95 BC            (not here: see README)
 *
 * The page's DD.MM.YYYY example is month first (12.17): the two numbers are
 * read month first, as DateStyle MDY does, unless the first is over 12.  A
 * zone (Z, +HH, -HH:MM, +HHMM, or a name with a fixed offset: UTC, GMT,
 * PST, PDT, MST, MDT, CST, CDT, EST, EDT) moves a TIMESTAMPTZ value to UTC;
 * a TIMESTAMP or DATE column keeps the wall-clock time and drops the zone. */

struct cur {
        const char *s, *end;
};

static void ws(struct cur *c)
{
        while (c->s < c->end && isspace((unsigned char)*c->s))
                c->s++;
}

static bool lit(struct cur *c, char ch)
{
        if (c->s < c->end && *c->s == ch) {
                c->s++;
                return true;
        }
        return false;
}

/* 1 to max digits. */
static bool some_digits(struct cur *c, int max, int *ret, int *n)
{
        int v = 0, k = 0;
        while (k < max && c->s < c->end && isdigit((unsigned char)*c->s)) {
                v = v * 10 + (*c->s - '0');
                c->s++;
                k++;
        }
        if (k == 0)
                return false;
        *ret = v;
        if (n)
                *n = k;
        return true;
}

static bool fraction(struct cur *c, uint32_t *us)
{
        *us = 0;
        if (!lit(c, '.'))
                return true;
        int nd = 0;
        while (c->s < c->end && isdigit((unsigned char)*c->s)) {
                if (nd < 6)
                        *us = *us * 10 + (uint32_t)(*c->s - '0');
                nd++;
                c->s++;
        }
        if (nd == 0)
                return false;
        for (; nd < 6; nd++)
                *us *= 10;
        return true;
}

/* HH:MI[:SS[.f]] */
static bool clock_colons(struct cur *c, int *secs, uint32_t *us)
{
        int h, mi, sec = 0;
        if (!digits(&c->s, c->end, 2, &h) || !lit(c, ':') || !digits(&c->s, c->end, 2, &mi))
                return false;
        *us = 0;
        if (lit(c, ':') && (!digits(&c->s, c->end, 2, &sec) || !fraction(c, us)))
                return false;
        if (h > 23 || mi > 59 || sec > 59)
                return false;
        *secs = h * 3600 + mi * 60 + sec;
        return true;
}

/* A zone, or nothing.  *off in seconds east of UTC. */
static bool zone(struct cur *c, int *off)
{
        static const struct {
                const char *name;
                int hours;
        } names[] = { { "UTC", 0 },  { "GMT", 0 },  { "PST", -8 }, { "PDT", -7 },
                      { "MST", -7 }, { "MDT", -6 }, { "CST", -6 }, { "CDT", -5 },
                      { "EST", -5 }, { "EDT", -4 } };
        *off = 0;
        ws(c);
        if (c->s >= c->end)
                return true;
        if (lit(c, 'Z'))
                return true;
        if (*c->s == '+' || *c->s == '-') {
                int sign = *c->s == '-' ? -1 : 1;
                c->s++;
                int h, m = 0, n;
                if (!some_digits(c, 4, &h, &n))
                        return false;
                if (n == 4) {
                        m = h % 100;
                        h /= 100;
                } else if (n > 2) {
                        return false;
                } else if (lit(c, ':') && !digits(&c->s, c->end, 2, &m)) {
                        return false;
                }
                if (h > 15 || m > 59)
                        return false;
                *off = sign * (h * 3600 + m * 60);
                return true;
        }
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                size_t n = strlen(names[i].name);
                if ((size_t)(c->end - c->s) >= n && strncasecmp(c->s, names[i].name, n) == 0 &&
                    (c->s + n == c->end || !isalpha((unsigned char)c->s[n]))) {
                        c->s += n;
                        *off = names[i].hours * 3600;
                        return true;
                }
        }
        return false;
}

static bool civil(int y, int m, int d, int64_t *days)
{
        if (m < 1 || m > 12 || d < 1 || (unsigned)d > month_days(y, (unsigned)m))
                return false;
        *days = convert_days_from_civil(y, (unsigned)m, (unsigned)d);
        return true;
}

static int month_of(struct cur *c)
{
        static const char *const abbr[] = { "jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec" };
        if (c->end - c->s < 3)
                return 0;
        for (int i = 0; i < 12; i++) {
                if (strncasecmp(c->s, abbr[i], 3) == 0) {
                        c->s += 3;
                        while (c->s < c->end && isalpha((unsigned char)*c->s))
                                c->s++; /* the full name */
                        return i + 1;
                }
        }
        return 0;
}

/* The date part of one of the forms above; *time_inline set when the form
 * carries its clock inside (DD Mon HH:MI:SS YYYY). */
static bool auto_date(struct cur *c, int64_t *days, int *tsecs, uint32_t *us, bool *time_inline)
{
        struct cur save = *c;
        int a, b, y, n;
        *time_inline = false;
        if (lit(c, 'J') || lit(c, 'j')) { /* Julian day number */
                int64_t jd = 0;
                int k = 0;
                while (c->s < c->end && isdigit((unsigned char)*c->s) && k < 9) {
                        jd = jd * 10 + (*c->s - '0');
                        c->s++;
                        k++;
                }
                if (k == 0)
                        return false;
                *days = jd - 2440588; /* J2440588 is 1970-01-01 */
                return true;
        }
        if (isalpha((unsigned char)*c->s))
                return false;
        if (!some_digits(c, 8, &a, &n))
                return false;
        if (n == 8 || n == 6) { /* YYYYMMDD, YYMMDD */
                int yy = a / 10000;
                if (n == 6)
                        yy += yy < 70 ? 2000 : 1900;
                return civil(yy, a / 100 % 100, a % 100, days);
        }
        if (n == 4 && lit(c, '-')) { /* YYYY-MM-DD */
                *c = save;
                return parse_date(&c->s, c->end, days);
        }
        if (n == 4 && lit(c, '.')) { /* YYYY.DDD */
                int doy;
                if (!digits(&c->s, c->end, 3, &doy) || doy < 1 || doy > (is_leap(a) ? 366 : 365))
                        return false;
                *days = convert_days_from_civil(a, 1, 1) + doy - 1;
                return true;
        }
        if (n <= 2 && (lit(c, '/') || lit(c, '.'))) { /* MM/DD/YYYY, MM.DD.YYYY */
                char sep = c->s[-1];
                if (!some_digits(c, 2, &b, NULL) || !lit(c, sep) || !digits(&c->s, c->end, 4, &y))
                        return false;
                return a > 12 ? civil(y, b, a, days) : civil(y, a, b, days);
        }
        if (n <= 2 && c->s < c->end && *c->s == ' ') { /* DD Mon HH:MI:SS YYYY */
                ws(c);
                int m = month_of(c);
                if (!m)
                        return false;
                ws(c);
                if (!clock_colons(c, tsecs, us))
                        return false;
                ws(c);
                if (!digits(&c->s, c->end, 4, &y))
                        return false;
                *time_inline = true;
                return civil(y, m, a, days);
        }
        return false;
}

static bool parse_auto(const char *s, size_t len, bool to_utc, int64_t *secs, uint32_t *usec)
{
        struct cur c = { s, s + len };
        ws(&c);
        while (c.end > c.s && isspace((unsigned char)c.end[-1]))
                c.end--;
        if (c.s >= c.end)
                return false;
        int64_t days;
        int t = 0, off = 0;
        uint32_t us = 0;
        bool inline_time;
        if (!auto_date(&c, &days, &t, &us, &inline_time))
                return false;
        if (!inline_time && (lit(&c, 'T') || lit(&c, ' '))) {
                ws(&c);
                const char *at = c.s;
                int h, mi, sec;
                if (c.end - at >= 6 && isdigit((unsigned char)at[2]) &&
                    digits(&c.s, c.end, 2, &h) && digits(&c.s, c.end, 2, &mi) &&
                    digits(&c.s, c.end, 2, &sec)) { /* HHMISS */
                        if (h > 23 || mi > 59 || sec > 59 || !fraction(&c, &us))
                                return false;
                        t = h * 3600 + mi * 60 + sec;
                } else {
                        c.s = at;
                        if (!clock_colons(&c, &t, &us))
                                return false;
                }
        }
        if (!zone(&c, &off))
                return false;
        ws(&c);
        if (c.s != c.end)
                return false;
        *secs = days * 86400 + t - (to_utc ? off : 0);
        *usec = us;
        return true;
}

/* ---- values ------------------------------------------------------------- */

/* ---- DATEFORMAT and TIMEFORMAT strings ---------------------------------- */

/* "DATEFORMAT and TIMEFORMAT strings": YY, YYYY, MM, MON (abbreviated or
 * full month name), DD, HH or HH24, HH12, MI, SS (with an optional fraction
 * down to microseconds), AM or PM; any other character is a separator that
 * must be there as written.  MS and US name exactly 3 and 6 fraction digits. */
enum tf_tok { TF_LIT, TF_YYYY, TF_YY, TF_MM, TF_MON, TF_DD, TF_HH24, TF_HH12, TF_MI, TF_SS,
              TF_AMPM, TF_MS, TF_US };

struct convert_timefmt {
        size_t n;
        struct {
                enum tf_tok tok;
                char lit;
        } t[64];
        bool has_time;
        char text[128];
};

int convert_timefmt_compile(const char *fmt, struct convert_timefmt **ret, char *err,
                            size_t errlen)
{
        static const struct {
                const char *w;
                enum tf_tok t;
        } words[] = { { "YYYY", TF_YYYY }, { "YY", TF_YY },     { "MONTH", TF_MON },
                      { "MON", TF_MON },   { "MM", TF_MM },     { "DD", TF_DD },
                      { "HH24", TF_HH24 }, { "HH12", TF_HH12 }, { "HH", TF_HH24 },
                      { "MI", TF_MI },     { "SS", TF_SS },     { "AM", TF_AMPM },
                      { "PM", TF_AMPM },   { "MS", TF_MS },     { "US", TF_US } };
        struct convert_timefmt *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        snprintf(f->text, sizeof(f->text), "%s", fmt);
        const char *p = fmt;
        while (*p) {
                if (f->n == 64) {
                        snprintf(err, errlen, "format string '%s' is too long", fmt);
                        free(f);
                        return -EINVAL;
                }
                size_t i;
                for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                        size_t wl = strlen(words[i].w);
                        if (strncasecmp(p, words[i].w, wl) == 0) {
                                f->t[f->n].tok = words[i].t;
                                f->n++;
                                p += wl;
                                if (words[i].t >= TF_HH24)
                                        f->has_time = true;
                                break;
                        }
                }
                if (i < sizeof(words) / sizeof(words[0]))
                        continue;
                if (isalpha((unsigned char)*p)) {
                        snprintf(err, errlen,
                                 "format string '%s': '%c' at position %zu is not a datepart "
                                 "or timepart (YY, YYYY, MM, MON, DD, HH, HH24, HH12, MI, SS, "
                                 "AM, PM)",
                                 fmt, *p, (size_t)(p - fmt) + 1);
                        free(f);
                        return -EINVAL;
                }
                f->t[f->n].tok = TF_LIT;
                f->t[f->n].lit = *p++;
                f->n++;
        }
        *ret = f;
        return 0;
}

void convert_timefmt_free(struct convert_timefmt *f)
{
        free(f);
}

static bool num_upto(const char **s, const char *end, int max, int *ret)
{
        int v = 0, n = 0;
        while (*s < end && n < max && isdigit((unsigned char)**s)) {
                v = v * 10 + (**s - '0');
                (*s)++;
                n++;
        }
        *ret = v;
        return n > 0;
}

static bool frac_digits(const char **s, const char *end, int max, uint32_t *us)
{
        uint32_t v = 0;
        int nd = 0;
        while (*s < end && isdigit((unsigned char)**s)) {
                if (nd < 6)
                        v = v * 10 + (uint32_t)(**s - '0');
                nd++;
                (*s)++;
                if (max && nd == max)
                        break;
        }
        if (nd == 0)
                return false;
        for (int k = nd; k < 6; k++)
                v *= 10;
        *us = v;
        return true;
}

static bool parse_with_format(const struct convert_timefmt *f, const char *s, size_t len,
                              int64_t *secs, uint32_t *usec)
{
        static const char *const months[] = { "january", "february", "march",     "april",
                                               "may",     "june",     "july",      "august",
                                               "september", "october", "november", "december" };
        const char *end = s + len;
        while (s < end && isspace((unsigned char)*s))
                s++;
        while (end > s && isspace((unsigned char)end[-1]))
                end--;
        int y = 1970, m = 1, d = 1, h = 0, mi = 0, sec = 0, pm = -1;
        bool h12 = false;
        uint32_t us = 0;
        for (size_t i = 0; i < f->n; i++) {
                int v;
                switch (f->t[i].tok) {
                case TF_LIT:
                        if (isspace((unsigned char)f->t[i].lit)) {
                                if (s >= end || !isspace((unsigned char)*s))
                                        return false;
                                while (s < end && isspace((unsigned char)*s))
                                        s++;
                                break;
                        }
                        if (s >= end || *s != f->t[i].lit)
                                return false;
                        s++;
                        break;
                case TF_YYYY:
                        if (!num_upto(&s, end, 4, &y))
                                return false;
                        break;
                case TF_YY:
                        if (!num_upto(&s, end, 2, &v))
                                return false;
                        /* two-digit years: 00-69 are 20xx, 70-99 are 19xx */
                        y = v < 70 ? 2000 + v : 1900 + v;
                        break;
                case TF_MM:
                        if (!num_upto(&s, end, 2, &m))
                                return false;
                        break;
                case TF_MON: {
                        size_t k;
                        for (k = 0; k < 12; k++) {
                                size_t fl = strlen(months[k]);
                                if ((size_t)(end - s) >= fl &&
                                    strncasecmp(s, months[k], fl) == 0) {
                                        s += fl;
                                        break;
                                }
                                if ((size_t)(end - s) >= 3 && strncasecmp(s, months[k], 3) == 0) {
                                        s += 3;
                                        break;
                                }
                        }
                        if (k == 12)
                                return false;
                        m = (int)k + 1;
                        break;
                }
                case TF_DD:
                        if (!num_upto(&s, end, 2, &d))
                                return false;
                        break;
                case TF_HH24:
                        if (!num_upto(&s, end, 2, &h))
                                return false;
                        break;
                case TF_HH12:
                        if (!num_upto(&s, end, 2, &h) || h < 1 || h > 12)
                                return false;
                        h12 = true;
                        break;
                case TF_MI:
                        if (!num_upto(&s, end, 2, &mi))
                                return false;
                        break;
                case TF_SS:
                        if (!num_upto(&s, end, 2, &sec))
                                return false;
                        /* "The seconds (SS) field also supports fractional
                         * seconds up to a microsecond level of detail." */
                        if (s + 1 < end && *s == '.' && isdigit((unsigned char)s[1]) &&
                            !(i + 1 < f->n && f->t[i + 1].tok == TF_LIT &&
                              f->t[i + 1].lit == '.')) {
                                s++;
                                frac_digits(&s, end, 0, &us);
                        }
                        break;
                case TF_MS:
                        if (!frac_digits(&s, end, 3, &us))
                                return false;
                        break;
                case TF_US:
                        if (!frac_digits(&s, end, 6, &us))
                                return false;
                        break;
                case TF_AMPM:
                        if (end - s < 2)
                                return false;
                        if (strncasecmp(s, "AM", 2) == 0)
                                pm = 0;
                        else if (strncasecmp(s, "PM", 2) == 0)
                                pm = 1;
                        else
                                return false;
                        s += 2;
                        break;
                }
        }
        if (s != end)
                return false;
        if (h12 || pm >= 0) {
                if (h < 1 || h > 12)
                        return false;
                h = h % 12 + (pm == 1 ? 12 : 0);
        }
        if (m < 1 || m > 12 || d < 1 || (unsigned)d > month_days(y, (unsigned)m) || h > 23 ||
            mi > 59 || sec > 59)
                return false;
        *secs = convert_days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + h * 3600 +
                mi * 60 + sec;
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
        size_t n = util_utf8_cut(value, vlen, sizeof(rej->value) - 1);
        memcpy(rej->value, value, n);
        rej->value[n] = '\0';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rej->reason, sizeof(rej->reason), fmt, ap);
        va_end(ap);
        util_utf8_trim(rej->reason);
        return 1;
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

/* The text of a value for messages: the string, the number's token, ... */
static void value_text(const struct jv *v, const char **s, size_t *len)
{
        *s = v->s ? v->s : "";
        *len = v->s ? v->len : 0;
}

/* At most 64 bytes of a value in a reason, never half a character. */
#define SHOW(s, len) ((int)util_utf8_cut((s), (len), 64))

/* Bytes of the character at s[p] (of len): the whole of a multi-byte one,
 * so a reason shows 'é', not its first byte; 1 for a byte that is not
 * valid UTF-8. */
static int char_at(const char *s, size_t p, size_t len)
{
        if (p >= len)
                return 0;
        size_t n = util_utf8_seq((const unsigned char *)s + p, len - p);
        return n ? (int)n : 1;
}

static int to_varchar(const struct convert_type *t, const struct convert_opts *o,
                      const struct jv *v, struct buf *scratch, struct cell *out,
                      struct convert_reject *rej)
{
        const char *s;
        size_t len;
        if (v->type == JV_STRING) {
                s = v->s;
                len = v->len;
                if (len == 0 && o->emptyasnull)
                        return 0;
                if (o->blanksasnull && all_blank(s, len))
                        return 0;
        } else if (v->type == JV_OBJECT || v->type == JV_ARRAY) {
                /* "COPY from JSON format": a nested object or array in a
                 * CHAR or VARCHAR column loads as its JSON text (compact). */
                scratch->len = 0;
                if (scratch->cap < v->len + 1) {
                        char *nd = realloc(scratch->data, v->len + 1);
                        if (!nd)
                                return -ENOMEM;
                        scratch->data = nd;
                        scratch->cap = v->len + 1;
                }
                len = jv_compact(v, scratch->data);
                scratch->len = len;
                s = scratch->data;
        } else {
                /* numbers keep the text the JSON wrote; true/false likewise */
                value_text(v, &s, &len);
        }
        if (len > t->max_bytes) {
                if (!o->truncatecolumns)
                        return reject(rej, 1204, s, len, "String length exceeds DDL length");
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
                              char_at(s, i, len), s + (i < len ? i : 0), i, t->name);
        uint64_t v = 0;
        bool overflow = false;
        for (size_t p = i; p < end; p++) {
                if (!isdigit((unsigned char)s[p]))
                        return reject(rej, 1207, s, len,
                                      "Invalid digit, Value '%.*s', Pos %zu, Type: %s",
                                      char_at(s, p, len), s + p, p, t->name);
                if (v > (UINT64_MAX - 9) / 10)
                        overflow = true;
                else
                        v = v * 10 + (uint64_t)(s[p] - '0');
        }
        int64_t lo, hi;
        int_range(t->kind, &lo, &hi);
        if (overflow || (!neg && v > (uint64_t)hi) || (neg && v > (uint64_t)hi + 1))
                return reject(rej, 1222, s, len, "Overflow, Value '%.*s', Type: %s", SHOW(s, len),
                              s, t->name);
        int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
        if (r < lo)
                return reject(rej, 1222, s, len, "Overflow, Value '%.*s', Type: %s", SHOW(s, len),
                              s, t->name);
        *ret = r;
        return 0;
}

static int to_int(const struct convert_type *t, const struct jv *v, struct cell *out,
                  struct convert_reject *rej)
{
        int64_t lo, hi;
        int_range(t->kind, &lo, &hi);
        const char *s = v->s;
        size_t len = v->len;
        if (v->type == JV_NUMBER && v->integer) {
                int64_t i = 0;
                /* fast path: short tokens cannot overflow a BIGINT */
                if (len < 19 && t->kind == CONVERT_BIGINT) {
                        size_t k = s[0] == '-';
                        int64_t a = 0;
                        for (; k < len; k++)
                                a = a * 10 + (s[k] - '0');
                        i = s[0] == '-' ? -a : a;
                } else {
                        int r = int_from_text(t, s, len, &i, rej);
                        if (r)
                                return r;
                }
                out->kind = CELL_INT;
                out->i = i;
                return 0;
        }
        if (v->type == JV_NUMBER) {
                /* A number with a fraction or an exponent: an integral value
                 * in range (1.0, 1e3) loads; a fraction is an invalid digit
                 * (the '.' of its text), as for Redshift. */
                char num[80];
                size_t n = len < sizeof(num) - 1 ? len : sizeof(num) - 1;
                memcpy(num, s, n);
                num[n] = '\0';
                double d = strtod(num, NULL);
                if (d != floor(d) || !isfinite(d)) {
                        const char *dot = strpbrk(num, ".eE");
                        size_t pos = dot ? (size_t)(dot - num) : 0;
                        return reject(rej, 1207, s, len,
                                      "Invalid digit, Value '%c', Pos %zu, Type: %s",
                                      dot ? *dot : num[0], pos, t->name);
                }
                if (d < (double)lo || d >= -(double)lo || (int64_t)d > hi)
                        return reject(rej, 1222, s, len, "Overflow, Value '%s', Type: %s", num,
                                      t->name);
                out->kind = CELL_INT;
                out->i = (int64_t)d;
                return 0;
        }
        if (v->type == JV_STRING) {
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
        if (v->type == JV_TRUE || v->type == JV_FALSE) {
                /* Redshift loads JSON true/false into integer columns as 1/0. */
                out->kind = CELL_INT;
                out->i = v->type == JV_TRUE;
                return 0;
        }
        /* object or array */
        return reject(rej, 1207, "", 0, "Invalid digit, Value '%c', Pos 0, Type: %s",
                      v->type == JV_OBJECT ? '{' : '[', t->name);
}

static int to_float(const struct convert_type *t, const struct jv *v, struct cell *out,
                    struct convert_reject *rej)
{
        double d;
        if (v->type == JV_NUMBER || v->type == JV_STRING) {
                const char *s = v->s;
                size_t len = v->len;
                if (v->type == JV_STRING && all_blank(s, len)) /* see to_int */
                        return 0;
                char tmp[128];
                char *heap = NULL;
                const char *z = tmp;
                if (len < sizeof(tmp)) {
                        memcpy(tmp, s, len);
                        tmp[len] = '\0';
                } else {
                        heap = strndup(s, len);
                        if (!heap)
                                return -ENOMEM;
                        z = heap;
                }
                char *end;
                errno = 0;
                d = strtod(z, &end);
                int e = errno;
                while (isspace((unsigned char)*end))
                        end++;
                bool bad = end == z || (size_t)(end - z) != len;
                /* strtod reads hex floats, "inf" and "nan"; JSON numbers are
                 * decimal; strings may say NaN/Infinity as Redshift allows */
                for (size_t k = 0; !bad && k < len; k++)
                        if (z[k] == 'x' || z[k] == 'X')
                                bad = true;
                free(heap);
                if (bad)
                        return reject(rej, 1208, s, len, "Invalid float value '%.*s', Type: %s",
                                      SHOW(s, len), s, t->name);
                if (e == ERANGE && fabs(d) > 1)
                        return reject(rej, 1204, s, len, "Overflow, Value '%.*s', Type: %s",
                                      SHOW(s, len), s, t->name);
        } else if (v->type == JV_TRUE || v->type == JV_FALSE) {
                d = v->type == JV_TRUE ? 1 : 0;
        } else {
                return reject(rej, 1208, "", 0, "Invalid float value, Type: %s", t->name);
        }
        if (t->kind == CONVERT_REAL) {
                if (isfinite(d) && fabs(d) > 3.40282347e38) {
                        const char *s;
                        size_t len;
                        value_text(v, &s, &len);
                        return reject(rej, 1204, s, len, "Overflow, Value '%.*s', Type: %s",
                                      SHOW(s, len), s, t->name);
                }
                d = (float)d;
        }
        out->kind = CELL_REAL;
        out->r = d;
        return 0;
}

/* DECIMAL(p,s): text with exactly s fraction digits; excess digits are
 * truncated, or rounded half away from zero with ROUNDEC ("Data conversion
 * parameters", ROUNDEC); more than p-s integer digits is an overflow.  A
 * JSON number is read from its own text, digit for digit. */
static int to_decimal(const struct convert_type *t, const struct convert_opts *o,
                      const struct jv *v, struct buf *scratch, struct cell *out,
                      struct convert_reject *rej)
{
        char num[128];
        const char *s;
        size_t len;
        if (v->type == JV_STRING) {
                s = v->s;
                len = v->len;
                if (all_blank(s, len))
                        return 0;
        } else if (v->type == JV_NUMBER && !memchr(v->s, 'e', v->len) &&
                   !memchr(v->s, 'E', v->len)) {
                s = v->s;
                len = v->len;
        } else if (v->type == JV_NUMBER) {
                char tok[80];
                size_t tl = v->len < sizeof(tok) - 1 ? v->len : sizeof(tok) - 1;
                memcpy(tok, v->s, tl);
                tok[tl] = '\0';
                double d = strtod(tok, NULL);
                if (!isfinite(d))
                        return reject(rej, 1204, v->s, v->len, "Overflow, Type: Decimal");
                /* fixed notation, enough digits for the scale plus one to round */
                int n = snprintf(num, sizeof(num), "%.*f", t->scale + 1 > 30 ? 30 : t->scale + 1,
                                 d);
                if (n < 0 || (size_t)n >= sizeof(num))
                        return reject(rej, 1204, v->s, v->len, "Overflow, Type: Decimal");
                len = (size_t)n;
                s = num;
        } else {
                const char *vs;
                size_t vl;
                value_text(v, &vs, &vl);
                return reject(rej, 1207, vs, vl,
                              "Invalid digit, Value '%.*s', Pos 0, Type: Decimal",
                              vl ? char_at(vs, 0, vl) : 1, vl ? vs : " ");
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
                return reject(rej, 1207, s, len,
                              "Invalid digit, Value '%.*s', Pos %zu, Type: Decimal",
                              i < len ? char_at(s, i, len) : 1, i < len ? s + i : " ", i);
        while (int_start + 1 < int_end && s[int_start] == '0')
                int_start++;
        if (int_end - int_start > 40)
                return reject(rej, 1204, s, len,
                              "Numeric data overflow (result precision), Value '%.*s', "
                              "Type: Decimal(%d,%d)",
                              SHOW(s, len), s, t->precision, t->scale);
        /* digits: integer part then exactly scale fraction digits */
        char d[128];
        size_t nd = 0;
        for (size_t k = int_start; k < int_end; k++)
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
                              SHOW(s, len), s, t->precision, t->scale);
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

static int to_bool(const struct jv *v, struct cell *out, struct convert_reject *rej)
{
        static const char *const yes[] = { "t", "true", "y", "yes", "1", "on" };
        static const char *const no[] = { "f", "false", "n", "no", "0", "off" };
        if (v->type == JV_TRUE || v->type == JV_FALSE) {
                out->kind = CELL_INT;
                out->i = v->type == JV_TRUE;
                return 0;
        }
        if (v->type == JV_NUMBER && v->integer && v->len == 1 && (v->s[0] == '0' || v->s[0] == '1')) {
                out->kind = CELL_INT;
                out->i = v->s[0] == '1';
                return 0;
        }
        if (v->type == JV_STRING) {
                const char *s = v->s;
                size_t len = v->len;
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
                return reject(rej, 1210, s, len, "Invalid boolean value '%.*s'", SHOW(s, len), s);
        }
        const char *s;
        size_t len;
        value_text(v, &s, &len);
        return reject(rej, 1210, s, len, "Invalid boolean value '%.*s'", SHOW(s, len), s);
}

/* Whole number (a JSON integer, an integral real, or a string of digits). */
static bool epoch_value(const struct jv *v, int64_t *ret)
{
        if (v->type != JV_NUMBER && v->type != JV_STRING)
                return false;
        char tok[80];
        if (v->len >= sizeof(tok))
                return false;
        memcpy(tok, v->s, v->len);
        tok[v->len] = '\0';
        long long n;
        if (util_parse_ll(tok, &n) == 0) {
                *ret = n;
                return true;
        }
        if (v->type != JV_NUMBER)
                return false;
        double d = strtod(tok, NULL);
        if (d != floor(d) || fabs(d) > 9.2e18)
                return false;
        *ret = (int64_t)d;
        return true;
}

static int to_time(const struct convert_type *t, const struct convert_opts *o,
                   const struct jv *v, struct buf *scratch, struct cell *out,
                   struct convert_reject *rej)
{
        char text[64];
        int64_t secs = 0;
        uint32_t usec = 0;
        const char *s;
        size_t len;
        value_text(v, &s, &len);
        if (v->type == JV_STRING && all_blank(s, len))
                return 0;
        bool date = t->kind == CONVERT_DATE;
        const struct convert_timefmt *fmt = date ? o->dateformat : o->timeformat;
        bool epoch = !date && (o->timefmt == CONVERT_TIME_EPOCHSECS ||
                               o->timefmt == CONVERT_TIME_EPOCHMILLISECS);
        if (epoch) {
                int64_t e;
                /* keep within what the days arithmetic handles */
                if (!epoch_value(v, &e) || e > INT64_MAX / 1000 || e < INT64_MIN / 1000)
                        return reject(rej, 1206, s, len,
                                      "Invalid timestamp format or value [%s], Value '%.*s'",
                                      o->timefmt == CONVERT_TIME_EPOCHSECS ? "epochsecs"
                                                                           : "epochmillisecs",
                                      SHOW(s, len), s);
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
        } else {
                bool ok = v->type == JV_STRING;
                if (ok && fmt)
                        ok = parse_with_format(fmt, s, len, &secs, &usec);
                else if (ok && (date ? o->dateauto : o->timefmt == CONVERT_TIME_AUTO))
                        ok = parse_auto(s, len, t->kind == CONVERT_TIMESTAMPTZ, &secs, &usec);
                else if (ok)
                        ok = parse_timestamp(s, len, false, &secs, &usec);
                if (!ok) {
                        if (date)
                                return reject(rej, 1205, s, len,
                                              "Invalid Date Format - length must be 10 or more, "
                                              "Value '%.*s' [%s]",
                                              SHOW(s, len), s, fmt ? fmt->text : "YYYY-MM-DD");
                        return reject(rej, 1206, s, len,
                                      "Invalid timestamp format or value [%s], Value '%.*s'",
                                      fmt ? fmt->text : "YYYY-MM-DD HH24:MI:SS", SHOW(s, len), s);
                }
        }
        size_t n;
        if (date) {
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

int convert_value(const struct convert_type *t, const struct convert_opts *o, const struct jv *v,
                  struct buf *scratch, struct cell *out, struct convert_reject *rej)
{
        out->kind = CELL_NULL;
        out->text = NULL;
        out->len = 0;
        if (!v || v->type == JV_NULL)
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
