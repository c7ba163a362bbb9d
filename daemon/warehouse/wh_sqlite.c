/* wh_sqlite.c - the embedded SQLite warehouse (sqlite:///path/warehouse.db).
 *
 * The default target: no server, one file.  Each step opens its own
 * connection on a worker thread; WAL lets `etlctl status` readers and the
 * writing step coexist.  Types are Redshift's as written in sql/sqlite (SQLite
 * keeps the declared type text, which the COPY emulator reads back through
 * wh_columns to convert values the way Redshift would). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "confine.h"
#include "util.h"
#include "warehouse/wh_driver.h"

struct wh_sqlite {
        struct wh base;
        sqlite3 *db;
        char *path;
};

struct wh_sqlite_inserter {
        struct wh_inserter base;
        struct wh_sqlite *w;
        sqlite3_stmt *stmt;
        size_t n;
};

static int fail(sqlite3 *db, int rc, char *err, size_t errlen, const char *what)
{
        snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        if (rc == SQLITE_INTERRUPT)
                return -ECANCELED;
        if (rc == SQLITE_NOMEM)
                return -ENOMEM;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                return -EBUSY;
        if (rc == SQLITE_FULL)
                return -ENOSPC;
        return -EIO;
}

static int sq_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        const char *uri = p->uri;
        const char *state_dir = p->state_dir;
        char *path = NULL;
        if (!uri || !*uri) {
                struct buf b = { 0 };
                if (buf_printf(&b, "%s/warehouse.db", state_dir) < 0)
                        return -ENOMEM;
                path = b.data;
        } else if (strncmp(uri, "sqlite://", 9) == 0) {
                const char *file = uri + 9;
                if (*file != '/') {
                        snprintf(err, errlen,
                                 "warehouse.target '%s': a sqlite target needs an absolute path, "
                                 "as in sqlite:///var/lib/etld/warehouse.db",
                                 uri);
                        return -EINVAL;
                }
                path = strdup(file);
        } else {
                snprintf(err, errlen, "warehouse.target '%s' is not a sqlite:/// URI", uri);
                return -EINVAL;
        }
        if (!path)
                return -ENOMEM;
        int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
        if (p->roots) {
                /* Resolved now, and opened by a name with no symlink left in
                 * it (SQLite refuses one with NOFOLLOW), so a link swapped in
                 * since the job was submitted cannot lead outside. */
                char *canonical = NULL;
                int r = confine_resolve(path, &canonical, err, errlen);
                if (r == 0 && !confine_contains(p->roots, canonical))
                        r = confine_check(p->roots, "warehouse.target", path, err, errlen);
                free(path);
                if (r < 0) {
                        free(canonical);
                        return r;
                }
                path = canonical;
                flags |= SQLITE_OPEN_NOFOLLOW;
        }

        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(path, &db, flags, NULL);
        if (rc != SQLITE_OK) {
                snprintf(err, errlen, "warehouse '%s': %s", path,
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                sqlite3_close(db);
                free(path);
                return -EIO;
        }
        sqlite3_busy_timeout(db, 5000); /* then the step fails as transient and is retried */
        char *msg = NULL;
        rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                          &msg);
        if (rc != SQLITE_OK) {
                snprintf(err, errlen, "warehouse '%s': %s", path, msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                sqlite3_close(db);
                free(path);
                return -EIO;
        }
        struct wh_sqlite *w = calloc(1, sizeof(*w));
        if (!w) {
                sqlite3_close(db);
                free(path);
                return -ENOMEM;
        }
        w->base.drv = &wh_sqlite_driver;
        w->db = db;
        w->path = path;
        *ret = &w->base;
        return 0;
}

static struct wh_sqlite *sq(struct wh *base)
{
        return (struct wh_sqlite *)base;
}

static void sq_close(struct wh *base)
{
        struct wh_sqlite *w = sq(base);
        if (!sqlite3_get_autocommit(w->db))
                sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(w->db);
        free(w->path);
        free(w);
}

static int sq_exec(struct wh *base, const char *sql, char *err, size_t errlen)
{
        struct wh_sqlite *w = sq(base);
        char *msg = NULL;
        int rc = sqlite3_exec(w->db, sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
                return 0;
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        if (rc == SQLITE_INTERRUPT)
                return -ECANCELED;
        return rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

static int sq_begin(struct wh *w, char *err, size_t errlen)
{
        return sq_exec(w, "BEGIN IMMEDIATE", err, errlen);
}

static int sq_commit(struct wh *w, char *err, size_t errlen)
{
        return sq_exec(w, "COMMIT", err, errlen);
}

static void sq_rollback(struct wh *base)
{
        struct wh_sqlite *w = sq(base);
        if (!sqlite3_get_autocommit(w->db))
                sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
}

void wh_columns_free(struct wh_column *cols, size_t n)
{
        for (size_t i = 0; cols && i < n; i++) {
                free(cols[i].name);
                free(cols[i].type);
        }
        free(cols);
}

static int sq_columns(struct wh *base, const char *table, struct wh_column **ret, size_t *ret_n, char *err,
               size_t errlen)
{
        struct wh_sqlite *w = sq(base);
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(w->db, "SELECT name, type FROM pragma_table_info(?1)", -1, &st,
                                    NULL);
        if (rc != SQLITE_OK)
                return fail(w->db, rc, err, errlen, "reading table columns");
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        struct wh_column *cols = NULL;
        size_t n = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct wh_column *c = realloc(cols, (n + 1) * sizeof(*c));
                if (!c) {
                        wh_columns_free(cols, n);
                        sqlite3_finalize(st);
                        return -ENOMEM;
                }
                cols = c;
                cols[n].name = strdup((const char *)sqlite3_column_text(st, 0));
                cols[n].type = strdup((const char *)sqlite3_column_text(st, 1));
                n++;
                if (!cols[n - 1].name || !cols[n - 1].type) {
                        wh_columns_free(cols, n);
                        sqlite3_finalize(st);
                        return -ENOMEM;
                }
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                wh_columns_free(cols, n);
                return fail(w->db, rc, err, errlen, "reading table columns");
        }
        if (n == 0) {
                snprintf(err, errlen, "table '%s' does not exist", table);
                return -ENOENT;
        }
        *ret = cols;
        *ret_n = n;
        return 0;
}

static int sq_inserter_new(struct wh *base, const char *table, const char *const *columns, size_t n,
                    struct wh_inserter **ret, char *err, size_t errlen)
{
        struct wh_sqlite *w = sq(base);
        struct buf sql = { 0 };
        int r = buf_printf(&sql, "INSERT INTO \"%s\" (", table);
        for (size_t i = 0; r == 0 && i < n; i++)
                r = buf_printf(&sql, "%s\"%s\"", i ? ", " : "", columns[i]);
        r = r ? r : buf_printf(&sql, ") VALUES (");
        for (size_t i = 0; r == 0 && i < n; i++)
                r = buf_printf(&sql, "%s?", i ? ", " : "");
        r = r ? r : buf_printf(&sql, ")");
        if (r < 0) {
                buf_free(&sql);
                return -ENOMEM;
        }
        if (strchr(table, '"') || n == 0) {
                buf_free(&sql);
                snprintf(err, errlen, "bad insert target '%s'", table);
                return -EINVAL;
        }
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(w->db, sql.data, -1, &st, NULL);
        buf_free(&sql);
        if (rc != SQLITE_OK)
                return fail(w->db, rc, err, errlen, "preparing insert");
        struct wh_sqlite_inserter *ins = calloc(1, sizeof(*ins));
        if (!ins) {
                sqlite3_finalize(st);
                return -ENOMEM;
        }
        ins->base.drv = &wh_sqlite_driver;
        ins->w = w;
        ins->stmt = st;
        ins->n = n;
        *ret = &ins->base;
        return 0;
}

static int sq_inserter_row(struct wh_inserter *base, const struct cell *cells, char *err,
                           size_t errlen)
{
        struct wh_sqlite_inserter *ins = (struct wh_sqlite_inserter *)base;
        sqlite3_stmt *st = ins->stmt;
        for (size_t i = 0; i < ins->n; i++) {
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
                                          SQLITE_TRANSIENT);
                        break;
                }
        }
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
                return fail(ins->w->db, rc, err, errlen, "inserting a row");
        return 0;
}

static void sq_inserter_free(struct wh_inserter *base)
{
        struct wh_sqlite_inserter *ins = (struct wh_sqlite_inserter *)base;
        sqlite3_finalize(ins->stmt);
        free(ins);
}

static int sq_query(struct wh *base, const char *sql, json_t **ret, char *err, size_t errlen)
{
        struct wh_sqlite *w = sq(base);
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(w->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return fail(w->db, rc, err, errlen, "preparing query");
        json_t *rows = json_array();
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *row = json_array();
                int n = sqlite3_column_count(st);
                for (int i = 0; i < n; i++) {
                        switch (sqlite3_column_type(st, i)) {
                        case SQLITE_INTEGER:
                                json_array_append_new(row,
                                                      json_integer(sqlite3_column_int64(st, i)));
                                break;
                        case SQLITE_FLOAT:
                                json_array_append_new(row, json_real(sqlite3_column_double(st, i)));
                                break;
                        case SQLITE_NULL:
                                json_array_append_new(row, json_null());
                                break;
                        default:
                                json_array_append_new(
                                        row, json_stringn((const char *)sqlite3_column_text(st, i),
                                                          (size_t)sqlite3_column_bytes(st, i)));
                        }
                }
                json_array_append_new(rows, row);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                json_decref(rows);
                return fail(w->db, rc, err, errlen, "running query");
        }
        *ret = rows;
        return 0;
}

static void sq_interrupt(struct wh *base)
{
        sqlite3_interrupt(sq(base)->db);
}

const struct wh_driver wh_sqlite_driver = {
        .dialect = "sqlite",
        .open = sq_open,
        .close = sq_close,
        .exec = sq_exec,
        .begin = sq_begin,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .columns = sq_columns,
        .inserter_new = sq_inserter_new,
        .inserter_row = sq_inserter_row,
        .inserter_free = sq_inserter_free,
        .query = sq_query,
        .interrupt = sq_interrupt,
};
