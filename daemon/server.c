/* server.c - the Unix socket server.  See server.h.
 *
 * Each connection has a bounded line buffer (proto.h), a bounded output
 * queue and the watches it started.  Limits: CONN_MAX connections at once,
 * OUTPUT_MAX bytes queued to one peer.  Peer credentials are read once at
 * accept (SO_PEERCRED) and recorded with submits and cancels. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "proto.h"
#include "rpc.h"

#define CONN_MAX 1024
#define OUTPUT_MAX (16u * 1024 * 1024)
#define WATCH_MAX 64

struct conn {
        uv_pipe_t pipe; /* first: the handle's memory is the connection's */
        struct server *s;
        struct conn *next;
        struct linebuf in;
        size_t queued; /* bytes written but not yet confirmed */
        long uid;
        long pid;
        bool closing;
        struct engine_watch *watches[WATCH_MAX];
        size_t nwatches;
        void (*later_gone)(void *userdata); /* a reply that comes later (backup) */
        void *later_userdata;
        char readbuf[65536];
};

struct server {
        uv_loop_t *loop;
        struct rpc_env *env;
        uv_pipe_t listener;
        bool listening;
        bool listener_closing; /* uv_close called on the listener */
        bool listener_closed;  /* ...and its callback ran */
        bool free_requested;
        char *path; /* removed at exit when we created it */
        struct conn *conns;
        size_t nconns;
};

struct write_req {
        uv_write_t req;
        struct conn *c;
        size_t len;
        char data[];
};

int server_new(uv_loop_t *loop, struct rpc_env *env, struct server **ret)
{
        struct server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->env = env;
        uv_pipe_init(loop, &s->listener, 0);
        s->listener.data = s;
        *ret = s;
        return 0;
}

long conn_uid(const struct conn *c)
{
        return c->uid;
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
        free(c);
}

static void conn_close(struct conn *c)
{
        if (c->closing)
                return;
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
        struct conn **pp = &s->conns;
        while (*pp && *pp != c)
                pp = &(*pp)->next;
        if (*pp)
                *pp = c->next;
        s->nconns--;
        uv_close((uv_handle_t *)&c->pipe, conn_free_cb);
}

static void write_cb(uv_write_t *req, int status)
{
        struct write_req *w = (struct write_req *)req;
        w->c->queued -= w->len;
        if (status < 0 && status != UV_ECANCELED)
                conn_close(w->c);
        free(w);
}

void conn_send(struct conn *c, const json_t *msg)
{
        if (c->closing)
                return;
        size_t len;
        char *line = rpc_dump_line(msg, &len);
        if (!line)
                return;
        if (c->queued + len > OUTPUT_MAX) {
                log_warning("rpc", "pid %ld does not read its replies; disconnecting", c->pid);
                free(line);
                conn_close(c);
                return;
        }
        struct write_req *w = malloc(sizeof(*w) + len);
        if (!w) {
                free(line);
                conn_close(c);
                return;
        }
        memcpy(w->data, line, len);
        free(line);
        w->c = c;
        w->len = len;
        c->queued += len;
        uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
        int r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, write_cb);
        if (r < 0) {
                c->queued -= len;
                free(w);
                conn_close(c);
        }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        struct conn *c = (struct conn *)h;
        *buf = uv_buf_init(c->readbuf, sizeof(c->readbuf));
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

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct conn *c = (struct conn *)stream;
        if (nread < 0) {
                conn_close(c); /* EOF or error: the client is gone */
                return;
        }
        if (nread == 0)
                return;
        if (linebuf_feed(&c->in, buf->base, (size_t)nread) < 0) {
                conn_close(c);
                return;
        }
        for (;;) {
                if (c->closing)
                        return;
                char *line;
                size_t len;
                int r = linebuf_next(&c->in, &line, &len);
                if (r == 0)
                        break;
                if (r == -E2BIG) {
                        json_t *err = rpc_make_error(NULL, RPC_INVALID_REQUEST,
                                                     "request line longer than %d bytes",
                                                     PROTO_LINE_MAX);
                        conn_send(c, err);
                        json_decref(err);
                        continue;
                }
                if (len == 0)
                        continue; /* blank lines between requests are fine */
                handle_line(c, line, len);
        }
}

static void accept_cb(uv_stream_t *listener, int status)
{
        struct server *s = listener->data;
        if (status < 0) {
                log_warning("rpc", "accept failed: %s", uv_strerror(status));
                return;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c)
                return;
        uv_pipe_init(s->loop, &c->pipe, 0);
        if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
                uv_close((uv_handle_t *)&c->pipe, conn_free_cb);
                return;
        }
        c->s = s;
        linebuf_init(&c->in, PROTO_LINE_MAX);
        c->uid = -1;
        c->pid = -1;
        uv_os_fd_t fd;
        struct ucred cred;
        socklen_t n = sizeof(cred);
        if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0 && n == sizeof(cred)) {
                c->uid = (long)cred.uid;
                c->pid = (long)cred.pid;
        }
        if (s->nconns >= CONN_MAX) {
                log_warning("rpc", "%d connections open; refusing pid %ld", CONN_MAX, c->pid);
                c->closing = true;
                uv_close((uv_handle_t *)&c->pipe, conn_free_cb);
                return;
        }
        c->next = s->conns;
        s->conns = c;
        s->nconns++;
        uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* Whether something accepts connections at path. */
static bool socket_is_live(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
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
                        snprintf(err, errlen, "'%s' exists and is not a socket; refusing to remove it",
                                 path);
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

static void listener_closed_cb(uv_handle_t *h)
{
        struct server *s = h->data;
        s->listener_closed = true;
        if (s->free_requested)
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
        uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
}

void server_free(struct server *s)
{
        if (!s)
                return;
        while (s->conns)
                conn_close(s->conns);
        server_stop_listening(s);
        if (s->listener_closed)
                server_release(s);
        else
                s->free_requested = true;
}
