/* wh_sqlite.c - the embedded SQLite warehouse (sqlite:///path/warehouse.db).
 *
 * The default target: no server, one file.  SQLite is blocking, so each
 * operation of a connection runs as one job on libuv's thread pool
 * (uv_queue_work), one at a time in queue order (wh.c starts the next only
 * when the last is done); the loop thread only starts jobs and reports
 * their outcome.  The database is opened, after the confine roots check
 * (realpath), by the first operation, on the pool, and closed by a last
 * pool job of wh_close.  Cancel: a job not yet started is taken back with
 * uv_cancel; a running one is stopped with sqlite3_interrupt (thread-safe).
 * A bulk insert is a prepared INSERT run for each row, one pool job per
 * wh_copy_rows batch.  WAL lets `etlctl status` readers and the writing step
 * coexist.  Types are Redshift's as written in sql/sqlite (SQLite keeps the
 * declared type text, which the COPY emulator reads back through wh_columns
 * to convert values the way Redshift would). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "confine.h"
#include "util.h"
#include "warehouse/wh_driver.h"

struct wh_sqlite {
        struct wh base;
        char *path;                  /* as the URI names it */
        const struct confine *roots; /* the caller's; checked by the first op */
        uv_work_t work;              /* the one pool job of this connection */
        struct wh_op *op;            /* what work runs; NULL for the closing job */
        atomic_bool interrupted;     /* wh_cancel: the pool job stops at its next row */
        uv_mutex_t mu;               /* db as sqlite3_interrupt on the loop sees it */
        /* pool side (one job at a time; the loop reads them only between jobs) */
        sqlite3 *db;
        sqlite3_stmt *ins; /* the bulk insert between copy_begin and copy_end */
        size_t ins_n;
        uint64_t ins_count;
};

static struct wh_sqlite *sq(struct wh *base)
{
        return (struct wh_sqlite *)base;
}

/* -errno and a message for a failed SQLite call. */
static void fail(struct wh_op *op, sqlite3 *db, int rc, const char *what)
{
        int err = -EIO;
        if (rc == SQLITE_INTERRUPT)
                err = -ECANCELED;
        else if (rc == SQLITE_NOMEM)
                err = -ENOMEM;
        else if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                err = -EBUSY;
        else if (rc == SQLITE_FULL)
                err = -ENOSPC;
        wh_op_fail(op, err, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int sq_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        const char *uri = p->uri;
        char *path = NULL;
        if (!uri || !*uri) {
                struct buf b = {0};
                if (!p->state_dir) {
                        util_setf(err, errlen, "warehouse: no target and no state directory");
                        return -EINVAL;
                }
                if (buf_printf(&b, "%s/warehouse.db", p->state_dir) < 0)
                        return -ENOMEM;
                path = b.data;
        } else if (strncmp(uri, "sqlite://", 9) == 0) {
                const char *file = uri + 9;
                if (*file != '/') {
                        util_setf(err, errlen,
                                  "warehouse.target '%s': a sqlite target needs an absolute path, "
                                  "as in sqlite:///var/lib/etld/warehouse.db",
                                  uri);
                        return -EINVAL;
                }
                path = strdup(file);
        } else {
                util_setf(err, errlen, "warehouse.target '%s' is not a sqlite:/// URI", uri);
                return -EINVAL;
        }
        struct wh_sqlite *w = calloc(1, sizeof(*w));
        if (!path || !w || uv_mutex_init(&w->mu) != 0) {
                free(path);
                free(w);
                return -ENOMEM;
        }
        w->path = path;
        w->roots = p->roots;
        w->work.data = w;
        *ret = &w->base;
        return 0;
}

/* ---- the pool side ---------------------------------------------------------- */

/* Opens the database (first op). */
static int db_open(struct wh_sqlite *w, struct wh_op *op)
{
        char err[WH_MSG_MAX] = "";
        char *path = strdup(w->path);
        if (!path) {
                wh_op_fail(op, -ENOMEM, "warehouse '%s': out of memory", w->path);
                return -ENOMEM;
        }
        int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
        if (w->roots) {
                /* Resolved now, and opened by a name with no symlink left in
                 * it (SQLite refuses one with NOFOLLOW), so a link swapped in
                 * since the job was submitted cannot lead outside. */
                char *canonical = NULL;
                int r = confine_resolve(path, &canonical, err, sizeof(err));
                if (r == 0 && !confine_contains(w->roots, canonical))
                        r = confine_check(w->roots, "warehouse.target", path, err, sizeof(err));
                free(path);
                if (r < 0) {
                        free(canonical);
                        wh_op_fail(op, r, "%s", err);
                        return r;
                }
                path = canonical;
                flags |= SQLITE_OPEN_NOFOLLOW;
        }
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(path, &db, flags, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_busy_timeout(db, 5000); /* then the step fails as transient, retried */
                char *msg = NULL;
                rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL,
                                  NULL, &msg);
                if (rc != SQLITE_OK)
                        wh_op_fail(op, -EIO, "warehouse '%s': %s", path,
                                   msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
        } else {
                wh_op_fail(op, -EIO, "warehouse '%s': %s", path,
                           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        }
        free(path);
        if (rc != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        uv_mutex_lock(&w->mu);
        w->db = db;
        uv_mutex_unlock(&w->mu);
        return 0;
}

static void run_exec(struct wh_sqlite *w, struct wh_op *op, const char *sql)
{
        char *msg = NULL;
        int rc = sqlite3_exec(w->db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                fail(op, NULL, rc, "statement failed");
                if (msg)
                        wh_op_fail(op, op->err, "%s", msg);
        }
        sqlite3_free(msg);
}

static void run_query(struct wh_sqlite *w, struct wh_op *op)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(w->db, op->sql, -1, &st, NULL);
        if (rc != SQLITE_OK) {
                fail(op, w->db, rc, "preparing query");
                return;
        }
        json_t *rows = json_array();
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *row = json_array();
                int n = sqlite3_column_count(st);
                for (int i = 0; i < n; i++) {
                        json_t *v;
                        switch (sqlite3_column_type(st, i)) {
                        case SQLITE_INTEGER:
                                v = json_integer(sqlite3_column_int64(st, i));
                                break;
                        case SQLITE_FLOAT:
                                v = json_real(sqlite3_column_double(st, i));
                                break;
                        case SQLITE_NULL:
                                v = json_null();
                                break;
                        default:
                                v = json_stringn((const char *)sqlite3_column_text(st, i),
                                                 (size_t)sqlite3_column_bytes(st, i));
                        }
                        json_array_append_new(row, v);
                }
                json_array_append_new(rows, row);
        }
        if (rc != SQLITE_DONE) {
                fail(op, w->db, rc, "running query");
                json_decref(rows);
        } else {
                op->out = rows;
        }
        sqlite3_finalize(st);
}

static void run_columns(struct wh_sqlite *w, struct wh_op *op)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(w->db, "SELECT name, type FROM pragma_table_info(?1)", -1, &st,
                                    NULL);
        if (rc != SQLITE_OK) {
                fail(op, w->db, rc, "reading table columns");
                return;
        }
        sqlite3_bind_text(st, 1, op->sql, -1, SQLITE_STATIC);
        json_t *cols = json_array();
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_array_append_new(cols,
                                      json_pack("[ss]", (const char *)sqlite3_column_text(st, 0),
                                                (const char *)sqlite3_column_text(st, 1)));
        }
        if (rc != SQLITE_DONE)
                fail(op, w->db, rc, "reading table columns");
        else if (json_array_size(cols) == 0)
                wh_op_fail(op, -ENOENT, "table '%s' does not exist", op->sql);
        sqlite3_finalize(st);
        if (op->err < 0)
                json_decref(cols);
        else
                op->out = cols;
}

static void run_copy_begin(struct wh_sqlite *w, struct wh_op *op)
{
        if (w->ins) {
                wh_op_fail(op, -EINVAL, "a bulk insert is already open on this connection");
                return;
        }
        if (strchr(op->sql, '"')) {
                wh_op_fail(op, -EINVAL, "bad insert target '%s'", op->sql);
                return;
        }
        struct buf sql = {0};
        int r = buf_cat(&sql, 3, "INSERT INTO \"", op->sql, "\" (");
        for (size_t i = 0; r == 0 && i < op->ncols; i++) {
                if (strchr(op->columns[i], '"'))
                        r = -EINVAL;
                else
                        r = buf_cat(&sql, 3, i ? ", \"" : "\"", op->columns[i], "\"");
        }
        r = r ? r : buf_cat(&sql, 1, ") VALUES (");
        for (size_t i = 0; r == 0 && i < op->ncols; i++)
                r = buf_cat(&sql, 1, i ? ", ?" : "?");
        r = r ? r : buf_cat(&sql, 1, ")");
        if (r < 0) {
                buf_free(&sql);
                wh_op_fail(op, r, r == -EINVAL ? "bad column name for '%s'" : "%s: out of memory",
                           op->sql);
                return;
        }
        int rc = sqlite3_prepare_v2(w->db, sql.data, -1, &w->ins, NULL);
        buf_free(&sql);
        if (rc != SQLITE_OK) {
                fail(op, w->db, rc, "preparing insert");
                w->ins = NULL;
                return;
        }
        w->ins_n = op->ncols;
        w->ins_count = 0;
}

static void run_copy_rows(struct wh_sqlite *w, struct wh_op *op)
{
        if (!w->ins) {
                wh_op_fail(op, -EINVAL, "wh_copy_rows without wh_copy_begin");
                return;
        }
        if (op->rows.n_cols != w->ins_n) {
                wh_op_fail(op, -EINVAL, "rows of %zu cells for an insert of %zu columns",
                           op->rows.n_cols, w->ins_n);
                return;
        }
        sqlite3_stmt *st = w->ins;
        for (size_t r = 0; r < op->rows.n_rows; r++) {
                if (atomic_load(&w->interrupted)) {
                        fail(op, NULL, SQLITE_INTERRUPT, "inserting rows");
                        return;
                }
                const struct cell *cells = op->rows.cells + r * op->rows.n_cols;
                for (size_t i = 0; i < w->ins_n; i++) {
                        int col = (int)i + 1;
                        switch (cells[i].kind) {
                        case CELL_NULL:
                                sqlite3_bind_null(st, col);
                                break;
                        case CELL_INT:
                                sqlite3_bind_int64(st, col, cells[i].i);
                                break;
                        case CELL_REAL:
                                sqlite3_bind_double(st, col, cells[i].r);
                                break;
                        case CELL_TEXT:
                                sqlite3_bind_text(st, col, cells[i].text, (int)cells[i].len,
                                                  SQLITE_STATIC);
                                break;
                        }
                }
                int rc = sqlite3_step(st);
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
                if (rc != SQLITE_DONE) {
                        fail(op, w->db, rc, "inserting a row");
                        return;
                }
                w->ins_count++;
        }
}

static void run_copy_end(struct wh_sqlite *w, struct wh_op *op)
{
        if (!w->ins) {
                wh_op_fail(op, -EINVAL, "wh_copy_end without wh_copy_begin");
                return;
        }
        sqlite3_finalize(w->ins);
        w->ins = NULL;
        op->count = w->ins_count;
}

static void rollback(struct wh_sqlite *w)
{
        if (w->db && !sqlite3_get_autocommit(w->db))
                sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
}

static void run(struct wh_sqlite *w, struct wh_op *op)
{
        if (atomic_load(&w->interrupted)) {
                fail(op, NULL, SQLITE_INTERRUPT, "sqlite warehouse");
                return;
        }
        if (!w->db && db_open(w, op) < 0)
                return;
        switch (op->kind) {
        case WH_OP_EXEC:
                run_exec(w, op, op->sql);
                break;
        case WH_OP_QUERY:
                run_query(w, op);
                break;
        case WH_OP_BEGIN:
                run_exec(w, op, "BEGIN IMMEDIATE");
                break;
        case WH_OP_COMMIT:
                run_exec(w, op, "COMMIT");
                break;
        case WH_OP_ROLLBACK:
                if (w->ins) /* an insert nobody ended is abandoned */
                        sqlite3_finalize(w->ins);
                w->ins = NULL;
                if (!sqlite3_get_autocommit(w->db))
                        run_exec(w, op, "ROLLBACK");
                break;
        case WH_OP_COLUMNS:
                run_columns(w, op);
                break;
        case WH_OP_COPY_BEGIN:
                run_copy_begin(w, op);
                break;
        case WH_OP_COPY_ROWS:
                run_copy_rows(w, op);
                break;
        case WH_OP_COPY_END:
                run_copy_end(w, op);
                break;
        case WH_OP_LOAD_ERRORS:
                wh_op_fail(op, -ENOTSUP, "the sqlite target keeps no load-error log");
                break;
        }
}

static void on_work(uv_work_t *req)
{
        struct wh_sqlite *w = req->data;
        if (w->op) {
                run(w, w->op);
                return;
        }
        /* the closing job */
        if (w->ins)
                sqlite3_finalize(w->ins);
        w->ins = NULL;
        rollback(w);
        uv_mutex_lock(&w->mu);
        sqlite3 *db = w->db;
        w->db = NULL;
        uv_mutex_unlock(&w->mu);
        sqlite3_close(db);
}

/* ---- the loop side ---------------------------------------------------------- */

static void after_work(uv_work_t *req, int status)
{
        struct wh_sqlite *w = req->data;
        struct wh_op *op = w->op;
        w->op = NULL;
        if (!op) {
                free(w->path);
                uv_mutex_destroy(&w->mu);
                wh_driver_closed(&w->base);
                return;
        }
        if (status == UV_ECANCELED)
                wh_op_fail(op, -ECANCELED, "sqlite warehouse '%s': cancelled", w->path);
        wh_op_done(&w->base, op);
}

static void sq_start(struct wh *base, struct wh_op *op)
{
        struct wh_sqlite *w = sq(base);
        w->op = op;
        /* fails only for a NULL work callback */
        (void)uv_queue_work(base->loop, &w->work, on_work, after_work);
}

static void sq_cancel(struct wh *base, struct wh_op *op)
{
        (void)op;
        struct wh_sqlite *w = sq(base);
        atomic_store(&w->interrupted, true);
        if (uv_cancel((uv_req_t *)&w->work) == 0)
                return; /* after_work comes with UV_ECANCELED */
        uv_mutex_lock(&w->mu);
        if (w->db)
                sqlite3_interrupt(w->db);
        uv_mutex_unlock(&w->mu);
}

static void sq_close(struct wh *base)
{
        struct wh_sqlite *w = sq(base);
        w->op = NULL;
        (void)uv_queue_work(base->loop, &w->work, on_work, after_work);
}

const struct wh_driver wh_sqlite_driver = {
    .dialect = "sqlite",
    .open = sq_open,
    .start = sq_start,
    .cancel = sq_cancel,
    .close = sq_close,
};
