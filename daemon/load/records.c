/* records.c - record splitting on top of jv.h: jv_parse() parses one value
 * and reports how many bytes it consumed, so each record is parsed exactly
 * once, in place.
 * Line numbers are counted incrementally (each byte is scanned once).
 * See records.h. */
#include "records.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void records_init(struct records *r, struct jv_doc *doc, const char *buf, size_t len)
{
        r->doc = doc;
        r->buf = buf;
        r->len = len;
        r->pos = 0;
        r->line = 1;
        /* a UTF-8 byte order mark before the first record */
        if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
                r->pos = 3;
}

static uint64_t count_lines(const char *p, size_t n)
{
        uint64_t lines = 0;
        const char *end = p + n;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                        break;
                lines++;
                p = nl + 1;
        }
        return lines;
}

/* Moves pos to to, keeping line up to date. */
static void advance(struct records *r, size_t to)
{
        r->line += count_lines(r->buf + r->pos, to - r->pos);
        r->pos = to;
}

static bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* After a syntax error at byte at: the start of the next line whose first
 * non-blank byte can start an object or array, or the end. */
static size_t resync(const struct records *r, size_t at)
{
        size_t p = at;
        for (;;) {
                const char *nl = memchr(r->buf + p, '\n', r->len - p);
                if (!nl)
                        return r->len;
                p = (size_t)(nl - r->buf) + 1;
                size_t q = p;
                while (q < r->len && (r->buf[q] == ' ' || r->buf[q] == '\t'))
                        q++;
                if (q < r->len && (r->buf[q] == '{' || r->buf[q] == '['))
                        return p;
        }
}

int records_next(struct records *r, struct records_item *it)
{
        size_t p = r->pos;
        while (p < r->len && is_ws(r->buf[p]))
                p++;
        advance(r, p);
        if (r->pos >= r->len)
                return 0;

        memset(it, 0, sizeof(*it));
        it->offset = r->pos;
        it->line = r->line;
        struct jv_result res;
        const struct jv *v = jv_parse(r->doc, r->buf + r->pos, r->len - r->pos, &res);
        if (v) {
                size_t used = res.pos ? res.pos : 1; /* never loop forever */
                it->value = v;
                it->len = used;
                advance(r, r->pos + used);
                return 1;
        }
        if (res.error == JV_ERR_NOMEM)
                return -ENOMEM;
        it->err_code = res.error == JV_ERR_UTF8 ? 1220 : 1216;
        size_t at = r->pos + res.pos;
        if (at > r->len)
                at = r->len;
        it->err_line = r->line + count_lines(r->buf + r->pos, at - r->pos);
        if (res.error == JV_ERR_TRUNCATED)
                snprintf(it->err, sizeof(it->err), "truncated JSON record: %.120s", res.what);
        else
                snprintf(it->err, sizeof(it->err), "invalid JSON: %.120s", res.what);
        size_t next = resync(r, at > r->pos ? at - 1 : r->pos);
        it->len = next - r->pos;
        advance(r, next);
        return 1;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
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
        if (n < len)
                return 0;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
        return len;
}

size_t records_fix_utf8(char *buf, size_t len, char repl)
{
        unsigned char *s = (unsigned char *)buf;
        size_t fixed = 0;
        size_t i = 0;
        while (i < len) {
                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                size_t n = utf8_seq(s + i, len - i);
                if (n) {
                        i += n;
                        continue;
                }
                s[i++] = (unsigned char)repl;
                fixed++;
        }
        return fixed;
}
