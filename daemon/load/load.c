/* load.c - load_run(): the COPY emulator's driver.  It ties the pure pieces
 * together (copy.h parses, jsonpaths.h selects, convert.h converts, records.h
 * splits) around the two parts that do I/O: source.h for objects and the
 * warehouse's prepared inserter for rows.  Memory holds one object's text
 * (plus its gunzipped copy) and one row at a time; the row's cells point into
 * the parsed record or into per-column scratch buffers reused for every row.
 * Options that parse but whose behaviour is not here yet fail the COPY with
 * "COPY option X is not supported yet" before anything is read.  See load.h. */
#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "copy.h"
#include "convert.h"
#include "jsonpaths.h"
#include "records.h"
#include "source.h"

#define RAW_LINE_MAX 1024

struct column {
        char *name;       /* as the warehouse spells it */
        char *match;      /* lower-cased: what a JSON key must equal for 'auto' */
        char *decl;       /* declared type */
        struct convert_type type;
        struct buf scratch;
};

struct load {
        const struct load_request *req;
        struct copy_stmt *stmt;
        struct column *cols;
        size_t n_cols;
        struct jsonpaths *paths;
        struct convert_opts opts;
        struct wh_inserter *ins;
        struct cell *cells;
        uint64_t rejects;
        uint64_t rows_since_check;
        size_t batch;
        char *err;
        size_t errlen;
};

static bool cancelled(const struct load *l)
{
        return l->req->cancel && atomic_load(l->req->cancel);
}

static void progress_add(const struct load *l, _Atomic uint64_t *counter, uint64_t n)
{
        if (l->req->progress)
                atomic_fetch_add(counter, n);
}

/* ---- set-up ------------------------------------------------------------- */

static int not_supported(struct load *l, const char *option, const char *hint)
{
        snprintf(l->err, l->errlen, "COPY option %s is not supported yet%s%s%s", option,
                 hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
        return -ENOTSUP;
}

/* Refuses what parses but does not behave as Redshift would yet. */
static int check_options(struct load *l)
{
        const struct copy_stmt *s = l->stmt;
        if (s->format == COPY_FORMAT_TEXT)
                return not_supported(l, "FORMAT (pipe-delimited text)",
                                     "give FORMAT AS JSON");
        if (s->manifest)
                return not_supported(l, "MANIFEST", NULL);
        if (s->timefmt == COPY_TIME_STRING)
                return not_supported(l, "TIMEFORMAT with a format string",
                                     "use 'auto', 'epochsecs' or 'epochmillisecs'");
        if (s->dateformat && strcasecmp(s->dateformat, "auto") != 0 &&
            strcasecmp(s->dateformat, "YYYY-MM-DD") != 0)
                return not_supported(l, "DATEFORMAT with a format string",
                                     "use 'auto' or 'YYYY-MM-DD'");
        if (s->schema && strcmp(s->schema, "public") != 0) {
                snprintf(l->err, l->errlen,
                         "COPY: schema-qualified table names are not supported yet ('%s.%s')",
                         s->schema, s->table);
                return -ENOTSUP;
        }
        return 0;
}

static int setup_columns(struct load *l)
{
        const struct copy_stmt *s = l->stmt;
        struct wh_column *wc = NULL;
        size_t n = 0;
        int r = wh_columns(l->req->wh, s->table, &wc, &n, l->err, l->errlen);
        if (r < 0) {
                if (r == -ENOENT)
                        snprintf(l->err, l->errlen, "COPY: table '%s' does not exist", s->table);
                return r;
        }
        size_t want = s->n_columns ? s->n_columns : n;
        l->cols = calloc(want ? want : 1, sizeof(*l->cols));
        l->cells = calloc(want ? want : 1, sizeof(*l->cells));
        if (!l->cols || !l->cells) {
                wh_columns_free(wc, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < want; i++) {
                const struct wh_column *src = NULL;
                if (s->n_columns) {
                        for (size_t j = 0; j < n && !src; j++)
                                if (strcasecmp(wc[j].name, s->columns[i]) == 0)
                                        src = &wc[j];
                        if (!src) {
                                snprintf(l->err, l->errlen,
                                         "COPY: column '%s' of table '%s' does not exist",
                                         s->columns[i], s->table);
                                r = -EINVAL;
                                break;
                        }
                        for (size_t k = 0; k < i; k++)
                                if (strcasecmp(l->cols[k].name, src->name) == 0) {
                                        snprintf(l->err, l->errlen,
                                                 "COPY: column '%s' is named twice",
                                                 s->columns[i]);
                                        r = -EINVAL;
                                }
                        if (r < 0)
                                break;
                } else {
                        src = &wc[i];
                }
                struct column *c = &l->cols[i];
                l->n_cols = i + 1;
                c->name = strdup(src->name);
                c->match = strdup(src->name);
                c->decl = strdup(src->type ? src->type : "");
                if (!c->name || !c->match || !c->decl) {
                        r = -ENOMEM;
                        break;
                }
                /* Redshift folds column names to lower case; 'auto' compares
                 * JSON keys with them case-sensitively. */
                for (char *p = c->match; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char)(*p - 'A' + 'a');
                if (convert_parse_type(c->decl, &c->type) < 0) {
                        snprintf(l->err, l->errlen,
                                 "COPY: column '%s' of table '%s' has type '%s' that COPY "
                                 "cannot load into",
                                 c->name, s->table, c->decl);
                        r = -EINVAL;
                        break;
                }
        }
        wh_columns_free(wc, n);
        if (r < 0)
                return r;
        if (l->n_cols == 0) {
                snprintf(l->err, l->errlen, "COPY: table '%s' has no columns", s->table);
                return -EINVAL;
        }
        return 0;
}

static int setup_paths(struct load *l)
{
        const struct copy_stmt *s = l->stmt;
        if (s->format != COPY_FORMAT_JSON_PATHS)
                return 0;
        struct buf b = { 0 };
        char e[512];
        int r = source_read_uri(s->jsonpaths, &b, e, sizeof(e));
        if (r < 0) {
                snprintf(l->err, l->errlen, "COPY: cannot read the JSONPaths file: %s", e);
                buf_free(&b);
                return r;
        }
        r = jsonpaths_parse(b.data, b.len, &l->paths, e, sizeof(e));
        buf_free(&b);
        if (r < 0) {
                snprintf(l->err, l->errlen, "COPY: %s (in '%s')", e, s->jsonpaths);
                return r;
        }
        if (jsonpaths_count(l->paths) != l->n_cols) {
                snprintf(l->err, l->errlen,
                         "COPY: the number of jsonpaths and the number of columns should "
                         "match; JSONPaths file '%s' has %zu paths, the %s has %zu columns",
                         s->jsonpaths, jsonpaths_count(l->paths),
                         s->n_columns ? "column list" : "table", l->n_cols);
                return -EINVAL;
        }
        return 0;
}

static int setup_inserter(struct load *l)
{
        const char **names = calloc(l->n_cols, sizeof(*names));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_cols; i++)
                names[i] = l->cols[i].name;
        int r = wh_inserter_new(l->req->wh, l->stmt->table, names, l->n_cols, &l->ins, l->err,
                                l->errlen);
        free(names);
        return r;
}

/* ---- records ------------------------------------------------------------ */

/* Reports one reject; fails the COPY when there are more than MAXERROR. */
static int rejected(struct load *l, const struct source_object *obj, const char *text,
                    const struct records_item *it, const struct column *col, int code,
                    const char *reason, const char *value)
{
        l->rejects++;
        progress_add(l, l->req->progress ? &l->req->progress->errors : NULL, 1);
        char raw[RAW_LINE_MAX + 1];
        size_t rl = it->len < RAW_LINE_MAX ? it->len : RAW_LINE_MAX;
        /* cut at a UTF-8 boundary and stop at a NUL byte */
        while (rl > 0 && rl < it->len && ((unsigned char)text[it->offset + rl] & 0xC0) == 0x80)
                rl--;
        memcpy(raw, text + it->offset, rl);
        raw[rl] = '\0';
        uint64_t line = it->value ? it->line : it->err_line;
        if (l->req->on_error) {
                struct load_error e = {
                        .filename = obj->uri,
                        .line_number = line,
                        .colname = col ? col->name : "",
                        .type = col ? col->decl : "",
                        .position = it->offset,
                        .raw_line = raw,
                        .raw_field_value = value ? value : "",
                        .err_code = code,
                        .err_reason = reason,
                };
                l->req->on_error(l->req->userdata, &e);
        }
        if (l->rejects > (uint64_t)l->stmt->maxerror) {
                if (col)
                        snprintf(l->err, l->errlen,
                                 "COPY %s: record rejected at '%s' line %" PRIu64
                                 ", column '%s' (%s): %s [error %d]; %" PRIu64
                                 " reject(s), MAXERROR is %lld",
                                 l->stmt->table, obj->uri, line, col->name, col->decl, reason,
                                 code, l->rejects, l->stmt->maxerror);
                else
                        snprintf(l->err, l->errlen,
                                 "COPY %s: record rejected at '%s' line %" PRIu64
                                 ": %s [error %d]; %" PRIu64 " reject(s), MAXERROR is %lld",
                                 l->stmt->table, obj->uri, line, reason, code, l->rejects,
                                 l->stmt->maxerror);
                return -EINVAL;
        }
        return 0;
}

/* The value for column i with 'auto ignorecase'. */
static json_t *find_ignorecase(json_t *obj, const char *name)
{
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) {
                if (strcasecmp(key, name) == 0)
                        return v;
        }
        return NULL;
}

static int load_record(struct load *l, const struct source_object *obj, const char *text,
                       const struct records_item *it)
{
        json_t *rec = it->value;
        if (!rec)
                return rejected(l, obj, text, it, NULL, it->err_code, it->err, NULL);
        bool ok = json_is_object(rec) ||
                  (json_is_array(rec) && l->stmt->format == COPY_FORMAT_JSON_PATHS);
        if (!ok)
                return rejected(l, obj, text, it, NULL, 1216,
                                l->stmt->format == COPY_FORMAT_JSON_PATHS
                                        ? "Invalid JSON record: not an object or array"
                                        : "Invalid JSON record: not an object",
                                NULL);
        for (size_t i = 0; i < l->n_cols; i++) {
                struct column *c = &l->cols[i];
                json_t *v;
                if (l->paths)
                        v = jsonpaths_eval(l->paths, i, rec);
                else if (l->stmt->format == COPY_FORMAT_JSON_IGNORECASE)
                        v = find_ignorecase(rec, c->match);
                else
                        v = json_object_get(rec, c->match);
                struct convert_reject rej;
                int r = convert_value(&c->type, &l->opts, v, &c->scratch, &l->cells[i], &rej);
                if (r < 0) {
                        snprintf(l->err, l->errlen, "COPY: out of memory");
                        return r;
                }
                if (r > 0)
                        return rejected(l, obj, text, it, c, rej.code, rej.reason, rej.value);
        }
        int r = wh_inserter_row(l->ins, l->cells, l->err, l->errlen);
        if (r < 0)
                return r;
        progress_add(l, l->req->progress ? &l->req->progress->rows : NULL, 1);
        if (++l->rows_since_check >= l->batch) {
                l->rows_since_check = 0;
                if (cancelled(l)) {
                        snprintf(l->err, l->errlen, "COPY %s: cancelled", l->stmt->table);
                        return -ECANCELED;
                }
        }
        return 0;
}

/* ---- objects ------------------------------------------------------------ */

/* Inflates a gzip object (every member of it) into out. */
static int gunzip(const struct source_object *obj, const struct buf *in, struct buf *out,
                  char *err, size_t errlen)
{
        out->len = 0;
        z_stream z;
        memset(&z, 0, sizeof(z));
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
                snprintf(err, errlen, "COPY: out of memory");
                return -ENOMEM;
        }
        z.next_in = (Bytef *)in->data;
        z.avail_in = (uInt)in->len;
        int r = 0;
        for (;;) {
                if (out->cap - out->len < 65536 + 1) {
                        size_t cap = out->cap < 65536 ? 262144 : out->cap * 2;
                        char *d = realloc(out->data, cap);
                        if (!d) {
                                r = -ENOMEM;
                                snprintf(err, errlen, "COPY: out of memory");
                                break;
                        }
                        out->data = d;
                        out->cap = cap;
                }
                z.next_out = (Bytef *)out->data + out->len;
                z.avail_out = (uInt)(out->cap - out->len - 1);
                int zr = inflate(&z, Z_NO_FLUSH);
                out->len = (size_t)((char *)z.next_out - out->data);
                if (zr == Z_STREAM_END) {
                        if (z.avail_in == 0)
                                break;
                        inflateReset(&z); /* another gzip member follows */
                        continue;
                }
                if (zr == Z_BUF_ERROR && z.avail_in == 0) {
                        r = -EINVAL;
                        snprintf(err, errlen, "COPY: '%s' is a truncated gzip stream",
                                 obj->uri);
                        break;
                }
                if (zr != Z_OK && zr != Z_BUF_ERROR) {
                        r = -EINVAL;
                        snprintf(err, errlen, "COPY: '%s' is not valid gzip (GZIP given): %s",
                                 obj->uri, z.msg ? z.msg : "bad data");
                        break;
                }
        }
        inflateEnd(&z);
        if (r == 0)
                out->data[out->len] = '\0';
        return r;
}

static int load_object(struct load *l, struct source *src, const struct source_object *obj,
                       struct buf *raw, struct buf *plain)
{
        char e[512];
        int r = source_read(src, obj, raw, e, sizeof(e));
        if (r < 0) {
                snprintf(l->err, l->errlen, "COPY: %s", e);
                return r;
        }
        progress_add(l, l->req->progress ? &l->req->progress->bytes : NULL, raw->len);
        struct buf *text = raw;
        if (l->stmt->gzip && raw->len > 0) {
                r = gunzip(obj, raw, plain, l->err, l->errlen);
                if (r < 0)
                        return r;
                text = plain;
        }
        if (l->stmt->acceptinvchars)
                records_fix_utf8(text->data, text->len, l->stmt->acceptinvchars_char);
        struct records rs;
        records_init(&rs, text->data, text->len);
        struct records_item it;
        while (records_next(&rs, &it)) {
                r = load_record(l, obj, text->data, &it);
                json_decref(it.value);
                if (r < 0)
                        return r;
        }
        progress_add(l, l->req->progress ? &l->req->progress->objects : NULL, 1);
        return 0;
}

/* ---- entry point -------------------------------------------------------- */

static void load_free(struct load *l)
{
        wh_inserter_free(l->ins);
        for (size_t i = 0; i < l->n_cols; i++) {
                free(l->cols[i].name);
                free(l->cols[i].match);
                free(l->cols[i].decl);
                buf_free(&l->cols[i].scratch);
        }
        free(l->cols);
        free(l->cells);
        jsonpaths_free(l->paths);
        copy_stmt_free(l->stmt);
}

int load_run(const struct load_request *req, char *err, size_t errlen)
{
        struct load l = { .req = req, .err = err, .errlen = errlen };
        l.batch = req->batch_rows ? req->batch_rows : 5000;
        struct source *src = NULL;
        struct source_object *objs = NULL;
        size_t n_objs = 0;
        struct buf raw = { 0 }, plain = { 0 };
        char e[512];

        if (errlen)
                err[0] = '\0';
        int r = copy_parse(req->statement, &l.stmt, err, errlen);
        if (r < 0)
                return r;
        r = check_options(&l);
        if (r < 0)
                goto out;
        l.opts.blanksasnull = l.stmt->blanksasnull;
        l.opts.emptyasnull = l.stmt->emptyasnull;
        l.opts.truncatecolumns = l.stmt->truncatecolumns;
        l.opts.roundec = l.stmt->roundec;
        switch (l.stmt->timefmt) {
        case COPY_TIME_AUTO:
                l.opts.timefmt = CONVERT_TIME_AUTO;
                break;
        case COPY_TIME_EPOCHSECS:
                l.opts.timefmt = CONVERT_TIME_EPOCHSECS;
                break;
        case COPY_TIME_EPOCHMILLISECS:
                l.opts.timefmt = CONVERT_TIME_EPOCHMILLISECS;
                break;
        default:
                l.opts.timefmt = CONVERT_TIME_DEFAULT;
                break;
        }

        r = source_open(l.stmt->from, &src, e, sizeof(e));
        if (r < 0) {
                snprintf(err, errlen, "COPY: %s", e);
                goto out;
        }
        r = setup_columns(&l);
        if (r < 0)
                goto out;
        r = setup_paths(&l);
        if (r < 0)
                goto out;
        r = source_list(src, &objs, &n_objs, e, sizeof(e));
        if (r < 0) {
                snprintf(err, errlen, "COPY: %s", e);
                goto out;
        }
        if (n_objs == 0) {
                snprintf(err, errlen,
                         "COPY: no objects found under '%s' (the prefix matches no key)",
                         l.stmt->from);
                r = -EINVAL;
                goto out;
        }
        r = setup_inserter(&l);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n_objs; i++) {
                if (cancelled(&l)) {
                        snprintf(err, errlen, "COPY %s: cancelled", l.stmt->table);
                        r = -ECANCELED;
                        goto out;
                }
                r = load_object(&l, src, &objs[i], &raw, &plain);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        if (r == -ENOMEM && err[0] == '\0')
                snprintf(err, errlen, "COPY: out of memory");
        buf_free(&raw);
        buf_free(&plain);
        source_objects_free(objs, n_objs);
        source_free(src);
        load_free(&l);
        return r;
}
