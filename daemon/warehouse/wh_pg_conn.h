/* wh_pg_conn.h - one libpq connection driven on the loop (internal to
 * warehouse/): the state machine of wh_pg_conn.c and the struct the
 * PostgreSQL and Redshift drivers (wh_pg.c) build on.
 *
 * The driver gives the connection one request at a time (a query, the
 * start of a COPY, COPY data, the end of a COPY) with a completion function;
 * the connection connects first if it has not (uv_getaddrinfo, then
 * PQconnectStartParams/PQconnectPoll, then the session setup), runs it with
 * libpq's non-blocking calls woken by one uv_poll_t and one uv_timer_t, and
 * calls the completion from a loop callback, or at once when the request
 * cannot start.  Everything here runs on the loop thread, except PQcancel,
 * which is blocking and runs on the pool. */
#pragma once
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"
#include "warehouse/wh_driver.h"

#define PG_CHUNK_BYTES (256u << 10) /* COPY data given to PQputCopyData at once */
#define PG_QUEUED_HIGH (2u << 20)   /* a wh_copy_rows waits above this... */
#define PG_QUEUED_LOW (1u << 20)    /* ...until the connection sent it below this */

enum pg_state {
        PG_NEW,         /* no connection yet */
        PG_RESOLVING,   /* uv_getaddrinfo running */
        PG_CONNECTING,  /* PQconnectPoll until OK */
        PG_IDLE,        /* connected, nothing running */
        PG_BUSY,        /* a query (or the end of a COPY) sent; reading results */
        PG_COPY_IN,     /* COPY FROM STDIN: sending data */
        PG_COPY_ENDING, /* PQputCopyEnd could not be queued yet */
        PG_BAD,         /* the connection is gone; every request fails */
        PG_CLOSING,
};

enum pg_req_kind {
        PG_REQ_NONE,
        PG_REQ_QUERY,      /* results kept when PG_KEEP */
        PG_REQ_COPY_START, /* done when the server is in COPY IN */
        PG_REQ_COPY_ROOM,  /* done when the queued COPY data dropped under PG_QUEUED_LOW */
        PG_REQ_COPY_END,   /* done with the COPY's result (cmd_status "COPY n") */
};

enum {
        PG_KEEP = 1,     /* keep the PGresults (w->res) */
        PG_COMMIT = 2,   /* a COMMIT: a failed transaction is an error */
        PG_ROLLBACK = 4, /* a ROLLBACK: nothing to do outside a transaction; a COPY in
                            progress is abandoned first (PQputCopyEnd(errormsg)) */
};

/* What PG_BUSY is reading the results of. */
enum pg_busy_for { PG_BUSY_SETUP, PG_BUSY_QUERY, PG_BUSY_COPY_START, PG_BUSY_COPY_END };

struct wh_pg;
typedef void (*pg_done_fn)(struct wh_pg *w);

/* COPY data on its way to PQputCopyData. */
struct pg_chunk {
        struct pg_chunk *next;
        size_t len, off; /* off: what libpq took already */
        char *data;      /* malloc'ed */
};

struct wh_pg {
        struct wh base;

        /* fixed at open */
        const char **kw, **val; /* PQconnectStartParams arrays, NULL-terminated */
        size_t nkw;
        char *uri, *password, *passfile, *uri_password; /* owned strings */
        char *resolve_host;          /* a name to resolve before connecting, or NULL */
        char *host_opt, *port_opt;   /* as the URI gives them ("" when not) */
        uint64_t connect_timeout_ms; /* 0: none */
        const char *setup_sql;       /* the session setup of the dialect */
        char label[256];             /* user@host:port/db, for messages */

        /* the request (one at a time) */
        enum pg_req_kind req;
        const char *req_sql; /* the caller's until done */
        const char *const *req_params;
        int req_nparams;
        unsigned req_flags;
        bool req_started;
        unsigned gen;         /* counts requests given and finished */
        pg_done_fn done;      /* called once when it is over */
        int err;              /* its outcome: 0 or -errno ... */
        char msg[WH_MSG_MAX]; /* ... and why */
        PGresult **res;       /* PG_KEEP: the results, in order */
        size_t nres, capres;
        char cmd_status[32]; /* of the last command */

        /* COPY data not yet taken by libpq */
        struct pg_chunk *q_head, *q_tail;
        size_t queued;
        int copy_err; /* < 0: the COPY failed, copy_msg says why */
        char copy_msg[WH_MSG_MAX];

        /* the state machine */
        enum pg_state state;
        enum pg_busy_for busy;
        PGconn *conn;
        uv_poll_t *poll;
        int poll_fd, poll_events;
        int connect_want; /* events PQconnectPoll asked for */
        bool want_write;  /* PQflush left data */
        uv_timer_t *timer;
        unsigned handles_open;    /* handles whose close callback is still to come */
        bool resolving;           /* a uv_getaddrinfo request is out */
        unsigned cancels_out;     /* PQcancel jobs on the pool */
        bool cancel_sent;         /* for the statement running now */
        uint64_t cancel_deadline; /* uv_now when the connection is closed for it */
        bool cancelled;           /* wh_cancel came: 57014 is ours, not a timeout */
        const char *copy_end_msg; /* PG_COPY_ENDING: NULL = success */
        char bad_msg[WH_MSG_MAX]; /* why the connection is gone */
        int bad_err;
        pg_done_fn closed; /* wh_pg_conn_close's */
        bool driving;      /* drive() runs: a nested call leaves it to that one */

        /* the driver face (wh_pg.c) */
        struct wh_op *op; /* the operation running */
        uv_work_t work;   /* the COPY text encoder on the pool */
        struct buf enc;   /* its output */
        int enc_err;
        bool encoding;       /* work is out */
        bool copying;        /* COPY FROM STDIN started and not ended */
        size_t copy_ncols;   /* ... the columns it takes */
        char *copy_sql;      /* COPY "t" (...) FROM STDIN, while it starts */
        long long copy_pid;  /* Redshift: the last COPY's session, 0: none */
        char copy_since[40]; /* ... and its transaction's start */
};

/* Prepares the connection part of w (after the fields fixed at open). */
void wh_pg_conn_init(struct wh_pg *w);

/* Runs a request; done(w) once it is over, with w->err, w->msg and (PG_KEEP)
 * w->res.  sql and params must stay valid until then. */
void wh_pg_conn_query(struct wh_pg *w, const char *sql, int nparams, const char *const *params,
                      unsigned flags, pg_done_fn done);
void wh_pg_conn_copy_start(struct wh_pg *w, const char *sql, pg_done_fn done);
/* Queues COPY data (takes data, malloc'ed; len > 0).  0, or the COPY's error
 * (data freed; w->msg says why). */
int wh_pg_conn_copy_put(struct wh_pg *w, char *data, size_t len);
/* done(w) once the queued data dropped under PG_QUEUED_LOW (or the COPY
 * failed: w->err). */
void wh_pg_conn_copy_room(struct wh_pg *w, pg_done_fn done);
/* Sends what is queued and ends the COPY; done with its result. */
void wh_pg_conn_copy_end(struct wh_pg *w, pg_done_fn done);

/* Makes the running request end soon with -ECANCELED (see wh_pg.c). */
void wh_pg_conn_cancel(struct wh_pg *w);
/* Drops the connection (the server rolls back), closes the handles and
 * waits for the PQcancel jobs; then closed(w). */
void wh_pg_conn_close(struct wh_pg *w, pg_done_fn closed);

/* Frees the kept results. */
void wh_pg_conn_clear_results(struct wh_pg *w);
/* Copies s into out with white space runs made one space and every
 * secret of w replaced by "***". */
void wh_pg_clean_msg(const struct wh_pg *w, const char *s, char *out, size_t outlen);
