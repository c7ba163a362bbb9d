/* wh.h - the warehouse: where create-tables, load, transform and check run.
 *
 * One interface for every target: the embedded SQLite driver (sqlite:///path),
 * PostgreSQL through libpq (postgresql://...) and Redshift through the same
 * libpq driver (redshift://user@host:5439/db, TLS required by default).  The
 * calls are blocking and are made from libuv's thread pool, never from the
 * loop thread; wh_interrupt() is the one call that may come from another
 * thread.  Drivers that do network I/O (PostgreSQL) keep their connections
 * on the daemon's loop and need wh_loop_init() first.
 * The warehouse knows nothing of jobs. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct wh;

struct wh_column {
        char *name;
        char *type; /* declared type as written in the DDL, e.g. "VARCHAR(256)" */
};

enum cell_kind { CELL_NULL, CELL_INT, CELL_REAL, CELL_TEXT };

/* One value of a row to insert.  text need not be NUL-terminated. */
struct cell {
        enum cell_kind kind;
        int64_t i;
        double r;
        const char *text;
        size_t len;
};

struct wh_inserter;
struct confine;

/* What opening a warehouse may need besides its URI. */
struct wh_params {
        const char *uri;       /* sqlite:///path, postgresql://..., redshift://... */
        const char *state_dir; /* the default sqlite warehouse lives here */
        void *loop;            /* the daemon's uv_loop_t, for drivers doing network I/O */
        const char *password;  /* secret; never logged */
        /* sqlite://: the folders the database may be in (confine.h), checked
         * when it is opened; NULL: any.  Other schemes ignore it. */
        const struct confine *roots;
};

/* Opens the warehouse a target URI names ("sqlite:///abs/path.db"; an empty or
 * NULL uri means warehouse.db in state_dir).  -EINVAL for an unknown scheme;
 * err says which. */
int wh_open(const char *uri, const char *state_dir, struct wh **ret, char *err, size_t errlen);
int wh_open_params(const struct wh_params *p, struct wh **ret, char *err, size_t errlen);
struct wh *wh_close(struct wh *w);

/* Lets network drivers run on this uv_loop_t (loop thread, once, before the
 * first wh_open_params with .loop set); wh_loop_close() after the loop's last
 * job ended, before uv_loop_close().  Without it a postgresql:// target is
 * refused with an error that says so. */
int wh_loop_init(void *loop);
void wh_loop_close(void);

/* The libpq URI for a redshift:// target: postgresql:// with port 5439,
 * database dev and sslmode=require unless the URI gives its own.  *ret is
 * malloc'ed.  -EINVAL (err says why) when it is not redshift://HOST... */
int wh_redshift_uri(const char *uri, char **ret, char *err, size_t errlen);

/* "sqlite", "postgres" or "redshift": the sql/ folder to use. */
const char *wh_dialect(const struct wh *w);

/* Runs one or several statements that return no rows. */
int wh_exec(struct wh *w, const char *sql, char *err, size_t errlen);
int wh_begin(struct wh *w, char *err, size_t errlen);
int wh_commit(struct wh *w, char *err, size_t errlen);
void wh_rollback(struct wh *w);

/* The columns of a table in declared order.  -ENOENT when the table is missing. */
int wh_columns(struct wh *w, const char *table, struct wh_column **ret, size_t *ret_n, char *err,
               size_t errlen);
void wh_columns_free(struct wh_column *cols, size_t n);

/* A prepared insert of rows into table(columns...). */
int wh_inserter_new(struct wh *w, const char *table, const char *const *columns, size_t n,
                    struct wh_inserter **ret, char *err, size_t errlen);
int wh_inserter_row(struct wh_inserter *ins, const struct cell *cells, char *err, size_t errlen);
/* Flushes rows a driver buffers (a COPY stream); call before commit. */
int wh_inserter_finish(struct wh_inserter *ins, char *err, size_t errlen);
struct wh_inserter *wh_inserter_free(struct wh_inserter *ins);

/* Runs a query; *ret is an array of rows, each an array of values (null,
 * integer, real or string). */
int wh_query(struct wh *w, const char *sql, json_t **ret, char *err, size_t errlen);

/* Where the target itself loads (Redshift), the rows its load-error log
 * kept for the last COPY sent with wh_exec on this connection, also after
 * that COPY failed and was rolled back: (filename, line_number, colname,
 * type, position, raw_line, raw_field_value, err_code, err_reason), text
 * blank-padded as Redshift's CHAR columns are.  -ENOTSUP for targets where
 * etld loads (their rejects reach load_request.on_error instead); -ENOENT
 * when this connection sent no COPY. */
int wh_load_errors(struct wh *w, json_t **ret, char *err, size_t errlen);

/* Makes the statement running in another thread fail soon with -ECANCELED. */
void wh_interrupt(struct wh *w);
