/* wh_pg.c - the PostgreSQL warehouse (postgresql://... or postgres://..., a
 * libpq connection URI), through libpq's non-blocking API on etld's loop.
 *
 * Two sides.  The wh.h calls come from a step's worker thread (libuv's
 * pool) and are blocking from its point of view; the connection itself lives
 * on the loop thread, where a small state machine drives it with
 * PQconnectStart/PQconnectPoll, PQsendQuery(Params), PQflush,
 * PQconsumeInput/PQisBusy/PQgetResult and PQputCopyData/PQputCopyEnd, woken
 * by one uv_poll_t on PQsocket() (re-created when the socket changes while
 * connecting) and one uv_timer_t (connect deadline, cancel grace).  So the
 * loop never blocks on the server and several warehouses can be busy while
 * `etlctl status` answers at once.
 *
 * The bridge: a worker fills a struct pg_op, posts it (w->op under w->mu),
 * puts the connection on the bridge's queue and wakes the loop with the one
 * uv_async_t made by wh_loop_init(); then it waits on w->cond until the loop
 * marks the op done.  Results (PGresult) travel back to the worker, which
 * turns them into JSON there, off the loop.
 *
 * COPY: wh_inserter_new sends `COPY "t" ("c", ...) FROM STDIN` and waits for
 * PGRES_COPY_IN.  wh_inserter_row encodes each row in COPY's text format
 * into 256 KiB chunks that the loop hands to PQputCopyData whenever libpq's
 * own buffer has been flushed (so libpq never holds more than about one
 * chunk).  Back-pressure: the worker waits while more than 8 MiB of chunks
 * are in flight, until they drop under 4 MiB.  wh_inserter_finish sends the
 * rest and PQputCopyEnd, and returns the COPY's result: a failed COPY reports
 * its error there.  Freeing an unfinished inserter ends the COPY with
 * PQputCopyEnd(errormsg), which makes the server fail it.
 *
 * Interrupt (job cancel, shutdown): a running statement gets PQcancel, which
 * is blocking I/O and so runs on the thread pool with a PGcancel taken on the
 * loop thread; the connection is driven on until the server answers the
 * statement with its error (then -ECANCELED), or for 15 s at most, after
 * which etld closes the connection.  A COPY in progress is ended at once with
 * PQputCopyEnd(errormsg).  The interrupt is sticky: every later call but
 * ROLLBACK and close fails with -ECANCELED.
 *
 * Errors: a lost connection (pg_terminate_backend, server restart, network)
 * and a failed connect that never reached the server are -EAGAIN, which the
 * engine treats as transient and retries: the transaction was rolled back by
 * the server, so the step runs again from a consistent state.  Serialization
 * failures and deadlocks are -EBUSY; a full disk -ENOSPC; a refused login or
 * a missing database -EACCES; a statement_timeout (set it in the URI,
 * `?options=-c%20statement_timeout%3D600000`) -ETIME.  Messages name the
 * target as user@host:port/dbname and never contain the password: the
 * password (wh_params.password, or libpq's own sources: the URI, PGPASSWORD,
 * passfile/PGPASSFILE, ~/.pgpass, or $CREDENTIALS_DIRECTORY/pgpass given as
 * passfile under systemd) is scrubbed from every message we pass on.
 *
 * Session: client_encoding UTF8, DateStyle ISO, TimeZone UTC and the most
 * float digits each server takes (extra_float_digits 3 on PostgreSQL, 2 on
 * Redshift, whose "extra_float_digits" page allows -15 to 2: 3 is an error
 * there, and a failed setup fails the connection), so values print and
 * parse the same everywhere.
 *
 * Redshift's load errors: a COPY sent with wh_exec is preceded, in its
 * transaction, by `SELECT pg_backend_pid(), SYSDATE` (this session's
 * process id; the transaction's start, "SYSDATE" page).  After the COPY
 * failed and was rolled back, wh_load_errors finds its rows of
 * STL_LOAD_ERRORS through STL_QUERY: the "PG_BACKEND_PID" page correlates
 * pg_backend_pid() with STL_QUERY.pid, and the "STL_LOAD_ERRORS" page says
 * its query column joins the other system tables.  pg_last_copy_id() is not
 * used: its page speaks of the most recently completed COPY, and says
 * nothing of one that failed and was rolled back.
 * Host names are resolved with uv_getaddrinfo before PQconnectStart (and
 * given to libpq as hostaddr), since libpq would resolve them blocking. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "log.h"
#include "util.h"
#include "warehouse/wh_driver.h"

#define CHUNK_BYTES (256u << 10)    /* COPY data handed to the loop at once */
#define INFLIGHT_HIGH (8u << 20)    /* the worker waits above this... */
#define INFLIGHT_LOW (4u << 20)     /* ...until the loop drained it below this */
#define CONNECT_TIMEOUT_MS 30000    /* when the URI sets no connect_timeout */
#define CANCEL_GRACE_MS 15000       /* after PQcancel, before closing the connection */
#define MSG_MAX 1024

/* The setup sent once connected; see the header comment. */
static const char SESSION_SETUP[] =
        "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3";
/* https://docs.aws.amazon.com/redshift/latest/dg/r_extra_float_digits.html:
 * "0, -15 to 2"; r_datestyle.html and r_timezone_config.html take the rest. */
static const char RS_SESSION_SETUP[] =
        "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 2";

/* ---- the bridge: one uv_async_t that brings work to the loop ------------- */

struct wh_pg;

static struct {
        pthread_mutex_t mu;
        uv_loop_t *loop; /* NULL until wh_loop_init */
        uv_async_t async;
        struct wh_pg *head, *tail; /* connections with something for the loop */
} bridge = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- types ---------------------------------------------------------------- */

enum pg_state {
        ST_NEW,         /* no connection yet */
        ST_RESOLVING,   /* uv_getaddrinfo running */
        ST_CONNECTING,  /* PQconnectPoll until OK */
        ST_IDLE,        /* connected, nothing running */
        ST_BUSY,        /* a query (or the end of a COPY) sent; reading results */
        ST_COPY_IN,     /* COPY FROM STDIN: sending data */
        ST_COPY_ENDING, /* PQputCopyEnd could not be queued yet */
        ST_BAD,         /* the connection is gone; every op fails */
        ST_CLOSING,
};

static const char *const state_names[] = {
        [ST_NEW] = "new",         [ST_RESOLVING] = "resolving", [ST_CONNECTING] = "connecting",
        [ST_IDLE] = "idle",       [ST_BUSY] = "busy",           [ST_COPY_IN] = "copy-in",
        [ST_COPY_ENDING] = "copy-ending", [ST_BAD] = "bad",     [ST_CLOSING] = "closing",
};

enum op_kind { OP_CONNECT, OP_QUERY, OP_COPY_START, OP_COPY_END, OP_COPY_ABORT, OP_CLOSE };

/* What ST_BUSY is reading the results of. */
enum busy_for { BUSY_SETUP, BUSY_QUERY, BUSY_COPY_START, BUSY_COPY_END };

/* One request of the worker to the loop; lives on the worker's stack. */
struct pg_op {
        enum op_kind kind;
        const char *sql;
        const char *const *params;
        int nparams;
        bool keep_results;      /* hand the PGresults back (query, columns) */
        bool after_interrupt;   /* runs even after an interrupt (ROLLBACK) */
        bool skip_if_idle;      /* not in a transaction: nothing to do (ROLLBACK) */
        bool is_commit;         /* a COMMIT that answers ROLLBACK failed */
        /* set by the loop */
        bool done;
        int result;
        char err[MSG_MAX];
        PGresult **res;
        size_t nres, capres;
        char cmd_status[32];
};

/* COPY data on its way to the loop. */
struct chunk {
        struct chunk *next;
        size_t len, cap;
        char data[];
};

struct wh_pg {
        struct wh base;

        /* fixed at open (worker), read by both sides */
        const char **kw, **val; /* PQconnectStartParams arrays, NULL-terminated */
        size_t nkw;
        char *uri, *password, *passfile, *uri_password; /* owned strings */
        char *resolve_host;     /* a name to resolve before connecting, or NULL */
        char *host_opt, *port_opt; /* as the URI gives them ("" when not) */
        uint64_t connect_timeout_ms; /* 0: none */
        char label[256];        /* user@host:port/db, for messages (loop writes it once) */

        /* worker <-> loop, under mu */
        uv_mutex_t mu;
        uv_cond_t cond;
        struct pg_op *op;       /* posted and not done */
        bool interrupt_req;     /* for the loop */
        bool interrupted;       /* sticky */
        struct chunk *q_head, *q_tail; /* COPY data */
        size_t inflight;
        int copy_err;           /* < 0: the COPY failed, copy_msg says why */
        char copy_msg[MSG_MAX];

        /* the bridge queue, under bridge.mu */
        struct wh_pg *qnext;
        bool queued;

        /* loop thread only */
        enum pg_state state;
        enum busy_for busy;
        struct pg_op *cur;      /* the op being carried out */
        bool cur_started;
        PGconn *conn;
        uv_poll_t *poll;
        int poll_fd, poll_events;
        int connect_want;       /* events PQconnectPoll asked for */
        bool want_write;        /* PQflush left data */
        uv_timer_t *timer;
        unsigned handles_open;  /* handles whose close callback is still to come */
        bool resolving;         /* a uv_getaddrinfo request is out */
        unsigned cancels_out;   /* PQcancel works on the pool */
        bool cancel_sent;       /* for the statement running now */
        bool intr_seen;         /* interrupted, as the loop last read it */
        const char *copy_end_msg; /* ST_COPY_ENDING: NULL = success */
        int busy_err;           /* first error among the results */
        char busy_msg[MSG_MAX];
        char bad_msg[MSG_MAX];  /* why the connection is gone */
        int bad_err;

        /* worker only (Redshift): the last COPY's session and start, read
         * before it was sent; copy_pid 0 when unknown */
        long long copy_pid;
        char copy_since[40];
};

struct wh_pg_inserter {
        struct wh_inserter base;
        struct wh_pg *w;
        size_t n;
        struct chunk *cur;
        bool copying; /* COPY FROM STDIN started and not ended */
};

static void drive(struct wh_pg *w);
static void update_poll(struct wh_pg *w);
static void conn_lost(struct wh_pg *w, int err, const char *what);
static void connect_poll(struct wh_pg *w);

/* ---- messages --------------------------------------------------------------- */

/* Copies s into out with runs of white space made one space, trimmed, and
 * every occurrence of a secret replaced by "***". */
static void clean_msg(const struct wh_pg *w, const char *s, char *out, size_t outlen)
{
        if (!outlen)
                return;
        const char *secrets[2] = { w ? w->password : NULL, w ? w->uri_password : NULL };
        size_t o = 0;
        bool space = false;
        while (s && *s && o + 1 < outlen) {
                bool hit = false;
                for (size_t k = 0; k < 2 && !hit; k++) {
                        size_t n = secrets[k] ? strlen(secrets[k]) : 0;
                        if (n >= 3 && strncmp(s, secrets[k], n) == 0) {
                                if (space && o) {
                                        out[o++] = ' ';
                                        space = false;
                                }
                                for (const char *r = "***"; *r && o + 1 < outlen; r++)
                                        out[o++] = *r;
                                s += n;
                                hit = true;
                        }
                }
                if (hit)
                        continue;
                if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
                        space = true;
                        s++;
                        continue;
                }
                if (space && o) {
                        out[o++] = ' ';
                        if (o + 1 >= outlen)
                                break;
                }
                space = false;
                out[o++] = *s++;
        }
        out[o] = '\0';
}

/* The libpq message of the connection, cleaned. */
static void conn_msg(const struct wh_pg *w, char *out, size_t outlen)
{
        clean_msg(w, w->conn ? PQerrorMessage(w->conn) : "no connection", out, outlen);
        if (!out[0])
                util_setf(out, outlen, "unknown error");
}

/* -errno for a failed statement, from its SQLSTATE. */
static int sqlstate_err(const struct wh_pg *w, const char *st)
{
        if (!st || strlen(st) != 5)
                return -EIO;
        if (strcmp(st, "57014") == 0) /* query_canceled: ours, or statement_timeout */
                return w->intr_seen ? -ECANCELED : -ETIME; /* not transient: it would again */
        if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
                return -EBUSY;
        if (strcmp(st, "53100") == 0)
                return -ENOSPC;
        if (strcmp(st, "53200") == 0)
                return -ENOMEM;
        if (strncmp(st, "08", 2) == 0 || strcmp(st, "53300") == 0 || strcmp(st, "57P01") == 0 ||
            strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0)
                return -EAGAIN;
        if (strncmp(st, "28", 2) == 0 || strcmp(st, "42501") == 0)
                return -EACCES;
        if (strcmp(st, "42P01") == 0)
                return -ENOENT;
        return -EIO;
}

/* ---- the op hand-off ------------------------------------------------------- */

/* Puts w on the bridge's queue and wakes the loop.  Any thread. */
static void kick(struct wh_pg *w)
{
        pthread_mutex_lock(&bridge.mu);
        if (!w->queued) {
                w->queued = true;
                w->qnext = NULL;
                if (bridge.tail)
                        bridge.tail->qnext = w;
                else
                        bridge.head = w;
                bridge.tail = w;
        }
        pthread_mutex_unlock(&bridge.mu);
        uv_async_send(&bridge.async);
}

static void unqueue(struct wh_pg *w)
{
        pthread_mutex_lock(&bridge.mu);
        if (w->queued) {
                struct wh_pg **pp = &bridge.head, *prev = NULL;
                while (*pp && *pp != w) {
                        prev = *pp;
                        pp = &(*pp)->qnext;
                }
                if (*pp) {
                        *pp = w->qnext;
                        if (bridge.tail == w)
                                bridge.tail = prev;
                }
                w->queued = false;
        }
        pthread_mutex_unlock(&bridge.mu);
}

static void on_async(uv_async_t *a)
{
        for (;;) {
                pthread_mutex_lock(&bridge.mu);
                struct wh_pg *w = bridge.head;
                if (w) {
                        bridge.head = w->qnext;
                        if (!bridge.head)
                                bridge.tail = NULL;
                        w->queued = false;
                }
                pthread_mutex_unlock(&bridge.mu);
                if (!w)
                        return;
                drive(w); /* may end with w freed by its worker */
        }
}

/* Worker: post op, wait until the loop is done with it. */
static int run_op(struct wh_pg *w, struct pg_op *op)
{
        op->done = false;
        op->result = 0;
        op->err[0] = '\0';
        uv_mutex_lock(&w->mu);
        w->op = op;
        uv_mutex_unlock(&w->mu);
        kick(w);
        uv_mutex_lock(&w->mu);
        while (!op->done)
                uv_cond_wait(&w->cond, &w->mu);
        uv_mutex_unlock(&w->mu);
        return op->result;
}

/* Loop: the current op is over.  For OP_CLOSE, w may be freed as soon as
 * this returns. */
static void finish_op(struct wh_pg *w, int result, const char *msg)
{
        struct pg_op *op = w->cur;
        w->cur = NULL;
        w->cur_started = false;
        if (!op)
                return;
        op->result = result;
        if (result < 0 && msg)
                util_setf(op->err, sizeof(op->err), "%s", msg);
        uv_mutex_lock(&w->mu);
        w->op = NULL;
        op->done = true;
        uv_cond_broadcast(&w->cond);
        uv_mutex_unlock(&w->mu);
}

/* ---- loop side: handles ----------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h);

static void maybe_closed(struct wh_pg *w)
{
        if (w->state != ST_CLOSING || w->handles_open || w->cancels_out || w->resolving)
                return;
        unqueue(w);
        finish_op(w, 0, NULL); /* the worker frees w now */
}

static void on_handle_closed(uv_handle_t *h)
{
        struct wh_pg *w = h->data;
        free(h);
        w->handles_open--;
        maybe_closed(w);
}

static void close_poll(struct wh_pg *w)
{
        if (!w->poll)
                return;
        uv_close((uv_handle_t *)w->poll, on_handle_closed);
        w->poll = NULL;
        w->poll_fd = -1;
        w->poll_events = 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
        struct wh_pg *w = h->data;
        if (h != w->poll)
                return;
        if (status < 0)
                w->poll_events = 0; /* libuv stopped it; libpq will see the error */
        if (w->state == ST_CONNECTING) /* only when the socket is ready, as libpq asks */
                connect_poll(w);
        drive(w);
}

/* Watches PQsocket for exactly the events the state wants. */
static void update_poll(struct wh_pg *w)
{
        int want = 0;
        switch (w->state) {
        case ST_CONNECTING:
                want = w->connect_want;
                break;
        case ST_IDLE:
                want = UV_READABLE; /* notices, and noticing a dropped connection */
                break;
        case ST_BUSY:
        case ST_COPY_IN:
                want = UV_READABLE | (w->want_write ? UV_WRITABLE : 0);
                break;
        case ST_COPY_ENDING:
                want = UV_READABLE | UV_WRITABLE;
                break;
        default:
                want = 0;
        }
        int fd = w->conn ? PQsocket(w->conn) : -1;
        if (fd < 0 || want == 0) {
                if (fd < 0)
                        close_poll(w);
                else if (w->poll && w->poll_events) {
                        uv_poll_stop(w->poll);
                        w->poll_events = 0;
                }
                return;
        }
        if (w->poll && w->poll_fd != fd)
                close_poll(w); /* "do not assume the socket remains the same" */
        if (!w->poll) {
                uv_poll_t *p = calloc(1, sizeof(*p));
                if (!p) {
                        conn_lost(w, -ENOMEM, "out of memory");
                        return;
                }
                int rc = uv_poll_init(bridge.loop, p, fd);
                if (rc < 0) {
                        free(p);
                        char m[128];
                        util_setf(m, sizeof(m), "cannot watch the connection's socket: %s",
                                 uv_strerror(rc));
                        conn_lost(w, -EAGAIN, m);
                        return;
                }
                p->data = w;
                w->handles_open++;
                w->poll = p;
                w->poll_fd = fd;
                w->poll_events = 0;
        }
        if (want != w->poll_events) {
                int rc = uv_poll_start(w->poll, want, on_poll);
                if (rc < 0) {
                        char m[128];
                        util_setf(m, sizeof(m), "cannot watch the connection's socket: %s",
                                 uv_strerror(rc));
                        conn_lost(w, -EAGAIN, m);
                        return;
                }
                w->poll_events = want;
        }
}

static void on_timer(uv_timer_t *t);
static void connect_failed(struct wh_pg *w, int err, const char *why);

static void arm_timer(struct wh_pg *w, uint64_t ms)
{
        if (!w->timer) {
                w->timer = calloc(1, sizeof(*w->timer));
                if (!w->timer)
                        return; /* no deadline then; not worth failing for */
                uv_timer_init(bridge.loop, w->timer);
                w->timer->data = w;
                w->handles_open++;
        }
        uv_timer_start(w->timer, on_timer, ms, 0);
}

static void stop_timer(struct wh_pg *w)
{
        if (w->timer)
                uv_timer_stop(w->timer);
}

/* ---- loop side: COPY data queue --------------------------------------------- */

/* Drops queued COPY data and wakes a worker waiting for room. */
static void drop_chunks(struct wh_pg *w, int err, const char *msg)
{
        uv_mutex_lock(&w->mu);
        struct chunk *c = w->q_head;
        w->q_head = w->q_tail = NULL;
        w->inflight = 0;
        if (err < 0 && w->copy_err == 0) {
                w->copy_err = err;
                util_setf(w->copy_msg, sizeof(w->copy_msg), "%s", msg ? msg : "COPY failed");
        }
        uv_cond_broadcast(&w->cond);
        uv_mutex_unlock(&w->mu);
        while (c) {
                struct chunk *n = c->next;
                free(c);
                c = n;
        }
}

static struct chunk *take_chunk(struct wh_pg *w)
{
        uv_mutex_lock(&w->mu);
        struct chunk *c = w->q_head;
        if (c) {
                w->q_head = c->next;
                if (!w->q_head)
                        w->q_tail = NULL;
                bool was_high = w->inflight > INFLIGHT_LOW;
                w->inflight -= c->len;
                if (was_high && w->inflight <= INFLIGHT_LOW)
                        uv_cond_broadcast(&w->cond);
        }
        uv_mutex_unlock(&w->mu);
        return c;
}

/* ---- loop side: the connection is gone --------------------------------------- */

static void conn_lost(struct wh_pg *w, int err, const char *what)
{
        if (w->state == ST_BAD || w->state == ST_CLOSING)
                return;
        char m[MSG_MAX];
        if (what)
                util_setf(m, sizeof(m), "%s", what);
        else
                conn_msg(w, m, sizeof(m));
        util_setf(w->bad_msg, sizeof(w->bad_msg), "connection to PostgreSQL %s lost: %s",
                 w->label, m);
        w->bad_err = w->intr_seen ? -ECANCELED : err;
        log_debug(w->base.drv->dialect, "%s: %s (was %s)", w->label, w->bad_msg,
                  state_names[w->state]);
        w->state = ST_BAD;
        stop_timer(w);
        close_poll(w); /* before the socket is closed by libpq (or was) */
        if (w->conn) {
                PQfinish(w->conn);
                w->conn = NULL;
        }
        drop_chunks(w, w->bad_err, w->bad_msg);
        if (w->cur && w->cur->kind != OP_CLOSE)
                finish_op(w, w->bad_err, w->bad_msg);
}

/* ---- loop side: PQcancel on the pool ----------------------------------------- */

struct cancel_work {
        uv_work_t req;
        struct wh_pg *w;
        PGcancel *cancel;
        int ok;
        char err[256];
};

static void cancel_run(uv_work_t *req)
{
        struct cancel_work *cw = req->data;
        cw->ok = PQcancel(cw->cancel, cw->err, (int)sizeof(cw->err));
}

static void cancel_after(uv_work_t *req, int status)
{
        struct cancel_work *cw = req->data;
        struct wh_pg *w = cw->w;
        PQfreeCancel(cw->cancel);
        if (status == 0 && !cw->ok) {
                char m[256];
                clean_msg(w, cw->err, m, sizeof(m));
                log_debug(w->base.drv->dialect, "%s: PQcancel failed: %s", w->label, m);
        }
        free(cw);
        w->cancels_out--;
        maybe_closed(w);
}

static void send_cancel(struct wh_pg *w)
{
        if (w->cancel_sent || !w->conn)
                return;
        w->cancel_sent = true;
        PGcancel *c = PQgetCancel(w->conn);
        struct cancel_work *cw = c ? calloc(1, sizeof(*cw)) : NULL;
        if (!cw) {
                PQfreeCancel(c);
                return;
        }
        cw->w = w;
        cw->cancel = c;
        cw->req.data = cw;
        if (uv_queue_work(bridge.loop, &cw->req, cancel_run, cancel_after) < 0) {
                PQfreeCancel(c);
                free(cw);
                return;
        }
        w->cancels_out++;
        log_debug(w->base.drv->dialect, "%s: cancel requested", w->label);
        arm_timer(w, CANCEL_GRACE_MS);
}

static void on_timer(uv_timer_t *t)
{
        struct wh_pg *w = t->data;
        if (w->state == ST_CONNECTING) {
                char m[128];
                util_setf(m, sizeof(m), "no answer within %" PRIu64 " s (connect_timeout)",
                         w->connect_timeout_ms / 1000);
                connect_failed(w, -EAGAIN, m);
                return;
        }
        if (w->cancel_sent && (w->state == ST_BUSY || w->state == ST_COPY_ENDING)) {
                char m[128];
                util_setf(m, sizeof(m), "no answer to the cancel request within %d s; closed",
                         CANCEL_GRACE_MS / 1000);
                conn_lost(w, -ECANCELED, m);
        }
}

/* ---- loop side: the state machine -------------------------------------------- */

static void connect_failed(struct wh_pg *w, int err, const char *why)
{
        char m[MSG_MAX], full[MSG_MAX];
        if (why)
                util_setf(m, sizeof(m), "%s", why);
        else
                conn_msg(w, m, sizeof(m));
        util_setf(full, sizeof(full), "cannot connect to PostgreSQL %s: %s", w->label, m);
        if (err == 0) {
                /* The server answered and refused (a FATAL at login): not
                 * transient, except while it starts or stops. */
                if (strstr(m, "FATAL") && !strstr(m, "starting up") &&
                    !strstr(m, "shutting down") && !strstr(m, "recovery mode") &&
                    !strstr(m, "too many") && !strstr(m, "remaining connection slots"))
                        err = -EACCES;
                else if (strstr(m, "could not translate host name") ||
                         strstr(m, "invalid") || strstr(m, "no password supplied") ||
                         strstr(m, "SSL") || strstr(m, "certificate"))
                        err = -EINVAL;
                else
                        err = -EAGAIN; /* refused, unreachable, timed out, reset */
        }
        if (w->intr_seen)
                err = -ECANCELED;
        stop_timer(w);
        close_poll(w);
        if (w->conn) {
                PQfinish(w->conn);
                w->conn = NULL;
        }
        w->state = ST_BAD;
        w->bad_err = err;
        util_setf(w->bad_msg, sizeof(w->bad_msg), "%s", full);
        finish_op(w, err, full);
}

static void notice_processor(void *arg, const char *message)
{
        struct wh_pg *w = arg;
        char m[512];
        clean_msg(w, message, m, sizeof(m));
        log_debug(w->base.drv->dialect, "%s: %s", w->label, m);
}

static void set_label(struct wh_pg *w)
{
        const char *host = w->host_opt && *w->host_opt ? w->host_opt : PQhost(w->conn);
        const char *port = PQport(w->conn);
        const char *user = PQuser(w->conn);
        util_setf(w->label, sizeof(w->label), "%s@%s%s%s/%s", user ? user : "",
                 host && *host ? host : "localhost", port && *port ? ":" : "",
                 port ? port : "", PQdb(w->conn) ? PQdb(w->conn) : "");
}

/* Starts PQconnectStartParams, with hostaddr when we resolved the host. */
static void connect_start(struct wh_pg *w, const char *hosts, const char *addrs)
{
        size_t n = w->nkw;
        if (hosts) {
                w->kw[n] = "host";
                w->val[n++] = hosts;
                w->kw[n] = "hostaddr";
                w->val[n++] = addrs;
        }
        w->kw[n] = NULL;
        w->val[n] = NULL;
        w->conn = PQconnectStartParams(w->kw, w->val, 1);
        w->kw[w->nkw] = NULL; /* the resolved strings are the caller's */
        w->val[w->nkw] = NULL;
        if (!w->conn) {
                connect_failed(w, -ENOMEM, "out of memory");
                return;
        }
        set_label(w);
        if (PQstatus(w->conn) == CONNECTION_BAD) {
                connect_failed(w, -EINVAL, NULL);
                return;
        }
        PQsetNoticeProcessor(w->conn, notice_processor, w);
        if (PQsetnonblocking(w->conn, 1) != 0) {
                connect_failed(w, 0, NULL);
                return;
        }
        w->state = ST_CONNECTING;
        w->connect_want = UV_WRITABLE; /* "as if PQconnectPoll returned WRITING" */
        if (w->connect_timeout_ms)
                arm_timer(w, w->connect_timeout_ms);
        log_debug(w->base.drv->dialect, "%s: connecting", w->label);
}

struct resolve {
        uv_getaddrinfo_t req;
        struct wh_pg *w;
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
        struct resolve *r = req->data;
        struct wh_pg *w = r->w;
        free(r);
        w->resolving = false;
        if (w->state != ST_RESOLVING) { /* closing */
                uv_freeaddrinfo(res);
                maybe_closed(w);
                return;
        }
        if (w->intr_seen) {
                uv_freeaddrinfo(res);
                w->state = ST_BAD;
                w->bad_err = -ECANCELED;
                util_setf(w->bad_msg, sizeof(w->bad_msg), "cancelled while connecting");
                finish_op(w, -ECANCELED, w->bad_msg);
                return;
        }
        if (status < 0) {
                char m[MSG_MAX];
                util_setf(m, sizeof(m), "cannot resolve host name \"%s\": %s", w->resolve_host,
                         uv_strerror(status));
                connect_failed(w, status == UV_EAI_AGAIN ? -EAGAIN : -EHOSTUNREACH, m);
                uv_freeaddrinfo(res);
                return;
        }
        struct buf hosts = { 0 }, addrs = { 0 };
        int rc = 0;
        size_t n = 0;
        for (struct addrinfo *a = res; a && rc == 0 && n < 16; a = a->ai_next) {
                char ip[INET6_ADDRSTRLEN] = "";
                if (a->ai_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip,
                                  sizeof(ip));
                else if (a->ai_family == AF_INET6)
                        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, ip,
                                  sizeof(ip));
                if (!ip[0] || (addrs.len && strstr(addrs.data, ip)))
                        continue;
                rc = buf_printf(&hosts, "%s%s", n ? "," : "", w->resolve_host);
                if (rc == 0)
                        rc = buf_printf(&addrs, "%s%s", n ? "," : "", ip);
                n++;
        }
        uv_freeaddrinfo(res);
        if (rc < 0 || n == 0) {
                buf_free(&hosts);
                buf_free(&addrs);
                connect_failed(w, rc < 0 ? -ENOMEM : -EHOSTUNREACH,
                               rc < 0 ? "out of memory" : "the host name has no address");
                return;
        }
        connect_start(w, hosts.data, addrs.data);
        buf_free(&hosts);
        buf_free(&addrs);
        if (w->state == ST_CONNECTING)
                update_poll(w);
}

static void begin_connect(struct wh_pg *w)
{
        w->cur_started = true;
        if (w->resolve_host) {
                struct resolve *r = calloc(1, sizeof(*r));
                if (!r) {
                        connect_failed(w, -ENOMEM, "out of memory");
                        return;
                }
                r->w = w;
                r->req.data = r;
                struct addrinfo hints = { .ai_family = AF_UNSPEC,
                                          .ai_socktype = SOCK_STREAM,
                                          .ai_flags = AI_ADDRCONFIG };
                int rc = uv_getaddrinfo(bridge.loop, &r->req, on_resolved, w->resolve_host, NULL,
                                        &hints);
                if (rc < 0) {
                        free(r);
                        char m[256];
                        util_setf(m, sizeof(m), "cannot resolve \"%s\": %s", w->resolve_host,
                                 uv_strerror(rc));
                        connect_failed(w, -EAGAIN, m);
                        return;
                }
                w->resolving = true;
                w->state = ST_RESOLVING;
                return;
        }
        connect_start(w, NULL, NULL);
}

/* Sends a query (simple protocol, or with parameters); ST_BUSY. */
static void send_query(struct wh_pg *w, const char *sql, int nparams, const char *const *params,
                       enum busy_for busy)
{
        int ok = nparams ? PQsendQueryParams(w->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                         : PQsendQuery(w->conn, sql);
        if (!ok) {
                if (PQstatus(w->conn) == CONNECTION_BAD) {
                        conn_lost(w, -EAGAIN, NULL);
                        return;
                }
                char m[MSG_MAX];
                conn_msg(w, m, sizeof(m));
                finish_op(w, -EIO, m);
                return;
        }
        w->state = ST_BUSY;
        w->busy = busy;
        w->busy_err = 0;
        w->busy_msg[0] = '\0';
        w->cancel_sent = false;
        w->want_write = true; /* flushed in busy_io */
}

static void connect_poll(struct wh_pg *w)
{
        /* libpq may close and reopen the socket inside PQconnectPoll: stop
         * watching it first (uv_poll_stop deregisters the fd). */
        if (w->poll && w->poll_events) {
                uv_poll_stop(w->poll);
                w->poll_events = 0;
        }
        PostgresPollingStatusType st = PQconnectPoll(w->conn);
        switch (st) {
        case PGRES_POLLING_OK:
                stop_timer(w);
                log_debug(w->base.drv->dialect, "%s: connected (server %d, backend pid %d)",
                          w->label, PQserverVersion(w->conn), PQbackendPID(w->conn));
                send_query(w, w->base.drv == &wh_redshift_driver ? RS_SESSION_SETUP : SESSION_SETUP,
                           0, NULL, BUSY_SETUP);
                break;
        case PGRES_POLLING_FAILED:
                connect_failed(w, 0, NULL);
                break;
        case PGRES_POLLING_READING:
                w->connect_want = UV_READABLE;
                break;
        case PGRES_POLLING_WRITING:
        default:
                w->connect_want = UV_WRITABLE;
                break;
        }
}

static void keep_result(struct wh_pg *w, PGresult *r)
{
        struct pg_op *op = w->cur;
        if (!op || !op->keep_results) {
                PQclear(r);
                return;
        }
        if (op->nres == op->capres) {
                size_t cap = op->capres ? op->capres * 2 : 4;
                PGresult **n = realloc(op->res, cap * sizeof(*n));
                if (!n) {
                        PQclear(r);
                        if (!w->busy_err) {
                                w->busy_err = -ENOMEM;
                                util_setf(w->busy_msg, sizeof(w->busy_msg), "out of memory");
                        }
                        return;
                }
                op->res = n;
                op->capres = cap;
        }
        op->res[op->nres++] = r;
}

static void result_error(struct wh_pg *w, const PGresult *r)
{
        if (w->busy_err)
                return;
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        w->busy_err = sqlstate_err(w, st);
        char m[MSG_MAX];
        const char *text = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        clean_msg(w, text ? text : PQresultErrorMessage(r), m, sizeof(m));
        const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        char d[512] = "";
        if (detail)
                clean_msg(w, detail, d, sizeof(d));
        if (w->busy_err == -ECANCELED)
                util_setf(w->busy_msg, sizeof(w->busy_msg), "cancelled (%s)", m);
        else
                util_setf(w->busy_msg, sizeof(w->busy_msg), "%s%s%s%s%s%s", m, d[0] ? " (" : "", d,
                         d[0] ? ")" : "", st ? " [SQLSTATE " : "", st ? st : "");
        if (st)
                util_setf(w->busy_msg + strlen(w->busy_msg),
                         sizeof(w->busy_msg) - strlen(w->busy_msg), "]");
}

/* Answers COPY_END (with the COPY's result) or COPY_ABORT (always 0). */
static void answer_copy_end(struct wh_pg *w)
{
        uv_mutex_lock(&w->mu);
        int e = w->copy_err;
        char m[MSG_MAX];
        util_setf(m, sizeof(m), "%s", w->copy_msg);
        uv_mutex_unlock(&w->mu);
        if (w->cur->kind == OP_COPY_ABORT || e == 0)
                finish_op(w, 0, NULL);
        else
                finish_op(w, e, m);
}

/* The results of ST_BUSY are all in. */
static void busy_done(struct wh_pg *w)
{
        w->state = ST_IDLE;
        stop_timer(w);
        struct pg_op *op = w->cur;
        switch (w->busy) {
        case BUSY_SETUP:
                if (w->busy_err) {
                        char m[MSG_MAX];
                        util_setf(m, sizeof(m), "setting up the session on %s: %s", w->label,
                                 w->busy_msg);
                        finish_op(w, w->busy_err, m);
                } else {
                        finish_op(w, 0, NULL);
                }
                return;
        case BUSY_COPY_START: /* an error before COPY_IN */
        case BUSY_QUERY:
                if (op && op->is_commit && !w->busy_err &&
                    strcmp(op->cmd_status, "ROLLBACK") == 0) {
                        w->busy_err = -EIO;
                        util_setf(w->busy_msg, sizeof(w->busy_msg),
                                 "COMMIT rolled back the transaction (a statement in it failed)");
                }
                if (w->busy_err)
                        finish_op(w, w->busy_err, w->busy_msg);
                else
                        finish_op(w, 0, NULL);
                return;
        case BUSY_COPY_END:
                /* The COPY's own result; the COPY_END/ABORT op (now or later)
                 * is answered in ST_IDLE from copy_err. */
                if (w->busy_err) {
                        uv_mutex_lock(&w->mu);
                        if (!w->copy_err) {
                                w->copy_err = w->busy_err;
                                util_setf(w->copy_msg, sizeof(w->copy_msg), "%s", w->busy_msg);
                        }
                        uv_mutex_unlock(&w->mu);
                }
                if (op && w->cur_started &&
                    (op->kind == OP_COPY_END || op->kind == OP_COPY_ABORT))
                        answer_copy_end(w);
                return;
        }
}

static void busy_io(struct wh_pg *w)
{
        int f = PQflush(w->conn);
        if (f < 0 || PQstatus(w->conn) == CONNECTION_BAD) {
                conn_lost(w, -EAGAIN, NULL);
                return;
        }
        w->want_write = f == 1;
        /* A flush may have read from the socket too: always look at input. */
        if (!PQconsumeInput(w->conn)) {
                conn_lost(w, -EAGAIN, NULL);
                return;
        }
        while (!PQisBusy(w->conn)) {
                PGresult *r = PQgetResult(w->conn);
                if (!r) {
                        if (PQstatus(w->conn) == CONNECTION_BAD) {
                                conn_lost(w, -EAGAIN, NULL);
                                return;
                        }
                        busy_done(w);
                        return;
                }
                ExecStatusType st = PQresultStatus(r);
                if (st == PGRES_COPY_IN && w->busy == BUSY_COPY_START && !w->busy_err) {
                        PQclear(r);
                        w->state = ST_COPY_IN;
                        w->want_write = false;
                        uv_mutex_lock(&w->mu);
                        w->copy_err = 0;
                        w->copy_msg[0] = '\0';
                        uv_mutex_unlock(&w->mu);
                        finish_op(w, 0, NULL);
                        return;
                }
                if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
                        /* a COPY we did not ask for (in a script): refuse it */
                        PQclear(r);
                        if (!w->busy_err) {
                                w->busy_err = -EINVAL;
                                util_setf(w->busy_msg, sizeof(w->busy_msg),
                                         "COPY FROM STDIN / TO STDOUT is not allowed here");
                        }
                        if (st == PGRES_COPY_IN) {
                                w->copy_end_msg = "not allowed";
                                w->busy = BUSY_QUERY;
                                if (PQputCopyEnd(w->conn, w->copy_end_msg) < 0) {
                                        conn_lost(w, -EAGAIN, NULL);
                                        return;
                                }
                        } else {
                                conn_lost(w, -EINVAL, w->busy_msg);
                                return;
                        }
                        continue;
                }
                if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
                    st == PGRES_BAD_RESPONSE)
                        result_error(w, r);
                if (w->cur && st == PGRES_COMMAND_OK)
                        util_setf(w->cur->cmd_status, sizeof(w->cur->cmd_status), "%s",
                                 PQcmdStatus(r));
                if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                        keep_result(w, r);
                else
                        PQclear(r);
                if (PQstatus(w->conn) == CONNECTION_BAD) {
                        /* e.g. FATAL terminating connection due to administrator command */
                        conn_lost(w, -EAGAIN, w->busy_msg[0] ? w->busy_msg : NULL);
                        return;
                }
        }
}

/* Idle: whatever the server sends (notices, parameter changes, the error
 * and EOF of a terminated session) is read, so a readable socket never spins
 * the loop, and a dropped connection is noticed before the next statement. */
static void idle_io(struct wh_pg *w)
{
        if (!PQconsumeInput(w->conn) || PQstatus(w->conn) == CONNECTION_BAD) {
                conn_lost(w, -EAGAIN, NULL);
                return;
        }
        (void)PQisBusy(w->conn); /* parses the input: notices go to the processor */
        PGnotify *n;
        while ((n = PQnotifies(w->conn)))
                PQfreemem(n);
}

static void copy_io(struct wh_pg *w)
{
        /* Nothing is expected from the server during COPY IN, but reading
         * notices an error or a closed connection early. */
        if (!PQconsumeInput(w->conn) || PQstatus(w->conn) == CONNECTION_BAD) {
                conn_lost(w, -EAGAIN, NULL);
                return;
        }
        for (;;) {
                int f = PQflush(w->conn);
                if (f < 0) {
                        conn_lost(w, -EAGAIN, NULL);
                        return;
                }
                if (f == 1) {
                        w->want_write = true; /* libpq holds data: no more until it is out */
                        return;
                }
                struct chunk *c = take_chunk(w);
                if (!c)
                        break;
                int r = PQputCopyData(w->conn, c->data, (int)c->len);
                free(c);
                if (r != 1) {
                        conn_lost(w, r == 0 ? -ENOMEM : -EAGAIN, NULL);
                        return;
                }
        }
        w->want_write = false;
        if (w->cur && !w->cur_started &&
            (w->cur->kind == OP_COPY_END || w->cur->kind == OP_COPY_ABORT)) {
                w->cur_started = true;
                w->copy_end_msg = w->cur->kind == OP_COPY_ABORT ? "COPY abandoned by etld" : NULL;
                w->state = ST_COPY_ENDING;
        }
}

static void copy_end(struct wh_pg *w)
{
        int r = PQputCopyEnd(w->conn, w->copy_end_msg);
        if (r < 0) {
                conn_lost(w, -EAGAIN, NULL);
                return;
        }
        if (r == 0)
                return; /* could not queue it: wait for writable */
        w->state = ST_BUSY;
        w->busy = BUSY_COPY_END;
        w->busy_err = 0;
        w->busy_msg[0] = '\0';
        w->want_write = true;
}

static void handle_interrupt(struct wh_pg *w)
{
        switch (w->state) {
        case ST_CONNECTING:
                connect_failed(w, -ECANCELED, "cancelled while connecting");
                break;
        case ST_BUSY:
                /* not after our own CopyFail: that COPY is ending already, and
                 * a late cancel could hit the next statement */
                if (!(w->busy == BUSY_COPY_END && w->copy_end_msg))
                        send_cancel(w);
                break;
        case ST_COPY_IN:
                drop_chunks(w, -ECANCELED, "COPY cancelled");
                w->copy_end_msg = "COPY cancelled by etld";
                w->state = ST_COPY_ENDING;
                break;
        default:
                break; /* idle, resolving (checked when it returns), bad, closing */
        }
}

/* Starts the current op when the state allows, or answers it at once. */
static void start_op(struct wh_pg *w)
{
        struct pg_op *op = w->cur;
        if (op->kind == OP_CONNECT) {
                if (w->state == ST_NEW)
                        begin_connect(w);
                else
                        finish_op(w, -EINVAL, "already connected");
                return;
        }
        if (w->state == ST_BAD) {
                if (op->kind == OP_COPY_ABORT || (op->kind == OP_QUERY && op->skip_if_idle))
                        finish_op(w, 0, NULL);
                else
                        finish_op(w, w->bad_err ? w->bad_err : -EAGAIN, w->bad_msg);
                return;
        }
        if (w->intr_seen && !op->after_interrupt && op->kind != OP_COPY_ABORT &&
            op->kind != OP_COPY_END) {
                finish_op(w, -ECANCELED, "cancelled");
                return;
        }
        switch (w->state) {
        case ST_IDLE:
                if (op->kind == OP_COPY_END || op->kind == OP_COPY_ABORT) {
                        /* the COPY ended already (cancelled or failed) */
                        answer_copy_end(w);
                        return;
                }
                if (op->skip_if_idle && PQtransactionStatus(w->conn) == PQTRANS_IDLE) {
                        finish_op(w, 0, NULL);
                        return;
                }
                if (op->is_commit && PQtransactionStatus(w->conn) == PQTRANS_INERROR) {
                        finish_op(w, -EIO,
                                  "COMMIT of a failed transaction (a statement in it failed)");
                        return;
                }
                w->cur_started = true;
                send_query(w, op->sql, op->nparams, op->params,
                           op->kind == OP_COPY_START ? BUSY_COPY_START : BUSY_QUERY);
                return;
        case ST_COPY_IN:
        case ST_COPY_ENDING:
                if (op->kind == OP_COPY_ABORT)
                        drop_chunks(w, 0, NULL);
                if (op->kind == OP_COPY_END || op->kind == OP_COPY_ABORT)
                        return; /* copy_io ends the COPY once the data is out */
                finish_op(w, -EINVAL, "a COPY is in progress on this connection");
                return;
        default:
                return; /* busy: started when idle */
        }
}

/* The one entry point of the loop side: looks at what changed and moves the
 * state machine as far as it goes without waiting. */
static void drive(struct wh_pg *w)
{
        uv_mutex_lock(&w->mu);
        bool intr = w->interrupt_req;
        w->interrupt_req = false;
        w->intr_seen = w->interrupted;
        bool closing = !w->cur && w->op && w->op->kind == OP_CLOSE;
        if (!w->cur && w->op && !closing) {
                w->cur = w->op;
                w->cur_started = false;
        }
        uv_mutex_unlock(&w->mu);

        if (closing) {
                uv_mutex_lock(&w->mu);
                w->cur = w->op;
                uv_mutex_unlock(&w->mu);
                w->state = ST_CLOSING;
                if (w->timer) {
                        uv_close((uv_handle_t *)w->timer, on_handle_closed);
                        w->timer = NULL;
                }
                close_poll(w);
                if (w->conn) {
                        PQfinish(w->conn); /* sends Terminate; the server rolls back */
                        w->conn = NULL;
                }
                drop_chunks(w, 0, NULL);
                maybe_closed(w); /* may free w */
                return;
        }
        if (w->state == ST_CLOSING)
                return;
        if (intr)
                handle_interrupt(w);

        for (int guard = 0; guard < 64; guard++) {
                enum pg_state before = w->state;
                bool had_cur = w->cur != NULL;
                switch (w->state) {
                case ST_IDLE:
                        if (guard == 0) /* woken while idle: see what came */
                                idle_io(w);
                        break;
                case ST_BUSY:
                        busy_io(w);
                        break;
                case ST_COPY_IN:
                        copy_io(w);
                        break;
                case ST_COPY_ENDING:
                        copy_end(w);
                        break;
                default:
                        break;
                }
                if (w->cur && !w->cur_started &&
                    (w->state == ST_IDLE || w->state == ST_NEW || w->state == ST_BAD ||
                     w->state == ST_COPY_IN || w->state == ST_COPY_ENDING))
                        start_op(w);
                if (w->state == before && had_cur == (w->cur != NULL))
                        break;
        }
        update_poll(w);
}

/* ---- bridge set-up ------------------------------------------------------------ */

int wh_pg_loop_init(void *loop)
{
        if (bridge.loop)
                return bridge.loop == loop ? 0 : -EBUSY;
        int rc = uv_async_init(loop, &bridge.async, on_async);
        if (rc < 0)
                return rc;
        uv_unref((uv_handle_t *)&bridge.async); /* never keeps the loop alive */
        bridge.loop = loop;
        return 0;
}

void wh_pg_loop_close(void)
{
        if (!bridge.loop)
                return;
        uv_close((uv_handle_t *)&bridge.async, NULL);
        bridge.loop = NULL;
}

/* ---- worker side --------------------------------------------------------------- */

static struct wh_pg *pg(struct wh *base)
{
        return (struct wh_pg *)base;
}

static void pg_free(struct wh_pg *w)
{
        uv_mutex_destroy(&w->mu);
        uv_cond_destroy(&w->cond);
        free(w->kw);
        free(w->val);
        free(w->uri);
        if (w->password)
                memset(w->password, 0, strlen(w->password));
        free(w->password);
        if (w->uri_password)
                memset(w->uri_password, 0, strlen(w->uri_password));
        free(w->uri_password);
        free(w->passfile);
        free(w->resolve_host);
        free(w->host_opt);
        free(w->port_opt);
        free(w);
}

static void pg_close(struct wh *base)
{
        struct wh_pg *w = pg(base);
        struct pg_op op = { .kind = OP_CLOSE };
        run_op(w, &op);
        pg_free(w);
}

/* The password part of a URI's userinfo, as written (for scrubbing messages
 * when libpq cannot parse the URI). */
static char *uri_userinfo_password(const char *uri)
{
        const char *s = strstr(uri, "://");
        if (!s)
                return NULL;
        s += 3;
        size_t auth = strcspn(s, "/?");
        const char *at = memchr(s, '@', auth);
        if (!at)
                return NULL;
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon || colon + 1 == at)
                return NULL;
        return strndup(colon + 1, (size_t)(at - colon - 1));
}

static bool is_ip_literal(const char *h)
{
        unsigned char b[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* Opens a connection for driver drv (PostgreSQL, or Redshift with the URI
 * already rewritten by rs_open). */
static int open_drv(const struct wh_params *p, const struct wh_driver *drv, struct wh **ret,
                    char *err, size_t errlen)
{
        if (!bridge.loop || (p->loop && p->loop != (void *)bridge.loop)) {
                util_setf(err, errlen,
                         "warehouse.target %s://...: the %s driver runs on "
                         "etld's event loop, which is not set up in this program",
                         drv == &wh_pg_driver ? "postgresql" : "redshift",
                         drv == &wh_pg_driver ? "PostgreSQL" : "Redshift");
                return -ENOTSUP;
        }
        struct wh_pg *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->base.drv = drv;
        w->poll_fd = -1;
        uv_mutex_init(&w->mu);
        uv_cond_init(&w->cond);
        w->uri = strdup(p->uri);
        if (p->password && *p->password)
                w->password = strdup(p->password);
        if (!w->uri || (p->password && *p->password && !w->password)) {
                pg_free(w);
                return -ENOMEM;
        }

        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(w->uri, &perr);
        if (!opts) {
                w->uri_password = uri_userinfo_password(w->uri);
                char m[MSG_MAX];
                clean_msg(w, perr ? perr : "out of memory", m, sizeof(m));
                util_setf(err, errlen, "warehouse.target: not a valid PostgreSQL URI: %s", m);
                PQfreemem(perr);
                pg_free(w);
                return perr ? -EINVAL : -ENOMEM;
        }
        const char *host = "", *hostaddr = "", *port = "", *timeout = NULL, *passfile = NULL;
        const char *user = "", *dbname = "";
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!o->val)
                        continue;
                if (strcmp(o->keyword, "host") == 0)
                        host = o->val;
                else if (strcmp(o->keyword, "hostaddr") == 0)
                        hostaddr = o->val;
                else if (strcmp(o->keyword, "port") == 0)
                        port = o->val;
                else if (strcmp(o->keyword, "user") == 0)
                        user = o->val;
                else if (strcmp(o->keyword, "dbname") == 0)
                        dbname = o->val;
                else if (strcmp(o->keyword, "connect_timeout") == 0)
                        timeout = o->val;
                else if (strcmp(o->keyword, "passfile") == 0)
                        passfile = o->val;
                else if (strcmp(o->keyword, "password") == 0 && *o->val)
                        w->uri_password = strdup(o->val);
        }
        w->host_opt = strdup(host);
        w->port_opt = strdup(port);
        /* until connect_start knows libpq's defaults too */
        util_setf(w->label, sizeof(w->label), "%s%s%s%s%s/%s", user, *user ? "@" : "",
                 *host ? host : "localhost", *port ? ":" : "", port, dbname);
        /* libpq's connect_timeout is ours to enforce with PQconnectPoll. */
        long long t = -1;
        w->connect_timeout_ms = CONNECT_TIMEOUT_MS;
        if (timeout && util_parse_ll(timeout, &t) == 0)
                w->connect_timeout_ms = t <= 0 ? 0 : (uint64_t)(t < 2 ? 2 : t) * 1000;
        /* A host name (not an address, not a socket directory, one host) is
         * resolved on the loop with uv_getaddrinfo: libpq would block. */
        if (*host && !*hostaddr && !strchr(host, ',') && host[0] != '/' && host[0] != '@' &&
            !is_ip_literal(host))
                w->resolve_host = strdup(host);
        /* Under systemd, LoadCredential=pgpass:... gives a passfile. */
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        if (!w->password && !w->uri_password && !passfile && !getenv("PGPASSFILE") &&
            !getenv("PGPASSWORD") && creds && *creds) {
                struct buf b = { 0 };
                struct stat sb;
                if (buf_printf(&b, "%s/pgpass", creds) == 0 && stat(b.data, &sb) == 0)
                        w->passfile = b.data;
                else
                        buf_free(&b);
        }
        PQconninfoFree(opts);

        /* dbname=URI expanded first; what follows overrides it. */
        w->kw = calloc(10, sizeof(*w->kw));
        w->val = calloc(10, sizeof(*w->val));
        if (!w->kw || !w->val || !w->host_opt || !w->port_opt) {
                pg_free(w);
                return -ENOMEM;
        }
        size_t n = 0;
        w->kw[n] = "dbname";
        w->val[n++] = w->uri;
        w->kw[n] = "fallback_application_name";
        w->val[n++] = "etld";
        w->kw[n] = "client_encoding";
        w->val[n++] = "UTF8";
        if (w->password) {
                w->kw[n] = "password";
                w->val[n++] = w->password;
        }
        if (w->passfile) {
                w->kw[n] = "passfile";
                w->val[n++] = w->passfile;
        }
        w->nkw = n; /* room for host, hostaddr and the NULL after */

        struct pg_op op = { .kind = OP_CONNECT };
        int res = run_op(w, &op);
        if (res < 0) {
                util_setf(err, errlen, "%s", op.err);
                pg_close(&w->base);
                return res;
        }
        *ret = &w->base;
        return 0;
}

static int pg_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        return open_drv(p, &wh_pg_driver, ret, err, errlen);
}

/* Redshift speaks PostgreSQL's protocol: the same connection, with the
 * URI rewritten by wh_redshift_uri (TLS required unless the URI says
 * otherwise, port 5439, database dev) and the "redshift" SQL folder. */
static int rs_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        char *uri = NULL;
        int res = wh_redshift_uri(p->uri, &uri, err, errlen);
        if (res < 0)
                return res;
        struct wh_params q = *p;
        q.uri = uri;
        res = open_drv(&q, &wh_redshift_driver, ret, err, errlen);
        free(uri);
        return res;
}

int wh_redshift_uri(const char *uri, char **ret, char *err, size_t errlen)
{
        static const char scheme[] = "redshift://";
        *ret = NULL;
        if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0) {
                util_setf(err, errlen, "warehouse.target: '%.*s...' is not a redshift:// URI",
                          (int)strcspn(uri, ":"), uri);
                return -EINVAL;
        }
        const char *auth = uri + sizeof(scheme) - 1;
        size_t alen = strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', alen);
        const char *host = at ? at + 1 : auth;
        size_t hlen = alen - (size_t)(host - auth);
        if (hlen == 0) {
                util_setf(err, errlen,
                          "warehouse.target redshift://: no host (etld fills it in from the "
                          "provision job's outputs only for the etl pipeline)");
                return -EINVAL;
        }
        /* A port after the host, or after an IPv6 literal's ']'. */
        const char *close = memchr(host, ']', hlen);
        const char *after = close ? close + 1 : host;
        bool has_port = memchr(after, ':', hlen - (size_t)(after - host)) != NULL;
        const char *rest = auth + alen; /* "", "/db...", "?..." */
        bool has_db = rest[0] == '/' && rest[1] && rest[1] != '?' && rest[1] != '#';
        const char *query = strchr(rest, '?');
        bool has_ssl = query && (strstr(query, "?sslmode=") || strstr(query, "&sslmode="));
        struct buf b = { 0 };
        int res = buf_printf(&b, "postgresql://%.*s%s", (int)alen, auth, has_port ? "" : ":5439");
        if (res == 0 && has_db)
                res = buf_printf(&b, "%.*s", (int)(query ? (size_t)(query - rest) : strlen(rest)),
                                 rest);
        else if (res == 0)
                res = buf_printf(&b, "/dev");
        if (res == 0 && query)
                res = buf_printf(&b, "%s", query);
        if (res == 0 && !has_ssl)
                res = buf_printf(&b, "%ssslmode=require", query ? (query[1] ? "&" : "") : "?");
        if (res < 0) {
                buf_free(&b);
                return res;
        }
        *ret = b.data;
        return 0;
}

static int simple(struct wh_pg *w, struct pg_op *op, char *err, size_t errlen)
{
        int res = run_op(w, op);
        for (size_t i = 0; i < op->nres; i++)
                PQclear(op->res[i]);
        free(op->res);
        op->res = NULL;
        op->nres = 0;
        if (res < 0)
                util_setf(err, errlen, "%s", op->err);
        return res;
}

static int pg_exec(struct wh *base, const char *sql, char *err, size_t errlen)
{
        struct pg_op op = { .kind = OP_QUERY, .sql = sql };
        return simple(pg(base), &op, err, errlen);
}

static int pg_begin(struct wh *base, char *err, size_t errlen)
{
        struct pg_op op = { .kind = OP_QUERY, .sql = "BEGIN" };
        return simple(pg(base), &op, err, errlen);
}

static int pg_commit(struct wh *base, char *err, size_t errlen)
{
        struct pg_op op = { .kind = OP_QUERY, .sql = "COMMIT", .is_commit = true };
        return simple(pg(base), &op, err, errlen);
}

static void pg_rollback(struct wh *base)
{
        char err[64];
        struct pg_op op = {
                .kind = OP_QUERY, .sql = "ROLLBACK", .after_interrupt = true, .skip_if_idle = true
        };
        simple(pg(base), &op, err, sizeof(err));
}

/* A JSON value of one field, by the column's type. */
static json_t *field_json(const PGresult *r, int row, int col)
{
        if (PQgetisnull(r, row, col))
                return json_null();
        const char *v = PQgetvalue(r, row, col);
        int len = PQgetlength(r, row, col);
        long long ll;
        switch (PQftype(r, col)) {
        case 20: /* int8 */
        case 21: /* int2 */
        case 23: /* int4 */
        case 26: /* oid */
                if (util_parse_ll(v, &ll) == 0)
                        return json_integer(ll);
                break;
        case 16: /* bool: 1/0, as SQLite gives it */
                return json_integer(v[0] == 't');
        case 700:  /* float4 */
        case 701:  /* float8 */
        case 1700: /* numeric */ {
                if (PQftype(r, col) == 1700 && !strpbrk(v, ".eEN") && util_parse_ll(v, &ll) == 0)
                        return json_integer(ll);
                char *end = NULL;
                double d = strtod(v, &end);
                if (end && *end == '\0' && isfinite(d))
                        return json_real(d);
                break;
        }
        default:
                break;
        }
        return json_stringn(v, (size_t)len);
}

static int pg_query(struct wh *base, const char *sql, json_t **ret, char *err, size_t errlen)
{
        struct wh_pg *w = pg(base);
        struct pg_op op = { .kind = OP_QUERY, .sql = sql, .keep_results = true };
        int res = run_op(w, &op);
        json_t *rows = NULL;
        if (res == 0) {
                rows = json_array();
                /* the rows of the last statement that returned rows */
                const PGresult *r = NULL;
                for (size_t i = 0; i < op.nres; i++)
                        if (PQresultStatus(op.res[i]) == PGRES_TUPLES_OK)
                                r = op.res[i];
                int nr = r ? PQntuples(r) : 0, nc = r ? PQnfields(r) : 0;
                for (int i = 0; rows && i < nr; i++) {
                        json_t *row = json_array();
                        for (int c = 0; row && c < nc; c++)
                                json_array_append_new(row, field_json(r, i, c));
                        if (!row || json_array_append_new(rows, row) < 0) {
                                json_decref(rows);
                                rows = NULL;
                        }
                }
                if (!rows)
                        res = -ENOMEM;
        } else {
                util_setf(err, errlen, "%s", op.err);
        }
        for (size_t i = 0; i < op.nres; i++)
                PQclear(op.res[i]);
        free(op.res);
        if (res == 0)
                *ret = rows;
        return res;
}

/* The declared type in Redshift's spelling, which the COPY emulator's type
 * parser reads (convert_parse_type): "VARCHAR(256)", "DOUBLE PRECISION",
 * "TIMESTAMP"...  Unbounded text is VARCHAR(65535), Redshift's largest, so no
 * value the table holds is refused; a type with no Redshift spelling keeps
 * PostgreSQL's (format_type), and COPY refuses to load into it. */
static char *redshift_type(const char *typname, long long typmod, const char *formatted)
{
        struct buf b = { 0 };
        int r;
        if (strcmp(typname, "varchar") == 0)
                r = typmod >= 4 ? buf_printf(&b, "VARCHAR(%lld)", typmod - 4)
                                : buf_printf(&b, "VARCHAR(65535)");
        else if (strcmp(typname, "text") == 0)
                r = buf_printf(&b, "VARCHAR(65535)");
        else if (strcmp(typname, "bpchar") == 0)
                r = typmod >= 4 ? buf_printf(&b, "CHAR(%lld)", typmod - 4)
                                : buf_printf(&b, "VARCHAR(65535)");
        else if (strcmp(typname, "int2") == 0)
                r = buf_printf(&b, "SMALLINT");
        else if (strcmp(typname, "int4") == 0)
                r = buf_printf(&b, "INTEGER");
        else if (strcmp(typname, "int8") == 0)
                r = buf_printf(&b, "BIGINT");
        else if (strcmp(typname, "float4") == 0)
                r = buf_printf(&b, "REAL");
        else if (strcmp(typname, "float8") == 0)
                r = buf_printf(&b, "DOUBLE PRECISION");
        else if (strcmp(typname, "bool") == 0)
                r = buf_printf(&b, "BOOLEAN");
        else if (strcmp(typname, "date") == 0)
                r = buf_printf(&b, "DATE");
        else if (strcmp(typname, "timestamp") == 0)
                r = buf_printf(&b, "TIMESTAMP");
        else if (strcmp(typname, "timestamptz") == 0)
                r = buf_printf(&b, "TIMESTAMPTZ");
        else if (strcmp(typname, "numeric") == 0 && typmod >= 4)
                r = buf_printf(&b, "NUMERIC(%lld,%lld)", ((typmod - 4) >> 16) & 0xffff,
                               (typmod - 4) & 0xffff);
        else
                r = buf_printf(&b, "%s", formatted);
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return b.data;
}

static int pg_columns(struct wh *base, const char *table, struct wh_column **ret, size_t *ret_n,
                      char *err, size_t errlen)
{
        struct wh_pg *w = pg(base);
        /* Identity and generated columns are left out, as Redshift's COPY
         * leaves out IDENTITY columns: the server fills them.  to_regclass
         * resolves the name as an unquoted identifier would be. */
        static const char sql[] =
                "SELECT a.attname, t.typname, a.atttypmod, "
                "format_type(a.atttypid, a.atttypmod) "
                "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
                "AND a.attidentity NOT IN ('a', 'd') AND a.attgenerated <> 's' "
                "ORDER BY a.attnum";
        const char *params[1] = { table };
        struct pg_op op = {
                .kind = OP_QUERY, .sql = sql, .params = params, .nparams = 1, .keep_results = true
        };
        int res = run_op(w, &op);
        if (res < 0) {
                util_setf(err, errlen, "reading the columns of '%s': %s", table, op.err);
                for (size_t i = 0; i < op.nres; i++)
                        PQclear(op.res[i]);
                free(op.res);
                return res;
        }
        const PGresult *r = op.nres ? op.res[op.nres - 1] : NULL;
        int nr = r ? PQntuples(r) : 0;
        struct wh_column *cols = nr ? calloc((size_t)nr, sizeof(*cols)) : NULL;
        if (nr && !cols)
                res = -ENOMEM;
        for (int i = 0; res == 0 && i < nr; i++) {
                long long typmod = -1;
                util_parse_ll(PQgetvalue(r, i, 2), &typmod);
                cols[i].name = strdup(PQgetvalue(r, i, 0));
                cols[i].type = redshift_type(PQgetvalue(r, i, 1), typmod, PQgetvalue(r, i, 3));
                if (!cols[i].name || !cols[i].type)
                        res = -ENOMEM;
        }
        for (size_t i = 0; i < op.nres; i++)
                PQclear(op.res[i]);
        free(op.res);
        if (res < 0) {
                wh_columns_free(cols, (size_t)nr);
                return res;
        }
        if (nr == 0) {
                util_setf(err, errlen, "table '%s' does not exist", table);
                return -ENOENT;
        }
        *ret = cols;
        *ret_n = (size_t)nr;
        return 0;
}

/* ---- COPY FROM STDIN ------------------------------------------------------------- */

/* A double-quoted identifier; fold: lower-case ASCII first, as PostgreSQL
 * does with an unquoted name. */
static int quote_ident(struct buf *b, const char *name, bool fold)
{
        int r = buf_append(b, "\"", 1);
        for (const char *s = name; r == 0 && *s; s++) {
                char c = *s;
                if (fold && c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                r = buf_append(b, &c, 1);
                if (r == 0 && c == '"')
                        r = buf_append(b, "\"", 1);
        }
        return r ? r : buf_append(b, "\"", 1);
}

static int pg_inserter_new(struct wh *base, const char *table, const char *const *columns,
                           size_t n, struct wh_inserter **ret, char *err, size_t errlen)
{
        struct wh_pg *w = pg(base);
        if (n == 0 || !*table) {
                util_setf(err, errlen, "bad COPY target '%s'", table);
                return -EINVAL;
        }
        struct buf sql = { 0 };
        int r = buf_printf(&sql, "COPY ");
        if (r == 0)
                r = quote_ident(&sql, table, true);
        if (r == 0)
                r = buf_printf(&sql, " (");
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (i)
                        r = buf_printf(&sql, ", ");
                if (r == 0)
                        r = quote_ident(&sql, columns[i], false);
        }
        if (r == 0)
                r = buf_printf(&sql, ") FROM STDIN");
        struct wh_pg_inserter *ins = r == 0 ? calloc(1, sizeof(*ins)) : NULL;
        if (!ins) {
                buf_free(&sql);
                return -ENOMEM;
        }
        ins->base.drv = w->base.drv;
        ins->w = w;
        ins->n = n;
        struct pg_op op = { .kind = OP_COPY_START, .sql = sql.data };
        int res = run_op(w, &op);
        buf_free(&sql);
        if (res < 0) {
                util_setf(err, errlen, "COPY %s FROM STDIN: %s", table, op.err);
                free(ins);
                return res;
        }
        ins->copying = true;
        *ret = &ins->base;
        return 0;
}

/* Hands the current chunk to the loop; waits while too much is in flight. */
static int hand_off(struct wh_pg_inserter *ins, char *err, size_t errlen)
{
        struct wh_pg *w = ins->w;
        struct chunk *c = ins->cur;
        ins->cur = NULL;
        uv_mutex_lock(&w->mu);
        int res = w->copy_err ? w->copy_err : w->interrupted ? -ECANCELED : 0;
        if (res == 0 && c && c->len) {
                c->next = NULL;
                if (w->q_tail)
                        w->q_tail->next = c;
                else
                        w->q_head = c;
                w->q_tail = c;
                w->inflight += c->len;
                c = NULL;
        }
        uv_mutex_unlock(&w->mu);
        free(c);
        if (res == 0)
                kick(w);
        uv_mutex_lock(&w->mu);
        while (res == 0 && w->inflight > INFLIGHT_HIGH && !w->copy_err && !w->interrupted)
                uv_cond_wait(&w->cond, &w->mu);
        if (res == 0)
                res = w->copy_err ? w->copy_err : w->interrupted ? -ECANCELED : 0;
        if (res < 0)
                util_setf(err, errlen, "%s",
                         w->copy_err ? w->copy_msg : "COPY cancelled");
        uv_mutex_unlock(&w->mu);
        return res;
}

static char *put_int(char *p, int64_t v)
{
        char tmp[24];
        size_t n = 0;
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        do {
                tmp[n++] = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0)
                *p++ = '-';
        while (n)
                *p++ = tmp[--n];
        return p;
}

static const double pow10[] = { 1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };

/* A double as text that reads back as the same double (float8in, float4in).
 * Fast path: the fewest fraction digits k with rint(d * 10^k) / 10^k == d.
 * Both operands of that division are exact doubles (|r| < 2^53, k <= 15),
 * so IEEE division rounds the exact quotient r / 10^k to nearest, just as
 * strtod rounds the decimal we print: it reads back as d.  JSON's decimals
 * take this path ("427.02362", not "427.02361999999999"); the rest gets
 * %.17g, which always reads back. */
static char *put_real(char *p, double d)
{
        if (isnan(d)) {
                memcpy(p, "NaN", 3);
                return p + 3;
        }
        if (isinf(d)) {
                const char *s = d > 0 ? "Infinity" : "-Infinity";
                size_t n = strlen(s);
                memcpy(p, s, n);
                return p + n;
        }
        for (int k = 0; k < 16 && !(d == 0 && signbit(d)); k++) {
                double scaled = d * pow10[k];
                if (fabs(scaled) >= 9007199254740992.0)
                        break;
                double r = rint(scaled);
                if (r / pow10[k] != d)
                        continue;
                int64_t v = (int64_t)r;
                if (k == 0)
                        return put_int(p, v);
                char dig[24];
                size_t n = (size_t)(put_int(dig, v < 0 ? -v : v) - dig), kk = (size_t)k;
                if (v < 0)
                        *p++ = '-';
                if (n <= kk) {
                        *p++ = '0';
                        *p++ = '.';
                        memset(p, '0', kk - n);
                        p += kk - n;
                        memcpy(p, dig, n);
                        return p + n;
                }
                memcpy(p, dig, n - kk);
                p += n - kk;
                *p++ = '.';
                memcpy(p, dig + n - kk, kk);
                return p + kk;
        }
        int n = snprintf(p, 32, "%.17g", d);
        return p + (n > 0 && n < 32 ? n : 0);
}

/* COPY text format: backslash, newline, carriage return and tab escaped. */
static char *put_text(char *p, const char *s, size_t len)
{
        const char *end = s + len;
        while (s < end) {
                const char *run = s;
                while (s < end && *s != '\\' && *s != '\n' && *s != '\r' && *s != '\t')
                        s++;
                memcpy(p, run, (size_t)(s - run));
                p += s - run;
                if (s == end)
                        break;
                *p++ = '\\';
                *p++ = *s == '\\' ? '\\' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
                s++;
        }
        return p;
}

static int pg_inserter_row(struct wh_inserter *base, const struct cell *cells, char *err,
                           size_t errlen)
{
        struct wh_pg_inserter *ins = (struct wh_pg_inserter *)base;
        if (!ins->copying) {
                util_setf(err, errlen, "the COPY has ended");
                return -EINVAL;
        }
        size_t need = 1;
        for (size_t i = 0; i < ins->n; i++)
                need += 1 + (cells[i].kind == CELL_TEXT ? 2 * cells[i].len : 32);
        if (ins->cur && ins->cur->cap - ins->cur->len < need) {
                int r = hand_off(ins, err, errlen);
                if (r < 0)
                        return r;
        }
        if (!ins->cur) {
                size_t cap = need > CHUNK_BYTES ? need : CHUNK_BYTES;
                ins->cur = malloc(sizeof(struct chunk) + cap);
                if (!ins->cur)
                        return -ENOMEM;
                ins->cur->next = NULL;
                ins->cur->len = 0;
                ins->cur->cap = cap;
        }
        char *p = ins->cur->data + ins->cur->len;
        for (size_t i = 0; i < ins->n; i++) {
                if (i)
                        *p++ = '\t';
                switch (cells[i].kind) {
                case CELL_NULL:
                        *p++ = '\\';
                        *p++ = 'N';
                        break;
                case CELL_INT:
                        p = put_int(p, cells[i].i);
                        break;
                case CELL_REAL:
                        p = put_real(p, cells[i].r);
                        break;
                case CELL_TEXT:
                        p = put_text(p, cells[i].text, cells[i].len);
                        break;
                }
        }
        *p++ = '\n';
        ins->cur->len = (size_t)(p - ins->cur->data);
        if (ins->cur->len >= CHUNK_BYTES)
                return hand_off(ins, err, errlen);
        return 0;
}

static int pg_inserter_finish(struct wh_inserter *base, char *err, size_t errlen)
{
        struct wh_pg_inserter *ins = (struct wh_pg_inserter *)base;
        if (!ins->copying)
                return 0;
        int res = hand_off(ins, err, errlen);
        if (res < 0)
                return res; /* freeing the inserter ends the COPY */
        ins->copying = false;
        struct pg_op op = { .kind = OP_COPY_END };
        res = run_op(ins->w, &op);
        if (res < 0)
                util_setf(err, errlen, "%s", op.err);
        return res;
}

static void pg_inserter_free(struct wh_inserter *base)
{
        struct wh_pg_inserter *ins = (struct wh_pg_inserter *)base;
        free(ins->cur);
        if (ins->copying) {
                struct pg_op op = { .kind = OP_COPY_ABORT };
                run_op(ins->w, &op);
        }
        free(ins);
}

static void pg_interrupt(struct wh *base)
{
        struct wh_pg *w = pg(base);
        uv_mutex_lock(&w->mu);
        w->interrupt_req = true;
        w->interrupted = true;
        uv_cond_broadcast(&w->cond); /* a worker waiting for room */
        uv_mutex_unlock(&w->mu);
        kick(w); /* also from the loop thread: handled on its next turn */
}

/* Whether the first word of sql, after blanks and comments, is word. */
static bool first_word_is(const char *sql, const char *word)
{
        const char *p = sql;
        for (;;) {
                p += strspn(p, " \t\r\n\f\v");
                if (p[0] == '-' && p[1] == '-') {
                        p += strcspn(p, "\n");
                } else if (p[0] == '/' && p[1] == '*') {
                        const char *end = strstr(p + 2, "*/");
                        if (!end)
                                return false;
                        p = end + 2;
                } else {
                        break;
                }
        }
        size_t n = strlen(word);
        return strncasecmp(p, word, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

/* Redshift: a COPY is preceded by reading the session's process id and
 * the transaction's start time, for rs_load_errors (see the header
 * comment).  Other statements go as they are. */
static int rs_exec(struct wh *base, const char *sql, char *err, size_t errlen)
{
        struct wh_pg *w = pg(base);
        if (first_word_is(sql, "COPY")) {
                json_t *rows = NULL;
                int res = pg_query(base, "SELECT pg_backend_pid(), SYSDATE", &rows, err, errlen);
                if (res < 0)
                        return res;
                json_t *pid = json_array_get(json_array_get(rows, 0), 0);
                json_t *since = json_array_get(json_array_get(rows, 0), 1);
                w->copy_pid = 0;
                /* a timestamp's text: digits, '-', ':', '.', ' ' and nothing else */
                if (json_is_integer(pid) && json_is_string(since) &&
                    json_string_length(since) < sizeof(w->copy_since) &&
                    strspn(json_string_value(since), "0123456789-:. ") ==
                            json_string_length(since)) {
                        w->copy_pid = (long long)json_integer_value(pid);
                        util_setf(w->copy_since, sizeof(w->copy_since), "%s",
                                  json_string_value(since));
                }
                json_decref(rows);
        }
        return pg_exec(base, sql, err, errlen);
}

static int rs_load_errors(struct wh *base, json_t **ret, char *err, size_t errlen)
{
        struct wh_pg *w = pg(base);
        if (w->copy_pid <= 0) {
                util_setf(err, errlen, "no COPY of this session to look up");
                return -ENOENT;
        }
        char sql[1024];
        util_setf(sql, sizeof(sql),
                  "SELECT filename, line_number, colname, type, position, raw_line, "
                  "raw_field_value, err_code, err_reason FROM stl_load_errors "
                  "WHERE query IN (SELECT query FROM stl_query WHERE pid = %lld "
                  "AND starttime >= '%s') ORDER BY query, line_number, colname LIMIT 1000",
                  w->copy_pid, w->copy_since);
        return pg_query(base, sql, ret, err, errlen);
}

/* What the PostgreSQL and Redshift drivers share: all but open and dialect. */
#define LIBPQ_OPS                                                                                  \
        .close = pg_close, .begin = pg_begin, .commit = pg_commit,                                 \
        .rollback = pg_rollback, .columns = pg_columns, .inserter_new = pg_inserter_new,           \
        .inserter_row = pg_inserter_row, .inserter_finish = pg_inserter_finish,                    \
        .inserter_free = pg_inserter_free, .query = pg_query, .interrupt = pg_interrupt

const struct wh_driver wh_pg_driver = {
        .dialect = "postgres",
        .open = pg_open,
        .exec = pg_exec,
        LIBPQ_OPS,
};

/* The same driver with Redshift's SQL folder.  Redshift's COPY reads S3
 * itself, so the load step sends the COPY statements as they are and never
 * uses columns() or the inserter. */
const struct wh_driver wh_redshift_driver = {
        .dialect = "redshift",
        .open = rs_open,
        .exec = rs_exec,
        .load_errors = rs_load_errors,
        LIBPQ_OPS,
};
