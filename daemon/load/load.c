/* load.c - load_start(): the COPY emulator's driver, a state machine on the
 * loop thread.  It ties the pure pieces together (copy.h parses the
 * statement, parse.h turns an object's bytes into rows) around the two
 * parts that do I/O, both asynchronous on the same loop: source.h for the
 * objects and wh.h's bulk insert for the rows.
 *
 * Set-up runs one step after the other, each ending in a callback: the
 * table's columns (wh_columns), the JSONPaths file (source_read_small), the
 * listing (source_list) or the manifest, then wh_copy_begin.  Then the
 * pipeline:
 *   - up to `concurrency` objects are read at once (source_read), in key
 *     order, as long as their listed sizes add up to FLIGHT_BYTES_MAX; an
 *     object's bytes wait in its buffer, and its read pauses (SOURCE_PAUSE)
 *     while OBJ_IN_MAX bytes wait, or IN_TOTAL_MAX for all objects;
 *   - each object's bytes go, a piece at a time, to one pool job of pure
 *     code (parse_run: gunzip, records, convert) that returns up to
 *     JOB_OUT_MAX of chunks of rows and rejects; the partial record at a
 *     piece's end stays in the object's parse_obj, so one object's jobs run
 *     one after the other while different objects' run in parallel, at most
 *     JOBS_MAX at once (the last few KiB of an object are parsed on the
 *     loop: less work than a trip to the pool).  An object whose converted
 *     rows wait (OUT_OBJ_MAX), or any but the first while all objects' rows
 *     wait or are promised to jobs (QUEUED_MAX), gets no job until they
 *     drain;
 *   - the rows go to the warehouse in key order, object by object and chunk
 *     by chunk, in batches of batch_rows rows or BATCH_BYTES_MAX of chunks
 *     (wh_copy_rows, at most two in flight: the warehouse's callback is the
 *     flow control), and rejects are reported and counted against MAXERROR
 *     as they come in that order, so rows, rejects and line numbers do not
 *     depend on concurrency.
 * Every bound is a constant, so what a load holds does not grow with the
 * data: `bench/etl.py --sizes 1,100` shows etld's peak RSS at both sizes.
 * Every callback ends in pump(), which moves what can move.  Cancel and
 * failure are one path: cancel the sources, let running pool jobs finish
 * (they are short), wait for what the warehouse holds, end the insert, then
 * call done.  Nothing here blocks or waits on a lock.
 *
 * Options that parse but whose behaviour is not here yet fail the COPY with
 * "COPY option X is not supported yet" before anything is read.  See load.h. */
#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include <jansson.h>

#include "copy.h"
#include "jv.h"
#include "parse.h"
#include "records.h"
#include "source.h"
#include "util.h"

#define RECORD_MAX RECORDS_MAX_DEFAULT
#define OBJ_IN_MAX ((size_t)128 << 10) /* an object's unparsed bytes: its read pauses */
#define FLIGHT_BYTES_MAX ((uint64_t)2 << 20) /* sizes of the objects in flight: big ones
                                                 go a few at a time, small ones many */
#define IN_TOTAL_MAX ((size_t)4 << 20) /* all objects' unparsed bytes: reads but the head's
                                          pause, so many objects in flight stay cheap */
#define JOB_MIN ((size_t)64 << 10)    /* bytes that make a job (or the object's end) */
#define OUT_OBJ_MAX ((size_t)512 << 10) /* an object's rows waiting: no more jobs for it */
#define QUEUED_MAX ((size_t)4 << 20)  /* all rows waiting: only the first object parses */
#define JOB_OUT_MAX ((size_t)512 << 10) /* rows one job makes (at least one chunk) */
#define JOBS_MAX 4 /* jobs queued at once but the head's: the pool has 4 threads, and a
                      job that waits for one still holds its room in QUEUED_MAX */
#define INLINE_MAX ((size_t)16 << 10) /* the last bytes of an object, parsed on the loop */
#define MAX_FLIGHT 1024               /* cap on load.concurrency */
#define BATCH_ROWS_DEFAULT 512
#define BATCH_ROWS_MAX 100000
#define N_BATCHES 2
#define BATCH_BYTES_MAX ((size_t)1 << 20) /* a batch goes early when its chunks hold this:
                                             rows of small objects are a chunk each */

struct flight;

/* One object to read: a listed key, or a manifest entry. */
struct object {
        struct source_object src; /* uri always set; key NULL for manifest entries */
        bool mandatory;           /* manifest: a missing file fails the COPY */
        bool started, parsed, skipped;
        struct flight *fl; /* while it is read and parsed */
        int err;           /* < 0: it failed; msg says why (reported in its turn) */
        char *msg;
        struct parse_chunk *head, *tail; /* converted, waiting for their turn */
        size_t out_bytes;
};

/* An object being read and parsed. */
struct flight {
        uv_work_t work;
        struct load *l;
        size_t idx;
        struct source_read *rd;
        bool reading; /* end() has not come */
        bool ended;   /* end() came with 0: in is the last of it */
        bool paused;  /* data() said SOURCE_PAUSE */
        bool read_cancelled;
        struct buf in; /* read, not given to a job yet */
        struct parse_obj *parse;
        /* the job: parses jin[joff..) */
        bool running, cancel_tried, eof;
        struct buf jin;
        size_t joff, joff0;
        size_t budget; /* bytes of chunks the job may make */
        enum parse_status status;
        struct parse_chunk *chunks; /* what it made, in order */
        int err;
        char msg[720];
        struct flight *next_spare;
};

/* Rows handed to the warehouse at once; their text lives in the chunks
 * refs holds until the warehouse's callback. */
struct batch {
        struct load *l;
        struct cell *cells;
        struct wh_rows rows;
        struct parse_chunk **refs;
        size_t n_refs, cap_refs;
        size_t ref_bytes; /* the bytes of the chunks refs holds */
        bool busy;
};

enum phase { PH_SETUP, PH_RUN };

struct load {
        const struct load_request *req;
        uv_loop_t *loop;
        load_done_fn done;
        uv_timer_t timer; /* starts the set-up; pump() soon from where it cannot run */
        enum phase phase;
        bool begun;

        struct copy_stmt *stmt;
        struct parse_column *cols;
        size_t n_cols;
        struct jsonpaths *paths;
        struct convert_timefmt *timeformat, *dateformat;
        struct convert_opts opts;
        struct parse_spec spec;
        bool object_column; /* load_request.object_column is inserted too */
        const char **names;
        struct source_env env;
        struct source *src;
        struct object *objs;
        size_t n_objs;
        size_t conc, batch_rows, width;

        /* the pipeline */
        struct flight **flights;
        size_t n_flights;
        uint64_t flight_bytes; /* listed sizes of the objects in flight (weight()) */
        size_t reserved;       /* of QUEUED_MAX: the budgets of the jobs out */
        struct flight *spare; /* over, kept for the next objects */
        size_t n_spare;
        size_t next_start; /* next object to read */
        size_t head;       /* the object whose rows go in now */
        size_t first_bad;  /* no object after a failed one is started */
        struct batch batches[N_BATCHES];
        int fill; /* the batch being filled, or -1 */
        uint64_t rejects;
        struct load_stats st;

        /* outstanding */
        unsigned wh_ops;
        bool small_pending, list_pending;
        bool copy_open, end_sent;

        /* ending */
        bool stopping, flush, wh_failed, src_cancelled, closing;
        int result;
        char msg[1024];
        bool in_pump, again;
};

static void pump(struct load *l);

/* The engine's counters (load_request.progress may be NULL). */
#define PROGRESS(l, field, n)                                                                      \
        do {                                                                                       \
                if ((l)->req->progress)                                                            \
                        atomic_fetch_add(&(l)->req->progress->field, (n));                         \
        } while (0)

static void peak(size_t now, size_t *p)
{
        if (now > *p)
                *p = now;
}

static void on_timer(uv_timer_t *t);

static void kick(struct load *l)
{
        if (!l->closing)
                uv_timer_start(&l->timer, on_timer, 0, 0);
}

/* The first failure is the one reported; it stops the load (pump() does
 * the rest).  flush: the rows before the failure still go in (the caller's
 * transaction decides), as they would have one by one. */
static void fail_how(struct load *l, int r, bool flush, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_how(struct load *l, int r, bool flush, const char *fmt, ...)
{
        if (l->stopping || l->closing)
                return;
        l->stopping = true;
        l->flush = flush;
        l->result = r;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->msg, sizeof(l->msg), fmt, ap);
        va_end(ap);
        if (l->msg[0] == '\0')
                snprintf(l->msg, sizeof(l->msg), "COPY: %s", strerror(-r));
        l->again = true;
        if (!l->in_pump)
                kick(l);
}
#define fail(l, r, ...) fail_how((l), (r), false, __VA_ARGS__)

/* ---- set-up: statement, columns, JSONPaths, objects ---------------------- */

static int not_supported(struct load *l, const char *option, const char *hint)
{
        fail(l, -ENOTSUP, "COPY option %s is not supported yet%s%s%s", option, hint ? " (" : "",
             hint ? hint : "", hint ? ")" : "");
        return -ENOTSUP;
}

/* Refuses what parses but does not behave as Redshift would yet, and
 * compiles the format strings. */
static int check_options(struct load *l)
{
        const struct copy_stmt *s = l->stmt;
        char e[256];
        if (s->format == COPY_FORMAT_TEXT)
                return not_supported(l, "FORMAT (pipe-delimited text)", "give FORMAT AS JSON");
        if (s->schema && strcmp(s->schema, "public") != 0) {
                fail(l, -ENOTSUP,
                     "COPY: schema-qualified table names are not supported yet ('%s.%s')",
                     s->schema, s->table);
                return -ENOTSUP;
        }
        if (s->timefmt == COPY_TIME_STRING && s->timeformat &&
            convert_timefmt_compile(s->timeformat, &l->timeformat, e, sizeof(e)) < 0) {
                fail(l, -EINVAL, "COPY: TIMEFORMAT %s", e);
                return -EINVAL;
        }
        if (s->dateformat && strcmp(s->dateformat, "auto") == 0) { /* case-sensitive */
                l->opts.dateauto = true;
        } else if (s->dateformat && strcasecmp(s->dateformat, "YYYY-MM-DD") != 0 &&
                   convert_timefmt_compile(s->dateformat, &l->dateformat, e, sizeof(e)) < 0) {
                fail(l, -EINVAL, "COPY: DATEFORMAT %s", e);
                return -EINVAL;
        }
        l->opts.blanksasnull = s->blanksasnull;
        l->opts.emptyasnull = s->emptyasnull;
        l->opts.truncatecolumns = s->truncatecolumns;
        l->opts.roundec = s->roundec;
        l->opts.timeformat = l->timeformat;
        l->opts.dateformat = l->dateformat;
        switch (s->timefmt) {
        case COPY_TIME_AUTO:
                l->opts.timefmt = CONVERT_TIME_AUTO;
                break;
        case COPY_TIME_EPOCHSECS:
                l->opts.timefmt = CONVERT_TIME_EPOCHSECS;
                break;
        case COPY_TIME_EPOCHMILLISECS:
                l->opts.timefmt = CONVERT_TIME_EPOCHMILLISECS;
                break;
        default:
                l->opts.timefmt = CONVERT_TIME_DEFAULT;
                break;
        }
        return 0;
}

/* One [name, declared type] of wh_columns. */
static const char *wcol(json_t *cols, size_t j, size_t k)
{
        const char *s = json_string_value(json_array_get(json_array_get(cols, j), k));
        return s ? s : "";
}

/* The statement's columns (or the table's, less the object column) from
 * the table's. */
static int setup_columns(struct load *l, json_t *wc)
{
        const struct copy_stmt *s = l->stmt;
        size_t n = json_array_size(wc);
        const char *oc = l->req->object_column;
        if (oc) { /* the object column is etld's, not the statement's */
                bool found = false;
                for (size_t j = 0; j < n; j++)
                        found = found || strcasecmp(wcol(wc, j, 0), oc) == 0;
                for (size_t i = 0; i < s->n_columns; i++)
                        if (strcasecmp(s->columns[i], oc) == 0) {
                                fail(l, -EINVAL,
                                     "COPY: column '%s' of table '%s' is etld's own and cannot "
                                     "be loaded",
                                     oc, s->table);
                                return -EINVAL;
                        }
                l->object_column = found; /* a table without it: nothing to fill */
                if (!found)
                        oc = NULL;
        }
        size_t want = s->n_columns ? s->n_columns : n - (oc ? 1 : 0);
        l->cols = calloc(want ? want : 1, sizeof(*l->cols));
        l->names = calloc(want + 2, sizeof(*l->names));
        if (!l->cols || !l->names) {
                fail(l, -ENOMEM, "COPY: out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0, next = 0; i < want; i++) {
                size_t src = n;
                if (s->n_columns) {
                        for (size_t j = 0; j < n && src == n; j++)
                                if (strcasecmp(wcol(wc, j, 0), s->columns[i]) == 0)
                                        src = j;
                        if (src == n) {
                                fail(l, -EINVAL, "COPY: column '%s' of table '%s' does not exist",
                                     s->columns[i], s->table);
                                return -EINVAL;
                        }
                        for (size_t k = 0; k < i; k++)
                                if (strcasecmp(l->cols[k].name, wcol(wc, src, 0)) == 0) {
                                        fail(l, -EINVAL, "COPY: column '%s' is named twice",
                                             s->columns[i]);
                                        return -EINVAL;
                                }
                } else {
                        if (oc && strcasecmp(wcol(wc, next, 0), oc) == 0)
                                next++;
                        src = next++;
                }
                struct parse_column *c = &l->cols[i];
                l->n_cols = i + 1;
                c->name = strdup(wcol(wc, src, 0));
                c->match = strdup(wcol(wc, src, 0));
                c->decl = strdup(wcol(wc, src, 1));
                if (!c->name || !c->match || !c->decl) {
                        fail(l, -ENOMEM, "COPY: out of memory");
                        return -ENOMEM;
                }
                /* Redshift folds column names to lower case; 'auto' compares
                 * JSON keys with them case-sensitively. */
                for (char *p = c->match; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char)(*p - 'A' + 'a');
                c->match_len = strlen(c->match);
                if (convert_parse_type(c->decl, &c->type) < 0) {
                        fail(l, -EINVAL,
                             "COPY: column '%s' of table '%s' has type '%s' that COPY cannot "
                             "load into",
                             c->name, s->table, c->decl);
                        return -EINVAL;
                }
                l->names[i] = c->name;
        }
        if (l->n_cols == 0) {
                fail(l, -EINVAL, "COPY: table '%s' has no columns", s->table);
                return -EINVAL;
        }
        if (l->object_column)
                l->names[l->n_cols] = l->req->object_column;
        return 0;
}

static void begin_paths(struct load *l);
static void begin_list(struct load *l);
static void begin_copy(struct load *l);

static void columns_cb(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct load *l = ud;
        l->wh_ops--;
        if (!l->stopping) {
                if (res->err == -ENOENT)
                        fail(l, -ENOENT, "COPY: table '%s' does not exist", l->stmt->table);
                else if (res->err < 0)
                        fail(l, res->err, "%s", res->msg);
                else if (setup_columns(l, res->rows) == 0)
                        begin_paths(l);
        }
        pump(l);
}

static void begin_columns(struct load *l)
{
        int r = wh_columns(l->req->wh, l->stmt->table, columns_cb, l);
        if (r < 0)
                fail(l, r, "COPY: cannot read the columns of table '%s': %s", l->stmt->table,
                     strerror(-r));
        else
                l->wh_ops++;
}

static void paths_cb(void *ud, int err, const char *msg, struct buf *data)
{
        struct load *l = ud;
        const struct copy_stmt *s = l->stmt;
        l->small_pending = false;
        char e[512];
        if (l->stopping) {
                /* nothing */
        } else if (err < 0) {
                fail(l, err, "COPY: cannot read the JSONPaths file: %s", msg);
        } else {
                int r = jsonpaths_parse(data->data ? data->data : "", data->len, &l->paths, e,
                                        sizeof(e));
                if (r < 0) {
                        fail(l, r, "COPY: %s (in '%s')", e, s->jsonpaths);
                } else if (r == 0 && jsonpaths_count(l->paths) != l->n_cols) {
                        fail(l, -EINVAL,
                             "COPY: the number of jsonpaths and the number of columns should "
                             "match; JSONPaths file '%s' has %zu paths, the %s has %zu columns",
                             s->jsonpaths, jsonpaths_count(l->paths),
                             s->n_columns ? "column list" : "table", l->n_cols);
                } else {
                        /* r == 1: not named "jsonpaths": 'auto' (l->paths stays NULL) */
                        begin_list(l);
                }
        }
        if (data)
                buf_free(data);
        pump(l);
}

static void begin_paths(struct load *l)
{
        if (l->stmt->format != COPY_FORMAT_JSON_PATHS) {
                begin_list(l);
                return;
        }
        char e[512];
        int r = source_read_small(l->stmt->jsonpaths, &l->env, SOURCE_SMALL_MAX, paths_cb, l, e,
                                  sizeof(e));
        if (r < 0)
                fail(l, r, "COPY: cannot read the JSONPaths file: %s", e);
        else
                l->small_pending = true;
}

static void list_cb(void *ud, int err, const char *msg, struct source_object *so, size_t n)
{
        struct load *l = ud;
        l->list_pending = false;
        if (l->stopping) {
                source_objects_free(so, n);
        } else if (err < 0) {
                source_objects_free(so, n);
                fail(l, err, "COPY: %s", msg);
        } else if (n == 0) {
                source_objects_free(so, n);
                /* Redshift: "The specified S3 prefix ... does not exist" */
                fail(l, -EINVAL, "COPY: no objects found under '%s' (the prefix matches no key)",
                     l->stmt->from);
        } else {
                l->objs = calloc(n, sizeof(*l->objs));
                if (!l->objs) {
                        source_objects_free(so, n);
                        fail(l, -ENOMEM, "COPY: out of memory");
                } else {
                        for (size_t i = 0; i < n; i++) {
                                l->objs[i].src = so[i];
                                l->objs[i].mandatory = true;
                        }
                        free(so); /* the strings moved into l->objs */
                        l->n_objs = n;
                        begin_copy(l);
                }
        }
        pump(l);
}

/* "Using a manifest to specify data files": {"entries": [{"url": "...",
 * "mandatory": true|false, "meta": {"content_length": N}}, ...]}; url names
 * one object exactly.  content_length (which Redshift needs only for ORC
 * and Parquet) is a hint here, as a listing's size is: it weighs the object
 * against FLIGHT_BYTES_MAX, and the read delivers what the object holds.
 * Read with jv, whose values live in one arena (a manifest of 15,000
 * entries is a few MB there, not a jansson tree of a dozen allocations per
 * entry). */
static bool manifest_size(const struct jv *len, uint64_t *size)
{
        char digits[24];
        if (!len) {
                *size = 0;
                return true;
        }
        if (len->type != JV_NUMBER || !len->integer || len->len >= sizeof(digits))
                return false;
        memcpy(digits, len->s, len->len);
        digits[len->len] = '\0';
        long long v = 0;
        if (util_parse_ll(digits, &v) < 0 || v < 0)
                return false;
        *size = (uint64_t)v;
        return true;
}

static int manifest_entry(struct load *l, const struct jv *en, size_t i)
{
        const struct jv *url = NULL, *mand = NULL, *meta = NULL, *len = NULL;
        if (en->type == JV_OBJECT) {
                url = jv_get(en, "url", 3, NULL);
                mand = jv_get(en, "mandatory", 9, NULL);
                meta = jv_get(en, "meta", 4, NULL);
        }
        if (meta && meta->type == JV_OBJECT)
                len = jv_get(meta, "content_length", 14, NULL);
        uint64_t size = 0;
        if (!url || url->type != JV_STRING ||
            (mand && mand->type != JV_TRUE && mand->type != JV_FALSE) ||
            (meta && meta->type != JV_OBJECT) || !manifest_size(len, &size)) {
                fail(l, -EINVAL,
                     "COPY: manifest '%s' entry %zu must have a \"url\" string, an optional "
                     "\"mandatory\" boolean and an optional \"meta\" object whose "
                     "\"content_length\" is a byte count",
                     l->stmt->from, i + 1);
                return -EINVAL;
        }
        char *u = strndup(url->s, url->len);
        if (!u) {
                fail(l, -ENOMEM, "COPY: out of memory");
                return -ENOMEM;
        }
        /* s3:// entries are read through the request's source_ctx
         * (source_read_uri says so when there is none) */
        if (strncmp(u, "file://", 7) != 0 && strncmp(u, "s3://", 5) != 0) {
                fail(l, -EINVAL,
                     "COPY: manifest entry '%s': unknown source (expected s3:// or file://)", u);
                free(u);
                return -EINVAL;
        }
        l->objs[i].src.uri = u;
        l->objs[i].src.size = size;
        l->objs[i].mandatory = mand && mand->type == JV_TRUE;
        l->n_objs = i + 1;
        return 0;
}

static int parse_manifest(struct load *l, const struct buf *b)
{
        const char *text = b->data ? b->data : "";
        size_t n = b->len;
        struct jv_doc *d = jv_doc_new();
        struct jv_result res = {0};
        const struct jv *root = d ? jv_parse(d, text, n, &res) : NULL;
        if (!d || (!root && res.error == JV_ERR_NOMEM)) {
                jv_doc_free(d);
                fail(l, -ENOMEM, "COPY: out of memory");
                return -ENOMEM;
        }
        size_t at = res.pos; /* the error's offset, or what follows the value */
        while (root && at < n &&
               (text[at] == ' ' || text[at] == '\t' || text[at] == '\r' || text[at] == '\n'))
                at++;
        if (!root || at < n) {
                /* where, never what (see jsonpaths_parse) */
                size_t line = 1, col = 1;
                for (size_t k = 0; k < at && k < n; k++, col++)
                        if (text[k] == '\n') {
                                line++;
                                col = 0;
                        }
                jv_doc_free(d);
                fail(l, -EINVAL,
                     "COPY: manifest '%s' is not a JSON file: parsing stops at byte %zu (line "
                     "%zu, column %zu)",
                     l->stmt->from, at, line, col);
                return -EINVAL;
        }
        const struct jv *entries = root->type == JV_OBJECT ? jv_get(root, "entries", 7, NULL) : NULL;
        if (!entries || entries->type != JV_ARRAY) {
                jv_doc_free(d);
                fail(l, -EINVAL, "COPY: manifest '%s' must be an object with an \"entries\" array",
                     l->stmt->from);
                return -EINVAL;
        }
        l->objs = calloc(entries->n ? entries->n : 1, sizeof(*l->objs));
        int r = l->objs ? 0 : -ENOMEM;
        if (r < 0)
                fail(l, -ENOMEM, "COPY: out of memory");
        for (size_t i = 0; r == 0 && i < entries->n; i++)
                r = manifest_entry(l, jv_index(entries, i), i);
        jv_doc_free(d);
        if (r == 0 && l->n_objs == 0) {
                fail(l, -EINVAL, "COPY: manifest '%s' lists no files", l->stmt->from);
                r = -EINVAL;
        }
        return r;
}

static void manifest_cb(void *ud, int err, const char *msg, struct buf *data)
{
        struct load *l = ud;
        l->small_pending = false;
        if (l->stopping) {
                /* nothing */
        } else if (err < 0) {
                fail(l, err, "COPY: cannot read the manifest: %s", msg);
        } else if (parse_manifest(l, data) == 0) {
                begin_copy(l);
        }
        if (data)
                buf_free(data);
        pump(l);
}

static void begin_list(struct load *l)
{
        char e[512];
        int r;
        if (l->stmt->manifest) {
                r = source_read_small(l->stmt->from, &l->env, SOURCE_MANIFEST_MAX, manifest_cb, l, e,
                                      sizeof(e));
                if (r < 0)
                        fail(l, r, "COPY: cannot read the manifest: %s", e);
                else
                        l->small_pending = true;
                return;
        }
        r = source_list(l->src, list_cb, l);
        if (r < 0)
                fail(l, r, "COPY: cannot list '%s': %s", l->stmt->from, strerror(-r));
        else
                l->list_pending = true;
}

static void begin_cb(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct load *l = ud;
        l->wh_ops--;
        if (res->err == 0)
                l->copy_open = true;
        if (l->stopping) {
                /* nothing */
        } else if (res->err < 0) {
                fail(l, res->err, "%s", res->msg);
        } else {
                l->phase = PH_RUN;
        }
        pump(l);
}

static void begin_copy(struct load *l)
{
        l->width = l->n_cols + (l->object_column ? 1 : 0);
        l->spec = (struct parse_spec){
            .table = l->stmt->table,
            .format = l->stmt->format,
            .gzip = l->stmt->gzip,
            .acceptinvchars =
                l->stmt->acceptinvchars ? (int)(unsigned char)l->stmt->acceptinvchars_char : -1,
            .record_max = RECORD_MAX,
            .cols = l->cols,
            .n_cols = l->n_cols,
            .paths = l->paths,
            .opts = &l->opts,
            .object_column = l->object_column,
        };
        size_t n = l->conc < l->n_objs ? l->conc : l->n_objs;
        l->flights = calloc(n ? n : 1, sizeof(*l->flights));
        for (int i = 0; i < N_BATCHES; i++) {
                l->batches[i].l = l;
                l->batches[i].cells = malloc(l->batch_rows * l->width * sizeof(struct cell));
                if (!l->batches[i].cells)
                        break;
        }
        if (!l->flights || !l->batches[N_BATCHES - 1].cells) {
                fail(l, -ENOMEM, "COPY: out of memory");
                return;
        }
        int r = wh_copy_begin(l->req->wh, l->stmt->table, l->names, l->width, begin_cb, l);
        if (r < 0)
                fail(l, r, "COPY %s: the warehouse cannot start the insert: %s", l->stmt->table,
                     strerror(-r));
        else
                l->wh_ops++;
}

/* ---- reading: objects to bytes ------------------------------------------- */

static void try_job(struct load *l, struct flight *fl);

static struct object *obj_of(const struct flight *fl)
{
        return &fl->l->objs[fl->idx];
}

static void obj_fail(struct load *l, struct object *o, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void obj_fail(struct load *l, struct object *o, int err, const char *fmt, ...)
{
        if (o->err)
                return;
        char m[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        o->err = err;
        o->msg = strdup(m);
        size_t idx = (size_t)(o - l->objs);
        if (idx < l->first_bad)
                l->first_bad = idx;
}

/* Must the object's read wait before len more bytes?  Its own bound (which
 * the buffer's size stays within: buf keeps a NUL after the bytes), and all
 * objects' but the head's (the object whose rows go in now always reads
 * on, so the others' bytes can drain). */
static bool read_full(const struct load *l, const struct flight *fl, size_t own, size_t len)
{
        return (fl->in.len > 0 && fl->in.len + len + 1 > own) ||
               (fl->idx != l->head && l->st.bytes_buffered >= IN_TOTAL_MAX);
}

/* The source's bytes wait in the object's buffer until a job takes them. */
static int on_data(void *ud, const char *data, size_t len)
{
        struct flight *fl = ud;
        struct load *l = fl->l;
        if (l->stopping || obj_of(fl)->err)
                return 0; /* dropped: the read is being cancelled */
        if (read_full(l, fl, OBJ_IN_MAX, len)) {
                fl->paused = true;
                return SOURCE_PAUSE;
        }
        fl->paused = false;
        if (buf_append(&fl->in, data, len) < 0) {
                fail(l, -ENOMEM, "COPY: out of memory");
                return 0;
        }
        l->st.bytes_buffered += len;
        peak(l->st.bytes_buffered, &l->st.peak_buffered);
        PROGRESS(l, bytes, len);
        try_job(l, fl);
        return 0;
}

static void on_end(void *ud, int err, const char *msg)
{
        struct flight *fl = ud;
        struct load *l = fl->l;
        struct object *o = obj_of(fl);
        fl->reading = false;
        fl->rd = NULL;
        if (err == 0) {
                fl->ended = true;
        } else if (!l->stopping && !o->err) {
                if (err == -ENOENT && !o->src.key && !o->mandatory)
                        o->skipped = true; /* an optional manifest entry that is not there */
                else if (err == -ENOENT && !o->src.key)
                        obj_fail(l, o, err, "COPY: mandatory manifest entry '%s' not found",
                                 o->src.uri);
                else if (msg && msg[0])
                        obj_fail(l, o, err, "COPY: %s", msg);
                else
                        obj_fail(l, o, err, "COPY: cannot read '%s': %s", o->src.uri,
                                 strerror(-err));
        }
        pump(l);
}

static void chunks_free(struct parse_chunk *c)
{
        while (c) {
                struct parse_chunk *n = c->next;
                parse_chunk_free(c);
                c = n;
        }
}

static void flight_destroy(struct flight *fl)
{
        buf_free(&fl->in);
        buf_free(&fl->jin);
        parse_obj_free(fl->parse);
        chunks_free(fl->chunks);
        free(fl);
}

/* The object is over: its flight waits for the next object, with its
 * buffers when they are of ordinary size. */
static void flight_free(struct load *l, struct flight *fl)
{
        l->st.bytes_buffered -= fl->in.len + (fl->jin.len - fl->joff);
        obj_of(fl)->fl = NULL;
        chunks_free(fl->chunks);
        fl->chunks = NULL;
        if (l->n_spare >= l->conc || fl->in.cap > 2 * OBJ_IN_MAX || fl->jin.cap > 2 * OBJ_IN_MAX) {
                flight_destroy(fl);
                return;
        }
        struct buf in = fl->in, jin = fl->jin;
        struct parse_obj *parse = fl->parse;
        memset(fl, 0, sizeof(*fl));
        fl->in = in;
        fl->jin = jin;
        fl->in.len = fl->jin.len = 0;
        fl->parse = parse;
        fl->next_spare = l->spare;
        l->spare = fl;
        l->n_spare++;
}

/* What an object in flight counts against FLIGHT_BYTES_MAX: its listed
 * size, or one read buffer's worth when the listing gave none. */
static uint64_t weight(const struct object *o)
{
        return o->src.size ? o->src.size : OBJ_IN_MAX;
}

static void start_object(struct load *l, size_t idx)
{
        struct object *o = &l->objs[idx];
        o->started = true;
        l->flight_bytes += weight(o);
        struct flight *fl = l->spare;
        if (fl) {
                l->spare = fl->next_spare;
                l->n_spare--;
                fl->next_spare = NULL;
                parse_obj_reset(fl->parse, o->src.uri);
        } else {
                fl = calloc(1, sizeof(*fl));
                if (fl)
                        fl->parse = parse_obj_new(&l->spec, o->src.uri);
                if (fl && !fl->parse) {
                        free(fl);
                        fl = NULL;
                }
        }
        if (!fl) {
                fail(l, -ENOMEM, "COPY: out of memory");
                return;
        }
        fl->l = l;
        fl->idx = idx;
        fl->work.data = fl;
        o->fl = fl;
        l->flights[l->n_flights++] = fl;
        l->st.objects_reading = l->n_flights;
        peak(l->n_flights, &l->st.peak_objects_reading);

        const struct source_read_cb cb = {.data = on_data, .end = on_end, .ud = fl};
        struct source_read *rd = NULL;
        char e[512] = "";
        int r;
        fl->reading = true; /* on_end may come before the call returns */
        if (o->src.key)
                r = source_read(l->src, &o->src, &cb, &rd);
        else
                r = source_read_uri(o->src.uri, o->src.size, &l->env, &cb, &rd, e, sizeof(e));
        if (r == 0) {
                if (fl->reading)
                        fl->rd = rd;
                return;
        }
        fl->reading = false;
        l->again = true; /* the flight is over: pump() frees it */
        if (r == -ENOENT && !o->src.key && !o->mandatory)
                o->skipped = true;
        else if (r == -ENOENT && !o->src.key)
                obj_fail(l, o, r, "COPY: mandatory manifest entry '%s' not found", o->src.uri);
        else if (e[0])
                obj_fail(l, o, r, "COPY: %s", e);
        else
                obj_fail(l, o, r, "COPY: cannot read '%s': %s", o->src.uri, strerror(-r));
}

/* ---- parsing: bytes to chunks, one pool job at a time per object --------- */

/* The pool's side: parse_run until the bytes or the budget run out. */
static void job_run(uv_work_t *w)
{
        struct flight *fl = w->data;
        struct parse_chunk **tail = &fl->chunks;
        size_t made = 0;
        do {
                struct parse_chunk *c = NULL;
                fl->status = parse_run(fl->parse, fl->jin.data ? fl->jin.data : "", fl->jin.len,
                                       &fl->joff, fl->eof, &c, &fl->err, fl->msg, sizeof(fl->msg));
                if (c) {
                        c->next = NULL;
                        *tail = c;
                        tail = &c->next;
                        made += c->bytes;
                }
        } while (fl->status == PARSE_CHUNK && made < fl->budget);
}

static void publish(struct load *l, struct object *o, struct parse_chunk *c)
{
        c->next = NULL;
        c->refs = 1; /* the object's queue */
        if (o->tail)
                o->tail->next = c;
        else
                o->head = c;
        o->tail = c;
        o->out_bytes += c->bytes;
        l->st.bytes_queued += c->bytes;
        peak(l->st.bytes_queued, &l->st.peak_queued);
}

static void chunk_unref(struct load *l, struct parse_chunk *c)
{
        if (--c->refs > 0)
                return;
        l->st.bytes_queued -= c->bytes;
        parse_chunk_free(c);
}

static void job_done(uv_work_t *w, int status)
{
        struct flight *fl = w->data;
        struct load *l = fl->l;
        struct object *o = obj_of(fl);
        fl->running = false;
        l->st.jobs--;
        l->reserved -= fl->budget;
        if (status == 0) {
                l->st.bytes_buffered -= fl->joff - fl->joff0;
                if (fl->joff == fl->jin.len) {
                        fl->jin.len = 0;
                        fl->joff = 0;
                }
                struct parse_chunk *c = fl->chunks;
                fl->chunks = NULL;
                if (l->stopping || o->err) {
                        chunks_free(c);
                } else {
                        while (c) {
                                struct parse_chunk *n = c->next;
                                publish(l, o, c);
                                c = n;
                        }
                        if (fl->status == PARSE_END)
                                o->parsed = true;
                        else if (fl->status == PARSE_FAIL)
                                obj_fail(l, o, fl->err, "%s", fl->msg);
                }
        }
        pump(l);
}

static bool gzip(const struct load *l)
{
        return l->stmt->gzip;
}

/* Starts the object's next job when it has bytes for one and room for what
 * it makes. */
static void try_job(struct load *l, struct flight *fl)
{
        struct object *o = obj_of(fl);
        if (l->stopping || fl->running || o->parsed || o->skipped || o->err)
                return;
        if (o->out_bytes >= OUT_OBJ_MAX)
                return;
        fl->budget = OUT_OBJ_MAX - o->out_bytes;
        if (fl->idx != l->head) {
                size_t held = l->st.bytes_queued + l->reserved;
                if (held >= QUEUED_MAX)
                        return;
                if (fl->budget > QUEUED_MAX - held)
                        fl->budget = QUEUED_MAX - held;
        }
        if (fl->budget > JOB_OUT_MAX)
                fl->budget = JOB_OUT_MAX;
        if (fl->jin.len == fl->joff) {
                if (fl->in.len < JOB_MIN && !fl->ended)
                        return;
                struct buf t = fl->jin; /* the empty one keeps its memory for the next bytes */
                fl->jin = fl->in;
                fl->in = t;
                fl->in.len = 0;
                fl->joff = 0;
        }
        fl->eof = fl->ended && fl->in.len == 0;
        /* the whole rest of a small object: parsing it takes less than a
         * trip to the pool and back */
        bool inline_job = fl->eof && fl->jin.len - fl->joff <= INLINE_MAX && !gzip(l);
        if (!inline_job && fl->idx != l->head && l->st.jobs >= JOBS_MAX)
                return;
        fl->joff0 = fl->joff;
        fl->running = true;
        fl->cancel_tried = false;
        l->reserved += fl->budget;
        if (inline_job) {
                l->st.jobs++;
                job_run(&fl->work);
                job_done(&fl->work, 0);
                return;
        }
        int r = uv_queue_work(l->loop, &fl->work, job_run, job_done);
        if (r < 0) {
                fl->running = false;
                l->reserved -= fl->budget;
                fail(l, r, "COPY: cannot start a parse job: %s", uv_strerror(r));
                return;
        }
        l->st.jobs++;
        peak(l->st.jobs, &l->st.peak_jobs);
}

/* ---- inserting: chunks to batches, in key order ------------------------- */

static void batch_release(struct load *l, struct batch *b)
{
        for (size_t i = 0; i < b->n_refs; i++)
                chunk_unref(l, b->refs[i]);
        b->n_refs = 0;
        b->ref_bytes = 0;
        b->rows.n_rows = 0;
}

static void batch_cb(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct batch *b = ud;
        struct load *l = b->l;
        l->wh_ops--;
        b->busy = false;
        if (res->err < 0) {
                l->wh_failed = true;
                fail(l, res->err, "%s", res->msg);
        } else {
                PROGRESS(l, rows, b->rows.n_rows);
        }
        batch_release(l, b);
        pump(l);
}

static int batch_send(struct load *l, struct batch *b)
{
        b->rows.cells = b->cells;
        b->rows.n_cols = l->width;
        l->fill = -1;
        int r = wh_copy_rows(l->req->wh, &b->rows, batch_cb, b);
        if (r < 0) {
                batch_release(l, b);
                fail(l, r, "COPY %s: the warehouse took no rows: %s", l->stmt->table, strerror(-r));
                return r;
        }
        b->busy = true;
        l->wh_ops++;
        return 0;
}

static struct batch *batch_filling(struct load *l)
{
        if (l->fill >= 0)
                return &l->batches[l->fill];
        for (int i = 0; i < N_BATCHES; i++)
                if (!l->batches[i].busy) {
                        l->fill = i;
                        return &l->batches[i];
                }
        return NULL;
}

/* Reports one reject; fails the COPY when there are MAXERROR of them or
 * more.  "Data load operations", MAXERROR: "If the load returns the
 * error_count number of errors or greater, the load fails ... Set this
 * value to 0 or 1 if you want the load to fail as soon as the first error
 * occurs": n allows n - 1 rejects, and 0 behaves as 1 (README, "The COPY
 * emulator", says why this reading). */
static int report(struct load *l, const struct object *obj, const struct parse_chunk *c,
                  const struct parse_reject *rj)
{
        if (rj->not_json) {
                fail_how(l, -EINVAL, true,
                         "COPY %s: '%s' is not JSON: the text at byte %" PRIu64 " (line %" PRIu64
                         ") does not start a JSON object or array; FORMAT JSON reads objects, "
                         "one after another or one per line [error 1216]",
                         l->stmt->table, obj->src.uri, rj->position, rj->line);
                util_utf8_trim(l->msg);
                return -EINVAL;
        }
        l->rejects++;
        PROGRESS(l, errors, 1);
        const struct parse_column *col = rj->col >= 0 ? &l->cols[rj->col] : NULL;
        char raw[PARSE_RAW_LINE_MAX + 1], value[300], reason[300];
        snprintf(raw, sizeof(raw), "%.*s", (int)rj->raw_len, parse_chunk_str(c, rj->raw));
        snprintf(value, sizeof(value), "%.*s", (int)rj->value_len, parse_chunk_str(c, rj->value));
        snprintf(reason, sizeof(reason), "%.*s", (int)rj->reason_len,
                 parse_chunk_str(c, rj->reason));
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
        if (l->rejects < limit)
                return 0;
        if (col)
                fail_how(l, -EINVAL, true,
                         "COPY %s: record rejected at '%s' line %" PRIu64
                         ", column '%s' (%s): %s [error %d]; %" PRIu64
                         " reject(s), MAXERROR is %lld",
                         l->stmt->table, obj->src.uri, rj->line, col->name, col->decl, reason,
                         rj->code, l->rejects, l->stmt->maxerror);
        else
                fail_how(l, -EINVAL, true,
                         "COPY %s: record rejected at '%s' line %" PRIu64
                         ": %s [error %d]; %" PRIu64 " reject(s), MAXERROR is %lld",
                         l->stmt->table, obj->src.uri, rj->line, reason, rj->code, l->rejects,
                         l->stmt->maxerror);
        util_utf8_trim(l->msg);
        return -EINVAL;
}

/* Moves the chunk's rows into batches and reports its rejects in order.
 * 1: the chunk is used up; 0: wait for a batch; -1: the load stops. */
static int drain_chunk(struct load *l, const struct object *o, struct parse_chunk *c)
{
        for (;;) {
                if (c->next_reject < c->n_rejects &&
                    c->rejects[c->next_reject].before_row == c->taken) {
                        const struct parse_reject *rj = &c->rejects[c->next_reject++];
                        if (report(l, o, c, rj) < 0 || l->stopping)
                                return -1; /* on_error may have cancelled */
                        continue;
                }
                if (c->taken == c->rows)
                        return 1;
                struct batch *b = batch_filling(l);
                if (!b)
                        return 0;
                size_t end =
                    c->next_reject < c->n_rejects ? c->rejects[c->next_reject].before_row : c->rows;
                size_t n = end - c->taken;
                if (n > l->batch_rows - b->rows.n_rows)
                        n = l->batch_rows - b->rows.n_rows;
                if (b->n_refs == 0 || b->refs[b->n_refs - 1] != c) {
                        if (b->n_refs == b->cap_refs) {
                                size_t cap = b->cap_refs ? b->cap_refs * 2 : 8;
                                struct parse_chunk **refs = realloc(b->refs, cap * sizeof(*refs));
                                if (!refs) {
                                        fail(l, -ENOMEM, "COPY: out of memory");
                                        return -1;
                                }
                                b->refs = refs;
                                b->cap_refs = cap;
                        }
                        b->refs[b->n_refs++] = c;
                        b->ref_bytes += c->bytes;
                        c->refs++;
                }
                memcpy(b->cells + b->rows.n_rows * l->width, c->cells + c->taken * l->width,
                       n * l->width * sizeof(struct cell));
                b->rows.n_rows += n;
                c->taken += n;
                if ((b->rows.n_rows == l->batch_rows || b->ref_bytes >= BATCH_BYTES_MAX) &&
                    batch_send(l, b) < 0)
                        return -1;
        }
}

/* The consumer: the head object's chunks, then its end, then the next. */
static void drain(struct load *l)
{
        while (!l->stopping && l->head < l->n_objs) {
                struct object *o = &l->objs[l->head];
                if (!o->started)
                        return;
                struct parse_chunk *c = o->head;
                if (c) {
                        if (drain_chunk(l, o, c) <= 0)
                                return;
                        o->head = c->next;
                        if (!o->head)
                                o->tail = NULL;
                        o->out_bytes -= c->bytes;
                        chunk_unref(l, c);
                        continue;
                }
                if (o->fl && o->fl->running)
                        return; /* more may come */
                if (o->err) {
                        fail_how(l, o->err, true, "%s", o->msg ? o->msg : "");
                        return;
                }
                if (!o->parsed && !o->skipped)
                        return;
                PROGRESS(l, objects, 1);
                l->head++;
        }
}

/* ---- the pump ------------------------------------------------------------ */

static void remove_flight(struct load *l, size_t i)
{
        l->flight_bytes -= weight(obj_of(l->flights[i]));
        flight_free(l, l->flights[i]);
        l->flights[i] = l->flights[--l->n_flights];
        l->st.objects_reading = l->n_flights;
}

static void run_step(struct load *l)
{
        drain(l);
        for (size_t i = 0; i < l->n_flights && !l->stopping;) {
                struct flight *fl = l->flights[i];
                struct object *o = obj_of(fl);
                bool over = o->parsed || o->skipped || o->err;
                if (over && !fl->reading && !fl->running) {
                        remove_flight(l, i);
                        continue;
                }
                if (o->err && fl->reading && !fl->read_cancelled) {
                        fl->read_cancelled = true;
                        source_read_cancel(fl->rd);
                } else if (fl->paused && fl->reading && !read_full(l, fl, OBJ_IN_MAX / 2, 0)) {
                        fl->paused = false;
                        source_read_resume(fl->rd);
                }
                try_job(l, fl);
                i++;
        }
        while (!l->stopping && l->n_flights < l->conc && l->next_start < l->n_objs &&
               l->next_start <= l->first_bad &&
               (l->n_flights == 0 ||
                l->flight_bytes + weight(&l->objs[l->next_start]) <= FLIGHT_BYTES_MAX))
                start_object(l, l->next_start++);
        if (l->stopping || l->head < l->n_objs || l->n_flights)
                return;
        /* every object is in: the last rows, then the end of the insert */
        if (l->fill >= 0 && l->batches[l->fill].rows.n_rows > 0) {
                if (batch_send(l, &l->batches[l->fill]) < 0)
                        return;
        }
        if (l->wh_ops == 0 && !l->end_sent) {
                l->stopping = true; /* with result 0: stop_step() ends the insert */
                l->again = true;
        }
}

static void end_cb(struct wh *w, const struct wh_result *res, void *ud)
{
        (void)w;
        struct load *l = ud;
        l->wh_ops--;
        l->copy_open = false;
        if (res->err < 0 && l->result == 0) {
                /* a streaming driver (PostgreSQL COPY) reports its result here */
                l->result = res->err;
                snprintf(l->msg, sizeof(l->msg), "%s", res->msg);
        }
        pump(l);
}

static void on_closed(uv_handle_t *h);

/* Stopping, after success or failure: cancel the sources, let running jobs
 * end, wait for the warehouse, end the insert, then done. */
static void stop_step(struct load *l)
{
        if (!l->src_cancelled && l->result != 0) {
                l->src_cancelled = true;
                if (l->src)
                        source_cancel(l->src);
        }
        for (size_t i = 0; i < l->n_flights;) {
                struct flight *fl = l->flights[i];
                if (fl->reading && !fl->read_cancelled) {
                        fl->read_cancelled = true;
                        source_read_cancel(fl->rd); /* on_end may come at once */
                }
                if (fl->running && !fl->cancel_tried) {
                        fl->cancel_tried = true;
                        uv_cancel((uv_req_t *)&fl->work); /* a queued job never runs */
                }
                if (!fl->reading && !fl->running) {
                        remove_flight(l, i);
                        continue;
                }
                i++;
        }
        if (l->fill >= 0) {
                struct batch *b = &l->batches[l->fill];
                if (l->flush && !l->wh_failed && l->copy_open && b->rows.n_rows > 0) {
                        l->flush = false;
                        batch_send(l, b);
                } else {
                        batch_release(l, b);
                        l->fill = -1;
                }
        }
        if (l->n_flights || l->small_pending || l->list_pending || l->wh_ops)
                return;
        if (l->copy_open && !l->end_sent) {
                int r = wh_copy_end(l->req->wh, end_cb, l);
                l->end_sent = true;
                if (r == 0) {
                        l->wh_ops++;
                        return;
                }
                l->copy_open = false;
                if (l->result == 0) {
                        l->result = r;
                        snprintf(l->msg, sizeof(l->msg),
                                 "COPY %s: the warehouse cannot end the insert: %s", l->stmt->table,
                                 strerror(-r));
                }
        }
        if (!l->closing) {
                l->closing = true;
                uv_timer_stop(&l->timer);
                uv_close((uv_handle_t *)&l->timer, on_closed);
        }
}

static void pump(struct load *l)
{
        if (l->in_pump) {
                l->again = true;
                return;
        }
        l->in_pump = true;
        do {
                l->again = false;
                if (l->closing)
                        break;
                if (l->stopping)
                        stop_step(l);
                else if (l->phase == PH_RUN)
                        run_step(l);
        } while (l->again);
        l->in_pump = false;
}

static void on_timer(uv_timer_t *t)
{
        struct load *l = t->data;
        if (!l->begun) {
                l->begun = true;
                if (!l->stopping)
                        begin_columns(l);
        }
        pump(l);
}

/* ---- entry points ------------------------------------------------------- */

static void load_free(struct load *l)
{
        for (size_t i = 0; i < l->n_flights; i++)
                flight_free(l, l->flights[i]);
        free(l->flights);
        while (l->spare) {
                struct flight *n = l->spare->next_spare;
                flight_destroy(l->spare);
                l->spare = n;
        }
        for (int i = 0; i < N_BATCHES; i++) {
                batch_release(l, &l->batches[i]);
                free(l->batches[i].cells);
                free(l->batches[i].refs);
        }
        for (size_t i = 0; i < l->n_objs; i++) {
                struct object *o = &l->objs[i];
                while (o->head) {
                        struct parse_chunk *n = o->head->next;
                        chunk_unref(l, o->head);
                        o->head = n;
                }
                free(o->msg);
                free(o->src.key);
                free(o->src.uri);
                free(o->src.tag);
        }
        free(l->objs);
        for (size_t i = 0; i < l->n_cols; i++) {
                free(l->cols[i].name);
                free(l->cols[i].match);
                free(l->cols[i].decl);
        }
        free(l->cols);
        free(l->names);
        jsonpaths_free(l->paths);
        convert_timefmt_free(l->timeformat);
        convert_timefmt_free(l->dateformat);
        source_free(l->src);
        copy_stmt_free(l->stmt);
        free(l);
}

static void on_closed(uv_handle_t *h)
{
        struct load *l = h->data;
        if (l->result == -ENOMEM && l->msg[0] == '\0')
                snprintf(l->msg, sizeof(l->msg), "COPY: out of memory");
        l->done(l->req->userdata, l->result, l->result == 0 ? "" : l->msg);
        load_free(l);
}

int load_start(const struct load_request *req, load_done_fn done, struct load **ret)
{
        struct load *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->req = req;
        l->loop = req->loop;
        l->done = done;
        l->fill = -1;
        l->first_bad = SIZE_MAX;
        l->conc = req->concurrency ? req->concurrency : 1;
        if (l->conc > MAX_FLIGHT)
                l->conc = MAX_FLIGHT;
        l->batch_rows = req->batch_rows ? req->batch_rows : BATCH_ROWS_DEFAULT;
        if (l->batch_rows > BATCH_ROWS_MAX)
                l->batch_rows = BATCH_ROWS_MAX;
        l->env = (struct source_env){
            .loop = req->loop, .ctx = req->source_ctx, .roots = req->file_roots};
        int r = uv_timer_init(l->loop, &l->timer);
        if (r < 0) {
                free(l);
                return r;
        }
        l->timer.data = l;
        /* what needs no I/O happens now; a failure is reported through done */
        char e[512];
        r = copy_parse(req->statement, &l->stmt, e, sizeof(e));
        if (r < 0)
                fail(l, r, "%s", e);
        else if (check_options(l) == 0 && !l->stmt->manifest) {
                r = source_open(l->stmt->from, &l->env, &l->src, e, sizeof(e));
                if (r < 0)
                        fail(l, r, "COPY: %s", e);
        }
        kick(l);
        if (ret)
                *ret = l;
        return 0;
}

void load_cancel(struct load *l)
{
        if (!l || l->stopping || l->closing)
                return;
        fail(l, -ECANCELED, "COPY %s: cancelled", l->stmt ? l->stmt->table : "");
        pump(l);
}

void load_stats(const struct load *l, struct load_stats *ret)
{
        *ret = l->st;
}
