/* wh.c - picks the warehouse driver for a target URI and owns what the
 * drivers share: each connection's FIFO of operations, started one at a time
 * on the loop thread in the order they were queued; the sticky cancel, which
 * fails everything queued with -ECANCELED without reaching the driver; and
 * wh_close, which lets the cancelled callbacks come, then has the driver
 * release its connection, handles and pool jobs, then frees the connection
 * and calls closed.  The next operation is started from a zero timer, never
 * from within a call of wh.h or a driver's completion, so neither callers
 * nor drivers are re-entered; a callback may queue, cancel or close at will.  See wh_driver.h for
 * what a driver provides. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "warehouse/wh_driver.h"

static const struct {
        const char *prefix;
        const struct wh_driver *drv;
} schemes[] = {
    {"sqlite://", &wh_sqlite_driver},
    {"postgresql://", &wh_pg_driver},
    {"postgres://", &wh_pg_driver},
    {"redshift://", &wh_redshift_driver},
};

static void on_kick(uv_timer_t *t);

int wh_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        const char *uri = p->uri;
        const struct wh_driver *drv = NULL;
        if (!uri || !*uri)
                drv = &wh_sqlite_driver;
        for (size_t i = 0; !drv && i < sizeof(schemes) / sizeof(schemes[0]); i++) {
                if (strncmp(uri, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
                        drv = schemes[i].drv;
        }
        if (!drv) {
                util_setf(err, errlen,
                          "warehouse.target: unknown scheme in '%.*s' (expected sqlite:///path, "
                          "postgresql://... or redshift://...)",
                          (int)strcspn(uri, ":"), uri);
                return -EINVAL;
        }
        if (!p->loop) {
                util_setf(err, errlen, "warehouse: no event loop given (wh_params.loop)");
                return -EINVAL;
        }
        struct wh *w = NULL;
        int r = drv->open(p, &w, err, errlen);
        if (r < 0)
                return r;
        w->drv = drv;
        w->loop = p->loop;
        uv_timer_init(w->loop, &w->kick);
        w->kick.data = w;
        *ret = w;
        return 0;
}

static void kick(struct wh *w)
{
        if (!uv_is_active((uv_handle_t *)&w->kick))
                uv_timer_start(&w->kick, on_kick, 0, 0);
}

static void op_free(struct wh_op *op)
{
        free(op->sql);
        for (size_t i = 0; op->columns && i < op->ncols; i++)
                free(op->columns[i]);
        free(op->columns);
        json_decref(op->out);
        free(op);
}

/* Calls op's callback with its outcome and frees it. */
static void complete(struct wh *w, struct wh_op *op)
{
        struct wh_result res = {
            .err = op->err,
            .msg = op->err < 0 ? op->msg : "",
            .rows = op->out,
            .count = op->count,
        };
        if (op->cb)
                op->cb(w, &res, op->ud);
        else if (op->err < 0 && op->err != -ECANCELED) /* a rollback nobody waits for */
                log_warning("wh", "rollback failed: %s (the connection's end rolls back)", op->msg);
        op_free(op);
}

void wh_op_fail(struct wh_op *op, int err, const char *fmt, ...)
{
        op->err = err;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(op->msg, sizeof(op->msg), fmt, ap);
        va_end(ap);
}

void wh_op_done(struct wh *w, struct wh_op *op)
{
        if (w->running == op)
                w->running = NULL;
        if (op->err < 0 && !op->msg[0])
                util_setf(op->msg, sizeof(op->msg), "%s warehouse: %s", w->drv->dialect,
                          strerror(-op->err));
        complete(w, op);
        kick(w);
}

static void on_kick(uv_timer_t *t)
{
        struct wh *w = t->data;
        while (!w->running && w->head) {
                struct wh_op *op = w->head;
                w->head = op->next;
                if (!w->head)
                        w->tail = NULL;
                op->next = NULL;
                if (w->cancelled) {
                        wh_op_fail(op, -ECANCELED, "%s warehouse: cancelled", w->drv->dialect);
                        complete(w, op);
                        continue;
                }
                w->running = op;
                w->drv->start(w, op);
                return;
        }
        if (!w->running && !w->head && w->closing && !w->driver_closing) {
                w->driver_closing = true;
                w->drv->close(w);
        }
}

static void on_kick_closed(uv_handle_t *h)
{
        struct wh *w = h->data;
        void (*closed)(void *) = w->closed;
        void *ud = w->closed_ud;
        free(w);
        if (closed)
                closed(ud);
}

void wh_driver_closed(struct wh *w)
{
        uv_close((uv_handle_t *)&w->kick, on_kick_closed);
}

void wh_cancel(struct wh *w)
{
        if (!w || w->cancelled)
                return;
        w->cancelled = true;
        if (w->running)
                w->drv->cancel(w, w->running);
        if (w->head)
                kick(w);
}

void wh_close(struct wh *w, void (*closed)(void *ud), void *ud)
{
        if (!w) {
                if (closed)
                        closed(ud);
                return;
        }
        if (w->closing)
                return;
        w->closing = true;
        w->closed = closed;
        w->closed_ud = ud;
        bool again = w->cancelled;
        wh_cancel(w);
        if (again && w->running) /* the driver may stop waiting for the server now */
                w->drv->cancel(w, w->running);
        kick(w);
}

const char *wh_dialect(const struct wh *w)
{
        return w->drv->dialect;
}

/* Queues a new op of kind; NULL when out of memory. */
static struct wh_op *op_new(enum wh_op_kind kind, const char *sql, wh_cb cb, void *ud)
{
        struct wh_op *op = calloc(1, sizeof(*op));
        if (!op)
                return NULL;
        op->kind = kind;
        op->cb = cb;
        op->ud = ud;
        if (sql) {
                op->sql = strdup(sql);
                if (!op->sql) {
                        free(op);
                        return NULL;
                }
        }
        return op;
}

static int submit(struct wh *w, struct wh_op *op)
{
        if (w->tail)
                w->tail->next = op;
        else
                w->head = op;
        w->tail = op;
        if (!w->running)
                kick(w);
        return 0;
}

static int queue_sql(struct wh *w, enum wh_op_kind kind, const char *sql, wh_cb cb, void *ud)
{
        if (!w || w->closing || (kind != WH_OP_ROLLBACK && !cb))
                return -EINVAL;
        if ((kind == WH_OP_EXEC || kind == WH_OP_QUERY || kind == WH_OP_COLUMNS) && !sql)
                return -EINVAL;
        struct wh_op *op = op_new(kind, sql, cb, ud);
        if (!op)
                return -ENOMEM;
        return submit(w, op);
}

int wh_exec(struct wh *w, const char *sql, wh_cb cb, void *ud)
{
        return queue_sql(w, WH_OP_EXEC, sql, cb, ud);
}

int wh_query(struct wh *w, const char *sql, wh_cb cb, void *ud)
{
        return queue_sql(w, WH_OP_QUERY, sql, cb, ud);
}

int wh_begin(struct wh *w, wh_cb cb, void *ud)
{
        return queue_sql(w, WH_OP_BEGIN, NULL, cb, ud);
}

int wh_commit(struct wh *w, wh_cb cb, void *ud)
{
        return queue_sql(w, WH_OP_COMMIT, NULL, cb, ud);
}

int wh_rollback(struct wh *w, wh_cb cb, void *ud)
{
        return queue_sql(w, WH_OP_ROLLBACK, NULL, cb, ud);
}

int wh_columns(struct wh *w, const char *table, wh_cb cb, void *ud)
{
        return queue_sql(w, WH_OP_COLUMNS, table, cb, ud);
}

int wh_copy_begin(struct wh *w, const char *table, const char *const *columns, size_t n, wh_cb cb,
                  void *ud)
{
        if (!w || w->closing || !cb || !table || !columns || n == 0)
                return -EINVAL;
        struct wh_op *op = op_new(WH_OP_COPY_BEGIN, table, cb, ud);
        if (!op)
                return -ENOMEM;
        op->columns = calloc(n, sizeof(*op->columns));
        if (!op->columns) {
                op_free(op);
                return -ENOMEM;
        }
        op->ncols = n;
        for (size_t i = 0; i < n; i++) {
                op->columns[i] = strdup(columns[i] ? columns[i] : "");
                if (!op->columns[i]) {
                        op_free(op);
                        return -ENOMEM;
                }
        }
        return submit(w, op);
}

int wh_copy_rows(struct wh *w, const struct wh_rows *rows, wh_cb cb, void *ud)
{
        if (!w || w->closing || !cb || !rows || (rows->n_rows && !rows->cells))
                return -EINVAL;
        struct wh_op *op = op_new(WH_OP_COPY_ROWS, NULL, cb, ud);
        if (!op)
                return -ENOMEM;
        op->rows = *rows;
        return submit(w, op);
}

int wh_copy_end(struct wh *w, wh_cb cb, void *ud)
{
        return queue_sql(w, WH_OP_COPY_END, NULL, cb, ud);
}

int wh_load_errors(struct wh *w, wh_cb cb, void *ud)
{
        if (w && !w->drv->load_errors)
                return -ENOTSUP;
        return queue_sql(w, WH_OP_LOAD_ERRORS, NULL, cb, ud);
}
