/* server.c - the Unix socket server.  See server.h.
 *
 * Each connection has a bounded line buffer (proto.h), a bounded output
 * queue and the watches it started.  Limits: CONN_MAX connections at once,
 * max_connections_per_uid of one uid, OUTPUT_MAX bytes queued to one peer,
 * an idle timeout, and REQUESTS_PER_TURN requests of one connection per
 * loop turn: a connection with more complete lines waiting stops reading
 * and joins the backlog, which an idle handle serves a few lines at a time,
 * between the loop's polls, so other clients' requests are read and
 * answered in between.  Peer credentials are read once at accept
 * (SO_PEERCRED, SO_PEERGROUPS) and recorded with submits and cancels. */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "authz.h"
#include "engine.h"
#include "log.h"
#include "proto.h"
#include "rpc.h"
#include "util.h"

#define CONN_MAX 1024
#define OUTPUT_MAX (16u * 1024 * 1024)
/* A connection with this much output unread is not served until it reads:
 * a client that pipelines without reading waits instead of filling memory. */
#define OUTPUT_PAUSE (256u * 1024)
#define WATCH_MAX 64
#define REQUESTS_PER_TURN 16
#define ACCEPTS_PER_TURN 32

struct conn {
        uv_pipe_t pipe; /* first: the handle's memory is the connection's */
        struct server *s;
        struct conn *next;
        struct conn *next_backlog; /* in s->backlog while `backlogged` */
        struct linebuf in;
        struct buf out;     /* replies queued behind the write in flight */
        uv_write_t write;   /* the write in flight, when `writing` */
        char *writing_data; /* ...and its bytes */
        size_t writing_len;
        bool writing;
        bool shutdown_when_written; /* refused: close once the last word is out */
        struct authz_peer peer;
        long pid;
        uint64_t active_ms; /* last time it sent something (monotonic) */
        bool closing;
        bool backlogged; /* complete lines wait: reading stopped until served */
        bool paused;     /* over OUTPUT_PAUSE: not served until its output drains */
        uv_shutdown_t shutdown;
        struct engine_watch *watches[WATCH_MAX];
        size_t nwatches;
        void (*later_gone)(void *userdata); /* a reply that comes later (backup) */
        void *later_userdata;
};

struct server {
        uv_loop_t *loop;
        struct rpc_env *env;
        uv_pipe_t listener;
        uv_timer_t sweep; /* closes idle connections */
        uv_idle_t serve;  /* serves the backlog between polls */
        int handles_open; /* listener, sweep, serve: freed when all closed */
        bool listening;
        bool listener_closing; /* uv_close called on the listener */
        bool free_requested;
        char *path; /* removed at exit when we created it */
        struct conn *conns;
        size_t nconns;
        struct conn *backlog; /* connections with lines waiting, in turn order */
        uint64_t accept_ms;   /* loop time of the accepts counted in `accepts` */
        unsigned accepts;
        bool accept_pending; /* libuv holds a connection we have not taken yet */
        unsigned per_uid;
        uint64_t idle_ms;
        /* Every read lands here and is copied into the connection's line
         * buffer at once (one thread: alloc_cb and read_cb come in pairs),
         * so a connection costs a few hundred bytes, not 64 KiB: thousands
         * of connects a second from an abusive client stay cheap. */
        char readbuf[65536];
};

static void sweep_cb(uv_timer_t *t);

int server_new(uv_loop_t *loop, struct rpc_env *env, struct server **ret)
{
        struct server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->env = env;
        s->per_uid = 64;
        uv_pipe_init(loop, &s->listener, 0);
        s->listener.data = s;
        uv_timer_init(loop, &s->sweep);
        s->sweep.data = s;
        uv_idle_init(loop, &s->serve);
        s->serve.data = s;
        s->handles_open = 3;
        *ret = s;
        return 0;
}

void server_set_limits(struct server *s, unsigned per_uid, uint64_t idle_ms)
{
        s->per_uid = per_uid ? per_uid : 1;
        s->idle_ms = idle_ms;
        uv_timer_stop(&s->sweep);
        if (idle_ms) {
                /* idle connections go within a quarter of the timeout */
                uint64_t every = idle_ms / 4 < 50 ? 50 : idle_ms / 4 > 1000 ? 1000 : idle_ms / 4;
                uv_timer_start(&s->sweep, sweep_cb, every, every);
                uv_unref((uv_handle_t *)&s->sweep);
        }
}

long conn_uid(const struct conn *c)
{
        return c->peer.uid;
}

const struct authz_peer *conn_peer(const struct conn *c)
{
        return &c->peer;
}

int conn_add_watch(struct conn *c, struct engine_watch *w)
{
        if (c->nwatches >= WATCH_MAX)
                return -E2BIG;
        c->watches[c->nwatches++] = w;
        return 0;
}

int conn_set_later(struct conn *c, void (*gone)(void *userdata), void *userdata)
{
        if (c->later_gone)
                return -EBUSY;
        c->later_gone = gone;
        c->later_userdata = userdata;
        return 0;
}

void conn_clear_later(struct conn *c)
{
        c->later_gone = NULL;
        c->later_userdata = NULL;
}

static void conn_free_cb(uv_handle_t *h)
{
        struct conn *c = (struct conn *)h;
        linebuf_free(&c->in);
        buf_free(&c->out);
        free(c->writing_data);
        free(c);
}

static void backlog_remove(struct conn *c)
{
        struct server *s = c->s;
        if (!c->backlogged)
                return;
        struct conn **pp = &s->backlog;
        while (*pp && *pp != c)
                pp = &(*pp)->next_backlog;
        if (*pp)
                *pp = c->next_backlog;
        c->backlogged = false;
        if (!s->backlog && !s->accept_pending)
                uv_idle_stop(&s->serve);
}

/* Takes c out of the server's lists and ends its watches; the handle is
 * closed by the caller. */
static void conn_detach(struct conn *c)
{
        c->closing = true;
        struct server *s = c->s;
        for (size_t i = 0; i < c->nwatches; i++)
                engine_unwatch(s->env->engine, c->watches[i]);
        c->nwatches = 0;
        if (c->later_gone) {
                void (*gone)(void *) = c->later_gone;
                void *userdata = c->later_userdata;
                conn_clear_later(c);
                gone(userdata);
        }
        backlog_remove(c);
        struct conn **pp = &s->conns;
        while (*pp && *pp != c)
                pp = &(*pp)->next;
        if (*pp) {
                *pp = c->next;
                s->nconns--;
        }
}

/* Closes at once (queued output is dropped); also ends a refusal. */
static void conn_close(struct conn *c)
{
        if (!c->closing)
                conn_detach(c);
        if (!uv_is_closing((uv_handle_t *)&c->pipe))
                uv_close((uv_handle_t *)&c->pipe, conn_free_cb);
}

static void flush(struct conn *c);
static void backlog_add(struct conn *c);

static void write_cb(uv_write_t *req, int status)
{
        struct conn *c = req->data;
        free(c->writing_data);
        c->writing_data = NULL;
        c->writing_len = 0;
        c->writing = false;
        if (status == UV_ECANCELED)
                return; /* closed meanwhile */
        if (status < 0) {
                conn_close(c);
                return;
        }
        flush(c);
        if (c->paused && !c->closing && c->out.len + c->writing_len <= OUTPUT_PAUSE / 2) {
                c->paused = false;
                backlog_add(c); /* the lines it sent meanwhile, then reading again */
        }
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
        conn_close(req->data);
}

/* Starts writing what is queued, as one write, unless a write is in flight
 * (its callback comes back here).  Once everything is written, a refused
 * connection is shut down and closed. */
static void flush(struct conn *c)
{
        if (c->writing || uv_is_closing((uv_handle_t *)&c->pipe))
                return;
        if (c->out.len == 0) {
                if (c->shutdown_when_written) {
                        c->shutdown_when_written = false;
                        c->shutdown.data = c;
                        if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->pipe, shutdown_cb) < 0)
                                conn_close(c);
                }
                return;
        }
        c->writing_data = c->out.data;
        c->writing_len = c->out.len;
        c->out = (struct buf){0};
        c->write.data = c;
        uv_buf_t buf = uv_buf_init(c->writing_data, (unsigned)c->writing_len);
        if (uv_write(&c->write, (uv_stream_t *)&c->pipe, &buf, 1, write_cb) < 0) {
                free(c->writing_data);
                c->writing_data = NULL;
                c->writing_len = 0;
                conn_close(c);
                return;
        }
        c->writing = true;
}

/* Queues one line for the peer, also while it is closing (a last word).
 * Lines queued while a write is in flight go out together in the next one:
 * a client that pipelines thousands of requests costs a few large writes,
 * not thousands of small ones. */
static int conn_write(struct conn *c, const json_t *msg)
{
        size_t len;
        char *line = rpc_dump_line(msg, &len);
        if (!line)
                return -ENOMEM;
        if (c->out.len + c->writing_len + len > OUTPUT_MAX) {
                free(line);
                return -ENOBUFS;
        }
        int r = buf_append(&c->out, line, len);
        free(line);
        if (r < 0)
                return r;
        flush(c);
        return 0;
}

void conn_send(struct conn *c, const json_t *msg)
{
        if (c->closing)
                return;
        int r = conn_write(c, msg);
        if (r == -ENOBUFS)
                log_warning("rpc", "pid %ld does not read its replies; disconnecting", c->pid);
        if (r < 0)
                conn_close(c);
}

/* Sends an error line (id null), then closes once it is written: the peer
 * learns why, rather than seeing a silent close. */
static void conn_refuse(struct conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_refuse(struct conn *c, int code, const char *fmt, ...)
{
        if (c->closing && c->s)
                return;
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (c->s)
                conn_detach(c);
        c->closing = true;
        uv_read_stop((uv_stream_t *)&c->pipe);
        json_t *err = rpc_make_error(NULL, code, "%s", msg);
        c->shutdown_when_written = true;
        if (!err || conn_write(c, err) < 0)
                conn_close(c);
        json_decref(err);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        struct conn *c = (struct conn *)h;
        *buf = uv_buf_init(c->s->readbuf, sizeof(c->s->readbuf));
}

static void handle_line(struct conn *c, const char *line, size_t len)
{
        json_t *req = NULL, *reply = NULL;
        if (rpc_parse_request(line, len, &req, &reply) < 0) {
                conn_send(c, reply);
                json_decref(reply);
                return;
        }
        rpc_handle(c->s->env, c, req);
        json_decref(req);
}

/* Serves at most REQUESTS_PER_TURN of c's complete lines.  Returns true
 * when lines are left for a later turn. */
static bool serve_lines(struct conn *c)
{
        for (int served = 0; served < REQUESTS_PER_TURN;) {
                if (c->closing)
                        return false;
                if (c->out.len + c->writing_len > OUTPUT_PAUSE) {
                        c->paused = true;
                        return false;
                }
                char *line;
                size_t len;
                int r = linebuf_next(&c->in, &line, &len);
                if (r == 0)
                        return false;
                if (r == -E2BIG) {
                        json_t *err =
                            rpc_make_error(NULL, RPC_INVALID_REQUEST,
                                           "request line longer than %d bytes", PROTO_LINE_MAX);
                        conn_send(c, err);
                        json_decref(err);
                        served++;
                        continue;
                }
                if (len == 0)
                        continue; /* blank lines between requests are fine */
                handle_line(c, line, len);
                served++;
        }
        return !c->closing;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void accept_one(struct server *s);
static void serve_cb(uv_idle_t *h);

/* Puts c at the back of the line of connections served between polls. */
static void backlog_add(struct conn *c)
{
        struct server *s = c->s;
        if (c->backlogged)
                return;
        c->backlogged = true;
        c->next_backlog = NULL;
        struct conn **pp = &s->backlog;
        while (*pp)
                pp = &(*pp)->next_backlog;
        *pp = c;
        uv_idle_start(&s->serve, serve_cb);
}

static void serve_cb(uv_idle_t *h)
{
        struct server *s = h->data;
        if (s->accept_pending) {
                /* a new turn: take the connection held back, which re-arms
                 * the listener for the next poll */
                s->accept_pending = false;
                s->accepts = 1;
                s->accept_ms = uv_now(s->loop);
                if (!s->listener_closing)
                        accept_one(s);
        }
        /* One turn for each connection waiting now; those that still have
         * lines go to the back. */
        struct conn *turn = s->backlog;
        s->backlog = NULL;
        while (turn) {
                struct conn *c = turn;
                turn = c->next_backlog;
                c->next_backlog = NULL;
                if (serve_lines(c)) {
                        /* to the back (found again: a close during the turn
                         * may have taken entries out) */
                        struct conn **pp = &s->backlog;
                        while (*pp)
                                pp = &(*pp)->next_backlog;
                        *pp = c;
                        continue;
                }
                c->backlogged = false;
                if (!c->closing && !c->paused)
                        uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
        }
        if (s->backlog || s->accept_pending)
                uv_idle_start(&s->serve, serve_cb);
        else
                uv_idle_stop(&s->serve);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct conn *c = (struct conn *)stream;
        if (nread < 0) {
                conn_close(c); /* EOF or error: the client is gone */
                return;
        }
        if (nread == 0)
                return;
        c->active_ms = util_now_mono_ms();
        if (linebuf_feed(&c->in, buf->base, (size_t)nread) < 0) {
                conn_close(c);
                return;
        }
        if (!serve_lines(c)) {
                if (c->paused)
                        uv_read_stop(stream);
                return;
        }
        /* More than a turn's worth: stop reading and wait in line. */
        uv_read_stop(stream);
        backlog_add(c);
}

static void sweep_cb(uv_timer_t *t)
{
        struct server *s = t->data;
        uint64_t now = util_now_mono_ms();
        struct conn *c = s->conns;
        while (c) {
                struct conn *next = c->next;
                if (!c->nwatches && !c->backlogged && now - c->active_ms >= s->idle_ms) {
                        log_debug("rpc", "pid %ld (uid %ld) idle for %llu ms; closing", c->pid,
                                  c->peer.uid, (unsigned long long)(now - c->active_ms));
                        conn_refuse(c, RPC_INVALID_REQUEST,
                                    "closing a connection idle for %llu s (daemon.idle_timeout)",
                                    (unsigned long long)(s->idle_ms / 1000));
                }
                c = next;
        }
}

/* The peer's uid, gid, pid and groups. */
static void read_peer(struct conn *c)
{
        c->peer.uid = -1;
        c->peer.gid = -1;
        c->pid = -1;
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
                return;
        struct ucred cred;
        socklen_t n = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0 && n == sizeof(cred)) {
                c->peer.uid = (long)cred.uid;
                c->peer.gid = (long)cred.gid;
                c->pid = (long)cred.pid;
        }
        n = sizeof(c->peer.groups);
        /* ERANGE when they do not all fit: the first ones are still there */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->peer.groups, &n) == 0 || errno == ERANGE)
                c->peer.ngroups = n / sizeof(gid_t);
        if (c->peer.ngroups > sizeof(c->peer.groups) / sizeof(gid_t))
                c->peer.ngroups = sizeof(c->peer.groups) / sizeof(gid_t);
}

static unsigned conns_of(const struct server *s, long uid)
{
        unsigned n = 0;
        for (const struct conn *c = s->conns; c; c = c->next)
                n += c->peer.uid == uid;
        return n;
}

/* Takes the connection libuv holds and lets it in, or refuses it. */
static void accept_one(struct server *s)
{
        struct conn *c = calloc(1, sizeof(*c));
        if (!c)
                return;
        uv_pipe_init(s->loop, &c->pipe, 0);
        if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->pipe) < 0) {
                uv_close((uv_handle_t *)&c->pipe, conn_free_cb);
                return;
        }
        linebuf_init(&c->in, PROTO_LINE_MAX);
        read_peer(c);
        c->active_ms = util_now_mono_ms();
        if (s->nconns >= CONN_MAX) {
                log_warning("rpc", "%d connections open; refusing pid %ld", CONN_MAX, c->pid);
                conn_refuse(c, RPC_NOT_ALLOWED,
                            "etld has %d connections open, its limit; try again later", CONN_MAX);
                return;
        }
        if (conns_of(s, c->peer.uid) >= s->per_uid) {
                log_warning("rpc", "uid %ld has %u connections open; refusing pid %ld", c->peer.uid,
                            s->per_uid, c->pid);
                conn_refuse(c, RPC_NOT_ALLOWED,
                            "uid %ld has %u connections open, the limit "
                            "(daemon.max_connections_per_uid); close some and try again",
                            c->peer.uid, s->per_uid);
                return;
        }
        c->s = s;
        c->next = s->conns;
        s->conns = c;
        s->nconns++;
        uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* At most ACCEPTS_PER_TURN new connections per loop turn: beyond that the
 * connection is left with libuv, which stops watching the listener until we
 * take it on the next turn, so a client that connects and reconnects as
 * fast as it can does not delay the requests of the connected ones. */
static void accept_cb(uv_stream_t *listener, int status)
{
        struct server *s = listener->data;
        if (status < 0) {
                log_warning("rpc", "accept failed: %s", uv_strerror(status));
                return;
        }
        uint64_t now = uv_now(s->loop);
        if (now != s->accept_ms) {
                s->accept_ms = now;
                s->accepts = 0;
        }
        if (s->accepts >= ACCEPTS_PER_TURN) {
                s->accept_pending = true;
                uv_idle_start(&s->serve, serve_cb);
                return;
        }
        s->accepts++;
        accept_one(s);
}

/* Whether something accepts connections at path. */
static bool socket_is_live(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        bool live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        return live;
}

int server_listen_path(struct server *s, const char *path, char *err, size_t errlen)
{
        struct sockaddr_un sa;
        if (strlen(path) >= sizeof(sa.sun_path)) {
                snprintf(err, errlen, "socket path '%s' is longer than %zu bytes", path,
                         sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        snprintf(err, errlen,
                                 "'%s' exists and is not a socket; refusing to remove it", path);
                        return -EEXIST;
                }
                if (socket_is_live(path)) {
                        snprintf(err, errlen,
                                 "another etld answers on '%s'; stop it first or use --socket",
                                 path);
                        return -EADDRINUSE;
                }
                log_info("rpc", "removing stale socket '%s'", path);
                unlink(path);
        }
        /* The umask makes bind create the socket 0660 with no window. */
        mode_t old = umask(0117);
        int r = uv_pipe_bind(&s->listener, path);
        umask(old);
        if (r == 0)
                r = uv_listen((uv_stream_t *)&s->listener, 128, accept_cb);
        if (r < 0) {
                snprintf(err, errlen, "cannot listen on '%s': %s", path, uv_strerror(r));
                return r;
        }
        s->path = strdup(path);
        s->listening = true;
        return 0;
}

int server_listen_fd(struct server *s, int fd, char *err, size_t errlen)
{
        int r = uv_pipe_open(&s->listener, fd);
        if (r == 0)
                r = uv_listen((uv_stream_t *)&s->listener, 128, accept_cb);
        if (r < 0) {
                snprintf(err, errlen, "cannot listen on the socket passed by systemd (fd %d): %s",
                         fd, uv_strerror(r));
                return r;
        }
        s->listening = true;
        return 0;
}

static void server_release(struct server *s)
{
        free(s->path);
        free(s);
}

static void handle_closed_cb(uv_handle_t *h)
{
        struct server *s = h->data;
        if (--s->handles_open == 0 && s->free_requested)
                server_release(s);
}

void server_stop_listening(struct server *s)
{
        if (s->listener_closing)
                return;
        s->listener_closing = true;
        s->listening = false;
        if (s->path)
                unlink(s->path);
        uv_close((uv_handle_t *)&s->listener, handle_closed_cb);
}

void server_free(struct server *s)
{
        if (!s)
                return;
        while (s->conns)
                conn_close(s->conns);
        server_stop_listening(s);
        uv_close((uv_handle_t *)&s->sweep, handle_closed_cb);
        uv_close((uv_handle_t *)&s->serve, handle_closed_cb);
        if (s->handles_open == 0)
                server_release(s);
        else
                s->free_requested = true;
}
