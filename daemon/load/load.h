/* load.h - the COPY emulator's entry point: carry out one Redshift COPY
 * statement against a warehouse that cannot run it itself.
 *
 * load_run() parses the statement (copy.h), lists the objects under the
 * source prefix, reads every record, converts it to a row exactly as Redshift
 * would and inserts the rows in batches.  It is blocking and runs on libuv's
 * thread pool; it never begins or commits a transaction: the caller wraps it
 * in one so that a failed or interrupted COPY leaves nothing behind, as on
 * Redshift. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "warehouse/wh.h"

struct source_ctx;
struct confine;

/* Counters the loop thread reads while the load runs. */
struct load_progress {
        _Atomic uint64_t objects; /* objects finished */
        _Atomic uint64_t bytes;   /* bytes read */
        _Atomic uint64_t rows;    /* rows inserted */
        _Atomic uint64_t errors;  /* records rejected */
};

/* One rejected record, shaped like a row of Redshift's STL_LOAD_ERRORS. */
struct load_error {
        const char *filename;   /* the object's URI */
        uint64_t line_number;   /* 1-based line of the record's first byte */
        const char *colname;    /* "" when the record as a whole is bad */
        const char *type;       /* declared type of the column, "" likewise */
        uint64_t position;      /* byte offset of the record in the object */
        const char *raw_line;   /* the record's text (truncated to 1024 bytes) */
        const char *raw_field_value; /* the field's text, "" when none */
        int err_code;           /* Redshift's code, e.g. 1207 invalid digit */
        const char *err_reason;
};

struct load_request {
        const char *statement;           /* one COPY statement, Redshift syntax */
        struct wh *wh;                   /* open, inside the caller's transaction */
        const atomic_bool *cancel;       /* set from the loop thread to stop soon */
        struct load_progress *progress;  /* may be NULL */
        size_t batch_rows;               /* unused: rows move in chunks of 512, cancel
                                            is checked between chunks */
        unsigned concurrency;            /* objects in flight; parser threads are
                                            min(concurrency, CPUs); 0 = 1 */
        /* Passed to source_open_ctx() for the statement's URIs (source.h: what
         * a scheme such as s3:// needs besides the URI); NULL: none. */
        const struct source_ctx *source_ctx;
        /* etld's extension, not Redshift's: a column of the table that gets,
         * in every row, the URI of the object the row came from (so merges
         * can order rows by object key across loads).  It is left out of the
         * statement's default column list and must not be in its own list; a
         * table without it is loaded as if it were NULL.  NULL: none. */
        const char *object_column;
        /* The folders file:// sources, JSONPaths files and manifests may be
         * read from (confine.h), checked as each is opened; NULL: any. */
        const struct confine *file_roots;
        /* Called (on the worker thread) for each rejected record; may be NULL. */
        void (*on_error)(void *userdata, const struct load_error *e);
        void *userdata;
};

/* Returns 0 when the COPY succeeded (rejects within MAXERROR); -ECANCELED when
 * cancelled; -EINVAL for a bad statement, a bad JSONPaths file, an empty
 * prefix or more rejects than MAXERROR; -errno for I/O errors.  On failure err
 * names the statement word, object, line or column at fault. */
int load_run(const struct load_request *req, char *err, size_t errlen);
