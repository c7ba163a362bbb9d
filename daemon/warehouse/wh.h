/* wh.h - the warehouse: where create-tables, load, transform and check run.
 *
 * One interface for every target: the embedded SQLite driver (sqlite:///path),
 * PostgreSQL through libpq (postgresql://...) and Redshift through the same
 * libpq driver (redshift://user@host:5439/db, TLS required by default).
 *
 * Asynchronous, on the loop thread.  Every call below is made on the loop
 * thread and returns at once: an operation is queued on the connection and
 * its callback comes later, on the loop thread, exactly once, whatever the
 * outcome (0, -errno with a sentence, -ECANCELED).  A call that returns < 0
 * queued nothing and calls no callback.  The operations of one connection
 * run one after the other in the order they were queued (so a caller may
 * queue BEGIN, the statements and COMMIT at once and look only at the
 * results); several connections work at the same time.
 *
 *   PostgreSQL, Redshift: libpq's non-blocking API driven on the loop
 *   (uv_poll on PQsocket, a uv_timer); rows for a COPY are encoded in COPY's
 *   text format on the thread pool and handed to PQputCopyData on the loop.
 *   SQLite: each operation runs on the thread pool, one at a time per
 *   connection (SQLite is blocking; its database is local).
 *
 * The warehouse knows nothing of jobs. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct wh;
struct confine;

/* What opening a warehouse needs besides its URI. */
struct wh_params {
        const char *uri;       /* sqlite:///path, postgresql://..., redshift://...;
                                  NULL or "": warehouse.db in state_dir */
        const char *state_dir; /* the default sqlite warehouse lives here */
        void *loop;            /* the uv_loop_t every call and callback runs on */
        const char *password;  /* secret (copied); never logged */
        /* sqlite://: the folders the database may be in (confine.h), checked
         * when it is opened; NULL: any.  Other schemes ignore it. */
        const struct confine *roots;
};

/* What an operation came to; valid only during the callback. */
struct wh_result {
        int err;          /* 0, or -errno (see the driver's comments for which) */
        const char *msg;  /* a sentence when err < 0 (names the target, never a
                             password); "" otherwise */
        json_t *rows;     /* wh_query: an array of rows, each an array of values
                             (null, integer, real or string); wh_columns: an array of
                             [name, declared type] in column order; wh_load_errors: see
                             there; NULL for the others.  Borrowed: json_incref to keep. */
        uint64_t count;   /* wh_copy_end: the rows the COPY inserted */
};

typedef void (*wh_cb)(struct wh *w, const struct wh_result *res, void *ud);

/* Makes the connection object; no I/O yet (a driver connects with the first
 * operation, whose callback reports a failed connect).  -EINVAL for an
 * unknown scheme or a malformed URI, err says which. */
int wh_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen);

/* Cancels what is queued or running (as wh_cancel), rolls back an open
 * transaction, and frees w once nothing of it is left: no connection, no
 * handle, no pool job.  Then closed(ud) is called (may be NULL).  The
 * callbacks of cancelled operations come before closed.  w must not be used
 * after wh_close. */
void wh_close(struct wh *w, void (*closed)(void *ud), void *ud);

/* Makes the running operation fail soon with -ECANCELED (PostgreSQL:
 * PQcancel, then the connection is closed if the server does not answer
 * within 15 s; SQLite: sqlite3_interrupt) and every queued and later one
 * fail with -ECANCELED at once.  Sticky: only wh_close remains useful. */
void wh_cancel(struct wh *w);

/* "sqlite", "postgres" or "redshift": the sql/ folder to use. */
const char *wh_dialect(const struct wh *w);

/* The libpq URI for a redshift:// target: postgresql:// with port 5439,
 * database dev and sslmode=require unless the URI gives its own.  *ret is
 * malloc'ed.  -EINVAL (err says why) when it is not redshift://HOST...
 * Pure; any thread. */
int wh_redshift_uri(const char *uri, char **ret, char *err, size_t errlen);

/* One or several statements that return no rows (sql is copied). */
int wh_exec(struct wh *w, const char *sql, wh_cb cb, void *ud);
/* A query; res->rows holds its rows. */
int wh_query(struct wh *w, const char *sql, wh_cb cb, void *ud);
/* Transactions.  cb may be NULL for wh_rollback (a failed rollback is
 * logged; the connection is then dropped, which rolls back too). */
int wh_begin(struct wh *w, wh_cb cb, void *ud);
int wh_commit(struct wh *w, wh_cb cb, void *ud);
int wh_rollback(struct wh *w, wh_cb cb, void *ud);

/* The columns of a table in declared order (res->rows).  -ENOENT when the
 * table is missing. */
int wh_columns(struct wh *w, const char *table, wh_cb cb, void *ud);

/* ---- bulk insert (a COPY ... FROM STDIN on PostgreSQL) ---- */

enum cell_kind { CELL_NULL, CELL_INT, CELL_REAL, CELL_TEXT };

/* One value of a row: kind says which of i, r and text holds it (16
 * bytes, since a load holds many).  text need not be NUL-terminated. */
struct cell {
        enum cell_kind kind;
        uint32_t len; /* of text (a record is at most 4 MB) */
        union {
                int64_t i;
                double r;
                const char *text;
        };
};

/* n_rows rows of n_cols cells each, row after row. */
struct wh_rows {
        const struct cell *cells;
        size_t n_rows, n_cols;
};

/* Starts inserting rows into table(columns...); n is the number of columns
 * every wh_copy_rows gives.  Inside the caller's transaction. */
int wh_copy_begin(struct wh *w, const char *table, const char *const *columns, size_t n,
                  wh_cb cb, void *ud);
/* Queues rows.  The cells and the text they point to must stay valid and
 * unchanged until cb: then the driver no longer needs them, and has room
 * for more (its own buffer is bounded, so waiting for cb before queueing the
 * next rows is the flow control).  A failure of the COPY may be reported by
 * any wh_copy_rows callback or by wh_copy_end's. */
int wh_copy_rows(struct wh *w, const struct wh_rows *rows, wh_cb cb, void *ud);
/* Ends the insert; res->count is the number of rows it took. */
int wh_copy_end(struct wh *w, wh_cb cb, void *ud);

/* Where the target itself loads (Redshift), the rows its load-error log
 * kept for the last COPY sent with wh_exec on this connection, also after
 * that COPY failed and was rolled back: (filename, line_number, colname,
 * type, position, raw_line, raw_field_value, err_code, err_reason), text
 * blank-padded as Redshift's CHAR columns are.  -ENOTSUP (returned at once)
 * for targets where etld loads; -ENOENT in res when this connection sent no
 * COPY. */
int wh_load_errors(struct wh *w, wh_cb cb, void *ud);
