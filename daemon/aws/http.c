/* http.c - libcurl multi on the libuv loop.
 *
 * The pattern is curl's docs/examples/multi-uv.c, with the fixes listed in
 * PATTERNS.md (a): every handle's `data` is set; poll errors are handed to
 * curl as CURL_CSELECT_ERR; poll contexts are freed only in their close
 * callback; transfers are removed from the multi only outside libcurl's
 * callbacks (a cancel from inside one is deferred to a zero-delay timer);
 * we keep our own list of transfers since curl_multi_get_handles() is not in
 * Debian's 7.88.  Nothing here knows about AWS.
 *
 * Sockets.  The plain pattern costs a uv_poll_init (two epoll_ctl calls and
 * an ioctl), an epoll_ctl ADD and two DELs for every request, even on a
 * kept-alive connection: curl says CURL_POLL_REMOVE when a transfer ends and
 * the connection goes back to its cache, and CURL_POLL_IN again when the
 * next transfer takes it.  So curl's connection sockets are opened and closed
 * by us (CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION), and their
 * poll handle lives exactly as long as the socket: created at open, closed
 * (stopped, out of epoll) in the close callback before the fd number can be
 * reused.  In between, CURL_POLL_REMOVE only marks the socket idle and leaves
 * a read watch in place (unreferenced: an idle connection does not keep the
 * loop running), and a later CURL_POLL_IN finds it already there.
 * An idle socket that stirs (the server closed the connection) is no business
 * of curl's until it picks the connection again, which it checks first: the
 * watch is just stopped so that EOF cannot spin the loop.  Any other socket
 * curl hands us (a resolver's pipe) gets the plain treatment: its poll
 * handle ends at CURL_POLL_REMOVE. */
#include "aws/http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_DEFAULT_MAX_BODY (16u * 1024 * 1024)
#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_HEADER_BYTES (64u * 1024)
#define HTTP_ERROR_BODY_MAX (256u * 1024)
/* Finished easy handles kept (curl_easy_reset) for the next transfer: creating
 * one allocates its buffers, which dominated the cost of small requests. */
#define HTTP_EASY_POOL_MAX 256

struct http_mux {
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t timer; /* curl's timeout */
        uv_idle_t kick;   /* curl's "as soon as possible" (a timeout of 0) */
        uv_timer_t defer; /* cancels/resumes asked for from inside callbacks */
        struct http_xfer *head;
        struct http_mux_opts opts;
        int in_curl; /* > 0 while libcurl may be calling us back */
        bool stopping;
        int open_handles;
        void (*closed)(void *);
        void *closed_ud;
        CURL *pool[HTTP_EASY_POOL_MAX];
        size_t npool;
        bool no_proxy_env;        /* none of curl's proxy variables was set at start */
        struct http_sock **socks; /* by fd number */
        size_t nsocks;
};

struct http_sock {
        uv_poll_t poll;
        struct http_mux *mux;
        curl_socket_t fd;
        int events;  /* what the poll handle watches; 0: stopped */
        bool owned;  /* opened by on_open_socket: on_close_socket ends it */
        bool wanted; /* curl waits on it (between CURL_POLL_IN/OUT and REMOVE) */
};

static void check_done(struct http_mux *m);

/* ---- easy handle pool ---- */

static size_t on_header(char *p, size_t size, size_t n, void *ud);
static size_t on_write(char *p, size_t size, size_t n, void *ud);
static size_t on_read(char *p, size_t size, size_t n, void *ud);
static int on_seek(void *ud, curl_off_t off, int origin);
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a);
static int on_close_socket(void *ud, curl_socket_t fd);

/* A new easy handle with the options that are the same for every transfer
 * of `m`; setup_easy() sets all the others, every time. */
static CURL *easy_new(struct http_mux *m)
{
        const struct http_mux_opts *o = &m->opts;
        CURL *e = curl_easy_init();
        CURLcode c = CURLE_OK;

        if (!e)
                return NULL;
#define SET(opt, val)                                                                              \
        do {                                                                                       \
                if (c == CURLE_OK)                                                                 \
                        c = curl_easy_setopt(e, opt, val);                                         \
        } while (0)
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        if (o->ca_file)
                SET(CURLOPT_CAINFO, o->ca_file);
        SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
        SET(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_bytes);
        SET(CURLOPT_LOW_SPEED_TIME, o->low_speed_secs);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_WRITEFUNCTION, on_write);
        SET(CURLOPT_READFUNCTION, on_read);
        SET(CURLOPT_SEEKFUNCTION, on_seek);
        SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        SET(CURLOPT_OPENSOCKETDATA, m);
        SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
        SET(CURLOPT_CLOSESOCKETDATA, m);
        if (m->no_proxy_env) {
                /* Otherwise curl reads five environment variables for every
                 * transfer; "" is "no proxy" and skips that. */
                SET(CURLOPT_PROXY, "");
                SET(CURLOPT_NOPROXY, "");
        }
#undef SET
        if (c != CURLE_OK) {
                curl_easy_cleanup(e);
                return NULL;
        }
        return e;
}

static CURL *easy_get(struct http_mux *m)
{
        if (m->npool > 0)
                return m->pool[--m->npool];
        return easy_new(m);
}

/* `e` is not in the multi.  It keeps its options (curl_easy_reset and setting
 * them all again cost more than the rest of a small request's setup); the
 * pointers into the finished transfer are cleared.  The connection and DNS
 * caches live in the multi handle, so keep-alive reuse is unaffected. */
static void easy_put(struct http_mux *m, CURL *e)
{
        if (!e)
                return;
        if (m->stopping || m->npool >= HTTP_EASY_POOL_MAX) {
                curl_easy_cleanup(e);
                return;
        }
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
        m->pool[m->npool++] = e;
}

/* ---- sockets ---- */

static struct http_sock *sock_get(struct http_mux *m, curl_socket_t fd)
{
        return fd >= 0 && (size_t)fd < m->nsocks ? m->socks[fd] : NULL;
}

static void sock_closed(uv_handle_t *h)
{
        free(h->data);
}

/* Forgets `s` and closes its poll handle, which takes it out of epoll now:
 * before the caller closes the fd. */
static void sock_drop(struct http_mux *m, struct http_sock *s)
{
        if (sock_get(m, s->fd) == s)
                m->socks[s->fd] = NULL;
        uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static struct http_sock *sock_new(struct http_mux *m, curl_socket_t fd, bool owned)
{
        if (fd < 0)
                return NULL;
        if ((size_t)fd >= m->nsocks) {
                size_t n = m->nsocks ? m->nsocks : 64;
                while (n <= (size_t)fd)
                        n *= 2;
                struct http_sock **t = realloc(m->socks, n * sizeof(*t));
                if (!t)
                        return NULL;
                memset(t + m->nsocks, 0, (n - m->nsocks) * sizeof(*t));
                m->socks = t;
                m->nsocks = n;
        }
        /* A socket of that number that we were not told about the end of
         * (curl closes a resolver pipe without CURL_POLL_REMOVE, say). */
        if (m->socks[fd])
                sock_drop(m, m->socks[fd]);
        struct http_sock *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->mux = m;
        s->fd = fd;
        s->owned = owned;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) < 0) {
                free(s);
                return NULL;
        }
        s->poll.data = s;
        m->socks[fd] = s;
        return s;
}

/* ---- transfers list ---- */

static void link_xfer(struct http_mux *m, struct http_xfer *x)
{
        x->prev = NULL;
        x->next = m->head;
        if (m->head)
                m->head->prev = x;
        m->head = x;
}

static void unlink_xfer(struct http_mux *m, struct http_xfer *x)
{
        if (x->prev)
                x->prev->next = x->next;
        else
                m->head = x->next;
        if (x->next)
                x->next->prev = x->prev;
        x->prev = x->next = NULL;
}

/* ---- results ---- */

static int result_from_curl(CURLcode c)
{
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return -ECONNRESET;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_FILESIZE_EXCEEDED:
                return -E2BIG;
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
                return -EPROTO;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

const char *http_result_str(int result)
{
        switch (result) {
        case 0:
                return "ok";
        case -ECANCELED:
                return "cancelled";
        case -ETIMEDOUT:
                return "timed out";
        case -ECONNREFUSED:
                return "connection refused";
        case -EHOSTUNREACH:
                return "host not found";
        case -ECONNRESET:
                return "connection reset or closed early";
        case -ENOMEM:
                return "out of memory";
        case -E2BIG:
                return "response too large";
        case -EPROTO:
                return "TLS failure (certificate not trusted?)";
        case -EINVAL:
                return "bad URL";
        default:
                return "transfer failed";
        }
}

void http_xfer_reset(struct http_xfer *x)
{
        if (!x)
                return;
        buf_free(&x->resp);
        buf_free(&x->resp_hdrs);
        x->n_resp_headers = 0;
        x->result = 0;
        x->curl_code = CURLE_OK;
        x->status = 0;
        x->bytes_in = 0;
        x->new_connections = 0;
        x->errbuf[0] = '\0';
}

const char *http_xfer_header(const struct http_xfer *x, const char *name)
{
        const char *found = NULL, *p = x->resp_hdrs.data;

        /* the last one of that name wins */
        for (size_t i = 0; i < x->n_resp_headers; i++) {
                const char *v = p + strlen(p) + 1;
                if (strcasecmp(p, name) == 0)
                        found = v;
                p = v + strlen(v) + 1;
        }
        return found;
}

/* Called once per transfer, outside libcurl callbacks; `x` may be freed by
 * done(), so nothing touches it afterwards. */
static void finish(struct http_xfer *x, int result)
{
        struct http_mux *m = x->mux;
        long code = 0, conns = 0;

        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns);
        easy_put(m, x->easy);
        x->easy = NULL;
        x->status = code;
        x->new_connections = conns;
        x->result = result;
        x->active = x->cancel_pending = x->resume_pending = x->paused = false;
        unlink_xfer(m, x);
        x->done(x);
}

/* ---- libcurl callbacks (m->in_curl > 0 here) ---- */

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
        struct http_xfer *x = ud;
        size_t len = size * n;

        if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
                /* a new response (100 Continue, then the real one) */
                x->resp_hdrs.len = 0;
                x->n_resp_headers = 0;
                return len;
        }
        const char *colon = memchr(p, ':', len);
        if (!colon || x->n_resp_headers >= HTTP_MAX_HEADERS || len > HTTP_MAX_HEADER_BYTES ||
            memchr(p, '\0', len))
                return len;
        const char *v = colon + 1, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        /* All in one buffer: a strndup per name and value showed in profiles. */
        if (buf_append(&x->resp_hdrs, p, (size_t)(colon - p) + 1) < 0)
                return 0;
        x->resp_hdrs.data[x->resp_hdrs.len - 1] = '\0';
        if (buf_append(&x->resp_hdrs, v, (size_t)(end - v)) < 0 ||
            buf_append(&x->resp_hdrs, "", 1) < 0)
                return 0;
        x->n_resp_headers++;
        return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
        struct http_xfer *x = ud;
        size_t len = size * n;
        long code = 0;

        if (x->cancel_pending)
                return 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        if (x->on_body && code >= 200 && code < 300) {
                x->streaming = true;
                int r = x->on_body(x, p, len);
                if (r == HTTP_PAUSE) {
                        x->paused = true;
                        return CURL_WRITEFUNC_PAUSE;
                }
                if (r < 0) {
                        x->cb_err = r;
                        return 0;
                }
                x->bytes_in += len;
                return len;
        }
        /* Buffered: the whole body of a small reply, or an error body (kept
         * for its XML, the rest silently dropped). */
        size_t max = x->max_body ? x->max_body : HTTP_DEFAULT_MAX_BODY;
        bool is_error = code >= 300;
        if (is_error && max > HTTP_ERROR_BODY_MAX)
                max = HTTP_ERROR_BODY_MAX;
        x->resp.max = 0;
        if (x->resp.len + len > max) {
                if (is_error) {
                        size_t room = max - x->resp.len;
                        if (room && buf_append(&x->resp, p, room) < 0)
                                return 0;
                        x->bytes_in += len;
                        return len;
                }
                x->cb_err = -E2BIG;
                return 0;
        }
        if (buf_append(&x->resp, p, len) < 0) {
                x->cb_err = -ENOMEM;
                return 0;
        }
        x->bytes_in += len;
        return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
        struct http_xfer *x = ud;
        size_t len = size * n;

        if (x->cancel_pending)
                return CURL_READFUNC_ABORT;
        if (x->read_body) {
                long r = x->read_body(x, p, len);
                if (r == HTTP_READ_PAUSE) {
                        x->paused = true;
                        return CURL_READFUNC_PAUSE;
                }
                if (r < 0) {
                        x->cb_err = (int)r;
                        return CURL_READFUNC_ABORT;
                }
                return (size_t)r;
        }
        size_t left = x->body_len - x->body_off;
        if (len > left)
                len = left;
        if (len)
                memcpy(p, (const char *)x->body + x->body_off, len);
        x->body_off += len;
        return len;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
        struct http_xfer *x = ud;

        if (x->read_body || origin != SEEK_SET || off < 0 || (size_t)off > x->body_len)
                return CURL_SEEKFUNC_CANTSEEK;
        x->body_off = (size_t)off;
        return CURL_SEEKFUNC_OK;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
        struct http_sock *s = h->data;
        struct http_mux *m = s->mux;
        int flags = 0, running;

        if (!s->wanted) {
                /* An idle kept-alive connection stirred: the server closed
                 * it, most likely.  Curl checks a connection before it reuses
                 * it; until then, stop watching (EOF stays readable). */
                uv_poll_stop(&s->poll);
                s->events = 0;
                return;
        }
        if (status < 0)
                flags = CURL_CSELECT_ERR; /* EBADF is how libuv reports POLLERR */
        else {
                if (events & UV_READABLE)
                        flags |= CURL_CSELECT_IN;
                if (events & UV_WRITABLE)
                        flags |= CURL_CSELECT_OUT;
        }
        m->in_curl++;
        curl_multi_socket_action(m->multi, s->fd, flags, &running);
        m->in_curl--;
        check_done(m);
}

/* Curl's connection sockets: see the top of the file. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
        struct http_mux *m = ud;

        if (purpose != CURLSOCKTYPE_IPCXN)
                return CURL_SOCKET_BAD;
        int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        if (fd < 0)
                return CURL_SOCKET_BAD;
        if (!sock_new(m, fd, true)) {
                close(fd);
                return CURL_SOCKET_BAD;
        }
        return fd;
}

/* Curl closes a socket (maybe one it did not open through us). */
static int on_close_socket(void *ud, curl_socket_t fd)
{
        struct http_mux *m = ud;
        struct http_sock *s = sock_get(m, fd);

        if (s)
                sock_drop(m, s);
        return close(fd);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        struct http_mux *m = userp;
        struct http_sock *s = sock_get(m, fd);

        if (what == CURL_POLL_REMOVE) {
                if (!s)
                        return 0;
                if (!s->owned) {
                        sock_drop(m, s); /* curl may close it as soon as we return */
                        return 0;
                }
                /* Idle in curl's connection cache, or about to be closed
                 * (on_close_socket follows).  A read watch stays, without
                 * keeping the loop alive (uv_run must return once every
                 * transfer is done, as before); a write watch on an idle
                 * socket would fire at once. */
                s->wanted = false;
                uv_unref((uv_handle_t *)&s->poll);
                if (s->events & UV_WRITABLE) {
                        uv_poll_stop(&s->poll);
                        s->events = 0;
                }
                return 0;
        }
        if (!s) {
                s = sock_new(m, fd, false);
                if (!s)
                        return -1;
        }
        int ev = 0;
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                ev |= UV_READABLE;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                ev |= UV_WRITABLE;
        s->wanted = true;
        uv_ref((uv_handle_t *)&s->poll);
        /* libuv stops the handle itself on POLLERR: hence the second test */
        if (ev != s->events || !uv_is_active((uv_handle_t *)&s->poll)) {
                if (uv_poll_start(&s->poll, ev, on_poll) < 0)
                        return -1;
                s->events = ev;
        }
        return 0;
}

static void on_timer(uv_timer_t *t)
{
        struct http_mux *m = t->data;
        int running;

        m->in_curl++;
        curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        m->in_curl--;
        check_done(m);
}

static void on_kick(uv_idle_t *h)
{
        struct http_mux *m = h->data;
        int running;

        uv_idle_stop(&m->kick);
        m->in_curl++;
        curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        m->in_curl--;
        check_done(m);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        struct http_mux *m = userp;

        if (timeout_ms < 0) {
                uv_timer_stop(&m->timer);
                uv_idle_stop(&m->kick);
        } else if (timeout_ms == 0) {
                /* "As soon as possible, but not from inside this callback":
                 * the next loop iteration, after a look at the sockets (an
                 * idle handle makes the loop poll without blocking).  The
                 * usual 1 ms timer instead made every new request wait, and
                 * cost a wake-up of its own. */
                uv_timer_stop(&m->timer);
                uv_idle_start(&m->kick, on_kick);
        } else {
                uv_idle_stop(&m->kick);
                uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
        }
        return 0;
}

/* ---- loop side ---- */

static void check_done(struct http_mux *m)
{
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(m->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                CURL *easy = msg->easy_handle;
                CURLcode c = msg->data.result;
                struct http_xfer *x = NULL;
                curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
                m->in_curl++;
                curl_multi_remove_handle(m->multi, easy);
                m->in_curl--;
                int r;
                if (x->cancel_pending)
                        r = -ECANCELED;
                else if (x->cb_err)
                        r = x->cb_err;
                else
                        r = result_from_curl(c);
                x->curl_code = c;
                finish(x, r);
        }
}

static void do_cancel(struct http_xfer *x)
{
        struct http_mux *m = x->mux;

        m->in_curl++;
        curl_multi_remove_handle(m->multi, x->easy);
        m->in_curl--;
        x->curl_code = CURLE_ABORTED_BY_CALLBACK;
        finish(x, -ECANCELED);
}

static void do_resume(struct http_xfer *x)
{
        struct http_mux *m = x->mux;

        x->resume_pending = false;
        if (!x->paused)
                return;
        x->paused = false;
        m->in_curl++;
        curl_easy_pause(x->easy, CURLPAUSE_CONT); /* may deliver the held bytes now */
        m->in_curl--;
        /* 7.88 arms the timer itself; make sure the multi gets a look anyway. */
        on_curl_timer(m->multi, 0, m);
        check_done(m);
}

static void on_defer(uv_timer_t *t)
{
        struct http_mux *m = t->data;
        bool again = true;

        /* A done() callback may free or resubmit any transfer: restart the
         * scan after each action. */
        while (again) {
                again = false;
                for (struct http_xfer *x = m->head; x; x = x->next) {
                        if (x->cancel_pending) {
                                do_cancel(x);
                                again = true;
                                break;
                        }
                        if (x->resume_pending) {
                                do_resume(x);
                                again = true;
                                break;
                        }
                }
        }
}

static void schedule_defer(struct http_mux *m)
{
        uv_timer_start(&m->defer, on_defer, 0, 0);
}

void http_cancel(struct http_xfer *x)
{
        if (!x || !x->active)
                return;
        x->cancel_pending = true;
        if (x->mux->in_curl > 0)
                schedule_defer(x->mux);
        else
                do_cancel(x);
}

unsigned http_cancel_tag(struct http_mux *m, const void *tag)
{
        unsigned n = 0;
        bool again = true;

        while (again) {
                again = false;
                for (struct http_xfer *x = m->head; x; x = x->next) {
                        if (x->tag == tag && !x->cancel_pending) {
                                n++;
                                http_cancel(x);
                                again = true;
                                break;
                        }
                }
        }
        return n;
}

void http_resume(struct http_xfer *x)
{
        if (!x || !x->active)
                return;
        if (x->mux->in_curl > 0) {
                x->resume_pending = true;
                schedule_defer(x->mux);
        } else
                do_resume(x);
}

/* Sets every option that may differ between transfers (easy_new() set the
 * others): a pooled handle still carries the previous transfer's. */
static int setup_easy(struct http_mux *m, struct http_xfer *x)
{
        CURL *e = x->easy;
        bool has_body = x->body || x->read_body;
        bool head = strcmp(x->method, "HEAD") == 0;
        CURLcode c = CURLE_OK;

#define SET(opt, val)                                                                              \
        do {                                                                                       \
                if (c == CURLE_OK)                                                                 \
                        c = curl_easy_setopt(e, opt, val);                                         \
        } while (0)
        SET(CURLOPT_URL, x->url);
        SET(CURLOPT_PRIVATE, x);
        SET(CURLOPT_ERRORBUFFER, x->errbuf);
        SET(CURLOPT_TIMEOUT_MS, x->timeout_ms > 0 ? x->timeout_ms : 0L);
        SET(CURLOPT_HEADERDATA, x);
        SET(CURLOPT_WRITEDATA, x);
        SET(CURLOPT_READDATA, x);
        SET(CURLOPT_SEEKDATA, x);
        SET(CURLOPT_HTTPHEADER, x->headers);
        /* HTTPGET puts the method back to GET with no upload and a body
         * expected; then one of NOBODY (HEAD) or UPLOAD (PUT) changes it. */
        SET(CURLOPT_HTTPGET, 1L);
        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)-1);
        const char *custom = NULL;
        if (head) {
                SET(CURLOPT_NOBODY, 1L);
        } else if (has_body) {
                SET(CURLOPT_UPLOAD, 1L);
                curl_off_t len = x->read_body ? (curl_off_t)x->read_len : (curl_off_t)x->body_len;
                if (len >= 0)
                        SET(CURLOPT_INFILESIZE_LARGE, len);
                if (strcmp(x->method, "PUT") != 0)
                        custom = x->method;
        } else if (strcmp(x->method, "GET") != 0) {
                custom = x->method;
        }
        SET(CURLOPT_CUSTOMREQUEST, custom);
#undef SET
        return c == CURLE_OK ? 0 : -EINVAL;
}

int http_submit(struct http_mux *m, struct http_xfer *x)
{
        if (m->stopping)
                return -ESHUTDOWN;
        if (!x->method || !x->url || !x->done)
                return -EINVAL;
        http_xfer_reset(x);
        x->mux = m;
        x->body_off = 0;
        x->cb_err = 0;
        x->cancel_pending = x->resume_pending = x->paused = x->streaming = false;
        x->easy = easy_get(m);
        if (!x->easy)
                return -ENOMEM;
        int r = setup_easy(m, x);
        if (r == 0) {
                m->in_curl++;
                CURLMcode mc = curl_multi_add_handle(m->multi, x->easy);
                m->in_curl--;
                if (mc != CURLM_OK)
                        r = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        }
        if (r < 0) {
                easy_put(m, x->easy);
                x->easy = NULL;
                return r;
        }
        x->active = true;
        link_xfer(m, x);
        return 0;
}

static void global_init(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_mux_new(uv_loop_t *loop, const struct http_mux_opts *opts, struct http_mux **ret)
{
        static uv_once_t once = UV_ONCE_INIT;

        /* curl_global_init is not thread-safe before 7.84; run it once. */
        uv_once(&once, global_init);

        struct http_mux *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        if (opts)
                m->opts = *opts;
        if (m->opts.connect_timeout_ms <= 0)
                m->opts.connect_timeout_ms = 10000;
        if (m->opts.low_speed_bytes <= 0)
                m->opts.low_speed_bytes = 1;
        if (m->opts.low_speed_secs <= 0)
                m->opts.low_speed_secs = 30;
        if (m->opts.max_host_connections <= 0)
                m->opts.max_host_connections = 64;
        if (m->opts.max_total_connections <= 0)
                m->opts.max_total_connections = 256;
        m->loop = loop;
        m->multi = curl_multi_init();
        if (!m->multi) {
                free(m);
                return -ENOMEM;
        }
        uv_timer_init(loop, &m->timer);
        uv_timer_init(loop, &m->defer);
        uv_idle_init(loop, &m->kick);
        m->timer.data = m;
        m->defer.data = m;
        m->kick.data = m;
        m->open_handles = 3;
        static const char *const proxy_vars[] = {
            "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
            "ALL_PROXY",  "no_proxy",    "NO_PROXY",
        };
        m->no_proxy_env = true;
        for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++)
                if (getenv(proxy_vars[i]))
                        m->no_proxy_env = false;
        curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
        curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
        curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
        curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, m->opts.max_host_connections);
        curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, m->opts.max_total_connections);
        curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, m->opts.max_total_connections);
        *ret = m;
        return 0;
}

uv_loop_t *http_mux_loop(struct http_mux *m)
{
        return m->loop;
}

static void mux_handle_closed(uv_handle_t *h)
{
        struct http_mux *m = h->data;

        if (--m->open_handles > 0)
                return;
        void (*closed)(void *) = m->closed;
        void *ud = m->closed_ud;
        free(m);
        if (closed)
                closed(ud);
}

void http_mux_close(struct http_mux *m, void (*closed)(void *ud), void *ud)
{
        if (!m)
                return;
        m->stopping = true;
        m->closed = closed;
        m->closed_ud = ud;
        while (m->head)
                do_cancel(m->head);
        m->in_curl++;
        curl_multi_cleanup(m->multi); /* closes cached connections: CURL_POLL_REMOVE */
        m->in_curl--;
        m->multi = NULL;
        while (m->npool > 0)
                curl_easy_cleanup(m->pool[--m->npool]);
        /* curl closed its connections above (on_close_socket); whatever is
         * left was never ours to close */
        for (size_t i = 0; i < m->nsocks; i++)
                if (m->socks[i])
                        sock_drop(m, m->socks[i]);
        free(m->socks);
        m->socks = NULL;
        m->nsocks = 0;
        uv_timer_stop(&m->timer);
        uv_timer_stop(&m->defer);
        uv_idle_stop(&m->kick);
        uv_close((uv_handle_t *)&m->timer, mux_handle_closed);
        uv_close((uv_handle_t *)&m->defer, mux_handle_closed);
        uv_close((uv_handle_t *)&m->kick, mux_handle_closed);
}

/* ---- retry policy ---- */

uint64_t http_backoff_ms(const struct http_retry_policy *p, unsigned retry, uint64_t rnd,
                         int64_t retry_after_ms)
{
        uint64_t base = p->base_ms ? p->base_ms : 100;
        uint64_t cap = p->cap_ms ? p->cap_ms : 20000;
        uint64_t ceil = base;

        for (unsigned i = 1; i < retry && ceil < cap; i++)
                ceil *= 2;
        if (ceil > cap)
                ceil = cap;
        uint64_t d = rnd % (ceil + 1);
        if (retry_after_ms >= 0) {
                uint64_t ra = (uint64_t)retry_after_ms;
                if (ra > cap * 10)
                        ra = cap * 10;
                if (d < ra)
                        d = ra;
        }
        return d;
}

static int month_index(const char *s)
{
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        for (int i = 0; i < 12; i++)
                if (strncmp(s, months + 3 * i, 3) == 0)
                        return i;
        return -1;
}

int64_t http_parse_retry_after(const char *v, int64_t now_ms)
{
        if (!v)
                return -1;
        while (*v == ' ')
                v++;
        if (*v >= '0' && *v <= '9') {
                long long secs;
                char tmp[32];
                size_t n = strcspn(v, " \r\n");
                if (n == 0 || n >= sizeof(tmp))
                        return -1;
                memcpy(tmp, v, n);
                tmp[n] = '\0';
                if (util_parse_ll(tmp, &secs) < 0 || secs < 0 || secs > 86400 * 7)
                        return -1;
                return (int64_t)secs * 1000;
        }
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        struct tm tm = {0};
        char wd[4], mon[4], zone[4];
        int day, year, hh, mm, ss;
        if (strlen(v) != 29 || v[3] != ',' || v[4] != ' ')
                return -1;
        memcpy(wd, v, 3);
        wd[3] = '\0';
        if (!(v[5] >= '0' && v[5] <= '9' && v[6] >= '0' && v[6] <= '9' && v[7] == ' '))
                return -1;
        day = (v[5] - '0') * 10 + (v[6] - '0');
        memcpy(mon, v + 8, 3);
        mon[3] = '\0';
        if (v[11] != ' ' || v[16] != ' ' || v[19] != ':' || v[22] != ':' || v[25] != ' ')
                return -1;
        for (int i = 12; i < 16; i++)
                if (v[i] < '0' || v[i] > '9')
                        return -1;
        year = (v[12] - '0') * 1000 + (v[13] - '0') * 100 + (v[14] - '0') * 10 + (v[15] - '0');
        const int pos[] = {17, 18, 20, 21, 23, 24};
        for (size_t i = 0; i < 6; i++)
                if (v[pos[i]] < '0' || v[pos[i]] > '9')
                        return -1;
        hh = (v[17] - '0') * 10 + (v[18] - '0');
        mm = (v[20] - '0') * 10 + (v[21] - '0');
        ss = (v[23] - '0') * 10 + (v[24] - '0');
        memcpy(zone, v + 26, 3);
        zone[3] = '\0';
        int mi = month_index(mon);
        if (mi < 0 || strcmp(zone, "GMT") != 0 || day < 1 || day > 31 || hh > 23 || mm > 59 ||
            ss > 60)
                return -1;
        tm.tm_year = year - 1900;
        tm.tm_mon = mi;
        tm.tm_mday = day;
        tm.tm_hour = hh;
        tm.tm_min = mm;
        tm.tm_sec = ss;
        int64_t when = (int64_t)timegm(&tm) * 1000;
        int64_t d = when - now_ms;
        return d < 0 ? 0 : d;
}

bool http_result_retryable(int result)
{
        switch (result) {
        case -ETIMEDOUT:
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -EHOSTUNREACH:
        case -EIO:
                return true;
        default:
                return false;
        }
}

bool http_status_retryable(long status, const char *code)
{
        static const char *const transient[] = {
            "SlowDown",
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "RequestThrottled",
            "RequestThrottledException",
            "TooManyRequestsException",
            "ProvisionedThroughputExceededException",
            "TransactionInProgressException",
            "RequestLimitExceeded",
            "BandwidthLimitExceeded",
            "LimitExceededException",
            "PriorRequestNotComplete",
            "EC2ThrottledException",
            "RequestTimeout",
            "RequestTimeoutException",
            "InternalError",
            "ServiceUnavailable",
            "IDPCommunicationError",
            "OperationAborted",
        };

        if (status >= 500 || status == 429)
                return true;
        if (code)
                for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
                        if (strcmp(code, transient[i]) == 0)
                                return true;
        return false;
}
