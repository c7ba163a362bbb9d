/* parse.c - one object's bytes to chunks of rows and rejects (parse.h): the
 * code a pool job of the COPY emulator runs.
 *
 * The bytes are inflated as they come (zlib, every gzip member) into the
 * records window (records.h keeps only the record being read), the records
 * are split with jv.h and each becomes a row or a reject of the chunk being
 * filled.  Everything one object needs between two calls lives in its
 * parse_obj, so a call may stop anywhere: when the bytes run out, or when a
 * chunk is full.  No I/O and no locks: one call at a time per object. */
#include "parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "jv.h"
#include "records.h"

struct parse_obj {
        const struct parse_spec *spec;
        const char *uri;
        struct jv_doc *doc;
        struct records rs;
        bool started; /* records_init_stream done */
        bool parsing; /* records_next may run: bytes came since it said -EAGAIN */
        size_t need;  /* bytes to add before records_next runs again */
        size_t added; /* bytes added since */
        bool z_ready; /* inflateInit2 done */
        bool between; /* GZIP: at a member boundary (or before the first) */
        z_stream z;
        struct buf *scratch;       /* per column */
        uint32_t *hints;           /* per column */
        struct cell *cells;        /* per column: the record being converted */
        struct parse_chunk *chunk; /* being filled */
};

struct parse_obj *parse_obj_new(const struct parse_spec *spec, const char *uri)
{
        struct parse_obj *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->spec = spec;
        p->uri = uri;
        p->doc = jv_doc_new();
        p->scratch = calloc(spec->n_cols, sizeof(*p->scratch));
        p->hints = calloc(spec->n_cols, sizeof(*p->hints));
        p->cells = calloc(spec->n_cols, sizeof(*p->cells));
        p->between = true;
        p->parsing = true;
        if (!p->doc || !p->scratch || !p->hints || !p->cells) {
                parse_obj_free(p);
                return NULL;
        }
        if (spec->gzip) {
                if (inflateInit2(&p->z, 16 + MAX_WBITS) != Z_OK) {
                        parse_obj_free(p);
                        return NULL;
                }
                p->z_ready = true;
        }
        return p;
}

void parse_obj_reset(struct parse_obj *p, const char *uri)
{
        p->uri = uri;
        if (p->rs.win.cap > 4 * PARSE_READ_CHUNK) { /* after a large record */
                records_free(&p->rs);
                jv_doc_free(p->doc);
                p->doc = jv_doc_new();
                for (size_t i = 0; i < p->spec->n_cols; i++)
                        buf_free(&p->scratch[i]);
        }
        p->started = false;
        p->parsing = true;
        p->need = p->added = 0;
        p->between = true;
        if (p->z_ready)
                inflateReset(&p->z);
        memset(p->hints, 0, p->spec->n_cols * sizeof(*p->hints));
        parse_chunk_free(p->chunk);
        p->chunk = NULL;
}

void parse_chunk_free(struct parse_chunk *c)
{
        if (!c)
                return;
        free(c->cells);
        buf_free(&c->text);
        free(c->rejects);
        free(c);
}

void parse_obj_free(struct parse_obj *p)
{
        if (!p)
                return;
        jv_doc_free(p->doc);
        records_free(&p->rs);
        if (p->z_ready)
                inflateEnd(&p->z);
        if (p->scratch)
                for (size_t i = 0; i < p->spec->n_cols; i++)
                        buf_free(&p->scratch[i]);
        free(p->scratch);
        free(p->hints);
        free(p->cells);
        parse_chunk_free(p->chunk);
        free(p);
}

/* ---- chunks ------------------------------------------------------------- */

static struct parse_chunk *chunk_new(const struct parse_spec *sp)
{
        struct parse_chunk *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->width = sp->n_cols + (sp->object_column ? 1 : 0);
        c->cap_rows = 16; /* grows to PARSE_CHUNK_ROWS: a small object stays small */
        c->cells = malloc(c->cap_rows * c->width * sizeof(*c->cells));
        if (!c->cells) {
                free(c);
                return NULL;
        }
        return c;
}

/* Room for one more row. */
static int chunk_room(struct parse_chunk *c)
{
        if (c->rows < c->cap_rows)
                return 0;
        size_t cap = c->cap_rows * 4 < PARSE_CHUNK_ROWS ? c->cap_rows * 4 : PARSE_CHUNK_ROWS;
        struct cell *cells = realloc(c->cells, cap * c->width * sizeof(*cells));
        if (!cells)
                return -ENOMEM;
        c->cells = cells;
        c->cap_rows = cap;
        return 0;
}

static bool chunk_full(const struct parse_chunk *c)
{
        return c->rows == PARSE_CHUNK_ROWS || c->n_rejects >= PARSE_CHUNK_REJECTS ||
               c->text.len >= PARSE_CHUNK_TEXT;
}

/* A chunk that waits gives back the room it did not fill: the rows of a
 * small object (a song file is one) would otherwise hold a chunk's first
 * allocation each, and a batch refers to thousands of them.  Shrinking in
 * place cannot fail; a failed move keeps the larger block. */
static void chunk_fit(struct parse_chunk *c)
{
        if (c->rows && c->rows < c->cap_rows) {
                struct cell *cells = realloc(c->cells, c->rows * c->width * sizeof(*cells));
                if (cells) {
                        c->cells = cells;
                        c->cap_rows = c->rows;
                }
        }
        if (c->text.len && c->text.len + 1 < c->text.cap) { /* buf keeps a NUL after len */
                char *t = realloc(c->text.data, c->text.len + 1);
                if (t) {
                        c->text.data = t;
                        c->text.cap = c->text.len + 1;
                }
        }
}

/* The text no longer moves: offsets become pointers. */
static struct parse_chunk *chunk_seal(struct parse_obj *p)
{
        struct parse_chunk *c = p->chunk;
        p->chunk = NULL;
        chunk_fit(c);
        size_t n = p->spec->n_cols;
        size_t urilen = strlen(p->uri);
        for (size_t r = 0; r < c->rows; r++) {
                struct cell *row = c->cells + r * c->width;
                for (size_t i = 0; i < n; i++)
                        if (row[i].kind == CELL_TEXT)
                                row[i].text = parse_chunk_str(c, (size_t)row[i].i);
                if (c->width > n)
                        row[n] = (struct cell){.kind = CELL_TEXT, .text = p->uri, .len = urilen};
        }
        c->bytes = sizeof(*c) + c->text.cap + c->cap_rows * c->width * sizeof(struct cell) +
                   c->cap_rejects * sizeof(struct parse_reject);
        return c;
}

static int chunk_text(struct parse_chunk *c, const char *s, size_t n, size_t *off)
{
        *off = c->text.len;
        if (n == 0)
                return 0;
        return buf_append(&c->text, s, n);
}

/* ---- records to rows ---------------------------------------------------- */

static uint64_t count_newlines(const char *s, size_t len)
{
        uint64_t n = 0;
        for (size_t i = 0; i < len; i++)
                n += s[i] == '\n';
        return n;
}

static int add_reject(struct parse_chunk *c, const struct records_item *it, int col, int code,
                      const char *reason, const char *value, size_t value_len)
{
        if (c->n_rejects == c->cap_rejects) {
                size_t cap = c->cap_rejects ? c->cap_rejects * 2 : 8;
                struct parse_reject *r = realloc(c->rejects, cap * sizeof(*r));
                if (!r)
                        return -ENOMEM;
                c->rejects = r;
                c->cap_rejects = cap;
        }
        struct parse_reject *rj = &c->rejects[c->n_rejects];
        rj->before_row = c->rows;
        /* STL_LOAD_ERRORS, line_number: "For COPY from JSON, the line
         * number of the last line of the JSON object with the error." */
        rj->line = it->value ? it->line + count_newlines(it->text, it->len) : it->err_line;
        rj->position = it->offset;
        rj->col = col;
        rj->code = code;
        rj->not_json = false;
        const char *text = it->text;
        size_t rl = it->len < PARSE_RAW_LINE_MAX ? it->len : PARSE_RAW_LINE_MAX;
        if (rl > it->text_len)
                rl = it->text_len;
        /* cut at a UTF-8 boundary and at a NUL byte */
        while (rl > 0 && rl < it->len && rl < it->text_len &&
               ((unsigned char)text[rl] & 0xC0) == 0x80)
                rl--;
        const char *nul = rl ? memchr(text, '\0', rl) : NULL;
        if (nul)
                rl = (size_t)(nul - text);
        const char *vnul = value_len ? memchr(value, '\0', value_len) : NULL;
        if (vnul)
                value_len = (size_t)(vnul - value);
        if (chunk_text(c, text, rl, &rj->raw) < 0)
                return -ENOMEM;
        rj->raw_len = rl;
        if (chunk_text(c, value, value_len, &rj->value) < 0)
                return -ENOMEM;
        rj->value_len = value_len;
        if (chunk_text(c, reason, strlen(reason), &rj->reason) < 0)
                return -ENOMEM;
        rj->reason_len = strlen(reason);
        c->n_rejects++;
        return 0;
}

/* Text that is not a JSON object or array (a bare value, or bytes that are
 * not JSON) is no record: its bytes never reach a load error, since the
 * object might be any file etld can read.  At the start of an object it
 * fails the COPY, naming the object and the byte; further on it is a reject
 * with no raw line. */
static int not_a_record(struct parse_chunk *c, const struct records_item *it)
{
        struct records_item hidden = *it;
        hidden.text_len = 0;
        int r = add_reject(c, &hidden, -1, 1216,
                           "Invalid JSON record: the text there does not start a JSON object or "
                           "array (not shown)",
                           NULL, 0);
        if (r == 0 && it->first)
                c->rejects[c->n_rejects - 1].not_json = true;
        return r;
}

/* Converts one record into a row of the chunk, or a reject.  -EINVAL with
 * m set for what fails the whole COPY rather than the record. */
static int convert_record(struct parse_obj *p, const struct records_item *it, char *m, size_t mlen)
{
        const struct parse_spec *sp = p->spec;
        struct parse_chunk *c = p->chunk;
        const struct jv *rec = it->value;
        if (!rec && it->too_large) {
                /* "COPY from JSON format": "The maximum size of a JSON
                 * object in Amazon Redshift is 4 MB" -- the COPY fails. */
                snprintf(m, mlen,
                         "COPY %s: the JSON object at '%s' line %" PRIu64 " is larger than "
                         "the %zu-byte maximum (Redshift: 4 MB per JSON object); the COPY "
                         "fails",
                         sp->table, p->uri, it->line, sp->record_max);
                return -EINVAL;
        }
        if (!it->text_len || (it->text[0] != '{' && it->text[0] != '['))
                return not_a_record(c, it);
        if (!rec)
                return add_reject(c, it, -1, it->err_code, it->err, NULL, 0);
        bool ok = rec->type == JV_OBJECT || (rec->type == JV_ARRAY && sp->paths);
        if (!ok)
                return add_reject(c, it, -1, 1216,
                                  sp->format == COPY_FORMAT_JSON_PATHS
                                      ? "Invalid JSONPath format: the record is not an "
                                        "object or array"
                                      : "Invalid JSON record: not an object",
                                  NULL, 0);
        for (size_t i = 0; i < sp->n_cols; i++) {
                const struct parse_column *col = &sp->cols[i];
                const struct jv *v;
                bool bad_index = false;
                if (sp->paths)
                        v = jsonpaths_eval_checked(sp->paths, i, rec, &p->hints[i], &bad_index);
                else if (sp->format == COPY_FORMAT_JSON_IGNORECASE)
                        v = jv_get_ignorecase(rec, col->match, col->match_len);
                else
                        v = jv_get(rec, col->match, col->match_len, &p->hints[i]);
                if (bad_index) {
                        /* "COPY from JSON format": an index that does not
                         * exist fails the COPY, with this text. */
                        snprintf(m, mlen,
                                 "COPY %s: Invalid JSONPath format: Not an array or index out "
                                 "of range (path \"%s\", column '%s', '%s' line %" PRIu64 ")",
                                 sp->table, jsonpaths_text(sp->paths, i), col->name, p->uri,
                                 it->line);
                        return -EINVAL;
                }
                struct convert_reject rej;
                int r = convert_value(&col->type, sp->opts, v, &p->scratch[i], &p->cells[i], &rej);
                if (r < 0)
                        return r;
                if (r > 0)
                        return add_reject(c, it, (int)i, rej.code, rej.reason, rej.value,
                                          strlen(rej.value));
        }
        if (chunk_room(c) < 0)
                return -ENOMEM;
        struct cell *row = c->cells + c->rows * c->width;
        for (size_t i = 0; i < sp->n_cols; i++) {
                row[i] = p->cells[i];
                if (row[i].kind == CELL_TEXT) {
                        size_t off;
                        if (chunk_text(c, p->cells[i].text, p->cells[i].len, &off) < 0)
                                return -ENOMEM;
                        row[i].i = (int64_t)off; /* a pointer once the chunk is sealed */
                }
        }
        c->rows++;
        return 0;
}

/* ---- bytes to text ------------------------------------------------------ */

/* Moves the caller's bytes into the records window (inflating them with
 * GZIP).  Returns 1 when records_next should run (enough text came, or the
 * object ended), 0 when every byte is used and more are needed, < 0 with
 * msg set. */
static int feed(struct parse_obj *p, const char *in, size_t len, size_t *off, bool eof, char *msg,
                size_t msglen)
{
        struct records *rs = &p->rs;
        for (;;) {
                /* a record longer than a read: parse it again only once the
                 * window has doubled, so that parsing it from its start each
                 * time costs linear time overall */
                size_t pending = records_pending(rs);
                size_t want = pending > PARSE_READ_CHUNK ? pending : PARSE_READ_CHUNK;
                /* plain text: no more room than the bytes at hand, so that
                 * a small object's window stays its size */
                if (!p->spec->gzip && want > len - *off)
                        want = len - *off > 0 ? len - *off : 1;
                size_t room;
                char *dst = records_space(rs, want, &room);
                if (!dst) {
                        snprintf(msg, msglen, "COPY: out of memory");
                        return -ENOMEM;
                }
                if (room > want)
                        room = want;
                size_t got = 0;
                if (!p->spec->gzip) {
                        got = len - *off < room ? len - *off : room;
                        memcpy(dst, in + *off, got);
                        *off += got;
                        if (got == 0 && eof) {
                                records_end(rs);
                                return 1;
                        }
                } else {
                        if (room > UINT32_MAX)
                                room = UINT32_MAX;
                        z_stream *z = &p->z;
                        z->next_out = (Bytef *)dst;
                        z->avail_out = (uInt)room;
                        while (z->avail_out > 0) {
                                size_t left = len - *off;
                                if (left == 0) {
                                        if (!eof || room - z->avail_out > 0)
                                                break;
                                        if (!p->between) {
                                                snprintf(msg, msglen,
                                                         "COPY: '%s' is a truncated gzip stream",
                                                         p->uri);
                                                return -EINVAL;
                                        }
                                        records_end(rs);
                                        return 1;
                                }
                                z->next_in = (Bytef *)(in + *off);
                                z->avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
                                uInt before = z->avail_in;
                                p->between = false;
                                int zr = inflate(z, Z_NO_FLUSH);
                                *off += before - z->avail_in;
                                if (zr == Z_STREAM_END) {
                                        inflateReset(z); /* another gzip member may follow */
                                        p->between = true;
                                } else if (zr == Z_MEM_ERROR) {
                                        snprintf(msg, msglen, "COPY: out of memory");
                                        return -ENOMEM;
                                } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
                                        snprintf(msg, msglen,
                                                 "COPY: '%s' is not valid gzip (GZIP given): %s",
                                                 p->uri, z->msg ? z->msg : "bad data");
                                        return -EINVAL;
                                }
                        }
                        z->next_in = NULL;
                        z->avail_in = 0;
                        got = room - z->avail_out;
                }
                if (got)
                        records_commit(rs, got);
                p->added += got;
                if (p->added >= p->need)
                        return 1;
                if (*off == len && !eof)
                        return 0;
        }
}

enum parse_status parse_run(struct parse_obj *p, const char *in, size_t len, size_t *off, bool eof,
                            struct parse_chunk **chunk, int *err, char *msg, size_t msglen)
{
        const struct parse_spec *sp = p->spec;
        *chunk = NULL;
        *err = 0;
        if (!p->started) {
                struct buf win = p->rs.win; /* the last object's window, reused */
                records_init_stream(&p->rs, p->doc, sp->record_max, sp->acceptinvchars);
                p->rs.win = win;
                p->rs.win.len = 0;
                p->started = true;
        }
        int r;
        for (;;) {
                if (!p->chunk) {
                        p->chunk = chunk_new(sp);
                        if (!p->chunk) {
                                r = -ENOMEM;
                                snprintf(msg, msglen, "COPY: out of memory");
                                goto fail;
                        }
                }
                if (!p->parsing) {
                        r = feed(p, in, len, off, eof, msg, msglen);
                        if (r < 0)
                                goto fail;
                        if (r == 0)
                                return PARSE_MORE;
                        p->parsing = true;
                }
                struct records_item it;
                r = records_next(&p->rs, &it);
                if (r == 0) {
                        struct parse_chunk *c = chunk_seal(p);
                        if (c->rows || c->n_rejects) {
                                *chunk = c;
                        } else {
                                parse_chunk_free(c);
                        }
                        return PARSE_END;
                }
                if (r == -EAGAIN) {
                        size_t pending = records_pending(&p->rs);
                        p->need = pending > PARSE_READ_CHUNK ? pending : 1;
                        p->added = 0;
                        p->parsing = false;
                        continue;
                }
                if (r > 0)
                        r = convert_record(p, &it, msg, msglen);
                if (r < 0) {
                        if (r != -EINVAL)
                                snprintf(msg, msglen, "COPY: out of memory");
                        goto fail;
                }
                if (chunk_full(p->chunk)) {
                        *chunk = chunk_seal(p);
                        return PARSE_CHUNK;
                }
        }
fail:
        parse_chunk_free(p->chunk);
        p->chunk = NULL;
        *err = r;
        return PARSE_FAIL;
}
