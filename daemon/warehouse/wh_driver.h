/* wh_driver.h - what a warehouse driver provides (internal to warehouse/).
 *
 * wh.c parses the target URI, picks the driver, and owns what every driver
 * shares: the connection's FIFO of queued operations (one runs at a time, in
 * queue order), the sticky -ECANCELED of wh_cancel and the order of wh_close
 * (cancelled callbacks first, then the driver's teardown, then closed).  A
 * driver only runs the operation it is given and says when it is over; all
 * of this happens on the loop thread.  A driver's struct starts with struct
 * wh. */
#pragma once
#include <stdbool.h>
#include <uv.h>

#include "warehouse/wh.h"

#define WH_MSG_MAX 1024

enum wh_op_kind {
        WH_OP_EXEC,
        WH_OP_QUERY,
        WH_OP_BEGIN,
        WH_OP_COMMIT,
        WH_OP_ROLLBACK,
        WH_OP_COLUMNS,
        WH_OP_COPY_BEGIN,
        WH_OP_COPY_ROWS,
        WH_OP_COPY_END,
        WH_OP_LOAD_ERRORS,
};

/* One queued operation; wh.c owns it, the driver fills its outcome. */
struct wh_op {
        struct wh_op *next;
        enum wh_op_kind kind;
        char *sql;      /* exec, query; the table of columns, copy_begin */
        char **columns; /* copy_begin: ncols names (owned) */
        size_t ncols;
        struct wh_rows rows; /* copy_rows: the caller's, valid until cb */
        wh_cb cb;
        void *ud;
        /* the outcome, set by the driver before wh_op_done */
        int err;
        char msg[WH_MSG_MAX];
        json_t *out;    /* query, columns, load_errors (owned; freed after cb) */
        uint64_t count; /* copy_end */
};

struct wh {
        const struct wh_driver *drv;
        uv_loop_t *loop;
        struct wh_op *head, *tail; /* queued, not started */
        struct wh_op *running;     /* given to drv->start, not yet done */
        uv_timer_t kick;           /* due now: start the next operation */
        bool cancelled;            /* sticky */
        bool closing;              /* wh_close called */
        bool driver_closing;       /* drv->close called */
        void (*closed)(void *ud);
        void *closed_ud;
};

struct wh_driver {
        const char *dialect; /* the sql/ folder */
        /* Allocates the driver's struct (zeroed, struct wh first); no I/O. */
        int (*open)(const struct wh_params *p, struct wh **ret, char *err, size_t errlen);
        /* Runs op (it is w->running); calls wh_op_done(w, op) when it is
         * over: later, from a loop callback, or at once from within start
         * (wh.c only ever calls start from its own timer callback, so no
         * caller is re-entered either way). */
        void (*start)(struct wh *w, struct wh_op *op);
        /* Makes the running op end soon with -ECANCELED. */
        void (*cancel)(struct wh *w, struct wh_op *op);
        /* Nothing is queued or running: rolls back, releases everything the
         * driver holds (connection, handles, pool jobs), then calls
         * wh_driver_closed(w), from a loop callback.  w itself is freed by
         * wh.c. */
        void (*close)(struct wh *w);
        bool load_errors; /* takes WH_OP_LOAD_ERRORS */
};

/* The running op is over (its err, msg, out, count set): wh.c calls its
 * callback and, on the next loop turn, starts the next.  The driver must not
 * touch op afterwards. */
void wh_op_done(struct wh *w, struct wh_op *op);
/* Sets op's outcome to err and a message. */
void wh_op_fail(struct wh_op *op, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The driver's teardown is over: wh.c frees w and calls closed. */
void wh_driver_closed(struct wh *w);

extern const struct wh_driver wh_sqlite_driver;
extern const struct wh_driver wh_pg_driver;
extern const struct wh_driver wh_redshift_driver;
