/* records.c - record splitting on top of jv.h: jv_parse() parses one value
 * and reports how many bytes it consumed, so each record is parsed exactly
 * once, in place (a record cut by the end of a streamed window is parsed
 * again once the rest is there).  jv_parse() only fails at a byte that is
 * present and wrong, or with JV_ERR_TRUNCATED at the end of its input, so a
 * window that ends inside a record asks for more bytes (-EAGAIN) and every
 * other answer is the one the whole text would give.
 * Line numbers are counted incrementally (each byte is scanned once).
 * See records.h. */
#include "records.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char bom[3] = { '\xEF', '\xBB', '\xBF' };

void records_init(struct records *r, struct jv_doc *doc, const char *buf, size_t len)
{
        memset(r, 0, sizeof(*r));
        r->doc = doc;
        r->buf = buf;
        r->len = len;
        r->line = 1;
        r->max = RECORDS_MAX_DEFAULT;
        r->eof = true;
        r->repl = -1;
}

void records_init_stream(struct records *r, struct jv_doc *doc, size_t max, int repl)
{
        memset(r, 0, sizeof(*r));
        r->doc = doc;
        r->buf = "";
        r->line = 1;
        r->max = max ? max : RECORDS_MAX_DEFAULT;
        r->stream = true;
        r->repl = repl;
}

void records_free(struct records *r)
{
        if (r->stream)
                buf_free(&r->win);
        memset(&r->win, 0, sizeof(r->win));
        r->buf = "";
        r->len = r->pos = 0;
}

size_t records_pending(const struct records *r)
{
        return r->stream ? r->win.len - r->pos : 0;
}

char *records_space(struct records *r, size_t want, size_t *room)
{
        struct buf *w = &r->win;
        if (r->pos > 0) { /* drop what was consumed */
                memmove(w->data, w->data + r->pos, w->len - r->pos);
                w->len -= r->pos;
                r->len -= r->pos;
                r->base += r->pos;
                r->pos = 0;
        }
        if (w->cap - w->len < want) {
                size_t cap = w->cap ? w->cap : 4096;
                while (cap - w->len < want)
                        cap *= 2;
                char *d = realloc(w->data, cap);
                if (!d)
                        return NULL;
                w->data = d;
                w->cap = cap;
        }
        r->buf = w->data;
        *room = w->cap - w->len;
        return w->data + w->len;
}

static size_t utf8_lead_len(unsigned char c)
{
        if (c >= 0xC2 && c <= 0xDF)
                return 2;
        if (c >= 0xE0 && c <= 0xEF)
                return 3;
        if (c >= 0xF0 && c <= 0xF4)
                return 4;
        return 0;
}

/* ACCEPTINVCHARS on the bytes [len, upto) of the window; returns where the
 * checked bytes end: before a UTF-8 sequence the window cuts, unless final. */
static size_t fix_new_bytes(struct records *r, size_t upto, bool final)
{
        unsigned char *s = (unsigned char *)r->win.data;
        size_t end = upto;
        if (!final) {
                for (size_t i = upto; i > r->len && i + 3 >= upto; i--) {
                        unsigned char c = s[i - 1];
                        if ((c & 0xC0) == 0x80)
                                continue;
                        size_t n = utf8_lead_len(c);
                        if (n > upto - (i - 1))
                                end = i - 1;
                        break;
                }
        }
        r->fixed += records_fix_utf8(r->win.data + r->len, end - r->len, (char)r->repl);
        return end;
}

void records_commit(struct records *r, size_t n)
{
        r->win.len += n;
        r->buf = r->win.data;
        if (r->repl >= 0)
                r->len = fix_new_bytes(r, r->win.len, false);
        else
                r->len = r->win.len;
}

void records_end(struct records *r)
{
        r->eof = true;
        if (r->stream) {
                r->buf = r->win.data ? r->win.data : "";
                if (r->repl >= 0 && r->win.len > r->len)
                        r->len = fix_new_bytes(r, r->win.len, true);
                else
                        r->len = r->win.len;
        }
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

/* Keeps the bad record's bytes [pos, to) (its first RECORDS_RAW_KEEP) and
 * moves pos there. */
static void skip_to(struct records *r, size_t to)
{
        if (!r->raw_done && r->raw_len < sizeof(r->raw)) {
                size_t n = to - r->pos;
                if (n > sizeof(r->raw) - r->raw_len)
                        n = sizeof(r->raw) - r->raw_len;
                memcpy(r->raw + r->raw_len, r->buf + r->pos, n);
                r->raw_len += n;
        }
        r->pos = to;
}

/* After a bad record: finds the start of the next line whose first
 * non-blank byte can start an object or array, or the end.  1 when found
 * (pending is complete), -EAGAIN for more bytes. */
static int resync(struct records *r)
{
        size_t p = r->pos;
        for (;;) {
                if (r->skip_nl) {
                        const char *nl = memchr(r->buf + p, '\n', r->len - p);
                        if (!nl) {
                                p = r->len;
                                break;
                        }
                        if (!r->raw_done && r->line >= r->pending.err_line) {
                                /* the reject shows the bad record up to the end of
                                 * the line where it went wrong, not what follows */
                                skip_to(r, (size_t)(nl - r->buf));
                                r->raw_done = true;
                        }
                        p = (size_t)(nl - r->buf) + 1;
                        r->line++;
                        r->skip_line_start = r->base + p;
                        r->skip_nl = false;
                }
                while (p < r->len && (r->buf[p] == ' ' || r->buf[p] == '\t'))
                        p++;
                if (p == r->len)
                        break;
                if (r->buf[p] == '{' || r->buf[p] == '[') {
                        skip_to(r, p);
                        r->pending.len = (size_t)(r->skip_line_start - r->pending.offset);
                        return 1;
                }
                r->skip_nl = true;
        }
        skip_to(r, p);
        if (!r->eof)
                return -EAGAIN;
        r->pending.len = (size_t)(r->base + r->len - r->pending.offset);
        return 1;
}

static int finish_pending(struct records *r, struct records_item *it)
{
        int res = resync(r);
        if (res < 0)
                return res;
        r->skipping = false;
        *it = r->pending;
        it->first = r->items++ == 0;
        it->text = r->raw;
        it->text_len = r->raw_len < it->len ? r->raw_len : it->len;
        return 1;
}

/* A bad record starting at pos: the error at byte at (relative to the
 * window), with line err_line; splitting resumes after resync from from. */
static int bad_record(struct records *r, struct records_item *it, int code, uint64_t err_line,
                      const char *what, size_t from, bool too_large)
{
        struct records_item *p = &r->pending;
        memset(p, 0, sizeof(*p));
        p->too_large = too_large;
        p->offset = r->base + r->pos;
        p->line = r->line;
        p->err_code = code;
        p->err_line = err_line;
        snprintf(p->err, sizeof(p->err), "%s", what);
        r->raw_len = 0;
        r->raw_done = false;
        r->line += count_lines(r->buf + r->pos, from - r->pos);
        skip_to(r, from);
        r->skipping = true;
        r->skip_nl = true;
        return finish_pending(r, it);
}

static int too_large(struct records *r, struct records_item *it)
{
        char what[160];
        snprintf(what, sizeof(what),
                 "JSON record larger than the %zu-byte maximum (Redshift: 4 MB per JSON "
                 "object)", r->max);
        return bad_record(r, it, 1216, r->line, what, r->pos + r->max, true);
}

int records_next(struct records *r, struct records_item *it)
{
        if (!r->started) {
                if (r->base == 0 && r->pos == 0) {
                        if (r->len < 3 && !r->eof)
                                return -EAGAIN;
                        /* a UTF-8 byte order mark before the first record */
                        if (r->len >= 3 && memcmp(r->buf, bom, 3) == 0)
                                r->pos = 3;
                }
                r->started = true;
        }
        if (r->skipping)
                return finish_pending(r, it);

        size_t p = r->pos;
        while (p < r->len && is_ws(r->buf[p]))
                p++;
        advance(r, p);
        if (r->pos >= r->len)
                return r->eof ? 0 : -EAGAIN;

        /* never look further than one byte past the limit */
        size_t lim = r->len - r->pos;
        bool capped = false;
        if (lim > r->max) {
                lim = r->max + 1;
                capped = true;
        }
        bool whole = r->eof && !capped; /* the parser sees the true end */
        struct jv_result res;
        const struct jv *v = jv_parse(r->doc, r->buf + r->pos, lim, &res);
        if (v) {
                size_t used = res.pos ? res.pos : 1; /* never loop forever */
                if (used == lim && !whole && v->type == JV_NUMBER) {
                        if (!capped)
                                return -EAGAIN; /* more digits may follow */
                        return too_large(r, it);
                }
                if (used > r->max)
                        return too_large(r, it);
                memset(it, 0, sizeof(*it));
                it->value = v;
                it->offset = r->base + r->pos;
                it->line = r->line;
                it->len = used;
                it->text = r->buf + r->pos;
                it->text_len = used;
                it->first = r->items++ == 0;
                advance(r, r->pos + used);
                return 1;
        }
        if (res.error == JV_ERR_NOMEM)
                return -ENOMEM;
        if (res.error == JV_ERR_TRUNCATED && !whole) {
                if (!capped)
                        return -EAGAIN;
                return too_large(r, it);
        }
        int code = res.error == JV_ERR_UTF8 ? 1220 : 1216;
        size_t at = r->pos + res.pos;
        if (at > r->pos + lim)
                at = r->pos + lim;
        uint64_t err_line = r->line + count_lines(r->buf + r->pos, at - r->pos);
        char what[160];
        if (res.error == JV_ERR_TRUNCATED)
                snprintf(what, sizeof(what), "truncated JSON record: %.120s", res.what);
        else
                snprintf(what, sizeof(what), "invalid JSON: %.120s", res.what);
        return bad_record(r, it, code, err_line, what, at > r->pos ? at - 1 : r->pos, false);
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
                size_t n = util_utf8_seq(s + i, len - i);
                if (n) {
                        i += n;
                        continue;
                }
                s[i++] = (unsigned char)repl;
                fixed++;
        }
        return fixed;
}
