/* load.h - the COPY emulator's entry point: carry out one Redshift COPY
 * statement against a warehouse that cannot run it itself.
 *
 * load_start() parses the statement (copy.h), lists the objects under the
 * source prefix (or reads the manifest), reads every record, converts it to
 * a row exactly as Redshift would and inserts the rows through the
 * warehouse's bulk insert (wh.h).  It is a state machine on the loop thread:
 * objects in flight are the loop's (source.h), each chunk of an object is
 * parsed and converted by one job on libuv's thread pool (pure code:
 * parse.h over records.h, jv.h, jsonpaths.h, convert.h; the last few KiB
 * of an object on the loop itself), and rows go to the warehouse in
 * key order, so results, rejects and line numbers do not depend on
 * concurrency.  It never begins or commits a transaction: the caller wraps
 * it in one so that a failed or cancelled COPY leaves nothing behind, as on
 * Redshift. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "warehouse/wh.h"

struct source_ctx;
struct confine;
struct load;

/* Counters the engine publishes; the load updates them on the loop thread. */
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
        void *loop;                      /* the uv_loop_t of the caller and of wh */
        struct load_progress *progress;  /* may be NULL */
        size_t batch_rows;               /* [load] batch_rows: rows per batch handed to
                                            the warehouse (one wh_copy_rows); 0 = 512 */
        unsigned concurrency;            /* [load] concurrency: objects in flight (read
                                            and parsed at once); 0 = 1.  Pool jobs at
                                            once are bounded by the pool, not by this */
        /* For s3:// URIs: the S3 side (source_s3.h); NULL: s3:// is refused. */
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
        /* Called on the loop thread for each rejected record; may be NULL. */
        void (*on_error)(void *userdata, const struct load_error *e);
        void *userdata;
};

/* How the COPY ended (loop thread, once): 0 when it succeeded (rejects
 * within MAXERROR); -ECANCELED after load_cancel; -EINVAL for a bad
 * statement, a bad JSONPaths file, an empty prefix or more rejects than
 * MAXERROR; -errno for I/O errors.  On failure msg names the statement word,
 * object, line or column at fault.  The load is freed after done returns. */
typedef void (*load_done_fn)(void *userdata, int result, const char *msg);

/* Starts the COPY (loop thread); req and what it points to must outlive
 * done.  Returns 0, or -errno (and calls nothing) when it cannot start.
 * *ret (may be NULL) is valid until done. */
int load_start(const struct load_request *req, load_done_fn done, struct load **ret);
/* Stops soon: every source read and pool job of the load ends or is left to
 * finish on its own, then done comes with -ECANCELED.  The warehouse is not
 * cancelled here (the caller owns it: wh_cancel). */
void load_cancel(struct load *l);

/* What a load holds now and the most it held, for tests and status (etld's
 * addition to the contract).  Every figure is bounded by configuration:
 * objects_reading by concurrency; bytes_buffered (read, not yet parsed) by
 * about 256 KiB per object read and 4 MiB in all; bytes_queued (converted
 * rows waiting for the warehouse, with the batches it holds) by a fixed cap
 * (4 MiB) plus what the object being inserted (512 KiB), a chunk per job
 * and two batches (1 MiB each) hold. */
struct load_stats {
        size_t objects_reading, jobs, bytes_buffered, bytes_queued;
        size_t peak_objects_reading, peak_jobs, peak_buffered, peak_queued;
};
void load_stats(const struct load *l, struct load_stats *ret);
