/* load.c - load_run(): the COPY emulator's driver.  It ties the pure pieces
 * together (copy.h parses, jsonpaths.h selects, convert.h converts, records.h
 * splits with jv.h) around the two parts that do I/O: source.h for objects
 * and the warehouse's prepared inserter for rows.
 *
 * Concurrency: parser threads (at most load_request.concurrency, and no more
 * than the CPUs) each take the next object and stream it: read a chunk
 * (source.h), gunzip it as it comes (zlib inflate, every gzip member), split
 * it into records (records.h keeps only the partial record at the end of its
 * window) and convert the records into chunks of ready rows (cells plus the
 * bytes they point to) and rejects.  The calling thread is the only one that
 * touches the warehouse: it takes the chunks object by object, in key order, and inserts
 * them, so rows, rejects and MAXERROR come out exactly as with one thread.
 * Memory is bounded whatever the size of the objects: per parser one read
 * buffer (READ_CHUNK), one window of text (READ_CHUNK plus the record being
 * read, at most RECORD_MAX: a larger record fails the COPY); at most
 * `concurrency` objects in flight, each with at most SLOT_BYTES of converted
 * rows waiting; the slowest part (the insert) sets the pace.
 *
 * Options that parse but whose behaviour is not here yet fail the COPY with
 * "COPY option X is not supported yet" before anything is read.  See load.h. */
#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include <jansson.h>

#include "copy.h"
#include "convert.h"
#include "jsonpaths.h"
#include "records.h"
#include "source.h"

#define RAW_LINE_MAX 1024
#define CHUNK_ROWS 512
#define SLOT_BYTES (4u << 20)
#define MAX_PARSERS 16
#define READ_CHUNK (256u << 10)
#define RECORD_MAX RECORDS_MAX_DEFAULT

struct column {
        char *name;       /* as the warehouse spells it */
        char *match;      /* lower-cased: what a JSON key must equal for 'auto' */
        size_t match_len;
        char *decl;       /* declared type */
        struct convert_type type;
};

/* One object to read: a listed key, or a manifest entry. */
struct object {
        struct source_object src;  /* uri always set; key NULL for manifest entries */
        bool mandatory;            /* manifest: a missing file fails the COPY */
};

/* A reject as a producer saw it; strings are offsets into the chunk's text. */
struct reject {
        size_t before_row;          /* rows of the chunk that come before it */
        uint64_t line;
        uint64_t position;
        int col;                    /* -1: the record as a whole */
        int code;
        bool not_json; /* the object does not start with a record: fail */
        size_t raw, raw_len, value, value_len, reason, reason_len;
};

struct chunk {
        struct chunk *next;
        struct cell *cells;         /* rows * n_cols; CELL_TEXT: .i is an offset in text */
        size_t rows, cap_rows;
        struct buf text;
        struct reject *rejects;
        size_t n_rejects, cap_rejects;
        size_t bytes;               /* what it holds, for the in-flight bound */
};

struct slot {
        size_t obj;                 /* which object it holds */
        struct chunk *head, *tail;
        size_t bytes;
        bool done;                  /* the producer finished the object */
        int err;                    /* < 0: the object failed; errmsg says why */
        char errmsg[720];
};

struct load {
        const struct load_request *req;
        struct copy_stmt *stmt;
        struct column *cols;
        size_t n_cols;
        struct jsonpaths *paths;
        struct convert_timefmt *timeformat, *dateformat;
        struct convert_opts opts;
        struct wh_inserter *ins;
        struct cell *cells;      /* n_cols, plus the object column's */
        bool object_column;      /* load_request.object_column is inserted too */
        uint64_t rejects;
        char *err;
        size_t errlen;

        struct source *src;
        struct object *objs;
        size_t n_objs;

        /* the pipeline */
        pthread_mutex_t mu;
        pthread_cond_t to_consumer, to_producers;
        struct slot *slots;
        size_t n_slots;
        size_t next_obj;            /* next object a producer takes */
        size_t head_obj;            /* the object the consumer is on */
        bool stop;
        struct chunk *free_chunks;  /* recycled */
        size_t n_free;
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

/* Refuses what parses but does not behave as Redshift would yet, and
 * compiles the format strings. */
static int check_options(struct load *l)
{
        const struct copy_stmt *s = l->stmt;
        char e[256];
        if (s->format == COPY_FORMAT_TEXT)
                return not_supported(l, "FORMAT (pipe-delimited text)",
                                     "give FORMAT AS JSON");
        if (s->schema && strcmp(s->schema, "public") != 0) {
                snprintf(l->err, l->errlen,
                         "COPY: schema-qualified table names are not supported yet ('%s.%s')",
                         s->schema, s->table);
                return -ENOTSUP;
        }
        if (s->timefmt == COPY_TIME_STRING && s->timeformat &&
            convert_timefmt_compile(s->timeformat, &l->timeformat, e, sizeof(e)) < 0) {
                snprintf(l->err, l->errlen, "COPY: TIMEFORMAT %s", e);
                return -EINVAL;
        }
        if (s->dateformat && strcmp(s->dateformat, "auto") == 0) { /* case-sensitive */
                l->opts.dateauto = true;
        } else if (s->dateformat && strcasecmp(s->dateformat, "YYYY-MM-DD") != 0 &&
                   convert_timefmt_compile(s->dateformat, &l->dateformat, e, sizeof(e)) < 0) {
                snprintf(l->err, l->errlen, "COPY: DATEFORMAT %s", e);
                return -EINVAL;
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
        const char *oc = l->req->object_column;
        if (oc) { /* the object column is etld's, not the statement's */
                bool found = false;
                for (size_t j = 0; j < n; j++)
                        found = found || strcasecmp(wc[j].name, oc) == 0;
                for (size_t i = 0; i < s->n_columns; i++)
                        if (strcasecmp(s->columns[i], oc) == 0) {
                                snprintf(l->err, l->errlen,
                                         "COPY: column '%s' of table '%s' is etld's own and "
                                         "cannot be loaded",
                                         oc, s->table);
                                wh_columns_free(wc, n);
                                return -EINVAL;
                        }
                l->object_column = found; /* a table without it: nothing to fill */
                if (!found)
                        oc = NULL;
        }
        size_t want = s->n_columns ? s->n_columns : n - (oc ? 1 : 0);
        l->cols = calloc(want ? want : 1, sizeof(*l->cols));
        l->cells = calloc(want + 1, sizeof(*l->cells));
        if (!l->cols || !l->cells) {
                wh_columns_free(wc, n);
                return -ENOMEM;
        }
        for (size_t i = 0, next = 0; i < want; i++) {
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
                        if (oc && strcasecmp(wc[next].name, oc) == 0)
                                next++;
                        src = &wc[next++];
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
                c->match_len = strlen(c->match);
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
        int r = source_read_uri_ctx(s->jsonpaths, l->req->source_ctx, l->req->file_roots,
                                    SOURCE_SMALL_MAX, &b, e, sizeof(e));
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
        if (r == 1)
                return 0; /* not named "jsonpaths": 'auto' (l->paths stays NULL) */
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
        const char **names = calloc(l->n_cols + 1, sizeof(*names));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_cols; i++)
                names[i] = l->cols[i].name;
        if (l->object_column)
                names[l->n_cols] = l->req->object_column;
        int r = wh_inserter_new(l->req->wh, l->stmt->table, names,
                                l->n_cols + (l->object_column ? 1 : 0), &l->ins, l->err,
                                l->errlen);
        free(names);
        return r;
}

/* ---- objects: the listing or the manifest ------------------------------- */

static int list_prefix(struct load *l)
{
        char e[512];
        struct source_object *so = NULL;
        size_t n = 0;
        int r = source_list(l->src, &so, &n, e, sizeof(e));
        if (r < 0) {
                snprintf(l->err, l->errlen, "COPY: %s", e);
                return r;
        }
        if (n == 0) {
                source_objects_free(so, n);
                /* Redshift: "The specified S3 prefix ... does not exist" */
                snprintf(l->err, l->errlen,
                         "COPY: no objects found under '%s' (the prefix matches no key)",
                         l->stmt->from);
                return -EINVAL;
        }
        l->objs = calloc(n, sizeof(*l->objs));
        if (!l->objs) {
                source_objects_free(so, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                l->objs[i].src = so[i];
                l->objs[i].mandatory = true;
        }
        free(so); /* the strings moved into l->objs */
        l->n_objs = n;
        return 0;
}

/* "Using a manifest to specify data files": {"entries": [{"url": "...",
 * "mandatory": true|false}, ...]}; url names one object exactly. */
static int list_manifest(struct load *l)
{
        char e[512];
        struct buf b = { 0 };
        int r = source_read_uri_ctx(l->stmt->from, l->req->source_ctx, l->req->file_roots,
                                    SOURCE_SMALL_MAX, &b, e, sizeof(e));
        if (r < 0) {
                snprintf(l->err, l->errlen, "COPY: cannot read the manifest: %s", e);
                buf_free(&b);
                return r;
        }
        json_error_t je;
        json_t *root = json_loadb(b.data ? b.data : "", b.len, 0, &je);
        buf_free(&b);
        if (!root) {
                /* where, never what (see jsonpaths_parse) */
                snprintf(l->err, l->errlen,
                         "COPY: manifest '%s' is not a JSON file: parsing stops at byte %d "
                         "(line %d, column %d)",
                         l->stmt->from, je.position, je.line, je.column);
                return -EINVAL;
        }
        json_t *entries = json_object_get(root, "entries");
        if (!json_is_array(entries)) {
                snprintf(l->err, l->errlen,
                         "COPY: manifest '%s' must be an object with an \"entries\" array",
                         l->stmt->from);
                json_decref(root);
                return -EINVAL;
        }
        size_t n = json_array_size(entries);
        l->objs = calloc(n ? n : 1, sizeof(*l->objs));
        if (!l->objs) {
                json_decref(root);
                return -ENOMEM;
        }
        r = 0;
        for (size_t i = 0; i < n; i++) {
                json_t *en = json_array_get(entries, i);
                json_t *url = json_object_get(en, "url");
                json_t *mand = json_object_get(en, "mandatory");
                if (!json_is_object(en) || !json_is_string(url) ||
                    (mand && !json_is_boolean(mand))) {
                        snprintf(l->err, l->errlen,
                                 "COPY: manifest '%s' entry %zu must have a \"url\" string and "
                                 "an optional \"mandatory\" boolean",
                                 l->stmt->from, i + 1);
                        r = -EINVAL;
                        break;
                }
                const char *u = json_string_value(url);
                /* s3:// entries are read through the request's source_ctx
                 * (source_open_uri says so when there is none) */
                if (strncmp(u, "file://", 7) != 0 && strncmp(u, "s3://", 5) != 0) {
                        snprintf(l->err, l->errlen,
                                 "COPY: manifest entry '%s': unknown source (expected s3:// or "
                                 "file://)",
                                 u);
                        r = -EINVAL;
                        break;
                }
                l->objs[i].src.uri = strdup(u);
                if (!l->objs[i].src.uri) {
                        r = -ENOMEM;
                        break;
                }
                l->objs[i].mandatory = json_is_true(mand);
                l->n_objs = i + 1;
        }
        json_decref(root);
        if (r == 0 && l->n_objs == 0) {
                snprintf(l->err, l->errlen, "COPY: manifest '%s' lists no files",
                         l->stmt->from);
                r = -EINVAL;
        }
        return r;
}

static void objects_free(struct load *l)
{
        for (size_t i = 0; i < l->n_objs; i++) {
                free(l->objs[i].src.key);
                free(l->objs[i].src.uri);
                free(l->objs[i].src.tag);
        }
        free(l->objs);
}

/* ---- chunks ------------------------------------------------------------- */

static struct chunk *chunk_get(struct load *l)
{
        pthread_mutex_lock(&l->mu);
        struct chunk *c = l->free_chunks;
        if (c) {
                l->free_chunks = c->next;
                l->n_free--;
        }
        pthread_mutex_unlock(&l->mu);
        if (!c) {
                c = calloc(1, sizeof(*c));
                if (!c)
                        return NULL;
                c->cells = malloc(CHUNK_ROWS * l->n_cols * sizeof(*c->cells));
                if (!c->cells) {
                        free(c);
                        return NULL;
                }
                c->cap_rows = CHUNK_ROWS;
        }
        c->next = NULL;
        c->rows = 0;
        c->text.len = 0;
        c->n_rejects = 0;
        c->bytes = 0;
        return c;
}

static void chunk_destroy(struct chunk *c)
{
        free(c->cells);
        buf_free(&c->text);
        free(c->rejects);
        free(c);
}

/* Recycles a few, frees the rest (caller holds no lock). */
static void chunk_put(struct load *l, struct chunk *c)
{
        pthread_mutex_lock(&l->mu);
        if (l->n_free < l->n_slots * 2 + 4 && c->text.cap <= 2 * SLOT_BYTES) {
                c->next = l->free_chunks;
                l->free_chunks = c;
                l->n_free++;
                c = NULL;
        }
        pthread_mutex_unlock(&l->mu);
        if (c)
                chunk_destroy(c);
}

static int chunk_text(struct chunk *c, const char *s, size_t n, size_t *off)
{
        *off = c->text.len;
        if (n == 0)
                return 0;
        return buf_append(&c->text, s, n);
}

/* ---- the producers: objects to chunks ------------------------------------ */

struct parser {
        struct load *l;
        pthread_t thread;
        struct jv_doc *doc;
        struct records rs;   /* the window of text */
        char *zin;           /* GZIP: compressed bytes, READ_CHUNK */
        struct buf *scratch; /* per column */
        uint32_t *hints;     /* per column */
        struct cell *cells;
};

/* Hands a chunk to the consumer; waits while the slot holds too much. */
static void publish(struct load *l, struct slot *sl, struct chunk *c)
{
        pthread_mutex_lock(&l->mu);
        c->bytes = c->text.len + c->rows * l->n_cols * sizeof(struct cell) + 64;
        if (sl->tail)
                sl->tail->next = c;
        else
                sl->head = c;
        sl->tail = c;
        sl->bytes += c->bytes;
        pthread_cond_broadcast(&l->to_consumer);
        while (!l->stop && sl->bytes > SLOT_BYTES)
                pthread_cond_wait(&l->to_producers, &l->mu);
        pthread_mutex_unlock(&l->mu);
}

static uint64_t count_newlines(const char *s, size_t len)
{
        uint64_t n = 0;
        for (size_t i = 0; i < len; i++)
                n += s[i] == '\n';
        return n;
}

static int add_reject(struct chunk *c, const struct records_item *it, int col,
                      int code, const char *reason, const char *value, size_t value_len)
{
        if (c->n_rejects == c->cap_rejects) {
                size_t cap = c->cap_rejects ? c->cap_rejects * 2 : 8;
                struct reject *r = realloc(c->rejects, cap * sizeof(*r));
                if (!r)
                        return -ENOMEM;
                c->rejects = r;
                c->cap_rejects = cap;
        }
        struct reject *rj = &c->rejects[c->n_rejects];
        rj->before_row = c->rows;
        /* STL_LOAD_ERRORS, line_number: "For COPY from JSON, the line
         * number of the last line of the JSON object with the error." */
        rj->line = it->value ? it->line + count_newlines(it->text, it->len) : it->err_line;
        rj->position = it->offset;
        rj->col = col;
        rj->code = code;
        rj->not_json = false;
        const char *text = it->text;
        size_t rl = it->len < RAW_LINE_MAX ? it->len : RAW_LINE_MAX;
        if (rl > it->text_len)
                rl = it->text_len;
        /* cut at a UTF-8 boundary and at a NUL byte */
        while (rl > 0 && rl < it->len && rl < it->text_len &&
               ((unsigned char)text[rl] & 0xC0) == 0x80)
                rl--;
        const char *nul = memchr(text, '\0', rl);
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
static int not_a_record(struct chunk *c, const struct records_item *it)
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

/* Converts one record into a row of c, or a reject.  -EINVAL with m set
 * for what fails the whole COPY rather than the record. */
static int convert_record(struct parser *p, struct chunk *c, const struct records_item *it,
                          const struct object *obj, char *m, size_t mlen)
{
        struct load *l = p->l;
        const struct jv *rec = it->value;
        if (!rec && it->too_large) {
                /* "COPY from JSON format": "The maximum size of a JSON
                 * object in Amazon Redshift is 4 MB" -- the COPY fails. */
                snprintf(m, mlen,
                         "COPY %s: the JSON object at '%s' line %" PRIu64 " is larger than "
                         "the %zu-byte maximum (Redshift: 4 MB per JSON object); the COPY "
                         "fails",
                         l->stmt->table, obj->src.uri, it->line, (size_t)RECORD_MAX);
                return -EINVAL;
        }
        if (!it->text_len || (it->text[0] != '{' && it->text[0] != '['))
                return not_a_record(c, it);
        if (!rec)
                return add_reject(c, it, -1, it->err_code, it->err, NULL, 0);
        bool ok = rec->type == JV_OBJECT || (rec->type == JV_ARRAY && l->paths);
        if (!ok)
                return add_reject(c, it, -1, 1216,
                                  l->stmt->format == COPY_FORMAT_JSON_PATHS
                                          ? "Invalid JSONPath format: the record is not an "
                                            "object or array"
                                          : "Invalid JSON record: not an object",
                                  NULL, 0);
        for (size_t i = 0; i < l->n_cols; i++) {
                const struct column *col = &l->cols[i];
                const struct jv *v;
                bool bad_index = false;
                if (l->paths)
                        v = jsonpaths_eval_checked(l->paths, i, rec, &p->hints[i], &bad_index);
                else if (l->stmt->format == COPY_FORMAT_JSON_IGNORECASE)
                        v = jv_get_ignorecase(rec, col->match, col->match_len);
                else
                        v = jv_get(rec, col->match, col->match_len, &p->hints[i]);
                if (bad_index) {
                        /* "COPY from JSON format": an index that does not
                         * exist fails the COPY, with this text. */
                        snprintf(m, mlen,
                                 "COPY %s: Invalid JSONPath format: Not an array or index out "
                                 "of range (path \"%s\", column '%s', '%s' line %" PRIu64 ")",
                                 l->stmt->table, jsonpaths_text(l->paths, i), col->name,
                                 obj->src.uri, it->line);
                        return -EINVAL;
                }
                struct convert_reject rej;
                int r = convert_value(&col->type, &l->opts, v, &p->scratch[i], &p->cells[i],
                                      &rej);
                if (r < 0)
                        return r;
                if (r > 0)
                        return add_reject(c, it, (int)i, rej.code, rej.reason, rej.value,
                                          strlen(rej.value));
        }
        struct cell *row = c->cells + c->rows * l->n_cols;
        for (size_t i = 0; i < l->n_cols; i++) {
                row[i] = p->cells[i];
                if (row[i].kind == CELL_TEXT) {
                        size_t off;
                        if (chunk_text(c, p->cells[i].text, p->cells[i].len, &off) < 0)
                                return -ENOMEM;
                        row[i].i = (int64_t)off;
                        row[i].text = NULL;
                }
        }
        c->rows++;
        return 0;
}

static void slot_fail(struct load *l, struct slot *sl, int err, const char *msg)
{
        pthread_mutex_lock(&l->mu);
        sl->err = err;
        snprintf(sl->errmsg, sizeof(sl->errmsg), "%s", msg);
        pthread_mutex_unlock(&l->mu);
}

static bool stopping(struct load *l)
{
        pthread_mutex_lock(&l->mu);
        bool s = l->stop;
        pthread_mutex_unlock(&l->mu);
        return s;
}

/* The object as text, chunk after chunk: reads (and, with GZIP, inflates)
 * into the records window until it has at least one new byte or the object
 * ended.  Returns 0, or < 0 with msg set. */
struct feed {
        struct source_reader *rd;
        const struct object *obj;
        bool gzip;
        bool z_ready;   /* inflateInit2 done */
        bool in_eof;    /* the source is over */
        bool between;   /* GZIP: at a member boundary (or before the first) */
        z_stream z;
};

static int feed_more(struct parser *p, struct feed *f, char *msg, size_t msglen)
{
        struct load *l = p->l;
        struct records *rs = &p->rs;
        char e[600];
        /* a record longer than a chunk: grow geometrically, so that parsing
         * it again from its start each time costs linear time overall */
        size_t want = records_pending(rs);
        if (want < READ_CHUNK)
                want = READ_CHUNK;
        size_t room;
        char *dst = records_space(rs, want, &room);
        if (!dst) {
                snprintf(msg, msglen, "COPY: out of memory");
                return -ENOMEM;
        }
        if (room > want)
                room = want;
        if (!f->gzip) {
                ssize_t n = source_read_chunk(f->rd, dst, room, e, sizeof(e));
                if (n < 0) {
                        snprintf(msg, msglen, "COPY: %s", e);
                        return (int)n;
                }
                if (n == 0) {
                        records_end(rs);
                } else {
                        progress_add(l, l->req->progress ? &l->req->progress->bytes : NULL,
                                     (uint64_t)n);
                        records_commit(rs, (size_t)n);
                }
                return 0;
        }
        if (room > UINT32_MAX)
                room = UINT32_MAX;
        f->z.next_out = (Bytef *)dst;
        f->z.avail_out = (uInt)room;
        for (;;) {
                if (f->z.avail_in == 0 && !f->in_eof) {
                        ssize_t n = source_read_chunk(f->rd, p->zin, READ_CHUNK, e, sizeof(e));
                        if (n < 0) {
                                snprintf(msg, msglen, "COPY: %s", e);
                                return (int)n;
                        }
                        if (n == 0) {
                                f->in_eof = true;
                        } else {
                                progress_add(l,
                                             l->req->progress ? &l->req->progress->bytes : NULL,
                                             (uint64_t)n);
                                f->z.next_in = (Bytef *)p->zin;
                                f->z.avail_in = (uInt)n;
                        }
                }
                if (f->z.avail_in == 0 && f->in_eof) {
                        size_t got = room - f->z.avail_out;
                        if (got) {
                                records_commit(rs, got);
                                return 0;
                        }
                        if (!f->between) {
                                snprintf(msg, msglen, "COPY: '%s' is a truncated gzip stream",
                                         f->obj->src.uri);
                                return -EINVAL;
                        }
                        records_end(rs);
                        return 0;
                }
                f->between = false;
                int zr = inflate(&f->z, Z_NO_FLUSH);
                if (zr == Z_STREAM_END) {
                        inflateReset(&f->z); /* another gzip member may follow */
                        f->between = true;
                } else if (zr == Z_MEM_ERROR) {
                        snprintf(msg, msglen, "COPY: out of memory");
                        return -ENOMEM;
                } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
                        snprintf(msg, msglen, "COPY: '%s' is not valid gzip (GZIP given): %s",
                                 f->obj->src.uri, f->z.msg ? f->z.msg : "bad data");
                        return -EINVAL;
                }
                size_t got = room - f->z.avail_out;
                if (got) {
                        records_commit(rs, got);
                        return 0;
                }
        }
}

/* Reads and converts one object into its slot. */
static void produce(struct parser *p, size_t idx, struct slot *sl)
{
        struct load *l = p->l;
        const struct object *obj = &l->objs[idx];
        char e[600], m[720];
        struct feed f = { .obj = obj, .gzip = l->stmt->gzip, .between = true };
        int r;
        if (obj->src.key)
                r = source_open_object(l->src, &obj->src, &f.rd, e, sizeof(e));
        else
                r = source_open_uri(obj->src.uri, l->req->source_ctx, l->req->file_roots, &f.rd, e, sizeof(e));
        if (r == -ENOENT && !obj->mandatory && !obj->src.key)
                return; /* an optional manifest entry that is not there */
        if (r < 0) {
                if (!obj->src.key && r == -ENOENT)
                        snprintf(m, sizeof(m), "COPY: mandatory manifest entry '%s' not found",
                                 obj->src.uri);
                else
                        snprintf(m, sizeof(m), "COPY: %s", e);
                slot_fail(l, sl, r, m);
                return;
        }
        if (f.gzip) {
                if (inflateInit2(&f.z, 16 + MAX_WBITS) != Z_OK) {
                        source_close_object(f.rd);
                        slot_fail(l, sl, -ENOMEM, "COPY: out of memory");
                        return;
                }
                f.z_ready = true;
        }
        struct buf win = p->rs.win; /* reuse the last object's window */
        records_init_stream(&p->rs, p->doc, RECORD_MAX,
                            l->stmt->acceptinvchars
                                    ? (int)(unsigned char)l->stmt->acceptinvchars_char
                                    : -1);
        p->rs.win = win;
        p->rs.win.len = 0;
        struct records_item it;
        struct chunk *c = chunk_get(l);
        if (!c) {
                r = -ENOMEM;
                snprintf(m, sizeof(m), "COPY: out of memory");
                goto fail;
        }
        for (;;) {
                r = records_next(&p->rs, &it);
                if (r == 0)
                        break;
                if (r == -EAGAIN) {
                        if (stopping(l))
                                goto out;
                        r = feed_more(p, &f, m, sizeof(m));
                        if (r < 0)
                                goto fail;
                        continue;
                }
                if (r > 0)
                        r = convert_record(p, c, &it, obj, m, sizeof(m));
                if (r < 0) {
                        if (r != -EINVAL)
                                snprintf(m, sizeof(m), "COPY: out of memory");
                        goto fail;
                }
                if (c->rows == c->cap_rows || c->n_rejects >= 64 || c->text.len >= SLOT_BYTES / 4) {
                        publish(l, sl, c);
                        c = NULL;
                        if (stopping(l))
                                goto out;
                        c = chunk_get(l);
                        if (!c) {
                                r = -ENOMEM;
                                snprintf(m, sizeof(m), "COPY: out of memory");
                                goto fail;
                        }
                }
        }
        if (c->rows || c->n_rejects)
                publish(l, sl, c);
        else
                chunk_put(l, c);
        c = NULL;
        goto out;
fail:
        slot_fail(l, sl, r, m);
out:
        if (c)
                chunk_put(l, c);
        if (f.z_ready)
                inflateEnd(&f.z);
        source_close_object(f.rd);
        /* keep a window of ordinary size for the next object, not a huge one */
        if (p->rs.win.cap > 4 * READ_CHUNK)
                records_free(&p->rs);
}

static void *parser_main(void *arg)
{
        struct parser *p = arg;
        struct load *l = p->l;
        for (;;) {
                pthread_mutex_lock(&l->mu);
                while (!l->stop && l->next_obj < l->n_objs &&
                       l->next_obj >= l->head_obj + l->n_slots)
                        pthread_cond_wait(&l->to_producers, &l->mu);
                if (l->stop || l->next_obj >= l->n_objs) {
                        pthread_mutex_unlock(&l->mu);
                        break;
                }
                size_t idx = l->next_obj++;
                struct slot *sl = &l->slots[idx % l->n_slots];
                sl->obj = idx;
                pthread_mutex_unlock(&l->mu);
                produce(p, idx, sl);
                pthread_mutex_lock(&l->mu);
                sl->done = true;
                pthread_cond_broadcast(&l->to_consumer);
                pthread_mutex_unlock(&l->mu);
        }
        return NULL;
}

/* ---- the consumer: chunks to rows ---------------------------------------- */

/* Reports one reject; fails the COPY when there are MAXERROR of them or
 * more.  "Data load operations", MAXERROR: "If the load returns the
 * error_count number of errors or greater, the load fails ... Set this
 * value to 0 or 1 if you want the load to fail as soon as the first error
 * occurs": n allows n - 1 rejects, and 0 behaves as 1 (README, "The COPY
 * emulator", says why this reading). */
static int report(struct load *l, const struct object *obj, struct chunk *c,
                  const struct reject *rj)
{
        if (rj->not_json) {
                snprintf(l->err, l->errlen,
                         "COPY %s: '%s' is not JSON: the text at byte %" PRIu64 " (line %" PRIu64
                         ") does not start a JSON object or array; FORMAT JSON reads "
                         "objects, one after another or one per line [error 1216]",
                         l->stmt->table, obj->src.uri, rj->position, rj->line);
                util_utf8_trim(l->err);
                return -EINVAL;
        }
        l->rejects++;
        progress_add(l, l->req->progress ? &l->req->progress->errors : NULL, 1);
        const struct column *col = rj->col >= 0 ? &l->cols[rj->col] : NULL;
        char raw[RAW_LINE_MAX + 1], value[300], reason[300];
        snprintf(raw, sizeof(raw), "%.*s", (int)rj->raw_len, c->text.data + rj->raw);
        snprintf(value, sizeof(value), "%.*s", (int)rj->value_len, c->text.data + rj->value);
        snprintf(reason, sizeof(reason), "%.*s", (int)rj->reason_len, c->text.data + rj->reason);
        if (l->req->on_error) {
                struct load_error e = {
                        .filename = obj->src.uri,
                        .line_number = rj->line,
                        .colname = col ? col->name : "",
                        .type = col ? col->decl : "",
                        .position = rj->position,
                        .raw_line = raw,
                        .raw_field_value = value,
                        .err_code = rj->code,
                        .err_reason = reason,
                };
                l->req->on_error(l->req->userdata, &e);
        }
        uint64_t limit = l->stmt->maxerror > 1 ? (uint64_t)l->stmt->maxerror : 1;
        if (l->rejects >= limit) {
                if (col)
                        snprintf(l->err, l->errlen,
                                 "COPY %s: record rejected at '%s' line %" PRIu64
                                 ", column '%s' (%s): %s [error %d]; %" PRIu64
                                 " reject(s), MAXERROR is %lld",
                                 l->stmt->table, obj->src.uri, rj->line, col->name, col->decl,
                                 reason, rj->code, l->rejects, l->stmt->maxerror);
                else
                        snprintf(l->err, l->errlen,
                                 "COPY %s: record rejected at '%s' line %" PRIu64
                                 ": %s [error %d]; %" PRIu64 " reject(s), MAXERROR is %lld",
                                 l->stmt->table, obj->src.uri, rj->line, reason, rj->code,
                                 l->rejects, l->stmt->maxerror);
                util_utf8_trim(l->err);
                return -EINVAL;
        }
        return 0;
}

static int insert_rows(struct load *l, const struct object *obj, struct chunk *c, size_t from,
                       size_t to)
{
        if (l->object_column)
                l->cells[l->n_cols] = (struct cell){ .kind = CELL_TEXT,
                                                     .text = obj->src.uri,
                                                     .len = strlen(obj->src.uri) };
        for (size_t r = from; r < to; r++) {
                const struct cell *row = c->cells + r * l->n_cols;
                for (size_t i = 0; i < l->n_cols; i++) {
                        l->cells[i] = row[i];
                        if (row[i].kind == CELL_TEXT)
                                l->cells[i].text = c->text.data + row[i].i;
                }
                int res = wh_inserter_row(l->ins, l->cells, l->err, l->errlen);
                if (res < 0)
                        return res;
        }
        progress_add(l, l->req->progress ? &l->req->progress->rows : NULL, to - from);
        return 0;
}

static int consume_chunk(struct load *l, const struct object *obj, struct chunk *c)
{
        size_t done = 0;
        for (size_t k = 0; k < c->n_rejects; k++) {
                int r = insert_rows(l, obj, c, done, c->rejects[k].before_row);
                if (r < 0)
                        return r;
                done = c->rejects[k].before_row;
                r = report(l, obj, c, &c->rejects[k]);
                if (r < 0)
                        return r;
        }
        return insert_rows(l, obj, c, done, c->rows);
}

static int consume(struct load *l)
{
        int r = 0;
        for (size_t idx = 0; idx < l->n_objs && r == 0; idx++) {
                struct slot *sl = &l->slots[idx % l->n_slots];
                for (;;) {
                        if (cancelled(l)) {
                                snprintf(l->err, l->errlen, "COPY %s: cancelled", l->stmt->table);
                                return -ECANCELED;
                        }
                        pthread_mutex_lock(&l->mu);
                        while (!(idx < l->next_obj && sl->obj == idx &&
                                 (sl->head || sl->done || sl->err)))
                                pthread_cond_wait(&l->to_consumer, &l->mu);
                        struct chunk *c = sl->head;
                        if (c) {
                                sl->head = c->next;
                                if (!sl->head)
                                        sl->tail = NULL;
                                sl->bytes -= c->bytes;
                                pthread_cond_broadcast(&l->to_producers);
                        }
                        bool finished = !c && (sl->done || sl->err);
                        int err = sl->err;
                        if (!c && sl->err)
                                snprintf(l->err, l->errlen, "%s", sl->errmsg);
                        pthread_mutex_unlock(&l->mu);
                        if (c) {
                                r = consume_chunk(l, &l->objs[idx], c);
                                chunk_put(l, c);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (err < 0)
                                return err;
                        if (finished && sl->done)
                                break;
                }
                pthread_mutex_lock(&l->mu);
                sl->done = false;
                sl->err = 0;
                sl->bytes = 0;
                l->head_obj = idx + 1;
                pthread_cond_broadcast(&l->to_producers);
                pthread_mutex_unlock(&l->mu);
                progress_add(l, l->req->progress ? &l->req->progress->objects : NULL, 1);
        }
        return r;
}

static unsigned n_parsers(const struct load *l)
{
        unsigned want = l->req->concurrency ? l->req->concurrency : 1;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
                cpus = 1;
        if (want > (unsigned)cpus)
                want = (unsigned)cpus;
        if (want > MAX_PARSERS)
                want = MAX_PARSERS;
        if (want > l->n_objs)
                want = (unsigned)l->n_objs;
        return want ? want : 1;
}

static void parser_free(struct parser *p, size_t n_cols)
{
        jv_doc_free(p->doc);
        records_free(&p->rs);
        free(p->zin);
        if (p->scratch)
                for (size_t i = 0; i < n_cols; i++)
                        buf_free(&p->scratch[i]);
        free(p->scratch);
        free(p->hints);
        free(p->cells);
}

static int run_pipeline(struct load *l)
{
        size_t slots = l->req->concurrency ? l->req->concurrency : 1;
        if (slots > 256)
                slots = 256;
        l->n_slots = slots;
        l->slots = calloc(slots, sizeof(*l->slots));
        if (!l->slots)
                return -ENOMEM;
        for (size_t i = 0; i < slots; i++)
                l->slots[i].obj = SIZE_MAX;
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->to_consumer, NULL);
        pthread_cond_init(&l->to_producers, NULL);
        unsigned np = n_parsers(l);
        struct parser ps[MAX_PARSERS];
        memset(ps, 0, sizeof(ps));
        unsigned started = 0;
        int r = 0;
        for (unsigned i = 0; i < np; i++) {
                struct parser *p = &ps[i];
                p->l = l;
                p->doc = jv_doc_new();
                p->scratch = calloc(l->n_cols, sizeof(*p->scratch));
                p->hints = calloc(l->n_cols, sizeof(*p->hints));
                p->cells = calloc(l->n_cols, sizeof(*p->cells));
                p->zin = l->stmt->gzip ? malloc(READ_CHUNK) : NULL;
                if (!p->doc || !p->scratch || !p->hints || !p->cells ||
                    (l->stmt->gzip && !p->zin)) {
                        r = -ENOMEM;
                        break;
                }
                if (pthread_create(&p->thread, NULL, parser_main, p) != 0) {
                        r = -EAGAIN;
                        snprintf(l->err, l->errlen, "COPY: cannot start a parser thread");
                        break;
                }
                started++;
        }
        if (r == 0)
                r = consume(l);
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_broadcast(&l->to_producers);
        pthread_mutex_unlock(&l->mu);
        for (unsigned i = 0; i < started; i++)
                pthread_join(ps[i].thread, NULL);
        for (unsigned i = 0; i < np; i++)
                parser_free(&ps[i], l->n_cols);
        for (size_t i = 0; i < slots; i++) {
                struct chunk *c = l->slots[i].head;
                while (c) {
                        struct chunk *n = c->next;
                        chunk_destroy(c);
                        c = n;
                }
        }
        while (l->free_chunks) {
                struct chunk *n = l->free_chunks->next;
                chunk_destroy(l->free_chunks);
                l->free_chunks = n;
        }
        free(l->slots);
        pthread_cond_destroy(&l->to_consumer);
        pthread_cond_destroy(&l->to_producers);
        pthread_mutex_destroy(&l->mu);
        return r;
}

/* ---- entry point -------------------------------------------------------- */

static void load_free(struct load *l)
{
        wh_inserter_free(l->ins);
        for (size_t i = 0; i < l->n_cols; i++) {
                free(l->cols[i].name);
                free(l->cols[i].match);
                free(l->cols[i].decl);
        }
        free(l->cols);
        free(l->cells);
        jsonpaths_free(l->paths);
        convert_timefmt_free(l->timeformat);
        convert_timefmt_free(l->dateformat);
        objects_free(l);
        source_free(l->src);
        copy_stmt_free(l->stmt);
}

int load_run(const struct load_request *req, char *err, size_t errlen)
{
        struct load l = { .req = req, .err = err, .errlen = errlen };
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
        l.opts.timeformat = l.timeformat;
        l.opts.dateformat = l.dateformat;
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
        if (!l.stmt->manifest) {
                r = source_open_ctx(l.stmt->from, req->source_ctx, req->file_roots, &l.src, e, sizeof(e));
                if (r < 0) {
                        snprintf(err, errlen, "COPY: %s", e);
                        goto out;
                }
        }
        r = setup_columns(&l);
        if (r < 0)
                goto out;
        r = setup_paths(&l);
        if (r < 0)
                goto out;
        r = l.stmt->manifest ? list_manifest(&l) : list_prefix(&l);
        if (r < 0)
                goto out;
        r = setup_inserter(&l);
        if (r < 0)
                goto out;
        r = run_pipeline(&l);
        if (r == 0) /* a streaming driver (PostgreSQL COPY) reports its result here */
                r = wh_inserter_finish(l.ins, err, errlen);
out:
        if (r == -ENOMEM && err[0] == '\0')
                snprintf(err, errlen, "COPY: out of memory");
        load_free(&l);
        return r;
}
