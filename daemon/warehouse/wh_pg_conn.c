/* wh_pg_conn.c - the libpq connection state machine, on the loop thread.
 *
 * One connection, one request at a time (see wh_pg_conn.h).  drive() is
 * the only place that moves the state: it is called from the uv_poll_t on
 * PQsocket() (re-created when the socket changes while connecting), from
 * the uv_timer_t (connect deadline, cancel grace), when a host name is
 * resolved, and when the driver gives a request; it does what libpq allows
 * without waiting (PQconnectPoll, PQsendQuery(Params), PQflush,
 * PQconsumeInput/PQisBusy/PQgetResult, PQputCopyData/PQputCopyEnd), then
 * watches the socket for exactly the events the new state needs.  A
 * request's completion may start the next request from inside drive(); a
 * nested drive() only leaves it to the outer one.
 *
 * COPY data waits in a queue of malloc'ed pieces and goes to PQputCopyData
 * at most PG_CHUNK_BYTES at a time, only once PQflush emptied libpq's own
 * buffer, so libpq never holds more than about one piece.  The driver
 * bounds the queue (PG_QUEUED_HIGH/LOW).
 *
 * Cancel: a running statement gets PQcancel, which is blocking I/O and so
 * runs on the pool with a PGcancel taken here; the connection is driven on
 * until the server answers the statement with its error (then -ECANCELED),
 * or for 15 s at most (none under wh_close), after which the connection is
 * closed.  A COPY in
 * progress is ended at once with PQputCopyEnd(errormsg); a connect in
 * progress is abandoned. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "warehouse/wh_pg_conn.h"

#define CANCEL_GRACE_MS 15000 /* after PQcancel, before closing the connection */
#define CANCEL_RETRY_MS 1000  /* PQcancel again while the statement runs on */

static const char *const state_names[] = {
    [PG_NEW] = "new",
    [PG_RESOLVING] = "resolving",
    [PG_CONNECTING] = "connecting",
    [PG_IDLE] = "idle",
    [PG_BUSY] = "busy",
    [PG_COPY_IN] = "copy-in",
    [PG_COPY_ENDING] = "copy-ending",
    [PG_BAD] = "bad",
    [PG_CLOSING] = "closing",
};

static void drive(struct wh_pg *w);
static void update_poll(struct wh_pg *w);
static void conn_lost(struct wh_pg *w, int err, const char *what);
static void connect_poll(struct wh_pg *w);
static void on_timer(uv_timer_t *t);
static void connect_failed(struct wh_pg *w, int err, const char *why);

/* ---- messages --------------------------------------------------------------- */

void wh_pg_clean_msg(const struct wh_pg *w, const char *s, char *out, size_t outlen)
{
        if (!outlen)
                return;
        const char *secrets[2] = {w ? w->password : NULL, w ? w->uri_password : NULL};
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
        wh_pg_clean_msg(w, w->conn ? PQerrorMessage(w->conn) : "no connection", out, outlen);
        if (!out[0])
                util_setf(out, outlen, "unknown error");
}

/* -errno for a failed statement, from its SQLSTATE. */
static int sqlstate_err(const struct wh_pg *w, const char *st)
{
        if (!st || strlen(st) != 5)
                return -EIO;
        if (strcmp(st, "57014") == 0) /* query_canceled: ours, or statement_timeout */
                return w->cancelled ? -ECANCELED : -ETIME; /* not transient: it would again */
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

/* ---- requests ------------------------------------------------------------------ */

void wh_pg_conn_clear_results(struct wh_pg *w)
{
        for (size_t i = 0; i < w->nres; i++)
                PQclear(w->res[i]);
        free(w->res);
        w->res = NULL;
        w->nres = w->capres = 0;
}

/* The request is over: its completion is called (it may give the next). */
static void finish(struct wh_pg *w, int err, const char *msg)
{
        pg_done_fn done = w->done;
        w->gen++;
        w->req = PG_REQ_NONE;
        w->done = NULL;
        w->req_started = false;
        w->err = err;
        if (err >= 0)
                w->msg[0] = '\0';
        else if (msg != w->msg)
                util_setf(w->msg, sizeof(w->msg), "%s", msg ? msg : "failed");
        if (done)
                done(w);
}

static void set_req(struct wh_pg *w, enum pg_req_kind kind, const char *sql, int nparams,
                    const char *const *params, unsigned flags, pg_done_fn done)
{
        wh_pg_conn_clear_results(w);
        w->gen++;
        w->cmd_status[0] = '\0';
        w->req = kind;
        w->req_sql = sql;
        w->req_nparams = nparams;
        w->req_params = params;
        w->req_flags = flags;
        w->req_started = false;
        w->done = done;
        w->err = 0;
        w->msg[0] = '\0';
        drive(w);
}

void wh_pg_conn_query(struct wh_pg *w, const char *sql, int nparams, const char *const *params,
                      unsigned flags, pg_done_fn done)
{
        set_req(w, PG_REQ_QUERY, sql, nparams, params, flags, done);
}

void wh_pg_conn_copy_start(struct wh_pg *w, const char *sql, pg_done_fn done)
{
        set_req(w, PG_REQ_COPY_START, sql, 0, NULL, 0, done);
}

void wh_pg_conn_copy_room(struct wh_pg *w, pg_done_fn done)
{
        set_req(w, PG_REQ_COPY_ROOM, NULL, 0, NULL, 0, done);
}

void wh_pg_conn_copy_end(struct wh_pg *w, pg_done_fn done)
{
        set_req(w, PG_REQ_COPY_END, NULL, 0, NULL, 0, done);
}

/* ---- COPY data queue --------------------------------------------------------- */

/* Drops queued COPY data; err < 0: the COPY failed so (the first reason
 * is kept). */
static void drop_chunks(struct wh_pg *w, int err, const char *msg)
{
        struct pg_chunk *c = w->q_head;
        w->q_head = w->q_tail = NULL;
        w->queued = 0;
        if (err < 0 && w->copy_err == 0) {
                w->copy_err = err;
                util_setf(w->copy_msg, sizeof(w->copy_msg), "%s", msg ? msg : "COPY failed");
        }
        while (c) {
                struct pg_chunk *n = c->next;
                free(c->data);
                free(c);
                c = n;
        }
}

int wh_pg_conn_copy_put(struct wh_pg *w, char *data, size_t len)
{
        int err = w->copy_err;
        const char *why = w->copy_msg;
        if (!err && w->state == PG_BAD) {
                err = w->bad_err ? w->bad_err : -EAGAIN;
                why = w->bad_msg;
        } else if (!err && w->state != PG_COPY_IN) {
                err = -EINVAL;
                why = "no COPY is in progress on this connection";
        }
        struct pg_chunk *c = err ? NULL : calloc(1, sizeof(*c));
        if (!c) {
                free(data);
                if (!err) {
                        err = -ENOMEM;
                        why = "out of memory";
                }
                util_setf(w->msg, sizeof(w->msg), "%s", why);
                return err;
        }
        c->data = data;
        c->len = len;
        if (w->q_tail)
                w->q_tail->next = c;
        else
                w->q_head = c;
        w->q_tail = c;
        w->queued += len;
        drive(w);
        return 0;
}

/* ---- handles --------------------------------------------------------------------- */

static void maybe_closed(struct wh_pg *w)
{
        if (w->state != PG_CLOSING || w->handles_open || w->cancels_out || w->resolving)
                return;
        pg_done_fn closed = w->closed;
        w->closed = NULL;
        if (closed)
                closed(w); /* w may be gone now */
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
        (void)events;
        struct wh_pg *w = h->data;
        if (h != w->poll)
                return;
        if (status < 0)
                w->poll_events = 0;    /* libuv stopped it; libpq will see the error */
        if (w->state == PG_CONNECTING) /* only when the socket is ready, as libpq asks */
                connect_poll(w);
        drive(w);
}

static void poll_failed(struct wh_pg *w, int rc)
{
        char m[128];
        util_setf(m, sizeof(m), "cannot watch the connection's socket: %s", uv_strerror(rc));
        conn_lost(w, -EAGAIN, m);
}

/* Watches PQsocket for exactly the events the state wants. */
static void update_poll(struct wh_pg *w)
{
        int want = 0;
        switch (w->state) {
        case PG_CONNECTING:
                want = w->connect_want;
                break;
        case PG_IDLE:
                want = UV_READABLE; /* notices, and noticing a dropped connection */
                break;
        case PG_BUSY:
                want = UV_READABLE | (w->want_write ? UV_WRITABLE : 0);
                break;
        case PG_COPY_IN:
                /* writable only while there is something to send */
                want = UV_READABLE | (w->want_write || w->q_head ? UV_WRITABLE : 0);
                break;
        case PG_COPY_ENDING:
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
                int rc = uv_poll_init(w->base.loop, p, fd);
                if (rc < 0) {
                        free(p);
                        poll_failed(w, rc);
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
                        poll_failed(w, rc);
                        return;
                }
                w->poll_events = want;
        }
}

static void arm_timer(struct wh_pg *w, uint64_t ms)
{
        if (!w->timer) {
                w->timer = calloc(1, sizeof(*w->timer));
                if (!w->timer)
                        return; /* no deadline then; not worth failing for */
                uv_timer_init(w->base.loop, w->timer);
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

/* ---- the connection is gone ----------------------------------------------------- */

static void conn_lost(struct wh_pg *w, int err, const char *what)
{
        if (w->state == PG_BAD || w->state == PG_CLOSING)
                return;
        char m[WH_MSG_MAX];
        if (what)
                util_setf(m, sizeof(m), "%s", what);
        else
                conn_msg(w, m, sizeof(m));
        util_setf(w->bad_msg, sizeof(w->bad_msg), "connection to PostgreSQL %s lost: %s", w->label,
                  m);
        w->bad_err = w->cancelled ? -ECANCELED : err;
        log_debug(w->base.drv->dialect, "%s: %s (was %s)", w->label, w->bad_msg,
                  state_names[w->state]);
        w->state = PG_BAD;
        stop_timer(w);
        close_poll(w); /* before the socket is closed by libpq (or was) */
        if (w->conn) {
                PQfinish(w->conn);
                w->conn = NULL;
        }
        drop_chunks(w, w->bad_err, w->bad_msg);
        if (w->req != PG_REQ_NONE)
                finish(w, w->bad_err, w->bad_msg);
}

/* ---- PQcancel on the pool ----------------------------------------------------- */

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
                wh_pg_clean_msg(w, cw->err, m, sizeof(m));
                log_debug(w->base.drv->dialect, "%s: PQcancel failed: %s", w->label, m);
        }
        free(cw);
        w->cancels_out--;
        maybe_closed(w);
}

/* Queues a PQcancel on the pool, unless one is out already. */
static void queue_cancel(struct wh_pg *w)
{
        if (!w->conn || w->cancels_out)
                return;
        PGcancel *c = PQgetCancel(w->conn);
        struct cancel_work *cw = c ? calloc(1, sizeof(*cw)) : NULL;
        if (!cw) {
                PQfreeCancel(c);
                return; /* the deadline closes the connection then */
        }
        cw->w = w;
        cw->cancel = c;
        cw->req.data = cw;
        if (uv_queue_work(w->base.loop, &cw->req, cancel_run, cancel_after) < 0) {
                PQfreeCancel(c);
                free(cw);
                return;
        }
        w->cancels_out++;
        log_debug(w->base.drv->dialect, "%s: cancel requested", w->label);
}

/* PQcancel for the statement running now, sent again every second (one
 * that reached the server before the statement started did nothing; a late
 * one can only hit a statement of this connection, whose later operations
 * all fail after a cancel anyway), until the server answers or
 * CANCEL_GRACE_MS passed; then the connection is closed.  Under wh_close
 * there is no wait: dropping the connection rolls back, and the cancel
 * still stops the statement. */
static void send_cancel(struct wh_pg *w)
{
        if (!w->conn)
                return;
        if (!w->cancel_sent) {
                w->cancel_sent = true;
                w->cancel_deadline = uv_now(w->base.loop) + CANCEL_GRACE_MS;
                queue_cancel(w);
        }
        arm_timer(w, w->base.closing ? 0 : CANCEL_RETRY_MS);
}

static void on_timer(uv_timer_t *t)
{
        struct wh_pg *w = t->data;
        if (w->state == PG_CONNECTING) {
                char m[128];
                util_setf(m, sizeof(m), "no answer within %" PRIu64 " s (connect_timeout)",
                          w->connect_timeout_ms / 1000);
                connect_failed(w, -EAGAIN, m);
        } else if (w->cancel_sent && (w->state == PG_BUSY || w->state == PG_COPY_ENDING) &&
                   !w->base.closing && uv_now(w->base.loop) < w->cancel_deadline) {
                queue_cancel(w);
                arm_timer(w, CANCEL_RETRY_MS);
        } else if (w->cancel_sent && (w->state == PG_BUSY || w->state == PG_COPY_ENDING)) {
                char m[128];
                if (w->base.closing)
                        util_setf(m, sizeof(m), "closed by etld while a statement ran");
                else
                        util_setf(m, sizeof(m),
                                  "no answer to the cancel request within %d s; closed",
                                  CANCEL_GRACE_MS / 1000);
                conn_lost(w, -ECANCELED, m);
        }
        drive(w);
}

/* ---- connecting ------------------------------------------------------------------- */

static void connect_failed(struct wh_pg *w, int err, const char *why)
{
        char m[WH_MSG_MAX], full[WH_MSG_MAX];
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
                else if (strstr(m, "could not translate host name") || strstr(m, "invalid") ||
                         strstr(m, "no password supplied") || strstr(m, "SSL") ||
                         strstr(m, "certificate"))
                        err = -EINVAL;
                else
                        err = -EAGAIN; /* refused, unreachable, timed out, reset */
        }
        if (w->cancelled)
                err = -ECANCELED;
        stop_timer(w);
        close_poll(w);
        if (w->conn) {
                PQfinish(w->conn);
                w->conn = NULL;
        }
        w->state = PG_BAD;
        w->bad_err = err;
        util_setf(w->bad_msg, sizeof(w->bad_msg), "%s", full);
        finish(w, err, full);
}

static void notice_processor(void *arg, const char *message)
{
        struct wh_pg *w = arg;
        char m[512];
        wh_pg_clean_msg(w, message, m, sizeof(m));
        log_debug(w->base.drv->dialect, "%s: %s", w->label, m);
}

static void set_label(struct wh_pg *w)
{
        const char *host = w->host_opt && *w->host_opt ? w->host_opt : PQhost(w->conn);
        const char *port = PQport(w->conn);
        const char *user = PQuser(w->conn);
        util_setf(w->label, sizeof(w->label), "%s@%s%s%s/%s", user ? user : "",
                  host && *host ? host : "localhost", port && *port ? ":" : "", port ? port : "",
                  PQdb(w->conn) ? PQdb(w->conn) : "");
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
        w->state = PG_CONNECTING;
        w->connect_want = UV_WRITABLE; /* "as if PQconnectPoll returned WRITING" */
        if (w->connect_timeout_ms)
                arm_timer(w, w->connect_timeout_ms);
        log_debug(w->base.drv->dialect, "%s: connecting", w->label);
}

struct resolve {
        uv_getaddrinfo_t req;
        struct wh_pg *w;
};

/* The addresses as libpq's host and hostaddr lists (at most 16). */
static int address_lists(const char *host, struct addrinfo *res, struct buf *hosts,
                         struct buf *addrs)
{
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
                if (!ip[0] || (addrs->len && strstr(addrs->data, ip)))
                        continue;
                rc = buf_printf(hosts, "%s%s", n ? "," : "", host);
                if (rc == 0)
                        rc = buf_printf(addrs, "%s%s", n ? "," : "", ip);
                n++;
        }
        return rc < 0 ? rc : n == 0 ? -EHOSTUNREACH : 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
        struct resolve *r = req->data;
        struct wh_pg *w = r->w;
        free(r);
        w->resolving = false;
        if (w->state != PG_RESOLVING) { /* closing */
                uv_freeaddrinfo(res);
                maybe_closed(w);
                return;
        }
        if (w->cancelled) {
                uv_freeaddrinfo(res);
                w->state = PG_BAD;
                w->bad_err = -ECANCELED;
                util_setf(w->bad_msg, sizeof(w->bad_msg), "cancelled while connecting to %s",
                          w->label);
                finish(w, -ECANCELED, w->bad_msg);
                return;
        }
        if (status < 0) {
                char m[WH_MSG_MAX];
                util_setf(m, sizeof(m), "cannot resolve host name \"%s\": %s", w->resolve_host,
                          uv_strerror(status));
                uv_freeaddrinfo(res);
                connect_failed(w, status == UV_EAI_AGAIN ? -EAGAIN : -EHOSTUNREACH, m);
                return;
        }
        struct buf hosts = {0}, addrs = {0};
        int rc = address_lists(w->resolve_host, res, &hosts, &addrs);
        uv_freeaddrinfo(res);
        if (rc == 0)
                connect_start(w, hosts.data, addrs.data);
        buf_free(&hosts);
        buf_free(&addrs);
        if (rc < 0)
                connect_failed(w, rc,
                               rc == -ENOMEM ? "out of memory" : "the host name has no address");
        drive(w);
}

static void begin_connect(struct wh_pg *w)
{
        if (!w->resolve_host) {
                connect_start(w, NULL, NULL);
                return;
        }
        struct resolve *r = calloc(1, sizeof(*r));
        if (!r) {
                connect_failed(w, -ENOMEM, "out of memory");
                return;
        }
        r->w = w;
        r->req.data = r;
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
        int rc = uv_getaddrinfo(w->base.loop, &r->req, on_resolved, w->resolve_host, NULL, &hints);
        if (rc < 0) {
                free(r);
                char m[256];
                util_setf(m, sizeof(m), "cannot resolve \"%s\": %s", w->resolve_host,
                          uv_strerror(rc));
                connect_failed(w, -EAGAIN, m);
                return;
        }
        w->resolving = true;
        w->state = PG_RESOLVING;
}

/* Sends a query (simple protocol, or with parameters); PG_BUSY. */
static void send_query(struct wh_pg *w, const char *sql, int nparams, const char *const *params,
                       enum pg_busy_for busy)
{
        int ok = nparams ? PQsendQueryParams(w->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                         : PQsendQuery(w->conn, sql);
        if (!ok) {
                if (PQstatus(w->conn) == CONNECTION_BAD) {
                        conn_lost(w, -EAGAIN, NULL);
                        return;
                }
                char m[WH_MSG_MAX];
                conn_msg(w, m, sizeof(m));
                finish(w, -EIO, m);
                return;
        }
        w->state = PG_BUSY;
        w->busy = busy;
        w->err = 0;
        w->msg[0] = '\0';
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
        switch (PQconnectPoll(w->conn)) {
        case PGRES_POLLING_OK:
                stop_timer(w);
                log_debug(w->base.drv->dialect, "%s: connected (server %d, backend pid %d)",
                          w->label, PQserverVersion(w->conn), PQbackendPID(w->conn));
                send_query(w, w->setup_sql, 0, NULL, PG_BUSY_SETUP);
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

/* ---- results ----------------------------------------------------------------------- */

static void keep_result(struct wh_pg *w, PGresult *r)
{
        if (w->busy != PG_BUSY_QUERY || !(w->req_flags & PG_KEEP)) {
                PQclear(r);
                return;
        }
        if (w->nres == w->capres) {
                size_t cap = w->capres ? w->capres * 2 : 4;
                PGresult **n = realloc(w->res, cap * sizeof(*n));
                if (!n) {
                        PQclear(r);
                        if (!w->err) {
                                w->err = -ENOMEM;
                                util_setf(w->msg, sizeof(w->msg), "out of memory");
                        }
                        return;
                }
                w->res = n;
                w->capres = cap;
        }
        w->res[w->nres++] = r;
}

/* The first error among the results is the one reported. */
static void result_error(struct wh_pg *w, const PGresult *r)
{
        if (w->err)
                return;
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        w->err = sqlstate_err(w, st);
        char m[WH_MSG_MAX];
        const char *text = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        wh_pg_clean_msg(w, text ? text : PQresultErrorMessage(r), m, sizeof(m));
        const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        char d[512] = "";
        if (detail)
                wh_pg_clean_msg(w, detail, d, sizeof(d));
        if (w->err == -ECANCELED)
                util_setf(w->msg, sizeof(w->msg), "cancelled (%s)", m);
        else
                util_setf(w->msg, sizeof(w->msg), "%s%s%s%s%s%s%s", m, d[0] ? " (" : "", d,
                          d[0] ? ")" : "", st ? " [SQLSTATE " : "", st ? st : "", st ? "]" : "");
}

/* The results of PG_BUSY are all in. */
static void busy_done(struct wh_pg *w)
{
        w->state = PG_IDLE;
        stop_timer(w);
        char m[WH_MSG_MAX];
        switch (w->busy) {
        case PG_BUSY_SETUP:
                if (w->err) {
                        /* a failed setup fails the connection */
                        util_setf(m, sizeof(m), "setting up the session on %s: %s", w->label,
                                  w->msg);
                        int err = w->err;
                        w->err = 0;
                        w->state = PG_BAD;
                        w->bad_err = err;
                        util_setf(w->bad_msg, sizeof(w->bad_msg), "%s", m);
                        close_poll(w);
                        PQfinish(w->conn);
                        w->conn = NULL;
                        finish(w, err, m);
                }
                return;          /* the request waiting for the connection starts now */
        case PG_BUSY_COPY_START: /* an error before COPY_IN */
        case PG_BUSY_QUERY:
                if ((w->req_flags & PG_COMMIT) && !w->err &&
                    strcmp(w->cmd_status, "ROLLBACK") == 0) {
                        w->err = -EIO;
                        util_setf(w->msg, sizeof(w->msg),
                                  "COMMIT rolled back the transaction (a statement in it failed)");
                }
                finish(w, w->err, w->msg);
                return;
        case PG_BUSY_COPY_END:
                /* The COPY's own result, for the COPY_END request (now or later). */
                if (w->err && !w->copy_err) {
                        w->copy_err = w->err;
                        util_setf(w->copy_msg, sizeof(w->copy_msg), "%s", w->msg);
                }
                if (w->req == PG_REQ_COPY_END && w->req_started)
                        finish(w, w->copy_err, w->copy_msg);
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
                if (st == PGRES_COPY_IN && w->busy == PG_BUSY_COPY_START && !w->err) {
                        PQclear(r);
                        w->state = PG_COPY_IN;
                        w->want_write = false;
                        w->copy_err = 0;
                        w->copy_msg[0] = '\0';
                        finish(w, 0, NULL);
                        return;
                }
                if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
                        /* a COPY we did not ask for (in a script): refuse it */
                        PQclear(r);
                        if (!w->err) {
                                w->err = -EINVAL;
                                util_setf(w->msg, sizeof(w->msg),
                                          "COPY FROM STDIN / TO STDOUT is not allowed here");
                        }
                        if (st != PGRES_COPY_IN) {
                                conn_lost(w, -EINVAL, w->msg);
                                return;
                        }
                        w->busy = PG_BUSY_QUERY;
                        if (PQputCopyEnd(w->conn, "not allowed") < 0) {
                                conn_lost(w, -EAGAIN, NULL);
                                return;
                        }
                        continue;
                }
                if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
                    st == PGRES_BAD_RESPONSE)
                        result_error(w, r);
                if (st == PGRES_COMMAND_OK)
                        util_setf(w->cmd_status, sizeof(w->cmd_status), "%s", PQcmdStatus(r));
                if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                        keep_result(w, r);
                else
                        PQclear(r);
                if (PQstatus(w->conn) == CONNECTION_BAD) {
                        /* e.g. FATAL terminating connection due to administrator command */
                        conn_lost(w, -EAGAIN, w->msg[0] ? w->msg : NULL);
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
                w->want_write = f == 1;
                if (f == 1)
                        return; /* libpq holds data: no more until it is out */
                struct pg_chunk *c = w->q_head;
                if (!c)
                        break;
                size_t n = c->len - c->off;
                if (n > PG_CHUNK_BYTES)
                        n = PG_CHUNK_BYTES;
                int r = PQputCopyData(w->conn, c->data + c->off, (int)n);
                if (r < 0) {
                        conn_lost(w, -EAGAIN, NULL);
                        return;
                }
                if (r == 0) { /* libpq's buffer is full: wait for writable */
                        w->want_write = true;
                        return;
                }
                c->off += n;
                w->queued -= n;
                if (c->off == c->len) {
                        w->q_head = c->next;
                        if (!w->q_head)
                                w->q_tail = NULL;
                        free(c->data);
                        free(c);
                }
                if (w->req == PG_REQ_COPY_ROOM && w->req_started && w->queued <= PG_QUEUED_LOW) {
                        finish(w, 0, NULL);
                        return; /* drive() comes back for the rest */
                }
        }
        if (w->req == PG_REQ_COPY_END && w->req_started) {
                w->copy_end_msg = NULL;
                w->state = PG_COPY_ENDING;
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
        w->state = PG_BUSY;
        w->busy = PG_BUSY_COPY_END;
        w->err = 0;
        w->msg[0] = '\0';
        w->want_write = true;
}

void wh_pg_conn_cancel(struct wh_pg *w)
{
        w->cancelled = true;
        switch (w->state) {
        case PG_CONNECTING:
                connect_failed(w, -ECANCELED, "cancelled while connecting");
                break;
        case PG_BUSY:
                /* not after our own CopyFail: that COPY is ending already, and
                 * a late cancel could hit the next statement */
                if (!(w->busy == PG_BUSY_COPY_END && w->copy_end_msg))
                        send_cancel(w);
                break;
        case PG_COPY_IN:
                drop_chunks(w, -ECANCELED, "COPY cancelled");
                w->copy_end_msg = "COPY cancelled by etld";
                w->state = PG_COPY_ENDING;
                if (w->req == PG_REQ_COPY_ROOM)
                        finish(w, -ECANCELED, "COPY cancelled");
                break;
        default:
                break; /* idle, resolving (checked when it returns), bad, closing */
        }
        drive(w);
}

/* Starts the request when the state allows, or answers it at once. */
static void start_req(struct wh_pg *w)
{
        switch (w->state) {
        case PG_NEW:
                begin_connect(w); /* the request starts once connected */
                return;
        case PG_BAD:
                if (w->req == PG_REQ_QUERY && (w->req_flags & PG_ROLLBACK))
                        finish(w, 0, NULL); /* the server rolled back already */
                else
                        finish(w, w->bad_err ? w->bad_err : -EAGAIN, w->bad_msg);
                return;
        case PG_IDLE:
                if (w->req == PG_REQ_COPY_ROOM || w->req == PG_REQ_COPY_END) {
                        /* the COPY ended already (cancelled or failed) */
                        finish(w, w->copy_err ? w->copy_err : -EINVAL,
                               w->copy_err ? w->copy_msg : "no COPY is in progress");
                        return;
                }
                if ((w->req_flags & PG_ROLLBACK) && PQtransactionStatus(w->conn) == PQTRANS_IDLE) {
                        finish(w, 0, NULL);
                        return;
                }
                if ((w->req_flags & PG_COMMIT) && PQtransactionStatus(w->conn) == PQTRANS_INERROR) {
                        finish(w, -EIO,
                               "COMMIT of a failed transaction (a statement in it failed)");
                        return;
                }
                w->req_started = true;
                send_query(w, w->req_sql, w->req_nparams, w->req_params,
                           w->req == PG_REQ_COPY_START ? PG_BUSY_COPY_START : PG_BUSY_QUERY);
                return;
        case PG_COPY_IN:
        case PG_COPY_ENDING:
                if (w->req == PG_REQ_QUERY && (w->req_flags & PG_ROLLBACK)) {
                        /* abandon the COPY; the ROLLBACK goes once it ended */
                        if (w->state == PG_COPY_IN) {
                                drop_chunks(w, -ECANCELED, "COPY abandoned by a rollback");
                                w->copy_end_msg = "COPY abandoned by etld";
                                w->state = PG_COPY_ENDING;
                        }
                } else if (w->req == PG_REQ_COPY_END) {
                        w->req_started = true; /* copy_io ends the COPY once the data is out */
                } else if (w->req == PG_REQ_COPY_ROOM && w->state == PG_COPY_IN) {
                        if (w->queued <= PG_QUEUED_LOW)
                                finish(w, 0, NULL);
                        else
                                w->req_started = true;
                } else {
                        finish(w, w->copy_err ? w->copy_err : -EINVAL,
                               w->copy_err ? w->copy_msg
                                           : "a COPY is in progress on this connection");
                }
                return;
        default:
                return; /* busy or connecting: started when idle */
        }
}

/* The one entry point of the state machine: looks at what changed and
 * moves it as far as it goes without waiting. */
static void drive(struct wh_pg *w)
{
        if (w->state == PG_CLOSING || w->driving)
                return;
        w->driving = true;
        for (int guard = 0; guard < 64; guard++) {
                enum pg_state before = w->state;
                unsigned gen = w->gen;
                bool started = w->req_started;
                switch (w->state) {
                case PG_IDLE:
                        if (guard == 0) /* woken while idle: see what came */
                                idle_io(w);
                        break;
                case PG_BUSY:
                        busy_io(w);
                        break;
                case PG_COPY_IN:
                        copy_io(w);
                        break;
                case PG_COPY_ENDING:
                        copy_end(w);
                        break;
                default:
                        break;
                }
                if (w->req != PG_REQ_NONE && !w->req_started && w->state != PG_RESOLVING &&
                    w->state != PG_CONNECTING && w->state != PG_BUSY)
                        start_req(w);
                if (w->state == before && w->gen == gen && w->req_started == started)
                        break;
        }
        w->driving = false;
        update_poll(w);
}

void wh_pg_conn_init(struct wh_pg *w)
{
        w->poll_fd = -1;
        w->state = PG_NEW;
}

void wh_pg_conn_close(struct wh_pg *w, pg_done_fn closed)
{
        log_debug(w->base.drv->dialect, "%s: closing (was %s)", w->label, state_names[w->state]);
        w->state = PG_CLOSING;
        w->closed = closed;
        w->req = PG_REQ_NONE;
        w->done = NULL;
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
        wh_pg_conn_clear_results(w);
        maybe_closed(w);
}
