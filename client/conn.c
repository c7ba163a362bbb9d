/* conn.c - the blocking JSON-RPC client side of the etld socket.  See conn.h.
 *
 * Framing comes from common/proto (linebuf, rpc_make_request, rpc_dump_line);
 * this file adds connect, write-all, read-until-a-line and the mapping of
 * every failure to a sentence an operator can act on. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

static int no_daemon(const char *path)
{
        return cli_fail(CLI_EXIT_NO_DAEMON,
                        "no etld answers on %s (is etld running? start it with "
                        "'systemctl start etld' or 'etld --foreground')",
                        path);
}

static int hung_up(const struct conn *c)
{
        return cli_fail(CLI_EXIT_NO_DAEMON, "etld closed the connection (%s)", c->path);
}

int conn_open(struct conn *c, const char *path, bool debug)
{
        memset(c, 0, sizeof(*c));
        c->fd = -1;
        c->path = path;
        c->debug = debug;
        c->next_id = 1;
        linebuf_init(&c->in, CLI_LINE_MAX);

        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(addr.sun_path))
                return cli_fail(CLI_EXIT_USAGE, "socket path is longer than %zu bytes: %s",
                                sizeof(addr.sun_path) - 1, path);
        memcpy(addr.sun_path, path, strlen(path) + 1);

        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return cli_fail(CLI_EXIT_NO_DAEMON, "socket: %s", strerror(errno));
        int r;
        do
                r = connect(c->fd, (struct sockaddr *)&addr, sizeof(addr));
        while (r < 0 && errno == EINTR);
        if (r == 0)
                return 0;
        switch (errno) {
        case ENOENT:
        case ENOTDIR:
        case ECONNREFUSED:
                return no_daemon(path);
        case EACCES:
        case EPERM:
                return cli_fail(CLI_EXIT_NO_DAEMON,
                                "permission denied on %s (is your user in the group that "
                                "owns it? otherwise use sudo)",
                                path);
        default:
                return cli_fail(CLI_EXIT_NO_DAEMON, "cannot connect to %s: %s", path,
                                strerror(errno));
        }
}

void conn_close(struct conn *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        linebuf_free(&c->in);
        json_decref(c->early);
        c->early = NULL;
}

static int read_message(struct conn *c, json_t **msg);
static int reply_error(json_t *error);

/* The peer hung up on a write: etld may have said why before it closed (a
 * connection over its limits gets an error line), so read that first. */
static int hung_up_on_write(struct conn *c)
{
        json_t *msg = NULL;
        int r = read_message(c, &msg); /* on failure it has said what happened */
        if (r == 0) {
                json_t *error = json_object_get(msg, "error");
                r = error ? reply_error(error) : hung_up(c);
                json_decref(msg);
        }
        return r;
}

static int send_all(struct conn *c, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EPIPE || errno == ECONNRESET)
                                return hung_up_on_write(c);
                        return cli_fail(CLI_EXIT_NO_DAEMON, "writing to %s: %s", c->path,
                                        strerror(errno));
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Reads until one whole line is framed and parses it. */
static int read_message(struct conn *c, json_t **msg)
{
        for (;;) {
                char *line;
                size_t len;
                int r = linebuf_next(&c->in, &line, &len);
                if (r == -E2BIG)
                        return cli_fail(CLI_EXIT_RPC_ERROR, "etld sent a line longer than %u bytes",
                                        CLI_LINE_MAX);
                if (r == 1) {
                        if (len == 0)
                                continue;
                        if (c->debug)
                                log_debug("rpc", "<- %s", line);
                        json_error_t jerr;
                        json_t *m = json_loadb(line, len, 0, &jerr);
                        if (!json_is_object(m)) {
                                json_decref(m);
                                return cli_fail(CLI_EXIT_RPC_ERROR,
                                                "etld sent something that is not a JSON "
                                                "object: %s",
                                                m ? "wrong type" : jerr.text);
                        }
                        *msg = m;
                        return 0;
                }
                char chunk[65536];
                ssize_t n = read(c->fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == ECONNRESET)
                                return hung_up(c);
                        return cli_fail(CLI_EXIT_NO_DAEMON, "reading from %s: %s", c->path,
                                        strerror(errno));
                }
                if (n == 0)
                        return hung_up(c);
                if (linebuf_feed(&c->in, chunk, (size_t)n) < 0)
                        return cli_fail(CLI_EXIT_RPC_ERROR, "out of memory");
        }
}

int conn_next(struct conn *c, json_t **msg)
{
        if (json_array_size(c->early) > 0) {
                *msg = json_incref(json_array_get(c->early, 0));
                json_array_remove(c->early, 0);
                return 0;
        }
        return read_message(c, msg);
}

/* The reply's error, printed as etld wrote it. */
static int reply_error(json_t *error)
{
        const char *message = json_string_value(json_object_get(error, "message"));
        if (!message)
                return cli_fail(CLI_EXIT_RPC_ERROR, "etld returned error %" JSON_INTEGER_FORMAT,
                                json_integer_value(json_object_get(error, "code")));
        return cli_fail(CLI_EXIT_RPC_ERROR, "%s", message);
}

int conn_call(struct conn *c, const char *method, json_t *params, json_t **result)
{
        return conn_call_error(c, method, params, result, NULL);
}

int conn_call_error(struct conn *c, const char *method, json_t *params, json_t **result,
                    json_t **ret_error)
{
        long long id = c->next_id++;
        json_t *req = rpc_make_request(method, params, id);
        char *line = req ? rpc_dump_line(req, NULL) : NULL;
        json_decref(req);
        if (!line)
                return cli_fail(CLI_EXIT_RPC_ERROR, "out of memory");
        if (c->debug)
                log_debug("rpc", "-> %.*s", (int)strcspn(line, "\n"), line);
        int r = send_all(c, line, strlen(line));
        free(line);
        if (r)
                return r;

        for (;;) {
                json_t *msg;
                r = read_message(c, &msg);
                if (r)
                        return r;
                json_t *mid = json_object_get(msg, "id");
                if (!mid || json_is_null(mid)) {
                        json_t *error = json_object_get(msg, "error");
                        if (error) { /* an error about a request it could not read */
                                r = reply_error(error);
                                json_decref(msg);
                                return r;
                        }
                        if (!c->early)
                                c->early = json_array();
                        json_array_append_new(c->early, msg);
                        continue;
                }
                if (!json_is_integer(mid) || json_integer_value(mid) != id) {
                        json_decref(msg); /* a reply to nothing we are waiting for */
                        continue;
                }
                json_t *error = json_object_get(msg, "error");
                if (error && ret_error) {
                        *ret_error = json_incref(error);
                        json_decref(msg);
                        return CLI_EXIT_RPC_ERROR;
                }
                if (error) {
                        r = reply_error(error);
                        json_decref(msg);
                        return r;
                }
                json_t *res = json_object_get(msg, "result");
                if (!res) {
                        json_decref(msg);
                        return cli_fail(CLI_EXIT_RPC_ERROR,
                                        "etld's reply to %s has neither result nor error", method);
                }
                *result = json_incref(res);
                json_decref(msg);
                return 0;
        }
}
