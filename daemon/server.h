/* server.h - the Unix socket: accepting clients, framing their lines,
 * answering them through rpc.c, and streaming watch events, fairly: a
 * connection is served at most a few requests per loop turn, so a client
 * that pipelines thousands of them does not delay anyone's ping.
 *
 * A connection may have several requests and watches in flight and can
 * vanish at any time; the rest of the daemon never holds a pointer to a
 * connection, only the watch handles the connection itself owns. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct server;
struct conn;
struct rpc_env;
struct engine_watch;
struct authz_peer;

int server_new(uv_loop_t *loop, struct rpc_env *env, struct server **ret);

/* Limits that keep one user from shutting others out: at most per_uid
 * connections of one uid (the one over it gets an error line and is
 * closed), and a connection that has sent nothing for idle_ms and watches
 * nothing is closed (0: never).  At start and on SIGHUP. */
void server_set_limits(struct server *s, unsigned per_uid, uint64_t idle_ms);

/* Listens on path: refuses (-EADDRINUSE) when a live etld answers there,
 * removes a stale socket file, creates the socket with mode 0660. */
int server_listen_path(struct server *s, const char *path, char *err, size_t errlen);
/* Adopts a listening socket passed by systemd. */
int server_listen_fd(struct server *s, int fd, char *err, size_t errlen);

/* Stops accepting; existing connections carry on. */
void server_stop_listening(struct server *s);
/* Closes everything; frees the server when the last handle is closed. */
void server_free(struct server *s);

/* Queues a message for the peer (written with whatever else is queued);
 * drops the connection when its queue is over the limit (a client that does
 * not read its watch events).  A client with many replies unread is not
 * served more requests until it reads. */
void conn_send(struct conn *c, const json_t *msg);
long conn_uid(const struct conn *c);
/* The peer's uid, gid and groups, read once at accept (authz.h). */
const struct authz_peer *conn_peer(const struct conn *c);
/* Remembers a watch so it ends with the connection. */
int conn_add_watch(struct conn *c, struct engine_watch *w);
/* A request answered over several loop turns (backup) holds the connection
 * while it works: if the connection closes first, gone(userdata) runs and
 * the connection must not be used again.  One per connection (-EBUSY);
 * conn_clear_later when the reply is sent. */
int conn_set_later(struct conn *c, void (*gone)(void *userdata), void *userdata);
void conn_clear_later(struct conn *c);
